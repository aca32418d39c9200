//! `sparseinv channel`: sparse channel estimation by (block / Kronecker) SBL or OMP.
//!
//! `sparseinv channel --dict A1.npy [--dict A2.npy ...] --y y.npy -o x.npy` estimates a sparse
//! `x` from `y = Φ x + n`. One `--dict` is a plain dictionary `Φ` (`M × N`); several are the
//! factors of `Φ = A₁ ⊗ A₂ ⊗ …` in the order given (never formed), with `x` flattened in
//! row-major order, first factor slowest (as `numpy.kron`). With several, `--method sbl` is
//! classic SBL (one hyperparameter per atom) through the factors
//! ([`sparseinv::solvers::sbl::sbl_kronecker`]), `ksbl-*` the Kronecker-structured SBL. Inputs are `float64` or
//! `complex128` `.npy`; if any is complex the problem is solved in complex arithmetic.

use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::{Array1, Array2, ArrayD, Axis, Ix2};
use num_complex::Complex64;
use sparseinv::io::npy::{read_npy, write_npy, NpyArray};
use sparseinv::solvers::iter::{Control, IterInfo, Report, StopCriteria};
use sparseinv::solvers::sbl::{
    self, check_full_rank, Blocks, DenseScalar, KsblMethod, KsblParams, NoiseModel, OmpParams,
    SblParams,
};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `sparseinv channel`.
#[derive(Args, Debug)]
pub struct ChannelArgs {
    /// Dictionary `.npy` (M × N). Repeat for a Kronecker product A1 ⊗ A2 ⊗ … (order given).
    #[arg(long = "dict", required = true)]
    pub dicts: Vec<PathBuf>,
    /// Measurements `.npy`: shape (M,) or, for sbl (one dictionary or several), and bsbl/omp
    /// with one dictionary, (M, L) for L snapshots sharing one support.
    #[arg(long)]
    pub y: PathBuf,
    /// Method: sbl (classic SBL; with several dictionaries it runs through the factors without
    /// forming their product), bsbl (block SBL), ksbl-am, ksbl-svd (Kronecker SBL), omp (OMP,
    /// or Kronecker OMP with several dictionaries). Default: sbl for one dictionary, ksbl-svd
    /// for several.
    #[arg(long)]
    pub method: Option<String>,
    /// Block sizes, comma separated ("4" = uniform blocks of 4; "2,3,3" = consecutive sizes).
    /// For bsbl: one list over the atoms. For ksbl-*: one --blocks per dictionary.
    #[arg(long)]
    pub blocks: Vec<String>,
    /// Known noise variance σ² (fixed). Default: learned (SBL); OMP then stops at a residual of
    /// 1e-12·‖y‖² or --max-atoms.
    #[arg(long)]
    pub noise_var: Option<f64>,
    /// Maximum number of iterations (default 500 for sbl/bsbl, 1000 for ksbl-*).
    #[arg(long)]
    pub max_iters: Option<usize>,
    /// Relative change of the hyperparameters at which to stop.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Relative pruning threshold of the hyperparameters (SBL and block SBL default 1e-4:
    /// atoms expected below 1 % of the strongest amplitude are dropped; KSBL default 3e-3 per
    /// mode, see `sparseinv_solvers::sbl::KsblParams::prune`).
    #[arg(long)]
    pub prune: Option<f64>,
    /// OMP: maximum number of atoms (per mode for Kronecker OMP).
    #[arg(long)]
    pub max_atoms: Option<usize>,
    /// Require real-valued inputs (a complex input is then an error).
    #[arg(long)]
    pub real: bool,
    /// Output: the estimate `x` (.npy), shape (N,) or (N, L).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Optional output: posterior variance of every coefficient (.npy, SBL methods only).
    #[arg(long)]
    pub var: Option<PathBuf>,
    /// Optional JSON report (iterations, noise estimate, support size, time).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

struct Outcome<T> {
    x: ArrayD<T>,
    var: Option<Array1<f64>>,
    iterations: usize,
    stop: String,
    noise_var: Option<f64>,
    support_size: usize,
    objective: Option<f64>,
}

fn parse_blocks(spec: &str, n: usize) -> Result<Blocks> {
    let sizes: Vec<usize> = spec
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| {
            format!("--blocks {spec:?}: expected comma-separated positive integers")
        })?;
    let b = if sizes.len() == 1 {
        Blocks::uniform(n, sizes[0])
    } else {
        Blocks::from_sizes(&sizes)
    }
    .map_err(|e| anyhow::anyhow!("--blocks {spec:?}: {e}"))?;
    if b.len() != n {
        bail!(
            "--blocks {spec:?} covers {} atoms but the dictionary has {n}",
            b.len()
        );
    }
    Ok(b)
}

fn solve<T: DenseScalar + sparseinv::solvers::Scalar<Real = f64>>(
    args: &ChannelArgs,
    method: &str,
    dicts: Vec<Array2<T>>,
    y: Array2<T>,
) -> Result<Outcome<T>> {
    let kron = dicts.len() > 1;
    let max_iters = args.max_iters.unwrap_or(if kron && method != "sbl" {
        KsblParams::<f64>::default().stop.max_iters
    } else {
        500
    });
    let pb = crate::cli::progress_bar(max_iters as u64, &format!("channel {method}"));
    let mut obs = |i: &IterInfo<f64>| {
        pb.set_position(i.iter as u64);
        Control::Continue
    };
    let noise = match args.noise_var {
        Some(v) => NoiseModel::Fixed(v),
        None => NoiseModel::Learn { init: None },
    };
    let finish = |r: &Report<f64>| (r.iterations, r.stop_reason.to_string(), r.final_objective());
    let out = match method {
        "sbl" | "bsbl" => {
            let mut p = SblParams {
                stop: StopCriteria {
                    max_iters,
                    rel_tol: args.tol,
                    ..StopCriteria::default()
                },
                noise,
                ..Default::default()
            };
            if let Some(pr) = args.prune {
                p.prune = pr;
            }
            let phi = &dicts[0];
            let r = if method == "bsbl" {
                if args.blocks.len() != 1 {
                    bail!("bsbl needs exactly one --blocks");
                }
                let b = parse_blocks(&args.blocks[0], phi.ncols())?;
                sbl::block_sbl(phi.view(), y.view(), &b, &p, &mut obs)?
            } else if kron {
                sbl::sbl_kronecker(&dicts, y.view(), &p, &mut obs)?
            } else {
                sbl::sbl(phi.view(), y.view(), &p, &mut obs)?
            };
            let (r, report) = r;
            let (iterations, stop, objective) = finish(&report);
            let x = if y.ncols() == 1 {
                r.mean.column(0).to_owned().into_dyn()
            } else {
                r.mean.into_dyn()
            };
            Outcome {
                x,
                var: Some(r.variance),
                iterations,
                stop,
                noise_var: Some(r.noise_var),
                support_size: r.support.len(),
                objective,
            }
        }
        "ksbl-am" | "ksbl-svd" => {
            let blocks = if args.blocks.is_empty() {
                None
            } else {
                if args.blocks.len() != dicts.len() {
                    bail!(
                        "ksbl needs one --blocks per dictionary ({} given for {})",
                        args.blocks.len(),
                        dicts.len()
                    );
                }
                Some(
                    args.blocks
                        .iter()
                        .zip(dicts.iter())
                        .map(|(s, d)| parse_blocks(s, d.ncols()))
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            let mut p = KsblParams {
                stop: StopCriteria {
                    max_iters,
                    rel_tol: args.tol,
                    ..StopCriteria::default()
                },
                noise,
                method: if method == "ksbl-am" {
                    KsblMethod::Am
                } else {
                    KsblMethod::Svd
                },
                blocks,
                ..Default::default()
            };
            if let Some(pr) = args.prune {
                p.prune = pr;
            }
            let (r, report) = sbl::ksbl(&dicts, y.column(0), &p, &mut obs)?;
            let (iterations, stop, objective) = finish(&report);
            let support_size = r.support().len();
            Outcome {
                x: r.mean.into_dyn(),
                var: Some(r.variance),
                iterations,
                stop,
                noise_var: Some(r.noise_var),
                support_size,
                objective,
            }
        }
        "omp" => {
            let m = y.nrows() as f64;
            // a known noise variance stops at ‖r‖² ≤ Mσ²; a budget stops there; otherwise
            // the sparsity is chosen by BIC on the greedy path (solvers::sbl::omp)
            let p = OmpParams {
                residual_tol: args.noise_var.map_or(0.0, |v| m * v),
                max_atoms: args.max_atoms,
                ..Default::default()
            };
            if kron {
                let r = sbl::kron_omp(&dicts, y.column(0), &p)?;
                let support_size = r.mode_support.iter().map(|s| s.len()).product();
                Outcome {
                    x: r.x.into_dyn(),
                    var: None,
                    iterations: r.iterations,
                    stop: if r.bic_path.is_some() {
                        "bic"
                    } else {
                        "residual_or_budget"
                    }
                    .into(),
                    noise_var: None,
                    support_size,
                    objective: None,
                }
            } else {
                if y.ncols() != 1 {
                    bail!("omp takes a single measurement vector");
                }
                let r = sbl::omp(dicts[0].view(), y.column(0), &p)?;
                Outcome {
                    iterations: r.support.len(),
                    support_size: r.support.len(),
                    stop: if r.bic_path.is_some() {
                        "bic"
                    } else {
                        "residual_or_budget"
                    }
                    .into(),
                    x: r.x.into_dyn(),
                    var: None,
                    noise_var: None,
                    objective: None,
                }
            }
        }
        other => bail!("unknown --method {other:?} (expected sbl, bsbl, ksbl-am, ksbl-svd or omp)"),
    };
    pb.finish_and_clear();
    Ok(out)
}

/// Run `sparseinv channel`.
pub fn run(args: ChannelArgs) -> Result<()> {
    let start = Instant::now();
    let method = args.method.clone().unwrap_or_else(|| {
        if args.dicts.len() > 1 {
            "ksbl-svd".into()
        } else {
            "sbl".into()
        }
    });
    let kron = args.dicts.len() > 1;
    match (method.as_str(), kron) {
        ("bsbl", true) => bail!("--method bsbl takes one --dict; use sbl, ksbl-am, ksbl-svd or omp for a Kronecker product"),
        ("ksbl-am" | "ksbl-svd", false) => bail!("--method {method} needs at least two --dict (the Kronecker factors)"),
        _ => {}
    }
    if !kron && !args.blocks.is_empty() && method != "bsbl" {
        bail!("--blocks applies to bsbl and ksbl-* only");
    }
    for p in std::iter::once(&args.output)
        .chain(args.var.iter())
        .chain(args.json.iter())
    {
        if p.exists() && !args.force {
            bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    let dicts: Vec<NpyArray> = args
        .dicts
        .iter()
        .map(|p| read_npy(p).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;
    let y = read_npy(&args.y)?;
    let any_complex = y.is_complex() || dicts.iter().any(|d| d.is_complex());
    if args.real && any_complex {
        let which: Vec<String> = args
            .dicts
            .iter()
            .zip(dicts.iter())
            .filter(|(_, d)| d.is_complex())
            .map(|(p, _)| p.display().to_string())
            .chain(y.is_complex().then(|| args.y.display().to_string()))
            .collect();
        bail!(
            "--real was given but {} complex",
            which.join(", ") + if which.len() > 1 { " are" } else { " is" }
        );
    }
    for (p, d) in args.dicts.iter().zip(dicts.iter()) {
        if d.shape().len() != 2 {
            bail!(
                "{}: a dictionary must be 2-D, got shape {:?}",
                p.display(),
                d.shape()
            );
        }
    }
    let m: usize = dicts.iter().map(|d| d.shape()[0]).product();
    let ysh = y.shape().to_vec();
    let snapshots = match ysh.as_slice() {
        [len] if *len == m => 1,
        [len, l] if *len == m && (!kron || method == "sbl") && method != "omp" => *l,
        _ => bail!(
            "{}: shape {:?} does not match the dictionaries (expected ({m},){})",
            args.y.display(),
            ysh,
            if kron && method != "sbl" {
                ""
            } else {
                " or (M, L)"
            }
        ),
    };
    let report_base = |it: usize,
                       stop: &str,
                       nv: Option<f64>,
                       supp: usize,
                       obj: Option<f64>,
                       n: usize| {
        serde_json::json!({
            "method": method,
            "dictionaries": args.dicts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "complex": any_complex,
            "measurements": m,
            "unknowns": n,
            "snapshots": snapshots,
            "iterations": it,
            "stop_reason": stop,
            "noise_variance": nv,
            "support_size": supp,
            "objective": obj,
            "time_s": start.elapsed().as_secs_f64(),
        })
    };
    macro_rules! go {
        ($t:ty, $conv:expr, $wrap:expr) => {{
            let conv = $conv;
            let mut ds: Vec<Array2<$t>> = Vec::new();
            for (p, d) in args.dicts.iter().zip(dicts.into_iter()) {
                let a = conv(d).into_dimensionality::<Ix2>().expect("checked 2-D");
                check_full_rank(&p.display().to_string(), a.view())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ds.push(a);
            }
            let ya = conv(y);
            let y2 = if ya.ndim() == 1 {
                ya.into_dimensionality::<ndarray::Ix1>()
                    .expect("1-D")
                    .insert_axis(Axis(1))
            } else {
                ya.into_dimensionality::<Ix2>().expect("2-D")
            };
            let n: usize = ds.iter().map(|d| d.ncols()).product();
            let o = solve::<$t>(&args, &method, ds, y2)?;
            let rep = report_base(
                o.iterations,
                &o.stop,
                o.noise_var,
                o.support_size,
                o.objective,
                n,
            );
            write_npy(&args.output, &$wrap(o.x), args.force)?;
            if let (Some(vp), Some(v)) = (&args.var, &o.var) {
                write_npy(vp, &NpyArray::Real(v.clone().into_dyn()), args.force)?;
            } else if args.var.is_some() {
                eprintln!("note: --var ignored: {method} gives no posterior variance");
            }
            if let Some(j) = &args.json {
                crate::cli::write_json(j, &rep, args.force)?;
            }
            eprintln!(
                "channel {method}: {} iterations, support {}, noise variance {}",
                o.iterations,
                o.support_size,
                o.noise_var.map_or("-".into(), |v| format!("{v:.4e}"))
            );
        }};
    }
    if any_complex {
        go!(Complex64, |a: NpyArray| a.into_complex(), NpyArray::Complex);
    } else {
        go!(
            f64,
            |a: NpyArray| match a {
                NpyArray::Real(r) => r,
                NpyArray::Complex(_) => unreachable!("checked real"),
            },
            NpyArray::Real
        );
    }
    Ok(())
}
