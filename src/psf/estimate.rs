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
    /// Detections sharper than this are cosmic rays or hot pixels, not stars. Sharpness is
    /// `s = 1 − m₇/c` at the brightest pixel of the detection, with `c` its value and `m₇` the
    /// mean of its 8 neighbours less the brightest one (background subtracted; leaving that
    /// one out makes a two-pixel streak as sharp as a single hit): single hits and two-pixel
    /// streaks have `s ≈ 1`, while a Gaussian star of FWHM `f` pixels centred on a pixel has
    /// `s = 1 − (3e^{−a} + 4e^{−2a})/7` with `a = 4 ln 2 / f²`: 0.93 for `f = 1.2`, 0.83 for
    /// `f = 1.5`, 0.64 for `f = 2`, 0.32 for `f = 3.3`, 0.07 for `f = 8`. Default 0.9: PSFs
    /// sampled finer than a FWHM of about 1.3 px cannot be told from single hits by their
    /// shape (1 switches the cleaning and the test off, for such data). Before detection,
    /// every pixel more than 5σ above the background and sharper than this is replaced by the
    /// median of its neighbours (so hits inside a star's stamp do not enter the stack either);
    /// detections still sharper after that are rejected.
    pub max_sharpness: f64,
    /// Stars more elongated than this are rejected (cosmic-ray streaks, blends, trails):
    /// ellipticity `e = √((M_yy − M_xx)² + 4M_xy²)/(M_yy + M_xx)` of the Gaussian-weighted
    /// second moments of the centred stamp (weight of the star's own FWHM), 0 for a round star,
    /// 1 for a line. Default 0.5 (axis ratio 0.58).
    pub max_ellipticity: f64,
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
            max_sharpness: 0.9,
            max_ellipticity: 0.5,
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
        if !(self.max_sharpness > 0.0 && self.max_sharpness <= 1.0) {
            return Err(PsfError::Params(format!(
                "max_sharpness must lie in (0, 1] (got {})",
                self.max_sharpness
            )));
        }
        if !(self.max_ellipticity > 0.0 && self.max_ellipticity <= 1.0) {
            return Err(PsfError::Params(format!(
                "max_ellipticity must lie in (0, 1] (got {})",
                self.max_ellipticity
            )));
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
    /// FWHM (pixels) of this star's stamp by adaptive moments, if they converge.
    pub fwhm: Option<f64>,
    /// Sharpness `1 − m₇/c` (see [`EstimateParams::max_sharpness`]; NaN when not judged).
    pub sharpness: f64,
    /// Ellipticity of the weighted second moments (see [`EstimateParams::max_ellipticity`]).
    pub ellipticity: f64,
    /// Background-limited signal-to-noise ratio `flux / (σ √(stamp pixels))`.
    pub snr: f64,
    /// Weight in the stack: the SNR capped at 4 × the median SNR of the used stars.
    pub weight: f64,
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
    /// Rejected as cosmic rays or hot pixels: sharper than `max_sharpness` (these
    /// detections are also ignored as neighbours of real stars).
    pub rejected_sharp: usize,
    /// Pixels replaced as cosmic-ray or hot-pixel hits before detection (see
    /// [`EstimateParams::max_sharpness`]).
    pub cosmic_ray_pixels: usize,
    /// Rejected: more elongated than `max_ellipticity`.
    pub rejected_elongated: usize,
    /// Rejected: FWHM far from the other stars' (outliers against the median profile:
    /// blends, galaxies, cosmic-ray blobs that passed the sharpness test).
    pub rejected_outlier: usize,
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

    // cosmic rays and hot pixels: replaced in a working copy (stamps and detection use it)
    let (cleaned, cosmic_ray_pixels) =
        clean_cosmic_rays(image, &ok, bkg, sigma, params.max_sharpness);
    let image = cleaned.view();

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
    let detected = kept.len();
    // cosmic rays and hot pixels: sharper than any sampled PSF; dropped before the neighbour
    // test so that a hit near a star does not cost the star
    let mut rejected_sharp = 0;
    let mut sharp_of = Vec::with_capacity(kept.len());
    let peaks: Vec<(usize, usize, f64)> = kept
        .into_iter()
        .filter(|&(y, x, _)| {
            let sh = sharpness(image, &ok, bkg, y, x);
            if params.max_sharpness < 1.0 && sh.is_some_and(|v| v > params.max_sharpness) {
                rejected_sharp += 1;
                false
            } else {
                sharp_of.push(sh.unwrap_or(f64::NAN));
                true
            }
        })
        .collect();
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
        rejected_sharp: 0,
        cosmic_ray_pixels: 0,
        rejected_elongated: 0,
        rejected_outlier: 0,
        used: 0,
        fwhm: None,
        stars: Vec::new(),
    };
    report.rejected_sharp = rejected_sharp;
    report.cosmic_ray_pixels = cosmic_ray_pixels;
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
        let unit = stamp.mapv(|v| v / flux);
        let star_fwhm = fwhm(unit.view());
        let ellipticity = ellipticity(unit.view(), star_fwhm.unwrap_or(2.0));
        if ellipticity > params.max_ellipticity {
            report.rejected_elongated += 1;
            continue;
        }
        report.stars.push(Star {
            y: py as f64 - m as f64 + cy,
            x: px as f64 - m as f64 + cx,
            peak: pk - lb,
            flux,
            fwhm: star_fwhm,
            sharpness: sharp_of[i],
            ellipticity,
            snr: flux / (sigma * (size * size) as f64).sqrt().max(f64::MIN_POSITIVE),
            weight: 0.0,
        });
        stamps.push(unit);
    }
    // outliers in FWHM against the other stars (robust: median and MAD, at least 3 stars)
    // (a star whose FWHM cannot be measured — faint or crowded — is not judged)
    let fw: Vec<f64> = report.stars.iter().filter_map(|s| s.fwhm).collect();
    if fw.len() >= 3 {
        let (med, sd) = robust_centre_spread(&fw);
        let tol = (5.0 * sd).max(0.1 * med);
        let keep: Vec<bool> = report
            .stars
            .iter()
            .map(|s| s.fwhm.is_none_or(|f| (f - med).abs() <= tol))
            .collect();
        retain_stars(&mut report, &mut stamps, &keep);
    }
    set_weights(&mut report.stars);
    report.used = stamps.len();
    if stamps.is_empty() {
        return Err(PsfError::NoStars(format!(
            "{detected} detections above {:.1}σ; rejected {} at the edge, {} masked, {} \
             saturated, {} with neighbours, {} as cosmic rays or hot pixels, {} elongated, {} \
             outliers",
            params.k_sigma,
            report.rejected_edge,
            report.rejected_masked,
            report.rejected_saturated,
            report.rejected_neighbour,
            report.rejected_sharp,
            report.rejected_elongated,
            report.rejected_outlier
        )));
    }
    let psf = weighted_median_stack(&stamps, &report.stars, size).mapv(|v| v.max(0.0));
    let psf = normalize(psf.view())
        .map_err(|_| PsfError::NoStars("the median stack is zero".into()))?
        .0;
    report.fwhm = fwhm(psf.view());
    Ok((psf, report))
}

/// Sharpness `1 − m₇/c` of the detection at `(y, x)` (see [`EstimateParams::max_sharpness`]):
/// `c` the background-subtracted value of the brightest valid pixel in its 3×3
/// neighbourhood, `m₇` the mean of that pixel's 8 neighbours without the brightest of them.
/// `None` when the pixel is not above the background or a neighbour is outside the image or
/// undefined (then the detection is not judged).
fn sharpness(
    image: ArrayView2<'_, f64>,
    ok: &impl Fn(usize, usize) -> bool,
    bkg: f64,
    y: usize,
    x: usize,
) -> Option<f64> {
    let (ny, nx) = image.dim();
    let mut best: Option<(usize, usize)> = None;
    for yy in y.saturating_sub(1)..(y + 2).min(ny) {
        for xx in x.saturating_sub(1)..(x + 2).min(nx) {
            if ok(yy, xx) && best.is_none_or(|(by, bx)| image[[yy, xx]] > image[[by, bx]]) {
                best = Some((yy, xx));
            }
        }
    }
    let (cy, cx) = best?;
    sharpness_at(image, ok, bkg, cy, cx)
}

/// Sharpness `1 − m₇/c` of the pixel `(y, x)` itself: `None` when it is not above the
/// background, on the image border, or has an undefined neighbour.
fn sharpness_at(
    image: ArrayView2<'_, f64>,
    ok: &impl Fn(usize, usize) -> bool,
    bkg: f64,
    y: usize,
    x: usize,
) -> Option<f64> {
    let (ny, nx) = image.dim();
    let c = image[[y, x]] - bkg;
    if c.is_nan() || c <= 0.0 || y == 0 || x == 0 || y + 1 >= ny || x + 1 >= nx {
        return None;
    }
    let (mut sum, mut top) = (0.0, f64::NEG_INFINITY);
    for yy in y - 1..=y + 1 {
        for xx in x - 1..=x + 1 {
            if (yy, xx) != (y, x) {
                if !ok(yy, xx) {
                    return None;
                }
                let v = image[[yy, xx]] - bkg;
                sum += v;
                top = top.max(v);
            }
        }
    }
    Some(1.0 - (sum - top) / 7.0 / c)
}

/// Ellipticity `√((M_yy − M_xx)² + 4M_xy²)/(M_yy + M_xx)` of the second moments of `stamp`
/// about its centre pixel, weighted by a round Gaussian of FWHM `fwhm` (at least 1 px); 0 when
/// the moments are not positive.
fn ellipticity(stamp: ArrayView2<'_, f64>, fwhm: f64) -> f64 {
    let (h, w) = stamp.dim();
    let (c0, c1) = ((h / 2) as f64, (w / 2) as f64);
    let s2 = (fwhm.max(1.0) / (2.0 * (2.0 * std::f64::consts::LN_2).sqrt())).powi(2);
    let (mut myy, mut mxx, mut mxy) = (0.0, 0.0, 0.0);
    for ((y, x), &v) in stamp.indexed_iter() {
        let (dy, dx) = (y as f64 - c0, x as f64 - c1);
        let g = (-(dy * dy + dx * dx) / (2.0 * s2)).exp() * v;
        myy += g * dy * dy;
        mxx += g * dx * dx;
        mxy += g * dy * dx;
    }
    let tr = myy + mxx;
    if tr.is_nan() || tr <= 0.0 {
        return 0.0;
    }
    (((myy - mxx).powi(2) + 4.0 * mxy * mxy).sqrt() / tr).min(1.0)
}

/// Median and `1.4826 × MAD` of `v` (not empty), from the solvers' robust statistics.
fn robust_centre_spread(v: &[f64]) -> (f64, f64) {
    use sparseinv_solvers::stats::{mad_sigma, median};
    (
        median(v).expect("not empty"),
        mad_sigma(v).expect("not empty"),
    )
}

/// Keep the stars (and their stamps) where `keep` is true, counting the others as outliers.
fn retain_stars(report: &mut EstimateReport, stamps: &mut Vec<Array2<f64>>, keep: &[bool]) {
    let mut k = keep.iter();
    stamps.retain(|_| *k.next().expect("one flag per stamp"));
    let mut k = keep.iter();
    report
        .stars
        .retain(|_| *k.next().expect("one flag per star"));
    report.rejected_outlier += keep.iter().filter(|&&b| !b).count();
}

/// Stack weights: each star's SNR capped at 4 × the median SNR (so that no single bright star
/// outvotes the rest of the median).
fn set_weights(stars: &mut [Star]) {
    if stars.is_empty() {
        return;
    }
    let snr: Vec<f64> = stars.iter().map(|s| s.snr).collect();
    let (med, _) = robust_centre_spread(&snr);
    for s in stars.iter_mut() {
        s.weight = s.snr.min(4.0 * med).max(f64::MIN_POSITIVE);
    }
}

/// Pixel-wise weighted median of the unit-sum stamps (weights from [`set_weights`]): the
/// smallest value whose cumulative weight reaches half the total (the lower weighted median;
/// with equal weights and an even count, the mean of the two middle values as the plain
/// median).
fn weighted_median_stack(stamps: &[Array2<f64>], stars: &[Star], size: usize) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((size, size));
    let equal = stars.windows(2).all(|w| w[0].weight == w[1].weight);
    let mut buf: Vec<(f64, f64)> = Vec::with_capacity(stamps.len());
    for y in 0..size {
        for x in 0..size {
            buf.clear();
            buf.extend(
                stamps
                    .iter()
                    .zip(stars)
                    .map(|(st, s)| (st[[y, x]], s.weight)),
            );
            out[[y, x]] = if equal {
                let mut v: Vec<f64> = buf.iter().map(|p| p.0).collect();
                median_mut(&mut v).expect("at least one stamp")
            } else {
                buf.sort_by(|a, b| a.0.total_cmp(&b.0));
                let half = 0.5 * buf.iter().map(|p| p.1).sum::<f64>();
                let mut acc = 0.0;
                let mut val = buf[buf.len() - 1].0;
                for &(v, w) in &buf {
                    acc += w;
                    if acc >= half {
                        val = v;
                        break;
                    }
                }
                val
            };
        }
    }
    out
}

/// Replaces cosmic-ray and hot-pixel hits in a copy of `image`: a valid pixel more than 5σ
/// above the background whose sharpness `1 − m₇/c` (as in [`sharpness`], from its own 8
/// neighbours, all valid) exceeds `max_sharpness` takes the median of its unflagged
/// neighbours. Two passes, so that the pixels of a streak left after the first are caught.
/// Returns the copy and the number of pixels replaced. A star core is never this sharp
/// unless its FWHM is below about 1.3 px (see [`EstimateParams::max_sharpness`]).
fn clean_cosmic_rays(
    image: ArrayView2<'_, f64>,
    ok: &impl Fn(usize, usize) -> bool,
    bkg: f64,
    sigma: f64,
    max_sharpness: f64,
) -> (Array2<f64>, usize) {
    let (ny, nx) = image.dim();
    let mut img = image.to_owned();
    let mut count = 0;
    if ny < 3 || nx < 3 || max_sharpness >= 1.0 {
        return (img, 0);
    }
    for _pass in 0..2 {
        let mut flagged: Vec<(usize, usize)> = Vec::new();
        for y in 1..ny - 1 {
            for x in 1..nx - 1 {
                let c = img[[y, x]] - bkg;
                if c.is_nan() || c <= 5.0 * sigma || !ok(y, x) {
                    continue;
                }
                if sharpness_at(img.view(), ok, bkg, y, x).is_some_and(|s| s > max_sharpness) {
                    flagged.push((y, x));
                }
            }
        }
        if flagged.is_empty() {
            break;
        }
        let is_flagged = |y: usize, x: usize| flagged.binary_search(&(y, x)).is_ok();
        let repl: Vec<f64> = flagged
            .iter()
            .map(|&(y, x)| {
                let mut v: Vec<f64> = Vec::with_capacity(8);
                for yy in y - 1..=y + 1 {
                    for xx in x - 1..=x + 1 {
                        if (yy, xx) != (y, x) && !is_flagged(yy, xx) {
                            v.push(img[[yy, xx]]);
                        }
                    }
                }
                median_mut(&mut v).unwrap_or(bkg)
            })
            .collect();
        for (&(y, x), &r) in flagged.iter().zip(&repl) {
            img[[y, x]] = r;
        }
        count += flagged.len();
    }
    (img, count)
}
