//! PNG and TIFF images (8 and 16 bit, grey), and previews of astronomical data with the usual
//! display stretches.
//!
//! # Orientation
//! Arrays read from PNG/TIFF have row 0 at the top of the picture, as the file stores them.
//! Arrays from FITS have row 0 at the *bottom* (FITS's first row is displayed lowest by
//! astronomical viewers), so the preview writers ([`write_preview`], [`write_side_by_side`])
//! take a `fits_orientation` flag that flips rows to show north up as ds9 would.
//!
//! # Stretches
//! A [`Stretch`] maps data values to display values in `[0, 1]`: first the limits
//! `[lo, hi]` ([`Limits`]: min/max, percentiles, or IRAF's zscale as in astropy's
//! `ZScaleInterval`), then `u = clip((v − lo)/(hi − lo), 0, 1)` and either `u` (linear) or
//! `asinh(u / a) / asinh(1 / a)` (asinh, softening `a`; small `a` brings out faint structure,
//! Lupton et al. 2004).

use super::{atomic_write, IoError};
use ndarray::{s, Array2, ArrayView2};
use std::path::Path;

/// How the display limits are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limits {
    /// The minimum and maximum finite values.
    MinMax,
    /// Percentiles (0–100) of the finite values, e.g. `(0.5, 99.5)`.
    Percentile(f64, f64),
    /// IRAF's zscale (1000 samples, contrast 0.25), as astropy's `ZScaleInterval`.
    ZScale,
    /// Fixed limits.
    Fixed(f64, f64),
}

/// A display stretch: limits and a transfer function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stretch {
    /// Linear between the limits.
    Linear(Limits),
    /// `asinh(u / a) / asinh(1 / a)` of the linearly scaled value `u`, with softening `a > 0`.
    Asinh(Limits, f64),
}

impl Default for Stretch {
    /// Asinh with softening 0.1 between the 0.5 and 99.8 percentiles.
    fn default() -> Self {
        Stretch::Asinh(Limits::Percentile(0.5, 99.8), 0.1)
    }
}

fn finite_sorted(a: ArrayView2<'_, f64>) -> Vec<f64> {
    let mut v: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|x, y| x.total_cmp(y));
    v
}

/// Least-squares line `y = a x + b` through `(i, y_i)` for the points with `good[i]`.
fn fit_line(y: &[f64], good: &[bool]) -> (f64, f64) {
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, (&v, &g)) in y.iter().zip(good).enumerate() {
        if g {
            let x = i as f64;
            n += 1.0;
            sx += x;
            sy += v;
            sxx += x * x;
            sxy += x * v;
        }
    }
    let d = n * sxx - sx * sx;
    if d == 0.0 {
        return (0.0, if n > 0.0 { sy / n } else { 0.0 });
    }
    let a = (n * sxy - sx * sy) / d;
    (a, (sy - a * sx) / n)
}

/// IRAF zscale limits of the finite values, following astropy's `ZScaleInterval` with its
/// defaults: take every `⌊N/1000⌋`-th finite value (row-major) up to 1000 samples, sort them,
/// fit a line to the sorted samples with 2.5-σ clipping (rejected samples grown by 1 % of the
/// sample count, at most 5 rounds, at least half the samples kept), and return
/// `median ∓ slope/0.25 × distance to the centre`, clipped to the samples' range.
/// Returns `None` when there is no finite value.
pub fn zscale(a: ArrayView2<'_, f64>) -> Option<(f64, f64)> {
    let vals: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    if vals.is_empty() {
        return None;
    }
    let n_samples = 1000usize;
    let stride = ((vals.len() as f64 / n_samples as f64).max(1.0)) as usize;
    let mut samples: Vec<f64> = vals
        .iter()
        .step_by(stride)
        .take(n_samples)
        .copied()
        .collect();
    samples.sort_by(|x, y| x.total_cmp(y));
    let npix = samples.len();
    let (mut vmin, mut vmax) = (samples[0], samples[npix - 1]);
    let minpix = 5usize.max((npix as f64 * 0.5) as usize);
    let ngrow = 1usize.max((npix as f64 * 0.01) as usize);
    let mut good = vec![true; npix];
    let mut ngood = npix;
    let mut last = npix + 1;
    let mut fit = (0.0, 0.0);
    for _ in 0..5 {
        if ngood >= last || ngood < minpix {
            break;
        }
        fit = fit_line(&samples, &good);
        let flat: Vec<f64> = samples
            .iter()
            .enumerate()
            .map(|(i, v)| v - (fit.0 * i as f64 + fit.1))
            .collect();
        let gv: Vec<f64> = flat
            .iter()
            .zip(&good)
            .filter(|(_, g)| **g)
            .map(|(f, _)| *f)
            .collect();
        let m = gv.iter().sum::<f64>() / gv.len() as f64;
        let sd = (gv.iter().map(|f| (f - m).powi(2)).sum::<f64>() / gv.len() as f64).sqrt();
        let thr = 2.5 * sd;
        let bad: Vec<bool> = flat
            .iter()
            .zip(&good)
            .map(|(f, g)| !g || *f < -thr || *f > thr)
            .collect();
        // dilation as numpy's convolve(bad, ones(ngrow), mode="same")
        let off = (ngrow - 1) / 2;
        for (i, gi) in good.iter_mut().enumerate() {
            let hi = i + off;
            let lo = hi.saturating_sub(ngrow - 1);
            *gi = !(lo..=hi.min(npix - 1)).any(|j| bad[j]);
        }
        last = ngood;
        ngood = good.iter().filter(|g| **g).count();
    }
    if ngood >= minpix {
        let slope = fit.0 / 0.25;
        let center = (npix - 1) / 2;
        let median = if npix % 2 == 1 {
            samples[npix / 2]
        } else {
            0.5 * (samples[npix / 2 - 1] + samples[npix / 2])
        };
        vmin = vmin.max(median - (center as f64 - 1.0) * slope);
        vmax = vmax.min(median + (npix - center) as f64 * slope);
    }
    Some((vmin, vmax))
}

/// The display limits of `a` (finite values only); `(0, 1)` when there is none.
pub fn limits(a: ArrayView2<'_, f64>, l: Limits) -> (f64, f64) {
    let r = match l {
        Limits::Fixed(lo, hi) => Some((lo, hi)),
        Limits::ZScale => zscale(a),
        Limits::MinMax => {
            let v = finite_sorted(a);
            (!v.is_empty()).then(|| (v[0], v[v.len() - 1]))
        }
        Limits::Percentile(p0, p1) => {
            let v = finite_sorted(a);
            let q = |p: f64| {
                // linear interpolation between order statistics, as numpy's default
                let pos = (p.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64;
                let i = pos.floor() as usize;
                let f = pos - i as f64;
                if i + 1 < v.len() {
                    v[i] * (1.0 - f) + v[i + 1] * f
                } else {
                    v[i]
                }
            };
            (!v.is_empty()).then(|| (q(p0), q(p1)))
        }
    };
    r.unwrap_or((0.0, 1.0))
}

/// Apply a stretch: display values in `[0, 1]` (NaN stays NaN).
pub fn apply_stretch(a: ArrayView2<'_, f64>, stretch: Stretch) -> Array2<f64> {
    let (l, soft) = match stretch {
        Stretch::Linear(l) => (l, None),
        Stretch::Asinh(l, s) => (l, Some(s.max(1e-6))),
    };
    let (lo, hi) = limits(a, l);
    let span = if hi > lo { hi - lo } else { 1.0 };
    a.mapv(|v| {
        let u = ((v - lo) / span).clamp(0.0, 1.0);
        match soft {
            None => u,
            Some(s) => (u / s).asinh() / (1.0 / s).asinh(),
        }
    })
}

/// Bit depth of an output picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    /// 8 bits per pixel.
    Eight,
    /// 16 bits per pixel.
    Sixteen,
}

fn format_of(path: &Path) -> Result<image::ImageFormat, IoError> {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("png") => Ok(image::ImageFormat::Png),
        Some("tif") | Some("tiff") => Ok(image::ImageFormat::Tiff),
        _ => Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "unsupported picture format (use .png, .tif or .tiff)".into(),
        }),
    }
}

/// Write a grey picture of values in `[0, 1]` (clipped; NaN → 0) as PNG or TIFF (by the
/// extension), 8 or 16 bit, row 0 at the top, atomically (see [`atomic_write`]).
pub fn write_gray(
    path: impl AsRef<Path>,
    a: ArrayView2<'_, f64>,
    depth: BitDepth,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let fmt = format_of(path)?;
    let (h, w) = a.dim();
    let q = |v: f64, m: f64| -> f64 {
        if v.is_finite() {
            (v.clamp(0.0, 1.0) * m).round()
        } else {
            0.0
        }
    };
    let img: image::DynamicImage = match depth {
        BitDepth::Eight => {
            let buf: Vec<u8> = a.iter().map(|&v| q(v, 255.0) as u8).collect();
            image::GrayImage::from_raw(w as u32, h as u32, buf)
                .expect("buffer size matches")
                .into()
        }
        BitDepth::Sixteen => {
            let buf: Vec<u16> = a.iter().map(|&v| q(v, 65535.0) as u16).collect();
            image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w as u32, h as u32, buf)
                .expect("buffer size matches")
                .into()
        }
    };
    atomic_write(path, force, |tmp| {
        img.save_with_format(tmp, fmt).map_err(|e| IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot write the picture: {e}"),
        })
    })
}

/// Read a PNG/TIFF/other supported picture as grey values in `[0, 1]` (colour is converted to
/// luma by the `image` crate's Rec. 709 weights), row 0 at the top. Also returns whether the
/// file had more than 8 bits per channel.
pub fn read_gray(path: impl AsRef<Path>) -> Result<(Array2<f64>, bool), IoError> {
    let path = path.as_ref();
    let img = image::ImageReader::open(path)
        .map_err(|e| IoError::Os {
            path: path.to_path_buf(),
            source: e,
        })?
        .with_guessed_format()
        .map_err(|e| IoError::Os {
            path: path.to_path_buf(),
            source: e,
        })?
        .decode()
        .map_err(|e| IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot decode the picture: {e}"),
        })?;
    let deep = img.color().bytes_per_pixel() / img.color().channel_count() > 1;
    let g = img.to_luma32f();
    let (w, h) = (g.width() as usize, g.height() as usize);
    let a = Array2::from_shape_vec((h, w), g.into_raw().into_iter().map(f64::from).collect())
        .expect("buffer size matches");
    Ok((a, deep))
}

fn orient(a: ArrayView2<'_, f64>, fits_orientation: bool) -> ArrayView2<'_, f64> {
    if fits_orientation {
        a.slice_move(s![..;-1, ..])
    } else {
        a
    }
}

/// Write an 8-bit PNG preview of `a` with `stretch` (NaN pixels black). With
/// `fits_orientation` the rows are flipped so that FITS row 0 is at the bottom.
pub fn write_preview(
    path: impl AsRef<Path>,
    a: ArrayView2<'_, f64>,
    stretch: Stretch,
    fits_orientation: bool,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let d = apply_stretch(orient(a, fits_orientation), stretch);
    write_gray(path, d.view(), BitDepth::Eight, force)
}

/// Write a before/after preview: `before` on the left, `after` on the right, separated by a
/// 4-pixel white bar, each stretched on its own with `stretch` (so both use the full display
/// range). The two arrays may differ in size; the shorter one is padded with black at the
/// bottom. See [`write_preview`] for `fits_orientation`.
pub fn write_side_by_side(
    path: impl AsRef<Path>,
    before: ArrayView2<'_, f64>,
    after: ArrayView2<'_, f64>,
    stretch: Stretch,
    fits_orientation: bool,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let b = apply_stretch(orient(before, fits_orientation), stretch);
    let a = apply_stretch(orient(after, fits_orientation), stretch);
    let gap = 4;
    let h = b.nrows().max(a.nrows());
    let w = b.ncols() + gap + a.ncols();
    let mut out = Array2::<f64>::zeros((h, w));
    out.slice_mut(s![..b.nrows(), ..b.ncols()]).assign(&b);
    out.slice_mut(s![.., b.ncols()..b.ncols() + gap]).fill(1.0);
    out.slice_mut(s![..a.nrows(), b.ncols() + gap..]).assign(&a);
    write_gray(path, out.view(), BitDepth::Eight, force)
}

/// Write a before/after preview like [`write_side_by_side`], but with the display limits of
/// `stretch` computed on `before` only and used for both panels, so equal values look the
/// same on both sides (a deconvolved image keeps its background at the grey of the input and
/// its sharpened peaks saturate, instead of each panel being rescaled to its own range).
pub fn write_before_after(
    path: impl AsRef<Path>,
    before: ArrayView2<'_, f64>,
    after: ArrayView2<'_, f64>,
    stretch: Stretch,
    fits_orientation: bool,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let fixed = |l: Limits| {
        let (lo, hi) = limits(before, l);
        Limits::Fixed(lo, hi)
    };
    let shared = match stretch {
        Stretch::Linear(l) => Stretch::Linear(fixed(l)),
        Stretch::Asinh(l, a) => Stretch::Asinh(fixed(l), a),
    };
    write_side_by_side(path, before, after, shared, fits_orientation, force)
}

/// Lupton et al. (2004, PASP 116, 133) asinh colour mapping of three flux images
/// `(red, green, blue)` (same shape, background-subtracted): with `I = (R + G + B)/3` and
/// `F(I) = asinh(Q I / s) / Q`, each channel is `X · F(I) / I`, clipped at 0 and, where any
/// channel exceeds 1, all three are divided by the largest (so colours saturate to their hue,
/// not to white). `Q` softens the asinh (`Q → 0` is linear), `s` sets the flux of the linear
/// part. Returns `[rows, cols, 3]` values in `[0, 1]` (NaN → 0).
pub fn lupton_rgb(
    red: ArrayView2<'_, f64>,
    green: ArrayView2<'_, f64>,
    blue: ArrayView2<'_, f64>,
    q: f64,
    stretch: f64,
) -> ndarray::Array3<f64> {
    let (h, w) = red.dim();
    let mut out = ndarray::Array3::<f64>::zeros((h, w, 3));
    for i in 0..h {
        for j in 0..w {
            let c = [red[[i, j]], green[[i, j]], blue[[i, j]]].map(|v| {
                if v.is_finite() {
                    v.max(0.0)
                } else {
                    0.0
                }
            });
            let int = (c[0] + c[1] + c[2]) / 3.0;
            if int <= 0.0 {
                continue;
            }
            let f = (q * int / stretch).asinh() / q / int;
            let mut v = c.map(|x| x * f);
            let m = v[0].max(v[1]).max(v[2]);
            if m > 1.0 {
                v = v.map(|x| x / m);
            }
            for (k, x) in v.iter().enumerate() {
                out[[i, j, k]] = *x;
            }
        }
    }
    out
}

/// Write colour panels (each `[rows, cols, 3]` in `[0, 1]`, e.g. from [`lupton_rgb`]) side by
/// side as an 8-bit RGB PNG with 4-pixel white separators, atomically; with
/// `fits_orientation` FITS row 0 is at the bottom.
pub fn write_rgb_panels(
    path: impl AsRef<Path>,
    panels: &[ndarray::ArrayView3<'_, f64>],
    fits_orientation: bool,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let fmt = format_of(path)?;
    let gap = 4;
    let h = panels.iter().map(|p| p.dim().0).max().unwrap_or(0);
    let w: usize =
        panels.iter().map(|p| p.dim().1).sum::<usize>() + gap * panels.len().saturating_sub(1);
    if h == 0 || w == 0 {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "nothing to draw".into(),
        });
    }
    let mut buf = vec![0u8; h * w * 3];
    let mut x0 = 0;
    for (n, p) in panels.iter().enumerate() {
        let (ph, pw, _) = p.dim();
        for i in 0..ph {
            let row = if fits_orientation { ph - 1 - i } else { i };
            for j in 0..pw {
                for k in 0..3 {
                    let v = p[[row, j, k]];
                    let v = if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    buf[(i * w + x0 + j) * 3 + k] = (v * 255.0).round() as u8;
                }
            }
        }
        x0 += pw;
        if n + 1 < panels.len() {
            for i in 0..h {
                for j in x0..x0 + gap {
                    for k in 0..3 {
                        buf[(i * w + j) * 3 + k] = 255;
                    }
                }
            }
            x0 += gap;
        }
    }
    let img: image::DynamicImage = image::RgbImage::from_raw(w as u32, h as u32, buf)
        .expect("buffer size matches")
        .into();
    atomic_write(path, force, |tmp| {
        img.save_with_format(tmp, fmt).map_err(|e| IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot write the picture: {e}"),
        })
    })
}

/// The viridis colour map (van der Walt & Smith 2015) at `t ∈ [0, 1]` (clipped; NaN → black):
/// linear interpolation between its colours at `t = 0, 1/8, …, 1`.
pub fn viridis(t: f64) -> [f64; 3] {
    const C: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 45.0, 123.0],
        [59.0, 82.0, 139.0],
        [44.0, 114.0, 142.0],
        [33.0, 145.0, 140.0],
        [39.0, 173.0, 129.0],
        [94.0, 201.0, 98.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    if t.is_nan() {
        return [0.0; 3];
    }
    let x = t.clamp(0.0, 1.0) * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f64;
    [0, 1, 2].map(|k| (C[i][k] * (1.0 - f) + C[i + 1][k] * f) / 255.0)
}

/// 3 × 5 pixel glyphs (rows top to bottom, 3 bits each, most significant = left) of the
/// characters a tick label needs.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        'e' => [0, 7, 7, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        _ => return None,
    })
}

/// Draw `text` (digits, `.`, `-`, `+`, `e`, space; other characters are skipped) into the RGB
/// panel `img` (`[rows, cols, 3]`) with its top-left corner at `(row, col)`, each glyph pixel
/// a `zoom × zoom` block of `colour`; what falls outside is clipped.
pub fn draw_text(
    img: &mut ndarray::Array3<f64>,
    row: usize,
    col: usize,
    text: &str,
    zoom: usize,
    colour: [f64; 3],
) {
    let (h, w, _) = img.dim();
    let mut x = col;
    for c in text.chars() {
        let Some(g) = glyph(c) else { continue };
        for (r, bits) in g.iter().enumerate() {
            for b in 0..3 {
                if (bits >> (2 - b)) & 1 == 1 {
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            let (i, j) = (row + r * zoom + dy, x + b * zoom + dx);
                            if i < h && j < w {
                                for (k, v) in colour.iter().enumerate() {
                                    img[[i, j, k]] = *v;
                                }
                            }
                        }
                    }
                }
            }
        }
        x += 4 * zoom;
    }
}

/// A short tick label: 3 significant digits, exponent form outside `[1e-3, 1e4)`.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.2e}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// An uncertainty panel, written as an 8-bit RGB PNG/TIFF: the input (brought to the output's
/// size by pixel replication when it is smaller by an integer factor; missing pixels red), the
/// restored mean (same grey scale as the input: `stretch` limits from the input's finite
/// pixels), the standard deviation in [`viridis`] between its 1st and 99th percentiles, and
/// a colour bar labelled at both ends and the middle (data units). See [`write_preview`] for
/// `fits_orientation`.
pub fn write_uncertainty_panel(
    path: impl AsRef<Path>,
    input: ArrayView2<'_, f64>,
    mean: ArrayView2<'_, f64>,
    std: ArrayView2<'_, f64>,
    stretch: Stretch,
    fits_orientation: bool,
    force: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let (h, w) = mean.dim();
    let (ih, iw) = input.dim();
    if std.dim() != (h, w) || ih == 0 || iw == 0 || h % ih != 0 || w % iw != 0 || h / ih != w / iw {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "panel: input {ih}×{iw}, mean {h}×{w} and std {:?} do not fit together",
                std.dim()
            ),
        });
    }
    let f = h / ih;
    let up = Array2::from_shape_fn((h, w), |(i, j)| input[[i / f, j / f]]);
    let (lo, hi) = limits(input, limits_of(stretch));
    let fixed = match stretch {
        Stretch::Linear(_) => Stretch::Linear(Limits::Fixed(lo, hi)),
        Stretch::Asinh(_, a) => Stretch::Asinh(Limits::Fixed(lo, hi), a),
    };
    let grey = |a: &Array2<f64>, mark_missing: bool| {
        let d = apply_stretch(orient(a.view(), fits_orientation), fixed);
        let mut out = ndarray::Array3::<f64>::zeros((h, w, 3));
        for ((i, j), &v) in d.indexed_iter() {
            let c = if v.is_nan() && mark_missing {
                [0.85, 0.1, 0.1]
            } else {
                [v; 3]
            };
            for k in 0..3 {
                out[[i, j, k]] = c[k];
            }
        }
        out
    };
    let p_in = grey(&up, true);
    let p_mean = grey(&mean.to_owned(), false);
    let (smin, smax) = limits(std, Limits::Percentile(1.0, 99.0));
    let span = if smax > smin { smax - smin } else { 1.0 };
    let so = orient(std, fits_orientation);
    let mut p_std = ndarray::Array3::<f64>::zeros((h, w, 3));
    for ((i, j), &v) in so.indexed_iter() {
        let c = viridis((v - smin) / span);
        for k in 0..3 {
            p_std[[i, j, k]] = c[k];
        }
    }
    // colour bar: 12 px of colour, then the labels (zoom 2: 8 px per character)
    let zoom = if h >= 96 { 2 } else { 1 };
    let labels = [smax, 0.5 * (smin + smax), smin].map(tick_label);
    let text_w = labels.iter().map(|l| l.len()).max().unwrap_or(1) * 4 * zoom;
    let bar_w = 12 + 4 + text_w + 2;
    let mut bar = ndarray::Array3::<f64>::zeros((h, bar_w, 3));
    for i in 0..h {
        let t = 1.0 - i as f64 / (h.max(2) - 1) as f64;
        let c = viridis(t);
        for j in 0..12 {
            for k in 0..3 {
                bar[[i, j, k]] = c[k];
            }
        }
    }
    let glyph_h = 5 * zoom;
    let rows = [
        0,
        (h / 2).saturating_sub(glyph_h / 2),
        h.saturating_sub(glyph_h),
    ];
    for (l, r) in labels.iter().zip(rows) {
        draw_text(&mut bar, r, 16, l, zoom, [1.0; 3]);
    }
    write_rgb_panels(
        path,
        &[p_in.view(), p_mean.view(), p_std.view(), bar.view()],
        false,
        force,
    )
}

fn limits_of(s: Stretch) -> Limits {
    match s {
        Stretch::Linear(l) | Stretch::Asinh(l, _) => l,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_tick_labels() {
        let a = viridis(0.0);
        assert!((a[0] - 68.0 / 255.0).abs() < 1e-12 && (a[2] - 84.0 / 255.0).abs() < 1e-12);
        let b = viridis(1.0);
        assert!((b[1] - 231.0 / 255.0).abs() < 1e-12);
        // halfway between the 4th and 5th colours
        let m = viridis(0.5 - 1.0 / 16.0);
        assert!((m[1] - (114.0 + 145.0) / 2.0 / 255.0).abs() < 1e-12);
        assert_eq!(viridis(f64::NAN), [0.0; 3]);
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.0123), "0.0123");
        assert_eq!(tick_label(12.345), "12.3");
        assert_eq!(tick_label(2.5e-5), "2.50e-5");
        assert!(tick_label(-0.5).starts_with('-'));
        for c in tick_label(1.234e-7).chars() {
            assert!(glyph(c).is_some(), "no glyph for {c}");
        }
    }

    #[test]
    fn text_is_drawn_where_asked() {
        let mut img = ndarray::Array3::<f64>::zeros((12, 20, 3));
        draw_text(&mut img, 1, 2, "1", 2, [1.0, 0.5, 0.0]);
        // glyph '1' row 0 = 0b010: only the middle column, at zoom 2 → columns 4..6, rows 1..3
        assert_eq!(img[[1, 4, 0]], 1.0);
        assert_eq!(img[[2, 5, 1]], 0.5);
        assert_eq!(img[[1, 2, 0]], 0.0);
        // bottom row 0b111 → columns 2..8 at rows 9..11
        assert_eq!(img[[9, 2, 0]], 1.0);
        assert_eq!(img[[10, 7, 0]], 1.0);
        let lit = img.iter().filter(|&&v| v == 1.0).count();
        // every lit glyph bit is a 2 × 2 block
        let bits: u32 = glyph('1').unwrap().iter().map(|b| b.count_ones()).sum();
        assert_eq!(lit, bits as usize * 4);
    }

    #[test]
    fn uncertainty_panel_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("panel.png");
        let input = Array2::from_shape_fn((16, 16), |(i, j)| {
            if i == 3 && j == 4 {
                f64::NAN
            } else {
                (i + j) as f64
            }
        });
        let mean = Array2::from_shape_fn((32, 32), |(i, j)| (i + j) as f64 / 2.0);
        let std = Array2::from_shape_fn((32, 32), |(i, _)| i as f64 * 0.01);
        write_uncertainty_panel(
            &p,
            input.view(),
            mean.view(),
            std.view(),
            Stretch::Linear(Limits::MinMax),
            false,
            false,
        )
        .unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.height(), 32);
        // three 32-px panels, three 4-px gaps, the bar
        assert!(img.width() > 3 * 32 + 3 * 4 + 12);
        // the missing input pixel is red (replicated 2×2 at rows 6..8, cols 8..10)
        let px = img.get_pixel(8, 6);
        assert!(px[0] > 200 && px[1] < 40, "{px:?}");
        // std panel: the top row (std 0, below the 1st percentile) is viridis(0)
        let px = img.get_pixel(2 * 36 + 5, 0);
        assert_eq!([px[0], px[1], px[2]], [68, 1, 84]);
        // mismatched shapes are an error, not a panic
        assert!(write_uncertainty_panel(
            dir.path().join("b.png"),
            input.view(),
            mean.view(),
            input.view(),
            Stretch::default(),
            false,
            false
        )
        .is_err());
    }

    #[test]
    fn png_and_tiff_roundtrip_16_and_8_bit() {
        let d = tempfile::tempdir().unwrap();
        let a = Array2::from_shape_fn((7, 11), |(y, x)| (y * 11 + x) as f64 / 76.0);
        for (name, depth, tol) in [
            ("a.png", BitDepth::Sixteen, 0.5 / 65535.0),
            ("a.tif", BitDepth::Sixteen, 0.5 / 65535.0),
            ("b.png", BitDepth::Eight, 0.5 / 255.0),
            ("b.tiff", BitDepth::Eight, 0.5 / 255.0),
        ] {
            let p = d.path().join(name);
            write_gray(&p, a.view(), depth, false).unwrap();
            let (r, deep) = read_gray(&p).unwrap();
            assert_eq!(deep, depth == BitDepth::Sixteen);
            assert_eq!(r.dim(), a.dim());
            for (x, y) in r.iter().zip(a.iter()) {
                assert!((x - y).abs() <= tol + 1e-7, "{name}: {x} vs {y}");
            }
            assert!(write_gray(&p, a.view(), depth, false).is_err());
        }
        assert!(write_gray(d.path().join("x.bmp"), a.view(), BitDepth::Eight, false).is_err());
    }

    /// Limits equal to astropy's `ZScaleInterval` (testdata/gen_golden.py wrote them).
    #[test]
    fn zscale_matches_astropy() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/zscale.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for case in v.as_array().unwrap() {
            let sh = &case["shape"];
            let shape = (
                sh[0].as_u64().unwrap() as usize,
                sh[1].as_u64().unwrap() as usize,
            );
            let vals: Vec<f64> = case["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect();
            let a = Array2::from_shape_vec(shape, vals).unwrap();
            let (lo, hi) = zscale(a.view()).unwrap();
            let want = (
                case["limits"][0].as_f64().unwrap(),
                case["limits"][1].as_f64().unwrap(),
            );
            assert!(
                (lo - want.0).abs() < 1e-9 * want.0.abs(),
                "{lo} vs {}",
                want.0
            );
            assert!(
                (hi - want.1).abs() < 1e-9 * want.1.abs(),
                "{hi} vs {}",
                want.1
            );
        }
    }

    #[test]
    fn side_by_side_layout_and_orientation() {
        let d = tempfile::tempdir().unwrap();
        // before: row 0 (FITS bottom) bright; after: smaller, uniform
        let mut before = Array2::<f64>::zeros((6, 5));
        before.row_mut(0).fill(10.0);
        let after = Array2::<f64>::from_elem((4, 3), 1.0);
        let p = d.path().join("cmp.png");
        let st = Stretch::Linear(Limits::Fixed(0.0, 10.0));
        write_side_by_side(&p, before.view(), after.view(), st, true, false).unwrap();
        let (img, _) = read_gray(&p).unwrap();
        assert_eq!(img.dim(), (6, 5 + 4 + 3));
        // FITS row 0 is displayed at the bottom
        assert_eq!(img[[5, 0]], 1.0);
        assert_eq!(img[[0, 0]], 0.0);
        // white separator, then the right panel (padded with black below its 4 rows)
        assert!((5..9).all(|x| img[[0, x]] == 1.0));
        assert!((img[[0, 9]] - 26.0 / 255.0).abs() < 1e-6);
        assert_eq!(img[[5, 9]], 0.0);
    }

    #[test]
    fn before_after_uses_the_limits_of_before() {
        let d = tempfile::tempdir().unwrap();
        let before = Array2::from_shape_fn((2, 3), |(_, x)| x as f64); // 0, 1, 2
        let after = Array2::from_shape_fn((2, 3), |(_, x)| 2.0 * x as f64); // 0, 2, 4
        let p = d.path().join("ba.png");
        write_before_after(
            &p,
            before.view(),
            after.view(),
            Stretch::Linear(Limits::MinMax),
            false,
            false,
        )
        .unwrap();
        let (img, _) = read_gray(&p).unwrap();
        // before: 0, 0.5, 1; after with the same limits [0, 2]: 0, 1, 1 (clipped)
        let want = [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        for (x, w) in want.iter().enumerate() {
            assert!(
                (img[[0, x]] - w).abs() < 1.0 / 255.0,
                "x={x}: {}",
                img[[0, x]]
            );
        }
    }

    #[test]
    fn stretches() {
        let a = Array2::from_shape_fn((1, 101), |(_, x)| x as f64);
        assert_eq!(
            limits(a.view(), Limits::Percentile(10.0, 90.0)),
            (10.0, 90.0)
        );
        let lin = apply_stretch(a.view(), Stretch::Linear(Limits::MinMax));
        assert!((lin[[0, 50]] - 0.5).abs() < 1e-12);
        let ash = apply_stretch(a.view(), Stretch::Asinh(Limits::MinMax, 0.1));
        assert!((ash[[0, 100]] - 1.0).abs() < 1e-12);
        let expect = (0.5f64 / 0.1).asinh() / 10f64.asinh();
        assert!((ash[[0, 50]] - expect).abs() < 1e-12);
    }
}
