//! Scenario descriptions: everything a simulation needs, as one serde structure that
//! reads from JSON (Python passes a dict, or a TOML file parsed with `tomllib`), and
//! the named scenarios built from it.
//!
//! Every field has a default, so `{}` is a valid (empty-room, Intel 5300) scenario:
//!
//! ```json
//! {
//!   "name": "walk", "seed": 0, "duration_s": 10, "fps": 100,
//!   "room": {"size": [6, 5, 3], "wall_reflectivity": 0.5, "floor_reflectivity": 0.3,
//!            "ceiling_reflectivity": 0.3, "objects": [{"position": [3, 4, 0.45], "rcs_m2": 0.5}]},
//!   "device": "intel5300",          // or {"profile": "intel5300", "n_tx": 1, "carrier_hz": 2.437e9, ...}
//!   "placement": {"tx_position": [0.3, 2.25, 1.2], "rx_position": [5.7, 2.75, 1.2],
//!                 "tx_axis": [0, 1, 0], "rx_axis": [0, 1, 0]},
//!   "channel": {"line_of_sight": true, "reflections": true, "body_attenuation_db": 15},
//!   "impairments": {"enabled": true, "cfo": true, "chain_phase": true,
//!                   "timing_offset_std_ns": null, "frequency_ripple_db": 1.5,
//!                   "gain_jitter_db": 0.5, "snr_db": 30,
//!                   "quantize": true, "rx_chain_steps": null, "packet_loss": 0.01,
//!                   "timestamp_jitter_s": 0.0005},
//!   "people": [{"start": [1.5, 1.0], "heading_deg": 0, "height": 1.75, "rcs_m2": 1.0,
//!               "posture": "standing",
//!               "actions": [{"type": "walk", "to": [[4.5, 1.0], [4.5, 4.0]], "speed": 1.2},
//!                           {"type": "stand", "duration_s": 2}, {"type": "fall"},
//!                           {"type": "lie", "duration_s": 3}, {"type": "get_up"}],
//!               "breathing_rate_bpm": null, "breathing_depth_mm": null,   // null: drawn
//!               "sway_mm": null, "fidget_interval_s": null}],
//!   "max_people": 2,
//!   "nodes": [],     // or [{"placement": {...}, "device": "esp32", "impairments": {...},
//!                    //       "clock_offset_s": 0.0, "clock_drift_ppm": 0.0}, ...] instead of placement
//!   "events": [{"type": "door", "at_s": 5, "hinge": [0, 3.5], "from_deg": 90, "to_deg": 0},
//!              {"type": "move_object", "at_s": 8, "object": 0, "to": [2, 4, 0.45]}]
//! }
//! ```
//!
//! Action types: `walk`, `stand`, `sit_down`, `sit`, `stand_up`, `lie_down`, `lie`,
//! `fall`, `get_up` (see [`super::motion::Action`]). A person starting outside the room
//! is absent until they walk in: that is how `enter_leave` works.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::channel::{ChannelOptions, Placement};
use super::device::DeviceProfile;
use super::error::{check_range, SimError};
use super::events::EventSpec;
use super::impairments::ImpairmentSpec;
use super::micro::MicroSpec;
use super::motion::Action;
use super::room::{Room, StaticObject};

/// The named scenarios [`build_spec`] knows.
pub const SCENARIO_NAMES: &[&str] = &[
    "empty",
    "walk",
    "two_people",
    "sit_stand",
    "fall",
    "fall_recover",
    "enter_leave",
    "lie_down",
];

/// A whole simulation: room, device, link placement, channel and impairment options,
/// people and their scripts, background events (the JSON schema in the module notes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Spec {
    /// The scenario's name (a named scenario's, or free text).
    pub name: String,
    /// Seed of every random draw: the same spec and seed give the same bytes.
    pub seed: u64,
    /// Length of the run, seconds (scripts repeat to fill it).
    pub duration_s: f64,
    /// Packets per second.
    pub fps: f64,
    /// The room: size, reflectivities, static objects.
    pub room: RoomSpec,
    /// The receiving tool's profile, by name or with overrides.
    pub device: DeviceSpec,
    /// Where the transmitter and receiver are; None: the default placement for the room.
    pub placement: Option<PlacementSpec>,
    /// Which paths the channel sums, and body blocking.
    pub channel: ChannelSpec,
    /// The card's imperfections (phase offsets, noise, quantisation, loss...).
    pub impairments: ImpairmentSpec,
    /// The people in the room and their scripts.
    pub people: Vec<PersonSpec>,
    /// Person slots in the ground-truth arrays (default: the number of people).
    pub max_people: Option<usize>,
    /// Several links in the room (see [`NodeSpec`]); empty: the one link of `device`,
    /// `placement` and `impairments`.
    pub nodes: Vec<NodeSpec>,
    /// Background changes that are not people (doors, moved furniture).
    pub events: Vec<EventSpec>,
}

/// One link of a multi-node deployment: a transmitter and a receiver (several
/// receivers of one transmitter are several nodes with the same `tx_position`), each
/// with its own device, impairments (packet loss included), random streams and clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node's name in the output; default `node<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the node's transmitter and receiver are.
    pub placement: PlacementSpec,
    /// Default: the scenario's `device`.
    #[serde(default)]
    pub device: Option<DeviceSpec>,
    /// Default: the scenario's `impairments`.
    #[serde(default)]
    pub impairments: Option<ImpairmentSpec>,
    /// The node's clock reads `clock_offset_s + t (1 + clock_drift_ppm 1e-6)` at true
    /// time `t`.
    #[serde(default)]
    pub clock_offset_s: f64,
    /// The node clock's rate error, parts per million (see `clock_offset_s`).
    #[serde(default)]
    pub clock_drift_ppm: f64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            name: String::new(),
            seed: 0,
            duration_s: 10.0,
            fps: 100.0,
            room: RoomSpec::default(),
            device: DeviceSpec::default(),
            placement: None,
            channel: ChannelSpec::default(),
            impairments: ImpairmentSpec::default(),
            people: Vec::new(),
            max_people: None,
            nodes: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The room of a [`Spec`] (see [`Room`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomSpec {
    /// Width (x), depth (y) and height (z), metres.
    pub size: [f64; 3],
    /// Amplitude reflection coefficient of the four walls, 0 to 1.
    pub wall_reflectivity: f64,
    /// Amplitude reflection coefficient of the floor, 0 to 1.
    pub floor_reflectivity: f64,
    /// Amplitude reflection coefficient of the ceiling, 0 to 1.
    pub ceiling_reflectivity: f64,
    /// Static point reflectors (furniture).
    pub objects: Vec<ObjectSpec>,
}

impl Default for RoomSpec {
    fn default() -> Self {
        let r = Room::default();
        RoomSpec {
            size: r.size,
            wall_reflectivity: r.wall_reflectivity,
            floor_reflectivity: r.floor_reflectivity,
            ceiling_reflectivity: r.ceiling_reflectivity,
            objects: Vec::new(),
        }
    }
}

/// A static point reflector of a [`RoomSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// Position in the room frame, metres.
    pub position: [f64; 3],
    /// Radar cross-section, m².
    pub rcs_m2: f64,
}

/// A profile name, or a profile with overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeviceSpec {
    /// One of the profiles of `device::DEVICE_NAMES`, unchanged.
    Name(String),
    /// A profile with some of its fields replaced.
    Custom(DeviceOverrides),
}

impl Default for DeviceSpec {
    fn default() -> Self {
        DeviceSpec::Name("intel5300".into())
    }
}

/// A device profile with fields replaced; absent fields keep the profile's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceOverrides {
    /// The profile to start from (a name of `device::DEVICE_NAMES`).
    pub profile: String,
    /// Transmit antennas.
    #[serde(default)]
    pub n_tx: Option<usize>,
    /// Receive antennas.
    #[serde(default)]
    pub n_rx: Option<usize>,
    /// Carrier frequency, Hz; the antenna spacing follows (half a wavelength) unless
    /// `antenna_spacing_m` is given too.
    #[serde(default)]
    pub carrier_hz: Option<f64>,
    /// Channel number reported in the frames.
    #[serde(default)]
    pub channel: Option<u16>,
    /// Distance between neighbouring antennas of an array, metres.
    #[serde(default)]
    pub antenna_spacing_m: Option<f64>,
    /// Bits per I and per Q value when quantising.
    #[serde(default)]
    pub iq_bits: Option<u32>,
}

/// Where a link's arrays are (see [`Placement`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// Centre of the transmit array in the room frame, metres.
    pub tx_position: [f64; 3],
    /// Centre of the receive array in the room frame, metres.
    pub rx_position: [f64; 3],
    /// Direction the transmit array runs along (default +y).
    #[serde(default = "axis_y")]
    pub tx_axis: [f64; 3],
    /// Direction the receive array runs along (default +y).
    #[serde(default = "axis_y")]
    pub rx_axis: [f64; 3],
}

impl PlacementSpec {
    pub(crate) fn to_placement(&self) -> Placement {
        Placement {
            tx_position: self.tx_position,
            rx_position: self.rx_position,
            tx_axis: self.tx_axis,
            rx_axis: self.rx_axis,
        }
    }
}

fn axis_y() -> [f64; 3] {
    [0.0, 1.0, 0.0]
}

/// Which paths the channel sums (see [`ChannelOptions`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSpec {
    /// Include the direct transmitter-receiver path.
    pub line_of_sight: bool,
    /// Include the reflections: walls, floor, ceiling (first order) and static objects.
    pub reflections: bool,
    /// Attenuation of a path that passes through a body, dB.
    pub body_attenuation_db: f64,
}

impl Default for ChannelSpec {
    fn default() -> Self {
        let c = ChannelOptions::default();
        ChannelSpec {
            line_of_sight: c.line_of_sight,
            reflections: c.reflections,
            body_attenuation_db: c.body_attenuation_db,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// How a person is at the start of the run, before their first action.
pub enum InitialPosture {
    /// Standing upright.
    Standing,
    /// Sitting.
    Sitting,
    /// Lying on the floor.
    Lying,
}

/// One person: where they start, their body, their script and small motions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonSpec {
    /// Floor position at the start (x, y), metres; outside the room: absent until
    /// they walk in.
    pub start: [f64; 2],
    /// Facing direction at the start, degrees from +x towards +y.
    pub heading_deg: f64,
    /// Body height, metres (0.5 to 2.5); segment lengths scale with it.
    pub height: f64,
    /// Radar cross-section of the whole body, m², shared by its scattering points.
    pub rcs_m2: f64,
    /// How they are at the start.
    pub posture: InitialPosture,
    /// The script, in order; it repeats to fill the run.
    pub actions: Vec<Action>,
    /// Breaths per minute; absent: drawn from the seed, uniform 6-30.
    pub breathing_rate_bpm: Option<f64>,
    /// Chest displacement peak to peak, mm; absent: drawn, uniform 4-12; 0: none.
    pub breathing_depth_mm: Option<f64>,
    /// RMS head sway per horizontal axis while standing still, mm; absent: drawn,
    /// uniform 5-15; 0: none.
    pub sway_mm: Option<f64>,
    /// Mean seconds between fidgets while sitting or lying; absent: drawn, uniform
    /// 15-40; 0: none.
    pub fidget_interval_s: Option<f64>,
}

impl PersonSpec {
    /// The small-motion parameters (breathing, sway, fidgets) the person gives.
    pub(crate) fn micro(&self) -> MicroSpec {
        MicroSpec {
            breathing_rate_bpm: self.breathing_rate_bpm,
            breathing_depth_mm: self.breathing_depth_mm,
            sway_mm: self.sway_mm,
            fidget_interval_s: self.fidget_interval_s,
        }
    }
}

impl Default for PersonSpec {
    fn default() -> Self {
        PersonSpec {
            start: [1.0, 1.0],
            heading_deg: 0.0,
            height: 1.75,
            rcs_m2: 1.0,
            posture: InitialPosture::Standing,
            actions: Vec::new(),
            breathing_rate_bpm: None,
            breathing_depth_mm: None,
            sway_mm: None,
            fidget_interval_s: None,
        }
    }
}

impl Spec {
    /// Parses a scenario from JSON; unknown fields are an error.
    pub fn from_json(s: &str) -> Result<Spec, SimError> {
        serde_json::from_str(s).map_err(|e| SimError::Parse(e.to_string()))
    }

    /// Parses a scenario from a JSON value; unknown fields are an error.
    pub fn from_value(v: Value) -> Result<Spec, SimError> {
        serde_json::from_value(v).map_err(|e| SimError::Parse(e.to_string()))
    }

    /// The scenario as JSON, every field written (what `sim.describe` shows).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Packets the run sends: `duration_s × fps`, at least 1.
    pub fn n_frames(&self) -> usize {
        (self.duration_s * self.fps).round().max(1.0) as usize
    }

    /// The room the spec describes.
    pub fn room(&self) -> Room {
        Room {
            size: self.room.size,
            wall_reflectivity: self.room.wall_reflectivity,
            floor_reflectivity: self.room.floor_reflectivity,
            ceiling_reflectivity: self.room.ceiling_reflectivity,
            objects: self
                .room
                .objects
                .iter()
                .map(|o| StaticObject {
                    position: o.position,
                    rcs_m2: o.rcs_m2,
                })
                .collect(),
        }
    }

    /// The scenario's device profile, overrides applied and checked.
    pub fn device(&self) -> Result<DeviceProfile, SimError> {
        Self::device_of(&self.device)
    }

    /// The device a profile name or override describes.
    pub fn device_of(device: &DeviceSpec) -> Result<DeviceProfile, SimError> {
        match device {
            DeviceSpec::Name(n) => DeviceProfile::named(n),
            DeviceSpec::Custom(o) => {
                let mut d = DeviceProfile::named(&o.profile)?;
                if let Some(v) = o.n_tx {
                    d.n_tx = v;
                }
                if let Some(v) = o.n_rx {
                    d.n_rx = v;
                }
                if let Some(v) = o.carrier_hz {
                    d.carrier_hz = v;
                    if o.antenna_spacing_m.is_none() {
                        d.antenna_spacing_m = 0.5 * super::device::C / v;
                    }
                }
                if let Some(v) = o.channel {
                    d.channel = v;
                }
                if let Some(v) = o.antenna_spacing_m {
                    d.antenna_spacing_m = v;
                }
                if let Some(v) = o.iq_bits {
                    d.iq_bits = v;
                }
                d.validate()?;
                Ok(d)
            }
        }
    }

    /// The single link's placement: the spec's, or the default one for `room`.
    pub fn placement(&self, room: &Room) -> Placement {
        match &self.placement {
            None => Placement::default_for(room),
            Some(p) => p.to_placement(),
        }
    }

    /// Every link: `(name, device, placement, impairments, clock offset s, drift ppm)`.
    #[allow(clippy::type_complexity)] // one tuple per link, consumed right away
    pub fn links(
        &self,
        room: &Room,
    ) -> Result<Vec<(String, DeviceProfile, Placement, ImpairmentSpec, f64, f64)>, SimError> {
        if self.nodes.is_empty() {
            return Ok(vec![(
                "node0".into(),
                self.device()?,
                self.placement(room),
                self.impairments.clone(),
                0.0,
                0.0,
            )]);
        }
        self.nodes
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let dev = Self::device_of(n.device.as_ref().unwrap_or(&self.device))
                    .map_err(|e| SimError::invalid(format!("nodes[{j}].device"), e.to_string()))?;
                let imp = n
                    .impairments
                    .clone()
                    .unwrap_or_else(|| self.impairments.clone());
                Ok((
                    n.name.clone().unwrap_or_else(|| format!("node{j}")),
                    dev,
                    n.placement.to_placement(),
                    imp,
                    n.clock_offset_s,
                    n.clock_drift_ppm,
                ))
            })
            .collect()
    }

    /// The channel options the spec describes.
    pub fn channel_options(&self) -> ChannelOptions {
        ChannelOptions {
            line_of_sight: self.channel.line_of_sight,
            reflections: self.channel.reflections,
            body_attenuation_db: self.channel.body_attenuation_db,
        }
    }

    /// Person slots in the truth arrays: `max_people`, never fewer than the people.
    pub fn max_people(&self) -> usize {
        self.max_people
            .unwrap_or(self.people.len())
            .max(self.people.len())
    }

    /// Checks the top-level numbers; rooms, devices and scripts are checked where they
    /// are built.
    pub fn validate(&self) -> Result<(), SimError> {
        check_range("duration_s", self.duration_s, 1e-3, 1e6)?;
        check_range("fps", self.fps, 1e-3, 1e6)?;
        if self.duration_s * self.fps > 5e7 {
            return Err(SimError::invalid(
                "duration_s",
                format!(
                    "{} s at {} fps is more than 50 million packets",
                    self.duration_s, self.fps
                ),
            ));
        }
        if self.nodes.len() > 16 {
            return Err(SimError::invalid("nodes", "at most 16"));
        }
        if !self.nodes.is_empty() && self.placement.is_some() {
            return Err(SimError::invalid(
                "placement",
                "with `nodes`, give each node its own placement instead",
            ));
        }
        for (j, n) in self.nodes.iter().enumerate() {
            check_range(
                &format!("nodes[{j}].clock_offset_s"),
                n.clock_offset_s,
                -1e6,
                1e6,
            )?;
            check_range(
                &format!("nodes[{j}].clock_drift_ppm"),
                n.clock_drift_ppm,
                -1e4,
                1e4,
            )?;
        }
        if self.events.len() > 1000 {
            return Err(SimError::invalid("events", "at most 1000"));
        }
        if self.max_people() > 64 {
            return Err(SimError::invalid("max_people", "at most 64"));
        }
        for (i, p) in self.people.iter().enumerate() {
            check_range(&format!("people[{i}].height"), p.height, 0.5, 2.5)?;
            check_range(&format!("people[{i}].rcs_m2"), p.rcs_m2, 0.0, 10.0)?;
            p.micro().validate(&format!("people[{i}]"))?;
        }
        Ok(())
    }
}

fn walk(to: &[[f64; 2]], speed: f64) -> Value {
    json!({"type": "walk", "to": to, "speed": speed})
}

/// Repeats `lap` (actions, seconds) until `duration` is covered.
fn repeat(lap: Vec<Value>, lap_s: f64, duration: f64) -> Vec<Value> {
    let n = ((duration / lap_s).ceil() as usize).clamp(1, 100_000);
    (0..n).flat_map(|_| lap.clone()).collect()
}

/// The description of a named scenario lasting `duration_s` (scripts repeat to fill
/// it), in the default 6 x 5 x 3 m room with the default placement (transmitter at
/// (0.3, 2.25, 1.2), receiver at (5.7, 2.75, 1.2)).
pub fn named(name: &str, duration_s: f64) -> Result<Value, SimError> {
    let d = check_range("duration_s", duration_s, 1e-3, 1e6)?;
    let loop_a = [[4.5, 1.0], [4.5, 4.0], [1.5, 4.0], [1.5, 1.0]];
    let people = match name {
        "empty" => json!([]),
        "walk" => json!([{
            "start": [1.5, 1.0],
            "actions": repeat(vec![walk(&loop_a, 1.2)], 12.0 / 1.2, d),
        }]),
        "two_people" => json!([
            {"start": [1.5, 1.0], "actions": repeat(vec![walk(&loop_a, 1.2)], 10.0, d)},
            {"start": [1.0, 4.2], "height": 1.62, "rcs_m2": 0.8,
             "actions": repeat(vec![walk(&[[5.0, 0.8], [1.0, 4.2]], 1.0)], 10.5, d)},
        ]),
        "sit_stand" => {
            let mut acts = vec![walk(&[[3.0, 3.6]], 1.0)];
            acts.extend(repeat(
                vec![
                    json!({"type": "sit_down"}),
                    json!({"type": "sit", "duration_s": 4.0}),
                    json!({"type": "stand_up"}),
                    json!({"type": "stand", "duration_s": 2.0}),
                ],
                9.0,
                d,
            ));
            json!([{"start": [1.5, 1.0], "actions": acts}])
        }
        "fall" => json!([{
            "start": [1.0, 1.0],
            "actions": [walk(&[[3.0, 2.5]], 1.2), {"type": "stand", "duration_s": 1.0},
                        {"type": "fall"}, {"type": "lie", "duration_s": d}],
        }]),
        "fall_recover" => json!([{
            "start": [1.0, 1.0],
            "actions": [walk(&[[3.0, 2.5]], 1.2), {"type": "stand", "duration_s": 1.0},
                        {"type": "fall"}, {"type": "lie", "duration_s": 4.0},
                        {"type": "get_up"}, {"type": "stand", "duration_s": 1.0},
                        walk(&[[1.0, 1.0], [4.0, 1.0]], 1.0)],
        }]),
        "enter_leave" => {
            let door_out = [6.8, 4.0];
            let lap = vec![
                json!({"type": "stand", "duration_s": 2.0}),
                walk(&[[4.5, 4.0], [3.0, 2.0], [1.5, 2.5]], 1.2),
                json!({"type": "stand", "duration_s": 2.0}),
                walk(&[[3.0, 4.0], [4.5, 4.0], door_out], 1.2),
            ];
            json!([{"start": door_out, "heading_deg": 180.0, "actions": repeat(lap, 15.0, d)}])
        }
        "lie_down" => json!([{
            "start": [1.0, 1.0],
            "actions": [walk(&[[2.5, 3.5]], 1.0), {"type": "lie_down"},
                        {"type": "lie", "duration_s": 5.0}, {"type": "get_up"},
                        {"type": "stand", "duration_s": d}],
        }]),
        other => {
            return Err(SimError::UnknownScenario {
                name: other.to_string(),
                expected: SCENARIO_NAMES.join(", "),
            })
        }
    };
    let mut v = json!({"name": name, "duration_s": d, "people": people});
    if name == "sit_stand" {
        v["room"] = json!({"objects": [{"position": [3.0, 3.9, 0.45], "rcs_m2": 0.5}]});
    }
    Ok(v)
}

/// A named scenario or a JSON description, with the common overrides applied.
pub fn build_spec(
    scenario: &str,
    seed: Option<u64>,
    duration_s: Option<f64>,
    device: Option<&str>,
    fps: Option<f64>,
) -> Result<Spec, SimError> {
    let trimmed = scenario.trim_start();
    let mut v = if trimmed.starts_with('{') {
        serde_json::from_str::<Value>(scenario).map_err(|e| SimError::Parse(e.to_string()))?
    } else {
        named(scenario, duration_s.unwrap_or(10.0))?
    };
    if !v.is_object() {
        return Err(SimError::Parse(
            "a scenario description must be an object".into(),
        ));
    }
    if let Some(s) = seed {
        v["seed"] = json!(s);
    }
    if let Some(d) = duration_s {
        check_range("duration_s", d, 1e-3, 1e6)?;
        v["duration_s"] = json!(d);
    }
    if let Some(d) = device {
        v["device"] = json!(d);
    }
    if let Some(f) = fps {
        check_range("fps", f, 1e-3, 1e6)?;
        v["fps"] = json!(f);
    }
    let spec = Spec::from_value(v)?;
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_scenario_parses() {
        for name in SCENARIO_NAMES {
            let s = build_spec(name, Some(3), Some(20.0), Some("atheros"), Some(50.0)).unwrap();
            assert_eq!(s.name, *name);
            assert_eq!(s.seed, 3);
            assert_eq!(s.n_frames(), 1000);
            assert_eq!(s.device().unwrap().n_sub(), 56);
        }
    }

    #[test]
    fn bad_descriptions_are_errors_not_panics() {
        let e = build_spec("jog", None, None, None, None).unwrap_err();
        assert!(e.to_string().contains("jog"));
        let e = build_spec("walk", None, Some(0.0), None, None).unwrap_err();
        assert!(e.to_string().contains("duration_s"));
        let e = build_spec(r#"{"fps": -3}"#, None, None, None, None).unwrap_err();
        assert!(e.to_string().contains("fps"));
        let e = build_spec(r#"{"roooom": 1}"#, None, None, None, None).unwrap_err();
        assert!(e.to_string().contains("roooom"), "{e}");
        let e = build_spec(
            r#"{"people": [{"actions": [{"type": "jump"}]}]}"#,
            None,
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("jump"), "{e}");
        let e = build_spec("[1, 2]", None, None, None, None).unwrap_err();
        assert!(matches!(
            e,
            SimError::UnknownScenario { .. } | SimError::Parse(_)
        ));
        let s = build_spec("{}", None, None, Some("nope"), None).unwrap();
        assert!(s.device().unwrap_err().to_string().contains("nope"));
    }
}
