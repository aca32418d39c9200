//! The group l2,1 norm (group lasso) and its prox, block soft thresholding.

use super::Prox;
use crate::error::{Error, Result};
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};

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
