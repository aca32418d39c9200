//! The (weighted) l1 norm and its prox, soft thresholding.

use super::weights::{with_modulus, Weights};
use super::Prox;
use crate::error::Result;
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

/// The weighted l1 norm `R(x) = Σᵢ wᵢ |xᵢ|`, `wᵢ ≥ 0` (one `λ` for all elements or one weight
/// per element).
///
/// Prox (soft thresholding of the modulus, phase kept, so it is also the complex l1 prox):
///
/// `prox_{τR}(v)ᵢ = vᵢ · max(0, 1 − τ wᵢ / |vᵢ|)`,
///
/// i.e. `sign(vᵢ) max(|vᵢ| − τwᵢ, 0)` for real `vᵢ`. Convex; its conjugate is the indicator of
/// the weighted box `{y : |yᵢ| ≤ wᵢ}`, whose prox is the projection onto it.
///
/// ```
/// use sparseinv_solvers::prox::{Prox, L1};
/// use ndarray::array;
/// let l1 = L1::new(1.0f64).unwrap();
/// let x = l1.prox(array![3.0, -0.5, -2.0].into_dyn().view(), 0.5);
/// assert_eq!(x, array![2.5, 0.0, -1.5].into_dyn());
/// assert_eq!(Prox::<f64>::value(&l1, x.view()), 4.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct L1<R: Real> {
    w: Weights<R>,
}

impl<R: Real> L1<R> {
    /// `R(x) = λ Σ |xᵢ|`. Errors unless `λ` is finite and `≥ 0`.
    pub fn new(lambda: R) -> Result<Self> {
        Ok(L1 {
            w: Weights::uniform(lambda)?,
        })
    }
    /// `R(x) = Σ wᵢ |xᵢ|` with one weight per element; `w` must have the shape of the
    /// argument (checked by [`Prox::check_shape`]). Errors on an empty array or a negative or
    /// non-finite weight.
    pub fn weighted(w: ArrayD<R>) -> Result<Self> {
        Ok(L1 {
            w: Weights::per_element(w)?,
        })
    }
    /// The weights.
    pub fn weights(&self) -> &Weights<R> {
        &self.w
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for L1<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        self.w.weighted_sum(x, |a| a.modulus().to_f64_lossless())
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        self.w
            .map_into(v, out, |vi, wi| soft_threshold(vi, tau * wi));
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        self.w.check_shape(shape)
    }
}

/// Sparse and non-negative: `R(x) = Σ wᵢ xᵢ` on `x ≥ 0` (`+∞` if some `xᵢ < 0`), i.e. the
/// weighted l1 norm plus the indicator of the non-negative orthant.
///
/// Prox: `prox_{τR}(v)ᵢ = max(vᵢ − τwᵢ, 0)`. Its conjugate is the indicator of
/// `{y : yᵢ ≤ wᵢ}`, with prox `min(yᵢ, wᵢ)`. Real arguments only
/// ([`Prox::supports_complex`] is `false`; complex inputs use their real part).
///
/// ```
/// use sparseinv_solvers::prox::{NonNegL1, Prox};
/// use ndarray::array;
/// let p = NonNegL1::new(1.0f64).unwrap();
/// assert_eq!(p.prox(array![3.0, 0.5, -2.0].into_dyn().view(), 1.0), array![2.0, 0.0, 0.0].into_dyn());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NonNegL1<R: Real> {
    w: Weights<R>,
}

impl<R: Real> NonNegL1<R> {
    /// `λ Σ xᵢ + ι(x ≥ 0)`; errors unless `λ` is finite and `≥ 0`.
    pub fn new(lambda: R) -> Result<Self> {
        Ok(NonNegL1 {
            w: Weights::uniform(lambda)?,
        })
    }
    /// Per-element weights (shape of the argument, checked by [`Prox::check_shape`]).
    pub fn weighted(w: ArrayD<R>) -> Result<Self> {
        Ok(NonNegL1 {
            w: Weights::per_element(w)?,
        })
    }
    /// The weights.
    pub fn weights(&self) -> &Weights<R> {
        &self.w
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for NonNegL1<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        if x.iter().any(|&a| a.re() < R::zero() || a.im() != R::zero()) {
            return R::infinity();
        }
        self.w.weighted_sum(x, |a| a.re().to_f64_lossless())
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        self.w.map_into(v, out, |vi, wi| {
            let r = vi.re() - tau * wi;
            T::from_real(if r > R::zero() || r.is_nan() {
                r
            } else {
                R::zero()
            })
        });
    }
    fn supports_complex(&self) -> bool {
        false
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        self.w.check_shape(shape)
    }
}

/// Soft thresholding of one scalar, complex-aware (the phase is kept):
/// `v · max(0, 1 − t/|v|)`; `t = 0` returns `v` unchanged and a NaN passes through.
#[inline]
pub(crate) fn soft_threshold<R: Real, T: Scalar<Real = R>>(v: T, t: R) -> T {
    let m = v.modulus();
    if m > t {
        if t == R::zero() {
            v
        } else {
            with_modulus(v, m, m - t)
        }
    } else if m.is_nan() {
        v
    } else {
        T::zero()
    }
}
