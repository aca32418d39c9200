//! Index maps for extending a signal beyond its edges — the one implementation every module
//! (convolution boundaries, the starlet transform, reflect-padded Fourier filters, tiled
//! network inference) uses.
//!
//! Two symmetric extensions exist and both are in use, for good reasons; they differ in
//! whether the edge sample is repeated. For a signal `a b c d` (`n = 4`):
//!
//! | function | extension | period | also called |
//! |---|---|---|---|
//! | [`reflect_index`] | `d c b a \| a b c d \| d c b a` (half-sample symmetric, edge repeated) | `2n` | scipy.ndimage `reflect`, numpy `symmetric`, DCT-II |
//! | [`mirror_index`] | `d c b \| a b c d \| c b a` (whole-sample symmetric, edge not repeated) | `2(n − 1)` | scipy.ndimage `mirror`, numpy `reflect`, the starlet transform's border rule |
//!
//! Both accept any `i` (negative or ≥ n) and repeat the extension periodically.
//!
//! ```
//! use sparseinv_solvers::boundary::{mirror_index, reflect_index};
//! let r: Vec<usize> = (-3..7).map(|i| reflect_index(i, 4)).collect();
//! assert_eq!(r, [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
//! let m: Vec<usize> = (-3..7).map(|i| mirror_index(i, 4)).collect();
//! assert_eq!(m, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
//! ```

/// Half-sample symmetric index of `i` in `0..n`: `d c b a | a b c d | d c b a`, period `2n`
/// (scipy.ndimage's `reflect`, numpy's `symmetric`). `n` must be ≥ 1.
#[inline]
pub fn reflect_index(i: isize, n: usize) -> usize {
    debug_assert!(n >= 1);
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Whole-sample symmetric index of `i` in `0..n`: `d c b | a b c d | c b a`, period
/// `2(n − 1)` (scipy.ndimage's `mirror`, numpy's `reflect`); `0` when `n = 1`. `n` must be ≥ 1.
#[inline]
pub fn mirror_index(i: isize, n: usize) -> usize {
    debug_assert!(n >= 1);
    if n == 1 {
        return 0;
    }
    let p = 2 * (n as isize - 1);
    let r = i.rem_euclid(p);
    (if r < n as isize { r } else { p - r }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: build the extension explicitly and read it.
    #[test]
    fn match_explicit_extensions() {
        for n in 1..7usize {
            let sig: Vec<usize> = (0..n).collect();
            // half-sample: one period is sig + reversed sig
            let mut per: Vec<usize> = sig.clone();
            per.extend(sig.iter().rev());
            for i in -20isize..20 {
                let want = per[i.rem_euclid(2 * n as isize) as usize];
                assert_eq!(reflect_index(i, n), want, "reflect n={n} i={i}");
            }
            if n > 1 {
                // whole-sample: sig + reversed interior
                let mut per: Vec<usize> = sig.clone();
                per.extend(sig[1..n - 1].iter().rev());
                for i in -20isize..20 {
                    let want = per[i.rem_euclid(per.len() as isize) as usize];
                    assert_eq!(mirror_index(i, n), want, "mirror n={n} i={i}");
                }
            } else {
                assert_eq!(mirror_index(-5, 1), 0);
            }
        }
    }
}
