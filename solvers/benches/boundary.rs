//! Criterion bench of the Fourier filters' boundaries (issue "speed where users feel it",
//! item 2): the Wiener filter of a 2048² single-precision image with a 31² PSF and a fixed
//! balance under
//!
//! - the periodic model (`Boundary::Circular`: the image's own grid, the floor of any
//!   boundary handling: one forward and one inverse real FFT of the image plus the PSF's);
//! - the default reflect boundary (`Boundary::Reflect`: the tapered mirror continuation by
//!   three PSF extents a side, to a fast FFT length, 2304²);
//! - the doubled mirror grid it replaced (an explicit half-sample `Padding` to 4096²);
//! - the periodic-plus-smooth split (`Padding::periodic_smooth()`, the pipeline's default
//!   `smooth` boundary of the Fourier methods): the image's own grid, one FFT pair plus two
//!   1-D FFTs of the edges.
//!
//! The ratio reflect / periodic is the cost of the boundary; the target was ≤ 1.3×.
//!
//! `cargo bench -p sparseinv-solvers --bench boundary`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use sparseinv_solvers::deconv::{wiener_bounded, wiener_padded, Balance, Extension, Padding};
use sparseinv_solvers::fft::good_fft_len;
use sparseinv_solvers::op::Boundary;
use sparseinv_solvers::testing::randn;
use std::time::Duration;

fn boundary(c: &mut Criterion) {
    let mut g = c.benchmark_group("wiener_2048_k31_f32");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let (n, k) = (2048usize, 31usize);
    let s2 = 2.0 * 3.0f32 * 3.0;
    let mut psf = Array2::from_shape_fn((k, k), |(i, j)| {
        let (a, b) = (i as f32 - 15.0, j as f32 - 15.0);
        (-(a * a + b * b) / s2).exp()
    });
    let t = psf.sum();
    psf /= t;
    let y = randn::<f32>(&[n, n], 3)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .mapv(|v| 100.0 + 10.0 * v);
    let bal = Balance::Fixed(1e-3);
    g.bench_function("periodic", |b| {
        b.iter(|| wiener_bounded(y.view(), psf.view(), bal, Boundary::Circular).unwrap())
    });
    g.bench_function("reflect_default", |b| {
        b.iter(|| wiener_bounded(y.view(), psf.view(), bal, Boundary::Reflect).unwrap())
    });
    let ps = Padding::periodic_smooth();
    g.bench_function("periodic_smooth", |b| {
        b.iter(|| wiener_padded(y.view(), psf.view(), bal, &ps).unwrap())
    });
    let p = good_fft_len(2 * n);
    let doubled = Padding::symmetric(Extension::HalfSample, (p - n) / 2, (p - n) / 2);
    g.bench_function("doubled_mirror", |b| {
        b.iter(|| wiener_padded(y.view(), psf.view(), bal, &doubled).unwrap())
    });
    g.finish();
}

criterion_group!(benches, boundary);
criterion_main!(benches);
