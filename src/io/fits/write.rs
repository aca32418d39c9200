//! Writing 32-bit float images with a copied header and HISTORY cards, atomically.

use super::ffi::{fits_err, hdu_header_text, Raw, CFITSIO_LOCK};
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
    let data = data.as_standard_layout();
    let pixels = data.as_slice().expect("standard layout");
    write_pixels(path.as_ref(), Pixels::F32(pixels), data.dim(), opts)
}

/// [`write_fits_2d`] of a double-precision image: the values are rounded to `f32` as they
/// are written (in parallel blocks, no full-size copy).
pub fn write_fits_2d_f64(
    path: impl AsRef<Path>,
    data: ArrayView2<'_, f64>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    let (ny, nx) = data.dim();
    let data = data.as_standard_layout();
    let pixels = data.as_slice().expect("standard layout");
    write_pixels(path.as_ref(), Pixels::F64(pixels), (1, ny, nx), opts)
}

/// The pixels [`write_pixels`] writes, in standard (row-major) order.
#[derive(Clone, Copy)]
enum Pixels<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Pixels<'_> {
    fn len(&self) -> usize {
        match self {
            Pixels::F32(p) => p.len(),
            Pixels::F64(p) => p.len(),
        }
    }

    /// Pixels `at..at + out.len() / 4` as big-endian IEEE single precision into `out`
    /// (values of a double-precision image rounded to nearest), in parallel.
    fn encode(&self, at: usize, out: &mut [u8]) {
        use rayon::prelude::*;
        const PIECE: usize = 1 << 14;
        let n = out.len() / 4;
        let put = |o: &mut [u8], v: f32| o.copy_from_slice(&v.to_be_bytes());
        match *self {
            Pixels::F32(p) => out
                .par_chunks_mut(4 * PIECE)
                .zip(p[at..at + n].par_chunks(PIECE))
                .for_each(|(o, p)| o.chunks_exact_mut(4).zip(p).for_each(|(o, &v)| put(o, v))),
            Pixels::F64(p) => out
                .par_chunks_mut(4 * PIECE)
                .zip(p[at..at + n].par_chunks(PIECE))
                .for_each(|(o, p)| {
                    o.chunks_exact_mut(4)
                        .zip(p)
                        .for_each(|(o, &v)| put(o, v as f32))
                }),
        }
    }
}

/// Pixels per block that [`write_pixels`] encodes and writes (4 MB).
const WRITE_BLOCK: usize = 1 << 20;

/// [`write_fits`] of the pixels in standard (row-major) order of shape `(nz, ny, nx)`: the
/// header is made by CFITSIO (cards checked and formatted there) in memory; the file is that
/// header, the big-endian pixels and the zero fill to a multiple of 2880 bytes (FITS standard
/// 4.0, §3.3), written in blocks.
fn write_pixels(
    path: &Path,
    pixels: Pixels<'_>,
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
    debug_assert_eq!(pixels.len(), nz * ny * nx);
    let header = header_bytes(path, (nz, ny, nx), opts)?;
    atomic_write(path, opts.force, |tmp| {
        use std::io::Write;
        // errors name the output the user asked for (the temporary file is removed)
        let os = |e: std::io::Error| IoError::Os {
            path: path.to_path_buf(),
            source: e,
        };
        let mut file = std::fs::File::create(tmp).map_err(os)?;
        file.write_all(&header).map_err(os)?;
        let n = pixels.len();
        let mut buf = vec![0u8; 4 * WRITE_BLOCK.min(n)];
        let mut at = 0;
        while at < n {
            let m = WRITE_BLOCK.min(n - at);
            pixels.encode(at, &mut buf[..4 * m]);
            file.write_all(&buf[..4 * m]).map_err(os)?;
            at += m;
        }
        let fill = (2880 - (4 * n) % 2880) % 2880;
        file.write_all(&vec![0u8; fill]).map_err(os)?;
        Ok(())
    })
}

/// The header of a `BITPIX = -32` primary HDU of shape `(nz, ny, nx)` with the cards of
/// `opts`, as the bytes that start the file (80-character cards, `END`, blank fill to a
/// multiple of 2880 bytes), made by CFITSIO in a memory file.
fn header_bytes(
    path: &Path,
    (nz, ny, nx): (usize, usize, usize),
    opts: &WriteOptions<'_>,
) -> Result<Vec<u8>, IoError> {
    let _guard = CFITSIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut status: c_int = 0;
    let mut raw = Raw {
        fptr: std::ptr::null_mut(),
    };
    let err = |what: &str, status: c_int| fits_err(path, what, status);
    let mem = CString::new("mem://").expect("no NUL");
    unsafe {
        sys::ffcmsg();
        sys::ffinit(&mut raw.fptr, mem.as_ptr(), &mut status)
    };
    if status != 0 {
        raw.fptr = std::ptr::null_mut();
        return Err(err("cannot make the output header", status));
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
    let mut bytes =
        hdu_header_text(raw.fptr).map_err(|status| err("cannot write the header", status))?;
    // the memory file is dropped without its data unit: an empty image closes without one
    unsafe {
        sys::ffukyj(
            raw.fptr,
            c"NAXIS".as_ptr(),
            0,
            std::ptr::null(),
            &mut status,
        )
    };
    let fptr = std::mem::replace(&mut raw.fptr, std::ptr::null_mut());
    unsafe { sys::ffclos(fptr, &mut status) };
    if status != 0 {
        return Err(err("cannot write the header", status));
    }
    // cards of 80 characters ending in END (ffhdr2str's), blank-filled to 2880 bytes
    if bytes.len() % 80 != 0 || !bytes.ends_with(&[b' '; 77]) || bytes.len() < 80 {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "CFITSIO returned a malformed header".into(),
        });
    }
    let fill = (2880 - bytes.len() % 2880) % 2880;
    bytes.resize(bytes.len() + fill, b' ');
    Ok(bytes)
}

/// Convert an `f64` image to the `f32` array that [`write_fits`] takes.
pub fn to_f32(a: ArrayView2<'_, f64>) -> Array2<f32> {
    a.mapv(|v| v as f32)
}
