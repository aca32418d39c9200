//! Convex proximal terms: Moreau's identity checked by comparing the trait's Moreau-based
//! `conj_prox_into` with an independent closed form of the conjugate's prox; optimality of the
//! prox against random perturbations; closed-form values; constructor validation.

use ndarray::{array, ArrayD, IxDyn, Zip};
use num_complex::Complex64;
use sparseinv_solvers::prox::{
    BoxConstraint, GroupL21, L2Ball, L2Squared, NonNegL1, NonNegative, Prox, SeparableSum,
    SquaredDistance, L1,
};
use sparseinv_solvers::testing::randn;
use sparseinv_solvers::{Error, Real, Scalar};

fn max_diff<T: Scalar>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let mut m = 0.0f64;
    Zip::from(a)
        .and(b)
        .for_each(|&x, &y| m = m.max((x - y).modulus().to_f64_lossless()));
    m
}

/// `conj_prox_into` (Moreau) against the independent `want(v, σ)`, for several σ and seeds.
fn check_moreau<T: Scalar<Real = f64>, P: Prox<T>>(
    name: &str,
    p: &P,
    shape: &[usize],
    want: impl Fn(&ArrayD<T>, f64) -> ArrayD<T>,
) {
    for (seed, sigma) in [(1u64, 0.3), (2, 1.0), (3, 4.0)] {
        let v = randn::<T>(shape, seed).mapv(|a| a.scale(2.0));
        let mut got = ArrayD::zeros(IxDyn(shape));
        p.conj_prox_into(v.view(), sigma, got.view_mut());
        let w = want(&v, sigma);
        let d = max_diff(&got, &w);
        assert!(
            d < 1e-12,
            "{name}: Moreau conj prox differs by {d:e} (σ = {sigma})"
        );
    }
}

/// The prox output minimises `½‖x − v‖² + τR(x)` against random perturbations.
fn check_optimal<T: Scalar<Real = f64>, P: Prox<T>>(name: &str, p: &P, shape: &[usize], tau: f64) {
    let v = randn::<T>(shape, 11).mapv(|a| a.scale(2.0));
    let x = p.prox(v.view(), tau);
    let obj = |y: &ArrayD<T>| 0.5 * (y - &v).mapv(|d| d.abs2()).sum() + tau * p.value(y.view());
    let f0 = obj(&x);
    assert!(f0.is_finite(), "{name}: prox output outside the domain");
    for s in 0..60u64 {
        let d = randn::<T>(shape, 1000 + s);
        for eps in [1.0, 1e-2, 1e-5] {
            let y = &x + &d.mapv(|a| a.scale(eps));
            let fy = obj(&y);
            assert!(
                f0 <= fy + 1e-12 * (1.0 + f0.abs()),
                "{name}: perturbation (seed {s}, ε = {eps}) lowers the objective: {f0} > {fy}"
            );
        }
    }
}

/// Projection onto `{|yᵢ| ≤ rᵢ}` (modulus clip), the prox of the l1 conjugate.
fn clip_modulus<T: Scalar<Real = f64>>(v: &ArrayD<T>, r: &ArrayD<f64>) -> ArrayD<T> {
    let mut out = v.clone();
    Zip::from(&mut out).and(r).for_each(|o, &ri| {
        let m = o.modulus();
        if m > ri {
            *o = o.scale(ri / m);
        }
    });
    out
}

#[test]
fn l1_moreau_and_optimality() {
    let shape = [4, 5];
    let l1 = L1::new(0.8).unwrap();
    let r = ArrayD::from_elem(IxDyn(&shape), 0.8);
    check_moreau::<f64, _>("l1 f64", &l1, &shape, |v, _| clip_modulus(v, &r));
    check_moreau::<Complex64, _>("l1 c64", &l1, &shape, |v, _| clip_modulus(v, &r));
    let w = randn::<f64>(&shape, 4).mapv(f64::abs);
    let lw = L1::weighted(w.clone()).unwrap();
    check_moreau::<f64, _>("weighted l1 f64", &lw, &shape, |v, _| clip_modulus(v, &w));
    check_moreau::<Complex64, _>("weighted l1 c64", &lw, &shape, |v, _| clip_modulus(v, &w));
    check_optimal::<f64, _>("l1 f64", &l1, &shape, 0.7);
    check_optimal::<Complex64, _>("l1 c64", &l1, &shape, 0.7);
    check_optimal::<Complex64, _>("weighted l1 c64", &lw, &shape, 0.7);
}

#[test]
fn nonnegative_and_box_moreau_and_optimality() {
    let shape = [30];
    // (ι_{x≥0})* = ι_{y≤0}: prox is min(y, 0)
    check_moreau::<f64, _>("nonneg", &NonNegative, &shape, |v, _| {
        v.mapv(|a| a.min(0.0))
    });
    check_optimal::<f64, _>("nonneg", &NonNegative, &shape, 1.0);
    assert!(!Prox::<f64>::supports_complex(&NonNegative));
    // box: conjugate is the support function Σ max(lo y, hi y); its prox from the
    // subdifferential [lo, hi] at 0: y − σ hi (y > σ hi), y − σ lo (y < σ lo), else 0
    for (lo, hi) in [(-0.5, 1.5), (0.2, 0.9), (-2.0, -1.0)] {
        let b = BoxConstraint::new(lo, hi).unwrap();
        check_moreau::<f64, _>("box", &b, &shape, |v, s| {
            v.mapv(|y| {
                if y > s * hi {
                    y - s * hi
                } else if y < s * lo {
                    y - s * lo
                } else {
                    0.0
                }
            })
        });
        check_optimal::<f64, _>("box", &b, &shape, 1.0);
    }
    // half-infinite box [0, ∞) is the orthant
    let b = BoxConstraint::new(0.0, f64::INFINITY).unwrap();
    let v = randn::<f64>(&shape, 3);
    assert_eq!(b.prox(v.view(), 1.0), NonNegative.prox(v.view(), 1.0));
    let mut got = ArrayD::zeros(IxDyn(&shape));
    b.conj_prox_into(v.view(), 0.5, got.view_mut());
    assert_eq!(got, v.mapv(|a| a.min(0.0)));
}

#[test]
fn nonneg_l1_moreau_and_optimality() {
    let shape = [25];
    let p = NonNegL1::new(0.6).unwrap();
    // conjugate: ι_{y ≤ λ}, prox min(y, λ)
    check_moreau::<f64, _>("nonneg l1", &p, &shape, |v, _| v.mapv(|a| a.min(0.6)));
    check_optimal::<f64, _>("nonneg l1", &p, &shape, 0.9);
    let w = randn::<f64>(&shape, 8).mapv(f64::abs);
    let pw = NonNegL1::weighted(w.clone()).unwrap();
    check_moreau::<f64, _>("weighted nonneg l1", &pw, &shape, |v, _| {
        let mut o = v.clone();
        Zip::from(&mut o).and(&w).for_each(|o, &wi| *o = o.min(wi));
        o
    });
    // equals L1 followed by the projection on x ≥ 0
    let v = randn::<f64>(&shape, 5);
    let a = p.prox(v.view(), 0.9);
    let b = NonNegative.prox(L1::new(0.6).unwrap().prox(v.view(), 0.9).view(), 1.0);
    assert!(max_diff(&a, &b) < 1e-15);
}

/// Project each group (given as flat index lists) onto the ball of radius r.
fn project_groups<T: Scalar<Real = f64>>(
    v: &ArrayD<T>,
    groups: &[Vec<usize>],
    r: f64,
) -> ArrayD<T> {
    let mut out = v.clone();
    let flat = out.as_slice_mut().unwrap();
    for g in groups {
        let n: f64 = g.iter().map(|&i| flat[i].abs2()).sum::<f64>().sqrt();
        if n > r {
            for &i in g {
                flat[i] = flat[i].scale(r / n);
            }
        }
    }
    out
}

#[test]
fn group_l21_moreau_and_optimality() {
    // groups by axis 1 of a [3, 4] array: rows are the groups
    let rows: Vec<Vec<usize>> = (0..3)
        .map(|i| (0..4).map(|j| 4 * i + j).collect())
        .collect();
    let g = GroupL21::along_axis(1.3, 1).unwrap();
    check_moreau::<f64, _>("group axis f64", &g, &[3, 4], |v, _| {
        project_groups(v, &rows, 1.3)
    });
    check_moreau::<Complex64, _>("group axis c64", &g, &[3, 4], |v, _| {
        project_groups(v, &rows, 1.3)
    });
    check_optimal::<Complex64, _>("group axis c64", &g, &[3, 4], 0.8);
    // axis 0: columns are groups
    let cols: Vec<Vec<usize>> = (0..4)
        .map(|j| (0..3).map(|i| 4 * i + j).collect())
        .collect();
    let g0 = GroupL21::along_axis(1.3, 0).unwrap();
    check_moreau::<f64, _>("group axis0", &g0, &[3, 4], |v, _| {
        project_groups(v, &cols, 1.3)
    });
    // the same partition as explicit lists gives the same prox
    let gl = GroupL21::from_lists(1.3, cols.clone()).unwrap();
    let v = randn::<Complex64>(&[3, 4], 9);
    assert!(max_diff(&gl.prox(v.view(), 0.7), &g0.prox(v.view(), 0.7)) < 1e-15);
    // irregular groups on a flat vector
    let groups = vec![vec![0, 5, 2], vec![1], vec![3, 4, 6, 7, 8]];
    let gi = GroupL21::from_lists(0.9, groups.clone()).unwrap();
    check_moreau::<Complex64, _>("group lists", &gi, &[9], |v, _| {
        project_groups(v, &groups, 0.9)
    });
    check_optimal::<f64, _>("group lists", &gi, &[9], 1.1);
    // value
    let x = array![[3.0, 0.0], [4.0, 1.0]].into_dyn();
    assert!((Prox::<f64>::value(&g0, x.view()) - 1.3 * 6.0).abs() < 1e-14);
}

/// The contiguous fast path of `GroupL21::along_axis` (chunked lane norms) against the
/// strided lane path (a non-standard-layout view of the same values) and against explicit
/// index lists, on a 3-D array whose inner extent spans several chunks, with lanes near
/// overflow and underflow, a zero lane and a NaN lane.
#[test]
fn group_l21_axis_fast_path_matches_strided_and_lists() {
    let shape = [2usize, 3, 12000];
    let mut v = randn::<f64>(&shape, 21);
    // extremes in lanes (o, ·, i): overflow-scale, underflow-scale, zero, NaN
    for k in 0..3 {
        v[[0, k, 5]] *= 1e200;
        v[[1, k, 1700]] *= 1e-200;
        v[[1, k, 11999]] = 0.0;
    }
    v[[0, 1, 2000]] = f64::NAN;
    let g = GroupL21::along_axis(0.9, 1).unwrap();
    let fast = g.prox(v.view(), 0.8);
    // the same values in a Fortran-order array: not standard layout, so the lane path runs
    let mut vf = ndarray::ArrayD::<f64>::zeros(ndarray::ShapeBuilder::f(IxDyn(&shape)));
    vf.assign(&v);
    assert!(vf.as_slice().is_none());
    let strided = g.prox(vf.view(), 0.8);
    let lists: Vec<Vec<usize>> = (0..2)
        .flat_map(|o| (0..12000).map(move |i| (0..3).map(|k| (o * 3 + k) * 12000 + i).collect()))
        .collect();
    let gl = GroupL21::from_lists(0.9, lists).unwrap();
    let listed = gl.prox(v.view(), 0.8);
    // (errors measured against the input: the factor 1 − t/‖v_g‖ cancels near the threshold)
    for (((a, b), c), x) in fast
        .iter()
        .zip(strided.iter())
        .zip(listed.iter())
        .zip(v.iter())
    {
        if a.is_nan() {
            continue;
        }
        let tol = 1e-14 * x.abs().max(1e-300);
        assert!((a - c).abs() <= tol, "fast {a} vs lists {c}");
        assert!(
            b.is_nan() || (a - b).abs() <= tol,
            "fast {a} vs strided {b}"
        );
    }
    // the NaN lane is NaN throughout; the huge lane is finite and shrunk by a factor ≈ 1
    assert!((0..3).all(|k| fast[[0, k, 2000]].is_nan()));
    assert!((0..3).all(|k| fast[[0, k, 5]].is_finite() && fast[[0, k, 5]] != 0.0));
    // values agree (ordinary magnitudes: the list path sums squares unscaled)
    let v = randn::<f64>(&shape, 22);
    let a = Prox::<f64>::value(&g, v.view());
    let b = Prox::<f64>::value(&gl, v.view());
    assert!(
        a.is_finite() && (a - b).abs() <= 1e-12 * b.abs(),
        "{a} vs {b}"
    );
}

#[test]
fn l2_ball_moreau_and_optimality() {
    let shape = [6];
    // conjugate ⟨c, y⟩ + r‖y‖: prox is block soft thresholding of y − σc at σr
    let soft = |w: ArrayD<Complex64>, t: f64| {
        let n = w.mapv(|a| a.norm_sqr()).sum().sqrt();
        if n > t {
            w.mapv(|a| a * (1.0 - t / n))
        } else {
            w.mapv(|_| Complex64::new(0.0, 0.0))
        }
    };
    for r in [0.5, 3.0, 10.0] {
        let ball = L2Ball::<Complex64>::new(r).unwrap();
        check_moreau("ball c64", &ball, &shape, |v, s| soft(v.clone(), s * r));
        let c = randn::<Complex64>(&shape, 77);
        let cb = L2Ball::with_centre(r, c.clone()).unwrap();
        check_moreau("centred ball c64", &cb, &shape, |v, s| {
            soft(v - &c.mapv(|a| a * s), s * r)
        });
        check_optimal("centred ball c64", &cb, &shape, 1.0);
    }
    let ball = L2Ball::<f64>::new(2.0).unwrap();
    check_moreau("ball f64", &ball, &shape, |v, s| {
        let n = v.mapv(|a| a * a).sum().sqrt();
        let t = 2.0 * s;
        if n > t {
            v.mapv(|a| a * (1.0 - t / n))
        } else {
            v.mapv(|_| 0.0)
        }
    });
    assert!(Prox::<f64>::check_shape(&ball, &[3, 3]).is_ok());
    let cb = L2Ball::with_centre(1.0, array![0.0, 0.0].into_dyn()).unwrap();
    assert!(cb.check_shape(&[3]).is_err());
}

#[test]
fn l2_squared_moreau_and_optimality() {
    let p = L2Squared::new(2.5).unwrap();
    // conjugate ‖y‖²/(2λ): prox λ y / (λ + σ)
    check_moreau::<f64, _>("ridge f64", &p, &[7], |v, s| {
        v.mapv(|a| a * 2.5 / (2.5 + s))
    });
    check_moreau::<Complex64, _>("ridge c64", &p, &[7], |v, s| {
        v.mapv(|a| a * 2.5 / (2.5 + s))
    });
    check_optimal::<Complex64, _>("ridge c64", &p, &[7], 0.4);
}

#[test]
fn squared_distance_moreau_optimality_and_parallel_path() {
    let c = randn::<f64>(&[7], 40);
    let p = SquaredDistance::new(2.5, c.clone()).unwrap();
    // conjugate ‖w‖²/(2λ) + ⟨c, w⟩: prox (v − σc) λ/(λ + σ)
    check_moreau::<f64, _>("sqdist f64", &p, &[7], |v, s| {
        (v - &c.mapv(|a| a * s)).mapv(|a| a * 2.5 / (2.5 + s))
    });
    let cc = randn::<Complex64>(&[7], 41);
    let pc = SquaredDistance::new(0.7, cc.clone()).unwrap();
    check_moreau::<Complex64, _>("sqdist c64", &pc, &[7], |v, s| {
        (v - &cc.mapv(|a| a * s)).mapv(|a| a * 0.7 / (0.7 + s))
    });
    check_optimal::<Complex64, _>("sqdist c64", &pc, &[7], 0.4);
    // large (chunked, parallel) and strided paths against the closed form
    let n = 300_000;
    let cl = randn::<f64>(&[n], 42);
    let big = SquaredDistance::new(1.5, cl.clone()).unwrap();
    let v = randn::<f64>(&[n], 43);
    let got = big.prox(v.view(), 0.2);
    let want = (&v + &cl.mapv(|a| a * 0.3)).mapv(|a| a / 1.3);
    assert!(max_diff(&got, &want) < 1e-14);
    let val = big.value(v.view());
    let val_ref = 0.75 * (&v - &cl).mapv(|a| a * a).sum();
    assert!((val - val_ref).abs() < 1e-11 * val_ref);
    let m = randn::<f64>(&[40, 30], 44);
    let cm = randn::<f64>(&[40, 30], 45);
    let dm = SquaredDistance::new(1.0, cm.clone()).unwrap();
    let mt = m.t().to_owned(); // standard layout of the transpose
    let strided = dm.prox(mt.t(), 1.0); // a non-standard view
    assert!(max_diff(&strided, &((&m + &cm).mapv(|a| a / 2.0))) < 1e-15);
    assert!(dm.check_shape(&[30, 40]).is_err());
    assert!(SquaredDistance::new(-1.0, cm.clone()).is_err());
    assert!(SquaredDistance::new(1.0, cm.mapv(|_| f64::NAN)).is_err());
}

#[test]
fn separable_sum_moreau_and_optimality() {
    let make = || {
        SeparableSum::<f64>::new(
            12,
            vec![
                (0..4, Box::new(L1::new(0.5).unwrap()) as Box<dyn Prox<f64>>),
                (6..9, Box::new(NonNegative)),
                (9..12, Box::new(L2Ball::<f64>::new(1.0).unwrap())),
            ],
        )
        .unwrap()
    };
    let s = make();
    // conjugate: block by block; elements 4, 5 are unpenalised (R = 0 → R* = ι_{0}, prox 0)
    check_moreau::<f64, _>("separable sum", &s, &[3, 4], |v, sig| {
        let f = v.as_slice().unwrap();
        let mut o = vec![0.0; 12];
        for i in 0..4 {
            o[i] = f[i].clamp(-0.5, 0.5);
        }
        for i in 6..9 {
            o[i] = f[i].min(0.0);
        }
        let n = (9..12).map(|i| f[i] * f[i]).sum::<f64>().sqrt();
        for i in 9..12 {
            o[i] = if n > sig { f[i] * (1.0 - sig / n) } else { 0.0 };
        }
        ArrayD::from_shape_vec(IxDyn(&[3, 4]), o).unwrap()
    });
    check_optimal::<f64, _>("separable sum", &s, &[12], 0.8);
    assert!(!s.supports_complex());
    assert!(s.check_shape(&[3, 4]).is_ok());
    assert!(s.check_shape(&[13]).is_err());
    // a non-contiguous argument and output
    let big = randn::<f64>(&[12, 2], 4);
    let v = big.slice(ndarray::s![.., 0]).into_dyn();
    let mut out = ArrayD::<f64>::zeros(IxDyn(&[12, 2]));
    s.prox_into(v.view(), 0.8, out.slice_mut(ndarray::s![.., 1]).into_dyn());
    let want = s.prox(v.to_owned().view(), 0.8);
    assert_eq!(out.slice(ndarray::s![.., 1]).into_dyn(), want);
}

#[test]
fn constructors_validate() {
    let param = |r: Result<(), Error>| matches!(r, Err(Error::InvalidParameter { .. }));
    assert!(param(BoxConstraint::new(1.0, 0.0).map(|_| ())));
    assert!(param(BoxConstraint::new(f64::NAN, 0.0).map(|_| ())));
    assert!(param(
        BoxConstraint::new(f64::INFINITY, f64::INFINITY).map(|_| ())
    ));
    assert!(param(GroupL21::along_axis(-1.0, 0).map(|_| ())));
    assert!(param(
        GroupL21::from_lists(1.0, vec![vec![0, 1], vec![1]]).map(|_| ())
    ));
    assert!(param(
        GroupL21::from_lists(1.0, vec![vec![0, 3], vec![1]]).map(|_| ())
    ));
    assert!(param(
        GroupL21::from_lists(1.0, vec![vec![0], vec![]]).map(|_| ())
    ));
    let g = GroupL21::along_axis(1.0, 2).unwrap();
    assert!(Prox::<f64>::check_shape(&g, &[3, 3]).is_err());
    assert!(Prox::<f64>::check_shape(&g, &[3, 3, 2]).is_ok());
    let gl = GroupL21::from_lists(1.0, vec![vec![0, 2], vec![1]]).unwrap();
    assert!(matches!(
        Prox::<f64>::check_shape(&gl, &[4]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(param(L2Ball::<f64>::new(-1.0).map(|_| ())));
    assert!(matches!(
        L2Ball::with_centre(1.0, array![f64::NAN].into_dyn()),
        Err(Error::NonFinite { .. })
    ));
    assert!(param(L2Squared::new(-2.0).map(|_| ())));
    assert!(param(NonNegL1::new(-2.0).map(|_| ())));
    let blocks = |a: std::ops::Range<usize>, b: std::ops::Range<usize>| {
        vec![
            (a, Box::new(NonNegative) as Box<dyn Prox<f64>>),
            (b, Box::new(NonNegative) as Box<dyn Prox<f64>>),
        ]
    };
    assert!(param(SeparableSum::new(10, blocks(0..5, 4..8)).map(|_| ())));
    assert!(param(
        SeparableSum::new(10, blocks(0..5, 5..11)).map(|_| ())
    ));
    assert!(param(SeparableSum::new(10, blocks(0..5, 6..6)).map(|_| ())));
    assert!(SeparableSum::new(10, blocks(5..10, 0..5)).is_ok());
    // a block whose term rejects the block length
    let bad = vec![(
        0..3,
        Box::new(L1::weighted(array![1.0, 1.0].into_dyn()).unwrap()) as Box<dyn Prox<f64>>,
    )];
    assert!(matches!(
        SeparableSum::new(5, bad),
        Err(Error::ShapeMismatch { .. })
    ));
}
