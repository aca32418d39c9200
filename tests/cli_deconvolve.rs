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
