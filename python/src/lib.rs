//! `sparseinv._sparseinv`: the compiled core of the Python package `sparseinv`.
//!
//! Thin bindings of the library (PyO3 + rust-numpy): the pipelines (`deconvolve`,
//! `estimate_psf`, `denoise`, `deblur`), the shared `LinearOperator` as an `Operator` class,
//! and the solvers (`fista`, `sbl`, `sbl_kronecker`, `ksbl`, `omp`, `selfcal`). Arrays arrive as `float64`
//! (`bool` for masks) numpy arrays of any strides — the Python layer (`sparseinv/__init__.py`)
//! converts other dtypes and byte orders once — and are read in place, never copied when
//! already `float64` native-endian. Reports come back as JSON text that the Python layer turns
//! into dicts. Every computation runs with the GIL released, on the thread pool that
//! `set_threads` configures. Library errors become Python exceptions carrying the library's
//! message: `ValueError` for bad input, `OSError` for files, `RuntimeError` for numerical or
//! runtime (ONNX) failures.

use ndarray::{Array2, Array3, ArrayD, Ix2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyFileExistsError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparseinv::pipeline;
use sparseinv_solvers::iter::{NoObserver, StopCriteria};
use sparseinv_solvers::op::{Boundary, LinearOperator};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// errors and threads

/// A library error as the Python exception a user expects.
fn py_err(e: sparseinv::Error) -> PyErr {
    use sparseinv::Error as E;
    let msg = e.to_string();
    match &e {
        E::Io(sparseinv::io::IoError::Exists(p)) => PyFileExistsError::new_err(format!(
            "{} already exists (pass force=True to overwrite)",
            p.display()
        )),
        E::Io(_) | E::File { .. } => PyOSError::new_err(msg),
        E::Models(_) => PyRuntimeError::new_err(msg),
        E::Solvers(s) => solver_err_kind(s, msg),
        _ => PyValueError::new_err(msg),
    }
}

fn solver_err_kind(e: &sparseinv_solvers::Error, msg: String) -> PyErr {
    use sparseinv_solvers::Error as S;
    match e {
        S::Numerical(_) | S::Backend(_) => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

fn solver_err(e: sparseinv_solvers::Error) -> PyErr {
    let msg = e.to_string();
    solver_err_kind(&e, msg)
}

/// The pool computations run on: `None` is rayon's global pool (one thread per core).
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// Run `f` with the GIL released, on the configured thread pool.
fn compute<T: Send, F: FnOnce() -> T + Send>(py: Python<'_>, f: F) -> T {
    let pool = POOL.lock().map(|p| p.clone()).unwrap_or(None);
    py.detach(move || match pool {
        Some(p) => p.install(f),
        None => f(),
    })
}

/// Set the number of threads of every following computation (0: one per core, the default).
#[pyfunction]
fn set_threads(n: usize) -> PyResult<()> {
    let pool = if n == 0 {
        None
    } else {
        Some(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PyRuntimeError::new_err(format!("cannot start {n} threads: {e}")))?,
        ))
    };
    *POOL
        .lock()
        .map_err(|_| PyRuntimeError::new_err("thread pool lock poisoned"))? = pool;
    Ok(())
}

/// The number of threads computations run on.
#[pyfunction]
fn get_threads() -> usize {
    match POOL.lock().ok().and_then(|p| p.clone()) {
        Some(p) => p.current_num_threads(),
        None => rayon::current_num_threads(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| PyRuntimeError::new_err(format!("report: {e}")))
}

fn text(v: serde_json::Value) -> String {
    v.to_string()
}

// ---------------------------------------------------------------------------------------------
// pipelines

fn parse_method(s: &str) -> PyResult<pipeline::Method> {
    Ok(match s {
        "rl" => pipeline::Method::Rl,
        "wiener" => pipeline::Method::Wiener,
        "tikhonov" => pipeline::Method::Tikhonov,
        "starlet" => pipeline::Method::Starlet,
        "learned" => pipeline::Method::Learned,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown method {s:?} (expected \"rl\", \"wiener\", \"tikhonov\", \"starlet\" \
                 or \"learned\")"
            )))
        }
    })
}

fn parse_boundary_mode(s: &str) -> PyResult<pipeline::BoundaryMode> {
    Ok(match s {
        "zero" => pipeline::BoundaryMode::Zero,
        "reflect" => pipeline::BoundaryMode::Reflect,
        "periodic" => pipeline::BoundaryMode::Periodic,
        "smooth" => pipeline::BoundaryMode::Smooth,
        _ => {
            return Err(PyValueError::new_err(format!(
            "unknown boundary {s:?} (expected \"zero\", \"reflect\", \"periodic\" or \"smooth\")"
        )))
        }
    })
}

/// The options of `pipeline::deconvolve` from a dict of keyword arguments (unknown keys and
/// wrong types are a `ValueError`/`TypeError` naming the key).
fn deconvolve_options(kw: Option<&Bound<'_, PyDict>>) -> PyResult<pipeline::DeconvolveOptions> {
    let mut o = pipeline::DeconvolveOptions::default();
    let Some(kw) = kw else { return Ok(o) };
    for (k, v) in kw.iter() {
        let key: String = k.extract()?;
        if v.is_none() {
            match key.as_str() {
                "balance" => o.balance = None,
                "iters" => o.iters = None,
                "sky" => o.sky = None,
                "sky_mesh" => o.sky_mesh = None,
                "boundary" => o.boundary = None,
                "tile" => o.tile = None,
                "halo" => o.halo = None,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "option {key:?} cannot be None"
                    )))
                }
            }
            continue;
        }
        match key.as_str() {
            "method" => o.method = parse_method(&v.extract::<String>()?)?,
            "iters" => o.iters = Some(v.extract()?),
            "accelerate" => o.accelerate = v.extract()?,
            "max_iters" => o.max_iters = Some(v.extract()?),
            "precision" => {
                let p: String = v.extract()?;
                o.precision = match p.as_str() {
                    "auto" => pipeline::Precision::Auto,
                    "f64" | "float64" => pipeline::Precision::F64,
                    "f32" | "float32" => pipeline::Precision::F32,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "unknown precision {p:?} (expected \"auto\", \"f64\" or \"f32\")"
                        )))
                    }
                }
            }
            "balance" => o.balance = Some(v.extract()?),
            "k_sigma" => o.k_sigma = v.extract()?,
            "refit_active" => o.refit_active = v.extract()?,
            "refit_kappa" => o.refit_kappa = v.extract()?,
            "model" => {
                let m: String = v.extract()?;
                o.model = if m == "builtin" {
                    pipeline::LearnedModel::Builtin
                } else {
                    pipeline::LearnedModel::Path(m.into())
                }
            }
            "sky" => o.sky = Some(v.extract()?),
            "sky_mesh" => o.sky_mesh = Some(v.extract()?),
            "boundary" => o.boundary = Some(parse_boundary_mode(&v.extract::<String>()?)?),
            "tile" => o.tile = Some(v.extract()?),
            "halo" => o.halo = Some(v.extract()?),
            "normalize_psf" => o.normalize_psf = v.extract()?,
            "force" => o.force = v.extract()?,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown deconvolve option {key:?} (expected method, iters, accelerate, \
                     max_iters, precision, balance, k_sigma, refit_active, refit_kappa, model, sky, \
                     sky_mesh, boundary, tile, halo, normalize_psf)"
                )))
            }
        }
    }
    o.validate().map_err(py_err)?;
    Ok(o)
}

fn deconvolve_report(out: &pipeline::Deconvolved) -> PyResult<String> {
    let mut rep = json(&out.report)?;
    rep["psf_sum"] = out.report.psf_sum.into();
    rep["warnings"] = json(&out.report.warnings)?;
    Ok(text(rep))
}

/// Deconvolve `image` by `psf` (library `pipeline::deconvolve`); returns (image, report JSON).
#[pyfunction]
#[pyo3(signature = (image, psf, **options))]
fn deconvolve<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f64>,
    psf: PyReadonlyArray2<'py, f64>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyArray2<f64>>, String)> {
    let opts = deconvolve_options(options)?;
    let (img, k) = (image.as_array(), psf.as_array());
    let out = compute(py, || pipeline::deconvolve(img, k, &opts)).map_err(py_err)?;
    let rep = deconvolve_report(&out)?;
    Ok((out.image.into_pyarray(py), rep))
}

fn globals_to_dict<'py>(
    py: Python<'py>,
    g: &pipeline::DeconvolveGlobals,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sky", g.sky)?;
    d.set_item("balance", g.balance)?;
    d.set_item("rl_offset", g.rl_offset)?;
    d.set_item("rl_init", g.rl_init)?;
    d.set_item("rl_background", g.rl_background)?;
    d.set_item("noise_sigma", g.noise_sigma)?;
    d.set_item("prior", g.prior.name())?;
    d.set_item("noise_var0", g.noise_var0)?;
    d.set_item("noise_slope", g.noise_slope)?;
    d.set_item("rl_iters", g.rl_iters)?;
    d.set_item("rl_capped", g.rl_capped)?;
    d.set_item("starlet_k", g.starlet_k)?;
    Ok(d)
}

fn globals_from_dict(d: &Bound<'_, PyDict>) -> PyResult<pipeline::DeconvolveGlobals> {
    let get = |k: &str| -> PyResult<f64> {
        d.get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("globals lacks {k:?}")))?
            .extract()
    };
    // the keys added after the first release default to their neutral values
    let opt = |k: &str| -> PyResult<f64> {
        match d.get_item(k)? {
            Some(v) => v.extract(),
            None => Ok(0.0),
        }
    };
    let prior = match d.get_item("prior")? {
        None => pipeline::FourierPrior::White,
        Some(v) => match v.extract::<String>()?.as_str() {
            "white" => pipeline::FourierPrior::White,
            "gradient" => pipeline::FourierPrior::Gradient,
            "laplacian" => pipeline::FourierPrior::Laplacian,
            other => {
                return Err(PyValueError::new_err(format!(
                    "globals: unknown prior {other:?} (expected white, gradient or laplacian)"
                )))
            }
        },
    };
    Ok(pipeline::DeconvolveGlobals {
        sky: get("sky")?,
        balance: get("balance")?,
        rl_offset: get("rl_offset")?,
        rl_init: get("rl_init")?,
        rl_background: get("rl_background")?,
        noise_sigma: get("noise_sigma")?,
        prior,
        noise_var0: opt("noise_var0")?,
        noise_slope: opt("noise_slope")?,
        rl_iters: match d.get_item("rl_iters")? {
            Some(v) => v.extract()?,
            None => 0,
        },
        rl_capped: match d.get_item("rl_capped")? {
            Some(v) => v.extract()?,
            None => false,
        },
        starlet_k: opt("starlet_k")?,
    })
}

/// The global quantities of a deconvolution of `image` (library
/// `pipeline::deconvolve_globals`) as a dict.
#[pyfunction]
#[pyo3(signature = (image, psf, **options))]
fn deconvolve_globals<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f64>,
    psf: PyReadonlyArray2<'py, f64>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = deconvolve_options(options)?;
    let img = image.as_array();
    let k = psf.as_array();
    let g = compute(py, || pipeline::deconvolve_globals(img, k, &opts)).map_err(py_err)?;
    globals_to_dict(py, &g)
}

/// `globals` with the Richardson–Lucy quantities set from the minimum, sum and count of the
/// valid pixels of the whole image (library `DeconvolveGlobals::set_rl`).
#[pyfunction]
fn globals_with_rl<'py>(
    py: Python<'py>,
    globals: &Bound<'py, PyDict>,
    min: f64,
    sum: f64,
    n: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let mut g = globals_from_dict(globals)?;
    g.set_rl(min, sum, n);
    globals_to_dict(py, &g)
}

/// Deconvolve one window with given global quantities (library `pipeline::deconvolve_window`).
#[pyfunction]
#[pyo3(signature = (window, psf, globals, **options))]
fn deconvolve_window<'py>(
    py: Python<'py>,
    window: PyReadonlyArray2<'py, f64>,
    psf: PyReadonlyArray2<'py, f64>,
    globals: &Bound<'py, PyDict>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let opts = deconvolve_options(options)?;
    let g = globals_from_dict(globals)?;
    let (w, k) = (window.as_array(), psf.as_array());
    let out = compute(py, || pipeline::deconvolve_window(w, k, &opts, &g)).map_err(py_err)?;
    Ok(out.into_pyarray(py))
}

/// Deconvolve the FITS file `input` (`file.fits[N]` selects an HDU) by the PSF in the FITS file
/// `psf_path` or the array `psf`, and write `output` atomically with the input's header (WCS
/// kept) and HISTORY (library `Deconvolved::write_fits`). Never overwrites an existing output
/// unless `force`, nor ever the input. Returns the report JSON.
#[pyfunction]
#[pyo3(signature = (input, output, psf_path=None, psf=None, **options))]
fn deconvolve_file<'py>(
    py: Python<'py>,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    psf_path: Option<std::path::PathBuf>,
    psf: Option<PyReadonlyArray2<'py, f64>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<String> {
    let opts = deconvolve_options(options)?;
    let psf_view = psf.as_ref().map(|p| p.as_array());
    let out = compute(py, move || -> sparseinv::Result<pipeline::Deconvolved> {
        // an existing output is refused before the PSF is read, as before
        if output.exists() && !opts.force {
            return Err(sparseinv::io::IoError::Exists(output.clone()).into());
        }
        let (kernel, label) = match (&psf_path, psf_view) {
            (Some(p), None) => (sparseinv::psf::load_psf(p, None)?, p.display().to_string()),
            (None, Some(k)) => (k.to_owned(), "array".to_string()),
            _ => {
                return Err(sparseinv::Error::Input(
                    "give exactly one of psf_path (a FITS file) and psf (an array)".into(),
                ))
            }
        };
        pipeline::deconvolve_fits_with_psf(&input, kernel.view(), &label, &output, &opts, "Python")
    })
    .map_err(py_err)?;
    deconvolve_report(&out)
}

/// The options of `pipeline::multiband::multiband` from keyword arguments.
fn multiband_options(
    kw: Option<&Bound<'_, PyDict>>,
) -> PyResult<pipeline::multiband::MultibandOptions> {
    use pipeline::multiband::{MultibandOptions, Prior};
    let mut o = MultibandOptions::default();
    let Some(kw) = kw else { return Ok(o) };
    for (k, v) in kw.iter() {
        let key: String = k.extract()?;
        if v.is_none() {
            match key.as_str() {
                "ratio" => o.ratio = None,
                "offsets" => o.offsets = None,
                "weights" => o.weights = None,
                "tile" => o.tile = None,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "option {key:?} cannot be None"
                    )))
                }
            }
            continue;
        }
        match key.as_str() {
            "ratio" => o.ratio = Some(v.extract()?),
            "offsets" => {
                let pairs: Vec<(f64, f64)> = v.extract()?;
                o.offsets = Some(pairs.into_iter().map(|(a, b)| [a, b]).collect());
            }
            "weights" => o.weights = Some(v.extract()?),
            "prior" => {
                let p: String = v.extract()?;
                o.prior = match p.as_str() {
                    "starlet" => Prior::Starlet,
                    "pnp" => Prior::Pnp,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "unknown prior {p:?} (expected \"starlet\" or \"pnp\")"
                        )))
                    }
                }
            }
            "scales" => o.scales = v.extract()?,
            "k_sigma" => o.k_sigma = v.extract()?,
            "strength" => o.strength = v.extract()?,
            "iterations" => o.iterations = v.extract()?,
            "sky" => o.sky = v.extract()?,
            "tile" => o.tile = Some(v.extract()?),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown multiband option {key:?} (expected ratio, offsets, weights, prior, \
                     scales, k_sigma, strength, iterations, sky, tile)"
                )))
            }
        }
    }
    Ok(o)
}

/// Joint multiband deconvolution on arrays (library `pipeline::multiband::multiband`):
/// returns (restored bands `[K, H, W]` on the wide band's grid, report JSON).
#[pyfunction]
#[pyo3(signature = (bands, psfs, wide, wide_psf, names, **options))]
fn multiband<'py>(
    py: Python<'py>,
    bands: Vec<PyReadonlyArray2<'py, f64>>,
    psfs: Vec<PyReadonlyArray2<'py, f64>>,
    wide: PyReadonlyArray2<'py, f64>,
    wide_psf: PyReadonlyArray2<'py, f64>,
    names: Vec<String>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, numpy::PyArray3<f64>>, String)> {
    use pipeline::multiband::BandImage;
    let opts = multiband_options(options)?;
    if bands.len() != psfs.len() || bands.len() != names.len() {
        return Err(PyValueError::new_err(format!(
            "{} bands, {} PSFs and {} names: give one PSF and one name per band",
            bands.len(),
            psfs.len(),
            names.len()
        )));
    }
    let views: Vec<BandImage> = bands
        .iter()
        .zip(&psfs)
        .zip(&names)
        .map(|((b, p), n)| BandImage {
            name: n.clone(),
            data: b.as_array(),
            psf: p.as_array(),
            wcs: None,
        })
        .collect();
    let wide_in = BandImage {
        name: "wide".into(),
        data: wide.as_array(),
        psf: wide_psf.as_array(),
        wcs: None,
    };
    let out = compute(py, || {
        pipeline::multiband::multiband(&views, &wide_in, &opts)
    })
    .map_err(py_err)?;
    let (n0, n1) = out.bands[0].dim();
    let mut cube = Array3::<f64>::zeros((out.bands.len(), n0, n1));
    for (k, b) in out.bands.iter().enumerate() {
        cube.index_axis_mut(ndarray::Axis(0), k).assign(b);
    }
    let rep = text(json(&out.report)?);
    Ok((cube.into_pyarray(py), rep))
}

/// Joint multiband deconvolution of FITS files (library `pipeline::multiband::multiband_fits`):
/// writes `out_dir/<band>.fits` and `out_dir/report.json`; returns the report JSON.
#[pyfunction]
#[pyo3(signature = (bands, psfs, wide, wide_psf, out_dir, force=false, **options))]
#[allow(clippy::too_many_arguments)]
fn multiband_files(
    py: Python<'_>,
    bands: Vec<std::path::PathBuf>,
    psfs: Vec<std::path::PathBuf>,
    wide: std::path::PathBuf,
    wide_psf: std::path::PathBuf,
    out_dir: std::path::PathBuf,
    force: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    let opts = multiband_options(options)?;
    if bands.len() != psfs.len() {
        return Err(PyValueError::new_err(format!(
            "{} bands and {} PSFs: give one PSF per band",
            bands.len(),
            psfs.len()
        )));
    }
    let pairs: Vec<(std::path::PathBuf, std::path::PathBuf)> =
        bands.into_iter().zip(psfs).collect();
    let out = compute(py, || {
        pipeline::multiband::multiband_fits(
            &pairs,
            (&wide, &wide_psf),
            &out_dir,
            &opts,
            force,
            &mut |_| {},
        )
    })
    .map_err(py_err)?;
    Ok(text(json(&out.report)?))
}

/// Estimate the PSF of `image` from its stars (library `pipeline::estimate_psf`).
#[pyfunction]
#[pyo3(signature = (image, size=25, k_sigma=5.0, saturation=None, isolation=None,
    neighbour_ratio=0.05, max_stars=100, max_sharpness=0.9, max_ellipticity=0.5))]
#[allow(clippy::too_many_arguments)]
fn estimate_psf<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f64>,
    size: usize,
    k_sigma: f64,
    saturation: Option<f64>,
    isolation: Option<f64>,
    neighbour_ratio: f64,
    max_stars: usize,
    max_sharpness: f64,
    max_ellipticity: f64,
) -> PyResult<(Bound<'py, PyArray2<f64>>, String)> {
    let opts = pipeline::PsfOptions {
        size,
        k_sigma,
        saturation,
        isolation,
        neighbour_ratio,
        max_stars,
        max_sharpness,
        max_ellipticity,
    };
    let img = image.as_array();
    let out = compute(py, || pipeline::estimate_psf(img, &opts)).map_err(py_err)?;
    Ok((out.psf.into_pyarray(py), text(json(&out.report)?)))
}

/// ONNX Runtime session options with `threads` intra-op threads (0: the library's default,
/// the cores up to 4).
fn session(threads: usize) -> sparseinv::models::SessionOptions {
    let d = sparseinv::models::SessionOptions::default();
    sparseinv::models::SessionOptions {
        intra_threads: if threads == 0 {
            d.intra_threads
        } else {
            threads
        },
        ..d
    }
}

fn denoise_model(name: &str, scales: usize) -> pipeline::DenoiseModel {
    if name == "starlet" {
        pipeline::DenoiseModel::Starlet { scales }
    } else {
        pipeline::DenoiseModel::from_name(name)
    }
}

/// Denoise a float32 array `[H, W]` or `[N, C, H, W]`-like (library `pipeline::denoise`).
#[pyfunction]
#[pyo3(signature = (image, sigma, model="starlet", scales=4, tile=256, overlap=32,
    normalization=None, percentiles=(0.1, 99.9), threads=0))]
#[allow(clippy::too_many_arguments)]
fn denoise<'py>(
    py: Python<'py>,
    image: PyReadonlyArrayDyn<'py, f32>,
    sigma: f64,
    model: &str,
    scales: usize,
    tile: usize,
    overlap: usize,
    normalization: Option<(f64, f64)>,
    percentiles: (f64, f64),
    threads: usize,
) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, String)> {
    let opts = pipeline::DenoiseOptions {
        model: denoise_model(model, scales),
        sigma,
        tile,
        overlap,
        normalization,
        percentiles,
        session: session(threads),
    };
    let x = image.as_array();
    let out = compute(py, || pipeline::denoise(x, &opts)).map_err(py_err)?;
    Ok((out.data.into_pyarray(py), text(json(&out.report)?)))
}

/// Deblur `image` by `psf` with a learned or plug-and-play prior (library `pipeline::deblur`).
#[pyfunction]
#[pyo3(signature = (image, psf, method="learned", model=None, denoiser="builtin", sigma=None,
    strength=None, iters=None, normalization=None, percentiles=(0.1, 99.9), tile=1024,
    overlap=48, threads=0))]
#[allow(clippy::too_many_arguments)]
fn deblur<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f64>,
    psf: PyReadonlyArray2<'py, f64>,
    method: &str,
    model: Option<std::path::PathBuf>,
    denoiser: &str,
    sigma: Option<f64>,
    strength: Option<f64>,
    iters: Option<usize>,
    normalization: Option<(f64, f64)>,
    percentiles: (f64, f64),
    tile: usize,
    overlap: usize,
    threads: usize,
) -> PyResult<(Bound<'py, PyArray2<f64>>, String)> {
    let method = match method {
        "learned" => pipeline::DeblurMethod::Learned,
        "pnp-fista" | "pnp_fista" => pipeline::DeblurMethod::PnpFista,
        "pnp-admm" | "pnp_admm" => pipeline::DeblurMethod::PnpAdmm,
        "red" => pipeline::DeblurMethod::Red,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown method {method:?} (expected \"learned\", \"pnp-fista\", \"pnp-admm\" or \"red\")"
            )))
        }
    };
    let opts = pipeline::DeblurOptions {
        method,
        model,
        denoiser: denoise_model(denoiser, 4),
        sigma,
        strength: strength.unwrap_or(pipeline::PNP_DEFAULT_STRENGTH),
        iters: iters.unwrap_or(pipeline::PNP_DEFAULT_ITERS),
        normalization,
        percentiles,
        tile,
        overlap,
        session: session(threads),
    };
    let (img, k) = (image.as_array(), psf.as_array());
    let out = compute(py, || pipeline::deblur(img, k, &opts)).map_err(py_err)?;
    Ok((out.image.into_pyarray(py), text(json(&out.report)?)))
}

// ---------------------------------------------------------------------------------------------
// operators

/// A linear operator of the library (`LinearOperator<f64>`): shaped input and output, exact
/// adjoint. The Python class `sparseinv.Operator` wraps it as a
/// `scipy.sparse.linalg.LinearOperator`.
#[pyclass(name = "_Operator", module = "sparseinv._sparseinv", frozen)]
struct PyOperator {
    op: Arc<dyn LinearOperator<f64>>,
    name: String,
}

fn op_of(op: impl LinearOperator<f64> + 'static, name: String) -> PyOperator {
    PyOperator {
        op: Arc::new(op),
        name,
    }
}

fn parse_boundary(s: &str) -> PyResult<Boundary> {
    Ok(match s {
        "circular" | "periodic" => Boundary::Circular,
        "same" | "zero" => Boundary::Same,
        "full" => Boundary::Full,
        "valid" => Boundary::Valid,
        "reflect" => Boundary::Reflect,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown boundary {s:?} (expected \"circular\", \"same\", \"full\", \"valid\" or \"reflect\")"
            )))
        }
    })
}

#[pymethods]
impl PyOperator {
    /// 2-d FFT convolution of an image of `shape` by `kernel` (centre at `(h//2, w//2)`).
    #[staticmethod]
    #[pyo3(signature = (kernel, shape, boundary="circular"))]
    fn conv2d(
        kernel: PyReadonlyArray2<'_, f64>,
        shape: (usize, usize),
        boundary: &str,
    ) -> PyResult<Self> {
        let b = parse_boundary(boundary)?;
        let op = sparseinv_solvers::op::Conv2d::new([shape.0, shape.1], kernel.as_array(), b)
            .map_err(solver_err)?;
        Ok(op_of(op, format!("Conv2d({boundary})")))
    }

    /// Keep the pixels where `mask` is true, zero the others (domain = range = mask's shape).
    #[staticmethod]
    fn mask(mask: PyReadonlyArrayDyn<'_, bool>) -> Self {
        let m = sparseinv_solvers::op::Mask::new(mask.as_array().to_owned());
        op_of(m, "Mask".into())
    }

    /// The isotropic undecimated starlet transform of an image of `shape`: `scales` detail
    /// planes and the coarse plane, stacked along axis 0.
    #[staticmethod]
    fn starlet(shape: (usize, usize), scales: usize) -> PyResult<Self> {
        let op = sparseinv_solvers::op::Starlet::<f64>::new([shape.0, shape.1], scales)
            .map_err(solver_err)?;
        Ok(op_of(op, format!("Starlet({scales})")))
    }

    /// Dense matrix `a` (`[m, n]`).
    #[staticmethod]
    fn matrix(a: PyReadonlyArray2<'_, f64>) -> Self {
        op_of(
            sparseinv_solvers::op::Matrix::new(a.as_array().to_owned()),
            "Matrix".into(),
        )
    }

    /// Kronecker product `A₁ ⊗ A₂ ⊗ …` of dense factors, never materialised (domain and
    /// range are the vectorised tensors, row-major).
    #[staticmethod]
    fn kronecker(factors: Vec<PyReadonlyArray2<'_, f64>>) -> PyResult<Self> {
        let f: Vec<Array2<f64>> = factors.iter().map(|a| a.as_array().to_owned()).collect();
        let op = sparseinv_solvers::op::Kronecker::new(f).map_err(solver_err)?;
        Ok(op_of(op, "Kronecker".into()))
    }

    /// `self ∘ other`: apply `other`, then `self`.
    fn compose(&self, other: &PyOperator) -> PyResult<Self> {
        let op = sparseinv_solvers::op::Compose::new(self.op.clone(), other.op.clone())
            .map_err(solver_err)?;
        Ok(op_of(op, format!("{} @ {}", self.name, other.name)))
    }

    /// `self + other` (same shapes).
    fn add(&self, other: &PyOperator) -> PyResult<Self> {
        let op = sparseinv_solvers::op::Sum::new(self.op.clone(), other.op.clone())
            .map_err(solver_err)?;
        Ok(op_of(op, format!("({} + {})", self.name, other.name)))
    }

    /// `alpha · self`.
    fn scale(&self, alpha: f64) -> PyResult<Self> {
        let op = sparseinv_solvers::op::Scaled::new(alpha, self.op.clone()).map_err(solver_err)?;
        Ok(op_of(op, format!("{alpha} * {}", self.name)))
    }

    /// The adjoint `Aᴴ` as an operator.
    fn adjoint_op(&self) -> Self {
        op_of(
            sparseinv_solvers::op::Adjoint::new(self.op.clone()),
            format!("{}.H", self.name),
        )
    }

    /// `A x` for `x` of shape `domain_shape`.
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f64>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = x.as_array();
        let op = &self.op;
        let y = compute(py, || op.apply(x)).map_err(solver_err)?;
        Ok(y.into_pyarray(py))
    }

    /// `Aᴴ y` for `y` of shape `range_shape`.
    fn adjoint<'py>(
        &self,
        py: Python<'py>,
        y: PyReadonlyArrayDyn<'py, f64>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let y = y.as_array();
        let op = &self.op;
        let x = compute(py, || op.adjoint(y)).map_err(solver_err)?;
        Ok(x.into_pyarray(py))
    }

    /// Shape of the input `x`.
    #[getter]
    fn domain_shape(&self) -> Vec<usize> {
        self.op.domain_shape().to_vec()
    }

    /// Shape of the output `A x`.
    #[getter]
    fn range_shape(&self) -> Vec<usize> {
        self.op.range_shape().to_vec()
    }

    /// A short description.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// An estimate of the operator norm ‖A‖₂ (power iteration on AᴴA).
    #[pyo3(signature = (iters=100, seed=0))]
    fn norm(&self, py: Python<'_>, iters: usize, seed: u64) -> f64 {
        let op = &self.op;
        let p = sparseinv_solvers::op::NormEstimate {
            max_iters: iters,
            tol: 1e-6,
            seed,
        };
        compute(py, || sparseinv_solvers::op::op_norm(op.as_ref(), p))
    }
}

// ---------------------------------------------------------------------------------------------
// solvers

fn stop(max_iters: usize, rel_tol: f64) -> StopCriteria<f64> {
    StopCriteria {
        max_iters,
        rel_tol,
        ..Default::default()
    }
}

fn report_json<R: Into<f64> + Copy>(r: &sparseinv_solvers::iter::Report<R>) -> serde_json::Value {
    serde_json::json!({
        "iterations": r.iterations,
        "stop_reason": r.stop_reason.as_str(),
        "objective_history": r.objective_history.iter().map(|&v| v.into()).collect::<Vec<f64>>(),
        "seconds": r.elapsed.as_secs_f64(),
    })
}

/// `min_x ½‖A x − y‖² + penalty(x)` by FISTA.
#[pyfunction]
#[pyo3(signature = (op, y, penalty="l1", lam=1.0, q=0.5, lower=0.0, upper=1.0, max_iters=500,
    rel_tol=1e-6, backtracking=false, restart=true))]
#[allow(clippy::too_many_arguments)]
fn fista<'py>(
    py: Python<'py>,
    op: &PyOperator,
    y: PyReadonlyArrayDyn<'py, f64>,
    penalty: &str,
    lam: f64,
    q: f64,
    lower: f64,
    upper: f64,
    max_iters: usize,
    rel_tol: f64,
    backtracking: bool,
    restart: bool,
) -> PyResult<(Bound<'py, PyArrayDyn<f64>>, String)> {
    use sparseinv_solvers::prox::{self, Prox};
    use sparseinv_solvers::proximal::{self, Params, Restart};
    let pr: Box<dyn Prox<f64>> = match penalty {
        "l1" => Box::new(prox::L1::new(lam).map_err(solver_err)?),
        "nonneg_l1" => Box::new(prox::NonNegL1::new(lam).map_err(solver_err)?),
        "l0" => Box::new(prox::L0::new(lam).map_err(solver_err)?),
        "lq" => Box::new(prox::Lq::new(q, lam).map_err(solver_err)?),
        "l2" => Box::new(prox::L2Squared::new(lam).map_err(solver_err)?),
        "nonneg" => Box::new(prox::NonNegative),
        "box" => Box::new(prox::BoxConstraint::new(lower, upper).map_err(solver_err)?),
        "none" => Box::new(prox::Zero),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown penalty {penalty:?} (expected \"l1\", \"nonneg_l1\", \"l0\", \"lq\", \"l2\", \"nonneg\", \"box\" or \"none\")"
            )))
        }
    };
    let params = Params {
        backtracking,
        restart: if restart {
            Restart::default()
        } else {
            Restart::None
        },
        stop: stop(max_iters, rel_tol),
        ..Params::default()
    };
    let y = y.as_array();
    let a = &op.op;
    let (x, report) =
        compute(py, || proximal::fista(a.as_ref(), y, pr.as_ref(), &params)).map_err(solver_err)?;
    Ok((x.into_pyarray(py), text(report_json(&report))))
}

fn noise_model(noise_var: Option<f64>) -> sparseinv_solvers::sbl::NoiseModel<f64> {
    match noise_var {
        Some(v) => sparseinv_solvers::sbl::NoiseModel::Fixed(v),
        None => sparseinv_solvers::sbl::NoiseModel::Learn { init: None },
    }
}

/// The parameters of classic SBL from the Python keywords.
fn sbl_params(
    noise_var: Option<f64>,
    max_iters: usize,
    rel_tol: f64,
    prune: f64,
) -> sparseinv_solvers::sbl::SblParams<f64> {
    sparseinv_solvers::sbl::SblParams {
        noise: noise_model(noise_var),
        prune,
        stop: stop(max_iters, rel_tol),
        ..Default::default()
    }
}

/// `y` (`[M]` or `[M, L]`) as an `M × L` matrix, and whether it was a vector.
fn sbl_measurements(y: ndarray::ArrayViewD<'_, f64>) -> PyResult<(Array2<f64>, bool)> {
    let y2: Array2<f64> = match y.ndim() {
        1 => y
            .to_owned()
            .into_shape_with_order((y.len(), 1))
            .map_err(|e| PyValueError::new_err(e.to_string()))?,
        2 => y
            .to_owned()
            .into_dimensionality::<Ix2>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?,
        d => {
            return Err(PyValueError::new_err(format!(
                "y must be 1-d or 2-d, got {d}-d"
            )))
        }
    };
    Ok((y2, y.ndim() == 1))
}

/// The posterior mean (a vector for vector `y`) and the report of a classic SBL run.
fn sbl_output<'py>(
    py: Python<'py>,
    r: sparseinv_solvers::sbl::SblResult<f64>,
    report: &sparseinv_solvers::iter::Report<f64>,
    vector: bool,
) -> PyResult<(Bound<'py, PyArrayDyn<f64>>, String)> {
    let mut rep = report_json(report);
    rep["gamma"] = json(&r.gamma.to_vec())?;
    rep["variance"] = json(&r.variance.to_vec())?;
    rep["noise_var"] = r.noise_var.into();
    rep["support"] = json(&r.support)?;
    let mean: ArrayD<f64> = if vector {
        r.mean.column(0).to_owned().into_dyn()
    } else {
        r.mean.into_dyn()
    };
    Ok((mean.into_pyarray(py), text(rep)))
}

/// Sparse Bayesian learning (EM) of `y ≈ Φ x` with `y` `[M]` or `[M, L]` (shared support).
#[pyfunction]
#[pyo3(signature = (phi, y, noise_var=None, max_iters=1000, rel_tol=1e-6, prune=1e-4))]
fn sbl<'py>(
    py: Python<'py>,
    phi: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArrayDyn<'py, f64>,
    noise_var: Option<f64>,
    max_iters: usize,
    rel_tol: f64,
    prune: f64,
) -> PyResult<(Bound<'py, PyArrayDyn<f64>>, String)> {
    use sparseinv_solvers::sbl;
    let (y2, vector) = sbl_measurements(y.as_array())?;
    let p = sbl_params(noise_var, max_iters, rel_tol, prune);
    let phi = phi.as_array();
    let (r, report) =
        compute(py, || sbl::sbl(phi, y2.view(), &p, &mut NoObserver)).map_err(solver_err)?;
    sbl_output(py, r, &report, vector)
}

/// Classic SBL (EM, one hyperparameter per atom) of `y ≈ (F₁ ⊗ … ⊗ F_K) x` with the
/// dictionary given as its factors and never formed; `y` `[M]` or `[M, L]`.
#[pyfunction]
#[pyo3(signature = (factors, y, noise_var=None, max_iters=1000, rel_tol=1e-6, prune=1e-4))]
fn sbl_kronecker<'py>(
    py: Python<'py>,
    factors: Vec<PyReadonlyArray2<'py, f64>>,
    y: PyReadonlyArrayDyn<'py, f64>,
    noise_var: Option<f64>,
    max_iters: usize,
    rel_tol: f64,
    prune: f64,
) -> PyResult<(Bound<'py, PyArrayDyn<f64>>, String)> {
    use sparseinv_solvers::sbl;
    let (y2, vector) = sbl_measurements(y.as_array())?;
    let f: Vec<Array2<f64>> = factors.iter().map(|a| a.as_array().to_owned()).collect();
    let p = sbl_params(noise_var, max_iters, rel_tol, prune);
    let (r, report) = compute(py, || {
        sbl::sbl_kronecker(&f, y2.view(), &p, &mut NoObserver)
    })
    .map_err(solver_err)?;
    sbl_output(py, r, &report, vector)
}

/// Kronecker-structured SBL of `y ≈ (F₁ ⊗ … ⊗ F_K) x`.
#[pyfunction]
#[pyo3(signature = (factors, y, noise_var=None, method="svd", max_iters=1000, rel_tol=1e-6,
    prune=3e-3))]
#[allow(clippy::too_many_arguments)]
fn ksbl<'py>(
    py: Python<'py>,
    factors: Vec<PyReadonlyArray2<'py, f64>>,
    y: numpy::PyReadonlyArray1<'py, f64>,
    noise_var: Option<f64>,
    method: &str,
    max_iters: usize,
    rel_tol: f64,
    prune: f64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, String)> {
    use sparseinv_solvers::sbl::{self, KsblMethod, KsblParams};
    let method = match method {
        "svd" => KsblMethod::Svd,
        "am" => KsblMethod::Am,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown method {method:?} (expected \"svd\" or \"am\")"
            )))
        }
    };
    let f: Vec<Array2<f64>> = factors.iter().map(|a| a.as_array().to_owned()).collect();
    let p = KsblParams {
        noise: noise_model(noise_var),
        method,
        prune,
        stop: stop(max_iters, rel_tol),
        ..KsblParams::default()
    };
    let y = y.as_array();
    let (r, report) = compute(py, || sbl::ksbl(&f, y, &p, &mut NoObserver)).map_err(solver_err)?;
    let mut rep = report_json(&report);
    rep["gammas"] = json(&r.gammas.iter().map(|g| g.to_vec()).collect::<Vec<_>>())?;
    rep["noise_var"] = r.noise_var.into();
    rep["support"] = json(&r.support())?;
    rep["mode_support"] = json(&r.mode_support)?;
    Ok((r.mean.into_pyarray(py), text(rep)))
}

/// Orthogonal matching pursuit of `y ≈ Φ x` (`y` `[M]`).
#[pyfunction]
#[pyo3(signature = (phi, y, max_atoms=None, residual_tol=None))]
fn omp<'py>(
    py: Python<'py>,
    phi: PyReadonlyArray2<'py, f64>,
    y: numpy::PyReadonlyArray1<'py, f64>,
    max_atoms: Option<usize>,
    residual_tol: Option<f64>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, String)> {
    use sparseinv_solvers::sbl::{self, OmpParams};
    let p = OmpParams {
        max_atoms,
        residual_tol: residual_tol.unwrap_or(0.0),
        select: sbl::Selection::Bic,
    };
    let (phi, y) = (phi.as_array(), y.as_array());
    let r = compute(py, || sbl::omp(phi, y, &p)).map_err(solver_err)?;
    let rep = serde_json::json!({
        "support": r.support,
        "residual2": r.residual2,
        "bic_path": r.bic_path,
    });
    Ok((r.x.into_pyarray(py), text(rep)))
}

/// `(d, x, report JSON)` of [`selfcal`].
type SelfcalOut<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>, String);

/// Self-calibration `y = A(d) x + e` (repeated, diverse or snapshot models).
#[pyfunction]
#[pyo3(signature = (model, y, a, b=None, method="lsq"))]
fn selfcal<'py>(
    py: Python<'py>,
    model: &str,
    y: PyReadonlyArray2<'py, f64>,
    a: numpy::PyReadonlyArray3<'py, f64>,
    b: Option<PyReadonlyArray2<'py, f64>>,
    method: &str,
) -> PyResult<SelfcalOut<'py>> {
    use sparseinv_solvers::selfcal::{self, Method, Model, Params, Problem};
    let model: Model = model.parse().map_err(solver_err)?;
    let method = match method {
        "lsq" => Method::Lsq,
        "spectral" => Method::Spectral,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown method {method:?} (expected \"lsq\" or \"spectral\")"
            )))
        }
    };
    let y: Array2<f64> = y.as_array().to_owned();
    let a: Array3<f64> = a.as_array().to_owned();
    let b: Option<Array2<f64>> = b.map(|b| b.as_array().to_owned());
    let p = Params {
        method,
        ..Params::default()
    };
    let (sol, report) = compute(py, || {
        let problem = Problem::new(model, y, a, b)?;
        selfcal::solve(&problem, &p, &mut NoObserver)
    })
    .map_err(solver_err)?;
    let mut rep = report_json(&report);
    rep["model"] = sol.model.as_str().into();
    rep["method"] = sol.method.as_str().into();
    rep["sigma"] = sol.sigma.into();
    rep["dense"] = sol.dense.into();
    rep["s"] = json(&sol.s.to_vec())?;
    Ok((sol.d.into_pyarray(py), sol.x.into_pyarray(py), text(rep)))
}

/// Library version and the ONNX Runtime the deep priors would load (or why none).
#[pyfunction]
fn runtime_info() -> (String, String) {
    let ort = match sparseinv::models::runtime() {
        Ok(rt) => format!(
            "{} ({}: {})",
            rt.version(),
            rt.source(),
            rt.path().display()
        ),
        Err(e) => format!("unavailable: {e}"),
    };
    (env!("CARGO_PKG_VERSION").to_string(), ort)
}

/// The compiled module.
#[pymodule]
fn _sparseinv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_threads, m)?)?;
    m.add_function(wrap_pyfunction!(deconvolve, m)?)?;
    m.add_function(wrap_pyfunction!(deconvolve_file, m)?)?;
    m.add_function(wrap_pyfunction!(deconvolve_globals, m)?)?;
    m.add_function(wrap_pyfunction!(deconvolve_window, m)?)?;
    m.add_function(wrap_pyfunction!(globals_with_rl, m)?)?;
    m.add_function(wrap_pyfunction!(multiband, m)?)?;
    m.add_function(wrap_pyfunction!(multiband_files, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_psf, m)?)?;
    m.add_function(wrap_pyfunction!(denoise, m)?)?;
    m.add_function(wrap_pyfunction!(deblur, m)?)?;
    m.add_function(wrap_pyfunction!(fista, m)?)?;
    m.add_function(wrap_pyfunction!(sbl, m)?)?;
    m.add_function(wrap_pyfunction!(sbl_kronecker, m)?)?;
    m.add_function(wrap_pyfunction!(ksbl, m)?)?;
    m.add_function(wrap_pyfunction!(omp, m)?)?;
    m.add_function(wrap_pyfunction!(selfcal, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_info, m)?)?;
    m.add_class::<PyOperator>()?;
    Ok(())
}
