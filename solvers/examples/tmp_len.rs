use ndarray::ArrayD;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::testing::randn;
fn main() {
    for n in [1024usize, 2048] {
        for k in [7usize, 15, 31, 47, 63, 95, 127] {
            let kernel = randn::<f64>(&[k, k], 1)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            let x = randn::<f64>(&[n, n], 2);
            let mut r = vec![];
            for blocked in [true, false] {
                let mut op = Conv2d::new([n, n], kernel.view(), Boundary::Same).unwrap();
                if !blocked {
                    op = op.without_blocking();
                }
                let mut y = ArrayD::<f64>::zeros(vec![n, n]);
                let mut z = ArrayD::<f64>::zeros(vec![n, n]);
                op.apply_into(x.view(), y.view_mut());
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    op.apply_into(x.view(), y.view_mut());
                    op.adjoint_into(y.view(), z.view_mut());
                }
                r.push(t.elapsed().as_secs_f64() / 5.0 * 1e3);
            }
            println!("n {n} k {k}: blocked {:.1} ms whole {:.1} ms", r[0], r[1]);
        }
    }
}
