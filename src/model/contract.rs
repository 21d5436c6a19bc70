//! The model contract (`docs/model.md`): one input, four outputs, fixed shapes except the
//! batch axis (and `K`, the number of person slots, which the model chooses and every
//! output must agree on).
//!
//! - input `csi` float32 `(B, 2, W=32, F=90)`: channel 0 normalized amplitude, channel 1
//!   sanitized phase (radians); `W` packets oldest first; `F` = 3 links x 30 subcarriers.
//! - `presence` float32 `(B, K)`: probability in `[0, 1]` that the slot holds a person.
//! - `keypoints` float32 `(B, K, 17, 3)`: COCO keypoints `(u, v, confidence)`, `u = x /
//!   room width`, `v = y / room depth` (top-down floor frame), confidence in `[0, 1]`.
//! - `boxes` float32 `(B, K, 4)`: `[u_min, v_min, u_max, v_max]` in the same frame.
//! - `activity` float32 `(B, K, 5)`: probabilities over [`ACTIVITY_NAMES`].
//!
//! Optional, both or neither (contract 2): the coarse dense pose of each slot, a patch of
//! `PATCH x PATCH` cells of the room's top-down `GRID x GRID` raster centred on the
//! slot's mid-hip cell:
//! - `dense_part` float32 `(B, K, 25, PATCH, PATCH)`: probabilities over background and
//!   the 24 DensePose parts;
//! - `dense_uv` float32 `(B, K, 2, PATCH, PATCH)`: the parts' U, V in `[0, 1]`.

use ort::value::ValueType;

/// The name of the model's one input.
pub(crate) const INPUT: &str = "csi";
/// Input channels: amplitude and phase.
pub const CHANNELS: usize = 2;
/// Packets in one input window.
pub const WINDOW: usize = 32;
/// Features per packet and channel (antenna links times subcarriers).
pub const FEATURES: usize = 90;
/// COCO keypoints per person slot.
pub const KEYPOINTS: usize = 17;
/// Values of a box: `[u_min, v_min, u_max, v_max]`.
pub(crate) const BOX: usize = 4;
/// The classes of the `activity` output, in order (the one list lives with the detections).
pub use crate::track::ACTIVITIES as ACTIVITY_NAMES;
/// The outputs every model has.
pub(crate) const OUTPUTS: [&str; 4] = ["presence", "keypoints", "boxes", "activity"];
/// The optional dense-pose outputs (a model has both or neither).
pub(crate) const DENSE_OUTPUTS: [&str; 2] = ["dense_part", "dense_uv"];
/// Background plus the 24 DensePose parts.
pub(crate) const DENSE_PARTS: usize = 25;
/// Cells on a side of a slot's dense-pose patch.
pub(crate) const PATCH: usize = 8;
/// Cells on a side of the room raster the patches are cut from.
pub(crate) const GRID: usize = 32;
/// Metadata key holding the model version string.
pub(crate) const VERSION_KEY: &str = "wifi_densepose.version";

/// A dimension of an expected shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch axis: dynamic (or any size).
    Batch,
    /// The person-slot count, fixed by the model, the same in every output.
    Slots,
    /// An axis of exactly this size.
    Fixed(usize),
}

fn show(dims: &[Dim]) -> String {
    let v: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Batch => "batch".to_string(),
            Dim::Slots => "K".to_string(),
            Dim::Fixed(n) => n.to_string(),
        })
        .collect();
    format!("({})", v.join(", "))
}

fn show_actual(shape: &[i64]) -> String {
    let v: Vec<String> = shape
        .iter()
        .map(|&d| {
            if d < 0 {
                "dynamic".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("({})", v.join(", "))
}

/// The shape the input must have.
pub(crate) fn input_shape() -> Vec<Dim> {
    vec![
        Dim::Batch,
        Dim::Fixed(CHANNELS),
        Dim::Fixed(WINDOW),
        Dim::Fixed(FEATURES),
    ]
}

/// The shape the output `name` must have.
pub(crate) fn output_shape(name: &str) -> Vec<Dim> {
    match name {
        "presence" => vec![Dim::Batch, Dim::Slots],
        "keypoints" => vec![Dim::Batch, Dim::Slots, Dim::Fixed(KEYPOINTS), Dim::Fixed(3)],
        "boxes" => vec![Dim::Batch, Dim::Slots, Dim::Fixed(BOX)],
        "dense_part" => vec![
            Dim::Batch,
            Dim::Slots,
            Dim::Fixed(DENSE_PARTS),
            Dim::Fixed(PATCH),
            Dim::Fixed(PATCH),
        ],
        "dense_uv" => vec![
            Dim::Batch,
            Dim::Slots,
            Dim::Fixed(2),
            Dim::Fixed(PATCH),
            Dim::Fixed(PATCH),
        ],
        _ => vec![Dim::Batch, Dim::Slots, Dim::Fixed(ACTIVITY_NAMES.len())],
    }
}

/// Checks one tensor (name, element type, shape) against its expected shape; fills in
/// `slots` from the first output that fixes `K`. Returns a message naming expected and
/// actual shapes on a mismatch.
pub fn check(
    kind: &str,
    name: &str,
    dtype: Option<&ValueType>,
    expected: &[Dim],
    slots: &mut Option<usize>,
) -> Result<(), String> {
    let Some(ValueType::Tensor { ty, shape, .. }) = dtype else {
        return Err(format!(
            "{kind} `{name}`: expected a float32 tensor of shape {}, found {}",
            show(expected),
            dtype.map_or("nothing".to_string(), |d| format!("{d:?}"))
        ));
    };
    if *ty != ort::value::TensorElementType::Float32 {
        return Err(format!(
            "{kind} `{name}`: expected float32 of shape {}, found {ty:?} of shape {}",
            show(expected),
            show_actual(shape)
        ));
    }
    let actual: Vec<i64> = shape.iter().copied().collect();
    let bad = || {
        format!(
            "{kind} `{name}`: expected shape {}, actual shape {}",
            show(expected),
            show_actual(&actual)
        )
    };
    if actual.len() != expected.len() {
        return Err(bad());
    }
    for (e, &a) in expected.iter().zip(&actual) {
        match e {
            Dim::Batch => {}
            Dim::Fixed(n) => {
                if a != *n as i64 {
                    return Err(bad());
                }
            }
            Dim::Slots => {
                if a <= 0 {
                    return Err(format!("{} (K must be a fixed positive size)", bad()));
                }
                match slots {
                    Some(k) if *k as i64 != a => {
                        return Err(format!("{} (K = {k} in another output)", bad()))
                    }
                    _ => *slots = Some(a as usize),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ort::value::{Shape, SymbolicDimensions, TensorElementType};

    fn tensor(ty: TensorElementType, dims: &[i64]) -> ValueType {
        ValueType::Tensor {
            ty,
            shape: Shape::new(dims.iter().copied()),
            dimension_symbols: SymbolicDimensions::new(dims.iter().map(|_| String::new())),
        }
    }

    #[test]
    fn input_fits_with_dynamic_or_fixed_batch() {
        let mut k = None;
        let t = tensor(TensorElementType::Float32, &[-1, 2, 32, 90]);
        assert!(check("input", "csi", Some(&t), &input_shape(), &mut k).is_ok());
        let t = tensor(TensorElementType::Float32, &[8, 2, 32, 90]);
        assert!(check("input", "csi", Some(&t), &input_shape(), &mut k).is_ok());
    }

    #[test]
    fn wrong_window_names_expected_and_actual() {
        let mut k = None;
        let t = tensor(TensorElementType::Float32, &[-1, 2, 16, 90]);
        let e = check("input", "csi", Some(&t), &input_shape(), &mut k).unwrap_err();
        assert!(e.contains("expected shape (batch, 2, 32, 90)"), "{e}");
        assert!(e.contains("actual shape (dynamic, 2, 16, 90)"), "{e}");
    }

    #[test]
    fn slots_must_agree_between_outputs() {
        let mut k = None;
        let p = tensor(TensorElementType::Float32, &[-1, 2]);
        check(
            "output",
            "presence",
            Some(&p),
            &output_shape("presence"),
            &mut k,
        )
        .unwrap();
        assert_eq!(k, Some(2));
        let kp = tensor(TensorElementType::Float32, &[-1, 3, 17, 3]);
        let e = check(
            "output",
            "keypoints",
            Some(&kp),
            &output_shape("keypoints"),
            &mut k,
        )
        .unwrap_err();
        assert!(e.contains("K = 2 in another output"), "{e}");
        let dynamic = tensor(TensorElementType::Float32, &[-1, -1, 4]);
        let mut k2 = None;
        assert!(check(
            "output",
            "boxes",
            Some(&dynamic),
            &output_shape("boxes"),
            &mut k2
        )
        .is_err());
    }

    #[test]
    fn wrong_element_type_is_refused() {
        let mut k = None;
        let t = tensor(TensorElementType::Float64, &[-1, 2, 32, 90]);
        let e = check("input", "csi", Some(&t), &input_shape(), &mut k).unwrap_err();
        assert!(e.contains("float32"), "{e}");
    }
}
