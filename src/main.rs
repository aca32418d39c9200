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
    /// Self-calibration / blind deconvolution by linear least squares (Ling & Strohmer).
    Selfcal(cli::selfcal::SelfcalArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Info => {
            println!("sparseinv {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Selfcal(a) => cli::selfcal::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
