//! Writing 32-bit float images with a copied header and HISTORY cards, atomically.

use super::ffi::{c_path, fits_err, Raw, CFITSIO_LOCK};
use super::Header;
use crate::io::{atomic_write, IoError};
use fitsio::sys;
use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_long};
use std::path::Path;

/// What [`write_fits`] writes besides the pixels.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions<'a> {
    /// A header whose non-structural cards (WCS, observation metadata, ...) are copied.
    pub header: Option<&'a Header>,
    /// Extra cards, written after the copied ones (e.g. from [`Header::set_f64`]); a keyword
    /// set here replaces the copied card of the same name; structural keywords are ignored.
    pub extra: Option<&'a Header>,
    /// Text of `HISTORY` cards appended last (long texts continue over several cards).
    pub history: Vec<String>,
    /// Overwrite an existing output file.
    pub force: bool,
}

/// Write a 2-D image as a 32-bit float FITS primary HDU. See [`write_fits`].
pub fn write_fits_2d(
    path: impl AsRef<Path>,
    data: ArrayView2<'_, f32>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    let path = path.as_ref();
    write_fits(path, data.insert_axis(Axis(0)), opts)
}

/// Write `data` (shape `(planes, ny, nx)`; one plane gives a 2-D image with `NAXIS = 2`) as a
/// `BITPIX = -32` primary HDU with the header described by `opts`, atomically. NaN pixels are
/// written as NaN, FITS's undefined value for floating-point images.
///
/// Errors: the file exists and `!opts.force`; the path is the header's source file; the
/// directory is missing or unwritable; an empty array; any CFITSIO failure (the temporary
/// file is then removed).
pub fn write_fits(
    path: impl AsRef<Path>,
    data: ArrayView3<'_, f32>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    let pixels: Vec<f32> = data.iter().copied().collect(); // standard layout
    write_pixels(path.as_ref(), pixels, data.dim(), opts)
}

/// [`write_fits_2d`] of a double-precision image: the values are rounded to `f32` (in
/// parallel, straight into the buffer that is written).
pub fn write_fits_2d_f64(
    path: impl AsRef<Path>,
    data: ArrayView2<'_, f64>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    use rayon::prelude::*;
    let (ny, nx) = data.dim();
    let mut pixels = vec![0f32; ny * nx];
    pixels
        .par_chunks_mut(nx.max(1))
        .zip(data.axis_iter(Axis(0)).collect::<Vec<_>>())
        .for_each(|(out, row)| {
            out.iter_mut().zip(row).for_each(|(o, &v)| *o = v as f32);
        });
    write_pixels(path.as_ref(), pixels, (1, ny, nx), opts)
}

/// [`write_fits`] of the pixels in standard (row-major) order of shape `(nz, ny, nx)`.
fn write_pixels(
    path: &Path,
    mut pixels: Vec<f32>,
    (nz, ny, nx): (usize, usize, usize),
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    if let Some(src) = opts.header.and_then(|h| h.source()) {
        if crate::io::same_file(src, path) {
            return Err(IoError::Format {
                path: path.to_path_buf(),
                reason: "refusing to overwrite the input file".into(),
            });
        }
    }
    if nz == 0 || ny == 0 || nx == 0 {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot write an empty image of shape {:?}", (nz, ny, nx)),
        });
    }
    atomic_write(path, opts.force, |tmp| {
        let ctmp = c_path(tmp)?;
        let _guard = CFITSIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut status: c_int = 0;
        let mut raw = Raw {
            fptr: std::ptr::null_mut(),
        };
        let err = |what: &str, status: c_int| fits_err(path, what, status);
        unsafe {
            sys::ffcmsg();
            sys::ffdkinit(&mut raw.fptr, ctmp.as_ptr(), &mut status)
        };
        if status != 0 {
            raw.fptr = std::ptr::null_mut();
            return Err(err("cannot create the output file", status));
        }
        let mut naxes: Vec<c_long> = vec![nx as c_long, ny as c_long];
        if nz > 1 {
            naxes.push(nz as c_long);
        }
        unsafe {
            sys::ffcrim(
                raw.fptr,
                sys::FLOAT_IMG,
                naxes.len() as c_int,
                naxes.as_mut_ptr(),
                &mut status,
            )
        };
        // CFITSIO adds two COMMENT cards citing the FITS paper; drop them so that the output
        // header is the input's (which may carry them already) plus our HISTORY
        let mut nkeys: c_int = 0;
        let mut more: c_int = 0;
        unsafe { sys::ffghsp(raw.fptr, &mut nkeys, &mut more, &mut status) };
        let mut k = nkeys;
        while k >= 1 && status == 0 {
            let mut card = [0 as c_char; 81];
            unsafe { sys::ffgrec(raw.fptr, k, card.as_mut_ptr(), &mut status) };
            let text = unsafe { CStr::from_ptr(card.as_ptr()) }.to_string_lossy();
            if text.starts_with("COMMENT   FITS (Flexible Image Transport System)")
                || text.starts_with("COMMENT   and Astrophysics', volume 376")
            {
                unsafe { sys::ffdrec(raw.fptr, k, &mut status) };
            }
            k -= 1;
        }
        // a keyword set in `extra` replaces the copied card of the same name (no duplicates)
        let replaced: std::collections::HashSet<&str> = opts
            .extra
            .map(|e| {
                e.non_structural()
                    .map(Header::card_key)
                    .filter(|k| !matches!(*k, "" | "COMMENT" | "HISTORY"))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(h) = opts.header {
            for card in h.non_structural() {
                if replaced.contains(Header::card_key(card)) {
                    continue;
                }
                let c = CString::new(card.trim_end().replace('\0', " ")).unwrap_or_default();
                unsafe { sys::ffprec(raw.fptr, c.as_ptr(), &mut status) };
            }
        }
        if let Some(h) = opts.extra {
            for card in h.non_structural() {
                let c = CString::new(card.trim_end().replace('\0', " ")).unwrap_or_default();
                unsafe { sys::ffprec(raw.fptr, c.as_ptr(), &mut status) };
            }
        }
        for text in &opts.history {
            for line in text.lines() {
                let c = CString::new(line.replace('\0', " ")).unwrap_or_default();
                unsafe { sys::ffphis(raw.fptr, c.as_ptr(), &mut status) };
            }
        }
        if status != 0 {
            return Err(err("cannot write the header", status));
        }
        unsafe {
            sys::ffppre(
                raw.fptr,
                1,
                1,
                pixels.len() as sys::LONGLONG,
                pixels.as_mut_ptr(),
                &mut status,
            )
        };
        if status != 0 {
            return Err(err("cannot write the pixels", status));
        }
        let fptr = std::mem::replace(&mut raw.fptr, std::ptr::null_mut());
        unsafe { sys::ffclos(fptr, &mut status) };
        if status != 0 {
            return Err(err("cannot close the output file", status));
        }
        Ok(())
    })
}

/// Convert an `f64` image to the `f32` array that [`write_fits`] takes.
pub fn to_f32(a: ArrayView2<'_, f64>) -> Array2<f32> {
    a.mapv(|v| v as f32)
}
