//! End-to-end tests of `sparseinv selfcal`.

use ndarray::{Array1, Array2};
use sparseinv::io::npy::{read_npy, write_npy, NpyArray};
use sparseinv::solvers::selfcal::{scale_invariant_error, synthetic, InstanceSpec, Model};
use sparseinv::solvers::C64;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn write(p: &Path, a: NpyArray) {
    write_npy(p, &a, true).unwrap();
}

#[test]
fn repeated_real_lsq_recovers_gains_and_signal_with_report() {
    let dir = tempfile::tempdir().unwrap();
    let inst = synthetic::<f64>(&InstanceSpec::new(Model::Repeated, 16, 4, 3), 3).unwrap();
    let y = dir.path().join("y.npy");
    let a = dir.path().join("A.npy");
    write(&y, NpyArray::Real(inst.problem.y().clone().into_dyn()));
    write(
        &a,
        NpyArray::Real(inst.problem.matrices().clone().into_dyn()),
    );
    let x = dir.path().join("x.npy");
    let d = dir.path().join("d.npy");
    let j = dir.path().join("r.json");
    let out = bin()
        .args(["selfcal", "--model", "repeated", "--y"])
        .arg(&y)
        .arg("--a")
        .arg(&a)
        .arg("-o")
        .arg(&x)
        .arg("--calibration")
        .arg(&d)
        .arg("--json")
        .arg(&j)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xr = match read_npy(&x).unwrap() {
        NpyArray::Real(a) => a,
        _ => panic!("expected real output"),
    };
    assert_eq!(xr.shape(), &[4]);
    let xr = xr.into_dimensionality::<ndarray::Ix1>().unwrap();
    assert!(scale_invariant_error(xr.view(), inst.x.row(0)) < 1e-8);
    let dr = match read_npy(&d).unwrap() {
        NpyArray::Real(a) => a.into_dimensionality::<ndarray::Ix1>().unwrap(),
        _ => panic!(),
    };
    assert!(scale_invariant_error(dr.view(), inst.d.view()) < 1e-8);
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(rep["model"], "repeated");
    assert_eq!(rep["unknowns"], 20);
    assert_eq!(rep["measurements"], 48);
    // no overwrite without --force
    let out = bin()
        .args(["selfcal", "--model", "repeated", "--y"])
        .arg(&y)
        .arg("--a")
        .arg(&a)
        .arg("-o")
        .arg(&x)
        .arg("--calibration")
        .arg(&d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn snapshots_complex_spectral_matrix_free_and_diverse() {
    let dir = tempfile::tempdir().unwrap();
    // snapshots, complex, 2-D A accepted
    let inst = synthetic::<C64>(&InstanceSpec::new(Model::Snapshots, 16, 4, 4), 5).unwrap();
    let y = dir.path().join("y.npy");
    let a = dir.path().join("A.npy");
    write(&y, NpyArray::Complex(inst.problem.y().clone().into_dyn()));
    let a2: Array2<C64> = inst
        .problem
        .matrices()
        .index_axis(ndarray::Axis(0), 0)
        .to_owned();
    write(&a, NpyArray::Complex(a2.into_dyn()));
    let x = dir.path().join("x.npy");
    let d = dir.path().join("d.npy");
    let out = bin()
        .args(["selfcal", "--model", "snapshots", "--solver", "spectral"])
        .args(["--backend", "matrix-free", "--y"])
        .arg(&y)
        .arg("--a")
        .arg(&a)
        .arg("-o")
        .arg(&x)
        .arg("--calibration")
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xr = read_npy(&x).unwrap().into_complex();
    assert_eq!(xr.shape(), &[4, 4]);
    let xv: Array1<C64> = xr.iter().copied().collect();
    let xt: Array1<C64> = inst.x.iter().copied().collect();
    assert!(scale_invariant_error(xv.view(), xt.view()) < 1e-7);
    // diverse (blind deconvolution), real: the filter comes back up to scale
    let inst = synthetic::<f64>(&InstanceSpec::new(Model::Diverse, 16, 3, 4), 6).unwrap();
    write(&y, NpyArray::Real(inst.problem.y().clone().into_dyn()));
    write(
        &a,
        NpyArray::Real(inst.problem.matrices().clone().into_dyn()),
    );
    let out = bin()
        .args(["selfcal", "--model", "diverse", "--force", "--y"])
        .arg(&y)
        .arg("--a")
        .arg(&a)
        .arg("-o")
        .arg(&x)
        .arg("--calibration")
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = match read_npy(&d).unwrap() {
        NpyArray::Real(a) => a.into_dimensionality::<ndarray::Ix1>().unwrap(),
        _ => panic!(),
    };
    assert!(scale_invariant_error(f.view(), inst.d.view()) < 1e-8);
}

#[test]
fn bad_inputs_fail_cleanly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let d = dir.path().join("d.npy");
    let y = dir.path().join("y.npy");
    let a = dir.path().join("A.npy");
    let run = |model: &str| {
        bin()
            .args(["selfcal", "--model", model, "--force", "--y"])
            .arg(&y)
            .arg("--a")
            .arg(&a)
            .arg("-o")
            .arg(&x)
            .arg("--calibration")
            .arg(&d)
            .output()
            .unwrap()
    };
    let check = |out: std::process::Output, needle: &str| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert_eq!(err.lines().count(), 1, "one error line: {err}");
        assert!(!x.exists() && !d.exists());
    };
    // inconsistent shapes
    write(&y, NpyArray::Real(Array2::<f64>::ones((3, 8)).into_dyn()));
    write(
        &a,
        NpyArray::Real(ndarray::Array3::<f64>::ones((2, 8, 2)).into_dyn()),
    );
    check(run("repeated"), "shape mismatch");
    // too few measurements: snapshots with p = 3, m = 8, n = 6: N − 1 = 8 + 18 − 1 = 25 > 24
    write(&a, NpyArray::Real(Array2::<f64>::ones((8, 6)).into_dyn()));
    check(run("snapshots"), "needs at least 25 measurements");
    // NaN
    let mut yn = Array2::<f64>::ones((3, 8));
    yn[[0, 1]] = f64::NAN;
    write(&y, NpyArray::Real(yn.into_dyn()));
    write(
        &a,
        NpyArray::Real(ndarray::Array3::<f64>::ones((3, 8, 2)).into_dyn()),
    );
    check(run("repeated"), "non-finite");
    // all-zero measurements
    write(&y, NpyArray::Real(Array2::<f64>::zeros((3, 8)).into_dyn()));
    check(run("repeated"), "all zero");
    // missing file
    std::fs::remove_file(&y).unwrap();
    check(run("repeated"), "y.npy");
}
