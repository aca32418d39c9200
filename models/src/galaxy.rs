//! The learned galaxy deconvolution network: a Tikhonov deconvolution cleaned by a U-Net
//! (after Akhaury et al. 2024, arXiv 2405.07842, with a plain U-Net in place of their Swin
//! U-Net and a noise-level normalisation instead of the peak one).
//!
//! **Contract.** For an image `y` (sky subtracted), a unit-sum PSF `h` and the noise level
//! `σ` of `y` (the library's robust estimate,
//! [`estimate_noise_sigma`](sparseinv_solvers::deconv::estimate_noise_sigma)):
//!
//! ```text
//! t = Tikhonov(y, h; Laplacian, weight μ, reflect boundary)     (Rust, FFTs)
//! x̂ = σ · N(t / σ)                                               (ONNX graph N)
//! ```
//!
//! The graph maps `[N, 1, H, W]` to `[N, 1, H, W]` (H, W multiples of
//! [`GalaxyModelInfo::multiple`], the tiler pads), and contains its own residual connection
//! (`N(u) = u + f(u)`). Dividing by `σ` instead of the image's peak keeps the absolute flux
//! recoverable exactly: the inverse map is a multiplication by the same `σ`.

use crate::denoiser::{DenoiserConfig, Normalization, OnnxDenoiser, Tiling};
use crate::error::{Error, Result};
use crate::model::{OnnxModel, SessionOptions};
use ndarray::{Array2, ArrayView2};
use std::path::Path;

/// What the sidecar JSON of a galaxy model says (the fields the pipeline needs).
#[derive(Debug, Clone, PartialEq)]
pub struct GalaxyModelInfo {
    /// Tikhonov weight `μ` of the input deconvolution (Laplacian regulariser).
    pub tikhonov_balance: f64,
    /// Spatial sizes are padded to a multiple of this.
    pub multiple: usize,
    /// PSF FWHM range of the training data, pixels.
    pub fwhm_px_range: (f64, f64),
    /// SNR range of the training data.
    pub snr_range: (f64, f64),
    /// Number of trainable parameters.
    pub parameters: usize,
}

impl GalaxyModelInfo {
    /// Parse the sidecar JSON (`tikhonov_balance`, `multiple`, `fwhm_px_range`, `snr_range`,
    /// `parameters`).
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Contract(format!("galaxy model sidecar: {e}")))?;
        let num = |k: &str| -> Result<f64> {
            v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| {
                Error::Contract(format!("galaxy model sidecar: missing number `{k}`"))
            })
        };
        let pair = |k: &str| -> Result<(f64, f64)> {
            match v.get(k).and_then(|x| x.as_array()).map(|a| a.as_slice()) {
                Some([a, b]) => match (a.as_f64(), b.as_f64()) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(Error::Contract(format!(
                        "galaxy model sidecar: `{k}` must hold two numbers"
                    ))),
                },
                _ => Err(Error::Contract(format!(
                    "galaxy model sidecar: missing pair `{k}`"
                ))),
            }
        };
        let info = GalaxyModelInfo {
            tikhonov_balance: num("tikhonov_balance")?,
            multiple: num("multiple")? as usize,
            fwhm_px_range: pair("fwhm_px_range")?,
            snr_range: pair("snr_range")?,
            parameters: num("parameters").unwrap_or(0.0) as usize,
        };
        if !(info.tikhonov_balance >= 0.0 && info.tikhonov_balance.is_finite())
            || info.multiple == 0
        {
            return Err(Error::Contract(format!(
                "galaxy model sidecar: need tikhonov_balance ≥ 0 and multiple ≥ 1, got {} and {}",
                info.tikhonov_balance, info.multiple
            )));
        }
        Ok(info)
    }
}

/// A galaxy deconvolution network ([module documentation](self)).
#[derive(Debug)]
pub struct GalaxyNet {
    net: OnnxDenoiser,
    info: GalaxyModelInfo,
}

impl GalaxyNet {
    /// Wrap a loaded graph and its sidecar; checks the graph is `[N, 1, H, W] → [N, 1, H, W]`.
    pub fn new(model: OnnxModel, info: GalaxyModelInfo) -> Result<Self> {
        Self::with_tiling(model, info, Tiling::default())
    }

    /// [`GalaxyNet::new`] with the tiling of the network runs on large images (default: 256
    /// px inputs, 32 px overlap, cross-faded).
    pub fn with_tiling(model: OnnxModel, info: GalaxyModelInfo, tiling: Tiling) -> Result<Self> {
        let net = OnnxDenoiser::new(
            model,
            DenoiserConfig {
                noise_map: Some(false),
                normalization: Normalization::Affine {
                    offset: 0.0,
                    scale: 1.0,
                },
                tiling,
                multiple: info.multiple,
            },
        )?;
        if net.model().inputs()[0]
            .shape
            .get(1)
            .copied()
            .flatten()
            .is_some_and(|c| c != 1)
        {
            return Err(Error::Contract(format!(
                "a galaxy model takes one channel, input `{}` has shape {}",
                net.model().inputs()[0].name,
                net.model().inputs()[0].shape_string()
            )));
        }
        Ok(GalaxyNet { net, info })
    }

    /// Load `path` (`.onnx`) and its sidecar (the same path with extension `.json`).
    pub fn load(path: impl AsRef<Path>, options: SessionOptions) -> Result<Self> {
        let path = path.as_ref();
        let side = path.with_extension("json");
        let text = std::fs::read_to_string(&side).map_err(|e| {
            Error::Contract(format!(
                "the galaxy model {} needs its sidecar {} (Tikhonov weight, PSF range): {e}",
                path.display(),
                side.display()
            ))
        })?;
        let info = GalaxyModelInfo::from_json(&text)?;
        GalaxyNet::new(OnnxModel::load(path, options)?, info)
    }

    /// The sidecar's information.
    pub fn info(&self) -> &GalaxyModelInfo {
        &self.info
    }

    /// `x̂ = σ · N(t / σ)` for a Tikhonov image `t` and the noise level `σ > 0` of the data.
    pub fn restore(&self, tikhonov: ArrayView2<'_, f64>, sigma: f64) -> Result<Array2<f64>> {
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(sparseinv_solvers::Error::param(
                "noise_sigma",
                format!(
                    "the learned model needs the noise level of the image (> 0), got {sigma}: a \
                     noise-free or constant image cannot be normalised"
                ),
            )
            .into());
        }
        let u = tikhonov.mapv(|v| (v / sigma) as f32);
        let out = self
            .net
            .denoise_with_progress(u.view().into_dyn(), 0.0, &mut |_, _| {})?;
        let out = out
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        Ok(out.mapv(|v| v as f64 * sigma))
    }
}
