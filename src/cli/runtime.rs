//! `sparseinv runtime`: where the ONNX Runtime library of the deep priors comes from, and
//! installing it into the per-user cache so that an installed or copied binary keeps working.

use clap::{Args, Subcommand};
use sparseinv_models::runtime as rt;
use std::path::PathBuf;

/// Arguments of `sparseinv runtime`.
#[derive(Args, Debug)]
pub struct RuntimeCmd {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Fetch ONNX Runtime 1.32.0 from its PyPI wheel (with pip), check the library's SHA-256
    /// and keep it in the per-user cache, where `denoise` and `deblur` find it.
    Install {
        /// Install from this local file instead of downloading: the wheel
        /// (`onnxruntime-1.32.0-*.whl`) or the library itself.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Do not check the SHA-256 (for platforms without a pinned checksum).
        #[arg(long)]
        no_verify: bool,
    },
    /// Show where ONNX Runtime is looked for, and load it.
    Info {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Run `sparseinv runtime`.
pub fn run(a: RuntimeCmd) -> anyhow::Result<()> {
    match a.action {
        Action::Install { from, no_verify } => {
            if no_verify {
                eprintln!("warning: installing without checking the SHA-256 (--no-verify)");
            }
            eprintln!(
                "installing ONNX Runtime {} into {} ...",
                rt::ORT_VERSION,
                rt::cached_library()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(no cache directory)".into())
            );
            let p = rt::install(from.as_deref(), !no_verify)?;
            println!("installed {}", p.display());
            Ok(())
        }
        Action::Info { json } => {
            let cands = rt::candidates_report();
            let loaded = rt::runtime();
            if json {
                let v = serde_json::json!({
                    "candidates": cands.iter().map(|(s, p, e)| serde_json::json!({
                        "source": s, "path": p.display().to_string(), "exists": e,
                    })).collect::<Vec<_>>(),
                    "cache": rt::cached_library().map(|p| p.display().to_string()),
                    "loaded": loaded.as_ref().ok().map(|r| serde_json::json!({
                        "source": r.source(), "path": r.path().display().to_string(),
                        "version": r.version(),
                    })),
                    "error": loaded.as_ref().err().map(|e| e.to_string()),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("ONNX Runtime {} candidates, in order:", rt::ORT_VERSION);
                for (s, p, e) in &cands {
                    println!(
                        "  {s}: {}{}",
                        p.display(),
                        if *e || *s == "system library path" {
                            ""
                        } else {
                            " (missing)"
                        }
                    );
                }
                match loaded {
                    Ok(r) => println!(
                        "loaded {} from {} ({})",
                        r.version(),
                        r.path().display(),
                        r.source()
                    ),
                    Err(e) => println!("not loaded: {e}"),
                }
            }
            Ok(())
        }
    }
}
