//! The simulator as a source: a [`Simulator`] built from a [`Spec`] yields
//! `(CsiFrame, FrameTruth)` pairs like any other CSI source ([`Simulator::frames`]),
//! and [`Simulator::generate`] produces a whole dataset as arrays, in parallel.
//!
//! Determinism: packet `n` draws its randomness (loss, timestamp jitter, impairments)
//! from its own generator, `StdRng::seed_from_u64(splitmix(seed, n))`, and the session's
//! fixed draws (chain phases) from `splitmix(seed, u64::MAX)`. So the same seed gives the
//! same bytes whatever the thread count, and any frame can be generated alone. `StdRng`
//! is rand 0.8's ChaCha12; another rand version may change the stream (documented in
//! `docs/simulator.md`).

use ndarray::{Array1, Array2, Array3, Array4};
use num_complex::Complex32;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::channel::{Body, Channel, Placement, Workspace};
use super::device::DeviceProfile;
use super::error::SimError;
use super::events::Events;
use super::impairments::Impairments;
use super::micro::Micro;
use super::motion::{Activity, FallEvent, Track};
use super::room::Room;
use super::scenario::{InitialPosture, Spec};
use super::skeleton::{BodyShape, Posture, N_KEYPOINTS};
use super::truth::{self, FrameTruth, PersonTruth};
use crate::csi::{CsiFormat, CsiFrame};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn stream_seed(seed: u64, n: u64) -> u64 {
    splitmix(splitmix(seed) ^ n.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Transmit power assumed for `rssi`, dBm.
const TX_POWER_DBM: f64 = 20.0;

/// One transmitter-receiver link and its own hardware: device, path sum,
/// impairments, random streams and clock.
pub struct Link {
    /// The node's name (`node<index>` unless the scenario names it).
    pub name: String,
    /// The receiving tool's profile.
    pub device: DeviceProfile,
    /// Where the link's arrays are.
    pub placement: Placement,
    /// The link's path sum, static paths precomputed.
    pub channel: Channel,
    /// The link's impairments with their session draws.
    pub impairments: Impairments,
    /// The node's clock: `offset + t (1 + drift)` at true time `t`.
    pub clock_offset_s: f64,
    /// The clock's rate error as a fraction (`clock_drift_ppm × 1e-6`).
    pub clock_drift: f64,
    /// Seed of this link's per-packet streams (the scenario's for the first link).
    seed: u64,
}

/// A built simulation.
pub struct Simulator {
    /// The scenario it was built from.
    pub spec: Spec,
    /// The room it describes.
    pub room: Room,
    /// The first link's device (the only one unless the scenario lists `nodes`).
    pub device: DeviceProfile,
    links: Vec<Link>,
    tracks: Vec<Track>,
    shapes: Vec<BodyShape>,
    micros: Vec<Micro>,
    events: Events,
    n_frames: usize,
}

/// One generated packet without its array (see [`Simulator::frame_into`]).
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// The receiving node's clock, seconds (the true time unless the node has a clock
    /// offset or drift).
    pub timestamp: f64,
    /// Received signal strength, dBm (20 dBm transmit power assumed).
    pub rssi: f32,
    /// Noise floor, dBm on the same scale; None when the impairments add no noise.
    pub noise: Option<f32>,
    /// What was in the room at the packet's true time.
    pub truth: FrameTruth,
}

impl Simulator {
    /// Builds the scenario: checks every field (errors name it), lays out each
    /// person's script and draws the session's random values.
    pub fn new(spec: Spec) -> Result<Self, SimError> {
        spec.validate()?;
        let room = spec.room();
        room.validate()?;
        let events = Events::new(&spec.events, &room)?;
        // Objects that events move are moving scatterers, not static paths.
        let mut static_room = room.clone();
        for &o in events.moved_objects.iter().rev() {
            static_room.objects.remove(o);
        }
        let mut links = Vec::new();
        for (j, (name, device, placement, imp, offset, drift_ppm)) in
            spec.links(&room)?.into_iter().enumerate()
        {
            let field = |e: SimError| {
                if spec.nodes.is_empty() {
                    e
                } else {
                    SimError::invalid(format!("nodes[{j}]"), e.to_string())
                }
            };
            let channel = Channel::new(&static_room, &device, &placement, &spec.channel_options())
                .map_err(field)?;
            // The first link draws from the scenario's streams (so a one-node list gives
            // the single-link run); every other link from its own.
            let seed = if j == 0 {
                spec.seed
            } else {
                splitmix(spec.seed ^ (j as u64).wrapping_mul(0xA076_1D64_78BD_642F))
            };
            let mut setup = StdRng::seed_from_u64(stream_seed(seed, u64::MAX));
            let impairments = Impairments::new(
                &imp,
                &device.subcarriers,
                &device.zeroed,
                device.n_tx,
                device.n_rx,
                device.iq_bits,
                device.timing_offset_std_ns,
                device.rx_chain_steps,
                channel.empty_room_power(),
                &mut setup,
            )
            .map_err(field)?;
            links.push(Link {
                name,
                device,
                placement,
                channel,
                impairments,
                clock_offset_s: offset,
                clock_drift: drift_ppm * 1e-6,
                seed,
            });
        }
        let device = links[0].device.clone();
        let mut tracks = Vec::new();
        let mut shapes = Vec::new();
        for (i, p) in spec.people.iter().enumerate() {
            let initial = match p.posture {
                InitialPosture::Standing => (Posture::STANDING, Activity::Standing),
                InitialPosture::Sitting => (Posture::SITTING, Activity::Sitting),
                InitialPosture::Lying => (Posture::LYING, Activity::Lying),
            };
            tracks.push(Track::new(
                &format!("people[{i}]"),
                p.start,
                p.heading_deg.to_radians(),
                initial,
                &p.actions,
            )?);
            shapes.push(BodyShape {
                height: p.height,
                rcs_m2: p.rcs_m2,
            });
        }
        let n_frames = spec.n_frames();
        // Each person's small motions from their own stream (after the packets' and
        // the session's), over the run plus the largest timestamp jitter.
        let run_s = n_frames as f64 / spec.fps + 1.0;
        let micros = spec
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut r = StdRng::seed_from_u64(stream_seed(spec.seed, u64::MAX - 1 - i as u64));
                Micro::draw(&p.micro(), run_s, &mut r)
            })
            .collect();
        Ok(Simulator {
            spec,
            room,
            device,
            links,
            tracks,
            shapes,
            micros,
            events,
            n_frames,
        })
    }

    /// Builds the scenario a JSON description gives ([`Spec::from_json`]).
    pub fn from_json(json: &str) -> Result<Self, SimError> {
        Simulator::new(Spec::from_json(json)?)
    }

    /// Packets sent (before loss).
    pub fn n_frames(&self) -> usize {
        self.n_frames
    }

    /// Person slots in the truth arrays ([`Spec::max_people`]).
    pub fn max_people(&self) -> usize {
        self.spec.max_people()
    }

    /// The first link's path sum.
    pub fn channel(&self) -> &Channel {
        &self.links[0].channel
    }

    /// The first link's impairments.
    pub fn impairments(&self) -> &Impairments {
        &self.links[0].impairments
    }

    /// Every link (one unless the scenario lists `nodes`).
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Whether the scenario lists `nodes` (the multi-node output shape).
    pub fn is_multi_node(&self) -> bool {
        !self.spec.nodes.is_empty()
    }

    /// `(n_tx, n_rx, n_sub)` of the first link.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.link_shape(0)
    }

    /// `(n_tx, n_rx, n_sub)` of link `j`.
    pub fn link_shape(&self, j: usize) -> (usize, usize, usize) {
        let d = &self.links[j].device;
        (d.n_tx, d.n_rx, d.n_sub())
    }

    /// Falls in the scripts: `(person, event)`.
    pub fn falls(&self) -> Vec<(usize, FallEvent)> {
        self.tracks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.falls.iter().map(move |f| (i, *f)))
            .collect()
    }

    /// The scheduled background changes (doors, moved objects).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Each person's small motions (breathing rate and depth, sway, fidgets).
    pub fn micros(&self) -> &[Micro] {
        &self.micros
    }

    /// The people at time `t`: truth and bodies (present people only).
    pub fn people_at(&self, t: f64) -> (Vec<PersonTruth>, Vec<Body>) {
        let mut truth = Vec::with_capacity(self.tracks.len());
        let mut bodies = Vec::with_capacity(self.tracks.len());
        for ((track, shape), micro) in self.tracks.iter().zip(&self.shapes).zip(&self.micros) {
            let s = track.state(t);
            let posture = micro.posture(&s, t);
            let mut pose = shape.pose(&posture, s.xy, s.heading);
            micro.apply_sway(&mut pose, &s, t, shape.height);
            let mid_hip = [
                0.5 * (pose.keypoints[11][0] + pose.keypoints[12][0]),
                0.5 * (pose.keypoints[11][1] + pose.keypoints[12][1]),
                0.5,
            ];
            let present = self.room.contains(mid_hip);
            if present {
                bodies.push(shape.body_breathing(&pose, micro.chest_offsets(&pose, t)));
            }
            truth.push(PersonTruth {
                present,
                activity: s.activity,
                pose,
            });
        }
        self.events.bodies(t, &mut bodies);
        (truth, bodies)
    }

    /// Generates packet `n` into `csi` (`n_tx * n_rx * n_sub`, row-major); `None` when
    /// the packet is lost.
    pub fn frame_into(
        &self,
        n: usize,
        ws: &mut Workspace,
        csi: &mut [Complex32],
    ) -> Option<FrameInfo> {
        self.link_frame_into(0, n, ws, csi)
    }

    /// Packet `n` of link `j` (see [`Self::frame_into`]); its `timestamp` is the node's
    /// clock, `truth.time` the true sampling time.
    pub fn link_frame_into(
        &self,
        j: usize,
        n: usize,
        ws: &mut Workspace,
        csi: &mut [Complex32],
    ) -> Option<FrameInfo> {
        let link = &self.links[j];
        let mut rng = StdRng::seed_from_u64(stream_seed(link.seed, n as u64));
        let lost = link.impairments.lost(&mut rng);
        if lost {
            return None;
        }
        let dt = 1.0 / self.spec.fps;
        let t = link.impairments.timestamp(n as f64 * dt, dt, &mut rng);
        let (people, bodies) = self.people_at(t);
        link.channel.compute(&bodies, ws, csi);
        let dev = &link.device;
        let n_el = dev.zeroed.iter().filter(|z| !**z).count() * dev.n_tx * dev.n_rx;
        let p: f64 = csi.iter().map(|c| c.norm_sqr() as f64).sum::<f64>() / n_el.max(1) as f64;
        let draw = link.impairments.apply(csi, &mut rng);
        let rssi = (TX_POWER_DBM + 10.0 * (p * draw.gain * draw.gain).max(1e-30).log10()) as f32;
        let noise = (link.impairments.noise_sigma > 0.0)
            .then(|| (TX_POWER_DBM + 20.0 * link.impairments.noise_sigma.log10()) as f32);
        let clock = if link.clock_offset_s == 0.0 && link.clock_drift == 0.0 {
            t
        } else {
            ((link.clock_offset_s + t * (1.0 + link.clock_drift)) * 1e6).round() / 1e6
        };
        Some(FrameInfo {
            timestamp: clock,
            rssi,
            noise,
            truth: FrameTruth {
                time: t,
                sequence: n as u64,
                people,
            },
        })
    }

    /// Packet `n` as a [`CsiFrame`] with its truth; `None` when lost.
    pub fn frame(&self, n: usize, ws: &mut Workspace) -> Option<(CsiFrame, FrameTruth)> {
        let (nt, nr, ns) = self.shape();
        let mut buf = vec![Complex32::new(0.0, 0.0); nt * nr * ns];
        let info = self.frame_into(n, ws, &mut buf)?;
        let csi = Array3::from_shape_vec((nt, nr, ns), buf).ok()?;
        let mut f = CsiFrame::from_csi(info.timestamp, csi, CsiFormat::Simulated);
        f.rssi = Some(info.rssi);
        f.noise = info.noise;
        f.channel = Some(self.device.channel);
        f.bandwidth_mhz = Some(self.device.bandwidth_mhz);
        f.sequence = Some(n as u64);
        Some((f, info.truth))
    }

    /// The received packets in order, as a source.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            sim: self,
            next: 0,
            ws: Workspace::default(),
        }
    }

    /// The whole run as arrays, using up to `threads` threads (0: all cores).
    pub fn generate(&self, opts: &BatchOptions) -> Dataset {
        self.generate_from(Source::Link(0), opts)
    }

    /// Link `j`'s received packets as arrays, truth at each packet's true time.
    pub fn generate_link(&self, j: usize, opts: &BatchOptions) -> Dataset {
        self.generate_from(Source::Link(j.min(self.links.len() - 1)), opts)
    }

    /// The truth alone on the packet grid: every packet sent, at its nominal time
    /// `n / fps` (no loss, no jitter); `csi` is empty `(n, 0, 0, 0)`, `rssi` zero.
    pub fn generate_truth(&self, opts: &BatchOptions) -> Dataset {
        self.generate_from(Source::Grid, opts)
    }

    fn generate_from(&self, source: Source, opts: &BatchOptions) -> Dataset {
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        }
        .clamp(1, 256);
        let n = self.n_frames;
        let chunk = n.div_ceil(threads).max(1);
        let parts: Vec<Chunk> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    let end = (start + chunk).min(n);
                    s.spawn(move || self.chunk(source, start, end, opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        self.assemble(source, parts, opts)
    }

    fn chunk(&self, source: Source, start: usize, end: usize, opts: &BatchOptions) -> Chunk {
        let (nt, nr, ns) = match source {
            Source::Link(j) => self.link_shape(j),
            Source::Grid => (0, 0, 0),
        };
        let per = nt * nr * ns;
        let mp = self.max_people();
        let g = opts.dense_pose_grid;
        let mut c = Chunk::default();
        let mut ws = Workspace::default();
        let mut buf = vec![Complex32::new(0.0, 0.0); per];
        for n in start..end {
            let info = match source {
                Source::Link(j) => self.link_frame_into(j, n, &mut ws, &mut buf),
                Source::Grid => {
                    let t = n as f64 / self.spec.fps;
                    Some(FrameInfo {
                        timestamp: t,
                        rssi: 0.0,
                        noise: None,
                        truth: FrameTruth {
                            time: t,
                            sequence: n as u64,
                            people: self.people_at(t).0,
                        },
                    })
                }
            };
            let Some(info) = info else {
                continue;
            };
            c.true_time.push(info.truth.time);
            c.csi.extend_from_slice(&buf);
            c.timestamps.push(info.timestamp);
            c.sequence.push(n as u64);
            c.rssi.push(info.rssi);
            let mut occ = 0u8;
            for slot in 0..mp {
                let p = info.truth.people.get(slot).filter(|p| p.present);
                match p {
                    Some(p) => {
                        occ += 1;
                        for k in 0..N_KEYPOINTS {
                            let q = p.pose.keypoints[k];
                            c.kp3.extend(q.iter().map(|v| *v as f32));
                            let uv = truth::project(&self.room, q);
                            c.kp2.extend(uv.iter().map(|v| *v as f32));
                        }
                        let b = truth::bounding_box(&self.room, &p.pose);
                        c.boxes.extend(b.iter().map(|v| *v as f32));
                        c.present.push(true);
                        c.activity.push(p.activity as i8);
                    }
                    None => {
                        c.kp3.extend(std::iter::repeat_n(0f32, N_KEYPOINTS * 3));
                        c.kp2.extend(std::iter::repeat_n(0f32, N_KEYPOINTS * 2));
                        c.boxes.extend([0f32; 4]);
                        c.present.push(false);
                        c.activity.push(-1);
                    }
                }
            }
            c.occupancy.push(occ);
            c.background.push(self.events.moving(info.truth.time));
            if g > 0 {
                let o = c.dp_part.len();
                c.dp_part.resize(o + g * g, 0);
                c.dp_person.resize(o + g * g, -1);
                c.dp_u.resize(o + g * g, 0.0);
                c.dp_v.resize(o + g * g, 0.0);
                truth::dense_pose(
                    &self.room,
                    &info.truth.people,
                    g,
                    &mut c.dp_part[o..],
                    &mut c.dp_person[o..],
                    &mut c.dp_u[o..],
                    &mut c.dp_v[o..],
                );
            }
        }
        c
    }

    fn assemble(&self, source: Source, parts: Vec<Chunk>, opts: &BatchOptions) -> Dataset {
        let mut all = Chunk::default();
        for p in parts {
            all.csi.extend(p.csi);
            all.timestamps.extend(p.timestamps);
            all.true_time.extend(p.true_time);
            all.sequence.extend(p.sequence);
            all.rssi.extend(p.rssi);
            all.kp3.extend(p.kp3);
            all.kp2.extend(p.kp2);
            all.boxes.extend(p.boxes);
            all.present.extend(p.present);
            all.activity.extend(p.activity);
            all.occupancy.extend(p.occupancy);
            all.background.extend(p.background);
            all.dp_part.extend(p.dp_part);
            all.dp_person.extend(p.dp_person);
            all.dp_u.extend(p.dp_u);
            all.dp_v.extend(p.dp_v);
        }
        let n = all.timestamps.len();
        let (nt, nr, ns) = match source {
            Source::Link(j) => self.link_shape(j),
            Source::Grid => (0, 0, 0),
        };
        let mp = self.max_people();
        let g = opts.dense_pose_grid;
        // Shapes match the lengths by construction; fall back to empty arrays rather
        // than panic should that ever break.
        let dense = (g > 0).then(|| DensePose {
            part: Array3::from_shape_vec((n, g, g), all.dp_part)
                .unwrap_or_else(|_| Array3::zeros((0, g, g))),
            person: Array3::from_shape_vec((n, g, g), all.dp_person)
                .unwrap_or_else(|_| Array3::zeros((0, g, g))),
            u: Array3::from_shape_vec((n, g, g), all.dp_u)
                .unwrap_or_else(|_| Array3::zeros((0, g, g))),
            v: Array3::from_shape_vec((n, g, g), all.dp_v)
                .unwrap_or_else(|_| Array3::zeros((0, g, g))),
        });
        let falls = self.falls();
        let mut fa = Array2::from_elem((falls.len(), 4), f64::NAN);
        for (r, (p, f)) in falls.iter().enumerate() {
            fa[[r, 0]] = *p as f64;
            fa[[r, 1]] = f.start;
            fa[[r, 2]] = f.impact;
            fa[[r, 3]] = f.recovered.unwrap_or(f64::NAN);
        }
        Dataset {
            csi: Array4::from_shape_vec((n, nt, nr, ns), all.csi)
                .unwrap_or_else(|_| Array4::zeros((0, nt, nr, ns))),
            timestamps: Array1::from(all.timestamps),
            true_time: Array1::from(all.true_time),
            sequence: Array1::from(all.sequence),
            rssi: Array1::from(all.rssi),
            keypoints_3d: Array4::from_shape_vec((n, mp, N_KEYPOINTS, 3), all.kp3)
                .unwrap_or_else(|_| Array4::zeros((0, mp, N_KEYPOINTS, 3))),
            keypoints_2d: Array4::from_shape_vec((n, mp, N_KEYPOINTS, 2), all.kp2)
                .unwrap_or_else(|_| Array4::zeros((0, mp, N_KEYPOINTS, 2))),
            boxes: Array3::from_shape_vec((n, mp, 4), all.boxes)
                .unwrap_or_else(|_| Array3::zeros((0, mp, 4))),
            present: Array2::from_shape_vec((n, mp), all.present)
                .unwrap_or_else(|_| Array2::from_elem((0, mp), false)),
            activity: Array2::from_shape_vec((n, mp), all.activity)
                .unwrap_or_else(|_| Array2::zeros((0, mp))),
            occupancy: Array1::from(all.occupancy),
            background_moving: Array1::from(all.background),
            events: {
                let sp = self.events.spans();
                Array2::from_shape_fn((sp.len(), 3), |(r, c)| match c {
                    0 => sp[r].0,
                    1 => sp[r].1,
                    _ => sp[r].2,
                })
            },
            falls: fa,
            breathing_rate_bpm: Array1::from_iter((0..mp).map(|i| {
                self.micros
                    .get(i)
                    .map_or(f64::NAN, |m| m.breathing_rate_hz * 60.0)
            })),
            breathing_depth_mm: Array1::from_iter((0..mp).map(|i| {
                self.micros
                    .get(i)
                    .map_or(f64::NAN, |m| m.breathing_depth_m * 1e3)
            })),
            dense_pose: dense,
        }
    }
}

/// Options of [`Simulator::generate`].
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Side of the dense-pose grid; 0 leaves the maps out.
    pub dense_pose_grid: usize,
    /// Worker threads; 0 uses every core.
    pub threads: usize,
}

/// What a generation pass produces: one link's packets, or the truth on the grid.
#[derive(Debug, Clone, Copy)]
enum Source {
    Link(usize),
    Grid,
}

#[derive(Default)]
struct Chunk {
    csi: Vec<Complex32>,
    timestamps: Vec<f64>,
    true_time: Vec<f64>,
    sequence: Vec<u64>,
    rssi: Vec<f32>,
    kp3: Vec<f32>,
    kp2: Vec<f32>,
    boxes: Vec<f32>,
    present: Vec<bool>,
    activity: Vec<i8>,
    occupancy: Vec<u8>,
    background: Vec<bool>,
    dp_part: Vec<u8>,
    dp_person: Vec<i8>,
    dp_u: Vec<f32>,
    dp_v: Vec<f32>,
}

/// Dense-pose maps, `(n, grid, grid)` each (see [`truth`]).
#[derive(Debug, Clone)]
pub struct DensePose {
    /// DensePose part id of each cell, 1..=24, 0 background.
    pub part: Array3<u8>,
    /// Person index of each cell, -1 background.
    pub person: Array3<i8>,
    /// Position along the limb, 0 at its proximal joint to 1.
    pub u: Array3<f32>,
    /// Position across the limb, 0 at its right edge to 1 at its left (seen from above).
    pub v: Array3<f32>,
}

/// A generated run: received packets only (lost ones are gaps in `sequence`).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `(n, n_tx, n_rx, n_sub)`.
    pub csi: Array4<Complex32>,
    /// The receiving node's clock (the true time unless the node has a clock offset
    /// or drift).
    pub timestamps: Array1<f64>,
    /// When each packet sampled the channel, seconds of true time.
    pub true_time: Array1<f64>,
    /// `(n,)`: packet number; gaps are lost packets (the truth grid's row).
    pub sequence: Array1<u64>,
    /// `(n,)`: received signal strength, dBm.
    pub rssi: Array1<f32>,
    /// `(n, max_people, 17, 3)`, room frame, metres.
    pub keypoints_3d: Array4<f32>,
    /// `(n, max_people, 17, 2)`, top-down floor frame in `[0, 1]`.
    pub keypoints_2d: Array4<f32>,
    /// `(n, max_people, 4)`: `[u_min, v_min, u_max, v_max]`.
    pub boxes: Array3<f32>,
    /// `(n, max_people)`: the person is inside the room.
    pub present: Array2<bool>,
    /// `(n, max_people)`: [`Activity`] as `i8`, `-1` absent.
    pub activity: Array2<i8>,
    /// `(n,)`: people present.
    pub occupancy: Array1<u8>,
    /// `(n,)`: a background change that is not a person (door, moved object) is under
    /// way.
    pub background_moving: Array1<bool>,
    /// `(n_events, 3)`: kind (0 door, 1 moved object), start, end, seconds.
    pub events: Array2<f64>,
    /// `(n_falls, 4)`: person, descent start, impact, standing again (NaN if never).
    pub falls: Array2<f64>,
    /// `(max_people,)`: each person's breathing rate, breaths per minute (NaN padding).
    pub breathing_rate_bpm: Array1<f64>,
    /// `(max_people,)`: each person's chest displacement peak to peak, mm (0: not
    /// breathing, NaN padding).
    pub breathing_depth_mm: Array1<f64>,
    /// Dense-pose maps, when [`BatchOptions::dense_pose_grid`] asked for them.
    pub dense_pose: Option<DensePose>,
}

/// Iterator over a simulator's received packets.
pub struct Frames<'a> {
    sim: &'a Simulator,
    next: usize,
    ws: Workspace,
}

impl Iterator for Frames<'_> {
    type Item = (CsiFrame, FrameTruth);

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.sim.n_frames {
            let n = self.next;
            self.next += 1;
            if let Some(f) = self.sim.frame(n, &mut self.ws) {
                return Some(f);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::geom::dist;
    use crate::sim::scenario::build_spec;

    fn sim(name: &str, seed: u64, secs: f64) -> Simulator {
        Simulator::new(build_spec(name, Some(seed), Some(secs), None, Some(100.0)).unwrap())
            .unwrap()
    }

    #[test]
    fn same_seed_same_bytes_any_thread_count() {
        let s = sim("two_people", 42, 3.0);
        let a = s.generate(&BatchOptions {
            dense_pose_grid: 16,
            threads: 1,
        });
        let b = s.generate(&BatchOptions {
            dense_pose_grid: 16,
            threads: 3,
        });
        let c = sim("two_people", 42, 3.0).generate(&BatchOptions {
            dense_pose_grid: 16,
            threads: 2,
        });
        for d in [&b, &c] {
            assert_eq!(a.csi.len(), d.csi.len());
            assert!(
                a.csi
                    .iter()
                    .zip(d.csi.iter())
                    .all(|(x, y)| x.re.to_bits() == y.re.to_bits()
                        && x.im.to_bits() == y.im.to_bits())
            );
            assert_eq!(a.timestamps, d.timestamps);
            assert_eq!(a.keypoints_3d, d.keypoints_3d);
            assert_eq!(
                a.dense_pose.as_ref().unwrap().part,
                d.dense_pose.as_ref().unwrap().part
            );
        }
        let other = sim("two_people", 43, 3.0).generate(&BatchOptions::default());
        assert_ne!(
            a.csi.as_slice().unwrap()[..270],
            other.csi.as_slice().unwrap()[..270]
        );
        // The iterator yields the same packets as the batch.
        let frames: Vec<_> = s.frames().collect();
        assert_eq!(frames.len(), a.timestamps.len());
        let (f, t) = &frames[10];
        assert_eq!(f.timestamp, a.timestamps[10]);
        assert_eq!(
            f.csi.as_slice().unwrap(),
            a.csi.outer_iter().nth(10).unwrap().as_slice().unwrap()
        );
        assert_eq!(f.format, CsiFormat::Simulated);
        assert_eq!(t.occupancy(), a.occupancy[10] as usize);
    }

    #[test]
    fn walking_scenario_truth_is_consistent() {
        let s = sim("walk", 1, 10.0);
        let d = s.generate(&BatchOptions {
            dense_pose_grid: 24,
            threads: 2,
        });
        let n = d.timestamps.len();
        // About 1 % of 1000 packets lost, timestamps increasing.
        assert!(n > 950 && n < 1000, "{n} packets");
        assert!(d.timestamps.windows(2).into_iter().all(|w| w[1] > w[0]));
        assert!(d.present.iter().all(|p| *p));
        assert!(d.activity.iter().all(|a| *a == Activity::Walking as i8));
        // Walking speed from the keypoints: the mid-hip moves at ~1.2 m/s.
        let hip = |i: usize, a: usize| {
            0.5 * (d.keypoints_3d[[i, 0, 11, a]] + d.keypoints_3d[[i, 0, 12, a]]) as f64
        };
        let (i0, i1) = (100, 400);
        let mut path = 0.0;
        for i in i0..i1 {
            path +=
                ((hip(i + 1, 0) - hip(i, 0)).powi(2) + (hip(i + 1, 1) - hip(i, 1)).powi(2)).sqrt();
        }
        let speed = path / (d.timestamps[i1] - d.timestamps[i0]);
        assert!((speed - 1.2).abs() < 0.1, "hip speed {speed}");
        // 2-D keypoints inside the unit square and inside their box.
        for i in 0..n {
            for k in 0..17 {
                let (u, v) = (d.keypoints_2d[[i, 0, k, 0]], d.keypoints_2d[[i, 0, k, 1]]);
                assert!((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v));
                assert!(u >= d.boxes[[i, 0, 0]] && u <= d.boxes[[i, 0, 2]]);
            }
        }
        // Every frame's dense-pose map shows the person somewhere.
        let dp = d.dense_pose.as_ref().unwrap();
        for i in 0..n {
            assert!(dp.part.outer_iter().nth(i).unwrap().iter().any(|p| *p > 0));
        }
        // The CSI moves: walking changes the channel far more than the noise does.
        let empty = sim("empty", 1, 2.0).generate(&BatchOptions::default());
        let var = |ds: &Dataset| {
            let a: Vec<f32> = ds.csi.iter().step_by(270).map(|c| c.norm()).collect();
            let m = a.iter().sum::<f32>() / a.len() as f32;
            a.iter().map(|x| (x - m).powi(2)).sum::<f32>() / a.len() as f32 / (m * m)
        };
        assert!(
            var(&d) > 4.0 * var(&empty),
            "walk {} vs empty {}",
            var(&d),
            var(&empty)
        );
    }

    #[test]
    fn fall_and_enter_leave_truth() {
        let s = sim("fall", 0, 8.0);
        let d = s.generate(&BatchOptions::default());
        assert_eq!(d.falls.nrows(), 1);
        let (t0, t1) = (d.falls[[0, 1]], d.falls[[0, 2]]);
        assert!((t1 - t0 - 0.8).abs() < 1e-9 && d.falls[[0, 3]].is_nan());
        for (i, t) in d.timestamps.iter().enumerate() {
            let a = d.activity[[i, 0]];
            if *t > t0 + 0.01 && *t < t1 - 0.01 {
                assert_eq!(a, Activity::Falling as i8);
            }
            if *t > t1 + 0.01 {
                assert_eq!(a, Activity::Lying as i8);
                let head_z = d.keypoints_3d[[i, 0, 0, 2]];
                assert!(head_z < 0.4, "head at {head_z} after the fall");
            }
        }
        let s = sim("enter_leave", 0, 16.0);
        let d = s.generate(&BatchOptions::default());
        let occ: Vec<u8> = d.occupancy.to_vec();
        assert_eq!(occ[0], 0, "starts outside");
        assert!(occ.contains(&1), "walks in");
        assert_eq!(*occ.last().unwrap(), 0, "has left");
        for (i, o) in occ.iter().enumerate() {
            assert_eq!(*o == 1, d.present[[i, 0]]);
            if !d.present[[i, 0]] {
                assert_eq!(d.activity[[i, 0]], -1);
            }
        }
    }

    /// Peak of the breathing band (4-40 per minute) in the spectrum of the ratio of two
    /// receive chains of one packet (which cancels the carrier and timing offsets and
    /// the gain jitter), summed over subcarriers; lost packets hold the previous value.
    /// Returns (peak per minute, peak power / median band power).
    fn ratio_breathing_peak(d: &Dataset, fps: f64, n_sent: usize) -> (f64, f64) {
        use rustfft::num_complex::Complex;
        let ns = d.csi.shape()[3];
        // As the engine reads a card: the receive chains' quarter-turn steps taken out.
        let mut chains = crate::sensing::ChainAligner::default();
        let frames: Vec<_> = (0..d.csi.shape()[0])
            .map(|r| {
                let f = d.csi.index_axis(ndarray::Axis(0), r).to_owned();
                chains.align(&f).into_owned()
            })
            .collect();
        let mut cols: Vec<Vec<Complex<f64>>> = vec![Vec::with_capacity(n_sent); ns];
        let mut row = 0;
        for n in 0..n_sent {
            if row + 1 < d.sequence.len() && d.sequence[row + 1] as usize <= n {
                row += 1;
            }
            for (k, col) in cols.iter_mut().enumerate() {
                let a = frames[row][[0, 0, k]];
                let b = frames[row][[0, 1, k]];
                let r = if b.norm() > 0.0 {
                    a / b
                } else {
                    Complex32::new(0.0, 0.0)
                };
                col.push(Complex::new(r.re as f64, r.im as f64));
            }
        }
        let pad = 8 * n_sent;
        let fft = rustfft::FftPlanner::new().plan_fft_forward(pad);
        let mut power = vec![0.0f64; pad];
        for col in &cols {
            let mean = col.iter().sum::<Complex<f64>>() / n_sent as f64;
            let mut buf = vec![Complex::new(0.0, 0.0); pad];
            for (i, c) in col.iter().enumerate() {
                let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n_sent as f64).cos();
                buf[i] = (c - mean) * w;
            }
            fft.process(&mut buf);
            for (p, x) in power.iter_mut().zip(&buf) {
                *p += x.norm_sqr();
            }
        }
        // Both signs of frequency: the ratio's dynamic part is complex.
        let bin_bpm = fps / pad as f64 * 60.0;
        let band: Vec<(f64, f64)> = (1..pad / 2)
            .map(|i| (i as f64 * bin_bpm, power[i] + power[pad - i]))
            .filter(|(f, _)| (4.0..=40.0).contains(f))
            .collect();
        let (f, p) = band
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0.0, 0.0));
        let mut ps: Vec<f64> = band.iter().map(|b| b.1).collect();
        ps.sort_by(f64::total_cmp);
        (f, p / ps[ps.len() / 2].max(1e-300))
    }

    fn still_person(posture: &str, seed: u64, extra: &str) -> Simulator {
        // Facing the link's midpoint (3, 2.5) from 1.5 m away, off the line of sight.
        let json = format!(
            r#"{{"duration_s": 60, "fps": 20, "seed": {seed},
                "people": [{{"start": [3.0, 4.0], "heading_deg": -90, "posture": "{posture}",
                             "sway_mm": 0, "fidget_interval_s": 0 {extra}}}]}}"#
        );
        Simulator::new(build_spec(&json, None, None, None, None).unwrap()).unwrap()
    }

    #[test]
    fn breathing_shows_in_the_antenna_ratio_at_the_true_rate() {
        // Rates drawn from the seed (standing, sitting, lying) and one given.
        for (posture, seed, extra) in [
            ("standing", 5, ""),
            ("sitting", 6, ""),
            ("lying", 7, ""),
            (
                "sitting",
                8,
                r#", "breathing_rate_bpm": 22.5, "breathing_depth_mm": 5"#,
            ),
        ] {
            let s = still_person(posture, seed, extra);
            let d = s.generate(&BatchOptions::default());
            let truth = d.breathing_rate_bpm[0];
            assert!((6.0..=30.0).contains(&truth));
            if !extra.is_empty() {
                assert_eq!(truth, 22.5);
            }
            let (f, prominence) = ratio_breathing_peak(&d, 20.0, s.n_frames());
            assert!(
                (f - truth).abs() <= 0.5,
                "{posture}: peak at {f:.2}/min, truth {truth:.2}"
            );
            assert!(
                prominence > 10.0,
                "{posture}: peak only {prominence:.1}x the band median"
            );
        }
        // Breathing off: the same still person shows no breathing peak.
        let s = still_person("sitting", 6, r#", "breathing_depth_mm": 0"#);
        let d = s.generate(&BatchOptions::default());
        let (_, prominence) = ratio_breathing_peak(&d, 20.0, s.n_frames());
        assert!(
            prominence < 5.0,
            "no breathing, yet a peak {prominence:.1}x the median"
        );
    }

    fn one_person(person: &str, secs: f64, fps: f64, seed: u64) -> Simulator {
        let json = format!(
            r#"{{"duration_s": {secs}, "fps": {fps}, "seed": {seed}, "people": [{person}]}}"#
        );
        Simulator::new(build_spec(&json, None, None, None, None).unwrap()).unwrap()
    }

    #[test]
    fn standing_sway_has_the_drawn_size_and_band() {
        let (secs, fps) = (300.0, 20.0);
        for seed in [1, 2, 3] {
            let s = one_person(r#"{"start": [3, 2.5]}"#, secs, fps, seed);
            let rms_truth = s.micros()[0].sway_rms_m;
            assert!((0.005..=0.015).contains(&rms_truth));
            let n = (secs * fps) as usize;
            let (mut nose, mut ankle) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let mut nose_z = 0.0;
            for i in 0..n {
                let (p, _) = s.people_at(i as f64 / fps);
                let k = &p[0].pose.keypoints;
                nose.push([k[0][0], k[0][1]]);
                ankle.push(k[15]);
                nose_z = k[0][2];
            }
            // Feet stay put: the body pivots about the ankles.
            for a in &ankle {
                assert!((a[0] - ankle[0][0]).abs() < 2e-3 && (a[1] - ankle[0][1]).abs() < 2e-3);
            }
            // RMS per axis at the nose's height is the drawn head sway scaled by z / h.
            let expect = rms_truth * nose_z / 1.75;
            for axis in 0..2 {
                let xs: Vec<f64> = nose.iter().map(|q| q[axis]).collect();
                let m = xs.iter().sum::<f64>() / n as f64;
                let rms = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64).sqrt();
                assert!(
                    (rms / expect - 1.0).abs() < 0.2,
                    "seed {seed} axis {axis}: sway RMS {rms} vs {expect}"
                );
                // Almost all of its power lies in 0.1-1 Hz.
                use rustfft::num_complex::Complex;
                let mut buf: Vec<Complex<f64>> =
                    xs.iter().map(|x| Complex::new(x - m, 0.0)).collect();
                rustfft::FftPlanner::new()
                    .plan_fft_forward(n)
                    .process(&mut buf);
                let (mut inband, mut total) = (0.0, 0.0);
                for (i, b) in buf.iter().enumerate().take(n / 2).skip(1) {
                    let f = i as f64 * fps / n as f64;
                    total += b.norm_sqr();
                    if (0.09..=1.1).contains(&f) {
                        inband += b.norm_sqr();
                    }
                }
                assert!(inband / total > 0.95, "in-band share {}", inband / total);
            }
        }
        // No sway while walking, nor with sway off.
        let s = one_person(r#"{"start": [3, 2.5], "sway_mm": 0}"#, 10.0, fps, 1);
        let k0 = s.people_at(0.0).0[0].pose.keypoints;
        assert_eq!(s.people_at(7.3).0[0].pose.keypoints, k0);
    }

    #[test]
    fn sitting_and_lying_fidget_now_and_then() {
        let (secs, fps) = (1200.0, 10.0);
        for (posture, seed) in [("sitting", 4), ("lying", 5)] {
            let s = one_person(
                &format!(
                    r#"{{"start": [3, 2.5], "posture": "{posture}", "fidget_interval_s": 20}}"#
                ),
                secs,
                fps,
                seed,
            );
            let times = s.micros()[0].fidget_times();
            // Poisson, mean 60 over 1200 s (standard deviation 7.7).
            assert!((40..=80).contains(&times.len()), "{} fidgets", times.len());
            let rest = s.people_at(-1e3).0[0].pose.keypoints;
            let n = (secs * fps) as usize;
            let mut seen = vec![0.0f64; times.len()];
            for i in 0..n {
                let t = i as f64 / fps;
                let k = s.people_at(t).0[0].pose.keypoints;
                let moved = k
                    .iter()
                    .zip(&rest)
                    .map(|(a, b)| dist(*a, *b))
                    .fold(0.0, f64::max);
                let active: Vec<usize> = (0..times.len())
                    .filter(|&j| t >= times[j] && t <= times[j] + 3.0)
                    .collect();
                if active.is_empty() {
                    assert!(
                        moved < 1e-9,
                        "{posture}: moved {moved} m at {t} outside fidgets"
                    );
                }
                for j in active {
                    seen[j] = seen[j].max(moved);
                }
            }
            // Each fidget moves some keypoint by centimetres, never by half a metre.
            let near_end = |j: usize| times[j] > secs - 3.0;
            for (j, m) in seen.iter().enumerate() {
                if !near_end(j) {
                    assert!(*m > 0.02 && *m < 0.5, "{posture}: fidget {j} moved {m} m");
                }
            }
        }
    }

    #[test]
    fn several_nodes_each_with_own_link_clock_and_losses() {
        let pl0 = r#"{"tx_position": [0.2, 0.2, 2.5], "rx_position": [5.8, 4.8, 0.5], "rx_axis": [1, -1, 0]}"#;
        let pl1 = r#"{"tx_position": [0.2, 0.2, 2.5], "rx_position": [3.0, 4.9, 1.8], "rx_axis": [1, 0, 0]}"#;
        let people =
            r#"[{"start": [1.5, 1.0], "actions": [{"type": "walk", "to": [[4.5, 3.5]]}]}]"#;
        let multi = format!(
            r#"{{"duration_s": 3, "seed": 9, "people": {people}, "nodes": [
                {{"placement": {pl0}}},
                {{"placement": {pl1}, "device": "esp32", "clock_offset_s": 12.5, "clock_drift_ppm": 40,
                  "impairments": {{"packet_loss": 0.2}}}}]}}"#
        );
        let s = Simulator::new(build_spec(&multi, None, None, None, None).unwrap()).unwrap();
        assert!(s.is_multi_node() && s.links().len() == 2);
        let opts = BatchOptions::default();
        let a = s.generate_link(0, &opts);
        let b = s.generate_link(1, &opts);
        // The first node is the single-link run with its placement, byte for byte.
        let single =
            format!(r#"{{"duration_s": 3, "seed": 9, "people": {people}, "placement": {pl0}}}"#);
        let one = Simulator::new(build_spec(&single, None, None, None, None).unwrap())
            .unwrap()
            .generate(&opts);
        assert_eq!(a.csi, one.csi);
        assert_eq!(a.timestamps, one.timestamps);
        // The second: its own device, losses and clock.
        assert_eq!(b.csi.shape(), &[b.timestamps.len(), 1, 1, 64]);
        let loss = 1.0 - b.timestamps.len() as f64 / 300.0;
        assert!((0.1..0.3).contains(&loss), "loss {loss}");
        assert_ne!(a.sequence, b.sequence);
        for (ts, tt) in b.timestamps.iter().zip(&b.true_time) {
            assert!((ts - (12.5 + tt * (1.0 + 40e-6))).abs() <= 0.6e-6);
        }
        // The truth on the grid is the truth at each packet's true time.
        let g = s.generate_truth(&opts);
        assert_eq!(g.timestamps.len(), 300);
        assert_eq!(g.csi.shape(), &[300, 0, 0, 0]);
        let i = 150usize;
        let row = b.sequence.iter().position(|q| *q as usize >= i).unwrap();
        let n = b.sequence[row] as usize;
        let d = (g.keypoints_3d[[n, 0, 0, 0]] - b.keypoints_3d[[row, 0, 0, 0]]).abs();
        assert!(
            d < 2e-3,
            "truth differs by {d} m between grid and packet time"
        );
        // A node outside the room is an error naming it.
        let bad = multi.replace("[3.0, 4.9, 1.8]", "[3.0, 7.0, 1.8]");
        let e = Simulator::new(build_spec(&bad, None, None, None, None).unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("nodes[1]"), "{e}");
        // A top-level placement with nodes is ambiguous.
        let both = multi.replacen(
            "\"seed\": 9,",
            &format!("\"seed\": 9, \"placement\": {pl0},"),
            1,
        );
        assert!(build_spec(&both, None, None, None, None).is_err());
    }

    fn clean_run(extra: &str) -> Dataset {
        let json = format!(
            r#"{{"duration_s": 4, "fps": 20, "impairments": {{"enabled": false}} {extra}}}"#
        );
        Simulator::new(build_spec(&json, None, None, None, None).unwrap())
            .unwrap()
            .generate(&BatchOptions::default())
    }

    fn max_rel_diff(a: &[Complex32], b: &[Complex32]) -> f32 {
        let scale = a.iter().map(|c| c.norm()).fold(0.0, f32::max);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f32::max)
            / scale
    }

    #[test]
    fn a_door_swings_and_is_not_a_person() {
        let d = clean_run(
            r#", "events": [{"type": "door", "at_s": 1.5, "hinge": [0.05, 4.0], "from_deg": -90, "to_deg": 0}]"#,
        );
        let frame = |i: usize| {
            d.csi
                .outer_iter()
                .nth(i)
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>()
        };
        let t = |i: usize| d.timestamps[i];
        assert!(d.occupancy.iter().all(|o| *o == 0));
        assert_eq!(d.events.shape(), &[1, 3]);
        assert_eq!((d.events[[0, 1]], d.events[[0, 2]]), (1.5, 2.5));
        for i in 0..d.timestamps.len() {
            assert_eq!(
                d.background_moving[i],
                (1.5..=2.5).contains(&t(i)),
                "at {}",
                t(i)
            );
        }
        // Still before and after, different in between: the swing changed the channel.
        assert_eq!(frame(0), frame(29));
        assert_eq!(frame(51), frame(79));
        let change = max_rel_diff(&frame(0), &frame(79));
        assert!(change > 0.01, "a door leaf moved, the channel by {change}");
        let mid = max_rel_diff(&frame(0), &frame(40));
        assert!(mid > 0.005, "{mid}");
    }

    #[test]
    fn a_moved_chair_is_the_same_physics_as_a_static_one() {
        // Before the move the moving scatterer equals the static object path; after it,
        // a static object at the new place.
        let obj = r#""room": {"objects": [{"position": [3.0, 4.0, 0.45], "rcs_m2": 0.5}]}"#;
        let moved = clean_run(&format!(
            r#", {obj}, "events": [{{"type": "move_object", "at_s": 1.0, "object": 0, "to": [2.0, 3.5, 0.45]}}]"#
        ));
        let before = clean_run(&format!(", {obj}"));
        let after =
            clean_run(r#", "room": {"objects": [{"position": [2.0, 3.5, 0.45], "rcs_m2": 0.5}]}"#);
        let row = |d: &Dataset, i: usize| {
            d.csi
                .outer_iter()
                .nth(i)
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>()
        };
        let (b, a) = (
            max_rel_diff(&row(&moved, 5), &row(&before, 5)),
            max_rel_diff(&row(&moved, 70), &row(&after, 70)),
        );
        let change = max_rel_diff(&row(&before, 5), &row(&after, 70));
        // (Scatterers use the carrier's wavelength for amplitude, static paths each
        // subcarrier's: a 0.2 % difference on the object's path.)
        assert!(b < 1e-3 && a < 1e-3, "{b} {a}");
        assert!(change > 30.0 * b.max(a), "{change}");
        assert!(moved.background_moving[25] && !moved.background_moving[15]);
        assert!(moved.occupancy.iter().all(|o| *o == 0));
        // Errors name the field.
        let e = build_spec(
            r#"{"events": [{"type": "move_object", "at_s": 1, "object": 3, "to": [1, 1, 0]}]}"#,
            None,
            None,
            None,
            None,
        )
        .and_then(Simulator::new)
        .err()
        .unwrap();
        assert!(e.to_string().contains("events[0].object"), "{e}");
        let e = build_spec(r#"{"events": [{"type": "door", "at_s": 1, "hinge": [1, 1], "from_deg": 0, "to_deg": 90, "colour": 1}]}"#, None, None, None, None).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
