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
