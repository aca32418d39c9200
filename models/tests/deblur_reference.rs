//! The learned deblurring pipeline against a torch-free Python reference
//! (`testdata/deblur/gen_deblur_ref.py`: numpy FFTs + Python onnxruntime 1.32.0 on the shipped
//! graphs), and its error cases. Without ONNX Runtime at build time the graph tests are
//! reported as ignored (`sparseinv_ort` cfg, see models/build.rs; SPARSEINV_REQUIRE_ORT=1
//! makes them run and fail instead).

use ndarray::{array, Array2};
use ndarray_npy::read_npy;
use sparseinv_models::{
    builtin, wiener_reflect, Error, LearnedDeblur, Normalization, SessionOptions, Tiling,
};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/deblur")
        .join(name)
}

fn npy(name: &str) -> Array2<f64> {
    read_npy(data(name)).unwrap()
}

fn params() -> (f64, f64, f64) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("params.json")).unwrap()).unwrap();
    let g = |k: &str| v[k].as_f64().unwrap();
    (g("offset"), g("scale"), g("sigma"))
}

fn opts() -> SessionOptions {
    SessionOptions {
        intra_threads: 1,
        ..Default::default()
    }
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn shipped_sidecar() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("onnx/deblur_small.json")
}

#[test]
fn image_space_wiener_matches_numpy() {
    // Stage 2 of the pipeline alone (no runtime needed): u = (y − offset)/scale, unit-sum PSF,
    // μ₀ = exp(β₀) s² + ε from the shipped sidecar.
    let (offset, scale, sigma) = params();
    let y = npy("y.npy");
    let psf = npy("psf.npy");
    let k = &psf / psf.sum();
    let u = y.mapv(|v| (v - offset) / scale);
    let side = sparseinv_models::DeblurParams::from_json(builtin::DEBLUR_SMALL_JSON).unwrap();
    let s = sigma / scale;
    let xw = wiener_reflect(u.view(), k.view(), side.beta_image.exp() * s * s + side.eps).unwrap();
    let d = max_abs_diff(&xw, &npy("x_w.npy"));
    assert!(d < 1e-10, "max |Δ| = {d}");
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn pipeline_matches_python_reference() {
    let (offset, scale, sigma) = params();
    let y = npy("y.npy");
    let psf = npy("psf.npy");
    let expect = npy("expected.npy");
    let norm = Normalization::Affine { offset, scale };
    // from the files next to the sidecar, and from the copy embedded in the crate
    let from_file = LearnedDeblur::load(shipped_sidecar(), opts()).unwrap();
    let embedded = builtin::deblur(opts()).unwrap();
    for (what, m) in [("file", &from_file), ("builtin", &embedded)] {
        let mut calls = Vec::new();
        let x = m
            .deblur_with_progress(y.view(), psf.view(), sigma, norm, &mut |d, t| {
                calls.push((d, t))
            })
            .unwrap();
        let d = max_abs_diff(&x, &expect);
        eprintln!("{what}: max |Rust − Python| = {d:e}");
        // data scale 2: 1e-4 relative to it
        assert!(d < 2e-4, "{what}: max |Δ| = {d}");
        let t = m.steps();
        assert_eq!(calls, (1..=t).map(|d| (d, t)).collect::<Vec<_>>());
    }
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn error_cases() {
    let m = builtin::deblur(opts()).unwrap();
    let norm = Normalization::Affine {
        offset: 0.0,
        scale: 1.0,
    };
    let y = Array2::from_shape_fn((16, 16), |(i, j)| ((i + 2 * j) % 7) as f64 / 7.0);
    let psf = array![[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]];
    assert!(m.deblur(y.view(), psf.view(), 0.01, norm).is_ok());
    // PSF larger than the image
    let big = Array2::from_elem((17, 5), 1.0);
    assert!(m.deblur(y.view(), big.view(), 0.01, norm).is_err());
    // NaN in the image / PSF, negative or NaN sigma, zero-sum PSF
    let mut yn = y.clone();
    yn[[3, 4]] = f64::NAN;
    assert!(m.deblur(yn.view(), psf.view(), 0.01, norm).is_err());
    let mut pn = psf.clone();
    pn[[0, 0]] = f64::NAN;
    assert!(m.deblur(y.view(), pn.view(), 0.01, norm).is_err());
    assert!(m.deblur(y.view(), psf.view(), -1.0, norm).is_err());
    assert!(m.deblur(y.view(), psf.view(), f64::NAN, norm).is_err());
    let zero = Array2::<f64>::zeros((3, 3));
    assert!(m.deblur(y.view(), zero.view(), 0.01, norm).is_err());
    // tiny image, bad normalisation
    let tiny = Array2::from_elem((3, 8), 0.5);
    let one = array![[1.0]];
    assert!(m.deblur(tiny.view(), one.view(), 0.01, norm).is_err());
    let badn = Normalization::Affine {
        offset: 0.0,
        scale: 0.0,
    };
    assert!(m.deblur(y.view(), psf.view(), 0.01, badn).is_err());
    // missing files
    let e = LearnedDeblur::load("/nonexistent/deblur.json", opts()).unwrap_err();
    assert!(matches!(e, Error::Model { .. }), "{e}");
    let dir = tempfile_dir();
    let side = dir.join("m.json");
    std::fs::write(&side, builtin::DEBLUR_SMALL_JSON).unwrap();
    let e = LearnedDeblur::load(&side, opts()).unwrap_err();
    assert!(matches!(e, Error::Model { .. }), "{e}");
    // a graph that does not fit the sidecar: the decoder given as the encoder
    std::fs::write(
        dir.join("deblur_small_enc.onnx"),
        builtin::DEBLUR_SMALL_DEC_ONNX,
    )
    .unwrap();
    std::fs::write(
        dir.join("deblur_small_dec.onnx"),
        builtin::DEBLUR_SMALL_DEC_ONNX,
    )
    .unwrap();
    let e = LearnedDeblur::load(&side, opts()).unwrap_err();
    assert!(matches!(e, Error::Contract(_)), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparseinv-deblur-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn tiled_inference_is_close_to_whole_image() {
    let (offset, scale, sigma) = params();
    let y = npy("y.npy");
    let psf = npy("psf.npy");
    let norm = Normalization::Affine { offset, scale };
    let mut m = builtin::deblur(opts()).unwrap();
    let whole = m.deblur(y.view(), psf.view(), sigma, norm).unwrap();
    // a tile as large as the image: one run, identical
    m.set_tiling(Some(Tiling {
        tile: 64,
        overlap: 8,
    }))
    .unwrap();
    let same = m.deblur(y.view(), psf.view(), sigma, norm).unwrap();
    assert_eq!(same, whole);
    // 30 × 37 in 12-pixel blocks with 12 pixels of context: 9 blocks per graph
    m.set_tiling(Some(Tiling {
        tile: 12,
        overlap: 12,
    }))
    .unwrap();
    let tiled = m.deblur(y.view(), psf.view(), sigma, norm).unwrap();
    let d = max_abs_diff(&tiled, &whole);
    eprintln!("tiled vs whole: max |Δ| = {d:e} (data scale 2)");
    assert!(d > 0.0, "the tiled path was not taken");
    assert!(d < 0.05, "max |Δ| = {d}");
    // invalid tilings
    for (tile, overlap) in [(0, 8), (16, 2)] {
        assert!(m.set_tiling(Some(Tiling { tile, overlap })).is_err());
    }
}
