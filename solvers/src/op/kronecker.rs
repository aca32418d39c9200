//! The Kronecker product `A₁ ⊗ A₂ ⊗ … ⊗ A_I` of dense matrices, applied by mode products and
//! never materialised.
//!
//! **Ordering convention.** The domain is flat, of length `N = Π nᵢ` (`Aᵢ` is `mᵢ × nᵢ`), and
//! the range is flat of length `M = Π mᵢ`. A flat vector is the row-major (C-order)
//! vectorisation of an `n₁ × n₂ × … × n_I` tensor, i.e. the FIRST factor's index varies
//! slowest: `x[((j₁·n₂ + j₂)·n₃ + j₃)…]`. With this convention `(A ⊗ B) x` equals
//! `numpy.kron(A, B) @ x`, and
//!
//! `(A₁ ⊗ … ⊗ A_I) x = vec( X ×₁ A₁ ×₂ A₂ … ×_I A_I )`
//!
//! where `X` is `x` reshaped to `[n₁, …, n_I]` and `×ᵢ` is the mode-`i` product
//! `(X ×ᵢ A)[…, p, …] = Σ_j A[p, j] X[…, j, …]`. One application costs
//! `Σᵢ (Π_{k<i} mₖ)(Π_{k≥i} nₖ) mᵢ` multiply–adds instead of `M·N` for the formed matrix.

use super::LinearOperator;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{linalg::general_mat_mul, Array2, Array3, ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

/// `A₁ ⊗ … ⊗ A_I` for dense factors `Aᵢ` (`mᵢ × nᵢ`), any number `I ≥ 1` of factors, real or
/// complex. Domain `[Π nᵢ]`, range `[Π mᵢ]` (flat; see the module docs for the ordering).
///
/// ```
/// use sparseinv_solvers::op::{Kronecker, LinearOperator};
/// use ndarray::array;
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let b = array![[0.0, 1.0], [1.0, 0.0]];
/// let k = Kronecker::new(vec![a, b]).unwrap();
/// // numpy.kron(a, b) @ [1, 0, 0, 0] is the first column of kron(a, b): [0, 1, 0, 3]
/// let y = k.apply(array![1.0, 0.0, 0.0, 0.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![0.0, 1.0, 0.0, 3.0].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct Kronecker<T: Scalar> {
    factors: Vec<Array2<T>>,
    adjoints: Vec<Array2<T>>,
    domain: [usize; 1],
    range: [usize; 1],
}

impl<T: Scalar> Kronecker<T> {
    /// The Kronecker product of `factors` in the order given (first factor slowest).
    /// Errors when there is no factor or a factor has a zero dimension.
    pub fn new(factors: Vec<Array2<T>>) -> Result<Self> {
        if factors.is_empty() {
            return Err(Error::param("factors", "at least one factor is required"));
        }
        for (i, f) in factors.iter().enumerate() {
            if f.nrows() == 0 || f.ncols() == 0 {
                return Err(Error::Empty {
                    what: format!("Kronecker factor {i}"),
                });
            }
        }
        let adjoints = factors
            .iter()
            .map(|f| f.t().mapv(|v| v.conj()))
            .collect::<Vec<_>>();
        let n: usize = factors.iter().map(|f| f.ncols()).product();
        let m: usize = factors.iter().map(|f| f.nrows()).product();
        Ok(Kronecker {
            factors,
            adjoints,
            domain: [n],
            range: [m],
        })
    }
    /// The factors `A₁, …, A_I`.
    pub fn factors(&self) -> &[Array2<T>] {
        &self.factors
    }
    /// The tensor shape `[n₁, …, n_I]` of the domain.
    pub fn domain_dims(&self) -> Vec<usize> {
        self.factors.iter().map(|f| f.ncols()).collect()
    }
    /// The tensor shape `[m₁, …, m_I]` of the range.
    pub fn range_dims(&self) -> Vec<usize> {
        self.factors.iter().map(|f| f.nrows()).collect()
    }
}

/// The mode-`axis` product `X ×_axis A`: `out[…, p, …] = Σ_j A[p, j] X[…, j, …]` for a tensor
/// `x` of any order (standard layout or not) and a matrix `a` with `a.ncols() == x.shape()[axis]`.
/// The result has `x`'s shape with `shape[axis]` replaced by `a.nrows()`.
///
/// Panics when the dimensions disagree (an internal invariant of the callers in this crate).
pub fn mode_product<T: Scalar>(
    x: ArrayViewD<T>,
    a: ndarray::ArrayView2<T>,
    axis: usize,
) -> ArrayD<T> {
    let shape = x.shape().to_vec();
    assert_eq!(a.ncols(), shape[axis], "mode_product: dimension mismatch");
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let m = a.nrows();
    let xs = x.as_standard_layout();
    let x3 = xs
        .view()
        .into_shape_with_order((pre, n, post))
        .expect("standard layout");
    let mut out = Array3::<T>::zeros((pre, m, post));
    for p in 0..pre {
        general_mat_mul(
            T::one(),
            &a,
            &x3.index_axis(ndarray::Axis(0), p),
            T::zero(),
            &mut out.index_axis_mut(ndarray::Axis(0), p),
        );
    }
    let mut new_shape = shape;
    new_shape[axis] = m;
    out.into_shape_with_order(IxDyn(&new_shape))
        .expect("contiguous")
}

/// Apply `⊗ mats[i]` to the flat vector `x` of the tensor shape `dims` (row-major, first index
/// slowest) by successive mode products; returns the flat result.
pub fn kron_apply<T: Scalar>(mats: &[Array2<T>], dims: &[usize], x: ArrayViewD<T>) -> ArrayD<T> {
    let mut t = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(dims))
        .expect("kron_apply: size mismatch");
    for (i, a) in mats.iter().enumerate() {
        t = mode_product(t.view(), a.view(), i);
    }
    let len = t.len();
    t.into_shape_with_order(IxDyn(&[len])).expect("contiguous")
}

/// The Kronecker product `A₁ ⊗ … ⊗ A_I` formed as a dense `(Π mᵢ) × (Π nᵢ)` matrix (first
/// factor slowest, as `numpy.kron`): entry `(r, c)` is `Πᵢ Aᵢ[rᵢ, cᵢ]` for the row-major
/// multi-indices of `r` and `c`. No factors give the `1 × 1` identity. For tests,
/// references and small problems; [`Kronecker`] applies the product without forming it.
///
/// ```
/// use sparseinv_solvers::op::kronecker::kron_matrix;
/// use ndarray::array;
/// let k = kron_matrix(&[array![[1.0, 2.0]], array![[0.0, 1.0], [1.0, 0.0]]]);
/// assert_eq!(k, array![[0.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 0.0]]);
/// ```
pub fn kron_matrix<T: Scalar>(factors: &[Array2<T>]) -> Array2<T> {
    let mut k = Array2::from_elem((1, 1), T::one());
    for a in factors {
        let (p, q) = a.dim();
        k = Array2::from_shape_fn((k.nrows() * p, k.ncols() * q), |(r, c)| {
            k[[r / p, c / q]] * a[[r % p, c % q]]
        });
    }
    k
}

impl<T: Scalar> LinearOperator<T> for Kronecker<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.domain
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let r = kron_apply(&self.factors, &self.domain_dims(), x);
        y.assign(&r);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        let r = kron_apply(&self.adjoints, &self.range_dims(), y);
        x.assign(&r);
    }
    /// `|A₁ ⊗ … ⊗ A_I|²` (element-wise) is `|A₁|² ⊗ … ⊗ |A_I|²`, so
    /// `c = (|A₁|² ⊗ … ⊗ |A_I|²)ᵀ w` by mode products; for `w = 1` this is the outer
    /// product of the factors' squared column norms.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        super::column_norms::check_weights(&self.range, &w)?;
        let sq_t: Vec<Array2<T::Real>> = self
            .factors
            .iter()
            .map(|f| f.t().mapv(|v| v.abs2()))
            .collect();
        Ok(kron_apply(&sq_t, &self.range_dims(), w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Real;
    use crate::scalar::C64;
    use crate::testing::{assert_adjoint, randn};
    use ndarray::Ix2;

    fn rand_mat<T: Scalar>(m: usize, n: usize, seed: u64) -> Array2<T> {
        randn::<T>(&[m, n], seed)
            .into_dimensionality::<Ix2>()
            .unwrap()
    }

    /// numpy.kron by its definition: K[(i·p + k), (j·q + l)] = A[i, j] B[k, l].
    fn brute_kron<T: Scalar>(a: &Array2<T>, b: &Array2<T>) -> Array2<T> {
        let (m, n) = a.dim();
        let (p, q) = b.dim();
        Array2::from_shape_fn((m * p, n * q), |(r, c)| {
            a[[r / p, c / q]] * b[[r % p, c % q]]
        })
    }

    #[test]
    fn adjoint_dot_tests() {
        let dims = [(3, 4), (2, 5), (4, 3)];
        let f32s: Vec<_> = dims
            .iter()
            .enumerate()
            .map(|(i, &(m, n))| rand_mat::<f32>(m, n, i as u64))
            .collect();
        assert_adjoint(&Kronecker::new(f32s).unwrap(), 1e-5);
        let f64s: Vec<_> = dims
            .iter()
            .enumerate()
            .map(|(i, &(m, n))| rand_mat::<f64>(m, n, i as u64))
            .collect();
        assert_adjoint(&Kronecker::new(f64s).unwrap(), 1e-12);
        let cs: Vec<_> = dims
            .iter()
            .enumerate()
            .map(|(i, &(m, n))| rand_mat::<C64>(m, n, i as u64))
            .collect();
        assert_adjoint(&Kronecker::new(cs).unwrap(), 1e-12);
        // a single factor and four factors
        assert_adjoint(
            &Kronecker::new(vec![rand_mat::<C64>(3, 7, 9)]).unwrap(),
            1e-12,
        );
        let four: Vec<_> = (0..4).map(|i| rand_mat::<f64>(2, 3, 20 + i)).collect();
        assert_adjoint(&Kronecker::new(four).unwrap(), 1e-12);
    }

    fn check_against_explicit<T: Scalar>(tol: f64) {
        let a = rand_mat::<T>(3, 4, 1);
        let b = rand_mat::<T>(2, 3, 2);
        let c = rand_mat::<T>(4, 2, 3);
        let explicit = brute_kron(&brute_kron(&a, &b), &c);
        let k = Kronecker::new(vec![a, b, c]).unwrap();
        assert_eq!(k.domain_shape(), &[24]);
        assert_eq!(k.range_shape(), &[24]);
        let x = randn::<T>(&[24], 5);
        let y = k.apply(x.view()).unwrap();
        let yx = explicit.dot(&x.clone().into_dimensionality::<ndarray::Ix1>().unwrap());
        for (u, v) in y.iter().zip(yx.iter()) {
            assert!((*u - *v).modulus().to_f64_lossless() < tol, "{u} vs {v}");
        }
        let z = randn::<T>(&[24], 6);
        let w = k.adjoint(z.view()).unwrap();
        let adj = explicit.t().mapv(|v| v.conj());
        let wx = adj.dot(&z.clone().into_dimensionality::<ndarray::Ix1>().unwrap());
        for (u, v) in w.iter().zip(wx.iter()) {
            assert!((*u - *v).modulus().to_f64_lossless() < tol, "{u} vs {v}");
        }
    }

    #[test]
    fn equals_explicit_kron() {
        check_against_explicit::<f64>(1e-12);
        check_against_explicit::<f32>(1e-4);
        check_against_explicit::<C64>(1e-12);
    }

    #[test]
    fn errors_and_shape_checks() {
        assert!(Kronecker::<f64>::new(vec![]).is_err());
        assert!(Kronecker::new(vec![Array2::<f64>::zeros((0, 3))]).is_err());
        let k = Kronecker::new(vec![rand_mat::<f64>(2, 3, 1), rand_mat::<f64>(2, 2, 2)]).unwrap();
        assert!(k.apply(ndarray::ArrayD::zeros(IxDyn(&[5])).view()).is_err());
        assert_eq!(k.domain_dims(), vec![3, 2]);
        assert_eq!(k.range_dims(), vec![2, 2]);
    }
}
