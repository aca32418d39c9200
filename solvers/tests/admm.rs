//! Tests of the general ADMM against independent references: the working-set Lasso solver
//! (duality-gap certified), the normal equations of ridge deconvolution checked through the
//! operators, and PyProximal's total-variation solution (testdata/pdhg, see make_fixture.py).

use ndarray::{Array1, Array2, ArrayD, Ix1};
use ndarray_npy::read_npy;
use sparseinv_solvers::iter::{run, NoObserver, StopReason};
use sparseinv_solvers::op::{Boundary, Conv2d, FiniteDiff, LinearOperator, Matrix};
use sparseinv_solvers::prox::{L2Squared, L1};
use sparseinv_solvers::proximal::admm::{admm, Admm, AdmmParams, AdmmProblem, XUpdate};
use sparseinv_solvers::proximal::{lasso, LassoParams};
use sparseinv_solvers::testing::randn;

fn maxdiff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn tight(iters: usize) -> AdmmParams<f64> {
    let mut p = AdmmParams::default();
    p.stop.max_iters = iters;
    p.stop.rel_tol = 1e-13;
    p.cg_tol = 1e-12;
    p.cg_max_iters = 500;
    p
}

#[test]
fn lasso_matches_the_working_set_solver() {
    let a: Array2<f64> = randn::<f64>(&[40, 80], 3).into_dimensionality().unwrap();
    let a = a / 40f64.sqrt();
    let y = randn::<f64>(&[40], 4);
    let lam = 0.1;
    let m = Matrix::new(a);
    let mut lp = LassoParams::with_lambda(lam);
    lp.stop.residual_tol = Some(1e-14);
    let y1 = y.view().into_dimensionality::<Ix1>().unwrap();
    let (want, _) = lasso(&m, y1, &lp).unwrap();
    let want = want.into_dyn();
    let l1 = L1::new(lam).unwrap();
    let problem = AdmmProblem::new(&m, y.view(), &l1);
    for (mode, iters) in [(XUpdate::Cg, 20_000), (XUpdate::Linearized, 200_000)] {
        let p = AdmmParams {
            x_update: mode,
            ..tight(iters)
        };
        let mut s = Admm::new(&problem, &p, None).unwrap();
        let rep = run(&mut s, &p.stop, &mut NoObserver).unwrap();
        if mode == XUpdate::Cg {
            assert_eq!(rep.stop_reason, StopReason::RelativeChange, "{mode:?}");
        }
        // z is exactly sparse (a soft threshold); x → z
        let z = s.z().to_owned();
        let d = maxdiff(&z, &want);
        assert!(d < 1e-6, "{mode:?}: max |admm − working set| = {d}");
        assert!(s.dual_residual() < 1e-8);
    }
}

/// Ridge deconvolution `min ½‖k ⊛ x − y‖² + (μ/2)‖x‖²` with a circular blur: the exact
/// Fourier x-update, CG and the linearised update all reach the solution of the normal
/// equations `Aᵀ(Ax − y) + μ x = 0`, checked by applying the operators.
#[test]
fn ridge_deconvolution_all_x_updates() {
    let k = Array2::from_shape_fn((5, 5), |(i, j)| {
        (-(((i as f64) - 2.0).powi(2) + ((j as f64) - 2.0).powi(2)) / 2.0).exp()
    });
    let k = &k / k.sum();
    let a = Conv2d::new([16, 16], k.view(), Boundary::Circular).unwrap();
    let y = randn::<f64>(&[16, 16], 9);
    let mu = 0.05;
    let g = L2Squared::new(mu).unwrap();
    let problem = AdmmProblem::diagonalizable(&a, y.view(), &g);
    let normal_residual = |x: &ArrayD<f64>| {
        let ax = a.apply(x.view()).unwrap();
        let r = a.adjoint((&ax - &y).view()).unwrap() + &(x * mu);
        r.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    };
    let mut sols = vec![];
    for (mode, iters) in [
        (XUpdate::Auto, 5_000),
        (XUpdate::Cg, 5_000),
        (XUpdate::Linearized, 100_000),
    ] {
        let p = AdmmParams {
            x_update: mode,
            rho: 0.5,
            ..tight(iters)
        };
        let (x, rep) = admm(&problem, &p, None, &mut NoObserver).unwrap();
        if mode != XUpdate::Linearized {
            assert_eq!(rep.stop_reason, StopReason::RelativeChange, "{mode:?}");
        }
        let r = normal_residual(&x);
        assert!(r < 1e-9, "{mode:?}: normal-equation residual {r}");
        assert_eq!(rep.objective_history.len(), rep.iterations);
        sols.push(x);
    }
    assert!(maxdiff(&sols[0], &sols[1]) < 1e-9);
    // the Fourier update is not available without the diagonalisable form, nor with L ≠ I
    let plain = AdmmProblem::new(&a, y.view(), &g);
    let p = AdmmParams {
        x_update: XUpdate::Fourier,
        ..AdmmParams::default()
    };
    assert!(admm(&plain, &p, None, &mut NoObserver).is_err());
    let same = Conv2d::new([16, 16], k.view(), Boundary::Same).unwrap();
    let not_diag = AdmmProblem::diagonalizable(&same, y.view(), &g);
    assert!(admm(&not_diag, &p, None, &mut NoObserver).is_err());
}

/// Total-variation deblurring with `g = λ‖·‖₁` on `L = D` (finite differences): the CG
/// x-update solves `(AᵀA + ρDᵀD) x = …`; the solution matches PyProximal's.
#[test]
fn tv_with_an_operator_matches_pyproximal() {
    let dir = format!("{}/../testdata/pdhg", env!("CARGO_MANIFEST_DIR"));
    let a: Array2<f64> = read_npy(format!("{dir}/tv1d_a.npy")).unwrap();
    let y: Array1<f64> = read_npy(format!("{dir}/tv1d_y.npy")).unwrap();
    let want: Array1<f64> = read_npy(format!("{dir}/tv1d_x.npy")).unwrap();
    let meta = std::fs::read_to_string(format!("{dir}/meta.json")).unwrap();
    // λ of the tv1d block (the second "lambda" in the file)
    let lam: f64 = meta
        .split("\"lambda\":")
        .nth(2)
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.trim().parse().ok())
        .expect("tv1d lambda");
    let n = y.len();
    let m = Matrix::new(a);
    let d = FiniteDiff::new(&[n]).unwrap();
    let l1 = L1::new(lam).unwrap();
    let yd = y.into_dyn();
    let problem = AdmmProblem::new(&m, yd.view(), &l1).with_operator(&d);
    let (x, rep) = admm(&problem, &tight(50_000), None, &mut NoObserver).unwrap();
    assert_eq!(rep.stop_reason, StopReason::RelativeChange);
    let x = x.into_dimensionality::<Ix1>().unwrap();
    let diff = (&x - &want).iter().fold(0.0f64, |s, v| s.max(v.abs()));
    assert!(diff < 1e-6, "max |admm − pyproximal| = {diff}");
}

#[test]
fn bad_parameters_are_errors() {
    let m = Matrix::new(Array2::<f64>::eye(3));
    let y = randn::<f64>(&[3], 1);
    let l1 = L1::new(0.1).unwrap();
    let problem = AdmmProblem::new(&m, y.view(), &l1);
    for p in [
        AdmmParams {
            rho: 0.0,
            ..AdmmParams::default()
        },
        AdmmParams {
            cg_tol: -1.0,
            ..AdmmParams::default()
        },
        AdmmParams {
            step: Some(f64::NAN),
            x_update: XUpdate::Linearized,
            ..AdmmParams::default()
        },
    ] {
        assert!(admm(&problem, &p, None, &mut NoObserver).is_err());
    }
    let short = randn::<f64>(&[2], 1);
    let bad = AdmmProblem::new(&m, short.view(), &l1);
    assert!(admm(&bad, &AdmmParams::default(), None, &mut NoObserver).is_err());
}
