//! Blocked (overlap-save) execution of a zero-boundary 2-D convolution with a small kernel.
//!
//! A `Same`-mode convolution of an `n0 × n1` image by an `h × w` kernel is computed tile by
//! tile: each output tile of `B0 × B1` pixels needs the `(B0 + h − 1) × (B1 + w − 1)` input
//! pixels around it, which are placed on a small `N0 × N1` FFT grid (`N ≥ B + k − 1`,
//! typically 256²), transformed, multiplied by the kernel spectrum on that grid and
//! transformed back; the outputs untouched by the circular wrap-around are kept. Compared
//! with one FFT over the whole zero-padded image this does a little more arithmetic per
//! pixel (the halo is transformed twice) but every transform runs on a tile that stays in
//! the core's cache, and no image-sized spectrum is written to or read from main memory:
//! on the 2-core test machine the forward + adjoint pair at 1024², 31² kernel runs about
//! twice as fast (see `benches/conv.rs`).
//!
//! The adjoint (correlation) is the same computation with the kernel flipped about its
//! centre and the offset `d' = h − 1 − c` instead of `c = h/2`.

use crate::fft;
use crate::scalar::{real, Scalar};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex;
use num_traits::Zero;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealToComplex};
use rustfft::Fft;
use std::sync::{Arc, Mutex};

/// Per-output-row-segment epilogue: `(row, first column, segment)`.
pub(crate) type SegmentEpilogue<'a, T> = &'a (dyn Fn(usize, usize, &mut [T]) + Sync);

/// FFT tile side for kernels up to 48 px along that axis.
const TILE_SMALL: usize = 256;
/// FFT tile side for kernels up to 96 px (larger kernels: the whole-image grid is as fast;
/// thresholds from timings at 1024² and 2048² on the test machine).
const TILE_LARGE: usize = 512;
/// Smallest share of a tile transform that must be output for blocking to be used.
const MIN_EFFICIENCY: f64 = 0.55;
/// Columns transformed together in the column stage of a tile.
const COLS: usize = 4;
/// Padding of the column buffers: with a power-of-two stride the transposed writes of the
/// column gather all map to the same cache sets.
const COL_PAD: usize = 4;

#[derive(Debug, Clone)]
struct Axis {
    /// FFT length.
    n_fft: usize,
    /// Output tiles `(start, length)`.
    tiles: Vec<(usize, usize)>,
}

impl Axis {
    /// The tiling of an image axis of length `n` for a kernel of length `k`, or `None` when
    /// the kernel is too large for blocking to pay off.
    fn new(n: usize, k: usize) -> Option<Self> {
        let n_fft = if k <= 48 {
            TILE_SMALL
        } else if k <= 96 {
            TILE_LARGE
        } else {
            return None;
        };
        // a single tile: the smallest good length for the whole axis
        let n_fft = if n + k - 1 <= n_fft {
            fft::good_real_fft_len(n + k - 1)
        } else {
            n_fft
        };
        let bmax = n_fft + 1 - k;
        // `nt` tiles of balanced lengths ⌊n/nt⌋ or ⌈n/nt⌉ ≤ bmax, none empty
        let nt = n.div_ceil(bmax);
        let tiles = (0..nt)
            .map(|t| (t * n / nt, (t + 1) * n / nt - t * n / nt))
            .collect();
        Some(Axis { n_fft, tiles })
    }
}

/// Output pointer shared by the tile tasks (each writes its own rectangle).
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
// SAFETY: tiles are disjoint rectangles of the output, each written by exactly one task.
unsafe impl<T: Send> Send for OutPtr<T> {}
unsafe impl<T: Send> Sync for OutPtr<T> {}

/// Blocked `Same`-mode convolution plan for real images (`T` real; complex scalars use the
/// whole-image grid).
pub(crate) struct OverlapSave<T: Scalar> {
    n: [usize; 2],
    k: [usize; 2],
    axes: [Axis; 2],
    /// columns of the half spectrum, `N1/2 + 1`
    w: usize,
    /// kernel spectra on the tile grid, column-major `[W][N0]`, scaled by `1/(N0 N1)`:
    /// the kernel and the kernel flipped about its centre
    spec_fwd: Vec<C<T>>,
    spec_adj: Vec<C<T>>,
    d_fwd: [usize; 2],
    d_adj: [usize; 2],
    rfwd: Arc<dyn RealToComplex<T::Real>>,
    rinv: Arc<dyn ComplexToReal<T::Real>>,
    cfwd: Arc<dyn Fft<T::Real>>,
    cinv: Arc<dyn Fft<T::Real>>,
    /// per-task tile buffers, reused across tiles and calls
    pool: Mutex<Vec<TileBuffers<T::Real>>>,
}

/// Work buffers of one tile task.
struct TileBuffers<R> {
    grid: Vec<R>,
    spec: Vec<Complex<R>>,
    cols: Vec<Complex<R>>,
    cscratch: Vec<Complex<R>>,
    fscratch: Vec<Complex<R>>,
    iscratch: Vec<Complex<R>>,
}

type C<T> = Complex<<T as Scalar>::Real>;

impl<T: Scalar> std::fmt::Debug for OverlapSave<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlapSave")
            .field("tile_fft", &[self.axes[0].n_fft, self.axes[1].n_fft])
            .field(
                "tiles",
                &[self.axes[0].tiles.len(), self.axes[1].tiles.len()],
            )
            .finish()
    }
}

impl<T: Scalar> Clone for OverlapSave<T> {
    fn clone(&self) -> Self {
        OverlapSave {
            n: self.n,
            k: self.k,
            axes: self.axes.clone(),
            w: self.w,
            spec_fwd: self.spec_fwd.clone(),
            spec_adj: self.spec_adj.clone(),
            d_fwd: self.d_fwd,
            d_adj: self.d_adj,
            rfwd: self.rfwd.clone(),
            rinv: self.rinv.clone(),
            cfwd: self.cfwd.clone(),
            cinv: self.cinv.clone(),
            pool: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Scalar> OverlapSave<T> {
    /// A plan for `n`-shaped images and `kernel`, or `None` when blocking would not pay off
    /// (a kernel side above 96, or an image that fits one tile along both axes).
    pub(crate) fn new(n: [usize; 2], kernel: ArrayView2<T>) -> Option<Self> {
        if T::IS_COMPLEX {
            return None;
        }
        let (kh, kw) = kernel.dim();
        let a0 = Axis::new(n[0], kh)?;
        let a1 = Axis::new(n[1], kw)?;
        if a0.tiles.len() * a1.tiles.len() < 2 {
            return None;
        }
        // share of each tile transform that yields outputs: below ~0.55 the halo work
        // outweighs the cache gain (measured: 1024² with a 63² kernel on 512² tiles, 0.45,
        // is 15 % slower than one grid; 2048² with 63² and 95² kernels, 0.64, 25 % faster)
        let longest = |a: &Axis| a.tiles.iter().map(|t| t.1).max().unwrap_or(0);
        let eff = (longest(&a0) * longest(&a1)) as f64 / (a0.n_fft * a1.n_fft) as f64;
        if eff < MIN_EFFICIENCY {
            return None;
        }
        let (n0f, n1f) = (a0.n_fft, a1.n_fft);
        let w = n1f / 2 + 1;
        let rfwd = fft::real_forward_plan::<T::Real>(n1f);
        let rinv = fft::real_inverse_plan::<T::Real>(n1f);
        let cfwd = fft::complex_plan::<T::Real>(n0f, false);
        let cinv = fft::complex_plan::<T::Real>(n0f, true);
        let scale = real::<T::Real>(1.0 / (n0f * n1f) as f64);
        let spectrum = |flip: bool| -> Vec<C<T>> {
            let mut grid = Array2::<T::Real>::zeros((n0f, n1f));
            for ((a, b), &v) in kernel.indexed_iter() {
                let (i, j) = if flip {
                    (kh - 1 - a, kw - 1 - b)
                } else {
                    (a, b)
                };
                grid[[i, j]] = v.re();
            }
            let mut spec = vec![Complex::zero(); n0f * w];
            let mut scratch = rfwd.make_scratch_vec();
            for (row, s) in grid
                .as_slice_mut()
                .expect("fresh array")
                .chunks_mut(n1f)
                .zip(spec.chunks_mut(w))
            {
                rfwd.process_with_scratch(row, s, &mut scratch)
                    .expect("real FFT buffer sizes");
            }
            // column-major `[W][N0]`, the order the column stage reads it in
            let mut spec_t = vec![Complex::zero(); n0f * w];
            for (v, col) in spec_t.chunks_mut(n0f).enumerate() {
                for (u, c) in col.iter_mut().enumerate() {
                    *c = spec[u * w + v];
                }
                cfwd.process(col);
                for c in col.iter_mut() {
                    *c *= scale;
                }
            }
            spec_t
        };
        Some(OverlapSave {
            n,
            k: [kh, kw],
            spec_fwd: spectrum(false),
            spec_adj: spectrum(true),
            d_fwd: [kh / 2, kw / 2],
            d_adj: [kh - 1 - kh / 2, kw - 1 - kw / 2],
            axes: [a0, a1],
            w,
            rfwd,
            rinv,
            cfwd,
            cinv,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// `dst = A src` (`adjoint = false`) or `Aᵀ src`, then `then(i, j0, segment)` on every
    /// finished output row segment.
    pub(crate) fn run(
        &self,
        src: ArrayView2<T>,
        mut dst: ArrayViewMut2<T>,
        adjoint: bool,
        then: Option<SegmentEpilogue<T>>,
    ) {
        let src_owned;
        let src = if src.is_standard_layout() {
            src
        } else {
            src_owned = src.as_standard_layout().into_owned();
            src_owned.view()
        };
        if !dst.is_standard_layout() {
            let mut tmp = Array2::<T>::zeros(dst.dim());
            self.run(src, tmp.view_mut(), adjoint, then);
            dst.assign(&tmp);
            return;
        }
        let xs = src.as_slice().expect("standard layout");
        let out = OutPtr(dst.as_mut_ptr());
        let (spec_k, d) = if adjoint {
            (&self.spec_adj[..], self.d_adj)
        } else {
            (&self.spec_fwd[..], self.d_fwd)
        };
        let [n0, n1] = self.n;
        let [kh, kw] = self.k;
        let (n0f, n1f, w) = (self.axes[0].n_fft, self.axes[1].n_fft, self.w);
        let t1n = self.axes[1].tiles.len();
        let ntiles = self.axes[0].tiles.len() * t1n;
        let scratch_len = self
            .cfwd
            .get_inplace_scratch_len()
            .max(self.cinv.get_inplace_scratch_len());
        (0..ntiles).into_par_iter().for_each(|ti| {
            let mut bufs = self
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_else(|| TileBuffers {
                    grid: vec![T::Real::zero(); n0f * n1f],
                    spec: vec![C::<T>::zero(); n0f * w],
                    cols: vec![C::<T>::zero(); (n0f + COL_PAD) * COLS],
                    cscratch: vec![C::<T>::zero(); scratch_len],
                    fscratch: self.rfwd.make_scratch_vec(),
                    iscratch: self.rinv.make_scratch_vec(),
                });
            {
                let TileBuffers {
                    grid,
                    spec,
                    cols,
                    cscratch,
                    fscratch,
                    iscratch,
                } = &mut bufs;
                let optr = out;
                let (o0, b0) = self.axes[0].tiles[ti / t1n];
                let (o1, b1) = self.axes[1].tiles[ti % t1n];
                let (l0, l1) = (b0 + kh - 1, b1 + kw - 1);
                // input window: rows/cols s + t, t < l, zero outside the image
                let s0 = o0 as isize + d[0] as isize - (kh as isize - 1);
                let s1 = o1 as isize + d[1] as isize - (kw as isize - 1);
                let c_lo = (-s1).max(0) as usize;
                let c_hi = ((n1 as isize - s1).max(0) as usize).min(l1);
                for t0 in 0..l0 {
                    let row = &mut grid[t0 * n1f..(t0 + 1) * n1f];
                    row.fill(T::Real::zero());
                    let sr = s0 + t0 as isize;
                    if sr >= 0 && (sr as usize) < n0 && c_hi > c_lo {
                        let base = sr as usize * n1;
                        let from = (s1 + c_lo as isize) as usize;
                        let src_row = &xs[base + from..base + from + c_hi - c_lo];
                        for (g, &v) in row[c_lo..c_hi].iter_mut().zip(src_row) {
                            *g = v.re();
                        }
                    }
                    self.rfwd
                        .process_with_scratch(row, &mut spec[t0 * w..(t0 + 1) * w], fscratch)
                        .expect("real FFT buffer sizes");
                }
                spec[l0 * w..].fill(Complex::zero());
                // columns, a few at a time: FFT, multiply, inverse FFT; only the rows
                // kh−1 .. kh−1+b0 are needed afterwards
                let mut v0 = 0;
                while v0 < w {
                    let bw = COLS.min(w - v0);
                    let cs = n0f + COL_PAD;
                    for u in 0..l0 {
                        for b in 0..bw {
                            cols[b * cs + u] = spec[u * w + v0 + b];
                        }
                    }
                    for b in 0..bw {
                        let c = &mut cols[b * cs..b * cs + n0f];
                        c[l0..].fill(Complex::zero());
                        self.cfwd.process_with_scratch(c, cscratch);
                        let kc = &spec_k[(v0 + b) * n0f..(v0 + b + 1) * n0f];
                        for (z, &k) in c.iter_mut().zip(kc) {
                            *z *= k;
                        }
                        self.cinv.process_with_scratch(c, cscratch);
                    }
                    for u in kh - 1..kh - 1 + b0 {
                        for b in 0..bw {
                            spec[u * w + v0 + b] = cols[b * cs + u];
                        }
                    }
                    v0 += bw;
                }
                let even = n1f % 2 == 0;
                let rb = &mut grid[..n1f];
                for r in 0..b0 {
                    let srow = &mut spec[(r + kh - 1) * w..(r + kh) * w];
                    srow[0].im = T::Real::zero();
                    if even {
                        srow[w - 1].im = T::Real::zero();
                    }
                    self.rinv
                        .process_with_scratch(srow, rb, iscratch)
                        .expect("real FFT buffer sizes");
                    // SAFETY: row o0 + r, columns o1 .. o1 + b1 of the n0 × n1 output lie in
                    // this task's own tile; no other task touches them.
                    let seg = unsafe {
                        std::slice::from_raw_parts_mut(optr.0.add((o0 + r) * n1 + o1), b1)
                    };
                    for (o, &v) in seg.iter_mut().zip(&rb[kw - 1..kw - 1 + b1]) {
                        *o = T::from_real(v);
                    }
                    if let Some(f) = then {
                        f(o0 + r, o1, seg);
                    }
                }
            }
            self.pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(bufs);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_axis_without_gaps_or_empty_tiles() {
        for (n, k) in [
            (300usize, 31usize),
            (1024, 31),
            (1000, 48),
            (60_000, 31),
            (70_001, 96),
        ] {
            let a = Axis::new(n, k).unwrap();
            let bmax = a.n_fft + 1 - k;
            let mut next = 0;
            for &(start, len) in &a.tiles {
                assert_eq!(start, next, "n {n}: gap or overlap at {start}");
                assert!(
                    len > 0 && len <= bmax,
                    "n {n}: tile length {len} (max {bmax})"
                );
                next = start + len;
            }
            assert_eq!(next, n);
        }
        assert!(Axis::new(1000, 97).is_none());
    }
}
