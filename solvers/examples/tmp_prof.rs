use ndarray::Array2;
use sparseinv_solvers::deconv::{tikhonov, Regulariser};
use sparseinv_solvers::op::{Boundary, Conv2d};
use std::time::Instant;
fn main() {
    let n = 2048;
    let y = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 101) as f64);
    let k = Array2::from_shape_fn((31, 31), |(i, j)| {
        (-(((i as f64 - 15.0).powi(2) + (j as f64 - 15.0).powi(2)) / 12.0)).exp()
    });
    for _ in 0..3 {
        let t = Instant::now();
        let c = Conv2d::<f64>::new([n, n], k.view(), Boundary::Circular).unwrap();
        let t1 = t.elapsed().as_secs_f64();
        let mut out = Array2::<f64>::zeros((n, n));
        let t = Instant::now();
        c.apply_fourier_filter_indexed_into(y.view(), out.view_mut(), &|_, _, h| {
            h.conj() / (h.norm_sqr() + 0.01)
        })
        .unwrap();
        let t2 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        c.apply_fourier_filter_indexed_into(y.view(), out.view_mut(), &|_, _, h| {
            h.conj() / (h.norm_sqr() + 0.01)
        })
        .unwrap();
        let t3 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = tikhonov(y.view(), k.view(), Regulariser::Laplacian, 0.01).unwrap();
        let t4 = t.elapsed().as_secs_f64();
        println!("new {t1:.4} filter {t2:.4} filter-again {t3:.4} tikhonov {t4:.4}");
    }
}
