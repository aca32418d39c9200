//! A learned denoiser loaded from ONNX: the N,C,H,W float32 contract, an optional noise-level
//! map, explicit invertible normalisation and overlapping tiled inference.
//!
//! **Graph contract.** One float32 input `[N, C_in, H, W]` and one float32 output
//! `[N, C, H, W]`, where `C_in = C + 1` when the graph takes a noise-level map (DRUNet style:
//! the last input channel is filled with `σ` in normalised units) and `C_in = C` otherwise.
//! `N` is run as 1. Spatial sizes may be dynamic (then each run is padded to a multiple of
//! [`DenoiserConfig::multiple`], e.g. 8 for a U-Net with three 2× downsamplings) or fixed
//! (then the image is processed in tiles of exactly that size).
//!
//! **Normalisation.** Astronomical and scientific data are not in `[0, 1]`. The input is mapped
//! by `u = (x − offset) / scale`, the network sees `u` and `σ_u = σ / scale`, and its output
//! `û` is mapped back by `x̂ = scale · û + offset`. `offset` and `scale` are either given or
//! computed once per call from robust percentiles of the whole input (not per tile, so tiles
//! agree): `offset = P_low(x)`, `scale = P_high(x) − P_low(x)` (1 if that is 0).
//!
//! **Tiling.** Images larger than the tile are split into overlapping tiles; each tile's result
//! is weighted by a separable window that rises as `sin²(π/2 · (i + ½)/overlap)` over the
//! first `overlap` pixels of a side shared with another tile (and falls symmetrically at the
//! other end; weight 1 at image borders and inside) and the weighted results are divided by
//! the summed weights. With an overlap of exactly `overlap` pixels the windows sum to one.
//! Tiles and small images are padded at the bottom/right by symmetric reflection
//! (`… x₂ x₁ | x₀ x₁ x₂ … x_{n−1} | x_{n−2} …`) up to the required size and cropped after.

use crate::error::{Error, Result};
use crate::model::{OnnxModel, SessionOptions};
use ndarray::{s, Array3, Array4, ArrayD, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, IxDyn};
use sparseinv_solvers::denoise::Denoiser;
use std::path::Path;

/// How data are mapped to the network's units: `u = (x − offset) / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// Fixed `offset` and `scale` (`scale > 0`). `Affine { offset: 0.0, scale: 1.0 }` passes
    /// data through unchanged.
    Affine {
        /// Subtracted first.
        offset: f64,
        /// Divided by next (> 0).
        scale: f64,
    },
    /// `offset = P_low(x)`, `scale = P_high(x) − P_low(x)` over the whole input (percentiles
    /// in `[0, 100]` with linear interpolation between order statistics, as numpy's default),
    /// so that the bulk of the data lands in `[0, 1]`.
    Percentiles {
        /// Lower percentile, e.g. 0.5.
        low: f64,
        /// Upper percentile, e.g. 99.5 (> `low`).
        high: f64,
    },
}

impl Default for Normalization {
    /// Percentiles 0.1 and 99.9.
    fn default() -> Self {
        Normalization::Percentiles {
            low: 0.1,
            high: 99.9,
        }
    }
}

impl Normalization {
    /// The `(offset, scale)` this normalisation uses for the data `x` (non-empty, finite).
    pub fn resolve(&self, x: &[f32]) -> Result<(f64, f64)> {
        match *self {
            Normalization::Affine { offset, scale } => {
                if !(scale > 0.0 && scale.is_finite() && offset.is_finite()) {
                    return Err(sparseinv_solvers::Error::param(
                        "normalization",
                        format!(
                            "need finite offset and scale > 0, got offset {offset}, scale {scale}"
                        ),
                    )
                    .into());
                }
                Ok((offset, scale))
            }
            Normalization::Percentiles { low, high } => {
                if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                    return Err(sparseinv_solvers::Error::param(
                        "normalization",
                        format!(
                            "percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}"
                        ),
                    )
                    .into());
                }
                let mut v: Vec<f64> = x.iter().map(|&a| a as f64).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                let lo = percentile_sorted(&v, low);
                let hi = percentile_sorted(&v, high);
                let scale = if hi > lo { hi - lo } else { 1.0 };
                Ok((lo, scale))
            }
        }
    }
}

/// Percentile `p` ∈ [0, 100] of sorted data, linear interpolation (numpy's default).
fn percentile_sorted(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    if i + 1 < v.len() {
        v[i] + f * (v[i + 1] - v[i])
    } else {
        v[v.len() - 1]
    }
}

/// Tile size and overlap (pixels) for tiled inference on dynamic-size graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side; images no larger than this in both axes run in one piece. Default 256.
    pub tile: usize,
    /// Overlap between neighbouring tiles (< `tile`); default 32. Should exceed the network's
    /// effective receptive-field radius for seamless results.
    pub overlap: usize,
}

impl Default for Tiling {
    fn default() -> Self {
        Tiling {
            tile: 256,
            overlap: 32,
        }
    }
}

/// Configuration of an [`OnnxDenoiser`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenoiserConfig {
    /// Whether the graph takes a noise-level map as its last input channel. `None`: decided
    /// from the graph when its channel counts are fixed (`C_in = C_out + 1` means yes).
    pub noise_map: Option<bool>,
    /// Data normalisation (default: percentiles 0.1 / 99.9).
    pub normalization: Normalization,
    /// Tiling for large images (ignored when the graph's spatial size is fixed: then tiles
    /// have that size and this overlap).
    pub tiling: Tiling,
    /// Spatial sizes fed to a dynamic-size graph are padded up to a multiple of this (e.g. 8
    /// for three 2× downsamplings). Default 8.
    pub multiple: usize,
}

impl Default for DenoiserConfig {
    fn default() -> Self {
        DenoiserConfig {
            noise_map: None,
            normalization: Normalization::default(),
            tiling: Tiling::default(),
            multiple: 8,
        }
    }
}

/// A denoiser network in an ONNX graph, usable wherever a
/// [`Denoiser`] is (plug-and-play, RED).
///
/// Accepted data shapes: `[H, W]` (one channel), `[C, H, W]` or `[N, C, H, W]`; `σ` is the
/// noise standard deviation in the data's units (converted by the normalisation).
#[derive(Debug)]
pub struct OnnxDenoiser {
    model: OnnxModel,
    config: DenoiserConfig,
    noise_map: bool,
    in_channels: Option<usize>,
    fixed_hw: Option<(usize, usize)>,
}

impl OnnxDenoiser {
    /// Load the graph at `path` and check it follows the contract of the
    /// [module documentation](self).
    pub fn load(
        path: impl AsRef<Path>,
        options: SessionOptions,
        config: DenoiserConfig,
    ) -> Result<Self> {
        Self::new(OnnxModel::load(path, options)?, config)
    }

    /// Wrap a loaded model, checking the contract and the configuration.
    pub fn new(model: OnnxModel, config: DenoiserConfig) -> Result<Self> {
        let p = |n: &str, r: String| -> Error { sparseinv_solvers::Error::param(n, r).into() };
        if config.multiple == 0 {
            return Err(p("multiple", "must be at least 1".into()));
        }
        if config.tiling.tile == 0 || config.tiling.overlap >= config.tiling.tile {
            return Err(p(
                "tiling",
                format!(
                    "need tile >= 1 and overlap < tile, got tile {} overlap {}",
                    config.tiling.tile, config.tiling.overlap
                ),
            ));
        }
        let (inp, out) = match (model.inputs(), model.outputs()) {
            ([i], [o, ..]) => (i.clone(), o.clone()),
            (i, o) => {
                return Err(Error::Contract(format!(
                    "a denoiser graph has exactly one input and at least one output; this one has {} and {}",
                    i.len(),
                    o.len()
                )))
            }
        };
        if inp.shape.len() != 4 || out.shape.len() != 4 || !inp.is_f32 || !out.is_f32 {
            return Err(Error::Contract(format!(
                "a denoiser graph maps a Float32 [N, C, H, W] tensor to a Float32 [N, C, H, W] \
                 tensor; input `{}` is {} {}, output `{}` is {} {}",
                inp.name,
                inp.dtype,
                inp.shape_string(),
                out.name,
                out.dtype,
                out.shape_string()
            )));
        }
        let noise_map = match (config.noise_map, inp.shape[1], out.shape[1]) {
            (Some(m), Some(ci), Some(co)) => {
                if ci != co + m as usize {
                    return Err(Error::Contract(format!(
                        "input `{}` has {ci} channels and output `{}` {co}: {}",
                        inp.name,
                        out.name,
                        if m {
                            "with a noise-level map the input needs one channel more"
                        } else {
                            "without a noise-level map they must be equal"
                        }
                    )));
                }
                m
            }
            (Some(m), _, _) => m,
            (None, Some(ci), Some(co)) if ci == co + 1 => true,
            (None, Some(ci), Some(co)) if ci == co => false,
            (None, ci, co) => {
                return Err(Error::Contract(format!(
                    "cannot tell whether the graph takes a noise-level map (input channels {ci:?}, \
                     output channels {co:?}): set DenoiserConfig::noise_map"
                )))
            }
        };
        let fixed_hw = match (inp.shape[2], inp.shape[3]) {
            (Some(h), Some(w)) => Some((h, w)),
            _ => None,
        };
        Ok(OnnxDenoiser {
            in_channels: inp.shape[1],
            model,
            config,
            noise_map,
            fixed_hw,
        })
    }

    /// The underlying model.
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }
    /// The configuration.
    pub fn config(&self) -> &DenoiserConfig {
        &self.config
    }
    /// Whether the graph takes a noise-level map channel.
    pub fn takes_noise_map(&self) -> bool {
        self.noise_map
    }

    /// Number of network runs (tiles) needed for one image of `h × w` pixels.
    pub fn tiles_for(&self, h: usize, w: usize) -> usize {
        let (th, tw, ov) = self.tile_geometry(h, w);
        tile_starts(h, th, ov).len() * tile_starts(w, tw, ov).len()
    }

    /// `D(x, σ)` on float32 data, calling `progress(done, total)` after each network run.
    pub fn denoise_with_progress(
        &self,
        x: ArrayViewD<'_, f32>,
        sigma: f64,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ArrayD<f32>> {
        if !(sigma >= 0.0 && sigma.is_finite()) {
            return Err(sparseinv_solvers::Error::param(
                "sigma",
                format!("must be finite and >= 0, got {sigma}"),
            )
            .into());
        }
        let shape = x.shape().to_vec();
        let x4: ArrayViewD<f32> = match shape.len() {
            2 => x.view().insert_axis(Axis(0)).insert_axis(Axis(0)),
            3 => x.view().insert_axis(Axis(0)),
            4 => x.view(),
            _ => {
                return Err(sparseinv_solvers::Error::param(
                    "image",
                    format!(
                    "a denoiser takes [H, W], [C, H, W] or [N, C, H, W] data, got shape {shape:?}"
                ),
                )
                .into())
            }
        };
        let x4 = x4
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let (n, c, h, w) = x4.dim();
        if x4.is_empty() {
            return Err(sparseinv_solvers::Error::Empty {
                what: "image".into(),
            }
            .into());
        }
        if let Some(ci) = self.in_channels {
            let want = ci - self.noise_map as usize;
            if c != want {
                return Err(Error::Input {
                    name: self.model.inputs()[0].name.clone(),
                    expected: format!(
                        "{want} image channel(s){}",
                        if self.noise_map {
                            " (+1 noise-level map)"
                        } else {
                            ""
                        }
                    ),
                    got: format!("data of shape {shape:?} with {c} channel(s)"),
                });
            }
        }
        sparseinv_solvers::error::check_finite("image", x4.iter())?;
        let flat: Vec<f32> = x4.iter().copied().collect();
        let (offset, scale) = self.config.normalization.resolve(&flat)?;
        let sigma_u = (sigma / scale) as f32;
        let total = n * self.tiles_for(h, w);
        let mut done = 0;
        let mut out = Array4::<f32>::zeros((n, c, h, w));
        for b in 0..n {
            let u = x4
                .index_axis(Axis(0), b)
                .mapv(|v| ((v as f64 - offset) / scale) as f32);
            let r = self.process(u.view(), sigma_u, &mut |_| {
                done += 1;
                progress(done, total);
            })?;
            out.index_axis_mut(Axis(0), b)
                .assign(&r.mapv(|v| (v as f64 * scale + offset) as f32));
        }
        out.into_dyn()
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// Tile height, width and overlap for an `h × w` image.
    fn tile_geometry(&self, h: usize, w: usize) -> (usize, usize, usize) {
        match self.fixed_hw {
            Some((th, tw)) => (th, tw, self.config.tiling.overlap.min(th.min(tw) - 1)),
            None => {
                let t = self.config.tiling.tile;
                (t.min(h), t.min(w), self.config.tiling.overlap)
            }
        }
    }

    /// Denoise one normalised image `[C, H, W]`.
    fn process(
        &self,
        u: ArrayView3<'_, f32>,
        sigma_u: f32,
        tick: &mut dyn FnMut(usize),
    ) -> Result<Array3<f32>> {
        let (c, h, w) = u.dim();
        let (th, tw, ov) = self.tile_geometry(h, w);
        let (ph, pw) = match self.fixed_hw {
            Some(hw) => hw,
            None => (
                round_up(th, self.config.multiple),
                round_up(tw, self.config.multiple),
            ),
        };
        let rows = tile_starts(h, th, ov);
        let cols = tile_starts(w, tw, ov);
        let single = rows.len() == 1 && cols.len() == 1;
        let mut acc = Array3::<f32>::zeros((c, h, w));
        let mut wsum = ndarray::Array2::<f32>::zeros((h, w));
        let cin = c + self.noise_map as usize;
        for &r0 in &rows {
            for &c0 in &cols {
                let eh = th.min(h - r0);
                let ew = tw.min(w - c0);
                // Reflect-padded network input.
                let mut inp = Array4::<f32>::zeros((1, cin, ph, pw));
                for ch in 0..c {
                    for i in 0..ph {
                        let si = r0 + reflect(i, eh);
                        for j in 0..pw {
                            inp[[0, ch, i, j]] = u[[ch, si, c0 + reflect(j, ew)]];
                        }
                    }
                }
                if self.noise_map {
                    inp.slice_mut(s![0, c, .., ..]).fill(sigma_u);
                }
                let res = self.model.run(&[inp.view().into_dyn()])?;
                let o = &res[0];
                if o.shape() != [1, c, ph, pw] {
                    return Err(Error::Contract(format!(
                        "output `{}` has shape {:?} for an input of shape {:?}; a denoiser must \
                         return [1, {c}, {ph}, {pw}]",
                        self.model.outputs()[0].name,
                        o.shape(),
                        inp.shape()
                    )));
                }
                let wr = window(eh, ov, r0 > 0, r0 + eh < h);
                let wc = window(ew, ov, c0 > 0, c0 + ew < w);
                for i in 0..eh {
                    for j in 0..ew {
                        let wt = if single { 1.0 } else { wr[i] * wc[j] };
                        wsum[[r0 + i, c0 + j]] += wt;
                        for ch in 0..c {
                            acc[[ch, r0 + i, c0 + j]] += wt * o[[0, ch, i, j]];
                        }
                    }
                }
                tick(1);
            }
        }
        for ch in 0..c {
            let mut a = acc.index_axis_mut(Axis(0), ch);
            a /= &wsum;
        }
        Ok(acc)
    }
}

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m).max(1) * m
}

/// Symmetric reflection of index `i` into `0..n` (`n − 1` is the mirror, not repeated).
fn reflect(i: usize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let p = 2 * (n - 1);
    let j = i % p;
    if j < n {
        j
    } else {
        p - j
    }
}

/// Start offsets of tiles of size `t` with overlap `ov` covering `0..n` (the last tile ends
/// at `n`).
fn tile_starts(n: usize, t: usize, ov: usize) -> Vec<usize> {
    if t >= n {
        return vec![0];
    }
    let step = (t - ov).max(1);
    let mut v = Vec::new();
    let mut s0 = 0;
    while s0 + t < n {
        v.push(s0);
        s0 += step;
    }
    v.push(n - t);
    v
}

/// 1-d blending window of length `len`: `sin²` ramps over `ov` pixels at the sides that meet
/// another tile.
fn window(len: usize, ov: usize, ramp_in: bool, ramp_out: bool) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let mut wt = 1.0f64;
            if ov > 0 {
                let ramp = |k: usize| {
                    if k < ov {
                        let a = std::f64::consts::FRAC_PI_2 * (k as f64 + 0.5) / ov as f64;
                        a.sin().powi(2)
                    } else {
                        1.0
                    }
                };
                if ramp_in {
                    wt *= ramp(i);
                }
                if ramp_out {
                    wt *= ramp(len - 1 - i);
                }
            }
            wt as f32
        })
        .collect()
}

impl Denoiser<f32> for OnnxDenoiser {
    fn denoise_into(
        &self,
        x: ArrayViewD<'_, f32>,
        sigma: f32,
        mut out: ArrayViewMutD<'_, f32>,
    ) -> sparseinv_solvers::Result<()> {
        sparseinv_solvers::op::check_shape("denoiser output", x.shape(), out.shape())?;
        let r = self.denoise_with_progress(x, sigma as f64, &mut |_, _| {})?;
        out.assign(&r);
        Ok(())
    }
}

impl Denoiser<f64> for OnnxDenoiser {
    /// Runs in float32 (the graph's type): `x` is rounded to f32 and the result widened.
    fn denoise_into(
        &self,
        x: ArrayViewD<'_, f64>,
        sigma: f64,
        mut out: ArrayViewMutD<'_, f64>,
    ) -> sparseinv_solvers::Result<()> {
        sparseinv_solvers::op::check_shape("denoiser output", x.shape(), out.shape())?;
        let x32 = x.mapv(|v| v as f32);
        let r = self.denoise_with_progress(x32.view(), sigma, &mut |_, _| {})?;
        out.zip_mut_with(&r, |o, &v| *o = v as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_and_tiles() {
        let r: Vec<usize> = (0..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(r, vec![0, 1, 2, 3, 2, 1, 0, 1]);
        assert_eq!(reflect(5, 1), 0);
        assert_eq!(tile_starts(10, 16, 4), vec![0]);
        assert_eq!(tile_starts(40, 16, 4), vec![0, 12, 24]);
        assert_eq!(tile_starts(30, 16, 4), vec![0, 12, 14]);
        for s in [tile_starts(100, 16, 4), tile_starts(17, 16, 0)] {
            assert_eq!(s[0], 0);
        }
    }

    #[test]
    fn windows_partition_unity_on_exact_overlap() {
        // Tiles of 16 with overlap 4 at starts 0 and 12: the weights of the shared 4 pixels sum to 1.
        let a = window(16, 4, false, true);
        let b = window(16, 4, true, false);
        for k in 0..4 {
            assert!((a[12 + k] + b[k] - 1.0).abs() < 1e-6);
        }
        assert!(a[..12].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn percentiles_match_numpy_definition() {
        // numpy.percentile([0..=10], 25) = 2.5, 90 → 9.0
        let v: Vec<f64> = (0..=10).map(|i| i as f64).collect();
        assert!((percentile_sorted(&v, 25.0) - 2.5).abs() < 1e-12);
        assert!((percentile_sorted(&v, 90.0) - 9.0).abs() < 1e-12);
        let x: Vec<f32> = (0..=10).map(|i| i as f32).rev().collect();
        let (o, s) = Normalization::Percentiles {
            low: 10.0,
            high: 90.0,
        }
        .resolve(&x)
        .unwrap();
        assert!((o - 1.0).abs() < 1e-12 && (s - 8.0).abs() < 1e-12);
        assert!(Normalization::Affine {
            offset: 0.0,
            scale: 0.0
        }
        .resolve(&x)
        .is_err());
        assert!(Normalization::Percentiles {
            low: 50.0,
            high: 10.0
        }
        .resolve(&x)
        .is_err());
    }
}
