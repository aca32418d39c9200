use super::*;
use crate::iter::{run, NoObserver, StopCriteria};
use crate::metrics::psnr;
use crate::op::{Boundary, Conv2d, LinearOperator};
use ndarray::{Array2, Array3};

fn gauss_psf(n: usize, s: f64) -> Array2<f64> {
    let c = (n / 2) as f64;
    let k = Array2::from_shape_fn((n, n), |(i, j)| {
        (-((i as f64 - c).powi(2) + (j as f64 - c).powi(2)) / (2.0 * s * s)).exp()
    });
    let t = k.sum();
    k / t
}

fn blur(x: &Array2<f64>, k: &Array2<f64>, b: Boundary) -> Array2<f64> {
    let a = Conv2d::new([x.nrows(), x.ncols()], k.view(), b).unwrap();
    a.apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality()
        .unwrap()
}

use crate::testing::direct_conv_same as direct_same;

fn scene(n0: usize, n1: usize) -> Array2<f64> {
    Array2::from_shape_fn((n0, n1), |(i, j)| {
        1.0 + ((i * 7 + j * 3) % 11) as f64 / 3.0 + if (i, j) == (5, 6) { 20.0 } else { 0.0 }
    })
}

#[test]
fn wiener_and_tikhonov_invert_circular_blur_exactly() {
    let x = scene(16, 18);
    let k = gauss_psf(5, 0.7);
    let y = blur(&x, &k, Boundary::Circular);
    for xh in [
        wiener(y.view(), k.view(), Balance::Fixed(1e-14)).unwrap(),
        tikhonov(y.view(), k.view(), Regulariser::Laplacian, 1e-14).unwrap(),
        tikhonov(y.view(), k.view(), Regulariser::Identity, 0.0).unwrap(),
    ] {
        let err = (&xh - &x).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(err < 1e-6, "max error {err}");
    }
    // identity Tikhonov is Wiener with the same balance
    let a = wiener(y.view(), k.view(), Balance::Fixed(0.3)).unwrap();
    let b = tikhonov(y.view(), k.view(), Regulariser::Identity, 0.3).unwrap();
    assert!((&a - &b).iter().all(|d| d.abs() < 1e-12));
    assert!(wiener(y.view(), k.view(), Balance::Fixed(-1.0)).is_err());
}

#[test]
fn noise_sigma_estimate_is_accurate() {
    let n = crate::testing::randn::<f64>(&[128, 128], 3);
    let y = n.into_dimensionality::<ndarray::Ix2>().unwrap() * 0.5;
    let s = estimate_noise_sigma(y.view()).unwrap();
    assert!((s - 0.5).abs() < 0.03, "sigma {s}");
}

fn direct_rl(
    y: &Array2<f64>,
    k: &Array2<f64>,
    m: &Array2<f64>,
    x0: f64,
    iters: usize,
    normalize: bool,
) -> Array2<f64> {
    let mut x = Array2::from_elem(y.dim(), x0);
    let norm = if normalize {
        direct_same(m.view(), k.view(), true)
    } else {
        Array2::ones(y.dim())
    };
    for _ in 0..iters {
        let ax = direct_same(x.view(), k.view(), false);
        let r = ndarray::Zip::from(y)
            .and(&ax)
            .and(m)
            .map_collect(|&y, &a, &m| if m > 0.0 { y / (a + 1e-12) } else { 0.0 });
        let b = direct_same(r.view(), k.view(), true);
        x = ndarray::Zip::from(&x)
            .and(&b)
            .and(&norm)
            .map_collect(|&x, &b, &n| x * b / n);
    }
    x
}

#[test]
fn rl_matches_direct_implementation() {
    let x = scene(13, 17);
    let k = gauss_psf(5, 1.0);
    let y = direct_same(x.view(), k.view(), false);
    let mut mask = Array2::from_elem(y.dim(), true);
    mask[[3, 4]] = false;
    mask[[10, 16]] = false;
    let mf = mask.mapv(|b| if b { 1.0 } else { 0.0 });
    for normalize in [true, false] {
        let p = RlParams {
            normalize,
            init: Some(0.5),
            ..RlParams::default()
        };
        let (xr, rep) = richardson_lucy(
            y.view(),
            k.view(),
            Some(mask.view()),
            &RlParams {
                stop: RlParams::iterations(4),
                ..p.clone()
            },
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(rep.iterations, 4);
        let xd = direct_rl(&y, &k, &mf, 0.5, 4, normalize);
        let err = (&xr - &xd).iter().fold(0.0f64, |m, d| m.max(d.abs()))
            / xd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-10, "normalize={normalize}: rel err {err}");
    }
}

/// The observer of the one-call helper sees the RL iterate after every iteration (checked
/// against the brute-force iteration), logs its NMSE against the true scene, and interrupts.
#[test]
fn rl_observer_sees_every_iterate_and_interrupts() {
    use crate::iter::{Control, IterInfo, StopReason};
    let x = scene(13, 17);
    let k = gauss_psf(5, 1.0);
    let y = direct_same(x.view(), k.view(), false);
    let ones = Array2::from_elem(y.dim(), 1.0);
    let p = RlParams {
        init: Some(0.5),
        stop: RlParams::iterations(50),
        ..RlParams::default()
    };
    let xn2 = x.iter().map(|v| v * v).sum::<f64>();
    let mut nmse = Vec::new();
    let mut obs = |i: &IterInfo<f64>| {
        let it = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
        let xd = direct_rl(&y, &k, &ones, 0.5, i.iter, true);
        let err = (&it - &xd.view().into_dyn())
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(
            err < 1e-9 * xd.iter().fold(0.0f64, |m, v| m.max(*v)),
            "iter {}",
            i.iter
        );
        nmse.push((&it - &x.view().into_dyn()).mapv(|d| d * d).sum() / xn2);
        if i.iter == 6 {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let (est, rep) = richardson_lucy(y.view(), k.view(), None, &p, &mut obs).unwrap();
    assert_eq!(rep.stop_reason, StopReason::Interrupted);
    assert_eq!((rep.iterations, nmse.len()), (6, 6));
    // from the flat start 0.5 the estimate approaches the (noiseless) truth
    assert!(nmse[5] < nmse[0], "{nmse:?}");
    let xd = direct_rl(&y, &k, &ones, 0.5, 6, true);
    assert!((&est - &xd).iter().all(|d| d.abs() < 1e-9 * 30.0));
}

#[test]
fn rl_conserves_flux_and_ignores_masked_garbage() {
    let mut x = Array2::<f64>::zeros((24, 24));
    x[[8, 9]] = 50.0;
    x[[15, 14]] = 20.0;
    x += 0.1;
    let k = gauss_psf(7, 1.2);
    let y = blur(&x, &k, Boundary::Same);
    let mut mask = Array2::from_elem(y.dim(), true);
    mask[[12, 3]] = false;
    let (xr, _) = richardson_lucy(
        y.view(),
        k.view(),
        Some(mask.view()),
        &RlParams {
            stop: RlParams::iterations(15),
            ..RlParams::default()
        },
        &mut NoObserver,
    )
    .unwrap();
    // Σ M A x = Σ M y for the EM iteration
    let ax = blur(&xr, &k, Boundary::Same);
    let m = mask.mapv(|b| if b { 1.0 } else { 0.0 });
    let fa = (&ax * &m).sum();
    let fy = (&y * &m).sum();
    assert!(((fa - fy) / fy).abs() < 1e-9, "{fa} vs {fy}");
    // garbage in the masked pixel changes nothing
    let mut yg = y.clone();
    yg[[12, 3]] = f64::NAN;
    let (xg, _) = richardson_lucy(
        yg.view(),
        k.view(),
        Some(mask.view()),
        &RlParams {
            stop: RlParams::iterations(15),
            ..RlParams::default()
        },
        &mut NoObserver,
    )
    .unwrap();
    assert!((&xg - &xr).iter().all(|d| d.abs() < 1e-12));
    yg[[12, 3]] = 1e6;
    let (xg, _) = richardson_lucy(
        yg.view(),
        k.view(),
        Some(mask.view()),
        &RlParams {
            stop: RlParams::iterations(15),
            ..RlParams::default()
        },
        &mut NoObserver,
    )
    .unwrap();
    assert!((&xg - &xr).iter().all(|d| d.abs() < 1e-12));
    // without the mask the NaN is rejected
    assert!(richardson_lucy(
        yg.mapv(|_| f64::NAN).view(),
        k.view(),
        None,
        &RlParams {
            stop: RlParams::iterations(2),
            ..RlParams::default()
        },
        &mut NoObserver
    )
    .is_err());
}

#[test]
fn rl_acceleration_fits_data_faster() {
    let mut x = Array2::<f64>::from_elem((32, 32), 0.5);
    x[[10, 10]] = 40.0;
    x[[20, 22]] = 25.0;
    let k = gauss_psf(9, 1.5);
    let y = blur(&x, &k, Boundary::Same);
    let fit = |acc: bool| {
        let p = RlParams {
            accelerate: acc,
            ..RlParams::default()
        };
        let mut s = RichardsonLucy::new(y.view(), k.view(), None, p).unwrap();
        let crit = StopCriteria {
            max_iters: 25,
            rel_tol: 0.0,
            ..StopCriteria::default()
        };
        run(&mut s, &crit, &mut NoObserver).unwrap();
        let ax = blur(&s.into_x(), &k, Boundary::Same);
        (&ax - &y).iter().map(|d| d * d).sum::<f64>()
    };
    let (plain, acc) = (fit(false), fit(true));
    assert!(acc < 0.5 * plain, "accelerated {acc} vs plain {plain}");
}

fn star_field(n: usize) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((n, n));
    let stars = [
        (12, 15, 40.0),
        (30, 40, 25.0),
        (45, 20, 60.0),
        (20, 50, 15.0),
        (50, 52, 30.0),
        (33, 12, 20.0),
    ];
    for (i, j, f) in stars {
        x[[i, j]] = f;
    }
    x
}

#[test]
fn starlet_sparse_decreases_objective_and_beats_wiener() {
    let n = 64;
    let x = star_field(n);
    let k = gauss_psf(11, 1.5);
    let noise = crate::testing::randn::<f64>(&[n, n], 7)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let y = blur(&x, &k, Boundary::Same) + &(noise * 0.05);
    let p = StarletSparseParams {
        scales: 3,
        stop: crate::iter::StopCriteria {
            max_iters: 300,
            rel_tol: 0.0,
            ..Default::default()
        },
        ..StarletSparseParams::default()
    };
    let r = starlet_sparse(y.view(), k.view(), None, &p).unwrap();
    assert!((r.sigma - 0.05).abs() < 0.01, "sigma {}", r.sigma);
    let o = &r.objective;
    assert!(o[o.len() - 1] < 0.5 * o[0]);
    // tail is non-increasing up to small oscillation
    assert!(o[o.len() - 1] <= o[o.len() - 50] * (1.0 + 1e-6));
    assert!(r.x.iter().all(|&v| v >= 0.0));
    let peak = 60.0;
    let pw = psnr(
        x.view(),
        wiener(y.view(), k.view(), Balance::Auto).unwrap().view(),
        peak,
    )
    .unwrap();
    let ps = psnr(x.view(), r.x.view(), peak).unwrap();
    assert!(ps > pw + 1.0, "starlet {ps} dB vs wiener {pw} dB");
    // debiasing on the detected support fits the data better than the shrunk estimate
    let rf = refit_active(
        y.view(),
        k.view(),
        None,
        r.x.view(),
        &r.lambdas,
        Boundary::Same,
        10,
    )
    .unwrap();
    let res = |z: &Array2<f64>| {
        (&blur(z, &k, Boundary::Same) - &y)
            .iter()
            .map(|d| d * d)
            .sum::<f64>()
    };
    let r0 = refit_active(
        y.view(),
        k.view(),
        None,
        r.x.view(),
        &r.lambdas,
        Boundary::Same,
        0,
    )
    .unwrap();
    let pr = psnr(x.view(), rf.view(), peak).unwrap();
    assert!(pr > ps, "refit {pr} dB vs shrunk {ps} dB");

    assert!(res(&rf) < res(&r0), "{} vs {}", res(&rf), res(&r0));
}

#[test]
fn refit_active_with_full_support_solves_least_squares() {
    // full support (thresholds < 0 impossible; use 0 with a dense estimate) and noiseless
    // circular data: CG drives the residual to ~0
    let x = scene(16, 16);
    let k = gauss_psf(3, 0.6);
    let y = blur(&x, &k, Boundary::Circular);
    let est = Array2::from_elem((16, 16), 1.0) + &scene(16, 16).mapv(|v| 0.01 * v);
    let r0 = (&blur(&est, &k, Boundary::Circular) - &y)
        .iter()
        .map(|d| d * d)
        .sum::<f64>();
    let rf = refit_active(
        y.view(),
        k.view(),
        None,
        est.view(),
        &[0.0, 0.0],
        Boundary::Circular,
        60,
    )
    .unwrap();
    let r1 = (&blur(&rf, &k, Boundary::Circular) - &y)
        .iter()
        .map(|d| d * d)
        .sum::<f64>();
    assert!(r1 < 1e-6 * r0, "{r1} vs {r0}");
}

#[test]
fn rl_matches_scikit_image() {
    // solvers/tests/data/gen_deconv_skimage.py: skimage.restoration.richardson_lucy(image, psf,
    // num_iter=10, clip=False, filter_epsilon=None): start 0.5, no Aᵀ1 normalisation.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/deconv/");
    let y: Array2<f64> = ndarray_npy::read_npy(format!("{dir}rl_image.npy")).unwrap();
    let k: Array2<f64> = ndarray_npy::read_npy(format!("{dir}rl_psf.npy")).unwrap();
    let r: Array2<f64> = ndarray_npy::read_npy(format!("{dir}rl_skimage.npy")).unwrap();
    let p = RlParams {
        normalize: false,
        init: Some(0.5),
        positivity: false,
        ..RlParams::default()
    };
    let (x, _) = richardson_lucy(
        y.view(),
        k.view(),
        None,
        &RlParams {
            stop: RlParams::iterations(10),
            ..p.clone()
        },
        &mut NoObserver,
    )
    .unwrap();
    let rel = (&x - &r).iter().map(|d| d * d).sum::<f64>().sqrt()
        / r.iter().map(|d| d * d).sum::<f64>().sqrt();
    let maxrel = (&x - &r)
        .iter()
        .zip(r.iter())
        .fold(0.0f64, |m, (d, v)| m.max(d.abs() / v.abs().max(1e-3)));
    assert!(rel < 1e-5 && maxrel < 1e-5, "rel {rel}, max {maxrel}");
}

/// Brute-force reference of `wiener_bounded`: extend by explicit mirror/zero indexing onto the
/// same `p × q` grid, direct O(N²) DFTs, filter `conj H / (|H|² + μ)`, crop.
fn wiener_brute(
    y: &Array2<f64>,
    k: &Array2<f64>,
    mu: f64,
    p: usize,
    q: usize,
    zero: bool,
) -> Array2<f64> {
    let (n0, n1) = y.dim();
    let (kh, kw) = k.dim();
    // mirror: ... y[1] y[0] | y[0] y[1] ... y[n-1] | y[n-1] y[n-2] ...
    let mirror = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let mut i = i;
        while i < 0 || i >= n {
            i = if i < 0 { -i - 1 } else { 2 * n - 1 - i };
        }
        i as usize
    };
    let ext = Array2::from_shape_fn((p, q), |(i, j)| {
        let (a, b) = (i as isize - kh as isize, j as isize - kw as isize);
        let inside = a >= 0 && b >= 0 && (a as usize) < n0 && (b as usize) < n1;
        if zero && !inside {
            0.0
        } else {
            y[[mirror(a, n0), mirror(b, n1)]]
        }
    });
    wiener_brute_ext(&ext, k, mu, (kh, kw), (n0, n1))
}

/// The Wiener filter of an already extended `ext` (`p × q`) by brute-force DFTs, cropped to
/// `(n0, n1)` at `offset`.
fn wiener_brute_ext(
    ext: &Array2<f64>,
    k: &Array2<f64>,
    mu: f64,
    (o0, o1): (usize, usize),
    (n0, n1): (usize, usize),
) -> Array2<f64> {
    use num_complex::Complex64;
    let (p, q) = ext.dim();
    let (kh, kw) = k.dim();
    let dft = |a: &Array2<Complex64>, sign: f64| -> Array2<Complex64> {
        Array2::from_shape_fn((p, q), |(u, v)| {
            let mut s = Complex64::new(0.0, 0.0);
            for ((i, j), z) in a.indexed_iter() {
                let ph = sign
                    * std::f64::consts::TAU
                    * ((u * i) as f64 / p as f64 + (v * j) as f64 / q as f64);
                s += z * Complex64::new(ph.cos(), ph.sin());
            }
            s
        })
    };
    let mut kg = Array2::<Complex64>::zeros((p, q));
    for ((a, b), &v) in k.indexed_iter() {
        let i = (a as isize - (kh / 2) as isize).rem_euclid(p as isize) as usize;
        let j = (b as isize - (kw / 2) as isize).rem_euclid(q as isize) as usize;
        kg[[i, j]] += Complex64::new(v, 0.0);
    }
    let h = dft(&kg, -1.0);
    let yf = dft(&ext.mapv(|v| Complex64::new(v, 0.0)), -1.0);
    let xf = ndarray::Zip::from(&yf)
        .and(&h)
        .map_collect(|&z, &hv| hv.conj() * z / (hv.norm_sqr() + mu));
    let x = dft(&xf, 1.0);
    Array2::from_shape_fn((n0, n1), |(i, j)| x[[i + o0, j + o1]].re / (p * q) as f64)
}

#[test]
fn wiener_bounded_matches_brute_force_extension() {
    let x = scene(6, 7);
    let k = gauss_psf(3, 0.8);
    // zero: a 12 × 14 grid with the image at offset (3, 3), padded by the PSF size
    // (next_fast_len(6 + 6), next_fast_even_len(7 + 6))
    let got = wiener_bounded(x.view(), k.view(), Balance::Fixed(0.05), Boundary::Same).unwrap();
    let want = wiener_brute(&x, &k, 0.05, 12, 14, true);
    let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-10, "Same: max error {err}");
    // reflect: the tapered extension by three PSF extents (6 px a side) to fast lengths,
    // 18 × 20, the image in the middle
    let pr = Padding::for_boundary(Boundary::Reflect, (6, 7), (3, 3)).unwrap();
    assert_eq!(
        (pr.extension, pr.rows, pr.cols),
        (Extension::Tapered, (6, 6), (6, 7))
    );
    let got = wiener_bounded(x.view(), k.view(), Balance::Fixed(0.05), Boundary::Reflect).unwrap();
    let want = wiener_brute_ext(&pad(x.view(), &pr), &k, 0.05, (6, 6), (6, 7));
    let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-10, "Reflect: max error {err}");
    // the doubled mirror grid (12 × 14, half-sample, image at (3, 3)) as an explicit padding
    let doubled = Padding {
        extension: Extension::HalfSample,
        rows: (3, 3),
        cols: (3, 4),
    };
    let got = wiener_padded(x.view(), k.view(), Balance::Fixed(0.05), &doubled).unwrap();
    let want = wiener_brute(&x, &k, 0.05, 12, 14, false);
    let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-10, "doubled mirror: max error {err}");
    // the tapered extension (checked against its definition in wiener.rs) on a 12 × 14
    // grid, filtered by the brute-force DFT
    let pd = Padding {
        extension: Extension::Tapered,
        rows: (3, 3),
        cols: (3, 4),
    };
    let ext = pad(x.view(), &pd);
    let got = wiener_padded(x.view(), k.view(), Balance::Fixed(0.05), &pd).unwrap();
    let want = wiener_brute_ext(&ext, &k, 0.05, (3, 3), (6, 7));
    let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-10, "Tapered: max error {err}");
    // circular is the plain Wiener filter
    let a = wiener_bounded(x.view(), k.view(), Balance::Fixed(0.05), Boundary::Circular).unwrap();
    let c = wiener(x.view(), k.view(), Balance::Fixed(0.05)).unwrap();
    assert!((&a - &c).iter().all(|d| d.abs() < 1e-12));
    assert!(wiener_bounded(x.view(), k.view(), Balance::Auto, Boundary::Valid).is_err());
}

/// The edge test field of the Fourier boundaries: 256² discs and a gradient on a sky,
/// reflect-blurred by a 15² Gaussian, Gaussian noise of 0.01. Returns `(n, x, k, y)`.
fn edge_scene() -> (usize, Array2<f64>, Array2<f64>, Array2<f64>) {
    let n = 256;
    let mut x = Array2::from_shape_fn((n, n), |(i, j)| {
        1.0 + 0.005 * i as f64 + 0.3 * ((j as f64) / 9.0).sin()
    });
    for (cy, cx, r, a) in [
        (10.0, 20.0, 6.0, 2.0),
        (250.0, 5.0, 9.0, 1.0),
        (128.0, 250.0, 12.0, 1.5),
        (140.0, 120.0, 40.0, 0.7),
        (20.0, 200.0, 15.0, 1.2),
    ] {
        for ((i, j), v) in x.indexed_iter_mut() {
            if (i as f64 - cy).powi(2) + (j as f64 - cx).powi(2) < r * r {
                *v += a;
            }
        }
    }
    let k = gauss_psf(15, 2.0);
    let noise = crate::random::randn::<f64>(&[n, n], 77)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let y = blur(&x, &k, Boundary::Reflect) + noise * 0.01;
    (n, x, k, y)
}

/// PSNR (peak of `x`) of `xh` against `x` on the band of `b` pixels along the edges.
fn band_psnr(x: &Array2<f64>, xh: &Array2<f64>, b: usize) -> f64 {
    let (n0, n1) = x.dim();
    let peak = x.iter().fold(0.0f64, |m, &v| m.max(v));
    let (mut s, mut c) = (0.0, 0.0);
    for ((i, j), v) in xh.indexed_iter() {
        if i < b || j < b || i + b >= n0 || j + b >= n1 {
            s += (v - x[[i, j]]).powi(2);
            c += 1.0;
        }
    }
    10.0 * (peak * peak / (s / c)).log10()
}

/// The default reflect boundary of the Fourier filters (the tapered continuation by three PSF
/// extents, [`Padding::for_boundary`]) against the doubled mirror grid it replaced, on a
/// simulated 256² field (discs and a gradient on a sky, reflect-blurred by a 15² Gaussian,
/// Gaussian noise): the PSNR of the 32-px border band against the truth is no lower (within
/// 0.05 dB), on a grid of under 60 % of the cells (384² against 512²), and the two agree in the interior.
#[test]
fn tapered_reflect_is_as_good_at_the_edges_as_the_doubled_mirror() {
    let (n, x, k, y) = edge_scene();
    let peak = x.iter().fold(0.0f64, |m, &v| m.max(v));
    let band_psnr = |xh: &Array2<f64>| band_psnr(&x, xh, 32);
    let new_pad = Padding::for_boundary(Boundary::Reflect, (n, n), k.dim()).unwrap();
    let p = crate::fft::good_fft_len(2 * n);
    let doubled = Padding::symmetric(Extension::HalfSample, (p - n) / 2, (p - n) / 2);
    let cells = (n + new_pad.rows.0 + new_pad.rows.1) * (n + new_pad.cols.0 + new_pad.cols.1);
    assert!(5 * cells < 3 * p * p, "grid {cells} vs {}", p * p);
    for mu in [1e-3, 1e-2] {
        let new =
            wiener_bounded(y.view(), k.view(), Balance::Fixed(mu), Boundary::Reflect).unwrap();
        let old = wiener_padded(y.view(), k.view(), Balance::Fixed(mu), &doubled).unwrap();
        let (pn, po) = (band_psnr(&new), band_psnr(&old));
        assert!(
            pn >= po - 0.05,
            "μ = {mu}: 32-px band PSNR {pn:.3} dB (tapered) vs {po:.3} dB (doubled mirror)"
        );
        let inner = (&new - &old)
            .slice(ndarray::s![64..n - 64, 64..n - 64])
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(inner < 1e-3 * peak, "μ = {mu}: interior differs by {inner}");
    }
}

/// The periodic-plus-smooth split ([`Extension::PeriodicSmooth`]) against its definition,
/// checked in the image domain: `s = y − p` (with `p = pad(y, …)`) has zero mean and its
/// periodic 5-point Laplacian is the boundary jump image `v` (`v[0, j] = y[M−1, j] − y[0, j]`,
/// `v[M−1, j] = −v[0, j]`, the same along the columns, summed at the corners); and the filter
/// equals the periodic filter of `p` plus `s`.
#[test]
fn periodic_smooth_split_matches_its_definition() {
    let (m, n) = (9, 12);
    let y = Array2::from_shape_fn((m, n), |(i, j)| {
        3.0 + 0.7 * i as f64 - 0.2 * j as f64 + ((i * 7 + j * 5) % 11) as f64 * 0.3
    });
    let ps = Padding::periodic_smooth();
    let p = pad(y.view(), &ps);
    let sm = &y - &p;
    assert!(sm.mean().unwrap().abs() < 1e-12);
    let mut v = Array2::<f64>::zeros((m, n));
    for j in 0..n {
        let a = y[[m - 1, j]] - y[[0, j]];
        v[[0, j]] += a;
        v[[m - 1, j]] -= a;
    }
    for i in 0..m {
        let c = y[[i, n - 1]] - y[[i, 0]];
        v[[i, 0]] += c;
        v[[i, n - 1]] -= c;
    }
    for i in 0..m {
        for j in 0..n {
            let lap = sm[[(i + 1) % m, j]]
                + sm[[(i + m - 1) % m, j]]
                + sm[[i, (j + 1) % n]]
                + sm[[i, (j + n - 1) % n]]
                - 4.0 * sm[[i, j]];
            assert!(
                (lap - v[[i, j]]).abs() < 1e-10,
                "({i}, {j}): {lap} vs {}",
                v[[i, j]]
            );
        }
    }
    let k = gauss_psf(5, 1.0);
    let got = wiener_padded(y.view(), k.view(), Balance::Fixed(1e-2), &ps).unwrap();
    let none = Padding::symmetric(Extension::Zero, 0, 0);
    let want = wiener_padded(p.view(), k.view(), Balance::Fixed(1e-2), &none).unwrap() + &sm;
    let err = (&got - &want).iter().fold(0.0f64, |a, d| a.max(d.abs()));
    assert!(err < 1e-10, "max error {err}");
    // single precision agrees to its rounding
    let y32 = y.mapv(|v| v as f32);
    let k32 = k.mapv(|v| v as f32);
    let g32 = wiener_padded(y32.view(), k32.view(), Balance::Fixed(1e-2), &ps).unwrap();
    let err = (&g32.mapv(f64::from) - &got)
        .iter()
        .fold(0.0f64, |a, d| a.max(d.abs()));
    assert!(err < 1e-4, "f32 vs f64: {err}");
}

/// The periodic-plus-smooth edges against the doubled mirror grid, on the edge test of
/// `tapered_reflect_is_as_good_at_the_edges_as_the_doubled_mirror` (a 256² field reflect-blurred
/// by a 15² Gaussian): the 32-px border band is no less accurate (within 0.05 dB) at two
/// balances, with no pad at all; the periodic model is far worse there.
#[test]
fn periodic_smooth_is_as_good_at_the_edges_as_the_doubled_mirror() {
    let (n, x, k, y) = edge_scene();
    let band_psnr = |xh: &Array2<f64>| band_psnr(&x, xh, 32);
    let p = crate::fft::good_fft_len(2 * n);
    let doubled = Padding::symmetric(Extension::HalfSample, (p - n) / 2, (p - n) / 2);
    for mu in [1e-3, 1e-2] {
        let ps = wiener_padded(
            y.view(),
            k.view(),
            Balance::Fixed(mu),
            &Padding::periodic_smooth(),
        )
        .unwrap();
        let old = wiener_padded(y.view(), k.view(), Balance::Fixed(mu), &doubled).unwrap();
        let per =
            wiener_bounded(y.view(), k.view(), Balance::Fixed(mu), Boundary::Circular).unwrap();
        let (pn, po, pp) = (band_psnr(&ps), band_psnr(&old), band_psnr(&per));
        assert!(
            pn >= po - 0.05,
            "μ = {mu}: 32-px band PSNR {pn:.3} dB (periodic + smooth) vs {po:.3} dB (doubled mirror)"
        );
        assert!(pp < po - 5.0, "μ = {mu}: periodic {pp:.2} dB vs {po:.2} dB");
    }
}

#[test]
fn reflect_boundary_removes_edge_ringing_on_a_sky_gradient() {
    // sky gradient + stars, blurred with mirror boundaries (a sky that continues past the
    // edges, not a periodic one), no noise
    let (n0, n1) = (48, 40);
    let mut x = Array2::from_shape_fn((n0, n1), |(i, j)| 10.0 + 0.3 * i as f64 + 0.1 * j as f64);
    x[[20, 15]] += 100.0;
    x[[30, 30]] += 60.0;
    let k = gauss_psf(9, 1.5);
    let y = blur(&x, &k, Boundary::Reflect);
    let edge_err = |xh: &Array2<f64>| -> f64 {
        let mut m = 0.0f64;
        for ((i, j), v) in xh.indexed_iter() {
            if i < 3 || j < 3 || i + 3 >= n0 || j + 3 >= n1 {
                m = m.max((v - x[[i, j]]).abs());
            }
        }
        m
    };
    let mu = 1e-4;
    let refl = wiener_bounded(y.view(), k.view(), Balance::Fixed(mu), Boundary::Reflect).unwrap();
    let circ = wiener_bounded(y.view(), k.view(), Balance::Fixed(mu), Boundary::Circular).unwrap();
    let (er, ec) = (edge_err(&refl), edge_err(&circ));
    assert!(ec > 10.0 * er, "edge errors: reflect {er}, periodic {ec}");
}

#[test]
fn masked_pixels_are_filled_with_the_local_median() {
    let y = Array2::from_shape_fn((7, 8), |(i, j)| (i * 8 + j) as f64);
    let mut m = Array2::from_elem((7, 8), true);
    m[[3, 3]] = false; // isolated: median of its 24 valid neighbours in the 5x5 window
    for i in 0..7 {
        m[[i, 7]] = false; // a whole column: filled in one pass from the valid columns 5, 6
    }
    let f = fill_masked_median(y.view(), m.view(), 2).unwrap();
    let mut nb: Vec<f64> = (1..6)
        .flat_map(|i| (1..6).map(move |j| (i, j)))
        .filter(|&p| p != (3, 3))
        .map(|(i, j)| (i * 8 + j) as f64)
        .collect();
    nb.sort_by(f64::total_cmp);
    assert_eq!(f[[3, 3]], 0.5 * (nb[11] + nb[12]));
    // column 7 at row 0: valid window rows 0..=2, columns 5..=6 → {5, 6, 13, 14, 21, 22}
    assert_eq!(f[[0, 7]], 0.5 * (13.0 + 14.0));
    assert_eq!(f[[2, 2]], y[[2, 2]]);
    // a hole larger than the window is filled from its rim, ring by ring
    let mut m2 = Array2::from_elem((9, 9), false);
    m2[[0, 0]] = true;
    let g = fill_masked_median(Array2::from_elem((9, 9), 4.0).view(), m2.view(), 1).unwrap();
    assert!(g.iter().all(|&v| v == 4.0));
    assert!(fill_masked_median(y.view(), Array2::from_elem((7, 8), false).view(), 2).is_err());
    assert!(fill_masked_median(y.view(), m.view(), 0).is_err());
}

#[test]
fn rl_single_precision_matches_double() {
    let x = scene(40, 36);
    let k = gauss_psf(7, 1.3);
    let y = blur(&x, &k, Boundary::Same);
    let mut mask = Array2::from_elem(y.dim(), true);
    mask[[4, 30]] = false;
    for accelerate in [false, true] {
        let p = RlParams {
            accelerate,
            stop: RlParams::iterations(20),
            ..RlParams::default()
        };
        let (x64, r64) =
            richardson_lucy(y.view(), k.view(), Some(mask.view()), &p, &mut NoObserver).unwrap();
        let (y32, k32) = (y.mapv(|v| v as f32), k.mapv(|v| v as f32));
        let (x32, r32) = richardson_lucy(
            y32.view(),
            k32.view(),
            Some(mask.view()),
            &p,
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!((r64.iterations, r32.iterations), (20, 20));
        let scale = x64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = x32
            .iter()
            .zip(x64.iter())
            .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()))
            / scale;
        assert!(err < 1e-4, "accelerate={accelerate}: f32 vs f64 {err}");
        assert!(
            err > 0.0,
            "the f32 run must actually compute in single precision"
        );
    }
}

#[test]
fn rl_accepts_fortran_order_and_strided_views() {
    // numpy hands over Fortran-order and strided arrays; the iterations work on flat slices
    // of internal copies, so any layout must give the same bits as row-major data
    let x = scene(20, 18) + 0.5;
    let k = gauss_psf(5, 1.0);
    let y = blur(&x, &k, Boundary::Same);
    let mut mask = Array2::from_elem(y.dim(), true);
    mask[[4, 7]] = false;
    let p = RlParams {
        stop: RlParams::iterations(8),
        ..RlParams::default()
    };
    let run_on = |yv: ndarray::ArrayView2<f64>, mv: ndarray::ArrayView2<bool>| {
        richardson_lucy(yv, k.view(), Some(mv), &p, &mut NoObserver)
            .unwrap()
            .0
    };
    let want = run_on(y.view(), mask.view());
    // Fortran (column-major) order
    use ndarray::ShapeBuilder;
    let mut yf = Array2::<f64>::zeros(y.dim().f());
    yf.assign(&y);
    let mut mf = Array2::from_elem(y.dim().f(), false);
    mf.assign(&mask);
    assert!(!yf.is_standard_layout() && !mf.is_standard_layout());
    let got_f = run_on(yf.view(), mf.view());
    assert_eq!(got_f, want);
    // strided: every other column of a wider array
    let mut wide = Array2::<f64>::zeros((20, 36));
    wide.slice_mut(ndarray::s![.., ..;2]).assign(&y);
    let got_s = run_on(wide.slice(ndarray::s![.., ..;2]), mask.view());
    assert_eq!(got_s, want);
}

/// A well-conditioned 3×3 PSF (transfer function ≥ 0.2 everywhere).
fn sharp_psf() -> Array2<f64> {
    ndarray::array![[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]]
}

fn gaussian_blob(n0: usize, n1: usize, c: (f64, f64), s: f64, amp: f64) -> Array2<f64> {
    Array2::from_shape_fn((n0, n1), |(i, j)| {
        let r2 = (i as f64 - c.0).powi(2) + (j as f64 - c.1).powi(2);
        amp * (-r2 / (2.0 * s * s)).exp()
    })
}

#[test]
fn debias_with_full_support_inverts_an_invertible_blur() {
    // κ = 0: every coefficient is active and f(x) = ½‖W(Hx − y)‖² (W injective); the blur
    // is invertible, so from any start the iteration reaches x_true (closed form).
    let truth = &gaussian_blob(20, 22, (9.0, 11.0), 2.0, 50.0) + &scene(20, 22);
    let k = sharp_psf();
    let y = blur(&truth, &k, Boundary::Same);
    let p = DebiasParams {
        kappa: 0.0,
        kappa_finest: Some(0.0),
        detect: Detect::Data,
        positivity: false,
        max_iters: 2000,
        rel_tol: 1e-13,
        ..DebiasParams::default()
    };
    let r = debias_active(
        y.view(),
        k.view(),
        None,
        Array2::zeros((20, 22)).view(),
        1.0,
        &p,
    )
    .unwrap();
    let err = (&r.x - &truth).iter().fold(0.0f64, |a, d| a.max(d.abs()));
    assert!(
        err < 1e-8,
        "max error {err} after {} iterations",
        r.iterations
    );
    assert!(r.active_fraction.iter().all(|&f| f == 1.0));
    assert!(*r.residual.last().unwrap() < 1e-8 * r.residual[0]);
}

#[test]
fn debias_converges_to_a_fixed_point_of_the_projected_support_iteration() {
    // κ = 3 with positivity: at the minimiser x = P₊(x + μ g(x)), g(x) = Hᵀ Wᵀ[M⊙W(y − Hx)].
    let n = 32;
    let truth = &gaussian_blob(n, n, (12.0, 15.0), 1.5, 40.0)
        + &gaussian_blob(n, n, (22.0, 8.0), 3.0, 10.0);
    let k = sharp_psf();
    let noise = crate::testing::randn::<f64>(&[n, n], 4);
    let y =
        &blur(&truth, &k, Boundary::Same) + &noise.into_dimensionality::<ndarray::Ix2>().unwrap();
    let p = DebiasParams {
        max_iters: 2000,
        accelerate: true,
        detect: Detect::Data,
        rel_tol: 0.0,
        ..DebiasParams::default()
    };
    let r = debias_active(y.view(), k.view(), None, truth.view(), 1.0, &p).unwrap();
    assert!(r.x.iter().all(|&v| v >= 0.0));
    // recompute one step independently of the solver's loop
    let h = Conv2d::new([n, n], k.view(), Boundary::Same).unwrap();
    let w = crate::op::Starlet::<f64>::new([n, n], 4).unwrap();
    let wy: Array3<f64> = w
        .apply(y.view().into_dyn())
        .unwrap()
        .into_dimensionality()
        .unwrap();
    let sj = crate::op::starlet_noise_std(4);
    let hx = blur(&r.x, &k, Boundary::Same);
    let mut c: Array3<f64> = w
        .apply((&y - &hx).view().into_dyn())
        .unwrap()
        .into_dimensionality()
        .unwrap();
    for (j, &s_j) in sj.iter().take(4).enumerate() {
        ndarray::Zip::from(c.index_axis_mut(ndarray::Axis(0), j))
            .and(wy.index_axis(ndarray::Axis(0), j))
            .for_each(|c, &d| {
                if d.abs() <= if j == 0 { 4.0 } else { 3.0 } * s_j {
                    *c = 0.0
                }
            });
    }
    let wtc = w.adjoint(c.view().into_dyn()).unwrap();
    let g: Array2<f64> = h
        .adjoint(wtc.view())
        .unwrap()
        .into_dimensionality()
        .unwrap();
    let step = (&r.x + &(&g * r.step)).mapv(|v| v.max(0.0));
    let d = (&step - &r.x).iter().map(|v| v * v).sum::<f64>().sqrt();
    let nx = r.x.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(d < 1e-5 * nx, "fixed-point residual {d} vs |x| {nx}");
    // the finest plane holds only a few noise detections away from the sources
    assert!(r.active_fraction[0] < 0.2);
}

#[test]
fn debias_restores_the_flux_of_a_biased_estimate_and_ignores_masked_values() {
    let n = 48;
    let truth = &gaussian_blob(n, n, (20.0, 26.0), 2.0, 60.0)
        + &gaussian_blob(n, n, (33.0, 14.0), 4.0, 15.0);
    let k = gauss_psf(9, 1.5);
    let sigma = 0.5;
    let noise: Array2<f64> = crate::testing::randn::<f64>(&[n, n], 9)
        .into_dimensionality()
        .unwrap();
    let y = &blur(&truth, &k, Boundary::Same) + &(noise * sigma);
    // a shape-correct but 25 % faint estimate (what a biased method returns)
    let est = &truth * 0.75;
    let ap = |a: &Array2<f64>| -> f64 {
        let mut s = 0.0;
        for ((i, j), v) in a.indexed_iter() {
            if (i as f64 - 20.0).powi(2) + (j as f64 - 26.0).powi(2) <= 36.0 {
                s += v;
            }
        }
        s
    };
    let r = debias_active(
        y.view(),
        k.view(),
        None,
        est.view(),
        sigma,
        &DebiasParams::default(),
    )
    .unwrap();
    let bias = ap(&r.x) / ap(&truth) - 1.0;
    assert!(
        bias.abs() < 0.01,
        "aperture flux bias {bias} (estimate: -25 %)"
    );
    // masked pixels: their values do not matter
    let mut mask = Array2::from_elem((n, n), true);
    for i in 0..6 {
        mask[[40 + i, 3 + i]] = false;
    }
    let mut y2 = y.clone();
    let r1 = debias_active(
        y.view(),
        k.view(),
        Some(mask.view()),
        est.view(),
        sigma,
        &DebiasParams::default(),
    )
    .unwrap();
    for ((i, j), ok) in mask.indexed_iter() {
        if !ok {
            y2[[i, j]] = 1e6;
        }
    }
    let r2 = debias_active(
        y2.view(),
        k.view(),
        Some(mask.view()),
        est.view(),
        sigma,
        &DebiasParams::default(),
    )
    .unwrap();
    assert_eq!(r1.x, r2.x);
}

#[test]
fn debias_rejects_bad_input() {
    let y = Array2::<f64>::ones((8, 8));
    let k = gauss_psf(3, 0.7);
    let p = DebiasParams::default();
    for s in [0.0, -1.0, f64::NAN] {
        let e = debias_active(y.view(), k.view(), None, y.view(), s, &p).unwrap_err();
        assert!(e.to_string().contains("sigma"), "{e}");
    }
    let e = debias_active(
        y.view(),
        k.view(),
        None,
        Array2::zeros((8, 7)).view(),
        1.0,
        &p,
    );
    assert!(e.is_err());
    let bad = DebiasParams {
        kappa: -1.0,
        ..p.clone()
    };
    assert!(debias_active(y.view(), k.view(), None, y.view(), 1.0, &bad).is_err());
}

#[test]
fn debias_support_operator_passes_the_dot_test() {
    let (n0, n1) = (20, 23);
    let h = Conv2d::new([n0, n1], gauss_psf(5, 1.0).view(), Boundary::Same).unwrap();
    let w = crate::op::Starlet::<f64>::new([n0, n1], 3).unwrap();
    let supp = Array3::from_shape_fn((4, n0, n1), |(j, i, k)| {
        ((j + i * 3 + k) % 3 != 0) as u8 as f64
    });
    let v = Array2::from_shape_fn((n0, n1), |(i, k)| ((i + k) % 7 != 0) as u8 as f64);
    let (dm, dv) = (
        crate::op::Diagonal::new(supp.into_dyn()),
        crate::op::Diagonal::new(v.into_dyn()),
    );
    let b = debias::support_operator(&h, &w, &dm, &dv).unwrap();
    crate::testing::assert_adjoint(&b, 1e-12);
}

/// GCV against its pixel-domain definition, brute force: the influence matrix `A_λ` of the
/// filter is formed column by column (the filter applied to each unit image on a 12 × 10
/// circular grid), and `V(λ) = N ‖(I − A_λ) y‖² / tr(I − A_λ)²` is evaluated on a fine grid
/// of `λ` for each regulariser. `gcv_select` must return the grid's minimiser (to the grid
/// step) and its score, and pick the regulariser with the lowest brute-force minimum.
#[test]
fn gcv_matches_brute_force_influence_matrix() {
    let (n0, n1) = (12, 10);
    let n = n0 * n1;
    let k = gauss_psf(5, 1.0);
    let x = Array2::from_shape_fn((n0, n1), |(i, j)| {
        3.0 + (i as f64 / 2.0).sin() * 2.0 + (j as f64 / 3.0).cos()
    });
    let noise = Array2::from_shape_fn((n0, n1), |(i, j)| {
        (((i * 37 + j * 11 + 5) % 17) as f64 - 8.0) * 0.03
    });
    let y = blur(&x, &k, Boundary::Circular) + noise;
    let none = Padding::symmetric(Extension::Zero, 0, 0);
    let brute = |reg: Regulariser, lam: f64| -> f64 {
        let mut resid = y.clone();
        let mut tr = 0.0;
        let fy = tikhonov_padded(y.view(), k.view(), reg, lam, &none).unwrap();
        let hy = blur(&fy, &k, Boundary::Circular);
        resid -= &hy;
        for p in 0..n {
            let mut e = Array2::<f64>::zeros((n0, n1));
            e[[p / n1, p % n1]] = 1.0;
            let col = blur(
                &tikhonov_padded(e.view(), k.view(), reg, lam, &none).unwrap(),
                &k,
                Boundary::Circular,
            );
            tr += 1.0 - col[[p / n1, p % n1]];
        }
        n as f64 * resid.mapv(|v| v * v).sum() / (tr * tr)
    };
    let mut best_overall = (f64::INFINITY, Regulariser::Identity);
    for reg in [
        Regulariser::Identity,
        Regulariser::Gradient,
        Regulariser::Laplacian,
    ] {
        let c = gcv_select(y.view(), k.view(), &[reg], &none).unwrap();
        // brute-force scan of log10 λ in steps of 0.05 around the whole range
        let (mut bl, mut bv) = (0.0, f64::INFINITY);
        let mut g = -8.0;
        while g <= 2.0 {
            let v = brute(reg, 10f64.powf(g));
            if v < bv {
                (bl, bv) = (g, v);
            }
            g += 0.05;
        }
        assert!(
            (c.lambda.log10() - bl).abs() <= 0.06,
            "{reg:?}: gcv_select λ = {} vs brute force 10^{bl}",
            c.lambda
        );
        // the score is the definition's value at the chosen λ, and no grid point is lower
        let at = brute(reg, c.lambda);
        assert!(
            (c.score - at).abs() <= 1e-9 * at,
            "{reg:?}: {} vs {at}",
            c.score
        );
        assert!(c.score <= bv * (1.0 + 1e-9), "{reg:?}: {} > {bv}", c.score);
        if bv < best_overall.0 {
            best_overall = (bv, reg);
        }
    }
    let all = gcv_select(
        y.view(),
        k.view(),
        &[
            Regulariser::Identity,
            Regulariser::Gradient,
            Regulariser::Laplacian,
        ],
        &none,
    )
    .unwrap();
    assert_eq!(all.regulariser, best_overall.1);
    assert!(gcv_select(y.view(), k.view(), &[], &none).is_err());
}

/// The GCV choice is close to the best weight chosen with the truth on a blurred noisy scene
/// with reflective borders: within 0.3 dB PSNR of a fine oracle grid.
#[test]
fn gcv_weight_is_near_the_oracle() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let (n0, n1) = (96, 80);
    let x = Array2::from_shape_fn((n0, n1), |(i, j)| {
        let (a, b) = (i as f64, j as f64);
        20.0 + 10.0 * ((a / 7.0).sin() * (b / 11.0).cos())
            + if (30..50).contains(&i) && (20..45).contains(&j) {
                15.0
            } else {
                0.0
            }
    });
    let k = gauss_psf(9, 1.8);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let nd = Normal::new(0.0, 0.5).unwrap();
    let y = blur(&x, &k, Boundary::Reflect).mapv(|v| v + nd.sample(&mut rng));
    let p = Padding::for_boundary(Boundary::Reflect, (n0, n1), k.dim()).unwrap();
    let c = gcv_select(y.view(), k.view(), &[Regulariser::Laplacian], &p).unwrap();
    let score = |lam: f64| {
        let e = tikhonov_padded(y.view(), k.view(), Regulariser::Laplacian, lam, &p).unwrap();
        psnr(e.view(), x.view(), 45.0).unwrap()
    };
    let got = score(c.lambda);
    let oracle = (0..=80)
        .map(|i| score(10f64.powf(-6.0 + i as f64 * 0.075)))
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(
        got >= oracle - 0.3,
        "GCV {got:.2} dB vs oracle {oracle:.2} dB"
    );
}

/// The discrepancy stop fires exactly at the first iterate whose statistic
/// `(1/N) Σ (y − A x − ε)² / σ²` is at or below τ: recomputed independently from plain RL
/// runs of K − 1 and K − 2 iterations (the statistic of step K is evaluated on x_{K−1}).
#[test]
fn rl_discrepancy_stops_at_the_first_iterate_within_the_noise() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};
    let (n0, n1) = (40, 44);
    let mut x = Array2::from_elem((n0, n1), 0.0);
    for (i, j, f) in [
        (10, 12, 900.0),
        (25, 30, 400.0),
        (30, 8, 1500.0),
        (5, 38, 250.0),
    ] {
        x[[i, j]] = f;
    }
    let k = gauss_psf(7, 1.3);
    let b = 20.0;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let y = blur(&x, &k, Boundary::Same).mapv(|m| Poisson::new(m + b).unwrap().sample(&mut rng));
    let noise = NoiseModel {
        var0: 0.0,
        slope: 1.0,
        bins_used: 0,
        correlated: false,
    };
    let d = Discrepancy {
        noise,
        level_offset: 0.0,
        tau: 1.0,
    };
    let base = RlParams {
        eps: b,
        init: Some(5.0),
        stop: RlParams::iterations(500),
        ..RlParams::default()
    };
    let p = RlParams {
        discrepancy: Some(d),
        ..base.clone()
    };
    let (_, rep) = richardson_lucy(y.view(), k.view(), None, &p, &mut NoObserver).unwrap();
    assert_eq!(rep.stop_reason, crate::iter::StopReason::Residual);
    let kk = rep.iterations;
    assert!(kk >= 3, "stopped after {kk}");
    let stat = |it: usize| -> f64 {
        let q = RlParams {
            stop: RlParams::iterations(it),
            ..base.clone()
        };
        let (xi, _) = richardson_lucy(y.view(), k.view(), None, &q, &mut NoObserver).unwrap();
        let m = blur(&xi, &k, Boundary::Same);
        ndarray::Zip::from(&y)
            .and(&m)
            .fold(0.0, |s, &yv, &mv| s + (yv - mv - b).powi(2) / (mv + b))
            / (n0 * n1) as f64
    };
    assert!(stat(kk - 1) <= 1.0, "{}", stat(kk - 1));
    assert!(stat(kk - 2) > 1.0, "{}", stat(kk - 2));
    // a bad model is refused
    let bad = RlParams {
        discrepancy: Some(Discrepancy { tau: 0.0, ..d }),
        ..base
    };
    assert!(richardson_lucy(y.view(), k.view(), None, &bad, &mut NoObserver).is_err());
}

/// A background image in Richardson–Lucy: a constant map equals the scalar `eps` (same
/// iterates to rounding), and with a varying known background `b` and noise-free data
/// `y = A x + b` the iteration recovers `x` far better than with the map's mean as a scalar.
#[test]
fn rl_background_map() {
    let (n0, n1) = (36, 40);
    // smooth sources (RL converges on them in a few hundred iterations)
    let x = Array2::from_shape_fn((n0, n1), |(i, j)| {
        let g = |ci: f64, cj: f64, f: f64| {
            f * (-((i as f64 - ci).powi(2) + (j as f64 - cj).powi(2)) / 18.0).exp()
        };
        2.0 + g(10.0, 12.0, 60.0) + g(25.0, 30.0, 40.0) + g(18.0, 5.0, 50.0)
    });
    let k = gauss_psf(7, 1.2);
    let b = Array2::from_shape_fn((n0, n1), |(i, j)| 20.0 + 0.8 * i as f64 + 0.3 * j as f64);
    let y = blur(&x, &k, Boundary::Same) + &b;
    let base = RlParams {
        init: Some(1.0),
        stop: RlParams::iterations(200),
        ..RlParams::default()
    };
    // constant map = scalar eps
    let c = RlParams {
        eps: 7.0,
        ..base.clone()
    };
    let m = RlParams {
        eps: 2.0,
        background: Some(Array2::from_elem((n0, n1), 5.0)),
        ..base.clone()
    };
    let (xc, _) = richardson_lucy(y.view(), k.view(), None, &c, &mut NoObserver).unwrap();
    let (xm, _) = richardson_lucy(y.view(), k.view(), None, &m, &mut NoObserver).unwrap();
    let d = (&xc - &xm).iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(d < 1e-9, "{d}");
    // the varying map against its mean
    let mean = b.mean().unwrap();
    let with_map = RlParams {
        eps: 0.0,
        background: Some(b.clone()),
        ..base.clone()
    };
    let scalar = RlParams { eps: mean, ..base };
    let err = |p: &RlParams| {
        let (e, _) = richardson_lucy(y.view(), k.view(), None, p, &mut NoObserver).unwrap();
        (&e - &x).mapv(|v| v * v).sum().sqrt()
    };
    let (em, es) = (err(&with_map), err(&scalar));
    assert!(em < 0.3 * es, "with the map {em}, with its mean {es}");
    // a map of the wrong shape or below −eps is refused
    let bad = RlParams {
        background: Some(Array2::zeros((3, 3))),
        ..RlParams::default()
    };
    assert!(richardson_lucy(y.view(), k.view(), None, &bad, &mut NoObserver).is_err());
    let neg = RlParams {
        eps: 1.0,
        background: Some(Array2::from_elem((n0, n1), -2.0)),
        ..RlParams::default()
    };
    assert!(richardson_lucy(y.view(), k.view(), None, &neg, &mut NoObserver).is_err());
}

/// A star field for the minimum-risk tests: a faint sky plus a few point sources.
fn risk_scene(n: usize, seed: u64) -> Array2<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::from_elem((n, n), 2.0);
    for _ in 0..n / 3 {
        let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
        x[[i, j]] += rng.random_range(50.0..400.0);
    }
    x
}

fn gaussian_noise(y: &Array2<f64>, sigma: f64, seed: u64) -> Array2<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    y.mapv(|v| {
        let z: f64 = StandardNormal.sample(&mut rng);
        v + sigma * z
    })
}

/// Σ over the pixels at least `bd` from the edge of `(a − b)²`.
fn inner_sq(a: &Array2<f64>, b: &Array2<f64>, bd: usize) -> f64 {
    let (n0, n1) = a.dim();
    let mut s = 0.0;
    for i in bd..n0 - bd {
        for j in bd..n1 - bd {
            s += (a[[i, j]] - b[[i, j]]).powi(2);
        }
    }
    s
}

fn risk_params(sigma: f64, border: usize, seed: u64, iters: usize) -> RlParams {
    RlParams {
        stop: RlParams::iterations(iters),
        risk: Some(RiskStop {
            border,
            seed,
            ..RiskStop::new(
                NoiseModel {
                    var0: sigma * sigma,
                    slope: 0.0,
                    bins_used: 0,
                    correlated: false,
                },
                0.0,
            )
        }),
        ..RlParams::default()
    }
}

/// The risk the observer reports (SURE per pixel of the point an iteration starts from) is an
/// unbiased estimate of the prediction error `‖A x_{k−1} − A x‖²` computed with the truth:
/// over 120 noise draws (each with its own probe) the mean difference stays within four
/// standard errors of zero, at an early and a later iteration.
#[test]
fn rl_risk_estimate_is_unbiased() {
    use crate::iter::{Control, IterInfo};
    let n = 24;
    let bd = 2;
    let x = risk_scene(n, 5);
    let k = gauss_psf(5, 1.0);
    let clean = direct_same(x.view(), k.view(), false);
    let sigma = 2.0;
    let nin = ((n - 2 * bd) * (n - 2 * bd)) as f64;
    let at = [4usize, 11];
    let mut diffs = vec![Vec::new(); at.len()];
    let mut risks = vec![0.0; at.len()];
    for draw in 0..120u64 {
        let y = gaussian_noise(&clean, sigma, 1000 + draw);
        let p = risk_params(sigma, bd, draw, 12);
        let mut prev = Array2::from_elem((n, n), 0.0);
        let mut first = true;
        let mut seen = Vec::new();
        let mut obs = |i: &IterInfo<f64>| {
            let xk = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
            let xk = xk.into_dimensionality::<ndarray::Ix2>().unwrap().to_owned();
            if first {
                // the starting image: the mean of the data (the default init)
                prev.fill(y.mean().unwrap());
                first = false;
            }
            if let Some(l) = at.iter().position(|&a| a == i.iter) {
                let m = direct_same(prev.view(), k.view(), false);
                let truth = inner_sq(&m, &clean, bd);
                seen.push((l, i.step.residual.unwrap() * nin, truth));
            }
            prev = xk;
            Control::Continue
        };
        richardson_lucy(y.view(), k.view(), None, &p, &mut obs).unwrap();
        assert_eq!(
            seen.len(),
            at.len(),
            "the run stopped before iteration {:?}",
            at
        );
        for (l, sure, truth) in seen {
            diffs[l].push(sure - truth);
            risks[l] += truth / 120.0;
        }
    }
    for (l, d) in diffs.iter().enumerate() {
        let m = d.iter().sum::<f64>() / d.len() as f64;
        let sd = (d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (d.len() - 1) as f64).sqrt();
        let se = sd / (d.len() as f64).sqrt();
        assert!(
            m.abs() < 4.0 * se,
            "iteration {}: SURE − risk = {m:.2} ± {se:.2} (risk {:.1})",
            at[l],
            risks[l]
        );
        // and the estimate is informative: its error is well below the risk itself
        assert!(
            se < 0.1 * risks[l],
            "standard error {se} vs risk {}",
            risks[l]
        );
    }
}

/// The minimum-risk stop returns the plain RL iterate of the reported count, stops with `MinimumRisk` before its cap on noisy data, and the
/// iterate it picks is close to the best one chosen with the truth: its true prediction error
/// is within 15 % of the least over every count up to the cap.
#[test]
fn rl_risk_stop_picks_near_best_iterate() {
    use crate::iter::StopReason;
    let n = 32;
    let x = risk_scene(n, 9);
    let k = gauss_psf(7, 1.4);
    let clean = direct_same(x.view(), k.view(), false);
    let sigma = 3.0;
    let y = gaussian_noise(&clean, sigma, 77);
    let cap = 400;
    let p = risk_params(sigma, 3, 1, cap);
    let (est, rep) = richardson_lucy(y.view(), k.view(), None, &p, &mut NoObserver).unwrap();
    assert_eq!(rep.stop_reason, StopReason::MinimumRisk);
    let kstar = rep.iterations;
    assert!(
        kstar >= 2 && kstar + p.risk.unwrap().wait_after(kstar) < cap,
        "k* = {kstar}"
    );
    // the same as running exactly k* plain iterations (the plain iteration is checked
    // against the brute-force one in `rl_matches_direct_implementation`)
    let x0 = y.mean().unwrap();
    let fixed = RlParams {
        stop: RlParams::iterations(kstar),
        ..RlParams::default()
    };
    let (direct, _) = richardson_lucy(y.view(), k.view(), None, &fixed, &mut NoObserver).unwrap();
    assert_eq!(est, direct);
    // the true prediction error along the plain iteration
    let risk_of = |xk: &Array2<f64>| {
        let m = direct_same(xk.view(), k.view(), false);
        inner_sq(&m, &clean, 3)
    };
    let mut best = f64::INFINITY;
    let mut xk = Array2::from_elem(y.dim(), x0);
    let mut solver = RichardsonLucy::new(
        y.view(),
        k.view(),
        None,
        RlParams {
            init: Some(x0),
            ..RlParams::default()
        },
    )
    .unwrap();
    for _ in 0..kstar + p.risk.unwrap().wait_after(kstar) + 40 {
        best = best.min(risk_of(&xk));
        crate::iter::IterativeSolver::step(&mut solver).unwrap();
        xk = solver.x().to_owned();
    }
    let picked = risk_of(&est);
    assert!(
        picked <= 1.15 * best,
        "picked iterate's prediction error {picked:.1}, best {best:.1}"
    );
}

/// Masked pixels (NaN in the data) are left out, the stop cannot be combined with the
/// discrepancy stop, and a non-positive probe step is refused.
#[test]
fn rl_risk_stop_masks_and_bad_parameters() {
    let n = 24;
    let x = risk_scene(n, 3);
    let k = gauss_psf(5, 1.0);
    let mut y = gaussian_noise(&direct_same(x.view(), k.view(), false), 2.0, 4);
    let mut mask = Array2::from_elem(y.dim(), true);
    for j in 3..9 {
        mask[[10, j]] = false;
        y[[10, j]] = f64::NAN;
    }
    let p = risk_params(2.0, 2, 0, 200);
    let (est, rep) =
        richardson_lucy(y.view(), k.view(), Some(mask.view()), &p, &mut NoObserver).unwrap();
    assert!(est.iter().all(|v| v.is_finite()));
    assert!(rep.iterations >= 1);
    let both = RlParams {
        discrepancy: Some(Discrepancy {
            noise: p.risk.unwrap().noise,
            level_offset: 0.0,
            tau: 1.0,
        }),
        ..p.clone()
    };
    let e = richardson_lucy(
        y.view(),
        k.view(),
        Some(mask.view()),
        &both,
        &mut NoObserver,
    );
    assert!(e.unwrap_err().to_string().contains("discrepancy"));
    let bad = RlParams {
        risk: Some(RiskStop {
            eps_rel: 0.0,
            ..p.risk.unwrap()
        }),
        ..p
    };
    assert!(richardson_lucy(y.view(), k.view(), Some(mask.view()), &bad, &mut NoObserver).is_err());
}
