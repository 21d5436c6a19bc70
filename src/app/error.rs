//! The application's errors: what running environments, their sources, calibration and
//! the model can refuse or fail at. The server's own errors pass through unchanged
//! ([`AppError::Server`]).
use thiserror::Error;

use crate::server::ServerError;

/// The longest environment id taken, in bytes: ids travel in every event, in broker
/// stream keys and in log lines.
pub const MAX_ENVIRONMENT_ID_BYTES: usize = 256;

/// A value the application refused where it was given, before anything ran (in Python an
/// `InvalidArgumentError`, a `ValueError`). The names are the parameters' as the Python
/// `Server` spells them.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AppArgumentError {
    /// An environment id is the empty string.
    #[error("environment_id must not be empty")]
    EmptyEnvironmentId,
    /// An environment id longer than [`MAX_ENVIRONMENT_ID_BYTES`] or holding a control
    /// character (`{0}`: its first characters, escaped).
    #[error(
        "environment_id must be at most {MAX_ENVIRONMENT_ID_BYTES} bytes with no control characters, got {0}"
    )]
    EnvironmentId(String),
    /// One environment more than a server runs ([`crate::server::MAX_ENVIRONMENTS`]).
    #[error("a server runs at most {max} environments; {0} would be one more", max = crate::server::MAX_ENVIRONMENTS)]
    TooManyEnvironments(String),
    /// A replay or simulation speed that is not 0 or from `MIN_SPEED` (0.001, `sources.rs`)
    /// up (finite).
    #[error("speed must be 0 (as fast as possible) or from 0.001 (a thousandth of real time) up, not {0}")]
    Speed(f64),
    /// A device profile name that is none of [`crate::sim::device::DEVICE_NAMES`].
    #[error("unknown device '{0}' (one of: {names})", names = crate::sim::device::DEVICE_NAMES.join(", "))]
    UnknownDevice(String),
    /// An inference rate outside (0, 1000] windows per second.
    #[error("the inference rate must be above 0 and at most 1000 windows per second, not {0}")]
    InferenceRate(f64),
    /// Injected CSI of neither 3 nor 4 dimensions (`shape`: the one given).
    #[error("csi must be (n_tx, n_rx, n_sub) or (n, n_tx, n_rx, n_sub); got {} dimensions {shape:?}", shape.len())]
    CsiDimensions {
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A calibration's time limit not above 0 s, or over a day.
    #[error("timeout_s must be above 0 and at most a day, not {0}")]
    CalibrationTimeout(f64),
    /// Injected CSI with an axis of length 0.
    #[error("csi has an empty axis: shape {0:?}")]
    CsiEmptyAxis(Vec<usize>),
    /// Not one timestamp per injected frame.
    #[error("{timestamps} timestamps for {frames} frames")]
    TimestampCount {
        /// Timestamps given.
        timestamps: usize,
        /// Frames in the batch.
        frames: usize,
    },
    /// A receiver name that is empty, over 64 characters or holds a control character.
    #[error("a receiver name is 1-64 characters without control characters, not {0:?}")]
    ReceiverName(String),
}

/// Errors of the application: the server's, and those of the environments, their
/// sources, calibration and the model.
#[derive(Debug, Error)]
pub enum AppError {
    /// The server refused or stopped (`NotRunning` also when an environment's task is gone:
    /// environments end only with the server's runtime).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A value refused where it was given.
    #[error(transparent)]
    InvalidArgument(#[from] AppArgumentError),
    /// No environment of that id was added.
    #[error("environment '{id}' was not added (add_environment first; known: {})", known.join(", "))]
    UnknownEnvironment {
        /// The id asked for.
        id: String,
        /// The environments that were added, sorted.
        known: Vec<String>,
    },
    /// A configuration or run-time setting refused: the application's configuration keys,
    /// a `configure` change, a room size, calibration seconds, a UDP route, a serial
    /// source's settings.
    #[error("{0}")]
    InvalidConfig(String),
    /// The inference worker thread could not start.
    #[error("{0}")]
    Runtime(String),
    /// The UDP listener's address is taken or not this host's.
    #[error("cannot bind {addr}: {source}")]
    UdpBind {
        /// `host:port` as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A recording to replay that is not a file.
    #[error("no such recording: {}", .0.display())]
    RecordingNotFound(std::path::PathBuf),
    /// A calibration refused, failed or timed out.
    #[error("calibration: {0}")]
    Calibration(String),
    /// A serial port that cannot be opened.
    #[error("cannot open serial port {port}: {source}")]
    Serial {
        /// The port's path.
        port: String,
        /// Why.
        source: std::io::Error,
    },
}

impl AppError {
    /// The server (and with it every environment's task) has stopped.
    pub(crate) fn stopped() -> Self {
        AppError::Server(ServerError::NotRunning)
    }
}
