//! The l_q quasi-norms `Σ λᵢ |xᵢ|^q`, `0 < q < 1`, with closed-form thresholding for
//! `q = 1/2` and `q = 2/3` and an exact scalar solve for any other `q`.

use super::weights::{radial_f64, Weights};
use super::Prox;
use crate::error::{Error, Result};
use crate::scalar::{Real, Scalar};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

/// How an [`Lq`] computes its scalar prox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LqMethod {
    /// Xu et al. (2012) half thresholding, `q = 1/2`.
    Half,
    /// Cao, Sun & Xu (2013) closed form, `q = 2/3`.
    TwoThirds,
    /// Safeguarded Newton/bisection on the stationarity equation, any `q ∈ (0, 1)`.
    General,
}

/// The l_q quasi-norm penalty `R(x) = Σᵢ λᵢ |xᵢ|^q` with `0 < q < 1` (non-convex).
///
/// The prox acts on the modulus and keeps the phase (the sign for reals). For `m = |v|` and
/// `t = τλ`, the scalar problem `min_{x ≥ 0} ½(x − m)² + t x^q` has the global minimiser
///
/// - `0` when `m ≤ τ_q = (2 − q)/(2 − 2q) · (2t(1 − q))^{1/(2−q)}` (ties go to `0`),
/// - otherwise the root of `x + t q x^{q−1} = m` on the branch `x > (2t(1 − q))^{1/(2−q)}`.
///
/// Closed forms of that root (selected automatically by [`Lq::new`] for these `q`):
///
/// - `q = 1/2` (Xu, Chang, Xu & Zhang, IEEE TNNLS 2012, "L1/2 regularization: a thresholding
///   representation theory and a fast solver"): `τ_q = (3/2) t^{2/3}` and
///   `x = (2/3) m (1 + cos(2π/3 − (2/3) φ))`, `φ = arccos((t/4) (m/3)^{−3/2})`;
/// - `q = 2/3` (Cao, Sun & Xu, J. Vis. Commun. Image R. 2013, "Fast image deconvolution using
///   closed-form thresholding formulas of L_q (q = 1/2, 2/3) regularization"), with `μ = 2t`:
///   `x = ((A + sqrt(2m/A − A²)) / 2)³`, `A = (2/√3) μ^{1/4} sqrt(cosh(φ/3))`,
///   `φ = arccosh(27 m² / (16 μ^{3/2}))`, `τ_q = (2/3)(3μ³)^{1/4}`.
///
/// (Both papers write the data term without the ½, hence their `λ` is our `2τλ`.) For any
/// other `q` the root is found by Newton's method from `x = m` (monotone: `x + tqx^{q−1}` is
/// convex and increasing there), safeguarded by bisection on the bracket
/// `[(2t(1−q))^{1/(2−q)}, m]`, and the objective is compared with that of `x = 0`. The scalar
/// work is done in `f64` for every precision.
///
/// ```
/// use sparseinv_solvers::prox::{Prox, Lq};
/// use ndarray::array;
/// let half = Lq::new(0.5f64, 1.0).unwrap(); // threshold (3/2) (τλ)^{2/3} = 1.5 at τ = 1
/// let x = half.prox(array![1.4f64, -1.6, 4.0].into_dyn().view(), 1.0);
/// assert_eq!(x[0], 0.0);
/// assert!(x[1] < 0.0 && x[2] > 3.0 && x[2] < 4.0);
/// // the non-zero outputs satisfy the stationarity equation x + τλq x^{q−1} = |v|
/// let s = x[2] + 0.5 * x[2].powf(-0.5);
/// assert!((s - 4.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Lq<R: Real> {
    q: f64,
    w: Weights<R>,
    method: LqMethod,
}

fn check_q(q: f64) -> Result<()> {
    if !(q > 0.0 && q < 1.0) {
        return Err(Error::param("q", format!("must lie in (0, 1), got {q}")));
    }
    Ok(())
}

/// Pick the closed form when `q` is 1/2 or 2/3 up to `1e-6` (so that `f32` inputs select it).
fn auto_method(q: f64) -> (f64, LqMethod) {
    if (q - 0.5).abs() <= 1e-6 {
        (0.5, LqMethod::Half)
    } else if (q - 2.0 / 3.0).abs() <= 1e-6 {
        (2.0 / 3.0, LqMethod::TwoThirds)
    } else {
        (q, LqMethod::General)
    }
}

impl<R: Real> Lq<R> {
    /// `R(x) = λ Σ |xᵢ|^q`. Uses the closed form for `q = 1/2` or `q = 2/3` (within `1e-6`;
    /// `q` is then set to exactly that value), the general solver otherwise. Errors unless
    /// `0 < q < 1` and `λ` is finite and `≥ 0`.
    pub fn new(q: R, lambda: R) -> Result<Self> {
        let q = q.to_f64_lossless();
        check_q(q)?;
        let (q, method) = auto_method(q);
        Ok(Lq {
            q,
            w: Weights::uniform(lambda)?,
            method,
        })
    }
    /// `R(x) = λ Σ |xᵢ|^{1/2}` with the half-thresholding closed form.
    pub fn half(lambda: R) -> Result<Self> {
        Self::new(crate::scalar::real(0.5), lambda)
    }
    /// `R(x) = λ Σ |xᵢ|^{2/3}` with the closed form of Cao et al.
    pub fn two_thirds(lambda: R) -> Result<Self> {
        Self::new(crate::scalar::real(2.0 / 3.0), lambda)
    }
    /// `R(x) = λ Σ |xᵢ|^q` always solved by the general scalar solver (also for `q = 1/2`,
    /// `2/3`; useful to cross-check the closed forms).
    pub fn general(q: R, lambda: R) -> Result<Self> {
        let q = q.to_f64_lossless();
        check_q(q)?;
        Ok(Lq {
            q,
            w: Weights::uniform(lambda)?,
            method: LqMethod::General,
        })
    }
    /// `R(x) = Σ wᵢ |xᵢ|^q` with one weight per element (shape of the argument, checked by
    /// [`Prox::check_shape`]); method chosen as in [`Lq::new`].
    pub fn weighted(q: R, w: ArrayD<R>) -> Result<Self> {
        let q = q.to_f64_lossless();
        check_q(q)?;
        let (q, method) = auto_method(q);
        Ok(Lq {
            q,
            w: Weights::per_element(w)?,
            method,
        })
    }
    /// The exponent `q` (as used, in `f64`).
    pub fn q(&self) -> f64 {
        self.q
    }
    /// The scalar method in use.
    pub fn method(&self) -> LqMethod {
        self.method
    }
    /// The weights.
    pub fn weights(&self) -> &Weights<R> {
        &self.w
    }
    /// The scalar prox threshold `τ_q = (2 − q)/(2 − 2q) · (2τλ(1 − q))^{1/(2−q)}` for a
    /// weight `λ`: the prox is zero for `|v| ≤ τ_q`.
    pub fn threshold(&self, tau: f64, lambda: f64) -> f64 {
        lq_threshold(self.q, tau * lambda)
    }
}

/// `τ_q` for `t = τλ`.
pub(crate) fn lq_threshold(q: f64, t: f64) -> f64 {
    (2.0 - q) / (2.0 - 2.0 * q) * (2.0 * t * (1.0 - q)).powf(1.0 / (2.0 - q))
}

/// Global minimiser of `½(x − m)² + t x^q` over `x ≥ 0` (`m ≥ 0`, `t ≥ 0`), ties to zero.
pub(crate) fn prox_lq_general(m: f64, t: f64, q: f64) -> f64 {
    if t == 0.0 {
        return m;
    }
    if m.is_nan() || m <= 0.0 {
        return 0.0;
    }
    let xthr = (2.0 * t * (1.0 - q)).powf(1.0 / (2.0 - q));
    let thr = (2.0 - q) / (2.0 - 2.0 * q) * xthr;
    if m <= thr {
        return 0.0;
    }
    if !m.is_finite() {
        return m;
    }
    // h(x) = x + t q x^{q−1} − m: convex and increasing on x > x̄; the root lies in (xthr, m).
    let (mut lo, mut hi) = (xthr, m);
    let mut x = m;
    for _ in 0..200 {
        let xq1 = x.powf(q - 1.0);
        let h = x + t * q * xq1 - m;
        if h > 0.0 {
            hi = x;
        } else if h < 0.0 {
            lo = x;
        } else {
            break;
        }
        let dh = 1.0 - t * q * (1.0 - q) * xq1 / x;
        let mut xn = x - h / dh;
        if !(dh > 0.0 && xn > lo && xn < hi) {
            xn = 0.5 * (lo + hi);
        }
        let done = (xn - x).abs() <= 4.0 * f64::EPSILON * x || hi - lo <= 4.0 * f64::EPSILON * hi;
        x = xn;
        if done {
            break;
        }
    }
    let fx = 0.5 * (x - m) * (x - m) + t * x.powf(q);
    if fx < 0.5 * m * m {
        x
    } else {
        0.0
    }
}

/// Xu et al. half thresholding: minimiser of `½(x − m)² + t x^{1/2}`, `m ≥ 0`.
pub(crate) fn prox_half(m: f64, t: f64) -> f64 {
    if t == 0.0 {
        return m;
    }
    if m.is_nan() || m <= 1.5 * t.powf(2.0 / 3.0) {
        return 0.0;
    }
    if !m.is_finite() {
        return m;
    }
    let arg = (t / 4.0) * (m / 3.0).powf(-1.5);
    let phi = arg.min(1.0).acos();
    (2.0 / 3.0) * m * (1.0 + (2.0 * std::f64::consts::PI / 3.0 - 2.0 * phi / 3.0).cos())
}

/// Cao et al. 2/3 thresholding: minimiser of `½(x − m)² + t x^{2/3}`, `m ≥ 0`.
pub(crate) fn prox_two_thirds(m: f64, t: f64) -> f64 {
    if t == 0.0 {
        return m;
    }
    let mu = 2.0 * t;
    if m.is_nan() || m <= (2.0 / 3.0) * (3.0 * mu * mu * mu).powf(0.25) {
        return 0.0;
    }
    if !m.is_finite() {
        return m;
    }
    let arg = 27.0 * m * m / (16.0 * mu.powf(1.5));
    let phi = arg.max(1.0).acosh();
    let a = (2.0 / 3.0f64.sqrt()) * mu.powf(0.25) * (phi / 3.0).cosh().sqrt();
    let y = 0.5 * (a + (2.0 * m / a - a * a).max(0.0).sqrt());
    y * y * y
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for Lq<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        let q = self.q;
        self.w
            .weighted_sum(x, |a| a.modulus().to_f64_lossless().powf(q))
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        let tau = tau.to_f64_lossless();
        let q = self.q;
        match self.method {
            LqMethod::Half => radial_f64(&self.w, v, out, |m, l| prox_half(m, tau * l)),
            LqMethod::TwoThirds => radial_f64(&self.w, v, out, |m, l| prox_two_thirds(m, tau * l)),
            LqMethod::General => radial_f64(&self.w, v, out, |m, l| prox_lq_general(m, tau * l, q)),
        }
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        self.w.check_shape(shape)
    }
}
