//! Test helpers that every operator and prox in sparseinv is checked with; public so that
//! users can check their own operators the same way.

use crate::linalg::{norm2, vdot};
use crate::op::LinearOperator;
use crate::scalar::Real;
use crate::scalar::{real, Scalar};
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded array of i.i.d. standard normal entries (real and imaginary parts each N(0,1)
/// for complex `T`). The same seed always gives the same bits.
pub fn randn<T: Scalar>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let re: f64 = StandardNormal.sample(&mut rng);
        let im: f64 = if T::IS_COMPLEX {
            StandardNormal.sample(&mut rng)
        } else {
            0.0
        };
        T::from_parts(real(re), real(im))
    })
}

/// Result of a [`dot_test`].
#[derive(Debug, Clone, Copy)]
pub struct DotTest {
    /// `⟨A x, y⟩` (range inner product).
    pub lhs: (f64, f64),
    /// `⟨x, Aᴴ y⟩` (domain inner product).
    pub rhs: (f64, f64),
    /// `|lhs − rhs| / (‖A x‖ ‖y‖)`: a scale-free measure of the adjoint error.
    pub rel_err: f64,
}

/// The adjoint dot test: for seeded random `x` and `y`, check
/// `⟨A x, y⟩ = ⟨x, Aᴴ y⟩` with `⟨u, v⟩ = Σ conj(uᵢ) vᵢ`.
///
/// Returns the two inner products and the relative error `|lhs − rhs| / (‖Ax‖‖y‖ + ‖x‖‖Aᴴy‖)`,
/// which is of the order of the scalar type's epsilon for a correct adjoint.
/// Use [`assert_adjoint`] in tests.
///
/// ```
/// use sparseinv_solvers::op::Diagonal;
/// use sparseinv_solvers::testing::dot_test;
/// use ndarray::array;
/// let d = Diagonal::new(array![1.0f64, 2.0, 3.0].into_dyn());
/// assert!(dot_test(&d, 7).rel_err < 1e-14);
/// ```
pub fn dot_test<T: Scalar, A: LinearOperator<T> + ?Sized>(a: &A, seed: u64) -> DotTest {
    let x = randn::<T>(a.domain_shape(), seed);
    let y = randn::<T>(a.range_shape(), seed.wrapping_add(1_000_003));
    let ax = a.apply(x.view()).expect("dot_test: apply shape");
    let aty = a.adjoint(y.view()).expect("dot_test: adjoint shape");
    let lhs = vdot(ax.view(), y.view());
    let rhs = vdot(x.view(), aty.view());
    let scale = norm2(ax.view()).to_f64_lossless() * norm2(y.view()).to_f64_lossless()
        + norm2(x.view()).to_f64_lossless() * norm2(aty.view()).to_f64_lossless();
    let d = lhs - rhs;
    let err = d.modulus().to_f64_lossless();
    let rel_err = if scale > 0.0 { err / scale } else { err };
    DotTest {
        lhs: (lhs.re().to_f64_lossless(), lhs.im().to_f64_lossless()),
        rhs: (rhs.re().to_f64_lossless(), rhs.im().to_f64_lossless()),
        rel_err,
    }
}

/// Panic with a readable message unless `A` passes [`dot_test`] with a tolerance suited to
/// the precision: `tol` for `f64`-based scalars, `tol · 1e8`-ish is too loose, so pass the
/// tolerance you mean (1e-12 for f64, 1e-5 for f32 are typical).
pub fn assert_adjoint<T: Scalar, A: LinearOperator<T> + ?Sized>(a: &A, tol: f64) {
    for seed in [1u64, 2, 3] {
        let r = dot_test(a, seed);
        assert!(
            r.rel_err < tol,
            "adjoint dot test failed (seed {seed}): <Ax,y> = {:?}, <x,A^H y> = {:?}, rel err {:e} >= {:e}",
            r.lhs,
            r.rhs,
            r.rel_err,
            tol
        );
    }
}
