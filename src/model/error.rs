//! Errors of the model runtime.

use thiserror::Error;

/// Why the runtime or a model could not be loaded, or a prediction failed.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The ONNX Runtime library could not be loaded (missing, or not a library).
    #[error("could not load the ONNX Runtime library at {path}: {message}. Install it with `pip install \"onnxruntime>=1.{min_minor}\"`")]
    RuntimeMissing {
        /// The library path tried.
        path: String,
        /// What the loader said.
        message: String,
        /// The oldest ONNX Runtime 1.x minor version this build works with.
        min_minor: u32,
    },
    /// The ONNX Runtime library is older than the API level this build needs.
    #[error("the ONNX Runtime library at {path} is version {found}; this build needs 1.{min_minor} or newer (`pip install -U \"onnxruntime>=1.{min_minor}\"`)")]
    RuntimeTooOld {
        /// The library path loaded.
        path: String,
        /// Its version.
        found: String,
        /// The oldest ONNX Runtime 1.x minor version this build works with.
        min_minor: u32,
    },
    /// A model was used before [`super::init_runtime`].
    #[error("the ONNX Runtime library is not loaded: call init_runtime(path) first")]
    NotInitialized,
    /// The model file could not be read or parsed by ONNX Runtime.
    #[error("could not load model {path}: {message}")]
    Load {
        /// The model file.
        path: String,
        /// What ONNX Runtime said.
        message: String,
    },
    /// The model's inputs or outputs do not fit the contract.
    #[error("model {path} does not fit the contract (docs/model.md): {message}")]
    Contract {
        /// The model file.
        path: String,
        /// Which input or output, the shape expected and the shape found.
        message: String,
    },
    /// Input windows of the wrong shape.
    #[error("bad input: {0}")]
    Input(String),
    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Run(String),
}
