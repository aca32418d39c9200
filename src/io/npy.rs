//! numpy `.npy` interchange (via `ndarray-npy`): real `f64` or complex `complex128` arrays of
//! any dimension, read with clear errors and written atomically.

use super::{atomic_write, IoError};
use ndarray::ArrayD;
use num_complex::Complex64;
use std::path::Path;

/// An array read from a `.npy` file: real or complex.
#[derive(Debug, Clone)]
pub enum NpyArray {
    /// `float64` (also `float32`, widened).
    Real(ArrayD<f64>),
    /// `complex128`.
    Complex(ArrayD<Complex64>),
}

impl NpyArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::Real(a) => a.shape(),
            NpyArray::Complex(a) => a.shape(),
        }
    }
    /// `true` for complex data.
    pub fn is_complex(&self) -> bool {
        matches!(self, NpyArray::Complex(_))
    }
    /// The data as complex (real data get a zero imaginary part).
    pub fn into_complex(self) -> ArrayD<Complex64> {
        match self {
            NpyArray::Real(a) => a.mapv(|v| Complex64::new(v, 0.0)),
            NpyArray::Complex(a) => a,
        }
    }
}

fn fmt_err(path: &Path, reason: String) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        reason,
    }
}

/// Read a `.npy` file holding `float64`, `float32` or `complex128` data of any shape.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray, IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| IoError::Os {
        path: path.to_path_buf(),
        source: e,
    })?;
    use ndarray_npy::ReadNpyExt;
    if let Ok(a) = ArrayD::<f64>::read_npy(&bytes[..]) {
        return Ok(NpyArray::Real(a));
    }
    if let Ok(a) = ArrayD::<Complex64>::read_npy(&bytes[..]) {
        return Ok(NpyArray::Complex(a));
    }
    match ArrayD::<f32>::read_npy(&bytes[..]) {
        Ok(a) => Ok(NpyArray::Real(a.mapv(f64::from))),
        Err(e) => Err(fmt_err(
            path,
            format!("not a readable .npy of float64, float32 or complex128 ({e})"),
        )),
    }
}

/// Write a real or complex array as `.npy`, atomically, refusing to overwrite unless `force`.
pub fn write_npy(path: impl AsRef<Path>, a: &NpyArray, force: bool) -> Result<(), IoError> {
    let path = path.as_ref();
    atomic_write(path, force, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| IoError::Os {
            path: tmp.to_path_buf(),
            source: e,
        })?;
        use ndarray_npy::WriteNpyExt;
        let r = match a {
            NpyArray::Real(a) => a.as_standard_layout().write_npy(f),
            NpyArray::Complex(a) => a.as_standard_layout().write_npy(f),
        };
        r.map_err(|e| fmt_err(path, format!("cannot write .npy: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_real_and_complex_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.npy");
        let a = ndarray::array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        write_npy(&p, &NpyArray::Real(a.clone()), false).unwrap();
        match read_npy(&p).unwrap() {
            NpyArray::Real(b) => assert_eq!(a, b),
            _ => panic!("expected real"),
        }
        let c = ndarray::array![Complex64::new(1.0, -1.0)].into_dyn();
        let pc = d.path().join("c.npy");
        write_npy(&pc, &NpyArray::Complex(c.clone()), false).unwrap();
        assert_eq!(read_npy(&pc).unwrap().into_complex(), c);
        let bad = d.path().join("bad.npy");
        std::fs::write(&bad, b"not numpy").unwrap();
        let e = read_npy(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.npy"), "{e}");
        assert!(read_npy(d.path().join("missing.npy")).is_err());
    }
}
