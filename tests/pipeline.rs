//! The library pipelines against known answers: Wiener on noiseless circular data (the inverse
//! filter recovers the scene exactly), masks and the sky as a known background, the FITS
//! convenience (header kept, no overwrite), option validation, the starlet denoiser path and
//! the umbrella error's conversions.

use ndarray::{Array2, Array3};
use sparseinv::pipeline::{
    deconvolve, denoise, BoundaryMode, DeconvolveOptions, DenoiseModel, DenoiseOptions, Method,
};
use sparseinv::solvers::denoise::Denoiser;
use sparseinv::solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv::Error;

/// A 3×3 PSF whose spectrum `0.6 + 0.2 cos u + 0.2 cos v` is ≥ 0.2 everywhere, so the
/// inverse filter is well conditioned.
fn psf3() -> Array2<f64> {
    ndarray::array![[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]]
}

fn scene(ny: usize, nx: usize) -> Array2<f64> {
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        ((y * 7 + x * 3) % 11) as f64 + if (y, x) == (5, 6) { 40.0 } else { 0.0 }
    })
}

fn blur_circular(x: &Array2<f64>, k: &Array2<f64>) -> Array2<f64> {
    let a = Conv2d::<f64>::new([x.nrows(), x.ncols()], k.view(), Boundary::Circular).unwrap();
    a.apply(x.view().into_dyn())
        .unwrap()
        .into_dimensionality()
        .unwrap()
}

#[test]
fn wiener_inverts_noiseless_circular_blur_with_the_sky_as_background() {
    let (ny, nx) = (24, 20);
    let sky = 100.0;
    let x = scene(ny, nx);
    // a constant sky is unchanged by a unit-sum blur, so y = k ∗ (x + sky)
    let y = blur_circular(&x, &psf3()) + sky;
    let opts = DeconvolveOptions {
        method: Method::Wiener,
        boundary: Some(BoundaryMode::Periodic),
        balance: Some(1e-12),
        sky: Some(sky),
        ..Default::default()
    };
    let r = deconvolve(y.view(), psf3().view(), &opts).unwrap();
    let err = (&r.image - &(&x + sky))
        .iter()
        .fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-6, "max error {err}");
    assert_eq!(r.report.sky, sky);
    assert_eq!(r.report.balance, Some(1e-12));
    assert_eq!(r.report.iterations, 0);
    assert!(r.report.tiling.is_none());
    // flux: the blur conserves it, so does the exact inverse
    assert!((r.report.flux_after - y.sum()).abs() < 1e-6 * y.sum());
    assert!((r.report.flux_before - y.sum()).abs() < 1e-12 * y.sum());
}

#[test]
fn masked_pixels_stay_nan_and_are_left_out() {
    let (ny, nx) = (32, 28);
    let x = scene(ny, nx);
    let mut y = blur_circular(&x, &psf3()) + 10.0;
    let masked = [(0usize, 0usize), (13, 9), (31, 27)];
    let mut flux = y.sum();
    for &(i, j) in &masked {
        flux -= y[[i, j]];
        y[[i, j]] = f64::NAN;
    }
    for method in [
        Method::Wiener,
        Method::Tikhonov,
        Method::Rl,
        Method::Starlet,
    ] {
        let opts = DeconvolveOptions {
            method,
            iters: Some(5),
            ..Default::default()
        };
        let r = deconvolve(y.view(), psf3().view(), &opts).unwrap();
        assert_eq!(r.report.masked_pixels, masked.len(), "{method:?}");
        assert!(
            (r.report.flux_before - flux).abs() < 1e-12 * flux,
            "{method:?}"
        );
        for ((i, j), v) in r.image.indexed_iter() {
            assert_eq!(
                v.is_nan(),
                masked.contains(&(i, j)),
                "{method:?} ({i}, {j})"
            );
        }
        // the JSON report carries the method-specific fields of that method only
        let v = serde_json::to_value(&r.report).unwrap();
        assert_eq!(v["method"], method.name());
        assert_eq!(v.get("balance").is_some(), !method.is_iterative());
        assert_eq!(v.get("precision").is_some(), method == Method::Rl);
        assert_eq!(v.get("noise_sigma").is_some(), method == Method::Starlet);
        assert!(v["tiling"].is_null());
    }
}

#[test]
fn tiled_wiener_equals_untiled() {
    let (ny, nx) = (90, 70);
    let x = scene(ny, nx);
    let y = blur_circular(&x, &psf3()) + 5.0;
    // reflect: the tiled default of the Fourier filters (the untiled default, smooth, depends
    // on the whole window at the image's edges)
    let base = DeconvolveOptions {
        method: Method::Wiener,
        balance: Some(1e-3),
        boundary: Some(sparseinv::pipeline::BoundaryMode::Reflect),
        ..Default::default()
    };
    let whole = deconvolve(y.view(), psf3().view(), &base).unwrap();
    let tiled_opts = DeconvolveOptions {
        tile: Some(32),
        halo: Some(24),
        ..base.clone()
    };
    let mut events = 0;
    let tiled = sparseinv::pipeline::deconvolve_with_progress(
        y.view(),
        psf3().view(),
        &tiled_opts,
        &mut |p| {
            assert_eq!(p.unit, sparseinv::pipeline::ProgressUnit::Tiles);
            events += 1;
        },
    )
    .unwrap();
    let t = tiled.report.tiling.unwrap();
    assert_eq!((t.tile, t.halo, t.tiles), (32, 24, 9));
    // a tile smaller than the PSF is an error that names both sizes, not a slow run
    let tiny = DeconvolveOptions {
        tile: Some(2),
        ..base.clone()
    };
    let e = deconvolve(y.view(), psf3().view(), &tiny)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tile (2 px)") && e.contains("PSF (3 px)"), "{e}");
    assert!(events >= 1);
    let peak = whole.image.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = (&tiled.image - &whole.image)
        .iter()
        .fold(0.0f64, |m, d| m.max(d.abs()));
    // the reflect continuation of each window reaches a few PSF widths past its halo, so a
    // weak balance (1e-3) with a 3-px PSF lets tiles differ from the whole image by
    // ~1.5e-5 of the peak (8e-4 here), far below any noise
    assert!(err < 1e-4 * peak, "tiled vs untiled: {err} (peak {peak})");
}

/// Automatic tiling (no `tile` given) by method: a strip 8193 px long is tiled for Wiener and
/// Tikhonov, a 4100 px one is not (their threshold is 8192 px) while Richardson–Lucy tiles it
/// (2048 px); `tile: Some(0)` never tiles. Thin strips keep the run cheap.
#[test]
fn automatic_tiling_threshold_depends_on_the_method() {
    let strip =
        |nx: usize| Array2::from_shape_fn((12, nx), |(y, x)| 5.0 + ((y * 7 + x * 3) % 11) as f64);
    let run = |m: Method, nx: usize, tile: Option<usize>| {
        let opts = DeconvolveOptions {
            method: m,
            balance: Some(1e-2),
            iters: Some(1),
            accelerate: false,
            sky: Some(5.0),
            tile,
            ..Default::default()
        };
        deconvolve(strip(nx).view(), psf3().view(), &opts)
            .unwrap()
            .report
            .tiling
            .map(|t| t.tile)
    };
    assert_eq!(Method::Wiener.auto_tile_above(), 8192);
    assert_eq!(Method::Tikhonov.auto_tile_above(), 8192);
    assert_eq!(Method::Rl.auto_tile_above(), 2048);
    assert_eq!(run(Method::Wiener, 4100, None), None);
    assert_eq!(run(Method::Tikhonov, 4100, None), None);
    assert_eq!(run(Method::Rl, 4100, None), Some(1024));
    assert_eq!(run(Method::Wiener, 8193, None), Some(1024));
    assert_eq!(run(Method::Wiener, 8193, Some(0)), None);
}

#[test]
fn invalid_options_and_inputs_are_errors() {
    let y = scene(16, 16);
    let bad = [
        DeconvolveOptions {
            sky: Some(f64::NAN),
            ..Default::default()
        },
        DeconvolveOptions {
            iters: Some(0),
            ..Default::default()
        },
        DeconvolveOptions {
            method: Method::Wiener,
            balance: Some(-1.0),
            ..Default::default()
        },
    ];
    for o in bad {
        let e = deconvolve(y.view(), psf3().view(), &o).unwrap_err();
        assert!(matches!(e, Error::Solvers(_)), "{o:?}: {e}");
    }
    // every pixel masked
    let nan = Array2::from_elem((16, 16), f64::NAN);
    let e = deconvolve(nan.view(), psf3().view(), &Default::default()).unwrap_err();
    assert!(matches!(e, Error::Input(_)), "{e}");
    // PSF larger than the image, PSF with a zero sum
    let big = Array2::from_elem((17, 3), 1.0);
    let e = deconvolve(y.view(), big.view(), &Default::default()).unwrap_err();
    assert!(matches!(e, Error::Psf(_)), "{e}");
    let zero = Array2::<f64>::zeros((3, 3));
    let e = deconvolve(y.view(), zero.view(), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("not positive"), "{e}");
}

#[test]
fn psf_normalisation_is_reported_and_optional() {
    let (ny, nx) = (24, 20);
    let x = scene(ny, nx);
    let y = blur_circular(&x, &psf3());
    let k3 = psf3() * 3.0;
    let opts = DeconvolveOptions {
        method: Method::Wiener,
        boundary: Some(BoundaryMode::Periodic),
        balance: Some(1e-12),
        sky: Some(0.0),
        ..Default::default()
    };
    let r = deconvolve(y.view(), k3.view(), &opts).unwrap();
    assert!((r.report.psf_sum - 3.0).abs() < 1e-12);
    let err = (&r.image - &x).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-6, "normalised: {err}");
    // kept as given: the inverse filter of 3k gives x / 3
    let raw = DeconvolveOptions {
        normalize_psf: false,
        ..opts
    };
    let r = deconvolve(y.view(), k3.view(), &raw).unwrap();
    let err = (&r.image - &(&x / 3.0))
        .iter()
        .fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(err < 1e-6, "as given: {err}");
}

#[cfg(feature = "fits")]
#[test]
fn deconvolve_fits_keeps_the_header_and_never_overwrites() {
    use sparseinv::io::fits::read_fits;
    use sparseinv::pipeline::deconvolve_fits;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o.fits");
    let opts = DeconvolveOptions {
        method: Method::Wiener,
        ..Default::default()
    };
    let input = data.join("m13.fits");
    let r = deconvolve_fits(&input, data.join("m13_psf.fits"), &out, &opts).unwrap();
    let src = read_fits(&input, None).unwrap();
    let back = read_fits(&out, None).unwrap();
    // every non-structural card of the input (WCS included) is there, in order
    let cards: Vec<&str> = back.header.non_structural().collect();
    let want: Vec<&str> = src.header.non_structural().collect();
    assert!(want.iter().any(|c| c.starts_with("CRVAL1")));
    for c in &want {
        assert!(cards.contains(c), "missing {c}");
    }
    assert_eq!(back.header.get_str("DECONV").as_deref(), Some("wiener"));
    assert_eq!(back.header.get_str("DECBOUND").as_deref(), Some("smooth"));
    assert!(cards
        .iter()
        .any(|c| c.starts_with("HISTORY") && c.contains("method wiener")));
    // the pixels are the in-memory result, as f32
    let img = back.image2d().unwrap();
    let diff = img
        .iter()
        .zip(r.image.iter())
        .fold(0.0f64, |m, (a, b)| m.max((a - (*b as f32) as f64).abs()));
    assert_eq!(diff, 0.0);
    // no overwrite without force; with force it is replaced
    let e = deconvolve_fits(&input, data.join("m13_psf.fits"), &out, &opts).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let forced = DeconvolveOptions {
        force: true,
        ..opts.clone()
    };
    deconvolve_fits(&input, data.join("m13_psf.fits"), &out, &forced).unwrap();
    // never over the input, even with force
    let copy = d.path().join("in.fits");
    std::fs::copy(&input, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    assert!(deconvolve_fits(&copy, data.join("m13_psf.fits"), &copy, &forced).is_err());
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[test]
fn starlet_denoise_runs_each_plane_like_the_denoiser() {
    let planes = Array3::from_shape_fn((3, 32, 40), |(c, y, x)| {
        ((c * 5 + y * 3 + x) % 13) as f32 * 0.1 + if (y + x) % 7 == 0 { 0.3 } else { 0.0 }
    });
    let opts = DenoiseOptions {
        model: DenoiseModel::Starlet { scales: 3 },
        sigma: 0.05,
        ..Default::default()
    };
    let r = denoise(planes.view().into_dyn(), &opts).unwrap();
    assert_eq!(r.report.shape, vec![3, 32, 40]);
    assert_eq!(r.report.model, "starlet");
    let d = sparseinv::solvers::starlet_denoise::StarletDenoiser::new(3).unwrap();
    for c in 0..3 {
        let p = planes
            .index_axis(ndarray::Axis(0), c)
            .mapv(f64::from)
            .into_dyn();
        let want = d.denoise(p.view(), 0.05).unwrap().mapv(|v| v as f32);
        let got = r.data.index_axis(ndarray::Axis(0), c);
        assert_eq!(got, want.view().into_dimensionality().unwrap());
    }
    // bad sigma, bad rank
    let e = denoise(
        planes.view().into_dyn(),
        &DenoiseOptions {
            sigma: -1.0,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("sigma"), "{e}");
    let one = ndarray::Array1::<f32>::zeros(8);
    assert!(denoise(one.view().into_dyn(), &opts).is_err());
}

#[test]
fn member_errors_convert_into_the_umbrella_error() {
    fn io() -> sparseinv::Result<()> {
        Err(sparseinv::io::IoError::Exists("x.fits".into()))?
    }
    fn psf() -> sparseinv::Result<()> {
        Err(sparseinv::psf::PsfError::Empty)?
    }
    fn shape() -> sparseinv::Result<()> {
        ndarray::Array1::<f64>::zeros(6).into_shape_with_order((4, 2))?;
        Ok(())
    }
    fn tile() -> sparseinv::Result<()> {
        let p = sparseinv::tiling::TileParams {
            tile: 0,
            halo: 0,
            blend: 0,
            max_in_flight: 0,
        };
        let img = Array2::<f64>::zeros((4, 4));
        sparseinv::tiling::process_tiled(img.view(), &p, |t| Ok::<_, Error>(t.to_owned()))?;
        Ok(())
    }
    assert!(matches!(io(), Err(Error::Io(_))));
    assert_eq!(
        io().unwrap_err().to_string(),
        "x.fits already exists (pass --force to overwrite)"
    );
    assert!(matches!(psf(), Err(Error::Psf(_))));
    assert!(matches!(shape(), Err(Error::Shape(_))));
    let e = tile().unwrap_err();
    assert!(matches!(e, Error::Tiling(_)), "{e}");
    assert!(e.to_string().contains("tile size"), "{e}");
    let e = Error::input("bad").in_file("a.fits");
    assert_eq!(e.to_string(), "a.fits: bad");
    assert!(std::error::Error::source(&e).is_some());
}

/// Six Gaussian blobs (`exp(−r²/w)`, peaks 300 … 800) on an `n²` grid under a 9² Gaussian
/// PSF (σ 1.5 px, circular blur) on a sky of 200, Poisson noise drawn with `seed`. Returns
/// the data and the PSF.
fn poisson_blobs(n: usize, w: f64, seed: u64) -> (Array2<f64>, Array2<f64>) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};
    let blobs = [(9, 12), (30, 40), (50, 20), (20, 55), (44, 47), (33, 8)];
    let x = Array2::from_shape_fn((n, n), |(i, j)| {
        blobs
            .iter()
            .enumerate()
            .map(|(k, &(bi, bj))| {
                let r2 = ((i as f64 - bi as f64).powi(2) + (j as f64 - bj as f64).powi(2)) / w;
                (300.0 + 100.0 * k as f64) * (-r2).exp()
            })
            .sum::<f64>()
    });
    let psf = Array2::from_shape_fn((9, 9), |(i, j)| {
        let r2 = ((i as f64 - 4.0).powi(2) + (j as f64 - 4.0).powi(2)) / (2.0 * 1.5f64.powi(2));
        (-r2).exp()
    });
    let psf = &psf / psf.sum();
    let clean = blur_circular(&x, &psf) + 200.0;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let y = clean.mapv(|m| Poisson::new(m).unwrap().sample(&mut rng));
    (y, psf)
}

/// Richardson–Lucy's default stop is the minimum-risk one: on noisy extended sources it stops
/// before its cap, reports it with the noise model (no discrepancy threshold), and its image is
/// the one a fixed run of the reported count gives; `max_iters` caps it (with a warning), a
/// zero cap is refused, and a tiled run chooses the count once for every tile.
#[test]
fn rl_default_stops_at_least_estimated_risk() {
    // extended sources (Gaussian blobs of 2.5 px): over-fitting sets in within the cap
    let n = 64;
    let (y, psf) = poisson_blobs(n, 12.5, 3);
    let r = deconvolve(y.view(), psf.view(), &DeconvolveOptions::default()).unwrap();
    let rep = &r.report;
    assert_eq!(rep.stop.as_deref(), Some("minimum_risk"), "{rep:?}");
    assert!(rep.iterations >= 1 && rep.iterations < sparseinv::pipeline::RL_AUTO_MAX_ITERS_PLAIN);
    let nm = rep.noise_model.expect("noise model reported");
    assert!(nm.tau.is_none() && nm.slope > 0.0);
    let fixed = DeconvolveOptions {
        iters: Some(rep.iterations),
        ..Default::default()
    };
    let f = deconvolve(y.view(), psf.view(), &fixed).unwrap();
    let d = (&f.image - &r.image)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        d < 1e-9 * y.iter().fold(0.0f64, |m, v| m.max(*v)),
        "max diff {d}"
    );
    // a cap below the stop
    let capped = DeconvolveOptions {
        max_iters: Some(2),
        ..Default::default()
    };
    let c = deconvolve(y.view(), psf.view(), &capped).unwrap();
    assert_eq!(c.report.stop.as_deref(), Some("max_iters"));
    assert_eq!(c.report.iterations, 2);
    assert!(c.report.warnings.iter().any(|w| w.contains("--max-iters")));
    let zero = DeconvolveOptions {
        max_iters: Some(0),
        ..Default::default()
    };
    assert!(deconvolve(y.view(), psf.view(), &zero).is_err());
    assert!(rep.risk_window.is_none());
    // tiled: the count is chosen once, on the central window (here the whole image), and
    // every tile runs it — the same as a tiled run of that fixed count
    let tiled = DeconvolveOptions {
        tile: Some(24),
        ..Default::default()
    };
    let t = deconvolve(y.view(), psf.view(), &tiled).unwrap();
    assert_eq!(t.report.risk_window, Some([n, n]));
    assert_eq!(t.report.stop.as_deref(), Some("minimum_risk"));
    assert_eq!(t.report.iterations, rep.iterations);
    let tiled_fixed = DeconvolveOptions {
        tile: Some(24),
        iters: Some(rep.iterations),
        ..Default::default()
    };
    let tf = deconvolve(y.view(), psf.view(), &tiled_fixed).unwrap();
    assert_eq!(t.image, tf.image);
}

/// `starlet`'s default chooses its threshold (from `STARLET_K_CANDIDATES`) and FISTA count
/// together by the least estimated risk and reports both; the image is the one a fixed run of
/// that threshold and count gives; a given `k_sigma` is kept and reported as given; a tiled
/// run makes the same choice (on the central window, here the whole image) and equals the
/// tiled fixed run.
#[test]
fn starlet_default_chooses_threshold_and_count_by_least_estimated_risk() {
    let n = 64;
    let (y, psf) = poisson_blobs(n, 2.0, 5);
    let opts = DeconvolveOptions {
        method: Method::Starlet,
        ..Default::default()
    };
    let r = deconvolve(y.view(), psf.view(), &opts).unwrap();
    let rep = &r.report;
    assert_eq!(rep.k_sigma_from.as_deref(), Some("minimum_risk"), "{rep:?}");
    let k = rep.k_sigma.unwrap();
    assert!(sparseinv::pipeline::STARLET_K_CANDIDATES.contains(&k));
    assert!(matches!(
        rep.stop.as_deref(),
        Some("minimum_risk" | "max_iters")
    ));
    assert!(rep.iterations >= 1 && rep.iterations <= sparseinv::pipeline::STARLET_AUTO_MAX_ITERS);
    assert!(rep.noise_model.is_some());
    let fixed = DeconvolveOptions {
        iters: Some(rep.iterations),
        k_sigma: Some(k),
        ..opts.clone()
    };
    let f = deconvolve(y.view(), psf.view(), &fixed).unwrap();
    assert_eq!(f.image, r.image);
    assert_eq!(f.report.k_sigma_from.as_deref(), Some("given"));
    // a given threshold: the count is chosen for it
    let given = DeconvolveOptions {
        k_sigma: Some(2.5),
        ..opts.clone()
    };
    let g = deconvolve(y.view(), psf.view(), &given).unwrap();
    assert_eq!(g.report.k_sigma, Some(2.5));
    assert_eq!(g.report.k_sigma_from.as_deref(), Some("given"));
    // a count without a threshold: the default threshold
    let count = DeconvolveOptions {
        iters: Some(7),
        ..opts.clone()
    };
    let c = deconvolve(y.view(), psf.view(), &count).unwrap();
    assert_eq!(
        c.report.k_sigma,
        Some(sparseinv::pipeline::STARLET_DEFAULT_K_SIGMA)
    );
    assert_eq!(c.report.k_sigma_from.as_deref(), Some("default"));
    assert_eq!(c.report.iterations, 7);
    // tiled: the same choice, every tile runs it
    let tiled = DeconvolveOptions {
        tile: Some(24),
        ..opts.clone()
    };
    let t = deconvolve(y.view(), psf.view(), &tiled).unwrap();
    assert_eq!(t.report.k_sigma, Some(k));
    assert_eq!(t.report.iterations, rep.iterations);
    let tiled_fixed = DeconvolveOptions {
        tile: Some(24),
        ..fixed
    };
    let tf = deconvolve(y.view(), psf.view(), &tiled_fixed).unwrap();
    assert_eq!(t.image, tf.image);
}
