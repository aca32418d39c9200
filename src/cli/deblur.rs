//! `sparseinv deblur IN --psf PSF --method pnp-fista|pnp-admm|red|learned -o OUT`: non-blind
//! deblurring with deep priors — plug-and-play / RED with a denoiser (the classical starlet
//! thresholding, the shipped network or any ONNX denoiser) or the learned INFWIDE-style model.
//!
//! Inputs: FITS (`file.fits` or `file.fits[N]`, written back as 32-bit float FITS with the
//! input header kept), PNG/TIFF (grey values in `[0, 1]`; colour converted to luma; written at
//! the input's bit depth, clipped to `[0, 1]`) and `.npy` (2-D float). The PSF is a FITS,
//! `.npy` or PNG/TIFF image, normalised to unit sum, centre at `(h/2, w/2)`.
//!
//! All methods work on normalised data `u = (y − offset)/scale` (PNG/TIFF: offset 0, scale 1;
//! otherwise the `--percentiles` of the data unless `--offset/--scale` are given) and map the
//! result back. `--sigma` is the noise standard deviation in the data's units (default:
//! estimated from the finest starlet scale of the data). The plug-and-play denoiser works at
//! `σ_d = strength · σ`; PnP-ADMM uses `ρ = 1/strength²` and RED `λ = 1/strength²` (the MAP
//! correspondence for a denoiser at noise level `σ_d`), the gradient step is `1/‖A‖²`. The blur
//! operator of the iterative methods has reflective (half-sample symmetric) borders. The
//! default strength 2 with `pnp-admm` is what the quality table of `models/README.md` uses;
//! PnP-FISTA with the small shipped network at strength 1 can diverge at low noise levels.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::{Array2, ArrayView2, Ix2};
use sparseinv::io::fits::{read_fits_spec, write_fits_2d, Header, WriteOptions};
use sparseinv::io::image::{read_gray, write_gray, BitDepth};
use sparseinv_models::{
    builtin, DenoiserConfig, LearnedDeblur, Normalization, OnnxDenoiser, SessionOptions, Tiling,
};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::{Control, IterInfo, StopCriteria};
use sparseinv_solvers::op::{Boundary, Conv2d};
use sparseinv_solvers::pnp::{pnp_admm, pnp_pgd, red, PnpParams};
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Deblurring method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Plug-and-play proximal gradient with FISTA extrapolation.
    PnpFista,
    /// Plug-and-play ADMM (conjugate-gradient x-update).
    PnpAdmm,
    /// Regularisation by denoising (gradient form).
    Red,
    /// The learned model (Wiener in image and feature space + fusion network).
    Learned,
}

/// Arguments of `sparseinv deblur`.
#[derive(Args, Debug)]
pub struct DeblurArgs {
    /// Input image: FITS (`file.fits[N]` picks an HDU), PNG, TIFF or .npy (2-D).
    pub input: String,
    /// PSF: FITS, .npy or PNG/TIFF (normalised to unit sum; centre at (h/2, w/2)).
    #[arg(long)]
    pub psf: PathBuf,
    /// Method.
    #[arg(long, value_enum, default_value_t = Method::Learned)]
    pub method: Method,
    /// Learned model (`--method learned`): `builtin` (shipped, embedded), the JSON sidecar of
    /// a model (its two graphs next to it), or one of its graphs `NAME_enc.onnx` /
    /// `NAME_dec.onnx` (the sidecar is then `NAME.json` beside it).
    #[arg(long, short = 'm', default_value = "builtin")]
    pub model: String,
    /// Denoiser of the plug-and-play methods: `starlet`, `builtin` or an ONNX denoiser graph.
    #[arg(long, default_value = "builtin")]
    pub denoiser: String,
    /// Noise standard deviation in the data's units (default: estimated from the data).
    #[arg(long, short = 's')]
    pub sigma: Option<f64>,
    /// Denoiser strength: σ_d = strength · σ, ρ = λ = 1/strength² (plug-and-play methods).
    #[arg(long, default_value_t = 2.0)]
    pub strength: f64,
    /// Iterations (plug-and-play methods).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Output file, same kind as the input (.fits, .png, .tif/.tiff or .npy).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
    /// Execution device and threads of the networks.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// Fixed normalisation offset (with --scale); default: PNG/TIFF 0, others percentiles.
    #[arg(long, requires = "scale")]
    pub offset: Option<f64>,
    /// Fixed normalisation scale (> 0).
    #[arg(long, requires = "offset")]
    pub scale: Option<f64>,
    /// Learned model: images larger than this (pixels, either axis) run the networks in
    /// blocks of this size (the Wiener stages always see the whole image).
    #[arg(long, default_value_t = 1024)]
    pub tile: usize,
    /// Learned model: context added around each block (pixels).
    #[arg(long, default_value_t = 48)]
    pub overlap: usize,
    /// Lower/upper percentiles of the automatic normalisation (FITS, .npy).
    #[arg(long, num_args = 2, default_values_t = [0.1, 99.9])]
    pub percentiles: Vec<f64>,
    /// Write a JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What kind of file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Fits,
    Picture,
    Npy,
}

pub(crate) fn file_kind(p: &Path) -> anyhow::Result<FileKind> {
    let name = p.to_string_lossy().to_ascii_lowercase();
    // strip a FITS extension selector `[N]`
    let name = match name.rfind('[') {
        Some(i) if name.ends_with(']') => name[..i].to_string(),
        _ => name,
    };
    let ext = name.rsplit('.').next().unwrap_or("");
    match ext {
        "fits" | "fit" | "fts" => Ok(FileKind::Fits),
        "png" | "tif" | "tiff" => Ok(FileKind::Picture),
        "npy" => Ok(FileKind::Npy),
        _ => bail!(
            "{}: unsupported file type (use .fits, .png, .tif/.tiff or .npy)",
            p.display()
        ),
    }
}

pub(crate) fn read_npy_2d(path: &Path) -> anyhow::Result<Array2<f64>> {
    let a = sparseinv::io::npy::read_npy(path)
        .with_context(|| format!("reading {}", path.display()))?;
    match a {
        sparseinv::io::npy::NpyArray::Real(a) => a
            .into_dimensionality::<Ix2>()
            .map_err(|_| anyhow::anyhow!("{}: expected a 2-D array", path.display())),
        sparseinv::io::npy::NpyArray::Complex(_) => {
            bail!("{}: complex data cannot be deblurred", path.display())
        }
    }
}

fn read_psf(path: &Path) -> anyhow::Result<Array2<f64>> {
    let p = match file_kind(path)? {
        FileKind::Fits => sparseinv::psf::load_psf(path, None)?,
        FileKind::Npy => read_npy_2d(path)?,
        FileKind::Picture => read_gray(path)?.0,
    };
    let (p, _) = sparseinv::psf::normalize(p.view())
        .map_err(|e| anyhow::anyhow!("{}: unusable PSF: {e}", path.display()))?;
    Ok(p)
}

/// A progress bar fed by the solvers' observer.
struct Bar(indicatif::ProgressBar);

impl sparseinv_solvers::iter::Observer<f64> for Bar {
    fn observe(&mut self, info: &IterInfo<'_, f64>) -> Control {
        self.0.set_length(info.max_iters as u64);
        self.0.set_position(info.iter as u64);
        Control::Continue
    }
}

/// The sidecar of a learned model given as `NAME.json`, `NAME_enc.onnx` or `NAME_dec.onnx`.
fn sidecar_of(model: &str) -> PathBuf {
    for suffix in ["_enc.onnx", "_dec.onnx"] {
        if let Some(stem) = model.strip_suffix(suffix) {
            return PathBuf::from(format!("{stem}.json"));
        }
    }
    PathBuf::from(model)
}

fn options(args: &DeblurArgs) -> SessionOptions {
    args.runtime.session_options()
}

/// Run a plug-and-play method on normalised data `u` with noise level `s` (normalised).
fn run_pnp(
    args: &DeblurArgs,
    u: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    s: f64,
) -> anyhow::Result<(Array2<f64>, usize)> {
    let denoiser: Box<dyn Denoiser<f64>> = match args.denoiser.as_str() {
        "starlet" => Box::new(StarletDenoiser::new(4)?),
        d => {
            let config = DenoiserConfig {
                normalization: Normalization::Affine {
                    offset: 0.0,
                    scale: 1.0,
                },
                tiling: Tiling::default(),
                ..Default::default()
            };
            let net = if d == "builtin" {
                builtin::denoiser(options(args), config)
            } else {
                OnnxDenoiser::load(d, options(args), config)
            };
            Box::new(net.with_context(|| format!("loading denoiser {d}"))?)
        }
    };
    let a = Conv2d::<f64>::new([u.nrows(), u.ncols()], psf, Boundary::Reflect)?;
    let f2 = args.strength * args.strength;
    let params = PnpParams {
        sigma: args.strength * s,
        lambda: 1.0 / f2,
        rho: 1.0 / f2,
        stop: StopCriteria {
            max_iters: args.iters,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let pb = super::progress_bar(args.iters as u64, "plug-and-play");
    let mut bar = Bar(pb.clone());
    let y = u.into_dyn();
    // start from the data (a far better start than zeros for a unit-sum blur)
    let x0 = Some(u.into_dyn());
    let (x, rep) = match args.method {
        Method::PnpFista => pnp_pgd(&a, y, denoiser.as_ref(), x0, &params, Some(&mut bar))?,
        Method::PnpAdmm => pnp_admm(&a, y, denoiser.as_ref(), x0, &params, Some(&mut bar))?,
        Method::Red => red(&a, y, denoiser.as_ref(), x0, &params, Some(&mut bar))?,
        Method::Learned => unreachable!("handled by the caller"),
    };
    pb.finish_and_clear();
    Ok((x.into_dimensionality::<Ix2>()?, rep.iterations))
}

/// Run `sparseinv deblur`.
pub fn run(args: DeblurArgs) -> anyhow::Result<()> {
    let input_path = PathBuf::from(&args.input);
    let kin = file_kind(&input_path)?;
    let kout = file_kind(&args.output)?;
    if kin != kout {
        bail!(
            "output {} must be the same kind of file as the input ({kin:?})",
            args.output.display()
        );
    }
    for p in std::iter::once(&args.output).chain(args.json.as_ref()) {
        if p.exists() && !args.force {
            bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    if !(args.strength > 0.0 && args.strength.is_finite()) {
        bail!("--strength must be finite and > 0, got {}", args.strength);
    }
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    let mut header = None;
    let mut deep = false;
    let y: Array2<f64> = match kin {
        FileKind::Fits => {
            let img = read_fits_spec(&args.input, None)?;
            let y = img.image2d()?.to_owned();
            if img.n_masked() > 0 {
                bail!(
                    "{}: {} pixels are NaN/blank; deblur needs a complete image",
                    img.path.display(),
                    img.n_masked()
                );
            }
            header = Some(img.header.clone());
            y
        }
        FileKind::Picture => {
            let (y, d) = read_gray(&input_path)?;
            deep = d;
            y
        }
        FileKind::Npy => read_npy_2d(&input_path)?,
    };
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        bail!("{}: non-finite value at pixel {i}", args.input);
    }
    let psf = read_psf(&args.psf)?;
    if psf.nrows() >= y.nrows() || psf.ncols() >= y.ncols() {
        bail!(
            "PSF {}×{} must be smaller than the image {}×{}",
            psf.nrows(),
            psf.ncols(),
            y.nrows(),
            y.ncols()
        );
    }
    let normalization = match (args.offset, args.scale, kin) {
        (Some(offset), Some(scale), _) => Normalization::Affine { offset, scale },
        (_, _, FileKind::Picture) => Normalization::Affine {
            offset: 0.0,
            scale: 1.0,
        },
        _ => Normalization::Percentiles {
            low: args.percentiles[0],
            high: args.percentiles[1],
        },
    };
    let flat: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let (offset, scale) = normalization.resolve(&flat)?;
    let sigma = match args.sigma {
        Some(s) if s >= 0.0 && s.is_finite() => s,
        Some(s) => bail!("--sigma must be finite and >= 0, got {s}"),
        None => sparseinv_solvers::deconv::estimate_noise_sigma(y.view())?,
    };
    let t0 = Instant::now();
    let (x, iterations, model_name) = if args.method == Method::Learned {
        let m = if args.model == "builtin" {
            builtin::deblur(options(&args))
        } else {
            LearnedDeblur::load(sidecar_of(&args.model), options(&args))
        }
        .with_context(|| format!("loading model {}", args.model))?;
        let mut m = m;
        m.set_tiling(Some(Tiling {
            tile: args.tile,
            overlap: args.overlap,
        }))?;
        let pb = super::progress_bar(m.steps() as u64, "learned deblur");
        let x = m
            .deblur_with_progress(
                y.view(),
                psf.view(),
                sigma,
                Normalization::Affine { offset, scale },
                &mut |d, t| {
                    pb.set_length(t as u64);
                    pb.set_position(d as u64);
                },
            )
            .with_context(|| format!("deblurring {}", args.input))?;
        pb.finish_and_clear();
        (x, 0, args.model.clone())
    } else {
        let u = y.mapv(|v| (v - offset) / scale);
        let (xu, it) = run_pnp(&args, u.view(), psf.view(), sigma / scale)
            .with_context(|| format!("deblurring {}", args.input))?;
        (xu.mapv(|v| scale * v + offset), it, args.denoiser.clone())
    };
    let secs = t0.elapsed().as_secs_f64();
    let method = args.method.to_possible_value().map_or_else(
        || format!("{:?}", args.method),
        |v| v.get_name().to_string(),
    );
    match kin {
        FileKind::Fits => {
            let command: Vec<String> = std::env::args().collect();
            let mut extra = Header::default();
            extra.set_str("DEBLUR", &method, "deblurring method");
            extra.set_f64("DBSIGMA", sigma, "noise sigma used (data units)");
            let out = x.mapv(|v| v as f32);
            write_fits_2d(
                &args.output,
                out.view(),
                &WriteOptions {
                    header: header.as_ref(),
                    extra: Some(&extra),
                    history: vec![
                        format!("sparseinv {} deblur", env!("CARGO_PKG_VERSION")),
                        format!("command: {}", command.join(" ")),
                    ],
                    force: args.force,
                },
            )
            .with_context(|| format!("writing {}", args.output.display()))?;
        }
        FileKind::Picture => write_gray(
            &args.output,
            x.view(),
            if deep {
                BitDepth::Sixteen
            } else {
                BitDepth::Eight
            },
            args.force,
        )
        .with_context(|| format!("writing {}", args.output.display()))?,
        FileKind::Npy => sparseinv::io::npy::write_npy(
            &args.output,
            &sparseinv::io::npy::NpyArray::Real(x.clone().into_dyn()),
            args.force,
        )
        .with_context(|| format!("writing {}", args.output.display()))?,
    }
    eprintln!(
        "deblurred {} ({}×{}) by {method} with {model_name}, σ = {sigma:.4e}, {} iterations, \
         {secs:.2} s -> {}",
        args.input,
        y.nrows(),
        y.ncols(),
        iterations,
        args.output.display()
    );
    if let Some(j) = &args.json {
        let v = serde_json::json!({
            "input": args.input,
            "psf": args.psf,
            "output": args.output,
            "method": method,
            "model": if args.method == Method::Learned { &args.model } else { &args.denoiser },
            "sigma": sigma,
            "sigma_estimated": args.sigma.is_none(),
            "offset": offset,
            "scale": scale,
            "iterations": iterations,
            "seconds": secs,
            "device": args.runtime.device,
            "shape": [y.nrows(), y.ncols()],
        });
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
