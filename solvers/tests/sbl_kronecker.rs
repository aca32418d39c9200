//! Kronecker SBL and Kronecker OMP: the structured E-step against classic SBL on the explicitly
//! formed Kronecker dictionary, the rank-one M-step, monotonicity of KSBL-AM, noiseless
//! recovery at a size whose explicit dictionary would not fit in memory, complex and block
//! variants, and input errors.

use ndarray::{Array1, Array2, Axis, Ix1, Ix2};
use num_complex::Complex64;
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::op::{Kronecker, LinearOperator};
use sparseinv_solvers::sbl::kronecker::{outer, rank_one};
use sparseinv_solvers::sbl::{
    kron_omp, ksbl, sbl, Blocks, DenseScalar, KsblMethod, KsblParams, NoiseModel, OmpParams,
    SblParams, Selection,
};
use sparseinv_solvers::testing::randn;
use sparseinv_solvers::{Error, Scalar};

fn mat<T: Scalar>(m: usize, n: usize, seed: u64) -> Array2<T> {
    randn::<T>(&[m, n], seed)
        .into_dimensionality::<Ix2>()
        .unwrap()
}

/// numpy.kron by its definition.
fn brute_kron<T: Scalar>(a: &Array2<T>, b: &Array2<T>) -> Array2<T> {
    let (m, n) = a.dim();
    let (p, q) = b.dim();
    Array2::from_shape_fn((m * p, n * q), |(r, c)| {
        a[[r / p, c / q]] * b[[r % p, c % q]]
    })
}

/// A sparse vector with Kronecker support `s₁ × s₂ × …` and seeded random values.
fn kron_sparse<T: Scalar<Real = f64>>(
    dims: &[usize],
    supports: &[Vec<usize>],
    seed: u64,
) -> Array1<T> {
    let n: usize = dims.iter().product();
    let v = randn::<T>(&[n], seed);
    let mut x = Array1::<T>::zeros(n);
    let mut flat = vec![0usize];
    for (i, s) in supports.iter().enumerate() {
        flat = flat
            .iter()
            .flat_map(|&o| s.iter().map(move |&j| o * dims[i] + j))
            .collect();
    }
    for f in flat {
        // keep values away from zero
        let a = v[f];
        x[f] = a + a.scale(1.0 / a.modulus().max(1e-3));
    }
    x
}

/// Mode supports: entries of γᵢ above 1e-3 · max γᵢ (KSBL-AM, like EM, shrinks uninformative
/// hyperparameters slowly and may not have pruned them at 1e-6 within the iteration budget).
fn sig_support(gammas: &[Array1<f64>]) -> Vec<Vec<usize>> {
    gammas
        .iter()
        .map(|g| {
            let mx = g.iter().cloned().fold(0.0, f64::max);
            (0..g.len()).filter(|&j| g[j] > 1e-3 * mx).collect()
        })
        .collect()
}

/// One KSBL iteration from the uniform start equals one classic SBL iteration on the formed
/// `Φ₁ ⊗ Φ₂ ⊗ Φ₃`: same posterior mean, variances, objective and learned noise.
fn structured_estep_case<T: DenseScalar + sparseinv_solvers::Scalar<Real = f64>>() {
    let f = [mat::<T>(4, 5, 1), mat::<T>(3, 4, 2), mat::<T>(2, 3, 3)];
    let explicit = brute_kron(&brute_kron(&f[0], &f[1]), &f[2]);
    let y = randn::<T>(&[24], 4).into_dimensionality::<Ix1>().unwrap();
    for noise in [
        NoiseModel::Fixed(0.2),
        NoiseModel::Learn { init: Some(0.3) },
    ] {
        let kp = KsblParams {
            stop: StopCriteria {
                max_iters: 1,
                ..StopCriteria::default()
            },
            noise,
            ..Default::default()
        };
        let (rk, rk_rep) = ksbl(&f, y.view(), &kp, &mut NoObserver).unwrap();
        let sp = SblParams {
            stop: StopCriteria {
                max_iters: 1,
                ..StopCriteria::default()
            },
            noise,
            prune: 0.0,
            ..Default::default()
        };
        let (rs, rs_rep) = sbl(
            explicit.view(),
            y.view().insert_axis(Axis(1)),
            &sp,
            &mut NoObserver,
        )
        .unwrap();
        for n in 0..60 {
            assert!((rk.mean[n] - rs.mean[[n, 0]]).modulus() < 1e-10, "mean {n}");
            assert!((rk.variance[n] - rs.variance[n]).abs() < 1e-10, "var {n}");
        }
        let (ok, os) = (rk_rep.objective_history[0], rs_rep.objective_history[0]);
        assert!((ok - os).abs() < 1e-9 * os.abs().max(1.0), "{ok} vs {os}");
        assert!((rk.noise_var - rs.noise_var).abs() < 1e-12 * rs.noise_var.max(1.0));
    }
}

#[test]
fn structured_estep_equals_dense_sbl() {
    structured_estep_case::<f64>();
    structured_estep_case::<Complex64>();
}

#[test]
fn rank_one_recovers_exact_kronecker_tensors_and_is_locally_optimal() {
    for dims in [vec![5usize, 7], vec![4, 5, 6], vec![3, 4, 2, 5]] {
        let us: Vec<Array1<f64>> = dims
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                randn::<f64>(&[n], 30 + i as u64)
                    .into_dimensionality::<Ix1>()
                    .unwrap()
                    .mapv(f64::abs)
            })
            .collect();
        let t = outer(&us);
        let (s, vs) = rank_one::<f64>(&t, &dims).unwrap();
        let rec = outer(&vs) * s;
        let err = (&rec - &t).mapv(|v| v * v).sum().sqrt() / t.mapv(|v| v * v).sum().sqrt();
        assert!(err < 1e-10, "{dims:?}: {err}");
    }
    // a generic non-negative tensor: no small perturbation of the factors fits better
    let dims = [4usize, 5, 6];
    let t = randn::<f64>(&[120], 40)
        .into_dimensionality::<Ix1>()
        .unwrap()
        .mapv(f64::abs);
    let (s, vs) = rank_one::<f64>(&t, &dims).unwrap();
    let res = |s: f64, vs: &[Array1<f64>]| (&(outer(vs) * s) - &t).mapv(|v| v * v).sum();
    let best = res(s, &vs);
    for k in 0..40u64 {
        let pert: Vec<Array1<f64>> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v + &(randn::<f64>(&[v.len()], 100 + 7 * k + i as u64)
                    .into_dimensionality::<Ix1>()
                    .unwrap()
                    * 1e-3)
            })
            .collect();
        // optimal scale for the perturbed factors
        let o = outer(&pert);
        let sp = o.dot(&t) / o.dot(&o);
        assert!(
            res(sp, &pert) >= best - 1e-12,
            "perturbation {k} fits better"
        );
    }
}

/// Factors, mode supports, truth, noiseless measurements.
type ThreeMode = ([Array2<f64>; 3], Vec<Vec<usize>>, Array1<f64>, Array1<f64>);

/// A 3-mode problem: dictionaries 6×10, 7×12, 6×8 (252 measurements, 960 atoms), mode
/// supports {1, 6} × {0, 4, 9} × {3, 5} (12 non-zeros); returns the factors, the supports, the
/// truth and the noiseless measurements.
fn three_mode_problem() -> ThreeMode {
    let dims = [10usize, 12, 8];
    let f = [
        mat::<f64>(6, 10, 5),
        mat::<f64>(7, 12, 6),
        mat::<f64>(6, 8, 7),
    ];
    let supp = vec![vec![1, 6], vec![0, 4, 9], vec![3, 5]];
    let x = kron_sparse::<f64>(&dims, &supp, 8);
    let op = Kronecker::new(f.to_vec()).unwrap();
    let clean = op
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    (f, supp, x, clean)
}

#[test]
fn ksbl_am_is_monotone_and_both_methods_recover_noisy_truth() {
    let (f, supp, x, clean) = three_mode_problem();
    let y = &clean
        + &(randn::<f64>(&[252], 9)
            .into_dimensionality::<Ix1>()
            .unwrap()
            * 0.01);
    for method in [KsblMethod::Am, KsblMethod::Svd] {
        let p = KsblParams {
            method,
            stop: StopCriteria {
                max_iters: 300,
                ..StopCriteria::default()
            },
            ..Default::default()
        };
        let (r, r_rep) = ksbl(&f, y.view(), &p, &mut NoObserver).unwrap();
        if method == KsblMethod::Am {
            for w in r_rep.objective_history.windows(2) {
                assert!(
                    w[1] <= w[0] + 1e-8 * w[0].abs().max(1.0),
                    "AM objective rose {} -> {}",
                    w[0],
                    w[1]
                );
            }
        }
        let err = (&r.mean - &x).mapv(|v| v * v).sum().sqrt() / x.mapv(|v| v * v).sum().sqrt();
        assert!(err < 0.05, "{method:?}: relative error {err}");
        if method == KsblMethod::Svd {
            assert_eq!(r.mode_support, supp, "{method:?}");
        }
        assert!(
            r.noise_var > 0.2e-4 && r.noise_var < 5e-4,
            "{method:?} noise {}",
            r.noise_var
        );
    }
}

/// Four modes of 24 atoms with 12 measurements each: N = 331 776 unknowns, M = 20 736
/// measurements. The explicit dictionary would need M·N·8 bytes ≈ 55 GB (real), far beyond the
/// memory of a workstation; KSBL works with the four 12 × 24 factors only.
#[test]
fn ksbl_recovers_noiseless_truth_beyond_explicit_memory() {
    let dims = [24usize; 4];
    let f: Vec<Array2<f64>> = (0..4).map(|i| mat::<f64>(12, 24, 50 + i)).collect();
    let (m, n): (usize, usize) = (12usize.pow(4), 24usize.pow(4));
    assert!((m as f64) * (n as f64) * 8.0 > 5e10);
    let supp = vec![vec![2, 17], vec![5, 11], vec![0, 23], vec![8, 9]];
    let x = kron_sparse::<f64>(&dims, &supp, 60);
    let op = Kronecker::new(f.clone()).unwrap();
    let y = op
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    let power = y.mapv(|v| v * v).sum() / m as f64;
    {
        let method = KsblMethod::Svd;
        let p = KsblParams {
            method,
            noise: NoiseModel::Fixed(1e-10 * power),
            stop: StopCriteria {
                max_iters: 100,
                rel_tol: 1e-8,
                ..StopCriteria::default()
            },
            ..Default::default()
        };
        let (r, _r_rep) = ksbl(&f, y.view(), &p, &mut NoObserver).unwrap();
        assert_eq!(
            r.mode_support, supp,
            "{method:?} prunes to the true support"
        );
        let err = (&r.mean - &x).mapv(|v| v * v).sum().sqrt() / x.mapv(|v| v * v).sum().sqrt();
        assert!(err < 1e-4, "{method:?}: relative error {err}");
    }
}

#[test]
fn complex_and_block_ksbl_and_kron_omp_recover() {
    // complex, two modes
    let dims = [16usize, 14];
    let f = [mat::<Complex64>(9, 16, 70), mat::<Complex64>(8, 14, 71)];
    let supp = vec![vec![3, 12], vec![0, 7, 13]];
    let x = kron_sparse::<Complex64>(&dims, &supp, 72);
    let op = Kronecker::new(f.to_vec()).unwrap();
    let y = op
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    let nrm = x.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
    for method in [KsblMethod::Am, KsblMethod::Svd] {
        let p = KsblParams {
            method,
            noise: NoiseModel::Fixed(1e-9),
            stop: StopCriteria {
                max_iters: 300,
                rel_tol: 1e-9,
                ..StopCriteria::default()
            },
            ..Default::default()
        };
        let (r, _r_rep) = ksbl(&f, y.view(), &p, &mut NoObserver).unwrap();
        assert_eq!(sig_support(&r.gammas), supp, "{method:?}");
        let err = (&r.mean - &x)
            .iter()
            .map(|v| v.norm_sqr())
            .sum::<f64>()
            .sqrt()
            / nrm;
        assert!(err < 1e-3, "{method:?}: {err}");
    }
    let o = kron_omp(
        &f,
        y.view(),
        &OmpParams {
            residual_tol: 1e-16,
            max_atoms: None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(o.mode_support, supp);
    let err = (&o.x - &x).iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt() / nrm;
    assert!(err < 1e-10, "KOMP {err}");

    // block-sparse modes: blocks of 2 atoms, mode 1 active blocks {1, 5}, mode 2 block {3}
    let dims = [16usize, 12];
    let f = [mat::<f64>(10, 16, 80), mat::<f64>(8, 12, 81)];
    let supp = vec![vec![2, 3, 10, 11], vec![6, 7]];
    let x = kron_sparse::<f64>(&dims, &supp, 82);
    let op = Kronecker::new(f.to_vec()).unwrap();
    let y = op
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    let blocks = vec![
        Blocks::uniform(16, 2).unwrap(),
        Blocks::uniform(12, 2).unwrap(),
    ];
    for method in [KsblMethod::Am, KsblMethod::Svd] {
        let p = KsblParams {
            method,
            noise: NoiseModel::Fixed(1e-9),
            stop: StopCriteria {
                max_iters: 300,
                rel_tol: 1e-9,
                ..StopCriteria::default()
            },
            blocks: Some(blocks.clone()),
            ..Default::default()
        };
        let (r, _r_rep) = ksbl(&f, y.view(), &p, &mut NoObserver).unwrap();
        assert_eq!(sig_support(&r.gammas), supp, "block {method:?}");
        for g in &r.gammas {
            for b in 0..g.len() / 2 {
                assert_eq!(g[2 * b], g[2 * b + 1], "block hyperparameters tied");
            }
        }
        let err = (&r.mean - &x).mapv(|v| v * v).sum().sqrt() / x.mapv(|v| v * v).sum().sqrt();
        assert!(err < 1e-3, "block {method:?}: {err}");
    }
}

/// Kronecker OMP without a noise level or budget chooses its support by extended BIC: on a
/// noisy 3-mode problem (12 non-zeros in a 960-atom product dictionary, 252 measurements,
/// SNR ≈ 30 dB) it stops at a support of about the true size and is far better than running
/// until the residual vanishes.
#[test]
fn kron_omp_chooses_its_support_by_extended_bic() {
    let (f, supp, x, clean) = three_mode_problem();
    let sd = (clean.mapv(|v| v * v).sum() / 252.0).sqrt() * 10f64.powf(-30.0 / 20.0);
    let y = &clean
        + &(randn::<f64>(&[252], 19)
            .into_dimensionality::<Ix1>()
            .unwrap()
            * sd);
    let nmse =
        |a: &Array1<f64>| 10.0 * ((a - &x).mapv(|v| v * v).sum() / x.mapv(|v| v * v).sum()).log10();
    let r = kron_omp(&f, y.view(), &OmpParams::default()).unwrap();
    let size: usize = r.mode_support.iter().map(|s| s.len()).product();
    let full = kron_omp(
        &f,
        y.view(),
        &OmpParams {
            select: Selection::Exhaustive,
            ..Default::default()
        },
    )
    .unwrap();
    eprintln!(
        "EBIC: support {:?} ({size} coefficients, path {:?}), {:.1} dB; exhaustive {:?}, {:.1} dB",
        r.mode_support,
        r.bic_path,
        nmse(&r.x),
        full.mode_support,
        nmse(&full.x)
    );
    assert!(r.bic_path.is_some() && full.bic_path.is_none());
    assert!((12..=24).contains(&size), "{size} coefficients");
    assert_eq!(r.mode_support, supp);
    assert!(nmse(&r.x) < -20.0 && nmse(&r.x) < nmse(&full.x) - 5.0);
}

#[test]
fn ksbl_bad_input_is_an_error() {
    let f = [mat::<f64>(3, 4, 1), mat::<f64>(2, 5, 2)];
    let y = Array1::<f64>::ones(7);
    assert!(matches!(
        ksbl(&f, y.view(), &KsblParams::default(), &mut NoObserver),
        Err(Error::ShapeMismatch { .. })
    ));
    let z = Array1::<f64>::zeros(6);
    assert!(ksbl(&f, z.view(), &KsblParams::default(), &mut NoObserver)
        .unwrap_err()
        .to_string()
        .contains("all zero"));
    let mut yn = Array1::<f64>::ones(6);
    yn[0] = f64::NAN;
    assert!(matches!(
        ksbl(&f, yn.view(), &KsblParams::default(), &mut NoObserver),
        Err(Error::NonFinite { .. })
    ));
    let mut g = f.clone();
    g[1][[0, 0]] = f64::INFINITY;
    assert!(ksbl(
        &g,
        Array1::<f64>::ones(6).view(),
        &KsblParams::default(),
        &mut NoObserver
    )
    .is_err());
    let p = KsblParams::<f64> {
        blocks: Some(vec![Blocks::uniform(4, 2).unwrap()]),
        ..Default::default()
    };
    assert!(ksbl(&f, Array1::<f64>::ones(6).view(), &p, &mut NoObserver).is_err());
    assert!(kron_omp(&f, Array1::<f64>::ones(5).view(), &OmpParams::default()).is_err());
    assert!(ksbl::<f64>(
        &[],
        Array1::<f64>::ones(1).view(),
        &KsblParams::default(),
        &mut NoObserver
    )
    .is_err());
}

/// The KSBL observer sees the flat posterior mean after every iteration: its NMSE against a
/// Kronecker-sparse truth is logged and the observer stops the run once it is small.
#[test]
fn ksbl_observer_logs_nmse_and_interrupts() {
    use sparseinv_solvers::iter::{Control, IterInfo, StopReason};
    let dims = [12usize, 10];
    let f = vec![mat::<f64>(8, 12, 81), mat::<f64>(7, 10, 82)];
    let supp = vec![vec![3, 9], vec![1]];
    let x = kron_sparse::<f64>(&dims, &supp, 83);
    let y = Kronecker::new(f.clone())
        .unwrap()
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    let xn2 = x.mapv(|v| v * v).sum();
    for method in [KsblMethod::Am, KsblMethod::Svd] {
        let p = KsblParams {
            method,
            noise: NoiseModel::Fixed(1e-10),
            ..Default::default()
        };
        let mut nmse = Vec::new();
        let mut last = None;
        let mut obs = |i: &IterInfo<f64>| {
            let mu = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
            let e = (&mu - &x.view().into_dyn()).mapv(|v| v * v).sum() / xn2;
            nmse.push(e);
            last = Some(mu.to_owned());
            if e < 1e-6 {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        let (r, rep) = ksbl(&f, y.view(), &p, &mut obs).unwrap();
        assert_eq!(rep.stop_reason, StopReason::Interrupted, "{method:?}");
        assert_eq!(rep.iterations, nmse.len());
        assert!(
            nmse[0] > 1e-2 && *nmse.last().unwrap() < 1e-6,
            "{method:?}: {nmse:?}"
        );
        assert_eq!(last.unwrap(), r.mean.into_dyn());
    }
}
