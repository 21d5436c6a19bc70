//! The server's errors, each written for the person who reads it.
use thiserror::Error;

/// Why a token was refused; the handshake answers 401 with `reason()`.
#[derive(Debug, Error)]
pub enum AuthError {
    /// No token in the query or the `Authorization` header.
    #[error("no token: pass ?token=<jwt> or an `Authorization: Bearer <jwt>` header")]
    Missing,
    /// Not a JWT, or its claims are not the ones expected.
    #[error("token is malformed: {0}")]
    Malformed(String),
    /// Signed with another key.
    #[error("token signature does not verify")]
    BadSignature,
    /// Past its `exp` (with the configured leeway).
    #[error("token has expired")]
    Expired,
    /// Signed with an algorithm other than the server's.
    #[error("token algorithm refused: {0}")]
    WrongAlgorithm(String),
    /// The server's own key is unusable.
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

/// A server setting refused where it was given, before anything ran (in Python an
/// `InvalidArgumentError`, a `ValueError`). The names are the parameters' as the Python
/// `Server` and the configuration spell them. The application's arguments (speeds, rates,
/// CSI shapes) are `crate::app::AppArgumentError`.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ArgumentError {
    /// An empty HS256 secret.
    #[error("jwt_secret must not be empty")]
    EmptyJwtSecret,
    /// A public key with HS256.
    #[error("jwt_public_key needs jwt_algorithm='RS256' or 'ES256'")]
    PublicKeyNeedsAsymmetric,
    /// RS256/ES256 without a public key.
    #[error("jwt_algorithm='{0}' needs jwt_public_key (PEM)")]
    MissingPublicKey(String),
    /// Both a secret and a public key.
    #[error("give jwt_secret (HS256) or jwt_public_key (RS256/ES256), not both")]
    SecretAndPublicKey,
    /// An algorithm the server does not support.
    #[error("jwt_algorithm '{0}' is not supported (HS256, RS256, ES256)")]
    UnsupportedAlgorithm(String),
}

/// Errors starting or running the WebSocket server. What the application adds on top
/// (environments, their sources, calibration, the model) is `crate::app::AppError`.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A value refused where it was given.
    #[error(transparent)]
    InvalidArgument(#[from] ArgumentError),
    /// The address is taken or not this host's.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A token or the key refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An event [`crate::server::Server::publish`] cannot publish.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// Called after the server stopped.
    #[error("the server is not running")]
    NotRunning,
    /// A server setting refused (a broker command without a broker configured).
    #[error("{0}")]
    InvalidConfig(String),
    /// The server's runtime could not start.
    #[error("{0}")]
    Runtime(String),
    /// No broker configured, or it failed a command.
    #[error("broker: {0}")]
    Broker(String),
}
