//! Times the `deconvolution` crate (0.2) on the inputs written by `benches/peers/deconv.py`.
//!
//! `deconvolution-crate-peer <dir>` reads `<dir>/rl_image.npy`, `<dir>/rl_psf.npy`,
//! `<dir>/wiener_image.npy`, `<dir>/wiener_psf.npy` (float64; converted to float32, the
//! crate's sample type, outside the timed region) and `<dir>/params.json`-free settings from
//! the environment (`PEER_REPS`, `PEER_RL_ITERS`, `PEER_WIENER_NSR`), runs Richardson–Lucy
//! (fixed iteration count, positivity, no history) and Wiener (scalar NSR, periodic
//! boundary, no padding: the circular model) with a best-of-N loop, writes the results to
//! `<dir>/crate_rl.npy` / `<dir>/crate_wiener.npy` and prints one JSON line.

use deconvolution::nd::known_psf::{richardson_lucy_with, wiener_with};
use deconvolution::{Boundary, Padding, RichardsonLucy, Wiener};
use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(dir: &str, name: &str) -> Array2<f32> {
    let a: Array2<f64> = read_npy(format!("{dir}/{name}.npy")).expect(name);
    a.mapv(|v| v as f32)
}

fn best(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: deconvolution-crate-peer <dir>");
    let reps: usize = env("PEER_REPS", 3);
    let iters: usize = env("PEER_RL_ITERS", 30);
    let nsr: f32 = env("PEER_WIENER_NSR", 1e-2);

    let y = load(&dir, "rl_image");
    let k = load(&dir, "rl_psf");
    let rl = RichardsonLucy::new()
        .iterations(iters)
        .relative_update_tolerance(None)
        .collect_history(false);
    let mut t_rl = Vec::new();
    let mut x_rl = None;
    for _ in 0..reps {
        let t = Instant::now();
        let (x, _) = richardson_lucy_with(&y, &k, &rl).expect("richardson_lucy");
        t_rl.push(t.elapsed().as_secs_f64());
        x_rl = Some(x);
    }
    let x_rl = x_rl.expect("at least one repetition");

    let yw = load(&dir, "wiener_image");
    let kw = load(&dir, "wiener_psf");
    let cfg = Wiener::new()
        .nsr(nsr)
        .boundary(Boundary::Periodic)
        .padding(Padding::None);
    let mut t_w = Vec::new();
    let mut x_w = None;
    for _ in 0..reps {
        let t = Instant::now();
        let x = wiener_with(&yw, &kw, &cfg).expect("wiener");
        t_w.push(t.elapsed().as_secs_f64());
        x_w = Some(x);
    }
    let x_w = x_w.expect("at least one repetition");
    write_npy(format!("{dir}/crate_rl.npy"), &x_rl.mapv(f64::from)).expect("write");
    write_npy(format!("{dir}/crate_wiener.npy"), &x_w.mapv(f64::from)).expect("write");
    let (rb, rm) = best(&mut t_rl);
    let (wb, wm) = best(&mut t_w);
    println!(
        "{{\"rl_best_s\": {rb:.6}, \"rl_median_s\": {rm:.6}, \"wiener_best_s\": {wb:.6}, \"wiener_median_s\": {wm:.6}, \"reps\": {reps}, \"rl_iters\": {iters}, \"nsr\": {nsr}}}"
    );
}
