//! Tiled processing equals untiled processing for a local linear operation on a 2048² image.

use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparseinv::tiling::{plan_tiles, process_tiled, TileParams};

/// Direct 2-D convolution (zero boundary) with the 15×15 kernel `Σ_r u_r v_rᵀ` (rank 2),
/// applied as separable passes: `out[y, x] = Σ_{i,j} K[i, j] · img[y + i − 7, x + j − 7]`.
fn conv15(img: ArrayView2<'_, f64>, us: &[Array1<f64>], vs: &[Array1<f64>]) -> Array2<f64> {
    let (ny, nx) = img.dim();
    let r = 7isize;
    let mut out = Array2::<f64>::zeros((ny, nx));
    for (u, v) in us.iter().zip(vs) {
        // rows: tmp[y, x] = Σ_j v[j] img[y, x + j − 7]
        let mut tmp = Array2::<f64>::zeros((ny, nx));
        for y in 0..ny {
            let src = img.row(y);
            let mut dst = tmp.row_mut(y);
            for x in 0..nx as isize {
                let mut acc = 0.0;
                for j in -r..=r {
                    let xx = x + j;
                    if xx >= 0 && xx < nx as isize {
                        acc += v[(j + r) as usize] * src[xx as usize];
                    }
                }
                dst[x as usize] = acc;
            }
        }
        // columns: out[y, x] += Σ_i u[i] tmp[y + i − 7, x]
        for y in 0..ny as isize {
            for i in -r..=r {
                let yy = y + i;
                if yy < 0 || yy >= ny as isize {
                    continue;
                }
                let w = u[(i + r) as usize];
                let src = tmp.row(yy as usize);
                let mut dst = out.row_mut(y as usize);
                dst.scaled_add(w, &src);
            }
        }
    }
    out
}

/// The same convolution by brute force over the full 15×15 kernel, for a few pixels.
fn brute_at(img: &Array2<f64>, k: &Array2<f64>, y: usize, x: usize) -> f64 {
    let (ny, nx) = img.dim();
    let mut acc = 0.0;
    for i in 0..15 {
        for j in 0..15 {
            let (yy, xx) = (y as isize + i as isize - 7, x as isize + j as isize - 7);
            if yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                acc += k[[i, j]] * img[[yy as usize, xx as usize]];
            }
        }
    }
    acc
}

#[test]
fn tiled_convolution_equals_untiled_on_2048() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let n = 2048;
    let img = Array2::from_shape_fn((n, n), |_| rng.random_range(0.0..1000.0));
    let us: Vec<Array1<f64>> = (0..2)
        .map(|_| Array1::from_shape_fn(15, |_| rng.random_range(0.0..1.0)))
        .collect();
    let vs: Vec<Array1<f64>> = (0..2)
        .map(|_| Array1::from_shape_fn(15, |_| rng.random_range(-0.2..1.0)))
        .collect();
    let k = Array2::from_shape_fn((15, 15), |(i, j)| {
        us.iter().zip(&vs).map(|(u, v)| u[i] * v[j]).sum::<f64>()
    });

    let untiled = conv15(img.view(), &us, &vs);
    for &(y, x) in &[(0, 0), (5, 2040), (1000, 1000), (2047, 2047), (511, 512)] {
        let b = brute_at(&img, &k, y, x);
        assert!((untiled[[y, x]] - b).abs() <= 1e-9 * b.abs().max(1.0));
    }

    // halo = PSF support (15) ≥ kernel radius (7); cores of 300 px so tiles straddle
    let params = TileParams {
        tile: 300,
        halo: 15,
        blend: 8,
        max_in_flight: 2,
    };
    assert_eq!(plan_tiles((n, n), &params).len(), 49);
    let tiled = process_tiled(img.view(), &params, |t| {
        Ok::<_, std::convert::Infallible>(conv15(t, &us, &vs))
    })
    .unwrap();
    let scale = untiled.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (a, b) in tiled.iter().zip(untiled.iter()) {
        worst = worst.max((a - b).abs() / b.abs().max(1e-3 * scale));
    }
    assert!(worst < 1e-4, "max relative difference {worst}");
    // with a halo smaller than the kernel radius the tiles do show: the test can fail
    let short = TileParams {
        halo: 2,
        blend: 2,
        ..params
    };
    let bad = process_tiled(img.view(), &short, |t| {
        Ok::<_, std::convert::Infallible>(conv15(t, &us, &vs))
    })
    .unwrap();
    let worst_bad = bad
        .iter()
        .zip(untiled.iter())
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3 * scale))
        .fold(0.0f64, f64::max);
    assert!(worst_bad > 1e-3, "{worst_bad}");
}
