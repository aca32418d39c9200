//! Classic SBL at the IRS-MIMO size: one trial of the 1800 × 3375 complex problem of
//! `examples/irs_mimo_channel.rs` (`(10 × 15) ⊗ (12 × 15) ⊗ (15 × 15)`, 3 non-zeros per mode,
//! noise variance known, at most 150 EM iterations), solved by `Sbl::kronecker` (the
//! dictionary as its factors; what `sbl_kronecker` runs) and by `Sbl::new` on the formed
//! dictionary (the generic E-step,
//! which is what the same algorithm costs without the structure), alternating, in the same
//! run; then the floor.
//!
//! **Floor.** An exact EM iteration needs the Cholesky factor of an `n × n` Hermitian
//! positive-definite matrix and its inverse (for the posterior variances), with
//! `n = min(M, K)` (`Σ_y` in measurement space, `B = I + DGD/σ²` in coefficient space, `K`
//! active atoms). The bench times faer's Cholesky factorisation plus triangular inverse of
//! an `M × M` matrix in the same run and sums `t(M) · (min(M, Kₜ)/M)³` over the iterations of
//! the Kronecker run (the `n³` scaling slightly flatters small `n`, where the time per
//! operation is higher, so the floor is a little low).
//!
//! `cargo bench -p sparseinv-solvers --bench sbl_scale -- [--snr 5] [--seeds 1,2,3]
//! [--rounds 1] [--no-formed]` (a formed-dictionary trial at 5 dB takes 30–50 s on a 2-core
//! machine). Prints one line per run and the ratios.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::Mat;
use ndarray::{Array1, Axis, Ix2};
use num_complex::Complex64;
use sparseinv_solvers::iter::{IterativeSolver, StopCriteria};
use sparseinv_solvers::op::kronecker::kron_matrix;
use sparseinv_solvers::sbl::{NoiseModel, Sbl, SblParams};
use sparseinv_solvers::testing::{kron_sparse_trial, randn};
use std::time::Instant;

/// Run SBL to its stop; returns (seconds, NMSE in dB, iterations, active count per iteration).
fn run(
    mut s: Sbl<Complex64>,
    p: &SblParams<f64>,
    x: &Array1<Complex64>,
) -> (f64, f64, usize, Vec<usize>) {
    let t0 = Instant::now();
    let mut ks = Vec::new();
    for _ in 0..p.stop.max_iters {
        let info = s.step().expect("SBL step");
        ks.push(s.gamma().iter().filter(|&&g| g > 0.0).count());
        if info.rel_change <= p.stop.rel_tol {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let xh = s.mean().column(0).to_owned();
    let e = (&xh - x).iter().map(|v| v.norm_sqr()).sum::<f64>()
        / x.iter().map(|v| v.norm_sqr()).sum::<f64>();
    (secs, 10.0 * e.log10(), ks.len(), ks)
}

/// Seconds for faer's Cholesky factorisation and triangular inverse of an `n × n` Hermitian
/// positive-definite complex matrix (best of 3).
fn dense_floor(n: usize) -> f64 {
    let b = randn::<Complex64>(&[n, n], 77)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let a0 = Mat::from_fn(n, n, |i, j| {
        let v = b[[i, j]] * 0.01;
        if i == j {
            v + Complex64::new(n as f64, 0.0)
        } else {
            v
        }
    });
    // make it Hermitian
    let a0 = Mat::from_fn(n, n, |i, j| (a0[(i, j)] + a0[(j, i)].conj()) * 0.5);
    let par = faer::get_global_parallelism();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut a = a0.clone();
        let mut w = Mat::<Complex64>::zeros(n, n);
        let t0 = Instant::now();
        let mut mem = MemBuffer::new(cholesky_in_place_scratch::<Complex64>(
            n,
            par,
            Default::default(),
        ));
        cholesky_in_place(
            a.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .expect("positive definite");
        invert_lower_triangular(w.as_mut(), a.as_ref(), par);
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(&w);
    }
    best
}

fn arg(name: &str, default: &str) -> String {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|s| s == name)
        .and_then(|i| a.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let snr: f64 = arg("--snr", "5").parse().expect("--snr: a number");
    let seeds: Vec<u64> = arg("--seeds", "1,2,3")
        .split(',')
        .map(|s| s.trim().parse().expect("--seeds: integers"))
        .collect();
    let rounds: usize = arg("--rounds", "1").parse().expect("--rounds: an integer");
    let with_formed = !std::env::args().any(|a| a == "--no-formed");
    let m = 1800;
    let t_dense = dense_floor(m);
    println!("SBL at 1800 x 3375 (complex), {snr} dB, <= 150 EM iterations, noise known; Cholesky + triangular inverse of 1800 x 1800: {:.3} s", t_dense);
    let (mut sum_k, mut sum_f, mut sum_floor) = (0.0, 0.0, 0.0);
    for round in 0..rounds {
        for &seed in &seeds {
            let t = kron_sparse_trial(&[10, 12, 15], 15, 3, snr, seed);
            let (factors, x, y, s2) = (t.factors, t.x, t.y, t.sigma2);
            let y2 = y.view().insert_axis(Axis(1)).to_owned();
            let p = SblParams {
                stop: StopCriteria {
                    max_iters: 150,
                    ..StopCriteria::default()
                },
                noise: NoiseModel::Fixed(s2),
                ..Default::default()
            };
            let (tk, ek, ik, ks) = run(Sbl::kronecker(&factors, y2.view(), &p).unwrap(), &p, &x);
            let floor: f64 = ks
                .iter()
                .map(|&k| t_dense * (k.min(m) as f64 / m as f64).powi(3))
                .sum();
            sum_k += tk;
            sum_floor += floor;
            print!(
                "round {round} seed {seed}: kronecker {tk:.2} s ({ik} its, {:.2} dB, {} atoms left; floor {floor:.2} s, {:.2}x it)",
                ek,
                ks.last().copied().unwrap_or(0),
                tk / floor
            );
            if with_formed {
                let phi = kron_matrix(&factors);
                let (tf, ef, i_f, _) = run(Sbl::new(phi.view(), y2.view(), &p).unwrap(), &p, &x);
                sum_f += tf;
                print!(
                    " | formed {tf:.2} s ({i_f} its, {ef:.2} dB) | formed / kronecker {:.2}x",
                    tf / tk
                );
            }
            println!();
        }
    }
    let n = (rounds * seeds.len()) as f64;
    print!(
        "mean per trial: kronecker {:.2} s, floor {:.2} s ({:.2}x the floor)",
        sum_k / n,
        sum_floor / n,
        sum_k / sum_floor
    );
    if with_formed {
        print!(", formed {:.2} s ({:.2}x slower)", sum_f / n, sum_f / sum_k);
    }
    println!();
}
