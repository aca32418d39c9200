//! # sparseinv-solvers
//!
//! The mathematics of sparseinv: one [`op::LinearOperator`] trait shared by every linear map
//! (dense matrices, FFT convolution, masks, Kronecker products, starlet wavelets, ...),
//! proximal terms ([`prox`]), and iterative solvers built on the shared iteration framework
//! ([`iter`]). Pure Rust: no C libraries, no ONNX.
//!
//! Conventions used throughout:
//! - arrays are `ndarray` arrays in row-major order; images are `[rows, cols]`;
//! - the inner product conjugates its first argument, `⟨x, y⟩ = Σ conj(xᵢ) yᵢ`;
//! - every random draw takes a seed; the same seed gives the same bits;
//! - user input is validated and errors are returned as [`Error`], never panics.

#![warn(missing_docs)]

pub(crate) mod alloc;
pub mod boundary;
pub mod dct;
pub mod deconv;
pub mod denoise;
pub mod dense;
pub mod error;
pub mod fft;
pub mod gaussian;
pub mod iter;
pub mod krylov;
pub mod linalg;
pub mod metrics;
pub mod multiband;
pub mod op;
pub(crate) mod par;
pub mod pnp;
pub mod prox;
pub mod proximal;
pub mod random;
pub mod sbl;
pub mod scalar;
pub mod selfcal;
pub mod starlet_denoise;
pub mod stats;
pub mod testing;
pub mod tiling;

pub use error::{Error, Result};
pub use scalar::{Real, Scalar, C32, C64};
