//! Subcommands of the `sparseinv` binary and the helpers they share (progress bars, JSON
//! reports, safe output writing).

pub mod channel;
#[cfg(all(feature = "onnx", feature = "fits"))]
pub mod deblur;
#[cfg(feature = "fits")]
pub mod deconvolve;
#[cfg(feature = "onnx")]
pub mod denoise;
#[cfg(feature = "fits")]
pub mod multiband;
#[cfg(feature = "fits")]
pub mod psf;
#[cfg(all(feature = "onnx", feature = "fits"))]
pub mod restore;
#[cfg(feature = "onnx")]
pub mod runtime;
pub mod selfcal;
pub mod sparse_code;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// Where the networks of `denoise` and `deblur` run (flattened into both commands' arguments).
#[cfg(feature = "onnx")]
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Execution device of the networks: cpu, or cuda (ONNX Runtime's CUDA provider, when
    /// present; a clear error says when it is not).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,
    /// ONNX Runtime intra-op threads (default: cores, at most 4).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[cfg(feature = "onnx")]
impl RuntimeArgs {
    /// The ONNX Runtime session options these arguments ask for.
    pub fn session_options(&self) -> sparseinv_models::SessionOptions {
        let mut o = sparseinv_models::SessionOptions {
            device: if self.device == "cuda" {
                sparseinv_models::Device::Cuda(0)
            } else {
                sparseinv_models::Device::Cpu
            },
            ..Default::default()
        };
        if let Some(t) = self.threads {
            o.intra_threads = t;
        }
        o
    }
}

/// A progress bar on stderr for `len` iterations (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} {per_sec}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// Write a JSON report atomically (a report is an output: refused if it exists, unless `force`).
pub fn write_json(path: &Path, value: &serde_json::Value, force: bool) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    sparseinv::io::atomic_write(path, force, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| sparseinv::io::IoError::Os {
            path: tmp.to_path_buf(),
            source: e,
        })
    })
    .with_context(|| format!("writing report {}", path.display()))
}

/// Refuse, before any work is done, when one of `outputs` exists and `force` is off.
pub fn check_outputs<'a>(
    outputs: impl IntoIterator<Item = &'a Path>,
    force: bool,
) -> anyhow::Result<()> {
    for p in outputs {
        if p.exists() && !force {
            anyhow::bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    Ok(())
}

/// A 2-D FITS image read for processing: the file, its pixels and validity mask.
#[cfg(feature = "fits")]
pub struct FitsInput {
    /// The image as read (header, path, HDU, `BITPIX`); its pixel arrays are moved to
    /// `data` and `valid` (left empty here).
    pub image: sparseinv::io::fits::FitsImage,
    /// The pixels, `(NAXIS2, NAXIS1)`; undefined pixels are NaN.
    pub data: ndarray::Array2<f64>,
    /// `true` where the pixel is defined.
    pub valid: ndarray::Array2<bool>,
}

#[cfg(feature = "fits")]
impl FitsInput {
    /// Number of defined pixels.
    pub fn n_valid(&self) -> usize {
        self.valid.iter().filter(|&&b| b).count()
    }
}

/// Read `spec` (`file.fits` or `file.fits[N]`, `hdu` from `--hdu`) as a 2-D image; errors
/// name the file (a cube, a table HDU, every pixel masked, ...).
#[cfg(feature = "fits")]
pub fn read_fits_input(spec: &str, hdu: Option<usize>) -> anyhow::Result<FitsInput> {
    let mut image = sparseinv::io::fits::read_fits_spec(spec, hdu)?;
    // the one plane moves out of the file's arrays (no copy of the pixels)
    let data = image.take_image2d()?;
    let (ny, nx) = data.dim();
    let valid = std::mem::take(&mut image.valid)
        .into_shape_with_order((ny, nx))
        .expect("one plane of ny × nx");
    if !valid.iter().any(|&b| b) {
        anyhow::bail!("{}: every pixel is masked", image.path.display());
    }
    Ok(FitsInput { image, data, valid })
}

/// Load a PSF from FITS for an image of shape `image_shape`, validated (finite, positive
/// sum) and no larger than the image, as stored (the pipelines normalise it). Errors name the
/// PSF file.
#[cfg(feature = "fits")]
pub fn load_psf_checked(
    path: &Path,
    image_shape: (usize, usize),
) -> anyhow::Result<ndarray::Array2<f64>> {
    let psf = sparseinv::psf::load_psf(path, None)?;
    sparseinv::psf::check_fits_image(psf.dim(), image_shape)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(psf)
}

/// The HISTORY lines every FITS output of `sparseinv <sub>` starts with: the version and
/// subcommand, and the full command line.
pub fn history_lines(sub: &str) -> Vec<String> {
    let command: Vec<String> = std::env::args().collect();
    vec![
        format!("sparseinv {} {sub}", env!("CARGO_PKG_VERSION")),
        format!("command: {}", command.join(" ")),
    ]
}
