//! `sparseinv sparse-code`: sparse coding of signals in a dense dictionary,
//! `min_x ½‖A x − y‖² + R(x)` by FISTA (any penalty) or by the working-set Lasso solver
//! (l1), for real or complex data.

use anyhow::{bail, Context};
use clap::ValueEnum;
use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Ix2};
use num_complex::Complex64;
use serde_json::json;
use sparseinv::io::npy::{read_npy, write_npy, NpyArray};
use sparseinv::solvers::iter::{Control, IterInfo, Report};
use sparseinv::solvers::op::Matrix;
use sparseinv::solvers::prox::{Cel0, Lq, Prox, L0, L1};
use sparseinv::solvers::proximal::{lasso_with, solve, LassoParams, Params, Variant};
use sparseinv::solvers::Scalar;
use std::path::PathBuf;

/// The penalty `R`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Penalty {
    /// `λ‖x‖₁` (soft thresholding): the Lasso.
    L1,
    /// `λ‖x‖₀` (hard thresholding).
    L0,
    /// `λ Σ|xᵢ|^{1/2}`.
    Lhalf,
    /// `λ Σ|xᵢ|^{2/3}`.
    Ltwothirds,
    /// CEL0, the continuous exact l0 relaxation weighted by the dictionary's column norms.
    Cel0,
}

/// The iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    /// `working-set` for the plain l1 penalty with λ > 0 (no `--nonneg`), FISTA otherwise.
    Auto,
    /// The working-set Lasso solver (l1 only; `--tol` is then the relative duality gap).
    WorkingSet,
    /// ISTA (forward–backward).
    Ista,
    /// FISTA with gradient-scheme adaptive restart.
    Fista,
    /// Monotone FISTA.
    Mfista,
}

/// Arguments of `sparseinv sparse-code`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dictionary A (m × n) as .npy (float64, float32 or complex128).
    #[arg(long)]
    pub dict: PathBuf,
    /// The signal y (length m), or a matrix (m × k) whose k columns are coded independently.
    #[arg(long)]
    pub y: PathBuf,
    /// The penalty R.
    #[arg(long, value_enum, default_value = "l1")]
    pub penalty: Penalty,
    /// Its weight λ ≥ 0.
    #[arg(long = "lambda")]
    pub lambda: f64,
    /// Constrain the code to be non-negative (real data only).
    #[arg(long)]
    pub nonneg: bool,
    /// The iteration. `auto` picks the working-set solver for the Lasso (l1, λ > 0, no
    /// `--nonneg`; it certifies its accuracy by the duality gap) and FISTA otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    pub algorithm: Algorithm,
    /// Maximum number of iterations per column.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Stop when the relative change of the code falls below this (ISTA/FISTA), or when the
    /// relative duality gap `(P(x) − D(θ))/P(x)` does (working set).
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Output code x (.npy): length n, or n × k for a matrix y.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Write a JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// A penalty restricted to the non-negative orthant: `R(x) + ι_{x ≥ 0}(x)`.
///
/// For a separable penalty `Σ φ(|xᵢ|)` with `φ` non-decreasing and `prox(0) = 0` (l1, l0,
/// l_q, CEL0), `prox_{τ(R + ι≥0)}(v) = prox_{τR}(max(v, 0))`: for `vᵢ ≤ 0` both `(x − vᵢ)²`
/// and `φ` increase on `x ≥ 0`, so the minimiser is 0; for `vᵢ > 0` the unconstrained
/// minimiser already has the sign of `vᵢ`.
struct NonNeg<P>(P);

impl<P: Prox<f64>> Prox<f64> for NonNeg<P> {
    fn value(&self, x: ArrayViewD<f64>) -> f64 {
        if x.iter().any(|v| *v < 0.0) {
            f64::INFINITY
        } else {
            self.0.value(x)
        }
    }
    fn prox_into(&self, v: ArrayViewD<f64>, tau: f64, out: ArrayViewMutD<f64>) {
        let vp = v.mapv(|a| a.max(0.0));
        self.0.prox_into(vp.view(), tau, out);
    }
    fn supports_complex(&self) -> bool {
        false
    }
    fn check_shape(&self, shape: &[usize]) -> sparseinv::solvers::Result<()> {
        self.0.check_shape(shape)
    }
}

fn penalty<T: Scalar<Real = f64>>(args: &Args, a: &Matrix<T>) -> anyhow::Result<Box<dyn Prox<T>>> {
    let lam = args.lambda;
    let p: Box<dyn Prox<T>> = match args.penalty {
        Penalty::L1 => Box::new(L1::new(lam)?),
        Penalty::L0 => Box::new(L0::new(lam)?),
        Penalty::Lhalf => Box::new(Lq::half(lam)?),
        Penalty::Ltwothirds => Box::new(Lq::two_thirds(lam)?),
        Penalty::Cel0 => Box::new(Cel0::new(lam, a.column_norms().into_dyn())?),
    };
    Ok(p)
}

/// The checks shared by both scalar types; returns (m, n, k, y is a matrix).
fn check_inputs(args: &Args, a: &[usize], y: &[usize]) -> anyhow::Result<(usize, usize, usize)> {
    if a.len() != 2 {
        bail!("--dict must be a 2-D array (m × n), got shape {a:?}");
    }
    let (m, n) = (a[0], a[1]);
    if m == 0 || n == 0 {
        bail!("--dict is empty (shape {a:?})");
    }
    let k = match y.len() {
        1 => 1,
        2 => y[1],
        _ => bail!("--y must be a vector (m) or a matrix (m × k), got shape {y:?}"),
    };
    if y[0] != m {
        bail!(
            "shape mismatch: the dictionary has {m} rows but y has {} (shape {y:?})",
            y[0]
        );
    }
    if k == 0 {
        bail!("--y has no columns (shape {y:?})");
    }
    if !args.lambda.is_finite() || args.lambda < 0.0 {
        bail!(
            "--lambda must be finite and non-negative, got {}",
            args.lambda
        );
    }
    if args.max_iter == 0 {
        bail!("--max-iter must be at least 1");
    }
    if !args.tol.is_finite() || args.tol < 0.0 {
        bail!("--tol must be finite and non-negative, got {}", args.tol);
    }
    Ok((m, n, k))
}

/// The algorithm `auto` stands for, after checking that the choice fits the penalty.
fn resolve(args: &Args) -> anyhow::Result<Algorithm> {
    let lasso_ok = args.penalty == Penalty::L1 && !args.nonneg && args.lambda > 0.0;
    match args.algorithm {
        Algorithm::Auto if lasso_ok => Ok(Algorithm::WorkingSet),
        Algorithm::Auto => Ok(Algorithm::Fista),
        Algorithm::WorkingSet if !lasso_ok => bail!(
            "--algorithm working-set solves the Lasso only: it needs --penalty l1, --lambda > 0 \
             and no --nonneg (use fista for the other cases)"
        ),
        a => Ok(a),
    }
}

/// Code every column with the working-set Lasso solver.
fn code_working_set<T: Scalar<Real = f64>>(
    args: &Args,
    op: &Matrix<T>,
    y2: &Array2<T>,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<(Array2<T>, Vec<Report<f64>>)> {
    let mut p = LassoParams::with_lambda(args.lambda);
    p.stop.max_iters = args.max_iter;
    p.stop.residual_tol = Some(args.tol);
    let mut x2 = Array2::<T>::zeros((op.ncols(), y2.ncols()));
    let mut reports = Vec::with_capacity(y2.ncols());
    for (c, yc) in y2.axis_iter(Axis(1)).enumerate() {
        let base = (c * args.max_iter) as u64;
        let mut obs = |i: &IterInfo<f64>| {
            pb.set_position(base + i.iter as u64);
            Control::Continue
        };
        let (xc, (rep, _)) =
            lasso_with(op, yc, &p, None, &mut obs).with_context(|| format!("column {c}"))?;
        x2.column_mut(c).assign(&xc);
        reports.push(rep);
    }
    Ok((x2, reports))
}

struct Outcome<T> {
    x: ArrayD<T>,
    reports: Vec<Report<f64>>,
    seconds: f64,
}

fn code_all<T: Scalar<Real = f64>>(
    args: &Args,
    a: ArrayD<T>,
    y: ArrayD<T>,
    prox: impl Fn(&Matrix<T>) -> anyhow::Result<Box<dyn Prox<T>>>,
) -> anyhow::Result<Outcome<T>> {
    let (_, _, k) = check_inputs(args, a.shape(), y.shape())?;
    if let Some(i) = a.iter().position(|v| !v.is_finite_scalar()) {
        bail!("--dict contains a non-finite value (NaN or Inf) at flat index {i}");
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite_scalar()) {
        bail!("--y contains a non-finite value (NaN or Inf) at flat index {i}");
    }
    let is_matrix = y.ndim() == 2;
    let op = Matrix::from_dyn(a)?;
    let r = prox(&op)?;
    let algorithm = resolve(args)?;
    let y2: Array2<T> = if is_matrix {
        y.into_dimensionality::<Ix2>()?
    } else {
        y.insert_axis(Axis(1)).into_dimensionality::<Ix2>()?
    };
    let pb = crate::cli::progress_bar((args.max_iter * k) as u64, "sparse-code");
    let start = std::time::Instant::now();
    let (x2, reports) = if algorithm == Algorithm::WorkingSet {
        code_working_set(args, &op, &y2, &pb)?
    } else {
        code_fista(args, algorithm, &op, &y2, &r, &pb)?
    };
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let x = if is_matrix {
        x2.into_dyn()
    } else {
        x2.index_axis_move(Axis(1), 0).into_dyn()
    };
    Ok(Outcome {
        x,
        reports,
        seconds,
    })
}

/// Code every column with ISTA / FISTA / MFISTA.
fn code_fista<T: Scalar<Real = f64>>(
    args: &Args,
    algorithm: Algorithm,
    op: &Matrix<T>,
    y2: &Array2<T>,
    r: &dyn Prox<T>,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<(Array2<T>, Vec<Report<f64>>)> {
    let k = y2.ncols();
    let n = op.ncols();
    let mut params = Params::<f64> {
        variant: match algorithm {
            Algorithm::Ista => Variant::Ista,
            Algorithm::Mfista => Variant::MonotoneFista,
            _ => Variant::Fista,
        },
        ..Default::default()
    };
    params.stop.max_iters = args.max_iter;
    params.stop.rel_tol = args.tol;
    // the Lipschitz constant is the same for every column: estimate it once
    let lip = sparseinv::solvers::op::op_norm(op, params.norm_estimate);
    params.step = Some(1.0 / (params.lipschitz_safety * lip * lip).max(f64::MIN_POSITIVE));
    let mut x2 = Array2::<T>::zeros((n, k));
    let mut reports = Vec::with_capacity(k);
    for (c, yc) in y2.axis_iter(Axis(1)).enumerate() {
        let yc = yc.to_owned().into_dyn();
        let base = (c * args.max_iter) as u64;
        let mut obs = |i: &IterInfo<f64>| {
            pb.set_position(base + i.iter as u64);
            Control::Continue
        };
        let (xc, rep) = solve(op, yc.view(), r, &params, None, &mut obs)
            .with_context(|| format!("column {c}"))?;
        x2.column_mut(c)
            .assign(&xc.into_dimensionality::<ndarray::Ix1>()?);
        reports.push(rep);
    }
    Ok((x2, reports))
}

fn report_json(
    args: &Args,
    o_reports: &[Report<f64>],
    nnz: Vec<usize>,
    seconds: f64,
    complex: bool,
) -> serde_json::Value {
    let cols: Vec<_> = o_reports
        .iter()
        .zip(nnz)
        .map(|(r, nz)| {
            json!({
                "iterations": r.iterations,
                "objective": r.final_objective(),
                "stop_reason": r.stop_reason.as_str(),
                "seconds": r.elapsed.as_secs_f64(),
                "nonzeros": nz,
            })
        })
        .collect();
    let mut v = json!({
        "command": "sparse-code",
        "penalty": format!("{:?}", args.penalty).to_lowercase(),
        "lambda": args.lambda,
        "nonneg": args.nonneg,
        "algorithm": match resolve(args) {
            Ok(Algorithm::WorkingSet) => "working-set".to_string(),
            Ok(a) => format!("{a:?}").to_lowercase(),
            Err(_) => "invalid".to_string(),
        },
        "complex": complex,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "seconds": seconds,
        "columns": cols.len(),
    });
    if cols.len() == 1 {
        for (key, val) in cols[0].as_object().expect("object") {
            if key != "seconds" {
                v[key] = val.clone();
            }
        }
    }
    v["per_column"] = serde_json::Value::Array(cols);
    v
}

fn nonzeros<T: Scalar>(x: &ArrayD<T>) -> Vec<usize> {
    if x.ndim() == 1 {
        vec![x.iter().filter(|v| **v != T::zero()).count()]
    } else {
        x.axis_iter(Axis(1))
            .map(|c| c.iter().filter(|v| **v != T::zero()).count())
            .collect()
    }
}

/// Run `sparseinv sparse-code`.
pub fn run(args: Args) -> anyhow::Result<()> {
    resolve(&args)?;
    // refuse existing outputs before any work
    for p in std::iter::once(&args.output).chain(args.json.as_ref()) {
        if p.exists() && !args.force {
            bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    let a = read_npy(&args.dict).context("reading --dict")?;
    let y = read_npy(&args.y).context("reading --y")?;
    let complex = a.is_complex() || y.is_complex();
    if complex && args.nonneg {
        bail!("--nonneg needs real data, but the dictionary or y is complex");
    }
    let (x, reports, seconds, nnz) = if complex {
        let o = code_all(&args, a.into_complex(), y.into_complex(), |op| {
            penalty::<Complex64>(&args, op)
        })?;
        let nnz = nonzeros(&o.x);
        (NpyArray::Complex(o.x), o.reports, o.seconds, nnz)
    } else {
        let (NpyArray::Real(a), NpyArray::Real(y)) = (a, y) else {
            unreachable!("both real")
        };
        let o = code_all(&args, a, y, |op| {
            let p = penalty::<f64>(&args, op)?;
            Ok(if args.nonneg {
                Box::new(NonNeg(p)) as Box<dyn Prox<f64>>
            } else {
                p
            })
        })?;
        let nnz = nonzeros(&o.x);
        (NpyArray::Real(o.x), o.reports, o.seconds, nnz)
    };
    if let Some(r) = reports
        .iter()
        .find(|r| r.stop_reason.as_str() == "diverged")
    {
        bail!(
            "the iteration diverged after {} iterations (non-finite or exploding objective)",
            r.iterations
        );
    }
    write_npy(&args.output, &x, args.force)?;
    if let Some(j) = &args.json {
        let v = report_json(&args, &reports, nnz, seconds, complex);
        crate::cli::write_json(j, &v, args.force)?;
    }
    Ok(())
}
