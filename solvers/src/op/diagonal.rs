//! Element-wise multiplication by a fixed array.

use super::column_norms::check_weights;
use super::LinearOperator;
use crate::error::Result;
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};

/// `y = d ⊙ x` (element-wise), adjoint `x = conj(d) ⊙ y`. Domain and range have the shape of `d`.
#[derive(Debug, Clone)]
pub struct Diagonal<T: Scalar> {
    d: ArrayD<T>,
    shape: Vec<usize>,
}

impl<T: Scalar> Diagonal<T> {
    /// Diagonal operator with the entries (and shape) of `d`.
    pub fn new(d: ArrayD<T>) -> Self {
        let shape = d.shape().to_vec();
        Diagonal { d, shape }
    }
    /// The diagonal.
    pub fn diag(&self) -> &ArrayD<T> {
        &self.d
    }
}

impl<T: Scalar> LinearOperator<T> for Diagonal<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.shape
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        Zip::from(y)
            .and(&x)
            .and(&self.d)
            .for_each(|y, &x, &d| *y = d * x);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        Zip::from(x)
            .and(&y)
            .and(&self.d)
            .for_each(|x, &y, &d| *x = d.conj() * y);
    }
    /// `w_j |d_j|²`.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(&self.shape, &w)?;
        Ok(self.weights(w))
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        Some(self.weights(w))
    }
}

impl<T: Scalar> Diagonal<T> {
    fn weights(&self, w: ArrayViewD<T::Real>) -> ArrayD<T::Real> {
        let mut out = w.to_owned();
        Zip::from(&mut out)
            .and(&self.d)
            .for_each(|o, &d| *o *= d.abs2());
        out
    }
}
