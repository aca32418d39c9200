//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! ONNX Runtime is loaded at run time (ort's `load-dynamic`), never downloaded from a
//! non-registry host. The library is looked for, in order:
//!
//! 1. `ORT_DYLIB_PATH` — the path of a `libonnxruntime` shared library, if set (when set, it
//!    is the only candidate: a wrong path is an error, not silently skipped);
//! 2. the copy that this crate's build script fetched from the PyPI wheel
//!    `onnxruntime==1.32.0` into its `OUT_DIR` (absent when the build was offline or
//!    `SPARSEINV_NO_ORT_DOWNLOAD` was set, and gone after `cargo install`, which builds in a
//!    temporary directory, or when the binary is copied to another machine;
//!    `SPARSEINV_ORT_NO_BUILD_COPY=1` skips it, to check the other routes);
//! 3. the per-user cache that [`install`] (`sparseinv runtime install`) fills from the PyPI
//!    wheel with a verified checksum: `<cache>/onnxruntime-1.32.0/`, `<cache>` being
//!    `$SPARSEINV_CACHE_DIR`, else the platform cache directory + `sparseinv`
//!    (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS,
//!    `%LOCALAPPDATA%` on Windows), see [`cache_dir`];
//! 4. an installed Python `onnxruntime` package: `$SPARSEINV_PYTHON` (default `python3`) is
//!    asked for its `onnxruntime/capi` directory (the Python package `sparseinv` depends on
//!    `onnxruntime` and points `ORT_DYLIB_PATH` at its library);
//! 5. the system library path (`libonnxruntime.so` through the dynamic loader:
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
    /// `"user cache"`, `"python onnxruntime"` or `"system library path"`.
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
    let skip_build =
        std::env::var_os("SPARSEINV_ORT_NO_BUILD_COPY").is_some_and(|v| !v.is_empty() && v != "0");
    match option_env!("SPARSEINV_ORT_BUILD_DYLIB") {
        _ if skip_build => {
            tried.push("build script copy: skipped (SPARSEINV_ORT_NO_BUILD_COPY)".to_string())
        }
        Some(p) if Path::new(p).is_file() => {
            out.push(("build script (PyPI wheel)", PathBuf::from(p)))
        }
        Some(p) => tried.push(format!(
            "build script copy {p}: file no longer exists (e.g. after `cargo install` or a \
             copied binary)"
        )),
        None => tried.push(
            "build script copy: not fetched at build time (offline, or SPARSEINV_NO_ORT_DOWNLOAD set)"
                .to_string(),
        ),
    }
    match cached_library() {
        Some(p) if p.is_file() => out.push(("user cache", p)),
        Some(p) => tried.push(format!(
            "user cache {}: not installed (run `sparseinv runtime install`)",
            p.display()
        )),
        None => tried.push("user cache: no cache directory (set SPARSEINV_CACHE_DIR)".into()),
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
    let python = python();
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

/// The ONNX Runtime release this crate pins (`ort` 2.0.0-rc.15 needs ≥ 1.31).
pub const ORT_VERSION: &str = "1.32.0";

/// SHA-256 of the ONNX Runtime library inside the PyPI wheels `onnxruntime==1.32.0`, per
/// `(os, arch)`: the file is the same in every CPython wheel of a platform (checked for the
/// cp311 and cp312 manylinux_2_28 x86-64 wheels). Platforms without an entry can only be
/// installed with verification off.
const PINNED_SHA256: &[(&str, &str, &str)] = &[(
    "linux",
    "x86_64",
    "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
)];

/// File name of the runtime library inside the wheel's `onnxruntime/capi/` on this platform.
pub fn library_file_name() -> String {
    if cfg!(target_os = "windows") {
        "onnxruntime.dll".into()
    } else if cfg!(target_os = "macos") {
        format!("libonnxruntime.{ORT_VERSION}.dylib")
    } else {
        format!("libonnxruntime.so.{ORT_VERSION}")
    }
}

/// The per-user cache directory of sparseinv: `$SPARSEINV_CACHE_DIR` if set, else
/// `$XDG_CACHE_HOME/sparseinv` or `~/.cache/sparseinv` (Linux and other Unix),
/// `~/Library/Caches/sparseinv` (macOS), `%LOCALAPPDATA%\sparseinv` (Windows); `None` when no
/// home directory is known.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("SPARSEINV_CACHE_DIR") {
        return Some(d);
    }
    let base = if cfg!(target_os = "windows") {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("sparseinv"))
}

/// Where [`install`] puts the runtime library: `<cache_dir>/onnxruntime-1.32.0/<library>`.
pub fn cached_library() -> Option<PathBuf> {
    cache_dir().map(|d| {
        d.join(format!("onnxruntime-{ORT_VERSION}"))
            .join(library_file_name())
    })
}

/// Every place [`runtime`] looks, in order, with whether a file is there: `(source, path,
/// exists)` (the system library path is a bare name, reported as not existing).
pub fn candidates_report() -> Vec<(&'static str, PathBuf, bool)> {
    let mut tried = Vec::new();
    candidates(&mut tried)
        .into_iter()
        .map(|(s, p)| {
            let e = s != "system library path" && p.is_file();
            (s, p, e)
        })
        .collect()
}

/// The Python interpreter asked about `onnxruntime`: `$SPARSEINV_PYTHON`, default `python3`.
fn python() -> String {
    std::env::var("SPARSEINV_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn run_python(args: &[&std::ffi::OsStr]) -> std::result::Result<String, String> {
    let py = python();
    let out = std::process::Command::new(&py)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{py}` (set SPARSEINV_PYTHON): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{py}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Install the ONNX Runtime library into the per-user cache ([`cached_library`]), where
/// [`runtime`] finds it whatever became of the build directory.
///
/// `from`: `None` fetches the PyPI wheel `onnxruntime==1.32.0` with
/// `python3 -m pip download --no-deps --only-binary=:all:` (the package registry's own client;
/// `$SPARSEINV_PYTHON` picks the interpreter); a `.whl` file is used as is; any other file is
/// taken as the library itself. The library's SHA-256 is checked against the pinned value of
/// this platform (linux x86-64); `verify = false` skips the check (for platforms without a
/// pinned value — say so to the user). The file is copied under a temporary name and renamed
/// into place, so a failed install leaves no partial library. Returns the installed path.
///
/// Errors ([`Error::Install`]) say what failed and how to fix it: no Python or pip, no
/// network, a checksum mismatch (the file is then not installed), an unwritable cache.
pub fn install(from: Option<&Path>, verify: bool) -> Result<PathBuf> {
    let fail = |m: String| Error::Install(m);
    let dest = cached_library()
        .ok_or_else(|| fail("no cache directory: set SPARSEINV_CACHE_DIR (or HOME)".to_string()))?;
    let dir = dest
        .parent()
        .expect("cache path has a parent")
        .to_path_buf();
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let work = dir.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .map_err(|e| fail(format!("cannot create {}: {e}", work.display())))?;
    let result = (|| -> Result<PathBuf> {
        let wheel_or_lib: PathBuf = match from {
            Some(p) => p.to_path_buf(),
            None => {
                run_python(&[
                    "-m".as_ref(),
                    "pip".as_ref(),
                    "download".as_ref(),
                    "--quiet".as_ref(),
                    "--no-deps".as_ref(),
                    "--only-binary=:all:".as_ref(),
                    format!("onnxruntime=={ORT_VERSION}").as_ref(),
                    "-d".as_ref(),
                    work.as_os_str(),
                ])
                .map_err(|e| {
                    fail(format!(
                        "downloading onnxruntime=={ORT_VERSION} from PyPI: {e}"
                    ))
                })?;
                std::fs::read_dir(&work)
                    .map_err(|e| fail(e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.extension().is_some_and(|x| x == "whl"))
                    .ok_or_else(|| fail("pip downloaded no wheel".into()))?
            }
        };
        if !wheel_or_lib.is_file() {
            return Err(fail(format!("{} does not exist", wheel_or_lib.display())));
        }
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            library_file_name(),
            std::process::id()
        ));
        // extract (from a wheel) or copy to `tmp`, and hash it, in one Python call
        let script = "import hashlib, shutil, sys, zipfile\n\
             src, name, dst = sys.argv[1], sys.argv[2], sys.argv[3]\n\
             if src.endswith('.whl'):\n\
             \x20   z = zipfile.ZipFile(src)\n\
             \x20   m = [n for n in z.namelist() if n.endswith('/capi/' + name)]\n\
             \x20   if not m: sys.exit('no onnxruntime/capi/' + name + ' in ' + src)\n\
             \x20   open(dst, 'wb').write(z.read(m[0]))\n\
             else:\n\
             \x20   shutil.copyfile(src, dst)\n\
             print(hashlib.sha256(open(dst, 'rb').read()).hexdigest())";
        let digest = run_python(&[
            "-c".as_ref(),
            script.as_ref(),
            wheel_or_lib.as_os_str(),
            library_file_name().as_ref(),
            tmp.as_os_str(),
        ])
        .map_err(|e| fail(format!("extracting the library: {e}")))?;
        let pinned = PINNED_SHA256
            .iter()
            .find(|(os, arch, _)| *os == std::env::consts::OS && *arch == std::env::consts::ARCH)
            .map(|t| t.2);
        if verify {
            match pinned {
                Some(want) if want == digest => {}
                Some(want) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(fail(format!(
                        "checksum mismatch for {}: SHA-256 {digest}, expected {want}; not installed",
                        wheel_or_lib.display()
                    )));
                }
                None => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(fail(format!(
                        "no pinned checksum of ONNX Runtime {ORT_VERSION} for {}-{}: install \
                         without verification (`--no-verify`) if you trust the source, or set \
                         ORT_DYLIB_PATH",
                        std::env::consts::OS,
                        std::env::consts::ARCH
                    )));
                }
            }
        }
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(format!("cannot write {}: {e}", dest.display()))
        })?;
        Ok(dest.clone())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}
