//! Deconvolution of an image by a known PSF: what `sparseinv deconvolve` does, on an
//! in-memory image ([`deconvolve()`]) or from FITS file to FITS file ([`deconvolve_fits`]).
//!
//! # Methods
//! [`Method::Wiener`] and [`Method::Tikhonov`] (Laplacian regulariser) are closed-form Fourier
//! filters; [`Method::Rl`] is Richardson–Lucy (Biggs–Andrews accelerated by default, in `f64`
//! or `f32`); [`Method::Starlet`] is starlet-sparse analysis ℓ1 with positivity;
//! [`Method::Learned`] (with the `onnx` feature) is a Laplacian Tikhonov deconvolution cleaned
//! by a U-Net trained on simulated galaxies ([`sparseinv_models::galaxy`], after Akhaury et
//! al. 2024), in units of the image's noise level so that the flux scale is kept exactly.
//!
//! # Photometric re-fit
//! [`DeconvolveOptions::refit_active`] re-fits the result `x̂` of any method to the data on
//! its significant starlet coefficients (`|W_j H x̂| > κ σ σ_j`: detected on the estimate's
//! noise-free prediction of the data, which avoids the selection bias of detecting on the
//! noisy image; plus the whole coarse scale), with positivity:
//! [`sparseinv_solvers::deconv::debias_active`]: 30 projected-gradient steps
//! (stopped early on purpose: they fix the well-measured low frequencies, where the bias
//! lives, without deconvolving the noise inside the active coefficients), threshold `κ + 1`
//! on the finest scale. Masked pixels are left out of its data term. This removes the
//! photometric bias of regularised and learned estimates while keeping their look where the
//! data hold no significant structure.
//!
//! # Parameters from the data
//! Explicit values always win; without them every method sets its own from the image:
//! - `wiener` and `tikhonov`: the weight — and for `wiener` the signal spectrum (white,
//!   `‖∇x‖²` or Laplacian regulariser) — minimise the generalised cross-validation score of
//!   the filter ([`gcv_select`]; Golub, Heath & Wahba 1979), computed once on the central
//!   window of at most [`GCV_WINDOW`]² pixels with the method's boundary. GCV needs no noise
//!   level and holds for signal-dependent noise. On held-out photographs with
//!   Poisson–Gaussian noise it was within 0.1 dB of the best weight of a grid chosen with the
//!   truth and 0.6–2.5 dB above scikit-image's `unsupervised_wiener`; the old white-signal
//!   balance was 2–12 dB lower.
//! - `rl` (plain, the default): returns the iterate of least estimated prediction risk
//!   ([`RiskStop`]: Stein's unbiased risk estimate, its divergence by Monte Carlo from a
//!   second chain run on the data plus a small fixed perturbation, so each iteration costs
//!   twice the work), under the Poisson–Gaussian variance `σ²(m) = a + b·m` estimated from
//!   the image's two finest starlet scales ([`estimate_noise_model`]); a band of the PSF's
//!   half-extent along the edges is left out of the estimate; at most
//!   [`RL_AUTO_MAX_ITERS_PLAIN`] iterations ([`DeconvolveOptions::max_iters`]).
//!   Accelerated `rl` stops by the discrepancy principle ([`Discrepancy`]): after the first
//!   iteration whose model `m` fits the data as well as the noise allows,
//!   `(1/N) Σ (y − m)² / σ²(m) ≤ 1`, at most [`RL_AUTO_MAX_ITERS`] iterations. For a tiled
//!   image, or one larger than [`RISK_WINDOW`] on a side, plain RL's count is chosen once on
//!   the central [`RISK_WINDOW`]² window (with its part of the sky map) and the whole image —
//!   every tile, every chunk of [`deconvolve_window`] — runs that many iterations (the report
//!   says `risk_window`); accelerated tiles stop each on their own statistic.
//! - `starlet`: thresholds of `k_sigma` times the noise level of each scale (MAD of the
//!   finest scale, propagated through the starlet's per-scale gains). Without `iters`, FISTA
//!   stops at the iterate of least estimated prediction risk as `rl` does, with a probe step
//!   of [`STARLET_RISK_EPS_REL`] times the noise and a longer wait past the best count
//!   ([`STARLET_RISK_PATIENCE`]), and without `k_sigma` the threshold is chosen with the
//!   count among [`STARLET_K_CANDIDATES`] on the central window.
//!
//! # Boundaries
//! Default: [`BoundaryMode::Zero`] for `rl` and `starlet` (the unknown image is zero beyond
//! the edges and the data term only covers the image, `A` = `Same` convolution;
//! Richardson–Lucy divides by `Aᵀ1`, so edge pixels are not darkened) and
//! [`BoundaryMode::Smooth`] for `wiener` and `tikhonov` (the periodic-plus-smooth split: the
//! periodic part is filtered on the image's own grid, the smooth part added back, so a sky
//! background makes no edge step that rings, at 1.3× the periodic filter's time).
//! [`BoundaryMode::Reflect`] (the default of `learned`) continues the image by its mirror
//! images over three PSF extents on each side, cross-faded across the FFT's wrap
//! ([`Extension::Tapered`](sparseinv_solvers::deconv::Extension::Tapered)).
//! [`BoundaryMode::Periodic`] is the circular model of the Fourier filters.
//!
//! # Sky
//! The sky level ([`DeconvolveOptions::sky`]; default: the 3σ-clipped median of the valid
//! pixels, from a regular subsample of at most about 10⁶ of them) is a known background:
//! subtracted before and added back after the deconvolution (for Richardson–Lucy it is the
//! constant term of the Poisson model, `y ~ P(A x + sky)`). Positivity then applies to the
//! light above the sky, so a bright star cannot dig a dark "moat" below the sky level around
//! itself, which the model `y ~ P(A x)` does as soon as the PSF's wings do not match the
//! star's exactly; and the zero boundary means "sky beyond the edges".
//!
//! # Masked pixels
//! Non-finite pixels (NaN, e.g. FITS `BLANK`) are masked. They are left out of the data term
//! of `rl` and `starlet`; for the Fourier methods (which have no data weights) they are first
//! filled with the local median of the valid pixels around them (5×5 window, growing into
//! large holes). In the output they stay NaN, whatever the method: a model value there would
//! not be a measurement.
//!
//! # Tiling
//! Images with a side above [`Method::auto_tile_above`] (2048 px; 8192 px for `wiener` and
//! `tikhonov`) are processed in 1024 px tiles by default
//! ([`DeconvolveOptions::tile`]: `Some(n)` to choose, `Some(0)` never to tile), each with a
//! halo of context (default twice the PSF size) and raised-cosine blending (see
//! [`crate::tiling`]). Quantities that must be the same in every tile are computed once on the
//! whole image: the data offset and starting value of Richardson–Lucy, the Wiener balance and
//! the noise level of the starlet thresholds. Tiled Wiener and Tikhonov equal their untiled
//! results to ~1e-6 of the peak at moderate weights (10⁻²), unaccelerated Richardson–Lucy with
//! a fixed count to better than 1e-4 (tests/cli_deconvolve.rs); the small weights GCV picks
//! for nearly noise-free images reach further than the default halo (2.7e-4 of the peak on the
//! test field): raise `halo` there. The Biggs–Andrews step of accelerated Richardson–Lucy and the
//! per-scale thresholds and step sizes of `starlet` are computed per tile, so those differ
//! more at a few pixels near the seams (on a 96×72 test field with 32 px tiles: up to 0.7 %
//! of the peak for accelerated Richardson–Lucy and 0.3 % for `starlet`; the median
//! difference is 0).

use super::{Progress, ProgressUnit};
use crate::tiling::{plan_tiles, process_tiled_with_progress, TileParams};
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2, CowArray, Ix2, Zip};
use sparseinv_solvers::deconv::{
    debias_active, estimate_noise_model, estimate_noise_sigma, fill_masked_median, gcv_select,
    richardson_lucy, starlet_sparse_with, tikhonov_padded, DebiasParams, Discrepancy, NoiseModel,
    Padding, Regulariser, RiskStop, RlParams, StarletSolver, StarletSparseParams,
};
use sparseinv_solvers::iter::{Control, IterInfo};
use sparseinv_solvers::op::Boundary;
use sparseinv_solvers::scalar::real;
use sparseinv_solvers::Real;
use std::cell::RefCell;
use std::time::Instant;

/// Deconvolution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Wiener filter (Fourier; masked pixels filled with a local median first).
    Wiener,
    /// Tikhonov with a Laplacian regulariser (Fourier; masked pixels filled likewise).
    Tikhonov,
    /// Richardson–Lucy (masked pixels excluded, Biggs–Andrews acceleration by default).
    #[default]
    Rl,
    /// Starlet-sparse analysis ℓ1 with positivity (masked pixels excluded).
    Starlet,
    /// Tikhonov (Laplacian, the model's weight), then the learned galaxy network (needs the
    /// `onnx` feature; masked pixels filled like the Fourier methods).
    Learned,
}

impl Method {
    /// The name used on the command line, in reports and in the `DECONV` FITS card.
    pub fn name(self) -> &'static str {
        match self {
            Method::Wiener => "wiener",
            Method::Tikhonov => "tikhonov",
            Method::Rl => "rl",
            Method::Starlet => "starlet",
            Method::Learned => "learned",
        }
    }

    /// The image side above which [`deconvolve()`] tiles by default (1024 px tiles, see
    /// [`DeconvolveOptions::tile`]): 2048 px, and 8192 px for the Fourier filters (`wiener`,
    /// `tikhonov`). Tiles bound the memory of the iterative methods, which keep several
    /// image-sized work arrays (Richardson–Lucy on a 4096² float32 image: 0.94 GB peak tiled,
    /// 1.20 GB untiled, and no slower tiled); a Fourier filter keeps about one image-sized
    /// spectrum beside the input and output that a tiled run keeps too, so its tiles save
    /// little memory (8192²: 1.84 GB tiled, 2.32 GB untiled; 4096²: 0.56 against 0.59 GB) but
    /// cost time (8192²: 4.9 s tiled, 3.3 s untiled; 4096² Tikhonov 1.30 against 0.61 s: the
    /// windows with their halos and reflect pads hold 1.7× the image's pixels, and the tiled
    /// default boundary is `reflect`, see [`Method::default_boundary_when`]). Measured with
    /// the `sparseinv` command on a 2-core machine, 31² PSF.
    ///
    /// ```
    /// use sparseinv::pipeline::Method;
    /// assert_eq!(Method::Wiener.auto_tile_above(), 8192);
    /// assert_eq!(Method::Rl.auto_tile_above(), 2048);
    /// ```
    pub fn auto_tile_above(self) -> usize {
        match self {
            Method::Wiener | Method::Tikhonov => 8192,
            Method::Rl | Method::Starlet | Method::Learned => 2048,
        }
    }

    /// Whether the method iterates (Richardson–Lucy, starlet) rather than filters once.
    pub fn is_iterative(self) -> bool {
        matches!(self, Method::Rl | Method::Starlet)
    }

    /// The default boundary of an untiled run: [`BoundaryMode::Smooth`] for the Fourier
    /// filters (`wiener`, `tikhonov`; [`BoundaryMode::Reflect`] when tiled, see
    /// [`Method::default_boundary_when`]), [`BoundaryMode::Reflect`] for `learned` (its network was trained on
    /// Tikhonov estimates with that boundary), [`BoundaryMode::Zero`] for the iterative
    /// methods.
    pub fn default_boundary(self) -> BoundaryMode {
        self.default_boundary_when(false)
    }

    /// The default boundary of a tiled (or chunked) run when `tiled`: there the Fourier
    /// filters take [`BoundaryMode::Reflect`], whose continuation at the image's edges is
    /// local, so the tiles along the edges agree with each other and with the untiled
    /// result; the periodic-plus-smooth split depends on the whole window (a tile's split
    /// differs from the image's within about two PSF widths of the image's edges: 9 % of the
    /// peak at the edge pixel, 4e-4 at 12 px, on `tests/cli_deconvolve.rs`'s 7-px PSF).
    pub fn default_boundary_when(self, tiled: bool) -> BoundaryMode {
        match self {
            Method::Wiener | Method::Tikhonov if !tiled => BoundaryMode::Smooth,
            Method::Wiener | Method::Tikhonov | Method::Learned => BoundaryMode::Reflect,
            Method::Rl | Method::Starlet => BoundaryMode::Zero,
        }
    }
}

/// Most iterations of accelerated Richardson–Lucy ([`DeconvolveOptions::accelerate`]) under
/// the discrepancy stop ([`DeconvolveOptions::iters`]` = None`). On star fields the discrepancy statistic does not
/// reach the noise level before the accelerated iterate starts to amplify noise (PSNR peaks
/// after 30–60 iterations with a 3-px PSF at sky 1000, then falls by ~1 dB per 8
/// iterations), so the cap is what stops it there; 50 was chosen on simulated star fields
/// (`scripts/defaults/defaults_vs_oracle.py` cases, seeds 0–2) and checked on seeds 20–22 (see
/// [`DeconvolveOptions::accelerate`]).
pub const RL_AUTO_MAX_ITERS: usize = 50;
/// Most iterations of plain Richardson–Lucy (the default, [`DeconvolveOptions::accelerate`]`
/// = false`) under the minimum-risk stop. Plain RL's best count on point sources with a
/// 6 px PSF lies at or beyond 300 iterations (`scripts/defaults/defaults_vs_oracle.py`).
pub const RL_AUTO_MAX_ITERS_PLAIN: usize = 300;
/// Most iterations of `starlet` under its minimum-risk stop ([`DeconvolveOptions::iters`]
/// `= None`). Its FISTA iterates were best after 7–200 iterations on the cases of
/// `scripts/defaults/defaults_vs_oracle.py`.
pub const STARLET_AUTO_MAX_ITERS: usize = 300;
/// Thresholds (noise units) among which `starlet` chooses by the least estimated risk when
/// neither `k_sigma` nor `iters` is given. On the held-out cases of
/// `scripts/defaults/defaults_vs_oracle.py` the best threshold ran from 1 (point sources
/// under a 6 px PSF) to 5 (a nearly flat photograph); no single value was within 1.5 dB of
/// the best everywhere.
pub const STARLET_K_CANDIDATES: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
/// Probe step of `starlet`'s minimum-risk stop relative to the rms noise
/// ([`RiskStop::eps_rel`]; Richardson–Lucy keeps [`RiskStop::EPS_REL`] = 0.02). The
/// thresholds make FISTA's iterate a piecewise-smooth function of the data: a probe step far
/// below the noise measures the divergence through whichever support changes it happens to
/// cross, and the SURE trace then jitters by 2–4 % from one iteration to the next — more than
/// the prediction risk itself changes after the first ~50 iterations on star fields, so the
/// stop picked noise. A larger step averages over the support changes (a smoothed divergence,
/// biased by O(δ) for a smooth estimator, far less variable). Chosen on the development cases
/// of `scripts/defaults/defaults_vs_oracle.py` (star fields of seeds 0–2, photographs of seed
/// 7; it evaluates on others): against the best of 90 (threshold, count) pairs the star fields
/// went from 1.8 dB below on average (3.7 at worst) with 0.02 to 0.9 (2.0) with 0.2 and 0.7
/// (1.6) with 1.0, while the photographs' mean PSNR moved by −0.01 dB with 0.2 and −1.9 dB with
/// 1.0 (up to 11 dB lost on the low-count photographs).
pub const STARLET_RISK_EPS_REL: f64 = 0.2;

/// How long `starlet`'s minimum-risk stop waits past its best count `k*` before it stops, as
/// a fraction of `k*` ([`RiskStop::patience`]: it stops once `k − k* ≥ max(10, ⌊0.5 k*⌋)`;
/// Richardson–Lucy keeps [`RiskStop::PATIENCE`] = 0.25). On star fields under a wide PSF
/// the prediction error of the thresholded FISTA iterates keeps falling slowly for
/// hundreds of iterations while its estimate wanders by about as much, so a short wait
/// stopped at a local dip (150–180 iterations where 300 were best). Chosen on the
/// development cases of `scripts/defaults/defaults_vs_oracle.py` (star fields of seeds 0–2,
/// photographs of seed 7): against the best of 35 (threshold, count) pairs the star fields
/// went from 0.73 dB below on average (2.10 at worst) with 1/4 to 0.34 (1.68) with 1/2 and
/// 0.27 (1.68) with 1; the photographs' mean PSNR moved by −0.06 and −0.07 dB; the run took
/// 25 % and 44 % longer. Held out (seeds 20–22): 0.44 dB below the oracle on average,
/// 1.22 at worst (was 0.65 / 2.23 with 1/4); photographs unchanged.
pub const STARLET_RISK_PATIENCE: f64 = 0.5;
/// Threshold of `starlet` with a given iteration count and no `k_sigma`.
pub const STARLET_DEFAULT_K_SIGMA: f64 = 3.0;
/// Side of the central window on which the GCV weight of the Fourier methods is chosen
/// (262 144 pixels: a scalar weight needs no more; on the 2048² field of
/// `benches/peers/cli_e2e.py` the 1024² window chose a balance 0.8 % lower, at 4× the cost).
pub const GCV_WINDOW: usize = 512;

/// The signal model of the Fourier methods: the regulariser `L` of
/// `x̂ = F⁻¹[conj(H) Y / (|H|² + λ|L|²)]` ([`Regulariser`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FourierPrior {
    /// `L = I`: a white signal (the classical Wiener balance `μ = σ²/P_s`).
    #[default]
    White,
    /// `‖∇x‖²`: signal spectrum `∝ 1/|k|²`.
    Gradient,
    /// The Laplacian: signal spectrum `∝ 1/|k|⁴`.
    Laplacian,
}

impl FourierPrior {
    /// The solver's regulariser.
    pub fn regulariser(self) -> Regulariser {
        match self {
            FourierPrior::White => Regulariser::Identity,
            FourierPrior::Gradient => Regulariser::Gradient,
            FourierPrior::Laplacian => Regulariser::Laplacian,
        }
    }

    fn from_regulariser(r: Regulariser) -> Self {
        match r {
            Regulariser::Identity => FourierPrior::White,
            Regulariser::Gradient => FourierPrior::Gradient,
            Regulariser::Laplacian => FourierPrior::Laplacian,
        }
    }

    /// `"white"`, `"gradient"` or `"laplacian"`.
    pub fn name(self) -> &'static str {
        match self {
            FourierPrior::White => "white",
            FourierPrior::Gradient => "gradient",
            FourierPrior::Laplacian => "laplacian",
        }
    }
}

/// How the image is extended beyond its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundaryMode {
    /// Zero beyond the edges (the data term covers the image only).
    Zero,
    /// Mirror image beyond the edges (`d c b a | a b c d`).
    Reflect,
    /// Periodic (circular) image.
    Periodic,
    /// The Fourier methods only (`wiener`, `tikhonov`, `learned`; their default for the
    /// first two): the periodic-plus-smooth split of the image (Moisan 2011,
    /// [`Extension::PeriodicSmooth`](sparseinv_solvers::deconv::Extension::PeriodicSmooth)).
    /// The periodic component, which has no jump across the edges, is filtered on the
    /// image's own grid and the smooth component is added back. As accurate at the edges as
    /// the mirror continuation on the tests, at 1.3× the periodic filter's time where
    /// `reflect` pads the image to a larger grid (2.0× on 2048² with a 31² PSF,
    /// `solvers/benches/boundary.rs`).
    Smooth,
}

impl BoundaryMode {
    /// The convolution boundary of the solvers this mode stands for (`Smooth`: the periodic
    /// model its periodic component is filtered under).
    pub fn op(self) -> Boundary {
        match self {
            BoundaryMode::Zero => Boundary::Same,
            BoundaryMode::Reflect => Boundary::Reflect,
            BoundaryMode::Periodic | BoundaryMode::Smooth => Boundary::Circular,
        }
    }

    /// How the Fourier methods extend an image of `dim` pixels for a PSF of `psf` pixels
    /// under this mode ([`Padding::for_boundary`] of [`BoundaryMode::op`], or the
    /// periodic-plus-smooth split).
    pub fn fourier_padding(self, dim: (usize, usize), psf: (usize, usize)) -> Result<Padding> {
        Ok(match self {
            BoundaryMode::Smooth => Padding::periodic_smooth(),
            b => Padding::for_boundary(b.op(), dim, psf)?,
        })
    }

    /// The name used on the command line, in reports and in the `DECBOUND` FITS card.
    pub fn name(self) -> &'static str {
        match self {
            BoundaryMode::Zero => "zero",
            BoundaryMode::Reflect => "reflect",
            BoundaryMode::Periodic => "periodic",
            BoundaryMode::Smooth => "smooth",
        }
    }
}

/// Arithmetic precision of Richardson–Lucy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// By the data (the default): the file entry points ([`deconvolve_fits`], the CLI, the
    /// Python `deconvolve_file`) take [`Precision::F32`] for a single-precision or 8/16-bit
    /// integer FITS image (`BITPIX` −32, 8, 16: values that `f32` holds exactly or to its own
    /// rounding) and [`Precision::F64`] otherwise ([`Precision::for_bitpix`]); in-memory
    /// arrays ([`deconvolve()`]) take `F64`. Reports name the precision used, never `auto`.
    #[default]
    Auto,
    /// Double precision.
    F64,
    /// Single precision: half the memory, iterations about 1.5× faster; iterates differ from
    /// `f64` by ~1e-6 relative (the discrepancy statistics are summed in `f64` either way).
    F32,
}

impl Precision {
    /// The precision for data read from a FITS image of this `BITPIX`: [`Precision::Auto`]
    /// becomes `F32` for −32, 8 and 16 and `F64` otherwise; an explicit precision is kept.
    ///
    /// ```
    /// use sparseinv::pipeline::Precision;
    /// assert_eq!(Precision::Auto.for_bitpix(-32), Precision::F32);
    /// assert_eq!(Precision::Auto.for_bitpix(-64), Precision::F64);
    /// assert_eq!(Precision::F64.for_bitpix(16), Precision::F64);
    /// ```
    pub fn for_bitpix(self, bitpix: i32) -> Precision {
        match self {
            Precision::Auto if matches!(bitpix, -32 | 8 | 16) => Precision::F32,
            Precision::Auto => Precision::F64,
            p => p,
        }
    }

    /// The precision of an in-memory run: [`Precision::Auto`] is `F64`.
    fn resolved(self) -> Precision {
        match self {
            Precision::Auto => Precision::F64,
            p => p,
        }
    }
}

/// Options of [`deconvolve()`]. `Default`: Richardson–Lucy, unaccelerated, stopped at the
/// least estimated risk (at most [`RL_AUTO_MAX_ITERS_PLAIN`] iterations), sky estimated,
/// boundary by method, automatic tiling, PSF normalised to unit sum.
#[derive(Debug, Clone, PartialEq)]
pub struct DeconvolveOptions {
    /// Method.
    pub method: Method,
    /// Iterations of `rl` and `starlet` (≥ 1): exactly this many. `None`: Richardson–Lucy
    /// stops at the least estimated risk, or accelerated by the discrepancy principle
    /// ([module documentation](self), at most [`RL_AUTO_MAX_ITERS_PLAIN`], or
    /// [`RL_AUTO_MAX_ITERS`] accelerated); `starlet` stops at the least estimated risk too
    /// (at most [`STARLET_AUTO_MAX_ITERS`]).
    pub iters: Option<usize>,
    /// Biggs–Andrews acceleration of Richardson–Lucy (default off), stopped by the
    /// discrepancy principle (at most [`RL_AUTO_MAX_ITERS`]). On the held-out simulated star
    /// fields of `scripts/defaults/defaults_vs_oracle.py` (seeds 20–22: Moffat PSFs of 3 and
    /// 6 px FWHM, sky 100 and 1000, Poisson noise; 12 cases) accelerated iterates reach
    /// sharper images than 300 plain ones on the 6 px PSF, but the stop does not find them:
    /// it is as good as the plain default (within ~1 dB) at 20–50 iterations instead of 300
    /// (a quarter of the work, the plain default running a second chain). On faint extended
    /// sources it loses: on the held-out galaxy stamps of `scripts/galaxy/eval.py` at SNR
    /// 5–30 its median NMSE is 1.99 against the plain default's 0.45, and on photographs it
    /// is worse too. So it is an option for large star fields, not the default.
    pub accelerate: bool,
    /// Cap of the automatic stop of `rl` and `starlet` (`iters = None`; ≥ 1). `None`:
    /// [`RL_AUTO_MAX_ITERS_PLAIN`], [`RL_AUTO_MAX_ITERS`] accelerated, or
    /// [`STARLET_AUTO_MAX_ITERS`]. Ignored with `iters`.
    pub max_iters: Option<usize>,
    /// Precision of Richardson–Lucy (the other methods compute in `f64`).
    pub precision: Precision,
    /// Wiener balance / Tikhonov weight (≥ 0); `None`: chosen by generalised
    /// cross-validation (GCV, [`gcv_select`]), for Wiener together with the signal spectrum
    /// (white, gradient or Laplacian regulariser).
    pub balance: Option<f64>,
    /// Threshold of `starlet` in noise units (≥ 0). `None`: without `iters`, chosen together
    /// with the iteration count from [`STARLET_K_CANDIDATES`] by the least estimated risk
    /// (on the central [`RISK_WINDOW`]² window); with `iters`, [`STARLET_DEFAULT_K_SIGMA`].
    pub k_sigma: Option<f64>,
    /// Re-fit the result of any method to the data on the significant starlet coefficients of
    /// the observation ([module documentation](self)).
    pub refit_active: bool,
    /// Significance threshold `κ` of the re-fit, in noise units (≥ 0; default 3).
    pub refit_kappa: f64,
    /// The network of [`Method::Learned`].
    pub model: LearnedModel,
    /// Sky level (data units) treated as a known background; `None`: the 3σ-clipped median
    /// of the valid pixels; `Some(0.0)` deconvolves the raw values.
    pub sky: Option<f64>,
    /// Box size of the background map used as the sky when [`DeconvolveOptions::sky`] is
    /// `None` (default `Some(64)`, SExtractor's default): a smooth map from sigma-clipped box
    /// estimates ([`crate::psf::background_map`]), so that diffuse light (a cluster's core, a
    /// galaxy's halo, scattered light) is background rather than sources. Images with fewer
    /// than two boxes on a side, and `None`, use one clipped-median value. Richardson–Lucy
    /// takes the map as its known background term pixel by pixel; the other methods
    /// subtract it and add it back. [`deconvolve_window`] (Dask chunks) uses the scalar sky
    /// of its globals.
    pub sky_mesh: Option<usize>,
    /// Extension beyond the edges; `None`: [`Method::default_boundary`].
    pub boundary: Option<BoundaryMode>,
    /// Tile size in pixels; `None`: 1024 when a side exceeds [`Method::auto_tile_above`]
    /// (2048 px; 8192 px for `wiener`/`tikhonov`), else no tiling; `Some(0)`: never tile.
    pub tile: Option<usize>,
    /// Context pixels around each tile; `None`: twice the PSF size.
    pub halo: Option<usize>,
    /// Normalise the PSF to unit sum (a warning is reported when its sum was not 1).
    pub normalize_psf: bool,
    /// [`deconvolve_fits`] only: overwrite an existing output.
    pub force: bool,
}

impl Default for DeconvolveOptions {
    fn default() -> Self {
        DeconvolveOptions {
            method: Method::Rl,
            iters: None,
            accelerate: false,
            max_iters: None,
            precision: Precision::Auto,
            balance: None,
            k_sigma: None,
            refit_active: false,
            refit_kappa: 3.0,
            model: LearnedModel::Builtin,
            sky: None,
            sky_mesh: Some(64),
            boundary: None,
            tile: None,
            halo: None,
            normalize_psf: true,
            force: false,
        }
    }
}

impl DeconvolveOptions {
    /// Check the options: `iters ≥ 1` for the iterative methods, finite `sky`, `balance ≥ 0`
    /// and `k_sigma ≥ 0` (finite).
    pub fn validate(&self) -> Result<()> {
        use sparseinv_solvers::Error as E;
        if self.method.is_iterative() && self.iters == Some(0) {
            return Err(E::param("iters", "must be at least 1").into());
        }
        if self.max_iters == Some(0) {
            return Err(E::param("max_iters", "must be at least 1").into());
        }
        if let Some(v) = self.sky {
            if !v.is_finite() {
                return Err(E::param("sky", format!("{v} is not a finite number")).into());
            }
        }
        if let Some(b) = self.sky_mesh {
            if b < 4 {
                return Err(E::param(
                    "sky_mesh",
                    format!("the background box must be at least 4 px, got {b}"),
                )
                .into());
            }
        }
        if let Some(b) = self.balance {
            if !(b >= 0.0 && b.is_finite()) {
                return Err(E::param("balance", format!("must be finite and ≥ 0, got {b}")).into());
            }
        }
        if !(self.refit_kappa >= 0.0 && self.refit_kappa.is_finite()) {
            return Err(E::param(
                "refit_kappa",
                format!("must be finite and ≥ 0, got {}", self.refit_kappa),
            )
            .into());
        }
        if self.method == Method::Learned && self.balance.is_some() {
            return Err(E::param(
                "balance",
                "the learned method uses the Tikhonov weight its network was trained with; a \
                 balance does not apply",
            )
            .into());
        }
        if self.boundary == Some(BoundaryMode::Smooth) && self.method.is_iterative() {
            return Err(E::param(
                "boundary",
                format!(
                    "the smooth boundary is for the Fourier methods (wiener, tikhonov, learned); \
                     {} takes zero, reflect or periodic",
                    self.method.name()
                ),
            )
            .into());
        }
        if let Some(k) = self.k_sigma.filter(|k| !(*k >= 0.0 && k.is_finite())) {
            return Err(E::param("k_sigma", format!("must be finite and ≥ 0, got {k}")).into());
        }
        Ok(())
    }
}

/// The network of [`Method::Learned`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LearnedModel {
    /// The shipped galaxy network (`models/onnx/galaxy_unet.onnx`, embedded).
    #[default]
    Builtin,
    /// An ONNX graph with the same contract and its sidecar JSON next to it (same path,
    /// extension `.json`); see [`sparseinv_models::galaxy`].
    Path(std::path::PathBuf),
}

impl LearnedModel {
    /// `"builtin"` or the path.
    pub fn label(&self) -> String {
        match self {
            LearnedModel::Builtin => "builtin".into(),
            LearnedModel::Path(p) => p.display().to_string(),
        }
    }
}

/// How a tiled run was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TilingReport {
    /// Core size of the tiles (pixels).
    pub tile: usize,
    /// Context pixels around each tile.
    pub halo: usize,
    /// Half-width of the blending band.
    pub blend: usize,
    /// Number of tiles.
    pub tiles: usize,
    /// Tiles processed at the same time (rayon threads).
    pub in_flight: usize,
}

/// Wall-clock seconds of the phases of [`deconvolve()`] (their sum is
/// [`DeconvolveReport::seconds`] up to the bookkeeping between them): what a user's run
/// spends outside the solver, measured rather than guessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PhaseSeconds {
    /// Validation, the valid-pixel mask, the PSF normalisation and the input flux.
    pub prepare: f64,
    /// The sky: the background map or the clipped median.
    pub sky: f64,
    /// The data-driven parameters: the GCV weight (Wiener, Tikhonov), the noise model (RL),
    /// the noise level (starlet, learned, re-fit), and the image the solver sees.
    pub estimate: f64,
    /// The solver, over all tiles (and the photometric re-fit when asked for).
    pub solve: f64,
    /// Sky added back, masked pixels restored, the output flux.
    pub finish: f64,
}

/// What [`deconvolve()`] did: the fields of `sparseinv deconvolve --json` that do not name
/// files. Method-specific fields are `None` (and left out of the JSON) for other methods.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeconvolveReport {
    /// Method used.
    pub method: Method,
    /// Boundary used.
    pub boundary: BoundaryMode,
    /// Iterations run (0 for the Fourier filters; for a tiled run, the most any tile ran).
    pub iterations: usize,
    /// Why the iterations stopped (`rl`, `starlet`): `"fixed"` (the count was given or is the
    /// method's default), `"discrepancy"` (every tile reached the noise level) or
    /// `"max_iters"` (the discrepancy stop did not fire in some tile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Fewest and most iterations over the tiles of a tiled discrepancy-stopped run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations_range: Option<(usize, usize)>,
    /// The noise model of the automatic stop (`rl` without `iters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_model: Option<NoiseModelReport>,
    /// Plain `rl` without `iters` on a tiled image or one larger than [`RISK_WINDOW`]: the
    /// size of the central window on which the minimum-risk stop chose the count that the
    /// whole image (every tile) then ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_window: Option<[usize; 2]>,
    /// Wall-clock seconds of the deconvolution (after reading the inputs).
    pub seconds: f64,
    /// Where those seconds went ([`PhaseSeconds`]).
    pub phases: PhaseSeconds,
    /// Sum of the valid input pixels.
    pub flux_before: f64,
    /// Sum of the valid output pixels.
    pub flux_after: f64,
    /// Number of masked (non-finite) pixels.
    pub masked_pixels: usize,
    /// Sky level used as the known background (the median of the map when a map was used).
    pub sky: f64,
    /// The background map used as the sky, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sky_map: Option<SkyMapReport>,
    /// Wiener balance or Tikhonov weight used (Fourier methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<f64>,
    /// The signal model of the Fourier methods (`"white"`, `"gradient"`, `"laplacian"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<FourierPrior>,
    /// Where the balance came from: `"given"` or `"gcv"` (Fourier methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_from: Option<String>,
    /// How masked pixels were filled before the Fourier filter (Fourier methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_fill: Option<String>,
    /// Whether Richardson–Lucy was accelerated (`rl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerated: Option<bool>,
    /// Precision of Richardson–Lucy (`rl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Noise level estimated once on the whole image (`starlet` thresholds, `learned`
    /// normalisation, re-fit support).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_sigma: Option<f64>,
    /// The network used (`learned`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Significance threshold of the photometric re-fit, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refit_kappa: Option<f64>,
    /// `starlet`: the threshold in noise units (given, the default with `iters`, or chosen
    /// by the least estimated risk, see `k_sigma_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_sigma: Option<f64>,
    /// `starlet`: `"given"`, `"default"` or `"minimum_risk"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_sigma_from: Option<String>,
    /// The tiling, or `None` (JSON `null`) for an untiled run.
    pub tiling: Option<TilingReport>,
    /// Sum of the PSF as given (it was divided by it when
    /// [`DeconvolveOptions::normalize_psf`] is on); not part of the JSON report.
    #[serde(skip)]
    pub psf_sum: f64,
    /// Warnings (a halo smaller than the PSF); not part of the JSON report.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The background map of a report ([`DeconvolveOptions::sky_mesh`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SkyMapReport {
    /// Box size (pixels).
    pub box_size: usize,
    /// Boxes (rows, columns).
    pub boxes: (usize, usize),
    /// Lowest value of the map.
    pub min: f64,
    /// Highest value of the map.
    pub max: f64,
    /// Boxes with too few valid pixels, filled from their neighbours.
    pub filled_boxes: usize,
}

/// The Poisson–Gaussian noise model `σ²(level) = var0 + slope · level` of a report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NoiseModelReport {
    /// Variance at level 0 (data units²).
    pub var0: f64,
    /// Variance per unit level.
    pub slope: f64,
    /// The discrepancy threshold `τ` (accelerated RL's discrepancy stop; absent under the
    /// minimum-risk stop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
}

/// The result of [`deconvolve()`]: the deconvolved image (NaN where the input was masked) and
/// the report.
#[derive(Debug, Clone)]
pub struct Deconvolved {
    /// The deconvolved image, the input's shape; NaN at masked pixels.
    pub image: Array2<f64>,
    /// What was done.
    pub report: DeconvolveReport,
}

/// Default tile size when tiling automatically (see [`Method::auto_tile_above`]).
const AUTO_TILE: usize = 1024;

/// Everything a tile needs besides its pixels (global quantities computed once).
struct Solve<'a> {
    method: Method,
    psf: ArrayView2<'a, f64>,
    boundary: Boundary,
    /// The boundary as the user chose it (the Fourier methods' padding).
    mode: BoundaryMode,
    /// Iterations (the most, under an automatic stop).
    iters: usize,
    /// Richardson–Lucy's discrepancy stop (accelerated) ...
    discrepancy: Option<Discrepancy>,
    /// ... or minimum-risk stop (plain).
    risk: Option<RiskStop>,
    /// Iterations run and whether the discrepancy stop fired, per window.
    runs: std::sync::Mutex<Vec<(usize, bool)>>,
    accelerate: bool,
    /// RL in single precision.
    single: bool,
    /// Wiener balance / Tikhonov weight, and the regulariser.
    mu: f64,
    reg: Regulariser,
    /// RL: data offset (added back), starting value and background term (`eps`).
    rl_offset: f64,
    rl_init: f64,
    rl_background: f64,
    /// starlet / learned / re-fit: noise level and options.
    sigma: f64,
    k_sigma: f64,
    refit: Option<f64>,
    /// The sky (what Richardson–Lucy's output carries on top of the sources).
    sky: f64,
    #[cfg(feature = "onnx")]
    learned: Option<&'a sparseinv_models::GalaxyNet>,
}

type IterProgress<'p> = Option<&'p mut dyn FnMut(usize)>;

/// An observer that reports each iteration's count to `progress` and never stops the run.
fn progress_observer<R>(
    mut progress: IterProgress<'_>,
) -> impl FnMut(&IterInfo<R>) -> Control + '_ {
    move |i: &IterInfo<R>| {
        if let Some(p) = progress.as_mut() {
            p(i.iter);
        }
        Control::Continue
    }
}

impl<'a> Solve<'a> {
    fn new(
        psf: ArrayView2<'a, f64>,
        boundary: BoundaryMode,
        opts: &DeconvolveOptions,
        g: &DeconvolveGlobals,
        #[cfg(feature = "onnx")] learned: Option<&'a sparseinv_models::GalaxyNet>,
    ) -> Self {
        let starlet = opts.method == Method::Starlet;
        let auto = (opts.method == Method::Rl || starlet) && opts.iters.is_none();
        // RL's discrepancy stop (accelerated) or the minimum-risk stop (plain RL, starlet)
        let accelerate = opts.accelerate && !starlet;
        // a minimum-risk count chosen on the central window: a fixed run
        let chosen = (auto && !accelerate && g.rl_iters > 0).then_some(g.rl_iters);
        let auto = auto && chosen.is_none();
        let noise = NoiseModel {
            var0: g.noise_var0,
            slope: g.noise_slope,
            bins_used: 0,
            correlated: false,
        };
        Solve {
            method: opts.method,
            psf,
            boundary: boundary.op(),
            mode: boundary,
            iters: opts.iters.or(chosen).unwrap_or(if starlet {
                opts.max_iters.unwrap_or(STARLET_AUTO_MAX_ITERS)
            } else if accelerate {
                opts.max_iters.unwrap_or(RL_AUTO_MAX_ITERS)
            } else {
                opts.max_iters.unwrap_or(RL_AUTO_MAX_ITERS_PLAIN)
            }),
            discrepancy: (auto && accelerate).then_some(Discrepancy {
                noise,
                level_offset: g.rl_offset,
                tau: DISCREPANCY_TAU,
            }),
            // the solver's data are y − o (RL) or y − sky (starlet)
            risk: (auto && !accelerate).then(|| {
                if starlet {
                    RiskStop {
                        eps_rel: STARLET_RISK_EPS_REL,
                        patience: STARLET_RISK_PATIENCE,
                        ..RiskStop::new(noise, g.sky)
                    }
                } else {
                    RiskStop::new(noise, g.rl_offset)
                }
            }),
            runs: std::sync::Mutex::new(Vec::new()),
            accelerate: opts.accelerate,
            single: opts.precision.resolved() == Precision::F32,
            mu: g.balance,
            reg: g.prior.regulariser(),
            rl_offset: g.rl_offset,
            rl_init: g.rl_init,
            rl_background: g.rl_background,
            sigma: g.noise_sigma,
            k_sigma: opts
                .k_sigma
                .or((g.starlet_k > 0.0).then_some(g.starlet_k))
                .unwrap_or(STARLET_DEFAULT_K_SIGMA),
            refit: opts.refit_active.then_some(opts.refit_kappa),
            sky: g.sky,
            #[cfg(feature = "onnx")]
            learned,
        }
    }

    /// Richardson–Lucy in precision `R` on the window minus the data offset (masked where
    /// `valid` is false), with the sky as its known background term; returns the sources
    /// above the background plus the background and the offset, in `f64`.
    fn rl<R: Real>(
        &self,
        win: ArrayView2<'_, f64>,
        valid: ArrayView2<'_, bool>,
        bg: Option<ArrayView2<'_, f64>>,
        progress: IterProgress<'_>,
    ) -> Result<Array2<f64>> {
        // the sky map's excess over the scalar sky, kept at eps + b ≥ 0
        let background = bg.map(|b| b.mapv(|v| v.max(-self.rl_background)));
        let p = RlParams {
            boundary: self.boundary,
            accelerate: self.accelerate,
            init: Some(self.rl_init),
            eps: self.rl_background,
            background,
            stop: RlParams::iterations(self.iters),
            discrepancy: self.discrepancy,
            // the risk leaves out a band of the PSF's half-extent along the edges (at most a
            // quarter of the window), where the data hold light from beyond the edge
            risk: self.risk.map(|r| RiskStop {
                border: self.risk_border(win.dim()),
                ..r
            }),
            ..RlParams::default()
        };
        let y = win.mapv(|v| real::<R>(v - self.rl_offset));
        let k = self.psf.mapv(real::<R>);
        let mut obs = progress_observer(progress);
        let (x, rep) = richardson_lucy(y.view(), k.view(), Some(valid), &p, &mut obs)?;
        self.record_run(rep.iterations, rep.stop_reason);
        let add = self.rl_offset + self.rl_background;
        let mut out = x.mapv(|v| v.to_f64_lossless() + add);
        if let Some(b) = &p.background {
            out += b;
        }
        Ok(out)
    }

    /// `starlet` (FISTA) on the window (masked where `valid` is false), for `self.iters`
    /// iterations or under the minimum-risk stop.
    fn starlet_result(
        &self,
        win: ArrayView2<'_, f64>,
        valid: ArrayView2<'_, bool>,
        progress: IterProgress<'_>,
    ) -> Result<sparseinv_solvers::deconv::StarletSparseResult> {
        let p = StarletSparseParams {
            stop: sparseinv_solvers::iter::StopCriteria {
                max_iters: self.iters,
                rel_tol: 0.0,
                ..Default::default()
            },
            k_sigma: self.k_sigma,
            sigma: Some(self.sigma),
            boundary: self.boundary,
            solver: StarletSolver::Fista { inner: 1 },
            risk: self.risk.map(|r| RiskStop {
                border: self.risk_border(win.dim()),
                ..r
            }),
            ..StarletSparseParams::default()
        };
        let mut obs = progress_observer(progress);
        let r = starlet_sparse_with(win, self.psf, Some(valid), &p, &mut obs)?;
        self.record_run(r.report.iterations, r.report.stop_reason);
        Ok(r)
    }

    /// Keep the iterations a window ran and whether its automatic stop fired (the
    /// discrepancy or the minimum-risk stop) rather than the cap.
    fn record_run(&self, iterations: usize, reason: sparseinv_solvers::iter::StopReason) {
        use sparseinv_solvers::iter::StopReason;
        let fired = matches!(reason, StopReason::Residual | StopReason::MinimumRisk);
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((iterations, fired));
    }

    /// The band along the edges left out of the risk estimate: the PSF's half-extent (at
    /// most a quarter of the window), where the data hold light from beyond the edge.
    fn risk_border(&self, (n0, n1): (usize, usize)) -> usize {
        let (h, w) = self.psf.dim();
        (h.max(w) / 2).min(n0.min(n1) / 4)
    }

    /// Deconvolve one window; NaN pixels are masked. `bg`: Richardson–Lucy's background
    /// beyond the scalar sky (a sky map), for this window. Returns finite values everywhere.
    fn run(
        &self,
        win: ArrayView2<'_, f64>,
        bg: Option<ArrayView2<'_, f64>>,
        progress: IterProgress<'_>,
    ) -> Result<Array2<f64>> {
        let valid = win.mapv(f64::is_finite);
        if !valid.iter().any(|&b| b) {
            // every pixel of this window is masked: nothing to fit, output is masked anyway
            return Ok(Array2::zeros(win.dim()));
        }
        let psf = self.psf;
        // the Fourier filters (and the learned method's Tikhonov step) need a NaN-free image:
        // the window itself when nothing is masked
        let filled = || -> Result<CowArray<'_, f64, Ix2>> {
            Ok(if valid.iter().all(|&b| b) {
                win.into()
            } else {
                fill_masked_median(win, valid.view(), 2)?.into()
            })
        };
        let x = match self.method {
            Method::Wiener | Method::Tikhonov => {
                let padding = self.mode.fourier_padding(win.dim(), psf.dim())?;
                tikhonov_padded(filled()?.view(), psf, self.reg, self.mu, &padding)?
            }
            Method::Rl if self.single => self.rl::<f32>(win, valid.view(), bg, progress)?,
            Method::Rl => self.rl::<f64>(win, valid.view(), bg, progress)?,
            Method::Starlet => self.starlet_result(win, valid.view(), progress)?.x,
            Method::Learned => self.learned(filled()?.view())?,
        };
        let Some(kappa) = self.refit else {
            return Ok(x);
        };
        // Richardson–Lucy's output carries the sky (and the map's excess); the re-fit works
        // on the sources
        let off = if self.method == Method::Rl {
            let mut o = Array2::from_elem(win.dim(), self.sky);
            if let Some(b) = bg {
                o += &b;
            }
            o
        } else {
            Array2::zeros(win.dim())
        };
        let data = Zip::from(&win)
            .and(&off)
            .map_collect(|&v, &o| if v.is_finite() { v - o } else { 0.0 });
        let est = &x - &off;
        let p = DebiasParams {
            kappa,
            boundary: self.boundary,
            ..DebiasParams::default()
        };
        let r = debias_active(
            data.view(),
            psf,
            Some(valid.view()),
            est.view(),
            self.sigma,
            &p,
        )?;
        Ok(r.x + &off)
    }

    /// `σ · N(T(y)/σ)`: the learned network on the Tikhonov deconvolution of the (filled,
    /// sky-subtracted) window.
    #[cfg(feature = "onnx")]
    fn learned(&self, filled: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let net = self
            .learned
            .ok_or_else(|| Error::input("the learned method has no network loaded"))?;
        let padding = self.mode.fourier_padding(filled.dim(), self.psf.dim())?;
        let t = tikhonov_padded(
            filled,
            self.psf,
            Regulariser::Laplacian,
            net.info().tikhonov_balance,
            &padding,
        )?;
        Ok(net.restore(t.view(), self.sigma)?)
    }

    #[cfg(not(feature = "onnx"))]
    fn learned(&self, _filled: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        Err(Error::input(
            "the learned method needs sparseinv built with the `onnx` feature",
        ))
    }
}

/// The discrepancy threshold `τ` of Richardson–Lucy's automatic stop: `τ = 1`, the expected
/// value of the statistic at the true image. (Chosen on simulated star fields and
/// photographs; larger values stopped earlier and lost up to 5 dB on star fields, where the
/// best iteration comes late.)
pub const DISCREPANCY_TAU: f64 = 1.0;

/// The sky level of [`DeconvolveOptions::sky`]`= None`: the 3σ-clipped median
/// ([`crate::psf::background_stats`]) of the valid pixels, from a regular subsample of at most
/// about 10⁶ of them; 0 when nothing is valid.
pub fn estimate_sky(image: ArrayView2<'_, f64>) -> f64 {
    let nvalid = image.iter().filter(|v| v.is_finite()).count();
    let stride = (nvalid / 1_000_000).max(1);
    crate::psf::background_stats(
        image
            .iter()
            .filter(|v| v.is_finite())
            .step_by(stride)
            .copied(),
    )
    .map(|(med, _)| med)
    .unwrap_or(0.0)
}

/// Deconvolve `image` (NaN or other non-finite values = masked pixels) by `psf` (centre at
/// `(h/2, w/2)`; normalised to unit sum unless `opts.normalize_psf` is off); see the module
/// documentation for what is done. Returns the deconvolved image (NaN where masked) and a
/// report.
///
/// `image` is a view (`img.view()`: copied into the working image) or an owned `Array2`
/// (moved in: it becomes the working image, no copy — what the CLI and
/// [`deconvolve_fits`] do with the pixels they read).
///
/// Errors: invalid options, a PSF that is unusable or larger than the image, every pixel
/// masked, or a solver failure.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv::pipeline::{deconvolve, DeconvolveOptions, Method};
/// // a star on a sky of 10, blurred by a 5×5 box PSF
/// let psf = Array2::from_elem((5, 5), 1.0 / 25.0);
/// let mut img = Array2::from_elem((48, 48), 10.0);
/// for y in 22..27 {
///     for x in 22..27 {
///         img[[y, x]] += 4.0;
///     }
/// }
/// img[[0, 0]] = f64::NAN; // a masked pixel
/// let opts = DeconvolveOptions { method: Method::Rl, iters: Some(200), ..Default::default() };
/// let out = deconvolve(img.view(), psf.view(), &opts).unwrap();
/// assert_eq!(out.report.sky, 10.0);
/// assert!(out.image[[0, 0]].is_nan());
/// assert!(out.image[[24, 24]] > 40.0); // the flux of 100 gathers back towards one pixel
/// // flux is conserved to well under a percent (0.25 % after 200 plain iterations)
/// assert!((out.report.flux_after / out.report.flux_before - 1.0).abs() < 5e-3);
/// // an owned image is moved in (no copy of the pixels) and gives the same result
/// let moved = deconvolve(img, psf.view(), &opts).unwrap();
/// assert!(moved.image.iter().zip(&out.image).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
/// ```
pub fn deconvolve<'a>(
    image: impl Into<CowArray<'a, f64, Ix2>>,
    psf: ArrayView2<'_, f64>,
    opts: &DeconvolveOptions,
) -> Result<Deconvolved> {
    deconvolve_with_progress(image, psf, opts, &mut |_| {})
}

/// [`deconvolve()`] that reports progress: iterations of an untiled `rl`/`starlet` run
/// ([`ProgressUnit::Iterations`]) or finished tiles of a tiled run ([`ProgressUnit::Tiles`]).
pub fn deconvolve_with_progress<'a>(
    image: impl Into<CowArray<'a, f64, Ix2>>,
    psf: ArrayView2<'_, f64>,
    opts: &DeconvolveOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Deconvolved> {
    let t_start = Instant::now();
    opts.validate()?;
    let image: CowArray<'a, f64, Ix2> = image.into();
    let y = image.view();
    let (valid, nvalid, flux_in) = valid_count_flux(y);
    if nvalid == 0 {
        return Err(Error::input("every pixel is masked"));
    }
    crate::psf::check_fits_image(psf.dim(), y.dim())?;
    let (psf, psf_sum) = if opts.normalize_psf {
        crate::psf::normalize(psf)?
    } else {
        (psf.to_owned(), crate::psf::validate(psf)?)
    };
    let method = opts.method;
    let (ny, nx) = y.dim();
    let tile = opts
        .tile
        .unwrap_or(if ny.max(nx) > method.auto_tile_above() {
            AUTO_TILE
        } else {
            0
        });
    let tiled = tile > 0 && (ny > tile || nx > tile);
    let boundary = opts.boundary.unwrap_or(method.default_boundary_when(tiled));
    let t0 = Instant::now();
    let mut phases = PhaseSeconds {
        prepare: (t0 - t_start).as_secs_f64(),
        ..PhaseSeconds::default()
    };
    let (sky, sky_map) = resolve_sky(y, opts)?;
    phases.sky = t0.elapsed().as_secs_f64();
    let t_est = Instant::now();
    // Richardson–Lucy's background beyond the scalar sky (the map minus its median)
    let rl_bg = sky_map
        .as_ref()
        .filter(|_| method == Method::Rl)
        .map(|m| m.map.mapv(|v| v - sky));
    // Global quantities, and the image the tiles see (NaN = masked).
    let work = work_image(
        method,
        image,
        valid.view(),
        sky,
        sky_map.as_ref().map(|m| &m.map),
    );
    // Richardson–Lucy's working image is the data itself (NaN where masked): the globals
    // below read the data through it (the other methods do not read the data there)
    let y = work.view();
    // plain RL's count is chosen on a central window when the image is tiled or larger than
    // the window (the tiles then agree, and the probe chain stays small)
    let globals = compute_globals(
        method,
        y,
        valid.view(),
        work.view(),
        sky,
        psf.view(),
        boundary,
        opts,
        rl_bg.as_ref().map(|b| b.view()),
        tiled || ny > RISK_WINDOW || nx > RISK_WINDOW,
    )?;
    phases.estimate = t_est.elapsed().as_secs_f64();
    let t_solve = Instant::now();
    #[cfg(feature = "onnx")]
    let net = load_learned(opts)?;
    let solve = Solve::new(
        psf.view(),
        boundary,
        opts,
        &globals,
        #[cfg(feature = "onnx")]
        net.as_ref(),
    );
    let report = DeconvolveReport {
        method,
        boundary,
        iterations: 0,
        stop: None,
        iterations_range: None,
        noise_model: (matches!(method, Method::Rl | Method::Starlet) && opts.iters.is_none()).then(
            || NoiseModelReport {
                var0: globals.noise_var0,
                slope: globals.noise_slope,
                tau: (opts.accelerate && method == Method::Rl).then_some(DISCREPANCY_TAU),
            },
        ),
        risk_window: (globals.rl_iters > 0).then(|| [ny.min(RISK_WINDOW), nx.min(RISK_WINDOW)]),
        seconds: 0.0,
        phases: PhaseSeconds::default(),
        flux_before: flux_in,
        flux_after: 0.0,
        masked_pixels: y.len() - nvalid,
        sky,
        sky_map: None,
        balance: matches!(method, Method::Wiener | Method::Tikhonov).then_some(globals.balance),
        prior: matches!(method, Method::Wiener | Method::Tikhonov).then_some(globals.prior),
        balance_from: matches!(method, Method::Wiener | Method::Tikhonov).then(|| {
            if opts.balance.is_some() {
                "given"
            } else {
                "gcv"
            }
            .to_string()
        }),
        masked_fill: matches!(method, Method::Wiener | Method::Tikhonov)
            .then(|| "local median of the valid pixels (5x5 window, grown into holes)".to_string()),
        accelerated: (method == Method::Rl).then_some(opts.accelerate),
        precision: (method == Method::Rl).then_some(opts.precision.resolved()),
        noise_sigma: (matches!(method, Method::Starlet | Method::Learned) || opts.refit_active)
            .then_some(globals.noise_sigma),
        model: (method == Method::Learned).then(|| opts.model.label()),
        refit_kappa: opts.refit_active.then_some(opts.refit_kappa),
        k_sigma: (method == Method::Starlet).then_some(solve.k_sigma),
        k_sigma_from: (method == Method::Starlet).then(|| {
            if opts.k_sigma.is_some() {
                "given"
            } else if globals.starlet_k > 0.0 {
                "minimum_risk"
            } else {
                "default"
            }
            .to_string()
        }),
        tiling: None,
        psf_sum,
        warnings: Vec::new(),
    };
    let mut report = report;
    #[cfg(feature = "onnx")]
    if let Some(net) = &net {
        report.warnings.extend(learned_psf_warning(net, psf.view()));
    }
    let psf_size = psf.nrows().max(psf.ncols());
    let halo = opts.halo.unwrap_or(2 * psf_size);
    if opts.halo.is_some() && halo < psf_size {
        report.warnings.push(format!(
            "the halo ({halo} px) is smaller than the PSF ({psf_size} px): tile seams may show"
        ));
    }
    if tiled && tile < psf_size {
        return Err(sparseinv_solvers::Error::param(
            "tile",
            format!(
                "the tile ({tile} px) is smaller than the PSF ({psf_size} px): each tile must hold \
                 the PSF (tiles of at least 4 × the PSF size keep the halo overhead small; 0 \
                 does not tile)"
            ),
        )
        .into());
    }
    let x: Array2<f64> = if tiled {
        let params = TileParams {
            tile,
            halo,
            blend: (psf_size / 2).max(4).min(tile / 4),
            max_in_flight: 0,
        };
        let ntiles = plan_tiles((ny, nx), &params).len();
        let progress = RefCell::new(progress);
        let tile_progress = |done, total| {
            (progress.borrow_mut())(Progress {
                unit: ProgressUnit::Tiles,
                done,
                total,
            })
        };
        let x = match &rl_bg {
            None => process_tiled_with_progress(
                work.view(),
                &params,
                |w| solve.run(w, None, None),
                tile_progress,
            )?,
            Some(bg) => {
                // the data and Richardson–Lucy's background map, tiled together
                let stack = ndarray::stack(ndarray::Axis(0), &[work.view(), bg.view()])
                    .expect("same shapes");
                let out = crate::tiling::Tiler::from(params).process(
                    stack.view().into_dyn(),
                    |w| {
                        let w = w
                            .into_dimensionality::<ndarray::Ix3>()
                            .expect("a window of a 3-D stack is 3-D");
                        let r = solve.run(
                            w.index_axis(ndarray::Axis(0), 0),
                            Some(w.index_axis(ndarray::Axis(0), 1)),
                            None,
                        )?;
                        Ok::<_, Error>(r.insert_axis(ndarray::Axis(0)).into_dyn())
                    },
                    tile_progress,
                )?;
                out.index_axis_move(ndarray::Axis(0), 0)
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("2-D")
            }
        };
        report.tiling = Some(TilingReport {
            tile,
            halo,
            blend: params.blend,
            tiles: ntiles,
            in_flight: rayon::current_num_threads(),
        });
        x
    } else {
        let total = solve.iters;
        let mut iter_progress = |done: usize| {
            progress(Progress {
                unit: ProgressUnit::Iterations,
                done,
                total,
            })
        };
        let pbr: IterProgress<'_> = if method.is_iterative() {
            Some(&mut iter_progress)
        } else {
            None
        };
        solve.run(work.view(), rl_bg.as_ref().map(|b| b.view()), pbr)?
    };
    drop(work);
    phases.solve = t_solve.elapsed().as_secs_f64();
    let t_finish = Instant::now();
    if method.is_iterative() {
        let runs = solve.runs.lock().unwrap_or_else(|e| e.into_inner());
        if globals.rl_iters > 0 && opts.iters.is_none() {
            report.iterations = globals.rl_iters;
            report.stop = Some(
                if globals.rl_capped {
                    "max_iters"
                } else {
                    "minimum_risk"
                }
                .into(),
            );
            if globals.rl_capped {
                report.warnings.push(risk_cap_warning(
                    method,
                    globals.rl_iters,
                    " on the central window",
                ));
            }
        } else if (solve.discrepancy.is_some() || solve.risk.is_some()) && !runs.is_empty() {
            let lo = runs.iter().map(|r| r.0).min().unwrap_or(0);
            let hi = runs.iter().map(|r| r.0).max().unwrap_or(0);
            report.iterations = hi;
            report.stop = Some(
                if !runs.iter().all(|r| r.1) {
                    "max_iters"
                } else if solve.risk.is_some() {
                    "minimum_risk"
                } else {
                    "discrepancy"
                }
                .into(),
            );
            if report.tiling.is_some() {
                report.iterations_range = Some((lo, hi));
            }
            if report.stop.as_deref() == Some("max_iters") && solve.risk.is_some() {
                report
                    .warnings
                    .push(risk_cap_warning(method, solve.iters, ""));
            } else if report.stop.as_deref() == Some("max_iters") {
                report.warnings.push(format!(
                    "Richardson–Lucy stopped at its cap of {hi} iterations with the residual \
                     still above the noise level (usual on bright point sources, where the \
                     fit converges slowly; PSF mismatch, a varying background or correlated \
                     noise also keep it above the noise model): choose the count with --iters \
                     if the result is not sharp enough or over-sharpened"
                ));
            }
        } else {
            report.iterations = solve.iters;
            report.stop = Some("fixed".into());
        }
    }
    let (image, flux_after) = finish(
        method,
        x,
        valid.view(),
        sky,
        sky_map.as_ref().map(|m| &m.map),
    );
    report.sky_map = sky_map.as_ref().map(|m| {
        use rayon::prelude::*;
        let bounds = |a: (f64, f64), b: (f64, f64)| (a.0.min(b.0), a.1.max(b.1));
        let (min, max) = match m.map.as_slice() {
            Some(v) => v
                .par_chunks(1 << 16)
                .map(|c| {
                    c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
                        bounds(a, (v, v))
                    })
                })
                .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), bounds),
            None => m
                .map
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
                    bounds(a, (v, v))
                }),
        };
        SkyMapReport {
            box_size: m.box_size,
            boxes: m.mesh.dim(),
            min,
            max,
            filled_boxes: m.filled_boxes,
        }
    });
    report.flux_after = flux_after;
    phases.finish = t_finish.elapsed().as_secs_f64();
    report.seconds = t_start.elapsed().as_secs_f64();
    report.phases = phases;
    Ok(Deconvolved { image, report })
}

/// The finite pixels of `y` (the valid mask), their number and their sum, in one pass (rows
/// in parallel).
fn valid_count_flux(y: ArrayView2<'_, f64>) -> (Array2<bool>, usize, f64) {
    use rayon::prelude::*;
    let (n0, n1) = y.dim();
    let mut valid = Array2::from_elem((n0, n1), false);
    let (n, flux) = valid
        .as_slice_mut()
        .expect("fresh array is contiguous")
        .par_chunks_mut(n1.max(1))
        .enumerate()
        .map(|(i, vr)| {
            let (mut n, mut f) = (0usize, 0.0f64);
            for (ok, &v) in vr.iter_mut().zip(y.row(i)) {
                if v.is_finite() {
                    *ok = true;
                    n += 1;
                    f += v;
                }
            }
            (n, f)
        })
        .reduce(|| (0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    (valid, n, flux)
}

/// The image the solver sees, NaN at masked pixels: the data for Richardson–Lucy, the data
/// minus the sky for the other methods (the Fourier filters and the learned method fill the
/// masked pixels of each window with the local median of its valid pixels). An owned image
/// becomes the working image in place; a borrowed one is copied.
fn work_image<'a>(
    method: Method,
    y: impl Into<CowArray<'a, f64, Ix2>>,
    valid: ArrayView2<'_, bool>,
    sky: f64,
    map: Option<&Array2<f64>>,
) -> Array2<f64> {
    let mut x = y.into().into_owned();
    shift_by_sky(&mut x, valid, method, sky, map, -1.0);
    x
}

/// `x ← x + sign · (the sky the Fourier, starlet and learned methods subtract and [`finish`]
/// adds back: the map's value, or the scalar sky; 0 for Richardson–Lucy, which models the sky
/// itself as its background term)` at valid pixels, NaN at the others; returns the sum of the
/// finite valid pixels after the shift. Rows in parallel.
fn shift_by_sky(
    x: &mut Array2<f64>,
    valid: ArrayView2<'_, bool>,
    method: Method,
    sky: f64,
    map: Option<&Array2<f64>>,
    sign: f64,
) -> f64 {
    use rayon::prelude::*;
    let row = |i: usize, xr: &mut [f64]| -> f64 {
        let vr = valid.row(i);
        let mut flux = 0.0;
        let mut put = |v: &mut f64, ok: bool, off: f64| {
            if ok {
                *v += sign * off;
                if v.is_finite() {
                    flux += *v;
                }
            } else {
                *v = f64::NAN;
            }
        };
        match (method, map) {
            (Method::Rl, _) => xr.iter_mut().zip(vr).for_each(|(v, &ok)| put(v, ok, 0.0)),
            (_, Some(b)) => xr
                .iter_mut()
                .zip(vr)
                .zip(b.row(i))
                .for_each(|((v, &ok), &o)| put(v, ok, o)),
            (_, None) => xr.iter_mut().zip(vr).for_each(|(v, &ok)| put(v, ok, sky)),
        }
        flux
    };
    if !x.is_standard_layout() {
        *x = x.as_standard_layout().into_owned();
    }
    let n1 = x.ncols().max(1);
    x.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(n1)
        .enumerate()
        .map(|(i, xr)| row(i, xr))
        .sum()
}

/// The sky of [`deconvolve()`]: the given value; else, with
/// [`DeconvolveOptions::sky_mesh`]` = Some(b)` and an image of at least `2b` pixels on each
/// side, the background map ([`crate::psf::background_map`]) and its median (over a regular
/// grid of at most ~2¹⁶ of its pixels) as the scalar sky; else the clipped median
/// ([`estimate_sky`]).
fn resolve_sky(
    y: ArrayView2<'_, f64>,
    opts: &DeconvolveOptions,
) -> Result<(f64, Option<crate::psf::BackgroundMap>)> {
    if let Some(v) = opts.sky {
        return Ok((v, None));
    }
    let (n0, n1) = y.dim();
    match opts.sky_mesh {
        Some(b) if n0 >= 2 * b && n1 >= 2 * b => {
            let m = crate::psf::background_map(y, b)?;
            // the map is smooth on the scale of a box: its median from a regular grid of
            // at most ~2¹⁶ of its pixels (every pixel of an image up to 256²)
            let stride = (((n0 * n1) as f64 / 65536.0).sqrt().ceil() as usize).max(1);
            let mut v: Vec<f64> = m
                .map
                .slice(ndarray::s![stride / 2..;stride, stride / 2..;stride])
                .iter()
                .copied()
                .collect();
            let med = sparseinv_solvers::stats::median_mut(&mut v).unwrap_or(0.0);
            Ok((med, Some(m)))
        }
        _ => Ok((estimate_sky(y), None)),
    }
}

/// The network of [`Method::Learned`] (`None` for the other methods).
#[cfg(feature = "onnx")]
fn load_learned(opts: &DeconvolveOptions) -> Result<Option<sparseinv_models::GalaxyNet>> {
    if opts.method != Method::Learned {
        return Ok(None);
    }
    let so = sparseinv_models::SessionOptions::default();
    Ok(Some(match &opts.model {
        LearnedModel::Builtin => sparseinv_models::builtin::galaxy(so)?,
        LearnedModel::Path(p) => sparseinv_models::GalaxyNet::load(p, so)?,
    }))
}

/// A warning when the PSF's FWHM (the area above half its maximum, `2√(A/π)`) lies outside
/// the range the network was trained on (with a 20 % margin for the pixel-counting estimate).
#[cfg(feature = "onnx")]
fn learned_psf_warning(
    net: &sparseinv_models::GalaxyNet,
    psf: ArrayView2<'_, f64>,
) -> Option<String> {
    let fwhm = half_max_fwhm(psf);
    let (lo, hi) = net.info().fwhm_px_range;
    (!(fwhm >= 0.8 * lo && fwhm <= 1.2 * hi)).then(|| {
        format!(
            "the PSF's FWHM ({fwhm:.2} px) is outside the range the learned model was trained on \
             ({lo}–{hi} px): expect artefacts; resample the image or use another method"
        )
    })
}

/// FWHM of a PSF from the area `A` (pixels) where it exceeds half its maximum:
/// `2√(A/π)`, exact for a round profile up to pixelisation.
pub fn half_max_fwhm(psf: ArrayView2<'_, f64>) -> f64 {
    let peak = psf.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if peak.is_nan() || peak <= 0.0 {
        return f64::NAN;
    }
    let area = psf.iter().filter(|&&v| v >= 0.5 * peak).count() as f64;
    2.0 * (area / std::f64::consts::PI).sqrt()
}

/// The solver's output as the deconvolved image, in place: the sky added back (Richardson–Lucy
/// adds its background and offset itself) and NaN at masked pixels; with the flux (sum) of
/// the valid pixels.
fn finish(
    method: Method,
    mut x: Array2<f64>,
    valid: ArrayView2<'_, bool>,
    sky: f64,
    map: Option<&Array2<f64>>,
) -> (Array2<f64>, f64) {
    let flux = shift_by_sky(&mut x, valid, method, sky, map, 1.0);
    (x, flux)
}

/// The quantities of [`deconvolve()`] that must be the same in every tile of an image,
/// computed once on the whole image ([`deconvolve_globals`]) and passed to
/// [`deconvolve_window`] when the tiles are processed elsewhere (e.g. chunks of a mosaic on a
/// cluster). Fields a method does not use are 0.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeconvolveGlobals {
    /// Sky level (known background), data units.
    pub sky: f64,
    /// Wiener balance / Tikhonov weight (`wiener`, `tikhonov`).
    pub balance: f64,
    /// Richardson–Lucy: data offset `o = min(0, min y)` (the solver sees `y − o ≥ 0`).
    pub rl_offset: f64,
    /// Richardson–Lucy: starting value, `max(mean(y − o) − b, 10⁻³ |mean(y − o)|, 10⁻¹²)`.
    pub rl_init: f64,
    /// Richardson–Lucy: background term `b = max(sky − o, 10⁻¹²)` of `y − o ~ P(A x + b)`.
    pub rl_background: f64,
    /// Noise standard deviation (MAD of the finest starlet scale): `starlet` thresholds,
    /// `learned` normalisation, re-fit support.
    pub noise_sigma: f64,
    /// Signal model of the Fourier methods (chosen with the balance by GCV).
    #[serde(default)]
    pub prior: FourierPrior,
    /// Richardson–Lucy's discrepancy stop: noise variance at level 0 (data units²).
    #[serde(default)]
    pub noise_var0: f64,
    /// Richardson–Lucy's discrepancy stop: noise variance per unit level.
    #[serde(default)]
    pub noise_slope: f64,
    /// Richardson–Lucy's iteration count chosen by the minimum-risk stop on the central
    /// window of at most [`RISK_WINDOW`]² pixels (0: not chosen; every window then stops on
    /// its own estimate). Tiles and chunks all run this many iterations.
    #[serde(default)]
    pub rl_iters: usize,
    /// Whether that choice was cut by the cap with the estimate still falling.
    #[serde(default)]
    pub rl_capped: bool,
    /// `starlet` without `k_sigma` and `iters`: the threshold chosen with the count (in
    /// `rl_iters`, which then holds starlet's count) on the central window (0: not chosen).
    #[serde(default)]
    pub starlet_k: f64,
}

impl DeconvolveGlobals {
    /// Set the Richardson–Lucy quantities from the minimum, sum and count of the valid pixels
    /// and `self.sky`: RL needs non-negative data, so the data are offset by
    /// `o = min(0, min y)`; the sky is the constant background term `b = max(sky − o, 10⁻¹²)`
    /// of the Poisson model; the start is `max(mean(y − o) − b, 10⁻³ |mean(y − o)|, 10⁻¹²)`.
    /// A mosaic processed in chunks gets these from whole-mosaic reductions.
    pub fn set_rl(&mut self, min: f64, sum: f64, n: usize) {
        let off = min.min(0.0);
        let bg = (self.sky - off).max(0.0);
        self.rl_offset = off;
        self.rl_background = bg.max(1e-12);
        let mean = (sum - off * n as f64) / n.max(1) as f64;
        self.rl_init = (mean - bg).max(1e-3 * mean.abs()).max(1e-12);
    }
}

/// Side of the central window on which plain Richardson–Lucy's iteration count is chosen
/// (by the minimum-risk stop, [`RiskStop`]) for tiled runs, chunked runs and images larger
/// than this: the probe chain then costs `2 · 512² / N` of the run instead of doubling it,
/// and every tile runs the same count (no seams from tiles stopping apart).
pub const RISK_WINDOW: usize = 512;

/// The warning of a minimum-risk run that reached its cap of `iters` with the estimate still
/// falling (`place`: e.g. " on the central window").
fn risk_cap_warning(method: Method, iters: usize, place: &str) -> String {
    if method == Method::Starlet {
        return format!(
            "starlet stopped at its cap of {iters} iterations with the estimated risk still \
             falling{place}: raise the cap with --max-iters if the result is not sharp enough"
        );
    }
    format!(
        "Richardson–Lucy stopped at its cap of {iters} iterations with the estimated risk \
         still falling{place} (usual on bright point sources with a wide PSF, where the best \
         count lies further out): raise the cap with --max-iters, or try --accelerate, if the \
         result is not sharp enough"
    )
}

/// The central window of at most `side × side` pixels of an image of shape `(n0, n1)`.
fn central_window(
    (n0, n1): (usize, usize),
    side: usize,
) -> ndarray::SliceInfo<[ndarray::SliceInfoElem; 2], ndarray::Ix2, ndarray::Ix2> {
    let (w0, w1) = (n0.min(side), n1.min(side));
    let (o0, o1) = ((n0 - w0) / 2, (n1 - w1) / 2);
    ndarray::s![o0..o0 + w0, o1..o1 + w1]
}

/// Run the minimum-risk stop of plain `rl` or `starlet` on the central window of `work`
/// (with its part of Richardson–Lucy's sky map `rl_bg`) and keep the count in `g.rl_iters`
/// (at least 1; nothing when the window holds no valid pixel).
fn choose_count_on_window(
    g: &mut DeconvolveGlobals,
    work: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    boundary: BoundaryMode,
    opts: &DeconvolveOptions,
    rl_bg: Option<ArrayView2<'_, f64>>,
) -> Result<()> {
    let sl = central_window(work.dim(), RISK_WINDOW);
    let win = work.slice(sl);
    let valid = win.mapv(f64::is_finite);
    if !valid.iter().any(|&b| b) {
        return Ok(());
    }
    let bg = rl_bg.map(|b| b.slice_move(sl));
    let solve = Solve::new(
        psf,
        boundary,
        opts,
        g,
        #[cfg(feature = "onnx")]
        None,
    );
    if opts.method == Method::Starlet {
        solve.starlet_result(win, valid.view(), None)?;
    } else if solve.single {
        solve.rl::<f32>(win, valid.view(), bg, None)?;
    } else {
        solve.rl::<f64>(win, valid.view(), bg, None)?;
    }
    let runs = solve.runs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(k, fired)) = runs.first() {
        g.rl_iters = k.max(1);
        g.rl_capped = !fired;
    }
    Ok(())
}

/// `starlet`'s minimum-risk stop on the central window of `work`, for the given threshold
/// or each of [`STARLET_K_CANDIDATES`]: the count and threshold of least estimated risk go
/// to `g.rl_iters`, `g.rl_capped` and `g.starlet_k` (nothing when the window holds no valid
/// pixel).
fn choose_starlet_on_window(
    g: &mut DeconvolveGlobals,
    work: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    boundary: BoundaryMode,
    opts: &DeconvolveOptions,
) -> Result<()> {
    let sl = central_window(work.dim(), RISK_WINDOW);
    let win = work.slice(sl);
    let valid = win.mapv(f64::is_finite);
    if !valid.iter().any(|&b| b) {
        return Ok(());
    }
    let given = opts.k_sigma.map(|k| vec![k]);
    let ks = given.unwrap_or_else(|| STARLET_K_CANDIDATES.to_vec());
    // the candidates are independent: run them in parallel, keep the least SURE (ties: the
    // first candidate)
    use rayon::prelude::*;
    let gg: &DeconvolveGlobals = g;
    let runs = ks
        .par_iter()
        .map(|&k| -> Result<(f64, f64, usize, bool)> {
            let o = DeconvolveOptions {
                k_sigma: Some(k),
                ..opts.clone()
            };
            let solve = Solve::new(
                psf,
                boundary,
                &o,
                gg,
                #[cfg(feature = "onnx")]
                None,
            );
            let r = solve.starlet_result(win, valid.view(), None)?;
            let sure = r.sure.unwrap_or(f64::INFINITY);
            let fired = r.report.stop_reason == sparseinv_solvers::iter::StopReason::MinimumRisk;
            Ok((sure, k, r.report.iterations, fired))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut best: Option<(f64, f64, usize, bool)> = None;
    for r in runs {
        if best.is_none_or(|b| r.0 < b.0) {
            best = Some(r);
        }
    }
    if let Some((_, k, iters, fired)) = best {
        g.starlet_k = k;
        g.rl_iters = iters.max(1);
        g.rl_capped = !fired;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn compute_globals(
    method: Method,
    y: ArrayView2<'_, f64>,
    valid: ArrayView2<'_, bool>,
    work: ArrayView2<'_, f64>,
    sky: f64,
    psf: ArrayView2<'_, f64>,
    boundary: BoundaryMode,
    opts: &DeconvolveOptions,
    rl_bg: Option<ArrayView2<'_, f64>>,
    choose_count: bool,
) -> Result<DeconvolveGlobals> {
    let mut g = DeconvolveGlobals {
        sky,
        balance: 0.0,
        rl_offset: 0.0,
        rl_init: 1.0,
        rl_background: 1e-12,
        noise_sigma: 0.0,
        prior: FourierPrior::White,
        noise_var0: 0.0,
        noise_slope: 0.0,
        rl_iters: 0,
        rl_capped: false,
        starlet_k: 0.0,
    };
    // the NaN-free image, made once however many estimates below need it
    let filled_cell = std::cell::OnceCell::new();
    let filled = || -> Result<&Array2<f64>> {
        if filled_cell.get().is_none() {
            let f = if valid.iter().all(|&b| b) {
                work.to_owned()
            } else {
                fill_masked_median(work, valid, 2)?
            };
            let _ = filled_cell.set(f);
        }
        Ok(filled_cell.get().expect("set above"))
    };
    match method {
        Method::Wiener | Method::Tikhonov => {
            let regs: &[Regulariser] = if method == Method::Tikhonov {
                &[Regulariser::Laplacian]
            } else {
                &[
                    Regulariser::Identity,
                    Regulariser::Gradient,
                    Regulariser::Laplacian,
                ]
            };
            match opts.balance {
                Some(b) => {
                    g.balance = b;
                    g.prior = FourierPrior::from_regulariser(regs[0]);
                }
                None => {
                    // the central window alone, its masked pixels filled (the rest of the
                    // image is not needed here)
                    let sl = central_window(work.dim(), GCV_WINDOW);
                    let (wv, wm) = (work.slice(sl), valid.slice(sl));
                    let filled_win = if wm.iter().all(|&b| b) {
                        None
                    } else if wm.iter().any(|&b| b) {
                        Some(fill_masked_median(wv, wm, 2)?)
                    } else {
                        Some(filled()?.slice(sl).to_owned())
                    };
                    let win = filled_win.as_ref().map_or(wv, |f| f.view());
                    let padding = boundary.fourier_padding(win.dim(), psf.dim())?;
                    let c = gcv_select(win, psf, regs, &padding)?;
                    g.balance = c.lambda;
                    g.prior = FourierPrior::from_regulariser(c.regulariser);
                }
            }
        }
        Method::Rl => {
            let (min, sum, n) = Zip::from(y).and(valid).fold(
                (f64::INFINITY, 0.0f64, 0usize),
                |(o, s, n), &v, &m| {
                    if m {
                        (o.min(v), s + v, n + 1)
                    } else {
                        (o, s, n)
                    }
                },
            );
            g.set_rl(min, sum, n);
            if opts.iters.is_none() {
                let m = estimate_noise_model(filled()?.view(), Some(valid))?;
                g.noise_var0 = m.var0;
                g.noise_slope = m.slope;
            }
            if opts.iters.is_none() && !opts.accelerate && choose_count {
                choose_count_on_window(&mut g, work, psf, boundary, opts, rl_bg)?;
            }
        }
        Method::Starlet | Method::Learned => {}
    }
    if matches!(method, Method::Starlet | Method::Learned) || opts.refit_active {
        g.noise_sigma = estimate_noise_sigma(filled()?.view())?;
    }
    if method == Method::Starlet && opts.iters.is_none() {
        // the minimum-risk stop's variance model, at the level of the data (sky included)
        let f = filled()?;
        let level = f.mapv(|v| v + sky);
        let m = estimate_noise_model(level.view(), Some(valid))?;
        g.noise_var0 = m.var0;
        g.noise_slope = m.slope;
        // the count (and the threshold, when not given) is always chosen on the central
        // window (the whole image when it fits), then run as a fixed count
        choose_starlet_on_window(&mut g, work, psf, boundary, opts)?;
    }
    Ok(g)
}

/// The global quantities [`deconvolve()`] computes on `image` with `opts` (the sky, the Wiener
/// balance, the Richardson–Lucy offset, start and background, the starlet noise level), for
/// [`deconvolve_window`]. Errors as [`deconvolve()`].
pub fn deconvolve_globals(
    image: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    opts: &DeconvolveOptions,
) -> Result<DeconvolveGlobals> {
    opts.validate()?;
    crate::psf::check_fits_image(psf.dim(), image.dim())?;
    let psf = if opts.normalize_psf {
        crate::psf::normalize(psf)?.0
    } else {
        crate::psf::validate(psf)?;
        psf.to_owned()
    };
    let valid = image.mapv(f64::is_finite);
    if !valid.iter().any(|&b| b) {
        return Err(Error::input("every pixel is masked"));
    }
    let sky = match opts.sky {
        Some(v) => v,
        None => estimate_sky(image),
    };
    let work = work_image(opts.method, image, valid.view(), sky, None);
    let boundary = opts
        .boundary
        .unwrap_or(opts.method.default_boundary_when(true));
    compute_globals(
        opts.method,
        image,
        valid.view(),
        work.view(),
        sky,
        psf.view(),
        boundary,
        opts,
        None,
        true,
    )
}

/// Deconvolve one window of a larger image (a tile with its halo) with global quantities
/// computed beforehand on the whole image ([`deconvolve_globals`]); no tiling, no progress.
/// For the Fourier filters and unaccelerated Richardson–Lucy the core of the window equals the
/// whole-image result up to the boundary effect of the window's edge, which decays over the
/// halo; accelerated Richardson–Lucy and `starlet` adapt steps and thresholds to the window
/// (see the module documentation). `opts.tile`, `halo` and `sky` are not used (the sky is
/// `globals.sky`). Returns the window's result, NaN at masked pixels.
///
/// ```
/// use ndarray::{s, Array2};
/// use sparseinv::pipeline::{
///     deconvolve, deconvolve_globals, deconvolve_window, BoundaryMode, DeconvolveOptions, Method,
/// };
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let img = Array2::from_shape_fn((40, 40), |(i, j)| 5.0 + ((i * 7 + j * 3) % 11) as f64);
/// // windows default to the tiled boundary (reflect for Wiener); the whole image is
/// // compared under the same boundary
/// let opts = DeconvolveOptions {
///     method: Method::Wiener,
///     boundary: Some(BoundaryMode::Reflect),
///     ..Default::default()
/// };
/// let g = deconvolve_globals(img.view(), psf.view(), &opts).unwrap();
/// let whole = deconvolve(img.view(), psf.view(), &opts).unwrap().image;
/// let win = deconvolve_window(img.slice(s![.., ..]), psf.view(), &opts, &g).unwrap();
/// assert!((&whole - &win).iter().all(|d| d.abs() < 1e-12));
/// ```
pub fn deconvolve_window(
    window: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    opts: &DeconvolveOptions,
    globals: &DeconvolveGlobals,
) -> Result<Array2<f64>> {
    opts.validate()?;
    crate::psf::check_fits_image(psf.dim(), window.dim())?;
    let psf = if opts.normalize_psf {
        crate::psf::normalize(psf)?.0
    } else {
        crate::psf::validate(psf)?;
        psf.to_owned()
    };
    let valid = window.mapv(f64::is_finite);
    let method = opts.method;
    let boundary = opts.boundary.unwrap_or(method.default_boundary_when(true));
    let work = work_image(method, window, valid.view(), globals.sky, None);
    #[cfg(feature = "onnx")]
    let net = load_learned(opts)?;
    let solve = Solve::new(
        psf.view(),
        boundary,
        opts,
        globals,
        #[cfg(feature = "onnx")]
        net.as_ref(),
    );
    let x = solve.run(work.view(), None, None)?;
    Ok(finish(method, x, valid.view(), globals.sky, None).0)
}

#[cfg(feature = "fits")]
impl Deconvolved {
    /// Write the image as a 32-bit float FITS file (masked pixels NaN), atomically, with the
    /// non-structural cards of `header` (WCS, observation metadata) when given, the cards
    /// `DECONV` (method) and `DECBOUND` (boundary), and `history` followed by one HISTORY line
    /// saying the method, boundary, sky, iterations, `psf_label` and tiling. Refuses to
    /// overwrite an existing file unless `force`, and always refuses to overwrite the header's
    /// source file.
    pub fn write_fits(
        &self,
        path: impl AsRef<std::path::Path>,
        header: Option<&crate::io::fits::Header>,
        psf_label: &str,
        mut history: Vec<String>,
        force: bool,
    ) -> Result<()> {
        use crate::io::fits::{write_fits_2d_f64, Header, WriteOptions};
        let r = &self.report;
        let mut extra = Header::default();
        extra.set_str("DECONV", r.method.name(), "deconvolution method");
        extra.set_str(
            "DECBOUND",
            r.boundary.name(),
            "boundary model of the deconvolution",
        );
        history.push(format!(
            "method {}{}, boundary {}, sky {}, iterations {}, PSF {psf_label}{}",
            r.method.name(),
            if r.precision == Some(Precision::F32) {
                " (f32)"
            } else {
                ""
            },
            r.boundary.name(),
            match &r.sky_map {
                Some(m) => format!("map ({} px boxes, median {})", m.box_size, r.sky),
                None => r.sky.to_string(),
            },
            r.iterations,
            match &r.tiling {
                Some(t) => format!(", tiles {} px with halo {}", t.tile, t.halo),
                None => String::new(),
            }
        ));
        write_fits_2d_f64(
            path,
            self.image.view(),
            &WriteOptions {
                header,
                extra: Some(&extra),
                history,
                force,
            },
        )?;
        Ok(())
    }
}

/// Deconvolve a FITS image file by a PSF FITS file and write the result as FITS: the input's
/// header (WCS included) is kept, `DECONV`/`DECBOUND` cards and HISTORY lines are added, the
/// output is written atomically and never overwrites an existing file unless `opts.force`
/// (nor ever the input). `input` may select an HDU as `file.fits[N]`; the PSF is the first
/// image HDU of its file. Masked (BLANK/NaN) input pixels stay NaN in the output.
///
/// ```
/// use sparseinv::pipeline::{deconvolve_fits, DeconvolveOptions, Method};
/// let data = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("m13_wiener.fits");
/// let opts = DeconvolveOptions { method: Method::Wiener, ..Default::default() };
/// let r = deconvolve_fits(
///     format!("{data}/m13.fits"),
///     format!("{data}/m13_psf.fits"),
///     &out,
///     &opts,
/// )
/// .unwrap();
/// assert_eq!(r.report.method, Method::Wiener);
/// // the header (and WCS) of the input is kept, the method is recorded
/// let img = sparseinv::io::fits::read_fits(&out, None).unwrap();
/// assert_eq!(img.header.get_str("DECONV").as_deref(), Some("wiener"));
/// // an existing output is never overwritten without `force`
/// assert!(deconvolve_fits(
///     format!("{data}/m13.fits"),
///     format!("{data}/m13_psf.fits"),
///     &out,
///     &opts,
/// )
/// .is_err());
/// ```
#[cfg(feature = "fits")]
pub fn deconvolve_fits(
    input: impl AsRef<std::path::Path>,
    psf: impl AsRef<std::path::Path>,
    output: impl AsRef<std::path::Path>,
    opts: &DeconvolveOptions,
) -> Result<Deconvolved> {
    let (input, psf_path, output) = (input.as_ref(), psf.as_ref(), output.as_ref());
    if output.exists() && !opts.force {
        return Err(crate::io::IoError::Exists(output.to_path_buf()).into());
    }
    opts.validate()?;
    let psf = crate::psf::load_psf(psf_path, None)?;
    deconvolve_fits_with_psf(
        input,
        psf.view(),
        &psf_path.display().to_string(),
        output,
        opts,
        "library",
    )
}

/// [`deconvolve_fits`] with the PSF given as an array: `psf_label` names it in the output's
/// HISTORY line and `caller` names the program in the first one
/// (`sparseinv <version> deconvolve (<caller>)`; Python's `deconvolve_file` says `Python`).
/// The output is checked before the input is read (an existing file is an error unless
/// `opts.force`); the precision follows the input's `BITPIX` ([`Precision::for_bitpix`]).
///
/// ```
/// use sparseinv::pipeline::{deconvolve_fits_with_psf, DeconvolveOptions, Method};
/// let data = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("m13_tikhonov.fits");
/// let psf = sparseinv::psf::load_psf(format!("{data}/m13_psf.fits"), None).unwrap();
/// let opts = DeconvolveOptions { method: Method::Tikhonov, ..Default::default() };
/// let r = deconvolve_fits_with_psf(format!("{data}/m13.fits"), psf.view(), "m13 PSF", &out, &opts, "example")
///     .unwrap();
/// assert_eq!(r.report.method, Method::Tikhonov);
/// let img = sparseinv::io::fits::read_fits(&out, None).unwrap();
/// assert_eq!(img.header.get_str("DECONV").as_deref(), Some("tikhonov"));
/// ```
#[cfg(feature = "fits")]
pub fn deconvolve_fits_with_psf(
    input: impl AsRef<std::path::Path>,
    psf: ArrayView2<'_, f64>,
    psf_label: &str,
    output: impl AsRef<std::path::Path>,
    opts: &DeconvolveOptions,
    caller: &str,
) -> Result<Deconvolved> {
    let (input, output) = (input.as_ref(), output.as_ref());
    if output.exists() && !opts.force {
        return Err(crate::io::IoError::Exists(output.to_path_buf()).into());
    }
    let mut img = crate::io::fits::read_fits_spec(&input.to_string_lossy(), None)?;
    // the pixels move into the pipeline, which works on them in place
    let data = img.take_image2d()?;
    let opts = DeconvolveOptions {
        precision: opts.precision.for_bitpix(img.bitpix),
        ..opts.clone()
    };
    let r = deconvolve(data, psf, &opts).map_err(|e| e.in_file(&img.path))?;
    r.write_fits(
        output,
        Some(&img.header),
        psf_label,
        vec![format!(
            "sparseinv {} deconvolve ({caller})",
            env!("CARGO_PKG_VERSION")
        )],
        opts.force,
    )?;
    Ok(r)
}
