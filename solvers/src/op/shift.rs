//! Sub-pixel shift of an image by Fourier phase ramps (the registration between the grids of
//! different bands in joint multiband deconvolution).

use super::LinearOperator;
use crate::error::{Error, Result};
use crate::fft::complex_plan;
use crate::scalar::{real, Real};
use ndarray::{ArrayViewD, ArrayViewMutD, Axis};
use num_complex::Complex;
use rustfft::Fft;
use std::sync::Arc;

/// Circular shift of an n-d real array by real (sub-pixel) amounts `s = (s₀, s₁, …)`, one per
/// axis, applied axis by axis as a Fourier phase ramp:
///
/// ```text
/// S_a x = Re F⁻¹ [ m_k · F x ]  along axis a (length n),
/// m_k = e^{−2πi k s_a / n}  for |k| < n/2 (k taken in (−n/2, n/2)),
/// m_{n/2} = cos(π s_a)      at the Nyquist frequency of an even n,
/// S = S_{d−1} ∘ … ∘ S₁ ∘ S₀.
/// ```
///
/// For integer `sₐ` this is exactly the circular shift `y[i] = x[i − s]` (content moves
/// towards higher indices for `s > 0`); for fractional shifts it is the band-limited
/// (sinc) interpolation of the periodic signal. Each axis operator is real, so the Nyquist term
/// is the real part of the complex ramp, and its adjoint is the same operator with `−sₐ`; the
/// adjoint of `S` applies the axes in reverse order with the opposite shifts, so
/// `⟨S x, y⟩ = ⟨x, Sᴴ y⟩` holds to rounding. `S` is unitary except at an even length's
/// Nyquist frequency, where it scales by `|cos(π sₐ)|` (a half-pixel shift loses that one
/// frequency, which cannot be shifted by half a sample and stay real). Cost: one complex FFT
/// pair per lane and axis with a non-zero shift.
///
/// The image is periodic: pad it (or mask its border) when content near one edge must not wrap
/// around to the other.
///
/// ```
/// use sparseinv_solvers::op::{FourierShift, LinearOperator};
/// use ndarray::array;
/// let s = FourierShift::<f64>::new(&[1, 4], &[0.0, 1.0]).unwrap();
/// let y = s.apply(array![[1.0, 2.0, 3.0, 4.0]].into_dyn().view()).unwrap();
/// let want = array![[4.0, 1.0, 2.0, 3.0]].into_dyn();
/// assert!((&y - &want).iter().all(|d| d.abs() < 1e-12));
/// ```
pub struct FourierShift<R: Real> {
    shape: Vec<usize>,
    shifts: Vec<f64>,
    /// Per axis: the forward and inverse plans and the phase ramp (None: no shift on it).
    axes: Vec<Option<AxisShift<R>>>,
}

struct AxisShift<R: Real> {
    fwd: Arc<dyn Fft<R>>,
    inv: Arc<dyn Fft<R>>,
    ramp: Vec<Complex<R>>,
}

impl<R: Real> std::fmt::Debug for FourierShift<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FourierShift")
            .field("shape", &self.shape)
            .field("shifts", &self.shifts)
            .finish()
    }
}

/// The phase ramp of a shift by `s` samples on a length-`n` axis (including the `1/n` of the
/// inverse FFT); `conj` gives the adjoint's (shift by `−s`).
fn ramp<R: Real>(n: usize, s: f64, conj: bool) -> Vec<Complex<R>> {
    let sign = if conj { 1.0 } else { -1.0 };
    (0..n)
        .map(|k| {
            let c = if 2 * k == n {
                Complex::new((std::f64::consts::PI * s).cos(), 0.0)
            } else {
                let kk = if 2 * k < n {
                    k as f64
                } else {
                    k as f64 - n as f64
                };
                let th = sign * 2.0 * std::f64::consts::PI * kk * s / n as f64;
                Complex::new(th.cos(), th.sin())
            };
            Complex::new(real::<R>(c.re / n as f64), real::<R>(c.im / n as f64))
        })
        .collect()
}

impl<R: Real> FourierShift<R> {
    /// A shift of arrays of `shape` by `shifts` samples per axis (same length as `shape`).
    /// Errors on a length mismatch, an empty axis or a non-finite shift.
    pub fn new(shape: &[usize], shifts: &[f64]) -> Result<Self> {
        if shape.len() != shifts.len() {
            return Err(Error::param(
                "shifts",
                format!(
                    "{} shifts for a {}-d shape {:?}",
                    shifts.len(),
                    shape.len(),
                    shape
                ),
            ));
        }
        if shape.contains(&0) {
            return Err(Error::Empty {
                what: format!("FourierShift shape {shape:?}"),
            });
        }
        if let Some(s) = shifts.iter().find(|s| !s.is_finite()) {
            return Err(Error::param("shifts", format!("{s} is not finite")));
        }
        let axes = shape
            .iter()
            .zip(shifts)
            .map(|(&n, &s)| {
                (s != 0.0).then(|| AxisShift {
                    fwd: complex_plan::<R>(n, false),
                    inv: complex_plan::<R>(n, true),
                    ramp: ramp::<R>(n, s, false),
                })
            })
            .collect();
        Ok(FourierShift {
            shape: shape.to_vec(),
            shifts: shifts.to_vec(),
            axes,
        })
    }

    /// The shifts, in samples per axis.
    pub fn shifts(&self) -> &[f64] {
        &self.shifts
    }

    /// Shift `x` in place along every axis (forward order, or reverse order with conjugate
    /// ramps for the adjoint).
    fn run(&self, mut x: ArrayViewMutD<R>, adjoint: bool) {
        let order: Vec<usize> = if adjoint {
            (0..self.shape.len()).rev().collect()
        } else {
            (0..self.shape.len()).collect()
        };
        for a in order {
            let Some(ax) = &self.axes[a] else { continue };
            let n = self.shape[a];
            let conj_ramp: Vec<Complex<R>>;
            let ramp = if adjoint {
                conj_ramp = ax.ramp.iter().map(|c| c.conj()).collect();
                &conj_ramp
            } else {
                &ax.ramp
            };
            let mut buf = vec![Complex::new(R::zero(), R::zero()); n];
            let mut scratch = vec![
                Complex::new(R::zero(), R::zero());
                ax.fwd
                    .get_inplace_scratch_len()
                    .max(ax.inv.get_inplace_scratch_len())
            ];
            for mut lane in x.lanes_mut(Axis(a)) {
                for (b, &v) in buf.iter_mut().zip(lane.iter()) {
                    *b = Complex::new(v, R::zero());
                }
                ax.fwd.process_with_scratch(&mut buf, &mut scratch);
                for (b, r) in buf.iter_mut().zip(ramp) {
                    *b *= *r;
                }
                ax.inv.process_with_scratch(&mut buf, &mut scratch);
                for (v, b) in lane.iter_mut().zip(&buf) {
                    *v = b.re;
                }
            }
        }
    }
}

impl<R: Real> LinearOperator<R> for FourierShift<R> {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.shape
    }
    fn apply_into(&self, x: ArrayViewD<R>, mut y: ArrayViewMutD<R>) {
        y.assign(&x);
        self.run(y, false);
    }
    fn adjoint_into(&self, y: ArrayViewD<R>, mut x: ArrayViewMutD<R>) {
        x.assign(&y);
        self.run(x, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_adjoint;
    use ndarray::{Array2, ArrayD, IxDyn};

    #[test]
    fn integer_shifts_are_circular_shifts() {
        let x = Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f64 * 0.37 - 2.0).into_dyn();
        for (s0, s1) in [(1.0, 0.0), (0.0, 2.0), (-2.0, 3.0), (7.0, -6.0)] {
            let op = FourierShift::<f64>::new(&[6, 5], &[s0, s1]).unwrap();
            let y = op.apply(x.view()).unwrap();
            for i in 0..6 {
                for j in 0..5 {
                    let si = (i as i64 - s0 as i64).rem_euclid(6) as usize;
                    let sj = (j as i64 - s1 as i64).rem_euclid(5) as usize;
                    assert!((y[[i, j]] - x[[si, sj]]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn fractional_shift_of_a_band_limited_signal_equals_the_shifted_function() {
        // a periodic trigonometric polynomial below Nyquist is shifted exactly
        let n = 32;
        let f = |t: f64| {
            let w = 2.0 * std::f64::consts::PI / n as f64;
            1.0 + (3.0 * w * t).sin() + 0.5 * (7.0 * w * t + 0.3).cos()
        };
        let x = ArrayD::from_shape_fn(IxDyn(&[n]), |ix| f(ix[0] as f64));
        let s = 0.37;
        let y = FourierShift::<f64>::new(&[n], &[s])
            .unwrap()
            .apply(x.view())
            .unwrap();
        for i in 0..n {
            assert!((y[[i]] - f(i as f64 - s)).abs() < 1e-12);
        }
    }

    #[test]
    fn adjoint_dot_test_f64_f32_odd_and_even_lengths() {
        for shape in [[8usize, 6], [7, 5], [9, 8]] {
            let op = FourierShift::<f64>::new(&shape, &[0.5, -1.3]).unwrap();
            assert_adjoint(&op, 1e-12);
            let op = FourierShift::<f32>::new(&shape, &[0.25, 2.7]).unwrap();
            assert_adjoint(&op, 1e-5);
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(FourierShift::<f64>::new(&[4, 4], &[0.5]).is_err());
        assert!(FourierShift::<f64>::new(&[0, 4], &[0.5, 0.0]).is_err());
        assert!(FourierShift::<f64>::new(&[4, 4], &[f64::NAN, 0.0]).is_err());
    }
}
