//! Python access to the CSI file readers: `read_csi(path, format=None) -> Recording`.
//!
//! Conversion and delegation only: reading, detection and decoding live in
//! `crate::csi`. Files are read with the GIL released. A `Recording` keeps the frames
//! in Rust; per-frame arrays are built on access and the whole-recording arrays
//! (`csi`, `timestamps`, `rssi`, `noise`) once, then cached.

use std::sync::Arc;

use ndarray::{Array1, Array4};
use num_complex::{Complex32, Complex64};
use numpy::{IntoPyArray, PyArray1, PyArray3, PyArray4};
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyIndexError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

use crate::csi::atheros::Endianness;
use crate::csi::intel5300::get_scaled_csi;
use crate::csi::nexmon::NexmonChip;
use crate::csi::udp;
use crate::csi::{
    read_all_with, CsiError, CsiFormat, CsiFrame, FrameMeta, MetaValue, ReadOptions, Recording,
};

create_exception!(
    wifi_densepose._native,
    CsiFormatError,
    PyValueError,
    "A CSI file that cannot be read: the message names the file, the byte offset and the problem."
);

fn to_py_err(e: CsiError) -> PyErr {
    match e {
        CsiError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        CsiError::Io { .. } => PyOSError::new_err(e.to_string()),
        other => CsiFormatError::new_err(other.to_string()),
    }
}

/// Reads a whole CSI recording.
///
/// `format` is one of "intel5300", "atheros", "nexmon", "esp32", "picoscenes" (or None
/// to detect it). Options: `nexmon_chip` ("bcm4358"...), `bandwidth` (MHz, nexmon),
/// `fftshift` (nexmon: ascending subcarrier order), `scaled` (Intel 5300:
/// get_scaled_csi values), `endianness` ("little"/"big", Atheros).
#[pyfunction]
#[pyo3(signature = (path, format=None, *, nexmon_chip=None, bandwidth=None, fftshift=false, scaled=false, endianness=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
fn read_csi(
    py: Python<'_>,
    path: std::path::PathBuf,
    format: Option<&str>,
    nexmon_chip: Option<&str>,
    bandwidth: Option<u16>,
    fftshift: bool,
    scaled: bool,
    endianness: Option<&str>,
) -> PyResult<PyRecording> {
    let format = format
        .map(|f| f.parse::<CsiFormat>())
        .transpose()
        .map_err(PyValueError::new_err)?;
    let mut options = ReadOptions::default();
    if let Some(chip) = nexmon_chip {
        options.nexmon.chip = Some(NexmonChip::from_name(chip).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown nexmon chip {chip:?}; expected bcm4339, bcm4358, bcm43455c0 or bcm4366c0"
            ))
        })?);
    }
    options.nexmon.bandwidth_mhz = bandwidth;
    options.nexmon.fftshift = fftshift;
    options.intel5300.scaled = scaled;
    options.atheros.endianness = match endianness {
        None => None,
        Some("little") => Some(Endianness::Little),
        Some("big") => Some(Endianness::Big),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "endianness must be 'little' or 'big', not {other:?}"
            )))
        }
    };
    let rec = py
        .detach(|| read_all_with(&path, format, &options))
        .map_err(to_py_err)?;
    Ok(PyRecording::new(rec))
}

/// Decodes one ESP32-node UDP datagram (docs/udp-frame.md) into `(node_id, CsiFrame)`.
#[pyfunction]
#[pyo3(signature = (datagram, source="udp"))]
fn decode_udp_frame(datagram: &[u8], source: &str) -> PyResult<(u16, PyCsiFrame)> {
    let d = udp::decode(datagram, source).map_err(to_py_err)?;
    let rec = Recording {
        path: source.to_string(),
        format: CsiFormat::Udp,
        frames: vec![d.frame],
        errors: Vec::new(),
    };
    Ok((
        d.node_id,
        PyCsiFrame {
            rec: Arc::new(rec),
            index: 0,
        },
    ))
}

/// A CSI file read into memory: a sequence of `CsiFrame`.
#[pyclass(
    module = "wifi_densepose._native",
    name = "Recording",
    frozen,
    sequence
)]
pub struct PyRecording {
    rec: Arc<Recording>,
    csi: PyOnceLock<Py<PyArray4<Complex32>>>,
    timestamps: PyOnceLock<Py<PyArray1<f64>>>,
    rssi: PyOnceLock<Py<PyArray1<f64>>>,
    noise: PyOnceLock<Py<PyArray1<f64>>>,
}

impl PyRecording {
    fn new(rec: Recording) -> Self {
        PyRecording {
            rec: Arc::new(rec),
            csi: PyOnceLock::new(),
            timestamps: PyOnceLock::new(),
            rssi: PyOnceLock::new(),
            noise: PyOnceLock::new(),
        }
    }

    fn column(
        &self,
        py: Python<'_>,
        cell: &PyOnceLock<Py<PyArray1<f64>>>,
        get: fn(&CsiFrame) -> f64,
    ) -> Py<PyArray1<f64>> {
        cell.get_or_init(py, || {
            let v: Array1<f64> = self.rec.frames.iter().map(get).collect();
            v.into_pyarray(py).unbind()
        })
        .clone_ref(py)
    }
}

#[pymethods]
impl PyRecording {
    fn __len__(&self) -> usize {
        self.rec.frames.len()
    }

    fn __getitem__(&self, index: isize) -> PyResult<PyCsiFrame> {
        let n = self.rec.frames.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(PyIndexError::new_err(format!(
                "frame index {index} out of range for {n} frames"
            )));
        }
        Ok(PyCsiFrame {
            rec: Arc::clone(&self.rec),
            index: i as usize,
        })
    }

    fn __iter__(&self) -> RecordingIter {
        RecordingIter {
            rec: Arc::clone(&self.rec),
            next: 0,
        }
    }

    fn __repr__(&self) -> String {
        let shapes: Vec<String> = self.rec.shapes().iter().map(|s| format!("{s:?}")).collect();
        format!(
            "Recording({:?}, format={:?}, frames={}, shapes=[{}], errors={})",
            self.rec.path,
            self.rec.format.name(),
            self.rec.frames.len(),
            shapes.join(", "),
            self.rec.errors.len()
        )
    }

    /// The file as given.
    #[getter]
    fn path(&self) -> &str {
        &self.rec.path
    }

    /// The format that was read ("intel5300", "nexmon"...).
    #[getter]
    fn format(&self) -> &'static str {
        self.rec.format.name()
    }

    /// Every problem met while reading, as messages naming file, offset and problem.
    #[getter]
    fn errors(&self) -> Vec<String> {
        self.rec.errors.iter().map(|e| e.to_string()).collect()
    }

    /// The first problem met, or None for a clean file.
    #[getter]
    fn error(&self) -> Option<String> {
        self.rec.error().map(|e| e.to_string())
    }

    /// Byte offsets of the problems in `errors`.
    #[getter]
    fn error_offsets(&self) -> Vec<u64> {
        self.rec.errors.iter().map(|e| e.offset()).collect()
    }

    /// Distinct (n_tx, n_rx, n_sub) shapes in order of first appearance.
    #[getter]
    fn shapes(&self) -> Vec<(usize, usize, usize)> {
        self.rec
            .shapes()
            .into_iter()
            .map(|s| (s[0], s[1], s[2]))
            .collect()
    }

    /// Frame timestamps in seconds (float64), built once.
    #[getter]
    fn timestamps(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.column(py, &self.timestamps, |f| f.timestamp)
    }

    /// RSSI per frame (float64, NaN where the format has none), built once.
    #[getter]
    fn rssi(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.column(py, &self.rssi, |f| f.rssi.map_or(f64::NAN, f64::from))
    }

    /// Noise floor per frame (float64, NaN where the format has none), built once.
    #[getter]
    fn noise(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.column(py, &self.noise, |f| f.noise.map_or(f64::NAN, f64::from))
    }

    /// All CSI stacked as complex64 `(n_frames, n_tx, n_rx, n_sub)`, built once.
    /// ValueError when frames differ in shape.
    #[getter]
    fn csi(&self, py: Python<'_>) -> PyResult<Py<PyArray4<Complex32>>> {
        let shapes = self.rec.shapes();
        if shapes.len() > 1 {
            let listed: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
            return Err(PyValueError::new_err(format!(
                "{}: frames have different shapes ({}); index frames one by one or read with options that make them uniform",
                self.rec.path,
                listed.join(", ")
            )));
        }
        let rec = Arc::clone(&self.rec);
        let arr = self.csi.get_or_init(py, || {
            let stacked = py.detach(|| stack(&rec, shapes.first().copied().unwrap_or([0, 0, 0])));
            stacked.into_pyarray(py).unbind()
        });
        Ok(arr.clone_ref(py))
    }
}

fn stack(rec: &Recording, [t, r, s]: [usize; 3]) -> Array4<Complex32> {
    // One pass that appends each frame's contiguous values: no zero-fill of a buffer
    // that is overwritten anyway, which halves the memory traffic for large files.
    let mut values = Vec::with_capacity(rec.frames.len() * t * r * s);
    for f in &rec.frames {
        match f.csi.as_slice() {
            Some(slice) => values.extend_from_slice(slice),
            None => values.extend(f.csi.iter().copied()),
        }
    }
    Array4::from_shape_vec((rec.frames.len(), t, r, s), values)
        .expect("uniform shapes were checked")
}

#[pyclass(module = "wifi_densepose._native")]
struct RecordingIter {
    rec: Arc<Recording>,
    next: usize,
}

#[pymethods]
impl RecordingIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> Option<PyCsiFrame> {
        (self.next < self.rec.frames.len()).then(|| {
            self.next += 1;
            PyCsiFrame {
                rec: Arc::clone(&self.rec),
                index: self.next - 1,
            }
        })
    }
}

/// One received packet's CSI and metadata.
#[pyclass(module = "wifi_densepose._native", name = "CsiFrame", frozen)]
pub struct PyCsiFrame {
    rec: Arc<Recording>,
    index: usize,
}

impl PyCsiFrame {
    fn frame(&self) -> &CsiFrame {
        &self.rec.frames[self.index]
    }
}

#[pymethods]
impl PyCsiFrame {
    /// complex64 array `(n_tx, n_rx, n_sub)`.
    #[getter]
    fn csi<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<Complex32>> {
        self.frame().csi.clone().into_pyarray(py)
    }

    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        let f = self.frame();
        (f.n_tx(), f.n_rx(), f.n_subcarriers())
    }

    #[getter]
    fn timestamp(&self) -> f64 {
        self.frame().timestamp
    }

    #[getter]
    fn rssi(&self) -> Option<f32> {
        self.frame().rssi
    }

    #[getter]
    fn noise(&self) -> Option<f32> {
        self.frame().noise
    }

    #[getter]
    fn format(&self) -> &'static str {
        self.frame().format.name()
    }

    #[getter]
    fn channel(&self) -> Option<u16> {
        self.frame().channel
    }

    #[getter]
    fn bandwidth_mhz(&self) -> Option<u16> {
        self.frame().bandwidth_mhz
    }

    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.frame().sequence
    }

    /// Format-specific fields, named as the official tools name them.
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.frame().meta.fields() {
            match v {
                MetaValue::Int(i) => d.set_item(k, i)?,
                MetaValue::Float(x) => d.set_item(k, x)?,
                MetaValue::Bool(b) => d.set_item(k, b)?,
                MetaValue::Text(s) => d.set_item(k, s)?,
                MetaValue::Ints(v) => d.set_item(k, PyList::new(py, v)?)?,
            }
        }
        Ok(d)
    }

    /// Intel 5300 only: the official `get_scaled_csi` (complex128, SNR units).
    fn scaled_csi<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<Complex64>>> {
        match &self.frame().meta {
            FrameMeta::Intel5300(m) if m.scaled => Err(PyValueError::new_err(
                "this frame was read with scaled=True; its csi already holds the scaled values",
            )),
            FrameMeta::Intel5300(m) => Ok(get_scaled_csi(&self.frame().csi, m).into_pyarray(py)),
            _ => Err(PyValueError::new_err(format!(
                "scaled_csi is defined for Intel 5300 frames only, this frame is {}",
                self.frame().format.name()
            ))),
        }
    }

    fn __repr__(&self) -> String {
        let f = self.frame();
        format!(
            "CsiFrame(format={:?}, timestamp={}, shape={:?}, rssi={:?})",
            f.format.name(),
            f.timestamp,
            f.csi.shape(),
            f.rssi
        )
    }
}

/// Adds the CSI reader API to the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_csi, m)?)?;
    m.add_function(wrap_pyfunction!(decode_udp_frame, m)?)?;
    m.add_class::<PyRecording>()?;
    m.add_class::<PyCsiFrame>()?;
    m.add("CsiFormatError", m.py().get_type::<CsiFormatError>())?;
    Ok(())
}
