//! Starlet-sparse deconvolution (analysis ℓ1, Condat–Vũ) and active-support re-fitting.

use super::{check_inputs, mask_weights, masked_data};
use crate::error::{Error, Result};
use crate::op::{op_norm, Boundary, Conv2d, LinearOperator, NormEstimate, Starlet};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Ix3};

/// Options of [`starlet_sparse`].
#[derive(Debug, Clone)]
pub struct StarletSparseParams {
    /// Number of starlet wavelet scales `J` (default 4).
    pub scales: usize,
    /// Threshold in noise units: `λ_j = k σ s_j` (default 3).
    pub k_sigma: f64,
    /// Noise standard deviation of the data; `None` estimates it by
    /// [`estimate_noise_sigma`](super::estimate_noise_sigma).
    pub sigma: Option<f64>,
    /// Number of primal–dual iterations (default 200).
    pub iters: usize,
    /// Boundary model of the blur (default [`Boundary::Same`]).
    pub boundary: Boundary,
    /// Seed of the noise realisation used to calibrate `s_j` (default 0).
    pub seed: u64,
}

impl Default for StarletSparseParams {
    fn default() -> Self {
        StarletSparseParams {
            scales: 4,
            k_sigma: 3.0,
            sigma: None,
            iters: 200,
            boundary: Boundary::Same,
            seed: 0,
        }
    }
}

/// The output of [`starlet_sparse`].
#[derive(Debug, Clone)]
pub struct StarletSparseResult {
    /// The estimate `x ≥ 0`.
    pub x: Array2<f64>,
    /// The objective `½‖M⊙(Ax − y)‖² + Σ_j λ_j‖W_j x‖₁` after each iteration (entry 0 is
    /// the starting point).
    pub objective: Vec<f64>,
    /// The per-scale weights `λ_j` (length `J`; the coarse plane is not penalised).
    pub lambdas: Vec<f64>,
    /// The noise level used.
    pub sigma: f64,
}

/// Weighted ℓ1 of the wavelet planes (coarse plane excluded).
fn l1(w: ArrayView3<f64>, lam: &[f64]) -> f64 {
    lam.iter()
        .enumerate()
        .map(|(j, l)| {
            l * w
                .index_axis(Axis(0), j)
                .iter()
                .map(|v| v.abs())
                .sum::<f64>()
        })
        .sum()
}

/// Sparse deconvolution with a starlet analysis prior and positivity:
///
/// ```text
/// min_x ½‖M⊙(A x − y)‖² + Σ_{j<J} λ_j ‖W_j x‖₁   s.t. x ≥ 0
/// ```
///
/// `A` is the PSF convolution (boundary [`StarletSparseParams::boundary`]), `M` the 0/1 mask,
/// `W_j` the starlet wavelet planes (the coarse plane is free). Solved exactly by the
/// Condat–Vũ primal–dual algorithm (Condat, JOTA 158, 2013; Vũ, Adv. Comput. Math. 38, 2013):
///
/// ```text
/// x_{k+1} = P₊( x_k − τ (Aᵀ M (A x_k − y) + Wᵀ u_k) )
/// u_{k+1} = clip_{[−λ, λ]}( u_k + σ_d W (2x_{k+1} − x_k) )
/// ```
///
/// with `L = ‖A‖²`, `σ_d ‖W‖² = L/2` and `τ = 0.99 / L`, which satisfies the convergence
/// condition `1/τ − σ_d‖W‖² ≥ L/2`. Starts from `x₀ = max(y, 0)`, `u₀ = 0`.
///
/// Thresholds: `λ_j = k σ s_j`, where `s_j` is the standard deviation of `W_j Aᵀ M n` for a
/// seeded unit white-noise image `n` — the noise level of plane `j` of the gradient
/// `Aᵀ M (A x − y)` at the truth, so that `λ_j` is `k` noise standard deviations of that plane.
/// Errors on bad inputs/parameters.
pub fn starlet_sparse(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mask: Option<ArrayView2<bool>>,
    p: &StarletSparseParams,
) -> Result<StarletSparseResult> {
    check_inputs(y, psf, mask)?;
    if !(p.k_sigma >= 0.0 && p.k_sigma.is_finite()) {
        return Err(Error::param("k_sigma", "must be finite and ≥ 0"));
    }
    if p.iters == 0 {
        return Err(Error::param("iters", "must be at least 1"));
    }
    if matches!(p.boundary, Boundary::Full | Boundary::Valid) {
        return Err(Error::param("boundary", "needs a size-preserving boundary"));
    }
    let (n0, n1) = y.dim();
    let a = Conv2d::new([n0, n1], psf, p.boundary)?;
    let w = Starlet::<f64>::new([n0, n1], p.scales)?;
    let (yd, m) = masked_data(y, mask);
    let m: Array2<f64> = mask_weights(m.as_ref(), (n0, n1));
    let sigma = match p.sigma {
        Some(s) if s >= 0.0 && s.is_finite() => s,
        Some(s) => return Err(Error::param("sigma", format!("must be ≥ 0, got {s}"))),
        None => {
            // estimate on the data with masked pixels replaced by the median of the valid ones
            let mut vals: Vec<f64> = yd
                .iter()
                .zip(m.iter())
                .filter(|(_, &m)| m > 0.0)
                .map(|(v, _)| *v)
                .collect();
            let med = super::median_mut(&mut vals);
            let filled =
                ndarray::Zip::from(&yd)
                    .and(&m)
                    .map_collect(|&v, &mm| if mm > 0.0 { v } else { med });
            super::estimate_noise_sigma(filled.view())?
        }
    };
    // per-scale noise of W A^T M n
    let noise = crate::testing::randn::<f64>(&[n0, n1], p.seed);
    let mn = &noise * &m.view().into_dyn();
    let atn = a.adjoint(mn.view())?;
    let wn = w.apply(atn.view())?;
    let lambdas: Vec<f64> = (0..p.scales)
        .map(|j| {
            let pl = wn.index_axis(Axis(0), j);
            let mean = pl.mean().unwrap_or(0.0);
            let var = pl.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / pl.len() as f64;
            p.k_sigma * sigma * var.sqrt()
        })
        .collect();
    let lip = {
        let l: f64 = op_norm(&a, NormEstimate::default());
        (l * l * 1.01).max(1e-12)
    };
    let wn2 = {
        let l: f64 = op_norm(&w, NormEstimate::default());
        (l * l * 1.01).max(1e-12)
    };
    let tau = 0.99 / lip;
    let sig_d = 0.5 * lip / wn2;

    let apply_a = |x: &Array2<f64>| -> Array2<f64> {
        a.apply(x.view().into_dyn())
            .expect("shape")
            .into_dimensionality()
            .expect("2-D")
    };
    let apply_w = |x: &Array2<f64>| -> Array3<f64> {
        w.apply(x.view().into_dyn())
            .expect("shape")
            .into_dimensionality::<Ix3>()
            .expect("3-D")
    };
    let objective = |ax: &Array2<f64>, wx: &Array3<f64>| -> f64 {
        let r: f64 = ndarray::Zip::from(ax)
            .and(&yd)
            .and(&m)
            .fold(0.0, |acc, &a, &y, &m| acc + m * (a - y) * (a - y));
        0.5 * r + l1(wx.view(), &lambdas)
    };

    let mut x = yd.mapv(|v| v.max(0.0));
    let mut ax = apply_a(&x);
    let mut wx = apply_w(&x);
    let mut u = Array3::<f64>::zeros((p.scales + 1, n0, n1));
    let mut hist = vec![objective(&ax, &wx)];
    for _ in 0..p.iters {
        let res = ndarray::Zip::from(&ax)
            .and(&yd)
            .and(&m)
            .map_collect(|&a, &y, &m| m * (a - y));
        let g = a.adjoint(res.view().into_dyn())?;
        let wtu = w.adjoint(u.view().into_dyn())?;
        let mut xn = x.clone();
        ndarray::Zip::from(&mut xn)
            .and(g.view().into_dimensionality().expect("2-D"))
            .and(wtu.view().into_dimensionality().expect("2-D"))
            .for_each(|x, &g, &t| *x = (*x - tau * (g + t)).max(0.0));
        let wxn = apply_w(&xn);
        for j in 0..=p.scales {
            let lam = lambdas.get(j).copied().unwrap_or(0.0);
            let mut uj = u.index_axis_mut(Axis(0), j);
            ndarray::Zip::from(&mut uj)
                .and(wxn.index_axis(Axis(0), j))
                .and(wx.index_axis(Axis(0), j))
                .for_each(|u, &a, &b| *u = (*u + sig_d * (2.0 * a - b)).clamp(-lam, lam));
        }
        x = xn;
        wx = wxn;
        ax = apply_a(&x);
        hist.push(objective(&ax, &wx));
    }
    Ok(StarletSparseResult {
        x,
        objective: hist,
        lambdas,
        sigma,
    })
}

/// Re-fit the amplitudes of the significant starlet coefficients of an estimate to the data
/// (step 3 of the sparse-restoration pipelines that first detect, then debias).
///
/// The support `S` is `{(j, p) : |W_j x̂ (p)| > thresholds[j]}` on the `J` wavelet planes;
/// the coarse plane `c_J` of `x̂` is kept fixed (a free coarse plane could represent any
/// image). With the synthesis `x = c_J + Σ_{j<J} c_j` (the exact starlet reconstruction) and
/// `c` restricted to `S`, this solves
///
/// ```text
/// min_{c: supp c ⊆ S} ½‖M⊙(A (c_J + R c) − y)‖²
/// ```
///
/// by `iters` conjugate-gradient (CGLS) iterations on the normal equations
/// `P_S Rᵀ Aᵀ M A R P_S c = P_S Rᵀ Aᵀ M (y − A c_J)`, starting from `c₀ = P_S W x̂` (so
/// `iters = 0` returns the hard-thresholded estimate), and returns `x` (CGLS decreases the
/// data misfit monotonically; `x` is not clamped, since clamping would undo the least-squares
/// fit — clamp afterwards if a non-negative image is needed). `thresholds` has one
/// entry per wavelet plane (e.g. [`StarletSparseResult::lambdas`] or `k σ σ_j`).
pub fn refit_active(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mask: Option<ArrayView2<bool>>,
    estimate: ArrayView2<f64>,
    thresholds: &[f64],
    boundary: Boundary,
    iters: usize,
) -> Result<Array2<f64>> {
    check_inputs(y, psf, mask)?;
    if estimate.dim() != y.dim() {
        return Err(Error::shape("estimate", y.shape(), estimate.shape()));
    }
    crate::error::check_finite("estimate", estimate.iter())?;
    if thresholds.is_empty() || thresholds.iter().any(|t| !(*t >= 0.0 && t.is_finite())) {
        return Err(Error::param(
            "thresholds",
            "need one finite threshold ≥ 0 per wavelet plane",
        ));
    }
    let (n0, n1) = y.dim();
    let jn = thresholds.len();
    let a = Conv2d::new([n0, n1], psf, boundary)?;
    let w = Starlet::<f64>::new([n0, n1], jn)?;
    let (yd, m) = masked_data(y, mask);
    let m: Array2<f64> = mask_weights(m.as_ref(), (n0, n1));
    let c0: Array3<f64> = w
        .apply(estimate.into_dyn())?
        .into_dimensionality()
        .expect("3-D");
    let mut supp = Array3::<f64>::zeros(c0.dim());
    for (j, &t) in thresholds.iter().enumerate() {
        ndarray::Zip::from(supp.index_axis_mut(Axis(0), j))
            .and(c0.index_axis(Axis(0), j))
            .for_each(|s, &c| *s = if c.abs() > t { 1.0 } else { 0.0 });
    }
    // B c = M A R P_S c ; Bᵀ r = P_S Rᵀ Aᵀ M r
    let b_apply = |c: &Array3<f64>| -> Array2<f64> {
        let x = (c * &supp).sum_axis(Axis(0));
        let ax: Array2<f64> = a
            .apply(x.view().into_dyn())
            .expect("shape")
            .into_dimensionality()
            .expect("2-D");
        ax * &m
    };
    let bt_apply = |r: &Array2<f64>| -> Array3<f64> {
        let g: Array2<f64> = a
            .adjoint((r * &m).view().into_dyn())
            .expect("shape")
            .into_dimensionality()
            .expect("2-D");
        let mut out = supp.clone();
        for mut pl in out.axis_iter_mut(Axis(0)) {
            pl *= &g;
        }
        out
    };
    // CGLS on min ‖B c − y‖
    let coarse = c0.index_axis(Axis(0), jn).to_owned();
    let a_coarse: Array2<f64> = a
        .apply(coarse.view().into_dyn())?
        .into_dimensionality()
        .expect("2-D");
    let mut c = &c0 * &supp;
    let mut r = (&yd - &a_coarse) * &m - b_apply(&c);
    let mut sdir = bt_apply(&r);
    let mut pdir = sdir.clone();
    let mut gamma: f64 = sdir.iter().map(|v| v * v).sum();
    for _ in 0..iters {
        if gamma <= 1e-300 {
            break;
        }
        let q = b_apply(&pdir);
        let qq: f64 = q.iter().map(|v| v * v).sum();
        if qq <= 0.0 {
            break;
        }
        let alpha = gamma / qq;
        c.scaled_add(alpha, &pdir);
        r.scaled_add(-alpha, &q);
        sdir = bt_apply(&r);
        let gn: f64 = sdir.iter().map(|v| v * v).sum();
        let beta = gn / gamma;
        gamma = gn;
        pdir = &sdir + &(pdir * beta);
    }
    let x = (&c * &supp).sum_axis(Axis(0)) + &coarse;
    Ok(x)
}
