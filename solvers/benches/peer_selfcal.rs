//! Our side of the self-calibration peer benchmark (`benches/peers/selfcal.py`).
//!
//! `cargo bench -p sparseinv-solvers --bench peer_selfcal -- DIR` reads `DIR/{y,A,s,x}.npy`
//! (model `repeated`: `y` `[p, m]`, `A` `[p, m, n]`, truth `s = 1/d` `[m]` and `x` `[n]`),
//! solves with the matrix-free LSQ (LSQR on `[A₀; wᴴ]`) and the matrix-free spectral method
//! (inverse iteration by constrained LSQR), best of `REPEATS` runs each, and prints one JSON
//! line with the times (best and spread), iteration counts and joint errors up to scale, and
//! the time of the two products of one LSQR iteration, as two calls and as the one fused call
//! (`two_products_*`, `fused_products_*`).

use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};
use ndarray_npy::read_npy;
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::krylov::KrylovParams;
use sparseinv_solvers::op::LinearOperator;
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
        let mut worst = 0.0f64;
        let mut last = None;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let (sol, _) = solve(&problem, &params, &mut NoObserver).expect("solve");
            let el = t.elapsed().as_secs_f64();
            best = best.min(el);
            worst = worst.max(el);
            last = Some(sol);
        }
        let sol = last.unwrap();
        let e = Errors::measure(&sol, &s, &xt);
        let k = method.as_str();
        out.num(&format!("{k}_seconds"), best);
        out.num(&format!("{k}_spread"), worst - best);
        out.num(&format!("{k}_iterations"), sol.iterations as f64);
        out.num(&format!("{k}_outer"), sol.outer_iterations as f64);
        out.num(&format!("{k}_error"), e.joint);
    }
    products(&problem, &mut out);
    println!("{}", out.finish());
}

/// Where the time of one LSQR iteration goes: the two products with `A₀` as two calls
/// (`apply_into`, `adjoint_into`: the stacked `A` read twice) and as the one fused call LSQR
/// makes (`apply_sub_adjoint_into`: read once), best of `REPEATS` runs of `ITERS` calls each,
/// with the bytes of `A` read per second.
fn products(problem: &Problem<f64>, out: &mut serde_like::Obj) {
    const ITERS: usize = 100;
    let op = problem.operator();
    let (p, m, n, _) = problem.dims();
    let a_bytes = (p * m * n * std::mem::size_of::<f64>()) as f64;
    let v = ArrayD::from_shape_fn(IxDyn(op.domain_shape()), |i| (i[0] as f64 * 0.37).sin());
    let mut u = ArrayD::from_shape_fn(IxDyn(op.range_shape()), |i| (i[0] as f64 * 0.11).cos());
    let mut g = ArrayD::zeros(IxDyn(op.domain_shape()));
    let mut scratch = ArrayD::zeros(IxDyn(op.range_shape()));
    let time = |f: &mut dyn FnMut()| {
        let mut best = f64::INFINITY;
        for _ in 0..REPEATS {
            let t = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            best = best.min(t.elapsed().as_secs_f64() / ITERS as f64);
        }
        best
    };
    let two = time(&mut || {
        op.apply_into(v.view(), scratch.view_mut());
        op.adjoint_into(scratch.view(), g.view_mut());
    });
    let fused = time(&mut || {
        op.apply_sub_adjoint_into(
            v.view(),
            1e-3,
            u.view_mut(),
            g.view_mut(),
            scratch.view_mut(),
        );
    });
    out.num("two_products_seconds", two);
    out.num("two_products_gbps", 2.0 * a_bytes / two / 1e9);
    out.num("fused_products_seconds", fused);
    out.num("fused_products_gbps", a_bytes / fused / 1e9);
    out.num("a_bytes", a_bytes);
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
