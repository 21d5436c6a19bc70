//! A byte source that knows where it is.
//!
//! Every binary reader pulls records through [`Source`], which buffers the underlying
//! `Read`, counts the bytes consumed (so errors can name the offset) and tells a clean
//! end of file (no byte of the next record) from a truncated record.

use std::io::{self, Read};

use super::error::CsiError;

/// Buffer size for file readers: large enough that syscalls vanish from profiles, small
/// enough to stay in the L2 cache while records are decoded out of it.
const BUF_CAPACITY: usize = 1 << 18;

/// What [`Source::read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line, now in the caller's buffer.
    Read,
    /// A line longer than the limit, consumed but not kept; its length in bytes.
    TooLong(u64),
    /// The end of the input.
    Eof,
}

/// A buffered byte source. Records are handed out as slices of the read buffer itself
/// (no copy per record); a record larger than the buffer grows it.
pub(crate) struct Source<R: Read> {
    inner: R,
    /// Offset of the next unread byte.
    pub offset: u64,
    /// File name used in error messages.
    pub name: String,
    /// Bytes read from `inner`; `buf[pos..end]` are not consumed yet.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// `inner` returned end of file.
    eof: bool,
}

impl<R: Read> Source<R> {
    pub fn new(reader: R, name: String) -> Self {
        Source {
            inner: reader,
            offset: 0,
            name,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    /// Makes at least `n` unconsumed bytes available in `buf[pos..end]`, unless the
    /// input ends first; returns how many are available (fewer than `n` only at end of
    /// file).
    #[inline]
    fn fill(&mut self, n: usize) -> Result<usize, CsiError> {
        if self.end - self.pos >= n {
            return Ok(n);
        }
        self.refill(n)
    }

    #[cold]
    fn refill(&mut self, n: usize) -> Result<usize, CsiError> {
        if self.eof {
            return Ok(self.end - self.pos);
        }
        // Move the unconsumed tail to the front (of a larger buffer when `n` does not
        // fit), then read as much as fits.
        if self.buf.len() < n.max(BUF_CAPACITY) {
            // At least doubling, so that repeated growth stays cheap; allocated zeroed
            // (calloc), which costs nothing for pages never read into.
            let want = n.max(BUF_CAPACITY).max(2 * self.buf.len());
            let mut grown = vec![0u8; want];
            grown[..self.end - self.pos].copy_from_slice(&self.buf[self.pos..self.end]);
            self.buf = grown;
        } else {
            self.buf.copy_within(self.pos..self.end, 0);
        }
        self.end -= self.pos;
        self.pos = 0;
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(self.end.min(n))
    }

    /// Consumes `n` available bytes and returns them.
    #[inline]
    fn take(&mut self, n: usize) -> &[u8] {
        let at = self.pos;
        self.pos += n;
        self.offset += n as u64;
        &self.buf[at..at + n]
    }

    /// Reads exactly `n` bytes. `Ok(None)` when the file ends before the first of
    /// them (a clean end between records); a truncation error when it ends inside.
    /// `record_start` is the offset reported in the error.
    #[inline]
    pub fn read_or_eof(
        &mut self,
        n: usize,
        what: &str,
        record_start: u64,
    ) -> Result<Option<&[u8]>, CsiError> {
        let got = self.fill(n)?;
        if got == 0 && n > 0 {
            return Ok(None);
        }
        if got < n {
            self.take(got);
            return Err(self.truncated(what, record_start, n as u64, got as u64));
        }
        Ok(Some(self.take(n)))
    }

    /// Reads exactly `n` bytes; the end of file anywhere is a truncation error.
    #[inline]
    pub fn read(&mut self, n: usize, what: &str, record_start: u64) -> Result<&[u8], CsiError> {
        let got = self.fill(n)?;
        if got < n {
            self.take(got);
            return Err(self.truncated(what, record_start, n as u64, got as u64));
        }
        Ok(self.take(n))
    }

    /// Skips `n` bytes; the end of file before that is a truncation error.
    pub fn skip(&mut self, n: u64, what: &str, record_start: u64) -> Result<(), CsiError> {
        let mut got = 0u64;
        while got < n {
            if self.pos == self.end {
                self.pos = 0;
                self.end = 0;
                if self.fill(1)? == 0 {
                    break;
                }
            }
            let k = ((self.end - self.pos) as u64).min(n - got) as usize;
            self.take(k);
            got += k as u64;
        }
        if got < n {
            return Err(self.truncated(what, record_start, n, got));
        }
        Ok(())
    }

    /// Reads one text line (without the line ending) into `line`, keeping at most
    /// `max` bytes of it: a longer line is consumed to its end without being stored
    /// (so memory stays bounded whatever the input) and reported as
    /// [`Line::TooLong`]. Bytes that are not UTF-8 are kept: CSV readers reject them
    /// later with a message rather than failing here.
    pub fn read_line(&mut self, line: &mut Vec<u8>, max: usize) -> Result<Line, CsiError> {
        line.clear();
        let mut got = 0u64;
        loop {
            if self.pos == self.end && self.fill(1)? == 0 {
                break;
            }
            let avail = &self.buf[self.pos..self.end];
            let (k, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            // (+2: the line ending does not count against `max`.)
            if got + k as u64 <= max as u64 + 2 {
                line.extend_from_slice(&avail[..k]);
            } else {
                line.clear();
            }
            got += k as u64;
            self.take(k);
            if done {
                break;
            }
        }
        if got == 0 {
            return Ok(Line::Eof);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if got > max as u64 + 2 || line.len() > max {
            line.clear();
            return Ok(Line::TooLong(got));
        }
        Ok(Line::Read)
    }

    pub fn io_error(&self, e: io::Error) -> CsiError {
        if let Some(hole) = super::file::hole_of(&e) {
            return CsiError::malformed(&self.name, hole.offset, hole.to_string());
        }
        CsiError::Io {
            file: self.name.clone(),
            offset: self.offset,
            source: e,
        }
    }

    pub fn truncated(&self, what: &str, at: u64, needed: u64, available: u64) -> CsiError {
        CsiError::Truncated {
            file: self.name.clone(),
            offset: at,
            what: what.to_string(),
            needed,
            available,
        }
    }

    pub fn malformed(&self, at: u64, problem: impl Into<String>) -> CsiError {
        CsiError::malformed(&self.name, at, problem)
    }
}

/// The `Iterator` every reader shares, over its `next_frame`. A reader sets `recoverable`
/// when an error left the record framing intact (reading goes on with the next record);
/// any other error, and the end of the file, end the stream.
macro_rules! frame_iterator {
    ($reader:ident) => {
        impl<R: std::io::Read> Iterator for $reader<R> {
            type Item = Result<$crate::csi::CsiFrame, $crate::csi::CsiError>;

            fn next(&mut self) -> Option<Self::Item> {
                if self.done {
                    return None;
                }
                self.recoverable = false;
                match self.next_frame() {
                    Ok(Some(f)) => Some(Ok(f)),
                    Ok(None) => {
                        self.done = true;
                        None
                    }
                    Err(e) => {
                        self.done = !self.recoverable;
                        Some(Err(e))
                    }
                }
            }
        }
    };
}
pub(crate) use frame_iterator;
