//! Python access to the simulator (`wifi_densepose.sim` wraps these): scenario names,
//! scenario descriptions, and `sim_generate`, which builds a [`Simulator`] and returns
//! the whole run as a dict of numpy arrays. Conversion and delegation only; generation
//! runs with the GIL released.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::SimulationError;
use crate::sim::dataset::Link;
use crate::sim::device::DEVICE_NAMES;
use crate::sim::motion::ACTIVITY_NAMES;
use crate::sim::skeleton::KEYPOINT_NAMES;
use crate::sim::{
    build_spec, scenario, BatchOptions, Dataset, SimError, Simulator, SCENARIO_NAMES,
};

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
    let (sim, data, nodes) = py
        .detach(move || {
            let spec = build_spec(&scenario, seed, duration_s, device.as_deref(), fps)?;
            let sim = Simulator::new(spec)?;
            let opts = BatchOptions {
                dense_pose_grid,
                threads,
            };
            if sim.is_multi_node() {
                // Truth once on the packet grid; each node's packets on their own.
                let truth = sim.generate_truth(&opts);
                let node_opts = BatchOptions {
                    dense_pose_grid: 0,
                    threads,
                };
                let nodes: Vec<Dataset> = (0..sim.links().len())
                    .map(|j| sim.generate_link(j, &node_opts))
                    .collect();
                Ok::<_, SimError>((sim, truth, nodes))
            } else {
                let data = sim.generate(&opts);
                Ok((sim, data, Vec::new()))
            }
        })
        .map_err(to_py_err)?;
    let multi = sim.is_multi_node();
    let d = PyDict::new(py);
    if !multi {
        d.set_item("csi", data.csi.into_pyarray(py))?;
        d.set_item("rssi", data.rssi.into_pyarray(py))?;
        link_metadata(py, &d, &sim.links()[0])?;
    }
    d.set_item("timestamps", data.timestamps.into_pyarray(py))?;
    d.set_item("sequence", data.sequence.into_pyarray(py))?;
    d.set_item("keypoints_3d", data.keypoints_3d.into_pyarray(py))?;
    d.set_item("keypoints_2d", data.keypoints_2d.into_pyarray(py))?;
    d.set_item("boxes", data.boxes.into_pyarray(py))?;
    d.set_item("present", data.present.into_pyarray(py))?;
    d.set_item("activity", data.activity.into_pyarray(py))?;
    d.set_item("occupancy", data.occupancy.into_pyarray(py))?;
    d.set_item("falls", data.falls.into_pyarray(py))?;
    d.set_item("background_moving", data.background_moving.into_pyarray(py))?;
    d.set_item("events", data.events.into_pyarray(py))?;
    d.set_item(
        "breathing_rate_bpm",
        data.breathing_rate_bpm.into_pyarray(py),
    )?;
    d.set_item(
        "breathing_depth_mm",
        data.breathing_depth_mm.into_pyarray(py),
    )?;
    if let Some(dp) = data.dense_pose {
        d.set_item("dense_part", dp.part.into_pyarray(py))?;
        d.set_item("dense_person", dp.person.into_pyarray(py))?;
        d.set_item("dense_u", dp.u.into_pyarray(py))?;
        d.set_item("dense_v", dp.v.into_pyarray(py))?;
    }
    if multi {
        let list = PyList::empty(py);
        for (link, nd) in sim.links().iter().zip(nodes) {
            let n = PyDict::new(py);
            n.set_item("name", link.name.clone())?;
            n.set_item("csi", nd.csi.into_pyarray(py))?;
            n.set_item("timestamps", nd.timestamps.into_pyarray(py))?;
            n.set_item("true_time", nd.true_time.into_pyarray(py))?;
            n.set_item("sequence", nd.sequence.into_pyarray(py))?;
            n.set_item("rssi", nd.rssi.into_pyarray(py))?;
            n.set_item("clock_offset_s", link.clock_offset_s)?;
            n.set_item("clock_drift_ppm", link.clock_drift * 1e6)?;
            link_metadata(py, &n, link)?;
            list.append(n)?;
        }
        d.set_item("nodes", list)?;
    }
    d.set_item("room_size", sim.room.size.to_vec())?;
    d.set_item("fps", sim.spec.fps)?;
    d.set_item("n_packets_sent", sim.n_frames())?;
    d.set_item("keypoint_names", PyList::new(py, KEYPOINT_NAMES)?)?;
    d.set_item("activity_names", PyList::new(py, ACTIVITY_NAMES)?)?;
    d.set_item("spec", sim.spec.to_json())?;
    Ok(d)
}

/// A link's device, subcarriers, placement and antenna positions.
fn link_metadata(py: Python<'_>, d: &Bound<'_, PyDict>, link: &Link) -> PyResult<()> {
    d.set_item(
        "subcarriers",
        PyArray1::from_vec(py, link.device.subcarriers.clone()),
    )?;
    d.set_item(
        "frequencies",
        PyArray1::from_vec(py, link.device.frequencies()),
    )?;
    d.set_item("device", link.device.name.clone())?;
    d.set_item("channel", link.device.channel)?;
    let p = PyDict::new(py);
    p.set_item("tx_position", link.placement.tx_position.to_vec())?;
    p.set_item("rx_position", link.placement.rx_position.to_vec())?;
    p.set_item("tx_axis", link.placement.tx_axis.to_vec())?;
    p.set_item("rx_axis", link.placement.rx_axis.to_vec())?;
    d.set_item("placement", p)?;
    let ants = |a: &[[f64; 3]]| ndarray::Array2::from_shape_fn((a.len(), 3), |(i, k)| a[i][k]);
    d.set_item(
        "tx_antennas",
        ants(link.channel.tx_antennas()).into_pyarray(py),
    )?;
    d.set_item(
        "rx_antennas",
        ants(link.channel.rx_antennas()).into_pyarray(py),
    )?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sim_scenarios, m)?)?;
    m.add_function(wrap_pyfunction!(sim_devices, m)?)?;
    m.add_function(wrap_pyfunction!(sim_spec, m)?)?;
    m.add_function(wrap_pyfunction!(sim_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(sim_generate, m)?)?;
    Ok(())
}
