//! Hardware impairments, the way real cards show them, applied to each packet's clean
//! channel:
//!
//! - carrier frequency offset and PLL phase: a common phase, uniform in `[0, 2 pi)`,
//!   new every packet, plus one fixed random phase per receive and per transmit chain
//!   (constant for the whole session, as after a card's reset);
//! - timing and sampling offset: a per-packet delay `tau ~ N(0, timing_offset_std_ns)`
//!   that turns the phase of bin `k` by `-2 pi k df tau` (a random phase slope);
//! - gain jitter: a per-packet amplitude factor, log-normal with `gain_jitter_db`
//!   standard deviation (AGC steps);
//! - thermal noise: circular complex Gaussian, its power `snr_db` below the mean power
//!   of the empty room's channel (a fixed noise floor, so SNR drops when bodies block);
//! - quantization: the card's I/Q words (`iq_bits` signed) with a fixed scale putting
//!   the empty room's RMS at a quarter of full scale, rounding and clipping; values are
//!   then in card units, like a raw recording;
//! - receive chains' quarter-turn steps: each receive chain after the first turned by a
//!   random multiple of a quarter turn, anew every packet (drawn last, so every other
//!   value of a packet is what it would be without them), as the Intel 5300 recordings
//!   here show (`src/sensing/chains.rs`); on by default for that card's profiles only;
//! - packet loss (Bernoulli) and timestamp jitter (Gaussian, clipped to +-0.45 of the
//!   packet interval so order is kept; timestamps are whole microseconds).
//!
//! Null and guard subcarriers stay exactly zero.

use num_complex::Complex32;
use rand::Rng;
use rand_distr_lite::{normal, normal_pair, uniform_phase};
use serde::{Deserialize, Serialize};

use super::error::{check_range, SimError};

/// What the impairments are; every field has a default close to an Intel 5300.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpairmentSpec {
    /// Turns all impairments off (the clean physical channel).
    pub enabled: bool,
    /// A random common phase per packet (carrier frequency offset, PLL phase).
    pub cfo: bool,
    /// A fixed random phase per transmit and per receive chain for the session.
    pub chain_phase: bool,
    /// `None` (JSON null or absent): the device profile's value, fitted to our
    /// recordings (see `docs/simulator.md`).
    pub timing_offset_std_ns: Option<f64>,
    /// A fixed per-receive-chain amplitude ripple over the subcarriers (the card's
    /// filter response), standard deviation in dB.
    pub frequency_ripple_db: f64,
    /// Standard deviation of the per-packet log-normal gain, dB (AGC steps).
    pub gain_jitter_db: f64,
    /// Thermal noise this many dB below the empty room's mean channel power.
    /// `None` (JSON null): no noise.
    pub snr_db: Option<f64>,
    /// Round and clip to the card's I/Q words (values then in card units).
    pub quantize: bool,
    /// Each receive chain after the first turned by a random multiple of a quarter turn,
    /// anew every packet. `None` (JSON null or absent): the device profile's (on for the
    /// Intel 5300 profiles, whose recordings here all show it).
    pub rx_chain_steps: Option<bool>,
    /// Probability that a packet is lost, 0 to 0.99.
    pub packet_loss: f64,
    /// Standard deviation of the timestamp jitter, seconds (clipped to keep order).
    pub timestamp_jitter_s: f64,
}

impl Default for ImpairmentSpec {
    fn default() -> Self {
        ImpairmentSpec {
            enabled: true,
            cfo: true,
            chain_phase: true,
            timing_offset_std_ns: None,
            frequency_ripple_db: 1.5,
            gain_jitter_db: 0.5,
            snr_db: Some(30.0),
            quantize: true,
            rx_chain_steps: None,
            packet_loss: 0.01,
            timestamp_jitter_s: 0.0005,
        }
    }
}

impl ImpairmentSpec {
    /// No impairment at all.
    pub fn none() -> Self {
        ImpairmentSpec {
            enabled: false,
            ..Default::default()
        }
    }

    /// Checks every field's range, naming the field.
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        if let Some(t) = self.timing_offset_std_ns {
            check_range("impairments.timing_offset_std_ns", t, 0.0, 1e4)?;
        }
        check_range(
            "impairments.frequency_ripple_db",
            self.frequency_ripple_db,
            0.0,
            20.0,
        )?;
        check_range("impairments.gain_jitter_db", self.gain_jitter_db, 0.0, 40.0)?;
        if let Some(s) = self.snr_db {
            check_range("impairments.snr_db", s, -30.0, 200.0)?;
        }
        check_range("impairments.packet_loss", self.packet_loss, 0.0, 0.99)?;
        check_range(
            "impairments.timestamp_jitter_s",
            self.timestamp_jitter_s,
            0.0,
            10.0,
        )?;
        Ok(())
    }
}

/// What one packet drew, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PacketDraw {
    /// The common phase added to every element, radians.
    pub common_phase: f64,
    /// The timing offset behind the phase slope, seconds.
    pub timing_offset_s: f64,
    /// The amplitude factor of the gain jitter (1: none).
    pub gain: f64,
}

/// Impairments bound to a device and room: noise floor and quantization scale fixed.
#[derive(Debug, Clone)]
pub struct Impairments {
    /// What was asked for.
    pub spec: ImpairmentSpec,
    /// Standard deviation of the complex noise (`E|n|^2 = sigma^2`), physical units.
    pub noise_sigma: f64,
    /// Physical units to card units; 1 without quantization.
    pub scale: f64,
    /// Largest I or Q magnitude in card units (infinite without quantization).
    pub full_scale: f64,
    /// The session's fixed phase of each receive chain, radians.
    pub rx_phase: Vec<f64>,
    /// The session's fixed phase of each transmit chain, radians.
    pub tx_phase: Vec<f64>,
    /// Per receive chain, per reported subcarrier amplitude factor.
    pub rx_ripple: Vec<Vec<f64>>,
    /// Timing offset standard deviation in use, seconds.
    pub timing_std_s: f64,
    /// Whether receive chains step by quarter turns (the spec's, or the device's).
    pub rx_chain_steps: bool,
    subcarriers: Vec<i32>,
    zeroed: Vec<bool>,
}

/// Tiny distributions over `rand::Rng` (the crate has no `rand_distr`).
mod rand_distr_lite {
    use rand::Rng;

    /// A standard normal deviate (Box-Muller, one of the pair).
    pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
        let u2: f64 = rng.gen::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Two independent standard normal deviates (Marsaglia's polar method: no
    /// trigonometry, one logarithm per pair).
    pub fn normal_pair<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
        loop {
            let u = 2.0 * rng.gen::<f64>() - 1.0;
            let v = 2.0 * rng.gen::<f64>() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * s.ln() / s).sqrt();
                return (u * f, v * f);
            }
        }
    }

    pub fn uniform_phase<R: Rng + ?Sized>(rng: &mut R) -> f64 {
        rng.gen::<f64>() * std::f64::consts::TAU
    }
}

impl Impairments {
    /// `empty_power`: mean power of the empty room's channel per element;
    /// `setup`: the session's random stream (chain phases).
    #[allow(clippy::too_many_arguments)] // each is one property of the device or room
    pub fn new<R: Rng + ?Sized>(
        spec: &ImpairmentSpec,
        subcarriers: &[i32],
        zeroed: &[bool],
        n_tx: usize,
        n_rx: usize,
        iq_bits: u32,
        default_timing_std_ns: f64,
        default_rx_chain_steps: bool,
        empty_power: f64,
        setup: &mut R,
    ) -> Result<Self, SimError> {
        spec.validate()?;
        let on = spec.enabled;
        let noise_sigma = match (on, spec.snr_db) {
            (true, Some(snr)) => (empty_power / 10f64.powf(snr / 10.0)).sqrt(),
            _ => 0.0,
        };
        let (scale, full_scale) = if on && spec.quantize && iq_bits >= 2 && empty_power > 0.0 {
            let fs = (1u64 << (iq_bits - 1)) as f64 - 1.0;
            (0.25 * fs / empty_power.sqrt(), fs)
        } else {
            (1.0, f64::INFINITY)
        };
        let mut chain = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    if on && spec.chain_phase {
                        uniform_phase(setup)
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let tx_phase = chain(n_tx);
        let rx_phase = chain(n_rx);
        // Ripple: three random cosines across the band per chain, scaled to the
        // configured standard deviation in dB.
        let (kmin, kmax) = subcarriers
            .iter()
            .fold((i32::MAX, i32::MIN), |(a, b), &k| (a.min(k), b.max(k)));
        let span = ((kmax - kmin).max(1)) as f64;
        let rx_ripple = (0..n_rx)
            .map(|_| {
                if !on || spec.frequency_ripple_db <= 0.0 {
                    return vec![1.0; subcarriers.len()];
                }
                let comps: Vec<(f64, f64)> = (0..3)
                    .map(|_| (0.5 + 2.0 * setup.gen::<f64>(), uniform_phase(setup)))
                    .collect();
                let raw: Vec<f64> = subcarriers
                    .iter()
                    .map(|&k| {
                        let x = (k - kmin) as f64 / span;
                        comps
                            .iter()
                            .map(|(f, p)| (std::f64::consts::TAU * f * x + p).cos())
                            .sum::<f64>()
                    })
                    .collect();
                let m = raw.iter().sum::<f64>() / raw.len() as f64;
                let sd = (raw.iter().map(|r| (r - m).powi(2)).sum::<f64>() / raw.len() as f64)
                    .sqrt()
                    .max(1e-9);
                raw.iter()
                    .map(|r| 10f64.powf(spec.frequency_ripple_db * (r - m) / sd / 20.0))
                    .collect()
            })
            .collect();
        let timing_std_s = spec.timing_offset_std_ns.unwrap_or(default_timing_std_ns) * 1e-9;
        Ok(Impairments {
            spec: spec.clone(),
            noise_sigma,
            scale,
            full_scale,
            rx_phase,
            tx_phase,
            rx_ripple,
            timing_std_s,
            rx_chain_steps: on && spec.rx_chain_steps.unwrap_or(default_rx_chain_steps) && n_rx > 1,
            subcarriers: subcarriers.to_vec(),
            zeroed: zeroed.to_vec(),
        })
    }

    /// Whether this packet is lost.
    pub fn lost<R: Rng + ?Sized>(&self, rng: &mut R) -> bool {
        self.spec.enabled && self.spec.packet_loss > 0.0 && rng.gen::<f64>() < self.spec.packet_loss
    }

    /// Timestamp of nominal time `t` (packet interval `dt`), whole microseconds.
    pub fn timestamp<R: Rng + ?Sized>(&self, t: f64, dt: f64, rng: &mut R) -> f64 {
        if !self.spec.enabled {
            return t;
        }
        let j = if self.spec.timestamp_jitter_s > 0.0 {
            (normal(rng) * self.spec.timestamp_jitter_s).clamp(-0.45 * dt, 0.45 * dt)
        } else {
            0.0
        };
        ((t + j) * 1e6).round() / 1e6
    }

    /// Impairs one packet in place; `csi` is `(n_tx, n_rx, n_sub)` row-major.
    pub fn apply<R: Rng + ?Sized>(&self, csi: &mut [Complex32], rng: &mut R) -> PacketDraw {
        if !self.spec.enabled {
            return PacketDraw {
                gain: 1.0,
                ..Default::default()
            };
        }
        let s = &self.spec;
        let common = if s.cfo { uniform_phase(rng) } else { 0.0 };
        let tau = self.timing_std_s * normal(rng);
        let gain = 10f64.powf(s.gain_jitter_db * normal(rng) / 20.0);
        let n_sub = self.subcarriers.len();
        let n_rx = self.rx_phase.len();
        let slope = -std::f64::consts::TAU * super::device::SUBCARRIER_SPACING_HZ * tau;
        // Per-subcarrier rotation for this packet (the same on every chain pair).
        let rot: Vec<(f64, f64)> = self
            .subcarriers
            .iter()
            .map(|&k| {
                let (sn, cs) =
                    super::channel::sincos_turns(slope * k as f64 / std::f64::consts::TAU);
                (cs, sn)
            })
            .collect();
        let g = gain * self.scale;
        let ns = self.noise_sigma * self.scale * std::f64::consts::FRAC_1_SQRT_2;
        for (pair, chunk) in csi.chunks_mut(n_sub).enumerate() {
            let (i, j) = (pair / n_rx, pair % n_rx);
            let ph = common + self.tx_phase[i] + self.rx_phase[j];
            let (ps, pc) = ph.sin_cos();
            for (k, c) in chunk.iter_mut().enumerate() {
                if self.zeroed[k] {
                    continue;
                }
                let (rc, rs) = rot[k];
                // rotation = exp(j (ph + slope k))
                let (cr, ci) = (pc * rc - ps * rs, pc * rs + ps * rc);
                let (x, y) = (c.re as f64, c.im as f64);
                let gk = g * self.rx_ripple[j][k];
                let mut re = gk * (x * cr - y * ci);
                let mut im = gk * (x * ci + y * cr);
                if ns > 0.0 {
                    let (a, b) = normal_pair(rng);
                    re += ns * a;
                    im += ns * b;
                }
                if self.full_scale.is_finite() {
                    re = re.round().clamp(-self.full_scale, self.full_scale);
                    im = im.round().clamp(-self.full_scale, self.full_scale);
                }
                *c = Complex32::new(re as f32, im as f32);
            }
        }
        if self.rx_chain_steps {
            // Drawn after everything else: the packet's other values are unchanged. A
            // quarter turn of card units is exact (no rounding).
            let steps: Vec<u32> = (0..n_rx)
                .map(|j| if j == 0 { 0 } else { rng.gen_range(0..4) })
                .collect();
            for (pair, chunk) in csi.chunks_mut(n_sub).enumerate() {
                let q = steps[pair % n_rx];
                for c in chunk.iter_mut() {
                    *c = match q {
                        1 => Complex32::new(-c.im, c.re),
                        2 => Complex32::new(-c.re, -c.im),
                        3 => Complex32::new(c.im, -c.re),
                        _ => *c,
                    };
                }
            }
        }
        PacketDraw {
            common_phase: common,
            timing_offset_s: tau,
            gain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn setup(spec: ImpairmentSpec) -> (Impairments, Vec<i32>) {
        let subs: Vec<i32> = (-28..=28).filter(|k| *k != 0).collect();
        let z = vec![false; subs.len()];
        let mut rng = StdRng::seed_from_u64(1);
        (
            Impairments::new(&spec, &subs, &z, 1, 2, 8, 17.0, false, 1.0, &mut rng).unwrap(),
            subs,
        )
    }

    #[test]
    fn receive_chains_step_by_quarter_turns_and_nothing_else_changes() {
        let steps_on = ImpairmentSpec {
            rx_chain_steps: Some(true),
            ..Default::default()
        };
        let (on, subs) = setup(steps_on);
        let (off, _) = setup(ImpairmentSpec::default());
        assert!(on.rx_chain_steps && !off.rx_chain_steps);
        let n = subs.len();
        let clean: Vec<Complex32> = (0..2 * n)
            .map(|i| Complex32::from_polar(1.0, 0.1 * i as f32))
            .collect();
        let mut turned = [0usize; 4];
        for p in 0..200u64 {
            let (mut a, mut b) = (clean.clone(), clean.clone());
            on.apply(&mut a, &mut StdRng::seed_from_u64(p));
            off.apply(&mut b, &mut StdRng::seed_from_u64(p));
            assert_eq!(a[..n], b[..n], "the first chain never steps");
            // The second chain is the unstepped one turned by an exact quarter multiple.
            let q = (0..4)
                .find(|&q| {
                    a[n..].iter().zip(&b[n..]).all(|(x, y)| {
                        let r = match q {
                            1 => Complex32::new(-y.im, y.re),
                            2 => -*y,
                            3 => Complex32::new(y.im, -y.re),
                            _ => *y,
                        };
                        *x == r
                    })
                })
                .expect("a quarter-turn step");
            turned[q] += 1;
        }
        assert!(turned.iter().all(|&c| c > 30), "{turned:?}");
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        (m, var.sqrt())
    }

    #[test]
    fn phase_offset_and_slope_have_the_configured_statistics() {
        let spec = ImpairmentSpec {
            snr_db: None,
            quantize: false,
            gain_jitter_db: 1.0,
            timing_offset_std_ns: Some(40.0),
            frequency_ripple_db: 0.0,
            ..Default::default()
        };
        let (imp, subs) = setup(spec);
        let mut rng = StdRng::seed_from_u64(7);
        let n = 4000;
        let (mut slopes, mut gains_db, mut commons) = (vec![], vec![], vec![]);
        for _ in 0..n {
            let mut csi = vec![Complex32::new(1.0, 0.0); 2 * subs.len()];
            let d = imp.apply(&mut csi, &mut rng);
            // Measure from the CSI itself: the phase difference between adjacent bins k=1
            // and k=2 of chain pair 0 is the slope per bin; |h| is the gain.
            let a = csi[subs.iter().position(|&k| k == 1).unwrap()];
            let b = csi[subs.iter().position(|&k| k == 2).unwrap()];
            let dphi = (b * a.conj()).arg() as f64;
            slopes.push(-dphi / (std::f64::consts::TAU * 312_500.0) * 1e9);
            gains_db.push(20.0 * (a.norm() as f64).log10());
            commons.push(d.common_phase);
        }
        let (m, s) = mean_std(&slopes);
        assert!(
            m.abs() < 3.0 && (s - 40.0).abs() < 2.5,
            "slope {m} ± {s} ns"
        );
        let (m, s) = mean_std(&gains_db);
        assert!(m.abs() < 0.1 && (s - 1.0).abs() < 0.06, "gain {m} ± {s} dB");
        // Uniform phase: mean resultant length near zero, variance of uniform.
        let (c, sn): (f64, f64) = commons
            .iter()
            .fold((0.0, 0.0), |(c, s), p| (c + p.cos(), s + p.sin()));
        let r = (c * c + sn * sn).sqrt() / n as f64;
        assert!(r < 0.05, "common phase not uniform: R = {r}");
        let (_, s) = mean_std(&commons);
        assert!((s - std::f64::consts::PI / 3f64.sqrt()).abs() < 0.05);
    }

    #[test]
    fn noise_has_the_configured_snr_and_quantization_rounds() {
        let spec = ImpairmentSpec {
            cfo: false,
            chain_phase: false,
            timing_offset_std_ns: Some(0.0),
            frequency_ripple_db: 0.0,
            gain_jitter_db: 0.0,
            snr_db: Some(20.0),
            quantize: false,
            ..Default::default()
        };
        let (imp, subs) = setup(spec.clone());
        let mut rng = StdRng::seed_from_u64(3);
        let mut err = 0.0;
        let mut count = 0;
        for _ in 0..500 {
            let mut csi = vec![Complex32::new(1.0, 0.0); 2 * subs.len()];
            imp.apply(&mut csi, &mut rng);
            for c in &csi {
                err += ((c - Complex32::new(1.0, 0.0)).norm_sqr()) as f64;
                count += 1;
            }
        }
        let snr = 10.0 * (1.0 / (err / count as f64)).log10();
        assert!((snr - 20.0).abs() < 0.2, "measured SNR {snr}");

        let (imp, _) = setup(ImpairmentSpec {
            snr_db: None,
            quantize: true,
            ..spec
        });
        let mut csi = vec![Complex32::new(0.3, -0.1); 2 * subs.len()];
        imp.apply(&mut csi, &mut rng);
        // 8 bits: scale puts RMS 1 at 0.25 * 127; values are whole numbers.
        for c in &csi {
            assert_eq!(c.re, c.re.round());
            assert!((c.re - (0.3 * 31.75f32).round()).abs() < 1e-6);
            assert!((c.im - (-0.1 * 31.75f32).round()).abs() < 1e-6);
        }
    }

    #[test]
    fn ripple_has_the_configured_spread_and_device_timing_default_applies() {
        let (imp, subs) = setup(ImpairmentSpec {
            frequency_ripple_db: 2.0,
            ..Default::default()
        });
        assert!((imp.timing_std_s - 17e-9).abs() < 1e-15);
        for chain in &imp.rx_ripple {
            assert_eq!(chain.len(), subs.len());
            let db: Vec<f64> = chain.iter().map(|a| 20.0 * a.log10()).collect();
            let (m, _) = mean_std(&db);
            let sd = (db.iter().map(|x| (x - m).powi(2)).sum::<f64>() / db.len() as f64).sqrt();
            assert!((sd - 2.0).abs() < 1e-9 && m.abs() < 1e-9);
        }
        assert_ne!(imp.rx_ripple[0], imp.rx_ripple[1]);
    }

    #[test]
    fn packet_loss_and_timestamp_jitter_rates() {
        let (imp, _) = setup(ImpairmentSpec {
            packet_loss: 0.1,
            timestamp_jitter_s: 1e-3,
            ..Default::default()
        });
        let mut rng = StdRng::seed_from_u64(11);
        let n = 20000;
        let lost = (0..n).filter(|_| imp.lost(&mut rng)).count() as f64 / n as f64;
        assert!((lost - 0.1).abs() < 0.01, "loss {lost}");
        let j: Vec<f64> = (0..n)
            .map(|i| imp.timestamp(i as f64 * 0.01, 0.01, &mut rng) - i as f64 * 0.01)
            .collect();
        let (m, s) = mean_std(&j);
        assert!(
            m.abs() < 5e-5 && (s - 1e-3).abs() < 5e-5,
            "jitter {m} ± {s}"
        );
    }
}
