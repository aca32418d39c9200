//! `sparseinv psf IN.fits -o PSF.fits`: estimate an empirical PSF from the isolated,
//! unsaturated stars of an image: a thin layer over [`sparseinv::pipeline::estimate_psf`].

use anyhow::Context;
use clap::Args;
use sparseinv::io::fits::{write_fits_2d, Header, WriteOptions};
use sparseinv::pipeline::{estimate_psf, EstimatedPsf, PsfOptions};
use std::path::PathBuf;

/// Arguments of `sparseinv psf`.
#[derive(Args, Debug)]
pub struct PsfArgs {
    /// Input FITS image (`file.fits` or `file.fits[N]` for HDU N, 0 = primary).
    pub input: String,
    /// Output FITS file for the PSF (32-bit float, unit sum, centre at (size/2, size/2)).
    #[arg(short, long)]
    pub output: PathBuf,
    /// HDU to read (0 = primary); default: the first HDU with image data.
    #[arg(long)]
    pub hdu: Option<usize>,
    /// Side of the square PSF stamp in pixels (odd).
    #[arg(long, default_value_t = 25)]
    pub size: usize,
    /// Detection threshold in units of the background noise.
    #[arg(long, default_value_t = 5.0)]
    pub k_sigma: f64,
    /// Saturation level (data units); default: the SATURATE header keyword, else 95 % of a
    /// clipped maximum when one is detected.
    #[arg(long)]
    pub saturation: Option<f64>,
    /// Reject stars with another detection closer than this (pixels; default: size / 2)...
    #[arg(long)]
    pub isolation: Option<f64>,
    /// ...unless that detection is fainter than this fraction of the star's peak.
    #[arg(long, default_value_t = 0.05)]
    pub neighbour_ratio: f64,
    /// Use at most this many (brightest accepted) stars.
    #[arg(long, default_value_t = 100)]
    pub max_stars: usize,
    /// Detections sharper than this (1 − mean of the 8 neighbours / peak) are cosmic rays or
    /// hot pixels; a single-pixel hit has ≈ 1, a star of FWHM 2 px 0.63.
    #[arg(long, default_value_t = 0.9)]
    pub max_sharpness: f64,
    /// Stars more elongated than this ellipticity (0 round, 1 a line) are rejected.
    #[arg(long, default_value_t = 0.5)]
    pub max_ellipticity: f64,
    /// Also write a PNG preview of the PSF (asinh stretch).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write a JSON report (stars used, rejections, FWHM) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
}

/// Run `sparseinv psf`.
pub fn run(args: PsfArgs) -> anyhow::Result<()> {
    // refuse early, before any work, if an output exists
    super::check_outputs(
        std::iter::once(args.output.as_path())
            .chain(args.png.as_deref())
            .chain(args.json.as_deref()),
        args.force,
    )?;
    let input = super::read_fits_input(&args.input, args.hdu)?;
    let img = &input.image;
    let plane = input.data.view();
    let saturation = args.saturation.or_else(|| img.header.get_f64("SATURATE"));
    let params = PsfOptions {
        size: args.size,
        k_sigma: args.k_sigma,
        saturation,
        isolation: args.isolation,
        neighbour_ratio: args.neighbour_ratio,
        max_stars: args.max_stars,
        max_sharpness: args.max_sharpness,
        max_ellipticity: args.max_ellipticity,
    };
    // masked pixels are NaN in `plane`, which the pipeline masks
    let EstimatedPsf { psf, report } = estimate_psf(plane, &params)
        .with_context(|| format!("{}: PSF estimation failed", img.path.display()))?;

    let mut extra = Header::default();
    extra.set_f64("NSTARS", report.used as f64, "stars stacked into this PSF");
    if let Some(f) = report.fwhm {
        extra.set_f64("FWHM", f, "FWHM in pixels (adaptive moments)");
    }
    let mut history = super::history_lines("psf");
    history.extend([
        format!(
            "input {} HDU {}; size {}, k_sigma {}, saturation {:?}, isolation {:?}, \
             neighbour_ratio {}, max_stars {}, max_sharpness {}, max_ellipticity {}",
            img.path.display(),
            img.hdu,
            args.size,
            args.k_sigma,
            saturation,
            args.isolation,
            args.neighbour_ratio,
            args.max_stars,
            args.max_sharpness,
            args.max_ellipticity
        ),
        format!(
            "{} stars used of {} detections (rejected: {} edge, {} masked, {} saturated, {} \
             neighbour, {} cosmic ray/hot pixel, {} elongated, {} outlier)",
            report.used,
            report.detected,
            report.rejected_edge,
            report.rejected_masked,
            report.rejected_saturated,
            report.rejected_neighbour,
            report.rejected_sharp,
            report.rejected_elongated,
            report.rejected_outlier
        ),
    ]);
    let psf32 = psf.mapv(|v| v as f32);
    write_fits_2d(
        &args.output,
        psf32.view(),
        &WriteOptions {
            header: None,
            extra: Some(&extra),
            history,
            force: args.force,
        },
    )?;
    if let Some(png) = &args.png {
        // nearest-neighbour enlargement to at least 256 px, so that a small PSF is visible
        let f = 256usize.div_ceil(psf.nrows().max(psf.ncols())).max(1);
        let big = ndarray::Array2::from_shape_fn((psf.nrows() * f, psf.ncols() * f), |(y, x)| {
            psf[[y / f, x / f]]
        });
        sparseinv::io::image::write_preview(
            png,
            big.view(),
            sparseinv::io::image::Stretch::Asinh(sparseinv::io::image::Limits::MinMax, 0.02),
            true,
            args.force,
        )?;
    }
    eprintln!(
        "{}: {} stars used of {} detected (rejected: {} at the edge, {} masked, {} saturated, \
         {} with neighbours, {} cosmic rays/hot pixels, {} elongated, {} outliers); background \
         {:.4}, noise {:.4}; PSF FWHM {} px -> {}",
        img.path.display(),
        report.used,
        report.detected,
        report.rejected_edge,
        report.rejected_masked,
        report.rejected_saturated,
        report.rejected_neighbour,
        report.rejected_sharp,
        report.rejected_elongated,
        report.rejected_outlier,
        report.background,
        report.noise,
        report
            .fwhm
            .map_or_else(|| "n/a".to_string(), |f| format!("{f:.3}")),
        args.output.display()
    );
    if let Some(j) = &args.json {
        let v = serde_json::json!({
            "input": img.path,
            "hdu": img.hdu,
            "output": args.output,
            "size": args.size,
            "report": report,
        });
        super::write_json(j, &v, args.force)?;
    }
    Ok(())
}
