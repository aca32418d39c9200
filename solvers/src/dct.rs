//! Two-dimensional discrete cosine transforms (type II and its inverse) by real FFTs, and
//! the filters they diagonalise.
//!
//! The (unnormalised) DCT-II of a line `x` of length `N` is
//!
//! ```text
//! X[k] = Σ_{n<N} x[n] cos(π k (2n + 1) / (2N)),   k = 0 … N−1
//! ```
//!
//! (half of scipy's unnormalised `dct(x, type=2)`), and the 2-D transform applies it along
//! both axes. It is the transform of the half-sample symmetric extension
//! `… x₁ x₀ | x₀ x₁ … x_{N−1} | x_{N−1} …` ([`crate::boundary::reflect_index`], scipy.ndimage
//! `mode='reflect'`): every operator on `N`-sample images that commutes with that extension —
//! a convolution with reflective borders by a kernel symmetric about its centre, its normal
//! operator, their inverses — is diagonal in it (Martucci, "Symmetric convolution and the
//! discrete sine and cosine transforms", IEEE Trans. Signal Process. 42, 1994; Ng, Chan & Tang,
//! "A fast algorithm for deblurring models with Neumann boundary conditions", SIAM J. Sci.
//! Comput. 21, 1999).
//!
//! Each line transform is one real FFT of the same length `N` (Makhoul, "A fast cosine
//! transform in one and multiple dimensions", IEEE Trans. ASSP 28, 1980): the even samples in
//! order followed by the odd ones reversed, `v = (x₀, x₂, x₄, …, x₅, x₃, x₁)`, transformed,
//! and `X[k] = Re(e^{−iπk/(2N)} V[k])`, `X[N−k] = −Im(e^{−iπk/(2N)} V[k])`; the inverse
//! (a DCT-III) runs the same steps backwards. A 2-D filter `C⁻¹ diag(g) C` therefore costs
//! `2 N₀` real FFTs of length `N₁` and `2 N₁` of length `N₀` — the work of one real 2-D FFT
//! pair on the image's own grid, where the equivalent filter on the mirrored grid
//! (`2N₀ × 2N₁`) costs four times as much.

use crate::error::{Error, Result};
use crate::fft;
use crate::scalar::{Real, Scalar};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex;
use num_traits::Zero;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealToComplex};
use std::sync::{Arc, Mutex};

/// Lines per parallel task.
const LINE_BLOCK: usize = 16;
/// Square blocks of the transposition (elements per side).
const TRANSPOSE_BLOCK: usize = 32;
/// Work buffers retained between calls.
const POOL_MAX: usize = 2;

/// Where the DCT of a line puts sample `j` before its FFT: the even samples in order, then
/// the odd ones reversed.
#[inline]
fn perm(j: usize, n: usize) -> usize {
    if j % 2 == 0 {
        j / 2
    } else {
        n - 1 - j / 2
    }
}

/// The DCT-II / DCT-III of lines of one length.
struct Line<R: Real> {
    n: usize,
    fwd: Arc<dyn RealToComplex<R>>,
    inv: Arc<dyn ComplexToReal<R>>,
    /// `e^{−iπk/(2N)}`, `k = 0 … N/2`.
    tw: Vec<Complex<R>>,
}

/// Per-task scratch of one line transform.
struct LineBuf<R> {
    v: Vec<R>,
    spec: Vec<Complex<R>>,
    scratch: Vec<Complex<R>>,
}

impl<R: Real> Line<R> {
    fn new(n: usize) -> Self {
        let pi = R::PI();
        let two_n = crate::scalar::real::<R>((2 * n) as f64);
        let tw = (0..=n / 2)
            .map(|k| {
                let a = -pi * crate::scalar::real::<R>(k as f64) / two_n;
                Complex::new(a.cos(), a.sin())
            })
            .collect();
        Line {
            n,
            fwd: fft::real_forward_plan(n),
            inv: fft::real_inverse_plan(n),
            tw,
        }
    }

    fn buf(&self) -> LineBuf<R> {
        let s = self.fwd.get_scratch_len().max(self.inv.get_scratch_len());
        LineBuf {
            v: vec![R::zero(); self.n],
            spec: vec![Complex::zero(); self.n / 2 + 1],
            scratch: vec![Complex::zero(); s],
        }
    }

    /// `out = DCT-II(x)` for the line whose samples are already permuted into `b.v`
    /// ([`perm`]); `b.v` is overwritten.
    fn forward_permuted(&self, b: &mut LineBuf<R>, out: &mut [R]) {
        let n = self.n;
        self.fwd
            .process_with_scratch(&mut b.v, &mut b.spec, &mut b.scratch)
            .expect("real FFT buffer sizes");
        out[0] = b.spec[0].re;
        for k in 1..=n / 2 {
            let c = self.tw[k] * b.spec[k];
            out[k] = c.re;
            if 2 * k != n {
                out[n - k] = -c.im;
            }
        }
    }

    /// `b.v = N · DCT-III-inverse(x)` in permuted order: the line whose DCT-II is `x`, times
    /// `N`, with sample `j` at `b.v[perm(j)]`.
    fn inverse_permuted(&self, x: &[R], b: &mut LineBuf<R>) {
        let n = self.n;
        b.spec[0] = Complex::new(x[0], R::zero());
        for k in 1..=n / 2 {
            let mut c = self.tw[k].conj() * Complex::new(x[k], -x[n - k]);
            if 2 * k == n {
                // real in exact arithmetic (the Nyquist bin of a real line)
                c.im = R::zero();
            }
            b.spec[k] = c;
        }
        self.inv
            .process_with_scratch(&mut b.spec, &mut b.v, &mut b.scratch)
            .expect("real FFT buffer sizes");
    }
}

/// The two line plans of a 2-D transform.
struct Plans<R: Real> {
    rows: Line<R>,
    cols: Line<R>,
}

/// `dst[j, i] = src[i, j]` for a `rows × cols` row-major `src` (blocked, in parallel).
fn transpose<R: Real>(src: &[R], rows: usize, cols: usize, dst: &mut [R]) {
    let b = TRANSPOSE_BLOCK;
    dst.par_chunks_mut(rows * b)
        .enumerate()
        .for_each(|(cb, chunk)| {
            let j0 = cb * b;
            let nj = chunk.len() / rows;
            for i0 in (0..rows).step_by(b) {
                let ni = b.min(rows - i0);
                for dj in 0..nj {
                    let d = &mut chunk[dj * rows + i0..dj * rows + i0 + ni];
                    for (di, o) in d.iter_mut().enumerate() {
                        *o = src[(i0 + di) * cols + j0 + dj];
                    }
                }
            }
        });
}

impl<R: Real> Plans<R> {
    fn new(shape: [usize; 2]) -> Self {
        Plans {
            rows: Line::new(shape[1]),
            cols: Line::new(shape[0]),
        }
    }

    /// Rows of `data` (`n0 × n1`) ← the DCT-II of the rows of `part(x)`.
    fn rows_forward<T: Scalar<Real = R>>(
        &self,
        x: ArrayView2<T>,
        part: fn(T) -> R,
        data: &mut [R],
    ) {
        let line = &self.rows;
        let n1 = line.n;
        data.par_chunks_mut(n1 * LINE_BLOCK)
            .enumerate()
            .for_each_init(
                || line.buf(),
                |b, (ci, chunk)| {
                    for (k, out) in chunk.chunks_mut(n1).enumerate() {
                        let row = x.row(ci * LINE_BLOCK + k);
                        for (j, &a) in row.iter().enumerate() {
                            b.v[perm(j, n1)] = part(a);
                        }
                        line.forward_permuted(b, out);
                    }
                },
            );
    }

    /// Every line of `t` (`n1 × n0`, the columns of the image) ← `DCT-III(g · DCT-II(line))`
    /// times `n0`, with `g` the matching line of `gain_t` (or 1 when `None`).
    fn cols_filter(&self, t: &mut [R], gain_t: Option<&[R]>, forward: bool, inverse: bool) {
        let line = &self.cols;
        let n0 = line.n;
        t.par_chunks_mut(n0 * LINE_BLOCK).enumerate().for_each_init(
            || line.buf(),
            |b, (ci, chunk)| {
                for (k, col) in chunk.chunks_mut(n0).enumerate() {
                    if forward {
                        for (j, &a) in col.iter().enumerate() {
                            b.v[perm(j, n0)] = a;
                        }
                        line.forward_permuted(b, col);
                    }
                    if let Some(g) = gain_t {
                        let v = ci * LINE_BLOCK + k;
                        for (c, &g) in col.iter_mut().zip(&g[v * n0..(v + 1) * n0]) {
                            *c *= g;
                        }
                    }
                    if inverse {
                        line.inverse_permuted(col, b);
                        for (j, c) in col.iter_mut().enumerate() {
                            *c = b.v[perm(j, n0)];
                        }
                    }
                }
            },
        );
    }

    /// `out` rows ← `write(out, DCT-III(row of data) · n1)` (contiguous `out`).
    fn rows_inverse<T: Scalar<Real = R>>(&self, data: &[R], out: &mut [T], write: fn(&mut T, R)) {
        let line = &self.rows;
        let n1 = line.n;
        out.par_chunks_mut(n1 * LINE_BLOCK)
            .enumerate()
            .for_each_init(
                || line.buf(),
                |b, (ci, chunk)| {
                    for (k, orow) in chunk.chunks_mut(n1).enumerate() {
                        let i = ci * LINE_BLOCK + k;
                        line.inverse_permuted(&data[i * n1..(i + 1) * n1], b);
                        for (j, o) in orow.iter_mut().enumerate() {
                            write(o, b.v[perm(j, n1)]);
                        }
                    }
                },
            );
    }
}

/// Work buffers of one call: the image-shaped and the transposed coefficients.
struct Work<R> {
    data: Vec<R>,
    t: Vec<R>,
}

/// The filter `y = C⁻¹ diag(g) C x` with `C` the 2-D DCT-II ([module docs](self)) on
/// `n₀ × n₁` images and a fixed real gain `g[u, v]` (`u < n₀` the row frequency, `v < n₁` the
/// column frequency); complex images are filtered part by part.
///
/// One application is two 2-D DCTs on the image's grid (`2(n₀ + n₁)` real FFT lines) and
/// two transpositions; the coefficient buffers are pooled, so repeated applications allocate
/// only per-task line scratch. Lines run in parallel on the rayon pool.
///
/// With `g = 1/(μ + ρ)` for `μ` the DCT eigenvalues of `AᴴA`, it is `(AᴴA + ρI)⁻¹` for every
/// `A` the DCT diagonalises (e.g. a reflective-boundary convolution by a kernel symmetric
/// about its centre: [`crate::pnp::CirculantNormalInverse::mirrored`]).
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::dct::{dct2, DctFilter2};
/// let x = Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f64);
/// // a gain of 1 is the identity; a gain that keeps only (0, 0) leaves the mean
/// let id = DctFilter2::new(Array2::ones((6, 5)).view()).unwrap();
/// let mut y = Array2::zeros((6, 5));
/// id.apply_into(x.view(), y.view_mut()).unwrap();
/// assert!((&y - &x).iter().all(|d| d.abs() < 1e-12));
/// let mean = DctFilter2::new(Array2::from_shape_fn((6, 5), |(u, v)| (u + v == 0) as u8 as f64).view()).unwrap();
/// mean.apply_into(x.view(), y.view_mut()).unwrap();
/// assert!(y.iter().all(|v| (v - 14.5).abs() < 1e-12));
/// // the coefficient X[0, 0] is the sum
/// assert!((dct2(x.view())[[0, 0]] - 435.0).abs() < 1e-9);
/// ```
pub struct DctFilter2<R: Real> {
    shape: [usize; 2],
    plans: Plans<R>,
    /// `g[u, v] / (n₀ n₁)` stored transposed (`[v][u]`), the layout of the column pass.
    gain_t: Vec<R>,
    pool: Mutex<Vec<Work<R>>>,
}

impl<R: Real> std::fmt::Debug for DctFilter2<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DctFilter2")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl<R: Real> DctFilter2<R> {
    /// The filter with gain `g` (shape `[n₀, n₁]`, the image shape). Errors on an empty or
    /// non-finite gain.
    pub fn new(gain: ArrayView2<R>) -> Result<Self> {
        let (n0, n1) = gain.dim();
        if n0 == 0 || n1 == 0 {
            return Err(Error::Empty {
                what: "DCT filter gain".into(),
            });
        }
        crate::error::check_finite("DCT filter gain", gain.iter())?;
        let scale = R::one() / crate::scalar::real::<R>((n0 * n1) as f64);
        let gain_t = gain.t().iter().map(|&g| g * scale).collect();
        Ok(DctFilter2 {
            shape: [n0, n1],
            plans: Plans::new([n0, n1]),
            gain_t,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The image shape `[n₀, n₁]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    fn take_work(&self) -> Work<R> {
        let got = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let n = self.shape[0] * self.shape[1];
        got.unwrap_or_else(|| Work {
            data: crate::alloc::zeroed_vec(n),
            t: crate::alloc::zeroed_vec(n),
        })
    }

    fn put_work(&self, w: Work<R>) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(w);
        }
    }

    /// `y = C⁻¹ diag(g) C x`. `x` and `y` may have any memory layout. Errors when either
    /// shape is not the filter's.
    pub fn apply_into<T: Scalar<Real = R>>(
        &self,
        x: ArrayView2<T>,
        mut y: ArrayViewMut2<T>,
    ) -> Result<()> {
        crate::op::check_shape("DCT filter input", &self.shape, x.shape())?;
        crate::op::check_shape("DCT filter output", &self.shape, y.shape())?;
        match y.as_slice_mut() {
            Some(out) => self.filter(x, out),
            None => {
                let mut tmp = Array2::<T>::zeros(y.dim());
                self.filter(x, tmp.as_slice_mut().expect("fresh array is contiguous"));
                y.assign(&tmp);
            }
        }
        Ok(())
    }

    fn filter<T: Scalar<Real = R>>(&self, x: ArrayView2<T>, out: &mut [T]) {
        let mut w = self.take_work();
        self.plane(x, T::re, out, |o, v| *o = T::from_real(v), &mut w);
        if T::IS_COMPLEX {
            self.plane(
                x,
                T::im,
                out,
                |o, v| *o += T::from_parts(R::zero(), v),
                &mut w,
            );
        }
        self.put_work(w);
    }

    /// One real plane: `write(out, C⁻¹ diag(g) C part(x))`.
    fn plane<T: Scalar<Real = R>>(
        &self,
        x: ArrayView2<T>,
        part: fn(T) -> R,
        out: &mut [T],
        write: fn(&mut T, R),
        w: &mut Work<R>,
    ) {
        let [n0, n1] = self.shape;
        self.plans.rows_forward(x, part, &mut w.data);
        transpose(&w.data, n0, n1, &mut w.t);
        self.plans
            .cols_filter(&mut w.t, Some(&self.gain_t), true, true);
        transpose(&w.t, n1, n0, &mut w.data);
        self.plans.rows_inverse(&w.data, out, write);
    }
}

/// The unnormalised 2-D DCT-II of a real image,
/// `X[u, v] = Σ_{i,j} x[i, j] cos(πu(2i+1)/(2n₀)) cos(πv(2j+1)/(2n₁))` (a quarter of scipy's
/// `dctn(x, type=2)`), by the fast algorithm of the [module docs](self).
///
/// ```
/// use ndarray::array;
/// use sparseinv_solvers::dct::{dct2, idct2};
/// let x = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 7.0]];
/// let back = idct2(dct2(x.view()).view());
/// assert!((&back - &x).iter().all(|d| d.abs() < 1e-12));
/// ```
pub fn dct2<R: Real>(x: ArrayView2<R>) -> Array2<R> {
    let (n0, n1) = x.dim();
    let mut out = Array2::zeros((n0, n1));
    if n0 == 0 || n1 == 0 {
        return out;
    }
    let plans = Plans::new([n0, n1]);
    let mut data = vec![R::zero(); n0 * n1];
    let mut t = vec![R::zero(); n0 * n1];
    plans.rows_forward(x, |v| v, &mut data);
    transpose(&data, n0, n1, &mut t);
    plans.cols_filter(&mut t, None, true, false);
    transpose(
        &t,
        n1,
        n0,
        out.as_slice_mut().expect("fresh array is contiguous"),
    );
    out
}

/// The inverse of [`dct2`] (a scaled 2-D DCT-III): the image whose DCT-II is `c`.
pub fn idct2<R: Real>(c: ArrayView2<R>) -> Array2<R> {
    let (n0, n1) = c.dim();
    let mut out = Array2::zeros((n0, n1));
    if n0 == 0 || n1 == 0 {
        return out;
    }
    let plans = Plans::new([n0, n1]);
    let c = c.as_standard_layout();
    let mut t = vec![R::zero(); n0 * n1];
    let mut data = vec![R::zero(); n0 * n1];
    transpose(c.as_slice().expect("standard layout"), n0, n1, &mut t);
    plans.cols_filter(&mut t, None, false, true);
    transpose(&t, n1, n0, &mut data);
    let scale = R::one() / crate::scalar::real::<R>((n0 * n1) as f64);
    for v in data.iter_mut() {
        *v *= scale;
    }
    plans.rows_inverse(&data, out.as_slice_mut().expect("contiguous"), |o, v| {
        *o = v
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DCT-II straight from its definition.
    fn dct2_direct(x: ArrayView2<f64>) -> Array2<f64> {
        let (n0, n1) = x.dim();
        let pi = std::f64::consts::PI;
        Array2::from_shape_fn((n0, n1), |(u, v)| {
            let mut s = 0.0;
            for i in 0..n0 {
                for j in 0..n1 {
                    s += x[[i, j]]
                        * (pi * u as f64 * (2 * i + 1) as f64 / (2 * n0) as f64).cos()
                        * (pi * v as f64 * (2 * j + 1) as f64 / (2 * n1) as f64).cos();
                }
            }
            s
        })
    }

    fn image(n0: usize, n1: usize) -> Array2<f64> {
        Array2::from_shape_fn((n0, n1), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f64 / 7.0 - 1.3 + (i as f64 * 0.3).sin()
        })
    }

    #[test]
    fn dct2_matches_the_definition_and_inverts() {
        for &(n0, n1) in &[(1, 1), (1, 6), (5, 1), (2, 3), (7, 8), (16, 9), (33, 40)] {
            let x = image(n0, n1);
            let want = dct2_direct(x.view());
            let got = dct2(x.view());
            let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-10 * (n0 * n1) as f64, "{n0}×{n1}: {err}");
            let back = idct2(got.view());
            let err = (&back - &x).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-12, "{n0}×{n1}: inverse {err}");
        }
    }

    #[test]
    fn filter_is_idct_of_gain_times_dct() {
        for &(n0, n1) in &[(1, 1), (3, 4), (8, 8), (17, 6), (40, 33)] {
            let x = image(n0, n1);
            let g =
                Array2::from_shape_fn((n0, n1), |(u, v)| 1.0 / (1.0 + u as f64 + 2.0 * v as f64));
            let want = idct2((&dct2_direct(x.view()) * &g).view());
            let f = DctFilter2::new(g.view()).unwrap();
            // a transposed (non-contiguous) output view and a repeated call (pooled buffers)
            let mut y = Array2::<f64>::zeros((n1, n0));
            for _ in 0..2 {
                f.apply_into(x.view(), y.view_mut().reversed_axes())
                    .unwrap();
                let err = (&y.t() - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
                assert!(err < 1e-12, "{n0}×{n1}: {err}");
            }
            // complex data: part by part
            let xc = x.mapv(|v| num_complex::Complex::new(v, -2.0 * v + 1.0));
            let mut yc = Array2::zeros((n0, n1));
            f.apply_into(xc.view(), yc.view_mut()).unwrap();
            let want_im = idct2((&dct2_direct(x.mapv(|v| -2.0 * v + 1.0).view()) * &g).view());
            for ((c, &r), &i) in yc.iter().zip(&want).zip(&want_im) {
                assert!((c.re - r).abs() < 1e-12 && (c.im - i).abs() < 1e-12);
            }
            assert!(f
                .apply_into(x.view(), Array2::zeros((n0 + 1, n1)).view_mut())
                .is_err());
        }
        assert!(DctFilter2::new(Array2::<f64>::zeros((0, 3)).view()).is_err());
        assert!(DctFilter2::new(Array2::from_elem((2, 2), f64::NAN).view()).is_err());
    }

    #[test]
    fn single_precision_agrees() {
        let x = image(24, 20);
        let g = Array2::from_shape_fn((24, 20), |(u, v)| 1.0 / (0.5 + (u * v) as f64));
        let f64f = DctFilter2::new(g.view()).unwrap();
        let f32f = DctFilter2::new(g.mapv(|v| v as f32).view()).unwrap();
        let mut y = Array2::zeros((24, 20));
        let mut y32 = Array2::<f32>::zeros((24, 20));
        f64f.apply_into(x.view(), y.view_mut()).unwrap();
        f32f.apply_into(x.mapv(|v| v as f32).view(), y32.view_mut())
            .unwrap();
        let err = (&y32.mapv(|v| v as f64) - &y)
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(err < 1e-5, "{err}");
    }
}
