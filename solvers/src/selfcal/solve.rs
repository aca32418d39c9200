//! The two solvers of the paper (least squares with a scale constraint, and the spectral
//! method), dense or matrix-free, on the shared iteration framework.

use super::problem::{calibration_from_inverse, Model, Problem};
use super::system::SystemOperator;
use crate::dense::DenseScalar;
use crate::error::{check_finite, Error, Result};
use crate::iter::{
    run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria, StopReason,
};
use crate::krylov::{stop_as, KrylovParams, Lsqr};
use crate::linalg::{norm2_sq, vdot};
use crate::op::LinearOperator;
use crate::scalar::{Real, Scalar};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayViewD, ArrayViewMutD, IxDyn};
use num_traits::{Float, One, Zero};
use std::sync::Mutex;
use std::time::Instant;

/// Which of the two solvers of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Least squares with a linear scale constraint.
    Lsq,
    /// Smallest right singular vector of `A₀`.
    Spectral,
}

impl Method {
    /// `lsq` or `spectral`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Lsq => "lsq",
            Method::Spectral => "spectral",
        }
    }
}

/// Dense (faer) or matrix-free (LSQR) linear algebra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Dense when the number of unknowns `N ≤ Params::dense_max_unknowns`, else matrix-free.
    Auto,
    /// Form `A₀` and use QR / SVD.
    Dense,
    /// LSQR through [`SystemOperator`].
    MatrixFree,
}

/// The linear constraint `⟨w, h⟩ = c` that fixes the scale (it acts on the calibration
/// coefficients `h`, i.e. on `s` without subspace).
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint<T> {
    /// `Σ h_i = k` (the mean of `h` is 1). Default.
    Mean,
    /// `h_1 = 1` (the first entry).
    First,
    /// A given `w` (length `k`) and `c`.
    Vector(Array1<T>, T),
}

/// Parameters of [`solve`]. `Default`: LSQ, `Auto` backend with dense up to 600 unknowns,
/// `Mean` constraint, every LSQR solve to residual measure 1e-12 within 5000 iterations, at
/// most 10 spectral outer steps stopped when `1 − |⟨v_{t+1}, v_t⟩| ≤ 1e-12`.
///
/// Two levels of iteration, each with the shared [`StopCriteria`]: `krylov.stop` for every
/// LSQR solve (the one of LSQ, the inner ones of the spectral method), and `stop` for the
/// outer inverse iteration of the matrix-free spectral method ([`SpectralIteration`]).
#[derive(Debug, Clone)]
pub struct Params<T> {
    /// LSQ or spectral.
    pub method: Method,
    /// Dense or matrix-free.
    pub backend: Backend,
    /// The scale constraint.
    pub constraint: Constraint<T>,
    /// Stopping rules of every LSQR solve (`damp` must be 0). Default:
    /// [`KrylovParams::stop_with`]`(5000, 1e-12)`.
    pub krylov: KrylovParams,
    /// Stopping rules of the outer (inverse-iteration) steps of the matrix-free spectral
    /// method, whose residual is `1 − |⟨v_{t+1}, v_t⟩|` and relative change
    /// `‖v_{t+1} − e^{iθ} v_t‖ = (2 − 2|⟨v_{t+1}, v_t⟩|)^{1/2}` (unit vectors, best phase).
    /// Default [`Params::default_stop`]: at most 10 steps, `residual_tol = 1e-12`.
    pub stop: StopCriteria<f64>,
    /// `Auto` uses the dense path up to this many unknowns `N`.
    pub dense_max_unknowns: usize,
}

impl<T> Default for Params<T> {
    fn default() -> Self {
        Params {
            method: Method::Lsq,
            backend: Backend::Auto,
            constraint: Constraint::Mean,
            krylov: KrylovParams {
                stop: KrylovParams::stop_with(5000, 1e-12),
                damp: 0.0,
            },
            stop: Self::default_stop(),
            dense_max_unknowns: 600,
        }
    }
}

impl<T> Params<T> {
    /// The default outer stopping rules of the spectral method: `max_iters = 10`,
    /// `residual_tol = Some(1e-12)` (on `1 − |⟨v_{t+1}, v_t⟩|`, tested from the first step),
    /// `rel_tol = 0`, the rest as in [`StopCriteria::default`].
    pub fn default_stop() -> StopCriteria<f64> {
        StopCriteria {
            max_iters: 10,
            rel_tol: 0.0,
            residual_tol: Some(1e-12),
            ..StopCriteria::default()
        }
    }
}

/// The result of [`solve`].
#[derive(Debug, Clone)]
pub struct Solution<T: Scalar> {
    /// Model solved.
    pub model: Model,
    /// Calibration coefficients `h` (equal to `s` without subspace), normalised so that
    /// `⟨w, h⟩ = c`.
    pub h: Array1<T>,
    /// `s = B h`: the inverse gains `1/d` (`Repeated`, `Snapshots`) or the inverse filter `g`
    /// (`Diverse`, time domain).
    pub s: Array1<T>,
    /// The calibration itself: gains `d = 1/s` (element-wise), or the filter `f` with
    /// `F f = 1/F g` (`Diverse`). Same normalisation as `s` (inverse scale).
    pub d: Array1<T>,
    /// Signals, one row per block (`[1, n]` for `Repeated`, `[p, n]` otherwise).
    pub x: Array2<T>,
    /// `‖A₀ z‖ / ‖z‖` at the solution: the smallest-singular-value estimate (0 for exact data).
    pub sigma: <T as Scalar>::Real,
    /// Method used.
    pub method: Method,
    /// `true` when the dense path was used.
    pub dense: bool,
    /// Total LSQR iterations (0 on the dense path), inner ones included for the spectral
    /// method.
    pub iterations: usize,
    /// Outer spectral steps (0 for LSQ and on the dense path).
    pub outer_iterations: usize,
}

fn constraint_vector<T: DenseScalar>(c: &Constraint<T>, k: usize) -> Result<(Vec<T>, T)> {
    match c {
        Constraint::Mean => Ok((vec![T::one(); k], T::from_f64(k as f64))),
        Constraint::First => {
            let mut w = vec![T::zero(); k];
            w[0] = T::one();
            Ok((w, T::one()))
        }
        Constraint::Vector(w, c) => {
            if w.len() != k {
                return Err(Error::shape("constraint vector w", &[k], &[w.len()]));
            }
            check_finite("constraint vector w", w.iter())?;
            if !c.is_finite_scalar() || *c == T::zero() {
                return Err(Error::param("constraint c", "must be finite and non-zero"));
            }
            if w.iter().all(|v| *v == T::zero()) {
                return Err(Error::param("constraint vector w", "must not be zero"));
            }
            Ok((w.to_vec(), *c))
        }
    }
}

/// `[A₀; wᴴ]` with `w` zero-padded to the full unknown vector.
struct Augmented<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    w: Vec<T>,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<T: DenseScalar> Augmented<'_, T> {
    /// `⟨w, z⟩`.
    fn wdot(&self, z: &[T]) -> T {
        self.w.iter().zip(z).map(|(&w, &z)| w.conj() * z).sum()
    }
    /// `z += w c`.
    fn add_w(&self, z: &mut [T], c: T) {
        for (zi, &w) in z.iter_mut().zip(&self.w) {
            *zi += w * c;
        }
    }
}

/// The first `len` entries of a contiguous 1-D view, as a 1-D view.
fn head_mut<'v, T>(v: &'v mut ArrayViewMutD<'_, T>, len: usize) -> ArrayViewMutD<'v, T> {
    let s = v.as_slice_mut().expect("contiguous vector");
    ArrayViewMutD::from_shape(IxDyn(&[len]), &mut s[..len]).unwrap()
}

impl<T: DenseScalar> LinearOperator<T> for Augmented<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, z: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        self.op.apply_into(z.view(), head_mut(&mut y, r));
        y[r] = self.wdot(z.as_slice().unwrap());
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut z: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        let ys = y.as_slice().unwrap();
        let head = ArrayViewD::from_shape(IxDyn(&[r]), &ys[..r]).unwrap();
        self.op.adjoint_into(head, z.view_mut());
        self.add_w(z.as_slice_mut().unwrap(), ys[r]);
    }
    /// `A₀`'s fused products on the first `p·m` rows, the row `wᴴ` by hand.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: <T as Scalar>::Real,
        mut u: ArrayViewMutD<T>,
        mut g: ArrayViewMutD<T>,
        mut scratch: ArrayViewMutD<T>,
    ) {
        let r = self.ran[0] - 1;
        self.op.apply_sub_adjoint_into(
            v.view(),
            alpha,
            head_mut(&mut u, r),
            g.view_mut(),
            head_mut(&mut scratch, r),
        );
        let last = self.wdot(v.as_slice().unwrap()) - u[r].scale(alpha);
        u[r] = last;
        self.add_w(g.as_slice_mut().unwrap(), last);
    }
}

/// `u ↦ A₀ (u − q⟨q, u⟩)` with a unit vector `q` (adjoint `r ↦ P A₀ᴴ r`).
struct Projected<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    q: ArrayD<T>,
    /// `P u` of the forward products (domain shape)
    work: Mutex<ArrayD<T>>,
}

impl<'a, T: DenseScalar> Projected<'a, T> {
    fn new(op: &'a SystemOperator<T>, q: ArrayD<T>) -> Self {
        let work = Mutex::new(ArrayD::zeros(q.raw_dim()));
        Projected { op, q, work }
    }
    fn project(&self, u: &mut ArrayD<T>) {
        self.project_view(u.view_mut());
    }
    fn project_view(&self, mut u: ArrayViewMutD<T>) {
        let c = vdot(self.q.view(), u.view());
        ndarray::Zip::from(&mut u)
            .and(&self.q)
            .for_each(|u, &q| *u -= q * c);
    }
    /// `P u` in the workspace, locked.
    fn projected(&self, u: ArrayViewD<T>) -> std::sync::MutexGuard<'_, ArrayD<T>> {
        let mut pu = self.work.lock().unwrap_or_else(|e| e.into_inner());
        pu.assign(&u);
        self.project_view(pu.view_mut());
        pu
    }
}

impl<T: DenseScalar> LinearOperator<T> for Projected<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        self.op.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.op.range_shape()
    }
    fn apply_into(&self, u: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        let pu = self.projected(u);
        self.op.apply_into(pu.view(), y);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut u: ArrayViewMutD<T>) {
        self.op.adjoint_into(y, u.view_mut());
        self.project_view(u);
    }
    /// `A₀`'s fused products on `P v`, then `P` on the adjoint product.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: <T as Scalar>::Real,
        u: ArrayViewMutD<T>,
        mut g: ArrayViewMutD<T>,
        scratch: ArrayViewMutD<T>,
    ) {
        let pv = self.projected(v);
        self.op
            .apply_sub_adjoint_into(pv.view(), alpha, u, g.view_mut(), scratch);
        drop(pv);
        self.project_view(g);
    }
}

fn run_lsqr<T: DenseScalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    p: &KrylovParams,
) -> Result<(ArrayD<T>, usize)> {
    let mut s = Lsqr::new(a, b, None, 0.0)?;
    let rep = run(&mut s, &stop_as(&p.stop), &mut NoObserver)?;
    Ok((s.into_x(), rep.iterations))
}

/// The matrix-free spectral method as an [`IterativeSolver`]: inverse iteration by
/// constrained least squares on `A₀ᴴA₀` (see the [module docs](super)).
///
/// The iterate `v` (length `N = k + n_x`, unit norm, `(h, x)` stacked) starts from the
/// padded constraint vector `w / ‖w‖`. One [`step`](IterativeSolver::step) solves
/// `u = argmin ‖A₀(v + P u)‖` by LSQR (with `P` the projector onto `v^⊥`, stopping rules
/// `krylov.stop`) and sets `v ← (v + P u) / ‖v + P u‖`. It reports the residual
/// `1 − |⟨v_{t+1}, v_t⟩|` and the relative change `(2 − 2|⟨v_{t+1}, v_t⟩|)^{1/2}`; no
/// objective. [`solve`] drives it with [`Params::stop`].
pub struct SpectralIteration<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    krylov: KrylovParams,
    v: ArrayD<T>,
    ax: ArrayD<T>,
    inner: usize,
}

impl<'a, T: DenseScalar> SpectralIteration<'a, T> {
    /// Start from `start` (length `N`, normalised here). Errors on a wrong length, a zero or
    /// non-finite start, or invalid LSQR parameters (`damp` must be 0).
    pub fn new(
        op: &'a SystemOperator<T>,
        start: ArrayView1<T>,
        krylov: &KrylovParams,
    ) -> Result<Self> {
        krylov.validate()?;
        if krylov.damp != 0.0 {
            return Err(Error::param("damp", "must be 0 for self-calibration"));
        }
        let nn = op.domain_shape()[0];
        if start.len() != nn {
            return Err(Error::shape("spectral start vector", &[nn], &[start.len()]));
        }
        check_finite("spectral start vector", start.iter())?;
        let mut v = start.to_owned().into_dyn();
        let nv = norm2_sq(v.view()).sqrt();
        if nv == <T as Scalar>::Real::zero() {
            return Err(Error::param("spectral start vector", "must not be zero"));
        }
        v.mapv_inplace(|a| a.scale(<T as Scalar>::Real::one() / nv));
        Ok(SpectralIteration {
            op,
            krylov: *krylov,
            v,
            ax: ArrayD::zeros(IxDyn(op.range_shape())),
            inner: 0,
        })
    }

    /// The current unit vector `v = (h, x)` (before the scale constraint is applied).
    pub fn v(&self) -> &ArrayD<T> {
        &self.v
    }

    /// Total LSQR iterations spent so far.
    pub fn inner_iterations(&self) -> usize {
        self.inner
    }
}

impl<T: DenseScalar> IterativeSolver for SpectralIteration<'_, T> {
    type Real = <T as Scalar>::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.v.view()))
    }

    fn step(&mut self) -> Result<StepInfo<Self::Real>> {
        let one = <T as Scalar>::Real::one();
        let op = self.op;
        // v_new = v + P u, u = argmin ‖A₀(v + P u)‖
        op.apply_into(self.v.view(), self.ax.view_mut());
        let rhs = self.ax.mapv(|a| -a);
        let proj = Projected::new(op, self.v.clone());
        let (mut u, it) = run_lsqr(&proj, rhs.view(), &self.krylov)?;
        self.inner += it;
        proj.project(&mut u);
        let mut vn = &self.v + &u;
        let nrm = norm2_sq(vn.view()).sqrt();
        if !(nrm.is_finite() && nrm > <T as Scalar>::Real::zero()) {
            return Err(Error::Numerical(
                "spectral inverse iteration produced a zero or non-finite vector".into(),
            ));
        }
        vn.mapv_inplace(|a| a.scale(one / nrm));
        let cosang = vdot(self.v.view(), vn.view()).modulus();
        self.v = vn;
        let res = (one - cosang).max(<T as Scalar>::Real::zero());
        Ok(StepInfo {
            objective: None,
            rel_change: (res + res).sqrt(),
            residual: Some(one - cosang),
        })
    }
}

/// Solve a self-calibration problem with the paper's least-squares or spectral method.
///
/// `observer` sees every iteration of the matrix-free paths: the LSQR iterate `z = (h, x)`
/// of LSQ (before the constraint rescaling), or the unit vector `v` of every outer step of
/// the spectral method ([`SpectralIteration`]); pass [`&mut NoObserver`](NoObserver) for
/// none. Returns the [`Solution`] beside the [`Report`] of that iteration (LSQ: the LSQR run
/// under `krylov.stop`; spectral: the outer run under [`Params::stop`]). The dense path does
/// not iterate: its report has `iterations = 0`, empty histories and
/// [`StopReason::Residual`] (a direct factorisation solves the system exactly), and the
/// observer is not called.
///
/// Errors: invalid parameters or constraint; [`Error::Numerical`] when the solution has a
/// zero calibration entry (then `d = 1/s` does not exist), when the constraint is orthogonal
/// to the solution (`⟨w, h⟩ = 0`), or when a dense factorisation fails.
///
/// ```
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::selfcal::{solve, synthetic, Backend, Errors, InstanceSpec, Method,
///     Model, Params};
/// let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 16, 4, 3), 1).unwrap();
/// let p = Params { method: Method::Spectral, backend: Backend::MatrixFree, ..Params::default() };
/// let (sol, report) = solve(&inst.problem, &p, &mut NoObserver).unwrap();
/// assert!(Errors::measure(&sol, &inst.s, &inst.x).joint < 1e-8);
/// assert_eq!(report.iterations, sol.outer_iterations);
/// ```
pub fn solve<T: DenseScalar>(
    problem: &Problem<T>,
    params: &Params<T>,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(Solution<T>, Report<<T as Scalar>::Real>)> {
    let start = Instant::now();
    params.krylov.validate()?;
    if params.krylov.damp != 0.0 {
        return Err(Error::param("damp", "must be 0 for self-calibration"));
    }
    params.stop.validate()?;
    if let Some(t) = params.stop.residual_tol {
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::param(
                "residual_tol",
                "must be finite and non-negative",
            ));
        }
    }
    let op = &problem.op;
    let nn = op.domain_shape()[0];
    let rows = op.range_shape()[0];
    let k = op.k;
    let (wh, c) = constraint_vector(&params.constraint, k)?;
    let mut w = vec![T::zero(); nn];
    w[..k].copy_from_slice(&wh);
    let dense = match params.backend {
        Backend::Dense => true,
        Backend::MatrixFree => false,
        Backend::Auto => nn <= params.dense_max_unknowns,
    };
    let mut iterations = 0;
    let mut outer = 0;
    let (z, report): (Vec<T>, _) = if dense {
        let a0 = op.to_dense();
        let z = match params.method {
            Method::Lsq => {
                let aw = Mat::<T>::from_fn(rows + 1, nn, |i, j| {
                    if i < rows {
                        a0[(i, j)]
                    } else {
                        w[j].conj()
                    }
                });
                let b = Mat::<T>::from_fn(rows + 1, 1, |i, _| if i < rows { T::zero() } else { c });
                let z = aw.qr().solve_lstsq(&b);
                (0..nn).map(|i| z[(i, 0)]).collect()
            }
            Method::Spectral => {
                let svd = if rows >= nn { a0.thin_svd() } else { a0.svd() }
                    .map_err(|e| Error::Numerical(format!("SVD did not converge: {e:?}")))?;
                let v = svd.V();
                (0..nn).map(|i| v[(i, nn - 1)]).collect()
            }
        };
        let report = Report {
            iterations: 0,
            stop_reason: StopReason::Residual,
            objective_history: Vec::new(),
            rel_change_history: Vec::new(),
            elapsed: start.elapsed(),
        };
        (z, report)
    } else {
        match params.method {
            Method::Lsq => {
                let aug = Augmented {
                    op,
                    w: w.clone(),
                    dom: [nn],
                    ran: [rows + 1],
                };
                let mut b = ArrayD::zeros(IxDyn(&[rows + 1]));
                b[rows] = c;
                let mut s = Lsqr::new(&aug, b.view(), None, 0.0)?;
                let rep = run(&mut s, &stop_as(&params.krylov.stop), observer)?;
                iterations += rep.iterations;
                (s.into_x().into_raw_vec_and_offset().0, rep)
            }
            Method::Spectral => {
                let mut it = SpectralIteration::new(op, ArrayView1::from(&w[..]), &params.krylov)?;
                let rep = run(&mut it, &stop_as(&params.stop), observer)?;
                iterations += it.inner;
                outer = rep.iterations;
                (it.v.into_raw_vec_and_offset().0, rep)
            }
        }
    };
    let sol = finish_solution(op, z, &wh, c, params.method, dense, iterations, outer)?;
    Ok((sol, report))
}

#[allow(clippy::too_many_arguments)]
fn finish_solution<T: DenseScalar>(
    op: &SystemOperator<T>,
    mut z: Vec<T>,
    wh: &[T],
    c: T,
    method: Method,
    dense: bool,
    iterations: usize,
    outer: usize,
) -> Result<Solution<T>> {
    if z.iter().any(|v| !v.is_finite_scalar()) {
        return Err(Error::Numerical("the solution is not finite".into()));
    }
    let k = op.k;
    let wz: T = wh.iter().zip(&z[..k]).map(|(&w, &h)| w.conj() * h).sum();
    if wz.modulus()
        <= <T as Scalar>::Real::eps() * norm2_sq(ArrayView1::from(&z[..]).into_dyn()).sqrt()
    {
        return Err(Error::Numerical(
            "the scale constraint is orthogonal to the solution (⟨w, h⟩ = 0): choose another constraint"
                .into(),
        ));
    }
    let scale = c / wz;
    for v in z.iter_mut() {
        *v *= scale;
    }
    let zv = ArrayD::from_shape_vec(IxDyn(&[z.len()]), z.clone()).unwrap();
    let az = op.apply(zv.view())?;
    let sigma = norm2_sq(az.view()).sqrt() / norm2_sq(zv.view()).sqrt();
    let h = Array1::from(z[..k].to_vec());
    let s = Array1::from(op.expand(&z[..k]));
    let d = calibration_from_inverse(op.model, &s)?;
    let rows = if op.model == Model::Repeated { 1 } else { op.p };
    let x = Array2::from_shape_vec((rows, op.n), z[k..].to_vec()).unwrap();
    Ok(Solution {
        model: op.model,
        h,
        s,
        d,
        x,
        sigma,
        method,
        dense,
        iterations,
        outer_iterations: outer,
    })
}
