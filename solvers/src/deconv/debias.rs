//! Photometric debiasing of any deconvolved image by its significant starlet coefficients
//! (Starck's multi-resolution support, the third step of Akhaury et al. 2024, arXiv
//! 2405.07842).

use super::{check_inputs, fill_masked_median, mask_weights, masked_data};
use crate::error::{check_finite, Error, Result};
use crate::op::{
    op_norm, starlet_noise_std, Boundary, Compose, Conv2d, Diagonal, LinearOperator, NormEstimate,
    Starlet,
};
use ndarray::{Array2, Array3, ArrayView2, Axis, Zip};

/// Which image the significant coefficients of [`debias_active`] are detected on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detect {
    /// The estimate's prediction of the data, `H P₊(x̂)` (noise-free, so the support does not
    /// select the coefficients that the noise pushed up: no selection bias). Default.
    #[default]
    Model,
    /// The observation `y` itself (the classic multi-resolution support). Detecting on noisy
    /// data keeps the coefficients that noise raised above the threshold and drops those it
    /// lowered, so the re-fit inherits a positive flux bias on faint sources (+2.5 % median in
    /// 2-FWHM apertures at SNR 5–30 on held-out simulated galaxies, against +0.2 % with
    /// [`Detect::Model`]).
    Data,
}

/// Options of [`debias_active`].
#[derive(Debug, Clone, PartialEq)]
pub struct DebiasParams {
    /// Number of starlet wavelet scales `J` (default 4); the coarse plane `c_J` is always in
    /// the data term.
    pub scales: usize,
    /// Significance threshold `κ` in noise units (default 3): coefficient `(j, p)` of a
    /// wavelet plane `j ≥ 2` is active when `|W_j y (p)| > κ σ σ_j`; on the finest plane the
    /// threshold is `κ + 1` (Starck & Murtagh's convention: the finest scale holds most of the
    /// false detections).
    pub kappa: f64,
    /// Threshold of the finest plane; `None` (default): `κ + 1`.
    pub kappa_finest: Option<f64>,
    /// Where the significant coefficients are detected (default [`Detect::Model`]).
    pub detect: Detect,
    /// Maximum number of iterations (default 30: the iteration is stopped early on purpose,
    /// see [`debias_active`]).
    pub max_iters: usize,
    /// Nesterov/FISTA acceleration (default `false`).
    pub accelerate: bool,
    /// Stop when `‖x_{k+1} − x_k‖ ≤ rel_tol ‖x_{k+1}‖` (default 10⁻⁴).
    pub rel_tol: f64,
    /// Step in units of `1/L`, `L = ‖M W V H‖²` (default 1; must be in `(0, 1]` for the
    /// accelerated projected-gradient iteration to converge).
    pub step: f64,
    /// Project onto `x ≥ 0` after every step (default `true`).
    pub positivity: bool,
    /// Boundary model of the blur (default [`Boundary::Same`]: zero beyond the edges).
    pub boundary: Boundary,
}

impl Default for DebiasParams {
    fn default() -> Self {
        DebiasParams {
            scales: 4,
            kappa: 3.0,
            kappa_finest: None,
            detect: Detect::Model,
            max_iters: 30,
            accelerate: false,
            rel_tol: 1e-4,
            step: 1.0,
            positivity: true,
            boundary: Boundary::Same,
        }
    }
}

/// The output of [`debias_active`].
#[derive(Debug, Clone)]
pub struct DebiasResult {
    /// The debiased image.
    pub x: Array2<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Fraction of active coefficients on each wavelet plane `w_1 … w_J`.
    pub active_fraction: Vec<f64>,
    /// `‖M ⊙ W(V ⊙ (y − H x))‖` (the active residual, coarse plane included) before the
    /// first iteration and after each one.
    pub residual: Vec<f64>,
    /// Why the iteration stopped: `"rel_tol"` or `"max_iters"`.
    pub stop: &'static str,
    /// The step `μ = step / L` used.
    pub step: f64,
}

/// Re-fit the significant structures of a deconvolved image `estimate` to the data `y`:
/// photometric debiasing for estimates that look right but are biased (learned networks,
/// regularised or early-stopped solvers).
///
/// With the starlet transform `W` (`J` wavelet planes `W_j` and the coarse plane), the PSF
/// blur `H` and the multi-resolution support of the estimate's prediction of the data
/// `d = H P₊(x̂)` (default, [`Detect::Model`]; or of the observation `d = y`,
/// [`Detect::Data`], the classic choice, which is biased: see [`Detect`])
///
/// ```text
/// M_j(p) = 1  if |W_j d (p)| > κ_j σ σ_j   (j = 1..J),      M_{J+1} = 1 (coarse plane kept),
/// ```
///
/// (`κ_1 = κ + 1` unless [`DebiasParams::kappa_finest`] says otherwise, `κ_j = κ` for `j ≥ 2`, `σ` the noise standard deviation of `y`, `σ_j` the
/// starlet noise level of plane `j` for unit white noise, [`starlet_noise_std`]), it
/// minimises, from `x₀ = estimate`,
///
/// ```text
/// min_x  f(x) = ½ ‖ M ⊙ W( V ⊙ (y − H x) ) ‖²   subject to  x ≥ 0
/// ```
///
/// (`V` the 0/1 mask of valid pixels: masked pixels carry no residual) by projected gradient
/// steps (optionally accelerated as in FISTA, Beck & Teboulle 2009):
///
/// ```text
/// x_{k+1} = P₊( z_k + μ Hᵀ V ⊙ Wᵀ[ M ⊙ W( V ⊙ (y − H z_k) ) ] ),   μ = step / ‖M W V H‖²,
/// z_{k+1} = x_{k+1}     (accelerated: + (t_k − 1)/t_{k+1} (x_{k+1} − x_k))
/// ```
///
/// (`P₊` the projection onto `x ≥ 0`, skipped when [`DebiasParams::positivity`] is off; the
/// norm by power iteration). The residual is thus fitted only where the data hold significant
/// structure, plus its whole coarse scale, so the photometry of detected sources is driven to
/// the data while the noise (insignificant coefficients) is not re-injected. With `κ = 0`
/// every coefficient is active and the minimisers are those of `½‖V ⊙ (Hx − y)‖²`, `x ≥ 0`.
///
/// Why `Wᵀ` and not the reconstruction `W⁻¹` of the classic multi-resolution-support
/// iteration `x ← P₊(x + μ Hᵀ W⁻¹[M ⊙ W(y − Hx)])` (Starck & Murtagh): `W⁻¹ M W` is neither
/// symmetric nor positive semi-definite, so that iteration is not the gradient of any
/// objective and is not guaranteed to converge; on a 32² test field it stalled with the step
/// halved to 3·10⁻⁸ and a growing residual. With `Wᵀ` it is the gradient of the convex `f`,
/// and it converges to a minimiser.
///
/// Stopping rule: the relative change `‖x_{k+1} − x_k‖ / ‖x_{k+1}‖ ≤ rel_tol`, or
/// `max_iters`. The default (30 plain gradient steps) stops early on purpose: the first steps
/// fix the well-measured low frequencies, where the photometric bias lives (`|ĥ| ≈ 1`), while
/// running to convergence deconvolves the noise inside the active coefficients without any
/// regularisation. On 90 held-out simulated galaxies (`scripts/galaxy`) after
/// Richardson–Lucy, 30 plain steps left the NMSE better than the start in every SNR bin,
/// where 100 accelerated steps doubled it at SNR < 30.
///
/// Assumptions: `psf` sums to 1 (flux is preserved) with its centre at `(h/2, w/2)`; `y` is
/// background-subtracted; `sigma > 0` is the noise standard deviation of `y` (e.g.
/// [`estimate_noise_sigma`](super::estimate_noise_sigma)). Masked pixels (`mask = false`)
/// are filled with the local median for the support detection only.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::deconv::{debias_active, DebiasParams};
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// // a Gaussian source blurred by a 5×5 box; the "estimate" is 20 % too faint
/// let truth = Array2::from_shape_fn((40, 40), |(i, j)| {
///     let r2 = (i as f64 - 20.0).powi(2) + (j as f64 - 19.0).powi(2);
///     100.0 * (-r2 / 8.0).exp()
/// });
/// let psf = Array2::from_elem((5, 5), 1.0 / 25.0);
/// let h = Conv2d::new([40, 40], psf.view(), Boundary::Same).unwrap();
/// let y: Array2<f64> = h.apply(truth.view().into_dyn()).unwrap().into_dimensionality().unwrap();
/// let est = &truth * 0.8;
/// let r = debias_active(y.view(), psf.view(), None, est.view(), 0.1, &DebiasParams::default())
///     .unwrap();
/// let flux = |a: &Array2<f64>| a.sum();
/// assert!((flux(&r.x) / flux(&truth) - 1.0).abs() < 0.01);
/// ```
pub fn debias_active(
    y: ArrayView2<f64>,
    psf: ArrayView2<f64>,
    mask: Option<ArrayView2<bool>>,
    estimate: ArrayView2<f64>,
    sigma: f64,
    p: &DebiasParams,
) -> Result<DebiasResult> {
    check_inputs(y, psf, mask)?;
    if estimate.dim() != y.dim() {
        return Err(Error::shape("estimate", y.shape(), estimate.shape()));
    }
    check_finite("estimate", estimate.iter())?;
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(Error::param(
            "sigma",
            format!(
                "the noise standard deviation must be finite and > 0, got {sigma} (a noise-free \
                 image has no significance scale: give the noise level of the data)"
            ),
        ));
    }
    if !(p.kappa >= 0.0 && p.kappa.is_finite())
        || p.kappa_finest.is_some_and(|k| !(k >= 0.0 && k.is_finite()))
    {
        return Err(Error::param(
            "kappa",
            format!("must be finite and ≥ 0, got {}", p.kappa),
        ));
    }
    if !(p.step > 0.0 && p.step <= 1.0) {
        return Err(Error::param(
            "step",
            format!("must be in (0, 1] (units of 1/L), got {}", p.step),
        ));
    }
    if !(p.rel_tol >= 0.0 && p.rel_tol.is_finite()) {
        return Err(Error::param(
            "rel_tol",
            format!("must be finite and ≥ 0, got {}", p.rel_tol),
        ));
    }
    let (n0, n1) = y.dim();
    let jn = p.scales;
    let h = Conv2d::new([n0, n1], psf, p.boundary)?;
    let w = Starlet::<f64>::new([n0, n1], jn)?;
    let (yd, m) = masked_data(y, mask);
    let v: Array2<f64> = mask_weights(m.as_ref(), (n0, n1));
    // multi-resolution support, detected on the estimate's prediction of the data or on the
    // observation (masked pixels filled for detection)
    let valid = m
        .clone()
        .unwrap_or_else(|| Array2::from_elem((n0, n1), true));
    let filled = match p.detect {
        Detect::Model => h
            .apply(estimate.mapv(|v| v.max(0.0)).view().into_dyn())?
            .into_dimensionality()
            .expect("2-D"),
        Detect::Data if m.is_some() => fill_masked_median(y, valid.view(), 2)?,
        Detect::Data => yd.clone(),
    };
    let wy: Array3<f64> = w
        .apply(filled.view().into_dyn())?
        .into_dimensionality()
        .expect("3-D");
    let sj = starlet_noise_std(jn);
    let mut supp = Array3::<f64>::zeros(wy.dim());
    let mut active_fraction = Vec::with_capacity(jn);
    for (j, &s_j) in sj.iter().take(jn).enumerate() {
        let k = if j == 0 {
            p.kappa_finest.unwrap_or(p.kappa + 1.0)
        } else {
            p.kappa
        };
        let t = k * sigma * s_j;
        let mut count = 0usize;
        Zip::from(supp.index_axis_mut(Axis(0), j))
            .and(wy.index_axis(Axis(0), j))
            .for_each(|s, &c| {
                if c.abs() > t {
                    *s = 1.0;
                    count += 1;
                }
            });
        active_fraction.push(count as f64 / (n0 * n1) as f64);
    }
    supp.index_axis_mut(Axis(0), jn).fill(1.0);

    let (dm, dv) = (Diagonal::new(supp.into_dyn()), Diagonal::new(v.into_dyn()));
    let b = support_operator(&h, &w, &dm, &dv)?;
    // t = M ⊙ W(V ⊙ y)
    let target = dm.apply(w.apply(dv.apply(yd.view().into_dyn())?.view())?.view())?;
    // L = ‖B‖² by power iteration (5 % margin: the estimate approaches the norm from below)
    let norm = op_norm(
        &b,
        NormEstimate {
            max_iters: 50,
            tol: 1e-4,
            seed: 0,
        },
    );
    let lip = (1.05 * norm * norm).max(f64::MIN_POSITIVE);
    let mu = p.step / lip;
    // ∇f(x) = −Bᵀ(t − Bx), t = M ⊙ W(V ⊙ y); returns (−∇f, ‖t − Bx‖)
    let descent = |x: &Array2<f64>| -> Result<(Array2<f64>, f64)> {
        let r = &target - &b.apply(x.view().into_dyn())?;
        let res = r.iter().map(|a| a * a).sum::<f64>().sqrt();
        let g: Array2<f64> = b
            .adjoint(r.view().into_dyn())?
            .into_dimensionality()
            .expect("2-D");
        Ok((g, res))
    };
    let project = |x: &mut Array2<f64>| {
        if p.positivity {
            x.mapv_inplace(|a| a.max(0.0));
        }
    };
    // FISTA (Beck & Teboulle 2009) on f + ι_{x ≥ 0}
    let mut x = estimate.to_owned();
    project(&mut x);
    let mut z = x.clone();
    let mut t = 1.0f64;
    let mut residual = vec![descent(&x)?.1];
    let mut iterations = 0;
    let mut stop = "max_iters";
    while iterations < p.max_iters {
        let (g, _) = descent(&z)?;
        let mut xn = &z + &(&g * mu);
        project(&mut xn);
        iterations += 1;
        let tn = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let beta = if p.accelerate { (t - 1.0) / tn } else { 0.0 };
        z = Zip::from(&xn)
            .and(&x)
            .map_collect(|&a, &b| a + beta * (a - b));
        let dx = Zip::from(&xn)
            .and(&x)
            .fold(0.0, |a, &u, &w| a + (u - w) * (u - w))
            .sqrt();
        let nx = xn.iter().map(|a| a * a).sum::<f64>().sqrt();
        x = xn;
        t = tn;
        residual.push(descent(&x)?.1);
        if dx <= p.rel_tol * nx {
            stop = "rel_tol";
            break;
        }
    }
    Ok(DebiasResult {
        x,
        iterations,
        active_fraction,
        residual,
        stop,
        step: mu,
    })
}

/// `B x = M ⊙ W(V ⊙ H x)` from images `[rows, cols]` to starlet planes `[J + 1, rows, cols]`
/// (`M` the 0/1 support, coarse plane all ones; `V` the 0/1 valid-pixel mask), with
/// `Bᵀ c = Hᵀ(V ⊙ Wᵀ(M ⊙ c))`: a composition of the existing operators.
pub(super) fn support_operator<'a>(
    h: &'a Conv2d<f64>,
    w: &'a Starlet<f64>,
    m: &'a Diagonal<f64>,
    v: &'a Diagonal<f64>,
) -> Result<impl LinearOperator<f64> + 'a> {
    Compose::new(m, Compose::new(w, Compose::new(v, h)?)?)
}
