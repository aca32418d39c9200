//! The models shipped with sparseinv, embedded in the compiled crate (so that a binary copied
//! elsewhere still has them): the grayscale denoiser `onnx/denoiser_small.onnx` and the
//! learned deblurring model `onnx/deblur_small{.json,_enc.onnx,_dec.onnx}` and the galaxy
//! deconvolution network `onnx/galaxy_unet{.onnx,.json}` and the VBLE-xz prior
//! `onnx/vble_{encode,decode,decode_vjp,rate}.onnx` with `onnx/vble_small.json`. Their training
//! and measured quality are described in the crate's README.

use crate::deblur::{DeblurParams, LearnedDeblur};
use crate::denoiser::{DenoiserConfig, OnnxDenoiser};
use crate::error::Result;
use crate::galaxy::{GalaxyModelInfo, GalaxyNet};
use crate::model::{OnnxModel, SessionOptions};
use crate::vble::VblePrior;

/// `onnx/denoiser_small.onnx`: input `[N, 2, H, W]` (image in `[0, 1]`, noise map σ),
/// output `[N, 1, H, W]`; sizes padded to a multiple of 4.
pub const DENOISER_SMALL_ONNX: &[u8] = include_bytes!("../onnx/denoiser_small.onnx");
/// `onnx/deblur_small_enc.onnx`: the encoder of the shipped [`LearnedDeblur`].
pub const DEBLUR_SMALL_ENC_ONNX: &[u8] = include_bytes!("../onnx/deblur_small_enc.onnx");
/// `onnx/deblur_small_dec.onnx`: the decoder of the shipped [`LearnedDeblur`].
pub const DEBLUR_SMALL_DEC_ONNX: &[u8] = include_bytes!("../onnx/deblur_small_dec.onnx");
/// `onnx/deblur_small.json`: the sidecar of the shipped [`LearnedDeblur`].
pub const DEBLUR_SMALL_JSON: &str = include_str!("../onnx/deblur_small.json");

/// `onnx/galaxy_unet.onnx`: the learned galaxy deconvolution network ([`GalaxyNet`]).
pub const GALAXY_UNET_ONNX: &[u8] = include_bytes!("../onnx/galaxy_unet.onnx");
/// `onnx/galaxy_unet.json`: its sidecar (Tikhonov weight, training PSF and SNR ranges).
pub const GALAXY_UNET_JSON: &str = include_str!("../onnx/galaxy_unet.json");

/// `onnx/vble_encode.onnx`, embedded (see [`VblePrior`]).
pub const VBLE_ENCODE_ONNX: &[u8] = include_bytes!("../onnx/vble_encode.onnx");
/// `onnx/vble_decode.onnx`, embedded (see [`VblePrior`]).
pub const VBLE_DECODE_ONNX: &[u8] = include_bytes!("../onnx/vble_decode.onnx");
/// `onnx/vble_decode_vjp.onnx`, embedded (see [`VblePrior`]).
pub const VBLE_DECODE_VJP_ONNX: &[u8] = include_bytes!("../onnx/vble_decode_vjp.onnx");
/// `onnx/vble_rate.onnx`, embedded (see [`VblePrior`]).
pub const VBLE_RATE_ONNX: &[u8] = include_bytes!("../onnx/vble_rate.onnx");
/// `onnx/vble_small.json`, the sidecar of the shipped VBLE prior, embedded (see [`VblePrior`]).
pub const VBLE_SMALL_JSON: &str = include_str!("../onnx/vble_small.json");

/// The shipped VBLE-xz prior ([`VblePrior::builtin`]).
pub fn vble(options: SessionOptions) -> Result<VblePrior> {
    VblePrior::builtin(options)
}

/// The shipped galaxy deconvolution network.
pub fn galaxy(options: SessionOptions) -> Result<GalaxyNet> {
    let info = GalaxyModelInfo::from_json(GALAXY_UNET_JSON)?;
    let model =
        OnnxModel::load_from_memory(GALAXY_UNET_ONNX, "<builtin>/galaxy_unet.onnx", options)?;
    GalaxyNet::new(model, info)
}

/// The shipped denoiser as an [`OnnxDenoiser`]. `config.multiple` below 4 is raised to 4 (the
/// network downsamples twice) and `config.noise_map` is set (the graph takes a noise map).
pub fn denoiser(options: SessionOptions, config: DenoiserConfig) -> Result<OnnxDenoiser> {
    let model = OnnxModel::load_from_memory(
        DENOISER_SMALL_ONNX,
        "<builtin>/denoiser_small.onnx",
        options,
    )?;
    let config = DenoiserConfig {
        noise_map: Some(true),
        multiple: if config.multiple % 4 == 0 {
            config.multiple
        } else {
            4 * config.multiple.max(1)
        },
        ..config
    };
    OnnxDenoiser::new(model, config)
}

/// The shipped learned deblurring model.
pub fn deblur(options: SessionOptions) -> Result<LearnedDeblur> {
    let params = DeblurParams::from_json(DEBLUR_SMALL_JSON)?;
    let enc = OnnxModel::load_from_memory(
        DEBLUR_SMALL_ENC_ONNX,
        "<builtin>/deblur_small_enc.onnx",
        options,
    )?;
    let dec = OnnxModel::load_from_memory(
        DEBLUR_SMALL_DEC_ONNX,
        "<builtin>/deblur_small_dec.onnx",
        options,
    )?;
    LearnedDeblur::new(enc, dec, params)
}
