//! What each `sparseinv` command does, as library functions on in-memory images: an options
//! struct (implements `Default`, validated) in, the result and a report (serde `Serialize`,
//! the data of the command's `--json` report) out. The command-line tool is a thin layer over
//! these; so is the FITS convenience [`deconvolve_fits`].
//!
//! | function | command | what it does |
//! |---|---|---|
//! | [`deconvolve()`] / [`deconvolve_fits`] | `sparseinv deconvolve` | Wiener, Tikhonov, Richardson–Lucy or starlet-sparse deconvolution by a known PSF, with the sky as a known background, masks and tiling |
//! | [`multiband::multiband()`] / `multiband::multiband_fits` | `sparseinv multiband` | joint deconvolution of low-resolution bands with a high-resolution wide band |
//! | [`estimate_psf()`] | `sparseinv psf` | empirical PSF from the isolated, unsaturated stars of an image |
//! | [`denoise()`] | `sparseinv denoise` | starlet thresholding or a learned (ONNX) denoiser, in tiles |
//! | `deblur` (feature `onnx`) | `sparseinv deblur` | plug-and-play / RED with a denoiser, or the learned Wiener-feature model |
//! | `restore` (feature `onnx`) | `sparseinv restore` | deblurring, super-resolution or inpainting with a learned latent prior (VBLE-xz): posterior mean, per-pixel standard deviation, samples |
//!
//! Long runs report progress through an optional callback (`*_with_progress`), which sees
//! [`Progress`] events.

#[cfg(feature = "onnx")]
pub mod deblur;
pub mod deconvolve;
pub mod denoise;
pub mod multiband;
pub mod psf;
#[cfg(feature = "onnx")]
pub mod restore;

#[cfg(feature = "onnx")]
pub use deblur::{
    deblur, deblur_with_progress, DeblurMethod, DeblurOptions, DeblurReport, Deblurred,
    PNP_DEFAULT_ITERS, PNP_DEFAULT_STRENGTH,
};
pub use deconvolve::{
    deconvolve, deconvolve_globals, deconvolve_window, deconvolve_with_progress, half_max_fwhm,
    BoundaryMode, DeconvolveGlobals, DeconvolveOptions, DeconvolveReport, Deconvolved,
    FourierPrior, LearnedModel, Method, NoiseModelReport, PhaseSeconds, Precision, SkyMapReport,
    TilingReport, DISCREPANCY_TAU, GCV_WINDOW, RL_AUTO_MAX_ITERS, RL_AUTO_MAX_ITERS_PLAIN,
    STARLET_AUTO_MAX_ITERS, STARLET_DEFAULT_K_SIGMA, STARLET_K_CANDIDATES, STARLET_RISK_EPS_REL,
    STARLET_RISK_PATIENCE,
};
#[cfg(feature = "fits")]
pub use deconvolve::{deconvolve_fits, deconvolve_fits_with_psf};
pub use denoise::{
    denoise, denoise_with_progress, DenoiseModel, DenoiseOptions, DenoiseReport, Denoised,
};
pub use psf::{estimate_psf, EstimatedPsf, PsfOptions};
#[cfg(feature = "onnx")]
pub use restore::{
    noise_sigma_observed, restore, restore_with_progress, Degradation, RestoreOptions,
    RestoreReport, Restored,
};

/// What a progress event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressUnit {
    /// Iterations of an iterative solver.
    Iterations,
    /// Tiles of a tiled run.
    Tiles,
    /// Network runs or stages of a model.
    Steps,
}

/// A progress event: `done` of `total` units finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is counted.
    pub unit: ProgressUnit,
    /// Units finished so far.
    pub done: usize,
    /// Units in all (may grow when it is only known on the way).
    pub total: usize,
}
