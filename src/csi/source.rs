//! A byte source that knows where it is.
//!
//! Every binary reader pulls records through [`Source`], which buffers the underlying
//! `Read`, counts the bytes consumed (so errors can name the offset) and tells a clean
//! end of file (no byte of the next record) from a truncated record.

use std::io::{self, BufReader, Read};

use super::error::CsiError;

/// Buffer size for file readers: large enough that syscalls vanish from profiles.
const BUF_CAPACITY: usize = 1 << 20;

pub(crate) struct Source<R: Read> {
    inner: BufReader<R>,
    /// Offset of the next unread byte.
    pub offset: u64,
    /// File name used in error messages.
    pub name: String,
    buf: Vec<u8>,
}

impl<R: Read> Source<R> {
    pub fn new(reader: R, name: String) -> Self {
        Source {
            inner: BufReader::with_capacity(BUF_CAPACITY, reader),
            offset: 0,
            name,
            buf: Vec::new(),
        }
    }

    /// Reads up to `n` bytes into the internal buffer; returns how many arrived
    /// (fewer than `n` only at end of file).
    fn fill(&mut self, n: usize) -> Result<usize, CsiError> {
        self.buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match self.inner.read(&mut self.buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        self.buf.truncate(got);
        Ok(got)
    }

    /// Reads exactly `n` bytes. `Ok(None)` when the file ends before the first of
    /// them (a clean end between records); a truncation error when it ends inside.
    /// `record_start` is the offset reported in the error.
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
        self.offset += got as u64;
        if got < n {
            return Err(self.truncated(what, record_start, n as u64, got as u64));
        }
        Ok(Some(&self.buf))
    }

    /// Reads exactly `n` bytes; the end of file anywhere is a truncation error.
    pub fn read(&mut self, n: usize, what: &str, record_start: u64) -> Result<&[u8], CsiError> {
        let got = self.fill(n)?;
        self.offset += got as u64;
        if got < n {
            return Err(self.truncated(what, record_start, n as u64, got as u64));
        }
        Ok(&self.buf)
    }

    /// Skips `n` bytes; the end of file before that is a truncation error.
    pub fn skip(&mut self, n: u64, what: &str, record_start: u64) -> Result<(), CsiError> {
        use std::io::BufRead;
        // Consume straight from the read buffer: skipped bytes are never copied.
        let mut got = 0u64;
        while got < n {
            let available = match self.inner.fill_buf() {
                Ok(b) => b.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            if available == 0 {
                break;
            }
            let k = available.min((n - got) as usize);
            self.inner.consume(k);
            got += k as u64;
        }
        self.offset += got;
        if got < n {
            return Err(self.truncated(what, record_start, n, got));
        }
        Ok(())
    }

    /// Reads one text line (without the line ending) into `line`. `Ok(false)` at end
    /// of file. Bytes that are not UTF-8 are kept lossily: CSV readers reject them later
    /// with a message rather than failing here.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> Result<bool, CsiError> {
        use std::io::BufRead;
        line.clear();
        let got = self
            .inner
            .read_until(b'\n', line)
            .map_err(|e| self.io_error(e))?;
        self.offset += got as u64;
        if got == 0 {
            return Ok(false);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(true)
    }

    pub fn io_error(&self, e: io::Error) -> CsiError {
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
