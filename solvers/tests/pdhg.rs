//! Tests of the Condat–Vũ / PDHG solver against independent references: PyProximal's
//! `PrimalDual` run to convergence (fixtures written by testdata/pdhg/make_fixture.py), the KKT
//! residual at convergence, and closed forms (soft thresholding, ridge regression).

use ndarray::{array, Array1, Array2, ArrayD, Ix1};
use ndarray_npy::read_npy;
use sparseinv_solvers::iter::{Control, IterInfo, NoObserver, StopReason};
use sparseinv_solvers::op::{Diagonal, FiniteDiff, LinearOperator, Matrix};
use sparseinv_solvers::prox::{GroupL21, L2Squared, NonNegative, Prox, L1};
use sparseinv_solvers::proximal::pdhg::{pdhg, LeastSquares, Pdhg, PdhgParams, Problem};
use sparseinv_solvers::testing::randn;

fn fixture<D: ndarray::Dimension>(name: &str) -> ndarray::Array<f64, D> {
    let path = format!("{}/../testdata/pdhg/{name}.npy", env!("CARGO_MANIFEST_DIR"));
    read_npy(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn meta() -> serde_like::Meta {
    let path = format!("{}/../testdata/pdhg/meta.json", env!("CARGO_MANIFEST_DIR"));
    let s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_like::Meta(s)
}

/// A minimal reader for the numbers of meta.json (`"key": value` inside a named block).
mod serde_like {
    pub struct Meta(pub String);
    impl Meta {
        pub fn get(&self, block: &str, key: &str) -> f64 {
            let b = self.0.find(&format!("\"{block}\"")).expect("block");
            let rest = &self.0[b..];
            let k = rest.find(&format!("\"{key}\"")).expect("key");
            let rest = &rest[k + key.len() + 2..];
            let rest = rest.trim_start_matches([':', ' ']);
            let end = rest.find([',', '\n', '}']).expect("end");
            rest[..end].trim().parse().expect("number")
        }
    }
}

fn maxdiff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn converge(p: &mut PdhgParams<f64>, iters: usize) {
    p.stop.max_iters = iters;
    p.stop.rel_tol = 0.0;
    p.stop.residual_tol = Some(1e-11);
}

#[test]
fn tv2d_denoising_matches_pyproximal_and_kkt_residual_vanishes() {
    let y: Array2<f64> = fixture("tv2d_y");
    let want: Array2<f64> = fixture("tv2d_x");
    let lam = meta().get("tv2d", "lambda");
    let want_obj = meta().get("tv2d", "objective");
    let n = y.dim();
    let yd = y.into_dyn();
    let id = Diagonal::new(ArrayD::from_elem(vec![n.0, n.1], 1.0));
    let f = LeastSquares::new(&id, yd.view(), None).unwrap();
    let grad = FiniteDiff::new(&[n.0, n.1]).unwrap();
    let tv = GroupL21::along_axis(lam, 0).unwrap();
    let problem = Problem::new(&[n.0, n.1])
        .smooth(&f)
        .prox(&NonNegative)
        .add(&grad, &tv);
    // balanced explicit steps (‖∇‖² ≤ 8, β = 1.01): 1/τ − 8σ = 0.8 ≥ β/2
    let mut p = PdhgParams {
        tau: Some(0.25),
        sigma: Some(0.4),
        ..Default::default()
    };
    converge(&mut p, 100_000);
    p.stop.residual_tol = Some(1e-9);
    let mut last_res = f64::INFINITY;
    let mut obs = |i: &IterInfo<f64>| {
        last_res = i.step.residual.unwrap();
        Control::Continue
    };
    let (x, rep) = pdhg(&problem, &p, None, &mut obs).unwrap();
    let d = maxdiff(&x, &want.into_dyn());
    assert!(
        rep.stop_reason == StopReason::Residual && last_res < 1e-8,
        "KKT residual {last_res} after {} iterations ({:?}); diff {d}",
        rep.iterations,
        rep.stop_reason
    );
    assert!(d < 1e-6, "max |ours − pyproximal| = {d}");
    assert!(x.iter().all(|&v| v >= 0.0));
    assert!(x.iter().any(|&v| v == 0.0), "positivity should be active");
    let obj = rep.final_objective().unwrap();
    assert!(
        (obj - want_obj).abs() < 1e-8 * want_obj,
        "{obj} vs {want_obj}"
    );
    assert!((problem.objective(x.view()).unwrap() - obj).abs() < 1e-12 * obj);
}

#[test]
fn tv1d_deblurring_matches_pyproximal() {
    let a: Array2<f64> = fixture("tv1d_a");
    let y: Array1<f64> = fixture("tv1d_y");
    let want: Array1<f64> = fixture("tv1d_x");
    let lam = meta().get("tv1d", "lambda");
    let want_obj = meta().get("tv1d", "objective");
    let n = y.len();
    let am = Matrix::new(a);
    let yd = y.into_dyn();
    let f = LeastSquares::new(&am, yd.view(), None).unwrap();
    let d = FiniteDiff::new(&[n]).unwrap();
    let l1 = L1::new(lam).unwrap();
    let problem = Problem::new(&[n]).smooth(&f).add(&d, &l1);
    let mut p = PdhgParams::default();
    converge(&mut p, 200_000);
    let mut s = Pdhg::new(&problem, &p, None).unwrap();
    let rep = sparseinv_solvers::iter::run(&mut s, &p.stop, &mut NoObserver).unwrap();
    assert_eq!(rep.stop_reason, StopReason::Residual, "{rep:?}");
    // the dual certifies optimality: |u| ≤ λ (u ∈ ∂λ‖·‖₁(Dx)) and u = λ sign(Dx) where Dx ≠ 0
    let u = s.dual(0).unwrap().to_owned();
    let dx = d.apply(s.x().to_owned().view()).unwrap();
    for (&ui, &di) in u.iter().zip(dx.iter()) {
        assert!(ui.abs() <= lam * (1.0 + 1e-12));
        if di.abs() > 1e-6 {
            assert!((ui - lam * di.signum()).abs() < 1e-7, "u = {ui}, Dx = {di}");
        }
    }
    let x = s.into_x();
    let diff = maxdiff(&x, &want.into_dyn());
    assert!(diff < 1e-6, "max |ours − pyproximal| = {diff}");
    let obj = rep.final_objective().unwrap();
    assert!((obj - want_obj).abs() < 1e-9, "{obj} vs {want_obj}");
}

/// `min ½‖x − y‖² + λ‖x‖₁` written as `f = ½‖x − y‖²`, `h = λ‖·‖₁`, `L = I`: the solution is
/// the soft threshold of `y`, for every relaxation in (0, 2) and for explicit steps.
#[test]
fn closed_form_soft_threshold_with_relaxation() {
    let y = randn::<f64>(&[40], 3);
    let lam = 0.7;
    let want = y.mapv(|v: f64| v.signum() * (v.abs() - lam).max(0.0));
    let id = Diagonal::new(ArrayD::from_elem(vec![40], 1.0));
    let f = LeastSquares::with_lipschitz(&id, y.view(), None, 1.0).unwrap();
    let l1 = L1::new(lam).unwrap();
    let problem = Problem::new(&[40]).smooth(&f).add(&id, &l1);
    // ρ must stay below δ = 2 − (β/2)/(1/τ − σ‖L‖²): 1.03 for the default steps, 1.67 for
    // τ = σ = 0.5
    for (rho, tau, sigma) in [
        (0.5, None, None),
        (1.0, None, None),
        (1.5, Some(0.5), Some(0.5)),
    ] {
        let mut p = PdhgParams {
            relaxation: rho,
            tau,
            sigma,
            ..Default::default()
        };
        converge(&mut p, 20_000);
        let (x, rep) = pdhg(&problem, &p, None, &mut NoObserver).unwrap();
        assert_eq!(rep.stop_reason, StopReason::Residual, "rho {rho}: {rep:?}");
        assert!(maxdiff(&x, &want) < 1e-10, "rho {rho}");
    }
    // explicit steps (τ = 0.5, σ = 0.5: 1/τ − σ = 1.5 ≥ β/2 = 0.5)
    let mut p = PdhgParams {
        tau: Some(0.5),
        sigma: Some(0.5),
        ..Default::default()
    };
    converge(&mut p, 20_000);
    let mut s = Pdhg::new(&problem, &p, None).unwrap();
    assert_eq!((s.tau(), s.sigma()), (0.5, 0.5));
    sparseinv_solvers::iter::run(&mut s, &p.stop, &mut NoObserver).unwrap();
    assert!(maxdiff(&s.x().to_owned(), &want) < 1e-10);
}

/// Ridge regression `min ½‖A x − y‖² + (μ/2)‖x‖²` with the penalty as `h(Ix)` and, separately,
/// as `g`: the solution `(AᵀA + μI)⁻¹ Aᵀ y` computed by a dense solve here.
#[test]
fn closed_form_ridge() {
    let a = randn::<f64>(&[30, 12], 5)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let y = randn::<f64>(&[30], 6);
    let mu = 0.3;
    // normal equations by Gaussian elimination (independent of the library)
    let mut m = a.t().dot(&a);
    for i in 0..12 {
        m[[i, i]] += mu;
    }
    let mut b = a.t().dot(&y.view().into_dimensionality::<Ix1>().unwrap());
    for c in 0..12 {
        let piv = m[[c, c]];
        for r in c + 1..12 {
            let f = m[[r, c]] / piv;
            for k in c..12 {
                m[[r, k]] -= f * m[[c, k]];
            }
            b[r] -= f * b[c];
        }
    }
    let mut want = Array1::<f64>::zeros(12);
    for r in (0..12).rev() {
        let s: f64 = (r + 1..12).map(|k| m[[r, k]] * want[k]).sum();
        want[r] = (b[r] - s) / m[[r, r]];
    }
    let want = want.into_dyn();
    let am = Matrix::new(a);
    let f = LeastSquares::new(&am, y.view(), None).unwrap();
    let id = Diagonal::new(ArrayD::from_elem(vec![12], 1.0));
    let ridge = L2Squared::new(mu).unwrap();
    let mut p = PdhgParams::default();
    converge(&mut p, 50_000);
    let as_h = Problem::new(&[12]).smooth(&f).add(&id, &ridge);
    let (x, rep) = pdhg(&as_h, &p, None, &mut NoObserver).unwrap();
    assert_eq!(rep.stop_reason, StopReason::Residual);
    assert!(maxdiff(&x, &want) < 1e-9, "{}", maxdiff(&x, &want));
    let as_g = Problem::new(&[12]).smooth(&f).prox(&ridge);
    let (x, _) = pdhg(&as_g, &p, None, &mut NoObserver).unwrap();
    assert!(maxdiff(&x, &want) < 1e-9);
}

/// Weighted least squares (a 0/1 mask as weights) with positivity: masked entries are free,
/// observed ones follow `max(y, 0)`.
#[test]
fn weighted_least_squares_with_mask() {
    let y = array![1.0, -2.0, 3.0, 4.0].into_dyn();
    let w = array![1.0, 1.0, 0.0, 1.0].into_dyn();
    let id = Diagonal::new(ArrayD::from_elem(vec![4], 1.0));
    let f = LeastSquares::new(&id, y.view(), Some(w)).unwrap();
    assert!((f.lipschitz_for_test() - 1.01).abs() < 1e-6);
    let problem = Problem::new(&[4]).smooth(&f).prox(&NonNegative);
    let x0 = array![0.0, 0.0, 5.0, 0.0].into_dyn();
    let mut p = PdhgParams::default();
    converge(&mut p, 10_000);
    let (x, _) = pdhg(&problem, &p, Some(x0.view()), &mut NoObserver).unwrap();
    let want = array![1.0, 0.0, 5.0, 4.0].into_dyn();
    assert!(maxdiff(&x, &want) < 1e-10, "{x}");
}

trait LipForTest {
    fn lipschitz_for_test(&self) -> f64;
}
impl<T: sparseinv_solvers::proximal::SmoothTerm<f64>> LipForTest for T {
    fn lipschitz_for_test(&self) -> f64 {
        self.lipschitz()
    }
}

#[test]
fn observer_sees_iterate_and_errors_on_bad_input() {
    let y = randn::<f64>(&[8], 1);
    let id = Diagonal::new(ArrayD::from_elem(vec![8], 1.0));
    let f = LeastSquares::new(&id, y.view(), None).unwrap();
    let l1 = L1::new(0.1).unwrap();
    let problem = Problem::new(&[8]).smooth(&f).add(&id, &l1);
    let mut seen = Vec::new();
    let mut obs = |i: &IterInfo<f64>| {
        seen.push(i.iterate.as_ref().unwrap().to_f64_re());
        if i.iter == 5 {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let mut p = PdhgParams::default();
    p.stop.rel_tol = 0.0;
    let (x, rep) = pdhg(&problem, &p, None, &mut obs).unwrap();
    assert_eq!(rep.stop_reason, StopReason::Interrupted);
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4], x);
    assert_eq!(rep.objective_history.len(), 5);
    // without the per-iteration objective: the same iterates and residuals, no history
    let mut q = PdhgParams::default();
    q.stop.rel_tol = 0.0;
    q.stop.max_iters = 5;
    let (xa, ra) = pdhg(&problem, &q, None, &mut NoObserver).unwrap();
    q.objective = false;
    let (xb, rb) = pdhg(&problem, &q, None, &mut NoObserver).unwrap();
    assert_eq!(xa, xb);
    assert_eq!(ra.rel_change_history, rb.rel_change_history);
    assert_eq!(ra.objective_history.len(), 5);
    assert!(rb.objective_history.is_empty());
    q.stop.objective_target = Some(0.0);
    assert!(pdhg(&problem, &q, None, &mut NoObserver).is_err());
    // bad relaxation, steps, shapes, and a real-only term
    for bad in [
        PdhgParams {
            relaxation: 2.0,
            ..Default::default()
        },
        PdhgParams {
            tau: Some(-1.0),
            ..Default::default()
        },
        PdhgParams {
            sigma: Some(f64::NAN),
            ..Default::default()
        },
    ] {
        assert!(pdhg(&problem, &bad, None, &mut NoObserver).is_err());
    }
    let wrong = Problem::new(&[9]).smooth(&f);
    assert!(pdhg(&wrong, &p, None, &mut NoObserver).is_err());
    let x0 = ArrayD::<f64>::zeros(vec![3]);
    assert!(pdhg(&problem, &p, Some(x0.view()), &mut NoObserver).is_err());
    let empty = Problem::<f64>::new(&[8]);
    assert!(pdhg(&empty, &p, None, &mut NoObserver).is_err());
    let yc = ArrayD::<num_complex::Complex64>::zeros(vec![8]);
    let idc = Diagonal::new(ArrayD::from_elem(
        vec![8],
        num_complex::Complex64::new(1.0, 0.0),
    ));
    let fc = LeastSquares::new(&idc, yc.view(), None).unwrap();
    let pc = Problem::new(&[8]).smooth(&fc).prox(&NonNegative);
    assert!(pdhg(&pc, &PdhgParams::default(), None, &mut NoObserver).is_err());
    assert!(LeastSquares::new(&id, y.view(), Some(ArrayD::from_elem(vec![8], -1.0))).is_err());
    let _ = l1.value(y.view());
}
