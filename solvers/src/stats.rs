//! Robust statistics shared by the noise estimators, the sky/background estimates, PSF
//! estimation and the input normalisation of learned models: median, percentiles (numpy's
//! linear interpolation), the median absolute deviation and sigma clipping.
//!
//! Every function ignores nothing silently: callers pass finite values (filter NaN first);
//! empty input gives `None`.
//!
//! ```
//! use sparseinv_solvers::stats::{mad_sigma, median, percentile, MAD_TO_SIGMA};
//! assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
//! assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 25.0), Some(2.0));
//! // 1.4826 × median(|x − median|): the standard deviation for Gaussian data
//! assert_eq!(mad_sigma(&[1.0, 2.0, 3.0, 4.0, 100.0]), Some(MAD_TO_SIGMA));
//! ```

/// `1 / Φ⁻¹(3/4)`: scales the median absolute deviation to a Gaussian standard deviation.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Median of `v` (the mean of the two middle values for even lengths), by selection in
/// `O(n)`; `v` is reordered. `None` when empty.
pub fn median_mut(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lo_part, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let hi = *m;
    if n % 2 == 1 {
        Some(hi)
    } else {
        let lo = lo_part.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        Some(0.5 * (lo + hi))
    }
}

/// Median of `v` (copied); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    median_mut(&mut v.to_vec())
}

/// Percentile `p ∈ [0, 100]` of **sorted** data with numpy's default linear interpolation:
/// position `p/100 · (n − 1)`. `None` when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    Some(if i + 1 < n {
        sorted[i] + f * (sorted[i + 1] - sorted[i])
    } else {
        sorted[n - 1]
    })
}

/// Percentile `p ∈ [0, 100]` of `v` (numpy's linear interpolation), by selection; `v` is
/// reordered. `None` when empty.
pub fn percentile_mut(v: &mut [f64], p: f64) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let pos = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    let (_, a, rest) = v.select_nth_unstable_by(i, |a, b| a.total_cmp(b));
    let a = *a;
    if f == 0.0 || rest.is_empty() {
        return Some(a);
    }
    let b = rest.iter().cloned().fold(f64::INFINITY, f64::min);
    Some(a + f * (b - a))
}

/// Percentile `p ∈ [0, 100]` of `v` (copied); `None` when empty.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    percentile_mut(&mut v.to_vec(), p)
}

/// `MAD_TO_SIGMA × median(|v − median(v)|)`: a robust standard deviation. `None` when empty.
pub fn mad_sigma(v: &[f64]) -> Option<f64> {
    let mut w = v.to_vec();
    let med = median_mut(&mut w)?;
    w.iter_mut().for_each(|x| *x = (*x - med).abs());
    median_mut(&mut w).map(|m| MAD_TO_SIGMA * m)
}

/// Sigma-clipped median and robust standard deviation: starting from all values, repeat
/// `rounds` times (or until nothing changes) `med = median`, `σ = MAD_TO_SIGMA · MAD`, keep the
/// values with `|v − med| ≤ k σ`. Non-finite values are dropped first. Returns `(med, σ)` of
/// the last kept set; `None` when no finite value is given.
pub fn sigma_clipped(
    values: impl Iterator<Item = f64>,
    k: f64,
    rounds: usize,
) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let mut med = 0.0;
    let mut sig = 0.0;
    for _ in 0..rounds.max(1) {
        med = median_mut(&mut v)?;
        sig = mad_sigma(&v)?;
        let before = v.len();
        if sig > 0.0 {
            v.retain(|x| (x - med).abs() <= k * sig);
        }
        if v.len() == before || v.is_empty() {
            break;
        }
    }
    if !v.is_empty() {
        med = median_mut(&mut v)?;
        sig = mad_sigma(&v)?;
    }
    Some((med, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: sort and take the middle / interpolate (numpy's definition).
    #[test]
    fn agree_with_sorting() {
        let data: Vec<f64> = (0..101)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 - 7.0)
            .collect();
        for n in 1..data.len() {
            let v = &data[..n];
            let mut s = v.to_vec();
            s.sort_by(|a, b| a.total_cmp(b));
            let med = if n % 2 == 1 {
                s[n / 2]
            } else {
                0.5 * (s[n / 2 - 1] + s[n / 2])
            };
            assert_eq!(median(v), Some(med));
            for p in [0.0, 1.0, 12.5, 50.0, 73.3, 99.0, 100.0] {
                let want = percentile_sorted(&s, p).unwrap();
                assert!(
                    (percentile(v, p).unwrap() - want).abs() < 1e-12,
                    "n={n} p={p}"
                );
            }
        }
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&[], 50.0), None);
        // numpy: np.percentile([1, 2, 3, 4], 40) = 2.2
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 40.0).unwrap() - 2.2).abs() < 1e-12);
    }

    #[test]
    fn clipping_rejects_outliers() {
        let mut v: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        v.extend([1e6, -1e6, 5e3]);
        let (med, sig) = sigma_clipped(v.into_iter(), 3.0, 5).unwrap();
        assert!(med.abs() < 0.01, "{med}");
        // uniform on [-0.5, 0.5): MAD = 0.25 → σ ≈ 0.37
        assert!((sig - 0.25 * MAD_TO_SIGMA).abs() < 0.01, "{sig}");
    }
}
