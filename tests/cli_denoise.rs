//! End-to-end tests of `sparseinv denoise` (the model runs need ONNX Runtime; without one at
//! build time they are reported as ignored, see models/build.rs and the root build.rs).
#![cfg(feature = "onnx")]

use ndarray::ArrayD;
use ndarray_npy::{read_npy, write_npy};
use std::path::{Path, PathBuf};
use std::process::Command;

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/onnx")
        .join(name)
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn denoise_npy_matches_python_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npy");
    let report = dir.path().join("r.json");
    let st = exe()
        .args(["denoise"])
        .arg(data("drunet_tiny_image.npy"))
        .arg("--model")
        .arg(data("drunet_tiny.onnx"))
        .args(["--sigma", "20", "--threads", "1", "-o"])
        .arg(&out)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let got: ArrayD<f64> = read_npy(&out).unwrap();
    let want: ArrayD<f32> = read_npy(data("drunet_tiny_image_denoised.npy")).unwrap();
    assert_eq!(got.shape(), want.shape());
    let d = got
        .iter()
        .zip(&want)
        .fold(0f64, |m, (a, b)| m.max((a - *b as f64).abs()));
    assert!(d < 1e-2, "max diff {d}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["tiles_per_image"], 1);
    // Existing output is refused without --force, and left alone.
    let before = std::fs::read(&out).unwrap();
    let st = exe()
        .arg("denoise")
        .arg(data("drunet_tiny_image.npy"))
        .arg("-m")
        .arg(data("drunet_tiny.onnx"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn denoise_png_round_trips_through_identity_graph() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.png");
    let out = dir.path().join("out.png");
    let img =
        image::GrayImage::from_fn(37, 21, |x, y| image::Luma([((x * 7 + y * 11) % 256) as u8]));
    img.save(&inp).unwrap();
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .arg("-m")
        .arg(data("identity_noisemap.onnx"))
        .args(["--tile", "16", "--overlap", "4", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let back = image::open(&out).unwrap().to_luma8();
    assert_eq!(back.as_raw(), img.as_raw());
}

#[test]
fn bad_input_gives_one_error_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let inp = dir.path().join("x.npy");
    write_npy(&inp, &ndarray::Array2::<f64>::zeros((8, 8))).unwrap();
    // Missing model file.
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .args(["-m", "/nonexistent/model.onnx", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.starts_with("error:"), "{err}");
    assert!(!out.exists());
    // Negative sigma.
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .arg("-m")
        .arg(data("drunet_tiny.onnx"))
        .args(["--sigma=-1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("sigma"));
    assert!(!out.exists());
    // Mismatched output kind.
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .arg("-m")
        .arg(data("drunet_tiny.onnx"))
        .arg("-o")
        .arg(dir.path().join("o.png"))
        .output()
        .unwrap();
    assert!(!st.status.success());
}

#[cfg(feature = "fits")]
#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn builtin_model_on_fits_cube_keeps_header_and_matches_the_library() {
    use sparseinv::io::fits::{read_fits, write_fits, Header, WriteOptions};
    use sparseinv_solvers::denoise::Denoiser;
    let dir = tempfile::tempdir().unwrap();
    let clean = ndarray::Array3::from_shape_fn((2, 40, 36), |(p, i, j)| {
        0.3 + 0.4 * (((i / 8 + j / 9 + p) % 2) as f64)
    });
    let noise = sparseinv_solvers::testing::randn::<f64>(&[2, 40, 36], 5)
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let noisy = (&clean + &(noise * 0.08)).mapv(|v| v as f32);
    let inp = dir.path().join("in.fits");
    let out = dir.path().join("out.fits");
    let mut h = Header::default();
    h.set_str("OBJECT", "CUBE", "kept");
    write_fits(
        &inp,
        noisy.view(),
        &WriteOptions {
            header: Some(&h),
            extra: None,
            history: vec![],
            force: false,
        },
    )
    .unwrap();
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .args([
            "--model", "builtin", "--sigma", "0.08", "--offset", "0", "--scale", "1",
        ])
        .args(["--threads", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let img = read_fits(&out, None).unwrap();
    assert_eq!(img.header.get_str("OBJECT").as_deref(), Some("CUBE"));
    assert_eq!(img.data.dim(), (2, 40, 36));
    let d = sparseinv_models::builtin::denoiser(
        sparseinv_models::SessionOptions {
            intra_threads: 1,
            ..Default::default()
        },
        sparseinv_models::DenoiserConfig {
            normalization: sparseinv_models::Normalization::Affine {
                offset: 0.0,
                scale: 1.0,
            },
            ..Default::default()
        },
    )
    .unwrap();
    for p in 0..2 {
        let plane = noisy.index_axis(ndarray::Axis(0), p).to_owned().into_dyn();
        let want = d.denoise(plane.view(), 0.08f32).unwrap();
        let got = img.data.index_axis(ndarray::Axis(0), p);
        let diff = got
            .iter()
            .zip(want.iter())
            .fold(0f64, |m, (a, b)| m.max((a - *b as f64).abs()));
        assert!(diff < 1e-5, "plane {p}: CLI vs library {diff}");
        let c = clean.index_axis(ndarray::Axis(0), p);
        let err = |a: &dyn Fn(usize, usize) -> f64| {
            c.indexed_iter()
                .map(|((i, j), v)| (a(i, j) - v).powi(2))
                .sum::<f64>()
        };
        let e_out = err(&|i, j| got[[i, j]]);
        let e_in = err(&|i, j| noisy[[p, i, j]] as f64);
        assert!(e_out < 0.8 * e_in, "plane {p}: {e_out} vs {e_in}");
    }
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn builtin_model_on_tiff() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.tif");
    let out = dir.path().join("out.tiff");
    let img = image::GrayImage::from_fn(33, 27, |x, y| {
        image::Luma([((x * 5 + y * 3) % 200 + 20) as u8])
    });
    img.save(&inp).unwrap();
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .args(["-m", "builtin", "--sigma", "0.02", "--threads", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let back = image::open(&out).unwrap();
    assert_eq!((back.width(), back.height()), (33, 27));
    assert_eq!(back.color(), image::ColorType::L8);
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn cuda_device_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let inp = dir.path().join("x.npy");
    write_npy(&inp, &ndarray::Array2::<f64>::zeros((8, 8))).unwrap();
    // The PyPI runtime is CPU-only: --device cuda must say so (or work on a GPU build).
    let st = exe()
        .arg("denoise")
        .arg(&inp)
        .arg("-m")
        .arg(data("drunet_tiny.onnx"))
        .args(["--device", "cuda", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    if !st.status.success() {
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(err.contains("CUDA"), "{err}");
        assert!(!out.exists());
    }
}
