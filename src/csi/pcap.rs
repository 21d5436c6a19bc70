//! Classic libpcap files, just enough to reach UDP payloads.
//!
//! nexmon_csi sends its CSI as UDP datagrams that are captured with tcpdump; this
//! module walks the pcap records (either byte order, micro- or nanosecond
//! timestamps) and peels Ethernet / Linux cooked / raw-IP link layers, IPv4 and UDP.
//! pcapng files are recognised and refused with a message saying how to convert them.

use std::io::Read;

use super::error::CsiError;
use super::source::Source;

/// pcap global header length.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Per-record header length.
const RECORD_HEADER_LEN: usize = 16;
/// Largest record accepted: far above any real snaplen, small enough that a garbage
/// length cannot make the reader allocate gigabytes.
const MAX_RECORD_LEN: u32 = 1 << 24;

/// Link-layer types this reader understands (see tcpdump.org/linktypes.html).
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Whether `head` starts like a classic pcap file.
pub fn is_pcap_magic(head: &[u8]) -> bool {
    head.len() >= 4
        && matches!(
            u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
            0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1
        )
}

/// One captured packet.
pub struct PcapRecord<'a> {
    /// Offset of the record header in the file.
    pub offset: u64,
    pub ts_sec: u32,
    /// Microseconds, or nanoseconds when [`PcapReader::nanosecond`].
    pub ts_frac: u32,
    pub caplen: u32,
    pub origlen: u32,
    pub data: &'a [u8],
}

pub struct PcapReader<R: Read> {
    pub(crate) src: Source<R>,
    big_endian: bool,
    /// Whether timestamps carry nanoseconds (magic 0xa1b23c4d).
    pub nanosecond: bool,
    pub linktype: u32,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the global header.
    pub fn open(reader: R, name: String) -> Result<Self, CsiError> {
        let mut src = Source::new(reader, name);
        let h = src.read(GLOBAL_HEADER_LEN, "pcap global header", 0)?;
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanosecond) = match magic {
            0xa1b2c3d4 => (false, false),
            0xd4c3b2a1 => (true, false),
            0xa1b23c4d => (false, true),
            0x4d3cb2a1 => (true, true),
            0x0a0d0d0a => {
                return Err(CsiError::unsupported(
                    &src.name,
                    0,
                    "pcapng capture; convert it with `editcap -F pcap in.pcapng out.pcap`",
                ))
            }
            _ => {
                return Err(src.malformed(0, format!("pcap magic 0x{magic:08x} is not a pcap file")))
            }
        };
        let rd = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let linktype = rd(20) & 0x0fff_ffff;
        if !matches!(
            linktype,
            LINKTYPE_ETHERNET
                | LINKTYPE_RAW
                | LINKTYPE_LINUX_SLL
                | LINKTYPE_IPV4
                | LINKTYPE_LINUX_SLL2
        ) {
            return Err(CsiError::unsupported(
                &src.name,
                20,
                format!(
                    "pcap link type {linktype} (expected Ethernet, raw IP or Linux cooked capture)"
                ),
            ));
        }
        Ok(PcapReader {
            src,
            big_endian,
            nanosecond,
            linktype,
        })
    }

    /// The next record; `Ok(None)` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<PcapRecord<'_>>, CsiError> {
        let offset = self.src.offset;
        let Some(h) = self
            .src
            .read_or_eof(RECORD_HEADER_LEN, "pcap record header", offset)?
        else {
            return Ok(None);
        };
        let be = self.big_endian;
        let rd = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (ts_sec, ts_frac, caplen, origlen) = (rd(0), rd(4), rd(8), rd(12));
        if caplen > MAX_RECORD_LEN {
            return Err(self.src.malformed(
                offset,
                format!("pcap record claims {caplen} captured bytes; the file is corrupt here"),
            ));
        }
        if caplen == 0 && origlen == 0 {
            // No packet is 0 bytes long on the wire: this is zeros (a zero-filled or
            // preallocated tail) where a record should be. Going on would walk the zeros
            // 16 bytes at a time.
            return Err(self.src.malformed(
                offset,
                "pcap record of 0 bytes: zeros where a record should be; the capture ends here",
            ));
        }
        let data = self.src.read(caplen as usize, "pcap packet", offset)?;
        Ok(Some(PcapRecord {
            offset,
            ts_sec,
            ts_frac,
            caplen,
            origlen,
            data,
        }))
    }
}

/// The UDP payload of a captured packet, or `None` when it is not IPv4/UDP.
/// The payload is cut at the UDP length when the capture holds more (Ethernet padding).
pub fn udp_payload(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    let ip = match linktype {
        LINKTYPE_ETHERNET => {
            let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
            let mut at = 14;
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                ethertype = u16::from_be_bytes([*frame.get(at + 2)?, *frame.get(at + 3)?]);
                at += 4;
            }
            if ethertype != 0x0800 {
                return None;
            }
            frame.get(at..)?
        }
        LINKTYPE_LINUX_SLL => {
            if u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]) != 0x0800 {
                return None;
            }
            frame.get(16..)?
        }
        LINKTYPE_LINUX_SLL2 => {
            if u16::from_be_bytes([*frame.first()?, *frame.get(1)?]) != 0x0800 {
                return None;
            }
            frame.get(20..)?
        }
        _ => frame,
    };
    if ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ihl < 20 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    let udp_len = u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]) as usize;
    if udp_len < 8 {
        return None;
    }
    let end = udp_len.min(udp.len());
    udp.get(8..end)
}
