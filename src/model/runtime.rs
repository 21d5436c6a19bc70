//! The ONNX Runtime session behind [`Model`]: loading (with the contract check) and
//! batched inference.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use super::contract::{self, CHANNELS, DENSE_OUTPUTS, FEATURES, INPUT, OUTPUTS, WINDOW};
use super::error::ModelError;

/// The ONNX Runtime minor version this build needs (`ort` feature `api-31`).
pub(crate) const MIN_ORT_MINOR: u32 = 31;

static ENV: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads the ONNX Runtime shared library at `lib_path` (once per process; later calls
/// return at once). The Python front passes the library shipped in the `onnxruntime`
/// wheel.
pub fn init_runtime(lib_path: &Path) -> Result<(), ModelError> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if ENV.get().is_some() {
        return Ok(());
    }
    let path = lib_path.display().to_string();
    if !lib_path.exists() {
        return Err(ModelError::RuntimeMissing {
            path,
            message: "no such file".into(),
            min_minor: MIN_ORT_MINOR,
        });
    }
    let builder = ort::init_from(lib_path).map_err(|e| match e {
        ort::LoadDynamicError::BadVersion { version_str, .. } => ModelError::RuntimeTooOld {
            path: path.clone(),
            found: version_str,
            min_minor: MIN_ORT_MINOR,
        },
        other => ModelError::RuntimeMissing {
            path: path.clone(),
            message: other.to_string(),
            min_minor: MIN_ORT_MINOR,
        },
    })?;
    let env =
        builder
            .with_name("wifi_densepose")
            .build()
            .map_err(|e| ModelError::RuntimeMissing {
                path,
                message: e.to_string(),
                min_minor: MIN_ORT_MINOR,
            })?;
    let _ = ENV.set(env);
    Ok(())
}

/// Checks the session's output `name` against the contract (see [`contract::check`]).
fn check_output(session: &Session, name: &str, slots: &mut Option<usize>) -> Result<(), String> {
    let out = session.outputs().iter().find(|o| o.name() == name);
    contract::check(
        "output",
        name,
        out.map(|o| o.dtype()),
        &contract::output_shape(name),
        slots,
    )
}

/// Whether [`init_runtime`] has succeeded in this process.
pub fn runtime_initialized() -> bool {
    ENV.get().is_some()
}

/// Model outputs for a batch of `batch` windows and `k` person slots, row-major.
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    /// Windows in the batch.
    pub batch: usize,
    /// Person slots per window.
    pub k: usize,
    /// `(batch, k)` presence probabilities.
    pub presence: Vec<f32>,
    /// `(batch, k, 17, 3)`: `(u, v, confidence)` per keypoint.
    pub keypoints: Vec<f32>,
    /// `(batch, k, 4)`: `[u_min, v_min, u_max, v_max]`.
    pub boxes: Vec<f32>,
    /// `(batch, k, 5)`: activity probabilities.
    pub activity: Vec<f32>,
    /// `(batch, k, 25, PATCH, PATCH)` part probabilities, when the model has dense pose.
    pub dense_part: Option<Vec<f32>>,
    /// `(batch, k, 2, PATCH, PATCH)` U, V, when the model has dense pose.
    pub dense_uv: Option<Vec<f32>>,
}

impl Prediction {
    /// This batch's windows followed by `next`'s (the same model's outputs).
    pub fn joined(mut self, next: Prediction) -> Prediction {
        self.batch += next.batch;
        self.presence.extend(next.presence);
        self.keypoints.extend(next.keypoints);
        self.boxes.extend(next.boxes);
        self.activity.extend(next.activity);
        if let (Some(a), Some(b)) = (self.dense_part.as_mut(), next.dense_part) {
            a.extend(b);
        }
        if let (Some(a), Some(b)) = (self.dense_uv.as_mut(), next.dense_uv) {
            a.extend(b);
        }
        self
    }
}

/// Where a model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider on this GPU (needs the `onnxruntime-gpu` wheel).
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = String;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("device must be 'cpu', 'cuda' or 'cuda:N', not {s:?}");
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => {
                let n = s.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(Device::Cuda)
                    .ok_or_else(bad)
            }
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What a model gives.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelKind {
    /// Person slots with keypoints, boxes and activities (the pose contract).
    Pose,
    /// One class per window of features (the classifier contract).
    Classifier(super::classifier::ClassifierSpec),
}

/// A model that fits its contract, ready to run.
pub struct Model {
    session: Mutex<Session>,
    kind: ModelKind,
    k: usize,
    version: String,
    source: String,
    #[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
    device: Device,
    dense: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("version", &self.version)
            .field("k", &self.k)
            .field("source", &self.source)
            .finish()
    }
}

impl Model {
    /// Loads an ONNX model file to run on the CPU and checks it against the contract.
    pub fn load(path: &Path, intra_threads: usize) -> Result<Model, ModelError> {
        Self::load_on(path, intra_threads, Device::Cpu)
    }

    /// Loads an ONNX model file to run on `device`.
    pub(crate) fn load_on(
        path: &Path,
        intra_threads: usize,
        device: Device,
    ) -> Result<Model, ModelError> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ModelError::Load {
            path: source.clone(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &source, intra_threads, device)
    }

    /// Loads an ONNX model from memory; `source` names it in messages.
    pub(crate) fn from_bytes(
        bytes: &[u8],
        source: &str,
        intra_threads: usize,
        device: Device,
    ) -> Result<Model, ModelError> {
        let env = ENV.get().ok_or(ModelError::NotInitialized)?;
        let load = |e: String| ModelError::Load {
            path: source.to_string(),
            message: e,
        };
        let mut builder = Session::builder(env).map_err(|e| load(e.to_string()))?;
        if let Device::Cuda(id) = device {
            use ort::ep::ExecutionProvider;
            // Asked for the GPU: a CPU-only runtime is an error, never a silent fallback.
            let cuda = ort::ep::CUDA::default().with_device_id(id);
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err(load(format!(
                    "the CUDA execution provider is not in this ONNX Runtime build; install \
                     the GPU build (`pip uninstall onnxruntime && pip install \
                     \"onnxruntime-gpu>=1.{MIN_ORT_MINOR}\"`) or use device 'cpu'"
                )));
            }
            builder = builder
                .with_execution_providers([cuda.build().error_on_failure()])
                .map_err(|e| load(format!("could not use CUDA device {id}: {e}")))?;
        }
        if intra_threads > 0 {
            builder = builder
                .with_intra_threads(intra_threads)
                .map_err(|e| load(e.to_string()))?;
        }
        let session = builder
            .commit_from_memory(bytes)
            .map_err(|e| load(e.to_string()))?;
        let contract_error = |message| ModelError::Contract {
            path: source.to_string(),
            message,
        };
        let (kind, k, dense) = if super::classifier::is_classifier(&session) {
            let spec = super::classifier::check(&session).map_err(contract_error)?;
            (ModelKind::Classifier(spec), 0, false)
        } else {
            let (k, dense) = Self::check_contract(&session).map_err(contract_error)?;
            (ModelKind::Pose, k, dense)
        };
        let version = session
            .metadata()
            .ok()
            .and_then(|m| m.custom(contract::VERSION_KEY))
            .unwrap_or_else(|| "unversioned".to_string());
        Ok(Model {
            session: Mutex::new(session),
            kind,
            k,
            version,
            source: source.to_string(),
            device,
            dense,
        })
    }

    /// K, and whether the model has the optional dense-pose outputs.
    fn check_contract(session: &Session) -> Result<(usize, bool), String> {
        let inputs = session.inputs();
        if inputs.len() != 1 {
            let names: Vec<&str> = inputs.iter().map(|o| o.name()).collect();
            return Err(format!(
                "expected exactly one input `{INPUT}` of shape {:?}, found {} inputs {names:?}",
                contract::input_shape(),
                inputs.len()
            ));
        }
        let mut slots = None;
        let input = &inputs[0];
        if input.name() != INPUT {
            return Err(format!(
                "expected the input to be named `{INPUT}`, found `{}`",
                input.name()
            ));
        }
        contract::check(
            "input",
            INPUT,
            Some(input.dtype()),
            &contract::input_shape(),
            &mut slots,
        )?;
        for name in OUTPUTS {
            let out = session.outputs().iter().find(|o| o.name() == name);
            if out.is_none() {
                let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
                return Err(format!(
                    "missing output `{name}`: expected outputs {OUTPUTS:?}, found {names:?}"
                ));
            }
            check_output(session, name, &mut slots)?;
        }
        let present: Vec<&str> = DENSE_OUTPUTS
            .into_iter()
            .filter(|n| session.outputs().iter().any(|o| o.name() == *n))
            .collect();
        if present.len() == 1 {
            return Err(format!(
                "dense pose needs both outputs {DENSE_OUTPUTS:?}; found only `{}`",
                present[0]
            ));
        }
        for name in &present {
            check_output(session, name, &mut slots)?;
        }
        let k = slots.ok_or_else(|| "no output fixes K".to_string())?;
        Ok((k, present.len() == DENSE_OUTPUTS.len()))
    }

    /// What the model gives: pose, or classes.
    pub fn kind(&self) -> &ModelKind {
        &self.kind
    }

    /// The classifier's spec, when the model is one.
    pub fn classifier(&self) -> Option<&super::classifier::ClassifierSpec> {
        match &self.kind {
            ModelKind::Classifier(spec) => Some(spec),
            ModelKind::Pose => None,
        }
    }

    /// Runs a classifier on `features` (row-major `(batch, N)`): `(batch, classes)`
    /// probabilities.
    pub fn classify(&self, features: &[f32], batch: usize) -> Result<Vec<f32>, ModelError> {
        use crate::sensing::window_features::LEN;
        let Some(spec) = self.classifier() else {
            return Err(ModelError::Input("this model is not a classifier".into()));
        };
        if features.len() != batch * LEN {
            return Err(ModelError::Input(format!(
                "expected {batch} rows of {LEN} features, got {} values",
                features.len()
            )));
        }
        if batch == 0 {
            return Ok(Vec::new());
        }
        let input = Tensor::from_array(([batch, LEN], features.to_vec().into_boxed_slice()))
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run(ort::inputs![super::classifier::INPUT => input])
            .map_err(|e| ModelError::Run(e.to_string()))?;
        let (_, data) = outputs[super::classifier::OUTPUT]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Run(e.to_string()))?;
        let want = batch * spec.classes.len();
        if data.len() != want {
            return Err(ModelError::Run(format!(
                "output `class_probs` has {} values, expected {want}",
                data.len()
            )));
        }
        Ok(data.to_vec())
    }

    /// Whether the model gives dense pose (`dense_part`, `dense_uv`).
    #[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
    pub(crate) fn has_dense_pose(&self) -> bool {
        self.dense
    }

    /// The model version string (ONNX metadata `wifi_densepose.version`).
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Person slots per window.
    #[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
    pub(crate) fn slots(&self) -> usize {
        self.k
    }

    /// Where the model runs.
    #[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
    pub(crate) fn device(&self) -> Device {
        self.device
    }

    /// Where the model came from (a path, or a name).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs `windows` (row-major `(batch, 2, W, F)`, float32) in one ONNX Runtime call.
    pub fn predict(&self, windows: &[f32], batch: usize) -> Result<Prediction, ModelError> {
        if self.classifier().is_some() {
            return Err(ModelError::Input(
                "this model is a classifier: it takes window features, not CSI windows".into(),
            ));
        }
        let per = CHANNELS * WINDOW * FEATURES;
        if windows.len() != batch * per {
            return Err(ModelError::Input(format!(
                "expected {batch} windows of shape ({CHANNELS}, {WINDOW}, {FEATURES}) = {} values, got {}",
                batch * per,
                windows.len()
            )));
        }
        if batch == 0 {
            return Ok(Prediction {
                batch: 0,
                k: self.k,
                ..Prediction::default()
            });
        }
        let input = Tensor::from_array((
            [batch, CHANNELS, WINDOW, FEATURES],
            windows.to_vec().into_boxed_slice(),
        ))
        .map_err(|e| ModelError::Input(e.to_string()))?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run(ort::inputs![INPUT => input])
            .map_err(|e| ModelError::Run(e.to_string()))?;
        let take = |name: &str, per_slot: usize| -> Result<Vec<f32>, ModelError> {
            let (_, data) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| ModelError::Run(e.to_string()))?;
            let want = batch * self.k * per_slot;
            if data.len() != want {
                return Err(ModelError::Run(format!(
                    "output `{name}` has {} values, expected {want}",
                    data.len()
                )));
            }
            Ok(data.to_vec())
        };
        let patch = contract::PATCH * contract::PATCH;
        let (dense_part, dense_uv) = if self.dense {
            (
                Some(take("dense_part", contract::DENSE_PARTS * patch)?),
                Some(take("dense_uv", 2 * patch)?),
            )
        } else {
            (None, None)
        };
        Ok(Prediction {
            batch,
            k: self.k,
            presence: take("presence", 1)?,
            keypoints: take("keypoints", contract::KEYPOINTS * 3)?,
            boxes: take("boxes", contract::BOX)?,
            activity: take("activity", contract::ACTIVITY_NAMES.len())?,
            dense_part,
            dense_uv,
        })
    }
}
