//! Convergence of LSQR, CGLS and CG against dense least-squares / linear solves by faer (QR),
//! for f32, f64 and Complex64; adjoint of the test operator; error paths.

use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMutD, Ix1, IxDyn};
use sparseinv_solvers::iter::{NoObserver, StopReason};
use sparseinv_solvers::krylov::{cg, cgls, lsqr, KrylovParams};
use sparseinv_solvers::op::LinearOperator;
use sparseinv_solvers::testing::{assert_adjoint, randn};
use sparseinv_solvers::{Error, Scalar, C64};

/// A dense matrix acting on 1-D vectors (test-only operator).
struct Dense<T: Scalar> {
    a: Array2<T>,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<T: Scalar> Dense<T> {
    fn new(a: Array2<T>) -> Self {
        let (m, n) = a.dim();
        Dense {
            a,
            dom: [n],
            ran: [m],
        }
    }
}

impl<T: Scalar> LinearOperator<T> for Dense<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let x = x.into_dimensionality::<Ix1>().unwrap();
        for (i, row) in self.a.rows().into_iter().enumerate() {
            y[i] = row.iter().zip(x.iter()).map(|(&a, &b)| a * b).sum();
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        x.fill(T::zero());
        for (i, row) in self.a.rows().into_iter().enumerate() {
            let yi = y[i];
            for (j, &a) in row.iter().enumerate() {
                x[j] += a.conj() * yi;
            }
        }
    }
}

/// Dense LS solution of min ‖A x − b‖² + λ²‖x‖² via faer's QR on [A; λI].
fn dense_lstsq<T: Scalar + faer::traits::ComplexField>(
    a: &Array2<T>,
    b: &ArrayD<T>,
    damp: f64,
) -> Vec<T> {
    let (m, n) = a.dim();
    let rows = if damp > 0.0 { m + n } else { m };
    let am = Mat::<T>::from_fn(rows, n, |i, j| {
        if i < m {
            a[[i, j]]
        } else if i - m == j {
            T::from_f64(damp)
        } else {
            T::zero()
        }
    });
    let bm = Mat::<T>::from_fn(rows, 1, |i, _| if i < m { b[i] } else { T::zero() });
    let x = am.qr().solve_lstsq(&bm);
    (0..n).map(|i| x[(i, 0)]).collect()
}

fn rel_err<T: Scalar>(x: &ArrayD<T>, r: &[T]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for (a, b) in x.iter().zip(r) {
        num += (*a - *b).abs2().to_f64_lossless();
        den += b.abs2().to_f64_lossless();
    }
    (num / den).sqrt()
}

use sparseinv_solvers::Real;

fn random_problem<T: Scalar>(m: usize, n: usize, seed: u64) -> (Array2<T>, ArrayD<T>) {
    let a = randn::<T>(&[m, n], seed)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let b = randn::<T>(&[m], seed + 100);
    (a, b)
}

fn check_ls<T: Scalar + faer::traits::ComplexField>(tol: f64, solve_tol: f64) {
    for damp in [0.0, 0.7] {
        let (a, b) = random_problem::<T>(60, 25, 7);
        let reference = dense_lstsq(&a, &b, damp);
        let op = Dense::new(a);
        let p = KrylovParams {
            stop: KrylovParams::stop_with(200, solve_tol),
            damp,
        };
        let (s, s_rep) = lsqr(&op, b.view(), None, &p, &mut NoObserver).unwrap();
        assert_eq!(s_rep.stop_reason, StopReason::Residual);
        let e = rel_err(&s.x, &reference);
        assert!(e < tol, "LSQR damp {damp}: rel err {e:e}");
        let (s, _) = cgls(&op, b.view(), None, &p, &mut NoObserver).unwrap();
        let e = rel_err(&s.x, &reference);
        assert!(e < tol, "CGLS damp {damp}: rel err {e:e}");
    }
}

#[test]
fn lsqr_and_cgls_match_dense_least_squares_f64() {
    check_ls::<f64>(1e-9, 1e-13);
}

#[test]
fn lsqr_and_cgls_match_dense_least_squares_c64() {
    check_ls::<C64>(1e-9, 1e-13);
}

#[test]
fn lsqr_and_cgls_match_dense_least_squares_f32() {
    check_ls::<f32>(2e-4, 1e-6);
}

#[test]
fn dense_test_operator_is_adjoint() {
    let (a, _) = random_problem::<C64>(7, 4, 3);
    assert_adjoint(&Dense::new(a), 1e-13);
    let (a, _) = random_problem::<f32>(7, 4, 3);
    assert_adjoint(&Dense::new(a), 1e-5);
}

#[test]
fn lsqr_consistent_system_and_warm_start() {
    // b = A x*: LSQR recovers x*; warm start at x* stops immediately with zero residual
    let (a, _) = random_problem::<f64>(40, 30, 11);
    let xs = randn::<f64>(&[30], 12);
    let op = Dense::new(a);
    let b = op.apply(xs.view()).unwrap();
    let (s, _) = lsqr(
        &op,
        b.view(),
        None,
        &KrylovParams::default(),
        &mut NoObserver,
    )
    .unwrap();
    assert!(rel_err(&s.x, xs.as_slice().unwrap()) < 1e-8);
    assert!(s.residual_norm < 1e-8);
    let (s, s_rep) = lsqr(
        &op,
        b.view(),
        Some(xs.view()),
        &KrylovParams::default(),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(s_rep.iterations, 1);
    assert!(rel_err(&s.x, xs.as_slice().unwrap()) < 1e-15);
}

#[test]
fn lsqr_underdetermined_gives_minimum_norm_solution() {
    // wide A, zero start: LSQR stays in range(Aᴴ) and converges to the pseudo-inverse solution
    let (a, b) = random_problem::<C64>(10, 25, 21);
    let at = a.t().mapv(|v| v.conj());
    // x = Aᴴ (A Aᴴ)^{-1} b, computed densely
    let aat = a.dot(&at);
    let y = dense_lstsq(&aat, &b, 0.0);
    let y = ArrayD::from_shape_vec(IxDyn(&[10]), y).unwrap();
    let yv = y.into_dimensionality::<Ix1>().unwrap();
    let xref: Vec<C64> = at.dot(&yv).to_vec();
    let (s, _s_rep) = lsqr(
        &Dense::new(a),
        b.view(),
        None,
        &KrylovParams::default(),
        &mut NoObserver,
    )
    .unwrap();
    assert!(rel_err(&s.x, &xref) < 1e-9);
}

#[test]
fn cg_solves_hpd_system() {
    // H = AᴴA + I as an operator (normal operator of the stacked [A; I])
    struct Normal(Dense<C64>, [usize; 1]);
    impl LinearOperator<C64> for Normal {
        fn domain_shape(&self) -> &[usize] {
            &self.1
        }
        fn range_shape(&self) -> &[usize] {
            &self.1
        }
        fn apply_into(&self, x: ArrayViewD<C64>, mut y: ArrayViewMutD<C64>) {
            let ax = self.0.apply(x.view()).unwrap();
            self.0.adjoint_into(ax.view(), y.view_mut());
            y += &x;
        }
        fn adjoint_into(&self, y: ArrayViewD<C64>, x: ArrayViewMutD<C64>) {
            self.apply_into(y, x)
        }
    }
    let (a, _) = random_problem::<C64>(30, 20, 5);
    let rhs = randn::<C64>(&[20], 6);
    let h = a.t().mapv(|v| v.conj()).dot(&a) + Array2::<C64>::eye(20);
    let reference = dense_lstsq(&h, &rhs, 0.0);
    let op = Normal(Dense::new(a), [20]);
    assert_adjoint(&op, 1e-12);
    let (s, _s_rep) = cg(
        &op,
        rhs.view(),
        None,
        &KrylovParams::default(),
        &mut NoObserver,
    )
    .unwrap();
    assert!(rel_err(&s.x, &reference) < 1e-9);
    assert!(s.measure < 1e-9);
}

#[test]
fn cg_rejects_indefinite_and_bad_input_errors() {
    let op = sparseinv_solvers::op::Diagonal::new(ndarray::array![1.0, -1.0].into_dyn());
    let b = ndarray::array![1.0, 1.0].into_dyn();
    let r = cg(
        &op,
        b.view(),
        None,
        &KrylovParams::default(),
        &mut NoObserver,
    );
    assert!(matches!(r, Err(Error::Numerical(_))), "{r:?}");
    let bad = ndarray::array![1.0, f64::NAN].into_dyn();
    assert!(matches!(
        lsqr(
            &op,
            bad.view(),
            None,
            &KrylovParams::default(),
            &mut NoObserver
        ),
        Err(Error::NonFinite { .. })
    ));
    let short = ndarray::array![1.0].into_dyn();
    assert!(matches!(
        cgls(
            &op,
            short.view(),
            None,
            &KrylovParams::default(),
            &mut NoObserver
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    let p = KrylovParams {
        stop: KrylovParams::stop_with(0, 1e-10),
        ..Default::default()
    };
    assert!(lsqr(&op, b.view(), None, &p, &mut NoObserver).is_err());
    // zero right-hand side: x = 0 immediately
    let z = ndarray::array![0.0, 0.0].into_dyn();
    let (s, _s_rep) = lsqr(
        &op,
        z.view(),
        None,
        &KrylovParams::default(),
        &mut NoObserver,
    )
    .unwrap();
    assert!(s.x.iter().all(|&v| v == 0.0));
}

/// Every Krylov helper shows its observer the current iterate: the logged error against the
/// known solution `x*` of a consistent system falls to the accuracy of the solve, the last
/// observed iterate is the returned one, and the observer can stop the run.
#[test]
fn observers_read_the_iterate_and_interrupt() {
    use sparseinv_solvers::iter::{Control, IterInfo, Observer};
    // consistent least squares for LSQR/CGLS; AᴴA x = Aᴴb (HPD) for CG
    let (a, _) = random_problem::<f64>(40, 30, 31);
    let xs = randn::<f64>(&[30], 32);
    let op = Dense::new(a.clone());
    let b = op.apply(xs.view()).unwrap();
    let ata = Dense::new(a.t().dot(&a));
    let atb = ata.apply(xs.view()).unwrap();
    let xsl = xs.as_slice().unwrap().to_vec();
    type Run<'a> = Box<
        dyn Fn(&mut dyn Observer<f64>) -> (ArrayD<f64>, sparseinv_solvers::iter::Report<f64>) + 'a,
    >;
    let runs: Vec<(&str, Run)> = vec![
        (
            "lsqr",
            Box::new(|o: &mut dyn Observer<f64>| {
                let (s, r) = lsqr(&op, b.view(), None, &KrylovParams::default(), o).unwrap();
                (s.x, r)
            }),
        ),
        (
            "cgls",
            Box::new(|o: &mut dyn Observer<f64>| {
                let (s, r) = cgls(&op, b.view(), None, &KrylovParams::default(), o).unwrap();
                (s.x, r)
            }),
        ),
        (
            "cg",
            Box::new(|o: &mut dyn Observer<f64>| {
                let (s, r) = cg(&ata, atb.view(), None, &KrylovParams::default(), o).unwrap();
                (s.x, r)
            }),
        ),
    ];
    for (name, run) in &runs {
        let mut errs = Vec::new();
        let mut last = None;
        let mut log = |i: &IterInfo<f64>| {
            let x = i
                .iterate
                .as_ref()
                .and_then(|v| v.as_f64())
                .unwrap()
                .to_owned();
            errs.push(rel_err(&x, &xsl));
            last = Some(x);
            Control::Continue
        };
        let (x, rep) = run(&mut log);
        assert_eq!(rep.stop_reason, StopReason::Residual, "{name}");
        assert_eq!(errs.len(), rep.iterations, "{name}");
        assert!(
            errs[0] > 1e-2 && *errs.last().unwrap() < 1e-7,
            "{name}: {errs:?}"
        );
        assert_eq!(
            last.unwrap(),
            x,
            "{name}: last observed iterate is the result"
        );
        // interrupt once the error is below 1e-3: fewer iterations, error as observed
        let mut stop_at = |i: &IterInfo<f64>| {
            let x = i
                .iterate
                .as_ref()
                .and_then(|v| v.as_f64())
                .unwrap()
                .to_owned();
            if rel_err(&x, &xsl) < 1e-3 {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        let (x, rep2) = run(&mut stop_at);
        assert_eq!(rep2.stop_reason, StopReason::Interrupted, "{name}");
        assert!(rep2.iterations < rep.iterations, "{name}");
        let e = rel_err(&x, &xsl);
        // the same deterministic iterations as the full run, cut where the observer stopped
        let seen = errs[rep2.iterations - 1];
        assert!(
            e < 1e-3 && (e - seen).abs() <= 1e-12 * seen,
            "{name}: {e} vs {seen}"
        );
    }
}
