//! Indicator functions of convex sets (their prox is the Euclidean projection): the
//! non-negative orthant, boxes and Euclidean balls.

use super::Prox;
use crate::error::{Error, Result};
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};
use num_traits::{Float, One, Zero};

/// The indicator of the non-negative orthant, `R(x) = 0` if every `xᵢ ≥ 0`, `+∞` otherwise.
///
/// Prox (projection, independent of `τ`): `prox(v)ᵢ = max(vᵢ, 0)`. Its conjugate is the
/// indicator of `{y ≤ 0}`, with prox `min(yᵢ, 0)`.
///
/// Defined for real arguments: [`Prox::supports_complex`] is `false`, and solvers should
/// refuse it for complex unknowns. (Given a complex array anyway, it projects onto the
/// non-negative real half-line: `max(Re vᵢ, 0)`, imaginary part dropped.)
///
/// ```
/// use sparseinv_solvers::prox::{NonNegative, Prox};
/// use ndarray::array;
/// let x = NonNegative.prox(array![1.5, -2.0, 0.0].into_dyn().view(), 1.0);
/// assert_eq!(x, array![1.5, 0.0, 0.0].into_dyn());
/// assert!(Prox::<f64>::value(&NonNegative, array![-1.0].into_dyn().view()).is_infinite());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NonNegative;

impl<T: Scalar> Prox<T> for NonNegative {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        let inside = x
            .iter()
            .all(|&a| a.re() >= T::Real::zero() && a.im() == T::Real::zero());
        if inside {
            T::Real::zero()
        } else {
            T::Real::infinity()
        }
    }
    fn prox_into(&self, v: ArrayViewD<T>, _tau: T::Real, mut out: ArrayViewMutD<T>) {
        // NaN propagates (r.max(0) would hide it)
        let clip = |vi: T| {
            let r = vi.re();
            T::from_real(if r >= T::Real::zero() || r.is_nan() {
                r
            } else {
                T::Real::zero()
            })
        };
        if let (Some(vs), Some(os)) = (v.as_slice(), out.as_slice_mut()) {
            if vs.len() == os.len() {
                crate::par::for_each_chunk(os, |r, o| {
                    o.iter_mut().zip(&vs[r]).for_each(|(o, &vi)| *o = clip(vi));
                });
                return;
            }
        }
        Zip::from(out).and(&v).for_each(|o, &vi| *o = clip(vi));
    }
    fn supports_complex(&self) -> bool {
        false
    }
}

/// The indicator of the box `{x : lo ≤ xᵢ ≤ hi}` (named `BoxConstraint` so as not to shadow
/// `std::boxed::Box`), `R(x) = 0` inside and `+∞` outside; `lo` may be `−∞` and `hi` `+∞`.
///
/// Prox (projection, independent of `τ`): `prox(v)ᵢ = min(max(vᵢ, lo), hi)`. Its conjugate is
/// the support function `R*(y) = Σ max(lo·yᵢ, hi·yᵢ)`.
///
/// Real arguments only ([`Prox::supports_complex`] is `false`; complex inputs are projected
/// onto the real interval, imaginary part dropped).
///
/// ```
/// use sparseinv_solvers::prox::{BoxConstraint, Prox};
/// use ndarray::array;
/// let b = BoxConstraint::new(0.0f64, 1.0).unwrap();
/// let x = b.prox(array![-0.5, 0.25, 3.0].into_dyn().view(), 1.0);
/// assert_eq!(x, array![0.0, 0.25, 1.0].into_dyn());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxConstraint<R: Real> {
    lo: R,
    hi: R,
}

impl<R: Real> BoxConstraint<R> {
    /// The box `[lo, hi]`. Errors on NaN bounds, `lo > hi`, `lo = +∞` or `hi = −∞`.
    pub fn new(lo: R, hi: R) -> Result<Self> {
        if lo.is_nan() || hi.is_nan() {
            return Err(Error::param("bounds", "lo and hi must not be NaN"));
        }
        if lo > hi {
            return Err(Error::param(
                "bounds",
                format!("need lo <= hi, got lo = {lo}, hi = {hi}"),
            ));
        }
        if lo == R::infinity() || hi == R::neg_infinity() {
            return Err(Error::param("bounds", "the box is empty"));
        }
        Ok(BoxConstraint { lo, hi })
    }
    /// Lower bound.
    pub fn lo(&self) -> R {
        self.lo
    }
    /// Upper bound.
    pub fn hi(&self) -> R {
        self.hi
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for BoxConstraint<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        let inside = x
            .iter()
            .all(|&a| a.re() >= self.lo && a.re() <= self.hi && a.im() == R::zero());
        if inside {
            R::zero()
        } else {
            R::infinity()
        }
    }
    fn prox_into(&self, v: ArrayViewD<T>, _tau: R, out: ArrayViewMutD<T>) {
        let (lo, hi) = (self.lo, self.hi);
        Zip::from(out).and(&v).for_each(|o, &vi| {
            let r = vi.re();
            *o = T::from_real(if r < lo {
                lo
            } else if r > hi {
                hi
            } else {
                r // also NaN
            });
        });
    }
    fn supports_complex(&self) -> bool {
        false
    }
}

/// The indicator of the Euclidean ball `{x : ‖x − c‖₂ ≤ r}` (norm over all elements),
/// centre `c` (an array of the argument's shape, or the origin) and radius `r ≥ 0`.
///
/// Prox (projection, independent of `τ`): `prox(v) = c + (v − c) · min(1, r / ‖v − c‖)`.
/// Its conjugate is `R*(y) = ⟨c, y⟩ + r‖y‖`. Works for real and complex arguments.
///
/// ```
/// use sparseinv_solvers::prox::{L2Ball, Prox};
/// use ndarray::array;
/// let ball = L2Ball::new(5.0f64).unwrap();
/// let x = ball.prox(array![6.0, 8.0].into_dyn().view(), 1.0);
/// assert_eq!(x, array![3.0, 4.0].into_dyn());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct L2Ball<T: Scalar> {
    radius: T::Real,
    centre: Option<ArrayD<T>>,
}

fn check_radius<R: Real>(r: R) -> Result<()> {
    if !(r.is_finite() && r >= R::zero()) {
        return Err(Error::param(
            "radius",
            format!("must be finite and >= 0, got {r}"),
        ));
    }
    Ok(())
}

impl<T: Scalar> L2Ball<T> {
    /// The ball of radius `r ≥ 0` (finite) around the origin.
    pub fn new(radius: T::Real) -> Result<Self> {
        check_radius(radius)?;
        Ok(L2Ball {
            radius,
            centre: None,
        })
    }
    /// The ball of radius `r` around `centre` (finite entries; its shape is the argument's
    /// shape, checked by [`Prox::check_shape`]).
    pub fn with_centre(radius: T::Real, centre: ArrayD<T>) -> Result<Self> {
        check_radius(radius)?;
        crate::error::check_finite("L2Ball centre", centre.iter())?;
        Ok(L2Ball {
            radius,
            centre: Some(centre),
        })
    }
    /// The radius.
    pub fn radius(&self) -> T::Real {
        self.radius
    }
    /// The centre (`None` for the origin).
    pub fn centre(&self) -> Option<&ArrayD<T>> {
        self.centre.as_ref()
    }
}

impl<T: Scalar> Prox<T> for L2Ball<T> {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        let d = match &self.centre {
            Some(c) => crate::linalg::norm2((&x - c).view()),
            None => crate::linalg::norm2(x),
        };
        // relative slack for rounding in the projection
        let slack = T::Real::one() + crate::scalar::real::<T::Real>(16.0) * T::Real::eps();
        if d <= self.radius * slack {
            T::Real::zero()
        } else {
            T::Real::infinity()
        }
    }
    fn prox_into(&self, v: ArrayViewD<T>, _tau: T::Real, mut out: ArrayViewMutD<T>) {
        match &self.centre {
            None => {
                let n = crate::linalg::norm2(v.view());
                let s = if n > self.radius {
                    self.radius / n
                } else {
                    T::Real::one()
                };
                Zip::from(&mut out)
                    .and(&v)
                    .for_each(|o, &vi| *o = vi.scale(s));
            }
            Some(c) => {
                assert_eq!(
                    c.shape(),
                    v.shape(),
                    "L2Ball centre does not match the argument; validate with Prox::check_shape"
                );
                Zip::from(&mut out)
                    .and(&v)
                    .and(c)
                    .for_each(|o, &vi, &ci| *o = vi - ci);
                let n = crate::linalg::norm2(out.view());
                let s = if n > self.radius {
                    self.radius / n
                } else {
                    T::Real::one()
                };
                Zip::from(&mut out)
                    .and(c)
                    .for_each(|o, &ci| *o = ci + o.scale(s));
            }
        }
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        match &self.centre {
            Some(c) => crate::op::check_shape("L2Ball centre", c.shape(), shape),
            None => Ok(()),
        }
    }
}
