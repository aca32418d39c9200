//! Exact squared column norms `‖A e_j‖²` of a linear operator by probing with basis vectors:
//! the default behind [`LinearOperator::column_norms_sq`] and
//! [`LinearOperator::weighted_column_norms_sq`], and the brute-force reference that every
//! specialisation is tested against.

use super::{check_shape, LinearOperator};
use crate::error::{Error, Result};
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use num_traits::Zero;
use rayon::prelude::*;

/// Work limit of the default (probing) column norms: the number of columns times the number
/// of domain plus range elements, `n · (n + m)`, may not exceed this (2³¹ ≈ 2.1·10⁹ element
/// operations, seconds to a minute on two cores for cheap operators such as FFT
/// convolutions). Above it [`LinearOperator::column_norms_sq`] errs instead of running for
/// hours; [`probe_weighted_column_norms_sq`] takes an explicit limit.
pub const PROBE_WORK_LIMIT: u64 = 1 << 31;

/// Check that `w` has the range shape of `a` and holds finite, non-negative weights.
pub(crate) fn check_weights<R: Real>(range: &[usize], w: &ArrayViewD<R>) -> Result<()> {
    check_shape("column-norm weights", range, w.shape())?;
    if let Some(bad) = w.iter().find(|v| !(v.is_finite() && **v >= R::zero())) {
        return Err(Error::param(
            "weights",
            format!("row weights must be finite and non-negative (got {bad})"),
        ));
    }
    Ok(())
}

/// Weighted squared column norms `c_j = Σ_i w_i |(A e_j)_i|²` (shape: the domain of `A`)
/// computed exactly by applying `A` to every basis vector `e_j` (in parallel, one probe per
/// column). With `w = 1` this is `‖A e_j‖²`.
///
/// Cost: `n` applications of `A` (`n` = domain size), i.e. about `n · (n + m)` element
/// operations for an operator whose application is linear in its sizes. Errors
/// ([`Error::InvalidParameter`]) when that exceeds `work_limit` (see [`PROBE_WORK_LIMIT`]),
/// when `w` does not have the range shape, or when a weight is negative or not finite.
///
/// ```
/// use sparseinv_solvers::op::{probe_weighted_column_norms_sq, Diagonal, PROBE_WORK_LIMIT};
/// use ndarray::array;
/// let d = Diagonal::new(array![1.0, -2.0, 3.0].into_dyn());
/// let w = array![1.0, 1.0, 0.5].into_dyn();
/// let c = probe_weighted_column_norms_sq(&d, w.view(), PROBE_WORK_LIMIT).unwrap();
/// assert_eq!(c, array![1.0, 4.0, 4.5].into_dyn());
/// ```
pub fn probe_weighted_column_norms_sq<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    w: ArrayViewD<T::Real>,
    work_limit: u64,
) -> Result<ArrayD<T::Real>> {
    check_weights(a.range_shape(), &w)?;
    let n = a.domain_size();
    let m = a.range_size();
    let work = (n as u64).saturating_mul(n as u64 + m as u64);
    if work > work_limit {
        return Err(Error::param(
            "column_norms_sq",
            format!(
                "exact column norms of this operator (domain {:?}, range {:?}) need {n} \
                 applications, about {work} element operations, above the limit {work_limit}; \
                 use an operator with a closed form (Mask, Subsample, Diagonal, Matrix, \
                 Conv2d, Kronecker, and their compositions), or call \
                 probe_weighted_column_norms_sq with a larger limit",
                a.domain_shape(),
                a.range_shape()
            ),
        ));
    }
    let w = w.as_standard_layout();
    let ws = w.as_slice().expect("standard layout");
    let dom = a.domain_shape().to_vec();
    let ran = a.range_shape().to_vec();
    let mut out = vec![T::Real::zero(); n];
    out.par_iter_mut().enumerate().for_each_init(
        || {
            (
                ArrayD::<T>::zeros(IxDyn(&dom)),
                ArrayD::<T>::zeros(IxDyn(&ran)),
            )
        },
        |(x, y), (j, c)| {
            let xs = x.as_slice_mut().expect("fresh array is contiguous");
            xs[j] = T::one();
            a.apply_into(x.view(), y.view_mut());
            x.as_slice_mut().expect("fresh array is contiguous")[j] = T::zero();
            let ys = y.as_slice().expect("fresh array is contiguous");
            *c = ys
                .iter()
                .zip(ws)
                .fold(T::Real::zero(), |s, (v, &wi)| s + wi * v.abs2());
        },
    );
    Ok(ArrayD::from_shape_vec(IxDyn(&dom), out).expect("domain-sized buffer"))
}

/// `Σ_k` of arrays of one shape.
pub(crate) fn add_into<R: Real>(acc: &mut ArrayD<R>, x: &ArrayD<R>) {
    Zip::from(acc).and(x).for_each(|a, &b| *a += b);
}
