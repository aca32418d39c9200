//! # sparseinv
//!
//! Sparse inverse problems and image restoration. This facade crate re-exports the solvers
//! ([`solvers`], crate `sparseinv-solvers`: operators, proximal terms, solvers) and, with the
//! `onnx` feature, the learned priors ([`models`], crate `sparseinv-models`), and adds file
//! I/O ([`io`]), PSF handling ([`psf`]), tiling ([`tiling`]) and the pipelines of the
//! command-line tool as library functions ([`pipeline`]). Every fallible function returns the
//! one [`Error`] type; [`prelude`] imports what the common tasks need.
//!
//! # Deconvolve a FITS file with its PSF
//! The header (WCS included) is kept; the output is written atomically and never overwrites
//! an existing file unless `force` is set.
//!
//! ```
//! use sparseinv::prelude::*;
//! # let dir = tempfile::tempdir()?;
//! # let out = dir.path().join("m13_rl.fits");
//! let data = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
//! let opts = DeconvolveOptions { method: Method::Wiener, ..Default::default() };
//! let r = deconvolve_fits(format!("{data}/m13.fits"), format!("{data}/m13_psf.fits"), &out, &opts)?;
//! println!("flux {} -> {}", r.report.flux_before, r.report.flux_after);
//! # assert!((r.report.flux_after / r.report.flux_before - 1.0).abs() < 0.01);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # FISTA with CEL0 on a masked convolution
//! Recover a sparse image from a blurred image with missing pixels:
//! `min_x ½‖M(k ∗ x) − y‖² + Σᵢ φ_CEL0(‖aᵢ‖, λ; xᵢ)`, where `aᵢ` is the `i`-th column of
//! `A = M ∘ Conv2d` (CEL0, the continuous exact ℓ0 penalty, needs the column norms).
//!
//! ```
//! use ndarray::{Array2, ArrayD, IxDyn};
//! use sparseinv::prelude::*;
//! let (n, lambda) = (24, 0.02);
//! // a small blur (unit sum) and a regular pattern of missing pixels
//! let psf = Array2::from_shape_vec((3, 3), vec![0.0, 0.1, 0.0, 0.1, 0.6, 0.1, 0.0, 0.1, 0.0])?;
//! let keep = ArrayD::from_shape_fn(IxDyn(&[n, n]), |ix| (ix[0] * 7 + ix[1] * 3) % 5 != 0);
//! let a = Compose::new(
//!     Mask::new(keep),
//!     Conv2d::new([n, n], psf.view(), Boundary::Circular)?,
//! )?;
//! // three spikes, observed through A
//! let mut x_true = ArrayD::<f64>::zeros(IxDyn(&[n, n]));
//! x_true[[5, 6]] = 1.0;
//! x_true[[12, 17]] = 2.0;
//! x_true[[19, 4]] = 1.5;
//! let y = a.apply(x_true.view())?;
//! // CEL0 weights by the column norms ‖A eᵢ‖ (closed form for a masked convolution)
//! let cel0 = Cel0::from_operator(lambda, &a)?;
//! let params = ProximalParams { stop: StopCriteria { max_iters: 2000, ..Default::default() }, ..Default::default() };
//! let (x, report) = proximal::solve(&a, y.view(), &cel0, &params, None, &mut NoObserver)?;
//! let err = (&x - &x_true).iter().fold(0.0f64, |m, d| m.max(d.abs()));
//! assert!(err < 0.05, "max error {err} after {} iterations", report.iterations);
//! # Ok::<(), sparseinv::Error>(())
//! ```
//!
//! # Kronecker sparse Bayesian learning
//! Recover `x` with a Kronecker-structured support from `y = (F₁ ⊗ F₂) x + e`, e.g. an
//! IRS-MIMO channel:
//!
//! ```
//! use ndarray::{Array1, Ix2};
//! use sparseinv::prelude::*;
//! use sparseinv::solvers::random::randn;
//! let f1 = randn::<f64>(&[10, 16], 1).into_dimensionality::<Ix2>()?;
//! let f2 = randn::<f64>(&[10, 16], 2).into_dimensionality::<Ix2>()?;
//! let mut x = Array1::<f64>::zeros(256);
//! x[3 * 16 + 7] = 1.5; // atom (3, 7) of the Kronecker dictionary
//! x[3 * 16 + 9] = -0.8; // atom (3, 9)
//! let a = Kronecker::new(vec![f1.clone(), f2.clone()])?;
//! let y = a.apply(x.view().into_dyn())?.into_dimensionality::<ndarray::Ix1>()?;
//! let params = KsblParams { noise: NoiseModel::Fixed(1e-8), ..Default::default() };
//! let (r, report) = ksbl(&[f1, f2], y.view(), &params, &mut NoObserver)?;
//! assert!(report.iterations >= 1);
//! let err = (&r.mean - &x).iter().fold(0.0f64, |m, d| m.max(d.abs()));
//! assert!(err < 1e-3, "max error {err}");
//! assert!((r.mean[3 * 16 + 7] - 1.5).abs() < 1e-3);
//! # Ok::<(), sparseinv::Error>(())
//! ```

#![warn(missing_docs)]

mod error;
pub mod io;
pub mod pipeline;
pub mod prelude;
pub mod psf;
pub mod tiling;

pub use error::{Error, Result};
#[cfg(feature = "onnx")]
pub use sparseinv_models as models;
pub use sparseinv_solvers as solvers;
