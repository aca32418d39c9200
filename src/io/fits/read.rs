//! Reading image HDUs.

use super::ffi::{c_path, fits_err, hdu_kind, Raw, CFITSIO_LOCK};
use super::Header;
use crate::io::IoError;
use fitsio::sys;
use ndarray::{Array3, ArrayView2, Axis};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};

/// An image read from a FITS HDU.
#[derive(Debug, Clone)]
pub struct FitsImage {
    /// Physical pixel values (`BZERO + BSCALE * stored`), shape `(planes, NAXIS2, NAXIS1)`;
    /// `planes` is 1 for a 2-D image. Undefined pixels are NaN.
    pub data: Array3<f64>,
    /// `true` where the pixel is defined (not `BLANK`, not NaN).
    pub valid: Array3<bool>,
    /// The HDU's header (for a tile-compressed HDU: the header of the uncompressed image).
    pub header: Header,
    /// The stored `BITPIX` of the image (for compressed images, the uncompressed one).
    pub bitpix: i32,
    /// The file it came from.
    pub path: PathBuf,
    /// The 0-based HDU number it came from.
    pub hdu: usize,
}

impl FitsImage {
    /// Number of planes (1 for a 2-D image, `NAXIS3` for a cube).
    pub fn n_planes(&self) -> usize {
        self.data.len_of(Axis(0))
    }

    /// One plane of the image, shape `(NAXIS2, NAXIS1)`. Panics if `i >= n_planes()`.
    pub fn plane(&self, i: usize) -> ArrayView2<'_, f64> {
        self.data.index_axis(Axis(0), i)
    }

    /// The validity mask of one plane.
    pub fn plane_valid(&self, i: usize) -> ArrayView2<'_, bool> {
        self.valid.index_axis(Axis(0), i)
    }

    /// The image as a 2-D array, or an error naming the file if it is a cube.
    pub fn image2d(&self) -> Result<ArrayView2<'_, f64>, IoError> {
        if self.n_planes() != 1 {
            return Err(IoError::Format {
                path: self.path.clone(),
                reason: format!(
                    "HDU {} is a 3-D cube with {} planes; a 2-D image is needed (process the \
                     planes one by one)",
                    self.hdu,
                    self.n_planes()
                ),
            });
        }
        Ok(self.plane(0))
    }

    /// Number of undefined (masked) pixels.
    pub fn n_masked(&self) -> usize {
        self.valid.iter().filter(|v| !**v).count()
    }
}

/// Split `file.fits[N]` into the path and the HDU number. A name without a trailing `[N]`,
/// or one that exists on disk as written, is returned unchanged with `None`.
pub fn parse_spec(spec: &str) -> (PathBuf, Option<usize>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    if let Some(body) = spec.strip_suffix(']') {
        if let Some(open) = body.rfind('[') {
            if let Ok(n) = body[open + 1..].trim().parse::<usize>() {
                return (PathBuf::from(&body[..open]), Some(n));
            }
        }
    }
    (PathBuf::from(spec), None)
}

/// Read an image HDU of a FITS file (see the module documentation). `hdu` is 0-based;
/// `None` picks the first HDU that holds image data.
///
/// Errors (all [`IoError`], naming the file): missing or unreadable file, not a FITS file,
/// truncated or corrupt data, an HDU number past the end, a table HDU, an HDU without data,
/// an image with more than 3 non-degenerate axes.
pub fn read_fits(path: impl AsRef<Path>, hdu: Option<usize>) -> Result<FitsImage, IoError> {
    let path = path.as_ref();
    if let Err(e) = std::fs::metadata(path) {
        return Err(IoError::Os {
            path: path.to_path_buf(),
            source: e,
        });
    }
    let cpath = c_path(path)?;
    let _guard = CFITSIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut status: c_int = 0;
    let mut raw = Raw {
        fptr: std::ptr::null_mut(),
    };
    // SAFETY: valid C string, out-pointer to a null fitsfile pointer.
    unsafe {
        sys::ffcmsg();
        sys::ffdkopn(
            &mut raw.fptr,
            cpath.as_ptr(),
            sys::READONLY as c_int,
            &mut status,
        )
    };
    if status != 0 {
        raw.fptr = std::ptr::null_mut();
        return Err(fits_err(path, "cannot open as FITS", status));
    }
    let mut nhdu: c_int = 0;
    unsafe { sys::ffthdu(raw.fptr, &mut nhdu, &mut status) };
    if status != 0 {
        return Err(fits_err(path, "cannot count HDUs", status));
    }
    let nhdu = nhdu.max(0) as usize;

    // Move to an HDU and return (type, naxes) for it.
    let goto = |raw: &Raw, k: usize| -> Result<(c_int, Vec<i64>), IoError> {
        let mut status = 0;
        let mut t: c_int = 0;
        unsafe { sys::ffmahd(raw.fptr, (k + 1) as c_int, &mut t, &mut status) };
        if status != 0 {
            return Err(fits_err(path, &format!("cannot read HDU {k}"), status));
        }
        // a tile-compressed image is a binary table on disk but an image to CFITSIO
        unsafe { sys::ffghdt(raw.fptr, &mut t, &mut status) };
        if t as u32 != sys::IMAGE_HDU {
            return Ok((t, vec![]));
        }
        let mut naxis: c_int = 0;
        unsafe { sys::ffgidm(raw.fptr, &mut naxis, &mut status) };
        let mut naxes = vec![0 as sys::LONGLONG; naxis.max(0) as usize];
        if naxis > 0 {
            unsafe { sys::ffgiszll(raw.fptr, naxis, naxes.as_mut_ptr(), &mut status) };
        }
        if status != 0 {
            return Err(fits_err(
                path,
                &format!("bad image header in HDU {k}"),
                status,
            ));
        }
        Ok((t, naxes.into_iter().collect()))
    };

    let (k, naxes) = match hdu {
        Some(k) => {
            if k >= nhdu {
                return Err(IoError::Format {
                    path: path.to_path_buf(),
                    reason: format!(
                        "HDU {k} does not exist (the file has {nhdu} HDUs, 0 to {})",
                        nhdu.saturating_sub(1)
                    ),
                });
            }
            let (t, naxes) = goto(&raw, k)?;
            if t as u32 != sys::IMAGE_HDU {
                return Err(IoError::Format {
                    path: path.to_path_buf(),
                    reason: format!("HDU {k} is {}, not an image", hdu_kind(t)),
                });
            }
            if naxes.is_empty() || naxes.contains(&0) {
                return Err(IoError::Format {
                    path: path.to_path_buf(),
                    reason: format!("HDU {k} holds no image data (NAXIS = {})", naxes.len()),
                });
            }
            (k, naxes)
        }
        None => {
            let mut found = None;
            let mut kinds = Vec::new();
            for k in 0..nhdu {
                let (t, naxes) = goto(&raw, k)?;
                if t as u32 == sys::IMAGE_HDU && !naxes.is_empty() && naxes.iter().all(|&n| n > 0) {
                    found = Some((k, naxes));
                    break;
                }
                kinds.push(if t as u32 == sys::IMAGE_HDU {
                    "an empty image"
                } else {
                    hdu_kind(t)
                });
            }
            found.ok_or_else(|| IoError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "no HDU holds image data (HDUs: {})",
                    kinds
                        .iter()
                        .enumerate()
                        .map(|(i, s)| format!("{i}: {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?
        }
    };

    // Shape: (NAXIS1, NAXIS2, NAXIS3, ...); extra axes of length 1 are dropped.
    let (nx, ny) = (
        naxes[0] as usize,
        if naxes.len() > 1 {
            naxes[1] as usize
        } else {
            1
        },
    );
    let nz = if naxes.len() > 2 {
        naxes[2] as usize
    } else {
        1
    };
    if naxes.len() > 3 && naxes[3..].iter().any(|&n| n != 1) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "HDU {k} has {} axes {:?}; only 2-D images and 3-D cubes are supported",
                naxes.len(),
                naxes
            ),
        });
    }
    let n = nx
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nz))
        .filter(|&v| v <= (1usize << 34))
        .ok_or_else(|| IoError::Format {
            path: path.to_path_buf(),
            reason: format!("HDU {k}: image of {naxes:?} pixels is too large"),
        })?;

    let mut bitpix: c_int = 0;
    unsafe { sys::ffgidt(raw.fptr, &mut bitpix, &mut status) };

    // Header (the uncompressed image's header for a tile-compressed HDU).
    let mut hptr: *mut c_char = std::ptr::null_mut();
    let mut nkeys: c_int = 0;
    unsafe {
        sys::ffcnvthdr2str(
            raw.fptr,
            0,
            std::ptr::null_mut(),
            0,
            &mut hptr,
            &mut nkeys,
            &mut status,
        )
    };
    if status != 0 {
        return Err(fits_err(
            path,
            &format!("cannot read the header of HDU {k}"),
            status,
        ));
    }
    let text = unsafe { CStr::from_ptr(hptr) }
        .to_string_lossy()
        .into_owned();
    let mut fstatus = 0;
    unsafe { sys::fffree(hptr as *mut std::ffi::c_void, &mut fstatus) };
    let cards: Vec<String> = text
        .as_bytes()
        .chunks(80)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let mut header = Header::from_cards(cards);
    header.source = Some(path.to_path_buf());

    let pixels_err = |status: c_int| {
        fits_err(
            path,
            &format!("cannot read the pixels of HDU {k} (truncated or corrupt file?)"),
            status,
        )
    };
    // Single-precision pixels stored unscaled and uncompressed (the common case of reduced
    // frames) are read in their own type — no per-pixel conversion and null flags in CFITSIO;
    // NaN, the only null of a float image, passes through — and widened in parallel. (Not
    // tile-compressed images: CFITSIO restores their nulls only with null checking on.)
    let unscaled = header.get_f64("BSCALE").is_none_or(|v| v == 1.0)
        && header.get_f64("BZERO").is_none_or(|v| v == 0.0);
    let compressed = unsafe { sys::fits_is_compressed_image(raw.fptr, &mut status) } != 0;
    let mut anynul: c_int = 0;
    let (data, valid) = if bitpix == sys::FLOAT_IMG as c_int && unscaled && !compressed {
        let mut raw32 = vec![0f32; n];
        unsafe {
            sys::ffgpve(
                raw.fptr,
                1,
                1,
                n as sys::LONGLONG,
                0.0,
                raw32.as_mut_ptr(),
                &mut anynul,
                &mut status,
            )
        };
        if status != 0 {
            return Err(pixels_err(status));
        }
        use rayon::prelude::*;
        let (mut data, mut valid) = (vec![0f64; n], vec![false; n]);
        data.par_iter_mut()
            .zip(valid.par_iter_mut())
            .zip(raw32.par_iter())
            .for_each(|((d, ok), &v)| {
                *ok = v.is_finite();
                *d = if *ok { v as f64 } else { f64::NAN };
            });
        (data, valid)
    } else {
        let mut data = vec![0f64; n];
        let mut nul = vec![0 as c_char; n];
        unsafe {
            sys::ffgpfd(
                raw.fptr,
                1,
                1,
                n as sys::LONGLONG,
                data.as_mut_ptr(),
                nul.as_mut_ptr(),
                &mut anynul,
                &mut status,
            )
        };
        if status != 0 {
            return Err(pixels_err(status));
        }
        let mut valid = Vec::with_capacity(n);
        for (v, &f) in data.iter_mut().zip(&nul) {
            let ok = f == 0 && v.is_finite();
            if !ok {
                *v = f64::NAN;
            }
            valid.push(ok);
        }
        (data, valid)
    };
    let shape = (nz, ny, nx);
    let data = Array3::from_shape_vec(shape, data).expect("shape matches length");
    let valid = Array3::from_shape_vec(shape, valid).expect("shape matches length");
    Ok(FitsImage {
        data,
        valid,
        header,
        bitpix,
        path: path.to_path_buf(),
        hdu: k,
    })
}

/// [`read_fits`] on a `file.fits[N]` specification; an explicit `hdu` (e.g. from `--hdu`)
/// wins over the bracket, and giving both with different values is an error.
pub fn read_fits_spec(spec: &str, hdu: Option<usize>) -> Result<FitsImage, IoError> {
    let (path, from_spec) = parse_spec(spec);
    let hdu = match (hdu, from_spec) {
        (Some(a), Some(b)) if a != b => {
            return Err(IoError::Format {
                path,
                reason: format!("HDU given twice: [{b}] in the name and --hdu {a}"),
            })
        }
        (a, b) => a.or(b),
    };
    read_fits(&path, hdu)
}
