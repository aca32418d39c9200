//! Self-calibration and bilinear inverse problems by linear least squares
//! (Ling & Strohmer, *Self-calibration and bilinear inverse problems via linear least
//! squares*, SIAM J. Imaging Sci. 11(1), 2018).
//!
//! # The models
//!
//! Measurements `y = A(d) x + e` with `A(d)` linear in an unknown calibration `d`. Three models
//! ([`Model`]), each for real or complex scalars, `l = 1..p` blocks of `m` measurements:
//!
//! | model | measurements | unknowns |
//! |---|---|---|
//! | [`Model::Repeated`] | `y_l = D A_l x + e_l`, `D = diag(d)`, `p` known `A_l ∈ 𝕂^{m×n}` | `d ∈ 𝕂^m`, `x ∈ 𝕂^n` |
//! | [`Model::Diverse`] | `y_l = f ⊛ (C_l x_l) + e_l`, circular convolution of length `m`, known `C_l ∈ 𝕂^{m×n}` | `f ∈ 𝕂^m`, `x_l ∈ 𝕂^n` |
//! | [`Model::Snapshots`] | `y_l = D A x_l + e_l`, one known `A ∈ 𝕂^{m×n}` | `d ∈ 𝕂^m`, `x_l ∈ 𝕂^n` |
//!
//! # Linearisation
//!
//! For the diagonal models, with all `d_i ≠ 0` and `s = 1/d` (element-wise),
//! `y_l = D A_l x  ⇔  diag(y_l) s − A_l x = 0`, which is linear and homogeneous in
//! `z = (s, x)`. For blind deconvolution the paper works in the Fourier domain, where
//! `F y_l = diag(F f) F C_l x_l`; we use the equivalent time-domain form: with `g` the inverse
//! filter (`g ⊛ f = δ`, i.e. `F g = 1/F f`, which needs `F f` without zeros),
//! `g ⊛ y_l − C_l x_l = 0`. `F` is unitary up to `√m`, so this is the paper's system
//! `diag(F y_l) F g − F C_l x_l = 0` multiplied by `F⁻¹`: the same solutions and singular
//! values up to the factor `√m`, but real data stay real (for real `y`, `C_l`, `f` the whole
//! system is real, and so is its null vector).
//!
//! **Subspace.** Optionally the calibration *inverse* lies in a known subspace: `s = B h`
//! (`B ∈ 𝕂^{m×k}`, `k ≤ m`; for `Diverse`, `g = B h` in the time domain). This is the choice
//! of the paper: the constraint must act on `s` (not `d`) for the system to stay linear,
//! `diag(y_l) B h − A_l x = 0`. Without `B` we take `B = I`, `h = s`. Smooth gains `d` have a
//! smooth inverse, so a low-frequency basis for `s` is the usual practical choice.
//!
//! Stacking all blocks gives `A₀ z = 0` with `z = (h, x)`, `A₀ ∈ 𝕂^{pm × N}`,
//! `N = k + n` (`Repeated`) or `N = k + pn` (the others). The solution is unique at most up to
//! the scale `z ↦ α z`, so the model is identifiable only if `pm ≥ N − 1`
//! ([`Problem::new`] rejects fewer measurements and says how many are needed).
//!
//! # The two solvers ([`Method`])
//!
//! - **Least squares** ([`Method::Lsq`]): fix the scale by a linear constraint `⟨w, h⟩ = c`
//!   ([`Constraint`]: `Σ h_i = k` by default, or `h_1 = 1`, or a given `w`), and solve the
//!   paper's augmented least-squares problem `min_z ‖A₀ z‖² + |⟨w, h⟩ − c|²`, i.e. the
//!   system `A_w z = b` with `A_w = [A₀; wᴴ]`, `b = (0, c)`.
//! - **Spectral** ([`Method::Spectral`]): `z` is the right singular vector of `A₀` for its
//!   smallest singular value; rescaled afterwards so that `⟨w, h⟩ = c` as well, so both
//!   methods return the same normalisation.
//!
//! # Backends ([`Backend`])
//!
//! Small systems are solved densely with faer: LSQ by Householder QR of `A_w`, the spectral
//! method by an SVD of `A₀`. Large ones are matrix-free through [`SystemOperator`] (one
//! `A₀`/`A₀ᴴ` product costs the matrix–vector products with the `A_l` plus `O(pm)` for the
//! diagonal models or `O(pm log m)` FFTs for `Diverse`):
//!
//! - LSQ: [`crate::krylov::Lsqr`] on `A_w`;
//! - spectral: *inverse iteration by constrained least squares*. Starting from `v₀` with
//!   `(v₀)_h = w`, iterate `v_{t+1} ∝ argmin_v ‖A₀ v‖ s.t. ⟨v_t, v⟩ = 1`. The minimiser is
//!   `v ∝ (A₀ᴴA₀)⁻¹ v_t` (Lagrange), so this is inverse iteration on `A₀ᴴA₀` without forming
//!   or factoring it; each step is an LSQR solve on `A₀ P_t` with `P_t` the projector onto
//!   `v_t^⊥` (the constraint is then exact). The angle to the smallest singular vector
//!   decreases by the factor `σ_N²/σ_{N−1}²` per outer step: one step suffices in the
//!   noiseless case (`σ_N = 0`), a few when the noise is small. We stop when
//!   `1 − |⟨v_{t+1}, v_t⟩| ≤ spectral_tol` or after `spectral_iters` steps.
//!
//! # Error up to scale
//!
//! Only `z` up to a scalar is identifiable, so recovery is measured by
//! [`scale_invariant_error`]: `min_α ‖α ẑ − z‖ / ‖z‖` over scalars `α` (complex for complex
//! data), with the minimiser `α = ⟨ẑ, z⟩ / ‖ẑ‖²`; it equals the sine of the angle between `ẑ`
//! and `z`. [`Errors`] reports it for `s`, for `x` and for the joint `(s, x)`
//! (one common `α`, the natural measure since the ambiguity is joint).
//!
//! ```
//! use sparseinv_solvers::selfcal::{synthetic, solve, Model, Params, Errors, InstanceSpec};
//! let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 16, 4, 3), 1).unwrap();
//! let sol = solve(&inst.problem, &Params::default()).unwrap();
//! let e = Errors::measure(&sol, &inst.s, &inst.x);
//! assert!(e.joint < 1e-8);
//! ```

mod als;
mod system;

pub use als::{alternating_least_squares, AlsParams};
pub use system::SystemOperator;

use crate::error::{check_finite, Error, Result};
use crate::krylov::{KrylovParams, Lsqr};
use crate::linalg::{norm2_sq, vdot};
use crate::op::LinearOperator;
use crate::scalar::{real, Real, Scalar};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use ndarray::{Array1, Array2, Array3, ArrayD, ArrayView1, ArrayViewD, ArrayViewMutD, IxDyn};
use num_traits::{Float, One, Zero};
use rand::{Rng, SeedableRng};
use system::Circ;

/// A scalar the self-calibration solvers work with: any [`Scalar`] that faer can factor
/// (`f32`, `f64`, `Complex<f32>`, `Complex<f64>`).
pub trait CalScalar: Scalar + faer::traits::ComplexField {}
impl<T: Scalar + faer::traits::ComplexField> CalScalar for T {}

/// The three measurement models of Ling & Strohmer (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Self-calibration from repeated measurements: `y_l = diag(d) A_l x`.
    Repeated,
    /// Blind deconvolution via diverse inputs: `y_l = f ⊛ (C_l x_l)`.
    Diverse,
    /// Self-calibration from multiple snapshots: `y_l = diag(d) A x_l`.
    Snapshots,
}

impl Model {
    /// The model's name as used by the CLI (`repeated`, `diverse`, `snapshots`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Model::Repeated => "repeated",
            Model::Diverse => "diverse",
            Model::Snapshots => "snapshots",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "repeated" => Ok(Model::Repeated),
            "diverse" => Ok(Model::Diverse),
            "snapshots" => Ok(Model::Snapshots),
            _ => Err(Error::param(
                "model",
                format!("unknown model `{s}` (expected repeated, diverse or snapshots)"),
            )),
        }
    }
}

/// A validated self-calibration problem: the data `y` (`[p, m]`), the measurement matrices
/// (`[p, m, n]`, or `[1, m, n]` for `Snapshots`) and the optional subspace `B` (`[m, k]`).
pub struct Problem<T: CalScalar> {
    op: SystemOperator<T>,
}

impl<T: CalScalar> Problem<T> {
    /// Validate and build.
    ///
    /// Errors: empty or non-finite arrays; inconsistent shapes; `k` outside `1..=m`;
    /// all-zero data; for the diagonal models without subspace, a sensor `i` with `y_{l,i} = 0`
    /// in every block (its gain is not identifiable); fewer measurements `p·m` than the
    /// `N − 1` degrees of freedom (the message gives the count needed).
    pub fn new(model: Model, y: Array2<T>, a: Array3<T>, b: Option<Array2<T>>) -> Result<Self> {
        let (p, m) = y.dim();
        if p == 0 || m == 0 {
            return Err(Error::Empty {
                what: "measurements y".into(),
            });
        }
        let (q, ma, n) = a.dim();
        if q == 0 || ma == 0 || n == 0 {
            return Err(Error::Empty {
                what: "measurement matrices A".into(),
            });
        }
        let q_expected = if model == Model::Snapshots { 1 } else { p };
        if q != q_expected || ma != m {
            return Err(Error::shape(
                format!("measurement matrices for model `{}`", model.as_str()),
                &[q_expected, m, n],
                &[q, ma, n],
            ));
        }
        check_finite("measurements y", y.iter())?;
        check_finite("measurement matrices A", a.iter())?;
        if let Some(b) = &b {
            let (mb, k) = b.dim();
            if mb != m {
                return Err(Error::shape("subspace B", &[m, k], &[mb, k]));
            }
            if k == 0 || k > m {
                return Err(Error::param(
                    "subspace B",
                    format!("needs 1 ≤ k ≤ m = {m} columns, got {k}"),
                ));
            }
            check_finite("subspace B", b.iter())?;
        }
        if y.iter().all(|v| *v == T::zero()) {
            return Err(Error::param(
                "measurements y",
                "are all zero: nothing to calibrate from",
            ));
        }
        if b.is_none() && model != Model::Diverse {
            for i in 0..m {
                if (0..p).all(|l| y[[l, i]] == T::zero()) {
                    return Err(Error::param(
                        "measurements y",
                        format!(
                            "sensor {i} measured zero in every block: its gain is not identifiable"
                        ),
                    ));
                }
            }
        }
        let k = b.as_ref().map_or(m, |b| b.dim().1);
        let nx = if model == Model::Repeated { n } else { p * n };
        let unknowns = k + nx;
        if p * m + 1 < unknowns {
            return Err(Error::param(
                "measurements y",
                format!(
                    "model `{}` has {unknowns} unknowns ({k} calibration + {nx} signal), determined up to scale: \
                     needs at least {} measurements (p·m), got {} (p = {p}, m = {m})",
                    model.as_str(),
                    unknowns - 1,
                    p * m
                ),
            ));
        }
        Ok(Problem {
            op: SystemOperator::new(model, y, a, b),
        })
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.op.model
    }
    /// `(p, m, n, k)`: blocks, measurements per block, signal length, calibration unknowns.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        (self.op.p, self.op.m, self.op.n, self.op.k)
    }
    /// The stacked homogeneous operator `A₀` (matrix-free).
    pub fn operator(&self) -> &SystemOperator<T> {
        &self.op
    }
    /// The data `y`, `[p, m]`.
    pub fn y(&self) -> &Array2<T> {
        &self.op.y
    }
    /// The measurement matrices, `[p, m, n]` (`[1, m, n]` for `Snapshots`).
    pub fn matrices(&self) -> &Array3<T> {
        &self.op.a
    }
    /// The subspace `B`, if any.
    pub fn subspace(&self) -> Option<&Array2<T>> {
        self.op.b.as_ref()
    }
}

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
/// `Mean` constraint, LSQR tolerance 1e-12 and 5000 iterations, at most 10 spectral outer
/// steps with tolerance 1e-12.
#[derive(Debug, Clone)]
pub struct Params<T> {
    /// LSQ or spectral.
    pub method: Method,
    /// Dense or matrix-free.
    pub backend: Backend,
    /// The scale constraint.
    pub constraint: Constraint<T>,
    /// Tolerance and budget of every LSQR solve (`damp` must be 0).
    pub krylov: KrylovParams,
    /// Maximum number of outer (inverse-iteration) steps of the matrix-free spectral method.
    pub spectral_iters: usize,
    /// Stop the outer steps when `1 − |⟨v_{t+1}, v_t⟩| ≤ spectral_tol`.
    pub spectral_tol: f64,
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
                tol: 1e-12,
                max_iters: 5000,
                damp: 0.0,
            },
            spectral_iters: 10,
            spectral_tol: 1e-12,
            dense_max_unknowns: 600,
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
    /// Total LSQR iterations (0 on the dense path).
    pub iterations: usize,
    /// Outer spectral steps (0 for LSQ and on the dense path).
    pub outer_iterations: usize,
}

fn constraint_vector<T: CalScalar>(c: &Constraint<T>, k: usize) -> Result<(Vec<T>, T)> {
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
struct Augmented<'a, T: CalScalar> {
    op: &'a SystemOperator<T>,
    w: Vec<T>,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<T: CalScalar> LinearOperator<T> for Augmented<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, z: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        let mut head = ArrayD::zeros(IxDyn(&[r]));
        self.op.apply_into(z.view(), head.view_mut());
        let y = y.as_slice_mut().unwrap();
        y[..r].copy_from_slice(head.as_slice().unwrap());
        let zs = z.as_slice().unwrap();
        y[r] = self.w.iter().zip(zs).map(|(&w, &z)| w.conj() * z).sum();
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut z: ArrayViewMutD<T>) {
        let r = self.ran[0] - 1;
        let ys = y.as_slice().unwrap();
        let head = ArrayViewD::from_shape(IxDyn(&[r]), &ys[..r]).unwrap();
        self.op.adjoint_into(head, z.view_mut());
        let last = ys[r];
        for (zi, &w) in z.as_slice_mut().unwrap().iter_mut().zip(&self.w) {
            *zi += w * last;
        }
    }
}

/// `u ↦ A₀ (u − q⟨q, u⟩)` with a unit vector `q` (adjoint `r ↦ P A₀ᴴ r`).
struct Projected<'a, T: CalScalar> {
    op: &'a SystemOperator<T>,
    q: ArrayD<T>,
}

impl<T: CalScalar> Projected<'_, T> {
    fn project(&self, u: &mut ArrayD<T>) {
        let c = vdot(self.q.view(), u.view());
        ndarray::Zip::from(u)
            .and(&self.q)
            .for_each(|u, &q| *u -= q * c);
    }
}

impl<T: CalScalar> LinearOperator<T> for Projected<'_, T> {
    fn domain_shape(&self) -> &[usize] {
        self.op.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.op.range_shape()
    }
    fn apply_into(&self, u: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        let mut v = u.to_owned();
        self.project(&mut v);
        self.op.apply_into(v.view(), y);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut u: ArrayViewMutD<T>) {
        let mut v = ArrayD::zeros(IxDyn(self.op.domain_shape()));
        self.op.adjoint_into(y, v.view_mut());
        self.project(&mut v);
        u.assign(&v);
    }
}

fn run_lsqr<T: CalScalar, A: LinearOperator<T> + ?Sized>(
    a: &A,
    b: ArrayViewD<T>,
    p: &KrylovParams,
) -> Result<(ArrayD<T>, usize)> {
    let mut s = Lsqr::new(a, b, None, 0.0)?;
    let crit = crate::iter::StopCriteria {
        max_iters: p.max_iters,
        rel_tol: <T as Scalar>::Real::zero(),
        residual_tol: Some(real(p.tol)),
        objective_target: None,
        divergence_factor: real(1e300),
    };
    let rep = crate::iter::run(&mut s, &crit, &mut crate::iter::NoObserver)?;
    Ok((s.into_x(), rep.iterations))
}

/// Solve a self-calibration problem with the paper's least-squares or spectral method.
///
/// Errors: invalid parameters or constraint; [`Error::Numerical`] when the solution has a
/// zero calibration entry (then `d = 1/s` does not exist), when the constraint is orthogonal
/// to the solution (`⟨w, h⟩ = 0`), or when a dense factorisation fails.
pub fn solve<T: CalScalar>(problem: &Problem<T>, params: &Params<T>) -> Result<Solution<T>> {
    params.krylov.validate()?;
    if params.krylov.damp != 0.0 {
        return Err(Error::param("damp", "must be 0 for self-calibration"));
    }
    if params.spectral_iters == 0 {
        return Err(Error::param("spectral_iters", "must be at least 1"));
    }
    if !(params.spectral_tol.is_finite() && params.spectral_tol >= 0.0) {
        return Err(Error::param(
            "spectral_tol",
            "must be finite and non-negative",
        ));
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
    let z: Vec<T> = if dense {
        let a0 = op.to_dense();
        match params.method {
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
        }
    } else {
        match params.method {
            Method::Lsq => {
                let aug = Augmented {
                    op,
                    w: w.clone(),
                    dom: [nn],
                    ran: [rows + 1],
                };
                let mut b = ArrayD::zeros(IxDyn(&[rows + 1]));
                b[rows] = c;
                let (z, it) = run_lsqr(&aug, b.view(), &params.krylov)?;
                iterations += it;
                z.into_raw_vec_and_offset().0
            }
            Method::Spectral => {
                let mut v = ArrayD::from_shape_vec(IxDyn(&[nn]), w.clone()).unwrap();
                let nv = norm2_sq(v.view()).sqrt();
                v.mapv_inplace(|a| a.scale(<T as Scalar>::Real::one() / nv));
                let mut ax = ArrayD::zeros(IxDyn(&[rows]));
                for _ in 0..params.spectral_iters {
                    outer += 1;
                    // v_new = v + P u, u = argmin ‖A₀(v + P u)‖
                    op.apply_into(v.view(), ax.view_mut());
                    let rhs = ax.mapv(|a| -a);
                    let proj = Projected { op, q: v.clone() };
                    let (mut u, it) = run_lsqr(&proj, rhs.view(), &params.krylov)?;
                    iterations += it;
                    proj.project(&mut u);
                    let mut vn = &v + &u;
                    let nrm = norm2_sq(vn.view()).sqrt();
                    if !(nrm.is_finite() && nrm > <T as Scalar>::Real::zero()) {
                        return Err(Error::Numerical(
                            "spectral inverse iteration produced a zero or non-finite vector"
                                .into(),
                        ));
                    }
                    vn.mapv_inplace(|a| a.scale(<T as Scalar>::Real::one() / nrm));
                    let cosang = vdot(v.view(), vn.view()).modulus();
                    v = vn;
                    if (<T as Scalar>::Real::one() - cosang).to_f64_lossless()
                        <= params.spectral_tol
                    {
                        break;
                    }
                }
                v.into_raw_vec_and_offset().0
            }
        }
    };
    finish_solution(op, z, &wh, c, params.method, dense, iterations, outer)
}

#[allow(clippy::too_many_arguments)]
fn finish_solution<T: CalScalar>(
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

/// `d = 1/s` element-wise (diagonal models) or the filter `f = F⁻¹(1 / F g)` (`Diverse`).
/// Errors when an entry (a Fourier coefficient) is zero.
pub fn calibration_from_inverse<T: CalScalar>(model: Model, s: &Array1<T>) -> Result<Array1<T>> {
    let tiny = <T as Scalar>::Real::min_positive_value();
    match model {
        Model::Diverse => {
            let c = Circ::<<T as Scalar>::Real>::new(s.len());
            let sh = c.dft(s.as_slice().unwrap());
            if sh.iter().any(|v| v.norm() <= tiny) {
                return Err(Error::Numerical(
                    "the inverse filter has a zero Fourier coefficient: the filter is not defined"
                        .into(),
                ));
            }
            let fh = sh.iter().map(|v| v.inv()).collect();
            let mut out = vec![T::zero(); s.len()];
            c.idft_into(fh, &mut out);
            Ok(Array1::from(out))
        }
        _ => {
            if s.iter().any(|v| v.modulus() <= tiny) {
                return Err(Error::Numerical(
                    "a calibration entry s_i is zero: the gain d_i = 1/s_i is not defined".into(),
                ));
            }
            Ok(s.mapv(|v| T::one() / v))
        }
    }
}

/// The inverse of [`calibration_from_inverse`]: `s = 1/d`, or `g = F⁻¹(1 / F f)`.
pub fn inverse_from_calibration<T: CalScalar>(model: Model, d: &Array1<T>) -> Result<Array1<T>> {
    calibration_from_inverse(model, d)
}

/// `min_α ‖α est − truth‖ / ‖truth‖` over scalars `α` (complex for complex `T`): the relative
/// error up to the scale ambiguity. Computed at the minimiser `α = ⟨est, truth⟩ / ‖est‖²`
/// (not as `sqrt(1 − cos²)`, which loses accuracy for small errors). Returns 1 when `est` is
/// zero and 0 when both are zero.
pub fn scale_invariant_error<T: Scalar>(
    est: ArrayView1<T>,
    truth: ArrayView1<T>,
) -> <T as Scalar>::Real {
    let e = est.into_dyn();
    let t = truth.into_dyn();
    let ee = norm2_sq(e.view());
    let tt = norm2_sq(t.view());
    if tt == <T as Scalar>::Real::zero() {
        return if ee == <T as Scalar>::Real::zero() {
            <T as Scalar>::Real::zero()
        } else {
            <T as Scalar>::Real::one()
        };
    }
    if ee == <T as Scalar>::Real::zero() {
        return <T as Scalar>::Real::one();
    }
    let alpha = vdot(e.view(), t.view()) * T::from_real(<T as Scalar>::Real::one() / ee);
    let mut r = <T as Scalar>::Real::zero();
    ndarray::Zip::from(&e)
        .and(&t)
        .for_each(|&a, &b| r += (a * alpha - b).abs2());
    (r / tt).sqrt()
}

/// Recovery errors up to scale ([`scale_invariant_error`]) of a [`Solution`].
#[derive(Debug, Clone, Copy)]
pub struct Errors {
    /// Error of the calibration inverse `s`.
    pub s: f64,
    /// Error of the signals `x` (all blocks together).
    pub x: f64,
    /// Error of `z = (s, x)` with one common scale.
    pub joint: f64,
}

impl Errors {
    /// Compare `sol` with the truth `s_true` (`1/d`, or the inverse filter) and `x_true`
    /// (shape of `sol.x`).
    pub fn measure<T: CalScalar>(
        sol: &Solution<T>,
        s_true: &Array1<T>,
        x_true: &Array2<T>,
    ) -> Self {
        let xs: Vec<T> = sol.x.iter().copied().collect();
        let xt: Vec<T> = x_true.iter().copied().collect();
        let zs: Vec<T> = sol.s.iter().copied().chain(xs.iter().copied()).collect();
        let zt: Vec<T> = s_true.iter().copied().chain(xt.iter().copied()).collect();
        let f = |a: &[T], b: &[T]| {
            if a.len() != b.len() {
                return f64::INFINITY;
            }
            scale_invariant_error(ArrayView1::from(a), ArrayView1::from(b)).to_f64_lossless()
        };
        Errors {
            s: f(sol.s.as_slice().unwrap(), s_true.as_slice().unwrap()),
            x: f(&xs, &xt),
            joint: f(&zs, &zt),
        }
    }
}

/// Description of a random test instance for [`synthetic`].
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// The model.
    pub model: Model,
    /// Measurements per block.
    pub m: usize,
    /// Signal length.
    pub n: usize,
    /// Number of blocks.
    pub p: usize,
    /// Subspace dimension `k` for `s = B h` (`None`: no subspace).
    pub k: Option<usize>,
    /// Signal-to-noise ratio `20 log₁₀(‖y_clean‖/‖e‖)` in dB (`None`: noiseless).
    pub snr_db: Option<f64>,
}

impl InstanceSpec {
    /// Noiseless instance without subspace.
    pub fn new(model: Model, m: usize, n: usize, p: usize) -> Self {
        InstanceSpec {
            model,
            m,
            n,
            p,
            k: None,
            snr_db: None,
        }
    }
}

/// A random instance with its ground truth.
pub struct Instance<T: CalScalar> {
    /// The problem built from the noisy data.
    pub problem: Problem<T>,
    /// True calibration `d` (gains, or the filter `f` for `Diverse`).
    pub d: Array1<T>,
    /// True calibration inverse `s` (`1/d`, or the inverse filter `g`).
    pub s: Array1<T>,
    /// True subspace coefficients (when a subspace is used).
    pub h: Option<Array1<T>>,
    /// True signals, `[1, n]` (`Repeated`) or `[p, n]`.
    pub x: Array2<T>,
}

/// Draw a random instance (seeded): Gaussian `A_l`/`C_l` (i.i.d. `N(0,1)`, complex normal for
/// complex `T`) and signals; gains `d_i = (1 + u_i/2) e^{iφ_i}` with `u_i ~ U[−1, 1]` and, for
/// complex `T`, `φ_i ~ U[−π, π)`; the filter of `Diverse` is `f_j = r_j 0.4^j` for
/// `j < min(m, 8)` with `r_j ~ U[0.9, 1.1]` (and a random phase for `j ≥ 1` when complex): its
/// DFT has no zeros since `Σ_{j≥1} |f_j| ≤ 0.74 < 0.9 ≤ f_0`. With a subspace, `B` holds the `k` lowest-frequency
/// real cosines `cos(2π j i/m)` (`j = 0..k`), `h = (1, 0.3 h̃)` with `h̃` normal and then scaled
/// so that `min |s_i| ≥ 0.5`, and `d = 1/s`; for `Diverse` the subspace is the first `k` time
/// taps (an FIR inverse filter `g`, scaled so that `Σ_{j≥1} |g_j| ≤ 0.5`), and `f` its inverse.
pub fn synthetic<T: CalScalar>(spec: &InstanceSpec, seed: u64) -> Result<Instance<T>> {
    let (m, n, p) = (spec.m, spec.n, spec.p);
    if m == 0 || n == 0 || p == 0 {
        return Err(Error::param("spec", "m, n and p must be positive"));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x05e1_fca1);
    let q = if spec.model == Model::Snapshots { 1 } else { p };
    let a = crate::testing::randn::<T>(&[q, m, n], seed.wrapping_mul(3).wrapping_add(1))
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let xr = if spec.model == Model::Repeated { 1 } else { p };
    let x = crate::testing::randn::<T>(&[xr, n], seed.wrapping_mul(3).wrapping_add(2))
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let mut bmat = None;
    let mut htrue = None;
    let (d, s) = match (spec.k, spec.model) {
        (Some(k), _) => {
            if k == 0 || k > m {
                return Err(Error::param("k", format!("needs 1 ≤ k ≤ m = {m}")));
            }
            let b = if spec.model == Model::Diverse {
                // inverse filter supported on the first k taps (an FIR inverse filter)
                Array2::from_shape_fn((m, k), |(i, j)| if i == j { T::one() } else { T::zero() })
            } else {
                Array2::from_shape_fn((m, k), |(i, j)| {
                    T::from_f64((2.0 * std::f64::consts::PI * (j * i) as f64 / m as f64).cos())
                })
            };
            let ht = crate::testing::randn::<T>(&[k], seed.wrapping_mul(3).wrapping_add(3));
            let mut h = Array1::from_shape_fn(k, |j| {
                if j == 0 {
                    T::one()
                } else {
                    ht[j].scale(real(0.3))
                }
            });
            // keep |s_i| ≥ 0.5 (diagonal models), or Σ_{j≥1} |g_j| ≤ 0.5 (FIR inverse filter,
            // so that its DFT has no zeros): shrink the variation if needed
            loop {
                let ok = if spec.model == Model::Diverse {
                    h.iter()
                        .skip(1)
                        .map(|v| v.modulus().to_f64_lossless())
                        .sum::<f64>()
                        <= 0.5
                } else {
                    b.dot(&h).iter().all(|v| v.modulus() >= real(0.5))
                };
                if ok {
                    break;
                }
                for j in 1..k {
                    h[j] = h[j].scale(real(0.5));
                }
            }
            let s = b.dot(&h);
            let d = calibration_from_inverse(spec.model, &s)?;
            bmat = Some(b);
            htrue = Some(h);
            (d, s)
        }
        (None, Model::Diverse) => {
            let len = m.min(8);
            let mut f = Array1::<T>::zeros(m);
            for j in 0..len {
                let r: f64 = 1.0 + 0.1 * rng.random_range(-1.0..1.0);
                f[j] = T::from_f64(r * 0.4f64.powi(j as i32));
                if T::IS_COMPLEX && j > 0 {
                    let ph: f64 = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                    f[j] *= T::from_parts(real(ph.cos()), real(ph.sin()));
                }
            }
            let g = calibration_from_inverse(Model::Diverse, &f)?;
            (f, g)
        }
        (None, _) => {
            let d = Array1::from_shape_fn(m, |_| {
                let u: f64 = rng.random_range(-1.0..1.0);
                let mag = 1.0 + 0.5 * u;
                if T::IS_COMPLEX {
                    let ph: f64 = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                    T::from_parts(real(mag * ph.cos()), real(mag * ph.sin()))
                } else {
                    T::from_f64(mag)
                }
            });
            let s = d.mapv(|v| T::one() / v);
            (d, s)
        }
    };
    // clean data
    let mut y = Array2::<T>::zeros((p, m));
    let circ = Circ::<<T as Scalar>::Real>::new(m);
    for l in 0..p {
        let al = a.index_axis(ndarray::Axis(0), if q == 1 { 0 } else { l });
        let xl = x.row(if xr == 1 { 0 } else { l });
        let u = al.dot(&xl);
        match spec.model {
            Model::Diverse => {
                let fh = circ.dft(d.as_slice().unwrap());
                let uh = circ.dft(u.as_slice().unwrap());
                let prod = fh.iter().zip(&uh).map(|(a, b)| a * b).collect();
                let mut out = vec![T::zero(); m];
                circ.idft_into(prod, &mut out);
                y.row_mut(l).assign(&Array1::from(out));
            }
            _ => {
                for i in 0..m {
                    y[[l, i]] = d[i] * u[i];
                }
            }
        }
    }
    if let Some(snr) = spec.snr_db {
        if !snr.is_finite() {
            return Err(Error::param("snr_db", "must be finite"));
        }
        let e = crate::testing::randn::<T>(&[p, m], seed.wrapping_mul(3).wrapping_add(4));
        let ny = norm2_sq(y.view().into_dyn()).sqrt().to_f64_lossless();
        let ne = norm2_sq(e.view()).sqrt().to_f64_lossless();
        let sc = ny / ne / 10f64.powf(snr / 20.0);
        let e = e.into_dimensionality::<ndarray::Ix2>().unwrap();
        y = y + e.mapv(|v| v.scale(real(sc)));
    }
    let problem = Problem::new(spec.model, y, a, bmat)?;
    Ok(Instance {
        problem,
        d,
        s,
        h: htrue,
        x,
    })
}
