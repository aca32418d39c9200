//! Matrix-free Krylov solvers for linear systems and least squares, through
//! [`LinearOperator`]: LSQR (Paige & Saunders 1982), CGLS (conjugate gradients on the normal
//! equations) and CG (for Hermitian positive definite operators).
//!
//! All three are [`IterativeSolver`] state machines driven by [`crate::iter::run`], generic
//! over every [`Scalar`] (real and complex), and work on arrays of the operator's shapes (any
//! dimension). The one-call helpers [`lsqr`], [`cgls`] and [`cg`] take a [`KrylovParams`]
//! (the shared [`StopCriteria`] in its field `stop`, and an optional Tikhonov damping) and an
//! [`Observer`] that sees every iterate; they return the [`KrylovSolution`] beside the run's
//! [`Report`].
//!
//! | solver | solves | residual reported to the driver |
//! |---|---|---|
//! | [`Lsqr`] | `min ‖A x − b‖² + λ²‖x‖²` | `min(‖r‖/‖b‖, ‖Aᴴr − λ²x‖/(‖Ā‖_F ‖r̄‖))` |
//! | [`Cgls`] | the same problem, via `(AᴴA + λ² I) x = Aᴴ b` | `min(‖r‖/‖b‖, ‖Aᴴr − λ²x‖/‖Aᴴb − λ²x₀‖)` |
//! | [`Cg`] | `A x = b`, `A` Hermitian positive definite | `‖b − A x‖/‖b‖` |
//!
//! Here `λ` is the `damp` parameter (0 for plain least squares), `Ā = [A; λI]` and `r̄` the
//! residual of the damped problem. LSQR is mathematically equivalent to CGLS but numerically
//! more reliable on ill-conditioned problems (Paige & Saunders, *LSQR: An algorithm for sparse
//! linear equations and sparse least squares*, ACM TOMS 8(1), 1982). Both need one `A` and one
//! `Aᴴ` product per iteration; the error in exact arithmetic decreases like
//! `((κ − 1)/(κ + 1))^k` with `κ` the condition number of `A` (of `Ā` when damped).
//!
//! ```
//! use sparseinv_solvers::iter::{NoObserver, StopReason};
//! use sparseinv_solvers::krylov::{lsqr, KrylovParams};
//! use sparseinv_solvers::op::Diagonal;
//! use ndarray::array;
//! // diagonal least squares: x = b / d
//! let a = Diagonal::new(array![1.0, 2.0, 4.0].into_dyn());
//! let b = array![1.0, 1.0, 1.0].into_dyn();
//! let (sol, report) = lsqr(&a, b.view(), None, &KrylovParams::default(), &mut NoObserver).unwrap();
//! assert!((sol.x[2] - 0.25f64).abs() < 1e-10);
//! assert_eq!(report.stop_reason, StopReason::Residual);
//! ```

use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo, StopCriteria};
use crate::linalg::{norm2_sq, vdot};
use crate::op::{check_shape, LinearOperator};
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use num_traits::{Float, One, Zero};

/// Parameters of the one-call helpers [`lsqr`], [`cgls`] and [`cg`].
///
/// `Default`: at most 1000 iterations, stop when the solver's residual measure (see the
/// module table) is `≤ 1e-10`, no relative-change test, damping `0`.
#[derive(Debug, Clone, Copy)]
pub struct KrylovParams {
    /// Stopping rules, in `f64` whatever the scalar type (converted to the solver's real
    /// type). `residual_tol` applies to the residual measure of the module table; the
    /// default is [`KrylovParams::default_stop`].
    pub stop: StopCriteria<f64>,
    /// Tikhonov damping `λ ≥ 0` (LSQR and CGLS only; CG ignores it).
    pub damp: f64,
}

impl Default for KrylovParams {
    fn default() -> Self {
        KrylovParams {
            stop: Self::default_stop(),
            damp: 0.0,
        }
    }
}

impl KrylovParams {
    /// The default stopping rules: `max_iters = 1000`, `residual_tol = Some(1e-10)`,
    /// `rel_tol = 0` (off), no objective target, divergence factor `1e300` (Krylov solvers
    /// report no objective).
    pub fn default_stop() -> StopCriteria<f64> {
        Self::stop_with(1000, 1e-10)
    }

    /// Stopping rules with budget `max_iters` and residual tolerance `tol`, the rest as in
    /// [`KrylovParams::default_stop`].
    pub fn stop_with(max_iters: usize, tol: f64) -> StopCriteria<f64> {
        StopCriteria {
            max_iters,
            rel_tol: 0.0,
            residual_tol: Some(tol),
            objective_target: None,
            divergence_factor: 1e300,
        }
    }

    /// Check the parameters.
    pub fn validate(&self) -> Result<()> {
        self.stop.validate()?;
        if let Some(t) = self.stop.residual_tol {
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::param(
                    "residual_tol",
                    "must be finite and non-negative",
                ));
            }
        }
        if !(self.damp.is_finite() && self.damp >= 0.0) {
            return Err(Error::param("damp", "must be finite and non-negative"));
        }
        Ok(())
    }

    fn criteria<R: Real>(&self) -> StopCriteria<R> {
        stop_as(&self.stop)
    }
}

/// The `f64` stopping rules of a params struct in the solver's real type `R`.
pub(crate) fn stop_as<R: Real>(s: &StopCriteria<f64>) -> StopCriteria<R> {
    StopCriteria {
        max_iters: s.max_iters,
        rel_tol: real(s.rel_tol),
        residual_tol: s.residual_tol.map(real),
        objective_target: s.objective_target.map(real),
        divergence_factor: real(s.divergence_factor),
    }
}

/// The outcome of a Krylov solve.
#[derive(Debug, Clone)]
pub struct KrylovSolution<T: Scalar> {
    /// The computed solution.
    pub x: ArrayD<T>,
    /// `‖b − A x‖` at the returned `x` (recomputed, not the recursive estimate).
    pub residual_norm: T::Real,
    /// The last value of the solver's convergence measure (see the module table).
    pub measure: T::Real,
}

fn validate_rhs<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: &ArrayViewD<T>,
    x0: Option<&ArrayViewD<T>>,
) -> Result<ArrayD<T>> {
    check_shape("right-hand side b", a.range_shape(), b.shape())?;
    check_finite("right-hand side b", b.iter())?;
    match x0 {
        Some(x0) => {
            check_shape("initial guess x0", a.domain_shape(), x0.shape())?;
            check_finite("initial guess x0", x0.iter())?;
            Ok(x0.to_owned())
        }
        None => Ok(ArrayD::zeros(IxDyn(a.domain_shape()))),
    }
}

fn nrm<T: Scalar>(x: &ArrayD<T>) -> T::Real {
    norm2_sq(x.view()).sqrt()
}

fn scale_inplace<T: Scalar>(x: &mut ArrayD<T>, r: T::Real) {
    x.mapv_inplace(|v| v.scale(r));
}

/// LSQR state: solves `min ‖A x − b‖² + λ²‖x‖²` by Golub–Kahan bidiagonalisation
/// (Paige & Saunders 1982).
///
/// Each [`step`](IterativeSolver::step) performs one bidiagonalisation step (one `A` and one
/// `Aᴴ` product, requested together through
/// [`LinearOperator::apply_sub_adjoint_into`] so that a dense operator reads its matrix once)
/// and the QR update. The scalars `α`, `β` of the bidiagonalisation are norms,
/// hence real, so the Givens rotations are real also for complex `T`.
///
/// Reported residual: `min(‖r̄‖/‖b‖, ‖Āᴴ r̄‖/(‖Ā‖_F ‖r̄‖))` from the recursive estimates, with
/// `Ā = [A; λI]`: the first term goes to 0 for consistent systems, the second (the normalised
/// optimality residual) for inconsistent least-squares problems.
pub struct Lsqr<'a, T: Scalar, A: LinearOperator<T> + ?Sized> {
    a: &'a A,
    x: ArrayD<T>,
    u: ArrayD<T>,
    v: ArrayD<T>,
    w: ArrayD<T>,
    av: ArrayD<T>,
    atu: ArrayD<T>,
    alpha: T::Real,
    phibar: T::Real,
    rhobar: T::Real,
    damp: T::Real,
    bnorm: T::Real,
    anorm2: T::Real,
    res2: T::Real,
    xnorm_sq: T::Real,
    done: bool,
    measure: T::Real,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized> Lsqr<'a, T, A> {
    /// Start LSQR on `min ‖A x − b‖² + damp²‖x‖²` from `x0` (zero if `None`).
    ///
    /// Errors on shape mismatch, non-finite input or invalid `damp`.
    pub fn new(a: &'a A, b: ArrayViewD<T>, x0: Option<ArrayViewD<T>>, damp: f64) -> Result<Self> {
        if !(damp.is_finite() && damp >= 0.0) {
            return Err(Error::param("damp", "must be finite and non-negative"));
        }
        let x = validate_rhs(a, &b, x0.as_ref())?;
        let mut u = b.to_owned();
        let mut ax = ArrayD::zeros(IxDyn(a.range_shape()));
        if x.iter().any(|v| *v != T::zero()) {
            a.apply_into(x.view(), ax.view_mut());
            u -= &ax;
        }
        let bnorm = nrm(&b.to_owned());
        let beta = nrm(&u);
        let mut v = ArrayD::zeros(IxDyn(a.domain_shape()));
        let mut alpha = T::Real::zero();
        if beta > T::Real::zero() {
            scale_inplace(&mut u, T::Real::one() / beta);
            a.adjoint_into(u.view(), v.view_mut());
            alpha = nrm(&v);
            if alpha > T::Real::zero() {
                scale_inplace(&mut v, T::Real::one() / alpha);
            }
        }
        let done = beta == T::Real::zero() || alpha == T::Real::zero();
        let w = v.clone();
        let xnorm_sq = norm2_sq(x.view());
        Ok(Lsqr {
            a,
            x,
            u,
            w,
            av: ax,
            atu: ArrayD::zeros(IxDyn(a.domain_shape())),
            v,
            alpha,
            phibar: beta,
            rhobar: alpha,
            damp: real(damp),
            bnorm,
            anorm2: T::Real::zero(),
            res2: T::Real::zero(),
            xnorm_sq,
            done,
            measure: if done {
                T::Real::zero()
            } else {
                T::Real::one()
            },
        })
    }

    /// The current iterate.
    pub fn x(&self) -> &ArrayD<T> {
        &self.x
    }
    /// Consume the solver and return the iterate.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
    /// Recursive estimate of `‖r̄‖ = sqrt(‖b − A x‖² + λ²‖x‖²)`.
    pub fn residual_estimate(&self) -> T::Real {
        (self.phibar * self.phibar + self.res2).sqrt()
    }
    /// Estimate of the Frobenius norm of `Ā = [A; λI]` accumulated so far (a lower bound).
    pub fn anorm_estimate(&self) -> T::Real {
        self.anorm2.sqrt()
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> IterativeSolver for Lsqr<'_, T, A> {
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let zero = T::Real::zero();
        let one = T::Real::one();
        if self.done {
            return Ok(StepInfo {
                objective: None,
                rel_change: zero,
                residual: Some(zero),
            });
        }
        // β u = A v − α u, and Aᴴ(β u) with it: one call, so that an operator that can form
        // both products in one pass over its data does (LinearOperator::apply_sub_adjoint_into)
        let alpha = self.alpha;
        self.a.apply_sub_adjoint_into(
            self.v.view(),
            alpha,
            self.u.view_mut(),
            self.atu.view_mut(),
            self.av.view_mut(),
        );
        let beta = nrm(&self.u);
        self.anorm2 = self.anorm2 + alpha * alpha + beta * beta + self.damp * self.damp;
        let mut new_alpha = zero;
        if beta > zero {
            let inv_beta = one / beta;
            scale_inplace(&mut self.u, inv_beta);
            // α v = Aᴴ u − β v with Aᴴ u = Aᴴ(β u) / β, and ‖α v‖² in the same pass
            let mut nv2 = zero;
            Zip::from(&mut self.v).and(&self.atu).for_each(|v, &atu| {
                let t = atu.scale(inv_beta) - v.scale(beta);
                nv2 += t.abs2();
                *v = t;
            });
            new_alpha = nv2.sqrt();
            if new_alpha > zero {
                scale_inplace(&mut self.v, one / new_alpha);
            }
        }
        // eliminate the damping term
        let (rhobar1, phibar_d) = if self.damp > zero {
            let rb1 = (self.rhobar * self.rhobar + self.damp * self.damp).sqrt();
            let c1 = self.rhobar / rb1;
            let s1 = self.damp / rb1;
            let psi = s1 * self.phibar;
            self.res2 += psi * psi;
            (rb1, c1 * self.phibar)
        } else {
            (self.rhobar, self.phibar)
        };
        // plane rotation eliminating β
        let rho = (rhobar1 * rhobar1 + beta * beta).sqrt();
        if rho == zero {
            self.done = true;
            self.measure = zero;
            return Ok(StepInfo {
                objective: None,
                rel_change: zero,
                residual: Some(zero),
            });
        }
        let c = rhobar1 / rho;
        let s = beta / rho;
        let theta = s * new_alpha;
        self.rhobar = -c * new_alpha;
        let phi = c * phibar_d;
        self.phibar = s * phibar_d;
        // x += (φ/ρ) w ; w = v − (θ/ρ) w
        let t1 = phi / rho;
        let t2 = -theta / rho;
        let mut dx2 = zero;
        let mut xn2 = zero;
        Zip::from(&mut self.x)
            .and(&mut self.w)
            .and(&self.v)
            .for_each(|x, w, &v| {
                let d = w.scale(t1);
                dx2 += d.abs2();
                *x += d;
                xn2 += x.abs2();
                *w = v + w.scale(t2);
            });
        self.xnorm_sq = xn2;
        self.alpha = new_alpha;
        // convergence measures
        let rnorm = self.residual_estimate();
        let arnorm = new_alpha * (c * self.phibar).abs();
        let anorm = self.anorm2.sqrt();
        let test1 = if self.bnorm > zero {
            rnorm / self.bnorm
        } else {
            zero
        };
        let test2 = if rnorm > zero && anorm > zero {
            arnorm / (anorm * rnorm)
        } else {
            zero
        };
        self.measure = test1.min(test2);
        if new_alpha == zero || beta == zero {
            // the Krylov space is exhausted: x is the exact (damped) LS solution
            self.done = true;
            self.measure = zero;
        }
        let xn = self.xnorm_sq.sqrt();
        Ok(StepInfo {
            objective: None,
            rel_change: if xn > zero { dx2.sqrt() / xn } else { zero },
            residual: Some(self.measure),
        })
    }
}

/// CGLS state: conjugate gradients on the normal equations `(AᴴA + λ²I) x = Aᴴ b`, written so
/// that `AᴴA` is never formed (Hestenes & Stiefel 1952; Björck, *Numerical Methods for Least
/// Squares Problems*, 1996, §7.4).
///
/// Reported residual: `min(‖b − A x‖/‖b‖, ‖s‖/‖s₀‖)` with `s = Aᴴ(b − A x) − λ² x` the
/// normal-equations residual.
pub struct Cgls<'a, T: Scalar, A: LinearOperator<T> + ?Sized> {
    a: &'a A,
    x: ArrayD<T>,
    r: ArrayD<T>,
    s: ArrayD<T>,
    p: ArrayD<T>,
    q: ArrayD<T>,
    gamma: T::Real,
    s0: T::Real,
    bnorm: T::Real,
    damp2: T::Real,
    measure: T::Real,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized> Cgls<'a, T, A> {
    /// Start CGLS on `min ‖A x − b‖² + damp²‖x‖²` from `x0` (zero if `None`).
    pub fn new(a: &'a A, b: ArrayViewD<T>, x0: Option<ArrayViewD<T>>, damp: f64) -> Result<Self> {
        if !(damp.is_finite() && damp >= 0.0) {
            return Err(Error::param("damp", "must be finite and non-negative"));
        }
        let x = validate_rhs(a, &b, x0.as_ref())?;
        let damp2: T::Real = real(damp * damp);
        let mut r = b.to_owned();
        let mut q = ArrayD::zeros(IxDyn(a.range_shape()));
        a.apply_into(x.view(), q.view_mut());
        r -= &q;
        let mut s = ArrayD::zeros(IxDyn(a.domain_shape()));
        a.adjoint_into(r.view(), s.view_mut());
        if damp2 > T::Real::zero() {
            Zip::from(&mut s)
                .and(&x)
                .for_each(|s, &x| *s -= x.scale(damp2));
        }
        let gamma = norm2_sq(s.view());
        Ok(Cgls {
            a,
            bnorm: nrm(&b.to_owned()),
            p: s.clone(),
            s0: gamma.sqrt(),
            x,
            r,
            s,
            q,
            gamma,
            damp2,
            measure: T::Real::one(),
        })
    }
    /// The current iterate.
    pub fn x(&self) -> &ArrayD<T> {
        &self.x
    }
    /// Consume the solver and return the iterate.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> IterativeSolver for Cgls<'_, T, A> {
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let zero = T::Real::zero();
        if self.gamma == zero {
            return Ok(StepInfo {
                objective: None,
                rel_change: zero,
                residual: Some(zero),
            });
        }
        self.a.apply_into(self.p.view(), self.q.view_mut());
        let delta = norm2_sq(self.q.view()) + self.damp2 * norm2_sq(self.p.view());
        if delta == zero {
            self.gamma = zero;
            return Ok(StepInfo {
                objective: None,
                rel_change: zero,
                residual: Some(zero),
            });
        }
        let alpha = self.gamma / delta;
        let mut dx2 = zero;
        Zip::from(&mut self.x).and(&self.p).for_each(|x, &p| {
            let d = p.scale(alpha);
            dx2 += d.abs2();
            *x += d;
        });
        Zip::from(&mut self.r)
            .and(&self.q)
            .for_each(|r, &q| *r -= q.scale(alpha));
        self.a.adjoint_into(self.r.view(), self.s.view_mut());
        if self.damp2 > zero {
            let d2 = self.damp2;
            Zip::from(&mut self.s)
                .and(&self.x)
                .for_each(|s, &x| *s -= x.scale(d2));
        }
        let gamma_new = norm2_sq(self.s.view());
        let beta = gamma_new / self.gamma;
        self.gamma = gamma_new;
        Zip::from(&mut self.p)
            .and(&self.s)
            .for_each(|p, &s| *p = s + p.scale(beta));
        let rn = nrm(&self.r);
        let t1 = if self.bnorm > zero {
            rn / self.bnorm
        } else {
            zero
        };
        let t2 = if self.s0 > zero {
            gamma_new.sqrt() / self.s0
        } else {
            zero
        };
        let xn = nrm(&self.x);
        self.measure = t1.min(t2);
        Ok(StepInfo {
            objective: None,
            rel_change: if xn > zero { dx2.sqrt() / xn } else { zero },
            residual: Some(self.measure),
        })
    }
}

/// Conjugate gradients for `A x = b` with `A` Hermitian positive definite (domain and range of
/// the same shape). Reported residual: `‖b − A x‖/‖b‖` (the recursively updated residual).
///
/// Typical use: the x-update of ADMM, `(AᴴA + ρI) x = rhs`, with `A` an operator sum.
pub struct Cg<'a, T: Scalar, A: LinearOperator<T> + ?Sized> {
    a: &'a A,
    x: ArrayD<T>,
    r: ArrayD<T>,
    p: ArrayD<T>,
    q: ArrayD<T>,
    rr: T::Real,
    bnorm: T::Real,
    /// Preconditioner `M ≈ A⁻¹` and `z = M r`, `⟨r, z⟩` (preconditioned CG only).
    m: Option<&'a dyn LinearOperator<T>>,
    z: ArrayD<T>,
    rz: T::Real,
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized> Cg<'a, T, A> {
    /// Start CG on `A x = b` from `x0` (zero if `None`). Errors when `A` is not square in
    /// shape, on shape mismatch and on non-finite input. Positive definiteness is not checked;
    /// a non-positive curvature `⟨p, A p⟩ ≤ 0` is reported as [`Error::Numerical`] by `step`.
    pub fn new(a: &'a A, b: ArrayViewD<T>, x0: Option<ArrayViewD<T>>) -> Result<Self> {
        check_shape("CG operator range", a.domain_shape(), a.range_shape())?;
        let x = validate_rhs(a, &b, x0.as_ref())?;
        let mut r = b.to_owned();
        let mut q = ArrayD::zeros(IxDyn(a.range_shape()));
        a.apply_into(x.view(), q.view_mut());
        r -= &q;
        let rr = norm2_sq(r.view());
        Ok(Cg {
            a,
            bnorm: nrm(&b.to_owned()),
            p: r.clone(),
            x,
            r,
            q,
            rr,
            m: None,
            z: ArrayD::zeros(IxDyn(&[0])),
            rz: rr,
        })
    }

    /// Preconditioned CG (Hestenes & Stiefel 1952; e.g. Saad, *Iterative Methods for Sparse
    /// Linear Systems*, Alg. 9.1) on `A x = b` with `M ≈ A⁻¹` Hermitian positive definite:
    /// `z = M r`, `α = ⟨r, z⟩/⟨p, A p⟩`, `β = ⟨r₊, z₊⟩/⟨r, z⟩`, `p₊ = z₊ + β p`. The iterates
    /// minimise the `A`-norm of the error over the Krylov space of `M A`, so the solution is
    /// the same as plain CG's and only the number of steps changes: few when `M A` has
    /// clustered eigenvalues (e.g. `M` the exact inverse of a circular version of a convolution
    /// system whose boundary differs, [`crate::pnp::CirculantNormalInverse`]). The reported
    /// residual is still `‖b − A x‖/‖b‖`. Errors as [`Cg::new`], and when `M`'s shapes are not
    /// `A`'s domain.
    pub fn preconditioned(
        a: &'a A,
        m: &'a dyn LinearOperator<T>,
        b: ArrayViewD<T>,
        x0: Option<ArrayViewD<T>>,
    ) -> Result<Self> {
        check_shape("preconditioner domain", a.domain_shape(), m.domain_shape())?;
        check_shape("preconditioner range", a.domain_shape(), m.range_shape())?;
        let mut s = Cg::new(a, b, x0)?;
        let mut z = ArrayD::zeros(IxDyn(a.domain_shape()));
        m.apply_into(s.r.view(), z.view_mut());
        s.rz = vdot(s.r.view(), z.view()).re();
        s.p.assign(&z);
        s.z = z;
        s.m = Some(m);
        Ok(s)
    }
    /// The current iterate.
    pub fn x(&self) -> &ArrayD<T> {
        &self.x
    }
    /// Consume the solver and return the iterate.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> IterativeSolver for Cg<'_, T, A> {
    type Real = T::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let zero = T::Real::zero();
        if self.rr == zero {
            return Ok(StepInfo {
                objective: None,
                rel_change: zero,
                residual: Some(zero),
            });
        }
        self.a.apply_into(self.p.view(), self.q.view_mut());
        let curv = vdot(self.p.view(), self.q.view()).re();
        if curv <= zero || !curv.is_finite() {
            return Err(Error::Numerical(format!(
                "CG: non-positive curvature <p, A p> = {curv}; the operator is not positive definite"
            )));
        }
        let alpha = self.rz / curv;
        let mut dx2 = zero;
        Zip::from(&mut self.x).and(&self.p).for_each(|x, &p| {
            let d = p.scale(alpha);
            dx2 += d.abs2();
            *x += d;
        });
        Zip::from(&mut self.r)
            .and(&self.q)
            .for_each(|r, &q| *r -= q.scale(alpha));
        let rr_new = norm2_sq(self.r.view());
        self.rr = rr_new;
        match self.m {
            None => {
                let beta = rr_new / self.rz;
                self.rz = rr_new;
                Zip::from(&mut self.p)
                    .and(&self.r)
                    .for_each(|p, &r| *p = r + p.scale(beta));
            }
            Some(m) => {
                m.apply_into(self.r.view(), self.z.view_mut());
                let rz_new = vdot(self.r.view(), self.z.view()).re();
                if !(rz_new >= zero && rz_new.is_finite()) {
                    return Err(Error::Numerical(format!(
                        "preconditioned CG: <r, M r> = {rz_new}; the preconditioner is not \
                         positive definite"
                    )));
                }
                let beta = if self.rz > zero {
                    rz_new / self.rz
                } else {
                    zero
                };
                self.rz = rz_new;
                Zip::from(&mut self.p)
                    .and(&self.z)
                    .for_each(|p, &z| *p = z + p.scale(beta));
            }
        }
        let xn = nrm(&self.x);
        Ok(StepInfo {
            objective: None,
            rel_change: if xn > zero { dx2.sqrt() / xn } else { zero },
            residual: Some(if self.bnorm > zero {
                rr_new.sqrt() / self.bnorm
            } else {
                zero
            }),
        })
    }
}

fn finish<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: &ArrayViewD<T>,
    x: ArrayD<T>,
    measure: T::Real,
) -> Result<KrylovSolution<T>> {
    let mut ax = ArrayD::zeros(IxDyn(a.range_shape()));
    a.apply_into(x.view(), ax.view_mut());
    let mut r2 = T::Real::zero();
    Zip::from(&ax)
        .and(b)
        .for_each(|&p, &q| r2 += (q - p).abs2());
    if x.iter().any(|v| !v.is_finite_scalar()) {
        return Err(Error::Numerical(
            "Krylov solver produced a non-finite iterate".into(),
        ));
    }
    Ok(KrylovSolution {
        x,
        residual_norm: r2.sqrt(),
        measure,
    })
}

/// Solve `min ‖A x − b‖² + damp²‖x‖²` with [`Lsqr`] from `x0` (zero if `None`).
///
/// `observer` is called after every iteration and sees the iterate
/// ([`IterInfo::iterate`](crate::iter::IterInfo::iterate)); pass
/// [`&mut NoObserver`](crate::iter::NoObserver) for none. Returns the solution and the run's
/// [`Report`] (iterations, stop reason, relative-change history, time).
pub fn lsqr<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    x0: Option<ArrayViewD<T>>,
    p: &KrylovParams,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(KrylovSolution<T>, Report<T::Real>)> {
    p.validate()?;
    let mut s = Lsqr::new(a, b.view(), x0, p.damp)?;
    let rep = run(&mut s, &p.criteria(), observer)?;
    let m = s.measure;
    Ok((finish(a, &b, s.into_x(), m)?, rep))
}

/// Solve `min ‖A x − b‖² + damp²‖x‖²` with [`Cgls`] from `x0` (zero if `None`); observer
/// and return value as for [`lsqr`].
pub fn cgls<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    x0: Option<ArrayViewD<T>>,
    p: &KrylovParams,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(KrylovSolution<T>, Report<T::Real>)> {
    p.validate()?;
    let mut s = Cgls::new(a, b.view(), x0, p.damp)?;
    let rep = run(&mut s, &p.criteria(), observer)?;
    let m = if s.gamma == T::Real::zero() {
        T::Real::zero()
    } else {
        s.measure
    };
    Ok((finish(a, &b, s.into_x(), m)?, rep))
}

/// Solve `A x = b` for Hermitian positive definite `A` with [`Cg`] from `x0` (zero if
/// `None`; `damp` is ignored); observer and return value as for [`lsqr`].
pub fn cg<T: Scalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    x0: Option<ArrayViewD<T>>,
    p: &KrylovParams,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(KrylovSolution<T>, Report<T::Real>)> {
    p.validate()?;
    let mut s = Cg::new(a, b.view(), x0)?;
    let rep = run(&mut s, &p.criteria(), observer)?;
    let bn = nrm(&b.to_owned());
    let mut sol = finish(a, &b, s.into_x(), T::Real::zero())?;
    sol.measure = if bn > T::Real::zero() {
        sol.residual_norm / bn
    } else {
        T::Real::zero()
    };
    Ok((sol, rep))
}
