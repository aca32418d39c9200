//! Condat–Vũ primal–dual splitting (PDHG with a smooth term) for
//!
//! ```text
//! min_x  F(x) = f(x) + g(x) + Σ_i h_i(L_i x)
//! ```
//!
//! with `f` convex and differentiable with a `β`-Lipschitz gradient ([`SmoothTerm`]: e.g. the
//! weighted least-squares data term [`LeastSquares`] `½‖√w ⊙ (A x − y)‖²` for any
//! [`LinearOperator`] `A`, or [`ZeroSmooth`]), `g` and every `h_i` convex with a computable prox
//! ([`Prox`]), and every `L_i` any [`LinearOperator`] from the domain of `x` (finite
//! differences for total variation, a wavelet transform for analysis sparsity, ...).
//!
//! # The iteration
//!
//! From `(x_k, u_k)` (one dual variable `u_i` per term, in the range of `L_i`), with step sizes
//! `τ, σ > 0` and over-relaxation `ρ ∈ (0, 2)`:
//!
//! ```text
//! x̃      = prox_{τ g}( x_k − τ (∇f(x_k) + Σ_i L_iᴴ u_{i,k}) )
//! ũ_i    = prox_{σ h_i*}( u_{i,k} + σ L_i (2x̃ − x_k) )                 for every i
//! x_{k+1} = ρ x̃ + (1 − ρ) x_k,    u_{i,k+1} = ρ ũ_i + (1 − ρ) u_{i,k}
//! ```
//!
//! (Condat 2013, Algorithm 3.1; Vũ 2013). The conjugate prox comes from Moreau's identity,
//! `prox_{σh*}(w) = σ (s − prox_{h/σ}(s))` with `s = w/σ`, so any [`Prox`] serves as `h_i`.
//! With `f = 0` and `ρ = 1` this is the primal–dual hybrid gradient of Chambolle & Pock (2011)
//! with `θ = 1`; with no `h_i` it is forward–backward splitting.
//!
//! **Convergence** (Condat 2013, Theorem 3.1): if `1/τ − σ ‖Σ_i L_iᴴ L_i‖ ≥ β/2` and
//! `ρ ∈ (0, δ)` with `δ = 2 − (β/2)(1/τ − σ‖Σ L_iᴴL_i‖)⁻¹ ∈ [1, 2)`, then `x_k` converges to a
//! minimiser of `F` and `u_k` to a solution of the dual problem (when both exist). Since
//! `‖Σ_i L_iᴴ L_i‖ ≤ Σ_i ‖L_i‖²`, the steps are chosen from the operator norms
//! `ℓ = Σ_i s·‖L_i‖²` estimated by power iteration ([`op_norm`], safety factor `s`, default
//! 1.01, as FISTA uses) when not given ([`PdhgParams::tau`], [`PdhgParams::sigma`]):
//!
//! | known | `β > 0`, `ℓ > 0` | `β = 0`, `ℓ > 0` | `ℓ = 0` (no `h_i`) |
//! |---|---|---|---|
//! | neither | `σ = β/(2ℓ)`, `τ = 0.99/β` | `τ = σ = 0.99/√ℓ` | `τ = 0.99/β` (`σ` unused) |
//! | `τ` | `σ = 0.99 (1/τ − β/2)/ℓ` | same | — |
//! | `σ` | `τ = 0.99/(β/2 + σℓ)` | same | — |
//!
//! All satisfy the condition with a 1 % margin. When both are given they are used as they are
//! (the caller answers for the condition; no power iteration is run).
//!
//! # What each step reports
//!
//! - objective: `F(x_{k+1})` (indicators count 0 on their set, `+∞` outside);
//! - relative change: `‖x_{k+1} − x_k‖ / ‖x_{k+1}‖`;
//! - residual ([`PdhgParams::residual`], on by default): the KKT residual of the pair
//!   `(x̃, ũ)`, `r = sqrt(‖p‖² + Σ_i ‖d_i‖²)` with
//!
//!   ```text
//!   p   = (x_k − x̃)/τ − ∇f(x_k) + ∇f(x̃) − Σ_i L_iᴴ(u_{i,k} − ũ_i)  ∈ ∇f(x̃) + ∂g(x̃) + Σ_i L_iᴴ ũ_i
//!   d_i = (u_{i,k} − ũ_i)/σ + L_i (x̃ − x_k)                       ∈ ∂h_i*(ũ_i) − L_i x̃
//!   ```
//!
//!   (both memberships follow from the prox optimality conditions of the two updates;
//!   substituting the prox argument `s_i = u_{i,k}/σ + L_i(2x̃ − x_k)` gives
//!   `d_i = prox_{h_i/σ}(s_i) − L_i x̃`, which is how it is computed). So
//!   `p` is a subgradient of the primal objective at `x̃` when `ũ` is taken as the dual
//!   certificate, and `d_i` measures how far `L_i x̃ ∈ ∂h_i*(ũ_i)` (equivalently
//!   `ũ_i ∈ ∂h_i(L_i x̃)`) is from holding: `r = 0` exactly at a saddle point. It is an
//!   absolute quantity, in the units of `∇f`. For `ρ = 1` it is free (every term is computed
//!   anyway); for `ρ ≠ 1` it costs one more gradient of `f`.
//!
//! **Cost per iteration** (`ρ = 1`): one gradient of `f` (for [`LeastSquares`], one `A` and
//! one `Aᴴ`), one `L_i` and one `L_iᴴ` per term, one prox of `g` and of each `h_i`, and a few
//! element-wise passes. `L_i x_k` and `Σ L_iᴴ u_{i,k}` are carried from one iteration to the
//! next by linearity, never recomputed.
//! Without the residual and the objective ([`PdhgParams::residual`],
//! [`PdhgParams::objective`]) the element-wise work is four passes over `x` and three over
//! each `L_i x` (besides the operators and proxes). Large arrays run these passes in parallel
//! chunks on the rayon pool (as do [`FiniteDiff`](crate::op::FiniteDiff),
//! [`GroupL21`](crate::prox::GroupL21), [`NonNegative`](crate::prox::NonNegative) and
//! [`SquaredDistance`](crate::prox::SquaredDistance)); sums are added in chunk order, so the
//! iterates do not depend on the number of threads.
//!
//! # References
//!
//! - L. Condat, "A primal–dual splitting method for convex optimization involving Lipschitzian,
//!   proximable and linear composite terms", J. Optim. Theory Appl. 158 (2013) 460–479.
//! - B. C. Vũ, "A splitting algorithm for dual monotone inclusions involving cocoercive
//!   operators", Adv. Comput. Math. 38 (2013) 667–681.
//! - A. Chambolle, T. Pock, "A first-order primal–dual algorithm for convex problems with
//!   applications to imaging", J. Math. Imaging Vis. 40 (2011) 120–145.
//!
//! ```
//! use sparseinv_solvers::op::{Diagonal, FiniteDiff};
//! use sparseinv_solvers::prox::{L1, NonNegative};
//! use sparseinv_solvers::proximal::pdhg::{pdhg, LeastSquares, PdhgParams, Problem};
//! use sparseinv_solvers::iter::NoObserver;
//! use ndarray::{array, ArrayD};
//! // 1-D total-variation denoising with positivity: min ½‖x − y‖² + 0.5‖∇x‖₁, x ≥ 0
//! let y = array![1.0f64, 1.2, 0.9, 4.0, 4.1, -0.3].into_dyn();
//! let id = Diagonal::new(ArrayD::from_elem(vec![6], 1.0));
//! let f = LeastSquares::new(&id, y.view(), None).unwrap();
//! let d = FiniteDiff::new(&[6]).unwrap();
//! let tv = L1::new(0.5).unwrap();
//! let problem = Problem::new(&[6]).smooth(&f).prox(&NonNegative).add(&d, &tv);
//! let mut p = PdhgParams::default();
//! p.stop.max_iters = 5000;
//! p.stop.rel_tol = 0.0;
//! p.stop.residual_tol = Some(1e-10);
//! let (x, report) = pdhg(&problem, &p, None, &mut NoObserver).unwrap();
//! assert!(x.iter().all(|&v| v >= 0.0));
//! assert_eq!(report.stop_reason.as_str(), "residual");
//! ```

use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo, StopCriteria};
use crate::op::{check_shape, op_norm, LinearOperator, NormEstimate};
use crate::par;
use crate::prox::Prox;
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use num_traits::{Float, One, Zero};
use std::sync::Mutex;

/// A convex, differentiable term `f` with a `β`-Lipschitz gradient, the smooth part of
/// [`Problem`].
pub trait SmoothTerm<T: Scalar>: Send + Sync {
    /// `f(x)`.
    fn value(&self, x: ArrayViewD<T>) -> T::Real;
    /// `grad ← ∇f(x)` (for complex `x`, the gradient with respect to the real inner product
    /// `Re⟨·,·⟩`, e.g. `Aᴴ(Ax − y)`); returns `f(x)`.
    fn value_and_gradient_into(&self, x: ArrayViewD<T>, grad: ArrayViewMutD<T>) -> T::Real;
    /// The Lipschitz constant `β ≥ 0` of `∇f` (an upper bound).
    fn lipschitz(&self) -> T::Real;
    /// `Ok` when the term applies to arguments of shape `shape`. Default: every shape.
    fn check_shape(&self, _shape: &[usize]) -> Result<()> {
        Ok(())
    }
    /// Whether `f ≡ 0` (solvers then skip the gradient). Default `false`.
    fn is_zero(&self) -> bool {
        false
    }
}

/// `f ≡ 0`: `∇f = 0`, `β = 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroSmooth;

impl<T: Scalar> SmoothTerm<T> for ZeroSmooth {
    fn value(&self, _x: ArrayViewD<T>) -> T::Real {
        T::Real::zero()
    }
    fn value_and_gradient_into(&self, _x: ArrayViewD<T>, mut grad: ArrayViewMutD<T>) -> T::Real {
        grad.fill(T::zero());
        T::Real::zero()
    }
    fn lipschitz(&self) -> T::Real {
        T::Real::zero()
    }
    fn is_zero(&self) -> bool {
        true
    }
}

/// The (weighted) least-squares data term
///
/// ```text
/// f(x) = ½ Σ_j w_j |(A x − y)_j|²,   ∇f(x) = Aᴴ (w ⊙ (A x − y)),   β = max_j w_j · ‖A‖²
/// ```
///
/// for any [`LinearOperator`] `A`. Without weights `w ≡ 1` (`½‖Ax − y‖²`). A 0/1 mask `M`
/// is the weight `w = M` (then `f = ½‖M ⊙ (Ax − y)‖²`); inverse noise variances give the
/// Gaussian negative log-likelihood. `‖A‖` is estimated by power iteration ([`op_norm`] with
/// default settings) times the safety factor 1.01, unless given
/// ([`LeastSquares::with_lipschitz`]).
///
/// Each gradient costs one `A` and one `Aᴴ`; the residual buffer is kept inside (behind a
/// mutex, so the term is `Sync`).
pub struct LeastSquares<'a, T: Scalar, A: ?Sized> {
    a: &'a A,
    y: ArrayViewD<'a, T>,
    weights: Option<ArrayD<T::Real>>,
    lip: T::Real,
    scratch: Mutex<ArrayD<T>>,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized> LeastSquares<'a, T, A> {
    /// `½ Σ w |A x − y|²`, `β` from the power iteration. Errors: `y` or `weights` not of
    /// `A`'s range shape, non-finite `y`, negative or non-finite weights.
    pub fn new(a: &'a A, y: ArrayViewD<'a, T>, weights: Option<ArrayD<T::Real>>) -> Result<Self> {
        let n = op_norm(a, NormEstimate::default());
        let mut s = Self::with_lipschitz(a, y, weights, T::Real::zero())?;
        let wmax = s.max_weight();
        s.lip = real::<T::Real>(1.01) * n * n * wmax;
        Ok(s)
    }

    /// As [`new`](Self::new) with a given Lipschitz constant `beta ≥ 0` (no power iteration),
    /// e.g. when `‖A‖` is known in closed form. The caller answers for `beta ≥ max w · ‖A‖²`.
    pub fn with_lipschitz(
        a: &'a A,
        y: ArrayViewD<'a, T>,
        weights: Option<ArrayD<T::Real>>,
        beta: T::Real,
    ) -> Result<Self> {
        check_shape("data y", a.range_shape(), y.shape())?;
        check_finite("data y", y.iter())?;
        if let Some(w) = &weights {
            check_shape("weights", a.range_shape(), w.shape())?;
            if w.iter().any(|&v| !(v.is_finite() && v >= T::Real::zero())) {
                return Err(Error::param("weights", "must be finite and >= 0"));
            }
        }
        if !(beta.is_finite() && beta >= T::Real::zero()) {
            return Err(Error::param(
                "lipschitz",
                format!("must be finite and >= 0, got {beta}"),
            ));
        }
        Ok(LeastSquares {
            a,
            y,
            weights,
            lip: beta,
            scratch: Mutex::new(ArrayD::zeros(IxDyn(a.range_shape()))),
        })
    }

    fn max_weight(&self) -> T::Real {
        self.weights.as_ref().map_or(T::Real::one(), |w| {
            w.iter().fold(T::Real::zero(), |m, &v| m.max(v))
        })
    }

    /// `½ Σ w |r|²` and, in place, `r ← w ⊙ r`.
    fn weigh(&self, r: &mut ArrayD<T>) -> T::Real {
        let mut acc = T::Real::zero();
        match &self.weights {
            None => r.iter().for_each(|v| acc += v.abs2()),
            Some(w) => Zip::from(r).and(w).for_each(|v, &w| {
                acc += w * v.abs2();
                *v = v.scale(w);
            }),
        }
        acc * real::<T::Real>(0.5)
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> SmoothTerm<T> for LeastSquares<'_, T, A> {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        let mut r = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.a.apply_into(x, r.view_mut());
        *r -= &self.y;
        self.weigh(&mut r)
    }
    fn value_and_gradient_into(&self, x: ArrayViewD<T>, grad: ArrayViewMutD<T>) -> T::Real {
        let mut r = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.a.apply_into(x, r.view_mut());
        *r -= &self.y;
        let v = self.weigh(&mut r);
        self.a.adjoint_into(r.view(), grad);
        v
    }
    fn lipschitz(&self) -> T::Real {
        self.lip
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        check_shape(
            "least-squares operator domain",
            self.a.domain_shape(),
            shape,
        )
    }
}

/// The terms of `min_x f(x) + g(x) + Σ_i h_i(L_i x)` on arrays of one shape: built with
/// [`Problem::new`] (`f = 0`, `g = 0`, no `h_i`), then [`smooth`](Self::smooth),
/// [`prox`](Self::prox) and any number of [`add`](Self::add).
pub struct Problem<'a, T: Scalar> {
    shape: Vec<usize>,
    f: &'a dyn SmoothTerm<T>,
    g: &'a dyn Prox<T>,
    terms: Vec<(&'a dyn LinearOperator<T>, &'a dyn Prox<T>)>,
}

impl<T: Scalar> Clone for Problem<'_, T> {
    fn clone(&self) -> Self {
        Problem {
            shape: self.shape.clone(),
            f: self.f,
            g: self.g,
            terms: self.terms.clone(),
        }
    }
}

impl<'a, T: Scalar> Problem<'a, T> {
    /// The problem `min 0` over arrays of `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Problem {
            shape: shape.to_vec(),
            f: &ZeroSmooth,
            g: &crate::prox::Zero,
            terms: Vec::new(),
        }
    }
    /// Set the smooth term `f`.
    pub fn smooth(mut self, f: &'a dyn SmoothTerm<T>) -> Self {
        self.f = f;
        self
    }
    /// Set the proximable term `g` on `x` itself.
    pub fn prox(mut self, g: &'a dyn Prox<T>) -> Self {
        self.g = g;
        self
    }
    /// Add a composite term `h(L x)`.
    pub fn add(mut self, l: &'a dyn LinearOperator<T>, h: &'a dyn Prox<T>) -> Self {
        self.terms.push((l, h));
        self
    }
    /// The shape of `x`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of composite terms `h_i(L_i x)`.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }
    /// `F(x) = f(x) + g(x) + Σ_i h_i(L_i x)` (`+∞` outside an indicator's set).
    pub fn objective(&self, x: ArrayViewD<T>) -> Result<T::Real> {
        check_shape("x", &self.shape, x.shape())?;
        let mut v = self.f.value(x.view()) + self.g.value(x.view());
        for (l, h) in &self.terms {
            let lx = l.apply(x.view())?;
            v += h.value(lx.view());
        }
        Ok(v)
    }

    fn validate(&self) -> Result<()> {
        if self.shape.iter().product::<usize>() == 0 {
            return Err(Error::Empty {
                what: "unknown x".into(),
            });
        }
        self.f.check_shape(&self.shape)?;
        self.g.check_shape(&self.shape)?;
        if T::IS_COMPLEX && !self.g.supports_complex() {
            return Err(Error::Unsupported(
                "the term g is defined for real data only, but x is complex".into(),
            ));
        }
        for (i, (l, h)) in self.terms.iter().enumerate() {
            check_shape(&format!("domain of L_{i}"), &self.shape, l.domain_shape())?;
            h.check_shape(l.range_shape())?;
            if T::IS_COMPLEX && !h.supports_complex() {
                return Err(Error::Unsupported(format!(
                    "the term h_{i} is defined for real data only, but x is complex"
                )));
            }
        }
        Ok(())
    }
}

/// Parameters of [`Pdhg`]. `Default`: steps from the operator norms (see the
/// [module documentation](self)), `ρ = 1`, safety factor 1.01, KKT residual on, and the
/// default [`StopCriteria`] (500 iterations, relative change 1e-6).
#[derive(Debug, Clone, Copy)]
pub struct PdhgParams<R> {
    /// Primal step `τ > 0`; `None`: from the norms.
    pub tau: Option<R>,
    /// Dual step `σ > 0`; `None`: from the norms.
    pub sigma: Option<R>,
    /// Over-relaxation `ρ ∈ (0, 2)` (default 1: none). Convergence needs `ρ < δ`, see the
    /// module documentation.
    pub relaxation: R,
    /// Safety factor `s ≥ 1` on the power-iteration estimates of `‖L_i‖²` (default 1.01).
    pub norm_safety: R,
    /// Power-iteration settings for `‖L_i‖`.
    pub norm_estimate: NormEstimate,
    /// Compute the KKT residual each step (default `true`; it costs one read of the dual
    /// variables and of the primal buffers per iteration, and for `ρ ≠ 1` one more gradient
    /// of `f`).
    pub residual: bool,
    /// Evaluate the objective `F(x_{k+1})` every iteration (default `true`): it fills
    /// [`Report::objective_history`] and is what [`StopCriteria::objective_target`] and the
    /// divergence check read. Off, each iteration saves one pass over `x` and over each
    /// `L_i x` (a few percent on image problems); `objective_target` must then be `None`.
    pub objective: bool,
    /// When to stop.
    pub stop: StopCriteria<R>,
}

impl<R: Real> Default for PdhgParams<R> {
    fn default() -> Self {
        PdhgParams {
            tau: None,
            sigma: None,
            relaxation: R::one(),
            norm_safety: real(1.01),
            norm_estimate: NormEstimate::default(),
            residual: true,
            objective: true,
            stop: StopCriteria::default(),
        }
    }
}

impl<R: Real> PdhgParams<R> {
    /// Check every parameter is in range.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("tau", self.tau), ("sigma", self.sigma)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > R::zero()) {
                    return Err(Error::param(
                        name,
                        format!("must be finite and > 0, got {v}"),
                    ));
                }
            }
        }
        let two: R = real(2.0);
        if !(self.relaxation > R::zero() && self.relaxation < two) {
            return Err(Error::param(
                "relaxation",
                format!("must lie in (0, 2), got {}", self.relaxation),
            ));
        }
        if !(self.norm_safety.is_finite() && self.norm_safety >= R::one()) {
            return Err(Error::param(
                "norm_safety",
                format!("must be finite and >= 1, got {}", self.norm_safety),
            ));
        }
        if self.norm_estimate.max_iters == 0 {
            return Err(Error::param(
                "norm_estimate.max_iters",
                "must be at least 1",
            ));
        }
        if !self.objective && self.stop.objective_target.is_some() {
            return Err(Error::param(
                "objective",
                "stop.objective_target needs the objective: set objective = true",
            ));
        }
        self.stop.validate()
    }
}

/// The flat slice of a buffer owned by [`Pdhg`] (allocated in standard layout).
fn flat<T>(a: &ArrayD<T>) -> &[T] {
    a.as_slice().expect("PDHG buffers are in standard layout")
}

/// The flat mutable slice of a buffer owned by [`Pdhg`].
fn flat_mut<T>(a: &mut ArrayD<T>) -> &mut [T] {
    a.as_slice_mut()
        .expect("PDHG buffers are in standard layout")
}

/// Per-chunk partial sums `(‖p‖², ‖x_{k+1} − x_k‖², ‖x_{k+1}‖²)` of one PDHG step.
#[derive(Clone, Copy)]
struct Sums<R>(R, R, R);

impl<R: Real> Default for Sums<R> {
    fn default() -> Self {
        Sums(R::zero(), R::zero(), R::zero())
    }
}

impl<R: Real> std::ops::Add for Sums<R> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Sums(self.0 + o.0, self.1 + o.1, self.2 + o.2)
    }
}

impl<R> From<Sums<R>> for (R, R, R) {
    fn from(s: Sums<R>) -> Self {
        (s.0, s.1, s.2)
    }
}

/// Per-term state of [`Pdhg`].
struct Dual<T: Scalar> {
    /// `u_{i,k}`
    u: ArrayD<T>,
    /// `ũ_i`
    ut: ArrayD<T>,
    /// `L_i x_k`
    lx: ArrayD<T>,
    /// `L_i x̃`
    lxt: ArrayD<T>,
    /// scratch `s = w/σ`
    s: ArrayD<T>,
}

/// The Condat–Vũ / PDHG state machine; see the [module documentation](self). Drive it with
/// [`crate::iter::run`] or use [`pdhg`].
pub struct Pdhg<'a, T: Scalar> {
    problem: Problem<'a, T>,
    tau: T::Real,
    sigma: T::Real,
    rho: T::Real,
    want_residual: bool,
    want_objective: bool,
    x: ArrayD<T>,
    xt: ArrayD<T>,
    grad: ArrayD<T>,
    grad_t: ArrayD<T>,
    ltu: ArrayD<T>,
    ltu_t: ArrayD<T>,
    sdom: ArrayD<T>,
    duals: Vec<Dual<T>>,
    fx: T::Real,
}

impl<'a, T: Scalar> Pdhg<'a, T> {
    /// Set up from `x0` (zero if `None`) and zero duals: validates the parameters and the
    /// problem (shapes, complex support), chooses the steps, computes `∇f(x₀)` and `L_i x₀`.
    pub fn new(
        problem: &Problem<'a, T>,
        params: &PdhgParams<T::Real>,
        x0: Option<ArrayViewD<T>>,
    ) -> Result<Self> {
        params.validate()?;
        problem.validate()?;
        let dom = IxDyn(problem.shape());
        let x = match x0 {
            Some(x0) => {
                check_shape("initial x", problem.shape(), x0.shape())?;
                check_finite("initial x", x0.iter())?;
                x0.to_owned()
            }
            None => ArrayD::zeros(dom.clone()),
        };
        let (tau, sigma) = Self::steps(problem, params)?;
        let mut duals = Vec::with_capacity(problem.terms.len());
        for (l, _) in &problem.terms {
            let ran = IxDyn(l.range_shape());
            let mut lx = ArrayD::zeros(ran.clone());
            l.apply_into(x.view(), lx.view_mut());
            duals.push(Dual {
                u: ArrayD::zeros(ran.clone()),
                ut: ArrayD::zeros(ran.clone()),
                lxt: ArrayD::zeros(ran.clone()),
                s: ArrayD::zeros(ran),
                lx,
            });
        }
        let mut grad = ArrayD::zeros(dom.clone());
        let fx = problem.f.value_and_gradient_into(x.view(), grad.view_mut());
        Ok(Pdhg {
            problem: problem.clone(),
            tau,
            sigma,
            rho: params.relaxation,
            want_residual: params.residual,
            want_objective: params.objective,
            xt: ArrayD::zeros(dom.clone()),
            grad_t: ArrayD::zeros(dom.clone()),
            ltu: ArrayD::zeros(dom.clone()),
            ltu_t: ArrayD::zeros(dom.clone()),
            sdom: ArrayD::zeros(dom),
            grad,
            x,
            duals,
            fx,
        })
    }

    /// The step rule of the module documentation.
    fn steps(problem: &Problem<'a, T>, p: &PdhgParams<T::Real>) -> Result<(T::Real, T::Real)> {
        if let (Some(t), Some(s)) = (p.tau, p.sigma) {
            return Ok((t, s));
        }
        let beta = problem.f.lipschitz();
        if !(beta.is_finite() && beta >= T::Real::zero()) {
            return Err(Error::param(
                "lipschitz",
                format!("the smooth term's Lipschitz constant must be finite and >= 0, got {beta}"),
            ));
        }
        let mut ell = T::Real::zero();
        for (l, _) in &problem.terms {
            let n = op_norm::<T, dyn LinearOperator<T>>(*l, p.norm_estimate);
            ell += p.norm_safety * n * n;
        }
        let c: T::Real = real(0.99);
        let half: T::Real = real(0.5);
        let one = T::Real::one();
        let bad = |what: &str| {
            Err(Error::param(
                what,
                "no admissible step: the problem has neither a smooth term nor operators with a \
                 non-zero norm; give tau (and sigma) explicitly",
            ))
        };
        let (tau, sigma) = match (p.tau, p.sigma) {
            (Some(t), None) => {
                if ell == T::Real::zero() {
                    (t, one)
                } else {
                    let slack = one / t - half * beta;
                    if slack <= T::Real::zero() {
                        return Err(Error::param(
                            "tau",
                            format!("must be < 2/β = {} for this problem", (one + one) / beta),
                        ));
                    }
                    (t, c * slack / ell)
                }
            }
            (None, Some(s)) => {
                let d = half * beta + s * ell;
                if d == T::Real::zero() {
                    return bad("sigma");
                }
                (c / d, s)
            }
            _ => {
                if ell > T::Real::zero() && beta > T::Real::zero() {
                    (c / beta, half * beta / ell)
                } else if ell > T::Real::zero() {
                    let r = c / ell.sqrt();
                    (r, r)
                } else if beta > T::Real::zero() {
                    (c / beta, one)
                } else {
                    return bad("tau");
                }
            }
        };
        if !(tau.is_finite()
            && tau > T::Real::zero()
            && sigma.is_finite()
            && sigma > T::Real::zero())
        {
            return Err(Error::Numerical(format!(
                "PDHG step sizes are not finite and positive: tau = {tau}, sigma = {sigma}"
            )));
        }
        Ok((tau, sigma))
    }

    /// The current primal iterate `x_k`.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.x.view()
    }
    /// Consume the solver, returning `x_k`.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
    /// The current dual iterate `u_{i,k}` of term `i` (in the range of `L_i`).
    pub fn dual(&self, i: usize) -> Option<ArrayViewD<'_, T>> {
        self.duals.get(i).map(|d| d.u.view())
    }
    /// The primal step `τ` in use.
    pub fn tau(&self) -> T::Real {
        self.tau
    }
    /// The dual step `σ` in use.
    pub fn sigma(&self) -> T::Real {
        self.sigma
    }
    /// `F(x_k)` (at the start, `F(x₀)`).
    pub fn objective(&self) -> T::Real {
        let mut v = self.fx + self.problem.g.value(self.x.view());
        for (d, (_, h)) in self.duals.iter().zip(&self.problem.terms) {
            v += h.value(d.lx.view());
        }
        v
    }
}

impl<T: Scalar> IterativeSolver for Pdhg<'_, T> {
    type Real = T::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }

    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let one = T::Real::one();
        let zero = T::Real::zero();
        let tau = self.tau;
        let sigma = self.sigma;
        let inv_tau = one / tau;
        let inv_sigma = one / sigma;
        let two = T::from_real(real(2.0));
        let f_zero = self.problem.f.is_zero();
        let want = self.want_residual;
        // Every buffer below was allocated by `new` in standard layout, so the element-wise
        // passes run over flat slices, in parallel chunks for large problems (crate::par).
        // x̃ = prox_{τg}(x − τ(∇f(x) + Σ Lᴴu))
        {
            let (x, g, lu) = (flat(&self.x), flat(&self.grad), flat(&self.ltu));
            par::for_each_chunk(flat_mut(&mut self.sdom), |r, s| {
                let it = s.iter_mut().zip(&x[r.clone()]).zip(&lu[r.clone()]);
                if f_zero {
                    it.for_each(|((s, &x), &l)| *s = x - l.scale(tau));
                } else {
                    it.zip(&g[r])
                        .for_each(|(((s, &x), &l), &g)| *s = x - (g + l).scale(tau));
                }
            });
        }
        self.problem
            .g
            .prox_into(self.sdom.view(), tau, self.xt.view_mut());
        // duals
        let mut d2 = zero;
        for (k, (d, (l, h))) in self.duals.iter_mut().zip(&self.problem.terms).enumerate() {
            l.apply_into(self.xt.view(), d.lxt.view_mut());
            // s = w/σ = u/σ + 2 L x̃ − L x
            {
                let (u, a, b) = (flat(&d.u), flat(&d.lxt), flat(&d.lx));
                par::for_each_chunk(flat_mut(&mut d.s), |r, s| {
                    s.iter_mut()
                        .zip(&u[r.clone()])
                        .zip(&a[r.clone()])
                        .zip(&b[r])
                        .for_each(|(((s, &u), &a), &b)| *s = u.scale(inv_sigma) + two * a - b);
                });
            }
            h.prox_into(d.s.view(), inv_sigma, d.ut.view_mut());
            // ũ = σ (s − prox_{h/σ}(s)); the dual residual (u − ũ)/σ + L x̃ − L x equals
            // prox_{h/σ}(s) − L x̃ (substitute s), so it reads only what this pass has
            {
                let (s, a) = (flat(&d.s), flat(&d.lxt));
                d2 += par::for_each_chunk_sum(flat_mut(&mut d.ut), zero, |r, ut| {
                    let mut acc = zero;
                    if want {
                        ut.iter_mut()
                            .zip(&s[r.clone()])
                            .zip(&a[r])
                            .for_each(|((ut, &s), &a)| {
                                acc += (*ut - a).abs2();
                                *ut = (s - *ut).scale(sigma);
                            });
                    } else {
                        ut.iter_mut()
                            .zip(&s[r])
                            .for_each(|(ut, &s)| *ut = (s - *ut).scale(sigma));
                    }
                    acc
                });
            }
            // Σ Lᴴ ũ
            if k == 0 {
                l.adjoint_into(d.ut.view(), self.ltu_t.view_mut());
            } else {
                l.adjoint_into(d.ut.view(), self.sdom.view_mut());
                let add = flat(&self.sdom);
                par::for_each_chunk(flat_mut(&mut self.ltu_t), |r, o| {
                    o.iter_mut().zip(&add[r]).for_each(|(o, &a)| *o += a);
                });
            }
        }
        let relaxed = self.rho != one;
        // ∇f at x̃ (the next gradient when ρ = 1)
        let fxt = if f_zero || (relaxed && !self.want_residual) {
            zero
        } else {
            self.problem
                .f
                .value_and_gradient_into(self.xt.view(), self.grad_t.view_mut())
        };
        // primal residual p and the change
        let rho = self.rho;
        let omr = one - rho;
        let (x, xt) = (flat(&self.x), flat(&self.xt));
        let (p2, dx2, nx2): (T::Real, T::Real, T::Real) = if want {
            let (g, gt) = (flat(&self.grad), flat(&self.grad_t));
            let (lu, lut) = (flat(&self.ltu), flat(&self.ltu_t));
            par::sum_chunks(x.len(), Sums::<T::Real>::default(), |r| {
                let mut s = Sums::<T::Real>::default();
                for i in r {
                    let p = (x[i] - xt[i]).scale(inv_tau) - g[i] + gt[i] - lu[i] + lut[i];
                    let xn = xt[i].scale(rho) + x[i].scale(omr);
                    s.0 += p.abs2();
                    s.1 += (xn - x[i]).abs2();
                    s.2 += xn.abs2();
                }
                s
            })
        } else {
            par::sum_chunks(x.len(), Sums::<T::Real>::default(), |r| {
                let mut s = Sums::<T::Real>::default();
                for (&x, &xt) in x[r.clone()].iter().zip(&xt[r]) {
                    let xn = xt.scale(rho) + x.scale(omr);
                    s.1 += (xn - x).abs2();
                    s.2 += xn.abs2();
                }
                s
            })
        }
        .into();
        if relaxed {
            let mix = |dst: &mut ArrayD<T>, src: &ArrayD<T>| {
                let src = flat(src);
                par::for_each_chunk(flat_mut(dst), |r, o| {
                    o.iter_mut()
                        .zip(&src[r])
                        .for_each(|(x, &xt)| *x = xt.scale(rho) + x.scale(omr));
                });
            };
            mix(&mut self.x, &self.xt);
            mix(&mut self.ltu, &self.ltu_t);
            for d in &mut self.duals {
                mix(&mut d.u, &d.ut);
                mix(&mut d.lx, &d.lxt);
            }
            self.fx = self
                .problem
                .f
                .value_and_gradient_into(self.x.view(), self.grad.view_mut());
        } else {
            std::mem::swap(&mut self.x, &mut self.xt);
            std::mem::swap(&mut self.ltu, &mut self.ltu_t);
            for d in &mut self.duals {
                std::mem::swap(&mut d.u, &mut d.ut);
                std::mem::swap(&mut d.lx, &mut d.lxt);
            }
            if !f_zero {
                std::mem::swap(&mut self.grad, &mut self.grad_t);
            }
            self.fx = fxt;
        }
        let dx = dx2.sqrt();
        let nx = nx2.sqrt();
        let rel_change = if nx > zero {
            dx / nx
        } else if dx == zero {
            zero
        } else {
            one
        };
        Ok(StepInfo {
            objective: self.want_objective.then(|| self.objective()),
            rel_change,
            residual: if want { Some((p2 + d2).sqrt()) } else { None },
        })
    }
}

/// Solve `min f(x) + g(x) + Σ_i h_i(L_i x)` with [`Pdhg`] from `x0` (zero if `None`) and
/// zero duals, reporting to `observer` after each iteration. Returns the final `x` and the
/// [`Report`]. Errors: see [`Pdhg::new`].
pub fn pdhg<T: Scalar>(
    problem: &Problem<'_, T>,
    params: &PdhgParams<T::Real>,
    x0: Option<ArrayViewD<T>>,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let mut s = Pdhg::new(problem, params, x0)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_x(), report))
}
