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
    /// Deconvolve a FITS image by a known PSF (Wiener, Tikhonov, Richardson–Lucy, starlet).
    #[cfg(feature = "fits")]
    Deconvolve(cli::deconvolve::DeconvolveArgs),
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
        #[cfg(feature = "fits")]
        Command::Deconvolve(args) => cli::deconvolve::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
