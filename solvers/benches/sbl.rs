//! Criterion benches of SBL: one KSBL trial of the paper's 3375-dimensional IRS-MIMO problem
//! (AM and SVD M-steps, 150-iteration cap) and Kronecker OMP on the same data; one classic
//! (EM) SBL trial on a 360 × 810 complex Gaussian dictionary (150-iteration cap, both E-step
//! formulations: measurement space while more than about 1.81 M atoms are active, coefficient
//! space with the cached Gram matrix after).
//! `cargo bench -p sparseinv-solvers --bench sbl -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array1, Array2, Axis, Ix1, Ix2};
use num_complex::Complex64;
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::op::{Kronecker, LinearOperator};
use sparseinv_solvers::sbl::{
    kron_omp, ksbl, sbl, KsblMethod, KsblParams, NoiseModel, OmpParams, SblParams,
};
use sparseinv_solvers::testing::randn;

fn problem(m1: usize) -> (Vec<Array2<Complex64>>, Array1<Complex64>, f64) {
    let ms = [m1, 12, 15];
    let f: Vec<Array2<Complex64>> = ms
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            randn::<Complex64>(&[m, 15], i as u64)
                .into_dimensionality::<Ix2>()
                .unwrap()
                / (2.0 * m as f64).sqrt()
        })
        .collect();
    let mut x = Array1::<Complex64>::zeros(3375);
    for a in [1usize, 7, 11] {
        for b in [0usize, 4, 13] {
            for c in [2usize, 5, 9] {
                x[a * 225 + b * 15 + c] = Complex64::new(1.0 + a as f64 / 10.0, -(b as f64) / 10.0);
            }
        }
    }
    let op = Kronecker::new(f.clone()).unwrap();
    let clean = op
        .apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap();
    let sigma2 = clean.iter().map(|v| v.norm_sqr()).sum::<f64>() / clean.len() as f64 / 100.0; // 20 dB
    let n = randn::<Complex64>(&[clean.len()], 99)
        .into_dimensionality::<Ix1>()
        .unwrap()
        * (sigma2 / 2.0).sqrt();
    (f, clean + n, sigma2)
}

fn bench(c: &mut Criterion) {
    for m1 in [6usize, 14] {
        let (f, y, s2) = problem(m1);
        for (name, method) in [("am", KsblMethod::Am), ("svd", KsblMethod::Svd)] {
            let p = KsblParams {
                method,
                noise: NoiseModel::Fixed(s2),
                stop: StopCriteria {
                    max_iters: 150,
                    ..StopCriteria::default()
                },
                ..Default::default()
            };
            c.bench_function(&format!("ksbl_{name}_trial_3375_m1_{m1}"), |b| {
                b.iter(|| ksbl(&f, y.view(), &p, &mut NoObserver).unwrap())
            });
        }
        let p = OmpParams {
            residual_tol: y.len() as f64 * s2,
            max_atoms: None,
            ..Default::default()
        };
        c.bench_function(&format!("kron_omp_trial_3375_m1_{m1}"), |b| {
            b.iter(|| kron_omp(&f, y.view(), &p).unwrap())
        });
    }
}

fn bench_classic(c: &mut Criterion) {
    let (m, n) = (360, 810);
    let phi = randn::<Complex64>(&[m, n], 5)
        .into_dimensionality::<Ix2>()
        .unwrap()
        / (2.0 * m as f64).sqrt();
    // 20 nonzeros
    let mut x = Array1::<Complex64>::zeros(n);
    for (i, j) in (0..n).step_by(41).enumerate() {
        x[j] = Complex64::new(1.0 + 0.1 * i as f64, -0.5);
    }
    let clean = phi.dot(&x);
    let sigma2 = clean.iter().map(|v| v.norm_sqr()).sum::<f64>() / m as f64 / 100.0; // 20 dB
    let y = clean
        + randn::<Complex64>(&[m], 6)
            .into_dimensionality::<Ix1>()
            .unwrap()
            * (sigma2 / 2.0).sqrt();
    let y = y.insert_axis(Axis(1));
    let p = SblParams {
        stop: StopCriteria {
            max_iters: 150,
            ..StopCriteria::default()
        },
        noise: NoiseModel::Fixed(sigma2),
        ..Default::default()
    };
    let mut g = c.benchmark_group("sbl_em");
    g.sample_size(10);
    g.bench_function("sbl_em_trial_360x810", |b| {
        b.iter(|| sbl(phi.view(), y.view(), &p, &mut NoObserver).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench, bench_classic);
criterion_main!(benches);
