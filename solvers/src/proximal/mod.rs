//! Proximal splitting methods for `min_x f(x) + R(x)` with a smooth data term `f` and a
//! [`Prox`](crate::prox::Prox) term `R`, and for the composite problems
//! `min_x f(x) + g(x) + Σ_i h_i(L_i x)`.
//!
//! - [`fista`](mod@fista): ISTA, FISTA (Beck & Teboulle 2009) with backtracking, adaptive restart
//!   (O'Donoghue & Candès 2015) and the monotone variant MFISTA, for the least-squares data term
//!   `f(x) = ½‖A x − y‖²` with any [`LinearOperator`](crate::op::LinearOperator) `A`.
//! - [`pdhg`](mod@pdhg): Condat–Vũ primal–dual splitting (PDHG / Chambolle–Pock with a smooth
//!   term) for `min f(x) + g(x) + Σ_i h_i(L_i x)` with any number of operators `L_i`.
//! - [`admm`](mod@admm): ADMM for `min ½‖A x − y‖² + g(L x)` with an exact Fourier x-update
//!   for diagonalisable `A`, conjugate gradients otherwise, or a linearised update; plug-and-play
//!   ADMM ([`crate::pnp`]) is a configuration of it.
//! - [`momentum`](mod@momentum): the Nesterov momentum sequence and its adaptive restart, shared
//!   by FISTA, plug-and-play FISTA and the Lasso's inner solver.
//! - [`lasso`](mod@lasso): a working-set solver (Celer-style, duality-gap certified) for the weighted Lasso
//!   with a dense [`Matrix`](crate::op::Matrix) dictionary and a sparse solution, FISTA or
//!   coordinate descent on the working set.

pub mod admm;
pub mod fista;
pub mod lasso;
pub mod momentum;
pub mod pdhg;

pub use admm::{admm, Admm, AdmmParams, AdmmProblem, XUpdate};
pub use fista::{fista, ista, solve, Params, ProximalGradient, Restart, Variant};
pub use lasso::{lasso, lasso_with, InnerSolver, LassoInfo, LassoParams, WorkingSetLasso};
pub use momentum::Momentum;
pub use pdhg::{pdhg, LeastSquares, Pdhg, PdhgParams, Problem, SmoothTerm, ZeroSmooth};
