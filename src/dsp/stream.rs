//! Frame-by-frame conditioning with bounded state, and its batch twin.
//!
//! Per frame `(n_tx, n_rx, n_sub)`, in order:
//! 1. [`phase`](super::phase) sanitization: amplitude `|H|` and de-trended unwrapped phase;
//! 2. [`amplitude`](super::amplitude) normalization: RSSI scaling when the frame has an
//!    RSSI, robust z-score per link otherwise;
//! 3. optional [`resample`](super::resample) of amplitude and phase to `n_subcarriers`;
//! 4. optional causal [`hampel`](super::hampel) over time (trailing window of `2k+1`);
//! 5. optional causal Butterworth [`filter`](super::filter) over time;
//! 6. optional [`motion`](super::motion) statistic of the amplitude over the last
//!    `motion_window` frames.
//!
//! State is bounded: `2k+1` frames for Hampel, two values per section per feature for the
//! filter, `motion_window` frames for the motion statistic. [`condition`] runs the same
//! steps over a whole recording with the batch functions; the two agree.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};
use num_complex::Complex32;

use super::amplitude::{normalize_amplitude, robust_z_link, rssi_scale_frame};
use super::error::{check_finite, check_finite_c, empty, param, shape, Result};
use super::filter::{butter, butter_filter, SosStream};
use super::hampel::{hampel, HampelStream};
use super::motion::{motion_statistic, MotionStream};
use super::phase::{sanitize, PhaseSanitizer};
use super::resample::{resample_real, Resampler};

/// What the [`Conditioner`] does. `Default`: no resampling, Hampel `k = 3`, 3 sigmas, no
/// filter, motion over 50 frames.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionerConfig {
    /// Input subcarrier positions (e.g. Intel 5300 groups); `0..n_sub` when `None`.
    pub subcarrier_indices: Option<Vec<f32>>,
    /// Resample to this many subcarriers; `None` keeps the device's grid.
    pub n_subcarriers: Option<usize>,
    /// Hampel half-width `k` (window `2k+1`); 0 turns it off.
    pub hampel_window: usize,
    /// Hampel threshold in scaled MADs.
    pub n_sigmas: f32,
    /// Frame rate (Hz), for the filter.
    pub fs: f64,
    /// Filter cutoffs (Hz); both `None` turns the filter off.
    pub low: Option<f64>,
    /// Upper cutoff (Hz); `None` with `low` set is a high-pass.
    pub high: Option<f64>,
    /// Butterworth order.
    pub order: usize,
    /// Motion window in frames; 0 turns it off.
    pub motion_window: usize,
}

impl Default for ConditionerConfig {
    fn default() -> Self {
        ConditionerConfig {
            subcarrier_indices: None,
            n_subcarriers: None,
            hampel_window: 3,
            n_sigmas: 3.0,
            fs: 100.0,
            low: None,
            high: None,
            order: 4,
            motion_window: 50,
        }
    }
}

impl ConditionerConfig {
    fn filtered(&self) -> bool {
        self.low.is_some() || self.high.is_some()
    }

    /// Checks every parameter (the per-step constructors check them again).
    pub fn validate(&self) -> Result<()> {
        const STEP: &str = "Conditioner";
        if self.hampel_window > 0 {
            HampelStream::new(1, self.hampel_window, self.n_sigmas, true)?;
        }
        if self.filtered() {
            butter(self.order, self.fs, self.low, self.high)?;
        }
        if self.motion_window > 0 {
            MotionStream::new(1, self.motion_window)?;
        }
        if let Some(n) = self.n_subcarriers {
            if n < 2 {
                return Err(param(
                    STEP,
                    "n_subcarriers",
                    format!("must be at least 2, got {n}"),
                ));
            }
        }
        Ok(())
    }
}

/// One conditioned frame.
#[derive(Debug, Clone)]
pub struct ConditionedFrame {
    /// `(n_tx, n_rx, n_out)` normalized amplitude.
    pub amplitude: Array3<f32>,
    /// `(n_tx, n_rx, n_out)` sanitized phase (rad).
    pub phase: Array3<f32>,
    /// Motion statistic of the last `motion_window` frames, once that many are in.
    pub motion: Option<f64>,
}

#[derive(Debug, Clone)]
struct State {
    in_shape: [usize; 3],
    n_out: usize,
    sanitizer: PhaseSanitizer,
    resampler: Option<Resampler>,
    hampel: Option<(HampelStream, HampelStream)>,
    filter: Option<(SosStream, SosStream)>,
    motion: Option<MotionStream>,
    amp: Vec<f32>,
    phase: Vec<f32>,
    amp_r: Vec<f32>,
    phase_r: Vec<f32>,
    scratch: Vec<f32>,
}

/// Streaming conditioner (see the module docs). The first frame fixes the shape; a frame
/// of another shape is an error until [`Conditioner::reset`].
#[derive(Debug, Clone)]
pub struct Conditioner {
    cfg: ConditionerConfig,
    state: Option<State>,
}

impl Conditioner {
    /// A conditioner with `cfg`, checked now; sized at the first frame.
    pub fn new(cfg: ConditionerConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Conditioner { cfg, state: None })
    }

    /// The settings it was made with.
    pub fn config(&self) -> &ConditionerConfig {
        &self.cfg
    }

    /// Forgets every frame (and the shape) seen so far.
    pub fn reset(&mut self) {
        self.state = None;
    }

    fn init(&self, dims: [usize; 3]) -> Result<State> {
        let n_sub = dims[2];
        let n_links = dims[0] * dims[1];
        let sanitizer = PhaseSanitizer::new(n_sub, self.cfg.subcarrier_indices.as_deref())?;
        let resampler = match self.cfg.n_subcarriers {
            Some(n) => Some(Resampler::new(
                n_sub,
                n,
                self.cfg.subcarrier_indices.as_deref(),
            )?),
            None => None,
        };
        let n_out = self.cfg.n_subcarriers.unwrap_or(n_sub);
        let nf = n_links * n_out;
        let hampel = if self.cfg.hampel_window > 0 {
            let h = HampelStream::new(nf, self.cfg.hampel_window, self.cfg.n_sigmas, true)?;
            Some((h.clone(), h))
        } else {
            None
        };
        let filter = if self.cfg.filtered() {
            let s = SosStream::new(
                butter(self.cfg.order, self.cfg.fs, self.cfg.low, self.cfg.high)?,
                nf,
            )?;
            Some((s.clone(), s))
        } else {
            None
        };
        let motion = if self.cfg.motion_window > 0 {
            Some(MotionStream::new(nf, self.cfg.motion_window)?)
        } else {
            None
        };
        Ok(State {
            in_shape: dims,
            n_out,
            sanitizer,
            resampler,
            hampel,
            filter,
            motion,
            amp: vec![0.0; n_links * n_sub],
            phase: vec![0.0; n_links * n_sub],
            amp_r: vec![0.0; nf],
            phase_r: vec![0.0; nf],
            scratch: Vec::with_capacity(n_sub),
        })
    }

    /// Conditions one frame `(n_tx, n_rx, n_sub)`; `rssi` in dBm where the format has it.
    pub fn push(
        &mut self,
        csi: ArrayView3<'_, Complex32>,
        rssi: Option<f32>,
    ) -> Result<ConditionedFrame> {
        const STEP: &str = "Conditioner";
        let d = csi.shape();
        let dims = [d[0], d[1], d[2]];
        if csi.is_empty() {
            return Err(empty(STEP, format!("frame shape {dims:?}")));
        }
        if let Some(r) = rssi {
            check_finite(STEP, &[r])?;
        }
        let owned;
        let h: &[Complex32] = match csi.as_slice() {
            Some(s) => s,
            None => {
                owned = csi.iter().copied().collect::<Vec<_>>();
                &owned
            }
        };
        check_finite_c(STEP, h)?;
        if let Some(st) = &self.state {
            if st.in_shape != dims {
                return Err(shape(
                    STEP,
                    format!(
                        "frame shape {dims:?} differs from the stream's {:?} (call reset() first)",
                        st.in_shape
                    ),
                ));
            }
        } else {
            self.state = Some(self.init(dims)?);
        }
        let st = match self.state.as_mut() {
            Some(s) => s,
            None => return Err(empty(STEP, "no state")),
        };
        let n_sub = dims[2];
        st.sanitizer.sanitize_links(h, &mut st.amp, &mut st.phase);
        match rssi {
            Some(r) => rssi_scale_frame(&mut st.amp, r),
            None => {
                for link in st.amp.chunks_exact_mut(n_sub) {
                    robust_z_link(link, &mut st.scratch);
                }
            }
        }
        match &st.resampler {
            Some(r) => {
                for (i, o) in st
                    .amp
                    .chunks_exact(n_sub)
                    .zip(st.amp_r.chunks_exact_mut(st.n_out))
                {
                    r.real(i, o);
                }
                for (i, o) in st
                    .phase
                    .chunks_exact(n_sub)
                    .zip(st.phase_r.chunks_exact_mut(st.n_out))
                {
                    r.real(i, o);
                }
            }
            None => {
                st.amp_r.copy_from_slice(&st.amp);
                st.phase_r.copy_from_slice(&st.phase);
            }
        }
        if let Some((ha, hp)) = st.hampel.as_mut() {
            if let Some(o) = ha.push(&st.amp_r)? {
                st.amp_r.copy_from_slice(o);
            }
            if let Some(o) = hp.push(&st.phase_r)? {
                st.phase_r.copy_from_slice(o);
            }
        }
        if let Some((fa, fp)) = st.filter.as_mut() {
            let o = fa.push(&st.amp_r)?;
            st.amp_r.copy_from_slice(o);
            let o = fp.push(&st.phase_r)?;
            st.phase_r.copy_from_slice(o);
        }
        let motion = match st.motion.as_mut() {
            Some(m) => m.push(&st.amp_r)?,
            None => None,
        };
        let od = (dims[0], dims[1], st.n_out);
        let amplitude =
            Array3::from_shape_vec(od, st.amp_r.clone()).map_err(|e| shape(STEP, e.to_string()))?;
        let phase = Array3::from_shape_vec(od, st.phase_r.clone())
            .map_err(|e| shape(STEP, e.to_string()))?;
        Ok(ConditionedFrame {
            amplitude,
            phase,
            motion,
        })
    }
}

/// The stateless per-frame part of conditioning in one pass: sanitized phase and
/// normalized amplitude ([`sanitize`] then [`normalize_amplitude`]) of a frame
/// `(n_tx, n_rx, n_sub)` or a batch `(n, n_tx, n_rx, n_sub)`, without the intermediate
/// array.
pub fn condition_frame(
    csi: ndarray::ArrayViewD<'_, Complex32>,
    rssi: Option<&[f32]>,
    indices: Option<&[f32]>,
) -> Result<(ndarray::ArrayD<f32>, ndarray::ArrayD<f32>)> {
    const STEP: &str = "condition_frame";
    let dims = csi.shape().to_vec();
    if dims.len() < 3 && rssi.is_some() {
        return Err(shape(
            STEP,
            "with rssi the input must be (n_tx, n_rx, n_sub) or (n, n_tx, n_rx, n_sub)",
        ));
    }
    if rssi.is_some() {
        let (a, p) = sanitize(csi, indices)?;
        return Ok((normalize_amplitude(a.view(), rssi)?, p));
    }
    let mut amp = vec![0f32; csi.len()];
    let mut ph = vec![0f32; csi.len()];
    super::with_slice(&csi, |h| {
        condition_frame_into(h, &dims, indices, &mut amp, &mut ph)
    })?;
    let d = ndarray::IxDyn(&dims);
    let a =
        ndarray::ArrayD::from_shape_vec(d.clone(), amp).map_err(|e| shape(STEP, e.to_string()))?;
    let p = ndarray::ArrayD::from_shape_vec(d, ph).map_err(|e| shape(STEP, e.to_string()))?;
    Ok((a, p))
}

/// [`condition_frame`] without RSSI on CSI `h` of shape `dims` (C order), into `amp` and
/// `phase` (each as long as `h`): what the Python binding calls with numpy's buffers.
pub(crate) fn condition_frame_into(
    h: &[Complex32],
    dims: &[usize],
    indices: Option<&[f32]>,
    amp: &mut [f32],
    phase: &mut [f32],
) -> Result<()> {
    const STEP: &str = "condition_frame";
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no subcarrier axis"));
    }
    if h.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let n_sub = dims[dims.len() - 1];
    if h.len() != dims.iter().product::<usize>() || amp.len() != h.len() || phase.len() != h.len() {
        return Err(shape(
            STEP,
            format!(
                "{} values and outputs of {} and {} for shape {dims:?}",
                h.len(),
                amp.len(),
                phase.len()
            ),
        ));
    }
    check_finite_c(STEP, h)?;
    with_sanitizer(n_sub, indices, |san| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { condition_links_avx2(h, san, amp, phase) };
        }
        condition_links(h, san, amp, phase)
    })
}

/// The per-link work of [`condition_frame_into`], compiled once more with AVX2 enabled
/// (8 floats per instruction instead of 4), chosen at run time where the CPU has it. The
/// arithmetic is the same IEEE operations in the same order either way (Rust never fuses
/// a multiply and an add on its own), so both give the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn condition_links_avx2(
    h: &[Complex32],
    san: &mut PhaseSanitizer,
    amp: &mut [f32],
    phase: &mut [f32],
) {
    condition_links(h, san, amp, phase)
}

/// Sanitized phase and robust z-scored amplitude of every link of `h`.
#[inline(always)]
fn condition_links(h: &[Complex32], san: &mut PhaseSanitizer, amp: &mut [f32], phase: &mut [f32]) {
    san.sanitize_links(h, amp, phase);
    // Only links longer than 64 subcarriers use it.
    let mut scratch = Vec::new();
    for link in amp.chunks_exact_mut(san.n_sub()) {
        robust_z_link(link, &mut scratch);
    }
}

/// Runs `f` with a [`PhaseSanitizer`] for `n_sub` subcarriers at `indices`. The one for
/// the default grid (`indices` `None`) is kept per thread and reused, so a stream of
/// single frames does not rebuild (and reallocate) it every call.
fn with_sanitizer<R>(
    n_sub: usize,
    indices: Option<&[f32]>,
    f: impl FnOnce(&mut PhaseSanitizer) -> R,
) -> Result<R> {
    use std::cell::RefCell;
    thread_local! {
        static DEFAULT_GRID: RefCell<Option<PhaseSanitizer>> = const { RefCell::new(None) };
    }
    if indices.is_some() {
        return Ok(f(&mut PhaseSanitizer::new(n_sub, indices)?));
    }
    DEFAULT_GRID.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => {
            if cached.as_ref().map(PhaseSanitizer::n_sub) != Some(n_sub) {
                *cached = Some(PhaseSanitizer::new(n_sub, None)?);
            }
            let san = cached.as_mut().expect("set just above");
            Ok(f(san))
        }
        // Only if `f` itself came back here: no cache for the inner call.
        Err(_) => Ok(f(&mut PhaseSanitizer::new(n_sub, None)?)),
    })
}

/// The batch twin of [`Conditioner`]: a recording `(n, n_tx, n_rx, n_sub)` and optionally
/// one RSSI per frame in; amplitude and phase `(n, n_tx, n_rx, n_out)` and the motion
/// statistic per frame (NaN until `motion_window` frames are in; empty when off) out.
pub fn condition(
    csi: ArrayView4<'_, Complex32>,
    rssi: Option<&[f32]>,
    cfg: &ConditionerConfig,
) -> Result<(Array4<f32>, Array4<f32>, Vec<f64>)> {
    const STEP: &str = "condition";
    cfg.validate()?;
    let n = csi.shape()[0];
    let (amp, mut ph) = sanitize(csi.into_dyn(), cfg.subcarrier_indices.as_deref())?;
    let mut amp = normalize_amplitude(amp.view(), rssi)?;
    if let Some(n_out) = cfg.n_subcarriers {
        amp = resample_real(amp.view(), n_out, cfg.subcarrier_indices.as_deref())?;
        ph = resample_real(ph.view(), n_out, cfg.subcarrier_indices.as_deref())?;
    }
    if cfg.hampel_window > 0 {
        amp = hampel(amp.view(), cfg.hampel_window, cfg.n_sigmas, true)?.0;
        ph = hampel(ph.view(), cfg.hampel_window, cfg.n_sigmas, true)?.0;
    }
    if cfg.filtered() {
        amp = butter_filter(amp.view(), cfg.fs, cfg.low, cfg.high, cfg.order, false)?;
        ph = butter_filter(ph.view(), cfg.fs, cfg.low, cfg.high, cfg.order, false)?;
    }
    let motion = if cfg.motion_window > 0 {
        let mut m = vec![f64::NAN; n];
        if n >= cfg.motion_window {
            let w = cfg.motion_window;
            for (j, v) in motion_statistic(amp.view(), w, 1)?.into_iter().enumerate() {
                m[j + w - 1] = v;
            }
        }
        m
    } else {
        Vec::new()
    };
    let amp = amp
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|e| shape(STEP, e.to_string()))?;
    let ph = ph
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|e| shape(STEP, e.to_string()))?;
    Ok((amp, ph, motion))
}

/// Runs a [`Conditioner`] over every frame of a recording and stacks the results, for
/// comparing with [`condition`].
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn condition_streaming(
    csi: ArrayView4<'_, Complex32>,
    rssi: Option<&[f32]>,
    cfg: &ConditionerConfig,
) -> Result<(Array4<f32>, Array4<f32>, Vec<f64>)> {
    let mut c = Conditioner::new(cfg.clone())?;
    let n = csi.shape()[0];
    if let Some(r) = rssi {
        if r.len() != n {
            return Err(param(
                "condition",
                "rssi",
                format!("has {} values for {n} frames", r.len()),
            ));
        }
    }
    let mut amps = Vec::with_capacity(n);
    let mut phs = Vec::with_capacity(n);
    let mut motion = Vec::with_capacity(n);
    for (i, frame) in csi.axis_iter(Axis(0)).enumerate() {
        let out = c.push(frame, rssi.map(|r| r[i]))?;
        amps.push(out.amplitude);
        phs.push(out.phase);
        if cfg.motion_window > 0 {
            motion.push(out.motion.unwrap_or(f64::NAN));
        }
    }
    let views_a: Vec<_> = amps.iter().map(|a| a.view()).collect();
    let views_p: Vec<_> = phs.iter().map(|a| a.view()).collect();
    let a = ndarray::stack(Axis(0), &views_a).map_err(|e| shape("condition", e.to_string()))?;
    let p = ndarray::stack(Axis(0), &views_p).map_err(|e| shape("condition", e.to_string()))?;
    Ok((a, p, motion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_paths_give_the_same_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        };
        for (round, n_sub) in [1usize, 2, 7, 30, 56, 64, 65, 114, 256]
            .iter()
            .cycle()
            .take(45)
            .enumerate()
        {
            let links = 1 + round % 9;
            let h: Vec<Complex32> = (0..links * n_sub)
                .map(|_| {
                    // Integer parts in some rounds: many equal amplitudes.
                    let (re, im) = (next(), next());
                    if round % 3 == 0 {
                        Complex32::new((re * 8.0).round(), (im * 8.0).round())
                    } else {
                        Complex32::new(re, im)
                    }
                })
                .collect();
            let run = |avx: bool| {
                let mut san = PhaseSanitizer::new(*n_sub, None).unwrap();
                let (mut a, mut p) = (vec![0f32; h.len()], vec![0f32; h.len()]);
                if avx {
                    // SAFETY: checked above that the CPU has AVX2.
                    unsafe { condition_links_avx2(&h, &mut san, &mut a, &mut p) };
                } else {
                    condition_links(&h, &mut san, &mut a, &mut p);
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&a), bits(&p))
            };
            assert_eq!(run(true), run(false), "n_sub {n_sub}, {links} links");
        }
    }

    fn recording(n: usize) -> Array4<Complex32> {
        Array4::from_shape_fn((n, 2, 3, 30), |(t, a, r, k)| {
            let g = 1.0 + 0.5 * ((t * 13) % 7) as f32; // AGC jumps
            let amp = g * (2.0 + (0.2 * k as f32 + 0.1 * t as f32 + r as f32).sin());
            let ph = 0.3 * k as f32 * (1 + t % 3) as f32 + a as f32 + 0.05 * (0.5 * t as f32).cos();
            Complex32::from_polar(if t == 17 && k == 4 { 50.0 * amp } else { amp }, ph)
        })
    }

    #[test]
    fn stream_agrees_with_batch() {
        let x = recording(120);
        let rssi: Vec<f32> = (0..120).map(|t| -50.0 - (t % 5) as f32).collect();
        let cfgs = [
            ConditionerConfig {
                motion_window: 20,
                ..Default::default()
            },
            ConditionerConfig {
                n_subcarriers: Some(56),
                high: Some(10.0),
                fs: 100.0,
                motion_window: 30,
                ..Default::default()
            },
            ConditionerConfig {
                hampel_window: 0,
                low: Some(1.0),
                high: Some(20.0),
                order: 2,
                motion_window: 0,
                ..Default::default()
            },
        ];
        for cfg in &cfgs {
            for r in [None, Some(rssi.as_slice())] {
                let (a, p, m) = condition(x.view(), r, cfg).unwrap();
                let (a2, p2, m2) = condition_streaming(x.view(), r, cfg).unwrap();
                assert_eq!(a.shape(), a2.shape());
                for (u, v) in a.iter().zip(a2.iter()).chain(p.iter().zip(p2.iter())) {
                    assert!(
                        (u - v).abs() <= 1e-5 * (1.0 + u.abs()),
                        "{u} vs {v} ({cfg:?})"
                    );
                }
                assert_eq!(m.len(), m2.len());
                for (u, v) in m.iter().zip(&m2) {
                    assert!(
                        (u.is_nan() && v.is_nan()) || (u - v).abs() < 1e-9,
                        "{u} vs {v}"
                    );
                }
            }
        }
    }

    #[test]
    fn shape_change_is_an_error() {
        let mut c = Conditioner::new(ConditionerConfig::default()).unwrap();
        let a = Array3::from_elem((1, 2, 8), Complex32::new(1.0, 0.5));
        let b = Array3::from_elem((1, 2, 9), Complex32::new(1.0, 0.5));
        c.push(a.view(), None).unwrap();
        assert!(c.push(b.view(), None).is_err());
        c.reset();
        c.push(b.view(), None).unwrap();
        let mut nan = a.clone();
        nan[[0, 0, 0]] = Complex32::new(f32::NAN, 0.0);
        assert!(c.push(nan.view(), None).is_err());
        assert!(Conditioner::new(ConditionerConfig {
            motion_window: 1,
            ..Default::default()
        })
        .is_err());
    }
}
