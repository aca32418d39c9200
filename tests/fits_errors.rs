//! Bad FITS input and unsafe output are clear errors that name the file; no partial output.
#![cfg(feature = "fits")]

use ndarray::Array2;
use sparseinv::io::fits::{read_fits, read_fits_spec, write_fits_2d, WriteOptions};
use sparseinv::io::IoError;
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
        .join(name)
}

fn m13() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/m13.fits")
}

fn msg<T: std::fmt::Debug>(r: Result<T, IoError>) -> String {
    r.expect_err("must fail").to_string()
}

#[test]
fn table_hdus_are_refused() {
    let t = golden("table.fits");
    let m = msg(read_fits(&t, None));
    assert!(
        m.contains("table.fits") && m.contains("no HDU holds image data"),
        "{m}"
    );
    assert!(m.contains("binary table"), "{m}");
    let m = msg(read_fits(&t, Some(1)));
    assert!(m.contains("HDU 1 is a binary table, not an image"), "{m}");
    let m = msg(read_fits(golden("float32_ext.fits"), Some(2)));
    assert!(m.contains("binary table"), "{m}");
    let m = msg(read_fits(golden("float32_ext.fits"), Some(0)));
    assert!(m.contains("holds no image data"), "{m}");
    let m = msg(read_fits(&t, Some(5)));
    assert!(m.contains("HDU 5 does not exist"), "{m}");
    let m = msg(read_fits_spec(&format!("{}[1]", t.display()), Some(0)));
    assert!(m.contains("HDU given twice"), "{m}");
}

#[test]
fn corrupt_truncated_and_missing_files() {
    let d = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(m13()).unwrap();
    // truncated in the data unit
    let trunc = d.path().join("trunc.fits");
    std::fs::write(&trunc, &bytes[..100_000]).unwrap();
    let m = msg(read_fits(&trunc, None));
    assert!(m.contains("trunc.fits"), "{m}");
    // truncated in the header
    let th = d.path().join("short.fits");
    std::fs::write(&th, &bytes[..1000]).unwrap();
    assert!(msg(read_fits(&th, None)).contains("short.fits"));
    // not FITS at all
    let junk = d.path().join("junk.fits");
    std::fs::write(&junk, b"this is not a FITS file at all\n".repeat(200)).unwrap();
    let m = msg(read_fits(&junk, None));
    assert!(
        m.contains("junk.fits") && m.contains("cannot open as FITS"),
        "{m}"
    );
    // missing
    let m = msg(read_fits(d.path().join("none.fits"), None));
    assert!(m.contains("none.fits"), "{m}");
    // the inputs were not modified
    assert_eq!(std::fs::read(m13()).unwrap(), bytes);
}

#[test]
fn cubes_are_read_as_planes_and_refused_as_images() {
    let c = read_fits(golden("cube.fits"), None).unwrap();
    assert_eq!(c.data.dim(), (3, 4, 5));
    assert_eq!(c.n_planes(), 3);
    let m = msg(c.image2d());
    assert!(
        m.contains("cube.fits") && m.contains("3-D cube with 3 planes"),
        "{m}"
    );
}

#[test]
fn unsafe_writes_are_refused_without_partial_files() {
    let d = tempfile::tempdir().unwrap();
    let a = Array2::<f32>::ones((4, 5));
    let out = d.path().join("o.fits");
    write_fits_2d(&out, a.view(), &WriteOptions::default()).unwrap();
    // existing file, no force
    let m = msg(write_fits_2d(&out, a.view(), &WriteOptions::default()));
    assert!(m.contains("o.fits") && m.contains("--force"), "{m}");
    let opts = WriteOptions {
        force: true,
        ..Default::default()
    };
    write_fits_2d(&out, (&a * 2.0).view(), &opts).unwrap();
    assert_eq!(read_fits(&out, None).unwrap().data[[0, 0, 0]], 2.0);
    // a missing directory and a "directory" that is a file
    let m = msg(write_fits_2d(
        d.path().join("nodir/x.fits"),
        a.view(),
        &WriteOptions::default(),
    ));
    assert!(m.contains("x.fits"), "{m}");
    assert!(write_fits_2d(out.join("y.fits"), a.view(), &WriteOptions::default()).is_err());
    // empty image
    let e = Array2::<f32>::zeros((0, 3));
    assert!(write_fits_2d(d.path().join("e.fits"), e.view(), &WriteOptions::default()).is_err());
    // the input itself, even with --force
    let copy = d.path().join("in.fits");
    std::fs::copy(m13(), &copy).unwrap();
    let img = read_fits(&copy, None).unwrap();
    let opts = WriteOptions {
        header: Some(&img.header),
        force: true,
        ..Default::default()
    };
    let m = msg(write_fits_2d(&copy, a.view(), &opts));
    assert!(m.contains("refusing to overwrite the input"), "{m}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(m13()).unwrap());
    // only the two successful outputs and the copied input are left: no temporary files
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["in.fits", "o.fits"]);
}
