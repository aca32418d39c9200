//! Empirical PSF estimation: what `sparseinv psf` does, on an in-memory image.

use crate::psf::{EstimateParams, EstimateReport};
use crate::Result;
use ndarray::{Array2, ArrayView2};

/// Options of [`estimate_psf()`]: the estimator's parameters (stamp size, detection threshold,
/// saturation, isolation, number of stars); `Default` is what `sparseinv psf` uses.
pub type PsfOptions = EstimateParams;

/// The result of [`estimate_psf()`].
#[derive(Debug, Clone)]
pub struct EstimatedPsf {
    /// The PSF: `size × size`, unit sum, centre at `(size/2, size/2)`.
    pub psf: Array2<f64>,
    /// Stars detected, used and rejected (by reason), background, noise and FWHM: the
    /// `report` object of `sparseinv psf --json`.
    pub report: EstimateReport,
}

/// Estimate an empirical PSF from the isolated, unsaturated stars of `image` (non-finite
/// pixels are masked); see [`crate::psf`] for the method. Errors on invalid options (e.g. an
/// even `size`), an image smaller than the stamp, or when no star passes the selection.
///
/// ```
/// use sparseinv::pipeline::{estimate_psf, PsfOptions};
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/m13.fits");
/// let img = sparseinv::io::fits::read_fits(path, None).unwrap();
/// let r = estimate_psf(img.image2d().unwrap(), &PsfOptions::default()).unwrap();
/// assert_eq!(r.psf.dim(), (25, 25));
/// assert!((r.psf.sum() - 1.0).abs() < 1e-9);
/// assert!(r.report.used >= 5);
/// ```
pub fn estimate_psf(image: ArrayView2<'_, f64>, opts: &PsfOptions) -> Result<EstimatedPsf> {
    opts.validate()?;
    let valid = image.mapv(f64::is_finite);
    let (psf, report) = crate::psf::estimate_psf(image, Some(valid.view()), opts)?;
    Ok(EstimatedPsf { psf, report })
}
