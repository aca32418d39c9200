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
//! default strength 3 for 30 iterations keeps `pnp-admm` above the blurred input on held-out
//! photographs (`scripts/defaults/pnp_defaults.py`); PnP-FISTA with the small shipped network
//! at strength 1 can diverge at low noise levels.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Ix2};
use sparseinv::io::fits::{read_fits_spec, write_fits_2d, Header, WriteOptions};
use sparseinv::io::image::{read_gray, write_gray, BitDepth};
use sparseinv::pipeline::{
    deblur_with_progress, DeblurMethod, DeblurOptions, Deblurred, DenoiseModel,
};
use std::path::{Path, PathBuf};

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
    /// Denoiser strength: σ_d = strength · σ, ρ = λ = 1/strength² (plug-and-play methods;
    /// default 3, the library's PNP_DEFAULT_STRENGTH).
    #[arg(long)]
    pub strength: Option<f64>,
    /// Iterations (plug-and-play methods; default 30, the library's PNP_DEFAULT_ITERS).
    #[arg(long)]
    pub iters: Option<usize>,
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
    /// Images larger than this (pixels, either axis) run the networks in blocks of this
    /// size: the learned model's networks (the Wiener stages always see the whole image) and
    /// a network denoiser of the plug-and-play methods (tiles of at most this size).
    #[arg(long, default_value_t = 1024)]
    pub tile: usize,
    /// Learned model: context added around each block (pixels); plug-and-play network
    /// denoiser: pixels shared by neighbouring tiles (cross-faded).
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

/// Read a PSF (FITS, .npy or picture) and check that it is usable (the pipeline normalises
/// it); errors name the file.
pub(crate) fn read_psf(path: &Path) -> anyhow::Result<Array2<f64>> {
    let p = match file_kind(path)? {
        FileKind::Fits => sparseinv::psf::load_psf(path, None)?,
        FileKind::Npy => read_npy_2d(path)?,
        FileKind::Picture => read_gray(path)?.0,
    };
    sparseinv::psf::validate(p.view())
        .map_err(|e| anyhow::anyhow!("{}: unusable PSF: {e}", path.display()))?;
    Ok(p)
}

impl From<Method> for DeblurMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::PnpFista => DeblurMethod::PnpFista,
            Method::PnpAdmm => DeblurMethod::PnpAdmm,
            Method::Red => DeblurMethod::Red,
            Method::Learned => DeblurMethod::Learned,
        }
    }
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
    let strength = args
        .strength
        .unwrap_or(sparseinv::pipeline::PNP_DEFAULT_STRENGTH);
    let iters = args.iters.unwrap_or(sparseinv::pipeline::PNP_DEFAULT_ITERS);
    if !(strength > 0.0 && strength.is_finite()) {
        bail!("--strength must be finite and > 0, got {strength}");
    }
    if iters == 0 {
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
    let psf = read_psf(&args.psf)?;
    if let Some(s) = args.sigma.filter(|s| !(*s >= 0.0 && s.is_finite())) {
        bail!("--sigma must be finite and >= 0, got {s}");
    }
    let opts = DeblurOptions {
        method: args.method.into(),
        model: (args.model != "builtin").then(|| PathBuf::from(&args.model)),
        denoiser: DenoiseModel::from_name(&args.denoiser),
        sigma: args.sigma,
        strength,
        iters,
        normalization: match (args.offset, args.scale, kin) {
            (Some(offset), Some(scale), _) => Some((offset, scale)),
            (_, _, FileKind::Picture) => Some((0.0, 1.0)),
            _ => None,
        },
        percentiles: (args.percentiles[0], args.percentiles[1]),
        tile: args.tile,
        overlap: args.overlap,
        session: args.runtime.session_options(),
    };
    let what = if args.method == Method::Learned {
        &args.model
    } else {
        &args.denoiser
    };
    let pb = super::progress_bar(0, &format!("{} deblur", opts.method.name()));
    let Deblurred { image: x, report } =
        deblur_with_progress(y.view(), psf.view(), &opts, &mut |p| {
            pb.set_length(p.total as u64);
            pb.set_position(p.done as u64);
        })
        .with_context(|| format!("deblurring {} with {what}", args.input))?;
    pb.finish_and_clear();
    let (sigma, method) = (report.sigma, report.method.name());
    match kin {
        FileKind::Fits => {
            let command: Vec<String> = std::env::args().collect();
            let mut extra = Header::default();
            extra.set_str("DEBLUR", method, "deblurring method");
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
        "deblurred {} ({}×{}) by {method} with {}, σ = {sigma:.4e}, {} iterations, \
         {:.2} s -> {}",
        args.input,
        y.nrows(),
        y.ncols(),
        report.model,
        report.iterations,
        report.seconds,
        args.output.display()
    );
    if let Some(j) = &args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("input".into(), serde_json::json!(args.input));
            o.insert("psf".into(), serde_json::json!(args.psf));
            o.insert("output".into(), serde_json::json!(args.output));
        }
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
