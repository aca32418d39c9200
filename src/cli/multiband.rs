//! `sparseinv multiband --band r.fits --psf psf_r.fits --band i.fits --psf psf_i.fits ...
//! --wide vis.fits --wide-psf psf_vis.fits -o OUTDIR`: joint deconvolution of low-resolution
//! bands with a high-resolution wide band that covers them, a thin layer over
//! [`sparseinv::pipeline::multiband`] (which documents the model, grids, sky, noise and
//! tiling). Writes `OUTDIR/<band>.fits` per band on the wide band's grid (its header and WCS,
//! `HISTORY` of what was done), `OUTDIR/report.json`, and with `--png` a Lupton et al. (2004)
//! asinh colour composite of the input bands (upsampled) beside the restored ones.

use anyhow::Context;
use clap::{Args, ValueEnum};
use sparseinv::pipeline::multiband::{multiband_fits, MultibandOptions, Prior};
use std::path::PathBuf;

/// Prior of the joint problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriorArg {
    /// Positivity + starlet ℓ1 per band, thresholds in noise units (primal–dual solver).
    Starlet,
    /// Plug-and-play with the starlet hard-thresholding denoiser (`--strength`).
    Pnp,
}

/// Arguments of `sparseinv multiband`.
#[derive(Args, Debug)]
pub struct MultibandArgs {
    /// A low-resolution band (FITS); repeat for each band, each followed by its --psf.
    #[arg(long = "band", required = true)]
    pub bands: Vec<PathBuf>,
    /// The PSF of the preceding --band, sampled on the wide band's (fine) grid.
    #[arg(long = "psf", required = true)]
    pub psfs: Vec<PathBuf>,
    /// The high-resolution wide band (FITS) whose grid the outputs share.
    #[arg(long)]
    pub wide: PathBuf,
    /// The wide band's PSF.
    #[arg(long)]
    pub wide_psf: PathBuf,
    /// Output directory (made if missing).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The bands' weights in the wide band, comma-separated (default: fitted from the data).
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<f64>>,
    /// Prior.
    #[arg(long, value_enum, default_value_t = PriorArg::Starlet)]
    pub prior: PriorArg,
    /// Strength of the PnP denoiser (1: the noise level one gradient step leaves).
    #[arg(long, default_value_t = 1.0)]
    pub strength: f64,
    /// Starlet threshold in noise units.
    #[arg(long, default_value_t = 3.0)]
    pub k_sigma: f64,
    /// Iterations.
    #[arg(long, default_value_t = 200)]
    pub iters: usize,
    /// Resolution ratio (needed when an image has no WCS; checked against the WCS otherwise).
    #[arg(long)]
    pub ratio: Option<usize>,
    /// Offset of each band's grid in band pixels as ROW,COL (how far band pixel (0,0)'s
    /// centre lies from the centre of its fine block); repeat per band; needed without WCS.
    #[arg(long = "offset", value_parser = parse_pair)]
    pub offsets: Vec<[f64; 2]>,
    /// Keep the sky in the data (default: subtract each image's clipped median and add it back).
    #[arg(long)]
    pub no_sky: bool,
    /// Tile side on the fine grid (default: 1024 when a side exceeds 2048; 0: never tile).
    #[arg(long)]
    pub tile: Option<usize>,
    /// Write a colour composite PNG: inputs (upsampled) | restored.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

fn parse_pair(s: &str) -> Result<[f64; 2], String> {
    let v: Vec<&str> = s.split(',').collect();
    if v.len() != 2 {
        return Err(format!("expected ROW,COL, got {s:?}"));
    }
    let p = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{t:?} is not a finite number"))
    };
    Ok([p(v[0])?, p(v[1])?])
}

/// Run `sparseinv multiband`.
pub fn run(args: MultibandArgs) -> anyhow::Result<()> {
    if args.bands.len() != args.psfs.len() {
        anyhow::bail!(
            "{} --band but {} --psf: give one --psf after each --band",
            args.bands.len(),
            args.psfs.len()
        );
    }
    if !args.offsets.is_empty() && args.offsets.len() != args.bands.len() {
        anyhow::bail!(
            "{} --offset for {} bands: give one per band, or none",
            args.offsets.len(),
            args.bands.len()
        );
    }
    if let Some(p) = &args.png {
        super::check_outputs(std::iter::once(p.as_path()), args.force)?;
    }
    let opts = MultibandOptions {
        ratio: args.ratio,
        offsets: (!args.offsets.is_empty()).then(|| args.offsets.clone()),
        weights: args.weights.clone(),
        prior: match args.prior {
            PriorArg::Starlet => Prior::Starlet,
            PriorArg::Pnp => Prior::Pnp,
        },
        k_sigma: args.k_sigma,
        strength: args.strength,
        iterations: args.iters,
        sky: !args.no_sky,
        tile: args.tile,
        ..Default::default()
    };
    let pairs: Vec<(PathBuf, PathBuf)> = args
        .bands
        .iter()
        .cloned()
        .zip(args.psfs.iter().cloned())
        .collect();
    let pb = super::progress_bar(args.iters as u64, "multiband");
    let res = multiband_fits(
        &pairs,
        (&args.wide, &args.wide_psf),
        &args.output,
        &opts,
        args.force,
        &mut |p| {
            pb.set_length(p.total as u64);
            pb.set_position(p.done as u64);
        },
    )
    .context("multiband deconvolution failed")?;
    pb.finish_and_clear();
    let rep = &res.report;
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    for b in &rep.bands {
        eprintln!(
            "{}: sigma {:.4e}, sky {:.4e}, alpha {:.4}{}, flux {:.6e} -> {:.6e}",
            b.name,
            b.sigma,
            b.sky,
            b.alpha.unwrap_or(f64::NAN),
            b.alpha_std_error
                .map_or(String::new(), |e| format!(" ± {e:.4}")),
            b.flux_in,
            b.flux_out
        );
    }
    eprintln!(
        "ratio {}, alpha {}, {} tile(s), {} iterations ({}), {:.2} s -> {}",
        rep.ratio,
        rep.alpha_method,
        rep.tiles,
        rep.iterations,
        rep.stop_reason,
        rep.seconds,
        args.output.display()
    );
    if let Some(png) = &args.png {
        write_composite(png, &args, &res)?;
        eprintln!("colour composite -> {}", png.display());
    }
    Ok(())
}

/// Inputs (each band pixel spread over its r×r fine pixels) | restored, as Lupton asinh RGB
/// with the reddest band (the last) as red; the same stretch for both panels, set from the
/// restored images (their 99.5th percentile of the mean band flux).
fn write_composite(
    png: &std::path::Path,
    args: &MultibandArgs,
    res: &sparseinv::pipeline::multiband::Multiband,
) -> anyhow::Result<()> {
    use ndarray::Array2;
    let rep = &res.report;
    let r = rep.ratio;
    let r2 = (r * r) as f64;
    let k = res.bands.len();
    let pick: [usize; 3] = if k >= 3 {
        [k - 1, k / 2, 0]
    } else if k == 2 {
        [1, 0, 0]
    } else {
        [0, 0, 0]
    };
    let mut inputs = Vec::with_capacity(k);
    for (b, path) in args.bands.iter().enumerate() {
        let img = sparseinv::io::fits::read_fits_spec(&path.to_string_lossy(), None)?;
        let d = img.image2d()?;
        let sky = rep.bands[b].sky;
        let up = Array2::from_shape_fn(res.bands[b].dim(), |(i, j)| (d[[i / r, j / r]] - sky) / r2);
        inputs.push(up);
    }
    let restored: Vec<Array2<f64>> = res
        .bands
        .iter()
        .enumerate()
        .map(|(b, x)| x.mapv(|v| v - rep.bands[b].sky / r2))
        .collect();
    let mut mean: Vec<f64> = restored[0]
        .indexed_iter()
        .map(|(ix, _)| restored.iter().map(|x| x[ix]).sum::<f64>() / k as f64)
        .filter(|v| v.is_finite())
        .collect();
    mean.sort_by(|a, b| a.total_cmp(b));
    let p995 = mean
        .get(((mean.len() as f64) * 0.995) as usize)
        .copied()
        .unwrap_or(1.0)
        .max(1e-30);
    let q = 8.0;
    let stretch = p995 / 20.0;
    let rgb = |set: &[Array2<f64>]| {
        sparseinv::io::image::lupton_rgb(
            set[pick[0]].view(),
            set[pick[1]].view(),
            set[pick[2]].view(),
            q,
            stretch,
        )
    };
    let a = rgb(&inputs);
    let b = rgb(&restored);
    sparseinv::io::image::write_rgb_panels(png, &[a.view(), b.view()], true, args.force)?;
    Ok(())
}
