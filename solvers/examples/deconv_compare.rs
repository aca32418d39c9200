//! Runs sparseinv's deconvolution methods on the inputs written by
//! `solvers/tests/data/gen_deconv_skimage.py` (`cmp_blurred.npy`, `cmp_psf.npy` in the
//! directory given as the first argument), writes each result as `ours_<name>.npy` there and
//! prints a JSON object `{name: path}` that the script scores against scikit-image.

use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use sparseinv_solvers::deconv::{
    refit_active, richardson_lucy, starlet_sparse, tikhonov, wiener, Balance, Regulariser,
    RlParams, StarletSparseParams,
};
use sparseinv_solvers::iter::NoObserver;
use sparseinv_solvers::op::Boundary;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: deconv_compare DIR")?;
    let dir = Path::new(&dir);
    let y: Array2<f64> = read_npy(dir.join("cmp_blurred.npy"))?;
    let k: Array2<f64> = read_npy(dir.join("cmp_psf.npy"))?;
    let mut out: Vec<(String, Array2<f64>)> = Vec::new();
    out.push((
        "tikhonov Laplacian 0.01 (= skimage wiener)".into(),
        tikhonov(y.view(), k.view(), Regulariser::Laplacian, 0.01)?,
    ));
    out.push((
        "wiener auto balance".into(),
        wiener(y.view(), k.view(), Balance::Auto)?,
    ));
    let (rl, _) = richardson_lucy(
        y.view(),
        k.view(),
        None,
        &RlParams::default(),
        &mut NoObserver,
    )?;
    out.push(("richardson_lucy 30 it".into(), rl));
    let acc = RlParams {
        accelerate: true,
        ..RlParams::default()
    };
    let (rla, _) = richardson_lucy(y.view(), k.view(), None, &acc, &mut NoObserver)?;
    out.push(("richardson_lucy 30 it accelerated".into(), rla));
    let p = StarletSparseParams {
        scales: 4,
        k_sigma: 1.0,
        ..StarletSparseParams::default()
    };
    let r = starlet_sparse(y.view(), k.view(), None, &p)?;
    let rf = refit_active(
        y.view(),
        k.view(),
        None,
        r.x.view(),
        &r.lambdas,
        Boundary::Same,
        10,
    )?;
    out.push(("starlet_sparse k=1".into(), r.x));
    out.push(("starlet_sparse k=1 + refit_active".into(), rf));
    let mut items = Vec::new();
    for (i, (name, x)) in out.iter().enumerate() {
        let path = dir.join(format!("ours_{i}.npy"));
        write_npy(&path, x)?;
        items.push(format!("{:?}: {:?}", name, path.display().to_string()));
    }
    println!("{{{}}}", items.join(", "));
    Ok(())
}
