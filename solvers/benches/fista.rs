//! FISTA on a dense 2000 × 10000 problem: one iteration, and the two matrix–vector products
//! that dominate it, with three kernels: ours ([`Matrix`], column-major storage), faer's
//! `matmul` (rayon) and ndarray's `dot`.
//!
//! Run: `cargo bench -p sparseinv-solvers --bench fista -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array1, ArrayD, ArrayViewD, ArrayViewMutD, Ix2, Zip};
use sparseinv_solvers::iter::IterativeSolver;
use sparseinv_solvers::op::{LinearOperator, Matrix};
use sparseinv_solvers::prox::Prox;
use sparseinv_solvers::proximal::{Params, ProximalGradient};
use sparseinv_solvers::testing::randn;

const M: usize = 2000;
const N: usize = 10000;

/// Soft thresholding (the l1 prox) for the benchmark.
struct Soft(f64);
impl Prox<f64> for Soft {
    fn value(&self, x: ArrayViewD<f64>) -> f64 {
        self.0 * x.iter().map(|v| v.abs()).sum::<f64>()
    }
    fn prox_into(&self, v: ArrayViewD<f64>, tau: f64, mut out: ArrayViewMutD<f64>) {
        let t = tau * self.0;
        Zip::from(&mut out)
            .and(&v)
            .for_each(|o, &v| *o = v.signum() * (v.abs() - t).max(0.0));
    }
}

fn bench(c: &mut Criterion) {
    let a = randn::<f64>(&[M, N], 1)
        .into_dimensionality::<Ix2>()
        .unwrap()
        / (M as f64).sqrt();
    let op = Matrix::new(a);
    let x = randn::<f64>(&[N], 2);
    let yv = randn::<f64>(&[M], 3);
    let mut out_m = ArrayD::<f64>::zeros(ndarray::IxDyn(&[M]));
    let mut out_n = ArrayD::<f64>::zeros(ndarray::IxDyn(&[N]));

    let mut g = c.benchmark_group("matvec_2000x10000");
    g.sample_size(10);
    g.bench_function("ours_apply_dense_x", |b| {
        b.iter(|| op.apply_into(x.view(), out_m.view_mut()))
    });
    g.bench_function("ours_adjoint", |b| {
        b.iter(|| op.adjoint_into(yv.view(), out_n.view_mut()))
    });
    // faer on the same column-major storage
    let av = op.view();
    let slice = av.t().to_owned(); // row-major Aᵀ == column-major A
    let s = slice.as_slice().unwrap();
    let fa = faer::MatRef::from_column_major_slice(s, M, N);
    let xs = x.as_slice().unwrap();
    let ys = yv.as_slice().unwrap();
    g.bench_function("faer_apply_dense_x", |b| {
        b.iter(|| {
            let mut dst = faer::Mat::<f64>::zeros(M, 1);
            faer::linalg::matmul::matmul(
                dst.as_mut(),
                faer::Accum::Replace,
                fa,
                faer::MatRef::from_column_major_slice(xs, N, 1),
                1.0,
                faer::Par::rayon(0),
            );
            dst
        })
    });
    g.bench_function("faer_adjoint", |b| {
        b.iter(|| {
            let mut dst = faer::Mat::<f64>::zeros(N, 1);
            faer::linalg::matmul::matmul(
                dst.as_mut(),
                faer::Accum::Replace,
                fa.transpose(),
                faer::MatRef::from_column_major_slice(ys, M, 1),
                1.0,
                faer::Par::rayon(0),
            );
            dst
        })
    });
    // ndarray's dot (single-threaded, matrixmultiply-free gemv path without BLAS)
    let x1: Array1<f64> = x.clone().into_dimensionality().unwrap();
    let y1: Array1<f64> = yv.clone().into_dimensionality().unwrap();
    g.bench_function("ndarray_apply_dense_x", |b| b.iter(|| av.dot(&x1)));
    g.bench_function("ndarray_adjoint", |b| b.iter(|| av.t().dot(&y1)));
    g.finish();

    // one FISTA iteration on a 50-sparse problem, after 20 warm-up iterations
    let mut xt = ArrayD::<f64>::zeros(ndarray::IxDyn(&[N]));
    for i in 0..50 {
        xt[(i * 197) % N] = if i % 2 == 0 { 1.0 } else { -1.0 };
    }
    let y = op.apply(xt.view()).unwrap() + randn::<f64>(&[M], 4) * 0.01;
    let lmax = op
        .adjoint(y.view())
        .unwrap()
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let prox = Soft(0.1 * lmax);
    let params = Params::<f64>::default();
    let mut solver = ProximalGradient::new(&op, y.view(), &prox, &params, None).unwrap();
    for _ in 0..20 {
        solver.step().unwrap();
    }
    let mut g = c.benchmark_group("fista_2000x10000");
    g.sample_size(10);
    g.bench_function("one_iteration_l1", |b| b.iter(|| solver.step().unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
