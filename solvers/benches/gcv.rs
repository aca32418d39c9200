//! Criterion bench of the GCV weight choice ([`gcv_select`]) as the `deconvolve` pipeline
//! runs it for Wiener: the central window (512² by default, `GCV_WINDOW`; 1024² for scale)
//! under the periodic-plus-smooth split of an untiled run (`smooth`) and on the tapered
//! reflect grid of a tiled one ([`Boundary::Reflect`]: three PSF extents a side, to a fast
//! length), a 31² Gaussian PSF, and the three regularisers.
//!
//! `cargo bench -p sparseinv-solvers --bench gcv`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use sparseinv_solvers::deconv::{gcv_select, Padding, Regulariser};
use sparseinv_solvers::op::Boundary;
use sparseinv_solvers::testing::randn;
use std::time::Duration;

fn gcv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gcv_select_wiener");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let k = 31usize;
    let s2 = 2.0 * 3.0f64 * 3.0;
    let mut psf = Array2::from_shape_fn((k, k), |(i, j)| {
        let (a, b) = (i as f64 - 15.0, j as f64 - 15.0);
        (-(a * a + b * b) / s2).exp()
    });
    let t = psf.sum();
    psf /= t;
    for n in [512usize, 1024] {
        let y = randn::<f64>(&[n, n], 3)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .mapv(|v| 100.0 + 10.0 * v);
        let regs = [
            Regulariser::Identity,
            Regulariser::Gradient,
            Regulariser::Laplacian,
        ];
        for (name, padding) in [
            ("smooth", Padding::periodic_smooth()),
            (
                "reflect",
                Padding::for_boundary(Boundary::Reflect, (n, n), (k, k)).unwrap(),
            ),
        ] {
            g.bench_function(format!("{n}x{n}_k{k}_3regs_{name}"), |b| {
                b.iter(|| gcv_select(y.view(), psf.view(), &regs, &padding).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, gcv);
criterion_main!(benches);
