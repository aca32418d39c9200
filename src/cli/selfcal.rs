//! `sparseinv selfcal`: self-calibration / blind deconvolution by linear least squares
//! (Ling & Strohmer 2018) from `.npy` inputs.
//!
//! Inputs: `--y` the measurements, `[p, m]` (a 1-D `[m]` is one block); `--a` the known
//! matrices, `[p, m, n]` for `repeated` (the `A_l`) and `diverse` (the `C_l`), `[m, n]` or
//! `[1, m, n]` for `snapshots`; optional `--basis` `B` (`[m, k]`) with `s = 1/d = B h`.
//! Real (`float64`/`float32`) or complex (`complex128`): complex if any input is complex.
//! Outputs: `-o` the signal(s), `[n]` for `repeated`, `[p, n]` otherwise; `--calibration`
//! the gains `d` (`[m]`), or the filter `f` for `diverse`. Both are determined only up to a
//! joint scale `(d, x) ↦ (d/α, α x)`; the scale is fixed by the constraint `Σ s_i = k`
//! (`--constraint mean`, default) or `s_1 = 1` (`first`).

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::{ArrayD, Ix2, Ix3};
use num_complex::Complex64;
use serde_json::json;
use sparseinv::io::npy::{read_npy, write_npy, NpyArray};
use sparseinv::solvers::iter::NoObserver;
use sparseinv::solvers::selfcal::{
    solve, Backend, Constraint, DenseScalar, Method, Model, Params, Problem, Solution,
};
use std::path::PathBuf;

/// The model of the measurements.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// y_l = diag(d) A_l x: unknown gains d, one signal x, several known A_l.
    Repeated,
    /// y_l = f ⊛ (C_l x_l): unknown filter f (circular convolution), known C_l.
    Diverse,
    /// y_l = diag(d) A x_l: unknown gains d, one known A, several signals x_l.
    Snapshots,
}

/// Which solver of the paper.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SolverArg {
    /// Least squares with the scale constraint.
    Lsq,
    /// Smallest right singular vector of the stacked system.
    Spectral,
}

/// Dense or matrix-free linear algebra.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// Dense up to 600 unknowns, matrix-free above.
    Auto,
    /// Dense QR / SVD (faer).
    Dense,
    /// LSQR through the stacked operator.
    MatrixFree,
}

/// The scale constraint.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConstraintArg {
    /// Σ h_i = k: the calibration inverse has mean 1.
    Mean,
    /// h_1 = 1.
    First,
}

/// Arguments of `sparseinv selfcal`.
#[derive(Args, Debug)]
pub struct SelfcalArgs {
    /// Measurement model.
    #[arg(long, value_enum)]
    pub model: ModelArg,
    /// Measurements y (.npy), shape [p, m] (or [m] for one block).
    #[arg(long)]
    pub y: PathBuf,
    /// Known matrices (.npy): [p, m, n] (repeated, diverse) or [m, n] (snapshots).
    #[arg(long)]
    pub a: PathBuf,
    /// Optional subspace B (.npy), [m, k]: the inverse calibration is s = 1/d = B h.
    #[arg(long)]
    pub basis: Option<PathBuf>,
    /// Solver.
    #[arg(long, value_enum, default_value = "lsq")]
    pub solver: SolverArg,
    /// Linear-algebra backend.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Constraint that fixes the scale.
    #[arg(long, value_enum, default_value = "mean")]
    pub constraint: ConstraintArg,
    /// LSQR tolerance (matrix-free backend).
    #[arg(long, default_value_t = 1e-12)]
    pub tol: f64,
    /// LSQR iteration budget per solve (matrix-free backend).
    #[arg(long, default_value_t = 5000)]
    pub max_iters: usize,
    /// Output: the signal(s) x (.npy).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Output: the calibration d (gains, or the filter f for `diverse`) (.npy).
    #[arg(long)]
    pub calibration: PathBuf,
    /// Optional JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

fn model_of(m: ModelArg) -> Model {
    match m {
        ModelArg::Repeated => Model::Repeated,
        ModelArg::Diverse => Model::Diverse,
        ModelArg::Snapshots => Model::Snapshots,
    }
}

fn to_y<T: Clone>(a: ArrayD<T>, what: &str) -> anyhow::Result<ndarray::Array2<T>> {
    let a = match a.ndim() {
        1 => {
            let m = a.len();
            a.into_shape_with_order((1, m))?.into_dyn()
        }
        _ => a,
    };
    a.into_dimensionality::<Ix2>()
        .map_err(|_| anyhow::anyhow!("{what} must be 1-D [m] or 2-D [p, m]"))
}

fn to_a<T: Clone>(a: ArrayD<T>, model: Model) -> anyhow::Result<ndarray::Array3<T>> {
    let a = if a.ndim() == 2 && model == Model::Snapshots {
        let (m, n) = (a.shape()[0], a.shape()[1]);
        a.into_shape_with_order((1, m, n))?.into_dyn()
    } else {
        a
    };
    a.into_dimensionality::<Ix3>().map_err(|_| {
        anyhow::anyhow!(
            "A must be 3-D [p, m, n]{}",
            if model == Model::Snapshots {
                " or 2-D [m, n]"
            } else {
                ""
            }
        )
    })
}

struct Outcome {
    x: NpyArray,
    d: NpyArray,
    sigma: f64,
    iterations: usize,
    outer: usize,
    dense: bool,
    dims: (usize, usize, usize, usize),
    unknowns: usize,
}

fn run_typed<T: DenseScalar>(
    model: Model,
    y: ArrayD<T>,
    a: ArrayD<T>,
    b: Option<ArrayD<T>>,
    params: &Params<T>,
    wrap: impl Fn(ArrayD<T>) -> NpyArray,
) -> anyhow::Result<Outcome> {
    let y = to_y(y, "y")?;
    let a = to_a(a, model)?;
    let b = b
        .map(|b| {
            b.into_dimensionality::<Ix2>()
                .map_err(|_| anyhow::anyhow!("the basis B must be 2-D [m, k]"))
        })
        .transpose()?;
    let problem = Problem::new(model, y, a, b)?;
    let dims = problem.dims();
    let unknowns = problem.operator().n_calibration() + problem.operator().n_signal();
    let (sol, _): (Solution<T>, _) = solve(&problem, params, &mut NoObserver)?;
    let x = if model == Model::Repeated {
        sol.x.row(0).to_owned().into_dyn()
    } else {
        sol.x.clone().into_dyn()
    };
    Ok(Outcome {
        x: wrap(x),
        d: wrap(sol.d.clone().into_dyn()),
        sigma: sol.sigma.to_f64_lossless(),
        iterations: sol.iterations,
        outer: sol.outer_iterations,
        dense: sol.dense,
        dims,
        unknowns,
    })
}

use sparseinv::solvers::Real;

/// Run `sparseinv selfcal`.
pub fn run(args: SelfcalArgs) -> anyhow::Result<()> {
    let model = model_of(args.model);
    if args.output == args.calibration {
        bail!("-o and --calibration must be different files");
    }
    for p in [
        Some(&args.output),
        Some(&args.calibration),
        args.json.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if p.exists() && !args.force {
            bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    let y = read_npy(&args.y).with_context(|| format!("reading --y {}", args.y.display()))?;
    let a = read_npy(&args.a).with_context(|| format!("reading --a {}", args.a.display()))?;
    let b = args
        .basis
        .as_ref()
        .map(|p| read_npy(p).with_context(|| format!("reading --basis {}", p.display())))
        .transpose()?;
    let complex = y.is_complex() || a.is_complex() || b.as_ref().is_some_and(|b| b.is_complex());
    let method = match args.solver {
        SolverArg::Lsq => Method::Lsq,
        SolverArg::Spectral => Method::Spectral,
    };
    let backend = match args.backend {
        BackendArg::Auto => Backend::Auto,
        BackendArg::Dense => Backend::Dense,
        BackendArg::MatrixFree => Backend::MatrixFree,
    };
    let krylov = sparseinv::solvers::krylov::KrylovParams {
        stop: sparseinv::solvers::krylov::KrylovParams::stop_with(args.max_iters, args.tol),
        damp: 0.0,
    };
    let start = std::time::Instant::now();
    let out = if complex {
        let params = Params::<Complex64> {
            method,
            backend,
            constraint: match args.constraint {
                ConstraintArg::Mean => Constraint::Mean,
                ConstraintArg::First => Constraint::First,
            },
            krylov,
            ..Default::default()
        };
        run_typed(
            model,
            y.into_complex(),
            a.into_complex(),
            b.map(|b| b.into_complex()),
            &params,
            NpyArray::Complex,
        )?
    } else {
        let real = |v: NpyArray| match v {
            NpyArray::Real(a) => a,
            NpyArray::Complex(_) => unreachable!("checked above"),
        };
        let params = Params::<f64> {
            method,
            backend,
            constraint: match args.constraint {
                ConstraintArg::Mean => Constraint::Mean,
                ConstraintArg::First => Constraint::First,
            },
            krylov,
            ..Default::default()
        };
        run_typed(
            model,
            real(y),
            real(a),
            b.map(real),
            &params,
            NpyArray::Real,
        )?
    };
    let elapsed = start.elapsed().as_secs_f64();
    write_npy(&args.output, &out.x, args.force)?;
    write_npy(&args.calibration, &out.d, args.force)?;
    let (p, m, n, k) = out.dims;
    eprintln!(
        "selfcal {}: {} unknowns from {} measurements, solver {}, sigma_min ≈ {:.3e}, {:.3} s",
        model.as_str(),
        out.unknowns,
        p * m,
        method.as_str(),
        out.sigma,
        elapsed
    );
    if let Some(j) = &args.json {
        let report = json!({
            "model": model.as_str(),
            "solver": method.as_str(),
            "backend": if out.dense { "dense" } else { "matrix-free" },
            "complex": complex,
            "blocks": p, "m": m, "n": n, "k": k,
            "unknowns": out.unknowns,
            "measurements": p * m,
            "sigma_min": out.sigma,
            "lsqr_iterations": out.iterations,
            "spectral_outer_iterations": out.outer,
            "seconds": elapsed,
            "output": args.output.display().to_string(),
            "calibration": args.calibration.display().to_string(),
            "scale": "fixed by the constraint; (d, x) is identifiable only up to (d/α, α x)",
        });
        crate::cli::write_json(j, &report, args.force)?;
    }
    Ok(())
}
