//! A working-set solver for the (weighted) Lasso with a dense dictionary,
//!
//! ```text
//! min_x  P(x) = ½‖A x − y‖² + λ Σ_j w_j |x_j|,      A ∈ 𝕂^{m×n}, w_j > 0,
//! ```
//!
//! in the spirit of Celer (Massias, Gramfort & Salmon, ICML 2018) and Blitz (Johnson & Guestrin
//! 2015): most columns of `A` are inactive at the solution, so each outer iteration
//!
//! 1. computes the full correlation `g = Aᴴ r` of the residual `r = y − A x` (one pass over `A`),
//!    the rescaled dual point `θ = r / max(1, max_j |g_j| / (λ w_j))` (feasible for the dual
//!    `D(θ) = ½‖y‖² − ½‖y − θ‖²` s.t. `|a_jᴴ θ| ≤ λ w_j`) and the duality gap
//!    `P(x) − D(θ) ≥ P(x) − P(x*) ≥ 0`, a certificate of accuracy;
//! 2. ranks the columns by their distance to the dual constraint, `(λ w_j − |g_j|) / ‖a_j‖`
//!    (the active ones first), and keeps the `p` best: the working set `W`, with `p` at least
//!    twice the current support and at least doubling while the gap does not close;
//! 3. solves the Lasso restricted to `W` to a fraction of the outer gap, on the `p × p` Gram
//!    matrix `G = A_Wᴴ A_W` (so an inner iteration costs `O(p²)`, not `O(mn)`), by FISTA
//!    (gradient restart, step `1/λ_max(G)`) or by cyclic coordinate descent.
//!
//! The outer loop runs in the shared framework ([`crate::iter::run`]): the step reports the
//! objective `P(x)` and, as its residual, the **relative duality gap** `(P(x) − D(θ)) / P(x)`,
//! so [`StopCriteria::residual_tol`] is the accuracy of the solution (default `1e-9`);
//! `objective_target` works as for any solver.
//!
//! Use it for dictionaries stored as a [`Matrix`] with many more columns than nonzeros in the
//! solution (sparse coding, compressed sensing); for operators that are not matrices use
//! [`crate::proximal::fista`](mod@crate::proximal::fista).
//!
//! ```
//! use ndarray::{array, Array1};
//! use sparseinv_solvers::op::Matrix;
//! use sparseinv_solvers::proximal::lasso::{lasso, LassoParams};
//! // orthonormal A: the solution is the soft threshold of Aᵀy
//! let a = Matrix::new(array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
//! let y = array![3.0, -0.5];
//! let (x, _report) = lasso(&a, y.view(), &LassoParams::with_lambda(1.0)).unwrap();
//! let expect: Array1<f64> = array![2.0, 0.0, 0.0];
//! assert!((&x - &expect).iter().all(|d| d.abs() < 1e-9));
//! ```

use super::momentum::{gradient_restart_inner, Momentum, Restart};
use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::op::dot_conj;
use crate::op::{op_norm, LinearOperator, Matrix, NormEstimate};
use crate::prox::soft_threshold;
use crate::scalar::{real, Real, Scalar};
use ndarray::{Array1, Array2, ArrayView1};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;

/// How the subproblem on the working set is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InnerSolver {
    /// FISTA with gradient restart on the Gram form, step `1/λ_max(G)` (`λ_max` by power
    /// iteration with a 5 % safety margin).
    #[default]
    Fista,
    /// Cyclic coordinate descent on the Gram form (exact minimisation in each coordinate).
    CoordinateDescent,
}

/// Parameters of [`lasso`].
#[derive(Debug, Clone)]
pub struct LassoParams<R> {
    /// `λ > 0` (finite).
    pub lambda: R,
    /// Per-coefficient weights `w_j > 0` (length `n`); `None` means all ones.
    pub weights: Option<Array1<R>>,
    /// Size of the first working set (default 100; at most `n`).
    pub initial_working_set: usize,
    /// Subproblem solver (default FISTA).
    pub inner: InnerSolver,
    /// Iteration budget of one subproblem solve (default 10 000).
    pub max_inner_iters: usize,
    /// The subproblem is solved until its own duality gap is below this fraction of the
    /// outer gap (default 0.3, as in Celer).
    pub inner_gap_fraction: R,
    /// Outer stopping rules. Default: 200 outer iterations, relative duality gap
    /// `residual_tol = 1e-9`, relative-change test off (`rel_tol = 0`).
    pub stop: StopCriteria<R>,
}

impl<R: Real> LassoParams<R> {
    /// Default parameters with penalty `lambda`.
    pub fn with_lambda(lambda: R) -> Self {
        LassoParams {
            lambda,
            weights: None,
            initial_working_set: 100,
            inner: InnerSolver::Fista,
            max_inner_iters: 10_000,
            inner_gap_fraction: real(0.3),
            stop: StopCriteria {
                max_iters: 200,
                rel_tol: R::zero(),
                residual_tol: Some(real(1e-9)),
                ..StopCriteria::default()
            },
        }
    }

    /// Check every parameter against a dictionary with `n` columns.
    pub fn validate(&self, n: usize) -> Result<()> {
        if !self.lambda.is_finite() || self.lambda <= R::zero() {
            return Err(Error::param(
                "lambda",
                format!("must be finite and positive, got {}", self.lambda),
            ));
        }
        if let Some(w) = &self.weights {
            if w.len() != n {
                return Err(Error::shape("Lasso weights", &[n], &[w.len()]));
            }
            if let Some((j, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite() || **v <= R::zero())
            {
                return Err(Error::param(
                    "weights",
                    format!("must be finite and positive, weight {j} is {v}"),
                ));
            }
        }
        if self.initial_working_set == 0 {
            return Err(Error::param("initial_working_set", "must be at least 1"));
        }
        if self.max_inner_iters == 0 {
            return Err(Error::param("max_inner_iters", "must be at least 1"));
        }
        let f = self.inner_gap_fraction;
        if !f.is_finite() || f <= R::zero() || f >= R::one() {
            return Err(Error::param(
                "inner_gap_fraction",
                format!("must lie in (0, 1), got {f}"),
            ));
        }
        self.stop.validate()
    }
}

/// What [`lasso`] did beyond the shared [`Report`].
#[derive(Debug, Clone)]
pub struct LassoInfo<R> {
    /// Relative duality gap after each outer iteration (the report's residual).
    pub gap_history: Vec<R>,
    /// Working-set size of each outer iteration.
    pub working_set_sizes: Vec<usize>,
    /// Total subproblem iterations (FISTA steps or coordinate-descent epochs).
    pub inner_iterations: usize,
    /// Best dual objective found: `P(x*) ∈ [dual, P(x)]`.
    pub dual_objective: R,
}

/// The working-set Lasso solver as a state machine; [`lasso`] is the one-call helper.
pub struct WorkingSetLasso<'a, T: Scalar> {
    a: &'a Matrix<T>,
    y: Array1<T>,
    lam_w: Vec<T::Real>,
    col_norms: Vec<T::Real>,
    params: LassoParams<T::Real>,
    x: Array1<T>,
    r: Array1<T>,
    g: Vec<T>,
    y_norm2: T::Real,
    primal: T::Real,
    best_dual: T::Real,
    gap: T::Real,
    prev_ws: usize,
    stalled: bool,
    info: LassoInfo<T::Real>,
}

impl<'a, T: Scalar> WorkingSetLasso<'a, T> {
    /// Set up for `A`, `y` from `x0` (zero when `None`). Validates shapes, finiteness and the
    /// parameters.
    pub fn new(
        a: &'a Matrix<T>,
        y: ArrayView1<T>,
        params: &LassoParams<T::Real>,
        x0: Option<ArrayView1<T>>,
    ) -> Result<Self> {
        let (m, n) = (a.nrows(), a.ncols());
        if m == 0 || n == 0 {
            return Err(Error::Empty {
                what: "Lasso dictionary".into(),
            });
        }
        if y.len() != m {
            return Err(Error::shape("Lasso y", &[m], &[y.len()]));
        }
        check_finite("Lasso y", y.iter())?;
        params.validate(n)?;
        let x = match x0 {
            Some(x0) => {
                if x0.len() != n {
                    return Err(Error::shape("Lasso x0", &[n], &[x0.len()]));
                }
                check_finite("Lasso x0", x0.iter())?;
                x0.to_owned()
            }
            None => Array1::zeros(n),
        };
        let lam_w = match &params.weights {
            Some(w) => w.iter().map(|&w| w * params.lambda).collect(),
            None => vec![params.lambda; n],
        };
        // one pass over A, column by column (its storage order): finiteness, ‖a_j‖ and, from a
        // zero start (r = y), the correlations a_jᴴ y
        let ys = y.to_vec();
        let zero_start = x.iter().all(|v| v.is_zero());
        let cols: Vec<(T::Real, T)> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|j| {
                let c = a.column(j);
                if c.iter().all(|v| v.is_finite_scalar()) {
                    let nrm = c.iter().map(|v| v.abs2()).sum::<T::Real>().sqrt();
                    let g = if zero_start {
                        dot_conj(c, &ys)
                    } else {
                        T::zero()
                    };
                    Some((nrm, g))
                } else {
                    None
                }
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                // first offending element in row-major order
                let index = (0..m)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .find(|&(i, j)| !a.column(j)[i].is_finite_scalar())
                    .map_or(0, |(i, j)| i * n + j);
                Error::NonFinite {
                    what: "Lasso dictionary".into(),
                    index,
                }
            })?;
        let col_norms = cols.iter().map(|c| c.0).collect();
        let y = y.to_owned();
        let y_norm2 = y.iter().map(|v| v.abs2()).sum();
        let mut s = WorkingSetLasso {
            a,
            y,
            lam_w,
            col_norms,
            params: params.clone(),
            x,
            r: Array1::zeros(m),
            g: vec![T::zero(); n],
            y_norm2,
            primal: T::Real::zero(),
            best_dual: T::Real::neg_infinity(),
            gap: T::Real::infinity(),
            prev_ws: 0,
            stalled: false,
            info: LassoInfo {
                gap_history: Vec::new(),
                working_set_sizes: Vec::new(),
                inner_iterations: 0,
                dual_objective: T::Real::neg_infinity(),
            },
        };
        if zero_start {
            s.r = s.y.clone();
            s.g = cols.into_iter().map(|c| c.1).collect();
            s.update_gap();
        } else {
            s.refresh_residual();
            s.refresh_gap();
        }
        Ok(s)
    }

    /// The current estimate.
    pub fn x(&self) -> &Array1<T> {
        &self.x
    }

    /// The current absolute duality gap `P(x) − D(θ)`.
    pub fn duality_gap(&self) -> T::Real {
        self.gap
    }

    /// `r = y − A x`.
    fn refresh_residual(&mut self) {
        let mut ax = Array1::zeros(self.a.nrows());
        self.a
            .apply_into(self.x.view().into_dyn(), ax.view_mut().into_dyn());
        self.r = &self.y - &ax;
    }

    /// `g = Aᴴ r`, the primal value, the dual point's value and the gap.
    fn refresh_gap(&mut self) {
        let mut g = Array1::zeros(self.a.ncols());
        self.a
            .adjoint_into(self.r.view().into_dyn(), g.view_mut().into_dyn());
        self.g = g.to_vec();
        self.update_gap();
    }

    /// The primal value, the dual point's value and the gap from the current `r` and `g`.
    fn update_gap(&mut self) {
        let r = self.r.as_slice().expect("owned residual is contiguous");
        let r2: T::Real = r.iter().map(|v| v.abs2()).sum();
        let pen: T::Real = self
            .x
            .iter()
            .zip(&self.lam_w)
            .map(|(v, &l)| l * v.modulus())
            .sum();
        self.primal = real::<T::Real>(0.5) * r2 + pen;
        let scale = self
            .g
            .iter()
            .zip(&self.lam_w)
            .map(|(v, &l)| v.modulus() / l)
            .fold(T::Real::one(), Float::max);
        // D(r/s) = Re⟨y, r⟩/s − ‖r‖²/(2 s²)
        let yr: T::Real = self
            .y
            .iter()
            .zip(r)
            .map(|(&u, &v)| (u.conj() * v).re())
            .sum();
        let dual = yr / scale - r2 / (real::<T::Real>(2.0) * scale * scale);
        if dual > self.best_dual {
            self.best_dual = dual;
        }
        self.gap = (self.primal - self.best_dual).max(T::Real::zero());
        self.info.dual_objective = self.best_dual;
    }

    /// The next working set: the support first, then the columns closest to their dual
    /// constraint.
    fn working_set(&mut self) -> Vec<usize> {
        let n = self.a.ncols();
        let support = self.x.iter().filter(|v| !v.is_zero()).count();
        // twice the support (Celer's rule); double the previous size when the last
        // subproblem left the support as it was (the set lacked the violating columns)
        let mut p = self.params.initial_working_set.max(2 * support);
        if self.stalled {
            p = p.max(2 * self.prev_ws);
        }
        let p = p.min(n);
        let mut score: Vec<(T::Real, usize)> = (0..n)
            .map(|j| {
                let s = if !self.x[j].is_zero() {
                    T::Real::neg_infinity()
                } else if self.col_norms[j] > T::Real::zero() {
                    (self.lam_w[j] - self.g[j].modulus()) / self.col_norms[j]
                } else {
                    T::Real::infinity()
                };
                (s, j)
            })
            .collect();
        if p < n {
            score.select_nth_unstable_by(p, |a, b| a.0.partial_cmp(&b.0).unwrap());
        }
        let mut ws: Vec<usize> = score[..p].iter().map(|&(_, j)| j).collect();
        ws.sort_unstable();
        self.prev_ws = p;
        ws
    }

    /// `G = A_Wᴴ A_W` (p × p, Hermitian) and `c = A_Wᴴ y`.
    fn gram(&self, ws: &[usize]) -> (Array2<T>, Vec<T>) {
        let p = ws.len();
        let y = self.y.as_slice().expect("owned y is contiguous");
        let rows: Vec<Vec<T>> = (0..p)
            .into_par_iter()
            .map(|i| {
                let ci = self.a.column(ws[i]);
                (0..p)
                    .map(|k| {
                        if k < i {
                            T::zero()
                        } else {
                            dot_conj(ci, self.a.column(ws[k]))
                        }
                    })
                    .collect()
            })
            .collect();
        let mut gm = Array2::zeros((p, p));
        for i in 0..p {
            for k in i..p {
                gm[[i, k]] = rows[i][k];
                gm[[k, i]] = rows[i][k].conj();
            }
        }
        let c = ws
            .par_iter()
            .map(|&j| dot_conj(self.a.column(j), y))
            .collect();
        (gm, c)
    }

    /// Primal value, duality gap of the subproblem `min ½zᴴGz − Re cᴴz + ½‖y‖² + Σ λw|z|`
    /// given `Gz`.
    fn sub_gap(&self, z: &[T], gz: &[T], c: &[T], lw: &[T::Real]) -> (T::Real, T::Real) {
        let half = real::<T::Real>(0.5);
        let zgz: T::Real = z.iter().zip(gz).map(|(&u, &v)| (u.conj() * v).re()).sum();
        let cz: T::Real = c.iter().zip(z).map(|(&u, &v)| (u.conj() * v).re()).sum();
        let r2 = (self.y_norm2 - real::<T::Real>(2.0) * cz + zgz).max(T::Real::zero());
        let pen: T::Real = z.iter().zip(lw).map(|(v, &l)| l * v.modulus()).sum();
        let primal = half * r2 + pen;
        // A_Wᴴ r = c − Gz; yᴴ r = ‖y‖² − cᴴz (real part)
        let scale = c
            .iter()
            .zip(gz)
            .zip(lw)
            .map(|((&ci, &gi), &l)| (ci - gi).modulus() / l)
            .fold(T::Real::one(), Float::max);
        let yr = self.y_norm2 - cz;
        let dual = yr / scale - r2 / (real::<T::Real>(2.0) * scale * scale);
        (primal, (primal - dual).max(T::Real::zero()))
    }

    fn solve_fista(
        &mut self,
        gm: &Array2<T>,
        c: &[T],
        lw: &[T::Real],
        z: &mut [T],
        target: T::Real,
    ) -> usize {
        let p = z.len();
        let matvec = |v: &[T], out: &mut [T]| gram_matvec(gm, v, out);
        // λ_max(G) = ‖G‖₂ (G is Hermitian positive semi-definite), with a safety margin
        let lmax = op_norm(&Matrix::from_view(gm.view()), NormEstimate::default());
        if lmax <= T::Real::zero() {
            return 0;
        }
        let step = T::Real::one() / (real::<T::Real>(1.05) * lmax);
        let mut xk = z.to_vec();
        let mut yk = z.to_vec();
        let mut momentum = Momentum::<T::Real>::new();
        let mut gy = vec![T::zero(); p];
        let mut gz = vec![T::zero(); p];
        let mut it = 0;
        while it < self.params.max_inner_iters {
            it += 1;
            matvec(&yk, &mut gy);
            let mut xn = vec![T::zero(); p];
            for i in 0..p {
                let v = yk[i] - (gy[i] - c[i]).scale(step);
                xn[i] = soft_threshold(v, step * lw[i]);
            }
            // gradient restart: (y_k − x_{k+1})ᴴ (x_{k+1} − x_k) > 0; this solver restarts
            // with t ← 1 and no advance (see proximal::momentum)
            let restart = Restart::Gradient.triggered(
                T::Real::zero(),
                T::Real::zero(),
                gradient_restart_inner(&yk, &xn, &xk),
            );
            let beta = if restart {
                momentum.reset();
                T::Real::zero()
            } else {
                momentum.advance()
            };
            for i in 0..p {
                yk[i] = xn[i] + (xn[i] - xk[i]).scale(beta);
            }
            xk = xn;
            if it % 10 == 0 {
                matvec(&xk, &mut gz);
                if self.sub_gap(&xk, &gz, c, lw).1 <= target {
                    break;
                }
            }
        }
        z.copy_from_slice(&xk);
        it
    }

    fn solve_cd(
        &mut self,
        gm: &Array2<T>,
        c: &[T],
        lw: &[T::Real],
        z: &mut [T],
        target: T::Real,
    ) -> usize {
        let p = z.len();
        let mut gz = vec![T::zero(); p];
        gram_matvec(gm, z, &mut gz);
        let mut it = 0;
        while it < self.params.max_inner_iters {
            it += 1;
            for j in 0..p {
                let gjj = gm[[j, j]].re();
                if gjj <= T::Real::zero() {
                    continue;
                }
                let v = z[j] + (c[j] - gz[j]).scale(T::Real::one() / gjj);
                let new = soft_threshold(v, lw[j] / gjj);
                let d = new - z[j];
                if !d.is_zero() {
                    z[j] = new;
                    // G is Hermitian: column j = conj(row j)
                    for (o, &g) in gz.iter_mut().zip(gm.row(j).iter()) {
                        *o += g.conj() * d;
                    }
                }
            }
            if self.sub_gap(z, &gz, c, lw).1 <= target {
                break;
            }
        }
        it
    }
}

/// `out ← G v` for the small dense Gram matrix of the working set.
fn gram_matvec<T: Scalar>(gm: &Array2<T>, v: &[T], out: &mut [T]) {
    for (o, row) in out.iter_mut().zip(gm.rows()) {
        *o = row
            .iter()
            .zip(v)
            .fold(T::zero(), |acc, (&g, &x)| acc + g * x);
    }
}

impl<T: Scalar> IterativeSolver for WorkingSetLasso<'_, T> {
    type Real = T::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.x.view().into_dyn()))
    }
    fn step(&mut self) -> Result<StepInfo<T::Real>> {
        let rel = |s: &Self| s.gap / s.primal.max(T::Real::min_positive_value());
        if self.gap <= T::Real::zero() {
            self.info.gap_history.push(T::Real::zero());
            self.info.working_set_sizes.push(0);
            return Ok(StepInfo {
                objective: Some(self.primal),
                rel_change: T::Real::zero(),
                residual: Some(T::Real::zero()),
            });
        }
        let ws = self.working_set();
        let (gm, c) = self.gram(&ws);
        let lw: Vec<T::Real> = ws.iter().map(|&j| self.lam_w[j]).collect();
        let mut z: Vec<T> = ws.iter().map(|&j| self.x[j]).collect();
        let target = self.params.inner_gap_fraction * self.gap;
        let its = match self.params.inner {
            InnerSolver::Fista => self.solve_fista(&gm, &c, &lw, &mut z, target),
            InnerSolver::CoordinateDescent => self.solve_cd(&gm, &c, &lw, &mut z, target),
        };
        self.info.inner_iterations += its;
        let old = self.x.clone();
        self.x.fill(T::zero());
        for (&j, &v) in ws.iter().zip(&z) {
            self.x[j] = v;
        }
        self.refresh_residual();
        self.refresh_gap();
        let dx: T::Real = self
            .x
            .iter()
            .zip(&old)
            .map(|(&u, &v)| (u - v).abs2())
            .sum::<T::Real>()
            .sqrt();
        let nx: T::Real = self.x.iter().map(|v| v.abs2()).sum::<T::Real>().sqrt();
        let r = rel(self);
        self.stalled = dx == T::Real::zero();
        self.info.gap_history.push(r);
        self.info.working_set_sizes.push(ws.len());
        Ok(StepInfo {
            objective: Some(self.primal),
            rel_change: dx / nx.max(T::Real::min_positive_value()),
            residual: Some(r),
        })
    }
}

/// Solve the weighted Lasso `min ½‖Ax − y‖² + λ Σ w_j|x_j|` by the working-set method from
/// zero; returns the solution, the shared [`Report`] (objective and stop reason per outer
/// iteration) and the solver's [`LassoInfo`] (duality gaps, working-set sizes).
#[allow(clippy::type_complexity)]
pub fn lasso<T: Scalar>(
    a: &Matrix<T>,
    y: ArrayView1<T>,
    params: &LassoParams<T::Real>,
) -> Result<(Array1<T>, (Report<T::Real>, LassoInfo<T::Real>))> {
    lasso_with(a, y, params, None, &mut NoObserver)
}

/// [`lasso`] with a warm start and an [`Observer`] (called after each outer iteration).
#[allow(clippy::type_complexity)]
pub fn lasso_with<T: Scalar>(
    a: &Matrix<T>,
    y: ArrayView1<T>,
    params: &LassoParams<T::Real>,
    x0: Option<ArrayView1<T>>,
    observer: &mut dyn Observer<T::Real>,
) -> Result<(Array1<T>, (Report<T::Real>, LassoInfo<T::Real>))> {
    let mut s = WorkingSetLasso::new(a, y, params, x0)?;
    let report = run(&mut s, &params.stop, observer)?;
    let info = s.info.clone();
    Ok((s.x, (report, info)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::randn;
    use crate::C64;

    /// KKT of the weighted Lasso: `a_jᴴ r = λ w_j sign(x_j)` on the support, `|a_jᴴ r| ≤ λ w_j`
    /// off it.
    fn kkt<T: Scalar<Real = f64>>(a: &Matrix<T>, y: &Array1<T>, x: &Array1<T>, lw: &[f64]) -> f64 {
        let ax = a.apply(x.view().into_dyn()).unwrap();
        let r = y - &ax.into_dimensionality::<ndarray::Ix1>().unwrap();
        let mut worst = 0.0f64;
        for j in 0..a.ncols() {
            let g = dot_conj(a.column(j), r.as_slice().unwrap());
            let v = if x[j].is_zero() {
                (g.modulus() - lw[j]).max(0.0)
            } else {
                let s = x[j].scale(1.0 / x[j].modulus());
                (g - s.scale(lw[j])).modulus()
            };
            worst = worst.max(v / lw[j]);
        }
        worst
    }

    fn problem(m: usize, n: usize, k: usize, seed: u64) -> (Matrix<f64>, Array1<f64>) {
        let a = randn::<f64>(&[m, n], seed).mapv(|v| v / (m as f64).sqrt());
        let a = a.into_dimensionality::<ndarray::Ix2>().unwrap();
        let mut x = Array1::<f64>::zeros(n);
        let v = randn::<f64>(&[k], seed + 1);
        for i in 0..k {
            x[(i * 7919) % n] = v[i] + v[i].signum();
        }
        let noise = randn::<f64>(&[m], seed + 2);
        let y = a.dot(&x) + noise.into_dimensionality::<ndarray::Ix1>().unwrap() * 0.01;
        (Matrix::new(a), y)
    }

    #[test]
    fn kkt_and_gap_both_inner_solvers() {
        let (a, y) = problem(60, 400, 8, 3);
        let g = a.adjoint(y.view().into_dyn()).unwrap();
        let lam = 0.1 * g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for inner in [InnerSolver::Fista, InnerSolver::CoordinateDescent] {
            let mut p = LassoParams::with_lambda(lam);
            p.inner = inner;
            p.initial_working_set = 10;
            let (x, (rep, info)) = lasso(&a, y.view(), &p).unwrap();
            assert_eq!(rep.stop_reason.as_str(), "residual", "{inner:?}");
            assert!(*info.gap_history.last().unwrap() <= 1e-9);
            let k = kkt(&a, &y, &x, &vec![lam; 400]);
            assert!(k < 1e-4, "{inner:?}: KKT violation {k}");
            // the gap certifies the objective against FISTA run to high accuracy
            let f = rep.final_objective().unwrap();
            assert!(info.dual_objective <= f && f - info.dual_objective <= 1e-9 * f);
        }
    }

    #[test]
    fn agrees_with_full_fista() {
        use crate::prox::L1;
        use crate::proximal::{solve, Params};
        let (a, y) = problem(50, 300, 6, 11);
        let lam = 0.05;
        let (x, _) = lasso(&a, y.view(), &LassoParams::with_lambda(lam)).unwrap();
        let mut p = Params::<f64>::default();
        p.stop.max_iters = 20_000;
        p.stop.rel_tol = 1e-13;
        let (xf, _) = solve(
            &a,
            y.view().into_dyn(),
            &L1::new(lam).unwrap(),
            &p,
            None,
            &mut NoObserver,
        )
        .unwrap();
        let d = (&x.view().into_dyn() - &xf).mapv(f64::abs).sum();
        assert!(d < 1e-6, "L1 distance to full FISTA {d}");
    }

    #[test]
    fn warm_start_reaches_the_same_solution() {
        let (a, y) = problem(50, 300, 6, 21);
        let p = LassoParams::with_lambda(0.05);
        let (x, _) = lasso(&a, y.view(), &p).unwrap();
        // warm start from the solution of a larger λ (a regularisation path step)
        let (x1, _) = lasso(&a, y.view(), &LassoParams::with_lambda(0.2)).unwrap();
        let (x2, (rep, _)) =
            lasso_with(&a, y.view(), &p, Some(x1.view()), &mut NoObserver).unwrap();
        assert_eq!(rep.stop_reason.as_str(), "residual");
        let d = (&x - &x2).mapv(f64::abs).sum();
        assert!(d < 1e-6, "warm-started solution differs by {d}");
    }

    #[test]
    fn weighted_orthonormal_closed_form() {
        // A = I: x_j = soft_threshold(y_j, λ w_j)
        let a = Matrix::new(Array2::<f64>::eye(5));
        let y = ndarray::array![3.0, -2.0, 0.5, 1.5, -0.2];
        let w = ndarray::array![1.0, 2.0, 1.0, 0.5, 1.0];
        let mut p = LassoParams::with_lambda(1.0);
        p.weights = Some(w.clone());
        p.initial_working_set = 2;
        let (x, _) = lasso(&a, y.view(), &p).unwrap();
        for j in 0..5 {
            let e = y[j].signum() * (y[j].abs() - w[j]).max(0.0);
            assert!((x[j] - e).abs() < 1e-8, "{j}: {} vs {e}", x[j]);
        }
    }

    #[test]
    fn complex_kkt() {
        let m = 40;
        let n = 200;
        let a = randn::<C64>(&[m, n], 5)
            .mapv(|v| v / (m as f64).sqrt())
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let mut xt = Array1::<C64>::zeros(n);
        xt[3] = C64::new(1.0, -2.0);
        xt[77] = C64::new(-1.5, 0.5);
        xt[150] = C64::new(0.0, 2.0);
        let y = a.dot(&xt);
        let a = Matrix::new(a);
        let lam = 0.02;
        for inner in [InnerSolver::Fista, InnerSolver::CoordinateDescent] {
            let mut p = LassoParams::with_lambda(lam);
            p.inner = inner;
            let (x, _) = lasso(&a, y.view(), &p).unwrap();
            assert!(kkt(&a, &y, &x, &vec![lam; n]) < 1e-4);
            let supp: Vec<usize> = (0..n).filter(|&j| x[j].modulus() > 1e-3).collect();
            assert_eq!(supp, vec![3, 77, 150]);
        }
    }

    #[test]
    fn lambda_above_max_gives_zero() {
        let (a, y) = problem(20, 50, 3, 1);
        let g = a.adjoint(y.view().into_dyn()).unwrap();
        let lmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (x, (rep, _)) = lasso(&a, y.view(), &LassoParams::with_lambda(1.01 * lmax)).unwrap();
        assert!(x.iter().all(|v| *v == 0.0));
        assert_eq!(rep.iterations, 1);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (a, y) = problem(20, 50, 3, 1);
        assert!(lasso(&a, y.view(), &LassoParams::with_lambda(-1.0)).is_err());
        assert!(lasso(
            &a,
            y.slice(ndarray::s![..10]),
            &LassoParams::with_lambda(1.0)
        )
        .is_err());
        let mut yn = y.clone();
        yn[2] = f64::NAN;
        assert!(lasso(&a, yn.view(), &LassoParams::with_lambda(1.0)).is_err());
        let mut an = a.view().to_owned();
        an[[4, 7]] = f64::INFINITY;
        match lasso(&Matrix::new(an), y.view(), &LassoParams::with_lambda(1.0)) {
            Err(Error::NonFinite { index, .. }) => assert_eq!(index, 4 * 50 + 7),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let mut p = LassoParams::with_lambda(1.0);
        p.weights = Some(Array1::zeros(50));
        assert!(lasso(&a, y.view(), &p).is_err());
    }
}
