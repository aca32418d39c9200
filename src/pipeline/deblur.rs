//! Non-blind deblurring with deep priors: what `sparseinv deblur` does, on an in-memory image
//! (feature `onnx`). Plug-and-play proximal gradient with FISTA extrapolation, plug-and-play
//! ADMM or RED with a denoiser (starlet thresholding, the shipped network or any ONNX
//! denoiser), or the learned INFWIDE-style model (Wiener in image and feature space + fusion
//! network).
//!
//! All methods work on normalised data `u = (y − offset)/scale` (fixed, or the percentiles of
//! the data) and map the result back. `sigma` is the noise standard deviation in the data's
//! units (default: estimated from the finest starlet scale of the data). The plug-and-play
//! denoiser works at `σ_d = strength · σ`; PnP-ADMM uses `ρ = 1/strength²` and RED
//! `λ = 1/strength²` (the MAP correspondence for a denoiser at noise level `σ_d`), the gradient
//! step is `1/‖A‖²`. The blur operator of the iterative methods has reflective (half-sample
//! symmetric) borders; they start from the data. The default strength
//! ([`PNP_DEFAULT_STRENGTH`] = 3, [`PNP_DEFAULT_ITERS`] = 30 iterations) keeps PnP-ADMM above
//! its starting point on held-out photographs (`scripts/defaults/pnp_defaults.py`); at
//! strength 2 or less the iterations amplify noise at low noise levels, and PnP-FISTA with the
//! small shipped network at strength 1 can diverge.

use super::{DenoiseModel, Progress, ProgressUnit};
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2, Ix2};
use sparseinv_models::{
    builtin, DenoiserConfig, LearnedDeblur, Normalization, OnnxDenoiser, Tiling,
};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::{Control, IterInfo, Observer, StopCriteria};
use sparseinv_solvers::op::{Boundary, Conv2d};
use sparseinv_solvers::pnp::{pnp_admm_with, pnp_pgd, red, CirculantNormalInverse, PnpParams};
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Deblurring method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeblurMethod {
    /// Plug-and-play proximal gradient with FISTA extrapolation.
    PnpFista,
    /// Plug-and-play ADMM (conjugate-gradient x-update).
    PnpAdmm,
    /// Regularisation by denoising (gradient form).
    Red,
    /// The learned model (Wiener in image and feature space + fusion network).
    #[default]
    Learned,
}

impl DeblurMethod {
    /// The name used on the command line, in reports and in the `DEBLUR` FITS card.
    pub fn name(self) -> &'static str {
        match self {
            DeblurMethod::PnpFista => "pnp-fista",
            DeblurMethod::PnpAdmm => "pnp-admm",
            DeblurMethod::Red => "red",
            DeblurMethod::Learned => "learned",
        }
    }
}

/// The plug-and-play methods' default denoiser strength ([`DeblurOptions::strength`]).
///
/// Chosen on the photographs of `scripts/defaults/pnp_defaults.py` (seed 7) and checked on
/// held-out ones (seed 11): with PnP-ADMM and the shipped denoiser, strength 3 for
/// [`PNP_DEFAULT_ITERS`] iterations was above the blurred input on every case, where the former
/// default (strength 2, 50 iterations) fell below it at low noise (peak 1000 photons): below
/// strength 3 the iterations amplify noise the denoiser at `σ_d = strength · σ` no longer
/// removes, and the result degrades with the iteration count.
pub const PNP_DEFAULT_STRENGTH: f64 = 3.0;

/// The plug-and-play methods' default iteration count ([`DeblurOptions::iters`]): at the
/// default strength PnP-ADMM changes by less than 0.05 dB between 15 and 50 iterations on
/// the photographs of [`PNP_DEFAULT_STRENGTH`].
pub const PNP_DEFAULT_ITERS: usize = 30;

/// Options of [`deblur()`]. `Default`: the built-in learned model, σ estimated, for the
/// plug-and-play methods the built-in denoiser at strength [`PNP_DEFAULT_STRENGTH`] for
/// [`PNP_DEFAULT_ITERS`] iterations, percentile
/// normalisation 0.1 / 99.9, network blocks of 1024 px with 48 px of context.
#[derive(Debug, Clone, PartialEq)]
pub struct DeblurOptions {
    /// Method.
    pub method: DeblurMethod,
    /// Learned model (`learned`): `None` for the shipped one, or the JSON sidecar of a model
    /// (its two graphs beside it), or one of its graphs `NAME_enc.onnx` / `NAME_dec.onnx`
    /// (the sidecar is then `NAME.json` beside it).
    pub model: Option<PathBuf>,
    /// Denoiser of the plug-and-play methods.
    pub denoiser: DenoiseModel,
    /// Noise standard deviation in the data's units; `None`: estimated from the data.
    pub sigma: Option<f64>,
    /// Denoiser strength (> 0): σ_d = strength · σ, ρ = λ = 1/strength².
    pub strength: f64,
    /// Iterations of the plug-and-play methods (≥ 1).
    pub iters: usize,
    /// Fixed normalisation `(offset, scale)` (`scale > 0`); `None`: the
    /// [`percentiles`](Self::percentiles) of the data.
    pub normalization: Option<(f64, f64)>,
    /// Lower/upper percentiles of the automatic normalisation.
    pub percentiles: (f64, f64),
    /// Learned model: images larger than this (either axis) run the networks in blocks of
    /// this size (the Wiener stages always see the whole image). Plug-and-play with a
    /// network denoiser: the largest network input side; larger images are denoised in
    /// tiles of at most this size that share [`overlap`](Self::overlap) pixels
    /// ([`Tiling`]).
    pub tile: usize,
    /// Learned model: context added around each block (pixels). Plug-and-play with a network
    /// denoiser: the pixels neighbouring tiles share (cross-faded); `2⌈overlap/2⌉ < tile`.
    pub overlap: usize,
    /// Where and with how many threads the networks run.
    pub session: sparseinv_models::SessionOptions,
}

impl Default for DeblurOptions {
    fn default() -> Self {
        DeblurOptions {
            method: DeblurMethod::Learned,
            model: None,
            denoiser: DenoiseModel::Builtin,
            sigma: None,
            strength: PNP_DEFAULT_STRENGTH,
            iters: PNP_DEFAULT_ITERS,
            normalization: None,
            percentiles: (0.1, 99.9),
            tile: 1024,
            overlap: 48,
            session: Default::default(),
        }
    }
}

impl DeblurOptions {
    /// How the plug-and-play methods configure a network denoiser: identity normalisation
    /// (the data are already normalised) and the image in one piece up to
    /// [`tile`](Self::tile) px (tiles re-run the network on their overlaps: 9 tiles of 256 px,
    /// 2.25× the pixels, for a 512² image).
    pub fn network_denoiser_config(&self) -> DenoiserConfig {
        DenoiserConfig {
            normalization: Normalization::Affine {
                offset: 0.0,
                scale: 1.0,
            },
            tiling: Tiling {
                tile: self.tile,
                overlap: self.overlap,
            },
            ..Default::default()
        }
    }

    /// Check the options: `strength` finite and > 0, `iters ≥ 1`, `sigma` (when given) finite
    /// and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        use sparseinv_solvers::Error as E;
        if !(self.strength > 0.0 && self.strength.is_finite()) {
            return Err(E::param(
                "strength",
                format!("must be finite and > 0, got {}", self.strength),
            )
            .into());
        }
        if self.iters == 0 {
            return Err(E::param("iters", "must be at least 1").into());
        }
        if let Some(s) = self.sigma {
            if !(s >= 0.0 && s.is_finite()) {
                return Err(E::param("sigma", format!("must be finite and >= 0, got {s}")).into());
            }
        }
        Ok(())
    }
}

/// What [`deblur()`] did: the fields of `sparseinv deblur --json` that do not name the input
/// and output files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeblurReport {
    /// Method used.
    pub method: DeblurMethod,
    /// The learned model (`builtin` or its path) or the plug-and-play denoiser.
    pub model: String,
    /// Noise level used (data units).
    pub sigma: f64,
    /// Whether `sigma` was estimated from the data.
    pub sigma_estimated: bool,
    /// Normalisation offset.
    pub offset: f64,
    /// Normalisation scale.
    pub scale: f64,
    /// Iterations run (0 for the learned model).
    pub iterations: usize,
    /// Wall-clock seconds (after the normalisation and noise estimate).
    pub seconds: f64,
    /// Execution device of the networks (`cpu` or `cuda`).
    pub device: String,
    /// Image shape `[rows, cols]`.
    pub shape: [usize; 2],
}

/// The result of [`deblur()`].
#[derive(Debug, Clone)]
pub struct Deblurred {
    /// The deblurred image, in the data's units.
    pub image: Array2<f64>,
    /// What was done.
    pub report: DeblurReport,
}

/// The sidecar of a learned model given as `NAME.json`, `NAME_enc.onnx` or `NAME_dec.onnx`.
fn sidecar_of(model: &Path) -> PathBuf {
    let s = model.to_string_lossy();
    for suffix in ["_enc.onnx", "_dec.onnx"] {
        if let Some(stem) = s.strip_suffix(suffix) {
            return PathBuf::from(format!("{stem}.json"));
        }
    }
    model.to_path_buf()
}

/// A progress callback fed by the solvers' observer.
struct IterProgress<'a>(&'a mut dyn FnMut(Progress));

impl Observer<f64> for IterProgress<'_> {
    fn observe(&mut self, info: &IterInfo<'_, f64>) -> Control {
        (self.0)(Progress {
            unit: ProgressUnit::Iterations,
            done: info.iter,
            total: info.max_iters,
        });
        Control::Continue
    }
}

/// Run a plug-and-play method on normalised data `u` with noise level `s` (normalised).
fn run_pnp(
    opts: &DeblurOptions,
    u: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    s: f64,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Array2<f64>, usize)> {
    let denoiser: Box<dyn Denoiser<f64>> = match &opts.denoiser {
        DenoiseModel::Starlet { scales } => Box::new(StarletDenoiser::new(*scales)?),
        d => {
            let config = opts.network_denoiser_config();
            let net = match d {
                DenoiseModel::Onnx(p) => OnnxDenoiser::load(p, opts.session, config),
                _ => builtin::denoiser(opts.session, config),
            };
            Box::new(net?)
        }
    };
    let a = Conv2d::<f64>::new([u.nrows(), u.ncols()], psf, Boundary::Reflect)?;
    let f2 = opts.strength * opts.strength;
    let params = PnpParams {
        sigma: opts.strength * s,
        lambda: 1.0 / f2,
        rho: 1.0 / f2,
        stop: StopCriteria {
            max_iters: opts.iters,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut obs = IterProgress(progress);
    let y = u.into_dyn();
    // start from the data (a far better start than zeros for a unit-sum blur)
    let x0 = Some(u.into_dyn());
    let d = denoiser.as_ref();
    let (x, rep) = match opts.method {
        DeblurMethod::PnpFista => pnp_pgd(&a, y, d, x0, &params, Some(&mut obs))?,
        DeblurMethod::PnpAdmm => {
            // the x-update by the inverse of the mirror-grid system (a DCT filter): applied
            // once when it is exact (a PSF symmetric about each axis, to the CG tolerance),
            // else as the preconditioner of CG — the same iterates either way
            let m = CirculantNormalInverse::mirrored([u.nrows(), u.ncols()], psf, params.rho)?;
            let solver = m.solver_for(&a, params.cg_tol);
            pnp_admm_with(&a, solver, y, d, x0, &params, Some(&mut obs))?
        }
        DeblurMethod::Red => red(&a, y, d, x0, &params, Some(&mut obs))?,
        DeblurMethod::Learned => unreachable!("handled by the caller"),
    };
    Ok((x.into_dimensionality::<Ix2>()?, rep.iterations))
}

/// Deblur `image` (finite, data units) blurred by `psf` (centre at `(h/2, w/2)`, smaller than
/// the image; normalised to unit sum here); see the module documentation. Errors on
/// non-finite data, an unusable or too large PSF, invalid options, a model that cannot be
/// loaded (or no ONNX Runtime), and solver failures.
///
/// ```no_run
/// use ndarray::Array2;
/// use sparseinv::pipeline::{deblur, DeblurMethod, DeblurOptions};
/// let y = Array2::<f64>::from_elem((64, 64), 0.5);
/// let psf = Array2::<f64>::from_elem((5, 5), 1.0);
/// // the shipped learned model (needs ONNX Runtime)
/// let r = deblur(y.view(), psf.view(), &DeblurOptions::default()).unwrap();
/// println!("{} in {:.2} s", r.report.method.name(), r.report.seconds);
/// // plug-and-play ADMM with the starlet denoiser
/// let opts = DeblurOptions {
///     method: DeblurMethod::PnpAdmm,
///     denoiser: sparseinv::pipeline::DenoiseModel::Starlet { scales: 4 },
///     ..Default::default()
/// };
/// let r = deblur(y.view(), psf.view(), &opts).unwrap();
/// assert_eq!(r.image.dim(), (64, 64));
/// ```
pub fn deblur(
    image: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    opts: &DeblurOptions,
) -> Result<Deblurred> {
    deblur_with_progress(image, psf, opts, &mut |_| {})
}

/// [`deblur()`] that reports progress: iterations of the plug-and-play methods
/// ([`ProgressUnit::Iterations`]) or stages of the learned model ([`ProgressUnit::Steps`]).
pub fn deblur_with_progress(
    image: ArrayView2<'_, f64>,
    psf: ArrayView2<'_, f64>,
    opts: &DeblurOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Deblurred> {
    opts.validate()?;
    let y = image;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::input(format!("non-finite value at pixel {i}")));
    }
    let (psf, _) = crate::psf::normalize(psf)?;
    if psf.nrows() >= y.nrows() || psf.ncols() >= y.ncols() {
        return Err(Error::input(format!(
            "PSF {}×{} must be smaller than the image {}×{}",
            psf.nrows(),
            psf.ncols(),
            y.nrows(),
            y.ncols()
        )));
    }
    let normalization = match opts.normalization {
        Some((offset, scale)) => Normalization::Affine { offset, scale },
        None => Normalization::Percentiles {
            low: opts.percentiles.0,
            high: opts.percentiles.1,
        },
    };
    let flat: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let (offset, scale) = normalization.resolve(&flat)?;
    let sigma = match opts.sigma {
        Some(s) => s,
        None => sparseinv_solvers::deconv::estimate_noise_sigma(y)?,
    };
    let t0 = Instant::now();
    let (x, iterations, model_name) = if opts.method == DeblurMethod::Learned {
        let mut m = match &opts.model {
            None => builtin::deblur(opts.session),
            Some(p) => LearnedDeblur::load(sidecar_of(p), opts.session),
        }?;
        m.set_tiling(Some(Tiling {
            tile: opts.tile,
            overlap: opts.overlap,
        }))?;
        let x = m.deblur_with_progress(
            y,
            psf.view(),
            sigma,
            Normalization::Affine { offset, scale },
            &mut |done, total| {
                progress(Progress {
                    unit: ProgressUnit::Steps,
                    done,
                    total,
                })
            },
        )?;
        let name = opts
            .model
            .as_ref()
            .map_or_else(|| "builtin".to_string(), |p| p.display().to_string());
        (x, 0, name)
    } else {
        let u = y.mapv(|v| (v - offset) / scale);
        let (xu, it) = run_pnp(opts, u.view(), psf.view(), sigma / scale, progress)?;
        (xu.mapv(|v| scale * v + offset), it, opts.denoiser.name())
    };
    Ok(Deblurred {
        image: x,
        report: DeblurReport {
            method: opts.method,
            model: model_name,
            sigma,
            sigma_estimated: opts.sigma.is_none(),
            offset,
            scale,
            iterations,
            seconds: t0.elapsed().as_secs_f64(),
            device: match opts.session.device {
                sparseinv_models::Device::Cpu => "cpu".into(),
                _ => "cuda".into(),
            },
            shape: [y.nrows(), y.ncols()],
        },
    })
}
