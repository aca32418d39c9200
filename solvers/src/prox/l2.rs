//! The squared Euclidean norm (ridge / Tikhonov term).

use super::Prox;
use crate::error::Result;
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

/// `R(x) = (λ/2) ‖x‖₂²`, `λ ≥ 0` (ridge).
///
/// Prox: `prox_{τR}(v) = v / (1 + τλ)`. Its conjugate is `‖y‖²/(2λ)`, with prox
/// `λy/(λ + σ)`. Real and complex.
///
/// ```
/// use sparseinv_solvers::prox::{L2Squared, Prox};
/// use ndarray::array;
/// let r = L2Squared::new(1.0f64).unwrap();
/// assert_eq!(r.prox(array![3.0, -1.0].into_dyn().view(), 1.0), array![1.5, -0.5].into_dyn());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L2Squared<R: Real> {
    lambda: R,
}

impl<R: Real> L2Squared<R> {
    /// `(λ/2)‖x‖²`; errors unless `λ` is finite and `≥ 0`.
    pub fn new(lambda: R) -> Result<Self> {
        super::weights::check_weight("lambda", lambda)?;
        Ok(L2Squared { lambda })
    }
    /// `λ`.
    pub fn lambda(&self) -> R {
        self.lambda
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for L2Squared<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        let half = R::one() / (R::one() + R::one());
        half * self.lambda * crate::linalg::norm2_sq(x)
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        let s = R::one() / (R::one() + tau * self.lambda);
        Zip::from(out).and(&v).for_each(|o, &a| *o = a.scale(s));
    }
}
