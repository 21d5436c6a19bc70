//! Which frequency in a still window is breathing: the window's strongest band-limited
//! components, each searched for a line.
//!
//! A still window's features (one per antenna pair and subcarrier group) hold a few
//! motions at once, each with its own spatial signature across the features: a chest's
//! breathing (one line), a standing body's sway (a continuum strongest at its low end,
//! moving the whole body about the ankles) and noise. Summed over the features, the
//! sway's low lumps often outshine the breathing line. Split into the principal
//! components of the breathing band's cross-spectral matrix instead, the motions fall
//! mostly into different components; the one whose power is most concentrated in one
//! line is the breather's (`docs/sensing.md`, "Standing people: breathing beneath sway",
//! has what it bought on held-out seeds).

use std::sync::Arc;

use num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};

/// Components searched for the line, strongest first (chosen on the tuning seeds among
/// 2, 3, 4, 6 and 8: 3 and 4 alike, more let noise components' chance peaks win).
pub const COMPONENTS: usize = 4;

/// Orthogonal iterations for the components. The band's matrix is small (at most 64
/// features a link); where two leading eigenvalues stand 0.7 apart the error shrinks by
/// 0.7^60 (1e-9). Close noise components may stay mixed, which no line search minds.
const ITERATIONS: usize = 60;

/// The line found in one component: its padded-spectrum bin and power spectrum.
#[derive(Debug, Clone)]
pub struct Line {
    /// The strongest local maximum's bin, in the `n_fft`-point spectrum.
    pub bin: usize,
    /// The component's folded power spectrum (`n_fft / 2 + 1` bins).
    pub power: Vec<f64>,
    /// The line's share of the component's band power.
    pub concentration: f64,
}

/// Feature `f`'s least-squares line over `n` blocks, `value(i)` its block `i`: the mean,
/// the slope per block, and the centre abscissa (the line is `mean + slope (i - centre)`).
pub(super) fn linear_trend(
    n: usize,
    value: impl Fn(usize) -> Complex32,
) -> (Complex32, Complex32, f32) {
    let c = (n as f32 - 1.0) / 2.0;
    let sxx: f32 = (0..n).map(|i| (i as f32 - c).powi(2)).sum();
    let mean = (0..n).map(&value).sum::<Complex32>() / n as f32;
    let slope = (0..n).map(|i| value(i) * (i as f32 - c)).sum::<Complex32>() / sxx;
    (mean, slope, c)
}

/// Linear trend removed from each feature of `blocks` (oldest first), in place.
fn detrend(blocks: &mut [Vec<Complex32>]) {
    let n = blocks.len();
    if n < 2 {
        return;
    }
    for f in 0..blocks[0].len() {
        let (mean, slope, c) = linear_trend(n, |i| blocks[i][f]);
        for (i, b) in blocks.iter_mut().enumerate() {
            b[f] -= mean + slope * (i as f32 - c);
        }
    }
}

/// A Hann window of `n` points, sampled at the half points.
pub(super) fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = std::f32::consts::PI * (i as f32 + 0.5) / n as f32;
            x.sin().powi(2)
        })
        .collect()
}

/// `folded[k]`: the power at `+k` and `-k` bins added.
pub(super) fn fold(buf: &[Complex32]) -> Vec<f64> {
    let n = buf.len();
    let mut p = vec![0f64; n / 2 + 1];
    p[0] = buf[0].norm_sqr() as f64;
    for k in 1..=n / 2 {
        let neg = if k == n - k {
            0.0
        } else {
            buf[n - k].norm_sqr()
        };
        p[k] = (buf[k].norm_sqr() + neg) as f64;
    }
    p
}

/// The band's cross-spectral matrix, `f x f` row-major: the sum over the unpadded
/// spectrum's bins whose frequency (either sign) lies in `band_hz`.
fn band_matrix(
    planner: &mut FftPlanner<f32>,
    blocks: &[Vec<Complex32>],
    window: &[f32],
    block_s: f64,
    band_hz: [f64; 2],
) -> Vec<Complex64> {
    let (n, f) = (blocks.len(), blocks[0].len());
    let df = 1.0 / (n as f64 * block_s);
    let bins: Vec<usize> = (0..n)
        .filter(|&k| {
            let hz = k.min(n - k) as f64 * df;
            hz >= band_hz[0] && hz <= band_hz[1]
        })
        .collect();
    let fft: Arc<dyn Fft<f32>> = planner.plan_fft_forward(n);
    // spectra[k][feature] for the band's bins only.
    let mut spectra = vec![vec![Complex64::default(); f]; bins.len()];
    let mut buf = vec![Complex32::default(); n];
    for j in 0..f {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = blocks[i][j] * window[i];
        }
        fft.process(&mut buf);
        for (row, &k) in spectra.iter_mut().zip(&bins) {
            row[j] = Complex64::new(buf[k].re as f64, buf[k].im as f64);
        }
    }
    let mut c = vec![Complex64::default(); f * f];
    for x in &spectra {
        for a in 0..f {
            for b in 0..f {
                c[a * f + b] += x[a] * x[b].conj();
            }
        }
    }
    c
}

/// The `r` leading eigenvectors of the Hermitian `f x f` matrix `c` (orthogonal
/// iteration from a fixed start, so the same window gives the same components).
fn leading_vectors(c: &[Complex64], f: usize, r: usize) -> Vec<Vec<Complex64>> {
    let r = r.min(f);
    // A fixed, well-spread start: a deterministic pseudo-random sequence.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut q: Vec<Vec<Complex64>> = (0..r)
        .map(|_| (0..f).map(|_| Complex64::new(next(), next())).collect())
        .collect();
    orthonormalize(&mut q);
    for _ in 0..ITERATIONS {
        q = q
            .iter()
            .map(|v| {
                (0..f)
                    .map(|a| (0..f).map(|b| c[a * f + b] * v[b]).sum())
                    .collect()
            })
            .collect();
        orthonormalize(&mut q);
    }
    q
}

/// Gram-Schmidt, in order; a vector left with no length is kept at zero.
fn orthonormalize(q: &mut [Vec<Complex64>]) {
    for i in 0..q.len() {
        for j in 0..i {
            let dot: Complex64 = q[j].iter().zip(&q[i]).map(|(a, b)| a.conj() * b).sum();
            let (head, tail) = q.split_at_mut(i);
            for (x, y) in tail[0].iter_mut().zip(&head[j]) {
                *x -= dot * y;
            }
        }
        let norm = q[i].iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            q[i].iter_mut().for_each(|x| *x /= norm);
        } else {
            q[i].iter_mut().for_each(|x| *x = Complex64::default());
        }
    }
}

/// The breathing line of a still window: `blocks` are its block means (oldest first,
/// every block the same features), `block_s` their spacing, `band_hz` the breathing
/// band, `bins` that band's `[lo, hi]` in an `n_fft`-point spectrum. Among the
/// [`COMPONENTS`] strongest band-limited components, the one whose strongest local
/// maximum (strictly inside the band) holds the largest share of its band power. None
/// when no component has a local maximum in the band.
pub fn find(
    planner: &mut FftPlanner<f32>,
    blocks: &[Vec<Complex32>],
    block_s: f64,
    band_hz: [f64; 2],
    bins: [usize; 2],
    n_fft: usize,
) -> Option<Line> {
    let n = blocks.len();
    let f = blocks.first()?.len();
    let [lo, hi] = bins;
    // Too short a window, or a band with no inner bin of the padded spectrum: no line.
    if n < 8 || f == 0 || n > n_fft || lo + 2 >= hi || hi >= n_fft / 2 {
        return None;
    }
    let mut x = blocks.to_vec();
    detrend(&mut x);
    let window = hann(n);
    let c = band_matrix(planner, &x, &window, block_s, band_hz);
    let fft: Arc<dyn Fft<f32>> = planner.plan_fft_forward(n_fft);
    let mut lines: Vec<Line> = Vec::new();
    let mut buf = vec![Complex32::default(); n_fft];
    for v in leading_vectors(&c, f, COMPONENTS) {
        buf.iter_mut().for_each(|b| *b = Complex32::default());
        for (i, row) in x.iter().enumerate() {
            let y: Complex64 = row
                .iter()
                .zip(&v)
                .map(|(a, w)| Complex64::new(a.re as f64, a.im as f64) * w.conj())
                .sum();
            buf[i] = Complex32::new(y.re as f32, y.im as f32) * window[i];
        }
        fft.process(&mut buf);
        let power = fold(&buf);
        let total: f64 = power[lo..=hi.min(power.len() - 1)].iter().sum();
        let Some(bin) = (lo.max(1) + 1..hi.min(power.len() - 2))
            .filter(|&k| power[k] >= power[k - 1] && power[k] >= power[k + 1])
            .max_by(|a, b| power[*a].total_cmp(&power[*b]))
        else {
            continue;
        };
        if total > 0.0 && total.is_finite() {
            let concentration = power[bin] / total;
            lines.push(Line {
                bin,
                power,
                concentration,
            });
        }
    }
    let best = lines
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.concentration.total_cmp(&b.1.concentration))?
        .0;
    // A breathing chest swings its paths' phases by up to a few radians, so each feature
    // holds the breathing's harmonics too; a mix of the features in which the
    // fundamental cancels (a path's `e^{i phi}` and its conjugate's `e^{-i phi}`, added)
    // is left with a clean second harmonic. A well-concentrated line at a half or a
    // third of the chosen one's frequency is the rate.
    let chosen = &lines[best];
    let fundamental = lines.iter().enumerate().find(|(_, l)| {
        l.concentration >= HARMONIC_SHARE * chosen.concentration
            && [2usize, 3].iter().any(|&h| {
                let tolerance = h;
                chosen.bin.abs_diff(h * l.bin) <= tolerance
            })
    });
    let pick = fundamental.map_or(best, |(j, _)| j);
    Some(lines.swap_remove(pick))
}

/// How concentrated (against the chosen line's concentration) a line at a half or a
/// third of its frequency must be to be taken as its fundamental.
const HARMONIC_SHARE: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` blocks of `f` features at 10 blocks a second: each feature a fixed mix of a
    /// breathing line at `bpm` and a strong slow wander (a sum of low lines, as sway),
    /// with independent signatures across the features.
    fn window(n: usize, f: usize, bpm: f64, wander: f64) -> Vec<Vec<Complex32>> {
        let hz = bpm / 60.0;
        (0..n)
            .map(|i| {
                let t = i as f64 * 0.1;
                let breath = (2.0 * std::f64::consts::PI * hz * t).sin();
                let sway = wander
                    * ((2.0 * std::f64::consts::PI * 0.16 * t).sin()
                        + 0.7 * (2.0 * std::f64::consts::PI * 0.21 * t + 1.0).sin());
                (0..f)
                    .map(|j| {
                        let a = (j as f64 * 0.7).sin();
                        let b = (j as f64 * 1.9 + 0.3).cos();
                        Complex32::new((a * breath) as f32, (b * sway) as f32)
                    })
                    .collect()
            })
            .collect()
    }

    fn rate(blocks: &[Vec<Complex32>]) -> f64 {
        let n_fft = 1024;
        let df = 1.0 / (n_fft as f64 * 0.1);
        let bins = [(0.1 / df).ceil() as usize, (0.7 / df) as usize];
        let mut planner = FftPlanner::new();
        let line = find(&mut planner, blocks, 0.1, [0.1, 0.7], bins, n_fft).unwrap();
        60.0 * line.bin as f64 * df
    }

    /// The strongest local maximum of the features' summed spectrum, bpm.
    fn summed_rate(blocks: &[Vec<Complex32>]) -> f64 {
        let (n, n_fft) = (blocks.len(), 1024);
        let mut x = blocks.to_vec();
        detrend(&mut x);
        let w = hann(n);
        let fft = FftPlanner::new().plan_fft_forward(n_fft);
        let mut sum = vec![0f64; n_fft / 2 + 1];
        for j in 0..x[0].len() {
            let mut buf = vec![Complex32::default(); n_fft];
            for ((b, row), wi) in buf.iter_mut().zip(&x).zip(&w) {
                *b = row[j] * wi;
            }
            fft.process(&mut buf);
            sum.iter_mut().zip(fold(&buf)).for_each(|(s, p)| *s += p);
        }
        let df = 1.0 / (n_fft as f64 * 0.1);
        let (lo, hi) = ((0.1 / df).ceil() as usize, (0.7 / df) as usize);
        let k = (lo + 1..hi)
            .filter(|&k| sum[k] >= sum[k - 1] && sum[k] >= sum[k + 1])
            .max_by(|a, b| sum[*a].total_cmp(&sum[*b]))
            .unwrap();
        60.0 * k as f64 * df
    }

    #[test]
    fn the_breathing_line_is_found_beneath_a_stronger_slow_wander() {
        // The wander holds about 30 times the breathing's power, in its own signature:
        // summed over the features its lines lead; the components keep them apart.
        let blocks = window(256, 24, 18.0, 4.5);
        let summed = summed_rate(&blocks);
        assert!(
            (summed - 18.0).abs() > 3.0,
            "the sum should be misled: {summed}"
        );
        let bpm = rate(&blocks);
        assert!((bpm - 18.0).abs() < 0.7, "{bpm}");
    }

    #[test]
    fn a_window_too_short_or_a_band_without_inner_bins_gives_no_line() {
        let mut planner = FftPlanner::new();
        let blocks = window(200, 8, 12.0, 0.0);
        let band = [0.1, 0.7];
        assert!(find(&mut planner, &blocks[..7], 0.1, band, [11, 71], 1024).is_none());
        assert!(find(&mut planner, &blocks, 0.1, band, [40, 41], 1024).is_none());
        assert!(find(&mut planner, &blocks, 0.1, band, [11, 600], 1024).is_none());
        assert!(find(&mut planner, &blocks, 0.1, band, [11, 71], 1024).is_some());
    }

    #[test]
    fn a_lone_breathing_line_is_its_own_component() {
        let bpm = rate(&window(200, 16, 12.0, 0.0));
        assert!((bpm - 12.0).abs() < 0.7, "{bpm}");
    }

    #[test]
    fn the_components_are_orthonormal_and_the_same_each_time() {
        let blocks = window(128, 10, 15.0, 2.0);
        let mut x = blocks.clone();
        detrend(&mut x);
        let mut planner = FftPlanner::new();
        let c = band_matrix(&mut planner, &x, &hann(128), 0.1, [0.1, 0.7]);
        let q = leading_vectors(&c, 10, 4);
        for i in 0..q.len() {
            for j in 0..q.len() {
                let dot: Complex64 = q[i].iter().zip(&q[j]).map(|(a, b)| a.conj() * b).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot.norm() - want).abs() < 1e-6, "{i} {j} {dot}");
            }
        }
        assert_eq!(q, leading_vectors(&c, 10, 4));
    }
}
