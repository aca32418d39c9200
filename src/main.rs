//! The `sparseinv` command-line tool. Each subcommand lives in its own module under `src/cli/`.

use clap::{Parser, Subcommand};

#[allow(dead_code)]
mod cli;

/// Sparse inverse problems and image restoration.
#[derive(Parser, Debug)]
#[command(name = "sparseinv", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the version and the enabled features.
    Info,
    /// Estimate an empirical PSF from the isolated, unsaturated stars of a FITS image.
    #[cfg(feature = "fits")]
    Psf(cli::psf::PsfArgs),
    /// Sparse channel estimation: (block / Kronecker) sparse Bayesian learning or OMP.
    Channel(Box<cli::channel::ChannelArgs>),
    /// Sparse coding in a dense dictionary: min_x ½‖Ax − y‖² + R(x) by FISTA.
    SparseCode(cli::sparse_code::Args),
    /// Denoise an image (.npy or PNG) with a learned ONNX denoiser, in overlapping tiles.
    #[cfg(feature = "onnx")]
    Denoise(Box<cli::denoise::DenoiseArgs>),
    /// Self-calibration / blind deconvolution by linear least squares (Ling & Strohmer).
    Selfcal(cli::selfcal::SelfcalArgs),
    /// Deconvolve a FITS image by a known PSF (Wiener, Tikhonov, Richardson–Lucy, starlet).
    #[cfg(feature = "fits")]
    Deconvolve(cli::deconvolve::DeconvolveArgs),
    /// Joint multiband deconvolution: low-resolution bands restored on the grid of a
    /// high-resolution wide band that covers them (e.g. Rubin r/i/z with Euclid VIS).
    #[cfg(feature = "fits")]
    Multiband(Box<cli::multiband::MultibandArgs>),
    /// Deblur an image (FITS, PNG/TIFF, .npy) by a known PSF with deep priors: plug-and-play
    /// (FISTA, ADMM), RED, or the learned Wiener-feature model.
    #[cfg(all(feature = "onnx", feature = "fits"))]
    Deblur(Box<cli::deblur::DeblurArgs>),
    /// Restore an image (deblurring, super-resolution, inpainting) with per-pixel
    /// uncertainty: variational inference in the latent space of a learned prior (VBLE-xz).
    #[cfg(all(feature = "onnx", feature = "fits"))]
    Restore(Box<cli::restore::RestoreArgs>),
    /// ONNX Runtime of the deep priors: `install` it into the per-user cache (from PyPI, with
    /// a verified checksum), or show where it is found (`info`).
    #[cfg(feature = "onnx")]
    Runtime(cli::runtime::RuntimeCmd),
}

fn main() {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Info => {
            println!("sparseinv {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        #[cfg(feature = "fits")]
        Command::Psf(args) => cli::psf::run(args),
        Command::Channel(a) => cli::channel::run(*a),
        Command::SparseCode(args) => cli::sparse_code::run(args),
        #[cfg(feature = "onnx")]
        Command::Denoise(a) => cli::denoise::run(*a),
        Command::Selfcal(a) => cli::selfcal::run(a),
        #[cfg(feature = "fits")]
        Command::Deconvolve(args) => cli::deconvolve::run(args),
        #[cfg(feature = "fits")]
        Command::Multiband(a) => cli::multiband::run(*a),
        #[cfg(all(feature = "onnx", feature = "fits"))]
        Command::Deblur(a) => cli::deblur::run(*a),
        #[cfg(all(feature = "onnx", feature = "fits"))]
        Command::Restore(a) => cli::restore::run(*a),
        #[cfg(feature = "onnx")]
        Command::Runtime(a) => cli::runtime::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
