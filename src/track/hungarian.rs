//! Minimum-cost assignment (the Hungarian method, O(n^3), potentials form) for
//! rectangular cost matrices, with a gate: pairs costing more than the gate are never
//! assigned.

// Index loops read best in matrix code.
#![allow(clippy::needless_range_loop)]

/// Assigns rows to columns minimising the total cost. `cost[r][c]`; rows may differ in
/// length from columns. Returns `(row, col)` pairs whose cost is at most `gate`;
/// non-finite costs count as beyond the gate. Deterministic: ties go to the lowest
/// index.
pub fn assign(cost: &[Vec<f64>], gate: f64) -> Vec<(usize, usize)> {
    let n_rows = cost.len();
    let n_cols = cost.iter().map(Vec::len).max().unwrap_or(0);
    if n_rows == 0 || n_cols == 0 {
        return Vec::new();
    }
    // Square matrix of size n; gated and padded entries cost `big`, which is larger than
    // any sum of admissible costs, so admissible pairs are preferred whenever possible.
    let n = n_rows.max(n_cols);
    let finite_max = cost
        .iter()
        .flatten()
        .filter(|c| c.is_finite() && **c <= gate)
        .fold(0.0f64, |a, c| a.max(c.abs()));
    let big = (finite_max + 1.0) * (n as f64 + 1.0);
    let at = |r: usize, c: usize| -> f64 {
        if r < n_rows {
            match cost[r].get(c) {
                Some(&v) if v.is_finite() && v <= gate => v,
                _ => big,
            }
        } else {
            big
        }
    };
    // e-maxx formulation, 1-based with a virtual column 0.
    let inf = f64::INFINITY;
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let cur = at(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                break; // cannot happen with finite costs; guards against NaN
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = Vec::new();
    for j in 1..=n {
        let (r, c) = (p[j].wrapping_sub(1), j - 1);
        if r < n_rows && c < cost[r].len() {
            let x = cost[r][c];
            if x.is_finite() && x <= gate {
                out.push((r, c));
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(cost: &[Vec<f64>], a: &[(usize, usize)]) -> f64 {
        a.iter().map(|&(r, c)| cost[r][c]).sum()
    }

    /// Exhaustive minimum over all matchings of admissible pairs, maximising the number
    /// of pairs first (what the big-M construction does).
    fn brute(cost: &[Vec<f64>], gate: f64) -> (usize, f64) {
        fn rec(r: usize, cost: &[Vec<f64>], gate: f64, used: &mut Vec<bool>) -> (usize, f64) {
            if r == cost.len() {
                return (0, 0.0);
            }
            let mut best = rec(r + 1, cost, gate, used);
            for c in 0..cost[r].len() {
                if !used[c] && cost[r][c] <= gate {
                    used[c] = true;
                    let (k, s) = rec(r + 1, cost, gate, used);
                    used[c] = false;
                    let cand = (k + 1, s + cost[r][c]);
                    if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1 - 1e-12) {
                        best = cand;
                    }
                }
            }
            best
        }
        let cols = cost.iter().map(Vec::len).max().unwrap_or(0);
        rec(0, cost, gate, &mut vec![false; cols])
    }

    #[test]
    fn matches_brute_force_on_random_matrices() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let (nr, nc) = (rng.gen_range(0..6), rng.gen_range(0..6));
            let cost: Vec<Vec<f64>> = (0..nr)
                .map(|_| (0..nc).map(|_| rng.gen_range(0.0..10.0)).collect())
                .collect();
            let gate = rng.gen_range(2.0..12.0);
            let a = assign(&cost, gate);
            let (k, s) = brute(&cost, gate);
            assert_eq!(a.len(), k, "{cost:?} gate {gate}");
            assert!((total(&cost, &a) - s).abs() < 1e-9, "{cost:?} {a:?}");
            let mut rows: Vec<_> = a.iter().map(|x| x.0).collect();
            let mut cols: Vec<_> = a.iter().map(|x| x.1).collect();
            rows.dedup();
            cols.sort_unstable();
            cols.dedup();
            assert_eq!(rows.len(), a.len());
            assert_eq!(cols.len(), a.len());
        }
    }

    #[test]
    fn gate_and_bad_values() {
        let cost = vec![vec![1.0, f64::NAN], vec![f64::INFINITY, 50.0]];
        assert_eq!(assign(&cost, 10.0), vec![(0, 0)]);
        assert!(assign(&[], 1.0).is_empty());
        assert!(assign(&[vec![]], 1.0).is_empty());
        // Ragged rows are fine.
        assert_eq!(
            assign(&[vec![5.0], vec![1.0, 2.0]], 9.0),
            vec![(0, 0), (1, 1)]
        );
    }
}
