//! The contract between the pose model and the tracker: what the model reports for
//! one person in one frame.
//!
//! Coordinates are the model's prediction frame (see `docs/simulator.md`): the top-down
//! view of the floor normalised to the unit square, `u = x / width`, `v = y / depth`.
//! The tracker converts to metres with the room size it is configured with.

/// COCO keypoints, COCO order.
pub const N_KEYPOINTS: usize = 17;
/// Activity classes, in this order: the one list. The model's activity output
/// (`crate::model::ACTIVITY_NAMES`), the simulator's labels (`crate::sim::motion::Activity`
/// as an index), the `activity` of events and Python's `wifi_densepose.ACTIVITIES` are
/// all this constant.
pub const ACTIVITIES: [&str; 5] = ["standing", "walking", "sitting", "lying", "falling"];
/// The number of activity classes.
pub const N_ACTIVITIES: usize = ACTIVITIES.len();

/// Indices into [`ACTIVITIES`].
pub mod class {
    /// `"standing"`.
    pub(crate) const STANDING: usize = 0;
    /// `"walking"`.
    pub(crate) const WALKING: usize = 1;
    /// `"sitting"`.
    pub(crate) const SITTING: usize = 2;
    /// `"lying"`.
    pub(crate) const LYING: usize = 3;
    /// `"falling"`.
    pub(crate) const FALLING: usize = 4;
}

/// Keypoints with confidence below this are treated as not seen.
pub(crate) const MIN_KEYPOINT_CONF: f64 = 0.3;

/// One detected person in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `(u, v, confidence)` for the 17 COCO keypoints, confidence in `[0, 1]`.
    pub keypoints: [[f64; 3]; N_KEYPOINTS],
    /// `[u_min, v_min, u_max, v_max]`.
    pub bbox: [f64; 4],
    /// Presence probability in `[0, 1]`: how sure the model is that this is a person.
    pub score: f64,
    /// Class scores in [`ACTIVITIES`] order (probabilities; need not sum to one).
    pub activity: [f64; N_ACTIVITIES],
    /// The coarse dense pose, when the model gives one.
    pub dense: Option<std::sync::Arc<DensePatch>>,
}

/// A person's coarse dense pose: the foreground cells of a patch of the room's top-down
/// raster (`grid x grid` cells over the floor, rows along v, columns along u).
#[derive(Debug, Clone, PartialEq)]
pub struct DensePatch {
    /// Cells on a side of the room raster.
    pub grid: usize,
    /// `(row, column, part 1..=24, u, v)` of each cell the person covers.
    pub cells: Vec<(i32, i32, u8, f32, f32)>,
}

impl Detection {
    /// Finite numbers, scores in `[0, 1]`, a box with `min <= max`. Invalid detections
    /// are ignored by the tracker (never a panic).
    pub(crate) fn is_valid(&self) -> bool {
        let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        unit(self.score)
            && self.activity.iter().all(|&a| unit(a))
            && self.bbox.iter().all(|b| b.is_finite())
            && self.bbox[0] <= self.bbox[2]
            && self.bbox[1] <= self.bbox[3]
            && self
                .keypoints
                .iter()
                .all(|k| k[0].is_finite() && k[1].is_finite() && unit(k[2]))
    }

    fn kp_m(&self, i: usize, room: [f64; 2]) -> Option<[f64; 2]> {
        let k = self.keypoints[i];
        (k[2] >= MIN_KEYPOINT_CONF).then(|| [k[0] * room[0], k[1] * room[1]])
    }

    fn mean_m(&self, idx: &[usize], room: [f64; 2]) -> Option<[f64; 2]> {
        let pts: Vec<[f64; 2]> = idx.iter().filter_map(|&i| self.kp_m(i, room)).collect();
        if pts.is_empty() {
            return None;
        }
        let n = pts.len() as f64;
        Some([
            pts.iter().map(|p| p[0]).sum::<f64>() / n,
            pts.iter().map(|p| p[1]).sum::<f64>() / n,
        ])
    }

    /// Where the person is on the floor, metres: the mid-hip when a hip is seen, else
    /// the mean of the seen keypoints, else the box centre.
    pub(crate) fn position_m(&self, room: [f64; 2]) -> [f64; 2] {
        if let Some(p) = self.mean_m(&[11, 12], room) {
            return p;
        }
        let all: Vec<usize> = (0..N_KEYPOINTS).collect();
        self.mean_m(&all, room).unwrap_or([
            0.5 * (self.bbox[0] + self.bbox[2]) * room[0],
            0.5 * (self.bbox[1] + self.bbox[3]) * room[1],
        ])
    }

    /// The same detection moved on the floor so that its floor position (the mid-hip,
    /// else the keypoints' or the box's centre) is `to` (metres): keypoints and box shift
    /// together, the pose's shape is kept. Used when the localizer knows where the
    /// person is better than the model does.
    pub fn moved_to(&mut self, to: [f64; 2], room: [f64; 2]) {
        if !(room[0] > 0.0 && room[1] > 0.0 && to.iter().all(|v| v.is_finite())) {
            return;
        }
        let at = self.position_m(room);
        let du = (to[0] - at[0]) / room[0];
        let dv = (to[1] - at[1]) / room[1];
        // Still inside the room's unit square: a body near a wall keeps its keypoints
        // at the wall rather than past it.
        let inside = |x: f64| x.clamp(0.0, 1.0);
        for k in self.keypoints.iter_mut() {
            k[0] = inside(k[0] + du);
            k[1] = inside(k[1] + dv);
        }
        self.bbox = [
            inside(self.bbox[0] + du),
            inside(self.bbox[1] + dv),
            inside(self.bbox[2] + du),
            inside(self.bbox[3] + dv),
        ];
    }

    /// Horizontal head-to-feet distance, metres: the body's extent seen from above.
    /// About 0.1-0.4 m upright (standing, walking, sitting), the body length lying.
    /// `None` when the head or both ankles are unseen.
    pub fn extension_m(&self, room: [f64; 2]) -> Option<f64> {
        let head = self.mean_m(&[0, 1, 2, 3, 4], room)?;
        let feet = self.mean_m(&[15, 16], room)?;
        Some((head[0] - feet[0]).hypot(head[1] - feet[1]))
    }

    /// Index of the highest activity score.
    pub fn top_activity(&self) -> usize {
        argmax(&self.activity)
    }
}

/// Index of the largest value (the first on ties; 0 for an empty slice).
pub(crate) fn argmax(x: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_labels_and_the_class_indices_index_the_one_list() {
        use crate::sim::motion::Activity;
        let labels = [
            (Activity::Standing, class::STANDING),
            (Activity::Walking, class::WALKING),
            (Activity::Sitting, class::SITTING),
            (Activity::Lying, class::LYING),
            (Activity::Falling, class::FALLING),
        ];
        assert_eq!(labels.len(), ACTIVITIES.len());
        for (label, index) in labels {
            assert_eq!(label as usize, index);
            // The simulator's scenario files name activities through serde.
            let name = serde_json::to_value(label).unwrap();
            assert_eq!(name.as_str(), Some(ACTIVITIES[index]));
        }
    }

    fn det() -> Detection {
        let mut keypoints = [[0.5, 0.5, 0.9]; N_KEYPOINTS];
        for k in &mut keypoints[0..5] {
            k[0] = 0.6;
        }
        Detection {
            keypoints,
            bbox: [0.4, 0.4, 0.6, 0.6],
            score: 0.9,
            activity: [0.1, 0.1, 0.1, 0.6, 0.1],
            dense: None,
        }
    }

    #[test]
    fn geometry_in_metres_and_validation() {
        let d = det();
        assert!(d.is_valid());
        assert_eq!(d.position_m([6.0, 5.0]), [3.0, 2.5]);
        let e = d.extension_m([6.0, 5.0]).unwrap();
        assert!((e - 0.6).abs() < 1e-9);
        assert_eq!(d.top_activity(), class::LYING);
        let mut bad = d.clone();
        bad.keypoints[3][0] = f64::NAN;
        assert!(!bad.is_valid());
        let mut bad = d.clone();
        bad.score = 1.5;
        assert!(!bad.is_valid());
        // Unseen keypoints: fall back to the box.
        let mut blind = d;
        for k in &mut blind.keypoints {
            k[2] = 0.0;
        }
        assert_eq!(blind.position_m([6.0, 5.0]), [3.0, 2.5]);
        assert_eq!(blind.extension_m([6.0, 5.0]), None);
    }
}
