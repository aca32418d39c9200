//! Classic SBL by expectation–maximisation for `Y = Φ X + N` (single or multiple measurement
//! vectors), real or complex, with learned or fixed noise and pruning. See the [module
//! docs](super) for the model and the updates.

use super::{check_measurements, NoiseModel, SblParams, Update};
use crate::dense::{adjoint, DenseScalar};
use crate::error::{Error, Result};
use crate::iter::{run, IterativeSolver, Observer, Report, StepInfo};
use crate::scalar::{real, Scalar};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use num_traits::{Float, One, Zero};

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

/// E-step for `Φ_A` (`M × K`, the active atoms), `γ_A` (all positive), `σ²`, `Y` (`M × L`).
/// Measurement space when `K ≥ M`, coefficient space otherwise.
pub(crate) fn estep<T: DenseScalar>(
    phi_a: ArrayView2<T>,
    gamma_a: &Array1<<T as Scalar>::Real>,
    sigma2: <T as Scalar>::Real,
    y: ArrayView2<T>,
) -> Result<EStep<T>> {
    let (m, k) = phi_a.dim();
    let two: <T as Scalar>::Real = real(2.0);
    let (mu, sdiag, logdet) = if k == 0 {
        (
            Array2::zeros((0, y.ncols())),
            Array1::zeros(0),
            real::<<T as Scalar>::Real>(m as f64) * sigma2.ln(),
        )
    } else if k >= m {
        // Σ_y = σ² I + Φ_A Γ Φ_Aᴴ
        let mut pg = phi_a.to_owned();
        for (mut col, &g) in pg.axis_iter_mut(Axis(1)).zip(gamma_a.iter()) {
            col.mapv_inplace(|v| v.scale(g));
        }
        let mut sy = T::mul_adjoint(pg.view(), phi_a);
        for i in 0..m {
            sy[[i, i]] += T::from_real(sigma2);
        }
        let l = T::cholesky_lower(sy.view())?;
        let logdet = l
            .diag()
            .iter()
            .map(|v| two * v.re().ln())
            .sum::<<T as Scalar>::Real>();
        let mut w = phi_a.to_owned();
        T::solve_lower_in_place(l.view(), &mut w);
        let mut z = y.to_owned();
        T::solve_lower_in_place(l.view(), &mut z);
        let mut mu = adjoint(w.view()).dot(&z);
        for (mut row, &g) in mu.axis_iter_mut(Axis(0)).zip(gamma_a.iter()) {
            row.mapv_inplace(|v| v.scale(g));
        }
        let sdiag = Array1::from_shape_fn(k, |n| {
            let wn: <T as Scalar>::Real = w.column(n).iter().map(|v| v.abs2()).sum();
            let g = gamma_a[n];
            (g - g * g * wn).max(<T as Scalar>::Real::zero())
        });
        (mu, sdiag, logdet)
    } else {
        // B = I + D G D / σ², D = diag(√γ), Σ = D B⁻¹ D
        let d = gamma_a.mapv(|g| g.sqrt());
        let mut pd = phi_a.to_owned();
        for (mut col, &s) in pd.axis_iter_mut(Axis(1)).zip(d.iter()) {
            col.mapv_inplace(|v| v.scale(s));
        }
        let pdh = adjoint(pd.view());
        let mut b = T::mul_adjoint(pdh.view(), pdh.view());
        b.mapv_inplace(|v| v.scale(<T as Scalar>::Real::one() / sigma2));
        for i in 0..k {
            b[[i, i]] += T::one();
        }
        let l = T::cholesky_lower(b.view())?;
        let logdet = real::<<T as Scalar>::Real>(m as f64) * sigma2.ln()
            + l.diag()
                .iter()
                .map(|v| two * v.re().ln())
                .sum::<<T as Scalar>::Real>();
        let mut c = adjoint(pd.view()).dot(&y);
        c.mapv_inplace(|v| v.scale(<T as Scalar>::Real::one() / sigma2));
        T::solve_lower_in_place(l.view(), &mut c);
        T::solve_lower_adjoint_in_place(l.view(), &mut c);
        for (mut row, &s) in c.axis_iter_mut(Axis(0)).zip(d.iter()) {
            row.mapv_inplace(|v| v.scale(s));
        }
        let mut linv = Array2::<T>::eye(k);
        T::solve_lower_in_place(l.view(), &mut linv);
        let sdiag = Array1::from_shape_fn(k, |n| {
            let bn: <T as Scalar>::Real = linv.column(n).iter().map(|v| v.abs2()).sum();
            gamma_a[n] * bn
        });
        (c, sdiag, logdet)
    };
    let resid = if k == 0 {
        y.to_owned()
    } else {
        &y - &phi_a.dot(&mu)
    };
    let resid2 = resid.iter().map(|v| v.abs2()).sum();
    let y_resid = y
        .iter()
        .zip(resid.iter())
        .map(|(a, b)| (a.conj() * *b).re())
        .sum();
    Ok(EStep {
        mu,
        sdiag,
        logdet,
        resid2,
        y_resid,
    })
}

/// The SBL state machine (classic or, with a partition, block SBL); drive it with
/// [`crate::iter::run`] (with [`SblParams::stop`]) and collect the outcome with
/// [`Sbl::into_result`], or use the one-call [`sbl`] / [`super::block_sbl`].
#[derive(Debug, Clone)]
pub struct Sbl<T: DenseScalar> {
    phi: Array2<T>,
    y: Array2<T>,
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
        let l = y.ncols();
        let phinorm2: <T as Scalar>::Real = phi.iter().map(|v| v.abs2()).sum();
        if phinorm2 == <T as Scalar>::Real::zero() {
            return Err(Error::param("dictionary", "is all zero"));
        }
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
            phi: phi.to_owned(),
            y: y.to_owned(),
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
        let (m, _) = self.phi.dim();
        let l = self.y.ncols();
        let lr: <T as Scalar>::Real = real(l as f64);
        let phi_a = self.phi.select(Axis(1), &self.active);
        let gamma_a = Array1::from_shape_fn(self.active.len(), |i| self.gamma[self.active[i]]);
        let e = estep(phi_a.view(), &gamma_a, self.sigma2, self.y.view())?;
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
        self.active.retain(|&n| {
            if gamma[n] <= thr || gamma[n] <= zero {
                gamma[n] = zero;
                false
            } else {
                true
            }
        });
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
