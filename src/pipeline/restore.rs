//! Restoration with per-pixel uncertainty: what `sparseinv restore` does, on an in-memory
//! image (feature `onnx`). Variational inference in the latent space of a learned prior
//! (VBLE-xz, Biquard et al. 2024, arXiv:2412.04130; see [`sparseinv_models::vble`]) for
//!
//! ```text
//! y = W (D_f C (h ∗ x)) + n,    n ~ N(0, σ² I)
//! ```
//!
//! with `h` an optional PSF (deblurring), `D_f` the `f × f` block average (super-resolution
//! by `f`, the output on the `f`-times finer grid), `W` the observed pixels (the NaN pixels of
//! the input are missing: inpainting) and `C` the crop of the window the data see from a
//! larger grid `x` lives on.
//!
//! - **Grid.** The prior's networks need sides divisible by 16, and a periodic blur wraps
//!   around. So `x` lives on a grid of at least `f·H + max(k − 1, 16)` by
//!   `f·W + max(k − 1, 16)` pixels (`k` the PSF side), rounded up to a multiple of 16; the
//!   output window sits in its middle and the
//!   margin, which no data constrain, is filled in by the prior. Nothing of the blur wraps
//!   into the window, so the image's borders need no boundary assumption.
//! - **Units.** The prior was trained on images in `[0, 1]`; the data are mapped by
//!   `u = (y − offset)/scale` (pictures: `offset = 0`, `scale = 1`; otherwise the percentiles
//!   of the observed pixels unless given), `σ_u = σ/scale`, and the results mapped back:
//!   mean `scale · m + offset`, standard deviation `scale · s`.
//! - **Noise.** `σ` is given or estimated by the MAD of the finest starlet scale over the
//!   pixels whose 5 × 5 neighbourhood is fully observed ([`noise_sigma_observed`]). With
//!   scattered missing pixels (most pixels next to a hole) it cannot be estimated: an error
//!   asks for it.
//! - **Start.** `x₀ = Aᵀ(w u) ⊘ Aᵀw` on the window (the pseudo-inverse of the reference: the
//!   data blurred once more, the block average replicated, missing pixels by the median),
//!   continued into the margin by mirror reflection.
//!
//! The posterior mean is the restored image and the per-pixel standard deviation its
//! uncertainty; the central interval `mean ± 1.645 std` should cover the truth at about 90 %
//! of the pixels (see the README's calibration table).

use super::{Progress, ProgressUnit};
use crate::{Error, Result};
use ndarray::{s, Array2, ArrayView2, ArrayViewD, Axis, Ix2, Zip};
use sparseinv_models::vble::{self, SeededDraws, Variant, VbleParams, VblePhase, VblePrior};
use sparseinv_models::{Normalization, SessionOptions};
use sparseinv_solvers::op::{
    Boundary, Compose, Conv2d, Crop, Downsample, DownsampleMode, LinearOperator, Starlet,
};
use std::path::PathBuf;
use std::time::Instant;

/// How the observation was degraded (besides noise and missing pixels).
#[derive(Debug, Clone, PartialEq)]
pub enum Degradation {
    /// No blur, no resampling: denoising, and inpainting of the NaN pixels.
    None,
    /// Blur by this PSF (centre at `(h/2, w/2)`, normalised to unit sum here).
    Blur(Array2<f64>),
    /// Super-resolution: the data are `factor × factor` block averages of the image on the
    /// finer grid, optionally after a blur by `psf` sampled on the fine grid.
    Downsample {
        /// Resolution factor (≥ 2).
        factor: usize,
        /// PSF on the fine grid, if any.
        psf: Option<Array2<f64>>,
    },
}

impl Degradation {
    fn factor(&self) -> usize {
        match self {
            Degradation::Downsample { factor, .. } => *factor,
            _ => 1,
        }
    }
    fn psf(&self) -> Option<&Array2<f64>> {
        match self {
            Degradation::Blur(p) => Some(p),
            Degradation::Downsample { psf, .. } => psf.as_ref(),
            Degradation::None => None,
        }
    }
    /// A short description for reports: `none`, `blur 15x15`, `downsample 2`,
    /// `downsample 2 + blur 5x5`.
    pub fn describe(&self) -> String {
        let blur = self
            .psf()
            .map(|p| format!("blur {}x{}", p.nrows(), p.ncols()));
        match (self.factor(), blur) {
            (1, None) => "none".into(),
            (1, Some(b)) => b,
            (f, None) => format!("downsample {f}"),
            (f, Some(b)) => format!("downsample {f} + {b}"),
        }
    }
}

/// Options of [`restore()`]. `Default`: the shipped prior, VBLE-xz, the prior's default
/// steps (200) and samples (100), seed 0, σ estimated, percentile normalisation 0.1 / 99.9.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOptions {
    /// The prior: `None` for the shipped one, or the JSON sidecar of a trained one (its
    /// graphs beside it).
    pub model: Option<PathBuf>,
    /// Which posterior (VBLE-xz, the z-only VBLE, or the MAP of the same prior, which has no
    /// uncertainty).
    pub variant: Variant,
    /// Noise standard deviation in the data's units; `None`: estimated.
    pub sigma: Option<f64>,
    /// Adam steps; `None`: the prior's default.
    pub steps: Option<usize>,
    /// Posterior samples (≥ 2); `None`: the prior's default.
    pub samples: Option<usize>,
    /// Seed of the random draws (results are reproducible for a seed and thread count).
    pub seed: u64,
    /// Keep the posterior samples in the result.
    pub keep_samples: bool,
    /// Fixed normalisation `(offset, scale)`; `None`: the [`percentiles`](Self::percentiles)
    /// of the observed pixels.
    pub normalization: Option<(f64, f64)>,
    /// Lower/upper percentiles of the automatic normalisation.
    pub percentiles: (f64, f64),
    /// Where and with how many threads the networks run.
    pub session: SessionOptions,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            model: None,
            variant: Variant::VbleXz,
            sigma: None,
            steps: None,
            samples: None,
            seed: 0,
            keep_samples: false,
            normalization: None,
            percentiles: (0.1, 99.9),
            session: SessionOptions::default(),
        }
    }
}

/// The name of a variant in reports and on the command line.
pub fn variant_name(v: Variant) -> &'static str {
    match v {
        Variant::VbleXz => "vble-xz",
        Variant::ZOnly => "vble-z",
        Variant::Map => "map",
    }
}

/// What [`restore()`] did: the fields of `sparseinv restore --json` that do not name files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestoreReport {
    /// `vble-xz`, `vble-z` or `map`.
    pub method: String,
    /// The prior (`builtin` or its sidecar).
    pub model: String,
    /// [`Degradation::describe`].
    pub degradation: String,
    /// Noise level used (data units).
    pub sigma: f64,
    /// Whether `sigma` was estimated.
    pub sigma_estimated: bool,
    /// Normalisation offset.
    pub offset: f64,
    /// Normalisation scale.
    pub scale: f64,
    /// Input shape `[rows, cols]`.
    pub input_shape: [usize; 2],
    /// Output shape (the input's times the resolution factor).
    pub output_shape: [usize; 2],
    /// The grid the prior worked on (output plus margin, multiples of 16).
    pub grid: [usize; 2],
    /// Missing (NaN) input pixels.
    pub missing: usize,
    /// Adam steps run.
    pub steps: usize,
    /// Posterior samples drawn (0 for MAP).
    pub samples: usize,
    /// The loss (negative ELBO up to a constant; for MAP the MAP objective) before every
    /// step, in normalised units.
    pub loss: Vec<f64>,
    /// Mean of the per-pixel standard deviation over the output (data units; NaN for MAP).
    pub mean_std: f64,
    /// Seconds in the networks (ONNX Runtime).
    pub onnx_seconds: f64,
    /// Wall-clock seconds of the restoration (after reading and the noise estimate).
    pub seconds: f64,
    /// Execution device of the networks.
    pub device: String,
}

/// The result of [`restore()`].
#[derive(Debug, Clone)]
pub struct Restored {
    /// Posterior mean (MMSE estimate), data units, `output_shape`.
    pub mean: Array2<f64>,
    /// Per-pixel posterior standard deviation (data units); `None` for MAP.
    pub std: Option<Array2<f64>>,
    /// The posterior samples (data units) when [`RestoreOptions::keep_samples`] is set.
    pub samples: Option<Vec<Array2<f64>>>,
    /// What was done.
    pub report: RestoreReport,
}

/// Side of the blocks of [`noise_sigma_observed`]'s local estimate.
const NOISE_BLOCK: usize = 16;
/// Percentile of the block estimates taken by [`noise_sigma_observed`].
const NOISE_PERCENTILE: f64 = 10.0;

/// The finest starlet scale of `y` (missing pixels filled by the median of the observed ones)
/// and, per pixel, whether its whole 5 × 5 neighbourhood (the scale's support) is observed.
fn finest_scale_observed(y: ArrayView2<'_, f64>) -> Result<(Array2<f64>, Array2<bool>, f64)> {
    let (h, w) = y.dim();
    let mut obs: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    let med = sparseinv_solvers::stats::median_mut(&mut obs)
        .ok_or_else(|| Error::input("every pixel is missing"))?;
    let filled = y.mapv(|v| if v.is_finite() { v } else { med });
    // integral image of the missing pixels
    let mut integ = Array2::<u32>::zeros((h + 1, w + 1));
    for i in 0..h {
        for j in 0..w {
            integ[[i + 1, j + 1]] = integ[[i, j + 1]] + integ[[i + 1, j]] - integ[[i, j]]
                + u32::from(!y[[i, j]].is_finite());
        }
    }
    let clean = Array2::from_shape_fn((h, w), |(i, j)| {
        let (i0, i1) = (i.saturating_sub(2), (i + 3).min(h));
        let (j0, j1) = (j.saturating_sub(2), (j + 3).min(w));
        integ[[i1, j1]] + integ[[i0, j0]] == integ[[i0, j1]] + integ[[i1, j0]]
    });
    let st = Starlet::<f64>::new([h, w], 1)?;
    let coeffs = st.apply(filled.view().into_dyn())?;
    let w1 = coeffs
        .index_axis(Axis(0), 0)
        .to_owned()
        .into_dimensionality::<Ix2>()?;
    Ok((w1, clean, st.noise_std()[0]))
}

/// The [`NOISE_PERCENTILE`]th percentile of the robust standard deviations (MAD/0.6745) of
/// the usable coefficients of `w1` in `NOISE_BLOCK`² blocks (blocks with at least 3/4 of
/// their coefficients usable), or `None` with fewer than 8 such blocks.
fn block_percentile(w1: &Array2<f64>, clean: &Array2<bool>) -> Option<f64> {
    let b = NOISE_BLOCK;
    let (h, w) = w1.dim();
    let mut est = Vec::new();
    for i in (0..h.saturating_sub(b - 1)).step_by(b) {
        for j in (0..w.saturating_sub(b - 1)).step_by(b) {
            let v: Vec<f64> = w1
                .slice(s![i..i + b, j..j + b])
                .iter()
                .zip(clean.slice(s![i..i + b, j..j + b]).iter())
                .filter(|(_, &c)| c)
                .map(|(&x, _)| x)
                .collect();
            if 4 * v.len() >= 3 * b * b {
                est.push(sparseinv_solvers::stats::mad_sigma(&v)?);
            }
        }
    }
    (est.len() >= 8)
        .then(|| sparseinv_solvers::stats::percentile_mut(&mut est, NOISE_PERCENTILE))?
}

/// What [`block_percentile`] gives on unit white noise (256 × 256, fixed seed): the factor
/// that makes the block estimate unbiased on pure noise (about 0.9: the 10th percentile of
/// 256 block estimates sits below their median).
fn block_percentile_calibration() -> f64 {
    static C: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *C.get_or_init(|| {
        let n = sparseinv_solvers::random::randn::<f64>(&[256, 256], 0x5eed)
            .into_dimensionality::<Ix2>()
            .expect("2-D");
        let (w1, clean, s1) = finest_scale_observed(n.view()).expect("white noise");
        block_percentile(&w1, &clean).expect("256 blocks") / s1
    })
}

/// Noise standard deviation of `y` (NaN = missing) from the finest starlet scale `w₁` over
/// the pixels whose 5 × 5 neighbourhood (the scale's support) is fully observed, so that the
/// median fill of missing pixels is never seen; `σ₁` is the scale's response to unit white
/// noise. Two estimates:
///
/// - global: `MAD(w₁)/0.6745/σ₁` over all those pixels (Donoho's estimate); textures and edges
///   that reach the finest scale bias it upwards;
/// - local: the 10th percentile, over 16 × 16 blocks, of the same estimate per block, divided
///   by what this statistic gives on white noise (calibrated once by simulation), i.e. the
///   noise of the flattest regions: unbiased on white noise, far less sensitive to texture.
///
/// Returns `(min(global, local), pixels used)` (the global one alone when fewer than 8 blocks
/// qualify). On the README's satellite demos (true σ 0.02, 0.01, 0.02) the global estimate
/// gave 0.0227, 0.051 and 0.038. Assumes white noise of one level over the image. Errors
/// when fewer than 256 pixels qualify (scattered missing pixels: give σ).
pub fn noise_sigma_observed(y: ArrayView2<'_, f64>) -> Result<(f64, usize)> {
    let (w1, clean, s1) = finest_scale_observed(y)?;
    let used: Vec<f64> = w1
        .iter()
        .zip(clean.iter())
        .filter(|(_, &c)| c)
        .map(|(&v, _)| v)
        .collect();
    if used.len() < 256 {
        return Err(Error::input(format!(
            "cannot estimate the noise: only {} pixels have their whole 5x5 neighbourhood \
             observed (at least 256 needed); give the noise level (--sigma)",
            used.len()
        )));
    }
    let global = sparseinv_solvers::stats::mad_sigma(&used).unwrap_or(0.0) / s1;
    let sigma = match block_percentile(&w1, &clean) {
        Some(p) => global.min(p / s1 / block_percentile_calibration()),
        None => global,
    };
    Ok((sigma, used.len()))
}

/// A boxed real operator (the composed forward model).
type BoxedOperator = Box<dyn LinearOperator<f64>>;

/// The forward operator of [`restore()`] for an `[h, w]` observation: `A = D_f ∘ C ∘ H` on a
/// grid of `round16(f·h + max(k₀ − 1, 16)) × round16(f·w + max(k₁ − 1, 16))` pixels (`k` the
/// PSF's shape), `H` the periodic convolution by `psf` on the grid (if any), `C` the crop of the
/// `f·h × f·w` window in its middle, `D_f` the `f × f` block average (if `f > 1`). Returns
/// `(A, grid, window offset)`. The window is at least `k − 1` pixels from the grid's far side
/// in total, so no part of the periodic blur wraps into it.
pub(crate) fn forward_operator(
    psf: Option<&Array2<f64>>,
    f: usize,
    [h, w]: [usize; 2],
) -> Result<(BoxedOperator, [usize; 2], [usize; 2])> {
    let fine = [f * h, f * w];
    let ext = psf.map_or([0, 0], |p| [p.nrows() - 1, p.ncols() - 1]);
    if ext[0] >= fine[0] || ext[1] >= fine[1] {
        return Err(Error::input(format!(
            "PSF {}×{} must be smaller than the (output) image {}×{}",
            ext[0] + 1,
            ext[1] + 1,
            fine[0],
            fine[1]
        )));
    }
    let round16 = |n: usize| n.div_ceil(16).max(2) * 16;
    // at least 8 px of margin on each side: the networks' own borders (zero padding of the
    // convolutions) stay out of the window, else the edge pixels get a spurious std
    let grid = [
        round16(fine[0] + ext[0].max(16)),
        round16(fine[1] + ext[1].max(16)),
    ];
    let offset = [(grid[0] - fine[0]) / 2, (grid[1] - fine[1]) / 2];
    let crop = Crop::new(&grid, &offset, &fine)?;
    let windowed: Box<dyn LinearOperator<f64>> = match psf {
        Some(p) => Box::new(Compose::<f64, _, _>::new(
            crop,
            Conv2d::<f64>::new(grid, p.view(), Boundary::Circular)?,
        )?),
        None => Box::new(crop),
    };
    let op: Box<dyn LinearOperator<f64>> = if f > 1 {
        let d = Downsample::with_mode(&fine, &[f, f], DownsampleMode::Mean)?;
        Box::new(Compose::<f64, _, _>::new(d, windowed)?)
    } else {
        windowed
    };
    Ok((op, grid, offset))
}

/// `a` mirrored (half-sample symmetric, period `2n`) into an array of `shape` with `a` at
/// `offset`.
fn mirror_pad(a: ArrayView2<'_, f64>, shape: [usize; 2], offset: [usize; 2]) -> Array2<f64> {
    let fold = |i: usize, o: usize, n: usize| {
        let p = 2 * n as i64;
        let j = (i as i64 - o as i64).rem_euclid(p);
        (if j >= n as i64 { p - 1 - j } else { j }) as usize
    };
    let (n0, n1) = a.dim();
    Array2::from_shape_fn(shape, |(i, j)| {
        a[[fold(i, offset[0], n0), fold(j, offset[1], n1)]]
    })
}

/// Restore `image` (data units, NaN = missing) degraded by `degradation`: the posterior
/// mean, per-pixel standard deviation and optionally samples; see the module
/// documentation. Errors on infinite values, an image with no observed pixel, an unusable
/// PSF, a noise level that cannot be estimated, invalid options, and a prior that cannot be
/// loaded (or no ONNX Runtime).
///
/// ```no_run
/// use ndarray::Array2;
/// use sparseinv::pipeline::{restore, Degradation, RestoreOptions};
/// let y = Array2::<f64>::from_shape_fn((64, 64), |(i, j)| ((i * j) % 7) as f64 / 7.0);
/// let psf = Array2::<f64>::from_elem((5, 5), 1.0);
/// let opts = RestoreOptions { sigma: Some(0.01), ..Default::default() };
/// let r = restore(y.view(), &Degradation::Blur(psf), &opts).unwrap();
/// let std = r.std.unwrap();
/// println!("mean std {:.4}, {:.1} s", r.report.mean_std, r.report.seconds);
/// assert_eq!(std.dim(), (64, 64));
/// ```
pub fn restore(
    image: ArrayView2<'_, f64>,
    degradation: &Degradation,
    opts: &RestoreOptions,
) -> Result<Restored> {
    restore_with_progress(image, degradation, opts, &mut |_| {})
}

/// [`restore()`] that reports progress: the Adam steps ([`ProgressUnit::Iterations`]), then
/// the posterior samples ([`ProgressUnit::Steps`]).
pub fn restore_with_progress(
    image: ArrayView2<'_, f64>,
    degradation: &Degradation,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Restored> {
    use sparseinv_solvers::Error as E;
    let (h, w) = image.dim();
    if h == 0 || w == 0 {
        return Err(Error::input("empty image"));
    }
    if let Some(i) = image.iter().position(|v| v.is_infinite()) {
        return Err(Error::input(format!("infinite value at pixel {i}")));
    }
    let missing = image.iter().filter(|v| v.is_nan()).count();
    if missing == h * w {
        return Err(Error::input("every pixel is missing (NaN)"));
    }
    if let Some(s) = opts.sigma {
        if !(s > 0.0 && s.is_finite()) {
            return Err(E::param("sigma", format!("must be finite and > 0, got {s}")).into());
        }
    }
    if opts.samples.is_some_and(|s| s < 2) && opts.variant != Variant::Map {
        return Err(E::param("samples", "need at least 2 for a standard deviation").into());
    }
    if opts.steps == Some(0) {
        return Err(E::param("steps", "must be at least 1").into());
    }
    let f = degradation.factor();
    if f == 0 || f > 16 {
        return Err(E::param("factor", format!("must be in 1..=16, got {f}")).into());
    }
    let psf = match degradation.psf() {
        Some(p) => Some(crate::psf::normalize(p.view())?.0),
        None => None,
    };
    let fine = [f * h, f * w];
    let (op, grid, offset) = forward_operator(psf.as_ref(), f, [h, w])?;

    // normalisation and noise
    let observed: Vec<f32> = image
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f32)
        .collect();
    let normalization = match opts.normalization {
        Some((offset, scale)) => Normalization::Affine { offset, scale },
        None => Normalization::Percentiles {
            low: opts.percentiles.0,
            high: opts.percentiles.1,
        },
    };
    let (off, scale) = normalization.resolve(&observed)?;
    let sigma = match opts.sigma {
        Some(s) => s,
        None => {
            let (s, _) = noise_sigma_observed(image)?;
            if s.is_nan() || s <= 0.0 {
                return Err(Error::input(
                    "the estimated noise level is 0 (noiseless or quantised data?): give the \
                     noise level (--sigma)",
                ));
            }
            s
        }
    };
    let u = image.mapv(|v| (v - off) / scale);

    // the start: A^T(w u) / A^T w on the window, mirrored into the margin
    let wts = u.mapv(|v| if v.is_nan() { 0.0 } else { 1.0 });
    let wu = u.mapv(|v| if v.is_nan() { 0.0 } else { v });
    let num = op.adjoint(wu.view().into_dyn())?;
    let den = op.adjoint(wts.view().into_dyn())?;
    let win = |a: ArrayViewD<'_, f64>| -> Result<Array2<f64>> {
        Ok(a.into_dimensionality::<Ix2>()?
            .slice(s![
                offset[0]..offset[0] + fine[0],
                offset[1]..offset[1] + fine[1]
            ])
            .to_owned())
    };
    let (num, den) = (win(num.view())?, win(den.view())?);
    let top = den.iter().fold(0f64, |m, &v| m.max(v));
    let cut = 1e-6 * top;
    let mut vals: Vec<f64> = Zip::from(&num)
        .and(&den)
        .fold(Vec::new(), |mut acc, &a, &d| {
            if d > cut {
                acc.push(a / d);
            }
            acc
        });
    let fill = sparseinv_solvers::stats::median_mut(&mut vals).unwrap_or(0.5);
    let x0w = Zip::from(&num)
        .and(&den)
        .map_collect(|&a, &d| if d > cut { a / d } else { fill });
    let x0 = mirror_pad(x0w.view(), grid, offset);

    // the prior and the inference
    let prior = match &opts.model {
        None => VblePrior::builtin(opts.session)?,
        Some(p) => VblePrior::load(p, opts.session)?,
    };
    let mut params = VbleParams::new(sigma / scale);
    params.steps = opts.steps;
    params.samples = opts.samples;
    params.seed = opts.seed;
    params.variant = opts.variant;
    params.keep_samples = opts.keep_samples;
    params.init = Some(x0);
    let t0 = Instant::now();
    let out = vble::restore_with_progress(
        &prior,
        op.as_ref(),
        u.view().into_dyn(),
        &params,
        &mut SeededDraws::new(opts.seed),
        &mut |phase, done, total| {
            progress(Progress {
                unit: match phase {
                    VblePhase::Optimise => ProgressUnit::Iterations,
                    VblePhase::Sample => ProgressUnit::Steps,
                },
                done,
                total,
            })
        },
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let crop_back = |a: &Array2<f64>| {
        a.slice(s![
            offset[0]..offset[0] + fine[0],
            offset[1]..offset[1] + fine[1]
        ])
        .to_owned()
    };
    let mean = crop_back(&out.mean).mapv(|v| scale * v + off);
    let std = out.std.as_ref().map(|s| crop_back(s).mapv(|v| scale * v));
    let samples = out.samples.as_ref().map(|ss| {
        ss.iter()
            .map(|s| crop_back(s).mapv(|v| scale * v + off))
            .collect()
    });
    let mean_std = std.as_ref().and_then(|s| s.mean()).unwrap_or(f64::NAN);
    Ok(Restored {
        mean,
        std,
        samples,
        report: RestoreReport {
            method: variant_name(opts.variant).into(),
            model: opts
                .model
                .as_ref()
                .map_or_else(|| "builtin".to_string(), |p| p.display().to_string()),
            degradation: degradation.describe(),
            sigma,
            sigma_estimated: opts.sigma.is_none(),
            offset: off,
            scale,
            input_shape: [h, w],
            output_shape: fine,
            grid,
            missing,
            steps: out.report.steps,
            samples: out.report.samples,
            loss: out.report.loss,
            mean_std,
            onnx_seconds: out.report.onnx_seconds,
            seconds,
            device: match opts.session.device {
                sparseinv_models::Device::Cpu => "cpu".into(),
                _ => "cuda".into(),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparseinv_solvers::random::randn;

    #[test]
    fn noise_estimate_skips_the_neighbourhood_of_holes() {
        // white noise of σ = 0.1 on a flat image, a 40×40 hole set to NaN: the estimate sees
        // only fully observed neighbourhoods, so the hole (filled by the median) is invisible
        // (the hole holds noise of σ = 1 that must not be seen)
        let n = randn::<f64>(&[128, 128], 5)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let mut y = n.mapv(|v| 3.0 + 0.1 * v);
        y.slice_mut(s![30..70, 50..90])
            .mapv_inplace(|v| 3.0 + 10.0 * (v - 3.0));
        let unmarked = y.clone();
        y.slice_mut(s![30..70, 50..90]).fill(f64::NAN);
        let (s, used) = noise_sigma_observed(y.view()).unwrap();
        assert!((s - 0.1).abs() < 0.006, "σ estimate {s}");
        assert_eq!(used, 128 * 128 - 44 * 44);
        // the same data with the hole not marked: the global estimate is pulled up (so the
        // exclusion above is what keeps it right; this can fail)
        let (w1, clean, s1) = finest_scale_observed(unmarked.view()).unwrap();
        assert!(clean.iter().all(|&c| c));
        let s_bad = sparseinv_solvers::stats::mad_sigma(w1.as_slice().unwrap()).unwrap() / s1;
        assert!(s_bad > 0.108, "{s_bad}");
    }

    #[test]
    fn noise_estimate_sees_through_texture() {
        // σ = 0.05 white noise; the left 70 % of the columns carry a strong fine texture
        // (period 3 px, amplitude 0.3), the rest is flat: the global MAD is far too high,
        // the flattest blocks give the noise (the test can fail: the global alone would)
        let n = randn::<f64>(&[192, 192], 8)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let y = Array2::from_shape_fn((192, 192), |(i, j)| {
            let tex = if j < 134 {
                0.3 * (2.0 * std::f64::consts::PI * (i + 2 * j) as f64 / 3.0).sin()
            } else {
                0.0
            };
            0.5 + tex + 0.05 * n[[i, j]]
        });
        let (w1, clean, s1) = finest_scale_observed(y.view()).unwrap();
        let used: Vec<f64> = w1
            .iter()
            .zip(&clean)
            .filter(|(_, &c)| c)
            .map(|(&v, _)| v)
            .collect();
        let global = sparseinv_solvers::stats::mad_sigma(&used).unwrap() / s1;
        assert!(global > 0.1, "global {global}");
        let (s, _) = noise_sigma_observed(y.view()).unwrap();
        assert!((s / 0.05 - 1.0).abs() < 0.12, "σ {s}");
        // on pure noise the calibrated local estimate is unbiased
        let m = randn::<f64>(&[256, 320], 9)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let (s, _) = noise_sigma_observed(m.mapv(|v| 2.0 * v).view()).unwrap();
        assert!((s / 2.0 - 1.0).abs() < 0.06, "σ {s}");
        let c = block_percentile_calibration();
        assert!(c > 0.8 && c < 1.0, "calibration {c}");
    }

    #[test]
    fn noise_estimate_refuses_scattered_holes() {
        let n = randn::<f64>(&[64, 64], 6)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let y = Array2::from_shape_fn((64, 64), |(i, j)| {
            if (i + 2 * j) % 3 == 0 {
                f64::NAN
            } else {
                n[[i, j]]
            }
        });
        let e = noise_sigma_observed(y.view()).unwrap_err().to_string();
        assert!(e.contains("--sigma"), "{e}");
    }

    #[test]
    fn forward_operator_is_the_cropped_convolution_and_block_average() {
        use sparseinv_solvers::testing::{assert_adjoint, direct_conv_same};
        let psf = Array2::from_shape_fn((5, 7), |(i, j)| 1.0 + (i * 7 + j) as f64);
        let psf = &psf / psf.sum();
        for f in [1usize, 2] {
            let (op, grid, off) = forward_operator(Some(&psf), f, [13, 10]).unwrap();
            let fine = [13 * f, 10 * f];
            assert!(grid[0] % 16 == 0 && grid[1] % 16 == 0);
            assert!(grid[0] >= fine[0] + 4 && grid[1] >= fine[1] + 6, "{grid:?}");
            assert_eq!(op.range_shape(), &[13, 10]);
            assert_adjoint(op.as_ref(), 1e-12);
            // brute force: zero-boundary 'same' convolution on the grid (the window is far
            // enough from the edges for it to equal the periodic one there), crop, average
            let x = randn::<f64>(&grid, 9).into_dimensionality::<Ix2>().unwrap();
            let full = direct_conv_same(x.view(), psf.view(), false);
            let win = full.slice(s![off[0]..off[0] + fine[0], off[1]..off[1] + fine[1]]);
            let want = Array2::from_shape_fn((13, 10), |(i, j)| {
                win.slice(s![f * i..f * i + f, f * j..f * j + f]).sum() / (f * f) as f64
            });
            let got = op.apply(x.view().into_dyn()).unwrap();
            let err = (&got.into_dimensionality::<Ix2>().unwrap() - &want)
                .iter()
                .fold(0f64, |m, v| m.max(v.abs()));
            assert!(err < 1e-12, "f = {f}: {err}");
        }
        // no PSF: a plain crop with a margin of at least 8 px a side
        let (op, grid, off) = forward_operator(None, 1, [20, 40]).unwrap();
        assert_eq!(grid, [48, 64]);
        assert_eq!(off, [14, 12]);
        assert_eq!(op.domain_shape(), &[48, 64]);
        assert!(forward_operator(Some(&psf), 1, [4, 10]).is_err());
    }

    #[test]
    fn mirror_pad_is_half_sample_symmetric() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f64);
        let p = mirror_pad(a.view(), [9, 12], [3, 4]);
        assert_eq!(p.slice(s![3..6, 4..8]), a);
        // one step out of each edge is the edge pixel itself, two steps the next one
        assert_eq!(p[[2, 4]], a[[0, 0]]);
        assert_eq!(p[[1, 4]], a[[1, 0]]);
        assert_eq!(p[[6, 7]], a[[2, 3]]);
        assert_eq!(p[[7, 8]], a[[1, 3]]);
        assert_eq!(p[[3, 3]], a[[0, 0]]);
        // period 2n: row 3 + 6 = row 9 would equal row 3 (outside), row 0 = 2·3 − 1 − 3 → a[2]
        assert_eq!(p[[0, 4]], a[[2, 0]]);
    }

    #[test]
    fn describe_names_the_degradation() {
        let p = Array2::<f64>::ones((5, 3));
        assert_eq!(Degradation::None.describe(), "none");
        assert_eq!(Degradation::Blur(p.clone()).describe(), "blur 5x3");
        assert_eq!(
            Degradation::Downsample {
                factor: 2,
                psf: Some(p)
            }
            .describe(),
            "downsample 2 + blur 5x3"
        );
    }
}
