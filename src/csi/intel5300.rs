//! Intel 5300 (Linux 802.11n CSI Tool) netlink logs.
//!
//! The file is a sequence of records `[u16 big-endian length][u8 code][length-1 bytes]`,
//! written by `log_to_file`. Records with code `0xBB` are beamforming feedback
//! ("bfee") records holding 30 subcarrier groups of 8-bit I/Q per (tx, rx) pair; all
//! other codes are skipped, as the official `read_bf_file.m` does.
//!
//! Decoding follows the official `read_bfee.c` bit for bit, and the receive-antenna
//! permutation follows `read_bf_file.m` exactly, including its quirk: the permutation
//! is applied only when the sum of all three `perm` entries equals 1, 3 or 6 for
//! Nrx = 1, 2, 3. With Nrx = 2 and a full three-entry permutation that never holds,
//! so two-antenna captures are left as the NIC reported them (csiread deviates here).
//! [`get_scaled_csi`] and [`get_total_rss`] reproduce the official MATLAB arithmetic
//! in `f64`.
//!
//! Deviations from the official reader, chosen on purpose:
//! - a record cut short by the end of the file is reported as a truncation error
//!   (the MATLAB reader returns silently); the frames before it are kept;
//! - a bfee whose length field disagrees with Nrx/Ntx is reported for that record and
//!   reading continues (the MEX file aborts the whole read);
//! - `noise == -127` ("not measured", e.g. monitor mode) gives `CsiFrame::noise = None`;
//!   the raw value stays in [`Intel5300Meta::noise`].
//!
//! Frame timestamp: `timestamp_low` (the NIC's 32-bit microsecond clock, which wraps
//! every 71.6 minutes) in seconds.

use std::io::Read;
use std::mem::MaybeUninit;

use ndarray::Array3;
use num_complex::{Complex32, Complex64};

use super::error::CsiError;
use super::meta::{int, FrameMeta, MetaValue};
use super::source::Source;
use super::table::{reserve_values, CsiTable, FrameInfo};
use super::{CsiFormat, CsiFrame};

/// The netlink record code of a beamforming feedback record.
pub const BFEE_CODE: u8 = 0xBB;
/// Subcarrier groups the 5300 reports.
pub const N_SUBCARRIERS: usize = 30;
/// Bytes of bfee header before the CSI bit stream.
const BFEE_HEADER: usize = 20;

/// The bfee header fields, as `read_bfee.c` names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intel5300Meta {
    /// NIC clock, microseconds, 32-bit (wraps).
    pub timestamp_low: u32,
    /// The driver's count of beamforming feedback records (16-bit, wraps); gaps show
    /// records the log missed.
    pub bfee_count: u16,
    /// Receive antennas in the CSI (1 to 3).
    pub n_rx: u8,
    /// Transmit streams in the CSI (1 to 3).
    pub n_tx: u8,
    /// RSSI of receive antenna A, dB relative to the AGC (0: not measured); dBm is
    /// `rssi - 44 - agc`.
    pub rssi_a: u8,
    /// RSSI of receive antenna B, as `rssi_a`.
    pub rssi_b: u8,
    /// RSSI of receive antenna C, as `rssi_a`.
    pub rssi_c: u8,
    /// Noise in dBm; -127 means "not measured".
    pub noise: i8,
    /// Automatic gain control setting, dB.
    pub agc: u8,
    /// The packed antenna selection byte the permutation `perm` comes from.
    pub antenna_sel: u8,
    /// Receive-antenna permutation, 1-based as MATLAB reports it.
    pub perm: [u8; 3],
    /// `fake_rate_n_flags`.
    pub rate: u16,
    /// Whether the permutation was applied to `csi` (see the module notes).
    pub permuted: bool,
    /// Whether `csi` holds `get_scaled_csi` values instead of the raw 8-bit ones.
    pub scaled: bool,
}

impl Intel5300Meta {
    pub(crate) fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        vec![
            ("timestamp_low", int(self.timestamp_low)),
            ("bfee_count", int(self.bfee_count)),
            ("Nrx", int(self.n_rx)),
            ("Ntx", int(self.n_tx)),
            ("rssi_a", int(self.rssi_a)),
            ("rssi_b", int(self.rssi_b)),
            ("rssi_c", int(self.rssi_c)),
            ("noise", int(self.noise)),
            ("agc", int(self.agc)),
            ("antenna_sel", int(self.antenna_sel)),
            (
                "perm",
                MetaValue::Ints(self.perm.iter().map(|&p| p as i64).collect()),
            ),
            ("rate", int(self.rate)),
            ("permuted", MetaValue::Bool(self.permuted)),
            ("scaled", MetaValue::Bool(self.scaled)),
        ]
    }
}

/// Options for [`Intel5300Reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intel5300Options {
    /// Apply the receive-antenna permutation as `read_bf_file.m` does (default true).
    pub apply_permutation: bool,
    /// Store `get_scaled_csi` values (SNR units) in `CsiFrame::csi` instead of the raw
    /// 8-bit values (default false).
    pub scaled: bool,
    /// Put two-antenna frames, which `read_bf_file.m` leaves in the order of the card's
    /// RF chains, in antenna order (default false: as the official reader). See
    /// [`put_in_antenna_order`].
    pub antenna_order: bool,
}

impl Default for Intel5300Options {
    fn default() -> Self {
        Intel5300Options {
            apply_permutation: true,
            scaled: false,
            antenna_order: false,
        }
    }
}

/// Streams frames from an Intel 5300 log; one item per bfee record.
pub struct Intel5300Reader<R: Read> {
    src: Source<R>,
    options: Intel5300Options,
    done: bool,
    /// Set when the error being returned left the record framing intact.
    recoverable: bool,
    /// `(rssi_a, rssi_b, rssi_c)` keys and their `10 log10` power sums, direct-mapped:
    /// a recording holds few distinct triples, and the logarithm is the costliest part
    /// of a frame's metadata. Allocated on first use.
    rss_cache: Vec<(u32, f64)>,
}

/// The format table's view of this reader (`super::formats`).
impl<R: Read> super::formats::FormatReader for Intel5300Reader<R> {
    fn offset(&self) -> u64 {
        Intel5300Reader::offset(self)
    }

    fn next_into(
        &mut self,
        table: &mut super::table::CsiTable,
    ) -> Option<Result<(), super::error::CsiError>> {
        Intel5300Reader::next_into(self, table)
    }
}

impl<R: Read> Intel5300Reader<R> {
    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset
    }

    /// A reader over `reader`; `name` is used in error messages.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        Self::with_options(reader, name, Intel5300Options::default())
    }

    /// A reader over `reader` with `options`; `name` is used in error messages.
    pub fn with_options(reader: R, name: impl Into<String>, options: Intel5300Options) -> Self {
        Intel5300Reader {
            src: Source::new(reader, name.into()),
            options,
            done: false,
            recoverable: false,
            rss_cache: Vec::new(),
        }
    }

    /// [`get_total_rss`], with the logarithm cached for repeated per-chain RSSI.
    fn total_rss(&mut self, meta: &Intel5300Meta) -> f64 {
        const SLOTS: usize = 256;
        if self.rss_cache.is_empty() {
            // No real key has its top byte set.
            self.rss_cache = vec![(u32::MAX, 0.0); SLOTS];
        }
        let key = u32::from_le_bytes([meta.rssi_a, meta.rssi_b, meta.rssi_c, 0]);
        let slot = &mut self.rss_cache[(key.wrapping_mul(0x9E37_79B1) >> 24) as usize % SLOTS];
        if slot.0 != key {
            *slot = (key, rss_db(meta));
        }
        // The same arithmetic as get_total_rss, so the result is bit for bit the same.
        slot.1 - 44.0 - meta.agc as f64
    }

    /// Finds the next bfee record and decodes it with `decode`.
    fn next_bfee<T>(
        &mut self,
        decode: impl FnOnce(&[u8], bool) -> Result<T, String>,
    ) -> Result<Option<T>, CsiError> {
        loop {
            let start = self.src.offset;
            let Some(head) = self.src.read_or_eof(3, "record header", start)? else {
                return Ok(None);
            };
            let field_len = u16::from_be_bytes([head[0], head[1]]) as usize;
            let code = head[2];
            if field_len == 0 {
                // The length counts the code byte, so zero cannot come from log_to_file.
                return Err(self.src.malformed(
                    start,
                    "record length 0 (it must count at least the code byte)",
                ));
            }
            let body_len = field_len - 1;
            if code != BFEE_CODE {
                self.src.skip(body_len as u64, "record", start)?;
                continue;
            }
            let body = self.src.read(body_len, "bfee record", start)?;
            return match decode(body, self.options.apply_permutation) {
                Ok(v) => Ok(Some(v)),
                // The length prefix was sound, so the next record is still findable.
                Err(problem) => {
                    self.recoverable = true;
                    Err(self.src.malformed(start, format!("bfee record: {problem}")))
                }
            };
        }
    }

    fn next_frame(&mut self) -> Result<Option<CsiFrame>, CsiError> {
        let scaled = self.options.scaled;
        let antenna_order = self.options.antenna_order;
        self.next_bfee(|body, apply_permutation| {
            let (mut frame, mut meta) = parse_bfee(body, apply_permutation)?;
            if antenna_order && !meta.permuted {
                let n_rx = meta.n_rx as usize;
                let rows = frame
                    .csi
                    .as_slice_mut()
                    .expect("a fresh frame is contiguous");
                meta.permuted = order_two_antennas(rows, n_rx, meta.perm);
            }
            if scaled {
                frame.csi = get_scaled_csi(&frame.csi, &meta)
                    .mapv(|c| Complex32::new(c.re as f32, c.im as f32));
                meta.scaled = true;
            }
            frame.meta = FrameMeta::Intel5300(meta);
            Ok(frame)
        })
    }

    /// Like [`Iterator::next`], but decodes the frame straight into `table`; `Some(Ok(()))`
    /// when a frame was appended.
    pub(crate) fn next_into(&mut self, table: &mut CsiTable) -> Option<Result<(), CsiError>> {
        if self.options.scaled {
            // The scaled values need the whole frame first; take the ordinary path.
            return self.next().map(|r| r.map(|f| table.push(f)));
        }
        if self.done {
            return None;
        }
        self.recoverable = false;
        let start = table.csi.len();
        let antenna_order = self.options.antenna_order;
        let decoded = self.next_bfee(|body, apply_permutation| {
            let mut meta = parse_bfee_into(body, apply_permutation, &mut table.csi)?;
            if antenna_order && !meta.permuted {
                let rows = &mut table.csi[start..];
                meta.permuted = order_two_antennas(rows, meta.n_rx as usize, meta.perm);
            }
            Ok(meta)
        });
        match decoded {
            Ok(Some(meta)) => {
                table.push_info(FrameInfo {
                    start,
                    shape: [meta.n_tx as usize, meta.n_rx as usize, N_SUBCARRIERS],
                    timestamp: frame_timestamp(&meta),
                    rssi: Some(self.total_rss(&meta) as f32),
                    noise: frame_noise(&meta),
                    channel: None,
                    bandwidth_mhz: None,
                    sequence: Some(meta.bfee_count as u64),
                    meta: FrameMeta::Intel5300(meta),
                });
                Some(Ok(()))
            }
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

super::source::frame_iterator!(Intel5300Reader);

/// Bytes `read_bfee.c` expects after the 20-byte header for `n_rx` × `n_tx`.
pub fn bfee_csi_len(n_rx: usize, n_tx: usize) -> usize {
    (N_SUBCARRIERS * (n_rx * n_tx * 8 * 2 + 3)).div_ceil(8)
}

/// Decodes one bfee body (the bytes after the code byte), as `read_bfee.c` does, and
/// applies the `read_bf_file.m` permutation when `apply_permutation`. The frame's
/// `meta` is left `None`; the header is returned separately.
pub fn parse_bfee(b: &[u8], apply_permutation: bool) -> Result<(CsiFrame, Intel5300Meta), String> {
    // Sized for this frame up front (at most 3 × 3 antennas), so no larger buffer is
    // reserved for a single frame.
    let n = b.get(8..10).map_or(0, |d| d[0] as usize * d[1] as usize);
    let mut values = Vec::with_capacity(n.min(9) * N_SUBCARRIERS);
    let meta = parse_bfee_into(b, apply_permutation, &mut values)?;
    let shape = (meta.n_tx as usize, meta.n_rx as usize, N_SUBCARRIERS);
    let csi = Array3::from_shape_vec(shape, values).expect("n_tx * n_rx * 30 values");
    let frame = CsiFrame {
        timestamp: frame_timestamp(&meta),
        csi,
        rssi: Some(get_total_rss(&meta) as f32),
        noise: frame_noise(&meta),
        format: CsiFormat::Intel5300,
        channel: None,
        bandwidth_mhz: None,
        sequence: Some(meta.bfee_count as u64),
        meta: FrameMeta::None,
    };
    Ok((frame, meta))
}

fn frame_timestamp(meta: &Intel5300Meta) -> f64 {
    meta.timestamp_low as f64 * 1e-6
}

fn frame_noise(meta: &Intel5300Meta) -> Option<f32> {
    (meta.noise != -127).then_some(meta.noise as f32)
}

/// [`parse_bfee`] appending the `(n_tx, n_rx, 30)` CSI values to `out` (nothing is
/// appended on error) and returning the header.
pub(crate) fn parse_bfee_into(
    b: &[u8],
    apply_permutation: bool,
    out: &mut Vec<Complex32>,
) -> Result<Intel5300Meta, String> {
    if b.len() < BFEE_HEADER {
        return Err(format!(
            "{} bytes, shorter than the {BFEE_HEADER}-byte bfee header",
            b.len()
        ));
    }
    let timestamp_low = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let bfee_count = u16::from_le_bytes([b[4], b[5]]);
    let n_rx = b[8];
    let n_tx = b[9];
    if !(1..=3).contains(&n_rx) || !(1..=3).contains(&n_tx) {
        return Err(format!(
            "impossible antenna counts Nrx={n_rx}, Ntx={n_tx} (the 5300 has 1 to 3 of each)"
        ));
    }
    let len = u16::from_le_bytes([b[16], b[17]]) as usize;
    let calc_len = bfee_csi_len(n_rx as usize, n_tx as usize);
    if len != calc_len {
        return Err(format!(
            "CSI length field {len} does not match Nrx={n_rx}, Ntx={n_tx} (expected {calc_len}); \
             the official reader stops here with \"Wrong beamforming matrix size\""
        ));
    }
    let payload = &b[BFEE_HEADER..];
    if payload.len() < calc_len {
        return Err(format!(
            "CSI needs {calc_len} bytes but the record holds {}",
            payload.len()
        ));
    }
    let antenna_sel = b[15];
    let meta_perm = [
        (antenna_sel & 3) + 1,
        ((antenna_sel >> 2) & 3) + 1,
        ((antenna_sel >> 4) & 3) + 1,
    ];
    let (nr, nt) = (n_rx as usize, n_tx as usize);
    let n = nt * nr * N_SUBCARRIERS;
    let start = out.len();
    reserve_values(out, n);
    // Decoded straight into the spare capacity: zero-filling first would write the
    // values twice.
    unpack_bfee_csi(
        &payload[..calc_len],
        nr,
        nt,
        &mut out.spare_capacity_mut()[..n],
    );
    // SAFETY: unpack_bfee_csi initializes all n values (every (tx, rx, subcarrier)).
    unsafe { out.set_len(start + n) };
    let csi = &mut out[start..];
    let permuted = apply_permutation && permute_like_read_bf_file(csi, nr, meta_perm);
    let rssi_a = b[10];
    let rssi_b = b[11];
    let rssi_c = b[12];
    let noise = b[13] as i8;
    let agc = b[14];
    let meta = Intel5300Meta {
        timestamp_low,
        bfee_count,
        n_rx,
        n_tx,
        rssi_a,
        rssi_b,
        rssi_c,
        noise,
        agc,
        antenna_sel,
        perm: meta_perm,
        rate: u16::from_le_bytes([b[18], b[19]]),
        permuted,
        scaled: false,
    };
    Ok(meta)
}

/// Unpacks the bfee CSI bit stream into `out` (`(n_tx, n_rx, 30)` in C order, every
/// value written) as `read_bfee.c` does: per subcarrier 3 skipped bits, then 8-bit I and
/// Q for each (tx, rx) with tx fastest. `payload` holds the `bfee_csi_len` bytes; bits
/// past its end read as zero.
fn unpack_bfee_csi(payload: &[u8], nr: usize, nt: usize, out: &mut [MaybeUninit<Complex32>]) {
    match nr * nt {
        1 => unpack_m::<1>(payload, nr, nt, out),
        2 => unpack_m::<2>(payload, nr, nt, out),
        3 => unpack_m::<3>(payload, nr, nt, out),
        4 => unpack_m::<4>(payload, nr, nt, out),
        6 => unpack_m::<6>(payload, nr, nt, out),
        _ => unpack_m::<9>(payload, nr, nt, out),
    }
}

/// [`unpack_bfee_csi`] for `M = Nrx × Ntx` (1 to 9) values per subcarrier.
///
/// A subcarrier is `3 + 16 M` bits, so its `M` (I, Q) pairs are `2 M` consecutive bytes
/// once shifted by the subcarrier's bit offset: each 8 of them come from one unaligned
/// 8-byte load and a 64-bit shift, and convert to 4 values at once ([`i8x8_to_complex`]).
fn unpack_m<const M: usize>(
    payload: &[u8],
    nr: usize,
    nt: usize,
    out: &mut [MaybeUninit<Complex32>],
) {
    let words = (2 * M).div_ceil(8);
    let stride = 3 + 16 * M;
    let (rows, _) = out.as_chunks_mut::<N_SUBCARRIERS>();
    assert!(rows.len() >= M && nr * nt == M);
    // read_bfee.c walks j = 0..Nrx*Ntx with tx fastest (MATLAB column order); value j
    // belongs to the `(tx, rx)` row of the output.
    let row_of: [usize; M] = std::array::from_fn(|j| (j % nt) * nr + j / nt);
    let mut pad = [0u8; 3 * 8 + 1];
    // `sc` is the column of every row written, not an index into one sequence.
    #[allow(clippy::needless_range_loop)]
    for sc in 0..N_SUBCARRIERS {
        let bit = 3 + sc * stride;
        let k = bit >> 3;
        let shift = (bit & 7) as u32;
        // 8 bytes per word plus one for the bits shifted in; the last subcarriers read
        // from a zero-padded copy of the tail.
        let src = match payload.get(k..k + 8 * words + 1) {
            Some(s) => s,
            None => {
                let tail = payload.get(k..).unwrap_or_default();
                let t = tail.len().min(pad.len());
                pad[..t].copy_from_slice(&tail[..t]);
                pad[t..].fill(0);
                &pad[..8 * words + 1]
            }
        };
        for w in 0..words {
            let lo = u64::from_le_bytes(src[8 * w..8 * w + 8].try_into().expect("8 bytes"));
            let hi = src[8 * w + 8] as u64;
            // Bytes 8w.. of the subcarrier: (lo >> shift) with hi's low bits on top
            // (written as two shifts so that shift = 0 does not shift by 64).
            let v = (lo >> shift) | ((hi << 1) << (63 - shift));
            let c = i8x8_to_complex(v);
            for (i, c) in c.into_iter().enumerate() {
                let j = 4 * w + i;
                if j < M {
                    rows[row_of[j]][sc].write(c);
                }
            }
        }
    }
}

/// The 8 bytes of `v` (little-endian) as 4 complex values `(i8 re, i8 im)`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn i8x8_to_complex(v: u64) -> [Complex32; 4] {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline, so the intrinsics are always
    // available; the transmutes reinterpret 4 f32 lanes as 2 Complex32 (`repr(C)`
    // `{re, im}`, 16 bytes), for which every bit pattern is valid.
    unsafe {
        let x = _mm_cvtsi64_si128(v as i64);
        // Each byte doubled into a 16-bit lane, then an arithmetic shift: sign-extended.
        let x16 = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(x, x));
        let lo = _mm_cvtepi32_ps(_mm_srai_epi32::<16>(_mm_unpacklo_epi16(x16, x16)));
        let hi = _mm_cvtepi32_ps(_mm_srai_epi32::<16>(_mm_unpackhi_epi16(x16, x16)));
        let lo: [Complex32; 2] = std::mem::transmute(lo);
        let hi: [Complex32; 2] = std::mem::transmute(hi);
        [lo[0], lo[1], hi[0], hi[1]]
    }
}

/// The 8 bytes of `v` (little-endian) as 4 complex values `(i8 re, i8 im)`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn i8x8_to_complex(v: u64) -> [Complex32; 4] {
    std::array::from_fn(|j| {
        Complex32::new(
            (v >> (16 * j)) as u8 as i8 as f32,
            (v >> (16 * j + 8)) as u8 as i8 as f32,
        )
    })
}

/// `read_bf_file.m`: `if sum(perm) == triangle(Nrx), csi(:,perm(1:Nrx),:) = csi(:,1:Nrx,:)`.
/// Returns whether the permutation was applied. A permutation that would index past
/// Nrx (MATLAB would silently grow the array) is not applied.
fn permute_like_read_bf_file(csi: &mut [Complex32], n_rx: usize, perm: [u8; 3]) -> bool {
    const TRIANGLE: [u32; 3] = [1, 3, 6];
    if n_rx == 1 {
        return false;
    }
    let sum: u32 = perm.iter().map(|&p| p as u32).sum();
    if sum != TRIANGLE[n_rx - 1] || perm[..n_rx].iter().any(|&p| p as usize > n_rx) {
        return false;
    }
    // `(n_tx, n_rx, 30)` in C order: each (tx, rx) row is 30 contiguous values.
    let mut old = [Complex32::new(0.0, 0.0); 3 * 3 * N_SUBCARRIERS];
    let old = &mut old[..csi.len()];
    old.copy_from_slice(csi);
    let n_tx = csi.len() / (n_rx * N_SUBCARRIERS);
    // Assignments in order, so a repeated target keeps the last one, as in MATLAB.
    for (i, &p) in perm[..n_rx].iter().enumerate() {
        let target = p as usize - 1;
        for tx in 0..n_tx {
            let row = |rx: usize| (tx * n_rx + rx) * N_SUBCARRIERS;
            csi[row(target)..row(target) + N_SUBCARRIERS]
                .copy_from_slice(&old[row(i)..row(i) + N_SUBCARRIERS]);
        }
    }
    true
}

/// Puts a two-antenna frame's receive chains in antenna order: the chain that antenna
/// `min(perm[0], perm[1])` feeds first. `true` when the frame is now in antenna order.
///
/// Why: `read_bf_file.m` applies the permutation only when it sums to 1, 3 or 6 for
/// Nrx = 1, 2, 3, which a two-antenna capture's full three-entry permutation never does,
/// so its chains come in the card's RF-chain order. The card changes that order from
/// packet to packet: in the Gi-z 2x2 recordings here `perm` flips between (1, 3, 2) and
/// (3, 1, 2) in about one packet in eight, and the two antennas' CSI trade places each
/// time (a receive chain's power against the other jumps by 5-10 dB; `benches/chain_gains.py`,
/// `docs/sensing.md`). Anything that reads antennas against each other needs them in one
/// order.
pub(crate) fn order_two_antennas(csi: &mut [Complex32], n_rx: usize, perm: [u8; 3]) -> bool {
    let [a, b, _] = perm;
    if n_rx != 2 || a == b || !(1..=3).contains(&a) || !(1..=3).contains(&b) {
        return false;
    }
    if a > b {
        // `(n_tx, 2, 30)` in C order: each transmit chain's two rows trade places.
        for pair in csi.chunks_exact_mut(2 * N_SUBCARRIERS) {
            let (first, second) = pair.split_at_mut(N_SUBCARRIERS);
            first.swap_with_slice(second);
        }
    }
    true
}

/// `order_two_antennas` on a decoded frame whose reader did not: an Intel 5300 frame
/// with two receive antennas whose permutation was not applied. What the engine does to
/// every frame that reaches an environment, however it was read. `true` when it changed
/// the frame's metadata (its chains may or may not have traded places).
pub fn put_in_antenna_order(frame: &mut CsiFrame) -> bool {
    let FrameMeta::Intel5300(meta) = &mut frame.meta else {
        return false;
    };
    if meta.permuted || frame.csi.dim().1 != 2 || !frame.csi.is_standard_layout() {
        return false;
    }
    let Some(rows) = frame.csi.as_slice_mut() else {
        return false;
    };
    meta.permuted = order_two_antennas(rows, 2, meta.perm);
    meta.permuted
}

fn dbinv(x: f64) -> f64 {
    10f64.powf(x / 10.0)
}

/// `dbinv` of every 8-bit RSSI, computed once with the same arithmetic.
fn dbinv_u8(r: u8) -> f64 {
    static TABLE: std::sync::OnceLock<[f64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|i| dbinv(i as f64)))[r as usize]
}

/// `get_total_rss.m`: total received power in dBm from the per-chain RSSI and AGC.
pub fn get_total_rss(meta: &Intel5300Meta) -> f64 {
    rss_db(meta) - 44.0 - meta.agc as f64
}

/// The per-chain RSSI summed in linear power, in dB (`get_total_rss.m` before the
/// -44 dB and AGC corrections).
fn rss_db(meta: &Intel5300Meta) -> f64 {
    let mut mag = 0.0;
    for r in [meta.rssi_a, meta.rssi_b, meta.rssi_c] {
        if r != 0 {
            mag += dbinv_u8(r);
        }
    }
    10.0 * mag.log10()
}

/// `get_scaled_csi.m`: CSI in units of sqrt(SNR), computed in `f64` exactly as the
/// official MATLAB function does (including its 4.5 dB approximation for 3 Tx).
pub fn get_scaled_csi(csi: &Array3<Complex32>, meta: &Intel5300Meta) -> Array3<Complex64> {
    let csi64 = csi.mapv(|c| Complex64::new(c.re as f64, c.im as f64));
    let csi_pwr: f64 = csi64.iter().map(|c| c.norm_sqr()).sum();
    let rssi_pwr = dbinv(get_total_rss(meta));
    let scale = rssi_pwr / (csi_pwr / 30.0);
    let noise_db = if meta.noise == -127 {
        -92.0
    } else {
        meta.noise as f64
    };
    let thermal_noise_pwr = dbinv(noise_db);
    let quant_error_pwr = scale * (meta.n_rx as f64 * meta.n_tx as f64);
    let total_noise_pwr = thermal_noise_pwr + quant_error_pwr;
    let factor = (scale / total_noise_pwr).sqrt();
    // MATLAB multiplies in two steps; keep the same order so rounding matches.
    let extra = match meta.n_tx {
        2 => Some(2f64.sqrt()),
        3 => Some(dbinv(4.5).sqrt()),
        _ => None,
    };
    let mut out = csi64.mapv(|c| c * factor);
    if let Some(x) = extra {
        out.mapv_inplace(|c| c * x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n_rx: u8, n_tx: u8, fill: u8) -> Vec<u8> {
        let len = bfee_csi_len(n_rx as usize, n_tx as usize);
        let mut body = vec![0u8; BFEE_HEADER + len];
        body[8] = n_rx;
        body[9] = n_tx;
        body[10] = 30;
        body[14] = 40;
        body[16..18].copy_from_slice(&(len as u16).to_le_bytes());
        for b in &mut body[BFEE_HEADER..] {
            *b = fill;
        }
        let mut rec = ((body.len() + 1) as u16).to_be_bytes().to_vec();
        rec.push(BFEE_CODE);
        rec.extend(body);
        rec
    }

    fn read_all(bytes: &[u8]) -> Vec<Result<CsiFrame, CsiError>> {
        Intel5300Reader::new(bytes, "mem").collect()
    }

    #[test]
    fn two_antenna_frames_come_in_antenna_order_when_asked() {
        // (n_tx, 2, 30): transmit chain t, receive chain r holds t * 10 + r everywhere.
        let frame = |perm: [u8; 3]| {
            let csi = Array3::from_shape_fn((2, 2, 30), |(t, r, _)| {
                Complex32::new((t * 10 + r) as f32, 0.0)
            });
            let mut f = CsiFrame::from_csi(0.0, csi, CsiFormat::Intel5300);
            f.meta = FrameMeta::Intel5300(Intel5300Meta {
                n_rx: 2,
                n_tx: 2,
                perm,
                ..Default::default()
            });
            f
        };
        let chain = |f: &CsiFrame, t: usize, r: usize| f.csi[[t, r, 7]].re;
        // Antenna 3 feeds the first RF chain, antenna 1 the second: they trade places.
        let mut swapped = frame([3, 1, 2]);
        assert!(put_in_antenna_order(&mut swapped));
        assert_eq!(
            [
                chain(&swapped, 0, 0),
                chain(&swapped, 0, 1),
                chain(&swapped, 1, 0)
            ],
            [1.0, 0.0, 11.0]
        );
        let FrameMeta::Intel5300(m) = &swapped.meta else {
            unreachable!()
        };
        assert!(m.permuted);
        // Already in order: left as it is, but marked; a second call changes nothing.
        let mut kept = frame([1, 3, 2]);
        assert!(put_in_antenna_order(&mut kept));
        assert_eq!([chain(&kept, 0, 0), chain(&kept, 1, 1)], [0.0, 11.0]);
        assert!(!put_in_antenna_order(&mut kept));
        // A permutation that names one antenna twice says nothing: untouched.
        let mut odd = frame([2, 2, 1]);
        assert!(!put_in_antenna_order(&mut odd));
        assert_eq!(chain(&odd, 0, 1), 1.0);
        // Frames of other formats are never touched.
        let mut other = frame([3, 1, 2]);
        other.meta = FrameMeta::None;
        assert!(!put_in_antenna_order(&mut other));
        assert_eq!(chain(&other, 0, 0), 0.0);
    }

    #[test]
    fn decodes_synthetic_record_shape() {
        let frames = read_all(&record(3, 2, 0));
        assert_eq!(frames.len(), 1);
        let f = frames[0].as_ref().unwrap();
        assert_eq!(f.csi.shape(), &[2, 3, 30]);
    }

    #[test]
    fn truncated_record_is_an_error_with_offset() {
        let mut bytes = record(1, 1, 7);
        bytes.extend(record(2, 1, 7));
        let first_len = record(1, 1, 7).len();
        for cut in 1..bytes.len() {
            let out = read_all(&bytes[..cut]);
            let oks = out.iter().filter(|r| r.is_ok()).count();
            assert_eq!(oks, usize::from(cut >= first_len));
            if cut != first_len {
                let err = out.last().unwrap().as_ref().unwrap_err();
                assert!(matches!(err, CsiError::Truncated { .. }), "{err}");
                let expected = if cut < first_len { 0 } else { first_len as u64 };
                assert_eq!(err.offset(), expected);
            }
        }
    }

    #[test]
    fn impossible_antenna_count_is_reported_and_reading_goes_on() {
        let mut bad = record(1, 1, 0);
        bad[3 + 8] = 9; // Nrx
        bad.extend(record(1, 1, 0));
        let out = read_all(&bad);
        assert_eq!(out.len(), 2);
        let msg = out[0].as_ref().unwrap_err().to_string();
        assert!(
            msg.contains("Nrx=9") && msg.contains("mem, byte 0"),
            "{msg}"
        );
        assert!(out[1].is_ok());
    }

    #[test]
    fn zero_length_record_ends_the_stream() {
        let out = read_all(&[0, 0, 0xBB, 1, 2, 3]);
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("record length 0"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        for round in 0..2000 {
            let n = (round * 7) % 600;
            let mut bytes = Vec::with_capacity(n);
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            if round % 3 == 0 && n > 3 {
                bytes[2] = BFEE_CODE;
            }
            let _ = read_all(&bytes);
        }
    }
}
