//! Which frequency in a still window is breathing: the band's bins judged each against
//! the directions of all the others.
//!
//! A still window's features (one per antenna pair and subcarrier group) hold a few
//! motions at once, each with its own spatial signature across the features: a chest's
//! breathing (one line), a standing body's sway (a continuum strongest at its low end,
//! moving the whole body about the ankles) and noise. Summed over the features, the
//! sway's low lumps often outshine the breathing line. But the sway is broadband: its
//! few signatures are the same at every frequency of the band, so a sway lump at one bin
//! lies in the directions its neighbours span, and projecting those out leaves little of
//! it; a breathing line is at one frequency, and what it holds outside the other bins'
//! directions stays (`docs/sensing.md`, "Standing people: breathing beneath sway", has
//! what it bought on held-out seeds).

use std::sync::Arc;

use num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};

/// Directions of the band's other bins projected out of a candidate's (chosen on the
/// tuning seeds among 1, 2, 3, 4 and 6: 3 and up alike, 4 a little better for standing
/// people).
pub const NULLED: usize = 4;

/// Bins on each side of a candidate left out of the directions projected out of it: a
/// Hann window's main lobe is two bins wide each way, so a line's own power stays out of
/// the directions that judge it (chosen on the tuning seeds among 1, 2 and 3).
const GUARD_BINS: usize = 2;

/// Orthogonal iterations for the strongest directions. The band's Gram matrix is small
/// (two rows per band bin: at most a few dozen); where two leading eigenvalues stand 0.7
/// apart the error shrinks by 0.7^60 (1e-9). Close noise directions may stay mixed, which
/// the projection does not mind (it removes their span).
const ITERATIONS: usize = 60;

/// The line found: its padded-spectrum bin and the power around it.
#[derive(Debug, Clone)]
pub struct Line {
    /// The strongest local maximum's bin, in the `n_fft`-point spectrum.
    pub bin: usize,
    /// The chosen candidate's residual power, folded (`n_fft / 2 + 1` bins; zero outside
    /// the searched span and its two neighbours).
    pub power: Vec<f64>,
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

/// The unpadded spectrum's band rows: for each bin whose frequency (either sign) lies in
/// `band_hz`, its distance from zero in bins and its vector over the features.
fn band_rows(
    planner: &mut FftPlanner<f32>,
    blocks: &[Vec<Complex32>],
    window: &[f32],
    block_s: f64,
    band_hz: [f64; 2],
) -> Vec<(usize, Vec<Complex64>)> {
    let (n, f) = (blocks.len(), blocks[0].len());
    let df = 1.0 / (n as f64 * block_s);
    let bins: Vec<usize> = (1..n)
        .filter(|&k| {
            let hz = k.min(n - k) as f64 * df;
            hz >= band_hz[0] && hz <= band_hz[1]
        })
        .collect();
    let fft: Arc<dyn Fft<f32>> = planner.plan_fft_forward(n);
    let mut rows: Vec<(usize, Vec<Complex64>)> = bins
        .iter()
        .map(|&k| (k.min(n - k), vec![Complex64::default(); f]))
        .collect();
    let mut buf = vec![Complex32::default(); n];
    for j in 0..f {
        for ((v, block), w) in buf.iter_mut().zip(blocks).zip(window) {
            *v = block[j] * w;
        }
        fft.process(&mut buf);
        for (row, &k) in rows.iter_mut().zip(&bins) {
            row.1[j] = Complex64::new(buf[k].re as f64, buf[k].im as f64);
        }
    }
    rows
}

/// `<a, b>`: the features' inner product, `sum a[f] conj(b[f])`.
fn inner(a: &[Complex64], b: &[Complex64]) -> Complex64 {
    a.iter().zip(b).map(|(x, y)| x * y.conj()).sum()
}

/// The strongest directions of a set of rows, held as the leading eigenvectors `u` (over
/// the rows) of their Gram matrix with the eigenvalues `l`: the direction is
/// `sum_a conj(u[a]) row_a / sqrt(l)`, so a vector `x`'s coefficient on it is
/// `sum_a u[a] <x, row_a> / sqrt(l)`.
struct Directions {
    u: Vec<Vec<Complex64>>,
    l: Vec<f64>,
}

impl Directions {
    /// The `r` strongest directions of the rows `set` indexes, from the rows' Gram matrix
    /// `gram` (`m x m`, `gram[a * m + b] = <row_a, row_b>`).
    fn of(gram: &[Complex64], m: usize, set: &[usize], r: usize) -> Directions {
        let s = set.len();
        let sub: Vec<Complex64> = set
            .iter()
            .flat_map(|&a| set.iter().map(move |&b| gram[a * m + b]))
            .collect();
        let trace: f64 = (0..s).map(|a| sub[a * s + a].re).sum();
        let (mut u, mut l) = (Vec::new(), Vec::new());
        for v in leading_vectors(&sub, s, r) {
            // The Rayleigh quotient: the eigenvalue once the iteration has converged.
            let mv: Vec<Complex64> = (0..s)
                .map(|a| (0..s).map(|b| sub[a * s + b] * v[b]).sum())
                .collect();
            let lambda = inner(&mv, &v).re;
            // A direction holding nothing (fewer rows than directions, or rows that
            // repeat each other) is no direction.
            if lambda > 1e-12 * trace && lambda.is_finite() {
                u.push(v);
                l.push(lambda);
            }
        }
        Directions { u, l }
    }

    /// What of a vector is left outside these directions: `norm2` its squared length,
    /// `dots[a]` its inner product with the set's row `a`.
    fn residual(&self, norm2: f64, dots: &[Complex64]) -> f64 {
        let along: f64 = self
            .u
            .iter()
            .zip(&self.l)
            .map(|(u, l)| {
                u.iter()
                    .zip(dots)
                    .map(|(a, d)| a * d)
                    .sum::<Complex64>()
                    .norm_sqr()
                    / l
            })
            .sum();
        (norm2 - along).max(0.0)
    }
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
/// band, `bins` that band's `[lo, hi]` in an `n_fft`-point spectrum.
///
/// Each band bin of the unpadded spectrum is a candidate. Its score is the power left in
/// its vector (both signs) once the [`NULLED`] strongest directions of the band's *other*
/// bins (those more than `GUARD_BINS` (2) away) are projected out: a standing body's sway
/// is broadband, the same few directions at every frequency, so its lumps are projected
/// out by their neighbours; a breathing line is at one frequency, and its direction is
/// not among the others'. The best candidate's residual is then searched on the padded
/// spectrum, within one and a half unpadded bins, for the line's bin. None when the
/// window is too short or the band has no inner bin.
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
    let rows = band_rows(planner, &x, &window, block_s, band_hz);
    let m = rows.len();
    let gram: Vec<Complex64> = rows
        .iter()
        .flat_map(|a| rows.iter().map(move |b| inner(&a.1, &b.1)))
        .collect();
    let others = |k: usize| -> Vec<usize> {
        (0..m)
            .filter(|&a| rows[a].0.abs_diff(k) > GUARD_BINS)
            .collect()
    };
    // The candidates: each band bin's two signs scored together.
    let mut best: Option<(f64, usize, Vec<usize>, Directions)> = None;
    let mut candidates: Vec<usize> = rows.iter().map(|r| r.0).collect();
    candidates.sort_unstable();
    candidates.dedup();
    for &k in &candidates {
        let set = others(k);
        let dirs = Directions::of(&gram, m, &set, NULLED);
        let score: f64 = (0..m)
            .filter(|&c| rows[c].0 == k)
            .map(|c| {
                let dots: Vec<Complex64> = set.iter().map(|&a| gram[c * m + a]).collect();
                dirs.residual(gram[c * m + c].re, &dots)
            })
            .sum();
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, k, set, dirs));
        }
    }
    // The line's bin on the padded spectrum, in the chosen candidate's residual.
    let (_, k, set, dirs) = best?;
    let scale = n_fft as f64 / n as f64;
    // At least bin 2, so the span's lower neighbour has a negative twin (bin 0 has none).
    let from = (((k as f64 - 1.5) * scale).floor() as usize).max(lo.max(2));
    let to = (((k as f64 + 1.5) * scale).ceil() as usize)
        .min(hi)
        .min(n_fft / 2 - 1);
    if from >= to {
        return None;
    }
    let fft: Arc<dyn Fft<f32>> = planner.plan_fft_forward(n_fft);
    // padded[b][feature] for the bins from - 1 ..= to + 1, each sign.
    let span: Vec<usize> = (from - 1..=to + 1).collect();
    let mut plus = vec![vec![Complex64::default(); f]; span.len()];
    let mut minus = plus.clone();
    let mut buf = vec![Complex32::default(); n_fft];
    for j in 0..f {
        buf.fill(Complex32::default());
        for (i, v) in buf.iter_mut().take(n).enumerate() {
            *v = x[i][j] * window[i];
        }
        fft.process(&mut buf);
        for (b, &bin) in span.iter().enumerate() {
            let (p, q) = (buf[bin], buf[n_fft - bin]);
            plus[b][j] = Complex64::new(p.re as f64, p.im as f64);
            minus[b][j] = Complex64::new(q.re as f64, q.im as f64);
        }
    }
    let left = |v: &[Complex64]| {
        let dots: Vec<Complex64> = set.iter().map(|&a| inner(v, &rows[a].1)).collect();
        dirs.residual(inner(v, v).re, &dots)
    };
    let mut power = vec![0f64; n_fft / 2 + 1];
    for (b, &bin) in span.iter().enumerate() {
        power[bin] = left(&plus[b]) + left(&minus[b]);
    }
    let bin = (from..=to).max_by(|a, b| power[*a].total_cmp(&power[*b]))?;
    Some(Line { bin, power })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` blocks of `f` features at 10 blocks a second: each feature a fixed mix of a
    /// breathing line at `bpm` and a strong broadband wander (as a standing body's sway:
    /// 20 lines log-spaced over 0.1-1 Hz, power falling as `1 / f^2`), with independent
    /// signatures across the features.
    /// A broadband wander as 20 lines `(hz, amplitude, phase)` log-spaced over 0.1-1 Hz:
    /// mean square falling as 1 / f (log-spaced lines: density 1 / f^2), each line's
    /// amplitude scattered as a random draw's would be, a fixed phase.
    pub(crate) fn wander_lines() -> Vec<(f64, f64, f64)> {
        let tau = 2.0 * std::f64::consts::PI;
        (0..20)
            .map(|j| {
                let fj = 0.1 * 10f64.powf((j as f64 + 0.5) / 20.0);
                let scatter = 0.3 + 1.4 * (j as f64 * 0.618_034).fract();
                (
                    fj,
                    scatter * (0.1 / fj).sqrt(),
                    (j as f64 * 2.399).rem_euclid(tau),
                )
            })
            .collect()
    }

    fn window(n: usize, f: usize, bpm: f64, wander: f64) -> Vec<Vec<Complex32>> {
        let hz = bpm / 60.0;
        let tau = 2.0 * std::f64::consts::PI;
        let lines = wander_lines();
        (0..n)
            .map(|i| {
                let t = i as f64 * 0.1;
                let breath = (tau * hz * t).sin();
                let sway = wander
                    * lines
                        .iter()
                        .map(|(fj, a, ph)| a * (tau * fj * t + ph).sin())
                        .sum::<f64>();
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
    fn the_breathing_line_is_found_beneath_a_stronger_broadband_wander() {
        // The wander's strongest lines each hold several times the breathing's power, in
        // its own signature: summed over the features they lead; judged against the
        // other bins' directions they are projected out.
        let blocks = window(256, 24, 26.0, 4.0);
        let summed = summed_rate(&blocks);
        assert!(
            (summed - 26.0).abs() > 3.0,
            "the sum should be misled: {summed}"
        );
        let bpm = rate(&blocks);
        assert!((bpm - 26.0).abs() < 0.7, "{bpm}");
    }

    #[test]
    fn a_window_too_short_or_a_band_without_inner_bins_gives_no_line() {
        let mut planner = FftPlanner::new();
        let blocks = window(200, 8, 12.0, 0.0);
        let band = [0.1, 0.7];
        assert!(find(&mut planner, &blocks[..7], 0.1, band, [11, 71], 1024).is_none());
        assert!(find(&mut planner, &blocks, 0.1, band, [40, 41], 1024).is_none());
        assert!(find(&mut planner, &blocks, 0.1, band, [11, 600], 1024).is_none());
        // A band reaching down to bin 0, and a line at its bottom (3 bpm): searched from bin
        // 2, never out of range.
        let slow = window(200, 8, 3.0, 0.0);
        let low = find(&mut planner, &slow, 0.1, [0.0, 0.7], [0, 71], 1024);
        assert!(low.is_some_and(|l| l.bin >= 2));
        assert!(find(&mut planner, &blocks, 0.1, band, [11, 71], 1024).is_some());
    }

    #[test]
    fn a_lone_breathing_line_is_found() {
        let bpm = rate(&window(200, 16, 12.0, 0.0));
        assert!((bpm - 12.0).abs() < 0.7, "{bpm}");
    }

    #[test]
    fn the_directions_are_orthonormal_and_the_same_each_time() {
        let blocks = window(128, 10, 15.0, 2.0);
        let mut x = blocks.clone();
        detrend(&mut x);
        let mut planner = FftPlanner::new();
        let rows = band_rows(&mut planner, &x, &hann(128), 0.1, [0.1, 0.7]);
        let m = rows.len();
        let gram: Vec<Complex64> = rows
            .iter()
            .flat_map(|a| rows.iter().map(move |b| inner(&a.1, &b.1)))
            .collect();
        let set: Vec<usize> = (0..m).step_by(2).collect();
        // The window holds two signatures (breathing's and the wander's), so two directions
        // out of the four asked for: the others would hold nothing.
        let d = Directions::of(&gram, m, &set, 4);
        assert_eq!(d.u.len(), 2);
        // The directions themselves, over the features.
        let w: Vec<Vec<Complex64>> =
            d.u.iter()
                .zip(&d.l)
                .map(|(u, l)| {
                    (0..10)
                        .map(|j| {
                            set.iter()
                                .zip(u)
                                .map(|(&a, ua)| ua.conj() * rows[a].1[j])
                                .sum::<Complex64>()
                                / l.sqrt()
                        })
                        .collect()
                })
                .collect();
        for i in 0..w.len() {
            for j in 0..w.len() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((inner(&w[i], &w[j]).norm() - want).abs() < 1e-6, "{i} {j}");
            }
        }
        // A row of the set lies in the span of all its directions: nothing is left of it.
        let all = Directions::of(&gram, m, &set, set.len());
        let a = set[0];
        let dots: Vec<Complex64> = set.iter().map(|&b| gram[a * m + b]).collect();
        assert!(all.residual(gram[a * m + a].re, &dots) < 1e-6 * gram[a * m + a].re);
        let again = Directions::of(&gram, m, &set, 4);
        assert_eq!(d.u, again.u);
    }
}
