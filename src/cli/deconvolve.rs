//! `sparseinv deconvolve IN.fits --psf PSF.fits --method wiener|tikhonov|rl|starlet -o OUT.fits`:
//! deconvolve a FITS image by a known PSF (header and WCS kept, masked pixels left out of the
//! data term of the iterative methods), in overlapping tiles for large images.
//!
//! # Boundaries
//! `--boundary zero|reflect|periodic`. Default: `zero` for `rl` and `starlet` (the unknown
//! image is zero beyond the edges and the data term only covers the image, `A` = `Same`
//! convolution; Richardson–Lucy divides by `Aᵀ1`, so edge pixels are not darkened) and
//! `reflect` for `wiener` and `tikhonov` (the image is embedded in its mirror images on a grid
//! twice its size before the Fourier filter, so a sky background makes no edge step that
//! rings). `periodic` is the circular model of the Fourier filters.
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
//! Images with a side above 2048 px are processed in 1024 px tiles by default (`--tile N` to
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
use indicatif::ProgressBar;
use ndarray::{Array2, ArrayView2, Zip};
use sparseinv::io::fits::{write_fits_2d, Header, WriteOptions};
use sparseinv::io::image::{Limits, Stretch};
use sparseinv::tiling::{plan_tiles, process_tiled_with_progress, TileParams};
use sparseinv_solvers::deconv::{
    estimate_noise_sigma, fill_masked_median, refit_active, richardson_lucy, starlet_sparse,
    tikhonov_bounded, wiener_balance, wiener_bounded, Balance, Regulariser, RlParams,
    StarletSparseParams,
};
use sparseinv_solvers::iter::{Control, IterInfo};
use sparseinv_solvers::op::Boundary;
use sparseinv_solvers::scalar::real;
use sparseinv_solvers::Real;
use std::path::PathBuf;
use std::time::Instant;

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
}

impl BoundaryArg {
    fn op(self) -> Boundary {
        match self {
            BoundaryArg::Zero => Boundary::Same,
            BoundaryArg::Reflect => Boundary::Reflect,
            BoundaryArg::Periodic => Boundary::Circular,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BoundaryArg::Zero => "zero",
            BoundaryArg::Reflect => "reflect",
            BoundaryArg::Periodic => "periodic",
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
    /// Iterations (rl, starlet).
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Plain Richardson–Lucy, without the Biggs–Andrews acceleration.
    #[arg(long)]
    pub no_accelerate: bool,
    /// Arithmetic precision of Richardson–Lucy: `f32` halves its memory and runs its
    /// iterations about 1.6× faster (enough for data that is itself single precision:
    /// iterates differ from `f64` by ~1e-6 relative). Other methods compute in `f64`.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F64)]
    pub precision: PrecisionArg,
    /// Wiener balance / Tikhonov weight; default: estimated from the noise (Wiener), 0.01
    /// (Tikhonov).
    #[arg(long)]
    pub balance: Option<f64>,
    /// Threshold in noise units (starlet).
    #[arg(long, default_value_t = 3.0)]
    pub k_sigma: f64,
    /// Re-fit the significant starlet coefficients to the data after the starlet solve.
    #[arg(long)]
    pub refit_active: bool,
    /// Sky level (data units) treated as a known background: subtracted before the
    /// deconvolution and added back after it (Richardson–Lucy: the constant term of its
    /// Poisson model `y ~ P(A x + sky)`), so positivity applies to the sources above the sky.
    /// Default: the 3σ-clipped median of the valid pixels; `--sky 0` to deconvolve the raw
    /// values.
    #[arg(long)]
    pub sky: Option<f64>,
    /// Image extension beyond the edges; default: zero for rl/starlet, reflect for
    /// wiener/tikhonov.
    #[arg(long, value_enum)]
    pub boundary: Option<BoundaryArg>,
    /// Tile size in pixels; default: 1024 when a side exceeds 2048 px, else no tiling;
    /// 0: never tile.
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
    /// Double precision.
    F64,
    /// Single precision.
    F32,
}

/// Image side above which tiling is on by default.
const AUTO_TILE_ABOVE: usize = 2048;
/// Default tile size when tiling automatically.
const AUTO_TILE: usize = 1024;

/// Everything a tile needs besides its pixels (global quantities computed once).
struct Solve<'a> {
    method: Method,
    psf: ArrayView2<'a, f64>,
    boundary: Boundary,
    iters: usize,
    accelerate: bool,
    /// RL in single precision.
    single: bool,
    /// Wiener balance / Tikhonov weight.
    mu: f64,
    /// RL: data offset (added back), starting value and background term (`eps`).
    rl_offset: f64,
    rl_init: f64,
    rl_background: f64,
    /// starlet: noise level and options.
    sigma: f64,
    k_sigma: f64,
    refit: bool,
}

impl Solve<'_> {
    /// Richardson–Lucy in precision `R` on the window minus the data offset (masked where
    /// `valid` is false), with the sky as its known background term; returns the sources
    /// above the background plus the background and the offset, in `f64`.
    fn rl<R: Real>(
        &self,
        win: ArrayView2<'_, f64>,
        valid: ArrayView2<'_, bool>,
        pb: Option<&ProgressBar>,
    ) -> anyhow::Result<Array2<f64>> {
        let p = RlParams {
            boundary: self.boundary,
            accelerate: self.accelerate,
            init: Some(self.rl_init),
            eps: self.rl_background,
            stop: RlParams::iterations(self.iters),
            ..RlParams::default()
        };
        let y = win.mapv(|v| real::<R>(v - self.rl_offset));
        let k = self.psf.mapv(real::<R>);
        let mut obs = |i: &IterInfo<R>| {
            if let Some(pb) = pb {
                pb.set_position(i.iter as u64);
            }
            Control::Continue
        };
        let (x, _) = richardson_lucy(y.view(), k.view(), Some(valid), &p, &mut obs)?;
        let add = self.rl_offset + self.rl_background;
        Ok(x.mapv(|v| v.to_f64_lossless() + add))
    }

    /// Deconvolve one window; NaN pixels are masked. Returns finite values everywhere.
    fn run(
        &self,
        win: ArrayView2<'_, f64>,
        pb: Option<&ProgressBar>,
    ) -> anyhow::Result<Array2<f64>> {
        let valid = win.mapv(f64::is_finite);
        if !valid.iter().any(|&b| b) {
            // every pixel of this window is masked: nothing to fit, output is masked anyway
            return Ok(Array2::zeros(win.dim()));
        }
        let psf = self.psf;
        Ok(match self.method {
            // Fourier methods get a filled (NaN-free) image
            Method::Wiener => wiener_bounded(win, psf, Balance::Fixed(self.mu), self.boundary)?,
            Method::Tikhonov => {
                tikhonov_bounded(win, psf, Regulariser::Laplacian, self.mu, self.boundary)?
            }
            Method::Rl if self.single => self.rl::<f32>(win, valid.view(), pb)?,
            Method::Rl => self.rl::<f64>(win, valid.view(), pb)?,
            Method::Starlet => {
                let p = StarletSparseParams {
                    stop: sparseinv_solvers::iter::StopCriteria {
                        max_iters: self.iters,
                        rel_tol: 0.0,
                        ..Default::default()
                    },
                    k_sigma: self.k_sigma,
                    sigma: Some(self.sigma),
                    boundary: self.boundary,
                    ..StarletSparseParams::default()
                };
                let r = starlet_sparse(win, psf, Some(valid.view()), &p)?;
                if let Some(pb) = pb {
                    pb.set_position(self.iters as u64);
                }
                if self.refit {
                    refit_active(
                        win,
                        psf,
                        Some(valid.view()),
                        r.x.view(),
                        &r.lambdas,
                        self.boundary,
                        10,
                    )?
                } else {
                    r.x
                }
            }
        })
    }
}

/// Run `sparseinv deconvolve`.
pub fn run(args: DeconvolveArgs) -> anyhow::Result<()> {
    super::check_outputs(
        std::iter::once(args.output.as_path())
            .chain(args.png.as_deref())
            .chain(args.json.as_deref()),
        args.force,
    )?;
    let input = super::read_fits_input(&args.input, args.hdu)?;
    let (y, valid) = (&input.data, &input.valid);
    let psf = super::load_psf_for(&args.psf, y.dim(), !args.no_normalize)?;
    let nvalid = input.n_valid();
    let flux_in: f64 = Zip::from(y)
        .and(valid)
        .fold(0.0, |a, &v, &m| if m { a + v } else { a });
    let boundary = args.boundary.unwrap_or(match args.method {
        Method::Wiener | Method::Tikhonov => BoundaryArg::Reflect,
        Method::Rl | Method::Starlet => BoundaryArg::Zero,
    });
    let t0 = Instant::now();
    // Global quantities, and the image the tiles see (NaN = masked).
    let mut solve = Solve {
        method: args.method,
        psf: psf.view(),
        boundary: boundary.op(),
        iters: args.iters,
        accelerate: !args.no_accelerate,
        single: args.precision == PrecisionArg::F32,
        mu: 0.0,
        rl_offset: 0.0,
        rl_init: 1.0,
        rl_background: 1e-12,
        sigma: 0.0,
        k_sigma: args.k_sigma,
        refit: args.refit_active,
    };
    let mut report = serde_json::Map::new();
    let sky = match args.sky {
        Some(v) if v.is_finite() => v,
        Some(v) => anyhow::bail!("--sky {v} is not a finite number"),
        None => {
            // clipped median of at most ~10⁶ valid pixels (a regular subsample of big images)
            let stride = (nvalid / 1_000_000).max(1);
            sparseinv::psf::background_stats(
                y.iter()
                    .zip(valid.iter())
                    .filter(|(_, &m)| m)
                    .step_by(stride)
                    .map(|(&v, _)| v),
            )
            .map(|(med, _)| med)
            .unwrap_or(0.0)
        }
    };
    report.insert("sky".into(), sky.into());
    let work: Array2<f64> = match args.method {
        Method::Wiener | Method::Tikhonov => {
            let filled = fill_masked_median(y.view(), valid.view(), 2).with_context(|| {
                format!("{}: filling masked pixels", input.image.path.display())
            })? - sky;
            solve.mu = match (args.method, args.balance) {
                (Method::Tikhonov, b) => b.unwrap_or(0.01),
                (_, b) => wiener_balance(filled.view(), b.map_or(Balance::Auto, Balance::Fixed))?,
            };
            report.insert("balance".into(), solve.mu.into());
            report.insert(
                "masked_fill".into(),
                "local median of the valid pixels (5x5 window, grown into holes)".into(),
            );
            filled
        }
        Method::Rl => {
            // RL needs non-negative data: offset by the minimum when negative; the sky is the
            // constant background term of the Poisson model
            let off = Zip::from(y)
                .and(valid)
                .fold(0.0f64, |a, &v, &m| if m { a.min(v) } else { a });
            let bg = (sky - off).max(0.0);
            solve.rl_offset = off;
            solve.rl_background = bg.max(1e-12);
            let mean = (flux_in - off * nvalid as f64) / nvalid as f64;
            solve.rl_init = (mean - bg).max(1e-3 * mean.abs()).max(1e-12);
            report.insert("accelerated".into(), solve.accelerate.into());
            report.insert(
                "precision".into(),
                if solve.single { "f32" } else { "f64" }.into(),
            );
            Zip::from(y)
                .and(valid)
                .map_collect(|&v, &m| if m { v } else { f64::NAN })
        }
        Method::Starlet => {
            let filled = fill_masked_median(y.view(), valid.view(), 2)?;
            solve.sigma = estimate_noise_sigma(filled.view())?;
            report.insert("noise_sigma".into(), solve.sigma.into());
            Zip::from(y)
                .and(valid)
                .map_collect(|&v, &m| if m { v - sky } else { f64::NAN })
        }
    };
    let (ny, nx) = y.dim();
    let tile = args.tile.unwrap_or(if ny.max(nx) > AUTO_TILE_ABOVE {
        AUTO_TILE
    } else {
        0
    });
    let psf_size = psf.nrows().max(psf.ncols());
    let halo = args.halo.unwrap_or(2 * psf_size);
    if args.halo.is_some() && halo < psf_size {
        eprintln!(
            "warning: --halo {halo} is smaller than the PSF ({psf_size} px): tile seams may show"
        );
    }
    let tiled = tile > 0 && (ny > tile || nx > tile);
    let x: Array2<f64> = if tiled {
        let params = TileParams {
            tile,
            halo,
            blend: (psf_size / 2).max(4).min(tile / 4),
            max_in_flight: 0,
        };
        let ntiles = plan_tiles((ny, nx), &params).len();
        let pb = super::progress_bar(ntiles as u64, &format!("{:?} tiles", args.method));
        let x = process_tiled_with_progress(
            work.view(),
            &params,
            |w| solve.run(w, None),
            |done, _| pb.set_position(done as u64),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", input.image.path.display()))?;
        pb.finish_and_clear();
        report.insert(
            "tiling".into(),
            serde_json::json!({
                "tile": tile, "halo": halo, "blend": params.blend, "tiles": ntiles,
                "in_flight": rayon::current_num_threads(),
            }),
        );
        x
    } else {
        let pb = super::progress_bar(args.iters as u64, &format!("{:?}", args.method));
        let pbr = matches!(args.method, Method::Rl | Method::Starlet).then_some(&pb);
        let x = solve
            .run(work.view(), pbr)
            .with_context(|| format!("{}: deconvolution failed", input.image.path.display()))?;
        pb.finish_and_clear();
        report.insert("tiling".into(), serde_json::Value::Null);
        x
    };
    drop(work);
    // RL adds its background and offset back itself
    let x = if args.method == Method::Rl {
        x
    } else {
        x + sky
    };
    let iterations = match args.method {
        Method::Rl | Method::Starlet => args.iters,
        Method::Wiener | Method::Tikhonov => 0,
    };
    let elapsed = t0.elapsed().as_secs_f64();
    let flux_out: f64 = Zip::from(&x)
        .and(valid)
        .fold(0.0, |a, &v, &m| if m { a + v } else { a });
    let out = Zip::from(&x)
        .and(valid)
        .map_collect(|&v, &m| if m { v as f32 } else { f32::NAN });
    let method_name = format!("{:?}", args.method).to_lowercase();
    let mut extra = Header::default();
    extra.set_str("DECONV", &method_name, "deconvolution method");
    extra.set_str(
        "DECBOUND",
        boundary.name(),
        "boundary model of the deconvolution",
    );
    let mut history = super::history_lines("deconvolve");
    history.push(format!(
        "method {method_name}{}, boundary {}, sky {sky}, iterations {iterations}, PSF {}{}",
        if solve.single { " (f32)" } else { "" },
        boundary.name(),
        args.psf.display(),
        if tiled {
            format!(", tiles {tile} px with halo {halo}")
        } else {
            String::new()
        }
    ));
    write_fits_2d(
        &args.output,
        out.view(),
        &WriteOptions {
            header: Some(&input.image.header),
            extra: Some(&extra),
            history,
            force: args.force,
        },
    )
    .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(png) = &args.png {
        let stretch = match args.stretch {
            StretchArg::Asinh => Stretch::default(),
            StretchArg::Zscale => Stretch::Linear(Limits::ZScale),
        };
        // masked pixels show black in both panels
        let shown = out.mapv(f64::from);
        sparseinv::io::image::write_before_after(
            png,
            y.view(),
            shown.view(),
            stretch,
            true,
            args.force,
        )?;
    }
    eprintln!(
        "{}: {method_name} ({} boundary{}), {iterations} iterations, {elapsed:.2} s; flux \
         {flux_in:.6e} -> {flux_out:.6e} -> {}",
        input.image.path.display(),
        boundary.name(),
        if tiled {
            format!(", {tile} px tiles")
        } else {
            String::new()
        },
        args.output.display()
    );
    if let Some(j) = &args.json {
        let mut v = serde_json::json!({
            "input": input.image.path,
            "hdu": input.image.hdu,
            "psf": args.psf,
            "method": method_name,
            "boundary": boundary.name(),
            "iterations": iterations,
            "seconds": elapsed,
            "flux_before": flux_in,
            "flux_after": flux_out,
            "masked_pixels": y.len() - nvalid,
            "masked_output": "NaN",
            "stretch": format!("{:?}", args.stretch).to_lowercase(),
            "output": args.output,
        });
        if let Some(o) = v.as_object_mut() {
            o.extend(report);
        }
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
