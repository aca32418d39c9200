//! Self-calibration (Ling & Strohmer): exact recovery up to scale on noiseless random
//! instances for every model × solver × backend × real/complex, bounded error with noise,
//! adjoint of the stacked operator, dense vs matrix-free agreement, error paths.

use ndarray::{Array1, Array2, Array3};
use sparseinv_solvers::iter::NoObserver;
use sparseinv_solvers::selfcal::{
    alternating_least_squares, scale_invariant_error, solve, synthetic, AlsParams, Backend,
    Constraint, DenseScalar, Errors, InstanceSpec, Method, Model, Params, Problem,
};
use sparseinv_solvers::testing::assert_adjoint;
use sparseinv_solvers::{Error, C64};

const MODELS: [Model; 3] = [Model::Repeated, Model::Diverse, Model::Snapshots];

/// sizes with a comfortable oversampling for each model: (m, n, p)
fn sizes(model: Model) -> (usize, usize, usize) {
    match model {
        Model::Repeated => (24, 8, 4),  // N = 32, pm = 96
        Model::Diverse => (24, 6, 4),   // N = 48, pm = 96
        Model::Snapshots => (24, 6, 4), // N = 48, pm = 96
    }
}

fn params<T>(method: Method, backend: Backend) -> Params<T> {
    Params {
        method,
        backend,
        ..Default::default()
    }
}

fn exact_recovery<T: DenseScalar>(tol: f64) {
    for model in MODELS {
        let (m, n, p) = sizes(model);
        for k in [None, Some(5)] {
            let mut spec = InstanceSpec::new(model, m, n, p);
            spec.k = k;
            let inst = synthetic::<T>(&spec, 42).unwrap();
            for method in [Method::Lsq, Method::Spectral] {
                for backend in [Backend::Dense, Backend::MatrixFree] {
                    let (sol, _sol_rep) =
                        solve(&inst.problem, &params(method, backend), &mut NoObserver).unwrap();
                    let e = Errors::measure(&sol, &inst.s, &inst.x);
                    assert!(
                        e.joint < tol && e.s < tol && e.x < tol,
                        "{model:?} k={k:?} {method:?} {backend:?}: errors {e:?}"
                    );
                    // the gains / filter are recovered up to the inverse scale
                    let ed = scale_invariant_error(sol.d.view(), inst.d.view()).to_f64_lossless();
                    assert!(ed < tol * 10.0, "{model:?} {method:?}: d error {ed:e}");
                }
            }
        }
    }
}

use sparseinv_solvers::Real;

#[test]
fn exact_recovery_f64() {
    exact_recovery::<f64>(1e-8);
}

#[test]
fn exact_recovery_c64() {
    exact_recovery::<C64>(1e-8);
}

#[test]
fn exact_recovery_f32() {
    exact_recovery::<f32>(2e-3);
}

#[test]
fn system_operator_adjoint() {
    for model in MODELS {
        for k in [None, Some(4)] {
            let mut spec = InstanceSpec::new(model, 12, 3, 3);
            spec.k = k;
            let i = synthetic::<C64>(&spec, 3).unwrap();
            assert_adjoint(i.problem.operator(), 1e-13);
            let i = synthetic::<f64>(&spec, 3).unwrap();
            assert_adjoint(i.problem.operator(), 1e-13);
            let i = synthetic::<f32>(&spec, 3).unwrap();
            assert_adjoint(i.problem.operator(), 1e-5);
        }
    }
}

#[test]
fn dense_matrix_equals_operator() {
    // the dense A₀ used by the faer path and the matrix-free operator agree column by column
    use sparseinv_solvers::op::LinearOperator;
    for model in MODELS {
        let mut spec = InstanceSpec::new(model, 10, 3, 3);
        spec.k = Some(4);
        let inst = synthetic::<C64>(&spec, 9).unwrap();
        let op = inst.problem.operator();
        let dense = op.to_dense();
        let nn = op.domain_shape()[0];
        for j in 0..nn {
            let mut e = ndarray::ArrayD::<C64>::zeros(ndarray::IxDyn(&[nn]));
            e[j] = C64::new(1.0, 0.0);
            let col = op.apply(e.view()).unwrap();
            for i in 0..col.len() {
                assert!(
                    (col[i] - dense[(i, j)]).norm() < 1e-12,
                    "{model:?} ({i},{j})"
                );
            }
        }
    }
}

#[test]
fn lsq_satisfies_constraint_and_data() {
    // LSQ with h_1 = 1: h_1 of the solution is 1 and the residual ‖A₀z‖/‖z‖ is ~0
    let inst = synthetic::<C64>(&InstanceSpec::new(Model::Repeated, 20, 5, 3), 5).unwrap();
    let p = Params {
        constraint: Constraint::First,
        ..Default::default()
    };
    let (sol, _sol_rep) = solve(&inst.problem, &p, &mut NoObserver).unwrap();
    assert!((sol.h[0] - C64::new(1.0, 0.0)).norm() < 1e-10);
    assert!(sol.sigma < 1e-10);
    // exact: s = s_true / s_true[0]
    for i in 0..20 {
        assert!((sol.s[i] - inst.s[i] / inst.s[0]).norm() < 1e-9);
    }
    // custom w
    let w = Array1::from_elem(20, C64::new(0.0, 1.0));
    let p = Params {
        constraint: Constraint::Vector(w.clone(), C64::new(2.0, 0.0)),
        ..Default::default()
    };
    let (sol, _sol_rep) = solve(&inst.problem, &p, &mut NoObserver).unwrap();
    let wh: C64 = w.iter().zip(&sol.h).map(|(a, b)| a.conj() * b).sum();
    assert!((wh - C64::new(2.0, 0.0)).norm() < 1e-10);
}

#[test]
fn noisy_error_bounded_and_decreasing_with_snr() {
    for model in MODELS {
        let (m, n, p) = sizes(model);
        let mut prev = f64::INFINITY;
        for snr in [20.0, 40.0, 60.0] {
            let mut spec = InstanceSpec::new(model, m, n, p);
            spec.snr_db = Some(snr);
            let inst = synthetic::<C64>(&spec, 7).unwrap();
            for method in [Method::Lsq, Method::Spectral] {
                let (sol, _sol_rep) = solve(
                    &inst.problem,
                    &params(method, Backend::Auto),
                    &mut NoObserver,
                )
                .unwrap();
                let e = Errors::measure(&sol, &inst.s, &inst.x).joint;
                // graceful degradation: error within a modest factor of the noise level
                let noise = 10f64.powf(-snr / 20.0);
                assert!(e < 30.0 * noise, "{model:?} {method:?} snr {snr}: {e:e}");
                if method == Method::Lsq {
                    assert!(e < prev, "{model:?}: error did not decrease with SNR");
                    prev = e;
                }
            }
        }
    }
}

#[test]
fn matrix_free_spectral_matches_dense_svd_with_noise() {
    for model in MODELS {
        let (m, n, p) = sizes(model);
        spectral_dense_vs_matrix_free::<f64>(model, m, n, p);
        spectral_dense_vs_matrix_free::<C64>(model, m, n, p);
    }
}

fn spectral_dense_vs_matrix_free<T: DenseScalar>(model: Model, m: usize, n: usize, p: usize) {
    let mut spec = InstanceSpec::new(model, m, n, p);
    spec.snr_db = Some(30.0);
    let inst = synthetic::<T>(&spec, 11).unwrap();
    let (a, _a_rep) = solve(
        &inst.problem,
        &params(Method::Spectral, Backend::Dense),
        &mut NoObserver,
    )
    .unwrap();
    let (b, _b_rep) = solve(
        &inst.problem,
        &params(Method::Spectral, Backend::MatrixFree),
        &mut NoObserver,
    )
    .unwrap();
    let za: Vec<T> = a.s.iter().chain(a.x.iter()).copied().collect();
    let zb: Vec<T> = b.s.iter().chain(b.x.iter()).copied().collect();
    let e =
        scale_invariant_error(Array1::from(za).view(), Array1::from(zb).view()).to_f64_lossless();
    assert!(e < 1e-7, "{model:?}: spectral dense vs matrix-free: {e:e}");
    let (sa, sb) = (a.sigma.to_f64_lossless(), b.sigma.to_f64_lossless());
    assert!(
        (sa - sb).abs() < 1e-8 * sa.max(1e-12) + 1e-12,
        "{model:?}: {sa} vs {sb}"
    );
    assert!(b.outer_iterations >= 1);
}

#[test]
fn als_baseline_runs_and_fits_easy_case() {
    // real positive gains near 1, well oversampled: ALS from d = 1 converges here
    let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 20, 4, 6), 2).unwrap();
    let (sol, _sol_rep) =
        alternating_least_squares(&inst.problem, &AlsParams::default(), &mut NoObserver).unwrap();
    let e = Errors::measure(&sol, &inst.s, &inst.x);
    assert!(e.joint < 1e-6, "{e:?}");
}

#[test]
fn scale_invariant_error_closed_form() {
    // est = α t + e ⊥ t: error = ‖e‖/(‖α t + e‖)·‖t‖/‖t‖ ... check against the sine formula
    let t = Array1::from(vec![
        C64::new(1.0, 0.0),
        C64::new(0.0, 1.0),
        C64::new(2.0, -1.0),
    ]);
    let est = t.mapv(|v| v * C64::new(0.3, -2.0));
    assert!(scale_invariant_error(est.view(), t.view()) < 1e-15);
    let t = Array1::from(vec![1.0f64, 0.0]);
    let est = Array1::from(vec![1.0f64, 1.0]); // 45°: sin = 1/√2
    let e: f64 = scale_invariant_error(est.view(), t.view());
    assert!((e - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-15);
    assert_eq!(
        scale_invariant_error(Array1::zeros(2).view(), t.view()),
        1.0
    );
}

#[test]
fn bad_input_is_rejected() {
    let y = Array2::<f64>::ones((2, 5));
    // inconsistent shapes
    let a = Array3::<f64>::ones((3, 5, 2));
    assert!(matches!(
        Problem::new(Model::Repeated, y.clone(), a, None),
        Err(Error::ShapeMismatch { .. })
    ));
    let a = Array3::<f64>::ones((2, 4, 2));
    assert!(matches!(
        Problem::new(Model::Repeated, y.clone(), a, None),
        Err(Error::ShapeMismatch { .. })
    ));
    // too few measurements: p·m = 10 < N − 1 = 5 + 8 − 1 for snapshots with n = 4, p = 2
    let a = Array3::<f64>::ones((1, 5, 4));
    let e = Problem::new(Model::Snapshots, y.clone(), a, None)
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(msg.contains("needs at least 12"), "{msg}");
    // NaN
    let mut yn = y.clone();
    yn[[1, 2]] = f64::NAN;
    let a = Array3::<f64>::ones((2, 5, 2));
    assert!(matches!(
        Problem::new(Model::Repeated, yn, a.clone(), None),
        Err(Error::NonFinite { .. })
    ));
    // zero measurements
    assert!(Problem::new(Model::Repeated, Array2::zeros((2, 5)), a.clone(), None).is_err());
    let mut yz = y.clone();
    yz[[0, 3]] = 0.0;
    yz[[1, 3]] = 0.0;
    let e = Problem::new(Model::Repeated, yz, a.clone(), None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("sensor 3"), "{e}");
    // empty
    assert!(Problem::new(Model::Repeated, Array2::zeros((0, 5)), a.clone(), None).is_err());
    // subspace of the wrong size
    let b = Array2::<f64>::ones((4, 2));
    assert!(Problem::new(Model::Repeated, y.clone(), a.clone(), Some(b)).is_err());
    // bad parameters
    let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 12, 3, 3), 1).unwrap();
    let p = Params::<f64> {
        constraint: Constraint::Vector(Array1::zeros(5), 1.0),
        ..Default::default()
    };
    assert!(solve(&inst.problem, &p, &mut NoObserver).is_err());
    assert!("nope".parse::<Model>().is_err());
}

/// The observer of every self-calibration solver sees its iterate: the LSQR iterate
/// `z = (h, x)` of matrix-free LSQ, the unit vector `v` of every outer step of the spectral
/// method, and the stacked `(d, x)` of ALS. Their errors up to scale against the truth are
/// logged per iteration and the observer interrupts.
#[test]
fn observers_read_the_iterate_and_interrupt() {
    use sparseinv_solvers::iter::{Control, IterInfo, StopReason};
    let inst = synthetic::<f64>(&InstanceSpec::new(Model::Snapshots, 24, 6, 4), 5).unwrap();
    let zt: Vec<f64> = inst.s.iter().chain(inst.x.iter()).copied().collect();
    let zt = Array1::from(zt);
    fn z_err(i: &IterInfo<f64>, zt: &Array1<f64>) -> f64 {
        let z = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
        let z = z.into_dimensionality::<ndarray::Ix1>().unwrap();
        scale_invariant_error(z, zt.view())
    }
    // LSQ, matrix-free: the LSQR error falls; stop once it is below 1e-6
    let mut errs = Vec::new();
    let mut obs = |i: &IterInfo<f64>| {
        errs.push(z_err(i, &zt));
        if *errs.last().unwrap() < 1e-6 {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let (sol, rep) = solve(
        &inst.problem,
        &params(Method::Lsq, Backend::MatrixFree),
        &mut obs,
    )
    .unwrap();
    assert_eq!(rep.stop_reason, StopReason::Interrupted);
    assert_eq!((rep.iterations, sol.iterations), (errs.len(), errs.len()));
    assert!(errs[0] > 1e-2 && *errs.last().unwrap() < 1e-6, "{errs:?}");
    let e = Errors::measure(&sol, &inst.s, &inst.x).joint;
    assert!((e - errs.last().unwrap()).abs() < 1e-9, "{e} vs {errs:?}");
    // spectral, matrix-free, noiseless: one outer step reaches the null vector (the
    // relative-change test is skipped on the first step); with the residual test off, the
    // observer is what stops the iteration
    let mut p = params::<f64>(Method::Spectral, Backend::MatrixFree);
    p.stop.residual_tol = None;
    let mut errs = Vec::new();
    let mut obs = |i: &IterInfo<f64>| {
        let v = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
        assert!((v.iter().map(|a| a * a).sum::<f64>() - 1.0).abs() < 1e-12);
        errs.push(z_err(i, &zt));
        if i.iter == 1 {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let (sol, rep) = solve(&inst.problem, &p, &mut obs).unwrap();
    assert_eq!(rep.stop_reason, StopReason::Interrupted);
    assert_eq!(
        (rep.iterations, sol.outer_iterations, errs.len()),
        (1, 1, 1)
    );
    assert!(errs.iter().all(|&e| e < 1e-8), "{errs:?}");
    // ALS: the observer sees (d, x); the misfit history is non-increasing; stop after 3 sweeps
    let mut seen = Vec::new();
    let mut obs = |i: &IterInfo<f64>| {
        let z = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
        assert_eq!(z.len(), 24 + 4 * 6);
        seen.push(z.to_owned());
        if i.iter == 3 {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let (_, rep) =
        alternating_least_squares(&inst.problem, &AlsParams::default(), &mut obs).unwrap();
    assert_eq!(
        (rep.stop_reason, rep.iterations, seen.len()),
        (StopReason::Interrupted, 3, 3)
    );
    let h = &rep.objective_history;
    assert!(h.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-12)), "{h:?}");
    assert!(seen[0] != seen[2]);
}

/// `u ← A₀ v − α u` and `g ← A₀ᴴ u` by [`LinearOperator::apply_sub_adjoint_into`] (what LSQR
/// calls; for `Repeated` one pass over the stacked `A` in blocks of rows on every thread)
/// against the two separate products, to `tol` relative.
fn fused_products_match<T: DenseScalar>(tol: f64) {
    use ndarray::{ArrayD, IxDyn};
    use sparseinv_solvers::op::LinearOperator;
    use sparseinv_solvers::scalar::{real, Scalar};
    type R<T> = <T as Scalar>::Real;
    let rel = |a: &ArrayD<T>, b: &ArrayD<T>| {
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x - *y).modulus())
            .fold(real::<R<T>>(0.0), |m, v| if v > m { v } else { m });
        let s = b
            .iter()
            .map(|y| y.modulus())
            .fold(real::<R<T>>(0.0), |m, v| if v > m { v } else { m });
        (d / s).to_f64_lossless()
    };
    for model in MODELS {
        // 2100 rows × 64 columns: several blocks per thread, blocks crossing the blocks A_l
        for k in [None, Some(40)] {
            let mut spec = InstanceSpec::new(model, 700, 64, 3);
            spec.k = k;
            let inst = synthetic::<T>(&spec, 11).unwrap();
            let op = inst.problem.operator();
            let f = |i: usize, a: f64, b: f64| {
                T::from_parts(
                    real::<R<T>>((i as f64 * a).sin()),
                    real::<R<T>>((i as f64 * b).cos()),
                )
            };
            let v = ArrayD::from_shape_fn(IxDyn(op.domain_shape()), |i| f(i[0], 0.3, 0.7));
            let u0 = ArrayD::from_shape_fn(IxDyn(op.range_shape()), |i| f(i[0], 0.2, 0.5));
            let alpha: R<T> = real(0.8);
            let av = op.apply(v.view()).unwrap();
            let u_ref = &av - &u0.mapv(|x| x.scale(alpha));
            let g_ref = op.adjoint(u_ref.view()).unwrap();
            let mut u = u0.clone();
            let mut g = ArrayD::zeros(IxDyn(op.domain_shape()));
            let mut scratch = ArrayD::zeros(IxDyn(op.range_shape()));
            op.apply_sub_adjoint_into(
                v.view(),
                alpha,
                u.view_mut(),
                g.view_mut(),
                scratch.view_mut(),
            );
            assert!(
                rel(&u, &u_ref) < tol,
                "{model:?} k={k:?}: u {:e}",
                rel(&u, &u_ref)
            );
            assert!(
                rel(&g, &g_ref) < tol,
                "{model:?} k={k:?}: g {:e}",
                rel(&g, &g_ref)
            );
        }
    }
}

#[test]
fn fused_products_equal_two_products() {
    fused_products_match::<f64>(1e-12);
    fused_products_match::<C64>(1e-12);
    fused_products_match::<f32>(1e-4);
}

/// The matrix-free LSQ of the diagonal models without a subspace eliminates the calibration
/// (variable projection) and runs LSQR on the signal alone: on noisy data (where the LSQ
/// solution is not the truth) it equals the dense QR solution of the augmented system
/// `[A₀; wᴴ] z = (0, c)` — real and complex, both constraints — in far fewer iterations than
/// the signal-and-calibration unknowns.
fn reduced_lsq_equals_dense<T: DenseScalar>(tol: f64) {
    for model in [Model::Repeated, Model::Snapshots] {
        let (m, n, p) = sizes(model);
        let mut spec = InstanceSpec::new(model, m, n, p);
        spec.snr_db = Some(20.0);
        let inst = synthetic::<T>(&spec, 5).unwrap();
        for constraint in [Constraint::Mean, Constraint::First] {
            let mut pd = params::<T>(Method::Lsq, Backend::Dense);
            pd.constraint = constraint.clone();
            let mut pm = params::<T>(Method::Lsq, Backend::MatrixFree);
            pm.constraint = constraint;
            let (a, _) = solve(&inst.problem, &pd, &mut NoObserver).unwrap();
            let (b, _) = solve(&inst.problem, &pm, &mut NoObserver).unwrap();
            let diff: f64 =
                a.s.iter()
                    .zip(&b.s)
                    .chain(a.x.iter().zip(&b.x))
                    .map(|(u, v)| (*u - *v).modulus().to_f64_lossless().powi(2))
                    .sum::<f64>()
                    .sqrt();
            let norm: f64 =
                a.s.iter()
                    .chain(a.x.iter())
                    .map(|u| u.modulus().to_f64_lossless().powi(2))
                    .sum::<f64>()
                    .sqrt();
            assert!(diff < tol * norm, "{model:?}: {diff:e} vs {norm:e}");
            assert!(
                b.iterations < a.s.len() + a.x.len(),
                "{model:?}: {} LSQR iterations",
                b.iterations
            );
        }
    }
}

#[test]
fn reduced_lsq_equals_dense_qr() {
    reduced_lsq_equals_dense::<f64>(1e-8);
    reduced_lsq_equals_dense::<C64>(1e-8);
}
