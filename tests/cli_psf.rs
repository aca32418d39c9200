//! End-to-end tests of `sparseinv psf`.
#![cfg(feature = "fits")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn td(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn files_in(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn estimates_a_psf_from_the_m13_image() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("psf.fits");
    let json = d.path().join("psf.json");
    let png = d.path().join("psf.png");
    let before = std::fs::read(td("m13.fits")).unwrap();
    let r = bin()
        .arg("psf")
        .arg(td("m13.fits"))
        .args(["--size", "21", "-o"])
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .arg("--png")
        .arg(&png)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("stars used of"), "{err}");
    let img = sparseinv::io::fits::read_fits(&out, None).unwrap();
    let p = img.image2d().unwrap();
    assert_eq!(p.dim(), (21, 21));
    assert!((p.sum() - 1.0).abs() < 1e-5);
    let (cy, cx) = sparseinv::psf::centroid(p).unwrap();
    assert!(
        (cy - 10.0).abs() < 0.3 && (cx - 10.0).abs() < 0.3,
        "({cy}, {cx})"
    );
    let n = img.header.get_f64("NSTARS").unwrap();
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rep["report"]["used"].as_f64().unwrap(), n);
    assert!(n >= 3.0, "{n}");
    let fwhm = rep["report"]["fwhm"].as_f64().unwrap();
    assert!(fwhm > 1.5 && fwhm < 8.0, "{fwhm}");
    assert!(img
        .header
        .cards()
        .iter()
        .any(|c| c.starts_with("HISTORY sparseinv")));
    assert!(png.exists());
    assert_eq!(std::fs::read(td("m13.fits")).unwrap(), before);

    // again without --force: refused, nothing changed
    let r = bin()
        .arg("psf")
        .arg(td("m13.fits"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("already exists"));
    // the tile-compressed copy with an explicit HDU gives the same PSF
    let out2 = d.path().join("psf2.fits");
    let r = bin()
        .arg("psf")
        .arg(format!("{}[1]", td("m13_rice.fits").display()))
        .args(["--size", "21", "-o"])
        .arg(&out2)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let p2 = sparseinv::io::fits::read_fits(&out2, None).unwrap();
    assert_eq!(p2.data, img.data);
}

#[test]
fn bad_inputs_fail_cleanly_without_output() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.fits");
    std::fs::write(&junk, vec![b'x'; 5000]).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![td("golden/table.fits").display().to_string()],
            "table.fits",
        ),
        (
            vec![td("golden/cube.fits").display().to_string()],
            "3-D cube",
        ),
        (vec![junk.display().to_string()], "junk.fits"),
        (
            vec![
                td("golden/float32_ext.fits").display().to_string(),
                "--hdu".into(),
                "2".into(),
            ],
            "binary table",
        ),
        (
            vec![
                td("m13.fits").display().to_string(),
                "--size".into(),
                "20".into(),
            ],
            "odd",
        ),
    ];
    for (args, needle) in cases {
        let out = d.path().join("o.fits");
        let r = bin()
            .arg("psf")
            .args(&args)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
    // unwritable output: the parent is a file
    let r = bin()
        .arg("psf")
        .arg(td("m13.fits"))
        .arg("-o")
        .arg(junk.join("psf.fits"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("psf.fits"));
    assert_eq!(files_in(d.path()), vec!["junk.fits"]);
}
