//! The compact binary frame ESP32 nodes stream over UDP (codec only).
//!
//! One datagram carries one frame: a 32-byte little-endian header, then `n_tx × n_rx ×
//! n_sub` int8 (real, imaginary) pairs in `(tx, rx, subcarrier)` C order. The layout is
//! specified in `docs/udp-frame.md`; the socket loop that receives datagrams lives with
//! the live sources, this module only encodes and decodes.

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::{CsiFormat, CsiFrame};

/// "WDPC": WiFi-DensePose CSI.
pub const MAGIC: [u8; 4] = *b"WDPC";
/// The datagram layout version this codec writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of header before the CSI values.
pub const HEADER_LEN: usize = 32;
/// An RSSI or noise byte with this value means "not reported".
pub const UNKNOWN_DBM: i8 = -128;
/// Most transmit or receive antennas a datagram may carry; with [`MAX_SUBCARRIERS`] it
/// keeps a datagram under the 65 507-byte UDP maximum.
pub const MAX_ANTENNAS: u8 = 8;
/// Most subcarriers a datagram may carry (see [`MAX_ANTENNAS`]).
pub const MAX_SUBCARRIERS: u16 = 2048;

/// A decoded datagram: which node sent it, and the frame.
#[derive(Debug, Clone)]
pub struct UdpFrame {
    /// The sending node's id from the header.
    pub node_id: u16,
    /// The CSI and what the header said about it.
    pub frame: CsiFrame,
}

/// Encodes `frame` for node `node_id`. CSI values are rounded to the nearest integer
/// and clamped to int8 (the sender scales them beforehand); the timestamp is sent in
/// microseconds; a missing sequence number is sent as 0.
pub fn encode(node_id: u16, frame: &CsiFrame) -> Result<Vec<u8>, String> {
    let [t, r, s] = [frame.n_tx(), frame.n_rx(), frame.n_subcarriers()];
    if t == 0
        || r == 0
        || s == 0
        || t > MAX_ANTENNAS as usize
        || r > MAX_ANTENNAS as usize
        || s > MAX_SUBCARRIERS as usize
    {
        return Err(format!(
            "shape ({t}, {r}, {s}) does not fit a UDP frame (1..={MAX_ANTENNAS} antennas, 1..={MAX_SUBCARRIERS} subcarriers)"
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + 2 * t * r * s);
    out.extend(MAGIC);
    out.push(VERSION);
    out.push(0); // flags, reserved
    out.extend(node_id.to_le_bytes());
    out.push(t as u8);
    out.push(r as u8);
    out.extend((s as u16).to_le_bytes());
    out.extend(frame.channel.unwrap_or(0).to_le_bytes());
    out.extend(frame.bandwidth_mhz.unwrap_or(0).to_le_bytes());
    out.extend((frame.sequence.unwrap_or(0) as u32).to_le_bytes());
    let us = (frame.timestamp * 1e6).round();
    out.extend(
        (if us.is_finite() && us > 0.0 {
            us as u64
        } else {
            0
        })
        .to_le_bytes(),
    );
    let dbm = |v: Option<f32>| v.map_or(UNKNOWN_DBM, |x| x.round().clamp(-127.0, 127.0) as i8);
    out.push(dbm(frame.rssi) as u8);
    out.push(dbm(frame.noise) as u8);
    out.extend([0, 0]);
    let q = |x: f32| x.round().clamp(-128.0, 127.0) as i8 as u8;
    for c in frame.csi.iter() {
        out.push(q(c.re));
        out.push(q(c.im));
    }
    Ok(out)
}

/// Decodes one datagram; `source` (e.g. the sender's address) names it in errors.
pub fn decode(datagram: &[u8], source: &str) -> Result<UdpFrame, CsiError> {
    let bad = |offset: u64, problem: String| CsiError::malformed(source, offset, problem);
    if datagram.len() < HEADER_LEN {
        return Err(bad(
            0,
            format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header",
                datagram.len()
            ),
        ));
    }
    if datagram[..4] != MAGIC {
        return Err(bad(
            0,
            format!("magic {:02x?} is not \"WDPC\"", &datagram[..4]),
        ));
    }
    if datagram[4] != VERSION {
        return Err(CsiError::unsupported(
            source,
            4,
            format!(
                "UDP frame version {} (this build reads {VERSION})",
                datagram[4]
            ),
        ));
    }
    let u16le = |i: usize| u16::from_le_bytes([datagram[i], datagram[i + 1]]);
    let (t, r, s) = (datagram[8], datagram[9], u16le(10));
    if t == 0 || r == 0 || s == 0 || t > MAX_ANTENNAS || r > MAX_ANTENNAS || s > MAX_SUBCARRIERS {
        return Err(bad(
            8,
            format!("impossible shape n_tx={t}, n_rx={r}, n_sub={s}"),
        ));
    }
    let n = t as usize * r as usize * s as usize;
    if datagram.len() != HEADER_LEN + 2 * n {
        return Err(bad(
            HEADER_LEN as u64,
            format!(
                "{} bytes, but n_tx={t} × n_rx={r} × n_sub={s} needs {}",
                datagram.len(),
                HEADER_LEN + 2 * n
            ),
        ));
    }
    let values: Vec<Complex32> = datagram[HEADER_LEN..]
        .chunks_exact(2)
        .map(|p| Complex32::new(p[0] as i8 as f32, p[1] as i8 as f32))
        .collect();
    let dbm = |b: u8| (b as i8 != UNKNOWN_DBM).then_some(b as i8 as f32);
    let channel = u16le(12);
    let bandwidth = u16le(14);
    let mut frame = CsiFrame::from_csi(
        u64::from_le_bytes(datagram[20..28].try_into().expect("8 bytes")) as f64 * 1e-6,
        Array3::from_shape_vec((t as usize, r as usize, s as usize), values).expect("n values"),
        CsiFormat::Udp,
    );
    frame.sequence = Some(u32::from_le_bytes(datagram[16..20].try_into().expect("4 bytes")) as u64);
    frame.rssi = dbm(datagram[28]);
    frame.noise = dbm(datagram[29]);
    frame.channel = (channel != 0).then_some(channel);
    frame.bandwidth_mhz = (bandwidth != 0).then_some(bandwidth);
    Ok(UdpFrame {
        node_id: u16le(6),
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CsiFrame {
        let csi = Array3::from_shape_fn((2, 3, 64), |(t, r, s)| {
            Complex32::new((t * 50 + r * 10 + s) as f32 - 100.0, -((s % 7) as f32))
        });
        let mut f = CsiFrame::from_csi(1_700_000_000.123456, csi, CsiFormat::Esp32);
        f.rssi = Some(-61.0);
        f.channel = Some(6);
        f.bandwidth_mhz = Some(20);
        f.sequence = Some(4242);
        f
    }

    #[test]
    fn round_trip_keeps_everything() {
        let f = sample();
        let bytes = encode(7, &f).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * 2 * 3 * 64);
        let d = decode(&bytes, "node").unwrap();
        assert_eq!(d.node_id, 7);
        assert_eq!(d.frame.csi, f.csi);
        assert_eq!((d.frame.rssi, d.frame.noise), (Some(-61.0), None));
        assert_eq!(
            (d.frame.channel, d.frame.bandwidth_mhz, d.frame.sequence),
            (Some(6), Some(20), Some(4242))
        );
        assert!((d.frame.timestamp - f.timestamp).abs() < 1e-6);
        assert_eq!(d.frame.format, CsiFormat::Udp);
    }

    #[test]
    fn values_are_rounded_and_clamped_to_int8() {
        let mut f = sample();
        f.csi[[0, 0, 0]] = Complex32::new(300.0, -1000.4);
        f.csi[[0, 0, 1]] = Complex32::new(2.6, -2.4);
        let d = decode(&encode(1, &f).unwrap(), "n").unwrap();
        assert_eq!(d.frame.csi[[0, 0, 0]], Complex32::new(127.0, -128.0));
        assert_eq!(d.frame.csi[[0, 0, 1]], Complex32::new(3.0, -2.0));
    }

    #[test]
    fn bad_datagrams_are_errors_naming_source_and_offset() {
        let good = encode(1, &sample()).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], "10.0.0.9:5000").is_err());
        }
        let mut bad = good.clone();
        bad[8] = 0;
        let msg = decode(&bad, "10.0.0.9:5000").unwrap_err().to_string();
        assert!(
            msg.contains("10.0.0.9:5000, byte 8") && msg.contains("n_tx=0"),
            "{msg}"
        );
        let mut seed = 0x2545F4914F6CDD1Du64;
        for _ in 0..5000 {
            let mut b = good.clone();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b[(seed as usize) % HEADER_LEN] = (seed >> 40) as u8;
            let _ = decode(&b, "x");
        }
        assert!(encode(
            1,
            &CsiFrame::from_csi(0.0, Array3::zeros((1, 1, 0)), CsiFormat::Udp)
        )
        .is_err());
    }
}
