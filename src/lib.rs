//! # sparseinv
//!
//! Sparse inverse problems and image restoration. This facade crate re-exports the solvers
//! (`sparseinv-solvers`) and adds I/O and pipelines.

#![warn(missing_docs)]

pub mod io;
pub mod psf;
pub mod tiling;

pub use sparseinv_solvers as solvers;
