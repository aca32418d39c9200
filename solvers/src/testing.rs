//! Test helpers that every operator and prox in sparseinv is checked with; public so that
//! users can check their own operators the same way.

use crate::linalg::{norm2, vdot};
use crate::op::LinearOperator;
use crate::scalar::Real;
use crate::scalar::Scalar;

pub use crate::random::randn;

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

/// Zero-boundary `'same'` 2-D convolution (`adjoint = false`) or its adjoint, the
/// correlation (`true`), by direct summation: the brute-force reference of
/// [`Conv2d`](crate::op::Conv2d) with [`Boundary::Same`](crate::op::Boundary::Same)
/// (kernel centre `(h/2, w/2)`), `O(n0 n1 h w)`.
///
/// ```
/// use sparseinv_solvers::testing::direct_conv_same;
/// use ndarray::array;
/// let y = direct_conv_same(array![[0.0, 1.0, 0.0]].view(), array![[1.0, 2.0, 3.0]].view(), false);
/// assert_eq!(y, array![[1.0, 2.0, 3.0]]); // a centred delta returns the kernel
/// ```
pub fn direct_conv_same(
    x: ndarray::ArrayView2<f64>,
    k: ndarray::ArrayView2<f64>,
    adjoint: bool,
) -> ndarray::Array2<f64> {
    let (n0, n1) = x.dim();
    let (h, w) = k.dim();
    let (c0, c1) = ((h / 2) as isize, (w / 2) as isize);
    ndarray::Array2::from_shape_fn((n0, n1), |(i, j)| {
        let mut s = 0.0;
        for a in 0..h {
            for b in 0..w {
                let (p, q) = if adjoint {
                    (i as isize - c0 + a as isize, j as isize - c1 + b as isize)
                } else {
                    (i as isize + c0 - a as isize, j as isize + c1 - b as isize)
                };
                if p >= 0 && q >= 0 && (p as usize) < n0 && (q as usize) < n1 {
                    s += k[[a, b]] * x[[p as usize, q as usize]];
                }
            }
        }
        s
    })
}

/// A simulated Kronecker-sparse recovery problem (see [`kron_sparse_trial`]).
#[derive(Debug, Clone)]
pub struct KronSparseTrial {
    /// The dictionary factors `Φ₁, …, Φ_I` (`Mᵢ × n`).
    pub factors: Vec<ndarray::Array2<num_complex::Complex64>>,
    /// The sparse vector `x` (length `nᴵ`, row-major, first factor slowest).
    pub x: ndarray::Array1<num_complex::Complex64>,
    /// The measurements `y = (Φ₁ ⊗ … ⊗ Φ_I) x + e`.
    pub y: ndarray::Array1<num_complex::Complex64>,
    /// The noise variance `σ²` (`E|eᵢ|²`).
    pub sigma2: f64,
    /// The indices of the non-zeros of `x`, ascending.
    pub support: Vec<usize>,
}

/// The IRS-MIMO channel problem of He & Joseph at small scale (the problem of
/// `examples/irs_mimo_channel.rs` and the SBL benches): factors `Φᵢ` (`ms[i] × n`) with i.i.d.
/// `CN(0, 1/Mᵢ)` entries (unit expected column norm; seeds `10·seed + i`), a Cartesian support
/// of `k` distinct entries per mode drawn uniformly (ChaCha8, seed `seed ^ 0x5eed`), values
/// `CN(0, 1)` on it, and circular complex Gaussian noise of variance
/// `σ² = ‖Φx‖²/M / 10^(snr_db/10)`.
///
/// ```
/// use sparseinv_solvers::testing::kron_sparse_trial;
/// let t = kron_sparse_trial(&[4, 5], 6, 2, 20.0, 1);
/// assert_eq!((t.factors.len(), t.x.len(), t.y.len(), t.support.len()), (2, 36, 20, 4));
/// assert!(t.support.iter().all(|&i| t.x[i].norm() > 0.0));
/// ```
pub fn kron_sparse_trial(
    ms: &[usize],
    n: usize,
    k: usize,
    snr_db: f64,
    seed: u64,
) -> KronSparseTrial {
    use ndarray::{Ix1, Ix2};
    use num_complex::Complex64;
    use rand::{Rng, SeedableRng};
    assert!(
        k <= n,
        "kron_sparse_trial: k = {k} > n = {n} entries per mode"
    );
    let factors: Vec<ndarray::Array2<Complex64>> = ms
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            randn::<Complex64>(&[m, n], seed * 10 + i as u64)
                .into_dimensionality::<Ix2>()
                .expect("2-D")
                / (2.0 * m as f64).sqrt()
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut support = vec![0usize];
    for _ in 0..ms.len() {
        let mut s: Vec<usize> = Vec::new();
        while s.len() < k {
            let j = rng.random_range(0..n);
            if !s.contains(&j) {
                s.push(j);
            }
        }
        s.sort_unstable();
        support = support
            .iter()
            .flat_map(|&o| s.iter().map(move |&j| o * n + j))
            .collect();
    }
    let vals = randn::<Complex64>(&[support.len()], seed * 10 + 7);
    let mut x = ndarray::Array1::<Complex64>::zeros(n.pow(ms.len() as u32));
    for (p, &f) in support.iter().enumerate() {
        x[f] = vals[p] / 2f64.sqrt();
    }
    let clean = crate::op::Kronecker::new(factors.clone())
        .expect("non-empty factors")
        .apply(x.view().into_dyn())
        .expect("shapes agree")
        .into_dimensionality::<Ix1>()
        .expect("1-D");
    let m = clean.len() as f64;
    let sigma2 = clean.iter().map(|v| v.norm_sqr()).sum::<f64>() / m / 10f64.powf(snr_db / 10.0);
    let noise = randn::<Complex64>(&[clean.len()], seed * 10 + 8)
        .into_dimensionality::<Ix1>()
        .expect("1-D")
        * (sigma2 / 2.0).sqrt();
    KronSparseTrial {
        factors,
        x,
        y: clean + noise,
        sigma2,
        support,
    }
}
