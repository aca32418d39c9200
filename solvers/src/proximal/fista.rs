//! ISTA and FISTA for `min_x F(x) = ½‖A x − y‖² + R(x)`.
//!
//! `A` is any [`LinearOperator`] (a dense [`Matrix`](crate::op::Matrix), a convolution, a
//! composition, ...) and `R` any [`Prox`]: the l1 norm gives the Lasso / basis-pursuit denoising,
//! non-convex penalties (l0, l_q, CEL0) give sparser codes (Rentzeperis et al. 2023), an
//! indicator gives constrained least squares.
//!
//! One iteration from the point `z` (with `∇f(z) = Aᴴ(A z − y)`) is the forward–backward step
//!
//! ```text
//! u = prox_{R/L}( z − ∇f(z) / L )
//! ```
//!
//! with step `1/L`, `L ≥ ‖A‖²` the Lipschitz constant of `∇f`. The variants differ in the next
//! `z` ([`Variant`]):
//! - **ISTA**: `x_{k+1} = u`, `z = x_{k+1}`; `F(x_k) − F* = O(1/k)` for convex `R`, and for
//!   non-convex `R` every limit point is a stationary point (Attouch, Bolte & Svaiter 2013).
//! - **FISTA** (Beck & Teboulle 2009): `x_{k+1} = u`, `t_{k+1} = (1 + √(1 + 4t_k²))/2`,
//!   `z = x_{k+1} + ((t_k − 1)/t_{k+1}) (x_{k+1} − x_k)`; `F(x_k) − F* = O(1/k²)`.
//! - **MFISTA** (monotone FISTA, Beck & Teboulle 2009, "Fast gradient-based algorithms for
//!   constrained total variation…"): `x_{k+1} = argmin{F(u), F(x_k)}` and
//!   `z = x_{k+1} + (t_k/t_{k+1})(u − x_{k+1}) + ((t_k − 1)/t_{k+1})(x_{k+1} − x_k)`;
//!   the objective never increases.
//!
//! **Adaptive restart** (O'Donoghue & Candès 2015, [`Restart`]): the momentum is reset
//! (`t = 1`) when the objective increases (function scheme) or when the momentum points
//! against the generalised gradient, `⟨z − u, u − x_k⟩ > 0` (gradient scheme). Restarting
//! recovers linear convergence on locally strongly convex problems such as a Lasso with a
//! well-conditioned support.
//!
//! **Step size.** By default `L = s · ‖A‖²` with `‖A‖` from the power iteration
//! [`op_norm`] and the safety factor `s = 1.01` (power iteration under-estimates). A step can be
//! given instead ([`Params::step`]), and **backtracking** (Beck & Teboulle 2009, §4) starts from
//! a cheap lower bound of `‖A‖²` (or from `1/step`) and multiplies `L` by `η` until
//! `f(u) ≤ f(z) + Re⟨∇f(z), u − z⟩ + (L/2)‖u − z‖²`.
//!
//! **Cost.** Each iteration costs one `Aᴴ` and one `A` (plus one more `A` per backtracking
//! trial): `A z` is never recomputed, since `z` is an affine combination of iterates whose
//! images are kept. The objective `F(x_{k+1})` is therefore computed every iteration for free
//! and recorded in the [`Report`]; the relative change `‖u − x_k‖/‖u‖` is the default stopping
//! test, and `L‖u − z‖` (the norm of the generalised gradient) is reported as the residual.
//!
//! **No outside multiplier.** `R` carries its own weight (`L1::new(λ)`, `Cel0::new(λ, a)`);
//! [`Params`] has no `λ` to multiply it with, because for penalties that are not homogeneous
//! in their own `λ` (CEL0) such a product silently changes the problem (see [`Params`]).
//! [`Zero`](crate::prox::Zero) gives plain least squares by gradient descent.

use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::linalg::{norm2, norm2_sq};
use crate::op::{check_shape, op_norm, LinearOperator, NormEstimate};
use crate::prox::Prox;
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use num_traits::{Float, One, Zero};

/// Which proximal-gradient scheme to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Plain forward–backward splitting (ISTA).
    Ista,
    /// FISTA with Nesterov momentum.
    #[default]
    Fista,
    /// Monotone FISTA (MFISTA): never accepts an iterate that increases the objective.
    MonotoneFista,
}

use super::momentum::Momentum;
pub use super::momentum::Restart;

/// The default safety factor `s` on power-iteration estimates of `‖A‖²` (power iteration
/// approaches the norm from below).
pub const LIPSCHITZ_SAFETY: f64 = 1.01;

/// `L = s · ‖A‖²`, the Lipschitz constant of `∇(½‖A x − y‖²) = Aᴴ(A x − y)` that FISTA uses
/// by default, with `‖A‖` from the power iteration [`op_norm`] and the safety factor `s ≥ 1`
/// (e.g. [`LIPSCHITZ_SAFETY`]). The plug-and-play solvers of [`crate::pnp`] use the same.
///
/// ```
/// use sparseinv_solvers::op::{Diagonal, NormEstimate};
/// use sparseinv_solvers::proximal::fista::{lipschitz_estimate, LIPSCHITZ_SAFETY};
/// use ndarray::array;
/// let d = Diagonal::new(array![1.0f64, -3.0].into_dyn());
/// let l: f64 = lipschitz_estimate(&d, NormEstimate::default(), LIPSCHITZ_SAFETY);
/// assert!((l - 1.01 * 9.0).abs() < 1e-4);
/// ```
pub fn lipschitz_estimate<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    estimate: NormEstimate,
    safety: T::Real,
) -> T::Real {
    let n = op_norm(a, estimate);
    safety * n * n
}

/// Parameters of [`ProximalGradient`] and the one-call helpers.
///
/// There is no penalty multiplier: the penalty `R` is solved exactly as given, and its weight
/// lives inside it (`L1::new(0.1)` is `0.1‖x‖₁`, `Cel0::new(λ, a)` is the CEL0 relaxation of
/// `λ‖x‖₀`). An outside multiplier `μ` would be a trap for penalties that are not positively
/// homogeneous in their own `λ`: `μ · CEL0_λ` is *not* `CEL0_{μλ}` (CEL0's shape depends on
/// `λ`), so a solver multiplying it would silently minimise another function than the CEL0
/// relaxation the user asked for. Put `λ` into the penalty; use [`Zero`](crate::prox::Zero)
/// for plain least squares.
#[derive(Debug, Clone, Copy)]
pub struct Params<R> {
    /// The scheme. Default FISTA.
    pub variant: Variant,
    /// Momentum restart. Default [`Restart::Gradient`].
    pub restart: Restart,
    /// Step size `1/L`. `None` (default): `L = lipschitz_safety · ‖A‖²` by power iteration, or
    /// the starting point of backtracking.
    pub step: Option<R>,
    /// Safety factor `s ≥ 1` on the power-iteration estimate of `‖A‖²`. Default 1.01.
    pub lipschitz_safety: R,
    /// Backtracking line search on `L` (non-decreasing). Default off.
    pub backtracking: bool,
    /// Factor `η > 1` by which backtracking increases `L`. Default 2.
    pub backtracking_factor: R,
    /// Power-iteration settings for `‖A‖`.
    pub norm_estimate: NormEstimate,
    /// Stopping rules. Default: 1000 iterations, relative change 1e-6.
    pub stop: StopCriteria<R>,
}

impl<R: Real> Default for Params<R> {
    fn default() -> Self {
        Params {
            variant: Variant::Fista,
            restart: Restart::Gradient,
            step: None,
            lipschitz_safety: real(LIPSCHITZ_SAFETY),
            backtracking: false,
            backtracking_factor: real(2.0),
            norm_estimate: NormEstimate::default(),
            stop: StopCriteria {
                max_iters: 1000,
                ..StopCriteria::default()
            },
        }
    }
}

impl<R: Real> Params<R> {
    /// Check every parameter is in range.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.step {
            if !s.is_finite() || s <= R::zero() {
                return Err(Error::param(
                    "step",
                    format!("must be finite and positive, got {s}"),
                ));
            }
        }
        if !self.lipschitz_safety.is_finite() || self.lipschitz_safety < R::one() {
            return Err(Error::param(
                "lipschitz_safety",
                format!(
                    "must be finite and at least 1, got {}",
                    self.lipschitz_safety
                ),
            ));
        }
        if !self.backtracking_factor.is_finite() || self.backtracking_factor <= R::one() {
            return Err(Error::param(
                "backtracking_factor",
                format!(
                    "must be finite and greater than 1, got {}",
                    self.backtracking_factor
                ),
            ));
        }
        if self.norm_estimate.max_iters == 0 {
            return Err(Error::param(
                "norm_estimate.max_iters",
                "must be at least 1",
            ));
        }
        self.stop.validate()
    }
}

/// The ISTA / FISTA / MFISTA state machine for `min_x ½‖A x − y‖² + R(x)`; see the
/// [module documentation](self) for the iterations.
///
/// Drive it with [`crate::iter::run`] (or use [`solve`], [`fista`], [`ista`]).
///
/// ```
/// use sparseinv_solvers::op::Matrix;
/// use sparseinv_solvers::prox::Zero;
/// use sparseinv_solvers::proximal::{ProximalGradient, Params};
/// use sparseinv_solvers::iter::{run, NoObserver};
/// use ndarray::array;
/// // least squares (R = 0) with an invertible A: the solution is A⁻¹ y
/// let a = Matrix::new(array![[2.0f64, 0.0], [1.0, 1.0]]);
/// let y = array![2.0f64, 3.0].into_dyn();
/// let mut p = Params::default();
/// p.stop.rel_tol = 1e-12;
/// let mut s = ProximalGradient::new(&a, y.view(), &Zero, &p, None).unwrap();
/// let report = run(&mut s, &p.stop, &mut NoObserver).unwrap();
/// assert!((s.x()[0] - 1.0).abs() < 1e-8 && (s.x()[1] - 2.0).abs() < 1e-8);
/// assert!(report.final_objective().unwrap() < 1e-12);
/// ```
pub struct ProximalGradient<'a, T: Scalar, A: ?Sized, P: ?Sized> {
    a: &'a A,
    y: ArrayViewD<'a, T>,
    prox: &'a P,
    variant: Variant,
    restart: Restart,
    backtracking: bool,
    eta: T::Real,
    lip: T::Real,
    momentum: Momentum<T::Real>,
    x: ArrayD<T>,
    ax: ArrayD<T>,
    fx: T::Real,
    z: ArrayD<T>,
    az: ArrayD<T>,
    u: ArrayD<T>,
    au: ArrayD<T>,
    v: ArrayD<T>,
    g: ArrayD<T>,
    r: ArrayD<T>,
    restarts: usize,
    backtracks: usize,
}

impl<'a, T, A, P> ProximalGradient<'a, T, A, P>
where
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    P: Prox<T> + ?Sized,
{
    /// Set up the solver: validates `params` and the data, computes `A x₀` and the step.
    ///
    /// `x0` is a warm start (default zero). Errors: invalid parameters, `y` or `x0` of the
    /// wrong shape, an empty domain or range, non-finite `y` or `x0`, complex data with a
    /// real-only penalty (`Prox::supports_complex() == false`), a penalty that does not fit
    /// the domain (`Prox::check_shape`, e.g. weights of another shape).
    pub fn new(
        a: &'a A,
        y: ArrayViewD<'a, T>,
        prox: &'a P,
        params: &Params<T::Real>,
        x0: Option<ArrayViewD<T>>,
    ) -> Result<Self> {
        params.validate()?;
        if a.domain_size() == 0 {
            return Err(Error::Empty {
                what: "operator domain (unknown x)".into(),
            });
        }
        if a.range_size() == 0 || y.is_empty() {
            return Err(Error::Empty {
                what: "data y".into(),
            });
        }
        check_shape("data y", a.range_shape(), y.shape())?;
        check_finite("data y", y.iter())?;
        if T::IS_COMPLEX && !prox.supports_complex() {
            return Err(Error::Unsupported(
                "this penalty is defined for real data only, but the data are complex".into(),
            ));
        }
        prox.check_shape(a.domain_shape())?;
        let x = match x0 {
            Some(x0) => {
                check_shape("initial x", a.domain_shape(), x0.shape())?;
                check_finite("initial x", x0.iter())?;
                x0.to_owned()
            }
            None => ArrayD::zeros(IxDyn(a.domain_shape())),
        };
        let dom = IxDyn(a.domain_shape());
        let ran = IxDyn(a.range_shape());
        let mut ax = ArrayD::zeros(ran.clone());
        a.apply_into(x.view(), ax.view_mut());
        let mut g = ArrayD::zeros(dom.clone());
        let mut r = ArrayD::zeros(ran.clone());
        let lip = match params.step {
            Some(s) => T::Real::one() / s,
            None if params.backtracking => {
                // one power-iteration step from Aᴴy: ‖AᴴA v‖/‖v‖ ≤ ‖A‖² is a cheap lower bound
                a.adjoint_into(y.view(), g.view_mut());
                if norm2(g.view()) == T::Real::zero() {
                    g.fill(T::one());
                }
                let ng = norm2(g.view());
                a.apply_into(g.view(), r.view_mut());
                let mut h = ArrayD::zeros(dom.clone());
                a.adjoint_into(r.view(), h.view_mut());
                norm2(h.view()) / ng
            }
            None => lipschitz_estimate(a, params.norm_estimate, params.lipschitz_safety),
        };
        // A = 0: any step is exact (the gradient vanishes)
        let lip = if lip > T::Real::zero() && lip.is_finite() {
            lip
        } else {
            T::Real::one()
        };
        let mut s = ProximalGradient {
            a,
            y,
            prox,
            variant: params.variant,
            restart: params.restart,
            backtracking: params.backtracking,
            eta: params.backtracking_factor,
            lip,
            momentum: Momentum::new(),
            z: x.clone(),
            az: ax.clone(),
            u: ArrayD::zeros(dom.clone()),
            au: ArrayD::zeros(ran.clone()),
            v: ArrayD::zeros(dom),
            g,
            r,
            x,
            ax,
            fx: T::Real::zero(),
            restarts: 0,
            backtracks: 0,
        };
        s.fx = s.smooth(s.ax.view()) + s.penalty(s.x.view());
        Ok(s)
    }

    /// `½‖w − y‖²` for `w = A x`.
    fn smooth(&self, w: ArrayViewD<T>) -> T::Real {
        let mut acc = T::Real::zero();
        Zip::from(&w)
            .and(&self.y)
            .for_each(|&a, &b| acc += (a - b).abs2());
        acc * real(0.5)
    }

    /// `R(x)`.
    fn penalty(&self, x: ArrayViewD<T>) -> T::Real {
        self.prox.value(x)
    }

    /// The current iterate `x_k`.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.x.view()
    }
    /// Consume the solver, returning the current iterate.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
    /// `F(x_k) = ½‖A x_k − y‖² + R(x_k)`.
    pub fn objective(&self) -> T::Real {
        self.fx
    }
    /// The current Lipschitz estimate `L` (step `1/L`).
    pub fn lipschitz(&self) -> T::Real {
        self.lip
    }
    /// Number of momentum restarts so far.
    pub fn restarts(&self) -> usize {
        self.restarts
    }
    /// Number of backtracking increases of `L` so far.
    pub fn backtracks(&self) -> usize {
        self.backtracks
    }

    /// `u ← prox_{R/L}(z − g/L)`, `au ← A u`; returns `f(u)`.
    fn forward_backward(&mut self) -> T::Real {
        let inv = T::Real::one() / self.lip;
        Zip::from(&mut self.v)
            .and(&self.z)
            .and(&self.g)
            .for_each(|v, &z, &g| *v = z - g.scale(inv));
        self.prox.prox_into(self.v.view(), inv, self.u.view_mut());
        self.a.apply_into(self.u.view(), self.au.view_mut());
        self.smooth(self.au.view())
    }
}

impl<T, A, P> IterativeSolver for ProximalGradient<'_, T, A, P>
where
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    P: Prox<T> + ?Sized,
{
    type Real = T::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let half: T::Real = real(0.5);
        // gradient at z: g = Aᴴ(A z − y)
        Zip::from(&mut self.r)
            .and(&self.az)
            .and(&self.y)
            .for_each(|r, &az, &y| *r = az - y);
        let fz = half * norm2_sq(self.r.view());
        self.a.adjoint_into(self.r.view(), self.g.view_mut());
        let mut fu = self.forward_backward();
        if self.backtracking {
            let mut tries = 0;
            loop {
                // quadratic upper model at z evaluated at u
                let mut lin = T::Real::zero();
                let mut d2 = T::Real::zero();
                Zip::from(&self.u)
                    .and(&self.z)
                    .and(&self.g)
                    .for_each(|&u, &z, &g| {
                        let d = u - z;
                        lin += (g.conj() * d).re();
                        d2 += d.abs2();
                    });
                let q = fz + lin + half * self.lip * d2;
                let slack = real::<T::Real>(1e-12) * (fz.abs() + fu.abs());
                if fu <= q + slack || !fu.is_finite() {
                    break;
                }
                tries += 1;
                if tries > 100 {
                    return Err(Error::Numerical(
                        "backtracking did not find a step after 100 increases of L".into(),
                    ));
                }
                self.lip *= self.eta;
                self.backtracks += 1;
                fu = self.forward_backward();
            }
        }
        let fu_total = fu + self.penalty(self.u.view());

        // change measures
        let mut diff = T::Real::zero();
        let mut gm = T::Real::zero();
        let mut grad_dir = T::Real::zero();
        Zip::from(&self.u)
            .and(&self.x)
            .and(&self.z)
            .for_each(|&u, &x, &z| {
                diff += (u - x).abs2();
                gm += (z - u).abs2();
                grad_dir += ((z - u).conj() * (u - x)).re();
            });
        let diff = diff.sqrt();
        let nu = norm2(self.u.view());
        let rel_change = if nu > T::Real::zero() {
            diff / nu
        } else if diff == T::Real::zero() {
            T::Real::zero()
        } else {
            T::Real::one()
        };
        let residual = self.lip * gm.sqrt();

        let one = T::Real::one();
        match self.variant {
            Variant::Ista => {
                std::mem::swap(&mut self.x, &mut self.u);
                std::mem::swap(&mut self.ax, &mut self.au);
                self.fx = fu_total;
                self.z.assign(&self.x);
                self.az.assign(&self.ax);
            }
            Variant::Fista | Variant::MonotoneFista => {
                let restart = self.restart.triggered(fu_total, self.fx, grad_dir);
                if restart && self.momentum.t() > one {
                    self.momentum.reset();
                    self.restarts += 1;
                }
                let t = self.momentum.t();
                let beta = self.momentum.advance();
                let t_new = self.momentum.t();
                if self.variant == Variant::Fista || fu_total <= self.fx {
                    // x_{k+1} = u; z = u + β (u − x_k)
                    let (bu, bx) = (T::from_real(one + beta), T::from_real(-beta));
                    Zip::from(&mut self.z)
                        .and(&self.u)
                        .and(&self.x)
                        .for_each(|z, &u, &x| *z = bu * u + bx * x);
                    Zip::from(&mut self.az)
                        .and(&self.au)
                        .and(&self.ax)
                        .for_each(|z, &u, &x| *z = bu * u + bx * x);
                    std::mem::swap(&mut self.x, &mut self.u);
                    std::mem::swap(&mut self.ax, &mut self.au);
                    self.fx = fu_total;
                } else {
                    // MFISTA keeps x_k; z = x_k + (t_k / t_{k+1}) (u − x_k)
                    let c = t / t_new;
                    let (cu, cx) = (T::from_real(c), T::from_real(one - c));
                    Zip::from(&mut self.z)
                        .and(&self.u)
                        .and(&self.x)
                        .for_each(|z, &u, &x| *z = cu * u + cx * x);
                    Zip::from(&mut self.az)
                        .and(&self.au)
                        .and(&self.ax)
                        .for_each(|z, &u, &x| *z = cu * u + cx * x);
                }
            }
        }
        Ok(StepInfo {
            objective: Some(self.fx),
            rel_change,
            residual: Some(residual),
        })
    }
}

/// Solve `min_x ½‖A x − y‖² + R(x)` with the scheme of `params.variant`, from `x0`
/// (zero if `None`), reporting to `observer` after every iteration.
///
/// Returns the final iterate and the [`Report`] (iterations, objective history, stop reason,
/// time). See [`ProximalGradient::new`] for the errors.
pub fn solve<T, A, P>(
    a: &A,
    y: ArrayViewD<T>,
    prox: &P,
    params: &Params<T::Real>,
    x0: Option<ArrayViewD<T>>,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(ArrayD<T>, Report<T::Real>)>
where
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    P: Prox<T> + ?Sized,
{
    let mut s = ProximalGradient::new(a, y, prox, params, x0)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_x(), report))
}

/// FISTA from zero: [`solve`] with `params.variant` forced to an accelerated scheme
/// ([`Variant::Fista`], or [`Variant::MonotoneFista`] if that is what `params` asks for).
///
/// ```
/// use sparseinv_solvers::op::Matrix;
/// use sparseinv_solvers::prox::Zero;
/// use sparseinv_solvers::proximal::{fista, Params};
/// use ndarray::array;
/// let a = Matrix::new(array![[1.0f64, 0.0], [0.0, 3.0], [0.0, 0.0]]);
/// let y = array![1.0f64, 3.0, 5.0].into_dyn();
/// let (x, report) = fista(&a, y.view(), &Zero, &Params::default()).unwrap();
/// assert!((x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5);
/// assert!((report.final_objective().unwrap() - 12.5).abs() < 1e-8); // ½·5² is left
/// ```
pub fn fista<T, A, P>(
    a: &A,
    y: ArrayViewD<T>,
    prox: &P,
    params: &Params<T::Real>,
) -> Result<(ArrayD<T>, Report<T::Real>)>
where
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    P: Prox<T> + ?Sized,
{
    let mut p = *params;
    if p.variant == Variant::Ista {
        p.variant = Variant::Fista;
    }
    solve(a, y, prox, &p, None, &mut NoObserver)
}

/// ISTA from zero: [`solve`] with [`Variant::Ista`].
pub fn ista<T, A, P>(
    a: &A,
    y: ArrayViewD<T>,
    prox: &P,
    params: &Params<T::Real>,
) -> Result<(ArrayD<T>, Report<T::Real>)>
where
    T: Scalar,
    A: LinearOperator<T> + ?Sized,
    P: Prox<T> + ?Sized,
{
    let mut p = *params;
    p.variant = Variant::Ista;
    solve(a, y, prox, &p, None, &mut NoObserver)
}
