//! Criterion benches of the FFT convolution and the starlet transform.
//!
//! `cargo bench -p sparseinv-solvers --bench conv -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::ArrayD;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator, Starlet};
use sparseinv_solvers::testing::randn;
use std::time::Duration;

fn conv2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_same_apply_adjoint_f64");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [512usize, 2048] {
        for k in [15usize, 63] {
            let kernel = randn::<f64>(&[k, k], 1)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            let op = Conv2d::new([n, n], kernel.view(), Boundary::Same).unwrap();
            let x = randn::<f64>(&[n, n], 2);
            let mut y = ArrayD::<f64>::zeros(vec![n, n]);
            let mut z = ArrayD::<f64>::zeros(vec![n, n]);
            g.bench_function(format!("{n}x{n}_k{k}"), |b| {
                b.iter(|| {
                    op.apply_into(x.view(), y.view_mut());
                    op.adjoint_into(y.view(), z.view_mut());
                })
            });
        }
    }
    g.finish();
}

/// The Richardson–Lucy peer configuration (1024², 31² PSF, zero boundary): one forward and
/// one adjoint convolution, in both precisions, blocked (the default) and on one grid.
fn conv2d_precision(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_same_1024_k31_apply_adjoint");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (n, k) = (1024usize, 31usize);
    let kernel = randn::<f64>(&[k, k], 1)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let x = randn::<f64>(&[n, n], 2);
    let op = Conv2d::new([n, n], kernel.view(), Boundary::Same).unwrap();
    let mut y = ArrayD::<f64>::zeros(vec![n, n]);
    let mut z = ArrayD::<f64>::zeros(vec![n, n]);
    g.bench_function("f64", |b| {
        b.iter(|| {
            op.apply_into(x.view(), y.view_mut());
            op.adjoint_into(y.view(), z.view_mut());
        })
    });
    let whole = op.clone().without_blocking();
    g.bench_function("f64_whole_grid", |b| {
        b.iter(|| {
            whole.apply_into(x.view(), y.view_mut());
            whole.adjoint_into(y.view(), z.view_mut());
        })
    });
    let kernel32 = kernel.mapv(|v| v as f32);
    let x32 = x.mapv(|v| v as f32);
    let op32 = Conv2d::new([n, n], kernel32.view(), Boundary::Same).unwrap();
    let mut y32 = ArrayD::<f32>::zeros(vec![n, n]);
    let mut z32 = ArrayD::<f32>::zeros(vec![n, n]);
    g.bench_function("f32", |b| {
        b.iter(|| {
            op32.apply_into(x32.view(), y32.view_mut());
            op32.adjoint_into(y32.view(), z32.view_mut());
        })
    });
    g.finish();
}

fn starlet(c: &mut Criterion) {
    let mut g = c.benchmark_group("starlet_forward_f64");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 2048;
    let st = Starlet::<f64>::new([n, n], 5).unwrap();
    let x = randn::<f64>(&[n, n], 3);
    let mut w = ArrayD::<f64>::zeros(vec![6, n, n]);
    g.bench_function("2048x2048_J5", |b| {
        b.iter(|| st.apply_into(x.view(), w.view_mut()))
    });
    g.finish();
}

criterion_group!(benches, conv2d, conv2d_precision, starlet);
criterion_main!(benches);
