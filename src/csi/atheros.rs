//! Atheros CSI Tool logs (ath9k, QCA9558/AR9580 family).
//!
//! Each record is `[u16 length]` followed by a 25-byte status header, `csi_len` bytes
//! of packed 10-bit CSI and `payload_len` bytes of the received frame, where
//! `length = 25 + csi_len + payload_len`. Header integers are in the byte order of the
//! machine that logged them: the official `read_log_file.m` reads big-endian (the tool
//! ran on MIPS routers), logs written on x86 are little-endian. The reader decides
//! from the first record (the length identity above holds in exactly one order), or
//! takes the order the caller names in [`AtherosOptions::endianness`].
//!
//! CSI decoding follows the official `read_csi.c`: 16-bit little-endian words feed a
//! bit buffer, each value is 10-bit two's complement, imaginary part first, and the
//! loop order is tone, then nc (transmit), then nr (receive) innermost. The official
//! MATLAB array is `nr × nc × tones`; here it is `(n_tx = nc, n_rx = nr, tones)` with
//! the same values at the same (tx, rx, tone).
//!
//! Deviation from the official reader, chosen on purpose: `read_log_file.m` stops
//! when fewer than 420 bytes would remain after a record and then drops its last
//! entry, so it returns one or two records fewer than the file holds (399 of 401 for
//! the sample file). This reader returns every complete record and reports a record
//! cut short by the end of the file as a truncation error.
//!
//! Frame timestamp: the record's 64-bit timestamp (the NIC TSF, microseconds) in
//! seconds. `CsiFrame::rssi` is the combined RSSI as the driver reports it, which
//! for ath9k is in dB above the noise floor, not dBm.

use std::io::Read;
use std::mem::MaybeUninit;

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::meta::{channel_from_mhz, int, FrameMeta, MetaValue};
use super::source::Source;
use super::table::{reserve_values, CsiTable, FrameInfo};
use super::{CsiFormat, CsiFrame};

/// Bytes of status header after the length field.
pub const HEADER_LEN: usize = 25;

/// Byte order of the record headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endianness {
    /// Least significant byte first (logs written on x86).
    Little,
    /// Most significant byte first (logs written on the MIPS routers the tool ran on).
    Big,
}

/// Options for [`AtherosReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AtherosOptions {
    /// Header byte order; `None` detects it from the first record.
    pub endianness: Option<Endianness>,
}

/// The status header fields, named as `read_log_file.m` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtherosMeta {
    /// NIC TSF, microseconds.
    pub timestamp: u64,
    /// Bytes of packed CSI after the header (0 when the record carries none).
    pub csi_len: u16,
    /// Channel centre frequency in MHz.
    pub channel: u16,
    /// PHY error flags the driver reported for the frame (0: none).
    pub err_info: u8,
    /// Noise floor as the driver reports it (raw byte, not converted to dBm).
    pub noise_floor: u8,
    /// PHY rate code of the received frame (the driver's `Rate` byte).
    pub rate: u8,
    /// Channel width code: 1 is 40 MHz, anything else 20 MHz.
    pub bandwidth: u8,
    /// Subcarriers (tones) in the CSI, 56 at 20 MHz and 114 at 40 MHz.
    pub num_tones: u8,
    /// Receive antennas in the CSI (`n_rx`).
    pub nr: u8,
    /// Transmit streams in the CSI (`n_tx`).
    pub nc: u8,
    /// Combined RSSI, dB above the noise floor (not dBm).
    pub rssi: u8,
    /// RSSI of receive chain 0, dB above the noise floor.
    pub rssi1: u8,
    /// RSSI of receive chain 1, dB above the noise floor.
    pub rssi2: u8,
    /// RSSI of receive chain 2, dB above the noise floor.
    pub rssi3: u8,
    /// Bytes of the received frame after the CSI.
    pub payload_len: u16,
    /// Whether the record's header was read big-endian.
    pub big_endian: bool,
}

impl AtherosMeta {
    pub(crate) fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        vec![
            ("timestamp", int(self.timestamp as i64)),
            ("csi_len", int(self.csi_len)),
            ("channel", int(self.channel)),
            ("err_info", int(self.err_info)),
            ("noise_floor", int(self.noise_floor)),
            ("Rate", int(self.rate)),
            ("bandWidth", int(self.bandwidth)),
            ("num_tones", int(self.num_tones)),
            ("nr", int(self.nr)),
            ("nc", int(self.nc)),
            ("rssi", int(self.rssi)),
            ("rssi1", int(self.rssi1)),
            ("rssi2", int(self.rssi2)),
            ("rssi3", int(self.rssi3)),
            ("payload_len", int(self.payload_len)),
            ("big_endian", MetaValue::Bool(self.big_endian)),
        ]
    }
}

/// Streams frames from an Atheros CSI Tool log; one item per record.
pub struct AtherosReader<R: Read> {
    src: Source<R>,
    endianness: Option<Endianness>,
    done: bool,
    recoverable: bool,
}

fn u16_in(order: Endianness, b: [u8; 2]) -> u16 {
    match order {
        Endianness::Little => u16::from_le_bytes(b),
        Endianness::Big => u16::from_be_bytes(b),
    }
}

/// Whether a record starting with `len` and `header` is consistent in `order`.
fn consistent(order: Endianness, len: [u8; 2], header: &[u8]) -> bool {
    let field_len = u16_in(order, len) as usize;
    let csi_len = u16_in(order, [header[8], header[9]]) as usize;
    let payload_len = u16_in(order, [header[23], header[24]]) as usize;
    field_len == HEADER_LEN + csi_len + payload_len
}

/// Which byte order makes the record `len` + `header` consistent, if exactly one does.
pub fn detect_endianness(len: [u8; 2], header: &[u8]) -> Option<Endianness> {
    if header.len() < HEADER_LEN {
        return None;
    }
    let le = consistent(Endianness::Little, len, header);
    let be = consistent(Endianness::Big, len, header);
    match (le, be) {
        (true, false) => Some(Endianness::Little),
        (false, true) => Some(Endianness::Big),
        // Symmetric values (e.g. all lengths palindromic) cannot tell; both readings agree
        // on the lengths then, and little-endian is the common case today.
        (true, true) => Some(Endianness::Little),
        (false, false) => None,
    }
}

/// The format table's view of this reader (`super::formats`).
impl<R: Read> super::formats::FormatReader for AtherosReader<R> {
    fn offset(&self) -> u64 {
        AtherosReader::offset(self)
    }

    fn next_into(
        &mut self,
        table: &mut super::table::CsiTable,
    ) -> Option<Result<(), super::error::CsiError>> {
        AtherosReader::next_into(self, table)
    }
}

impl<R: Read> AtherosReader<R> {
    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset
    }

    /// Reads `reader`, naming it `name` in errors; the byte order is detected from the
    /// first record.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        Self::with_options(reader, name, AtherosOptions::default())
    }

    /// Reads `reader`, naming it `name` in errors, with the byte order `options` names.
    pub fn with_options(reader: R, name: impl Into<String>, options: AtherosOptions) -> Self {
        AtherosReader {
            src: Source::new(reader, name.into()),
            endianness: options.endianness,
            done: false,
            recoverable: false,
        }
    }

    fn next_frame(&mut self) -> Result<Option<CsiFrame>, CsiError> {
        let Some((meta, csi)) =
            self.next_record(|bytes, [nc, nr, tones]| decode_csi(bytes, nr, nc, tones))?
        else {
            return Ok(None);
        };
        Ok(Some(CsiFrame {
            timestamp: meta.timestamp as f64 * 1e-6,
            csi,
            rssi: Some(meta.rssi as f32),
            noise: None,
            format: CsiFormat::Atheros,
            channel: channel_from_mhz(meta.channel as u32),
            bandwidth_mhz: Some(bandwidth_mhz(&meta)),
            sequence: None,
            meta: FrameMeta::Atheros(meta),
        }))
    }

    /// Like [`Iterator::next`], but decodes the CSI straight into `table` (no per-frame
    /// array); `Some(Ok(()))` when a frame was appended.
    pub(crate) fn next_into(&mut self, table: &mut CsiTable) -> Option<Result<(), CsiError>> {
        if self.done {
            return None;
        }
        self.recoverable = false;
        let start = table.csi.len();
        let decoded = self.next_record(|bytes, [nc, nr, tones]| {
            let n = nc * nr * tones;
            reserve_values(&mut table.csi, n);
            // Decoded straight into the spare capacity: zero-filling first would write
            // the whole output twice.
            decode_csi_into(
                bytes,
                nr,
                nc,
                tones,
                &mut table.csi.spare_capacity_mut()[..n],
            );
            // SAFETY: decode_csi_into writes all n values (every (c, r, k)).
            unsafe { table.csi.set_len(start + n) };
            [nc, nr, tones]
        });
        match decoded {
            Ok(Some((meta, shape))) => {
                table.push_info(FrameInfo {
                    start,
                    shape,
                    timestamp: meta.timestamp as f64 * 1e-6,
                    rssi: Some(meta.rssi as f32),
                    noise: None,
                    channel: channel_from_mhz(meta.channel as u32),
                    bandwidth_mhz: Some(bandwidth_mhz(&meta)),
                    sequence: None,
                    meta: FrameMeta::Atheros(meta),
                });
                Some(Ok(()))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // A record cut in its payload was decoded before the cut was found.
                table.csi.truncate(start);
                self.done = !self.recoverable;
                Some(Err(e))
            }
        }
    }

    /// Reads and checks one record; `emit` decodes its CSI bytes, given `[nc, nr, tones]`.
    fn next_record<T>(
        &mut self,
        emit: impl FnOnce(&[u8], [usize; 3]) -> T,
    ) -> Result<Option<(AtherosMeta, T)>, CsiError> {
        let start = self.src.offset;
        let Some(b) = self
            .src
            .read_or_eof(2 + HEADER_LEN, "record header", start)?
        else {
            return Ok(None);
        };
        let len = [b[0], b[1]];
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&b[2..]);
        let order = match self.endianness {
            Some(o) => o,
            None => {
                let o = detect_endianness(len, &h).ok_or_else(|| {
                    self.src.malformed(
                        start,
                        "first record's length does not equal 25 + csi_len + payload_len in \
                         either byte order: not an Atheros CSI Tool log",
                    )
                })?;
                self.endianness = Some(o);
                o
            }
        };
        let field_len = u16_in(order, len) as usize;
        let u16h = |i: usize| u16_in(order, [h[i], h[i + 1]]);
        let timestamp = match order {
            Endianness::Little => u64::from_le_bytes(h[0..8].try_into().expect("8 bytes")),
            Endianness::Big => u64::from_be_bytes(h[0..8].try_into().expect("8 bytes")),
        };
        let meta = AtherosMeta {
            timestamp,
            csi_len: u16h(8),
            channel: u16h(10),
            err_info: h[12],
            noise_floor: h[13],
            rate: h[14],
            bandwidth: h[15],
            num_tones: h[16],
            nr: h[17],
            nc: h[18],
            rssi: h[19],
            rssi1: h[20],
            rssi2: h[21],
            rssi3: h[22],
            payload_len: u16h(23),
            big_endian: order == Endianness::Big,
        };
        let (csi_len, payload_len) = (meta.csi_len as usize, meta.payload_len as usize);
        if field_len != HEADER_LEN + csi_len + payload_len {
            // The length prefix and the header disagree, so the next record's start is unknown.
            return Err(self.src.malformed(
                start,
                format!(
                    "record length {field_len} is not 25 + csi_len {csi_len} + payload_len {payload_len}"
                ),
            ));
        }
        let (nr, nc, tones) = (meta.nr as usize, meta.nc as usize, meta.num_tones as usize);
        let problem = if csi_len == 0 {
            Some("record carries no CSI (csi_len 0)".to_string())
        } else if !(1..=3).contains(&nr) || !(1..=3).contains(&nc) || tones == 0 {
            Some(format!(
                "impossible dimensions nr={nr}, nc={nc}, num_tones={tones} (ath9k has 1 to 3 antennas)"
            ))
        } else if csi_len * 8 < nr * nc * tones * 20 {
            Some(format!(
                "csi_len {csi_len} is too short for nr={nr} × nc={nc} × {tones} tones of 20 bits"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            // The length prefix was sound: step over the record so the next one is found.
            self.src
                .skip((csi_len + payload_len) as u64, "record", start)?;
            self.recoverable = true;
            return Err(self.src.malformed(start, problem));
        }
        // Only the CSI is read; the payload (most of each record) is skipped uncopied,
        // after the CSI is decoded.
        let csi_bytes = self.src.read(csi_len, "record", start)?;
        let decoded = emit(csi_bytes, [nc, nr, tones]);
        self.src.skip(payload_len as u64, "record", start)?;
        Ok(Some((meta, decoded)))
    }
}

fn bandwidth_mhz(meta: &AtherosMeta) -> u16 {
    if meta.bandwidth == 1 {
        40
    } else {
        20
    }
}

/// `read_csi.c`: 10-bit values, imaginary first, tone-major then nc then nr.
fn decode_csi(bytes: &[u8], nr: usize, nc: usize, tones: usize) -> Array3<Complex32> {
    let n = nc * nr * tones;
    let mut values = Vec::with_capacity(n);
    decode_csi_into(bytes, nr, nc, tones, &mut values.spare_capacity_mut()[..n]);
    // SAFETY: decode_csi_into writes all n values.
    unsafe { values.set_len(n) };
    Array3::from_shape_vec((nc, nr, tones), values).expect("nc * nr * tones values")
}

/// [`decode_csi`] into `out` (the `(nc, nr, tones)` C-order values; every one is
/// written).
///
/// `read_csi.c` reads 16-bit little-endian words and takes 10 bits at a time from the
/// low end, which is the little-endian bit stream of the bytes: value `v` (tone-major,
/// then nc, then nr) has its imaginary part at bit `20 v` and its real part at
/// `20 v + 10`. The loops run in output order, one `(c, r)` row of tones at a time;
/// each value is one 4-byte load, a shift and two sign extensions.
fn decode_csi_into(
    bytes: &[u8],
    nr: usize,
    nc: usize,
    tones: usize,
    out: &mut [MaybeUninit<Complex32>],
) {
    let m = nr * nc;
    debug_assert_eq!(out.len(), m * tones);
    // Tones whose every 4-byte load lies inside `bytes` (the last value's is the furthest).
    let fast = (0..=tones)
        .rev()
        .find(|&k| k == 0 || (20 * (k * m - 1)) / 8 + 4 <= bytes.len())
        .unwrap_or(0);
    for (q, row) in out.chunks_exact_mut(tones).take(m).enumerate() {
        let (head, tail) = row.split_at_mut(fast);
        for (k, v) in head.iter_mut().enumerate() {
            let bit = 20 * (k * m + q);
            let i = bit >> 3;
            let w = u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
            let w = w >> (bit & 7);
            v.write(Complex32::new(sign10(w >> 10), sign10(w)));
        }
        for (k, v) in tail.iter_mut().enumerate() {
            let bit = 20 * ((fast + k) * m + q);
            v.write(Complex32::new(
                field10(bytes, bit + 10),
                field10(bytes, bit),
            ));
        }
    }
}

/// The low 10 bits of `w` as a two's complement number.
#[inline]
fn sign10(w: u32) -> f32 {
    (((w << 22) as i32) >> 22) as f32
}

/// The signed 10-bit field at `bit` of the little-endian bit stream `bytes`. Bits past
/// the end read as zero (the official code may read one word past `csi_len`; those bits
/// are never used).
#[inline]
fn field10(bytes: &[u8], bit: usize) -> f32 {
    let i = bit >> 3;
    let mut w = [0u8; 4];
    for (d, s) in w.iter_mut().zip(bytes.get(i..).unwrap_or_default()) {
        *d = *s;
    }
    sign10(u32::from_le_bytes(w) >> (bit & 7))
}

super::source::frame_iterator!(AtherosReader);

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with nr × nc × tones values where value i is (i, -i) (10-bit).
    fn record(order: Endianness, nr: u8, nc: u8, tones: u8) -> Vec<u8> {
        let n = nr as usize * nc as usize * tones as usize;
        let mut bits: Vec<bool> = Vec::new();
        for i in 0..n {
            let re = (i % 500) as i32;
            for v in [-re, re] {
                let v = (v & 0x3ff) as u32; // imaginary first
                for b in 0..10 {
                    bits.push(v >> b & 1 == 1);
                }
            }
        }
        let csi_len = bits.len().div_ceil(8);
        let mut csi = vec![0u8; csi_len];
        for (i, b) in bits.iter().enumerate() {
            if *b {
                csi[i / 8] |= 1 << (i % 8);
            }
        }
        let put16 = |v: u16| match order {
            Endianness::Little => v.to_le_bytes(),
            Endianness::Big => v.to_be_bytes(),
        };
        let payload_len = 3u16;
        let mut rec = Vec::new();
        rec.extend(put16((HEADER_LEN + csi_len + payload_len as usize) as u16));
        rec.extend(match order {
            Endianness::Little => 1234u64.to_le_bytes(),
            Endianness::Big => 1234u64.to_be_bytes(),
        });
        rec.extend(put16(csi_len as u16));
        rec.extend(put16(2437));
        rec.extend([0, 0, 0x8f, 0, tones, nr, nc, 40, 41, 42, 43]);
        rec.extend(put16(payload_len));
        rec.extend(csi);
        rec.extend([1, 2, 3]);
        rec
    }

    #[test]
    fn both_byte_orders_decode_the_same_values() {
        for order in [Endianness::Little, Endianness::Big] {
            let bytes = record(order, 3, 2, 56);
            let frames: Vec<_> = AtherosReader::new(&bytes[..], "mem").collect();
            assert_eq!(frames.len(), 1);
            let f = frames[0].as_ref().unwrap();
            assert_eq!(f.csi.shape(), &[2, 3, 56]);
            // value i sits at tone i / (nc*nr), tx (i / nr) % nc, rx i % nr.
            for i in [0usize, 1, 5, 77, 335] {
                let (k, c, r) = (i / 6, (i / 3) % 2, i % 3);
                assert_eq!(
                    f.csi[[c, r, k]],
                    Complex32::new(i as f32, -(i as f32)),
                    "{order:?} {i}"
                );
            }
            assert_eq!(f.timestamp, 1234f64 * 1e-6);
            assert_eq!(f.channel, Some(6));
        }
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let bytes = record(Endianness::Little, 2, 2, 56);
        for cut in 0..bytes.len() {
            let out: Vec<_> = AtherosReader::new(&bytes[..cut], "mem").collect();
            if cut > 0 {
                assert!(
                    matches!(out.last(), Some(Err(CsiError::Truncated { offset: 0, .. }))),
                    "cut {cut}"
                );
            } else {
                assert!(out.is_empty());
            }
        }
        let mut seed = 88172645463325252u64;
        for round in 0..2000 {
            let mut b = Vec::new();
            for _ in 0..(round % 300) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.push(seed as u8);
            }
            let _: Vec<_> = AtherosReader::new(&b[..], "mem").collect();
            let _: Vec<_> = AtherosReader::with_options(
                &b[..],
                "mem",
                AtherosOptions {
                    endianness: Some(Endianness::Big),
                },
            )
            .collect();
        }
    }

    #[test]
    fn a_record_with_impossible_dimensions_is_reported_and_skipped() {
        let good = record(Endianness::Little, 2, 2, 56);
        let mut bad = record(Endianness::Little, 2, 2, 56);
        bad[2 + 8 + 2 + 2 + 5] = 7; // nr = 7
        let file: Vec<u8> = [good.clone(), bad, good].concat();
        let out: Vec<_> = AtherosReader::new(&file[..], "mem").collect();
        assert_eq!(out.len(), 3);
        assert!(
            out[0].is_ok() && out[2].is_ok(),
            "reading goes on after the bad record"
        );
        assert!(matches!(&out[1], Err(e) if e.to_string().contains("impossible dimensions nr=7")));
        // The table path (Python's read_csi) agrees and keeps no values of the bad record.
        let mut reader = AtherosReader::new(&file[..], "mem");
        let mut table = CsiTable::new("mem", CsiFormat::Atheros);
        let mut errors = 0;
        while let Some(r) = reader.next_into(&mut table) {
            errors += r.is_err() as usize;
        }
        assert_eq!(
            (table.len(), errors, table.csi.len()),
            (2, 1, 2 * 2 * 2 * 56)
        );
        assert_eq!(
            table.frame_csi(1),
            out[2].as_ref().unwrap().csi.as_slice().unwrap()
        );
    }
}
