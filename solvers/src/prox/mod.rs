//! Proximal terms: the regularisers `R` of `min_x f(x) + λ R(x)`.
//!
//! A [`Prox`] knows its value `R(x)` and its proximal map
//! `prox_{τR}(v) = argmin_x ½‖x − v‖² + τ R(x)`. The conjugate's prox follows from Moreau's
//! identity `v = prox_{τR}(v) + τ prox_{R*/τ}(v/τ)`, provided as [`Prox::conj_prox_into`].
//! Non-convex terms (l0, l_q, CEL0) return one global minimiser of the prox problem
//! (ties broken towards zero).
//!
//! Terms provided (all objects with validating constructors; parameters are real numbers of
//! the scalar's precision, so `L1<f64>` serves both `f64` and `Complex64` unknowns):
//!
//! | term | `R(x)` | prox | complex |
//! |---|---|---|---|
//! | [`L1`] | `Σ wᵢ abs(xᵢ)` (scalar or per-element `w`) | soft threshold of the modulus | yes |
//! | [`L0`] | `Σ λᵢ 1{xᵢ ≠ 0}` | hard threshold at `sqrt(2τλ)` | yes |
//! | [`Lq`] | `Σ λᵢ abs(xᵢ)^q`, `0 < q < 1` | closed forms for q = 1/2, 2/3; exact scalar solve otherwise | yes |
//! | [`Cel0`] | CEL0 of Soubies et al. (2015), column norms `aᵢ` | closed form | yes |
//! | [`NonNegative`] | indicator of `x ≥ 0` | `max(v, 0)` | no |
//! | [`BoxConstraint`] | indicator of `lo ≤ x ≤ hi` | clip | no |
//! | [`NonNegL1`] | `Σ wᵢxᵢ` on `x ≥ 0` | `max(v − τw, 0)` | no |
//! | [`GroupL21`] | `λ Σ_g ‖x_g‖₂` (index lists or one axis) | block soft threshold | yes |
//! | [`L2Ball`] | indicator of `‖x − c‖₂ ≤ r` | radial projection | yes |
//! | [`L2Squared`] | `(λ/2)‖x‖²` | `v/(1 + τλ)` | yes |
//! | [`SeparableSum`] | different terms on disjoint ranges of the flat vector | block-wise | if all are |
//! | [`Zero`] | `0` | identity | yes |
//!
//! Terms with per-element data (weights, column norms, centres, groups) check the argument's
//! shape in [`Prox::check_shape`]; solvers call it once before iterating.

use crate::scalar::Scalar;

mod cel0;
mod group;
mod l0;
mod l1;
mod l2;
mod lq;
mod sets;
mod sum;
mod weights;

pub use cel0::Cel0;
pub use group::GroupL21;
pub use l0::L0;
pub(crate) use l1::soft_threshold;
pub use l1::{NonNegL1, L1};
pub use l2::{L2Squared, SquaredDistance};
pub use lq::{Lq, LqMethod};
pub use sets::{BoxConstraint, L2Ball, NonNegative};
pub use sum::SeparableSum;
pub use weights::Weights;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};

/// A (possibly non-convex) function with a computable proximal map.
pub trait Prox<T: Scalar>: Send + Sync {
    /// `R(x)`. Indicator functions return 0 inside the set and `+∞` outside.
    fn value(&self, x: ArrayViewD<T>) -> T::Real;
    /// `out ← prox_{τR}(v) = argmin_x ½‖x − v‖² + τ R(x)`, `τ > 0`.
    /// `out` has the shape of `v`.
    fn prox_into(&self, v: ArrayViewD<T>, tau: T::Real, out: ArrayViewMutD<T>);
    /// Whether the term is defined for complex arguments (`false` for e.g. non-negativity).
    fn supports_complex(&self) -> bool {
        true
    }
    /// `Ok` when the term applies to arguments of shape `shape` (e.g. per-element weights or
    /// column norms of that shape, blocks that fit). Solvers call it once before iterating;
    /// [`value`](Self::value) and [`prox_into`](Self::prox_into) may panic on a shape that
    /// fails this check. The default accepts every shape.
    fn check_shape(&self, _shape: &[usize]) -> crate::error::Result<()> {
        Ok(())
    }
    /// `prox_{τR}(v)` in a new array.
    fn prox(&self, v: ArrayViewD<T>, tau: T::Real) -> ArrayD<T> {
        let mut out = ArrayD::zeros(IxDyn(v.shape()));
        self.prox_into(v, tau, out.view_mut());
        out
    }
    /// `out ← prox_{σR*}(v)` for the convex conjugate `R*`, by Moreau's identity
    /// `prox_{σR*}(v) = v − σ prox_{R/σ}(v/σ)`. Only meaningful for convex `R`.
    fn conj_prox_into(&self, v: ArrayViewD<T>, sigma: T::Real, mut out: ArrayViewMutD<T>) {
        let inv = T::Real::one() / sigma;
        let scaled = v.mapv(|a| a.scale(inv));
        self.prox_into(scaled.view(), inv, out.view_mut());
        Zip::from(&mut out)
            .and(&v)
            .for_each(|o, &vi| *o = vi - o.scale(sigma));
    }
}

use num_traits::One;

impl<T: Scalar, P: Prox<T> + ?Sized> Prox<T> for Box<P> {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        (**self).value(x)
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: T::Real, out: ArrayViewMutD<T>) {
        (**self).prox_into(v, tau, out)
    }
    fn supports_complex(&self) -> bool {
        (**self).supports_complex()
    }
    fn check_shape(&self, shape: &[usize]) -> crate::error::Result<()> {
        (**self).check_shape(shape)
    }
}

impl<T: Scalar, P: Prox<T> + ?Sized> Prox<T> for &P {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        (**self).value(x)
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: T::Real, out: ArrayViewMutD<T>) {
        (**self).prox_into(v, tau, out)
    }
    fn supports_complex(&self) -> bool {
        (**self).supports_complex()
    }
    fn check_shape(&self, shape: &[usize]) -> crate::error::Result<()> {
        (**self).check_shape(shape)
    }
}

/// The zero function: `prox` is the identity (turns a proximal method into gradient descent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Zero;

impl<T: Scalar> Prox<T> for Zero {
    fn value(&self, _x: ArrayViewD<T>) -> T::Real {
        <T::Real as num_traits::Zero>::zero()
    }
    fn prox_into(&self, v: ArrayViewD<T>, _tau: T::Real, mut out: ArrayViewMutD<T>) {
        out.assign(&v);
    }
}
