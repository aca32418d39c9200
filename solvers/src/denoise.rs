//! Denoisers: maps `(x, σ) ↦ x̂` that estimate a clean image from one corrupted by additive
//! noise of standard deviation `σ`. This is how learned models (ONNX, in `sparseinv-models`)
//! and classical ones (starlet thresholding) enter plug-and-play and RED solvers.

use crate::error::Result;
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

/// A denoiser for additive noise of known standard deviation `sigma` (in the units of `x`).
pub trait Denoiser<T: Scalar>: Send + Sync {
    /// `out ← D(x, σ)`. `out` has the shape of `x`. Errors for unsupported shapes or a
    /// failed backend (e.g. an ONNX session).
    fn denoise_into(&self, x: ArrayViewD<T>, sigma: T::Real, out: ArrayViewMutD<T>) -> Result<()>;
    /// `D(x, σ)` in a new array.
    fn denoise(&self, x: ArrayViewD<T>, sigma: T::Real) -> Result<ArrayD<T>> {
        let mut out = ArrayD::zeros(IxDyn(x.shape()));
        self.denoise_into(x, sigma, out.view_mut())?;
        Ok(out)
    }
}
