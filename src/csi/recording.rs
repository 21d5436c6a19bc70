//! Opening a file in any format and reading it whole.
//!
//! [`open`] picks the reader (detecting the format unless the caller names it) and
//! returns a streaming iterator; [`read_all`] collects a whole file into a
//! [`Recording`], keeping every frame read before a corruption together with the
//! error, so valid data before a bad byte is never lost.

use std::io::{Chain, Cursor, Read};
use std::path::Path;

use super::atheros::AtherosOptions;
use super::detect::{detect_format, DETECT_BYTES};
use super::error::CsiError;
use super::file::{hole_of, RegularFile};
pub use super::formats::CsiReader;
use super::intel5300::Intel5300Options;
use super::nexmon::NexmonOptions;
use super::summary;
use super::{CsiFormat, CsiFrame};

/// Per-format options; the defaults follow the official readers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Options of the Intel 5300 reader.
    pub intel5300: Intel5300Options,
    /// Options of the Atheros reader (the header byte order).
    pub atheros: AtherosOptions,
    /// Options of the nexmon reader (chip, bandwidth, subcarrier order).
    pub nexmon: NexmonOptions,
}

/// A file reader: the bytes read for detection, then the rest of the file.
pub type FileReader = CsiReader<Chain<Cursor<Vec<u8>>, RegularFile>>;

/// Opens `path`, detecting the format unless `format` names it. A FIFO, socket,
/// device or directory is refused (it could block forever or never end); see
/// [`super::file`] for sparse files.
pub fn open(
    path: impl AsRef<Path>,
    format: Option<CsiFormat>,
    options: &ReadOptions,
) -> Result<FileReader, CsiError> {
    open_file(path.as_ref(), format, options).map(|(reader, _)| reader)
}

/// [`open`], also returning the bytes the file holds on disk (holes excluded).
pub(crate) fn open_file(
    path: &Path,
    format: Option<CsiFormat>,
    options: &ReadOptions,
) -> Result<(FileReader, u64), CsiError> {
    let name = path.display().to_string();
    let io_err = |e: std::io::Error, offset: u64| match hole_of(&e) {
        Some(hole) => CsiError::malformed(&name, hole.offset, hole.to_string()),
        None if e.kind() == std::io::ErrorKind::InvalidInput => {
            CsiError::unsupported(&name, offset, e.to_string())
        }
        None => CsiError::Io {
            file: name.clone(),
            offset,
            source: e,
        },
    };
    let mut file = RegularFile::open(path).map_err(|e| io_err(e, 0))?;
    let stored = file.stored_len();
    // The head for detection; a hole inside it ends the head, and the reader meets
    // the same hole again right after it (the file stays positioned there).
    let mut head = vec![0u8; DETECT_BYTES];
    let mut got = 0;
    let mut hole = None;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if hole_of(&e).is_some() => {
                hole = Some(e);
                break;
            }
            Err(e) => return Err(io_err(e, got as u64)),
        }
    }
    head.truncate(got);
    let format = match format {
        Some(f) => f,
        None => detect_format(&head).map_err(|problem| match hole.take() {
            Some(e) if head.is_empty() => io_err(e, 0),
            _ => CsiError::UnknownFormat {
                file: name.clone(),
                offset: 0,
                problem: format!("{problem}; name the format explicitly if you know it"),
            },
        })?,
    };
    let reader = CsiReader::new(Cursor::new(head).chain(file), name, format, options)?;
    Ok((reader, stored))
}

/// A whole file read into memory.
#[derive(Debug)]
pub struct Recording {
    /// The file as given.
    pub path: String,
    /// The format the file was read as.
    pub format: CsiFormat,
    /// Every frame that decoded, in file order.
    pub frames: Vec<CsiFrame>,
    /// Every problem met, in file order. The last one may have ended the read.
    pub errors: Vec<CsiError>,
}

impl Recording {
    /// Number of frames that decoded.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame decoded.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The first problem met, if any.
    pub fn error(&self) -> Option<&CsiError> {
        self.errors.first()
    }

    /// The distinct `(n_tx, n_rx, n_sub)` shapes, in order of first appearance.
    pub fn shapes(&self) -> Vec<[usize; 3]> {
        let mut shapes: Vec<[usize; 3]> = Vec::new();
        for f in &self.frames {
            let s = [f.n_tx(), f.n_rx(), f.n_subcarriers()];
            if !shapes.contains(&s) {
                shapes.push(s);
            }
        }
        shapes
    }
}

/// Reads a whole file (format detected unless named) with the official defaults;
/// see [`read_all_with`].
pub fn read_all(path: impl AsRef<Path>, format: Option<CsiFormat>) -> Result<Recording, CsiError> {
    read_all_with(path, format, &ReadOptions::default())
}

/// Reads a whole file. Problems inside the file land in [`Recording::errors`] next
/// to the frames read around them; it fails when the file cannot be opened, its
/// format not told, or when it gives no frame at all ([`CsiError::NoFrames`], whose
/// message groups the problems met and names the option that fixes them, if any).
pub fn read_all_with(
    path: impl AsRef<Path>,
    format: Option<CsiFormat>,
    options: &ReadOptions,
) -> Result<Recording, CsiError> {
    let path = path.as_ref();
    let (reader, stored) = open_file(path, format, options)?;
    let read_as = reader.format();
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    for item in reader {
        match item {
            Ok(f) => frames.push(f),
            Err(e) => errors.push(e),
        }
    }
    if frames.is_empty() {
        return Err(summary::no_frames(
            path,
            read_as,
            format.is_some(),
            stored,
            &errors,
        ));
    }
    Ok(Recording {
        path: path.display().to_string(),
        format: read_as,
        frames,
        errors,
    })
}
