//! Chunked data-parallel loops over contiguous buffers (crate-internal).
//!
//! The element-wise passes of the iterative solvers (PDHG's updates, finite differences,
//! block soft thresholding) are memory-bound loops over megapixel arrays; these helpers cut a
//! flat index range into chunks of [`CHUNK`] elements and run them on the rayon pool when
//! the buffer holds at least [`MIN_PAR`] elements and the pool has more than one thread.
//! Sums are formed per chunk and added in chunk order, whether the chunks ran in parallel or
//! not, so results do not depend on the number of threads.

use rayon::prelude::*;
use std::ops::{Add, Range};

/// Elements per chunk: 16 Ki (128 KiB of `f64`), large enough to amortise a task, small
/// enough to balance the pool and to stay in the L2 cache.
pub(crate) const CHUNK: usize = 1 << 14;

/// Buffers shorter than this run serially (a task costs more than the loop).
pub(crate) const MIN_PAR: usize = 1 << 16;

fn parallel(n: usize) -> bool {
    n >= MIN_PAR && rayon::current_num_threads() > 1
}

/// Calls `f(range, &mut out[range])` over chunks covering `out` (in parallel when large).
pub(crate) fn for_each_chunk<T: Send>(out: &mut [T], f: impl Fn(Range<usize>, &mut [T]) + Sync) {
    let n = out.len();
    if !parallel(n) {
        f(0..n, out);
        return;
    }
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| {
        let s = i * CHUNK;
        f(s..s + c.len(), c)
    });
}

/// As [`for_each_chunk`], returning the sum of `f`'s per-chunk results, added in chunk order.
pub(crate) fn for_each_chunk_sum<T: Send, S: Send + Copy + Add<Output = S>>(
    out: &mut [T],
    zero: S,
    f: impl Fn(Range<usize>, &mut [T]) -> S + Sync,
) -> S {
    let n = out.len();
    let g = |(i, c): (usize, &mut [T])| {
        let s = i * CHUNK;
        f(s..s + c.len(), c)
    };
    let partials: Vec<S> = if parallel(n) {
        out.par_chunks_mut(CHUNK).enumerate().map(g).collect()
    } else {
        out.chunks_mut(CHUNK).enumerate().map(g).collect()
    };
    partials.into_iter().fold(zero, |a, b| a + b)
}

/// `Σ f(range)` over chunks covering `0..n`, added in chunk order.
pub(crate) fn sum_chunks<S: Send + Copy + Add<Output = S>>(
    n: usize,
    zero: S,
    f: impl Fn(Range<usize>) -> S + Sync,
) -> S {
    let g = |i: usize| f(i * CHUNK..((i + 1) * CHUNK).min(n));
    let nc = n.div_ceil(CHUNK);
    let partials: Vec<S> = if parallel(n) {
        (0..nc).into_par_iter().map(g).collect()
    } else {
        (0..nc).map(g).collect()
    };
    partials.into_iter().fold(zero, |a, b| a + b)
}

/// `Σ f(t)` over tasks `t = 0..n`, added in task order; in parallel when the tasks together
/// touch at least [`MIN_PAR`] elements (`work`).
pub(crate) fn sum_tasks<S: Send + Copy + Add<Output = S>>(
    n: usize,
    work: usize,
    zero: S,
    f: impl Fn(usize) -> S + Sync,
) -> S {
    let partials: Vec<S> = if parallel(work) {
        (0..n).into_par_iter().map(&f).collect()
    } else {
        (0..n).map(&f).collect()
    };
    partials.into_iter().fold(zero, |a, b| a + b)
}

/// Calls `f(t)` for tasks `t = 0..n`, in parallel when they touch at least [`MIN_PAR`]
/// elements (`work`).
pub(crate) fn for_each_task(n: usize, work: usize, f: impl Fn(usize) + Sync) {
    if parallel(work) {
        (0..n).into_par_iter().for_each(&f);
    } else {
        (0..n).for_each(f);
    }
}

/// A raw pointer that may cross threads, for tasks that write provably disjoint elements of
/// one buffer (each use states why the writes are disjoint).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub(crate) *mut T);
// SAFETY: the pointer is only dereferenced by tasks writing disjoint elements of a buffer that
// is exclusively borrowed for their whole duration (see each use).
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so that closures capture the whole `Send + Sync` wrapper
    /// rather than its raw-pointer field).
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// Splits `range` into the maximal sub-ranges on which the position within blocks of `b`
/// elements (`p = i mod b`) stays in one region, regions being cut at the sorted positions
/// `cuts` (region `j` is `cuts[j−1] ≤ p < cuts[j]`); calls `f(sub_range, j)` for each.
pub(crate) fn block_segments(
    range: Range<usize>,
    b: usize,
    cuts: &[usize],
    mut f: impl FnMut(Range<usize>, usize),
) {
    let mut i = range.start;
    while i < range.end {
        let q = i / b;
        let p = i - q * b;
        let (j, next) = cuts
            .iter()
            .enumerate()
            .find(|(_, &c)| p < c)
            .map_or((cuts.len(), b), |(j, &c)| (j, c));
        let e = (q * b + next).min(range.end);
        f(i..e, j);
        i = e;
    }
}

/// Row-major split of `shape` around `axis`: `(outer, len, inner)` with `outer` the product of
/// the dimensions before `axis`, `len = shape[axis]` and `inner` the product after it. In a
/// standard-layout array, element `k` of the lane `(o, i)` along `axis` sits at
/// `(o·len + k)·inner + i`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_and_sums_are_exact_and_ordered() {
        for n in [0usize, 5, CHUNK, MIN_PAR + 7, 3 * MIN_PAR + 1] {
            let mut v = vec![0u64; n];
            let s = for_each_chunk_sum(&mut v, 0u64, |r, c| {
                for (k, x) in r.clone().zip(c.iter_mut()) {
                    *x = k as u64;
                }
                r.map(|k| k as u64).sum()
            });
            assert!(v.iter().enumerate().all(|(k, &x)| x == k as u64));
            let want = (n as u64) * (n as u64).saturating_sub(1) / 2;
            assert_eq!(s, want);
            assert_eq!(sum_chunks(n, 0u64, |r| r.map(|k| k as u64).sum()), want);
            let mut w = vec![1u8; n];
            for_each_chunk(&mut w, |_, c| c.iter_mut().for_each(|x| *x = 2));
            assert!(w.iter().all(|&x| x == 2));
            assert_eq!(sum_tasks(n, n, 0u64, |t| t as u64), want);
        }
    }

    #[test]
    fn block_segments_match_brute_force() {
        for (b, cuts) in [
            (10usize, vec![3usize, 7]),
            (6, vec![2, 2]),
            (5, vec![4]),
            (4, vec![]),
        ] {
            for (s, e) in [(0usize, 37usize), (4, 5), (9, 31), (12, 12)] {
                let mut got = Vec::new();
                block_segments(s..e, b, &cuts, |r, j| got.extend(r.map(|i| (i, j))));
                let want: Vec<(usize, usize)> = (s..e)
                    .map(|i| (i, cuts.iter().filter(|&&c| c <= i % b).count()))
                    .collect();
                assert_eq!(got, want, "b {b} cuts {cuts:?} range {s}..{e}");
            }
        }
    }
}
