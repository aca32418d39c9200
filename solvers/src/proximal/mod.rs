//! Proximal splitting methods for `min_x f(x) + λ R(x)` with a smooth data term `f` and a
//! [`Prox`](crate::prox::Prox) term `R`.
//!
//! - [`fista`]: ISTA, FISTA (Beck & Teboulle 2009) with backtracking, adaptive restart
//!   (O'Donoghue & Candès 2015) and the monotone variant MFISTA, for the least-squares data term
//!   `f(x) = ½‖A x − y‖²` with any [`LinearOperator`](crate::op::LinearOperator) `A`.

pub mod fista;

pub use fista::{fista, ista, solve, Params, ProximalGradient, Restart, Variant};
