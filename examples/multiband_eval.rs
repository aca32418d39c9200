//! Evaluation of joint multiband deconvolution on simulated Rubin r/i/z + Euclid VIS scenes
//! (made by `scripts/multiband/simulate.py`): NMSE per band and 1″-aperture flux error of
//!
//! - `single`: each band deconvolved alone (same starlet prior, same super-resolved grid);
//! - `joint`: the three bands with the wide band (defaults: α fitted, noise by MAD, k = 3);
//! - `joint-norefit`: `joint` without its photometric re-fit (`refit_iters = 0`);
//! - `joint-nocolour`: `joint` without the colour re-fit (`colour_refit = false`; the default
//!   before it);
//! - `joint-pnp`: joint with a plug-and-play starlet denoiser in place of the ℓ1 prox;
//! - `baseline`: the authors' published projected-gradient scheme (200 iterations, step
//!   1/(10L), λ_b = 0.3 × band term / VIS term), with the same fitted α and noise levels.
//!
//! Every parameter is chosen automatically (nothing is tuned with the truth, which is only
//! read to score). Run (release, about a minute per level for 16 scenes on 2 cores):
//!
//! ```sh
//! python scripts/multiband/simulate.py --out out/multiband_eval16 --n-scenes 16 --seed 7 --noiseless 0
//! cargo run --release --example multiband_eval -- out/multiband_eval16
//! ```
//!
//! With no argument it runs on the 4 committed scenes of `testdata/multiband`. Writes a JSON
//! summary next to the table on stdout (`--json FILE`). The flux column gives the median
//! |error| over all galaxies and bands, per band, and the median signed error (the bias).
//! Diagnostics: `--refit N` changes the joint methods' re-fit steps (default: the library's),
//! `--alphas simulated` gives them the simulated α instead of fitting it,
//! `--methods a,b` picks the methods.

use ndarray::{Array2, ArrayView2, Axis};
use sparseinv::io::fits::read_fits;
use sparseinv::solvers::multiband::{
    multiband_deconvolve, multiband_deconvolve_pnp, projected_gradient_baseline, BaselineParams,
    MultibandData, MultibandParams, MultibandPrior,
};
use sparseinv::solvers::starlet_denoise::StarletDenoiser;
use std::path::{Path, PathBuf};
use std::time::Instant;

const BANDS: [&str; 3] = ["r", "i", "z"];

fn read(p: &Path) -> Array2<f64> {
    let f = read_fits(p, None).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    f.image2d().expect("2-D").to_owned()
}

fn nmse(x: ArrayView2<f64>, t: ArrayView2<f64>) -> f64 {
    let e: f64 = x.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
    e / t.iter().map(|v| v * v).sum::<f64>()
}

/// Flux in a circular aperture of radius `rad` (pixels) centred at (row, col), each pixel
/// weighted by the fraction of its 5×5 sub-samples inside.
fn aperture(img: ArrayView2<f64>, row: f64, col: f64, rad: f64) -> f64 {
    let (n0, n1) = img.dim();
    let mut s = 0.0;
    let i0 = (row - rad - 1.0).floor().max(0.0) as usize;
    let i1 = ((row + rad + 2.0).ceil() as usize).min(n0);
    let j0 = (col - rad - 1.0).floor().max(0.0) as usize;
    let j1 = ((col + rad + 2.0).ceil() as usize).min(n1);
    for i in i0..i1 {
        for j in j0..j1 {
            let mut inside = 0;
            for a in 0..5 {
                for b in 0..5 {
                    let y = i as f64 - 0.5 + (a as f64 + 0.5) / 5.0;
                    let x = j as f64 - 0.5 + (b as f64 + 0.5) / 5.0;
                    if (y - row).powi(2) + (x - col).powi(2) <= rad * rad {
                        inside += 1;
                    }
                }
            }
            s += img[[i, j]] * inside as f64 / 25.0;
        }
    }
    s
}

#[derive(Default, Clone)]
struct Scores {
    nmse: Vec<[f64; 3]>,
    flux_err: Vec<f64>,
    flux_err_band: [Vec<f64>; 3],
    seconds: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut json_out: Option<PathBuf> = None;
    if let Some(i) = args.iter().position(|a| a == "--json") {
        json_out = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    let mut methods: Vec<String> = ["single", "joint", "joint-pnp", "baseline"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--methods") {
        methods = args.remove(i + 1).split(',').map(String::from).collect();
        args.remove(i);
    }
    let mut refit_iters = MultibandParams::default().refit_iters;
    if let Some(i) = args.iter().position(|a| a == "--refit") {
        refit_iters = args.remove(i + 1).parse().expect("--refit count");
        args.remove(i);
    }
    // Diagnostic: `--alphas simulated` gives the joint methods the simulated α (the
    // default fits them from the data, as a user would).
    let mut alphas_simulated = false;
    if let Some(i) = args.iter().position(|a| a == "--alphas") {
        assert_eq!(args.remove(i + 1), "simulated", "--alphas simulated");
        args.remove(i);
        alphas_simulated = true;
    }
    let mut pnp_strength = 1.0;
    if let Some(i) = args.iter().position(|a| a == "--pnp-strength") {
        pnp_strength = args.remove(i + 1).parse().expect("--pnp-strength number");
        args.remove(i);
    }
    let root = PathBuf::from(args.first().map_or("testdata/multiband", |s| s.as_str()));
    let scenes_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("scenes.json")).expect("scenes.json"),
    )
    .expect("scenes.json parses");
    let psfs: Vec<Array2<f64>> = BANDS
        .iter()
        .map(|b| read(&root.join(format!("psf_{b}.fits"))))
        .collect();
    let psf_vis = read(&root.join("psf_vis.fits"));
    let levels: Vec<(f64, String)> = scenes_json["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            (
                l["peak_snr"].as_f64().expect("snr"),
                l["dir"].as_str().expect("dir").to_string(),
            )
        })
        .collect();
    let scenes = scenes_json["scenes"].as_array().expect("scenes");
    let mut summary = serde_json::Map::new();
    println!(
        "{} scenes from {}; methods {}",
        scenes.len(),
        root.display(),
        methods.join(", ")
    );
    for (snr, dir) in &levels {
        let mut scores: Vec<Scores> = vec![Scores::default(); methods.len()];
        let mut alpha_log: Vec<Vec<f64>> = Vec::new();
        for sc in scenes {
            let sdir = root.join(sc["dir"].as_str().expect("dir"));
            let truth: Vec<Array2<f64>> = BANDS
                .iter()
                .map(|b| read(&sdir.join(format!("truth_{b}.fits"))))
                .collect();
            let bands: Vec<Array2<f64>> = BANDS
                .iter()
                .map(|b| read(&sdir.join(dir).join(format!("{b}.fits"))))
                .collect();
            let vis = read(&sdir.join(dir).join("vis.fits"));
            let gals: Vec<(f64, f64)> = sc["galaxies"]
                .as_array()
                .expect("galaxies")
                .iter()
                .map(|g| {
                    let xy = &g["fine_pixel_xy_0based"];
                    (xy[1].as_f64().unwrap(), xy[0].as_f64().unwrap())
                })
                .filter(|&(r, c)| (5.0..123.0).contains(&r) && (5.0..123.0).contains(&c))
                .collect();
            let data = MultibandData {
                bands: bands.iter().map(|b| b.view()).collect(),
                band_psfs: psfs.iter().map(|p| p.view()).collect(),
                band_masks: vec![],
                wide: Some((vis.view(), psf_vis.view(), None)),
            };
            let mut joint_fit: Option<(Vec<f64>, Vec<f64>)> = None;
            for (m, method) in methods.iter().enumerate() {
                let t0 = Instant::now();
                let x: Vec<Array2<f64>> = match method.as_str() {
                    "single" => (0..3)
                        .map(|b| {
                            let d = MultibandData {
                                bands: vec![bands[b].view()],
                                band_psfs: vec![psfs[b].view()],
                                band_masks: vec![],
                                wide: None,
                            };
                            let r = multiband_deconvolve(&d, &MultibandParams::default())
                                .expect("single");
                            r.x.index_axis(Axis(0), 0).to_owned()
                        })
                        .collect(),
                    "joint" | "joint-pnp" | "joint-pos" | "joint-norefit" | "joint-nocolour" => {
                        let p = MultibandParams {
                            prior: match method.as_str() {
                                "joint-pos" => MultibandPrior::Positivity,
                                _ => MultibandPrior::default(),
                            },
                            alphas: alphas_simulated.then(|| {
                                BANDS
                                    .iter()
                                    .map(|b| scenes_json["alpha"][*b].as_f64().expect("α"))
                                    .collect()
                            }),
                            refit_iters: if method == "joint-norefit" {
                                0
                            } else {
                                refit_iters
                            },
                            colour_refit: method != "joint-nocolour",
                            ..Default::default()
                        };
                        let r = if method == "joint-pnp" {
                            let den = StarletDenoiser::new(4).expect("denoiser");
                            multiband_deconvolve_pnp(&data, &p, &den, pnp_strength).expect("pnp")
                        } else {
                            multiband_deconvolve(&data, &p).expect("joint")
                        };
                        if joint_fit.is_none() {
                            if let Some(f) = &r.alpha_fit {
                                alpha_log.push(f.alphas.clone());
                            }
                            joint_fit = Some((r.alphas.clone().expect("α"), r.sigmas.clone()));
                        }
                        r.x.axis_iter(Axis(0)).map(|v| v.to_owned()).collect()
                    }
                    "baseline" => {
                        let (alphas, sigmas) = match &joint_fit {
                            Some(f) => f.clone(),
                            None => {
                                let r = multiband_deconvolve(
                                    &data,
                                    &MultibandParams {
                                        stop: sparseinv::solvers::iter::StopCriteria {
                                            max_iters: 1,
                                            ..Default::default()
                                        },
                                        ..Default::default()
                                    },
                                )
                                .expect("fit");
                                (r.alphas.expect("α"), r.sigmas)
                            }
                        };
                        let x = projected_gradient_baseline(
                            &data,
                            2,
                            &[],
                            &alphas,
                            &sigmas,
                            &BaselineParams::default(),
                        )
                        .expect("baseline");
                        x.axis_iter(Axis(0)).map(|v| v.to_owned()).collect()
                    }
                    other => panic!("unknown method {other}"),
                };
                scores[m].seconds += t0.elapsed().as_secs_f64();
                let mut e = [0.0; 3];
                for b in 0..3 {
                    e[b] = nmse(x[b].view(), truth[b].view());
                    for &(r, c) in &gals {
                        let ft = aperture(truth[b].view(), r, c, 5.0);
                        let fx = aperture(x[b].view(), r, c, 5.0);
                        scores[m].flux_err.push((fx - ft) / ft);
                        scores[m].flux_err_band[b].push((fx - ft) / ft);
                    }
                }
                scores[m].nmse.push(e);
            }
        }
        println!("\npeak SNR {snr}: mean NMSE per band (r, i, z), mean, median |1\" aperture flux error|, seconds per scene");
        let mut lvl = serde_json::Map::new();
        if !alpha_log.is_empty() {
            let n = alpha_log.len() as f64;
            let mean: Vec<f64> = (0..3)
                .map(|b| alpha_log.iter().map(|a| a[b]).sum::<f64>() / n)
                .collect();
            let sd: Vec<f64> = (0..3)
                .map(|b| {
                    (alpha_log
                        .iter()
                        .map(|a| (a[b] - mean[b]).powi(2))
                        .sum::<f64>()
                        / n)
                        .sqrt()
                })
                .collect();
            let truth = &scenes_json["alpha"];
            println!(
                "  fitted α (mean ± sd over scenes): r {:.3} ± {:.3}, i {:.3} ± {:.3}, z {:.3} ± {:.3}; simulated {}",
                mean[0], sd[0], mean[1], sd[1], mean[2], sd[2], truth
            );
            lvl.insert("alpha_mean".into(), serde_json::json!(mean));
            lvl.insert("alpha_sd".into(), serde_json::json!(sd));
        }
        let mut single_mean = None;
        for (m, method) in methods.iter().enumerate() {
            let s = &scores[m];
            let n = s.nmse.len() as f64;
            let per: Vec<f64> = (0..3)
                .map(|b| s.nmse.iter().map(|e| e[b]).sum::<f64>() / n)
                .collect();
            let mean = per.iter().sum::<f64>() / 3.0;
            let mut fe: Vec<f64> = s.flux_err.iter().map(|v| v.abs()).collect();
            let med = median(&mut fe);
            let mut signed = s.flux_err.clone();
            let bias = median(&mut signed);
            let per_band: Vec<f64> = s
                .flux_err_band
                .iter()
                .map(|v| median(&mut v.iter().map(|e| e.abs()).collect::<Vec<_>>()))
                .collect();
            if method == "single" {
                single_mean = Some(mean);
            }
            let ratio =
                single_mean.map_or(String::new(), |sm| format!("  ({:.2}× single)", mean / sm));
            println!(
                "  {method:>10}: {:.4} {:.4} {:.4}  mean {:.4}{ratio}  flux {:.2} % (r/i/z {:.2}/{:.2}/{:.2}, median signed {:+.2} %)  {:.2} s",
                per[0],
                per[1],
                per[2],
                mean,
                100.0 * med,
                100.0 * per_band[0],
                100.0 * per_band[1],
                100.0 * per_band[2],
                100.0 * bias,
                s.seconds / n
            );
            lvl.insert(
                method.clone(),
                serde_json::json!({
                    "nmse_per_band": per, "nmse_mean": mean,
                    "median_abs_aperture_flux_error": med,
                    "median_signed_aperture_flux_error": bias,
                    "seconds_per_scene": s.seconds / n, "scenes": s.nmse.len()
                }),
            );
        }
        summary.insert(format!("snr{snr}"), serde_json::Value::Object(lvl));
    }
    if let Some(p) = json_out {
        std::fs::write(&p, serde_json::to_string_pretty(&summary).expect("json")).expect("write");
        println!("\nwrote {}", p.display());
    }
}
