//! Plug-and-play and RED solvers: a [`Denoiser`] takes the place of a regulariser in
//! `min_x ½‖A x − y‖² + λ R(x)`.
//!
//! - [`PnpPgd`]: plug-and-play proximal gradient (Venkatakrishnan, Bouman & Wohlberg 2013),
//!   `x ← D(z − τ Aᴴ(A z − y), σ)`, with FISTA extrapolation of `z` when `accelerate` is on
//!   (Beck & Teboulle 2009). With `D(v, σ) = prox_{σ‖·‖₁}(v)` and `σ = τλ` it *is* ISTA/FISTA
//!   for the lasso.
//! - [`Red`]: regularisation by denoising (Romano, Elad & Milanfar 2017), gradient descent on
//!   `E(x) = ½‖A x − y‖² + (λ/2) ⟨x, x − D(x, σ)⟩` with the RED gradient
//!   `∇E(x) = Aᴴ(A x − y) + λ (x − D(x, σ))` (exact when `D` is locally homogeneous with a
//!   symmetric Jacobian).
//! - [`PnpAdmm`]: plug-and-play ADMM (Chan, Wang & Elgendy 2017), a configuration of the
//!   general [`Admm`]:
//!   `x ← (AᴴA + ρI)⁻¹ (Aᴴ y + ρ (z − u))` by conjugate gradients (warm started, optionally
//!   preconditioned) or by one application of a known inverse ([`NormalSolver`]; e.g.
//!   [`CirculantNormalInverse`], a DCT filter, for a reflective blur by a symmetric PSF),
//!   `z ← D(x + u, σ)`, `u ← u + x − z`. With `D = prox_{(λ/ρ)‖·‖₁}` it is ADMM for the lasso.
//!
//! All three are [`IterativeSolver`]s for the shared [`crate::iter`] framework; one-call helpers
//! [`pnp_pgd`], [`red`] and [`pnp_admm`] validate a [`PnpParams`] and run them. Convergence of
//! PnP schemes is guaranteed for non-expansive / averaged denoisers (and for proximal
//! denoisers); for learned denoisers it is observed, not proved — watch the relative change.
//!
//! `σ` is the denoiser's noise level in the units of `x`.

use crate::denoise::Denoiser;
use crate::error::{Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::linalg::{norm2, norm2_sq, vdot};
use crate::op::{check_shape, LinearOperator, NormEstimate};
use crate::prox::Prox;
use crate::proximal::admm::{Admm, AdmmParams, XUpdate};
use crate::proximal::fista::{lipschitz_estimate, LIPSCHITZ_SAFETY};
use crate::proximal::momentum::Momentum;
use crate::scalar::{real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use num_traits::{Float, One, Zero};
use std::sync::Mutex;

/// Parameters shared by the plug-and-play solvers. `Default`: automatic step, σ = 0.1,
/// λ = 1, ρ = 1, acceleration on, CG tolerance 1e-8 with at most 100 iterations, and the
/// default [`StopCriteria`].
#[derive(Debug, Clone, Copy)]
pub struct PnpParams<R> {
    /// Denoiser noise level `σ` (≥ 0, units of `x`).
    pub sigma: R,
    /// Gradient step. `None`: `1/L` for [`PnpPgd`] and `1/(L + λ)` for [`Red`], with
    /// `L = ‖A‖²` estimated by power iteration (times 1.01 for safety).
    pub step: Option<R>,
    /// RED regularisation weight `λ` (≥ 0); unused by the other two.
    pub lambda: R,
    /// ADMM penalty `ρ` (> 0); unused by the other two.
    pub rho: R,
    /// FISTA extrapolation in [`PnpPgd`].
    pub accelerate: bool,
    /// Relative residual tolerance of the inner conjugate gradients in [`PnpAdmm`].
    pub cg_tol: R,
    /// Iteration cap of the inner conjugate gradients in [`PnpAdmm`].
    pub cg_max_iters: usize,
    /// When to stop.
    pub stop: StopCriteria<R>,
}

impl<R: crate::Real> Default for PnpParams<R> {
    fn default() -> Self {
        PnpParams {
            sigma: real(0.1),
            step: None,
            lambda: R::one(),
            rho: R::one(),
            accelerate: true,
            cg_tol: real(1e-8),
            cg_max_iters: 100,
            stop: StopCriteria::default(),
        }
    }
}

impl<R: crate::Real> PnpParams<R> {
    /// Check every parameter is in range.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |name: &str, v: R| {
            if v.is_finite() && v >= R::zero() {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ))
            }
        };
        nonneg("sigma", self.sigma)?;
        nonneg("lambda", self.lambda)?;
        if let Some(s) = self.step {
            if !(s.is_finite() && s > R::zero()) {
                return Err(Error::param(
                    "step",
                    format!("must be finite and > 0, got {s}"),
                ));
            }
        }
        // ρ, the inner CG settings and the stop criteria: the checks of the ADMM engine
        self.admm_params().validate()
    }

    /// The parameters of the ADMM engine that [`PnpAdmm`] runs: penalty `ρ`, the x-update by
    /// conjugate gradients with this tolerance and cap, no objective, these stop criteria.
    fn admm_params(&self) -> AdmmParams<R> {
        AdmmParams {
            rho: self.rho,
            x_update: XUpdate::Cg,
            cg_tol: self.cg_tol,
            cg_max_iters: self.cg_max_iters,
            step: None,
            objective: false,
            stop: self.stop,
        }
    }
}

fn check_problem<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    y: &ArrayViewD<T>,
    x0: Option<&ArrayViewD<T>>,
) -> Result<()> {
    check_shape("measurements y", a.range_shape(), y.shape())?;
    crate::error::check_finite("measurements y", y.iter())?;
    if let Some(x0) = x0 {
        check_shape("initial x0", a.domain_shape(), x0.shape())?;
        crate::error::check_finite("initial x0", x0.iter())?;
    }
    Ok(())
}

/// FISTA's default Lipschitz constant ([`lipschitz_estimate`]: power iteration, safety factor
/// [`LIPSCHITZ_SAFETY`]); an error when it is zero or not finite (no step can be chosen).
fn lipschitz<T: Scalar, A: LinearOperator<T> + ?Sized>(a: &A) -> Result<T::Real> {
    let l = lipschitz_estimate(a, NormEstimate::default(), real(LIPSCHITZ_SAFETY));
    if !(l.is_finite() && l > T::Real::zero()) {
        return Err(Error::Numerical(format!(
            "cannot choose a step: the estimate of ‖A‖² is {l}"
        )));
    }
    Ok(l)
}

fn rel_change<T: Scalar>(new: ArrayViewD<T>, old: ArrayViewD<T>) -> T::Real {
    let mut d = T::Real::zero();
    Zip::from(&new)
        .and(&old)
        .for_each(|&a, &b| d += (a - b).abs2());
    let n = norm2(new);
    d.sqrt() / n.max(T::Real::min_positive_value())
}

/// Plug-and-play proximal gradient (optionally FISTA-accelerated):
/// `x_{k+1} = D(z_k − τ Aᴴ(A z_k − y), σ)`, `z_{k+1} = x_{k+1} + ((t_k − 1)/t_{k+1})(x_{k+1} − x_k)`.
///
/// Each step reports the data residual `‖A z_k − y‖` at the gradient point and no objective
/// (the denoiser's implicit regulariser is unknown).
pub struct PnpPgd<'a, T: Scalar, A: ?Sized, D: ?Sized> {
    a: &'a A,
    y: ArrayD<T>,
    d: &'a D,
    tau: T::Real,
    sigma: T::Real,
    accelerate: bool,
    momentum: Momentum<T::Real>,
    x: ArrayD<T>,
    z: ArrayD<T>,
    r: ArrayD<T>,
    g: ArrayD<T>,
    xn: ArrayD<T>,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> PnpPgd<'a, T, A, D> {
    /// Set up from `x0` (zeros when `None`). Validates `params` and shapes.
    pub fn new(
        a: &'a A,
        y: ArrayViewD<T>,
        d: &'a D,
        x0: Option<ArrayViewD<T>>,
        params: &PnpParams<T::Real>,
    ) -> Result<Self> {
        params.validate()?;
        check_problem(a, &y, x0.as_ref())?;
        let tau = match params.step {
            Some(s) => s,
            None => T::Real::one() / lipschitz(a)?,
        };
        let x = x0.map_or_else(|| ArrayD::zeros(IxDyn(a.domain_shape())), |v| v.to_owned());
        Ok(PnpPgd {
            a,
            y: y.to_owned(),
            d,
            tau,
            sigma: params.sigma,
            accelerate: params.accelerate,
            momentum: Momentum::new(),
            z: x.clone(),
            g: x.clone(),
            xn: x.clone(),
            x,
            r: ArrayD::zeros(IxDyn(a.range_shape())),
        })
    }
    /// The current iterate `x_k`.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.x.view()
    }
    /// The step `τ` in use.
    pub fn step_size(&self) -> T::Real {
        self.tau
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> IterativeSolver
    for PnpPgd<'_, T, A, D>
{
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        self.a.apply_into(self.z.view(), self.r.view_mut());
        self.r -= &self.y;
        let residual = norm2(self.r.view());
        self.a.adjoint_into(self.r.view(), self.g.view_mut());
        let tau = T::from_real(self.tau);
        Zip::from(&mut self.g)
            .and(&self.z)
            .for_each(|g, &z| *g = z - tau * *g);
        self.d
            .denoise_into(self.g.view(), self.sigma, self.xn.view_mut())?;
        let change = rel_change(self.xn.view(), self.x.view());
        if self.accelerate {
            let beta = T::from_real(self.momentum.advance());
            Zip::from(&mut self.z)
                .and(&self.xn)
                .and(&self.x)
                .for_each(|z, &xn, &x| *z = xn + beta * (xn - x));
        } else {
            self.z.assign(&self.xn);
        }
        std::mem::swap(&mut self.x, &mut self.xn);
        Ok(StepInfo {
            objective: None,
            rel_change: change,
            residual: Some(residual),
        })
    }
}

/// Regularisation by denoising, gradient form: `x ← x − μ (Aᴴ(A x − y) + λ (x − D(x, σ)))`.
///
/// Reports the RED objective `½‖A x − y‖² + (λ/2) Re⟨x, x − D(x, σ)⟩` at the point where the
/// gradient was taken, and the data residual `‖A x − y‖`.
pub struct Red<'a, T: Scalar, A: ?Sized, D: ?Sized> {
    a: &'a A,
    y: ArrayD<T>,
    d: &'a D,
    mu: T::Real,
    lambda: T::Real,
    sigma: T::Real,
    x: ArrayD<T>,
    r: ArrayD<T>,
    g: ArrayD<T>,
    dx: ArrayD<T>,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> Red<'a, T, A, D> {
    /// Set up from `x0` (zeros when `None`). Validates `params` and shapes.
    pub fn new(
        a: &'a A,
        y: ArrayViewD<T>,
        d: &'a D,
        x0: Option<ArrayViewD<T>>,
        params: &PnpParams<T::Real>,
    ) -> Result<Self> {
        params.validate()?;
        check_problem(a, &y, x0.as_ref())?;
        let mu = match params.step {
            Some(s) => s,
            None => T::Real::one() / (lipschitz(a)? + params.lambda),
        };
        let x = x0.map_or_else(|| ArrayD::zeros(IxDyn(a.domain_shape())), |v| v.to_owned());
        Ok(Red {
            a,
            y: y.to_owned(),
            d,
            mu,
            lambda: params.lambda,
            sigma: params.sigma,
            g: x.clone(),
            dx: x.clone(),
            x,
            r: ArrayD::zeros(IxDyn(a.range_shape())),
        })
    }
    /// The current iterate.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.x.view()
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> IterativeSolver
    for Red<'_, T, A, D>
{
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        self.a.apply_into(self.x.view(), self.r.view_mut());
        self.r -= &self.y;
        let data = norm2_sq(self.r.view());
        self.a.adjoint_into(self.r.view(), self.g.view_mut());
        self.d
            .denoise_into(self.x.view(), self.sigma, self.dx.view_mut())?;
        // dx ← x − D(x)
        Zip::from(&mut self.dx)
            .and(&self.x)
            .for_each(|d, &x| *d = x - *d);
        let half: T::Real = real(0.5);
        let objective = half * data + half * self.lambda * vdot(self.x.view(), self.dx.view()).re();
        let lam = T::from_real(self.lambda);
        let mu = T::from_real(self.mu);
        // g ← x − μ (g + λ dx); reuse dx for the old x norm check.
        Zip::from(&mut self.g)
            .and(&self.dx)
            .and(&self.x)
            .for_each(|g, &d, &x| *g = x - mu * (*g + lam * d));
        let change = rel_change(self.g.view(), self.x.view());
        std::mem::swap(&mut self.x, &mut self.g);
        Ok(StepInfo {
            objective: Some(objective),
            rel_change: change,
            residual: Some(data.sqrt()),
        })
    }
}

/// A denoiser as the prox of its implicit regulariser: `prox(v) := D(v, σ)` for every step
/// (the step `τ` is ignored; `σ` is fixed). The value is unknown and reported as 0. A failure
/// of the denoiser is kept and returned by [`DenoiserProx::take_error`] (the output is then
/// left as it was), since [`Prox::prox_into`] cannot fail.
pub struct DenoiserProx<'a, T: Scalar, D: ?Sized> {
    d: &'a D,
    sigma: T::Real,
    err: Mutex<Option<Error>>,
}

impl<'a, T: Scalar, D: Denoiser<T> + ?Sized> DenoiserProx<'a, T, D> {
    /// Wrap `d` with the noise level `sigma`.
    pub fn new(d: &'a D, sigma: T::Real) -> Self {
        DenoiserProx {
            d,
            sigma,
            err: Mutex::new(None),
        }
    }
    /// The first error of the denoiser since the last call, as `Err`.
    pub fn take_error(&self) -> Result<()> {
        match self.err.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<T: Scalar, D: Denoiser<T> + ?Sized> Prox<T> for DenoiserProx<'_, T, D> {
    fn value(&self, _x: ArrayViewD<T>) -> T::Real {
        T::Real::zero()
    }
    fn prox_into(&self, v: ArrayViewD<T>, _tau: T::Real, out: ArrayViewMutD<T>) {
        if let Err(e) = self.d.denoise_into(v, self.sigma, out) {
            let mut slot = self.err.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }
}

/// Plug-and-play ADMM (Chan, Wang & Elgendy 2017), a configuration of the general
/// [`Admm`] with `L = I`, the denoiser as the prox of `g` ([`DenoiserProx`]) and the x-update
/// by conjugate gradients or a known inverse ([`PnpAdmm::with_solver`]):
/// `x ← (AᴴA + ρI)⁻¹(Aᴴy + ρ(z − u))`, `z ← D(x + u, σ)`, `u ← u + x − z`.
///
/// Reports the primal residual `‖x − z‖` and the relative change of `z`, the returned iterate
/// (it lies in the denoiser's range).
pub struct PnpAdmm<'a, T: Scalar, A: ?Sized, D: ?Sized> {
    inner: Admm<'a, T, A, DenoiserProx<'a, T, D>>,
}

/// How [`PnpAdmm`] solves its x-update `(AᴴA + ρI) x = Aᴴy + ρ(z − u)`.
#[derive(Clone, Copy)]
pub enum NormalSolver<'a, T: Scalar> {
    /// Conjugate gradients, warm started at the previous `x`, to the relative residual
    /// [`PnpParams::cg_tol`] (at most [`PnpParams::cg_max_iters`] steps).
    Cg,
    /// Conjugate gradients preconditioned by `m ≈ (AᴴA + ρI)⁻¹` (Hermitian positive
    /// definite): the same iterates up to the CG tolerance, fewer steps
    /// ([`Admm::set_preconditioner`]).
    Preconditioned(&'a dyn LinearOperator<T>),
    /// `x = m(Aᴴy + ρ(z − u))` with `m = (AᴴA + ρI)⁻¹` (to the accuracy the caller vouches
    /// for, e.g. [`CirculantNormalInverse::is_exact_for`]): one application of `m` per
    /// iteration, no CG ([`Admm::set_normal_inverse`]).
    Exact(&'a dyn LinearOperator<T>),
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> PnpAdmm<'a, T, A, D> {
    /// Set up from `x0` (zeros when `None`; `z = x0`, `u = 0`). Validates `params` and shapes.
    pub fn new(
        a: &'a A,
        y: ArrayViewD<T>,
        d: &'a D,
        x0: Option<ArrayViewD<T>>,
        params: &PnpParams<T::Real>,
    ) -> Result<Self> {
        params.validate()?;
        check_problem(a, &y, x0.as_ref())?;
        let ap = params.admm_params();
        let g = DenoiserProx::new(d, params.sigma);
        let inner = Admm::with_parts(a, None, y, None, g, &ap, x0)?;
        Ok(PnpAdmm { inner })
    }
    /// Solve the x-update with `solver` (the default is [`NormalSolver::Cg`]). Errors when
    /// the operator of `solver` does not act on the domain of `A`.
    pub fn with_solver(mut self, solver: NormalSolver<'a, T>) -> Result<Self> {
        match solver {
            NormalSolver::Cg => {}
            NormalSolver::Preconditioned(m) => self.inner.set_preconditioner(m)?,
            NormalSolver::Exact(m) => self.inner.set_normal_inverse(m)?,
        }
        Ok(self)
    }
    /// Precondition the conjugate-gradient x-update with `m ≈ (AᴴA + ρI)⁻¹`
    /// ([`Admm::set_preconditioner`]; e.g. [`CirculantNormalInverse`] for a convolution with
    /// non-periodic borders): the iterates are the same up to the CG tolerance, the cost per
    /// iteration lower.
    pub fn with_preconditioner(self, m: &'a dyn LinearOperator<T>) -> Result<Self> {
        self.with_solver(NormalSolver::Preconditioned(m))
    }
    /// The current denoised iterate `z`.
    pub fn z(&self) -> ArrayViewD<'_, T> {
        self.inner.z()
    }
    /// The current data-consistent iterate `x`.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.inner.x()
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized> IterativeSolver
    for PnpAdmm<'_, T, A, D>
{
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.inner.z()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let info = self.inner.step()?;
        self.inner.prox_term().take_error()?;
        Ok(StepInfo {
            objective: None,
            rel_change: rel_change(self.inner.z(), self.inner.z_prev()),
            residual: info.residual,
        })
    }
}

/// Run [`PnpPgd`] to a stop criterion; returns the iterate `x` and the report.
pub fn pnp_pgd<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized>(
    a: &A,
    y: ArrayViewD<T>,
    denoiser: &D,
    x0: Option<ArrayViewD<T>>,
    params: &PnpParams<T::Real>,
    observer: Option<&mut dyn Observer<T::Real>>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let mut s = PnpPgd::new(a, y, denoiser, x0, params)?;
    let rep = run(&mut s, &params.stop, observer.unwrap_or(&mut NoObserver))?;
    Ok((s.x, rep))
}

/// Run [`Red`] to a stop criterion; returns the iterate `x` and the report.
pub fn red<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized>(
    a: &A,
    y: ArrayViewD<T>,
    denoiser: &D,
    x0: Option<ArrayViewD<T>>,
    params: &PnpParams<T::Real>,
    observer: Option<&mut dyn Observer<T::Real>>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let mut s = Red::new(a, y, denoiser, x0, params)?;
    let rep = run(&mut s, &params.stop, observer.unwrap_or(&mut NoObserver))?;
    Ok((s.x, rep))
}

/// Run [`PnpAdmm`] (conjugate-gradient x-update) to a stop criterion; returns the denoised
/// iterate `z` and the report. [`pnp_admm_with`] with [`NormalSolver::Cg`].
pub fn pnp_admm<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized>(
    a: &A,
    y: ArrayViewD<T>,
    denoiser: &D,
    x0: Option<ArrayViewD<T>>,
    params: &PnpParams<T::Real>,
    observer: Option<&mut dyn Observer<T::Real>>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    pnp_admm_with(a, NormalSolver::Cg, y, denoiser, x0, params, observer)
}

/// [`pnp_admm`] with its x-update preconditioned by `m ≈ (AᴴA + ρI)⁻¹`
/// ([`PnpAdmm::with_preconditioner`]): the same iterates up to the CG tolerance.
/// [`pnp_admm_with`] with [`NormalSolver::Preconditioned`].
#[allow(clippy::too_many_arguments)]
pub fn pnp_admm_preconditioned<
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    D: Denoiser<T> + ?Sized,
>(
    a: &A,
    m: &dyn LinearOperator<T>,
    y: ArrayViewD<T>,
    denoiser: &D,
    x0: Option<ArrayViewD<T>>,
    params: &PnpParams<T::Real>,
    observer: Option<&mut dyn Observer<T::Real>>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let solver = NormalSolver::Preconditioned(m);
    pnp_admm_with(a, solver, y, denoiser, x0, params, observer)
}

/// Run [`PnpAdmm`] with the x-update `solver` to a stop criterion; returns the denoised
/// iterate `z` and the report.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::denoise::Denoiser;
/// use sparseinv_solvers::op::{Boundary, Conv2d};
/// use sparseinv_solvers::pnp::{pnp_admm_with, CirculantNormalInverse, NormalSolver, PnpParams};
/// use sparseinv_solvers::starlet_denoise::StarletDenoiser;
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let y = Array2::from_shape_fn((32, 32), |(i, j)| ((i / 8 + j / 8) % 2) as f64).into_dyn();
/// let a = Conv2d::new([32, 32], psf.view(), Boundary::Reflect).unwrap();
/// let mut p = PnpParams::default();
/// p.stop.max_iters = 5;
/// let d = StarletDenoiser::new(3).unwrap();
/// // the box PSF is symmetric: the mirrored inverse is exact, one DCT filter per x-update
/// let m = CirculantNormalInverse::mirrored([32, 32], psf.view(), p.rho).unwrap();
/// assert!(matches!(m.solver_for(&a, p.cg_tol), NormalSolver::Exact(_)));
/// let (z, _) = pnp_admm_with(&a, m.solver_for(&a, p.cg_tol), y.view(), &d, None, &p, None).unwrap();
/// let (z_cg, _) = pnp_admm_with(&a, NormalSolver::Cg, y.view(), &d, None, &p, None).unwrap();
/// assert!((&z - &z_cg).iter().all(|e| e.abs() < 1e-6));
/// ```
pub fn pnp_admm_with<T: Scalar, A: LinearOperator<T> + ?Sized, D: Denoiser<T> + ?Sized>(
    a: &A,
    solver: NormalSolver<'_, T>,
    y: ArrayViewD<T>,
    denoiser: &D,
    x0: Option<ArrayViewD<T>>,
    params: &PnpParams<T::Real>,
    observer: Option<&mut dyn Observer<T::Real>>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let mut s = PnpAdmm::new(a, y, denoiser, x0, params)?.with_solver(solver)?;
    let rep = run(&mut s, &params.stop, observer.unwrap_or(&mut NoObserver))?;
    Ok((s.inner.into_z(), rep))
}

/// `M = F⁻¹ diag(1/(|H|² + ρ)) F`: the exact inverse of `AᴴA + ρI` for the *circular*
/// convolution `A` by `psf` on an `n₀ × n₁` grid (`H` its transfer function,
/// [`crate::op::Conv2d::transfer_function`]); with [`CirculantNormalInverse::mirrored`] the
/// same filter on the `2n₀ × 2n₁` grid of the image's half-sample symmetric extension, cropped
/// back, with `|H|²` averaged over the four sign flips `(±u, ±v)`: the exact inverse for the
/// *reflective* convolution ([`crate::op::Boundary::Reflect`]) by a PSF symmetric about each
/// axis (`h(a, b) = h(−a, b) = h(a, −b)`: Gaussian, Moffat, Airy…), whose blur matrix the 2-D
/// DCT-II diagonalises (Ng, Chan & Tang, SIAM J. Sci. Comput. 21, 1999). Both are symmetric
/// positive definite for `ρ > 0` (a real, positive Fourier multiplier even in each frequency
/// axis; on the mirror grid a DCT-diagonal operator) — the averaging keeps the mirrored one
/// symmetric for any PSF (a skewed PSF's `|H|²` is not even in each axis separately).
///
/// As a preconditioner for conjugate gradients on `AᴴA + ρI` with the same PSF and another
/// boundary, or an asymmetric PSF ([`PnpAdmm::with_preconditioner`],
/// [`crate::krylov::Cg::preconditioned`]), it leaves only the difference between the two
/// systems to iterate on; where it is exact ([`CirculantNormalInverse::is_exact_for`]) the
/// x-update is one application of it ([`NormalSolver::Exact`]). One application costs one
/// real FFT pair on the image's grid (circular) or a 2-D DCT-II pair on it (mirrored: the
/// mirror-grid filter is even in each frequency axis, see [`crate::dct`]), the same work.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
/// use sparseinv_solvers::pnp::CirculantNormalInverse;
/// let psf = Array2::from_elem((3, 3), 1.0 / 9.0);
/// let x = Array2::from_shape_fn((16, 12), |(i, j)| ((i * 7 + j * 3) % 5) as f64).into_dyn();
/// for (m, boundary) in [
///     (CirculantNormalInverse::new([16, 12], psf.view(), 0.5).unwrap(), Boundary::Circular),
///     (CirculantNormalInverse::mirrored([16, 12], psf.view(), 0.5).unwrap(), Boundary::Reflect),
/// ] {
///     // M (AᴴA + ρI) x = x (the box PSF is symmetric about each axis)
///     let a = Conv2d::new([16, 12], psf.view(), boundary).unwrap();
///     let ax = a.apply(x.view()).unwrap();
///     let n = a.adjoint(ax.view()).unwrap() + &(x.clone() * 0.5);
///     let back = m.apply(n.view()).unwrap();
///     assert!((&back - &x).iter().all(|d| d.abs() < 1e-10));
/// }
/// ```
pub struct CirculantNormalInverse<T: Scalar> {
    shape: [usize; 2],
    rho: T::Real,
    /// The PSF (to recognise the systems `M` is the exact inverse of).
    psf: ndarray::Array2<T>,
    kind: NormalInverseKind<T>,
}

enum NormalInverseKind<T: Scalar> {
    /// `1/(|H|² + ρ)` on the image's own (circular) grid.
    Circular(Box<crate::op::Conv2d<T>>),
    /// The mirror-grid filter, applied as the DCT-II filter it is (see the type docs).
    Mirrored(crate::dct::DctFilter2<T::Real>),
}

impl<T: Scalar> CirculantNormalInverse<T> {
    /// `M` for `psf` (centre at `(h/2, w/2)`, at most the grid) on an `n₀ × n₁` grid and
    /// `ρ > 0`, circular. Errors on a non-positive or non-finite `ρ` and on the errors of
    /// [`Conv2d::new`](crate::op::Conv2d::new).
    pub fn new(shape: [usize; 2], psf: ndarray::ArrayView2<T>, rho: T::Real) -> Result<Self> {
        Self::build(shape, psf, rho, false)
    }

    /// `M` on the `2n₀ × 2n₁` mirror grid (see the type's documentation): the exact inverse
    /// of the reflective system for a PSF symmetric about each axis. Errors as [`Self::new`].
    ///
    /// The filter is even in each frequency axis, so on the symmetric extension of an image
    /// it is the DCT-II filter `C⁻¹ diag(1/(q[u, v] + ρ)) C` on the image's own grid
    /// (`q` the averaged `|H|²` at the first `n₀ × n₁` frequencies of the doubled grid,
    /// [`crate::dct`]); that is how it is applied — one real FFT pair's work on the
    /// `n₀ × n₁` grid, without forming the extension.
    pub fn mirrored(shape: [usize; 2], psf: ndarray::ArrayView2<T>, rho: T::Real) -> Result<Self> {
        Self::build(shape, psf, rho, true)
    }

    fn build(
        shape: [usize; 2],
        psf: ndarray::ArrayView2<T>,
        rho: T::Real,
        mirrored: bool,
    ) -> Result<Self> {
        if !(rho.is_finite() && rho > T::Real::zero()) {
            return Err(Error::param(
                "rho",
                format!("must be finite and > 0, got {rho}"),
            ));
        }
        let kind = if mirrored {
            let [n0, n1] = shape;
            let conv =
                crate::op::Conv2d::new([2 * n0, 2 * n1], psf, crate::op::Boundary::Circular)?;
            let h = conv.transfer_function();
            let (p, q) = h.dim();
            let quarter: T::Real = crate::scalar::real(0.25);
            let gain = ndarray::Array2::from_shape_fn((n0, n1), |(u, v)| {
                let (um, vm) = ((p - u) % p, (q - v) % q);
                let quad = (h[[u, v]].norm_sqr()
                    + h[[um, v]].norm_sqr()
                    + h[[u, vm]].norm_sqr()
                    + h[[um, vm]].norm_sqr())
                    * quarter;
                T::Real::one() / (quad + rho)
            });
            NormalInverseKind::Mirrored(crate::dct::DctFilter2::new(gain.view())?)
        } else {
            NormalInverseKind::Circular(Box::new(crate::op::Conv2d::new(
                shape,
                psf,
                crate::op::Boundary::Circular,
            )?))
        };
        Ok(CirculantNormalInverse {
            shape,
            rho,
            psf: psf.to_owned(),
            kind,
        })
    }

    /// Whether `M` solves `(AᴴA + ρI) x = b` for the convolution `a` to the relative
    /// residual `tol` (`‖b − (AᴴA + ρI) M b‖ ≤ tol ‖b‖` for every `b`), so that the
    /// x-update can apply `M` once instead of running conjugate gradients
    /// ([`NormalSolver::Exact`]): `a` must have the same grid and kernel, and
    /// - circular `M`: a [`Boundary::Circular`](crate::op::Boundary::Circular) `a` (always
    ///   exact);
    /// - mirrored `M`: a [`Boundary::Reflect`](crate::op::Boundary::Reflect) `a` with a
    ///   kernel symmetric about each axis up to `8 ‖k‖₁ ‖k − k̄‖₁ ≤ tol · ρ`, `k̄` the mean of
    ///   `k` over its four axis flips about the centre (entries flipped outside the kernel
    ///   count as 0). That is a sufficient condition: `M⁻¹` differs from `AᴴA + ρI` by at
    ///   most `2‖A‖‖A − Ā‖ + ‖A − Ā‖² + ‖k − k̄‖₁²` with `‖A‖ ≤ √2 ‖k‖₁`,
    ///   `‖A − Ā‖ ≤ √2 ‖k − k̄‖₁` (reflective convolutions), and `‖M‖ ≤ 1/ρ`.
    pub fn is_exact_for(&self, a: &crate::op::Conv2d<T>, tol: T::Real) -> bool {
        use crate::op::Boundary;
        if a.image_shape() != self.shape || a.output_shape() != self.shape {
            return false;
        }
        let k = a.kernel();
        if k.dim() != self.psf.dim() || k.iter().zip(&self.psf).any(|(a, b)| a != b) {
            return false;
        }
        match (&self.kind, a.boundary()) {
            (NormalInverseKind::Circular(_), Boundary::Circular) => true,
            (NormalInverseKind::Mirrored(_), Boundary::Reflect) => {
                let (l1, asym) = asymmetry(k.view());
                let eight: T::Real = crate::scalar::real(8.0);
                eight * l1 * asym <= tol * self.rho
            }
            _ => false,
        }
    }

    /// The x-update for the convolution `a`: [`NormalSolver::Exact`] when
    /// [`is_exact_for`](Self::is_exact_for)`(a, tol)`, else conjugate gradients
    /// preconditioned by `M` ([`NormalSolver::Preconditioned`]).
    pub fn solver_for(&self, a: &crate::op::Conv2d<T>, tol: T::Real) -> NormalSolver<'_, T> {
        if self.is_exact_for(a, tol) {
            NormalSolver::Exact(self)
        } else {
            NormalSolver::Preconditioned(self)
        }
    }
}

/// `(‖k‖₁, ‖k − k̄‖₁)` with `k̄` the mean of `k` over its four flips about the centre
/// `(h/2, w/2)`; both on the offsets `−h/2 … h/2` × `−w/2 … w/2` (one row or column more
/// than `k` for even sizes), with `k = 0` outside its array.
fn asymmetry<T: Scalar>(k: ndarray::ArrayView2<T>) -> (T::Real, T::Real) {
    let (h, w) = k.dim();
    let (e0, e1) = (2 * (h / 2), 2 * (w / 2));
    let at = |i: usize, j: usize| -> T {
        if i < h && j < w {
            k[[i, j]]
        } else {
            T::zero()
        }
    };
    let quarter: T::Real = crate::scalar::real(0.25);
    let l1 = k.iter().fold(T::Real::zero(), |s, v| s + v.modulus());
    let mut asym = T::Real::zero();
    for i in 0..=e0 {
        for j in 0..=e1 {
            let v = at(i, j);
            let mean = (v + at(e0 - i, j) + at(i, e1 - j) + at(e0 - i, e1 - j)).scale(quarter);
            asym += (v - mean).modulus();
        }
    }
    (l1, asym)
}

impl<T: Scalar> LinearOperator<T> for CirculantNormalInverse<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.shape
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        use crate::op::Diagonalizable;
        let ok = "shapes checked by the caller";
        match &self.kind {
            NormalInverseKind::Circular(conv) => {
                let rho = self.rho;
                let f = move |h: num_complex::Complex<T::Real>| {
                    num_complex::Complex::new(
                        T::Real::one() / (h.norm_sqr() + rho),
                        T::Real::zero(),
                    )
                };
                conv.apply_fourier_filter_into(x, y, &f).expect(ok);
            }
            NormalInverseKind::Mirrored(dct) => {
                let x = x.into_dimensionality::<ndarray::Ix2>().expect(ok);
                let y = y.into_dimensionality::<ndarray::Ix2>().expect(ok);
                dct.apply_into(x, y).expect(ok);
            }
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        // a real, positive Fourier (or cosine) multiplier: self-adjoint
        self.apply_into(y, x)
    }
}
