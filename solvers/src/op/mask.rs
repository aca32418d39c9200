//! Masking and subsampling: the measurement operators of inpainting and compressed sensing.

use super::column_norms::check_weights;
use super::LinearOperator;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};

/// Element-wise mask `y = m ⊙ x`: entries where the boolean mask `m` is `true` are kept,
/// the others set to zero. Domain and range both have the mask's shape.
///
/// The operator is a real diagonal projection, hence self-adjoint (`Mᴴ = M`) and idempotent.
/// Works for every scalar type.
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Mask};
/// use ndarray::array;
/// let m = Mask::new(array![true, false, true].into_dyn());
/// let y = m.apply(array![1.0, 2.0, 3.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![1.0, 0.0, 3.0].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct Mask {
    mask: ArrayD<bool>,
    shape: Vec<usize>,
}

impl Mask {
    /// The mask operator of `mask` (its shape is the operator's domain and range).
    pub fn new(mask: ArrayD<bool>) -> Self {
        let shape = mask.shape().to_vec();
        Mask { mask, shape }
    }
    /// The boolean mask.
    pub fn mask(&self) -> &ArrayD<bool> {
        &self.mask
    }
    /// Number of kept (`true`) entries.
    pub fn count(&self) -> usize {
        self.mask.iter().filter(|&&b| b).count()
    }
}

impl<T: Scalar> LinearOperator<T> for Mask {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.shape
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        Zip::from(y)
            .and(&x)
            .and(&self.mask)
            .for_each(|y, &x, &m| *y = if m { x } else { T::zero() });
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        self.apply_into(y, x)
    }
    /// `w_j` where the mask is `true`, 0 elsewhere (column `j` is `e_j` or 0).
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(&self.shape, &w)?;
        Ok(self.mask_weights(w))
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        Some(self.mask_weights(w))
    }
}

impl Mask {
    fn mask_weights<R: crate::scalar::Real>(&self, w: ArrayViewD<R>) -> ArrayD<R> {
        let mut out = w.to_owned();
        Zip::from(&mut out).and(&self.mask).for_each(|o, &m| {
            if !m {
                *o = R::zero()
            }
        });
        out
    }
}

/// Subsampling: `y = (x[i₁], x[i₂], …, x[iₖ])`, the entries of `x` at chosen flat
/// (row-major) positions, as a 1-D vector of length `k`.
///
/// Built from a boolean mask ([`Subsample::new`]; the kept entries are those where the mask
/// is `true`, in row-major order) or from a list of flat indices
/// ([`Subsample::from_indices`], any order). The adjoint scatters back: `x = Sᴴ y` has
/// `x[iⱼ] = yⱼ` and zeros elsewhere (repeated indices accumulate, so the adjoint stays exact).
/// `S Sᴴ = I` when the indices are distinct.
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Subsample};
/// use ndarray::array;
/// let s = Subsample::new(array![[true, false], [false, true]].into_dyn());
/// let y = s.apply(array![[1.0, 2.0], [3.0, 4.0]].into_dyn().view()).unwrap();
/// assert_eq!(y, array![1.0, 4.0].into_dyn());
/// let x = s.adjoint(y.view()).unwrap();
/// assert_eq!(x, array![[1.0, 0.0], [0.0, 4.0]].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct Subsample {
    shape: Vec<usize>,
    range: Vec<usize>,
    indices: Vec<usize>,
}

impl Subsample {
    /// Keep the entries where `mask` is `true` (row-major order); domain = the mask's shape,
    /// range = `[number of true entries]`.
    pub fn new(mask: ArrayD<bool>) -> Self {
        let indices: Vec<usize> = mask
            .iter()
            .enumerate()
            .filter_map(|(i, &b)| b.then_some(i))
            .collect();
        Subsample {
            shape: mask.shape().to_vec(),
            range: vec![indices.len()],
            indices,
        }
    }

    /// Keep the entries at the given flat row-major `indices` of an array of `shape`, in the
    /// given order. [`Error::InvalidParameter`] when an index is out of bounds.
    pub fn from_indices(shape: &[usize], indices: Vec<usize>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::param(
                "indices",
                format!("flat index {bad} out of bounds for shape {shape:?} ({n} elements)"),
            ));
        }
        Ok(Subsample {
            shape: shape.to_vec(),
            range: vec![indices.len()],
            indices,
        })
    }

    /// The kept flat (row-major) indices, in output order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<T: Scalar> LinearOperator<T> for Subsample {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        match x.as_slice() {
            Some(xs) => y
                .iter_mut()
                .zip(&self.indices)
                .for_each(|(y, &i)| *y = xs[i]),
            None => {
                let xs = x.as_standard_layout();
                let xs = xs.as_slice().expect("standard layout");
                y.iter_mut()
                    .zip(&self.indices)
                    .for_each(|(y, &i)| *y = xs[i]);
            }
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        x.fill(T::zero());
        match x.as_slice_mut() {
            Some(xs) => y.iter().zip(&self.indices).for_each(|(&y, &i)| xs[i] += y),
            None => {
                let mut tmp = ArrayD::<T>::zeros(x.raw_dim());
                let ts = tmp.as_slice_mut().expect("fresh array is contiguous");
                y.iter().zip(&self.indices).for_each(|(&y, &i)| ts[i] += y);
                x.assign(&tmp);
            }
        }
    }
    /// `c_j = Σ_{k : i_k = j} w_k`: the total weight of the outputs that copy input `j`
    /// (its multiplicity when `w = 1`).
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(&self.range, &w)?;
        Ok(self.scatter_weights(w))
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        Some(self.scatter_weights(w))
    }
}

impl Subsample {
    fn scatter_weights<R: crate::scalar::Real>(&self, w: ArrayViewD<R>) -> ArrayD<R> {
        let mut out = ArrayD::<R>::zeros(ndarray::IxDyn(&self.shape));
        let os = out.as_slice_mut().expect("fresh array is contiguous");
        for (&wk, &i) in w.iter().zip(&self.indices) {
            os[i] += wk;
        }
        out
    }
}
