//! `sparseinv restore IN [--psf PSF] [--scale F] [--mask MASK] -o MEAN [--std STD]`:
//! restoration with per-pixel uncertainty by variational inference in the latent space of a
//! learned prior (VBLE-xz; see `sparseinv::pipeline::restore`).
//!
//! Degradations: `--psf` (deblurring), `--scale F` (super-resolution by `F`: the input is the
//! `F × F` block average of the image wanted, which comes out `F` times larger; with `--psf`
//! too, the PSF is sampled on the fine grid), missing pixels (inpainting: NaN/BLANK pixels of
//! a FITS or .npy input, and the pixels where `--mask` is 0). With none of them it denoises.
//!
//! Inputs: FITS (`file.fits[N]` picks an HDU), PNG/TIFF (grey values in `[0, 1]`; colour
//! converted to luma) and `.npy` (2-D float). Outputs by extension, each independently: FITS
//! (32-bit float, the input's header kept when the input is FITS, its WCS refined by `F`),
//! `.npy` (float64) or PNG/TIFF (data in `[0, 1]`: pictures as they are; FITS/.npy data in
//! normalised units `(v − offset)/scale`; the standard deviation always as 16 bit). Existing
//! files are not overwritten without `--force`, and nothing is written when anything fails.

use super::deblur::{file_kind, read_npy_2d, read_psf, FileKind};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Array3, ArrayView2};
use sparseinv::io::fits::{read_fits_spec, write_fits_2d, Header, WriteOptions};
use sparseinv::io::image::{
    read_gray, write_gray, write_uncertainty_panel, BitDepth, Limits, Stretch,
};
use sparseinv::io::wcs::Wcs;
use sparseinv::pipeline::restore::variant_name;
use sparseinv::pipeline::{restore_with_progress, Degradation, RestoreOptions, Restored};
use sparseinv_models::vble::Variant;
use std::path::{Path, PathBuf};

/// Which posterior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// VBLE-xz: latent and pixel-space posterior (calibrated uncertainty).
    VbleXz,
    /// VBLE: latent posterior only (x = decoder mean of z; tighter, less calibrated).
    VbleZ,
    /// Maximum a posteriori of the same prior (no uncertainty).
    Map,
}

impl From<Method> for Variant {
    fn from(m: Method) -> Self {
        match m {
            Method::VbleXz => Variant::VbleXz,
            Method::VbleZ => Variant::ZOnly,
            Method::Map => Variant::Map,
        }
    }
}

/// Arguments of `sparseinv restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Input image: FITS (`file.fits[N]` picks an HDU), PNG, TIFF or .npy (2-D).
    pub input: String,
    /// PSF (deblurring): FITS, .npy or PNG/TIFF, normalised to unit sum, centre at (h/2, w/2);
    /// with --scale it is sampled on the fine (output) grid.
    #[arg(long)]
    pub psf: Option<PathBuf>,
    /// Super-resolution factor: the input is the F×F block average of the output.
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Observed-pixel mask (PNG/TIFF/.npy/FITS, the input's shape): 0 = missing. NaN/BLANK
    /// pixels of the input are missing anyway.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Noise standard deviation in the data's units (default: estimated from the observed
    /// pixels).
    #[arg(long, short = 's')]
    pub sigma: Option<f64>,
    /// Posterior.
    #[arg(long, value_enum, default_value_t = Method::VbleXz)]
    pub method: Method,
    /// Posterior samples for the mean and standard deviation (default: the prior's, 100).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Optimisation steps (default: the prior's, 200).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The prior: `builtin`, or the JSON sidecar of a trained one (graphs beside it).
    #[arg(long, short = 'm', default_value = "builtin")]
    pub model: String,
    /// Posterior mean (the restored image): .fits, .png, .tif/.tiff or .npy.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Per-pixel posterior standard deviation: .fits, .png, .tif/.tiff or .npy.
    #[arg(long)]
    pub std: Option<PathBuf>,
    /// The posterior samples as one float32 .npy array [samples, rows, cols].
    #[arg(long)]
    pub samples_out: Option<PathBuf>,
    /// A PNG panel: input | mean | standard deviation with its colour bar (data units).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write a JSON report here (noise, normalisation, loss history, timings).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fixed normalisation to the prior's [0, 1] range: OFFSET SCALE (default: pictures as
    /// they are, other data by the 0.1 / 99.9 percentiles of the observed pixels).
    #[arg(long, num_args = 2, value_names = ["OFFSET", "SCALE"])]
    pub norm: Option<Vec<f64>>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
    /// Execution device and threads of the networks.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
}

/// Read a 2-D image of any supported kind: pixels (NaN = missing), the FITS header if any,
/// and whether a picture had more than 8 bits.
fn read_any(spec: &str) -> anyhow::Result<(Array2<f64>, Option<Header>, bool)> {
    let path = PathBuf::from(spec);
    Ok(match file_kind(&path)? {
        FileKind::Fits => {
            let img = read_fits_spec(spec, None)?;
            let y = img.image2d()?.to_owned();
            (y, Some(img.header.clone()), false)
        }
        FileKind::Picture => {
            let (y, deep) = read_gray(&path)?;
            (y, None, deep)
        }
        FileKind::Npy => (read_npy_2d(&path)?, None, false),
    })
}

struct Writer<'a> {
    header: Option<&'a Header>,
    /// Normalisation of the data (pictures get normalised values).
    offset: f64,
    scale: f64,
    input_is_picture: bool,
    deep: bool,
    method: &'static str,
    sigma: f64,
    force: bool,
}

impl Writer<'_> {
    /// Write `a` (data units) to `path` by its kind; `what` is `mean`, `std` or a sample.
    fn write(&self, path: &Path, a: ArrayView2<'_, f64>, what: &str) -> anyhow::Result<()> {
        let is_std = what == "std";
        match file_kind(path)? {
            FileKind::Fits => {
                let mut extra = Header::default();
                extra.set_str("RESTORE", self.method, "restoration method (latent prior)");
                extra.set_str("RSTPLANE", what, "posterior mean or standard deviation");
                extra.set_f64("RSTSIGMA", self.sigma, "noise sigma used (data units)");
                let mut history = super::history_lines("restore");
                history.push(format!(
                    "posterior {what} of {} (latent-space VI)",
                    self.method
                ));
                write_fits_2d(
                    path,
                    a.mapv(|v| v as f32).view(),
                    &WriteOptions {
                        header: self.header,
                        extra: Some(&extra),
                        history,
                        force: self.force,
                    },
                )?;
            }
            FileKind::Picture => {
                let u = if self.input_is_picture {
                    a.to_owned()
                } else if is_std {
                    a.mapv(|v| v / self.scale)
                } else {
                    a.mapv(|v| (v - self.offset) / self.scale)
                };
                let depth = if is_std || self.deep || !self.input_is_picture {
                    BitDepth::Sixteen
                } else {
                    BitDepth::Eight
                };
                write_gray(path, u.view(), depth, self.force)?;
            }
            FileKind::Npy => sparseinv::io::npy::write_npy(
                path,
                &sparseinv::io::npy::NpyArray::Real(a.to_owned().into_dyn()),
                self.force,
            )?,
        }
        Ok(())
    }
}

/// Run `sparseinv restore`.
pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let input_path = sparseinv::io::fits::parse_spec(&args.input).0;
    let variant: Variant = args.method.into();
    // outputs: kinds and clashes checked before any work
    let outputs: Vec<&Path> = std::iter::once(args.output.as_path())
        .chain(args.std.as_deref())
        .chain(args.samples_out.as_deref())
        .chain(args.png.as_deref())
        .chain(args.json.as_deref())
        .collect();
    for (i, p) in outputs.iter().enumerate() {
        if sparseinv::io::same_file(p, &input_path) {
            bail!("{} is the input: refusing to overwrite it", p.display());
        }
        if outputs[..i].iter().any(|q| q == p) {
            bail!("{} is named for two outputs", p.display());
        }
    }
    file_kind(&args.output)?;
    if let Some(p) = &args.std {
        file_kind(p)?;
    }
    if let Some(p) = &args.samples_out {
        if !p.to_string_lossy().to_ascii_lowercase().ends_with(".npy") {
            bail!(
                "--samples-out {}: the samples are written as .npy",
                p.display()
            );
        }
    }
    if let Some(p) = &args.png {
        if !p.to_string_lossy().to_ascii_lowercase().ends_with(".png") {
            bail!("--png {}: the panel is a .png", p.display());
        }
    }
    if variant == Variant::Map && (args.std.is_some() || args.samples_out.is_some()) {
        bail!("--method map gives no uncertainty: --std and --samples-out need vble-xz or vble-z");
    }
    super::check_outputs(outputs.iter().copied(), args.force)?;
    if args.scale == 0 {
        bail!("--scale must be at least 1");
    }
    if let Some(s) = args.sigma.filter(|s| !(*s > 0.0 && s.is_finite())) {
        bail!("--sigma must be finite and > 0, got {s}");
    }

    let (mut y, header, deep) = read_any(&args.input)?;
    let is_picture = file_kind(&input_path)? == FileKind::Picture;
    if let Some(m) = &args.mask {
        let (mask, _, _) = read_any(&m.to_string_lossy())
            .with_context(|| format!("reading the mask {}", m.display()))?;
        if mask.dim() != y.dim() {
            bail!(
                "the mask {} is {}×{}, the image {}×{}",
                m.display(),
                mask.nrows(),
                mask.ncols(),
                y.nrows(),
                y.ncols()
            );
        }
        y.zip_mut_with(&mask, |v, &k| {
            if !(k != 0.0 && k.is_finite()) {
                *v = f64::NAN;
            }
        });
    }
    let psf = match &args.psf {
        Some(p) => Some(read_psf(p)?),
        None => None,
    };
    let degradation = match (args.scale, psf) {
        (1, None) => Degradation::None,
        (1, Some(p)) => Degradation::Blur(p),
        (f, psf) => Degradation::Downsample { factor: f, psf },
    };
    let opts = RestoreOptions {
        model: (args.model != "builtin").then(|| PathBuf::from(&args.model)),
        variant,
        sigma: args.sigma,
        steps: args.steps,
        samples: args.samples,
        seed: args.seed,
        keep_samples: args.samples_out.is_some(),
        normalization: match (&args.norm, is_picture) {
            (Some(n), _) => Some((n[0], n[1])),
            (None, true) => Some((0.0, 1.0)),
            (None, false) => None,
        },
        session: args.runtime.session_options(),
        ..Default::default()
    };
    let pb = super::progress_bar(0, &format!("{} restore", variant_name(variant)));
    let Restored {
        mean,
        std,
        samples,
        report,
    } = restore_with_progress(y.view(), &degradation, &opts, &mut |p| {
        let phase = match p.unit {
            sparseinv::pipeline::ProgressUnit::Iterations => "optimise",
            _ => "sample",
        };
        pb.set_message(format!("{} {phase}", variant_name(variant)));
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
    })
    .with_context(|| format!("restoring {}", args.input))?;
    pb.finish_and_clear();

    // the output header: the input's, with the WCS of the finer grid when super-resolving
    let header = header.map(|h| match (args.scale, Wcs::from_header(&h)) {
        (f, Some(w)) if f > 1 => w.refined(f).replace_in_header(&h),
        _ => h,
    });
    let writer = Writer {
        header: header.as_ref(),
        offset: report.offset,
        scale: report.scale,
        input_is_picture: is_picture,
        deep,
        method: variant_name(variant),
        sigma: report.sigma,
        force: args.force,
    };
    writer
        .write(&args.output, mean.view(), "mean")
        .with_context(|| format!("writing {}", args.output.display()))?;
    if let (Some(p), Some(s)) = (&args.std, &std) {
        writer
            .write(p, s.view(), "std")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let (Some(p), Some(ss)) = (&args.samples_out, &samples) {
        let (h, w) = mean.dim();
        let mut cube = Array3::<f32>::zeros((ss.len(), h, w));
        for (k, s) in ss.iter().enumerate() {
            cube.index_axis_mut(ndarray::Axis(0), k)
                .assign(&s.mapv(|v| v as f32));
        }
        sparseinv::io::atomic_write(p, args.force, |tmp| {
            ndarray_npy::write_npy(tmp, &cube).map_err(|e| sparseinv::io::IoError::Format {
                path: p.clone(),
                reason: format!("cannot write the samples: {e}"),
            })
        })
        .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.png {
        let zeros;
        let sd = match &std {
            Some(s) => s.view(),
            None => {
                zeros = Array2::<f64>::zeros(mean.dim());
                zeros.view()
            }
        };
        let stretch = if is_picture {
            Stretch::Linear(Limits::Fixed(0.0, 1.0))
        } else {
            Stretch::default()
        };
        write_uncertainty_panel(
            p,
            y.view(),
            mean.view(),
            sd,
            stretch,
            header.is_some(),
            args.force,
        )
        .with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "restored {} ({}×{} -> {}×{}, {}) by {} with {}, σ = {:.4e}{}, {} steps, {} samples, \
         mean std {:.4e}, {:.1} s -> {}",
        args.input,
        report.input_shape[0],
        report.input_shape[1],
        report.output_shape[0],
        report.output_shape[1],
        report.degradation,
        report.method,
        report.model,
        report.sigma,
        if report.sigma_estimated {
            " (estimated)"
        } else {
            ""
        },
        report.steps,
        report.samples,
        report.mean_std,
        report.seconds,
        args.output.display()
    );
    if let Some(j) = &args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("input".into(), serde_json::json!(args.input));
            o.insert("psf".into(), serde_json::json!(args.psf));
            o.insert("mask".into(), serde_json::json!(args.mask));
            o.insert("output".into(), serde_json::json!(args.output));
            o.insert("std".into(), serde_json::json!(args.std));
            o.insert("samples_out".into(), serde_json::json!(args.samples_out));
        }
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
