//! Python access to the model runtime (`wifi_densepose.model` wraps these): loading the
//! ONNX Runtime library by path, loading a model (contract checked in the engine) and
//! batched prediction on numpy arrays. Conversion and delegation only; inference runs
//! with the GIL released.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray4, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::model::{self, ModelError};

create_exception!(
    wifi_densepose._native,
    ModelLoadError,
    PyRuntimeError,
    "The ONNX Runtime library or a model could not be loaded, or a model does not fit the contract."
);

fn err(e: ModelError) -> PyErr {
    match e {
        ModelError::Input(m) => pyo3::exceptions::PyValueError::new_err(m),
        ModelError::Run(m) => PyRuntimeError::new_err(m),
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
struct NativeModel {
    inner: model::Model,
}

#[pymethods]
impl NativeModel {
    #[staticmethod]
    #[pyo3(signature = (path, threads=1))]
    fn load(py: Python<'_>, path: PathBuf, threads: usize) -> PyResult<Self> {
        let inner = py
            .detach(|| model::Model::load(&path, threads))
            .map_err(err)?;
        Ok(NativeModel { inner })
    }

    #[getter]
    fn version(&self) -> String {
        self.inner.version().to_string()
    }

    #[getter]
    fn slots(&self) -> usize {
        self.inner.slots()
    }

    #[getter]
    fn source(&self) -> String {
        self.inner.source().to_string()
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
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "windows must have shape (batch, 2, {}, {}), got {shape:?}",
                model::WINDOW,
                model::FEATURES
            )));
        }
        let data: Vec<f32> = match windows.as_slice() {
            Ok(s) => s.to_vec(),
            Err(_) => windows.as_array().iter().copied().collect(),
        };
        let p = py
            .detach(|| self.inner.predict(&data, batch))
            .map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("batch", p.batch)?;
        d.set_item("k", p.k)?;
        let arr = |v: Vec<f32>| -> Bound<'py, PyArray1<f32>> { v.into_pyarray(py) };
        d.set_item("presence", arr(p.presence))?;
        d.set_item("keypoints", arr(p.keypoints))?;
        d.set_item("boxes", arr(p.boxes))?;
        d.set_item("activity", arr(p.activity))?;
        Ok(d)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ModelLoadError", m.py().get_type::<ModelLoadError>())?;
    m.add_function(wrap_pyfunction!(model_init_runtime, m)?)?;
    m.add_class::<NativeModel>()?;
    Ok(())
}
