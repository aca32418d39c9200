//! Our side of the ONNX inference peer comparison (`benches/peers/onnx.py` drives it).
//!
//! Reads `x512.npy` and `x2048.npy` (float32 images in `[0, 1]`) and `params.npy`
//! (`[σ, intra_threads, tile, overlap]`) from the directory given as the first argument, loads
//! the shipped denoiser (`builtin::denoiser`, the bytes of `models/onnx/denoiser_small.onnx`)
//! with identity normalisation, and times (best of 5):
//! - one network run on the 512² image (`tile` ≥ 512: a single piece);
//! - tiled inference on the 2048² image (network inputs of at most `tile` px sharing `overlap`
//!   px, raised-cosine cross-fade: the one tiler of the solvers crate);
//! - one plug-and-play iteration (PnP-PGD with this denoiser) on the 512² image blurred by a
//!   9 × 9 Gaussian ('same' convolution): one `Aᴴ(Ax − y)` gradient step plus one denoiser run.
//!
//! It writes our outputs (`ours512.npy`, `ours2048.npy`) for the script to compare with Python
//! onnxruntime's and prints one JSON object.
//!
//! Run: `cargo bench -p sparseinv-models --bench peer_onnx -- <dir>`

use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::{read_npy, write_npy};
use sparseinv_models::builtin;
use sparseinv_models::denoiser::{DenoiserConfig, Normalization, Tiling};
use sparseinv_models::model::{Device, SessionOptions};
use sparseinv_solvers::denoise::Denoiser;
use sparseinv_solvers::iter::IterativeSolver;
use sparseinv_solvers::op::{Boundary, Conv2d, LinearOperator};
use sparseinv_solvers::pnp::{PnpParams, PnpPgd};
use std::time::Instant;

fn best_of<F: FnMut()>(n: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..n {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| std::path::Path::new(a).is_dir())
        .expect("usage: peer_onnx <dir with x512.npy, x2048.npy, params.npy>");
    let dir = std::path::PathBuf::from(dir);
    let x512: Array2<f32> = read_npy(dir.join("x512.npy")).expect("x512.npy");
    let x2048: Array2<f32> = read_npy(dir.join("x2048.npy")).expect("x2048.npy");
    let p: Array1<f64> = read_npy(dir.join("params.npy")).expect("params.npy");
    let (sigma, threads, tile, overlap) = (p[0], p[1] as usize, p[2] as usize, p[3] as usize);
    let options = SessionOptions {
        intra_threads: threads,
        device: Device::Cpu,
    };
    let config = DenoiserConfig {
        normalization: Normalization::Affine {
            offset: 0.0,
            scale: 1.0,
        },
        tiling: Tiling { tile, overlap },
        ..Default::default()
    };
    let d = builtin::denoiser(options, config).expect("builtin denoiser");
    // warm-up (first runs allocate ONNX Runtime's arenas)
    let o512 = d
        .denoise(x512.view().into_dyn(), sigma as f32)
        .expect("denoise 512");
    let t512 = best_of(5, || {
        d.denoise(x512.view().into_dyn(), sigma as f32).unwrap();
    });
    let o2048 = d
        .denoise(x2048.view().into_dyn(), sigma as f32)
        .expect("denoise 2048");
    let t2048 = best_of(3, || {
        d.denoise(x2048.view().into_dyn(), sigma as f32).unwrap();
    });
    write_npy(dir.join("ours512.npy"), &o512).expect("write");
    write_npy(dir.join("ours2048.npy"), &o2048).expect("write");

    // one PnP-PGD iteration on a blurred 512² image
    let k = Array2::from_shape_fn((9, 9), |(i, j)| {
        let (a, b) = (i as f32 - 4.0, j as f32 - 4.0);
        (-(a * a + b * b) / (2.0 * 1.5 * 1.5)).exp()
    });
    let k = &k / k.sum();
    let a = Conv2d::new([512, 512], k.view(), Boundary::Same).expect("conv");
    let y: ArrayD<f32> = a.apply(x512.view().into_dyn()).expect("blur");
    let pp = PnpParams::<f32> {
        sigma: sigma as f32,
        ..Default::default()
    };
    let mut solver = PnpPgd::new(&a, y.view(), &d, None, &pp).expect("pnp");
    solver.step().expect("warm-up step");
    let tpnp = best_of(5, || {
        solver.step().unwrap();
    });
    println!(
        "{{\"seconds_512\": {t512}, \"seconds_2048\": {t2048}, \"tiles_2048\": {}, \"seconds_pnp_iteration_512\": {tpnp}, \"threads\": {threads}}}",
        d.tiles_for(2048, 2048)
    );
}
