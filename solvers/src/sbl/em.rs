//! Classic SBL by expectation–maximisation for `Y = Φ X + N` (single or multiple measurement
//! vectors), real or complex, with learned or fixed noise and pruning. See the [module
//! docs](super) for the model and the updates.

use super::{check_measurements, NoiseModel, SblParams, Update};
use crate::dense::DenseScalar;
use crate::error::{Error, Result};
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo};
use crate::op::LinearOperator;
use crate::scalar::{real, Scalar};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array1, Array2, ArrayView2};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;

/// The result of classic or block SBL.
#[derive(Debug, Clone)]
pub struct SblResult<T: Scalar> {
    /// Posterior mean `μ` (`N × L`, one column per snapshot): the estimate of `X`.
    pub mean: Array2<T>,
    /// Posterior variance `Σₙₙ` of every coefficient (`N`; zero for pruned atoms).
    pub variance: Array1<<T as Scalar>::Real>,
    /// The learned hyperparameters `γ` (`N`; zero for pruned atoms).
    pub gamma: Array1<<T as Scalar>::Real>,
    /// The final noise variance `σ²` (learned or the fixed value).
    pub noise_var: <T as Scalar>::Real,
    /// Indices of the atoms still active (`γₙ > 0`), ascending.
    pub support: Vec<usize>,
}

/// The E-step on an active set: posterior mean and variances and the quantities the M-step
/// and the objective need.
pub(crate) struct EStep<T: Scalar> {
    /// `K × L` posterior mean on the active set.
    pub mu: Array2<T>,
    /// `K` posterior variances.
    pub sdiag: Array1<<T as Scalar>::Real>,
    /// `log|Σ_y|`.
    pub logdet: <T as Scalar>::Real,
    /// `‖Y − Φ μ‖_F²`.
    pub resid2: <T as Scalar>::Real,
    /// `Re Σₗ yₗᴴ (yₗ − Φ μₗ)` (so that `yᴴΣ_y⁻¹y = this / σ²`).
    pub y_resid: <T as Scalar>::Real,
}

/// The formulation of the E-step. Both give the same posterior (up to rounding); the solvers
/// use [`Space::Auto`], the tests force each of the others.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    /// By operation count ([`Costs`]): coefficient space once the work that measurement space
    /// has spent beyond coefficient space pays for forming the Gram matrix, and for good after.
    Auto,
    /// Through `Σ_y = σ² I + Φ_A Γ_A Φ_Aᴴ` (`M × M`).
    Measurement,
    /// Through `B = I + D G_A D / σ²` (`K × K`), `G_A = Φ_Aᴴ Φ_A` cached.
    Coefficient,
}

/// Operation counts (multiply–adds) of one E-step on `k` active atoms and `m` measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Costs {
    /// Measurement space: `m²k/2` for the lower triangle of `Σ_y`, `m³/6` for its Cholesky
    /// factor and `m²k/2` for `L⁻¹Φ_A`: `m²k + m³/6`.
    pub measurement: f64,
    /// Coefficient space with the Gram matrix at hand: `k³/6` for the Cholesky factor of `B`
    /// and `k³/6` for its triangular inverse (the diagonal of `B⁻¹`): `k³/3`. Smaller than
    /// `measurement` for `k ≲ 1.81 m`.
    pub coefficient: f64,
    /// Forming the Gram matrix `G_A = Φ_AᴴΦ_A` (lower triangle), once: `k²m/2`.
    pub gram: f64,
}

impl Costs {
    /// The counts for `m` measurements and `k` active atoms.
    pub(crate) fn new(m: usize, k: usize) -> Self {
        let (m, k) = (m as f64, k as f64);
        Costs {
            measurement: m * m * k + m * m * m / 6.0,
            coefficient: k * k * k / 3.0,
            gram: k * k * m / 2.0,
        }
    }

    /// The counts for a Kronecker dictionary (see [`KronDictionary`]) whose first factor is
    /// `m1 × n1`: measurement space `m³/3` (the Cholesky factor of `Σ_y` and its inverse),
    /// `n1·m·(m/m1)²/2` for the `Tⱼ` and `2·n1·m²` for the structured products; coefficient
    /// space as for a formed dictionary; the Gram matrix from the factor Gram matrices, about
    /// `k²` (one product per mode and entry of its lower triangle).
    pub(crate) fn kronecker(m: usize, k: usize, m1: usize, n1: usize) -> Self {
        let mr = (m / m1.max(1)) as f64;
        let (m, k, n1) = (m as f64, k as f64, n1 as f64);
        Costs {
            measurement: m * m * m / 3.0 + n1 * m * mr * mr / 2.0 + 2.0 * n1 * m * m,
            coefficient: k * k * k / 3.0,
            gram: k * k,
        }
    }
}

/// Make `buf` hold `n` elements, reusing its contents when it already does (the caller
/// writes every element before reading it): no pass over the memory and no fresh pages.
fn reuse<T: Clone + num_traits::Zero>(buf: &mut Vec<T>, n: usize) {
    if buf.len() != n {
        buf.clear();
        buf.resize(n, T::zero());
    }
}

fn par() -> Par {
    faer::get_global_parallelism()
}

/// `a ← L` with `a = L Lᴴ`, reading and writing the lower triangle of `a` (the strict upper
/// triangle is left unspecified).
fn cholesky_in_place<T: DenseScalar>(a: MatMut<'_, T>) -> Result<()> {
    let n = a.nrows();
    let mut mem = MemBuffer::new(
        faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch::<T>(
            n,
            par(),
            Default::default(),
        ),
    );
    faer::linalg::cholesky::llt::factor::cholesky_in_place(
        a,
        Default::default(),
        par(),
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| Error::Numerical(format!("Cholesky factorisation failed: {e:?}")))?;
    Ok(())
}

/// `Σᵢ 2 log Re Lᵢᵢ`: the log-determinant of `L Lᴴ`.
fn logdet_of_factor<T: DenseScalar>(l: MatRef<'_, T>) -> <T as Scalar>::Real {
    let two: <T as Scalar>::Real = real(2.0);
    (0..l.nrows())
        .map(|i| two * Scalar::re(l[(i, i)]).ln())
        .sum()
}

/// The real type of a scalar.
type Re<T> = <T as Scalar>::Real;
/// What one E-step returns: the posterior mean `μ` (`K × L`), the diagonal of `Σ_A`, and
/// `log|Σ_y|`.
type EStepParts<T> = (Array2<T>, Array1<Re<T>>, Re<T>);

/// How the dictionary of an [`ActiveSystem`] is held.
#[derive(Debug, Clone)]
enum Dictionary<T: DenseScalar> {
    /// The active atoms `Φ_A` (`M × K`), column-major.
    Dense(Mat<T>),
    /// A Kronecker product, never formed (see [`KronDictionary`]).
    Kronecker(Box<KronDictionary<T>>),
}

/// A Kronecker dictionary `Φ = Φ₁ ⊗ Φ₂ ⊗ … ⊗ Φ_I` (`Φᵢ` is `Mᵢ × nᵢ`; atom `n` has the
/// row-major multi-index `(n₁, …, n_I)`, first factor slowest, as in [`crate::op::Kronecker`])
/// held as `Φ = Φ₁ ⊗ R` with the trailing product `R = Φ₂ ⊗ … ⊗ Φ_I` (`M_R × N_R`) formed,
/// and the ascending global indices of the active atoms.
///
/// **Measurement space.** With `Cⱼ = R diag(γ_{j,·}) Rᴴ` (`M_R × M_R`, one per column
/// `aⱼ` of `Φ₁`), `Σ_y = σ²I + Σⱼ (aⱼaⱼᴴ) ⊗ Cⱼ`: its lower blocks `(i, i')`, `i ≥ i'`, are the
/// columns of one product `[vec Cⱼ]ⱼ · P` with `P[j, (i,i')] = Φ₁[i,j] conj Φ₁[i',j]`, about
/// `n₁M²/2` multiply–adds instead of `M²K/2`. With `Σ_y = LLᴴ` and `W = L⁻¹` (dense, `M³/3`
/// for both), `φₙᴴΣ_y⁻¹φₙ = ‖Wφₙ‖²`, and for `φₙ = aⱼ ⊗ r_k` this is `r_kᴴ Tⱼ r_k` with
/// `Tⱼ = VⱼᴴVⱼ`, `Vⱼ = W(aⱼ ⊗ I) = Σᵢ Φ₁[i,j] Wᵢ` (`Wᵢ` the `i`-th block of `M_R` columns of
/// `W`): one product of the `(M·M_R) × M₁` view of `W` with `Φ₁`, then `n₁` products of
/// `M_R × M × M_R/2` and the quadratic forms, `n₁ M M_R²/2 + n₁ M_R² N_R` in all (against
/// `M²K/2` for `‖L⁻¹φₙ‖²` on formed atoms).
///
/// **Coefficient space.** The Gram matrix of the active atoms is a product of entries of the
/// factor Gram matrices, `(ΦᴴΦ)_{nn'} = Πᵢ (ΦᵢᴴΦᵢ)_{nᵢn'ᵢ}`, so forming it costs `I` multiplies
/// per entry instead of `M`.
#[derive(Debug, Clone)]
struct KronDictionary<T: DenseScalar> {
    /// `Φ` as an operator (for `Φx` and `Φᴴy` by mode products).
    op: crate::op::Kronecker<T>,
    /// `ΦᵢᴴΦᵢ` (`nᵢ × nᵢ`).
    grams: Vec<Array2<T>>,
    /// `Φ₁` and the formed `R = Φ₂ ⊗ … ⊗ Φ_I` (`1 × 1` identity for one factor).
    first: Mat<T>,
    rest: Mat<T>,
    /// Global indices of the active atoms, ascending.
    active: Vec<usize>,
    /// Scratch of the measurement-space E-step, kept between iterations (every entry is
    /// written before it is read, so a buffer of the right length is reused as it is — a
    /// fresh or zeroed one costs page faults or a pass over tens of MB per iteration):
    /// `L⁻¹` (`M²`) and `L⁻¹(Φ₁ ⊗ I)` (`M·n₁M_R`), contiguous column-major; the `Cⱼ`
    /// (`M_R² × n₁`) and the lower blocks of `Σ_y − σ²I` (`M_R² × M₁(M₁+1)/2`).
    wbuf: Vec<T>,
    vbuf: Vec<T>,
    cbuf: Vec<T>,
    qbuf: Vec<T>,
}

impl<T: DenseScalar> KronDictionary<T> {
    fn new(op: crate::op::Kronecker<T>, grams: Vec<Array2<T>>) -> Self {
        let factors = op.factors();
        let first = &factors[0];
        let rest = crate::op::kronecker::kron_matrix(&factors[1..]);
        KronDictionary {
            first: Mat::from_fn(first.nrows(), first.ncols(), |i, j| first[[i, j]]),
            rest: Mat::from_fn(rest.nrows(), rest.ncols(), |i, j| rest[[i, j]]),
            active: (0..op.domain_size()).collect(),
            op,
            grams,
            wbuf: Vec::new(),
            vbuf: Vec::new(),
            cbuf: Vec::new(),
            qbuf: Vec::new(),
        }
    }

    /// `Φ X` for the active coefficients `x` (`K × L`), by mode products.
    fn apply_active(&self, x: &Mat<T>) -> Mat<T> {
        let mut out = Mat::<T>::zeros(self.op.range_size(), x.ncols());
        let mut full = Array1::<T>::zeros(self.op.domain_size());
        for c in 0..x.ncols() {
            full.fill(T::zero());
            for (i, &a) in self.active.iter().enumerate() {
                full[a] = x[(i, c)];
            }
            let r = self.op.apply(full.view().into_dyn()).expect("sizes agree");
            for (d, v) in out.col_as_slice_mut(c).iter_mut().zip(r.iter()) {
                *d = *v;
            }
        }
        out
    }

    /// `Φᴴ Y` on every atom (`N × L`), by mode products.
    fn adjoint_all(&self, y: &Mat<T>) -> Mat<T> {
        let mut out = Mat::<T>::zeros(self.op.domain_size(), y.ncols());
        for c in 0..y.ncols() {
            let yc = ndarray::ArrayView1::from(y.col_as_slice(c));
            let r = self.op.adjoint(yc.into_dyn()).expect("sizes agree");
            for (d, v) in out.col_as_slice_mut(c).iter_mut().zip(r.iter()) {
                *d = *v;
            }
        }
        out
    }

    /// The lower triangle of the Gram matrix of the active atoms (`K × K`).
    fn active_gram(&self) -> Mat<T> {
        let k = self.active.len();
        let dims = self.op.domain_dims();
        let multi: Vec<Vec<usize>> = self
            .active
            .iter()
            .map(|&a| {
                let mut idx = vec![0; dims.len()];
                let mut r = a;
                for (d, &n) in idx.iter_mut().zip(&dims).rev() {
                    *d = r % n;
                    r /= n;
                }
                idx
            })
            .collect();
        let mut g = Mat::<T>::zeros(k, k);
        for j in 0..k {
            let mj = &multi[j];
            let col = g.col_as_slice_mut(j);
            for (i, mi) in multi.iter().enumerate().skip(j) {
                let mut v = T::one();
                for ((gf, &a), &b) in self.grams.iter().zip(mi).zip(mj) {
                    v *= gf[[a, b]];
                }
                col[i] = v;
            }
        }
        g
    }
}

/// The active part of an SBL problem, kept for the E-step in column-major `faer` storage:
/// the active atoms `Φ_A` (`M × K`, or a Kronecker dictionary and the active indices),
/// `Φ_Aᴴ Y` (`K × L`), `Y` (`M × L`) and, once coefficient space is used, the Gram matrix
/// `G_A = Φ_Aᴴ Φ_A` (`K × K`, lower triangle). Pruning ([`ActiveSystem::retain`]) only ever
/// removes atoms, so `Φ_Aᴴ Y` and `G_A` are computed once and restricted afterwards; the
/// scratch matrices are reused between iterations.
#[derive(Debug, Clone)]
pub(crate) struct ActiveSystem<T: DenseScalar> {
    dict: Dictionary<T>,
    /// Number of measurements `M`.
    m: usize,
    phy: Mat<T>,
    y: Mat<T>,
    gram: Option<Mat<T>>,
    /// The number of atoms the coefficient-space storage was last sized for (its memory is
    /// released once the active set has halved).
    alloc_k: usize,
    /// Work spent in measurement space beyond what coefficient space would have cost
    /// (multiply–adds; see [`ActiveSystem::coefficient_space`]).
    excess: f64,
    s1: Mat<T>,
    s2: Mat<T>,
}

impl<T: DenseScalar> ActiveSystem<T> {
    /// All atoms of `phi` (`M × N`) active, measurements `y` (`M × L`).
    pub(crate) fn new(phi: ArrayView2<T>, y: ArrayView2<T>) -> Self {
        let (m, n) = phi.dim();
        let l = y.ncols();
        let phi_a = Mat::from_fn(m, n, |i, j| phi[[i, j]]);
        let y = Mat::from_fn(m, l, |i, j| y[[i, j]]);
        let mut phy = Mat::zeros(n, l);
        matmul(
            phy.as_mut(),
            Accum::Replace,
            phi_a.adjoint(),
            y.as_ref(),
            T::one(),
            par(),
        );
        Self::with_dictionary(Dictionary::Dense(phi_a), m, phy, y)
    }

    /// All atoms of the Kronecker dictionary `op` (never formed; `grams` its factor Gram
    /// matrices) active, measurements `y` (`M × L`, `M` the operator's range).
    pub(crate) fn kronecker(
        op: crate::op::Kronecker<T>,
        grams: Vec<Array2<T>>,
        y: ArrayView2<T>,
    ) -> Self {
        let kd = KronDictionary::new(op, grams);
        let (m, l) = y.dim();
        let y = Mat::from_fn(m, l, |i, j| y[[i, j]]);
        let phy = kd.adjoint_all(&y);
        Self::with_dictionary(Dictionary::Kronecker(Box::new(kd)), m, phy, y)
    }

    fn with_dictionary(dict: Dictionary<T>, m: usize, phy: Mat<T>, y: Mat<T>) -> Self {
        let n = phy.nrows();
        ActiveSystem {
            dict,
            m,
            phy,
            y,
            gram: None,
            alloc_k: n,
            excess: 0.0,
            s1: Mat::new(),
            s2: Mat::new(),
        }
    }

    /// Number of active atoms `K`.
    pub(crate) fn len(&self) -> usize {
        match &self.dict {
            Dictionary::Dense(phi_a) => phi_a.ncols(),
            Dictionary::Kronecker(kd) => kd.active.len(),
        }
    }

    /// The operation counts of one E-step on `k` active atoms and `m` measurements for this
    /// kind of dictionary.
    fn costs(&self, m: usize, k: usize) -> Costs {
        match &self.dict {
            Dictionary::Dense(_) => Costs::new(m, k),
            Dictionary::Kronecker(kd) => Costs::kronecker(m, k, kd.first.nrows(), kd.first.ncols()),
        }
    }

    /// Keep the active atoms `i` with `keep[i]` (in order), restricting `Φ_A`, `Φ_AᴴY` and
    /// `G_A` in place.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let k = self.len();
        assert_eq!(keep.len(), k, "one flag per active atom");
        let idx: Vec<usize> = (0..k).filter(|&i| keep[i]).collect();
        let kn = idx.len();
        if kn == k {
            return;
        }
        let (m, l) = (self.m, self.y.ncols());
        match &mut self.dict {
            Dictionary::Dense(phi_a) => {
                for (new, &old) in idx.iter().enumerate() {
                    if new != old {
                        let (left, right) = phi_a.as_mut().split_at_col_mut(old);
                        left.col_mut(new).copy_from(right.col(0));
                    }
                }
                phi_a.truncate(m, kn);
            }
            Dictionary::Kronecker(kd) => {
                kd.active = idx.iter().map(|&i| kd.active[i]).collect();
            }
        }
        for c in 0..l {
            let col = self.phy.col_as_slice_mut(c);
            for (new, &old) in idx.iter().enumerate() {
                col[new] = col[old];
            }
        }
        self.phy.truncate(kn, l);
        if let Some(g) = &mut self.gram {
            // Column-major order, rows ascending: every source (idx[i], idx[j]) lies at or after
            // its destination (i, j) and has not been overwritten yet.
            for (nj, &oj) in idx.iter().enumerate() {
                for ni in nj..kn {
                    g[(ni, nj)] = g[(idx[ni], oj)];
                }
            }
            g.truncate(kn, kn);
        }
        if 2 * kn <= self.alloc_k {
            // give back the memory of the larger active set
            if let Dictionary::Dense(phi_a) = &mut self.dict {
                *phi_a = phi_a.clone();
            }
            self.phy = self.phy.clone();
            if let Some(g) = &mut self.gram {
                *g = Mat::from_fn(kn, kn, |i, j| if j <= i { g[(i, j)] } else { T::zero() });
            }
            self.s1 = Mat::new();
            self.s2 = Mat::new();
            self.alloc_k = kn;
        }
    }

    /// The E-step for the hyperparameters `gamma` of the active atoms (all positive) and the
    /// noise variance `sigma2`, in the formulation `space`.
    pub(crate) fn estep(
        &mut self,
        gamma: &[<T as Scalar>::Real],
        sigma2: <T as Scalar>::Real,
        space: Space,
    ) -> Result<EStep<T>> {
        let (m, k) = (self.m, self.len());
        assert_eq!(gamma.len(), k, "one hyperparameter per active atom");
        let (mu, sdiag, logdet) = if k == 0 {
            (
                Array2::zeros((0, self.y.ncols())),
                Array1::zeros(0),
                real::<<T as Scalar>::Real>(m as f64) * sigma2.ln(),
            )
        } else {
            let coefficient = match space {
                Space::Measurement => false,
                Space::Coefficient => true,
                Space::Auto => self.coefficient_space(m, k),
            };
            if coefficient {
                self.estep_coefficient(gamma, sigma2)?
            } else if matches!(self.dict, Dictionary::Dense(_)) {
                self.estep_measurement(gamma, sigma2)?
            } else {
                self.estep_measurement_kronecker(gamma, sigma2)?
            }
        };
        let (resid2, y_resid) = self.residual(&mu);
        Ok(EStep {
            mu,
            sdiag,
            logdet,
            resid2,
            y_resid,
        })
    }

    /// The automatic choice, a rent-or-buy rule: coefficient space pays the Gram matrix once
    /// and is then the cheaper one for `K ≲ 1.81 M`. Once the Gram matrix exists coefficient
    /// space is used for good (the active set only shrinks); before, it is chosen when the
    /// work measurement space has spent beyond coefficient space in earlier iterations, plus
    /// that of this one, reaches the cost of the Gram matrix (immediately when `K ≤ M`, where
    /// one iteration's excess exceeds it). The total work is at most about twice that of the
    /// best choice in hindsight, whether pruning then proceeds quickly or slowly.
    fn coefficient_space(&mut self, m: usize, k: usize) -> bool {
        if self.gram.is_some() {
            return true;
        }
        let c = self.costs(m, k);
        let excess = c.measurement - c.coefficient;
        if excess > 0.0 && self.excess + excess >= c.gram {
            return true;
        }
        self.excess += excess.max(0.0);
        false
    }

    /// `‖Y − Φ_A μ‖_F²` and `Re Σₗ yₗᴴ(yₗ − Φ_A μₗ)`.
    fn residual(&self, mu: &Array2<T>) -> (<T as Scalar>::Real, <T as Scalar>::Real) {
        let mut r = self.y.clone();
        let (k, l) = mu.dim();
        if k > 0 {
            let muf = Mat::from_fn(k, l, |i, j| mu[[i, j]]);
            match &self.dict {
                Dictionary::Dense(phi_a) => matmul(
                    r.as_mut(),
                    Accum::Add,
                    phi_a.as_ref(),
                    muf.as_ref(),
                    T::zero() - T::one(),
                    par(),
                ),
                Dictionary::Kronecker(kd) => {
                    let p = kd.apply_active(&muf);
                    for c in 0..l {
                        for (d, v) in r.col_as_slice_mut(c).iter_mut().zip(p.col_as_slice(c)) {
                            *d -= *v;
                        }
                    }
                }
            }
        }
        let mut resid2 = <T as Scalar>::Real::zero();
        let mut y_resid = <T as Scalar>::Real::zero();
        for c in 0..l {
            for (a, b) in self.y.col_as_slice(c).iter().zip(r.col_as_slice(c)) {
                resid2 += b.abs2();
                y_resid += (a.conj() * *b).re();
            }
        }
        (resid2, y_resid)
    }

    /// Measurement space: `Σ_y = σ² I + Φ_A Γ_A Φ_Aᴴ = L Lᴴ`, `W = L⁻¹ Φ_A`,
    /// `μ = Γ_A Wᴴ L⁻¹ Y`, `Σₙₙ = γₙ − γₙ² ‖wₙ‖²`, `log|Σ_y| = 2 Σ log Lᵢᵢ`.
    fn estep_measurement(&mut self, gamma: &[Re<T>], sigma2: Re<T>) -> Result<EStepParts<T>> {
        let Dictionary::Dense(phi_a) = &self.dict else {
            unreachable!("the dense measurement-space E-step needs the formed atoms")
        };
        let (m, k) = (self.m, phi_a.ncols());
        let l = self.y.ncols();
        // s2 = Φ_A Γ_A
        self.s2.resize_with(m, k, |_, _| T::zero());
        for (j, &g) in gamma.iter().enumerate() {
            let src = phi_a.col_as_slice(j);
            for (d, s) in self.s2.col_as_slice_mut(j).iter_mut().zip(src) {
                *d = s.scale(g);
            }
        }
        // s1 = Σ_y (lower triangle), then its Cholesky factor L
        self.s1.resize_with(m, m, |_, _| T::zero());
        triangular::matmul(
            self.s1.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            self.s2.as_ref(),
            BlockStructure::Rectangular,
            phi_a.adjoint(),
            BlockStructure::Rectangular,
            T::one(),
            par(),
        );
        for i in 0..m {
            self.s1[(i, i)] += T::from_real(sigma2);
        }
        cholesky_in_place(self.s1.as_mut())?;
        let logdet = logdet_of_factor(self.s1.as_ref());
        // s2 = W = L⁻¹ Φ_A, z = L⁻¹ Y
        self.s2.as_mut().copy_from(phi_a.as_ref());
        solve_lower_triangular_in_place(self.s1.as_ref(), self.s2.as_mut(), par());
        let mut z = self.y.clone();
        solve_lower_triangular_in_place(self.s1.as_ref(), z.as_mut(), par());
        let mut wz = Mat::<T>::zeros(k, l);
        matmul(
            wz.as_mut(),
            Accum::Replace,
            self.s2.adjoint(),
            z.as_ref(),
            T::one(),
            par(),
        );
        let mu = Array2::from_shape_fn((k, l), |(i, c)| wz[(i, c)].scale(gamma[i]));
        let sdiag = Array1::from_shape_fn(k, |j| {
            let wn: <T as Scalar>::Real = self.s2.col_as_slice(j).iter().map(|v| v.abs2()).sum();
            let g = gamma[j];
            (g - g * g * wn).max(<T as Scalar>::Real::zero())
        });
        Ok((mu, sdiag, logdet))
    }

    /// Measurement space for a Kronecker dictionary (see [`KronDictionary`]):
    /// `Σ_y = σ²I + Σⱼ (aⱼaⱼᴴ) ⊗ Cⱼ = L Lᴴ`, `W = L⁻¹`, `μ = Γ_A Φ_Aᴴ WᴴW Y`,
    /// `Σₙₙ = γₙ − γₙ² ‖Wφₙ‖²`, `log|Σ_y| = 2 Σ log Lᵢᵢ`.
    fn estep_measurement_kronecker(
        &mut self,
        gamma: &[Re<T>],
        sigma2: Re<T>,
    ) -> Result<EStepParts<T>> {
        let Dictionary::Kronecker(kd) = &mut self.dict else {
            unreachable!("the Kronecker E-step needs a Kronecker dictionary")
        };
        let (m, k, l) = (self.m, kd.active.len(), self.y.ncols());
        let (m1, n1) = (kd.first.nrows(), kd.first.ncols());
        let (mr, nr) = (kd.rest.nrows(), kd.rest.ncols());
        let zero = <T as Scalar>::Real::zero();
        let mut full = vec![zero; n1 * nr];
        for (&a, &g) in kd.active.iter().zip(gamma) {
            full[a] = g;
        }
        // Cⱼ = R diag(γ_{j,·}) Rᴴ, stored as the columns of cs (M_R² × n₁, column-major Cⱼ)
        let mut cbuf = std::mem::take(&mut kd.cbuf);
        reuse(&mut cbuf, mr * mr * n1);
        // (independent small products: one per thread, each sequential)
        let rest = &kd.rest;
        cbuf.par_chunks_mut((mr * mr).max(1))
            .enumerate()
            .for_each(|(j, cj)| {
                let g = &full[j * nr..(j + 1) * nr];
                let cols: Vec<usize> = (0..nr).filter(|&c| g[c] > zero).collect();
                if cols.is_empty() {
                    cj.fill(T::zero());
                    return;
                }
                let rg = Mat::from_fn(mr, cols.len(), |p, c| rest[(p, cols[c])].scale(g[cols[c]]));
                let ra = Mat::from_fn(mr, cols.len(), |p, c| rest[(p, cols[c])]);
                matmul(
                    MatMut::from_column_major_slice_mut(cj, mr, mr),
                    Accum::Replace,
                    rg.as_ref(),
                    ra.adjoint(),
                    T::one(),
                    Par::Seq,
                );
            });
        // the block pairs (i, i') with i ≥ i' (Σ_y and S are Hermitian: the lower blocks
        // suffice); Pt[j, c] = Φ₁[i,j] conj Φ₁[i',j] for pair c
        let pairs: Vec<(usize, usize)> = (0..m1)
            .flat_map(|ip| (ip..m1).map(move |i| (i, ip)))
            .collect();
        let np = pairs.len();
        let pt = Mat::from_fn(n1, np, |j, c| {
            let (i, ip) = pairs[c];
            kd.first[(i, j)] * kd.first[(ip, j)].conj()
        });
        // column c of qt = block (i, i') of Σ_y − σ²I = Σⱼ Pt[j, c] Cⱼ (column-major M_R × M_R)
        let mut qbuf = std::mem::take(&mut kd.qbuf);
        reuse(&mut qbuf, mr * mr * np);
        matmul(
            MatMut::from_column_major_slice_mut(&mut qbuf, mr * mr, np),
            Accum::Replace,
            MatRef::from_column_major_slice(&cbuf, mr * mr, n1),
            pt.as_ref(),
            T::one(),
            par(),
        );
        // s1 = Σ_y (lower blocks; the diagonal blocks whole)
        self.s1.resize_with(m, m, |_, _| T::zero());
        // block column i' holds the pairs (i, i'), i = i'..M₁, contiguous in `pairs`
        self.s1
            .as_mut()
            .par_col_chunks_mut(mr.max(1))
            .enumerate()
            .for_each(|(ip, mut cols)| {
                let c0: usize = (0..ip).map(|q| m1 - q).sum();
                for i in ip..m1 {
                    let c = c0 + (i - ip);
                    debug_assert_eq!(pairs[c], (i, ip));
                    let block = &qbuf[c * mr * mr..(c + 1) * mr * mr];
                    for pp in 0..mr {
                        let col = cols
                            .rb_mut()
                            .col_mut(pp)
                            .try_as_col_major_mut()
                            .expect("faer columns are contiguous")
                            .as_slice_mut();
                        col[i * mr..(i + 1) * mr].copy_from_slice(&block[pp * mr..(pp + 1) * mr]);
                    }
                }
            });
        for i in 0..m {
            self.s1[(i, i)] += T::from_real(sigma2);
        }
        cholesky_in_place(self.s1.as_mut())?;
        let logdet = logdet_of_factor(self.s1.as_ref());
        // W = L⁻¹ in a contiguous column-major buffer (its strict upper triangle zero), so
        // that its M_R-column blocks Wᵢ are the columns of an (M·M_R) × M₁ matrix
        let mut wbuf = std::mem::take(&mut kd.wbuf);
        reuse(&mut wbuf, m * m);
        invert_lower_triangular(
            MatMut::from_column_major_slice_mut(&mut wbuf, m, m),
            self.s1.as_ref(),
            par(),
        );
        for j in 1..m {
            wbuf[j * m..j * m + j].fill(T::zero());
        }
        let w = MatRef::from_column_major_slice(&wbuf, m, m);
        // μ = Γ_A Φ_Aᴴ Wᴴ W Y
        let mut z1 = Mat::<T>::zeros(m, l);
        triangular::matmul(
            z1.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            w,
            BlockStructure::TriangularLower,
            self.y.as_ref(),
            BlockStructure::Rectangular,
            T::one(),
            par(),
        );
        let mut z = Mat::<T>::zeros(m, l);
        triangular::matmul(
            z.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            w.adjoint(),
            BlockStructure::TriangularUpper,
            z1.as_ref(),
            BlockStructure::Rectangular,
            T::one(),
            par(),
        );
        let phz = kd.adjoint_all(&z);
        let mu = Array2::from_shape_fn((k, l), |(i, c)| phz[(kd.active[i], c)].scale(gamma[i]));
        // Vⱼ = W (aⱼ ⊗ I) = Σᵢ Φ₁[i,j] Wᵢ (M × M_R): one product of the (M·M_R) × M₁ view of
        // W with Φ₁; then Tⱼ = (aⱼ ⊗ I)ᴴ S (aⱼ ⊗ I) = VⱼᴴVⱼ
        let mut vbuf = std::mem::take(&mut kd.vbuf);
        reuse(&mut vbuf, m * mr * n1);
        matmul(
            MatMut::from_column_major_slice_mut(&mut vbuf, m * mr, n1),
            Accum::Replace,
            MatRef::from_column_major_slice(&wbuf, m * mr, m1),
            kd.first.as_ref(),
            T::one(),
            par(),
        );
        // φₙᴴSφₙ = r_kᴴ Tⱼ r_k = 2 Re r_kᴴ Hⱼ r_k for n = j N_R + k, with Hⱼ the strict lower
        // triangle of Tⱼ plus half its diagonal (only where an atom is active)
        let two: <T as Scalar>::Real = real(2.0);
        let half: <T as Scalar>::Real = real(0.5);
        // the n₁ blocks are independent and small (M_R × M × M_R/2 each): one block per
        // thread, each product sequential, instead of every product split across threads
        let mut quad = vec![zero; n1 * nr];
        let rest = kd.rest.as_ref();
        quad.par_chunks_mut(nr.max(1)).enumerate().for_each_init(
            || (Mat::<T>::zeros(mr, mr), Mat::<T>::zeros(mr, nr)),
            |(tj, u), (j, qj)| {
                if full[j * nr..(j + 1) * nr].iter().all(|&g| g <= zero) {
                    return;
                }
                let vj =
                    MatRef::from_column_major_slice(&vbuf[j * m * mr..(j + 1) * m * mr], m, mr);
                triangular::matmul(
                    tj.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Replace,
                    vj.adjoint(),
                    BlockStructure::Rectangular,
                    vj,
                    BlockStructure::Rectangular,
                    T::one(),
                    Par::Seq,
                );
                for c in 0..mr {
                    let col = tj.col_as_slice_mut(c);
                    col[..c].fill(T::zero());
                    col[c] = col[c].scale(half);
                }
                matmul(
                    u.as_mut(),
                    Accum::Replace,
                    tj.as_ref(),
                    rest,
                    T::one(),
                    Par::Seq,
                );
                for (c, q) in qj.iter_mut().enumerate() {
                    let v: <T as Scalar>::Real = rest
                        .col(c)
                        .iter()
                        .zip(u.col_as_slice(c))
                        .map(|(r, v)| (r.conj() * *v).re())
                        .sum();
                    *q = two * v;
                }
            },
        );
        kd.wbuf = wbuf;
        kd.vbuf = vbuf;
        kd.cbuf = cbuf;
        kd.qbuf = qbuf;
        let sdiag = Array1::from_shape_fn(k, |i| {
            let g = gamma[i];
            (g - g * g * quad[kd.active[i]]).max(zero)
        });
        Ok((mu, sdiag, logdet))
    }

    /// Coefficient space: with `D = diag(√γ_A)` and the cached `G_A = Φ_AᴴΦ_A`,
    /// `B = I + D G_A D / σ² = L Lᴴ`, `Σ_A = D B⁻¹ D`, `μ = D B⁻¹ D Φ_AᴴY / σ²`,
    /// `Σₙₙ = γₙ ‖L⁻¹eₙ‖²`, `log|Σ_y| = M log σ² + log|B|` (Sylvester).
    fn estep_coefficient(&mut self, gamma: &[Re<T>], sigma2: Re<T>) -> Result<EStepParts<T>> {
        let (m, k) = (self.m, self.len());
        let l = self.y.ncols();
        if self.gram.is_none() {
            // the measurement-space scratch is no longer needed
            self.s1 = Mat::new();
            self.s2 = Mat::new();
            let g = match &self.dict {
                Dictionary::Dense(phi_a) => {
                    let mut g = Mat::<T>::zeros(k, k);
                    triangular::matmul(
                        g.as_mut(),
                        BlockStructure::TriangularLower,
                        Accum::Replace,
                        phi_a.adjoint(),
                        BlockStructure::Rectangular,
                        phi_a.as_ref(),
                        BlockStructure::Rectangular,
                        T::one(),
                        par(),
                    );
                    g
                }
                Dictionary::Kronecker(kd) => kd.active_gram(),
            };
            self.gram = Some(g);
            self.alloc_k = k;
        }
        let g = self.gram.as_ref().expect("formed above");
        let inv_s2 = <T as Scalar>::Real::one() / sigma2;
        let d: Vec<<T as Scalar>::Real> = gamma.iter().map(|&v| v.sqrt()).collect();
        // s1 = B (lower triangle), then its Cholesky factor L
        self.s1.resize_with(k, k, |_, _| T::zero());
        for j in 0..k {
            let f = d[j] * inv_s2;
            let gc = g.col_as_slice(j);
            let bc = self.s1.col_as_slice_mut(j);
            for i in j..k {
                bc[i] = gc[i].scale(d[i] * f);
            }
            bc[j] += T::one();
        }
        cholesky_in_place(self.s1.as_mut())?;
        let logdet = real::<<T as Scalar>::Real>(m as f64) * sigma2.ln()
            + logdet_of_factor(self.s1.as_ref());
        // μ = D L⁻ᴴ L⁻¹ D Φ_AᴴY / σ²
        let mut c = Mat::from_fn(k, l, |i, j| self.phy[(i, j)].scale(d[i] * inv_s2));
        solve_lower_triangular_in_place(self.s1.as_ref(), c.as_mut(), par());
        solve_upper_triangular_in_place(self.s1.adjoint(), c.as_mut(), par());
        let mu = Array2::from_shape_fn((k, l), |(i, j)| c[(i, j)].scale(d[i]));
        // s2 = L⁻¹ (lower triangle); (B⁻¹)ₙₙ = ‖L⁻¹ eₙ‖² = Σ_{i ≥ n} |(L⁻¹)ᵢₙ|²
        self.s2.resize_with(k, k, |_, _| T::zero());
        invert_lower_triangular(self.s2.as_mut(), self.s1.as_ref(), par());
        let sdiag = Array1::from_shape_fn(k, |n| {
            let bn: <T as Scalar>::Real =
                self.s2.col_as_slice(n)[n..].iter().map(|v| v.abs2()).sum();
            gamma[n] * bn
        });
        Ok((mu, sdiag, logdet))
    }
}

/// The SBL state machine (classic or, with a partition, block SBL); drive it with
/// [`crate::iter::run`] (with [`SblParams::stop`]) and collect the outcome with
/// [`Sbl::into_result`], or use the one-call [`sbl`] / [`super::block_sbl`].
#[derive(Debug, Clone)]
pub struct Sbl<T: DenseScalar> {
    /// The active atoms, `Φ_AᴴY` and (in coefficient space) their Gram matrix.
    sys: ActiveSystem<T>,
    m: usize,
    l: usize,
    space: Space,
    /// Block id of every atom (`None`: every atom its own block).
    groups: Option<Vec<usize>>,
    n_groups: usize,
    gamma: Array1<<T as Scalar>::Real>,
    sigma2: <T as Scalar>::Real,
    learn_noise: bool,
    update: Update,
    prune: <T as Scalar>::Real,
    active: Vec<usize>,
    mean: Array2<T>,
    var: Array1<<T as Scalar>::Real>,
    sigma2_floor: <T as Scalar>::Real,
}

impl<T: DenseScalar> Sbl<T> {
    /// Set up SBL for the dictionary `phi` (`M × N`) and measurements `y` (`M × L`, `L ≥ 1`
    /// snapshots sharing one support). Checks shapes, finiteness, and that `y` is not all zero.
    pub fn new(
        phi: ArrayView2<T>,
        y: ArrayView2<T>,
        params: &SblParams<<T as Scalar>::Real>,
    ) -> Result<Self> {
        Self::with_groups(phi, y, None, params)
    }

    /// As [`Sbl::new`], with every atom `n` belonging to block `groups[n]` (ids `0..B`); all
    /// atoms of a block share one hyperparameter.
    pub(crate) fn with_groups(
        phi: ArrayView2<T>,
        y: ArrayView2<T>,
        groups: Option<Vec<usize>>,
        params: &SblParams<<T as Scalar>::Real>,
    ) -> Result<Self> {
        params.validate()?;
        let (m, n) = phi.dim();
        if m == 0 || n == 0 {
            return Err(Error::Empty {
                what: "dictionary".into(),
            });
        }
        if y.nrows() != m || y.ncols() == 0 {
            return Err(Error::shape(
                "measurements (rows must equal the dictionary's rows)",
                &[m, y.ncols().max(1)],
                y.shape(),
            ));
        }
        crate::error::check_finite("dictionary", phi.iter())?;
        let ynorm2 = check_measurements::<T, _>("measurements y", y.iter())?;
        let phinorm2: <T as Scalar>::Real = phi.iter().map(|v| v.abs2()).sum();
        if phinorm2 == <T as Scalar>::Real::zero() {
            return Err(Error::param("dictionary", "is all zero"));
        }
        Self::from_system(
            ActiveSystem::new(phi, y),
            n,
            y.ncols(),
            ynorm2,
            phinorm2,
            groups,
            params,
        )
    }

    /// As [`Sbl::new`] for the dictionary `Φ = factors[0] ⊗ factors[1] ⊗ …` (factor `i` is
    /// `Mᵢ × nᵢ`; atom order as in [`crate::op::Kronecker`], first factor slowest), which is
    /// never formed: the same classic SBL (one hyperparameter per atom, no Kronecker
    /// structure imposed on `γ`), with the E-step's products taken through the factors (see
    /// [`sbl_kronecker`]). `y` is `M × L` with `M = Π Mᵢ`.
    pub fn kronecker(
        factors: &[Array2<T>],
        y: ArrayView2<T>,
        params: &SblParams<<T as Scalar>::Real>,
    ) -> Result<Self> {
        params.validate()?;
        let (op, grams, phinorm2) = super::kronecker_dictionary(factors)?;
        let (m, n) = (op.range_size(), op.domain_size());
        if y.nrows() != m || y.ncols() == 0 {
            return Err(Error::shape(
                "measurements (rows must equal the product of the factors' rows)",
                &[m, y.ncols().max(1)],
                y.shape(),
            ));
        }
        let ynorm2 = check_measurements::<T, _>("measurements y", y.iter())?;
        Self::from_system(
            ActiveSystem::kronecker(op, grams, y),
            n,
            y.ncols(),
            ynorm2,
            phinorm2,
            None,
            params,
        )
    }

    /// The common set-up once the inputs are checked: `n` atoms, `l` snapshots, `‖Y‖_F²`
    /// and `‖Φ‖_F²` (for the default starting `γ`).
    fn from_system(
        sys: ActiveSystem<T>,
        n: usize,
        l: usize,
        ynorm2: <T as Scalar>::Real,
        phinorm2: <T as Scalar>::Real,
        groups: Option<Vec<usize>>,
        params: &SblParams<<T as Scalar>::Real>,
    ) -> Result<Self> {
        let m = sys.m;
        let g0 = params
            .gamma_init
            .unwrap_or(ynorm2 / (real::<<T as Scalar>::Real>(l as f64) * phinorm2));
        let power = ynorm2 / real::<<T as Scalar>::Real>((m * l) as f64);
        let (sigma2, learn_noise) = match params.noise {
            NoiseModel::Fixed(s) => (s, false),
            NoiseModel::Learn { init } => (init.unwrap_or(power * real(0.1)), true),
        };
        let n_groups = match &groups {
            Some(g) => {
                if g.len() != n {
                    return Err(Error::shape("block partition", &[n], &[g.len()]));
                }
                g.iter().copied().max().unwrap_or(0) + 1
            }
            None => n,
        };
        Ok(Sbl {
            sys,
            m,
            l,
            space: Space::Auto,
            groups,
            n_groups,
            gamma: Array1::from_elem(n, g0),
            sigma2,
            learn_noise,
            update: params.update,
            prune: params.prune,
            active: (0..n).collect(),
            mean: Array2::zeros((n, l)),
            var: Array1::zeros(n),
            sigma2_floor: power * real(1e-12),
        })
    }

    /// Current posterior mean (`N × L`).
    pub fn mean(&self) -> &Array2<T> {
        &self.mean
    }
    /// Current hyperparameters.
    pub fn gamma(&self) -> &Array1<<T as Scalar>::Real> {
        &self.gamma
    }
    /// Current noise variance.
    pub fn noise_var(&self) -> <T as Scalar>::Real {
        self.sigma2
    }

    /// The current posterior, hyperparameters, noise variance and active set.
    pub fn into_result(self) -> SblResult<T> {
        SblResult {
            mean: self.mean,
            variance: self.var,
            gamma: self.gamma,
            noise_var: self.sigma2,
            support: self.active,
        }
    }
}

impl<T: DenseScalar> IterativeSolver for Sbl<T> {
    type Real = <T as Scalar>::Real;

    fn iterate(&self) -> Option<crate::iter::Iterate<'_>> {
        Some(T::iterate_view(self.mean.view().into_dyn()))
    }
    fn step(&mut self) -> Result<StepInfo<<T as Scalar>::Real>> {
        let zero = <T as Scalar>::Real::zero();
        let m = self.m;
        let lr: <T as Scalar>::Real = real(self.l as f64);
        let gamma_a: Vec<<T as Scalar>::Real> =
            self.active.iter().map(|&n| self.gamma[n]).collect();
        let e = self.sys.estep(&gamma_a, self.sigma2, self.space)?;
        let objective = lr * e.logdet + e.y_resid / self.sigma2;

        // record the posterior
        self.mean.fill(T::zero());
        self.var.fill(zero);
        for (i, &n) in self.active.iter().enumerate() {
            self.mean.row_mut(n).assign(&e.mu.row(i));
            self.var[n] = e.sdiag[i];
        }

        // M-step
        let k = self.active.len();
        let musq: Vec<<T as Scalar>::Real> = (0..k)
            .map(|i| {
                e.mu.row(i)
                    .iter()
                    .map(|v| v.abs2())
                    .sum::<<T as Scalar>::Real>()
                    / lr
            })
            .collect();
        // gᵢ = 1 − Σᵢᵢ/γᵢ ∈ [0, 1]
        let g: Vec<<T as Scalar>::Real> = (0..k)
            .map(|i| {
                (<T as Scalar>::Real::one() - e.sdiag[i] / gamma_a[i])
                    .max(zero)
                    .min(<T as Scalar>::Real::one())
            })
            .collect();
        let trace: <T as Scalar>::Real = g.iter().copied().sum();
        let old = self.gamma.clone();
        let tiny = <T as Scalar>::Real::min_positive_value();
        let g_floor: <T as Scalar>::Real = real(1e-8);
        match &self.groups {
            None => {
                for (i, &n) in self.active.iter().enumerate() {
                    self.gamma[n] = match self.update {
                        Update::Em => musq[i] + e.sdiag[i],
                        // gᵢ → 0 for atoms the data barely inform; there 1 − Σᵢᵢ/γᵢ loses
                        // all precision, and the EM step (which shrinks γᵢ) is used instead
                        Update::MacKay if g[i] > g_floor => musq[i] / g[i],
                        Update::MacKay => musq[i] + e.sdiag[i],
                    };
                }
            }
            Some(groups) => {
                let mut num = vec![zero; self.n_groups];
                let mut den = vec![zero; self.n_groups];
                for (i, &n) in self.active.iter().enumerate() {
                    let b = groups[n];
                    match self.update {
                        Update::Em => {
                            num[b] += musq[i] + e.sdiag[i];
                            den[b] += <T as Scalar>::Real::one();
                        }
                        Update::MacKay => {
                            num[b] += musq[i];
                            den[b] += g[i].max(g_floor);
                        }
                    }
                }
                for &n in &self.active {
                    let b = groups[n];
                    self.gamma[n] = num[b] / den[b].max(tiny);
                }
            }
        }
        if self.learn_noise {
            let mr: <T as Scalar>::Real = real(m as f64);
            let new = match self.update {
                Update::Em => (e.resid2 / lr + self.sigma2 * trace) / mr,
                Update::MacKay => {
                    let dof = mr - trace;
                    if dof > real(0.5) {
                        e.resid2 / lr / dof
                    } else {
                        (e.resid2 / lr + self.sigma2 * trace) / mr
                    }
                }
            };
            self.sigma2 = new.max(self.sigma2_floor);
        }
        // pruning (whole blocks: the members of a block share one value)
        let gmax = self.gamma.iter().copied().fold(zero, Float::max);
        if !(gmax.is_finite()) {
            return Err(Error::Numerical(
                "SBL hyperparameters became non-finite".into(),
            ));
        }
        let thr = self.prune * gmax;
        let gamma = &mut self.gamma;
        let mut keep = Vec::with_capacity(k);
        self.active.retain(|&n| {
            let alive = !(gamma[n] <= thr || gamma[n] <= zero);
            if !alive {
                gamma[n] = zero;
            }
            keep.push(alive);
            alive
        });
        self.sys.retain(&keep);
        let diff: <T as Scalar>::Real = self
            .gamma
            .iter()
            .zip(old.iter())
            .map(|(a, b)| (*a - *b) * (*a - *b))
            .sum::<<T as Scalar>::Real>()
            .sqrt();
        let nrm = crate::linalg::norm2(self.gamma.view().into_dyn());
        let rel_change = if nrm > zero { diff / nrm } else { zero };
        Ok(StepInfo {
            objective: Some(objective),
            rel_change,
            residual: Some(e.resid2.sqrt()),
        })
    }
}

/// Classic SBL (EM or MacKay updates) for `Y = Φ X + N`: `phi` is `M × N`, `y` is `M × L`
/// (`L = 1` for a single measurement vector; several columns share one support).
///
/// Iterates until [`SblParams::stop`] holds or `observer` interrupts; the observer sees the
/// posterior mean `μ` (`N × L`) after every iteration (pass
/// [`&mut NoObserver`](crate::iter::NoObserver) for none). Returns the posterior mean and
/// variances, the hyperparameters, the noise variance and the active set, beside the run's
/// [`Report`] (iterations, stop reason, objective history `log|Σ_y| + yᴴΣ_y⁻¹y`, time). The
/// final posterior is the one computed from the last hyperparameters used in an E-step (the
/// mean is that of the last iteration).
///
/// Cost: an iteration on `K` active atoms takes about `M²K + M³/6` multiply–adds while
/// `K ≳ 1.81 M` (measurement space) and `K³/3` after (coefficient space on the cached Gram
/// matrix `Φ_AᴴΦ_A`, formed once for `K²M/2`); see the [module docs](super).
///
/// ```
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::sbl::{sbl, SblParams, NoiseModel};
/// use ndarray::{Array2, array};
/// // 3 measurements of a 1-sparse vector in a 3 × 4 dictionary
/// let phi: Array2<f64> = array![[1.0, 0.0, 0.0, 0.6], [0.0, 1.0, 0.0, 0.8], [0.0, 0.0, 1.0, 0.0]];
/// let y = array![[0.0], [0.0], [2.0]];
/// let p = SblParams { noise: NoiseModel::Fixed(1e-6), ..Default::default() };
/// let (r, report) = sbl(phi.view(), y.view(), &p, &mut NoObserver).unwrap();
/// assert!((r.mean[[2, 0]] - 2.0).abs() < 1e-3);
/// assert!(r.mean[[0, 0]].abs() < 1e-3 && r.mean[[3, 0]].abs() < 1e-3);
/// assert!(report.iterations <= p.stop.max_iters);
/// ```
pub fn sbl<T: DenseScalar>(
    phi: ArrayView2<T>,
    y: ArrayView2<T>,
    params: &SblParams<<T as Scalar>::Real>,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(SblResult<T>, Report<<T as Scalar>::Real>)> {
    let mut s = Sbl::new(phi, y, params)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_result(), report))
}

/// Classic SBL (one hyperparameter per atom, EM or MacKay updates, as [`sbl`]) for a
/// dictionary given as a Kronecker product `Φ = Φ₁ ⊗ Φ₂ ⊗ … ⊗ Φ_I` that is never formed
/// (`factors[i]` is `Mᵢ × nᵢ`; atom and measurement order as in [`crate::op::Kronecker`],
/// first factor slowest); `y` is `M × L`, `M = Π Mᵢ`.
///
/// This is not Kronecker-structured SBL ([`super::ksbl`], which constrains
/// `γ = γ₁ ⊗ … ⊗ γ_I`): the hyperparameters are free, and the iterates are those of [`sbl`]
/// on the formed dictionary (to rounding). Only the E-step's products use the structure:
/// with `Φ = Φ₁ ⊗ R`, `Σ_y = σ²I + Σⱼ (aⱼaⱼᴴ) ⊗ (R Γⱼ Rᴴ)` is filled for `n₁M²` multiply–adds
/// (`aⱼ` the columns of `Φ₁`, `Γⱼ` the hyperparameters of the atoms that use it) and the
/// posterior variances `γₙ − γₙ² ‖L⁻¹φₙ‖²` (`Σ_y = LLᴴ`) come from the `n₁` products
/// `(L⁻¹(aⱼ ⊗ I))ᴴ L⁻¹(aⱼ ⊗ I)` instead of `L⁻¹` applied to every atom; the
/// Gram matrix of the active atoms in coefficient space is a product of the factors' Gram
/// entries. While more than about `1.1 M` atoms are active an iteration costs about `M³/3`
/// (the Cholesky factor of `Σ_y` and its inverse) plus `n₁ M M_R²/2` (`M_R = M/M₁`), then
/// `K³/3` in coefficient space, against `M²K + M³/6` and `K³/3` plus a `K²M/2` Gram matrix for
/// [`sbl`]. On the `1800 × 3375` dictionary of the IRS-MIMO example
/// (`(10 × 15) ⊗ (12 × 15) ⊗ (15 × 15)`, complex) that is 0.25 s per iteration where [`sbl`]
/// takes 0.9 s while all atoms are active (2-core machine, release build). Memory: about
/// `2M² + M²n₁/M₁` scalars of scratch (`L`, `L⁻¹` and the `Vⱼ`) and the formed
/// `R` (`M/M₁ × N/n₁`).
///
/// ```
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::sbl::{sbl, sbl_kronecker, NoiseModel, SblParams};
/// use ndarray::{array, Array2};
/// let a: Array2<f64> = array![[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]];
/// let b: Array2<f64> = array![[0.9, 0.1], [-0.4, 1.0], [0.3, 0.6]];
/// // x has one non-zero, atom 3 = (1, 1): the second column of a times the second of b
/// let phi = Array2::from_shape_fn((6, 6), |(r, c)| a[[r / 3, c / 2]] * b[[r % 3, c % 2]]);
/// let y = phi.column(3).to_owned().insert_axis(ndarray::Axis(1)) * 2.0;
/// let p = SblParams { noise: NoiseModel::Fixed(1e-6), ..Default::default() };
/// let (r, _) = sbl_kronecker(&[a, b], y.view(), &p, &mut NoObserver).unwrap();
/// let (f, _) = sbl(phi.view(), y.view(), &p, &mut NoObserver).unwrap();
/// assert!((r.mean[[3, 0]] - 2.0).abs() < 1e-3);
/// assert!((&r.mean - &f.mean).iter().all(|d: &f64| d.abs() < 1e-9));
/// ```
pub fn sbl_kronecker<T: DenseScalar>(
    factors: &[Array2<T>],
    y: ArrayView2<T>,
    params: &SblParams<<T as Scalar>::Real>,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(SblResult<T>, Report<<T as Scalar>::Real>)> {
    let mut s = Sbl::kronecker(factors, y, params)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_result(), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::adjoint;
    use crate::scalar::C64;
    use crate::testing::randn;
    use ndarray::{Axis, Ix2};

    /// The straightforward measurement-space E-step, by `ndarray` products and the
    /// [`DenseScalar`] Cholesky: `Σ_y = σ²I + Φ_A Γ_A Φ_Aᴴ = LLᴴ`, `W = L⁻¹Φ_A`,
    /// `μ = Γ_A Wᴴ L⁻¹Y`, `Σₙₙ = γₙ − γₙ²‖wₙ‖²`, `r = Y − Φ_A μ`.
    fn reference<T: DenseScalar + Scalar<Real = f64>>(
        phi_a: &Array2<T>,
        gamma: &[f64],
        sigma2: f64,
        y: &Array2<T>,
    ) -> EStep<T> {
        let m = phi_a.nrows();
        let mut pg = phi_a.clone();
        for (mut col, &g) in pg.axis_iter_mut(Axis(1)).zip(gamma) {
            col.mapv_inplace(|v| v.scale(g));
        }
        let mut sy = pg.dot(&adjoint(phi_a.view()));
        for i in 0..m {
            sy[[i, i]] += T::from_real(sigma2);
        }
        let l = T::cholesky_lower(sy.view()).unwrap();
        let logdet = l.diag().iter().map(|v| 2.0 * v.re().ln()).sum();
        let mut w = phi_a.clone();
        T::solve_lower_in_place(l.view(), &mut w);
        let mut z = y.clone();
        T::solve_lower_in_place(l.view(), &mut z);
        let mut mu = adjoint(w.view()).dot(&z);
        for (mut row, &g) in mu.axis_iter_mut(Axis(0)).zip(gamma) {
            row.mapv_inplace(|v| v.scale(g));
        }
        let sdiag = Array1::from_shape_fn(gamma.len(), |n| {
            let wn: f64 = w.column(n).iter().map(|v| v.abs2()).sum();
            gamma[n] - gamma[n] * gamma[n] * wn
        });
        let r = y - &phi_a.dot(&mu);
        EStep {
            resid2: r.iter().map(|v| v.abs2()).sum(),
            y_resid: y
                .iter()
                .zip(r.iter())
                .map(|(a, b)| (a.conj() * *b).re())
                .sum(),
            mu,
            sdiag,
            logdet,
        }
    }

    fn rel<T: Scalar<Real = f64>>(a: &Array2<T>, b: &Array2<T>) -> f64 {
        let d = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (*x - *y).modulus())
            .fold(0.0, f64::max);
        d / b
            .iter()
            .map(|v| v.modulus())
            .fold(f64::MIN_POSITIVE, f64::max)
    }

    fn assert_same<T: DenseScalar + Scalar<Real = f64>>(e: &EStep<T>, r: &EStep<T>, what: &str) {
        assert_same_scaled(e, r, what, 0.0)
    }

    /// [`assert_same`], the variances compared relative to the larger of their own maximum
    /// and `var_scale` (`Σₙₙ = γₙ − γₙ²qₙ` loses digits to cancellation in proportion to
    /// `γₙ` where `Σₙₙ ≪ γₙ`, whichever way `qₙ` is rounded).
    fn assert_same_scaled<T: DenseScalar + Scalar<Real = f64>>(
        e: &EStep<T>,
        r: &EStep<T>,
        what: &str,
        var_scale: f64,
    ) {
        let tol = 1e-10;
        assert!(
            rel(&e.mu, &r.mu) < tol,
            "{what}: mean {}",
            rel(&e.mu, &r.mu)
        );
        let sd = e
            .sdiag
            .iter()
            .zip(r.sdiag.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / r.sdiag
                .iter()
                .copied()
                .fold(var_scale.max(f64::MIN_POSITIVE), f64::max);
        assert!(sd < tol, "{what}: variances {sd}");
        for (a, b, name) in [
            (e.logdet, r.logdet, "log-determinant"),
            (e.resid2, r.resid2, "residual"),
            (e.y_resid, r.y_resid, "yᴴ residual"),
        ] {
            assert!(
                (a - b).abs() <= tol * b.abs().max(1.0),
                "{what}: {name} {a} vs {b}"
            );
        }
    }

    /// Hyperparameters spread over four decades.
    fn gammas(k: usize, seed: u64) -> Vec<f64> {
        let u = randn::<f64>(&[k], seed);
        u.iter()
            .map(|v| 10f64.powf(1.0 - 2.0 * v.abs().min(2.0)))
            .collect()
    }

    fn case<T: DenseScalar + Scalar<Real = f64>>(m: usize, k: usize, seed: u64) {
        let phi = randn::<T>(&[m, k], seed)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let y = randn::<T>(&[m, 3], seed + 1)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let mut sys = ActiveSystem::new(phi.view(), y.view());
        let mut cols: Vec<usize> = (0..k).collect();
        // three rounds of pruning; every round checks both formulations (and the one that
        // Auto picks) against the reference on the surviving columns, with the cached Gram
        // matrix and the reused scratch of the earlier rounds
        for round in 0..3u64 {
            let g = gammas(cols.len(), seed + 10 + round);
            let s2 = 0.05 + 0.2 * round as f64;
            let phi_a = phi.select(Axis(1), &cols);
            let r = reference(&phi_a, &g, s2, &y);
            for space in [Space::Measurement, Space::Coefficient, Space::Auto] {
                let e = sys.estep(&g, s2, space).unwrap();
                assert_same(
                    &e,
                    &r,
                    &format!("{m}×{} round {round} {space:?}", cols.len()),
                );
            }
            // drop about a third of the atoms, never the first
            let keep: Vec<bool> = (0..cols.len())
                .map(|i| i == 0 || (i as u64 * 7 + round * 3 + seed) % 3 != 0)
                .collect();
            let mut it = keep.iter();
            cols.retain(|_| *it.next().unwrap());
            sys.retain(&keep);
        }
    }

    /// The cached-Gram coefficient-space E-step and the measurement-space E-step both equal
    /// the straightforward measurement-space E-step to 1e-10, for `K < M`, `K = M` and
    /// `K > M` (where pruning then takes `K` below `M`), real and complex.
    #[test]
    fn estep_formulations_match_the_measurement_space_reference() {
        for (m, k) in [(12, 5), (12, 12), (12, 20), (8, 30), (30, 45)] {
            case::<f64>(m, k, 3 * m as u64 + k as u64);
            case::<C64>(m, k, 5 * m as u64 + k as u64);
        }
    }

    /// Whole SBL runs with pruning give the same iterates whichever E-step is used: forced
    /// measurement space, forced coefficient space, and the automatic switch.
    #[test]
    fn sbl_iterates_do_not_depend_on_the_estep_formulation() {
        fn run_with<T: DenseScalar + Scalar<Real = f64>>(space: Space) -> (Array2<T>, Vec<f64>) {
            let (m, n) = (20, 45);
            let phi = randn::<T>(&[m, n], 5).into_dimensionality::<Ix2>().unwrap();
            let mut x = Array2::<T>::zeros((n, 2));
            for (i, &j) in [3usize, 17, 30, 41].iter().enumerate() {
                x[[j, 0]] = T::from_real(1.0 + i as f64);
                x[[j, 1]] = T::from_real(-0.5 * i as f64 - 0.3);
            }
            let noise = randn::<T>(&[m, 2], 6)
                .into_dimensionality::<Ix2>()
                .unwrap()
                .mapv(|v| v.scale(0.05));
            let y = phi.dot(&x) + noise;
            let p = SblParams {
                stop: crate::iter::StopCriteria {
                    max_iters: 60,
                    rel_tol: 0.0,
                    ..Default::default()
                },
                prune: 1e-3,
                ..Default::default()
            };
            let mut s = Sbl::new(phi.view(), y.view(), &p).unwrap();
            s.space = space;
            let mut obj = Vec::new();
            for _ in 0..60 {
                obj.push(s.step().unwrap().objective.unwrap());
            }
            assert!(s.active.len() < m, "pruning must take K below M");
            assert!(s.sys.len() == s.active.len());
            (s.mean, obj)
        }
        fn check<T: DenseScalar + Scalar<Real = f64>>() {
            let (mr, or) = run_with::<T>(Space::Measurement);
            for space in [Space::Coefficient, Space::Auto] {
                let (me, oe) = run_with::<T>(space);
                assert!(rel(&me, &mr) < 1e-9, "{space:?}: {}", rel(&me, &mr));
                for (a, b) in oe.iter().zip(&or) {
                    assert!(
                        (a - b).abs() < 1e-9 * b.abs().max(1.0),
                        "{space:?}: {a} vs {b}"
                    );
                }
            }
        }
        check::<f64>();
        check::<C64>();
    }

    /// Random factors of the given shapes and the formed Kronecker product (first factor
    /// slowest; the column of `Φ` for atom `n` is built from the multi-index of `n` directly,
    /// independently of [`crate::op::kronecker::kron_matrix`]).
    fn kron_dictionary<T: DenseScalar + Scalar<Real = f64>>(
        shapes: &[(usize, usize)],
        seed: u64,
    ) -> (Vec<Array2<T>>, Array2<T>) {
        let factors: Vec<Array2<T>> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(m, n))| {
                randn::<T>(&[m, n], seed + i as u64)
                    .into_dimensionality::<Ix2>()
                    .unwrap()
            })
            .collect();
        let m: usize = shapes.iter().map(|s| s.0).product();
        let n: usize = shapes.iter().map(|s| s.1).product();
        let split = |mut v: usize, dims: Vec<usize>| -> Vec<usize> {
            let mut out = vec![0; dims.len()];
            for (o, d) in out.iter_mut().zip(&dims).rev() {
                *o = v % d;
                v /= d;
            }
            out
        };
        let phi = Array2::from_shape_fn((m, n), |(r, c)| {
            let ri = split(r, shapes.iter().map(|s| s.0).collect());
            let ci = split(c, shapes.iter().map(|s| s.1).collect());
            factors
                .iter()
                .zip(ri.iter().zip(&ci))
                .fold(T::one(), |acc, (f, (&a, &b))| acc * f[[a, b]])
        });
        (factors, phi)
    }

    fn kron_case<T: DenseScalar + Scalar<Real = f64>>(shapes: &[(usize, usize)], seed: u64) {
        let (factors, phi) = kron_dictionary::<T>(shapes, seed);
        let (m, k) = phi.dim();
        let y = randn::<T>(&[m, 2], seed + 7)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let (op, grams, _) = super::super::kronecker_dictionary(&factors).unwrap();
        let mut sys = ActiveSystem::kronecker(op, grams, y.view());
        let mut cols: Vec<usize> = (0..k).collect();
        for round in 0..4u64 {
            let g = gammas(cols.len(), seed + 20 + round);
            let s2 = 0.03 + 0.3 * round as f64;
            let phi_a = phi.select(Axis(1), &cols);
            let r = reference(&phi_a, &g, s2, &y);
            for space in [Space::Measurement, Space::Coefficient, Space::Auto] {
                let e = sys.estep(&g, s2, space).unwrap();
                assert_same_scaled(
                    &e,
                    &r,
                    &format!(
                        "Kronecker {shapes:?}, {} atoms, round {round} {space:?}",
                        cols.len()
                    ),
                    g.iter().copied().fold(0.0, f64::max),
                );
            }
            // drop atoms irregularly (whole columns of the first factor go in round 2)
            let keep: Vec<bool> = cols
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    i == 0
                        || !((c as u64 * 5 + round * 3 + seed) % 4 == 0
                            || (round == 2 && c / (k / shapes[0].1) == 1))
                })
                .collect();
            let mut it = keep.iter();
            cols.retain(|_| *it.next().unwrap());
            sys.retain(&keep);
        }
    }

    /// The E-step through the Kronecker factors (measurement space, coefficient space with
    /// the Gram matrix from the factor Gram matrices, and the automatic choice) equals the
    /// straightforward E-step on the formed dictionary to 1e-10, through four rounds of
    /// pruning, for one, two and three factors with `N < M`, `N > M` and `N ≫ M`, real and
    /// complex.
    #[test]
    fn kronecker_estep_matches_the_formed_dictionary() {
        let cases: [&[(usize, usize)]; 4] = [
            &[(9, 14)],
            &[(3, 5), (4, 6)],
            &[(5, 4), (6, 3)],
            &[(2, 3), (3, 4), (4, 3)],
        ];
        for (i, shapes) in cases.iter().enumerate() {
            kron_case::<f64>(shapes, 40 + i as u64);
            kron_case::<C64>(shapes, 60 + i as u64);
        }
    }

    /// Whole runs of [`sbl_kronecker`] equal [`sbl`] on the formed dictionary (mean,
    /// variances, hyperparameters, support, objective history), with learned noise and
    /// pruning, real and complex.
    #[test]
    fn sbl_kronecker_equals_sbl_on_the_formed_dictionary() {
        fn check<T: DenseScalar + Scalar<Real = f64>>(seed: u64) {
            let (factors, phi) = kron_dictionary::<T>(&[(4, 6), (5, 7)], seed);
            let n = phi.ncols();
            let mut x = Array2::<T>::zeros((n, 1));
            for (i, &j) in [2usize, 12, 21, 34].iter().enumerate() {
                x[[j, 0]] = T::from_real(1.5 - 0.7 * i as f64);
            }
            let noise = randn::<T>(&[20, 1], seed + 9)
                .into_dimensionality::<Ix2>()
                .unwrap()
                .mapv(|v| v.scale(0.02));
            let y = phi.dot(&x) + noise;
            let p = SblParams {
                stop: crate::iter::StopCriteria {
                    max_iters: 80,
                    ..Default::default()
                },
                prune: 1e-3,
                ..Default::default()
            };
            let (f, rf) = sbl(phi.view(), y.view(), &p, &mut crate::iter::NoObserver).unwrap();
            let (k, rk) =
                sbl_kronecker(&factors, y.view(), &p, &mut crate::iter::NoObserver).unwrap();
            assert_eq!(rf.iterations, rk.iterations);
            assert_eq!(f.support, k.support);
            assert!(f.support.len() < 20, "pruning must have acted");
            assert!(rel(&k.mean, &f.mean) < 1e-8, "{}", rel(&k.mean, &f.mean));
            for (a, b) in [(&k.gamma, &f.gamma), (&k.variance, &f.variance)] {
                let d = a
                    .iter()
                    .zip(b)
                    .map(|(u, v)| (u - v).abs())
                    .fold(0.0, f64::max);
                assert!(d < 1e-8 * b.iter().copied().fold(1e-300, f64::max), "{d}");
            }
            assert!((k.noise_var - f.noise_var).abs() < 1e-8 * f.noise_var);
            assert_eq!(rk.objective_history.len(), rf.objective_history.len());
            for (a, b) in rk.objective_history.iter().zip(&rf.objective_history) {
                assert!((a - b).abs() < 1e-8 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
        check::<f64>(3);
        check::<C64>(4);
    }

    /// Bad Kronecker input is refused with an error naming it (factor `i` is "dictionary i+1",
    /// as for KSBL; an empty factor is named by the Kronecker operator, "Kronecker factor i").
    #[test]
    fn sbl_kronecker_refuses_bad_input() {
        let a = Array2::<f64>::ones((2, 3));
        let y = Array2::<f64>::ones((6, 1));
        let p = SblParams::default();
        let msg = |r: Result<Sbl<f64>>| r.unwrap_err().to_string();
        assert!(msg(Sbl::kronecker(&[], y.view(), &p)).contains("at least one factor"));
        let e = msg(Sbl::kronecker(
            &[a.clone(), Array2::zeros((3, 0))],
            y.view(),
            &p,
        ));
        assert!(e.contains("factor 1"), "{e}");
        let e = msg(Sbl::kronecker(
            &[a.clone(), Array2::zeros((3, 2))],
            y.view(),
            &p,
        ));
        assert!(e.contains("dictionary 2") && e.contains("all zero"), "{e}");
        let mut b = Array2::<f64>::ones((3, 2));
        b[[1, 1]] = f64::NAN;
        assert!(msg(Sbl::kronecker(&[a.clone(), b], y.view(), &p)).contains("dictionary 2"));
        let e = msg(Sbl::kronecker(&[a.clone(), a.clone()], y.view(), &p));
        assert!(e.contains("product of the factors' rows"), "{e}");
        let e = msg(Sbl::kronecker(
            std::slice::from_ref(&a),
            Array2::zeros((2, 1)).view(),
            &p,
        ));
        assert!(e.contains("all zero"), "{e}");
    }

    /// The operation counts cross at `K ≈ 1.81 M`; the automatic choice stays in
    /// measurement space until the excess work pays for the Gram matrix, goes to coefficient
    /// space at once when `K ≤ M`, and stays there.
    #[test]
    fn auto_switch_follows_the_operation_count() {
        let cheaper = |m, k| {
            let c = Costs::new(m, k);
            c.coefficient < c.measurement
        };
        assert!(cheaper(1800, 1000) && cheaper(1800, 1800) && cheaper(1800, 3200));
        assert!(!cheaper(1800, 3300) && !cheaper(1800, 3375));
        let phi = randn::<f64>(&[4, 12], 1)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let y = randn::<f64>(&[4, 1], 2)
            .into_dimensionality::<Ix2>()
            .unwrap();
        let fresh = || ActiveSystem::new(phi.view(), y.view());
        let mut s = fresh();
        assert!(!s.coefficient_space(1800, 3375));
        assert_eq!(s.excess, 0.0);
        // 3222 atoms: slightly cheaper in coefficient space, not enough to form the Gram matrix
        assert!(!s.coefficient_space(1800, 3222));
        assert!(s.excess > 0.0 && s.excess < Costs::new(1800, 3222).gram);
        // 2138 atoms: this iteration's excess and the earlier one pay for it
        assert!(s.coefficient_space(1800, 2138));
        // a slow decline also switches, after a few iterations
        let mut s = fresh();
        let n = [3177, 3128, 3065, 2982, 2915, 2843, 2761]
            .iter()
            .take_while(|&&k| !s.coefficient_space(1800, k))
            .count();
        assert!((3..7).contains(&n), "{n}");
        let mut s = fresh();
        assert!(s.coefficient_space(1800, 1800));
        assert!(fresh().coefficient_space(100, 60));
        // a Kronecker dictionary ((10 × 15) ⊗ R): measurement space costs about 1.38·M³/3
        // and the Gram matrix almost nothing, so coefficient space is taken as soon as it is
        // cheaper (K ≲ 1.08 M)
        let kc = |m, k| {
            let c = Costs::kronecker(m, k, 10, 15);
            c.coefficient < c.measurement
        };
        assert!(kc(1800, 1900) && !kc(1800, 2000) && !kc(1800, 3375));
        let (factors, _) = kron_dictionary::<f64>(&[(3, 4), (4, 3)], 9);
        let (op, grams, _) = super::super::kronecker_dictionary(&factors).unwrap();
        let mut s = ActiveSystem::kronecker(
            op,
            grams,
            randn::<f64>(&[12, 1], 3)
                .into_dimensionality::<Ix2>()
                .unwrap()
                .view(),
        );
        assert!(!s.coefficient_space(1800, 3375));
        assert!(s.coefficient_space(1800, 1900));
        // once the Gram matrix exists, for good
        s.gram = Some(Mat::zeros(1, 1));
        assert!(s.coefficient_space(1800, 3375));
    }
}
