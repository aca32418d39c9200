//! Richardson–Lucy deconvolution on the shared iteration framework.

use super::{check_inputs, masked_data};
use crate::error::{Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::op::{Boundary, Conv2d, LinearOperator};
use ndarray::{Array2, ArrayView2, Zip};

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
}

impl Default for RlParams {
    fn default() -> Self {
        RlParams {
            boundary: Boundary::Same,
            normalize: true,
            eps: 1e-12,
            init: None,
            accelerate: false,
            damping: None,
            positivity: true,
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
pub struct RichardsonLucy {
    a: Conv2d<f64>,
    y: Array2<f64>,
    m: Array2<f64>,
    norm: Array2<f64>,
    p: RlParams,
    x: Array2<f64>,
    x_prev: Option<Array2<f64>>,
    g1: Option<Array2<f64>>,
    g2: Option<Array2<f64>>,
}

impl std::fmt::Debug for RichardsonLucy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RichardsonLucy")
            .field("shape", &self.y.dim())
            .field("params", &self.p)
            .finish()
    }
}

impl RichardsonLucy {
    /// Set up the iteration for data `y`, PSF `psf` and optional validity mask (`true` =
    /// use the pixel). Errors on empty or non-finite inputs (masked pixels may hold NaN), a
    /// negative PSF entry, bad parameters or a PSF larger than allowed by the boundary.
    pub fn new(
        y: ArrayView2<f64>,
        psf: ArrayView2<f64>,
        mask: Option<ArrayView2<bool>>,
        p: RlParams,
    ) -> Result<Self> {
        check_inputs(y, psf, mask)?;
        if psf.iter().any(|&v| v < 0.0) {
            return Err(Error::param(
                "psf",
                "Richardson–Lucy needs a non-negative PSF",
            ));
        }
        if !(p.eps >= 0.0 && p.eps.is_finite()) {
            return Err(Error::param("eps", "must be finite and ≥ 0"));
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
        let (n0, n1) = y.dim();
        let a = Conv2d::new([n0, n1], psf, p.boundary)?;
        let (yd, m) = masked_data(y, mask);
        let norm = if p.normalize {
            let an = a.adjoint(m.view().into_dyn())?;
            an.into_dimensionality().expect("2-D")
        } else {
            Array2::ones((n0, n1))
        };
        let nm = m.sum();
        let x0 = match p.init {
            Some(v) => {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(Error::param("init", "must be finite and > 0"));
                }
                v
            }
            None => {
                let mean = if nm > 0.0 { yd.sum() / nm } else { 0.0 };
                mean.max(1e-12)
            }
        };
        Ok(RichardsonLucy {
            a,
            y: yd,
            m,
            norm,
            x: Array2::from_elem((n0, n1), x0),
            x_prev: None,
            g1: None,
            g2: None,
            p,
        })
    }

    /// The current estimate.
    pub fn x(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }

    /// Consume the solver and return the estimate.
    pub fn into_x(self) -> Array2<f64> {
        self.x
    }

    /// One plain RL update evaluated at `v`.
    fn update(&self, v: &Array2<f64>) -> Array2<f64> {
        let av = self
            .a
            .apply(v.view().into_dyn())
            .expect("shapes checked")
            .into_dimensionality::<ndarray::Ix2>()
            .expect("2-D");
        let eps = self.p.eps;
        let damp = self.p.damping;
        let ratio = Zip::from(&self.y)
            .and(&self.m)
            .and(&av)
            .map_collect(|&y, &m, &ax| {
                if m == 0.0 {
                    return 0.0;
                }
                let r = y / (ax + eps);
                match damp {
                    Some(d) => r.clamp(1.0 / d, d),
                    None => r,
                }
            });
        let back = self
            .a
            .adjoint(ratio.view().into_dyn())
            .expect("shapes checked")
            .into_dimensionality::<ndarray::Ix2>()
            .expect("2-D");
        let pos = self.p.positivity;
        Zip::from(v)
            .and(&back)
            .and(&self.norm)
            .map_collect(|&x, &b, &n| {
                let nx = if n > 1e-12 { x * b / n } else { x };
                if pos {
                    nx.max(0.0)
                } else {
                    nx
                }
            })
    }
}

impl IterativeSolver for RichardsonLucy {
    type Real = f64;

    fn step(&mut self) -> Result<StepInfo<f64>> {
        // the extrapolated point (accelerated), or the iterate itself (no copy)
        let extrapolated = match (&self.x_prev, &self.g1, &self.g2) {
            (Some(xp), Some(g1), Some(g2)) if self.p.accelerate => {
                let den: f64 = g2.iter().map(|a| a * a).sum();
                let num: f64 = g1.iter().zip(g2.iter()).map(|(a, b)| a * b).sum();
                let alpha = if den > 0.0 {
                    (num / den).clamp(0.0, 0.99)
                } else {
                    0.0
                };
                Some(Zip::from(&self.x).and(xp).map_collect(|&x, &p| {
                    let e = x + alpha * (x - p);
                    if self.p.positivity {
                        e.max(0.0)
                    } else {
                        e
                    }
                }))
            }
            _ => None,
        };
        let v = extrapolated.as_ref().unwrap_or(&self.x);
        let xn = self.update(v);
        let g = self.p.accelerate.then(|| &xn - v);
        if g.is_some() {
            self.g2 = self.g1.take();
            self.g1 = g;
        }
        let (mut dn, mut nn, mut finite) = (0.0f64, 0.0f64, true);
        for (a, b) in xn.iter().zip(self.x.iter()) {
            dn += (a - b) * (a - b);
            nn += a * a;
            finite &= a.is_finite();
        }
        if !finite {
            return Err(Error::Numerical(
                "Richardson–Lucy iterate became non-finite".into(),
            ));
        }
        self.x_prev = Some(std::mem::replace(&mut self.x, xn));
        Ok(StepInfo {
            objective: None,
            rel_change: dn.sqrt() / nn.sqrt().max(1e-300),
            residual: None,
        })
    }
}

/// Run [`RichardsonLucy`] for at most `iters` iterations (relative-change tolerance `tol`,
/// 0 to always run `iters`), with an optional observer. Returns the estimate and the report.
pub fn richardson_lucy(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mask: Option<ArrayView2<bool>>,
    params: RlParams,
    iters: usize,
    tol: f64,
    observer: Option<&mut dyn Observer<f64>>,
) -> Result<(Array2<f64>, Report<f64>)> {
    let mut s = RichardsonLucy::new(y, psf, mask, params)?;
    let crit = StopCriteria {
        max_iters: iters,
        rel_tol: tol,
        ..StopCriteria::default()
    };
    let mut none = NoObserver;
    let obs: &mut dyn Observer<f64> = match observer {
        Some(o) => o,
        None => &mut none,
    };
    let rep = run(&mut s, &crit, obs)?;
    Ok((s.into_x(), rep))
}
