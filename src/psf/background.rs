//! Robust background level and noise of an image: sigma-clipped median and MAD.
//!
//! The medians come from [`sparseinv_solvers::stats::median_mut`]. The clipping loop is kept
//! here rather than replaced by [`sparseinv_solvers::stats::sigma_clipped`], whose convention
//! differs in two ways that change the results: it recomputes the median and σ on the last
//! kept set after the final clipping round (this returns those of the set that round
//! clipped), and it scales the MAD by `1/Φ⁻¹(3/4) = 1.482602…` where this uses `1.4826`.

use sparseinv_solvers::stats::median_mut;

/// Sigma-clipped (3σ, 5 rounds) median and `1.4826 × MAD` of the finite values.
pub fn background_stats(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let (mut med, mut sig) = (0.0, 0.0);
    for _ in 0..5 {
        if v.is_empty() {
            break;
        }
        med = median_mut(&mut v).expect("non-empty");
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        sig = 1.4826 * median_mut(&mut dev).expect("non-empty");
        if sig == 0.0 {
            break;
        }
        let before = v.len();
        v.retain(|x| (x - med).abs() <= 3.0 * sig);
        if v.len() == before {
            break;
        }
    }
    Some((med, sig))
}
