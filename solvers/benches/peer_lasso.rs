//! Our side of the Lasso peer comparison (`benches/peers/lasso.py` drives it).
//!
//! Reads `A.npy` (m × n, float64), `y.npy` (m) and `params.npy` (`[λ, F_target]`) from the
//! directory given as the first argument, then solves `min ½‖Ax − y‖² + λ‖x‖₁` until the
//! objective reaches `F_target` (scikit-learn's objective on the same data), best of 3 runs
//! (the spread, min and max, is printed too), with
//! - plain FISTA (gradient restart) on the whole dictionary (skipped with `--no-fista`); its
//!   step comes from backtracking (Beck & Teboulle) started at a one-step lower bound of
//!   `‖A‖²`; pass `--power` to use the power-iteration estimate instead;
//! - the working-set solver `proximal::lasso` with FISTA (`ws_fista`) and with coordinate
//!   descent (`ws_cd`) on the working set, each with Gap-Safe screening (the default) and
//!   without it (`…_noscreen`).
//!
//! **Floor.** The working-set solver cannot do less than one correlation pass `A_Sᴴ r` over
//! the surviving columns `S` per outer iteration, plus the set-up pass over all of `A`
//! (column norms and `Aᴴy`). The bench times one full product `Aᴴ y` (`t_aty`, best of 5)
//! and prints, for each working-set variant,
//! - `floor_k = (outer + 1) · t_aty` (a full pass per outer iteration and at set-up), and
//! - `floor_active = t_aty · (n + Σ_t c_t) / n`, where `c_t` is the number of columns read
//!   in outer iteration `t` (`LassoInfo::columns_read`: the active columns, less those whose
//!   correlation bound proved them feasible), i.e. each pass charged only for what it reads,
//!
//! and the ratios of its time to both. The rest of the time goes to the subproblems (Gram
//! rows, inner iterations) and to `A x`.
//!
//! The timed region is the whole solve, including the step estimate, but not the reading of
//! the files or the one-off copy of `A` into the operator's column-major storage. Prints one
//! JSON object.
//!
//! Run: `cargo bench -p sparseinv-solvers --bench peer_lasso -- <dir> [--no-fista] [--power]`

use ndarray::{Array1, Array2, ArrayViewD, ArrayViewMutD, Zip};
use ndarray_npy::ReadNpyExt;
use sparseinv_solvers::iter::{Control, IterInfo, NoObserver};
use sparseinv_solvers::op::{LinearOperator, Matrix};
use sparseinv_solvers::prox::Prox;
use sparseinv_solvers::proximal::{lasso_with, solve, InnerSolver, LassoParams, Params};
use std::time::Instant;

/// `λ‖x‖₁` and its prox (soft thresholding).
struct Soft(f64);
impl Prox<f64> for Soft {
    fn value(&self, x: ArrayViewD<f64>) -> f64 {
        self.0 * x.iter().map(|v| v.abs()).sum::<f64>()
    }
    fn prox_into(&self, v: ArrayViewD<f64>, tau: f64, mut out: ArrayViewMutD<f64>) {
        let t = tau * self.0;
        Zip::from(&mut out)
            .and(&v)
            .for_each(|o, &v| *o = v.signum() * (v.abs() - t).max(0.0));
    }
}

fn read<T: ReadNpyExt>(dir: &std::path::Path, name: &str) -> T {
    let f = std::fs::File::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    T::read_npy(f).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Min and max of a list of timings.
fn spread(t: &[f64]) -> (f64, f64) {
    t.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    })
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .expect("usage: peer_lasso <dir with A.npy, y.npy, params.npy> [--no-fista] [--power]");
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let dir = std::path::Path::new(&dir);
    let a: Array2<f64> = read(dir, "A.npy");
    let y: Array1<f64> = read(dir, "y.npy");
    let p: Array1<f64> = read(dir, "params.npy");
    let (lam, target) = (p[0], p[1]);
    let op = Matrix::new(a);
    let n = op.ncols();
    let mut fields: Vec<String> = vec![
        format!("\"target\": {target}"),
        format!("\"threads\": {}", rayon::current_num_threads()),
    ];

    // the floor's unit: one full Aᵀy product
    let mut g = Array1::<f64>::zeros(n);
    let mut t_aty = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        op.adjoint_into(y.view().into_dyn(), g.view_mut().into_dyn());
        t_aty = t_aty.min(t.elapsed().as_secs_f64());
    }
    fields.push(format!("\"aty_seconds\": {t_aty}"));

    if !flag("--no-fista") {
        let y = y.view().into_dyn();
        let prox = Soft(lam);
        let mut params = Params::<f64>::default();
        params.stop.max_iters = 100_000;
        params.stop.rel_tol = 0.0;
        params.stop.objective_target = Some(target);
        // the power iteration for ‖A‖² converges slowly on Gaussian matrices (no spectral gap
        // at the Marchenko–Pastur edge) and can cost more than the solve: use backtracking
        // from a one-step lower bound instead, unless `--power` is passed
        params.backtracking = !flag("--power");
        let mut times = Vec::new();
        let mut last = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let (x, rep) = solve(&op, y.view(), &prox, &params, None, &mut NoObserver).unwrap();
            times.push(t.elapsed().as_secs_f64());
            last = format!(
                "\"fista_iterations\": {}, \"fista_objective\": {}, \"fista_stop_reason\": \"{}\", \"fista_nnz\": {}",
                rep.iterations,
                rep.final_objective().unwrap(),
                rep.stop_reason.as_str(),
                x.iter().filter(|v| **v != 0.0).count()
            );
        }
        let (lo, hi) = spread(&times);
        fields.push(format!(
            "\"fista_seconds\": {lo}, \"fista_seconds_max\": {hi}, {last}"
        ));
    }

    for (name, inner, screening) in [
        ("ws_fista", InnerSolver::Fista, true),
        ("ws_fista_noscreen", InnerSolver::Fista, false),
        ("ws_cd", InnerSolver::CoordinateDescent, true),
        ("ws_cd_noscreen", InnerSolver::CoordinateDescent, false),
    ] {
        let mut p = LassoParams::with_lambda(lam);
        p.inner = inner;
        p.screening = screening;
        p.stop.objective_target = Some(target);
        p.stop.residual_tol = Some(1e-12);
        let mut times = Vec::new();
        let mut last = String::new();
        let mut passes = (0, 0usize);
        for _ in 0..3 {
            let mut marks = Vec::new();
            let mut obs = |i: &IterInfo<f64>| {
                marks.push(i.elapsed.as_secs_f64());
                Control::Continue
            };
            let t = Instant::now();
            let (x, (rep, info)) = lasso_with(&op, y.view(), &p, None, &mut obs).unwrap();
            let total = t.elapsed().as_secs_f64();
            times.push(total);
            // set-up time, then the time of each outer iteration
            let mut split = vec![total - marks.last().copied().unwrap_or(0.0)];
            split.extend(marks.iter().scan(0.0, |prev, &m| {
                let d = m - *prev;
                *prev = m;
                Some((d * 1e4).round() / 1e4)
            }));
            passes = (rep.iterations, info.columns_read.iter().sum());
            last = format!(
                "\"{name}_outer\": {}, \"{name}_inner\": {}, \"{name}_objective\": {}, \"{name}_stop_reason\": \"{}\", \"{name}_nnz\": {}, \"{name}_screened\": {}, \"{name}_ws_sizes\": {:?}, \"{name}_columns_read\": {:?}, \"{name}_rel_gaps\": {:?}, \"{name}_split_seconds\": {:?}",
                rep.iterations,
                info.inner_iterations,
                rep.final_objective().unwrap(),
                rep.stop_reason.as_str(),
                x.iter().filter(|v| **v != 0.0).count(),
                info.screened,
                info.working_set_sizes,
                info.columns_read,
                info.gap_history,
                split
            );
        }
        let (lo, hi) = spread(&times);
        let floor_k = (passes.0 + 1) as f64 * t_aty;
        let floor_active = t_aty * (n + passes.1) as f64 / n as f64;
        fields.push(format!(
            "\"{name}_seconds\": {lo}, \"{name}_seconds_max\": {hi}, {last}, \"{name}_floor_k_seconds\": {floor_k}, \"{name}_floor_active_seconds\": {floor_active}, \"{name}_over_floor_k\": {}, \"{name}_over_floor_active\": {}",
            lo / floor_k,
            lo / floor_active
        ));
    }
    println!("{{{}}}", fields.join(", "));
}
