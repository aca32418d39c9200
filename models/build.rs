//! Build script of `sparseinv-models`: fetch the ONNX Runtime shared library from the PyPI
//! wheel `onnxruntime==1.32.0` so that a fresh machine needs no manual step.
//!
//! It runs `python3 -m pip download --no-deps --only-binary=:all: onnxruntime==1.32.0` into
//! `OUT_DIR`, extracts `onnxruntime/capi/libonnxruntime.*` from the wheel (a zip archive) with
//! Python's `zipfile`, and passes the extracted path to the crate as the compile-time variable
//! `SPARSEINV_ORT_BUILD_DYLIB`. Any failure (offline, no Python, unsupported platform) only
//! prints a cargo warning: the runtime is then looked up at run time by the other routes
//! (`ORT_DYLIB_PATH`, an installed Python `onnxruntime`, the system library path).
//!
//! Environment: `SPARSEINV_NO_ORT_DOWNLOAD=1` disables the fetch; `SPARSEINV_PYTHON` picks
//! the Python interpreter (default `python3`).
//!
//! **Test gating.** The script also decides whether a runtime is available to the tests: it
//! is when the fetch succeeded, `ORT_DYLIB_PATH` names an existing file, or the Python
//! interpreter has an `onnxruntime` package with its shared library. Then it sets the cfg
//! `sparseinv_ort` (declared with `cargo::rustc-check-cfg`), and the tests that need ONNX
//! Runtime carry `#[cfg_attr(not(sparseinv_ort), ignore = "…")]`, so without a runtime they
//! show as *ignored* in the test summary instead of passing unchecked. The finding is also
//! published to dependents' build scripts through the `links = "sparseinv_ort"` key as
//! `DEP_SPARSEINV_ORT_FOUND=1|0` (the root crate's build script turns it into the same cfg
//! for its CLI tests).
//!
//! - `SPARSEINV_REQUIRE_ORT=1` (CI): the cfg is always set, so the tests run and fail when
//!   the runtime cannot be loaded — a missing runtime is a failure, never a skip;
//! - `SPARSEINV_ORT_ABSENT=1`: behave as if no runtime existed (no fetch, no cfg), to check
//!   that the gated tests are reported as ignored on a machine that has one.

use std::path::{Path, PathBuf};
use std::process::Command;

const ORT_VERSION: &str = "1.32.0";

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SPARSEINV_NO_ORT_DOWNLOAD");
    println!("cargo:rerun-if-env-changed=SPARSEINV_PYTHON");
    println!("cargo:rerun-if-env-changed=SPARSEINV_REQUIRE_ORT");
    println!("cargo:rerun-if-env-changed=SPARSEINV_ORT_ABSENT");
    println!("cargo:rerun-if-env-changed=ORT_DYLIB_PATH");
    println!("cargo::rustc-check-cfg=cfg(sparseinv_ort)");
    let found = if flag("SPARSEINV_ORT_ABSENT") {
        println!(
            "cargo:warning=SPARSEINV_ORT_ABSENT is set: building as if no ONNX Runtime existed \
             (the tests that need it are ignored)"
        );
        false
    } else {
        let fetched = if flag("SPARSEINV_NO_ORT_DOWNLOAD") {
            println!(
                "cargo:warning=SPARSEINV_NO_ORT_DOWNLOAD is set: not fetching ONNX Runtime; it will \
                 be looked up at run time (ORT_DYLIB_PATH, Python onnxruntime, system library path)"
            );
            false
        } else {
            match fetch() {
                Ok(path) => {
                    println!(
                        "cargo:rustc-env=SPARSEINV_ORT_BUILD_DYLIB={}",
                        path.display()
                    );
                    true
                }
                Err(why) => {
                    println!(
                        "cargo:warning=could not fetch ONNX Runtime {ORT_VERSION} from PyPI ({why}); \
                         it will be looked up at run time (set ORT_DYLIB_PATH or `pip install \
                         onnxruntime=={ORT_VERSION}`)"
                    );
                    false
                }
            }
        };
        fetched || dylib_path_exists() || python_has_onnxruntime()
    };
    let require = flag("SPARSEINV_REQUIRE_ORT");
    if found || require {
        println!("cargo:rustc-cfg=sparseinv_ort");
    } else {
        println!(
            "cargo:warning=no ONNX Runtime found at build time: the tests that need it will be \
             reported as ignored (SPARSEINV_REQUIRE_ORT=1 makes them run and fail instead)"
        );
    }
    println!("cargo:found={}", u8::from(found || require));
}

/// `ORT_DYLIB_PATH` names an existing file.
fn dylib_path_exists() -> bool {
    std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| !p.is_empty() && Path::new(&p).is_file())
}

/// The Python interpreter has an `onnxruntime` package holding its shared library.
fn python_has_onnxruntime() -> bool {
    let python = std::env::var("SPARSEINV_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import importlib.util, os, sys\n\
                  s = importlib.util.find_spec('onnxruntime')\n\
                  d = s and s.submodule_search_locations and os.path.join(list(s.submodule_search_locations)[0], 'capi')\n\
                  sys.exit(0 if d and os.path.isdir(d) and any(n.startswith(('libonnxruntime.', 'onnxruntime.dll')) for n in os.listdir(d)) else 3)";
    Command::new(&python)
        .args(["-c", script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Download and unpack the wheel; return the path of the extracted shared library.
fn fetch() -> Result<PathBuf, String> {
    let host = std::env::var("HOST").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    if host != target {
        return Err(format!(
            "cross-compiling ({host} -> {target}): pip would fetch the host's wheel"
        ));
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let lib_prefix = match os.as_str() {
        "linux" => "libonnxruntime.so",
        "macos" => "libonnxruntime.",
        "windows" => "onnxruntime.dll",
        other => return Err(format!("no onnxruntime wheel for target OS `{other}`")),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let dest_dir = out.join(format!("onnxruntime-{ORT_VERSION}"));
    let marker = dest_dir.join("LIBRARY_PATH");
    if let Ok(p) = std::fs::read_to_string(&marker) {
        let p = PathBuf::from(p.trim());
        if p.is_file() {
            return Ok(p);
        }
    }
    let python = std::env::var("SPARSEINV_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let wheel_dir = out.join("wheel");
    std::fs::create_dir_all(&wheel_dir).map_err(|e| e.to_string())?;
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--timeout",
            "20",
            "--retries",
            "1",
            "-q",
            "-d",
        ])
        .arg(&wheel_dir)
        .arg(format!("onnxruntime=={ORT_VERSION}"))
        .status()
        .map_err(|e| format!("cannot run `{python} -m pip`: {e}"))?;
    if !status.success() {
        return Err(format!("`{python} -m pip download` exited with {status}"));
    }
    let wheel = std::fs::read_dir(&wheel_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("onnxruntime-{ORT_VERSION}")) && n.ends_with(".whl")
            })
        })
        .ok_or("pip reported success but no wheel was found")?;
    extract(&python, &wheel, &dest_dir, lib_prefix)?;
    let lib = std::fs::read_dir(&dest_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(lib_prefix))
        })
        .ok_or("the wheel holds no ONNX Runtime shared library")?;
    std::fs::write(&marker, lib.display().to_string()).map_err(|e| e.to_string())?;
    Ok(lib)
}

/// Extract `onnxruntime/capi/<lib_prefix>*` from the wheel into `dest` with Python's zipfile.
fn extract(python: &str, wheel: &Path, dest: &Path, lib_prefix: &str) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
    let script = r#"
import sys, zipfile, os
wheel, dest, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist()
             if n.startswith("onnxruntime/capi/") and os.path.basename(n).startswith(prefix)]
    if not names:
        sys.exit("no onnxruntime/capi/" + prefix + "* in " + wheel)
    for n in names:
        target = os.path.join(dest, os.path.basename(n))
        tmp = target + ".part"
        with z.open(n) as src, open(tmp, "wb") as dst:
            dst.write(src.read())
        os.replace(tmp, target)
"#;
    let status = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(wheel)
        .arg(dest)
        .arg(lib_prefix)
        .status()
        .map_err(|e| format!("cannot run `{python}` to unzip the wheel: {e}"))?;
    if !status.success() {
        return Err(format!("unzipping {} failed ({status})", wheel.display()));
    }
    Ok(())
}
