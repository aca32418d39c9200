//! Evaluation of the VBLE-xz latent-space restoration (issue 17) on the shipped held-out
//! 128×128 tiles (`testdata/vble/`, made by `models/train/export_vble_eval.py`), against the
//! exact Gaussian posterior of a stationary prior (Wiener/Tikhonov), plug-and-play ADMM with
//! the shipped denoiser, and the MAP of the same latent prior.
//!
//! ```text
//! cargo run --release -p sparseinv-models --example vble_eval -- \
//!     [--json out/vble/vble_eval.json] [--panel out/vble/panel] [--jobs 2] [--threads 1] \
//!     [--tasks blur,down2,mask] [--noise 0.01,0.03] [--tiles N] [--steps 200] \
//!     [--samples 100] [--gauss-samples 100] [--data testdata/vble]
//! ```
//!
//! Runtime of the full run (3 tasks × 2 noise levels × 5 tiles, defaults): 592 s with
//! `--jobs 2 --threads 1` on the 2-core development box while shared with other work (load
//! ≈ 8; `models/README.md`, "Evaluation on held-out tiles"); VBLE-xz took 8–13 s per tile
//! under that load.
//!
//! Tasks, each at σ_n = 0.01 and 0.03 (white Gaussian noise on images in [0, 1]):
//! - `blur`: periodic convolution by a 15×15 Gaussian PSF of σ = 1.5 px (unit sum), as
//!   `models/train/vble_reference.py`;
//! - `down2`: 2× super-resolution, `y` = 2×2 block means ([`Downsample`] in mean mode,
//!   adjoint = replication / 4, checked by a dot test here);
//! - `mask`: inpainting, a random 50 % of the pixels kept ([`Mask`]; the others are 0 in `y`
//!   and carry no information).
//!
//! Methods (the estimate is the posterior mean where there is a posterior):
//! - `gauss`: the exact Gaussian posterior `N(m, C)`, `C = (AᵀA/σ_n² + Σ⁻¹)⁻¹`, with the
//!   stationary prior `N(μ, Σ)` of the training power spectrum (`train_psd128.npy`, the
//!   spectrum of the reference's Wiener filter; `μ` and the zero-frequency power from
//!   `train_mean_stats.npy`): closed form in Fourier for the blur (mean = Wiener filter,
//!   constant std), preconditioned conjugate gradients for the mean and `--gauss-samples`
//!   perturbation–optimisation samples for the std otherwise
//!   ([`sparseinv_solvers::gaussian`]);
//! - `pnp`: PnP-ADMM with the shipped denoiser at the library's defaults (strength 3: σ_d =
//!   3σ_n, ρ = 1/9, 30 iterations; as `sparseinv deblur --method pnp-admm`), started from the
//!   same initial image as VBLE;
//! - `map`, `z`, `xz`: [`restore`] with [`Variant::Map`], [`Variant::ZOnly`] and
//!   [`Variant::VbleXz`] (sidecar defaults: 200 steps, 100 samples).
//!
//! Calibration: the fraction of pixels with `|x − mean| ≤ q·std` for the central Gaussian
//! intervals (50/80/90/95 %, and a grid of `q` in the JSON for the calibration curve).
//! Prints one markdown table per task (PSNR / SSIM), a coverage table and a timing table;
//! `--json` writes every per-tile number; `--panel DIR` writes the truth, observation,
//! means and stds of the first tile at the highest noise level as `.npy` for
//! `models/train/plot_vble_eval.py`.

use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, Zip};
use ndarray_npy::{read_npy, write_npy};
use serde_json::{json, Value};
use sparseinv_models::vble::{restore, Variant, VbleParams, VblePrior};
use sparseinv_models::{builtin, DenoiserConfig, Normalization, SessionOptions, Tiling};
use sparseinv_solvers::gaussian::{
    circulant_posterior, posterior_moments, PosteriorParams, StationaryGaussian,
};
use sparseinv_solvers::iter::StopCriteria;
use sparseinv_solvers::metrics::{psnr, ssim};
use sparseinv_solvers::op::{Boundary, Conv2d, Downsample, LinearOperator, Mask};
use sparseinv_solvers::pnp::{
    pnp_admm, pnp_admm_preconditioned, CirculantNormalInverse, PnpParams,
};
use sparseinv_solvers::random::{rand_uniform, randn};
use sparseinv_solvers::testing::dot_test;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;
/// Named arrays of one case (for the panel).
type Panel = Vec<(String, Array2<f64>)>;
/// One method's output: key, mean, optional std, seconds.
type Estimate = (&'static str, Array2<f64>, Option<Array2<f64>>, f64);

/// Central Gaussian interval levels and their half-widths `q_p = Φ⁻¹((1 + p)/2)`.
const LEVELS: [(f64, f64); 4] = [
    (0.50, 0.674_489_750_196_081_7),
    (0.80, 1.281_551_565_544_600_4),
    (0.90, 1.644_853_626_951_472_2),
    (0.95, 1.959_963_984_540_054),
];
/// Methods in table order, with their labels.
const METHODS: [(&str, &str); 6] = [
    ("init", "A⁺y"),
    ("gauss", "Gaussian (Wiener)"),
    ("pnp", "PnP-ADMM"),
    ("map", "MAP (latent)"),
    ("z", "VBLE z-only"),
    ("xz", "VBLE-xz"),
];
const UQ_METHODS: [&str; 3] = ["gauss", "z", "xz"];
/// PnP defaults of the library (`sparseinv::pipeline::PNP_DEFAULT_STRENGTH`, `..._ITERS`).
const PNP_STRENGTH: f64 = 3.0;
const PNP_ITERS: usize = 30;

struct Args {
    data: PathBuf,
    json: Option<PathBuf>,
    panel: Option<PathBuf>,
    jobs: usize,
    threads: usize,
    tasks: Vec<String>,
    noise: Vec<f64>,
    tiles: Option<usize>,
    steps: Option<usize>,
    samples: Option<usize>,
    gauss_samples: usize,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vble"),
        json: None,
        panel: None,
        jobs: 2,
        threads: 1,
        tasks: vec!["blur".into(), "down2".into(), "mask".into()],
        noise: vec![0.01, 0.03],
        tiles: None,
        steps: None,
        samples: None,
        gauss_samples: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--data" => a.data = v()?.into(),
            "--json" => a.json = Some(v()?.into()),
            "--panel" => a.panel = Some(v()?.into()),
            "--jobs" => a.jobs = v()?.parse()?,
            "--threads" => a.threads = v()?.parse()?,
            "--tasks" => a.tasks = v()?.split(',').map(str::to_string).collect(),
            "--noise" => a.noise = v()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--tiles" => a.tiles = Some(v()?.parse()?),
            "--steps" => a.steps = Some(v()?.parse()?),
            "--samples" => a.samples = Some(v()?.parse()?),
            "--gauss-samples" => a.gauss_samples = v()?.parse()?,
            s => return Err(format!("unknown argument `{s}`").into()),
        }
    }
    for t in &a.tasks {
        if !["blur", "down2", "mask"].contains(&t.as_str()) {
            return Err(format!("unknown task `{t}` (blur, down2, mask)").into());
        }
    }
    if a.jobs == 0 || a.threads == 0 {
        return Err("--jobs and --threads must be >= 1".into());
    }
    Ok(a)
}

/// The 15×15 Gaussian PSF of σ = 1.5 px, unit sum, centre (7, 7) (as the reference).
fn gaussian_psf() -> Array2<f64> {
    let psf = Array2::from_shape_fn((15, 15), |(i, j)| {
        let (a, b) = (i as f64 - 7.0, j as f64 - 7.0);
        (-0.5 * (a * a + b * b) / 2.25).exp()
    });
    &psf / psf.sum()
}

/// One problem: task, noise level index, tile index.
#[derive(Clone, Copy)]
struct Case {
    task: usize,
    noise: usize,
    tile: usize,
}

/// The operator of a task (seeded mask per tile and noise level).
fn operator(task: &str, shape: [usize; 2], seed: u64) -> Res<Box<dyn LinearOperator<f64>>> {
    Ok(match task {
        "blur" => Box::new(Conv2d::new(
            shape,
            gaussian_psf().view(),
            Boundary::Circular,
        )?),
        "down2" => Box::new(Downsample::uniform(&shape, 2)?.mean()),
        "mask" => Box::new(Mask::new(rand_uniform(&shape, seed).mapv(|u| u < 0.5))),
        t => return Err(format!("unknown task {t}").into()),
    })
}

/// The initial image of the iterative methods: `x₀ = Aᵀ(w y) ⊘ Aᵀw` (w = 1; `A⁺y` for these
/// operators: `Aᵀy` for the unit-sum blur, `4 Aᵀ y` for the block mean, the kept pixels for
/// the mask), pixels with `Aᵀw = 0` set to the mean of the others: what
/// `VbleProblem::initial_image` computes.
fn initial_image(op: &dyn LinearOperator<f64>, y: &ArrayD<f64>) -> Res<Array2<f64>> {
    let aty = op.adjoint(y.view())?;
    let atw = op.adjoint(ArrayD::from_elem(y.raw_dim(), 1.0).view())?;
    let mut x = Zip::from(&aty)
        .and(&atw)
        .map_collect(|&a, &w| if w > 0.0 { a / w } else { f64::NAN });
    let ok: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let fill = ok.iter().sum::<f64>() / ok.len().max(1) as f64;
    x.mapv_inplace(|v| if v.is_finite() { v } else { fill });
    Ok(x.into_dimensionality::<Ix2>()?)
}

/// Fraction of pixels with `|x − m| ≤ q s` for each `q`.
fn coverage(x: &Array2<f64>, m: &Array2<f64>, s: &Array2<f64>, qs: &[f64]) -> Vec<f64> {
    let mut t: Vec<f64> = Zip::from(x)
        .and(m)
        .and(s)
        .map_collect(|&x, &m, &s| {
            let e = (x - m).abs();
            if s > 0.0 {
                e / s
            } else if e == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        })
        .into_iter()
        .collect();
    t.sort_by(f64::total_cmp);
    let n = t.len() as f64;
    qs.iter()
        .map(|&q| t.partition_point(|&v| v <= q) as f64 / n)
        .collect()
}

/// The `q` grid of the calibration curve in the JSON (nominal level `erf(q/√2)`).
fn q_grid() -> Vec<f64> {
    (0..=80).map(|k| k as f64 * 0.05).collect()
}

struct Tools {
    prior: VblePrior,
    denoiser: sparseinv_models::OnnxDenoiser,
}

fn tools(threads: usize) -> Res<Tools> {
    let so = SessionOptions {
        intra_threads: threads,
        ..Default::default()
    };
    let config = DenoiserConfig {
        normalization: Normalization::Affine {
            offset: 0.0,
            scale: 1.0,
        },
        tiling: Tiling::default(),
        ..Default::default()
    };
    Ok(Tools {
        prior: VblePrior::builtin(so)?,
        denoiser: builtin::denoiser(so, config)?,
    })
}

struct Ctx<'a> {
    args: &'a Args,
    tiles: &'a Array3<f64>,
    names: &'a [String],
    gauss: &'a StationaryGaussian,
}

/// Run every method on one case; returns the JSON row and (for the panel) the arrays.
fn run_case(ctx: &Ctx<'_>, t: &Tools, c: Case) -> Res<(Value, Panel)> {
    let task = ctx.args.tasks[c.task].as_str();
    let sn = ctx.args.noise[c.noise];
    let x = ctx.tiles.index_axis(Axis(0), c.tile).to_owned();
    let shape = [x.nrows(), x.ncols()];
    let seed = 10_000 * c.task as u64 + 1000 * c.noise as u64 + c.tile as u64;
    let op = operator(task, shape, 77 + seed)?;
    let mut y = op.apply(x.view().into_dyn())? + randn::<f64>(op.range_shape(), seed) * sn;
    if task == "mask" {
        // the dropped pixels are not observed: 0 in y (A y = y), no information
        y = op.apply(y.view())?;
    }
    let x0 = initial_image(op.as_ref(), &y)?;
    let mut est: Vec<Estimate> = Vec::new();
    est.push(("init", x0.clone(), None, 0.0));

    // (i) exact Gaussian posterior
    let t0 = Instant::now();
    let (gm, gs) = if task == "blur" {
        let conv = Conv2d::new(shape, gaussian_psf().view(), Boundary::Circular)?;
        let (m, s) = circulant_posterior(ctx.gauss, &conv, y.view().into_dimensionality()?, sn)?;
        let sd = Array2::from_elem(m.dim(), s);
        (m, sd)
    } else {
        // preconditioner: circulant approximations of AᵀA (the kept fraction for the
        // mask; for the 2×2 block mean, |H_box(u, v)|²/4 = cos²(πu/n₀) cos²(πv/n₁)/4)
        let approx = if task == "mask" {
            let kept = op
                .adjoint(ArrayD::from_elem(y.raw_dim(), 1.0).view())?
                .sum()
                / x.len() as f64;
            Array2::from_elem(x.dim(), kept)
        } else {
            Array2::from_shape_fn(x.dim(), |(u, v)| {
                let pi = std::f64::consts::PI;
                let (a, b) = (
                    (pi * u as f64 / shape[0] as f64).cos(),
                    (pi * v as f64 / shape[1] as f64).cos(),
                );
                a * a * b * b / 4.0
            })
        };
        let p = PosteriorParams {
            tol: 1e-6,
            max_iters: 3000,
            normal_approx: Some(approx),
        };
        posterior_moments(
            ctx.gauss,
            op.as_ref(),
            y.view(),
            sn,
            ctx.args.gauss_samples,
            500 + seed * 1000,
            &p,
        )?
    };
    est.push(("gauss", gm, Some(gs), t0.elapsed().as_secs_f64()));

    // (ii) PnP-ADMM with the shipped denoiser
    let t0 = Instant::now();
    let f2 = PNP_STRENGTH * PNP_STRENGTH;
    let pp = PnpParams {
        sigma: PNP_STRENGTH * sn,
        lambda: 1.0 / f2,
        rho: 1.0 / f2,
        stop: StopCriteria {
            max_iters: PNP_ITERS,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let xp = if task == "blur" {
        let conv = Conv2d::new(shape, gaussian_psf().view(), Boundary::Circular)?;
        let m = CirculantNormalInverse::new(shape, gaussian_psf().view(), pp.rho)?;
        pnp_admm_preconditioned(
            &conv,
            &m,
            y.view(),
            &t.denoiser,
            Some(x0.view().into_dyn()),
            &pp,
            None,
        )?
        .0
    } else {
        pnp_admm(
            op.as_ref(),
            y.view(),
            &t.denoiser,
            Some(x0.view().into_dyn()),
            &pp,
            None,
        )?
        .0
    };
    est.push((
        "pnp",
        xp.into_dimensionality::<Ix2>()?,
        None,
        t0.elapsed().as_secs_f64(),
    ));

    // (iii)–(v) the latent prior
    let mut vinfo = serde_json::Map::new();
    for (key, variant) in [
        ("map", Variant::Map),
        ("z", Variant::ZOnly),
        ("xz", Variant::VbleXz),
    ] {
        let mut p = VbleParams::new(sn);
        p.steps = ctx.args.steps;
        p.samples = ctx.args.samples;
        p.seed = seed;
        p.variant = variant;
        let t0 = Instant::now();
        let r = restore(&t.prior, op.as_ref(), y.view(), &p)?;
        let secs = t0.elapsed().as_secs_f64();
        vinfo.insert(
            key.into(),
            json!({
                "onnx_seconds": r.report.onnx_seconds,
                "rust_seconds": r.report.rust_seconds,
                "loss_first": r.report.loss.first(),
                "loss_last": r.report.loss.last(),
                "mean_a_z": if r.report.mean_a_z.is_finite() { Some(r.report.mean_a_z) } else { None },
                "mean_b": if r.report.mean_b.is_finite() { Some(r.report.mean_b) } else { None },
            }),
        );
        est.push((key, r.mean, r.std, secs));
    }

    let qs = q_grid();
    let mut row = serde_json::Map::new();
    row.insert("task".into(), json!(task));
    row.insert("sigma_n".into(), json!(sn));
    row.insert("tile".into(), json!(ctx.names[c.tile]));
    row.insert(
        "psnr_observed".into(),
        json!(psnr(y.view(), op.apply(x.view().into_dyn())?.view(), 1.0)?),
    );
    row.insert("vble".into(), Value::Object(vinfo));
    let mut panel = Vec::new();
    for (key, m, s, secs) in &est {
        let mut e = serde_json::Map::new();
        e.insert("psnr".into(), json!(psnr(m.view(), x.view(), 1.0)?));
        e.insert("ssim".into(), json!(ssim(m.view(), x.view(), 1.0)?));
        e.insert("seconds".into(), json!(secs));
        if let Some(s) = s {
            let lv: Vec<f64> = LEVELS.iter().map(|l| l.1).collect();
            e.insert("coverage".into(), json!(coverage(&x, m, s, &lv)));
            e.insert("coverage_q".into(), json!(coverage(&x, m, s, &qs)));
            let rmse = (Zip::from(&x)
                .and(m)
                .fold(0.0, |a, &x, &m| a + (x - m) * (x - m))
                / x.len() as f64)
                .sqrt();
            e.insert("rmse".into(), json!(rmse));
            e.insert("mean_std".into(), json!(s.mean()));
            e.insert(
                "rms_std".into(),
                json!((s.mapv(|v| v * v).mean().unwrap_or(0.0)).sqrt()),
            );
            panel.push((format!("{key}_std"), s.clone()));
        }
        panel.push((format!("{key}_mean"), m.clone()));
        row.insert((*key).into(), Value::Object(e));
    }
    panel.push(("truth".into(), x));
    panel.push(("observed".into(), y.into_dimensionality::<Ix2>()?));
    Ok((Value::Object(row), panel))
}

fn mean_of(rows: &[&Value], f: impl Fn(&Value) -> Option<f64>) -> f64 {
    let v: Vec<f64> = rows.iter().filter_map(|r| f(r)).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let tiles32: Array3<f32> = read_npy(args.data.join("tiles.npy"))?;
    let mut tiles = tiles32.mapv(f64::from);
    if let Some(n) = args.tiles {
        tiles = tiles
            .slice_axis(Axis(0), (0..n.min(tiles.len_of(Axis(0)))).into())
            .to_owned();
    }
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(args.data.join("tiles.json"))?)?;
    let names: Vec<String> = meta["tiles"]
        .as_array()
        .ok_or("tiles.json: no `tiles` list")?
        .iter()
        .map(|v| v.as_str().unwrap_or("?").to_string())
        .collect();
    let mut psd: Array2<f64> = read_npy(args.data.join("train_psd128.npy"))?;
    let stats: ndarray::Array1<f64> = read_npy(args.data.join("train_mean_stats.npy"))?;
    let n_pix = psd.len() as f64;
    // zero frequency: the periodogram of mean-subtracted crops has none; a proper prior on the
    // mean: |F(x − μ)|²(0)/N = N (mean(x) − μ)², expectation N · var(crop means)
    psd[[0, 0]] = n_pix * stats[1];
    let gauss = StationaryGaussian::new(stats[0], psd)?;
    let shape = [tiles.shape()[1], tiles.shape()[2]];
    for task in &args.tasks {
        let op = operator(task, shape, 1)?;
        let d = dot_test(op.as_ref(), 3);
        println!("adjoint dot test {task}: relative error {:.1e}", d.rel_err);
        if d.rel_err > 1e-12 {
            return Err(format!("{task}: adjoint is not exact ({:.1e})", d.rel_err).into());
        }
    }
    let nt = tiles.len_of(Axis(0));
    let cases: Vec<Case> = (0..args.tasks.len())
        .flat_map(|task| {
            (0..args.noise.len())
                .flat_map(move |noise| (0..nt).map(move |tile| Case { task, noise, tile }))
        })
        .collect();
    println!(
        "{} cases ({} tasks × {} noise levels × {nt} tiles), {} jobs × {} ONNX threads; load {}",
        cases.len(),
        args.tasks.len(),
        args.noise.len(),
        args.jobs,
        args.threads,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let ctx = Ctx {
        args: &args,
        tiles: &tiles,
        names: &names,
        gauss: &gauss,
    };
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Value)>> = Mutex::new(Vec::new());
    let panel_case = cases
        .iter()
        .position(|c| c.task == 0 && c.noise + 1 == args.noise.len() && c.tile == 0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(cases.len()) {
            s.spawn(|| {
                let t = match tools(args.threads) {
                    Ok(t) => t,
                    Err(e) => {
                        *failure.lock().unwrap() = Some(e.to_string());
                        return;
                    }
                };
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= cases.len() || failure.lock().unwrap().is_some() {
                        break;
                    }
                    match run_case(&ctx, &t, cases[k]) {
                        Ok((row, panel)) => {
                            let f = |m: &str| row[m]["psnr"].as_f64().unwrap_or(f64::NAN);
                            println!(
                                "[{:6.0} s] {} σ_n={} {:16} gauss {:.2} pnp {:.2} map {:.2} z {:.2} xz {:.2} | cov90 gauss {:.3} z {:.3} xz {:.3}",
                                start.elapsed().as_secs_f64(),
                                row["task"].as_str().unwrap_or(""),
                                row["sigma_n"],
                                row["tile"].as_str().unwrap_or(""),
                                f("gauss"), f("pnp"), f("map"), f("z"), f("xz"),
                                row["gauss"]["coverage"][2].as_f64().unwrap_or(f64::NAN),
                                row["z"]["coverage"][2].as_f64().unwrap_or(f64::NAN),
                                row["xz"]["coverage"][2].as_f64().unwrap_or(f64::NAN),
                            );
                            if Some(k) == panel_case {
                                if let Some(dir) = &args.panel {
                                    let w = || -> Res<()> {
                                        std::fs::create_dir_all(dir)?;
                                        for (name, a) in &panel {
                                            write_npy(dir.join(format!("{name}.npy")), a)?;
                                        }
                                        Ok(())
                                    };
                                    if let Err(e) = w() {
                                        *failure.lock().unwrap() = Some(e.to_string());
                                    }
                                }
                            }
                            results.lock().unwrap().push((k, row));
                        }
                        Err(e) => {
                            *failure.lock().unwrap() = Some(format!("case {k}: {e}"));
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e.into());
    }
    let total = start.elapsed().as_secs_f64();
    let mut rows = results.into_inner().unwrap();
    rows.sort_by_key(|r| r.0);
    let rows: Vec<Value> = rows.into_iter().map(|r| r.1).collect();

    println!(
        "\n{} held-out 128×128 tiles, {} s in all ({} jobs × {} ONNX threads)\n",
        nt,
        total.round(),
        args.jobs,
        args.threads
    );
    let mut summary = Vec::new();
    for task in &args.tasks {
        println!("**{task}**: mean PSNR (dB) / SSIM of the estimate\n");
        let head: Vec<&str> = METHODS.iter().map(|m| m.1).collect();
        println!("| σ_n | observed PSNR | {} |", head.join(" | "));
        println!("|---|---|{}", "---|".repeat(METHODS.len()));
        for &sn in &args.noise {
            let rs: Vec<&Value> = rows
                .iter()
                .filter(|r| r["task"] == json!(task) && r["sigma_n"].as_f64() == Some(sn))
                .collect();
            let mut cells = Vec::new();
            let mut srow = serde_json::Map::new();
            for (m, _) in METHODS {
                let p = mean_of(&rs, |r| r[m]["psnr"].as_f64());
                let s = mean_of(&rs, |r| r[m]["ssim"].as_f64());
                cells.push(format!("{p:.2} / {s:.3}"));
                let mut e = json!({"psnr": p, "ssim": s, "seconds": mean_of(&rs, |r| r[m]["seconds"].as_f64())});
                if UQ_METHODS.contains(&m) {
                    let cov: Vec<f64> = (0..LEVELS.len())
                        .map(|i| mean_of(&rs, |r| r[m]["coverage"][i].as_f64()))
                        .collect();
                    e["coverage"] = json!(cov);
                }
                srow.insert(m.into(), e);
            }
            srow.insert("task".into(), json!(task));
            srow.insert("sigma_n".into(), json!(sn));
            println!(
                "| {sn} | {:.2} | {} |",
                mean_of(&rs, |r| r["psnr_observed"].as_f64()),
                cells.join(" | ")
            );
            summary.push(Value::Object(srow));
        }
        println!();
    }
    println!("Coverage of the central 50 / 80 / 90 / 95 % intervals mean ± q·std (all pixels of all tiles)\n");
    println!("| task | σ_n | Gaussian posterior | VBLE z-only | VBLE-xz |");
    println!("|---|---|---|---|---|");
    for s in &summary {
        let c = |m: &str| {
            (0..LEVELS.len())
                .map(|i| format!("{:.2}", s[m]["coverage"][i].as_f64().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            s["task"].as_str().unwrap_or(""),
            s["sigma_n"],
            c("gauss"),
            c("z"),
            c("xz")
        );
    }
    println!("\nMean seconds per tile (each job single-threaded in ONNX Runtime)\n");
    println!(
        "| task | σ_n | {} |",
        METHODS[1..]
            .iter()
            .map(|m| m.1)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(METHODS.len() - 1));
    for s in &summary {
        let cells: Vec<String> = METHODS[1..]
            .iter()
            .map(|m| format!("{:.1}", s[m.0]["seconds"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!(
            "| {} | {} | {} |",
            s["task"].as_str().unwrap_or(""),
            s["sigma_n"],
            cells.join(" | ")
        );
    }
    if let Some(path) = &args.json {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let out = json!({
            "description": "VBLE evaluation on held-out tiles (models/examples/vble_eval.rs)",
            "levels": LEVELS.iter().map(|l| l.0).collect::<Vec<_>>(),
            "level_q": LEVELS.iter().map(|l| l.1).collect::<Vec<_>>(),
            "q_grid": q_grid(),
            "tasks": args.tasks,
            "noise": args.noise,
            "tiles": names.iter().take(nt).collect::<Vec<_>>(),
            "steps": args.steps,
            "samples": args.samples,
            "gauss_samples": args.gauss_samples,
            "pnp": {"strength": PNP_STRENGTH, "iters": PNP_ITERS},
            "jobs": args.jobs,
            "onnx_threads": args.threads,
            "seconds": total,
            "rows": rows,
            "summary": summary,
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}
