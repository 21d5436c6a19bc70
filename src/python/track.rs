//! `wifi_densepose._native.run_analytics`: tracking and analytics over whole arrays
//! ([`crate::analytics::run_arrays`]). Conversion and delegation only; the GIL is
//! released while the engine runs; shape errors are `InvalidArgumentError`s (ValueErrors).

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3, PyReadonlyArray4};
use pyo3::prelude::*;

use super::errors::InvalidArgumentError;
use crate::analytics::rest_posture::{self, RestPosture};
use crate::analytics::{run_arrays, EngineConfig};
use crate::track::TrackerConfig;

/// Returns `[(event_type, data_json), ...]` in publication order.
#[pyfunction]
#[pyo3(signature = (times, keypoints, boxes, scores, activity, room_size=(6.0, 5.0), window_s=60.0))]
// Written out because pyo3 renders a tuple default as `...` (the stub says `(6.0, 5.0)`).
#[pyo3(
    text_signature = "(times, keypoints, boxes, scores, activity, room_size=(6.0, 5.0), window_s=60.0)"
)]
#[allow(clippy::too_many_arguments)]
fn run_analytics(
    py: Python<'_>,
    times: PyReadonlyArray1<'_, f64>,
    keypoints: PyReadonlyArray4<'_, f64>,
    boxes: PyReadonlyArray3<'_, f64>,
    scores: PyReadonlyArray2<'_, f64>,
    activity: PyReadonlyArray3<'_, f64>,
    room_size: (f64, f64),
    window_s: f64,
) -> PyResult<Vec<(String, String)>> {
    let config = EngineConfig {
        tracker: TrackerConfig {
            room_size: [room_size.0, room_size.1],
            ..Default::default()
        },
        window_s,
        ..Default::default()
    };
    let (t, k, b, s, a) = (
        times.as_array(),
        keypoints.as_array(),
        boxes.as_array(),
        scores.as_array(),
        activity.as_array(),
    );
    let out = py
        .detach(|| run_arrays(config, t, k, b, s, a))
        .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
    Ok(out
        .into_iter()
        .map(|o| (o.event_type.as_str().to_string(), o.data.to_string()))
        .collect())
}

/// One end of motion: its time, its features and the regression's probabilities.
type PostureEnd = (f64, Vec<f64>, Vec<f64>);

/// Runs a [`RestPosture`] over a run of sensor frames (`x`/`y` the localizer's place, NaN
/// where there is none), calling `visit` after each frame with its time, the tracker and
/// the features `update` returned (a motion end's).
fn replay(
    times: PyReadonlyArray1<'_, f64>,
    motion: PyReadonlyArray1<'_, bool>,
    level: PyReadonlyArray1<'_, f64>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    mut visit: impl FnMut(f64, &RestPosture, Option<rest_posture::Features>),
) -> PyResult<()> {
    let (t, m, l, x, y) = (
        times.as_array(),
        motion.as_array(),
        level.as_array(),
        x.as_array(),
        y.as_array(),
    );
    let n = t.len();
    if [m.len(), l.len(), x.len(), y.len()].iter().any(|&k| k != n) {
        return Err(InvalidArgumentError::new_err(
            "times, motion, level, x and y must have one length",
        ));
    }
    let mut r = RestPosture::default();
    for i in 0..n {
        let place = (x[i].is_finite() && y[i].is_finite()).then_some([x[i], y[i]]);
        let ended = r.update(t[i], m[i], l[i], place);
        visit(t[i], &r, ended);
    }
    Ok(())
}

/// The rest-posture features ([`crate::analytics::rest_posture`]) at every motion end of
/// a run of sensor frames: `[(t_end, [6 features], [standing, sitting, lying]), ...]`.
/// `x`/`y` are the localizer's place (NaN where there is none). The same code the
/// pipeline runs, so a bench fits its regression on exactly what it will see.
#[pyfunction]
fn rest_posture_features(
    times: PyReadonlyArray1<'_, f64>,
    motion: PyReadonlyArray1<'_, bool>,
    level: PyReadonlyArray1<'_, f64>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
) -> PyResult<Vec<PostureEnd>> {
    let mut out = Vec::new();
    replay(times, motion, level, x, y, |t, _, ended| {
        if let Some(f) = ended {
            out.push((t, f.to_vec(), rest_posture::classify(&f).to_vec()));
        }
    })?;
    Ok(out)
}

/// One moving frame: its time, the features up to it and the probability of walking.
type MovingFrame = (f64, Vec<f64>, f64);

/// The walking features at every frame with motion detected (the run so far, the levels
/// and places up to it): `[(t, [10 features], p_walking), ...]`, with the walking
/// regression's probability ([`rest_posture::walking_probability`]). Arguments as
/// `rest_posture_features`.
#[pyfunction]
fn walking_features(
    times: PyReadonlyArray1<'_, f64>,
    motion: PyReadonlyArray1<'_, bool>,
    level: PyReadonlyArray1<'_, f64>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
) -> PyResult<Vec<MovingFrame>> {
    let mut out = Vec::new();
    replay(times, motion, level, x, y, |t, r, _| {
        if let (Some(f), Some(p)) = (r.moving_features(), r.walking()) {
            out.push((t, f.to_vec(), p));
        }
    })?;
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_analytics, m)?)?;
    m.add_function(wrap_pyfunction!(rest_posture_features, m)?)?;
    m.add_function(wrap_pyfunction!(walking_features, m)?)?;
    Ok(())
}
