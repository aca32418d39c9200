//! A working-set solver for the (weighted) Lasso with a dense dictionary,
//!
//! ```text
//! min_x  P(x) = ½‖A x − y‖² + λ Σ_j w_j |x_j|,      A ∈ 𝕂^{m×n}, w_j > 0,
//! ```
//!
//! in the spirit of Celer (Massias, Gramfort & Salmon, ICML 2018) and Blitz (Johnson & Guestrin
//! 2015), with Gap-Safe screening (Fercoq, Gramfort & Salmon, ICML 2015; Ndiaye, Fercoq,
//! Gramfort & Salmon, JMLR 18, 2017). Most columns of `A` are inactive at the solution, so each
//! outer iteration
//!
//! 1. computes the correlation `g = A_Sᴴ r` of the residual `r = y − A x` with the columns of
//!    the *active set* `S` (the columns not yet screened; one pass over them), the rescaled
//!    dual point `θ = r / max(1, max_{j∈S} |g_j| / (λ w_j))` (feasible for the dual
//!    `D(θ) = ½‖y‖² − ½‖y − θ‖²` s.t. `|a_jᴴ θ| ≤ λ w_j`, `j ∈ S`) and the duality gap
//!    `P(x) − D(θ) ≥ P(x) − P(x*) ≥ 0`, a certificate of accuracy. The pass is lazy: a column
//!    whose bound `|a_jᴴ r_prev| + ‖a_j‖ ‖r − r_prev‖` (from the last time it was read) is
//!    below `λ w_j` is not read, since it cannot change the scaling: the gap is still exact;
//! 2. **screens** (on by default, [`LassoParams::screening`]): `D` is 1-strongly concave, so
//!    the dual solution `θ* = y − A x*` lies in the ball of radius `ρ = √(2 (P(x) − D(θ)))`
//!    around `θ`; a column with `|a_jᴴ θ| + ρ ‖a_j‖ < λ w_j` therefore has `|a_jᴴ θ*| < λ w_j`,
//!    hence `x*_j = 0` in every solution, and leaves `S` for good (it is never again in a
//!    working set nor in a correlation pass — this is where the screening saves time);
//! 3. ranks the active columns by their distance to the dual constraint,
//!    `(λ w_j − |g_j|) / ‖a_j‖` (the support first), and keeps the `p` best: the working set
//!    `W`, with `p` at least twice the current support, at least twice the support plus the
//!    columns violating their constraint (`|g_j| > λ w_j`) up to twice the previous size,
//!    and at least doubling when an iteration left the iterate unchanged;
//! 4. solves the Lasso restricted to `W` to a fraction of the outer gap, on the `p × p` Gram
//!    matrix `G = A_Wᴴ A_W` (so an inner iteration costs `O(p²)`, not `O(mn)`), by FISTA
//!    (gradient restart, step `1/λ_max(G)`) or by cyclic coordinate descent. The Gram matrix
//!    is kept between outer iterations: only the rows of columns new to `W` are computed, as
//!    one matrix product. The subproblem's gap target is a fraction of the outer gap, but the
//!    solve goes on for about one pass over the active columns worth of inner work
//!    (`m |S| / p²` iterations), or until it is as accurate as the result must be: an outer
//!    iteration costs a pass over `A`, an inner one `O(p²)`, so a working set that already
//!    holds the support is then finished in one outer iteration rather than several.
//!
//! The screened problem has the same solutions as the full one, so its duality gap still
//! bounds `P(x) − P(x*)` (the dual points are those of the reduced problem: they satisfy the
//! constraints of the surviving columns only, and their values are lower bounds on `P(x*)`).
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
//! let (x, (_report, info)) = lasso(&a, y.view(), &LassoParams::with_lambda(1.0)).unwrap();
//! let expect: Array1<f64> = array![2.0, 0.0, 0.0];
//! assert!((&x - &expect).iter().all(|d| d.abs() < 1e-9));
//! // the zero column and the column with |a_jᵀy| = 0.5 < λ are screened out
//! assert_eq!(info.screened, 2);
//! ```

use super::momentum::{gradient_restart_inner, Momentum, Restart};
use crate::error::{check_finite, Error, Result};
use crate::iter::{run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria};
use crate::op::dot_conj;
use crate::op::{op_norm, LinearOperator, Matrix, NormEstimate};
use crate::prox::soft_threshold;
use crate::scalar::{real, Real, Scalar};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;

/// Below this many matrix entries a pass over columns runs on one thread.
const PAR_THRESHOLD: usize = 1 << 16;
/// Columns per rayon task in a correlation pass.
const COL_BLOCK: usize = 32;
/// Marks a column absent from the cached Gram matrix.
const NONE: usize = usize::MAX;

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
    /// outer gap (default 0.3, as in Celer) — but for at least about one outer pass worth of
    /// inner work (`m |S| / p²` iterations for `|S|` active columns and a working set of
    /// `p`), and never beyond half the outer relative-gap tolerance
    /// ([`StopCriteria::residual_tol`]); see the module documentation.
    pub inner_gap_fraction: R,
    /// Gap-Safe sphere screening (default `true`; Fercoq, Gramfort & Salmon 2015, Ndiaye et
    /// al. 2017). At the start and after every outer iteration, with the current dual point
    /// `θ = r / max(1, max_j |a_jᴴ r| / (λ w_j))` (`r = y − A x`) and its gap
    /// `G = P(x) − D(θ)`, column `j` is removed from the problem for good when
    ///
    /// ```text
    /// |a_jᴴ θ| + √(2 G) ‖a_j‖ < λ w_j
    /// ```
    ///
    /// (equivalently, in the normalisation of the papers, `|a_jᴴ θ/λ| + ρ ‖a_j‖ < w_j` with
    /// `ρ = √(2G)/λ`). The dual `D(θ) = ½‖y‖² − ½‖y − θ‖²` is 1-strongly concave and
    /// `D(θ*) = P(x*) ≤ P(x)`, so `‖θ − θ*‖ ≤ √(2G)` and the test proves `|a_jᴴ θ*| < λ w_j`,
    /// i.e. `x*_j = 0`: the rule is safe, the solution unchanged. To stay safe in floating
    /// point the radius is enlarged by the rounding error of `G` and of the dot products
    /// (`16 ε (|P| + |D|)` added to `G`, `m ε ‖θ‖` to the radius). A screened column that is
    /// nonzero in the current iterate is set to zero (and the residual updated). `false`
    /// solves the same problem without removing columns (every outer iteration then
    /// correlates the residual with all `n` columns).
    pub screening: bool,
    /// Outer stopping rules. Default: 200 outer iterations, relative duality gap
    /// `residual_tol = 1e-9`, relative-change test off (`rel_tol = 0`).
    pub stop: StopCriteria<R>,
}

impl<R: Real> LassoParams<R> {
    /// Default parameters with penalty `lambda` (screening on).
    pub fn with_lambda(lambda: R) -> Self {
        LassoParams {
            lambda,
            weights: None,
            initial_working_set: 100,
            inner: InnerSolver::Fista,
            max_inner_iters: 10_000,
            inner_gap_fraction: real(0.3),
            screening: true,
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
    /// Number of columns of `A` read to correlate them with the residual in each outer
    /// iteration: the active columns whose correlation bound reached `λ w_j` (see
    /// [`WorkingSetLasso`]'s lazy correlations), at most the active set; 0 for an iteration
    /// that found the gap already closed. The set-up reads all `n` columns once more.
    pub columns_read: Vec<usize>,
    /// Total subproblem iterations (FISTA steps or coordinate-descent epochs).
    pub inner_iterations: usize,
    /// Number of columns removed by Gap-Safe screening ([`LassoParams::screening`]): each is
    /// proven to be zero in every solution. `n − screened` columns were left at the end.
    pub screened: usize,
    /// Best dual objective found: `P(x*) ∈ [dual, P(x)]`.
    pub dual_objective: R,
}

/// The working-set Lasso solver as a state machine (see the [module documentation](self));
/// [`lasso`] is the one-call helper.
///
/// It keeps, for each active column, `|a_jᴴ r|` when the column was read for the current
/// residual, or else an upper bound carried from an older residual by Cauchy–Schwarz (*lazy
/// correlations*, see [`LassoInfo::columns_read`]), the working set's Gram matrix between
/// outer iterations, and `Aᴴ y` from the set-up pass.
pub struct WorkingSetLasso<'a, T: Scalar> {
    a: &'a Matrix<T>,
    y: Array1<T>,
    lam_w: Vec<T::Real>,
    col_norms: Vec<T::Real>,
    /// `Aᴴ y` (all columns, computed once): the linear term of every subproblem.
    aty: Vec<T>,
    params: LassoParams<T::Real>,
    x: Array1<T>,
    r: Array1<T>,
    /// The active (not screened) columns, ascending.
    active: Vec<usize>,
    /// `corr[k] ≥ |a_jᴴ r|` for `j = active[k]`: the exact value where `A` was read for the
    /// current `r`, otherwise an upper bound carried from an earlier residual (always below
    /// `λ w_j`; see [`WorkingSetLasso::correlate`]).
    corr: Vec<T::Real>,
    y_norm2: T::Real,
    r_norm2: T::Real,
    primal: T::Real,
    /// `D(θ)` at the current dual point and the scaling `s` of `θ = r / s`.
    dual: T::Real,
    scale: T::Real,
    best_dual: T::Real,
    gap: T::Real,
    prev_ws: usize,
    stalled: bool,
    /// The Gram matrix of the last working set and its columns (kept for the next one).
    gram_cols: Vec<usize>,
    gram_cache: Array2<T>,
    /// Scratch of length `n`: position of a column in `gram_cols`, or [`NONE`].
    slot: Vec<usize>,
    /// Columns read by [`WorkingSetLasso::correlate`] so far.
    columns_read: usize,
    info: LassoInfo<T::Real>,
}

impl<'a, T: Scalar> WorkingSetLasso<'a, T> {
    /// Set up for `A`, `y` from `x0` (zero when `None`). Validates shapes, finiteness and the
    /// parameters; one pass over `A` (column norms, `Aᴴ y`), plus one `A x0` and `Aᴴ r` for a
    /// nonzero `x0`; then screens once when [`LassoParams::screening`] is on.
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
        // one pass over A, column by column (its storage order): ‖a_j‖², a_jᴴ y and, through
        // them, finiteness (a non-finite entry makes ‖a_j‖² non-finite; only then, or on
        // overflow, are the entries checked one by one)
        let ys = y.to_vec();
        let cols: Vec<(T::Real, T)> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|j| {
                let c = a.column(j);
                let (n2, d) = norm2_and_dot(c, &ys);
                if (n2.is_finite() && d.is_finite_scalar())
                    || c.iter().all(|v| v.is_finite_scalar())
                {
                    Some((n2.sqrt(), d))
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
        let (col_norms, aty): (Vec<T::Real>, Vec<T>) = cols.into_iter().unzip();
        let y = y.to_owned();
        let y_norm2 = y.iter().map(|v| v.abs2()).sum();
        let zero_start = x.iter().all(|v| v.is_zero());
        let mut s = WorkingSetLasso {
            a,
            y,
            lam_w,
            col_norms,
            aty,
            params: params.clone(),
            x,
            r: Array1::zeros(m),
            active: (0..n).collect(),
            corr: Vec::new(),
            y_norm2,
            r_norm2: T::Real::zero(),
            primal: T::Real::zero(),
            dual: T::Real::neg_infinity(),
            scale: T::Real::one(),
            best_dual: T::Real::neg_infinity(),
            gap: T::Real::infinity(),
            prev_ws: 0,
            stalled: false,
            gram_cols: Vec::new(),
            gram_cache: Array2::zeros((0, 0)),
            slot: vec![NONE; n],
            columns_read: 0,
            info: LassoInfo {
                gap_history: Vec::new(),
                working_set_sizes: Vec::new(),
                columns_read: Vec::new(),
                inner_iterations: 0,
                screened: 0,
                dual_objective: T::Real::neg_infinity(),
            },
        };
        if zero_start {
            // r = y, so Aᴴ r = Aᴴ y: no second pass
            s.r = s.y.clone();
            s.corr = s.aty.iter().map(|v| v.modulus()).collect();
        } else {
            s.refresh_residual();
            s.correlate(None);
        }
        s.update_gap();
        s.screen_and_refresh();
        Ok(s)
    }

    /// The current estimate.
    pub fn x(&self) -> &Array1<T> {
        &self.x
    }

    /// The current absolute duality gap `P(x) − D(θ)` (with the best dual point found).
    pub fn duality_gap(&self) -> T::Real {
        self.gap
    }

    /// The columns still in the problem (not screened), ascending.
    pub fn active_columns(&self) -> &[usize] {
        &self.active
    }

    /// `r = y − A x` (`A x` costs `O(m · nnz(x))`); returns `‖r_new − r_old‖`.
    fn refresh_residual(&mut self) -> T::Real {
        let mut ax = Array1::zeros(self.a.nrows());
        self.a
            .apply_into(self.x.view().into_dyn(), ax.view_mut().into_dyn());
        let mut d2 = T::Real::zero();
        for ((ri, &yi), &axi) in self.r.iter_mut().zip(&self.y).zip(&ax) {
            let v = yi - axi;
            d2 += (v - *ri).abs2();
            *ri = v;
        }
        d2.sqrt()
    }

    /// Bring `corr` up to date with the current residual `r`, which moved by `δ ≥ ‖r − r_prev‖`
    /// since the last call (`None`: compute every active column).
    ///
    /// Lazy correlations: `|a_jᴴ r| ≤ |a_jᴴ r_prev| + ‖a_j‖ δ` (Cauchy–Schwarz), so each bound
    /// grows by `‖a_j‖ δ` (plus the rounding of the dot products, `m ε (‖r‖ + δ) ‖a_j‖`) and a
    /// column is read again only when its bound reaches `λ w_j`. A column left out satisfies
    /// its dual constraint at `r` (`|a_jᴴ r| < λ w_j`), so it cannot change the dual scaling
    /// `max(1, max_j |a_jᴴ r| / (λ w_j))`: the gap is the one of the full pass, exactly. Its
    /// bound also serves the screening test (which stays safe with an upper bound) and the
    /// working-set ranking. The columns read are one pass over a subset of `A`, parallel in
    /// blocks of columns.
    fn correlate(&mut self, delta: Option<T::Real>) {
        let (a, r) = (self.a, self.r.as_slice().expect("owned residual"));
        let m = a.nrows();
        let todo: Vec<usize> = match delta {
            None => {
                self.corr.resize(self.active.len(), T::Real::zero());
                (0..self.active.len()).collect()
            }
            Some(d) => {
                let eps = T::Real::epsilon();
                let r_norm = r.iter().map(|v| v.abs2()).sum::<T::Real>().sqrt();
                // the rounding of the last exact value (at most m ε ‖a_j‖ ‖r_prev‖, with
                // ‖r_prev‖ ≤ ‖r‖ + δ) and of this update
                let slack = d + real::<T::Real>(m as f64 + 16.0) * eps * (r_norm + d);
                let mut todo = Vec::new();
                for (k, (c, &j)) in self.corr.iter_mut().zip(&self.active).enumerate() {
                    *c += self.col_norms[j] * slack;
                    if *c >= self.lam_w[j] {
                        todo.push(k);
                    }
                }
                todo
            }
        };
        let active = &self.active;
        let dot = |&k: &usize| dot_conj(a.column(active[k]), r).modulus();
        let vals: Vec<T::Real> = if todo.len() * m >= PAR_THRESHOLD {
            todo.par_iter().with_min_len(COL_BLOCK).map(dot).collect()
        } else {
            todo.iter().map(dot).collect()
        };
        for (&k, v) in todo.iter().zip(vals) {
            self.corr[k] = v;
        }
        self.columns_read += todo.len();
    }

    /// The primal value, the dual point's scaling and value, and the gap, from the current
    /// `x`, `r` and `corr`.
    fn update_gap(&mut self) {
        let r = self.r.as_slice().expect("owned residual is contiguous");
        let r2: T::Real = r.iter().map(|v| v.abs2()).sum();
        self.r_norm2 = r2;
        let pen: T::Real = self
            .x
            .iter()
            .zip(&self.lam_w)
            .filter(|(v, _)| !v.is_zero())
            .map(|(v, &l)| l * v.modulus())
            .sum();
        self.primal = real::<T::Real>(0.5) * r2 + pen;
        if self.active.is_empty() {
            // every column is proven zero at the optimum and x = 0: x is the solution
            self.scale = T::Real::one();
            self.dual = self.primal;
        } else {
            // the columns with a bound in `corr` are below 1 here: the exact scaling
            self.scale = self
                .corr
                .iter()
                .zip(&self.active)
                .map(|(&v, &j)| v / self.lam_w[j])
                .fold(T::Real::one(), Float::max);
            // D(r/s) = Re⟨y, r⟩/s − ‖r‖²/(2 s²)
            let yr: T::Real = self
                .y
                .iter()
                .zip(r)
                .map(|(&u, &v)| (u.conj() * v).re())
                .sum();
            self.dual = yr / self.scale - r2 / (real::<T::Real>(2.0) * self.scale * self.scale);
        }
        if self.dual > self.best_dual {
            self.best_dual = self.dual;
        }
        self.gap = (self.primal - self.best_dual).max(T::Real::zero());
        self.info.dual_objective = self.best_dual;
    }

    /// Gap-Safe sphere test (see [`LassoParams::screening`]) on the active columns with the
    /// current dual point; removes the columns it proves inactive and, when some of them were
    /// nonzero in `x`, zeroes them, updates `r` and returns `Some(‖r_new − r_old‖)`.
    fn screen(&mut self) -> Option<T::Real> {
        if self.active.is_empty() {
            return None;
        }
        let eps = T::Real::epsilon();
        let gap = (self.primal - self.dual).max(T::Real::zero())
            + real::<T::Real>(16.0) * eps * (self.primal.abs() + self.dual.abs());
        let theta_norm = self.r_norm2.sqrt() / self.scale;
        let m = real::<T::Real>(self.a.nrows() as f64);
        let rho = (real::<T::Real>(2.0) * gap).sqrt() + m * eps * theta_norm;
        let inv_s = T::Real::one() / self.scale;
        let mut kept = 0;
        let mut du: Option<Array1<T>> = None;
        for k in 0..self.active.len() {
            let j = self.active[k];
            // corr[k] ≥ |a_jᴴ r|, so this bounds |a_jᴴ θ| + ρ‖a_j‖ from above
            let bound = self.corr[k] * inv_s + rho * self.col_norms[j];
            if bound >= self.lam_w[j] {
                self.active[kept] = j;
                self.corr[kept] = self.corr[k];
                kept += 1;
            } else if !self.x[j].is_zero() {
                // Δr += x_j a_j
                let xj = self.x[j];
                let u = du.get_or_insert_with(|| Array1::zeros(self.r.len()));
                for (ui, &aij) in u.iter_mut().zip(self.a.column(j)) {
                    *ui += aij * xj;
                }
                self.x[j] = T::zero();
            }
        }
        self.info.screened += self.active.len() - kept;
        self.active.truncate(kept);
        self.corr.truncate(kept);
        du.map(|u| {
            self.r += &u;
            u.iter().map(|v| v.abs2()).sum::<T::Real>().sqrt()
        })
    }

    /// Screen (when enabled) and, if a nonzero coefficient was screened, update the
    /// correlations and the gap of the changed iterate.
    fn screen_and_refresh(&mut self) {
        if !self.params.screening {
            return;
        }
        if let Some(delta) = self.screen() {
            self.correlate(Some(delta));
            self.update_gap();
        }
    }

    /// The next working set: the support first, then the active columns closest to their dual
    /// constraint.
    fn working_set(&mut self) -> Vec<usize> {
        let na = self.active.len();
        let (mut support, mut violators) = (0, 0);
        for (&j, &c) in self.active.iter().zip(&self.corr) {
            if !self.x[j].is_zero() {
                support += 1;
            } else if c > self.lam_w[j] {
                violators += 1;
            }
        }
        // twice the support (Celer's rule); twice the support and the columns that violate
        // their dual constraint (the candidates to enter it), up to doubling the previous size;
        // double it when the last subproblem left the support as it was (the set lacked the
        // violating columns)
        let mut p = self.params.initial_working_set.max(2 * support);
        p = p.max((2 * (support + violators)).min(2 * self.prev_ws));
        if self.stalled {
            p = p.max(2 * self.prev_ws);
        }
        let p = p.min(na);
        let mut ws: Vec<usize> = if p == na {
            self.active.clone()
        } else {
            let mut score: Vec<(T::Real, usize)> = self
                .active
                .iter()
                .zip(&self.corr)
                .map(|(&j, &c)| {
                    let s = if !self.x[j].is_zero() {
                        T::Real::neg_infinity()
                    } else if self.col_norms[j] > T::Real::zero() {
                        (self.lam_w[j] - c) / self.col_norms[j]
                    } else {
                        T::Real::infinity()
                    };
                    (s, j)
                })
                .collect();
            score.select_nth_unstable_by(p, |a, b| a.0.partial_cmp(&b.0).unwrap());
            score[..p].iter().map(|&(_, j)| j).collect()
        };
        ws.sort_unstable();
        self.prev_ws = p;
        ws
    }

    /// `G = A_Wᴴ A_W` (p × p, Hermitian). Entries between columns of the previous working set
    /// are copied from the cache; the rows of the new columns `N` come from one matrix
    /// product `conj(A_N)ᵀ A_W` (blocked GEMM, parallel over blocks of `W`).
    fn gram(&mut self, ws: &[usize]) -> Array2<T> {
        let (p, m) = (ws.len(), self.a.nrows());
        for (i, &j) in self.gram_cols.iter().enumerate() {
            self.slot[j] = i;
        }
        let old: Vec<usize> = ws.iter().map(|&j| self.slot[j]).collect();
        for &j in &self.gram_cols {
            self.slot[j] = NONE;
        }
        let fresh: Vec<usize> = (0..p).filter(|&i| old[i] == NONE).collect();
        let mut gm = Array2::zeros((p, p));
        let kept: Vec<usize> = (0..p).filter(|&i| old[i] != NONE).collect();
        for &i in &kept {
            let src = self.gram_cache.row(old[i]);
            let mut dst = gm.row_mut(i);
            for &k in &kept {
                dst[k] = src[old[k]];
            }
        }
        if !fresh.is_empty() {
            // rows of `an`: conj(a_i) for the new columns; rows of `aw`: a_k for all of W
            let mut an = Array2::<T>::zeros((fresh.len(), m));
            for (mut row, &i) in an.axis_iter_mut(Axis(0)).zip(&fresh) {
                for (d, &s) in row.iter_mut().zip(self.a.column(ws[i])) {
                    *d = s.conj();
                }
            }
            let mut aw = Array2::<T>::zeros((p, m));
            for (mut row, &j) in aw.axis_iter_mut(Axis(0)).zip(ws) {
                row.as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(self.a.column(j));
            }
            let threads = rayon::current_num_threads().max(1);
            let chunk = p.div_ceil(threads).max(64);
            let blocks: Vec<Array2<T>> = if fresh.len() * p * m >= PAR_THRESHOLD * 16 {
                let views: Vec<_> = aw.axis_chunks_iter(Axis(0), chunk).collect();
                views.par_iter().map(|b| an.dot(&b.t())).collect()
            } else {
                vec![an.dot(&aw.t())]
            };
            let mut k0 = 0;
            for b in &blocks {
                for (q, &i) in fresh.iter().enumerate() {
                    for (kk, &v) in b.row(q).iter().enumerate() {
                        gm[[i, k0 + kk]] = v;
                    }
                }
                k0 += b.ncols();
            }
            // Hermitian: the column of a new i is the conjugate of its row (for a pair of new
            // columns the entry with the smaller row index is kept)
            for &i in &fresh {
                for k in 0..p {
                    if old[k] != NONE || k > i {
                        gm[[k, i]] = gm[[i, k]].conj();
                    }
                }
                gm[[i, i]] = T::from_real(gm[[i, i]].re());
            }
        }
        gm
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
        &self,
        gm: &Array2<T>,
        c: &[T],
        lw: &[T::Real],
        z: &mut [T],
        stop: InnerStop<T::Real>,
    ) -> usize {
        let p = z.len();
        // λ_max(G) = ‖G‖₂ (G is Hermitian positive semi-definite), with a safety margin
        let lmax = op_norm(&Matrix::from_view(gm.view()), NormEstimate::default());
        if lmax <= T::Real::zero() {
            return 0;
        }
        let step = T::Real::one() / (real::<T::Real>(1.05) * lmax);
        let mut xk = z.to_vec();
        let mut xn = vec![T::zero(); p];
        let mut yk = z.to_vec();
        let mut momentum = Momentum::<T::Real>::new();
        let mut gy = vec![T::zero(); p];
        let mut gz = vec![T::zero(); p];
        let mut it = 0;
        while it < self.params.max_inner_iters {
            it += 1;
            gram_matvec(gm, &yk, &mut gy);
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
            std::mem::swap(&mut xk, &mut xn);
            if it % 10 == 0 {
                gram_matvec(gm, &xk, &mut gz);
                if stop.done(it, self.sub_gap(&xk, &gz, c, lw)) {
                    break;
                }
            }
        }
        z.copy_from_slice(&xk);
        it
    }

    fn solve_cd(
        &self,
        gm: &Array2<T>,
        c: &[T],
        lw: &[T::Real],
        z: &mut [T],
        stop: InnerStop<T::Real>,
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
            if stop.done(it, self.sub_gap(z, &gz, c, lw)) {
                break;
            }
        }
        it
    }
}

/// When a subproblem solve stops: its gap is below `target` (a fraction of the outer gap)
/// after at least `min_iters` iterations, or below `rel_final` times its primal value.
///
/// An outer iteration costs a pass over the `m × |S|` active columns while an inner iteration
/// costs `O(p²)`; `min_iters ≈ m |S| / p²` lets the subproblem use about one pass worth of
/// work before the outer loop takes over, so that a working set that already holds the
/// support is solved in one outer iteration instead of several, each with a full pass.
/// `rel_final` (half the outer relative-gap tolerance) ends a solve that is already as
/// accurate as the result needs to be.
#[derive(Debug, Clone, Copy)]
struct InnerStop<R> {
    target: R,
    min_iters: usize,
    rel_final: R,
}

impl<R: Real> InnerStop<R> {
    /// `(primal, gap)` of the subproblem after iteration `it`.
    fn done(&self, it: usize, (primal, gap): (R, R)) -> bool {
        (gap <= self.target && it >= self.min_iters) || gap <= self.rel_final * primal
    }
}

/// `out ← G v` for the small dense Gram matrix of the working set.
fn gram_matvec<T: Scalar>(gm: &Array2<T>, v: &[T], out: &mut [T]) {
    for (o, row) in out.iter_mut().zip(gm.rows()) {
        *o = dot_conj_free(row.as_slice().expect("standard layout"), v);
    }
}

/// `(‖a‖², aᴴ b)` in one sweep over `a`, four independent accumulators for each.
#[inline]
fn norm2_and_dot<T: Scalar>(a: &[T], b: &[T]) -> (T::Real, T) {
    let mut n2 = [T::Real::zero(); 4];
    let mut acc = [T::zero(); 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        for l in 0..4 {
            n2[l] += u[l].abs2();
            acc[l] += u[l].conj() * v[l];
        }
    }
    let mut s = (n2[0] + n2[1]) + (n2[2] + n2[3]);
    let mut d = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&u, &v) in ra.iter().zip(rb) {
        s += u.abs2();
        d += u.conj() * v;
    }
    (s, d)
}

/// `Σ_i a_i b_i` (no conjugation) with four accumulators.
#[inline]
fn dot_conj_free<T: Scalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        acc[0] += u[0] * v[0];
        acc[1] += u[1] * v[1];
        acc[2] += u[2] * v[2];
        acc[3] += u[3] * v[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&u, &v) in ra.iter().zip(rb) {
        s += u * v;
    }
    s
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
            self.info.columns_read.push(0);
            return Ok(StepInfo {
                objective: Some(self.primal),
                rel_change: T::Real::zero(),
                residual: Some(T::Real::zero()),
            });
        }
        let ws = self.working_set();
        let gm = self.gram(&ws);
        let c: Vec<T> = ws.iter().map(|&j| self.aty[j]).collect();
        let lw: Vec<T::Real> = ws.iter().map(|&j| self.lam_w[j]).collect();
        let mut z: Vec<T> = ws.iter().map(|&j| self.x[j]).collect();
        let p = ws.len() as f64;
        let pass = (self.a.nrows() * self.active.len()) as f64;
        let stop = InnerStop {
            target: self.params.inner_gap_fraction * self.gap,
            min_iters: ((pass / (p * p)).ceil() as usize).clamp(1, self.params.max_inner_iters),
            rel_final: self
                .params
                .stop
                .residual_tol
                .map_or(T::Real::zero(), |t| real::<T::Real>(0.5) * t),
        };
        let its = match self.params.inner {
            InnerSolver::Fista => self.solve_fista(&gm, &c, &lw, &mut z, stop),
            InnerSolver::CoordinateDescent => self.solve_cd(&gm, &c, &lw, &mut z, stop),
        };
        self.gram_cache = gm;
        self.gram_cols.clone_from(&ws);
        self.info.inner_iterations += its;
        // the support is inside the working set, so x changes on W only
        let mut dx2 = T::Real::zero();
        for (&j, &v) in ws.iter().zip(&z) {
            dx2 += (v - self.x[j]).abs2();
            self.x[j] = v;
        }
        let read = self.columns_read;
        let delta = self.refresh_residual();
        self.correlate(Some(delta));
        self.update_gap();
        self.screen_and_refresh();
        self.info.columns_read.push(self.columns_read - read);
        let nx: T::Real = self.x.iter().map(|v| v.abs2()).sum::<T::Real>().sqrt();
        let r = rel(self);
        self.stalled = dx2 == T::Real::zero();
        self.info.gap_history.push(r);
        self.info.working_set_sizes.push(ws.len());
        Ok(StepInfo {
            objective: Some(self.primal),
            rel_change: dx2.sqrt() / nx.max(T::Real::min_positive_value()),
            residual: Some(r),
        })
    }
}

/// Solve the weighted Lasso `min ½‖Ax − y‖² + λ Σ w_j|x_j|` by the working-set method with
/// Gap-Safe screening from zero; returns the solution, the shared [`Report`] (objective and
/// stop reason per outer iteration) and the solver's [`LassoInfo`] (duality gaps,
/// working-set sizes, screened columns).
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

    /// `λ_max = max_j |a_jᴴ y| / w_j`: the smallest λ with solution 0.
    fn lambda_max(a: &Matrix<f64>, y: &Array1<f64>) -> f64 {
        let g = a.adjoint(y.view().into_dyn()).unwrap();
        g.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    }

    /// Solve with screening off to a relative gap of 1e-14 (the reference).
    fn reference(a: &Matrix<f64>, y: &Array1<f64>, lam: f64) -> Array1<f64> {
        let mut p = LassoParams::with_lambda(lam);
        p.screening = false;
        p.stop.residual_tol = Some(1e-14);
        p.stop.max_iters = 1000;
        let (x, (rep, info)) = lasso(a, y.view(), &p).unwrap();
        assert_eq!(rep.stop_reason.as_str(), "residual");
        assert_eq!(info.screened, 0);
        x
    }

    /// Run the state machine with screening on; returns the solution and the screened columns.
    fn screened_solve(
        a: &Matrix<f64>,
        y: &Array1<f64>,
        p: &LassoParams<f64>,
    ) -> (Array1<f64>, Vec<usize>, LassoInfo<f64>) {
        let mut s = WorkingSetLasso::new(a, y.view(), p, None).unwrap();
        let rep = run(&mut s, &p.stop, &mut NoObserver).unwrap();
        assert_eq!(rep.stop_reason.as_str(), "residual");
        let active = s.active_columns().to_vec();
        let screened = (0..a.ncols())
            .filter(|j| active.binary_search(j).is_err())
            .collect();
        (s.x().clone(), screened, s.info.clone())
    }

    #[test]
    fn screening_is_safe_on_random_problems() {
        for (seed, m, n, k, frac) in [
            (31, 60, 400, 8, 0.5),
            (32, 60, 400, 8, 0.1),
            (33, 80, 600, 20, 0.02),
            (34, 40, 300, 5, 0.3),
            (35, 100, 250, 30, 0.05),
        ] {
            let (a, y) = problem(m, n, k, seed);
            let lam = frac * lambda_max(&a, &y);
            let xr = reference(&a, &y, lam);
            let (xs, screened, info) = screened_solve(&a, &y, &LassoParams::with_lambda(lam));
            assert_eq!(screened.len(), info.screened, "seed {seed}");
            // not vacuous: the rule removed columns and the reference has a support
            assert!(!screened.is_empty(), "seed {seed}: nothing screened");
            let supp: Vec<usize> = (0..n).filter(|&j| xr[j] != 0.0).collect();
            assert!(!supp.is_empty(), "seed {seed}");
            // safe: each screened column is zero in the tight reference solution and strictly
            // inside its dual constraint at the reference residual
            let r = &y - &a.view().dot(&xr);
            for &j in &screened {
                assert_eq!(
                    xr[j], 0.0,
                    "seed {seed}: screened column {j} is in the support"
                );
                let c = dot_conj(a.column(j), r.as_slice().unwrap()).abs();
                assert!(
                    c < lam,
                    "seed {seed}: screened column {j} has |a_jᵀr*| = {c} ≥ λ"
                );
                assert_eq!(xs[j], 0.0);
            }
            // and the screened solve is the Lasso solution
            assert!(kkt(&a, &y, &xs, &vec![lam; n]) < 1e-4, "seed {seed}");
            let d = (&xs - &xr).mapv(f64::abs).sum() / xr.mapv(f64::abs).sum();
            assert!(d < 1e-4, "seed {seed}: relative L1 distance {d}");
        }
    }

    #[test]
    fn screened_solve_equals_unscreened() {
        let obj = |a: &Matrix<f64>, y: &Array1<f64>, x: &Array1<f64>, lam: f64| {
            let r = y - &a.view().dot(x);
            0.5 * r.dot(&r) + lam * x.mapv(f64::abs).sum()
        };
        for (seed, frac, inner) in [
            (41, 0.1, InnerSolver::Fista),
            (42, 0.01, InnerSolver::Fista),
            (43, 0.1, InnerSolver::CoordinateDescent),
            (44, 0.01, InnerSolver::CoordinateDescent),
        ] {
            let (a, y) = problem(80, 500, 15, seed);
            let lam = frac * lambda_max(&a, &y);
            let mut p = LassoParams::with_lambda(lam);
            p.inner = inner;
            p.stop.residual_tol = Some(1e-11);
            let (xs, (rs, is)) = lasso(&a, y.view(), &p).unwrap();
            p.screening = false;
            let (xu, (ru, iu)) = lasso(&a, y.view(), &p).unwrap();
            assert_eq!(rs.stop_reason.as_str(), "residual");
            assert_eq!(ru.stop_reason.as_str(), "residual");
            assert!(is.screened > 0 && iu.screened == 0, "seed {seed}");
            // both objectives (recomputed here) are within the certified gap of P(x*)
            let (fs, fu) = (obj(&a, &y, &xs, lam), obj(&a, &y, &xu, lam));
            assert!((fs - fu).abs() <= 2e-11 * fu, "seed {seed}: {fs} vs {fu}");
            assert!(
                is.dual_objective <= fu && iu.dual_objective <= fs,
                "seed {seed}"
            );
            let d = (&xs - &xu).mapv(f64::abs).sum() / xu.mapv(f64::abs).sum();
            assert!(d < 1e-5, "seed {seed}: relative L1 distance {d}");
            for x in [&xs, &xu] {
                assert!(kkt(&a, &y, x, &vec![lam; 500]) < 1e-5, "seed {seed}");
            }
        }
    }

    #[test]
    fn near_lambda_max_screens_most_columns() {
        let (a, y) = problem(100, 2000, 10, 51);
        let lam = 0.8 * lambda_max(&a, &y);
        let xr = reference(&a, &y, lam);
        let (xs, screened, info) = screened_solve(&a, &y, &LassoParams::with_lambda(lam));
        assert!(
            screened.len() >= 1900,
            "only {} of 2000 columns screened",
            screened.len()
        );
        // screened already at set-up from the gap of x = 0, before any subproblem
        assert!(info.columns_read[0] < 1000, "{:?}", info.columns_read);
        let supp: Vec<usize> = (0..2000).filter(|&j| xr[j] != 0.0).collect();
        assert!(!supp.is_empty());
        assert!(supp.iter().all(|j| screened.binary_search(j).is_err()));
        assert!(kkt(&a, &y, &xs, &vec![lam; 2000]) < 1e-5);
        assert!((&xs - &xr).mapv(f64::abs).sum() < 1e-6);
    }

    #[test]
    fn weighted_and_complex_screening_is_safe() {
        // weighted real problem
        let (a, y) = problem(60, 400, 8, 61);
        let w = Array1::from_shape_fn(400, |j| 0.5 + (j % 7) as f64 * 0.25);
        let lam = 0.1 * lambda_max(&a, &y);
        let lw: Vec<f64> = w.iter().map(|&v| v * lam).collect();
        let mut p = LassoParams::with_lambda(lam);
        p.weights = Some(w);
        let (xs, screened, _) = screened_solve(&a, &y, &p);
        p.screening = false;
        p.stop.residual_tol = Some(1e-14);
        let (xr, _) = lasso(&a, y.view(), &p).unwrap();
        assert!(screened.len() > 100, "{} screened", screened.len());
        assert!(screened.iter().all(|&j| xr[j] == 0.0));
        assert!(kkt(&a, &y, &xs, &lw) < 1e-5);
        // complex problem
        let (m, n) = (40, 300);
        let ac = randn::<C64>(&[m, n], 62)
            .mapv(|v| v / (m as f64).sqrt())
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let mut xt = Array1::<C64>::zeros(n);
        xt[5] = C64::new(1.0, -2.0);
        xt[100] = C64::new(-1.5, 0.5);
        let yc = ac.dot(&xt);
        let ac = Matrix::new(ac);
        let lam = 0.05;
        let mut p = LassoParams::with_lambda(lam);
        let mut s = WorkingSetLasso::new(&ac, yc.view(), &p, None).unwrap();
        run(&mut s, &p.stop, &mut NoObserver).unwrap();
        let active = s.active_columns().to_vec();
        assert!(active.len() < n / 2, "{} active", active.len());
        p.screening = false;
        p.stop.residual_tol = Some(1e-14);
        let (xr, _) = lasso(&ac, yc.view(), &p).unwrap();
        for j in (0..n).filter(|j| active.binary_search(j).is_err()) {
            assert!(
                xr[j].is_zero(),
                "complex: screened column {j} is in the support"
            );
        }
        assert!(kkt(&ac, &yc, s.x(), &vec![lam; n]) < 1e-5);
    }

    #[test]
    fn warm_start_screens_nonzero_coefficients() {
        // x0 = the solution plus small entries on columns far inside their dual constraint:
        // the gap at x0 is small, so the set-up screening removes those columns although they
        // are nonzero in x0; it must zero them and update the residual and the gap
        let (a, y) = problem(60, 400, 10, 71);
        let lam = 0.5 * lambda_max(&a, &y);
        let xr = reference(&a, &y, lam);
        let r = &y - &a.view().dot(&xr);
        let g = a.view().t().dot(&r);
        let mut far: Vec<usize> = (0..400).filter(|&j| xr[j] == 0.0).collect();
        far.sort_by(|&i, &j| g[i].abs().partial_cmp(&g[j].abs()).unwrap());
        far.truncate(5);
        let mut x0 = xr.clone();
        for &j in &far {
            x0[j] = 1e-4;
        }
        let p = LassoParams::with_lambda(lam);
        let mut s = WorkingSetLasso::new(&a, y.view(), &p, Some(x0.view())).unwrap();
        for &j in &far {
            assert!(
                s.active_columns().binary_search(&j).is_err(),
                "{j} not screened"
            );
            assert_eq!(s.x()[j], 0.0);
        }
        // the state describes the zeroed iterate: primal value and the full dual scaling
        let r = &y - &a.view().dot(s.x());
        let pr = 0.5 * r.dot(&r) + lam * s.x().mapv(f64::abs).sum();
        assert!((s.primal - pr).abs() <= 1e-12 * pr, "{} vs {pr}", s.primal);
        assert!((&r - &s.r).mapv(f64::abs).sum() <= 1e-12 * r.mapv(f64::abs).sum());
        let rep = run(&mut s, &p.stop, &mut NoObserver).unwrap();
        assert_eq!(rep.stop_reason.as_str(), "residual");
        assert!(kkt(&a, &y, s.x(), &vec![lam; 400]) < 1e-5);
        assert!((s.x() - &xr).mapv(f64::abs).sum() < 1e-6);
    }

    #[test]
    fn gram_cache_matches_direct_products() {
        let m = 30;
        let n = 50;
        let a = randn::<C64>(&[m, n], 81)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let y = randn::<C64>(&[m], 82)
            .into_dimensionality::<ndarray::Ix1>()
            .unwrap();
        let a = Matrix::new(a);
        let mut p = LassoParams::with_lambda(1e-3);
        p.screening = false;
        let mut s = WorkingSetLasso::new(&a, y.view(), &p, None).unwrap();
        let direct = |ws: &[usize]| {
            Array2::from_shape_fn((ws.len(), ws.len()), |(i, k)| {
                a.column(ws[i])
                    .iter()
                    .zip(a.column(ws[k]))
                    .map(|(u, v)| u.conj() * v)
                    .sum::<C64>()
            })
        };
        let ws1: Vec<usize> = (0..n).step_by(3).collect();
        let ws2: Vec<usize> = (0..n).filter(|j| j % 2 == 0 || j % 5 == 0).collect();
        let g1 = s.gram(&ws1);
        assert!((&g1 - &direct(&ws1)).iter().all(|d| d.norm() < 1e-12));
        s.gram_cache = g1;
        s.gram_cols.clone_from(&ws1);
        let g2 = s.gram(&ws2);
        let e = &g2 - &direct(&ws2);
        assert!(e.iter().all(|d| d.norm() < 1e-12), "max error {e}");
        // exactly Hermitian, so coordinate descent may read a column as a conjugated row
        assert!(g2.indexed_iter().all(|((i, k), v)| *v == g2[[k, i]].conj()));
    }

    #[test]
    fn lazy_correlations_give_the_full_gap() {
        // screening off, so the dual point is the full problem's: compare the solver's primal,
        // dual and bounds after each outer iteration with a full, independent Aᵀr
        let (a, y) = problem(60, 400, 8, 91);
        let lam = 0.3 * lambda_max(&a, &y);
        let mut p = LassoParams::with_lambda(lam);
        p.screening = false;
        p.initial_working_set = 5;
        p.inner_gap_fraction = 0.9;
        p.max_inner_iters = 20;
        let mut s = WorkingSetLasso::new(&a, y.view(), &p, None).unwrap();
        let mut skipped = false;
        for _ in 0..30 {
            let before = s.columns_read;
            s.step().unwrap();
            skipped |= s.columns_read - before < 400 && s.gap > 0.0;
            let r = &y - &a.view().dot(s.x());
            let g = a.view().t().dot(&r);
            let pr = 0.5 * r.dot(&r) + lam * s.x().mapv(f64::abs).sum();
            let sc = g.iter().fold(1.0f64, |m, v| m.max(v.abs() / lam));
            let du = y.dot(&r) / sc - r.dot(&r) / (2.0 * sc * sc);
            assert!((s.primal - pr).abs() <= 1e-12 * pr, "{} vs {pr}", s.primal);
            assert!((s.scale - sc).abs() <= 1e-12 * sc, "{} vs {sc}", s.scale);
            assert!((s.dual - du).abs() <= 1e-12 * pr, "{} vs {du}", s.dual);
            for (&j, &c) in s.active.iter().zip(&s.corr) {
                assert!(
                    c >= g[j].abs() * (1.0 - 1e-12),
                    "bound {c} < |a_jᵀr| {}",
                    g[j]
                );
            }
            if s.gap <= 1e-10 * s.primal {
                break;
            }
        }
        assert!(
            skipped,
            "no outer iteration skipped a column: the test is vacuous"
        );
    }
}
