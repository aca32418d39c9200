//! Non-convex proximal terms (l0, l_q, CEL0) checked against a brute-force 1-D grid
//! minimisation of `½(x − v)² + τ R(x)`, with `R` written here independently from the paper
//! formulas; the closed forms for q = 1/2, 2/3 against the general l_q solver; complex
//! inputs against the real prox of the modulus; constructor validation.

use ndarray::{array, ArrayD, IxDyn};
use num_complex::Complex64;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparseinv_solvers::prox::{Cel0, Lq, LqMethod, Prox, L0, L1};
use sparseinv_solvers::testing::randn;
use sparseinv_solvers::Error;

const GRID: usize = 200_001;

/// Brute force over `GRID` points of `[−|v|−1, |v|+1]` (0 is a grid point). Returns the
/// minimum value and the interval `[lo, hi]` of grid points within `delta` of the minimum.
fn grid_min(v: f64, f: &dyn Fn(f64) -> f64, delta: f64) -> (f64, f64, f64) {
    let r = v.abs() + 1.0;
    let half = ((GRID - 1) / 2) as f64;
    let xs = |k: usize| r * ((k as f64 - half) / half);
    let mut fmin = f64::INFINITY;
    let vals: Vec<f64> = (0..GRID)
        .map(|k| {
            let fx = f(xs(k));
            fmin = fmin.min(fx);
            fx
        })
        .collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (k, &fx) in vals.iter().enumerate() {
        if fx <= fmin + delta {
            lo = lo.min(xs(k));
            hi = hi.max(xs(k));
        }
    }
    (fmin, lo, hi)
}

/// The scalar prox of `p` at `v` (a one-element array).
fn prox1<P: Prox<f64>>(p: &P, v: f64, tau: f64) -> f64 {
    p.prox(array![v].into_dyn().view(), tau)[0]
}

/// Check `x = prox(v)` against the grid: objective no worse than the grid minimum, and equal
/// to the grid minimiser when the latter is unique (all near-optimal grid points close).
fn check_against_grid(name: &str, v: f64, x: f64, f: &dyn Fn(f64) -> f64) -> bool {
    let scale = 1.0 + v * v;
    let (fmin, lo, hi) = grid_min(v, f, 1e-9 * scale);
    let fx = f(x);
    assert!(
        fx <= fmin + 1e-10 * scale,
        "{name}: v = {v}: objective at prox output x = {x} is {fx}, grid minimum {fmin}"
    );
    let unique = hi - lo < 1e-2 * (1.0 + v.abs());
    if unique {
        let tol = 1e-4 * (1.0 + v.abs());
        assert!(
            x >= lo - tol && x <= hi + tol,
            "{name}: v = {v}: prox output {x} outside the grid minimiser interval [{lo}, {hi}]"
        );
    }
    unique
}

/// Random test points: (v, τ, λ) with v spread over scales and both signs.
fn cases(seed: u64, n: usize) -> Vec<(f64, f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let v: f64 = rng.random_range(-4.0..4.0);
            let tau: f64 = 10f64.powf(rng.random_range(-1.0..0.5));
            let lam: f64 = 10f64.powf(rng.random_range(-1.0..0.3));
            (v, tau, lam)
        })
        .collect()
}

#[test]
fn l0_matches_grid() {
    let mut n_unique = 0;
    for (v, tau, lam) in cases(1, 40) {
        let p = L0::new(lam).unwrap();
        let f = |x: f64| 0.5 * (x - v) * (x - v) + tau * lam * if x != 0.0 { 1.0 } else { 0.0 };
        if check_against_grid("l0", v, prox1(&p, v, tau), &f) {
            n_unique += 1;
        }
    }
    assert!(n_unique >= 35);
    // threshold sqrt(2τλ): tie → 0, just above → identity
    let p = L0::new(2.0).unwrap();
    assert_eq!(prox1(&p, 2.0, 1.0), 0.0);
    assert_eq!(prox1(&p, -2.0000001, 1.0), -2.0000001);
    assert_eq!(prox1(&p, 1.999, 1.0), 0.0);
}

fn lq_objective(v: f64, t: f64, q: f64) -> impl Fn(f64) -> f64 {
    move |x: f64| 0.5 * (x - v) * (x - v) + t * x.abs().powf(q)
}

#[test]
fn lq_closed_forms_and_general_match_grid() {
    let mut seed = 10;
    for q in [0.5, 2.0 / 3.0, 0.1, 0.3, 0.75, 0.95] {
        seed += 1;
        let mut n_unique = 0;
        let cs = cases(seed, 30);
        for &(v, tau, lam) in &cs {
            let f = lq_objective(v, tau * lam, q);
            let auto = Lq::new(q, lam).unwrap();
            let x = prox1(&auto, v, tau);
            if check_against_grid(&format!("lq q={q} ({:?})", auto.method()), v, x, &f) {
                n_unique += 1;
            }
            let gen = Lq::general(q, lam).unwrap();
            check_against_grid(&format!("lq general q={q}"), v, prox1(&gen, v, tau), &f);
        }
        assert!(n_unique >= 20, "q = {q}: only {n_unique} unique cases");
    }
}

#[test]
fn lq_near_threshold_matches_grid() {
    for q in [0.5, 2.0 / 3.0, 0.2, 0.8] {
        for lam in [0.3, 1.7] {
            let p = Lq::new(q, lam).unwrap();
            let g = Lq::general(q, lam).unwrap();
            let tau = 0.8;
            let thr = p.threshold(tau, lam);
            for fac in [0.99, 0.999, 1.001, 1.01, 1.1] {
                let v = thr * fac;
                let f = lq_objective(v, tau * lam, q);
                let x = prox1(&p, v, tau);
                check_against_grid("lq near threshold", v, x, &f);
                check_against_grid("lq general near threshold", v, prox1(&g, v, tau), &f);
                // below the threshold zero, above it a jump to at least (2τλ(1−q))^{1/(2−q)}
                if fac < 1.0 {
                    assert_eq!(x, 0.0);
                } else {
                    let jump = (2.0 * tau * lam * (1.0 - q)).powf(1.0 / (2.0 - q));
                    assert!(x >= jump * (1.0 - 1e-9), "q={q}: {x} < {jump}");
                }
            }
        }
    }
}

#[test]
fn lq_closed_forms_agree_with_general_solver() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for (q, method) in [(0.5, LqMethod::Half), (2.0 / 3.0, LqMethod::TwoThirds)] {
        let mut nonzero = 0;
        for _ in 0..2000 {
            let lam: f64 = 10f64.powf(rng.random_range(-3.0..2.0));
            let tau: f64 = 10f64.powf(rng.random_range(-2.0..1.0));
            let v: f64 = rng.random_range(-1.0..1.0) * 10f64.powf(rng.random_range(-2.0..3.0));
            let c = Lq::new(q, lam).unwrap();
            assert_eq!(c.method(), method);
            let g = Lq::general(q, lam).unwrap();
            assert_eq!(g.method(), LqMethod::General);
            let (xc, xg) = (prox1(&c, v, tau), prox1(&g, v, tau));
            // both are zero or both non-zero away from the exact threshold
            let thr = c.threshold(tau, lam);
            if (v.abs() - thr).abs() > 1e-9 * thr {
                assert_eq!(
                    xc == 0.0,
                    xg == 0.0,
                    "q={q} v={v} t={} {xc} {xg}",
                    tau * lam
                );
            }
            if xc != 0.0 && xg != 0.0 {
                nonzero += 1;
                assert!(
                    (xc - xg).abs() <= 1e-10 * xg.abs(),
                    "q={q}, v={v}, τλ={}: closed form {xc} vs general {xg}",
                    tau * lam
                );
            }
        }
        assert!(nonzero > 500);
    }
}

#[test]
fn cel0_matches_grid_both_regimes() {
    // CEL0 term from the paper's formula: λ − (a²/2)(|x| − √(2λ)/a)² 1{|x| ≤ √(2λ)/a}
    let phi = |x: f64, lam: f64, a: f64| {
        let th = (2.0 * lam).sqrt() / a;
        if x.abs() <= th {
            lam - 0.5 * a * a * (x.abs() - th) * (x.abs() - th)
        } else {
            lam
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut below, mut above) = (0, 0);
    for (v, tau, lam) in cases(6, 60) {
        let a: f64 = 10f64.powf(rng.random_range(-0.7..0.7));
        if tau * a * a < 1.0 {
            below += 1;
        } else {
            above += 1;
        }
        let p = Cel0::new(lam, array![a].into_dyn()).unwrap();
        let f = |x: f64| 0.5 * (x - v) * (x - v) + tau * phi(x, lam, a);
        check_against_grid(
            &format!("cel0 τa²={}", tau * a * a),
            v,
            prox1(&p, v, tau),
            &f,
        );
        // value() agrees with the paper's formula
        let y = 0.7 * v;
        let val: f64 = p.value(array![y].into_dyn().view());
        assert!((val - phi(y, lam, a)).abs() < 1e-12 * (1.0 + lam));
    }
    assert!(below > 10 && above > 10, "{below} {above}");
}

#[test]
fn cel0_from_matrix_and_operator() {
    use sparseinv_solvers::op::Diagonal;
    let a = array![[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]];
    let p = Cel0::from_matrix(0.5, a.view()).unwrap();
    let want = [5.0, 0.0, 2f64.sqrt()];
    for (g, w) in p.col_norms().iter().zip(want) {
        assert!((g - w).abs() < 1e-15);
    }
    // zero column: φ = 0 and the prox is the identity
    let x = p.prox(array![0.1, 0.1, 0.1].into_dyn().view(), 0.01);
    assert_eq!(x[1], 0.1);
    let d = Diagonal::new(array![[1.0, -2.0], [0.5, 0.0]].into_dyn());
    let p = Cel0::from_operator(1.0, &d).unwrap();
    assert_eq!(p.col_norms(), &array![[1.0, 2.0], [0.5, 0.0]].into_dyn());
    assert!(Prox::<f64>::check_shape(&p, &[2, 2]).is_ok());
    assert!(matches!(
        Prox::<f64>::check_shape(&p, &[4]),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// For a modulus-based penalty the complex prox is the real prox of |v| with v's phase.
fn check_complex_radial<P: Prox<f64> + Prox<Complex64>>(name: &str, p: &P, tau: f64) {
    let v = randn::<Complex64>(&[64], 3).mapv(|z| z * 2.0);
    let x = Prox::<Complex64>::prox(p, v.view(), tau);
    let mods = v.mapv(|z| z.norm());
    let xm = Prox::<f64>::prox(p, mods.view(), tau);
    for i in 0..64 {
        let want = v[i] * (xm[i] / mods[i]);
        assert!(
            (x[i] - want).norm() <= 1e-14 * (1.0 + v[i].norm()),
            "{name}: element {i}: {} vs {want}",
            x[i]
        );
    }
    // optimality against random complex perturbations of the output
    let obj = |y: &ArrayD<Complex64>| {
        0.5 * (y - &v).mapv(|d| d.norm_sqr()).sum() + tau * Prox::<Complex64>::value(p, y.view())
    };
    let f0 = obj(&x);
    for s in 0..50u64 {
        let d = randn::<Complex64>(&[64], 100 + s);
        for eps in [1e-1, 1e-3] {
            let y = &x + &d.mapv(|z| z * eps);
            assert!(
                f0 <= obj(&y) + 1e-12,
                "{name}: perturbation lowers the objective"
            );
        }
    }
}

#[test]
fn complex_inputs_prox_the_modulus() {
    check_complex_radial("l1", &L1::new(0.7).unwrap(), 0.9);
    check_complex_radial("l0", &L0::new(0.7).unwrap(), 0.9);
    check_complex_radial("lq 1/2", &Lq::half(0.7).unwrap(), 0.9);
    check_complex_radial("lq 2/3", &Lq::two_thirds(0.7).unwrap(), 0.9);
    check_complex_radial("lq 0.3", &Lq::new(0.3, 0.7).unwrap(), 0.9);
    let a = ArrayD::from_shape_fn(IxDyn(&[64]), |i| 0.5 + (i[0] % 5) as f64 * 0.3);
    check_complex_radial("cel0", &Cel0::new(0.7, a).unwrap(), 0.9);
}

#[test]
fn weighted_penalties_apply_per_element_weights() {
    let w = array![0.0, 1.0, 4.0].into_dyn();
    let v = array![0.5, 1.0, -3.0].into_dyn();
    let l1 = L1::weighted(w.clone()).unwrap();
    assert_eq!(l1.prox(v.view(), 0.5), array![0.5, 0.5, -1.0].into_dyn());
    assert_eq!(Prox::<f64>::value(&l1, v.view()), 13.0);
    let l0 = L0::weighted(w.clone()).unwrap();
    // thresholds sqrt(2·0.5·w) = 0, 1, 2
    assert_eq!(l0.prox(v.view(), 0.5), array![0.5, 0.0, -3.0].into_dyn());
    assert_eq!(Prox::<f64>::value(&l0, v.view()), 5.0);
    let lq = Lq::weighted(0.5, w.clone()).unwrap();
    let x = lq.prox(v.view(), 0.5);
    for i in 0..3 {
        let single = Lq::half(w[i]).unwrap();
        assert_eq!(x[i], prox1(&single, v[i], 0.5));
    }
    assert!(Prox::<f64>::check_shape(&lq, &[3]).is_ok());
    assert!(Prox::<f64>::check_shape(&lq, &[2]).is_err());
    assert!(Prox::<f64>::check_shape(&L1::new(1.0).unwrap(), &[7, 9]).is_ok());
}

#[test]
fn f32_agrees_with_f64() {
    let v64 = randn::<f64>(&[200], 8).mapv(|x| 3.0 * x);
    let v32 = v64.mapv(|x| x as f32);
    let check = |name: &str, a: ArrayD<f32>, b: ArrayD<f64>| {
        for (x, y) in a.iter().zip(b.iter()) {
            assert!(
                (*x as f64 - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{name}: f32 {x} vs f64 {y}"
            );
        }
    };
    check(
        "lq 2/3",
        Lq::two_thirds(0.4f32).unwrap().prox(v32.view(), 1.0),
        Lq::two_thirds(0.4f64).unwrap().prox(v64.view(), 1.0),
    );
    check(
        "lq 0.3",
        Lq::new(0.3f32, 0.4).unwrap().prox(v32.view(), 1.0),
        Lq::new(0.3f64, 0.4).unwrap().prox(v64.view(), 1.0),
    );
    check(
        "l1",
        L1::new(0.4f32).unwrap().prox(v32.view(), 1.0),
        L1::new(0.4f64).unwrap().prox(v64.view(), 1.0),
    );
    assert_eq!(
        Lq::new(2.0f32 / 3.0, 1.0).unwrap().method(),
        LqMethod::TwoThirds
    );
}

#[test]
fn nan_propagates() {
    let v = array![f64::NAN, 1.0].into_dyn();
    for x in [
        L1::new(0.1).unwrap().prox(v.view(), 1.0),
        L0::new(0.1).unwrap().prox(v.view(), 1.0),
        Lq::half(0.1).unwrap().prox(v.view(), 1.0),
        Lq::new(0.3, 0.1).unwrap().prox(v.view(), 1.0),
        Cel0::new(0.1, array![1.0, 1.0].into_dyn())
            .unwrap()
            .prox(v.view(), 1.0),
    ] {
        assert!(x[0].is_nan() && x[1].is_finite());
    }
}

#[test]
fn constructors_validate() {
    let param = |r: Result<(), Error>| matches!(r, Err(Error::InvalidParameter { .. }));
    assert!(param(L1::new(-1.0).map(|_| ())));
    assert!(param(L1::new(f64::NAN).map(|_| ())));
    assert!(param(L0::new(-0.1).map(|_| ())));
    assert!(param(
        L1::weighted(array![1.0, -1.0].into_dyn()).map(|_| ())
    ));
    assert!(matches!(
        L0::weighted(array![1.0, f64::INFINITY].into_dyn()),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        L1::<f64>::weighted(ArrayD::zeros(IxDyn(&[0]))),
        Err(Error::Empty { .. })
    ));
    for q in [0.0, 1.0, 1.5, -0.5, f64::NAN] {
        assert!(param(Lq::new(q, 1.0).map(|_| ())), "q = {q}");
        assert!(param(Lq::general(q, 1.0).map(|_| ())), "q = {q}");
    }
    assert!(param(Lq::half(-1.0).map(|_| ())));
    assert!(param(Cel0::new(-1.0, array![1.0].into_dyn()).map(|_| ())));
    assert!(param(
        Cel0::new(1.0, array![1.0, -2.0].into_dyn()).map(|_| ())
    ));
    assert!(matches!(
        Cel0::<f64>::from_matrix(1.0, ndarray::Array2::<f64>::zeros((0, 3)).view()),
        Err(Error::Empty { .. })
    ));
    // per-element weights of the wrong shape are reported by check_shape
    let l1 = L1::weighted(array![1.0, 2.0].into_dyn()).unwrap();
    assert!(matches!(
        Prox::<f64>::check_shape(&l1, &[3]),
        Err(Error::ShapeMismatch { .. })
    ));
}
