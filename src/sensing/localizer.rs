//! Where a moving person is, from one link and the devices' placement: bistatic
//! back-projection of the channel's moving part.
//!
//! In: every frame of one link with at least two antennas on one side (a 3x3 Intel 5300
//! is the case it was built on), the room and where the transmitter's and receiver's
//! antennas are ([`LinkGeometry`]). Out: a [`Fix`] — a floor position in metres in the
//! room frame — every `window_packets` frames while the caller says something moves.
//! No training: the geometry does the work, so a placement never seen before is no
//! harder than any other (`docs/sensing.md`, "Position").
//!
//! How, per frame:
//! 1. **Align** the frame to the room's background `S` (a slowly updated complex mean per
//!    link and subcarrier): the card's per-packet common phase, timing slope and gain are
//!    the same on every antenna pair, so one phase `a + b k` and one gain fitted against
//!    `S` over all pairs take them out and keep what differs between pairs.
//! 2. **The moving part** `D = aligned - S`: people moving; the walls, furniture and the
//!    line of sight stay in `S`.
//! 3. **Reference**: `D` still carries each chain's unknown fixed phase (random after every
//!    card reset). The background is fitted to the room's known static paths (line of
//!    sight plus the six first-order reflections by the image method, their reflectivities
//!    fitted too) as `S[l, k] ~ c_l e^{i theta_k} M[l, k]`; dividing `D` by `c_l e^{i
//!    theta_k}` leaves the moving paths' true phases `-2 pi f_k d / c` up to one common
//!    factor. Where the room's real paths differ from the model (furniture, higher-order
//!    reflections) this reference is off, which is the main error left (measured in
//!    `benches/position.py`).
//! 4. **Back-projection**: for each floor point `p` on a grid at body height, the phases
//!    a scatterer there would give every pair and subcarrier (`d = |tx_i - p| + |p - rx_j|`)
//!    are matched against each frame of the window; the powers summed over the window
//!    make a map, and its peak (refined on a finer grid) is the fix. Angle of arrival,
//!    angle of departure and (weakly, at 20 MHz) path length all enter at once.
//!
//! Blind spot: a person standing on the line of sight scatters with the line of sight's
//! own angles and delay, which the per-packet alignment cannot tell from the card's
//! offsets; the fix there comes from the map's side lobes (tested off the line).
//!
//! Cost: with 10 subcarriers, 9 pairs, a 0.2 m grid over a 6 x 5 m room (750 points)
//! and 25-frame windows: 1.7 M complex multiply-adds per window, four windows a second.
use num_complex::{Complex32, Complex64};

/// Speed of light, m/s.
const C: f64 = 299_792_458.0;

/// Floor grid points at most (a 28 x 28 m floor at 0.2 m).
const MAX_GRID_POINTS: usize = 20_000;

/// What the localizer knows about the room and the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkGeometry {
    /// Room width (x), depth (y), height (z), metres; the floor corner is the origin.
    pub room: [f64; 3],
    /// Transmit antenna positions, metres, in the frame's transmit-chain order.
    pub tx: Vec<[f64; 3]>,
    /// Receive antenna positions, metres, in the frame's receive-chain order.
    pub rx: Vec<[f64; 3]>,
    /// Each reported subcarrier's frequency, Hz, in the frame's order; 0 for subcarriers
    /// the device reports as zero (nulls, guards).
    pub freqs_hz: Vec<f64>,
}

impl LinkGeometry {
    /// Antennas on two uniform linear arrays: `n` antennas `spacing` metres apart along
    /// `axis`, centred on `center` (the simulator's convention).
    #[allow(clippy::too_many_arguments)]
    pub fn from_arrays(
        room: [f64; 3],
        tx_center: [f64; 3],
        tx_axis: [f64; 3],
        n_tx: usize,
        rx_center: [f64; 3],
        rx_axis: [f64; 3],
        n_rx: usize,
        spacing_m: f64,
        freqs_hz: Vec<f64>,
    ) -> Self {
        LinkGeometry {
            room,
            tx: array_positions(tx_center, tx_axis, n_tx, spacing_m),
            rx: array_positions(rx_center, rx_axis, n_rx, spacing_m),
            freqs_hz,
        }
    }

    /// Why this geometry is not a valid room and link, if it is not.
    pub fn check(&self) -> Result<(), String> {
        let [w, d, h] = self.room;
        if !(w > 0.5 && d > 0.5 && h > 0.5 && w <= 100.0 && d <= 100.0 && h <= 100.0) {
            return Err(format!(
                "room {:?} must be 0.5-100 m on each side",
                self.room
            ));
        }
        if self.tx.is_empty() || self.rx.is_empty() {
            return Err("no antennas".to_string());
        }
        let all = self.tx.iter().chain(&self.rx);
        if all.clone().any(|p| p.iter().any(|v| !v.is_finite())) {
            return Err("antenna positions must be finite".to_string());
        }
        if self.freqs_hz.iter().any(|f| !f.is_finite()) {
            return Err("subcarrier frequencies must be finite".to_string());
        }
        Ok(())
    }

    /// Why a valid link still cannot place anyone, if it cannot: one antenna on each side
    /// gives no angle, and fewer than two subcarriers nothing to align.
    pub fn can_localize(&self) -> Result<(), String> {
        if self.tx.len() < 2 && self.rx.len() < 2 {
            return Err(
                "one antenna on each side gives no angle: at least two are needed on one side"
                    .to_string(),
            );
        }
        if self.freqs_hz.iter().filter(|f| **f > 0.0).count() < 2 {
            return Err("at least two subcarriers with a frequency are needed".to_string());
        }
        Ok(())
    }
}

fn array_positions(center: [f64; 3], axis: [f64; 3], n: usize, spacing: f64) -> Vec<[f64; 3]> {
    let norm = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let a = if norm > 1e-12 {
        [axis[0] / norm, axis[1] / norm, axis[2] / norm]
    } else {
        [0.0, 1.0, 0.0]
    };
    (0..n)
        .map(|i| {
            let s = (i as f64 - (n as f64 - 1.0) / 2.0) * spacing;
            [
                center[0] + a[0] * s,
                center[1] + a[1] * s,
                center[2] + a[2] * s,
            ]
        })
        .collect()
}

/// The localizer's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalizerConfig {
    /// Spacing of the coarse floor grid, metres (refined to a quarter of it at the peak).
    pub grid_step_m: f64,
    /// Height of the scattering body centre the grid sits at, metres.
    pub body_height_m: f64,
    /// Frames per window (one fix per window).
    pub window_packets: usize,
    /// Time constant of the background's update, seconds.
    pub background_tau_s: f64,
    /// Subcarriers used at most (evenly chosen): the band adds little range at 20 MHz,
    /// and fewer subcarriers both cost less and located better on held-out rooms.
    pub max_subcarriers: usize,
    /// Frames averaged before the first background exists.
    pub bootstrap_packets: usize,
    /// Frames between refits of the chain reference to the background.
    pub refit_packets: usize,
    /// Whether the reference models the six first-order reflections (else line of
    /// sight only).
    pub fit_reflections: bool,
    /// Whether each window's mean is taken out of its frames before the map (keeps the
    /// fast Doppler of a body's own paths, drops slow changes such as its shadow on the
    /// static paths).
    pub window_highpass: bool,
    /// A person moves little between windows: the map is weighted towards the last fix
    /// (Gaussian of this spread, metres, growing by `continuity_speed_mps` a second since
    /// it), never below a quarter. 0 turns it off.
    pub continuity_m: f64,
    /// How fast the continuity's spread grows, metres per second.
    pub continuity_speed_mps: f64,
}

impl Default for LocalizerConfig {
    fn default() -> Self {
        LocalizerConfig {
            grid_step_m: 0.2,
            body_height_m: 1.0,
            window_packets: 25,
            background_tau_s: 10.0,
            max_subcarriers: 10,
            bootstrap_packets: 100,
            refit_packets: 100,
            fit_reflections: true,
            window_highpass: true,
            continuity_m: 0.0,
            continuity_speed_mps: 2.0,
        }
    }
}

/// A position: where the moving part of the channel came from over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Source time of the window's last frame, seconds.
    pub t: f64,
    /// Floor position in the room frame, metres.
    pub x: f64,
    pub y: f64,
    /// The map's peak over its mean (1: flat, no direction stands out).
    pub sharpness: f64,
}

/// One link's localizer (see the module docs).
pub struct Localizer {
    geometry: LinkGeometry,
    config: LocalizerConfig,
    n_tx: usize,
    n_rx: usize,
    /// Indices of the subcarriers used, into the frame's subcarrier axis.
    subs: Vec<usize>,
    /// Their frequency offsets from the first used one, in subcarrier spacings (for the
    /// timing slope).
    bins: Vec<f64>,
    freqs: Vec<f64>,
    /// Background, `[link * K + k]`.
    background: Vec<Complex64>,
    bootstrap: Vec<Vec<Complex64>>,
    /// `conj(c_l e^{i theta_k}) / |c_l|`, `[link * K + k]`: turns `D` into true phases.
    reference: Vec<Complex64>,
    since_refit: usize,
    /// Grid points (x, y) and their steering vectors, conjugated, `[g * LK + lk]`.
    points: Vec<[f64; 2]>,
    steer: Vec<Complex32>,
    /// The window's moving parts, `[frame * LK + lk]`.
    window: Vec<Complex32>,
    window_moving: bool,
    last: Option<Fix>,
    last_t: Option<f64>,
    /// The grid's spacing in use (the configured one, or coarser for a large floor).
    step: f64,
}

impl Localizer {
    /// A localizer for frames of `n_tx x n_rx` antennas and the geometry's subcarriers.
    pub fn new(geometry: LinkGeometry, config: LocalizerConfig) -> Result<Self, String> {
        geometry.check()?;
        geometry.can_localize()?;
        if !(config.grid_step_m >= 0.02 && config.grid_step_m <= 2.0) {
            return Err("grid_step_m must be 0.02-2 m".to_string());
        }
        if config.window_packets == 0 || config.bootstrap_packets == 0 || config.max_subcarriers < 2
        {
            return Err("window, bootstrap and subcarrier counts must be positive".to_string());
        }
        let n_tx = geometry.tx.len();
        let n_rx = geometry.rx.len();
        let usable: Vec<usize> = (0..geometry.freqs_hz.len())
            .filter(|&i| geometry.freqs_hz[i] > 0.0)
            .collect();
        let take = config.max_subcarriers.min(usable.len());
        let subs: Vec<usize> = (0..take)
            .map(|i| usable[(i * (usable.len() - 1)) / (take - 1).max(1)])
            .collect();
        let freqs: Vec<f64> = subs.iter().map(|&i| geometry.freqs_hz[i]).collect();
        let spacing = 312_500.0;
        let bins: Vec<f64> = freqs.iter().map(|f| (f - freqs[0]) / spacing).collect();
        let [w, d, _] = geometry.room;
        // The map's memory and time grow with the floor: a large room gets a coarser grid
        // (at most MAX_GRID_POINTS points) rather than megabytes per environment.
        let step = config
            .grid_step_m
            .max((w * d / MAX_GRID_POINTS as f64).sqrt());
        let mut points = Vec::new();
        let mut x = step / 2.0;
        while x < w {
            let mut y = step / 2.0;
            while y < d {
                points.push([x, y]);
                y += step;
            }
            x += step;
        }
        let mut me = Localizer {
            n_tx,
            n_rx,
            subs,
            bins,
            freqs,
            background: Vec::new(),
            bootstrap: Vec::new(),
            reference: Vec::new(),
            since_refit: 0,
            steer: Vec::new(),
            points,
            window: Vec::new(),
            window_moving: false,
            last: None,
            last_t: None,
            step,
            geometry,
            config,
        };
        me.steer = me
            .points
            .iter()
            .flat_map(|p| me.steering([p[0], p[1], me.config.body_height_m]))
            .map(|c| Complex32::new(c.re as f32, -c.im as f32))
            .collect();
        Ok(me)
    }

    /// The geometry this localizer was built for.
    pub fn geometry(&self) -> &LinkGeometry {
        &self.geometry
    }

    /// The last fix made.
    pub fn last(&self) -> Option<Fix> {
        self.last
    }

    fn links(&self) -> usize {
        self.n_tx * self.n_rx
    }

    /// The phases a point scatterer at `p` gives every pair and used subcarrier.
    fn steering(&self, p: [f64; 3]) -> Vec<Complex64> {
        let mut out = Vec::with_capacity(self.links() * self.freqs.len());
        for t in &self.geometry.tx {
            for r in &self.geometry.rx {
                let d = dist(*t, p) + dist(p, *r);
                for f in &self.freqs {
                    out.push(Complex64::from_polar(
                        1.0,
                        -2.0 * std::f64::consts::PI * f * d / C,
                    ));
                }
            }
        }
        out
    }

    /// One frame, `csi[tx][rx][sub]` as `(n_tx, n_rx, n_sub)` row-major, at source time
    /// `t`; `moving`: whether the sensor saw motion in this frame. Returns a fix when a
    /// window ends in which something moved. Frames of another shape are ignored.
    pub fn push(&mut self, t: f64, csi: &ndarray::Array3<Complex32>, moving: bool) -> Option<Fix> {
        let shape = csi.shape();
        if shape[0] < self.n_tx || shape[1] != self.n_rx || shape[2] != self.geometry.freqs_hz.len()
        {
            return None;
        }
        let k = self.subs.len();
        let mut h = Vec::with_capacity(self.links() * k);
        for i in 0..self.n_tx {
            for j in 0..self.n_rx {
                for &s in &self.subs {
                    let v = csi[[i, j, s]];
                    h.push(Complex64::new(v.re as f64, v.im as f64));
                }
            }
        }
        if h.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
            return None;
        }
        if self.background.is_empty() {
            self.bootstrap.push(h);
            if self.bootstrap.len() >= self.config.bootstrap_packets {
                self.start_background();
            }
            return None;
        }
        let aligned = align(&h, &self.background, &self.bins, k)?;
        // The background follows at its time constant whatever the packet rate.
        let dt = self.last_t.map_or(0.01, |last| (t - last).clamp(0.0, 1.0));
        self.last_t = Some(t);
        let alpha = (dt / self.config.background_tau_s).clamp(0.0, 1.0);
        for ((s, a), r) in self
            .background
            .iter_mut()
            .zip(&aligned)
            .zip(&self.reference)
        {
            let moving_part = (a - *s) * r;
            self.window
                .push(Complex32::new(moving_part.re as f32, moving_part.im as f32));
            *s += alpha * (a - *s);
        }
        self.window_moving |= moving;
        self.since_refit += 1;
        if self.since_refit >= self.config.refit_packets {
            self.refit();
        }
        let lk = self.links() * k;
        if self.window.len() / lk < self.config.window_packets {
            return None;
        }
        let fix = if self.window_moving {
            self.locate(t)
        } else {
            None
        };
        self.window.clear();
        self.window_moving = false;
        if fix.is_some() {
            self.last = fix;
        }
        fix
    }

    fn start_background(&mut self) {
        let k = self.subs.len();
        let mut s = self.bootstrap[0].clone();
        for _ in 0..3 {
            let mut acc = vec![Complex64::new(0.0, 0.0); s.len()];
            let mut n = 0.0;
            for h in &self.bootstrap {
                if let Some(a) = align(h, &s, &self.bins, k) {
                    for (x, v) in acc.iter_mut().zip(a) {
                        *x += v;
                    }
                    n += 1.0;
                }
            }
            if n > 0.0 {
                s = acc.into_iter().map(|v| v / n).collect();
            }
        }
        self.background = s;
        self.bootstrap = Vec::new();
        self.refit();
    }

    /// Fits the background to the room's static paths (see the module docs, step 3).
    fn refit(&mut self) {
        self.since_refit = 0;
        let k = self.subs.len();
        let l = self.links();
        // Model paths per pair: line of sight, then six surfaces (x=0, x=W, y=0, y=D,
        // floor, ceiling), each `lambda / (4 pi d) e^{-i 2 pi f d / c}`.
        let [w, d, hgt] = self.geometry.room;
        let planes = [(0usize, 0.0), (0, w), (1, 0.0), (1, d), (2, 0.0), (2, hgt)];
        let mut model = vec![[Complex64::new(0.0, 0.0); 7]; l * k];
        let mut li = 0;
        for t in &self.geometry.tx {
            for r in &self.geometry.rx {
                let mut lengths = [dist(*t, *r); 7];
                for (pi, (axis, c)) in planes.iter().enumerate() {
                    let mut img = *t;
                    img[*axis] = 2.0 * c - t[*axis];
                    lengths[pi + 1] = dist(img, *r);
                }
                for (ki, f) in self.freqs.iter().enumerate() {
                    let lambda = C / f;
                    for (pi, len) in lengths.iter().enumerate() {
                        model[li * k + ki][pi] = Complex64::from_polar(
                            lambda / (4.0 * std::f64::consts::PI * len),
                            -2.0 * std::f64::consts::PI * f * len / C,
                        );
                    }
                }
                li += 1;
            }
        }
        let s = &self.background;
        let fit_reflections = self.config.fit_reflections;
        let mut g = [if fit_reflections { 0.4 } else { 0.0 }; 6];
        let mut theta = vec![Complex64::new(1.0, 0.0); k];
        let mut chain = vec![Complex64::new(1.0, 0.0); l];
        let predicted = |g: &[f64; 6], i: usize| -> Complex64 {
            let m = &model[i];
            m[0] + (0..6).map(|p| m[p + 1] * g[p]).sum::<Complex64>()
        };
        for _ in 0..12 {
            for (li, c) in chain.iter_mut().enumerate() {
                let (mut num, mut den) = (Complex64::new(0.0, 0.0), 0.0);
                for ki in 0..k {
                    let m = predicted(&g, li * k + ki) * theta[ki];
                    num += s[li * k + ki] * m.conj();
                    den += m.norm_sqr();
                }
                *c = if den > 0.0 {
                    num / den
                } else {
                    Complex64::new(1.0, 0.0)
                };
            }
            for (ki, th) in theta.iter_mut().enumerate() {
                let sum: Complex64 = (0..l)
                    .map(|li| s[li * k + ki] * (chain[li] * predicted(&g, li * k + ki)).conj())
                    .sum();
                *th = if sum.norm() > 0.0 {
                    sum / sum.norm()
                } else {
                    Complex64::new(1.0, 0.0)
                };
            }
            // Reflectivities: real least squares on what the line of sight leaves.
            let mut ata = [[0.0f64; 6]; 6];
            let mut atb = [0.0f64; 6];
            for (li, c) in chain.iter().enumerate() {
                for (ki, th) in theta.iter().enumerate() {
                    let i = li * k + ki;
                    let scale = c * th;
                    if scale.norm() == 0.0 {
                        continue;
                    }
                    let resid = s[i] / scale - model[i][0];
                    for a in 0..6 {
                        let ma = model[i][a + 1];
                        atb[a] += ma.re * resid.re + ma.im * resid.im;
                        for b in 0..6 {
                            let mb = model[i][b + 1];
                            ata[a][b] += ma.re * mb.re + ma.im * mb.im;
                        }
                    }
                }
            }
            if !fit_reflections {
                continue;
            }
            if let Some(sol) = solve6(ata, atb) {
                for (gp, v) in g.iter_mut().zip(sol) {
                    *gp = if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                }
            }
        }
        self.reference = (0..l * k)
            .map(|i| {
                let c = chain[i / k] * theta[i % k];
                let n = chain[i / k].norm();
                if n > 0.0 && c.norm() > 0.0 {
                    c.conj() / n
                } else {
                    Complex64::new(0.0, 0.0)
                }
            })
            .collect();
    }

    /// The window's map and its refined peak.
    fn locate(&self, t: f64) -> Option<Fix> {
        let lk = self.steer.len() / self.points.len().max(1);
        if lk == 0 {
            return None;
        }
        let mut window = self.window.clone();
        if self.config.window_highpass {
            let n = (window.len() / lk).max(1) as f32;
            for c in 0..lk {
                let mean = window.iter().skip(c).step_by(lk).sum::<Complex32>() / n;
                for v in window.iter_mut().skip(c).step_by(lk) {
                    *v -= mean;
                }
            }
        }
        let frames: Vec<&[Complex32]> = window.chunks_exact(lk).collect();
        let power = |steer: &[Complex32]| -> f64 {
            frames
                .iter()
                .map(|y| {
                    let mut acc = Complex32::new(0.0, 0.0);
                    for (a, b) in y.iter().zip(steer) {
                        acc += a * b;
                    }
                    acc.norm_sqr() as f64
                })
                .sum()
        };
        let mut map: Vec<f64> = self.steer.chunks_exact(lk).map(power).collect();
        if let (Some(last), true) = (self.last, self.config.continuity_m > 0.0) {
            let age = (t - last.t).max(0.0);
            if age < 5.0 {
                let spread = self.config.continuity_m + self.config.continuity_speed_mps * age;
                for (m, p) in map.iter_mut().zip(&self.points) {
                    let d2 = (p[0] - last.x).powi(2) + (p[1] - last.y).powi(2);
                    *m *= 0.25 + 0.75 * (-d2 / (2.0 * spread * spread)).exp();
                }
            }
        }
        let (best, peak) = map
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, v)| (i, *v))?;
        let mean = map.iter().sum::<f64>() / map.len() as f64;
        if !(peak > 0.0 && mean > 0.0) {
            return None;
        }
        // Refine on a grid a quarter as fine around the peak.
        let [x0, y0] = self.points[best];
        let step = self.step / 4.0;
        let [w, d, _] = self.geometry.room;
        let (mut bx, mut by, mut bp) = (x0, y0, peak);
        for dx in -3i32..=3 {
            for dy in -3i32..=3 {
                let (x, y) = (x0 + dx as f64 * step, y0 + dy as f64 * step);
                if (dx == 0 && dy == 0) || x <= 0.0 || y <= 0.0 || x >= w || y >= d {
                    continue;
                }
                let s: Vec<Complex32> = self
                    .steering([x, y, self.config.body_height_m])
                    .into_iter()
                    .map(|c| Complex32::new(c.re as f32, -c.im as f32))
                    .collect();
                let p = power(&s);
                if p > bp {
                    (bx, by, bp) = (x, y, p);
                }
            }
        }
        Some(Fix {
            t,
            x: bx,
            y: by,
            sharpness: peak / mean,
        })
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// `h` turned by one phase line `a + b * bin` and scaled by one gain to best match `s`
/// (all pairs together); `k` subcarriers per pair. None when `h` is all zero.
fn align(h: &[Complex64], s: &[Complex64], bins: &[f64], k: usize) -> Option<Vec<Complex64>> {
    let mut z = vec![Complex64::new(0.0, 0.0); k];
    for (i, (a, b)) in h.iter().zip(s).enumerate() {
        z[i % k] += a * b.conj();
    }
    // Slope per subcarrier spacing from neighbouring products, each by its own spacing.
    let (mut num, mut den) = (0.0, 0.0);
    for i in 1..k {
        let p = z[i] * z[i - 1].conj();
        let gap = bins[i] - bins[i - 1];
        if gap > 0.0 && p.norm() > 0.0 {
            num += p.norm() * p.arg() / gap;
            den += p.norm();
        }
    }
    let slope = if den > 0.0 { num / den } else { 0.0 };
    let common: Complex64 = z
        .iter()
        .zip(bins)
        .map(|(v, b)| v * Complex64::from_polar(1.0, -slope * b))
        .sum();
    if common.norm() == 0.0 {
        return None;
    }
    let a = common.arg();
    let rot: Vec<Complex64> = bins
        .iter()
        .map(|b| Complex64::from_polar(1.0, -(a + slope * b)))
        .collect();
    let turned: Vec<Complex64> = h.iter().enumerate().map(|(i, v)| v * rot[i % k]).collect();
    let num: f64 = turned.iter().zip(s).map(|(a, b)| (a * b.conj()).re).sum();
    let den: f64 = s.iter().map(|v| v.norm_sqr()).sum();
    let gain = if den > 0.0 { num / den } else { 1.0 };
    if gain.is_nan() || gain <= 1e-9 {
        return None;
    }
    Some(turned.into_iter().map(|v| v / gain).collect())
}

/// Solves a 6x6 symmetric system by Gaussian elimination with partial pivoting.
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let piv = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for row in col + 1..6 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 6];
    for row in (0..6).rev() {
        let s: f64 = (row + 1..6).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn geometry() -> LinkGeometry {
        let carrier = 5.18e9;
        let freqs = (0..30)
            .map(|i| carrier + (i as f64 * 2.0 - 29.0) * 312_500.0)
            .collect();
        LinkGeometry::from_arrays(
            [6.0, 5.0, 3.0],
            [0.1, 2.0, 1.2],
            [0.0, 1.0, 0.0],
            3,
            [5.9, 3.0, 1.0],
            [0.0, 1.0, 0.0],
            3,
            0.5 * C / carrier,
            freqs,
        )
    }

    /// Line of sight plus one scatterer circling `target` by a few centimetres, under
    /// every per-packet offset a card adds and fixed random chain phases.
    fn frames(g: &LinkGeometry, target: [f64; 2], n: usize) -> Vec<(f64, Array3<Complex32>)> {
        let chain_tx = [0.7, -2.1, 2.9];
        let chain_rx = [1.3, 0.2, -1.7];
        let [w, d, h] = g.room;
        let planes = [
            (0, 0.0, 0.5),
            (0, w, 0.5),
            (1, 0.0, 0.5),
            (1, d, 0.5),
            (2, 0.0, 0.3),
            (2, h, 0.3),
        ];
        (0..n)
            .map(|t| {
                let ts = t as f64 * 0.01;
                let cfo = (t as f64 * 2.399).sin() * 3.0;
                let slope = (t as f64 * 0.731).cos() * 0.05;
                let ang = ts * 2.0 * std::f64::consts::PI * 0.7;
                let p = [
                    target[0] + 0.05 * ang.cos(),
                    target[1] + 0.05 * ang.sin(),
                    1.0,
                ];
                let mut h = Array3::zeros((3, 3, g.freqs_hz.len()));
                for (i, tx) in g.tx.iter().enumerate() {
                    for (j, rx) in g.rx.iter().enumerate() {
                        // Line of sight and the six first-order reflections (walls 0.5,
                        // floor and ceiling 0.3), as in a real room.
                        let mut statics = vec![(dist(*tx, *rx), 1.0)];
                        for (axis, c, gain) in planes {
                            let mut img = *tx;
                            img[axis] = 2.0 * c - tx[axis];
                            statics.push((dist(img, *rx), gain));
                        }
                        let d_body = dist(*tx, p) + dist(p, *rx);
                        for (k, f) in g.freqs_hz.iter().enumerate() {
                            let w = -2.0 * std::f64::consts::PI * f / C;
                            let mut clean = Complex64::from_polar(0.02, w * d_body);
                            for (d, gain) in &statics {
                                clean += Complex64::from_polar(gain / d, w * d);
                            }
                            let off = chain_tx[i] + chain_rx[j] + cfo + slope * (2 * k) as f64;
                            let v = clean * Complex64::from_polar(1.0, off);
                            h[[i, j, k]] = Complex32::new(v.re as f32, v.im as f32);
                        }
                    }
                }
                (ts, h)
            })
            .collect()
    }

    #[test]
    fn finds_a_moving_scatterer_through_card_offsets() {
        let g = geometry();
        // Off the line of sight: a scatterer on it has the line of sight's angles and
        // delay, so the per-packet alignment takes it for the card's offsets (module docs).
        for target in [[2.0, 1.0], [4.5, 4.0], [3.0, 4.2]] {
            let mut loc = Localizer::new(g.clone(), LocalizerConfig::default()).unwrap();
            let fixes: Vec<Fix> = frames(&g, target, 400)
                .into_iter()
                .filter_map(|(t, h)| loc.push(t, &h, true))
                .collect();
            assert!(fixes.len() >= 8, "{} fixes", fixes.len());
            let last = fixes.last().unwrap();
            let err = (last.x - target[0]).hypot(last.y - target[1]);
            assert!(
                err < 0.5,
                "target {target:?}: fix {last:?}, error {err:.2} m"
            );
            assert!(last.sharpness > 1.5);
        }
    }

    #[test]
    fn no_fix_while_nothing_moves_and_wrong_shapes_are_ignored() {
        let g = geometry();
        let mut loc = Localizer::new(g.clone(), LocalizerConfig::default()).unwrap();
        for (t, h) in frames(&g, [2.0, 1.0], 300) {
            assert!(loc.push(t, &h, false).is_none());
            assert!(loc.push(t, &Array3::zeros((1, 1, 30)), true).is_none());
        }
        assert!(loc.last().is_none());
    }

    #[test]
    fn a_large_floor_gets_a_coarser_grid_not_unbounded_memory() {
        let mut g = geometry();
        g.room = [100.0, 100.0, 3.0];
        let loc = Localizer::new(g, LocalizerConfig::default()).unwrap();
        assert!(loc.points.len() <= MAX_GRID_POINTS, "{}", loc.points.len());
        assert!(loc.points.len() > MAX_GRID_POINTS / 2);
    }

    #[test]
    fn geometries_that_cannot_localize_are_refused() {
        let mut g = geometry();
        g.tx.truncate(1);
        g.rx.truncate(1);
        let err = Localizer::new(g, LocalizerConfig::default()).err().unwrap();
        assert!(err.contains("angle"), "{err}");
        let mut g = geometry();
        g.room = [0.1, 5.0, 3.0];
        assert!(Localizer::new(g, LocalizerConfig::default()).is_err());
        let mut g = geometry();
        g.tx[0][0] = f64::NAN;
        assert!(Localizer::new(g, LocalizerConfig::default()).is_err());
    }
}
