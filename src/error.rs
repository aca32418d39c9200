//! The one error type of the facade crate: every fallible function of `sparseinv` (I/O,
//! PSF handling, tiling, pipelines) returns [`Error`], and the member crates' errors convert
//! into it with `?`.

use std::path::PathBuf;

/// Everything that can go wrong in `sparseinv`: a member crate's error, kept whole (match on
/// the variant to get at it), or a problem with the input of a pipeline.
///
/// ```
/// use sparseinv::{Error, Result};
/// fn check(sigma: f64) -> Result<f64> {
///     if !(sigma >= 0.0) {
///         // the solvers' error converts with `?` or `into()`
///         return Err(sparseinv::solvers::Error::param("sigma", "must be ≥ 0").into());
///     }
///     Ok(sigma)
/// }
/// let e = check(-1.0).unwrap_err();
/// assert!(matches!(e, Error::Solvers(_)));
/// assert_eq!(e.to_string(), "invalid parameter `sigma`: must be ≥ 0");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the solvers crate (invalid parameter, shape mismatch, non-finite input,
    /// numerical failure, ...).
    #[error(transparent)]
    Solvers(#[from] sparseinv_solvers::Error),
    /// An error of the ONNX models crate (runtime not found, model contract, ...).
    #[cfg(feature = "onnx")]
    #[error(transparent)]
    Models(#[from] sparseinv_models::Error),
    /// A file could not be read or written (names the file).
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    /// A PSF is unusable (empty, non-finite, non-positive sum, larger than the image) or no
    /// star could be used to estimate one.
    #[error(transparent)]
    Psf(#[from] crate::psf::PsfError),
    /// An array could not be reshaped.
    #[error(transparent)]
    Shape(#[from] ndarray::ShapeError),
    /// The tiling parameters are invalid or a tile came back with the wrong shape (a failure
    /// of the processing function itself converts to that function's error instead).
    #[error("{0}")]
    Tiling(String),
    /// The input of a pipeline cannot be processed (e.g. every pixel is masked).
    #[error("{0}")]
    Input(String),
    /// An error about a named file: the file and what went wrong with it.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Attach the file this error is about (shown as `path: error`).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        Error::File {
            path: path.into(),
            source: Box::new(self),
        }
    }

    /// Shorthand for [`Error::Input`].
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
}

impl<E: Into<Error>> From<crate::tiling::TileError<E>> for Error {
    fn from(e: crate::tiling::TileError<E>) -> Self {
        use crate::tiling::TileError;
        // the wildcard keeps this exhaustive if the tiler (non-exhaustive) gains variants
        #[allow(unreachable_patterns)]
        match e {
            TileError::Process(e) => e.into(),
            TileError::Params(m) => Error::Tiling(format!("invalid tiling parameters: {m}")),
            TileError::Shape { expected, got } => Error::Tiling(format!(
                "the tile function returned shape {got:?} for an input of shape {expected:?}"
            )),
            _ => Error::Tiling("tiled processing failed".into()),
        }
    }
}
