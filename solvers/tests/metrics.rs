//! Metrics against reference values computed by scikit-image 0.26 / numpy
//! (solvers/tests/data/gen_metrics.py writes the .npy files read here), plus closed-form
//! cases and error handling.

use ndarray::{array, Array1, Array2, ArrayD};
use ndarray_npy::read_npy;
use sparseinv_solvers::metrics::{
    flux_ratio, mse, nmse, nmse_db, psnr, ssim, ssim_with, support_recovery, SsimParams, SsimWindow,
};
use sparseinv_solvers::{Error, C64};
use std::path::PathBuf;

/// Case names in the row order of metrics_expected.npy (see gen_metrics.py).
const CASES: [&str; 5] = [
    "image_noisy",
    "image_biased",
    "image_8bit_scale",
    "volume_3d",
    "vector_1d",
];

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(case: &str, which: &str) -> ArrayD<f64> {
    read_npy(data(&format!("metrics_{case}_{which}.npy"))).unwrap()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, scikit-image/numpy {want}"
    );
}

#[test]
fn psnr_mse_nmse_ssim_match_scikit_image() {
    let expected: Array2<f64> = read_npy(data("metrics_expected.npy")).unwrap();
    assert_eq!(expected.nrows(), CASES.len());
    for (row, case) in expected.rows().into_iter().zip(CASES) {
        let truth = load(case, "truth");
        let est = load(case, "estimate");
        let r = row[0];
        close(
            mse(est.view(), truth.view()).unwrap(),
            row[1],
            1e-9,
            &format!("{case} mse"),
        );
        close(
            psnr(est.view(), truth.view(), r).unwrap(),
            row[2],
            1e-9,
            &format!("{case} psnr"),
        );
        close(
            nmse(est.view(), truth.view()).unwrap(),
            row[3],
            1e-9,
            &format!("{case} nmse"),
        );
        close(
            nmse_db(est.view(), truth.view()).unwrap(),
            row[4],
            1e-9,
            &format!("{case} nmse_db"),
        );
        if row[5].is_nan() {
            continue;
        }
        close(
            ssim(est.view(), truth.view(), r).unwrap(),
            row[5],
            1e-6,
            &format!("{case} ssim"),
        );
        let g = ssim_with(est.view(), truth.view(), r, &SsimParams::wang2004()).unwrap();
        close(g, row[6], 1e-6, &format!("{case} ssim gaussian"));
        let p9 = SsimParams {
            window: SsimWindow::Uniform(9),
            ..Default::default()
        };
        let u9 = ssim_with(est.view(), truth.view(), r, &p9).unwrap();
        close(u9, row[7], 1e-6, &format!("{case} ssim win 9"));
        // SSIM is symmetric in its two arguments.
        close(
            ssim(truth.view(), est.view(), r).unwrap(),
            row[5],
            1e-6,
            "ssim symmetry",
        );
    }
}

#[test]
fn f32_inputs_agree_with_f64() {
    let truth = load("image_noisy", "truth").mapv(|v| v as f32);
    let est = load("image_noisy", "estimate").mapv(|v| v as f32);
    let (t64, e64) = (truth.mapv(|v| v as f64), est.mapv(|v| v as f64));
    let a = ssim(est.view(), truth.view(), 1.0).unwrap();
    let b = ssim(e64.view(), t64.view(), 1.0).unwrap();
    assert!((a - b).abs() < 1e-12);
    let a = psnr(est.view(), truth.view(), 1.0).unwrap();
    let b = psnr(e64.view(), t64.view(), 1.0).unwrap();
    assert!((a - b).abs() < 1e-12);
}

#[test]
fn complex_nmse_matches_numpy() {
    let h: Array1<C64> = read_npy(data("metrics_complex_truth.npy")).unwrap();
    let he: Array1<C64> = read_npy(data("metrics_complex_estimate.npy")).unwrap();
    let want: Array1<f64> = read_npy(data("metrics_complex_expected.npy")).unwrap();
    close(
        nmse(he.view(), h.view()).unwrap(),
        want[0],
        1e-12,
        "complex nmse",
    );
}

#[test]
fn closed_forms() {
    let x = Array2::from_shape_fn((8, 8), |(i, j)| ((i * 3 + j) % 5) as f64 / 4.0);
    assert_eq!(psnr(x.view(), x.view(), 1.0).unwrap(), f64::INFINITY);
    assert!((ssim(x.view(), x.view(), 1.0).unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(nmse_db(x.view(), x.view()).unwrap(), f64::NEG_INFINITY);
    // Constant offset c: MSE = c², PSNR = 20 log10(R / c).
    let y = x.mapv(|v| v + 0.1);
    assert!((psnr(y.view(), x.view(), 2.0).unwrap() - 20.0 * (2.0f64 / 0.1).log10()).abs() < 1e-9);
    // Scaling by (1+e): NMSE = e².
    let z = x.mapv(|v| 1.25 * v);
    assert!((nmse(z.view(), x.view()).unwrap() - 0.0625).abs() < 1e-12);
    // Flux ratio of a 1.25× scaled image.
    assert!((flux_ratio(z.view(), x.view(), None).unwrap() - 1.25).abs() < 1e-12);
    // SSIM of constant images with different levels: only the luminance term remains,
    // (2ab + C1) / (a² + b² + C1).
    let a = Array2::from_elem((7, 7), 0.2);
    let b = Array2::from_elem((7, 7), 0.6);
    let c1 = (0.01f64 * 1.0).powi(2);
    let want = (2.0 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1);
    assert!((ssim(a.view(), b.view(), 1.0).unwrap() - want).abs() < 1e-12);
}

#[test]
fn support_recovery_counts() {
    let truth = array![0.0, 1.0, 0.0, -2.0, 0.0, 0.5];
    let est = array![0.0, 0.9, 1e-8, -1.8, 0.3, 0.0];
    let r = support_recovery(est.view(), truth.view(), 1e-6).unwrap();
    assert_eq!(
        (r.true_positives, r.false_positives, r.false_negatives),
        (2, 1, 1)
    );
    assert!((r.precision - 2.0 / 3.0).abs() < 1e-15);
    assert!((r.recall - 2.0 / 3.0).abs() < 1e-15);
    assert!((r.f1 - 2.0 / 3.0).abs() < 1e-15);
    assert!(!r.exact);
    // Threshold 0.4 (on both): the spurious 0.3 goes, the true 0.5 is still missed.
    let r = support_recovery(est.view(), truth.view(), 0.4).unwrap();
    assert_eq!(
        (r.true_positives, r.false_positives, r.false_negatives),
        (2, 0, 1)
    );
    assert!(!r.exact && r.precision == 1.0 && (r.recall - 2.0 / 3.0).abs() < 1e-15);
    // Threshold 0.6 drops the 0.5 entry from the true support too: exact recovery.
    let r = support_recovery(est.view(), truth.view(), 0.6).unwrap();
    assert_eq!(
        (r.true_positives, r.false_positives, r.false_negatives),
        (2, 0, 0)
    );
    assert!(r.exact && r.f1 == 1.0);
    // Complex data: supports from the modulus.
    let t = array![C64::new(0.0, 1.0), C64::new(0.0, 0.0)];
    let e = array![C64::new(0.0, 0.0), C64::new(0.6, 0.8)];
    let r = support_recovery(e.view(), t.view(), 0.5).unwrap();
    assert_eq!(
        (r.true_positives, r.false_positives, r.false_negatives),
        (0, 1, 1)
    );
    assert_eq!((r.precision, r.recall, r.f1), (0.0, 0.0, 0.0));
    // Both empty: vacuously exact.
    let z = array![0.0, 0.0];
    let r = support_recovery(z.view(), z.view(), 0.0).unwrap();
    assert!(r.exact && r.precision == 1.0 && r.recall == 1.0);
}

#[test]
fn flux_ratio_with_mask() {
    let t = array![[1.0, 2.0], [3.0, 4.0]];
    let e = array![[2.0, 2.0], [3.0, 100.0]];
    let m = array![[true, true], [true, false]];
    assert!((flux_ratio(e.view(), t.view(), Some(m.view())).unwrap() - 7.0 / 6.0).abs() < 1e-15);
    let none = Array2::from_elem((2, 2), false);
    assert!(matches!(
        flux_ratio(e.view(), t.view(), Some(none.view())),
        Err(Error::Empty { .. })
    ));
    let wrong = Array2::from_elem((2, 2), true)
        .into_shape_with_order((1, 4))
        .unwrap();
    assert!(matches!(
        flux_ratio(e.view(), t.view(), Some(wrong.view())),
        Err(Error::ShapeMismatch { .. })
    ));
    let zero = array![[1.0, -1.0], [0.0, 0.0]];
    assert!(matches!(
        flux_ratio(e.view(), zero.view(), None),
        Err(Error::Numerical(_))
    ));
}

#[test]
fn errors_not_panics() {
    let a = Array2::<f64>::zeros((8, 8));
    let b = Array2::<f64>::zeros((8, 9));
    let x = Array2::from_shape_fn((8, 8), |(i, j)| (i + j) as f64);
    assert!(matches!(
        psnr(a.view(), b.view(), 1.0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        ssim(a.view(), b.view(), 1.0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        nmse(a.view(), b.view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        support_recovery(a.view(), b.view(), 0.1),
        Err(Error::ShapeMismatch { .. })
    ));
    let e = Array1::<f64>::zeros(0);
    assert!(matches!(
        psnr(e.view(), e.view(), 1.0),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(nmse(e.view(), e.view()), Err(Error::Empty { .. })));
    assert!(matches!(mse(e.view(), e.view()), Err(Error::Empty { .. })));
    for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            psnr(x.view(), x.view(), r),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            ssim(x.view(), x.view(), r),
            Err(Error::InvalidParameter { .. })
        ));
    }
    // NMSE against an all-zero truth is undefined.
    assert!(matches!(nmse(x.view(), a.view()), Err(Error::Numerical(_))));
    // SSIM window larger than the image, even or too small windows, bad sigma.
    let small = Array2::<f64>::zeros((5, 9));
    assert!(matches!(
        ssim(small.view(), small.view(), 1.0),
        Err(Error::InvalidParameter { .. })
    ));
    for w in [
        SsimWindow::Uniform(4),
        SsimWindow::Uniform(1),
        SsimWindow::Gaussian { sigma: 0.0 },
    ] {
        let p = SsimParams {
            window: w,
            ..Default::default()
        };
        assert!(ssim_with(x.view(), x.view(), 1.0, &p).is_err());
    }
    // Non-finite input.
    let mut n = x.clone();
    n[[2, 3]] = f64::NAN;
    assert!(matches!(
        psnr(n.view(), x.view(), 1.0),
        Err(Error::NonFinite { index: 19, .. })
    ));
    assert!(support_recovery(x.view(), x.view(), -1.0).is_err());
}
