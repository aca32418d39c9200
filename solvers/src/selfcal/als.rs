//! The naive baseline: alternating least squares on the bilinear model itself.

use super::system::Circ;
use super::{calibration_from_inverse, Method, Model, Problem, Solution};
use crate::dense::DenseScalar;
use crate::error::Result;
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo, StopCriteria};
use crate::krylov::stop_as;
use crate::scalar::{real, Real, Scalar};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array1, Array2};
use num_complex::Complex;
use num_traits::{Float, One, Zero};

/// Parameters of [`alternating_least_squares`]. `Default`: 200 sweeps, stop when a sweep
/// decreases the misfit by at most the fraction 1e-12 (or the misfit reaches 0).
#[derive(Debug, Clone, Copy)]
pub struct AlsParams {
    /// Stopping rules of the sweeps. The objective is the misfit
    /// `Σ_l ‖y_l − cal_d(A_l x_l)‖²`, and the relative change reported to the driver is its
    /// relative decrease `(f_{k−1} − f_k) / f_{k−1}` (the iterate `(d, x)` is only defined up
    /// to the scale `(α d, x/α)`, so its own change would not measure progress). Default
    /// [`AlsParams::default_stop`].
    pub stop: StopCriteria<f64>,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            stop: Self::default_stop(),
        }
    }
}

impl AlsParams {
    /// `max_iters = 200`, `rel_tol = 1e-12` (on the relative misfit decrease, from the second
    /// sweep), `objective_target = Some(0)` (an exact fit), the rest as in
    /// [`StopCriteria::default`].
    pub fn default_stop() -> StopCriteria<f64> {
        StopCriteria {
            max_iters: 200,
            rel_tol: 1e-12,
            objective_target: Some(0.0),
            ..StopCriteria::default()
        }
    }
}

/// The alternating-least-squares state machine of [`alternating_least_squares`]: one
/// [`step`](IterativeSolver::step) is one sweep (signals given the calibration, then the
/// calibration given the signals). Its iterate is `(d, x)` stacked in one flat vector: the
/// `m` calibration entries (gains, or filter taps for `Diverse`) followed by the signals
/// row by row, unnormalised.
pub struct Als<'a, T: DenseScalar> {
    problem: &'a Problem<T>,
    circ: Circ<<T as Scalar>::Real>,
    yh: Vec<Vec<Complex<<T as Scalar>::Real>>>,
    d: Array1<T>,
    x: Array2<T>,
    z: Array1<T>,
    last: f64,
}

impl<'a, T: DenseScalar> Als<'a, T> {
    /// Start from `d = 1` (gains) or `f = δ` (filter) and `x = 0`.
    pub fn new(problem: &'a Problem<T>) -> Self {
        let model = problem.model();
        let (p, m, n, _) = problem.dims();
        let y = problem.y();
        let circ = Circ::<<T as Scalar>::Real>::new(m);
        let yh: Vec<_> = (0..p).map(|l| circ.dft(&y.row(l).to_vec())).collect();
        let mut d = Array1::<T>::zeros(m);
        match model {
            Model::Diverse => d[0] = T::one(),
            _ => d.fill(T::one()),
        }
        let xr = if model == Model::Repeated { 1 } else { p };
        let x = Array2::<T>::zeros((xr, n));
        let z = d.iter().chain(x.iter()).copied().collect();
        Als {
            problem,
            circ,
            yh,
            d,
            x,
            z,
            last: f64::INFINITY,
        }
    }

    /// The current calibration (gains `d`, or the filter `f`).
    pub fn calibration(&self) -> &Array1<T> {
        &self.d
    }

    /// The current signals, one row per block.
    pub fn signals(&self) -> &Array2<T> {
        &self.x
    }
}

impl<T: DenseScalar> IterativeSolver for Als<'_, T> {
    type Real = <T as Scalar>::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.z.view().into_dyn()))
    }

    fn step(&mut self) -> Result<StepInfo<Self::Real>> {
        let problem = self.problem;
        let model = problem.model();
        let (p, m, n, _) = problem.dims();
        let y = problem.y();
        let a = problem.matrices();
        let circ = &self.circ;
        let yh = &self.yh;
        let xr = self.x.nrows();
        let d = &mut self.d;
        let x = &mut self.x;
        let amat = |l: usize| {
            a.index_axis(
                ndarray::Axis(0),
                if model == Model::Snapshots { 0 } else { l },
            )
        };
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
                *d = Array1::from(out);
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
        let last = self.last;
        self.last = misfit;
        let rel = if last.is_finite() && last > 0.0 {
            (last - misfit) / last
        } else {
            1.0
        };
        self.z = d.iter().chain(x.iter()).copied().collect();
        Ok(StepInfo {
            objective: Some(real(misfit)),
            rel_change: real(rel),
            residual: None,
        })
    }
}

/// Alternating least squares on `min_{d,x} Σ_l ‖y_l − cal_d(A_l x_l)‖²` — the naive
/// non-convex approach the paper's linear methods are compared against.
///
/// Starts from `d = 1` (gains) or `f = δ` (filter) and alternates the two exact
/// least-squares sub-problems ([`Als`]): the signals given the calibration (dense QR of
/// `diag(d) A_l` or `circ(f) C_l`), and the calibration given the signals (closed form,
/// per sensor `d_i = Σ_l conj(u_{l,i}) y_{l,i} / Σ_l |u_{l,i}|²` with `u_l = A_l x_l`, or per
/// frequency for the filter). The subspace `B`, if any, is ignored. Each sweep does not
/// increase the misfit, but the iteration can stall in a local minimum or saddle: this is
/// what the comparison shows. The output is normalised like [`super::Constraint::Mean`]
/// (`Σ s_i = m`) so its errors compare with those of [`super::solve`].
///
/// Sweeps until [`AlsParams::stop`] holds or `observer` interrupts (it sees the stacked
/// `(d, x)` of [`Als`]; pass [`&mut NoObserver`](crate::iter::NoObserver) for none).
/// Returns the [`Solution`] beside the run's [`Report`], whose objective history is the
/// misfit.
pub fn alternating_least_squares<T: DenseScalar>(
    problem: &Problem<T>,
    params: &AlsParams,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(Solution<T>, Report<<T as Scalar>::Real>)> {
    let crit = stop_as::<<T as Scalar>::Real>(&params.stop);
    crit.validate()?;
    let model = problem.model();
    let (_, m, _, _) = problem.dims();
    let mut als = Als::new(problem);
    let report = run(&mut als, &crit, observer)?;
    let (d, x) = (als.d, als.x);
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
    Ok((
        Solution {
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
        },
        report,
    ))
}
