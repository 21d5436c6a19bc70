//! What the localizer needs to know about a link ([`crate::sensing::LinkGeometry`]), made
//! from a device profile and a placement: the simulator's own link, or a placement a user
//! gives (`analyze(..., placement=...)`).
use crate::sensing::LinkGeometry;
use crate::sim::channel::Placement;
use crate::sim::dataset::Link;
use crate::sim::device::{DeviceProfile, SUBCARRIER_SPACING_HZ};

/// The geometry of a device profile's link at `placement` in a room `room` metres
/// (width, depth, height); `spacing_m` overrides the profile's antenna spacing.
pub fn link_geometry(
    device: &DeviceProfile,
    placement: &Placement,
    room: [f64; 3],
    spacing_m: Option<f64>,
) -> LinkGeometry {
    let freqs = device
        .subcarriers
        .iter()
        .zip(&device.zeroed)
        .map(|(&k, &zero)| {
            if zero {
                0.0
            } else {
                device.carrier_hz + k as f64 * SUBCARRIER_SPACING_HZ
            }
        })
        .collect();
    LinkGeometry::from_arrays(
        room,
        placement.tx_position,
        placement.tx_axis,
        device.n_tx,
        placement.rx_position,
        placement.rx_axis,
        device.n_rx,
        spacing_m.unwrap_or(device.antenna_spacing_m),
        freqs,
    )
}

/// A simulated link's geometry (the simulator knows where it put everything).
pub fn sim_link_geometry(link: &Link, room: [f64; 3]) -> LinkGeometry {
    link_geometry(&link.device, &link.placement, room, None)
}
