//! Our side of the self-calibration peer benchmark (`benches/peers/selfcal.py`).
//!
//! `cargo bench -p sparseinv-solvers --bench peer_selfcal -- DIR` reads `DIR/{y,A,s,x}.npy`
//! (model `repeated`: `y` `[p, m]`, `A` `[p, m, n]`, truth `s = 1/d` `[m]` and `x` `[n]`),
//! solves with the matrix-free LSQ (LSQR on `[A₀; wᴴ]`) and the matrix-free spectral method
//! (inverse iteration by constrained LSQR), best of `REPEATS` runs each, and prints one JSON
//! line with the times, iteration counts and joint errors up to scale.

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::read_npy;
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::krylov::KrylovParams;
use sparseinv_solvers::selfcal::{solve, Backend, Errors, Method, Model, Params, Problem};
use std::path::PathBuf;
use std::time::Instant;

const REPEATS: usize = 3;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from);
    let Some(dir) = dir else {
        eprintln!("usage: cargo bench --bench peer_selfcal -- DIR (run benches/peers/selfcal.py)");
        return;
    };
    let tol: f64 = std::env::var("SELFCAL_TOL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1e-10);
    let y: Array2<f64> = read_npy(dir.join("y.npy")).expect("y.npy");
    let a: Array3<f64> = read_npy(dir.join("A.npy")).expect("A.npy");
    let s: Array1<f64> = read_npy(dir.join("s.npy")).expect("s.npy");
    let x: Array1<f64> = read_npy(dir.join("x.npy")).expect("x.npy");
    let n = x.len();
    let xt = x.into_shape_with_order((1, n)).unwrap();
    let problem = Problem::new(Model::Repeated, y, a, None).expect("valid problem");
    let mut out = serde_like::Obj::default();
    for method in [Method::Lsq, Method::Spectral] {
        let params = Params {
            method,
            backend: Backend::MatrixFree,
            krylov: KrylovParams {
                stop: KrylovParams::stop_with(20_000, tol),
                damp: 0.0,
            },
            stop: StopCriteria {
                residual_tol: Some(1e-10),
                ..Params::<f64>::default_stop()
            },
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let (sol, _) = solve(&problem, &params, &mut NoObserver).expect("solve");
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(sol);
        }
        let sol = last.unwrap();
        let e = Errors::measure(&sol, &s, &xt);
        let k = method.as_str();
        out.num(&format!("{k}_seconds"), best);
        out.num(&format!("{k}_iterations"), sol.iterations as f64);
        out.num(&format!("{k}_outer"), sol.outer_iterations as f64);
        out.num(&format!("{k}_error"), e.joint);
    }
    println!("{}", out.finish());
}

/// A minimal JSON object printer (the solvers crate has no serde dependency).
mod serde_like {
    #[derive(Default)]
    pub struct Obj(Vec<String>);
    impl Obj {
        pub fn num(&mut self, k: &str, v: f64) {
            self.0.push(format!("\"{k}\": {v:e}"));
        }
        pub fn finish(self) -> String {
            format!("{{{}}}", self.0.join(", "))
        }
    }
}
