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

/// Errors starting or running the server.
#[derive(Debug, Error)]
pub enum ServerError {
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
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("cannot open serial port {port}: {source}")]
    Serial {
        port: String,
        source: std::io::Error,
    },
}
