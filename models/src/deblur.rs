//! Learned non-blind deblurring ("INFWIDE-lite"): Wiener deconvolution in image space and in a
//! learned feature space, fused by a small network.
//!
//! The model follows the idea of INFWIDE (Zhang, Ma, Liu, Zhao, Jiang; "INFWIDE: Image and
//! feature space Wiener deconvolution network for non-blind image deblurring in low-light
//! conditions", IEEE Trans. Image Processing 32, 2023), reduced to what trains on a CPU in
//! minutes. Everything that needs a Fourier transform is a fixed formula computed here in Rust
//! (through [`sparseinv_solvers::deconv::wiener`]); only the convolutional parts are ONNX
//! graphs (PyTorch's ONNX exporter does not export FFTs).
//!
//! **Pipeline.** For an observation `y` (`H × W`), a PSF `k` (`kh × kw`, normalised here to
//! sum 1, centre at `(kh/2, kw/2)`) and the noise standard deviation `σ` (data units):
//!
//! 1. normalise `u = (y − offset)/scale`, `s = σ/scale` ([`Normalization`]; the shipped model
//!    was trained on `[0, 1]` data that saturate at 1);
//! 2. image-space Wiener `x_w = W_{μ₀}(u)` with `μ₀ = exp(β₀) s² + ε`;
//! 3. features `f = E([u, s])`: encoder graph, `[1, 2, H, W] → [1, C, H, W]` (second channel
//!    filled with `s`);
//! 4. feature-space Wiener `g_c = W_{μ_c}(f_c)` with `μ_c = exp(β_c) s² + ε`, `c = 1..C`;
//! 5. `û = D([u, x_w, g₁ … g_C, s])`: decoder graph, `[1, C+3, H', W'] → [1, 1, H', W']`, the
//!    input padded at the bottom/right by reflection to `H', W'` (multiples of
//!    [`DeblurParams::multiple`]) and the output cropped back (the shipped decoder predicts a
//!    residual on its `x_w` channel);
//! 6. map back `x̂ = scale · û + offset`.
//!
//! `W_μ` is [`wiener_reflect`]: reflection padding by the PSF size, the circular Wiener filter
//! `F⁻¹[conj(K) F[v] / (|K|² + μ)]` on the padded grid, crop — the solvers' one
//! pad-and-filter implementation [`sparseinv_solvers::deconv::wiener_padded`] with
//! whole-sample reflection (numpy/PyTorch `"reflect"`, the convention the model was trained
//! with). `β₀, β_c, ε` live in a JSON
//! sidecar next to the graphs ([`DeblurParams`]). The training script
//! `models/train/train_deblur.py` computes the same formulas in `torch.fft`.
//!
//! The FFT stages run on the whole image; the graphs too by default (memory about
//! `4 (C + 16) · H · W` bytes, ≈ 100 MB per megapixel for the shipped model), or in
//! overlapping blocks through the shared tiler [`sparseinv_solvers::tiling`]
//! ([`LearnedDeblur::set_tiling`]).

use crate::denoiser::{tile_error, Normalization, Tiling};
use crate::error::{Error, Result};
use crate::model::{OnnxModel, SessionOptions};
use ndarray::{s, Array2, Array4, ArrayView2, Axis};
use sparseinv_solvers::deconv::{pad, wiener_padded, Balance, Extension, Padding};
use sparseinv_solvers::tiling::{CoreLayout, Tiler};
use std::path::Path;

/// The fixed (non-graph) parameters of a [`LearnedDeblur`] model, read from its JSON sidecar.
///
/// Sidecar format (other keys are ignored):
/// `{"format": "sparseinv-infwide-lite", "version": 1, "features": C, "beta_image": β₀,
/// "beta_features": [β₁ … β_C], "eps": ε, "multiple": m, "encoder": "enc.onnx",
/// "decoder": "dec.onnx"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeblurParams {
    /// Number of feature maps `C` of the encoder.
    pub features: usize,
    /// `β₀`: the image-space Wiener balance is `μ₀ = exp(β₀) s² + ε`.
    pub beta_image: f64,
    /// `β_c`: the balance of feature map `c` is `μ_c = exp(β_c) s² + ε`.
    pub beta_features: Vec<f64>,
    /// `ε > 0`: the balance floor (keeps the filters bounded when `s = 0`).
    pub eps: f64,
    /// The decoder's input sizes are padded to a multiple of this.
    pub multiple: usize,
    /// Encoder graph file name, relative to the sidecar.
    pub encoder: String,
    /// Decoder graph file name, relative to the sidecar.
    pub decoder: String,
}

impl DeblurParams {
    /// Parse and validate a sidecar.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |m: String| Error::Contract(format!("deblur sidecar: {m}"));
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let fmt = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if fmt != "sparseinv-infwide-lite" {
            return Err(bad(format!(
                "format is `{fmt}`, expected `sparseinv-infwide-lite`"
            )));
        }
        let num = |k: &str| -> Result<f64> {
            v.get(k)
                .and_then(|x| x.as_f64())
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(format!("`{k}` missing or not a finite number")))
        };
        let text_of = |k: &str| -> Result<String> {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("`{k}` missing or not a string")))
        };
        let features = num("features")?;
        let multiple = num("multiple")?;
        let beta_features: Vec<f64> = v
            .get("beta_features")
            .and_then(|b| b.as_array())
            .ok_or_else(|| bad("`beta_features` missing or not an array".into()))?
            .iter()
            .map(|x| x.as_f64().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`beta_features` must hold finite numbers".into()))?;
        if features < 1.0 || features.fract() != 0.0 || beta_features.len() != features as usize {
            return Err(bad(format!(
                "`features` ({features}) must be a positive integer equal to the length of \
                 `beta_features` ({})",
                beta_features.len()
            )));
        }
        if multiple < 1.0 || multiple.fract() != 0.0 {
            return Err(bad(format!(
                "`multiple` must be a positive integer, got {multiple}"
            )));
        }
        let eps = num("eps")?;
        if eps <= 0.0 {
            return Err(bad(format!("`eps` must be > 0, got {eps}")));
        }
        Ok(DeblurParams {
            features: features as usize,
            beta_image: num("beta_image")?,
            beta_features,
            eps,
            multiple: multiple as usize,
            encoder: text_of("encoder")?,
            decoder: text_of("decoder")?,
        })
    }
}

/// Pad `a` by reflection without repeating the edge (numpy's `mode="reflect"`:
/// `… a₂ a₁ | a₀ a₁ … a_{n−1} | a_{n−2} …`) by `top`, `bottom` rows and `left`, `right`
/// columns. Each pad must be smaller than the side it reflects (`top, bottom < rows`,
/// `left, right < cols`, numpy's limit for a single reflection), otherwise an error. A
/// checked wrapper of [`sparseinv_solvers::deconv::pad`] with [`Extension::WholeSample`].
pub fn reflect_pad(
    a: ArrayView2<f64>,
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
) -> Result<Array2<f64>> {
    let (n0, n1) = a.dim();
    if top.max(bottom) >= n0 || left.max(right) >= n1 {
        return Err(sparseinv_solvers::Error::param(
            "padding",
            format!(
                "reflection by ({top}, {bottom}) rows and ({left}, {right}) columns needs an \
                 image larger than that, got {n0} × {n1}"
            ),
        )
        .into());
    }
    Ok(pad(
        a,
        &Padding {
            extension: Extension::WholeSample,
            rows: (top, bottom),
            cols: (left, right),
        },
    ))
}

/// Wiener deconvolution with reflective borders:
/// `W_μ(v) = crop( F⁻¹[ conj(K) F[pad(v)] / (|K|² + μ) ] )`.
///
/// `pad` reflects `v` ([`reflect_pad`]) by `kh` rows and `kw` columns on every side
/// (`kh × kw` the PSF shape), `K` is the transfer function of `psf` on the padded grid with
/// the PSF centre `(kh/2, kw/2)` at the origin, and `crop` keeps the central `H × W`: this is
/// [`wiener_padded`] with `Balance::Fixed(μ)` and
/// `Padding::symmetric(Extension::WholeSample, kh, kw)`. The reflection removes the
/// wrap-around jumps of the purely circular filter at the image borders. Needs `kh < H`,
/// `kw < W`, `μ ≥ 0` and finite inputs.
pub fn wiener_reflect(v: ArrayView2<f64>, psf: ArrayView2<f64>, mu: f64) -> Result<Array2<f64>> {
    let (h, w) = v.dim();
    let (kh, kw) = psf.dim();
    if kh >= h || kw >= w {
        return Err(sparseinv_solvers::Error::param(
            "padding",
            format!("reflection by the PSF size ({kh} × {kw}) needs a larger image, got {h} × {w}"),
        )
        .into());
    }
    let padding = Padding::symmetric(Extension::WholeSample, kh, kw);
    Ok(wiener_padded(v, psf, Balance::Fixed(mu), &padding)?)
}

/// A learned non-blind deblurring model: two ONNX graphs (encoder, decoder) and the Wiener
/// balances of its sidecar; see the [module documentation](self) for the exact pipeline.
#[derive(Debug)]
pub struct LearnedDeblur {
    encoder: OnnxModel,
    decoder: OnnxModel,
    params: DeblurParams,
    tiling: Option<Tiling>,
}

impl LearnedDeblur {
    /// Load a model from its JSON sidecar; the graphs named in it are looked up in the
    /// sidecar's directory.
    ///
    /// Errors: [`Error::Model`] for a missing file, [`Error::Contract`] for an invalid sidecar
    /// or graphs that do not fit it, and the errors of [`OnnxModel::load`].
    pub fn load(sidecar: impl AsRef<Path>, options: SessionOptions) -> Result<Self> {
        let sidecar = sidecar.as_ref();
        let text = std::fs::read_to_string(sidecar).map_err(|e| Error::Model {
            path: sidecar.to_path_buf(),
            reason: e.to_string(),
        })?;
        let params = DeblurParams::from_json(&text)?;
        let dir = sidecar.parent().unwrap_or_else(|| Path::new("."));
        let encoder = OnnxModel::load(dir.join(&params.encoder), options)?;
        let decoder = OnnxModel::load(dir.join(&params.decoder), options)?;
        Self::new(encoder, decoder, params)
    }

    /// Assemble a model from loaded graphs and parameters, checking that they fit together:
    /// each graph has one float32 input and output of rank 4, the encoder maps 2 channels to
    /// `features`, the decoder `features + 3` channels to 1 (where the graphs fix them).
    pub fn new(encoder: OnnxModel, decoder: OnnxModel, params: DeblurParams) -> Result<Self> {
        let check = |m: &OnnxModel, what: &str, cin: usize, cout: usize| -> Result<()> {
            let (i, o) = match (m.inputs(), m.outputs()) {
                ([i], [o]) => (i, o),
                _ => {
                    return Err(Error::Contract(format!(
                        "the {what} graph {} must have one input and one output",
                        m.path().display()
                    )))
                }
            };
            let ok = |t: &crate::model::TensorSpec, c: usize| {
                t.is_f32 && t.shape.len() == 4 && t.shape[1].is_none_or(|v| v == c)
            };
            if !ok(i, cin) || !ok(o, cout) {
                return Err(Error::Contract(format!(
                    "the {what} graph {} must map Float32 [N, {cin}, H, W] to Float32 \
                     [N, {cout}, H, W]; it maps {} {} to {} {}",
                    m.path().display(),
                    i.dtype,
                    i.shape_string(),
                    o.dtype,
                    o.shape_string()
                )));
            }
            Ok(())
        };
        check(&encoder, "encoder", 2, params.features)?;
        check(&decoder, "decoder", params.features + 3, 1)?;
        Ok(LearnedDeblur {
            encoder,
            decoder,
            params,
            tiling: None,
        })
    }

    /// The sidecar parameters.
    pub fn params(&self) -> &DeblurParams {
        &self.params
    }

    /// Tiling of the two graphs (the Wiener stages always run on the whole image). `None`
    /// (the default): each graph runs once on the whole image. `Some(t)`: images larger than
    /// `t.tile` in either axis run in `t.tile`-sized blocks, each extended by `t.overlap`
    /// pixels of context on every side (within the image), and only the block is kept: the
    /// shared tiler ([`sparseinv_solvers::tiling`]) with cores of `tile`, `halo = overlap`,
    /// `blend = 0` (no cross-fade: the halo is what makes the seams exact) and windows
    /// aligned to the sidecar's `multiple`, one block in flight.
    /// Exactly equal to whole-image inference when the overlap covers the networks'
    /// receptive-field radius (≈ 40 pixels for the shipped decoder), nearly so otherwise.
    /// Errors unless `tile ≥ 1` and `overlap ≥ multiple`.
    pub fn set_tiling(&mut self, tiling: Option<Tiling>) -> Result<()> {
        if let Some(t) = tiling {
            if t.tile == 0 || t.overlap < self.params.multiple {
                return Err(sparseinv_solvers::Error::param(
                    "tiling",
                    format!(
                        "need tile >= 1 and overlap >= {}, got tile {} overlap {}",
                        self.params.multiple, t.tile, t.overlap
                    ),
                )
                .into());
            }
        }
        self.tiling = tiling;
        Ok(())
    }

    /// The tiling in use (see [`set_tiling`](Self::set_tiling)).
    pub fn tiling(&self) -> Option<Tiling> {
        self.tiling
    }

    /// Run a graph on `x` (`[1, C_in, H, W]`) → `[1, cout, H, W]`, in blocks when tiling is on;
    /// each run's input is padded at the bottom/right by reflection to a multiple of
    /// `multiple` and its output cropped back.
    fn run_conv(
        &self,
        model: &OnnxModel,
        what: &str,
        x: Array4<f32>,
        cout: usize,
        multiple: usize,
    ) -> Result<Array4<f32>> {
        let (_, _, h, w) = x.dim();
        let (tile, halo) = match self.tiling {
            Some(t) if h > t.tile || w > t.tile => (t.tile, t.overlap),
            _ => (h.max(w), 0),
        };
        let tiler = Tiler {
            tile,
            halo,
            blend: 0,
            multiple,
            layout: CoreLayout::Uniform,
            max_in_flight: 1,
        };
        let run = |part: ndarray::ArrayViewD<'_, f32>| -> Result<ndarray::ArrayD<f32>> {
            let (hp, wp) = (part.shape()[2], part.shape()[3]);
            let y = model.run(&[part])?.swap_remove(0);
            if y.shape() != [1, cout, hp, wp] {
                return Err(Error::Contract(format!(
                    "the {what} returned shape {:?}, expected {:?}",
                    y.shape(),
                    [1, cout, hp, wp]
                )));
            }
            Ok(y)
        };
        tiler
            .process(x.into_dyn().view(), run, |_, _| {})
            .map_err(tile_error)?
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// Number of progress steps reported by [`deblur_with_progress`](Self::deblur_with_progress):
    /// `C + 3` (image Wiener, encoder, `C` feature Wieners, decoder).
    pub fn steps(&self) -> usize {
        self.params.features + 3
    }

    /// Deblur `y` (data units) blurred by `psf` with noise standard deviation `sigma` (data
    /// units); see [`deblur_with_progress`](Self::deblur_with_progress).
    pub fn deblur(
        &self,
        y: ArrayView2<f64>,
        psf: ArrayView2<f64>,
        sigma: f64,
        normalization: Normalization,
    ) -> Result<Array2<f64>> {
        self.deblur_with_progress(y, psf, sigma, normalization, &mut |_, _| {})
    }

    /// Deblur `y` by the pipeline of the [module documentation](self), calling
    /// `progress(done, total)` after each of the [`steps`](Self::steps) stages.
    ///
    /// `psf` is normalised to unit sum (its sum must be positive); `sigma ≥ 0` is the noise
    /// standard deviation in `y`'s units (for Poisson–Gaussian noise an average over the image,
    /// e.g. `sqrt(mean(y)/gain + σ_read²)`). Errors on empty or non-finite data, a PSF not
    /// smaller than the image in both axes, an image smaller than 4 × 4, and on graph failures.
    pub fn deblur_with_progress(
        &self,
        y: ArrayView2<f64>,
        psf: ArrayView2<f64>,
        sigma: f64,
        normalization: Normalization,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Array2<f64>> {
        let (h, w) = y.dim();
        let (kh, kw) = psf.dim();
        let param = |n: &str, m: String| -> Error { sparseinv_solvers::Error::param(n, m).into() };
        if y.is_empty() || psf.is_empty() {
            return Err(sparseinv_solvers::Error::Empty {
                what: if y.is_empty() { "image" } else { "PSF" }.into(),
            }
            .into());
        }
        sparseinv_solvers::error::check_finite("image", y.iter())?;
        sparseinv_solvers::error::check_finite("PSF", psf.iter())?;
        if h < 4 || w < 4 {
            return Err(param(
                "image",
                format!("must be at least 4 × 4, got {h} × {w}"),
            ));
        }
        if kh >= h || kw >= w {
            return Err(param(
                "psf",
                format!("the PSF ({kh} × {kw}) must be smaller than the image ({h} × {w})"),
            ));
        }
        let ksum: f64 = psf.sum();
        if ksum.is_nan() || ksum <= 0.0 {
            return Err(param(
                "psf",
                format!("must have a positive sum, got {ksum}"),
            ));
        }
        if !(sigma >= 0.0 && sigma.is_finite()) {
            return Err(param(
                "sigma",
                format!("must be finite and >= 0, got {sigma}"),
            ));
        }
        let flat: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let (offset, scale) = normalization.resolve(&flat)?;
        let u = y.mapv(|v| (v - offset) / scale);
        let sn = sigma / scale;
        let k = psf.mapv(|v| v / ksum);
        let p = &self.params;
        let total = self.steps();
        let mut done = 0;
        let mut step = |progress: &mut dyn FnMut(usize, usize)| {
            done += 1;
            progress(done, total);
        };
        let s2 = sn * sn;
        let xw = wiener_reflect(u.view(), k.view(), p.beta_image.exp() * s2 + p.eps)?;
        step(progress);
        let sf = sn as f32;
        let mut enc_in = Array4::<f32>::from_elem((1, 2, h, w), sf);
        enc_in
            .slice_mut(s![0, 0, .., ..])
            .assign(&u.mapv(|v| v as f32));
        let f = self.run_conv(&self.encoder, "encoder", enc_in, p.features, 1)?;
        step(progress);
        let mut dec_in = Array4::<f32>::zeros((1, p.features + 3, h, w));
        let mut put = |c: usize, a: &Array2<f64>| -> Result<()> {
            dec_in
                .slice_mut(s![0, c, .., ..])
                .assign(&a.mapv(|v| v as f32));
            Ok(())
        };
        put(0, &u)?;
        put(1, &xw)?;
        for (c, &beta) in p.beta_features.iter().enumerate() {
            let fc = f
                .index_axis(Axis(0), 0)
                .index_axis(Axis(0), c)
                .mapv(f64::from)
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|e| Error::Runtime(e.to_string()))?;
            let gc = wiener_reflect(fc.view(), k.view(), beta.exp() * s2 + p.eps)?;
            put(c + 2, &gc)?;
            step(progress);
        }
        dec_in.slice_mut(s![0, p.features + 2, .., ..]).fill(sf);
        let out = self.run_conv(&self.decoder, "decoder", dec_in, 1, p.multiple)?;
        step(progress);
        let x = out
            .slice(s![0, 0, .., ..])
            .mapv(|v| scale * v as f64 + offset);
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Runtime(
                "the decoder produced non-finite values".into(),
            ));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn reflect_pad_matches_numpy_reflect() {
        // np.pad([[1,2,3],[4,5,6],[7,8,9]], ((2,1),(1,2)), mode="reflect")
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
        let p = reflect_pad(a.view(), 2, 1, 1, 2).unwrap();
        let expect = array![
            [8.0, 7.0, 8.0, 9.0, 8.0, 7.0],
            [5.0, 4.0, 5.0, 6.0, 5.0, 4.0],
            [2.0, 1.0, 2.0, 3.0, 2.0, 1.0],
            [5.0, 4.0, 5.0, 6.0, 5.0, 4.0],
            [8.0, 7.0, 8.0, 9.0, 8.0, 7.0],
            [5.0, 4.0, 5.0, 6.0, 5.0, 4.0],
        ];
        assert_eq!(p, expect);
        assert!(reflect_pad(a.view(), 3, 0, 0, 0).is_err());
    }

    #[test]
    fn wiener_reflect_inverts_a_reflected_blur_in_the_interior() {
        // Blur a smooth image with reflective borders (brute force), then invert with μ → 0:
        // away from the borders W_0 recovers the image (the wrap-around of the padded grid
        // sits 3 pixels outside the image; its effect decays geometrically inwards).
        let (h, w) = (40, 44);
        let x = Array2::from_shape_fn((h, w), |(i, j)| {
            (0.3 * i as f64).sin() + (0.2 * j as f64).cos() + 0.01 * (i * j) as f64
        });
        let k = array![[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]];
        let xp = reflect_pad(x.view(), 1, 1, 1, 1).unwrap();
        let y = Array2::from_shape_fn((h, w), |(i, j)| {
            let mut acc = 0.0;
            for a in 0..3 {
                for b in 0..3 {
                    // y[i] = Σ k[a] x[i + 1 − a] (centre 1)
                    acc += k[[a, b]] * xp[[i + 2 - a, j + 2 - b]];
                }
            }
            acc
        });
        let xr = wiener_reflect(y.view(), k.view(), 1e-12).unwrap();
        let err = (&xr - &x)
            .slice(s![12..h - 12, 12..w - 12])
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-4, "interior error {err}");
        // a unit impulse PSF: W_μ(v) = v / (1 + μ) exactly
        let one = array![[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
        let d = wiener_reflect(x.view(), one.view(), 0.25).unwrap();
        let err = (&d - &x.mapv(|v| v / 1.25))
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-12, "impulse error {err}");
    }

    #[test]
    fn sidecar_validation() {
        let good = r#"{"format": "sparseinv-infwide-lite", "version": 1, "features": 2,
            "beta_image": 3.0, "beta_features": [1.0, 2.0], "eps": 1e-4, "multiple": 4,
            "encoder": "e.onnx", "decoder": "d.onnx"}"#;
        let p = DeblurParams::from_json(good).unwrap();
        assert_eq!(p.features, 2);
        assert_eq!(p.beta_features, vec![1.0, 2.0]);
        assert!(DeblurParams::from_json(&good.replace("[1.0, 2.0]", "[1.0]")).is_err());
        assert!(DeblurParams::from_json(&good.replace("1e-4", "0")).is_err());
        assert!(DeblurParams::from_json(&good.replace("infwide-lite", "other")).is_err());
        assert!(DeblurParams::from_json("{").is_err());
    }
}
