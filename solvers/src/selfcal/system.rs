//! The stacked homogeneous linear system `A₀ z = 0` of the three self-calibration models,
//! as a matrix-free [`LinearOperator`] and as a dense matrix.

use super::Model;
use crate::dense::DenseScalar;
use crate::op::LinearOperator;
use crate::scalar::Scalar;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array2, Array3, ArrayViewD, ArrayViewMutD, Axis};
use num_complex::Complex;
use rayon::prelude::*;
use rustfft::Fft;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

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
    /// accumulators of the fused pass, one per row range but the first
    /// ([`SystemOperator::fused_repeated`])
    work: Mutex<Vec<T>>,
}

/// Bytes of `A` the fused pass multiplies at a time: a block of rows, read from memory by
/// the forward product and again, from the L1 cache, by the adjoint one.
const FUSED_BLOCK_BYTES: usize = 32 << 10;

/// Tasks of the fused pass per thread: a few, so that a thread that is slowed down (a busy
/// machine) leaves its share to the others.
const FUSED_TASKS_PER_THREAD: usize = 4;

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
            y: y.as_standard_layout().into_owned(),
            a: a.as_standard_layout().into_owned(),
            b,
            cal,
            p,
            m,
            n,
            k,
            dom: [k + nx],
            ran: [p * m],
            work: Mutex::new(Vec::new()),
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
        self.expand_cow(h).into_owned()
    }

    /// `s = B h`, borrowing `h` itself when there is no subspace.
    fn expand_cow<'h>(&self, h: &'h [T]) -> Cow<'h, [T]> {
        match &self.b {
            None => Cow::Borrowed(h),
            Some(b) => {
                let mut out = vec![T::zero(); self.m];
                gemv(
                    &mut out,
                    mref(b.as_slice().unwrap(), self.m, self.k),
                    h,
                    false,
                );
                Cow::Owned(out)
            }
        }
    }

    /// `oh ← Bᴴ Σ_l conj(y_l) ⊙ r_l` (or without `Bᴴ`): the calibration part of `A₀ᴴ r` for
    /// the diagonal models, allocation-free without a subspace.
    pub(crate) fn diag_adjoint_cal(&self, r: &[T], oh: &mut [T]) {
        let (p, m) = (self.p, self.m);
        let y = self.y.as_slice().unwrap();
        let sum_into = |gs: &mut [T]| {
            for ((g, &yv), &rv) in gs.iter_mut().zip(&y[..m]).zip(&r[..m]) {
                *g = yv.conj() * rv;
            }
            for l in 1..p {
                let (yl, rl) = (&y[l * m..(l + 1) * m], &r[l * m..(l + 1) * m]);
                for ((g, &yv), &rv) in gs.iter_mut().zip(yl).zip(rl) {
                    *g += yv.conj() * rv;
                }
            }
        };
        match &self.b {
            None => sum_into(oh),
            Some(b) => {
                let mut gs = vec![T::zero(); m];
                sum_into(&mut gs);
                gemv(oh, mref(b.as_slice().unwrap(), m, self.k), &gs, true);
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

/// `out ← M v` (or `Mᴴ v` when `adj`), with `M` row-major, with faer's global parallelism.
pub(crate) fn gemv<T: DenseScalar>(out: &mut [T], m: MatRef<'_, T>, v: &[T], adj: bool) {
    gemv_scaled(out, m, v, adj, T::one(), par());
}

/// `out ← c M v` (or `c Mᴴ v` when `adj`), with `M` row-major: one faer matrix–vector product.
pub(crate) fn gemv_scaled<T: DenseScalar>(
    out: &mut [T],
    m: MatRef<'_, T>,
    v: &[T],
    adj: bool,
    c: T,
    par: Par,
) {
    let n = out.len();
    let dst = MatMut::from_column_major_slice_mut(out, n, 1);
    if adj {
        let rhs = MatRef::from_column_major_slice(v, m.nrows(), 1);
        faer::linalg::matmul::matmul(dst, Accum::Replace, m.adjoint(), rhs, c, par);
    } else {
        let rhs = MatRef::from_column_major_slice(v, m.ncols(), 1);
        faer::linalg::matmul::matmul(dst, Accum::Replace, m, rhs, c, par);
    }
}

pub(crate) fn par() -> Par {
    faer::get_global_parallelism()
}

impl<T: DenseScalar> SystemOperator<T> {
    /// `out ← c A x_{(·)}`: the signal part of `A₀ z` times `c` (`c = −1` for `A₀`), as faer
    /// products: one `p·m × n` matrix–vector product (`Repeated`), `p` of them (`Diverse`),
    /// or one `p × n` by `n × m` matrix product (`Snapshots`).
    pub(crate) fn signal_into(&self, x: &[T], out: &mut [T], c: T) {
        let (p, m, n) = (self.p, self.m, self.n);
        let a = self.a.as_slice().unwrap();
        match self.model {
            Model::Repeated => gemv_scaled(out, mref(a, p * m, n), x, false, c, par()),
            Model::Diverse => {
                for l in 0..p {
                    gemv_scaled(
                        &mut out[l * m..(l + 1) * m],
                        mref(&a[l * m * n..(l + 1) * m * n], m, n),
                        &x[l * n..(l + 1) * n],
                        false,
                        c,
                        par(),
                    );
                }
            }
            Model::Snapshots => {
                // Y (p × m) = c X (p × n) · Aᵀ
                let dst = MatMut::from_row_major_slice_mut(out, p, m);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Replace,
                    mref(x, p, n),
                    mref(a, m, n).transpose(),
                    c,
                    par(),
                );
            }
        }
    }

    /// `ox ← c A_{(·)}ᴴ r`: the signal part of `A₀ᴴ r` times `c` (`c = −1` for `A₀ᴴ`), the
    /// adjoint of [`SystemOperator::signal_into`].
    pub(crate) fn signal_adjoint_into(&self, r: &[T], ox: &mut [T], c: T) {
        let (p, m, n) = (self.p, self.m, self.n);
        let a = self.a.as_slice().unwrap();
        match self.model {
            Model::Repeated => gemv_scaled(ox, mref(a, p * m, n), r, true, c, par()),
            Model::Diverse => {
                for l in 0..p {
                    gemv_scaled(
                        &mut ox[l * n..(l + 1) * n],
                        mref(&a[l * m * n..(l + 1) * m * n], m, n),
                        &r[l * m..(l + 1) * m],
                        true,
                        c,
                        par(),
                    );
                }
            }
            Model::Snapshots => {
                // X' (p × n) = c R (p × m) · conj(A)
                let dst = MatMut::from_row_major_slice_mut(ox, p, n);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Replace,
                    mref(r, p, m),
                    mref(a, m, n).conjugate(),
                    c,
                    par(),
                );
            }
        }
    }

    /// The fused products of [`LinearOperator::apply_sub_adjoint_into`] for `Repeated` with
    /// the stacked `A = [A_1; …; A_p]` (`p·m × n`, row-major) and `s = B h`:
    /// `u ← y ⊙ (1_p ⊗ s) − A x − α u`, then `gx ← −Aᴴ u` (the signal part of `A₀ᴴ u`).
    ///
    /// The rows are cut into [`FUSED_TASKS_PER_THREAD`] contiguous ranges per thread of
    /// faer's global parallelism (run on the rayon pool), each range into blocks of
    /// [`FUSED_BLOCK_BYTES`]: for a block `A_b` (read from memory once), `t = A_b x` and
    /// `u_b` by one faer matrix–vector product, then `acc += A_bᴴ u_b` by a second one while
    /// `A_b` is in the cache. Each range has its own accumulator; they are added in range
    /// order, so the result does not depend on the scheduling.
    /// `scratch` (length `p·m`) holds `t`.
    fn fused_repeated(
        &self,
        s: &[T],
        x: &[T],
        alpha: <T as Scalar>::Real,
        u: &mut [T],
        gx: &mut [T],
        scratch: &mut [T],
    ) {
        let (m, n) = (self.m, self.n);
        let rows = self.p * m;
        let a = self.a.as_slice().unwrap();
        let y = self.y.as_slice().unwrap();
        let threads = match par() {
            Par::Seq => 1,
            Par::Rayon(t) => t.get(),
        };
        // as faer does for one product: no threads below 256² entries
        let threads = if rows * n < 1 << 16 { 1 } else { threads };
        let tasks = if threads == 1 {
            1
        } else {
            threads * FUSED_TASKS_PER_THREAD
        };
        let per = rows.div_ceil(tasks.min(rows));
        let parts = rows.div_ceil(per);
        let blk = (FUSED_BLOCK_BYTES / (n * std::mem::size_of::<T>())).clamp(1, rows);
        let run_part = |r0: usize, u: &mut [T], t: &mut [T], acc: &mut [T]| {
            acc.fill(T::zero());
            let nr = u.len();
            let mut off = 0;
            while off < nr {
                let b = blk.min(nr - off);
                let (lo, hi) = (r0 + off, r0 + off + b);
                let ab = mref(&a[lo * n..hi * n], b, n);
                let tb = &mut t[off..off + b];
                gemv_scaled(tb, ab, x, false, T::one(), Par::Seq);
                let ub = &mut u[off..off + b];
                // row r is sensor r mod m: walk the block in runs of consecutive sensors
                let mut r = lo;
                while r < hi {
                    let i0 = r % m;
                    let len = (m - i0).min(hi - r);
                    let (j0, j1) = (r - lo, r - lo + len);
                    for (((uv, &tv), &yv), &sv) in ub[j0..j1]
                        .iter_mut()
                        .zip(&tb[j0..j1])
                        .zip(&y[r..r + len])
                        .zip(&s[i0..i0 + len])
                    {
                        *uv = yv * sv - tv - uv.scale(alpha);
                    }
                    r += len;
                }
                let dst = MatMut::from_column_major_slice_mut(&mut *acc, n, 1);
                let rhs = MatRef::from_column_major_slice(&*ub, b, 1);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Add,
                    ab.adjoint(),
                    rhs,
                    T::one(),
                    Par::Seq,
                );
                off += b;
            }
        };
        if parts == 1 {
            run_part(0, u, scratch, gx);
        } else {
            let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
            let extra = (parts - 1) * n;
            if work.len() < extra {
                work.resize(extra, T::zero());
            }
            let mut accs: Vec<&mut [T]> = std::iter::once(&mut *gx)
                .chain(work[..extra].chunks_mut(n))
                .collect();
            u.par_chunks_mut(per)
                .zip(scratch.par_chunks_mut(per))
                .zip(accs.par_iter_mut())
                .enumerate()
                .with_max_len(1)
                .for_each(|(i, ((u, t), acc))| run_part(i * per, u, t, acc));
            drop(accs);
            for w in work[..extra].chunks(n) {
                for (g, &v) in gx.iter_mut().zip(w) {
                    *g += v;
                }
            }
        }
        for g in gx.iter_mut() {
            *g = -*g;
        }
    }
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
        let (p, m, k) = (self.p, self.m, self.k);
        let (h, x) = z.split_at(k);
        let g = self.expand_cow(h);
        let out = out.as_slice_mut().unwrap();
        // signal part: out = −A x
        self.signal_into(x, out, -T::one());
        // calibration part: out += cal_l(g)
        match &self.cal {
            CalKind::Diag => {
                let y = self.y.as_slice().unwrap();
                for l in 0..p {
                    let (o, yl) = (&mut out[l * m..(l + 1) * m], &y[l * m..(l + 1) * m]);
                    for ((o, &yv), &gv) in o.iter_mut().zip(yl).zip(g.iter()) {
                        *o += yv * gv;
                    }
                }
            }
            CalKind::Circ(spec, c) => {
                let gh = c.dft(&g);
                let mut tmp = vec![T::zero(); m];
                for l in 0..p {
                    let prod: Vec<_> = spec[l].iter().zip(&gh).map(|(a, b)| a * b).collect();
                    c.idft_into(prod, &mut tmp);
                    for (o, &t) in out[l * m..(l + 1) * m].iter_mut().zip(&tmp) {
                        *o += t;
                    }
                }
            }
        }
    }

    fn adjoint_into(&self, r: ArrayViewD<T>, mut out: ArrayViewMutD<T>) {
        let r = r.as_standard_layout();
        let r = r.as_slice().unwrap();
        let (p, m, k) = (self.p, self.m, self.k);
        let out = out.as_slice_mut().unwrap();
        let (oh, ox) = out.split_at_mut(k);
        // calibration part: Bᴴ Σ_l cal_lᴴ r_l
        match &self.cal {
            CalKind::Diag => self.diag_adjoint_cal(r, oh),
            CalKind::Circ(spec, c) => {
                let mut acc =
                    vec![Complex::new(<T as Scalar>::Real::zero(), <T as Scalar>::Real::zero()); m];
                for l in 0..p {
                    let rh = c.dft(&r[l * m..(l + 1) * m]);
                    for i in 0..m {
                        acc[i] += spec[l][i].conj() * rh[i];
                    }
                }
                let mut gs = vec![T::zero(); m];
                c.idft_into(acc, &mut gs);
                match &self.b {
                    None => oh.copy_from_slice(&gs),
                    Some(b) => gemv(oh, mref(b.as_slice().unwrap(), m, k), &gs, true),
                }
            }
        }
        // signal part: −A_lᴴ r_l
        self.signal_adjoint_into(r, ox, -T::one());
    }

    /// One pass over the stacked `A` for `Repeated` (`SystemOperator::fused_repeated`);
    /// the default (two products) for the other models.
    fn apply_sub_adjoint_into(
        &self,
        v: ArrayViewD<T>,
        alpha: <T as Scalar>::Real,
        mut u: ArrayViewMutD<T>,
        mut g: ArrayViewMutD<T>,
        mut scratch: ArrayViewMutD<T>,
    ) {
        if self.model != Model::Repeated {
            self.apply_into(v, scratch.view_mut());
            ndarray::Zip::from(&mut u)
                .and(&scratch)
                .for_each(|u, &s| *u = s - u.scale(alpha));
            self.adjoint_into(u.view(), g);
            return;
        }
        let v = v.as_standard_layout();
        let v = v.as_slice().unwrap();
        let (h, x) = v.split_at(self.k);
        let s = self.expand_cow(h);
        let u = u.as_slice_mut().unwrap();
        let (gh, gx) = g.as_slice_mut().unwrap().split_at_mut(self.k);
        self.fused_repeated(&s, x, alpha, u, gx, scratch.as_slice_mut().unwrap());
        self.diag_adjoint_cal(u, gh);
    }
}

use num_traits::Zero;
