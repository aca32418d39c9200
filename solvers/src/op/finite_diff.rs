//! Forward finite differences: the discrete gradient of total-variation regularisation.

use super::LinearOperator;
use crate::error::{Error, Result};
use crate::par;
use crate::scalar::Scalar;
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Slice, Zip};

/// Discrete gradient by forward differences with Neumann boundary, along every axis of an
/// n-d array or a chosen subset of axes.
///
/// For input shape `s = [n₀, n₁, …]` and axes `a₁, …, aₖ`, the output has shape
/// `[k, n₀, n₁, …]`; slice `j` holds the difference along axis `aⱼ`:
///
/// ```text
/// (∇x)[j, …, i, …] = x[…, i+1, …] − x[…, i, …]   for i < n_{aⱼ} − 1
///                   = 0                           for i = n_{aⱼ} − 1   (Neumann)
/// ```
///
/// This is the gradient of Chambolle (2004), "An algorithm for total variation minimization
/// and applications": `‖∇x‖₁` (anisotropic) or the sum over pixels of the l2 norm over
/// the first axis (isotropic) is the TV of `x`.
///
/// The adjoint is minus the discrete divergence, `∇ᴴ = −div`:
///
/// ```text
/// (∇ᴴ p)[…, i, …] = Σⱼ ( p[j, …, i−1, …]·[i ≥ 1] − p[j, …, i, …]·[i ≤ n−2] )
/// ```
///
/// (the entries `p[j, …, n−1, …]` on the last index are ignored, matching the forward map's
/// fixed zeros). The coefficients are real, so the same holds for complex scalars.
/// `‖∇‖₂² ≤ 4k` (at most 4 per axis), the bound step sizes of TV solvers use.
///
/// ```
/// use sparseinv_solvers::op::{FiniteDiff, LinearOperator};
/// use ndarray::array;
/// let g = FiniteDiff::new(&[2, 3]).unwrap();
/// let x = array![[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]].into_dyn();
/// let d = g.apply(x.view()).unwrap();
/// assert_eq!(d.shape(), &[2, 2, 3]);
/// // along rows (axis 0), then along columns (axis 1)
/// assert_eq!(d, array![[[-1.0, -2.0, -4.0], [0.0, 0.0, 0.0]],
///                      [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct FiniteDiff {
    shape: Vec<usize>,
    range: Vec<usize>,
    axes: Vec<usize>,
}

impl FiniteDiff {
    /// Gradient along every axis of arrays of `shape` (range `[shape.len(), ...shape]`).
    /// [`Error::InvalidParameter`] for a 0-d shape, [`Error::Empty`] for a zero-length axis.
    pub fn new(shape: &[usize]) -> Result<Self> {
        let axes: Vec<usize> = (0..shape.len()).collect();
        Self::with_axes(shape, &axes)
    }

    /// Gradient along the given `axes` only, in that order (range `[axes.len(), ...shape]`).
    /// E.g. `axes = [1, 2]` differentiates a `[channels, rows, cols]` cube spatially.
    /// Errors for an empty or repeated axis list, or an axis `≥ shape.len()`.
    pub fn with_axes(shape: &[usize], axes: &[usize]) -> Result<Self> {
        if shape.is_empty() {
            return Err(Error::param(
                "shape",
                "FiniteDiff needs at least one dimension",
            ));
        }
        if shape.contains(&0) {
            return Err(Error::Empty {
                what: format!("FiniteDiff domain of shape {shape:?}"),
            });
        }
        if axes.is_empty() {
            return Err(Error::param("axes", "at least one axis is required"));
        }
        for (k, &a) in axes.iter().enumerate() {
            if a >= shape.len() {
                return Err(Error::param(
                    "axes",
                    format!(
                        "axis {a} out of range for a {}-d shape {shape:?}",
                        shape.len()
                    ),
                ));
            }
            if axes[..k].contains(&a) {
                return Err(Error::param("axes", format!("axis {a} repeated")));
            }
        }
        let mut range = vec![axes.len()];
        range.extend_from_slice(shape);
        Ok(FiniteDiff {
            shape: shape.to_vec(),
            range,
            axes: axes.to_vec(),
        })
    }

    /// The differentiated axes, in output order.
    pub fn axes(&self) -> &[usize] {
        &self.axes
    }
}

impl FiniteDiff {
    /// `apply_into` on standard-layout (row-major contiguous) buffers: per axis, within each
    /// block of `n·inner` elements, `y[i] = x[i + inner] − x[i]` for positions
    /// `p < (n−1)·inner` and `0` on the last slice, as unit-stride loops over chunks of the
    /// output (in parallel for large arrays).
    fn apply_contiguous<T: Scalar>(&self, xs: &[T], ys: &mut [T]) {
        let len = xs.len();
        for (j, &a) in self.axes.iter().enumerate() {
            let yj = &mut ys[j * len..(j + 1) * len];
            let (_, n, inner) = par::split_at_axis(&self.shape, a);
            let (b, m) = (n * inner, (n - 1) * inner);
            par::for_each_chunk(yj, |r, out| {
                let r0 = r.start;
                par::block_segments(r, b, &[m], |s, region| {
                    let o = &mut out[s.start - r0..s.end - r0];
                    if region == 0 {
                        o.iter_mut()
                            .zip(&xs[s.start + inner..s.end + inner])
                            .zip(&xs[s])
                            .for_each(|((y, &hi), &lo)| *y = hi - lo);
                    } else {
                        o.fill(T::zero());
                    }
                });
            });
        }
    }

    /// `adjoint_into` on standard-layout buffers in one write per axis: within each block,
    /// `x[i] = y[i − inner]·[p ≥ inner] − y[i]·[p < (n−1)·inner]` (`p` the position in the
    /// block; the first axis assigns, the others accumulate), over the three position ranges
    /// where the brackets are constant so that each loop is branch-free.
    fn adjoint_contiguous<T: Scalar>(&self, ys: &[T], xs: &mut [T]) {
        let len = xs.len();
        for (j, &a) in self.axes.iter().enumerate() {
            let yj = &ys[j * len..(j + 1) * len];
            let (_, n, inner) = par::split_at_axis(&self.shape, a);
            if j == 0 {
                adjoint_axis(yj, xs, n, inner, |d, v| *d = v);
            } else {
                adjoint_axis(yj, xs, n, inner, |d, v| *d += v);
            }
        }
    }
}

/// One axis of [`FiniteDiff::adjoint_contiguous`], combining each value into `x` with `put`.
#[inline(always)]
fn adjoint_axis<T: Scalar>(
    y: &[T],
    x: &mut [T],
    n: usize,
    inner: usize,
    put: impl Fn(&mut T, T) + Sync,
) {
    let (b, m) = (n * inner, (n - 1) * inner);
    par::for_each_chunk(x, |r, out| {
        let r0 = r.start;
        if n == 1 {
            out.iter_mut().for_each(|d| put(d, T::zero()));
            return;
        }
        par::block_segments(r, b, &[inner, m], |s, region| {
            let o = &mut out[s.start - r0..s.end - r0];
            match region {
                0 => o
                    .iter_mut()
                    .zip(&y[s])
                    .for_each(|(d, &c)| put(d, T::zero() - c)),
                1 => o
                    .iter_mut()
                    .zip(&y[s.start - inner..s.end - inner])
                    .zip(&y[s])
                    .for_each(|((d, &p), &c)| put(d, p - c)),
                _ => o
                    .iter_mut()
                    .zip(&y[s.start - inner..s.end - inner])
                    .for_each(|(d, &p)| put(d, p)),
            }
        });
    });
}

impl<T: Scalar> LinearOperator<T> for FiniteDiff {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        if let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice_mut()) {
            self.apply_contiguous(xs, ys);
            return;
        }
        for (j, &a) in self.axes.iter().enumerate() {
            let mut yj = y.index_axis_mut(Axis(0), j);
            let n = self.shape[a];
            let ax = Axis(a);
            Zip::from(yj.slice_axis_mut(ax, Slice::from(..n - 1)))
                .and(x.slice_axis(ax, Slice::from(1..)))
                .and(x.slice_axis(ax, Slice::from(..n - 1)))
                .for_each(|y, &hi, &lo| *y = hi - lo);
            yj.slice_axis_mut(ax, Slice::from(n - 1..)).fill(T::zero());
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        if let (Some(ys), Some(xs)) = (y.as_slice(), x.as_slice_mut()) {
            self.adjoint_contiguous(ys, xs);
            return;
        }
        x.fill(T::zero());
        for (j, &a) in self.axes.iter().enumerate() {
            let yj = y.index_axis(Axis(0), j);
            let n = self.shape[a];
            if n == 1 {
                continue;
            }
            let ax = Axis(a);
            let p = yj.slice_axis(ax, Slice::from(..n - 1));
            Zip::from(x.slice_axis_mut(ax, Slice::from(..n - 1)))
                .and(&p)
                .for_each(|x, &p| *x -= p);
            Zip::from(x.slice_axis_mut(ax, Slice::from(1..)))
                .and(&p)
                .for_each(|x, &p| *x += p);
        }
    }
}
