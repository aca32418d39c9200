//! The FFT engine of [`Conv2d`]: the three passes of one application (row FFTs of the
//! gathered input, column FFTs × spectrum × inverse column FFTs on cache-sized blocks,
//! inverse row FFTs scattered into the output), the work-buffer pool and the row plans.

use super::geometry::{gather, scatter_add, Relation};
use super::spectra::C;
use super::Conv2d;
use crate::scalar::{Real, Scalar};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex;
use num_traits::{One, Zero};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealToComplex};
use rustfft::Fft;
use std::sync::Arc;

pub(super) enum RowPlans<R: Real> {
    Real {
        fwd: Arc<dyn RealToComplex<R>>,
        inv: Arc<dyn ComplexToReal<R>>,
    },
    Complex {
        fwd: Arc<dyn Fft<R>>,
        inv: Arc<dyn Fft<R>>,
    },
}

impl<R: Real> Clone for RowPlans<R> {
    fn clone(&self) -> Self {
        match self {
            RowPlans::Real { fwd, inv } => RowPlans::Real {
                fwd: fwd.clone(),
                inv: inv.clone(),
            },
            RowPlans::Complex { fwd, inv } => RowPlans::Complex {
                fwd: fwd.clone(),
                inv: inv.clone(),
            },
        }
    }
}

/// Work buffer of one call: the spectra `[P][W]`, row-major (rows transformed, then
/// columns transformed, filtered and transformed back in place).
pub(super) struct Work<R> {
    pub(super) spec: Vec<Complex<R>>,
}

/// A raw pointer to the spectra that column-block tasks share: each task reads and writes
/// only its own columns `[q0, q0 + bw)` of every row, so the accesses are disjoint.
#[derive(Clone, Copy)]
struct SharedSpec<R>(*mut Complex<R>);
// SAFETY: see `Conv2d::columns` — tasks touch disjoint column ranges.
unsafe impl<R: Send> Send for SharedSpec<R> {}
unsafe impl<R: Send> Sync for SharedSpec<R> {}

/// Filter of [`Conv2d::apply_fourier_filter_indexed_into`]: frequency indices and the
/// (unscaled) transfer function value → multiplier.
type IndexedFilter<'a, R> = &'a (dyn Fn(usize, usize, Complex<R>) -> Complex<R> + Sync);

/// Map of [`Conv2d::apply_fourier_map_indexed_into`]: frequency indices, the (unscaled)
/// transfer function value and the (unscaled) spectrum value of the input → the new spectrum
/// value.
type MapFilter<'a, R> = &'a (dyn Fn(usize, usize, Complex<R>, Complex<R>) -> Complex<R> + Sync);

/// Per-output-row epilogue of [`Conv2d::apply_into_then`].
type RowEpilogue<'a, T> = &'a (dyn Fn(usize, usize, &mut [T]) + Sync);

/// Spectral multiplier of one pass.
#[derive(Clone, Copy)]
pub(super) enum Mult<'a, R> {
    Kernel,
    KernelConj,
    /// `f(u, v, H(u, v))`, evaluated on the fly (then scaled by `1/(P Q)`).
    Indexed(IndexedFilter<'a, R>),
    /// `Z ← f(u, v, H(u, v), Z)`, evaluated on the fly (then scaled by `1/(P Q)`).
    Map(MapFilter<'a, R>),
}

/// Rows per parallel task in the row stages.
const ROW_BLOCK: usize = 16;
/// Bytes of each row read per column block in the column stage (so `256 / 16 = 16` columns
/// for `f64` and 32 for `f32`): long enough runs for the strided row accesses to stream.
const COL_BLOCK_BYTES: usize = 256;
/// Work buffers retained between calls.
const POOL_MAX: usize = 2;

impl<T: Scalar> Conv2d<T> {
    fn take_work(&self) -> Work<T::Real> {
        let got = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        got.unwrap_or_else(|| Work {
            spec: crate::alloc::zeroed_vec(self.p * self.w),
        })
    }

    fn put_work(&self, w: Work<T::Real>) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(w);
        }
    }

    /// The whole pipeline: `adjoint = false` maps input → output, `true` output → input.
    pub(super) fn run(
        &self,
        src: ArrayView2<T>,
        dst: ArrayViewMut2<T>,
        adjoint: bool,
        mult: Mult<T::Real>,
    ) {
        self.run_then(src, dst, adjoint, mult, None)
    }

    /// [`run`](Self::run) with an optional per-output-row epilogue.
    pub(super) fn run_then(
        &self,
        src: ArrayView2<T>,
        dst: ArrayViewMut2<T>,
        adjoint: bool,
        mult: Mult<T::Real>,
        then: Option<RowEpilogue<T>>,
    ) {
        if let (Some(b), Mult::Kernel | Mult::KernelConj) = (&self.blocked, mult) {
            b.run(src, dst, adjoint, then);
            return;
        }
        let (g_rows, g_cols, s_rows, s_cols) = if adjoint {
            (
                &self.rows.output,
                &self.cols.output,
                &self.rows.input,
                &self.cols.input,
            )
        } else {
            (
                &self.rows.input,
                &self.cols.input,
                &self.rows.output,
                &self.cols.output,
            )
        };
        let mut work = self.take_work();
        self.rows_forward(src, g_rows, g_cols, &mut work.spec);
        self.columns(&mut work.spec, mult);
        self.rows_inverse(&mut work.spec, s_rows, s_cols, dst, then);
        self.put_work(work);
    }

    /// Stage 1: gather each grid row from the source image and FFT it along the row.
    fn rows_forward(&self, src: ArrayView2<T>, gr: &Relation, gc: &Relation, spec: &mut [C<T>]) {
        let (q, w) = (self.q, self.w);
        let with_row = |s: usize, f: &mut dyn FnMut(&[T])| {
            let row = src.row(s);
            match row.as_slice() {
                Some(sl) => f(sl),
                None => f(&row.to_vec()),
            }
        };
        match &self.row_plans {
            RowPlans::Real { fwd, .. } => {
                spec.par_chunks_mut(w * ROW_BLOCK)
                    .enumerate()
                    .for_each_init(
                        || (vec![T::Real::zero(); q], fwd.make_scratch_vec()),
                        |(rbuf, scratch), (ci, chunk)| {
                            for (k, srow) in chunk.chunks_mut(w).enumerate() {
                                match gr.map[ci * ROW_BLOCK + k] {
                                    None => srow.fill(Complex::zero()),
                                    Some(s) => {
                                        rbuf.fill(T::Real::zero());
                                        with_row(s, &mut |xs| {
                                            gather(rbuf, xs, &gc.segs, |v| v.re())
                                        });
                                        fwd.process_with_scratch(rbuf, srow, scratch)
                                            .expect("real FFT buffer sizes");
                                    }
                                }
                            }
                        },
                    );
            }
            RowPlans::Complex { fwd, .. } => {
                spec.par_chunks_mut(w * ROW_BLOCK)
                    .enumerate()
                    .for_each_init(
                        || vec![Complex::zero(); fwd.get_inplace_scratch_len()],
                        |scratch, (ci, chunk)| {
                            for (k, srow) in chunk.chunks_mut(w).enumerate() {
                                srow.fill(Complex::zero());
                                if let Some(s) = gr.map[ci * ROW_BLOCK + k] {
                                    with_row(s, &mut |xs| {
                                        gather(srow, xs, &gc.segs, |v| Complex::new(v.re(), v.im()))
                                    });
                                    fwd.process_with_scratch(srow, scratch);
                                }
                            }
                        },
                    );
            }
        }
    }

    /// Stage 2: per block of columns, gather the block into contiguous column-major memory,
    /// FFT along columns, multiply by the spectrum, inverse FFT along columns and write the
    /// block back in place.
    fn columns(&self, spec: &mut [C<T>], mult: Mult<T::Real>) {
        let (p, w) = (self.p, self.w);
        let (fwd, inv) = (&self.col_fwd, &self.col_inv);
        let scratch_len = fwd
            .get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len());
        let kspec = &self.kspec[..];
        let cb = (COL_BLOCK_BYTES / std::mem::size_of::<C<T>>()).max(1);
        let nblocks = w.div_ceil(cb);
        assert_eq!(spec.len(), p * w, "spectrum buffer size");
        let shared = SharedSpec(spec.as_mut_ptr());
        let pq = crate::scalar::real::<T::Real>((self.p * self.q) as f64);
        let inv_pq = T::Real::one() / pq;
        let krows = self.krows.as_deref();
        (0..nblocks).into_par_iter().for_each_init(
            || {
                (
                    vec![Complex::zero(); scratch_len],
                    vec![Complex::zero(); p * cb],
                    if krows.is_some() {
                        vec![Complex::zero(); p * cb]
                    } else {
                        Vec::new()
                    },
                )
            },
            |(scratch, block, kbuf), bi| {
                let sp = shared;
                let q0 = bi * cb;
                let bw = cb.min(w - q0);
                let block = &mut block[..p * bw];
                // the kernel spectrum of these columns: stored, or transformed now
                let kcols: &[C<T>] = match krows {
                    None => &kspec[q0 * p..(q0 + bw) * p],
                    Some(rows) => {
                        let kb = &mut kbuf[..p * bw];
                        for (b, col) in kb.chunks_mut(p).enumerate() {
                            col.fill(Complex::zero());
                            for (i, r) in rows {
                                col[*i] = r[q0 + b];
                            }
                            fwd.process_with_scratch(col, scratch);
                            for z in col.iter_mut() {
                                *z *= inv_pq;
                            }
                        }
                        kb
                    }
                };
                for pr in 0..p {
                    // SAFETY: `pr * w + q0 + bw ≤ p * w = spec.len()`; this task is the only
                    // one accessing columns q0..q0+bw, and `spec` is borrowed mutably for the
                    // whole parallel loop.
                    let row = unsafe { std::slice::from_raw_parts(sp.0.add(pr * w + q0), bw) };
                    for (b, &v) in row.iter().enumerate() {
                        block[b * p + pr] = v;
                    }
                }
                for col in block.chunks_mut(p) {
                    fwd.process_with_scratch(col, scratch);
                }
                match mult {
                    Mult::Kernel => {
                        for (z, &k) in block.iter_mut().zip(kcols) {
                            *z *= k;
                        }
                    }
                    Mult::KernelConj => {
                        for (z, &k) in block.iter_mut().zip(kcols) {
                            *z *= k.conj();
                        }
                    }
                    Mult::Indexed(f) => {
                        for (b, (col, kcol)) in block.chunks_mut(p).zip(kcols.chunks(p)).enumerate()
                        {
                            for (u, (z, &k)) in col.iter_mut().zip(kcol).enumerate() {
                                *z *= f(u, q0 + b, k * pq) * inv_pq;
                            }
                        }
                    }
                    Mult::Map(f) => {
                        for (b, (col, kcol)) in block.chunks_mut(p).zip(kcols.chunks(p)).enumerate()
                        {
                            for (u, (z, &k)) in col.iter_mut().zip(kcol).enumerate() {
                                *z = f(u, q0 + b, k * pq, *z) * inv_pq;
                            }
                        }
                    }
                }
                for col in block.chunks_mut(p) {
                    inv.process_with_scratch(col, scratch);
                }
                for pr in 0..p {
                    // SAFETY: as above.
                    let row = unsafe { std::slice::from_raw_parts_mut(sp.0.add(pr * w + q0), bw) };
                    for (b, v) in row.iter_mut().enumerate() {
                        *v = block[b * p + pr];
                    }
                }
            },
        );
    }

    /// Stage 3: for each block of destination rows, inverse FFT the grid rows it needs (in
    /// place) and add them into the destination.
    fn rows_inverse(
        &self,
        spec: &mut [C<T>],
        sr: &Relation,
        sc: &Relation,
        mut dst: ArrayViewMut2<T>,
        then: Option<RowEpilogue<T>>,
    ) {
        let ncols = dst.ncols();
        match dst.as_slice_mut() {
            Some(out) => self.rows_inverse_slice(spec, sr, sc, out, ncols, then),
            None => {
                let mut tmp = Array2::<T>::zeros(dst.dim());
                let out = tmp.as_slice_mut().expect("fresh array is contiguous");
                self.rows_inverse_slice(spec, sr, sc, out, ncols, then);
                dst.assign(&tmp);
            }
        }
    }

    fn rows_inverse_slice(
        &self,
        spec: &mut [C<T>],
        sr: &Relation,
        sc: &Relation,
        out: &mut [T],
        ncols: usize,
        then: Option<RowEpilogue<T>>,
    ) {
        let (q, w) = (self.q, self.w);
        let even = q % 2 == 0;
        assert!(spec.len() >= self.p * w, "spectrum buffer size");
        let shared = SharedSpec(spec.as_mut_ptr());
        // The grid rows of destination row i are `sr.inv[i]`; every grid row maps to one image
        // row, so the row blocks below use disjoint grid rows and transform them in place
        // (the inverse transforms overwrite their input, which is not needed afterwards).
        let grid_row = move |pr: usize| -> &mut [C<T>] {
            let sp = shared;
            // SAFETY: `pr < p` (a grid index), so the row lies inside `spec`; each grid row
            // is reached from exactly one destination row, hence from one task only, and
            // `spec` is borrowed mutably for the whole call.
            unsafe { std::slice::from_raw_parts_mut(sp.0.add(pr * w), w) }
        };
        match &self.row_plans {
            RowPlans::Real { inv, .. } => {
                out.par_chunks_mut(ncols * ROW_BLOCK)
                    .enumerate()
                    .for_each_init(
                        || (vec![T::Real::zero(); q], inv.make_scratch_vec()),
                        |(rbuf, scratch), (ci, ochunk)| {
                            let i0 = ci * ROW_BLOCK;
                            ochunk.fill(T::zero());
                            for (k, orow) in ochunk.chunks_mut(ncols).enumerate() {
                                for &pr in &sr.inv[i0 + k] {
                                    let srow = grid_row(pr);
                                    // The product of Hermitian spectra is Hermitian up to round-off:
                                    // project the DC (and Nyquist) bins onto the reals.
                                    srow[0].im = T::Real::zero();
                                    if even {
                                        srow[w - 1].im = T::Real::zero();
                                    }
                                    inv.process_with_scratch(srow, rbuf, scratch)
                                        .expect("real FFT buffer sizes");
                                    scatter_add(orow, rbuf, &sc.segs, |d, v| *d += T::from_real(v));
                                }
                                if let Some(f) = then {
                                    f(i0 + k, 0, orow);
                                }
                            }
                        },
                    );
            }
            RowPlans::Complex { inv, .. } => {
                out.par_chunks_mut(ncols * ROW_BLOCK)
                    .enumerate()
                    .for_each_init(
                        || vec![Complex::zero(); inv.get_inplace_scratch_len()],
                        |scratch, (ci, ochunk)| {
                            let i0 = ci * ROW_BLOCK;
                            ochunk.fill(T::zero());
                            for (k, orow) in ochunk.chunks_mut(ncols).enumerate() {
                                for &pr in &sr.inv[i0 + k] {
                                    let srow = grid_row(pr);
                                    inv.process_with_scratch(srow, scratch);
                                    scatter_add(orow, srow, &sc.segs, |d, v: C<T>| {
                                        *d += T::from_parts(v.re, v.im)
                                    });
                                }
                                if let Some(f) = then {
                                    f(i0 + k, 0, orow);
                                }
                            }
                        },
                    );
            }
        }
    }
}
