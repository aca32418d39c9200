//! Weighted sum over the band axis: the wide band of joint multiband deconvolution as a
//! mixture of the narrow bands.

use super::LinearOperator;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};

/// `y = Σ_b α_b x_b` over axis 0 of `x` (`[K, …]` → `[…]`): the high-resolution wide band as
/// the weighted sum of the `K` band images on its grid, `α_b` the share of band `b` in it.
/// The adjoint replicates with the (conjugated) weights, `(Aᴴ y)_b = conj(α_b) y`, so
/// `A Aᴴ = (Σ_b |α_b|²) I` and `‖A‖₂ = ‖α‖₂`.
///
/// ```
/// use sparseinv_solvers::op::{BandSum, LinearOperator};
/// use ndarray::array;
/// let a = BandSum::new(vec![0.5, 2.0], &[1, 2]).unwrap();
/// let x = array![[[1.0, 2.0]], [[3.0, 4.0]]].into_dyn(); // two 1×2 bands
/// assert_eq!(a.apply(x.view()).unwrap(), array![[6.5, 9.0]].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct BandSum<T: Scalar> {
    alphas: Vec<T>,
    domain: Vec<usize>,
    range: Vec<usize>,
}

impl<T: Scalar> BandSum<T> {
    /// Weights `alphas` (one per band, finite, at least one) for band images of `shape`.
    pub fn new(alphas: Vec<T>, shape: &[usize]) -> Result<Self> {
        if alphas.is_empty() {
            return Err(Error::Empty {
                what: "BandSum weights".into(),
            });
        }
        if let Some(i) = alphas.iter().position(|a| !a.is_finite_scalar()) {
            return Err(Error::NonFinite {
                what: "BandSum weights".into(),
                index: i,
            });
        }
        let mut domain = vec![alphas.len()];
        domain.extend_from_slice(shape);
        Ok(BandSum {
            alphas,
            domain,
            range: shape.to_vec(),
        })
    }

    /// The weights `α_b`.
    pub fn alphas(&self) -> &[T] {
        &self.alphas
    }
}

impl<T: Scalar> LinearOperator<T> for BandSum<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        y.fill(T::zero());
        for (xb, &a) in x.axis_iter(Axis(0)).zip(&self.alphas) {
            Zip::from(&mut y).and(&xb).for_each(|y, &v| *y += a * v);
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        for (mut xb, &a) in x.axis_iter_mut(Axis(0)).zip(&self.alphas) {
            let c = a.conj();
            Zip::from(&mut xb).and(&y).for_each(|x, &v| *x = c * v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::C64;
    use crate::testing::assert_adjoint;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn sum_equals_the_weighted_loop_and_adjoint_holds() {
        let a = BandSum::new(vec![2.3, 2.3, 1.9], &[4, 5]).unwrap();
        let x = ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |ix| {
            (ix[0] * 20 + ix[1] * 5 + ix[2]) as f64 * 0.1 - 1.0
        });
        let y = a.apply(x.view()).unwrap();
        for i in 0..4 {
            for j in 0..5 {
                let want = 2.3 * x[[0, i, j]] + 2.3 * x[[1, i, j]] + 1.9 * x[[2, i, j]];
                assert!((y[[i, j]] - want).abs() < 1e-12);
            }
        }
        assert_adjoint(&a, 1e-13);
        assert_adjoint(&BandSum::new(vec![0.5f32, -1.0], &[3, 3]).unwrap(), 1e-6);
        let c = BandSum::new(vec![C64::new(0.5, 1.0), C64::new(-2.0, 0.3)], &[6]).unwrap();
        assert_adjoint(&c, 1e-13);
    }

    #[test]
    fn bad_weights_are_errors() {
        assert!(BandSum::<f64>::new(vec![], &[2, 2]).is_err());
        assert!(BandSum::new(vec![1.0, f64::NAN], &[2, 2]).is_err());
    }
}
