//! End-to-end tests of `sparseinv deblur` (the network parts need ONNX Runtime; without one at
//! build time they are reported as ignored, see models/build.rs and the root build.rs;
//! SPARSEINV_REQUIRE_ORT=1 makes them run and fail instead).
#![cfg(all(feature = "onnx", feature = "fits"))]

use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use sparseinv::io::fits::{read_fits, write_fits_2d, Header, WriteOptions};
use sparseinv_models::{builtin, Normalization, SessionOptions};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::StopCriteria;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::pnp::{
    pnp_admm, pnp_admm_with, pnp_pgd, red, CirculantNormalInverse, NormalSolver, PnpParams,
};
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::path::Path;
use std::process::{Command, Output};

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The library's learned deblurring of `y` as the CLI runs it in these tests: the test PSF,
/// σ = 0.02, identity normalisation.
fn lib_deblur(m: &sparseinv_models::LearnedDeblur, y: ndarray::ArrayView2<f64>) -> Array2<f64> {
    let norm = Normalization::Affine {
        offset: 0.0,
        scale: 1.0,
    };
    m.deblur(y, psf().view(), 0.02, norm).unwrap()
}

/// `max |a − b|` over arrays of the same shape (of any dimensionality).
fn max_abs_diff<D1: ndarray::Dimension, D2: ndarray::Dimension>(
    a: &ndarray::Array<f64, D1>,
    b: &ndarray::Array<f64, D2>,
) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// A 48 × 40 piecewise-constant scene in [0.1, 0.9] (squares, a disc, a bar).
fn scene() -> Array2<f64> {
    Array2::from_shape_fn((48, 40), |(i, j)| {
        let (y, x) = (i as f64, j as f64);
        let mut v = 0.2;
        if (8..20).contains(&i) && (6..18).contains(&j) {
            v = 0.8;
        }
        if (y - 32.0).powi(2) + (x - 26.0).powi(2) < 49.0 {
            v = 0.6;
        }
        if (4..44).contains(&i) && (30..33).contains(&j) {
            v = 0.9;
        }
        v
    })
}

fn psf() -> Array2<f64> {
    let k = Array2::from_shape_fn((7, 7), |(i, j)| {
        let (a, b) = (i as f64 - 3.0, j as f64 - 3.0);
        (-(a * a + b * b) / (2.0 * 1.5 * 1.5)).exp()
    });
    let s = k.sum();
    k / s
}

/// Blur (reflective borders) plus deterministic pseudo-noise of standard deviation ≈ `sigma`.
fn observe(x: &Array2<f64>, sigma: f64) -> Array2<f64> {
    let a = Conv2d::new([x.nrows(), x.ncols()], psf().view(), Boundary::Reflect).unwrap();
    let b = a.apply(x.view().into_dyn()).unwrap();
    let n = sparseinv_solvers::testing::randn::<f64>(x.shape(), 11);
    (b + n * sigma).into_dimensionality().unwrap()
}

fn rmse(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    ((a - b).mapv(|v| v * v).sum() / a.len() as f64).sqrt()
}

fn write_inputs(dir: &Path, y: &Array2<f64>) {
    write_npy(dir.join("y.npy"), y).unwrap();
    write_npy(dir.join("psf.npy"), &psf()).unwrap();
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn learned_on_fits_keeps_header_and_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let x = scene();
    let y = observe(&x, 0.02);
    let inp = dir.path().join("in.fits");
    let mut h = Header::default();
    h.set_str("OBJECT", "TESTFIELD", "a card that must survive");
    write_fits_2d(
        &inp,
        y.mapv(|v| v as f32).view(),
        &WriteOptions {
            header: Some(&h),
            extra: None,
            history: vec![],
            force: false,
        },
    )
    .unwrap();
    write_inputs(dir.path(), &y);
    let out = dir.path().join("out.fits");
    let report = dir.path().join("r.json");
    let o = exe()
        .arg("deblur")
        .arg(&inp)
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args([
            "--method", "learned", "--model", "builtin", "--sigma", "0.02",
        ])
        .args(["--offset", "0", "--scale", "1", "--threads", "1", "-o"])
        .arg(&out)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    ok(&o);
    let img = read_fits(&out, None).unwrap();
    assert_eq!(img.header.get_str("OBJECT").as_deref(), Some("TESTFIELD"));
    assert_eq!(img.header.get_str("DEBLUR").as_deref(), Some("learned"));
    let got = img.image2d().unwrap().to_owned();
    // the same computation through the library (the FITS file holds float32 data)
    let y32 = y.mapv(|v| v as f32 as f64);
    let m = builtin::deblur(SessionOptions {
        intra_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let want = lib_deblur(&m, y32.view());
    let d = max_abs_diff(&got, &want);
    assert!(d < 1e-5, "CLI vs library: {d}");
    // the same model named by one of its graph files (sidecar found beside it)
    let out2 = dir.path().join("out2.npy");
    let enc = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/onnx/deblur_small_enc.onnx");
    let o = exe()
        .arg("deblur")
        .arg(dir.path().join("y.npy"))
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args(["--method", "learned", "--sigma", "0.02", "--model"])
        .arg(&enc)
        .args(["--offset", "0", "--scale", "1", "--threads", "1", "-o"])
        .arg(&out2)
        .output()
        .unwrap();
    ok(&o);
    let got2: Array2<f64> = read_npy(&out2).unwrap();
    let want2 = lib_deblur(&m, y.view());
    let d2 = max_abs_diff(&got2, &want2);
    assert!(d2 < 1e-12, "graph-file model vs builtin: {d2}");
    // tiled networks: the CLI's --tile/--overlap equal the library's set_tiling
    let out3 = dir.path().join("out3.npy");
    let o = exe()
        .arg("deblur")
        .arg(dir.path().join("y.npy"))
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args([
            "--method",
            "learned",
            "--sigma",
            "0.02",
            "--tile",
            "16",
            "--overlap",
            "8",
        ])
        .args(["--offset", "0", "--scale", "1", "--threads", "1", "-o"])
        .arg(&out3)
        .output()
        .unwrap();
    ok(&o);
    let got3: Array2<f64> = read_npy(&out3).unwrap();
    let mut mt = m;
    mt.set_tiling(Some(sparseinv_models::Tiling {
        tile: 16,
        overlap: 8,
    }))
    .unwrap();
    let want3 = lib_deblur(&mt, y.view());
    let d3 = max_abs_diff(&got3, &want3);
    assert!(d3 < 1e-12, "tiled CLI vs library: {d3}");
    assert!(got3 != got2, "the tiled path was not taken");
    // and it deblurs: closer to the scene than the observation
    let (e_out, e_in) = (rmse(&got, &x), rmse(&y, &x));
    assert!(e_out < 0.8 * e_in, "rmse {e_out} vs observed {e_in}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["method"], "learned");
    assert_eq!(j["sigma"], 0.02);
    assert_eq!(j["shape"], serde_json::json!([48, 40]));
}

#[test]
fn pnp_fista_starlet_on_npy_matches_the_library() {
    // No network involved: runs without ONNX Runtime.
    let dir = tempfile::tempdir().unwrap();
    let x = scene();
    let y = observe(&x, 0.03);
    write_inputs(dir.path(), &y);
    let out = dir.path().join("out.npy");
    let o = exe()
        .arg("deblur")
        .arg(dir.path().join("y.npy"))
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args([
            "--method",
            "pnp-fista",
            "--denoiser",
            "starlet",
            "--sigma",
            "0.03",
        ])
        .args([
            "--offset",
            "0",
            "--scale",
            "1",
            "--iters",
            "20",
            "--strength",
            "1",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let got: Array2<f64> = read_npy(&out).unwrap();
    let a = Conv2d::new([48, 40], psf().view(), Boundary::Reflect).unwrap();
    let d = StarletDenoiser::new(4).unwrap();
    let params = PnpParams {
        sigma: 0.03,
        stop: StopCriteria {
            max_iters: 20,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let (want, _) = pnp_pgd(
        &a,
        y.view().into_dyn(),
        &d as &dyn Denoiser<f64>,
        Some(y.view().into_dyn()),
        &params,
        None,
    )
    .unwrap();
    let diff = max_abs_diff(&got, &want);
    assert!(diff < 1e-12, "CLI vs library {diff}");
    // the iterate moved from the data towards a deblurred image: a better fit ‖A x − y‖
    let fit = |v: &Array2<f64>| {
        let r = a.apply(v.view().into_dyn()).unwrap() - y.view().into_dyn();
        r.mapv(|t| t * t).sum().sqrt()
    };
    assert!(fit(&got) < fit(&y), "fit {} vs {}", fit(&got), fit(&y));
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn admm_and_red_with_the_builtin_denoiser_match_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let x = scene();
    let y = observe(&x, 0.03);
    write_inputs(dir.path(), &y);
    let a = Conv2d::new([48, 40], psf().view(), Boundary::Reflect).unwrap();
    let net = builtin::denoiser(
        SessionOptions {
            intra_threads: 1,
            ..Default::default()
        },
        sparseinv_models::DenoiserConfig {
            normalization: Normalization::Affine {
                offset: 0.0,
                scale: 1.0,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let params = PnpParams {
        sigma: 0.03,
        stop: StopCriteria {
            max_iters: 4,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    for method in ["pnp-admm", "red"] {
        let out = dir.path().join(format!("{method}.npy"));
        let o = exe()
            .arg("deblur")
            .arg(dir.path().join("y.npy"))
            .arg("--psf")
            .arg(dir.path().join("psf.npy"))
            .args([
                "--method",
                method,
                "--denoiser",
                "builtin",
                "--sigma",
                "0.03",
            ])
            .args([
                "--offset",
                "0",
                "--scale",
                "1",
                "--iters",
                "4",
                "--threads",
                "1",
                "--strength",
                "1",
                "-o",
            ])
            .arg(&out)
            .output()
            .unwrap();
        ok(&o);
        let got: Array2<f64> = read_npy(&out).unwrap();
        let d: &dyn Denoiser<f64> = &net;
        let yv = y.view().into_dyn();
        let (want, _) = if method == "red" {
            red(&a, yv.clone(), d, Some(yv), &params, None).unwrap()
        } else {
            pnp_admm(&a, yv.clone(), d, Some(yv), &params, None).unwrap()
        };
        let diff = max_abs_diff(&got, &want);
        assert!(diff < 1e-6, "{method}: CLI vs library {diff}");
        assert!(
            rmse(&got, &y) > 1e-3,
            "{method}: the data were left unchanged"
        );
    }
}

#[test]
fn png_keeps_its_bit_depth() {
    // starlet denoiser: no network needed
    let dir = tempfile::tempdir().unwrap();
    let y = observe(&scene(), 0.03);
    let inp = dir.path().join("in.png");
    let img = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(40, 48, |c, r| {
        image::Luma([(y[[r as usize, c as usize]].clamp(0.0, 1.0) * 65535.0).round() as u16])
    });
    img.save(&inp).unwrap();
    write_npy(dir.path().join("psf.npy"), &psf()).unwrap();
    let out = dir.path().join("out.png");
    let o = exe()
        .arg("deblur")
        .arg(&inp)
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args([
            "--method",
            "red",
            "--denoiser",
            "starlet",
            "--sigma",
            "0.03",
        ])
        .args(["--iters", "3", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let back = image::open(&out).unwrap();
    assert_eq!(back.color(), image::ColorType::L16);
    assert_eq!((back.width(), back.height()), (40, 48));
}

#[test]
fn bad_inputs_give_one_error_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let y = observe(&scene(), 0.01);
    write_inputs(dir.path(), &y);
    let out = dir.path().join("o.npy");
    let run = |args: &[&str], inp: &Path, psf: &Path| -> Output {
        exe()
            .arg("deblur")
            .arg(inp)
            .arg("--psf")
            .arg(psf)
            .args(args)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap()
    };
    let fail = |o: Output, needle: &str| {
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error:"), "{err}");
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert!(!out.exists());
    };
    let yp = dir.path().join("y.npy");
    let pp = dir.path().join("psf.npy");
    let starlet = [
        "--method",
        "pnp-fista",
        "--denoiser",
        "starlet",
        "--iters",
        "2",
    ];
    // missing input / PSF file
    fail(run(&starlet, &dir.path().join("nope.npy"), &pp), "nope.npy");
    fail(run(&starlet, &yp, &dir.path().join("nope.npy")), "nope.npy");
    // PSF larger than the image
    let big = dir.path().join("big.npy");
    write_npy(&big, &Array2::<f64>::ones((49, 5))).unwrap();
    fail(run(&starlet, &yp, &big), "smaller than the image");
    // NaN in the image
    let mut yn = y.clone();
    yn[[5, 5]] = f64::NAN;
    let nan = dir.path().join("nan.npy");
    write_npy(&nan, &yn).unwrap();
    fail(run(&starlet, &nan, &pp), "non-finite");
    // zero PSF
    let zero = dir.path().join("zero.npy");
    write_npy(&zero, &Array2::<f64>::zeros((3, 3))).unwrap();
    fail(run(&starlet, &yp, &zero), "PSF");
    // missing learned model
    fail(
        run(
            &["--method", "learned", "--model", "/nonexistent/m.json"],
            &yp,
            &pp,
        ),
        "m.json",
    );
    // mismatched output kind
    let o = exe()
        .arg("deblur")
        .arg(&yp)
        .arg("--psf")
        .arg(&pp)
        .args(starlet)
        .arg("-o")
        .arg(dir.path().join("o.png"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!dir.path().join("o.png").exists());
    // an existing output is refused without --force and left alone
    std::fs::write(&out, b"keep").unwrap();
    let o = run(&starlet, &yp, &pp);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    ok(&run(&[&starlet[..], &["--force"]].concat(), &yp, &pp));
    std::fs::remove_file(&out).unwrap();
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
fn learned_bad_tiling_and_cuda_give_one_error_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let y = observe(&scene(), 0.01);
    write_inputs(dir.path(), &y);
    let out = dir.path().join("o.npy");
    let yp = dir.path().join("y.npy");
    let pp = dir.path().join("psf.npy");
    let run = |args: &[&str]| -> Output {
        exe()
            .arg("deblur")
            .arg(&yp)
            .arg("--psf")
            .arg(&pp)
            .args(args)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap()
    };
    // a tiling without enough context for the decoder's padding
    let o = run(&["--method", "learned", "--tile", "16", "--overlap", "2"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error:"), "{err}");
    assert!(err.contains("tiling"), "expected `tiling` in: {err}");
    assert!(!out.exists());
    // --device cuda with the CPU-only runtime says so clearly (or works on a GPU build)
    let o = run(&["--method", "learned", "--device", "cuda"]);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("CUDA"), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn pnp_admm_defaults_are_the_library_constants() {
    // No network involved: runs without ONNX Runtime. Without --strength/--iters the CLI
    // runs PNP_DEFAULT_STRENGTH for PNP_DEFAULT_ITERS iterations: σ_d = 3σ, ρ = 1/9, 30.
    assert_eq!(sparseinv::pipeline::PNP_DEFAULT_STRENGTH, 3.0);
    assert_eq!(sparseinv::pipeline::PNP_DEFAULT_ITERS, 30);
    let dir = tempfile::tempdir().unwrap();
    let x = scene();
    let y = observe(&x, 0.03);
    write_inputs(dir.path(), &y);
    let out = dir.path().join("out.npy");
    let o = exe()
        .arg("deblur")
        .arg(dir.path().join("y.npy"))
        .arg("--psf")
        .arg(dir.path().join("psf.npy"))
        .args([
            "--method",
            "pnp-admm",
            "--denoiser",
            "starlet",
            "--sigma",
            "0.03",
        ])
        .args(["--offset", "0", "--scale", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let got: Array2<f64> = read_npy(&out).unwrap();
    let a = Conv2d::new([48, 40], psf().view(), Boundary::Reflect).unwrap();
    let d = StarletDenoiser::new(4).unwrap();
    let params = PnpParams {
        sigma: 3.0 * 0.03,
        lambda: 1.0 / 9.0,
        rho: 1.0 / 9.0,
        stop: StopCriteria {
            max_iters: 30,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    // the pipeline solves the x-update with the mirror-grid inverse: exact for this
    // symmetric PSF (one DCT filter), a CG preconditioner otherwise
    let m = CirculantNormalInverse::mirrored([48, 40], psf().view(), 1.0 / 9.0).unwrap();
    let solver = m.solver_for(&a, params.cg_tol);
    assert!(matches!(solver, NormalSolver::Exact(_)));
    let (want, rep) = pnp_admm_with(
        &a,
        solver,
        y.view().into_dyn(),
        &d as &dyn Denoiser<f64>,
        Some(y.view().into_dyn()),
        &params,
        None,
    )
    .unwrap();
    assert_eq!(rep.iterations, 30);
    let diff = max_abs_diff(&got, &want);
    assert!(
        diff < 1e-12,
        "CLI defaults vs library at strength 3, 30 iterations: {diff}"
    );
}
