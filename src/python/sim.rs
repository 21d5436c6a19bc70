//! Python access to the simulator (`wifi_densepose.sim` wraps these): scenario names,
//! scenario descriptions, and `sim_generate`, which builds a [`Simulator`] and returns
//! the whole run as a dict of numpy arrays. Conversion and delegation only; generation
//! runs with the GIL released.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::SimulationError;
use crate::sim::device::DEVICE_NAMES;
use crate::sim::motion::ACTIVITY_NAMES;
use crate::sim::skeleton::KEYPOINT_NAMES;
use crate::sim::{build_spec, scenario, BatchOptions, SimError, Simulator, SCENARIO_NAMES};

fn to_py_err(e: SimError) -> PyErr {
    SimulationError::new_err(e.to_string())
}

/// Names of the built-in scenarios.
#[pyfunction]
fn sim_scenarios() -> Vec<&'static str> {
    SCENARIO_NAMES.to_vec()
}

/// Names of the device profiles.
#[pyfunction]
fn sim_devices() -> Vec<&'static str> {
    DEVICE_NAMES.to_vec()
}

/// The full description (every default filled in) of a named scenario or a JSON
/// description, with the overrides applied, as JSON.
#[pyfunction]
#[pyo3(signature = (scenario, seed=None, duration_s=None, device=None, fps=None))]
fn sim_spec(
    scenario: &str,
    seed: Option<u64>,
    duration_s: Option<f64>,
    device: Option<&str>,
    fps: Option<f64>,
) -> PyResult<String> {
    let spec = build_spec(scenario, seed, duration_s, device, fps).map_err(to_py_err)?;
    Ok(spec.to_json())
}

/// The bare description of a named scenario lasting `duration_s`, as JSON.
#[pyfunction]
#[pyo3(signature = (name, duration_s=10.0))]
fn sim_scenario(name: &str, duration_s: f64) -> PyResult<String> {
    scenario::named(name, duration_s)
        .map(|v| v.to_string())
        .map_err(to_py_err)
}

/// Runs a simulation; `scenario` is a name or a JSON description.
#[pyfunction]
#[pyo3(signature = (scenario, seed=None, duration_s=None, device=None, fps=None, dense_pose_grid=32, threads=0))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
fn sim_generate<'py>(
    py: Python<'py>,
    scenario: &str,
    seed: Option<u64>,
    duration_s: Option<f64>,
    device: Option<&str>,
    fps: Option<f64>,
    dense_pose_grid: usize,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    if dense_pose_grid > 1024 {
        return Err(SimulationError::new_err(
            "invalid field `dense_pose_grid`: at most 1024",
        ));
    }
    let scenario = scenario.to_string();
    let device = device.map(str::to_string);
    let (sim, data) = py
        .detach(move || {
            let spec = build_spec(&scenario, seed, duration_s, device.as_deref(), fps)?;
            let sim = Simulator::new(spec)?;
            let data = sim.generate(&BatchOptions {
                dense_pose_grid,
                threads,
            });
            Ok::<_, SimError>((sim, data))
        })
        .map_err(to_py_err)?;
    let d = PyDict::new(py);
    d.set_item("csi", data.csi.into_pyarray(py))?;
    d.set_item("timestamps", data.timestamps.into_pyarray(py))?;
    d.set_item("sequence", data.sequence.into_pyarray(py))?;
    d.set_item("rssi", data.rssi.into_pyarray(py))?;
    d.set_item("keypoints_3d", data.keypoints_3d.into_pyarray(py))?;
    d.set_item("keypoints_2d", data.keypoints_2d.into_pyarray(py))?;
    d.set_item("boxes", data.boxes.into_pyarray(py))?;
    d.set_item("present", data.present.into_pyarray(py))?;
    d.set_item("activity", data.activity.into_pyarray(py))?;
    d.set_item("occupancy", data.occupancy.into_pyarray(py))?;
    d.set_item("falls", data.falls.into_pyarray(py))?;
    if let Some(dp) = data.dense_pose {
        d.set_item("dense_part", dp.part.into_pyarray(py))?;
        d.set_item("dense_person", dp.person.into_pyarray(py))?;
        d.set_item("dense_u", dp.u.into_pyarray(py))?;
        d.set_item("dense_v", dp.v.into_pyarray(py))?;
    }
    d.set_item(
        "subcarriers",
        PyArray1::from_vec(py, sim.device.subcarriers.clone()),
    )?;
    d.set_item(
        "frequencies",
        PyArray1::from_vec(py, sim.device.frequencies()),
    )?;
    d.set_item("room_size", sim.room.size.to_vec())?;
    d.set_item("device", sim.device.name.clone())?;
    d.set_item("fps", sim.spec.fps)?;
    d.set_item("n_packets_sent", sim.n_frames())?;
    d.set_item("keypoint_names", PyList::new(py, KEYPOINT_NAMES)?)?;
    d.set_item("activity_names", PyList::new(py, ACTIVITY_NAMES)?)?;
    d.set_item("spec", sim.spec.to_json())?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sim_scenarios, m)?)?;
    m.add_function(wrap_pyfunction!(sim_devices, m)?)?;
    m.add_function(wrap_pyfunction!(sim_spec, m)?)?;
    m.add_function(wrap_pyfunction!(sim_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(sim_generate, m)?)?;
    Ok(())
}
