//! `sparseinv runtime install` keeps the deep priors working when the build-directory copy of
//! ONNX Runtime is gone (`cargo install`, a copied binary): the built binary, with that copy
//! hidden (`SPARSEINV_ORT_NO_BUILD_COPY`), the Python route hidden (`SPARSEINV_PYTHON` pointing
//! nowhere) and an empty per-user cache (`SPARSEINV_CACHE_DIR`), fails with a message that
//! names the fix; after `runtime install` from a local copy of the library (the one the build
//! fetched, checksum verified) it denoises with the built-in model.
#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn exe(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sparseinv"));
    c.env("SPARSEINV_CACHE_DIR", cache)
        .env("SPARSEINV_ORT_NO_BUILD_COPY", "1")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH");
    c
}

/// An existing ONNX Runtime library, as `runtime info` reports the candidates (the build
/// script's copy or Python's), or `None`.
fn existing_library() -> Option<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_sparseinv"))
        .args(["runtime", "info", "--json"])
        .env_remove("SPARSEINV_ORT_NO_BUILD_COPY")
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    j["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["exists"] == true && c["source"] != "user cache")
        .map(|c| PathBuf::from(c["path"].as_str().unwrap()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("1.32.0"))
        })
}

#[test]
#[cfg_attr(
    not(sparseinv_ort),
    ignore = "ONNX Runtime not found at build time (see models/build.rs)"
)]
#[cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    ignore = "the pinned checksum is the linux x86-64 library's"
)]
fn installed_binary_finds_the_runtime_in_the_user_cache() {
    let lib = existing_library().expect("a runtime library (build copy or Python's) exists");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let img = dir.path().join("x.npy");
    let noisy = ndarray::Array2::from_shape_fn((32, 32), |(i, j)| {
        0.5 + 0.3 * ((i as f64) / 5.0).sin() + 0.05 * (((i * 31 + j * 17) % 13) as f64 / 6.0 - 1.0)
    });
    ndarray_npy::write_npy(&img, &noisy).unwrap();
    let denoise = |out: &Path| {
        exe(&cache)
            .env("SPARSEINV_PYTHON", dir.path().join("no-python-here"))
            .arg("denoise")
            .arg(&img)
            .args([
                "--model",
                "builtin",
                "--sigma",
                "0.05",
                "--threads",
                "1",
                "-o",
            ])
            .arg(out)
            .output()
            .unwrap()
    };
    // 1. nothing to load: a clear error that names the fix, and no output
    let o = denoise(&dir.path().join("a.npy"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("sparseinv runtime install"), "{err}");
    assert!(err.contains("SPARSEINV_ORT_NO_BUILD_COPY"), "{err}");
    assert!(!dir.path().join("a.npy").exists());
    // 2. a file whose checksum is wrong is refused and not installed
    let bogus = dir.path().join("libonnxruntime.so.1.32.0");
    std::fs::write(&bogus, b"not a library").unwrap();
    let o = exe(&cache)
        .args(["runtime", "install", "--from"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"));
    assert!(!cache
        .join("onnxruntime-1.32.0/libonnxruntime.so.1.32.0")
        .exists());
    // 3. install the real library (checksum verified), then the binary denoises from the cache
    let o = exe(&cache)
        .args(["runtime", "install", "--from"])
        .arg(&lib)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = denoise(&dir.path().join("b.npy"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: ndarray::Array2<f64> = ndarray_npy::read_npy(dir.path().join("b.npy")).unwrap();
    assert_eq!(out.dim(), (32, 32));
    let info = exe(&cache)
        .env("SPARSEINV_PYTHON", dir.path().join("no-python-here"))
        .args(["runtime", "info", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(j["loaded"]["source"], "user cache");
}
