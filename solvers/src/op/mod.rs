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
use crate::scalar::Scalar;
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

    /// The two products of one Golub–Kahan bidiagonalisation step (as in LSQR,
    /// [`crate::krylov::Lsqr`]) at once: `u ← A v − α u`, then `g ← Aᴴ u` with the updated
    /// (not normalised) `u`.
    ///
    /// `v` and `g` have `domain_shape()`, `u` and `scratch` have `range_shape()`; `scratch` is
    /// workspace with unspecified contents on return. The default calls
    /// [`apply_into`](Self::apply_into) (into `scratch`) and then
    /// [`adjoint_into`](Self::adjoint_into). Operators whose cost is reading their data (a
    /// dense matrix) override it to form both products in one pass over that data: every
    /// row `i` of `A` gives `u_i = ⟨a_i, v⟩ − α u_i` and at once `g += conj(a_i) u_i` while
    /// the row is still in cache, so the matrix is read once instead of twice.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: T::Real,
        mut u: ArrayViewMutD<T>,
        g: ArrayViewMutD<T>,
        mut scratch: ArrayViewMutD<T>,
    ) {
        self.apply_into(v, scratch.view_mut());
        ndarray::Zip::from(&mut u)
            .and(&scratch)
            .for_each(|u, &s| *u = s - u.scale(alpha));
        self.adjoint_into(u.view(), g);
    }

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

    /// Squared column norms `c_j = ‖A e_j‖² = Σ_i |A_ij|²` (shape: the domain; `e_j` the
    /// basis vector of domain element `j`), e.g. the weights of the CEL0 penalty
    /// ([`crate::prox::Cel0::from_operator`]) or the diagonal of `AᴴA` for Jacobi scaling.
    ///
    /// Exact. Operators with a closed form override it: [`Mask`] and [`Subsample`] (0/1 or
    /// multiplicities), [`Diagonal`] (`|d_j|²`), [`Matrix`] (`Σ_i |a_ij|²`), [`Conv2d`] (the
    /// kernel energy that lands inside the output window, by one FFT correlation), [`Scaled`],
    /// [`Compose`] of a row-selecting operator (mask, diagonal, subsampling) after any of
    /// these, [`Kronecker`] (outer product of the factors' column norms), [`BlockDiag`],
    /// [`VStack`] and [`HStack`]. The default probes every basis vector (`n` applications of
    /// `A`, see [`probe_weighted_column_norms_sq`]) and errs with
    /// [`Error::InvalidParameter`] when that would exceed [`PROBE_WORK_LIMIT`] instead of
    /// running for hours.
    ///
    /// ```
    /// use sparseinv_solvers::op::{Boundary, Compose, Conv2d, LinearOperator, Mask};
    /// use ndarray::{array, Array2};
    /// // a 3-tap blur of 1×4 images, then a mask that drops the last pixel
    /// let a = Conv2d::new([1, 4], array![[1.0, 2.0, 1.0]].view(), Boundary::Same).unwrap();
    /// let m = Mask::new(array![[true, true, true, false]].into_dyn());
    /// let c = Compose::<f64, _, _>::new(m, a).unwrap().column_norms_sq().unwrap();
    /// // column 0 reaches outputs 0, 1 (4 + 1); column 3 reaches output 2 only (1)
    /// let want = array![[5.0, 6.0, 5.0, 1.0]].into_dyn();
    /// assert!(c.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12));
    /// ```
    fn column_norms_sq(&self) -> Result<ArrayD<T::Real>> {
        let w = ArrayD::from_elem(IxDyn(self.range_shape()), T::Real::one());
        self.weighted_column_norms_sq(w.view())
    }

    /// Weighted squared column norms `c_j = Σ_i w_i |A_ij|²` for non-negative weights `w` of
    /// the range shape (`w = 1` gives [`column_norms_sq`](Self::column_norms_sq)); this is
    /// what a composition `D ∘ A` with a row-selecting `D` needs (see
    /// [`pullback_row_weights`](Self::pullback_row_weights)).
    ///
    /// Same closed forms and the same probing default and limit as `column_norms_sq`.
    /// Errors when `w` has the wrong shape or holds a negative or non-finite weight.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        probe_weighted_column_norms_sq(self, w, PROBE_WORK_LIMIT)
    }

    /// For an operator each of whose rows has at most one non-zero entry (a diagonal, a
    /// mask, a subsampling, and compositions and scalings of these), the pull-back of row
    /// weights `w` (range shape) to the domain, `v_k = Σ_i w_i |A_ik|²`; `None` for other
    /// operators (the default).
    ///
    /// Then `Σ_i w_i |(A B)_ij|² = Σ_k v_k |B_kj|²`, so the column norms of `A ∘ B` are the
    /// `v`-weighted column norms of `B`: this is how [`Compose`] gets them in closed form.
    /// `w` is assumed to have the range shape and non-negative entries (callers check).
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        let _ = w;
        None
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
    fn column_norms_sq(&self) -> Result<ArrayD<T::Real>> {
        (**self).column_norms_sq()
    }
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        (**self).weighted_column_norms_sq(w)
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        (**self).pullback_row_weights(w)
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
    fn column_norms_sq(&self) -> Result<ArrayD<T::Real>> {
        (**self).column_norms_sq()
    }
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        (**self).weighted_column_norms_sq(w)
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        (**self).pullback_row_weights(w)
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
    fn column_norms_sq(&self) -> Result<ArrayD<T::Real>> {
        (**self).column_norms_sq()
    }
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        (**self).weighted_column_norms_sq(w)
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        (**self).pullback_row_weights(w)
    }
}

mod band_sum;
mod column_norms;
pub mod combinators;
mod crop;
mod diagonal;
mod downsample;
mod finite_diff;
mod mask;
mod shift;
pub use band_sum::BandSum;
pub use column_norms::{probe_weighted_column_norms_sq, PROBE_WORK_LIMIT};
pub use combinators::{Adjoint, BlockDiag, BlockLayout, Compose, HStack, Scaled, Sum, VStack};
pub use crop::Crop;
pub use diagonal::Diagonal;
pub use downsample::{Downsample, DownsampleMode};
pub use finite_diff::FiniteDiff;
pub use mask::{Mask, Subsample};
pub use shift::FourierShift;
mod matrix;
#[cfg(feature = "nalgebra")]
pub mod nalgebra;
pub(crate) use matrix::dot_conj;
pub use matrix::{Matrix, MatrixColumns};
pub mod kronecker;
pub use kronecker::Kronecker;
pub mod conv2d;
mod overlap_save;
mod starlet;
pub use conv2d::{Boundary, Conv2d, Diagonalizable};
pub use starlet::{starlet_noise_std, Starlet};
