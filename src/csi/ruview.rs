//! The raw CSI frame RuView's ESP32 firmware (`firmware/esp32-csi-node`, "ADR-018")
//! streams over UDP (codec only; the socket loop is `pipeline::udp`).
//!
//! Layout, version 1 (magic `0xC5110001`), little-endian, as RuView's firmware writes
//! it (`csi_collector.c`, `csi_serialize_frame`) and its own parser reads it
//! (`esp32_parser.rs`):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `0xC5110001` |
//! | 4 | 1 | node id |
//! | 5 | 1 | antennas (1..=4; the firmware sends 1) |
//! | 6 | 2 | subcarriers per antenna |
//! | 8 | 4 | centre frequency, MHz (0: unknown) |
//! | 12 | 4 | sequence number (the node's own counter) |
//! | 16 | 1 | RSSI, i8 dBm |
//! | 17 | 1 | noise floor, i8 dBm |
//! | 18 | 2 | reserved (later firmware: PPDU type and flags) |
//! | 20 | 2·antennas·subcarriers | the CSI bytes, antenna by antenna |
//!
//! The CSI bytes are the ESP-IDF callback's buffer copied unchanged, the same bytes an
//! ESP32-CSI-Tool `CSI_DATA` row prints, so they are read the same way: **imaginary
//! first** (the ESP-IDF `wifi_csi_info_t` documentation; see [`super::esp32`]).
//! RuView's own parser calls the first byte I; either way the amplitudes agree, and
//! reading both paths one way gives the same frame for the same packet.
//!
//! The header carries no time: frames are stamped with the host clock at reception
//! (seconds since the Unix epoch). Frames have shape `(1, antennas, subcarriers)`.
//!
//! Not read: the other packets of the `0xC511xxxx` family (vitals, feature vectors,
//! compressed frames, WASM output: no raw CSI), and the extended raw-CSI headers that
//! carry the transmitter MAC: their magic differs between RuView versions and forks
//! (`0xC5110003` named such a frame in one version and a feature packet in a later
//! one), so no one layout can be trusted for them. [`family`] recognises the family so
//! a listener can count those packets as skipped rather than as garbage.

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::meta::channel_from_mhz;
use super::{CsiFormat, CsiFrame};

/// Magic of the version-1 raw CSI frame.
pub const MAGIC_V1: u32 = 0xC511_0001;
/// Bytes of header before the CSI bytes.
pub const HEADER_LEN: usize = 20;
/// Most antennas a frame may declare (the limit RuView's parser applies).
pub const MAX_ANTENNAS: u8 = 4;
/// Most subcarriers per antenna a frame may declare (the limit RuView's parser applies).
pub const MAX_SUBCARRIERS: u16 = 256;

/// A decoded frame and the node that sent it.
#[derive(Debug, Clone)]
pub struct RuViewFrame {
    /// The sending node's id from the header (byte 4).
    pub node_id: u8,
    /// The CSI, stamped with the host's reception time.
    pub frame: CsiFrame,
}

/// The magic of a datagram of RuView's packet family (`0xC511xxxx`), if it is one.
pub fn family(datagram: &[u8]) -> Option<u32> {
    let magic = u32::from_le_bytes(datagram.get(..4)?.try_into().ok()?);
    (magic >> 16 == 0xC511).then_some(magic)
}

/// Decodes one version-1 raw CSI frame received at `now` (Unix seconds); `source`
/// (e.g. the sender's address) names it in errors. The datagram must hold exactly the
/// header and the CSI it announces.
pub fn decode(datagram: &[u8], source: &str, now: f64) -> Result<RuViewFrame, CsiError> {
    let bad = |offset: u64, problem: String| CsiError::malformed(source, offset, problem);
    if datagram.len() < HEADER_LEN {
        return Err(bad(
            0,
            format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte RuView header",
                datagram.len()
            ),
        ));
    }
    let u32le = |i: usize| u32::from_le_bytes(datagram[i..i + 4].try_into().expect("4 bytes"));
    let magic = u32le(0);
    if magic != MAGIC_V1 {
        return Err(CsiError::unsupported(
            source,
            0,
            format!("RuView packet magic {magic:#010x} is not the raw CSI frame {MAGIC_V1:#010x}"),
        ));
    }
    let (antennas, subcarriers) = (datagram[5], u16::from_le_bytes([datagram[6], datagram[7]]));
    if antennas == 0 || antennas > MAX_ANTENNAS || subcarriers == 0 || subcarriers > MAX_SUBCARRIERS
    {
        return Err(bad(
            5,
            format!("impossible shape: {antennas} antennas, {subcarriers} subcarriers"),
        ));
    }
    let n = antennas as usize * subcarriers as usize;
    if datagram.len() != HEADER_LEN + 2 * n {
        return Err(bad(
            HEADER_LEN as u64,
            format!(
                "{} bytes, but {antennas} antennas × {subcarriers} subcarriers need {}",
                datagram.len(),
                HEADER_LEN + 2 * n
            ),
        ));
    }
    let values: Vec<Complex32> = datagram[HEADER_LEN..]
        .chunks_exact(2)
        .map(|p| Complex32::new(p[1] as i8 as f32, p[0] as i8 as f32))
        .collect();
    let csi = Array3::from_shape_vec((1, antennas as usize, subcarriers as usize), values)
        .expect("n values");
    let mut frame = CsiFrame::from_csi(now, csi, CsiFormat::Udp);
    frame.channel = channel_from_mhz(u32le(8));
    frame.sequence = Some(u32le(12) as u64);
    frame.rssi = Some(datagram[16] as i8 as f32);
    frame.noise = Some(datagram[17] as i8 as f32);
    Ok(RuViewFrame {
        node_id: datagram[4],
        frame,
    })
}

/// Encodes a version-1 frame (tests, and a sender for bench setups): `csi` holds
/// `(imaginary, real)` byte pairs already, as the ESP-IDF buffer does.
pub fn encode(
    node_id: u8,
    antennas: u8,
    freq_mhz: u32,
    sequence: u32,
    rssi: i8,
    noise: i8,
    csi: &[i8],
) -> Vec<u8> {
    let subcarriers = (csi.len() / 2 / antennas.max(1) as usize) as u16;
    let mut out = Vec::with_capacity(HEADER_LEN + csi.len());
    out.extend(MAGIC_V1.to_le_bytes());
    out.push(node_id);
    out.push(antennas);
    out.extend(subcarriers.to_le_bytes());
    out.extend(freq_mhz.to_le_bytes());
    out.extend(sequence.to_le_bytes());
    out.push(rssi as u8);
    out.push(noise as u8);
    out.extend([0, 0]);
    out.extend(csi.iter().map(|&v| v as u8));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_the_firmware_writes() {
        // 64 subcarriers, (imaginary, real) pairs: subcarrier k = k - 5i.
        let csi: Vec<i8> = (0..64).flat_map(|k| [-5, k as i8]).collect();
        let d = encode(3, 1, 2437, 77, -52, -95, &csi);
        assert_eq!(d.len(), HEADER_LEN + 128);
        assert_eq!(family(&d), Some(MAGIC_V1));
        let f = decode(&d, "udp:10.0.0.2:5005", 100.5).unwrap();
        assert_eq!(f.node_id, 3);
        assert_eq!(f.frame.csi.shape(), &[1, 1, 64]);
        assert_eq!(f.frame.csi[[0, 0, 9]], Complex32::new(9.0, -5.0));
        assert_eq!(f.frame.channel, Some(6));
        assert_eq!(f.frame.sequence, Some(77));
        assert_eq!((f.frame.rssi, f.frame.noise), (Some(-52.0), Some(-95.0)));
        assert_eq!(f.frame.timestamp, 100.5);
    }

    #[test]
    fn other_packets_and_garbage_are_errors_never_panics() {
        let csi = vec![1i8; 128];
        let good = encode(1, 1, 2412, 0, -40, -90, &csi);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], "x", 0.0).is_err());
        }
        let mut vitals = good.clone();
        vitals[0] = 0x02;
        assert_eq!(family(&vitals), Some(0xC511_0002));
        let msg = decode(&vitals, "x", 0.0).unwrap_err().to_string();
        assert!(msg.contains("0xc5110002"), "{msg}");
        assert_eq!(family(b"WDPC"), None);
        assert_eq!(family(b"CSI"), None);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5000 {
            let mut b = good.clone();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b[4 + (seed as usize) % 16] = (seed >> 40) as u8;
            let _ = decode(&b, "x", 0.0);
        }
        let mut wide = good.clone();
        wide[5] = 5;
        assert!(decode(&wide, "x", 0.0)
            .unwrap_err()
            .to_string()
            .contains("5 antennas"));
    }
}
