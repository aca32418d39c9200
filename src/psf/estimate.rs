//! Empirical PSF from the isolated, unsaturated stars of an image (see the [parent
//! module](super) for the method).

use super::{background_stats, centroid, check_fits_image, fwhm, normalize, shift, PsfError};
use ndarray::{s, Array2, ArrayView2};
use sparseinv_solvers::stats::median_mut;

/// Parameters of [`estimate_psf`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimateParams {
    /// Side of the (square, odd) PSF stamp in pixels.
    pub size: usize,
    /// Detection threshold in units of the background noise σ.
    pub k_sigma: f64,
    /// Pixels at or above this value are saturated (`None`: no saturation cut unless the
    /// image's maximum is shared by ≥ 3 pixels, a sign of clipping, in which case 0.95 of it).
    pub saturation: Option<f64>,
    /// A star with another detection closer than this (pixels) is rejected
    /// (`None`: the stamp radius `size / 2`), if that detection is at least
    /// `neighbour_ratio` times as bright.
    pub isolation: Option<f64>,
    /// Neighbours fainter than this fraction of the star's peak are tolerated (the median
    /// stack removes them); 0 rejects every neighbour.
    pub neighbour_ratio: f64,
    /// Use at most this many stars (the brightest accepted ones).
    pub max_stars: usize,
}

impl Default for EstimateParams {
    fn default() -> Self {
        EstimateParams {
            size: 25,
            k_sigma: 5.0,
            saturation: None,
            isolation: None,
            neighbour_ratio: 0.05,
            max_stars: 100,
        }
    }
}

impl EstimateParams {
    /// Check the parameters: `size` odd and at least 5, `k_sigma > 0`, `max_stars ≥ 1`.
    pub fn validate(&self) -> Result<(), PsfError> {
        let size = self.size;
        if size < 5 || size % 2 == 0 {
            return Err(PsfError::Params(format!(
                "the PSF size must be odd and at least 5 (got {size})"
            )));
        }
        if self.k_sigma.is_nan() || self.k_sigma <= 0.0 || self.max_stars == 0 {
            return Err(PsfError::Params(
                "k_sigma must be positive and max_stars at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// An accepted star.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Star {
    /// Sub-pixel row of the centroid.
    pub y: f64,
    /// Sub-pixel column of the centroid.
    pub x: f64,
    /// Peak value above background.
    pub peak: f64,
    /// Background-subtracted flux in the stamp.
    pub flux: f64,
}

/// The outcome of [`estimate_psf`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EstimateReport {
    /// Background level (sigma-clipped median).
    pub background: f64,
    /// Background noise σ (1.4826 × MAD).
    pub noise: f64,
    /// Saturation level used, if any.
    pub saturation: Option<f64>,
    /// Number of detections above the threshold.
    pub detected: usize,
    /// Rejected: stamp crossing the image edge.
    pub rejected_edge: usize,
    /// Rejected: an undefined pixel in the stamp.
    pub rejected_masked: usize,
    /// Rejected: saturated peak.
    pub rejected_saturated: usize,
    /// Rejected: a neighbour within the isolation radius.
    pub rejected_neighbour: usize,
    /// Stars used in the stack.
    pub used: usize,
    /// FWHM (pixels) of the resulting PSF, from adaptive moments.
    pub fwhm: Option<f64>,
    /// The stars used.
    pub stars: Vec<Star>,
}

/// Estimate an empirical PSF from isolated, unsaturated stars of `image` (see the [module
/// documentation](super)). `valid` marks defined pixels (`None`: the finite ones). Returns the
/// normalised, centred `size × size` PSF and a report.
pub fn estimate_psf(
    image: ArrayView2<'_, f64>,
    valid: Option<ArrayView2<'_, bool>>,
    params: &EstimateParams,
) -> Result<(Array2<f64>, EstimateReport), PsfError> {
    params.validate()?;
    let size = params.size;
    let (ny, nx) = image.dim();
    check_fits_image((size, size), (ny, nx))?;
    let ok = |y: usize, x: usize| -> bool {
        image[[y, x]].is_finite() && valid.is_none_or(|m| m[[y, x]])
    };
    let (bkg, sigma) = background_stats(
        image
            .indexed_iter()
            .filter(|((y, x), _)| ok(*y, *x))
            .map(|(_, &v)| v),
    )
    .ok_or_else(|| PsfError::NoStars("the image has no valid pixel".into()))?;
    let sigma = if sigma > 0.0 {
        sigma
    } else {
        f64::MIN_POSITIVE
    };

    // saturation level
    let vmax = image
        .indexed_iter()
        .filter(|((y, x), _)| ok(*y, *x))
        .map(|(_, &v)| v)
        .fold(f64::NEG_INFINITY, f64::max);
    let saturation = params.saturation.or_else(|| {
        let n_at_max = image.iter().filter(|&&v| v == vmax).count();
        (n_at_max >= 3).then_some(bkg + 0.95 * (vmax - bkg))
    });

    // 3×3 box smoothing of the background-subtracted image (invalid pixels count as 0)
    let mut sm = Array2::<f64>::zeros((ny, nx));
    for y in 0..ny {
        for x in 0..nx {
            let (mut acc, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..(y + 2).min(ny) {
                for xx in x.saturating_sub(1)..(x + 2).min(nx) {
                    if ok(yy, xx) {
                        acc += image[[yy, xx]] - bkg;
                        n += 1.0;
                    }
                }
            }
            sm[[y, x]] = if n > 0.0 { acc / n } else { 0.0 };
        }
    }
    let thr = params.k_sigma * sigma / 3.0;
    let mut peaks: Vec<(usize, usize, f64)> = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            let v = sm[[y, x]];
            if v <= thr || !ok(y, x) {
                continue;
            }
            let mut is_max = true;
            'w: for yy in y.saturating_sub(2)..(y + 3).min(ny) {
                for xx in x.saturating_sub(2)..(x + 3).min(nx) {
                    let u = sm[[yy, xx]];
                    // strict maximum, ties broken towards the first pixel in raster order
                    if (yy, xx) != (y, x) && (u > v || (u == v && (yy, xx) < (y, x))) {
                        is_max = false;
                        break 'w;
                    }
                }
            }
            if is_max {
                peaks.push((y, x, v));
            }
        }
    }
    // one detection per star: drop maxima within 3 px of a brighter one (flat, clipped tops
    // of saturated stars can give several)
    peaks.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    let mut kept: Vec<(usize, usize, f64)> = Vec::with_capacity(peaks.len());
    for p in peaks {
        let near = kept
            .iter()
            .any(|q| (q.0 as f64 - p.0 as f64).powi(2) + (q.1 as f64 - p.1 as f64).powi(2) < 9.0);
        if !near {
            kept.push(p);
        }
    }
    let peaks = kept;
    let detected = peaks.len();
    let iso = params.isolation.unwrap_or((size / 2) as f64);
    let half = size / 2;
    let mut report = EstimateReport {
        background: bkg,
        noise: sigma,
        saturation,
        detected,
        rejected_edge: 0,
        rejected_masked: 0,
        rejected_saturated: 0,
        rejected_neighbour: 0,
        used: 0,
        fwhm: None,
        stars: Vec::new(),
    };
    // brightest first (already sorted)
    let order: Vec<usize> = (0..peaks.len()).collect();
    let mut stamps: Vec<Array2<f64>> = Vec::new();
    for &i in &order {
        let (py, px, _) = peaks[i];
        // the stamp plus a 3-pixel margin for recentring must lie inside the image
        let m = half + 3;
        if py < m || px < m || py + m >= ny || px + m >= nx {
            report.rejected_edge += 1;
            continue;
        }
        let win = image.slice(s![py - m..=py + m, px - m..=px + m]);
        let masked = (py - m..=py + m).any(|y| (px - m..=px + m).any(|x| !ok(y, x)));
        if masked {
            report.rejected_masked += 1;
            continue;
        }
        let pk = win.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if saturation.is_some_and(|s| pk >= s) {
            report.rejected_saturated += 1;
            continue;
        }
        let crowded = peaks.iter().enumerate().any(|(j, &(qy, qx, qv))| {
            j != i && qv >= params.neighbour_ratio * peaks[i].2 && {
                let d2 = (qy as f64 - py as f64).powi(2) + (qx as f64 - px as f64).powi(2);
                d2 < iso * iso
            }
        });
        if crowded {
            report.rejected_neighbour += 1;
            continue;
        }
        if stamps.len() >= params.max_stars {
            continue;
        }
        // local background from the border of the window
        let mut border: Vec<f64> = Vec::new();
        let w = 2 * m + 1;
        for ((y, x), &v) in win.indexed_iter() {
            if y == 0 || x == 0 || y == w - 1 || x == w - 1 {
                border.push(v);
            }
        }
        let lb = median_mut(&mut border).expect("a stamp border is not empty");
        let sub = win.mapv(|v| v - lb);
        // iterative centroid in the 5×5 core
        let (mut cy, mut cx) = (m as f64, m as f64);
        let mut shifted = sub.clone();
        for _ in 0..5 {
            let core = shifted.slice(s![m - 2..=m + 2, m - 2..=m + 2]);
            let Some((oy, ox)) = centroid(core) else {
                break;
            };
            let (ey, ex) = (oy - 2.0, ox - 2.0);
            if ey.abs() < 1e-4 && ex.abs() < 1e-4 {
                break;
            }
            cy += ey;
            cx += ex;
            if (cy - m as f64).abs() > 2.0 || (cx - m as f64).abs() > 2.0 {
                break;
            }
            shifted = shift(sub.view(), m as f64 - cy, m as f64 - cx);
        }
        let stamp = shifted.slice(s![3..3 + size, 3..3 + size]).to_owned();
        let flux: f64 = stamp.sum();
        if flux.is_nan() || flux <= 0.0 {
            continue;
        }
        report.stars.push(Star {
            y: py as f64 - m as f64 + cy,
            x: px as f64 - m as f64 + cx,
            peak: pk - lb,
            flux,
        });
        stamps.push(stamp.mapv(|v| v / flux));
    }
    report.used = stamps.len();
    if stamps.is_empty() {
        return Err(PsfError::NoStars(format!(
            "{detected} detections above {:.1}σ; rejected {} at the edge, {} masked, {} \
             saturated, {} with neighbours",
            params.k_sigma,
            report.rejected_edge,
            report.rejected_masked,
            report.rejected_saturated,
            report.rejected_neighbour
        )));
    }
    let mut psf = Array2::<f64>::zeros((size, size));
    let mut buf = vec![0.0; stamps.len()];
    for y in 0..size {
        for x in 0..size {
            for (b, st) in buf.iter_mut().zip(&stamps) {
                *b = st[[y, x]];
            }
            psf[[y, x]] = median_mut(&mut buf).expect("at least one stamp").max(0.0);
        }
    }
    let psf = normalize(psf.view())
        .map_err(|_| PsfError::NoStars("the median stack is zero".into()))?
        .0;
    report.fwhm = fwhm(psf.view());
    Ok((psf, report))
}
