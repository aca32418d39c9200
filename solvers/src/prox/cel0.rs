//! CEL0, the continuous exact l0 penalty of Soubies, Blanc-Féraud & Aubert.

use super::weights::{check_weight, with_modulus};
use super::Prox;
use crate::error::{Error, Result};
use crate::op::LinearOperator;
use crate::scalar::{real, Real, Scalar};
use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};

/// CEL0, the continuous exact l0 relaxation (Soubies, Blanc-Féraud & Aubert, "A continuous
/// exact ℓ0 penalty (CEL0) for least squares regularized problem", SIAM J. Imaging Sci. 8(3),
/// 2015):
///
/// `φ(x) = Σᵢ λ − (aᵢ²/2) (|xᵢ| − sqrt(2λ)/aᵢ)² · 1{|xᵢ| ≤ sqrt(2λ)/aᵢ}`,
///
/// with `aᵢ = ‖A eᵢ‖₂` the norm of column `i` of the forward operator `A`. Replacing
/// `λ‖x‖₀` by `φ` in `½‖Ax − y‖² + λ‖x‖₀` keeps the global minimisers and removes some local
/// ones. Each term equals `aᵢ sqrt(2λ) |xᵢ| − aᵢ² xᵢ²/2` for `|xᵢ| ≤ sqrt(2λ)/aᵢ` and `λ`
/// beyond (a column with `aᵢ = 0` contributes `0`). Acts on the modulus, so complex inputs
/// work too.
///
/// Prox (`θᵢ = sqrt(2λ)/aᵢ`, `u = |vᵢ|`, phase kept):
///
/// - `τaᵢ² < 1` (the scalar problem is then strictly convex; the paper's condition):
///   `prox(vᵢ) = sign(vᵢ) · min(u, max(u − τ aᵢ sqrt(2λ), 0) / (1 − τaᵢ²))`;
/// - `τaᵢ² ≥ 1`: the penalty is concave enough to make the scalar problem non-convex. Rather
///   than refuse, we return its exact global minimiser, which is hard thresholding:
///   `vᵢ` if `u > sqrt(2τλ)`, else `0` (ties to zero). Proof: on `[0, θᵢ]` the objective is
///   concave, so the minimum is at `0` or at the minimiser `max(u, θᵢ)` of the outer piece,
///   and `sqrt(2τλ) ≥ θᵢ` there.
///
/// Proximal algorithms with step `τ = 1/‖A‖²` always satisfy `τaᵢ² ≤ 1` since `aᵢ ≤ ‖A‖`.
///
/// ```
/// use sparseinv_solvers::prox::{Cel0, Prox};
/// use ndarray::array;
/// // λ = 0.5 → sqrt(2λ) = 1; column norms a = 1, 2
/// let p = Cel0::new(0.5f64, array![1.0, 2.0].into_dyn()).unwrap();
/// // τ = 0.2: τa² = 0.2, 0.8 (< 1): min(u, (u − τa)/(1 − τa²))
/// let x = p.prox(array![0.6f64, 0.6].into_dyn().view(), 0.2);
/// assert!((x[0] - 0.5).abs() < 1e-15 && x[1] == 0.6);
/// // φ = λ beyond sqrt(2λ)/a, and a·sqrt(2λ)|x| − a²x²/2 below
/// assert!((Prox::<f64>::value(&p, array![3.0, 0.25].into_dyn().view()) - 0.875).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cel0<R: Real> {
    lambda: R,
    a: ArrayD<R>,
}

impl<R: Real> Cel0<R> {
    /// CEL0 with weight `λ ≥ 0` and column norms `aᵢ ≥ 0`, given as an array of the shape of
    /// the unknown `x`. Errors on a negative or non-finite `λ` or norm, or an empty array.
    pub fn new(lambda: R, col_norms: ArrayD<R>) -> Result<Self> {
        check_weight("lambda", lambda)?;
        if col_norms.is_empty() {
            return Err(Error::Empty {
                what: "CEL0 column norms".into(),
            });
        }
        for (i, &a) in col_norms.iter().enumerate() {
            if !a.is_finite() {
                return Err(Error::NonFinite {
                    what: "CEL0 column norms".into(),
                    index: i,
                });
            }
            if a < R::zero() {
                return Err(Error::param(
                    "col_norms",
                    format!("must be >= 0, got {a} at flat index {i}"),
                ));
            }
        }
        Ok(Cel0 {
            lambda,
            a: col_norms,
        })
    }

    /// CEL0 for a dense `m × n` matrix `A` (any scalar type): `aⱼ = ‖A[:, j]‖₂`, so the
    /// unknown is a vector of length `n`.
    pub fn from_matrix<T: Scalar<Real = R>>(lambda: R, a: ArrayView2<T>) -> Result<Self> {
        if a.is_empty() {
            return Err(Error::Empty {
                what: "CEL0 matrix".into(),
            });
        }
        let norms = a
            .axis_iter(Axis(1))
            .map(|col| {
                let s: f64 = col.iter().map(|z| z.abs2().to_f64_lossless()).sum();
                real::<R>(s.sqrt())
            })
            .collect::<Vec<_>>();
        Self::new(
            lambda,
            ArrayD::from_shape_vec(IxDyn(&[norms.len()]), norms).unwrap(),
        )
    }

    /// CEL0 for the least-squares term `½‖A x − y‖²` of any operator `A`: the column norms
    /// `aᵢ = ‖A eᵢ‖₂` come from [`LinearOperator::column_norms_sq`] (shape: the domain of
    /// `A`), so a user with, e.g., a masked convolution `Compose::new(mask, conv)` need not
    /// derive them. They are exact and in closed form for masks, subsamplings, diagonals,
    /// matrices, `Conv2d` (every boundary mode), Kronecker products, scalings, stacks and
    /// compositions of a mask/diagonal after these; other operators are probed with basis
    /// vectors, which errs above [`crate::op::PROBE_WORK_LIMIT`] rather than run for hours.
    ///
    /// ```
    /// use sparseinv_solvers::op::{Boundary, Compose, Conv2d, Mask};
    /// use sparseinv_solvers::prox::Cel0;
    /// use ndarray::{array, Array2};
    /// // 3×3 box blur (Same: zero outside), then keep the left half of a 4×4 image
    /// let k = Array2::from_elem((3, 3), 1.0 / 9.0);
    /// let conv = Conv2d::new([4, 4], k.view(), Boundary::Same).unwrap();
    /// let mask = Mask::new(Array2::from_shape_fn((4, 4), |(_, j)| j < 2).into_dyn());
    /// let a = Compose::new(mask, conv).unwrap();
    /// let p = Cel0::from_operator(0.1, &a).unwrap();
    /// // pixel (1, 1): all 9 outputs it reaches are inside, 6 of them kept (columns 0, 1)
    /// assert!((p.col_norms()[[1, 1]] - (6.0f64 / 81.0).sqrt()).abs() < 1e-12);
    /// ```
    pub fn from_operator<T: Scalar<Real = R>, A: LinearOperator<T> + ?Sized>(
        lambda: R,
        op: &A,
    ) -> Result<Self> {
        if op.domain_size() == 0 {
            return Err(Error::Empty {
                what: "CEL0 operator domain".into(),
            });
        }
        Self::new(lambda, op.column_norms_sq()?.mapv_into(|v| v.sqrt()))
    }

    /// `λ`.
    pub fn lambda(&self) -> R {
        self.lambda
    }
    /// The column norms `aᵢ`.
    pub fn col_norms(&self) -> &ArrayD<R> {
        &self.a
    }
}

/// `φ` for one element: `u = |x|`, `s = sqrt(2λ)`.
pub(crate) fn cel0_value(u: f64, lambda: f64, a: f64) -> f64 {
    let s = (2.0 * lambda).sqrt();
    if a * u <= s {
        a * s * u - 0.5 * a * a * u * u
    } else {
        lambda
    }
}

/// Global minimiser of `½(x − u)² + τ φ(x)` over `x ≥ 0` for `u ≥ 0`.
pub(crate) fn cel0_prox(u: f64, tau: f64, lambda: f64, a: f64) -> f64 {
    let ta2 = tau * a * a;
    if ta2 < 1.0 {
        let s = (2.0 * lambda).sqrt();
        ((u - tau * a * s).max(0.0) / (1.0 - ta2)).min(u)
    } else if u * u > 2.0 * tau * lambda {
        u
    } else {
        0.0
    }
}

impl<R: Real, T: Scalar<Real = R>> Prox<T> for Cel0<R> {
    fn value(&self, x: ArrayViewD<T>) -> R {
        assert_eq!(
            self.a.shape(),
            x.shape(),
            "CEL0 column norms do not match the argument; validate with Prox::check_shape"
        );
        let l = self.lambda.to_f64_lossless();
        let mut acc = 0.0f64;
        Zip::from(&x).and(&self.a).for_each(|&xi, &ai| {
            acc += cel0_value(xi.modulus().to_f64_lossless(), l, ai.to_f64_lossless());
        });
        real(acc)
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: R, out: ArrayViewMutD<T>) {
        assert_eq!(
            self.a.shape(),
            v.shape(),
            "CEL0 column norms do not match the argument; validate with Prox::check_shape"
        );
        let l = self.lambda.to_f64_lossless();
        let t = tau.to_f64_lossless();
        Zip::from(out).and(&v).and(&self.a).for_each(|o, &vi, &ai| {
            let m = vi.modulus();
            if m.is_nan() {
                *o = vi;
                return;
            }
            let u = m.to_f64_lossless();
            let p = cel0_prox(u, t, l, ai.to_f64_lossless());
            *o = if p == u {
                vi
            } else {
                with_modulus(vi, m, real(p))
            };
        });
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        crate::op::check_shape("CEL0 column norms", self.a.shape(), shape)
    }
}
