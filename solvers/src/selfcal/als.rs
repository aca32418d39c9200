//! The naive baseline: alternating least squares on the bilinear model itself.

use super::system::Circ;
use super::{calibration_from_inverse, CalScalar, Method, Model, Problem, Solution};
use crate::error::{Error, Result};
use crate::scalar::{Real, Scalar};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array1, Array2};
use num_traits::{Float, One, Zero};

/// Parameters of [`alternating_least_squares`]. `Default`: 200 sweeps, relative tolerance
/// 1e-12 on the decrease of the misfit.
#[derive(Debug, Clone, Copy)]
pub struct AlsParams {
    /// Maximum number of sweeps (x-step + calibration step), ≥ 1.
    pub max_iters: usize,
    /// Stop when the misfit decreases by less than this fraction in a sweep.
    pub tol: f64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            max_iters: 200,
            tol: 1e-12,
        }
    }
}

/// Alternating least squares on `min_{d,x} Σ_l ‖y_l − cal_d(A_l x_l)‖²` — the naive
/// non-convex approach the paper's linear methods are compared against.
///
/// Starts from `d = 1` (gains) or `f = δ` (filter) and alternates the two exact
/// least-squares sub-problems: the signals given the calibration (dense QR of
/// `diag(d) A_l` or `circ(f) C_l`), and the calibration given the signals (closed form,
/// per sensor `d_i = Σ_l conj(u_{l,i}) y_{l,i} / Σ_l |u_{l,i}|²` with `u_l = A_l x_l`, or per
/// frequency for the filter). The subspace `B`, if any, is ignored. Each sweep does not
/// increase the misfit, but the iteration can stall in a local minimum or saddle: this is
/// what the comparison shows. The output is normalised like [`super::Constraint::Mean`]
/// (`Σ s_i = m`) so its errors compare with those of [`super::solve`].
pub fn alternating_least_squares<T: CalScalar>(
    problem: &Problem<T>,
    params: &AlsParams,
) -> Result<Solution<T>> {
    if params.max_iters == 0 {
        return Err(Error::param("max_iters", "must be at least 1"));
    }
    if !(params.tol.is_finite() && params.tol >= 0.0) {
        return Err(Error::param("tol", "must be finite and non-negative"));
    }
    let model = problem.model();
    let (p, m, n, _) = problem.dims();
    let y = problem.y();
    let a = problem.matrices();
    let circ = Circ::<<T as Scalar>::Real>::new(m);
    let yh: Vec<_> = (0..p)
        .map(|l| circ.dft(&y.row(l).to_vec()))
        .collect::<Vec<_>>();
    // calibration: gains d, or filter f
    let mut d = Array1::<T>::zeros(m);
    match model {
        Model::Diverse => d[0] = T::one(),
        _ => d.fill(T::one()),
    }
    let xr = if model == Model::Repeated { 1 } else { p };
    let mut x = Array2::<T>::zeros((xr, n));
    let amat = |l: usize| {
        a.index_axis(
            ndarray::Axis(0),
            if model == Model::Snapshots { 0 } else { l },
        )
    };
    let mut last = f64::INFINITY;
    for _ in 0..params.max_iters {
        // x-step
        match model {
            Model::Repeated => {
                let mm = Mat::<T>::from_fn(p * m, n, |r, j| d[r % m] * a[[r / m, r % m, j]]);
                let rhs = Mat::<T>::from_fn(p * m, 1, |r, _| y[[r / m, r % m]]);
                let sol = mm.qr().solve_lstsq(&rhs);
                for j in 0..n {
                    x[[0, j]] = sol[(j, 0)];
                }
            }
            Model::Snapshots => {
                let mm = Mat::<T>::from_fn(m, n, |i, j| d[i] * a[[0, i, j]]);
                let rhs = Mat::<T>::from_fn(m, p, |i, l| y[[l, i]]);
                let sol = mm.qr().solve_lstsq(&rhs);
                for l in 0..p {
                    for j in 0..n {
                        x[[l, j]] = sol[(j, l)];
                    }
                }
            }
            Model::Diverse => {
                for l in 0..p {
                    let al = amat(l);
                    let mm = Mat::<T>::from_fn(m, n, |i, j| {
                        (0..m).map(|t| d[(i + m - t) % m] * al[[t, j]]).sum()
                    });
                    let rhs = Mat::<T>::from_fn(m, 1, |i, _| y[[l, i]]);
                    let sol = mm.qr().solve_lstsq(&rhs);
                    for j in 0..n {
                        x[[l, j]] = sol[(j, 0)];
                    }
                }
            }
        }
        // calibration step
        let u: Vec<Array1<T>> = (0..p)
            .map(|l| amat(l).dot(&x.row(if xr == 1 { 0 } else { l })))
            .collect();
        let mut misfit = 0.0;
        match model {
            Model::Diverse => {
                let uh: Vec<_> = u.iter().map(|v| circ.dft(v.as_slice().unwrap())).collect();
                let mut fh = Vec::with_capacity(m);
                for kf in 0..m {
                    let mut num = num_complex::Complex::<<T as Scalar>::Real>::zero();
                    let mut den = <T as Scalar>::Real::zero();
                    for l in 0..p {
                        num += uh[l][kf].conj() * yh[l][kf];
                        den += uh[l][kf].norm_sqr();
                    }
                    fh.push(if den > <T as Scalar>::Real::zero() {
                        num / den
                    } else {
                        num
                    });
                }
                for l in 0..p {
                    for kf in 0..m {
                        misfit += (yh[l][kf] - fh[kf] * uh[l][kf])
                            .norm_sqr()
                            .to_f64_lossless();
                    }
                }
                misfit /= m as f64;
                let mut out = vec![T::zero(); m];
                circ.idft_into(fh, &mut out);
                d = Array1::from(out);
            }
            _ => {
                for i in 0..m {
                    let mut num = T::zero();
                    let mut den = <T as Scalar>::Real::zero();
                    for l in 0..p {
                        num += u[l][i].conj() * y[[l, i]];
                        den += u[l][i].abs2();
                    }
                    d[i] = if den > <T as Scalar>::Real::zero() {
                        num * T::from_real(<T as Scalar>::Real::one() / den)
                    } else {
                        T::one()
                    };
                    for l in 0..p {
                        misfit += (y[[l, i]] - d[i] * u[l][i]).abs2().to_f64_lossless();
                    }
                }
            }
        }
        let done = last.is_finite() && (last - misfit) <= params.tol * last;
        last = misfit;
        if done || misfit == 0.0 {
            break;
        }
    }
    let s = calibration_from_inverse(model, &d)?;
    // normalise Σ s = m (as the Mean constraint), carrying the scale to x
    let sum: T = s.iter().copied().sum();
    let scale = if sum.modulus() > <T as Scalar>::Real::zero() {
        T::from_f64(m as f64) / sum
    } else {
        T::one()
    };
    let s = s.mapv(|v| v * scale);
    let x = x.mapv(|v| v * scale);
    let d = calibration_from_inverse(model, &s)?;
    Ok(Solution {
        model,
        h: s.clone(),
        s,
        d,
        x,
        sigma: <T as Scalar>::Real::nan(),
        method: Method::Lsq,
        dense: true,
        iterations: 0,
        outer_iterations: 0,
    })
}
