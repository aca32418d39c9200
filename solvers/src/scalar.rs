//! Scalar types: the sealed [`Real`] (`f32`, `f64`) and [`Scalar`] (a `Real` or a
//! `Complex<Real>`) traits that every operator, prox and solver is generic over.
//!
//! The traits are deliberately small: what the numerical kernels need (conjugation, modulus,
//! scaling by a real, conversion from `f64`), on top of `ndarray`'s `LinalgScalar` so that
//! array arithmetic works for every scalar.

use ndarray::{LinalgScalar, ScalarOperand};
use num_complex::Complex;
use num_traits::{Float, FromPrimitive, NumAssign};
use std::fmt::{Debug, Display};
use std::iter::Sum;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for num_complex::Complex<f32> {}
    impl Sealed for num_complex::Complex<f64> {}
}

/// A real floating-point scalar: `f32` or `f64`.
///
/// Implies everything `rustfft`/`realfft` need, so any `Real` can be transformed.
pub trait Real:
    Scalar<Real = Self>
    + Float
    + FromPrimitive
    + rustfft::FftNum
    + PartialOrd
    + Display
    + Default
    + Sum
    + num_traits::float::FloatConst
{
    /// Machine epsilon of the type.
    fn eps() -> Self {
        <Self as Float>::epsilon()
    }
    /// Convert to `f64` (exact for both `f32` and `f64`).
    fn to_f64_lossless(self) -> f64;
}

/// A scalar: a [`Real`] or a `Complex<Real>`.
///
/// `conj` is the identity for reals, so generic code that always conjugates (inner
/// products `<x, y> = Σ conj(x_i) y_i`, adjoints) is correct for both.
pub trait Scalar:
    sealed::Sealed
    + LinalgScalar
    + ScalarOperand
    + NumAssign
    + Debug
    + Display
    + Send
    + Sync
    + Sum
    + Default
    + 'static
{
    /// The underlying real type (`Self` for reals, `R` for `Complex<R>`).
    type Real: Real;
    /// `true` for complex scalars.
    const IS_COMPLEX: bool;
    /// Complex conjugate (identity for reals).
    fn conj(self) -> Self;
    /// Real part.
    fn re(self) -> Self::Real;
    /// Imaginary part (zero for reals).
    fn im(self) -> Self::Real;
    /// Modulus `|z|`.
    fn modulus(self) -> Self::Real;
    /// Squared modulus `|z|²` (no square root).
    fn abs2(self) -> Self::Real;
    /// Embed a real number.
    fn from_real(r: Self::Real) -> Self;
    /// Build from real and imaginary parts; for real scalars `im` must be zero and is ignored.
    fn from_parts(re: Self::Real, im: Self::Real) -> Self;
    /// Multiply by a real number.
    fn scale(self, r: Self::Real) -> Self {
        self * Self::from_real(r)
    }
    /// Embed an `f64` (rounded to the precision of `Self::Real`).
    fn from_f64(x: f64) -> Self {
        Self::from_real(<Self::Real as FromPrimitive>::from_f64(x).unwrap())
    }
    /// `true` when both parts are finite.
    /// Wrap a view of an iterate of this scalar type for an [`Observer`](crate::iter::Observer)
    /// (see [`Iterate`](crate::iter::Iterate)).
    fn iterate_view(x: ndarray::ArrayViewD<'_, Self>) -> crate::iter::Iterate<'_>;
    /// Whether the value is finite (both parts, for complex values).
    fn is_finite_scalar(self) -> bool {
        self.re().is_finite() && self.im().is_finite()
    }
}

macro_rules! impl_real {
    ($t:ty, $v:ident) => {
        impl Real for $t {
            fn to_f64_lossless(self) -> f64 {
                self as f64
            }
        }
        impl Scalar for $t {
            type Real = $t;
            const IS_COMPLEX: bool = false;
            #[inline]
            fn conj(self) -> Self {
                self
            }
            #[inline]
            fn re(self) -> Self {
                self
            }
            #[inline]
            fn im(self) -> Self {
                0.0
            }
            #[inline]
            fn modulus(self) -> Self {
                self.abs()
            }
            #[inline]
            fn abs2(self) -> Self {
                self * self
            }
            #[inline]
            fn from_real(r: Self) -> Self {
                r
            }
            #[inline]
            fn from_parts(re: Self, _im: Self) -> Self {
                re
            }
            fn iterate_view(x: ndarray::ArrayViewD<'_, Self>) -> crate::iter::Iterate<'_> {
                crate::iter::Iterate::$v(x)
            }
        }
    };
}
impl_real!(f32, F32);
impl_real!(f64, F64);

macro_rules! impl_complex {
    ($t:ty, $v:ident) => {
        impl Scalar for Complex<$t> {
            type Real = $t;
            const IS_COMPLEX: bool = true;
            #[inline]
            fn conj(self) -> Self {
                Complex::conj(&self)
            }
            #[inline]
            fn re(self) -> $t {
                self.re
            }
            #[inline]
            fn im(self) -> $t {
                self.im
            }
            #[inline]
            fn modulus(self) -> $t {
                self.norm()
            }
            #[inline]
            fn abs2(self) -> $t {
                self.norm_sqr()
            }
            #[inline]
            fn from_real(r: $t) -> Self {
                Complex::new(r, 0.0)
            }
            #[inline]
            fn from_parts(re: $t, im: $t) -> Self {
                Complex::new(re, im)
            }
            #[inline]
            fn scale(self, r: $t) -> Self {
                Complex::new(self.re * r, self.im * r)
            }
            fn iterate_view(x: ndarray::ArrayViewD<'_, Self>) -> crate::iter::Iterate<'_> {
                crate::iter::Iterate::$v(x)
            }
        }
    };
}
impl_complex!(f32, C32);
impl_complex!(f64, C64);

/// `Complex<f64>`, the usual complex scalar.
pub type C64 = Complex<f64>;
/// `Complex<f32>`.
pub type C32 = Complex<f32>;

/// Convert an `f64` constant into any real type.
#[inline]
pub fn real<R: Real>(x: f64) -> R {
    <R as FromPrimitive>::from_f64(x).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conj_and_modulus() {
        let z = C64::new(3.0, -4.0);
        assert_eq!(Scalar::conj(z), C64::new(3.0, 4.0));
        assert_eq!(z.modulus(), 5.0);
        assert_eq!(z.abs2(), 25.0);
        assert_eq!((-2.0f32).modulus(), 2.0);
        assert_eq!(Scalar::conj(-2.0f64), -2.0);
        assert_eq!(C32::from_parts(1.0, 2.0), C32::new(1.0, 2.0));
        assert_eq!(f64::from_parts(1.0, 2.0), 1.0);
        assert_eq!(z.scale(2.0), C64::new(6.0, -8.0));
    }
}
