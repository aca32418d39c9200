//! VBLE-xz deblurring of one image with the shipped prior: periodic Gaussian blur (σ = 1.5 px,
//! 15×15), white noise, then the posterior mean and per-pixel standard deviation.
//!
//! ```text
//! cargo run --release -p sparseinv-models --example vble_restore -- [image.npy] \
//!     [--sigma 0.01] [--steps 200] [--samples 100] [--variant xz|z|map] [--seed 0] \
//!     [--threads 1] [--out DIR]
//! ```
//!
//! `image.npy` is a float64 `[H, W]` array in `[0, 1]` (H, W multiples of 16); without one a
//! smooth synthetic 128×128 image is used. Prints the PSNR of the observation and of the
//! estimate, the coverage of `mean ± q·std` at 50/80/90/95 %, and the time split between
//! ONNX Runtime and Rust; with `--out` writes `mean.npy`, `std.npy` and `observed.npy`.

use ndarray::{Array2, Zip};
use ndarray_npy::{read_npy, write_npy};
use sparseinv_models::vble::{restore, Variant, VbleParams, VblePrior};
use sparseinv_models::SessionOptions;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::random::randn;
use std::error::Error;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut image: Option<String> = None;
    let (mut sigma, mut steps, mut samples, mut seed, mut threads) = (0.01, None, None, 0u64, 1);
    let mut variant = Variant::VbleXz;
    let mut out: Option<String> = None;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sigma" => sigma = val()?.parse()?,
            "--steps" => steps = Some(val()?.parse()?),
            "--samples" => samples = Some(val()?.parse()?),
            "--seed" => seed = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            "--out" => out = Some(val()?),
            "--variant" => {
                variant = match val()?.as_str() {
                    "xz" => Variant::VbleXz,
                    "z" => Variant::ZOnly,
                    "map" => Variant::Map,
                    v => return Err(format!("unknown variant `{v}` (xz, z, map)").into()),
                }
            }
            s if !s.starts_with("--") && image.is_none() => image = Some(s.to_string()),
            s => return Err(format!("unknown argument `{s}`").into()),
        }
    }
    let x: Array2<f64> = match &image {
        Some(p) => read_npy(p)?,
        None => Array2::from_shape_fn((128, 128), |(i, j)| {
            let (u, v) = (i as f64 / 128.0, j as f64 / 128.0);
            0.45 + 0.2 * (9.0 * u + 4.0 * v).sin() * (7.0 * v).cos()
                + 0.1 * ((i / 16 + j / 16) % 2) as f64
        }),
    };
    let (h, w) = x.dim();
    let t = 15usize;
    let psf = Array2::from_shape_fn((t, t), |(i, j)| {
        let (a, b) = (i as f64 - 7.0, j as f64 - 7.0);
        (-0.5 * (a * a + b * b) / 2.25).exp()
    });
    let psf = &psf / psf.sum();
    let op = Conv2d::new([h, w], psf.view(), Boundary::Circular)?;
    let y = op.apply(x.view().into_dyn())? + randn::<f64>(&[h, w], 1000 + seed) * sigma;
    let prior = VblePrior::builtin(SessionOptions {
        intra_threads: threads,
        ..Default::default()
    })?;
    let mut p = VbleParams::new(sigma);
    p.steps = steps;
    p.samples = samples;
    p.seed = seed;
    p.variant = variant;
    let t0 = Instant::now();
    let res = restore(&prior, &op, y.view(), &p)?;
    let secs = t0.elapsed().as_secs_f64();
    let psnr = |a: &Array2<f64>| {
        let mse = Zip::from(a)
            .and(&x)
            .fold(0.0, |s, &p, &q| s + (p - q) * (p - q))
            / a.len() as f64;
        -10.0 * mse.log10()
    };
    let y2 = y.clone().into_dimensionality::<ndarray::Ix2>()?;
    let r = &res.report;
    println!(
        "{h}×{w}, σ_n {sigma}, {variant:?}: {} steps, {} samples in {secs:.2} s (ONNX {:.2} s = \
         {:.0} %, Rust {:.2} s)",
        r.steps,
        r.samples,
        r.onnx_seconds,
        100.0 * r.onnx_seconds / (r.onnx_seconds + r.rust_seconds),
        r.rust_seconds
    );
    println!(
        "PSNR observed {:.2} dB, estimate {:.2} dB; loss {:.1} → {:.1}; mean a_z {:.3}, a_h \
         {:.3}, b {:.3}",
        psnr(&y2),
        psnr(&res.mean),
        r.loss.first().copied().unwrap_or(f64::NAN),
        r.loss.last().copied().unwrap_or(f64::NAN),
        r.mean_a_z,
        r.mean_a_h,
        r.mean_b
    );
    if let Some(std) = &res.std {
        let cov: Vec<String> = [
            0.6744897501960817,
            1.2815515655446004,
            1.6448536269514722,
            1.959963984540054,
        ]
        .iter()
        .map(|q| {
            let n = Zip::from(&x)
                .and(&res.mean)
                .and(std)
                .fold(0usize, |n, &t, &m, &s| {
                    n + usize::from((t - m).abs() <= q * s)
                });
            format!("{:.3}", n as f64 / x.len() as f64)
        })
        .collect();
        println!(
            "coverage 50/80/90/95 %: {}; mean std {:.4}",
            cov.join(" / "),
            std.mean().unwrap_or(f64::NAN)
        );
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        let dir = std::path::Path::new(&dir);
        write_npy(dir.join("mean.npy"), &res.mean)?;
        write_npy(dir.join("observed.npy"), &y2)?;
        if let Some(std) = &res.std {
            write_npy(dir.join("std.npy"), std)?;
        }
        println!("wrote {}", dir.display());
    }
    Ok(())
}
