//! Kernel spectra of [`Conv2d`](super::Conv2d): the 2-D DFT of the kernel, centre moved to
//! `(0, 0)`, on the FFT grid (stored, or row-transformed only for one-pass operators).

use crate::fft;
use crate::scalar::Scalar;
use ndarray::Array2;
use num_complex::Complex;
use num_traits::{One, Zero};
use rayon::prelude::*;

pub(super) type C<T> = Complex<<T as Scalar>::Real>;

/// Row-transformed kernel rows: `(grid row, length-q DFT of that row)`.
pub(super) type KernelRows<T> = Vec<(usize, Vec<C<T>>)>;

/// 2-D DFT of `kernel` placed with its centre at `(0, 0)` on a `p × q` periodic grid
/// (entries that land on the same grid point add up), returned column-major for the first
/// `ncols` frequency columns: `[ncols][p]`.
///
/// Only the grid rows that hold kernel entries are transformed along the rows (a kernel is
/// usually much smaller than the grid: the other rows' transforms are zero), and the columns
/// are transformed in parallel.
pub(super) fn kernel_spectrum_t<T: Scalar>(
    kernel: &Array2<T>,
    p: usize,
    q: usize,
    ncols: usize,
) -> Vec<C<T>> {
    let rows = kernel_row_spectra(kernel, p, q);
    let col_plan = fft::complex_plan::<T::Real>(p, false);
    let mut t = crate::alloc::zeroed_vec(p * ncols);
    t.par_chunks_mut(p).enumerate().for_each_init(
        || vec![Complex::zero(); col_plan.get_inplace_scratch_len()],
        |scratch, (j, col)| {
            for (i, r) in &rows {
                col[*i] = r[j];
            }
            col_plan.process_with_scratch(col, scratch);
        },
    );
    t
}

/// The spectrum `run` multiplies by: [`kernel_spectrum_t`] for the first `w` columns,
/// divided by `P·Q` (the scale of the unnormalised inverse FFT).
pub(super) fn stored_spectrum<T: Scalar>(
    kernel: &Array2<T>,
    p: usize,
    q: usize,
    w: usize,
) -> Vec<C<T>> {
    let scale = T::Real::one() / crate::scalar::real::<T::Real>((p * q) as f64);
    let mut k = kernel_spectrum_t(kernel, p, q, w);
    k.par_iter_mut().for_each(|z| *z *= scale);
    k
}

/// The grid rows of the kernel placed with its centre at `(0, 0)` on a `p × q` periodic
/// grid, each transformed along the row: `(grid row, its length-q DFT)`, by grid row.
pub(super) fn kernel_row_spectra<T: Scalar>(
    kernel: &Array2<T>,
    p: usize,
    q: usize,
) -> Vec<(usize, Vec<C<T>>)> {
    let (kh, kw) = kernel.dim();
    let (c0, c1) = (kh / 2, kw / 2);
    let mut rows: std::collections::BTreeMap<usize, Vec<C<T>>> = Default::default();
    for ((a, b), &v) in kernel.indexed_iter() {
        let i = (a as isize - c0 as isize).rem_euclid(p as isize) as usize;
        let j = (b as isize - c1 as isize).rem_euclid(q as isize) as usize;
        rows.entry(i).or_insert_with(|| vec![Complex::zero(); q])[j] +=
            Complex::new(v.re(), v.im());
    }
    let row_plan = fft::complex_plan::<T::Real>(q, false);
    for r in rows.values_mut() {
        row_plan.process(r);
    }
    rows.into_iter().collect()
}
