//! Self-calibration by linear least squares (Ling & Strohmer 2018): empirical phase
//! transitions and error against SNR, for the three models and both solvers, compared with a
//! naive alternating-least-squares (ALS) baseline.
//!
//! ```text
//! cargo run --release --example self_calibration -- [OUT_DIR] [TRIALS]
//! ```
//!
//! **Phase transitions.** For each model, `m = 32` measurements per block, signal length
//! `n ∈ {4, 8, …, 32}` (rows) and `p ∈ {1, …, 8}` blocks (columns); complex Gaussian
//! instances (see `selfcal::synthetic`). A trial succeeds when the joint recovery error up to
//! scale, `min_α ‖α ẑ − z‖/‖z‖` with `z = (s, x)`, is below 1e-3. The tables print the success
//! rate in percent and mark with `|` the first column where the number of measurements `p·m`
//! reaches the degrees of freedom `N − 1` (`N = m + n` for `repeated`, `m + p n` otherwise).
//! Each table is also drawn as a PNG heat map (`OUT_DIR/phase_<model>_<solver>.png`; black = 0 %,
//! white = 100 %, rows = n from top (4) to bottom (32), columns = p from left (1) to right (8);
//! a red tick marks cells with `p·m ≥ N − 1`).
//!
//! **Noise.** Fixed sizes per model, SNR from 0 to 60 dB: mean joint error over the trials.

use ndarray::Array2;
use plotters::prelude::*;
use sparseinv::solvers::iter::{NoObserver, StopCriteria};
use sparseinv::solvers::selfcal::{
    alternating_least_squares, solve, synthetic, AlsParams, Errors, InstanceSpec, Method, Model,
    Params,
};
use sparseinv::solvers::C64;
use std::path::{Path, PathBuf};

const M: usize = 32;
const NS: [usize; 8] = [4, 8, 12, 16, 20, 24, 28, 32];
const PS: [usize; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

#[derive(Clone, Copy, PartialEq)]
enum Solver {
    Lsq,
    Spectral,
    Als,
}

impl Solver {
    fn name(self) -> &'static str {
        match self {
            Solver::Lsq => "lsq",
            Solver::Spectral => "spectral",
            Solver::Als => "als",
        }
    }
}

fn unknowns(model: Model, n: usize, p: usize) -> usize {
    match model {
        Model::Repeated => M + n,
        _ => M + p * n,
    }
}

fn joint_error(spec: &InstanceSpec, seed: u64, solver: Solver) -> f64 {
    let inst = match synthetic::<C64>(spec, seed) {
        Ok(i) => i,
        Err(_) => return f64::INFINITY, // too few measurements: counted as a failure
    };
    let sol = match solver {
        Solver::Lsq | Solver::Spectral => {
            let params = Params {
                method: if solver == Solver::Lsq {
                    Method::Lsq
                } else {
                    Method::Spectral
                },
                ..Default::default()
            };
            solve(&inst.problem, &params, &mut NoObserver)
        }
        Solver::Als => alternating_least_squares(
            &inst.problem,
            &AlsParams {
                stop: StopCriteria {
                    max_iters: 100,
                    rel_tol: 1e-10,
                    ..AlsParams::default_stop()
                },
            },
            &mut NoObserver,
        ),
    };
    match sol {
        Ok((s, _)) => Errors::measure(&s, &inst.s, &inst.x).joint,
        Err(_) => f64::INFINITY,
    }
}

fn heat_map(
    path: &Path,
    model: Model,
    rates: &Array2<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let cell = 40i32;
    let (rows, cols) = rates.dim();
    let root = BitMapBackend::new(
        path,
        ((cols as i32 * cell) as u32, (rows as i32 * cell) as u32),
    )
    .into_drawing_area();
    root.fill(&WHITE)?;
    for r in 0..rows {
        for c in 0..cols {
            let v = (rates[[r, c]] * 255.0).round() as u8;
            let (x0, y0) = (c as i32 * cell, r as i32 * cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell - 1, y0 + cell - 1)],
                RGBColor(v, v, v).filled(),
            ))?;
            if PS[c] * M + 1 >= unknowns(model, NS[r], PS[c]) {
                root.draw(&Rectangle::new(
                    [(x0 + 2, y0 + 2), (x0 + 8, y0 + 5)],
                    RED.filled(),
                ))?;
            }
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map_or("self_calibration_out", |s| s.as_str()));
    let trials: u64 = args.get(2).map_or(Ok(10), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;
    let models = [Model::Repeated, Model::Diverse, Model::Snapshots];
    let solvers = [Solver::Lsq, Solver::Spectral, Solver::Als];

    println!(
        "# Phase transitions: success rate (%) of exact recovery up to scale (joint error < 1e-3)"
    );
    println!(
        "# m = {M}, complex Gaussian instances, {trials} trials per cell; `|` marks p·m ≥ N − 1\n"
    );
    for model in models {
        for solver in solvers {
            let mut rates = Array2::<f64>::zeros((NS.len(), PS.len()));
            for (r, &n) in NS.iter().enumerate() {
                for (c, &p) in PS.iter().enumerate() {
                    let spec = InstanceSpec::new(model, M, n, p);
                    let ok = (0..trials)
                        .filter(|&t| joint_error(&spec, 1000 * t + 7, solver) < 1e-3)
                        .count();
                    rates[[r, c]] = ok as f64 / trials as f64;
                }
            }
            println!("model {} / {}:", model.as_str(), solver.name());
            print!("  n \\ p ");
            for p in PS {
                print!("{p:>6}");
            }
            println!();
            for (r, &n) in NS.iter().enumerate() {
                print!("  {n:>5} ");
                for (c, &p) in PS.iter().enumerate() {
                    let mark = if p * M + 1 >= unknowns(model, n, p)
                        && (c == 0 || (PS[c - 1] * M + 1) < unknowns(model, n, PS[c - 1]))
                    {
                        '|'
                    } else {
                        ' '
                    };
                    print!("{mark}{:>5.0}", 100.0 * rates[[r, c]]);
                }
                println!();
            }
            println!();
            let png = out.join(format!("phase_{}_{}.png", model.as_str(), solver.name()));
            heat_map(&png, model, &rates)?;
        }
    }

    println!(
        "# Noisy measurements: mean joint relative error up to scale vs SNR ({trials} trials)"
    );
    let sizes = [
        (Model::Repeated, 16usize, 4usize),
        (Model::Diverse, 8, 8),
        (Model::Snapshots, 8, 8),
    ];
    let snrs = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
    print!("{:<34}", "model (m, n, p) / solver");
    for s in snrs {
        print!("{:>10}", format!("{s} dB"));
    }
    println!();
    for (model, n, p) in sizes {
        for solver in solvers {
            print!(
                "{:<34}",
                format!("{} ({M}, {n}, {p}) / {}", model.as_str(), solver.name())
            );
            for snr in snrs {
                let mut spec = InstanceSpec::new(model, M, n, p);
                spec.snr_db = Some(snr);
                let e: f64 = (0..trials)
                    .map(|t| joint_error(&spec, 77 + t, solver).min(1.0))
                    .sum::<f64>()
                    / trials as f64;
                print!("{e:>10.2e}");
            }
            println!();
        }
    }
    println!("\nnoise level 10^(-SNR/20) for reference:");
    print!("{:<34}", "");
    for s in snrs {
        print!("{:>10.2e}", 10f64.powf(-s / 20.0));
    }
    println!("\nheat maps written to {}", out.display());
    Ok(())
}
