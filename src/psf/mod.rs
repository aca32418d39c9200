//! Point-spread functions: validation, recentring, normalisation, padding/cropping and
//! loading (this module), an empirical PSF estimated from the stars of an image
//! ([`estimate_psf`], in `estimate`), and the robust background statistics it uses
//! ([`background_stats`], in `background`).
//!
//! # Conventions
//! A PSF is an `Array2<f64>` of shape `(rows, cols)` whose centre is the pixel
//! `(rows / 2, cols / 2)` (integer division) for odd and even sizes alike, the convention of
//! the project's convolution operators. A normalised PSF sums to 1, so convolving with it
//! conserves flux.
//!
//! # Empirical estimation ([`estimate_psf`])
//! 1. Background and noise: median and `1.4826 × MAD` of the valid pixels after 3-σ clipping.
//! 2. Detection: local maxima (in a 5×5 window) of a 3×3 box-smoothed image above
//!    `background + k·σ` (smoothing lowers the noise by 3, so the threshold is `k·σ/3` there);
//!    maxima within 3 px of a brighter one are merged.
//! 3. Rejection: detections sharper than any sampled PSF, cosmic rays and hot pixels
//!    (`sharp`: sharpness `1 − m₇/c` above `max_sharpness`, see
//!    [`EstimateParams::max_sharpness`]; in the spirit of DAOFIND's sharpness and of
//!    L.A.Cosmic's fine-structure test), which are then not counted as neighbours; stars whose
//!    stamp would cross the image edge (`edge`), containing an undefined pixel (`masked`),
//!    with a peak at or above the saturation level (`saturated`), with another detection at
//!    least `neighbour_ratio` as bright within `isolation` pixels (`neighbour`), or more
//!    elongated than `max_ellipticity` (`elongated`: streaks, trails, blends).
//! 4. Sub-pixel centre: intensity-weighted centroid of the background-subtracted 5×5 core,
//!    iterated on the shifted stamp.
//! 5. Each accepted stamp is shifted (Lanczos-3 interpolation) so its centroid falls on the
//!    stamp centre, its local background (median of the stamp's border) subtracted, and
//!    normalised to unit sum; its FWHM (adaptive moments) is reported per star.
//! 6. Outliers (`outlier`): stars whose FWHM is further than `max(5σ_MAD, 10 %)` from the
//!    median FWHM (at least 3 stars).
//! 7. The PSF is the pixel-wise weighted median of the stamps — weights the background-limited
//!    signal-to-noise ratios `flux/(σ√N)` (`N` stamp pixels; the gain is unknown, so photon
//!    noise is not modelled), capped at 4× their median so that no single star decides —
//!    clipped at 0 and renormalised.

mod background;
mod estimate;

pub use background::{background_map, background_stats, BackgroundMap};
pub use estimate::{estimate_psf, EstimateParams, EstimateReport, Star};

use ndarray::{Array2, ArrayView2};

/// Errors of PSF handling.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum PsfError {
    /// The PSF array is empty.
    #[error("the PSF is empty")]
    Empty,
    /// The PSF has NaN or infinite values.
    #[error("the PSF has {0} NaN or infinite pixels")]
    NotFinite(usize),
    /// The PSF's sum is zero or negative, so it cannot be normalised.
    #[error("the PSF sums to {0}, which is not positive")]
    NonPositiveSum(f64),
    /// The PSF is larger than the image it is applied to.
    #[error("the PSF ({psf:?}) is larger than the image ({image:?})")]
    LargerThanImage {
        /// PSF shape.
        psf: (usize, usize),
        /// Image shape.
        image: (usize, usize),
    },
    /// Invalid parameters.
    #[error("{0}")]
    Params(String),
    /// No star passed the selection.
    #[error("no usable star found: {0}")]
    NoStars(String),
}

/// How to find the centre of a PSF before moving it to `(rows / 2, cols / 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Centre {
    /// The brightest pixel, refined to sub-pixel precision by a parabola through the
    /// logarithms of it and its two neighbours on each axis (exact for a Gaussian core).
    Peak,
    /// The intensity-weighted centroid of the positive part of the PSF.
    Centroid,
}

/// Check that a PSF can be used: non-empty, all finite, positive sum. Returns the sum.
pub fn validate(psf: ArrayView2<'_, f64>) -> Result<f64, PsfError> {
    if psf.is_empty() {
        return Err(PsfError::Empty);
    }
    let bad = psf.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        return Err(PsfError::NotFinite(bad));
    }
    let sum: f64 = psf.sum();
    if sum <= 0.0 || !sum.is_finite() {
        return Err(PsfError::NonPositiveSum(sum));
    }
    Ok(sum)
}

/// Check that a PSF is no larger than an image on either axis.
pub fn check_fits_image(psf: (usize, usize), image: (usize, usize)) -> Result<(), PsfError> {
    if psf.0 > image.0 || psf.1 > image.1 {
        return Err(PsfError::LargerThanImage { psf, image });
    }
    Ok(())
}

/// Divide by the sum so the PSF sums to 1. Returns the PSF and its sum before.
pub fn normalize(psf: ArrayView2<'_, f64>) -> Result<(Array2<f64>, f64), PsfError> {
    let sum = validate(psf)?;
    Ok((psf.mapv(|v| v / sum), sum))
}

/// The intensity-weighted centroid `(y, x)` of the positive pixels, in pixel coordinates.
pub fn centroid(psf: ArrayView2<'_, f64>) -> Option<(f64, f64)> {
    let (mut sw, mut sy, mut sx) = (0.0, 0.0, 0.0);
    for ((y, x), &v) in psf.indexed_iter() {
        if v > 0.0 && v.is_finite() {
            sw += v;
            sy += v * y as f64;
            sx += v * x as f64;
        }
    }
    (sw > 0.0).then(|| (sy / sw, sx / sw))
}

/// Sub-pixel position `(y, x)` of the brightest pixel (on each axis, the vertex of the parabola
/// through the logarithms of the peak and its two neighbours; plain values if any is ≤ 0).
pub fn peak(psf: ArrayView2<'_, f64>) -> Option<(f64, f64)> {
    let (mut by, mut bx, mut bv) = (0, 0, f64::NEG_INFINITY);
    for ((y, x), &v) in psf.indexed_iter() {
        if v > bv {
            (by, bx, bv) = (y, x, v);
        }
    }
    if !bv.is_finite() {
        return None;
    }
    let (ny, nx) = psf.dim();
    let refine = |m: f64, c: f64, p: f64| -> f64 {
        // a parabola through the logarithms (exact for a Gaussian peak) when all are positive
        let (m, c, p) = if m > 0.0 && p > 0.0 && c > 0.0 {
            (m.ln(), c.ln(), p.ln())
        } else {
            (m, c, p)
        };
        let d = m - 2.0 * c + p;
        if d < 0.0 {
            (0.5 * (m - p) / d).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let dy = if by > 0 && by + 1 < ny {
        refine(psf[[by - 1, bx]], bv, psf[[by + 1, bx]])
    } else {
        0.0
    };
    let dx = if bx > 0 && bx + 1 < nx {
        refine(psf[[by, bx - 1]], bv, psf[[by, bx + 1]])
    } else {
        0.0
    };
    Some((by as f64 + dy, bx as f64 + dx))
}

fn lanczos3(t: f64) -> f64 {
    let a = 3.0;
    if t.abs() < 1e-12 {
        1.0
    } else if t.abs() >= a {
        0.0
    } else {
        let pt = std::f64::consts::PI * t;
        a * pt.sin() * (pt / a).sin() / (pt * pt)
    }
}

/// Normalised Lanczos-3 weights for sampling at `j0 − frac` (`frac` ∈ [0, 1)) from the pixels
/// `j0 − 3 ..= j0 + 2` (index k ↔ pixel offset k − 3), the six within distance 3.
fn lanczos_weights(frac: f64) -> [f64; 6] {
    let mut w = [0.0; 6];
    for (k, wk) in w.iter_mut().enumerate() {
        *wk = lanczos3(k as f64 - 3.0 + frac);
    }
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    w
}

/// Shift an image by `(dy, dx)` pixels (output(y, x) = input(y − dy, x − dx)) with separable
/// Lanczos-3 interpolation; pixels that come from outside the array are zero.
pub fn shift(img: ArrayView2<'_, f64>, dy: f64, dx: f64) -> Array2<f64> {
    let (ny, nx) = img.dim();
    let pass = |src: &Array2<f64>, d: f64, axis: usize| -> Array2<f64> {
        let n = if axis == 0 { ny } else { nx };
        let fl = d.floor();
        let w = lanczos_weights(d - fl); // sample at position i - d = (i - fl) - frac
        let base = -(fl as isize);
        let mut out = Array2::zeros((ny, nx));
        for y in 0..ny {
            for x in 0..nx {
                let i = if axis == 0 { y } else { x } as isize;
                let mut acc = 0.0;
                for (k, wk) in w.iter().enumerate() {
                    let j = i + base + k as isize - 3;
                    if j >= 0 && (j as usize) < n {
                        let v = if axis == 0 {
                            src[[j as usize, x]]
                        } else {
                            src[[y, j as usize]]
                        };
                        acc += wk * v;
                    }
                }
                out[[y, x]] = acc;
            }
        }
        out
    };
    let tmp = pass(&img.to_owned(), dy, 0);
    pass(&tmp, dx, 1)
}

/// Move the PSF's centre (found by `method`) to `(rows / 2, cols / 2)` with a sub-pixel
/// Lanczos-3 shift. Returns the shifted PSF and the applied shift `(dy, dx)`. The sum is
/// preserved up to the interpolation's ripple and the flux shifted out of the array.
pub fn recentre(
    psf: ArrayView2<'_, f64>,
    method: Centre,
) -> Result<(Array2<f64>, (f64, f64)), PsfError> {
    validate(psf)?;
    let (ny, nx) = psf.dim();
    let (cy, cx) = match method {
        Centre::Peak => peak(psf),
        Centre::Centroid => centroid(psf),
    }
    .ok_or(PsfError::NonPositiveSum(psf.sum()))?;
    let (dy, dx) = ((ny / 2) as f64 - cy, (nx / 2) as f64 - cx);
    if dy.abs() < 1e-9 && dx.abs() < 1e-9 {
        return Ok((psf.to_owned(), (0.0, 0.0)));
    }
    Ok((shift(psf, dy, dx), (dy, dx)))
}

/// Pad with zeros or crop to `shape`, keeping the centre pixel `(rows / 2, cols / 2)` at the
/// centre `(shape.0 / 2, shape.1 / 2)` of the result.
pub fn pad_crop(psf: ArrayView2<'_, f64>, shape: (usize, usize)) -> Array2<f64> {
    let (ny, nx) = psf.dim();
    let mut out = Array2::zeros(shape);
    let (oy, ox) = (
        (shape.0 / 2) as isize - (ny / 2) as isize,
        (shape.1 / 2) as isize - (nx / 2) as isize,
    );
    for ((y, x), &v) in psf.indexed_iter() {
        let (ty, tx) = (y as isize + oy, x as isize + ox);
        if ty >= 0 && tx >= 0 && (ty as usize) < shape.0 && (tx as usize) < shape.1 {
            out[[ty as usize, tx as usize]] = v;
        }
    }
    out
}

/// Options of [`prepare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrepareOptions {
    /// Recentre with this method (`None`: keep as is).
    pub recentre: Option<Centre>,
    /// Normalise to unit sum (the default; `false` keeps the PSF's own sum).
    pub normalize: bool,
    /// Pad or crop to this shape, after recentring.
    pub shape: Option<(usize, usize)>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            recentre: None,
            normalize: true,
            shape: None,
        }
    }
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareReport {
    /// Sum of the PSF as given.
    pub original_sum: f64,
    /// Shift applied by recentring `(dy, dx)`.
    pub shift: (f64, f64),
    /// Human-readable warnings (e.g. the PSF was not normalised).
    pub warnings: Vec<String>,
}

/// Validate, optionally recentre, pad/crop and normalise a PSF. A PSF whose sum differs from
/// 1 by more than 1e-3 gets a warning in the report (normalised unless
/// `opts.normalize == false`).
pub fn prepare(
    psf: ArrayView2<'_, f64>,
    opts: &PrepareOptions,
) -> Result<(Array2<f64>, PrepareReport), PsfError> {
    let sum = validate(psf)?;
    let mut warnings = Vec::new();
    let (mut p, sh) = match opts.recentre {
        Some(m) => recentre(psf, m)?,
        None => (psf.to_owned(), (0.0, 0.0)),
    };
    if let Some(shape) = opts.shape {
        if shape.0 == 0 || shape.1 == 0 {
            return Err(PsfError::Params(format!("bad PSF shape {shape:?}")));
        }
        p = pad_crop(p.view(), shape);
    }
    if (sum - 1.0).abs() > 1e-3 {
        warnings.push(if opts.normalize {
            format!("the PSF summed to {sum:.6}; normalised to 1")
        } else {
            format!("the PSF sums to {sum:.6}, not 1 (kept: --no-normalize)")
        });
    }
    if opts.normalize {
        p = normalize(p.view())?.0;
    } else {
        validate(p.view())?;
    }
    Ok((
        p,
        PrepareReport {
            original_sum: sum,
            shift: sh,
            warnings,
        },
    ))
}

/// Full width at half maximum (pixels) of a PSF from adaptive Gaussian-weighted second
/// moments: for a Gaussian of standard deviation σ it returns `2 √(2 ln 2) σ` exactly (up to
/// sampling). The moments are taken about the centroid.
pub fn fwhm(psf: ArrayView2<'_, f64>) -> Option<f64> {
    let (cy, cx) = centroid(psf)?;
    let mut sw2 = 2.0f64; // weight variance, start at σ_w = √2 px
    let mut sigma2 = 0.0;
    for _ in 0..100 {
        let (mut w0, mut m2) = (0.0, 0.0);
        for ((y, x), &v) in psf.indexed_iter() {
            let r2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
            let w = (-r2 / (2.0 * sw2)).exp() * v;
            w0 += w;
            m2 += w * r2;
        }
        if w0 <= 0.0 {
            return None;
        }
        // weighted variance per axis of the product Gaussian: σp² = σ²σw²/(σ²+σw²)
        let sp2 = m2 / w0 / 2.0;
        if sp2 >= sw2 {
            return None;
        }
        sigma2 = sp2 * sw2 / (sw2 - sp2);
        if (sigma2 - sw2).abs() < 1e-10 * sw2 {
            break;
        }
        sw2 = sigma2;
    }
    Some(2.0 * (2.0 * std::f64::consts::LN_2).sqrt() * sigma2.sqrt())
}

/// Load a PSF from a FITS image HDU (`hdu`: 0-based, `None`: the first image) and check it
/// with [`validate`]: a 3-D cube, a one-dimensional array (`NAXIS = 1`), NaN/infinite pixels or a
/// non-positive sum are errors that name the file. The PSF is returned as stored (see
/// [`prepare`] to recentre/normalise).
#[cfg(feature = "fits")]
pub fn load_psf(
    path: impl AsRef<std::path::Path>,
    hdu: Option<usize>,
) -> Result<Array2<f64>, crate::io::IoError> {
    let path = path.as_ref();
    let img = crate::io::fits::read_fits(path, hdu)?;
    if img.header.get_f64("NAXIS") == Some(1.0) {
        return Err(crate::io::IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "the PSF is one-dimensional (NAXIS = 1, {} samples): a 2-D PSF image is needed \
                 (for a circularly symmetric or separable blur, store the 2-D profile, e.g. the \
                 outer product of the 1-D one with itself; a 1 × n motion blur is a 2-D image \
                 with NAXIS2 = 1)",
                img.data.len()
            ),
        });
    }
    let p = img.image2d()?.to_owned();
    validate(p.view()).map_err(|e| crate::io::IoError::Format {
        path: path.to_path_buf(),
        reason: format!("unusable PSF: {e}"),
    })?;
    Ok(p)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn gauss(n: usize, cy: f64, cx: f64, s: f64) -> Array2<f64> {
        Array2::from_shape_fn((n, n), |(y, x)| {
            (-((y as f64 - cy).powi(2) + (x as f64 - cx).powi(2)) / (2.0 * s * s)).exp()
        })
    }

    #[test]
    fn validation_errors() {
        let z = Array2::<f64>::zeros((3, 3));
        assert_eq!(validate(z.view()), Err(PsfError::NonPositiveSum(0.0)));
        let mut n = Array2::<f64>::ones((3, 3));
        n[[1, 1]] = f64::NAN;
        assert_eq!(validate(n.view()), Err(PsfError::NotFinite(1)));
        assert!(check_fits_image((5, 5), (4, 10)).is_err());
    }

    #[test]
    fn recentre_moves_centroid_to_centre() {
        for (n, method) in [(21, Centre::Centroid), (20, Centre::Peak)] {
            let g = gauss(n, 8.3, 11.6, 2.0);
            let (r, _) = recentre(g.view(), method).unwrap();
            let (cy, cx) = centroid(r.view()).unwrap();
            assert!((cy - (n / 2) as f64).abs() < 0.02, "{cy}");
            assert!((cx - (n / 2) as f64).abs() < 0.02, "{cx}");
            // the shape is a Gaussian centred at n/2
            let t = gauss(n, (n / 2) as f64, (n / 2) as f64, 2.0);
            let err = (&r - &t).mapv(f64::abs).sum() / t.sum();
            assert!(err < 0.01, "{err}");
        }
    }

    #[test]
    fn pad_crop_keeps_centre() {
        let g = gauss(9, 4.0, 4.0, 1.0);
        let p = pad_crop(g.view(), (16, 15));
        assert_eq!(p[[8, 7]], g[[4, 4]]);
        let c = pad_crop(p.view(), (9, 9));
        assert_eq!(c, g);
    }

    #[test]
    fn fwhm_of_gaussian() {
        let g = gauss(41, 20.3, 19.8, 2.5);
        let f = fwhm(g.view()).unwrap();
        assert!((f - 2.5 * 2.354_820_045).abs() < 1e-3, "{f}");
    }

    #[test]
    fn prepare_normalises_and_warns() {
        let g = gauss(11, 5.0, 5.0, 1.5);
        let (p, rep) = prepare(g.view(), &PrepareOptions::default()).unwrap();
        assert!((p.sum() - 1.0).abs() < 1e-12);
        assert_eq!(rep.warnings.len(), 1);
        let opts = PrepareOptions {
            normalize: false,
            ..Default::default()
        };
        let (q, _) = prepare(g.view(), &opts).unwrap();
        assert_eq!(q, g);
    }
}
