//! PicoScenes `.csi` files (RxS frames).
//!
//! A file is a sequence of frames `[u32 length][length bytes]`; each frame starts with
//! magic `0x20150315`, a u16 frame version (1) and the number of receive-side
//! segments, followed by those segments and then the received MPDU. A segment is
//! `[u32 length][u8 name length][name][u16 version][content]`. All integers are
//! little-endian. This reader decodes, following the PicoScenes parsing core
//! (`RxSBasicSegment.cxx`, `CSISegment.cxx`):
//!
//! - `RxSBasic` v1-v3: device type, hardware timestamp, frequencies, bandwidth, MCS,
//!   antenna counts, noise floor and RSSI (v1/v2 store RSSI relative to the noise
//!   floor; the official parser adds the noise floor and so does this one);
//! - `CSI` v1-v4 (v4 adds the firmware version byte) for the QCA9300 (packed 10-bit
//!   values, imaginary first, rx fastest, then stream, then tone), IWL5300 (the Linux
//!   CSI Tool's bfee bit stream, 30 subcarrier groups, receive chains reordered by the
//!   antenna selection as `parseIWL5300CSIData` does), Intel MVM (AX200 0x2000, AX210
//!   0x2100: int16 pairs) and USRP software radios (0x1234: stored subcarrier indices and
//!   a complex-double matrix, see `picoscenes_usrp.rs`).
//!
//! Other segments (ExtraInfo, MVMExtra, PilotCSI, BasebandSignal...) and the MPDU are
//! skipped. A frame without a CSI segment, or with a CSI segment this reader does not
//! decode (other device types, a later segment version), is reported and reading goes
//! on: the frame length keeps the framing intact.
//!
//! Frame shape: `(n_sts + n_ess, n_rx, n_tones)`, tones in ascending subcarrier order
//! (`-28..=28` without DC for HT20). Frame timestamp: `RxSBasic.tstamp` (the NIC clock,
//! microseconds) in seconds.

use std::io::Read;

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::meta::{channel_from_mhz, int, FrameMeta, MetaValue};
use super::source::Source;
use super::{CsiFormat, CsiFrame};

#[path = "picoscenes_usrp.rs"]
mod usrp;
pub use usrp::DEVICE_USRP;

/// Frame magic number.
pub const MAGIC: u32 = 0x2015_0315;
/// Largest frame accepted; a garbage length beyond it ends the read instead of
/// allocating gigabytes.
const MAX_FRAME_LEN: u32 = 1 << 26;

/// PicoScenes device type code ([`PicoScenesMeta::device_type`]) of the QCA9300
/// (Atheros) NIC.
pub const DEVICE_QCA9300: u16 = 0x9300;
/// Device type code of the Intel 5300 NIC.
pub const DEVICE_IWL5300: u16 = 0x5300;
/// Device type code of the Intel MVM NICs (AX200).
pub const DEVICE_IWLMVM: u16 = 0x2000;
/// Device type code of the Intel AX210.
pub const DEVICE_IWLMVM_AX210: u16 = 0x2100;
/// SDR device types PicoScenes names but whose CSI its published parser does not decode.
const DEVICE_VIRTUAL_SDR: u16 = 0x1000;
const DEVICE_SOAPY_SDR: u16 = 0x24d2;

/// `RxSBasic` and `CSI` header fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PicoScenesMeta {
    /// The NIC or radio that measured the frame (`DEVICE_*` codes).
    pub device_type: u16,
    /// Hardware timestamp, microseconds.
    pub tstamp: u64,
    /// Centre frequency of the channel, MHz.
    pub center_freq: i16,
    /// Frequency of the primary (control) 20 MHz channel, MHz.
    pub control_freq: i16,
    /// Channel bandwidth the receiver was tuned to, MHz.
    pub cbw: u16,
    /// 802.11 packet format code (0 non-HT, 1 HT, 2 VHT, 3 HE-SU, 4 HE-MU...).
    pub packet_format: u8,
    /// Bandwidth of the received packet, MHz.
    pub pkt_cbw: u16,
    /// Guard interval, nanoseconds.
    pub guard_interval: u16,
    /// Modulation and coding scheme index.
    pub mcs: u8,
    /// Space-time streams of the packet (axis 0 of the CSI, with `num_ess`).
    pub num_sts: u8,
    /// Extension spatial streams of the packet (sounded beyond `num_sts`).
    pub num_ess: u8,
    /// Receive chains in the CSI.
    pub num_rx: u8,
    /// Users of a multi-user packet (1 otherwise).
    pub num_user: u8,
    /// This receiver's index among `num_user`.
    pub user_index: u8,
    /// Noise floor, dBm.
    pub noise_floor: i8,
    /// Received signal strength, dBm (v1/v2 values made absolute by adding the noise
    /// floor, as the official parser does).
    pub rssi: i8,
    /// RSSI of each of the first three receive chains, dBm.
    pub rssi_ctl: [i8; 3],
    /// Version of the `RxSBasic` segment (1 to 3).
    pub rxs_basic_version: u16,
    /// Version of the `CSI` segment (1 to 4).
    pub csi_version: u16,
    /// Firmware version from `CSI` v4 (0 before).
    pub firmware_version: u8,
    /// `NumCSI` from `CSI` v3 and later (1 before).
    pub num_csi: u16,
    /// Carrier frequency from the `CSI` segment, Hz.
    pub carrier_freq: u64,
    /// Baseband sampling rate, samples per second.
    pub sampling_rate: u64,
    /// Subcarrier spacing, Hz.
    pub subcarrier_bandwidth: u32,
    /// Tones (subcarriers) in the CSI.
    pub num_tones: u16,
    /// Antenna selection byte (the Intel 5300's receive-chain permutation).
    pub ant_sel: u8,
    /// Offset added to the standard subcarrier indices (`CSI` v2 and later, 0 before).
    pub subcarrier_offset: i16,
    /// Subcarrier indices of the CSI tones, in array order.
    pub subcarrier_indices: Vec<i16>,
}

impl PicoScenesMeta {
    pub(crate) fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        vec![
            ("DeviceType", int(self.device_type)),
            ("Timestamp", int(self.tstamp as i64)),
            ("CenterFreq", int(self.center_freq)),
            ("ControlFreq", int(self.control_freq)),
            ("CBW", int(self.cbw)),
            ("PacketFormat", int(self.packet_format)),
            ("PacketCBW", int(self.pkt_cbw)),
            ("GI", int(self.guard_interval)),
            ("MCS", int(self.mcs)),
            ("NumSTS", int(self.num_sts)),
            ("NumESS", int(self.num_ess)),
            ("NumRx", int(self.num_rx)),
            ("NumUser", int(self.num_user)),
            ("UserIndex", int(self.user_index)),
            ("NoiseFloor", int(self.noise_floor)),
            ("RSSI", int(self.rssi)),
            (
                "RSSI_ctl",
                MetaValue::Ints(self.rssi_ctl.iter().map(|&v| v as i64).collect()),
            ),
            ("FirmwareVersion", int(self.firmware_version)),
            ("NumCSI", int(self.num_csi)),
            ("CarrierFreq", int(self.carrier_freq as i64)),
            ("SamplingRate", int(self.sampling_rate as i64)),
            ("SubcarrierBandwidth", int(self.subcarrier_bandwidth)),
            ("NumTones", int(self.num_tones)),
            ("AntSel", int(self.ant_sel)),
            ("SubcarrierOffset", int(self.subcarrier_offset)),
            (
                "SubcarrierIndex",
                MetaValue::Ints(self.subcarrier_indices.iter().map(|&v| v as i64).collect()),
            ),
        ]
    }
}

/// Streams frames from a PicoScenes `.csi` file; one item per RxS frame.
pub struct PicoScenesReader<R: Read> {
    src: Source<R>,
    done: bool,
    recoverable: bool,
}

/// The format table's view of this reader (`super::formats`).
impl<R: Read> super::formats::FormatReader for PicoScenesReader<R> {
    fn offset(&self) -> u64 {
        PicoScenesReader::offset(self)
    }
}

impl<R: Read> PicoScenesReader<R> {
    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset
    }

    /// A reader over `reader`; `name` is used in error messages.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        PicoScenesReader {
            src: Source::new(reader, name.into()),
            done: false,
            recoverable: false,
        }
    }

    fn next_frame(&mut self) -> Result<Option<CsiFrame>, CsiError> {
        let start = self.src.offset;
        let Some(h) = self.src.read_or_eof(4, "frame length", start)? else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if !(7..=MAX_FRAME_LEN).contains(&len) {
            return Err(self
                .src
                .malformed(start, format!("frame length {len} is impossible")));
        }
        let body = self.src.read(len as usize, "frame", start)?;
        match parse_frame(body) {
            Ok(frame) => Ok(Some(frame)),
            Err((at, problem, unsupported)) => {
                // The frame length was sound, so the next frame is still findable.
                self.recoverable = true;
                let offset = start + 4 + at as u64;
                Err(if unsupported {
                    CsiError::unsupported(&self.src.name, offset, problem)
                } else {
                    self.src.malformed(offset, problem)
                })
            }
        }
    }
}

super::source::frame_iterator!(PicoScenesReader);

/// Error inside a frame: (offset within the frame body, message, is "unsupported").
type FrameError = (usize, String, bool);

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                (
                    self.pos,
                    format!(
                        "{} ends after {} bytes, needs {}",
                        self.what,
                        self.b.len(),
                        self.pos + n
                    ),
                    false,
                )
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let s = self.take(8)?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }
}

fn parse_frame(body: &[u8]) -> Result<CsiFrame, FrameError> {
    let mut c = Cursor {
        b: body,
        pos: 0,
        what: "frame",
    };
    let magic = c.u32()?;
    if magic != MAGIC {
        return Err((
            0,
            format!("frame magic 0x{magic:08x} is not PicoScenes 0x{MAGIC:08x}"),
            false,
        ));
    }
    let version = c.u16()?;
    if version != 1 {
        return Err((
            4,
            format!("frame version {version} (only version 1 is defined)"),
            true,
        ));
    }
    let n_segments = c.u8()?;
    let mut meta = PicoScenesMeta::default();
    let mut have_basic = false;
    let mut csi: Option<Array3<Complex32>> = None;
    for _ in 0..n_segments {
        let seg_start = c.pos;
        let seg_len = c.u32()? as usize;
        let seg = Cursor {
            b: c.take(seg_len)?,
            pos: 0,
            what: "segment",
        };
        let mut s = seg;
        let name_len = s.u8()? as usize;
        let raw_name = s.take(name_len)?;
        let name_bytes = raw_name.strip_suffix(b"\0").unwrap_or(raw_name);
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let seg_version = s.u16()?;
        let content = &s.b[s.pos..];
        let at = seg_start + 4 + s.pos;
        let relocate = |(p, m, u): FrameError| (at + p, format!("{name} segment: {m}"), u);
        match name.as_str() {
            "RxSBasic" => {
                parse_rxs_basic(content, seg_version, &mut meta).map_err(relocate)?;
                have_basic = true;
            }
            "CSI" => {
                csi = Some(parse_csi(content, seg_version, &mut meta).map_err(relocate)?);
            }
            _ => {}
        }
    }
    let Some(csi) = csi else {
        return Err((0, "frame has no CSI segment".into(), false));
    };
    if !have_basic {
        return Err((0, "frame has no RxSBasic segment".into(), false));
    }
    let rssi = meta.rssi;
    let nf = meta.noise_floor;
    Ok(CsiFrame {
        timestamp: meta.tstamp as f64 * 1e-6,
        csi,
        rssi: Some(rssi as f32),
        noise: Some(nf as f32),
        format: CsiFormat::PicoScenes,
        channel: u32::try_from(meta.control_freq)
            .ok()
            .and_then(channel_from_mhz),
        bandwidth_mhz: Some(meta.cbw),
        sequence: None,
        meta: FrameMeta::PicoScenes(Box::new(meta)),
    })
}

fn parse_rxs_basic(b: &[u8], version: u16, m: &mut PicoScenesMeta) -> Result<(), FrameError> {
    let mut c = Cursor {
        b,
        pos: 0,
        what: "RxSBasic content",
    };
    m.rxs_basic_version = version;
    m.device_type = c.u16()?;
    m.tstamp = c.u64()?;
    m.center_freq = c.u16()? as i16;
    match version {
        1 | 2 => {
            m.control_freq = m.center_freq;
            m.packet_format = c.u8()?;
            m.cbw = c.u16()?;
            m.pkt_cbw = m.cbw;
        }
        3 => {
            m.control_freq = c.u16()? as i16;
            m.cbw = c.u16()?;
            m.packet_format = c.u8()?;
            m.pkt_cbw = c.u16()?;
        }
        v => return Err((0, format!("version {v} (this reader knows 1 to 3)"), true)),
    }
    m.guard_interval = c.u16()?;
    m.mcs = c.u8()?;
    m.num_sts = c.u8()?;
    m.num_ess = c.u8()?;
    m.num_rx = c.u8()?;
    (m.num_user, m.user_index) = if version == 1 {
        (1, 0)
    } else {
        (c.u8()?, c.u8()?)
    };
    m.noise_floor = c.u8()? as i8;
    let mut rssi = [0i8; 4];
    for r in &mut rssi {
        *r = c.u8()? as i8;
    }
    if version < 3 {
        // v1/v2 store RSSI relative to the noise floor (RxSBasicSegment.cxx adds it back).
        for r in &mut rssi {
            *r = m.noise_floor.wrapping_add(*r);
        }
    }
    m.rssi = rssi[0];
    m.rssi_ctl = [rssi[1], rssi[2], rssi[3]];
    if c.pos != b.len() {
        return Err((
            c.pos,
            format!("{} bytes where version {version} has {}", b.len(), c.pos),
            false,
        ));
    }
    Ok(())
}

fn parse_csi(
    b: &[u8],
    version: u16,
    m: &mut PicoScenesMeta,
) -> Result<Array3<Complex32>, FrameError> {
    let mut c = Cursor {
        b,
        pos: 0,
        what: "CSI content",
    };
    m.csi_version = version;
    if !(1..=4).contains(&version) {
        return Err((
            0,
            format!("version {version} (this reader knows 1 to 4)"),
            true,
        ));
    }
    let device = c.u16()?;
    // CSISegment.cxx v4Parser: the firmware version byte follows the device type.
    m.firmware_version = if version >= 4 { c.u8()? } else { 0 };
    let _packet_format = c.u8()?;
    let cbw = c.u16()?;
    m.carrier_freq = c.u64()?;
    m.sampling_rate = c.u64()?;
    m.subcarrier_bandwidth = c.u32()?;
    let n_tones = c.u16()? as usize;
    m.num_tones = n_tones as u16;
    let n_sts = c.u8()? as usize;
    let n_rx = c.u8()? as usize;
    let n_ess = c.u8()? as usize;
    m.num_csi = if version >= 3 { c.u16()? } else { 1 };
    m.ant_sel = c.u8()?;
    m.subcarrier_offset = if version >= 2 { c.u16()? as i16 } else { 0 };
    let data_len = c.u32()? as usize;
    let data_at = c.pos;
    let data = c.take(data_len)?;
    if n_tones == 0 || n_rx == 0 || n_sts == 0 {
        return Err((
            0,
            format!("impossible dimensions: {n_tones} tones, {n_sts} streams, {n_rx} rx"),
            false,
        ));
    }
    match device {
        DEVICE_QCA9300 => {
            // CSISegment.cxx: streams per chain come from the data size (it includes ESS).
            let per_chain = if cbw == 20 { 140 } else { 285 };
            let n_streams = data_len / per_chain / n_rx;
            if n_streams == 0 || n_tones * n_rx * n_streams * 20 > data_len * 8 {
                return Err((
                    data_at,
                    format!(
                        "{data_len} CSI bytes do not hold {n_tones} tones × {n_rx} rx of 20 bits"
                    ),
                    false,
                ));
            }
            m.subcarrier_indices = ht_indices(cbw, m.subcarrier_offset);
            Ok(decode_qca9300(data, n_streams, n_rx, n_tones))
        }
        DEVICE_IWLMVM | DEVICE_IWLMVM_AX210 => {
            if n_sts * n_rx * n_tones * 4 != data_len {
                return Err((
                    data_at,
                    format!("{data_len} CSI bytes are not {n_sts}×{n_rx}×{n_tones} int16 pairs"),
                    false,
                ));
            }
            let mut csi = Array3::<Complex32>::zeros((n_sts, n_rx, n_tones));
            // parseIWLMVMCSIDataCore fills a column-major (tones, sts, rx) array.
            for (i, p) in data.chunks_exact(4).enumerate() {
                let (tone, sts, rx) = (i % n_tones, (i / n_tones) % n_sts, i / (n_tones * n_sts));
                csi[[sts, rx, tone]] = Complex32::new(
                    i16::from_le_bytes([p[0], p[1]]) as f32,
                    i16::from_le_bytes([p[2], p[3]]) as f32,
                );
            }
            Ok(csi)
        }
        DEVICE_IWL5300 => {
            // CSISegment.cxx (fromIWL5300): streams per chain come from the data size,
            // (len - 12) / 60 / n_rx, and include the extra spatial streams.
            let n_tx = data_len.saturating_sub(12) / 60 / n_rx;
            let bits = 30 * (3 + 16 * n_rx * n_tx);
            if !(1..=3).contains(&n_rx) || !(1..=3).contains(&n_tx) || data_len * 8 < bits {
                return Err((
                    data_at,
                    format!(
                        "IWL5300 CSI of {data_len} bytes for {n_rx} rx: not 30 subcarriers of \
                         1 to 3 × 1 to 3 antenna pairs"
                    ),
                    false,
                ));
            }
            m.subcarrier_indices = iwl5300_indices(cbw, m.subcarrier_offset);
            Ok(decode_iwl5300(data, n_tx, n_rx, m.ant_sel))
        }
        DEVICE_USRP => {
            // CSISegment.cxx (USRP branch): the header's NumESS counts, not the data size.
            if m.num_csi != 1 {
                return Err((
                    data_at,
                    format!(
                        "USRP CSI segment v{version} holds {} CSI matrices (NumCSI); this \
                         reader returns one per frame",
                        m.num_csi
                    ),
                    true,
                ));
            }
            let relocate = |(p, msg, u): FrameError| (data_at + p, msg, u);
            let (indices, csi) =
                usrp::decode(data, version, n_tones, n_sts + n_ess, n_rx).map_err(relocate)?;
            m.subcarrier_indices = indices;
            Ok(csi)
        }
        DEVICE_VIRTUAL_SDR | DEVICE_SOAPY_SDR => Err((
            0,
            format!(
                "CSI from device type 0x{device:04x} ({}): PicoScenes' published parser \
                 (CSISegment v1-v4) decodes no CSI for it, so neither does this reader",
                if device == DEVICE_VIRTUAL_SDR {
                    "virtual SDR"
                } else {
                    "SoapySDR"
                }
            ),
            true,
        )),
        other => Err((
            0,
            format!(
                "CSI from device type 0x{other:04x} (this reader decodes QCA9300 0x9300, \
                 IWL5300 0x5300, Intel MVM 0x2000/0x2100 and USRP 0x1234)"
            ),
            true,
        )),
    }
}

/// HT subcarrier indices for the QCA9300 (CSISegment.cxx), shifted by `offset`.
fn ht_indices(cbw: u16, offset: i16) -> Vec<i16> {
    let (lo, hi, gap) = if cbw == 40 {
        (-58, 58, 2)
    } else {
        (-28, 28, 1)
    };
    (lo..=hi)
        .filter(|i: &i16| i.abs() >= gap)
        .map(|i| i + offset)
        .collect()
}

/// The 30 subcarrier groups the IWL5300 reports (802.11n grouping, as the Linux CSI
/// Tool documents them), shifted by `offset`.
fn iwl5300_indices(cbw: u16, offset: i16) -> Vec<i16> {
    let base: Vec<i16> = if cbw == 40 {
        (-58..=-2).step_by(4).chain((2..=58).step_by(4)).collect()
    } else {
        (-28..=-2)
            .step_by(2)
            .chain([-1, 1])
            .chain((3..=27).step_by(2))
            .chain([28])
            .collect()
    };
    base.into_iter().map(|i| i + offset).collect()
}

/// `parseIWL5300CSIData`: the bfee bit stream of the Linux CSI Tool (per subcarrier 3
/// bits, then an int8 pair per (rx, tx), tx fastest), with the receive chains put in
/// the order PicoScenes puts them: rx `r` goes to the rank of its antenna number in
/// `antSel` (the entries `(ant_sel & 1) + 1`, `((ant_sel >> 2) & 3) + 1` and, for three
/// chains, `((ant_sel >> 4) & 3) + 1`; ties keep chain order). One chain: no reordering.
fn decode_iwl5300(data: &[u8], n_tx: usize, n_rx: usize, ant_sel: u8) -> Array3<Complex32> {
    let mut csi = Array3::<Complex32>::zeros((n_tx, n_rx, 30));
    let mut sel: Vec<u8> = Vec::with_capacity(3);
    if n_rx > 1 {
        sel.push((ant_sel & 0x1) + 1);
        sel.push(((ant_sel >> 2) & 0x3) + 1);
    }
    if n_rx > 2 {
        sel.push(((ant_sel >> 4) & 0x3) + 1);
    }
    let rank = |rx: usize| -> usize {
        if sel.is_empty() {
            return rx;
        }
        (0..sel.len())
            .filter(|&j| sel[j] < sel[rx] || (sel[j] == sel[rx] && j < rx))
            .count()
    };
    // A straddling read may touch one byte past the values (shifted out again).
    let byte = |i: usize| data.get(i).copied().unwrap_or(0) as u16;
    let mut index = 0usize;
    for sc in 0..30 {
        index += 3;
        let rem = index % 8;
        for rx in 0..n_rx {
            let to = rank(rx);
            for tx in 0..n_tx {
                let at = index / 8;
                let re = ((byte(at) >> rem) | (byte(at + 1) << (8 - rem))) as u8 as i8;
                let im = ((byte(at + 1) >> rem) | (byte(at + 2) << (8 - rem))) as u8 as i8;
                csi[[tx, to, sc]] = Complex32::new(re as f32, im as f32);
                index += 16;
            }
        }
    }
    csi
}

/// `parseQCA9300CSIData`: groups of five bytes hold four 10-bit values; each complex
/// value is (imaginary, real); value order is rx fastest, then stream, then tone.
fn decode_qca9300(data: &[u8], n_sts: usize, n_rx: usize, n_tones: usize) -> Array3<Complex32> {
    let mut csi = Array3::<Complex32>::zeros((n_sts, n_rx, n_tones));
    let total = n_rx * n_sts * n_tones;
    let sign = |v: u32| -> f32 {
        let v = v as i32;
        (if v & 0x200 != 0 { v - 0x400 } else { v }) as f32
    };
    let out = csi.as_slice_mut().expect("fresh array is contiguous");
    // Values arrive with rx fastest, then sts, then tone.
    let (mut rx, mut sts, mut tone) = (0usize, 0usize, 0usize);
    let mut put = |re: f32, im: f32| {
        out[(sts * n_rx + rx) * n_tones + tone] = Complex32::new(re, im);
        rx += 1;
        if rx == n_rx {
            rx = 0;
            sts += 1;
            if sts == n_sts {
                sts = 0;
                tone += 1;
            }
        }
    };
    for r in data[..total / 2 * 5].chunks_exact(5) {
        // Four 10-bit fields, little-endian bit order: imag, real, imag, real.
        let bits = u64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], 0, 0, 0]);
        let v = |i: u32| ((bits >> (10 * i)) & 0x3ff) as u32;
        put(sign(v(1)), sign(v(0)));
        put(sign(v(3)), sign(v(2)));
    }
    csi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(name: &str, version: u16, content: &[u8]) -> Vec<u8> {
        let mut s = vec![name.len() as u8];
        s.extend(name.as_bytes());
        s.extend(version.to_le_bytes());
        s.extend(content);
        let mut out = (s.len() as u32).to_le_bytes().to_vec();
        out.extend(s);
        out
    }

    fn frame() -> Vec<u8> {
        let mut basic = vec![0x00, 0x93];
        basic.extend(5152882u64.to_le_bytes());
        basic.extend(5200u16.to_le_bytes());
        basic.push(1);
        basic.extend(20u16.to_le_bytes());
        basic.extend(400u16.to_le_bytes());
        basic.extend([4, 1, 0, 3, 0xa1, 0x4f, 0x4e, 0x48, 0x3a]);
        let mut csi = vec![0x00, 0x93, 1, 20, 0];
        csi.extend(5_200_000_000u64.to_le_bytes());
        csi.extend(20_000_000u64.to_le_bytes());
        csi.extend(312_500u32.to_le_bytes());
        csi.extend(56u16.to_le_bytes());
        csi.extend([1, 3, 0, 0, 0, 0]);
        csi.extend(420u32.to_le_bytes());
        csi.extend(vec![0x55u8; 420]);
        let mut body = MAGIC.to_le_bytes().to_vec();
        body.extend(1u16.to_le_bytes());
        body.push(2);
        body.extend(segment("RxSBasic", 1, &basic));
        body.extend(segment("CSI", 2, &csi));
        body.extend([0xde, 0xad]);
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend(body);
        f
    }

    #[test]
    fn synthetic_frame_decodes() {
        let bytes = frame();
        let frames: Vec<_> = PicoScenesReader::new(&bytes[..], "mem")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(f.csi.shape(), &[1, 3, 56]);
        assert_eq!(f.rssi, Some(-16.0));
        assert_eq!(f.channel, Some(40));
        let FrameMeta::PicoScenes(m) = &f.meta else {
            panic!()
        };
        assert_eq!(m.subcarrier_indices.len(), 56);
        assert_eq!(m.subcarrier_indices[..3], [-28, -27, -26]);
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let mut bytes = frame();
        bytes.extend(frame());
        let one = frame().len();
        for cut in 0..bytes.len() {
            let out: Vec<_> = PicoScenesReader::new(&bytes[..cut], "mem").collect();
            let oks = out.iter().filter(|r| r.is_ok()).count();
            assert_eq!(oks, usize::from(cut >= one));
            if cut != 0 && cut != one {
                assert!(
                    matches!(out.last(), Some(Err(CsiError::Truncated { .. }))),
                    "cut {cut}"
                );
            }
        }
        let mut seed = 0xdead_beef_cafe_f00du64;
        for round in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..(1 + round % 5) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 24) as u8;
            }
            let _: Vec<_> = PicoScenesReader::new(&b[..], "mem").collect();
        }
    }

    /// How a synthetic USRP segment is laid out.
    #[derive(Clone, Copy, Debug)]
    struct Usrp {
        csi_version: u16,
        matrix_version: u8,
        column_major: bool,
        /// Trailing 1-dimensions written after (tones, streams, rx).
        extra_dims: usize,
        n_sts: usize,
        n_ess: usize,
        n_rx: usize,
        n_tones: usize,
    }

    /// The value written for (stream, rx, tone): distinct and exact in f32.
    fn usrp_value(tx: usize, rx: usize, tone: usize) -> (f64, f64) {
        let v = (1000 * tx + 100 * rx + tone) as f64;
        (v + 0.5, -v / 4.0)
    }

    /// One RxS frame with a USRP CSI segment, written field by field from
    /// RXS-Parsing-Core's `CSI::toBuffer` and `SignalMatrix::toBuffer`.
    fn usrp_frame(u: Usrp) -> Vec<u8> {
        let n_tx = u.n_sts + u.n_ess;
        let mut basic = 0x1234u16.to_le_bytes().to_vec();
        basic.extend(7_000_123u64.to_le_bytes());
        basic.extend(2412u16.to_le_bytes());
        basic.push(1);
        basic.extend(20u16.to_le_bytes());
        basic.extend(800u16.to_le_bytes());
        basic.extend([0, u.n_sts as u8, u.n_ess as u8, u.n_rx as u8, 1, 0]);
        basic.extend([0xa6, 40, 40, 40, 40]); // noise floor -90, RSSI relative
        let mut matrix = format!("BBv{}", u.matrix_version).into_bytes();
        let dims: Vec<usize> = [u.n_tones, n_tx, u.n_rx]
            .into_iter()
            .chain(std::iter::repeat_n(1, u.extra_dims))
            .collect();
        matrix.push(dims.len() as u8);
        for d in dims {
            if u.matrix_version == 1 {
                matrix.extend((d as u32).to_le_bytes());
            } else {
                matrix.extend((d as u64).to_le_bytes());
            }
        }
        matrix.extend([b'C', b'D', 64, if u.column_major { b'C' } else { b'R' }]);
        let mut put = |tx, rx, tone| {
            let (re, im) = usrp_value(tx, rx, tone);
            matrix.extend(re.to_le_bytes());
            matrix.extend(im.to_le_bytes());
        };
        if u.column_major {
            for rx in 0..u.n_rx {
                for tx in 0..n_tx {
                    for tone in 0..u.n_tones {
                        put(tx, rx, tone);
                    }
                }
            }
        } else {
            for tone in 0..u.n_tones {
                for tx in 0..n_tx {
                    for rx in 0..u.n_rx {
                        put(tx, rx, tone);
                    }
                }
            }
        }
        let mut data: Vec<u8> = (0..u.n_tones as i16)
            .flat_map(|i| (i * 3 - 40).to_le_bytes())
            .collect();
        data.extend(matrix);
        let mut csi = 0x1234u16.to_le_bytes().to_vec();
        if u.csi_version >= 4 {
            csi.push(9); // firmware version
        }
        csi.push(1); // packet format HT
        csi.extend(20u16.to_le_bytes());
        csi.extend(2_412_000_000u64.to_le_bytes());
        csi.extend(20_000_000u64.to_le_bytes());
        csi.extend(312_500u32.to_le_bytes());
        csi.extend((u.n_tones as u16).to_le_bytes());
        csi.extend([u.n_sts as u8, u.n_rx as u8, u.n_ess as u8]);
        if u.csi_version >= 3 {
            csi.extend(1u16.to_le_bytes());
        }
        csi.push(0); // antenna selection
        if u.csi_version >= 2 {
            csi.extend(0i16.to_le_bytes());
        }
        csi.extend((data.len() as u32).to_le_bytes());
        csi.extend(data);
        let mut body = MAGIC.to_le_bytes().to_vec();
        body.extend(1u16.to_le_bytes());
        body.push(2);
        body.extend(segment("RxSBasic", 2, &basic));
        body.extend(segment("CSI", u.csi_version, &csi));
        body.extend([0x88, 0x00]);
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend(body);
        f
    }

    const USRP: Usrp = Usrp {
        csi_version: 4,
        matrix_version: 2,
        column_major: true,
        extra_dims: 1,
        n_sts: 2,
        n_ess: 1,
        n_rx: 2,
        n_tones: 5,
    };

    fn read(bytes: &[u8]) -> Vec<Result<CsiFrame, CsiError>> {
        PicoScenesReader::new(bytes, "mem").collect()
    }

    #[test]
    fn usrp_segments_decode_every_value_in_every_layout() {
        let mut cases = 0;
        for csi_version in 1..=4 {
            for matrix_version in [1, 2] {
                for column_major in [true, false] {
                    for extra_dims in [0, 1] {
                        for (n_sts, n_ess, n_rx, n_tones) in
                            [(1, 0, 1, 56), (2, 1, 2, 5), (1, 0, 3, 7), (3, 0, 1, 4)]
                        {
                            let u = Usrp {
                                csi_version,
                                matrix_version,
                                column_major,
                                extra_dims,
                                n_sts,
                                n_ess,
                                n_rx,
                                n_tones,
                            };
                            let out = read(&usrp_frame(u));
                            assert_eq!(out.len(), 1, "{u:?}");
                            let f = out[0].as_ref().unwrap_or_else(|e| panic!("{u:?}: {e}"));
                            let n_tx = n_sts + n_ess;
                            assert_eq!(f.csi.shape(), &[n_tx, n_rx, n_tones], "{u:?}");
                            for ((tx, rx, tone), v) in f.csi.indexed_iter() {
                                let (re, im) = usrp_value(tx, rx, tone);
                                assert_eq!((v.re, v.im), (re as f32, im as f32), "{u:?}");
                            }
                            let FrameMeta::PicoScenes(m) = &f.meta else {
                                panic!()
                            };
                            assert_eq!(m.device_type, DEVICE_USRP);
                            assert_eq!(m.csi_version, csi_version);
                            assert_eq!(m.firmware_version, if csi_version == 4 { 9 } else { 0 });
                            assert_eq!(m.num_csi, 1);
                            assert_eq!(m.num_tones as usize, n_tones);
                            let idx: Vec<i16> = (0..n_tones as i16).map(|i| i * 3 - 40).collect();
                            assert_eq!(m.subcarrier_indices, idx);
                            assert_eq!(f.rssi, Some(-50.0));
                            assert_eq!(f.channel, Some(1));
                            assert_eq!(f.timestamp, 7_000_123.0 * 1e-6);
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 4 * 2 * 2 * 2 * 4);
    }

    /// The byte offset, inside the CSI data, of the SignalMatrix header of `USRP`.
    fn usrp_matrix_at(bytes: &[u8]) -> usize {
        bytes.windows(4).position(|w| w == b"BBv2").unwrap()
    }

    fn usrp_error(bytes: &[u8]) -> String {
        let out = read(bytes);
        assert_eq!(out.len(), 1);
        out.into_iter().next().unwrap().unwrap_err().to_string()
    }

    #[test]
    fn usrp_segments_that_cannot_be_decoded_say_why() {
        let good = usrp_frame(USRP);
        let at = usrp_matrix_at(&good);
        let head = at + 5 + 4 * 8; // tag, ndim, four u64 dims
        let with = |pos: usize, bytes: &[u8]| {
            let mut b = good.clone();
            b[pos..pos + bytes.len()].copy_from_slice(bytes);
            b
        };
        // (damaged frame, words its error names, is it "not supported")
        let cases: Vec<(Vec<u8>, Vec<&str>, bool)> = vec![
            (
                with(at, b"XXv2"),
                vec!["starts with \"XXv2\", not a SignalMatrix tag"],
                false,
            ),
            (
                with(at + 3, b"3"),
                vec!["SignalMatrix version '3'", "CSI segment v4"],
                true,
            ),
            (
                with(head, b"CF\x20"),
                vec![
                    "complex float32",
                    "CSI segment v4",
                    "SignalMatrix v2",
                    "CD64",
                ],
                true,
            ),
            (with(head, b"RD"), vec!["real float64"], true),
            (with(head + 3, b"X"), vec!["storage order 'X'"], false),
            (
                with(at + 5, &6u64.to_le_bytes()),
                vec![
                    "dimensions [6, 3, 2, 1]",
                    "5 tones × 3 streams (NumTx + NumESS) × 2 rx",
                ],
                false,
            ),
            (
                with(at + 5 + 24, &2u64.to_le_bytes()),
                vec!["dimensions [5, 3, 2, 2]"],
                false,
            ),
        ];
        for (bytes, words, unsupported) in cases {
            let out = read(&bytes);
            let e = out[0].as_ref().unwrap_err();
            let text = e.to_string();
            for w in words {
                assert!(text.contains(w), "{w:?} not in {text}");
            }
            assert!(text.contains("CSI segment: "), "{text}");
            assert_eq!(
                matches!(e, CsiError::Unsupported { .. }),
                unsupported,
                "{text}"
            );
        }
        // Too few or too many value bytes: the segment's data length says so. Cut the
        // last value byte and shrink every length field by one.
        let mut short = good.clone();
        short.truncate(short.len() - 3); // two MPDU bytes and one value byte
        short.extend([0x88, 0x00]);
        let len_at = |b: &[u8], what: &[u8]| b.windows(what.len()).position(|w| w == what).unwrap();
        // The frame's, the CSI segment's and the CSI data's length fields.
        for pos in [0, len_at(&short, b"\x03CSI") - 4, at - 2 * USRP.n_tones - 4] {
            let v = u32::from_le_bytes(short[pos..pos + 4].try_into().unwrap()) - 1;
            short[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
        }
        let text = usrp_error(&short);
        assert!(
            text.contains("479 value bytes; 30 complex doubles need 480"),
            "{text}"
        );
        // NumCSI above 1 is refused by name.
        let mut two = good.clone();
        let numcsi_at = at - 2 * USRP.n_tones - 4 - 2 - 1 - 2;
        two[numcsi_at..numcsi_at + 2].copy_from_slice(&2u16.to_le_bytes());
        let text = usrp_error(&two);
        assert!(text.contains("holds 2 CSI matrices (NumCSI)"), "{text}");
        // A later CSI segment version is refused with its number.
        let mut v5 = good.clone();
        let ver_at = len_at(&v5, b"\x03CSI") + 4;
        v5[ver_at..ver_at + 2].copy_from_slice(&5u16.to_le_bytes());
        assert!(usrp_error(&v5).contains("version 5 (this reader knows 1 to 4)"));
        // Other SDR device types are named.
        for (device, name) in [(0x1000u16, "virtual SDR"), (0x24d2, "SoapySDR")] {
            let mut b = good.clone();
            let dev_at = ver_at + 2;
            b[dev_at..dev_at + 2].copy_from_slice(&device.to_le_bytes());
            let text = usrp_error(&b);
            assert!(
                text.contains(name) && text.contains("decodes no CSI"),
                "{text}"
            );
        }
    }

    #[test]
    fn damaged_usrp_frames_never_panic_and_the_next_frame_still_reads() {
        let one = usrp_frame(USRP);
        let mut bytes = one.clone();
        bytes.extend(usrp_frame(Usrp {
            column_major: false,
            ..USRP
        }));
        for cut in 0..bytes.len() {
            let out = read(&bytes[..cut]);
            let oks = out.iter().filter(|r| r.is_ok()).count();
            assert_eq!(oks, usize::from(cut >= one.len()), "cut {cut}");
            if cut != 0 && cut != one.len() {
                assert!(
                    matches!(out.last(), Some(Err(CsiError::Truncated { .. }))),
                    "cut {cut}"
                );
            }
        }
        // A damaged matrix inside a sound frame costs that frame only.
        let at = usrp_matrix_at(&one);
        let mut b = bytes.clone();
        b[at] = b'Z';
        let out = read(&b);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_err() && out[1].is_ok());
        let mut seed = 0x0123_4567_89ab_cdefu64;
        for round in 0..4000 {
            let mut b = bytes.clone();
            for _ in 0..(1 + round % 4) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly the matrix header and the fields before it.
                let i = if round % 2 == 0 {
                    at.saturating_sub(40) + (seed as usize) % 90
                } else {
                    (seed as usize) % b.len()
                };
                b[i] = (seed >> 24) as u8;
            }
            for r in read(&b).into_iter().flatten() {
                let [t, x, s] = [r.csi.shape()[0], r.csi.shape()[1], r.csi.shape()[2]];
                assert!(t * x * s > 0);
            }
        }
    }

    /// An Intel MVM frame (int16 pairs, column-major (tones, sts, rx)) for `device`.
    fn mvm_frame(device: u16, csi_version: u16) -> Vec<u8> {
        let (n_sts, n_rx, n_tones) = (2usize, 2usize, 4usize);
        let mut basic = device.to_le_bytes().to_vec();
        basic.extend(1u64.to_le_bytes());
        basic.extend(5180u16.to_le_bytes());
        basic.push(2);
        basic.extend(20u16.to_le_bytes());
        basic.extend(800u16.to_le_bytes());
        basic.extend([0, n_sts as u8, 0, n_rx as u8, 0xa6, 40, 40, 40, 40]);
        let mut data = Vec::new();
        for i in 0..(n_sts * n_rx * n_tones) as i16 {
            data.extend(i.to_le_bytes());
            data.extend((-i).to_le_bytes());
        }
        let mut csi = device.to_le_bytes().to_vec();
        if csi_version >= 4 {
            csi.push(67);
        }
        csi.push(2);
        csi.extend(20u16.to_le_bytes());
        csi.extend(5_180_000_000u64.to_le_bytes());
        csi.extend(20_000_000u64.to_le_bytes());
        csi.extend(312_500u32.to_le_bytes());
        csi.extend((n_tones as u16).to_le_bytes());
        csi.extend([n_sts as u8, n_rx as u8, 0]);
        csi.extend(1u16.to_le_bytes());
        csi.extend([0, 0, 0]);
        csi.extend((data.len() as u32).to_le_bytes());
        csi.extend(data);
        let mut body = MAGIC.to_le_bytes().to_vec();
        body.extend(1u16.to_le_bytes());
        body.push(2);
        body.extend(segment("RxSBasic", 1, &basic));
        body.extend(segment("CSI", csi_version, &csi));
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend(body);
        f
    }

    #[test]
    fn ax200_and_ax210_segments_decode_alike_in_csi_v3_and_v4() {
        for version in [3, 4] {
            for device in [DEVICE_IWLMVM, DEVICE_IWLMVM_AX210] {
                let out = read(&mvm_frame(device, version));
                let f = out[0].as_ref().unwrap();
                assert_eq!(f.csi.shape(), &[2, 2, 4]);
                for ((sts, rx, tone), v) in f.csi.indexed_iter() {
                    let i = (tone + 4 * (sts + 2 * rx)) as f32;
                    assert_eq!((v.re, v.im), (i, -i));
                }
                let FrameMeta::PicoScenes(m) = &f.meta else {
                    panic!()
                };
                assert_eq!(m.firmware_version, if version == 4 { 67 } else { 0 });
            }
        }
    }
}
