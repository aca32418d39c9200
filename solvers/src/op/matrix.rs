//! Dense matrices as linear operators.

use super::LinearOperator;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, Ix2};
use num_traits::Zero;
use rayon::prelude::*;
use std::borrow::Cow;

/// Below this many matrix entries the kernels run on one thread (rayon's overhead would dominate).
const PAR_THRESHOLD: usize = 1 << 16;
/// Rows of `y` handled by one task in `A x` (a block of `y` stays in L1 cache).
const ROW_BLOCK: usize = 512;
/// Columns handled by one task in `Aᴴ y`.
const COL_BLOCK: usize = 64;

/// A dense `m × n` matrix `A` as a [`LinearOperator`]: domain shape `[n]`, range shape `[m]`,
/// `y = A x` and `x = Aᴴ y` (conjugate transpose; plain transpose for real scalars).
///
/// **Storage.** The matrix is kept once, column-major (each column `a_j` contiguous), and the
/// transpose is never formed. Both products then stream the matrix once, in order:
/// - `Aᴴ y`: `x_j = ⟨a_j, y⟩ = Σ_i conj(a_ij) y_i`, contiguous dot products, parallel over
///   blocks of columns;
/// - `A x`: `y = Σ_j x_j a_j`, accumulated in cache-sized blocks of rows (parallel over the
///   blocks); columns with `x_j = 0` are skipped, so the product costs `O(m · nnz(x))` — the
///   common case in sparse coding, where the iterates of ISTA/FISTA are sparse.
///
/// Both kernels use rayon (the global pool) above about 65 000 entries and are
/// memory-bandwidth bound for large matrices.
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Matrix};
/// use ndarray::array;
/// let a = Matrix::new(array![[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]]);
/// assert_eq!(a.domain_shape(), &[3]);
/// assert_eq!(a.range_shape(), &[2]);
/// let y = a.apply(array![1.0, 1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![3.0, 0.0].into_dyn());
/// let x = a.adjoint(array![1.0, 2.0].into_dyn().view()).unwrap();
/// assert_eq!(x, array![1.0, 4.0, -2.0].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct Matrix<T: Scalar> {
    /// `Aᵀ` in row-major order, i.e. `A` column-major: row `j` of `at` is column `a_j`.
    at: Array2<T>,
    domain: [usize; 1],
    range: [usize; 1],
}

impl<T: Scalar> Matrix<T> {
    /// The operator of the `m × n` matrix `a` (any memory layout; it is copied once into
    /// column-major order).
    pub fn new(a: Array2<T>) -> Self {
        Self::from_view(a.view())
    }

    /// Like [`Matrix::new`], from a view.
    pub fn from_view(a: ArrayView2<T>) -> Self {
        let (m, n) = a.dim();
        let at = a.t().as_standard_layout().into_owned();
        Matrix {
            at,
            domain: [n],
            range: [m],
        }
    }

    /// From a dynamic-dimensional array, which must be 2-D (`[m, n]`).
    pub fn from_dyn(a: ArrayD<T>) -> Result<Self> {
        let nd = a.ndim();
        let a = a
            .into_dimensionality::<Ix2>()
            .map_err(|_| Error::param("matrix", format!("must be 2-D, got {nd} dimensions")))?;
        Ok(Self::new(a))
    }

    /// Number of rows `m` (size of the range).
    pub fn nrows(&self) -> usize {
        self.range[0]
    }

    /// Number of columns `n` (size of the domain).
    pub fn ncols(&self) -> usize {
        self.domain[0]
    }

    /// The matrix `A` (`m × n`) as a view (column-major strides).
    pub fn view(&self) -> ArrayView2<'_, T> {
        self.at.t()
    }

    /// Column `a_j` as a contiguous slice of length `m`. Panics if `j ≥ n`.
    pub fn column(&self, j: usize) -> &[T] {
        let m = self.nrows();
        &self.slice()[j * m..(j + 1) * m]
    }

    /// Euclidean norms of the columns, `‖a_j‖₂ = (Σ_i |a_ij|²)^{1/2}` (e.g. the weights of
    /// the CEL0 penalty).
    pub fn column_norms(&self) -> Array1<T::Real> {
        let m = self.nrows();
        Array1::from_iter((0..self.ncols()).map(|j| {
            let c = ndarray::ArrayView1::from(&self.slice()[j * m..(j + 1) * m]);
            crate::linalg::norm2(c.into_dyn())
        }))
    }

    fn slice(&self) -> &[T] {
        self.at
            .as_slice()
            .expect("Matrix storage is always standard layout")
    }
}

/// `y ← A x` for an `m × n` matrix stored column-major in `at` (`at[j·m + i] = a_ij`, length
/// `m·n`), on contiguous slices (`x` of length `n`, `y` of length `m`): `y = Σ_j x_j a_j`
/// over the non-zero `x_j`, in cache-sized row blocks, parallel above [`PAR_THRESHOLD`].
pub(crate) fn colmajor_apply<T: Scalar>(at: &[T], m: usize, xs: &[T], ys: &mut [T]) {
    let nz: Vec<(usize, T)> = xs
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != T::zero())
        .map(|(j, &v)| (j, v))
        .collect();
    if m * nz.len() >= PAR_THRESHOLD && m > ROW_BLOCK {
        ys.par_chunks_mut(ROW_BLOCK)
            .enumerate()
            .for_each(|(b, out)| axpy_block(at, m, &nz, b * ROW_BLOCK, out));
    } else {
        for (b, out) in ys.chunks_mut(ROW_BLOCK).enumerate() {
            axpy_block(at, m, &nz, b * ROW_BLOCK, out);
        }
    }
}

/// `x ← Aᴴ y` for a column-major `m × n` matrix `at` (see [`colmajor_apply`]): contiguous
/// conjugated dot products, parallel over blocks of columns above [`PAR_THRESHOLD`].
pub(crate) fn colmajor_adjoint<T: Scalar>(at: &[T], m: usize, ys: &[T], xs: &mut [T]) {
    let n = xs.len();
    let block = |b: usize, out: &mut [T]| {
        for (k, o) in out.iter_mut().enumerate() {
            let j = b * COL_BLOCK + k;
            *o = dot_conj(&at[j * m..(j + 1) * m], ys);
        }
    };
    if m * n >= PAR_THRESHOLD {
        xs.par_chunks_mut(COL_BLOCK)
            .enumerate()
            .for_each(|(b, out)| block(b, out));
    } else {
        for (b, out) in xs.chunks_mut(COL_BLOCK).enumerate() {
            block(b, out);
        }
    }
}

/// `c_j = Σ_i w_i |a_ij|²` for a column-major `m × n` matrix `at` (see [`colmajor_apply`]).
pub(crate) fn colmajor_weighted_norms_sq<T: Scalar>(
    at: &[T],
    m: usize,
    n: usize,
    ws: &[T::Real],
) -> Vec<T::Real> {
    if m == 0 {
        return vec![T::Real::zero(); n];
    }
    at.par_chunks(m)
        .take(n)
        .map(|col| {
            col.iter()
                .zip(ws)
                .fold(T::Real::zero(), |s, (a, &wi)| s + wi * a.abs2())
        })
        .collect()
}

/// `Σ_i conj(a_i) b_i` with four independent accumulators (lets the compiler vectorise and
/// shortens the dependency chain).
#[inline]
pub(crate) fn dot_conj<T: Scalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        acc[0] += u[0].conj() * v[0];
        acc[1] += u[1].conj() * v[1];
        acc[2] += u[2].conj() * v[2];
        acc[3] += u[3].conj() * v[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&u, &v) in ra.iter().zip(rb) {
        s += u.conj() * v;
    }
    s
}

/// `out ← Σ_k x_k col_k[start..start+len]` over the nonzero `(j, x_j)` pairs; four columns at
/// a time so that `out` is loaded and stored once per four columns.
#[inline]
fn axpy_block<T: Scalar>(at: &[T], m: usize, nz: &[(usize, T)], start: usize, out: &mut [T]) {
    out.iter_mut().for_each(|v| *v = T::zero());
    let len = out.len();
    let col = |j: usize| &at[j * m + start..j * m + start + len];
    let quads = nz.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        let (c0, c1, c2, c3) = (col(q[0].0), col(q[1].0), col(q[2].0), col(q[3].0));
        let (x0, x1, x2, x3) = (q[0].1, q[1].1, q[2].1, q[3].1);
        for i in 0..len {
            out[i] += (c0[i] * x0 + c1[i] * x1) + (c2[i] * x2 + c3[i] * x3);
        }
    }
    for &(j, xj) in rest {
        for (o, &a) in out.iter_mut().zip(col(j)) {
            *o += a * xj;
        }
    }
}

fn contiguous<'a, T: Scalar>(v: &'a ArrayViewD<'a, T>) -> Cow<'a, [T]> {
    match v.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(v.iter().copied().collect()),
    }
}

fn write_out<T: Scalar, F: FnOnce(&mut [T])>(mut out: ArrayViewMutD<T>, f: F) {
    if let Some(s) = out.as_slice_mut() {
        f(s);
        return;
    }
    let mut tmp = vec![T::zero(); out.len()];
    f(&mut tmp);
    out.iter_mut().zip(tmp).for_each(|(o, v)| *o = v);
}

impl<T: Scalar> Matrix<T> {
    /// `y ← A x` on contiguous slices (`x` of length `n`, `y` of length `m`).
    fn apply_slice(&self, xs: &[T], ys: &mut [T]) {
        colmajor_apply(self.slice(), self.nrows(), xs, ys)
    }

    /// `x ← Aᴴ y` on contiguous slices.
    fn adjoint_slice(&self, ys: &[T], xs: &mut [T]) {
        colmajor_adjoint(self.slice(), self.nrows(), ys, xs)
    }

    /// The same matrix acting on `k` columns at once: domain `[n, k]`, range `[m, k]`,
    /// `Y = A X` and `X = Aᴴ Y` column by column (see [`MatrixColumns`]).
    pub fn columns(&self, k: usize) -> MatrixColumns<'_, T> {
        MatrixColumns {
            a: self,
            domain: [self.ncols(), k],
            range: [self.nrows(), k],
        }
    }
}

impl<T: Scalar> LinearOperator<T> for Matrix<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }

    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        assert_eq!(x.len(), self.ncols(), "Matrix::apply_into: input length");
        assert_eq!(y.len(), self.nrows(), "Matrix::apply_into: output length");
        let xs = contiguous(&x);
        write_out(y, |ys| self.apply_slice(&xs, ys));
    }

    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        assert_eq!(y.len(), self.nrows(), "Matrix::adjoint_into: input length");
        assert_eq!(x.len(), self.ncols(), "Matrix::adjoint_into: output length");
        let ys = contiguous(&y);
        write_out(x, |xs| self.adjoint_slice(&ys, xs));
    }
    /// `c_j = Σ_i w_i |a_ij|²`, one pass over the contiguous columns.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        super::column_norms::check_weights(&self.range, &w)?;
        let ws = contiguous(&w);
        let c = colmajor_weighted_norms_sq(self.slice(), self.nrows(), self.ncols(), &ws);
        Ok(Array1::from(c).into_dyn())
    }
}

/// A [`Matrix`] `A` applied to the `k` columns of an `n × k` array: domain `[n, k]`, range
/// `[m, k]`, `Y = A X`, adjoint `X = Aᴴ Y`. Made by [`Matrix::columns`]; borrows the matrix.
///
/// With a separable penalty, `min_X ½‖A X − Y‖²_F + Σ_c R(X_c)` is the sum of the `k`
/// independent column problems, so one solver run on this operator codes all columns at
/// once (with one shared stopping test; solve the columns one by one with [`Matrix`] for
/// per-column stopping and reports).
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Matrix};
/// use ndarray::array;
/// let a = Matrix::new(array![[1.0, 2.0], [0.0, 1.0]]);
/// let ak = a.columns(3);
/// assert_eq!(ak.domain_shape(), &[2, 3]);
/// let y = ak.apply(array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]].into_dyn().view()).unwrap();
/// assert_eq!(y, array![[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]].into_dyn());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MatrixColumns<'a, T: Scalar> {
    a: &'a Matrix<T>,
    domain: [usize; 2],
    range: [usize; 2],
}

impl<T: Scalar> LinearOperator<T> for MatrixColumns<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let (n, m) = (self.domain[0], self.range[0]);
        let mut xc = vec![T::zero(); n];
        let mut yc = vec![T::zero(); m];
        for c in 0..self.domain[1] {
            xc.iter_mut()
                .zip(x.index_axis(Axis(1), c))
                .for_each(|(d, &s)| *d = s);
            self.a.apply_slice(&xc, &mut yc);
            y.index_axis_mut(Axis(1), c)
                .iter_mut()
                .zip(&yc)
                .for_each(|(d, &s)| *d = s);
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        let (n, m) = (self.domain[0], self.range[0]);
        let mut xc = vec![T::zero(); n];
        let mut yc = vec![T::zero(); m];
        for c in 0..self.domain[1] {
            yc.iter_mut()
                .zip(y.index_axis(Axis(1), c))
                .for_each(|(d, &s)| *d = s);
            self.a.adjoint_slice(&yc, &mut xc);
            x.index_axis_mut(Axis(1), c)
                .iter_mut()
                .zip(&xc)
                .for_each(|(d, &s)| *d = s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_adjoint, randn};
    use crate::C64;
    use ndarray::{Array1, Ix1};

    /// Brute-force `A x` and `Aᴴ y` by explicit loops over entries.
    fn brute<T: Scalar>(a: &Array2<T>, x: &Array1<T>, y: &Array1<T>) -> (Array1<T>, Array1<T>) {
        let (m, n) = a.dim();
        let mut ax = Array1::zeros(m);
        let mut aty = Array1::zeros(n);
        for i in 0..m {
            for j in 0..n {
                ax[i] += a[[i, j]] * x[j];
                aty[j] += a[[i, j]].conj() * y[i];
            }
        }
        (ax, aty)
    }

    fn check<T: Scalar>(m: usize, n: usize, tol: f64, sparse: bool) {
        let a: Array2<T> = randn::<T>(&[m, n], 11).into_dimensionality().unwrap();
        let mut x: Array1<T> = randn::<T>(&[n], 12).into_dimensionality().unwrap();
        if sparse {
            x.iter_mut()
                .enumerate()
                .filter(|(j, _)| j % 3 != 0)
                .for_each(|(_, v)| *v = T::zero());
        }
        let y: Array1<T> = randn::<T>(&[m], 13).into_dimensionality().unwrap();
        let op = Matrix::new(a.clone());
        let (bx, by) = brute(&a, &x, &y);
        let ax = op.apply(x.view().into_dyn()).unwrap();
        let aty = op.adjoint(y.view().into_dyn()).unwrap();
        let ax = ax.into_dimensionality::<Ix1>().unwrap();
        let aty = aty.into_dimensionality::<Ix1>().unwrap();
        let scale = (n as f64).sqrt() * 10.0;
        for (u, v) in ax.iter().zip(&bx) {
            assert!(
                ((*u - *v).modulus().to_f64_lossless()) < tol * scale,
                "{u} vs {v}"
            );
        }
        for (u, v) in aty.iter().zip(&by) {
            assert!(
                ((*u - *v).modulus().to_f64_lossless()) < tol * scale,
                "{u} vs {v}"
            );
        }
        assert_adjoint(&op, tol * 10.0);
    }

    use crate::scalar::Real as _;

    #[test]
    fn matches_brute_force_and_dot_test() {
        for &(m, n) in &[(1, 1), (3, 7), (7, 3), (33, 70)] {
            check::<f64>(m, n, 1e-13, false);
            check::<f32>(m, n, 1e-5, false);
            check::<C64>(m, n, 1e-13, false);
            check::<f64>(m, n, 1e-13, true);
        }
    }

    #[test]
    fn parallel_blocks_match_brute_force() {
        // large enough for the rayon paths, with a partial last row and column block
        check::<f64>(1100, 130, 1e-12, false);
        check::<C64>(600, 150, 1e-12, true);
        check::<f32>(700, 100, 1e-4, false);
    }

    #[test]
    fn non_contiguous_views_and_column_norms() {
        let a: Array2<f64> = randn::<f64>(&[5, 4], 3).into_dimensionality().unwrap();
        let op = Matrix::new(a.clone());
        let big = randn::<f64>(&[8], 4);
        let x = big.slice(ndarray::s![..;2]).to_owned();
        let ax1 = op.apply(big.slice(ndarray::s![..;2]).into_dyn()).unwrap();
        let ax2 = op.apply(x.view().into_dyn()).unwrap();
        assert_eq!(ax1, ax2);
        let norms = op.column_norms();
        for j in 0..4 {
            let nj = a.column(j).iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norms[j] - nj).abs() < 1e-14);
            assert_eq!(op.column(j), a.column(j).to_vec().as_slice());
        }
        assert_eq!(op.view(), a.view());
        assert!(Matrix::from_dyn(randn::<f64>(&[2, 2, 2], 1)).is_err());
        let c = Matrix::<C64>::new(Array2::from_elem((2, 3), C64::new(3.0, 4.0)));
        assert!(c
            .column_norms()
            .iter()
            .all(|&v| (v - 50f64.sqrt()).abs() < 1e-12));
    }

    #[test]
    fn columns_operator_matches_per_column_products() {
        let a: Array2<C64> = randn::<C64>(&[9, 5], 8).into_dimensionality().unwrap();
        let op = Matrix::new(a.clone());
        let ak = op.columns(4);
        assert_adjoint(&ak, 1e-13);
        assert_adjoint(
            &Matrix::new(
                randn::<f32>(&[6, 4], 1)
                    .into_dimensionality::<Ix2>()
                    .unwrap(),
            )
            .columns(3),
            1e-5,
        );
        let x: Array2<C64> = randn::<C64>(&[5, 4], 9).into_dimensionality().unwrap();
        let y = ak.apply(x.view().into_dyn()).unwrap();
        let expect = a.dot(&x);
        for (u, v) in y.iter().zip(&expect) {
            assert!((u - v).norm() < 1e-12);
        }
        let back = ak.adjoint(y.view()).unwrap();
        let expect = a.t().mapv(|v| v.conj()).dot(&expect);
        for (u, v) in back.iter().zip(&expect) {
            assert!((u - v).norm() < 1e-11);
        }
    }
}
