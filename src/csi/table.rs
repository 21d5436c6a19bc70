//! A whole recording held column-wise: every frame's CSI in one flat buffer.
//!
//! [`Recording`](super::Recording) keeps one [`CsiFrame`] (one `Array3`) per packet,
//! which is what a Rust caller iterating frames wants. A caller that wants the
//! whole-recording arrays (the Python `Recording.csi`) wants the opposite layout: all
//! CSI values back to back, `(n_frames, n_tx, n_rx, n_sub)` when the shapes agree.
//! [`CsiTable`] is that layout. [`read_table_with`] decodes straight into it, so the
//! stacked array is the read buffer itself, with no per-frame array kept and no second
//! copy; per-frame metadata stays in [`FrameInfo`], one per frame.

use std::io::Read;
use std::path::Path;

use num_complex::Complex32;

use super::error::CsiError;
use super::meta::FrameMeta;
use super::recording::{open_file, CsiReader, ReadOptions};
use super::summary;
use super::{CsiFormat, CsiFrame};

/// Everything a [`CsiFrame`] holds except the CSI values.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Index of the frame's first CSI value in [`CsiTable::csi`].
    pub start: usize,
    /// `(n_tx, n_rx, n_subcarriers)`.
    pub shape: [usize; 3],
    /// Seconds, as [`CsiFrame::timestamp`].
    pub timestamp: f64,
    /// Received signal strength in dBm, where the format reports it.
    pub rssi: Option<f32>,
    /// Noise floor in dBm, where the format reports it.
    pub noise: Option<f32>,
    /// Channel number, where known.
    pub channel: Option<u16>,
    /// Bandwidth in MHz, where known.
    pub bandwidth_mhz: Option<u16>,
    /// The source's packet sequence number, where it has one.
    pub sequence: Option<u64>,
    /// What the format reported beyond the fields above, as [`CsiFrame::meta`].
    pub meta: FrameMeta,
}

impl FrameInfo {
    /// Number of CSI values of the frame.
    pub fn len(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }

    /// Whether the frame holds no CSI value (a zero-sized axis).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole file read column-wise.
#[derive(Debug)]
pub struct CsiTable {
    /// The file as given.
    pub path: String,
    /// The format the file was read as.
    pub format: CsiFormat,
    /// Every frame's CSI, in file order, each in `(n_tx, n_rx, n_sub)` C order.
    pub csi: Vec<Complex32>,
    /// One entry per frame, in file order.
    pub frames: Vec<FrameInfo>,
    /// Distinct shapes in order of first appearance.
    pub shapes: Vec<[usize; 3]>,
    /// Every problem met, in file order. The last one may have ended the read.
    pub errors: Vec<CsiError>,
}

impl CsiTable {
    /// An empty table for `path` in `format`, to [`push`](Self::push) frames into.
    pub fn new(path: impl Into<String>, format: CsiFormat) -> Self {
        CsiTable {
            path: path.into(),
            format,
            csi: Vec::new(),
            frames: Vec::new(),
            shapes: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the table holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The first problem met, if any.
    pub fn error(&self) -> Option<&CsiError> {
        self.errors.first()
    }

    /// The CSI values of frame `i`, `(n_tx, n_rx, n_sub)` in C order.
    pub fn frame_csi(&self, i: usize) -> &[Complex32] {
        let f = &self.frames[i];
        &self.csi[f.start..f.start + f.len()]
    }

    /// Appends a frame decoded elsewhere (its array is copied, then dropped).
    pub fn push(&mut self, frame: CsiFrame) {
        let shape = [frame.n_tx(), frame.n_rx(), frame.n_subcarriers()];
        let start = self.csi.len();
        reserve_values(&mut self.csi, frame.csi.len());
        match frame.csi.as_slice() {
            Some(s) => self.csi.extend_from_slice(s),
            None => self.csi.extend(frame.csi.iter().copied()),
        }
        self.push_info(FrameInfo {
            start,
            shape,
            timestamp: frame.timestamp,
            rssi: frame.rssi,
            noise: frame.noise,
            channel: frame.channel,
            bandwidth_mhz: frame.bandwidth_mhz,
            sequence: frame.sequence,
            meta: frame.meta,
        });
    }

    /// Appends a frame whose `info.len()` values were already appended to `csi`
    /// starting at `info.start`.
    pub(crate) fn push_info(&mut self, info: FrameInfo) {
        debug_assert_eq!(info.start + info.len(), self.csi.len());
        if self.shapes.last() != Some(&info.shape) && !self.shapes.contains(&info.shape) {
            self.shapes.push(info.shape);
        }
        self.frames.push(info);
    }

    /// Frame `i` as a [`CsiFrame`] (its CSI copied out).
    pub fn frame(&self, i: usize) -> CsiFrame {
        let f = &self.frames[i];
        let csi = ndarray::Array3::from_shape_vec(
            (f.shape[0], f.shape[1], f.shape[2]),
            self.frame_csi(i).to_vec(),
        )
        .expect("the shape counts the values");
        CsiFrame {
            timestamp: f.timestamp,
            csi,
            rssi: f.rssi,
            noise: f.noise,
            format: self.format,
            channel: f.channel,
            bandwidth_mhz: f.bandwidth_mhz,
            sequence: f.sequence,
            meta: f.meta.clone(),
        }
    }
}

/// Grows `v` so that `additional` more values fit, doubling so that appends stay
/// amortised O(1), and asks the kernel to back large buffers with huge pages: the
/// buffer is written once front to back, and 4 KiB page faults would otherwise cost
/// more than decoding (numpy does the same for its large arrays).
pub(crate) fn reserve_values<T>(v: &mut Vec<T>, additional: usize) {
    if v.capacity() - v.len() >= additional {
        return;
    }
    let want = additional.max(v.capacity()).max(1 << 16);
    v.reserve(want);
    advise_huge_pages(v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(addr: usize, len: usize) {
    const HUGE: usize = 2 << 20;
    if len < 2 * HUGE {
        return;
    }
    let start = addr.next_multiple_of(HUGE);
    let end = (addr + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE is
        // advice only and changes no content. A refusal (THP disabled) is harmless.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _len: usize) {}

/// Reads a whole file column-wise (format detected unless named). Problems inside the
/// file land in [`CsiTable::errors`] next to the frames read around them, and a file
/// that gives no frame is an error, exactly as [`read_all_with`](super::read_all_with)
/// reports them.
pub fn read_table_with(
    path: impl AsRef<Path>,
    format: Option<CsiFormat>,
    options: &ReadOptions,
) -> Result<CsiTable, CsiError> {
    let path = path.as_ref();
    let (reader, stored) = open_file(path, format, options)?;
    let name = path.display().to_string();
    // The bytes on disk, not the apparent size: a sparse file's hole holds no frame.
    let table = read_table_from(reader, name, stored);
    if table.frames.is_empty() {
        return Err(summary::no_frames(
            path,
            table.format,
            format.is_some(),
            stored,
            &table.errors,
        ));
    }
    Ok(table)
}

/// The most CSI values reserved before any is read (256 MiB of complex64): beyond it
/// the buffer grows as frames arrive, so a wrong size hint costs at most this much.
const MAX_PRESIZE_VALUES: usize = 1 << 25;

/// Reads everything `reader` yields into a table. `size` (the bytes the input holds,
/// 0 if unknown) is a hint that sizes the buffers up front, capped so that a hint far
/// above what the input yields never reserves more than `MAX_PRESIZE_VALUES`.
pub fn read_table_from<R: Read>(
    mut reader: CsiReader<R>,
    name: impl Into<String>,
    size: u64,
) -> CsiTable {
    let mut table = CsiTable::new(name, reader.format());
    let mut sized = false;
    while let Some(item) = reader.next_into(&mut table) {
        match item {
            Ok(()) if !sized => {
                sized = true;
                // Size the buffers for the whole file from the first frame, so they are
                // not regrown (and copied) along the way; a short guess still grows.
                let per_frame = table.frames[0].len().max(1);
                let bytes_per_frame = reader.offset().max(1);
                let frames = (size / bytes_per_frame) as usize;
                let frames = (frames + frames / 16 + 16).min(MAX_PRESIZE_VALUES / per_frame);
                reserve_values(&mut table.frames, frames);
                // No format packs a complex value in fewer than 2 bytes: the cap keeps
                // an odd first frame from reserving far too much.
                let values = frames
                    .saturating_mul(per_frame)
                    .min(size as usize / 2)
                    .min(MAX_PRESIZE_VALUES);
                reserve_values(&mut table.csi, values.max(per_frame));
            }
            Ok(()) => {}
            Err(e) => table.errors.push(e),
        }
    }
    table
}
