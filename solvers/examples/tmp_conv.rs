use ndarray::{Array2, ArrayD};
use sparseinv_solvers::deconv::{richardson_lucy, RlParams};
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::testing::randn;
fn main() {
    let (n, k) = (1024usize, 31usize);
    let kernel = randn::<f64>(&[k, k], 1)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .mapv(f64::abs);
    let x = randn::<f64>(&[n, n], 2).mapv(|v| v.abs() + 1.0);
    for blocked in [true, false] {
        let mut op = Conv2d::new([n, n], kernel.view(), Boundary::Same).unwrap();
        if !blocked {
            op = op.without_blocking();
        }
        let mut y = ArrayD::<f64>::zeros(vec![n, n]);
        let mut z = ArrayD::<f64>::zeros(vec![n, n]);
        let t = std::time::Instant::now();
        for _ in 0..30 {
            op.apply_into(x.view(), y.view_mut());
            op.adjoint_into(y.view(), z.view_mut());
        }
        let a = t.elapsed().as_secs_f64() / 30.0 * 1e3;
        let x2 = x.view().into_dimensionality::<ndarray::Ix2>().unwrap();
        let mut y2 = Array2::<f64>::zeros((n, n));
        let mut z2 = Array2::<f64>::zeros((n, n));
        let t = std::time::Instant::now();
        for _ in 0..30 {
            op.apply_into_then(x2, y2.view_mut(), &|_, _, s| {
                for v in s.iter_mut() {
                    *v += 1.0;
                }
            })
            .unwrap();
            op.adjoint_into_then(y2.view(), z2.view_mut(), &|_, _, s| {
                for v in s.iter_mut() {
                    *v *= 0.5;
                }
            })
            .unwrap();
        }
        let b = t.elapsed().as_secs_f64() / 30.0 * 1e3;
        println!("blocked {blocked}: pair {a:.2} ms, pair with epilogues {b:.2} ms");
    }
    let y = x
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .to_owned();
    let p = RlParams {
        normalize: false,
        init: Some(0.5),
        positivity: false,
        ..RlParams::default()
    };
    let t = std::time::Instant::now();
    let _ = richardson_lucy(y.view(), kernel.view(), None, p.clone(), 30, 0.0, None).unwrap();
    println!("rl f64 {:.2} ms/it", t.elapsed().as_secs_f64() / 30.0 * 1e3);
    let (y32, k32) = (y.mapv(|v| v as f32), kernel.mapv(|v| v as f32));
    let t = std::time::Instant::now();
    let _ = richardson_lucy(y32.view(), k32.view(), None, p, 30, 0.0, None).unwrap();
    println!("rl f32 {:.2} ms/it", t.elapsed().as_secs_f64() / 30.0 * 1e3);
}
