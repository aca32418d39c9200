//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! ONNX Runtime is loaded at run time (ort's `load-dynamic`), never downloaded from a
//! non-registry host. The library is looked for, in order:
//!
//! 1. `ORT_DYLIB_PATH` — the path of a `libonnxruntime` shared library, if set (when set, it
//!    is the only candidate: a wrong path is an error, not silently skipped);
//! 2. the copy that this crate's build script fetched from the PyPI wheel
//!    `onnxruntime==1.32.0` into its `OUT_DIR` (absent when the build was offline or
//!    `SPARSEINV_NO_ORT_DOWNLOAD` was set);
//! 3. an installed Python `onnxruntime` package: `$SPARSEINV_PYTHON` (default `python3`) is
//!    asked for its `onnxruntime/capi` directory;
//! 4. the system library path (`libonnxruntime.so` through the dynamic loader:
//!    `LD_LIBRARY_PATH`, `ldconfig`).
//!
//! ONNX Runtime ≥ 1.31 is required (ort 2.0.0-rc.15 with API level 31). The first successful
//! load wins for the whole process (the library cannot be unloaded); the result, success or
//! the list of failures, is cached.

use crate::error::{Error, Result};
use ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A loaded ONNX Runtime: the environment sessions are created in, and where it came from.
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
    path: PathBuf,
    source: &'static str,
    version: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("path", &self.path)
            .field("source", &self.source)
            .field("version", &self.version)
            .finish()
    }
}

impl Runtime {
    /// The ONNX Runtime environment (for `Session::builder`).
    pub fn environment(&self) -> &Environment {
        &self.env
    }
    /// The shared library that was loaded (as given to the loader: a path, or a bare name for
    /// the system search path).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Which route found it: `"ORT_DYLIB_PATH"`, `"build script (PyPI wheel)"`,
    /// `"python onnxruntime"` or `"system library path"`.
    pub fn source(&self) -> &'static str {
        self.source
    }
    /// The runtime's version, e.g. `"1.32.0"`, read from a versioned library file name;
    /// `">=1.31"` when the name carries none (the loader has checked the minimum).
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Whether the loaded runtime was built with the CUDA execution provider (the PyPI
    /// `onnxruntime` wheel is CPU only; `onnxruntime-gpu` has CUDA).
    pub fn has_cuda(&self) -> bool {
        use ort::ep::ExecutionProvider;
        ort::ep::CUDA::is_available().unwrap_or(false)
    }
}

static RUNTIME: OnceLock<std::result::Result<Runtime, Vec<String>>> = OnceLock::new();

/// The process-wide ONNX Runtime, loaded on first use from the candidates listed in the
/// [module documentation](self).
///
/// Errors with [`Error::RuntimeNotFound`], which lists every candidate and why it failed and
/// says how to fix it. Never panics.
pub fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(load)
        .as_ref()
        .map_err(|tried| Error::RuntimeNotFound {
            tried: tried.clone(),
        })
}

/// For code outside this workspace's tests that wants to skip work without ONNX Runtime:
/// `true` when [`runtime`] loads. Otherwise prints `SKIPPED <test>: no ONNX Runtime: <why>` to
/// stderr and returns `false` — or panics when the environment sets `SPARSEINV_REQUIRE_ORT=1`.
///
/// A test that returns early this way is counted as *passed*. The workspace's own tests do
/// not use it: they carry `#[cfg_attr(not(sparseinv_ort), ignore = "…")]`, a cfg the build
/// script sets when it found a runtime (see `models/build.rs`), so that they are reported as
/// ignored instead.
///
/// ```
/// fn my_onnx_test() {
///     if !sparseinv_models::runtime_or_skip("my_onnx_test") {
///         return;
///     }
///     // … run a model …
/// }
/// ```
pub fn runtime_or_skip(test: &str) -> bool {
    match runtime() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var_os("SPARSEINV_REQUIRE_ORT").is_some_and(|v| v == "1") {
                panic!(
                    "{test}: ONNX Runtime required (SPARSEINV_REQUIRE_ORT=1) but not found: {e}"
                );
            }
            eprintln!("SKIPPED {test}: no ONNX Runtime: {e}");
            false
        }
    }
}

/// Candidate libraries in search order: `(source, path)`.
fn candidates(tried: &mut Vec<String>) -> Vec<(&'static str, PathBuf)> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![("ORT_DYLIB_PATH", PathBuf::from(p))];
    }
    let mut out = Vec::new();
    match option_env!("SPARSEINV_ORT_BUILD_DYLIB") {
        Some(p) if Path::new(p).is_file() => {
            out.push(("build script (PyPI wheel)", PathBuf::from(p)))
        }
        Some(p) => tried.push(format!(
            "build script copy {p}: file no longer exists (rebuild sparseinv-models)"
        )),
        None => tried.push(
            "build script copy: not fetched at build time (offline, or SPARSEINV_NO_ORT_DOWNLOAD set)"
                .to_string(),
        ),
    }
    match python_capi_dir() {
        Ok(dir) => match find_lib_in(&dir) {
            Some(p) => out.push(("python onnxruntime", p)),
            None => tried.push(format!(
                "python onnxruntime: no libonnxruntime shared library in {}",
                dir.display()
            )),
        },
        Err(why) => tried.push(format!("python onnxruntime: {why}")),
    }
    out.push(("system library path", PathBuf::from(system_lib_name())));
    out
}

fn system_lib_name() -> &'static str {
    if cfg!(target_os = "windows") {
        "onnxruntime.dll"
    } else if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else {
        "libonnxruntime.so"
    }
}

/// Ask Python where the installed `onnxruntime` package keeps its shared library.
fn python_capi_dir() -> std::result::Result<PathBuf, String> {
    let python = std::env::var("SPARSEINV_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.util, os, sys\n\
             s = importlib.util.find_spec('onnxruntime')\n\
             sys.exit(2) if s is None or not s.submodule_search_locations else \
             print(os.path.join(list(s.submodule_search_locations)[0], 'capi'))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{python}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{python}` has no onnxruntime package"));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(PathBuf::from(dir))
}

/// The first `libonnxruntime.so*` / `.dylib` / `onnxruntime.dll` in `dir` (highest name first,
/// so the versioned file wins over a dangling symlink name).
fn find_lib_in(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    (n.starts_with("libonnxruntime.so")
                        || (n.starts_with("libonnxruntime.") && n.ends_with(".dylib"))
                        || n == "onnxruntime.dll")
                        && !n.contains("providers")
                })
        })
        .collect();
    libs.sort();
    libs.pop()
}

fn load() -> std::result::Result<Runtime, Vec<String>> {
    let mut tried = Vec::new();
    for (source, path) in candidates(&mut tried) {
        if source != "system library path" && !path.is_file() {
            tried.push(format!("{source} {}: no such file", path.display()));
            continue;
        }
        let builder = match ort::init_from(&path) {
            Ok(b) => b,
            Err(e) => {
                tried.push(format!("{source}: {e}"));
                continue;
            }
        };
        match builder.with_name("sparseinv").build() {
            Ok(env) => {
                // ONNX Runtime's build info carries no version; the loader has checked
                // it is >= 1.31. Versioned file names (libonnxruntime.so.1.32.0,
                // libonnxruntime.1.32.0.dylib) say which one.
                let version = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("libonnxruntime."))
                    .map(|v| v.trim_start_matches("so.").trim_end_matches(".dylib"))
                    .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
                    .map(str::to_string);
                return Ok(Runtime {
                    env,
                    path,
                    source,
                    version: version.unwrap_or_else(|| ">=1.31".to_string()),
                });
            }
            Err(e) => tried.push(format!(
                "{source} {}: loaded but the environment failed: {e}",
                path.display()
            )),
        }
    }
    Err(tried)
}
