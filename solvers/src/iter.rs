//! The shared iteration framework: every iterative solver is a state machine driven by
//! [`run`], with typed [`StopReason`]s, [`Observer`] hooks (progress bars, histories,
//! interruption) and a [`Report`].
//!
//! A solver implements [`IterativeSolver::step`], which performs one iteration and returns a
//! [`StepInfo`] (objective if cheap, relative change of the iterate, residual if known).
//! [`run`] applies the [`StopCriteria`] and the observer after each step. The observer sees
//! the step's numbers and, for every solver of this crate, a view of the current iterate
//! ([`IterInfo::iterate`]), so it can log a quality metric per iteration, checkpoint or stop.
//!
//! # Conventions of the solvers' one-call helpers
//!
//! - **Stopping rules**: every params struct embeds one [`StopCriteria`] in a field named
//!   `stop` (no separate `max_iters`/`tol` fields or arguments). Its `Default` keeps the
//!   solver's documented defaults; params structs whose other fields are `f64` whatever the
//!   precision (Richardson–Lucy, the Krylov solvers, self-calibration) hold a
//!   `StopCriteria<f64>` that is converted to the solver's real type.
//! - **Observer**: the last argument is `observer: &mut dyn Observer<R>`, `R` the real type
//!   of the run; pass `&mut NoObserver` for none, or a closure
//!   `&mut |i: &IterInfo<R>| Control::Continue`. It is called after every iteration, sees
//!   the iterate and can interrupt ([`StopReason::Interrupted`]).
//! - **Result**: `Result<(T, Report<R>)>`, the solver's output (the estimate, or a result
//!   struct with its solver-specific extras) beside the run's [`Report`].
//! - **State machines**: each helper is a thin wrapper over a public [`IterativeSolver`]
//!   (for example `deconv::RichardsonLucy`, `sbl::Sbl`, `sbl::Ksbl`, `krylov::Lsqr`,
//!   `selfcal::SpectralIteration`, `selfcal::Als`) driven by [`run`] with `params.stop`,
//!   for callers that need to step it themselves.
//!
//! ```
//! use sparseinv_solvers::iter::{Control, IterInfo};
//! use sparseinv_solvers::op::Matrix;
//! use sparseinv_solvers::prox::Zero;
//! use sparseinv_solvers::proximal::{solve, Params};
//! use ndarray::array;
//! let a = Matrix::new(array![[2.0f64, 0.0], [0.0, 1.0]]);
//! let y = array![2.0f64, 3.0].into_dyn();
//! let truth = array![1.0f64, 3.0];
//! let mut errors = Vec::new();
//! // log the error against a known truth after every iteration, stop once it is tiny
//! let mut obs = |i: &IterInfo<f64>| {
//!     let x = i.iterate.as_ref().and_then(|v| v.as_f64()).unwrap();
//!     let e = x.iter().zip(truth.iter()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
//!     errors.push(e);
//!     if e < 1e-9 { Control::Stop } else { Control::Continue }
//! };
//! let mut p = Params::default();
//! p.stop.rel_tol = 0.0; // only the observer stops it
//! let (x, report) = solve(&a, y.view(), &Zero, &p, None, &mut obs).unwrap();
//! assert!(errors.last().unwrap() < &1e-9);
//! assert_eq!(report.iterations, errors.len());
//! assert!((x[1] - 3.0).abs() < 1e-9);
//! ```

use crate::error::Result;
use crate::scalar::Real;
use std::time::{Duration, Instant};

/// Why an iterative solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The iteration budget `max_iters` was used up.
    MaxIters,
    /// `‖x_{k+1} − x_k‖ / max(‖x_{k+1}‖, tiny) ≤ rel_tol`.
    RelativeChange,
    /// The residual fell below `residual_tol`.
    Residual,
    /// The objective reached `objective_target`.
    ObjectiveTarget,
    /// The objective or iterate became non-finite or grew by more than `divergence_factor`.
    Diverged,
    /// An observer asked to stop.
    Interrupted,
    /// An estimate of the risk passed its minimum; the result is the iterate of least
    /// estimated risk (Richardson–Lucy's [`RiskStop`](crate::deconv::RiskStop)).
    MinimumRisk,
}

impl StopReason {
    /// A short machine-readable name ("max_iters", "relative_change", ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::MaxIters => "max_iters",
            StopReason::RelativeChange => "relative_change",
            StopReason::Residual => "residual",
            StopReason::ObjectiveTarget => "objective_target",
            StopReason::Diverged => "diverged",
            StopReason::Interrupted => "interrupted",
            StopReason::MinimumRisk => "minimum_risk",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one iteration reports to the driver.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo<R> {
    /// Objective value after the step, when the solver computes it.
    pub objective: Option<R>,
    /// Relative change of the iterate, `‖x_{k+1} − x_k‖ / ‖x_{k+1}‖`.
    pub rel_change: R,
    /// A residual norm, when meaningful for the solver.
    pub residual: Option<R>,
}

/// A read-only view of a solver's current iterate, in its own scalar type.
///
/// Solvers of several scalar types share one [`Observer`] trait (generic only over the real
/// type of tolerances), so the iterate is passed as this enum; [`Iterate::as_f64`] and friends
/// give the typed view, [`Iterate::to_f64_re`] a copy of the real parts in `f64`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Iterate<'a> {
    /// A single-precision real iterate.
    F32(ndarray::ArrayViewD<'a, f32>),
    /// A double-precision real iterate.
    F64(ndarray::ArrayViewD<'a, f64>),
    /// A single-precision complex iterate.
    C32(ndarray::ArrayViewD<'a, crate::C32>),
    /// A double-precision complex iterate.
    C64(ndarray::ArrayViewD<'a, crate::C64>),
}

impl<'a> Iterate<'a> {
    /// The shape of the iterate.
    pub fn shape(&self) -> &[usize] {
        match self {
            Iterate::F32(v) => v.shape(),
            Iterate::F64(v) => v.shape(),
            Iterate::C32(v) => v.shape(),
            Iterate::C64(v) => v.shape(),
        }
    }
    /// The view when the iterate is `f64`.
    pub fn as_f64(&self) -> Option<ndarray::ArrayViewD<'a, f64>> {
        match self {
            Iterate::F64(v) => Some(v.clone()),
            _ => None,
        }
    }
    /// The view when the iterate is `f32`.
    pub fn as_f32(&self) -> Option<ndarray::ArrayViewD<'a, f32>> {
        match self {
            Iterate::F32(v) => Some(v.clone()),
            _ => None,
        }
    }
    /// The view when the iterate is complex `f64`.
    pub fn as_c64(&self) -> Option<ndarray::ArrayViewD<'a, crate::C64>> {
        match self {
            Iterate::C64(v) => Some(v.clone()),
            _ => None,
        }
    }
    /// The view when the iterate is complex `f32`.
    pub fn as_c32(&self) -> Option<ndarray::ArrayViewD<'a, crate::C32>> {
        match self {
            Iterate::C32(v) => Some(v.clone()),
            _ => None,
        }
    }
    /// A copy of the real parts in `f64`, whatever the scalar type.
    pub fn to_f64_re(&self) -> ndarray::ArrayD<f64> {
        match self {
            Iterate::F32(v) => v.mapv(f64::from),
            Iterate::F64(v) => v.to_owned(),
            Iterate::C32(v) => v.mapv(|c| f64::from(c.re)),
            Iterate::C64(v) => v.mapv(|c| c.re),
        }
    }
}

/// One step of an iterative method.
pub trait IterativeSolver {
    /// The real type of objectives and tolerances.
    type Real: Real;
    /// Perform one iteration.
    fn step(&mut self) -> Result<StepInfo<Self::Real>>;
    /// A view of the current iterate, shown to observers after each step. Every solver of
    /// this crate provides it; the default (`None`) is for solvers without a single iterate.
    fn iterate(&self) -> Option<Iterate<'_>> {
        None
    }
}

/// When to stop. `Default`: 500 iterations, relative change 1e-6, no residual or objective
/// target, divergence when the objective exceeds 1e12 × its first value.
#[derive(Debug, Clone, Copy)]
pub struct StopCriteria<R> {
    /// Maximum number of iterations (≥ 1).
    pub max_iters: usize,
    /// Stop when the relative change falls to or below this (0 disables).
    pub rel_tol: R,
    /// Stop when the residual falls to or below this.
    pub residual_tol: Option<R>,
    /// Stop when the objective falls to or below this.
    pub objective_target: Option<R>,
    /// Declare divergence when objective > factor × first objective (or non-finite).
    pub divergence_factor: R,
}

impl<R: Real> Default for StopCriteria<R> {
    fn default() -> Self {
        StopCriteria {
            max_iters: 500,
            rel_tol: crate::scalar::real(1e-6),
            residual_tol: None,
            objective_target: None,
            divergence_factor: crate::scalar::real(1e12),
        }
    }
}

impl<R: Real> StopCriteria<R> {
    /// Check the criteria are meaningful.
    pub fn validate(&self) -> Result<()> {
        if self.max_iters == 0 {
            return Err(crate::Error::param("max_iters", "must be at least 1"));
        }
        if self.rel_tol.is_nan() || self.rel_tol < R::zero() || !self.rel_tol.is_finite() {
            return Err(crate::Error::param(
                "tol",
                format!("must be finite and non-negative, got {}", self.rel_tol),
            ));
        }
        Ok(())
    }
}

/// What an observer sees after each iteration.
#[derive(Debug, Clone)]
pub struct IterInfo<'a, R> {
    /// 1-based iteration count.
    pub iter: usize,
    /// The iteration budget.
    pub max_iters: usize,
    /// This step's report.
    pub step: StepInfo<R>,
    /// Time since `run` started.
    pub elapsed: Duration,
    /// The current iterate ([`IterativeSolver::iterate`]), when the solver exposes one.
    pub iterate: Option<Iterate<'a>>,
}

/// Whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep iterating.
    Continue,
    /// Stop now with [`StopReason::Interrupted`].
    Stop,
}

/// A hook called after every iteration (progress bars, logging, checkpoints, interruption).
pub trait Observer<R> {
    /// Called after each step.
    fn observe(&mut self, info: &IterInfo<'_, R>) -> Control;
    /// Whether the observer reads [`IterInfo::iterate`] (default `true`). A solver whose
    /// iterate costs extra work to present (e.g. the self-calibration LSQ with the
    /// calibration eliminated) skips that work when this is `false`.
    fn wants_iterate(&self) -> bool {
        true
    }
}

/// The observer that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl<R> Observer<R> for NoObserver {
    fn observe(&mut self, _info: &IterInfo<'_, R>) -> Control {
        Control::Continue
    }
    fn wants_iterate(&self) -> bool {
        false
    }
}

impl<R, F: FnMut(&IterInfo<'_, R>) -> Control> Observer<R> for F {
    fn observe(&mut self, info: &IterInfo<'_, R>) -> Control {
        self(info)
    }
}

/// What a solver run did.
#[derive(Debug, Clone)]
pub struct Report<R> {
    /// Number of iterations performed.
    pub iterations: usize,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Objective after each iteration (empty when the solver does not compute it).
    pub objective_history: Vec<R>,
    /// Relative change after each iteration.
    pub rel_change_history: Vec<R>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl<R: Real> Report<R> {
    /// The last objective value, if any.
    pub fn final_objective(&self) -> Option<R> {
        self.objective_history.last().copied()
    }
}

/// Show `info` to `observer`; the stop decided so far, or [`StopReason::Interrupted`] when
/// there was none and the observer asked to stop (the rule of [`run`], shared by the solvers
/// that drive their own loop).
pub(crate) fn observed_stop<R>(
    observer: &mut dyn Observer<R>,
    info: &IterInfo<'_, R>,
    stop: Option<StopReason>,
) -> Option<StopReason> {
    if observer.observe(info) == Control::Stop && stop.is_none() {
        Some(StopReason::Interrupted)
    } else {
        stop
    }
}

/// Drive `solver` until a stop criterion holds or the observer interrupts.
///
/// The relative-change test is skipped on the first iteration (the change from a zero start is
/// always 1). Divergence is checked on the objective when reported, and on non-finite relative
/// changes.
pub fn run<S: IterativeSolver + ?Sized>(
    solver: &mut S,
    crit: &StopCriteria<S::Real>,
    observer: &mut dyn Observer<S::Real>,
) -> Result<Report<S::Real>> {
    crit.validate()?;
    let start = Instant::now();
    let mut report = Report {
        iterations: 0,
        stop_reason: StopReason::MaxIters,
        objective_history: Vec::new(),
        rel_change_history: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut first_obj: Option<S::Real> = None;
    for k in 1..=crit.max_iters {
        let info = solver.step()?;
        report.iterations = k;
        report.rel_change_history.push(info.rel_change);
        let mut stop = None;
        if let Some(f) = info.objective {
            report.objective_history.push(f);
            let f0 = *first_obj.get_or_insert(f);
            if !f.is_finite() || (f0 > S::Real::zero() && f > crit.divergence_factor * f0) {
                stop = Some(StopReason::Diverged);
            } else if crit.objective_target.is_some_and(|t| f <= t) {
                stop = Some(StopReason::ObjectiveTarget);
            }
        }
        if stop.is_none() {
            if !info.rel_change.is_finite() {
                stop = Some(StopReason::Diverged);
            } else if crit
                .residual_tol
                .is_some_and(|t| info.residual.is_some_and(|r| r <= t))
            {
                stop = Some(StopReason::Residual);
            } else if k > 1 && info.rel_change <= crit.rel_tol {
                stop = Some(StopReason::RelativeChange);
            }
        }
        let it = IterInfo {
            iter: k,
            max_iters: crit.max_iters,
            step: info,
            elapsed: start.elapsed(),
            iterate: solver.iterate(),
        };
        stop = observed_stop(observer, &it, stop);
        if let Some(r) = stop {
            report.stop_reason = r;
            break;
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

use num_traits::{Float, Zero};

#[cfg(test)]
mod tests {
    use super::*;

    /// x_{k+1} = x_k / 2 from 1: relative change is exactly 1 each step; objective x².
    struct Halve(f64);
    impl IterativeSolver for Halve {
        type Real = f64;
        fn step(&mut self) -> Result<StepInfo<f64>> {
            let old = self.0;
            self.0 /= 2.0;
            Ok(StepInfo {
                objective: Some(self.0 * self.0),
                rel_change: (old - self.0).abs() / self.0.abs(),
                residual: Some(self.0),
            })
        }
    }

    #[test]
    fn stops_on_residual_objective_and_budget() {
        let mut s = Halve(1.0);
        let c = StopCriteria {
            residual_tol: Some(1.0 / 1024.0),
            ..Default::default()
        };
        let r = run(&mut s, &c, &mut NoObserver).unwrap();
        assert_eq!(r.stop_reason, StopReason::Residual);
        assert_eq!(r.iterations, 10);
        assert_eq!(r.objective_history.len(), 10);

        let mut s = Halve(1.0);
        let c = StopCriteria {
            objective_target: Some(1.0 / 16.0),
            ..Default::default()
        };
        let r = run(&mut s, &c, &mut NoObserver).unwrap();
        assert_eq!(r.stop_reason, StopReason::ObjectiveTarget);
        assert_eq!(r.iterations, 2);

        let mut s = Halve(1.0);
        let c = StopCriteria {
            max_iters: 7,
            ..Default::default()
        };
        let r = run(&mut s, &c, &mut NoObserver).unwrap();
        assert_eq!(r.stop_reason, StopReason::MaxIters);
        assert_eq!(r.iterations, 7);
    }

    #[test]
    fn observer_interrupts_and_bad_criteria_error() {
        let mut s = Halve(1.0);
        let mut obs = |i: &IterInfo<f64>| {
            if i.iter == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        let r = run(&mut s, &StopCriteria::default(), &mut obs).unwrap();
        assert_eq!(r.stop_reason, StopReason::Interrupted);
        assert_eq!(r.iterations, 3);
        let c = StopCriteria::<f64> {
            max_iters: 0,
            ..Default::default()
        };
        assert!(run(&mut Halve(1.0), &c, &mut NoObserver).is_err());
    }
}
