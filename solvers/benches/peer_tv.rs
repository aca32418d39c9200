//! Our side of the total-variation deconvolution peer comparison (`benches/peers/tv.py` drives
//! it).
//!
//! Reads `y.npy` (image, float64), `psf.npy` (odd kernel, float64) and `params.npy`
//! (`[λ, τ, σ, iterations]`) from the directory given as the first argument and solves
//!
//! ```text
//! min_x ½‖k ⊛ x − y‖² + λ Σ_p ‖(∇x)_p‖₂   s.t. x ≥ 0
//! ```
//!
//! (`Conv2d` same-mode, `FiniteDiff`, isotropic TV as `GroupL21` along the gradient axis) with
//! our PDHG in the Chambolle–Pock form that PyProximal's `PrimalDual` runs: `f = 0`,
//! `g = ι₊`, `h₁ = ½‖· − y‖²` (`SquaredDistance`) on `L₁ = k ⊛ ·`, `h₂ = λ l2,1` on `L₂ = ∇`, the given steps, a
//! fixed number of iterations from zero, without the per-iteration KKT residual and
//! objective (PyProximal's `PrimalDual` computes neither unless asked; the final objective is
//! evaluated once, after the clock stops). Best of `PEER_REPS` (default 3) runs, timed from the
//! set-up of the solver (operators built before, as on the Python side). Writes `ours_x.npy`
//! and prints one JSON object (time, final objective).
//!
//! Run: `cargo bench -p sparseinv-solvers --bench peer_tv -- <dir>`

use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use sparseinv_solvers::iter::{run, NoObserver};
use sparseinv_solvers::op::{Boundary, Conv2d, FiniteDiff};
use sparseinv_solvers::prox::{GroupL21, NonNegative, SquaredDistance};
use sparseinv_solvers::proximal::pdhg::{Pdhg, PdhgParams, Problem};
use std::time::Instant;

fn read<T: ReadNpyExt>(dir: &std::path::Path, name: &str) -> T {
    let f = std::fs::File::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    T::read_npy(f).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .expect("usage: peer_tv <dir with y.npy, psf.npy, params.npy>");
    let dir = std::path::Path::new(&dir);
    let y: Array2<f64> = read(dir, "y.npy");
    let k: Array2<f64> = read(dir, "psf.npy");
    let p: Array1<f64> = read(dir, "params.npy");
    let (lam, tau, sigma, iters) = (p[0], p[1], p[2], p[3] as usize);
    let reps: usize = std::env::var("PEER_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (n0, n1) = y.dim();
    let a = Conv2d::new([n0, n1], k.view(), Boundary::Same).unwrap();
    let grad = FiniteDiff::new(&[n0, n1]).unwrap();
    let data = SquaredDistance::new(1.0, y.into_dyn()).unwrap();
    let tv = GroupL21::along_axis(lam, 0).unwrap();
    let problem = Problem::new(&[n0, n1])
        .prox(&NonNegative)
        .add(&a, &data)
        .add(&grad, &tv);
    let mut params = PdhgParams {
        tau: Some(tau),
        sigma: Some(sigma),
        residual: false,
        objective: false,
        ..PdhgParams::default()
    };
    params.stop.max_iters = iters;
    params.stop.rel_tol = 0.0;
    let mut best = f64::INFINITY;
    let mut obj = f64::NAN;
    let mut x = ArrayD::<f64>::zeros(vec![n0, n1]);
    for _ in 0..reps {
        let t = Instant::now();
        let mut s = Pdhg::new(&problem, &params, None).unwrap();
        let rep = run(&mut s, &params.stop, &mut NoObserver).unwrap();
        let e = t.elapsed().as_secs_f64();
        best = best.min(e);
        x = s.into_x();
        obj = problem.objective(x.view()).unwrap();
        assert_eq!(rep.iterations, iters);
    }
    let f = std::fs::File::create(dir.join("ours_x.npy")).unwrap();
    x.write_npy(f).unwrap();
    println!(
        "{{\"best_s\": {best}, \"objective\": {obj}, \"iterations\": {iters}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
}
