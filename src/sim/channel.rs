//! The path sum: the channel every antenna pair sees on every subcarrier.
//!
//! `H[i, j, k] = sum over paths p of a_p(i, j) * exp(-j 2 pi f_k d_p(i, j) / c)`
//!
//! where `d_p(i, j)` is the length of path `p` from transmit antenna `i` to receive
//! antenna `j` and `f_k` the frequency of subcarrier `k`. Static paths (line of sight,
//! first-order reflections off walls, floor and ceiling by the image method, static
//! objects) have `a = g * lambda_k / (4 pi d)` (Friis, `g` the reflection coefficient)
//! and are computed once; each frame only scales them by how much the people's bodies
//! block them. Body paths go transmitter -> scattering point -> receiver with the
//! bistatic radar amplitude `a = sqrt(sigma) lambda / ((4 pi)^(3/2) d1 d2)`. Nothing is
//! pasted on top: Doppler and multipath come from `d` changing with the geometry.
//!
//! Blocking: a path segment passing within `r` of a body capsule's axis (`r` its
//! radius) is attenuated by `body_attenuation_db`; between `r` and `r + w` (`w` the
//! first Fresnel-zone radius at the segment's middle) the attenuation fades out with a
//! smoothstep, so shadowing is continuous in time. Blocking is evaluated once per path
//! between the array centres (the arrays are centimetres wide) and applied to every
//! antenna pair.
//!
//! Speed: per frame, scattering point `p` costs two `sin_cos` per antenna (the phase at
//! the lowest subcarrier and the per-bin step); the subcarrier phases then follow by
//! complex recurrence, vectorised across points, and each `(i, j, k)` is a dot product
//! over points in structure-of-arrays `f32`.

use num_complex::Complex32;

use super::device::{DeviceProfile, C, SUBCARRIER_SPACING_HZ};
use super::error::{check_range, SimError};
use super::geom::{add, dist, normalize_or, scale, seg_seg_dist2, sub, V3};
use super::room::{PathKind, Room};

/// The nearest a transmit antenna may be to a receive antenna, metres: at zero the direct
/// path has no length and its CSI is NaN.
pub const MIN_ANTENNA_GAP_M: f64 = 0.01;

/// A point that scatters: position and the square root of its radar cross-section (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scatterer {
    /// Position in the room frame, metres.
    pub pos: V3,
    /// Square root of the point's radar cross-section, metres.
    pub amp: f64,
}

/// A capsule that blocks paths: segment `a-b`, radius metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blocker {
    /// One end of the axis, room frame, metres.
    pub a: V3,
    /// The other end of the axis, room frame, metres.
    pub b: V3,
    /// Distance from the axis within which a path is fully attenuated, metres.
    pub radius: f64,
}

/// One person's (or any object's) contribution to a frame.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// Points that add a path transmitter -> point -> receiver.
    pub scatterers: Vec<Scatterer>,
    /// Capsules that attenuate the static paths passing through them.
    pub blockers: Vec<Blocker>,
    /// A sphere holding all blockers (inflated by their radius), for early rejection.
    pub center: V3,
    /// Radius of that sphere, metres (0 without blockers).
    pub radius: f64,
}

impl Body {
    /// A body of these points and capsules, its bounding sphere computed.
    pub fn new(scatterers: Vec<Scatterer>, blockers: Vec<Blocker>) -> Self {
        let mut b = Body {
            scatterers,
            blockers,
            center: [0.0; 3],
            radius: 0.0,
        };
        b.update_bounds();
        b
    }

    /// Recomputes `center` and `radius` from the blockers.
    pub fn update_bounds(&mut self) {
        if self.blockers.is_empty() {
            self.radius = 0.0;
            return;
        }
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for bl in &self.blockers {
            for p in [bl.a, bl.b] {
                for a in 0..3 {
                    lo[a] = lo[a].min(p[a] - bl.radius);
                    hi[a] = hi[a].max(p[a] + bl.radius);
                }
            }
        }
        self.center = scale(add(lo, hi), 0.5);
        self.radius = 0.5 * dist(lo, hi);
    }
}

/// Where the radios sit: array centres and the direction each linear array runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Centre of the transmit array, room frame, metres.
    pub tx_position: V3,
    /// Centre of the receive array, room frame, metres.
    pub rx_position: V3,
    /// Direction the transmit array runs along (need not be unit length).
    pub tx_axis: V3,
    /// Direction the receive array runs along (need not be unit length).
    pub rx_axis: V3,
}

impl Placement {
    /// Transmitter near the middle of the x = 0 wall, receiver near the opposite wall,
    /// both 1.2 m up, arrays along y: people walking around cross the line of sight.
    pub fn default_for(room: &Room) -> Self {
        let [w, d, _] = room.size;
        Placement {
            tx_position: [0.3, 0.45 * d, 1.2],
            rx_position: [w - 0.3, 0.55 * d, 1.2],
            tx_axis: [0.0, 1.0, 0.0],
            rx_axis: [0.0, 1.0, 0.0],
        }
    }
}

/// What the path sum includes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelOptions {
    /// The direct transmitter-receiver path.
    pub line_of_sight: bool,
    /// Wall, floor, ceiling and static-object paths.
    pub reflections: bool,
    /// Attenuation of a path through a body, dB.
    pub body_attenuation_db: f64,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            line_of_sight: true,
            reflections: true,
            body_attenuation_db: 15.0,
        }
    }
}

struct PathGeom {
    segments: Vec<(V3, V3, f64)>, // (start, end, Fresnel width)
    re: Vec<f32>,                 // [pair][ku]
    im: Vec<f32>,
}

/// Reusable buffers for [`Channel::compute`].
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    tre: Vec<f32>,
    tim: Vec<f32>,
    rre: Vec<f32>,
    rim: Vec<f32>,
    wre: Vec<f32>,
    wim: Vec<f32>,
    hre: Vec<f32>,
    him: Vec<f32>,
    /// Blocking factor of each static path in the last frame (1 = clear).
    pub path_block: Vec<f64>,
}

/// A room, a device and its placement, with the static paths precomputed.
pub struct Channel {
    n_tx: usize,
    n_rx: usize,
    n_rep: usize,
    /// Unique subcarrier bins, ascending.
    uniq: Vec<i32>,
    /// Reported position -> index into `uniq`.
    rep_map: Vec<usize>,
    zeroed: Vec<bool>,
    /// For unique position `k >= 1`, the index into `deltas` of `uniq[k] - uniq[k-1]`.
    delta_of: Vec<usize>,
    deltas: Vec<i32>,
    f0: f64,
    lambda_c: f64,
    tx: Vec<V3>,
    rx: Vec<V3>,
    paths: Vec<PathGeom>,
    path_kinds: Vec<PathKind>,
    body_t: f64,
}

fn antenna_positions(center: V3, axis: V3, n: usize, spacing: f64) -> Vec<V3> {
    let axis = normalize_or(axis, [0.0, 1.0, 0.0]);
    (0..n)
        .map(|i| {
            add(
                center,
                scale(axis, (i as f64 - (n as f64 - 1.0) / 2.0) * spacing),
            )
        })
        .collect()
}

/// `(sin, cos)` of `2 pi x` for any `x` in turns: reduced to an eighth of a turn
/// around the nearest quadrant, then Taylor series to the 11th/12th order (error below
/// 1e-11; `std`'s `sin_cos` is two libm calls and dominated the frame time).
#[inline]
pub fn sincos_turns(x: f64) -> (f64, f64) {
    let q = (x * 4.0).round();
    let t = (x - q * 0.25) * std::f64::consts::TAU; // [-pi/4, pi/4]
    let t2 = t * t;
    let s = t
        * (1.0
            - t2 / 6.0
                * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0 * (1.0 - t2 / 72.0 * (1.0 - t2 / 110.0)))));
    let c = 1.0
        - t2 / 2.0
            * (1.0
                - t2 / 12.0
                    * (1.0
                        - t2 / 30.0 * (1.0 - t2 / 56.0 * (1.0 - t2 / 90.0 * (1.0 - t2 / 132.0)))));
    match (q as i64) & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `exp(-j 2 pi cycles)` as `(re, im)`.
#[inline]
fn phasor(cycles: f64) -> (f64, f64) {
    let (s, c) = sincos_turns(cycles);
    (c, -s)
}

/// `exp(-j 2 pi cycles)` for a small phase (|2 pi cycles| < 1), by Taylor series to
/// the 8th order (error below 3e-6 at the limit, 1e-10 for the usual < 0.2 rad): the
/// per-bin step of a path is that small for any path under ~150 m.
#[inline]
fn small_phasor(cycles: f64) -> (f64, f64) {
    let t = std::f64::consts::TAU * cycles;
    if t.abs() >= 1.0 {
        return phasor(cycles);
    }
    let t2 = t * t;
    let c = 1.0 - t2 / 2.0 * (1.0 - t2 / 12.0 * (1.0 - t2 / 30.0 * (1.0 - t2 / 56.0)));
    let s = t * (1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0 * (1.0 - t2 / 72.0))));
    (c, -s)
}

#[inline]
fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

impl Channel {
    /// Precomputes the static paths of `room` for `device` at `placement`; fails on an
    /// invalid room, device, placement or option (naming the field).
    pub fn new(
        room: &Room,
        device: &DeviceProfile,
        placement: &Placement,
        options: &ChannelOptions,
    ) -> Result<Self, SimError> {
        room.validate()?;
        device.validate()?;
        check_range(
            "body_attenuation_db",
            options.body_attenuation_db,
            0.0,
            200.0,
        )?;
        for (name, p) in [
            ("placement.tx_position", placement.tx_position),
            ("placement.rx_position", placement.rx_position),
        ] {
            if !room.contains(p) {
                return Err(SimError::invalid(
                    name,
                    format!("{p:?} is outside the room {:?}", room.size),
                ));
            }
        }
        if device.subcarriers.is_empty() || device.zeroed.len() != device.subcarriers.len() {
            return Err(SimError::invalid(
                "device.subcarriers",
                "empty or mismatched",
            ));
        }
        let mut uniq = device.subcarriers.clone();
        uniq.sort_unstable();
        uniq.dedup();
        let rep_map: Vec<usize> = device
            .subcarriers
            .iter()
            .map(|k| uniq.binary_search(k).unwrap_or(0))
            .collect();
        let mut deltas: Vec<i32> = Vec::new();
        let mut delta_of = vec![0usize; uniq.len()];
        for k in 1..uniq.len() {
            let d = uniq[k] - uniq[k - 1];
            let pos = match deltas.iter().position(|&x| x == d) {
                Some(p) => p,
                None => {
                    deltas.push(d);
                    deltas.len() - 1
                }
            };
            delta_of[k] = pos;
        }
        let tx = antenna_positions(
            placement.tx_position,
            placement.tx_axis,
            device.n_tx,
            device.antenna_spacing_m,
        );
        let rx = antenna_positions(
            placement.rx_position,
            placement.rx_axis,
            device.n_rx,
            device.antenna_spacing_m,
        );
        let nearest = tx
            .iter()
            .flat_map(|a| rx.iter().map(move |b| dist(*a, *b)))
            .fold(f64::INFINITY, f64::min);
        if nearest.is_nan() || nearest < MIN_ANTENNA_GAP_M {
            return Err(SimError::invalid(
                "placement",
                format!(
                    "a transmit and a receive antenna are {nearest:.3} m apart (transmitter at \
                     {:?}, receiver at {:?}): at least {MIN_ANTENNA_GAP_M} m, or the direct \
                     path has no length",
                    placement.tx_position, placement.rx_position
                ),
            ));
        }
        let ku = uniq.len();
        let freqs: Vec<f64> = uniq
            .iter()
            .map(|&k| device.carrier_hz + k as f64 * SUBCARRIER_SPACING_HZ)
            .collect();
        let lambda_c = C / device.carrier_hz;
        let center_paths = room.static_paths(placement.tx_position, placement.rx_position);
        let mut paths = Vec::new();
        let mut path_kinds = Vec::new();
        for (pi, cp) in center_paths.iter().enumerate() {
            let keep = match cp.kind {
                PathKind::LineOfSight => options.line_of_sight,
                _ => options.reflections,
            };
            if !keep {
                continue;
            }
            let segments = cp
                .vertices
                .windows(2)
                .map(|w| {
                    let l = dist(w[0], w[1]);
                    (w[0], w[1], (0.5 * (lambda_c * l).sqrt()).max(0.02))
                })
                .collect();
            let mut re = vec![0f32; device.n_tx * device.n_rx * ku];
            let mut im = vec![0f32; device.n_tx * device.n_rx * ku];
            for (i, &t) in tx.iter().enumerate() {
                for (j, &r) in rx.iter().enumerate() {
                    let pp = room.static_paths(t, r);
                    let p = &pp[pi];
                    for (k, &f) in freqs.iter().enumerate() {
                        let lam = C / f;
                        let a = p.gain * lam / (4.0 * std::f64::consts::PI * p.length);
                        let (c, s) = phasor(f * p.length / C);
                        let idx = (i * device.n_rx + j) * ku + k;
                        re[idx] = (a * c) as f32;
                        im[idx] = (a * s) as f32;
                    }
                }
            }
            paths.push(PathGeom { segments, re, im });
            path_kinds.push(cp.kind);
        }
        Ok(Channel {
            n_tx: device.n_tx,
            n_rx: device.n_rx,
            n_rep: device.subcarriers.len(),
            f0: freqs[0],
            uniq,
            rep_map,
            zeroed: device.zeroed.clone(),
            delta_of,
            deltas,
            lambda_c,
            tx,
            rx,
            paths,
            path_kinds,
            body_t: 10f64.powf(-options.body_attenuation_db / 20.0),
        })
    }

    /// Transmit antennas.
    pub fn n_tx(&self) -> usize {
        self.n_tx
    }
    /// Receive antennas.
    pub fn n_rx(&self) -> usize {
        self.n_rx
    }
    /// Subcarriers the device reports (nulls and guards included).
    pub fn n_sub(&self) -> usize {
        self.n_rep
    }
    /// Every transmit antenna's position, room frame, metres.
    pub fn tx_antennas(&self) -> &[V3] {
        &self.tx
    }
    /// Every receive antenna's position, room frame, metres.
    pub fn rx_antennas(&self) -> &[V3] {
        &self.rx
    }
    /// What each static path is (line of sight, which reflection, which object).
    pub fn path_kinds(&self) -> &[PathKind] {
        &self.path_kinds
    }

    /// Mean power per reported (non-zero) element of the channel with no one in it.
    pub fn empty_room_power(&self) -> f64 {
        let mut ws = Workspace::default();
        let mut out = vec![Complex32::new(0.0, 0.0); self.n_tx * self.n_rx * self.n_rep];
        self.compute(&[], &mut ws, &mut out);
        let n = self.zeroed.iter().filter(|z| !**z).count() * self.n_tx * self.n_rx;
        if n == 0 {
            return 0.0;
        }
        out.iter().map(|c| c.norm_sqr() as f64).sum::<f64>() / n as f64
    }

    fn block_factor(&self, seg: &(V3, V3, f64), bodies: &[Body]) -> f64 {
        let (a, b, w) = *seg;
        let mut f = 1.0;
        for body in bodies {
            if body.blockers.is_empty() {
                continue;
            }
            // Early out: distance from the body's bounding sphere centre to the segment.
            let reach = body.radius + w;
            if seg_seg_dist2(a, b, body.center, body.center) > reach * reach {
                continue;
            }
            for bl in &body.blockers {
                let d = seg_seg_dist2(a, b, bl.a, bl.b).sqrt();
                if d >= bl.radius + w {
                    continue;
                }
                let s = smoothstep((d - bl.radius) / w);
                f *= self.body_t + (1.0 - self.body_t) * s;
            }
        }
        f
    }

    /// The channel for one frame, written to `out` shaped `(n_tx, n_rx, n_sub)` in
    /// row-major order, subcarriers in the device's reported order.
    pub fn compute(&self, bodies: &[Body], ws: &mut Workspace, out: &mut [Complex32]) {
        let ku = self.uniq.len();
        let npair = self.n_tx * self.n_rx;
        debug_assert_eq!(out.len(), npair * self.n_rep);
        ws.hre.clear();
        ws.hre.resize(npair * ku, 0.0);
        ws.him.clear();
        ws.him.resize(npair * ku, 0.0);

        // Static paths, scaled by blocking.
        ws.path_block.clear();
        for p in &self.paths {
            let f: f64 = p
                .segments
                .iter()
                .map(|s| self.block_factor(s, bodies))
                .product();
            ws.path_block.push(f);
            let f = f as f32;
            for (h, v) in ws.hre.iter_mut().zip(&p.re) {
                *h += f * v;
            }
            for (h, v) in ws.him.iter_mut().zip(&p.im) {
                *h += f * v;
            }
        }

        // Body scattering.
        let np: usize = bodies.iter().map(|b| b.scatterers.len()).sum();
        if np > 0 {
            self.scatter(bodies, np, ws);
        }

        for pair in 0..npair {
            let o = &mut out[pair * self.n_rep..(pair + 1) * self.n_rep];
            let h = pair * ku;
            for (r, slot) in o.iter_mut().enumerate() {
                *slot = if self.zeroed[r] {
                    Complex32::new(0.0, 0.0)
                } else {
                    let u = h + self.rep_map[r];
                    Complex32::new(ws.hre[u], ws.him[u])
                };
            }
        }
    }

    fn scatter(&self, bodies: &[Body], np: usize, ws: &mut Workspace) {
        const LANES: usize = 8;
        let pp = np.div_ceil(LANES) * LANES;
        let ku = self.uniq.len();
        let nd = self.deltas.len().max(1);
        let nt = self.n_tx;
        let nr = self.n_rx;
        // Every element is rewritten below except the padding lanes of the first row
        // and of the steps, which are zeroed (zero amplitude stays zero).
        for (buf, len) in [
            (&mut ws.tre, ku * nt * pp),
            (&mut ws.tim, ku * nt * pp),
            (&mut ws.rre, ku * nr * pp),
            (&mut ws.rim, ku * nr * pp),
            (&mut ws.wre, nd * (nt + nr) * pp),
            (&mut ws.wim, nd * (nt + nr) * pp),
        ] {
            buf.resize(len, 0.0);
        }
        for a in 0..nt {
            ws.tre[a * pp + np..(a + 1) * pp].fill(0.0);
            ws.tim[a * pp + np..(a + 1) * pp].fill(0.0);
        }
        for a in 0..nr {
            ws.rre[a * pp + np..(a + 1) * pp].fill(0.0);
            ws.rim[a * pp + np..(a + 1) * pp].fill(0.0);
        }
        for lane in 0..nd * (nt + nr) {
            ws.wre[lane * pp + np..(lane + 1) * pp].fill(0.0);
            ws.wim[lane * pp + np..(lane + 1) * pp].fill(0.0);
        }
        let k_amp = self.lambda_c / (4.0 * std::f64::consts::PI).powf(1.5);
        let df = SUBCARRIER_SPACING_HZ;
        // Base phasors (k = 0) and per-delta steps for every (antenna, point) lane.
        let mut p = 0;
        for body in bodies {
            for s in &body.scatterers {
                for (side, ants) in [(0usize, &self.tx), (1usize, &self.rx)] {
                    for (a, &ant) in ants.iter().enumerate() {
                        let d = dist(ant, s.pos).max(0.05);
                        let amp = if side == 0 {
                            s.amp * k_amp / d
                        } else {
                            1.0 / d
                        };
                        let (c0, s0) = phasor(self.f0 * d / C);
                        let lane = a * pp + p;
                        if side == 0 {
                            ws.tre[lane] = (amp * c0) as f32;
                            ws.tim[lane] = (amp * s0) as f32;
                        } else {
                            ws.rre[lane] = (amp * c0) as f32;
                            ws.rim[lane] = (amp * s0) as f32;
                        }
                        let wlane_base = if side == 0 { a } else { nt + a };
                        let (c1, s1) = small_phasor(df * d / C);
                        for (di, &dd) in self.deltas.iter().enumerate() {
                            let (wc, ws_) = if dd == 1 {
                                (c1, s1)
                            } else if (2..=8).contains(&dd) {
                                let (mut wc, mut wsn) = (c1, s1);
                                for _ in 1..dd {
                                    let t = wc * c1 - wsn * s1;
                                    wsn = wc * s1 + wsn * c1;
                                    wc = t;
                                }
                                (wc, wsn)
                            } else {
                                small_phasor(df * dd as f64 * d / C)
                            };
                            let wl = (di * (nt + nr) + wlane_base) * pp + p;
                            ws.wre[wl] = wc as f32;
                            ws.wim[wl] = ws_ as f32;
                        }
                    }
                }
                p += 1;
            }
        }
        // Recurrence over subcarriers, vectorised across lanes.
        for k in 1..ku {
            let di = self.delta_of[k];
            for (side, n) in [(0usize, nt), (1usize, nr)] {
                let (bre, bim) = if side == 0 {
                    (&mut ws.tre, &mut ws.tim)
                } else {
                    (&mut ws.rre, &mut ws.rim)
                };
                let row = n * pp;
                let (prev_re, cur_re) = bre.split_at_mut(k * row);
                let (prev_im, cur_im) = bim.split_at_mut(k * row);
                let prev_re = &prev_re[(k - 1) * row..k * row];
                let prev_im = &prev_im[(k - 1) * row..k * row];
                let cur_re = &mut cur_re[..row];
                let cur_im = &mut cur_im[..row];
                let woff = (di * (nt + nr) + if side == 0 { 0 } else { nt }) * pp;
                let wr = &ws.wre[woff..woff + row];
                let wi = &ws.wim[woff..woff + row];
                for ((((cr, ci), (&a, &b)), &x), &y) in cur_re
                    .iter_mut()
                    .zip(cur_im.iter_mut())
                    .zip(prev_re.iter().zip(prev_im))
                    .zip(wr)
                    .zip(wi)
                {
                    *cr = a * x - b * y;
                    *ci = a * y + b * x;
                }
            }
        }
        // H[i, j, k] += sum_p T[k, i, p] R[k, j, p].
        for k in 0..ku {
            for i in 0..nt {
                let to = (k * nt + i) * pp;
                let (ar, ai) = (&ws.tre[to..to + pp], &ws.tim[to..to + pp]);
                for j in 0..nr {
                    let ro = (k * nr + j) * pp;
                    let (br, bi) = (&ws.rre[ro..ro + pp], &ws.rim[ro..ro + pp]);
                    let mut sr = [0f32; LANES];
                    let mut si = [0f32; LANES];
                    for (((x, y), u), v) in ar
                        .chunks_exact(LANES)
                        .zip(ai.chunks_exact(LANES))
                        .zip(br.chunks_exact(LANES))
                        .zip(bi.chunks_exact(LANES))
                    {
                        for l in 0..LANES {
                            sr[l] += x[l] * u[l] - y[l] * v[l];
                            si[l] += x[l] * v[l] + y[l] * u[l];
                        }
                    }
                    let h = (i * nr + j) * ku + k;
                    ws.hre[h] += sr.iter().sum::<f32>();
                    ws.him[h] += si.iter().sum::<f32>();
                }
            }
        }
    }
}

/// Path length from transmit antenna `tx` through `point` to receive antenna `rx`.
pub fn bistatic_length(tx: V3, point: V3, rx: V3) -> f64 {
    dist(tx, point) + dist(point, rx)
}

/// The unit vector from `a` to `b`.
pub fn direction(a: V3, b: V3) -> V3 {
    normalize_or(sub(b, a), [1.0, 0.0, 0.0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{PI, TAU};

    #[test]
    fn fast_sincos_matches_std() {
        for i in 0..20000 {
            let x = (i as f64 - 10000.0) * 0.0173 + 0.001 * (i as f64).sin();
            let (s, c) = sincos_turns(x);
            let (s2, c2) = (TAU * x).sin_cos();
            // std's own argument rounding grows with |2 pi x|; 1e-9 covers both.
            assert!(
                (s - s2).abs() < 1e-9 && (c - c2).abs() < 1e-9,
                "{x}: {s} {s2} {c} {c2}"
            );
        }
    }

    #[test]
    fn small_phasor_matches_sin_cos() {
        for i in 0..2000 {
            let cyc = (i as f64 - 1000.0) * 2e-4; // up to +-0.2 cycles
            let (c, s) = small_phasor(cyc);
            let (c2, s2) = phasor(cyc);
            assert!((c - c2).abs() < 3e-6 && (s - s2).abs() < 3e-6, "{cyc}");
        }
    }

    fn wrap(x: f64) -> f64 {
        (x + PI).rem_euclid(TAU) - PI
    }

    fn bare(device: &str) -> (Room, DeviceProfile, Placement) {
        let room = Room::default();
        let dev = DeviceProfile::named(device).unwrap();
        let pl = Placement::default_for(&room);
        (room, dev, pl)
    }

    #[test]
    fn single_reflector_phase_on_every_subcarrier() {
        for device in ["intel5300", "atheros_40", "nexmon", "esp32_192"] {
            let (room, dev, pl) = bare(device);
            let opts = ChannelOptions {
                line_of_sight: false,
                reflections: false,
                ..Default::default()
            };
            let ch = Channel::new(&room, &dev, &pl, &opts).unwrap();
            let point = [2.7, 3.9, 0.8];
            let body = Body::new(
                vec![Scatterer {
                    pos: point,
                    amp: 1.0,
                }],
                vec![],
            );
            let mut out = vec![Complex32::new(0.0, 0.0); ch.n_tx() * ch.n_rx() * ch.n_sub()];
            ch.compute(&[body], &mut Workspace::default(), &mut out);
            let freqs = dev.frequencies();
            for i in 0..ch.n_tx() {
                for j in 0..ch.n_rx() {
                    let d = bistatic_length(ch.tx_antennas()[i], point, ch.rx_antennas()[j]);
                    let d1 = dist(ch.tx_antennas()[i], point);
                    let d2 = dist(point, ch.rx_antennas()[j]);
                    let amp_expect = C / dev.carrier_hz / (4.0 * PI).powf(1.5) / (d1 * d2);
                    for (k, &f) in freqs.iter().enumerate() {
                        let h = out[(i * ch.n_rx() + j) * ch.n_sub() + k];
                        if dev.zeroed[k] {
                            assert_eq!(h, Complex32::new(0.0, 0.0));
                            continue;
                        }
                        let expect = -TAU * f * d / C;
                        let got = (h.im as f64).atan2(h.re as f64);
                        assert!(
                            wrap(got - expect).abs() < 2e-3,
                            "{device} pair ({i},{j}) sub {k}: phase {got} vs {expect}"
                        );
                        let rel = (h.norm() as f64 - amp_expect).abs() / amp_expect;
                        assert!(rel < 1e-3, "{device} amplitude off by {rel}");
                    }
                }
            }
        }
    }

    #[test]
    fn line_of_sight_phase_and_blocking() {
        let (room, dev, pl) = bare("intel5300");
        let opts = ChannelOptions {
            line_of_sight: true,
            reflections: false,
            body_attenuation_db: 20.0,
        };
        let ch = Channel::new(&room, &dev, &pl, &opts).unwrap();
        let n = ch.n_tx() * ch.n_rx() * ch.n_sub();
        let mut clear = vec![Complex32::new(0.0, 0.0); n];
        let mut ws = Workspace::default();
        ch.compute(&[], &mut ws, &mut clear);
        let d = dist(ch.tx_antennas()[0], ch.rx_antennas()[0]);
        let f = dev.frequencies()[0];
        let got = (clear[0].im as f64).atan2(clear[0].re as f64);
        assert!(wrap(got - (-TAU * f * d / C)).abs() < 2e-3);
        // A torso-sized capsule standing right on the line of sight, halfway.
        let m = scale(add(pl.tx_position, pl.rx_position), 0.5);
        let blocker = Blocker {
            a: [m[0], m[1], 0.0],
            b: [m[0], m[1], 1.8],
            radius: 0.15,
        };
        let mut blocked = vec![Complex32::new(0.0, 0.0); n];
        ch.compute(&[Body::new(vec![], vec![blocker])], &mut ws, &mut blocked);
        let p_clear: f32 = clear.iter().map(|c| c.norm_sqr()).sum();
        let p_blocked: f32 = blocked.iter().map(|c| c.norm_sqr()).sum();
        let drop_db = 10.0 * (p_clear / p_blocked).log10();
        assert!((drop_db - 20.0).abs() < 0.5, "LOS dropped by {drop_db} dB");
        // Two metres to the side it does nothing.
        let aside = Blocker {
            a: [m[0], m[1] - 2.0, 0.0],
            b: [m[0], m[1] - 2.0, 1.8],
            radius: 0.15,
        };
        ch.compute(&[Body::new(vec![], vec![aside])], &mut ws, &mut blocked);
        assert_eq!(clear, blocked);
    }

    #[test]
    fn doppler_of_a_moving_point() {
        // Transmitter and receiver side by side; a point walks straight away from them at
        // v, so the path grows at 2v and the phase turns at -2 v / lambda.
        let room = Room {
            size: [20.0, 6.0, 3.0],
            ..Room::default()
        };
        let mut dev = DeviceProfile::named("intel5300").unwrap();
        dev.n_tx = 1;
        dev.n_rx = 1;
        let pl = Placement {
            tx_position: [0.5, 2.95, 1.0],
            rx_position: [0.5, 3.05, 1.0],
            tx_axis: [0.0, 1.0, 0.0],
            rx_axis: [0.0, 1.0, 0.0],
        };
        let ch = Channel::new(&room, &dev, &pl, &ChannelOptions::default()).unwrap();
        let v = 1.3;
        let fs = 1000.0;
        let n = 1024;
        let k = 7;
        let mut series = Vec::with_capacity(n);
        let mut ws = Workspace::default();
        let mut out = vec![Complex32::new(0.0, 0.0); ch.n_sub()];
        for t in 0..n {
            let x = 3.0 + v * t as f64 / fs;
            let body = Body::new(
                vec![Scatterer {
                    pos: [x, 3.0, 1.0],
                    amp: 1.0,
                }],
                vec![],
            );
            ch.compute(&[body], &mut ws, &mut out);
            series.push(out[k]);
        }
        let mean = series.iter().sum::<Complex32>() / n as f32;
        let mut buf: Vec<rustfft::num_complex::Complex<f32>> = series
            .iter()
            .map(|c| {
                let c = c - mean;
                rustfft::num_complex::Complex::new(c.re, c.im)
            })
            .collect();
        rustfft::FftPlanner::new()
            .plan_fft_forward(n)
            .process(&mut buf);
        let peak = (0..n)
            .max_by(|&a, &b| buf[a].norm().total_cmp(&buf[b].norm()))
            .unwrap();
        let fpeak = if peak < n / 2 {
            peak as f64
        } else {
            peak as f64 - n as f64
        } * fs
            / n as f64;
        let lambda = C / dev.frequencies()[k];
        // The path-length rate of change is slightly below 2v (tx and rx are 5 cm off the axis).
        let expect = -2.0 * v / lambda;
        assert!(
            (fpeak - expect).abs() <= fs / n as f64 * 1.01,
            "Doppler peak at {fpeak} Hz, expected {expect}"
        );
    }
}
