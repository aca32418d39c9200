//! Starlet thresholding: the classical sparse denoiser of astronomical images
//! (Starck, Murtagh & Fadili, *Sparse Image and Signal Processing*, 2010, §6).
//!
//! `x̂ = R(T(W x))`: the [`Starlet`] transform `W`, a hard or soft threshold `T` of each wavelet
//! plane `w_j` at `k_j · σ · σ_j` (σ the noise standard deviation, `σ_j` the plane's noise
//! standard deviation for unit white noise, [`Starlet::noise_std`]), the coarse plane `c_J`
//! kept as is, and the sum reconstruction `R` (`x = c_J + Σ w_j`).

use crate::denoise::Denoiser;
use crate::error::{Error, Result};
use crate::op::{check_shape, LinearOperator, Starlet};
use crate::scalar::{real, Real};
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Ix2, Ix3};
use rayon::prelude::*;

/// Hard or soft thresholding of the wavelet coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Keep coefficients with `|w| > t`, zero the others (the astronomers' usual choice:
    /// unbiased on the kept coefficients).
    Hard,
    /// `sign(w) · max(|w| − t, 0)` (the prox of `t‖·‖₁`; biased but continuous).
    Soft,
}

/// Denoiser of `[rows, cols]` images by thresholding of the starlet coefficients.
///
/// ```
/// use sparseinv_solvers::denoise::Denoiser;
/// use sparseinv_solvers::starlet_denoise::StarletDenoiser;
/// use sparseinv_solvers::testing::randn;
/// let d = StarletDenoiser::new(4).unwrap();
/// let noisy = randn::<f64>(&[64, 64], 3); // pure noise, σ = 1
/// let clean = d.denoise(noisy.view(), 1.0).unwrap();
/// // Almost all of the noise is removed.
/// let e: f64 = clean.iter().map(|v| v * v).sum::<f64>() / 4096.0;
/// assert!(e < 0.1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StarletDenoiser {
    /// Number of wavelet scales `J ≥ 1`.
    pub scales: usize,
    /// Threshold in units of each plane's noise level (default 3).
    pub k: f64,
    /// Threshold of the finest scale `w_1` (default `Some(4.0)`; `None` uses `k`): the finest
    /// scale holds mostly noise, a higher threshold removes more false detections.
    pub k_finest: Option<f64>,
    /// Hard (default) or soft thresholding.
    pub threshold: Threshold,
}

impl StarletDenoiser {
    /// Hard thresholding at `3σ` (`4σ` on the finest scale) with `scales` scales.
    /// Errors when `scales` is 0 or above 30.
    pub fn new(scales: usize) -> Result<Self> {
        let d = StarletDenoiser {
            scales,
            k: 3.0,
            k_finest: Some(4.0),
            threshold: Threshold::Hard,
        };
        d.validate()?;
        Ok(d)
    }

    /// Check the parameters (called by [`Denoiser::denoise_into`] too).
    pub fn validate(&self) -> Result<()> {
        if self.scales == 0 || self.scales > 30 {
            return Err(Error::param("scales", "must be in 1..=30"));
        }
        for (name, v) in [("k", Some(self.k)), ("k_finest", self.k_finest)] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(Error::param(
                        name,
                        format!("must be finite and ≥ 0, got {v}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<T: Real> Denoiser<T> for StarletDenoiser {
    /// `x` must be a 2-D image; `sigma ≥ 0` is the noise standard deviation (σ = 0 returns
    /// `x` up to round-off).
    fn denoise_into(&self, x: ArrayViewD<T>, sigma: T, mut out: ArrayViewMutD<T>) -> Result<()> {
        self.validate()?;
        if x.ndim() != 2 {
            return Err(Error::Unsupported(format!(
                "StarletDenoiser needs a 2-D image, got shape {:?}",
                x.shape()
            )));
        }
        check_shape("StarletDenoiser output", x.shape(), out.shape())?;
        if !(sigma.is_finite() && sigma >= T::zero()) {
            return Err(Error::param(
                "sigma",
                format!("must be finite and ≥ 0, got {sigma}"),
            ));
        }
        crate::error::check_finite("StarletDenoiser input", x.iter())?;
        let x2 = x.into_dimensionality::<Ix2>().expect("checked 2-D");
        let st = Starlet::<T>::new([x2.nrows(), x2.ncols()], self.scales)?;
        let mut w = st
            .apply(x2.into_dyn())?
            .into_dimensionality::<Ix3>()
            .expect("3-D");
        let nstd = st.noise_std();
        for (j, mut plane) in w.axis_iter_mut(Axis(0)).take(self.scales).enumerate() {
            let k = if j == 0 {
                self.k_finest.unwrap_or(self.k)
            } else {
                self.k
            };
            let t = real::<T>(k) * sigma * nstd[j];
            let sl = plane.as_slice_mut().expect("contiguous plane");
            match self.threshold {
                Threshold::Hard => sl.par_iter_mut().for_each(|v| {
                    if v.abs() <= t {
                        *v = T::zero();
                    }
                }),
                Threshold::Soft => sl.par_iter_mut().for_each(|v| {
                    let a = v.abs() - t;
                    *v = if a > T::zero() {
                        a.copysign(*v)
                    } else {
                        T::zero()
                    };
                }),
            }
        }
        let rec = st.reconstruct(w.into_dyn().view())?;
        out.assign(&rec);
        Ok(())
    }
}
