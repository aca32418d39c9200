//! Proximal splitting methods for `min_x f(x) + λ R(x)` with a smooth data term `f` and a
//! [`Prox`](crate::prox::Prox) term `R`.
//!
//! - [`fista`](mod@fista): ISTA, FISTA (Beck & Teboulle 2009) with backtracking, adaptive restart
//!   (O'Donoghue & Candès 2015) and the monotone variant MFISTA, for the least-squares data term
//!   `f(x) = ½‖A x − y‖²` with any [`LinearOperator`](crate::op::LinearOperator) `A`.
//! - [`lasso`](mod@lasso): a working-set solver (Celer-style, duality-gap certified) for the weighted Lasso
//!   with a dense [`Matrix`](crate::op::Matrix) dictionary and a sparse solution, FISTA or
//!   coordinate descent on the working set.

pub mod fista;
pub mod lasso;

pub use fista::{fista, ista, solve, Params, ProximalGradient, Restart, Variant};
pub use lasso::{lasso, lasso_with, InnerSolver, LassoInfo, LassoParams, WorkingSetLasso};
