//! The error type of `sparseinv-models`.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong when loading or running an ONNX model.
///
/// Every variant's message says what to do about it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the solvers crate (invalid parameter, shape mismatch, ...).
    #[error(transparent)]
    Solvers(#[from] sparseinv_solvers::Error),
    /// No usable ONNX Runtime shared library was found. `tried` lists each place looked at and
    /// why it failed.
    #[error(
        "ONNX Runtime (>= 1.31) could not be loaded. Tried:\n{}\nFix: set ORT_DYLIB_PATH to a \
         libonnxruntime shared library (e.g. the one inside the PyPI wheel onnxruntime==1.32.0, \
         at site-packages/onnxruntime/capi/), or run `sparseinv runtime install` (fetches \
         that wheel with pip, checks the library's SHA-256 and keeps it in the per-user \
         cache), or `python3 -m pip install onnxruntime==1.32.0`, or rebuild with network \
         access to PyPI so that the build script can fetch it (and without \
         SPARSEINV_NO_ORT_DOWNLOAD)",
        .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n")
    )]
    RuntimeNotFound {
        /// One line per candidate: where and why it failed.
        tried: Vec<String>,
    },
    /// Installing ONNX Runtime into the per-user cache failed (`runtime::install`).
    #[error("installing ONNX Runtime failed: {0}")]
    Install(String),
    /// The model file could not be read or is not a valid ONNX graph.
    #[error("cannot load ONNX model {path}: {reason}. Check that the file exists and is an ONNX graph (opset supported by ONNX Runtime 1.32)")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        reason: String,
    },
    /// The model does not follow the contract it is used for (e.g. not N,C,H,W float32).
    #[error("model contract: {0}")]
    Contract(String),
    /// An input does not match the graph's declared shape or element type.
    #[error("input `{name}` of the model: expected {expected}, got {got}")]
    Input {
        /// The graph's input name.
        name: String,
        /// What the graph declares (shape with `?` for dynamic dimensions, element type).
        expected: String,
        /// What was given.
        got: String,
    },
    /// The requested execution provider (e.g. CUDA) is not available in the loaded runtime.
    #[error("execution provider {provider} is not available: {reason}")]
    Provider {
        /// Provider name.
        provider: String,
        /// Why, and how to get it.
        reason: String,
    },
    /// ONNX Runtime failed while running or configuring a session.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
}

/// `Result` with [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for sparseinv_solvers::Error {
    /// Solver-facing traits (e.g. `Denoiser`) return the solvers' error; a models error
    /// becomes [`sparseinv_solvers::Error::Backend`] with its full message, except solver
    /// errors, which pass through unchanged.
    fn from(e: Error) -> Self {
        match e {
            Error::Solvers(s) => s,
            other => sparseinv_solvers::Error::Backend(other.to_string()),
        }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

impl From<ort::Error<ort::session::builder::SessionBuilder>> for Error {
    fn from(e: ort::Error<ort::session::builder::SessionBuilder>) -> Self {
        Error::Runtime(e.to_string())
    }
}
