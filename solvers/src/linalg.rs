//! Small vector kernels on arrays of any shape: inner products and norms with the
//! conjugating convention `⟨x, y⟩ = Σ conj(xᵢ) yᵢ`.

use crate::scalar::Scalar;
use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use num_traits::{Float, Zero};

/// `⟨x, y⟩ = Σ conj(xᵢ) yᵢ` over arrays of the same shape.
pub fn vdot<T: Scalar>(x: ArrayViewD<T>, y: ArrayViewD<T>) -> T {
    let mut acc = T::zero();
    Zip::from(&x).and(&y).for_each(|&a, &b| acc += a.conj() * b);
    acc
}

/// Squared Euclidean norm `Σ |xᵢ|²`.
pub fn norm2_sq<T: Scalar>(x: ArrayViewD<T>) -> T::Real {
    let mut acc = T::Real::zero();
    x.for_each(|&a| acc += a.abs2());
    acc
}

/// Euclidean (Frobenius) norm, computed with scaling to avoid overflow for large entries.
pub fn norm2<T: Scalar>(x: ArrayViewD<T>) -> T::Real {
    let mut scale = T::Real::zero();
    x.for_each(|&a| {
        let m = a.modulus();
        if m > scale {
            scale = m;
        }
    });
    if scale == T::Real::zero() || !scale.is_finite() {
        return scale;
    }
    let mut acc = T::Real::zero();
    x.for_each(|&a| {
        let m = a.modulus() / scale;
        acc += m * m;
    });
    scale * acc.sqrt()
}

/// `y ← y + a x`.
pub fn axpy<T: Scalar>(a: T, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
    Zip::from(y).and(&x).for_each(|y, &x| *y += a * x);
}
