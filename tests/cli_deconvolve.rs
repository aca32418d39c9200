//! End-to-end tests of `sparseinv deconvolve`.
#![cfg(feature = "fits")]

use ndarray::Array2;
use sparseinv::io::fits::{read_fits, write_fits_2d, WriteOptions};
use std::path::Path;
use std::process::Command;

fn write(path: &Path, a: &Array2<f32>) {
    write_fits_2d(
        path,
        a.view(),
        &WriteOptions {
            header: None,
            extra: None,
            history: vec![],
            force: true,
        },
    )
    .unwrap();
}

fn psf(n: usize) -> Array2<f32> {
    let c = (n / 2) as f32;
    let k = Array2::from_shape_fn((n, n), |(i, j)| {
        (-((i as f32 - c).powi(2) + (j as f32 - c).powi(2)) / 2.0).exp()
    });
    let s = k.sum();
    k / s
}

fn sparseinv(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn deconvolve_end_to_end_and_bad_inputs() {
    let d = tempfile::tempdir().unwrap();
    let img = Array2::from_shape_fn((32, 32), |(i, j)| {
        1.0 + if (i, j) == (10, 12) || (i, j) == (20, 18) {
            50.0
        } else {
            0.0
        }
    });
    let (ip, pp) = (d.path().join("in.fits"), d.path().join("psf.fits"));
    write(&ip, &img);
    write(&pp, &psf(5));
    let out = d.path().join("out.fits");
    let (i, p, o) = (
        ip.to_str().unwrap(),
        pp.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for m in ["rl", "wiener", "tikhonov", "starlet"] {
        let r = sparseinv(&[
            "deconvolve",
            i,
            "--psf",
            p,
            "--method",
            m,
            "--iters",
            "5",
            "-o",
            o,
            "--force",
        ]);
        assert!(
            r.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let f = read_fits(&out, None).unwrap();
        assert_eq!(f.image2d().unwrap().dim(), (32, 32));
    }
    // existing output without --force
    assert!(!sparseinv(&["deconvolve", i, "--psf", p, "-o", o])
        .status
        .success());
    let bad = d.path().join("bad.fits");
    let b = bad.to_str().unwrap();
    // missing input
    let r = sparseinv(&["deconvolve", "/nonexistent/x.fits", "--psf", p, "-o", b]);
    assert!(!r.status.success() && !bad.exists());
    // PSF larger than the image
    let big = d.path().join("big.fits");
    write(&big, &psf(41));
    let r = sparseinv(&["deconvolve", i, "--psf", big.to_str().unwrap(), "-o", b]);
    assert!(!r.status.success() && !bad.exists());
    // PSF with NaN
    let mut pn = psf(5);
    pn[[0, 0]] = f32::NAN;
    let nan = d.path().join("nan.fits");
    write(&nan, &pn);
    let r = sparseinv(&["deconvolve", i, "--psf", nan.to_str().unwrap(), "-o", b]);
    assert!(!r.status.success() && !bad.exists());
}

/// A sky with a gradient, seeded stars and noise.
fn sky(ny: usize, nx: usize, seed: u64) -> Array2<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut a = Array2::from_shape_fn((ny, nx), |(i, j)| {
        100.0 + 0.2 * i as f32 + 0.1 * j as f32 + rng.random_range(-1.0f32..1.0)
    });
    for _ in 0..(ny * nx / 150) {
        let (i, j) = (rng.random_range(2..ny - 2), rng.random_range(2..nx - 2));
        let f: f32 = rng.random_range(50.0..500.0);
        for di in 0..3 {
            for dj in 0..3 {
                let w = [0.25f32, 0.5, 0.25][di] * [0.25f32, 0.5, 0.25][dj];
                a[[i + di - 1, j + dj - 1]] += f * w;
            }
        }
    }
    a
}

fn image_of(path: &Path) -> Array2<f64> {
    read_fits(path, None).unwrap().image2d().unwrap().to_owned()
}

fn json_of(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `sparseinv deconvolve IN --psf PSF -o OUT --json JSON --force EXTRA…`, which must succeed;
/// returns the output image and the JSON report.
fn deconvolve_ok(
    input: &Path,
    psf: &Path,
    out: &Path,
    json: &Path,
    extra: &[&str],
) -> (Array2<f64>, serde_json::Value) {
    let mut a = vec![
        "deconvolve",
        input.to_str().unwrap(),
        "--psf",
        psf.to_str().unwrap(),
    ];
    a.extend_from_slice(&[
        "-o",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    a.push("--force");
    a.extend_from_slice(extra);
    let r = sparseinv(&a);
    assert!(
        r.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    (image_of(out), json_of(json))
}

#[test]
fn tiled_equals_untiled() {
    let d = tempfile::tempdir().unwrap();
    let (ip, pp) = (d.path().join("in.fits"), d.path().join("psf.fits"));
    write(&ip, &sky(96, 72, 1));
    write(&pp, &psf(7));
    for extra in [
        &["--method", "rl", "--no-accelerate", "--iters", "30"][..],
        // the Fourier filters' untiled default is the periodic-plus-smooth split, their tiled
        // default reflect (checked below): tiles agree with the untiled run under reflect
        &["--method", "wiener", "--boundary", "reflect"][..],
        // a fixed weight: the smaller ones GCV picks on this nearly noise-free field reach
        // further than the default halo (2.7e-4 of the peak; see the module documentation)
        &[
            "--method",
            "tikhonov",
            "--boundary",
            "zero",
            "--balance",
            "0.01",
        ][..],
    ] {
        let run = |tile: &str, name: &str| -> (Array2<f64>, serde_json::Value) {
            let (o, j) = (
                d.path().join(format!("{name}.fits")),
                d.path().join(format!("{name}.json")),
            );
            let mut a = vec!["--tile", tile];
            a.extend_from_slice(extra);
            deconvolve_ok(&ip, &pp, &o, &j, &a)
        };
        let (whole, jw) = run("0", "whole");
        let (tiled, jt) = run("32", "tiled");
        assert!(jw["tiling"].is_null());
        assert_eq!(jt["tiling"]["tiles"], 9, "{jt}");
        assert_eq!(jt["tiling"]["halo"], 14);
        let scale = whole.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = (&tiled - &whole).iter().fold(0.0f64, |m, v| m.max(v.abs())) / scale;
        assert!(err < 1e-4, "{extra:?}: tiled vs untiled max rel diff {err}");
    }
    let (o, j) = (d.path().join("w.fits"), d.path().join("w.json"));
    let (_, untiled) = deconvolve_ok(&ip, &pp, &o, &j, &["--method", "wiener", "--tile", "0"]);
    assert_eq!(untiled["boundary"], "smooth");
    let (_, tiled) = deconvolve_ok(&ip, &pp, &o, &j, &["--method", "wiener", "--tile", "32"]);
    assert_eq!(tiled["boundary"], "reflect");
}

#[test]
fn masks_boundaries_and_reports() {
    let d = tempfile::tempdir().unwrap();
    let (ip, mp, pp) = (
        d.path().join("in.fits"),
        d.path().join("masked.fits"),
        d.path().join("psf.fits"),
    );
    let img = sky(40, 44, 2);
    let mut masked = img.clone();
    masked[[20, 21]] = f32::NAN;
    masked[[5, 30]] = f32::NAN;
    write(&ip, &img);
    write(&mp, &masked);
    write(&pp, &psf(5));
    let (o, j) = (d.path().join("o.fits"), d.path().join("o.json"));
    let run = |input: &Path, extra: &[&str]| deconvolve_ok(input, &pp, &o, &j, extra);
    // defaults (untiled): smooth for the Fourier methods, zero for the iterative ones
    for (m, b) in [
        ("wiener", "smooth"),
        ("tikhonov", "smooth"),
        ("rl", "zero"),
        ("starlet", "zero"),
    ] {
        let (_, r) = run(&ip, &["--method", m, "--iters", "3"]);
        assert_eq!(r["boundary"], b, "{m}");
        // the phases are measured, non-negative, and the library's sum to its seconds
        let ph = &r["phases"];
        let lib: f64 = ["prepare", "sky", "estimate", "solve", "finish"]
            .iter()
            .map(|k| ph[k].as_f64().unwrap_or_else(|| panic!("{m}: phase {k}")))
            .sum();
        let total = r["seconds"].as_f64().unwrap();
        assert!(
            lib <= total + 1e-6 && lib >= 0.5 * total,
            "{m}: {lib} vs {total}"
        );
        for k in ["read", "write"] {
            assert!(ph[k].as_f64().unwrap() >= 0.0, "{m}: {k}");
        }
        assert!(
            ph.get("preview").is_none(),
            "{m}: no --png, no preview time"
        );
    }
    // Wiener: masked pixels stay NaN; the median fill keeps their neighbours close to the
    // result on the complete image (a zero or mean fill would not: the sky is at ~110)
    let (full, _) = run(&ip, &["--method", "wiener", "--balance", "0.01"]);
    let (mk, r) = run(&mp, &["--method", "wiener", "--balance", "0.01"]);
    assert_eq!(r["masked_pixels"], 2);
    assert!(mk[[20, 21]].is_nan() && mk[[5, 30]].is_nan());
    assert_eq!(mk.iter().filter(|v| v.is_nan()).count(), 2);
    for (a, b) in [(19, 21), (21, 21), (20, 20), (20, 22), (5, 29), (6, 30)] {
        let rel = (mk[[a, b]] - full[[a, b]]).abs() / full[[a, b]].abs();
        assert!(rel < 0.1, "({a},{b}): {} vs {}", mk[[a, b]], full[[a, b]]);
    }
    // periodic is accepted and differs from reflect at the edges
    let (per, r) = run(
        &ip,
        &[
            "--method",
            "wiener",
            "--balance",
            "0.01",
            "--boundary",
            "periodic",
        ],
    );
    assert_eq!(r["boundary"], "periodic");
    assert!((per[[0, 0]] - full[[0, 0]]).abs() > 1e-3 * full[[0, 0]].abs());
    // RL with a reflect boundary runs, keeps the masked pixels NaN
    let (rl, r) = run(
        &mp,
        &["--method", "rl", "--iters", "5", "--boundary", "reflect"],
    );
    assert_eq!(r["boundary"], "reflect");
    assert!(rl[[20, 21]].is_nan() && rl[[0, 0]].is_finite());
}

#[test]
fn zscale_preview_uses_the_input_limits() {
    let d = tempfile::tempdir().unwrap();
    let (ip, pp) = (d.path().join("in.fits"), d.path().join("psf.fits"));
    let img = sky(30, 34, 3);
    write(&ip, &img);
    write(&pp, &psf(5));
    let (o, png) = (d.path().join("o.fits"), d.path().join("o.png"));
    let r = sparseinv(&[
        "deconvolve",
        ip.to_str().unwrap(),
        "--psf",
        pp.to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--stretch",
        "zscale",
        "--method",
        "wiener",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let (pic, _) = sparseinv::io::image::read_gray(&png).unwrap();
    assert_eq!(pic.dim(), (30, 34 + 4 + 34));
    let a = img.mapv(f64::from);
    let (lo, hi) = sparseinv::io::image::zscale(a.view()).unwrap();
    // left panel, FITS row 0 at the bottom: linear between the zscale limits
    for ((y, x), &v) in a.indexed_iter() {
        let want = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        assert!(
            (pic[[29 - y, x]] - want).abs() <= 0.5 / 255.0 + 1e-6,
            "({y},{x})"
        );
    }
    // right panel uses the same limits: the deconvolved stars saturate, as in the input
    let out = image_of(&o);
    for ((y, x), &v) in out.indexed_iter() {
        let want = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        assert!(
            (pic[[29 - y, 38 + x]] - want).abs() <= 0.5 / 255.0 + 1e-6,
            "({y},{x})"
        );
    }
}

fn gauss_psf(n: usize, s: f64) -> Array2<f64> {
    let c = (n / 2) as f64;
    let k = Array2::from_shape_fn((n, n), |(i, j)| {
        (-((i as f64 - c).powi(2) + (j as f64 - c).powi(2)) / (2.0 * s * s)).exp()
    });
    let t = k.sum();
    k / t
}

/// A bright star on a sky of 150, deconvolved with a PSF broader than the one that blurred
/// it (the usual mismatch of an empirical PSF): with the sky as a known background the
/// surroundings of the star stay at the sky level; deconvolving the raw values (`--sky 0`)
/// digs a dark moat around it (positivity then only bounds the image at 0).
#[test]
fn sky_background_prevents_dark_moats() {
    use rand::{Rng, SeedableRng};
    use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
    let d = tempfile::tempdir().unwrap();
    let mut x = Array2::from_elem((40, 40), 150.0);
    x[[20, 20]] += 30000.0;
    let a = Conv2d::new([40, 40], gauss_psf(9, 1.0).view(), Boundary::Reflect).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let y: Array2<f64> = a
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality()
        .unwrap();
    let y = y.mapv(|v| (v + rng.random_range(-3.0..3.0)) as f32);
    let (ip, pp, o) = (
        d.path().join("star.fits"),
        d.path().join("psf.fits"),
        d.path().join("o.fits"),
    );
    write(&ip, &y);
    write(&pp, &gauss_psf(9, 1.3).mapv(|v| v as f32));
    for m in ["rl", "starlet"] {
        for (sky, moat) in [(None, false), (Some("0"), true)] {
            let mut args = vec![
                "deconvolve",
                ip.to_str().unwrap(),
                "--psf",
                pp.to_str().unwrap(),
                "--method",
                m,
                "-o",
                o.to_str().unwrap(),
                "--force",
            ];
            if let Some(s) = sky {
                args.extend_from_slice(&["--sky", s]);
            }
            let r = sparseinv(&args);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            let out = image_of(&o);
            let ring_min = out
                .indexed_iter()
                .filter(|((i, j), _)| {
                    let r = ((*i as f64 - 20.0).powi(2) + (*j as f64 - 20.0).powi(2)).sqrt();
                    (2.0..=6.0).contains(&r)
                })
                .fold(f64::INFINITY, |a, (_, &v)| a.min(v));
            if moat {
                assert!(ring_min < 30.0, "{m} --sky 0: ring minimum {ring_min}");
            } else {
                assert!(ring_min > 140.0, "{m}: ring minimum {ring_min}");
            }
        }
    }
}

#[test]
fn single_precision_rl_matches_double() {
    let d = tempfile::tempdir().unwrap();
    let (ip, pp) = (d.path().join("in.fits"), d.path().join("psf.fits"));
    let mut img = sky(48, 40, 3);
    img[[7, 9]] = f32::NAN;
    write(&ip, &img);
    write(&pp, &psf(7));
    let run = |prec: &str| -> (Array2<f64>, serde_json::Value) {
        let (o, j) = (
            d.path().join(format!("{prec}.fits")),
            d.path().join(format!("{prec}.json")),
        );
        let extra = ["--method", "rl", "--iters", "40", "--precision", prec];
        deconvolve_ok(&ip, &pp, &o, &j, &extra)
    };
    let (x64, j64) = run("f64");
    let (x32, j32) = run("f32");
    assert_eq!(j64["precision"], "f64");
    assert_eq!(j32["precision"], "f32");
    assert!(x32[[7, 9]].is_nan() && x64[[7, 9]].is_nan());
    let scale = x64
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let err = x32
        .iter()
        .zip(x64.iter())
        .filter(|(a, _)| a.is_finite())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    // single-precision rounding only: far below the noise, far above f64 round-off
    assert!(err < 1e-4, "f32 vs f64 max rel diff {err}");
    assert!(
        err > 1e-12,
        "the two precisions gave identical results: {err}"
    );
    // the default (`auto`) on this single-precision file is f32, and the same run
    let (xa, ja) = run("auto");
    assert_eq!(ja["precision"], "f32");
    assert!(xa
        .iter()
        .zip(x32.iter())
        .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
}
