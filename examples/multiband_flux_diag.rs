//! Diagnostic of the 1″-aperture photometry of joint multiband deconvolution: where does the
//! flux error come from? Per scene of a simulated set (`scripts/multiband/simulate.py`, written
//! with `--noiseless N` so that the noise-free images exist), it runs the joint solve on
//!
//! - the noisy images (the default method);
//! - the noise-free images with the noisy run's noise levels and α given (same weights, same
//!   thresholds): its flux error is the deterministic part (prior bias, what the data leave
//!   undetermined, unfinished iterations); the noisy minus noise-free error is the noise part;
//!
//! and prints the median |error| of each, with reference noise levels: the noise of the plain
//! 1″ aperture on the band image itself (coarse grid, `σ_b √N_ap`) over the galaxy's flux.
//! Options for the noise-free run: `--clean-alpha sim` (the simulated α), `--clean-iters N`,
//! `--clean-refit N`, `--clean-k K`; `--save DIR` writes both estimates as FITS cubes.
//!
//! ```sh
//! python scripts/multiband/simulate.py --out out/multiband_tune16 --n-scenes 16 --seed 5 --noiseless 16
//! cargo run --release --example multiband_flux_diag -- out/multiband_tune16 snr100
//! ```

use ndarray::{Array2, ArrayView2, Axis};
use sparseinv::io::fits::{read_fits, write_fits, WriteOptions};
use sparseinv::solvers::multiband::{
    multiband_deconvolve, MultibandData, MultibandParams, MultibandPrior,
};
use std::path::{Path, PathBuf};

const BANDS: [&str; 3] = ["r", "i", "z"];

/// Per galaxy × band: (noisy error, noise-free error, plain-aperture noise, truth flux).
type Row = (f64, f64, f64, f64);

fn read(p: &Path) -> Array2<f64> {
    let f = read_fits(p, None).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    f.image2d().expect("2-D").to_owned()
}

/// Aperture flux (radius `rad` pixels, 5×5 sub-samples per pixel) and the aperture's area in
/// pixels (sum of the fractions).
fn aperture(img: ArrayView2<f64>, row: f64, col: f64, rad: f64) -> (f64, f64) {
    let (n0, n1) = img.dim();
    let (mut s, mut area) = (0.0, 0.0);
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
            area += inside as f64 / 25.0;
        }
    }
    (s, area)
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

fn med_abs(v: &[f64]) -> f64 {
    median(&mut v.iter().map(|e| e.abs()).collect::<Vec<_>>())
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opt = |name: &str| -> Option<String> {
        let i = args.iter().position(|a| a == name)?;
        let v = args.remove(i + 1);
        args.remove(i);
        Some(v)
    };
    let clean_alpha_sim = opt("--clean-alpha").is_some();
    let clean_iters: Option<usize> = opt("--clean-iters").map(|v| v.parse().unwrap());
    let clean_refit: Option<usize> = opt("--clean-refit").map(|v| v.parse().unwrap());
    let clean_k: Option<f64> = opt("--clean-k").map(|v| v.parse().unwrap());
    let save: Option<PathBuf> = opt("--save").map(PathBuf::from);
    let root = PathBuf::from(args.first().expect("set directory"));
    let level = args.get(1).map_or("snr100", |s| s.as_str()).to_string();
    let scenes_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("scenes.json")).expect("scenes.json"),
    )
    .expect("scenes.json parses");
    let psfs: Vec<Array2<f64>> = BANDS
        .iter()
        .map(|b| read(&root.join(format!("psf_{b}.fits"))))
        .collect();
    let psf_vis = read(&root.join("psf_vis.fits"));
    let scenes = scenes_json["scenes"].as_array().expect("scenes");
    // per galaxy × band: (noisy error, noise-free error, reference aperture noise, truth flux)
    let mut rows: Vec<Row> = Vec::new();
    for sc in scenes {
        let sdir = root.join(sc["dir"].as_str().expect("dir"));
        let truth: Vec<Array2<f64>> = BANDS
            .iter()
            .map(|b| read(&sdir.join(format!("truth_{b}.fits"))))
            .collect();
        let load = |d: &str| -> (Vec<Array2<f64>>, Array2<f64>) {
            (
                BANDS
                    .iter()
                    .map(|b| read(&sdir.join(d).join(format!("{b}.fits"))))
                    .collect(),
                read(&sdir.join(d).join("vis.fits")),
            )
        };
        let (bands, vis) = load(&level);
        let (cbands, cvis) = load("noiseless");
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
        let r = multiband_deconvolve(&data, &MultibandParams::default()).expect("joint");
        let cdata = MultibandData {
            bands: cbands.iter().map(|b| b.view()).collect(),
            band_psfs: psfs.iter().map(|p| p.view()).collect(),
            band_masks: vec![],
            wide: Some((cvis.view(), psf_vis.view(), None)),
        };
        let rc = multiband_deconvolve(&cdata, &{
            let mut p = MultibandParams {
                alphas: if clean_alpha_sim {
                    Some(
                        BANDS
                            .iter()
                            .map(|b| scenes_json["alpha"][*b].as_f64().expect("α"))
                            .collect(),
                    )
                } else {
                    r.alphas.clone()
                },
                sigmas: Some(r.sigmas.clone()),
                ..Default::default()
            };
            if let Some(n) = clean_iters {
                p.stop.max_iters = n;
            }
            if let Some(n) = clean_refit {
                p.refit_iters = n;
            }
            if let Some(k) = clean_k {
                p.prior = MultibandPrior::Starlet {
                    scales: 4,
                    k_sigma: k,
                };
            }
            p
        })
        .expect("joint noise-free");
        if let Some(dir) = &save {
            std::fs::create_dir_all(dir).expect("save dir");
            let o = WriteOptions {
                force: true,
                ..Default::default()
            };
            for (name, x) in [("noisy", &r.x), ("clean", &rc.x)] {
                let p = dir.join(format!(
                    "{}_{level}_{name}.fits",
                    sc["dir"].as_str().unwrap()
                ));
                write_fits(&p, x.mapv(|v| v as f32).view(), &o).expect("write");
            }
        }
        for b in 0..3 {
            for &(row, col) in &gals {
                let (ft, _) = aperture(truth[b].view(), row, col, 5.0);
                let (fx, _) = aperture(r.x.index_axis(Axis(0), b), row, col, 5.0);
                let (fc, _) = aperture(rc.x.index_axis(Axis(0), b), row, col, 5.0);
                let (_, area_c) = aperture(bands[b].view(), row / 2.0, col / 2.0, 2.5);
                let ref_noise = r.sigmas[b] * area_c.sqrt() / ft;
                rows.push(((fx - ft) / ft, (fc - ft) / ft, ref_noise, ft));
            }
        }
        eprint!(".");
    }
    eprintln!();
    let noisy: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let clean: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let diff: Vec<f64> = rows.iter().map(|r| r.0 - r.1).collect();
    let refn: Vec<f64> = rows.iter().map(|r| r.2).collect();
    println!(
        "{level}: {} galaxy-bands; median |err| noisy {:.3} %, noise-free (same σ, α) {:.3} %, \
         noise part |noisy − noise-free| {:.3} %; median signed noisy {:+.3} %, noise-free {:+.3} %; \
         median plain-aperture noise σ√N/F {:.3} %",
        rows.len(),
        100.0 * med_abs(&noisy),
        100.0 * med_abs(&clean),
        100.0 * med_abs(&diff),
        100.0 * median(&mut noisy.clone()),
        100.0 * median(&mut clean.clone()),
        100.0 * median(&mut refn.clone()),
    );
    // by plain-aperture SNR tercile
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&a, &b| rows[a].2.total_cmp(&rows[b].2));
    for (t, chunk) in idx.chunks(rows.len().div_ceil(3)).enumerate() {
        let pick = |f: &dyn Fn(&Row) -> f64| -> f64 {
            100.0 * med_abs(&chunk.iter().map(|&i| f(&rows[i])).collect::<Vec<_>>())
        };
        println!(
            "  tercile {t} (plain-aperture noise {:.2}..{:.2} %): noisy {:.3} %, noise-free {:.3} %, noise part {:.3} %",
            100.0 * rows[chunk[0]].2,
            100.0 * rows[*chunk.last().unwrap()].2,
            pick(&|r| r.0),
            pick(&|r| r.1),
            pick(&|r| r.0 - r.1),
        );
    }
}
