//! Closed-form Fourier deconvolution (Wiener, Tikhonov) under the circular model.

use super::{check_inputs, median_mut};
use crate::error::{Error, Result};
use crate::fft::complex_plan;
use crate::op::{Boundary, Conv2d, LinearOperator, Starlet};
use ndarray::{Array2, ArrayView2, Axis};
use num_complex::Complex64;

/// How the Wiener balance `μ` (noise-to-signal power ratio) is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Balance {
    /// Use this `μ ≥ 0` (0 is the plain inverse filter, defined only where `H ≠ 0`).
    Fixed(f64),
    /// Estimate `μ = σ² / P_s` with `σ` from [`estimate_noise_sigma`] and the signal power
    /// per pixel `P_s = max(var(y) − σ², 10⁻³ var(y))` (a flat, white-signal prior).
    Auto,
}

/// The regularisation operator `L` of [`tikhonov`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regulariser {
    /// `L = I` (`|L|² = 1`): penalises the energy of `x`.
    Identity,
    /// The periodic 5-point Laplacian `[[0,−1,0],[−1,4,−1],[0,−1,0]]`,
    /// `|L(u,v)|² = (4 − 2cos(2πu/n₀) − 2cos(2πv/n₁))²`: penalises roughness
    /// (this is the regulariser of scikit-image's `restoration.wiener`).
    Laplacian,
}

/// Estimate the standard deviation of white Gaussian noise in `y` from the finest starlet
/// scale: `σ = MAD(w₁) / 0.6745 / σ₁`, where `MAD` is the median absolute deviation from the
/// median, 0.6745 the MAD of a unit Gaussian and `σ₁ = 0.8908` the noise level of `w₁` for
/// unit white noise ([`starlet_noise_std`](crate::op::starlet_noise_std)). Robust to sparse
/// bright sources. Errors on an empty or non-finite image.
pub fn estimate_noise_sigma(y: ArrayView2<f64>) -> Result<f64> {
    if y.is_empty() {
        return Err(Error::Empty {
            what: "image".into(),
        });
    }
    crate::error::check_finite("image", y.iter())?;
    let (n0, n1) = y.dim();
    let s = Starlet::<f64>::new([n0, n1], 1)?;
    let w = s.apply(y.into_dyn())?;
    let mut w1: Vec<f64> = w.index_axis(Axis(0), 0).iter().cloned().collect();
    let med = median_mut(&mut w1);
    let mut dev: Vec<f64> = w1.iter().map(|v| (v - med).abs()).collect();
    let mad = median_mut(&mut dev);
    Ok(mad / 0.6745 / s.noise_std()[0])
}

/// In-place 2-D DFT (`inverse` is unnormalised).
pub(crate) fn fft2(a: &mut Array2<Complex64>, inverse: bool) {
    let (n0, n1) = a.dim();
    let pr = complex_plan::<f64>(n1, inverse);
    for mut row in a.axis_iter_mut(Axis(0)) {
        let s = row.as_slice_mut().expect("standard layout");
        pr.process(s);
    }
    let pc = complex_plan::<f64>(n0, inverse);
    let mut col = vec![Complex64::new(0.0, 0.0); n0];
    for j in 0..n1 {
        for i in 0..n0 {
            col[i] = a[[i, j]];
        }
        pc.process(&mut col);
        for i in 0..n0 {
            a[[i, j]] = col[i];
        }
    }
}

/// `F⁻¹[ conj(H) Y / (|H|² + μ R) ]` with `R(u, v)` given by `reg`.
fn fourier_solve(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mu: f64,
    reg: impl Fn(usize, usize) -> f64,
) -> Result<Array2<f64>> {
    let (n0, n1) = y.dim();
    let conv = Conv2d::<f64>::new([n0, n1], psf, Boundary::Circular)?;
    let h = conv.transfer_function();
    let mut yf = y.mapv(|v| Complex64::new(v, 0.0));
    fft2(&mut yf, false);
    let mut zero_den = false;
    ndarray::Zip::indexed(&mut yf)
        .and(&h)
        .for_each(|(u, v), z, &hv| {
            let den = hv.norm_sqr() + mu * reg(u, v);
            if den > 0.0 {
                *z = hv.conj() * *z / den;
            } else {
                zero_den = true;
                *z = Complex64::new(0.0, 0.0);
            }
        });
    if zero_den && mu > 0.0 {
        return Err(Error::Numerical(
            "the regularised filter has a zero denominator".into(),
        ));
    }
    fft2(&mut yf, true);
    let s = 1.0 / (n0 * n1) as f64;
    Ok(yf.mapv(|z| z.re * s))
}

/// Wiener deconvolution under the circular model:
/// `x̂ = F⁻¹[ conj(H) Y / (|H|² + μ) ]`, `H` the transfer function of `psf`
/// (centre `(h/2, w/2)`, see [`Conv2d::transfer_function`]).
///
/// This is the MMSE linear estimate for white noise of power `σ²` and a white signal of power
/// `P_s` with `μ = σ²/P_s` ([`Balance::Auto`] estimates both). The image is treated as
/// periodic: sources near one edge ring at the opposite edge; pad or taper the image when this
/// matters. Frequencies with `H = 0` are set to 0 when `μ = 0`. Errors on empty, non-finite
/// or negative-balance inputs.
///
/// ```
/// use sparseinv_solvers::deconv::{wiener, Balance};
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// use ndarray::{array, Array2};
/// let psf = array![[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]];
/// let x = Array2::from_shape_fn((8, 8), |(i, j)| ((i * 3 + j) % 5) as f64);
/// let a = Conv2d::new([8, 8], psf.view(), Boundary::Circular).unwrap();
/// let y = a.apply(x.view().into_dyn()).unwrap().into_dimensionality().unwrap();
/// let xh = wiener(y.view(), psf.view(), Balance::Fixed(0.0)).unwrap();
/// assert!((&xh - &x).iter().all(|d| d.abs() < 1e-9));
/// ```
pub fn wiener(y: ArrayView2<f64>, psf: ArrayView2<f64>, balance: Balance) -> Result<Array2<f64>> {
    check_inputs(y, psf, None)?;
    let mu = match balance {
        Balance::Fixed(b) => {
            if !(b >= 0.0 && b.is_finite()) {
                return Err(Error::param("balance", format!("must be ≥ 0, got {b}")));
            }
            b
        }
        Balance::Auto => {
            let sigma = estimate_noise_sigma(y)?;
            let n = y.len() as f64;
            let mean = y.sum() / n;
            let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let ps = (var - sigma * sigma).max(1e-3 * var);
            if ps > 0.0 {
                sigma * sigma / ps
            } else {
                0.0
            }
        }
    };
    fourier_solve(y, psf, mu, |_, _| 1.0)
}

/// Tikhonov deconvolution under the circular model:
/// `x̂ = argmin ½‖k ∗ x − y‖² + ½λ‖L x‖² = F⁻¹[ conj(H) Y / (|H|² + λ|L|²) ]`.
///
/// With [`Regulariser::Identity`] this is [`wiener`] with `μ = λ`; with
/// [`Regulariser::Laplacian`] it equals scikit-image's `restoration.wiener(y, psf, λ,
/// clip=False)` (same transfer function, same Laplacian). Errors on empty/non-finite input or
/// `λ < 0`.
pub fn tikhonov(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    reg: Regulariser,
    lambda: f64,
) -> Result<Array2<f64>> {
    check_inputs(y, psf, None)?;
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::param("lambda", format!("must be ≥ 0, got {lambda}")));
    }
    let (n0, n1) = y.dim();
    match reg {
        Regulariser::Identity => fourier_solve(y, psf, lambda, |_, _| 1.0),
        Regulariser::Laplacian => {
            let tau = std::f64::consts::TAU;
            fourier_solve(y, psf, lambda, |u, v| {
                let l = 4.0
                    - 2.0 * (tau * u as f64 / n0 as f64).cos()
                    - 2.0 * (tau * v as f64 / n1 as f64).cos();
                l * l
            })
        }
    }
}
