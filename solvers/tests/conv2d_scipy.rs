//! Conv2d against scipy reference values written by `tests/data/gen_conv.py`
//! (`scipy.signal.fftconvolve` for same/full/valid, `scipy.ndimage.convolve` for
//! reflect/wrap).

use ndarray::{s, Array2, ArrayD};
use ndarray_npy::read_npy;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::C64;

fn load<T: ndarray_npy::ReadableElement>(name: &str) -> Array2<T> {
    let path = format!("{}/tests/data/conv/{name}.npy", env!("CARGO_MANIFEST_DIR"));
    read_npy(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn max_diff(a: &ArrayD<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

fn ours(x: &Array2<f64>, k: &Array2<f64>, mode: Boundary) -> ArrayD<f64> {
    let op = Conv2d::new([x.nrows(), x.ncols()], k.view(), mode).unwrap();
    op.apply(x.view().into_dyn()).unwrap()
}

#[test]
fn full_valid_reflect_wrap_match_scipy_for_odd_and_even_kernels() {
    let x: Array2<f64> = load("x");
    for name in ["k55", "k46"] {
        let k: Array2<f64> = load(name);
        for (mode, file) in [
            (Boundary::Full, "full"),
            (Boundary::Valid, "valid"),
            (Boundary::Reflect, "reflect"),
            (Boundary::Circular, "wrap"),
        ] {
            let want: Array2<f64> = load(&format!("{name}_{file}"));
            let err = max_diff(&ours(&x, &k, mode), &want);
            assert!(err < 1e-12, "{name} {mode:?}: {err:e}");
        }
    }
}

#[test]
fn same_matches_scipy_odd_and_is_shifted_by_one_for_even() {
    let x: Array2<f64> = load("x");
    // Odd kernel: identical to fftconvolve(mode='same').
    let k: Array2<f64> = load("k55");
    let want: Array2<f64> = load("k55_same");
    assert!(max_diff(&ours(&x, &k, Boundary::Same), &want) < 1e-12);

    // Even kernel: centre h/2 (ours) vs (h−1)/2 (scipy): ours = full[h/2.., w/2..] and
    // ours[i, j] = scipy_same[i + 1, j + 1].
    let k: Array2<f64> = load("k46");
    let (h, w) = k.dim();
    let y = ours(&x, &k, Boundary::Same);
    let full: Array2<f64> = load("k46_full");
    let crop = full
        .slice(s![h / 2..h / 2 + 16, w / 2..w / 2 + 20])
        .to_owned();
    assert!(max_diff(&y, &crop) < 1e-12);
    let same: Array2<f64> = load("k46_same");
    let y_in = y.slice(s![..15, ..19]).to_owned().into_dyn();
    let sc = same.slice(s![1.., 1..]).to_owned();
    assert!(max_diff(&y_in, &sc) < 1e-12);
    // ... and it is really different from scipy's unshifted 'same'.
    assert!(max_diff(&y, &same) > 1e-3);
}

#[test]
fn complex_matches_scipy() {
    let x: Array2<C64> = load("xc");
    let k: Array2<C64> = load("kc");
    for (mode, file) in [(Boundary::Full, "kc_full"), (Boundary::Same, "kc_same")] {
        let want: Array2<C64> = load(file);
        let op = Conv2d::new([16, 20], k.view(), mode).unwrap();
        let got = op.apply(x.view().into_dyn()).unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "{mode:?}: {err:e}");
    }
}

#[test]
fn f32_matches_scipy_to_single_precision() {
    let x: Array2<f64> = load("x");
    let k: Array2<f64> = load("k46");
    let want: Array2<f64> = load("k46_reflect");
    let (x32, k32) = (x.mapv(|v| v as f32), k.mapv(|v| v as f32));
    let op = Conv2d::new([16, 20], k32.view(), Boundary::Reflect).unwrap();
    let got = op.apply(x32.view().into_dyn()).unwrap();
    let err = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-4, "{err:e}");
}
