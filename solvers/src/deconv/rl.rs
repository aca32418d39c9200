//! Richardson–Lucy deconvolution on the shared iteration framework.

use super::{check_inputs, mask_weights, masked_data, NoiseModel};
use crate::error::{Error, Result};
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo, StopCriteria};
use crate::op::{Boundary, Conv2d, LinearOperator};
use crate::scalar::{real, Real};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::sync::Mutex;

/// Options of [`RichardsonLucy`].
#[derive(Debug, Clone)]
pub struct RlParams {
    /// Boundary model of `A` (default [`Boundary::Same`]: zero outside the image, the model
    /// of scikit-image; [`Boundary::Reflect`] and [`Boundary::Circular`] also work).
    pub boundary: Boundary,
    /// Divide the back-projected ratio by `Aᵀ(M 1)` (default `true`). This is what makes the
    /// iteration the EM algorithm for Poisson data when the PSF does not see the whole image
    /// (borders, masks); `false` reproduces scikit-image's `richardson_lucy`, which assumes
    /// `Aᵀ1 = 1`.
    pub normalize: bool,
    /// Constant added to the model `A x` before dividing (default 1e-12, as scikit-image).
    /// A larger value is a known constant background `b` (e.g. the sky level) in the Poisson
    /// model `y ~ P(A x + b)`: `x` is then the light above that background and positivity
    /// keeps the estimate at or above it (add `b` back to get the image).
    pub eps: f64,
    /// A known background image `b_p` added to `eps` pixel by pixel (default `None`): the
    /// model becomes `y ~ P(A x + ε + b)`, e.g. a sky that varies across the field. Must have
    /// the data's shape, be finite and `ε + b ≥ 0`.
    pub background: Option<Array2<f64>>,
    /// Constant starting image (default: mean of the unmasked data, clamped to ≥ 1e-12).
    /// scikit-image starts from 0.5.
    pub init: Option<f64>,
    /// Biggs–Andrews vector extrapolation (default `false`).
    pub accelerate: bool,
    /// Damping: ratios `y/(Ax)` are clamped to `[1/d, d]` when `Some(d)`, `d > 1`
    /// (limits noise amplification in the first iterations; default `None`).
    pub damping: Option<f64>,
    /// Clamp the iterate to `x ≥ 0` after each step (default `true`; the plain iteration keeps
    /// positivity by itself for non-negative data and PSF).
    pub positivity: bool,
    /// Stopping rules, in `f64` like the other fields (converted to the iteration's
    /// precision). The relative change is `‖x_{k+1} − x_k‖ / ‖x_{k+1}‖`; RL reports no
    /// objective, and as its residual the discrepancy statistic when
    /// [`RlParams::discrepancy`] is set. Default [`RlParams::default_stop`]: exactly 30
    /// iterations.
    pub stop: StopCriteria<f64>,
    /// Stop by the discrepancy principle under a Poisson–Gaussian noise model (default
    /// `None`: the iteration count alone regularises). See [`Discrepancy`].
    pub discrepancy: Option<Discrepancy>,
}

/// The discrepancy-principle stop of Richardson–Lucy (Morozov 1966; for RL under Poisson
/// noise see Bertero, Boccacci, Talenti, Zanella & Zanni, Inverse Problems 26, 2010): with
/// `m = A v + ε` the model at the point an iteration starts from and the noise variance
/// `σ²_p = noise.variance(m_p + level_offset)` ([`NoiseModel`]), the statistic
///
/// ```text
/// D = (1/N) Σ_{valid p} (y_p − m_p)² / σ²_p
/// ```
///
/// falls as the iterations fit the data; RL stops (after that iteration's update) at the
/// first `D ≤ tau`, when the residual is as large as the noise. `N` counts the valid pixels.
/// Without noise in the data the criterion never fires and `stop.max_iters` ends the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discrepancy {
    /// Variance model of the data, in the data units of the level `m + level_offset`.
    pub noise: NoiseModel,
    /// Added to the solver's model before evaluating the variance (when the solver sees
    /// offset data `y − o`, pass `o`).
    pub level_offset: f64,
    /// Threshold on `D` (1 = the expected value for the true image; > 0).
    pub tau: f64,
}

impl Default for RlParams {
    fn default() -> Self {
        RlParams {
            boundary: Boundary::Same,
            normalize: true,
            eps: 1e-12,
            background: None,
            init: None,
            accelerate: false,
            damping: None,
            positivity: true,
            stop: Self::default_stop(),
            discrepancy: None,
        }
    }
}

impl RlParams {
    /// The default stopping rules: `max_iters = 30` (the CLI's default), `rel_tol = 0` (no
    /// early stop: the iteration count is RL's regularisation parameter), the rest as in
    /// [`StopCriteria::default`].
    pub fn default_stop() -> StopCriteria<f64> {
        Self::iterations(30)
    }

    /// Stopping rules that run exactly `n` iterations (`rel_tol = 0`; an observer can still
    /// interrupt).
    pub fn iterations(n: usize) -> StopCriteria<f64> {
        StopCriteria {
            max_iters: n,
            rel_tol: 0.0,
            ..StopCriteria::default()
        }
    }
}

/// Richardson–Lucy deconvolution (Richardson 1972, Lucy 1974):
///
/// ```text
/// x_{k+1} = x_k · Aᵀ( M ⊙ y / (A x_k + ε) ) / Aᵀ(M)
/// ```
///
/// with `A` the convolution by the PSF under [`RlParams::boundary`] and `M` the 0/1 validity
/// mask (masked pixels contribute nothing: neither their value nor their model). This is the
/// EM algorithm for `y ~ Poisson(A x)`; for a PSF with unit sum the reblurred model keeps the
/// data flux, `Σ M⊙A x_{k+1} = Σ M⊙y` (up to ε). With [`RlParams::accelerate`], the update is
/// applied at the extrapolated point `v_k = x_k + α_k (x_k − x_{k−1})`, where
/// `α_k = ⟨g_{k−1}, g_{k−2}⟩ / ⟨g_{k−2}, g_{k−2}⟩ ∈ [0, 1)` and `g_k = x_{k+1} − v_k`
/// (Biggs & Andrews, Appl. Opt. 36(8), 1997). Each step costs two convolutions.
///
/// Generic over the precision `R` (`f64` by default, or `f32`: half the memory and about
/// 1.6× faster convolutions, for data that is itself single precision, such as most FITS
/// images). Every buffer is allocated once, in [`RichardsonLucy::new`]; the per-pixel work
/// (ratio, update, change statistics) runs inside the two convolutions, row by row on the
/// rayon pool ([`Conv2d::apply_into_then`]), and the reductions (step length, relative
/// change) are accumulated in `f64`.
pub struct RichardsonLucy<R: Real = f64> {
    a: Conv2d<R>,
    /// data with masked pixels set to 0
    y: Array2<R>,
    /// validity mask (`None`: every pixel valid)
    m: Option<Array2<bool>>,
    /// `ε + b` per pixel when a background image is given
    bg: Option<Array2<R>>,
    /// number of valid pixels
    nvalid: usize,
    /// `Aᵀ(M)` when normalising
    norm: Option<Array2<R>>,
    p: RlParams,
    x: Array2<R>,
    /// next iterate (work buffer)
    xn: Array2<R>,
    /// the ratio `M ⊙ y / (A v + ε)`
    ax: Array2<R>,
    /// acceleration state: previous iterate, extrapolated point, last two steps
    acc: Option<AccelState<R>>,
}

struct AccelState<R> {
    x_prev: Array2<R>,
    v: Array2<R>,
    g1: Array2<R>,
    g2: Array2<R>,
    /// number of steps stored in `g1`, `g2` (0, 1 or 2)
    have: usize,
}

impl<R: Real> std::fmt::Debug for RichardsonLucy<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RichardsonLucy")
            .field("shape", &self.y.dim())
            .field("params", &self.p)
            .finish()
    }
}

/// Elements per parallel task of the per-pixel passes.
const CHUNK: usize = 1 << 14;

fn sl<R>(a: &Array2<R>) -> &[R] {
    a.as_slice().expect("owned standard-layout array")
}

fn sl_mut<R>(a: &mut Array2<R>) -> &mut [R] {
    a.as_slice_mut().expect("owned standard-layout array")
}

/// Parallel `Σ f(a_i, b_i)` in `f64`.
fn par_sum2<R: Real>(a: &[R], b: &[R], f: impl Fn(f64, f64) -> f64 + Sync) -> f64 {
    a.par_chunks(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .map(|(ca, cb)| {
            ca.iter()
                .zip(cb)
                .map(|(&x, &y)| f(x.to_f64_lossless(), y.to_f64_lossless()))
                .sum::<f64>()
        })
        .sum()
}

impl<R: Real> RichardsonLucy<R> {
    /// Set up the iteration for data `y`, PSF `psf` and optional validity mask (`true` =
    /// use the pixel). Errors on empty or non-finite inputs (masked pixels may hold NaN), a
    /// negative PSF entry, bad parameters or a PSF larger than allowed by the boundary.
    pub fn new(
        y: ArrayView2<R>,
        psf: ArrayView2<R>,
        mask: Option<ArrayView2<bool>>,
        p: RlParams,
    ) -> Result<Self> {
        check_inputs(y, psf, mask)?;
        if psf.iter().any(|&v| v < R::zero()) {
            return Err(Error::param(
                "psf",
                "Richardson–Lucy needs a non-negative PSF",
            ));
        }
        if !(p.eps >= 0.0 && p.eps.is_finite()) {
            return Err(Error::param("eps", "must be finite and ≥ 0"));
        }
        if let Some(b) = &p.background {
            if b.dim() != y.dim() {
                return Err(Error::shape("background", y.shape(), b.shape()));
            }
            if !b.iter().all(|v| v.is_finite() && v + p.eps >= 0.0) {
                return Err(Error::param(
                    "background",
                    "must be finite with eps + background ≥ 0 everywhere",
                ));
            }
        }
        if let Some(d) = p.damping {
            if !(d > 1.0 && d.is_finite()) {
                return Err(Error::param("damping", "must be finite and > 1"));
            }
        }
        if matches!(p.boundary, Boundary::Full | Boundary::Valid) {
            return Err(Error::param(
                "boundary",
                "Richardson–Lucy needs a size-preserving boundary (Same, Reflect, Circular)",
            ));
        }
        if let Some(d) = p.discrepancy {
            let n = d.noise;
            let finite_non_negative = |v: f64| v >= 0.0 && v.is_finite();
            let ok = d.tau > 0.0
                && d.tau.is_finite()
                && finite_non_negative(n.var0)
                && finite_non_negative(n.slope)
                && d.level_offset.is_finite()
                && n.var0 + n.slope > 0.0;
            if !ok {
                return Err(Error::param(
                    "discrepancy",
                    format!(
                        "needs tau > 0 and a finite non-negative, non-zero noise model, got {d:?}"
                    ),
                ));
            }
        }
        let (n0, n1) = y.dim();
        let a = Conv2d::new([n0, n1], psf, p.boundary)?;
        let (yd, m) = masked_data(y, mask);
        let norm = if p.normalize {
            let ones: Array2<R> = mask_weights(m.as_ref(), (n0, n1));
            let mut an = Array2::<R>::zeros((n0, n1));
            a.adjoint_into(ones.view().into_dyn(), an.view_mut().into_dyn());
            Some(an)
        } else {
            None
        };
        let nm = m
            .as_ref()
            .map_or(n0 * n1, |m| m.iter().filter(|&&b| b).count());
        let x0 = match p.init {
            Some(v) => {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(Error::param("init", "must be finite and > 0"));
                }
                v
            }
            None => {
                let total: f64 = yd.iter().map(|v| v.to_f64_lossless()).sum();
                let mean = if nm > 0 { total / nm as f64 } else { 0.0 };
                mean.max(1e-12)
            }
        };
        let zeros = || crate::alloc::zeros2::<R>((n0, n1));
        let acc = p.accelerate.then(|| AccelState {
            x_prev: zeros(),
            v: zeros(),
            g1: zeros(),
            g2: zeros(),
            have: 0,
        });
        let bg = p
            .background
            .as_ref()
            .map(|b| b.mapv(|v| real::<R>(v + p.eps)));
        Ok(RichardsonLucy {
            a,
            y: yd,
            m,
            bg,
            nvalid: nm,
            norm,
            x: Array2::from_elem((n0, n1), real::<R>(x0)),
            xn: zeros(),
            ax: zeros(),
            acc,
            p,
        })
    }

    /// The current estimate.
    pub fn x(&self) -> ArrayView2<'_, R> {
        self.x.view()
    }

    /// Consume the solver and return the estimate.
    pub fn into_x(self) -> Array2<R> {
        self.x
    }
}

/// `(row, first column, Σ (xn − x)², Σ xn², all finite)` of one output segment.
type SegStats = (usize, usize, f64, f64, bool);

/// What one RL update measured: `Σ (xn − x)²`, `Σ xn²`, all finite, and the discrepancy sum
/// `Σ (y − A v − ε)² / σ²` (0 without [`RlParams::discrepancy`]).
struct UpdateStats {
    dn: f64,
    nn: f64,
    finite: bool,
    chi2: f64,
}

/// One plain RL update evaluated at `v`, written to `xn`. The ratio (and the discrepancy
/// sum) is computed inside the forward convolution and the update inside the adjoint one
/// (per-row epilogues): no separate pass over the image.
#[allow(clippy::too_many_arguments)]
fn rl_update<R: Real>(
    a: &Conv2d<R>,
    p: &RlParams,
    y: &Array2<R>,
    m: Option<&Array2<bool>>,
    norm: Option<&Array2<R>>,
    bg: Option<&Array2<R>>,
    v: &Array2<R>,
    x: &Array2<R>,
    ax: &mut Array2<R>,
    xn: &mut Array2<R>,
) -> UpdateStats {
    let (n0, n1) = y.dim();
    let eps = real::<R>(p.eps);
    let bgs = bg.map(sl);
    let damp = p.damping.map(|d| (real::<R>(1.0 / d), real::<R>(d)));
    let (ys, ms) = (sl(y), m.map(sl));
    let chi_parts: Mutex<Vec<(usize, usize, f64)>> = Mutex::new(Vec::new());
    a.apply_into_then(v.view(), ax.view_mut(), &|i, j0, seg: &mut [R]| {
        let r = i * n1 + j0..i * n1 + j0 + seg.len();
        let yr = &ys[r.clone()];
        if let Some(d) = p.discrepancy {
            // Σ (y − m)² / σ²(m) over the valid pixels, m = A v + ε (+ b), before the ratio
            let (v0, sl_) = (d.noise.var0, d.noise.slope);
            let mut chi = 0.0f64;
            for (k, (&av, &yv)) in seg.iter().zip(yr).enumerate() {
                if ms.is_some_and(|ms| !ms[r.start + k]) {
                    continue;
                }
                let b = bgs.map_or(p.eps, |b| b[r.start + k].to_f64_lossless());
                let m = av.to_f64_lossless() + b;
                let res = yv.to_f64_lossless() - m;
                chi += res * res / (v0 + sl_ * (m + d.level_offset).max(0.0)).max(1e-300);
            }
            chi_parts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((i, j0, chi));
        }
        // one simple loop per case, so that the divisions vectorise
        match bgs {
            None => {
                for (a, &yv) in seg.iter_mut().zip(yr) {
                    *a = yv / (*a + eps);
                }
            }
            Some(b) => {
                for ((a, &yv), &bv) in seg.iter_mut().zip(yr).zip(&b[r.clone()]) {
                    *a = yv / (*a + bv);
                }
            }
        }
        if let Some((lo, hi)) = damp {
            for a in seg.iter_mut() {
                *a = a.max(lo).min(hi);
            }
        }
        if let Some(ms) = ms {
            for (a, &ok) in seg.iter_mut().zip(&ms[r]) {
                if !ok {
                    *a = R::zero();
                }
            }
        }
    })
    .expect("shapes checked");
    let pos = p.positivity;
    let tiny = real::<R>(1e-12);
    let (vs, xs, ns) = (sl(v), sl(x), norm.map(sl));
    // statistics per finished segment, summed in a fixed order afterwards (deterministic)
    let parts: Mutex<Vec<SegStats>> = Mutex::new(Vec::with_capacity(n0));
    a.adjoint_into_then(ax.view(), xn.view_mut(), &|i, j0, seg: &mut [R]| {
        let r = i * n1 + j0..i * n1 + j0 + seg.len();
        let (vr, xr) = (&vs[r.clone()], &xs[r.clone()]);
        let nr = ns.map(|n| &n[r]);
        // the update, one branch-free loop per case (vectorisable) ...
        match nr {
            Some(n) => {
                for ((o, &vj), &nj) in seg.iter_mut().zip(vr).zip(n) {
                    *o = if nj > tiny { vj * *o / nj } else { vj };
                }
            }
            None => {
                for (o, &vj) in seg.iter_mut().zip(vr) {
                    *o *= vj;
                }
            }
        }
        if pos {
            for o in seg.iter_mut() {
                *o = o.max(R::zero());
            }
        }
        // ... and the statistics in four independent f64 accumulators
        let (mut dn, mut nn) = ([0.0f64; 4], [0.0f64; 4]);
        let mut fin = true;
        let (sc, xc) = (seg.chunks_exact(4), xr.chunks_exact(4));
        let (srem, xrem) = (sc.remainder(), xc.remainder());
        for (a4, o4) in sc.zip(xc) {
            for l in 0..4 {
                let (a, o) = (a4[l].to_f64_lossless(), o4[l].to_f64_lossless());
                dn[l] += (a - o) * (a - o);
                nn[l] += a * a;
                fin &= a.is_finite();
            }
        }
        for (a, o) in srem.iter().zip(xrem) {
            let (a, o) = (a.to_f64_lossless(), o.to_f64_lossless());
            dn[0] += (a - o) * (a - o);
            nn[0] += a * a;
            fin &= a.is_finite();
        }
        let (dn, nn) = (dn.iter().sum::<f64>(), nn.iter().sum::<f64>());
        parts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, j0, dn, nn, fin));
    })
    .expect("shapes checked");
    let mut parts = parts.into_inner().unwrap_or_else(|e| e.into_inner());
    parts.sort_unstable_by_key(|p| (p.0, p.1));
    let (dn, nn, finite) = parts.iter().fold((0.0, 0.0, true), |acc, p| {
        (acc.0 + p.2, acc.1 + p.3, acc.2 && p.4)
    });
    let mut chi = chi_parts.into_inner().unwrap_or_else(|e| e.into_inner());
    chi.sort_unstable_by_key(|p| (p.0, p.1));
    UpdateStats {
        dn,
        nn,
        finite,
        chi2: chi.iter().map(|p| p.2).sum(),
    }
}

impl<R: Real> IterativeSolver for RichardsonLucy<R> {
    type Real = R;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(R::iterate_view(self.x.view().into_dyn()))
    }
    fn step(&mut self) -> Result<StepInfo<R>> {
        let RichardsonLucy {
            a,
            y,
            m,
            bg,
            nvalid,
            norm,
            p,
            x,
            xn,
            ax,
            acc,
        } = self;
        let UpdateStats {
            dn,
            nn,
            finite,
            chi2,
        } = match acc {
            Some(st) if st.have == 2 => {
                // extrapolated point v = max(x + α (x − x_prev), 0)
                let num = par_sum2(sl(&st.g1), sl(&st.g2), |a, b| a * b);
                let den = par_sum2(sl(&st.g2), sl(&st.g2), |a, b| a * b);
                let alpha = if den > 0.0 {
                    (num / den).clamp(0.0, 0.99)
                } else {
                    0.0
                };
                let al = real::<R>(alpha);
                let pos = p.positivity;
                let (xs, xps) = (sl(x), sl(&st.x_prev));
                sl_mut(&mut st.v)
                    .par_chunks_mut(CHUNK)
                    .enumerate()
                    .for_each(|(ci, cv)| {
                        let o = ci * CHUNK;
                        for (i, d) in cv.iter_mut().enumerate() {
                            let e = xs[o + i] + al * (xs[o + i] - xps[o + i]);
                            *d = if pos { e.max(R::zero()) } else { e };
                        }
                    });
                rl_update(
                    a,
                    p,
                    y,
                    m.as_ref(),
                    norm.as_ref(),
                    bg.as_ref(),
                    &st.v,
                    x,
                    ax,
                    xn,
                )
            }
            _ => rl_update(
                a,
                p,
                y,
                m.as_ref(),
                norm.as_ref(),
                bg.as_ref(),
                x,
                x,
                ax,
                xn,
            ),
        };
        if !finite {
            return Err(Error::Numerical(
                "Richardson–Lucy iterate became non-finite".into(),
            ));
        }
        if let Some(st) = acc {
            // g = xn − v (v = x when not extrapolated); g2 ← g1 ← g
            std::mem::swap(&mut st.g1, &mut st.g2);
            let v = if st.have == 2 { &st.v } else { &*x };
            let (vs, xns) = (sl(v), sl(xn));
            sl_mut(&mut st.g1)
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(ci, cg)| {
                    let o = ci * CHUNK;
                    for (i, g) in cg.iter_mut().enumerate() {
                        *g = xns[o + i] - vs[o + i];
                    }
                });
            st.have = (st.have + 1).min(2);
            // x_prev ← x ← xn (xn becomes the next work buffer)
            std::mem::swap(&mut st.x_prev, x);
            std::mem::swap(x, xn);
        } else {
            std::mem::swap(x, xn);
        }
        Ok(StepInfo {
            objective: None,
            rel_change: real::<R>(dn.sqrt() / nn.sqrt().max(1e-300)),
            residual: p
                .discrepancy
                .map(|_| real::<R>(chi2 / (*nvalid).max(1) as f64)),
        })
    }
}

/// Run [`RichardsonLucy`] until [`RlParams::stop`] holds or `observer` interrupts (with
/// [`RlParams::discrepancy`], its `tau` is the residual tolerance unless `stop.residual_tol`
/// is set, and the report's stop reason is `Residual` when it fired); the
/// observer sees the current estimate after every iteration (pass
/// [`&mut NoObserver`](crate::iter::NoObserver) for none). Returns the estimate and the run's
/// [`Report`].
///
/// ```
/// use sparseinv_solvers::deconv::{richardson_lucy, RlParams};
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// use ndarray::{Array2, Ix2};
/// // a point source blurred by a 3 × 3 box: RL sharpens it back towards the point
/// let mut x = Array2::<f64>::from_elem((9, 9), 0.1);
/// x[[4, 4]] = 10.0;
/// let k = Array2::<f64>::from_elem((3, 3), 1.0 / 9.0);
/// let a = Conv2d::new([9, 9], k.view(), Boundary::Same).unwrap();
/// let y = a.apply(x.view().into_dyn()).unwrap().into_dimensionality::<Ix2>().unwrap();
/// let p = RlParams { stop: RlParams::iterations(50), ..RlParams::default() };
/// let (est, report) = richardson_lucy(y.view(), k.view(), None, &p, &mut NoObserver).unwrap();
/// assert_eq!(report.iterations, 50);
/// assert!(est[[4, 4]] > 2.0 * y[[4, 4]]);
/// ```
pub fn richardson_lucy<R: Real>(
    y: ArrayView2<R>,
    psf: ArrayView2<R>,
    mask: Option<ArrayView2<bool>>,
    params: &RlParams,
    observer: &mut dyn Observer<R>,
) -> Result<(Array2<R>, Report<R>)> {
    let mut crit = crate::krylov::stop_as::<R>(&params.stop);
    if let (Some(d), None) = (params.discrepancy, crit.residual_tol) {
        crit.residual_tol = Some(real::<R>(d.tau));
    }
    crit.validate()?;
    let mut s = RichardsonLucy::new(y, psf, mask, params.clone())?;
    let rep = run(&mut s, &crit, observer)?;
    Ok((s.into_x(), rep))
}
