//! Convergence of the plug-and-play solvers on problems with closed-form answers.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::{StopCriteria, StopReason};
use sparseinv_solvers::op::Diagonal;
use sparseinv_solvers::pnp::{pnp_admm, pnp_pgd, red, PnpParams};
use sparseinv_solvers::testing::randn;
use sparseinv_solvers::Result;

/// Soft thresholding at σ: the prox of σ‖·‖₁, so PnP-PGD with σ = τλ is ISTA for the lasso.
struct SoftThreshold;
impl Denoiser<f64> for SoftThreshold {
    fn denoise_into(&self, x: ArrayViewD<f64>, s: f64, mut out: ArrayViewMutD<f64>) -> Result<()> {
        Zip::from(&mut out)
            .and(&x)
            .for_each(|o, &v| *o = v.signum() * (v.abs() - s).max(0.0));
        Ok(())
    }
}

/// Linear, symmetric shrink-toward-mean denoiser `D x = m 1 + c (x − m 1)`, `m = mean(x)`.
struct ShrinkToMean(f64);
impl Denoiser<f64> for ShrinkToMean {
    fn denoise_into(&self, x: ArrayViewD<f64>, _s: f64, mut out: ArrayViewMutD<f64>) -> Result<()> {
        let m = x.mean().unwrap();
        Zip::from(&mut out)
            .and(&x)
            .for_each(|o, &v| *o = m + self.0 * (v - m));
        Ok(())
    }
}

/// Fails on every call (error propagation).
struct Broken;
impl Denoiser<f64> for Broken {
    fn denoise_into(&self, _x: ArrayViewD<f64>, _s: f64, _o: ArrayViewMutD<f64>) -> Result<()> {
        Err(sparseinv_solvers::Error::Backend("session failed".into()))
    }
}

/// A diagonal problem with entries in [0.5, 2] and data y.
fn problem(n: usize, seed: u64) -> (Diagonal<f64>, ArrayD<f64>, ArrayD<f64>) {
    let a = randn::<f64>(&[n], seed).mapv(|v| 0.5 + 1.5 / (1.0 + (-v).exp()));
    let y = randn::<f64>(&[n], seed + 1).mapv(|v| 2.0 * v);
    (Diagonal::new(a.clone()), a, y)
}

/// Lasso `min ½‖a∘x − y‖² + λ‖x‖₁` with diagonal `a`: `xᵢ = soft(aᵢyᵢ, λ)/aᵢ²`.
fn lasso_solution(a: &ArrayD<f64>, y: &ArrayD<f64>, lambda: f64) -> ArrayD<f64> {
    Zip::from(a).and(y).map_collect(|&ai, &yi| {
        let v = ai * yi;
        v.signum() * (v.abs() - lambda).max(0.0) / (ai * ai)
    })
}

fn max_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    Zip::from(a)
        .and(b)
        .fold(0.0, |m, &x, &y| f64::max(m, (x - y).abs()))
}

fn stop(max_iters: usize, rel_tol: f64) -> StopCriteria<f64> {
    StopCriteria {
        max_iters,
        rel_tol,
        ..Default::default()
    }
}

#[test]
fn pnp_pgd_with_soft_threshold_is_ista_for_the_lasso() {
    let (op, a, y) = problem(40, 3);
    let lambda = 0.7;
    let want = lasso_solution(&a, &y, lambda);
    assert!(want.iter().any(|&v| v == 0.0) && want.iter().any(|&v| v != 0.0));
    let tau = 0.2; // < 1/‖A‖² = 1/4
    for accelerate in [false, true] {
        let p = PnpParams {
            sigma: tau * lambda,
            step: Some(tau),
            accelerate,
            stop: stop(5000, 1e-13),
            ..Default::default()
        };
        let (x, rep) = pnp_pgd(&op, y.view(), &SoftThreshold, None, &p, None).unwrap();
        assert_eq!(
            rep.stop_reason,
            StopReason::RelativeChange,
            "accelerate={accelerate}"
        );
        let e = max_err(&x, &want);
        assert!(e < 1e-9, "accelerate={accelerate}: max err {e}");
        assert!(rep.iterations < 5000);
    }
}

#[test]
fn pnp_pgd_automatic_step_converges_too() {
    let (op, a, y) = problem(25, 11);
    // Automatic τ = 1/(1.01 L); σ must then be τλ: read τ from the solver.
    let lambda = 0.3;
    let p = PnpParams::<f64> {
        stop: stop(3000, 1e-14),
        ..Default::default()
    };
    let s = sparseinv_solvers::pnp::PnpPgd::new(&op, y.view(), &SoftThreshold, None, &p).unwrap();
    let tau = s.step_size();
    let amax = a.iter().fold(0.0f64, |m, &v| m.max(v));
    assert!((tau * 1.01 * amax * amax - 1.0).abs() < 1e-4, "tau {tau}");
    let p = PnpParams {
        sigma: tau * lambda,
        ..p
    };
    let (x, _) = pnp_pgd(&op, y.view(), &SoftThreshold, None, &p, None).unwrap();
    assert!(max_err(&x, &lasso_solution(&a, &y, lambda)) < 1e-9);
}

#[test]
fn red_with_linear_denoiser_reaches_the_closed_form_fixed_point() {
    // ∇E = aᵀ(a x − y) + λ(1 − c)(I − P) x = 0 with P the projection on constants:
    // (diag(d) − β 11ᵀ/n) x = b, d = a² + β, β = λ(1 − c), b = a∘y.
    // x = (b + β m 1)/d, m = mean(x) = [Σ bᵢ/dᵢ / n] / [1 − β Σ (1/dᵢ)/n].
    let (op, a, y) = problem(30, 5);
    let (lambda, c) = (2.0, 0.4);
    let beta = lambda * (1.0 - c);
    let n = a.len() as f64;
    let d = a.mapv(|v| v * v + beta);
    let b = &a * &y;
    let m = (&b / &d).sum() / n / (1.0 - beta * d.mapv(|v| 1.0 / v).sum() / n);
    let want = (&b + beta * m) / &d;
    let p = PnpParams {
        lambda,
        stop: stop(20000, 1e-14),
        ..Default::default()
    };
    let (x, rep) = red(&op, y.view(), &ShrinkToMean(c), None, &p, None).unwrap();
    let e = max_err(&x, &want);
    assert!(e < 1e-9, "max err {e}, stop {:?}", rep.stop_reason);
    // For a symmetric linear denoiser the RED objective is a convex quadratic: it decreases.
    let h = &rep.objective_history;
    assert!(h.windows(2).all(|w| w[1] <= w[0] + 1e-12));
    // Its value at the solution: ½‖a x − y‖² + (λ/2) xᵀ(x − Dx).
    let xm = want.mean().unwrap();
    let dx = want.mapv(|v| xm + c * (v - xm));
    let f = 0.5 * (&a * &want - &y).mapv(|v| v * v).sum()
        + 0.5 * lambda * (&want * &(&want - &dx)).sum();
    assert!((rep.final_objective().unwrap() - f).abs() < 1e-8 * f.abs().max(1.0));
}

#[test]
fn pnp_admm_with_soft_threshold_solves_the_lasso() {
    let (op, a, y) = problem(50, 9);
    let lambda = 0.5;
    let want = lasso_solution(&a, &y, lambda);
    for rho in [0.5, 2.0] {
        let p = PnpParams {
            rho,
            sigma: lambda / rho,
            cg_tol: 1e-12,
            stop: stop(5000, 1e-13),
            ..Default::default()
        };
        let x0 = randn::<f64>(&[50], 77);
        let (z, rep) = pnp_admm(&op, y.view(), &SoftThreshold, Some(x0.view()), &p, None).unwrap();
        let e = max_err(&z, &want);
        assert!(
            e < 1e-8,
            "rho {rho}: max err {e} after {} its",
            rep.iterations
        );
    }
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let (op, _a, y) = problem(10, 1);
    let good = PnpParams::<f64>::default();
    let short = ArrayD::<f64>::zeros(IxDyn(&[9]));
    assert!(pnp_pgd(&op, short.view(), &SoftThreshold, None, &good, None).is_err());
    let mut nan = y.clone();
    nan[3] = f64::NAN;
    assert!(red(&op, nan.view(), &SoftThreshold, None, &good, None).is_err());
    for bad in [
        PnpParams {
            sigma: -1.0,
            ..good
        },
        PnpParams {
            step: Some(0.0),
            ..good
        },
        PnpParams { rho: 0.0, ..good },
        PnpParams {
            lambda: f64::NAN,
            ..good
        },
        PnpParams {
            cg_max_iters: 0,
            ..good
        },
    ] {
        assert!(pnp_admm(&op, y.view(), &SoftThreshold, None, &bad, None).is_err());
        assert!(pnp_pgd(&op, y.view(), &SoftThreshold, None, &bad, None).is_err());
        assert!(red(&op, y.view(), &SoftThreshold, None, &bad, None).is_err());
    }
    let x0 = ArrayD::<f64>::zeros(IxDyn(&[3]));
    assert!(pnp_admm(&op, y.view(), &SoftThreshold, Some(x0.view()), &good, None).is_err());
    // A failing denoiser's error comes back.
    let e = pnp_pgd(&op, y.view(), &Broken, None, &good, None).unwrap_err();
    assert!(e.to_string().contains("session failed"));
}
