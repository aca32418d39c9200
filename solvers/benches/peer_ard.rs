//! Our side of the ARDRegression peer comparison (driven by benches/peers/ard.py).
//!
//! `cargo bench -p sparseinv-solvers --bench peer_ard -- <dir>` reads `<dir>/phi.npy` (M × N)
//! and `<dir>/y.npy` (M), runs classic SBL with learned noise (MacKay update, as
//! ARDRegression; and the EM update) best-of-N, writes the estimates to
//! `<dir>/ours_<update>.npy` and prints one JSON line per update with the best time.

use ndarray::{Array1, Array2, Axis};
use ndarray_npy::{read_npy, write_npy};
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::sbl::{sbl, SblParams, Update};
use std::time::Instant;

/// A numeric setting from the environment, or its default.
fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| std::path::Path::new(a).is_dir())
        .expect("usage: peer_ard <dir with phi.npy and y.npy>");
    let dir = std::path::PathBuf::from(dir);
    let phi: Array2<f64> = read_npy(dir.join("phi.npy")).expect("phi.npy");
    let y: Array1<f64> = read_npy(dir.join("y.npy")).expect("y.npy");
    let reps: usize = std::env::var("PEER_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for (name, update) in [("mackay", Update::MacKay), ("em", Update::Em)] {
        let p = SblParams {
            update,
            stop: StopCriteria {
                max_iters: 300,
                rel_tol: env_or("PEER_TOL", 1e-6),
                ..StopCriteria::default()
            },
            prune: env_or("PEER_PRUNE", 1e-4),
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..reps {
            let t = Instant::now();
            let r = sbl(
                phi.view(),
                y.view().insert_axis(Axis(1)),
                &p,
                &mut NoObserver,
            )
            .expect("sbl");
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(r);
        }
        let (r, report) = last.unwrap();
        write_npy(
            dir.join(format!("ours_{name}.npy")),
            &r.mean.column(0).to_owned(),
        )
        .expect("write");
        println!(
            "{{\"update\": \"{name}\", \"best_s\": {best}, \"iterations\": {}, \"support\": {}, \"noise_var\": {}}}",
            report.iterations,
            r.support.len(),
            r.noise_var
        );
    }
}
