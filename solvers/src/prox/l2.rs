//! The squared Euclidean norm (ridge / Tikhonov term).

use super::Prox;
use crate::error::Result;
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use num_traits::{One, Zero};

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

/// `R(x) = (λ/2) ‖x − c‖₂²`, `λ ≥ 0`: the squared distance to a given array `c` (a data
/// term `½‖z − y‖²` with `c = y`, `λ = 1`, as PyProximal's `L2(b=y)`), used as an `h_i` on
/// `L_i = A` in primal–dual splittings of `½‖A x − y‖² + …`.
///
/// Prox: `prox_{τR}(v) = (v + τλ c) / (1 + τλ)`. Its conjugate is
/// `R*(w) = ‖w‖²/(2λ) + Re⟨c, w⟩`. Real and complex; large arrays are processed in parallel
/// chunks.
///
/// ```
/// use sparseinv_solvers::prox::{Prox, SquaredDistance};
/// use ndarray::array;
/// let d = SquaredDistance::new(1.0f64, array![1.0, 2.0].into_dyn()).unwrap();
/// // (v + τ c)/(1 + τ) with τ = 1
/// assert_eq!(d.prox(array![3.0, 0.0].into_dyn().view(), 1.0), array![2.0, 1.0].into_dyn());
/// assert_eq!(d.value(array![3.0, 0.0].into_dyn().view()), 4.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SquaredDistance<T: Scalar> {
    lambda: T::Real,
    centre: ndarray::ArrayD<T>,
}

impl<T: Scalar> SquaredDistance<T> {
    /// `(λ/2)‖x − c‖²`; errors unless `λ` is finite and `≥ 0` and `c` is finite.
    pub fn new(lambda: T::Real, centre: ndarray::ArrayD<T>) -> Result<Self> {
        super::weights::check_weight("lambda", lambda)?;
        crate::error::check_finite("centre", centre.iter())?;
        Ok(SquaredDistance {
            lambda,
            centre: centre.as_standard_layout().into_owned(),
        })
    }
    /// `λ`.
    pub fn lambda(&self) -> T::Real {
        self.lambda
    }
    /// `c`.
    pub fn centre(&self) -> ndarray::ArrayViewD<'_, T> {
        self.centre.view()
    }
}

impl<T: Scalar> Prox<T> for SquaredDistance<T> {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        let half = T::Real::one() / (T::Real::one() + T::Real::one());
        let c = self.centre.as_slice().expect("standard layout");
        let ss = match x.as_slice() {
            Some(xs) if xs.len() == c.len() => {
                crate::par::sum_chunks(xs.len(), T::Real::zero(), |r| {
                    xs[r.clone()]
                        .iter()
                        .zip(&c[r])
                        .fold(T::Real::zero(), |a, (&x, &c)| a + (x - c).abs2())
                })
            }
            _ => {
                let mut a = T::Real::zero();
                Zip::from(&x)
                    .and(&self.centre)
                    .for_each(|&x, &c| a += (x - c).abs2());
                a
            }
        };
        half * self.lambda * ss
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: T::Real, mut out: ArrayViewMutD<T>) {
        let tl = tau * self.lambda;
        let s = T::Real::one() / (T::Real::one() + tl);
        let c = self.centre.as_slice().expect("standard layout");
        if let (Some(vs), Some(os)) = (v.as_slice(), out.as_slice_mut()) {
            if vs.len() == c.len() && os.len() == c.len() {
                crate::par::for_each_chunk(os, |r, o| {
                    o.iter_mut()
                        .zip(&vs[r.clone()])
                        .zip(&c[r])
                        .for_each(|((o, &v), &c)| *o = (v + c.scale(tl)).scale(s));
                });
                return;
            }
        }
        Zip::from(out)
            .and(&v)
            .and(&self.centre)
            .for_each(|o, &v, &c| *o = (v + c.scale(tl)).scale(s));
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        crate::op::check_shape("SquaredDistance argument", self.centre.shape(), shape)
    }
}
