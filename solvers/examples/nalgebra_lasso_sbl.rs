//! Sparse recovery on nalgebra types: a Lasso solved by FISTA with the `DMatrix` itself as
//! the operator, and sparse Bayesian learning on the same problem through a zero-copy
//! ndarray view of the matrix; both print the support they recover next to the truth.
//!
//! Run: `cargo run -p sparseinv-solvers --release --example nalgebra_lasso_sbl`

use ndarray::Array2;
use sparseinv_solvers::op::nalgebra::nalgebra::{DMatrix, DVector};
use sparseinv_solvers::op::nalgebra::{array_into_dvector, dmatrix_view, dvector_view};
use sparseinv_solvers::op::{op_norm, LinearOperator, NormEstimate};
use sparseinv_solvers::prox::L1;
use sparseinv_solvers::proximal::{fista, Params};
use sparseinv_solvers::random::randn;
use sparseinv_solvers::sbl::{sbl, SblParams};

fn support(x: impl Iterator<Item = f64>, rel: f64) -> Vec<usize> {
    let v: Vec<f64> = x.collect();
    let max = v.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    (0..v.len()).filter(|&i| v[i].abs() > rel * max).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // m = 40 measurements of an n = 100 vector with 5 non-zeros, Gaussian dictionary
    let (m, n) = (40, 100);
    let a = DMatrix::from_iterator(
        m,
        n,
        randn::<f64>(&[m * n], 1)
            .iter()
            .map(|v| v / (m as f64).sqrt()),
    );
    let truth_support = [7usize, 23, 51, 64, 90];
    let mut x_true = DVector::<f64>::zeros(n);
    for (k, &i) in truth_support.iter().enumerate() {
        x_true[i] = if k % 2 == 0 {
            1.5 + k as f64 * 0.25
        } else {
            -1.0 - k as f64 * 0.2
        };
    }
    let noise = randn::<f64>(&[m], 2);
    let y: DVector<f64> = &a * &x_true + DVector::from_iterator(m, noise.iter().map(|e| 0.01 * e));

    // --- Lasso by FISTA: the DMatrix is the operator (no copy of A)
    let lambda = 0.02;
    let params = Params {
        stop: sparseinv_solvers::iter::StopCriteria {
            max_iters: 5000,
            rel_tol: 1e-9,
            ..Default::default()
        },
        ..Params::default()
    };
    let (x_lasso, report) = fista(&a, dvector_view(&y).into_dyn(), &L1::new(lambda)?, &params)?;
    let x_lasso = array_into_dvector(x_lasso.into_dimensionality()?);
    println!(
        "‖A‖ = {:.3}; column norms² of A (first 3): {:?}",
        op_norm(&a, NormEstimate::default()),
        &a.column_norms_sq()?.as_slice().unwrap()[..3]
    );
    println!(
        "Lasso (λ = {lambda}, FISTA, {} iterations): support {:?}",
        report.iterations,
        support(x_lasso.iter().copied(), 0.1)
    );

    // --- SBL: takes ndarray views; the DMatrix is viewed in place (Fortran strides)
    let y2 = Array2::from_shape_vec((m, 1), y.as_slice().to_vec())?;
    let (res, sbl_report) = sbl(
        dmatrix_view(&a),
        y2.view(),
        &SblParams::default(),
        &mut sparseinv_solvers::iter::NoObserver,
    )?;
    let x_sbl = DVector::from_iterator(n, res.mean.column(0).iter().copied());
    println!(
        "SBL ({} iterations, σ² = {:.2e}): support {:?}",
        sbl_report.iterations,
        res.noise_var,
        support(x_sbl.iter().copied(), 0.1)
    );
    println!("truth:                      support {truth_support:?}");
    let err = |x: &DVector<f64>| (x - &x_true).norm() / x_true.norm();
    println!(
        "relative errors: Lasso {:.3e} (biased by λ), SBL {:.3e}",
        err(&x_lasso),
        err(&x_sbl)
    );
    Ok(())
}
