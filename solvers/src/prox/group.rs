//! The group l2,1 norm (group lasso) and its prox, block soft thresholding.

use super::Prox;
use crate::error::{Error, Result};
use crate::par;
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};
use num_traits::{Float, Zero};

/// How the groups of a [`GroupL21`] are given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Groups {
    /// Disjoint lists of flat (row-major) indices covering `0..n`.
    Lists { lists: Vec<Vec<usize>>, n: usize },
    /// The lanes along one axis: each group is `x[.., :, ..]` with every other index fixed.
    Axis(usize),
}

/// The group l2,1 norm `R(x) = λ Σ_g ‖x_g‖₂` over a partition of the elements into groups
/// (joint sparsity: whole groups are kept or zeroed).
///
/// Prox (block soft thresholding, complex-aware):
/// `prox_{τR}(v)_g = v_g · max(0, 1 − τλ / ‖v_g‖₂)`.
/// Its conjugate is the indicator of `{y : ‖y_g‖₂ ≤ λ for every g}`, whose prox projects each
/// group onto the ball of radius `λ`.
///
/// Groups are either explicit lists of flat row-major indices forming a partition of
/// `0..n` ([`GroupL21::from_lists`]), or the lanes along one axis ([`GroupL21::along_axis`]:
/// for a `[channels, pixels]` array and axis 0, one group per pixel holding its channels).
///
/// ```
/// use sparseinv_solvers::prox::{GroupL21, Prox};
/// use ndarray::array;
/// let g = GroupL21::along_axis(1.0f64, 0).unwrap(); // columns are groups
/// let v = array![[3.0f64, 0.3], [4.0, 0.4]].into_dyn(); // column norms 5 and 0.5
/// let x = g.prox(v.view(), 1.0);
/// let want = array![[2.4f64, 0.0], [3.2, 0.0]].into_dyn();
/// assert!(x.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-14));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GroupL21<R: Real> {
    lambda: R,
    groups: Groups,
}

impl<R: Real> GroupL21<R> {
    /// Groups given as lists of flat row-major indices; they must be non-empty, disjoint,
    /// and cover `0..n` exactly, where `n` is the number of elements of the argument
    /// (checked by [`Prox::check_shape`]). Errors otherwise or on a negative/non-finite `λ`.
    pub fn from_lists(lambda: R, groups: Vec<Vec<usize>>) -> Result<Self> {
        super::weights::check_weight("lambda", lambda)?;
        let n: usize = groups.iter().map(|g| g.len()).sum();
        if n == 0 {
            return Err(Error::Empty {
                what: "group list".into(),
            });
        }
        let mut seen = vec![false; n];
        for (gi, g) in groups.iter().enumerate() {
            if g.is_empty() {
                return Err(Error::param("groups", format!("group {gi} is empty")));
            }
            for &i in g {
                if i >= n {
                    return Err(Error::param(
                        "groups",
                        format!("index {i} in group {gi} is out of range: the groups hold {n} indices, so they must cover 0..{n}"),
                    ));
                }
                if seen[i] {
                    return Err(Error::param(
                        "groups",
                        format!("index {i} appears in more than one group (or twice)"),
                    ));
                }
                seen[i] = true;
            }
        }
        Ok(GroupL21 {
            lambda,
            groups: Groups::Lists { lists: groups, n },
        })
    }

    /// One group per lane along `axis` (the l2 norm runs over that axis). The argument must
    /// have more than `axis` dimensions (checked by [`Prox::check_shape`]).
    pub fn along_axis(lambda: R, axis: usize) -> Result<Self> {
        super::weights::check_weight("lambda", lambda)?;
        Ok(GroupL21 {
            lambda,
            groups: Groups::Axis(axis),
        })
    }

    /// `λ`.
    pub fn lambda(&self) -> R {
        self.lambda
    }
}

/// Lanes processed together on the contiguous fast path of [`Groups::Axis`] (their norms
/// stay in cache while each of the `len` rows of the block is streamed once).
const AXIS_CHUNK: usize = 1024;

/// `acc[i] = ‖lane c0 + i‖₂` for the lanes `c0 .. c0 + acc.len()` of one standard-layout
/// block of `len × inner` elements (lanes run with stride `inner`). Plain sum of squares,
/// streamed row by row; a lane whose sum overflows or could have underflowed (below
/// `min_positive / ε`) is recomputed with scaling by [`crate::linalg::norm2`]. A NaN
/// element makes the lane's norm NaN.
fn lane_norms<T: Scalar>(block: &[T], len: usize, inner: usize, c0: usize, acc: &mut [T::Real]) {
    let c1 = c0 + acc.len();
    acc.fill(T::Real::zero());
    for k in 0..len {
        acc.iter_mut()
            .zip(&block[k * inner + c0..k * inner + c1])
            .for_each(|(s, a)| *s += a.abs2());
    }
    let tiny = T::Real::min_positive_value() / T::Real::epsilon();
    for (i, s) in acc.iter_mut().enumerate() {
        if s.is_nan() {
            continue;
        }
        if s.is_finite() && *s >= tiny {
            *s = Float::sqrt(*s);
            continue;
        }
        let lane = ndarray::ArrayView1::from_shape(
            ndarray::ShapeBuilder::strides(len, inner),
            &block[c0 + i..],
        )
        .expect("lane inside the block");
        *s = crate::linalg::norm2(lane.into_dyn());
    }
}

/// Block soft-threshold factor `max(0, 1 − t/n)` (NaN norms propagate).
#[inline]
fn shrink_factor<R: Real>(norm: R, t: R) -> R {
    if norm.is_nan() {
        norm
    } else if norm > t {
        R::one() - t / norm
    } else {
        R::zero()
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for GroupL21<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        let l = self.lambda.to_f64_lossless();
        let s: f64 = match &self.groups {
            Groups::Axis(ax) if x.as_slice().is_some() => {
                let xs = x.as_slice().expect("checked");
                let (outer, len, inner) = par::split_at_axis(x.shape(), *ax);
                let per = inner.div_ceil(AXIS_CHUNK);
                par::sum_tasks(outer * per, xs.len(), 0.0f64, |t| {
                    let (o, c0) = (t / per, (t % per) * AXIS_CHUNK);
                    let mut acc = vec![R::zero(); AXIS_CHUNK.min(inner - c0)];
                    lane_norms(
                        &xs[o * len * inner..(o + 1) * len * inner],
                        len,
                        inner,
                        c0,
                        &mut acc,
                    );
                    acc.iter().map(|a| a.to_f64_lossless()).sum::<f64>()
                })
            }
            Groups::Axis(ax) => x
                .lanes(Axis(*ax))
                .into_iter()
                .map(|lane| {
                    lane.iter()
                        .map(|a| a.abs2().to_f64_lossless())
                        .sum::<f64>()
                        .sqrt()
                })
                .sum(),
            Groups::Lists { lists, .. } => {
                let flat = x.as_standard_layout();
                let flat = flat.as_slice().expect("standard layout");
                lists
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|&i| flat[i].abs2().to_f64_lossless())
                            .sum::<f64>()
                            .sqrt()
                    })
                    .sum()
            }
        };
        real(l * s)
    }

    fn prox_into(&self, v: ArrayViewD<T>, tau: R, mut out: ArrayViewMutD<T>) {
        let t = tau * self.lambda;
        match &self.groups {
            Groups::Axis(ax) if v.as_slice().is_some() && out.as_slice().is_some() => {
                let vs = v.as_slice().expect("checked");
                let os = out.as_slice_mut().expect("checked");
                assert_eq!(
                    vs.len(),
                    os.len(),
                    "prox_into: argument and output sizes differ"
                );
                let (outer, len, inner) = par::split_at_axis(v.shape(), *ax);
                let per = inner.div_ceil(AXIS_CHUNK);
                let dst = par::SharedMut(os.as_mut_ptr());
                par::for_each_task(outer * per, vs.len(), |task| {
                    let (o, c0) = (task / per, (task % per) * AXIS_CHUNK);
                    let c1 = (c0 + AXIS_CHUNK).min(inner);
                    let base = o * len * inner;
                    let vb = &vs[base..base + len * inner];
                    let mut acc = vec![R::zero(); c1 - c0];
                    lane_norms(vb, len, inner, c0, &mut acc);
                    acc.iter_mut().for_each(|a| *a = shrink_factor(*a, t));
                    for k in 0..len {
                        let at = base + k * inner + c0;
                        // SAFETY: task (o, c0) writes exactly the elements
                        // (o·len + k)·inner + c0 .. c1 for k < len, in bounds of `os` (same
                        // length as `vs`); distinct tasks have distinct (o, c0), so the
                        // writes are disjoint, and `out` is exclusively borrowed meanwhile.
                        let o_row =
                            unsafe { std::slice::from_raw_parts_mut(dst.get().add(at), c1 - c0) };
                        o_row
                            .iter_mut()
                            .zip(&vb[k * inner + c0..k * inner + c1])
                            .zip(acc.iter())
                            .for_each(|((o, a), &s)| *o = a.scale(s));
                    }
                });
            }
            Groups::Axis(ax) => {
                Zip::from(out.lanes_mut(Axis(*ax)))
                    .and(v.lanes(Axis(*ax)))
                    .for_each(|mut o, vl| {
                        let n = crate::linalg::norm2(vl.into_dyn());
                        let s = shrink_factor(n, t);
                        Zip::from(&mut o).and(&vl).for_each(|o, &a| *o = a.scale(s));
                    });
            }
            Groups::Lists { lists, n } => {
                assert_eq!(
                    v.len(),
                    *n,
                    "GroupL21 groups cover {n} elements, argument has {}; validate with Prox::check_shape",
                    v.len()
                );
                let vs = v.as_standard_layout();
                let vs = vs.as_slice().expect("standard layout");
                let mut res = vec![T::zero(); *n];
                for g in lists {
                    let mut scale = R::zero();
                    for &i in g {
                        scale = scale.max(vs[i].modulus());
                    }
                    let norm = if scale > R::zero() && scale.is_finite() {
                        let ss: R = g
                            .iter()
                            .map(|&i| {
                                let m = vs[i].modulus() / scale;
                                m * m
                            })
                            .sum();
                        scale * ss.sqrt()
                    } else {
                        scale
                    };
                    let s = shrink_factor(norm, t);
                    for &i in g {
                        res[i] = vs[i].scale(s);
                    }
                }
                Zip::from(&mut out)
                    .and(&ndarray::ArrayView::from_shape(v.raw_dim(), &res).expect("same size"))
                    .for_each(|o, &r| *o = r);
            }
        }
    }

    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        match &self.groups {
            Groups::Axis(ax) => {
                if *ax >= shape.len() {
                    return Err(Error::param(
                        "axis",
                        format!(
                            "axis {ax} out of range for an argument with {} dimensions",
                            shape.len()
                        ),
                    ));
                }
                Ok(())
            }
            Groups::Lists { n, .. } => {
                let len: usize = shape.iter().product();
                if len != *n {
                    return Err(Error::shape(
                        "GroupL21 argument (number of elements)",
                        &[*n],
                        &[len],
                    ));
                }
                Ok(())
            }
        }
    }
}
