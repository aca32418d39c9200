//! The stacked homogeneous linear system `A₀ z = 0` of the three self-calibration models,
//! as a matrix-free [`LinearOperator`] and as a dense matrix.

use super::Model;
use crate::dense::DenseScalar;
use crate::op::LinearOperator;
use crate::scalar::Scalar;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array2, Array3, ArrayViewD, ArrayViewMutD, Axis};
use num_complex::Complex;
use rustfft::Fft;
use std::sync::Arc;

/// Circular convolution helper: `y ⊛ g` and its adjoint (correlation) by FFT, length `m`.
pub(crate) struct Circ<R: crate::Real> {
    fwd: Arc<dyn Fft<R>>,
    inv: Arc<dyn Fft<R>>,
    m: usize,
}

impl<R: crate::Real> Circ<R> {
    /// Plans from the process-wide cache of [`crate::fft`] (built once per length).
    pub(crate) fn new(m: usize) -> Self {
        Circ {
            fwd: crate::fft::complex_plan(m, false),
            inv: crate::fft::complex_plan(m, true),
            m,
        }
    }
    /// Unnormalised DFT `X_k = Σ_j x_j e^{-2πijk/m}` of a scalar slice.
    pub(crate) fn dft<T: DenseScalar + Scalar<Real = R>>(&self, x: &[T]) -> Vec<Complex<R>> {
        let mut b: Vec<Complex<R>> = x.iter().map(|v| Complex::new(v.re(), v.im())).collect();
        self.fwd.process(&mut b);
        b
    }
    /// Inverse DFT with the `1/m` factor, written into `out` (imaginary part dropped for real `T`).
    pub(crate) fn idft_into<T: DenseScalar + Scalar<Real = R>>(
        &self,
        mut b: Vec<Complex<R>>,
        out: &mut [T],
    ) {
        self.inv.process(&mut b);
        let s = R::one() / crate::scalar::real::<R>(self.m as f64);
        for (o, v) in out.iter_mut().zip(b) {
            *o = T::from_parts(v.re * s, v.im * s);
        }
    }
}

/// The calibration part of one block: `g ↦ y ⊙ g` (diagonal) or `g ↦ y ⊛ g` (circulant).
enum CalKind<R: crate::Real> {
    Diag,
    /// spectra `ŷ_l` of every block, and the FFT helper
    Circ(Vec<Vec<Complex<R>>>, Circ<R>),
}

/// `A₀ : z = (h, x) ↦ [cal_l(B h) − A_l x_{(l)}]_{l=1..p}` with `cal_l` the diagonal
/// multiplication by `y_l` (models `repeated`, `snapshots`) or the circular convolution with
/// `y_l` (model `diverse`, time domain). Domain `[k + n_x]`, range `[p·m]`.
pub struct SystemOperator<T: DenseScalar> {
    pub(crate) model: Model,
    /// `y`, shape `[p, m]`.
    pub(crate) y: Array2<T>,
    /// measurement matrices, shape `[p, m, n]` (`[1, m, n]` for `snapshots`).
    pub(crate) a: Array3<T>,
    /// optional subspace `B`, shape `[m, k]`.
    pub(crate) b: Option<Array2<T>>,
    cal: CalKind<<T as Scalar>::Real>,
    pub(crate) p: usize,
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    dom: [usize; 1],
    ran: [usize; 1],
}

impl<T: DenseScalar> SystemOperator<T> {
    /// Build from validated parts (see [`super::Problem`]).
    pub(crate) fn new(model: Model, y: Array2<T>, a: Array3<T>, b: Option<Array2<T>>) -> Self {
        let (p, m) = y.dim();
        let n = a.dim().2;
        let k = b.as_ref().map_or(m, |b| b.dim().1);
        let nx = if model == Model::Repeated { n } else { p * n };
        let cal = match model {
            Model::Diverse => {
                let c = Circ::new(m);
                let spec = y
                    .axis_iter(Axis(0))
                    .map(|row| c.dft(&row.to_vec()))
                    .collect();
                CalKind::Circ(spec, c)
            }
            _ => CalKind::Diag,
        };
        SystemOperator {
            model,
            y,
            a: a.as_standard_layout().into_owned(),
            b,
            cal,
            p,
            m,
            n,
            k,
            dom: [k + nx],
            ran: [p * m],
        }
    }

    /// Number of calibration unknowns `k` (`m` without a subspace).
    pub fn n_calibration(&self) -> usize {
        self.k
    }
    /// Number of signal unknowns (`n` for `repeated`, `p·n` otherwise).
    pub fn n_signal(&self) -> usize {
        self.dom[0] - self.k
    }

    /// `s = B h` (or `h`).
    pub(crate) fn expand(&self, h: &[T]) -> Vec<T> {
        match &self.b {
            None => h.to_vec(),
            Some(b) => {
                let mut out = vec![T::zero(); self.m];
                gemv(
                    &mut out,
                    mref(b.as_slice().unwrap(), self.m, self.k),
                    h,
                    false,
                );
                out
            }
        }
    }

    /// Dense matrix of `A₀` (`p·m × (k + n_x)`), for the small-problem path.
    pub fn to_dense(&self) -> Mat<T> {
        let (p, m, n, k) = (self.p, self.m, self.n, self.k);
        let cols = self.dom[0];
        let mut out = Mat::<T>::zeros(p * m, cols);
        // calibration part: cal_l · B
        for l in 0..p {
            // C_l: m × m matrix of g ↦ cal_l(g)
            let cl = |i: usize, j: usize| -> T {
                match &self.cal {
                    CalKind::Diag => {
                        if i == j {
                            self.y[[l, i]]
                        } else {
                            T::zero()
                        }
                    }
                    CalKind::Circ(..) => self.y[[l, (i + m - j) % m]],
                }
            };
            for i in 0..m {
                for c in 0..k {
                    let v = match (&self.b, &self.cal) {
                        (None, _) => cl(i, c),
                        (Some(b), CalKind::Diag) => self.y[[l, i]] * b[[i, c]],
                        (Some(b), CalKind::Circ(..)) => {
                            (0..m).map(|j| cl(i, j) * b[[j, c]]).sum::<T>()
                        }
                    };
                    out[(l * m + i, c)] = v;
                }
            }
            let al = if self.model == Model::Snapshots { 0 } else { l };
            let off = if self.model == Model::Repeated {
                k
            } else {
                k + l * n
            };
            for i in 0..m {
                for j in 0..n {
                    out[(l * m + i, off + j)] = -self.a[[al, i, j]];
                }
            }
        }
        out
    }
}

pub(crate) fn mref<T: DenseScalar>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(s, rows, cols)
}

/// `out ← M v` (or `Mᴴ v` when `adj`), with `M` row-major.
pub(crate) fn gemv<T: DenseScalar>(out: &mut [T], m: MatRef<'_, T>, v: &[T], adj: bool) {
    let n = out.len();
    let dst = MatMut::from_column_major_slice_mut(out, n, 1);
    if adj {
        let rhs = MatRef::from_column_major_slice(v, m.nrows(), 1);
        faer::linalg::matmul::matmul(dst, Accum::Replace, m.adjoint(), rhs, T::one(), par());
    } else {
        let rhs = MatRef::from_column_major_slice(v, m.ncols(), 1);
        faer::linalg::matmul::matmul(dst, Accum::Replace, m, rhs, T::one(), par());
    }
}

pub(crate) fn par() -> Par {
    faer::get_global_parallelism()
}

impl<T: DenseScalar> LinearOperator<T> for SystemOperator<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, z: ArrayViewD<T>, mut out: ArrayViewMutD<T>) {
        let z = z.as_standard_layout();
        let z = z.as_slice().unwrap();
        let (p, m, n, k) = (self.p, self.m, self.n, self.k);
        let (h, x) = z.split_at(k);
        let g = self.expand(h);
        let mut buf = vec![T::zero(); p * m];
        // signal part: buf = A x
        let a = self.a.as_slice().unwrap();
        match self.model {
            Model::Repeated => gemv(&mut buf, mref(a, p * m, n), x, false),
            Model::Diverse => {
                for l in 0..p {
                    gemv(
                        &mut buf[l * m..(l + 1) * m],
                        mref(&a[l * m * n..(l + 1) * m * n], m, n),
                        &x[l * n..(l + 1) * n],
                        false,
                    );
                }
            }
            Model::Snapshots => {
                // Y (p × m) = X (p × n) · Aᵀ
                let dst = MatMut::from_row_major_slice_mut(&mut buf, p, m);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Replace,
                    mref(x, p, n),
                    mref(a, m, n).transpose(),
                    T::one(),
                    par(),
                );
            }
        }
        let out = out.as_slice_mut().unwrap();
        match &self.cal {
            CalKind::Diag => {
                for l in 0..p {
                    for i in 0..m {
                        out[l * m + i] = self.y[[l, i]] * g[i] - buf[l * m + i];
                    }
                }
            }
            CalKind::Circ(spec, c) => {
                let gh = c.dft(&g);
                for l in 0..p {
                    let prod: Vec<_> = spec[l].iter().zip(&gh).map(|(a, b)| a * b).collect();
                    let o = &mut out[l * m..(l + 1) * m];
                    c.idft_into(prod, o);
                    for i in 0..m {
                        o[i] -= buf[l * m + i];
                    }
                }
            }
        }
    }

    fn adjoint_into(&self, r: ArrayViewD<T>, mut out: ArrayViewMutD<T>) {
        let r = r.as_standard_layout();
        let r = r.as_slice().unwrap();
        let (p, m, n, k) = (self.p, self.m, self.n, self.k);
        let out = out.as_slice_mut().unwrap();
        let (oh, ox) = out.split_at_mut(k);
        // calibration part: Bᴴ Σ_l cal_lᴴ r_l
        let mut gs = vec![T::zero(); m];
        match &self.cal {
            CalKind::Diag => {
                for l in 0..p {
                    for i in 0..m {
                        gs[i] += self.y[[l, i]].conj() * r[l * m + i];
                    }
                }
            }
            CalKind::Circ(spec, c) => {
                let mut acc =
                    vec![Complex::new(<T as Scalar>::Real::zero(), <T as Scalar>::Real::zero()); m];
                for l in 0..p {
                    let rh = c.dft(&r[l * m..(l + 1) * m]);
                    for i in 0..m {
                        acc[i] += spec[l][i].conj() * rh[i];
                    }
                }
                c.idft_into(acc, &mut gs);
            }
        }
        match &self.b {
            None => oh.copy_from_slice(&gs),
            Some(b) => gemv(oh, mref(b.as_slice().unwrap(), m, k), &gs, true),
        }
        // signal part: −A_lᴴ r_l
        let a = self.a.as_slice().unwrap();
        match self.model {
            Model::Repeated => gemv(ox, mref(a, p * m, n), r, true),
            Model::Diverse => {
                for l in 0..p {
                    gemv(
                        &mut ox[l * n..(l + 1) * n],
                        mref(&a[l * m * n..(l + 1) * m * n], m, n),
                        &r[l * m..(l + 1) * m],
                        true,
                    );
                }
            }
            Model::Snapshots => {
                // X' (p × n) = R (p × m) · conj(A)
                let dst = MatMut::from_row_major_slice_mut(ox, p, n);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Replace,
                    mref(r, p, m),
                    mref(a, m, n).conjugate(),
                    T::one(),
                    par(),
                );
            }
        }
        for v in ox.iter_mut() {
            *v = -*v;
        }
    }
}

use num_traits::Zero;
