//! One PnP-ADMM iteration of `sparseinv deblur --method pnp-admm` (shipped denoiser) on a
//! 512² image against its floor: one run of the network plus the FFT work of the data step.
//!
//! In one process, with the same thread count for ONNX Runtime (intra-op threads) and for
//! rayon (the FFTs), it measures, round after round (alternating):
//! - (a) one inference of the shipped denoiser on the 512² image as a single `[1, 2, 512, 512]`
//!   float32 tensor (image + noise map): `OnnxModel::run`, nothing around it (median of 5);
//! - (a') the same network through the pipeline's denoiser (`Denoiser<f64>` of the
//!   `OnnxDenoiser` configured as `deblur` configures it: identity normalisation, tiles of
//!   `DeblurOptions::tile` px sharing `overlap`) — information: the wrapper's cost;
//! - (b) the data step's FFTs: the x-update `(AᴴA + ρI)⁻¹ rhs` of a reflective convolution by
//!   a PSF symmetric about each axis is one 2-D DCT-II and its inverse on the 512² grid
//!   (`dct` module), i.e. 4 × 512 real FFTs of length 512 (2 × 512 forward, 2 × 512
//!   inverse, rows and columns); timed as exactly those `realfft` calls on contiguous lines
//!   with the project's cached plans, lines in parallel on the rayon pool, no twiddles,
//!   permutations or transposes (median of 9);
//! - (c) one iteration as the pipeline runs it: `pipeline::deblur_with_progress` with
//!   `DeblurMethod::PnpAdmm`, the built-in denoiser, σ given, 10 iterations; the time between
//!   consecutive progress callbacks (one per iteration) over iterations 2–10, so set-up
//!   (session, operators) and the first, warming iteration are excluded (median of 9);
//!
//! - (d) the pipeline's x-update operator alone, `CirculantNormalInverse::mirrored` applied to
//!   a 512² image (information: (b) plus the twiddles, permutations and transposes);
//!
//! and prints each round's `(c)/((a)+(b))` and the spread over rounds. The image is a
//! synthetic scene (blobs, a bar, texture) in `[0, 1]` blurred by a 15 × 15 Gaussian PSF
//! (σ = 2 px, reflective borders) with Gaussian noise σ = 0.01 (seeded). `--asymmetric` adds a
//! streak to the PSF, so the data step runs preconditioned CG instead (information).
//!
//! `--tiling-check` also deblurs with the denoiser in 256-px tiles sharing 32 px (the
//! pipeline's tiling before it took `DeblurOptions::tile`) and prints how far the two results
//! are apart and their PSNR against the scene.
//!
//! Run: `cargo bench --bench pnp_iteration [-- --threads N --rounds R --asymmetric
//! --tiling-check]`
//! (needs ONNX Runtime; see the models crate).
//!
//! Measured on the 2-core development box (Linux VM, 2 threads, loaded to 7–12 by other
//! builds; 12 rounds alternating with the code before, commit 44c614e): (a) 0.27–0.72 s,
//! (b) 1.4–14 ms, (c) 0.30–0.79 s; (c)/((a)+(b)) median 1.07 (0.93–1.37), before 2.12
//! (1.62–2.25); `--asymmetric` 1.51 (1.44–1.58), before 2.67 (2.60–2.73). The x-update
//! operator (d) took 9–24 ms, before 51–120 ms. README: "Plug-and-play".

use ndarray::{Array2, Array4};
use sparseinv::pipeline::{
    deblur_with_progress, DeblurMethod, DeblurOptions, DenoiseModel, Progress,
};
use sparseinv_models::{builtin, Device, SessionOptions};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::pnp::CirculantNormalInverse;
use std::time::Instant;

const N: usize = 512;
const ITERS: usize = 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn gauss_psf(k: usize, s: f64) -> Array2<f64> {
    let c = (k / 2) as f64;
    let p = Array2::from_shape_fn((k, k), |(i, j)| {
        (-((i as f64 - c).powi(2) + (j as f64 - c).powi(2)) / (2.0 * s * s)).exp()
    });
    let t = p.sum();
    p / t
}

/// A 512² test scene in `[0, 1]`: Gaussian blobs, a bright bar and a fine texture.
fn scene() -> Array2<f64> {
    let blobs = [
        (120.0, 140.0, 40.0, 0.8),
        (300.0, 380.0, 25.0, 0.6),
        (400.0, 100.0, 60.0, 0.5),
        (250.0, 250.0, 8.0, 1.0),
    ];
    Array2::from_shape_fn((N, N), |(i, j)| {
        let (y, x) = (i as f64, j as f64);
        let mut v = 0.1;
        for &(cy, cx, s, a) in &blobs {
            v += a * (-((y - cy).powi(2) + (x - cx).powi(2)) / (2.0 * s * s)).exp();
        }
        if (200..230).contains(&i) && (60..460).contains(&j) {
            v += 0.4;
        }
        v += 0.05 * ((x * 0.3).sin() * (y * 0.21).cos());
        v.clamp(0.0, 1.0)
    })
}

/// (b): 2 × 512 forward and 2 × 512 inverse real FFTs of length 512, lines in parallel.
fn fft_floor(reps: usize) -> f64 {
    use rayon::prelude::*;
    let fwd = sparseinv_solvers::fft::real_forward_plan::<f64>(N);
    let inv = sparseinv_solvers::fft::real_inverse_plan::<f64>(N);
    let mut re: Vec<f64> = (0..N * N).map(|k| ((k * 7) % 13) as f64).collect();
    let mut sp = vec![num_complex::Complex::<f64>::new(0.0, 0.0); N * (N / 2 + 1)];
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..2 {
            re.par_chunks_mut(N)
                .zip(sp.par_chunks_mut(N / 2 + 1))
                .for_each_init(
                    || fwd.make_scratch_vec(),
                    |s, (r, c)| fwd.process_with_scratch(r, c, s).unwrap(),
                );
        }
        for _ in 0..2 {
            re.par_chunks_mut(N)
                .zip(sp.par_chunks_mut(N / 2 + 1))
                .for_each_init(
                    || inv.make_scratch_vec(),
                    |s, (r, c)| {
                        c[0].im = 0.0;
                        c[N / 2].im = 0.0;
                        inv.process_with_scratch(c, r, s).unwrap()
                    },
                );
        }
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(&re);
    }
    median(times)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let threads = value("--threads", 2);
    let rounds = value("--rounds", 3);
    let asymmetric = args.iter().any(|a| a == "--asymmetric");
    let tiling_check = args.iter().any(|a| a == "--tiling-check");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    pool.install(|| run(threads, rounds, asymmetric, tiling_check));
}

fn psnr(x: &Array2<f64>, truth: &Array2<f64>) -> f64 {
    let mse = (x - truth).mapv(|d| d * d).mean().expect("non-empty");
    10.0 * (1.0 / mse).log10()
}

fn run(threads: usize, rounds: usize, asymmetric: bool, tiling_check: bool) {
    let session = SessionOptions {
        intra_threads: threads,
        device: Device::Cpu,
    };
    let mut psf = gauss_psf(15, 2.0);
    if asymmetric {
        for k in 0..6 {
            psf[[7, 7 + k]] += 0.02;
        }
        psf /= psf.sum();
    }
    let truth = scene();
    let a = Conv2d::new([N, N], psf.view(), Boundary::Reflect).expect("blur");
    let noise = sparseinv_solvers::random::randn::<f64>(&[N, N], 7);
    let y = a.apply(truth.view().into_dyn()).expect("blur") + noise * 0.01;
    let y = y.into_dimensionality::<ndarray::Ix2>().expect("2-D");
    let sigma = 0.01;
    let opts = DeblurOptions {
        method: DeblurMethod::PnpAdmm,
        denoiser: DenoiseModel::Builtin,
        sigma: Some(sigma),
        iters: ITERS,
        session,
        ..Default::default()
    };

    // the network alone, on the normalised image (what the pipeline feeds it at σ_d), and
    // the denoiser configured as the pipeline configures it
    let d = builtin::denoiser(session, opts.network_denoiser_config()).expect("builtin denoiser");
    let rho = 1.0 / (opts.strength * opts.strength);
    let m = CirculantNormalInverse::mirrored([N, N], psf.view(), rho).expect("x-update");
    let mut xu = ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[N, N]));
    let sigma_d = (opts.strength * sigma) as f32;
    let mut inp = Array4::<f32>::zeros((1, 2, N, N));
    inp.slice_mut(ndarray::s![0, 0, .., ..])
        .assign(&y.mapv(|v| v as f32));
    inp.slice_mut(ndarray::s![0, 1, .., ..]).fill(sigma_d);
    d.model().run(&[inp.view().into_dyn()]).expect("warm-up");
    let yd = y.clone().into_dyn();

    println!(
        "PnP-ADMM iteration vs floor, {N}², {threads} thread(s), {} PSF, {} tile(s) per denoiser call",
        if asymmetric { "asymmetric" } else { "symmetric" },
        d.tiles_for(N, N)
    );
    let mut ratios = Vec::new();
    for r in 0..rounds {
        let ta = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    d.model().run(&[inp.view().into_dyn()]).unwrap();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        let twrap = median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(Denoiser::<f64>::denoise(&d, yd.view(), sigma_d as f64))
                        .unwrap();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        let tb = fft_floor(9);
        let td = median(
            (0..9)
                .map(|_| {
                    let t = Instant::now();
                    m.apply_into(y.view().into_dyn(), xu.view_mut());
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        let mut stamps = Vec::with_capacity(ITERS);
        deblur_with_progress(y.view(), psf.view(), &opts, &mut |_p: Progress| {
            stamps.push(Instant::now())
        })
        .expect("deblur");
        assert_eq!(stamps.len(), ITERS, "one progress call per iteration");
        let per_iter: Vec<f64> = stamps
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let (lo, hi) = per_iter
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
        let tc = median(per_iter);
        let ratio = tc / (ta + tb);
        ratios.push(ratio);
        println!(
            "round {r}: (a) network {ta:.4} s [pipeline denoiser call {twrap:.4} s], \
             (b) FFTs {tb:.4} s [x-update operator {td:.4} s], (c) iteration {tc:.4} s \
             (range {lo:.4}–{hi:.4}) → (c)/((a)+(b)) = {ratio:.3}"
        );
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    println!(
        "ratio: median {:.3}, range {lo:.3}–{hi:.3} over {rounds} rounds",
        median(ratios.clone())
    );
    if tiling_check {
        let one = deblur_with_progress(y.view(), psf.view(), &opts, &mut |_| {}).expect("deblur");
        let tiled_opts = DeblurOptions {
            tile: 256,
            overlap: 32,
            ..opts.clone()
        };
        let tiled =
            deblur_with_progress(y.view(), psf.view(), &tiled_opts, &mut |_| {}).expect("deblur");
        let d = (&one.image - &tiled.image).mapv(f64::abs);
        let max = d.fold(0.0f64, |m, &v| m.max(v));
        let rms = d.mapv(|v| v * v).mean().expect("non-empty").sqrt();
        println!(
            "tiling check ({ITERS} iterations): |one piece − 256-px tiles| max {max:.2e}, rms \
             {rms:.2e}; PSNR vs scene {:.2} dB (one piece) / {:.2} dB (tiles), data {:.2} dB",
            psnr(&one.image, &truth),
            psnr(&tiled.image, &truth),
            psnr(&y.to_owned(), &truth)
        );
    }
}
