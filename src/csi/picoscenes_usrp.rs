//! The CSI data of a PicoScenes `CSI` segment recorded by a USRP software radio
//! (device type `0x1234`).
//!
//! Unlike the NICs, whose segments carry the chip's own bit-packed report, a USRP
//! segment carries what PicoScenes' software baseband computed, serialised by the
//! parsing core's own container (RXS-Parsing-Core `CSI::toBuffer` and the USRP branch of
//! the `CSISegment.cxx` v1-v4 parsers; `SignalMatrix.hxx` `toBuffer`/`fromBuffer`):
//!
//! - `NumTones` subcarrier indices, `int16` each, in the order of the values;
//! - a `SignalMatrix`: the tag `"BBv1"` or `"BBv2"`, a `u8` dimension count, the
//!   dimensions (`u32` each for v1, `u64` for v2), a complexity char (`'C'` complex,
//!   `'R'` real), an element type char (`'D'` double, `'F'` float, `'I'`/`'U'`
//!   integers...), the element size in bits, the storage order (`'C'` column-major,
//!   `'R'` row-major), then the values.
//!
//! PicoScenes reads the matrix as `SignalMatrix<std::complex<double>>` (and rejects any
//! other element type) into column-major order; its dimensions are
//! `(NumTones, NumTx + NumESS, NumRx[, NumCSI])`, as `CSI::getCSI` indexes them and the
//! MATLAB toolbox exports them. The values are the baseband's estimates as stored: no
//! scaling, tones in stored order. They become `f32` here as every frame's CSI does.

use ndarray::Array3;
use num_complex::Complex32;

use super::FrameError;

/// PicoScenes' device type for USRP front ends.
pub const DEVICE_USRP: u16 = 0x1234;

/// Bytes of one stored value: a complex double.
const VALUE_BYTES: usize = 16;

/// Decodes the CSI data (`CSIBufferLength` bytes) of a USRP segment into
/// `(subcarrier indices, csi[tx, rx, tone])`. Offsets in errors count from the start of
/// `data`; `version` (the CSI segment's) only names the segment in messages.
pub(super) fn decode(
    data: &[u8],
    version: u16,
    n_tones: usize,
    n_tx: usize,
    n_rx: usize,
) -> Result<(Vec<i16>, Array3<Complex32>), FrameError> {
    let index_bytes = 2 * n_tones;
    if data.len() < index_bytes {
        return Err((
            0,
            format!(
                "USRP CSI data of {} bytes cannot hold its {n_tones} subcarrier indices",
                data.len()
            ),
            false,
        ));
    }
    let indices = data[..index_bytes]
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    let at = index_bytes;
    let m = &data[at..];
    let short = |need: usize| {
        (
            at + m.len(),
            format!(
                "USRP CSI matrix ends after {} bytes; its header needs {need}",
                m.len()
            ),
            false,
        )
    };
    if m.len() < 5 {
        return Err(short(5));
    }
    if &m[..3] != b"BBv" {
        return Err((
            at,
            format!(
                "USRP CSI matrix starts with \"{}\", not a SignalMatrix tag (\"BBv1\", \"BBv2\")",
                m[..4].escape_ascii()
            ),
            false,
        ));
    }
    let width = match m[3] {
        b'1' => 4,
        b'2' => 8,
        v => {
            return Err((
                at + 3,
                format!(
                    "USRP CSI matrix of SignalMatrix version {:?} (CSI segment v{version}; \
                     PicoScenes defines BBv1 and BBv2)",
                    char::from(v)
                ),
                true,
            ))
        }
    };
    let n_dims = m[4] as usize;
    let head = 5 + n_dims * width + 4;
    if m.len() < head {
        return Err(short(head));
    }
    let dims: Vec<u64> = m[5..5 + n_dims * width]
        .chunks_exact(width)
        .map(|d| {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(d);
            u64::from_le_bytes(b)
        })
        .collect();
    let [complexity, kind, bits, order] = [m[head - 4], m[head - 3], m[head - 2], m[head - 1]];
    if (complexity, kind, bits) != (b'C', b'D', 64) {
        // PicoScenes' own parser throws here too ("Incompatible SignalMatrix ..."): a CSI
        // segment is only ever read as complex double.
        return Err((
            at + head - 4,
            format!(
                "USRP CSI stored as {} (CSI segment v{version}, SignalMatrix v{}); PicoScenes' \
                 parser, like this reader, reads only complex double (CD64) CSI",
                describe(complexity, kind, bits),
                char::from(m[3])
            ),
            true,
        ));
    }
    let column_major = match order {
        b'C' => true,
        b'R' => false,
        v => {
            return Err((
                at + head - 1,
                format!(
                    "USRP CSI matrix storage order {:?} is neither 'C' (column-major) nor 'R' \
                     (row-major)",
                    char::from(v)
                ),
                false,
            ))
        }
    };
    // Trailing 1s carry no layout: (56, 1, 1) and (56, 1, 1, 1) and (56,) are one shape.
    let trim = |d: &[u64]| -> Vec<u64> {
        let keep = d.iter().rposition(|&v| v != 1).map_or(0, |i| i + 1);
        d[..keep].to_vec()
    };
    let expected = [n_tones as u64, n_tx as u64, n_rx as u64];
    if trim(&dims) != trim(&expected) {
        return Err((
            at + 5,
            format!(
                "USRP CSI matrix dimensions {dims:?} are not the header's {n_tones} tones × \
                 {n_tx} streams (NumTx + NumESS) × {n_rx} rx"
            ),
            false,
        ));
    }
    let count = n_tones * n_tx * n_rx;
    let values = &m[head..];
    if values.len() != count * VALUE_BYTES {
        return Err((
            at + head,
            format!(
                "USRP CSI matrix has {} value bytes; {count} complex doubles need {}",
                values.len(),
                count * VALUE_BYTES
            ),
            false,
        ));
    }
    let mut csi = Array3::<Complex32>::zeros((n_tx, n_rx, n_tones));
    let out = csi.as_slice_mut().expect("fresh array is contiguous");
    let value = |i: usize| {
        let v = &values[i * VALUE_BYTES..(i + 1) * VALUE_BYTES];
        let re = f64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
        let im = f64::from_le_bytes(v[8..].try_into().expect("8 bytes"));
        Complex32::new(re as f32, im as f32)
    };
    for tx in 0..n_tx {
        for rx in 0..n_rx {
            let row = &mut out[(tx * n_rx + rx) * n_tones..][..n_tones];
            for (tone, slot) in row.iter_mut().enumerate() {
                // Column-major: tone fastest, then stream, then rx. Row-major: rx fastest.
                let i = if column_major {
                    tone + n_tones * (tx + n_tx * rx)
                } else {
                    (tone * n_tx + tx) * n_rx + rx
                };
                *slot = value(i);
            }
        }
    }
    Ok((indices, csi))
}

/// "complex float32"-style words for a SignalMatrix element description.
fn describe(complexity: u8, kind: u8, bits: u8) -> String {
    let c = match complexity {
        b'C' => "complex",
        b'R' => "real",
        _ => "?",
    };
    let k = match kind {
        b'D' | b'F' => "float",
        b'I' => "int",
        b'U' => "uint",
        b'C' => "char",
        b'L' => "bool",
        _ => "?",
    };
    format!(
        "{c} {k}{bits} (SignalMatrix chars {:?} {:?} {bits})",
        char::from(complexity),
        char::from(kind)
    )
}
