//! Telling the recording format from the file content (or from the name a user gives).
//!
//! Detection looks only at the first bytes of the file: a pcap magic number means
//! nexmon, the PicoScenes frame magic means PicoScenes, `CSI_DATA` rows mean ESP32,
//! and the two binary log formats are recognised by decoding their first record and
//! checking that its length fields agree with each other.

use std::str::FromStr;

use super::atheros;
use super::formats::FORMATS;
use super::intel5300;
use super::pcap::is_pcap_magic;
use super::picoscenes;
use super::CsiFormat;

/// Bytes read from the start of a file for detection.
pub const DETECT_BYTES: usize = 64 * 1024;

impl FromStr for CsiFormat {
    type Err = String;

    /// Parses a format name as a user types it ("intel5300", "nexmon", "esp32"...): a
    /// name or an alias of the format table ([`FORMATS`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let typed = s.trim().to_ascii_lowercase().replace(['-', '_', ' '], "");
        FORMATS
            .iter()
            .find(|f| f.is_named(&typed))
            .map(|f| f.format)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
                format!(
                    "unknown CSI format {typed:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The format of a file starting with `head`, or why none fits: the first entry of the
/// format table ([`FORMATS`]) whose sniffer recognises it.
pub fn detect_format(head: &[u8]) -> Result<CsiFormat, String> {
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    if let Some(f) = FORMATS.iter().find(|f| (f.sniff)(head)) {
        return Ok(f.format);
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let labels: Vec<&str> = FORMATS.iter().map(|f| f.label).collect();
    Err(format!(
        "the first bytes ({}) match no known format ({})",
        shown.join(" "),
        labels.join(", ")
    ))
}

/// A pcap capture (nexmon).
pub(crate) fn looks_like_nexmon(head: &[u8]) -> bool {
    is_pcap_magic(head)
}

/// The PicoScenes frame magic.
pub(crate) fn looks_like_picoscenes(head: &[u8]) -> bool {
    head.len() >= 8 && u32::from_le_bytes([head[4], head[5], head[6], head[7]]) == picoscenes::MAGIC
}

/// `CSI_DATA` rows (or an ESP32 CSV header).
pub(crate) fn looks_like_esp32(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        line.starts_with(b"CSI_DATA")
            || (line.starts_with(b"type,") && line.windows(4).any(|w| w == b",len"))
    })
}

/// A first Atheros record whose length fields agree.
pub(crate) fn looks_like_atheros(head: &[u8]) -> bool {
    if head.len() < 2 + atheros::HEADER_LEN {
        return false;
    }
    let h = &head[2..2 + atheros::HEADER_LEN];
    let Some(order) = atheros::detect_endianness([head[0], head[1]], h) else {
        return false;
    };
    let csi_len = match order {
        atheros::Endianness::Little => u16::from_le_bytes([h[8], h[9]]),
        atheros::Endianness::Big => u16::from_be_bytes([h[8], h[9]]),
    } as usize;
    let (tones, nr, nc) = (h[16] as usize, h[17] as usize, h[18] as usize);
    (1..=3).contains(&nr)
        && (1..=3).contains(&nc)
        && tones > 0
        && csi_len * 8 >= nr * nc * tones * 20
}

/// A first bfee record that decodes.
pub(crate) fn looks_like_intel5300(head: &[u8]) -> bool {
    // Walk the records in the head; the first bfee must decode.
    let mut pos = 0;
    while pos + 3 <= head.len() {
        let len = u16::from_be_bytes([head[pos], head[pos + 1]]) as usize;
        if len == 0 {
            return false;
        }
        if head[pos + 2] == intel5300::BFEE_CODE {
            let end = (pos + 2 + len).min(head.len());
            return intel5300::parse_bfee(&head[pos + 3..end], false).is_ok();
        }
        pos += 2 + len;
    }
    false
}
