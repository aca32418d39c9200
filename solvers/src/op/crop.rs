//! Cropping: the window of a larger grid that the data see.

use super::column_norms::check_weights;
use super::LinearOperator;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Slice};

/// The window `y = x[o₀ .. o₀ + m₀, o₁ .. o₁ + m₁, …]` of an array `x` of shape
/// `[n₀, n₁, …]` (offset `o`, window shape `m`, `oₐ + mₐ ≤ nₐ`).
///
/// The adjoint embeds `y` in a zero array of the domain's shape at offset `o`, so `C Cᴴ = I`
/// and `Cᴴ C` is the diagonal projection onto the window. Used to restore an image on a grid
/// larger than the data (a margin the prior fills in, e.g. for a periodic model of a
/// non-periodic image, or a network that needs sizes divisible by 16): `A = C ∘ H` with `H`
/// defined on the larger grid.
///
/// ```
/// use sparseinv_solvers::op::{Crop, LinearOperator};
/// use ndarray::array;
/// let c = Crop::new(&[3, 4], &[1, 1], &[2, 2]).unwrap();
/// let x = array![[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]];
/// let y = c.apply(x.into_dyn().view()).unwrap();
/// assert_eq!(y, array![[5.0, 6.0], [9.0, 10.0]].into_dyn());
/// let back = c.adjoint(y.view()).unwrap();
/// assert_eq!(back[[0, 0]], 0.0);
/// assert_eq!(back[[2, 2]], 10.0);
/// ```
#[derive(Debug, Clone)]
pub struct Crop {
    domain: Vec<usize>,
    offset: Vec<usize>,
    range: Vec<usize>,
}

impl Crop {
    /// The window of shape `shape` at `offset` of arrays of shape `domain`.
    /// [`Error::ShapeMismatch`] when the three do not have the same number of axes,
    /// [`Error::InvalidParameter`] for an empty window or one that leaves the domain.
    pub fn new(domain: &[usize], offset: &[usize], shape: &[usize]) -> Result<Self> {
        if offset.len() != domain.len() || shape.len() != domain.len() {
            return Err(Error::shape(
                "Crop: offset and window axes vs the domain's",
                domain,
                if offset.len() != domain.len() {
                    offset
                } else {
                    shape
                },
            ));
        }
        if shape.contains(&0) {
            return Err(Error::param("shape", format!("empty window {shape:?}")));
        }
        for a in 0..domain.len() {
            if offset[a] + shape[a] > domain[a] {
                return Err(Error::param(
                    "offset",
                    format!(
                        "window {shape:?} at {offset:?} leaves the domain {domain:?} along axis {a}"
                    ),
                ));
            }
        }
        Ok(Crop {
            domain: domain.to_vec(),
            offset: offset.to_vec(),
            range: shape.to_vec(),
        })
    }

    /// The window's offset in the domain.
    pub fn offset(&self) -> &[usize] {
        &self.offset
    }

    fn slice(&self, axis: usize) -> Slice {
        let o = self.offset[axis] as isize;
        Slice::from(o..o + self.range[axis] as isize)
    }
}

impl<T: Scalar> LinearOperator<T> for Crop {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        y.assign(&x.slice_each_axis(|ax| self.slice(ax.axis.index())));
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        x.fill(T::zero());
        x.slice_each_axis_mut(|ax| self.slice(ax.axis.index()))
            .assign(&y);
    }
    /// `c = Cᴴ w`: the weights of the window, zero outside it.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(&self.range, &w)?;
        Ok(self.embed(w))
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        Some(self.embed(w))
    }
}

impl Crop {
    fn embed<R: crate::scalar::Real>(&self, w: ArrayViewD<R>) -> ArrayD<R> {
        let mut out = ArrayD::<R>::zeros(ndarray::IxDyn(&self.domain));
        out.slice_each_axis_mut(|ax| self.slice(ax.axis.index()))
            .assign(&w);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::randn;
    use crate::testing::assert_adjoint;
    use num_complex::Complex64;

    #[test]
    fn crop_adjoint_dot_test() {
        let c = Crop::new(&[9, 12], &[2, 5], &[4, 6]).unwrap();
        assert_adjoint::<f64, _>(&c, 1e-13);
        assert_adjoint::<Complex64, _>(&c, 1e-13);
        let c3 = Crop::new(&[4, 5, 6], &[1, 0, 3], &[2, 5, 3]).unwrap();
        assert_adjoint::<f32, _>(&c3, 1e-5);
    }

    #[test]
    fn crop_is_the_window_and_adjoint_the_zero_embedding() {
        let x = randn::<f64>(&[7, 8], 3);
        let c = Crop::new(&[7, 8], &[3, 1], &[4, 5]).unwrap();
        let y = c.apply(x.view()).unwrap();
        for i in 0..4 {
            for j in 0..5 {
                assert_eq!(y[[i, j]], x[[i + 3, j + 1]]);
            }
        }
        let back = c.adjoint(y.view()).unwrap();
        for i in 0..7 {
            for j in 0..8 {
                let inside = (3..7).contains(&i) && (1..6).contains(&j);
                assert_eq!(back[[i, j]], if inside { x[[i, j]] } else { 0.0 });
            }
        }
        // C Cᴴ = I
        assert_eq!(c.apply(back.view()).unwrap(), y);
        // weights pulled back = the embedding
        let w = ArrayD::from_elem(vec![4, 5], 2.0);
        let p = LinearOperator::<f64>::pullback_row_weights(&c, w.view()).unwrap();
        assert_eq!(p.sum(), 40.0);
        assert_eq!(p[[0, 0]], 0.0);
        assert_eq!(p[[3, 1]], 2.0);
    }

    #[test]
    fn crop_rejects_bad_windows() {
        assert!(Crop::new(&[4, 4], &[1, 1], &[4, 2]).is_err());
        assert!(Crop::new(&[4, 4], &[0, 0], &[0, 2]).is_err());
        assert!(Crop::new(&[4, 4], &[0], &[2, 2]).is_err());
        assert!(Crop::new(&[4, 4], &[0, 0], &[2, 2, 1]).is_err());
    }
}
