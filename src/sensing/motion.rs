//! The motion ratios of one link: how much its features change, over the noise measured in
//! the same packets (see [`super::sensor`]'s module docs for the noise measure).
//!
//! In: each frame's features and time. Out: a [`MotionReading`]. Three ratios, each about 1
//! when nothing moves:
//! - **fast**: the packet-to-packet difference (tens of Hz of Doppler: walking at 5 GHz);
//! - **slow**: the second difference of 0.04 s sub-block means (a few Hz: walking at
//!   2.4 GHz, sitting down);
//! - **long wave**: the same over sub-blocks twice as long, on one-antenna links at 2.4 GHz
//!   only (a body's Doppler halves with the carrier; see
//!   [`SensorConfig::long_wave_scale`]).
use std::collections::VecDeque;

use num_complex::Complex32;

use super::sensor::SensorConfig;

/// How long (seconds) the motion ratios smooth after a start or a gap before motion can be
/// called (a little over their 0.25 s time constant).
const MOTION_WARMUP_S: f64 = 0.5;

/// What the motion ratios read after a frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct MotionReading {
    /// The larger of the fast and slow ratios: what the presence and breathing windows
    /// start over on.
    pub(super) base: f64,
    /// The largest ratio in force (the long-wave one included where it runs): the
    /// sensor's `motion_ratio`.
    pub(super) ratio: f64,
    /// The ratios have smoothed long enough since the start or the last gap to call
    /// motion on (they start from one or two packets' worth, and overshoot: a simulated
    /// empty Nexmon room read 1.8 on its second packet).
    pub(super) warm: bool,
}

/// The three ratios' state (see the module docs).
pub(super) struct MotionRatios {
    tau_s: f64,
    prev_t: Option<f64>,
    /// When the ratios last started afresh (the first frame, or after a gap).
    warm_since: f64,
    signal_ema: f64,
    noise_ema: f64,
    noise_per_packet: f64,
    slow: SlowMotion,
    long_wave: SlowMotion,
}

impl MotionRatios {
    pub(super) fn new(config: &SensorConfig) -> Self {
        MotionRatios {
            tau_s: config.motion_tau_s,
            prev_t: None,
            warm_since: f64::NEG_INFINITY,
            signal_ema: 0.0,
            noise_ema: 0.0,
            noise_per_packet: 0.0,
            slow: SlowMotion::new(config.slow_block_s, config.motion_tau_s),
            long_wave: SlowMotion::new(
                config.slow_block_s * config.long_wave_scale,
                config.motion_tau_s * config.long_wave_scale,
            ),
        }
    }

    /// Forgets every frame seen (a new feature layout).
    pub(super) fn reset(&mut self) {
        self.prev_t = None;
        self.signal_ema = 0.0;
        self.noise_ema = 0.0;
        self.slow = self.slow.restarted();
        self.long_wave = self.long_wave.restarted();
    }

    /// Starts the long-wave ratio over (the link's band changed).
    pub(super) fn restart_long_wave(&mut self) {
        self.long_wave = self.long_wave.restarted();
    }

    /// The noise power per feature of one packet, as last measured.
    pub(super) fn noise_per_packet(&self) -> f64 {
        self.noise_per_packet
    }

    /// Reads the frame at `t` with features `z`; `prev` are the previous frame's (any
    /// content on the first frame). `long_wave`: the link is one antenna at 2.4 GHz.
    pub(super) fn push(
        &mut self,
        t: f64,
        z: &[Complex32],
        prev: &[Complex32],
        runs: &[std::ops::Range<usize>],
        long_wave: bool,
    ) -> MotionReading {
        // A gap (lost packets, a source that paused) or a clock that went back: start the
        // difference afresh rather than read the jump as motion.
        let gap = self.prev_t.is_none_or(|p| !(t > p && t - p < 0.5));
        if gap {
            self.warm_since = t;
            self.slow = self.slow.restarted();
            self.long_wave = self.long_wave.restarted();
        } else {
            let (signal, noise) = difference_energy(z, prev, runs);
            let dt = t - self.prev_t.unwrap_or(t);
            let a = 1.0 - (-dt / self.tau_s).exp();
            if self.noise_ema == 0.0 {
                self.signal_ema = signal;
                self.noise_ema = noise;
            } else {
                self.signal_ema += a * (signal - self.signal_ema);
                self.noise_ema += a * (noise - self.noise_ema);
            }
            // sigma^2 per feature per packet: E|second difference of d|^2 = 12 sigma^2.
            self.noise_per_packet = noise / 12.0;
        }
        self.slow.push(t, z, runs);
        if long_wave {
            self.long_wave.push(t, z, runs);
        }
        self.prev_t = Some(t);
        let fast = if self.noise_ema > 0.0 {
            6.0 * self.signal_ema / self.noise_ema
        } else {
            1.0
        };
        let base = fast.max(self.slow.ratio());
        MotionReading {
            base,
            ratio: if long_wave {
                base.max(self.long_wave.ratio())
            } else {
                base
            },
            warm: t - self.warm_since >= MOTION_WARMUP_S,
        }
    }
}

/// The slow motion ratio: features averaged over sub-blocks (`slow_block_s`) on a grid
/// of source time, and the second difference in time of three consecutive sub-block
/// means, `d2 = m[i] - 2 m[i-1] + m[i-2]`, against its noise measured across subcarriers
/// as for the fast ratio. The averaging cuts the noise; the second difference passes
/// a few Hz of Doppler (a body moving at tens of cm/s) and rejects breathing (well under
/// 1 Hz) by its fourth power of frequency, however strong the breathing path.
struct SlowMotion {
    /// Sub-block length, seconds.
    block_s: f64,
    /// Smoothing time constant of the ratio, seconds.
    tau_s: f64,
    origin: Option<f64>,
    index: f64,
    sum: Vec<Complex32>,
    n: u32,
    means: VecDeque<Vec<Complex32>>,
    last_t: f64,
    signal_ema: f64,
    noise_ema: f64,
}

impl SlowMotion {
    /// Sub-blocks of `block_s`, the ratio smoothed over `tau_s`.
    fn new(block_s: f64, tau_s: f64) -> Self {
        SlowMotion {
            block_s,
            tau_s,
            origin: None,
            index: 0.0,
            sum: Vec::new(),
            n: 0,
            means: VecDeque::new(),
            last_t: 0.0,
            signal_ema: 0.0,
            noise_ema: 0.0,
        }
    }

    /// The same detector with nothing seen yet (after a gap).
    fn restarted(&self) -> Self {
        SlowMotion::new(self.block_s, self.tau_s)
    }

    fn push(&mut self, t: f64, z: &[Complex32], runs: &[std::ops::Range<usize>]) {
        let origin = *self.origin.get_or_insert(t);
        let index = ((t - origin) / self.block_s + 1e-6).floor();
        if index != self.index && self.n > 0 {
            let n = self.n as f32;
            // A skipped sub-block (a gap in the packets) breaks the difference.
            if index - self.index > 1.0 {
                self.means.clear();
            }
            self.means
                .push_back(self.sum.iter().map(|v| v / n).collect());
            if self.means.len() > 3 {
                self.means.pop_front();
            }
            if self.means.len() == 3 {
                let d2: Vec<Complex32> = (0..z.len())
                    .map(|f| self.means[2][f] - self.means[1][f] * 2.0 + self.means[0][f])
                    .collect();
                let (signal, noise) = energy(&d2, runs);
                let a = 1.0 - (-(t - self.last_t).max(0.0) / self.tau_s).exp();
                if self.noise_ema == 0.0 {
                    (self.signal_ema, self.noise_ema) = (signal, noise);
                } else {
                    self.signal_ema += a * (signal - self.signal_ema);
                    self.noise_ema += a * (noise - self.noise_ema);
                }
                self.last_t = t;
            }
            self.sum.iter_mut().for_each(|v| *v = Complex32::default());
            self.n = 0;
        }
        self.index = index;
        if self.sum.len() != z.len() {
            self.sum = vec![Complex32::default(); z.len()];
        }
        for (s, v) in self.sum.iter_mut().zip(z) {
            *s += v;
        }
        self.n += 1;
    }

    fn ratio(&self) -> f64 {
        if self.noise_ema > 0.0 {
            6.0 * self.signal_ema / self.noise_ema
        } else {
            1.0
        }
    }
}

/// (mean |d|^2, mean |second difference of d across subcarriers|^2) over the features,
/// `d` the change since the previous packet; the second difference runs inside each run
/// of neighbouring subcarriers.
fn difference_energy(
    z: &[Complex32],
    prev: &[Complex32],
    runs: &[std::ops::Range<usize>],
) -> (f64, f64) {
    let d: Vec<Complex32> = z.iter().zip(prev).map(|(a, b)| a - b).collect();
    energy(&d, runs)
}

/// (mean |d|^2, mean |second difference of d across subcarriers|^2), the second
/// difference inside each run of neighbouring subcarriers.
fn energy(d: &[Complex32], runs: &[std::ops::Range<usize>]) -> (f64, f64) {
    let mut signal = 0f64;
    let mut noise = 0f64;
    let mut n_noise = 0usize;
    for run in runs {
        let d = |i: usize| d[i];
        for i in run.clone() {
            signal += d(i).norm_sqr() as f64;
        }
        for i in run.start + 1..run.end - 1 {
            noise += (d(i + 1) - d(i) * 2.0 + d(i - 1)).norm_sqr() as f64;
            n_noise += 1;
        }
    }
    let n_signal: usize = runs.iter().map(|r| r.len()).sum();
    (
        signal / n_signal.max(1) as f64,
        noise / n_noise.max(1) as f64,
    )
}
