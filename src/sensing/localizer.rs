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
//! Options (measured in `benches/position.py`, `docs/sensing.md` "Position"):
//! 5. **Tracker** ([`MapTracker`], `track_speed_mps`): a grid Bayes filter that takes each
//!    window's map as a likelihood, so a wrong lobe briefly stronger does not take the fix.
//!    Off by default: it helped on "val" draws but not on "test" ones, because one link's
//!    bad windows come in whole stretches where the person's lobe is not among the map's
//!    peaks at all, which no choice among peaks mends.
//! 6. **Several links** ([`MultiLocalizer`]): the latest maps of all links of one room
//!    multiplied on the common grid ([`fused_log_map`]); a ghost lobe of one link rarely
//!    has a partner in another's (held out: p90 2.5 m with one link, 1.2 m with two, 0.8 m
//!    with three).
//!
//! Blind spot: a person standing on the line of sight scatters with the line of sight's
//! own angles and delay, which the per-packet alignment cannot tell from the card's
//! offsets; the fix there comes from the map's side lobes (tested off the line).
//!
//! Cost: with 10 subcarriers, 9 pairs, a 0.2 m grid over a 6 x 5 m room (750 points)
//! and 25-frame windows: 1.7 M complex multiply-adds per window, four windows a second.
use num_complex::{Complex32, Complex64};

use super::frame_block::FrameBlock;

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
    /// Lobe-keeping tracker ([`MapTracker`]): the fastest a person is taken to walk, m/s;
    /// each window's map is then a likelihood multiplied into a belief over the floor
    /// carried from window to window, and the fix is the map's peak nearest the belief's
    /// (a wrong lobe briefly stronger does not pull the fix away). 0 turns it off.
    pub track_speed_mps: f64,
    /// Whether each antenna pair's moving part is scaled to unit power over the window
    /// before the map (every pair weighs alike, whatever its gain or multipath). Measured
    /// on "val" draws: no gain (`benches/position.py --ablation`), so off.
    pub pair_normalize: bool,
    /// Whether each frame's moving part is scaled to unit power before the map (every
    /// frame of the window weighs alike). Measured: no gain, so off.
    pub frame_normalize: bool,
    /// Lobes found per window by successive cancellation ([`Localizer::last_lobes`]):
    /// the map's peak, then the peak of the map left once the steering vectors around it
    /// are projected out of the window's frames, and so on. 0 (the default) finds none.
    pub lobes: usize,
    /// The cells projected out around each lobe: within this distance, metres (a walking
    /// body is not a point: 0.3 m takes the cell and its 8 neighbours at 0.2 m).
    pub lobe_radius_m: f64,
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
            // Off: at 3 m/s (the best on "val" draws) it cut the p90 there but not on the
            // test draws (`docs/sensing.md`, "Position").
            track_speed_mps: 0.0,
            pair_normalize: false,
            frame_normalize: false,
            lobes: 0,
            lobe_radius_m: 0.3,
        }
    }
}

/// Lobes per window at most ([`LocalizerConfig::lobes`]).
pub const MAX_LOBES: usize = 6;

/// One lobe of a window's map found by successive cancellation (see
/// [`LocalizerConfig::lobes`]): where, and how much of the window it explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lobe {
    /// Floor position (the coarse grid cell's centre), metres in the room frame.
    pub x: f64,
    /// Floor position along the room's depth, metres.
    pub y: f64,
    /// Share of the window's moving energy taken out with this lobe (0-1).
    pub share: f64,
    /// The map's peak at this lobe, over the first lobe's (the first is 1).
    pub peak: f64,
}

/// A position: where the moving part of the channel came from over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Source time of the window's last frame, seconds.
    pub t: f64,
    /// Floor position in the room frame along its width, metres.
    pub x: f64,
    /// Floor position in the room frame along its depth, metres.
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
    /// The last window's coarse map, one power per grid point (before any prior).
    map: Vec<f64>,
    /// Grid points along x and y (`points[ix * ny + iy]`).
    nx: usize,
    ny: usize,
    tracker: Option<MapTracker>,
    /// The last located window's frames as the map saw them, `[frame * LK + lk]`.
    last_window: Vec<Complex32>,
    last_lobes: Vec<Lobe>,
    /// Takes out the receive chains' quarter-turn phase steps ([`super::chains`]).
    chains: super::chains::ChainAligner,
}

impl Localizer {
    /// A localizer for frames of `n_tx x n_rx` antennas and the geometry's subcarriers.
    pub fn new(geometry: LinkGeometry, config: LocalizerConfig) -> Result<Self, String> {
        geometry.check()?;
        geometry.can_localize()?;
        if !(config.grid_step_m >= 0.02 && config.grid_step_m <= 2.0) {
            return Err("grid_step_m must be 0.02-2 m".to_string());
        }
        if !(config.track_speed_mps >= 0.0 && config.track_speed_mps <= 20.0) {
            return Err("track_speed_mps must be 0-20 m/s".to_string());
        }
        if config.window_packets == 0 || config.bootstrap_packets == 0 || config.max_subcarriers < 2
        {
            return Err("window, bootstrap and subcarrier counts must be positive".to_string());
        }
        if config.lobes > MAX_LOBES || !(0.0..=2.0).contains(&config.lobe_radius_m) {
            return Err(format!(
                "lobes must be 0-{MAX_LOBES} and lobe_radius_m 0-2 m"
            ));
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
        let (points, nx, ny) = floor_grid(w, d, step);
        let tracker = (config.track_speed_mps > 0.0)
            .then(|| MapTracker::new(nx, ny, step, config.track_speed_mps));
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
            map: Vec::new(),
            nx,
            ny,
            tracker,
            last_window: Vec::new(),
            last_lobes: Vec::new(),
            chains: Default::default(),
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

    /// The floor grid's points (x, y), metres, in the order of [`Localizer::last_map`].
    pub fn grid(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// The last located window's coarse map: back-projected power per grid point.
    pub fn last_map(&self) -> &[f64] {
        &self.map
    }

    /// The last located window's lobes, strongest first (none unless
    /// [`LocalizerConfig::lobes`] is set).
    pub fn last_lobes(&self) -> &[Lobe] {
        &self.last_lobes
    }

    fn links(&self) -> usize {
        self.n_tx * self.n_rx
    }

    /// What successive cancellation needs of the last located window.
    fn lobe_view(&self) -> LobeView<'_> {
        LobeView {
            frames: &self.last_window,
            steer: &self.steer,
            points: &self.points,
            ny: self.ny,
            nx: self.nx,
            step: self.step,
            radius_m: self.config.lobe_radius_m,
        }
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
        let csi = self.chains.align(csi);
        if self.chains.take_began_stepping() {
            // The background so far was learned with the card's phase steps in it.
            self.background.clear();
            self.bootstrap.clear();
            self.window.clear();
            self.window_moving = false;
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
    fn locate(&mut self, t: f64) -> Option<Fix> {
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
        let k = self.subs.len().max(1);
        if self.config.pair_normalize {
            for l in 0..lk / k {
                let idx = |v: usize| v % lk / k == l;
                let (sum, n) = window
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| idx(*i))
                    .fold((0.0f32, 0usize), |(s, n), (_, v)| (s + v.norm_sqr(), n + 1));
                let rms = (sum / n.max(1) as f32).sqrt();
                if rms > 0.0 && rms.is_finite() {
                    for (_, v) in window.iter_mut().enumerate().filter(|(i, _)| idx(*i)) {
                        *v /= rms;
                    }
                }
            }
        }
        if self.config.frame_normalize {
            for f in window.chunks_exact_mut(lk) {
                let norm = f.iter().map(|v| v.norm_sqr()).sum::<f32>().sqrt();
                if norm > 0.0 && norm.is_finite() {
                    f.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
        let block = FrameBlock::new(&window, lk);
        let power = |steer: &[Complex32]| block.power(steer);
        let mut map: Vec<f64> = self.steer.chunks_exact(lk).map(power).collect();
        self.map.clone_from(&map);
        self.last_window = window;
        if self.config.lobes > 0 {
            self.last_lobes = successive_lobes(&[self.lobe_view()], self.config.lobes);
        }
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
        let top = map.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let best = match self.tracker.as_mut() {
            // The belief picks the lobe; the fix is that lobe's own peak in this window.
            Some(tracker) if top > 0.0 => {
                let likelihood: Vec<f64> = map.iter().map(|m| m / top).collect();
                climb(&map, self.nx, self.ny, tracker.update(t, &likelihood)?)
            }
            _ => argmax(&map)?,
        };
        let peak = map[best];
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

/// One link's last window for successive cancellation ([`successive_lobes`]).
struct LobeView<'a> {
    /// The window's frames as the map saw them, `[frame * LK + lk]`.
    frames: &'a [Complex32],
    /// Conjugated steering vectors, `[g * LK + lk]`.
    steer: &'a [Complex32],
    points: &'a [[f64; 2]],
    nx: usize,
    ny: usize,
    step: f64,
    radius_m: f64,
}

impl LobeView<'_> {
    fn lk(&self) -> usize {
        self.steer.len() / self.points.len().max(1)
    }

    /// The grid cells within `radius_m` of `cell` (itself included).
    fn around(&self, cell: usize) -> Vec<usize> {
        let r = (self.radius_m / self.step + 1e-9).floor() as i64;
        let (ix, iy) = ((cell / self.ny) as i64, (cell % self.ny) as i64);
        let mut out = Vec::new();
        for dx in -r..=r {
            for dy in -r..=r {
                let (x, y) = (ix + dx, iy + dy);
                let inside = x >= 0 && y >= 0 && x < self.nx as i64 && y < self.ny as i64;
                if inside && ((dx * dx + dy * dy) as f64).sqrt() * self.step <= self.radius_m + 1e-9
                {
                    out.push(x as usize * self.ny + y as usize);
                }
            }
        }
        out
    }
}

/// Back-projected power of `frames` at every grid point (as [`Localizer`]'s map), frame
/// by frame: what [`super::frame_block::FrameBlock::power`] must equal to the bit (and the
/// baseline `cargo bench --bench dsp -- localizer_map` times it against).
pub fn power_map(frames: &[Complex32], steer: &[Complex32], lk: usize) -> Vec<f64> {
    steer
        .chunks_exact(lk)
        .map(|s| {
            frames
                .chunks_exact(lk)
                .map(|y| {
                    let mut acc = Complex32::new(0.0, 0.0);
                    for (a, b) in y.iter().zip(s) {
                        acc += a * b;
                    }
                    acc.norm_sqr() as f64
                })
                .sum()
        })
        .collect()
}

/// Up to `n` lobes of one or several links' last windows (all on one floor grid), by
/// successive cancellation: the (fused) map's peak is a lobe; the steering vectors of the
/// cells around it are projected out of every link's frames, which removes that
/// scatterer's whole response — its ghost lobes and sidelobes included, which is what
/// hides a second person in the first map; the map of what is left gives the next lobe.
/// A lobe's `share` is the window energy its projection took out (mean over links), its
/// `peak` the map's value there over the first map's peak (mean over links).
fn successive_lobes(views: &[LobeView<'_>], n: usize) -> Vec<Lobe> {
    let Some(first) = views.first() else {
        return Vec::new();
    };
    let n_points = first.points.len();
    let energy = |f: &[Complex32]| f.iter().map(|v| v.norm_sqr() as f64).sum::<f64>();
    let mut residual: Vec<Vec<Complex32>> = views.iter().map(|v| v.frames.to_vec()).collect();
    let totals: Vec<f64> = views.iter().map(|v| energy(v.frames)).collect();
    // Each link's orthonormal basis of everything projected out so far.
    let mut bases: Vec<Vec<Vec<Complex64>>> = vec![Vec::new(); views.len()];
    let mut tops: Vec<f64> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let maps: Vec<Vec<f64>> = views
            .iter()
            .zip(&residual)
            .map(|(v, f)| power_map(f, v.steer, v.lk()))
            .collect();
        if tops.is_empty() {
            tops = maps
                .iter()
                .map(|m| m.iter().copied().fold(0.0, f64::max))
                .collect();
        }
        let cell = if views.len() == 1 {
            argmax(&maps[0])
        } else {
            let refs: Vec<&[f64]> = maps.iter().map(|m| m.as_slice()).collect();
            fused_log_map(&refs, n_points).as_deref().and_then(argmax)
        };
        let Some(cell) = cell else { break };
        let mut share = 0.0;
        let mut peak = 0.0;
        for (li, v) in views.iter().enumerate() {
            let lk = v.lk();
            let before = energy(&residual[li]);
            let basis = &mut bases[li];
            let start = basis.len();
            for c in v.around(cell) {
                // The true steering vector (the stored one is conjugated), made
                // orthogonal to everything already projected out.
                let mut a: Vec<Complex64> = v.steer[c * lk..(c + 1) * lk]
                    .iter()
                    .map(|s| Complex64::new(s.re as f64, -s.im as f64))
                    .collect();
                for q in basis.iter() {
                    let dot: Complex64 = q.iter().zip(&a).map(|(qi, ai)| qi.conj() * ai).sum();
                    a.iter_mut().zip(q).for_each(|(ai, qi)| *ai -= dot * qi);
                }
                let norm = a.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
                if norm > 1e-6 * (lk as f64).sqrt() && basis.len() < lk {
                    basis.push(a.into_iter().map(|x| x / norm).collect());
                }
            }
            for y in residual[li].chunks_exact_mut(lk) {
                for q in &basis[start..] {
                    let dot: Complex64 = q
                        .iter()
                        .zip(y.iter())
                        .map(|(qi, yi)| qi.conj() * Complex64::new(yi.re as f64, yi.im as f64))
                        .sum();
                    for (yi, qi) in y.iter_mut().zip(q) {
                        let d = dot * qi;
                        *yi -= Complex32::new(d.re as f32, d.im as f32);
                    }
                }
            }
            let after = energy(&residual[li]);
            if totals[li] > 0.0 {
                share += ((before - after) / totals[li]).max(0.0);
            }
            if tops[li] > 0.0 {
                peak += maps[li][cell] / tops[li];
            }
        }
        let k = views.len() as f64;
        out.push(Lobe {
            x: first.points[cell][0],
            y: first.points[cell][1],
            share: share / k,
            peak: peak / k,
        });
    }
    out
}

/// The floor grid: cell centres `step` apart, x-major (`[ix * ny + iy]`), and its size.
fn floor_grid(w: f64, d: f64, step: f64) -> (Vec<[f64; 2]>, usize, usize) {
    let mut points = Vec::new();
    let (mut nx, mut ny) = (0, 0);
    let mut x = step / 2.0;
    while x < w {
        let mut y = step / 2.0;
        ny = 0;
        while y < d {
            points.push([x, y]);
            y += step;
            ny += 1;
        }
        x += step;
        nx += 1;
    }
    (points, nx, ny)
}

/// Index of the largest finite value.
fn argmax(v: &[f64]) -> Option<usize> {
    v.iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// From grid cell `start`, uphill on `map` (8 neighbours) to a local maximum.
fn climb(map: &[f64], nx: usize, ny: usize, start: usize) -> usize {
    let mut at = start.min(map.len().saturating_sub(1));
    // Each step strictly increases the value, so it ends; the bound is a guard.
    for _ in 0..map.len() {
        let (ix, iy) = ((at / ny) as i64, (at % ny) as i64);
        let mut next = at;
        for dx in -1..=1i64 {
            for dy in -1..=1i64 {
                let (x, y) = (ix + dx, iy + dy);
                if x < 0 || y < 0 || x >= nx as i64 || y >= ny as i64 {
                    continue;
                }
                let j = x as usize * ny + y as usize;
                if map[j] > map[next] {
                    next = j;
                }
            }
        }
        if next == at {
            break;
        }
        at = next;
    }
    at
}

/// Below this share of its total a grid point's belief is lifted back: a person can
/// always turn up anywhere (the tracker recovers from a lobe it should not have kept).
const TRACK_FLOOR: f64 = 1e-3;
/// After this long without a window (nobody moving), the belief starts afresh.
const TRACK_RESET_S: f64 = 5.0;

/// Where a person is over time, from a sequence of floor maps: a grid Bayes filter.
///
/// Between maps the belief spreads by a Gaussian of `sqrt(step^2 + (speed dt)^2)` (a
/// walker covers at most `speed * dt`), is mixed with a small uniform floor, then is
/// multiplied by the new map taken as a likelihood. The most likely cell is returned.
/// A lobe that outshines the person's for a window or two does not win: the belief on
/// the person's lobe has been built over many windows, and a lobe far from it must beat
/// that history. Cost per map: two separable 1-D blurs, `O(points * kernel)`.
#[derive(Debug, Clone)]
pub struct MapTracker {
    nx: usize,
    ny: usize,
    step: f64,
    speed: f64,
    belief: Vec<f64>,
    last_t: Option<f64>,
}

impl MapTracker {
    /// A tracker over an `nx x ny` grid (x-major, `[ix * ny + iy]`) of `step` metres,
    /// for a walker of at most `speed_mps`.
    pub fn new(nx: usize, ny: usize, step: f64, speed_mps: f64) -> Self {
        MapTracker {
            nx,
            ny,
            step,
            speed: speed_mps,
            belief: Vec::new(),
            last_t: None,
        }
    }

    /// Forgets the belief.
    pub fn reset(&mut self) {
        self.belief.clear();
        self.last_t = None;
    }

    /// One map at time `t`: `likelihood` per grid point (non-negative, any scale; a
    /// map's power over its peak). Returns the most likely cell, None for a map of
    /// another size.
    pub fn update(&mut self, t: f64, likelihood: &[f64]) -> Option<usize> {
        let n = self.nx * self.ny;
        if likelihood.len() != n || n == 0 || !t.is_finite() {
            return None;
        }
        let gap = self.last_t.map(|last| t - last);
        match gap {
            Some(dt) if self.belief.len() == n && (0.0..=TRACK_RESET_S).contains(&dt) => {
                let sigma = (self.step.powi(2) + (self.speed * dt).powi(2)).sqrt();
                self.blur(sigma);
                let sum: f64 = self.belief.iter().sum();
                let floor = TRACK_FLOOR / n as f64;
                for b in &mut self.belief {
                    *b = (1.0 - TRACK_FLOOR) * *b / sum + floor;
                }
            }
            _ => self.belief = vec![1.0 / n as f64; n],
        }
        self.last_t = Some(t);
        for (b, l) in self.belief.iter_mut().zip(likelihood) {
            *b *= if l.is_finite() { l.max(0.0) } else { 0.0 };
        }
        let sum: f64 = self.belief.iter().sum();
        if !(sum > 0.0 && sum.is_finite()) {
            // A map of zeros tells nothing: start again from the next one.
            self.reset();
            return argmax(likelihood);
        }
        for b in &mut self.belief {
            *b /= sum;
        }
        argmax(&self.belief)
    }

    /// Gaussian blur of the belief, `sigma` metres, along y then x (edges truncated).
    fn blur(&mut self, sigma: f64) {
        let (nx, ny) = (self.nx, self.ny);
        let r = ((3.0 * sigma / self.step).ceil() as usize).min(nx.max(ny));
        let w: Vec<f64> = (0..=r)
            .map(|i| (-((i as f64 * self.step).powi(2)) / (2.0 * sigma * sigma)).exp())
            .collect();
        let b = &self.belief;
        let mut tmp = vec![0.0; nx * ny];
        for ix in 0..nx {
            for iy in 0..ny {
                let lo = iy.saturating_sub(r);
                let hi = (iy + r).min(ny - 1);
                tmp[ix * ny + iy] = (lo..=hi).map(|j| b[ix * ny + j] * w[iy.abs_diff(j)]).sum();
            }
        }
        let mut out = vec![0.0; nx * ny];
        for ix in 0..nx {
            let lo = ix.saturating_sub(r);
            let hi = (ix + r).min(nx - 1);
            for iy in 0..ny {
                out[ix * ny + iy] = (lo..=hi)
                    .map(|j| tmp[j * ny + iy] * w[ix.abs_diff(j)])
                    .sum();
            }
        }
        self.belief = out;
    }
}

/// Links fused at most (a room's nodes; bounds the memory kept per link).
pub const MAX_LINKS: usize = 16;

/// One person placed from several links in one room: each link's map (its own
/// [`Localizer`]) is taken as a likelihood over the common floor grid, and the latest map
/// of every link, if recent, is multiplied in (their log-maps summed) whenever any link
/// ends a window. Two links' lobes rarely coincide away from the person, so the product
/// keeps the person's and thins the ghosts; [`MapTracker`] then keeps the lobe over time
/// when `track_speed_mps` is set. All links share one clock (the caller maps them onto it).
pub struct MultiLocalizer {
    links: Vec<Localizer>,
    /// Each link's latest map (window end time, map).
    latest: Vec<Option<(f64, Vec<f64>)>>,
    tracker: Option<MapTracker>,
    /// Lobes per fused window ([`LocalizerConfig::lobes`]) and the last ones found.
    lobes: usize,
    last_lobes: Vec<Lobe>,
    max_age_s: f64,
    points: Vec<[f64; 2]>,
    nx: usize,
    ny: usize,
    step: f64,
    room: [f64; 3],
    /// Links whose maps the last fused map took.
    last_fused: usize,
}

/// Below this share of its peak a map's power counts as this (one link's deep null must
/// not veto a point that every other link finds).
const FUSE_FLOOR: f64 = 1e-3;

/// Several maps of one floor grid fused: the sum of each map's log power over its own peak
/// (floored at `FUSE_FLOOR`), i.e. the maps multiplied as independent likelihoods, each
/// link weighted alike whatever its signal strength. Maps of another length, or with no
/// positive finite peak, are left out; None when none is left.
pub fn fused_log_map(maps: &[&[f64]], n_points: usize) -> Option<Vec<f64>> {
    let mut out = vec![0.0; n_points];
    let mut used = 0;
    for m in maps {
        let top = m
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        if m.len() != n_points || top <= 0.0 {
            continue;
        }
        for (acc, v) in out.iter_mut().zip(m.iter()) {
            let r = if v.is_finite() { v / top } else { 0.0 };
            *acc += r.max(FUSE_FLOOR).ln();
        }
        used += 1;
    }
    (used > 0).then_some(out)
}

impl MultiLocalizer {
    /// A localizer over `geometries` (one per link, all of one room); a link's map counts
    /// for `max_age_s` seconds after its window ended.
    pub fn new(
        geometries: Vec<LinkGeometry>,
        config: LocalizerConfig,
        max_age_s: f64,
    ) -> Result<Self, String> {
        if geometries.is_empty() || geometries.len() > MAX_LINKS {
            return Err(format!("1-{MAX_LINKS} links are needed"));
        }
        if !(max_age_s > 0.0 && max_age_s <= 60.0) {
            return Err("max_age_s must be in (0, 60] s".to_string());
        }
        if !(config.track_speed_mps >= 0.0 && config.track_speed_mps <= 20.0) {
            return Err("track_speed_mps must be 0-20 m/s".to_string());
        }
        if config.lobes > MAX_LOBES {
            return Err(format!("lobes must be 0-{MAX_LOBES}"));
        }
        let room = geometries[0].room;
        if geometries.iter().any(|g| g.room != room) {
            return Err("all links must be in one room (same room size)".to_string());
        }
        // Each link maps only; the tracking (and any prior) is done on the fused map.
        let per_link = LocalizerConfig {
            track_speed_mps: 0.0,
            continuity_m: 0.0,
            lobes: 0,
            ..config.clone()
        };
        let links = geometries
            .into_iter()
            .enumerate()
            .map(|(i, g)| Localizer::new(g, per_link.clone()).map_err(|e| format!("link {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let (points, nx, ny, step) = {
            let l = &links[0];
            (l.points.clone(), l.nx, l.ny, l.step)
        };
        let tracker = (config.track_speed_mps > 0.0)
            .then(|| MapTracker::new(nx, ny, step, config.track_speed_mps));
        Ok(MultiLocalizer {
            last_fused: 0,
            latest: vec![None; links.len()],
            links,
            tracker,
            max_age_s,
            points,
            nx,
            ny,
            step,
            room,
            lobes: config.lobes,
            last_lobes: Vec::new(),
        })
    }

    /// The lobes of the last fused window, strongest first: successive cancellation over
    /// every recent link's last window at once (none unless [`LocalizerConfig::lobes`]).
    pub fn last_lobes(&self) -> &[Lobe] {
        &self.last_lobes
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// How many links' maps the last fix fused (those within `max_age_s` of it).
    pub fn last_fused(&self) -> usize {
        self.last_fused
    }

    /// Whether there are no links (never: `new` refuses that).
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The floor grid's points, as [`Localizer::grid`].
    pub fn grid(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// The room every link is in: width, depth, height, metres.
    pub fn room(&self) -> [f64; 3] {
        self.room
    }

    /// One frame of link `link` (as [`Localizer::push`]); returns the fused fix when this
    /// frame ends one of that link's windows in which something moved.
    pub fn push(
        &mut self,
        link: usize,
        t: f64,
        csi: &ndarray::Array3<Complex32>,
        moving: bool,
    ) -> Option<Fix> {
        let own = self.links.get_mut(link)?.push(t, csi, moving)?;
        let map = self.links[link].last_map();
        self.latest[link] = Some((own.t, map.to_vec()));
        let recent: Vec<&[f64]> = self
            .latest
            .iter()
            .flatten()
            .filter(|(lt, _)| (t - lt).abs() <= self.max_age_s)
            .map(|(_, m)| m.as_slice())
            .collect();
        self.last_fused = recent.len();
        let log_map = fused_log_map(&recent, self.points.len())?;
        if self.lobes > 0 {
            let views: Vec<LobeView<'_>> = self
                .links
                .iter()
                .zip(&self.latest)
                .filter(|(_, l)| {
                    l.as_ref()
                        .is_some_and(|(lt, _)| (t - lt).abs() <= self.max_age_s)
                })
                .map(|(l, _)| l.lobe_view())
                .collect();
            self.last_lobes = successive_lobes(&views, self.lobes);
        }
        self.fuse(t, &log_map)
    }

    /// The fix from a fused log-map.
    fn fuse(&mut self, t: f64, log_map: &[f64]) -> Option<Fix> {
        let best = argmax(log_map)?;
        let top = log_map[best];
        let likelihood: Vec<f64> = log_map.iter().map(|v| (v - top).exp()).collect();
        let cell = match self.tracker.as_mut() {
            Some(tracker) => climb(log_map, self.nx, self.ny, tracker.update(t, &likelihood)?),
            None => best,
        };
        // Sub-cell refinement: a parabola through the cell and its neighbours, each axis.
        let (ix, iy) = (cell / self.ny, cell % self.ny);
        let offset = |lo: Option<usize>, hi: Option<usize>| -> f64 {
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return 0.0;
            };
            let (a, b, c) = (log_map[lo], log_map[cell], log_map[hi]);
            let curv = a - 2.0 * b + c;
            if curv < 0.0 {
                (0.5 * (a - c) / curv).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        };
        let dx = offset(
            ix.checked_sub(1).map(|i| i * self.ny + iy),
            (ix + 1 < self.nx).then(|| (ix + 1) * self.ny + iy),
        );
        let dy = offset(
            iy.checked_sub(1).map(|i| ix * self.ny + i),
            (iy + 1 < self.ny).then(|| ix * self.ny + iy + 1),
        );
        let [x0, y0] = self.points[cell];
        let mean = likelihood.iter().sum::<f64>() / likelihood.len() as f64;
        Some(Fix {
            t,
            x: (x0 + dx * self.step).clamp(0.0, self.room[0]),
            y: (y0 + dy * self.step).clamp(0.0, self.room[1]),
            sharpness: if mean > 0.0 {
                likelihood[cell] / mean
            } else {
                1.0
            },
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
        frames_of(g, &[(target, 0.02, 0.7)], n)
    }

    /// As [`frames`] with several scatterers `(centre, amplitude, circling rate Hz)`.
    fn frames_of(
        g: &LinkGeometry,
        scatterers: &[([f64; 2], f64, f64)],
        n: usize,
    ) -> Vec<(f64, Array3<Complex32>)> {
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
                let bodies: Vec<([f64; 3], f64)> = scatterers
                    .iter()
                    .map(|(target, amp, rate)| {
                        let ang = ts * 2.0 * std::f64::consts::PI * rate;
                        (
                            [
                                target[0] + 0.05 * ang.cos(),
                                target[1] + 0.05 * ang.sin(),
                                1.0,
                            ],
                            *amp,
                        )
                    })
                    .collect();
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
                        for (k, f) in g.freqs_hz.iter().enumerate() {
                            let w = -2.0 * std::f64::consts::PI * f / C;
                            let mut clean = Complex64::new(0.0, 0.0);
                            for (p, amp) in &bodies {
                                let d_body = dist(*tx, *p) + dist(*p, *rx);
                                clean += Complex64::from_polar(*amp, w * d_body);
                            }
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
    fn successive_cancellation_finds_a_second_scatterer_and_a_lone_one_has_no_partner() {
        let g = geometry();
        let config = LocalizerConfig {
            lobes: 3,
            lobe_radius_m: 0.0,
            ..LocalizerConfig::default()
        };
        let (a, b) = ([2.0, 1.0], [4.5, 4.0]);
        let near = |l: &Lobe, p: [f64; 2]| (l.x - p[0]).hypot(l.y - p[1]) < 0.5;
        // Two scatterers, the second half as strong (a person farther from the link).
        let mut loc = Localizer::new(g.clone(), config.clone()).unwrap();
        for (t, h) in frames_of(&g, &[(a, 0.02, 0.7), (b, 0.01, 1.1)], 400) {
            loc.push(t, &h, true);
        }
        let two = loc.last_lobes().to_vec();
        assert_eq!(two.len(), 3);
        assert!(near(&two[0], a), "{two:?}");
        assert!(near(&two[1], b), "{two:?}");
        assert!(two[0].peak == 1.0 && two[0].share > two[1].share, "{two:?}");
        // One scatterer: the second lobe is what is left, far weaker than a second body.
        let mut loc = Localizer::new(g.clone(), config.clone()).unwrap();
        for (t, h) in frames(&g, a, 400) {
            loc.push(t, &h, true);
        }
        let one = loc.last_lobes().to_vec();
        assert!(near(&one[0], a), "{one:?}");
        assert!(one[1].peak < 0.5 * two[1].peak, "one {one:?}, two {two:?}");
        // Off by default; bounded.
        let mut loc = Localizer::new(g.clone(), LocalizerConfig::default()).unwrap();
        for (t, h) in frames(&g, a, 300) {
            loc.push(t, &h, true);
        }
        assert!(loc.last_lobes().is_empty());
        let bad = LocalizerConfig {
            lobes: MAX_LOBES + 1,
            ..LocalizerConfig::default()
        };
        assert!(Localizer::new(g.clone(), bad.clone()).is_err());
        assert!(MultiLocalizer::new(vec![g], bad, 0.5).is_err());
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

    /// A 6 x 5 m floor at 0.2 m (as the localizer's grid) and a map there: a floor
    /// level plus Gaussian lobes `(centre, peak)` of 0.3 m spread.
    fn synthetic_map(lobes: &[([f64; 2], f64)]) -> (Vec<[f64; 2]>, usize, usize, Vec<f64>) {
        let (points, nx, ny) = floor_grid(6.0, 5.0, 0.2);
        let map = points
            .iter()
            .map(|p| {
                0.2 + lobes
                    .iter()
                    .map(|(c, a)| {
                        let d2 = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
                        a * (-d2 / (2.0 * 0.3 * 0.3)).exp()
                    })
                    .sum::<f64>()
            })
            .collect();
        (points, nx, ny, map)
    }

    fn error(points: &[[f64; 2]], cell: usize, at: [f64; 2]) -> f64 {
        (points[cell][0] - at[0]).hypot(points[cell][1] - at[1])
    }

    #[test]
    fn tracker_keeps_the_persons_lobe_while_a_ghost_is_briefly_stronger() {
        // A person walks along x at 0.8 m/s, one map every 0.25 s; a ghost lobe 2.5-4 m
        // away stands at 0.7 of the person's power, except for 1 s (four maps) at 1.3.
        let ghost = [4.5, 4.0];
        let mut tracker = None;
        let (mut argmax_wrong, mut tracked_wrong) = (0, 0);
        for w in 0..24 {
            let t = w as f64 * 0.25;
            let person = [1.0 + 0.8 * t, 1.5];
            let strength = if (12..16).contains(&w) { 1.3 } else { 0.7 };
            let (points, nx, ny, map) = synthetic_map(&[(person, 1.0), (ghost, strength)]);
            let tr = tracker.get_or_insert_with(|| MapTracker::new(nx, ny, 0.2, 2.0));
            let peak = map.iter().copied().fold(0.0, f64::max);
            let likelihood: Vec<f64> = map.iter().map(|m| m / peak).collect();
            let cell = climb(&map, nx, ny, tr.update(t, &likelihood).unwrap());
            if error(&points, argmax(&map).unwrap(), person) > 1.0 {
                argmax_wrong += 1;
            }
            let e = error(&points, cell, person);
            if e > 0.2 {
                tracked_wrong += 1;
            }
            assert!(
                e < 1.0,
                "window {w}: tracked {:?}, person at {person:?}",
                points[cell]
            );
        }
        // The map's own peak jumps to the ghost for exactly the four strong windows.
        assert_eq!(argmax_wrong, 4);
        assert_eq!(tracked_wrong, 0);
    }

    #[test]
    fn tracker_follows_a_lobe_that_stays_stronger_and_restarts_after_a_gap() {
        // Not stuck: a second lobe that stays the stronger one wins within seconds (the
        // belief's floor), and after a long gap the tracker starts from the map alone.
        let (a, b) = ([1.0, 1.0], [4.5, 4.0]);
        let (points, nx, ny, first) = synthetic_map(&[(a, 1.0), (b, 0.5)]);
        let (_, _, _, second) = synthetic_map(&[(a, 0.6), (b, 1.0)]);
        let mut tr = MapTracker::new(nx, ny, 0.2, 2.0);
        for w in 0..20 {
            tr.update(w as f64 * 0.25, &first).unwrap();
        }
        let mut switched_at = None;
        for w in 20..60 {
            let cell = tr.update(w as f64 * 0.25, &second).unwrap();
            if switched_at.is_none() && error(&points, cell, b) < 0.3 {
                switched_at = Some(w);
            }
        }
        let switched_at = switched_at.expect("never followed the lobe that stayed stronger");
        // Not at once (that is the point) but within 10 s.
        assert!(
            (22..60).contains(&switched_at),
            "switched at window {switched_at}"
        );
        let mut tr = MapTracker::new(nx, ny, 0.2, 2.0);
        for w in 0..40 {
            tr.update(w as f64 * 0.25, &first).unwrap();
        }
        let cell = tr.update(10.0 + TRACK_RESET_S + 1.0, &second).unwrap();
        assert!(error(&points, cell, b) < 0.3, "{:?}", points[cell]);
        // A map of another size or all zeros gives no cell from the belief.
        assert!(tr.update(20.0, &first[1..]).is_none());
        assert!(tr.update(20.5, &vec![0.0; first.len()]).is_some());
        let cell = tr.update(20.75, &first).unwrap();
        assert!(error(&points, cell, a) < 0.3, "{:?}", points[cell]);
    }

    #[test]
    fn fusing_keeps_the_lobe_links_agree_on() {
        // Each link has a ghost of its own, stronger than the person's lobe in that link's
        // map; only the person's lobe is in both.
        let person = [3.0, 2.5];
        let (points, _, _, a) = synthetic_map(&[(person, 0.8), ([1.0, 4.0], 1.0)]);
        let (_, _, _, b) = synthetic_map(&[(person, 0.8), ([5.0, 1.0], 1.0)]);
        for m in [&a, &b] {
            assert!(error(&points, argmax(m).unwrap(), person) > 1.0);
        }
        let fused = fused_log_map(&[&a, &b], points.len()).unwrap();
        assert!(error(&points, argmax(&fused).unwrap(), person) < 0.15);
        // A map of another length is left out; none left: no map.
        let fused = fused_log_map(&[&a, &b[1..]], points.len()).unwrap();
        assert!(error(&points, argmax(&fused).unwrap(), [1.0, 4.0]) < 0.15);
        assert!(fused_log_map(&[&b[1..]], points.len()).is_none());
        assert!(fused_log_map(&[&vec![0.0; points.len()]], points.len()).is_none());
    }

    #[test]
    fn finds_a_moving_scatterer_with_the_tracker_on() {
        let g = geometry();
        let config = LocalizerConfig {
            track_speed_mps: 2.0,
            ..LocalizerConfig::default()
        };
        for target in [[2.0, 1.0], [4.5, 4.0]] {
            let mut loc = Localizer::new(g.clone(), config.clone()).unwrap();
            let fixes: Vec<Fix> = frames(&g, target, 400)
                .into_iter()
                .filter_map(|(t, h)| loc.push(t, &h, true))
                .collect();
            assert!(fixes.len() >= 8);
            for f in &fixes[2..] {
                let err = (f.x - target[0]).hypot(f.y - target[1]);
                assert!(err < 0.5, "target {target:?}: fix {f:?}");
            }
        }
        let bad = LocalizerConfig {
            track_speed_mps: -1.0,
            ..LocalizerConfig::default()
        };
        assert!(Localizer::new(g, bad).is_err());
    }

    #[test]
    fn several_links_place_a_scatterer_and_bad_sets_are_refused() {
        let g = geometry();
        // A second receiver on the far wall (y = D), its array along x.
        let mut g2 = g.clone();
        g2.rx = array_positions([3.5, 4.9, 1.4], [1.0, 0.0, 0.0], 3, 0.5 * C / 5.18e9);
        let target = [2.0, 1.0];
        for track in [0.0, 2.0] {
            let config = LocalizerConfig {
                track_speed_mps: track,
                ..LocalizerConfig::default()
            };
            let mut multi = MultiLocalizer::new(vec![g.clone(), g2.clone()], config, 0.5).unwrap();
            assert_eq!(multi.len(), 2);
            let mut fixes = Vec::new();
            let (one, two) = (frames(&g, target, 400), frames(&g2, target, 400));
            for ((t, h1), (_, h2)) in one.into_iter().zip(two) {
                fixes.extend(multi.push(0, t, &h1, true));
                fixes.extend(multi.push(1, t, &h2, true));
                assert!(multi.push(2, t, &h2, true).is_none());
            }
            assert!(fixes.len() >= 16, "{} fixes", fixes.len());
            let last = fixes.last().unwrap();
            let err = (last.x - target[0]).hypot(last.y - target[1]);
            assert!(err < 0.5, "track {track}: {last:?}");
        }
        let mut other_room = g2.clone();
        other_room.room = [7.0, 5.0, 3.0];
        let config = LocalizerConfig::default();
        assert!(MultiLocalizer::new(vec![g.clone(), other_room], config.clone(), 0.5).is_err());
        assert!(MultiLocalizer::new(vec![], config.clone(), 0.5).is_err());
        assert!(MultiLocalizer::new(vec![g.clone(); MAX_LINKS + 1], config.clone(), 0.5).is_err());
        assert!(MultiLocalizer::new(vec![g.clone()], config.clone(), f64::NAN).is_err());
        let bad = LocalizerConfig {
            track_speed_mps: f64::NAN,
            ..config
        };
        assert!(MultiLocalizer::new(vec![g], bad, 0.5).is_err());
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
