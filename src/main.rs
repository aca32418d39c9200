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
    /// Sparse coding in a dense dictionary: min_x ½‖Ax − y‖² + R(x) by FISTA.
    SparseCode(cli::sparse_code::Args),
}

fn main() {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Info => {
            println!("sparseinv {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::SparseCode(args) => cli::sparse_code::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
