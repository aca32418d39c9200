//! Closed-form Fourier deconvolution (Wiener, Tikhonov): circular model, or the image
//! extended by reflection or zeros; masked-pixel fill by a local median. Generic over
//! `f32`/`f64` ([`Real`]); scalar statistics (noise level, balance) are computed in `f64`.

use super::check_inputs;
use crate::boundary::{mirror_index, reflect_index};
use crate::error::{Error, Result};
use crate::fft::{good_fft_len, good_real_fft_len};
use crate::op::{Boundary, Conv2d, LinearOperator, Starlet};
use crate::scalar::{real, Real};
use crate::stats::median_mut;
use ndarray::{s, Array2, ArrayView2, Axis};
use num_complex::Complex;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// How the Wiener balance `μ` (noise-to-signal power ratio) is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Balance {
    /// Use this `μ ≥ 0` (0 is the plain inverse filter, defined only where `H ≠ 0`).
    Fixed(f64),
    /// Estimate `μ = σ² / P_s` with `σ` from [`estimate_noise_sigma`] and the signal power
    /// per pixel `P_s = max(var(y) − σ², 10⁻³ var(y))` (a flat, white-signal prior). Cheap,
    /// but a white signal is a poor model of most images: [`gcv_select`] chooses the balance
    /// (and the signal spectrum) from the data far better, and is what `sparseinv
    /// deconvolve` uses.
    Auto,
}

/// The regularisation operator `L` of [`tikhonov`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regulariser {
    /// `L = I` (`|L|² = 1`): penalises the energy of `x`.
    Identity,
    /// The periodic discrete gradient, `‖L x‖² = ‖D₀ x‖² + ‖D₁ x‖²` with forward differences
    /// `D`: `|L(u,v)|² = (2 − 2cos(2πu/n₀)) + (2 − 2cos(2πv/n₁))`. Penalises slopes; as a
    /// Wiener prior it is a signal power spectrum `∝ 1/|L|² ≈ 1/(2π|k|)²`, the spectrum of
    /// natural images.
    Gradient,
    /// The periodic 5-point Laplacian `[[0,−1,0],[−1,4,−1],[0,−1,0]]`,
    /// `|L(u,v)|² = (4 − 2cos(2πu/n₀) − 2cos(2πv/n₁))²`: penalises roughness
    /// (this is the regulariser of scikit-image's `restoration.wiener`).
    Laplacian,
}

/// Estimate the standard deviation of white Gaussian noise in `y` from the finest starlet
/// scale: `σ = MAD(w₁) / 0.6745 / σ₁`, where `MAD` is the median absolute deviation from the
/// median, 0.6745 the MAD of a unit Gaussian and `σ₁ = 0.8908` the noise level of `w₁` for
/// unit white noise ([`starlet_noise_std`](crate::op::starlet_noise_std)). Robust to sparse
/// bright sources. The starlet transform runs in the precision `R` of `y`, the statistics
/// in `f64` ([`crate::stats`]); the estimate is returned as `f64`. (`0.6745` is kept as
/// written rather than [`MAD_TO_SIGMA`](crate::stats::MAD_TO_SIGMA)` = 1/0.674490` so that
/// results stay bit-identical to earlier releases; the two differ by 1.5·10⁻⁵ relative.)
/// Errors on an empty or non-finite image.
pub fn estimate_noise_sigma<R: Real>(y: ArrayView2<R>) -> Result<f64> {
    if y.is_empty() {
        return Err(Error::Empty {
            what: "image".into(),
        });
    }
    crate::error::check_finite("image", y.iter())?;
    let (n0, n1) = y.dim();
    let s = Starlet::<R>::new([n0, n1], 1)?;
    let w = s.apply(y.into_dyn())?;
    let mut w1: Vec<f64> = w
        .index_axis(Axis(0), 0)
        .iter()
        .map(|v| v.to_f64_lossless())
        .collect();
    let med = median_mut(&mut w1).unwrap_or(0.0);
    let mut dev: Vec<f64> = w1.iter().map(|v| (v - med).abs()).collect();
    let mad = median_mut(&mut dev).unwrap_or(0.0);
    Ok(mad / 0.6745 / s.noise_std()[0].to_f64_lossless())
}

/// The Wiener balance `μ` that [`Balance`] selects for the image `y` (see [`Balance::Auto`]
/// for the estimate). Computing it once on a whole image and passing
/// `Balance::Fixed(μ)` makes tiles of that image use the same filter. Sums are accumulated in
/// `f64` for both precisions. Errors on a negative or non-finite fixed balance, or an
/// empty/non-finite image for `Auto`.
pub fn wiener_balance<R: Real>(y: ArrayView2<R>, balance: Balance) -> Result<f64> {
    match balance {
        Balance::Fixed(b) => {
            if !(b >= 0.0 && b.is_finite()) {
                return Err(Error::param("balance", format!("must be ≥ 0, got {b}")));
            }
            Ok(b)
        }
        Balance::Auto => {
            let sigma = estimate_noise_sigma(y)?;
            let n = y.len() as f64;
            // ndarray's (unrolled) sum, as before the generic version: same bits for f64
            let mean = y.mapv(|v| v.to_f64_lossless()).sum() / n;
            let var = y
                .iter()
                .map(|v| (v.to_f64_lossless() - mean) * (v.to_f64_lossless() - mean))
                .sum::<f64>()
                / n;
            let ps = (var - sigma * sigma).max(1e-3 * var);
            Ok(if ps > 0.0 { sigma * sigma / ps } else { 0.0 })
        }
    }
}

/// How an image is continued beyond its edges by [`pad`] (the two symmetric conventions of
/// [`crate::boundary`], or zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// Half-sample symmetric, edge repeated: `d c b a | a b c d | d c b a`
    /// ([`reflect_index`]; scipy.ndimage `reflect`, numpy `symmetric`).
    HalfSample,
    /// Whole-sample symmetric, edge not repeated: `d c b | a b c d | c b a`
    /// ([`mirror_index`]; numpy `reflect`, PyTorch `F.pad(mode="reflect")`).
    WholeSample,
    /// Zeros.
    Zero,
    /// Half-sample reflection at both edges of each axis, cross-faded across the periodic
    /// wrap so that the continuation has no jump anywhere. Along an axis of `n` samples with
    /// `G` pad samples in all (bottom pad, then — cyclically — the top pad), the pad sample
    /// at cyclic distance `g ∈ [0, G)` past the last sample is
    /// `w(g) · y[refl(n + g)] + (1 − w(g)) · y[refl(g − G)]`, `refl` the half-sample
    /// reflection ([`reflect_index`]). With `F = ⌊G/3⌋`, the weight is flat at the ends and
    /// a raised cosine between: `w(g) = 1` for `g < F` (the plain reflection of the last
    /// samples), `w(g) = 0` for `g ≥ G − F` (the plain reflection of the first ones) and
    /// `w(g) = ½(1 + cos(π(g − F + ½)/(G − 2F)))` in the middle third.
    ///
    /// This is what [`Padding::for_boundary`] uses for [`Boundary::Reflect`], with three times
    /// the PSF's extent on each side: next to the image the continuation is the image's own
    /// mirror, as on the doubled mirror grid (the symmetric extension of the discrete cosine
    /// transform, `HalfSample` to twice the size), so the two agree at the edges, while the
    /// grid grows by a few PSF widths instead of doubling. Measured against that doubled
    /// grid: the border band is as accurate
    /// (`tapered_reflect_is_as_good_at_the_edges_as_the_doubled_mirror`), tiles agree with the
    /// whole image to 1e-4 as before (a fade over the whole pad, without the flat ends,
    /// disagreed by 1e-2 with one PSF extent and 4.5e-4 with four), and the filter costs
    /// 1.7–2.0× the periodic one on 2048² with a 31² PSF (grid 2304², `benches/boundary.rs`:
    /// 94 against 46 ms on a quiet 2-core box) instead of 4.7–5.1× on the doubled grid.
    Tapered,
    /// No pad: the periodic-plus-smooth decomposition of Moisan (J. Math. Imaging Vis. 39,
    /// 2011). The image is split as `y = p + s`, where `s` is the smooth image whose periodic
    /// discrete Laplacian is the boundary jump image `v` (`v` is non-zero only on the four
    /// edges: the jump `y[last] − y[first]` across each periodic wrap) and has zero mean,
    ///
    /// ```text
    /// ŝ(q, r) = v̂(q, r) / (2 cos(2πq/M) + 2 cos(2πr/N) − 4),   ŝ(0, 0) = 0,
    /// v̂(q, r) = â(r)(1 − e^{2πiq/M}) + ĉ(q)(1 − e^{2πir/N}),
    /// a = y[M−1, ·] − y[0, ·],  c = y[·, N−1] − y[·, 0]
    /// ```
    ///
    /// so that `p = y − s` has no jump across the wrap. The Fourier filters then filter `p`
    /// periodically on the image's own grid and add `s` back unfiltered (it is smooth, so
    /// the blur hardly changes it): `x̂ = F⁻¹[W (Y − Ŝ) + Ŝ]`, one FFT pair as for the
    /// periodic model plus two 1-D FFTs of the edges. [`pad`] returns `p`. On the edge test
    /// of the doubled mirror grid (`periodic_smooth_is_as_good_at_the_edges_as_the_doubled_
    /// mirror`) the 32-px border band is as accurate, at about the periodic filter's cost.
    PeriodicSmooth,
}

/// Where and how [`wiener_padded`] / [`tikhonov_padded`] extend an image before filtering:
/// `rows = (top, bottom)` and `cols = (left, right)` pixels of [`Extension`] around it. The
/// filter grid is exactly `(n₀ + top + bottom) × (n₁ + left + right)`; symmetric extensions
/// repeat periodically when a pad exceeds the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// How the image is continued.
    pub extension: Extension,
    /// Rows added above and below.
    pub rows: (usize, usize),
    /// Columns added left and right.
    pub cols: (usize, usize),
}

impl Padding {
    /// `pr` rows above and below, `pc` columns left and right.
    pub fn symmetric(extension: Extension, pr: usize, pc: usize) -> Self {
        Padding {
            extension,
            rows: (pr, pr),
            cols: (pc, pc),
        }
    }

    /// The padding [`wiener_bounded`] uses for `boundary` on an `n₀ × n₁` image and a
    /// `kh × kw` PSF: none for [`Boundary::Circular`]; for [`Boundary::Reflect`], the
    /// [`Extension::Tapered`] continuation (the image's mirror next to each edge, cross-faded
    /// in the middle of the pad) on the grid `P = good(n₀ + 6(kh − 1))`,
    /// `Q = good_real(n₁ + 6(kw − 1))` — at least three PSF extents on each side — with the
    /// image in the middle (offset `⌊(P − n₀)/2⌋`); for [`Boundary::Same`], zeros by the PSF
    /// size on the top/left and up to a fast FFT length `good(n₀ + 2kh)` on the
    /// bottom/right. Errors for `Full`/`Valid`. (The doubled mirror grid, `HalfSample` to
    /// twice the image, remains available as an explicit [`Padding`].)
    pub fn for_boundary(
        boundary: Boundary,
        (n0, n1): (usize, usize),
        (kh, kw): (usize, usize),
    ) -> Result<Self> {
        Ok(match boundary {
            Boundary::Circular => Padding::symmetric(Extension::Zero, 0, 0),
            Boundary::Reflect => {
                let p = good_fft_len(n0 + 6 * kh.saturating_sub(1));
                let q = good_real_fft_len(n1 + 6 * kw.saturating_sub(1));
                let (o0, o1) = ((p - n0) / 2, (q - n1) / 2);
                Padding {
                    extension: Extension::Tapered,
                    rows: (o0, p - n0 - o0),
                    cols: (o1, q - n1 - o1),
                }
            }
            Boundary::Same => {
                let p = good_fft_len(n0 + 2 * kh);
                let q = good_real_fft_len(n1 + 2 * kw);
                Padding {
                    extension: Extension::Zero,
                    rows: (kh, p - n0 - kh),
                    cols: (kw, q - n1 - kw),
                }
            }
            Boundary::Full | Boundary::Valid => {
                return Err(Error::param(
                    "boundary",
                    "the Fourier methods support Circular, Reflect and Same (zero) boundaries",
                ))
            }
        })
    }

    fn is_none(&self) -> bool {
        self.rows == (0, 0) && self.cols == (0, 0) && self.extension != Extension::PeriodicSmooth
    }

    /// The periodic-plus-smooth handling of the edges ([`Extension::PeriodicSmooth`]): no pad,
    /// the filter runs on the image's own grid.
    pub fn periodic_smooth() -> Self {
        Padding::symmetric(Extension::PeriodicSmooth, 0, 0)
    }
}

/// `y` extended by `padding` (see [`Padding`]): an array of
/// `(n₀ + top + bottom) × (n₁ + left + right)` with `y` at offset `(top, left)`.
///
/// ```
/// use ndarray::array;
/// use sparseinv_solvers::deconv::{pad, Extension, Padding};
/// let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// // numpy.pad(a, ((1, 0), (0, 2)), mode="reflect")
/// let p = pad(a.view(), &Padding { extension: Extension::WholeSample, rows: (1, 0), cols: (0, 2) });
/// assert_eq!(p, array![[4.0, 5.0, 6.0, 5.0, 4.0], [1.0, 2.0, 3.0, 2.0, 1.0], [4.0, 5.0, 6.0, 5.0, 4.0]]);
/// ```
pub fn pad<R: Real>(y: ArrayView2<R>, padding: &Padding) -> Array2<R> {
    if padding.extension == Extension::PeriodicSmooth {
        // the periodic component p = y − s (the pads of this extension are ignored)
        return periodic_component(y);
    }
    let (n0, n1) = y.dim();
    let rows = axis_sources(padding.extension, n0, padding.rows);
    let cols = axis_sources(padding.extension, n1, padding.cols);
    let q = cols.len();
    let mut out: Array2<R> = crate::alloc::zeros2((rows.len(), q));
    out.as_slice_mut()
        .expect("fresh array is contiguous")
        .par_chunks_mut(q.max(1))
        .zip(rows.par_iter())
        .for_each(|(row, r)| {
            let Some((ra, rb, rw)) = *r else {
                return; // zeros
            };
            let (ya, yb) = (y.row(ra), y.row(rb));
            let (wa, wb) = (real::<R>(rw), real::<R>(1.0 - rw));
            let src = |j: usize| {
                if rw == 1.0 {
                    ya[j]
                } else {
                    wa * ya[j] + wb * yb[j]
                }
            };
            for (d, c) in row.iter_mut().zip(&cols) {
                if let Some((ca, cb, cw)) = *c {
                    *d = if cw == 1.0 {
                        src(ca)
                    } else {
                        real::<R>(cw) * src(ca) + real::<R>(1.0 - cw) * src(cb)
                    };
                }
            }
        });
    out
}

/// Where each output sample of one axis (`n` samples padded by `(before, after)`) comes
/// from under `ext`: `None` for a zero, else `(a, b, w)` for `w · y[a] + (1 − w) · y[b]`
/// (`w = 1`, a single source, inside the image and for the symmetric extensions; the blend of
/// [`Extension::Tapered`] in its pad).
fn axis_sources(
    ext: Extension,
    n: usize,
    (before, after): (usize, usize),
) -> Vec<Option<(usize, usize, f64)>> {
    let g_all = before + after;
    (0..n + g_all)
        .map(|i| {
            let k = i as isize - before as isize;
            if k >= 0 && (k as usize) < n {
                return Some((k as usize, k as usize, 1.0));
            }
            let one = |j: usize| Some((j, j, 1.0));
            match ext {
                // no pad (handled before `pad` gets here)
                Extension::Zero | Extension::PeriodicSmooth => None,
                Extension::HalfSample => one(reflect_index(k, n)),
                Extension::WholeSample => one(mirror_index(k, n)),
                Extension::Tapered => {
                    // cyclic distance past the last sample
                    let g = if i >= before + n {
                        i - before - n
                    } else {
                        after + i
                    };
                    let end = reflect_index((n + g) as isize, n);
                    let start = reflect_index(g as isize - g_all as isize, n);
                    let flat = g_all / 3;
                    let fade = (g_all - 2 * flat) as f64;
                    let w = if g < flat {
                        1.0
                    } else if g >= g_all - flat {
                        0.0
                    } else {
                        0.5 * (1.0
                            + (std::f64::consts::PI * ((g - flat) as f64 + 0.5) / fade).cos())
                    };
                    Some((end, start, w))
                }
            }
        })
        .collect()
}

/// The spectrum `Ŝ(q, r)` (unnormalised DFT, as `numpy.fft.fft2`) of the smooth component of
/// [`Extension::PeriodicSmooth`], from the two 1-D spectra of the edge jumps.
struct SmoothSpectrum<R> {
    /// `â(r)`, `r < N`: the DFT of the jump between the last and first rows
    a: Vec<Complex<R>>,
    /// `ĉ(q)`, `q < M`: the DFT of the jump between the last and first columns
    c: Vec<Complex<R>>,
    /// `1 − e^{2πiq/M}` and `1 − e^{2πir/N}`
    eu: Vec<Complex<R>>,
    ev: Vec<Complex<R>>,
    /// `2 cos(2πq/M) − 2` and `2 cos(2πr/N) − 2`
    lu: Vec<R>,
    lv: Vec<R>,
}

impl<R: Real> SmoothSpectrum<R> {
    /// Computed in `f64`, stored in `R`.
    fn new(y: ArrayView2<R>) -> Self {
        let (m, n) = y.dim();
        let cr = |z: Complex<f64>| Complex::new(real::<R>(z.re), real::<R>(z.im));
        let dft = |v: Vec<Complex<f64>>| -> Vec<Complex<R>> {
            let mut v = v;
            if v.len() > 1 {
                crate::fft::complex_plan::<f64>(v.len(), false).process(&mut v);
            }
            v.into_iter().map(cr).collect()
        };
        let f = |v: R| v.to_f64_lossless();
        let a = dft((0..n)
            .map(|j| Complex::new(f(y[[m - 1, j]]) - f(y[[0, j]]), 0.0))
            .collect());
        let c = dft((0..m)
            .map(|i| Complex::new(f(y[[i, n - 1]]) - f(y[[i, 0]]), 0.0))
            .collect());
        let tau = 2.0 * std::f64::consts::PI;
        let e = |k: usize, len: usize| {
            let t = tau * k as f64 / len as f64;
            cr(Complex::new(1.0 - t.cos(), -t.sin()))
        };
        let l = |k: usize, len: usize| real::<R>(2.0 * (tau * k as f64 / len as f64).cos() - 2.0);
        SmoothSpectrum {
            a,
            c,
            eu: (0..m).map(|q| e(q, m)).collect(),
            ev: (0..n).map(|r| e(r, n)).collect(),
            lu: (0..m).map(|q| l(q, m)).collect(),
            lv: (0..n).map(|r| l(r, n)).collect(),
        }
    }

    /// `Ŝ(q, r)`.
    #[inline]
    fn at(&self, q: usize, r: usize) -> Complex<R> {
        let den = self.lu[q] + self.lv[r];
        if den == R::zero() {
            return Complex::new(R::zero(), R::zero());
        }
        (self.a[r] * self.eu[q] + self.c[q] * self.ev[r]) / den
    }
}

/// The periodic component `p = y − s` of [`Extension::PeriodicSmooth`].
fn periodic_component<R: Real>(y: ArrayView2<R>) -> Array2<R> {
    let (m, n) = y.dim();
    let sp = SmoothSpectrum::new(y);
    let one = Array2::from_elem((1, 1), R::one());
    let conv = Conv2d::<R>::new_one_pass([m, n], one.view(), Boundary::Circular)
        .expect("a 1 × 1 kernel fits any image");
    let mut out: Array2<R> = crate::alloc::zeros2((m, n));
    conv.apply_fourier_map_indexed_into(y, out.view_mut(), &|u, v, _h, z| z - sp.at(u, v))
        .expect("shapes match");
    out
}

/// `F⁻¹[ conj(H) Y / (|H|² + μ |L|²) ]` with `|L|²` of `reg` ([`Regulariser`]) on the FFT
/// grid of the image extended by `padding`, cropped back to the image.
fn fourier_solve<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    mu: f64,
    padding: &Padding,
    reg: Regulariser,
) -> Result<Array2<R>> {
    let (n0, n1) = y.dim();
    let smooth = (padding.extension == Extension::PeriodicSmooth).then(|| SmoothSpectrum::new(y));
    // without padding the circular model filters the image itself (no copy)
    let extended = (!padding.is_none() && smooth.is_none()).then(|| pad(y, padding));
    let (ext, (o0, o1)) = match &extended {
        None => (y, (0, 0)),
        Some(e) => (e.view(), (padding.rows.0, padding.cols.0)),
    };
    let (p, q) = ext.dim();
    let conv = Conv2d::<R>::new_one_pass([p, q], psf, Boundary::Circular)?;
    // |L(u, v)|² = (l(u) + l(v))^e, l(u) = 2 − 2 cos(2πu/n): e = 1 the gradient, 2 the
    // periodic 5-point Laplacian
    let table = |n: usize| -> Vec<f64> {
        if reg == Regulariser::Identity {
            return Vec::new();
        }
        diff_symbol(n)
    };
    let (lap_u, lap_v) = (table(p), table(q));
    let zero_den = AtomicBool::new(false);
    let mu_r = real::<R>(mu);
    let mut out: Array2<R> = crate::alloc::zeros2((p, q));
    let filter = |u: usize, v: usize, h: Complex<R>| {
        let r = match reg {
            Regulariser::Identity => R::one(),
            Regulariser::Gradient => real::<R>(lap_u[u] + lap_v[v]),
            Regulariser::Laplacian => {
                let l = lap_u[u] + lap_v[v];
                real::<R>(l * l)
            }
        };
        let den = h.norm_sqr() + mu_r * r;
        if den > R::zero() {
            h.conj() / den
        } else {
            zero_den.store(true, Ordering::Relaxed);
            Complex::new(R::zero(), R::zero())
        }
    };
    match &smooth {
        None => conv.apply_fourier_filter_indexed_into(ext, out.view_mut(), &filter)?,
        // x̂ = W (Y − Ŝ) + Ŝ
        Some(sp) => conv.apply_fourier_map_indexed_into(ext, out.view_mut(), &|u, v, h, z| {
            let s = sp.at(u, v);
            filter(u, v, h) * (z - s) + s
        })?,
    }
    if zero_den.load(Ordering::Relaxed) && mu > 0.0 {
        return Err(Error::Numerical(
            "the regularised filter has a zero denominator".into(),
        ));
    }
    if (p, q) == (n0, n1) {
        return Ok(out);
    }
    Ok(out.slice(s![o0..o0 + n0, o1..o1 + n1]).to_owned())
}

/// Fill the masked pixels of `y` (`mask[p] == false`) with the median of the valid pixels
/// in the `(2r+1)²` window around each, growing the filled region inward ring by ring: a pass
/// fills every masked pixel that has at least one known pixel in its window, from the pixels
/// known before that pass (valid ones and those filled by earlier passes), so holes of any
/// size are filled from their rims and the result does not depend on the scan order.
/// Valid pixels are unchanged. This is the fill the Fourier methods ([`wiener`],
/// [`tikhonov`]) need: they have no data weights, and a local median continues the
/// background and does not bleed stars into the hole, unlike zeros or a global mean.
/// Errors when the mask has another shape than `y`, `r = 0`, a valid pixel is not finite,
/// or no pixel is valid.
pub fn fill_masked_median<R: Real>(
    y: ArrayView2<R>,
    mask: ArrayView2<bool>,
    r: usize,
) -> Result<Array2<R>> {
    if mask.dim() != y.dim() {
        return Err(Error::shape("mask", y.shape(), mask.shape()));
    }
    if r == 0 {
        return Err(Error::param("r", "the window radius must be at least 1"));
    }
    check_inputs(y, ndarray::arr2(&[[R::one()]]).view(), Some(mask))?;
    if !mask.iter().any(|&b| b) {
        return Err(Error::param("mask", "no valid pixel to fill from"));
    }
    let (n0, n1) = y.dim();
    let mut out = ndarray::Zip::from(&y)
        .and(&mask)
        .map_collect(|&v, &m| if m { v } else { R::nan() });
    let mut todo: Vec<(usize, usize)> = mask
        .indexed_iter()
        .filter(|(_, &m)| !m)
        .map(|(i, _)| i)
        .collect();
    while !todo.is_empty() {
        let known = &out;
        let fills: Vec<Option<R>> = todo
            .par_iter()
            .map(|&(i, j)| {
                let mut vals: Vec<f64> = Vec::with_capacity((2 * r + 1).pow(2));
                for a in i.saturating_sub(r)..(i + r + 1).min(n0) {
                    for b in j.saturating_sub(r)..(j + r + 1).min(n1) {
                        let v = known[[a, b]];
                        if !v.is_nan() {
                            vals.push(v.to_f64_lossless());
                        }
                    }
                }
                // the median of values of type R is one of them or the mean of two: exact
                // in R after rounding
                median_mut(&mut vals).map(real::<R>)
            })
            .collect();
        let mut rest = Vec::new();
        let mut filled = 0usize;
        for (&(i, j), f) in todo.iter().zip(&fills) {
            match f {
                Some(v) => {
                    out[[i, j]] = *v;
                    filled += 1;
                }
                None => rest.push((i, j)),
            }
        }
        if filled == 0 {
            // unreachable with at least one valid pixel (every hole has a rim), kept as a guard
            return Err(Error::Numerical(
                "masked-pixel fill made no progress".into(),
            ));
        }
        todo = rest;
    }
    Ok(out)
}

/// Wiener deconvolution under the circular model:
/// `x̂ = F⁻¹[ conj(H) Y / (|H|² + μ) ]`, `H` the transfer function of `psf`
/// (centre `(h/2, w/2)`, see [`Conv2d::transfer_function`]).
///
/// This is the MMSE linear estimate for white noise of power `σ²` and a white signal of power
/// `P_s` with `μ = σ²/P_s` ([`Balance::Auto`] estimates both). The image is treated as
/// periodic: sources near one edge ring at the opposite edge; pad or taper the image when this
/// matters. Frequencies with `H = 0` are set to 0 when `μ = 0`. Errors on empty, non-finite
/// or negative-balance inputs.
///
/// ```
/// use sparseinv_solvers::deconv::{wiener, Balance};
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// use ndarray::{array, Array2};
/// let psf = array![[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]];
/// let x = Array2::from_shape_fn((8, 8), |(i, j)| ((i * 3 + j) % 5) as f64);
/// let a = Conv2d::new([8, 8], psf.view(), Boundary::Circular).unwrap();
/// let y = a.apply(x.view().into_dyn()).unwrap().into_dimensionality().unwrap();
/// let xh = wiener(y.view(), psf.view(), Balance::Fixed(0.0)).unwrap();
/// assert!((&xh - &x).iter().all(|d| d.abs() < 1e-9));
/// ```
pub fn wiener<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    balance: Balance,
) -> Result<Array2<R>> {
    wiener_bounded(y, psf, balance, Boundary::Circular)
}

/// [`wiener`] with the image extended beyond its edges under `boundary` before filtering:
/// [`Boundary::Circular`] is [`wiener`] itself (periodic sky); [`Boundary::Reflect`] continues
/// the image by its mirror images, cross-faded across the wrap, over three PSF extents on
/// each side ([`Extension::Tapered`]: no edge discontinuity anywhere, so no ringing from the
/// borders, on a grid a few PSF widths larger than the image); [`Boundary::Same`]
/// pads with zeros by the PSF size (the model of a sky that is zero beyond the image —
/// subtract the background first). The grid is rounded up to fast FFT lengths and the result
/// cropped back to the image. The balance is computed on
/// `y` itself ([`wiener_balance`]). Errors as [`wiener`], and on the `Full`/`Valid`
/// boundaries.
pub fn wiener_bounded<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    balance: Balance,
    boundary: Boundary,
) -> Result<Array2<R>> {
    let padding = Padding::for_boundary(boundary, y.dim(), psf.dim())?;
    wiener_padded(y, psf, balance, &padding)
}

/// [`wiener`] on the image extended by an explicit [`Padding`] (any of the [`Extension`]s,
/// any widths), cropped back: `crop(F⁻¹[ conj(H) F[pad(y)] / (|H|² + μ) ])`, `H` the
/// transfer function of `psf` on the padded grid (no rounding to fast FFT lengths: the grid
/// is exactly the padded size). [`wiener_bounded`] is this with
/// [`Padding::for_boundary`]; the learned deblur of `sparseinv-models` calls it with
/// whole-sample reflection by the PSF size, the convention its network was trained with.
/// The balance is computed on `y` itself ([`wiener_balance`]). Errors as [`wiener`].
///
/// ```
/// use ndarray::{array, Array2};
/// use sparseinv_solvers::deconv::{wiener_padded, Balance, Extension, Padding};
/// // an impulse PSF: W_μ(y) = y / (1 + μ) whatever the padding
/// let y = Array2::from_shape_fn((6, 7), |(i, j)| (i * 7 + j) as f32);
/// let one = array![[0.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
/// let p = Padding::symmetric(Extension::WholeSample, 3, 3);
/// let x = wiener_padded(y.view(), one.view(), Balance::Fixed(0.25), &p).unwrap();
/// assert!((&x - &(&y / 1.25)).iter().all(|d| d.abs() < 1e-4));
/// ```
pub fn wiener_padded<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    balance: Balance,
    padding: &Padding,
) -> Result<Array2<R>> {
    check_inputs(y, psf, None)?;
    let mu = wiener_balance(y, balance)?;
    fourier_solve(y, psf, mu, padding, Regulariser::Identity)
}

/// Tikhonov deconvolution under the circular model:
/// `x̂ = argmin ½‖k ∗ x − y‖² + ½λ‖L x‖² = F⁻¹[ conj(H) Y / (|H|² + λ|L|²) ]`.
///
/// With [`Regulariser::Identity`] this is [`wiener`] with `μ = λ`; with
/// [`Regulariser::Laplacian`] it equals scikit-image's `restoration.wiener(y, psf, λ,
/// clip=False)` (same transfer function, same Laplacian). Errors on empty/non-finite input or
/// `λ < 0`.
pub fn tikhonov<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    reg: Regulariser,
    lambda: f64,
) -> Result<Array2<R>> {
    tikhonov_bounded(y, psf, reg, lambda, Boundary::Circular)
}

/// [`tikhonov`] with the image extended under `boundary` as in [`wiener_bounded`]; the
/// Laplacian is periodic on the padded grid. Errors as [`tikhonov`], and on the
/// `Full`/`Valid` boundaries.
pub fn tikhonov_bounded<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    reg: Regulariser,
    lambda: f64,
    boundary: Boundary,
) -> Result<Array2<R>> {
    let padding = Padding::for_boundary(boundary, y.dim(), psf.dim())?;
    tikhonov_padded(y, psf, reg, lambda, &padding)
}

/// [`tikhonov`] on the image extended by an explicit [`Padding`] (as [`wiener_padded`]); the
/// Laplacian is periodic on the padded grid. Errors as [`tikhonov`].
pub fn tikhonov_padded<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    reg: Regulariser,
    lambda: f64,
    padding: &Padding,
) -> Result<Array2<R>> {
    check_inputs(y, psf, None)?;
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::param("lambda", format!("must be ≥ 0, got {lambda}")));
    }
    fourier_solve(y, psf, lambda, padding, reg)
}

/// `l(u) = 2 − 2 cos(2πu/n)`, `u = 0..n`: the symbol of the periodic second difference
/// (`|forward difference|²`) along an axis of `n` samples.
fn diff_symbol(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 2.0 - 2.0 * (std::f64::consts::TAU * k as f64 / n as f64).cos())
        .collect()
}

/// The two sums of the GCV score over the Hermitian half spectrum (row-major `p × w`), for
/// each weight `λ` of `lams`: `(Σ_k c_k (1 − a_k)² |Y_k|², Σ_k c_k (1 − a_k))` with
/// `1 − a_k = r/(|H_k|² + r)`, `r = λ s_k` (`s_k ≥ 0` the regulariser's symbol) and `c_k` the
/// column weight (1 on the self-conjugate columns, 2 elsewhere); 0 where `|H|² + r = 0`.
///
/// Written with the quotients `q_k = |H_k|²/s_k` computed once per regulariser (`+∞` where
/// `s_k = 0`, which gives the term 0 as the definition does): `1 − a_k = λ/(q_k + λ)`, one
/// division and two multiply–adds per frequency and weight; `cy2` holds `c_k |Y_k|²`, and the
/// second sum is `2 Σ_k (1 − a_k)` less the self-conjugate columns' terms (`self_conj`, the
/// `q` of columns `v = 0` and, for even `q`, `v = q/2`). Cache-sized blocks in parallel, every
/// weight on a block while it is in cache (the sums are bound by memory traffic when each
/// weight makes its own pass over the spectrum).
fn gcv_sums(lams: &[f64], q: &[f64], cy2: &[f64], self_conj: &[f64]) -> Vec<(f64, f64)> {
    const BLOCK: usize = 2048;
    let add = |mut a: Vec<(f64, f64)>, b: Vec<(f64, f64)>| {
        a.iter_mut().zip(b).for_each(|(x, y)| {
            x.0 += y.0;
            x.1 += y.1;
        });
        a
    };
    let mut out = q
        .par_chunks(BLOCK)
        .zip(cy2.par_chunks(BLOCK))
        .map(|(qb, yb)| {
            lams.iter()
                .map(|&lam| {
                    let (rs, tr) = gcv_block(lam, qb, yb);
                    (rs, 2.0 * tr)
                })
                .collect::<Vec<_>>()
        })
        .reduce(|| vec![(0.0, 0.0); lams.len()], add);
    for (o, &lam) in out.iter_mut().zip(lams) {
        o.1 -= self_conj.iter().map(|&qk| lam / (qk + lam)).sum::<f64>();
    }
    out
}

/// `(Σ_k t_k² cy2_k, Σ_k t_k)`, `t_k = λ/(q_k + λ)`, over one block, in the widest vector
/// registers the processor has (AVX on x86-64 when present, detected at run time: the
/// division dominates once the block is in cache, and AVX divides four `f64` at a time where
/// the SSE2 baseline divides two).
fn gcv_block(lam: f64, q: &[f64], cy2: &[f64]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the processor supports AVX (checked just above)
        return unsafe { gcv_block_avx(lam, q, cy2) };
    }
    gcv_block_generic(lam, q, cy2)
}

/// [`gcv_block_generic`] in AVX registers, eight frequencies per step in two independent
/// 4-wide accumulators (the compiler keeps the division scalar otherwise).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn gcv_block_avx(lam: f64, q: &[f64], cy2: &[f64]) -> (f64, f64) {
    use std::arch::x86_64::*;
    let n = q.len().min(cy2.len());
    let full = n - n % 8;
    let l4 = _mm256_set1_pd(lam);
    let (mut rs0, mut rs1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (mut tl0, mut tl1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (qp, yp) = (q.as_ptr(), cy2.as_ptr());
    let mut k = 0;
    while k < full {
        // SAFETY: k + 8 ≤ full ≤ the length of both slices
        let (q0, q1) = (_mm256_loadu_pd(qp.add(k)), _mm256_loadu_pd(qp.add(k + 4)));
        let (y0, y1) = (_mm256_loadu_pd(yp.add(k)), _mm256_loadu_pd(yp.add(k + 4)));
        let t0 = _mm256_div_pd(l4, _mm256_add_pd(q0, l4));
        let t1 = _mm256_div_pd(l4, _mm256_add_pd(q1, l4));
        rs0 = _mm256_add_pd(rs0, _mm256_mul_pd(_mm256_mul_pd(t0, t0), y0));
        rs1 = _mm256_add_pd(rs1, _mm256_mul_pd(_mm256_mul_pd(t1, t1), y1));
        tl0 = _mm256_add_pd(tl0, t0);
        tl1 = _mm256_add_pd(tl1, t1);
        k += 8;
    }
    let mut r = [0.0f64; 4];
    let mut t = [0.0f64; 4];
    _mm256_storeu_pd(r.as_mut_ptr(), _mm256_add_pd(rs0, rs1));
    _mm256_storeu_pd(t.as_mut_ptr(), _mm256_add_pd(tl0, tl1));
    let (rest_r, rest_t) = gcv_block_generic(lam, &q[full..n], &cy2[full..n]);
    (
        r.iter().sum::<f64>() + rest_r,
        t.iter().sum::<f64>() + rest_t,
    )
}

/// The block sums with `LANES` independent partial sums, so that the loop runs in vector
/// registers (one running sum would chain every addition to the previous one).
#[inline(always)]
fn gcv_block_generic(lam: f64, q: &[f64], cy2: &[f64]) -> (f64, f64) {
    const LANES: usize = 8;
    let (mut rs, mut tl) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (qc, yc) = (q.chunks_exact(LANES), cy2.chunks_exact(LANES));
    let (qr, yr) = (qc.remainder(), yc.remainder());
    for (qs, ys) in qc.zip(yc) {
        // three element-wise loops over the lanes (one fused loop is packed as (rs, tl)
        // pairs with a scalar division per element)
        let mut t = [0.0f64; LANES];
        for l in 0..LANES {
            t[l] = lam / (qs[l] + lam);
        }
        for l in 0..LANES {
            rs[l] += t[l] * t[l] * ys[l];
        }
        for l in 0..LANES {
            tl[l] += t[l];
        }
    }
    for (&qk, &yk) in qr.iter().zip(yr) {
        let t = lam / (qk + lam);
        rs[0] += t * t * yk;
        tl[0] += t;
    }
    (rs.iter().sum::<f64>(), tl.iter().sum::<f64>())
}

/// What [`gcv_select`] chose: the regulariser, its weight and the GCV score there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcvChoice {
    /// The regulariser with the lowest GCV score.
    pub regulariser: Regulariser,
    /// Its weight `λ` (the Wiener balance `μ` for [`Regulariser::Identity`]).
    pub lambda: f64,
    /// The GCV score `V(λ)` at the minimum (data units squared; comparable between
    /// regularisers on the same image, not between images).
    pub score: f64,
}

/// Choose the weight `λ` of the Fourier filter [`tikhonov_padded`] — and, when several are
/// given, the regulariser — by generalised cross-validation (Golub, Heath & Wahba,
/// Technometrics 21, 1979; for Fourier deblurring see Hansen, Nagy & O'Leary, *Deblurring
/// Images*, SIAM 2006, §6.3).
///
/// On the grid of `N` samples of the image extended by `padding`, with `Y = F[pad(y)]`, `H`
/// the transfer function of `psf` and `|L|²` the regulariser's symbol, the filter's influence
/// at frequency `k` is `a_k(λ) = |H_k|² / (|H_k|² + λ|L_k|²)` and
///
/// ```text
/// V(λ) = Σ_k (1 − a_k)² |Y_k|²  /  ( Σ_k (1 − a_k) )²  =  N ‖(I − A_λ) y‖² / tr(I − A_λ)²
/// ```
///
/// is the leave-one-out prediction error of the filter made rotation-invariant; its
/// minimiser approximates the `λ` of least predictive risk without knowing the noise level,
/// and it stays sensible for signal-dependent (Poisson–Gaussian) noise, where the
/// discrepancy principle and SURE need a variance model. `log₁₀ λ` is scanned over
/// `[−12, 4]` in steps of 0.5 and refined by golden-section search to 10⁻³ (a minimum at
/// the end of the range is returned as it is). Between regularisers the lowest `V` wins:
/// GCV estimates the same predictive risk for each, so the comparison selects the signal
/// spectrum (white, `1/|k|²` or `1/|k|⁴`) that predicts the data best.
///
/// On held-out photographs with Poisson–Gaussian noise (scikit-image's camera, coins and
/// cell; 19² Gaussian and motion blur; peak 100 and 1000 photons), the GCV choice among
/// gradient and Laplacian regularisers was within 0.1 dB of the best weight of a grid chosen
/// with the truth, and 0.6–2.5 dB above scikit-image's `unsupervised_wiener`; on simulated
/// star fields, within 0.05 dB of that oracle. Cost: one real 2-D FFT of the extended image
/// and about 50 evaluations of `V` per regulariser, each one pass over the `N/2` frequencies
/// of the Hermitian half spectrum (the terms are even in the frequency). Under
/// [`Extension::PeriodicSmooth`] `Y` is the spectrum of the periodic component, `F[y] − Ŝ`
/// (the image's own grid, no inverse transform).
///
/// Errors on empty/non-finite input, an empty `regularisers` list, or a degenerate problem
/// (every `|H|²` and `|L|²` zero).
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::deconv::{gcv_select, tikhonov_padded, Extension, Padding, Regulariser};
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// // a smooth scene blurred by a 5×5 box, plus a little deterministic "noise"
/// let x = Array2::from_shape_fn((48, 48), |(i, j)| {
///     10.0 * ((i as f64 / 6.0).sin() + (j as f64 / 9.0).cos())
/// });
/// let k = Array2::from_elem((5, 5), 1.0 / 25.0);
/// let a = Conv2d::new([48, 48], k.view(), Boundary::Reflect).unwrap();
/// let b: Array2<f64> = a.apply(x.view().into_dyn()).unwrap().into_dimensionality().unwrap();
/// let y = b + Array2::from_shape_fn((48, 48), |(i, j)| (((i * 31 + j * 17) % 13) as f64 - 6.0) * 0.05);
/// let p = Padding::symmetric(Extension::HalfSample, 24, 24);
/// let regs = [Regulariser::Gradient, Regulariser::Laplacian];
/// let c = gcv_select(y.view(), k.view(), &regs, &p).unwrap();
/// assert!(c.lambda > 0.0 && c.score.is_finite());
/// let xh = tikhonov_padded(y.view(), k.view(), c.regulariser, c.lambda, &p).unwrap();
/// // the restoration is closer to the scene than the blurred data
/// let err = |e: &Array2<f64>| (e - &x).mapv(|d| d * d).sum();
/// assert!(err(&xh) < err(&y));
/// ```
pub fn gcv_select<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    regularisers: &[Regulariser],
    padding: &Padding,
) -> Result<GcvChoice> {
    check_inputs(y, psf, None)?;
    if regularisers.is_empty() {
        return Err(Error::param("regularisers", "give at least one"));
    }
    let y64 = y.mapv(|v| v.to_f64_lossless());
    // periodic-plus-smooth: the periodic component's spectrum is Y − Ŝ (no inverse FFT)
    let smooth = (padding.extension == Extension::PeriodicSmooth)
        .then(|| SmoothSpectrum::<f64>::new(y64.view()));
    let ext = if padding.is_none() || smooth.is_some() {
        y64
    } else {
        pad(y64.view(), padding)
    };
    let (p, q) = ext.dim();
    // Hermitian half spectra (p × w): every term of V is even in the frequency, so the sums
    // over all frequencies are the sums over v ≤ q/2 with weight 2 off the self-conjugate
    // columns v = 0 and (q even) v = q/2
    let w = q / 2 + 1;
    let mut yf = crate::fft::rfft2(ext.view());
    drop(ext);
    if let Some(sp) = &smooth {
        yf.indexed_iter_mut()
            .for_each(|((u, v), z)| *z -= sp.at(u, v));
    }
    let psf64 = psf.mapv(|v| v.to_f64_lossless());
    let h = Conv2d::<f64>::new_one_pass([p, q], psf64.view(), Boundary::Circular)?
        .transfer_function_half();
    let (lu, lv) = (diff_symbol(p), diff_symbol(q));
    let lv = &lv[..w];
    let cw: Vec<f64> = (0..w)
        .map(|v| if v == 0 || 2 * v == q { 1.0 } else { 2.0 })
        .collect();
    // per frequency, row-major p × w: |H|² and |Y|² (scaled by the largest |Y|², so that
    // the sums stay well inside the range of f64 for any data scale; undone on the score)
    let h2: Vec<f64> = h.iter().map(|c| c.norm_sqr()).collect();
    let mut y2: Vec<f64> = yf.iter().map(|c| c.norm_sqr()).collect();
    drop((yf, h));
    let y2_scale = y2.iter().fold(0.0f64, |m, &v| m.max(v));
    if y2_scale > 0.0 {
        y2.iter_mut().for_each(|v| *v /= y2_scale);
    }
    // per frequency: c|Y|², c the column weight
    let cy2: Vec<f64> = y2.iter().enumerate().map(|(k, y)| cw[k % w] * y).collect();
    drop(y2);
    let conj_cols: Vec<usize> = (0..w).filter(|&v| cw[v] == 1.0).collect();
    let mut best: Option<GcvChoice> = None;
    for &reg in regularisers {
        // q = |H|²/s, s the regulariser's symbol at (u, v) as a function of l_u + l_v
        let sym = |l: f64| match reg {
            Regulariser::Identity => 1.0,
            Regulariser::Gradient => l,
            Regulariser::Laplacian => l * l,
        };
        let q: Vec<f64> = h2
            .par_chunks(w)
            .zip(&lu)
            .flat_map_iter(|(hr, &l0)| {
                hr.iter().zip(lv).map(move |(&h, &l1)| {
                    let s = sym(l0 + l1);
                    if s > 0.0 {
                        h / s
                    } else {
                        f64::INFINITY
                    }
                })
            })
            .collect();
        let self_conj: Vec<f64> = (0..p)
            .flat_map(|u| conj_cols.iter().map(move |&v| u * w + v))
            .map(|k| q[k])
            .collect();
        // Parseval: Σ_k (1−a_k)²|Y_k|² = N ‖(I − A)y‖², so this is V
        let score = |(rss, tr): (f64, f64)| -> f64 {
            if tr > 0.0 {
                rss * y2_scale / tr / tr
            } else {
                f64::INFINITY
            }
        };
        let scores_at = |log_lambdas: &[f64]| -> Vec<f64> {
            let lams: Vec<f64> = log_lambdas.iter().map(|&g| 10f64.powf(g)).collect();
            gcv_sums(&lams, &q, &cy2, &self_conj)
                .into_iter()
                .map(score)
                .collect()
        };
        let v = |log_lambda: f64| -> f64 { scores_at(&[log_lambda])[0] };
        let (lo, hi, step) = (-12.0f64, 4.0f64, 0.5f64);
        let grid: Vec<f64> = (0..=((hi - lo) / step) as usize)
            .map(|k| lo + step * k as f64)
            .collect();
        let scores = scores_at(&grid);
        let (k0, _) =
            scores.iter().enumerate().fold(
                (0, f64::INFINITY),
                |m, (k, &s)| if s < m.1 { (k, s) } else { m },
            );
        if !scores[k0].is_finite() {
            return Err(Error::Numerical(
                "GCV is undefined: the filter passes every frequency unchanged".into(),
            ));
        }
        // golden-section refinement on the bracket around the best grid point
        let (mut a, mut b) = (
            grid[k0.saturating_sub(1)],
            grid[(k0 + 1).min(grid.len() - 1)],
        );
        let g = 0.5 * (5f64.sqrt() - 1.0);
        let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
        let (mut fc, mut fd) = (v(c), v(d));
        while b - a > 1e-3 {
            if fc < fd {
                b = d;
                d = c;
                fd = fc;
                c = b - g * (b - a);
                fc = v(c);
            } else {
                a = c;
                c = d;
                fc = fd;
                d = a + g * (b - a);
                fd = v(d);
            }
        }
        let (mut lg, mut score) = (0.5 * (a + b), v(0.5 * (a + b)));
        if scores[k0] < score {
            (lg, score) = (grid[k0], scores[k0]);
        }
        let choice = GcvChoice {
            regulariser: reg,
            lambda: 10f64.powf(lg),
            score,
        };
        if best.is_none_or(|b| choice.score < b.score) {
            best = Some(choice);
        }
    }
    Ok(best.expect("at least one regulariser"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// The GCV score and choice against a brute-force evaluation: the full 2-D DFT of the
    /// image and of the PSF by direct summation, `V(λ) = Σ_k (1 − a_k)²|Y_k|² / (Σ_k (1 − a_k))²`
    /// over every frequency with `1 − a_k = λs_k/(|H_k|² + λs_k)`, for each regulariser on an
    /// even and an odd width (the half-spectrum sums weight the self-conjugate columns once):
    /// the returned score is `V` at the returned weight, and that weight is a minimum (`V` is
    /// no lower a hundredth of a decade to either side).
    #[test]
    fn gcv_score_and_choice_match_a_brute_force_dft() {
        use std::f64::consts::TAU;
        for (n0, n1) in [(18, 24), (16, 21)] {
            let y = Array2::from_shape_fn((n0, n1), |(i, j)| {
                10.0 + ((i * 5 + j * 3) % 7) as f64
                    + 0.3 * (i as f64 * 0.7).sin() * j as f64
                    + if (i, j) == (6, 9) { 25.0 } else { 0.0 }
            });
            let k = Array2::from_shape_fn((3, 5), |(i, j)| {
                (-((i as f64 - 1.0).powi(2) + 0.5 * (j as f64 - 2.0).powi(2))).exp()
            });
            let k = &k / k.sum();
            // |DFT|² by direct summation (the PSF's position does not change its modulus)
            let dft2 = |a: &Array2<f64>| -> Array2<f64> {
                Array2::from_shape_fn((n0, n1), |(u, v)| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for ((i, j), &x) in a.indexed_iter() {
                        let ph =
                            TAU * (u * i) as f64 / n0 as f64 + TAU * (v * j) as f64 / n1 as f64;
                        re += x * ph.cos();
                        im -= x * ph.sin();
                    }
                    re * re + im * im
                })
            };
            let (y2, h2) = (dft2(&y), dft2(&k));
            let l = |u: usize, n: usize| 2.0 - 2.0 * (TAU * u as f64 / n as f64).cos();
            for reg in [
                Regulariser::Identity,
                Regulariser::Gradient,
                Regulariser::Laplacian,
            ] {
                let v_of = |lam: f64| -> f64 {
                    let (mut rss, mut tr) = (0.0, 0.0);
                    for ((u, v), &h) in h2.indexed_iter() {
                        let g = l(u, n0) + l(v, n1);
                        let s = match reg {
                            Regulariser::Identity => 1.0,
                            Regulariser::Gradient => g,
                            Regulariser::Laplacian => g * g,
                        };
                        let den = h + lam * s;
                        let t = if den > 0.0 { lam * s / den } else { 0.0 };
                        rss += t * t * y2[[u, v]];
                        tr += t;
                    }
                    rss / (tr * tr)
                };
                let none = Padding::symmetric(Extension::Zero, 0, 0);
                let c = gcv_select(y.view(), k.view(), &[reg], &none).unwrap();
                let want = v_of(c.lambda);
                assert!(
                    (c.score - want).abs() <= 1e-9 * want,
                    "{reg:?} {n0}x{n1}: score {} vs brute force {want}",
                    c.score
                );
                for side in [10f64.powf(-0.01), 10f64.powf(0.01)] {
                    assert!(
                        v_of(c.lambda * side) >= want * (1.0 - 1e-12),
                        "{reg:?} {n0}x{n1}: λ = {} is not a minimum",
                        c.lambda
                    );
                }
            }
        }
    }

    /// GCV under the periodic-plus-smooth extension (the periodic component's spectrum as
    /// `Y − Ŝ`) equals GCV of the periodic component computed in the image domain and
    /// filtered as it is.
    #[test]
    fn gcv_of_the_smooth_extension_is_gcv_of_the_periodic_component() {
        let y = Array2::from_shape_fn((40, 52), |(i, j)| {
            30.0 + 0.4 * i as f64 - 0.25 * j as f64
                + ((i * 13 + j * 7) % 17) as f64 / 4.0
                + if (i, j) == (20, 11) { 80.0 } else { 0.0 }
        });
        let k = Array2::from_shape_fn((5, 5), |(i, j)| {
            (-((i as f64 - 2.0).powi(2) + (j as f64 - 2.0).powi(2)) / 3.0).exp()
        });
        let regs = [
            Regulariser::Identity,
            Regulariser::Gradient,
            Regulariser::Laplacian,
        ];
        let p = periodic_component(y.view());
        for reg in regs {
            let a = gcv_select(y.view(), k.view(), &[reg], &Padding::periodic_smooth()).unwrap();
            let b = gcv_select(
                p.view(),
                k.view(),
                &[reg],
                &Padding::symmetric(Extension::Zero, 0, 0),
            )
            .unwrap();
            assert_eq!(a.regulariser, b.regulariser);
            assert!((a.lambda / b.lambda - 1.0).abs() < 1e-9, "{a:?} {b:?}");
            assert!((a.score / b.score - 1.0).abs() < 1e-9, "{a:?} {b:?}");
        }
    }

    fn scene(n0: usize, n1: usize) -> Array2<f64> {
        Array2::from_shape_fn((n0, n1), |(i, j)| {
            10.0 + 0.05 * (i + 2 * j) as f64
                + ((i * 7 + j * 3) % 11) as f64 / 3.0
                + if (i, j) == (9, 13) { 50.0 } else { 0.0 }
        })
    }

    fn psf() -> Array2<f64> {
        let k = Array2::from_shape_fn((5, 5), |(i, j)| {
            (-((i as f64 - 2.0).powi(2) + (j as f64 - 2.0).powi(2)) / 2.0).exp()
        });
        let s = k.sum();
        k / s
    }

    fn max_rel(a32: &Array2<f32>, a64: &Array2<f64>) -> f64 {
        let peak = a64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a32.iter()
            .zip(a64)
            .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()))
            / peak
    }

    /// The f32 path agrees with the f64 path (not with the truth) to ~1e-5 of the peak.
    #[test]
    fn single_precision_matches_double() {
        let y = scene(37, 42);
        let k = psf();
        let (y32, k32) = (y.mapv(|v| v as f32), k.mapv(|v| v as f32));
        let mu64 = wiener_balance(y.view(), Balance::Auto).unwrap();
        let mu32 = wiener_balance(y32.view(), Balance::Auto).unwrap();
        assert!((mu64 - mu32).abs() <= 1e-4 * mu64, "{mu64} vs {mu32}");
        let s64 = estimate_noise_sigma(y.view()).unwrap();
        let s32 = estimate_noise_sigma(y32.view()).unwrap();
        assert!((s64 - s32).abs() <= 1e-4 * s64.max(1e-3), "{s64} vs {s32}");
        for b in [Boundary::Circular, Boundary::Reflect, Boundary::Same] {
            let a = wiener_bounded(y.view(), k.view(), Balance::Fixed(0.01), b).unwrap();
            let a32 = wiener_bounded(y32.view(), k32.view(), Balance::Fixed(0.01), b).unwrap();
            let e = max_rel(&a32, &a);
            assert!(e < 1e-5, "wiener {b:?}: {e}");
            for reg in [Regulariser::Identity, Regulariser::Laplacian] {
                let t = tikhonov_bounded(y.view(), k.view(), reg, 0.003, b).unwrap();
                let t32 = tikhonov_bounded(y32.view(), k32.view(), reg, 0.003, b).unwrap();
                let e = max_rel(&t32, &t);
                assert!(e < 1e-5, "tikhonov {reg:?} {b:?}: {e}");
            }
        }
        let a = wiener(y.view(), k.view(), Balance::Auto).unwrap();
        let a32 = wiener(y32.view(), k32.view(), Balance::Auto).unwrap();
        assert!(max_rel(&a32, &a) < 1e-5);
        let p = Padding::symmetric(Extension::WholeSample, 5, 5);
        let a = wiener_padded(y.view(), k.view(), Balance::Fixed(1e-3), &p).unwrap();
        let a32 = wiener_padded(y32.view(), k32.view(), Balance::Fixed(1e-3), &p).unwrap();
        assert!(max_rel(&a32, &a) < 1e-5);
        // the masked fill picks medians of the same values
        let mask = Array2::from_shape_fn(y.dim(), |(i, j)| !(8..14).contains(&i) || j % 5 != 0);
        let f = fill_masked_median(y.view(), mask.view(), 2).unwrap();
        let f32_ = fill_masked_median(y32.view(), mask.view(), 2).unwrap();
        assert!(max_rel(&f32_, &f) < 1e-6);
    }

    #[test]
    fn padding_extensions_match_their_definitions() {
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        // numpy.pad(a, ((1, 2), (2, 1)), mode="symmetric")
        let p = pad(
            a.view(),
            &Padding {
                extension: Extension::HalfSample,
                rows: (1, 2),
                cols: (2, 1),
            },
        );
        let want = array![
            [2.0, 1.0, 1.0, 2.0, 3.0, 3.0],
            [2.0, 1.0, 1.0, 2.0, 3.0, 3.0],
            [5.0, 4.0, 4.0, 5.0, 6.0, 6.0],
            [5.0, 4.0, 4.0, 5.0, 6.0, 6.0],
            [2.0, 1.0, 1.0, 2.0, 3.0, 3.0],
        ];
        assert_eq!(p, want);
        let z = pad(a.view(), &Padding::symmetric(Extension::Zero, 1, 0));
        assert_eq!(
            z,
            array![
                [0.0, 0.0, 0.0],
                [1.0, 2.0, 3.0],
                [4.0, 5.0, 6.0],
                [0.0, 0.0, 0.0]
            ]
        );
        // the boundary paddings: grid sizes and offsets
        let r = Padding::for_boundary(Boundary::Reflect, (37, 42), (5, 5)).unwrap();
        assert_eq!(r.extension, Extension::Tapered);
        assert!(r.rows.0 >= 12 && r.rows.1 >= 12 && r.cols.0 >= 12 && r.cols.1 >= 12);
        let (p, q) = (37 + r.rows.0 + r.rows.1, 42 + r.cols.0 + r.cols.1);
        assert_eq!((p, q), (good_fft_len(37 + 24), good_real_fft_len(42 + 24)));
        // the tapered extension against its definition, element by element
        let a = Array2::from_shape_fn((4, 5), |(i, j)| (i * 5 + j) as f64 + 0.5 * (j * j) as f64);
        let pd = Padding {
            extension: Extension::Tapered,
            rows: (4, 5),
            cols: (1, 4),
        };
        let t = pad(a.view(), &pd);
        assert_eq!(t.dim(), (13, 10));
        let one = |n: usize, before: usize, after: usize, i: usize| -> Vec<(usize, f64)> {
            if i >= before && i < before + n {
                return vec![(i - before, 1.0)];
            }
            let gg = before + after;
            let g = if i >= before + n {
                i - before - n
            } else {
                after + i
            };
            // the outer thirds of the pad are plain reflections, the middle third fades
            let flat = gg / 3;
            let w = if g < flat {
                1.0
            } else if g >= gg - flat {
                0.0
            } else {
                let fade = (gg - 2 * flat) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * ((g - flat) as f64 + 0.5) / fade).cos())
            };
            // half-sample reflections written out: past the end n-1-g, before the start
            // (distance gg-g) index gg-g-1, both folded back into 0..n by repeated reflection
            let fold = |mut k: isize| {
                let n = n as isize;
                while k < 0 || k >= n {
                    k = if k < 0 { -k - 1 } else { 2 * n - 1 - k };
                }
                k as usize
            };
            vec![
                (fold(n as isize + g as isize), w),
                (fold(g as isize - gg as isize), 1.0 - w),
            ]
        };
        for i in 0..13 {
            for j in 0..10 {
                let mut want = 0.0;
                for (si, wi) in one(4, 4, 5, i) {
                    for (sj, wj) in one(5, 1, 4, j) {
                        want += wi * wj * a[[si, sj]];
                    }
                }
                assert!(
                    (t[[i, j]] - want).abs() < 1e-12,
                    "({i}, {j}): {} vs {want}",
                    t[[i, j]]
                );
            }
        }
        // inside: the image; next to each edge: the plain reflection's first sample
        assert_eq!(t.slice(s![4..8, 1..6]), a);
        // the flat end of the weight: exactly the reflection of the last rows
        assert_eq!(
            t.slice(s![8..11, 1..6]),
            a.slice(s![..;-1, ..]).slice(s![0..3, ..])
        );
        assert!(Padding::for_boundary(Boundary::Valid, (37, 42), (5, 5)).is_err());
        // an impulse PSF with any padding: y / (1 + μ)
        let y = scene(9, 11);
        let one = array![[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
        for ext in [
            Extension::HalfSample,
            Extension::WholeSample,
            Extension::Zero,
            Extension::Tapered,
        ] {
            let p = Padding {
                extension: ext,
                rows: (3, 1),
                cols: (0, 4),
            };
            let x = wiener_padded(y.view(), one.view(), Balance::Fixed(0.25), &p).unwrap();
            let e = (&x - &(&y / 1.25))
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(e < 1e-12, "{ext:?}: {e}");
        }
    }
}
