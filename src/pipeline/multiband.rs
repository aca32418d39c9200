//! Joint multiband deconvolution of survey images: what `sparseinv multiband` does, on
//! in-memory images with their WCS ([`multiband()`]) or from FITS files to a directory of FITS
//! files ([`multiband_fits`]). The model and solver are
//! [`sparseinv_solvers::multiband`] (Akhaury et al. 2025): `K` low-resolution bands restored on
//! the grid of one high-resolution wide band that covers them.
//!
//! # Grids
//! The fine grid is the wide band's. The resolution ratio `r` is the ratio of the pixel
//! scales (from the WCS; it must be an integer to 1 %, else an error prints both scales), and
//! band pixel `(i, j)` must cover fine pixels `(r i .. r i + r − 1, r j .. r j + r − 1)` up to a
//! sub-pixel offset, which the WCS gives and the model applies as an exact Fourier shift.
//! Without a WCS on every image, `ratio` and `offsets` must be given.
//!
//! # Sky, noise, weights
//! Each image's sky (the 3σ-clipped median of its valid pixels) is subtracted first and
//! added back to the outputs (per fine pixel: `sky_b / r²`). Noise levels come from the MAD of
//! the finest starlet scale; the wide band's weights `α_b` are fitted
//! ([`fit_band_weights`](sparseinv_solvers::multiband::fit_band_weights)) unless given.
//! NaN pixels (FITS `BLANK`) are left out of their data term; an output pixel is NaN only
//! where neither its band pixel nor its wide-band pixel was measured.
//!
//! # Tiling
//! Fine grids with a side above 2048 px are processed in tiles (default 1024 fine pixels,
//! rounded to a multiple of `r`) with a halo of twice the largest PSF; noise levels, sky and
//! `α` are computed once on the whole images, so every tile solves the same model.

use super::{Progress, ProgressUnit};
use crate::io::wcs::Wcs;
use crate::{Error, Result};
use ndarray::{s, Array2, ArrayView2, Axis};
use sparseinv_solvers::iter::{Control, IterInfo, Observer};
use sparseinv_solvers::multiband::{
    multiband_deconvolve_pnp, multiband_deconvolve_with, noise_sigma_masked, AlphaFit,
    MultibandData, MultibandParams, MultibandPrior,
};
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::time::Instant;

/// One input image: a band or the wide band.
#[derive(Debug, Clone)]
pub struct BandImage<'a> {
    /// Its name in reports and output file names (e.g. `"r"`).
    pub name: String,
    /// The image (NaN = not measured).
    pub data: ArrayView2<'a, f64>,
    /// Its PSF, sampled on the fine grid, centre `(h/2, w/2)`; normalised to unit sum here.
    pub psf: ArrayView2<'a, f64>,
    /// Its WCS, if known.
    pub wcs: Option<Wcs>,
}

/// The prior of [`multiband()`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prior {
    /// Positivity + starlet ℓ1 per band, thresholds in noise units (exact primal–dual solver).
    Starlet,
    /// Plug-and-play with the starlet hard-thresholding denoiser at strength
    /// [`MultibandOptions::strength`].
    Pnp,
}

/// Options of [`multiband()`].
#[derive(Debug, Clone)]
pub struct MultibandOptions {
    /// Resolution ratio; `None`: from the WCS.
    pub ratio: Option<usize>,
    /// Per band, the offset of its grid in coarse pixels `(rows, cols)`: how far the centre
    /// of band pixel `(0, 0)` lies from the centre of fine block `(0, 0)`. `None`: from the WCS.
    pub offsets: Option<Vec<[f64; 2]>>,
    /// The wide band's weights `α_b`; `None`: fitted.
    pub weights: Option<Vec<f64>>,
    /// Prior (default starlet).
    pub prior: Prior,
    /// Starlet scales (default 4).
    pub scales: usize,
    /// Threshold in noise units (default 3).
    pub k_sigma: f64,
    /// PnP denoiser strength (default 1: the noise level of one gradient step).
    pub strength: f64,
    /// Iterations (default 200).
    pub iterations: usize,
    /// Subtract each image's sky and add it back (default true).
    pub sky: bool,
    /// Tile side on the fine grid; `None`: 1024 when a side exceeds 2048; `Some(0)`: never.
    pub tile: Option<usize>,
}

impl Default for MultibandOptions {
    fn default() -> Self {
        MultibandOptions {
            ratio: None,
            offsets: None,
            weights: None,
            prior: Prior::Starlet,
            scales: 4,
            k_sigma: 3.0,
            strength: 1.0,
            iterations: 200,
            sky: true,
            tile: None,
        }
    }
}

/// Per-band numbers of a [`MultibandReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct BandReport {
    /// Band name.
    pub name: String,
    /// Noise standard deviation (per band pixel).
    pub sigma: f64,
    /// Sky level subtracted (per band pixel).
    pub sky: f64,
    /// Weight `α_b` in the wide band.
    pub alpha: Option<f64>,
    /// Its standard error when fitted.
    pub alpha_std_error: Option<f64>,
    /// Shift applied, in band pixels `(rows, cols)`.
    pub shift: [f64; 2],
    /// Flux above the sky in the input (sum over valid pixels).
    pub flux_in: f64,
    /// Flux of the restored band above the sky.
    pub flux_out: f64,
    /// FWHM of its PSF in fine pixels (second moments).
    pub psf_fwhm: f64,
}

/// What [`multiband()`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultibandReport {
    /// Resolution ratio `r`.
    pub ratio: usize,
    /// Fine grid `[rows, cols]`.
    pub fine_shape: [usize; 2],
    /// Pixel scales (arcsec) of the bands' grid and the fine grid, when known.
    pub scales_arcsec: Option<[f64; 2]>,
    /// The bands.
    pub bands: Vec<BandReport>,
    /// The wide band: name, noise, sky, PSF FWHM.
    pub wide: BandReport,
    /// How α was found: `"given"`, `"shrunk"` or `"common"` (see `fit_band_weights`).
    pub alpha_method: String,
    /// Relative residual of the α fit.
    pub alpha_fit_rel_residual: Option<f64>,
    /// Prior.
    pub prior: Prior,
    /// Iterations (per tile).
    pub iterations: usize,
    /// Why the (last) solve stopped.
    pub stop_reason: String,
    /// Tiles (1 = whole image).
    pub tiles: usize,
    /// Warnings (e.g. a PSF that looks sampled on the wrong grid).
    pub warnings: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The restored bands and the report.
#[derive(Debug, Clone)]
pub struct Multiband {
    /// One image per band on the fine grid (flux per fine pixel, sky added back).
    pub bands: Vec<Array2<f64>>,
    /// The report.
    pub report: MultibandReport,
}

/// FWHM of a PSF by its second moments, `2.355 √((σ_x² + σ_y²)/2)` (positive part).
pub fn psf_fwhm(psf: ArrayView2<f64>) -> f64 {
    let tot: f64 = psf.iter().map(|v| v.max(0.0)).sum();
    if tot <= 0.0 {
        return f64::NAN;
    }
    let (mut mx, mut my) = (0.0, 0.0);
    for ((i, j), v) in psf.indexed_iter() {
        let w = v.max(0.0) / tot;
        my += w * i as f64;
        mx += w * j as f64;
    }
    let mut var = 0.0;
    for ((i, j), v) in psf.indexed_iter() {
        let w = v.max(0.0) / tot;
        var += w * ((i as f64 - my).powi(2) + (j as f64 - mx).powi(2));
    }
    2.3548 * (var / 2.0).sqrt()
}

/// Ratio and per-band shifts (coarse pixels) from the WCS of the bands and the wide band.
fn grid_relation(
    bands: &[BandImage],
    wide: &BandImage,
) -> Result<(usize, Vec<[f64; 2]>, [f64; 2])> {
    let ww = wide.wcs.ok_or_else(|| {
        Error::Input(format!(
            "the wide band {} has no usable WCS (a TAN projection with CRPIX/CRVAL/CD or CDELT): \
             give the resolution ratio and the band offsets (--ratio, --offset)",
            wide.name
        ))
    })?;
    let fine_scale = ww.scale_arcsec();
    let mut ratio = None;
    let mut shifts = Vec::new();
    let mut band_scale = 0.0;
    for b in bands {
        let bw = b.wcs.ok_or_else(|| {
            Error::Input(format!(
                "band {} has no usable WCS: give the resolution ratio and the band offsets \
                 (--ratio, --offset)",
                b.name
            ))
        })?;
        let sc = bw.scale_arcsec();
        let q = sc / fine_scale;
        let r = q.round();
        if r < 1.0 || (q - r).abs() > 0.01 * r {
            return Err(Error::Input(format!(
                "band {} has pixels of {sc:.6}″ and the wide band {} of {fine_scale:.6}″: their \
                 ratio {q:.4} is not an integer (resample one of them first)",
                b.name, wide.name
            )));
        }
        let r = r as usize;
        if let Some(r0) = ratio {
            if r0 != r {
                return Err(Error::Input(format!(
                    "the bands have different pixel scales (ratios {r0} and {r} to the wide band)"
                )));
            }
        }
        ratio = Some(r);
        band_scale = sc;
        // orientation: CD_band ≈ r · CD_wide
        let rf = r as f64;
        let mut dev = 0.0f64;
        for i in 0..2 {
            for j in 0..2 {
                dev = dev.max((bw.cd[i][j] - rf * ww.cd[i][j]).abs());
            }
        }
        if dev > 1e-3 * rf * fine_scale / 3600.0 {
            return Err(Error::Input(format!(
                "band {} is rotated or flipped with respect to the wide band {} (CD matrices not \
                 proportional): resample it onto an aligned grid first",
                b.name, wide.name
            )));
        }
        // where the centre of band pixel (0, 0) falls on the fine grid
        let (ra, dec) = bw.pix_to_world(0.0, 0.0);
        let (fx, fy) = ww.world_to_pix(ra, dec).ok_or_else(|| {
            Error::Input(format!("band {} and the wide band do not overlap", b.name))
        })?;
        let c = (rf - 1.0) / 2.0;
        let (dy, dx) = (fy - c, fx - c);
        let (m0, m1) = b.data.dim();
        let (n0, n1) = wide.data.dim();
        let ov0 = (dy + (m0 * r) as f64).min(n0 as f64) - dy.max(0.0);
        let ov1 = (dx + (m1 * r) as f64).min(n1 as f64) - dx.max(0.0);
        if ov0 <= 0.0 || ov1 <= 0.0 {
            return Err(Error::Input(format!(
                "band {} and the wide band {} do not overlap on the sky",
                b.name, wide.name
            )));
        }
        if dy.abs() > rf / 2.0 + 1e-6 || dx.abs() > rf / 2.0 + 1e-6 {
            return Err(Error::Input(format!(
                "band {} is offset by ({dy:.2}, {dx:.2}) fine pixels (rows, cols) from the wide \
                 band's grid: cut the images to the same area first (band pixel (i, j) must \
                 cover fine pixels {r}i..{r}i+{}, up to half a band pixel)",
                b.name,
                r - 1
            )));
        }
        // the content is shifted by −d/r band pixels (FourierShift convention)
        shifts.push([-dy / rf, -dx / rf]);
    }
    Ok((
        ratio.expect("at least one band"),
        shifts,
        [band_scale, fine_scale],
    ))
}

struct ProgressObserver<'a> {
    cb: &'a mut dyn FnMut(Progress),
    done: usize,
    total: usize,
}

impl Observer<f64> for ProgressObserver<'_> {
    fn observe(&mut self, _info: &IterInfo<f64>) -> Control {
        self.done += 1;
        (self.cb)(Progress {
            unit: ProgressUnit::Iterations,
            done: self.done,
            total: self.total,
        });
        Control::Continue
    }
}

/// Joint multiband deconvolution of `bands` with the wide band `wide` (module docs).
///
/// ```
/// use sparseinv::pipeline::multiband::{multiband, BandImage, MultibandOptions};
/// use ndarray::Array2;
/// // a point source: one band at 2× coarser sampling and the wide band, both noise-free
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let mut wide = Array2::<f64>::zeros((32, 32));
/// for i in 15..18 { for j in 15..18 { wide[[i, j]] = 100.0 / 9.0; } }
/// let band = Array2::from_shape_fn((16, 16), |(i, j)| {
///     wide.slice(ndarray::s![2 * i..2 * i + 2, 2 * j..2 * j + 2]).sum()
/// });
/// let opts = MultibandOptions { ratio: Some(2), offsets: Some(vec![[0.0, 0.0]]),
///     weights: Some(vec![1.0]), sky: false, ..Default::default() };
/// let out = multiband(
///     &[BandImage { name: "b".into(), data: band.view(), psf: psf.view(), wcs: None }],
///     &BandImage { name: "w".into(), data: wide.view(), psf: psf.view(), wcs: None },
///     &opts,
/// ).unwrap();
/// assert_eq!(out.bands[0].dim(), (32, 32));
/// assert!((out.report.bands[0].flux_out - 100.0).abs() < 2.0);
/// ```
pub fn multiband<'a>(
    bands: &[BandImage<'a>],
    wide: &BandImage<'a>,
    opts: &MultibandOptions,
) -> Result<Multiband> {
    multiband_with_progress(bands, wide, opts, &mut |_| {})
}

/// [`multiband()`] reporting iterations (and tiles) to `progress`.
pub fn multiband_with_progress<'a>(
    bands: &[BandImage<'a>],
    wide: &BandImage<'a>,
    opts: &MultibandOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Multiband> {
    let t0 = Instant::now();
    let k = bands.len();
    if k == 0 {
        return Err(Error::Input("no band given".into()));
    }
    if opts.iterations == 0 {
        return Err(Error::Input("iterations must be ≥ 1".into()));
    }
    let mut warnings = Vec::new();
    // grids
    let (ratio, shifts, scales) = match (opts.ratio, &opts.offsets) {
        (Some(r), Some(o)) => {
            if o.len() != k {
                return Err(Error::Input(format!("{} offsets for {k} bands", o.len())));
            }
            (r, o.iter().map(|s| [-s[0], -s[1]]).collect(), None)
        }
        (r, o) => {
            let (rw, sh, sc) = grid_relation(bands, wide)?;
            if let Some(r) = r {
                if r != rw {
                    return Err(Error::Input(format!(
                        "--ratio {r} contradicts the WCS, which gives {rw}"
                    )));
                }
            }
            let sh = match o {
                Some(o) if o.len() == k => o.iter().map(|s| [-s[0], -s[1]]).collect(),
                Some(o) => return Err(Error::Input(format!("{} offsets for {k} bands", o.len()))),
                None => sh,
            };
            (rw, sh, Some(sc))
        }
    };
    if ratio == 0 {
        return Err(Error::Input("ratio must be ≥ 1".into()));
    }
    let (m0, m1) = bands[0].data.dim();
    for b in bands {
        if b.data.dim() != (m0, m1) {
            return Err(Error::Input(format!(
                "band {} is {}×{} but band {} is {m0}×{m1}: the bands must share one grid",
                b.name,
                b.data.nrows(),
                b.data.ncols(),
                bands[0].name
            )));
        }
    }
    let (n0, n1) = wide.data.dim();
    if (n0, n1) != (m0 * ratio, m1 * ratio) {
        return Err(Error::Input(format!(
            "the wide band {} is {n0}×{n1} but the bands ({m0}×{m1}) at ratio {ratio} cover \
             {}×{}: cut them to the same sky area",
            wide.name,
            m0 * ratio,
            m1 * ratio
        )));
    }
    // PSFs: normalised, smaller than the image, FWHM sanity
    let mut psfs = Vec::with_capacity(k + 1);
    for im in bands.iter().chain(std::iter::once(wide)) {
        let (h, w) = im.psf.dim();
        if h > n0 || w > n1 {
            return Err(Error::Input(format!(
                "the PSF of {} ({h}×{w}) is larger than the fine grid ({n0}×{n1})",
                im.name
            )));
        }
        let sum: f64 = im.psf.iter().sum();
        if !(sum.is_finite() && sum > 0.0) || im.psf.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "the PSF of {} must be finite with a positive sum",
                im.name
            )));
        }
        psfs.push(im.psf.mapv(|v| v / sum));
    }
    let fwhm: Vec<f64> = psfs.iter().map(|p| psf_fwhm(p.view())).collect();
    for (b, im) in bands.iter().enumerate() {
        if fwhm[b] < 1.2 * ratio as f64 {
            warnings.push(format!(
                "the PSF of band {} has a FWHM of {:.2} fine pixels, under 1.2 band pixels: is it \
                 sampled on the band's grid instead of the fine grid?",
                im.name, fwhm[b]
            ));
        }
        if fwhm[b] < fwhm[k] {
            warnings.push(format!(
                "the PSF of band {} ({:.2} px) is sharper than the wide band's ({:.2} px)",
                im.name, fwhm[b], fwhm[k]
            ));
        }
    }
    // masks, sky, noise
    let mut data: Vec<Array2<f64>> = Vec::with_capacity(k + 1);
    let mut masks: Vec<Array2<bool>> = Vec::with_capacity(k + 1);
    let mut skies = Vec::with_capacity(k + 1);
    let mut sigmas = Vec::with_capacity(k + 1);
    for im in bands.iter().chain(std::iter::once(wide)) {
        let mask = im.data.mapv(|v| v.is_finite());
        if !mask.iter().any(|&v| v) {
            return Err(Error::Input(format!(
                "{} has no valid pixel (all NaN/BLANK)",
                im.name
            )));
        }
        let sky = if opts.sky {
            super::deconvolve::estimate_sky(im.data)
        } else {
            0.0
        };
        let d = im.data.mapv(|v| if v.is_finite() { v - sky } else { 0.0 });
        let sig = noise_sigma_masked(d.view(), Some(mask.view()))?;
        masks.push(mask);
        skies.push(sky);
        // a noise-free image (MAD 0): weight it as if its noise were 1e-3 of its peak
        let peak = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        sigmas.push(if sig > 0.0 {
            sig
        } else {
            (1e-3 * peak).max(1e-12)
        });
        data.push(d);
    }
    let any_mask = masks.iter().any(|m| m.iter().any(|v| !v));
    let full = MultibandData {
        bands: data[..k].iter().map(|d| d.view()).collect(),
        band_psfs: psfs[..k].iter().map(|p| p.view()).collect(),
        band_masks: if any_mask {
            masks[..k].iter().map(|m| Some(m.view())).collect()
        } else {
            vec![]
        },
        wide: Some((
            data[k].view(),
            psfs[k].view(),
            any_mask.then(|| masks[k].view()),
        )),
    };
    let (alphas, fit): (Vec<f64>, Option<AlphaFit>) = match &opts.weights {
        Some(w) => {
            if w.len() != k || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::Input(format!(
                    "--weights needs {k} finite values ≥ 0, got {w:?}"
                )));
            }
            (w.clone(), None)
        }
        None => {
            let f = sparseinv_solvers::multiband::fit_band_weights(&full, ratio, &shifts, &sigmas)?;
            (f.alphas.clone(), Some(f))
        }
    };
    let mut params = MultibandParams {
        ratio,
        shifts: shifts.clone(),
        alphas: Some(alphas.clone()),
        sigmas: Some(sigmas.clone()),
        prior: MultibandPrior::Starlet {
            scales: opts.scales,
            k_sigma: opts.k_sigma,
        },
        ..Default::default()
    };
    params.stop.max_iters = opts.iterations;
    // tiles
    let tile = match opts.tile {
        Some(0) => 0,
        Some(t) => t,
        None if n0.max(n1) > 2048 => 1024,
        None => 0,
    };
    let tile = if tile > 0 {
        (tile.div_ceil(ratio) * ratio).max(ratio)
    } else {
        0
    };
    let psf_max = psfs
        .iter()
        .map(|p| p.nrows().max(p.ncols()))
        .max()
        .unwrap_or(1);
    let halo = (2 * psf_max).div_ceil(ratio) * ratio;
    let windows: Vec<(usize, usize, usize, usize)> = if tile == 0 || (tile >= n0 && tile >= n1) {
        vec![(0, n0, 0, n1)]
    } else {
        let mut w = Vec::new();
        for r0 in (0..n0).step_by(tile) {
            for c0 in (0..n1).step_by(tile) {
                w.push((r0, (r0 + tile).min(n0), c0, (c0 + tile).min(n1)));
            }
        }
        w
    };
    let ntiles = windows.len();
    let total = ntiles * opts.iterations;
    let mut out: Vec<Array2<f64>> = vec![Array2::zeros((n0, n1)); k];
    let mut stop_reason = String::new();
    let denoiser = StarletDenoiser::new(opts.scales.max(1))?;
    for (t, &(r0, r1, c0, c1)) in windows.iter().enumerate() {
        // the window with its halo, on both grids
        let (a0, a1) = (r0.saturating_sub(halo), (r1 + halo).min(n0));
        let (b0, b1) = (c0.saturating_sub(halo), (c1 + halo).min(n1));
        let (ca0, ca1, cb0, cb1) = (a0 / ratio, a1 / ratio, b0 / ratio, b1 / ratio);
        let sub = MultibandData {
            bands: data[..k]
                .iter()
                .map(|d| d.slice(s![ca0..ca1, cb0..cb1]))
                .collect(),
            band_psfs: psfs[..k].iter().map(|p| p.view()).collect(),
            band_masks: if any_mask {
                masks[..k]
                    .iter()
                    .map(|m| Some(m.slice(s![ca0..ca1, cb0..cb1])))
                    .collect()
            } else {
                vec![]
            },
            wide: Some((
                data[k].slice(s![a0..a1, b0..b1]),
                psfs[k].view(),
                any_mask.then(|| masks[k].slice(s![a0..a1, b0..b1])),
            )),
        };
        let mut obs = ProgressObserver {
            cb: progress,
            done: t * opts.iterations,
            total,
        };
        let r = match opts.prior {
            Prior::Starlet => multiband_deconvolve_with(&sub, &params, &mut obs)?,
            Prior::Pnp => {
                let res = multiband_deconvolve_pnp(&sub, &params, &denoiser, opts.strength)?;
                let done = (t + 1) * opts.iterations;
                (obs.cb)(Progress {
                    unit: ProgressUnit::Iterations,
                    done,
                    total,
                });
                res
            }
        };
        stop_reason = r.report.stop_reason.as_str().to_string();
        for (b, o) in out.iter_mut().enumerate() {
            let xb = r.x.index_axis(Axis(0), b);
            o.slice_mut(s![r0..r1, c0..c1])
                .assign(&xb.slice(s![r0 - a0..r1 - a0, c0 - b0..c1 - b0]));
        }
    }
    // reports, sky back, NaN where nothing was measured
    let r2 = (ratio * ratio) as f64;
    let mut reports = Vec::with_capacity(k);
    for (b, o) in out.iter_mut().enumerate() {
        let flux_in: f64 = data[b]
            .iter()
            .zip(masks[b].iter())
            .filter(|(_, &m)| m)
            .map(|(v, _)| v)
            .sum();
        let flux_out: f64 = o.sum();
        let sky = skies[b] / r2;
        for ((i, j), v) in o.indexed_iter_mut() {
            if !masks[b][[i / ratio, j / ratio]] && !masks[k][[i, j]] {
                *v = f64::NAN;
            } else {
                *v += sky;
            }
        }
        reports.push(BandReport {
            name: bands[b].name.clone(),
            sigma: sigmas[b],
            sky: skies[b],
            alpha: Some(alphas[b]),
            alpha_std_error: fit.as_ref().map(|f| f.std_errors[b]),
            shift: shifts[b],
            flux_in,
            flux_out,
            psf_fwhm: fwhm[b],
        });
    }
    let wide_flux: f64 = data[k]
        .iter()
        .zip(masks[k].iter())
        .filter(|(_, &m)| m)
        .map(|(v, _)| v)
        .sum();
    let report = MultibandReport {
        ratio,
        fine_shape: [n0, n1],
        scales_arcsec: scales,
        bands: reports,
        wide: BandReport {
            name: wide.name.clone(),
            sigma: sigmas[k],
            sky: skies[k],
            alpha: None,
            alpha_std_error: None,
            shift: [0.0, 0.0],
            flux_in: wide_flux,
            flux_out: wide_flux,
            psf_fwhm: fwhm[k],
        },
        alpha_method: fit.as_ref().map_or("given".into(), |f| f.method.clone()),
        alpha_fit_rel_residual: fit.as_ref().map(|f| f.rel_residual),
        prior: opts.prior,
        iterations: opts.iterations,
        stop_reason,
        tiles: ntiles,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(Multiband { bands: out, report })
}

/// Read the bands, their PSFs, the wide band and its PSF from FITS files, run
/// [`multiband()`] and write `OUTDIR/<band>.fits` (fine grid, the wide band's header and WCS,
/// `HISTORY` of what was done, `BAND`/`ALPHA`/`NOISESIG` cards) and `OUTDIR/report.json`.
/// Band names are the input file stems. Nothing is written unless everything succeeded; an
/// existing output is an error unless `force`.
#[cfg(feature = "fits")]
pub fn multiband_fits(
    bands: &[(std::path::PathBuf, std::path::PathBuf)],
    wide: (&std::path::Path, &std::path::Path),
    out_dir: &std::path::Path,
    opts: &MultibandOptions,
    force: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Multiband> {
    use crate::io::fits::{read_fits_spec, write_fits_2d, Header, WriteOptions};
    let names: Vec<String> = bands
        .iter()
        .map(|(p, _)| {
            p.file_stem()
                .map_or("band".into(), |s| s.to_string_lossy().into_owned())
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n.clone()) {
            return Err(Error::Input(format!(
                "two bands are named {n}: the outputs would collide (rename the files)"
            )));
        }
    }
    let outputs: Vec<std::path::PathBuf> = names
        .iter()
        .map(|n| out_dir.join(format!("{n}.fits")))
        .collect();
    let report_path = out_dir.join("report.json");
    if !force {
        for p in outputs.iter().chain(std::iter::once(&report_path)) {
            if p.exists() {
                return Err(crate::io::IoError::Exists(p.clone()).into());
            }
        }
    }
    let imgs: Vec<crate::io::fits::FitsImage> = bands
        .iter()
        .map(|(p, _)| read_fits_spec(&p.to_string_lossy(), None))
        .collect::<std::result::Result<_, _>>()?;
    let psfs: Vec<Array2<f64>> = bands
        .iter()
        .map(|(_, p)| crate::psf::load_psf(p, None))
        .collect::<std::result::Result<_, _>>()?;
    let wimg = read_fits_spec(&wide.0.to_string_lossy(), None)?;
    let wpsf = crate::psf::load_psf(wide.1, None)?;
    let band_inputs: Vec<BandImage> = imgs
        .iter()
        .zip(&psfs)
        .zip(&names)
        .map(|((im, psf), n)| {
            Ok(BandImage {
                name: n.clone(),
                data: im.image2d()?,
                psf: psf.view(),
                wcs: Wcs::from_header(&im.header),
            })
        })
        .collect::<Result<_>>()?;
    let wide_in = BandImage {
        name: wide
            .0
            .file_stem()
            .map_or("wide".into(), |s| s.to_string_lossy().into_owned()),
        data: wimg.image2d()?,
        psf: wpsf.view(),
        wcs: Wcs::from_header(&wimg.header),
    };
    let r = multiband_with_progress(&band_inputs, &wide_in, opts, progress)?;
    std::fs::create_dir_all(out_dir).map_err(|e| crate::io::IoError::Os {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    let band_list = names.join(",");
    for (b, out) in outputs.iter().enumerate() {
        let br = &r.report.bands[b];
        let mut extra = Header::default();
        extra.set_str("BAND", &br.name, "band restored by sparseinv multiband");
        if let Some(a) = br.alpha {
            extra.set_f64("ALPHA", a, "weight of this band in the wide band");
        }
        extra.set_f64(
            "NOISESIG",
            br.sigma,
            "noise sigma of the input band (band pixel)",
        );
        extra.set_f64(
            "SKYLEV",
            br.sky,
            "sky subtracted and added back (band pixel)",
        );
        let history = vec![
            format!(
                "sparseinv {} multiband: band {} restored on the grid of {} (ratio {}) jointly \
                 with bands {band_list}, prior {:?}, {} iterations, alpha {}",
                env!("CARGO_PKG_VERSION"),
                br.name,
                wide.0.display(),
                r.report.ratio,
                r.report.prior,
                r.report.iterations,
                r.report.alpha_method
            ),
            format!(
                "input {} psf {}",
                bands[b].0.display(),
                bands[b].1.display()
            ),
        ];
        write_fits_2d(
            out,
            crate::io::fits::to_f32(r.bands[b].view()).view(),
            &WriteOptions {
                header: Some(&wimg.header),
                extra: Some(&extra),
                history,
                force,
            },
        )?;
    }
    let json = serde_json::to_string_pretty(&r.report).map_err(|e| Error::Input(e.to_string()))?;
    crate::io::atomic_write(&report_path, force, |tmp| {
        std::fs::write(tmp, json.as_bytes()).map_err(|e| crate::io::IoError::Os {
            path: tmp.to_path_buf(),
            source: e,
        })
    })?;
    Ok(r)
}
