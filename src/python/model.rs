//! Python access to the model runtime (`wifi_densepose.model` wraps these): loading the
//! ONNX Runtime library by path, loading a model (contract checked in the engine) and
//! batched prediction on numpy arrays. Conversion and delegation only; inference runs
//! with the GIL released.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray4, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{InferenceError, InvalidArgumentError, ModelLoadError};
use crate::model::{self, ModelError};

fn err(e: ModelError) -> PyErr {
    match e {
        ModelError::Input(m) => InvalidArgumentError::new_err(m),
        ModelError::Run(m) => InferenceError::new_err(m),
        other => ModelLoadError::new_err(other.to_string()),
    }
}

/// Loads the ONNX Runtime shared library (once per process).
#[pyfunction]
fn model_init_runtime(py: Python<'_>, lib_path: PathBuf) -> PyResult<()> {
    py.detach(|| model::init_runtime(&lib_path)).map_err(err)
}

/// A loaded pose model.
#[pyclass(name = "NativeModel", module = "wifi_densepose._native", frozen)]
pub struct NativeModel {
    inner: std::sync::Arc<model::Model>,
}

impl NativeModel {
    /// The model, shared with a server's inference worker.
    pub fn shared(&self) -> std::sync::Arc<model::Model> {
        self.inner.clone()
    }
}

#[pymethods]
impl NativeModel {
    #[staticmethod]
    #[pyo3(signature = (path, threads=1, device="cpu"))]
    fn load(py: Python<'_>, path: PathBuf, threads: usize, device: &str) -> PyResult<Self> {
        let device: model::Device = device.parse().map_err(InvalidArgumentError::new_err)?;
        let inner = py
            .detach(|| model::Model::load_on(&path, threads, device))
            .map_err(err)?;
        Ok(NativeModel {
            inner: std::sync::Arc::new(inner),
        })
    }

    #[getter]
    fn version(&self) -> String {
        self.inner.version().to_string()
    }

    #[getter]
    fn device(&self) -> String {
        self.inner.device().to_string()
    }

    #[getter]
    fn has_dense_pose(&self) -> bool {
        self.inner.has_dense_pose()
    }

    #[getter]
    fn slots(&self) -> usize {
        self.inner.slots()
    }

    #[getter]
    fn source(&self) -> String {
        self.inner.source().to_string()
    }

    /// `"pose"` or `"classifier"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind() {
            model::ModelKind::Pose => "pose",
            model::ModelKind::Classifier(_) => "classifier",
        }
    }

    /// A classifier's class names (empty for a pose model).
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.inner
            .classifier()
            .map(|c| c.classes.clone())
            .unwrap_or_default()
    }

    /// A classifier's `(window_s, hop_s)`; None for a pose model.
    #[getter]
    fn window(&self) -> Option<(f64, f64)> {
        self.inner.classifier().map(|c| (c.window_s, c.hop_s))
    }

    /// A classifier on `features` float32 `(B, N)`: `(B, classes)` probabilities.
    fn classify<'py>(
        &self,
        py: Python<'py>,
        features: numpy::PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
        let batch = features.shape()[0];
        let data: Vec<f32> = features.as_array().iter().copied().collect();
        let n = self.inner.classifier().map_or(0, |c| c.classes.len());
        let out = py
            .detach(|| self.inner.classify(&data, batch))
            .map_err(err)?;
        let out = ndarray::Array2::from_shape_vec((batch, n), out)
            .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
        Ok(numpy::IntoPyArray::into_pyarray(out, py))
    }

    /// `windows` float32 `(B, 2, 32, 90)` -> dict of flat arrays plus `batch`, `k`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        windows: PyReadonlyArray4<'py, f32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let batch = windows.shape()[0];
        let shape = windows.shape().to_vec();
        let want = [
            batch,
            model::contract::CHANNELS,
            model::WINDOW,
            model::FEATURES,
        ];
        if shape != want {
            return Err(InvalidArgumentError::new_err(format!(
                "windows must have shape (batch, 2, {}, {}), got {shape:?}",
                model::WINDOW,
                model::FEATURES
            )));
        }
        // In chunks: ONNX Runtime's working memory grows with the batch (about 70 kB a
        // window for the bundled model), and a caller's 100,000 windows asked for some
        // 7 GB at once. A chunk is copied out of the array so the run holds no borrow of it
        // while the GIL is released.
        let per = model::contract::CHANNELS * model::WINDOW * model::FEATURES;
        let view = windows.as_array();
        let mut p: Option<model::Prediction> = None;
        let mut start = 0;
        while start < batch || (batch == 0 && p.is_none()) {
            let n = (batch - start).min(PREDICT_CHUNK);
            let chunk = view.slice(numpy::ndarray::s![start..start + n, .., .., ..]);
            let data: Vec<f32> = match chunk.as_slice() {
                Some(s) => s.to_vec(),
                None => chunk.iter().copied().collect(),
            };
            debug_assert_eq!(data.len(), n * per);
            let part = py.detach(|| self.inner.predict(&data, n)).map_err(err)?;
            p = Some(match p {
                None => part,
                Some(whole) => whole.joined(part),
            });
            start += n;
        }
        let p = p.expect("at least one chunk ran");
        let d = PyDict::new(py);
        d.set_item("batch", p.batch)?;
        d.set_item("k", p.k)?;
        let arr = |v: Vec<f32>| -> Bound<'py, PyArray1<f32>> { v.into_pyarray(py) };
        d.set_item("presence", arr(p.presence))?;
        d.set_item("keypoints", arr(p.keypoints))?;
        d.set_item("boxes", arr(p.boxes))?;
        d.set_item("activity", arr(p.activity))?;
        if let (Some(part), Some(uv)) = (p.dense_part, p.dense_uv) {
            d.set_item("dense_part", arr(part))?;
            d.set_item("dense_uv", arr(uv))?;
        }
        Ok(d)
    }
}

/// The most windows `Model.predict` gives ONNX Runtime in one call.
const PREDICT_CHUNK: usize = 1024;

/// The windows the live pipeline would give the model for a recording `(n, n_tx, 3,
/// n_sub)` complex64, hop 1: `(n - 31, 2, 32, 90)` float32 (compare
/// `wifi_densepose.features.windows_from_recording`).
#[pyfunction]
fn live_windows<'py>(
    py: Python<'py>,
    csi: numpy::PyReadonlyArray4<'py, num_complex::Complex32>,
) -> PyResult<Bound<'py, numpy::PyArray4<f32>>> {
    let frames: Vec<crate::csi::CsiFrame> = csi
        .as_array()
        .outer_iter()
        .enumerate()
        .map(|(i, f)| {
            crate::csi::CsiFrame::from_csi(
                i as f64 * 0.01,
                f.to_owned(),
                crate::csi::CsiFormat::Injected,
            )
        })
        .collect();
    let flat = py
        .detach(|| crate::pipeline::windows::recording_windows(&frames))
        .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
    let per = model::contract::CHANNELS * model::WINDOW * model::FEATURES;
    let n = flat.len() / per;
    let shape = (n, model::contract::CHANNELS, model::WINDOW, model::FEATURES);
    let arr = ndarray::Array4::from_shape_vec(shape, flat)
        .map_err(|e| InferenceError::new_err(e.to_string()))?;
    Ok(arr.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(model_init_runtime, m)?)?;
    m.add_function(wrap_pyfunction!(live_windows, m)?)?;
    m.add_class::<NativeModel>()?;
    Ok(())
}
