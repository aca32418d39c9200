//! Process large images in overlapping tiles, in parallel, under a memory bound.
//!
//! # Geometry
//! The image is cut into a grid of *cores* of `tile × tile` pixels (the last row/column of
//! cores may be smaller). Around each core, a blending band of `blend` pixels on each side
//! (inside the image) is where neighbouring tiles overlap, and beyond it a *halo* of `halo`
//! pixels gives the processing function the context it needs, so that its output over the
//! core and band is unaffected by the cut. Each call of the function therefore sees a window of
//! at most `(tile + 2·blend + 2·halo)²` pixels, clipped to the image.
//!
//! # Blending
//! Along each axis, tile *i* gets the weight `w_i(x)`: 1 inside its core away from the
//! edges, rising over `[s_i − b, s_i + b)` as the raised cosine
//! `r(t) = ½(1 − cos(π (t + b) / (2b)))` with `t = x − s_i`, and falling symmetrically at its
//! other edge, where `s_i` is the core's first pixel and `b = blend`. Since
//! `r(t) + r(−t) = 1`, neighbouring weights sum to one; at the image borders the weight
//! stays 1. The 2-D weight is the product of the two 1-D weights, so the weights of all
//! tiles sum to exactly one at every pixel and the blended result equals the untiled one
//! whenever the function is local with support no larger than the halo.
//!
//! # Memory
//! At most `max_in_flight` tiles (default: the number of rayon threads) are processed at a
//! time; their weighted results are accumulated into the output before the next batch
//! starts. Peak memory is the input, the output and `max_in_flight` tile windows with their
//! results and the function's own work space.

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

/// Errors of tiled processing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileError<E> {
    /// Invalid parameters.
    #[error("invalid tiling parameters: {0}")]
    Params(String),
    /// The processing function returned an array of another shape than its input.
    #[error("the tile function returned shape {got:?} for an input of shape {expected:?}")]
    Shape {
        /// The input tile's shape.
        expected: (usize, usize),
        /// The returned shape.
        got: (usize, usize),
    },
    /// The processing function failed.
    #[error("{0}")]
    Process(E),
}

/// Parameters of [`process_tiled`].
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

    fn validate<E>(&self) -> Result<(), TileError<E>> {
        if self.tile == 0 {
            return Err(TileError::Params("tile size must be at least 1".into()));
        }
        if 2 * self.blend > self.tile {
            return Err(TileError::Params(format!(
                "blend band {} is more than half the tile size {}",
                self.blend, self.tile
            )));
        }
        Ok(())
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

/// The tiles [`process_tiled`] uses for an image of shape `(ny, nx)`.
pub fn plan_tiles(shape: (usize, usize), p: &TileParams) -> Vec<Tile> {
    let (ny, nx) = shape;
    let cuts = |n: usize| -> Vec<(usize, usize)> {
        (0..n.div_ceil(p.tile))
            .map(|i| (i * p.tile, ((i + 1) * p.tile).min(n)))
            .collect()
    };
    let ext = p.blend + p.halo;
    let mut tiles = Vec::new();
    for &(y0, y1) in &cuts(ny) {
        for &(x0, x1) in &cuts(nx) {
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

/// 1-D blending weight of the core `[c0, c1)` at position `x`, for an axis of length `n`.
fn weight_1d(x: usize, (c0, c1): (usize, usize), n: usize, b: usize) -> f64 {
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

/// Apply `f` to `image` tile by tile (see the module documentation) and blend the results.
///
/// `f` receives a window of the image and must return an array of the same shape; it runs in
/// parallel on up to `max_in_flight` tiles. Images no larger than one tile are passed to `f`
/// whole. Returns the blended image, of the input's shape.
///
/// ```
/// use ndarray::Array2;
/// use sparseinv::tiling::{process_tiled, TileParams};
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

/// [`process_tiled`] that calls `progress(done, total)` after each batch of tiles.
pub fn process_tiled_with_progress<F, E, P>(
    image: ArrayView2<'_, f64>,
    params: &TileParams,
    f: F,
    progress: P,
) -> Result<Array2<f64>, TileError<E>>
where
    F: Fn(ArrayView2<'_, f64>) -> Result<Array2<f64>, E> + Sync,
    E: Send,
    P: Fn(usize, usize),
{
    params.validate()?;
    let (ny, nx) = image.dim();
    let run = |win: ArrayView2<'_, f64>| -> Result<Array2<f64>, TileError<E>> {
        let out = f(win).map_err(TileError::Process)?;
        if out.dim() != win.dim() {
            return Err(TileError::Shape {
                expected: win.dim(),
                got: out.dim(),
            });
        }
        Ok(out)
    };
    if ny <= params.tile && nx <= params.tile {
        let out = run(image)?;
        progress(1, 1);
        return Ok(out);
    }
    let tiles = plan_tiles((ny, nx), params);
    let batch = if params.max_in_flight == 0 {
        rayon::current_num_threads().max(1)
    } else {
        params.max_in_flight
    };
    let b = params.blend;
    let mut out = Array2::<f64>::zeros((ny, nx));
    let mut done = 0;
    for chunk in tiles.chunks(batch) {
        let results: Vec<Result<Array2<f64>, TileError<E>>> = chunk
            .par_iter()
            .map(|t| run(image.slice(s![t.win_y.0..t.win_y.1, t.win_x.0..t.win_x.1])))
            .collect();
        for (t, r) in chunk.iter().zip(results) {
            let r = r?;
            // region with non-zero weight: core ± blend, clipped
            let ry = (t.core_y.0.saturating_sub(b), (t.core_y.1 + b).min(ny));
            let rx = (t.core_x.0.saturating_sub(b), (t.core_x.1 + b).min(nx));
            let wx: Vec<f64> = (rx.0..rx.1)
                .map(|x| weight_1d(x, t.core_x, nx, b))
                .collect();
            for y in ry.0..ry.1 {
                let wy = weight_1d(y, t.core_y, ny, b);
                if wy == 0.0 {
                    continue;
                }
                let src = r.row(y - t.win_y.0);
                let mut dst = out.row_mut(y);
                for (i, x) in (rx.0..rx.1).enumerate() {
                    dst[x] += wy * wx[i] * src[x - t.win_x.0];
                }
            }
        }
        done += chunk.len();
        progress(done, tiles.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_partition_unity() {
        for (n, tile, b) in [(100, 32, 8), (97, 10, 5), (64, 64, 0), (50, 7, 3)] {
            let p = TileParams {
                tile,
                halo: 3,
                blend: b,
                max_in_flight: 1,
            };
            let tiles = plan_tiles((1, n), &p);
            for x in 0..n {
                let s: f64 = tiles.iter().map(|t| weight_1d(x, t.core_x, n, b)).sum();
                assert!(
                    (s - 1.0).abs() < 1e-12,
                    "n={n} tile={tile} b={b} x={x}: {s}"
                );
            }
        }
    }

    #[test]
    fn identity_is_exact_and_shape_errors_are_reported() {
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
    }
}
