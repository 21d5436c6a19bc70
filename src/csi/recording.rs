//! Opening a file in any format and reading it whole.
//!
//! [`open`] picks the reader (detecting the format unless the caller names it) and
//! returns a streaming iterator; [`read_all`] collects a whole file into a
//! [`Recording`], keeping every frame read before a corruption together with the
//! error, so valid data before a bad byte is never lost.

use std::io::{Chain, Cursor, Read};
use std::path::Path;

use super::atheros::{AtherosOptions, AtherosReader};
use super::detect::{detect_format, DETECT_BYTES};
use super::error::CsiError;
use super::esp32::Esp32Reader;
use super::file::{hole_of, RegularFile};
use super::intel5300::{Intel5300Options, Intel5300Reader};
use super::nexmon::{NexmonOptions, NexmonReader};
use super::picoscenes::PicoScenesReader;
use super::summary;
use super::table::CsiTable;
use super::{CsiFormat, CsiFrame};

/// Per-format options; the defaults follow the official readers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub intel5300: Intel5300Options,
    pub atheros: AtherosOptions,
    pub nexmon: NexmonOptions,
}

/// A streaming reader for any supported format.
// One reader exists per open file, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum CsiReader<R: Read> {
    Intel5300(Intel5300Reader<R>),
    Atheros(AtherosReader<R>),
    Nexmon(NexmonReader<R>),
    Esp32(Esp32Reader<R>),
    PicoScenes(PicoScenesReader<R>),
}

impl<R: Read> CsiReader<R> {
    /// Reads the next frame into `table` (errors are returned, not stored);
    /// `Some(Ok(()))` when a frame was appended, `None` at the end.
    pub fn next_into(&mut self, table: &mut CsiTable) -> Option<Result<(), CsiError>> {
        match self {
            CsiReader::Intel5300(r) => r.next_into(table),
            CsiReader::Atheros(r) => r.next_into(table),
            CsiReader::Nexmon(r) => r.next_into(table),
            _ => self.next().map(|r| r.map(|f| table.push(f))),
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        match self {
            CsiReader::Intel5300(r) => r.offset(),
            CsiReader::Atheros(r) => r.offset(),
            CsiReader::Nexmon(r) => r.offset(),
            CsiReader::Esp32(r) => r.offset(),
            CsiReader::PicoScenes(r) => r.offset(),
        }
    }

    /// A reader of `format` over `reader`; `name` appears in error messages.
    pub fn new(
        reader: R,
        name: impl Into<String>,
        format: CsiFormat,
        options: &ReadOptions,
    ) -> Result<Self, CsiError> {
        let name = name.into();
        Ok(match format {
            CsiFormat::Intel5300 => CsiReader::Intel5300(Intel5300Reader::with_options(
                reader,
                name,
                options.intel5300,
            )),
            CsiFormat::Atheros => {
                CsiReader::Atheros(AtherosReader::with_options(reader, name, options.atheros))
            }
            CsiFormat::Nexmon => {
                CsiReader::Nexmon(NexmonReader::with_options(reader, name, options.nexmon))
            }
            CsiFormat::Esp32 => CsiReader::Esp32(Esp32Reader::new(reader, name)),
            CsiFormat::PicoScenes => CsiReader::PicoScenes(PicoScenesReader::new(reader, name)),
            other => {
                return Err(CsiError::unsupported(
                    &name,
                    0,
                    format!("{} is a live source, not a file format", other.name()),
                ))
            }
        })
    }

    pub fn format(&self) -> CsiFormat {
        match self {
            CsiReader::Intel5300(_) => CsiFormat::Intel5300,
            CsiReader::Atheros(_) => CsiFormat::Atheros,
            CsiReader::Nexmon(_) => CsiFormat::Nexmon,
            CsiReader::Esp32(_) => CsiFormat::Esp32,
            CsiReader::PicoScenes(_) => CsiFormat::PicoScenes,
        }
    }
}

impl<R: Read> Iterator for CsiReader<R> {
    type Item = Result<CsiFrame, CsiError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            CsiReader::Intel5300(r) => r.next(),
            CsiReader::Atheros(r) => r.next(),
            CsiReader::Nexmon(r) => r.next(),
            CsiReader::Esp32(r) => r.next(),
            CsiReader::PicoScenes(r) => r.next(),
        }
    }
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
    pub format: CsiFormat,
    /// Every frame that decoded, in file order.
    pub frames: Vec<CsiFrame>,
    /// Every problem met, in file order. The last one may have ended the read.
    pub errors: Vec<CsiError>,
}

impl Recording {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

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
