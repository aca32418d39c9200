//! Seeded random self-calibration instances with their ground truth, for tests, examples,
//! benchmarks and the CLI's `selfcal --synthetic` demonstration: [`synthetic`] draws an
//! [`Instance`] from an [`InstanceSpec`].
//!
//! These generators are part of the public API because the paper's experiments (and this
//! crate's recovery tests) are defined on them; they are not needed to solve a real problem.
//!
//! ```
//! use sparseinv_solvers::selfcal::synthetic::{synthetic, InstanceSpec};
//! use sparseinv_solvers::selfcal::Model;
//! let inst = synthetic::<f64>(&InstanceSpec::new(Model::Snapshots, 12, 3, 6), 7).unwrap();
//! assert_eq!(inst.problem.dims(), (6, 12, 3, 12));
//! assert_eq!(inst.x.dim(), (6, 3));
//! ```

use super::problem::{calibration_from_inverse, Model, Problem};
use super::system::Circ;
use crate::dense::DenseScalar;
use crate::error::{Error, Result};
use crate::linalg::norm2_sq;
use crate::scalar::{real, Real, Scalar};
use ndarray::{Array1, Array2};
use num_traits::Float;
use rand::{Rng, SeedableRng};

/// Description of a random test instance for [`synthetic`].
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// The model.
    pub model: Model,
    /// Measurements per block.
    pub m: usize,
    /// Signal length.
    pub n: usize,
    /// Number of blocks.
    pub p: usize,
    /// Subspace dimension `k` for `s = B h` (`None`: no subspace).
    pub k: Option<usize>,
    /// Signal-to-noise ratio `20 log₁₀(‖y_clean‖/‖e‖)` in dB (`None`: noiseless).
    pub snr_db: Option<f64>,
}

impl InstanceSpec {
    /// Noiseless instance without subspace.
    pub fn new(model: Model, m: usize, n: usize, p: usize) -> Self {
        InstanceSpec {
            model,
            m,
            n,
            p,
            k: None,
            snr_db: None,
        }
    }
}

/// A random instance with its ground truth.
pub struct Instance<T: DenseScalar> {
    /// The problem built from the noisy data.
    pub problem: Problem<T>,
    /// True calibration `d` (gains, or the filter `f` for `Diverse`).
    pub d: Array1<T>,
    /// True calibration inverse `s` (`1/d`, or the inverse filter `g`).
    pub s: Array1<T>,
    /// True subspace coefficients (when a subspace is used).
    pub h: Option<Array1<T>>,
    /// True signals, `[1, n]` (`Repeated`) or `[p, n]`.
    pub x: Array2<T>,
}

/// Draw a random instance (seeded): Gaussian `A_l`/`C_l` (i.i.d. `N(0,1)`, complex normal for
/// complex `T`) and signals; gains `d_i = (1 + u_i/2) e^{iφ_i}` with `u_i ~ U[−1, 1]` and, for
/// complex `T`, `φ_i ~ U[−π, π)`; the filter of `Diverse` is `f_j = r_j 0.4^j` for
/// `j < min(m, 8)` with `r_j ~ U[0.9, 1.1]` (and a random phase for `j ≥ 1` when complex): its
/// DFT has no zeros since `Σ_{j≥1} |f_j| ≤ 0.74 < 0.9 ≤ f_0`. With a subspace, `B` holds the `k` lowest-frequency
/// real cosines `cos(2π j i/m)` (`j = 0..k`), `h = (1, 0.3 h̃)` with `h̃` normal and then scaled
/// so that `min |s_i| ≥ 0.5`, and `d = 1/s`; for `Diverse` the subspace is the first `k` time
/// taps (an FIR inverse filter `g`, scaled so that `Σ_{j≥1} |g_j| ≤ 0.5`), and `f` its inverse.
pub fn synthetic<T: DenseScalar>(spec: &InstanceSpec, seed: u64) -> Result<Instance<T>> {
    let (m, n, p) = (spec.m, spec.n, spec.p);
    if m == 0 || n == 0 || p == 0 {
        return Err(Error::param("spec", "m, n and p must be positive"));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x05e1_fca1);
    let q = if spec.model == Model::Snapshots { 1 } else { p };
    let a = crate::testing::randn::<T>(&[q, m, n], seed.wrapping_mul(3).wrapping_add(1))
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let xr = if spec.model == Model::Repeated { 1 } else { p };
    let x = crate::testing::randn::<T>(&[xr, n], seed.wrapping_mul(3).wrapping_add(2))
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let mut bmat = None;
    let mut htrue = None;
    let (d, s) = match (spec.k, spec.model) {
        (Some(k), _) => {
            if k == 0 || k > m {
                return Err(Error::param("k", format!("needs 1 ≤ k ≤ m = {m}")));
            }
            let b = if spec.model == Model::Diverse {
                // inverse filter supported on the first k taps (an FIR inverse filter)
                Array2::from_shape_fn((m, k), |(i, j)| if i == j { T::one() } else { T::zero() })
            } else {
                Array2::from_shape_fn((m, k), |(i, j)| {
                    T::from_f64((2.0 * std::f64::consts::PI * (j * i) as f64 / m as f64).cos())
                })
            };
            let ht = crate::testing::randn::<T>(&[k], seed.wrapping_mul(3).wrapping_add(3));
            let mut h = Array1::from_shape_fn(k, |j| {
                if j == 0 {
                    T::one()
                } else {
                    ht[j].scale(real(0.3))
                }
            });
            // keep |s_i| ≥ 0.5 (diagonal models), or Σ_{j≥1} |g_j| ≤ 0.5 (FIR inverse filter,
            // so that its DFT has no zeros): shrink the variation if needed
            loop {
                let ok = if spec.model == Model::Diverse {
                    h.iter()
                        .skip(1)
                        .map(|v| v.modulus().to_f64_lossless())
                        .sum::<f64>()
                        <= 0.5
                } else {
                    b.dot(&h).iter().all(|v| v.modulus() >= real(0.5))
                };
                if ok {
                    break;
                }
                for j in 1..k {
                    h[j] = h[j].scale(real(0.5));
                }
            }
            let s = b.dot(&h);
            let d = calibration_from_inverse(spec.model, &s)?;
            bmat = Some(b);
            htrue = Some(h);
            (d, s)
        }
        (None, Model::Diverse) => {
            let len = m.min(8);
            let mut f = Array1::<T>::zeros(m);
            for j in 0..len {
                let r: f64 = 1.0 + 0.1 * rng.random_range(-1.0..1.0);
                f[j] = T::from_f64(r * 0.4f64.powi(j as i32));
                if T::IS_COMPLEX && j > 0 {
                    let ph: f64 = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                    f[j] *= T::from_parts(real(ph.cos()), real(ph.sin()));
                }
            }
            let g = calibration_from_inverse(Model::Diverse, &f)?;
            (f, g)
        }
        (None, _) => {
            let d = Array1::from_shape_fn(m, |_| {
                let u: f64 = rng.random_range(-1.0..1.0);
                let mag = 1.0 + 0.5 * u;
                if T::IS_COMPLEX {
                    let ph: f64 = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                    T::from_parts(real(mag * ph.cos()), real(mag * ph.sin()))
                } else {
                    T::from_f64(mag)
                }
            });
            let s = d.mapv(|v| T::one() / v);
            (d, s)
        }
    };
    // clean data
    let mut y = Array2::<T>::zeros((p, m));
    let circ = Circ::<<T as Scalar>::Real>::new(m);
    for l in 0..p {
        let al = a.index_axis(ndarray::Axis(0), if q == 1 { 0 } else { l });
        let xl = x.row(if xr == 1 { 0 } else { l });
        let u = al.dot(&xl);
        match spec.model {
            Model::Diverse => {
                let fh = circ.dft(d.as_slice().unwrap());
                let uh = circ.dft(u.as_slice().unwrap());
                let prod = fh.iter().zip(&uh).map(|(a, b)| a * b).collect();
                let mut out = vec![T::zero(); m];
                circ.idft_into(prod, &mut out);
                y.row_mut(l).assign(&Array1::from(out));
            }
            _ => {
                for i in 0..m {
                    y[[l, i]] = d[i] * u[i];
                }
            }
        }
    }
    if let Some(snr) = spec.snr_db {
        if !snr.is_finite() {
            return Err(Error::param("snr_db", "must be finite"));
        }
        let e = crate::testing::randn::<T>(&[p, m], seed.wrapping_mul(3).wrapping_add(4));
        let ny = norm2_sq(y.view().into_dyn()).sqrt().to_f64_lossless();
        let ne = norm2_sq(e.view()).sqrt().to_f64_lossless();
        let sc = ny / ne / 10f64.powf(snr / 20.0);
        let e = e.into_dimensionality::<ndarray::Ix2>().unwrap();
        y = y + e.mapv(|v| v.scale(real(sc)));
    }
    let problem = Problem::new(spec.model, y, a, bmat)?;
    Ok(Instance {
        problem,
        d,
        s,
        h: htrue,
        x,
    })
}
