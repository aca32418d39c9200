//! `sparseinv deconvolve IN.fits --psf PSF.fits --method wiener|tikhonov|rl|starlet -o OUT.fits`:
//! a thin layer over [`sparseinv::pipeline::deconvolve`] (which documents the method in full);
//! deconvolve a FITS image by a known PSF (header and WCS kept, masked pixels left out of the
//! data term of the iterative methods), in overlapping tiles for large images.
//!
//! # Boundaries
//! `--boundary zero|reflect|periodic|smooth`. Default: `zero` for `rl` and `starlet` (the
//! unknown image is zero beyond the edges and the data term only covers the image, `A` =
//! `Same` convolution; Richardson–Lucy divides by `Aᵀ1`, so edge pixels are not darkened)
//! and `smooth` for `wiener` and `tikhonov` (the image split into a periodic part, filtered
//! on the image's own grid, and a smooth part added back, so a sky background makes no edge
//! step that rings). `reflect` continues the image by its mirror images over three PSF
//! extents on each side, cross-faded across the FFT's wrap (the default of `learned`);
//! `periodic` is the circular model of the Fourier filters.
//!
//! # Sky
//! The sky level (`--sky`; default: the 3σ-clipped median of the valid pixels, from a regular
//! subsample of at most about 10⁶ of them) is a known background: subtracted before and
//! added back after the deconvolution (for Richardson–Lucy it is the constant term of the
//! Poisson model, `y ~ P(A x + sky)`). Positivity then applies to the light above the sky, so
//! a bright star cannot dig a dark "moat" below the sky level around itself, which the model
//! `y ~ P(A x)` does as soon as the PSF's wings do not match the star's exactly (its
//! positivity bound, 0, is far below the sky); and the zero boundary means "sky beyond the
//! edges".
//!
//! # Masked pixels
//! NaN and BLANK pixels are left out of the data term of `rl` and `starlet`; for the Fourier
//! methods (which have no data weights) they are first filled with the local median of the
//! valid pixels around them (5×5 window, growing into large holes). In the output they stay
//! NaN (undefined), whatever the method: a model value there would not be a measurement.
//!
//! # Tiling
//! Images with a side above 2048 px (8192 px for `wiener` and `tikhonov`, whose tiles save
//! little memory and cost time) are processed in 1024 px tiles by default (`--tile N` to
//! choose, `--tile 0` never to tile), each with a halo of context (`--halo`, default twice the
//! PSF size) and raised-cosine blending (see `sparseinv::tiling`). Quantities that must be the
//! same in every tile are computed once on the whole image: the data offset and starting
//! value of Richardson–Lucy, the Wiener balance and the noise level of the starlet
//! thresholds. Tiled Wiener and Tikhonov equal their untiled results to ~1e-6 of the peak,
//! unaccelerated Richardson–Lucy (`--no-accelerate`) to better than 1e-4 (tests/cli_deconvolve.rs).
//! The Biggs–Andrews step of accelerated Richardson–Lucy and the per-scale thresholds and
//! step sizes of `starlet` are computed per tile, so those differ more at a few pixels near
//! the seams (on a 96×72 test field with 32 px tiles: up to 0.7 % of the peak for accelerated
//! Richardson–Lucy and 0.3 % for `starlet`; the median difference is 0).

use anyhow::Context;
use clap::{Args, ValueEnum};
use sparseinv::io::image::{Limits, Stretch};
use sparseinv::pipeline::{
    deconvolve_with_progress, BoundaryMode, DeconvolveOptions, Method as PMethod, Precision,
    ProgressUnit,
};
use std::path::PathBuf;

/// Deconvolution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Wiener filter (Fourier; masked pixels filled with a local median first).
    Wiener,
    /// Tikhonov with a Laplacian regulariser (Fourier; masked pixels filled likewise).
    Tikhonov,
    /// Richardson–Lucy (masked pixels excluded, Biggs–Andrews acceleration).
    Rl,
    /// Starlet-sparse analysis ℓ1 with positivity (masked pixels excluded).
    Starlet,
    /// Tikhonov, then the learned galaxy network (`--model`; trained on galaxies seen through
    /// ground-based PSFs of 2.5–6 px FWHM).
    Learned,
}

/// How the image is extended beyond its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BoundaryArg {
    /// Zero beyond the edges (the data term covers the image only).
    Zero,
    /// Mirror image beyond the edges (`d c b a | a b c d`).
    Reflect,
    /// Periodic (circular) image.
    Periodic,
    /// Fourier methods only (the default of wiener and tikhonov): the image split into a
    /// periodic part, filtered on its own grid, and a smooth part added back (Moisan 2011).
    Smooth,
}

impl From<BoundaryArg> for BoundaryMode {
    fn from(b: BoundaryArg) -> Self {
        match b {
            BoundaryArg::Zero => BoundaryMode::Zero,
            BoundaryArg::Reflect => BoundaryMode::Reflect,
            BoundaryArg::Periodic => BoundaryMode::Periodic,
            BoundaryArg::Smooth => BoundaryMode::Smooth,
        }
    }
}

impl From<Method> for PMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Wiener => PMethod::Wiener,
            Method::Tikhonov => PMethod::Tikhonov,
            Method::Rl => PMethod::Rl,
            Method::Starlet => PMethod::Starlet,
            Method::Learned => PMethod::Learned,
        }
    }
}

/// Display stretch of the PNG preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StretchArg {
    /// asinh (softening 0.1) between the 0.5 and 99.8 percentiles of the input.
    Asinh,
    /// Linear between IRAF's zscale limits of the input (astropy's `ZScaleInterval`).
    Zscale,
}

/// Arguments of `sparseinv deconvolve`.
#[derive(Args, Debug)]
pub struct DeconvolveArgs {
    /// Input FITS image (`file.fits` or `file.fits[N]`).
    pub input: String,
    /// HDU to read (0 = primary); default: the first HDU with image data.
    #[arg(long)]
    pub hdu: Option<usize>,
    /// PSF FITS image (centre at (h/2, w/2); normalised to unit sum unless --no-normalize).
    #[arg(long)]
    pub psf: PathBuf,
    /// Use the PSF as stored, without normalising it to unit sum.
    #[arg(long)]
    pub no_normalize: bool,
    /// Method.
    #[arg(long, value_enum, default_value_t = Method::Rl)]
    pub method: Method,
    /// Output FITS file (32-bit float; masked pixels are NaN).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Iterations (rl, starlet): exactly this many. Default: rl stops at the iterate of least
    /// estimated risk (Monte-Carlo SURE under the Poisson–Gaussian noise model estimated from
    /// the image; a second, perturbed chain doubles the work per iteration; at most 300
    /// iterations), or accelerated rl when its residual matches the noise (discrepancy
    /// principle, at most 50); starlet (FISTA) stops at the iterate of least estimated risk
    /// too, its threshold chosen with the count (at most 300).
    #[arg(long)]
    pub iters: Option<usize>,
    /// Cap of the automatic stop of rl and starlet (without --iters): default 300 plain rl,
    /// 50 accelerated, 300 starlet.
    #[arg(long, conflicts_with = "iters")]
    pub max_iters: Option<usize>,
    /// Richardson–Lucy with the Biggs–Andrews acceleration, at most 50 iterations under the
    /// discrepancy stop: 1–3.5 dB better than plain RL on simulated star fields and faster,
    /// but worse on faint extended sources (galaxies at SNR < 30) and photographs.
    #[arg(long, conflicts_with = "no_accelerate")]
    pub accelerate: bool,
    /// Plain Richardson–Lucy (the default; kept for scripts that pass it).
    #[arg(long, hide = true)]
    pub no_accelerate: bool,
    /// Arithmetic precision of Richardson–Lucy: `f32` halves its memory and runs its
    /// iterations about 1.5× faster (enough for data that is itself single precision:
    /// iterates differ from `f64` by ~1e-6 relative); `auto` (the default) is `f32` for
    /// single-precision or 8/16-bit integer images (BITPIX −32, 8, 16) and `f64` for the
    /// others. The discrepancy statistics are summed in `f64` either way. Other methods
    /// compute in `f64`.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    pub precision: PrecisionArg,
    /// Wiener balance / Tikhonov weight; default: chosen by generalised cross-validation
    /// (for wiener together with the signal spectrum: white, gradient or Laplacian).
    #[arg(long)]
    pub balance: Option<f64>,
    /// Threshold in noise units (starlet). Default: chosen with the iteration count from
    /// 1, 2, 3, 4, 5 by the least estimated risk (without --iters; 3 with --iters).
    #[arg(long)]
    pub k_sigma: Option<f64>,
    /// After any method, re-fit the result to the data on the significant starlet
    /// coefficients of the observation (|W_j y| > κσ_j, coarse scale kept, x ≥ 0): removes
    /// the photometric bias of regularised and learned estimates.
    #[arg(long)]
    pub refit_active: bool,
    /// Significance threshold κ of --refit-active, in noise units.
    #[arg(long, default_value_t = 3.0)]
    pub refit_kappa: f64,
    /// Network of --method learned: `builtin` (the shipped galaxy model) or an ONNX file with
    /// the same contract and its sidecar JSON next to it.
    #[arg(long, default_value = "builtin")]
    pub model: String,
    /// Sky level (data units) treated as a known background: subtracted before the
    /// deconvolution and added back after it (Richardson–Lucy: the constant term of its
    /// Poisson model `y ~ P(A x + sky)`), so positivity applies to the sources above the sky.
    /// `map` (default): a smooth background map (sigma-clipped box estimates of
    /// `--sky-mesh` pixels, 3×3 median-filtered, bicubic-spline interpolated, as SExtractor
    /// and photutils' Background2D), so diffuse light such as a cluster's core is background
    /// (images under two boxes on a side use the median); `median`: one 3σ-clipped median of
    /// the valid pixels; a number: that level; `--sky 0` deconvolves the raw values.
    #[arg(long, default_value = "map")]
    pub sky: String,
    /// Box size (pixels) of the `--sky map` background.
    #[arg(long, default_value_t = 64)]
    pub sky_mesh: usize,
    /// Image extension beyond the edges; default: zero for rl/starlet, smooth for
    /// wiener/tikhonov, reflect for learned (smooth: Fourier methods only).
    #[arg(long, value_enum)]
    pub boundary: Option<BoundaryArg>,
    /// Tile size in pixels; default: 1024 when a side exceeds 2048 px (8192 px for
    /// wiener/tikhonov), else no tiling; 0: never tile.
    #[arg(long)]
    pub tile: Option<usize>,
    /// Context pixels around each tile; default: twice the PSF size.
    #[arg(long)]
    pub halo: Option<usize>,
    /// Before/after PNG preview (same display limits for both panels).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Display stretch of the preview.
    #[arg(long, value_enum, default_value_t = StretchArg::Asinh)]
    pub stretch: StretchArg,
    /// JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// Arithmetic precision (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Single precision for single-precision or 8/16-bit integer images, else double.
    Auto,
    /// Double precision.
    F64,
    /// Single precision.
    F32,
}

/// Run `sparseinv deconvolve`: read the FITS image and the PSF, call
/// [`sparseinv::pipeline::deconvolve`], write the FITS output, the preview and the report.
pub fn run(args: DeconvolveArgs) -> anyhow::Result<()> {
    super::check_outputs(
        std::iter::once(args.output.as_path())
            .chain(args.png.as_deref())
            .chain(args.json.as_deref()),
        args.force,
    )?;
    let (sky, sky_mesh) = match args.sky.as_str() {
        "map" => (None, Some(args.sky_mesh)),
        "median" => (None, None),
        v => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => (Some(x), None),
            _ => anyhow::bail!("--sky {v}: expected map, median or a finite number"),
        },
    };
    let t_read = std::time::Instant::now();
    let mut input = super::read_fits_input(&args.input, args.hdu)?;
    let y = std::mem::take(&mut input.data);
    let psf = super::load_psf_checked(&args.psf, y.dim())?;
    let read_s = t_read.elapsed().as_secs_f64();
    let method = PMethod::from(args.method);
    let opts = DeconvolveOptions {
        method,
        iters: args.iters,
        accelerate: args.accelerate,
        max_iters: args.max_iters,
        precision: match args.precision {
            PrecisionArg::Auto => Precision::Auto,
            PrecisionArg::F64 => Precision::F64,
            PrecisionArg::F32 => Precision::F32,
        }
        .for_bitpix(input.image.bitpix),
        balance: args.balance,
        k_sigma: args.k_sigma,
        refit_active: args.refit_active,
        refit_kappa: args.refit_kappa,
        model: if args.model == "builtin" {
            sparseinv::pipeline::LearnedModel::Builtin
        } else {
            sparseinv::pipeline::LearnedModel::Path(PathBuf::from(&args.model))
        },
        sky,
        sky_mesh,
        boundary: args.boundary.map(BoundaryMode::from),
        tile: args.tile,
        halo: args.halo,
        normalize_psf: !args.no_normalize,
        force: args.force,
    };
    // the pipeline normalises the PSF (report.psf_sum); say so before the run
    let sum = psf.sum();
    if opts.normalize_psf && (sum - 1.0).abs() > 1e-6 {
        eprintln!(
            "note: {}: the PSF summed to {sum:.6}; normalised to 1",
            args.psf.display()
        );
    }
    let pb = super::progress_bar(
        args.iters.unwrap_or(sparseinv::pipeline::RL_AUTO_MAX_ITERS) as u64,
        &format!("{:?}", args.method),
    );
    let mut tiles_message = false;
    let mut on_progress = |p: sparseinv::pipeline::Progress| {
        if p.unit == ProgressUnit::Tiles && !tiles_message {
            pb.set_message(format!("{:?} tiles", args.method));
            tiles_message = true;
        }
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
    };
    // without a preview the pixels are not needed afterwards: the pipeline takes them over
    // as its working image (no copy)
    let (res, before) = if args.png.is_some() {
        let r = deconvolve_with_progress(y.view(), psf.view(), &opts, &mut on_progress);
        (r, Some(y))
    } else {
        (
            deconvolve_with_progress(y, psf.view(), &opts, &mut on_progress),
            None,
        )
    };
    let res =
        res.with_context(|| format!("{}: deconvolution failed", input.image.path.display()))?;
    pb.finish_and_clear();
    let report = &res.report;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let t_write = std::time::Instant::now();
    res.write_fits(
        &args.output,
        Some(&input.image.header),
        &args.psf.display().to_string(),
        super::history_lines("deconvolve"),
        args.force,
    )
    .with_context(|| format!("writing {}", args.output.display()))?;
    let write_s = t_write.elapsed().as_secs_f64();
    let t_png = std::time::Instant::now();
    if let (Some(png), Some(y)) = (&args.png, &before) {
        let stretch = match args.stretch {
            StretchArg::Asinh => Stretch::default(),
            StretchArg::Zscale => Stretch::Linear(Limits::ZScale),
        };
        // the panel shows what the file holds (f32); masked pixels show black in both panels
        let shown = res.image.mapv(|v| f64::from(v as f32));
        sparseinv::io::image::write_before_after(
            png,
            y.view(),
            shown.view(),
            stretch,
            true,
            args.force,
        )?;
    }
    let png_s = args.png.as_ref().map(|_| t_png.elapsed().as_secs_f64());
    let params = match (report.balance, report.prior, &report.stop) {
        (Some(b), Some(p), _) => format!(
            "balance {b:.3e} ({}, {} prior)",
            report.balance_from.as_deref().unwrap_or("given"),
            p.name()
        ),
        (_, _, Some(stop)) => format!("{} iterations ({stop})", report.iterations),
        _ => format!("{} iterations", report.iterations),
    };
    eprintln!(
        "{}: {} ({} boundary{}), {}, {:.2} s; flux {:.6e} -> {:.6e} -> {}",
        input.image.path.display(),
        method.name(),
        report.boundary.name(),
        report
            .tiling
            .map_or_else(String::new, |t| format!(", {} px tiles", t.tile)),
        params,
        report.seconds,
        report.flux_before,
        report.flux_after,
        args.output.display()
    );
    if let Some(j) = &args.json {
        let mut v = serde_json::to_value(report)?;
        // the command's own phases beside the library's: reading, writing, the preview
        if let Some(ph) = v.get_mut("phases").and_then(|p| p.as_object_mut()) {
            ph.insert("read".into(), serde_json::json!(read_s));
            ph.insert("write".into(), serde_json::json!(write_s));
            if let Some(t) = png_s {
                ph.insert("preview".into(), serde_json::json!(t));
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.extend([
                ("input".to_string(), serde_json::json!(input.image.path)),
                ("hdu".to_string(), serde_json::json!(input.image.hdu)),
                ("psf".to_string(), serde_json::json!(args.psf)),
                ("masked_output".to_string(), serde_json::json!("NaN")),
                ("warnings".to_string(), serde_json::json!(report.warnings)),
                (
                    "stretch".to_string(),
                    serde_json::json!(format!("{:?}", args.stretch).to_lowercase()),
                ),
                ("output".to_string(), serde_json::json!(args.output)),
            ]);
        }
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
