//! Joint multiband deconvolution: several low-resolution bands restored together with one
//! high-resolution wide band that covers them (Akhaury et al. 2025, "Joint multiband
//! deconvolution for Euclid and Vera C. Rubin images", A&A 697 A136).
//!
//! # Forward model
//!
//! The unknowns are the `K` band images `x_b` (`b = 1..K`), all on the fine (high-resolution)
//! grid of shape `[n0, n1]`, in flux per fine pixel. Each low-resolution band `b` is observed
//! on a grid `r` times coarser (`[n0/r, n1/r]`),
//!
//! ```text
//! y_b = S_b D_r (h_b ∗ x_b) + n_b,
//! ```
//!
//! with `h_b` the band's PSF sampled on the fine grid (centre `(h/2, w/2)`, unit sum),
//! `D_r` the flux-conserving `r × r` block sum ([`Downsample`]: coarse pixel `(i, j)` is the sum
//! of fine pixels `(r i .. r i + r − 1, r j .. r j + r − 1)`) and `S_b` a sub-pixel shift between
//! the coarse grid and the block grid, in coarse pixels ([`FourierShift`]; identity when the
//! grids nest exactly). The wide band is observed on the fine grid,
//!
//! ```text
//! y_W = h_W ∗ (Σ_b α_b x_b) + n_W,
//! ```
//!
//! `α_b` the share of band `b` in the wide band (given, or fitted from the data by
//! [`fit_band_weights`]). Noise is white with standard deviation `σ_b` (`σ_W`) per image,
//! estimated by the MAD of the finest starlet scale unless given; masked pixels (NaN/BLANK)
//! drop out of their data term.
//!
//! # Problem
//!
//! ```text
//! min_{x ≥ 0}  Σ_b ½‖M_b ⊙ (y_b − S_b D_r (h_b ∗ x_b))‖²/σ_b² + ½‖M_W ⊙ (y_W − h_W ∗ Σ_b α_b x_b)‖²/σ_W²
//!              + Σ_b Σ_{j<J} λ_{b,j} ‖W_j x_b‖₁
//! ```
//!
//! `W_j` the starlet wavelet planes (coarse plane free), with thresholds in noise units:
//! `λ_{b,j} = k · std(W_j [Aᵀ n]_b)` for a seeded white unit noise `n` in the whitened data
//! space, i.e. `k` standard deviations of plane `j` of band `b` of the data-term gradient at
//! the truth (the rule of [`starlet_sparse`](crate::deconv::starlet_sparse), which this reduces
//! to for one band with `r = 1` and no wide band). Solved by the Condat–Vũ primal–dual
//! algorithm ([`crate::proximal::pdhg`](mod@crate::proximal::pdhg)) on the whitened operator
//! [`MultibandOperator`] — not by the plain projected gradient of the authors' public script,
//! which with positivity alone only works through early stopping (it is kept as the baseline
//! [`projected_gradient_baseline`]).
//!
//! # Photometry
//!
//! The starlet solve is followed by two re-fits: [`joint_refit`] (the significant
//! coefficients re-fitted to all the data, removing the ℓ1 shrinkage) and [`colour_refit`]
//! (the luminance `Σ_b α_b x_b` kept, each band's smooth colour field fitted to that band's
//! data alone). Structure finer than the bands' resolution is seen by the wide band only; the
//! ℓ1 prior and the gradient steps share it between the bands by `α_b` and the thresholds,
//! not by the local colour, which biases 1″-aperture fluxes; the colour re-fit gives it the
//! colour measured at the bands' resolution.

use crate::deconv::estimate_noise_sigma;
use crate::denoise::Denoiser;
use crate::error::{check_finite, Error, Result};
use crate::fft::fft2;
use crate::iter::{run, NoObserver, Observer, Report, StopCriteria};
use crate::op::{
    op_norm, starlet_noise_std, BlockDiag, BlockLayout, Boundary, Compose, Conv2d, Diagonal,
    Downsample, FourierShift, LinearOperator, NormEstimate, Starlet,
};
use crate::pnp::{PnpParams, PnpPgd};
use crate::prox::{NonNegative, L1};
use crate::proximal::pdhg::{LeastSquares, Pdhg, PdhgParams, Problem};
use ndarray::{s, Array2, Array3, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};
use num_complex::Complex;

/// The whitened joint forward operator `A` of joint multiband deconvolution, from the `K` band
/// images `x` (`[K, n0, n1]`) to the concatenated, flattened data of the `K` low-resolution
/// bands and the wide band (1-D, length `K·m0·m1 + n0·n1`, or `K·m0·m1` without a wide band):
///
/// ```text
/// (A x)_b = w_b ⊙ S_b D_r (h_b ∗ x_b),      (A x)_W = w_W ⊙ h_W ∗ (Σ_b α_b x_b)
/// ```
///
/// with per-pixel weights `w` (typically `M/σ`: the mask over the noise level, so that the
/// plain least squares `½‖A x − w ⊙ y‖²` is the noise-weighted masked data term). The adjoint
/// is `(Aᵀ r)_b = h_b ⋆ D_rᵀ S_bᵀ (w_b ⊙ r_b) + α_b h_W ⋆ (w_W ⊙ r_W)` (⋆ correlation, `D_rᵀ`
/// replication). Convolutions use the given [`Boundary`] (`Same`: zero outside the image).
/// Cost of `A` or `Aᵀ`: `K + 1` fine-grid convolutions and `K` coarse shifts (when non-zero).
pub struct MultibandOperator {
    k: usize,
    fine: [usize; 2],
    coarse: [usize; 2],
    band_conv: Vec<Conv2d<f64>>,
    shifts: Vec<Option<FourierShift<f64>>>,
    down: Downsample,
    wide: Option<(Conv2d<f64>, Vec<f64>)>,
    band_w: Vec<Array2<f64>>,
    wide_w: Option<Array2<f64>>,
    layout: BlockLayout,
    domain: [usize; 3],
}

impl std::fmt::Debug for MultibandOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultibandOperator")
            .field("bands", &self.k)
            .field("fine", &self.fine)
            .field("coarse", &self.coarse)
            .field("wide", &self.wide.is_some())
            .finish()
    }
}

/// The geometry and PSFs of a multiband model (no data): what [`MultibandOperator`] needs.
#[derive(Debug, Clone)]
pub struct MultibandModel<'a> {
    /// Fine grid shape `[n0, n1]` (the wide band's), each a multiple of `ratio`.
    pub fine: [usize; 2],
    /// Resolution ratio `r` between the band grids and the fine grid (≥ 1).
    pub ratio: usize,
    /// PSF of each low-resolution band, sampled on the fine grid.
    pub band_psfs: Vec<ArrayView2<'a, f64>>,
    /// Sub-pixel shift `S_b` of each band, in coarse pixels `(rows, cols)` (empty: none).
    pub shifts: Vec<[f64; 2]>,
    /// The wide band's PSF and the weights `α_b` (`None`: bands only).
    pub wide: Option<(ArrayView2<'a, f64>, Vec<f64>)>,
    /// Boundary model of the convolutions ([`Boundary::Same`] or [`Boundary::Circular`]).
    pub boundary: Boundary,
}

impl MultibandOperator {
    /// Build the operator of `model` with per-pixel weights `band_w` (one `[m0, m1]` array per
    /// band) and `wide_w` (`[n0, n1]`, required exactly when the model has a wide band).
    /// Errors on inconsistent shapes, a ratio that does not divide the fine grid, non-finite
    /// shifts/weights or a size-changing boundary.
    pub fn new(
        model: &MultibandModel,
        band_w: Vec<Array2<f64>>,
        wide_w: Option<Array2<f64>>,
    ) -> Result<Self> {
        let k = model.band_psfs.len();
        if k == 0 {
            return Err(Error::Empty {
                what: "multiband bands".into(),
            });
        }
        let r = model.ratio;
        let [n0, n1] = model.fine;
        if r == 0 || n0 == 0 || n1 == 0 || n0 % r != 0 || n1 % r != 0 {
            return Err(Error::param(
                "ratio",
                format!("the fine grid {n0}×{n1} must be a non-empty multiple of the ratio {r}"),
            ));
        }
        if matches!(model.boundary, Boundary::Full | Boundary::Valid) {
            return Err(Error::param("boundary", "needs a size-preserving boundary"));
        }
        let coarse = [n0 / r, n1 / r];
        if band_w.len() != k {
            return Err(Error::param(
                "band weights",
                format!("{} weight arrays for {k} bands", band_w.len()),
            ));
        }
        for (b, w) in band_w.iter().enumerate() {
            if w.dim() != (coarse[0], coarse[1]) {
                return Err(Error::shape(
                    format!("weights of band {b}"),
                    &coarse,
                    w.shape(),
                ));
            }
            check_finite("band weights", w.iter())?;
        }
        if !(model.shifts.is_empty() || model.shifts.len() == k) {
            return Err(Error::param(
                "shifts",
                format!("{} shifts for {k} bands", model.shifts.len()),
            ));
        }
        let mut band_conv = Vec::with_capacity(k);
        for psf in &model.band_psfs {
            check_finite("band PSF", psf.iter())?;
            band_conv.push(Conv2d::new([n0, n1], *psf, model.boundary)?);
        }
        let mut shifts = Vec::with_capacity(k);
        for b in 0..k {
            let s = model.shifts.get(b).copied().unwrap_or([0.0, 0.0]);
            if !(s[0].is_finite() && s[1].is_finite()) {
                return Err(Error::param("shifts", "must be finite"));
            }
            shifts.push(if s == [0.0, 0.0] {
                None
            } else {
                Some(FourierShift::new(&coarse, &s)?)
            });
        }
        let down = Downsample::uniform(&[n0, n1], r)?;
        let wide = match &model.wide {
            None => {
                if wide_w.is_some() {
                    return Err(Error::param("wide weights", "given without a wide band"));
                }
                None
            }
            Some((psf, alphas)) => {
                if alphas.len() != k {
                    return Err(Error::param(
                        "alphas",
                        format!("{} weights α for {k} bands", alphas.len()),
                    ));
                }
                check_finite("alphas", alphas.iter())?;
                check_finite("wide PSF", psf.iter())?;
                match &wide_w {
                    Some(w) if w.dim() == (n0, n1) => check_finite("wide weights", w.iter())?,
                    Some(w) => return Err(Error::shape("wide weights", &[n0, n1], w.shape())),
                    None => return Err(Error::param("wide weights", "missing")),
                }
                Some((Conv2d::new([n0, n1], *psf, model.boundary)?, alphas.clone()))
            }
        };
        let mut shapes = vec![coarse.to_vec(); k];
        if wide.is_some() {
            shapes.push(vec![n0, n1]);
        }
        let layout = BlockLayout::new(shapes)?;
        Ok(MultibandOperator {
            k,
            fine: [n0, n1],
            coarse,
            band_conv,
            shifts,
            down,
            wide,
            band_w,
            wide_w,
            layout,
            domain: [k, n0, n1],
        })
    }

    /// The layout of the range: blocks `0..K` the bands (`[m0, m1]`), block `K` the wide band.
    pub fn layout(&self) -> &BlockLayout {
        &self.layout
    }

    /// Number of bands `K`.
    pub fn bands(&self) -> usize {
        self.k
    }

    /// The coarse grid shape `[m0, m1]`.
    pub fn coarse_shape(&self) -> [usize; 2] {
        self.coarse
    }

    /// The weights `α_b` (`None` without a wide band).
    pub fn alphas(&self) -> Option<&[f64]> {
        self.wide.as_ref().map(|(_, a)| a.as_slice())
    }

    /// Pack per-image arrays (bands `[m0, m1]`, then the wide band `[n0, n1]` when the model
    /// has one), each multiplied by its weights, into the flat range vector: `w ⊙ y`.
    pub fn weighted_data(
        &self,
        bands: &[ArrayView2<f64>],
        wide: Option<ArrayView2<f64>>,
    ) -> Result<ArrayD<f64>> {
        if bands.len() != self.k {
            return Err(Error::param(
                "bands",
                format!("{} images for {} bands", bands.len(), self.k),
            ));
        }
        let mut parts: Vec<ArrayD<f64>> = Vec::with_capacity(self.k + 1);
        for (b, (y, w)) in bands.iter().zip(&self.band_w).enumerate() {
            if y.dim() != w.dim() {
                return Err(Error::shape(format!("band {b}"), w.shape(), y.shape()));
            }
            parts.push(
                Zip::from(y)
                    .and(w)
                    .map_collect(|&y, &w| if w != 0.0 { w * y } else { 0.0 })
                    .into_dyn(),
            );
        }
        match (&self.wide_w, wide) {
            (Some(w), Some(y)) => {
                if y.dim() != w.dim() {
                    return Err(Error::shape("wide band", w.shape(), y.shape()));
                }
                parts.push(
                    Zip::from(&y)
                        .and(w)
                        .map_collect(|&y, &w| if w != 0.0 { w * y } else { 0.0 })
                        .into_dyn(),
                );
            }
            (None, None) => {}
            _ => {
                return Err(Error::param(
                    "wide band",
                    "given exactly when the model has one",
                ))
            }
        }
        let views: Vec<ArrayViewD<f64>> = parts.iter().map(|p| p.view()).collect();
        self.layout.concat(&views)
    }
}

impl LinearOperator<f64> for MultibandOperator {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        self.layout.flat_shape()
    }
    fn apply_into(&self, x: ArrayViewD<f64>, y: ArrayViewMutD<f64>) {
        let [n0, n1] = self.fine;
        let mut blocks = self.layout.split_mut(y).expect("range layout");
        let mut conv = ArrayD::<f64>::zeros(IxDyn(&[n0, n1]));
        let mut low = ArrayD::<f64>::zeros(IxDyn(&self.coarse));
        for (b, out) in blocks.iter_mut().take(self.k).enumerate() {
            let xb = x.index_axis(Axis(0), b);
            self.band_conv[b].apply_into(xb, conv.view_mut());
            match &self.shifts[b] {
                None => self.down.apply_into(conv.view(), out.view_mut()),
                Some(sh) => {
                    self.down.apply_into(conv.view(), low.view_mut());
                    sh.apply_into(low.view(), out.view_mut());
                }
            }
            Zip::from(out.view_mut())
                .and(&self.band_w[b].view().into_dyn())
                .for_each(|o, &w| *o *= w);
        }
        if let (Some((hw, alphas)), Some(ww)) = (&self.wide, &self.wide_w) {
            let mut sum = ArrayD::<f64>::zeros(IxDyn(&[n0, n1]));
            for (b, &a) in alphas.iter().enumerate() {
                sum.scaled_add(a, &x.index_axis(Axis(0), b));
            }
            let out = &mut blocks[self.k];
            hw.apply_into(sum.view(), out.view_mut());
            Zip::from(out.view_mut())
                .and(&ww.view().into_dyn())
                .for_each(|o, &w| *o *= w);
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, mut x: ArrayViewMutD<f64>) {
        let [n0, n1] = self.fine;
        let blocks = self.layout.split(y).expect("range layout");
        let mut fine = ArrayD::<f64>::zeros(IxDyn(&[n0, n1]));
        let mut low = ArrayD::<f64>::zeros(IxDyn(&self.coarse));
        let mut low2 = ArrayD::<f64>::zeros(IxDyn(&self.coarse));
        for (b, block) in blocks.iter().take(self.k).enumerate() {
            Zip::from(&mut low)
                .and(block)
                .and(&self.band_w[b].view().into_dyn())
                .for_each(|o, &r, &w| *o = w * r);
            match &self.shifts[b] {
                None => self.down.adjoint_into(low.view(), fine.view_mut()),
                Some(sh) => {
                    sh.adjoint_into(low.view(), low2.view_mut());
                    self.down.adjoint_into(low2.view(), fine.view_mut());
                }
            }
            self.band_conv[b].adjoint_into(fine.view(), x.index_axis_mut(Axis(0), b));
        }
        if let (Some((hw, alphas)), Some(ww)) = (&self.wide, &self.wide_w) {
            let rw = Zip::from(&blocks[self.k])
                .and(&ww.view().into_dyn())
                .map_collect(|&r, &w| w * r);
            hw.adjoint_into(rw.view(), fine.view_mut());
            for (b, &a) in alphas.iter().enumerate() {
                x.index_axis_mut(Axis(0), b).scaled_add(a, &fine);
            }
        }
    }
}

/// The starlet transform applied to each band: `[K, n0, n1]` → `[K, J + 1, n0, n1]`,
/// `(W x)_b = W x_b`; the adjoint applies the starlet adjoint band by band.
#[derive(Debug)]
pub struct BandwiseStarlet {
    w: Starlet<f64>,
    domain: [usize; 3],
    range: [usize; 4],
}

impl BandwiseStarlet {
    /// `J = scales` wavelet scales on `K = bands` images of `shape`.
    pub fn new(bands: usize, shape: [usize; 2], scales: usize) -> Result<Self> {
        if bands == 0 {
            return Err(Error::Empty {
                what: "bands".into(),
            });
        }
        Ok(BandwiseStarlet {
            w: Starlet::new(shape, scales)?,
            domain: [bands, shape[0], shape[1]],
            range: [bands, scales + 1, shape[0], shape[1]],
        })
    }
}

impl LinearOperator<f64> for BandwiseStarlet {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        for b in 0..self.domain[0] {
            self.w
                .apply_into(x.index_axis(Axis(0), b), y.index_axis_mut(Axis(0), b));
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, mut x: ArrayViewMutD<f64>) {
        for b in 0..self.domain[0] {
            self.w
                .adjoint_into(y.index_axis(Axis(0), b), x.index_axis_mut(Axis(0), b));
        }
    }
}

/// The wide band's image, PSF and optional mask (`true` = valid).
pub type WideBand<'a> = (
    ArrayView2<'a, f64>,
    ArrayView2<'a, f64>,
    Option<ArrayView2<'a, bool>>,
);

/// The observed images of a multiband problem (views; masks `true` = valid pixel).
#[derive(Debug, Clone)]
pub struct MultibandData<'a> {
    /// The `K` low-resolution band images, all `[m0, m1]`.
    pub bands: Vec<ArrayView2<'a, f64>>,
    /// Their PSFs, sampled on the fine grid (unit sum for flux conservation).
    pub band_psfs: Vec<ArrayView2<'a, f64>>,
    /// Optional masks of the bands (one entry per band; `None` = all valid).
    pub band_masks: Vec<Option<ArrayView2<'a, bool>>>,
    /// The wide band `[r m0, r m1]`, its PSF and optional mask (`None`: bands only, e.g. the
    /// single-band baseline).
    pub wide: Option<WideBand<'a>>,
}

/// The prior of [`multiband_deconvolve`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MultibandPrior {
    /// Positivity + per-band starlet ℓ1 with `λ_{b,j} = k · (noise std of plane j of band b)`.
    Starlet {
        /// Number of wavelet scales `J` (default 4).
        scales: usize,
        /// Threshold in noise units `k` (default 3).
        k_sigma: f64,
    },
    /// Positivity only (the model without a sparsity prior; converges to a noise-fitting
    /// solution when run long — for comparison).
    Positivity,
}

impl Default for MultibandPrior {
    fn default() -> Self {
        MultibandPrior::Starlet {
            scales: 4,
            k_sigma: 3.0,
        }
    }
}

/// Options of [`multiband_deconvolve`].
#[derive(Debug, Clone)]
pub struct MultibandParams {
    /// Resolution ratio `r` (default 2: Rubin 0.2″ vs Euclid VIS 0.1″).
    pub ratio: usize,
    /// Sub-pixel shift of each band in coarse pixels (empty: the grids nest exactly).
    pub shifts: Vec<[f64; 2]>,
    /// The wide band's weights `α_b`; `None` fits them with [`fit_band_weights`].
    pub alphas: Option<Vec<f64>>,
    /// Noise standard deviations, bands first then the wide band; `None` estimates each by
    /// [`estimate_noise_sigma`] (MAD of the finest starlet scale, masked pixels filled).
    pub sigmas: Option<Vec<f64>>,
    /// The prior (default starlet ℓ1, `J = 4`, `k = 3`).
    pub prior: MultibandPrior,
    /// When to stop (default 200 iterations, no relative-change test).
    pub stop: StopCriteria<f64>,
    /// Boundary of the convolutions (default [`Boundary::Same`], zero outside).
    pub boundary: Boundary,
    /// Seed of the noise realisation that calibrates the thresholds (default 0).
    pub seed: u64,
    /// Steps of the photometric re-fit after the starlet solve ([`joint_refit`]; default 30,
    /// 0 = off).
    pub refit_iters: usize,
    /// After the re-fit, the colour re-fit [`colour_refit`] when there is a wide band
    /// (default on; skipped with `refit_iters = 0`).
    pub colour_refit: bool,
}

impl Default for MultibandParams {
    fn default() -> Self {
        MultibandParams {
            ratio: 2,
            shifts: Vec::new(),
            alphas: None,
            sigmas: None,
            prior: MultibandPrior::default(),
            stop: StopCriteria {
                max_iters: 200,
                rel_tol: 0.0,
                ..StopCriteria::default()
            },
            boundary: Boundary::Same,
            seed: 0,
            refit_iters: 30,
            colour_refit: true,
        }
    }
}

/// The result of [`multiband_deconvolve`].
#[derive(Debug, Clone)]
pub struct MultibandResult {
    /// The restored bands `x_b ≥ 0` on the fine grid, `[K, n0, n1]`.
    pub x: Array3<f64>,
    /// The weights `α_b` used (`None` without a wide band).
    pub alphas: Option<Vec<f64>>,
    /// The fit of the weights when they were not given.
    pub alpha_fit: Option<AlphaFit>,
    /// Noise standard deviations used: bands, then the wide band.
    pub sigmas: Vec<f64>,
    /// Thresholds `λ_{b,j}` (one row per band; empty rows for [`MultibandPrior::Positivity`]).
    pub lambdas: Vec<Vec<f64>>,
    /// The objective after each iteration (entry 0: the start).
    pub objective: Vec<f64>,
    /// Iterations, stop reason, time.
    pub report: Report<f64>,
}

/// Validate the data and return `(K, coarse [m0, m1], fine [n0, n1])`.
fn check_data(d: &MultibandData, ratio: usize) -> Result<(usize, [usize; 2], [usize; 2])> {
    let k = d.bands.len();
    if k == 0 {
        return Err(Error::Empty {
            what: "bands".into(),
        });
    }
    if d.band_psfs.len() != k {
        return Err(Error::param(
            "band PSFs",
            format!("{} PSFs for {k} bands", d.band_psfs.len()),
        ));
    }
    if !(d.band_masks.is_empty() || d.band_masks.len() == k) {
        return Err(Error::param(
            "band masks",
            format!("{} masks for {k} bands", d.band_masks.len()),
        ));
    }
    if ratio == 0 {
        return Err(Error::param("ratio", "must be ≥ 1"));
    }
    let (m0, m1) = d.bands[0].dim();
    for (b, y) in d.bands.iter().enumerate() {
        if y.dim() != (m0, m1) {
            return Err(Error::shape(format!("band {b}"), &[m0, m1], y.shape()));
        }
        let mask = d.band_masks.get(b).copied().flatten();
        crate::deconv::check_inputs(*y, d.band_psfs[b], mask)?;
        let valid = mask.map_or(y.len(), |m| m.iter().filter(|&&v| v).count());
        if valid == 0 {
            return Err(Error::param(
                format!("band {b}"),
                "has no valid pixel (all masked or NaN)",
            ));
        }
    }
    let fine = [m0 * ratio, m1 * ratio];
    if let Some((yw, psf, mask)) = &d.wide {
        if yw.dim() != (fine[0], fine[1]) {
            return Err(Error::param(
                "wide band",
                format!(
                    "is {}×{}, but {ratio} × the band grid {m0}×{m1} is {}×{}",
                    yw.nrows(),
                    yw.ncols(),
                    fine[0],
                    fine[1]
                ),
            ));
        }
        crate::deconv::check_inputs(*yw, *psf, *mask)?;
        if mask.is_some_and(|m| !m.iter().any(|&v| v)) {
            return Err(Error::param(
                "wide band",
                "has no valid pixel (all masked or NaN)",
            ));
        }
    }
    Ok((k, [m0, m1], fine))
}

/// The median of the valid (finite, unmasked) pixels of `y` (0 when none).
fn valid_median(y: ArrayView2<f64>, mask: Option<ArrayView2<bool>>) -> f64 {
    let mut vals: Vec<f64> = y
        .indexed_iter()
        .filter(|(ix, v)| v.is_finite() && mask.is_none_or(|m| m[*ix]))
        .map(|(_, v)| *v)
        .collect();
    crate::stats::median_mut(&mut vals).unwrap_or(0.0)
}

/// `y` with invalid (non-finite or masked) pixels replaced by the median of the valid ones.
fn fill_invalid(y: ArrayView2<f64>, mask: Option<ArrayView2<bool>>) -> Array2<f64> {
    let med = valid_median(y, mask);
    Array2::from_shape_fn(y.dim(), |ix| {
        if y[ix].is_finite() && mask.is_none_or(|m| m[ix]) {
            y[ix]
        } else {
            med
        }
    })
}

/// Noise σ of an image by [`estimate_noise_sigma`] with masked pixels filled by the median of
/// the valid ones.
pub fn noise_sigma_masked(y: ArrayView2<f64>, mask: Option<ArrayView2<bool>>) -> Result<f64> {
    match mask {
        None => estimate_noise_sigma(y),
        Some(m) => estimate_noise_sigma(fill_invalid(y, Some(m)).view()),
    }
}

/// `1/σ` on valid pixels, 0 on masked ones.
fn inv_sigma_weights(
    dim: (usize, usize),
    sigma: f64,
    mask: Option<ArrayView2<bool>>,
) -> Array2<f64> {
    let w = if sigma > 0.0 { 1.0 / sigma } else { 1.0 };
    match mask {
        None => Array2::from_elem(dim, w),
        Some(m) => m.mapv(|ok| if ok { w } else { 0.0 }),
    }
}

/// The noise levels (bands, then wide) given or estimated.
fn noise_levels(d: &MultibandData, given: Option<&[f64]>) -> Result<Vec<f64>> {
    let k = d.bands.len();
    let want = k + usize::from(d.wide.is_some());
    match given {
        Some(s) => {
            if s.len() != want {
                return Err(Error::param(
                    "sigmas",
                    format!(
                        "{} noise levels for {want} images (bands, then the wide band)",
                        s.len()
                    ),
                ));
            }
            if let Some(v) = s.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(Error::param(
                    "sigmas",
                    format!("must be finite and > 0, got {v}"),
                ));
            }
            Ok(s.to_vec())
        }
        None => {
            let mut out = Vec::with_capacity(want);
            for (b, y) in d.bands.iter().enumerate() {
                out.push(noise_sigma_masked(
                    *y,
                    d.band_masks.get(b).copied().flatten(),
                )?);
            }
            if let Some((yw, _, m)) = &d.wide {
                out.push(noise_sigma_masked(*yw, *m)?);
            }
            for (i, s) in out.iter_mut().enumerate() {
                if s.is_nan() || *s <= 0.0 {
                    // a noise-free image: weight it as if its noise were 1e-3 of its peak
                    let img = if i < k {
                        d.bands[i]
                    } else {
                        d.wide.as_ref().expect("wide").0
                    };
                    let peak =
                        img.iter().fold(
                            0.0f64,
                            |a, v| if v.is_finite() { a.max(v.abs()) } else { a },
                        );
                    *s = (1e-3 * peak).max(1e-12);
                }
            }
            Ok(out)
        }
    }
}

/// Build the whitened operator and data for `d` with the given noise levels and α.
fn build(
    d: &MultibandData,
    ratio: usize,
    shifts: &[[f64; 2]],
    alphas: Option<Vec<f64>>,
    sigmas: &[f64],
    boundary: Boundary,
) -> Result<(MultibandOperator, ArrayD<f64>)> {
    let (k, [m0, m1], fine) = check_data(d, ratio)?;
    let band_w: Vec<Array2<f64>> = (0..k)
        .map(|b| inv_sigma_weights((m0, m1), sigmas[b], d.band_masks.get(b).copied().flatten()))
        .collect();
    let wide_w = d
        .wide
        .as_ref()
        .map(|(_, _, m)| inv_sigma_weights((fine[0], fine[1]), sigmas[k], *m));
    let model = MultibandModel {
        fine,
        ratio,
        band_psfs: d.band_psfs.clone(),
        shifts: shifts.to_vec(),
        wide: d
            .wide
            .as_ref()
            .map(|(_, psf, _)| (*psf, alphas.clone().unwrap_or_default())),
        boundary,
    };
    let a = MultibandOperator::new(&model, band_w, wide_w)?;
    let yw = a.weighted_data(&d.bands, d.wide.as_ref().map(|w| w.0))?;
    Ok((a, yw))
}

/// The flux-preserving start: each fine pixel gets its coarse pixel's value over `r²`
/// (masked coarse pixels: the band's median), clamped at 0; `[K, n0, n1]`.
pub fn upsample_start(d: &MultibandData, ratio: usize) -> Array3<f64> {
    let k = d.bands.len();
    let (m0, m1) = d.bands[0].dim();
    let r2 = (ratio * ratio) as f64;
    let mut x = Array3::<f64>::zeros((k, m0 * ratio, m1 * ratio));
    for (b, y) in d.bands.iter().enumerate() {
        let mask = d.band_masks.get(b).copied().flatten();
        let med = valid_median(*y, mask);
        let mut xb = x.index_axis_mut(Axis(0), b);
        for ((i, j), v) in xb.indexed_iter_mut() {
            let (ci, cj) = (i / ratio, j / ratio);
            let ok = y[[ci, cj]].is_finite() && mask.is_none_or(|m| m[[ci, cj]]);
            let val = if ok { y[[ci, cj]] } else { med };
            *v = (val / r2).max(0.0);
        }
    }
    x
}

/// The start of the joint solver: the wide band's detail distributed over the bands by the
/// local colour of the low-resolution bands,
///
/// ```text
/// x0_b = max(y_W, 0) · u_b / Σ_c α_c u_c,   u_b = max(U y_b, 0) + 3 σ_b / r²,
/// ```
///
/// `U` the flux-preserving upsampling of [`upsample_start`] (masked wide-band pixels: the
/// upsampled bands instead). The added `3σ_b/r²` keeps the colour ratio finite on empty sky.
/// It fits the wide band exactly where `h_W` is negligible, so the solver only has to
/// correct colours (its slow directions are the wide band's high frequencies).
pub fn wide_start(d: &MultibandData, ratio: usize, alphas: &[f64], sigmas: &[f64]) -> Array3<f64> {
    let up = upsample_start(d, ratio);
    let Some((yw, _, wmask)) = &d.wide else {
        return up;
    };
    let k = d.bands.len();
    let r2 = (ratio * ratio) as f64;
    let mut x = Array3::<f64>::zeros(up.dim());
    let (n0, n1) = yw.dim();
    for i in 0..n0 {
        for j in 0..n1 {
            let valid = yw[[i, j]].is_finite() && wmask.is_none_or(|m| m[[i, j]]);
            let u: Vec<f64> = (0..k)
                .map(|b| up[[b, i, j]] + 3.0 * sigmas[b] / r2)
                .collect();
            let mix: f64 = u.iter().zip(alphas).map(|(u, a)| u * a).sum();
            for b in 0..k {
                x[[b, i, j]] = if valid && mix > 0.0 {
                    yw[[i, j]].max(0.0) * u[b] / mix
                } else {
                    up[[b, i, j]]
                };
            }
        }
    }
    x
}

/// What both joint solvers need before iterating: noise levels, α (given or fitted), the
/// whitened operator and data, the Lipschitz constant `1.01 ‖A‖²` and the start (the wide
/// band shared by colour when there is one, the upsampled bands otherwise).
struct Setup {
    sigmas: Vec<f64>,
    alphas: Option<Vec<f64>>,
    alpha_fit: Option<AlphaFit>,
    a: MultibandOperator,
    yw: ArrayD<f64>,
    lip: f64,
    x0: ArrayD<f64>,
}

fn setup(d: &MultibandData, p: &MultibandParams, k: usize) -> Result<Setup> {
    let sigmas = noise_levels(d, p.sigmas.as_deref())?;
    let (alphas, alpha_fit) = resolve_alphas(d, p, &sigmas, k)?;
    let (a, yw) = build(d, p.ratio, &p.shifts, alphas.clone(), &sigmas, p.boundary)?;
    let lip = {
        let l: f64 = op_norm(&a, NormEstimate::default());
        (l * l * 1.01).max(1e-12)
    };
    let x0 = match &alphas {
        Some(al) => wide_start(d, p.ratio, al, &sigmas).into_dyn(),
        None => upsample_start(d, p.ratio).into_dyn(),
    };
    Ok(Setup {
        sigmas,
        alphas,
        alpha_fit,
        a,
        yw,
        lip,
        x0,
    })
}

/// Joint multiband deconvolution (module docs): restore the `K` bands of `d` on the fine grid
/// with the wide band, positivity and the chosen prior, by the Condat–Vũ primal–dual
/// algorithm on the whitened model, from the flux-preserving upsampled bands; with the
/// starlet prior, followed by the photometric re-fit [`joint_refit`]
/// ([`MultibandParams::refit_iters`] steps) and, with a wide band, the colour re-fit
/// [`colour_refit`] ([`MultibandParams::colour_refit`]).
///
/// Steps: `τ = 0.99/L` with `L = 1.01 ‖A‖²` and `σ_d = L / (2 · 1.01 ‖W‖²)` (norms by power
/// iteration), which meets the convergence condition `1/τ − σ_d‖W‖² ≥ L/2` of
/// [`crate::proximal::pdhg`](mod@crate::proximal::pdhg). Weights `α_b` are fitted by
/// [`fit_band_weights`] when not given. With no wide band this is the single-band (or
/// bands-only) super-resolving deconvolution with the same prior.
///
/// ```
/// use sparseinv_solvers::multiband::{multiband_deconvolve, MultibandData, MultibandParams};
/// use sparseinv_solvers::op::{Boundary, Conv2d, Downsample, LinearOperator};
/// use ndarray::{Array2, Ix2};
/// // one point source seen by one 2×-coarser band and by the wide band
/// let mut truth = Array2::<f64>::zeros((16, 16));
/// truth[[8, 8]] = 100.0;
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let blur = Conv2d::new([16, 16], psf.view(), Boundary::Same).unwrap();
/// let wide = blur.apply(truth.view().into_dyn()).unwrap();
/// let band = Downsample::uniform(&[16, 16], 2).unwrap().apply(wide.view()).unwrap();
/// let (wide, band) = (wide.into_dimensionality::<Ix2>().unwrap(), band.into_dimensionality::<Ix2>().unwrap());
/// let d = MultibandData {
///     bands: vec![band.view()],
///     band_psfs: vec![psf.view()],
///     band_masks: vec![],
///     wide: Some((wide.view(), psf.view(), None)),
/// };
/// let p = MultibandParams { alphas: Some(vec![1.0]), sigmas: Some(vec![0.1, 0.1]), ..Default::default() };
/// let r = multiband_deconvolve(&d, &p).unwrap();
/// assert_eq!(r.x.dim(), (1, 16, 16));
/// assert!(r.x.iter().all(|&v| v >= 0.0));
/// assert!((r.x.sum() - 100.0).abs() < 8.0, "flux {}", r.x.sum()); // flux kept to a few %
/// ```
pub fn multiband_deconvolve(d: &MultibandData, p: &MultibandParams) -> Result<MultibandResult> {
    multiband_deconvolve_with(d, p, &mut NoObserver)
}

/// [`multiband_deconvolve`] reporting to `observer` after each iteration.
pub fn multiband_deconvolve_with(
    d: &MultibandData,
    p: &MultibandParams,
    observer: &mut dyn Observer<f64>,
) -> Result<MultibandResult> {
    let (k, _, fine) = check_data(d, p.ratio)?;
    p.stop.validate()?;
    let Setup {
        sigmas,
        alphas,
        alpha_fit,
        a,
        yw,
        lip,
        x0,
    } = setup(d, p, k)?;
    let f = LeastSquares::with_lipschitz(&a, yw.view(), None, lip)?;
    let (x, objective, report, lambdas) = match p.prior {
        MultibandPrior::Starlet { scales, k_sigma } => {
            let lambdas = thresholds(&a, k, fine, scales, k_sigma, p.seed)?;
            let w = BandwiseStarlet::new(k, fine, scales)?;
            let mut lw = ArrayD::<f64>::zeros(IxDyn(&[k, scales + 1, fine[0], fine[1]]));
            for (b, lam_b) in lambdas.iter().enumerate() {
                for (j, lam) in lam_b.iter().enumerate() {
                    lw.slice_mut(s![b, j, .., ..]).fill(*lam);
                }
            }
            let l1 = L1::weighted(lw)?;
            let wn2 = {
                let l: f64 = op_norm(&w, NormEstimate::default());
                (l * l * 1.01).max(1e-12)
            };
            let pd = PdhgParams {
                tau: Some(0.99 / lip),
                sigma: Some(0.5 * lip / wn2),
                stop: p.stop,
                ..PdhgParams::default()
            };
            let problem = Problem::new(&[k, fine[0], fine[1]])
                .smooth(&f)
                .prox(&NonNegative)
                .add(&w, &l1);
            let mut sv = Pdhg::new(&problem, &pd, Some(x0.view()))?;
            let first = sv.objective();
            let report = run(&mut sv, &p.stop, observer)?;
            let mut obj = vec![first];
            obj.extend_from_slice(&report.objective_history);
            let x = if p.refit_iters > 0 {
                let x = joint_refit(&a, &yw, sv.into_x(), scales, k_sigma, p.refit_iters)?;
                match (&alphas, p.colour_refit) {
                    (Some(al), true) => colour_refit(d, p, al, &sigmas, &x)?,
                    _ => x,
                }
            } else {
                sv.into_x()
            };
            (x, obj, report, lambdas)
        }
        MultibandPrior::Positivity => {
            let pd = PdhgParams {
                tau: Some(0.99 / lip),
                sigma: Some(1.0),
                stop: p.stop,
                ..PdhgParams::default()
            };
            let problem = Problem::new(&[k, fine[0], fine[1]])
                .smooth(&f)
                .prox(&NonNegative);
            let mut sv = Pdhg::new(&problem, &pd, Some(x0.view()))?;
            let first = sv.objective();
            let report = run(&mut sv, &p.stop, observer)?;
            let mut obj = vec![first];
            obj.extend_from_slice(&report.objective_history);
            (sv.into_x(), obj, report, vec![Vec::new(); k])
        }
    };
    Ok(MultibandResult {
        x: x.into_dimensionality().expect("3-D"),
        alphas,
        alpha_fit,
        sigmas,
        lambdas,
        objective,
        report,
    })
}

/// Photometric re-fit of a joint estimate on its significant starlet coefficients: the joint
/// counterpart of [`debias_active`](crate::deconv::debias_active). With the whitened operator
/// `A` and data `y_w` (unit noise in every data pixel), the starlet transform `W` applied to
/// each data image (every band and the wide band, [`BlockDiag`]), and the support
/// `M = {|W_j A P₊(x̂)| > κ_j σ_j}` of the estimate's noise-free prediction (`κ_1 = κ + 1`,
/// `κ_j = κ` for `j ≥ 2`, coarse planes always in), it takes `iters` projected-gradient
/// steps on `½‖M ⊙ W(A x − y_w)‖²`, `x ≥ 0`, from `x̂`, step `1/(1.05 ‖M W A‖²)`. Stopped
/// early on purpose (it fixes the well-measured large scales, where photometric bias lives,
/// without deconvolving the noise inside the active coefficients).
pub fn joint_refit(
    a: &MultibandOperator,
    yw: &ArrayD<f64>,
    x0: ArrayD<f64>,
    scales: usize,
    kappa: f64,
    iters: usize,
) -> Result<ArrayD<f64>> {
    let shapes = a.layout().shapes().to_vec();
    let wb = BlockDiag::new(
        shapes
            .iter()
            .map(|s| Starlet::<f64>::new([s[0], s[1]], scales))
            .collect::<Result<Vec<_>>>()?,
    )?;
    let sj = starlet_noise_std(scales);
    let pos = x0.mapv(|v| v.max(0.0));
    let wd = wb.apply(a.apply(pos.view())?.view())?;
    let mut m = ArrayD::<f64>::zeros(wd.raw_dim());
    {
        let ran = wb.range_layout().clone();
        let parts = ran.split(wd.view())?;
        let mparts = ran.split_mut(m.view_mut())?;
        for (c, mut mm) in parts.into_iter().zip(mparts) {
            let c = c.into_dimensionality::<ndarray::Ix3>().expect("3-D");
            for j in 0..=scales {
                let t = match j {
                    0 => (kappa + 1.0) * sj[0],
                    j if j == scales => -1.0, // coarse plane: always in
                    j => kappa * sj[j],
                };
                let src = c.index_axis(Axis(0), j);
                let mut dst = mm.index_axis_mut(Axis(0), j);
                Zip::from(&mut dst)
                    .and(src.into_dyn())
                    .for_each(|d, &v| *d = if v.abs() > t { 1.0 } else { 0.0 });
            }
        }
    }
    let dm = Diagonal::new(m);
    let b = joint_support_operator(a, &wb, &dm)?;
    let t = dm.apply(wb.apply(yw.view())?.view())?;
    let l: f64 = op_norm(&b, NormEstimate::default());
    let mu = 1.0 / (1.05 * l * l).max(1e-12);
    let mut x = pos;
    for _ in 0..iters {
        let r = &t - &b.apply(x.view())?;
        let g = b.adjoint(r.view())?;
        Zip::from(&mut x)
            .and(&g)
            .for_each(|x, &g| *x = (*x + mu * g).max(0.0));
    }
    Ok(x)
}

/// Bilinear interpolation from a `[m0, m1]` grid of nodes to a `[n0, n1]` fine grid (one
/// leading axis of length 1 on both sides, `[1, ·, ·]`): node `(p, q)` sits at the centre of
/// the fine block `(p·s .. p·s + s − 1, q·s .. q·s + s − 1)`, `s` the block side. Fine pixel
/// `i` reads the nodes `⌊t⌋, ⌊t⌋ + 1` with weights `1 − (t − ⌊t⌋), t − ⌊t⌋`, where
/// `t = clamp((i + ½)/s − ½, 0, m − 1)` (constant beyond the outer node centres); separable in
/// rows and columns. The adjoint scatters with the same weights.
#[derive(Debug, Clone)]
pub struct BlockBilinear {
    taps0: Vec<(usize, usize, f64)>,
    taps1: Vec<(usize, usize, f64)>,
    domain: [usize; 3],
    range: [usize; 3],
}

impl BlockBilinear {
    /// Nodes every `block` fine pixels over a `[n0, n1]` fine grid (`⌈n/block⌉` nodes per axis).
    pub fn new(fine: [usize; 2], block: usize) -> Result<Self> {
        if block == 0 || fine[0] == 0 || fine[1] == 0 {
            return Err(Error::param("block", "block side and grid must be ≥ 1"));
        }
        let taps = |n: usize| -> (Vec<(usize, usize, f64)>, usize) {
            let m = n.div_ceil(block);
            let t: Vec<(usize, usize, f64)> = (0..n)
                .map(|i| {
                    let t = ((i as f64 + 0.5) / block as f64 - 0.5).clamp(0.0, (m - 1) as f64);
                    let i0 = t.floor() as usize;
                    let i1 = (i0 + 1).min(m - 1);
                    (i0, i1, t - i0 as f64)
                })
                .collect();
            (t, m)
        };
        let (taps0, m0) = taps(fine[0]);
        let (taps1, m1) = taps(fine[1]);
        Ok(BlockBilinear {
            taps0,
            taps1,
            domain: [1, m0, m1],
            range: [1, fine[0], fine[1]],
        })
    }
}

impl LinearOperator<f64> for BlockBilinear {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        let m1 = self.domain[2];
        // rows first: [n0, m1]
        let mut tmp = Array2::<f64>::zeros((self.range[1], m1));
        for (i, &(a, b, f)) in self.taps0.iter().enumerate() {
            for q in 0..m1 {
                tmp[[i, q]] = (1.0 - f) * x[[0, a, q]] + f * x[[0, b, q]];
            }
        }
        for i in 0..self.range[1] {
            for (j, &(a, b, f)) in self.taps1.iter().enumerate() {
                y[[0, i, j]] = (1.0 - f) * tmp[[i, a]] + f * tmp[[i, b]];
            }
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, mut x: ArrayViewMutD<f64>) {
        let m1 = self.domain[2];
        let mut tmp = Array2::<f64>::zeros((self.range[1], m1));
        for i in 0..self.range[1] {
            for (j, &(a, b, f)) in self.taps1.iter().enumerate() {
                let v = y[[0, i, j]];
                tmp[[i, a]] += (1.0 - f) * v;
                tmp[[i, b]] += f * v;
            }
        }
        x.fill(0.0);
        for (i, &(a, b, f)) in self.taps0.iter().enumerate() {
            for q in 0..m1 {
                let v = tmp[[i, q]];
                x[[0, a, q]] += (1.0 - f) * v;
                x[[0, b, q]] += f * v;
            }
        }
    }
}

/// Relative ridge of [`colour_refit`]: `μ = COLOUR_RIDGE · ‖J_b‖²`.
pub const COLOUR_RIDGE: f64 = 2e-3;

/// Colour re-fit of a joint estimate (forced photometry with the joint solution as the
/// morphology template): the luminance `X̂ = Σ_b α_b x̂_b` is kept (the wide band's
/// high-resolution structure) and each band becomes `x_b = max(X̂ ⊙ U g_b, 0)`, a smooth
/// colour field `g_b` times the luminance, with `g_b` fitted to band `b`'s data alone:
///
/// ```text
/// g_b = argmin_g ‖w_b ⊙ (y_b − S_b D_r (h_b ∗ (X̂ ⊙ U g)))‖² + μ_b ‖g − g_b⁰‖²,
/// ```
///
/// `U` = [`BlockBilinear`] with nodes every `2r` fine pixels (two band pixels), `w_b = M_b/σ_b`
/// the band's whitening weights, `g_b⁰ = (B x̂_b + ε_b)/(B X̂ + ε_X)` the estimate's own colour
/// per block (`B` the block sum, `ε` 10⁻³ of the mean block sum: empty sky takes the mean
/// colour), `μ_b = COLOUR_RIDGE · ‖J_b‖²` (`J_b` the map `g ↦ w_b ⊙ S_b D_r (h_b ∗ (X̂ ⊙ U g))`,
/// norm by power iteration). Solved by CGLS on `δ = g − g⁰` with damping `√μ_b`. The pixel
/// colours that only the wide band sees (structure below the bands' resolution) follow
/// the local colour instead of the prior's partition between bands, and each band's aperture
/// fluxes are decided by its own data. Needs the wide band's weights `α`; when one of them
/// is not positive (a band absent from the wide band, whose structure the luminance would
/// not carry) the estimate is returned unchanged.
///
/// ```
/// use sparseinv_solvers::multiband::{colour_refit, MultibandData, MultibandParams};
/// use ndarray::{Array2, Array3};
/// // one band, 2× coarser, whose data say "twice the flux" of the estimate everywhere
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let est = Array3::from_elem((1, 8, 8), 1.0).into_dyn();
/// let band = Array2::from_elem((4, 4), 8.0); // 2 × (4 fine pixels of 1.0)
/// let wide = Array2::from_elem((8, 8), 1.0);
/// let d = MultibandData {
///     bands: vec![band.view()],
///     band_psfs: vec![psf.view()],
///     band_masks: vec![],
///     wide: Some((wide.view(), psf.view(), None)),
/// };
/// let x = colour_refit(&d, &MultibandParams::default(), &[1.0], &[0.1, 0.1], &est).unwrap();
/// // the colour field moves from 1 towards 2 (interior pixels; the PSF edge loses flux)
/// assert!(x[[0, 4, 4]] > 1.5, "{}", x[[0, 4, 4]]);
/// ```
pub fn colour_refit(
    d: &MultibandData,
    p: &MultibandParams,
    alphas: &[f64],
    sigmas: &[f64],
    x: &ArrayD<f64>,
) -> Result<ArrayD<f64>> {
    let (k, _, fine) = check_data(d, p.ratio)?;
    if alphas.len() != k || sigmas.len() < k {
        return Err(Error::param(
            "colour re-fit",
            format!(
                "{} weights and {} noise levels for {k} bands",
                alphas.len(),
                sigmas.len()
            ),
        ));
    }
    if alphas.iter().any(|&a| a.is_nan() || a <= 0.0) {
        return Ok(x.clone());
    }
    let [n0, n1] = fine;
    let block = 2 * p.ratio;
    let mut lum = Array2::<f64>::zeros((n0, n1));
    for (b, &a) in alphas.iter().enumerate().take(k) {
        lum.scaled_add(a, &x.index_axis(Axis(0), b).mapv(|v| v.max(0.0)));
    }
    let up = BlockBilinear::new(fine, block)?;
    let [_, m0, m1] = up.domain;
    let bsum = |img: ArrayView2<f64>| -> Array2<f64> {
        let mut o = Array2::<f64>::zeros((m0, m1));
        for ((i, j), v) in img.indexed_iter() {
            o[[i / block, j / block]] += v.max(0.0);
        }
        o
    };
    let lum_b = bsum(lum.view());
    let eps_l = 1e-3 * lum_b.mean().unwrap_or(0.0) + 1e-300;
    let lum_d = Diagonal::new(
        lum.clone()
            .into_shape_with_order((1, n0, n1))
            .expect("shape")
            .into_dyn(),
    );
    let mut out = ArrayD::<f64>::zeros(x.raw_dim());
    for (b, &sigma) in sigmas.iter().enumerate().take(k) {
        let xb = bsum(
            x.index_axis(Axis(0), b)
                .into_dimensionality::<ndarray::Ix2>()
                .expect("2-D"),
        );
        let eps_b = 1e-3 * xb.mean().unwrap_or(0.0) + 1e-300;
        let g0 = Zip::from(&xb)
            .and(&lum_b)
            .map_collect(|&v, &l| (v + eps_b) / (l + eps_l))
            .into_shape_with_order((1, m0, m1))
            .expect("shape")
            .into_dyn();
        let model = MultibandModel {
            fine,
            ratio: p.ratio,
            band_psfs: vec![d.band_psfs[b]],
            shifts: p.shifts.get(b).map_or(Vec::new(), |s| vec![*s]),
            wide: None,
            boundary: p.boundary,
        };
        let mask = d.band_masks.get(b).copied().flatten();
        let w = inv_sigma_weights(d.bands[b].dim(), sigma, mask);
        let ab = MultibandOperator::new(&model, vec![w], None)?;
        let yb = ab.weighted_data(&[d.bands[b]], None)?;
        let j = Compose::new(&ab, Compose::new(&lum_d, &up)?)?;
        let jn: f64 = op_norm(&j, NormEstimate::default());
        let mu = COLOUR_RIDGE * jn * jn;
        let r0 = &yb - &j.apply(g0.view())?;
        let kp = crate::krylov::KrylovParams {
            stop: StopCriteria {
                max_iters: 300,
                residual_tol: Some(1e-8),
                ..crate::krylov::KrylovParams::default_stop()
            },
            damp: mu.sqrt(),
        };
        let (sol, _) = crate::krylov::cgls(&j, r0.view(), None, &kp, &mut NoObserver)?;
        let g = &g0 + &sol.x;
        let xf = Diagonal::new(lum_d.diag().clone()).apply(up.apply(g.view())?.view())?;
        out.index_axis_mut(Axis(0), b)
            .assign(&xf.index_axis(Axis(0), 0).mapv(|v| v.max(0.0)));
    }
    Ok(out)
}

/// `x ↦ M ⊙ W(A x)` with `W` the block-diagonal starlet of the data images: a composition of
/// the existing operators.
fn joint_support_operator<'a>(
    a: &'a MultibandOperator,
    wb: &'a BlockDiag<f64, Starlet<f64>>,
    m: &'a Diagonal<f64>,
) -> Result<impl LinearOperator<f64> + 'a> {
    Compose::new(m, Compose::new(wb, a)?)
}

/// A denoiser of `[K, n0, n1]` band stacks from a 2-D one: each band is denoised with the
/// same `σ`, then clamped at 0 (the positivity of the multiband model).
pub struct BandwiseDenoiser<'a> {
    inner: &'a dyn Denoiser<f64>,
}

impl<'a> BandwiseDenoiser<'a> {
    /// Wrap a 2-D denoiser.
    pub fn new(inner: &'a dyn Denoiser<f64>) -> Self {
        BandwiseDenoiser { inner }
    }
}

impl Denoiser<f64> for BandwiseDenoiser<'_> {
    fn denoise_into(
        &self,
        x: ArrayViewD<f64>,
        sigma: f64,
        mut out: ArrayViewMutD<f64>,
    ) -> Result<()> {
        if x.ndim() != 3 || out.shape() != x.shape() {
            return Err(Error::Unsupported(format!(
                "BandwiseDenoiser needs [bands, rows, cols] input and output, got {:?} and {:?}",
                x.shape(),
                out.shape()
            )));
        }
        for b in 0..x.shape()[0] {
            self.inner.denoise_into(
                x.index_axis(Axis(0), b),
                sigma,
                out.index_axis_mut(Axis(0), b),
            )?;
        }
        out.mapv_inplace(|v| v.max(0.0));
        Ok(())
    }
}

/// Joint multiband deconvolution with a plug-and-play prior: the model of
/// [`multiband_deconvolve`] with the sparsity prior replaced by `denoiser` (any 2-D
/// [`Denoiser`], e.g. [`StarletDenoiser`](crate::starlet_denoise::StarletDenoiser) or an ONNX
/// network), by accelerated plug-and-play proximal gradient ([`PnpPgd`]) on the whitened data
/// term,
///
/// ```text
/// x_{k+1} = P₊ D( z_k − τ Aᵀ(A z_k − w ⊙ y), σ_D ),   z_{k+1} = x_{k+1} + β_k (x_{k+1} − x_k),
/// ```
///
/// band by band ([`BandwiseDenoiser`]), with `τ = 1/(1.01 ‖A‖²)` and the denoiser strength
/// `σ_D = strength · √τ`: for the whitened (unit-noise) data term, the proximal step of a
/// prior `g` with step `τ` is the MAP denoiser for Gaussian noise of variance `τ`, so
/// `strength = 1` denoises at the noise level one gradient step leaves. `p.prior` is ignored;
/// α and the noise levels are found as in [`multiband_deconvolve`]. `objective` is empty (the
/// denoiser's implicit prior has no value).
pub fn multiband_deconvolve_pnp(
    d: &MultibandData,
    p: &MultibandParams,
    denoiser: &dyn Denoiser<f64>,
    strength: f64,
) -> Result<MultibandResult> {
    let (k, _, _) = check_data(d, p.ratio)?;
    p.stop.validate()?;
    if !(strength.is_finite() && strength >= 0.0) {
        return Err(Error::param(
            "strength",
            format!("must be finite and ≥ 0, got {strength}"),
        ));
    }
    let Setup {
        sigmas,
        alphas,
        alpha_fit,
        a,
        yw,
        lip,
        x0,
    } = setup(d, p, k)?;
    let tau = 1.0 / lip;
    let bd = BandwiseDenoiser::new(denoiser);
    let params = PnpParams {
        sigma: strength * tau.sqrt(),
        step: Some(tau),
        accelerate: true,
        stop: p.stop,
        ..PnpParams::default()
    };
    let mut sv = PnpPgd::new(&a, yw.view(), &bd, Some(x0.view()), &params)?;
    let report = run(&mut sv, &p.stop, &mut NoObserver)?;
    let x = sv.x().to_owned();
    Ok(MultibandResult {
        x: x.into_dimensionality().expect("3-D"),
        alphas,
        alpha_fit,
        sigmas,
        lambdas: vec![Vec::new(); k],
        objective: Vec::new(),
        report,
    })
}

/// The weights α: none without a wide band, the given ones (checked), or fitted.
fn resolve_alphas(
    d: &MultibandData,
    p: &MultibandParams,
    sigmas: &[f64],
    k: usize,
) -> Result<(Option<Vec<f64>>, Option<AlphaFit>)> {
    Ok(match (&d.wide, &p.alphas) {
        (None, _) => (None, None),
        (Some(_), Some(a)) => {
            if a.len() != k {
                return Err(Error::param(
                    "alphas",
                    format!("{} weights for {k} bands", a.len()),
                ));
            }
            if let Some(v) = a.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(Error::param(
                    "alphas",
                    format!("must be finite and ≥ 0, got {v}"),
                ));
            }
            (Some(a.clone()), None)
        }
        (Some(_), None) => {
            let fit = fit_band_weights(d, p.ratio, &p.shifts, sigmas)?;
            (Some(fit.alphas.clone()), Some(fit))
        }
    })
}

/// Thresholds `λ_{b,j} = k · std(W_j [Aᵀ n]_b)` for a seeded white unit noise `n` in the
/// whitened data space (`Aᵀ` multiplies by the weights first: masked pixels, weight 0, drop
/// out, and the `1/σ` of each image is carried into the gradient noise).
fn thresholds(
    a: &MultibandOperator,
    k: usize,
    fine: [usize; 2],
    scales: usize,
    k_sigma: f64,
    seed: u64,
) -> Result<Vec<Vec<f64>>> {
    if !(k_sigma >= 0.0 && k_sigma.is_finite()) {
        return Err(Error::param("k_sigma", "must be finite and ≥ 0"));
    }
    let w = BandwiseStarlet::new(k, fine, scales)?;
    let noise = crate::testing::randn::<f64>(a.range_shape(), seed);
    let atn = a.adjoint(noise.view())?;
    let wn = w.apply(atn.view())?;
    let mut lambdas = vec![vec![0.0; scales]; k];
    for (b, lam_b) in lambdas.iter_mut().enumerate() {
        for (j, lam) in lam_b.iter_mut().enumerate() {
            let pl = wn.slice(s![b, j, .., ..]);
            let mean = pl.mean().unwrap_or(0.0);
            let var = pl.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / pl.len() as f64;
            *lam = k_sigma * var.sqrt();
        }
    }
    Ok(lambdas)
}

/// Options of [`projected_gradient_baseline`].
#[derive(Debug, Clone)]
pub struct BaselineParams {
    /// Iterations (default 200, as published).
    pub iters: usize,
    /// Step as a fraction of `1/L` (default 0.1: the published `1/(10 L)`).
    pub step_fraction: f64,
    /// The balance factor `c` of `λ_b = c · F_b / G` (default 0.3, as published).
    pub balance: f64,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            iters: 200,
            step_fraction: 0.1,
            balance: 0.3,
        }
    }
}

/// The authors' published multiband scheme, reimplemented with exact operators as the
/// evaluation baseline: per band, the band's noise-weighted data term
/// `F_b = ½‖w_b ⊙ (y_b − S_b D_r (h_b ∗ x_b))‖²` plus `λ_b` times the wide-band term
/// `G = ½‖w_W ⊙ (y_W − h_W ∗ Σ α x)‖²`, positivity only, minimised by the projected gradient
///
/// ```text
/// x_b ← max(0, x_b − μ (∇_b F_b + λ_b ∇_b G)),   λ_b = c · F_b(x) / G(x) re-set every iteration,
/// ```
///
/// `μ = step_fraction / L` (`L = ‖A‖²` of the whitened joint operator), from the
/// flux-preserving upsampled bands, for a fixed number of iterations (no other stopping rule:
/// the published script's regularisation is the early stop). Needs a wide band and `α`.
pub fn projected_gradient_baseline(
    d: &MultibandData,
    ratio: usize,
    shifts: &[[f64; 2]],
    alphas: &[f64],
    sigmas: &[f64],
    p: &BaselineParams,
) -> Result<Array3<f64>> {
    let (k, _, fine) = check_data(d, ratio)?;
    if d.wide.is_none() {
        return Err(Error::param("wide band", "the baseline needs one"));
    }
    if !(p.step_fraction > 0.0 && p.balance >= 0.0 && p.balance.is_finite()) {
        return Err(Error::param(
            "baseline",
            "step_fraction > 0 and balance ≥ 0 needed",
        ));
    }
    let sig = noise_levels(d, Some(sigmas))?;
    let (a, yw) = build(
        d,
        ratio,
        shifts,
        Some(alphas.to_vec()),
        &sig,
        Boundary::Same,
    )?;
    let lip = {
        let l: f64 = op_norm(&a, NormEstimate::default());
        (l * l).max(1e-12)
    };
    let mu = p.step_fraction / lip;
    let mut x = upsample_start(d, ratio).into_dyn();
    let layout = a.layout().clone();
    let mut ax = ArrayD::<f64>::zeros(IxDyn(a.range_shape()));
    let mut res_band = ArrayD::<f64>::zeros(IxDyn(a.range_shape()));
    let mut res_wide = ArrayD::<f64>::zeros(IxDyn(a.range_shape()));
    let mut gb = ArrayD::<f64>::zeros(IxDyn(&[k, fine[0], fine[1]]));
    let mut gw = gb.clone();
    for _ in 0..p.iters {
        a.apply_into(x.view(), ax.view_mut());
        let r = &ax - &yw;
        // split the residual into the band part and the wide part
        res_band.fill(0.0);
        res_wide.fill(0.0);
        let wide_range = layout.range(k);
        let rs = r.as_slice().expect("contiguous");
        let rb = res_band.as_slice_mut().expect("contiguous");
        let rw = res_wide.as_slice_mut().expect("contiguous");
        rb[..wide_range.start].copy_from_slice(&rs[..wide_range.start]);
        rw[wide_range.clone()].copy_from_slice(&rs[wide_range.clone()]);
        let g_val = 0.5 * rs[wide_range.clone()].iter().map(|v| v * v).sum::<f64>();
        a.adjoint_into(res_band.view(), gb.view_mut());
        a.adjoint_into(res_wide.view(), gw.view_mut());
        for b in 0..k {
            let fb = 0.5 * rs[layout.range(b)].iter().map(|v| v * v).sum::<f64>();
            let lam = if g_val > 0.0 {
                p.balance * fb / g_val
            } else {
                0.0
            };
            Zip::from(x.index_axis_mut(Axis(0), b))
                .and(gb.index_axis(Axis(0), b))
                .and(gw.index_axis(Axis(0), b))
                .for_each(|x, &g1, &g2| *x = (*x - mu * (g1 + lam * g2)).max(0.0));
        }
    }
    Ok(x.into_dimensionality().expect("3-D"))
}

/// The least-squares fit of the wide-band weights `α_b` ([`fit_band_weights`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaFit {
    /// The fitted `α_b ≥ 0`.
    pub alphas: Vec<f64>,
    /// Their standard errors from the fit residual (`NaN` where not identifiable).
    pub std_errors: Vec<f64>,
    /// Number of Fourier modes used.
    pub modes: usize,
    /// Relative residual `‖t − X α‖ / ‖t‖` of the fit.
    pub rel_residual: f64,
    /// `"shrunk"` (the MAP fit around the common weight) or `"common"` (fewer than `2K`
    /// usable modes: one weight for all bands).
    pub method: String,
    /// The common weight `c` (the least-squares `t ≈ c Σ_b X_b`).
    pub common: f64,
    /// The free non-negative least-squares fit (no prior; empty for `"common"`).
    pub free: Vec<f64>,
}

/// The DFT of a centred PSF (centre `(h/2, w/2)`) on an `[n0, n1]` grid, i.e. of the kernel
/// wrapped so that its centre is at the origin (cropped if larger than the grid).
fn psf_transfer(psf: ArrayView2<f64>, n0: usize, n1: usize) -> Array2<Complex<f64>> {
    let (h, w) = psf.dim();
    let (c0, c1) = (h / 2, w / 2);
    let mut k = Array2::<f64>::zeros((n0, n1));
    for ((i, j), &v) in psf.indexed_iter() {
        let di = i as isize - c0 as isize;
        let dj = j as isize - c1 as isize;
        if di.unsigned_abs() * 2 > n0 || dj.unsigned_abs() * 2 > n1 {
            continue;
        }
        let ii = di.rem_euclid(n0 as isize) as usize;
        let jj = dj.rem_euclid(n1 as isize) as usize;
        k[[ii, jj]] += v;
    }
    fft2(k.view())
}

/// Signed frequency of DFT index `i` of length `n`.
fn signed(i: usize, n: usize) -> isize {
    if 2 * i < n {
        i as isize
    } else {
        i as isize - n as isize
    }
}

/// Fit the wide-band weights `α_b ≥ 0` by least squares from the data, in Fourier space on
/// the coarse grid. Block-summing the wide band to the coarse grid and dividing out the PSFs,
/// the model gives, at every coarse frequency `k` little affected by aliasing,
///
/// ```text
/// F[D_r y_W](k) / ĥ_W(k) = Σ_b α_b · e^{2πi k·s_b} F[y_b](k) / ĥ_b(k)
/// ```
///
/// (the block-sum filter is common to both sides; `ĥ` the fine-grid PSF transfer functions at
/// those frequencies, `s_b` the band shifts). Writing `t(k)` for the left side and `X_b(k)` for
/// the terms on the right, the fit uses the modes with `|k| ≤ m/4` on each axis where every
/// `|ĥ| ≥ 0.2`, and the bands' modes together (`Σ_b |F[y_b]|`) are at least 3 times their combined noise
/// (`σ_b √pixels` each; the wide band's own mode is not used to select, which would bias the
/// fit upwards), stacking
/// real and imaginary parts. Masked pixels are filled with the image median first.
///
/// Bands that lie close in wavelength have nearly proportional images, so the individual
/// `α_b` are poorly determined by the data while their common level is not. The fit is
/// therefore the maximum a posteriori estimate under the prior `α_b ~ N(c, (0.1 c)²)` — the
/// bands' shares of the wide band differ by about ten per cent around a common value:
///
/// 1. the common weight `c`: least squares of `t ≈ c Σ_b X_b`;
/// 2. the residual variance `s²` of the free non-negative least squares (exact, every active
///    set);
/// 3. `α = (XᵀX + μ I)⁻¹ (Xᵀ t + μ c 1)` with `μ = s² / (0.1 c)²`, clamped at 0;
///
/// standard errors `√(s² [(XᵀX + μI)⁻¹]_bb)`. With fewer than `2K` usable modes, all bands get
/// the common weight (`method = "common"`). Errors when no mode qualifies (too little signal:
/// give the weights) or without a wide band.
pub fn fit_band_weights(
    d: &MultibandData,
    ratio: usize,
    shifts: &[[f64; 2]],
    sigmas: &[f64],
) -> Result<AlphaFit> {
    let (k, [m0, m1], [n0, n1]) = check_data(d, ratio)?;
    let (yw, hw, wmask) = d
        .wide
        .as_ref()
        .ok_or_else(|| Error::param("wide band", "needed to fit the weights"))?;
    if sigmas.len() != k + 1 {
        return Err(Error::param(
            "sigmas",
            "one per band and one for the wide band",
        ));
    }
    let fill = fill_invalid;
    let ywf = fill(*yw, *wmask);
    let down = Downsample::uniform(&[n0, n1], ratio)?;
    let wc: Array2<f64> = down
        .apply(ywf.view().into_dyn())?
        .into_dimensionality()
        .expect("2-D");
    let fw = fft2(wc.view());
    let hw_t = psf_transfer(*hw, n0, n1);
    let mut fb = Vec::with_capacity(k);
    let mut hb = Vec::with_capacity(k);
    for b in 0..k {
        let yb = fill(d.bands[b], d.band_masks.get(b).copied().flatten());
        fb.push(fft2(yb.view()));
        hb.push(psf_transfer(d.band_psfs[b], n0, n1));
    }
    let noise_b: Vec<f64> = (0..k)
        .map(|b| sigmas[b] * ((m0 * m1) as f64).sqrt())
        .collect();
    let band_noise = noise_b.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut rows_x: Vec<Vec<f64>> = Vec::new();
    let mut rows_t: Vec<f64> = Vec::new();
    let mut modes = 0;
    for i in 0..m0 {
        let fi = signed(i, m0);
        if fi.unsigned_abs() * 4 > m0 {
            continue;
        }
        for j in 0..m1 {
            let fj = signed(j, m1);
            if fj.unsigned_abs() * 4 > m1 {
                continue;
            }
            let (ii, jj) = (
                fi.rem_euclid(n0 as isize) as usize,
                fj.rem_euclid(n1 as isize) as usize,
            );
            let hwv = hw_t[[ii, jj]];
            // (selected on the bands and the PSFs only: selecting on the noisy wide-band mode
            // itself would bias the fit upwards)
            if hwv.norm() < 0.2 {
                continue;
            }
            let mut xs = Vec::with_capacity(k);
            let mut ok = true;
            let mut band_amp = 0.0;
            for b in 0..k {
                let h = hb[b][[ii, jj]];
                if h.norm() < 0.2 {
                    ok = false;
                    break;
                }
                band_amp += fb[b][[i, j]].norm();
                let sh = shifts.get(b).copied().unwrap_or([0.0, 0.0]);
                let ph = 2.0
                    * std::f64::consts::PI
                    * (fi as f64 * sh[0] / m0 as f64 + fj as f64 * sh[1] / m1 as f64);
                xs.push(fb[b][[i, j]] * Complex::from_polar(1.0, ph) / h);
            }
            if !ok || band_amp < 3.0 * band_noise {
                continue;
            }
            let t = fw[[i, j]] / hwv;
            modes += 1;
            rows_t.push(t.re);
            rows_x.push(xs.iter().map(|c| c.re).collect());
            rows_t.push(t.im);
            rows_x.push(xs.iter().map(|c| c.im).collect());
        }
    }
    if modes == 0 {
        return Err(Error::param(
            "alphas",
            format!(
                "too little signal to fit the wide-band weights (no usable Fourier mode for \
                 {k} bands): give them explicitly"
            ),
        ));
    }
    let tt: f64 = rows_t.iter().map(|v| v * v).sum();
    // 1. one common weight c (t ≈ c Σ_b X_b): the ratio of the wide band to the band sum
    let sum_x: Vec<f64> = rows_x.iter().map(|r| r.iter().sum()).collect();
    let sxx: f64 = sum_x.iter().map(|v| v * v).sum();
    let c = if sxx > 0.0 {
        (sum_x.iter().zip(&rows_t).map(|(a, b)| a * b).sum::<f64>() / sxx).max(0.0)
    } else {
        0.0
    };
    let rss_of = |a: &[f64]| -> f64 {
        rows_x
            .iter()
            .zip(&rows_t)
            .map(|(row, tv)| {
                let p: f64 = row.iter().zip(a).map(|(r, a)| r * a).sum();
                (tv - p) * (tv - p)
            })
            .sum()
    };
    let common = vec![c; k];
    if modes < 2 * k {
        let rss = rss_of(&common);
        let s2 = rss / (rows_t.len().saturating_sub(1).max(1)) as f64;
        let se = if sxx > 0.0 {
            (s2 / sxx).sqrt()
        } else {
            f64::NAN
        };
        return Ok(AlphaFit {
            alphas: common,
            std_errors: vec![se; k],
            modes,
            rel_residual: if tt > 0.0 { (rss / tt).sqrt() } else { 0.0 },
            method: "common".into(),
            common: c,
            free: Vec::new(),
        });
    }
    // 2. the free non-negative fit, for the residual variance s²
    let (free_fit, rss_free) = nnls_small(&rows_x, &rows_t, k);
    let dof = rows_t.len().saturating_sub(k).max(1) as f64;
    let s2 = rss_free / dof;
    // 3. MAP with the prior α_b ~ N(c, (0.1 c)²): (XᵀX + μ I) α = Xᵀ t + μ c 1, μ = s²/(0.1 c)²
    let mu = if c > 0.0 { s2 / (0.1 * c).powi(2) } else { 0.0 };
    let all: Vec<usize> = (0..k).collect();
    let mut g = vec![vec![0.0; k + 1]; k];
    for (row, &tv) in rows_x.iter().zip(&rows_t) {
        for a in 0..k {
            for b in 0..k {
                g[a][b] += row[a] * row[b];
            }
            g[a][k] += row[a] * tv;
        }
    }
    for (a, ga) in g.iter_mut().enumerate() {
        ga[a] += mu;
        ga[k] += mu * c;
    }
    let alphas: Vec<f64> = match gauss_jordan(&mut g, k) {
        Some(m) => m.iter().map(|r| r[k].max(0.0)).collect(),
        None => common.clone(),
    };
    let rss = rss_of(&alphas);
    let mut std_errors = vec![f64::NAN; k];
    if let Some(inv) = gram_inverse_ridge(&rows_x, &all, mu) {
        for b in 0..k {
            std_errors[b] = (s2 * inv[b][b]).max(0.0).sqrt();
        }
    }
    Ok(AlphaFit {
        alphas,
        std_errors,
        modes,
        rel_residual: if tt > 0.0 { (rss / tt).sqrt() } else { 0.0 },
        method: "shrunk".into(),
        common: c,
        free: free_fit,
    })
}

/// Solve the normal equations on the columns `cols` (Gauss–Jordan with partial pivoting);
/// `None` when singular.
fn solve_on(x: &[Vec<f64>], t: &[f64], cols: &[usize]) -> Option<Vec<f64>> {
    let p = cols.len();
    let mut g = vec![vec![0.0; p + 1]; p];
    for (row, &tv) in x.iter().zip(t) {
        for a in 0..p {
            for c in 0..p {
                g[a][c] += row[cols[a]] * row[cols[c]];
            }
            g[a][p] += row[cols[a]] * tv;
        }
    }
    gauss_jordan(&mut g, p).map(|m| m.iter().map(|r| r[p]).collect())
}

fn gauss_jordan(g: &mut [Vec<f64>], p: usize) -> Option<Vec<Vec<f64>>> {
    let scale = (0..p).map(|a| g[a][a].abs()).fold(0.0f64, f64::max);
    for c in 0..p {
        let piv = (c..p).max_by(|&a, &b| g[a][c].abs().total_cmp(&g[b][c].abs()))?;
        if g[piv][c].abs().is_nan() || g[piv][c].abs() <= 1e-12 * scale {
            return None;
        }
        g.swap(c, piv);
        let d = g[c][c];
        for v in g[c].iter_mut() {
            *v /= d;
        }
        for a in 0..p {
            if a != c {
                let f = g[a][c];
                if f != 0.0 {
                    let rowc = g[c].clone();
                    for (v, w) in g[a].iter_mut().zip(&rowc) {
                        *v -= f * w;
                    }
                }
            }
        }
    }
    Some(g.to_vec())
}

/// `(XᵀX + μ I)⁻¹` restricted to `cols`.
fn gram_inverse_ridge(x: &[Vec<f64>], cols: &[usize], mu: f64) -> Option<Vec<Vec<f64>>> {
    let p = cols.len();
    if p == 0 {
        return None;
    }
    let mut g = vec![vec![0.0; 2 * p]; p];
    for row in x {
        for a in 0..p {
            for c in 0..p {
                g[a][c] += row[cols[a]] * row[cols[c]];
            }
        }
    }
    for (a, r) in g.iter_mut().enumerate() {
        r[p + a] = 1.0;
        r[a] += mu;
    }
    gauss_jordan(&mut g, p).map(|m| m.iter().map(|r| r[p..].to_vec()).collect())
}

/// Exact non-negative least squares for few columns: the best of the unconstrained solutions
/// on every subset of columns that comes out non-negative (the NNLS solution is one of them).
/// Returns the coefficients and the residual sum of squares.
fn nnls_small(x: &[Vec<f64>], t: &[f64], k: usize) -> (Vec<f64>, f64) {
    let rss_of = |a: &[f64]| -> f64 {
        x.iter()
            .zip(t)
            .map(|(row, tv)| {
                let p: f64 = row.iter().zip(a).map(|(r, a)| r * a).sum();
                (tv - p) * (tv - p)
            })
            .sum()
    };
    let mut best = (vec![0.0; k], rss_of(&vec![0.0; k]));
    for set in 1u32..(1u32 << k.min(20)) {
        let cols: Vec<usize> = (0..k).filter(|&b| set & (1 << b) != 0).collect();
        if let Some(sol) = solve_on(x, t, &cols) {
            if sol.iter().all(|&v| v >= 0.0) {
                let mut a = vec![0.0; k];
                for (c, v) in cols.iter().zip(sol) {
                    a[*c] = v;
                }
                let r = rss_of(&a);
                if r < best.1 {
                    best = (a, r);
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests;
