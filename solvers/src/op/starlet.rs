//! The starlet: the isotropic undecimated wavelet transform with the B3-spline scaling function
//! ("à trous" algorithm), the standard sparse representation of astronomical images
//! (Starck, Fadili & Murtagh, *The undecimated wavelet decomposition and its reconstruction*,
//! IEEE TIP 16(2), 2007; Starck, Murtagh & Fadili, *Sparse Image and Signal Processing*, 2010).

use crate::boundary::mirror_index;
use crate::error::{Error, Result};
use crate::op::{check_shape, LinearOperator};
use crate::scalar::{real, Real};
use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, Ix2, Ix3, IxDyn};
use rayon::prelude::*;

/// The B3-spline filter `[1, 4, 6, 4, 1] / 16`.
const B3: [f64; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// One dilated B3 smoothing along one axis of length `n`, as a sparse matrix: rows in
/// `[lo, hi)` are the plain 5-tap stencil, the others (near the borders) are stored.
#[derive(Debug, Clone)]
struct Stencil<R> {
    step: usize,
    lo: usize,
    hi: usize,
    h: [R; 5],
    rows: Vec<Vec<(usize, R)>>,
}

impl<R: Real> Stencil<R> {
    /// Smoothing with holes of `step` (forward) or its transpose.
    fn new(n: usize, step: usize, transpose: bool) -> Self {
        let mut dense: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for i in 0..n {
            for (t, &h) in B3.iter().enumerate() {
                let j = mirror_index(i as isize + (t as isize - 2) * step as isize, n);
                let (r, c) = if transpose { (j, i) } else { (i, j) };
                match dense[r].iter_mut().find(|e| e.0 == c) {
                    Some(e) => e.1 += h,
                    None => dense[r].push((c, h)),
                }
            }
        }
        let plain = |i: usize, row: &Vec<(usize, f64)>| -> bool {
            row.len() == 5
                && (0..5).all(|t| {
                    let j = i as isize + (t as isize - 2) * step as isize;
                    j >= 0 && row.iter().any(|&(c, w)| c as isize == j && w == B3[t])
                })
        };
        // Longest run of plain rows (it is the interior when there is one).
        let (mut lo, mut hi) = (0, 0);
        let mut i = 0;
        while i < n {
            if plain(i, &dense[i]) {
                let s = i;
                while i < n && plain(i, &dense[i]) {
                    i += 1;
                }
                if i - s > hi - lo {
                    (lo, hi) = (s, i);
                }
            } else {
                i += 1;
            }
        }
        let rows = dense
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                if i >= lo && i < hi {
                    Vec::new()
                } else {
                    r.into_iter().map(|(c, w)| (c, real::<R>(w))).collect()
                }
            })
            .collect();
        Stencil {
            step,
            lo,
            hi,
            h: B3.map(real::<R>),
            rows,
        }
    }

    /// `out = M inp` along a contiguous line.
    fn apply_line(&self, inp: &[R], out: &mut [R]) {
        let s = self.step;
        let [h0, h1, h2, _, _] = self.h;
        for (i, o) in out.iter_mut().enumerate().take(self.lo) {
            *o = self.rows[i].iter().map(|&(c, w)| w * inp[c]).sum();
        }
        if self.hi > self.lo {
            let (lo, hi) = (self.lo, self.hi);
            let a = &inp[lo - 2 * s..hi - 2 * s];
            let b = &inp[lo - s..hi - s];
            let c = &inp[lo..hi];
            let d = &inp[lo + s..hi + s];
            let e = &inp[lo + 2 * s..hi + 2 * s];
            for (k, o) in out[lo..hi].iter_mut().enumerate() {
                *o = h0 * (a[k] + e[k]) + h1 * (b[k] + d[k]) + h2 * c[k];
            }
        }
        for (i, o) in out.iter_mut().enumerate().skip(self.hi) {
            *o = self.rows[i].iter().map(|&(c, w)| w * inp[c]).sum();
        }
    }

    /// The (row index, weight) list of output row `i`.
    fn row(&self, i: usize) -> Vec<(usize, R)> {
        if i >= self.lo && i < self.hi {
            (0..5)
                .map(|t| ((i + t * self.step) - 2 * self.step, self.h[t]))
                .collect()
        } else {
            self.rows[i].clone()
        }
    }
}

/// Smoothing of a whole image: rows (last axis) then columns, or its transpose.
#[derive(Debug, Clone)]
struct Smooth2<R> {
    along_rows: Stencil<R>,
    along_cols: Stencil<R>,
}

impl<R: Real> Smooth2<R> {
    /// `out = H inp`, both contiguous `[n0, n1]` buffers; `tmp` is scratch of the same size.
    /// When `diff` is given, also writes `diff = inp − out`.
    fn apply(&self, inp: &[R], tmp: &mut [R], out: &mut [R], diff: Option<&mut [R]>, n1: usize) {
        // Along each row (contiguous).
        tmp.par_chunks_mut(n1)
            .zip(inp.par_chunks(n1))
            .with_min_len(8)
            .for_each(|(t, x)| self.along_rows.apply_line(x, t));
        // Along columns: out[i, :] = Σ_j M[i, j] tmp[j, :], whole rows at a time.
        let cols = &self.along_cols;
        let tmp = &*tmp;
        let body = |i: usize, o: &mut [R]| {
            let entries = cols.row(i);
            let (j0, w0) = entries[0];
            for (ov, &tv) in o.iter_mut().zip(&tmp[j0 * n1..(j0 + 1) * n1]) {
                *ov = w0 * tv;
            }
            for &(j, w) in &entries[1..] {
                for (ov, &tv) in o.iter_mut().zip(&tmp[j * n1..(j + 1) * n1]) {
                    *ov += w * tv;
                }
            }
        };
        match diff {
            None => out
                .par_chunks_mut(n1)
                .enumerate()
                .with_min_len(8)
                .for_each(|(i, o)| body(i, o)),
            Some(d) => out
                .par_chunks_mut(n1)
                .zip(d.par_chunks_mut(n1))
                .zip(inp.par_chunks(n1))
                .enumerate()
                .with_min_len(8)
                .for_each(|(i, ((o, dd), x))| {
                    body(i, o);
                    for ((dv, &xv), &ov) in dd.iter_mut().zip(x).zip(o.iter()) {
                        *dv = xv - ov;
                    }
                }),
        }
    }
}

/// The isotropic undecimated B3-spline starlet transform of `[rows, cols]` images with `J`
/// wavelet scales, as a linear operator `x ↦ [w_1, …, w_J, c_J]` of shape `[J + 1, rows, cols]`.
///
/// With `h = [1, 4, 6, 4, 1] / 16` and `h_j` the separable 2-D filter `h ⊗ h` with `2^j − 1`
/// zeros ("holes") inserted between taps:
///
/// ```text
/// c_0 = x,   c_{j+1} = h_j ∗ c_j,   w_{j+1} = c_j − c_{j+1}   (j = 0 … J−1)
/// ```
///
/// so `x = c_J + Σ_j w_j` exactly ([`reconstruct`](Self::reconstruct)). The transform is
/// redundant (`J + 1` coefficients per pixel): `reconstruct` is a left inverse, not the adjoint.
///
/// Boundary: whole-sample symmetric ("mirror") extension `d c b | a b c d | c b a` (scipy
/// `mode='mirror'`, the usual choice of starlet codes), repeated as often as the dilated
/// filter needs, so any `J` works for any image size. The adjoint
/// ([`LinearOperator::adjoint_into`]) is exact, including at the borders.
///
/// Rows and columns are processed in parallel with rayon.
///
/// ```
/// use sparseinv_solvers::op::{LinearOperator, Starlet};
/// use sparseinv_solvers::testing::randn;
/// let s = Starlet::<f64>::new([32, 40], 3).unwrap();
/// let x = randn::<f64>(&[32, 40], 1);
/// let w = s.apply(x.view()).unwrap();
/// assert_eq!(w.shape(), &[4, 32, 40]);
/// let back = s.reconstruct(w.view()).unwrap();
/// assert!((&back - &x).iter().all(|d| d.abs() < 1e-12));
/// ```
#[derive(Debug, Clone)]
pub struct Starlet<T: Real> {
    shape: [usize; 2],
    range: [usize; 3],
    scales: usize,
    fwd: Vec<Smooth2<T>>,
    adj: Vec<Smooth2<T>>,
}

impl<T: Real> Starlet<T> {
    /// Starlet with `scales ≥ 1` wavelet scales for images of shape `[rows, cols]`.
    /// Errors on an empty image, `scales = 0` or `scales > 30`.
    pub fn new(image_shape: [usize; 2], scales: usize) -> Result<Self> {
        if image_shape[0] == 0 || image_shape[1] == 0 {
            return Err(Error::Empty {
                what: "Starlet image shape".into(),
            });
        }
        if scales == 0 || scales > 30 {
            return Err(Error::param(
                "scales",
                "the number of scales must be in 1..=30",
            ));
        }
        let make = |transpose| {
            (0..scales)
                .map(|j| Smooth2 {
                    along_rows: Stencil::new(image_shape[1], 1 << j, transpose),
                    along_cols: Stencil::new(image_shape[0], 1 << j, transpose),
                })
                .collect::<Vec<_>>()
        };
        Ok(Starlet {
            shape: image_shape,
            range: [scales + 1, image_shape[0], image_shape[1]],
            scales,
            fwd: make(false),
            adj: make(true),
        })
    }

    /// Number of wavelet scales `J`.
    pub fn scales(&self) -> usize {
        self.scales
    }

    /// Image shape `[rows, cols]`.
    pub fn image_shape(&self) -> [usize; 2] {
        self.shape
    }

    /// `x = c_J + Σ_{j=1..J} w_j`: the sum of the `J + 1` planes of `coeffs`
    /// (shape `[J + 1, rows, cols]`), which inverts the forward transform exactly.
    pub fn reconstruct(&self, coeffs: ArrayViewD<T>) -> Result<ArrayD<T>> {
        check_shape("Starlet coefficients", &self.range, coeffs.shape())?;
        let c = coeffs.into_dimensionality::<Ix3>().expect("checked 3-D");
        Ok(c.sum_axis(Axis(0)).into_dyn())
    }

    /// Standard deviation of the coefficients of each plane (`w_1 … w_J`, then `c_J`; length
    /// `J + 1`) for unit-variance white Gaussian noise, away from the borders.
    ///
    /// Computed exactly from the filter bank: the impulse response of `w_{j+1}` is
    /// `φ_j ⊗ φ_j − φ_{j+1} ⊗ φ_{j+1}` where `φ_j = h_{j−1} ∗ … ∗ h_0` (1-D), so its squared
    /// norm is `‖φ_j‖⁴ + ‖φ_{j+1}‖⁴ − 2⟨φ_j, φ_{j+1}⟩²`; for the coarse plane it is
    /// `‖φ_J‖⁴`. Values: 0.8908, 0.2007, 0.0856, 0.0413, 0.0205, … (Starck & Murtagh).
    /// Depends only on `J`, not on the image size.
    pub fn noise_std(&self) -> Vec<T> {
        starlet_noise_std(self.scales)
            .into_iter()
            .map(real::<T>)
            .collect()
    }
}

/// The per-plane noise standard deviations of [`Starlet::noise_std`] for `scales` scales, in
/// `f64`.
pub fn starlet_noise_std(scales: usize) -> Vec<f64> {
    // 1-D responses φ_0 = δ, φ_{j+1} = h_j ∗ φ_j on a grid large enough for no truncation.
    let half = 2 * ((1usize << scales) - 1);
    let len = 2 * half + 1;
    let mut phis = vec![{
        let mut d = vec![0.0; len];
        d[half] = 1.0;
        d
    }];
    for j in 0..scales {
        let prev = &phis[j];
        let s = 1usize << j;
        let mut next = vec![0.0; len];
        for (i, n) in next.iter_mut().enumerate() {
            for (t, &h) in B3.iter().enumerate() {
                let k = i as isize + (t as isize - 2) * s as isize;
                if k >= 0 && (k as usize) < len {
                    *n += h * prev[k as usize];
                }
            }
        }
        phis.push(next);
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut out: Vec<f64> = (0..scales)
        .map(|j| {
            let (a, b) = (&phis[j], &phis[j + 1]);
            let (aa, bb, ab) = (dot(a, a), dot(b, b), dot(a, b));
            (aa * aa + bb * bb - 2.0 * ab * ab).max(0.0).sqrt()
        })
        .collect();
    let c = dot(&phis[scales], &phis[scales]);
    out.push(c);
    out
}

impl<T: Real> Starlet<T> {
    fn forward(&self, x: ArrayView2<T>, out: &mut [T]) {
        let [n0, n1] = self.shape;
        let plane = n0 * n1;
        let mut cur: Vec<T> = x.iter().copied().collect();
        let mut next = vec![T::zero(); plane];
        let mut tmp = vec![T::zero(); plane];
        for (j, sm) in self.fwd.iter().enumerate() {
            let w = &mut out[j * plane..(j + 1) * plane];
            sm.apply(&cur, &mut tmp, &mut next, Some(w), n1);
            std::mem::swap(&mut cur, &mut next);
        }
        out[self.scales * plane..].copy_from_slice(&cur);
    }

    fn backward(&self, coeffs: &[T], out: &mut [T]) {
        let [n0, n1] = self.shape;
        let plane = n0 * n1;
        let j_max = self.scales;
        // g_J = a;  g_j = d_{j+1} + H_jᵀ (g_{j+1} − d_{j+1});  x = g_0.
        let mut g: Vec<T> = coeffs[j_max * plane..].to_vec();
        let mut tmp = vec![T::zero(); plane];
        let mut next = vec![T::zero(); plane];
        for j in (0..j_max).rev() {
            let d = &coeffs[j * plane..(j + 1) * plane];
            g.par_iter_mut()
                .zip(d.par_iter())
                .for_each(|(g, &d)| *g -= d);
            self.adj[j].apply(&g, &mut tmp, &mut next, None, n1);
            next.par_iter_mut()
                .zip(d.par_iter())
                .for_each(|(n, &d)| *n += d);
            std::mem::swap(&mut g, &mut next);
        }
        out.copy_from_slice(&g);
    }
}

impl<T: Real> LinearOperator<T> for Starlet<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.shape
    }
    fn range_shape(&self) -> &[usize] {
        &self.range
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let x = x
            .into_dimensionality::<Ix2>()
            .expect("Starlet input is 2-D");
        assert_eq!(y.shape(), &self.range[..], "Starlet output shape");
        match y.as_slice_mut() {
            Some(out) => self.forward(x, out),
            None => {
                let mut tmp = vec![T::zero(); self.range.iter().product()];
                self.forward(x, &mut tmp);
                let a = ArrayViewD::from_shape(IxDyn(&self.range), &tmp).expect("size");
                y.assign(&a);
            }
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        assert_eq!(y.shape(), &self.range[..], "Starlet adjoint input shape");
        assert_eq!(x.shape(), &self.shape[..], "Starlet adjoint output shape");
        let owned;
        let coeffs = match y.as_slice() {
            Some(s) => s,
            None => {
                owned = y.iter().copied().collect::<Vec<_>>();
                &owned
            }
        };
        match x.as_slice_mut() {
            Some(out) => self.backward(coeffs, out),
            None => {
                let mut tmp = vec![T::zero(); self.shape[0] * self.shape[1]];
                self.backward(coeffs, &mut tmp);
                let a = ArrayViewD::from_shape(IxDyn(&self.shape), &tmp).expect("size");
                x.assign(&a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pattern() {
        // d c b | a b c d | c b a with n = 4
        let got: Vec<usize> = (-3..7).map(|i| mirror_index(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(mirror_index(-5, 1), 0);
        assert_eq!(mirror_index(9, 2), 1);
    }

    #[test]
    fn stencil_rows_sum_to_one_and_transpose_matches() {
        for (n, s) in [(20usize, 1usize), (20, 4), (7, 4), (3, 8), (1, 2), (2, 1)] {
            let f = Stencil::<f64>::new(n, s, false);
            let t = Stencil::<f64>::new(n, s, true);
            let dense = |m: &Stencil<f64>| {
                let mut a = vec![vec![0.0; n]; n];
                for (i, row) in a.iter_mut().enumerate() {
                    for (c, w) in m.row(i) {
                        row[c] += w;
                    }
                }
                a
            };
            let (a, b) = (dense(&f), dense(&t));
            for i in 0..n {
                assert!((a[i].iter().sum::<f64>() - 1.0).abs() < 1e-15);
                for j in 0..n {
                    assert_eq!(a[i][j], b[j][i]);
                }
            }
            // apply_line agrees with the dense matrix
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let mut y = vec![0.0; n];
            f.apply_line(&x, &mut y);
            for i in 0..n {
                let want: f64 = (0..n).map(|j| a[i][j] * x[j]).sum();
                assert!((y[i] - want).abs() < 1e-14);
            }
        }
    }
}
