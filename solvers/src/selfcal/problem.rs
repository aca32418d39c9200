//! The problem: the three measurement models, the validated [`Problem`], the maps between a
//! calibration and its inverse, and the recovery errors up to scale.

use super::solve::Solution;
use super::system::{Circ, SystemOperator};
use crate::dense::DenseScalar;
use crate::error::{check_finite, Error, Result};
use crate::linalg::{norm2_sq, vdot};
use crate::scalar::{Real, Scalar};
use ndarray::{Array1, Array2, Array3, ArrayView1};
use num_traits::{Float, One, Zero};

/// The three measurement models of Ling & Strohmer (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Self-calibration from repeated measurements: `y_l = diag(d) A_l x`.
    Repeated,
    /// Blind deconvolution via diverse inputs: `y_l = f ⊛ (C_l x_l)`.
    Diverse,
    /// Self-calibration from multiple snapshots: `y_l = diag(d) A x_l`.
    Snapshots,
}

impl Model {
    /// The model's name as used by the CLI (`repeated`, `diverse`, `snapshots`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Model::Repeated => "repeated",
            Model::Diverse => "diverse",
            Model::Snapshots => "snapshots",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "repeated" => Ok(Model::Repeated),
            "diverse" => Ok(Model::Diverse),
            "snapshots" => Ok(Model::Snapshots),
            _ => Err(Error::param(
                "model",
                format!("unknown model `{s}` (expected repeated, diverse or snapshots)"),
            )),
        }
    }
}

/// A validated self-calibration problem: the data `y` (`[p, m]`), the measurement matrices
/// (`[p, m, n]`, or `[1, m, n]` for `Snapshots`) and the optional subspace `B` (`[m, k]`).
pub struct Problem<T: DenseScalar> {
    pub(super) op: SystemOperator<T>,
}

impl<T: DenseScalar> Problem<T> {
    /// Validate and build.
    ///
    /// Errors: empty or non-finite arrays; inconsistent shapes; `k` outside `1..=m`;
    /// all-zero data; for the diagonal models without subspace, a sensor `i` with `y_{l,i} = 0`
    /// in every block (its gain is not identifiable); fewer measurements `p·m` than the
    /// `N − 1` degrees of freedom (the message gives the count needed).
    pub fn new(model: Model, y: Array2<T>, a: Array3<T>, b: Option<Array2<T>>) -> Result<Self> {
        let (p, m) = y.dim();
        if p == 0 || m == 0 {
            return Err(Error::Empty {
                what: "measurements y".into(),
            });
        }
        let (q, ma, n) = a.dim();
        if q == 0 || ma == 0 || n == 0 {
            return Err(Error::Empty {
                what: "measurement matrices A".into(),
            });
        }
        let q_expected = if model == Model::Snapshots { 1 } else { p };
        if q != q_expected || ma != m {
            return Err(Error::shape(
                format!("measurement matrices for model `{}`", model.as_str()),
                &[q_expected, m, n],
                &[q, ma, n],
            ));
        }
        check_finite("measurements y", y.iter())?;
        check_finite("measurement matrices A", a.iter())?;
        if let Some(b) = &b {
            let (mb, k) = b.dim();
            if mb != m {
                return Err(Error::shape("subspace B", &[m, k], &[mb, k]));
            }
            if k == 0 || k > m {
                return Err(Error::param(
                    "subspace B",
                    format!("needs 1 ≤ k ≤ m = {m} columns, got {k}"),
                ));
            }
            check_finite("subspace B", b.iter())?;
        }
        if y.iter().all(|v| *v == T::zero()) {
            return Err(Error::param(
                "measurements y",
                "are all zero: nothing to calibrate from",
            ));
        }
        if b.is_none() && model != Model::Diverse {
            for i in 0..m {
                if (0..p).all(|l| y[[l, i]] == T::zero()) {
                    return Err(Error::param(
                        "measurements y",
                        format!(
                            "sensor {i} measured zero in every block: its gain is not identifiable"
                        ),
                    ));
                }
            }
        }
        let k = b.as_ref().map_or(m, |b| b.dim().1);
        let nx = if model == Model::Repeated { n } else { p * n };
        let unknowns = k + nx;
        if p * m + 1 < unknowns {
            return Err(Error::param(
                "measurements y",
                format!(
                    "model `{}` has {unknowns} unknowns ({k} calibration + {nx} signal), determined up to scale: \
                     needs at least {} measurements (p·m), got {} (p = {p}, m = {m})",
                    model.as_str(),
                    unknowns - 1,
                    p * m
                ),
            ));
        }
        Ok(Problem {
            op: SystemOperator::new(model, y, a, b),
        })
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.op.model
    }
    /// `(p, m, n, k)`: blocks, measurements per block, signal length, calibration unknowns.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        (self.op.p, self.op.m, self.op.n, self.op.k)
    }
    /// The stacked homogeneous operator `A₀` (matrix-free).
    pub fn operator(&self) -> &SystemOperator<T> {
        &self.op
    }
    /// The data `y`, `[p, m]`.
    pub fn y(&self) -> &Array2<T> {
        &self.op.y
    }
    /// The measurement matrices, `[p, m, n]` (`[1, m, n]` for `Snapshots`).
    pub fn matrices(&self) -> &Array3<T> {
        &self.op.a
    }
    /// The subspace `B`, if any.
    pub fn subspace(&self) -> Option<&Array2<T>> {
        self.op.b.as_ref()
    }
}

/// `d = 1/s` element-wise (diagonal models) or the filter `f = F⁻¹(1 / F g)` (`Diverse`).
/// Errors when an entry (a Fourier coefficient) is zero.
pub fn calibration_from_inverse<T: DenseScalar>(model: Model, s: &Array1<T>) -> Result<Array1<T>> {
    let tiny = <T as Scalar>::Real::min_positive_value();
    match model {
        Model::Diverse => {
            let c = Circ::<<T as Scalar>::Real>::new(s.len());
            let sh = c.dft(s.as_slice().unwrap());
            if sh.iter().any(|v| v.norm() <= tiny) {
                return Err(Error::Numerical(
                    "the inverse filter has a zero Fourier coefficient: the filter is not defined"
                        .into(),
                ));
            }
            let fh = sh.iter().map(|v| v.inv()).collect();
            let mut out = vec![T::zero(); s.len()];
            c.idft_into(fh, &mut out);
            Ok(Array1::from(out))
        }
        _ => {
            if s.iter().any(|v| v.modulus() <= tiny) {
                return Err(Error::Numerical(
                    "a calibration entry s_i is zero: the gain d_i = 1/s_i is not defined".into(),
                ));
            }
            Ok(s.mapv(|v| T::one() / v))
        }
    }
}

/// The inverse of [`calibration_from_inverse`]: `s = 1/d`, or `g = F⁻¹(1 / F f)`.
pub fn inverse_from_calibration<T: DenseScalar>(model: Model, d: &Array1<T>) -> Result<Array1<T>> {
    calibration_from_inverse(model, d)
}

/// `min_α ‖α est − truth‖ / ‖truth‖` over scalars `α` (complex for complex `T`): the relative
/// error up to the scale ambiguity. Computed at the minimiser `α = ⟨est, truth⟩ / ‖est‖²`
/// (not as `sqrt(1 − cos²)`, which loses accuracy for small errors). Returns 1 when `est` is
/// zero and 0 when both are zero.
pub fn scale_invariant_error<T: Scalar>(
    est: ArrayView1<T>,
    truth: ArrayView1<T>,
) -> <T as Scalar>::Real {
    let e = est.into_dyn();
    let t = truth.into_dyn();
    let ee = norm2_sq(e.view());
    let tt = norm2_sq(t.view());
    if tt == <T as Scalar>::Real::zero() {
        return if ee == <T as Scalar>::Real::zero() {
            <T as Scalar>::Real::zero()
        } else {
            <T as Scalar>::Real::one()
        };
    }
    if ee == <T as Scalar>::Real::zero() {
        return <T as Scalar>::Real::one();
    }
    let alpha = vdot(e.view(), t.view()) * T::from_real(<T as Scalar>::Real::one() / ee);
    let mut r = <T as Scalar>::Real::zero();
    ndarray::Zip::from(&e)
        .and(&t)
        .for_each(|&a, &b| r += (a * alpha - b).abs2());
    (r / tt).sqrt()
}

/// Recovery errors up to scale ([`scale_invariant_error`]) of a [`Solution`].
#[derive(Debug, Clone, Copy)]
pub struct Errors {
    /// Error of the calibration inverse `s`.
    pub s: f64,
    /// Error of the signals `x` (all blocks together).
    pub x: f64,
    /// Error of `z = (s, x)` with one common scale.
    pub joint: f64,
}

impl Errors {
    /// Compare `sol` with the truth `s_true` (`1/d`, or the inverse filter) and `x_true`
    /// (shape of `sol.x`).
    pub fn measure<T: DenseScalar>(
        sol: &Solution<T>,
        s_true: &Array1<T>,
        x_true: &Array2<T>,
    ) -> Self {
        let xs: Vec<T> = sol.x.iter().copied().collect();
        let xt: Vec<T> = x_true.iter().copied().collect();
        let zs: Vec<T> = sol.s.iter().copied().chain(xs.iter().copied()).collect();
        let zt: Vec<T> = s_true.iter().copied().chain(xt.iter().copied()).collect();
        let f = |a: &[T], b: &[T]| {
            if a.len() != b.len() {
                return f64::INFINITY;
            }
            scale_invariant_error(ArrayView1::from(a), ArrayView1::from(b)).to_f64_lossless()
        };
        Errors {
            s: f(sol.s.as_slice().unwrap(), s_true.as_slice().unwrap()),
            x: f(&xs, &xt),
            joint: f(&zs, &zt),
        }
    }
}
