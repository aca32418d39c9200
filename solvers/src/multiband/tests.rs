//! Tests of the multiband operator, the weight fit, the solver and the baseline: adjoint dot
//! tests, the forward model against a brute-force computation, the weight fit on a scene with
//! known weights, reduction to `starlet_sparse` for one band, and the KKT conditions of a
//! converged run.
#![allow(clippy::needless_range_loop)]
use super::*;
use crate::deconv::{starlet_sparse, StarletSparseParams};
use crate::testing::{assert_adjoint, direct_conv_same, randn};
use ndarray::{Array2, Ix2};

fn gauss_psf(n: usize, s: f64) -> Array2<f64> {
    let c = (n / 2) as f64;
    let k = Array2::from_shape_fn((n, n), |(i, j)| {
        let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2);
        (-r2 / (2.0 * s * s)).exp()
    });
    let t = k.sum();
    k / t
}

/// Blobs at different places for each band (so that the bands' colours vary in space).
fn scene(k: usize, n: usize) -> Array3<f64> {
    let mut x = Array3::<f64>::zeros((k, n, n));
    let blobs = [
        (0.30, 0.35, 2.0, [50.0, 20.0, 5.0]),
        (0.65, 0.60, 3.0, [10.0, 40.0, 30.0]),
        (0.45, 0.75, 1.5, [5.0, 15.0, 60.0]),
        (0.70, 0.25, 2.5, [30.0, 30.0, 30.0]),
    ];
    for b in 0..k {
        for &(ci, cj, s, amp) in &blobs {
            for i in 0..n {
                for j in 0..n {
                    let r2 =
                        (i as f64 - ci * n as f64).powi(2) + (j as f64 - cj * n as f64).powi(2);
                    x[[b, i, j]] += amp[b % 3] * (-r2 / (2.0 * s * s)).exp();
                }
            }
        }
    }
    x
}

fn block_sum(a: &Array2<f64>, r: usize) -> Array2<f64> {
    let (n0, n1) = a.dim();
    Array2::from_shape_fn((n0 / r, n1 / r), |(i, j)| {
        a.slice(s![r * i..r * i + r, r * j..r * j + r]).sum()
    })
}

struct Sim {
    truth: Array3<f64>,
    bands: Vec<Array2<f64>>,
    psfs: Vec<Array2<f64>>,
    wide: Array2<f64>,
    wide_psf: Array2<f64>,
    alphas: Vec<f64>,
    sigmas: Vec<f64>,
}

/// Bands by the brute-force model (direct convolution, block sum) plus seeded noise.
fn simulate(n: usize, noise: f64, seed: u64) -> Sim {
    let k = 3;
    let truth = scene(k, n);
    let psfs: Vec<Array2<f64>> = [2.2, 2.0, 1.8].iter().map(|&s| gauss_psf(15, s)).collect();
    let wide_psf = gauss_psf(9, 0.7);
    let alphas = vec![0.4, 0.35, 0.25];
    let mut bands = Vec::new();
    let mut sigmas = Vec::new();
    for b in 0..k {
        let conv = direct_conv_same(truth.index_axis(Axis(0), b), psfs[b].view(), false);
        let clean = block_sum(&conv, 2);
        let peak = clean.iter().fold(0.0f64, |a, v| a.max(*v));
        let sig = noise * peak;
        let nz: Array2<f64> = randn::<f64>(&[n / 2, n / 2], seed + b as u64)
            .into_dimensionality()
            .unwrap();
        bands.push(clean + &(nz * sig));
        sigmas.push(sig);
    }
    let mut mix = Array2::<f64>::zeros((n, n));
    for b in 0..k {
        mix.scaled_add(alphas[b], &truth.index_axis(Axis(0), b));
    }
    let clean = direct_conv_same(mix.view(), wide_psf.view(), false);
    let peak = clean.iter().fold(0.0f64, |a, v| a.max(*v));
    let sig = noise * peak;
    let nz: Array2<f64> = randn::<f64>(&[n, n], seed + 100)
        .into_dimensionality()
        .unwrap();
    let wide = clean + &(nz * sig);
    sigmas.push(sig);
    Sim {
        truth,
        bands,
        psfs,
        wide,
        wide_psf,
        alphas,
        sigmas,
    }
}

fn data(s: &Sim) -> MultibandData<'_> {
    MultibandData {
        bands: s.bands.iter().map(|b| b.view()).collect(),
        band_psfs: s.psfs.iter().map(|p| p.view()).collect(),
        band_masks: vec![],
        wide: Some((s.wide.view(), s.wide_psf.view(), None)),
    }
}

fn nmse(x: ArrayView2<f64>, t: ArrayView2<f64>) -> f64 {
    let e: f64 = x.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
    e / t.iter().map(|v| v * v).sum::<f64>()
}

#[test]
fn operator_passes_the_adjoint_dot_test() {
    let psfs: Vec<Array2<f64>> = [1.5, 2.0].iter().map(|&s| gauss_psf(7, s)).collect();
    let wp = gauss_psf(5, 0.8);
    for (shifts, wide, boundary) in [
        (vec![], true, Boundary::Same),
        (vec![[0.3, -0.45], [0.0, 1.25]], true, Boundary::Same),
        (vec![[0.5, 0.5], [-0.2, 0.1]], false, Boundary::Circular),
    ] {
        let model = MultibandModel {
            fine: [24, 18],
            ratio: 3,
            band_psfs: psfs.iter().map(|p| p.view()).collect(),
            shifts,
            wide: wide.then(|| (wp.view(), vec![0.6, 1.3])),
            boundary,
        };
        let bw = vec![
            Array2::from_shape_fn((8, 6), |(i, j)| 0.5 + ((i * 3 + j) % 4) as f64),
            Array2::from_shape_fn((8, 6), |(i, j)| if (i + j) % 5 == 0 { 0.0 } else { 2.0 }),
        ];
        let ww =
            wide.then(|| Array2::from_shape_fn((24, 18), |(i, j)| 0.1 * ((i + 2 * j) % 7) as f64));
        let a = MultibandOperator::new(&model, bw, ww).unwrap();
        assert_eq!(a.domain_shape(), &[2, 24, 18]);
        assert_eq!(a.range_shape(), &[2 * 48 + if wide { 24 * 18 } else { 0 }]);
        assert_adjoint(&a, 1e-12);
    }
    assert_adjoint(&BandwiseStarlet::new(3, [16, 20], 3).unwrap(), 1e-12);
}

/// The forward model against direct convolution + explicit block sums + weights, and an
/// integer shift against the circular shift of the block sums.
#[test]
fn operator_matches_the_brute_force_model() {
    let n = 20;
    let x = scene(2, n);
    let psfs: Vec<Array2<f64>> = [1.5, 2.0].iter().map(|&s| gauss_psf(7, s)).collect();
    let wp = gauss_psf(5, 0.8);
    let alphas = vec![0.7, 0.2];
    let bw = vec![
        Array2::from_elem((10, 10), 2.0),
        Array2::from_elem((10, 10), 0.5),
    ];
    let ww = Array2::from_elem((n, n), 3.0);
    let model = MultibandModel {
        fine: [n, n],
        ratio: 2,
        band_psfs: psfs.iter().map(|p| p.view()).collect(),
        shifts: vec![[0.0, 0.0], [1.0, -2.0]],
        wide: Some((wp.view(), alphas.clone())),
        boundary: Boundary::Same,
    };
    let a = MultibandOperator::new(&model, bw.clone(), Some(ww.clone())).unwrap();
    let y = a.apply(x.view().into_dyn()).unwrap();
    let parts = a.layout().split(y.view()).unwrap();
    for b in 0..2 {
        let bs = block_sum(
            &direct_conv_same(x.index_axis(Axis(0), b), psfs[b].view(), false),
            2,
        );
        let sh = model.shifts[b];
        let want = Array2::from_shape_fn((10, 10), |(i, j)| {
            let si = (i as isize - sh[0] as isize).rem_euclid(10) as usize;
            let sj = (j as isize - sh[1] as isize).rem_euclid(10) as usize;
            bw[b][[i, j]] * bs[[si, sj]]
        });
        let got = parts[b].view().into_dimensionality::<Ix2>().unwrap();
        let err = (&got - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            err < 1e-9 * want.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            "band {b}: {err}"
        );
    }
    let mut mix = Array2::<f64>::zeros((n, n));
    for b in 0..2 {
        mix.scaled_add(alphas[b], &x.index_axis(Axis(0), b));
    }
    let want = direct_conv_same(mix.view(), wp.view(), false) * 3.0;
    let got = parts[2].view().into_dimensionality::<Ix2>().unwrap();
    let err = (&got - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        err < 1e-9 * want.iter().fold(0.0f64, |m, v| m.max(v.abs())),
        "wide: {err}"
    );
}

#[test]
fn weight_fit_recovers_the_simulated_weights() {
    // noise-free: the fit is exact up to aliasing and the truncated PSF wings
    let s = simulate(64, 0.0, 1);
    let sig = vec![1e-9; 4];
    let fit = fit_band_weights(&data(&s), 2, &[], &sig).unwrap();
    assert_eq!(fit.method, "shrunk");
    for (f, t) in fit.free.iter().zip(&s.alphas) {
        assert!(
            (f - t).abs() < 0.01 * t,
            "free fit {:?} vs {:?}",
            fit.free,
            s.alphas
        );
    }
    assert!(fit.rel_residual < 0.05, "{fit:?}");
    // the MAP estimate lies between the common weight and the free fit, band by band
    for b in 0..3 {
        let (lo, hi) = if fit.common < fit.free[b] {
            (fit.common, fit.free[b])
        } else {
            (fit.free[b], fit.common)
        };
        assert!(
            fit.alphas[b] >= lo - 1e-9 && fit.alphas[b] <= hi + 1e-9,
            "{fit:?}"
        );
    }
    // the common weight is the flux ratio: Σ α_b x_b over Σ_b x_b on the truth, nearly
    let tot: Vec<f64> = (0..3)
        .map(|b| s.truth.index_axis(Axis(0), b).sum())
        .collect();
    let c_truth = (0..3).map(|b| s.alphas[b] * tot[b]).sum::<f64>() / tot.iter().sum::<f64>();
    assert!(
        (fit.common - c_truth).abs() < 0.05 * c_truth,
        "{} vs {c_truth}",
        fit.common
    );
    // with noise (peak SNR 30): within 10 % and a few standard errors
    let s = simulate(64, 1.0 / 30.0, 2);
    let fit = fit_band_weights(&data(&s), 2, &[], &s.sigmas).unwrap();
    for b in 0..3 {
        let (f, t, e) = (fit.alphas[b], s.alphas[b], fit.std_errors[b]);
        assert!(
            (f - t).abs() < 0.1 * t,
            "fitted {:?} vs {:?}",
            fit.alphas,
            s.alphas
        );
        assert!(e.is_finite() && e > 0.0, "{fit:?}");
    }
    // no wide band, or no signal: clear errors
    let mut d = data(&s);
    d.wide = None;
    assert!(fit_band_weights(&d, 2, &[], &s.sigmas).is_err());
    let z = Array2::<f64>::zeros((32, 32));
    let zw = Array2::<f64>::zeros((64, 64));
    let d = MultibandData {
        bands: vec![z.view(); 3],
        band_psfs: s.psfs.iter().map(|p| p.view()).collect(),
        band_masks: vec![],
        wide: Some((zw.view(), s.wide_psf.view(), None)),
    };
    let e = fit_band_weights(&d, 2, &[], &[1.0; 4])
        .unwrap_err()
        .to_string();
    assert!(e.contains("give them explicitly"), "{e}");
}

#[test]
fn nnls_small_matches_the_brute_force_optimum() {
    // columns chosen so that the unconstrained solution has a negative coefficient
    let x: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            let t = i as f64 / 10.0;
            vec![1.0, t, t.sin() + 0.2 * t]
        })
        .collect();
    let t: Vec<f64> = x
        .iter()
        .map(|r| 2.0 * r[0] - 0.5 * r[1] + 0.3 * r[2])
        .collect();
    let (a, rss) = nnls_small(&x, &t, 3);
    assert!(a.iter().all(|&v| v >= 0.0));
    // brute force over a grid of non-negative coefficients cannot do better
    let mut best = f64::INFINITY;
    for i in 0..=60 {
        for j in 0..=30 {
            for k in 0..=60 {
                let c = [i as f64 * 0.05, j as f64 * 0.02, k as f64 * 0.05];
                let r: f64 = x
                    .iter()
                    .zip(&t)
                    .map(|(row, tv)| {
                        (tv - row.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>()).powi(2)
                    })
                    .sum();
                best = best.min(r);
            }
        }
    }
    assert!(rss <= best + 1e-9, "{rss} vs grid {best}");
}

/// One band, ratio 1, no wide band: the same problem as `starlet_sparse` (scaled by 1/σ²),
/// the same start, the same steps: the same iterates.
#[test]
fn one_band_at_ratio_one_is_starlet_sparse() {
    let s = simulate(32, 0.02, 3);
    let y = direct_conv_same(s.truth.index_axis(Axis(0), 0), s.psfs[0].view(), false)
        + &(randn::<f64>(&[32, 32], 9)
            .into_dimensionality::<Ix2>()
            .unwrap()
            * 0.5);
    let sp = StarletSparseParams {
        scales: 3,
        sigma: Some(0.5),
        ..Default::default()
    };
    let want = starlet_sparse(y.view(), s.psfs[0].view(), None, &sp).unwrap();
    let d = MultibandData {
        bands: vec![y.view()],
        band_psfs: vec![s.psfs[0].view()],
        band_masks: vec![],
        wide: None,
    };
    let p = MultibandParams {
        ratio: 1,
        sigmas: Some(vec![0.5]),
        prior: MultibandPrior::Starlet {
            scales: 3,
            k_sigma: 3.0,
        },
        refit_iters: 0, // the primal–dual solution itself
        ..Default::default()
    };
    let got = multiband_deconvolve(&d, &p).unwrap();
    for (l, w) in got.lambdas[0].iter().zip(&want.lambdas) {
        assert!((l * 0.25 - w).abs() < 1e-9 * w, "λ {l} vs {w}"); // λ/σ² · σ²... scaled by σ²
    }
    let x = got.x.index_axis(Axis(0), 0);
    let scale = want.x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = (&x - &want.x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-8 * scale, "{err} vs scale {scale}");
}

/// A long run reaches the saddle point: the primal–dual KKT residual of
/// [`crate::proximal::pdhg`](mod@crate::proximal::pdhg) falls below 1e-7 (relative to the
/// gradient scale), and no feasible perturbation lowers the objective, recomputed here
/// independently of the solver.
#[test]
fn long_run_is_a_minimiser() {
    let s = simulate(16, 0.05, 4);
    let d = data(&s);
    let mut p = MultibandParams {
        alphas: Some(s.alphas.clone()),
        sigmas: Some(s.sigmas.clone()),
        prior: MultibandPrior::Starlet {
            scales: 3,
            k_sigma: 3.0,
        },
        refit_iters: 0,
        ..Default::default()
    };
    p.stop.max_iters = 200_000;
    p.stop.residual_tol = Some(1e-6);
    let r = multiband_deconvolve(&d, &p).unwrap();
    assert_eq!(
        r.report.stop_reason,
        crate::iter::StopReason::Residual,
        "{} iterations",
        r.report.iterations
    );
    // objective F = ½‖A x − w y‖² + Σ λ‖W x‖₁ recomputed independently
    let (a, yw) = build(
        &d,
        2,
        &[],
        Some(s.alphas.clone()),
        &s.sigmas,
        Boundary::Same,
    )
    .unwrap();
    let w = BandwiseStarlet::new(3, [16, 16], 3).unwrap();
    let obj = |x: &Array3<f64>| -> f64 {
        let ax = a.apply(x.view().into_dyn()).unwrap();
        let f = 0.5 * (&ax - &yw).iter().map(|v| v * v).sum::<f64>();
        let wx = w.apply(x.view().into_dyn()).unwrap();
        let mut g = 0.0;
        for b in 0..3 {
            for j in 0..3 {
                g += r.lambdas[b][j]
                    * wx.slice(s![b, j, .., ..])
                        .iter()
                        .map(|v| v.abs())
                        .sum::<f64>();
            }
        }
        f + g
    };
    let f0 = obj(&r.x);
    assert!((f0 - r.objective.last().unwrap()).abs() < 1e-9 * f0.abs());
    for seed in 0..6 {
        let dir: Array3<f64> = randn::<f64>(&[3, 16, 16], 50 + seed)
            .into_dimensionality()
            .unwrap();
        for eps in [1e-3, 1e-2] {
            let scale = eps * r.x.iter().fold(0.0f64, |m, v| m.max(*v));
            let xp = Zip::from(&r.x)
                .and(&dir)
                .map_collect(|&x, &d| (x + scale * d).max(0.0));
            let f1 = obj(&xp);
            assert!(
                f1 >= f0 * (1.0 - 1e-7),
                "seed {seed} eps {eps}: {f1} < {f0}"
            );
        }
    }
    // the objective history decreases overall and has settled
    let n = r.objective.len();
    assert!(r.objective[n - 1] < r.objective[0]);
    assert!((r.objective[n - 2] - r.objective[n - 1]).abs() < 1e-6 * r.objective[n - 1].abs());
}

/// The wide band carries the resolution: joint beats each band alone, and beats the published
/// projected-gradient scheme, on a simulated scene (peak SNR 50).
#[test]
fn joint_beats_single_band_and_the_baseline() {
    let s = simulate(64, 0.02, 5);
    let d = data(&s);
    // the solver's joint model against the single band, both without the re-fit
    let plain = MultibandParams {
        refit_iters: 0,
        ..Default::default()
    };
    let joint0 = multiband_deconvolve(&d, &plain).unwrap();
    let joint = multiband_deconvolve(&d, &MultibandParams::default()).unwrap();
    let fit = joint.alpha_fit.as_ref().unwrap();
    assert!(
        fit.alphas
            .iter()
            .zip(&s.alphas)
            .all(|(f, t)| (f - t).abs() < 0.1 * t),
        "{fit:?}"
    );
    let base = projected_gradient_baseline(
        &d,
        2,
        &[],
        joint.alphas.as_ref().unwrap(),
        &joint.sigmas,
        &BaselineParams::default(),
    )
    .unwrap();
    for b in 0..3 {
        let single_d = MultibandData {
            bands: vec![d.bands[b]],
            band_psfs: vec![d.band_psfs[b]],
            band_masks: vec![],
            wide: None,
        };
        let single = multiband_deconvolve(&single_d, &plain).unwrap();
        let t = s.truth.index_axis(Axis(0), b);
        let e_single = nmse(single.x.index_axis(Axis(0), 0), t);
        let e_joint0 = nmse(joint0.x.index_axis(Axis(0), b), t);
        let e_joint = nmse(joint.x.index_axis(Axis(0), b), t);
        let e_base = nmse(base.index_axis(Axis(0), b), t);
        assert!(
            e_joint0 < 0.8 * e_single,
            "band {b}: joint {e_joint0} single {e_single}"
        );
        // the photometric re-fit costs little reconstruction quality (here +4 %; on the
        // 16-scene evaluation of examples/multiband_eval.rs it lowers the NMSE)
        assert!(
            e_joint < 1.1 * e_joint0,
            "band {b}: joint {e_joint} without re-fit {e_joint0}"
        );
        assert!(
            e_joint < e_base,
            "band {b}: joint {e_joint} baseline {e_base}"
        );
        // flux on the sources (where the truth exceeds 1 % of its peak) is kept to 3 %; the
        // sum over the whole image is biased up by positivity on the noisy sky
        let peak = t.iter().fold(0.0f64, |m, v| m.max(*v));
        let on = |a: ArrayView2<f64>| -> f64 {
            a.iter()
                .zip(t.iter())
                .filter(|(_, &tv)| tv > 0.01 * peak)
                .map(|(v, _)| *v)
                .sum()
        };
        let (fx, ft) = (on(joint.x.index_axis(Axis(0), b)), on(t));
        assert!((fx - ft).abs() < 0.03 * ft, "band {b}: flux {fx} vs {ft}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let s = simulate(32, 0.02, 6);
    let mut d = data(&s);
    let p = MultibandParams::default();
    // wide band of the wrong size
    let small = Array2::<f64>::zeros((30, 32));
    d.wide = Some((small.view(), s.wide_psf.view(), None));
    let e = multiband_deconvolve(&d, &p).unwrap_err().to_string();
    assert!(e.contains("2 × the band grid"), "{e}");
    // a band fully masked
    let mut d = data(&s);
    let none = Array2::from_elem((16, 16), false);
    d.band_masks = vec![None, Some(none.view()), None];
    let e = multiband_deconvolve(&d, &p).unwrap_err().to_string();
    assert!(e.contains("no valid pixel"), "{e}");
    // NaN in an unmasked pixel
    let mut bad = s.bands[0].clone();
    bad[[3, 3]] = f64::NAN;
    let mut d = data(&s);
    d.bands[0] = bad.view();
    assert!(multiband_deconvolve(&d, &p).is_err());
    // wrong number of alphas / sigmas
    let d = data(&s);
    let q = MultibandParams {
        alphas: Some(vec![1.0]),
        ..Default::default()
    };
    assert!(multiband_deconvolve(&d, &q).is_err());
    let q = MultibandParams {
        sigmas: Some(vec![1.0, 1.0]),
        ..Default::default()
    };
    assert!(multiband_deconvolve(&d, &q).is_err());
}

/// Masked pixels drop out: the restoration from data with a masked region equals the one from
/// data whose masked region holds garbage.
#[test]
fn masked_pixels_do_not_matter() {
    let s = simulate(32, 0.02, 7);
    let mask = Array2::from_shape_fn((16, 16), |(i, j)| {
        !(4..7).contains(&i) || !(5..9).contains(&j)
    });
    let mut garbage = s.bands[1].clone();
    for ((i, j), v) in garbage.indexed_iter_mut() {
        if !mask[[i, j]] {
            *v = 1e6;
        }
    }
    let p = MultibandParams {
        alphas: Some(s.alphas.clone()),
        sigmas: Some(s.sigmas.clone()),
        ..Default::default()
    };
    let run = |band1: &Array2<f64>| {
        let mut d = data(&s);
        d.bands[1] = band1.view();
        d.band_masks = vec![None, Some(mask.view()), None];
        multiband_deconvolve(&d, &p).unwrap().x
    };
    let mut zeroed = s.bands[1].clone();
    for ((i, j), v) in zeroed.indexed_iter_mut() {
        if !mask[[i, j]] {
            *v = 0.0;
        }
    }
    let a = run(&garbage);
    let b = run(&zeroed);
    // the start differs only through masked pixels, which are replaced by the median
    let err = (&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        err < 1e-9 * a.iter().fold(0.0f64, |m, v| m.max(v.abs())),
        "{err}"
    );
}

#[test]
fn joint_refit_support_operator_passes_the_dot_test() {
    let psfs: Vec<Array2<f64>> = [1.5, 2.0].iter().map(|&s| gauss_psf(7, s)).collect();
    let wp = gauss_psf(5, 0.8);
    let model = MultibandModel {
        fine: [24, 18],
        ratio: 3,
        band_psfs: psfs.iter().map(|p| p.view()).collect(),
        shifts: vec![[0.3, -0.45], [0.0, 1.25]],
        wide: Some((wp.view(), vec![0.6, 1.3])),
        boundary: Boundary::Same,
    };
    let bw = vec![
        Array2::from_elem((8, 6), 1.5),
        Array2::from_elem((8, 6), 0.5),
    ];
    let a = MultibandOperator::new(&model, bw, Some(Array2::from_elem((24, 18), 2.0))).unwrap();
    let shapes = a.layout().shapes().to_vec();
    let wb = crate::op::BlockDiag::new(
        shapes
            .iter()
            .map(|s| crate::op::Starlet::<f64>::new([s[0], s[1]], 2).unwrap())
            .collect(),
    )
    .unwrap();
    let m = ndarray::ArrayD::from_shape_fn(IxDyn(wb.range_shape()), |i| {
        ((i[0] * 7) % 3 != 0) as u8 as f64
    });
    let dm = crate::op::Diagonal::new(m);
    let b = joint_support_operator(&a, &wb, &dm).unwrap();
    crate::testing::assert_adjoint(&b, 1e-10);
}

#[test]
fn block_bilinear_passes_the_dot_test_and_interpolates_linear_functions() {
    let u = BlockBilinear::new([14, 11], 4).unwrap();
    assert_eq!(u.domain_shape(), &[1, 4, 3]);
    assert_adjoint(&u, 1e-12);
    // node (p, q) at fine (4p + 1.5, 4q + 1.5): a linear function of the node positions is
    // reproduced exactly between the outer node centres (closed form)
    let g = Array3::from_shape_fn((1, 4, 3), |(_, p, q)| {
        2.0 + 0.5 * (4.0 * p as f64 + 1.5) - 0.25 * (4.0 * q as f64 + 1.5)
    });
    let y = u.apply(g.view().into_dyn()).unwrap();
    for i in 2..14 {
        for j in 2..10 {
            if (i as f64) <= 13.5 && (j as f64) <= 9.5 {
                let want = 2.0 + 0.5 * i as f64 - 0.25 * j as f64;
                assert!((y[[0, i, j]] - want).abs() < 1e-12, "({i}, {j})");
            }
        }
    }
}

/// Dense reference of `colour_refit` for one band: the matrix `J` column by column from the
/// brute-force model (direct convolution, block sum, explicit bilinear weights), the normal
/// equations `(JᵀJ + μI) δ = Jᵀ(y − J g⁰)` solved by Gauss–Jordan.
fn colour_refit_dense(
    lum: &Array2<f64>,
    y: &Array2<f64>,
    psf: &Array2<f64>,
    sigma: f64,
    g0: &Array2<f64>,
    block: usize,
    mu_rel: f64,
) -> Array2<f64> {
    let (n0, n1) = lum.dim();
    let (m0, m1) = g0.dim();
    let w1 = |i: usize, m: usize, p: usize| -> f64 {
        let t = ((i as f64 + 0.5) / block as f64 - 0.5).clamp(0.0, (m - 1) as f64);
        let i0 = t.floor() as usize;
        let i1 = (i0 + 1).min(m - 1);
        let f = t - i0 as f64;
        (if p == i0 { 1.0 - f } else { 0.0 }) + (if p == i1 { f } else { 0.0 })
    };
    let up = |g: &Array2<f64>| -> Array2<f64> {
        Array2::from_shape_fn((n0, n1), |(i, j)| {
            let mut v = 0.0;
            for p in 0..m0 {
                for q in 0..m1 {
                    v += w1(i, m0, p) * w1(j, m1, q) * g[[p, q]];
                }
            }
            v
        })
    };
    let fwd = |g: &Array2<f64>| -> Array2<f64> {
        block_sum(
            &direct_conv_same((lum * &up(g)).view(), psf.view(), false),
            2,
        ) / sigma
    };
    let cols: Vec<Array2<f64>> = (0..m0 * m1)
        .map(|c| {
            let mut e = Array2::<f64>::zeros((m0, m1));
            e[[c / m1, c % m1]] = 1.0;
            fwd(&e)
        })
        .collect();
    let nn = m0 * m1;
    let mut gram: Vec<Vec<f64>> = vec![vec![0.0; nn + 1]; nn];
    let r = &(y / sigma) - &fwd(g0);
    for a in 0..nn {
        for b in 0..nn {
            gram[a][b] = (&cols[a] * &cols[b]).sum();
        }
        gram[a][nn] = (&cols[a] * &r).sum();
    }
    // ‖J‖² = the largest eigenvalue of JᵀJ, by dense power iteration
    let mut v = vec![1.0; nn];
    let mut lam = 0.0;
    for _ in 0..500 {
        let w: Vec<f64> = (0..nn)
            .map(|a| (0..nn).map(|b| gram[a][b] * v[b]).sum())
            .collect();
        lam = w.iter().map(|t| t * t).sum::<f64>().sqrt();
        v = w.iter().map(|t| t / lam).collect();
    }
    for a in 0..nn {
        gram[a][a] += mu_rel * lam;
    }
    let sol = gauss_jordan(&mut gram, nn).unwrap();
    let d = Array2::from_shape_fn((m0, m1), |(p, q)| sol[p * m1 + q][nn]);
    (lum * &up(&(g0 + &d))).mapv(|v| v.max(0.0))
}

#[test]
fn colour_refit_matches_the_dense_solution_and_recovers_a_colour_field() {
    // fine 16×16, ratio 2, nodes every 4 fine pixels (4×4 nodes); the truth follows the
    // colour-field model exactly: x_b = X ⊙ U g_b
    let n = 16;
    let lum = Array2::from_shape_fn((n, n), |(i, j)| {
        let r2 = (i as f64 - 7.0).powi(2) + (j as f64 - 8.5).powi(2);
        1.0 + 40.0 * (-r2 / 8.0).exp()
    });
    let up = BlockBilinear::new([n, n], 4).unwrap();
    let alphas = [0.6, 0.4];
    let g_true = [
        Array2::from_shape_fn((4, 4), |(p, q)| 0.8 + 0.1 * p as f64 - 0.05 * q as f64),
        Array2::from_shape_fn((4, 4), |(p, q)| 1.3 - 0.15 * p as f64 + 0.075 * q as f64),
    ];
    let mut truth = Array3::<f64>::zeros((2, n, n));
    for b in 0..2 {
        let g = g_true[b].clone().into_shape_with_order((1, 4, 4)).unwrap();
        let u = up.apply(g.view().into_dyn()).unwrap();
        let xb = &lum
            * &u.index_axis(Axis(0), 0)
                .into_dimensionality::<Ix2>()
                .unwrap();
        truth.index_axis_mut(Axis(0), b).assign(&xb);
    }
    let psfs = [gauss_psf(7, 1.2), gauss_psf(7, 1.6)];
    let wpsf = gauss_psf(5, 0.6);
    let bands: Vec<Array2<f64>> = (0..2)
        .map(|b| {
            block_sum(
                &direct_conv_same(truth.index_axis(Axis(0), b), psfs[b].view(), false),
                2,
            )
        })
        .collect();
    let mix = &truth.index_axis(Axis(0), 0) * alphas[0] + &truth.index_axis(Axis(0), 1) * alphas[1];
    let wide = direct_conv_same(mix.view(), wpsf.view(), false);
    let d = MultibandData {
        bands: bands.iter().map(|b| b.view()).collect(),
        band_psfs: psfs.iter().map(|p| p.view()).collect(),
        band_masks: vec![],
        wide: Some((wide.view(), wpsf.view(), None)),
    };
    let p = MultibandParams::default();
    let sigmas = [0.05, 0.08, 0.02];
    // the estimate: the right luminance, but one flat colour per band (Σ α c = 1)
    let c = [1.0, 1.0];
    let mut est = Array3::<f64>::zeros((2, n, n));
    for b in 0..2 {
        est.index_axis_mut(Axis(0), b).assign(&(&lum * c[b]));
    }
    let got = colour_refit(&d, &p, &alphas, &sigmas, &est.clone().into_dyn()).unwrap();
    for b in 0..2 {
        // g⁰ = block colour of the estimate (flat: 1 up to the ε terms)
        let bs = |a: ArrayView2<f64>| block_sum(&a.to_owned(), 4);
        let xb = bs(est.index_axis(Axis(0), b));
        let lb = bs(lum.view());
        let (eb, el) = (1e-3 * xb.mean().unwrap(), 1e-3 * lb.mean().unwrap());
        let g0 = Zip::from(&xb)
            .and(&lb)
            .map_collect(|&v, &l| (v + eb) / (l + el));
        let want = colour_refit_dense(&lum, &bands[b], &psfs[b], sigmas[b], &g0, 4, COLOUR_RIDGE);
        let gb = got.index_axis(Axis(0), b);
        let err = (&gb - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            err < 1e-6 * want.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            "band {b}: {err}"
        );
        // and the fitted band is far closer to the truth than the flat-colour estimate
        let e_fit = (&gb - &truth.index_axis(Axis(0), b)).mapv(|v| v * v).sum();
        let e_est = (&est.index_axis(Axis(0), b) - &truth.index_axis(Axis(0), b))
            .mapv(|v| v * v)
            .sum();
        assert!(e_fit < 0.05 * e_est, "band {b}: {e_fit} vs {e_est}");
    }
    // a band absent from the wide band (α = 0): the estimate is returned unchanged
    let same = colour_refit(&d, &p, &[0.6, 0.0], &sigmas, &est.clone().into_dyn()).unwrap();
    assert_eq!(same, est.clone().into_dyn());
    assert!(colour_refit(&d, &p, &[0.6], &sigmas, &est.into_dyn()).is_err());
}
