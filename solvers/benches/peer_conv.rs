//! Our side of the convolution peer comparison driven by `benches/peers/conv.py`.
//!
//! `cargo bench -p sparseinv-solvers --bench peer_conv -- <dir>` reads `<dir>/image.npy` and
//! `<dir>/kernel.npy` (float64), builds a `Conv2d` in `Same` mode, times `apply` with a
//! best-of-N loop on the current rayon pool (set `RAYON_NUM_THREADS`), writes the result to
//! `<dir>/ours_<threads>.npy` and prints one JSON line.

use ndarray::{Array2, ArrayD};
use ndarray_npy::{read_npy, write_npy};
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .expect("usage: peer_conv <dir>");
    let reps: usize = std::env::var("PEER_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let x: Array2<f64> = read_npy(format!("{dir}/image.npy")).expect("image.npy");
    let k: Array2<f64> = read_npy(format!("{dir}/kernel.npy")).expect("kernel.npy");
    let t0 = Instant::now();
    let op = Conv2d::new([x.nrows(), x.ncols()], k.view(), Boundary::Same).expect("Conv2d");
    let build = t0.elapsed().as_secs_f64();
    let xd = x.view().into_dyn();
    let mut y = ArrayD::<f64>::zeros(vec![x.nrows(), x.ncols()]);
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        op.apply_into(xd.view(), y.view_mut());
        times.push(t.elapsed().as_secs_f64());
    }
    let mut z = ArrayD::<f64>::zeros(vec![x.nrows(), x.ncols()]);
    let mut adj = Vec::new();
    for _ in 0..reps.min(3) {
        let t = Instant::now();
        op.adjoint_into(y.view(), z.view_mut());
        adj.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    adj.sort_by(f64::total_cmp);
    let threads = rayon::current_num_threads();
    write_npy(format!("{dir}/ours_{threads}.npy"), &y).expect("write result");
    println!(
        "{{\"threads\": {threads}, \"fft_grid\": {:?}, \"blocked\": {}, \"build_s\": {build:.6}, \"apply_best_s\": {:.6}, \"apply_median_s\": {:.6}, \"adjoint_best_s\": {:.6}, \"reps\": {reps}}}",
        op.fft_shape(),
        op.is_blocked(),
        times[0],
        times[times.len() / 2],
        adj[0]
    );
}
