//! Cost of joint multiband deconvolution at survey size: 3 bands + the wide band on a 2048²
//! fine grid (1024² band grids, ratio 2, 51×51 PSFs), whole image (no tiles), against its
//! floor: the FFT work of one data-term gradient (`K + 1` convolutions and `K + 1` adjoint
//! convolutions), timed with the same `Conv2d` operators in the same run.
//!
//! ```sh
//! cargo run --release --example multiband_bench -- [ITERATIONS] [SIZE]
//! ```
//!
//! Prints seconds per iteration, the floor, their ratio, the projected time of 200 iterations
//! and the peak resident memory (VmHWM, Linux).

use ndarray::{Array2, Axis};
use sparseinv::solvers::multiband::{multiband_deconvolve, MultibandData, MultibandParams};
use sparseinv::solvers::op::{Boundary, Conv2d, LinearOperator};
use std::time::Instant;

fn gauss(n: usize, s: f64) -> Array2<f64> {
    let c = (n / 2) as f64;
    let k = Array2::from_shape_fn((n, n), |(i, j)| {
        (-((i as f64 - c).powi(2) + (j as f64 - c).powi(2)) / (2.0 * s * s)).exp()
    });
    let t = k.sum();
    k / t
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters: usize = args.first().map_or(10, |s| s.parse().expect("iterations"));
    let n: usize = args.get(1).map_or(2048, |s| s.parse().expect("size"));
    let m = n / 2;
    let k = 3;
    // a field of Gaussian galaxies, bands with different colours, seeded noise
    let mut truth = vec![Array2::<f64>::zeros((n, n)); k];
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..(n * n / 4096) {
        let (ci, cj, s) = (rnd() * n as f64, rnd() * n as f64, 1.0 + 4.0 * rnd());
        let amp: Vec<f64> = (0..k).map(|_| 50.0 + 100.0 * rnd()).collect();
        let r = (4.0 * s) as isize;
        for di in -r..=r {
            for dj in -r..=r {
                let (i, j) = (ci as isize + di, cj as isize + dj);
                if i >= 0 && j >= 0 && (i as usize) < n && (j as usize) < n {
                    let g = (-((di * di + dj * dj) as f64) / (2.0 * s * s)).exp();
                    for b in 0..k {
                        truth[b][[i as usize, j as usize]] += amp[b] * g;
                    }
                }
            }
        }
    }
    let psfs: Vec<Array2<f64>> = [3.4, 3.3, 3.2].iter().map(|&s| gauss(51, s)).collect();
    let pw = gauss(51, 0.6);
    let alphas = [0.38, 0.35, 0.27];
    let mut bands = Vec::new();
    for b in 0..k {
        let c = Conv2d::new([n, n], psfs[b].view(), Boundary::Same).unwrap();
        let y = c.apply(truth[b].view().into_dyn()).unwrap();
        let y2: Array2<f64> = y.into_dimensionality().unwrap();
        let low = Array2::from_shape_fn((m, m), |(i, j)| {
            y2[[2 * i, 2 * j]]
                + y2[[2 * i + 1, 2 * j]]
                + y2[[2 * i, 2 * j + 1]]
                + y2[[2 * i + 1, 2 * j + 1]]
                + 2.0 * (rnd() - 0.5)
        });
        bands.push(low);
    }
    let mut mix = Array2::<f64>::zeros((n, n));
    for b in 0..k {
        mix.scaled_add(alphas[b], &truth[b]);
    }
    let cw = Conv2d::new([n, n], pw.view(), Boundary::Same).unwrap();
    let wide: Array2<f64> = cw
        .apply(mix.view().into_dyn())
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        + &Array2::from_shape_fn((n, n), |_| 2.0 * (rnd() - 0.5));
    drop(truth);
    let data = MultibandData {
        bands: bands.iter().map(|b| b.view()).collect(),
        band_psfs: psfs.iter().map(|p| p.view()).collect(),
        band_masks: vec![],
        wide: Some((wide.view(), pw.view(), None)),
    };
    // floor: K + 1 convolutions and K + 1 adjoints on the fine grid (one gradient)
    let convs: Vec<Conv2d<f64>> = psfs
        .iter()
        .chain(std::iter::once(&pw))
        .map(|p| Conv2d::new([n, n], p.view(), Boundary::Same).unwrap())
        .collect();
    let x = wide.view().into_dyn();
    let mut out = ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[n, n]));
    let reps = 3;
    let t0 = Instant::now();
    for _ in 0..reps {
        for c in &convs {
            c.apply_into(x.view(), out.view_mut());
            c.adjoint_into(x.view(), out.view_mut());
        }
    }
    let floor = t0.elapsed().as_secs_f64() / reps as f64;
    // the solver: setup (noise, α fit, norms, thresholds) and iterations, timed separately
    let mut p = MultibandParams {
        refit_iters: 0,
        ..MultibandParams::default()
    };
    p.stop.max_iters = 1;
    let t0 = Instant::now();
    let r1 = multiband_deconvolve(&data, &p).unwrap();
    let one = t0.elapsed().as_secs_f64();
    p.stop.max_iters = iters + 1;
    let t0 = Instant::now();
    let r = multiband_deconvolve(&data, &p).unwrap();
    let total = t0.elapsed().as_secs_f64();
    let per_iter = (total - one) / iters as f64;
    let setup = one - per_iter;
    // the default photometric re-fit (30 steps), timed as the difference to the 1-iteration run
    p.stop.max_iters = 1;
    p.refit_iters = MultibandParams::default().refit_iters;
    let t0 = Instant::now();
    multiband_deconvolve(&data, &p).unwrap();
    let refit = t0.elapsed().as_secs_f64() - one;
    println!(
        "multiband {n}² fine grid, {k} bands ({m}²) + wide band, 51×51 PSFs, {} threads",
        rayon::current_num_threads()
    );
    println!("  setup (noise, α fit, operator norms, thresholds): {setup:.2} s");
    println!("  per iteration: {per_iter:.3} s ({iters} iterations timed)");
    println!(
        "  floor (one gradient's FFT work: {} convolutions + {} adjoints): {floor:.3} s -> ratio {:.2}",
        k + 1,
        k + 1,
        per_iter / floor
    );
    println!(
        "  photometric re-fit ({} steps): {refit:.2} s",
        p.refit_iters
    );
    println!(
        "  projected default run (200 iterations + re-fit): {:.0} s; peak memory {:.0} MiB",
        setup + 200.0 * per_iter + refit,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    println!(
        "  (α fitted {:?}; flux of band 0 {:.4e})",
        r1.alphas.unwrap(),
        r.x.index_axis(Axis(0), 0).sum()
    );
}
