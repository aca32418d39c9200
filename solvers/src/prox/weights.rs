//! Regularisation weights shared by the separable penalties ([`L1`](super::L1),
//! [`L0`](super::L0), [`Lq`](super::Lq)), and the element-wise kernels that apply a scalar
//! proximal map to the modulus of every element.

use crate::error::{Error, Result};
use crate::op::LinearOperator;
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};
use num_traits::Zero;

/// The weight `λ` of a separable penalty `R(x) = Σᵢ λᵢ ρ(|xᵢ|)`: one scalar for every
/// element, or one non-negative weight per element (an array with the shape of `x`).
#[derive(Debug, Clone, PartialEq)]
pub enum Weights<R: Real> {
    /// The same `λ ≥ 0` for every element.
    Uniform(R),
    /// One `λᵢ ≥ 0` per element; the array must have the shape of the prox argument.
    PerElement(ArrayD<R>),
}

impl<R: Real> Weights<R> {
    /// A uniform weight, validated: `λ` must be finite and `≥ 0`.
    pub fn uniform(lambda: R) -> Result<Self> {
        check_weight("lambda", lambda)?;
        Ok(Weights::Uniform(lambda))
    }

    /// Per-element weights, validated: non-empty, every entry finite and `≥ 0`.
    pub fn per_element(w: ArrayD<R>) -> Result<Self> {
        if w.is_empty() {
            return Err(Error::Empty {
                what: "weights".into(),
            });
        }
        for (i, &wi) in w.iter().enumerate() {
            if !wi.is_finite() {
                return Err(Error::NonFinite {
                    what: "weights".into(),
                    index: i,
                });
            }
            if wi < R::zero() {
                return Err(Error::param(
                    "weights",
                    format!("must be >= 0, got {wi} at flat index {i}"),
                ));
            }
        }
        Ok(Weights::PerElement(w))
    }

    /// Per-element weights `λᵢ = λ ‖A eᵢ‖₂` scaled by the column norms of the operator `A`
    /// of the data term (shape: its domain), from [`LinearOperator::column_norms_sq`]: the
    /// weighted l1 `Σᵢ λ ‖aᵢ‖ |xᵢ|` of the column-normalised Lasso, without deriving the norms
    /// by hand. Errors when `λ` is negative or not finite, or when the norms cannot be
    /// computed (see `column_norms_sq`).
    ///
    /// ```
    /// use sparseinv_solvers::op::Matrix;
    /// use sparseinv_solvers::prox::Weights;
    /// use ndarray::array;
    /// let a = Matrix::new(array![[3.0, 0.0], [4.0, 1.0]]);
    /// let w = Weights::scaled_column_norms(0.5, &a).unwrap();
    /// assert_eq!(w, Weights::PerElement(array![2.5, 0.5].into_dyn()));
    /// ```
    pub fn scaled_column_norms<T: Scalar<Real = R>, A: LinearOperator<T> + ?Sized>(
        lambda: R,
        op: &A,
    ) -> Result<Self> {
        check_weight("lambda", lambda)?;
        Self::per_element(op.column_norms_sq()?.mapv_into(|v| lambda * v.sqrt()))
    }

    /// `Ok` when these weights can be applied to an argument of shape `shape`
    /// (always for [`Weights::Uniform`]; equal shapes for [`Weights::PerElement`]).
    pub fn check_shape(&self, shape: &[usize]) -> Result<()> {
        match self {
            Weights::Uniform(_) => Ok(()),
            Weights::PerElement(w) => crate::op::check_shape("weights", w.shape(), shape),
        }
    }

    /// `out[i] ← f(v[i], λᵢ)` for every element.
    ///
    /// Panics (an internal invariant: callers validate with [`Weights::check_shape`]) when
    /// per-element weights do not have the shape of `v`.
    pub(crate) fn map_into<T: Scalar<Real = R>>(
        &self,
        v: ArrayViewD<T>,
        out: ArrayViewMutD<T>,
        f: impl Fn(T, R) -> T,
    ) {
        match self {
            Weights::Uniform(l) => {
                let l = *l;
                Zip::from(out).and(&v).for_each(|o, &vi| *o = f(vi, l));
            }
            Weights::PerElement(w) => {
                assert_eq!(
                    w.shape(),
                    v.shape(),
                    "per-element weights of shape {:?} applied to an argument of shape {:?}; \
                     validate with Prox::check_shape first",
                    w.shape(),
                    v.shape()
                );
                Zip::from(out)
                    .and(&v)
                    .and(w)
                    .for_each(|o, &vi, &wi| *o = f(vi, wi));
            }
        }
    }

    /// `Σᵢ λᵢ g(xᵢ)` accumulated in `f64`.
    pub(crate) fn weighted_sum<T: Scalar<Real = R>>(
        &self,
        x: ArrayViewD<T>,
        g: impl Fn(T) -> f64,
    ) -> R {
        let s = match self {
            Weights::Uniform(l) => {
                let l = l.to_f64_lossless();
                if l == 0.0 {
                    0.0
                } else {
                    l * x.iter().map(|&a| g(a)).sum::<f64>()
                }
            }
            Weights::PerElement(w) => {
                assert_eq!(
                    w.shape(),
                    x.shape(),
                    "per-element weights of shape {:?} applied to an argument of shape {:?}; \
                     validate with Prox::check_shape first",
                    w.shape(),
                    x.shape()
                );
                let mut acc = 0.0f64;
                Zip::from(&x).and(w).for_each(|&a, &wi| {
                    let wi = wi.to_f64_lossless();
                    if wi != 0.0 {
                        acc += wi * g(a);
                    }
                });
                acc
            }
        };
        crate::scalar::real(s)
    }
}

/// Check a scalar weight: finite and `≥ 0`.
pub(crate) fn check_weight<R: Real>(name: &str, lambda: R) -> Result<()> {
    if !lambda.is_finite() {
        return Err(Error::param(name, format!("must be finite, got {lambda}")));
    }
    if lambda < R::zero() {
        return Err(Error::param(name, format!("must be >= 0, got {lambda}")));
    }
    Ok(())
}

/// Replace the modulus of `v` by `new_mod ≥ 0`, keeping its phase (its sign for reals):
/// `v · new_mod / |v|`, and `0` when `new_mod = 0` or `v = 0`.
#[inline]
pub(crate) fn with_modulus<T: Scalar>(v: T, m: T::Real, new_mod: T::Real) -> T {
    if new_mod <= T::Real::zero() || m <= T::Real::zero() {
        T::zero()
    } else if new_mod == m {
        v
    } else {
        v.scale(new_mod / m)
    }
}

/// Apply a scalar map `p(|v|, λᵢ)` (computed in `f64`) to the modulus of every element,
/// keeping the phase.
pub(crate) fn radial_f64<R: Real, T: Scalar<Real = R>>(
    w: &Weights<R>,
    v: ArrayViewD<T>,
    out: ArrayViewMutD<T>,
    p: impl Fn(f64, f64) -> f64,
) {
    w.map_into(v, out, |vi, li| {
        let m = vi.modulus();
        if m.is_nan() {
            return vi; // propagate NaN so that solvers can detect divergence
        }
        let nm = p(m.to_f64_lossless(), li.to_f64_lossless());
        if nm == m.to_f64_lossless() {
            vi
        } else {
            with_modulus(vi, m, crate::scalar::real(nm))
        }
    });
}
