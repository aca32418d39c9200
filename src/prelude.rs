//! The names a user of the three main stories needs, in one import:
//! `use sparseinv::prelude::*;`
//!
//! - deconvolving an image or a FITS file with its PSF: [`deconvolve()`], [`deconvolve_fits`],
//!   [`DeconvolveOptions`], [`Method`], and the other pipelines ([`estimate_psf`],
//!   [`denoise()`], `deblur` with the `onnx` feature);
//! - sparse recovery with an operator and a penalty: the [`LinearOperator`] trait and the
//!   built-in operators ([`Conv2d`], [`Mask`], [`Compose`], [`Matrix`], [`Kronecker`], ...),
//!   the [`Prox`] trait and penalties ([`Cel0`], [`L1`], [`NonNegative`], ...), the proximal
//!   gradient solver ([`proximal::solve`] and its
//!   [`ProximalParams`]);
//! - sparse Bayesian learning: [`ksbl`] / [`KsblParams`] (Kronecker), [`sbl`];
//! - iteration control and errors: [`StopCriteria`], [`Report`], [`Observer`], [`Control`],
//!   [`Error`], [`Result`].
//!
//! ```
//! use sparseinv::prelude::*;
//! let opts = DeconvolveOptions { method: Method::Wiener, ..Default::default() };
//! assert!(opts.validate().is_ok());
//! ```

#[cfg(feature = "fits")]
pub use crate::pipeline::deconvolve_fits;
#[cfg(feature = "onnx")]
pub use crate::pipeline::{deblur, DeblurMethod, DeblurOptions};
pub use crate::pipeline::{
    deconvolve, denoise, estimate_psf, BoundaryMode, DeconvolveOptions, Deconvolved, DenoiseModel,
    DenoiseOptions, Method, Precision, PsfOptions,
};
pub use crate::{Error, Result};
pub use sparseinv_solvers::iter::{
    Control, IterInfo, NoObserver, Observer, Report, StopCriteria, StopReason,
};
pub use sparseinv_solvers::op::{
    Boundary, Compose, Conv2d, Diagonal, FiniteDiff, Kronecker, LinearOperator, Mask, Matrix,
    Starlet,
};
pub use sparseinv_solvers::prox::{Cel0, NonNegative, Prox, L1};
pub use sparseinv_solvers::proximal::{self, Params as ProximalParams};
pub use sparseinv_solvers::sbl::{ksbl, sbl, KsblParams, NoiseModel};
pub use sparseinv_solvers::{Real, Scalar};
