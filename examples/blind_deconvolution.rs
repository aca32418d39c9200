//! Blind deconvolution with diverse inputs (Ling & Strohmer 2018, model "diverse"): one
//! unknown 1-D filter `f` blurs `p` signals that are known to lie in known random subspaces,
//! `y_i = f ⊛ (C_i x_i) + e_i` (circular convolution, length `m`). The filter and all the
//! signals are recovered, up to one common scale, by one linear least-squares problem in the
//! inverse filter `g` (`g ⊛ f = δ`) and the `x_i`: `g ⊛ y_i − C_i x_i = 0`.
//!
//! ```text
//! cargo run --release --example blind_deconvolution
//! ```
//!
//! Prints the recovered filter taps against the true ones (after fixing the scale by least
//! squares), the relative errors up to scale for both solvers and both backends, and the
//! effect of noise.

use ndarray::Array1;
use sparseinv::solvers::iter::NoObserver;
use sparseinv::solvers::selfcal::{
    scale_invariant_error, solve, synthetic, Backend, Errors, InstanceSpec, Method, Model, Params,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // m = 128 samples, signals of n = 48 coefficients in known random subspaces, p = 4 inputs:
    // N = m + p n = 320 unknowns (up to scale) from p m = 512 measurements.
    let (m, n, p) = (128, 48, 4);
    println!("blind deconvolution, diverse inputs: m = {m}, n = {n}, p = {p}");
    println!(
        "unknowns N = {} (filter {m} + signals {}), measurements p·m = {}\n",
        m + p * n,
        p * n,
        p * m
    );
    for snr in [None, Some(40.0), Some(20.0)] {
        let mut spec = InstanceSpec::new(Model::Diverse, m, n, p);
        spec.snr_db = snr;
        let inst = synthetic::<f64>(&spec, 2024)?;
        println!(
            "SNR: {}",
            snr.map_or("noiseless".to_string(), |s| format!("{s} dB"))
        );
        for method in [Method::Lsq, Method::Spectral] {
            for backend in [Backend::Dense, Backend::MatrixFree] {
                let params = Params {
                    method,
                    backend,
                    ..Default::default()
                };
                let t = std::time::Instant::now();
                let (sol, _) = solve(&inst.problem, &params, &mut NoObserver)?;
                let dt = t.elapsed().as_secs_f64();
                let e = Errors::measure(&sol, &inst.s, &inst.x);
                let ef = scale_invariant_error(sol.d.view(), inst.d.view());
                println!(
                    "  {:<8} {:<11} filter err {:.2e}  inverse-filter err {:.2e}  signals err {:.2e}  ({:.1} ms, {} LSQR its)",
                    method.as_str(),
                    if backend == Backend::Dense { "dense" } else { "matrix-free" },
                    ef,
                    e.s,
                    e.x,
                    dt * 1e3,
                    sol.iterations
                );
                if snr.is_none() && method == Method::Lsq && backend == Backend::Dense {
                    // fix the scale by least squares and show the first taps
                    let est: &Array1<f64> = &sol.d;
                    let alpha = est.dot(&inst.d) / est.dot(est);
                    println!("    tap      true f   recovered f (scaled)");
                    for j in 0..8 {
                        println!("    {j:>3}  {:>10.6}  {:>10.6}", inst.d[j], alpha * est[j]);
                    }
                }
            }
        }
        println!();
    }
    Ok(())
}
