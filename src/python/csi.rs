//! Python access to the CSI file readers: `read_csi(path, format=None) -> Recording`.
//!
//! Conversion and delegation only: reading, detection and decoding live in
//! `crate::csi`. Files are read with the GIL released. A `Recording` keeps the frames
//! column-wise (`crate::csi::CsiTable`): the stacked `csi` array is the buffer the file
//! was decoded into, per-frame arrays are built on access and the other
//! whole-recording arrays (`timestamps`, `rssi`, `noise`) once, then cached.

use std::sync::Arc;

use ndarray::{Array3, Array4};
use num_complex::{Complex32, Complex64};
use numpy::{IntoPyArray, PyArray1, PyArray3, PyArray4, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyUserWarning;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

use super::errors::{
    CsiFormatError, CsiReadError, InvalidArgumentError, OutOfBoundsError, PathNotFoundError,
};
use crate::csi::atheros::Endianness;
use crate::csi::intel5300::get_scaled_csi;
use crate::csi::nexmon::NexmonChip;
use crate::csi::{
    read_table_with, CsiError, CsiFormat, CsiTable, FrameInfo, FrameMeta, MetaValue, ReadOptions,
};
use crate::csi::{summary, udp};

create_exception!(
    wifi_densepose._native,
    CsiFormatWarning,
    PyUserWarning,
    "Some records of a CSI file were refused: the message groups the problems (Recording.errors lists each)."
);

fn to_py_err(e: CsiError) -> PyErr {
    match e {
        CsiError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PathNotFoundError::new_err(e.to_string())
        }
        CsiError::Io { .. } => CsiReadError::new_err(e.to_string()),
        other => CsiFormatError::new_err(other.to_string()),
    }
}

/// Reads a whole CSI recording.
///
/// `format` is one of "intel5300", "atheros", "nexmon", "esp32", "picoscenes" (or None
/// to detect it). Options: `nexmon_chip` ("bcm4358"...), `bandwidth` (MHz, nexmon),
/// `fftshift` (nexmon: ascending subcarrier order), `scaled` (Intel 5300:
/// get_scaled_csi values), `endianness` ("little"/"big", Atheros), `antenna_order` (Intel
/// 5300: two-antenna frames in antenna order, which the official reader leaves in the
/// card's changing RF-chain order).
#[pyfunction]
#[pyo3(signature = (path, format=None, *, nexmon_chip=None, bandwidth=None, fftshift=false, scaled=false, endianness=None, antenna_order=false))]
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
    antenna_order: bool,
) -> PyResult<PyRecording> {
    let format = format
        .map(|f| f.parse::<CsiFormat>())
        .transpose()
        .map_err(InvalidArgumentError::new_err)?;
    let mut options = ReadOptions::default();
    if let Some(chip) = nexmon_chip {
        options.nexmon.chip = Some(NexmonChip::from_name(chip).ok_or_else(|| {
            InvalidArgumentError::new_err(format!(
                "unknown nexmon chip {chip:?}; expected bcm4339, bcm4358, bcm43455c0 or bcm4366c0"
            ))
        })?);
    }
    // Any other number read as the chanspec's bandwidth, silently.
    if let Some(b) = bandwidth.filter(|b| ![20, 40, 80, 160].contains(b)) {
        return Err(InvalidArgumentError::new_err(format!(
            "bandwidth must be 20, 40, 80 or 160 (MHz), not {b}"
        )));
    }
    options.nexmon.bandwidth_mhz = bandwidth;
    options.nexmon.fftshift = fftshift;
    options.intel5300.scaled = scaled;
    options.intel5300.antenna_order = antenna_order;
    options.atheros.endianness = match endianness {
        None => None,
        Some("little") => Some(Endianness::Little),
        Some("big") => Some(Endianness::Big),
        Some(other) => {
            return Err(InvalidArgumentError::new_err(format!(
                "endianness must be 'little' or 'big', not {other:?}"
            )))
        }
    };
    let table = py
        .detach(|| read_table_with(&path, format, &options))
        .map_err(to_py_err)?;
    if !table.errors.is_empty() {
        // One warning per file, not one per refused record: the summary groups them.
        let message = summary::partial(&table.path, table.frames.len(), &table.errors);
        let category = py.get_type::<CsiFormatWarning>();
        PyErr::warn(
            py,
            category.as_any(),
            &std::ffi::CString::new(message.replace('\0', " "))?,
            1,
        )?;
    }
    Ok(PyRecording::new(py, table))
}

/// Decodes one ESP32-node UDP datagram (docs/udp-frame.md) into `(node_id, CsiFrame)`.
#[pyfunction]
#[pyo3(signature = (datagram, source="udp"))]
fn decode_udp_frame(datagram: &[u8], source: &str) -> PyResult<(u16, PyCsiFrame)> {
    let d = udp::decode(datagram, source).map_err(to_py_err)?;
    let mut table = CsiTable::new(source, CsiFormat::Udp);
    table.push(d.frame);
    Ok((
        d.node_id,
        PyCsiFrame {
            table: Arc::new(table),
            stacked: None,
            index: 0,
        },
    ))
}

/// A CSI file read into memory: a sequence of `CsiFrame`.
///
/// When every frame has the same shape the CSI is held once, as the `csi` array
/// (decoded straight into it); a frame's `csi` is a copy of `csi[i]`.
#[pyclass(
    module = "wifi_densepose._native",
    name = "Recording",
    frozen,
    sequence
)]
pub struct PyRecording {
    /// Metadata of every frame; also the CSI values when shapes differ.
    table: Arc<CsiTable>,
    /// The stacked CSI when shapes agree (the table's buffer, moved, not copied).
    stacked: Option<Py<PyArray4<Complex32>>>,
    timestamps: PyOnceLock<Py<PyArray1<f64>>>,
    rssi: PyOnceLock<Py<PyArray1<f64>>>,
    noise: PyOnceLock<Py<PyArray1<f64>>>,
}

impl PyRecording {
    fn new(py: Python<'_>, mut table: CsiTable) -> Self {
        let stacked = (table.shapes.len() <= 1).then(|| {
            let [t, r, s] = table.shapes.first().copied().unwrap_or([0, 0, 0]);
            let values = std::mem::take(&mut table.csi);
            Array4::from_shape_vec((table.frames.len(), t, r, s), values)
                .expect("uniform shapes count every value")
                .into_pyarray(py)
                .unbind()
        });
        PyRecording {
            table: Arc::new(table),
            stacked,
            timestamps: PyOnceLock::new(),
            rssi: PyOnceLock::new(),
            noise: PyOnceLock::new(),
        }
    }

    fn column(
        &self,
        py: Python<'_>,
        cell: &PyOnceLock<Py<PyArray1<f64>>>,
        get: fn(&FrameInfo) -> f64,
    ) -> Py<PyArray1<f64>> {
        cell.get_or_init(py, || {
            let v: Vec<f64> = self.table.frames.iter().map(get).collect();
            v.into_pyarray(py).unbind()
        })
        .clone_ref(py)
    }

    /// The frames' metadata and, when the shapes agree, the stacked CSI they index into
    /// (`analyze` builds each engine frame from them as it feeds it).
    pub(crate) fn parts<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Arc<CsiTable>,
        Option<numpy::PyReadonlyArray4<'py, Complex32>>,
    )> {
        let stacked = match &self.stacked {
            Some(a) => Some(a.bind(py).try_readonly().map_err(|e| {
                InvalidArgumentError::new_err(format!("the recording's csi array is in use: {e}"))
            })?),
            None => None,
        };
        Ok((Arc::clone(&self.table), stacked))
    }

    fn frame_at(&self, py: Python<'_>, index: usize) -> PyCsiFrame {
        PyCsiFrame {
            table: Arc::clone(&self.table),
            stacked: self.stacked.as_ref().map(|a| a.clone_ref(py)),
            index,
        }
    }
}

#[pymethods]
impl PyRecording {
    fn __len__(&self) -> usize {
        self.table.frames.len()
    }

    fn __getitem__(&self, py: Python<'_>, index: isize) -> PyResult<PyCsiFrame> {
        let n = self.table.frames.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(OutOfBoundsError::new_err(format!(
                "frame index {index} out of range for {n} frames"
            )));
        }
        Ok(self.frame_at(py, i as usize))
    }

    fn __iter__(slf: Bound<'_, Self>) -> RecordingIter {
        RecordingIter {
            rec: slf.unbind(),
            next: 0,
        }
    }

    fn __repr__(&self) -> String {
        let shapes: Vec<String> = self.table.shapes.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "Recording({:?}, format={:?}, frames={}, shapes=[{}], errors={})",
            self.table.path,
            self.table.format.name(),
            self.table.frames.len(),
            shapes.join(", "),
            self.table.errors.len()
        )
    }

    /// The file as given.
    #[getter]
    fn path(&self) -> &str {
        &self.table.path
    }

    /// The format that was read ("intel5300", "nexmon"...).
    #[getter]
    fn format(&self) -> &'static str {
        self.table.format.name()
    }

    /// Every problem met while reading, as messages naming file, offset and problem.
    #[getter]
    fn errors(&self) -> Vec<String> {
        self.table.errors.iter().map(|e| e.to_string()).collect()
    }

    /// All problems in one message (grouped and counted, the first with its offset,
    /// the option that fixes them if one does), or None for a clean file. This is
    /// what `read_csi` warned with.
    #[getter]
    fn error_summary(&self) -> Option<String> {
        (!self.table.errors.is_empty()).then(|| {
            summary::partial(
                &self.table.path,
                self.table.frames.len(),
                &self.table.errors,
            )
        })
    }

    /// The first problem met, or None for a clean file.
    #[getter]
    fn error(&self) -> Option<String> {
        self.table.error().map(|e| e.to_string())
    }

    /// Byte offsets of the problems in `errors`.
    #[getter]
    fn error_offsets(&self) -> Vec<u64> {
        self.table.errors.iter().map(|e| e.offset()).collect()
    }

    /// Distinct (n_tx, n_rx, n_sub) shapes in order of first appearance.
    #[getter]
    fn shapes(&self) -> Vec<(usize, usize, usize)> {
        self.table
            .shapes
            .iter()
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

    /// Frames per shape, `[((n_tx, n_rx, n_sub), count), ...]`, most frequent first
    /// (ties in order of first appearance).
    #[getter]
    fn shape_counts(&self) -> Vec<((usize, usize, usize), usize)> {
        shape_counts(&self.table)
            .into_iter()
            .map(|([t, r, s], n)| ((t, r, s), n))
            .collect()
    }

    /// The most frequent frame shape (the first to appear among equals); None when
    /// there are no frames.
    #[getter]
    fn dominant_shape(&self) -> Option<(usize, usize, usize)> {
        shape_counts(&self.table)
            .first()
            .map(|&([t, r, s], _)| (t, r, s))
    }

    /// Indices (int64) of the frames of the dominant shape, in file order: index
    /// `timestamps`, `rssi`... with it to match `csi_dominant()`.
    #[getter]
    fn dominant_indices(&self, py: Python<'_>) -> Py<PyArray1<i64>> {
        let dominant = shape_counts(&self.table).first().map(|&(s, _)| s);
        let idx: Vec<i64> = self
            .table
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| Some(f.shape) == dominant)
            .map(|(i, _)| i as i64)
            .collect();
        idx.into_pyarray(py).unbind()
    }

    /// The frames of the dominant shape stacked, complex64 `(n, n_tx, n_rx, n_sub)`:
    /// what a recording that mixes shapes (a stray 2-transmitter frame, 64- and
    /// 256-subcarrier nexmon packets) gives to code that needs one array. The frames
    /// left out are counted in `shape_counts`; `dominant_indices` says which were kept.
    /// For a uniform recording this is `csi` itself.
    fn csi_dominant(&self, py: Python<'_>) -> Py<PyArray4<Complex32>> {
        if let Some(a) = &self.stacked {
            return a.clone_ref(py);
        }
        let [t, r, s] = shape_counts(&self.table)
            .first()
            .map_or([0, 0, 0], |&(s, _)| s);
        let mut values = Vec::new();
        let mut n = 0;
        for (i, f) in self.table.frames.iter().enumerate() {
            if f.shape == [t, r, s] {
                values.extend_from_slice(self.table.frame_csi(i));
                n += 1;
            }
        }
        Array4::from_shape_vec((n, t, r, s), values)
            .expect("n frames of one shape")
            .into_pyarray(py)
            .unbind()
    }

    /// All CSI stacked as complex64 `(n_frames, n_tx, n_rx, n_sub)`, always the same
    /// array. ValueError when frames differ in shape (see `csi_dominant()`).
    #[getter]
    fn csi(&self, py: Python<'_>) -> PyResult<Py<PyArray4<Complex32>>> {
        match &self.stacked {
            Some(a) => Ok(a.clone_ref(py)),
            None => {
                let counted: Vec<String> = shape_counts(&self.table)
                    .iter()
                    .map(|(s, n)| format!("{s:?} x{n}"))
                    .collect();
                Err(InvalidArgumentError::new_err(format!(
                    "{}: frames have different shapes ({}); csi_dominant() stacks the most \
                     frequent one (dominant_indices says which frames), or index frames one by one",
                    self.table.path,
                    counted.join(", ")
                )))
            }
        }
    }
}

/// Frames per shape, most frequent first; ties in order of first appearance.
fn shape_counts(table: &CsiTable) -> Vec<([usize; 3], usize)> {
    let mut counts: Vec<([usize; 3], usize)> = table.shapes.iter().map(|&s| (s, 0)).collect();
    for f in &table.frames {
        if let Some(c) = counts.iter_mut().find(|(s, _)| *s == f.shape) {
            c.1 += 1;
        }
    }
    // A stable sort keeps first appearance among equal counts.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

#[pyclass(module = "wifi_densepose._native")]
struct RecordingIter {
    rec: Py<PyRecording>,
    next: usize,
}

#[pymethods]
impl RecordingIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> Option<PyCsiFrame> {
        let rec = self.rec.get();
        (self.next < rec.table.frames.len()).then(|| {
            self.next += 1;
            rec.frame_at(py, self.next - 1)
        })
    }
}

/// One received packet's CSI and metadata.
#[pyclass(module = "wifi_densepose._native", name = "CsiFrame", frozen)]
pub struct PyCsiFrame {
    table: Arc<CsiTable>,
    /// The recording's stacked CSI, where the values live when shapes agree.
    stacked: Option<Py<PyArray4<Complex32>>>,
    index: usize,
}

impl PyCsiFrame {
    fn info(&self) -> &FrameInfo {
        &self.table.frames[self.index]
    }

    /// The frame's CSI values, `(n_tx, n_rx, n_sub)`.
    fn values(&self, py: Python<'_>) -> PyResult<Array3<Complex32>> {
        let [t, r, s] = self.info().shape;
        let values = match &self.stacked {
            Some(a) => {
                let a = a.bind(py).readonly();
                let all = a.as_slice().map_err(|_| {
                    InvalidArgumentError::new_err(
                        "the recording's csi array is no longer contiguous",
                    )
                })?;
                let n = t * r * s;
                all.get(self.index * n..(self.index + 1) * n)
                    .ok_or_else(|| {
                        InvalidArgumentError::new_err(
                            "the recording's csi array no longer holds this frame",
                        )
                    })?
                    .to_vec()
            }
            None => self.table.frame_csi(self.index).to_vec(),
        };
        Ok(Array3::from_shape_vec((t, r, s), values).expect("the shape counts the values"))
    }
}

#[pymethods]
impl PyCsiFrame {
    /// complex64 array `(n_tx, n_rx, n_sub)`.
    #[getter]
    fn csi<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<Complex32>>> {
        Ok(self.values(py)?.into_pyarray(py))
    }

    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        let [t, r, s] = self.info().shape;
        (t, r, s)
    }

    #[getter]
    fn timestamp(&self) -> f64 {
        self.info().timestamp
    }

    #[getter]
    fn rssi(&self) -> Option<f32> {
        self.info().rssi
    }

    #[getter]
    fn noise(&self) -> Option<f32> {
        self.info().noise
    }

    #[getter]
    fn format(&self) -> &'static str {
        self.table.format.name()
    }

    #[getter]
    fn channel(&self) -> Option<u16> {
        self.info().channel
    }

    #[getter]
    fn bandwidth_mhz(&self) -> Option<u16> {
        self.info().bandwidth_mhz
    }

    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.info().sequence
    }

    /// Format-specific fields, named as the official tools name them.
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.info().meta.fields() {
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
        match &self.info().meta {
            FrameMeta::Intel5300(m) if m.scaled => Err(InvalidArgumentError::new_err(
                "this frame was read with scaled=True; its csi already holds the scaled values",
            )),
            FrameMeta::Intel5300(m) => Ok(get_scaled_csi(&self.values(py)?, m).into_pyarray(py)),
            _ => Err(InvalidArgumentError::new_err(format!(
                "scaled_csi is defined for Intel 5300 frames only, this frame is {}",
                self.table.format.name()
            ))),
        }
    }

    fn __repr__(&self) -> String {
        let f = self.info();
        format!(
            "CsiFrame(format={:?}, timestamp={}, shape={:?}, rssi={:?})",
            self.table.format.name(),
            f.timestamp,
            f.shape,
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
    m.add("CsiFormatWarning", m.py().get_type::<CsiFormatWarning>())?;
    Ok(())
}
