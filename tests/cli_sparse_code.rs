//! End-to-end tests of `sparseinv sparse-code`, against closed forms for orthonormal
//! dictionaries (real DCT, complex DFT), where `min ½‖Ax − y‖² + λ‖x‖₁` is solved by soft
//! thresholding of `Aᴴy`.

use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use num_complex::Complex64;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `sparseinv sparse-code --dict DICT --y Y`, to be completed with options.
fn sparse_code(dict: impl AsRef<std::ffi::OsStr>, y: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = bin();
    c.args(["sparse-code", "--dict"])
        .arg(dict)
        .arg("--y")
        .arg(y);
    c
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn dct(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(k, j)| {
        let s = if k == 0 {
            (1.0 / n as f64).sqrt()
        } else {
            (2.0 / n as f64).sqrt()
        };
        s * (std::f64::consts::PI * (j as f64 + 0.5) * k as f64 / n as f64).cos()
    })
}

fn save<A: WriteNpyExt>(dir: &Path, name: &str, a: &A) -> PathBuf {
    let p = dir.join(name);
    a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
    p
}

fn signal(n: usize) -> Array1<f64> {
    Array1::from_shape_fn(n, |i| {
        ((i * 37 % 11) as f64 - 5.0) * 0.3 + (i as f64 * 0.7).sin()
    })
}

fn soft(v: f64, t: f64) -> f64 {
    v.signum() * (v.abs() - t).max(0.0)
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The default (`auto`) solves the Lasso with the working-set solver: same closed form, stop
/// on the duality gap; `working-set` with a non-l1 penalty is refused before any output.
#[test]
fn working_set_default_for_l1_matches_soft_threshold() {
    let d = tempfile::tempdir().unwrap();
    let n = 48;
    let a = dct(n);
    let y = signal(n);
    let pa = save(d.path(), "A.npy", &a);
    let py = save(d.path(), "y.npy", &y);
    let px = d.path().join("x.npy");
    let pj = d.path().join("r.json");
    let lam = 0.3;
    run_ok(
        sparse_code(&pa, &py)
            .args(["--lambda", "0.3", "--tol", "1e-12", "-o"])
            .arg(&px)
            .arg("--json")
            .arg(&pj),
    );
    let x = Array1::<f64>::read_npy(std::fs::File::open(&px).unwrap()).unwrap();
    let b = a.t().dot(&y);
    for (u, v) in x.iter().zip(&b) {
        assert!((u - soft(*v, lam)).abs() < 1e-8);
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(r["algorithm"], "working-set");
    assert_eq!(r["stop_reason"], "residual");
    let out = sparse_code(&pa, &py)
        .args([
            "--penalty",
            "l0",
            "--algorithm",
            "working-set",
            "--lambda",
            "0.3",
            "-o",
        ])
        .arg(d.path().join("x0.npy"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Lasso only"));
    assert!(!d.path().join("x0.npy").exists());
}

#[test]
fn l1_vector_matches_soft_threshold_and_writes_report() {
    let d = tempfile::tempdir().unwrap();
    let n = 32;
    let a = dct(n);
    let y = signal(n);
    let pa = save(d.path(), "A.npy", &a);
    let py = save(d.path(), "y.npy", &y);
    let px = d.path().join("x.npy");
    let pj = d.path().join("r.json");
    let lam = 0.5;
    run_ok(
        sparse_code(&pa, &py)
            .args([
                "--penalty",
                "l1",
                "--algorithm",
                "fista",
                "--lambda",
                "0.5",
                "--tol",
                "1e-12",
                "--max-iter",
                "5000",
                "-o",
            ])
            .arg(&px)
            .arg("--json")
            .arg(&pj),
    );
    let x = Array1::<f64>::read_npy(std::fs::File::open(&px).unwrap()).unwrap();
    let b = a.t().dot(&y);
    let mut nnz = 0;
    for (u, v) in x.iter().zip(&b) {
        let e = soft(*v, lam);
        assert!((u - e).abs() < 1e-8, "{u} vs {e}");
        nnz += (e != 0.0) as usize;
    }
    assert!(nnz > 0 && nnz < n);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "relative_change");
    assert!(r["iterations"].as_u64().unwrap() >= 1);
    let f_exp = 0.5 * (a.dot(&x) - &y).mapv(|v| v * v).sum() + lam * x.mapv(f64::abs).sum();
    assert!((r["objective"].as_f64().unwrap() - f_exp).abs() < 1e-9 * f_exp);
    assert_eq!(r["nonzeros"].as_u64().unwrap() as usize, nnz);
    assert!(r["seconds"].as_f64().unwrap() >= 0.0);
    // existing output without --force: refused, file untouched
    let before = std::fs::read(&px).unwrap();
    let out = sparse_code(&pa, &py)
        .args(["--lambda", "0.1", "-o"])
        .arg(&px)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&px).unwrap(), before);
    // with --force it is replaced
    run_ok(
        sparse_code(&pa, &py)
            .args(["--lambda", "0.1", "--force", "-o"])
            .arg(&px),
    );
    assert_ne!(std::fs::read(&px).unwrap(), before);
}

#[test]
fn matrix_y_columns_nonneg_and_nonconvex() {
    let d = tempfile::tempdir().unwrap();
    let n = 24;
    let a = dct(n);
    let y = Array2::from_shape_fn((n, 3), |(i, c)| {
        signal(n)[i] * (c as f64 + 1.0) - c as f64 * 0.2
    });
    let pa = save(d.path(), "A.npy", &a);
    let py = save(d.path(), "Y.npy", &y);
    let b = a.t().dot(&y);
    // l1 + non-negativity: x = max(b − λ, 0), column by column
    let px = d.path().join("x.npy");
    let pj = d.path().join("r.json");
    run_ok(
        sparse_code(&pa, &py)
            .args([
                "--lambda",
                "0.4",
                "--nonneg",
                "--tol",
                "1e-12",
                "--max-iter",
                "5000",
                "-o",
            ])
            .arg(&px)
            .arg("--json")
            .arg(&pj),
    );
    let x = Array2::<f64>::read_npy(std::fs::File::open(&px).unwrap()).unwrap();
    assert_eq!(x.dim(), (n, 3));
    for (u, v) in x.iter().zip(&b) {
        assert!((u - (v - 0.4).max(0.0)).abs() < 1e-8);
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(r["columns"], 3);
    assert_eq!(r["per_column"].as_array().unwrap().len(), 3);
    // l0: the limit is a fixed point of hard thresholding with step 1/L, L = 1.01‖A‖²
    // (‖A‖ = 1): kept entries equal Aᵀy; entries above sqrt(2λL) are kept, below sqrt(2λ/L) not
    let lam = 0.3f64;
    let px0 = d.path().join("x0.npy");
    run_ok(
        sparse_code(&pa, &py)
            .args(["--penalty", "l0", "--lambda", "0.3", "--tol", "1e-12", "-o"])
            .arg(&px0),
    );
    let x0 = Array2::<f64>::read_npy(std::fs::File::open(&px0).unwrap()).unwrap();
    for (u, v) in x0.iter().zip(&b) {
        if *u != 0.0 {
            assert!((u - v).abs() < 1e-8);
        }
        if v.abs() > (2.0 * lam * 1.02).sqrt() {
            assert!(*u != 0.0);
        }
        if v.abs() < (2.0 * lam / 1.02).sqrt() {
            assert_eq!(*u, 0.0);
        }
    }
    // the other penalties run and lower the objective below that of x = 0
    for pen in ["lhalf", "ltwothirds", "cel0"] {
        let p = d.path().join(format!("x_{pen}.npy"));
        let pj = d.path().join(format!("r_{pen}.json"));
        run_ok(
            sparse_code(&pa, &py)
                .args(["--penalty", pen, "--lambda", "0.3", "-o"])
                .arg(&p)
                .arg("--json")
                .arg(&pj),
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
        for (c, col) in r["per_column"].as_array().unwrap().iter().enumerate() {
            let f0 = 0.5 * y.column(c).mapv(|v| v * v).sum();
            assert!(col["objective"].as_f64().unwrap() < f0, "{pen}");
        }
    }
}

#[test]
fn complex_l1_matches_complex_soft_threshold() {
    let d = tempfile::tempdir().unwrap();
    let n = 16;
    let f = Array2::from_shape_fn((n, n), |(j, k)| {
        Complex64::from_polar(
            1.0 / (n as f64).sqrt(),
            -2.0 * std::f64::consts::PI * (j * k) as f64 / n as f64,
        )
    });
    let y = Array1::from_shape_fn(n, |i| Complex64::new(signal(n)[i], (i as f64 * 1.3).cos()));
    let pa = save(d.path(), "F.npy", &f);
    let py = save(d.path(), "y.npy", &y);
    let px = d.path().join("x.npy");
    run_ok(
        sparse_code(&pa, &py)
            .args([
                "--lambda",
                "0.8",
                "--tol",
                "1e-12",
                "--max-iter",
                "5000",
                "-o",
            ])
            .arg(&px),
    );
    let x = Array1::<Complex64>::read_npy(std::fs::File::open(&px).unwrap()).unwrap();
    let b = f.t().mapv(|v| v.conj()).dot(&y);
    let mut zeros = 0;
    for (u, v) in x.iter().zip(&b) {
        let m = v.norm();
        let e = if m > 0.8 {
            v * ((m - 0.8) / m)
        } else {
            Complex64::new(0.0, 0.0)
        };
        zeros += (m <= 0.8) as usize;
        assert!((u - e).norm() < 1e-8, "{u} vs {e}");
    }
    assert!(zeros > 0 && zeros < n);
}

#[test]
fn bad_input_is_one_clear_line_and_no_output() {
    let d = tempfile::tempdir().unwrap();
    let a = dct(8);
    let pa = save(d.path(), "A.npy", &a);
    let py = save(d.path(), "y.npy", &signal(8));
    let py_short = save(d.path(), "ys.npy", &signal(7));
    let mut nan = signal(8);
    nan[2] = f64::NAN;
    let py_nan = save(d.path(), "yn.npy", &nan);
    let pc = save(d.path(), "C.npy", &a.mapv(|v| Complex64::new(v, 0.5)));
    let pa3 = save(
        d.path(),
        "A3.npy",
        &ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 2, 2])),
    );
    let garbage = d.path().join("garbage.npy");
    std::fs::write(&garbage, b"not a numpy file").unwrap();
    let missing = d.path().join("missing.npy");
    let px = d.path().join("x.npy");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec![pa.as_os_str(), py_short.as_os_str()], "shape mismatch"),
        (vec![pa.as_os_str(), py_nan.as_os_str()], "non-finite"),
        (vec![garbage.as_os_str(), py.as_os_str()], "garbage.npy"),
        (vec![missing.as_os_str(), py.as_os_str()], "missing.npy"),
        (vec![pa3.as_os_str(), py.as_os_str()], "2-D"),
    ];
    for (files, needle) in cases {
        let out = sparse_code(files[0], files[1])
            .args(["--lambda", "0.1", "-o"])
            .arg(&px)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{needle}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!px.exists());
    }
    // negative λ, complex with --nonneg
    let out = sparse_code(&pa, &py)
        .args(["--lambda=-1", "-o"])
        .arg(&px)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lambda"));
    let out = sparse_code(&pc, &py)
        .args(["--lambda", "0.1", "--nonneg", "-o"])
        .arg(&px)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nonneg"));
    assert!(!px.exists());
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        7,
        "no stray files"
    );
}
