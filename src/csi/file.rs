//! Opening a recording as a plain file, safely.
//!
//! Three things a path can be that would otherwise hang or exhaust memory:
//!
//! - a FIFO, socket or device: opening a FIFO for reading blocks until a writer
//!   appears, and `/dev/zero` never ends. [`RegularFile::open`] opens without blocking
//!   (`O_NONBLOCK`), asks the open descriptor what it is (no window for the path to be
//!   swapped between the check and the open) and refuses anything but a regular file.
//! - a sparse file: its apparent size (what `stat` says) can be a terabyte while the
//!   disk holds one frame; the rest is a *hole* that reads as zeros. Nothing here sizes
//!   a buffer from the apparent size, and [`RegularFile`] asks the file system where
//!   the data is (`SEEK_DATA`/`SEEK_HOLE`): a hole of [`MAX_HOLE`] bytes or more ends
//!   the read with an error at the hole's offset instead of feeding gigabytes of zeros
//!   to a reader. No CSI recorder writes holes (they come from `truncate`, a seek past
//!   the end, or a crash while writing); shorter holes read as the zeros they are.
//! - a file larger than memory: the readers stream, see `csi::source`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Holes at least this long end the read (see the module notes).
pub const MAX_HOLE: u64 = 1 << 20;

/// The payload of the `io::Error` a [`RegularFile`] returns at a hole; the readers turn
/// it into a [`CsiError::Malformed`](super::CsiError) at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// Where the hole starts, from the start of the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

impl std::fmt::Display for Hole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the file has a hole here: {} bytes the file system never stored (a sparse file, \
             made by truncate, a seek past the end or a crash while writing) that would read \
             as zeros; no recorder writes one, so reading stops here",
            self.len
        )
    }
}

impl std::error::Error for Hole {}

/// The [`Hole`] inside an I/O error, if that is what it is.
pub fn hole_of(e: &io::Error) -> Option<Hole> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Hole>())
        .copied()
}

/// A regular file read front to back, that stops at long holes.
pub struct RegularFile {
    file: File,
    /// Offset of the next byte to read.
    pos: u64,
    /// End of the data extent `pos` is in; at or past it the next extent is looked up.
    data_end: u64,
}

impl RegularFile {
    /// Opens `path` for reading; an error (kind `InvalidInput`) when it is not a
    /// regular file, naming what it is.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = open_nonblocking(path)?;
        let kind = file.metadata()?.file_type();
        if !kind.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {}, not a regular file; CSI recordings are read from files \
                     (copy the data to a file first)",
                    path.display(),
                    describe(&kind)
                ),
            ));
        }
        blocking(&file)?;
        Ok(RegularFile {
            file,
            pos: 0,
            data_end: 0,
        })
    }

    /// The bytes the file occupies on disk (at most its apparent size): what a reader
    /// can actually get out of it, holes excluded.
    pub fn stored_len(&self) -> u64 {
        let Ok(m) = self.file.metadata() else {
            return 0;
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Some file systems report no blocks for small files kept in the inode.
            match m.blocks() {
                0 => m.len(),
                blocks => m.len().min(blocks.saturating_mul(512)),
            }
        }
        #[cfg(not(unix))]
        {
            m.len()
        }
    }

    /// Finds the data extent at `pos`: `Ok(true)` when there is data to read (or the
    /// file system cannot tell), `Ok(false)` at the end of the file.
    #[cfg(target_os = "linux")]
    fn next_extent(&mut self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let Ok(pos) = libc::off_t::try_from(self.pos) else {
            self.data_end = u64::MAX;
            return Ok(true);
        };
        // SAFETY: lseek on a descriptor this struct owns; reads go through pread
        // (read_at), so moving the descriptor's own offset has no effect on them.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENXIO) {
                // SEEK_DATA unsupported here: read everything as data.
                self.data_end = u64::MAX;
                return Ok(true);
            }
            // No data at or after pos: the end of the file, or a hole up to it.
            let size = self.file.metadata()?.len();
            if self.pos >= size {
                return Ok(false);
            }
            return self.hole(size);
        }
        let data = data as u64;
        if data > self.pos {
            return self.hole(data);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, pos, libc::SEEK_HOLE) };
        self.data_end = if hole > pos { hole as u64 } else { u64::MAX };
        Ok(true)
    }

    #[cfg(target_os = "linux")]
    fn hole(&mut self, end: u64) -> io::Result<bool> {
        let len = end - self.pos;
        if len >= MAX_HOLE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Hole {
                    offset: self.pos,
                    len,
                },
            ));
        }
        // A short hole reads as the zeros it holds, up to the data after it.
        self.data_end = end;
        Ok(true)
    }

    #[cfg(not(target_os = "linux"))]
    fn next_extent(&mut self) -> io::Result<bool> {
        self.data_end = u64::MAX;
        Ok(true)
    }
}

impl Read for RegularFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.data_end && !self.next_extent()? {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.data_end - self.pos) as usize;
        let k = read_at(&self.file, &mut buf[..n], self.pos)?;
        if k == 0 {
            // The file shrank, or an extent ended early: look again next time.
            self.data_end = self.pos;
        }
        self.pos += k as u64;
        Ok(k)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, pos)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(pos))?;
    file.read(buf)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Clears `O_NONBLOCK` again (it means nothing for regular files on Linux, but other
/// systems may honour it).
#[cfg(unix)]
fn blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns, with flag arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn blocking(_file: &File) -> io::Result<()> {
    Ok(())
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wdp-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_directory_is_refused_by_name() {
        let err = RegularFile::open(&std::env::temp_dir()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_long_hole_stops_the_read_at_its_offset_and_short_ones_read_as_zeros() {
        let path = temp("holes.bin");
        let mut f = File::create(&path).unwrap();
        f.write_all(&[7u8; 5000]).unwrap();
        // A short hole (read as zeros), then data, then a long hole to the end.
        f.seek(SeekFrom::Start(5000 + 8192)).unwrap();
        f.write_all(&[9u8; 100]).unwrap();
        f.set_len(1 << 36).unwrap();
        drop(f);
        let mut r = RegularFile::open(&path).unwrap();
        assert!(r.stored_len() < 1 << 20);
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        let hole = hole_of(&err).expect("a hole error");
        // The file system may round extents to blocks; the data must all be there.
        assert!(got.len() as u64 == hole.offset && hole.offset >= 5000 + 8192 + 100);
        assert!(got[..5000].iter().all(|&b| b == 7));
        assert!(got[5000..13192].iter().all(|&b| b == 0));
        assert!(got[13192..13292].iter().all(|&b| b == 9));
        assert_eq!(hole.offset + hole.len, 1 << 36);
        std::fs::remove_file(&path).unwrap();
    }
}
