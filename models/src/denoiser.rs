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
//! **Tiling.** Images larger than the tile run through the project's one tiler,
//! [`sparseinv_solvers::tiling`], configured from [`Tiling`]: every network input is at most
//! `tile × tile` pixels and neighbouring inputs share `overlap` pixels, cross-faded over that
//! band by the tiler's raised cosine (`blend = ⌊overlap/2⌋`, `halo = overlap mod 2`, cores of
//! `tile − 2⌈overlap/2⌉` pixels, [`CoreLayout::WidenBorders`] so that border tiles use the full
//! `tile` too); the weights sum to one at every pixel. (This is the same cross-fade
//! `sin²(π/2 · (i + ½)/overlap)` as before the shared tiler, and the same tile positions when
//! the image is covered exactly.) Tiles and small images are padded at the bottom/right by
//! whole-sample symmetric reflection (`… x₂ x₁ | x₀ x₁ x₂ … x_{n−1} | x_{n−2} …`, the tiler's
//! alignment for dynamic graphs, [`sparseinv_solvers::tiling::pad_bottom_right`] for fixed
//! ones) up to the required size and cropped after. Tiles run one at a time (ONNX Runtime
//! parallelises inside each run).

use crate::error::{Error, Result};
use crate::model::{OnnxModel, SessionOptions};
use ndarray::{s, Array3, Array4, ArrayD, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, IxDyn};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::stats::percentile_sorted;
use sparseinv_solvers::tiling::{pad_bottom_right, CoreLayout, TileError, Tiler};
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
                let lo = percentile_sorted(&v, low).unwrap_or(0.0);
                let hi = percentile_sorted(&v, high).unwrap_or(0.0);
                let scale = if hi > lo { hi - lo } else { 1.0 };
                Ok((lo, scale))
            }
        }
    }
}

/// Tile size and overlap (pixels) for tiled inference: the user-facing form of a
/// [`Tiler`] (see [`Tiling::tiler`] for the mapping).
///
/// For the [`OnnxDenoiser`]: `tile` is the largest network input side and `overlap` the
/// number of pixels neighbouring inputs share (`overlap + 1` when odd: the extra pixel is
/// halo), cross-faded over `2⌊overlap/2⌋` of them. For the
/// [`LearnedDeblur`](crate::LearnedDeblur): `tile` is the core each run keeps and `overlap`
/// the context (halo) added on every side, without cross-fade; see
/// [`LearnedDeblur::set_tiling`](crate::LearnedDeblur::set_tiling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side; images no larger than this in both axes run in one piece. Default 256.
    pub tile: usize,
    /// Overlap between neighbouring tiles (`2⌈overlap/2⌉ < tile` for the denoiser); default
    /// 32. Should exceed the network's effective receptive-field radius for seamless results.
    pub overlap: usize,
}

impl Tiling {
    /// The denoiser's tiler for network inputs of at most `tile` pixels per side (`tile`
    /// overrides [`Tiling::tile`] for graphs of fixed size): `blend = ⌊overlap/2⌋`,
    /// `halo = overlap mod 2`, cores of `tile − 2⌈overlap/2⌉` pixels with widened border cores
    /// ([`CoreLayout::WidenBorders`]), windows aligned to `multiple`, one tile in flight.
    pub fn tiler(&self, tile: usize, multiple: usize) -> Tiler {
        let ext = self.overlap.div_ceil(2);
        Tiler {
            tile: tile.saturating_sub(2 * ext).max(1),
            halo: self.overlap % 2,
            blend: self.overlap / 2,
            multiple,
            layout: CoreLayout::WidenBorders,
            max_in_flight: 1,
        }
    }
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
    /// Tiling for large images (when the graph's spatial size is fixed, `tile` is that size
    /// and the overlap is capped at half of it).
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
        if 2 * config.tiling.overlap.div_ceil(2) >= config.tiling.tile {
            return Err(p(
                "tiling",
                format!(
                    "need 2⌈overlap/2⌉ < tile, got tile {} overlap {}",
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
        self.tiler().plan((h, w)).len()
    }

    /// The tiler used for each image (see the [module documentation](self)).
    pub fn tiler(&self) -> Tiler {
        match self.fixed_hw {
            Some((fh, fw)) => {
                // the inputs must fit the fixed size; the overlap is capped at half of it
                let t = fh.min(fw);
                let mut ov = self.config.tiling.overlap.min(t / 2);
                if 2 * ov.div_ceil(2) >= t {
                    ov = 0;
                }
                Tiling {
                    tile: t,
                    overlap: ov,
                }
                .tiler(t, 1)
            }
            None => self
                .config
                .tiling
                .tiler(self.config.tiling.tile, self.config.multiple),
        }
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
        let (offset, scale) = match self.config.normalization {
            // fixed: no pass over the data
            Normalization::Affine { .. } => self.config.normalization.resolve(&[])?,
            Normalization::Percentiles { .. } => {
                let flat: Vec<f32> = x4.iter().copied().collect();
                self.config.normalization.resolve(&flat)?
            }
        };
        // the identity map (e.g. data already normalised by the caller) costs no copies
        let identity = offset == 0.0 && scale == 1.0;
        let sigma_u = (sigma / scale) as f32;
        let total = n * self.tiles_for(h, w);
        let mut done = 0;
        let mut outs = Vec::with_capacity(n);
        for b in 0..n {
            let xb = x4.index_axis(Axis(0), b);
            let mapped;
            let u = if identity {
                xb
            } else {
                mapped = xb.mapv(|v| ((v as f64 - offset) / scale) as f32);
                mapped.view()
            };
            let mut r = self.process(u, sigma_u, &mut |_| {
                done += 1;
                progress(done, total);
            })?;
            if !identity {
                r.mapv_inplace(|v| (v as f64 * scale + offset) as f32);
            }
            outs.push(r);
        }
        let out = match outs.len() {
            1 => outs.pop().expect("one image").insert_axis(Axis(0)),
            _ => {
                let views: Vec<_> = outs.iter().map(|r| r.view()).collect();
                ndarray::stack(Axis(0), &views).map_err(|e| Error::Runtime(e.to_string()))?
            }
        };
        debug_assert_eq!(out.dim(), (n, c, h, w));
        out.into_dyn()
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// Denoise one normalised image `[C, H, W]`.
    fn process(
        &self,
        u: ArrayView3<'_, f32>,
        sigma_u: f32,
        tick: &mut dyn FnMut(usize),
    ) -> Result<Array3<f32>> {
        let c = u.dim().0;
        let cin = c + self.noise_map as usize;
        let run = |win: ArrayViewD<'_, f32>| -> Result<ArrayD<f32>> {
            let (wh, ww) = (win.shape()[1], win.shape()[2]);
            // dynamic graphs: the tiler has aligned the window; fixed: pad to the fixed size
            let (ph, pw) = self.fixed_hw.unwrap_or((wh, ww));
            let padded;
            let win = if (ph, pw) != (wh, ww) {
                padded = pad_bottom_right(win, (ph, pw));
                padded.view()
            } else {
                win
            };
            let mut inp = Array4::<f32>::zeros((1, cin, ph, pw));
            inp.slice_mut(s![0, ..c, .., ..]).assign(&win);
            if self.noise_map {
                inp.slice_mut(s![0, c, .., ..]).fill(sigma_u);
            }
            let mut res = self.model.run(&[inp.view().into_dyn()])?;
            let o = res.swap_remove(0);
            if o.shape() != [1, c, ph, pw] {
                return Err(Error::Contract(format!(
                    "output `{}` has shape {:?} for an input of shape {:?}; a denoiser must \
                     return [1, {c}, {ph}, {pw}]",
                    self.model.outputs()[0].name,
                    o.shape(),
                    inp.shape()
                )));
            }
            if (ph, pw) == (wh, ww) {
                // the whole output: drop the batch axis without a copy
                return o
                    .into_shape_with_order(IxDyn(&[c, wh, ww]))
                    .map_err(|e| Error::Runtime(e.to_string()));
            }
            Ok(o.slice(s![0, .., ..wh, ..ww]).to_owned().into_dyn())
        };
        let out = self
            .tiler()
            .process(u.into_dyn(), run, |_, _| tick(1))
            .map_err(tile_error)?;
        out.into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| Error::Runtime(e.to_string()))
    }
}

/// The models' error for a tiler error (the tile function's own errors pass through).
pub(crate) fn tile_error(e: TileError<Error>) -> Error {
    match e {
        TileError::Process(e) => e,
        TileError::Params(m) => sparseinv_solvers::Error::param("tiling", m).into(),
        other => Error::Runtime(other.to_string()),
    }
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
    fn tiling_maps_onto_overlapping_cross_faded_windows() {
        // windows of 16 sharing 4 pixels: [0,16), [12,28), [24,40) on 40 rows
        let t = Tiling {
            tile: 16,
            overlap: 4,
        }
        .tiler(16, 8);
        let wins: Vec<(usize, usize)> = t.plan((40, 1)).iter().map(|t| t.win_y).collect();
        assert_eq!(wins, vec![(0, 16), (12, 28), (24, 40)]);
        // the tiler's raised cosine over the shared band is sin²(π/2 (k + ½)/overlap)
        for k in 0..4 {
            let w = sparseinv_solvers::tiling::blend_weight(12 + k, (14, 26), 40, t.blend);
            let a = std::f64::consts::FRAC_PI_2 * (k as f64 + 0.5) / 4.0;
            assert!((w - a.sin().powi(2)).abs() < 1e-12, "{k}: {w}");
        }
        // odd overlap: one pixel of halo, windows still at most `tile`
        let t = Tiling {
            tile: 16,
            overlap: 5,
        }
        .tiler(16, 1);
        assert_eq!((t.blend, t.halo), (2, 1));
        assert!(t
            .plan((100, 37))
            .iter()
            .all(|t| t.win_y.1 - t.win_y.0 <= 16 && t.win_x.1 - t.win_x.0 <= 16));
    }

    #[test]
    fn percentiles_match_numpy_definition() {
        // numpy.percentile([0..=10], 10) = 1.0, 90 → 9.0
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
