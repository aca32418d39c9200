//! The l0 pseudo-norm and its prox, hard thresholding.

use super::weights::Weights;
use super::Prox;
use crate::error::Result;
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

/// The (weighted) l0 pseudo-norm `R(x) = Σᵢ λᵢ 1{xᵢ ≠ 0}` (`λ · #{xᵢ ≠ 0}` for one `λ`).
///
/// Prox (hard thresholding of the modulus; a global minimiser of the non-convex problem):
///
/// `prox_{τR}(v)ᵢ = vᵢ` if `|vᵢ| > sqrt(2τλᵢ)`, else `0`.
///
/// At `|vᵢ| = sqrt(2τλᵢ)` both `0` and `vᵢ` are minimisers; the tie goes to `0`. Complex
/// values are kept or zeroed as a whole (the penalty only sees whether `xᵢ ≠ 0`).
///
/// ```
/// use sparseinv_solvers::prox::{Prox, L0};
/// use ndarray::array;
/// let l0 = L0::new(2.0f64).unwrap(); // threshold sqrt(2 · 1 · 2) = 2 at τ = 1
/// let x = l0.prox(array![3.0, -2.0, 1.0, -2.5].into_dyn().view(), 1.0);
/// assert_eq!(x, array![3.0, 0.0, 0.0, -2.5].into_dyn());
/// assert_eq!(Prox::<f64>::value(&l0, x.view()), 4.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct L0<R: Real> {
    w: Weights<R>,
}

impl<R: Real> L0<R> {
    /// `R(x) = λ #{xᵢ ≠ 0}`. Errors unless `λ` is finite and `≥ 0`.
    pub fn new(lambda: R) -> Result<Self> {
        Ok(L0 {
            w: Weights::uniform(lambda)?,
        })
    }
    /// `R(x) = Σ λᵢ 1{xᵢ ≠ 0}` with one weight per element (shape of the argument, checked
    /// by [`Prox::check_shape`]). Errors on an empty array or a negative or non-finite weight.
    pub fn weighted(w: ArrayD<R>) -> Result<Self> {
        Ok(L0 {
            w: Weights::per_element(w)?,
        })
    }
    /// The weights.
    pub fn weights(&self) -> &Weights<R> {
        &self.w
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for L0<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        self.w
            .weighted_sum(x, |a| if a == T::zero() { 0.0 } else { 1.0 })
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        let two = R::one() + R::one();
        self.w.map_into(v, out, |vi, li| {
            // compare squares: |v|² > 2τλ, no square root needed
            let m2 = vi.abs2();
            if m2 > two * tau * li || m2.is_nan() {
                vi
            } else {
                T::zero()
            }
        });
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        self.w.check_shape(shape)
    }
}
