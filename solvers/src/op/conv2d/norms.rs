//! Closed-form (weighted) squared column norms of [`Conv2d`]: `c_j = Σ_i w_i |A_ij|²`.
//!
//! In the zero-boundary modes (`Same`, `Full`, `Valid`), and in `Circular` mode when the
//! kernel fits in the image, every matrix entry is a single kernel entry,
//! `A_ij = k[i + c − j]` (per axis, with the mode's offset), so `|A_ij|²` is the matrix of the
//! same convolution with the kernel `|k|²` and `c = A_{|k|²}ᵀ w`: one FFT correlation. With
//! `w = 1` this is the kernel energy that lands inside the output window (`‖k‖²` for
//! interior pixels and everywhere in circular mode).
//!
//! In `Reflect` mode (and circular mode with a kernel larger than the image) several kernel
//! entries can fold onto one input pixel, `A_ij = Σ k[a, b]` over the folded entries, and the
//! squares do not separate; the norms are then summed directly: for each output pixel, the
//! kernel entries are grouped by the input pixel they read, `O(n_out · h · w)` work.

use super::{Boundary, Conv2d};
use crate::boundary::reflect_index;
use crate::error::Result;
use crate::op::column_norms::check_weights;
use crate::op::LinearOperator;
use crate::scalar::Scalar;
use ndarray::{Array2, ArrayD, ArrayViewD, Ix2};
use num_traits::Zero;
use rayon::prelude::*;

/// Along one axis: for every output index, the input indices it reads and, for each, the
/// kernel taps that read it (`groups[i] = [(j, [a…])…]`).
fn folded_taps(mode: Boundary, n: usize, k: usize) -> Vec<Vec<(usize, Vec<usize>)>> {
    let c = k / 2;
    (0..n)
        .map(|i| {
            let mut g: Vec<(usize, Vec<usize>)> = Vec::new();
            for a in 0..k {
                let m = i as isize + c as isize - a as isize;
                let j = match mode {
                    Boundary::Reflect => reflect_index(m, n),
                    _ => m.rem_euclid(n as isize) as usize,
                };
                match g.iter_mut().find(|(jj, _)| *jj == j) {
                    Some((_, taps)) => taps.push(a),
                    None => g.push((j, vec![a])),
                }
            }
            g
        })
        .collect()
}

impl<T: Scalar> Conv2d<T> {
    /// `c_j = Σ_i w_i |A_ij|²` (see the module docs of `norms` for the two methods).
    pub(super) fn weighted_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(&self.ran, &w)?;
        let (kh, kw) = self.kernel.dim();
        let separable = match self.mode {
            Boundary::Same | Boundary::Full | Boundary::Valid => true,
            Boundary::Circular => kh <= self.dom[0] && kw <= self.dom[1],
            Boundary::Reflect => false,
        };
        if separable {
            let k2 = self.kernel.mapv(|v| v.abs2());
            let b = Conv2d::<T::Real>::new(self.dom, k2.view(), self.mode)?;
            let mut c = b.adjoint(w)?;
            // round-off of the FFTs can leave tiny negative values where the exact result is 0
            c.mapv_inplace(|v| {
                if v < T::Real::zero() {
                    T::Real::zero()
                } else {
                    v
                }
            });
            return Ok(c);
        }
        let w = w.into_dimensionality::<Ix2>().expect("checked 2-D");
        let rows = folded_taps(self.mode, self.dom[0], kh);
        let cols = folded_taps(self.mode, self.dom[1], kw);
        let [n0, n1] = self.dom;
        let kernel = &self.kernel;
        let c = (0..n0)
            .into_par_iter()
            .fold(
                || Array2::<T::Real>::zeros((n0, n1)),
                |mut acc, i0| {
                    for i1 in 0..n1 {
                        let wi = w[[i0, i1]];
                        if wi == T::Real::zero() {
                            continue;
                        }
                        for (j0, ta) in &rows[i0] {
                            for (j1, tb) in &cols[i1] {
                                let mut v = T::zero();
                                for &a in ta {
                                    for &b in tb {
                                        v += kernel[[a, b]];
                                    }
                                }
                                acc[[*j0, *j1]] += wi * v.abs2();
                            }
                        }
                    }
                    acc
                },
            )
            .reduce(
                || Array2::<T::Real>::zeros((n0, n1)),
                |mut a, b| {
                    a += &b;
                    a
                },
            );
        Ok(c.into_dyn())
    }
}
