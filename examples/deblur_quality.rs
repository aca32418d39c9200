//! PSNR/SSIM of non-blind deblurring methods on held-out images (never used to train the
//! shipped networks): (i) Wiener, (ii) plug-and-play ADMM with starlet thresholding,
//! (iii) plug-and-play ADMM with the shipped denoiser, (iv) the shipped learned deblurring
//! model; Gaussian and motion blur, two Poisson–Gaussian noise levels.
//!
//! Plug-and-play settings (both denoisers): ADMM, denoiser level `σ_d = 2σ`, `ρ = 1/4`
//! (`sparseinv deblur --method pnp-admm --strength 2`), started from the data, 50
//! iterations. The strength 2 and ADMM were picked on camera/motion after PnP-FISTA at
//! `σ_d = σ` diverged with the small network (it amplifies at low noise levels).
//!
//! ```text
//! cargo run --release --example deblur_quality [-- --iters 50]
//! ```
//!
//! Data: `models/eval/` (written by `models/train/make_eval_set.py`): 274 × 274 crops of
//! scikit-image's camera, coins and cell, and two 19 × 19 PSFs. The observation is the 'valid'
//! convolution (256 × 256, non-periodic borders), `y = min(Poisson(peak · b)/peak + σ_g n, 1)`
//! with (peak, σ_g) = (1000, 0.005) ("low") and (100, 0.01) ("high", low light); seeds fixed.
//! Every method gets the noise level `σ = sqrt(mean(max(y, 0))/peak + σ_g²)`. Scores on the
//! central 224 × 224 (16-pixel border excluded), data range 1.
//!
//! Wiener is given twice: with the library's automatic balance (`Balance::Auto`, circular) and
//! with reflective borders and the best balance of a grid chosen with the ground truth (an
//! oracle upper bound for a linear filter).

use ndarray::{s, Array2, ArrayView2};
use ndarray_npy::read_npy;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use sparseinv_models::{builtin, wiener_reflect, DenoiserConfig, Normalization, SessionOptions};
use sparseinv_solvers::deconv::{wiener, Balance};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::StopCriteria;
use sparseinv_solvers::metrics::{psnr, ssim};
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::pnp::{pnp_admm, PnpParams};
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::path::PathBuf;

fn eval_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/eval")
}

fn load_png(name: &str) -> Array2<f64> {
    let img = image::open(eval_dir().join(format!("{name}.png")))
        .expect("models/eval image (run models/train/make_eval_set.py)")
        .to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Array2::from_shape_vec((h, w), img.into_raw())
        .unwrap()
        .mapv(|v| v as f64 / 255.0)
}

fn observe(scene: &Array2<f64>, psf: &Array2<f64>, peak: f64, sg: f64, seed: u64) -> Array2<f64> {
    let a = Conv2d::new([scene.nrows(), scene.ncols()], psf.view(), Boundary::Valid).unwrap();
    let b = a.apply(scene.view().into_dyn()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = Normal::new(0.0, 1.0).unwrap();
    let b: Array2<f64> = b.into_dimensionality().unwrap();
    b.mapv(|v| {
        let lam = (v.max(0.0) * peak).max(1e-12);
        let p = Poisson::new(lam).unwrap().sample(&mut rng) / peak;
        (p + sg * n.sample(&mut rng)).min(1.0)
    })
}

fn score(x: ArrayView2<f64>, truth: ArrayView2<f64>) -> (f64, f64) {
    let b = 16;
    let (h, w) = x.dim();
    let xs = x.slice(s![b..h - b, b..w - b]);
    let ts = truth.slice(s![b..h - b, b..w - b]);
    (psnr(xs, ts, 1.0).unwrap(), ssim(xs, ts, 1.0).unwrap())
}

fn pnp(
    y: &Array2<f64>,
    psf: &Array2<f64>,
    d: &dyn Denoiser<f64>,
    sigma: f64,
    iters: usize,
) -> Array2<f64> {
    let a = Conv2d::new([y.nrows(), y.ncols()], psf.view(), Boundary::Reflect).unwrap();
    let strength = 2.0;
    let p = PnpParams {
        sigma: strength * sigma,
        rho: 1.0 / (strength * strength),
        stop: StopCriteria {
            max_iters: iters,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let (x, _) = pnp_admm(
        &a,
        y.view().into_dyn(),
        d,
        Some(y.view().into_dyn()),
        &p,
        None,
    )
    .unwrap();
    x.into_dimensionality().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters = args
        .iter()
        .position(|a| a == "--iters")
        .and_then(|i| args.get(i + 1))
        .map_or(50, |v| v.parse().expect("--iters N"));
    let opts = SessionOptions::default();
    let net = builtin::denoiser(
        opts,
        DenoiserConfig {
            normalization: Normalization::Affine {
                offset: 0.0,
                scale: 1.0,
            },
            ..Default::default()
        },
    )
    .expect("the shipped denoiser (needs ONNX Runtime)");
    let learned = builtin::deblur(opts).expect("the shipped deblurring model");
    let starlet = StarletDenoiser::new(4).unwrap();
    let unit = Normalization::Affine {
        offset: 0.0,
        scale: 1.0,
    };
    let levels = [("low", 1000.0, 0.005), ("high", 100.0, 0.01)];
    let methods = [
        "observed",
        "(i) Wiener auto",
        "(i') Wiener oracle μ",
        "(ii) PnP starlet",
        "(iii) PnP denoiser",
        "(iv) learned",
    ];
    println!("| image | blur | noise | {} |", methods.join(" | "));
    println!("|---|---|---|{}", "---|".repeat(methods.len()));
    let mut sums = std::collections::BTreeMap::<(String, String), Vec<f64>>::new();
    let mut seed = 0u64;
    for name in ["camera", "coins", "cell"] {
        let scene = load_png(name);
        for blur in ["gaussian", "motion"] {
            let psf: Array2<f64> = read_npy(eval_dir().join(format!("psf_{blur}.npy"))).unwrap();
            let r = psf.nrows() / 2;
            let n = scene.nrows() - 2 * r;
            let truth = scene.slice(s![r..r + n, r..r + n]).to_owned();
            for (lname, peak, sg) in levels {
                seed += 1;
                let y = observe(&scene, &psf, peak, sg, seed);
                let sigma = (y.mapv(|v| v.max(0.0)).mean().unwrap() / peak + sg * sg).sqrt();
                let mut outs: Vec<Array2<f64>> = vec![y.clone()];
                outs.push(wiener(y.view(), psf.view(), Balance::Auto).unwrap());
                let best = (-12..=2)
                    .map(|e| {
                        let mu = 2f64.powi(e);
                        let x = wiener_reflect(y.view(), psf.view(), mu).unwrap();
                        (score(x.view(), truth.view()).0, x)
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .unwrap()
                    .1;
                outs.push(best);
                outs.push(pnp(&y, &psf, &starlet, sigma, iters));
                outs.push(pnp(&y, &psf, &net, sigma, iters));
                outs.push(learned.deblur(y.view(), psf.view(), sigma, unit).unwrap());
                let cells: Vec<String> = outs
                    .iter()
                    .zip(methods)
                    .map(|(x, m)| {
                        let (p, q) = score(x.view(), truth.view());
                        sums.entry((format!("{blur} {lname}"), m.to_string()))
                            .or_default()
                            .push(p);
                        format!("{p:.2} / {q:.3}")
                    })
                    .collect();
                println!("| {name} | {blur} | {lname} | {} |", cells.join(" | "));
            }
        }
    }
    println!();
    println!("Mean PSNR (dB) over the three images:");
    println!();
    println!("| blur, noise | {} |", methods.join(" | "));
    println!("|---|{}", "---|".repeat(methods.len()));
    for blur in ["gaussian", "motion"] {
        for (lname, _, _) in levels {
            let key = format!("{blur} {lname}");
            let cells: Vec<String> = methods
                .iter()
                .map(|m| {
                    let v = &sums[&(key.clone(), m.to_string())];
                    format!("{:.2}", v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect();
            println!("| {key} | {} |", cells.join(" | "));
        }
    }
}
