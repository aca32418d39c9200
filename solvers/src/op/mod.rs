//! The shared linear-operator trait and its implementations.
//!
//! Every linear map in sparseinv — FFT convolution, masks, Kronecker products, starlet
//! wavelets, dense matrices — implements [`LinearOperator`]: a forward map `y = A x` and its
//! adjoint `x = Aᴴ y` on n-dimensional arrays with runtime shapes. The adjoint is mandatory
//! and is checked by [`crate::testing::dot_test`].
//!
//! Conventions: arrays are `ndarray` arrays in row-major (C) order; the inner product is
//! `⟨x, y⟩ = Σ conj(xᵢ) yᵢ`, so the adjoint of a complex operator is its conjugate transpose.

use crate::error::{Error, Result};
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A linear map between n-dimensional arrays of scalars `T`, with its adjoint.
///
/// Implementors provide the shapes and the two `*_into` kernels; everything else is provided.
/// The trait is object safe: `Box<dyn LinearOperator<f64>>` works, and every combinator
/// accepts trait objects.
///
/// The `*_into` kernels may assume their arguments have exactly `domain_shape()` /
/// `range_shape()` (they panic otherwise: a caller bug); the provided [`apply`](Self::apply)
/// and [`adjoint`](Self::adjoint) check shapes and return [`Error::ShapeMismatch`] instead.
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Diagonal};
/// use ndarray::{array, IxDyn};
/// let d = Diagonal::new(array![1.0, 2.0, 3.0].into_dyn());
/// let y = d.apply(array![1.0, 1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![1.0, 2.0, 3.0].into_dyn());
/// ```
pub trait LinearOperator<T: Scalar>: Send + Sync {
    /// Shape of the input `x`.
    fn domain_shape(&self) -> &[usize];
    /// Shape of the output `y = A x`.
    fn range_shape(&self) -> &[usize];
    /// `y ← A x`. `x` has `domain_shape()`, `y` has `range_shape()`; `y` is overwritten.
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>);
    /// `x ← Aᴴ y`. `y` has `range_shape()`, `x` has `domain_shape()`; `x` is overwritten.
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>);

    /// Number of elements of the domain.
    fn domain_size(&self) -> usize {
        self.domain_shape().iter().product()
    }
    /// Number of elements of the range.
    fn range_size(&self) -> usize {
        self.range_shape().iter().product()
    }
    /// `A x` in a new array, after checking the shape of `x`.
    fn apply(&self, x: ArrayViewD<T>) -> Result<ArrayD<T>> {
        check_shape("operator input", self.domain_shape(), x.shape())?;
        let mut y = ArrayD::zeros(IxDyn(self.range_shape()));
        self.apply_into(x, y.view_mut());
        Ok(y)
    }
    /// `Aᴴ y` in a new array, after checking the shape of `y`.
    fn adjoint(&self, y: ArrayViewD<T>) -> Result<ArrayD<T>> {
        check_shape("adjoint input", self.range_shape(), y.shape())?;
        let mut x = ArrayD::zeros(IxDyn(self.domain_shape()));
        self.adjoint_into(y, x.view_mut());
        Ok(x)
    }
}

/// Check `got == expected`, else [`Error::ShapeMismatch`] naming `what`.
pub fn check_shape(what: &str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected != got {
        return Err(Error::shape(what, expected, got));
    }
    Ok(())
}

/// Parameters of the power iteration in [`op_norm`].
#[derive(Debug, Clone, Copy)]
pub struct NormEstimate {
    /// Maximum number of iterations (default 100).
    pub max_iters: usize,
    /// Stop when the relative change of the estimate falls below this (default 1e-6).
    pub tol: f64,
    /// Seed of the random start vector (default 0).
    pub seed: u64,
}

impl Default for NormEstimate {
    fn default() -> Self {
        NormEstimate {
            max_iters: 100,
            tol: 1e-6,
            seed: 0,
        }
    }
}

/// Spectral norm `‖A‖₂ = sqrt(λ_max(AᴴA))` estimated by power iteration on `AᴴA` from a
/// seeded Gaussian start.
///
/// Power iteration approaches the norm from below; with `tol = 1e-6` the estimate is typically
/// within 1e-6 relative for operators with a spectral gap. Solvers that need a Lipschitz
/// constant multiply it by a small safety factor. Returns 0 for the zero operator.
///
/// ```
/// use sparseinv_solvers::op::{op_norm, Diagonal, NormEstimate};
/// use ndarray::array;
/// let d = Diagonal::new(array![1.0, -4.0, 2.0].into_dyn());
/// let n: f64 = op_norm(&d, NormEstimate::default());
/// assert!((n - 4.0).abs() < 1e-5);
/// ```
pub fn op_norm<T: Scalar, A: LinearOperator<T> + ?Sized>(a: &A, p: NormEstimate) -> T::Real {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed);
    let mut x = ArrayD::<T>::from_shape_simple_fn(IxDyn(a.domain_shape()), || {
        let re: f64 = StandardNormal.sample(&mut rng);
        let im: f64 = if T::IS_COMPLEX {
            StandardNormal.sample(&mut rng)
        } else {
            0.0
        };
        T::from_parts(crate::scalar::real(re), crate::scalar::real(im))
    });
    let mut y = ArrayD::<T>::zeros(IxDyn(a.range_shape()));
    let mut z = ArrayD::<T>::zeros(IxDyn(a.domain_shape()));
    let nx = crate::linalg::norm2(x.view());
    if nx == T::Real::zero() {
        return nx;
    }
    x.mapv_inplace(|v| v.scale(T::Real::one() / nx));
    let mut lam = T::Real::zero();
    let tol: T::Real = crate::scalar::real(p.tol);
    for _ in 0..p.max_iters.max(1) {
        a.apply_into(x.view(), y.view_mut());
        a.adjoint_into(y.view(), z.view_mut());
        let nz = crate::linalg::norm2(z.view());
        if nz == T::Real::zero() {
            return nz;
        }
        let new = nz; // ‖AᴴA x‖ with ‖x‖ = 1 → λ_max
        std::mem::swap(&mut x, &mut z);
        x.mapv_inplace(|v| v.scale(T::Real::one() / nz));
        if (new - lam).abs() <= tol * new {
            lam = new;
            break;
        }
        lam = new;
    }
    lam.sqrt()
}

use num_traits::{Float, One, Zero};

impl<T: Scalar, A: LinearOperator<T> + ?Sized> LinearOperator<T> for Box<A> {
    fn domain_shape(&self) -> &[usize] {
        (**self).domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        (**self).range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        (**self).apply_into(x, y)
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        (**self).adjoint_into(y, x)
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> LinearOperator<T> for &A {
    fn domain_shape(&self) -> &[usize] {
        (**self).domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        (**self).range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        (**self).apply_into(x, y)
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        (**self).adjoint_into(y, x)
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> LinearOperator<T> for std::sync::Arc<A> {
    fn domain_shape(&self) -> &[usize] {
        (**self).domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        (**self).range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        (**self).apply_into(x, y)
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        (**self).adjoint_into(y, x)
    }
}

pub mod combinators;
mod diagonal;
mod downsample;
mod finite_diff;
mod mask;
pub use combinators::{Adjoint, BlockDiag, BlockLayout, Compose, HStack, Scaled, Sum, VStack};
pub use diagonal::Diagonal;
pub use downsample::{Downsample, DownsampleMode};
pub use finite_diff::FiniteDiff;
pub use mask::{Mask, Subsample};
mod matrix;
pub(crate) use matrix::dot_conj;
pub use matrix::{Matrix, MatrixColumns};
pub mod kronecker;
pub use kronecker::Kronecker;
pub mod conv2d;
mod overlap_save;
mod starlet;
pub use conv2d::{Boundary, Conv2d, Diagonalizable};
pub use starlet::{starlet_noise_std, Starlet};

/// Keeps `Real` in scope for docs of submodules.
#[allow(dead_code)]
fn _real_bound<R: Real>() {}
