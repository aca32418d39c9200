//! `sparseinv denoise IN --model M.onnx|builtin [--sigma S] -o OUT`: run a learned (ONNX)
//! denoiser on a `.npy` array, a FITS image or a PNG/TIFF picture, in overlapping tiles, with a
//! progress bar: a thin layer over [`sparseinv::pipeline::denoise`].
//!
//! Data: `.npy` float32/float64 of shape `[H, W]`, `[C, H, W]` or `[N, C, H, W]` in any units
//! (normalised by robust percentiles unless `--offset/--scale` are given); FITS images
//! (`file.fits[N]` picks an HDU; a cube's planes are denoised one by one; written as 32-bit
//! float FITS with the input header kept; normalised like `.npy`); PNG/TIFF 8/16-bit gray or
//! RGB(A) (alpha dropped), read as values in `[0, 1]` and written back at the same bit depth
//! (clipped). `--sigma` is the noise standard deviation in the data's units (`[0, 1]` units
//! for PNG/TIFF). `--model builtin` is the shipped grayscale network (embedded in the binary;
//! colour channels and cube planes are run as separate images).

use anyhow::{bail, Context};
use clap::Args;
use ndarray::{Array3, ArrayD, IxDyn};
use sparseinv::pipeline::{denoise_with_progress, DenoiseModel, DenoiseOptions, Denoised};
use std::path::{Path, PathBuf};

/// Arguments of `sparseinv denoise`.
#[derive(Args, Debug)]
pub struct DenoiseArgs {
    /// Input: .npy (float32/float64, [H,W], [C,H,W] or [N,C,H,W]), FITS (`file.fits[N]`),
    /// .png or .tif/.tiff.
    pub input: PathBuf,
    /// ONNX denoiser graph (float32 [N, C(+1 noise map), H, W] -> [N, C, H, W]), `builtin`
    /// for the shipped grayscale network, or `starlet` for starlet hard thresholding (4
    /// scales, 3σ; 4σ on the finest scale).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Noise standard deviation in the data's units ([0, 1] units for PNG).
    #[arg(long, short = 's', default_value_t = 0.05)]
    pub sigma: f64,
    /// Output file (.npy, .fits, .png or .tif/.tiff; same kind as the input).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
    /// Execution device and threads.
    #[command(flatten)]
    pub runtime: crate::cli::RuntimeArgs,
    /// Tile side in pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Overlap between tiles in pixels.
    #[arg(long, default_value_t = 32)]
    pub overlap: usize,
    /// Fixed normalisation offset (with --scale); default: robust percentiles (PNG: 0 and 1).
    #[arg(long, requires = "scale")]
    pub offset: Option<f64>,
    /// Fixed normalisation scale (> 0).
    #[arg(long, requires = "offset")]
    pub scale: Option<f64>,
    /// Lower/upper percentiles for the automatic normalisation.
    #[arg(long, num_args = 2, default_values_t = [0.1, 99.9])]
    pub percentiles: Vec<f64>,
    /// Write a JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

enum Kind {
    Npy,
    Png {
        sixteen: bool,
    },
    #[cfg(feature = "fits")]
    Fits(Box<sparseinv::io::fits::Header>),
}

fn kind_of(p: &Path) -> anyhow::Result<&'static str> {
    let name = p.to_string_lossy().to_ascii_lowercase();
    // strip a FITS HDU selector `[N]`
    let name = match name.rfind('[') {
        Some(i) if name.ends_with(']') => name[..i].to_string(),
        _ => name,
    };
    match name.rsplit('.').next() {
        Some("npy") => Ok("npy"),
        Some("png") | Some("tif") | Some("tiff") => Ok("png"),
        #[cfg(feature = "fits")]
        Some("fits") | Some("fit") | Some("fts") => Ok("fits"),
        _ => bail!(
            "{}: unsupported file type (use .npy, .fits, .png or .tif/.tiff)",
            p.display()
        ),
    }
}

fn read_png(path: &Path) -> anyhow::Result<(ArrayD<f32>, bool)> {
    let img = image::open(path).with_context(|| format!("reading {}", path.display()))?;
    let sixteen = matches!(
        img.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
    );
    let gray = matches!(
        img.color(),
        image::ColorType::L8
            | image::ColorType::L16
            | image::ColorType::La8
            | image::ColorType::La16
    );
    let (w, h) = (img.width() as usize, img.height() as usize);
    if gray {
        let g = img.to_luma32f();
        let a = ArrayD::from_shape_vec(IxDyn(&[h, w]), g.into_raw())?;
        Ok((a, sixteen))
    } else {
        let rgb = img.to_rgb32f();
        let hwc = ndarray::Array3::from_shape_vec((h, w, 3), rgb.into_raw())?;
        let chw: Array3<f32> = hwc.permuted_axes([2, 0, 1]).as_standard_layout().to_owned();
        Ok((chw.into_dyn(), sixteen))
    }
}

fn write_png(path: &Path, a: &ArrayD<f32>, sixteen: bool, force: bool) -> anyhow::Result<()> {
    let (c, h, w) = match a.shape() {
        [h, w] => (1, *h, *w),
        [c, h, w] => (*c, *h, *w),
        s => bail!("cannot write shape {s:?} as PNG"),
    };
    let hwc: Vec<f32> = if c == 1 {
        a.iter().copied().collect()
    } else {
        a.view()
            .into_shape_with_order((c, h, w))?
            .permuted_axes([1, 2, 0])
            .iter()
            .copied()
            .collect()
    };
    let max = if sixteen { 65535.0 } else { 255.0 };
    let q: Vec<u16> = hwc
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * max).round() as u16)
        .collect();
    let (w32, h32) = (w as u32, h as u32);
    let img: image::DynamicImage = match (c, sixteen) {
        (1, false) => image::GrayImage::from_raw(w32, h32, q.iter().map(|&v| v as u8).collect())
            .map(image::DynamicImage::ImageLuma8),
        (1, true) => image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w32, h32, q)
            .map(image::DynamicImage::ImageLuma16),
        (3, false) => image::RgbImage::from_raw(w32, h32, q.iter().map(|&v| v as u8).collect())
            .map(image::DynamicImage::ImageRgb8),
        (3, true) => image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(w32, h32, q)
            .map(image::DynamicImage::ImageRgb16),
        _ => None,
    }
    .context("cannot assemble the output image")?;
    let format = image::ImageFormat::from_path(path).unwrap_or(image::ImageFormat::Png);
    sparseinv::io::atomic_write(path, force, |tmp| {
        img.save_with_format(tmp, format)
            .map_err(|e| sparseinv::io::IoError::Format {
                path: tmp.to_path_buf(),
                reason: e.to_string(),
            })
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Read a FITS image (2-D → `[H, W]`, cube → `[planes, 1, H, W]`); undefined pixels are an
/// error.
#[cfg(feature = "fits")]
fn read_fits_input(input: &Path) -> anyhow::Result<(ArrayD<f32>, Kind)> {
    let img = sparseinv::io::fits::read_fits_spec(&input.to_string_lossy(), None)?;
    if img.n_masked() > 0 {
        bail!(
            "{}: {} pixels are NaN/blank; the denoiser needs a complete image",
            img.path.display(),
            img.n_masked()
        );
    }
    let (nz, ny, nx) = img.data.dim();
    let a = img.data.mapv(|v| v as f32);
    let a = if nz == 1 {
        a.into_shape_with_order(IxDyn(&[ny, nx]))?
    } else {
        a.into_shape_with_order(IxDyn(&[nz, 1, ny, nx]))?
    };
    Ok((a, Kind::Fits(Box::new(img.header))))
}

#[cfg(not(feature = "fits"))]
fn read_fits_input(input: &Path) -> anyhow::Result<(ArrayD<f32>, Kind)> {
    bail!("{}: FITS support is not compiled in", input.display())
}

/// Write the denoised planes as a 32-bit float FITS image with the input's header cards.
#[cfg(feature = "fits")]
fn write_fits_output(
    path: &Path,
    y: &ArrayD<f32>,
    header: &sparseinv::io::fits::Header,
    force: bool,
) -> anyhow::Result<()> {
    let s = y.shape();
    let (ny, nx) = (s[s.len() - 2], s[s.len() - 1]);
    let nz = y.len() / (ny * nx);
    let cube = y
        .view()
        .into_shape_with_order((nz, ny, nx))
        .map_err(|e| anyhow::anyhow!("cannot reshape the result: {e}"))?;
    let command: Vec<String> = std::env::args().collect();
    sparseinv::io::fits::write_fits(
        path,
        cube,
        &sparseinv::io::fits::WriteOptions {
            header: Some(header),
            extra: None,
            history: vec![
                format!("sparseinv {} denoise", env!("CARGO_PKG_VERSION")),
                format!("command: {}", command.join(" ")),
            ],
            force,
        },
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Run `sparseinv denoise`.
pub fn run(args: DenoiseArgs) -> anyhow::Result<()> {
    let kin = kind_of(&args.input)?;
    let kout = kind_of(&args.output)?;
    if kin != kout {
        bail!(
            "output {} must be the same kind as the input ({kin})",
            args.output.display()
        );
    }
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (pass --force to overwrite)",
            args.output.display()
        );
    }
    if !(args.sigma >= 0.0 && args.sigma.is_finite()) {
        bail!("--sigma must be finite and >= 0, got {}", args.sigma);
    }
    let (x, kind) = if kin == "npy" {
        let a = sparseinv::io::npy::read_npy(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?;
        match a {
            sparseinv::io::npy::NpyArray::Real(a) => (a.mapv(|v| v as f32), Kind::Npy),
            sparseinv::io::npy::NpyArray::Complex(_) => bail!(
                "{}: complex data cannot be denoised by an image model",
                args.input.display()
            ),
        }
    } else if kin == "png" {
        let (a, sixteen) = read_png(&args.input)?;
        (a, Kind::Png { sixteen })
    } else {
        read_fits_input(&args.input)?
    };
    let normalization = match (args.offset, args.scale, &kind) {
        (Some(offset), Some(scale), _) => Some((offset, scale)),
        (_, _, Kind::Png { .. }) => Some((0.0, 1.0)),
        _ => None,
    };
    let opts = DenoiseOptions {
        model: DenoiseModel::from_name(&args.model),
        sigma: args.sigma,
        tile: args.tile,
        overlap: args.overlap,
        normalization,
        percentiles: (args.percentiles[0], args.percentiles[1]),
        session: args.runtime.session_options(),
    };
    let pb = super::progress_bar(0, "denoising tiles");
    let Denoised { data: y, report } = denoise_with_progress(x.view(), &opts, &mut |p| {
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
    })
    .with_context(|| {
        format!(
            "denoising {} with {}",
            args.input.display(),
            args.model.display()
        )
    })?;
    pb.finish_and_clear();
    match kind {
        Kind::Npy => sparseinv::io::npy::write_npy(
            &args.output,
            &sparseinv::io::npy::NpyArray::Real(y.mapv(f64::from)),
            args.force,
        )
        .with_context(|| format!("writing {}", args.output.display()))?,
        Kind::Png { sixteen } => {
            let y3 = if y.ndim() == 4 {
                let s = y.shape().to_vec();
                y.clone()
                    .into_shape_with_order(IxDyn(&[s[0], s[2], s[3]]))?
            } else {
                y.clone()
            };
            write_png(&args.output, &y3, sixteen, args.force)?
        }
        #[cfg(feature = "fits")]
        Kind::Fits(header) => write_fits_output(&args.output, &y, &header, args.force)?,
    }
    eprintln!(
        "denoised {} ({:?}) with {} in {:.2} s ({} tile(s) per image{})",
        args.input.display(),
        report.shape,
        args.model.display(),
        report.seconds,
        report.tiles_per_image,
        match (&report.onnxruntime, &report.onnxruntime_source) {
            (Some(v), Some(s)) => format!(", ONNX Runtime {v} from {s}"),
            _ => String::new(),
        }
    );
    if let Some(j) = &args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("input".into(), args.input.display().to_string().into());
            o.insert("output".into(), args.output.display().to_string().into());
        }
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
