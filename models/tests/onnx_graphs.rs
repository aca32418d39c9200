//! End-to-end tests against graphs and reference outputs written by
//! `models/train/export_test_graphs.py` (Python onnxruntime 1.32.0). They need ONNX Runtime:
//! when the build script found none they are reported as ignored (`sparseinv_ort` cfg, see
//! models/build.rs); when it did, a runtime that fails to load is a test failure.

use ndarray::{ArrayD, Axis};
use ndarray_npy::read_npy;
use sparseinv_models::{
    runtime, DenoiserConfig, Error, Normalization, OnnxDenoiser, OnnxModel, SessionOptions, Tiling,
};
use sparseinv_solvers::denoise::Denoiser;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/onnx")
        .join(name)
}

fn npy(name: &str) -> ArrayD<f32> {
    read_npy(data(name)).unwrap()
}

fn opts() -> SessionOptions {
    SessionOptions {
        intra_threads: 1,
        ..Default::default()
    }
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn runtime_reports_where_it_came_from() {
    let rt = runtime().unwrap();
    eprintln!(
        "ONNX Runtime {} from {} ({})",
        rt.version(),
        rt.path().display(),
        rt.source()
    );
    let minor: u32 = rt
        .version()
        .split('.')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(minor >= 31, "version {}", rt.version());
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn drunet_graph_matches_python_onnxruntime() {
    let m = OnnxModel::load(data("drunet_tiny.onnx"), opts()).unwrap();
    assert_eq!(m.inputs().len(), 1);
    assert_eq!(m.inputs()[0].shape, vec![None, Some(2), None, None]);
    let x = npy("drunet_tiny_input.npy");
    let want = npy("drunet_tiny_output.npy");
    let got = m.run(&[x.view()]).unwrap().remove(0);
    let d = max_abs_diff(&got, &want);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        d <= 1e-5 * scale.max(1.0),
        "max diff {d} (output scale {scale})"
    );
    // The session is reused: a second run gives the same bits.
    let again = m.run(&[x.view()]).unwrap().remove(0);
    assert_eq!(again, got);
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn inputs_are_validated_with_names_and_shapes() {
    let m = OnnxModel::load(data("drunet_tiny.onnx"), opts()).unwrap();
    let bad = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 3, 16, 16]));
    let e = m.run(&[bad.view()]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Input { .. }), "{msg}");
    assert!(
        msg.contains("`x`") && msg.contains("[?, 2, ?, ?]") && msg.contains("[1, 3, 16, 16]"),
        "{msg}"
    );
    let e = m.run(&[]).unwrap_err();
    assert!(matches!(e, Error::Contract(_)), "{e}");
    let e = OnnxModel::load(data("no_such_model.onnx"), opts()).unwrap_err();
    assert!(matches!(e, Error::Model { .. }), "{e}");
    let e = OnnxModel::load(data("drunet_tiny_meta.json"), opts()).unwrap_err();
    assert!(e.to_string().contains("cannot load ONNX model"), "{e}");
    // The fixed-size graph rejects other spatial sizes.
    let f = OnnxModel::load(data("identity_fixed16.onnx"), opts()).unwrap();
    let bad = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 2, 16, 8]));
    assert!(f
        .run(&[bad.view()])
        .unwrap_err()
        .to_string()
        .contains("[1, 2, 16, 16]"));
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn denoiser_pipeline_matches_python_reference() {
    let d =
        OnnxDenoiser::load(data("drunet_tiny.onnx"), opts(), DenoiserConfig::default()).unwrap();
    assert!(d.takes_noise_map());
    let img = npy("drunet_tiny_image.npy");
    let want = npy("drunet_tiny_image_denoised.npy");
    let got = Denoiser::<f32>::denoise(&d, img.view(), 20.0).unwrap();
    // Output is in data units (~1000); compare relative to the data scale.
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= 1e-5 * 1000.0, "max diff {diff}");
    // f64 path: same numbers after rounding.
    let img64 = img.mapv(|v| v as f64);
    let got64 = Denoiser::<f64>::denoise(&d, img64.view(), 20.0).unwrap();
    let d64 = got64
        .iter()
        .zip(&want)
        .fold(0f64, |m, (a, b)| m.max((a - *b as f64).abs()));
    assert!(d64 <= 1e-2, "f64 path diff {d64}");
    // [C, H, W] and [N, C, H, W] shapes give the same result.
    let img3 = img.clone().insert_axis(Axis(0));
    let got3 = Denoiser::<f32>::denoise(&d, img3.view(), 20.0).unwrap();
    assert_eq!(got3.index_axis(Axis(0), 0), got.view());
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn tiled_inference_matches_numpy_blending() {
    let cfg = DenoiserConfig {
        normalization: Normalization::Affine {
            offset: 1000.0,
            scale: 50.0,
        },
        tiling: Tiling {
            tile: 16,
            overlap: 4,
        },
        ..Default::default()
    };
    let d = OnnxDenoiser::load(data("drunet_tiny.onnx"), opts(), cfg).unwrap();
    let big = npy("drunet_tiny_big.npy");
    // rows start at 0, 12, 24; columns at 0, 12, 24, 36.
    assert_eq!(d.tiles_for(40, 52), 3 * 4);
    let mut calls = 0;
    let got = d
        .denoise_with_progress(big.view(), 20.0, &mut |done, total| {
            calls += 1;
            assert_eq!(total, 12);
            assert_eq!(done, calls);
        })
        .unwrap();
    assert_eq!(calls, 12);
    let want = npy("drunet_tiny_tiled.npy");
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= 1e-5 * 1000.0, "max diff {diff}");
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn normalisation_is_inverted_exactly_and_sigma_scaled() {
    // Identity graph: D(x) = x whatever the normalisation and tiling.
    let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[37, 29]), |i| {
        (3.0e4 + 1.0e3 * ((i[0] * 7 + i[1] * 13) % 17) as f64) as f32
    });
    for norm in [
        Normalization::default(),
        Normalization::Affine {
            offset: -5.0,
            scale: 1234.5,
        },
    ] {
        let cfg = DenoiserConfig {
            normalization: norm,
            tiling: Tiling {
                tile: 16,
                overlap: 5,
            },
            ..Default::default()
        };
        let d = OnnxDenoiser::load(data("identity_noisemap.onnx"), opts(), cfg).unwrap();
        let y = Denoiser::<f32>::denoise(&d, x.view(), 10.0).unwrap();
        let rel = max_abs_diff(&y, &x) / 3.0e4;
        assert!(rel < 1e-6, "identity round trip rel err {rel}");
    }
    // sigma_echo returns the noise map σ/scale; de-normalised: scale·σ/scale + offset.
    let cfg = DenoiserConfig {
        normalization: Normalization::Affine {
            offset: 7.0,
            scale: 4.0,
        },
        ..Default::default()
    };
    let d = OnnxDenoiser::load(data("sigma_echo.onnx"), opts(), cfg).unwrap();
    let y = Denoiser::<f32>::denoise(&d, x.view(), 3.0).unwrap();
    assert!(
        y.iter().all(|&v| (v - 10.0).abs() < 1e-5),
        "{:?}",
        y.first()
    );
    // A fixed 16x16 graph tiles a 37x29 image exactly.
    let d = OnnxDenoiser::load(
        data("identity_fixed16.onnx"),
        opts(),
        DenoiserConfig::default(),
    )
    .unwrap();
    let y = Denoiser::<f32>::denoise(&d, x.view(), 1.0).unwrap();
    assert!(max_abs_diff(&y, &x) / 3.0e4 < 1e-6);
    // A 5x3 image on the fixed graph is reflect-padded up to the tile size.
    let small = x.slice(ndarray::s![..5, ..3]).to_owned().into_dyn();
    let y = Denoiser::<f32>::denoise(&d, small.view(), 1.0).unwrap();
    assert!(max_abs_diff(&y, &small) / 3.0e4 < 1e-6);
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn denoiser_rejects_bad_input() {
    let d =
        OnnxDenoiser::load(data("drunet_tiny.onnx"), opts(), DenoiserConfig::default()).unwrap();
    let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[8, 8]));
    assert!(Denoiser::<f32>::denoise(&d, x.view(), -1.0).is_err());
    assert!(Denoiser::<f32>::denoise(&d, x.view(), f32::NAN).is_err());
    let mut bad = x.clone();
    bad[[2, 3]] = f32::INFINITY;
    assert!(Denoiser::<f32>::denoise(&d, bad.view(), 0.1).is_err());
    let two = ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 8, 8]));
    let e = Denoiser::<f32>::denoise(&d, two.view(), 0.1).unwrap_err();
    assert!(e.to_string().contains("channel"), "{e}");
    let v = ArrayD::<f32>::zeros(ndarray::IxDyn(&[8]));
    assert!(Denoiser::<f32>::denoise(&d, v.view(), 0.1).is_err());
    let cfg = DenoiserConfig {
        tiling: Tiling {
            tile: 8,
            overlap: 8,
        },
        ..Default::default()
    };
    let m = OnnxModel::load(data("drunet_tiny.onnx"), opts()).unwrap();
    assert!(OnnxDenoiser::new(m, cfg).is_err());
    // Contract: without a noise map the identity graph's channel counts do not fit.
    let m = OnnxModel::load(data("identity_noisemap.onnx"), opts()).unwrap();
    let cfg = DenoiserConfig {
        noise_map: Some(false),
        ..Default::default()
    };
    assert!(matches!(OnnxDenoiser::new(m, cfg), Err(Error::Contract(_))));
}
