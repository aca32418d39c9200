//! Image deconvolution: recover `x` from `y = k ∗ x + n` for a known point-spread function `k`.
//!
//! - [`wiener`] and [`tikhonov`]: closed-form Fourier filters under the **circular** model
//!   (`Conv2d` with [`Boundary::Circular`](crate::op::Boundary::Circular)),
//!   `x̂ = F⁻¹[ conj(H) Y / (|H|² + μ |L|²) ]`, computed with real FFTs on the shared plan
//!   cache through [`Conv2d::apply_fourier_filter_indexed_into`](crate::op::Conv2d::apply_fourier_filter_indexed_into);
//!   [`wiener_bounded`] / [`tikhonov_bounded`] extend the image by reflection or zeros first
//!   (no periodic sky), [`wiener_padded`] / [`tikhonov_padded`] with an explicit [`Padding`]
//!   (half- or whole-sample reflection or zeros, any widths), and [`fill_masked_median`] fills
//!   masked pixels for them; all generic over `f32`/`f64`;
//! - [`RichardsonLucy`] / [`richardson_lucy`]: the multiplicative Poisson maximum-likelihood
//!   iteration with zero (`Same`) boundary, masks, positivity and Biggs–Andrews acceleration;
//! - [`starlet_sparse`]: `min ½‖M⊙(Ax − y)‖² + Σ_j λ_j ‖W_j x‖₁` s.t. `x ≥ 0`, analysis
//!   starlet sparsity solved exactly by the Condat–Vũ primal–dual algorithm;
//! - [`refit_active`]: re-fit the amplitudes of the significant starlet coefficients of an
//!   estimate to the data (debiasing the ℓ1 shrinkage);
//! - [`debias_active`]: re-fit any estimate to the data on its significant starlet
//!   coefficients (photometric debiasing after any method, learned ones included).
//!
//! Images are `[rows, cols]` arrays of `f32` or `f64` (the starlet-sparse solver and the
//! refit are `f64` only); the PSF is used as given (it should
//! sum to 1 for flux to be preserved). The PSF centre is the element `(h/2, w/2)` as in
//! [`Conv2d`](crate::op::Conv2d).

mod debias;
mod noise;
mod rl;
mod sparse;
mod wiener;

pub use debias::{debias_active, DebiasParams, DebiasResult, Detect};
pub use noise::{estimate_noise_model, NoiseModel};
pub use rl::{richardson_lucy, Discrepancy, RichardsonLucy, RiskStop, RlParams};
pub use sparse::{
    refit_active, starlet_sparse, starlet_sparse_with, StarletSolver, StarletSparseParams,
    StarletSparseResult,
};
pub use wiener::{
    estimate_noise_sigma, fill_masked_median, gcv_select, pad, tikhonov, tikhonov_bounded,
    tikhonov_padded, wiener, wiener_balance, wiener_bounded, wiener_padded, Balance, Extension,
    GcvChoice, Padding, Regulariser,
};

use crate::error::{check_finite, Error, Result};
use crate::scalar::Real;
use ndarray::{Array2, ArrayView2};

/// The index (in logical order) of the first non-finite pixel of `y` that `mask` does not
/// exclude, if any. Contiguous images are checked in parallel blocks with a branch-free test
/// (a full pass at memory speed); the index is then searched for only when a block fails.
fn first_bad_pixel<R: Real>(y: ArrayView2<R>, mask: Option<ArrayView2<bool>>) -> Option<usize> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 15;
    let scan = || {
        let mut it = y.iter().enumerate();
        match mask {
            Some(m) => it
                .zip(m.iter())
                .find(|((_, v), &ok)| ok && !v.is_finite())
                .map(|((i, _), _)| i),
            None => it.find(|(_, v)| !v.is_finite()).map(|(i, _)| i),
        }
    };
    let (Some(ys), true) = (y.as_slice(), mask.is_none_or(|m| m.as_slice().is_some())) else {
        return scan();
    };
    let ok = match mask.and_then(|m| m.to_slice()) {
        None => ys
            .par_chunks(BLOCK)
            .all(|c| c.iter().fold(true, |a, v| a & v.is_finite())),
        Some(ms) => ys
            .par_chunks(BLOCK)
            .zip(ms.par_chunks(BLOCK))
            .all(|(c, m)| {
                c.iter()
                    .zip(m)
                    .fold(true, |a, (v, &k)| a & (!k | v.is_finite()))
            }),
    };
    if ok {
        None
    } else {
        scan()
    }
}

/// Validate an image/PSF pair: non-empty, finite (the image where the optional mask is
/// `true`), same-shaped optional mask.
pub(crate) fn check_inputs<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    mask: Option<ArrayView2<bool>>,
) -> Result<()> {
    if y.is_empty() {
        return Err(Error::Empty {
            what: "image".into(),
        });
    }
    if psf.is_empty() {
        return Err(Error::Empty { what: "PSF".into() });
    }
    check_finite("PSF", psf.iter())?;
    if let Some(m) = mask {
        if m.dim() != y.dim() {
            return Err(Error::shape("mask", y.shape(), m.shape()));
        }
    }
    if let Some(index) = first_bad_pixel(y, mask) {
        return Err(Error::NonFinite {
            what: if mask.is_some() {
                "image (unmasked pixel)"
            } else {
                "image"
            }
            .into(),
            index,
        });
    }
    Ok(())
}

/// `y` with masked-out pixels set to 0, and the mask (owned; `None` when there is none).
pub(crate) fn masked_data<R: Real>(
    y: ArrayView2<R>,
    mask: Option<ArrayView2<bool>>,
) -> (Array2<R>, Option<Array2<bool>>) {
    // Always standard (row-major) layout, whatever the layout of the inputs (a Fortran-order
    // or strided view from numpy): the solvers work on the flat slices of these arrays.
    match mask {
        None => (Array2::from_shape_fn(y.dim(), |ix| y[ix]), None),
        Some(m) => {
            let d = Array2::from_shape_fn(y.dim(), |ix| if m[ix] { y[ix] } else { R::zero() });
            (d, Some(Array2::from_shape_fn(m.dim(), |ix| m[ix])))
        }
    }
}

/// The mask as 0/1 weights (all ones without a mask).
pub(crate) fn mask_weights<R: Real>(m: Option<&Array2<bool>>, dim: (usize, usize)) -> Array2<R> {
    match m {
        Some(m) => m.mapv(|b| if b { R::one() } else { R::zero() }),
        None => Array2::from_elem(dim, R::one()),
    }
}

/// [`crate::stats::median_mut`] with 0 for an empty slice. Only a forwarding shim for
/// `sparse.rs` (owned by the starlet/Condat–Vũ work); call `stats::median_mut` directly.
pub(crate) fn median_mut(v: &mut [f64]) -> f64 {
    crate::stats::median_mut(v).unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
