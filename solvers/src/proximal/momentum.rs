//! Nesterov momentum for accelerated proximal gradient methods, and its adaptive restart: the
//! one implementation that FISTA ([`crate::proximal::fista`](mod@crate::proximal::fista)), the plug-and-play FISTA of
//! [`crate::pnp`] and the inner solver of the working-set Lasso ([`crate::proximal::lasso`](mod@crate::proximal::lasso))
//! share.
//!
//! **The sequence** (Beck & Teboulle 2009; Nesterov 1983): `t₁ = 1`,
//!
//! ```text
//! t_{k+1} = (1 + √(1 + 4 t_k²)) / 2,      β_k = (t_k − 1) / t_{k+1}
//! ```
//!
//! and the next gradient point is `z_{k+1} = x_{k+1} + β_k (x_{k+1} − x_k)`. `t_k ≥ (k + 1)/2`,
//! which gives the `O(1/k²)` rate of FISTA; `β_k → 1`.
//!
//! **Adaptive restart** (O'Donoghue & Candès, "Adaptive restart for accelerated gradient
//! schemes", Found. Comput. Math. 15, 2015): the momentum is reset (`t ← 1`, so the next
//! coefficient is `β = 0`) when
//! - *function scheme*: the objective increased, `F(x_{k+1}) > F(x_k)`;
//! - *gradient scheme*: the momentum points uphill along the generalised gradient,
//!   `Re⟨z_k − x_{k+1}, x_{k+1} − x_k⟩ > 0` ([`gradient_restart_inner`]).
//!
//! Two restart conventions are in use and both are expressed with [`Momentum`]: FISTA resets
//! `t ← 1` and then advances as usual (`β = 0`, next `t = (1 + √5)/2`); the Lasso's inner
//! solver resets `t ← 1` and skips the advance (`β = 0`, next `t = 1`). They differ only in
//! the `t` carried into the step after a restart.
//!
//! ```
//! use sparseinv_solvers::proximal::momentum::Momentum;
//! let mut m = Momentum::<f64>::new();
//! assert_eq!(m.advance(), 0.0); // t: 1 → (1 + √5)/2, β₁ = 0
//! let b2 = m.advance();
//! assert!((b2 - ((1.0 + 5f64.sqrt()) / 2.0 - 1.0) / m.t()).abs() < 1e-15);
//! m.reset();
//! assert_eq!(m.t(), 1.0);
//! ```

use crate::scalar::{real, Real, Scalar};

/// The Nesterov/FISTA momentum sequence `t_k` and its extrapolation coefficients; see the
/// [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Momentum<R> {
    t: R,
}

impl<R: Real> Default for Momentum<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Real> Momentum<R> {
    /// `t₁ = 1`.
    pub fn new() -> Self {
        Momentum { t: R::one() }
    }
    /// The current `t_k`.
    pub fn t(&self) -> R {
        self.t
    }
    /// Restart: `t ← 1`.
    pub fn reset(&mut self) {
        self.t = R::one();
    }
    /// `t_{k+1} = (1 + √(1 + 4t_k²))/2`; returns `β_k = (t_k − 1)/t_{k+1}` and keeps `t_{k+1}`.
    pub fn advance(&mut self) -> R {
        let one = R::one();
        let t = self.t;
        let t_new = (one + (one + real::<R>(4.0) * t * t).sqrt()) * real::<R>(0.5);
        self.t = t_new;
        (t - one) / t_new
    }
}

/// Adaptive momentum restart for FISTA/MFISTA (O'Donoghue & Candès 2015). Ignored by ISTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Never restart.
    None,
    /// Restart when the objective increases, `F(x_{k+1}) > F(x_k)`.
    Function,
    /// Restart when `⟨z − x_{k+1}, x_{k+1} − x_k⟩ > 0` (the momentum step goes uphill along
    /// the generalised gradient). Cheap and numerically robust; the default.
    #[default]
    Gradient,
}

impl Restart {
    /// Whether this scheme restarts, given the new and old objectives and the gradient-scheme
    /// inner product `Re⟨z_k − x_{k+1}, x_{k+1} − x_k⟩` ([`gradient_restart_inner`]).
    pub fn triggered<R: Real>(&self, f_new: R, f_old: R, grad_inner: R) -> bool {
        match self {
            Restart::None => false,
            Restart::Function => f_new > f_old,
            Restart::Gradient => grad_inner > R::zero(),
        }
    }
}

/// `Re⟨z − u, u − x⟩ = Re Σ_i conj(z_i − u_i)(u_i − x_i)`: the gradient-scheme restart test
/// quantity for the gradient point `z`, the new iterate `u` and the previous iterate `x`
/// (slices of equal length).
pub fn gradient_restart_inner<T: Scalar>(z: &[T], u: &[T], x: &[T]) -> T::Real {
    (0..u.len())
        .map(|i| ((z[i] - u[i]).conj() * (u[i] - x[i])).re())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_matches_closed_recursion_and_lower_bound() {
        let mut m = Momentum::<f64>::new();
        let mut t = 1.0f64;
        for k in 1..200 {
            let tn = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            let b = m.advance();
            assert_eq!(b, (t - 1.0) / tn);
            assert_eq!(m.t(), tn);
            assert!(tn >= (k as f64 + 2.0) / 2.0);
            t = tn;
        }
    }

    #[test]
    fn restart_rules() {
        assert!(Restart::Function.triggered(2.0, 1.0, -1.0));
        assert!(!Restart::Function.triggered(1.0, 2.0, 1.0));
        assert!(Restart::Gradient.triggered(1.0, 2.0, 1e-30));
        assert!(!Restart::Gradient.triggered(3.0, 2.0, 0.0));
        assert!(!Restart::None.triggered(3.0, 2.0, 1.0));
        let z = [1.0f64, 2.0];
        let u = [0.0f64, 1.0];
        let x = [-1.0f64, 3.0];
        // (1)(1) + (1)(−2) = −1
        assert_eq!(gradient_restart_inner(&z, &u, &x), -1.0);
    }
}
