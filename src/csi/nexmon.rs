//! nexmon_csi captures (Broadcom bcm4339, bcm4358, bcm43455c0, bcm4366c0).
//!
//! The firmware sends one UDP datagram per (core, spatial stream) of each received
//! frame; tcpdump stores them in a pcap file (see `csi::pcap`). The UDP payload
//! is an 18-byte header followed by `nfft` 32-bit CSI words (`nfft` = 3.2 × bandwidth
//! in MHz: 64, 128, 256, 512):
//!
//! | bytes | classic header (`0x11111111`) | newer header (magic `0x1111`) |
//! |---|---|---|
//! | 0..4 | magic | magic (2), RSSI (i8), frame control (u8) |
//! | 4..10 | source MAC | source MAC |
//! | 10..12 | sequence number | sequence number |
//! | 12..14 | core (bits 0-2), spatial stream (bits 3-5) | same |
//! | 14..16 | chanspec | chanspec |
//! | 16..18 | chip version | chip version |
//!
//! CSI words are decoded as the official `csireader.m` does: bcm4339 and bcm43455c0
//! send two little-endian int16 (real, imaginary); bcm4358 and bcm4366c0 send a packed
//! floating format that the official `unpack_float.c` expands (format 0: 9-bit
//! mantissas, 5-bit exponent; format 1: 12-bit mantissas, 6-bit exponent, both scaled
//! to 10 significant bits per packet). Values stay in FFT order, exactly as the
//! official `csi_buff` rows (subcarrier 0 first); set [`NexmonOptions::fftshift`] for
//! ascending frequency order.
//!
//! Each UDP packet becomes one frame of shape `(1, 1, nfft)`; the core and spatial
//! stream are in [`NexmonMeta`]. Packets that are not nexmon CSI (other UDP traffic,
//! ARP...) are skipped and counted in [`NexmonReader::skipped`].
//!
//! Deviation from the official reader, chosen on purpose: `csireader.m` skips any
//! packet whose length is not exactly `60 + 4 × nfft` and leaves a zero row at the end
//! of `csi_buff` for each; some firmware builds append 4 zero bytes to some packets.
//! This reader keeps such packets and decodes their first `nfft` words; the number of
//! extra bytes is in [`NexmonMeta::padding`]. A packet shorter than `nfft` words is an
//! error for that packet and reading continues.
//!
//! Frame timestamp: the pcap capture time (seconds since the Unix epoch).

use std::io::Read;
use std::mem::MaybeUninit;

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::meta::{int, FrameMeta, MetaValue};
use super::pcap::{udp_payload, PcapReader};
use super::table::{reserve_values, CsiTable, FrameInfo};
use super::{CsiFormat, CsiFrame};

/// Bytes of nexmon header before the CSI words.
pub const NEXMON_HEADER_LEN: usize = 18;

/// The Broadcom chips nexmon_csi supports; they differ in how CSI words are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NexmonChip {
    /// Nexus 5 (int16 CSI words).
    Bcm4339,
    /// Nexus 6P (packed float CSI words).
    Bcm4358,
    /// Raspberry Pi 3B+ / 4 (int16 CSI words).
    Bcm43455c0,
    /// Asus RT-AC86U (packed float CSI words).
    Bcm4366c0,
}

impl NexmonChip {
    /// The chip as `read_csi`'s `nexmon_chip` option spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            NexmonChip::Bcm4339 => "bcm4339",
            NexmonChip::Bcm4358 => "bcm4358",
            NexmonChip::Bcm43455c0 => "bcm43455c0",
            NexmonChip::Bcm4366c0 => "bcm4366c0",
        }
    }

    /// Parses "4358", "bcm4358", "43455c0", "BCM4366C0"...
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.strip_prefix("bcm").unwrap_or(&s) {
            "4339" => Some(NexmonChip::Bcm4339),
            "4358" => Some(NexmonChip::Bcm4358),
            "43455c0" | "43455" => Some(NexmonChip::Bcm43455c0),
            "4366c0" | "4366" => Some(NexmonChip::Bcm4366c0),
            _ => None,
        }
    }

    /// The chip a capture's `chip_version` field points to, where it is known:
    /// 0x0065 is what bcm43455c0 (Raspberry Pi) firmware writes, 0x006a what bcm4366c0
    /// writes, 0xdead what the bcm4358 example from the nexmon_csi repository carries.
    /// (bcm4339 writes 0x0001, which is too generic to trust alone: it is used only
    /// together with int16 sample values, see [`Samples`].)
    pub fn from_chip_version(v: u16) -> Option<Self> {
        match v {
            0x0065 | 0x4345 => Some(NexmonChip::Bcm43455c0),
            0x4339 => Some(NexmonChip::Bcm4339),
            0xdead | 0x4358 => Some(NexmonChip::Bcm4358),
            0x006a | 0x4366 => Some(NexmonChip::Bcm4366c0),
            _ => None,
        }
    }

    /// Whether CSI words are int16 pairs (else the packed floating format).
    pub fn is_int16(self) -> bool {
        self.samples() == Samples::Int16
    }

    /// How this chip's firmware encodes a CSI word (`csireader.m`).
    pub fn samples(self) -> Samples {
        match self {
            NexmonChip::Bcm4339 | NexmonChip::Bcm43455c0 => Samples::Int16,
            NexmonChip::Bcm4358 => Samples::Float9x5,
            NexmonChip::Bcm4366c0 => Samples::Float12x6,
        }
    }
}

/// The three encodings of a nexmon CSI word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Samples {
    // The discriminants index `Samples::ALL` and the candidate arrays.
    /// Two little-endian int16, real then imaginary (bcm4339, bcm43455c0).
    Int16 = 0,
    /// `unpack_float` format 0 (bcm4358): bits 0-4 exponent, then two 9-bit
    /// sign-magnitude mantissas (imaginary, real); bits 23-31 always zero.
    Float9x5 = 1,
    /// `unpack_float` format 1 (bcm4366c0): bits 0-5 exponent, then two 12-bit
    /// mantissas; bits 30-31 always zero.
    Float12x6 = 2,
}

impl Samples {
    const ALL: [Samples; 3] = [Samples::Int16, Samples::Float9x5, Samples::Float12x6];
    /// Non-zero words needed before the values count as evidence (see [`Self::evident`]).
    const EVIDENCE_WORDS: usize = 16;

    /// The format in words, for the frame metadata and error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Samples::Int16 => "int16",
            Samples::Float9x5 => "float 9+5 (unpack_float format 0)",
            Samples::Float12x6 => "float 12+6 (unpack_float format 1)",
        }
    }

    /// The chips that send this format.
    pub fn chips(self) -> &'static [&'static str] {
        match self {
            Samples::Int16 => &["bcm4339", "bcm43455c0"],
            Samples::Float9x5 => &["bcm4358"],
            Samples::Float12x6 => &["bcm4366c0"],
        }
    }

    /// The chip, where the format and `chip_version` together tell it. chip_version
    /// 0x0001 is what bcm4339 firmware writes; bcm43455c0 writes 0x0065.
    fn chip(self, chip_version: u16) -> Option<NexmonChip> {
        match self {
            Samples::Int16 => match chip_version {
                0x0001 | 0x4339 => Some(NexmonChip::Bcm4339),
                0x0065 | 0x4345 => Some(NexmonChip::Bcm43455c0),
                _ => None,
            },
            Samples::Float9x5 => Some(NexmonChip::Bcm4358),
            Samples::Float12x6 => Some(NexmonChip::Bcm4366c0),
        }
    }

    /// Which formats these words could be, in [`Self::ALL`] order: any word is a valid
    /// int16 pair, but the float formats leave their top bits zero (bits 23-31 for
    /// format 0, 30-31 for format 1).
    fn candidates(words: &[u8]) -> [bool; 3] {
        let or = words.chunks_exact(4).fold(0u32, |acc, w| {
            acc | u32::from_le_bytes([w[0], w[1], w[2], w[3]])
        });
        [true, or & 0xff80_0000 == 0, or & 0xc000_0000 == 0]
    }

    /// The format the values show, when they show one. Real CSI has both signs on
    /// every axis, so among 16 or more non-zero words, int16 data sets bit 31 (a
    /// negative imaginary part) and format 1 sets bit 29 (a negative real mantissa)
    /// except with odds below 2^-16: the most specific format that fits is the one.
    /// All-zero words decode to zero in every format.
    fn evident(words: &[u8], candidates: [bool; 3]) -> Option<Samples> {
        let nonzero = words.chunks_exact(4).filter(|w| w != &[0, 0, 0, 0]).count();
        if nonzero < Self::EVIDENCE_WORDS && candidates != [true, false, false] {
            return None;
        }
        match candidates {
            [_, true, _] => Some(Samples::Float9x5),
            [_, false, true] => Some(Samples::Float12x6),
            _ => Some(Samples::Int16),
        }
    }
}

/// What told a nexmon packet's chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipFrom {
    /// The caller named it.
    Named,
    /// The header's `chip_version`.
    ChipVersion,
    /// The CSI values' format (with `chip_version` for the int16 chips).
    Samples,
}

impl ChipFrom {
    /// The source in words, for the frame metadata (`chip_from`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            ChipFrom::Named => "named",
            ChipFrom::ChipVersion => "chip_version",
            ChipFrom::Samples => "sample values",
        }
    }
}

/// Options for [`NexmonReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NexmonOptions {
    /// The chip; `None` infers it from the `chip_version` header field.
    pub chip: Option<NexmonChip>,
    /// Bandwidth in MHz; `None` reads it from the chanspec (then from the packet size).
    pub bandwidth_mhz: Option<u16>,
    /// Reorder subcarriers from FFT order to ascending frequency.
    pub fftshift: bool,
}

/// Which nexmon header a packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexmonHeader {
    /// 4-byte magic 0x11111111.
    Classic,
    /// 2-byte magic 0x1111, then RSSI and frame control.
    WithRssi,
}

/// Header fields of one nexmon CSI packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexmonMeta {
    /// Which header layout the packet used.
    pub header: NexmonHeader,
    /// dBm, newer header only.
    pub rssi: Option<i8>,
    /// First byte of the 802.11 frame control field, newer header only.
    pub frame_control: Option<u8>,
    /// MAC address of the transmitter of the measured frame.
    pub source_mac: [u8; 6],
    /// 802.11 sequence number of the measured frame.
    pub seq: u16,
    /// Receive core (antenna chain) of this packet.
    pub core: u8,
    /// Spatial stream of this packet.
    pub spatial_stream: u8,
    /// Broadcom chanspec: channel number, band and bandwidth packed in 16 bits.
    pub chanspec: u16,
    /// The firmware's chip identifier (0 in some builds).
    pub chip_version: u16,
    /// The chip, where it was named or the file tells it. `None` when the file tells
    /// only the sample format, and more than one chip sends that format (bcm4339 and
    /// bcm43455c0 both send int16 pairs: the values are the same either way).
    pub chip: Option<NexmonChip>,
    /// How the CSI words were decoded.
    pub samples: Samples,
    /// What told the chip (or the sample format).
    pub chip_from: ChipFrom,
    /// pcap capture time, whole seconds since the Unix epoch.
    pub pcap_ts_sec: u32,
    /// Microseconds, or nanoseconds when `pcap_nanosecond`.
    pub pcap_ts_frac: u32,
    /// Whether the pcap file has nanosecond timestamps.
    pub pcap_nanosecond: bool,
    /// Bytes of the packet the capture stored.
    pub caplen: u32,
    /// Bytes of the packet on the wire (the capture may have cut it).
    pub origlen: u32,
    /// CSI bytes beyond `4 × nfft` that were ignored.
    pub padding: u32,
    /// Whether the frame's subcarriers were reordered to ascending frequency.
    pub fftshifted: bool,
}

impl NexmonMeta {
    pub(crate) fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        let mac = self
            .source_mac
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let mut v = vec![
            (
                "header",
                MetaValue::Text(match self.header {
                    NexmonHeader::Classic => "classic".into(),
                    NexmonHeader::WithRssi => "rssi_fc".into(),
                }),
            ),
            ("src_addr", MetaValue::Text(mac)),
            ("seq", int(self.seq)),
            ("core", int(self.core)),
            ("spatial", int(self.spatial_stream)),
            ("chan_spec", int(self.chanspec)),
            ("chip_version", int(self.chip_version)),
            (
                "chip",
                MetaValue::Text(match self.chip {
                    Some(c) => c.name().into(),
                    None => self.samples.chips().join(" or "),
                }),
            ),
            ("samples", MetaValue::Text(self.samples.name().into())),
            ("chip_from", MetaValue::Text(self.chip_from.name().into())),
            ("sec", int(self.pcap_ts_sec)),
            ("usec", int(self.pcap_ts_frac)),
            ("nano", MetaValue::Bool(self.pcap_nanosecond)),
            ("caplen", int(self.caplen)),
            ("wirelen", int(self.origlen)),
            ("padding", int(self.padding)),
            ("fftshifted", MetaValue::Bool(self.fftshifted)),
        ];
        if let Some(r) = self.rssi {
            v.push(("rssi", int(r)));
        }
        if let Some(fc) = self.frame_control {
            v.push(("fc", int(fc)));
        }
        v
    }
}

/// Streams frames from a nexmon_csi pcap; one item per CSI packet.
pub struct NexmonReader<R: Read> {
    pcap: Option<PcapReader<R>>,
    /// File name used in error messages.
    name: String,
    open_error: Option<CsiError>,
    options: NexmonOptions,
    done: bool,
    recoverable: bool,
    /// Packets that were not nexmon CSI and were skipped.
    pub skipped: u64,
    /// The sample format the capture's values showed, once one packet showed it; used
    /// for later packets whose values alone could be read either way (all near zero).
    detected: Option<Samples>,
}

/// The format table's view of this reader (`super::formats`).
impl<R: Read> super::formats::FormatReader for NexmonReader<R> {
    fn offset(&self) -> u64 {
        NexmonReader::offset(self)
    }

    fn next_into(
        &mut self,
        table: &mut super::table::CsiTable,
    ) -> Option<Result<(), super::error::CsiError>> {
        NexmonReader::next_into(self, table)
    }
}

impl<R: Read> NexmonReader<R> {
    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.pcap.as_ref().map_or(0, |p| p.src.offset)
    }

    /// A reader over the pcap file `reader`, naming it `name` in errors; the chip and
    /// bandwidth are told from the packets.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        Self::with_options(reader, name, NexmonOptions::default())
    }

    /// Reads the pcap global header now; an error there is the iterator's first item.
    pub fn with_options(reader: R, name: impl Into<String>, options: NexmonOptions) -> Self {
        let name = name.into();
        let (pcap, open_error) = match PcapReader::open(reader, name.clone()) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        NexmonReader {
            pcap,
            name,
            open_error,
            options,
            done: false,
            recoverable: false,
            skipped: 0,
            detected: None,
        }
    }

    fn next_frame(&mut self) -> Result<Option<CsiFrame>, CsiError> {
        let fftshift = self.options.fftshift;
        let Some((info, csi)) = self.next_packet(|bytes, samples, nfft| {
            let mut values = Vec::with_capacity(nfft);
            decode_words_into(bytes, samples, &mut values.spare_capacity_mut()[..nfft]);
            // SAFETY: decode_words_into writes all nfft values.
            unsafe { values.set_len(nfft) };
            if fftshift {
                values.rotate_left(nfft / 2);
            }
            Array3::from_shape_vec((1, 1, nfft), values).expect("nfft values")
        })?
        else {
            return Ok(None);
        };
        Ok(Some(CsiFrame {
            timestamp: info.timestamp,
            csi,
            rssi: info.rssi,
            noise: None,
            format: CsiFormat::Nexmon,
            channel: info.channel,
            bandwidth_mhz: info.bandwidth_mhz,
            sequence: info.sequence,
            meta: info.meta,
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
        let fftshift = self.options.fftshift;
        let decoded = self.next_packet(|bytes, samples, nfft| {
            reserve_values(&mut table.csi, nfft);
            decode_words_into(bytes, samples, &mut table.csi.spare_capacity_mut()[..nfft]);
            // SAFETY: decode_words_into writes all nfft values.
            unsafe { table.csi.set_len(start + nfft) };
            if fftshift {
                table.csi[start..].rotate_left(nfft / 2);
            }
        });
        match decoded {
            Ok(Some((mut info, ()))) => {
                info.start = start;
                table.push_info(info);
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

    /// Finds the next nexmon CSI packet and returns its frame fields (with `start` 0)
    /// and what `decode` made of its `4 × nfft` CSI bytes, given their format and nfft.
    fn next_packet<T>(
        &mut self,
        decode: impl FnOnce(&[u8], Samples, usize) -> T,
    ) -> Result<Option<(FrameInfo, T)>, CsiError> {
        if let Some(e) = self.open_error.take() {
            return Err(e);
        }
        let Some(pcap) = self.pcap.as_mut() else {
            return Ok(None);
        };
        let linktype = pcap.linktype;
        let nanosecond = pcap.nanosecond;
        let options = self.options;
        let name = &self.name;
        loop {
            let Some(rec) = pcap.next_record()? else {
                return Ok(None);
            };
            let Some(payload) = udp_payload(linktype, rec.data) else {
                self.skipped += 1;
                continue;
            };
            if payload.len() < 2 || payload[0] != 0x11 || payload[1] != 0x11 {
                self.skipped += 1;
                continue;
            }
            // Past this point the packet is nexmon CSI; pcap framing is intact, so a bad
            // packet is reported and the next one is still readable.
            let bad = |problem: String| CsiError::malformed(name, rec.offset, problem);
            if payload.len() < NEXMON_HEADER_LEN {
                self.recoverable = true;
                return Err(bad(format!(
                    "nexmon packet has {} bytes, fewer than its {NEXMON_HEADER_LEN}-byte header",
                    payload.len()
                )));
            }
            let u16le = |i: usize| u16::from_le_bytes([payload[i], payload[i + 1]]);
            let classic = payload[2] == 0x11 && payload[3] == 0x11;
            let chanspec = u16le(14);
            let chip_version = u16le(16);
            let csi_bytes = &payload[NEXMON_HEADER_LEN..];
            let Some(nfft) = options
                .bandwidth_mhz
                .and_then(nfft_for_bandwidth)
                .or_else(|| nfft_from_chanspec(chanspec))
                .or_else(|| nfft_from_len(csi_bytes.len()))
            else {
                self.recoverable = true;
                return Err(bad(format!(
                    "cannot tell the bandwidth: chanspec 0x{chanspec:04x} has no bandwidth bits \
                     and {} CSI bytes match no FFT size",
                    csi_bytes.len()
                )));
            };
            if csi_bytes.len() < nfft * 4 {
                self.recoverable = true;
                return Err(bad(format!(
                    "nexmon packet holds {} CSI bytes; {} MHz needs {} (nfft {nfft})",
                    csi_bytes.len(),
                    nfft * 5 / 16,
                    nfft * 4
                )));
            }
            let words = &csi_bytes[..nfft * 4];
            let (samples, chip, chip_from) = match options.chip {
                Some(c) => (c.samples(), Some(c), ChipFrom::Named),
                None => match NexmonChip::from_chip_version(chip_version) {
                    Some(c) => (c.samples(), Some(c), ChipFrom::ChipVersion),
                    None => {
                        let candidates = Samples::candidates(words);
                        let fits = |s: &Samples| candidates[*s as usize];
                        let found = if words.iter().all(|&b| b == 0) {
                            // Zeros decode to zeros in every format.
                            Some(self.detected.unwrap_or(Samples::Int16))
                        } else {
                            let evident = Samples::evident(words, candidates);
                            if evident.is_some() {
                                self.detected = evident;
                            }
                            evident.or(self.detected.filter(fits))
                        };
                        let Some(samples) = found else {
                            self.recoverable = true;
                            return Err(ambiguous_chip(name, rec.offset, chip_version, candidates));
                        };
                        (samples, samples.chip(chip_version), ChipFrom::Samples)
                    }
                },
            };
            let decoded = decode(words, samples, nfft);
            let css = u16le(12);
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&payload[4..10]);
            let frac = if nanosecond { 1e-9 } else { 1e-6 };
            let meta = NexmonMeta {
                header: if classic {
                    NexmonHeader::Classic
                } else {
                    NexmonHeader::WithRssi
                },
                rssi: (!classic).then_some(payload[2] as i8),
                frame_control: (!classic).then_some(payload[3]),
                source_mac: mac,
                seq: u16le(10),
                core: (css & 0x7) as u8,
                spatial_stream: ((css >> 3) & 0x7) as u8,
                chanspec,
                chip_version,
                chip,
                samples,
                chip_from,
                pcap_ts_sec: rec.ts_sec,
                pcap_ts_frac: rec.ts_frac,
                pcap_nanosecond: nanosecond,
                caplen: rec.caplen,
                origlen: rec.origlen,
                padding: (csi_bytes.len() - nfft * 4) as u32,
                fftshifted: options.fftshift,
            };
            let info = FrameInfo {
                start: 0,
                shape: [1, 1, nfft],
                timestamp: rec.ts_sec as f64 + rec.ts_frac as f64 * frac,
                rssi: meta.rssi.map(|r| r as f32),
                noise: None,
                channel: Some(chanspec & 0xff),
                bandwidth_mhz: Some((nfft * 5 / 16) as u16),
                sequence: Some(meta.seq as u64),
                meta: FrameMeta::Nexmon(meta),
            };
            return Ok(Some((info, decoded)));
        }
    }
}

super::source::frame_iterator!(NexmonReader);

fn nfft_for_bandwidth(mhz: u16) -> Option<usize> {
    match mhz {
        20 => Some(64),
        40 => Some(128),
        80 => Some(256),
        160 => Some(512),
        _ => None,
    }
}

/// Broadcom d11ac chanspec: bandwidth in bits 11-13.
fn nfft_from_chanspec(chanspec: u16) -> Option<usize> {
    match chanspec & 0x3800 {
        0x1000 => Some(64),
        0x1800 => Some(128),
        0x2000 => Some(256),
        0x2800 => Some(512),
        _ => None,
    }
}

/// The FFT size whose packets are this long (allowing a few padding bytes).
fn nfft_from_len(csi_len: usize) -> Option<usize> {
    [512, 256, 128, 64]
        .into_iter()
        .find(|&n| csi_len >= n * 4 && csi_len < n * 4 + 16)
}

/// Decodes `out.len()` CSI words in `samples` format into `out` (every value written).
fn decode_words_into(bytes: &[u8], samples: Samples, out: &mut [MaybeUninit<Complex32>]) {
    match samples {
        Samples::Int16 => {
            // MATLAB typecast(uint32 H, 'int16') on a little-endian host: low half first.
            for (v, w) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                v.write(Complex32::new(
                    i16::from_le_bytes([w[0], w[1]]) as f32,
                    i16::from_le_bytes([w[2], w[3]]) as f32,
                ));
            }
        }
        Samples::Float9x5 => unpack_float_into(10, 9, 5, bytes, out),
        Samples::Float12x6 => unpack_float_into(10, 12, 6, bytes, out),
    }
}

/// The error for a packet whose chip neither the options, the header nor the values
/// tell: which chips it could be, and the option.
fn ambiguous_chip(name: &str, offset: u64, chip_version: u16, candidates: [bool; 3]) -> CsiError {
    let chips: Vec<&str> = Samples::ALL
        .iter()
        .zip(candidates)
        .filter(|(_, c)| *c)
        .flat_map(|(s, _)| s.chips())
        .copied()
        .collect();
    let option = chips
        .iter()
        .map(|c| format!("nexmon_chip=\"{c}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    CsiError::NeedsOption {
        file: name.to_string(),
        offset,
        problem: format!(
            "cannot tell the nexmon chip: chip_version 0x{chip_version:04x} names none, and \
             the CSI values read as the samples of {} alike (too few non-zero values to tell)",
            chips.join(", ")
        ),
        option,
    }
}

/// [`unpack_float_acphy`] with autoscale over little-endian words, straight to
/// complex values in `out` (one per word, every one written): the same arithmetic
/// without the intermediate vectors.
fn unpack_float_into(
    nbits: i32,
    nman: u32,
    nexp: u32,
    bytes: &[u8],
    out: &mut [MaybeUninit<Complex32>],
) {
    let iq_mask: u32 = (1 << (nman - 1)) - 1;
    let e_mask: u32 = (1 << nexp) - 1;
    let e_p: i32 = 1 << (nexp - 1);
    let sgnr_mask: u32 = 1 << (nexp + 2 * nman - 1);
    let sgni_mask: u32 = sgnr_mask >> nman;
    let words = bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")));
    // The exponent field, sign-extended.
    let exponent = |w: u32| (((w & e_mask) << (32 - nexp)) as i32) >> (32 - nexp);
    // Pass 1: the largest exponent after normalising each mantissa (autoscale).
    let mut maxbit: i32 = -e_p;
    for w in words.clone() {
        let x = ((w >> (nexp + nman)) & iq_mask) | ((w >> nexp) & iq_mask);
        // The C loop adds the index of the highest set bit of x (x < 2^11): the binary
        // exponent of x as an f32, which is exact and vectorizes where leading_zeros
        // does not.
        let top = ((x as f32).to_bits() >> 23) as i32 - 127;
        if x != 0 {
            maxbit = maxbit.max(exponent(w) + top);
        }
    }
    let shft = nbits - maxbit;
    // Pass 2: scale every value. The C code shifts the mantissa left by e (e >= 0) or
    // right by -e (e < 0), 0 for e below -nman or from 40 up, and keeps the low 32 bits.
    // With the mantissa in the high half of a u64, one right shift by 32 - e does all of
    // that: for e in 33..40 and above the low 32 bits are zero either way, and below
    // -31 the shift (capped at 63) leaves 0, as v < 2^31.
    for (v, w) in out.iter_mut().zip(words) {
        let s = (32 - (exponent(w) + shft)).clamp(0, 63) as u32;
        let scale = |m: u32, negative: bool| {
            let mag = (((m as u64) << 32) >> s) as u32 as i32;
            (if negative { mag.wrapping_neg() } else { mag }) as f32
        };
        v.write(Complex32::new(
            scale((w >> (nexp + nman)) & iq_mask, w & sgnr_mask != 0),
            scale((w >> nexp) & iq_mask, w & sgni_mask != 0),
        ));
    }
}

/// A port of nexmon_csi's `unpack_float_acphy` (utils/matlab/unpack_float.c).
/// Returns interleaved (I, Q) integers.
pub fn unpack_float_acphy(
    nbits: i32,
    autoscale: bool,
    nman: u32,
    nexp: u32,
    h: &[u32],
) -> Vec<i32> {
    const SGN: u32 = 1 << 31;
    let iq_mask: u32 = (1 << (nman - 1)) - 1;
    let e_mask: u32 = (1 << nexp) - 1;
    let e_p: i32 = 1 << (nexp - 1);
    let sgnr_mask: u32 = 1 << (nexp + 2 * nman - 1);
    let sgni_mask: u32 = sgnr_mask >> nman;
    let e_zero: i32 = -(nman as i32);
    let mut maxbit: i32 = -e_p;
    let mut he = Vec::with_capacity(h.len());
    let mut out = vec![0u32; h.len() * 2];
    for (i, &w) in h.iter().enumerate() {
        let mut vi = (w >> (nexp + nman)) & iq_mask;
        let mut vq = (w >> nexp) & iq_mask;
        let mut e = (w & e_mask) as i32;
        if e >= e_p {
            e -= e_p << 1;
        }
        he.push(e);
        let mut x = vi | vq;
        if autoscale && x != 0 {
            let (mut m, mut b, mut s): (u32, u32, u32) = (0xffff_0000, 0xffff, 16);
            while s > 0 {
                if x & m != 0 {
                    e += s as i32;
                    x >>= s;
                }
                s >>= 1;
                m = (m >> s) & b;
                b >>= s;
            }
            if e > maxbit {
                maxbit = e;
            }
        }
        if w & sgnr_mask != 0 {
            vi |= SGN;
        }
        if w & sgni_mask != 0 {
            vq |= SGN;
        }
        out[2 * i] = vi;
        out[2 * i + 1] = vq;
    }
    let shft = nbits - maxbit;
    out.iter()
        .enumerate()
        .map(|(i, &v)| {
            let e = he[i >> 1] + shft;
            let negative = v & SGN != 0;
            let v = (v & !SGN) as i64;
            let mag = if e < e_zero {
                0
            } else if e < 0 {
                v >> (-e)
            } else if e < 40 {
                v << e
            } else {
                // Only reachable for zero mantissas (see the module notes); C would be UB.
                0
            };
            let mag = mag as i32; // C stores the shifted value in an int32.
            if negative {
                mag.wrapping_neg()
            } else {
                mag
            }
        })
        .collect()
}

/// The stream a nexmon frame belongs to within its source, as a suffix for the source's
/// name: `None` for core 0, spatial stream 0 (the only stream of a one-antenna chip such
/// as the Raspberry Pi's bcm43455c0), `core{c}` or `core{c}-ss{s}` otherwise.
///
/// Why: nexmon_csi sends one 1x1 packet per receive core and spatial stream, so a
/// multi-core chip's capture (the bcm4358 example here holds cores 0 and 1, streams 0
/// and 1; a bcm4366c0 has four cores and up to four streams) interleaves different
/// antennas' channels packet by packet. Read as one stream, every packet would look like
/// a large change; each core and stream is its own one-antenna link, and the environment
/// senses it as one (`docs/csi-formats.md`).
pub fn stream_suffix(frame: &CsiFrame) -> Option<String> {
    let FrameMeta::Nexmon(meta) = &frame.meta else {
        return None;
    };
    match (meta.core, meta.spatial_stream) {
        (0, 0) => None,
        (c, 0) => Some(format!("core{c}")),
        (c, s) => Some(format!("core{c}-ss{s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_with(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(0xa1b2c3d4u32.to_le_bytes());
        f.extend([2, 0, 4, 0]);
        f.extend([0u8; 8]);
        f.extend(65535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        for (i, p) in payloads.iter().enumerate() {
            let mut pkt = vec![0u8; 12];
            pkt.extend([0x08, 0x00]);
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            let total = (20 + 8 + p.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            pkt.extend(ip);
            pkt.extend(5500u16.to_be_bytes());
            pkt.extend(5500u16.to_be_bytes());
            pkt.extend(((8 + p.len()) as u16).to_be_bytes());
            pkt.extend([0, 0]);
            pkt.extend(p);
            f.extend((100 + i as u32).to_le_bytes());
            f.extend(5u32.to_le_bytes());
            f.extend((pkt.len() as u32).to_le_bytes());
            f.extend((pkt.len() as u32).to_le_bytes());
            f.extend(pkt);
        }
        f
    }

    fn nexmon_payload(nfft: usize, extra: usize) -> Vec<u8> {
        let mut p = vec![
            0x11, 0x11, 0xc9, 0x94, 1, 2, 3, 4, 5, 6, 7, 0, 0x09, 0, 0x2a, 0xe0, 0x65, 0,
        ];
        for i in 0..nfft {
            p.extend((i as i16).to_le_bytes());
            p.extend((-(i as i16)).to_le_bytes());
        }
        p.extend(vec![0u8; extra]);
        p
    }

    #[test]
    fn int16_packets_padding_and_other_udp() {
        let bytes = pcap_with(&[
            nexmon_payload(256, 0),
            b"hello".to_vec(),
            nexmon_payload(256, 4),
        ]);
        let mut reader = NexmonReader::new(&bytes[..], "mem");
        let frames: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(reader.skipped, 1);
        let f = &frames[1];
        assert_eq!(f.csi.shape(), &[1, 1, 256]);
        assert_eq!(f.csi[[0, 0, 3]], Complex32::new(3.0, -3.0));
        assert_eq!(f.rssi, Some(-55.0));
        let FrameMeta::Nexmon(m) = &f.meta else {
            panic!()
        };
        assert_eq!((m.core, m.spatial_stream, m.padding), (1, 1, 4));
    }

    #[test]
    fn short_packet_is_reported_and_reading_goes_on() {
        let mut short = nexmon_payload(256, 0);
        short.truncate(500);
        let bytes = pcap_with(&[short, nexmon_payload(256, 0)]);
        let out: Vec<_> = NexmonReader::new(&bytes[..], "mem").collect();
        assert_eq!(out.len(), 2);
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("needs 1024"));
        assert!(out[1].is_ok());
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let bytes = pcap_with(&[nexmon_payload(64, 0), nexmon_payload(64, 0)]);
        for cut in 0..bytes.len() {
            let out: Vec<_> = NexmonReader::new(&bytes[..cut], "mem").collect();
            if cut < 24 || (cut > 24 && cut != bytes.len() / 2 + 12) {
                assert!(out.iter().any(|r| r.is_err()) || cut == 24, "cut {cut}");
            }
        }
        let mut seed = 0x9E3779B97F4A7C15u64;
        for round in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..(1 + round % 8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 32) as u8;
            }
            for chip in [None, Some(NexmonChip::Bcm4358), Some(NexmonChip::Bcm4366c0)] {
                let opts = NexmonOptions {
                    chip,
                    ..Default::default()
                };
                let _: Vec<_> = NexmonReader::with_options(&b[..], "mem", opts).collect();
            }
        }
    }

    #[test]
    fn float_unpack_of_zero_words_is_zero() {
        assert!(unpack_float_acphy(10, true, 9, 5, &[0, 0, 0])
            .iter()
            .all(|&v| v == 0));
    }

    #[test]
    fn fast_float_unpacking_matches_the_port_of_unpack_float_c() {
        let mut seed = 0x9E3779B97F4A7C15u64;
        for round in 0..400 {
            let n = [64, 128, 256, 512][round % 4];
            let mut bytes = Vec::with_capacity(n * 4);
            for _ in 0..n * 4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Some rounds sparse, so zero mantissas and small exponents occur.
                bytes.push(if round % 3 == 0 {
                    (seed as u8) & 0x0f
                } else {
                    seed as u8
                });
            }
            let h: Vec<u32> = bytes
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            for (nman, nexp) in [(9, 5), (12, 6)] {
                let slow = unpack_float_acphy(10, true, nman, nexp, &h);
                let mut fast = vec![MaybeUninit::uninit(); n];
                unpack_float_into(10, nman, nexp, &bytes, &mut fast);
                // SAFETY: unpack_float_into writes all n values.
                let fast: Vec<Complex32> = fast
                    .into_iter()
                    .map(|v| unsafe { v.assume_init() })
                    .collect();
                for (i, c) in fast.iter().enumerate() {
                    assert_eq!(c.re, slow[2 * i] as f32, "round {round} value {i}");
                    assert_eq!(c.im, slow[2 * i + 1] as f32, "round {round} value {i}");
                }
            }
        }
    }
}
