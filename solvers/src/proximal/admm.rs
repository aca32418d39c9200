//! ADMM (alternating direction method of multipliers) for
//!
//! ```text
//! min_x  ½‖A x − y‖² + g(L x)
//! ```
//!
//! with any [`LinearOperator`] `A`, `L` (the identity when not given) and any [`Prox`] `g`, in
//! the scaled form with the splitting `z = L x` and the scaled dual `u` (Boyd, Parikh, Chu,
//! Peleato & Eckstein, "Distributed optimization and statistical learning via the alternating
//! direction method of multipliers", Found. Trends Mach. Learn. 3, 2011, §3.1.1), penalty
//! `ρ > 0`:
//!
//! ```text
//! x_{k+1} = argmin_x ½‖A x − y‖² + (ρ/2)‖L x − z_k + u_k‖²
//!         = (AᴴA + ρ LᴴL)⁻¹ (Aᴴ y + ρ Lᴴ(z_k − u_k))
//! z_{k+1} = prox_{g/ρ}(L x_{k+1} + u_k)
//! u_{k+1} = u_k + L x_{k+1} − z_{k+1}
//! ```
//!
//! The x-update ([`XUpdate`]):
//! - **exact in the Fourier basis** when `A` is [`Diagonalizable`] (e.g. a circular
//!   [`Conv2d`](crate::op::Conv2d)) and `L = I`:
//!   `x = Fᴴ diag(1/(|λ|² + ρ)) F (Aᴴy + ρ(z − u))`, two FFTs;
//! - **conjugate gradients** ([`crate::krylov::Cg`], warm-started at the previous `x`, relative
//!   residual tolerance `cg_tol`) on `(AᴴA + ρLᴴL) x = rhs` otherwise;
//! - **linearised** (Parikh & Boyd, "Proximal algorithms", 2014, §4.4.2, with the smooth term
//!   linearised too): one gradient step of the x-subproblem,
//!   `x_{k+1} = x_k − μ (Aᴴ(A x_k − y) + ρ Lᴴ(L x_k − z_k + u_k))` with
//!   `μ = 1/(s(‖A‖² + ρ‖L‖²))` (power iteration, safety `s = 1.01`), no inner solve.
//!
//! Convergence for convex `g` and any `ρ > 0`: Boyd et al. 2011, §3.2 (exact updates; CG to a
//! tight tolerance behaves alike); the linearised variant converges for `μ ≤ 1/(‖A‖² + ρ‖L‖²)`
//! (it is a primal–dual method of the Chambolle–Pock family).
//!
//! Each step reports: the objective `½‖A x − y‖² + g(L x)` at `x_{k+1}` (when
//! [`AdmmParams::objective`] is on; it costs one `A`), the relative change of `x`, and as
//! residual the primal residual `‖L x_{k+1} − z_{k+1}‖` (the constraint violation; with the
//! dual residual `ρ‖Lᴴ(z_{k+1} − z_k)‖` available from [`Admm::dual_residual`]).
//!
//! ```
//! use sparseinv_solvers::op::Matrix;
//! use sparseinv_solvers::prox::L1;
//! use sparseinv_solvers::proximal::admm::{admm, AdmmParams, AdmmProblem};
//! use sparseinv_solvers::iter::NoObserver;
//! use ndarray::array;
//! // min ½‖x − y‖² + 0.5‖x‖₁ (A = I): the soft threshold of y
//! let a = Matrix::new(array![[1.0f64, 0.0], [0.0, 1.0]]);
//! let y = array![2.0f64, 0.2].into_dyn();
//! let l1 = L1::new(0.5).unwrap();
//! let problem = AdmmProblem::new(&a, y.view(), &l1);
//! let mut p = AdmmParams::default();
//! p.stop.rel_tol = 1e-12;
//! let (x, _report) = admm(&problem, &p, None, &mut NoObserver).unwrap();
//! assert!((x[0] - 1.5).abs() < 1e-8 && x[1].abs() < 1e-8);
//! ```

use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::krylov::Cg;
use crate::linalg::norm2_sq;
use crate::op::{check_shape, op_norm, Diagonalizable, LinearOperator, NormEstimate};
use crate::prox::Prox;
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use num_complex::Complex;
use num_traits::{Float, One, Zero};

/// How [`Admm`] solves its x-update; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XUpdate {
    /// [`XUpdate::Fourier`] when the problem has a diagonalisable `A` and `L = I`, else
    /// [`XUpdate::Cg`]. The default.
    #[default]
    Auto,
    /// The exact Fourier-domain solve (needs [`AdmmProblem::diagonalizable`] and `L = I`).
    Fourier,
    /// Conjugate gradients on the normal equations.
    Cg,
    /// One gradient step (linearised ADMM).
    Linearized,
}

/// Parameters of [`Admm`]. `Default`: `ρ = 1`, [`XUpdate::Auto`], CG tolerance 1e-8 with at
/// most 100 iterations, objective on, and the default [`StopCriteria`].
#[derive(Debug, Clone, Copy)]
pub struct AdmmParams<R> {
    /// Penalty `ρ > 0`.
    pub rho: R,
    /// The x-update.
    pub x_update: XUpdate,
    /// Relative residual tolerance of the inner CG.
    pub cg_tol: R,
    /// Iteration cap of the inner CG.
    pub cg_max_iters: usize,
    /// Step `μ` of the linearised update; `None`: `1/(1.01 (‖A‖² + ρ‖L‖²))`.
    pub step: Option<R>,
    /// Report the objective each step (costs one `A`). Turn off when `g` has no meaningful
    /// value (a denoiser as prox).
    pub objective: bool,
    /// When to stop.
    pub stop: StopCriteria<R>,
}

impl<R: Real> Default for AdmmParams<R> {
    fn default() -> Self {
        AdmmParams {
            rho: R::one(),
            x_update: XUpdate::Auto,
            cg_tol: real(1e-8),
            cg_max_iters: 100,
            step: None,
            objective: true,
            stop: StopCriteria::default(),
        }
    }
}

impl<R: Real> AdmmParams<R> {
    /// Check every parameter is in range.
    pub fn validate(&self) -> Result<()> {
        if !(self.rho.is_finite() && self.rho > R::zero()) {
            return Err(Error::param(
                "rho",
                format!("must be finite and > 0, got {}", self.rho),
            ));
        }
        if !(self.cg_tol.is_finite() && self.cg_tol > R::zero()) || self.cg_max_iters == 0 {
            return Err(Error::param(
                "cg_tol",
                "need cg_tol > 0 and cg_max_iters >= 1",
            ));
        }
        if let Some(s) = self.step {
            if !(s.is_finite() && s > R::zero()) {
                return Err(Error::param(
                    "step",
                    format!("must be finite and > 0, got {s}"),
                ));
            }
        }
        self.stop.validate()
    }
}

/// The problem `min ½‖A x − y‖² + g(L x)` of [`Admm`].
pub struct AdmmProblem<'a, T: Scalar> {
    a: &'a dyn LinearOperator<T>,
    diag: Option<&'a dyn Diagonalizable<T>>,
    y: ArrayViewD<'a, T>,
    l: Option<&'a dyn LinearOperator<T>>,
    g: &'a dyn Prox<T>,
}

impl<T: Scalar> Clone for AdmmProblem<'_, T> {
    fn clone(&self) -> Self {
        AdmmProblem {
            a: self.a,
            diag: self.diag,
            y: self.y.clone(),
            l: self.l,
            g: self.g,
        }
    }
}

impl<'a, T: Scalar> AdmmProblem<'a, T> {
    /// `min ½‖A x − y‖² + g(x)` (`L = I`).
    pub fn new(a: &'a dyn LinearOperator<T>, y: ArrayViewD<'a, T>, g: &'a dyn Prox<T>) -> Self {
        AdmmProblem {
            a,
            diag: None,
            y,
            l: None,
            g,
        }
    }
    /// `min ½‖A x − y‖² + g(x)` with an `A` diagonal in the Fourier basis, which enables the
    /// exact x-update.
    pub fn diagonalizable(
        a: &'a dyn Diagonalizable<T>,
        y: ArrayViewD<'a, T>,
        g: &'a dyn Prox<T>,
    ) -> Self {
        AdmmProblem {
            a,
            diag: Some(a),
            y,
            l: None,
            g,
        }
    }
    /// Put `g` on `L x` instead of `x`.
    pub fn with_operator(mut self, l: &'a dyn LinearOperator<T>) -> Self {
        self.l = Some(l);
        self
    }
}

/// `AᴴA + ρ LᴴL` (Hermitian positive definite for `ρ > 0` when `L` is injective or `A` is).
/// `ax` is the scratch for `A x` (range-shaped), kept by the caller between x-updates.
struct NormalOp<'a, T: Scalar, A: ?Sized> {
    a: &'a A,
    l: Option<&'a dyn LinearOperator<T>>,
    rho: T::Real,
    ax: &'a std::sync::Mutex<ArrayD<T>>,
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized> LinearOperator<T> for NormalOp<'_, T, A> {
    fn domain_shape(&self) -> &[usize] {
        self.a.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.a.domain_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let mut ax = self.ax.lock().unwrap_or_else(|e| e.into_inner());
        self.a.apply_into(x.view(), ax.view_mut());
        self.a.adjoint_into(ax.view(), y.view_mut());
        drop(ax);
        let r = T::from_real(self.rho);
        match self.l {
            None => Zip::from(&mut y).and(&x).for_each(|o, &v| *o += r * v),
            Some(l) => {
                let mut lx = ArrayD::<T>::zeros(IxDyn(l.range_shape()));
                l.apply_into(x.view(), lx.view_mut());
                let mut t = ArrayD::<T>::zeros(IxDyn(l.domain_shape()));
                l.adjoint_into(lx.view(), t.view_mut());
                Zip::from(&mut y).and(&t).for_each(|o, &v| *o += r * v);
            }
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        self.apply_into(y, x)
    }
}

/// The resolved x-update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fourier,
    Cg,
    Linearized,
    /// `x = M rhs` with a given exact inverse ([`Admm::set_normal_inverse`]).
    Inverse,
}

/// The ADMM state machine; see the [module documentation](self). Drive it with
/// [`crate::iter::run`] or use [`admm`].
///
/// `A` is the type of the data operator and `G` of the term `g`; [`Admm::new`] takes them as
/// trait objects from an [`AdmmProblem`], [`Admm::with_parts`] as any types (e.g. an owned
/// adapter that turns a denoiser into a prox, as [`crate::pnp::PnpAdmm`] does).
pub struct Admm<'a, T: Scalar, A: ?Sized = dyn LinearOperator<T> + 'a, G = &'a dyn Prox<T>> {
    a: &'a A,
    diag: Option<&'a dyn Diagonalizable<T>>,
    l: Option<&'a dyn LinearOperator<T>>,
    y: ArrayD<T>,
    g: G,
    rho: T::Real,
    mode: Mode,
    cg_tol: T::Real,
    cg_max_iters: usize,
    mu: T::Real,
    want_objective: bool,
    aty: ArrayD<T>,
    x: ArrayD<T>,
    z: ArrayD<T>,
    u: ArrayD<T>,
    /// `L x` (unused, empty, when `L = I`: then `x` is read instead).
    lx: ArrayD<T>,
    zn: ArrayD<T>,
    buf: ArrayD<T>,
    /// The previous `x` (for the relative change).
    x_prev: ArrayD<T>,
    /// `L x + u`, the prox's argument (z-shaped).
    v: ArrayD<T>,
    /// Scratch of the CG x-update's normal operator (range-shaped; empty until used).
    ax: std::sync::Mutex<ArrayD<T>>,
    dual_res: T::Real,
    precond: Option<&'a dyn LinearOperator<T>>,
    inverse: Option<&'a dyn LinearOperator<T>>,
}

impl<'a, T: Scalar> Admm<'a, T> {
    /// Set up from `x0` (zero if `None`), `z = L x0`, `u = 0`. Errors: invalid parameters,
    /// shapes that do not fit, non-finite data, [`XUpdate::Fourier`] without a diagonalisable
    /// `A` and `L = I`, complex data with a real-only `g`.
    pub fn new(
        problem: &AdmmProblem<'a, T>,
        params: &AdmmParams<T::Real>,
        x0: Option<ArrayViewD<T>>,
    ) -> Result<Self> {
        Admm::with_parts(
            problem.a,
            problem.diag,
            problem.y.view(),
            problem.l,
            problem.g,
            params,
            x0,
        )
    }
}

impl<'a, T: Scalar, A: LinearOperator<T> + ?Sized, G: Prox<T>> Admm<'a, T, A, G> {
    /// [`Admm::new`] from the parts of the problem: data operator `a` (with `diag` the same
    /// operator as [`Diagonalizable`], if it is), data `y` (copied), `l` (`None`: identity) and
    /// the term `g`, owned or borrowed.
    pub fn with_parts(
        a: &'a A,
        diag: Option<&'a dyn Diagonalizable<T>>,
        y: ArrayViewD<T>,
        l: Option<&'a dyn LinearOperator<T>>,
        g: G,
        params: &AdmmParams<T::Real>,
        x0: Option<ArrayViewD<T>>,
    ) -> Result<Self> {
        params.validate()?;
        if let Some(d) = diag {
            check_shape(
                "diagonalisable operator domain",
                a.domain_shape(),
                d.domain_shape(),
            )?;
            check_shape(
                "diagonalisable operator range",
                a.range_shape(),
                d.range_shape(),
            )?;
        }
        if a.domain_size() == 0 || a.range_size() == 0 {
            return Err(Error::Empty {
                what: "operator A".into(),
            });
        }
        check_shape("data y", a.range_shape(), y.shape())?;
        check_finite("data y", y.iter())?;
        let zshape: Vec<usize> = match l {
            Some(l) => {
                check_shape("domain of L", a.domain_shape(), l.domain_shape())?;
                l.range_shape().to_vec()
            }
            None => a.domain_shape().to_vec(),
        };
        g.check_shape(&zshape)?;
        if T::IS_COMPLEX && !g.supports_complex() {
            return Err(Error::Unsupported(
                "the term g is defined for real data only, but the data are complex".into(),
            ));
        }
        let mode = match (params.x_update, diag, l) {
            (XUpdate::Auto, Some(_), None) | (XUpdate::Fourier, Some(_), None) => Mode::Fourier,
            (XUpdate::Fourier, _, _) => {
                return Err(Error::param(
                    "x_update",
                    "the Fourier x-update needs AdmmProblem::diagonalizable and L = I",
                ))
            }
            (XUpdate::Linearized, _, _) => Mode::Linearized,
            _ => Mode::Cg,
        };
        if mode == Mode::Fourier {
            // fails early when the operator is not diagonalisable after all
            diag.expect("checked").fourier_eigenvalues()?;
        }
        let x = match x0 {
            Some(x0) => {
                check_shape("initial x", a.domain_shape(), x0.shape())?;
                check_finite("initial x", x0.iter())?;
                x0.to_owned()
            }
            None => ArrayD::zeros(IxDyn(a.domain_shape())),
        };
        let mut aty = ArrayD::zeros(IxDyn(a.domain_shape()));
        a.adjoint_into(y.view(), aty.view_mut());
        let (lx, z) = match l {
            Some(l) => {
                let mut lx = ArrayD::zeros(IxDyn(&zshape));
                l.apply_into(x.view(), lx.view_mut());
                (lx.clone(), lx)
            }
            None => (ArrayD::zeros(IxDyn(&[0])), x.clone()),
        };
        let mu = match (mode, params.step) {
            (Mode::Linearized, Some(s)) => s,
            (Mode::Linearized, None) => {
                let na: T::Real = op_norm::<T, A>(a, NormEstimate::default());
                let nl: T::Real = match l {
                    Some(l) => op_norm::<T, dyn LinearOperator<T>>(l, NormEstimate::default()),
                    None => T::Real::one(),
                };
                let d = real::<T::Real>(1.01) * (na * na + params.rho * nl * nl);
                if !(d.is_finite() && d > T::Real::zero()) {
                    return Err(Error::Numerical(format!(
                        "cannot choose the linearised step: ‖A‖² + ρ‖L‖² estimate is {d}"
                    )));
                }
                T::Real::one() / d
            }
            _ => T::Real::zero(),
        };
        Ok(Admm {
            a,
            diag,
            l,
            y: y.to_owned(),
            g,
            rho: params.rho,
            mode,
            cg_tol: params.cg_tol,
            cg_max_iters: params.cg_max_iters,
            mu,
            want_objective: params.objective,
            buf: x.clone(),
            x_prev: x.clone(),
            aty,
            zn: z.clone(),
            v: z.clone(),
            z,
            u: ArrayD::zeros(IxDyn(&zshape)),
            lx,
            x,
            ax: std::sync::Mutex::new(ArrayD::zeros(IxDyn(&[0]))),
            dual_res: T::Real::zero(),
            precond: None,
            inverse: None,
        })
    }

    /// Precondition the conjugate-gradient x-update with `m ≈ (AᴴA + ρLᴴL)⁻¹` (Hermitian
    /// positive definite, on the domain of `A`): the x-update solves the same system
    /// ([`Cg::preconditioned`]) in fewer operator products. No effect on the Fourier and
    /// linearised updates. Errors when `m`'s shapes are not the domain of `A`.
    pub fn set_preconditioner(&mut self, m: &'a dyn LinearOperator<T>) -> Result<()> {
        check_shape(
            "preconditioner domain",
            self.a.domain_shape(),
            m.domain_shape(),
        )?;
        check_shape(
            "preconditioner range",
            self.a.domain_shape(),
            m.range_shape(),
        )?;
        self.precond = Some(m);
        Ok(())
    }

    /// Solve the x-update by `x = m(Aᴴy + ρLᴴ(z − u))` with `m = (AᴴA + ρLᴴL)⁻¹` given
    /// (e.g. [`crate::pnp::CirculantNormalInverse`] for a system it inverts exactly): one
    /// application of `m` per iteration instead of conjugate gradients or the Fourier
    /// solve. Replaces the x-update chosen by [`AdmmParams::x_update`]; the iterates are
    /// those of the exact ADMM to the accuracy of `m`. Errors when `m`'s shapes are not the
    /// domain of `A`.
    pub fn set_normal_inverse(&mut self, m: &'a dyn LinearOperator<T>) -> Result<()> {
        check_shape(
            "normal inverse domain",
            self.a.domain_shape(),
            m.domain_shape(),
        )?;
        check_shape(
            "normal inverse range",
            self.a.domain_shape(),
            m.range_shape(),
        )?;
        self.inverse = Some(m);
        self.mode = Mode::Inverse;
        Ok(())
    }

    /// The current `x_k`.
    pub fn x(&self) -> ArrayViewD<'_, T> {
        self.x.view()
    }
    /// The current split variable `z_k` (≈ `L x_k`; it lies in the range of `prox_g`).
    pub fn z(&self) -> ArrayViewD<'_, T> {
        self.z.view()
    }
    /// The split variable before the last step, `z_{k−1}` (`z_0` before the first).
    pub(crate) fn z_prev(&self) -> ArrayViewD<'_, T> {
        self.zn.view()
    }
    /// The current scaled dual `u_k` (the multiplier of `L x = z` is `ρ u`).
    pub fn u(&self) -> ArrayViewD<'_, T> {
        self.u.view()
    }
    /// Consume the solver, returning `x_k`.
    pub fn into_x(self) -> ArrayD<T> {
        self.x
    }
    /// Consume the solver, returning `z_k`.
    pub fn into_z(self) -> ArrayD<T> {
        self.z
    }
    /// The term `g` (e.g. to read an error kept by an adapter).
    pub fn prox_term(&self) -> &G {
        &self.g
    }
    /// The dual residual `ρ‖Lᴴ(z_{k+1} − z_k)‖` of the last step (Boyd et al. 2011, §3.3).
    pub fn dual_residual(&self) -> T::Real {
        self.dual_res
    }

    /// `buf ← ρ Lᴴ(z − u)` (or `ρ (z − u)` for `L = I`) plus `Aᴴ y`.
    fn rhs(&mut self) {
        let rho = T::from_real(self.rho);
        match self.l {
            None => Zip::from(&mut self.buf)
                .and(&self.aty)
                .and(&self.z)
                .and(&self.u)
                .for_each(|b, &aty, &z, &u| *b = aty + rho * (z - u)),
            Some(l) => {
                let d = &self.z - &self.u;
                l.adjoint_into(d.view(), self.buf.view_mut());
                Zip::from(&mut self.buf)
                    .and(&self.aty)
                    .for_each(|b, &aty| *b = aty + rho * *b);
            }
        }
    }

    fn x_update(&mut self) -> Result<()> {
        match self.mode {
            Mode::Fourier => {
                self.rhs();
                let rho = self.rho;
                let d = self.diag.expect("mode");
                let f = move |lam: Complex<T::Real>| -> Complex<T::Real> {
                    Complex::new(T::Real::one() / (lam.norm_sqr() + rho), T::Real::zero())
                };
                d.apply_fourier_filter_into(self.buf.view(), self.x.view_mut(), &f)?;
            }
            Mode::Inverse => {
                self.rhs();
                let m = self.inverse.expect("mode");
                m.apply_into(self.buf.view(), self.x.view_mut());
            }
            Mode::Cg => {
                self.rhs();
                {
                    let mut ax = self.ax.lock().unwrap_or_else(|e| e.into_inner());
                    if ax.shape() != self.a.range_shape() {
                        *ax = ArrayD::zeros(IxDyn(self.a.range_shape()));
                    }
                }
                let op = NormalOp {
                    a: self.a,
                    l: self.l,
                    rho: self.rho,
                    ax: &self.ax,
                };
                let b = std::mem::take(&mut self.buf);
                // warm start at the previous x (x_prev holds it, see `step`)
                let mut cg = match self.precond {
                    Some(m) => Cg::preconditioned(&op, m, b.view(), Some(self.x_prev.view()))?,
                    None => Cg::new(&op, b.view(), Some(self.x_prev.view()))?,
                };
                let crit = StopCriteria {
                    max_iters: self.cg_max_iters,
                    rel_tol: T::Real::zero(),
                    residual_tol: Some(self.cg_tol),
                    ..StopCriteria::default()
                };
                run(&mut cg, &crit, &mut NoObserver)?;
                self.x = cg.into_x();
                self.buf = b;
            }
            Mode::Linearized => {
                // buf ← Aᴴ(A x − y) + ρ Lᴴ(L x − z + u)
                let a = self.a;
                let mut ax = ArrayD::<T>::zeros(IxDyn(a.range_shape()));
                a.apply_into(self.x.view(), ax.view_mut());
                ax -= &self.y;
                a.adjoint_into(ax.view(), self.buf.view_mut());
                let rho = T::from_real(self.rho);
                let lx = if self.l.is_some() { &self.lx } else { &self.x };
                let mut c = lx - &self.z;
                c += &self.u;
                match self.l {
                    None => Zip::from(&mut self.buf)
                        .and(&c)
                        .for_each(|b, &c| *b += rho * c),
                    Some(l) => {
                        let mut t = ArrayD::<T>::zeros(IxDyn(l.domain_shape()));
                        l.adjoint_into(c.view(), t.view_mut());
                        Zip::from(&mut self.buf)
                            .and(&t)
                            .for_each(|b, &t| *b += rho * t);
                    }
                }
                let mu = T::from_real(self.mu);
                Zip::from(&mut self.x)
                    .and(&self.buf)
                    .for_each(|x, &g| *x -= mu * g);
            }
        }
        Ok(())
    }
}

impl<T: Scalar, A: LinearOperator<T> + ?Sized, G: Prox<T>> IterativeSolver for Admm<'_, T, A, G> {
    type Real = T::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view()))
    }

    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        // x_prev ← x: the updates that write all of x (and CG, which starts from x_prev)
        // swap the buffers, the linearised one updates x in place from a copy
        match self.mode {
            Mode::Linearized => self.x_prev.assign(&self.x),
            _ => std::mem::swap(&mut self.x, &mut self.x_prev),
        }
        self.x_update()?;
        let lx = match self.l {
            Some(l) => {
                l.apply_into(self.x.view(), self.lx.view_mut());
                &self.lx
            }
            None => &self.x,
        };
        // zn ← prox_{g/ρ}(L x + u)
        Zip::from(&mut self.v)
            .and(lx)
            .and(&self.u)
            .for_each(|v, &lx, &u| *v = lx + u);
        self.g
            .prox_into(self.v.view(), T::Real::one() / self.rho, self.zn.view_mut());
        // u ← u + L x − zn, with the primal residual ‖L x − zn‖² and ‖zn − z‖² in one pass
        let mut primal = T::Real::zero();
        let mut dz2 = T::Real::zero();
        Zip::from(&mut self.u)
            .and(lx)
            .and(&self.zn)
            .and(&self.z)
            .for_each(|u, &lx, &zn, &z| {
                let r = lx - zn;
                *u += r;
                primal += r.abs2();
                dz2 += (zn - z).abs2();
            });
        // dual residual ρ‖Lᴴ(zn − z)‖
        self.dual_res = self.rho
            * match self.l {
                None => dz2.sqrt(),
                Some(l) => {
                    let dz = &self.zn - &self.z;
                    let mut t = ArrayD::<T>::zeros(IxDyn(l.domain_shape()));
                    l.adjoint_into(dz.view(), t.view_mut());
                    norm2_sq(t.view()).sqrt()
                }
            };
        std::mem::swap(&mut self.z, &mut self.zn);
        let mut d2 = T::Real::zero();
        let mut nx2 = T::Real::zero();
        Zip::from(&self.x).and(&self.x_prev).for_each(|&a, &b| {
            d2 += (a - b).abs2();
            nx2 += a.abs2();
        });
        let nx = nx2.sqrt();
        let rel_change = if nx > T::Real::zero() {
            d2.sqrt() / nx
        } else if d2 == T::Real::zero() {
            T::Real::zero()
        } else {
            T::Real::one()
        };
        let objective = if self.want_objective {
            let mut ax = ArrayD::<T>::zeros(IxDyn(self.a.range_shape()));
            self.a.apply_into(self.x.view(), ax.view_mut());
            ax -= &self.y;
            let lx = if self.l.is_some() { &self.lx } else { &self.x };
            Some(real::<T::Real>(0.5) * norm2_sq(ax.view()) + self.g.value(lx.view()))
        } else {
            None
        };
        Ok(StepInfo {
            objective,
            rel_change,
            residual: Some(primal.sqrt()),
        })
    }
}

/// Solve `min ½‖A x − y‖² + g(L x)` with [`Admm`] from `x0` (zero if `None`), reporting to
/// `observer` after each iteration. Returns `x` and the [`Report`].
pub fn admm<T: Scalar>(
    problem: &AdmmProblem<'_, T>,
    params: &AdmmParams<T::Real>,
    x0: Option<ArrayViewD<T>>,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(ArrayD<T>, Report<T::Real>)> {
    let mut s = Admm::new(problem, params, x0)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_x(), report))
}
