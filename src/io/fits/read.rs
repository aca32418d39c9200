//! Reading image HDUs.

use super::ffi::{c_path, fits_err, hdu_header_text, hdu_kind, Raw, CFITSIO_LOCK};
use super::Header;
use crate::io::IoError;
use fitsio::sys;
use ndarray::{Array2, Array3, ArrayView2, Axis};
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

    /// The image as an owned 2-D array, moved out of [`FitsImage::data`] without a copy
    /// (`data` is left empty; `valid`, the header and the rest stay). Errors as
    /// [`FitsImage::image2d`] (a cube), and when the pixels were taken already.
    pub fn take_image2d(&mut self) -> Result<Array2<f64>, IoError> {
        if self.data.is_empty() {
            return Err(IoError::Format {
                path: self.path.clone(),
                reason: "the pixels of this image were taken already".into(),
            });
        }
        let (ny, nx) = self.image2d()?.dim();
        Ok(std::mem::take(&mut self.data)
            .into_shape_with_order((ny, nx))
            .expect("one plane of ny × nx"))
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
    read_fits_with(path.as_ref(), hdu, true)
}

/// [`read_fits`]; `direct`: read an uncompressed data unit straight from the file
/// ([`read_direct`]) rather than through CFITSIO (the tests compare the two).
fn read_fits_with(path: &Path, hdu: Option<usize>, direct: bool) -> Result<FitsImage, IoError> {
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
    let text = hdu_header_text(raw.fptr)
        .map_err(|status| fits_err(path, &format!("cannot read the header of HDU {k}"), status))?;
    let text = String::from_utf8_lossy(&text);
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
    let compressed = unsafe { sys::fits_is_compressed_image(raw.fptr, &mut status) } != 0;
    // An uncompressed image in a plain FITS file is one contiguous big-endian array on disk:
    // it is read straight from the file, outside CFITSIO and its lock, in parallel blocks
    // converted as they arrive (see `read_direct`). Tile-compressed images, and gzip-,
    // compress- or zip-compressed files (which CFITSIO inflates in memory, so its offsets do
    // not refer to the bytes on disk), go through CFITSIO.
    let direct = if compressed || !direct || !starts_as_fits(path) {
        None
    } else {
        let (mut head, mut data_start, mut data_end): (
            sys::LONGLONG,
            sys::LONGLONG,
            sys::LONGLONG,
        ) = (0, 0, 0);
        unsafe {
            sys::ffghadll(
                raw.fptr,
                &mut head,
                &mut data_start,
                &mut data_end,
                &mut status,
            )
        };
        if status != 0 {
            return Err(pixels_err(status));
        }
        Stored::from_bitpix(bitpix).map(|kind| Direct {
            kind,
            start: data_start as u64,
            scale: header.get_f64("BSCALE").unwrap_or(1.0),
            zero: header.get_f64("BZERO").unwrap_or(0.0),
            // an integer card: parsed as one (a 64-bit BLANK is not exact through f64)
            blank: header
                .raw_value("BLANK")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .or_else(|| header.get_f64("BLANK").map(|b| b as i64)),
        })
    };
    let (data, valid) = match direct {
        Some(d) => {
            // release CFITSIO (and its global lock) before the bulk read
            drop(raw);
            drop(_guard);
            read_direct(path, &d, n)?
        }
        None => {
            let mut anynul: c_int = 0;
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
        }
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

/// How the pixels of an uncompressed image HDU are stored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Stored {
    fn from_bitpix(bitpix: c_int) -> Option<Self> {
        Some(match bitpix {
            8 => Stored::U8,
            16 => Stored::I16,
            32 => Stored::I32,
            64 => Stored::I64,
            -32 => Stored::F32,
            -64 => Stored::F64,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Stored::U8 => 1,
            Stored::I16 => 2,
            Stored::I32 | Stored::F32 => 4,
            Stored::I64 | Stored::F64 => 8,
        }
    }
}

/// Where and how the data unit of an uncompressed image HDU is stored.
#[derive(Debug, Clone, Copy)]
struct Direct {
    kind: Stored,
    /// Byte offset of the first pixel in the file.
    start: u64,
    /// `BSCALE` (1 when absent).
    scale: f64,
    /// `BZERO` (0 when absent).
    zero: f64,
    /// `BLANK` (integer images only: a stored value that marks an undefined pixel).
    blank: Option<i64>,
}

/// Whether the file on disk begins with a FITS primary header (`SIMPLE  =`), i.e. is not a
/// compressed container that CFITSIO inflates in memory.
fn starts_as_fits(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SIMPLE  ="
}

/// Pixels per block of [`read_direct`] (32–256 kB of file data: the block stays in cache
/// between the read and the conversion).
const DIRECT_BLOCK: usize = 1 << 15;

/// The `n` pixels of an uncompressed data unit as physical values, `BZERO + BSCALE · stored`
/// (FITS standard 4.0, §5.3), NaN and `false` where undefined (a stored `BLANK` in an integer
/// image, NaN in a floating-point one, or a non-finite physical value), as CFITSIO's
/// `ffgpfd` returns them. Blocks of the file are read (`pread`) and converted from big-endian
/// in parallel. Errors: the file is shorter than its header says (truncated).
fn read_direct(path: &Path, d: &Direct, n: usize) -> Result<(Vec<f64>, Vec<bool>), IoError> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    let os = |e: std::io::Error| IoError::Os {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(os)?;
    let len = file.metadata().map_err(os)?.len();
    let need = d.start + (n * d.kind.bytes()) as u64;
    if len < need {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "the file is truncated: its header describes {need} bytes of header and pixels, \
                 the file has {len}"
            ),
        });
    }
    let (mut data, mut valid) = (vec![0f64; n], vec![false; n]);
    let identity = d.scale == 1.0 && d.zero == 0.0;
    data.par_chunks_mut(DIRECT_BLOCK)
        .zip(valid.par_chunks_mut(DIRECT_BLOCK))
        .enumerate()
        .try_for_each_init(Vec::new, |buf: &mut Vec<u8>, (b, (out, ok))| {
            let w = d.kind.bytes();
            buf.resize(out.len() * w, 0);
            file.read_exact_at(buf, d.start + (b * DIRECT_BLOCK * w) as u64)
                .map_err(os)?;
            let put = |o: &mut f64, k: &mut bool, v: f64| {
                let v = if identity { v } else { v * d.scale + d.zero };
                *k = v.is_finite();
                *o = if *k { v } else { f64::NAN };
            };
            let int = |o: &mut f64, k: &mut bool, s: i64| {
                if d.blank == Some(s) {
                    *k = false;
                    *o = f64::NAN;
                } else {
                    put(o, k, s as f64);
                }
            };
            let it = out.iter_mut().zip(ok.iter_mut());
            match d.kind {
                Stored::U8 => it
                    .zip(buf.iter())
                    .for_each(|((o, k), &s)| int(o, k, s as i64)),
                Stored::I16 => it
                    .zip(buf.chunks_exact(2))
                    .for_each(|((o, k), s)| int(o, k, i16::from_be_bytes([s[0], s[1]]) as i64)),
                Stored::I32 => it.zip(buf.chunks_exact(4)).for_each(|((o, k), s)| {
                    int(
                        o,
                        k,
                        i32::from_be_bytes(s.try_into().expect("4 bytes")) as i64,
                    )
                }),
                Stored::I64 => it.zip(buf.chunks_exact(8)).for_each(|((o, k), s)| {
                    int(o, k, i64::from_be_bytes(s.try_into().expect("8 bytes")))
                }),
                Stored::F32 => it.zip(buf.chunks_exact(4)).for_each(|((o, k), s)| {
                    put(
                        o,
                        k,
                        f32::from_be_bytes(s.try_into().expect("4 bytes")) as f64,
                    )
                }),
                Stored::F64 => it.zip(buf.chunks_exact(8)).for_each(|((o, k), s)| {
                    put(o, k, f64::from_be_bytes(s.try_into().expect("8 bytes")))
                }),
            }
            Ok::<(), IoError>(())
        })?;
    Ok((data, valid))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn golden() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
    }

    /// The direct read of an uncompressed data unit gives CFITSIO's values bit for bit:
    /// every BITPIX, BSCALE/BZERO (incl. unsigned 16-bit), BLANK, NaN, a cube, an extension.
    #[test]
    fn direct_read_equals_cfitsio() {
        let mut seen = 0;
        for entry in std::fs::read_dir(golden()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("fits") {
                continue;
            }
            let (a, b) = match (
                read_fits_with(&path, None, true),
                read_fits_with(&path, None, false),
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(a), Err(b)) => {
                    // a file without image data fails both ways
                    assert_eq!(a.to_string().is_empty(), b.to_string().is_empty());
                    continue;
                }
                (a, b) => panic!("{}: {:?} vs {:?}", path.display(), a.err(), b.err()),
            };
            assert_eq!(a.valid, b.valid, "{}", path.display());
            assert_eq!(a.data.dim(), b.data.dim());
            for (x, y) in a.data.iter().zip(b.data.iter()) {
                assert!(
                    x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                    "{}: {x} vs {y}",
                    path.display()
                );
            }
            assert_eq!(a.header, b.header);
            assert_eq!((a.bitpix, a.hdu), (b.bitpix, b.hdu));
            seen += 1;
        }
        assert!(seen >= 8, "only {seen} golden images read");
    }

    /// `take_image2d` moves the plane out once; a cube or a second take is an error.
    #[test]
    fn take_image2d_moves_the_plane() {
        let mut img = read_fits(golden().join("float64.fits"), None).unwrap();
        let copy = img.plane(0).to_owned();
        let got = img.take_image2d().unwrap();
        assert_eq!(got.dim(), copy.dim());
        assert!(got
            .iter()
            .zip(copy.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(img
            .take_image2d()
            .unwrap_err()
            .to_string()
            .contains("taken"));
        let mut cube = read_fits(golden().join("cube.fits"), None).unwrap();
        assert!(cube
            .take_image2d()
            .unwrap_err()
            .to_string()
            .contains("cube"));
    }

    /// A gzip-compressed FITS file (which CFITSIO inflates in memory) is read through
    /// CFITSIO, with the same pixels as the plain file.
    #[test]
    fn gzipped_file_reads_like_the_plain_file() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let plain = golden().join("bitpix16_scaled.fits");
        let gz = d.path().join("scaled.fits.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        enc.finish().unwrap();
        let (a, b) = (
            read_fits(&plain, None).unwrap(),
            read_fits(&gz, None).unwrap(),
        );
        assert_eq!(a.valid, b.valid);
        assert!(a
            .data
            .iter()
            .zip(b.data.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())));
        assert!(!a.data.is_empty());
    }

    /// A data unit cut short is an error naming the file, not a panic or zeros.
    #[test]
    fn truncated_data_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let src = std::fs::read(golden().join("float64.fits")).unwrap();
        let p = d.path().join("cut.fits");
        // header and the first 100 bytes of the data
        let data_start = src
            .chunks(80)
            .position(|c| c.starts_with(b"END "))
            .map(|k| (k * 80 / 2880 + 1) * 2880)
            .unwrap();
        std::fs::write(&p, &src[..data_start + 100]).unwrap();
        let e = read_fits(&p, None).unwrap_err().to_string();
        assert!(e.contains("cut.fits") && e.contains("truncated"), "{e}");
    }
}
