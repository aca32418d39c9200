//! FITS images in and out, through CFITSIO (bundled by the `fitsio` crate): CFITSIO finds
//! the HDU, parses and formats headers and decompresses tile-compressed images; the pixels of
//! an uncompressed data unit (one contiguous big-endian array) are read and written here
//! directly, in parallel blocks, without CFITSIO's intermediate buffers (the two readers agree
//! bit for bit; tested on every golden file).
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
//! existing file unless asked (`force`) and never the header's source file.
//!
//! # Modules
//! `header` ([`Header`]: cards, values, structural keywords), `read` ([`read_fits`],
//! [`FitsImage`]), `write` ([`write_fits`], [`WriteOptions`]) and `ffi` (the CFITSIO calls:
//! error messages, file handles, the global lock).

mod ffi;
mod header;
mod read;
mod write;

pub use header::Header;
pub use read::{parse_spec, read_fits, read_fits_spec, FitsImage};
pub use write::{to_f32, write_fits, write_fits_2d, write_fits_2d_f64, WriteOptions};

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
