//! Inference through ONNX Runtime: the pose model behind one fixed contract.
//!
//! Data flow: raw CSI frames are conditioned by [`crate::dsp`] (sanitize, normalize,
//! resample to 30 subcarriers, causal Hampel); the last [`contract::WINDOW`] conditioned
//! packets of an environment form one window `(2, W, F)` (amplitude, sanitized phase);
//! windows of environments due at the same moment are stacked into one batch
//! `(B, 2, W, F)` and run by [`Model::predict`] in one ONNX Runtime call; the result,
//! per window and per person slot, is a presence score, 17 COCO keypoints `(u, v, conf)`
//! in the simulator's top-down floor frame, a box and five activity scores
//! ([`Prediction`]), which tracking and analytics consume. The ONNX Runtime library is
//! loaded at run time ([`init_runtime`]) from a path the caller gives: the Python
//! front finds it inside the installed `onnxruntime` wheel. A model whose inputs or
//! outputs do not fit [`contract`] is refused at load ([`ModelError::Contract`]).
//! The contract in words, with units and frame: `docs/model.md`.

pub mod classifier;
pub mod contract;
pub mod error;
pub mod runtime;

pub use classifier::ClassifierSpec;
pub use contract::{ACTIVITY_NAMES, FEATURES, KEYPOINTS, WINDOW};
pub use error::ModelError;
pub use runtime::{init_runtime, runtime_initialized, Device, Model, ModelKind, Prediction};
