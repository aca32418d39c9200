//! nalgebra interop: `DMatrix`/`DMatrixView` as operators (dot tests for f32, f64 and
//! complex; products against nalgebra's own), and the zero-copy conversions (checked by
//! pointer identity where no copy is promised).
#![cfg(feature = "nalgebra")]

use ndarray::{array, Array1, Array2, ShapeBuilder};
use num_complex::Complex64;
use sparseinv_solvers::op::nalgebra::nalgebra::{DMatrix, DVector};
use sparseinv_solvers::op::nalgebra::{
    array_into_dmatrix, array_into_dvector, array_to_dmatrix, array_view_as_dmatrix_view,
    dmatrix_into_array, dmatrix_view, dvector_into_array, dvector_view,
};
use sparseinv_solvers::op::LinearOperator;
use sparseinv_solvers::testing::{assert_adjoint, randn};
use sparseinv_solvers::Scalar;

fn random_dmatrix<T: Scalar + nalgebra_scalar::Bound>(m: usize, n: usize, seed: u64) -> DMatrix<T> {
    let a = randn::<T>(&[m * n], seed);
    DMatrix::from_iterator(m, n, a.iter().copied())
}

/// `T: nalgebra::Scalar` without naming the nalgebra crate in this test's dependencies.
mod nalgebra_scalar {
    pub trait Bound: sparseinv_solvers::op::nalgebra::nalgebra::Scalar {}
    impl<T: sparseinv_solvers::op::nalgebra::nalgebra::Scalar> Bound for T {}
}

fn dot_tests<T: Scalar + nalgebra_scalar::Bound>(tol: f64) {
    // large enough for the parallel kernels, small and non-square
    for (m, n) in [(3, 5), (7, 2), (300, 400), (1, 1)] {
        let a = random_dmatrix::<T>(m, n, (m * 1000 + n) as u64);
        assert_adjoint(&a, tol);
        assert_adjoint(&a.view((0, 0), (m, n)), tol);
        // a view with a row stride of 1 but columns not adjacent (a sub-block)
        if m > 2 && n > 1 {
            assert_adjoint(&a.view((1, 1), (m - 2, n - 1)), tol);
        }
        // a transposed-layout view: row stride m (generic element-wise path)
        let at = a.transpose();
        let v = sparseinv_solvers::op::nalgebra::nalgebra::DMatrixView::<
            T,
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn,
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn,
        >::from_slice_with_strides_generic(
            at.as_slice(),
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn(m),
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn(n),
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn(n),
            sparseinv_solvers::op::nalgebra::nalgebra::Dyn(1),
        );
        assert_eq!(v, a, "the strided view reads the same matrix");
        assert_adjoint(&v, tol);
    }
}

#[test]
fn dmatrix_dot_test_f32() {
    dot_tests::<f32>(1e-4);
}

#[test]
fn dmatrix_dot_test_f64() {
    dot_tests::<f64>(1e-12);
}

#[test]
fn dmatrix_dot_test_complex64() {
    dot_tests::<Complex64>(1e-12);
}

/// The operator's products equal nalgebra's own `A * x` and `A.adjoint() * y`, for owned
/// matrices, contiguous views, sub-block views and row-major views.
#[test]
fn products_match_nalgebra() {
    let a = random_dmatrix::<Complex64>(9, 6, 1);
    let x = DVector::from_iterator(6, randn::<Complex64>(&[6], 2).iter().copied());
    let y = DVector::from_iterator(9, randn::<Complex64>(&[9], 3).iter().copied());
    let want_ax = &a * &x;
    let want_ahy = a.adjoint() * &y;
    let check =
        |op: &dyn LinearOperator<Complex64>, ax: &DVector<Complex64>, ahy: &DVector<Complex64>| {
            let got = op.apply(dvector_view(&x).into_dyn()).unwrap();
            for (g, w) in got.iter().zip(ax.iter()) {
                assert!((g - w).norm() < 1e-12);
            }
            let got = op.adjoint(dvector_view(&y).into_dyn()).unwrap();
            for (g, w) in got.iter().zip(ahy.iter()) {
                assert!((g - w).norm() < 1e-12);
            }
        };
    check(&a, &want_ax, &want_ahy);
    check(&a.view((0, 0), (9, 6)), &want_ax, &want_ahy);
    // sub-block
    let sub = a.view((2, 1), (5, 4));
    let xs = DVector::from_iterator(4, x.iter().take(4).copied());
    let ys = DVector::from_iterator(5, y.iter().take(5).copied());
    let got = LinearOperator::apply(&sub, dvector_view(&xs).into_dyn()).unwrap();
    let want = sub * &xs;
    assert!(got
        .iter()
        .zip(want.iter())
        .all(|(g, w)| (g - w).norm() < 1e-12));
    let got = LinearOperator::adjoint(&sub, dvector_view(&ys).into_dyn()).unwrap();
    let want = sub.adjoint() * &ys;
    assert!(got
        .iter()
        .zip(want.iter())
        .all(|(g, w)| (g - w).norm() < 1e-12));
    // shapes and errors
    assert_eq!(LinearOperator::<Complex64>::domain_shape(&a), &[6]);
    assert_eq!(LinearOperator::<Complex64>::range_shape(&a), &[9]);
    assert!(LinearOperator::apply(&a, dvector_view(&y).into_dyn()).is_err());
}

#[test]
fn column_norms_of_nalgebra_matrices() {
    let a = DMatrix::from_row_slice(2, 3, &[3.0, 0.0, 1.0, 4.0, 0.0, -1.0]);
    let c = a.column_norms_sq().unwrap();
    assert_eq!(c.as_slice().unwrap(), &[25.0, 0.0, 2.0]);
    let c = a.view((0, 1), (2, 2)).column_norms_sq().unwrap();
    assert_eq!(c.as_slice().unwrap(), &[0.0, 2.0]);
    // against nalgebra's own column norms
    let b = random_dmatrix::<f64>(7, 5, 9);
    let c = b.column_norms_sq().unwrap();
    for (j, cj) in c.iter().enumerate() {
        assert!((cj - b.column(j).norm_squared()).abs() < 1e-12);
    }
}

#[test]
fn zero_copy_conversions() {
    // DMatrix → ndarray view: same memory, Fortran strides, same entries
    let a = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let v = dmatrix_view(&a);
    assert_eq!(v, array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(v.as_ptr(), a.as_ptr());
    assert_eq!(v.strides(), &[1, 2]);
    // DVector → ndarray view
    let x = DVector::from_vec(vec![1.0, 2.0]);
    assert_eq!(dvector_view(&x).as_ptr(), x.as_ptr());
    // owned moves keep the buffer
    let p = a.as_ptr();
    let arr = dmatrix_into_array(a.clone());
    assert_eq!(arr, array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let back_ptr = arr.as_ptr();
    let back = array_into_dmatrix(arr);
    assert_eq!(back, a);
    assert_eq!(
        back.as_ptr(),
        back_ptr,
        "Fortran-order array moves into a DMatrix"
    );
    assert_ne!(p, back_ptr, "a.clone() was a new buffer");
    let xp = x.as_ptr();
    let xa = dvector_into_array(x);
    assert_eq!(xa.as_ptr(), xp);
    let xv = array_into_dvector(xa);
    assert_eq!(xv.as_ptr(), xp);
    // a C-order array is copied into column-major order, entries unchanged
    let c = Array2::from_shape_fn((3, 2), |(i, j)| (10 * i + j) as f64);
    let d = array_into_dmatrix(c.clone());
    for i in 0..3 {
        for j in 0..2 {
            assert_eq!(d[(i, j)], c[[i, j]]);
        }
    }
    assert_eq!(array_to_dmatrix(c.view()), d);
    // a C-order view is seen by nalgebra without copying (row stride 2, column stride 1)
    let nv = array_view_as_dmatrix_view(c.view()).unwrap();
    assert_eq!(nv.as_ptr(), c.as_ptr());
    assert_eq!(nv, d);
    // so is a Fortran-order one
    let f = Array2::from_shape_vec((3, 2).f(), vec![0.0, 10.0, 20.0, 1.0, 11.0, 21.0]).unwrap();
    let nv = array_view_as_dmatrix_view(f.view()).unwrap();
    assert_eq!(nv.as_ptr(), f.as_ptr());
    assert_eq!(nv, d);
    // a non-contiguous view is not
    let big = Array2::<f64>::zeros((4, 4));
    assert!(array_view_as_dmatrix_view(big.slice(ndarray::s![..2, ..2])).is_none());
    // sliced 1-D array: copied, entries kept
    let s = Array1::from(vec![1.0, 2.0, 3.0, 4.0]);
    let sv = array_into_dvector(s.slice_move(ndarray::s![1..3]));
    assert_eq!(sv.as_slice(), &[2.0, 3.0]);
}
