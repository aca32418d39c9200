//! Starlet transform: brute-force forward, exact adjoint, reconstruction, noise levels
//! (exact vs published values vs Monte Carlo) and the starlet thresholding denoiser.

use ndarray::{s, Array2, Array3, ArrayD, Ix2, Ix3};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::op::{starlet_noise_std, LinearOperator, Starlet};
use sparseinv_solvers::starlet_denoise::{StarletDenoiser, Threshold};
use sparseinv_solvers::testing::{assert_adjoint, randn};
use sparseinv_solvers::Error;

fn mirror(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let p = 2 * (n as isize - 1);
    let r = i.rem_euclid(p);
    if r < n as isize {
        r as usize
    } else {
        (p - r) as usize
    }
}

/// Direct 2-D à trous: 25-tap dilated B3 filter with mirrored indices.
fn brute_forward(x: &Array2<f64>, scales: usize) -> Array3<f64> {
    let h = [1.0, 4.0, 6.0, 4.0, 1.0].map(|v: f64| v / 16.0);
    let (n0, n1) = x.dim();
    let mut out = Array3::zeros((scales + 1, n0, n1));
    let mut c = x.clone();
    for j in 0..scales {
        let st = 1isize << j;
        let next = Array2::from_shape_fn((n0, n1), |(i, k)| {
            let mut acc = 0.0;
            for a in 0..5 {
                for b in 0..5 {
                    let ii = mirror(i as isize + (a as isize - 2) * st, n0);
                    let kk = mirror(k as isize + (b as isize - 2) * st, n1);
                    acc += h[a] * h[b] * c[[ii, kk]];
                }
            }
            acc
        });
        out.slice_mut(s![j, .., ..]).assign(&(&c - &next));
        c = next;
    }
    out.slice_mut(s![scales, .., ..]).assign(&c);
    out
}

#[test]
fn forward_matches_direct_a_trous() {
    for (shape, j) in [
        ([16usize, 20usize], 3usize),
        ([5, 7], 4),
        ([1, 9], 2),
        ([33, 2], 3),
    ] {
        let x: Array2<f64> = randn::<f64>(&shape, 4).into_dimensionality().unwrap();
        let st = Starlet::<f64>::new(shape, j).unwrap();
        let got = st.apply(x.view().into_dyn()).unwrap();
        let want = brute_forward(&x, j).into_dyn();
        let err = (&got - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-13, "{shape:?} J={j}: {err:e}");
    }
}

#[test]
fn adjoint_dot_test() {
    for (shape, j) in [
        ([16usize, 20usize], 3usize),
        ([5, 7], 4),
        ([64, 48], 5),
        ([1, 9], 2),
    ] {
        let st64 = Starlet::<f64>::new(shape, j).unwrap();
        assert_adjoint(&st64, 1e-13);
        let st32 = Starlet::<f32>::new(shape, j).unwrap();
        assert_adjoint(&st32, 1e-5);
    }
}

#[test]
fn reconstruct_is_a_left_inverse() {
    let x = randn::<f64>(&[40, 37], 8);
    let st = Starlet::<f64>::new([40, 37], 5).unwrap();
    let w = st.apply(x.view()).unwrap();
    let back = st.reconstruct(w.view()).unwrap();
    let err = (&back - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-13);
    let x32 = randn::<f32>(&[40, 37], 8);
    let st32 = Starlet::<f32>::new([40, 37], 5).unwrap();
    let back32 = st32
        .reconstruct(st32.apply(x32.view()).unwrap().view())
        .unwrap();
    assert!((&back32 - &x32).iter().all(|d| d.abs() < 1e-5));
    // shape validation
    let wrong = ArrayD::<f64>::zeros(vec![5, 40, 37]);
    assert!(matches!(
        st.reconstruct(wrong.view()),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn noise_std_matches_published_values_and_is_consistent() {
    // Starck & Murtagh, Astronomical Image and Data Analysis, table 2.1 (B3 starlet):
    // 0.890, 0.200, 0.086, 0.041, 0.020, 0.010, 0.005.
    let published = [0.890, 0.200, 0.086, 0.041, 0.020, 0.010, 0.005];
    let ours = starlet_noise_std(7);
    assert_eq!(ours.len(), 8);
    for (o, p) in ours.iter().zip(published) {
        assert!((o - p).abs() < 0.0015, "{o} vs {p}");
    }
    // Energy is not preserved but the planes of δ reconstruct it: Σ planes = δ.
    assert!(ours[7] > 0.0 && ours[7] < ours[6]);
    // Prefixes agree: the w_j do not depend on J.
    let three = starlet_noise_std(3);
    for j in 0..3 {
        assert!((three[j] - ours[j]).abs() < 1e-15);
    }
}

#[test]
fn noise_std_matches_monte_carlo() {
    let n = 256;
    let j = 4;
    let st = Starlet::<f64>::new([n, n], j).unwrap();
    let exact = st.noise_std();
    let mut acc = vec![0.0; j + 1];
    let mut cnt = 0usize;
    let margin = 2 * (1 << j) + 2; // beyond the reach of the filters: no border effects
    for seed in 0..4 {
        let x = randn::<f64>(&[n, n], 100 + seed);
        let w = st
            .apply(x.view())
            .unwrap()
            .into_dimensionality::<Ix3>()
            .unwrap();
        let inner = w.slice(s![.., margin..n - margin, margin..n - margin]);
        for (k, plane) in inner.outer_iter().enumerate() {
            acc[k] += plane.iter().map(|v| v * v).sum::<f64>();
        }
        cnt += (n - 2 * margin) * (n - 2 * margin);
    }
    for k in 0..=j {
        let mc = (acc[k] / cnt as f64).sqrt();
        let rel = (mc - exact[k]).abs() / exact[k];
        // Coarser planes are smoother, hence fewer independent samples: looser tolerance.
        let tol = [0.01, 0.02, 0.05, 0.10, 0.25][k];
        assert!(rel < tol, "plane {k}: MC {mc} vs exact {}", exact[k]);
    }
}

#[test]
fn errors() {
    assert!(matches!(
        Starlet::<f64>::new([0, 4], 2),
        Err(Error::Empty { .. })
    ));
    assert!(Starlet::<f64>::new([4, 4], 0).is_err());
    assert!(StarletDenoiser::new(0).is_err());
    let d = StarletDenoiser::new(3).unwrap();
    let x3 = ArrayD::<f64>::zeros(vec![2, 3, 4]);
    assert!(matches!(
        d.denoise(x3.view(), 1.0),
        Err(Error::Unsupported(_))
    ));
    let x = ArrayD::<f64>::zeros(vec![8, 8]);
    assert!(d.denoise(x.view(), -1.0).is_err());
    assert!(d.denoise(x.view(), f64::NAN).is_err());
    let mut bad = x.clone();
    bad[[2, 2]] = f64::INFINITY;
    assert!(matches!(
        d.denoise(bad.view(), 1.0),
        Err(Error::NonFinite { .. })
    ));
}

/// Smooth background + a few point sources + extended Gaussian blobs.
fn test_image(n: usize) -> Array2<f64> {
    let mut x = Array2::from_shape_fn((n, n), |(i, j)| {
        let (u, v) = (i as f64 / n as f64, j as f64 / n as f64);
        2.0 + (3.0 * u).sin() + 0.5 * (2.0 * v + 1.0).cos()
    });
    let blobs = [
        (20.0, 30.0, 3.0, 20.0),
        (70.0, 90.0, 6.0, 10.0),
        (100.0, 40.0, 2.0, 30.0),
    ];
    let f = n as f64 / 128.0; // positions are given for a 128×128 image
    for (ci, cj, r, a) in blobs {
        let (ci, cj, r) = (ci * f, cj * f, r * f);
        x.indexed_iter_mut().for_each(|((i, j), v)| {
            let d2 = (i as f64 - ci).powi(2) + (j as f64 - cj).powi(2);
            *v += a * (-d2 / (2.0 * r * r)).exp();
        });
    }
    for (i, j, a) in [(10usize, 100usize, 25.0), (50, 50, 15.0), (110, 15, 20.0)] {
        x[[i * n / 128, j * n / 128]] += a;
    }
    x
}

fn mse(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).iter().map(|v| v * v).sum::<f64>() / a.len() as f64
}

#[test]
fn denoising_reduces_mse_substantially() {
    let n = 128;
    let clean = test_image(n);
    let sigma = 1.0;
    let noisy = &clean
        + &(randn::<f64>(&[n, n], 77)
            .into_dimensionality::<Ix2>()
            .unwrap()
            * sigma);
    let before = mse(&noisy, &clean);
    for (thr, factor) in [(Threshold::Hard, 0.2), (Threshold::Soft, 0.3)] {
        let mut d = StarletDenoiser::new(5).unwrap();
        d.threshold = thr;
        let out = d.denoise(noisy.view().into_dyn(), sigma).unwrap();
        let after = mse(&out.into_dimensionality().unwrap(), &clean);
        assert!(
            after < factor * before,
            "{thr:?}: MSE {after} not below {factor} × {before}"
        );
    }
    // f32 too
    let d = StarletDenoiser::new(5).unwrap();
    let out32 = d
        .denoise(noisy.mapv(|v| v as f32).view().into_dyn(), 1.0f32)
        .unwrap();
    let after32 = mse(
        &out32.mapv(|v| v as f64).into_dimensionality().unwrap(),
        &clean,
    );
    assert!(after32 < 0.2 * before);
}

#[test]
fn zero_noise_returns_the_input() {
    let x = test_image(64).into_dyn();
    for thr in [Threshold::Hard, Threshold::Soft] {
        let mut d = StarletDenoiser::new(4).unwrap();
        d.threshold = thr;
        let out = d.denoise(x.view(), 0.0).unwrap();
        let err = (&out - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-12, "{thr:?}: {err}");
    }
}
