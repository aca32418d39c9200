//! Denoising: what `sparseinv denoise` does, on an in-memory array. The denoiser is the
//! classical starlet thresholding ([`DenoiseModel::Starlet`], always available) or, with the
//! `onnx` feature, a learned network (the shipped one, [`DenoiseModel::Builtin`], or any ONNX
//! denoiser graph, [`DenoiseModel::Onnx`]) run in overlapping tiles.
//!
//! Data: `[H, W]`, `[C, H, W]` or `[N, C, H, W]` float32 in any units; `sigma` is the noise
//! standard deviation in those units. The networks see normalised data `(x − offset)/scale`
//! (fixed, or robust percentiles of the data); the starlet denoiser works in data units, one
//! `H × W` plane at a time. The shipped network is grayscale: a `[C, H, W]` input is run as
//! `C` separate images (the output then has shape `[C, 1, H, W]`, as the command writes it).

use super::{Progress, ProgressUnit};
use crate::Result;
use ndarray::{ArrayD, ArrayViewD, Axis, Ix2};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::starlet_denoise::StarletDenoiser;
use std::path::PathBuf;
use std::time::Instant;

/// Which denoiser to run.
#[derive(Debug, Clone, PartialEq)]
pub enum DenoiseModel {
    /// Starlet hard thresholding at 3σ (4σ on the finest scale) with this many scales.
    Starlet {
        /// Number of wavelet scales (1 to 30).
        scales: usize,
    },
    /// The shipped grayscale network (embedded in the library).
    #[cfg(feature = "onnx")]
    Builtin,
    /// An ONNX denoiser graph (float32 `[N, C(+1 noise map), H, W] → [N, C, H, W]`).
    #[cfg(feature = "onnx")]
    Onnx(PathBuf),
}

impl DenoiseModel {
    /// The name in reports: `starlet`, `builtin` or the graph's path.
    pub fn name(&self) -> String {
        match self {
            DenoiseModel::Starlet { .. } => "starlet".into(),
            #[cfg(feature = "onnx")]
            DenoiseModel::Builtin => "builtin".into(),
            #[cfg(feature = "onnx")]
            DenoiseModel::Onnx(p) => p.display().to_string(),
        }
    }

    /// A starlet, built-in or ONNX denoiser from the command-line spelling: `starlet` (4
    /// scales), `builtin`, or a path to a graph.
    pub fn from_name(name: impl Into<PathBuf>) -> Self {
        let p: PathBuf = name.into();
        if p.as_os_str() == "starlet" {
            return DenoiseModel::Starlet { scales: 4 };
        }
        #[cfg(feature = "onnx")]
        {
            if p.as_os_str() == "builtin" {
                DenoiseModel::Builtin
            } else {
                DenoiseModel::Onnx(p)
            }
        }
        #[cfg(not(feature = "onnx"))]
        {
            let _ = p;
            DenoiseModel::Starlet { scales: 4 }
        }
    }
}

/// Options of [`denoise()`]. `Default`: starlet with 4 scales, σ = 0.05, 256 px tiles with
/// 32 px overlap, percentile normalisation 0.1 / 99.9.
#[derive(Debug, Clone, PartialEq)]
pub struct DenoiseOptions {
    /// The denoiser.
    pub model: DenoiseModel,
    /// Noise standard deviation in the data's units (finite, ≥ 0).
    pub sigma: f64,
    /// Tile side of the networks (pixels).
    pub tile: usize,
    /// Overlap between network tiles (pixels).
    pub overlap: usize,
    /// Fixed normalisation `(offset, scale)` of the networks' input (`scale > 0`); `None`:
    /// the [`percentiles`](Self::percentiles) of the data.
    pub normalization: Option<(f64, f64)>,
    /// Lower/upper percentiles of the automatic normalisation.
    pub percentiles: (f64, f64),
    /// Where and with how many threads the networks run.
    #[cfg(feature = "onnx")]
    pub session: sparseinv_models::SessionOptions,
}

impl Default for DenoiseOptions {
    fn default() -> Self {
        DenoiseOptions {
            model: DenoiseModel::Starlet { scales: 4 },
            sigma: 0.05,
            tile: 256,
            overlap: 32,
            normalization: None,
            percentiles: (0.1, 99.9),
            #[cfg(feature = "onnx")]
            session: Default::default(),
        }
    }
}

impl DenoiseOptions {
    /// Check the options: `sigma` finite and ≥ 0, a positive normalisation scale, starlet
    /// scales in 1..=30.
    pub fn validate(&self) -> Result<()> {
        use sparseinv_solvers::Error as E;
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return Err(E::param(
                "sigma",
                format!("must be finite and >= 0, got {}", self.sigma),
            )
            .into());
        }
        if let Some((o, s)) = self.normalization {
            if !(o.is_finite() && s.is_finite() && s > 0.0) {
                return Err(E::param(
                    "normalization",
                    format!("offset must be finite and scale > 0, got ({o}, {s})"),
                )
                .into());
            }
        }
        match self.model {
            DenoiseModel::Starlet { scales } => {
                StarletDenoiser::new(scales)?;
            }
            // the ONNX models are checked when loaded
            #[cfg(feature = "onnx")]
            _ => {}
        }
        Ok(())
    }

    #[cfg(feature = "onnx")]
    fn models_normalization(&self) -> sparseinv_models::Normalization {
        match self.normalization {
            Some((offset, scale)) => sparseinv_models::Normalization::Affine { offset, scale },
            None => sparseinv_models::Normalization::Percentiles {
                low: self.percentiles.0,
                high: self.percentiles.1,
            },
        }
    }
}

/// What [`denoise()`] did: the fields of `sparseinv denoise --json` that do not name files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DenoiseReport {
    /// The denoiser (`starlet`, `builtin` or the graph's path).
    pub model: String,
    /// Noise level used (data units).
    pub sigma: f64,
    /// Shape of the output.
    pub shape: Vec<usize>,
    /// Tiles per `H × W` image.
    pub tiles_per_image: usize,
    /// Wall-clock seconds (model loading excluded).
    pub seconds: f64,
    /// Execution device (`cpu` or `cuda`).
    pub device: String,
    /// Version of the ONNX Runtime used (networks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<String>,
    /// Where that runtime was found (networks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnxruntime_source: Option<String>,
}

/// The result of [`denoise()`].
#[derive(Debug, Clone)]
pub struct Denoised {
    /// The denoised data (the input's shape, or `[C, 1, H, W]` for a `[C, H, W]` input of
    /// the grayscale built-in network).
    pub data: ArrayD<f32>,
    /// What was done.
    pub report: DenoiseReport,
}

/// Denoise `x` (`[H, W]`, `[C, H, W]` or `[N, C, H, W]`, finite) with noise level
/// `opts.sigma`; see the module documentation.
///
/// ```
/// use ndarray::{Array2, IxDyn};
/// use sparseinv::pipeline::{denoise, DenoiseModel, DenoiseOptions};
/// use sparseinv::solvers::testing::randn;
/// // a smooth ramp plus noise of σ = 0.1
/// let clean = Array2::from_shape_fn((64, 64), |(y, x)| (y + x) as f32 / 128.0);
/// let noise = randn::<f64>(&[64, 64], 5).mapv(|v| 0.1 * v as f32);
/// let noisy = &clean.clone().into_dyn() + &noise;
/// let opts = DenoiseOptions { model: DenoiseModel::Starlet { scales: 4 }, sigma: 0.1, ..Default::default() };
/// let out = denoise(noisy.view(), &opts).unwrap();
/// let rms = |a: &ndarray::ArrayD<f32>| {
///     (a.iter().zip(clean.iter()).map(|(u, v)| ((u - v) as f64).powi(2)).sum::<f64>() / 4096.0).sqrt()
/// };
/// assert!(rms(&out.data) < 0.5 * rms(&noisy)); // most of the noise is gone
/// assert_eq!(out.report.shape, vec![64, 64]);
/// ```
pub fn denoise(x: ArrayViewD<'_, f32>, opts: &DenoiseOptions) -> Result<Denoised> {
    denoise_with_progress(x, opts, &mut |_| {})
}

/// [`denoise()`] that reports progress: network runs (tiles) or starlet planes done.
pub fn denoise_with_progress(
    x: ArrayViewD<'_, f32>,
    opts: &DenoiseOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Denoised> {
    opts.validate()?;
    let nd = x.ndim();
    if !(2..=4).contains(&nd) {
        return Err(sparseinv_solvers::Error::param(
            "x",
            format!(
                "expected [H, W], [C, H, W] or [N, C, H, W], got shape {:?}",
                x.shape()
            ),
        )
        .into());
    }
    match &opts.model {
        DenoiseModel::Starlet { scales } => {
            let d = StarletDenoiser::new(*scales)?;
            let start = Instant::now();
            let s = x.shape().to_vec();
            let (h, w) = (s[nd - 2], s[nd - 1]);
            let planes = x.len() / (h * w).max(1);
            let flat = x.to_shape((planes, h, w))?;
            let mut out = ndarray::Array3::<f32>::zeros((planes, h, w));
            for (i, (p, mut o)) in flat
                .axis_iter(Axis(0))
                .zip(out.axis_iter_mut(Axis(0)))
                .enumerate()
            {
                let p64 = p.mapv(f64::from).into_dyn();
                let r = d.denoise(p64.view(), opts.sigma)?;
                o.assign(&r.into_dimensionality::<Ix2>()?.mapv(|v| v as f32));
                progress(Progress {
                    unit: ProgressUnit::Steps,
                    done: i + 1,
                    total: planes,
                });
            }
            let data = out.into_shape_with_order(s.clone())?.into_dyn();
            Ok(Denoised {
                data,
                report: DenoiseReport {
                    model: opts.model.name(),
                    sigma: opts.sigma,
                    shape: s,
                    tiles_per_image: 1,
                    seconds: start.elapsed().as_secs_f64(),
                    device: "cpu".into(),
                    onnxruntime: None,
                    onnxruntime_source: None,
                },
            })
        }
        #[cfg(feature = "onnx")]
        model => onnx::denoise(x, model, opts, progress),
    }
}

#[cfg(feature = "onnx")]
mod onnx {
    use super::*;
    use ndarray::IxDyn;
    use sparseinv_models::{DenoiserConfig, OnnxDenoiser, Tiling};

    /// The network-backed denoisers.
    pub(super) fn denoise(
        x: ArrayViewD<'_, f32>,
        model: &DenoiseModel,
        opts: &DenoiseOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Denoised> {
        let builtin = matches!(model, DenoiseModel::Builtin);
        // the shipped network is grayscale: run channels / planes as separate images
        let x: ndarray::CowArray<'_, f32, IxDyn> = if builtin && x.ndim() == 3 {
            let s = x.shape().to_vec();
            x.to_owned()
                .into_shape_with_order(IxDyn(&[s[0], 1, s[1], s[2]]))?
                .into()
        } else {
            x.into()
        };
        let config = DenoiserConfig {
            normalization: opts.models_normalization(),
            tiling: Tiling {
                tile: opts.tile,
                overlap: opts.overlap,
            },
            ..Default::default()
        };
        let d = match model {
            DenoiseModel::Builtin => sparseinv_models::builtin::denoiser(opts.session, config),
            DenoiseModel::Onnx(p) => OnnxDenoiser::load(p, opts.session, config),
            DenoiseModel::Starlet { .. } => unreachable!("handled by the caller"),
        }?;
        let rt = sparseinv_models::runtime()?;
        let start = Instant::now();
        let y = d.denoise_with_progress(x.view(), opts.sigma, &mut |done, total| {
            progress(Progress {
                unit: ProgressUnit::Tiles,
                done,
                total,
            })
        })?;
        let secs = start.elapsed().as_secs_f64();
        let shape = y.shape().to_vec();
        let tiles = d.tiles_for(shape[shape.len() - 2], shape[shape.len() - 1]);
        Ok(Denoised {
            data: y,
            report: DenoiseReport {
                model: model.name(),
                sigma: opts.sigma,
                shape,
                tiles_per_image: tiles,
                seconds: secs,
                device: match opts.session.device {
                    sparseinv_models::Device::Cpu => "cpu".into(),
                    _ => "cuda".into(),
                },
                onnxruntime: Some(rt.version().to_string()),
                onnxruntime_source: Some(rt.source().to_string()),
            },
        })
    }
}
