//! The CFITSIO calls shared by reading and writing: the global lock, error messages, file
//! handles closed on drop.

use crate::io::IoError;
use fitsio::sys;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::Path;
use std::sync::Mutex;

/// CFITSIO keeps a global error-message stack; all calls go through this lock so that
/// messages from concurrent reads are not interleaved.
pub(super) static CFITSIO_LOCK: Mutex<()> = Mutex::new(());

/// The CFITSIO status text and the messages on its error stack.
pub(super) fn cfitsio_message(status: c_int) -> String {
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

pub(super) fn fits_err(path: &Path, what: &str, status: c_int) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        reason: format!("{what}: {}", cfitsio_message(status)),
    }
}

/// An open CFITSIO file, closed on drop.
pub(super) struct Raw {
    pub(super) fptr: *mut sys::fitsfile,
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

/// The header of the current HDU as CFITSIO formats it (80-byte cards, `ffcnvthdr2str`: for a
/// tile-compressed image the header of the uncompressed image it holds, else the HDU's own
/// header exactly as `ffhdr2str` gives it), copied out of CFITSIO's buffer, which is freed.
/// `Err(status)` when CFITSIO fails. The caller holds [`CFITSIO_LOCK`].
pub(super) fn hdu_header_text(fptr: *mut sys::fitsfile) -> Result<Vec<u8>, c_int> {
    let mut text: *mut c_char = std::ptr::null_mut();
    let (mut ncards, mut status): (c_int, c_int) = (0, 0);
    // SAFETY: fptr is an open file; CFITSIO allocates `text` and we free it below.
    unsafe {
        sys::ffcnvthdr2str(
            fptr,
            0,
            std::ptr::null_mut(),
            0,
            &mut text,
            &mut ncards,
            &mut status,
        )
    };
    if status != 0 {
        return Err(status);
    }
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes().to_vec();
    let mut fstatus = 0;
    unsafe { sys::fffree(text.cast(), &mut fstatus) };
    Ok(bytes)
}

pub(super) fn c_path(path: &Path) -> Result<CString, IoError> {
    CString::new(path.as_os_str().to_string_lossy().as_bytes()).map_err(|_| IoError::Format {
        path: path.to_path_buf(),
        reason: "file name contains a NUL byte".into(),
    })
}

pub(super) fn hdu_kind(t: c_int) -> &'static str {
    match t as u32 {
        sys::IMAGE_HDU => "an image",
        sys::ASCII_TBL => "an ASCII table",
        sys::BINARY_TBL => "a binary table",
        _ => "an unknown HDU type",
    }
}
