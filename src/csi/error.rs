//! The one error type every CSI reader returns.
//!
//! A reader that meets something it cannot use says *which file*, *at which byte* and
//! *what was wrong*, so a researcher can open the file in a hex editor at that offset.
//! Some errors leave the record framing intact (a bad record inside a well-formed
//! length prefix, a garbled CSV line); the readers then go on with the next record and
//! the caller sees the error in [`crate::csi::Recording::errors`]. Errors that lose the
//! framing (a truncated record, an impossible length) end the stream.

use std::io;

/// What went wrong while reading CSI, with the file and the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    /// The operating system refused to open or read the file.
    #[error("{file}, byte {offset}: I/O error: {source}")]
    Io {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file ends in the middle of a record (typically a capture stopped mid-write).
    #[error("{file}, byte {offset}: truncated {what}: it needs {needed} bytes but the file has only {available} left")]
    Truncated {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// The part that was cut (a record, a header...), in words.
        what: String,
        /// Bytes the part needs from `offset`.
        needed: u64,
        /// Bytes the file has left from `offset`.
        available: u64,
    },
    /// A record whose content contradicts the format (impossible antenna count,
    /// length fields that disagree, bad magic number...).
    #[error("{file}, byte {offset}: {problem}")]
    Malformed {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// What was wrong, in words.
        problem: String,
    },
    /// A well-formed record of a kind this reader does not decode.
    #[error("{file}, byte {offset}: not supported: {problem}")]
    Unsupported {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// What was wrong, in words.
        problem: String,
    },
    /// A record this reader could decode with an option the caller did not give
    /// (which nexmon chip, which byte order...); `option` says which, as `read_csi`
    /// spells it (`nexmon_chip="bcm4339"`).
    #[error("{file}, byte {offset}: {problem}; read with {option}")]
    NeedsOption {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// What was wrong, in words.
        problem: String,
        /// The option that decodes the record, as `read_csi` spells it.
        option: String,
    },
    /// The whole file gave no frame. `summary` says why: the problems met, grouped
    /// and counted, the first one with its offset, and the option that fixes them
    /// where one does; `offset` is the first problem's.
    #[error("{file}: {summary}")]
    NoFrames {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// The problems met, grouped and counted (see the variant).
        summary: String,
    },
    /// Format detection could not tell what the file is.
    #[error("{file}, byte {offset}: cannot tell the CSI format: {problem}")]
    UnknownFormat {
        /// The file (or stream name) the error is about.
        file: String,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// What was wrong, in words.
        problem: String,
    },
}

impl CsiError {
    /// The file (or stream name) the error is about.
    pub fn file(&self) -> &str {
        match self {
            CsiError::Io { file, .. }
            | CsiError::Truncated { file, .. }
            | CsiError::Malformed { file, .. }
            | CsiError::Unsupported { file, .. }
            | CsiError::NeedsOption { file, .. }
            | CsiError::NoFrames { file, .. }
            | CsiError::UnknownFormat { file, .. } => file,
        }
    }

    /// Byte offset from the start of the file where the offending record begins
    /// (or, for I/O errors, how far reading had got).
    pub fn offset(&self) -> u64 {
        match self {
            CsiError::Io { offset, .. }
            | CsiError::Truncated { offset, .. }
            | CsiError::Malformed { offset, .. }
            | CsiError::Unsupported { offset, .. }
            | CsiError::NeedsOption { offset, .. }
            | CsiError::NoFrames { offset, .. }
            | CsiError::UnknownFormat { offset, .. } => *offset,
        }
    }

    /// What was wrong, without the file and offset (errors of one kind read alike).
    pub fn problem(&self) -> String {
        match self {
            CsiError::Io { source, .. } => format!("I/O error: {source}"),
            CsiError::Truncated {
                what,
                needed,
                available,
                ..
            } => format!(
                "truncated {what}: it needs {needed} bytes but the file has only {available} left"
            ),
            CsiError::Malformed { problem, .. } => problem.clone(),
            CsiError::Unsupported { problem, .. } => format!("not supported: {problem}"),
            CsiError::NeedsOption { problem, .. } => problem.clone(),
            CsiError::NoFrames { summary, .. } => summary.clone(),
            CsiError::UnknownFormat { problem, .. } => {
                format!("cannot tell the CSI format: {problem}")
            }
        }
    }

    /// The reader option that would fix this error, where one would.
    pub fn fix(&self) -> Option<&str> {
        match self {
            CsiError::NeedsOption { option, .. } => Some(option),
            _ => None,
        }
    }

    pub(crate) fn malformed(file: &str, offset: u64, problem: impl Into<String>) -> Self {
        CsiError::Malformed {
            file: file.to_string(),
            offset,
            problem: problem.into(),
        }
    }

    pub(crate) fn unsupported(file: &str, offset: u64, problem: impl Into<String>) -> Self {
        CsiError::Unsupported {
            file: file.to_string(),
            offset,
            problem: problem.into(),
        }
    }
}
