//! FITS images in and out, through CFITSIO (bundled by the `fitsio` crate).
//!
//! # Reading
//! [`read_fits`] reads one image HDU of any FITS file: BITPIX 8, 16, 32, 64, -32 or -64, with
//! `BSCALE`/`BZERO` applied (physical value = `BZERO + BSCALE * stored`), tile-compressed
//! images (Rice, gzip, HCOMPRESS, PLIO: CFITSIO decompresses them transparently), and a 2-D
//! image or a 3-D cube. Undefined pixels (integer pixels equal to `BLANK`, floating-point NaN)
//! become NaN in [`FitsImage::data`] and `false` in [`FitsImage::valid`].
//!
//! HDUs are numbered from 0 as in astropy and in CFITSIO's extended file-name syntax
//! (`file.fits[0]` is the primary HDU); [`parse_spec`] splits `file.fits[N]`. Without an HDU
//! number the first HDU holding image data is read (so the primary HDU of a plain image, or
//! the first extension of a tile-compressed file, whose primary HDU is empty).
//!
//! # Array layout
//! FITS is row-major in ndarray terms: `NAXIS1` is the fastest axis. A 2-D image becomes an
//! array of shape `(NAXIS2, NAXIS1)`, i.e. `data[[y, x]]` is FITS pixel (x+1, y+1) in FITS's
//! 1-based convention; a cube is `(NAXIS3, NAXIS2, NAXIS1)`. Row 0 is the FITS first row,
//! which image viewers display at the bottom.
//!
//! # Writing
//! [`write_fits`] writes a 32-bit floating-point (`BITPIX = -32`) primary image. When given
//! the input's [`Header`], it copies every card except the structural ones (`SIMPLE`,
//! `XTENSION`, `BITPIX`, `NAXISn`, `EXTEND`, `PCOUNT`, `GCOUNT`, `BSCALE`, `BZERO`, `BLANK`,
//! `CHECKSUM`, `DATASUM`, and the tile-compression `Z*` cards), so the WCS and all other
//! metadata survive, then appends `HISTORY` cards. The write is atomic (temporary file in the
//! destination directory, then rename): it never leaves a partial file, never overwrites an
//! existing file unless `force`, and refuses to write over the file the header came from.

use super::{atomic_write, IoError};
use fitsio::sys;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_long};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// CFITSIO keeps a global error-message stack; all calls go through this lock so that
/// messages from concurrent reads are not interleaved.
static CFITSIO_LOCK: Mutex<()> = Mutex::new(());

/// A FITS header: its 80-character card images, in order, without the `END` card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<String>,
    source: Option<PathBuf>,
}

/// Keywords that describe the data layout and are rewritten, never copied, on output.
fn is_structural(key: &str) -> bool {
    matches!(
        key,
        "SIMPLE"
            | "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "PCOUNT"
            | "GCOUNT"
            | "BSCALE"
            | "BZERO"
            | "BLANK"
            | "CHECKSUM"
            | "DATASUM"
            | "END"
            | "THEAP"
            | "TFIELDS"
    ) || (key.starts_with("NAXIS") && key[5..].chars().all(|c| c.is_ascii_digit()))
        || key.starts_with("ZIMAGE")
        || key.starts_with("ZCMPTYPE")
        || key.starts_with("ZBITPIX")
        || key.starts_with("ZNAXIS")
        || key.starts_with("ZTILE")
        || key.starts_with("ZNAME")
        || key.starts_with("ZVAL")
        || key.starts_with("ZQUANTIZ")
        || key.starts_with("ZDITHER")
}

impl Header {
    /// A header from card images (each padded or truncated to 80 characters). `END` is dropped.
    pub fn from_cards<I: IntoIterator<Item = String>>(cards: I) -> Self {
        let cards = cards
            .into_iter()
            .map(|c| format!("{c:<80.80}"))
            .filter(|c| c.trim_end() != "END")
            .collect();
        Header {
            cards,
            source: None,
        }
    }

    /// All card images (80 characters each), in file order.
    pub fn cards(&self) -> &[String] {
        &self.cards
    }

    /// The file this header was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The keyword of a card (columns 1–8, trimmed; `HIERARCH` cards give their full name).
    pub fn card_key(card: &str) -> &str {
        let k = card.get(..8).unwrap_or(card).trim_end();
        if k == "HIERARCH" {
            if let Some(eq) = card.find('=') {
                return card[8..eq].trim();
            }
        }
        k
    }

    /// The cards that [`write_fits`] copies: all but the structural keywords.
    pub fn non_structural(&self) -> impl Iterator<Item = &str> {
        self.cards
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !is_structural(Header::card_key(c)))
    }

    /// The raw value text of the first card with this keyword (between `= ` and the comment
    /// slash; string values keep their quotes), or `None`.
    pub fn raw_value(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_uppercase();
        self.cards.iter().find_map(|c| {
            if Header::card_key(c) != key || c.get(8..10) != Some("= ") {
                return None;
            }
            Some(split_value(&c[10..]))
        })
    }

    /// A numeric keyword's value (integers and reals; `D` exponents accepted).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.raw_value(key)
            .and_then(|v| v.trim().replace(['D', 'd'], "E").parse::<f64>().ok())
    }

    /// A string keyword's value, quotes removed, doubled quotes undone, trailing blanks trimmed.
    pub fn get_str(&self, key: &str) -> Option<String> {
        let v = self.raw_value(key)?.trim();
        let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'").trim_end().to_string())
    }

    /// Append (or replace, when the keyword exists) a numeric card `KEY = value / comment`.
    pub fn set_f64(&mut self, key: &str, value: f64, comment: &str) {
        let v = if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", value as i64)
        } else {
            format!("{value:.12E}")
        };
        self.set_raw(key, &v, comment);
    }

    /// Append (or replace) a string card `KEY = 'value' / comment`.
    pub fn set_str(&mut self, key: &str, value: &str, comment: &str) {
        let v = format!("'{:<8}'", value.replace('\'', "''"));
        self.set_raw(key, &v, comment);
    }

    fn set_raw(&mut self, key: &str, value: &str, comment: &str) {
        let key = key.to_ascii_uppercase();
        let card = format!("{key:<8}= {value:>20} / {comment}");
        let card = format!("{card:<80.80}");
        if let Some(c) = self
            .cards
            .iter_mut()
            .find(|c| Header::card_key(c) == key && c.get(8..10) == Some("= "))
        {
            *c = card;
        } else {
            self.cards.push(card);
        }
    }
}

/// The value part of a card's value field: up to a `/` that is outside a quoted string.
fn split_value(field: &str) -> &str {
    let mut in_str = false;
    for (i, ch) in field.char_indices() {
        match ch {
            '\'' => in_str = !in_str,
            '/' if !in_str => return field[..i].trim(),
            _ => {}
        }
    }
    field.trim()
}

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

/// The CFITSIO status text and the messages on its error stack.
fn cfitsio_message(status: c_int) -> String {
    let mut buf = [0 as c_char; 81];
    // SAFETY: ffgerr writes at most 30 characters + NUL; ffgmsg at most 80 + NUL.
    let mut text = unsafe {
        sys::ffgerr(status, buf.as_mut_ptr());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    };
    let mut details = Vec::new();
    loop {
        let mut m = [0 as c_char; 81];
        // SAFETY: buffer of 81 bytes as documented.
        let n = unsafe { sys::ffgmsg(m.as_mut_ptr()) };
        if n == 0 {
            break;
        }
        let s = unsafe { CStr::from_ptr(m.as_ptr()) }
            .to_string_lossy()
            .trim()
            .to_string();
        if !s.is_empty() && !details.contains(&s) && details.len() < 4 {
            details.push(s);
        }
    }
    if !details.is_empty() {
        text = format!("{text} ({})", details.join("; "));
    }
    text
}

fn fits_err(path: &Path, what: &str, status: c_int) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        reason: format!("{what}: {}", cfitsio_message(status)),
    }
}

/// An open CFITSIO file, closed on drop.
struct Raw {
    fptr: *mut sys::fitsfile,
}

impl Drop for Raw {
    fn drop(&mut self) {
        if !self.fptr.is_null() {
            let mut status = 0;
            // SAFETY: fptr came from ffdkopn/ffdkinit and is closed once.
            unsafe { sys::ffclos(self.fptr, &mut status) };
            unsafe { sys::ffcmsg() };
        }
    }
}

fn c_path(path: &Path) -> Result<CString, IoError> {
    CString::new(path.as_os_str().to_string_lossy().as_bytes()).map_err(|_| IoError::Format {
        path: path.to_path_buf(),
        reason: "file name contains a NUL byte".into(),
    })
}

fn hdu_kind(t: c_int) -> &'static str {
    match t as u32 {
        sys::IMAGE_HDU => "an image",
        sys::ASCII_TBL => "an ASCII table",
        sys::BINARY_TBL => "a binary table",
        _ => "an unknown HDU type",
    }
}

/// Read an image HDU of a FITS file (see the module documentation). `hdu` is 0-based;
/// `None` picks the first HDU that holds image data.
///
/// Errors (all [`IoError`], naming the file): missing or unreadable file, not a FITS file,
/// truncated or corrupt data, an HDU number past the end, a table HDU, an HDU without data,
/// an image with more than 3 non-degenerate axes.
pub fn read_fits(path: &Path, hdu: Option<usize>) -> Result<FitsImage, IoError> {
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

    let mut data = vec![0f64; n];
    let mut nul = vec![0 as c_char; n];
    let mut anynul: c_int = 0;
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
        return Err(fits_err(
            path,
            &format!("cannot read the pixels of HDU {k} (truncated or corrupt file?)"),
            status,
        ));
    }
    let mut valid = Vec::with_capacity(n);
    for (v, &f) in data.iter_mut().zip(&nul) {
        let ok = f == 0 && v.is_finite();
        if !ok {
            *v = f64::NAN;
        }
        valid.push(ok);
    }
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

/// What [`write_fits`] writes besides the pixels.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions<'a> {
    /// A header whose non-structural cards (WCS, observation metadata, ...) are copied.
    pub header: Option<&'a Header>,
    /// Extra cards, written after the copied ones (e.g. from [`Header::set_f64`]); structural
    /// keywords in it are ignored.
    pub extra: Option<&'a Header>,
    /// Text of `HISTORY` cards appended last (long texts continue over several cards).
    pub history: Vec<String>,
    /// Overwrite an existing output file.
    pub force: bool,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Write a 2-D image as a 32-bit float FITS primary HDU. See [`write_fits`].
pub fn write_fits_2d(
    path: &Path,
    data: ArrayView2<'_, f32>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
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
    path: &Path,
    data: ArrayView3<'_, f32>,
    opts: &WriteOptions<'_>,
) -> Result<(), IoError> {
    if let Some(src) = opts.header.and_then(|h| h.source()) {
        if same_file(src, path) {
            return Err(IoError::Format {
                path: path.to_path_buf(),
                reason: "refusing to overwrite the input file".into(),
            });
        }
    }
    let (nz, ny, nx) = data.dim();
    if nz == 0 || ny == 0 || nx == 0 {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot write an empty image of shape {:?}", data.dim()),
        });
    }
    let mut pixels: Vec<f32> = data.iter().copied().collect(); // standard layout
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
        let sources = opts.header.into_iter().chain(opts.extra);
        for h in sources {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(parse_spec("a.fits[2]"), (PathBuf::from("a.fits"), Some(2)));
        assert_eq!(parse_spec("a.fits"), (PathBuf::from("a.fits"), None));
        assert_eq!(parse_spec("a.fits[x]"), (PathBuf::from("a.fits[x]"), None));
    }

    #[test]
    fn header_values() {
        let mut h = Header::from_cards(vec![
            "CRVAL1  =             250.4226 / Reference pixel value".to_string(),
            "CTYPE1  = 'RA---TAN'           / X-axis type".to_string(),
            "OBJECT  = 'it''s / here'".to_string(),
            "BITPIX  =                   16".to_string(),
            "END".to_string(),
        ]);
        assert_eq!(h.cards().len(), 4);
        assert_eq!(h.get_f64("crval1"), Some(250.4226));
        assert_eq!(h.get_str("CTYPE1").as_deref(), Some("RA---TAN"));
        assert_eq!(h.get_str("OBJECT").as_deref(), Some("it's / here"));
        assert_eq!(h.non_structural().count(), 3);
        h.set_f64("NSTARS", 12.0, "stars used");
        h.set_f64("NSTARS", 13.0, "stars used");
        assert_eq!(h.get_f64("NSTARS"), Some(13.0));
        assert_eq!(h.cards().len(), 5);
    }
}
