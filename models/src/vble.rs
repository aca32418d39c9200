//! VBLE-xz: variational Bayesian restoration in the latent space of a compressive autoencoder,
//! with a per-pixel decoder standard deviation, giving a posterior mean and a per-pixel
//! uncertainty (Biquard, Chabert, Genin, Latry, Oberlin, *Deep priors for satellite image
//! restoration with accurate uncertainties*, arXiv:2412.04130, 2024).
//!
//! **Prior** ([`VblePrior`]): four float32 ONNX graphs of a small mean-scale hyperprior
//! autoencoder (see the crate README), run without autodiff — the gradients come from
//! hand-written vector–Jacobian-product graphs:
//!
//! | graph | inputs → outputs |
//! |---|---|
//! | encode | `x` `[N,1,H,W]` → `z` `[N,32,H/8,W/8]`, `h` `[N,24,H/16,W/16]` |
//! | decode | `z` → `x_mean`, `sigma` `[N,1,H,W]` |
//! | decode_vjp | `z`, `g_mean`, `g_sigma` → `dz = J_meanᵀ g_mean + J_σᵀ g_sigma` |
//! | rate | `z`, `h` → `rate` `[1]` (nats), `drate_dz`, `drate_dh` |
//!
//! H and W must be multiples of 16; pixels are in `[0, 1]`.
//!
//! **Inference** ([`restore`], [`VbleSolver`]) for `y = A x + n`, `n ~ N(0, σ_n² I)`, with the
//! variational posterior `q = U(z̄ ± a_z/2) U(h̄ ± a_h/2) N(x; x_mean(z), diag(b² σ(z)²))`.
//! Each step draws `u_z, u_h ~ U(−½, ½)`, `ε ~ N(0, 1)`, sets `z = z̄ + a_z u_z`,
//! `h = h̄ + a_h u_h`, `x = x_mean(z) + b σ(z) ε` (σ detached) and evaluates
//!
//! ```text
//! L = ‖A x − y‖²/(2σ_n²) + λ[rate(z, h) − Σ ln a_z − Σ ln a_h + ½ Σ (b² − 2 ln b − 1)]
//! g_x = Aᵀ(A x − y)/σ_n²,  d_z = decode_vjp(z, g_x, 0) + λ drate_dz,  d_h = λ drate_dh
//! ∂z̄ = d_z, ∂a_z = d_z u_z − λ/a_z, ∂h̄ = d_h, ∂a_h = d_h u_h − λ/a_h, ∂b = g_x σ ε + λ(b − 1/b)
//! ```
//!
//! then one bias-corrected Adam step on the five arrays and the clamps `a ∈ [1.5·10⁻⁵, 20]`,
//! `b ∈ [10⁻⁴, 3]`. The result is the mean and the per-pixel standard deviation of `S`
//! posterior samples. [`Variant::ZOnly`] drops `b` and `ε` (`x = x_mean(z)`);
//! [`Variant::Map`] minimises `data + λ rate` over `z̄, h̄` without draws. This is exactly the
//! loop of `models/train/vble_reference.py` (which uses the same graphs through Python's
//! onnxruntime); the draws can be injected ([`DrawSource`], [`RecordedDraws`]) so that a run
//! of the reference can be replayed.

use crate::builtin;
use crate::error::{Error, Result};
use crate::model::{OnnxModel, SessionOptions};
use ndarray::{Array2, Array4, ArrayD, ArrayView2, ArrayView4, ArrayViewD, Ix2, Ix4, IxDyn, Zip};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use sparseinv_solvers::op::LinearOperator;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn param_err(name: &str, reason: impl Into<String>) -> Error {
    sparseinv_solvers::Error::param(name, reason).into()
}

fn sidecar_err(what: impl std::fmt::Display) -> Error {
    Error::Contract(format!("VBLE sidecar: {what}"))
}

/// The inference defaults recorded in the sidecar (`inference_defaults`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VbleDefaults {
    /// Adam steps (sidecar: 200).
    pub steps: usize,
    /// Posterior samples for the mean and the standard deviation (sidecar: 100).
    pub samples: usize,
    /// Weight `λ` of the prior terms (sidecar: 1).
    pub lambda: f64,
    /// Adam learning rate (sidecar: 0.1).
    pub lr: f64,
    /// Clamp interval of `a_z`, `a_h` after every step (sidecar: `[1.5e-5, 20]`).
    pub a_clamp: (f64, f64),
    /// Clamp interval of `b` after every step (sidecar: `[1e-4, 3]`).
    pub b_clamp: (f64, f64),
}

impl Default for VbleDefaults {
    /// The values of `models/train/vble_reference.py`.
    fn default() -> Self {
        VbleDefaults {
            steps: 200,
            samples: 100,
            lambda: 1.0,
            lr: 0.1,
            a_clamp: (1.5e-5, 20.0),
            b_clamp: (1e-4, 3.0),
        }
    }
}

/// What the sidecar JSON of a VBLE prior says: geometry, graph files and inference defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct VbleInfo {
    /// H and W must be multiples of this (16).
    pub multiple: usize,
    /// Downsampling factor of `z` (8).
    pub z_stride: usize,
    /// Downsampling factor of `h` (16).
    pub h_stride: usize,
    /// Channels of `z` (32).
    pub z_channels: usize,
    /// Channels of `h` (24).
    pub h_channels: usize,
    /// File names of the graphs encode, decode, decode_vjp, rate (relative to the sidecar).
    pub files: [String; 4],
    /// Inference defaults.
    pub defaults: VbleDefaults,
}

impl VbleInfo {
    /// Parse the sidecar (`format` = `sparseinv-vble-xz`, `stride`, `latent_stride`,
    /// `channels`, `graphs.*.file`, `inference_defaults`). Missing inference defaults fall
    /// back to [`VbleDefaults::default`]; missing geometry is an error.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(sidecar_err)?;
        if let Some(f) = v.get("format").and_then(|f| f.as_str()) {
            if f != "sparseinv-vble-xz" {
                return Err(sidecar_err(format!(
                    "format is `{f}`, expected `sparseinv-vble-xz`"
                )));
            }
        }
        let uint = |p: &[&str]| -> Result<usize> {
            let mut c = &v;
            for k in p {
                c = c
                    .get(k)
                    .ok_or_else(|| sidecar_err(format!("missing `{}`", p.join("."))))?;
            }
            c.as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| sidecar_err(format!("`{}` must be a positive integer", p.join("."))))
        };
        let file = |g: &str| -> Result<String> {
            v.get("graphs")
                .and_then(|x| x.get(g))
                .and_then(|x| x.get("file"))
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| sidecar_err(format!("missing `graphs.{g}.file`")))
        };
        let d = v.get("inference_defaults");
        let def = VbleDefaults::default();
        let num = |k: &str, fallback: f64| {
            d.and_then(|d| d.get(k))
                .and_then(|x| x.as_f64())
                .unwrap_or(fallback)
        };
        let pair = |k: &str, fallback: (f64, f64)| match d
            .and_then(|d| d.get(k))
            .and_then(|x| x.as_array())
            .map(|a| a.as_slice())
        {
            Some([a, b]) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => (a, b),
                _ => fallback,
            },
            _ => fallback,
        };
        let lr = v
            .get("reference_eval")
            .and_then(|r| r.get("args"))
            .and_then(|a| a.get("lr"))
            .and_then(|x| x.as_f64())
            .unwrap_or(def.lr);
        let defaults = VbleDefaults {
            steps: num("steps", def.steps as f64) as usize,
            samples: num("samples", def.samples as f64) as usize,
            lambda: num("lambda", def.lambda),
            lr,
            a_clamp: pair("a_clamp", def.a_clamp),
            b_clamp: pair("b_clamp", def.b_clamp),
        };
        let info = VbleInfo {
            multiple: uint(&["stride"])?,
            z_stride: uint(&["latent_stride", "z"])?,
            h_stride: uint(&["latent_stride", "h"])?,
            z_channels: uint(&["channels", "z"])?,
            h_channels: uint(&["channels", "h"])?,
            files: [
                file("encode")?,
                file("decode")?,
                file("decode_vjp")?,
                file("rate")?,
            ],
            defaults,
        };
        let ok_clamp = |(lo, hi): (f64, f64)| lo > 0.0 && lo <= hi && hi.is_finite();
        if info.multiple % info.z_stride != 0
            || info.multiple % info.h_stride != 0
            || !ok_clamp(info.defaults.a_clamp)
            || !ok_clamp(info.defaults.b_clamp)
            || info.defaults.lr.is_nan()
            || info.defaults.lr <= 0.0
            || info.defaults.lambda.is_nan()
            || info.defaults.lambda <= 0.0
        {
            return Err(sidecar_err(format!(
                "inconsistent values (stride {} must be a multiple of the latent strides {} and \
                 {}; clamps {:?}, {:?} must be positive intervals; lr {} and lambda {} > 0)",
                info.multiple,
                info.z_stride,
                info.h_stride,
                info.defaults.a_clamp,
                info.defaults.b_clamp,
                info.defaults.lr,
                info.defaults.lambda
            )));
        }
        Ok(info)
    }
}

/// Index of each expected name in a graph's declared inputs or outputs.
fn positions(model: &OnnxModel, outputs: bool, names: &[&str]) -> Result<Vec<usize>> {
    let specs = if outputs {
        model.outputs()
    } else {
        model.inputs()
    };
    let declared: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    if declared.len() != names.len() {
        return Err(Error::Contract(format!(
            "{} declares {} {declared:?}, a VBLE graph needs {names:?}",
            model.path().display(),
            if outputs { "outputs" } else { "inputs" }
        )));
    }
    names
        .iter()
        .map(|n| {
            declared.iter().position(|d| d == n).ok_or_else(|| {
                Error::Contract(format!(
                    "{} declares {} {declared:?}, a VBLE graph needs {names:?}",
                    model.path().display(),
                    if outputs { "outputs" } else { "inputs" }
                ))
            })
        })
        .collect()
}

/// The four graphs of a VBLE prior ([module documentation](self)), each loaded once into an
/// ONNX Runtime session. All methods take and return `f64` arrays of a single image (batch
/// `N = 1`) and run the graphs in float32, like the Python reference.
#[derive(Debug)]
pub struct VblePrior {
    encode: OnnxModel,
    decode: OnnxModel,
    decode_vjp: OnnxModel,
    rate: OnnxModel,
    info: VbleInfo,
    // where each graph's inputs go / outputs come from, in the order of the names above
    vjp_in: Vec<usize>,
    rate_in: Vec<usize>,
    enc_out: Vec<usize>,
    dec_out: Vec<usize>,
    rate_out: Vec<usize>,
}

impl VblePrior {
    /// Wrap four loaded graphs and their sidecar information, checking the input and output
    /// names (`x → z, h`; `z → x_mean, sigma`; `z, g_mean, g_sigma → dz`;
    /// `z, h → rate, drate_dz, drate_dh`; in any declaration order).
    pub fn new(
        encode: OnnxModel,
        decode: OnnxModel,
        decode_vjp: OnnxModel,
        rate: OnnxModel,
        info: VbleInfo,
    ) -> Result<Self> {
        positions(&encode, false, &["x"])?;
        positions(&decode, false, &["z"])?;
        let vjp_in = positions(&decode_vjp, false, &["z", "g_mean", "g_sigma"])?;
        let rate_in = positions(&rate, false, &["z", "h"])?;
        let enc_out = positions(&encode, true, &["z", "h"])?;
        let dec_out = positions(&decode, true, &["x_mean", "sigma"])?;
        positions(&decode_vjp, true, &["dz"])?;
        let rate_out = positions(&rate, true, &["rate", "drate_dz", "drate_dh"])?;
        Ok(VblePrior {
            encode,
            decode,
            decode_vjp,
            rate,
            info,
            vjp_in,
            rate_in,
            enc_out,
            dec_out,
            rate_out,
        })
    }

    /// Load a prior from its sidecar JSON, or from a directory holding `vble_small.json`; the
    /// graph files named in the sidecar are looked up next to it.
    ///
    /// ```no_run
    /// use sparseinv_models::{vble::VblePrior, SessionOptions};
    /// let prior = VblePrior::load("models/onnx", SessionOptions::default())?;
    /// assert_eq!(prior.info().multiple, 16);
    /// # Ok::<(), sparseinv_models::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>, options: SessionOptions) -> Result<Self> {
        let path = path.as_ref();
        let sidecar: PathBuf = if path.is_dir() {
            path.join("vble_small.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&sidecar).map_err(|e| {
            Error::Contract(format!(
                "cannot read the VBLE sidecar {}: {e} (give the sidecar JSON or the directory \
                 holding vble_small.json)",
                sidecar.display()
            ))
        })?;
        let info = VbleInfo::from_json(&text)?;
        let dir = sidecar.parent().unwrap_or_else(|| Path::new("."));
        let load = |f: &str| OnnxModel::load(dir.join(f), options);
        let [e, d, j, r] = &info.files;
        let (e, d, j, r) = (load(e)?, load(d)?, load(j)?, load(r)?);
        VblePrior::new(e, d, j, r, info)
    }

    /// The shipped prior (`onnx/vble_*.onnx` and `onnx/vble_small.json`, embedded in the
    /// crate).
    ///
    /// ```no_run
    /// use sparseinv_models::{vble::VblePrior, SessionOptions};
    /// let prior = VblePrior::builtin(SessionOptions::default())?;
    /// let x = ndarray::Array2::<f64>::from_elem((32, 48), 0.5);
    /// let (z, h) = prior.encode(x.view())?;
    /// assert_eq!(z.shape(), &[1, 32, 4, 6]);
    /// assert_eq!(h.shape(), &[1, 24, 2, 3]);
    /// # Ok::<(), sparseinv_models::Error>(())
    /// ```
    pub fn builtin(options: SessionOptions) -> Result<Self> {
        let info = VbleInfo::from_json(builtin::VBLE_SMALL_JSON)?;
        let m = |b: &[u8], n: &str| OnnxModel::load_from_memory(b, n, options);
        VblePrior::new(
            m(builtin::VBLE_ENCODE_ONNX, "<builtin>/vble_encode.onnx")?,
            m(builtin::VBLE_DECODE_ONNX, "<builtin>/vble_decode.onnx")?,
            m(
                builtin::VBLE_DECODE_VJP_ONNX,
                "<builtin>/vble_decode_vjp.onnx",
            )?,
            m(builtin::VBLE_RATE_ONNX, "<builtin>/vble_rate.onnx")?,
            info,
        )
    }

    /// The sidecar information.
    pub fn info(&self) -> &VbleInfo {
        &self.info
    }

    /// Check an image size: both sides positive multiples of [`VbleInfo::multiple`].
    pub fn check_image_shape(&self, shape: &[usize]) -> Result<()> {
        let m = self.info.multiple;
        match shape {
            [h, w] if *h > 0 && *w > 0 && h % m == 0 && w % m == 0 => Ok(()),
            [h, w] => Err(param_err(
                "image shape",
                format!(
                    "the VBLE prior needs H and W to be positive multiples of {m}, got {h}×{w} \
                     (crop or pad the image, e.g. to {}×{})",
                    h.div_ceil(m).max(1) * m,
                    w.div_ceil(m).max(1) * m
                ),
            )),
            other => Err(param_err(
                "image shape",
                format!("the VBLE prior takes a 2-D [H, W] image, got shape {other:?}"),
            )),
        }
    }

    /// Shapes `[1, C, H/s, W/s]` of `z` and `h` for an `H × W` image.
    pub fn latent_shapes(&self, image: [usize; 2]) -> Result<([usize; 4], [usize; 4])> {
        self.check_image_shape(&image)?;
        let i = &self.info;
        Ok((
            [
                1,
                i.z_channels,
                image[0] / i.z_stride,
                image[1] / i.z_stride,
            ],
            [
                1,
                i.h_channels,
                image[0] / i.h_stride,
                image[1] / i.h_stride,
            ],
        ))
    }

    /// The image size `[H, W]` that a latent `z` of shape `[1, C, H/8, W/8]` decodes to.
    fn image_of_z(&self, z: &[usize]) -> Result<[usize; 2]> {
        let i = &self.info;
        match z {
            [1, c, a, b] if *c == i.z_channels => {
                let img = [a * i.z_stride, b * i.z_stride];
                self.check_image_shape(&img)?;
                Ok(img)
            }
            _ => Err(param_err(
                "z",
                format!(
                    "expected a latent of shape [1, {}, H/{}, W/{}] with H, W multiples of {}, \
                     got {z:?}",
                    i.z_channels, i.z_stride, i.z_stride, i.multiple
                ),
            )),
        }
    }

    fn check_h(&self, z: &[usize], h: &[usize]) -> Result<()> {
        let img = self.image_of_z(z)?;
        let (_, hs) = self.latent_shapes(img)?;
        if h != hs {
            return Err(sparseinv_solvers::Error::shape("VBLE hyper-latent h", &hs, h).into());
        }
        Ok(())
    }

    /// `(z, h) = encode(x)` for an image `x` ([H, W], H, W multiples of 16, values in
    /// `[0, 1]`): `z` is `[1, 32, H/8, W/8]`, `h` is `[1, 24, H/16, W/16]` (continuous, not
    /// rounded).
    pub fn encode(&self, x: ArrayView2<'_, f64>) -> Result<(Array4<f64>, Array4<f64>)> {
        self.check_image_shape(x.shape())?;
        let xin = x
            .mapv(|v| v as f32)
            .into_shape_with_order(IxDyn(&[1, 1, x.nrows(), x.ncols()]))
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let out = self.encode.run(&[xin.view()])?;
        Ok((
            to4(&out[self.enc_out[0]], "z")?,
            to4(&out[self.enc_out[1]], "h")?,
        ))
    }

    /// `(x_mean(z), σ(z))`, each `[H, W]`, for a latent `z` of shape `[1, 32, H/8, W/8]`.
    pub fn decode(&self, z: ArrayView4<'_, f64>) -> Result<(Array2<f64>, Array2<f64>)> {
        self.image_of_z(z.shape())?;
        let out = self.decode.run(&[z.mapv(|v| v as f32).into_dyn().view()])?;
        Ok((
            to_image(&out[self.dec_out[0]], "x_mean")?,
            to_image(&out[self.dec_out[1]], "sigma")?,
        ))
    }

    /// The vector–Jacobian product `J_meanᵀ g_mean + J_σᵀ g_sigma` at `z` (shape of `z`), for
    /// cotangents `g_mean`, `g_sigma` of the decoder's outputs (`[H, W]` each).
    pub fn decode_vjp(
        &self,
        z: ArrayView4<'_, f64>,
        g_mean: ArrayView2<'_, f64>,
        g_sigma: ArrayView2<'_, f64>,
    ) -> Result<Array4<f64>> {
        let img = self.image_of_z(z.shape())?;
        for (n, g) in [("g_mean", &g_mean), ("g_sigma", &g_sigma)] {
            if g.shape() != img {
                return Err(sparseinv_solvers::Error::shape(
                    format!("VBLE decode_vjp cotangent {n}"),
                    &img,
                    g.shape(),
                )
                .into());
            }
        }
        let img4 = |g: &ArrayView2<'_, f64>| {
            g.mapv(|v| v as f32)
                .into_shape_with_order(IxDyn(&[1, 1, img[0], img[1]]))
                .map_err(|e| Error::Runtime(e.to_string()))
        };
        let feeds = [
            z.mapv(|v| v as f32).into_dyn(),
            img4(&g_mean)?,
            img4(&g_sigma)?,
        ];
        let mut ordered: Vec<Option<ArrayViewD<'_, f32>>> = vec![None; 3];
        for (k, &pos) in self.vjp_in.iter().enumerate() {
            ordered[pos] = Some(feeds[k].view());
        }
        let ordered: Vec<_> = ordered.into_iter().flatten().collect();
        let out = self.decode_vjp.run(&ordered)?;
        to4(&out[0], "dz")
    }

    /// `(rate, ∂rate/∂z, ∂rate/∂h)` with `rate = −ln p(z|h) − ln p(h)` in nats, summed over
    /// all elements, for `z` `[1, 32, H/8, W/8]` and `h` `[1, 24, H/16, W/16]`.
    pub fn rate(
        &self,
        z: ArrayView4<'_, f64>,
        h: ArrayView4<'_, f64>,
    ) -> Result<(f64, Array4<f64>, Array4<f64>)> {
        self.check_h(z.shape(), h.shape())?;
        let feeds = [
            z.mapv(|v| v as f32).into_dyn(),
            h.mapv(|v| v as f32).into_dyn(),
        ];
        let mut ordered: Vec<Option<ArrayViewD<'_, f32>>> = vec![None; 2];
        for (k, &pos) in self.rate_in.iter().enumerate() {
            ordered[pos] = Some(feeds[k].view());
        }
        let ordered: Vec<_> = ordered.into_iter().flatten().collect();
        let out = self.rate.run(&ordered)?;
        let r = &out[self.rate_out[0]];
        if r.len() != 1 {
            return Err(Error::Contract(format!(
                "the rate graph returned `rate` of shape {:?}, expected [1]",
                r.shape()
            )));
        }
        Ok((
            r.iter().next().copied().unwrap_or(f32::NAN) as f64,
            to4(&out[self.rate_out[1]], "drate_dz")?,
            to4(&out[self.rate_out[2]], "drate_dh")?,
        ))
    }
}

fn to4(a: &ArrayD<f32>, name: &str) -> Result<Array4<f64>> {
    a.mapv(|v| v as f64)
        .into_dimensionality::<Ix4>()
        .map_err(|_| {
            Error::Contract(format!(
                "graph output `{name}` has shape {:?}, expected 4-D",
                a.shape()
            ))
        })
}

fn to_image(a: &ArrayD<f32>, name: &str) -> Result<Array2<f64>> {
    match a.shape() {
        [1, 1, h, w] => {
            let (h, w) = (*h, *w);
            a.mapv(|v| v as f64)
                .into_shape_with_order((h, w))
                .map_err(|e| Error::Runtime(e.to_string()))
        }
        s => Err(Error::Contract(format!(
            "graph output `{name}` has shape {s:?}, expected [1, 1, H, W]"
        ))),
    }
}

/// Which posterior is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// VBLE-xz: `q = U(z̄ ± a_z/2) U(h̄ ± a_h/2) N(x; x_mean(z), diag(b² σ(z)²))`.
    #[default]
    VbleXz,
    /// VBLE on the latents only: `x = x_mean(z)`, no `b`, no `ε`.
    ZOnly,
    /// The MAP of the same latent prior: minimise `‖A x_mean(z̄) − y‖²/(2σ_n²) + λ rate(z̄, h̄)`
    /// (no draws; the output has no standard deviation).
    Map,
}

/// The random draws of one optimisation step or one posterior sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepDraws {
    /// `u_z ~ U(−½, ½)`, shape of `z` (absent for [`Variant::Map`]).
    pub u_z: Option<Array4<f64>>,
    /// `u_h ~ U(−½, ½)`, shape of `h` (absent for MAP and for posterior samples).
    pub u_h: Option<Array4<f64>>,
    /// `ε ~ N(0, 1)`, shape of the image (only for [`Variant::VbleXz`]).
    pub eps: Option<Array2<f64>>,
}

/// A source of the random draws, called in the reference's order: per step `u_z`, `u_h`,
/// `ε` (as the variant needs), per posterior sample `u_z`, `ε`.
pub trait DrawSource {
    /// An array of i.i.d. `U(−½, ½)` entries of the given shape.
    fn uniform(&mut self, shape: &[usize]) -> Result<ArrayD<f64>>;
    /// An array of i.i.d. `N(0, 1)` entries of the given shape.
    fn standard_normal(&mut self, shape: &[usize]) -> Result<ArrayD<f64>>;
}

/// Seeded draws: ChaCha8 from a `u64` seed (the convention of
/// [`sparseinv_solvers::random`]), one stream for the whole run; uniform entries are
/// `r − ½` with `r ∈ [0, 1)`, normal entries from `rand_distr::StandardNormal`.
#[derive(Debug, Clone)]
pub struct SeededDraws(rand_chacha::ChaCha8Rng);

impl SeededDraws {
    /// A stream seeded with `seed` (the same seed gives the same bits on every platform).
    pub fn new(seed: u64) -> Self {
        SeededDraws(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }
}

impl DrawSource for SeededDraws {
    fn uniform(&mut self, shape: &[usize]) -> Result<ArrayD<f64>> {
        Ok(ArrayD::from_shape_simple_fn(IxDyn(shape), || {
            self.0.random::<f64>() - 0.5
        }))
    }
    fn standard_normal(&mut self, shape: &[usize]) -> Result<ArrayD<f64>> {
        Ok(ArrayD::from_shape_simple_fn(IxDyn(shape), || {
            StandardNormal.sample(&mut self.0)
        }))
    }
}

/// Draws replayed from a recording (e.g. the arrays of a run of the Python reference), in
/// call order. Asking for more draws than recorded, a normal draw where a uniform one was
/// recorded (or the converse), or another shape is an error.
#[derive(Debug, Clone, Default)]
pub struct RecordedDraws {
    queue: VecDeque<(bool, ArrayD<f64>)>,
}

impl RecordedDraws {
    /// An empty recording.
    pub fn new() -> Self {
        Self::default()
    }
    /// Append a uniform draw.
    pub fn push_uniform(&mut self, a: ArrayD<f64>) {
        self.queue.push_back((false, a));
    }
    /// Append a normal draw.
    pub fn push_normal(&mut self, a: ArrayD<f64>) {
        self.queue.push_back((true, a));
    }
    /// Draws not consumed yet.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }
    fn pop(&mut self, normal: bool, shape: &[usize]) -> Result<ArrayD<f64>> {
        let kind = if normal { "normal" } else { "uniform" };
        let (k, a) = self.queue.pop_front().ok_or_else(|| {
            param_err(
                "draws",
                format!("the recording is exhausted (asked for a {kind} draw of shape {shape:?})"),
            )
        })?;
        if k != normal || a.shape() != shape {
            return Err(param_err(
                "draws",
                format!(
                    "recorded a {} draw of shape {:?}, asked for a {kind} draw of shape {shape:?}",
                    if k { "normal" } else { "uniform" },
                    a.shape()
                ),
            ));
        }
        Ok(a)
    }
}

impl DrawSource for RecordedDraws {
    fn uniform(&mut self, shape: &[usize]) -> Result<ArrayD<f64>> {
        self.pop(false, shape)
    }
    fn standard_normal(&mut self, shape: &[usize]) -> Result<ArrayD<f64>> {
        self.pop(true, shape)
    }
}

/// The variational parameters. `a_z`, `a_h` are absent for [`Variant::Map`], `b` is present
/// only for [`Variant::VbleXz`].
#[derive(Debug, Clone, PartialEq)]
pub struct VbleState {
    /// Centre `z̄` of the latent posterior, `[1, 32, H/8, W/8]`.
    pub zbar: Array4<f64>,
    /// Centre `h̄` of the hyper-latent posterior, `[1, 24, H/16, W/16]`.
    pub hbar: Array4<f64>,
    /// Widths `a_z` of the uniform posterior of `z`.
    pub a_z: Option<Array4<f64>>,
    /// Widths `a_h` of the uniform posterior of `h`.
    pub a_h: Option<Array4<f64>>,
    /// Per-pixel factor `b` of the decoder standard deviation, `[H, W]`.
    pub b: Option<Array2<f64>>,
}

/// Gradients of the loss with respect to the fields of [`VbleState`] (same presence).
#[derive(Debug, Clone, PartialEq)]
pub struct VbleGradient {
    /// `∂L/∂z̄`.
    pub zbar: Array4<f64>,
    /// `∂L/∂h̄`.
    pub hbar: Array4<f64>,
    /// `∂L/∂a_z`.
    pub a_z: Option<Array4<f64>>,
    /// `∂L/∂a_h`.
    pub a_h: Option<Array4<f64>>,
    /// `∂L/∂b`.
    pub b: Option<Array2<f64>>,
}

/// A restoration problem `y = A x + n` for a [`VblePrior`]: the operator, the data (NaN =
/// missing, excluded from the data term), the noise level and the prior weight `λ`.
pub struct VbleProblem<'a> {
    prior: &'a VblePrior,
    op: &'a dyn LinearOperator<f64>,
    /// data with missing entries set to 0
    y: ArrayD<f64>,
    /// 1 on observed entries, 0 on missing ones; `None` when all are observed
    w: Option<ArrayD<f64>>,
    sigma_n: f64,
    lambda: f64,
    image: [usize; 2],
    sigma_grad: bool,
    onnx_time: std::cell::Cell<Duration>,
}

impl std::fmt::Debug for VbleProblem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VbleProblem")
            .field("image", &self.image)
            .field("data_shape", &self.y.shape())
            .field("sigma_n", &self.sigma_n)
            .field("lambda", &self.lambda)
            .finish()
    }
}

impl<'a> VbleProblem<'a> {
    /// Check and set up the problem. `op` maps an `[H, W]` image (H, W multiples of 16) to
    /// the shape of `y`; `y` may hold NaN for missing data (at least one entry must be
    /// finite; ±∞ is an error); `sigma_n > 0` is the noise standard deviation of `y`;
    /// `lambda > 0` weighs the prior terms.
    pub fn new(
        prior: &'a VblePrior,
        op: &'a dyn LinearOperator<f64>,
        y: ArrayViewD<'_, f64>,
        sigma_n: f64,
        lambda: f64,
    ) -> Result<Self> {
        prior.check_image_shape(op.domain_shape())?;
        let image = [op.domain_shape()[0], op.domain_shape()[1]];
        if op.range_shape() != y.shape() {
            return Err(sparseinv_solvers::Error::shape(
                "VBLE data y",
                op.range_shape(),
                y.shape(),
            )
            .into());
        }
        if !(sigma_n > 0.0 && sigma_n.is_finite()) {
            return Err(param_err(
                "sigma_n",
                format!(
                    "VBLE needs the noise standard deviation of the data (> 0, finite), got \
                     {sigma_n}"
                ),
            ));
        }
        if !(lambda > 0.0 && lambda.is_finite()) {
            return Err(param_err(
                "lambda",
                format!("must be positive and finite, got {lambda}"),
            ));
        }
        if y.iter().any(|v| v.is_infinite()) {
            return Err(param_err(
                "y",
                "holds ±∞ (NaN marks missing data, ∞ is not allowed)",
            ));
        }
        let missing = y.iter().filter(|v| v.is_nan()).count();
        if missing == y.len() {
            return Err(param_err(
                "y",
                "every entry is NaN (missing): nothing to fit",
            ));
        }
        let w = (missing > 0).then(|| y.mapv(|v| if v.is_nan() { 0.0 } else { 1.0 }));
        let y = y.mapv(|v| if v.is_nan() { 0.0 } else { v });
        Ok(VbleProblem {
            prior,
            op,
            y,
            w,
            sigma_n,
            lambda,
            image,
            sigma_grad: false,
            onnx_time: std::cell::Cell::new(Duration::ZERO),
        })
    }

    /// Let the data term's gradient flow through `σ(z)` in `x = x_mean(z) + b σ(z) ε`
    /// (`g_sigma = g_x b ε` in the decoder VJP), making the gradient the exact derivative of
    /// the loss. Default `false`: `σ` is detached, as in the paper and the reference loop
    /// (its `--sigma-grad` flag is this option).
    pub fn with_sigma_grad(mut self, on: bool) -> Self {
        self.sigma_grad = on;
        self
    }

    /// The image size `[H, W]`.
    pub fn image_shape(&self) -> [usize; 2] {
        self.image
    }

    /// Time spent in the ONNX graphs so far.
    pub fn onnx_time(&self) -> Duration {
        self.onnx_time.get()
    }

    fn timed<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let r = f();
        self.onnx_time.set(self.onnx_time.get() + t.elapsed());
        r
    }

    /// The initial image `x₀ = Aᵀ(w y) ⊘ Aᵀ w` on the pixels where `Aᵀ w > 10⁻¹² max Aᵀ w`,
    /// and the mean of those values elsewhere (`w` = 1 on observed data, 0 on NaN). This is
    /// the reference's `A⁺ y` for its operators: `Aᵀ y` for a unit-sum periodic blur,
    /// `4 Aᵀ y` for the 2×2 block average, and `y` filled with the mean of the observed
    /// pixels for a mask.
    pub fn initial_image(&self) -> Result<Array2<f64>> {
        let ones = match &self.w {
            Some(w) => w.clone(),
            None => ArrayD::from_elem(self.y.shape(), 1.0),
        };
        let num = self.op.adjoint(self.y.view())?;
        let den = self.op.adjoint(ones.view())?;
        let top = den.iter().fold(0f64, |m, &v| m.max(v));
        if top.is_nan() || top <= 0.0 {
            return Err(param_err(
                "operator",
                "Aᵀ1 has no positive entry: cannot form the initial image Aᵀy ⊘ Aᵀ1 (give \
                 VbleParams::init)",
            ));
        }
        let cut = 1e-12 * top;
        let (mut sum, mut n) = (0.0, 0usize);
        for (a, d) in num.iter().zip(&den) {
            if *d > cut {
                sum += a / d;
                n += 1;
            }
        }
        let fill = sum / n as f64;
        let x0 = Zip::from(&num)
            .and(&den)
            .map_collect(|&a, &d| if d > cut { a / d } else { fill });
        x0.into_dimensionality::<Ix2>()
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// The initial state: `z̄, h̄ = encode(x₀)`, `a_z = a_h = 1`, `b = 1` as the variant needs.
    pub fn initial_state(&self, x0: ArrayView2<'_, f64>, variant: Variant) -> Result<VbleState> {
        if x0.shape() != self.image {
            return Err(sparseinv_solvers::Error::shape(
                "VBLE initial image",
                &self.image,
                x0.shape(),
            )
            .into());
        }
        let (zbar, hbar) = self.timed(|| self.prior.encode(x0))?;
        let latent = variant != Variant::Map;
        Ok(VbleState {
            a_z: latent.then(|| Array4::ones(zbar.raw_dim())),
            a_h: latent.then(|| Array4::ones(hbar.raw_dim())),
            b: (variant == Variant::VbleXz).then(|| Array2::ones(self.image)),
            zbar,
            hbar,
        })
    }

    /// Draw what one optimisation step of `variant` needs, in the reference's order.
    pub fn draw_step(&self, variant: Variant, rng: &mut dyn DrawSource) -> Result<StepDraws> {
        if variant == Variant::Map {
            return Ok(StepDraws::default());
        }
        let (zs, hs) = self.prior.latent_shapes(self.image)?;
        let u_z = to4d(rng.uniform(&zs)?)?;
        let u_h = to4d(rng.uniform(&hs)?)?;
        let eps = if variant == Variant::VbleXz {
            Some(to2d(rng.standard_normal(&self.image)?)?)
        } else {
            None
        };
        Ok(StepDraws {
            u_z: Some(u_z),
            u_h: Some(u_h),
            eps,
        })
    }

    /// The loss `L` of the [module documentation](self) and its gradient at `state` for the
    /// given draws. The variant is read from the state (`b` present: VBLE-xz; `a_z` absent:
    /// MAP). All arithmetic is `f64`; the graphs run in float32.
    pub fn loss_and_gradient(
        &self,
        state: &VbleState,
        draws: &StepDraws,
    ) -> Result<(f64, VbleGradient)> {
        let lam = self.lambda;
        let (z, h) = match (&state.a_z, &state.a_h) {
            (Some(az), Some(ah)) => {
                let (uz, uh) = match (&draws.u_z, &draws.u_h) {
                    (Some(uz), Some(uh)) => (uz, uh),
                    _ => return Err(param_err("draws", "u_z and u_h are needed (not MAP)")),
                };
                check_same("u_z", uz.shape(), az.shape())?;
                check_same("u_h", uh.shape(), ah.shape())?;
                (&state.zbar + &(az * uz), &state.hbar + &(ah * uh))
            }
            (None, None) => (state.zbar.clone(), state.hbar.clone()),
            _ => {
                return Err(param_err(
                    "state",
                    "a_z and a_h must both be set or both unset",
                ))
            }
        };
        let (xm, sg) = self.timed(|| self.prior.decode(z.view()))?;
        let mut x = xm;
        if let Some(b) = &state.b {
            let eps = draws
                .eps
                .as_ref()
                .ok_or_else(|| param_err("draws", "ε is needed for VBLE-xz"))?;
            check_same("eps", eps.shape(), b.shape())?;
            Zip::from(&mut x)
                .and(b)
                .and(&sg)
                .and(eps)
                .for_each(|x, &b, &s, &e| *x += b * s * e);
        }
        let mut r = self.op.apply(x.view().into_dyn())?;
        r -= &self.y;
        if let Some(w) = &self.w {
            r *= w;
        }
        let inv_s2 = 1.0 / (self.sigma_n * self.sigma_n);
        let data = 0.5 * inv_s2 * r.iter().map(|v| v * v).sum::<f64>();
        let g_x = (self.op.adjoint(r.view())? * inv_s2)
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let g_sigma = match (&state.b, &draws.eps) {
            (Some(b), Some(eps)) if self.sigma_grad => Zip::from(&g_x)
                .and(b)
                .and(eps)
                .map_collect(|&g, &b, &e| g * b * e),
            _ => Array2::<f64>::zeros(self.image),
        };
        let d_data = self.timed(|| self.prior.decode_vjp(z.view(), g_x.view(), g_sigma.view()))?;
        let (rate, drz, drh) = self.timed(|| self.prior.rate(z.view(), h.view()))?;
        let d_z = d_data + &(drz * lam);
        let d_h = drh * lam;
        let mut loss = data + lam * rate;
        let mut grad = VbleGradient {
            zbar: d_z,
            hbar: d_h,
            a_z: None,
            a_h: None,
            b: None,
        };
        if let (Some(az), Some(ah), Some(uz), Some(uh)) =
            (&state.a_z, &state.a_h, &draws.u_z, &draws.u_h)
        {
            if az.iter().chain(ah.iter()).any(|&a| a.is_nan() || a <= 0.0) {
                return Err(param_err("state", "a_z and a_h must be positive"));
            }
            loss -= lam * (az.mapv(f64::ln).sum() + ah.mapv(f64::ln).sum());
            grad.a_z = Some(
                Zip::from(&grad.zbar)
                    .and(uz)
                    .and(az)
                    .map_collect(|&d, &u, &a| d * u - lam / a),
            );
            grad.a_h = Some(
                Zip::from(&grad.hbar)
                    .and(uh)
                    .and(ah)
                    .map_collect(|&d, &u, &a| d * u - lam / a),
            );
        }
        if let (Some(b), Some(eps)) = (&state.b, &draws.eps) {
            if b.iter().any(|&v| v.is_nan() || v <= 0.0) {
                return Err(param_err("state", "b must be positive"));
            }
            loss += lam * 0.5 * b.iter().map(|&b| b * b - 2.0 * b.ln() - 1.0).sum::<f64>();
            grad.b = Some(
                Zip::from(&g_x)
                    .and(&sg)
                    .and(eps)
                    .and(b)
                    .map_collect(|&g, &s, &e, &b| g * s * e + lam * (b - 1.0 / b)),
            );
        }
        Ok((loss, grad))
    }

    /// One posterior sample: `z = z̄ + a_z u` (or `z̄` for MAP), `x = x_mean(z)` plus
    /// `b σ(z) ε` for VBLE-xz; draws `u_z` then `ε` from `rng`.
    pub fn sample(&self, state: &VbleState, rng: &mut dyn DrawSource) -> Result<Array2<f64>> {
        let z = match &state.a_z {
            Some(az) => {
                let u = to4d(rng.uniform(state.zbar.shape())?)?;
                &state.zbar + &(az * &u)
            }
            None => state.zbar.clone(),
        };
        let (mut x, sg) = self.timed(|| self.prior.decode(z.view()))?;
        if let Some(b) = &state.b {
            let eps = to2d(rng.standard_normal(&self.image)?)?;
            Zip::from(&mut x)
                .and(b)
                .and(&sg)
                .and(&eps)
                .for_each(|x, &b, &s, &e| *x += b * s * e);
        }
        Ok(x)
    }
}

fn check_same(what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(sparseinv_solvers::Error::shape(format!("VBLE draw {what}"), want, got).into());
    }
    Ok(())
}

fn to4d(a: ArrayD<f64>) -> Result<Array4<f64>> {
    let s = a.shape().to_vec();
    a.into_dimensionality::<Ix4>()
        .map_err(|_| param_err("draws", format!("expected a 4-D draw, got shape {s:?}")))
}

fn to2d(a: ArrayD<f64>) -> Result<Array2<f64>> {
    let s = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| param_err("draws", format!("expected a 2-D draw, got shape {s:?}")))
}

/// Bias-corrected Adam moments of one array.
#[derive(Debug, Clone)]
struct Moments<D: ndarray::Dimension> {
    m: ndarray::Array<f64, D>,
    v: ndarray::Array<f64, D>,
}

impl<D: ndarray::Dimension> Moments<D> {
    fn new(like: &ndarray::Array<f64, D>) -> Self {
        Moments {
            m: ndarray::Array::zeros(like.raw_dim()),
            v: ndarray::Array::zeros(like.raw_dim()),
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        p: &mut ndarray::Array<f64, D>,
        g: &ndarray::Array<f64, D>,
        lr: f64,
        c1: f64,
        c2: f64,
        clamp: Option<(f64, f64)>,
    ) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        Zip::from(p)
            .and(&mut self.m)
            .and(&mut self.v)
            .and(g)
            .for_each(|p, m, v, &g| {
                *m = B1 * *m + (1.0 - B1) * g;
                *v = B2 * *v + (1.0 - B2) * g * g;
                *p -= lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
                if let Some((lo, hi)) = clamp {
                    *p = p.clamp(lo, hi);
                }
            });
    }
}

/// The VBLE optimisation loop: a [`VbleProblem`], the current [`VbleState`] and Adam
/// (β = 0.9/0.999, ε = 10⁻⁸, bias-corrected) with the clamps of `a` and `b`.
#[derive(Debug)]
pub struct VbleSolver<'a> {
    problem: VbleProblem<'a>,
    state: VbleState,
    variant: Variant,
    lr: f64,
    a_clamp: (f64, f64),
    b_clamp: (f64, f64),
    t: i32,
    mz: Moments<Ix4>,
    mh: Moments<Ix4>,
    maz: Moments<Ix4>,
    mah: Moments<Ix4>,
    mb: Moments<Ix2>,
}

impl<'a> VbleSolver<'a> {
    /// Start from `state` (e.g. [`VbleProblem::initial_state`]) with learning rate `lr > 0`
    /// and the prior's clamp intervals.
    pub fn new(
        problem: VbleProblem<'a>,
        state: VbleState,
        variant: Variant,
        lr: f64,
    ) -> Result<Self> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(param_err(
                "lr",
                format!("must be positive and finite, got {lr}"),
            ));
        }
        let want_latent = variant != Variant::Map;
        if state.a_z.is_some() != want_latent
            || state.a_h.is_some() != want_latent
            || state.b.is_some() != (variant == Variant::VbleXz)
        {
            return Err(param_err(
                "state",
                format!("the fields present do not match the variant {variant:?}"),
            ));
        }
        let d = problem.prior.info().defaults;
        let z1 = Array4::zeros((0, 0, 0, 0));
        Ok(VbleSolver {
            mz: Moments::new(&state.zbar),
            mh: Moments::new(&state.hbar),
            maz: Moments::new(state.a_z.as_ref().unwrap_or(&z1)),
            mah: Moments::new(state.a_h.as_ref().unwrap_or(&z1)),
            mb: Moments::new(state.b.as_ref().unwrap_or(&Array2::zeros((0, 0)))),
            problem,
            state,
            variant,
            lr,
            a_clamp: d.a_clamp,
            b_clamp: d.b_clamp,
            t: 0,
        })
    }

    /// The current parameters.
    pub fn state(&self) -> &VbleState {
        &self.state
    }

    /// The problem.
    pub fn problem(&self) -> &VbleProblem<'a> {
        &self.problem
    }

    /// Steps taken.
    pub fn steps_done(&self) -> usize {
        self.t as usize
    }

    /// One step with fresh draws from `rng`: returns the loss at the parameters before the
    /// update (as the reference records it).
    pub fn step(&mut self, rng: &mut dyn DrawSource) -> Result<f64> {
        let draws = self.problem.draw_step(self.variant, rng)?;
        self.step_with(&draws)
    }

    /// One step with the given draws: loss and gradient, Adam update, clamps. Returns the
    /// loss before the update.
    pub fn step_with(&mut self, draws: &StepDraws) -> Result<f64> {
        let (loss, g) = self.problem.loss_and_gradient(&self.state, draws)?;
        if !loss.is_finite() {
            return Err(Error::Runtime(format!(
                "VBLE loss became {loss} at step {} (check sigma_n and the data range [0, 1])",
                self.t + 1
            )));
        }
        self.t += 1;
        let c1 = 1.0 - 0.9f64.powi(self.t);
        let c2 = 1.0 - 0.999f64.powi(self.t);
        let s = &mut self.state;
        self.mz.step(&mut s.zbar, &g.zbar, self.lr, c1, c2, None);
        self.mh.step(&mut s.hbar, &g.hbar, self.lr, c1, c2, None);
        if let (Some(p), Some(g)) = (s.a_z.as_mut(), g.a_z.as_ref()) {
            self.maz.step(p, g, self.lr, c1, c2, Some(self.a_clamp));
        }
        if let (Some(p), Some(g)) = (s.a_h.as_mut(), g.a_h.as_ref()) {
            self.mah.step(p, g, self.lr, c1, c2, Some(self.a_clamp));
        }
        if let (Some(p), Some(g)) = (s.b.as_mut(), g.b.as_ref()) {
            self.mb.step(p, g, self.lr, c1, c2, Some(self.b_clamp));
        }
        Ok(loss)
    }
}

/// Parameters of [`restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct VbleParams {
    /// Noise standard deviation `σ_n` of the data (required, > 0).
    pub sigma_n: f64,
    /// Adam steps; `None`: the sidecar's default (200).
    pub steps: Option<usize>,
    /// Posterior samples; `None`: the sidecar's default (100). At least 2 for a standard
    /// deviation (ignored for MAP, which decodes `z̄` once).
    pub samples: Option<usize>,
    /// Adam learning rate; `None`: the sidecar's default (0.1).
    pub lr: Option<f64>,
    /// Prior weight `λ`; `None`: the sidecar's default (1).
    pub lambda: Option<f64>,
    /// Seed of the [`SeededDraws`] used when no draw source is given.
    pub seed: u64,
    /// Which posterior.
    pub variant: Variant,
    /// Keep the posterior samples in the output.
    pub keep_samples: bool,
    /// Initial image; `None`: [`VbleProblem::initial_image`].
    pub init: Option<Array2<f64>>,
    /// Differentiate through `σ(z)` too ([`VbleProblem::with_sigma_grad`]); default `false`.
    pub sigma_grad: bool,
}

impl VbleParams {
    /// Defaults for noise level `sigma_n`: VBLE-xz, seed 0, the sidecar's steps, samples,
    /// learning rate and `λ`.
    pub fn new(sigma_n: f64) -> Self {
        VbleParams {
            sigma_n,
            steps: None,
            samples: None,
            lr: None,
            lambda: None,
            seed: 0,
            variant: Variant::VbleXz,
            keep_samples: false,
            init: None,
            sigma_grad: false,
        }
    }
}

/// What [`restore`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct VbleReport {
    /// Loss of every step (before its update).
    pub loss: Vec<f64>,
    /// Mean of the final `a_z` (NaN for MAP).
    pub mean_a_z: f64,
    /// Mean of the final `a_h` (NaN for MAP).
    pub mean_a_h: f64,
    /// Mean of the final `b` (NaN unless VBLE-xz).
    pub mean_b: f64,
    /// Steps run.
    pub steps: usize,
    /// Samples drawn.
    pub samples: usize,
    /// Seconds spent in the ONNX graphs.
    pub onnx_seconds: f64,
    /// Seconds spent in Rust (operator, arithmetic, Adam): total minus ONNX.
    pub rust_seconds: f64,
}

/// The output of [`restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct VbleOutput {
    /// Posterior mean (MMSE estimate), `[H, W]`; for MAP, `x_mean(z̄)`.
    pub mean: Array2<f64>,
    /// Per-pixel posterior standard deviation (sample std, divisor `S − 1`); `None` for MAP.
    pub std: Option<Array2<f64>>,
    /// The samples, when [`VbleParams::keep_samples`] is set.
    pub samples: Option<Vec<Array2<f64>>>,
    /// The final parameters.
    pub state: VbleState,
    /// Loss history, final statistics and timings.
    pub report: VbleReport,
}

/// Restore `x` from `y = A x + n` with the VBLE prior: [`VbleProblem`] + [`VbleSolver`] for
/// `steps`, then `S` posterior samples → mean and standard deviation. Draws come from
/// `SeededDraws::new(params.seed)`; see [`restore_with_draws`] to inject them.
///
/// ```no_run
/// use sparseinv_models::vble::{restore, VbleParams, VblePrior};
/// use sparseinv_models::SessionOptions;
/// use sparseinv_solvers::op::{Boundary, Conv2d};
/// let prior = VblePrior::builtin(SessionOptions::default())?;
/// let psf = ndarray::Array2::from_elem((3, 3), 1.0 / 9.0);
/// let op = Conv2d::new([64, 64], psf.view(), Boundary::Circular)?;
/// let y = ndarray::ArrayD::from_elem(vec![64, 64], 0.4);
/// let out = restore(&prior, &op, y.view(), &VbleParams::new(0.01))?;
/// assert_eq!(out.mean.shape(), &[64, 64]);
/// assert!(out.std.is_some());
/// # Ok::<(), sparseinv_models::Error>(())
/// ```
pub fn restore(
    prior: &VblePrior,
    op: &dyn LinearOperator<f64>,
    y: ArrayViewD<'_, f64>,
    params: &VbleParams,
) -> Result<VbleOutput> {
    restore_with_draws(prior, op, y, params, &mut SeededDraws::new(params.seed))
}

/// [`restore`] with the draws taken from `rng` (in the reference's order: per step `u_z`,
/// `u_h`, `ε`; per sample `u_z`, `ε`).
pub fn restore_with_draws(
    prior: &VblePrior,
    op: &dyn LinearOperator<f64>,
    y: ArrayViewD<'_, f64>,
    params: &VbleParams,
    rng: &mut dyn DrawSource,
) -> Result<VbleOutput> {
    restore_with_progress(prior, op, y, params, rng, &mut |_, _, _| {})
}

/// Which part of [`restore_with_progress`] is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VblePhase {
    /// The Adam steps on the variational parameters.
    Optimise,
    /// Drawing the posterior samples.
    Sample,
}

/// [`restore_with_draws`] that calls `progress(phase, done, total)` after every Adam step
/// and every posterior sample (for progress bars); the results are those of
/// [`restore_with_draws`].
pub fn restore_with_progress(
    prior: &VblePrior,
    op: &dyn LinearOperator<f64>,
    y: ArrayViewD<'_, f64>,
    params: &VbleParams,
    rng: &mut dyn DrawSource,
    progress: &mut dyn FnMut(VblePhase, usize, usize),
) -> Result<VbleOutput> {
    let start = Instant::now();
    let d = prior.info().defaults;
    let steps = params.steps.unwrap_or(d.steps);
    let samples = params.samples.unwrap_or(d.samples);
    let variant = params.variant;
    if variant != Variant::Map && samples < 2 {
        return Err(param_err(
            "samples",
            format!("need at least 2 posterior samples for a standard deviation, got {samples}"),
        ));
    }
    let problem = VbleProblem::new(
        prior,
        op,
        y,
        params.sigma_n,
        params.lambda.unwrap_or(d.lambda),
    )?
    .with_sigma_grad(params.sigma_grad);
    let x0 = match &params.init {
        Some(x0) => x0.clone(),
        None => problem.initial_image()?,
    };
    let state = problem.initial_state(x0.view(), variant)?;
    let mut solver = VbleSolver::new(problem, state, variant, params.lr.unwrap_or(d.lr))?;
    let mut loss = Vec::with_capacity(steps);
    for k in 0..steps {
        loss.push(solver.step(rng)?);
        progress(VblePhase::Optimise, k + 1, steps);
    }
    let problem = &solver.problem;
    let state = &solver.state;
    let (mean, std, kept, drawn) = if variant == Variant::Map {
        let (xm, _) = problem.timed(|| prior.decode(state.zbar.view()))?;
        (xm, None, None, 0)
    } else {
        let mut acc = Array2::<f64>::zeros(problem.image);
        let mut acc2 = Array2::<f64>::zeros(problem.image);
        let mut kept = params.keep_samples.then(Vec::new);
        for k in 0..samples {
            let x = problem.sample(state, rng)?;
            progress(VblePhase::Sample, k + 1, samples);
            Zip::from(&mut acc)
                .and(&mut acc2)
                .and(&x)
                .for_each(|a, a2, &v| {
                    *a += v;
                    *a2 += v * v;
                });
            if let Some(k) = kept.as_mut() {
                k.push(x);
            }
        }
        let s = samples as f64;
        let mean = acc / s;
        let std = Zip::from(&acc2)
            .and(&mean)
            .map_collect(|&a2, &m| ((a2 / s - m * m).max(0.0) * s / (s - 1.0)).sqrt());
        (mean, Some(std), kept, samples)
    };
    let avg = |a: Option<&Array4<f64>>| a.and_then(|a| a.mean()).unwrap_or(f64::NAN);
    let total = start.elapsed().as_secs_f64();
    let onnx = problem.onnx_time().as_secs_f64();
    let report = VbleReport {
        loss,
        mean_a_z: avg(state.a_z.as_ref()),
        mean_a_h: avg(state.a_h.as_ref()),
        mean_b: state.b.as_ref().and_then(|b| b.mean()).unwrap_or(f64::NAN),
        steps,
        samples: drawn,
        onnx_seconds: onnx,
        rust_seconds: (total - onnx).max(0.0),
    };
    Ok(VbleOutput {
        mean,
        std,
        samples: kept,
        state: solver.state,
        report,
    })
}
