//! `wifi_densepose._native.sense`: the sensor ([`crate::sensing`]) over a whole array of
//! frames, numpy in, numpy out. Conversion and delegation only; the GIL is released while
//! the sensor runs.
use super::errors::InvalidArgumentError;
use ndarray::{Array1, Axis};
use num_complex::Complex32;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray4};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::sensing::{Calibration, CalibrationOutcome, Sensor};

/// The frames and their times, owned (the GIL is released while they are used), or why
/// they do not go together.
fn frames(
    csi: &PyReadonlyArray4<'_, Complex32>,
    timestamps: &PyReadonlyArray1<'_, f64>,
) -> PyResult<(ndarray::Array4<Complex32>, Array1<f64>)> {
    let csi = csi.as_array().to_owned();
    let ts = timestamps.as_array().to_owned();
    if csi.len_of(Axis(0)) != ts.len() {
        return Err(InvalidArgumentError::new_err(format!(
            "csi has {} frames but timestamps has {}",
            csi.len_of(Axis(0)),
            ts.len()
        )));
    }
    Ok((csi, ts))
}

/// Runs a fresh sensor over `csi` `(n, n_tx, n_rx, n_sub)` at `timestamps` (seconds) and
/// returns its state after every frame as arrays. `calibrate_s` first learns the empty room
/// over that many seconds of the input; `calibration` (a saved one, as a dict) applies one.
/// `align_chains` false leaves a stepping card's quarter-turn steps in (to see their cost).
/// `channel` is the frames' 802.11 channel number, where known (it sets the band).
#[pyfunction]
#[pyo3(signature = (csi, timestamps, calibrate_s=None, calibration=None, align_chains=true, channel=None))]
fn sense<'py>(
    py: Python<'py>,
    csi: PyReadonlyArray4<'py, Complex32>,
    timestamps: PyReadonlyArray1<'py, f64>,
    calibrate_s: Option<f64>,
    calibration: Option<&Bound<'py, PyDict>>,
    align_chains: bool,
    channel: Option<u16>,
) -> PyResult<Bound<'py, PyDict>> {
    let (csi, ts) = frames(&csi, &timestamps)?;
    let calibration: Option<Calibration> = calibration
        .map(|c| super::json::calibration(c.as_any()))
        .transpose()?;
    let out = py.detach(move || {
        let n = ts.len();
        let mut sensor = Sensor::new(crate::sensing::SensorConfig {
            align_chains,
            ..Default::default()
        });
        sensor.set_calibration(calibration)?;
        sensor.set_band(crate::sensing::Band::of_channel(channel));
        if let Some(s) = calibrate_s {
            sensor.calibrate(s);
        }
        let mut cols = Columns::new(n);
        let mut outcome = None;
        for (i, frame) in csi.outer_iter().enumerate() {
            let frame = frame.to_owned();
            if let Some(o) = sensor.push(ts[i], &frame) {
                outcome = Some(o);
            }
            cols.set(i, sensor.state());
        }
        Ok::<_, String>((cols, outcome))
    });
    let (cols, outcome) = out.map_err(InvalidArgumentError::new_err)?;
    let d = PyDict::new(py);
    d.set_item("motion_ratio", cols.motion_ratio.into_pyarray(py))?;
    d.set_item("motion_level", cols.motion_level.into_pyarray(py))?;
    d.set_item("motion_detected", cols.motion_detected.into_pyarray(py))?;
    d.set_item("presence", cols.presence.into_pyarray(py))?;
    d.set_item("presence_score", cols.presence_score.into_pyarray(py))?;
    d.set_item("breathing_rate_bpm", cols.breathing.into_pyarray(py))?;
    d.set_item("breathing_score", cols.breathing_score.into_pyarray(py))?;
    d.set_item("static_score", cols.static_score.into_pyarray(py))?;
    d.set_item("mode", cols.mode)?;
    match outcome {
        Some(CalibrationOutcome::Done(c)) => {
            let v = serde_json::to_value(&c)
                .map_err(|e| InvalidArgumentError::new_err(format!("calibration: {e}")))?;
            d.set_item("calibration", super::json::to_py(py, &v)?)?;
        }
        Some(CalibrationOutcome::Refused { reason }) => {
            d.set_item("calibration_refused", reason)?;
        }
        None => {}
    }
    Ok(d)
}

struct Columns {
    motion_ratio: Array1<f64>,
    motion_level: Array1<f64>,
    motion_detected: Array1<bool>,
    presence: Array1<bool>,
    presence_score: Array1<f64>,
    breathing: Array1<f64>,
    breathing_score: Array1<f64>,
    static_score: Array1<f64>,
    mode: &'static str,
}

impl Columns {
    fn new(n: usize) -> Self {
        Columns {
            motion_ratio: Array1::from_elem(n, f64::NAN),
            motion_level: Array1::zeros(n),
            motion_detected: Array1::from_elem(n, false),
            presence: Array1::from_elem(n, false),
            presence_score: Array1::from_elem(n, f64::NAN),
            breathing: Array1::from_elem(n, f64::NAN),
            breathing_score: Array1::from_elem(n, f64::NAN),
            static_score: Array1::from_elem(n, f64::NAN),
            mode: "none",
        }
    }

    fn set(&mut self, i: usize, s: &crate::sensing::SensingState) {
        self.motion_ratio[i] = s.motion_ratio;
        self.motion_level[i] = s.motion_level;
        self.motion_detected[i] = s.motion_detected;
        self.presence[i] = s.presence;
        self.presence_score[i] = s.presence_score.unwrap_or(f64::NAN);
        self.breathing[i] = s.breathing_rate_bpm.unwrap_or(f64::NAN);
        self.breathing_score[i] = s.breathing_score.unwrap_or(f64::NAN);
        self.static_score[i] = s.static_score.unwrap_or(f64::NAN);
        self.mode = s.mode;
    }
}

/// Describes `csi` `(n, n_tx, n_rx, n_sub)` at `timestamps` with the classifier features
/// ([`crate::sensing::window_features`]): one row of `names` every `hop_s` seconds of the
/// last `window_s` seconds, exactly as a live environment does. Returns a dict: `t` (each
/// window's last packet time), `features` `(windows, len(names))` float32, `names`,
/// `feature_set`, `skipped` (frames left out).
#[pyfunction]
#[pyo3(signature = (csi, timestamps, window_s, hop_s))]
fn window_features<'py>(
    py: Python<'py>,
    csi: PyReadonlyArray4<'py, Complex32>,
    timestamps: PyReadonlyArray1<'py, f64>,
    window_s: f64,
    hop_s: f64,
) -> PyResult<Bound<'py, PyDict>> {
    use crate::sensing::window_features::{WindowFeatures, FEATURE_SET, LEN, NAMES};
    let (csi, ts) = frames(&csi, &timestamps)?;
    let mut describer =
        WindowFeatures::new(window_s, hop_s).map_err(InvalidArgumentError::new_err)?;
    let (times, rows, skipped) = py.detach(move || {
        let (mut times, mut rows) = (Vec::new(), Vec::new());
        for (i, frame) in csi.outer_iter().enumerate() {
            if let Some(v) = describer.push(ts[i], &frame.to_owned()) {
                times.push(ts[i]);
                rows.extend_from_slice(&v);
            }
        }
        (times, rows, describer.skipped)
    });
    let n = times.len();
    let features = ndarray::Array2::from_shape_vec((n, LEN), rows)
        .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
    let d = PyDict::new(py);
    d.set_item("t", Array1::from(times).into_pyarray(py))?;
    d.set_item("features", features.into_pyarray(py))?;
    d.set_item("names", NAMES.to_vec())?;
    d.set_item("feature_set", FEATURE_SET)?;
    d.set_item("skipped", skipped)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sense, m)?)?;
    m.add_function(wrap_pyfunction!(window_features, m)?)?;
    Ok(())
}
