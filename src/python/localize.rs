//! `wifi_densepose._native.localize`: the single-link localizer
//! ([`crate::sensing::localizer`]) over a whole array of frames, numpy in, numpy out.
//! Conversion and delegation only; the GIL is released while it runs.
use num_complex::Complex32;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray4};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::InvalidArgumentError;
use crate::sensing::{Fix, LinkGeometry, Localizer, LocalizerConfig, MultiLocalizer};

fn positions(a: &PyReadonlyArray2<'_, f64>, name: &str) -> PyResult<Vec<[f64; 3]>> {
    let a = a.as_array();
    if a.ncols() != 3 {
        return Err(InvalidArgumentError::new_err(format!(
            "{name} must be (n, 3) antenna positions, not {:?}",
            a.shape()
        )));
    }
    Ok(a.rows().into_iter().map(|r| [r[0], r[1], r[2]]).collect())
}

/// Runs a fresh localizer over `csi` `(n, n_tx, n_rx, n_sub)` at `timestamps`, with the
/// room `(w, d, h)`, antenna positions `tx`/`rx` `(n, 3)` and subcarrier frequencies
/// `freqs_hz` (0 for null subcarriers). `moving` (bool per frame; default all) gates the
/// windows. Returns a dict of arrays, one row per fix: `t`, `x`, `y`, `sharpness`; with
/// `maps`, also `grid` (the floor points, `(n_points, 2)`) and `maps` (each fix's coarse
/// map, `(n_fix, n_points)`), for studying the maps offline. With `lobes` (1-6), also
/// `lobes` `(n_fix, lobes, 4)`: each fix's window's lobes by successive cancellation
/// (`x`, `y`, `share`, `peak`; NaN rows where fewer were found).
#[pyfunction]
#[pyo3(signature = (csi, timestamps, room, tx, rx, freqs_hz, moving=None, grid_step_m=0.2, window_packets=25, max_subcarriers=10, fit_reflections=true, window_highpass=true, continuity_m=0.0, track_speed_mps=0.0, pair_normalize=false, frame_normalize=false, maps=false, lobes=0, lobe_radius_m=0.3))]
#[allow(clippy::too_many_arguments)]
fn localize<'py>(
    py: Python<'py>,
    csi: PyReadonlyArray4<'py, Complex32>,
    timestamps: PyReadonlyArray1<'py, f64>,
    room: [f64; 3],
    tx: PyReadonlyArray2<'py, f64>,
    rx: PyReadonlyArray2<'py, f64>,
    freqs_hz: PyReadonlyArray1<'py, f64>,
    moving: Option<PyReadonlyArray1<'py, bool>>,
    grid_step_m: f64,
    window_packets: usize,
    max_subcarriers: usize,
    fit_reflections: bool,
    window_highpass: bool,
    continuity_m: f64,
    track_speed_mps: f64,
    pair_normalize: bool,
    frame_normalize: bool,
    maps: bool,
    lobes: usize,
    lobe_radius_m: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let geometry = LinkGeometry {
        room,
        tx: positions(&tx, "tx")?,
        rx: positions(&rx, "rx")?,
        freqs_hz: freqs_hz.as_array().to_vec(),
    };
    let csi = csi.as_array().to_owned();
    let ts = timestamps.as_array().to_owned();
    let moving = moving.map(|m| m.as_array().to_vec());
    if csi.shape()[0] != ts.len() || moving.as_ref().is_some_and(|m| m.len() != ts.len()) {
        return Err(InvalidArgumentError::new_err(
            "csi, timestamps and moving must have one entry per frame",
        ));
    }
    let config = LocalizerConfig {
        grid_step_m,
        window_packets,
        max_subcarriers,
        fit_reflections,
        window_highpass,
        continuity_m,
        track_speed_mps,
        pair_normalize,
        frame_normalize,
        lobes,
        lobe_radius_m,
        ..Default::default()
    };
    let fixes = py
        .detach(move || {
            let mut loc = Localizer::new(geometry, config)?;
            let mut out = Vec::new();
            let mut map_rows: Vec<f64> = Vec::new();
            let mut lobe_rows: Vec<f64> = Vec::new();
            for (i, frame) in csi.outer_iter().enumerate() {
                let m = moving.as_ref().is_none_or(|m| m[i]);
                if let Some(f) = loc.push(ts[i], &frame.to_owned(), m) {
                    out.push(f);
                    if maps {
                        map_rows.extend_from_slice(loc.last_map());
                    }
                    push_lobes(&mut lobe_rows, loc.last_lobes(), lobes);
                }
            }
            let grid: Vec<f64> = loc.grid().iter().flatten().copied().collect();
            Ok::<_, String>((out, map_rows, grid, lobe_rows))
        })
        .map_err(InvalidArgumentError::new_err)?;
    let (fixes, map_rows, grid, lobe_rows) = fixes;
    let d = fixes_dict(py, &fixes)?;
    if lobes > 0 {
        set_lobes(py, &d, fixes.len(), lobes, lobe_rows)?;
    }
    if maps {
        let n_points = grid.len() / 2;
        let grid = ndarray::Array2::from_shape_vec((n_points, 2), grid)
            .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
        let rows = ndarray::Array2::from_shape_vec((fixes.len(), n_points), map_rows)
            .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
        d.set_item("grid", grid.into_pyarray(py))?;
        d.set_item("maps", rows.into_pyarray(py))?;
    }
    Ok(d)
}

/// One fix's lobes as `lobes` rows of (x, y, share, peak), NaN where none was found.
fn push_lobes(rows: &mut Vec<f64>, found: &[crate::sensing::Lobe], lobes: usize) {
    for k in 0..lobes {
        match found.get(k) {
            Some(l) => rows.extend_from_slice(&[l.x, l.y, l.share, l.peak]),
            None => rows.extend_from_slice(&[f64::NAN; 4]),
        }
    }
}

fn set_lobes(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    n_fix: usize,
    lobes: usize,
    rows: Vec<f64>,
) -> PyResult<()> {
    let a = ndarray::Array3::from_shape_vec((n_fix, lobes, 4), rows)
        .map_err(|e| InvalidArgumentError::new_err(e.to_string()))?;
    d.set_item("lobes", a.into_pyarray(py))
}

fn fixes_dict<'py>(py: Python<'py>, fixes: &[Fix]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let col = |f: fn(&Fix) -> f64| fixes.iter().map(f).collect::<Vec<f64>>();
    d.set_item("t", col(|f| f.t).into_pyarray(py))?;
    d.set_item("x", col(|f| f.x).into_pyarray(py))?;
    d.set_item("y", col(|f| f.y).into_pyarray(py))?;
    d.set_item("sharpness", col(|f| f.sharpness).into_pyarray(py))?;
    Ok(d)
}

/// One link of [`localize_links`]: every key is required (`moving` may be None).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct LinkArg<'py> {
    csi: PyReadonlyArray4<'py, Complex32>,
    timestamps: PyReadonlyArray1<'py, f64>,
    tx: PyReadonlyArray2<'py, f64>,
    rx: PyReadonlyArray2<'py, f64>,
    freqs_hz: PyReadonlyArray1<'py, f64>,
    moving: Option<PyReadonlyArray1<'py, bool>>,
}

/// Places one moving person from several links of one room ([`MultiLocalizer`]): `links`
/// is a list of dicts with `csi` `(n, n_tx, n_rx, n_sub)`, `timestamps` (one clock for
/// all links), `tx`, `rx` `(n, 3)`, `freqs_hz` and `moving` (bool per frame or None).
/// Frames of all links are taken in time order; a fix whenever a link ends a moving
/// window. Returns `t`, `x`, `y`, `sharpness` as [`localize`]; with `lobes` (1-6), also
/// `lobes` `(n_fix, lobes, 4)`: each fused window's lobes by successive cancellation over
/// every recent link at once.
#[pyfunction]
#[pyo3(signature = (links, room, grid_step_m=0.2, window_packets=25, max_subcarriers=10, track_speed_mps=0.0, max_age_s=0.5, lobes=0, lobe_radius_m=0.3))]
#[allow(clippy::too_many_arguments)]
fn localize_links<'py>(
    py: Python<'py>,
    links: Vec<LinkArg<'py>>,
    room: [f64; 3],
    grid_step_m: f64,
    window_packets: usize,
    max_subcarriers: usize,
    track_speed_mps: f64,
    max_age_s: f64,
    lobes: usize,
    lobe_radius_m: f64,
) -> PyResult<Bound<'py, PyDict>> {
    if links.is_empty() || links.len() > crate::sensing::localizer::MAX_LINKS {
        return Err(InvalidArgumentError::new_err(format!(
            "1-{} links are needed",
            crate::sensing::localizer::MAX_LINKS
        )));
    }
    let mut geometries = Vec::new();
    let mut streams = Vec::new();
    for (i, l) in links.iter().enumerate() {
        geometries.push(LinkGeometry {
            room,
            tx: positions(&l.tx, "tx")?,
            rx: positions(&l.rx, "rx")?,
            freqs_hz: l.freqs_hz.as_array().to_vec(),
        });
        let csi = l.csi.as_array().to_owned();
        let ts = l.timestamps.as_array().to_vec();
        let moving = l.moving.as_ref().map(|m| m.as_array().to_vec());
        if csi.shape()[0] != ts.len() || moving.as_ref().is_some_and(|m| m.len() != ts.len()) {
            return Err(InvalidArgumentError::new_err(format!(
                "link {i}: csi, timestamps and moving must have one entry per frame"
            )));
        }
        streams.push((csi, ts, moving));
    }
    let config = LocalizerConfig {
        grid_step_m,
        window_packets,
        max_subcarriers,
        track_speed_mps,
        lobes,
        lobe_radius_m,
        ..Default::default()
    };
    let fixes = py
        .detach(move || {
            let mut loc = MultiLocalizer::new(geometries, config, max_age_s)?;
            // All links' frames in time order (ties: link order).
            let mut order: Vec<(f64, usize, usize)> = streams
                .iter()
                .enumerate()
                .flat_map(|(l, (_, ts, _))| ts.iter().enumerate().map(move |(i, t)| (*t, l, i)))
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut out = Vec::new();
            let mut lobe_rows: Vec<f64> = Vec::new();
            for (t, l, i) in order {
                let (csi, _, moving) = &streams[l];
                let m = moving.as_ref().is_none_or(|m| m[i]);
                let frame = csi.index_axis(ndarray::Axis(0), i).to_owned();
                if let Some(f) = loc.push(l, t, &frame, m) {
                    out.push(f);
                    push_lobes(&mut lobe_rows, loc.last_lobes(), lobes);
                }
            }
            Ok::<_, String>((out, lobe_rows))
        })
        .map_err(InvalidArgumentError::new_err)?;
    let (fixes, lobe_rows) = fixes;
    let d = fixes_dict(py, &fixes)?;
    if lobes > 0 {
        set_lobes(py, &d, fixes.len(), lobes, lobe_rows)?;
    }
    Ok(d)
}

/// Where the link's devices are (`analyze(..., placement=...)`,
/// `Server.add_environment(..., placement=...)`); the Python side fills every key.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(super) struct PlacementArg {
    tx_position: [f64; 3],
    rx_position: [f64; 3],
    tx_axis: [f64; 3],
    rx_axis: [f64; 3],
    room_height: f64,
    antenna_spacing_m: Option<f64>,
}

/// The localizer's geometry for a placement: the device profile gives the antennas'
/// count and spacing and the subcarriers' frequencies.
pub(super) fn geometry(
    placement: Option<PlacementArg>,
    device: Option<&str>,
    room: Option<(f64, f64)>,
) -> PyResult<Option<crate::sensing::LinkGeometry>> {
    let Some(p) = placement else { return Ok(None) };
    let Some(device) = device else {
        return Err(InvalidArgumentError::new_err(
            "placement needs device= (the device profile gives the antennas and subcarriers)",
        ));
    };
    let profile = crate::sim::device::DeviceProfile::named(device)
        .map_err(|e| InvalidArgumentError::new_err(format!("device: {e}")))?;
    let [w, d] = room.map_or(crate::pipeline::DEFAULT_ROOM, |(w, d)| [w, d]);
    let placement = crate::sim::channel::Placement {
        tx_position: p.tx_position,
        rx_position: p.rx_position,
        tx_axis: p.tx_axis,
        rx_axis: p.rx_axis,
    };
    let g = crate::pipeline::geometry::link_geometry(
        &profile,
        &placement,
        [w, d, p.room_height],
        p.antenna_spacing_m,
    );
    g.check()
        .map_err(|e| InvalidArgumentError::new_err(format!("placement: {e}")))?;
    Ok(Some(g))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(localize, m)?)?;
    m.add_function(wrap_pyfunction!(localize_links, m)?)?;
    Ok(())
}
