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
//! diagonal models or `O(pm log m)` FFTs for `Diverse`; each product is one faer
//! matrix–vector or matrix–matrix product on all threads). For `Repeated`, the two products
//! of an LSQR iteration (`u ← A₀ v − α u`, then `A₀ᴴ u`) are fused
//! ([`LinearOperator::apply_sub_adjoint_into`](crate::op::LinearOperator::apply_sub_adjoint_into)):
//! one pass over the stacked `A`, block of rows by block of rows, instead of two, which
//! halves the memory traffic that bounds an iteration:
//!
//! - LSQ: [`crate::krylov::Lsqr`] on `A_w`;
//! - spectral: *inverse iteration by constrained least squares*. Starting from `v₀` with
//!   `(v₀)_h = w`, iterate `v_{t+1} ∝ argmin_v ‖A₀ v‖ s.t. ⟨v_t, v⟩ = 1`. The minimiser is
//!   `v ∝ (A₀ᴴA₀)⁻¹ v_t` (Lagrange), so this is inverse iteration on `A₀ᴴA₀` without forming
//!   or factoring it; each step is an LSQR solve on `A₀ P_t` with `P_t` the projector onto
//!   `v_t^⊥` (the constraint is then exact). The angle to the smallest singular vector
//!   decreases by the factor `σ_N²/σ_{N−1}²` per outer step: one step suffices in the
//!   noiseless case (`σ_N = 0`), a few when the noise is small. [`SpectralIteration`] is
//!   this iteration; by default ([`Params::stop`]) it stops when
//!   `1 − |⟨v_{t+1}, v_t⟩| ≤ 1e-12` or after 10 steps.
//!
//! For the diagonal models without a subspace (`Repeated`, `Snapshots`, `B = None`) both
//! matrix-free solvers eliminate the calibration exactly (variable projection, Golub &
//! Pereyra 1973): for a fixed signal `x` the best `s` is a diagonal least-squares problem
//! (`G = DᴴD = diag(Σ_l |y_{l,i}|²)` plus the rank-one constraint term, closed form), so LSQR
//! runs on the signal alone with the operator `x ↦ A₀ (s(x), x)`, which is about as well
//! conditioned as `A` itself. On the `benches/peers/selfcal.py` system (m = 1536, n = 512,
//! p = 4, Gaussian `A_l`) LSQ needs 22 LSQR iterations where the augmented system needs 185,
//! and the spectral method 44 inner iterations where the projected one needed 446; each
//! iteration then costs two passes over `A` (a product and an adjoint product) instead of
//! the fused one, 4–5× faster overall (6.5× for the spectral method). The same minimisers
//! (tests against the dense QR and SVD solutions).
//!
//! # Iteration control
//!
//! Both levels of iteration use the shared [`crate::iter`] framework: every LSQR solve stops
//! by [`Params::krylov`]`.stop`, the outer spectral steps by [`Params::stop`], and [`solve`]
//! takes an [`Observer`](crate::iter::Observer) that sees the iterate of the matrix-free
//! path (and can interrupt it) and returns the run's [`Report`](crate::iter::Report) beside
//! the [`Solution`].
//!
//! # Layout
//!
//! The problem and its models are in `problem.rs` ([`Model`], [`Problem`],
//! [`calibration_from_inverse`], [`scale_invariant_error`], [`Errors`]), the solvers in
//! `solve.rs` ([`solve`], [`SpectralIteration`], [`Params`]) and `als.rs`
//! ([`alternating_least_squares`]), the stacked operator in `system.rs`
//! ([`SystemOperator`]), and the seeded random instances in the public module
//! [`synthetic`](mod@synthetic) (re-exported here).
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
//! use sparseinv_solvers::iter::NoObserver;
//! use sparseinv_solvers::selfcal::{synthetic, solve, Model, Params, Errors, InstanceSpec};
//! let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 16, 4, 3), 1).unwrap();
//! let (sol, _report) = solve(&inst.problem, &Params::default(), &mut NoObserver).unwrap();
//! let e = Errors::measure(&sol, &inst.s, &inst.x);
//! assert!(e.joint < 1e-8);
//! ```

mod als;
mod problem;
mod solve;
pub mod synthetic;
mod system;

/// The scalar bound of the self-calibration solvers (`f32`, `f64`, `C32`, `C64`), shared with
/// [`crate::sbl`]; see [`crate::dense`].
pub use crate::dense::DenseScalar;
pub use als::{alternating_least_squares, Als, AlsParams};
pub use problem::{
    calibration_from_inverse, inverse_from_calibration, scale_invariant_error, Errors, Model,
    Problem,
};
pub use solve::{solve, Backend, Constraint, Method, Params, Solution, SpectralIteration};
pub use synthetic::{synthetic, Instance, InstanceSpec};
pub use system::SystemOperator;
