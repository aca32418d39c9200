//! The one bridge between this crate's scalars and `faer`, the dense linear-algebra backend:
//! the decompositions sparse Bayesian learning needs (Cholesky, triangular solves, Hermitian
//! eigendecomposition, SVD), exchanged as `ndarray` arrays, and direct use of `faer` matrices
//! (`faer::Mat<T>`, QR least squares, matrix products) as self-calibration does.
//!
//! [`DenseScalar`] is implemented for `f32`, `f64`, `Complex<f32>` and `Complex<f64>`, and
//! is both a [`Scalar`] and a `faer` `ComplexField`; it is the bound of every solver of
//! [`crate::sbl`] and [`crate::selfcal`]. Because both supertraits name an associated type
//! `Real`, generic code spells the real type `<T as Scalar>::Real`. The conversion to and
//! from `faer` copies (the matrices involved are small compared with the cost of factorising
//! them).
//!
//! ```
//! use sparseinv_solvers::dense::{adjoint, DenseScalar};
//! use ndarray::array;
//! // a = L Lᴴ with L lower triangular
//! let a = array![[4.0f64, 2.0], [2.0, 5.0]];
//! let l = f64::cholesky_lower(a.view()).unwrap();
//! assert!((l.dot(&adjoint(l.view())) - &a).iter().all(|v| v.abs() < 1e-12));
//! ```

#![allow(clippy::type_complexity)]

use crate::error::{Error, Result};
use crate::scalar::{Scalar, C32, C64};
use ndarray::{Array1, Array2, ArrayView2};

/// A scalar for which the dense decompositions are available and that `faer` can use
/// directly (`f32`, `f64`, `C32`, `C64`): a [`Scalar`] and a `faer::traits::ComplexField`.
pub trait DenseScalar: Scalar + faer::traits::ComplexField {
    /// Lower Cholesky factor `L` of a Hermitian positive-definite `a = L Lᴴ` (only the lower
    /// triangle of `a` is read). [`Error::Numerical`] when `a` is not positive definite.
    fn cholesky_lower(a: ArrayView2<Self>) -> Result<Array2<Self>>;
    /// `b ← L⁻¹ b` for a lower-triangular `l` (forward substitution, in place).
    fn solve_lower_in_place(l: ArrayView2<Self>, b: &mut Array2<Self>);
    /// `b ← L⁻ᴴ b` for a lower-triangular `l` (back substitution with `Lᴴ`, in place).
    fn solve_lower_adjoint_in_place(l: ArrayView2<Self>, b: &mut Array2<Self>);
    /// Eigendecomposition of a Hermitian `a = U diag(λ) Uᴴ`, eigenvalues ascending.
    fn eigh(a: ArrayView2<Self>) -> Result<(Array1<<Self as Scalar>::Real>, Array2<Self>)>;
    /// Thin SVD `a = U diag(s) Vᴴ`, singular values descending. Returns `(U, s, V)`.
    fn svd(
        a: ArrayView2<Self>,
    ) -> Result<(Array2<Self>, Array1<<Self as Scalar>::Real>, Array2<Self>)>;
    /// `a bᴴ` by faer's parallel matrix product (`a`: `m × k`, `b`: `n × k`).
    fn mul_adjoint(a: ArrayView2<Self>, b: ArrayView2<Self>) -> Array2<Self>;
    /// [`DenseScalar::eigh`] for a real symmetric matrix of the underlying real type.
    fn real_eigh(
        a: ArrayView2<<Self as Scalar>::Real>,
    ) -> Result<(
        Array1<<Self as Scalar>::Real>,
        Array2<<Self as Scalar>::Real>,
    )>;
    /// [`DenseScalar::svd`] for a real matrix of the underlying real type.
    #[allow(clippy::type_complexity)]
    fn real_svd(
        a: ArrayView2<<Self as Scalar>::Real>,
    ) -> Result<(
        Array2<<Self as Scalar>::Real>,
        Array1<<Self as Scalar>::Real>,
        Array2<<Self as Scalar>::Real>,
    )>;
}

macro_rules! impl_dense {
    ($t:ty, $r:ty) => {
        impl DenseScalar for $t {
            fn cholesky_lower(a: ArrayView2<Self>) -> Result<Array2<Self>> {
                let n = a.nrows();
                let m = faer::Mat::<$t>::from_fn(n, n, |i, j| a[[i, j]]);
                let llt = m.llt(faer::Side::Lower).map_err(|e| {
                    Error::Numerical(format!("Cholesky factorisation failed: {e:?}"))
                })?;
                let l = llt.L();
                Ok(Array2::from_shape_fn((n, n), |(i, j)| {
                    if j <= i {
                        l[(i, j)]
                    } else {
                        <$t as num_traits::Zero>::zero()
                    }
                }))
            }
            fn solve_lower_in_place(l: ArrayView2<Self>, b: &mut Array2<Self>) {
                let n = l.nrows();
                let lf = faer::Mat::<$t>::from_fn(n, n, |i, j| l[[i, j]]);
                let mut bf = faer::Mat::<$t>::from_fn(b.nrows(), b.ncols(), |i, j| b[[i, j]]);
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    lf.as_ref(),
                    bf.as_mut(),
                    faer::get_global_parallelism(),
                );
                b.indexed_iter_mut().for_each(|((i, j), v)| *v = bf[(i, j)]);
            }
            fn solve_lower_adjoint_in_place(l: ArrayView2<Self>, b: &mut Array2<Self>) {
                let n = l.nrows();
                let lf = faer::Mat::<$t>::from_fn(n, n, |i, j| l[[i, j]]);
                let mut bf = faer::Mat::<$t>::from_fn(b.nrows(), b.ncols(), |i, j| b[[i, j]]);
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                    lf.as_ref().adjoint(),
                    bf.as_mut(),
                    faer::get_global_parallelism(),
                );
                b.indexed_iter_mut().for_each(|((i, j), v)| *v = bf[(i, j)]);
            }
            fn eigh(a: ArrayView2<Self>) -> Result<(Array1<$r>, Array2<Self>)> {
                let n = a.nrows();
                let m = faer::Mat::<$t>::from_fn(n, n, |i, j| a[[i, j]]);
                let e = m.self_adjoint_eigen(faer::Side::Lower).map_err(|e| {
                    Error::Numerical(format!("Hermitian eigendecomposition failed: {e:?}"))
                })?;
                let s = e.S();
                let u = e.U();
                let vals = Array1::from_shape_fn(n, |i| Scalar::re(s[i]));
                let vecs = Array2::from_shape_fn((n, n), |(i, j)| u[(i, j)]);
                Ok((vals, vecs))
            }
            fn svd(a: ArrayView2<Self>) -> Result<(Array2<Self>, Array1<$r>, Array2<Self>)> {
                let (m, n) = a.dim();
                let mf = faer::Mat::<$t>::from_fn(m, n, |i, j| a[[i, j]]);
                let s = mf
                    .thin_svd()
                    .map_err(|e| Error::Numerical(format!("SVD failed: {e:?}")))?;
                let k = m.min(n);
                let (u, sv, v) = (s.U(), s.S(), s.V());
                Ok((
                    Array2::from_shape_fn((m, k), |(i, j)| u[(i, j)]),
                    Array1::from_shape_fn(k, |i| Scalar::re(sv[i])),
                    Array2::from_shape_fn((n, k), |(i, j)| v[(i, j)]),
                ))
            }
            fn mul_adjoint(a: ArrayView2<Self>, b: ArrayView2<Self>) -> Array2<Self> {
                let af = faer::Mat::<$t>::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]]);
                let bf = faer::Mat::<$t>::from_fn(b.nrows(), b.ncols(), |i, j| b[[i, j]]);
                let mut c = faer::Mat::<$t>::zeros(a.nrows(), b.nrows());
                faer::linalg::matmul::matmul(
                    c.as_mut(),
                    faer::Accum::Replace,
                    af.as_ref(),
                    bf.as_ref().adjoint(),
                    <$t as num_traits::One>::one(),
                    faer::get_global_parallelism(),
                );
                Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| c[(i, j)])
            }
            fn real_eigh(a: ArrayView2<$r>) -> Result<(Array1<$r>, Array2<$r>)> {
                <$r as DenseScalar>::eigh(a)
            }
            fn real_svd(a: ArrayView2<$r>) -> Result<(Array2<$r>, Array1<$r>, Array2<$r>)> {
                <$r as DenseScalar>::svd(a)
            }
        }
    };
}
impl_dense!(f32, f32);
impl_dense!(f64, f64);
impl_dense!(C32, f32);
impl_dense!(C64, f64);

/// `Aᴴ` (conjugate transpose) as a new array.
pub fn adjoint<T: Scalar>(a: ArrayView2<T>) -> Array2<T> {
    a.t().mapv(|v| v.conj())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Real;
    use crate::testing::randn;
    use ndarray::Ix2;

    fn check<T: DenseScalar>(tol: f64) {
        let b = randn::<T>(&[6, 4], 3).into_dimensionality::<Ix2>().unwrap();
        let mut a = b.dot(&adjoint(b.view()));
        for i in 0..6 {
            a[[i, i]] += T::one();
        }
        let l = T::cholesky_lower(a.view()).unwrap();
        let rec = l.dot(&adjoint(l.view()));
        let err = (&rec - &a)
            .iter()
            .map(|v| v.modulus().to_f64_lossless())
            .fold(0.0, f64::max);
        assert!(err < tol, "cholesky {err}");
        // L⁻ᴴ L⁻¹ a = I
        let mut x = a.clone();
        T::solve_lower_in_place(l.view(), &mut x);
        T::solve_lower_adjoint_in_place(l.view(), &mut x);
        for ((i, j), v) in x.indexed_iter() {
            let e = if i == j { 1.0 } else { 0.0 };
            assert!(
                (v.re().to_f64_lossless() - e).abs() < tol && v.im().to_f64_lossless().abs() < tol
            );
        }
        let (w, u) = T::eigh(a.view()).unwrap();
        let mut rec = u.clone();
        for ((_, j), v) in rec.indexed_iter_mut() {
            *v = v.scale(w[j]);
        }
        let rec = rec.dot(&adjoint(u.view()));
        let err = (&rec - &a)
            .iter()
            .map(|v| v.modulus().to_f64_lossless())
            .fold(0.0, f64::max);
        assert!(err < tol, "eigh {err}");
        let (u, s, v) = T::svd(b.view()).unwrap();
        let mut us = u.clone();
        for ((_, j), x) in us.indexed_iter_mut() {
            *x = x.scale(s[j]);
        }
        let rec = us.dot(&adjoint(v.view()));
        let err = (&rec - &b)
            .iter()
            .map(|v| v.modulus().to_f64_lossless())
            .fold(0.0, f64::max);
        assert!(err < tol, "svd {err}");
        assert!(T::cholesky_lower(a.mapv(|v| T::zero() - v).view()).is_err());
    }

    #[test]
    fn decompositions_reconstruct() {
        check::<f64>(1e-10);
        check::<C64>(1e-10);
        check::<f32>(1e-3);
        check::<C32>(1e-3);
    }
}
