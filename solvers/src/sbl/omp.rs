//! Orthogonal matching pursuit (OMP) and Kronecker OMP, the greedy baselines of SBL.
//!
//! **OMP** (Pati et al. 1993): repeatedly add the atom most correlated with the residual,
//! `argmaxₙ |φₙᴴ r| / ‖φₙ‖`, and re-fit all selected coefficients by least squares.
//!
//! **Kronecker OMP** (Caiafa & Cichocki 2013) for `Φ = Φ₁ ⊗ … ⊗ Φ_I`: the support is a
//! Cartesian product `S₁ × … × S_I`. Each step computes the correlations `Φᴴ r` through the
//! Kronecker operator (mode products), picks the largest normalised one, adds its mode indices
//! to the `Sᵢ` they are not yet in, and re-fits by least squares on the product support, which
//! is a Kronecker product of per-mode least squares: `x_S = (⊗ Φᵢ,Sᵢ⁺) y` with
//! `Φᵢ,Sᵢ⁺ = (Φᵢ,SᵢᴴΦᵢ,Sᵢ)⁻¹Φᵢ,Sᵢᴴ` (valid when every `Φᵢ,Sᵢ` has full column rank).
//!
//! Both stop when `‖r‖² ≤ residual_tol`, when the support would exceed its budget, or when no
//! new atom can be added.
//!
//! **Sparsity from the data.** When neither a residual target (a known noise level) nor a
//! budget is given, the greedy path is followed while the model size `k` (atoms; for Kronecker
//! OMP the coefficients of the product support, `Π|Sᵢ|`) stays at most `M/2`, and the step that
//! minimises the extended Bayesian information criterion of the least-squares fit with
//! unknown Gaussian noise (Chen & Chen 2008; the binomial term pays for choosing `k` of `N`
//! atoms, without which the greedy search fits the noise, as plain BIC does),
//!
//! ```text
//! EBIC(k) = M ln(‖r_k‖²/M) + k ln M + 2 ln C(N, k)
//! ```
//!
//! (`N` atoms in all, `Π nᵢ` for Kronecker OMP; `‖r_k‖²` floored at `1e-28 ‖y‖²` so that
//! exact fits stay finite) is the estimate. The path also ends once the model is `2k* + 10`
//! large without a new minimum `k*`: past the true sparsity EBIC rises, and falls again only
//! as the fit approaches interpolation (`k → M`), where `‖r_k‖²/M` no longer estimates the
//! noise. This is the
//! default ([`OmpParams::select`], [`Selection::Bic`]). Without it OMP would run until
//! the residual vanishes and fit the noise with up to `min(M, N)` atoms.

use super::check_measurements;
use crate::dense::{adjoint, DenseScalar};
use crate::error::{Error, Result};
use crate::op::kronecker::kron_apply;
use crate::op::{Kronecker, LinearOperator};
use crate::scalar::{Real, Scalar};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use num_traits::{Float, Zero};

/// Stopping rules of [`omp`] and [`kron_omp`]. `Default`: no residual target, budgets
/// unlimited (bounded by the dictionary size), the sparsity chosen by extended BIC on the
/// greedy path
/// (see the [module documentation](self)).
///
/// OMP is a greedy method with a finite number of steps (at most one atom, or one new mode
/// index, per step), not an iterative solver: it has no [`StopCriteria`] and no observer.
/// `max_atoms` is a budget on the size of the support (the sparsity of the estimate), not an
/// iteration criterion.
///
/// [`StopCriteria`]: crate::iter::StopCriteria
#[derive(Debug, Clone, Default)]
pub struct OmpParams<R> {
    /// Stop when the squared residual norm `‖y − Φx‖²` is at most this (e.g. `M σ²` for
    /// a known noise variance `σ²`).
    pub residual_tol: R,
    /// For [`omp`]: maximum number of atoms (`None`: `min(M, N)`).
    /// For [`kron_omp`]: maximum support size per mode (`None`: `min(Mᵢ, nᵢ)`).
    pub max_atoms: Option<usize>,
    /// How the sparsity is chosen when neither `residual_tol > 0` nor `max_atoms` is given.
    pub select: Selection,
}

/// The rule of [`OmpParams::select`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection {
    /// The step of the greedy path (model size at most `M/2`) with the smallest extended BIC.
    #[default]
    Bic,
    /// No selection: run until the residual vanishes or no atom can be added.
    Exhaustive,
}

/// Extended BIC `M ln(max(r², 1e-28 ‖y‖²)/M) + k ln M + 2 ln C(N, k)`.
fn bic<R: Real>(r2: R, y2: R, k: usize, m: usize, n: usize) -> R {
    let mf = R::from_usize(m).expect("size");
    let floor = y2 * crate::scalar::real::<R>(1e-28);
    // ln C(N, k) = Σ_{i=1..k} ln((N − k + i)/i)
    let ln_binom: f64 = (1..=k.min(n))
        .map(|i| ((n - k.min(n) + i) as f64 / i as f64).ln())
        .sum();
    mf * (r2.max(floor).max(R::min_positive_value()) / mf).ln()
        + R::from_usize(k).expect("size") * mf.ln()
        + crate::scalar::real::<R>(2.0 * ln_binom)
}

/// The result of [`omp`].
#[derive(Debug, Clone)]
pub struct OmpResult<T: Scalar> {
    /// The estimate (`N`), zero off the support.
    pub x: Array1<T>,
    /// Selected atoms, in the order chosen.
    pub support: Vec<usize>,
    /// Final squared residual norm.
    pub residual2: <T as Scalar>::Real,
    /// `Some(steps)` when extended BIC chose the support among a greedy path of that many
    /// steps.
    pub bic_path: Option<usize>,
}

/// The result of [`kron_omp`].
#[derive(Debug, Clone)]
pub struct KronOmpResult<T: Scalar> {
    /// The estimate (flat, `N = Π nᵢ`, first mode slowest), zero off the product support.
    pub x: Array1<T>,
    /// Selected atoms of every mode, ascending.
    pub mode_support: Vec<Vec<usize>>,
    /// Final squared residual norm.
    pub residual2: <T as Scalar>::Real,
    /// Number of greedy steps (of the selected support).
    pub iterations: usize,
    /// `Some(steps)` when BIC chose the support among a greedy path of that many steps.
    pub bic_path: Option<usize>,
}

/// Least-squares coefficients `(AᴴA)⁻¹Aᴴ b` through a Cholesky factorisation of the Gram matrix.
fn lstsq<T: DenseScalar>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<Array2<T>> {
    let g = adjoint(a).dot(&a);
    let l = T::cholesky_lower(g.view())
        .map_err(|_| Error::Numerical("OMP selected linearly dependent atoms".into()))?;
    let mut c = adjoint(a).dot(&b);
    T::solve_lower_in_place(l.view(), &mut c);
    T::solve_lower_adjoint_in_place(l.view(), &mut c);
    Ok(c)
}

/// OMP for `y = Φ x` (`phi`: `M × N`, `y`: `M`).
pub fn omp<T: DenseScalar>(
    phi: ArrayView2<T>,
    y: ArrayView1<T>,
    params: &OmpParams<<T as Scalar>::Real>,
) -> Result<OmpResult<T>> {
    let (m, n) = phi.dim();
    if m == 0 || n == 0 {
        return Err(Error::Empty {
            what: "dictionary".into(),
        });
    }
    if y.len() != m {
        return Err(Error::shape("measurements y", &[m], &[y.len()]));
    }
    crate::error::check_finite("dictionary", phi.iter())?;
    check_measurements::<T, _>("measurements y", y.iter())?;
    let norms: Vec<<T as Scalar>::Real> = phi
        .axis_iter(Axis(1))
        .map(|c| crate::linalg::norm2(c.into_dyn()))
        .collect();
    let use_bic = params.select == Selection::Bic
        && params.max_atoms.is_none()
        && params.residual_tol <= <T as Scalar>::Real::zero();
    let budget = if use_bic {
        (m / 2).max(1).min(n)
    } else {
        params.max_atoms.unwrap_or(m.min(n)).min(m.min(n))
    };
    let y2 = y.to_owned().insert_axis(Axis(1));
    let mut support: Vec<usize> = Vec::new();
    let mut r = y.to_owned();
    let mut coef = Array2::<T>::zeros((0, 1));
    let mut r2: <T as Scalar>::Real = r.iter().map(|v| v.abs2()).sum();
    let ynorm2 = r2;
    // (model size, BIC) of the best step so far
    let mut best_k = (0usize, bic(r2, ynorm2, 0, m, n));
    while r2 > params.residual_tol && support.len() < budget {
        let corr = adjoint(phi).dot(&r);
        let mut best = None;
        let mut bv = <T as Scalar>::Real::zero();
        for (j, c) in corr.iter().enumerate() {
            if norms[j] > <T as Scalar>::Real::zero() && !support.contains(&j) {
                let v = c.modulus() / norms[j];
                if v > bv {
                    bv = v;
                    best = Some(j);
                }
            }
        }
        let Some(j) = best else { break };
        support.push(j);
        let a = phi.select(Axis(1), &support);
        coef = lstsq(a.view(), y2.view())?;
        r = &y - &a.dot(&coef).column(0);
        r2 = r.iter().map(|v| v.abs2()).sum();
        let b = bic(r2, ynorm2, support.len(), m, n);
        if b < best_k.1 {
            best_k = (support.len(), b);
        }
        if use_bic && support.len() >= 2 * best_k.0 + 10 {
            break;
        }
    }
    let bic_path = use_bic.then_some(support.len());
    if use_bic && best_k.0 < support.len() {
        support.truncate(best_k.0);
        let a = phi.select(Axis(1), &support);
        coef = lstsq(a.view(), y2.view())?;
        r = &y - &a.dot(&coef).column(0);
        r2 = r.iter().map(|v| v.abs2()).sum();
    }
    let mut x = Array1::zeros(n);
    for (i, &j) in support.iter().enumerate() {
        x[j] = coef[[i, 0]];
    }
    Ok(OmpResult {
        x,
        support,
        residual2: r2,
        bic_path,
    })
}

/// Kronecker OMP for `y = (Φ₁ ⊗ … ⊗ Φ_I) x` (`factors` in order, `y` of length `Π Mᵢ`).
pub fn kron_omp<T: DenseScalar>(
    factors: &[Array2<T>],
    y: ArrayView1<T>,
    params: &OmpParams<<T as Scalar>::Real>,
) -> Result<KronOmpResult<T>> {
    for (i, f) in factors.iter().enumerate() {
        crate::error::check_finite(&format!("dictionary {}", i + 1), f.iter())?;
    }
    let op = Kronecker::new(factors.to_vec())?;
    if y.len() != op.range_size() {
        return Err(Error::shape(
            "measurements y",
            &[op.range_size()],
            &[y.len()],
        ));
    }
    check_measurements::<T, _>("measurements y", y.iter())?;
    let dims = op.domain_dims();
    let rdims = op.range_dims();
    let colnorms: Vec<Array1<<T as Scalar>::Real>> = factors
        .iter()
        .map(|f| {
            f.axis_iter(Axis(1))
                .map(|c| {
                    let v = crate::linalg::norm2(c.into_dyn());
                    if v > <T as Scalar>::Real::zero() {
                        v.recip()
                    } else {
                        <T as Scalar>::Real::zero()
                    }
                })
                .collect()
        })
        .collect();
    let inv_norm = super::kronecker::outer(&colnorms);
    let mut supports: Vec<Vec<usize>> = vec![Vec::new(); factors.len()];
    let budgets: Vec<usize> = factors
        .iter()
        .map(|f| {
            let full = f.nrows().min(f.ncols());
            params.max_atoms.unwrap_or(full).min(full)
        })
        .collect();
    let m = y.len();
    let use_bic = params.select == Selection::Bic
        && params.max_atoms.is_none()
        && params.residual_tol <= <T as Scalar>::Real::zero();
    let mut r = y.to_owned();
    let mut r2: <T as Scalar>::Real = r.iter().map(|v| v.abs2()).sum();
    let ynorm2 = r2;
    let mut xs = Array1::<T>::zeros(0);
    let mut iterations = 0;
    // the best step so far by BIC: (BIC, supports, coefficients, residual², step)
    let ntot: usize = dims.iter().product();
    let mut chosen = (
        bic(r2, ynorm2, 0, m, ntot),
        supports.clone(),
        xs.clone(),
        r2,
        0usize,
    );
    while r2 > params.residual_tol {
        let corr = op.adjoint(r.view().into_dyn())?;
        let mut best = None;
        let mut bv = <T as Scalar>::Real::zero();
        for (k, c) in corr.iter().enumerate() {
            let v = c.modulus() * inv_norm[k];
            if v > bv {
                bv = v;
                best = Some(k);
            }
        }
        let Some(mut k) = best else { break };
        // decompose the flat index (first mode slowest)
        let mut idx = vec![0usize; dims.len()];
        for i in (0..dims.len()).rev() {
            idx[i] = k % dims[i];
            k /= dims[i];
        }
        let new_modes: Vec<usize> = (0..dims.len())
            .filter(|&i| !supports[i].contains(&idx[i]))
            .collect();
        if new_modes.is_empty() || new_modes.iter().any(|&i| supports[i].len() >= budgets[i]) {
            break;
        }
        if use_bic {
            let grown: usize = (0..dims.len())
                .map(|i| supports[i].len() + usize::from(new_modes.contains(&i)))
                .product();
            if grown > (m / 2).max(1) {
                break;
            }
        }
        for &i in &new_modes {
            supports[i].push(idx[i]);
        }
        iterations += 1;
        for s in supports.iter_mut() {
            s.sort_unstable();
        }
        let subs: Vec<Array2<T>> = factors
            .iter()
            .zip(supports.iter())
            .map(|(f, s)| f.select(Axis(1), s))
            .collect();
        let pinvs: Vec<Array2<T>> = subs
            .iter()
            .map(|a| lstsq(a.view(), Array2::eye(a.nrows()).view()))
            .collect::<Result<_>>()?;
        xs = kron_apply(&pinvs, &rdims, y.into_dyn())
            .into_dimensionality()
            .expect("flat");
        let sdims: Vec<usize> = supports.iter().map(|s| s.len()).collect();
        let fit = kron_apply(&subs, &sdims, xs.view().into_dyn());
        r = &y - &fit.into_dimensionality::<ndarray::Ix1>().expect("flat");
        r2 = r.iter().map(|v| v.abs2()).sum();
        if use_bic {
            let b = bic(r2, ynorm2, sdims.iter().product(), m, ntot);
            if b < chosen.0 {
                chosen = (b, supports.clone(), xs.clone(), r2, iterations);
            }
            let best_size: usize = chosen.1.iter().map(|s| s.len()).product();
            if sdims.iter().product::<usize>() >= 2 * best_size + 10 {
                break;
            }
        }
    }
    let bic_path = use_bic.then_some(iterations);
    if use_bic {
        (_, supports, xs, r2, iterations) = chosen;
    }
    // scatter the product-support coefficients
    let n: usize = dims.iter().product();
    let mut x = Array1::zeros(n);
    if supports.iter().all(|s| !s.is_empty()) {
        let mut flat = vec![0usize];
        for (i, s) in supports.iter().enumerate() {
            let d = dims[i];
            flat = flat
                .iter()
                .flat_map(|&o| s.iter().map(move |&j| o * d + j))
                .collect();
        }
        for (p, &f) in flat.iter().enumerate() {
            x[f] = xs[p];
        }
    }
    Ok(KronOmpResult {
        x,
        mode_support: supports,
        residual2: r2,
        iterations,
        bic_path,
    })
}
