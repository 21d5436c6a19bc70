//! The server's errors, each written for the person who reads it.
use thiserror::Error;

/// Why a token was refused; the handshake answers 401 with `reason()`.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("no token: pass ?token=<jwt> or an `Authorization: Bearer <jwt>` header")]
    Missing,
    #[error("token is malformed: {0}")]
    Malformed(String),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token algorithm refused: {0}")]
    WrongAlgorithm(String),
    #[error("JWT key configuration: {0}")]
    BadKey(String),
}

impl AuthError {
    /// A short machine-readable reason for the 401 body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::WrongAlgorithm(_) => "algorithm_refused",
            AuthError::BadKey(_) => "server_key_error",
        }
    }
}

/// A value refused where it was given, before anything ran (in Python an
/// `InvalidArgumentError`, a `ValueError`). The names are the parameters' as the Python
/// `Server` and the configuration spell them.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ArgumentError {
    #[error("environment_id must not be empty")]
    EmptyEnvironmentId,
    #[error("speed must be >= 0 (0: as fast as possible), not {0}")]
    Speed(f64),
    #[error("the inference rate must be above 0 and at most 1000 windows per second, not {0}")]
    InferenceRate(f64),
    #[error("csi must be (n_tx, n_rx, n_sub) or (n, n_tx, n_rx, n_sub); got {} dimensions {shape:?}", shape.len())]
    CsiDimensions { shape: Vec<usize> },
    #[error("csi has an empty axis: shape {0:?}")]
    CsiEmptyAxis(Vec<usize>),
    #[error("{timestamps} timestamps for {frames} frames")]
    TimestampCount { timestamps: usize, frames: usize },
    #[error("jwt_secret must not be empty")]
    EmptyJwtSecret,
    #[error("jwt_public_key needs jwt_algorithm='RS256' or 'ES256'")]
    PublicKeyNeedsAsymmetric,
    #[error("jwt_algorithm='{0}' needs jwt_public_key (PEM)")]
    MissingPublicKey(String),
    #[error("give jwt_secret (HS256) or jwt_public_key (RS256/ES256), not both")]
    SecretAndPublicKey,
    #[error("jwt_algorithm '{0}' is not supported (HS256, RS256, ES256)")]
    UnsupportedAlgorithm(String),
}

/// Errors starting or running the server.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgumentError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("the server is not running")]
    NotRunning,
    #[error("{0}")]
    UnknownEnvironment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    Runtime(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("no such recording: {}", .0.display())]
    RecordingNotFound(std::path::PathBuf),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("cannot open serial port {port}: {source}")]
    Serial {
        port: String,
        source: std::io::Error,
    },
}
