//! Process large images in overlapping tiles, in parallel, under a memory bound — the one
//! tiler of the project (deconvolution pipelines, the ONNX denoiser, the learned deblur).
//!
//! # Geometry: cores, blend band, halo
//! Tiling acts on the **last two axes** of an array (rows, columns); leading axes (channels,
//! batch) are handed to the function whole, so `[H, W]`, `[C, H, W]` and `[N, C, H, W]` data
//! all tile the same way. Each spatial axis of length `n` is cut into consecutive *cores*
//! `[s_i, s_{i+1})` that partition `0..n` (see [`CoreLayout`] for where the cuts go). Two
//! separate margins are added around each core:
//!
//! - **blend** `b`: the half-width of the band `[s_i − b, s_i + b)` around each cut where the
//!   results of the two neighbouring tiles are cross-faded (below). Every interior core must be
//!   at least `2b` long so that bands do not overlap.
//! - **halo** `h`: context beyond the blend band. The function sees it, its output there is
//!   discarded (weight 0). For a local operation of radius `r` (a convolution with a kernel of
//!   half-width `r`, a network with receptive-field radius `r`) the blended result equals the
//!   untiled one exactly when `h ≥ r`.
//!
//! The window handed to the function is therefore the core extended by `b + h` pixels on each
//! side, clipped to the image: at most `tile + 2(b + h)` pixels per axis (`tile` the core size;
//! with [`CoreLayout::WidenBorders`] at most `tile + 2(b + h)` as well, the border cores being
//! widened by the context they do not need).
//!
//! # Blending
//! Along an axis, the tile with core `[c₀, c₁)` has the weight `w(x) = lo(x) · hi(x)` at pixel
//! `x` (evaluated at the pixel centre `x + ½`), with `lo = 1` at the image start (`c₀ = 0`) and
//! otherwise `lo(x) = r(x + ½ − c₀)`, `hi = 1` at the image end and otherwise
//! `hi(x) = r(c₁ − x − ½)`, where the raised cosine
//! `r(t) = ½(1 − cos(π (t + b) / (2b)))` for `|t| < b`, `0` below, `1` above.
//! Since `r(t) + r(−t) = 1`, the weights of the two tiles meeting at a cut sum to one across
//! its band, and the tile weight is 1 elsewhere in its core; the 2-D weight is the product of
//! the two 1-D weights, so the weights of all tiles sum to exactly one at every pixel
//! ([`blend_weight`]). With `b = 0` the weight is the indicator of the core (hard seams).
//!
//! # Alignment
//! Networks that down-sample `k` times need input sides that are multiples of `2^k`. With
//! [`Tiler::multiple`]` = m > 1` every window is padded at the bottom and right, by whole-sample
//! symmetric reflection ([`mirror_index`], numpy's `reflect`), up to the next multiple of `m`
//! before the call, and the function's output is cropped back to the window. The function
//! must return the padded spatial shape.
//!
//! # Memory and parallelism
//! At most [`Tiler::max_in_flight`] tiles (default: the number of rayon threads) are processed
//! at a time, in parallel with rayon; their weighted results are accumulated into the output
//! (in tile order, so results do not depend on the thread count) before the next batch starts.
//! Peak memory is the input, the output and `max_in_flight` windows with their results and the
//! function's own work space. A progress callback is called after each tile is accumulated.
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use sparseinv_solvers::tiling::{CoreLayout, Tiler};
//! // a [C, H, W] array, tiled over H and W, windows padded to multiples of 8
//! let x = ArrayD::from_shape_fn(IxDyn(&[3, 50, 70]), |i| (i[0] + i[1] * i[2]) as f32);
//! let t = Tiler { tile: 16, halo: 2, blend: 4, multiple: 8, layout: CoreLayout::Uniform,
//!                 max_in_flight: 2 };
//! let y = t.process(x.view(), |w| {
//!     assert!(w.shape()[1] % 8 == 0 && w.shape()[2] % 8 == 0);
//!     Ok::<_, ()>(w.mapv(|v| 2.0 * v))
//! }, |_, _| {}).unwrap();
//! assert_eq!(y.shape(), x.shape());
//! assert!((y[[2, 40, 33]] - 2.0 * x[[2, 40, 33]]).abs() < 1e-3);
//! ```

use crate::boundary::mirror_index;
use crate::scalar::{real, Real};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2, IxDyn, Slice};
use rayon::prelude::*;

/// Errors of tiled processing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileError<E> {
    /// Invalid parameters or input.
    #[error("invalid tiling parameters: {0}")]
    Params(String),
    /// The processing function returned an array of another shape than expected.
    #[error("the tile function returned shape {got:?}, expected {expected:?}")]
    Shape {
        /// The expected shape (`?` where any size is accepted is written as the first
        /// tile's size).
        expected: Vec<usize>,
        /// The returned shape.
        got: Vec<usize>,
    },
    /// The processing function failed.
    #[error("{0}")]
    Process(E),
}

/// Where the cuts between cores go along an axis of length `n` (core size `tile`,
/// `e = blend + halo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoreLayout {
    /// Cores `[i·tile, (i+1)·tile)`, the last one shorter; one core when `n ≤ tile`.
    /// Windows are up to `tile + 2e` wide.
    #[default]
    Uniform,
    /// The first and last cores are widened by `e` (they need no context on their image-border
    /// side), so that **every** window is at most `tile + 2e` wide: one core when
    /// `n ≤ tile + 2e`, otherwise cuts at `tile + e + i·tile` and a last core of at most
    /// `tile + e`. For functions with a fixed or bounded input size (networks).
    WidenBorders,
}

/// Parameters of the simple 2-D interface [`process_tiled`] (uniform cores, no alignment);
/// [`Tiler`] is the full configuration (`Tiler::from(params)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileParams {
    /// Core size in pixels (≥ 1). An image no larger than `tile` on both axes is processed
    /// in one call, without tiling.
    pub tile: usize,
    /// Context pixels around each blended tile (for deconvolution: at least the PSF support).
    pub halo: usize,
    /// Half-width of the blending band between neighbouring cores (≤ `tile / 2`).
    pub blend: usize,
    /// Tiles processed at the same time; 0 means the number of rayon threads.
    pub max_in_flight: usize,
}

impl TileParams {
    /// Parameters for an operation with a PSF of shape `psf_shape` (rows, cols): the halo is
    /// the PSF's full support `max(rows, cols)` (no smaller than the PSF, as deconvolution
    /// couples pixels beyond the PSF radius), the blend band is `min(halo / 2, tile / 4)`.
    pub fn for_psf(tile: usize, psf_shape: (usize, usize)) -> Self {
        let halo = psf_shape.0.max(psf_shape.1);
        TileParams {
            tile,
            halo,
            blend: (halo / 2).min(tile / 4),
            max_in_flight: 0,
        }
    }
}

/// The full tiler configuration; see the [module documentation](self) for the geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiler {
    /// Core size in pixels (≥ 1, ≥ `2·blend`).
    pub tile: usize,
    /// Context pixels beyond the blend band, seen by the function and discarded.
    pub halo: usize,
    /// Half-width of the raised-cosine cross-fade band around each cut.
    pub blend: usize,
    /// Windows are padded (bottom/right, whole-sample reflection) to multiples of this (≥ 1;
    /// 1 = no padding).
    pub multiple: usize,
    /// Where the cuts go.
    pub layout: CoreLayout,
    /// Tiles processed at the same time; 0 means the number of rayon threads.
    pub max_in_flight: usize,
}

impl From<TileParams> for Tiler {
    fn from(p: TileParams) -> Self {
        Tiler {
            tile: p.tile,
            halo: p.halo,
            blend: p.blend,
            multiple: 1,
            layout: CoreLayout::Uniform,
            max_in_flight: p.max_in_flight,
        }
    }
}

/// One tile of the decomposition: its core and the window handed to the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Core rows `[y0, y1)`.
    pub core_y: (usize, usize),
    /// Core columns `[x0, x1)`.
    pub core_x: (usize, usize),
    /// Window rows `[y0, y1)` (core ± blend ± halo, clipped to the image).
    pub win_y: (usize, usize),
    /// Window columns `[x0, x1)`.
    pub win_x: (usize, usize),
}

impl Tiler {
    /// Check the parameters: `tile ≥ 1`, `2·blend ≤ tile`, `multiple ≥ 1`.
    pub fn validate(&self) -> Result<(), String> {
        if self.tile == 0 {
            return Err("tile size must be at least 1".into());
        }
        if 2 * self.blend > self.tile {
            return Err(format!(
                "blend band {} is more than half the tile size {}",
                self.blend, self.tile
            ));
        }
        if self.multiple == 0 {
            return Err("the alignment multiple must be at least 1".into());
        }
        Ok(())
    }

    /// The cores `[s_i, s_{i+1})` along an axis of length `n` (see [`CoreLayout`]).
    pub fn cores(&self, n: usize) -> Vec<(usize, usize)> {
        let t = self.tile.max(1);
        let e = self.blend + self.halo;
        let mut cuts = vec![0];
        match self.layout {
            CoreLayout::Uniform => {
                let mut s = t;
                while s < n {
                    cuts.push(s);
                    s += t;
                }
            }
            CoreLayout::WidenBorders => {
                if n > t + 2 * e {
                    let mut s = t + e;
                    // the last core may be up to t + e long
                    while n - s > t + e {
                        cuts.push(s);
                        s += t;
                    }
                    cuts.push(s);
                }
            }
        }
        cuts.push(n);
        cuts.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The tiles for an image of `(rows, cols)` pixels, row-major.
    pub fn plan(&self, shape: (usize, usize)) -> Vec<Tile> {
        let (ny, nx) = shape;
        let ext = self.blend + self.halo;
        let (cy, cx) = (self.cores(ny), self.cores(nx));
        let mut tiles = Vec::with_capacity(cy.len() * cx.len());
        for &(y0, y1) in &cy {
            for &(x0, x1) in &cx {
                tiles.push(Tile {
                    core_y: (y0, y1),
                    core_x: (x0, x1),
                    win_y: (y0.saturating_sub(ext), (y1 + ext).min(ny)),
                    win_x: (x0.saturating_sub(ext), (x1 + ext).min(nx)),
                });
            }
        }
        tiles
    }

    /// Apply `f` to `x` tile by tile over its last two axes and blend the results (see the
    /// [module documentation](self)), calling `progress(done, total)` after each tile.
    ///
    /// `f` receives a window `[lead…, wh, ww]` (padded to multiples of
    /// [`multiple`](Self::multiple)) and returns `[lead_out…, wh, ww]`: the spatial sizes must
    /// be those of its input, the leading axes may differ from the input's (e.g. a network
    /// mapping 2 channels to 8) but must be the same for every tile. The result has shape
    /// `[lead_out…, rows, cols]`. Errors: [`TileError::Params`] for invalid parameters or an
    /// input of rank < 2 or an empty spatial axis, [`TileError::Shape`], and
    /// [`TileError::Process`] with the first failure of `f` (in tile order).
    pub fn process<T, F, E, P>(
        &self,
        x: ArrayViewD<'_, T>,
        f: F,
        mut progress: P,
    ) -> Result<ArrayD<T>, TileError<E>>
    where
        T: Real,
        F: Fn(ArrayViewD<'_, T>) -> Result<ArrayD<T>, E> + Sync,
        E: Send,
        P: FnMut(usize, usize),
    {
        self.validate().map_err(TileError::Params)?;
        let nd = x.ndim();
        if nd < 2 {
            return Err(TileError::Params(format!(
                "tiling needs an array with at least two axes, got shape {:?}",
                x.shape()
            )));
        }
        let (ny, nx) = (x.shape()[nd - 2], x.shape()[nd - 1]);
        if ny == 0 || nx == 0 {
            return Err(TileError::Params(format!(
                "empty image of shape {:?}",
                x.shape()
            )));
        }
        let m = self.multiple;
        let run = |t: &Tile| -> Result<ArrayD<T>, TileError<E>> {
            let win = x.slice_each_axis(|ad| {
                if ad.axis.index() == nd - 2 {
                    Slice::from(t.win_y.0..t.win_y.1)
                } else if ad.axis.index() == nd - 1 {
                    Slice::from(t.win_x.0..t.win_x.1)
                } else {
                    Slice::from(..)
                }
            });
            let (wh, ww) = (t.win_y.1 - t.win_y.0, t.win_x.1 - t.win_x.0);
            let (ph, pw) = (wh.div_ceil(m) * m, ww.div_ceil(m) * m);
            let out = if (ph, pw) == (wh, ww) {
                f(win.view())
            } else {
                f(pad_bottom_right(win.view(), (ph, pw)).view())
            }
            .map_err(TileError::Process)?;
            let od = out.ndim();
            if od < 2 || out.shape()[od - 2..] != [ph, pw] {
                return Err(TileError::Shape {
                    expected: [&win.shape()[..nd - 2], &[ph, pw][..]].concat(),
                    got: out.shape().to_vec(),
                });
            }
            if (ph, pw) == (wh, ww) {
                return Ok(out);
            }
            Ok(out
                .slice_each_axis(|ad| {
                    if ad.axis.index() == od - 2 {
                        Slice::from(0..wh)
                    } else if ad.axis.index() == od - 1 {
                        Slice::from(0..ww)
                    } else {
                        Slice::from(..)
                    }
                })
                .to_owned())
        };
        let tiles = self.plan((ny, nx));
        let total = tiles.len();
        if total == 1 {
            let out = run(&tiles[0])?;
            progress(1, 1);
            return Ok(out);
        }
        let batch = if self.max_in_flight == 0 {
            rayon::current_num_threads().max(1)
        } else {
            self.max_in_flight
        };
        let b = self.blend;
        let mut out: Option<(Vec<usize>, ArrayD<T>)> = None;
        let mut done = 0;
        for chunk in tiles.chunks(batch) {
            let results: Vec<Result<ArrayD<T>, TileError<E>>> = if chunk.len() == 1 {
                vec![run(&chunk[0])]
            } else {
                chunk.par_iter().map(&run).collect()
            };
            for (t, r) in chunk.iter().zip(results) {
                let r = r?;
                let od = r.ndim();
                let lead = r.shape()[..od - 2].to_vec();
                let (lead0, acc) = out.get_or_insert_with(|| {
                    let mut shape = lead.clone();
                    shape.extend([ny, nx]);
                    (lead.clone(), ArrayD::zeros(IxDyn(&shape)))
                });
                if *lead0 != lead {
                    return Err(TileError::Shape {
                        expected: [&lead0[..], &[t.win_y.1 - t.win_y.0, t.win_x.1 - t.win_x.0]]
                            .concat(),
                        got: r.shape().to_vec(),
                    });
                }
                accumulate(acc, &r, t, (ny, nx), b);
                done += 1;
                progress(done, total);
            }
        }
        Ok(out.expect("at least two tiles were processed").1)
    }
}

/// Add `w · r` over the region where the tile's weight is non-zero (core ± blend, clipped).
fn accumulate<T: Real>(
    acc: &mut ArrayD<T>,
    r: &ArrayD<T>,
    t: &Tile,
    (ny, nx): (usize, usize),
    b: usize,
) {
    let od = r.ndim();
    let lead: usize = r.shape()[..od - 2].iter().product();
    let (wh, ww) = (r.shape()[od - 2], r.shape()[od - 1]);
    let acc3 = acc
        .view_mut()
        .into_shape_with_order((lead, ny, nx))
        .expect("the accumulator is contiguous");
    let r = r.as_standard_layout();
    let r3 = r
        .view()
        .into_shape_with_order((lead, wh, ww))
        .expect("a standard-layout array reshapes");
    let mut acc3 = acc3;
    let ry = (t.core_y.0.saturating_sub(b), (t.core_y.1 + b).min(ny));
    let rx = (t.core_x.0.saturating_sub(b), (t.core_x.1 + b).min(nx));
    let wx: Vec<T> = (rx.0..rx.1)
        .map(|x| real::<T>(blend_weight(x, t.core_x, nx, b)))
        .collect();
    for y in ry.0..ry.1 {
        let wy = blend_weight(y, t.core_y, ny, b);
        if wy == 0.0 {
            continue;
        }
        let wy = real::<T>(wy);
        for l in 0..lead {
            let src = r3.index_axis(Axis(0), l);
            let src = src.row(y - t.win_y.0);
            let mut dst = acc3.index_axis_mut(Axis(0), l);
            let mut dst = dst.row_mut(y);
            for (i, x) in (rx.0..rx.1).enumerate() {
                dst[x] += wy * wx[i] * src[x - t.win_x.0];
            }
        }
    }
}

/// The 1-D blending weight at pixel `x` of the tile whose core is `[c0, c1)`, on an axis of
/// length `n` with blend half-width `b` (the formula of the [module documentation](self)).
/// Summed over the cores of any [`Tiler::cores`] partition whose interior cores are at least
/// `2b` long, it is 1 at every pixel.
pub fn blend_weight(x: usize, (c0, c1): (usize, usize), n: usize, b: usize) -> f64 {
    if b == 0 {
        return if x >= c0 && x < c1 { 1.0 } else { 0.0 };
    }
    let r = |t: f64| -> f64 {
        // raised cosine from 0 at t = -b to 1 at t = +b; t is measured at pixel centres
        let u = ((t + b as f64) / (2.0 * b as f64)).clamp(0.0, 1.0);
        0.5 * (1.0 - (std::f64::consts::PI * u).cos())
    };
    let xf = x as f64 + 0.5;
    let lo = if c0 == 0 { 1.0 } else { r(xf - c0 as f64) };
    let hi = if c1 >= n { 1.0 } else { r(c1 as f64 - xf) };
    lo * hi
}

/// `x` padded at the bottom and right of its last two axes to `(rows, cols)` (each at least
/// the current size) by whole-sample symmetric reflection (`… c b | a b c d | c b a …`,
/// numpy's `reflect`, [`mirror_index`]; periodic when the pad exceeds the side).
pub fn pad_bottom_right<T: Clone>(x: ArrayViewD<'_, T>, (rows, cols): (usize, usize)) -> ArrayD<T> {
    let nd = x.ndim();
    let (h, w) = (x.shape()[nd - 2], x.shape()[nd - 1]);
    let mut shape = x.shape().to_vec();
    shape[nd - 2] = rows.max(h);
    shape[nd - 1] = cols.max(w);
    ArrayD::from_shape_fn(IxDyn(&shape), |mut idx| {
        idx[nd - 2] = mirror_index(idx[nd - 2] as isize, h);
        idx[nd - 1] = mirror_index(idx[nd - 1] as isize, w);
        x[idx].clone()
    })
}

/// The tiles [`process_tiled`] uses for an image of shape `(ny, nx)`.
pub fn plan_tiles(shape: (usize, usize), p: &TileParams) -> Vec<Tile> {
    Tiler::from(*p).plan(shape)
}

/// Apply `f` to a 2-D `f64` image tile by tile (uniform cores, see the
/// [module documentation](self)) and blend the results.
///
/// `f` receives a window of the image and must return an array of the same shape; it runs in
/// parallel on up to `max_in_flight` tiles. Images no larger than one tile are passed to `f`
/// whole. Returns the blended image, of the input's shape.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv_solvers::tiling::{process_tiled, TileParams};
/// let img = Array2::from_shape_fn((100, 90), |(y, x)| (y * x) as f64);
/// let p = TileParams { tile: 32, halo: 2, blend: 4, max_in_flight: 2 };
/// let out = process_tiled(img.view(), &p, |t| Ok::<_, ()>(t.mapv(|v| 2.0 * v))).unwrap();
/// assert!((out[[50, 40]] - 4000.0).abs() < 1e-9);
/// ```
pub fn process_tiled<F, E>(
    image: ArrayView2<'_, f64>,
    params: &TileParams,
    f: F,
) -> Result<Array2<f64>, TileError<E>>
where
    F: Fn(ArrayView2<'_, f64>) -> Result<Array2<f64>, E> + Sync,
    E: Send,
{
    process_tiled_with_progress(image, params, f, |_, _| {})
}

/// [`process_tiled`] that calls `progress(done, total)` after each tile.
pub fn process_tiled_with_progress<F, E, P>(
    image: ArrayView2<'_, f64>,
    params: &TileParams,
    f: F,
    progress: P,
) -> Result<Array2<f64>, TileError<E>>
where
    F: Fn(ArrayView2<'_, f64>) -> Result<Array2<f64>, E> + Sync,
    E: Send,
    P: FnMut(usize, usize),
{
    let out = Tiler::from(*params).process(
        image.into_dyn(),
        |w| {
            let w2 = w
                .into_dimensionality::<Ix2>()
                .expect("a window of a 2-D image is 2-D");
            f(w2).map(|r| r.into_dyn())
        },
        progress,
    )?;
    if out.ndim() != 2 {
        return Err(TileError::Shape {
            expected: image.shape().to_vec(),
            got: out.shape().to_vec(),
        });
    }
    Ok(out.into_dimensionality::<Ix2>().expect("checked to be 2-D"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn tiler(tile: usize, halo: usize, blend: usize, layout: CoreLayout) -> Tiler {
        Tiler {
            tile,
            halo,
            blend,
            multiple: 1,
            layout,
            max_in_flight: 3,
        }
    }

    #[test]
    fn weights_partition_unity() {
        for layout in [CoreLayout::Uniform, CoreLayout::WidenBorders] {
            for (n, tile, b, h) in [
                (100, 32, 8, 3),
                (97, 10, 5, 0),
                (64, 64, 0, 1),
                (50, 7, 3, 2),
                (91, 10, 5, 4),
                (1, 4, 2, 0),
                (23, 2, 1, 0),
            ] {
                let t = tiler(tile, h, b, layout);
                let cores = t.cores(n);
                // a partition of 0..n
                assert_eq!(cores[0].0, 0);
                assert_eq!(cores.last().unwrap().1, n);
                for w in cores.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                }
                for x in 0..n {
                    let s: f64 = cores.iter().map(|&c| blend_weight(x, c, n, b)).sum();
                    assert!(
                        (s - 1.0).abs() < 1e-12,
                        "{layout:?} n={n} tile={tile} b={b} x={x}: {s}"
                    );
                }
                // every window within the bound
                let bound = tile + 2 * (b + h);
                for tl in t.plan((n, n)) {
                    assert!(tl.win_x.1 - tl.win_x.0 <= bound, "{tl:?}");
                }
            }
        }
    }

    #[test]
    fn widened_layout_reproduces_overlapping_windows() {
        // windows of 16 sharing 4 pixels on 40: [0,16), [12,28), [24,40)
        let t = tiler(12, 0, 2, CoreLayout::WidenBorders);
        let wins: Vec<(usize, usize)> = t.plan((40, 1)).iter().map(|t| t.win_y).collect();
        assert_eq!(wins, vec![(0, 16), (12, 28), (24, 40)]);
        assert_eq!(t.cores(16), vec![(0, 16)]);
        assert_eq!(t.cores(17), vec![(0, 14), (14, 17)]);
    }

    /// 3×3 box filter with zero outside the array: a local operation of radius 1.
    fn box3(a: ArrayView2<f64>) -> Array2<f64> {
        let (h, w) = a.dim();
        Array2::from_shape_fn((h, w), |(i, j)| {
            let mut s = 0.0;
            for di in -1i64..=1 {
                for dj in -1i64..=1 {
                    let (y, x) = (i as i64 + di, j as i64 + dj);
                    if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                        s += a[[y as usize, x as usize]];
                    }
                }
            }
            s / 9.0
        })
    }

    #[test]
    fn local_filter_is_reproduced_through_tiles() {
        let img = Array2::from_shape_fn((67, 45), |(y, x)| {
            ((y * 31 + x * 17) % 13) as f64 + (0.1 * y as f64).sin()
        });
        let whole = box3(img.view());
        for layout in [CoreLayout::Uniform, CoreLayout::WidenBorders] {
            for (tile, halo, blend) in [(16, 1, 4), (10, 3, 0), (9, 1, 2)] {
                let t = Tiler {
                    tile,
                    halo,
                    blend,
                    multiple: 1,
                    layout,
                    max_in_flight: 0,
                };
                assert!(t.plan((67, 45)).len() > 4);
                let out = t
                    .process(
                        img.view().into_dyn(),
                        |w| {
                            let w = w.into_dimensionality::<Ix2>().unwrap();
                            Ok::<_, ()>(box3(w).into_dyn())
                        },
                        |_, _| {},
                    )
                    .unwrap();
                let err = (&out - &whole.view().into_dyn())
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(err < 1e-12, "{layout:?} {tile}/{halo}/{blend}: {err}");
            }
        }
        // halo 0 with blend 0: the window edges are wrong (zero outside the window)
        let t = tiler(16, 0, 0, CoreLayout::Uniform);
        let out = t
            .process(
                img.view().into_dyn(),
                |w| Ok::<_, ()>(box3(w.into_dimensionality::<Ix2>().unwrap()).into_dyn()),
                |_, _| {},
            )
            .unwrap();
        let err = (&out - &whole.view().into_dyn())
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err > 0.1, "{err}");
    }

    #[test]
    fn channels_alignment_progress_and_channel_change() {
        // [C, H, W] f32 with alignment to 8; the function maps 2 channels to 3 (sum, diff,
        // product with a constant) — pointwise, so the result is exact.
        let x =
            Array3::from_shape_fn((2, 37, 29), |(c, i, j)| (c * 100 + i * 3 + j) as f32).into_dyn();
        let t = Tiler {
            tile: 10,
            halo: 1,
            blend: 3,
            multiple: 8,
            layout: CoreLayout::WidenBorders,
            max_in_flight: 2,
        };
        let mut calls = Vec::new();
        let out = t
            .process(
                x.view(),
                |w| {
                    let (h, ww) = (w.shape()[1], w.shape()[2]);
                    if h % 8 != 0 || ww % 8 != 0 {
                        return Err(format!("unaligned {h}x{ww}"));
                    }
                    Ok(ArrayD::from_shape_fn(IxDyn(&[3, h, ww]), |i| {
                        let (a, b) = (w[[0, i[1], i[2]]], w[[1, i[1], i[2]]]);
                        [a + b, b - a, 0.5 * a][i[0]]
                    }))
                },
                |d, n| calls.push((d, n)),
            )
            .unwrap();
        assert_eq!(out.shape(), &[3, 37, 29]);
        let n = t.plan((37, 29)).len();
        assert!(n > 4);
        assert_eq!(calls, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());
        for ((c, i, j), v) in out
            .view()
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap()
            .indexed_iter()
        {
            let (a, b) = (x[[0, i, j]], x[[1, i, j]]);
            let want = [a + b, b - a, 0.5 * a][c];
            assert!(
                (v - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{c} {i} {j}"
            );
        }
    }

    #[test]
    fn padding_is_whole_sample_reflection() {
        // np.pad([[1,2,3],[4,5,6]], ((0,3),(0,2)), mode="reflect")
        let a = ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        let p = pad_bottom_right(a.view(), (5, 5));
        let want = ndarray::array![
            [1.0, 2.0, 3.0, 2.0, 1.0],
            [4.0, 5.0, 6.0, 5.0, 4.0],
            [1.0, 2.0, 3.0, 2.0, 1.0],
            [4.0, 5.0, 6.0, 5.0, 4.0],
            [1.0, 2.0, 3.0, 2.0, 1.0]
        ]
        .into_dyn();
        assert_eq!(p, want);
    }

    #[test]
    fn errors_for_bad_params_shapes_and_failures() {
        let img = Array2::from_shape_fn((70, 45), |(y, x)| (y as f64).sin() + x as f64);
        let p = TileParams {
            tile: 16,
            halo: 0,
            blend: 6,
            max_in_flight: 3,
        };
        let out = process_tiled(img.view(), &p, |t| Ok::<_, ()>(t.to_owned())).unwrap();
        for (a, b) in out.iter().zip(img.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
        let r = process_tiled(img.view(), &p, |_| Ok::<_, ()>(Array2::zeros((2, 2))));
        assert!(matches!(r, Err(TileError::Shape { .. })));
        let r = process_tiled(img.view(), &p, |_| Err::<Array2<f64>, _>("bad"));
        assert!(matches!(r, Err(TileError::Process("bad"))));
        let bad = TileParams { blend: 9, ..p };
        assert!(matches!(
            process_tiled(img.view(), &bad, |t| Ok::<_, ()>(t.to_owned())),
            Err(TileError::Params(_))
        ));
        let zero = TileParams { tile: 0, ..p };
        assert!(matches!(
            process_tiled(img.view(), &zero, |t| Ok::<_, ()>(t.to_owned())),
            Err(TileError::Params(_))
        ));
        let t = Tiler {
            multiple: 0,
            ..Tiler::from(p)
        };
        let id = |w: ArrayViewD<f64>| Ok::<_, ()>(w.to_owned());
        assert!(matches!(
            t.process(img.view().into_dyn(), id, |_, _| {}),
            Err(TileError::Params(_))
        ));
        let t = Tiler::from(p);
        let v = ndarray::Array1::<f64>::zeros(5).into_dyn();
        assert!(matches!(
            t.process(v.view(), id, |_, _| {}),
            Err(TileError::Params(_))
        ));
        let e = Array2::<f64>::zeros((0, 5)).into_dyn();
        assert!(matches!(
            t.process(e.view(), id, |_, _| {}),
            Err(TileError::Params(_))
        ));
        // leading axes that change between tiles
        let r = t.process(
            img.view().into_dyn(),
            |w| {
                let c = if w.shape()[0] > 20 { 2 } else { 1 };
                let mut s = vec![c];
                s.extend_from_slice(w.shape());
                Ok::<_, ()>(ArrayD::zeros(IxDyn(&s)))
            },
            |_, _| {},
        );
        assert!(matches!(r, Err(TileError::Shape { .. })), "{r:?}");
        // odd sizes and a single-pixel image
        let one = Array2::from_elem((1, 1), 3.0);
        let o = process_tiled(one.view(), &p, |t| Ok::<_, ()>(t.mapv(|v| v + 1.0))).unwrap();
        assert_eq!(o[[0, 0]], 4.0);
    }
}
