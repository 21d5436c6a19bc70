//! `wifi_densepose._native.dsp`: numpy in, numpy out, for [`crate::dsp`]. Conversion and
//! delegation only; the GIL is released while the Rust code computes. dtype checks with
//! friendly messages live in `python/wifi_densepose/dsp.py`; here a wrong dtype is the
//! numpy crate's TypeError and a [`dsp::DspError`] is a `DspError` (a ValueError).

use ndarray::{Array1, Ix3, Ix4};
use num_complex::Complex32;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArrayDyn,
};
use pyo3::exceptions::{PyMemoryError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{ArgumentTypeError, DspError};
use crate::dsp;

fn err(e: dsp::DspError) -> PyErr {
    DspError::new_err(e.to_string())
}

/// Runs `work` with the GIL released and maps its error to `DspError`: what every
/// function of this module does with its arrays.
fn released<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, dsp::DspError> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(err)
}

type F32Dyn<'py> = Bound<'py, PyArrayDyn<f32>>;

/// Working memory past this is tried first: Rust aborts the process on an allocation that
/// fails (a memory limit, a broadcast view far larger than its memory), where numpy raises
/// `MemoryError`.
const PROBED_BYTES: usize = 64 << 20;

/// A `MemoryError` unless `values` times `bytes_per_value` (the function's working memory,
/// its copies and outputs together, per input value: its peak resident memory measured on
/// 3.2 million contiguous values, plus the contiguous copy a strided view needs, rounded
/// up) can be allocated now. The probe is freed at
/// once, untouched: it costs an address-space reservation, not the memory.
fn room_for(what: &str, values: usize, bytes_per_value: usize) -> PyResult<()> {
    let bytes = values.saturating_mul(bytes_per_value);
    if bytes < PROBED_BYTES {
        return Ok(());
    }
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes).map_err(|_| {
        PyMemoryError::new_err(format!(
            "dsp.{what}: {values} values need about {:.1} GB of working memory, which cannot \
             be allocated",
            bytes as f64 / 1e9
        ))
    })
}

fn opt_vec(x: &Option<PyReadonlyArray1<'_, f32>>) -> Option<Vec<f32>> {
    x.as_ref().map(|a| a.as_array().to_vec())
}

#[pyfunction]
#[pyo3(signature = (csi, subcarrier_indices=None))]
fn sanitize<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
    subcarrier_indices: Option<PyReadonlyArray1<'py, f32>>,
) -> PyResult<(F32Dyn<'py>, F32Dyn<'py>)> {
    let v = csi.as_array();
    room_for("sanitize", v.len(), 20)?;
    let ix = opt_vec(&subcarrier_indices);
    let (a, p) = released(py, || dsp::phase::sanitize(v, ix.as_deref()))?;
    Ok((a.into_pyarray(py), p.into_pyarray(py)))
}

/// Inputs with fewer values than this are computed with the GIL held: releasing and
/// taking it back costs little next to the work (about 0.05 us against 3 us for a
/// 3x3x30 frame), but when other Python threads are waiting for it the GIL may not come
/// back for a whole switch interval (5 ms), which a single frame should never pay. Larger
/// inputs (from about 50 us of work) release it so that other threads run meanwhile.
const GIL_RELEASE_VALUES: usize = 4096;

#[pyfunction]
#[pyo3(signature = (csi, rssi=None, subcarrier_indices=None))]
fn condition_frame<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
    rssi: Option<PyReadonlyArray1<'py, f32>>,
    subcarrier_indices: Option<PyReadonlyArray1<'py, f32>>,
) -> PyResult<(F32Dyn<'py>, F32Dyn<'py>)> {
    let v = csi.as_array();
    let ix = subcarrier_indices.as_ref().map(|a| a.as_array());
    let ix = ix.as_ref().and_then(|a| a.as_slice());
    if rssi.is_some() || (subcarrier_indices.is_some() && ix.is_none()) {
        let ix = opt_vec(&subcarrier_indices);
        let r = opt_vec(&rssi);
        let (a, p) = released(py, || {
            dsp::stream::condition_frame(v, r.as_deref(), ix.as_deref())
        })?;
        return Ok((a.into_pyarray(py), p.into_pyarray(py)));
    }
    // The common case, one frame and no RSSI: computed straight into the two numpy
    // arrays returned, with no intermediate buffers.
    let dims = v.shape().to_vec();
    let amp = PyArrayDyn::<f32>::zeros(py, dims.clone(), false);
    let phase = PyArrayDyn::<f32>::zeros(py, dims.clone(), false);
    {
        // SAFETY: both arrays were created just above, are C-contiguous and not yet
        // visible to any other code, so these are the only references to their data.
        let (a, p) = unsafe { (amp.as_slice_mut(), phase.as_slice_mut()) };
        let (a, p) = (
            a.map_err(|e| DspError::new_err(e.to_string()))?,
            p.map_err(|e| DspError::new_err(e.to_string()))?,
        );
        let mut run = |h: &[Complex32]| dsp::stream::condition_frame_into(h, &dims, ix, a, p);
        let contiguous = v.as_slice();
        let result = match contiguous {
            Some(h) if h.len() < GIL_RELEASE_VALUES => run(h),
            Some(h) => py.detach(|| run(h)),
            None => {
                let h: Vec<Complex32> = v.iter().copied().collect();
                py.detach(|| run(&h))
            }
        };
        result.map_err(err)?;
    }
    Ok((amp, phase))
}

#[pyfunction]
fn conjugate_product<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
) -> PyResult<Bound<'py, PyArrayDyn<Complex32>>> {
    let v = csi.as_array();
    // The output holds (n_rx - 1) / 2 products per input value (every pair of antennas).
    let n_rx = v.shape().iter().rev().nth(1).copied().unwrap_or(1).max(1);
    if n_rx <= 64 {
        // More antennas than that are refused by the product itself, by name.
        room_for(
            "conjugate_product",
            v.len(),
            8 + 8 * (n_rx - 1).div_ceil(2) + 4,
        )?;
    }
    let out = released(py, || dsp::phase::conjugate_product(v))?;
    Ok(out.into_pyarray(py))
}

/// Frames `(n, n_tx, n_rx, n_sub)` in order, with the receive chains' quarter-turn
/// steps taken out as the engine does ([`crate::sensing::ChainAligner`]); and whether the
/// frames stepped.
#[pyfunction]
fn align_chains<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
) -> PyResult<(Bound<'py, PyArrayDyn<Complex32>>, bool)> {
    let v = csi
        .as_array()
        .into_dimensionality::<Ix4>()
        .map_err(|_| DspError::new_err("align_chains: csi must be (n, n_tx, n_rx, n_sub)"))?;
    room_for("align_chains", v.len(), 20)?;
    // As every other dsp function: NaN in, an error out (not NaN out).
    if let Some(i) = v
        .iter()
        .position(|c| !(c.re.is_finite() && c.im.is_finite()))
    {
        return Err(DspError::new_err(format!(
            "align_chains: input holds a non-finite value at flat index {i}"
        )));
    }
    let (out, stepping) = py.detach(|| {
        let mut chains = crate::sensing::ChainAligner::default();
        let mut out = v.to_owned();
        for mut frame in out.outer_iter_mut() {
            let aligned = chains.align(&frame.to_owned()).into_owned();
            frame.assign(&aligned);
        }
        (out, chains.stepping())
    });
    Ok((out.into_dyn().into_pyarray(py), stepping))
}

#[pyfunction]
#[pyo3(signature = (x, window, n_sigmas, causal))]
fn hampel<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    window: usize,
    n_sigmas: f32,
    causal: bool,
) -> PyResult<(F32Dyn<'py>, usize)> {
    let v = x.as_array();
    room_for("hampel", v.len(), 16)?;
    let (y, n) = released(py, || dsp::hampel::hampel(v, window, n_sigmas, causal))?;
    Ok((y.into_pyarray(py), n))
}

#[pyfunction]
#[pyo3(signature = (amp, rssi=None))]
fn normalize_amplitude<'py>(
    py: Python<'py>,
    amp: PyReadonlyArrayDyn<'py, f32>,
    rssi: Option<PyReadonlyArray1<'py, f32>>,
) -> PyResult<F32Dyn<'py>> {
    let v = amp.as_array();
    room_for("normalize_amplitude", v.len(), 8)?;
    let r = opt_vec(&rssi);
    let out = released(py, || dsp::amplitude::normalize_amplitude(v, r.as_deref()))?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (csi, n_out, subcarrier_indices=None))]
fn resample_complex<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
    n_out: usize,
    subcarrier_indices: Option<PyReadonlyArray1<'py, f32>>,
) -> PyResult<Bound<'py, PyArrayDyn<Complex32>>> {
    let v = csi.as_array();
    let ix = opt_vec(&subcarrier_indices);
    let out = released(py, || {
        dsp::resample::resample_complex(v, n_out, ix.as_deref())
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (x, n_out, subcarrier_indices=None))]
fn resample_real<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    n_out: usize,
    subcarrier_indices: Option<PyReadonlyArray1<'py, f32>>,
) -> PyResult<F32Dyn<'py>> {
    let v = x.as_array();
    let ix = opt_vec(&subcarrier_indices);
    let out = released(py, || dsp::resample::resample_real(v, n_out, ix.as_deref()))?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (order, fs, low=None, high=None))]
fn butter_sos<'py>(
    py: Python<'py>,
    order: usize,
    fs: f64,
    low: Option<f64>,
    high: Option<f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let sos = dsp::filter::butter(order, fs, low, high).map_err(err)?;
    let flat: Vec<f64> = sos.sections.iter().flatten().copied().collect();
    let a = ndarray::Array2::from_shape_vec((sos.n_sections(), 6), flat)
        .map_err(|e| DspError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (x, fs, low, high, order, zero_phase))]
fn butter_filter<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    fs: f64,
    low: Option<f64>,
    high: Option<f64>,
    order: usize,
    zero_phase: bool,
) -> PyResult<F32Dyn<'py>> {
    let v = x.as_array();
    room_for("butter_filter", v.len(), 16)?;
    let out = released(py, || {
        dsp::filter::butter_filter(v, fs, low, high, order, zero_phase)
    })?;
    Ok(out.into_pyarray(py))
}

type Spec<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

fn spec_out(py: Python<'_>, s: dsp::spectrogram::Spectrogram) -> Spec<'_> {
    (
        s.power.into_pyarray(py),
        Array1::from(s.freqs).into_pyarray(py),
        Array1::from(s.times).into_pyarray(py),
    )
}

#[pyfunction]
#[pyo3(signature = (x, fs, window, hop, nfft=None))]
fn spectrogram_complex<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, Complex32>,
    fs: f64,
    window: usize,
    hop: usize,
    nfft: Option<usize>,
) -> PyResult<Spec<'py>> {
    let v = x.as_array();
    let s = released(py, || {
        dsp::spectrogram::doppler_spectrogram_complex(v, fs, window, hop, nfft)
    })?;
    Ok(spec_out(py, s))
}

#[pyfunction]
#[pyo3(signature = (x, fs, window, hop, nfft=None))]
fn spectrogram_real<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    fs: f64,
    window: usize,
    hop: usize,
    nfft: Option<usize>,
) -> PyResult<Spec<'py>> {
    let v = x.as_array();
    let s = released(py, || {
        dsp::spectrogram::doppler_spectrogram_real(v, fs, window, hop, nfft)
    })?;
    Ok(spec_out(py, s))
}

#[pyfunction]
fn motion_statistic<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    window: usize,
    hop: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = x.as_array();
    let m = released(py, || dsp::motion::motion_statistic(v, window, hop))?;
    Ok(Array1::from(m).into_pyarray(py))
}

#[pyfunction]
fn presence_statistic<'py>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, f32>,
    baseline: PyReadonlyArrayDyn<'py, f32>,
    window: usize,
    hop: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (v, b) = (x.as_array(), baseline.as_array());
    let m = released(py, || dsp::motion::presence_statistic(v, b, window, hop))?;
    Ok(Array1::from(m).into_pyarray(py))
}

/// The conditioner's settings, from the dict `dsp.py` builds (`_config`): each value
/// converted as Python's `int()` / `float()` would (what `dsp.py` did before handing
/// them over), `None` for the optional ones, a missing key the engine's default
/// ([`dsp::stream::ConditionerConfig::default`]), an unknown key a `TypeError`.
/// Ranges are checked by the engine (a `DspError`).
struct Settings(dsp::stream::ConditionerConfig);

/// The names `Settings` reads, in the order the engine documents them.
const SETTINGS: [&str; 9] = [
    "subcarrier_indices",
    "n_subcarriers",
    "hampel_window",
    "n_sigmas",
    "fs",
    "low",
    "high",
    "order",
    "motion_window",
];

impl<'a, 'py> FromPyObject<'a, 'py> for Settings {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let dict = obj.cast::<PyDict>().map_err(|_| {
            ArgumentTypeError::new_err("conditioner settings must be a dict of setting: value")
        })?;
        let builtins = py.import("builtins")?;
        let (int, float) = (builtins.getattr("int")?, builtins.getattr("float")?);
        let whole = |v: &Bound<'py, PyAny>| -> PyResult<usize> { int.call1((v,))?.extract() };
        let real = |v: &Bound<'py, PyAny>| -> PyResult<f64> { float.call1((v,))?.extract() };
        let optional = |v: &Bound<'py, PyAny>, f: &dyn Fn(&Bound<'py, PyAny>) -> PyResult<f64>| {
            if v.is_none() {
                Ok(None)
            } else {
                f(v).map(Some)
            }
        };
        let mut c = dsp::stream::ConditionerConfig::default();
        for (key, v) in dict.iter() {
            let key: String = key.extract()?;
            let named = |e: PyErr| {
                if e.is_instance_of::<PyTypeError>(py) {
                    ArgumentTypeError::new_err(format!("conditioner setting '{key}': {e}"))
                } else {
                    e
                }
            };
            match key.as_str() {
                "subcarrier_indices" => {
                    c.subcarrier_indices = if v.is_none() {
                        None
                    } else {
                        let a = v.extract::<PyReadonlyArray1<'_, f32>>().map_err(named)?;
                        Some(a.as_array().to_vec())
                    }
                }
                "n_subcarriers" => {
                    c.n_subcarriers = if v.is_none() {
                        None
                    } else {
                        Some(whole(&v).map_err(named)?)
                    }
                }
                "hampel_window" => c.hampel_window = whole(&v).map_err(named)?,
                "n_sigmas" => c.n_sigmas = real(&v).map_err(named)? as f32,
                "fs" => c.fs = real(&v).map_err(named)?,
                "low" => c.low = optional(&v, &real).map_err(named)?,
                "high" => c.high = optional(&v, &real).map_err(named)?,
                "order" => c.order = whole(&v).map_err(named)?,
                "motion_window" => c.motion_window = whole(&v).map_err(named)?,
                other => {
                    return Err(ArgumentTypeError::new_err(format!(
                        "unknown conditioner setting '{other}' (one of: {})",
                        SETTINGS.join(", ")
                    )))
                }
            }
        }
        Ok(Settings(c))
    }
}

type Conditioned<'py> = (
    Bound<'py, PyArrayDyn<f32>>,
    Bound<'py, PyArrayDyn<f32>>,
    Bound<'py, PyArray1<f64>>,
);

/// `settings`: see [`Settings`] (None: the defaults).
#[pyfunction]
#[pyo3(signature = (csi, rssi=None, settings=None, streaming=false))]
fn condition<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
    rssi: Option<PyReadonlyArray1<'py, f32>>,
    settings: Option<Settings>,
    streaming: bool,
) -> PyResult<Conditioned<'py>> {
    let cfg = settings.map(|s| s.0).unwrap_or_default();
    let v = csi.as_array().into_dimensionality::<Ix4>().map_err(|_| {
        DspError::new_err(format!(
            "condition: csi must be (n, n_tx, n_rx, n_sub), got shape {:?}",
            csi.as_array().shape()
        ))
    })?;
    room_for("condition", v.len(), 32)?;
    let r = opt_vec(&rssi);
    let (a, p, m) = released(py, || {
        if streaming {
            dsp::stream::condition_streaming(v, r.as_deref(), &cfg)
        } else {
            dsp::stream::condition(v, r.as_deref(), &cfg)
        }
    })?;
    Ok((
        a.into_dyn().into_pyarray(py),
        p.into_dyn().into_pyarray(py),
        Array1::from(m).into_pyarray(py),
    ))
}

/// Streaming conditioner: `push(csi, rssi=None) -> (amplitude, phase, motion or None)`.
#[pyclass(name = "Conditioner", module = "wifi_densepose._native.dsp")]
struct PyConditioner {
    inner: dsp::stream::Conditioner,
}

#[pymethods]
impl PyConditioner {
    /// `settings`: see [`Settings`] (None: the defaults).
    #[new]
    #[pyo3(signature = (settings=None))]
    fn new(settings: Option<Settings>) -> PyResult<Self> {
        let cfg = settings.map(|s| s.0).unwrap_or_default();
        Ok(PyConditioner {
            inner: dsp::stream::Conditioner::new(cfg).map_err(err)?,
        })
    }

    #[pyo3(signature = (csi, rssi=None))]
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        csi: PyReadonlyArrayDyn<'py, Complex32>,
        rssi: Option<f32>,
    ) -> PyResult<(F32Dyn<'py>, F32Dyn<'py>, Option<f64>)> {
        let v = csi.as_array().into_dimensionality::<Ix3>().map_err(|_| {
            DspError::new_err(format!(
                "Conditioner.push: csi must be (n_tx, n_rx, n_sub), got shape {:?}",
                csi.as_array().shape()
            ))
        })?;
        let inner = &mut self.inner;
        let out = released(py, || inner.push(v, rssi))?;
        Ok((
            out.amplitude.into_dyn().into_pyarray(py),
            out.phase.into_dyn().into_pyarray(py),
            out.motion,
        ))
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Timing aid for `benches/dsp_bench.py`: a call that does nothing, the floor of any
/// call into the extension.
#[pyfunction]
fn _call_floor() {}

/// Timing aid for `benches/dsp_bench.py`: what `condition_frame` does besides computing
/// (take a complex64 array, return two new float32 arrays of its shape), its floor.
#[pyfunction]
fn _io_floor<'py>(
    py: Python<'py>,
    csi: PyReadonlyArrayDyn<'py, Complex32>,
) -> (F32Dyn<'py>, F32Dyn<'py>) {
    let dims = csi.as_array().shape().to_vec();
    (
        PyArrayDyn::zeros(py, dims.clone(), false),
        PyArrayDyn::zeros(py, dims, false),
    )
}

/// Adds the `dsp` submodule to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let sub = PyModule::new(m.py(), "dsp")?;
    sub.add_function(wrap_pyfunction!(_call_floor, &sub)?)?;
    sub.add_function(wrap_pyfunction!(_io_floor, &sub)?)?;
    sub.add_function(wrap_pyfunction!(sanitize, &sub)?)?;
    sub.add_function(wrap_pyfunction!(condition_frame, &sub)?)?;
    sub.add_function(wrap_pyfunction!(conjugate_product, &sub)?)?;
    sub.add_function(wrap_pyfunction!(align_chains, &sub)?)?;
    sub.add_function(wrap_pyfunction!(hampel, &sub)?)?;
    sub.add_function(wrap_pyfunction!(normalize_amplitude, &sub)?)?;
    sub.add_function(wrap_pyfunction!(resample_complex, &sub)?)?;
    sub.add_function(wrap_pyfunction!(resample_real, &sub)?)?;
    sub.add_function(wrap_pyfunction!(butter_sos, &sub)?)?;
    sub.add_function(wrap_pyfunction!(butter_filter, &sub)?)?;
    sub.add_function(wrap_pyfunction!(spectrogram_complex, &sub)?)?;
    sub.add_function(wrap_pyfunction!(spectrogram_real, &sub)?)?;
    sub.add_function(wrap_pyfunction!(motion_statistic, &sub)?)?;
    sub.add_function(wrap_pyfunction!(presence_statistic, &sub)?)?;
    sub.add_function(wrap_pyfunction!(condition, &sub)?)?;
    sub.add_class::<PyConditioner>()?;
    m.add_submodule(&sub)?;
    // Registered as a module of its own too, so `import wifi_densepose._native.dsp` (and a
    // stub checker walking the package) finds it: an extension module is not a package.
    m.py()
        .import("sys")?
        .getattr("modules")?
        .set_item("wifi_densepose._native.dsp", &sub)?;
    Ok(())
}
