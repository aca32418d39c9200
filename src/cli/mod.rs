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
pub mod psf;
pub mod selfcal;
pub mod sparse_code;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

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
