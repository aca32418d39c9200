//! Our side of the deconvolution peer comparison driven by `benches/peers/deconv.py`.
//!
//! `cargo bench -p sparseinv-solvers --bench peer_deconv -- <dir>` reads (float64 `.npy`)
//! `<dir>/rl_image.npy`, `<dir>/rl_psf.npy`, `<dir>/wiener_image.npy`, `<dir>/wiener_psf.npy`
//! and times, with a best-of-N loop on the current rayon pool (`RAYON_NUM_THREADS`):
//!
//! - Richardson–Lucy configured as scikit-image's `richardson_lucy(image, psf, num_iter,
//!   clip=False)`: zero (`Same`) boundary, no `Aᵀ1` normalisation, start 0.5, ε = 1e-12, no
//!   acceleration, no clamping (`PEER_RL_ITERS` iterations, default 30), in `f64` and in
//!   `f32` (the same data rounded to single precision);
//! - scikit-image's `wiener(image, psf, balance, clip=False)`: our [`tikhonov`] with the
//!   Laplacian regulariser (the same filter, circular model), `PEER_BALANCE` (default 0.01);
//! - the scalar-balance Wiener filter [`wiener`] (identity regulariser), as the `deconvolution`
//!   crate's `wiener` with that NSR.
//!
//! Results go to `<dir>/ours_{rl,rl32,skwiener,wiener}_<threads>.npy`; one JSON line is printed.

use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use sparseinv_solvers::deconv::{
    richardson_lucy, tikhonov, wiener, Balance, Regulariser, RlParams,
};
use sparseinv_solvers::iter::NoObserver;
use sparseinv_solvers::op::Boundary;
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best and median of `reps` timed runs of `f`, and its last result.
fn time<F: FnMut() -> Array2<f64>>(reps: usize, mut f: F) -> (f64, f64, Array2<f64>) {
    let mut t = Vec::new();
    let mut last = None;
    for _ in 0..reps.max(1) {
        let s = Instant::now();
        last = Some(f());
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2], last.expect("one run"))
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .expect("usage: peer_deconv <dir>");
    let reps: usize = env("PEER_REPS", 3);
    let iters: usize = env("PEER_RL_ITERS", 30);
    let balance: f64 = env("PEER_BALANCE", 0.01);
    let threads = rayon::current_num_threads();

    let y: Array2<f64> = read_npy(format!("{dir}/rl_image.npy")).expect("rl_image.npy");
    let k: Array2<f64> = read_npy(format!("{dir}/rl_psf.npy")).expect("rl_psf.npy");
    let p = RlParams {
        boundary: Boundary::Same,
        normalize: false,
        eps: 1e-12,
        init: Some(0.5),
        accelerate: false,
        damping: None,
        positivity: false,
        stop: RlParams::iterations(iters),
        background: None,
        discrepancy: None,
        risk: None,
    };
    let (rl_best, rl_med, x_rl) = time(reps, || {
        richardson_lucy(y.view(), k.view(), None, &p, &mut NoObserver)
            .expect("richardson_lucy")
            .0
    });

    // the same in single precision (scikit-image keeps float32 input in float32)
    let y32 = y.mapv(|v| v as f32);
    let k32 = k.mapv(|v| v as f32);
    let (rl32_best, rl32_med, x_rl32) = time(reps, || {
        richardson_lucy(y32.view(), k32.view(), None, &p, &mut NoObserver)
            .expect("richardson_lucy f32")
            .0
            .mapv(f64::from)
    });

    let yw: Array2<f64> = read_npy(format!("{dir}/wiener_image.npy")).expect("wiener_image.npy");
    let kw: Array2<f64> = read_npy(format!("{dir}/wiener_psf.npy")).expect("wiener_psf.npy");
    let (skw_best, skw_med, x_skw) = time(reps, || {
        tikhonov(yw.view(), kw.view(), Regulariser::Laplacian, balance).expect("tikhonov")
    });
    let (w_best, w_med, x_w) = time(reps, || {
        wiener(yw.view(), kw.view(), Balance::Fixed(balance)).expect("wiener")
    });
    write_npy(format!("{dir}/ours_rl_{threads}.npy"), &x_rl).expect("write");
    write_npy(format!("{dir}/ours_rl32_{threads}.npy"), &x_rl32).expect("write");
    write_npy(format!("{dir}/ours_skwiener_{threads}.npy"), &x_skw).expect("write");
    write_npy(format!("{dir}/ours_wiener_{threads}.npy"), &x_w).expect("write");
    println!(
        "{{\"threads\": {threads}, \"reps\": {reps}, \"rl_iters\": {iters}, \"balance\": {balance}, \"rl_best_s\": {rl_best:.6}, \"rl_median_s\": {rl_med:.6}, \"rl32_best_s\": {rl32_best:.6}, \"rl32_median_s\": {rl32_med:.6}, \"skwiener_best_s\": {skw_best:.6}, \"skwiener_median_s\": {skw_med:.6}, \"wiener_best_s\": {w_best:.6}, \"wiener_median_s\": {w_med:.6}}}"
    );
}
