//! `sparseinv deconvolve IN.fits --psf PSF.fits --method wiener|tikhonov|rl|starlet -o OUT.fits`:
//! deconvolve a FITS image by a known PSF (header and WCS kept, masked pixels left out of the
//! data term of the iterative methods).

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Zip};
use sparseinv::io::fits::{read_fits_spec, write_fits_2d, Header, WriteOptions};
use sparseinv_solvers::deconv::{
    refit_active, richardson_lucy, starlet_sparse, tikhonov, wiener, Balance, Regulariser,
    RlParams, StarletSparseParams,
};
use sparseinv_solvers::iter::{Control, IterInfo};
use sparseinv_solvers::op::Boundary;
use std::path::PathBuf;
use std::time::Instant;

/// Deconvolution method.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Method {
    /// Wiener filter (circular model; masked pixels filled with the mean of the valid ones).
    Wiener,
    /// Tikhonov with a Laplacian regulariser (circular model; masked pixels filled likewise).
    Tikhonov,
    /// Richardson–Lucy (zero boundary, masked pixels excluded, Biggs–Andrews acceleration).
    Rl,
    /// Starlet-sparse analysis ℓ1 with positivity (zero boundary, masked pixels excluded).
    Starlet,
}

/// Arguments of `sparseinv deconvolve`.
#[derive(Args, Debug)]
pub struct DeconvolveArgs {
    /// Input FITS image (`file.fits` or `file.fits[N]`).
    pub input: String,
    /// PSF FITS image (normalised to unit sum; centre at (h/2, w/2)).
    #[arg(long)]
    pub psf: PathBuf,
    /// Method.
    #[arg(long, value_enum, default_value_t = Method::Rl)]
    pub method: Method,
    /// Output FITS file (32-bit float; masked pixels are NaN).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Iterations (rl, starlet).
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Wiener balance / Tikhonov weight; default: estimated from the noise (Wiener), 0.01
    /// (Tikhonov).
    #[arg(long)]
    pub balance: Option<f64>,
    /// Threshold in noise units (starlet).
    #[arg(long, default_value_t = 3.0)]
    pub k_sigma: f64,
    /// Re-fit the significant starlet coefficients to the data after the starlet solve.
    #[arg(long)]
    pub refit_active: bool,
    /// Before/after PNG preview (asinh stretch).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// Run `sparseinv deconvolve`.
pub fn run(args: DeconvolveArgs) -> anyhow::Result<()> {
    for p in std::iter::once(&args.output)
        .chain(args.png.as_ref())
        .chain(args.json.as_ref())
    {
        if p.exists() && !args.force {
            bail!("{} already exists (pass --force to overwrite)", p.display());
        }
    }
    let img = read_fits_spec(&args.input, None)?;
    let y = img.image2d()?.to_owned();
    let valid = img.plane_valid(0).to_owned();
    let psf = sparseinv::psf::load_psf(&args.psf, None)?;
    let (psf, _) = sparseinv::psf::normalize(psf.view())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.psf.display()))?;
    if psf.nrows() > y.nrows() || psf.ncols() > y.ncols() {
        bail!(
            "PSF {}×{} is larger than the image {}×{}",
            psf.nrows(),
            psf.ncols(),
            y.nrows(),
            y.ncols()
        );
    }
    let nvalid = valid.iter().filter(|&&b| b).count();
    if nvalid == 0 {
        bail!("{}: every pixel is masked", img.path.display());
    }
    let flux_in: f64 = Zip::from(&y)
        .and(&valid)
        .fold(0.0, |a, &v, &m| if m { a + v } else { a });
    let mean = flux_in / nvalid as f64;
    let filled = Zip::from(&y)
        .and(&valid)
        .map_collect(|&v, &m| if m { v } else { mean });
    let t0 = Instant::now();
    let mut iterations = 0usize;
    let x: Array2<f64> = match args.method {
        Method::Wiener => {
            let b = args.balance.map_or(Balance::Auto, Balance::Fixed);
            wiener(filled.view(), psf.view(), b)?
        }
        Method::Tikhonov => tikhonov(
            filled.view(),
            psf.view(),
            Regulariser::Laplacian,
            args.balance.unwrap_or(0.01),
        )?,
        Method::Rl => {
            let pb = crate::cli::progress_bar(args.iters as u64, "richardson-lucy");
            let mut obs = |i: &IterInfo<f64>| {
                pb.set_position(i.iter as u64);
                Control::Continue
            };
            let p = RlParams {
                accelerate: true,
                ..RlParams::default()
            };
            // RL needs non-negative data: offset by the minimum when negative
            let off = Zip::from(&y)
                .and(&valid)
                .fold(0.0f64, |a, &v, &m| if m { a.min(v) } else { a });
            let yp = filled.mapv(|v| v - off);
            let (x, rep) = richardson_lucy(
                yp.view(),
                psf.view(),
                Some(valid.view()),
                p,
                args.iters,
                0.0,
                Some(&mut obs),
            )?;
            pb.finish_and_clear();
            iterations = rep.iterations;
            x + off
        }
        Method::Starlet => {
            let p = StarletSparseParams {
                iters: args.iters,
                k_sigma: args.k_sigma,
                ..StarletSparseParams::default()
            };
            let r = starlet_sparse(filled.view(), psf.view(), Some(valid.view()), &p)?;
            iterations = args.iters;
            if args.refit_active {
                refit_active(
                    filled.view(),
                    psf.view(),
                    Some(valid.view()),
                    r.x.view(),
                    &r.lambdas,
                    Boundary::Same,
                    10,
                )?
            } else {
                r.x
            }
        }
    };
    let elapsed = t0.elapsed().as_secs_f64();
    let flux_out: f64 = Zip::from(&x)
        .and(&valid)
        .fold(0.0, |a, &v, &m| if m { a + v } else { a });
    let out = Zip::from(&x)
        .and(&valid)
        .map_collect(|&v, &m| if m { v as f32 } else { f32::NAN });
    let command: Vec<String> = std::env::args().collect();
    let mut extra = Header::default();
    extra.set_str(
        "DECONV",
        &format!("{:?}", args.method).to_lowercase(),
        "deconvolution method",
    );
    write_fits_2d(
        &args.output,
        out.view(),
        &WriteOptions {
            header: Some(&img.header),
            extra: Some(&extra),
            history: vec![
                format!("sparseinv {} deconvolve", env!("CARGO_PKG_VERSION")),
                format!("command: {}", command.join(" ")),
            ],
            force: args.force,
        },
    )
    .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(png) = &args.png {
        sparseinv::io::image::write_side_by_side(
            png,
            y.view(),
            x.view(),
            sparseinv::io::image::Stretch::default(),
            true,
            args.force,
        )?;
    }
    eprintln!(
        "{}: {:?}, {} iterations, {:.2} s; flux {:.6e} -> {:.6e} -> {}",
        img.path.display(),
        args.method,
        iterations,
        elapsed,
        flux_in,
        flux_out,
        args.output.display()
    );
    if let Some(j) = &args.json {
        let v = serde_json::json!({
            "input": img.path,
            "psf": args.psf,
            "method": format!("{:?}", args.method).to_lowercase(),
            "iterations": iterations,
            "seconds": elapsed,
            "flux_before": flux_in,
            "flux_after": flux_out,
            "masked_pixels": y.len() - nvalid,
            "output": args.output,
        });
        crate::cli::write_json(j, &v, args.force)?;
    }
    Ok(())
}
