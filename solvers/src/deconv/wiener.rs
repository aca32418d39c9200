//! Closed-form Fourier deconvolution (Wiener, Tikhonov): circular model, or the image
//! extended by reflection or zeros; masked-pixel fill by a local median.

use super::{check_inputs, median_mut};
use crate::error::{Error, Result};
use crate::fft::{good_fft_len, good_real_fft_len};
use crate::op::{Boundary, Conv2d, LinearOperator, Starlet};
use ndarray::{s, Array2, ArrayView2, Axis};
use num_complex::Complex64;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// The Wiener balance `μ` that [`Balance`] selects for the image `y` (see [`Balance::Auto`]
/// for the estimate). Computing it once on a whole image and passing
/// `Balance::Fixed(μ)` makes tiles of that image use the same filter. Errors on a negative or
/// non-finite fixed balance, or an empty/non-finite image for `Auto`.
pub fn wiener_balance(y: ArrayView2<f64>, balance: Balance) -> Result<f64> {
    match balance {
        Balance::Fixed(b) => {
            if !(b >= 0.0 && b.is_finite()) {
                return Err(Error::param("balance", format!("must be ≥ 0, got {b}")));
            }
            Ok(b)
        }
        Balance::Auto => {
            let sigma = estimate_noise_sigma(y)?;
            let n = y.len() as f64;
            let mean = y.sum() / n;
            let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let ps = (var - sigma * sigma).max(1e-3 * var);
            Ok(if ps > 0.0 { sigma * sigma / ps } else { 0.0 })
        }
    }
}

/// Index of `i` (possibly outside `[0, n)`) in a signal extended by symmetric reflection about
/// its edges (`d c b a | a b c d | d c b a`, scipy.ndimage's `reflect`), repeated as needed.
fn reflect_index(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Extend `y` for a Fourier method under `boundary`: unchanged for
/// [`Boundary::Circular`]; for [`Boundary::Reflect`], mirrored onto a grid of (at least)
/// twice its size with the image in the middle — the periodic continuation of
/// `y | flip(y)` has no jump anywhere (the symmetric extension of the discrete cosine
/// transform), so the filter sees a smooth sky on every side; for [`Boundary::Same`], padded
/// with zeros by the PSF size `(kh, kw)` on every side. Grid sides are rounded up to fast FFT
/// lengths. Returns the extended image and the offset of `y` in it.
fn extend(
    y: ArrayView2<f64>,
    psf_dim: (usize, usize),
    boundary: Boundary,
) -> Result<(Array2<f64>, (usize, usize))> {
    let (n0, n1) = y.dim();
    let (kh, kw) = psf_dim;
    let (zero, p, q) = match boundary {
        Boundary::Circular => return Ok((y.to_owned(), (0, 0))),
        Boundary::Reflect => (
            false,
            good_fft_len(2 * n0.max(kh)),
            good_real_fft_len(2 * n1.max(kw)),
        ),
        Boundary::Same => (
            true,
            good_fft_len(n0 + 2 * kh),
            good_real_fft_len(n1 + 2 * kw),
        ),
        Boundary::Full | Boundary::Valid => {
            return Err(Error::param(
                "boundary",
                "the Fourier methods support Circular, Reflect and Same (zero) boundaries",
            ))
        }
    };
    let (o0, o1) = if zero {
        (kh, kw)
    } else {
        ((p - n0) / 2, (q - n1) / 2)
    };
    let src = |i: usize, n: usize, o: usize| -> Option<usize> {
        let k = i as isize - o as isize;
        if k >= 0 && (k as usize) < n {
            Some(k as usize)
        } else if zero {
            None
        } else {
            Some(reflect_index(k, n))
        }
    };
    let cols: Vec<Option<usize>> = (0..q).map(|j| src(j, n1, o1)).collect();
    let mut out: Array2<f64> = crate::alloc::zeros2((p, q));
    out.as_slice_mut()
        .expect("fresh array is contiguous")
        .par_chunks_mut(q)
        .enumerate()
        .for_each(|(i, row)| {
            if let Some(si) = src(i, n0, o0) {
                let yr = y.row(si);
                for (d, c) in row.iter_mut().zip(&cols) {
                    if let Some(sj) = c {
                        *d = yr[*sj];
                    }
                }
            }
        });
    Ok((out, (o0, o1)))
}

/// `F⁻¹[ conj(H) Y / (|H|² + μ R) ]` with `R = |L|²` (`laplacian`) or 1 on the FFT grid of the
/// image extended under `boundary`, cropped back to the image.
fn fourier_solve(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mu: f64,
    boundary: Boundary,
    laplacian: bool,
) -> Result<Array2<f64>> {
    let (n0, n1) = y.dim();
    // the circular model filters the image itself (no copy)
    let extended = match boundary {
        Boundary::Circular => None,
        b => Some(extend(y, psf.dim(), b)?),
    };
    let (ext, (o0, o1)) = match &extended {
        None => (y, (0, 0)),
        Some((e, o)) => (e.view(), *o),
    };
    let (p, q) = ext.dim();
    let conv = Conv2d::<f64>::new_one_pass([p, q], psf, Boundary::Circular)?;
    // |L(u, v)|² = (l(u) + l(v))², l(u) = 2 − 2 cos(2πu/n): the periodic 5-point Laplacian
    let table = |n: usize| -> Vec<f64> {
        if !laplacian {
            return Vec::new();
        }
        (0..n)
            .map(|k| 2.0 - 2.0 * (std::f64::consts::TAU * k as f64 / n as f64).cos())
            .collect()
    };
    let (lap_u, lap_v) = (table(p), table(q));
    let zero_den = AtomicBool::new(false);
    let mut out: Array2<f64> = crate::alloc::zeros2((p, q));
    conv.apply_fourier_filter_indexed_into(ext, out.view_mut(), &|u, v, h| {
        let r = if laplacian {
            let l = lap_u[u] + lap_v[v];
            l * l
        } else {
            1.0
        };
        let den = h.norm_sqr() + mu * r;
        if den > 0.0 {
            h.conj() / den
        } else {
            zero_den.store(true, Ordering::Relaxed);
            Complex64::new(0.0, 0.0)
        }
    })?;
    if zero_den.load(Ordering::Relaxed) && mu > 0.0 {
        return Err(Error::Numerical(
            "the regularised filter has a zero denominator".into(),
        ));
    }
    if (p, q) == (n0, n1) {
        return Ok(out);
    }
    Ok(out.slice(s![o0..o0 + n0, o1..o1 + n1]).to_owned())
}

/// Fill the masked pixels of `y` (`mask[p] == false`) with the median of the valid pixels
/// in the `(2r+1)²` window around each, growing the filled region inward ring by ring: a pass
/// fills every masked pixel that has at least one known pixel in its window, from the pixels
/// known before that pass (valid ones and those filled by earlier passes), so holes of any
/// size are filled from their rims and the result does not depend on the scan order.
/// Valid pixels are unchanged. This is the fill the Fourier methods ([`wiener`],
/// [`tikhonov`]) need: they have no data weights, and a local median continues the
/// background and does not bleed stars into the hole, unlike zeros or a global mean.
/// Errors when the mask has another shape than `y`, `r = 0`, a valid pixel is not finite,
/// or no pixel is valid.
pub fn fill_masked_median(
    y: ArrayView2<f64>,
    mask: ArrayView2<bool>,
    r: usize,
) -> Result<Array2<f64>> {
    if mask.dim() != y.dim() {
        return Err(Error::shape("mask", y.shape(), mask.shape()));
    }
    if r == 0 {
        return Err(Error::param("r", "the window radius must be at least 1"));
    }
    check_inputs(y, ndarray::arr2(&[[1.0]]).view(), Some(mask))?;
    if !mask.iter().any(|&b| b) {
        return Err(Error::param("mask", "no valid pixel to fill from"));
    }
    let (n0, n1) = y.dim();
    let mut out = ndarray::Zip::from(&y)
        .and(&mask)
        .map_collect(|&v, &m| if m { v } else { f64::NAN });
    let mut todo: Vec<(usize, usize)> = mask
        .indexed_iter()
        .filter(|(_, &m)| !m)
        .map(|(i, _)| i)
        .collect();
    while !todo.is_empty() {
        let known = &out;
        let fills: Vec<Option<f64>> = todo
            .par_iter()
            .map(|&(i, j)| {
                let mut vals: Vec<f64> = Vec::with_capacity((2 * r + 1).pow(2));
                for a in i.saturating_sub(r)..(i + r + 1).min(n0) {
                    for b in j.saturating_sub(r)..(j + r + 1).min(n1) {
                        let v = known[[a, b]];
                        if !v.is_nan() {
                            vals.push(v);
                        }
                    }
                }
                (!vals.is_empty()).then(|| median_mut(&mut vals))
            })
            .collect();
        let mut rest = Vec::new();
        let mut filled = 0usize;
        for (&(i, j), f) in todo.iter().zip(&fills) {
            match f {
                Some(v) => {
                    out[[i, j]] = *v;
                    filled += 1;
                }
                None => rest.push((i, j)),
            }
        }
        if filled == 0 {
            // unreachable with at least one valid pixel (every hole has a rim), kept as a guard
            return Err(Error::Numerical(
                "masked-pixel fill made no progress".into(),
            ));
        }
        todo = rest;
    }
    Ok(out)
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
    wiener_bounded(y, psf, balance, Boundary::Circular)
}

/// [`wiener`] with the image extended beyond its edges under `boundary` before filtering:
/// [`Boundary::Circular`] is [`wiener`] itself (periodic sky); [`Boundary::Reflect`] embeds
/// the image in its mirror images on a grid of twice its size (no edge discontinuity
/// anywhere, so no ringing from the borders; the cost is a 4× larger FFT); [`Boundary::Same`]
/// pads with zeros by the PSF size (the model of a sky that is zero beyond the image —
/// subtract the background first). The grid is rounded up to fast FFT lengths and the result
/// cropped back to the image. The balance is computed on
/// `y` itself ([`wiener_balance`]). Errors as [`wiener`], and on the `Full`/`Valid`
/// boundaries.
pub fn wiener_bounded(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    balance: Balance,
    boundary: Boundary,
) -> Result<Array2<f64>> {
    check_inputs(y, psf, None)?;
    let mu = wiener_balance(y, balance)?;
    fourier_solve(y, psf, mu, boundary, false)
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
    tikhonov_bounded(y, psf, reg, lambda, Boundary::Circular)
}

/// [`tikhonov`] with the image extended under `boundary` as in [`wiener_bounded`]; the
/// Laplacian is periodic on the padded grid. Errors as [`tikhonov`], and on the
/// `Full`/`Valid` boundaries.
pub fn tikhonov_bounded(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    reg: Regulariser,
    lambda: f64,
    boundary: Boundary,
) -> Result<Array2<f64>> {
    check_inputs(y, psf, None)?;
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::param("lambda", format!("must be ≥ 0, got {lambda}")));
    }
    match reg {
        Regulariser::Identity => fourier_solve(y, psf, lambda, boundary, false),
        Regulariser::Laplacian => fourier_solve(y, psf, lambda, boundary, true),
    }
}
