//! Geometry of the FFT grid along one axis: how grid indices relate to input and output
//! pixels for each [`Boundary`] mode (zero padding, shift, half-sample reflection, crop),
//! and the gathers/scatters that move rows between images and the grid.

use super::Boundary;
use crate::boundary::reflect_index;
use crate::fft;

/// A run of index pairs `(p0 + t, s0 ± t)`, `t < len`, between a grid axis and an image axis.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    pub(super) p0: usize,
    pub(super) s0: usize,
    pub(super) len: usize,
    pub(super) rev: bool,
}

/// A partial map from grid indices to image (input or output) indices along one axis.
#[derive(Debug, Clone)]
pub(super) struct Relation {
    /// grid index → image index.
    pub(super) map: Vec<Option<usize>>,
    /// the same map as runs, for fast row gathers/scatters.
    pub(super) segs: Vec<Seg>,
    /// image index → grid indices that map to it.
    pub(super) inv: Vec<Vec<usize>>,
}

impl Relation {
    fn new(map: Vec<Option<usize>>, n_img: usize) -> Self {
        let mut segs: Vec<Seg> = Vec::new();
        let mut inv = vec![Vec::new(); n_img];
        for (p, s) in map.iter().enumerate() {
            let Some(s) = *s else { continue };
            inv[s].push(p);
            if let Some(last) = segs.last_mut() {
                if last.p0 + last.len == p {
                    if last.len == 1 && s == last.s0 + 1 {
                        last.len = 2;
                        continue;
                    }
                    if last.len == 1 && s + 1 == last.s0 {
                        last.len = 2;
                        last.rev = true;
                        continue;
                    }
                    if last.len > 1 && !last.rev && s == last.s0 + last.len {
                        last.len += 1;
                        continue;
                    }
                    if last.len > 1 && last.rev && s + last.len == last.s0 {
                        last.len += 1;
                        continue;
                    }
                }
            }
            segs.push(Seg {
                p0: p,
                s0: s,
                len: 1,
                rev: false,
            });
        }
        Relation { map, segs, inv }
    }
}

/// `grid[p] = f(img[s])` for every pair of the relation (other entries untouched).
#[inline]
pub(super) fn gather<A: Copy, B>(grid: &mut [B], img: &[A], segs: &[Seg], f: impl Fn(A) -> B) {
    for s in segs {
        let dst = &mut grid[s.p0..s.p0 + s.len];
        if s.rev {
            let src = &img[s.s0 + 1 - s.len..=s.s0];
            for (d, &v) in dst.iter_mut().zip(src.iter().rev()) {
                *d = f(v);
            }
        } else {
            let src = &img[s.s0..s.s0 + s.len];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = f(v);
            }
        }
    }
}

/// `img[s] += f(grid[p])` for every pair of the relation.
#[inline]
pub(super) fn scatter_add<A: Copy, B>(
    img: &mut [B],
    grid: &[A],
    segs: &[Seg],
    f: impl Fn(&mut B, A),
) {
    for s in segs {
        let src = &grid[s.p0..s.p0 + s.len];
        if s.rev {
            let dst = &mut img[s.s0 + 1 - s.len..=s.s0];
            for (d, &v) in dst.iter_mut().rev().zip(src) {
                f(d, v);
            }
        } else {
            let dst = &mut img[s.s0..s.s0 + s.len];
            for (d, &v) in dst.iter_mut().zip(src) {
                f(d, v);
            }
        }
    }
}

/// Geometry of one axis: FFT length and the grid ↔ input / output relations.
#[derive(Debug, Clone)]
pub(super) struct AxisGeom {
    pub(super) n_out: usize,
    pub(super) len: usize,
    pub(super) input: Relation,
    pub(super) output: Relation,
}

impl AxisGeom {
    pub(super) fn new(mode: Boundary, n: usize, k: usize, even: bool) -> Self {
        let c = k / 2;
        let min_len = match mode {
            Boundary::Circular => n,
            Boundary::Same => n + c,
            Boundary::Full | Boundary::Reflect => n + k - 1,
            Boundary::Valid => n,
        };
        let len = match mode {
            Boundary::Circular => n,
            _ if even => fft::good_real_fft_len(min_len),
            _ => fft::good_fft_len(min_len),
        };
        let n_out = match mode {
            Boundary::Full => n + k - 1,
            Boundary::Valid => n + 1 - k,
            _ => n,
        };
        let mut imap = vec![None; len];
        let mut omap = vec![None; len];
        match mode {
            Boundary::Circular | Boundary::Same | Boundary::Valid => {
                for (p, m) in imap.iter_mut().enumerate().take(n) {
                    *m = Some(p);
                }
            }
            Boundary::Full => {
                for (p, m) in imap.iter_mut().enumerate().skip(c).take(n) {
                    *m = Some(p - c);
                }
            }
            Boundary::Reflect => {
                for (p, m) in imap.iter_mut().enumerate().take(n + c) {
                    *m = Some(reflect_index(p as isize, n));
                }
                let before = k - 1 - c;
                for t in 1..=before {
                    imap[len - t] = Some(reflect_index(-(t as isize), n));
                }
            }
        }
        let off = if mode == Boundary::Valid {
            k - 1 - c
        } else {
            0
        };
        for i in 0..n_out {
            omap[i + off] = Some(i);
        }
        AxisGeom {
            n_out,
            len,
            input: Relation::new(imap, n),
            output: Relation::new(omap, n_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_segments_cover_the_map() {
        let n = 5;
        let map: Vec<Option<usize>> = (-7..12)
            .map(|i| Some(reflect_index(i, n)))
            .chain([None, Some(2), Some(3), None])
            .collect();
        let r = Relation::new(map.clone(), n);
        let mut grid = vec![0usize; map.len()];
        let img: Vec<usize> = (100..100 + n).collect();
        gather(&mut grid, &img, &r.segs, |v| v);
        for (p, m) in map.iter().enumerate() {
            assert_eq!(grid[p], m.map_or(0, |s| 100 + s));
        }
        let mut back = vec![0usize; n];
        let ones = vec![1usize; map.len()];
        scatter_add(&mut back, &ones, &r.segs, |d, v| *d += v);
        for (s, b) in back.iter().enumerate() {
            assert_eq!(*b, map.iter().filter(|m| **m == Some(s)).count());
            assert_eq!(r.inv[s].len(), *b);
        }
    }

    #[test]
    fn reflect_index_matches_scipy_pattern() {
        // d c b a | a b c d | d c b a  with n = 4
        let got: Vec<usize> = (-4..8).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(reflect_index(-3, 1), 0);
    }
}
