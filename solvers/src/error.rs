//! The error type of `sparseinv-solvers`.

use thiserror::Error;

/// Everything that can go wrong in the solvers crate on user input.
///
/// Operators, proxes and solvers validate what they are given and return one of these
/// instead of panicking; panics are reserved for violated internal invariants.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was being checked (e.g. "Conv2d input").
        what: String,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name as the user knows it.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Input contains NaN or infinite values.
    #[error("{what} contains a non-finite value (NaN or Inf) at flat index {index}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Flat (row-major) index of the first offending element.
        index: usize,
    },
    /// An input array has no elements.
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: String,
    },
    /// The requested combination is not supported (e.g. a real-only penalty on complex data).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A numerical failure (singular system, divergence that cannot be recovered, ...).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// An external backend failed (e.g. an ONNX Runtime session behind a `Denoiser`); the
    /// message says what happened and how to fix it.
    #[error("backend failure: {0}")]
    Backend(String),
}

/// `Result` with [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(what: impl Into<String>, expected: &[usize], got: &[usize]) -> Self {
        Error::ShapeMismatch {
            what: what.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }
}

/// Check that every element of `x` is finite; report the first offending flat index.
pub fn check_finite<'a, T: crate::Scalar, I: IntoIterator<Item = &'a T>>(
    what: &str,
    x: I,
) -> Result<()> {
    for (i, v) in x.into_iter().enumerate() {
        if !v.is_finite_scalar() {
            return Err(Error::NonFinite {
                what: what.to_string(),
                index: i,
            });
        }
    }
    Ok(())
}
