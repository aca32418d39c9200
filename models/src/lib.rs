//! # sparseinv-models
//!
//! Deep priors for sparseinv's solvers, loaded from ONNX graphs and run by ONNX Runtime
//! (through the `ort` crate, loading the runtime library at run time). A learned denoiser
//! becomes a [`sparseinv_solvers::denoise::Denoiser`] ([`OnnxDenoiser`]) and so plugs into
//! the plug-and-play and RED solvers.
//!
//! - [`runtime`](mod@runtime): finding ONNX Runtime with no manual step (environment variable, the copy
//!   fetched from PyPI at build time, an installed Python package, the system library path);
//! - [`model`]: one session per loaded graph, reused, with input validation;
//! - [`denoiser`]: the N,C,H,W float32 denoiser contract with an optional noise-level map,
//!   explicit invertible normalisation and overlapping tiled inference;
//! - [`deblur`]: learned non-blind deblurring ([`LearnedDeblur`], "INFWIDE-lite"): Wiener
//!   deconvolution in image and learned feature space (FFTs in Rust) fused by ONNX graphs;
//! - [`galaxy`](mod@galaxy): learned galaxy deconvolution (Tikhonov, then a U-Net, in noise units);
//! - [`vble`]: the VBLE-xz latent prior (hyperprior autoencoder with a decoder standard
//!   deviation) and its variational restoration with per-pixel uncertainty;
//! - [`builtin`]: the shipped models, embedded in the crate.

#![warn(missing_docs)]

pub mod builtin;
pub mod deblur;
pub mod denoiser;
pub mod error;
pub mod galaxy;
pub mod model;
pub mod runtime;
pub mod vble;

pub use deblur::{wiener_reflect, DeblurParams, LearnedDeblur};
pub use denoiser::{DenoiserConfig, Normalization, OnnxDenoiser, Tiling};
pub use error::{Error, Result};
pub use galaxy::{GalaxyModelInfo, GalaxyNet};
pub use model::{Device, OnnxModel, SessionOptions, TensorSpec};
pub use runtime::{runtime, runtime_or_skip, Runtime};
pub use vble::{
    restore as vble_restore, Variant as VbleVariant, VbleOutput, VbleParams, VblePrior,
};
