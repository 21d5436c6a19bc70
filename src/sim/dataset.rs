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

use super::channel::{Body, Channel, Workspace};
use super::device::DeviceProfile;
use super::error::SimError;
use super::impairments::Impairments;
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

/// A built simulation.
pub struct Simulator {
    pub spec: Spec,
    pub room: Room,
    pub device: DeviceProfile,
    channel: Channel,
    impairments: Impairments,
    tracks: Vec<Track>,
    shapes: Vec<BodyShape>,
    n_frames: usize,
}

/// One generated packet without its array (see [`Simulator::frame_into`]).
#[derive(Debug, Clone)]
pub struct FrameInfo {
    pub timestamp: f64,
    pub rssi: f32,
    pub noise: Option<f32>,
    pub truth: FrameTruth,
}

impl Simulator {
    pub fn new(spec: Spec) -> Result<Self, SimError> {
        spec.validate()?;
        let room = spec.room();
        let device = spec.device()?;
        let placement = spec.placement(&room);
        let channel = Channel::new(&room, &device, &placement, &spec.channel_options())?;
        let mut setup = StdRng::seed_from_u64(stream_seed(spec.seed, u64::MAX));
        let impairments = Impairments::new(
            &spec.impairments,
            &device.subcarriers,
            &device.zeroed,
            device.n_tx,
            device.n_rx,
            device.iq_bits,
            device.timing_offset_std_ns,
            channel.empty_room_power(),
            &mut setup,
        )?;
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
        Ok(Simulator {
            spec,
            room,
            device,
            channel,
            impairments,
            tracks,
            shapes,
            n_frames,
        })
    }

    pub fn from_json(json: &str) -> Result<Self, SimError> {
        Simulator::new(Spec::from_json(json)?)
    }

    /// Packets sent (before loss).
    pub fn n_frames(&self) -> usize {
        self.n_frames
    }

    pub fn max_people(&self) -> usize {
        self.spec.max_people()
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub fn impairments(&self) -> &Impairments {
        &self.impairments
    }

    /// `(n_tx, n_rx, n_sub)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.device.n_tx, self.device.n_rx, self.device.n_sub())
    }

    /// Falls in the scripts: `(person, event)`.
    pub fn falls(&self) -> Vec<(usize, FallEvent)> {
        self.tracks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.falls.iter().map(move |f| (i, *f)))
            .collect()
    }

    /// The people at time `t`: truth and bodies (present people only).
    pub fn people_at(&self, t: f64) -> (Vec<PersonTruth>, Vec<Body>) {
        let mut truth = Vec::with_capacity(self.tracks.len());
        let mut bodies = Vec::with_capacity(self.tracks.len());
        for (track, shape) in self.tracks.iter().zip(&self.shapes) {
            let s = track.state(t);
            let pose = shape.pose(&s.posture, s.xy, s.heading);
            let mid_hip = [
                0.5 * (pose.keypoints[11][0] + pose.keypoints[12][0]),
                0.5 * (pose.keypoints[11][1] + pose.keypoints[12][1]),
                0.5,
            ];
            let present = self.room.contains(mid_hip);
            if present {
                bodies.push(shape.body(&pose));
            }
            truth.push(PersonTruth {
                present,
                activity: s.activity,
                pose,
            });
        }
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
        let mut rng = StdRng::seed_from_u64(stream_seed(self.spec.seed, n as u64));
        let lost = self.impairments.lost(&mut rng);
        if lost {
            return None;
        }
        let dt = 1.0 / self.spec.fps;
        let t = self.impairments.timestamp(n as f64 * dt, dt, &mut rng);
        let (people, bodies) = self.people_at(t);
        self.channel.compute(&bodies, ws, csi);
        let n_el = self.device.zeroed.iter().filter(|z| !**z).count()
            * self.device.n_tx
            * self.device.n_rx;
        let p: f64 = csi.iter().map(|c| c.norm_sqr() as f64).sum::<f64>() / n_el.max(1) as f64;
        let draw = self.impairments.apply(csi, &mut rng);
        let rssi = (TX_POWER_DBM + 10.0 * (p * draw.gain * draw.gain).max(1e-30).log10()) as f32;
        let noise = (self.impairments.noise_sigma > 0.0)
            .then(|| (TX_POWER_DBM + 20.0 * self.impairments.noise_sigma.log10()) as f32);
        Some(FrameInfo {
            timestamp: t,
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
                    s.spawn(move || self.chunk(start, end, opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        self.assemble(parts, opts)
    }

    fn chunk(&self, start: usize, end: usize, opts: &BatchOptions) -> Chunk {
        let (nt, nr, ns) = self.shape();
        let per = nt * nr * ns;
        let mp = self.max_people();
        let g = opts.dense_pose_grid;
        let mut c = Chunk::default();
        let mut ws = Workspace::default();
        let mut buf = vec![Complex32::new(0.0, 0.0); per];
        for n in start..end {
            let Some(info) = self.frame_into(n, &mut ws, &mut buf) else {
                continue;
            };
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

    fn assemble(&self, parts: Vec<Chunk>, opts: &BatchOptions) -> Dataset {
        let mut all = Chunk::default();
        for p in parts {
            all.csi.extend(p.csi);
            all.timestamps.extend(p.timestamps);
            all.sequence.extend(p.sequence);
            all.rssi.extend(p.rssi);
            all.kp3.extend(p.kp3);
            all.kp2.extend(p.kp2);
            all.boxes.extend(p.boxes);
            all.present.extend(p.present);
            all.activity.extend(p.activity);
            all.occupancy.extend(p.occupancy);
            all.dp_part.extend(p.dp_part);
            all.dp_person.extend(p.dp_person);
            all.dp_u.extend(p.dp_u);
            all.dp_v.extend(p.dp_v);
        }
        let n = all.timestamps.len();
        let (nt, nr, ns) = self.shape();
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
            falls: fa,
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

#[derive(Default)]
struct Chunk {
    csi: Vec<Complex32>,
    timestamps: Vec<f64>,
    sequence: Vec<u64>,
    rssi: Vec<f32>,
    kp3: Vec<f32>,
    kp2: Vec<f32>,
    boxes: Vec<f32>,
    present: Vec<bool>,
    activity: Vec<i8>,
    occupancy: Vec<u8>,
    dp_part: Vec<u8>,
    dp_person: Vec<i8>,
    dp_u: Vec<f32>,
    dp_v: Vec<f32>,
}

/// Dense-pose maps, `(n, grid, grid)` each (see [`truth`]).
#[derive(Debug, Clone)]
pub struct DensePose {
    pub part: Array3<u8>,
    pub person: Array3<i8>,
    pub u: Array3<f32>,
    pub v: Array3<f32>,
}

/// A generated run: received packets only (lost ones are gaps in `sequence`).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `(n, n_tx, n_rx, n_sub)`.
    pub csi: Array4<Complex32>,
    pub timestamps: Array1<f64>,
    pub sequence: Array1<u64>,
    pub rssi: Array1<f32>,
    /// `(n, max_people, 17, 3)`, room frame, metres.
    pub keypoints_3d: Array4<f32>,
    /// `(n, max_people, 17, 2)`, top-down floor frame in `[0, 1]`.
    pub keypoints_2d: Array4<f32>,
    /// `(n, max_people, 4)`: `[u_min, v_min, u_max, v_max]`.
    pub boxes: Array3<f32>,
    pub present: Array2<bool>,
    /// `(n, max_people)`: [`Activity`] as `i8`, `-1` absent.
    pub activity: Array2<i8>,
    pub occupancy: Array1<u8>,
    /// `(n_falls, 4)`: person, descent start, impact, standing again (NaN if never).
    pub falls: Array2<f64>,
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
}
