//! Exact Gaussian posteriors of linear inverse problems under a stationary Gaussian prior:
//! the classical (Wiener / Tikhonov) restoration with calibrated per-pixel uncertainty.
//!
//! Model: `y = A x + n`, `n ~ N(0, σ² I)`, prior `x ~ N(μ·1, Σ)` on `n₀ × n₁` images with a
//! *stationary periodic* covariance `Σ = Fᴴ diag(S) F / N` ([`StationaryGaussian`]: `F` the
//! unnormalised 2-D DFT, `N = n₀ n₁`, `S(u, v) = E|X(u, v) − μ̂(u, v)|²/N` the power spectrum,
//! whose mean `Σ_{u,v} S/N` is the prior pixel variance). The posterior is Gaussian,
//!
//! ```text
//! x | y ~ N(m, C),   C = (AᵀA/σ² + Σ⁻¹)⁻¹,   m = μ + C Aᵀ(y − A μ)/σ²,
//! ```
//!
//! computed here in the whitened variable `x = μ + Σ^{1/2} w` (prior `w ~ N(0, I)`), which needs
//! no `Σ⁻¹` (a spectrum with zeros, e.g. a periodogram of mean-subtracted crops, is fine: the
//! corresponding frequencies of `x` are then fixed at those of `μ`):
//!
//! - [`posterior_mean`]: `w = argmin ‖B w − r‖² + ‖w‖²` with `B = A Σ^{1/2}/σ`,
//!   `r = (y − A μ)/σ`, i.e. `(BᵀB + I) w = Bᵀ r`, by conjugate gradients
//!   ([`crate::krylov::Cg`]; the normal matrix has every eigenvalue `≥ 1`), optionally
//!   preconditioned by a circulant approximation ([`PosteriorParams::normal_approx`]); any
//!   [`LinearOperator`] `A`.
//! - [`posterior_sample`]: exact sampling by perturbation–optimisation (Papandreou & Yuille
//!   2010; Orieux, Féron & Giovannelli 2012): `w_s = argmin ‖B w − (r + ε₁)‖² + ‖w − ε₂‖²`,
//!   i.e. `(BᵀB + I) w_s = Bᵀ(r + ε₁) + ε₂`, with `ε₁, ε₂ ~ N(0, I)` is distributed as
//!   `N(m_w, (BᵀB + I)⁻¹)`, exactly the posterior of `w` (up to the solver tolerance);
//!   [`posterior_moments`] averages such samples into a per-pixel standard deviation.
//! - [`circulant_posterior`]: the closed form when `A` is a *circular* convolution
//!   ([`Conv2d`] with [`Boundary::Circular`](crate::op::Boundary::Circular)), diagonal in
//!   Fourier with transfer function `H`: `m = μ + F⁻¹[S H̄ (F(y − A μ))/(|H|² S + σ²)]` (the
//!   Wiener filter) and the constant per-pixel variance `(1/N) Σ_{u,v} S σ²/(|H|² S + σ²)`.

use crate::error::{Error, Result};
use crate::fft::complex_plan;
use crate::iter::{run, NoObserver};
use crate::krylov::{Cg, KrylovParams};
use crate::op::{check_shape, Conv2d, LinearOperator};
use crate::random::randn;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, Ix2, IxDyn, Zip};
use num_complex::Complex;

/// 2-D complex FFT in place (unnormalised; `inverse`: the `e^{+2πi…}` sign), rows then
/// columns.
fn fft2_inplace(a: &mut Array2<Complex<f64>>, inverse: bool) {
    let (n0, n1) = a.dim();
    let p1 = complex_plan::<f64>(n1, inverse);
    for mut row in a.rows_mut() {
        let mut buf: Vec<Complex<f64>> = row.to_vec();
        p1.process(&mut buf);
        row.iter_mut().zip(buf).for_each(|(d, s)| *d = s);
    }
    let p0 = complex_plan::<f64>(n0, inverse);
    for mut col in a.columns_mut() {
        let mut buf: Vec<Complex<f64>> = col.to_vec();
        p0.process(&mut buf);
        col.iter_mut().zip(buf).for_each(|(d, s)| *d = s);
    }
}

/// `F⁻¹ diag(m) F x` for a real multiplier `m` even in frequency (`m(u, v) = m(−u, −v)`),
/// so that the result of a real `x` is real (the real part is returned).
fn fourier_multiply(x: ArrayView2<f64>, m: &Array2<f64>) -> Array2<f64> {
    let mut c = x.mapv(|v| Complex::new(v, 0.0));
    fft2_inplace(&mut c, false);
    Zip::from(&mut c).and(m).for_each(|c, &m| *c *= m);
    fft2_inplace(&mut c, true);
    let n = c.len() as f64;
    c.mapv(|v| v.re / n)
}

/// A self-adjoint real Fourier multiplier `x ↦ F⁻¹ diag(m) F x` on `n₀ × n₁` images with a
/// real, even (`m(u, v) = m(−u, −v)`) multiplier: a symmetric circulant matrix. The square root
/// of a [`StationaryGaussian`]'s covariance ([`StationaryGaussian::sqrt_covariance`]).
#[derive(Debug, Clone)]
pub struct FourierMultiplier {
    shape: [usize; 2],
    m: Array2<f64>,
}

impl FourierMultiplier {
    /// The multiplier (full `n₀ × n₁` grid, unshifted: `(0, 0)` is the zero frequency).
    pub fn multiplier(&self) -> ArrayView2<'_, f64> {
        self.m.view()
    }
}

impl LinearOperator<f64> for FourierMultiplier {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.shape
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        let x2 = x.into_dimensionality::<Ix2>().expect("2-D input");
        y.assign(&fourier_multiply(x2, &self.m).into_dyn());
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, x: ArrayViewMutD<f64>) {
        self.apply_into(y, x)
    }
}

/// A stationary Gaussian prior `x ~ N(μ·1, Σ)` on periodic `n₀ × n₁` images:
/// `Σ = Fᴴ diag(S) F / N` with the power spectrum `S ≥ 0` (full grid, unshifted, the convention
/// of a periodogram `|F(x − μ)|²/N`), so `Cov(x_i, x_j)` depends on `i − j` (mod the grid) only
/// and every pixel has variance `mean(S)`.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::gaussian::StationaryGaussian;
/// // white noise of variance 0.04 around 0.5: S = 0.04 everywhere
/// let p = StationaryGaussian::new(0.5, Array2::from_elem((8, 8), 0.04)).unwrap();
/// assert!((p.pixel_variance() - 0.04).abs() < 1e-15);
/// ```
#[derive(Debug, Clone)]
pub struct StationaryGaussian {
    mean: f64,
    psd: Array2<f64>,
    sqrt: FourierMultiplier,
}

impl StationaryGaussian {
    /// The prior with mean `mean` and power spectrum `psd`. The spectrum is symmetrised,
    /// `S ← (S(u, v) + S(−u, −v))/2` (a periodogram is even up to rounding), so that `Σ` is
    /// real symmetric. Errors on an empty spectrum, a non-finite mean, or a negative or
    /// non-finite entry of `psd`.
    pub fn new(mean: f64, psd: Array2<f64>) -> Result<Self> {
        let (n0, n1) = psd.dim();
        if n0 == 0 || n1 == 0 {
            return Err(Error::Empty {
                what: "power spectrum".into(),
            });
        }
        if !mean.is_finite() {
            return Err(Error::param("mean", format!("must be finite, got {mean}")));
        }
        if let Some(v) = psd.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::param(
                "psd",
                format!("entries must be finite and >= 0, found {v}"),
            ));
        }
        let sym = Array2::from_shape_fn((n0, n1), |(u, v)| {
            0.5 * (psd[[u, v]] + psd[[(n0 - u) % n0, (n1 - v) % n1]])
        });
        let sqrt = FourierMultiplier {
            shape: [n0, n1],
            m: sym.mapv(f64::sqrt),
        };
        Ok(StationaryGaussian {
            mean,
            psd: sym,
            sqrt,
        })
    }
    /// Image shape `[n₀, n₁]`.
    pub fn shape(&self) -> [usize; 2] {
        self.sqrt.shape
    }
    /// The prior mean `μ` (every pixel).
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// The (symmetrised) power spectrum `S`.
    pub fn psd(&self) -> ArrayView2<'_, f64> {
        self.psd.view()
    }
    /// The prior variance of every pixel, `mean(S)`.
    pub fn pixel_variance(&self) -> f64 {
        self.psd.mean().unwrap_or(0.0)
    }
    /// `Σ^{1/2} = Fᴴ diag(√S) F / N`, a symmetric [`LinearOperator`].
    pub fn sqrt_covariance(&self) -> &FourierMultiplier {
        &self.sqrt
    }
    /// `Σ x`.
    pub fn apply_covariance(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_shape("image", &self.sqrt.shape, x.shape())?;
        Ok(fourier_multiply(x, &self.psd))
    }
    /// A draw `μ + Σ^{1/2} ε`, `ε ~ N(0, I)` from [`randn`] with `seed`.
    pub fn sample(&self, seed: u64) -> Array2<f64> {
        let e = randn::<f64>(&self.sqrt.shape, seed)
            .into_dimensionality::<Ix2>()
            .expect("2-D");
        fourier_multiply(e.view(), &self.sqrt.m).mapv(|v| v + self.mean)
    }
}

/// `B = A Σ^{1/2} / σ` (and its adjoint `Σ^{1/2} Aᵀ / σ`).
struct Whitened<'a> {
    a: &'a dyn LinearOperator<f64>,
    sqrt: &'a FourierMultiplier,
    inv_sigma: f64,
}

impl<'a> Whitened<'a> {
    /// `B = A Σ^{1/2} / σ` for the prior `prior`.
    fn new(prior: &'a StationaryGaussian, a: &'a dyn LinearOperator<f64>, sigma: f64) -> Self {
        Whitened {
            a,
            sqrt: &prior.sqrt,
            inv_sigma: 1.0 / sigma,
        }
    }
}

impl LinearOperator<f64> for Whitened<'_> {
    fn domain_shape(&self) -> &[usize] {
        &self.sqrt.shape
    }
    fn range_shape(&self) -> &[usize] {
        self.a.range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        let mut t = ArrayD::zeros(IxDyn(&self.sqrt.shape));
        self.sqrt.apply_into(x, t.view_mut());
        self.a.apply_into(t.view(), y.view_mut());
        y.mapv_inplace(|v| v * self.inv_sigma);
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, mut x: ArrayViewMutD<f64>) {
        let mut t = ArrayD::zeros(IxDyn(&self.sqrt.shape));
        self.a.adjoint_into(y, t.view_mut());
        self.sqrt.apply_into(t.view(), x.view_mut());
        x.mapv_inplace(|v| v * self.inv_sigma);
    }
}

/// Settings of the iterative posterior computations. `Default`: conjugate gradients to a
/// relative residual of `1e-8`, at most 2000 iterations, no preconditioner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PosteriorParams {
    /// Relative residual tolerance `‖b − N w‖/‖b‖` of conjugate gradients on the whitened
    /// normal equations `N w = b`, `N = BᵀB + I` (0 in `Default` means `1e-8`), checked on the
    /// true residual (CG is restarted from its result, at most 3 times, while it is above).
    pub tol: f64,
    /// Iteration cap (0 in `Default` means 2000).
    pub max_iters: usize,
    /// Optional Fourier multiplier `D(u, v) ≥ 0` (full grid, unshifted) approximating `AᵀA`
    /// by the circulant `F⁻¹ diag(D) F` (e.g. the kept fraction for a random mask, `|H|²` of
    /// a convolution, `|H_box|²/f²` for `f × f` block means). Conjugate gradients are then
    /// preconditioned by `F⁻¹ diag(1/(D S/σ² + 1)) F`, the exact inverse of `N` when `AᵀA`
    /// is that circulant: the same solution, fewer iterations.
    pub normal_approx: Option<Array2<f64>>,
}

impl PosteriorParams {
    fn tol(&self) -> f64 {
        if self.tol > 0.0 {
            self.tol
        } else {
            1e-8
        }
    }
    fn max_iters(&self) -> usize {
        if self.max_iters > 0 {
            self.max_iters
        } else {
            2000
        }
    }
}

fn check_problem(
    prior: &StationaryGaussian,
    a: &dyn LinearOperator<f64>,
    y: &ArrayViewD<f64>,
    sigma: f64,
    p: &PosteriorParams,
) -> Result<()> {
    check_shape("operator domain", &prior.sqrt.shape, a.domain_shape())?;
    check_shape("data y", a.range_shape(), y.shape())?;
    crate::error::check_finite("data y", y.iter())?;
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::param(
            "sigma",
            format!("noise level must be finite and > 0, got {sigma}"),
        ));
    }
    if let Some(d) = &p.normal_approx {
        check_shape("normal_approx", &prior.sqrt.shape, d.shape())?;
        if let Some(v) = d.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::param(
                "normal_approx",
                format!("entries must be finite and >= 0, found {v}"),
            ));
        }
    }
    Ok(())
}

/// `N = BᵀB + I` on the whitened variable.
struct Normal<'a>(&'a Whitened<'a>);

impl LinearOperator<f64> for Normal<'_> {
    fn domain_shape(&self) -> &[usize] {
        &self.0.sqrt.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.0.sqrt.shape
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        let mut t = ArrayD::zeros(IxDyn(self.0.a.range_shape()));
        self.0.apply_into(x.view(), t.view_mut());
        self.0.adjoint_into(t.view(), y.view_mut());
        y += &x;
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, x: ArrayViewMutD<f64>) {
        self.apply_into(y, x)
    }
}

/// Solve `N w = rhs` by (preconditioned) conjugate gradients and return `x = μ + Σ^{1/2} w`.
fn solve_whitened(
    prior: &StationaryGaussian,
    b: &Whitened<'_>,
    rhs: ArrayViewD<f64>,
    sigma: f64,
    p: &PosteriorParams,
) -> Result<Array2<f64>> {
    let n = Normal(b);
    let pre = p.normal_approx.as_ref().map(|d| FourierMultiplier {
        shape: prior.sqrt.shape,
        m: Zip::from(d)
            .and(&prior.psd)
            .map_collect(|&d, &s| 1.0 / (d * s / (sigma * sigma) + 1.0)),
    });
    // (preconditioned) CG, restarted from its result while the true residual ‖b − N w‖/‖b‖
    // is above the tolerance: the recursively updated residual of PCG can drift below the
    // true one (by ~1e-9 relative on small, strongly preconditioned problems)
    let stop = KrylovParams::stop_with(p.max_iters(), p.tol());
    let bnorm = rhs.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut w: Option<ArrayD<f64>> = None;
    for _ in 0..4 {
        let x0 = w.as_ref().map(|w| w.view());
        let mut cg = match &pre {
            Some(m) => Cg::preconditioned(&n, m, rhs.view(), x0)?,
            None => Cg::new(&n, rhs.view(), x0)?,
        };
        run(&mut cg, &stop, &mut NoObserver)?;
        let x = cg.into_x();
        let res = (&rhs - &n.apply(x.view())?)
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        w = Some(x);
        if res <= p.tol() * bnorm {
            break;
        }
    }
    let xx = w.expect("at least one CG run");
    let w2 = xx.into_dimensionality::<Ix2>().expect("2-D");
    Ok(fourier_multiply(w2.view(), &prior.sqrt.m).mapv(|v| v + prior.mean))
}

/// The posterior mean `m = E[x | y]` of `y = A x + n`, `n ~ N(0, σ² I)`, under `prior`, for
/// any linear `A` from the prior's `[n₀, n₁]` images to the shape of `y` (see the
/// [module documentation](self) for the whitened least-squares problem solved by CGLS).
/// Errors on shape mismatches, non-finite data, a non-positive `sigma`, or solver failures.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::gaussian::{posterior_mean, PosteriorParams, StationaryGaussian};
/// use sparseinv_solvers::op::Diagonal;
/// // denoising (A = I) with a white prior of variance s² = 0.04 and σ = 0.2:
/// // m = μ + s²/(s² + σ²) (y − μ)
/// let prior = StationaryGaussian::new(0.5, Array2::from_elem((4, 4), 0.04)).unwrap();
/// let eye = Diagonal::new(ndarray::ArrayD::from_elem(vec![4, 4], 1.0));
/// let y = Array2::from_elem((4, 4), 0.7).into_dyn();
/// let m = posterior_mean(&prior, &eye, y.view(), 0.2, &PosteriorParams::default()).unwrap();
/// assert!((m[[1, 2]] - (0.5 + 0.5 * 0.2)).abs() < 1e-9);
/// ```
pub fn posterior_mean(
    prior: &StationaryGaussian,
    a: &dyn LinearOperator<f64>,
    y: ArrayViewD<f64>,
    sigma: f64,
    p: &PosteriorParams,
) -> Result<Array2<f64>> {
    check_problem(prior, a, &y, sigma, p)?;
    let b = Whitened::new(prior, a, sigma);
    let r = residual(prior, a, &y, sigma);
    let rhs = b.adjoint(r.view())?;
    solve_whitened(prior, &b, rhs.view(), sigma, p)
}

/// `(y − A μ)/σ`.
fn residual(
    prior: &StationaryGaussian,
    a: &dyn LinearOperator<f64>,
    y: &ArrayViewD<f64>,
    sigma: f64,
) -> ArrayD<f64> {
    let mu = ArrayD::from_elem(IxDyn(&prior.sqrt.shape), prior.mean);
    let mut am = ArrayD::zeros(IxDyn(a.range_shape()));
    a.apply_into(mu.view(), am.view_mut());
    Zip::from(&mut am)
        .and(y)
        .for_each(|r, &y| *r = (y - *r) / sigma);
    am
}

/// One exact posterior sample by perturbation–optimisation with the perturbations
/// `ε₁ = randn(shape of y, seed)`, `ε₂ = randn([n₀, n₁], seed + 1)`: `x = μ + Σ^{1/2} w_s`,
/// `w_s = argmin ‖B w − (r + ε₁)‖² + ‖w − ε₂‖²`, i.e. `(BᵀB + I) w_s = Bᵀ(r + ε₁) + ε₂`.
/// Its distribution is the posterior `N(m, C)` when the solve is exact. Errors as
/// [`posterior_mean`].
pub fn posterior_sample(
    prior: &StationaryGaussian,
    a: &dyn LinearOperator<f64>,
    y: ArrayViewD<f64>,
    sigma: f64,
    seed: u64,
    p: &PosteriorParams,
) -> Result<Array2<f64>> {
    check_problem(prior, a, &y, sigma, p)?;
    let b = Whitened::new(prior, a, sigma);
    let r = residual(prior, a, &y, sigma) + randn::<f64>(a.range_shape(), seed);
    let rhs = b.adjoint(r.view())? + randn::<f64>(&prior.sqrt.shape, seed.wrapping_add(1));
    solve_whitened(prior, &b, rhs.view(), sigma, p)
}

/// Posterior mean (exact, [`posterior_mean`]) and per-pixel standard deviation estimated
/// from `samples ≥ 1` perturbation–optimisation samples ([`posterior_sample`] with seeds
/// `seed + 2k`) around that mean: `std² = (1/S) Σ_k (x_k − m)²` (divisor `S`: the mean is
/// known, not estimated). The relative standard error of each pixel's variance is
/// `√(2/S)`. Errors as [`posterior_mean`], and on `samples = 0`.
pub fn posterior_moments(
    prior: &StationaryGaussian,
    a: &dyn LinearOperator<f64>,
    y: ArrayViewD<f64>,
    sigma: f64,
    samples: usize,
    seed: u64,
    p: &PosteriorParams,
) -> Result<(Array2<f64>, Array2<f64>)> {
    if samples == 0 {
        return Err(Error::param("samples", "need at least one sample"));
    }
    let m = posterior_mean(prior, a, y.view(), sigma, p)?;
    let mut acc = Array2::<f64>::zeros(m.dim());
    for k in 0..samples {
        let s = posterior_sample(
            prior,
            a,
            y.view(),
            sigma,
            seed.wrapping_add(2 * k as u64),
            p,
        )?;
        Zip::from(&mut acc)
            .and(&s)
            .and(&m)
            .for_each(|a, &s, &m| *a += (s - m) * (s - m));
    }
    let n = samples as f64;
    Ok((m, acc.mapv(|v| (v / n).sqrt())))
}

/// The closed-form posterior of a circular convolution `A` ([`Conv2d`] with
/// [`Boundary::Circular`](crate::op::Boundary::Circular), transfer function `H`): the mean
/// `m = μ + F⁻¹[S H̄ F(y − A μ)/(|H|² S + σ²)]` (the Wiener filter with the prior's spectrum)
/// and the per-pixel posterior standard deviation, the same for every pixel,
/// `√((1/N) Σ_{u,v} S σ²/(|H|² S + σ²))`. Errors on another boundary, shape mismatches,
/// non-finite data or a non-positive `sigma`.
pub fn circulant_posterior(
    prior: &StationaryGaussian,
    a: &Conv2d<f64>,
    y: ArrayView2<f64>,
    sigma: f64,
) -> Result<(Array2<f64>, f64)> {
    let yd = y.into_dyn();
    check_problem(prior, a, &yd, sigma, &PosteriorParams::default())?;
    let h = a.transfer_function();
    check_shape("transfer function", &prior.sqrt.shape, h.shape())?;
    let s2 = sigma * sigma;
    let r = residual(prior, a, &yd, 1.0)
        .into_dimensionality::<Ix2>()
        .expect("2-D");
    let mut c = r.mapv(|v| Complex::new(v, 0.0));
    fft2_inplace(&mut c, false);
    let mut var = 0.0;
    Zip::from(&mut c)
        .and(&h)
        .and(&prior.psd)
        .for_each(|c, &h, &s| {
            let d = h.norm_sqr() * s + s2;
            *c = *c * h.conj() * (s / d);
            var += s * s2 / d;
        });
    fft2_inplace(&mut c, true);
    let n = c.len() as f64;
    let m = c.mapv(|v| v.re / n + prior.mean);
    Ok((m, (var / n).sqrt()))
}

#[cfg(test)]
mod tests {
    //! Brute force: dense matrices of the operators (columns `A e_j`), the prior covariance
    //! from its definition `Σ_ij = (1/N) Σ_{u,v} S(u,v) cos(2π(u Δ₀/n₀ + v Δ₁/n₁))` (no FFT),
    //! and the posterior `m = μ + Σ Aᵀ M⁻¹ (y − A μ)`, `C = Σ − Σ Aᵀ M⁻¹ A Σ`,
    //! `M = A Σ Aᵀ + σ² I`, by Gaussian elimination.
    use super::*;
    use crate::op::{Boundary, Downsample, Mask};
    use crate::random::rand_uniform;

    fn dense_op(a: &dyn LinearOperator<f64>) -> Array2<f64> {
        let n = a.domain_size();
        let m = a.range_size();
        let mut out = Array2::zeros((m, n));
        for j in 0..n {
            let mut e = ArrayD::zeros(IxDyn(a.domain_shape()));
            e.as_slice_mut().unwrap()[j] = 1.0;
            let col = a.apply(e.view()).unwrap();
            for (i, v) in col.iter().enumerate() {
                out[[i, j]] = *v;
            }
        }
        out
    }

    /// Dense `Σ^p` (p = 1 or 1/2) from the cosine sum.
    fn dense_cov(s: &Array2<f64>, power: f64) -> Array2<f64> {
        let (n0, n1) = s.dim();
        let n = n0 * n1;
        Array2::from_shape_fn((n, n), |(i, j)| {
            let (d0, d1) = (
                (i / n1) as f64 - (j / n1) as f64,
                (i % n1) as f64 - (j % n1) as f64,
            );
            let mut acc = 0.0;
            for ((u, v), &sv) in s.indexed_iter() {
                let ph = 2.0
                    * std::f64::consts::PI
                    * (u as f64 * d0 / n0 as f64 + v as f64 * d1 / n1 as f64);
                acc += sv.powf(power) * ph.cos();
            }
            acc / n as f64
        })
    }

    /// Solve `M X = B` by Gaussian elimination with partial pivoting.
    fn solve(m: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let n = m.nrows();
        let mut a = m.clone();
        let mut x = b.clone();
        for k in 0..n {
            let p = (k..n)
                .max_by(|&i, &j| a[[i, k]].abs().total_cmp(&a[[j, k]].abs()))
                .unwrap();
            for c in 0..n {
                a.swap([k, c], [p, c]);
            }
            for c in 0..x.ncols() {
                x.swap([k, c], [p, c]);
            }
            for i in 0..n {
                if i != k {
                    let f = a[[i, k]] / a[[k, k]];
                    for c in 0..n {
                        a[[i, c]] -= f * a[[k, c]];
                    }
                    for c in 0..x.ncols() {
                        x[[i, c]] -= f * x[[k, c]];
                    }
                }
            }
        }
        for i in 0..n {
            let d = a[[i, i]];
            x.row_mut(i).mapv_inplace(|v| v / d);
        }
        x
    }

    /// A smooth, positive test spectrum (optionally with a zero at the zero frequency).
    fn spectrum(n0: usize, n1: usize, zero_dc: bool) -> Array2<f64> {
        let noise = rand_uniform(&[n0, n1], 5);
        let mut s = Array2::from_shape_fn((n0, n1), |(u, v)| {
            let fu = u.min(n0 - u) as f64 / n0 as f64;
            let fv = v.min(n1 - v) as f64 / n1 as f64;
            0.2 / (1.0 + 40.0 * (fu * fu + fv * fv)) + 0.01 * noise[[u, v]]
        });
        if zero_dc {
            s[[0, 0]] = 0.0;
        }
        s
    }

    struct Dense {
        mean: Array2<f64>,
        cov: Array2<f64>,
    }

    fn brute_force(
        prior: &StationaryGaussian,
        a: &dyn LinearOperator<f64>,
        y: &ArrayD<f64>,
        sigma: f64,
    ) -> Dense {
        let am = dense_op(a);
        let sig = dense_cov(&prior.psd().to_owned(), 1.0);
        let sat = sig.dot(&am.t());
        let mut m = am.dot(&sat);
        for i in 0..m.nrows() {
            m[[i, i]] += sigma * sigma;
        }
        let mu = ArrayD::from_elem(IxDyn(a.domain_shape()), prior.mean());
        let r = y - &a.apply(mu.view()).unwrap();
        let rcol = Array2::from_shape_vec((r.len(), 1), r.iter().copied().collect()).unwrap();
        let mean = sat.dot(&solve(&m, &rcol)).mapv(|v| v + prior.mean());
        let cov = &sig - &sat.dot(&solve(&m, &sat.t().to_owned()));
        Dense { mean, cov }
    }

    fn flat(a: &Array2<f64>) -> Vec<f64> {
        a.iter().copied().collect()
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn operators(n0: usize, n1: usize) -> Vec<(&'static str, Box<dyn LinearOperator<f64>>)> {
        let keep = rand_uniform(&[n0, n1], 3).mapv(|v| v < 0.5);
        let psf = Array2::from_shape_fn((3, 3), |(i, j)| [1.0, 2.0, 1.0][i] * [1.0, 3.0, 2.0][j]);
        let psf = &psf / psf.sum();
        vec![
            ("mask", Box::new(Mask::new(keep))),
            (
                "down2",
                Box::new(Downsample::uniform(&[n0, n1], 2).unwrap().mean()),
            ),
            (
                "blur",
                Box::new(Conv2d::new([n0, n1], psf.view(), Boundary::Circular).unwrap()),
            ),
        ]
    }

    #[test]
    fn posterior_mean_matches_dense_solution() {
        let (n0, n1) = (6, 4);
        for zero_dc in [false, true] {
            let prior = StationaryGaussian::new(0.45, spectrum(n0, n1, zero_dc)).unwrap();
            for (name, a) in operators(n0, n1) {
                let x = prior.sample(11);
                let sigma = 0.05;
                let y = a.apply(x.view().into_dyn()).unwrap()
                    + randn::<f64>(a.range_shape(), 12) * sigma;
                let d = brute_force(&prior, a.as_ref(), &y, sigma);
                let m = posterior_mean(
                    &prior,
                    a.as_ref(),
                    y.view(),
                    sigma,
                    &PosteriorParams::default(),
                )
                .unwrap();
                let err = max_diff(&flat(&m), &d.mean.iter().copied().collect::<Vec<_>>());
                assert!(
                    err < 1e-8,
                    "{name} (zero DC {zero_dc}): mean differs by {err}"
                );
            }
        }
    }

    /// Circulant approximations of `AᵀA` for the three test operators (deliberately rough for
    /// the mask and the block mean).
    fn normal_approx(name: &str, n0: usize, n1: usize) -> Array2<f64> {
        use std::f64::consts::PI;
        match name {
            "mask" => Array2::from_elem((n0, n1), 0.5),
            "down2" => Array2::from_shape_fn((n0, n1), |(u, v)| {
                let (a, b) = (
                    (PI * u as f64 / n0 as f64).cos(),
                    (PI * v as f64 / n1 as f64).cos(),
                );
                a * a * b * b / 4.0
            }),
            _ => Array2::from_elem((n0, n1), 0.7),
        }
    }

    #[test]
    fn preconditioned_posterior_mean_matches_dense_solution() {
        let (n0, n1) = (6, 8);
        let prior = StationaryGaussian::new(0.45, spectrum(n0, n1, true)).unwrap();
        for (name, a) in operators(n0, n1) {
            let x = prior.sample(13);
            let sigma = 0.02;
            let y =
                a.apply(x.view().into_dyn()).unwrap() + randn::<f64>(a.range_shape(), 14) * sigma;
            let d = brute_force(&prior, a.as_ref(), &y, sigma);
            let p = PosteriorParams {
                tol: 1e-12,
                normal_approx: Some(normal_approx(name, n0, n1)),
                ..Default::default()
            };
            let m = posterior_mean(&prior, a.as_ref(), y.view(), sigma, &p).unwrap();
            let err = max_diff(&flat(&m), &d.mean.iter().copied().collect::<Vec<_>>());
            assert!(err < 1e-8, "{name}: preconditioned mean differs by {err}");
        }
    }

    #[test]
    fn perturbation_optimisation_sample_matches_dense_formula() {
        // w_s = (BᵀB + I)⁻¹ (Bᵀ(r + ε₁) + ε₂), x_s = μ + Σ^{1/2} w_s with the same draws
        let (n0, n1) = (4, 6);
        let prior = StationaryGaussian::new(0.3, spectrum(n0, n1, true)).unwrap();
        for (name, a) in operators(n0, n1) {
            let sigma = 0.1;
            let x = prior.sample(1);
            let y =
                a.apply(x.view().into_dyn()).unwrap() + randn::<f64>(a.range_shape(), 2) * sigma;
            let seed = 40;
            let s = posterior_sample(
                &prior,
                a.as_ref(),
                y.view(),
                sigma,
                seed,
                &PosteriorParams::default(),
            )
            .unwrap();
            let half = dense_cov(&prior.psd().to_owned(), 0.5);
            let b = dense_op(a.as_ref()).dot(&half) / sigma;
            let mu = ArrayD::from_elem(IxDyn(&[n0, n1]), prior.mean());
            let r = (&y - &a.apply(mu.view()).unwrap()) / sigma;
            let e1 = randn::<f64>(a.range_shape(), seed);
            let e2 = randn::<f64>(&[n0, n1], seed + 1);
            let rhs_r: Vec<f64> = r.iter().zip(e1.iter()).map(|(r, e)| r + e).collect();
            let rhs = b.t().dot(&ndarray::Array1::from(rhs_r))
                + ndarray::Array1::from(e2.iter().copied().collect::<Vec<_>>());
            let mut nm = b.t().dot(&b);
            for i in 0..nm.nrows() {
                nm[[i, i]] += 1.0;
            }
            let w = solve(&nm, &rhs.insert_axis(ndarray::Axis(1)));
            let xs = half.dot(&w).mapv(|v| v + prior.mean());
            let err = max_diff(&flat(&s), &xs.iter().copied().collect::<Vec<_>>());
            assert!(err < 1e-8, "{name}: sample differs by {err}");
        }
    }

    #[test]
    fn sample_variance_matches_dense_posterior_covariance() {
        let (n0, n1) = (4, 4);
        let prior = StationaryGaussian::new(0.5, spectrum(n0, n1, false)).unwrap();
        let samples = 4000;
        for (name, a) in operators(n0, n1) {
            let sigma = 0.08;
            let x = prior.sample(3);
            let y =
                a.apply(x.view().into_dyn()).unwrap() + randn::<f64>(a.range_shape(), 4) * sigma;
            let d = brute_force(&prior, a.as_ref(), &y, sigma);
            let p = PosteriorParams {
                tol: 1e-10,
                max_iters: 500,
                ..Default::default()
            };
            let (m, std) =
                posterior_moments(&prior, a.as_ref(), y.view(), sigma, samples, 9, &p).unwrap();
            assert!(max_diff(&flat(&m), &d.mean.iter().copied().collect::<Vec<_>>()) < 1e-8);
            // relative standard error of a variance from S samples: √(2/S) = 2.2 %
            for (k, s) in std.iter().enumerate() {
                let v = d.cov[[k, k]];
                let rel = (s * s / v - 1.0).abs();
                assert!(
                    rel < 0.12,
                    "{name}: pixel {k} variance {} vs exact {v} ({rel})",
                    s * s
                );
            }
        }
    }

    #[test]
    fn circulant_closed_form_matches_dense_posterior() {
        let (n0, n1) = (6, 5);
        for zero_dc in [false, true] {
            let prior = StationaryGaussian::new(0.4, spectrum(n0, n1, zero_dc)).unwrap();
            let psf =
                Array2::from_shape_fn((3, 3), |(i, j)| [1.0, 2.0, 1.0][i] * [2.0, 3.0, 1.0][j]);
            let a = Conv2d::new([n0, n1], (&psf / psf.sum()).view(), Boundary::Circular).unwrap();
            let sigma = 0.03;
            let x = prior.sample(21);
            let y = a.apply(x.view().into_dyn()).unwrap() + randn::<f64>(&[n0, n1], 22) * sigma;
            let d = brute_force(&prior, &a, &y, sigma);
            let y2 = y.into_dimensionality::<Ix2>().unwrap();
            let (m, sd) = circulant_posterior(&prior, &a, y2.view(), sigma).unwrap();
            assert!(max_diff(&flat(&m), &d.mean.iter().copied().collect::<Vec<_>>()) < 1e-12);
            for k in 0..n0 * n1 {
                assert!(
                    (sd * sd - d.cov[[k, k]]).abs() < 1e-12,
                    "variance {} vs {}",
                    sd * sd,
                    d.cov[[k, k]]
                );
            }
        }
    }

    #[test]
    fn sqrt_covariance_is_symmetric_square_root() {
        let prior = StationaryGaussian::new(0.0, spectrum(5, 6, false)).unwrap();
        crate::testing::assert_adjoint(prior.sqrt_covariance(), 1e-12);
        let x = randn::<f64>(&[5, 6], 8);
        let h = prior.sqrt_covariance();
        let twice = h.apply(h.apply(x.view()).unwrap().view()).unwrap();
        let x2 = x.into_dimensionality::<Ix2>().unwrap();
        let once = prior.apply_covariance(x2.view()).unwrap();
        let dense = dense_cov(&prior.psd().to_owned(), 1.0).dot(&ndarray::Array1::from(flat(&x2)));
        assert!(max_diff(&twice.iter().copied().collect::<Vec<_>>(), &flat(&once)) < 1e-12);
        assert!(max_diff(&flat(&once), &dense.to_vec()) < 1e-12);
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut s = spectrum(4, 4, false);
        s[[1, 2]] = -1.0;
        assert!(StationaryGaussian::new(0.0, s).is_err());
        assert!(StationaryGaussian::new(f64::NAN, spectrum(4, 4, false)).is_err());
        let prior = StationaryGaussian::new(0.0, spectrum(4, 4, false)).unwrap();
        let a = Mask::new(ArrayD::from_elem(IxDyn(&[4, 4]), true));
        let y = ArrayD::zeros(IxDyn(&[4, 4]));
        let p = PosteriorParams::default();
        assert!(posterior_mean(&prior, &a, y.view(), 0.0, &p).is_err());
        assert!(posterior_mean(&prior, &a, ArrayD::zeros(IxDyn(&[4, 5])).view(), 0.1, &p).is_err());
        let mut yn = y.clone();
        yn[[0, 0]] = f64::NAN;
        assert!(posterior_mean(&prior, &a, yn.view(), 0.1, &p).is_err());
        assert!(posterior_moments(&prior, &a, y.view(), 0.1, 0, 0, &p).is_err());
    }
}
