//! Input and output: safe (atomic, non-overwriting) file writing, FITS images (feature `fits`),
//! PNG/TIFF images and previews with astronomical stretches, numpy `.npy` interchange.

#[cfg(feature = "fits")]
pub mod fits;
pub mod image;
pub mod npy;
pub mod wcs;

use std::path::{Path, PathBuf};

/// Errors of the I/O layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The output exists and overwriting was not allowed.
    #[error("{0} already exists (pass --force to overwrite)")]
    Exists(PathBuf),
    /// An operating-system error on a named file.
    #[error("{path}: {source}")]
    Os {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file could be opened but its content is not what was expected.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Whether `a` and `b` name the same existing file (both canonicalise to one path); `false`
/// when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Write a file atomically: `write` fills a temporary file in the destination's directory,
/// which is then renamed over `path`. On any error the temporary file is removed and `path`
/// is untouched, so no partial output is ever left. Unless `force`, an existing `path` is an
/// [`IoError::Exists`] error and nothing is written.
pub fn atomic_write<F>(path: impl AsRef<Path>, force: bool, write: F) -> Result<(), IoError>
where
    F: FnOnce(&Path) -> Result<(), IoError>,
{
    let path = path.as_ref();
    if path.exists() && !force {
        return Err(IoError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(IoError::Os {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("output directory {} does not exist", dir.display()),
            ),
        });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let res = write(&tmp).and_then(|_| {
        std::fs::rename(&tmp, path).map_err(|e| IoError::Os {
            path: path.to_path_buf(),
            source: e,
        })
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_overwrite_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        atomic_write(&p, false, |t| {
            std::fs::write(t, b"one").map_err(|e| IoError::Os {
                path: t.into(),
                source: e,
            })
        })
        .unwrap();
        assert!(matches!(
            atomic_write(&p, false, |_| Ok(())),
            Err(IoError::Exists(_))
        ));
        // a failing writer leaves the old content and no temp file
        let r = atomic_write(&p, true, |t| {
            std::fs::write(t, b"partial").unwrap();
            Err(IoError::Format {
                path: t.into(),
                reason: "boom".into(),
            })
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
