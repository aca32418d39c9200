//! Conv2d against a brute-force (direct summation) convolution in every boundary mode, the
//! adjoint dot test, the Fourier-diagonal helpers and input validation.

use ndarray::{Array2, ArrayD, Ix2};
use num_complex::Complex;
use sparseinv_solvers::op::{Boundary, Conv2d, Diagonalizable, LinearOperator};
use sparseinv_solvers::testing::{assert_adjoint, randn};
use sparseinv_solvers::{Error, Real, Scalar, C32, C64};

const MODES: [Boundary; 5] = [
    Boundary::Circular,
    Boundary::Same,
    Boundary::Full,
    Boundary::Valid,
    Boundary::Reflect,
];

fn reflect(i: isize, n: usize) -> usize {
    let m = i.rem_euclid(2 * n as isize) as usize;
    if m < n {
        m
    } else {
        2 * n - 1 - m
    }
}

/// Direct summation of the documented formula.
fn brute<T: Scalar>(x: &Array2<T>, k: &Array2<T>, mode: Boundary) -> Array2<T> {
    let (n0, n1) = x.dim();
    let (h, w) = k.dim();
    let (c0, c1) = ((h / 2) as isize, (w / 2) as isize);
    let ext = |i: isize, j: isize| -> T {
        match mode {
            Boundary::Circular => {
                x[[
                    i.rem_euclid(n0 as isize) as usize,
                    j.rem_euclid(n1 as isize) as usize,
                ]]
            }
            Boundary::Reflect => x[[reflect(i, n0), reflect(j, n1)]],
            _ => {
                if i >= 0 && j >= 0 && (i as usize) < n0 && (j as usize) < n1 {
                    x[[i as usize, j as usize]]
                } else {
                    T::zero()
                }
            }
        }
    };
    let (m0, m1, s0, s1) = match mode {
        Boundary::Full => (n0 + h - 1, n1 + w - 1, 0, 0),
        Boundary::Valid => (n0 + 1 - h, n1 + 1 - w, h as isize - 1, w as isize - 1),
        _ => (n0, n1, c0, c1),
    };
    Array2::from_shape_fn((m0, m1), |(i, j)| {
        let mut acc = T::zero();
        for a in 0..h {
            for b in 0..w {
                acc += k[[a, b]] * ext(i as isize + s0 - a as isize, j as isize + s1 - b as isize);
            }
        }
        acc
    })
}

fn max_abs_diff<T: Scalar>(a: &ArrayD<T>, b: &Array2<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(&u, &v)| (u - v).modulus().to_f64_lossless())
        .fold(0.0, f64::max)
}

fn check_against_brute<T: Scalar>(img: [usize; 2], ker: [usize; 2], tol: f64, seed: u64) {
    let x: Array2<T> = randn::<T>(&img, seed).into_dimensionality::<Ix2>().unwrap();
    let k: Array2<T> = randn::<T>(&ker, seed + 7)
        .into_dimensionality::<Ix2>()
        .unwrap();
    for mode in MODES {
        if mode == Boundary::Valid && (ker[0] > img[0] || ker[1] > img[1]) {
            continue;
        }
        let op = Conv2d::new(img, k.view(), mode).unwrap();
        let want = brute(&x, &k, mode);
        let got = op.apply(x.view().into_dyn()).unwrap();
        let err = max_abs_diff(&got, &want);
        assert!(
            err < tol,
            "{mode:?} img {img:?} ker {ker:?}: max |fft − direct| = {err:e}"
        );
    }
}

const SHAPES: [([usize; 2], [usize; 2]); 8] = [
    ([7, 9], [3, 3]),
    ([16, 20], [5, 5]),
    ([16, 20], [4, 6]),
    ([9, 8], [2, 5]),
    ([6, 11], [1, 1]),
    ([5, 5], [5, 5]),
    // kernel larger than the image: Same/Full/Reflect/Circular only
    ([4, 5], [7, 9]),
    ([3, 2], [6, 4]),
];

#[test]
fn matches_direct_sum_f64() {
    for (i, (img, ker)) in SHAPES.iter().enumerate() {
        check_against_brute::<f64>(*img, *ker, 1e-12, i as u64);
    }
}

#[test]
fn matches_direct_sum_f32() {
    for (i, (img, ker)) in SHAPES.iter().enumerate() {
        check_against_brute::<f32>(*img, *ker, 2e-5, 10 + i as u64);
    }
}

#[test]
fn matches_direct_sum_complex() {
    for (i, (img, ker)) in SHAPES.iter().enumerate() {
        check_against_brute::<C64>(*img, *ker, 1e-12, 20 + i as u64);
        check_against_brute::<C32>(*img, *ker, 2e-5, 30 + i as u64);
    }
}

#[test]
fn non_contiguous_views_are_handled() {
    let big: Array2<f64> = randn::<f64>(&[12, 18], 3).into_dimensionality().unwrap();
    let x = big.slice(ndarray::s![..;2, 1..;2]).to_owned(); // 6×9
    let xs = big.slice(ndarray::s![..;2, 1..;2]);
    let k: Array2<f64> = randn::<f64>(&[3, 4], 4).into_dimensionality().unwrap();
    for mode in MODES {
        let op = Conv2d::new([6, 9], k.view(), mode).unwrap();
        let want = brute(&x, &k, mode);
        let got = op.apply(xs.into_dyn()).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-12);
        // strided output
        let [m0, m1] = op.output_shape();
        let mut out = Array2::<f64>::zeros((m0, 2 * m1));
        op.apply_into(
            xs.into_dyn(),
            out.slice_mut(ndarray::s![.., ..;2]).into_dyn(),
        );
        let got2 = out.slice(ndarray::s![.., ..;2]).to_owned().into_dyn();
        assert!(max_abs_diff(&got2, &want) < 1e-12);
    }
}

fn adjoints<T: Scalar>(tol: f64) {
    for (img, ker) in SHAPES {
        for mode in MODES {
            if mode == Boundary::Valid && (ker[0] > img[0] || ker[1] > img[1]) {
                continue;
            }
            let k = randn::<T>(&ker, 5).into_dimensionality::<Ix2>().unwrap();
            let op = Conv2d::new(img, k.view(), mode).unwrap();
            assert_adjoint(&op, tol);
        }
    }
}

#[test]
fn adjoint_dot_test_all_modes() {
    adjoints::<f64>(1e-13);
    adjoints::<f32>(1e-5);
    adjoints::<C64>(1e-13);
    adjoints::<C32>(1e-5);
}

/// The adjoint equals the direct correlation `x[i,j] = Σ conj(k[a,b]) y[...]`: compare
/// `Aᴴ e_m` with row m of the brute-force matrix.
#[test]
fn adjoint_equals_transpose_of_brute_matrix() {
    let (img, ker) = ([5usize, 6usize], [4usize, 3usize]);
    let k: Array2<C64> = randn::<C64>(&ker, 9).into_dimensionality().unwrap();
    for mode in MODES {
        let op = Conv2d::new(img, k.view(), mode).unwrap();
        let [m0, m1] = op.output_shape();
        // brute matrix columns: A e_j
        let mut cols = Vec::new();
        for j in 0..img[0] * img[1] {
            let mut e = Array2::<C64>::zeros((img[0], img[1]));
            e[[j / img[1], j % img[1]]] = C64::new(1.0, 0.0);
            cols.push(brute(&e, &k, mode));
        }
        for m in [0, m0 * m1 / 2, m0 * m1 - 1] {
            let mut e = ArrayD::<C64>::zeros(vec![m0, m1]);
            e[[m / m1, m % m1]] = C64::new(1.0, 0.0);
            let row = op.adjoint(e.view()).unwrap();
            for (j, col) in cols.iter().enumerate() {
                let want = col[[m / m1, m % m1]].conj();
                let got = row[[j / img[1], j % img[1]]];
                assert!((got - want).norm() < 1e-12, "{mode:?} m={m} j={j}");
            }
        }
    }
}

#[test]
fn centred_delta_is_identity_for_even_and_odd_kernels() {
    for ker in [[3usize, 3usize], [4, 6], [2, 1]] {
        let mut k = Array2::<f64>::zeros((ker[0], ker[1]));
        k[[ker[0] / 2, ker[1] / 2]] = 1.0;
        let x = randn::<f64>(&[8, 7], 1);
        for mode in [Boundary::Circular, Boundary::Same, Boundary::Reflect] {
            let op = Conv2d::new([8, 7], k.view(), mode).unwrap();
            let y = op.apply(x.view()).unwrap();
            let err = (&y - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(err < 1e-13, "{mode:?} {ker:?}: {err}");
        }
    }
}

#[test]
fn fourier_eigenvalues_and_filters() {
    let img = [8usize, 10usize];
    let k: Array2<f64> = randn::<f64>(&[3, 4], 2).into_dimensionality().unwrap();
    let op = Conv2d::new(img, k.view(), Boundary::Circular).unwrap();
    // Eigenvalues: brute-force DFT of the centred kernel.
    let lam = op.fourier_eigenvalues().unwrap();
    assert_eq!(lam.shape(), &img);
    for u in 0..img[0] {
        for v in 0..img[1] {
            let mut s = C64::new(0.0, 0.0);
            for a in 0..3 {
                for b in 0..4 {
                    let ph = -2.0
                        * std::f64::consts::PI
                        * ((u as f64) * (a as f64 - 1.0) / img[0] as f64
                            + (v as f64) * (b as f64 - 2.0) / img[1] as f64);
                    s += C64::new(ph.cos(), ph.sin()) * k[[a, b]];
                }
            }
            assert!((lam[[u, v]] - s).norm() < 1e-12);
        }
    }
    // f(λ) = λ reproduces A, f(λ) = conj λ reproduces Aᴴ.
    let x = randn::<f64>(&img, 3);
    let ax = op.apply(x.view()).unwrap();
    let fx = op.apply_fourier_filter(x.view(), &|l| l).unwrap();
    assert!((&ax - &fx).iter().all(|d| d.abs() < 1e-12));
    let ahx = op.adjoint(x.view()).unwrap();
    let gx = op.apply_fourier_filter(x.view(), &|l| l.conj()).unwrap();
    assert!((&ahx - &gx).iter().all(|d| d.abs() < 1e-12));
    // Tikhonov: z = (AᴴA + μ I)⁻¹ Aᴴ y satisfies the normal equations.
    let mu = 0.3;
    let y = randn::<f64>(&img, 4);
    let z = op
        .apply_fourier_filter(y.view(), &|l| l.conj() / (l.norm_sqr() + mu))
        .unwrap();
    let az = op.apply(z.view()).unwrap();
    let lhs = op.adjoint(az.view()).unwrap() + &z * mu;
    let rhs = op.adjoint(y.view()).unwrap();
    assert!((&lhs - &rhs).iter().all(|d| d.abs() < 1e-11));
}

#[test]
fn fourier_filter_complex() {
    let img = [6usize, 5usize];
    let k: Array2<C64> = randn::<C64>(&[2, 3], 2).into_dimensionality().unwrap();
    let op = Conv2d::new(img, k.view(), Boundary::Circular).unwrap();
    let x = randn::<C64>(&img, 8);
    // f(λ) = λ² is A∘A
    let aax = op.apply(op.apply(x.view()).unwrap().view()).unwrap();
    let f = op.apply_fourier_filter(x.view(), &|l| l * l).unwrap();
    assert!((&aax - &f).iter().all(|d| d.norm() < 1e-12));
    let lam = op.fourier_eigenvalues().unwrap();
    assert_eq!(lam.shape(), &img);
    let _: Complex<f64> = lam[[0, 0]];
}

#[test]
fn validation_errors() {
    let k = Array2::<f64>::ones((3, 3));
    assert!(matches!(
        Conv2d::new([0, 5], k.view(), Boundary::Same),
        Err(Error::Empty { .. })
    ));
    let e = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        Conv2d::new([5, 5], e.view(), Boundary::Same),
        Err(Error::Empty { .. })
    ));
    let mut bad = k.clone();
    bad[[1, 2]] = f64::NAN;
    assert!(matches!(
        Conv2d::new([5, 5], bad.view(), Boundary::Same),
        Err(Error::NonFinite { index: 5, .. })
    ));
    assert!(matches!(
        Conv2d::new([2, 5], k.view(), Boundary::Valid),
        Err(Error::InvalidParameter { .. })
    ));
    let same = Conv2d::new([4, 4], k.view(), Boundary::Same).unwrap();
    assert!(matches!(
        same.fourier_eigenvalues(),
        Err(Error::Unsupported(_))
    ));
    let circ = Conv2d::new([4, 4], k.view(), Boundary::Circular).unwrap();
    let wrong = ArrayD::<f64>::zeros(vec![4, 5]);
    assert!(matches!(
        circ.apply_fourier_filter(wrong.view(), &|l| l),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        circ.apply(wrong.view()),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn shared_across_threads() {
    fn is_send_sync<X: Send + Sync>() {}
    is_send_sync::<Conv2d<f32>>();
    is_send_sync::<Conv2d<C64>>();
    let k: Array2<f64> = randn::<f64>(&[3, 3], 1).into_dimensionality().unwrap();
    let op = std::sync::Arc::new(Conv2d::new([10, 12], k.view(), Boundary::Reflect).unwrap());
    let x = randn::<f64>(&[10, 12], 2);
    let want = op.apply(x.view()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (op, x) = (op.clone(), x.clone());
            std::thread::spawn(move || op.apply(x.view()).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

/// Images larger than one 256² FFT tile run blocked (overlap-save) in `Same` mode: forward
/// and adjoint equal the direct sums, odd and even kernels, tiles of unequal sizes, and the
/// segment epilogue sees every pixel once.
#[test]
fn blocked_same_mode_matches_direct_sums() {
    use sparseinv_solvers::testing::direct_conv_same as direct;
    for (n0, n1, kh, kw) in [(470usize, 700usize, 9usize, 7usize), (480, 490, 6, 11)] {
        let x = Array2::from_shape_fn((n0, n1), |(i, j)| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        let k = Array2::from_shape_fn((kh, kw), |(a, b)| 1.0 + ((a * 5 + b * 3) % 7) as f64);
        let op = Conv2d::new([n0, n1], k.view(), Boundary::Same).unwrap();
        assert!(op.is_blocked(), "{n0}x{n1} should run blocked");
        assert!(!op.clone().without_blocking().is_blocked());
        assert_adjoint(&op, 1e-12);
        let op32 = Conv2d::new([n0, n1], k.mapv(|v| v as f32).view(), Boundary::Same).unwrap();
        assert_adjoint(&op32, 1e-4);
        for adjoint in [false, true] {
            let want = direct(x.view(), k.view(), adjoint);
            let got = if adjoint {
                op.adjoint(x.view().into_dyn()).unwrap()
            } else {
                op.apply(x.view().into_dyn()).unwrap()
            };
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = want
                .iter()
                .zip(got.iter())
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err < 1e-11 * scale,
                "{n0}x{n1} k{kh}x{kw} adjoint={adjoint}: {err}"
            );
        }
        // the epilogue covers every pixel exactly once
        let seen = std::sync::Mutex::new(Array2::<u32>::zeros((n0, n1)));
        let mut y = Array2::<f64>::zeros((n0, n1));
        op.apply_into_then(x.view(), y.view_mut(), &|i, j0, seg: &mut [f64]| {
            let mut s = seen.lock().unwrap();
            for j in j0..j0 + seg.len() {
                s[[i, j]] += 1;
            }
        })
        .unwrap();
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
    }
}

/// `new_one_pass` (kernel spectrum computed on the fly) gives the operator of `new` in every
/// mode, for real and complex scalars, and the same Fourier filters.
#[test]
fn one_pass_operator_equals_stored_spectrum() {
    fn check<T: Scalar>(tol: f64) {
        let k = randn::<T>(&[5, 4], 7).into_dimensionality::<Ix2>().unwrap();
        for mode in MODES {
            let a = Conv2d::new([13, 10], k.view(), mode).unwrap();
            let b = Conv2d::new_one_pass([13, 10], k.view(), mode).unwrap();
            let x = randn::<T>(&a.image_shape(), 3);
            let y = randn::<T>(&a.output_shape(), 4);
            let d1 = (&a.apply(x.view()).unwrap() - &b.apply(x.view()).unwrap())
                .iter()
                .fold(0.0f64, |m, v| m.max(v.modulus().to_f64_lossless()));
            let d2 = (&a.adjoint(y.view()).unwrap() - &b.adjoint(y.view()).unwrap())
                .iter()
                .fold(0.0f64, |m, v| m.max(v.modulus().to_f64_lossless()));
            assert!(d1 < tol && d2 < tol, "{mode:?}: {d1} {d2}");
            assert_adjoint(&b, tol * 10.0);
            if mode == Boundary::Circular {
                let f = |h: Complex<T::Real>| h.conj();
                let fa = a.apply_fourier_filter(x.view(), &f).unwrap();
                let fb = b.apply_fourier_filter(x.view(), &f).unwrap();
                let d3 = (&fa - &fb)
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.modulus().to_f64_lossless()));
                assert!(d3 < tol, "filter: {d3}");
            }
        }
    }
    check::<f64>(1e-12);
    check::<C64>(1e-12);
    check::<f32>(1e-4);
}

#[test]
fn transfer_function_half_is_the_first_columns_and_hermitian() {
    for (grid, k) in [([12usize, 10usize], [3usize, 4usize]), ([9, 7], [5, 3])] {
        let kernel = randn::<f64>(&k, 5).into_dimensionality::<Ix2>().unwrap();
        let op = Conv2d::new(grid, kernel.view(), Boundary::Circular).unwrap();
        let (full, half) = (op.transfer_function(), op.transfer_function_half());
        let (p, q) = full.dim();
        assert_eq!(half.dim(), (p, q / 2 + 1));
        for ((u, v), z) in half.indexed_iter() {
            assert!((z - full[[u, v]]).norm() < 1e-12);
            // the dropped half: H[u, v] = conj H[-u, -v] for a real kernel
            assert!((z.conj() - full[[(p - u) % p, (q - v) % q]]).norm() < 1e-12);
        }
    }
}
