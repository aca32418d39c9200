//! End-to-end tests of `sparseinv channel`.

use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use num_complex::Complex64;
use sparseinv::io::npy::{read_npy, write_npy, NpyArray};
use sparseinv::solvers::op::{Kronecker, LinearOperator};
use sparseinv::solvers::testing::randn;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparseinv"))
}

fn save(p: &Path, a: NpyArray) {
    write_npy(p, &a, true).unwrap();
}

fn real_mat(m: usize, n: usize, seed: u64) -> Array2<f64> {
    randn::<f64>(&[m, n], seed)
        .into_dimensionality::<Ix2>()
        .unwrap()
}

#[test]
fn kronecker_sbl_end_to_end_with_report() {
    let d = tempfile::tempdir().unwrap();
    let a1 = real_mat(6, 10, 1);
    let a2 = real_mat(7, 12, 2);
    let mut x = Array1::<f64>::zeros(120);
    for (i, j) in [(2usize, 3usize), (2, 9), (7, 3), (7, 9)] {
        x[i * 12 + j] = 1.0 + (i + j) as f64 / 10.0;
    }
    let y = Kronecker::new(vec![a1.clone(), a2.clone()])
        .unwrap()
        .apply(x.view().into_dyn())
        .unwrap();
    save(&d.path().join("A1.npy"), NpyArray::Real(a1.into_dyn()));
    save(&d.path().join("A2.npy"), NpyArray::Real(a2.into_dyn()));
    save(&d.path().join("y.npy"), NpyArray::Real(y));
    for method in ["ksbl-am", "ksbl-svd", "omp"] {
        let out = d.path().join(format!("x_{method}.npy"));
        let rep = d.path().join(format!("r_{method}.json"));
        let var = d.path().join(format!("v_{method}.npy"));
        let st = bin()
            .args([
                "channel",
                "--dict",
                "A1.npy",
                "--dict",
                "A2.npy",
                "--y",
                "y.npy",
                "--method",
                method,
                "--noise-var",
                "1e-10",
                "-o",
            ])
            .arg(&out)
            .arg("--var")
            .arg(&var)
            .arg("--json")
            .arg(&rep)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let NpyArray::Real(xh) = read_npy(&out).unwrap() else {
            panic!("real expected")
        };
        let xh = xh.into_dimensionality::<Ix1>().unwrap();
        let err = (&xh - &x).mapv(|v| v * v).sum().sqrt() / x.mapv(|v| v * v).sum().sqrt();
        // greedy K-OMP may pick a wrong atom first on this tiny problem: checked for a
        // finite estimate and the report only (its recovery is tested in the solvers crate)
        if method != "omp" {
            assert!(err < 1e-3, "{method}: {err}");
        } else {
            assert!(err.is_finite());
        }
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
        if method != "omp" {
            assert_eq!(r["support_size"], 4, "{method}: {r}");
        }
        assert_eq!(r["method"], method);
        assert!(r["time_s"].as_f64().unwrap() >= 0.0);
        assert!(r["iterations"].as_u64().unwrap() >= 1);
        if method != "omp" {
            assert!(var.exists());
        }
    }
}

/// `--method sbl` with two dictionaries (classic SBL through the factors) gives the estimate,
/// variances and report of `--method sbl` on the product formed by a plain loop, for two
/// snapshots with learned noise; `bsbl` with two dictionaries is refused.
#[test]
fn classic_sbl_on_kronecker_factors_equals_the_formed_dictionary() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let a1 = real_mat(4, 6, 11);
    let a2 = real_mat(5, 7, 12);
    let formed = Array2::from_shape_fn((20, 42), |(r, c)| a1[[r / 5, c / 7]] * a2[[r % 5, c % 7]]);
    let mut x = Array2::<f64>::zeros((42, 2));
    // atoms (0, 2), (1, 5), (3, 0), (4, 6): no two share a column of either factor
    for (i, &j) in [2usize, 12, 21, 34].iter().enumerate() {
        x[[j, 0]] = 1.5 - 0.7 * i as f64;
        x[[j, 1]] = 0.4 + 0.3 * i as f64;
    }
    let noise = randn::<f64>(&[20, 2], 13)
        .into_dimensionality::<Ix2>()
        .unwrap()
        * 0.02;
    let y = formed.dot(&x) + noise;
    save(&p.join("A1.npy"), NpyArray::Real(a1.into_dyn()));
    save(&p.join("A2.npy"), NpyArray::Real(a2.into_dyn()));
    save(&p.join("A.npy"), NpyArray::Real(formed.into_dyn()));
    save(&p.join("y.npy"), NpyArray::Real(y.into_dyn()));
    let run = |dicts: &[&str], tag: &str| -> (ArrayD<f64>, ArrayD<f64>, serde_json::Value) {
        let mut c = bin();
        c.arg("channel");
        for dct in dicts {
            c.args(["--dict", dct]);
        }
        let st = c
            .args([
                "--y",
                "y.npy",
                "--method",
                "sbl",
                "--prune",
                "1e-3",
                "--max-iters",
                "300",
            ])
            .args([
                "-o",
                &format!("x_{tag}.npy"),
                "--var",
                &format!("v_{tag}.npy"),
            ])
            .args(["--json", &format!("r_{tag}.json")])
            .current_dir(p)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let real = |f: &str| match read_npy(p.join(f)).unwrap() {
            NpyArray::Real(a) => a,
            NpyArray::Complex(_) => panic!("real expected"),
        };
        let rep = serde_json::from_str(
            &std::fs::read_to_string(p.join(format!("r_{tag}.json"))).unwrap(),
        )
        .unwrap();
        (
            real(&format!("x_{tag}.npy")),
            real(&format!("v_{tag}.npy")),
            rep,
        )
    };
    let (xk, vk, rk) = run(&["A1.npy", "A2.npy"], "kron");
    let (xf, vf, rf) = run(&["A.npy"], "formed");
    assert_eq!(xk.shape(), &[42, 2]);
    let close = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
        let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b.iter())
            .all(|(u, v)| (u - v).abs() <= 1e-8 * scale)
    };
    assert!(close(&xk, &xf) && close(&vk, &vf));
    for key in ["iterations", "support_size", "snapshots", "unknowns"] {
        assert_eq!(rk[key], rf[key], "{key}");
    }
    let (nk, nf) = (
        rk["noise_variance"].as_f64().unwrap(),
        rf["noise_variance"].as_f64().unwrap(),
    );
    assert!((nk - nf).abs() <= 1e-8 * nf);
    // the estimate is the sparse vector (the support of x, up to the noise)
    let err = (&xk - &x.into_dyn()).mapv(|v| v * v).sum().sqrt();
    assert!(err < 0.1, "{err} {}", rk["support_size"]);
    fails(
        p,
        &[
            "channel", "--dict", "A1.npy", "--dict", "A2.npy", "--y", "y.npy", "--method", "bsbl",
            "--blocks", "2",
        ],
        "takes one --dict",
    );
}

#[test]
fn complex_sbl_mmv_and_block_sbl() {
    let d = tempfile::tempdir().unwrap();
    let phi = randn::<Complex64>(&[20, 40], 3)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mut x = Array2::<Complex64>::zeros((40, 2));
    for (j, v) in [(4usize, 1.0), (5, -1.5), (30, 2.0), (31, 1.0)] {
        x[[j, 0]] = Complex64::new(v, 0.5);
        x[[j, 1]] = Complex64::new(-0.5, v);
    }
    let y = phi.dot(&x);
    save(&d.path().join("A.npy"), NpyArray::Complex(phi.into_dyn()));
    save(&d.path().join("y.npy"), NpyArray::Complex(y.into_dyn()));
    for (method, extra) in [("sbl", vec![]), ("bsbl", vec!["--blocks", "2"])] {
        let out = d.path().join(format!("x_{method}.npy"));
        let st = bin()
            .args([
                "channel",
                "--dict",
                "A.npy",
                "--y",
                "y.npy",
                "--method",
                method,
                "--noise-var",
                "1e-9",
            ])
            .args(&extra)
            .arg("-o")
            .arg(&out)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let xh: ArrayD<Complex64> = read_npy(&out).unwrap().into_complex();
        assert_eq!(xh.shape(), &[40, 2]);
        let err = (&xh - &x.clone().into_dyn())
            .iter()
            .map(|v| v.norm_sqr())
            .sum::<f64>()
            .sqrt()
            / x.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
        assert!(err < 1e-3, "{method}: {err}");
    }
}

fn fails(d: &Path, args: &[&str], needle: &str) {
    let out = d.join("bad_out.npy");
    let st = bin()
        .args(args)
        .arg("-o")
        .arg(&out)
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success(), "{args:?} should fail");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err}"
    );
    assert!(!out.exists(), "no output on error");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1);
}

#[test]
fn bad_input_gives_one_clear_error_and_no_output() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let a = real_mat(5, 8, 1);
    save(&p.join("A.npy"), NpyArray::Real(a.clone().into_dyn()));
    save(
        &p.join("y.npy"),
        NpyArray::Real(Array1::<f64>::ones(5).into_dyn()),
    );
    save(
        &p.join("y6.npy"),
        NpyArray::Real(Array1::<f64>::ones(6).into_dyn()),
    );
    save(
        &p.join("y0.npy"),
        NpyArray::Real(Array1::<f64>::zeros(5).into_dyn()),
    );
    let mut yn = Array1::<f64>::ones(5);
    yn[1] = f64::NAN;
    save(&p.join("ynan.npy"), NpyArray::Real(yn.into_dyn()));
    let mut rd = a.clone();
    let r0 = rd.row(0).to_owned();
    rd.row_mut(3).assign(&r0);
    save(&p.join("Ard.npy"), NpyArray::Real(rd.into_dyn()));
    save(
        &p.join("Ac.npy"),
        NpyArray::Complex(a.mapv(|v| Complex64::new(v, 0.1)).into_dyn()),
    );
    fails(
        p,
        &["channel", "--dict", "A.npy", "--y", "y6.npy"],
        "does not match",
    );
    fails(
        p,
        &["channel", "--dict", "A.npy", "--y", "y0.npy"],
        "all zero",
    );
    fails(
        p,
        &["channel", "--dict", "A.npy", "--y", "ynan.npy"],
        "non-finite",
    );
    fails(
        p,
        &["channel", "--dict", "Ard.npy", "--y", "y.npy"],
        "rank deficient",
    );
    fails(
        p,
        &["channel", "--dict", "Ac.npy", "--y", "y.npy", "--real"],
        "complex",
    );
    fails(
        p,
        &[
            "channel", "--dict", "A.npy", "--y", "y.npy", "--method", "ksbl-am",
        ],
        "at least two",
    );
    fails(
        p,
        &[
            "channel", "--dict", "A.npy", "--y", "y.npy", "--method", "nope",
        ],
        "unknown --method",
    );
    fails(
        p,
        &[
            "channel", "--dict", "A.npy", "--y", "y.npy", "--method", "bsbl", "--blocks", "3",
        ],
        "blocks",
    );
    // an existing output is not overwritten without --force
    std::fs::write(p.join("bad_out.npy"), b"keep").unwrap();
    let st = bin()
        .args([
            "channel",
            "--dict",
            "A.npy",
            "--y",
            "y.npy",
            "-o",
            "bad_out.npy",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert_eq!(std::fs::read(p.join("bad_out.npy")).unwrap(), b"keep");
}
