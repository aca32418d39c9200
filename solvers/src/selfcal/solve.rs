//! The two solvers of the paper (least squares with a scale constraint, and the spectral
//! method), dense or matrix-free, on the shared iteration framework.

use super::problem::{calibration_from_inverse, Model, Problem};
use super::system::SystemOperator;
use crate::dense::DenseScalar;
use crate::error::{check_finite, Error, Result};
use crate::iter::{
    run, IterativeSolver, NoObserver, Observer, Report, StepInfo, StopCriteria, StopReason,
};
use crate::krylov::{stop_as, KrylovParams, Lsqr};
use crate::linalg::{norm2_sq, vdot};
use crate::op::{dot_conj, LinearOperator};
use crate::scalar::{Real, Scalar};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayViewD, ArrayViewMutD, IxDyn};
use num_traits::{Float, One, Zero};
use std::sync::Mutex;
use std::time::Instant;

/// Which of the two solvers of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Least squares with a linear scale constraint.
    Lsq,
    /// Smallest right singular vector of `A₀`.
    Spectral,
}

impl Method {
    /// `lsq` or `spectral`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Lsq => "lsq",
            Method::Spectral => "spectral",
        }
    }
}

/// Dense (faer) or matrix-free (LSQR) linear algebra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Dense when the number of unknowns `N ≤ Params::dense_max_unknowns`, else matrix-free.
    Auto,
    /// Form `A₀` and use QR / SVD.
    Dense,
    /// LSQR through [`SystemOperator`].
    MatrixFree,
}

/// The linear constraint `⟨w, h⟩ = c` that fixes the scale (it acts on the calibration
/// coefficients `h`, i.e. on `s` without subspace).
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint<T> {
    /// `Σ h_i = k` (the mean of `h` is 1). Default.
    Mean,
    /// `h_1 = 1` (the first entry).
    First,
    /// A given `w` (length `k`) and `c`.
    Vector(Array1<T>, T),
}

/// Parameters of [`solve`]. `Default`: LSQ, `Auto` backend with dense up to 600 unknowns,
/// `Mean` constraint, every LSQR solve to residual measure 1e-12 within 5000 iterations, at
/// most 10 spectral outer steps stopped when `1 − |⟨v_{t+1}, v_t⟩| ≤ 1e-12`.
///
/// Two levels of iteration, each with the shared [`StopCriteria`]: `krylov.stop` for every
/// LSQR solve (the one of LSQ, the inner ones of the spectral method), and `stop` for the
/// outer inverse iteration of the matrix-free spectral method ([`SpectralIteration`]).
#[derive(Debug, Clone)]
pub struct Params<T> {
    /// LSQ or spectral.
    pub method: Method,
    /// Dense or matrix-free.
    pub backend: Backend,
    /// The scale constraint.
    pub constraint: Constraint<T>,
    /// Stopping rules of every LSQR solve (`damp` must be 0). Default:
    /// [`KrylovParams::stop_with`]`(5000, 1e-12)`.
    pub krylov: KrylovParams,
    /// Stopping rules of the outer (inverse-iteration) steps of the matrix-free spectral
    /// method, whose residual is `1 − |⟨v_{t+1}, v_t⟩|` and relative change
    /// `‖v_{t+1} − e^{iθ} v_t‖ = (2 − 2|⟨v_{t+1}, v_t⟩|)^{1/2}` (unit vectors, best phase).
    /// Default [`Params::default_stop`]: at most 10 steps, `residual_tol = 1e-12`.
    pub stop: StopCriteria<f64>,
    /// `Auto` uses the dense path up to this many unknowns `N`.
    pub dense_max_unknowns: usize,
}

impl<T> Default for Params<T> {
    fn default() -> Self {
        Params {
            method: Method::Lsq,
            backend: Backend::Auto,
            constraint: Constraint::Mean,
            krylov: KrylovParams {
                stop: KrylovParams::stop_with(5000, 1e-12),
                damp: 0.0,
            },
            stop: Self::default_stop(),
            dense_max_unknowns: 600,
        }
    }
}

impl<T> Params<T> {
    /// The default outer stopping rules of the spectral method: `max_iters = 10`,
    /// `residual_tol = Some(1e-12)` (on `1 − |⟨v_{t+1}, v_t⟩|`, tested from the first step),
    /// `rel_tol = 0`, the rest as in [`StopCriteria::default`].
    pub fn default_stop() -> StopCriteria<f64> {
        StopCriteria {
            max_iters: 10,
            rel_tol: 0.0,
            residual_tol: Some(1e-12),
            ..StopCriteria::default()
        }
    }
}

/// The result of [`solve`].
#[derive(Debug, Clone)]
pub struct Solution<T: Scalar> {
    /// Model solved.
    pub model: Model,
    /// Calibration coefficients `h` (equal to `s` without subspace), normalised so that
    /// `⟨w, h⟩ = c`.
    pub h: Array1<T>,
    /// `s = B h`: the inverse gains `1/d` (`Repeated`, `Snapshots`) or the inverse filter `g`
    /// (`Diverse`, time domain).
    pub s: Array1<T>,
    /// The calibration itself: gains `d = 1/s` (element-wise), or the filter `f` with
    /// `F f = 1/F g` (`Diverse`). Same normalisation as `s` (inverse scale).
    pub d: Array1<T>,
    /// Signals, one row per block (`[1, n]` for `Repeated`, `[p, n]` otherwise).
    pub x: Array2<T>,
    /// `‖A₀ z‖ / ‖z‖` at the solution: the smallest-singular-value estimate (0 for exact data).
    pub sigma: <T as Scalar>::Real,
    /// Method used.
    pub method: Method,
    /// `true` when the dense path was used.
    pub dense: bool,
    /// Total LSQR iterations (0 on the dense path), inner ones included for the spectral
    /// method.
    pub iterations: usize,
    /// Outer spectral steps (0 for LSQ and on the dense path).
    pub outer_iterations: usize,
}

fn constraint_vector<T: DenseScalar>(c: &Constraint<T>, k: usize) -> Result<(Vec<T>, T)> {
    match c {
        Constraint::Mean => Ok((vec![T::one(); k], T::from_f64(k as f64))),
        Constraint::First => {
            let mut w = vec![T::zero(); k];
            w[0] = T::one();
            Ok((w, T::one()))
        }
        Constraint::Vector(w, c) => {
            if w.len() != k {
                return Err(Error::shape("constraint vector w", &[k], &[w.len()]));
            }
            check_finite("constraint vector w", w.iter())?;
            if !c.is_finite_scalar() || *c == T::zero() {
                return Err(Error::param("constraint c", "must be finite and non-zero"));
            }
            if w.iter().all(|v| *v == T::zero()) {
                return Err(Error::param("constraint vector w", "must not be zero"));
            }
            Ok((w.to_vec(), *c))
        }
    }
}

/// `[A₀; wᴴ]` with `w` zero-padded to the full unknown vector.
struct Augmented<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    w: Vec<T>,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<T: DenseScalar> Augmented<'_, T> {
    /// `⟨w, z⟩`.
    fn wdot(&self, z: &[T]) -> T {
        self.w.iter().zip(z).map(|(&w, &z)| w.conj() * z).sum()
    }
    /// `z += w c`.
    fn add_w(&self, z: &mut [T], c: T) {
        for (zi, &w) in z.iter_mut().zip(&self.w) {
            *zi += w * c;
        }
    }
}

/// The first `len` entries of a contiguous 1-D view, as a 1-D view.
fn head_mut<'v, T>(v: &'v mut ArrayViewMutD<'_, T>, len: usize) -> ArrayViewMutD<'v, T> {
    let s = v.as_slice_mut().expect("contiguous vector");
    ArrayViewMutD::from_shape(IxDyn(&[len]), &mut s[..len]).unwrap()
}

impl<T: DenseScalar> LinearOperator<T> for Augmented<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, z: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        self.op.apply_into(z.view(), head_mut(&mut y, r));
        y[r] = self.wdot(z.as_slice().unwrap());
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut z: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        let ys = y.as_slice().unwrap();
        let head = ArrayViewD::from_shape(IxDyn(&[r]), &ys[..r]).unwrap();
        self.op.adjoint_into(head, z.view_mut());
        self.add_w(z.as_slice_mut().unwrap(), ys[r]);
    }
    /// `A₀`'s fused products on the first `p·m` rows, the row `wᴴ` by hand.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: <T as Scalar>::Real,
        mut u: ArrayViewMutD<T>,
        mut g: ArrayViewMutD<T>,
        mut scratch: ArrayViewMutD<T>,
    ) {
        let r = self.ran[0] - 1;
        self.op.apply_sub_adjoint_into(
            v.view(),
            alpha,
            head_mut(&mut u, r),
            g.view_mut(),
            head_mut(&mut scratch, r),
        );
        let last = self.wdot(v.as_slice().unwrap()) - u[r].scale(alpha);
        u[r] = last;
        self.add_w(g.as_slice_mut().unwrap(), last);
    }
}

/// The LSQ problem of the diagonal models without a subspace (`repeated`, `snapshots`) with
/// the calibration eliminated (variable projection, Golub & Pereyra 1973; exact for linear
/// least squares): for a fixed signal `x` the best `s` of `‖D s − A x‖² + |wᴴ s − c|²`
/// (`D = [diag(y_1); …; diag(y_p)]`) is
///
/// ```text
/// s*(x) = M⁻¹ (Dᴴ A x + w c),   M = G + w wᴴ,   G = DᴴD = diag(Σ_l |y_{l,i}|²),
/// ```
///
/// (`M⁻¹` by Sherman–Morrison, O(m)), and the residual at `s*(x)` is affine in `x`:
/// `R x + r₀` with `R = Q A`, `Q v = [D M⁻¹ Dᴴ v − v; wᴴ M⁻¹ Dᴴ v]` and
/// `r₀ = [D M⁻¹ w c; (wᴴ M⁻¹ w − 1) c]`. LSQR then solves `min ‖R x + r₀‖` over the signal
/// alone, whose operator is about as well conditioned as `A` itself: on the
/// `benches/peers/selfcal.py` system (m = 1536, n = 512, p = 4) 22 iterations to the tolerance
/// where the augmented system `[A₀; wᴴ]` needs 185. Each iteration costs a product with `A`
/// and one with `Aᴴ` (two passes over `A`), plus O(p·m).
struct Reduced<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    w: Vec<T>,
    c: T,
    /// `1 / G_ii`
    ginv: Vec<<T as Scalar>::Real>,
    /// `G⁻¹ w` and `1 + wᴴ G⁻¹ w`
    ginv_w: Vec<T>,
    denom: T,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<'a, T: DenseScalar> Reduced<'a, T> {
    /// `None` unless the model is diagonal and has no subspace.
    fn new(op: &'a SystemOperator<T>, w: &[T], c: T) -> Option<Self> {
        let ginv = gram_inv(op)?;
        let ginv_w: Vec<T> = w.iter().zip(&ginv).map(|(&wv, &gi)| wv.scale(gi)).collect();
        let denom = T::one() + dot_conj(w, &ginv_w);
        let nx = op.n_signal();
        Some(Reduced {
            op,
            w: w.to_vec(),
            c,
            ginv,
            ginv_w,
            denom,
            dom: [nx],
            ran: [op.p * op.m + 1],
        })
    }

    /// `t ← M⁻¹ t` in place.
    fn minv(&self, t: &mut [T]) {
        for (v, &gi) in t.iter_mut().zip(&self.ginv) {
            *v = v.scale(gi);
        }
        let f = dot_conj(&self.w, t) / self.denom;
        for (v, &gw) in t.iter_mut().zip(&self.ginv_w) {
            *v -= gw * f;
        }
    }

    /// The right-hand side `−r₀`.
    fn rhs(&self) -> ArrayD<T> {
        let rows = self.ran[0] - 1;
        let mut s: Vec<T> = self.w.iter().map(|&wv| wv * self.c).collect();
        self.minv(&mut s);
        let mut b = ArrayD::zeros(IxDyn(&[rows + 1]));
        let bs = b.as_slice_mut().unwrap();
        d_times(self.op, &s, &mut bs[..rows], false);
        bs[rows] = dot_conj(&self.w, &s) - self.c;
        for v in bs.iter_mut() {
            *v = -*v;
        }
        b
    }

    /// The calibration `s*(x)` and `z = (s*, x)`.
    fn full(&self, x: &[T]) -> Vec<T> {
        let (p, m) = (self.op.p, self.op.m);
        let mut ax = vec![T::zero(); p * m];
        self.op.signal_into(x, &mut ax, T::one());
        let mut s = vec![T::zero(); m];
        self.op.diag_adjoint_cal(&ax, &mut s);
        for (v, &wv) in s.iter_mut().zip(&self.w) {
            *v += wv * self.c;
        }
        self.minv(&mut s);
        s.extend_from_slice(x);
        s
    }
}

impl<T: DenseScalar> LinearOperator<T> for Reduced<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let (rows, m) = (self.ran[0] - 1, self.op.m);
        let ys = y.as_slice_mut().expect("contiguous vector");
        let (head, last) = ys.split_at_mut(rows);
        self.op
            .signal_into(x.as_slice().expect("contiguous vector"), head, T::one());
        let mut s = vec![T::zero(); m];
        self.op.diag_adjoint_cal(head, &mut s);
        self.minv(&mut s);
        last[0] = dot_conj(&self.w, &s);
        d_times(self.op, &s, head, true);
    }
    fn adjoint_into(&self, u: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        let (rows, m) = (self.ran[0] - 1, self.op.m);
        let us = u.as_slice().expect("contiguous vector");
        let (u1, u2) = (&us[..rows], us[rows]);
        let mut s = vec![T::zero(); m];
        self.op.diag_adjoint_cal(u1, &mut s);
        for (v, &wv) in s.iter_mut().zip(&self.w) {
            *v += wv * u2;
        }
        self.minv(&mut s);
        let mut q = u1.to_vec();
        d_times(self.op, &s, &mut q, true);
        self.op
            .signal_adjoint_into(&q, x.as_slice_mut().expect("contiguous vector"), T::one());
    }
}

/// `1 / G_ii = 1 / Σ_l |y_{l,i}|²` for the diagonal models without a subspace (`None`
/// otherwise, or when a sensor is zero in every block, which `Problem::new` refuses).
fn gram_inv<T: DenseScalar>(op: &SystemOperator<T>) -> Option<Vec<<T as Scalar>::Real>> {
    if op.b.is_some() || !matches!(op.model, Model::Repeated | Model::Snapshots) {
        return None;
    }
    let (p, m) = (op.p, op.m);
    let y = op.y.as_slice().unwrap();
    let mut g = vec![<T as Scalar>::Real::zero(); m];
    for l in 0..p {
        for (gi, yv) in g.iter_mut().zip(&y[l * m..(l + 1) * m]) {
            *gi += yv.abs2();
        }
    }
    if g.iter()
        .any(|&v| v.is_nan() || v <= <T as Scalar>::Real::zero())
    {
        return None;
    }
    Some(g.iter().map(|&v| v.recip()).collect())
}

/// `out ← D s` (`out` of length `p·m`), or `out ← D s − out` with `minus_out`.
fn d_times<T: DenseScalar>(op: &SystemOperator<T>, s: &[T], out: &mut [T], minus_out: bool) {
    let y = op.y.as_slice().unwrap();
    for (yl, ol) in y.chunks_exact(op.m).zip(out.chunks_exact_mut(op.m)) {
        for ((o, &yv), &sv) in ol.iter_mut().zip(yl).zip(s) {
            *o = if minus_out { yv * sv - *o } else { yv * sv };
        }
    }
}

/// One inner step of the spectral method for the diagonal models without a subspace,
/// `min ‖A₀ z‖` subject to `⟨q, z⟩ = 1` (`q = (q_s, q_x)` the current unit vector), with the
/// calibration eliminated as in [`Reduced`] but under the hard constraint: for a fixed `x`,
///
/// ```text
/// s(x) = G⁻¹ (Dᴴ A x + λ q_s),   λ = (1 − q_xᴴ x − q_sᴴ G⁻¹ Dᴴ A x) / κ,   κ = q_sᴴ G⁻¹ q_s,
/// ```
///
/// so that `A₀ z = D s(x) − A x = R x + r₀` with `R x = D (T G⁻¹ Dᴴ A x − G⁻¹ q_s q_xᴴ x / κ)
/// − A x`, `T = I − G⁻¹ q_s q_sᴴ / κ`, `r₀ = D G⁻¹ q_s / κ`; the adjoint is
/// `Rᴴ u = Aᴴ (D G⁻¹ Tᴴ Dᴴ u − u) − q_x (q_sᴴ G⁻¹ Dᴴ u) / κ`. LSQR on `R x = −r₀` gives the
/// same minimiser as the projected system `A₀ P` over all unknowns, in far fewer iterations.
struct ReducedHard<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    ginv: Vec<<T as Scalar>::Real>,
    /// `G⁻¹ q_s`, `q_s`, `q_x` and `κ`
    ginv_q: Vec<T>,
    qs: Vec<T>,
    qx: Vec<T>,
    kappa: <T as Scalar>::Real,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<'a, T: DenseScalar> ReducedHard<'a, T> {
    /// `None` unless the model is diagonal without a subspace and `q_s ≠ 0`.
    fn new(op: &'a SystemOperator<T>, q: &[T]) -> Option<Self> {
        let ginv = gram_inv(op)?;
        let m = op.m;
        let (qs, qx) = (q[..m].to_vec(), q[m..].to_vec());
        let ginv_q: Vec<T> = qs.iter().zip(&ginv).map(|(&a, &g)| a.scale(g)).collect();
        let kappa = dot_conj(&qs, &ginv_q).re();
        if !(kappa > <T as Scalar>::Real::zero() && kappa.is_finite()) {
            return None;
        }
        Some(ReducedHard {
            dom: [op.n_signal()],
            ran: [op.p * op.m],
            op,
            ginv,
            ginv_q,
            qs,
            qx,
            kappa,
        })
    }

    /// `S x` for a given `t = Dᴴ A x` (in place) and `x`: `T G⁻¹ t − G⁻¹ q_s (q_xᴴ x) / κ`,
    /// plus `G⁻¹ q_s γ / κ` (the constant part, `γ = 1` for the full `s(x)`).
    fn s_of(&self, t: &mut [T], x: &[T], gamma: <T as Scalar>::Real) {
        for (v, &g) in t.iter_mut().zip(&self.ginv) {
            *v = v.scale(g);
        }
        let f = (T::from_real(gamma) - dot_conj(&self.qs, t) - dot_conj(&self.qx, x))
            .scale(self.kappa.recip());
        for (v, &gq) in t.iter_mut().zip(&self.ginv_q) {
            *v += gq * f;
        }
    }

    /// The right-hand side `−r₀`.
    fn rhs(&self) -> ArrayD<T> {
        let mut b = ArrayD::zeros(IxDyn(&self.ran));
        let s: Vec<T> = self
            .ginv_q
            .iter()
            .map(|&g| -g.scale(self.kappa.recip()))
            .collect();
        d_times(self.op, &s, b.as_slice_mut().unwrap(), false);
        b
    }

    /// `z = (s(x), x)`.
    fn full(&self, x: &[T]) -> Vec<T> {
        let mut ax = vec![T::zero(); self.ran[0]];
        self.op.signal_into(x, &mut ax, T::one());
        let mut s = vec![T::zero(); self.op.m];
        self.op.diag_adjoint_cal(&ax, &mut s);
        self.s_of(&mut s, x, <T as Scalar>::Real::one());
        s.extend_from_slice(x);
        s
    }
}

impl<T: DenseScalar> LinearOperator<T> for ReducedHard<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let xs = x.as_slice().expect("contiguous vector");
        let ys = y.as_slice_mut().expect("contiguous vector");
        self.op.signal_into(xs, ys, T::one());
        let mut t = vec![T::zero(); self.op.m];
        self.op.diag_adjoint_cal(ys, &mut t);
        self.s_of(&mut t, xs, <T as Scalar>::Real::zero());
        d_times(self.op, &t, ys, true);
    }
    fn adjoint_into(&self, u: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        let us = u.as_slice().expect("contiguous vector");
        let mut t = vec![T::zero(); self.op.m];
        self.op.diag_adjoint_cal(us, &mut t);
        // c = q_sᴴ G⁻¹ t; G⁻¹ Tᴴ t = G⁻¹ (t − q_s c / κ)
        let c = dot_conj(&self.ginv_q, &t);
        let f = c.scale(self.kappa.recip());
        for ((v, &q), &g) in t.iter_mut().zip(&self.qs).zip(&self.ginv) {
            *v = (*v - q * f).scale(g);
        }
        let mut r = us.to_vec();
        d_times(self.op, &t, &mut r, true);
        let xs = x.as_slice_mut().expect("contiguous vector");
        self.op.signal_adjoint_into(&r, xs, T::one());
        for (v, &q) in xs.iter_mut().zip(&self.qx) {
            *v -= q * f;
        }
    }
}

/// LSQR on [`Reduced`], presenting the full unknown `z = (s*(x), x)` as its iterate when the
/// observer reads it (one more product with `A` per iteration).
struct ReducedLsqr<'r, 'a, T: DenseScalar> {
    lsqr: Lsqr<'r, T, Reduced<'a, T>>,
    red: &'r Reduced<'a, T>,
    z: Option<ArrayD<T>>,
}

impl<T: DenseScalar> IterativeSolver for ReducedLsqr<'_, '_, T> {
    type Real = <T as Scalar>::Real;
    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        match &self.z {
            Some(z) => Some(T::iterate_view(z.view())),
            None => self.lsqr.iterate(),
        }
    }
    fn step(&mut self) -> Result<StepInfo<Self::Real>> {
        let info = self.lsqr.step()?;
        if let Some(z) = &mut self.z {
            let x = self.lsqr.x();
            let full = self.red.full(x.as_slice().expect("contiguous vector"));
            z.as_slice_mut()
                .expect("contiguous vector")
                .copy_from_slice(&full);
        }
        Ok(info)
    }
}

/// `u ↦ A₀ (u − q⟨q, u⟩)` with a unit vector `q` (adjoint `r ↦ P A₀ᴴ r`).
struct Projected<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    q: ArrayD<T>,
    /// `P u` of the forward products (domain shape)
    work: Mutex<ArrayD<T>>,
}

impl<'a, T: DenseScalar> Projected<'a, T> {
    fn new(op: &'a SystemOperator<T>, q: ArrayD<T>) -> Self {
        let work = Mutex::new(ArrayD::zeros(q.raw_dim()));
        Projected { op, q, work }
    }
    fn project(&self, u: &mut ArrayD<T>) {
        self.project_view(u.view_mut());
    }
    fn project_view(&self, mut u: ArrayViewMutD<T>) {
        let c = vdot(self.q.view(), u.view());
        ndarray::Zip::from(&mut u)
            .and(&self.q)
            .for_each(|u, &q| *u -= q * c);
    }
    /// `P u` in the workspace, locked.
    fn projected(&self, u: ArrayViewD<T>) -> std::sync::MutexGuard<'_, ArrayD<T>> {
        let mut pu = self.work.lock().unwrap_or_else(|e| e.into_inner());
        pu.assign(&u);
        self.project_view(pu.view_mut());
        pu
    }
}

impl<T: DenseScalar> LinearOperator<T> for Projected<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        self.op.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.op.range_shape()
    }
    fn apply_into(&self, u: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        let pu = self.projected(u);
        self.op.apply_into(pu.view(), y);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut u: ArrayViewMutD<T>) {
        self.op.adjoint_into(y, u.view_mut());
        self.project_view(u);
    }
    /// `A₀`'s fused products on `P v`, then `P` on the adjoint product.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: <T as Scalar>::Real,
        u: ArrayViewMutD<T>,
        mut g: ArrayViewMutD<T>,
        scratch: ArrayViewMutD<T>,
    ) {
        let pv = self.projected(v);
        self.op
            .apply_sub_adjoint_into(pv.view(), alpha, u, g.view_mut(), scratch);
        drop(pv);
        self.project_view(g);
    }
}

fn run_lsqr<T: DenseScalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    p: &KrylovParams,
) -> Result<(ArrayD<T>, usize)> {
    let mut s = Lsqr::new(a, b, None, 0.0)?;
    let rep = run(&mut s, &stop_as(&p.stop), &mut NoObserver)?;
    Ok((s.into_x(), rep.iterations))
}

/// The matrix-free spectral method as an [`IterativeSolver`]: inverse iteration by
/// constrained least squares on `A₀ᴴA₀` (see the [module docs](super)).
///
/// The iterate `v` (length `N = k + n_x`, unit norm, `(h, x)` stacked) starts from the
/// padded constraint vector `w / ‖w‖`. One [`step`](IterativeSolver::step) solves
/// `u = argmin ‖A₀(v + P u)‖` by LSQR (with `P` the projector onto `v^⊥`, stopping rules
/// `krylov.stop`) and sets `v ← (v + P u) / ‖v + P u‖`. It reports the residual
/// `1 − |⟨v_{t+1}, v_t⟩|` and the relative change `(2 − 2|⟨v_{t+1}, v_t⟩|)^{1/2}`; no
/// objective. [`solve`] drives it with [`Params::stop`].
pub struct SpectralIteration<'a, T: DenseScalar> {
    op: &'a SystemOperator<T>,
    krylov: KrylovParams,
    v: ArrayD<T>,
    ax: ArrayD<T>,
    inner: usize,
}

impl<'a, T: DenseScalar> SpectralIteration<'a, T> {
    /// Start from `start` (length `N`, normalised here). Errors on a wrong length, a zero or
    /// non-finite start, or invalid LSQR parameters (`damp` must be 0).
    pub fn new(
        op: &'a SystemOperator<T>,
        start: ArrayView1<T>,
        krylov: &KrylovParams,
    ) -> Result<Self> {
        krylov.validate()?;
        if krylov.damp != 0.0 {
            return Err(Error::param("damp", "must be 0 for self-calibration"));
        }
        let nn = op.domain_shape()[0];
        if start.len() != nn {
            return Err(Error::shape("spectral start vector", &[nn], &[start.len()]));
        }
        check_finite("spectral start vector", start.iter())?;
        let mut v = start.to_owned().into_dyn();
        let nv = norm2_sq(v.view()).sqrt();
        if nv == <T as Scalar>::Real::zero() {
            return Err(Error::param("spectral start vector", "must not be zero"));
        }
        v.mapv_inplace(|a| a.scale(<T as Scalar>::Real::one() / nv));
        Ok(SpectralIteration {
            op,
            krylov: *krylov,
            v,
            ax: ArrayD::zeros(IxDyn(op.range_shape())),
            inner: 0,
        })
    }

    /// The current unit vector `v = (h, x)` (before the scale constraint is applied).
    pub fn v(&self) -> &ArrayD<T> {
        &self.v
    }

    /// Total LSQR iterations spent so far.
    pub fn inner_iterations(&self) -> usize {
        self.inner
    }
}

impl<T: DenseScalar> IterativeSolver for SpectralIteration<'_, T> {
    type Real = <T as Scalar>::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.v.view()))
    }

    fn step(&mut self) -> Result<StepInfo<Self::Real>> {
        let one = <T as Scalar>::Real::one();
        let op = self.op;
        // v_new = v + P u, u = argmin ‖A₀(v + P u)‖, i.e. argmin ‖A₀ z‖ over ⟨v, z⟩ = 1;
        // the diagonal models without a subspace eliminate the calibration (ReducedHard)
        let vs = self.v.as_slice().expect("contiguous vector");
        let mut vn = if let Some(red) = ReducedHard::new(op, vs) {
            let (x, it) = run_lsqr(&red, red.rhs().view(), &self.krylov)?;
            self.inner += it;
            let z = red.full(x.as_slice().expect("contiguous vector"));
            ArrayD::from_shape_vec(IxDyn(&[z.len()]), z).expect("length N")
        } else {
            op.apply_into(self.v.view(), self.ax.view_mut());
            let rhs = self.ax.mapv(|a| -a);
            let proj = Projected::new(op, self.v.clone());
            let (mut u, it) = run_lsqr(&proj, rhs.view(), &self.krylov)?;
            self.inner += it;
            proj.project(&mut u);
            &self.v + &u
        };
        let nrm = norm2_sq(vn.view()).sqrt();
        if !(nrm.is_finite() && nrm > <T as Scalar>::Real::zero()) {
            return Err(Error::Numerical(
                "spectral inverse iteration produced a zero or non-finite vector".into(),
            ));
        }
        vn.mapv_inplace(|a| a.scale(one / nrm));
        let cosang = vdot(self.v.view(), vn.view()).modulus();
        self.v = vn;
        let res = (one - cosang).max(<T as Scalar>::Real::zero());
        Ok(StepInfo {
            objective: None,
            rel_change: (res + res).sqrt(),
            residual: Some(one - cosang),
        })
    }
}

/// Solve a self-calibration problem with the paper's least-squares or spectral method.
///
/// `observer` sees every iteration of the matrix-free paths: the LSQR iterate `z = (h, x)`
/// of LSQ (before the constraint rescaling), or the unit vector `v` of every outer step of
/// the spectral method ([`SpectralIteration`]); pass [`&mut NoObserver`](NoObserver) for
/// none. Returns the [`Solution`] beside the [`Report`] of that iteration (LSQ: the LSQR run
/// under `krylov.stop`; spectral: the outer run under [`Params::stop`]). The dense path does
/// not iterate: its report has `iterations = 0`, empty histories and
/// [`StopReason::Residual`] (a direct factorisation solves the system exactly), and the
/// observer is not called.
///
/// Errors: invalid parameters or constraint; [`Error::Numerical`] when the solution has a
/// zero calibration entry (then `d = 1/s` does not exist), when the constraint is orthogonal
/// to the solution (`⟨w, h⟩ = 0`), or when a dense factorisation fails.
///
/// ```
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::selfcal::{solve, synthetic, Backend, Errors, InstanceSpec, Method,
///     Model, Params};
/// let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 16, 4, 3), 1).unwrap();
/// let p = Params { method: Method::Spectral, backend: Backend::MatrixFree, ..Params::default() };
/// let (sol, report) = solve(&inst.problem, &p, &mut NoObserver).unwrap();
/// assert!(Errors::measure(&sol, &inst.s, &inst.x).joint < 1e-8);
/// assert_eq!(report.iterations, sol.outer_iterations);
/// ```
pub fn solve<T: DenseScalar>(
    problem: &Problem<T>,
    params: &Params<T>,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(Solution<T>, Report<<T as Scalar>::Real>)> {
    let start = Instant::now();
    params.krylov.validate()?;
    if params.krylov.damp != 0.0 {
        return Err(Error::param("damp", "must be 0 for self-calibration"));
    }
    params.stop.validate()?;
    if let Some(t) = params.stop.residual_tol {
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::param(
                "residual_tol",
                "must be finite and non-negative",
            ));
        }
    }
    let op = &problem.op;
    let nn = op.domain_shape()[0];
    let rows = op.range_shape()[0];
    let k = op.k;
    let (wh, c) = constraint_vector(&params.constraint, k)?;
    let mut w = vec![T::zero(); nn];
    w[..k].copy_from_slice(&wh);
    let dense = match params.backend {
        Backend::Dense => true,
        Backend::MatrixFree => false,
        Backend::Auto => nn <= params.dense_max_unknowns,
    };
    let mut iterations = 0;
    let mut outer = 0;
    let (z, report): (Vec<T>, _) = if dense {
        let a0 = op.to_dense();
        let z = match params.method {
            Method::Lsq => {
                let aw = Mat::<T>::from_fn(rows + 1, nn, |i, j| {
                    if i < rows {
                        a0[(i, j)]
                    } else {
                        w[j].conj()
                    }
                });
                let b = Mat::<T>::from_fn(rows + 1, 1, |i, _| if i < rows { T::zero() } else { c });
                let z = aw.qr().solve_lstsq(&b);
                (0..nn).map(|i| z[(i, 0)]).collect()
            }
            Method::Spectral => {
                let svd = if rows >= nn { a0.thin_svd() } else { a0.svd() }
                    .map_err(|e| Error::Numerical(format!("SVD did not converge: {e:?}")))?;
                let v = svd.V();
                (0..nn).map(|i| v[(i, nn - 1)]).collect()
            }
        };
        let report = Report {
            iterations: 0,
            stop_reason: StopReason::Residual,
            objective_history: Vec::new(),
            rel_change_history: Vec::new(),
            elapsed: start.elapsed(),
        };
        (z, report)
    } else {
        match params.method {
            Method::Lsq => match Reduced::new(op, &wh, c) {
                Some(red) => {
                    let b = red.rhs();
                    let mut s = ReducedLsqr {
                        lsqr: Lsqr::new(&red, b.view(), None, 0.0)?,
                        red: &red,
                        z: observer
                            .wants_iterate()
                            .then(|| ArrayD::zeros(IxDyn(&[nn]))),
                    };
                    let rep = run(&mut s, &stop_as(&params.krylov.stop), observer)?;
                    iterations += rep.iterations;
                    let x = s.lsqr.into_x();
                    (red.full(x.as_slice().expect("contiguous vector")), rep)
                }
                None => {
                    let aug = Augmented {
                        op,
                        w: w.clone(),
                        dom: [nn],
                        ran: [rows + 1],
                    };
                    let mut b = ArrayD::zeros(IxDyn(&[rows + 1]));
                    b[rows] = c;
                    let mut s = Lsqr::new(&aug, b.view(), None, 0.0)?;
                    let rep = run(&mut s, &stop_as(&params.krylov.stop), observer)?;
                    iterations += rep.iterations;
                    (s.into_x().into_raw_vec_and_offset().0, rep)
                }
            },
            Method::Spectral => {
                let mut it = SpectralIteration::new(op, ArrayView1::from(&w[..]), &params.krylov)?;
                let rep = run(&mut it, &stop_as(&params.stop), observer)?;
                iterations += it.inner;
                outer = rep.iterations;
                (it.v.into_raw_vec_and_offset().0, rep)
            }
        }
    };
    let sol = finish_solution(op, z, &wh, c, params.method, dense, iterations, outer)?;
    Ok((sol, report))
}

#[allow(clippy::too_many_arguments)]
fn finish_solution<T: DenseScalar>(
    op: &SystemOperator<T>,
    mut z: Vec<T>,
    wh: &[T],
    c: T,
    method: Method,
    dense: bool,
    iterations: usize,
    outer: usize,
) -> Result<Solution<T>> {
    if z.iter().any(|v| !v.is_finite_scalar()) {
        return Err(Error::Numerical("the solution is not finite".into()));
    }
    let k = op.k;
    let wz: T = wh.iter().zip(&z[..k]).map(|(&w, &h)| w.conj() * h).sum();
    if wz.modulus()
        <= <T as Scalar>::Real::eps() * norm2_sq(ArrayView1::from(&z[..]).into_dyn()).sqrt()
    {
        return Err(Error::Numerical(
            "the scale constraint is orthogonal to the solution (⟨w, h⟩ = 0): choose another constraint"
                .into(),
        ));
    }
    let scale = c / wz;
    for v in z.iter_mut() {
        *v *= scale;
    }
    let zv = ArrayD::from_shape_vec(IxDyn(&[z.len()]), z.clone()).unwrap();
    let az = op.apply(zv.view())?;
    let sigma = norm2_sq(az.view()).sqrt() / norm2_sq(zv.view()).sqrt();
    let h = Array1::from(z[..k].to_vec());
    let s = Array1::from(op.expand(&z[..k]));
    let d = calibration_from_inverse(op.model, &s)?;
    let rows = if op.model == Model::Repeated { 1 } else { op.p };
    let x = Array2::from_shape_vec((rows, op.n), z[k..].to_vec()).unwrap();
    Ok(Solution {
        model: op.model,
        h,
        s,
        d,
        x,
        sigma,
        method,
        dense,
        iterations,
        outer_iterations: outer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfcal::{synthetic, InstanceSpec};
    use crate::testing::assert_adjoint;
    use crate::C64;

    /// The reduced LSQ operator `R = Q A` and the spectral method's reduced inner operator
    /// pass the adjoint dot test (real and complex, both diagonal models, both constraints),
    /// and the reduction is refused for a subspace or `diverse`.
    #[test]
    fn reduced_operator_adjoint() {
        for model in [Model::Repeated, Model::Snapshots] {
            let spec = InstanceSpec::new(model, 12, 4, 3);
            let r = synthetic::<f64>(&spec, 3).unwrap();
            let c = synthetic::<C64>(&spec, 3).unwrap();
            for cons in [Constraint::<f64>::Mean, Constraint::First] {
                let (w, cc) = constraint_vector(&cons, 12).unwrap();
                assert_adjoint(&Reduced::new(&r.problem.op, &w, cc).unwrap(), 1e-12);
            }
            for cons in [Constraint::<C64>::Mean, Constraint::First] {
                let (w, cc) = constraint_vector(&cons, 12).unwrap();
                assert_adjoint(&Reduced::new(&c.problem.op, &w, cc).unwrap(), 1e-12);
            }
            // the spectral method's inner operator, for some unit vector q
            let nn = r.problem.op.domain_shape()[0];
            let q: Vec<f64> = (0..nn).map(|i| (0.7 * i as f64).sin() + 0.2).collect();
            assert_adjoint(&ReducedHard::new(&r.problem.op, &q).unwrap(), 1e-12);
            let qc: Vec<C64> = q
                .iter()
                .enumerate()
                .map(|(i, &v)| C64::new(v, (0.3 * i as f64).cos()))
                .collect();
            assert_adjoint(&ReducedHard::new(&c.problem.op, &qc).unwrap(), 1e-12);
        }
        let mut spec = InstanceSpec::new(Model::Repeated, 12, 4, 3);
        spec.k = Some(4);
        let sub = synthetic::<f64>(&spec, 3).unwrap();
        let (w, cc) = constraint_vector(&Constraint::<f64>::Mean, 4).unwrap();
        assert!(Reduced::new(&sub.problem.op, &w, cc).is_none());
        let div = synthetic::<f64>(&InstanceSpec::new(Model::Diverse, 12, 3, 4), 3).unwrap();
        let (w, cc) = constraint_vector(&Constraint::<f64>::Mean, 12).unwrap();
        assert!(Reduced::new(&div.problem.op, &w, cc).is_none());
    }
}
