//! nalgebra interop (feature `nalgebra`, on by default): dense nalgebra matrices as
//! [`LinearOperator`]s, and conversions between nalgebra vectors/matrices and the ndarray
//! arrays the solvers take.
//!
//! **Layouts.** A [`DMatrix`] stores its `m × n` entries column-major (`a_ij` at `j·m + i`),
//! ndarray arrays are usually row-major (C order). An ndarray view with Fortran strides
//! reads a `DMatrix` in place, so:
//!
//! | conversion | copies? |
//! |---|---|
//! | [`dvector_view`], [`dvector_view_mut`] (`DVector` → `ArrayView1`) | no |
//! | [`dmatrix_view`], [`dmatrix_view_mut`] (`DMatrix` → `ArrayView2`, Fortran strides) | no |
//! | [`dmatrix_into_array`] (`DMatrix` → `Array2` in Fortran order) | no (moves the buffer) |
//! | [`dvector_into_array`] (`DVector` → `Array1`) | no (moves the buffer) |
//! | [`array_view_as_dmatrix_view`] (`ArrayView2` → `DMatrixView`) | no; `None` unless the view is contiguous in C or Fortran order |
//! | [`array_into_dmatrix`] (`Array2` → `DMatrix`) | no when the array is in Fortran order with no offset, else one copy |
//! | [`array_into_dvector`] (`Array1` → `DVector`) | no when contiguous with no offset, else one copy |
//! | [`array_to_dmatrix`], [`array_to_dvector`] (from views) | one copy |
//!
//! **Operators.** `DMatrix<T>` and `DMatrixView<T>` (for `T` = `f32`, `f64`, `Complex<f32>`,
//! `Complex<f64>`) implement [`LinearOperator`] with domain `[n]` and range `[m]`:
//! `y = A x`, `x = Aᴴ y` (conjugate transpose). A contiguous matrix runs the same
//! column-major kernels as [`crate::op::Matrix`] on nalgebra's buffer, without copying
//! (parallel, skipping zero entries of `x`); a view with a row stride other than 1 is
//! applied element by element. The squared column norms ([`LinearOperator::column_norms_sq`])
//! are computed directly from the entries.
//!
//! nalgebra matrices have inherent methods named `apply` (map entries in place) and
//! `adjoint` (conjugate transpose), which method-call syntax finds first: write
//! `LinearOperator::apply(&a, x)` / `LinearOperator::adjoint(&a, y)`, or pass the matrix to
//! anything generic over [`LinearOperator`] (solvers, combinators), where no clash arises.
//!
//! The trait returns shapes as `&[usize]`, which nalgebra matrices do not store; the
//! one-element shape slices are interned (one small allocation per distinct dimension for
//! the life of the program).
//!
//! The nalgebra crate itself is re-exported as [`nalgebra`] so that users
//! get the version these impls are written for.
//!
//! ```
//! use sparseinv_solvers::op::nalgebra::{dvector_view, nalgebra::{DMatrix, DVector}};
//! use sparseinv_solvers::op::LinearOperator;
//! let a = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 0.0, 0.0, 1.0, -1.0]);
//! let x = DVector::from_vec(vec![1.0, 1.0, 1.0]);
//! // nalgebra's inherent `apply`/`adjoint` methods shadow the trait's: call them by path
//! let y = LinearOperator::apply(&a, dvector_view(&x).into_dyn()).unwrap();
//! assert_eq!(y.as_slice().unwrap(), &[3.0, 0.0]);
//! ```

pub use ::nalgebra;

use super::matrix::{colmajor_adjoint, colmajor_apply, colmajor_weighted_norms_sq};
use super::LinearOperator;
use crate::error::Result;
use crate::scalar::Scalar;
use ::nalgebra::{DMatrix, DMatrixView, DVector, Dyn};
use ndarray::{
    Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2,
    ArrayViewMutD, ShapeBuilder,
};
use num_traits::Zero;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The interned shape `[n]`, valid for the whole program.
fn shape1(n: usize) -> &'static [usize] {
    static SHAPES: OnceLock<Mutex<HashMap<usize, &'static [usize]>>> = OnceLock::new();
    let mut map = SHAPES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(n)
        .or_insert_with(|| Box::leak(vec![n].into_boxed_slice()))
}

/// A read-only ndarray view of a `DVector` (no copy).
pub fn dvector_view<T: ::nalgebra::Scalar>(v: &DVector<T>) -> ArrayView1<'_, T> {
    ArrayView1::from(v.as_slice())
}

/// A mutable ndarray view of a `DVector` (no copy).
pub fn dvector_view_mut<T: ::nalgebra::Scalar>(v: &mut DVector<T>) -> ArrayViewMut1<'_, T> {
    ArrayViewMut1::from(v.as_mut_slice())
}

/// The `m × n` ndarray view of a `DMatrix` with Fortran (column-major) strides `(1, m)`:
/// no copy; `view[[i, j]] == a[(i, j)]`.
pub fn dmatrix_view<T: ::nalgebra::Scalar>(a: &DMatrix<T>) -> ArrayView2<'_, T> {
    let (m, n) = a.shape();
    ArrayView2::from_shape((m, n).f(), a.as_slice()).expect("a DMatrix buffer holds m·n entries")
}

/// The mutable counterpart of [`dmatrix_view`] (no copy).
pub fn dmatrix_view_mut<T: ::nalgebra::Scalar>(a: &mut DMatrix<T>) -> ArrayViewMut2<'_, T> {
    let (m, n) = a.shape();
    ArrayViewMut2::from_shape((m, n).f(), a.as_mut_slice())
        .expect("a DMatrix buffer holds m·n entries")
}

/// The `DMatrix` as an owned `m × n` array in Fortran order (its buffer is moved, not
/// copied). Use `.as_standard_layout()` for a row-major copy.
pub fn dmatrix_into_array<T: ::nalgebra::Scalar>(a: DMatrix<T>) -> Array2<T> {
    let (m, n) = a.shape();
    let data: Vec<T> = a.data.into();
    Array2::from_shape_vec((m, n).f(), data).expect("a DMatrix buffer holds m·n entries")
}

/// The `DVector` as an owned `Array1` (buffer moved, no copy).
pub fn dvector_into_array<T: ::nalgebra::Scalar>(v: DVector<T>) -> Array1<T> {
    let data: Vec<T> = v.data.into();
    Array1::from(data)
}

/// A `DMatrix` with the entries of an `m × n` array: the buffer is moved (no copy) when the
/// array is in Fortran order and starts at its buffer's beginning, otherwise the entries are
/// copied once.
pub fn array_into_dmatrix<T: ::nalgebra::Scalar>(a: Array2<T>) -> DMatrix<T> {
    let (m, n) = a.dim();
    if a.t().is_standard_layout() {
        let (data, offset) = a.into_raw_vec_and_offset();
        if offset.unwrap_or(0) == 0 && data.len() == m * n {
            return DMatrix::from_vec(m, n, data);
        }
        let a = Array2::from_shape_vec((m, n).f(), data[offset.unwrap_or(0)..][..m * n].to_vec())
            .expect("m·n entries");
        return array_to_dmatrix(a.view());
    }
    array_to_dmatrix(a.view())
}

/// A `DMatrix` copy of an `m × n` array view of any layout.
pub fn array_to_dmatrix<T: ::nalgebra::Scalar>(a: ArrayView2<T>) -> DMatrix<T> {
    let (m, n) = a.dim();
    match a.t().as_slice() {
        // Fortran-contiguous: its memory is already the column-major buffer
        Some(cols) => DMatrix::from_column_slice(m, n, cols),
        None => DMatrix::from_fn(m, n, |i, j| a[[i, j]].clone()),
    }
}

/// A `DVector` with the entries of an `Array1`: the buffer is moved (no copy) when the array
/// is contiguous and starts at its buffer's beginning, otherwise copied once.
pub fn array_into_dvector<T: ::nalgebra::Scalar>(a: Array1<T>) -> DVector<T> {
    if a.is_standard_layout() {
        let n = a.len();
        let (data, offset) = a.into_raw_vec_and_offset();
        if offset.unwrap_or(0) == 0 && data.len() == n {
            return DVector::from_vec(data);
        }
        return DVector::from_column_slice(&data[offset.unwrap_or(0)..][..n]);
    }
    array_to_dvector(a.view())
}

/// A `DVector` copy of a 1-D array view of any stride.
pub fn array_to_dvector<T: ::nalgebra::Scalar>(a: ArrayView1<T>) -> DVector<T> {
    DVector::from_iterator(a.len(), a.iter().cloned())
}

/// A nalgebra view of an `m × n` ndarray view without copying, when the view is contiguous
/// in row-major (C) order (a nalgebra view with row stride `n` and column stride 1) or in
/// column-major (Fortran) order (strides `1`, `m`); `None` for other layouts (then use
/// [`array_to_dmatrix`]). Both strides are dynamic (`DMatrixView<T, Dyn, Dyn>`); the view
/// is itself a [`LinearOperator`].
pub fn array_view_as_dmatrix_view<'a, T: ::nalgebra::Scalar>(
    a: ArrayView2<'a, T>,
) -> Option<DMatrixView<'a, T, Dyn, Dyn>> {
    let (m, n) = a.dim();
    if m == 0 || n == 0 {
        return None;
    }
    let c_order = a.is_standard_layout();
    let f_order = a.t().is_standard_layout();
    let data: &'a [T] = a.to_slice_memory_order()?;
    if c_order {
        Some(DMatrixView::from_slice_with_strides_generic(
            data,
            Dyn(m),
            Dyn(n),
            Dyn(n),
            Dyn(1),
        ))
    } else if f_order {
        Some(DMatrixView::from_slice_with_strides_generic(
            data,
            Dyn(m),
            Dyn(n),
            Dyn(1),
            Dyn(m),
        ))
    } else {
        None
    }
}

/// Contiguous input slice of a 1-D operand, or a copy.
fn operand<'a, T: Scalar>(v: &'a ArrayViewD<'a, T>) -> std::borrow::Cow<'a, [T]> {
    match v.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(v.iter().copied().collect()),
    }
}

/// Run `f` on a contiguous mutable slice of `out` (directly, or through a copy).
fn write_out<T: Scalar>(mut out: ArrayViewMutD<T>, f: impl FnOnce(&mut [T])) {
    if let Some(s) = out.as_slice_mut() {
        f(s);
        return;
    }
    let mut tmp = vec![T::zero(); out.len()];
    f(&mut tmp);
    out.iter_mut().zip(tmp).for_each(|(d, s)| *d = s);
}

/// `y = A x` / `x = Aᴴ y` / weighted column norms of a matrix given as an element accessor
/// (for views whose columns are not contiguous).
fn strided_apply<T: Scalar>(
    m: usize,
    n: usize,
    at: impl Fn(usize, usize) -> T,
    x: &[T],
    y: &mut [T],
) {
    y.fill(T::zero());
    for (j, &xj) in x.iter().enumerate().take(n) {
        if xj == T::zero() {
            continue;
        }
        for (i, yi) in y.iter_mut().enumerate().take(m) {
            *yi += at(i, j) * xj;
        }
    }
}

fn strided_adjoint<T: Scalar>(m: usize, at: impl Fn(usize, usize) -> T, y: &[T], x: &mut [T]) {
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = (0..m).fold(T::zero(), |s, i| s + at(i, j).conj() * y[i]);
    }
}

macro_rules! matrix_operator {
    ($ty:ty, $doc:literal $(, $g:ident)*) => {
        #[doc = $doc]
        impl<T: Scalar + ::nalgebra::Scalar $(, $g: ::nalgebra::Dim)*> LinearOperator<T> for $ty {
            fn domain_shape(&self) -> &[usize] {
                shape1(self.ncols())
            }
            fn range_shape(&self) -> &[usize] {
                shape1(self.nrows())
            }
            fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
                let (m, n) = self.shape();
                assert_eq!(x.len(), n, "nalgebra matrix apply_into: input length");
                assert_eq!(y.len(), m, "nalgebra matrix apply_into: output length");
                let xs = operand(&x);
                match contiguous_columns(self) {
                    Some(at) => write_out(y, |ys| colmajor_apply(at, m, &xs, ys)),
                    None => write_out(y, |ys| {
                        strided_apply(m, n, |i, j| self[(i, j)], &xs, ys)
                    }),
                }
            }
            fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
                let (m, n) = self.shape();
                assert_eq!(y.len(), m, "nalgebra matrix adjoint_into: input length");
                assert_eq!(x.len(), n, "nalgebra matrix adjoint_into: output length");
                let ys = operand(&y);
                match contiguous_columns(self) {
                    Some(at) => write_out(x, |xs| colmajor_adjoint(at, m, &ys, xs)),
                    None => write_out(x, |xs| strided_adjoint(m, |i, j| self[(i, j)], &ys, xs)),
                }
            }
            /// `c_j = Σ_i w_i |a_ij|²`, directly from the entries.
            fn weighted_column_norms_sq(
                &self,
                w: ArrayViewD<T::Real>,
            ) -> Result<ArrayD<T::Real>> {
                let (m, n) = self.shape();
                super::column_norms::check_weights(shape1(m), &w)?;
                let ws: Vec<T::Real> = w.iter().copied().collect();
                let c = match contiguous_columns(self) {
                    Some(at) => colmajor_weighted_norms_sq(at, m, n, &ws),
                    None => (0..n)
                        .map(|j| {
                            (0..m).fold(T::Real::zero(), |s, i| s + ws[i] * self[(i, j)].abs2())
                        })
                        .collect(),
                };
                Ok(Array1::from(c).into_dyn())
            }
        }
    };
}

/// The column-major buffer of a matrix whose columns are contiguous and adjacent
/// (row stride 1, column stride `m`), else `None`.
fn contiguous_columns<T: ::nalgebra::Scalar, S>(
    a: &::nalgebra::Matrix<T, Dyn, Dyn, S>,
) -> Option<&[T]>
where
    S: ::nalgebra::RawStorage<T, Dyn, Dyn>,
{
    let (m, n) = a.shape();
    let (rs, cs) = a.strides();
    if m * n == 0 || (rs == 1 && (cs == m || n == 1)) {
        // SAFETY: with row stride 1 and column stride m (or a single column) the m·n
        // entries are one contiguous run starting at `as_ptr()`, borrowed with `a`.
        Some(unsafe { std::slice::from_raw_parts(a.as_ptr(), m * n) })
    } else {
        None
    }
}

matrix_operator!(
    DMatrix<T>,
    "A `DMatrix` (`m × n`, column-major) as an operator `[n] → [m]`: `y = A x`, \
     `x = Aᴴ y`, on nalgebra's buffer without copying."
);
matrix_operator!(
    DMatrixView<'_, T, RS, CS>,
    "A `DMatrixView` (`m × n`, any strides, static or dynamic) as an operator `[n] → [m]`: \
     without copying; views with contiguous columns use the fast column-major kernels.",
    RS,
    CS
);
