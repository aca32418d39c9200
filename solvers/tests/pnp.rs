//! Convergence of the plug-and-play solvers on problems with closed-form answers.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::{StopCriteria, StopReason};
use sparseinv_solvers::op::Diagonal;
use sparseinv_solvers::pnp::{
    pnp_admm, pnp_admm_preconditioned, pnp_admm_with, pnp_pgd, red, CirculantNormalInverse,
    NormalSolver, PnpParams,
};
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

/// `AᴴA + ρI` of a convolution with reflective borders (the PnP-ADMM x-update's system).
struct Normal<'a> {
    a: &'a sparseinv_solvers::op::Conv2d<f64>,
    rho: f64,
}
impl sparseinv_solvers::op::LinearOperator<f64> for Normal<'_> {
    fn domain_shape(&self) -> &[usize] {
        self.a.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.a.domain_shape()
    }
    fn apply_into(&self, x: ArrayViewD<f64>, mut y: ArrayViewMutD<f64>) {
        let ax = self.a.apply(x.view()).unwrap();
        let n = self.a.adjoint(ax.view()).unwrap();
        Zip::from(&mut y)
            .and(&n)
            .and(&x)
            .for_each(|o, &v, &w| *o = v + self.rho * w);
    }
    fn adjoint_into(&self, y: ArrayViewD<f64>, x: ArrayViewMutD<f64>) {
        self.apply_into(y, x)
    }
}

fn gauss_psf(k: usize, s: f64) -> ndarray::Array2<f64> {
    let c = (k / 2) as f64;
    let p = ndarray::Array2::from_shape_fn((k, k), |(i, j)| {
        (-((i as f64 - c).powi(2) + (j as f64 - c).powi(2)) / (2.0 * s * s)).exp()
    });
    let t = p.sum();
    p / t
}

#[test]
fn circulant_preconditioner_is_self_adjoint_and_the_exact_circular_inverse() {
    use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
    let psf = gauss_psf(7, 1.5);
    let m = CirculantNormalInverse::new([20, 18], psf.view(), 0.1).unwrap();
    sparseinv_solvers::testing::assert_adjoint(&m, 1e-12);
    let a = Conv2d::new([20, 18], psf.view(), Boundary::Circular).unwrap();
    let x = randn::<f64>(&[20, 18], 4);
    let n = Normal { a: &a, rho: 0.1 }.apply(x.view()).unwrap();
    assert!(max_err(&m.apply(n.view()).unwrap(), &x) < 1e-9);
    assert!(CirculantNormalInverse::new([20, 18], psf.view(), 0.0).is_err());
    // mirrored: self-adjoint, and the exact inverse of the reflective system for a
    // centro-symmetric PSF (the DCT-II diagonalises it)
    let mm = CirculantNormalInverse::mirrored([20, 18], psf.view(), 0.1).unwrap();
    sparseinv_solvers::testing::assert_adjoint(&mm, 1e-12);
    let ar = Conv2d::new([20, 18], psf.view(), Boundary::Reflect).unwrap();
    let nr = Normal { a: &ar, rho: 0.1 }.apply(x.view()).unwrap();
    assert!(max_err(&mm.apply(nr.view()).unwrap(), &x) < 1e-9);
    // an asymmetric PSF: still self-adjoint (a preconditioner), no longer the inverse
    let mut skew = psf.clone();
    skew[[0, 1]] += 0.3;
    let ms = CirculantNormalInverse::mirrored([20, 18], skew.view(), 0.1).unwrap();
    sparseinv_solvers::testing::assert_adjoint(&ms, 1e-12);
}

#[test]
fn preconditioned_cg_solves_the_reflect_system_in_fewer_steps() {
    use sparseinv_solvers::iter::run;
    use sparseinv_solvers::krylov::Cg;
    use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
    // an asymmetric PSF (a Gaussian with a streak): the mirrored preconditioner is not exact
    let mut psf = gauss_psf(9, 2.0);
    for k in 0..5 {
        psf[[4, 4 + k]] += 0.04;
    }
    psf /= psf.sum();
    let a = Conv2d::new([48, 40], psf.view(), Boundary::Reflect).unwrap();
    let rho = 0.01;
    let n = Normal { a: &a, rho };
    let m = CirculantNormalInverse::mirrored([48, 40], psf.view(), rho).unwrap();
    let b = randn::<f64>(&[48, 40], 5);
    let crit = StopCriteria {
        max_iters: 2000,
        rel_tol: 0.0,
        residual_tol: Some(1e-11),
        ..Default::default()
    };
    let mut plain = Cg::new(&n, b.view(), None).unwrap();
    let rp = run(&mut plain, &crit, &mut sparseinv_solvers::iter::NoObserver).unwrap();
    let mut pre = Cg::preconditioned(&n, &m, b.view(), None).unwrap();
    let rq = run(&mut pre, &crit, &mut sparseinv_solvers::iter::NoObserver).unwrap();
    assert_eq!(rp.stop_reason, StopReason::Residual);
    assert_eq!(rq.stop_reason, StopReason::Residual);
    // the same solution of N x = b, checked against the system itself
    let (xp, xq) = (plain.into_x(), pre.into_x());
    let res = &n.apply(xq.view()).unwrap() - &b;
    let bn = b.mapv(|v| v * v).sum().sqrt();
    assert!(res.mapv(|v| v * v).sum().sqrt() <= 1e-10 * bn);
    let xn = xp.mapv(|v| v.abs()).fold(0.0f64, |m, &v| m.max(v));
    assert!(max_err(&xp, &xq) <= 1e-8 * xn, "{}", max_err(&xp, &xq));
    assert!(
        4 * rq.iterations < rp.iterations,
        "preconditioned {} vs plain {} steps",
        rq.iterations,
        rp.iterations
    );
}

#[test]
fn preconditioned_pnp_admm_has_the_same_iterates() {
    use sparseinv_solvers::op::{Boundary, Conv2d};
    let psf = gauss_psf(7, 1.2);
    let a = Conv2d::new([32, 28], psf.view(), Boundary::Reflect).unwrap();
    let y = randn::<f64>(&[32, 28], 8);
    let p = PnpParams {
        rho: 0.25,
        sigma: 0.1,
        cg_tol: 1e-12,
        cg_max_iters: 1000,
        stop: stop(15, 0.0),
        ..Default::default()
    };
    let m = CirculantNormalInverse::mirrored([32, 28], psf.view(), p.rho).unwrap();
    let (z0, _) = pnp_admm(&a, y.view(), &SoftThreshold, Some(y.view()), &p, None).unwrap();
    let (z1, r1) =
        pnp_admm_preconditioned(&a, &m, y.view(), &SoftThreshold, Some(y.view()), &p, None)
            .unwrap();
    assert_eq!(r1.iterations, 15);
    assert!(max_err(&z0, &z1) < 1e-8, "{}", max_err(&z0, &z1));
    // a preconditioner of the wrong shape is an error, not a panic
    let bad = CirculantNormalInverse::new([30, 28], psf.view(), p.rho).unwrap();
    assert!(pnp_admm_preconditioned(&a, &bad, y.view(), &SoftThreshold, None, &p, None).is_err());
}

/// The mirror-grid filter built the long way, as an independent reference for the DCT
/// implementation: extend `x` half-sample symmetrically to `2n₀ × 2n₁`, multiply its DFT by
/// `1/(q + ρ)` (`q` = `|H|²` averaged over the sign flips) and crop.
fn mirror_grid_filter(
    psf: &ndarray::Array2<f64>,
    rho: f64,
    x: &ndarray::Array2<f64>,
) -> ndarray::Array2<f64> {
    use sparseinv_solvers::op::{Boundary, Conv2d};
    let (n0, n1) = x.dim();
    let ext = ndarray::Array2::from_shape_fn((2 * n0, 2 * n1), |(i, j)| {
        let i = if i < n0 { i } else { 2 * n0 - 1 - i };
        let j = if j < n1 { j } else { 2 * n1 - 1 - j };
        x[[i, j]]
    });
    let conv = Conv2d::new([2 * n0, 2 * n1], psf.view(), Boundary::Circular).unwrap();
    let h = conv.transfer_function();
    let (p, q) = h.dim();
    let f = |u: usize, v: usize, _h: num_complex::Complex<f64>| {
        let (um, vm) = ((p - u) % p, (q - v) % q);
        let quad = (h[[u, v]].norm_sqr()
            + h[[um, v]].norm_sqr()
            + h[[u, vm]].norm_sqr()
            + h[[um, vm]].norm_sqr())
            / 4.0;
        num_complex::Complex::new(1.0 / (quad + rho), 0.0)
    };
    let mut out = ndarray::Array2::zeros((2 * n0, 2 * n1));
    conv.apply_fourier_filter_indexed_into(ext.view(), out.view_mut(), &f)
        .unwrap();
    out.slice(ndarray::s![..n0, ..n1]).to_owned()
}

#[test]
fn mirrored_inverse_equals_the_mirror_grid_filter() {
    use sparseinv_solvers::op::LinearOperator;
    // asymmetric and even-sized PSFs too: the DCT form is the mirror-grid filter for any PSF
    let mut skew = gauss_psf(9, 1.7);
    for k in 0..4 {
        skew[[4, 4 + k]] += 0.05;
    }
    let even = ndarray::Array2::from_shape_fn((4, 6), |(i, j)| 1.0 + (i * 6 + j) as f64);
    for (psf, shape) in [
        (gauss_psf(7, 1.5), [20usize, 18usize]),
        (skew, [21, 16]),
        (even, [9, 13]),
    ] {
        let rho = 0.07;
        let m = CirculantNormalInverse::mirrored(shape, psf.view(), rho).unwrap();
        let x = randn::<f64>(&shape, 12)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let want = mirror_grid_filter(&psf, rho, &x);
        let got = m.apply(x.view().into_dyn()).unwrap();
        let err = max_err(&got, &want.into_dyn());
        assert!(err < 1e-11, "{shape:?}: {err}");
    }
}

#[test]
fn exactness_test_accepts_symmetric_psfs_only() {
    use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
    let (shape, rho, tol) = ([24usize, 20usize], 0.1, 1e-8);
    let psf = gauss_psf(7, 1.5);
    let mm = CirculantNormalInverse::mirrored(shape, psf.view(), rho).unwrap();
    let mc = CirculantNormalInverse::new(shape, psf.view(), rho).unwrap();
    let reflect = Conv2d::new(shape, psf.view(), Boundary::Reflect).unwrap();
    let circular = Conv2d::new(shape, psf.view(), Boundary::Circular).unwrap();
    assert!(mm.is_exact_for(&reflect, tol));
    assert!(mc.is_exact_for(&circular, tol));
    // the wrong boundary, kernel or grid
    assert!(!mm.is_exact_for(&circular, tol));
    assert!(!mc.is_exact_for(&reflect, tol));
    let other = Conv2d::new(shape, gauss_psf(7, 1.4).view(), Boundary::Reflect).unwrap();
    assert!(!mm.is_exact_for(&other, tol));
    let smaller = Conv2d::new([24, 18], psf.view(), Boundary::Reflect).unwrap();
    assert!(!mm.is_exact_for(&smaller, tol));
    // a visibly asymmetric PSF: preconditioner only
    let mut skew = psf.clone();
    skew[[3, 4]] += 0.01;
    let ms = CirculantNormalInverse::mirrored(shape, skew.view(), rho).unwrap();
    let askew = Conv2d::new(shape, skew.view(), Boundary::Reflect).unwrap();
    assert!(!ms.is_exact_for(&askew, tol));
    assert!(matches!(
        ms.solver_for(&askew, tol),
        NormalSolver::Preconditioned(_)
    ));
    // an even-sized kernel symmetric about its centre (h/2, w/2): first row/column zero
    let mut even = ndarray::Array2::zeros((6, 4));
    for ((i, j), v) in even.indexed_iter_mut() {
        if i > 0 && j > 0 {
            let (a, b) = (i as f64 - 3.0, j as f64 - 2.0);
            *v = (-(a * a + b * b) / 3.0).exp();
        }
    }
    let me = CirculantNormalInverse::mirrored(shape, even.view(), rho).unwrap();
    let ae = Conv2d::new(shape, even.view(), Boundary::Reflect).unwrap();
    assert!(me.is_exact_for(&ae, tol));
    let n = Normal { a: &ae, rho };
    let x = randn::<f64>(&shape, 3);
    assert!(max_err(&me.apply(n.apply(x.view()).unwrap().view()).unwrap(), &x) < 1e-10);
    // an asymmetry just inside the bound: one application of M solves the system to the
    // tolerance (the guarantee behind the test), checked on the system itself
    let l1 = psf.sum();
    let eps = 0.9 * tol * rho / (8.0 * l1);
    let mut near = psf.clone();
    // offset (0, +1) from the centre: k̄ there and at (0, −1) rises by eps/2, ‖k − k̄‖₁ = eps
    near[[3, 4]] += eps;
    let mn = CirculantNormalInverse::mirrored(shape, near.view(), rho).unwrap();
    let an = Conv2d::new(shape, near.view(), Boundary::Reflect).unwrap();
    assert!(mn.is_exact_for(&an, tol));
    let mut far = psf.clone();
    far[[3, 4]] += 2.0 * eps;
    let af = Conv2d::new(shape, far.view(), Boundary::Reflect).unwrap();
    let mf = CirculantNormalInverse::mirrored(shape, far.view(), rho).unwrap();
    assert!(!mf.is_exact_for(&af, tol));
    let b = randn::<f64>(&shape, 9);
    let xb = mn.apply(b.view()).unwrap();
    let r = &Normal { a: &an, rho }.apply(xb.view()).unwrap() - &b;
    let (rn, bn) = (
        r.mapv(|v| v * v).sum().sqrt(),
        b.mapv(|v| v * v).sum().sqrt(),
    );
    assert!(rn <= tol * bn, "relative residual {}", rn / bn);
}

#[test]
fn exact_x_update_gives_the_cg_iterates() {
    use sparseinv_solvers::op::{Boundary, Conv2d};
    // reflective blur by a symmetric PSF: the DCT inverse replaces CG; the independent
    // reference is plain (unpreconditioned) CG to a tight tolerance
    let psf = gauss_psf(9, 1.8);
    let a = Conv2d::new([40, 36], psf.view(), Boundary::Reflect).unwrap();
    let y = randn::<f64>(&[40, 36], 21);
    let p = PnpParams {
        rho: 0.2,
        sigma: 0.05,
        cg_tol: 1e-13,
        cg_max_iters: 2000,
        stop: stop(12, 0.0),
        ..Default::default()
    };
    let m = CirculantNormalInverse::mirrored([40, 36], psf.view(), p.rho).unwrap();
    let solver = m.solver_for(&a, p.cg_tol);
    assert!(matches!(solver, NormalSolver::Exact(_)));
    let (z0, r0) = pnp_admm(&a, y.view(), &SoftThreshold, Some(y.view()), &p, None).unwrap();
    let (z1, r1) = pnp_admm_with(
        &a,
        solver,
        y.view(),
        &SoftThreshold,
        Some(y.view()),
        &p,
        None,
    )
    .unwrap();
    assert_eq!((r0.iterations, r1.iterations), (12, 12));
    assert!(max_err(&z0, &z1) < 1e-10, "{}", max_err(&z0, &z1));
    // the reported residuals and changes agree too
    let (h0, h1) = (&r0.rel_change_history, &r1.rel_change_history);
    assert_eq!(h0.len(), h1.len());
    for (c0, c1) in h0.iter().zip(h1) {
        assert!((c0 - c1).abs() < 1e-9, "{c0} vs {c1}");
    }
    // an operator of the wrong shape is an error, not a panic
    let bad = CirculantNormalInverse::mirrored([40, 30], psf.view(), p.rho).unwrap();
    let e = pnp_admm_with(
        &a,
        NormalSolver::Exact(&bad),
        y.view(),
        &SoftThreshold,
        None,
        &p,
        None,
    );
    assert!(e.is_err());
}
