//! End-to-end tests of `sparseinv multiband` and `pipeline::multiband` on the committed
//! GalSim scenes (testdata/multiband, made by scripts/multiband/simulate.py): quality against
//! the simulated truth, the fitted weights against the simulated ones, WCS handling, outputs,
//! and bad input.
#![cfg(feature = "fits")]

use ndarray::{s, Array2, ArrayView2};
use sparseinv::io::fits::{read_fits, write_fits_2d, Header, WriteOptions};
use sparseinv::io::wcs::Wcs;
use sparseinv::pipeline::multiband::{multiband, BandImage, MultibandOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

const T: &str = "testdata/multiband";
const ALPHA: [f64; 3] = [2.3189289162495332, 2.315032784854871, 1.9486880229330446];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(T)
}

fn sparseinv(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
        .args(args)
        .output()
        .unwrap()
}

fn read2(p: &Path) -> Array2<f64> {
    read_fits(p, None).unwrap().image2d().unwrap().to_owned()
}

fn nmse(x: ArrayView2<f64>, t: ArrayView2<f64>) -> f64 {
    let e: f64 = x.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
    e / t.iter().map(|v| v * v).sum::<f64>()
}

/// Write `a` with `header`'s cards (or none) to `path`.
fn write(path: &Path, a: ArrayView2<f64>, header: Option<&Header>) {
    write_fits_2d(
        path,
        a.mapv(|v| v as f32).view(),
        &WriteOptions {
            header,
            extra: None,
            history: vec![],
            force: true,
        },
    )
    .unwrap();
}

/// Band and PSF arguments of scene 0 at `level` for the CLI.
fn scene_args(level: &str) -> Vec<String> {
    let r = root();
    let mut v = Vec::new();
    for b in ["r", "i", "z"] {
        v.push("--band".into());
        v.push(
            r.join(format!("scene_000/{level}/{b}.fits"))
                .display()
                .to_string(),
        );
        v.push("--psf".into());
        v.push(r.join(format!("psf_{b}.fits")).display().to_string());
    }
    v.push("--wide".into());
    v.push(
        r.join(format!("scene_000/{level}/vis.fits"))
            .display()
            .to_string(),
    );
    v.push("--wide-psf".into());
    v.push(r.join("psf_vis.fits").display().to_string());
    v
}

/// The CLI on scene 0 at peak SNR 100: outputs on the wide band's grid with its WCS, NMSE
/// far below the input's (upsampled) and below 0.15 per band, the weights near the simulated
/// ones, the central galaxy's 1″ aperture flux within 3 %, and the JSON report.
#[test]
fn cli_restores_a_simulated_scene() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let png = dir.path().join("rgb.png");
    let mut args = scene_args("snr100");
    args.extend(
        [
            "-o",
            out.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
            "--no-sky",
        ]
        .map(String::from),
    );
    let argv: Vec<&str> = std::iter::once("multiband")
        .chain(args.iter().map(|s| s.as_str()))
        .collect();
    let o = sparseinv(&argv);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(png.exists());
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["ratio"], 2);
    assert_eq!(rep["alpha_method"], "shrunk");
    let wide = read_fits(root().join("scene_000/snr100/vis.fits"), None).unwrap();
    let ww = Wcs::from_header(&wide.header).unwrap();
    for (b, name) in ["r", "i", "z"].iter().enumerate() {
        let f = read_fits(out.join(format!("{name}.fits")), None).unwrap();
        assert_eq!(f.data.dim(), (1, 128, 128));
        assert_eq!(Wcs::from_header(&f.header).unwrap(), ww);
        assert_eq!(f.header.get_str("BAND").as_deref(), Some(*name));
        let x = f.image2d().unwrap();
        let truth = read2(&root().join(format!("scene_000/truth_{name}.fits")));
        let band = read2(&root().join(format!("scene_000/snr100/{name}.fits")));
        let up = Array2::from_shape_fn((128, 128), |(i, j)| band[[i / 2, j / 2]] / 4.0);
        let (e, e_in) = (nmse(x, truth.view()), nmse(up.view(), truth.view()));
        assert!(
            e < 0.15 && e < 0.3 * e_in,
            "{name}: NMSE {e} (input {e_in})"
        );
        let alpha = rep["bands"][b]["alpha"].as_f64().unwrap();
        assert!(
            (alpha - ALPHA[b]).abs() < 0.15 * ALPHA[b],
            "{name}: α {alpha}"
        );
        // central galaxy at fine (x, y) ≈ (61.7, 63.1): 1″ = 10 px diameter
        let ap = |a: ArrayView2<f64>| -> f64 {
            a.indexed_iter()
                .filter(|((i, j), _)| {
                    (*i as f64 - 63.05).powi(2) + (*j as f64 - 61.72).powi(2) <= 25.0
                })
                .map(|(_, v)| *v)
                .sum()
        };
        let (fx, ft) = (ap(x), ap(truth.view()));
        assert!((fx - ft).abs() < 0.03 * ft, "{name}: aperture {fx} vs {ft}");
    }
    // nothing is overwritten without --force, and the outputs are kept
    let before = std::fs::read(out.join("r.fits")).unwrap();
    let o = sparseinv(&argv);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(out.join("r.fits")).unwrap(), before);
}

/// Bad input gives a clear error and writes nothing.
#[test]
fn cli_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = root();
    let vis = read_fits(r.join("scene_000/snr030/vis.fits"), None).unwrap();
    let band = read_fits(r.join("scene_000/snr030/r.fits"), None).unwrap();
    let run = |bands: [&Path; 3], wide: &Path, extra: &[&str]| -> String {
        let out = dir.path().join("out");
        let mut argv: Vec<String> = vec!["multiband".into()];
        for (b, p) in ["r", "i", "z"].iter().zip(bands) {
            argv.extend([
                "--band".into(),
                p.display().to_string(),
                "--psf".into(),
                r.join(format!("psf_{b}.fits")).display().to_string(),
            ]);
        }
        argv.extend([
            "--wide".into(),
            wide.display().to_string(),
            "--wide-psf".into(),
            r.join("psf_vis.fits").display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
        let o = sparseinv(&a);
        assert!(!o.status.success(), "expected a failure for {extra:?}");
        assert!(!out.exists(), "an output directory was left behind");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let ri = r.join("scene_000/snr030/i.fits");
    let rz = r.join("scene_000/snr030/z.fits");
    let rr = r.join("scene_000/snr030/r.fits");
    let rv = r.join("scene_000/snr030/vis.fits");
    // no WCS: --ratio and --offset are required
    let nowcs = dir.path().join("nowcs.fits");
    write(&nowcs, band.image2d().unwrap(), None);
    let e = run([&nowcs, &ri, &rz], &rv, &[]);
    assert!(e.contains("--ratio") && e.contains("--offset"), "{e}");
    // pixel scales whose ratio is not an integer: both scales printed
    let mut h = band.header.clone();
    h.set_f64("CDELT1", -0.15 / 3600.0, "");
    h.set_f64("CDELT2", 0.15 / 3600.0, "");
    let odd = dir.path().join("odd.fits");
    write(&odd, band.image2d().unwrap(), Some(&h));
    let e = run([&odd, &ri, &rz], &rv, &[]);
    assert!(e.contains("0.150000″") && e.contains("0.100000″"), "{e}");
    // a band elsewhere on the sky
    let mut h = band.header.clone();
    h.set_f64("CRVAL1", 151.0, "");
    let far = dir.path().join("far.fits");
    write(&far, band.image2d().unwrap(), Some(&h));
    let e = run([&far, &ri, &rz], &rv, &[]);
    assert!(e.contains("do not overlap"), "{e}");
    // all NaN
    let nan = dir.path().join("nan.fits");
    write(
        &nan,
        band.image2d().unwrap().mapv(|_| f64::NAN).view(),
        Some(&band.header),
    );
    let e = run([&nan, &ri, &rz], &rv, &[]);
    assert!(e.contains("no valid pixel"), "{e}");
    // a wide band of another size
    let small = dir.path().join("small.fits");
    write(
        &small,
        vis.image2d().unwrap().slice(s![..100, ..]),
        Some(&vis.header),
    );
    let e = run([&rr, &ri, &rz], &small, &["--ratio", "2"]);
    assert!(e.contains("same sky area"), "{e}");
    // --band without --psf
    let o = sparseinv(&[
        "multiband",
        "--band",
        rr.to_str().unwrap(),
        "--band",
        ri.to_str().unwrap(),
        "--psf",
        r.join("psf_r.fits").to_str().unwrap(),
        "--wide",
        rv.to_str().unwrap(),
        "--wide-psf",
        r.join("psf_vis.fits").to_str().unwrap(),
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("one --psf after each --band"));
}

/// The library pipeline: a band grid offset by a quarter band pixel in the WCS is reported
/// as a shift of −0.25 band pixels (the Fourier shift that re-aligns it), explicit ratio and
/// offsets give the same result as the WCS, and tiles agree with the whole image.
#[test]
fn pipeline_wcs_offsets_and_tiles() {
    let r = root();
    let load = |p: &str| read_fits(r.join(p), None).unwrap();
    let bands: Vec<_> = ["r", "i", "z"]
        .iter()
        .map(|b| load(&format!("scene_000/snr100/{b}.fits")))
        .collect();
    let psfs: Vec<Array2<f64>> = ["r", "i", "z"]
        .iter()
        .map(|b| read2(&r.join(format!("psf_{b}.fits"))))
        .collect();
    let vis = load("scene_000/snr100/vis.fits");
    let pvis = read2(&r.join("psf_vis.fits"));
    let mk = |wcs_shift: f64| -> Vec<BandImage<'_>> {
        bands
            .iter()
            .zip(&psfs)
            .zip(["r", "i", "z"])
            .map(|((im, p), n)| {
                let mut w = Wcs::from_header(&im.header).unwrap();
                w.crpix[0] += wcs_shift; // the grid moves by −shift pixels along x
                BandImage {
                    name: n.into(),
                    data: im.image2d().unwrap(),
                    psf: p.view(),
                    wcs: Some(w),
                }
            })
            .collect()
    };
    let wide = BandImage {
        name: "vis".into(),
        data: vis.image2d().unwrap(),
        psf: pvis.view(),
        wcs: Wcs::from_header(&vis.header),
    };
    let opts = MultibandOptions {
        sky: false,
        ..Default::default()
    };
    let shifted = multiband(&mk(0.25), &wide, &opts).unwrap();
    for b in &shifted.report.bands {
        // band pixel (0,0) now lies 0.5 fine px to the left of its block: content +0.25
        assert!(
            (b.shift[0]).abs() < 1e-6 && (b.shift[1] - 0.25).abs() < 1e-6,
            "{:?}",
            b.shift
        );
    }
    let from_wcs = multiband(&mk(0.0), &wide, &opts).unwrap();
    let explicit = multiband(
        &mk(0.0),
        &BandImage {
            wcs: None,
            ..wide.clone()
        },
        &MultibandOptions {
            ratio: Some(2),
            offsets: Some(vec![[0.0, 0.0]; 3]),
            weights: Some(
                from_wcs
                    .report
                    .bands
                    .iter()
                    .map(|b| b.alpha.unwrap())
                    .collect(),
            ),
            ..opts.clone()
        },
    )
    .unwrap();
    for (a, b) in from_wcs.bands.iter().zip(&explicit.bands) {
        let d = (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            d < 1e-6 * a.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            "{d}"
        );
    }
    // tiles: 4 tiles of 64 px with the halo of twice the 51 px PSFs
    let tiled = multiband(
        &mk(0.0),
        &wide,
        &MultibandOptions {
            tile: Some(64),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(tiled.report.tiles, 4);
    for (a, b) in from_wcs.bands.iter().zip(&tiled.bands) {
        let peak = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let d = (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(d < 1e-6 * peak, "tiled differs by {d} (peak {peak})");
    }
}
