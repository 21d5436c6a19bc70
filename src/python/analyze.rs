//! Python access to the offline pipeline (`wifi_densepose.analyze` wraps these): a
//! `Recording` or a CSI array through the live environment task as fast as it goes
//! (`crate::pipeline::offline`), its events back as Python objects. Conversion and
//! delegation only; the run holds no GIL, except briefly a few times a second to call the
//! progress callback and to let Ctrl-C stop it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::errors::{InvalidArgumentError, ServerError as PyServerError};
use ndarray::{ArrayView4, Axis};
use num_complex::Complex32;
use numpy::{PyReadonlyArray1, PyReadonlyArray4, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::csi::PyRecording;
use super::model::NativeModel;
use crate::csi::{CsiFormat, CsiFrame, CsiTable};
use crate::events::Event;
use crate::pipeline::{OfflineError, OfflineFrame, OfflineOptions, OFFLINE_ENVIRONMENT};

/// How often, at most, the GIL is taken back during a run (progress, Ctrl-C).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

#[allow(clippy::too_many_arguments)]
fn options(
    model: Option<&NativeModel>,
    room: Option<(f64, f64)>,
    device: Option<String>,
    placement: Option<super::localize::PlacementArg>,
    environment_id: &str,
    source: String,
    end_reason: String,
) -> PyResult<OfflineOptions> {
    if let Some(d) = device.as_deref() {
        if !crate::sim::device::DEVICE_NAMES.contains(&d) {
            let e = crate::app::AppArgumentError::UnknownDevice(d.to_string());
            return Err(InvalidArgumentError::new_err(e.to_string()));
        }
    }
    Ok(OfflineOptions {
        environment_id: environment_id.to_string(),
        geometry: super::localize::geometry(placement, device.as_deref(), room)?,
        device,
        room: room.map(|(w, d)| [w, d]),
        model: model.map(NativeModel::shared),
        source,
        end_reason,
        ..OfflineOptions::default()
    })
}

/// `options` with a saved calibration (a dict `calibrate` returned), applied before the
/// first frame.
fn with_calibration(
    mut options: OfflineOptions,
    calibration: Option<Bound<'_, PyAny>>,
) -> PyResult<OfflineOptions> {
    if let Some(c) = calibration.filter(|c| !c.is_none()) {
        options.calibration = Some(super::json::calibration(&c)?);
    }
    Ok(options)
}

/// Runs `frames` with the GIL released; calls `progress(done, total)` and checks for
/// signals at most every [`PROGRESS_EVERY`], and once at the end.
fn run<'py, I>(
    py: Python<'py>,
    options: &OfflineOptions,
    frames: I,
    total: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyList>>
where
    I: IntoIterator<Item = (usize, OfflineFrame)> + Send,
{
    let mut failure: Option<PyErr> = None;
    let result = py.detach(|| {
        let mut last = Instant::now();
        let mut tick = |n: u64| -> bool {
            if n < total && last.elapsed() < PROGRESS_EVERY {
                return true;
            }
            last = Instant::now();
            Python::attach(|py| {
                let step = py.check_signals().and_then(|()| match &progress {
                    Some(cb) => cb.call1(py, (n, total)).map(|_| ()),
                    None => Ok(()),
                });
                step.map_err(|e| failure = Some(e)).is_ok()
            })
        };
        crate::pipeline::analyze_tagged(options, frames, &mut tick)
    });
    match result {
        Ok(events) => events_to_py(py, events),
        Err(OfflineError::Cancelled(n)) => Err(failure.unwrap_or_else(|| {
            PyServerError::new_err(format!("analyze was stopped after {n} frames"))
        })),
        Err(e @ (OfflineError::Room(_) | OfflineError::Calibration(_))) => {
            Err(InvalidArgumentError::new_err(e.to_string()))
        }
        Err(e) => Err(PyServerError::new_err(e.to_string())),
    }
}

/// A recording (`read_csi`) through the live pipeline; returns the events the server
/// would publish for its environment, as `{"type", "timestamp", "data"}` dicts in order.
#[pyfunction]
#[pyo3(signature = (recording, *, model=None, room=None, device=None, placement=None, progress=None, environment_id=OFFLINE_ENVIRONMENT, calibration=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
fn analyze_recording<'py>(
    py: Python<'py>,
    recording: &PyRecording,
    model: Option<&NativeModel>,
    room: Option<(f64, f64)>,
    device: Option<String>,
    placement: Option<super::localize::PlacementArg>,
    progress: Option<Py<PyAny>>,
    environment_id: &str,
    calibration: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let (table, stacked) = recording.parts(py)?;
    let view = stacked.as_ref().map(|a| a.as_array());
    if let Some(v) = &view {
        let [t, r, s] = table.shapes.first().copied().unwrap_or([0, 0, 0]);
        if v.shape() != [table.frames.len(), t, r, s] {
            return Err(InvalidArgumentError::new_err(format!(
                "the recording's csi array was reshaped to {:?}",
                v.shape()
            )));
        }
    }
    // Named as a replay of the same file would be.
    let name = std::path::Path::new(&table.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = options(
        model,
        room,
        device,
        placement,
        environment_id,
        format!("replay:{name}"),
        "replay finished".into(),
    )?;
    let options = with_calibration(options, calibration)?;
    let total = table.frames.len() as u64;
    let frames = recording_frames(&table, view);
    run(py, &options, frames, total, progress)
}

fn recording_frames<'a>(
    table: &'a Arc<CsiTable>,
    stacked: Option<ArrayView4<'a, Complex32>>,
) -> impl Iterator<Item = (usize, OfflineFrame)> + Send + 'a {
    (0..table.frames.len()).map(move |i| {
        let frame = match &stacked {
            // The values live in the stacked array (moved there when the file was read).
            Some(v) => {
                let f = &table.frames[i];
                CsiFrame {
                    timestamp: f.timestamp,
                    csi: v.index_axis(Axis(0), i).to_owned(),
                    rssi: f.rssi,
                    noise: f.noise,
                    format: table.format,
                    channel: f.channel,
                    bandwidth_mhz: f.bandwidth_mhz,
                    sequence: f.sequence,
                    meta: f.meta.clone(),
                }
            }
            None => table.frame(i),
        };
        (0, (frame, None))
    })
}

/// CSI `(n, n_tx, n_rx, n_sub)` complex64 with its timestamps (seconds) through the live
/// pipeline. `sequence` and `rssi` (one per frame) ride along when given (a simulated
/// run has them); `simulated` marks the frames as the simulator's; `source` and
/// `end_reason` name the source as a live one would be.
#[pyfunction]
#[pyo3(signature = (csi, timestamps, *, sequence=None, rssi=None, simulated=false, source="inject", end_reason="input finished", model=None, room=None, device=None, placement=None, progress=None, environment_id=OFFLINE_ENVIRONMENT, calibration=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
fn analyze_array<'py>(
    py: Python<'py>,
    csi: PyReadonlyArray4<'py, Complex32>,
    timestamps: PyReadonlyArray1<'py, f64>,
    sequence: Option<PyReadonlyArray1<'py, u64>>,
    rssi: Option<PyReadonlyArray1<'py, f32>>,
    simulated: bool,
    source: &str,
    end_reason: &str,
    model: Option<&NativeModel>,
    room: Option<(f64, f64)>,
    device: Option<String>,
    placement: Option<super::localize::PlacementArg>,
    progress: Option<Py<PyAny>>,
    environment_id: &str,
    calibration: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let n = csi.shape()[0];
    for (name, len) in [
        ("timestamps", Some(timestamps.len())),
        ("sequence", sequence.as_ref().map(|a| a.len())),
        ("rssi", rssi.as_ref().map(|a| a.len())),
    ] {
        if let Some(len) = len {
            if len != n {
                return Err(InvalidArgumentError::new_err(format!(
                    "{len} {name} for {n} frames: give one per frame"
                )));
            }
        }
    }
    let csi = csi.as_array();
    let ts = timestamps.as_array();
    let seq = sequence.as_ref().map(|a| a.as_array());
    let rssi = rssi.as_ref().map(|a| a.as_array());
    let format = if simulated {
        CsiFormat::Simulated
    } else {
        CsiFormat::Injected
    };
    let frames = (0..n).map(move |i| {
        let mut f = CsiFrame::from_csi(ts[i], csi.index_axis(Axis(0), i).to_owned(), format);
        f.sequence = seq.as_ref().map(|s| s[i]);
        f.rssi = rssi.as_ref().map(|r| r[i]);
        (0, (f, None))
    });
    let options = options(
        model,
        room,
        device,
        placement,
        environment_id,
        source.to_string(),
        end_reason.to_string(),
    )?;
    let options = with_calibration(options, calibration)?;
    run(py, &options, frames, n as u64, progress)
}

/// Several nodes of one room through the live pipeline: node `k`'s CSI `csi[k]`
/// `(n_k, n_tx, n_rx, n_sub)` at its own `timestamps[k]`, named `sources[k]`; `order`
/// `(n, 2)` lists `(node, frame)` in the order the frames arrive (a multi-node
/// `sim.generate` result, merged by true time). `placements[k]`, when given, is node
/// `k`'s link (the nodes' maps are fused to place people; `docs/sensing.md`).
#[pyfunction]
#[pyo3(signature = (csi, timestamps, sources, order, *, end_reason="simulation finished", model=None, room=None, device=None, progress=None, environment_id=OFFLINE_ENVIRONMENT, placements=None, calibration=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
fn analyze_nodes<'py>(
    py: Python<'py>,
    csi: Vec<PyReadonlyArray4<'py, Complex32>>,
    timestamps: Vec<PyReadonlyArray1<'py, f64>>,
    sources: Vec<String>,
    order: numpy::PyReadonlyArray2<'py, u64>,
    end_reason: &str,
    model: Option<&NativeModel>,
    room: Option<(f64, f64)>,
    device: Option<String>,
    progress: Option<Py<PyAny>>,
    environment_id: &str,
    placements: Option<Vec<super::localize::PlacementArg>>,
    calibration: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    if csi.is_empty() || csi.len() != timestamps.len() || csi.len() != sources.len() {
        return Err(InvalidArgumentError::new_err(format!(
            "one csi array, timestamps array and source name per node: got {}, {} and {}",
            csi.len(),
            timestamps.len(),
            sources.len()
        )));
    }
    let views: Vec<_> = csi.iter().map(|a| a.as_array()).collect();
    let stamps: Vec<_> = timestamps.iter().map(|a| a.as_array()).collect();
    for (k, (c, t)) in views.iter().zip(&stamps).enumerate() {
        if c.len_of(Axis(0)) != t.len() {
            return Err(InvalidArgumentError::new_err(format!(
                "node {k}: {} frames but {} timestamps",
                c.len_of(Axis(0)),
                t.len()
            )));
        }
    }
    let order = order.as_array();
    if order.ncols() != 2 {
        return Err(InvalidArgumentError::new_err(
            "order must be (n, 2): node, frame",
        ));
    }
    for row in order.rows() {
        let (k, i) = (row[0] as usize, row[1] as usize);
        if k >= views.len() || i >= stamps[k].len() {
            return Err(InvalidArgumentError::new_err(format!(
                "order names node {k} frame {i}, which does not exist"
            )));
        }
    }
    let total = order.nrows() as u64;
    let frames = order.rows().into_iter().map(move |row| {
        let (k, i) = (row[0] as usize, row[1] as usize);
        let f = CsiFrame::from_csi(
            stamps[k][i],
            views[k].index_axis(Axis(0), i).to_owned(),
            CsiFormat::Simulated,
        );
        (k, (f, None))
    });
    let mut options = with_calibration(
        options(
            model,
            room,
            device,
            None,
            environment_id,
            sources[0].clone(),
            end_reason.to_string(),
        )?,
        calibration,
    )?;
    options.extra_sources = sources[1..].to_vec();
    if let Some(placements) = placements {
        if placements.len() != sources.len() {
            return Err(InvalidArgumentError::new_err(format!(
                "one placement per node: got {} for {} nodes",
                placements.len(),
                sources.len()
            )));
        }
        for (source, p) in sources.iter().zip(placements) {
            if let Some(g) = super::localize::geometry(Some(p), options.device.as_deref(), room)? {
                options.source_geometries.push((source.clone(), g));
            }
        }
    }
    run(py, &options, frames, total, progress)
}

fn events_to_py(py: Python<'_>, events: Vec<(String, Event)>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for (timestamp, event) in events {
        let d = PyDict::new(py);
        d.set_item("type", event.event_type.as_str())?;
        d.set_item("timestamp", timestamp)?;
        d.set_item("data", super::json::to_py(py, &event.data)?)?;
        list.append(d)?;
    }
    Ok(list)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze_recording, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_array, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_nodes, m)?)?;
    Ok(())
}
