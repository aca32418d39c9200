//! Large zeroed buffers backed by transparent huge pages where the OS offers them.
//!
//! A fresh multi-megabyte buffer is mapped lazily by the kernel: every 4 KiB page costs a
//! page fault (and its zeroing) on first touch, which for the FFT work buffers of a
//! 2048² image (≈ 34 MB, 8 000 pages) takes longer than the transforms themselves on small
//! virtual machines. On Linux with transparent huge pages in `madvise` mode (the common
//! default), advising the range with `MADV_HUGEPAGE` before the first touch makes the kernel
//! map 2 MiB pages instead: 512× fewer faults. numpy does the same for its large arrays.
//! The advice is only a hint: when it is refused (another OS, THP disabled, no free huge
//! pages) the buffer is an ordinary zeroed `Vec`.

use crate::scalar::Real;
use ndarray::Array2;

/// Types whose all-zero bit pattern is the value zero (plain floating-point data).
///
/// # Safety
/// Implementors must be valid, and equal to zero, when every byte is 0.
pub(crate) unsafe trait ZeroBits: Clone + num_traits::Zero {}
// SAFETY: IEEE 754 +0.0 is all-zero bits.
unsafe impl<R: Real> ZeroBits for R {}
// SAFETY: a `Complex<R>` is two `R`s (`#[repr(C)]`), both +0.0.
unsafe impl<R: Real> ZeroBits for num_complex::Complex<R> {}

/// Buffers at least this large are advised (smaller ones gain nothing).
const HUGE_MIN_BYTES: usize = 4 << 20;

/// A `Vec` of `n` zeros; large ones advised to use huge pages (see the module docs).
///
/// The memory comes from the allocator's zeroed allocation (`calloc`: fresh pages from the
/// OS are not written at all), so the advice is in place before any page is touched —
/// `vec![Complex::zero(); n]` would write every element first (complex numbers are not
/// known to the standard library to be all-zero bits).
pub(crate) fn zeroed_vec<T: ZeroBits>(n: usize) -> Vec<T> {
    let bytes = n * std::mem::size_of::<T>();
    if n == 0 || bytes < HUGE_MIN_BYTES {
        return vec![T::zero(); n];
    }
    let layout = std::alloc::Layout::array::<T>(n).expect("buffer size overflows");
    // SAFETY: `layout` has a non-zero size; `T: ZeroBits` is plain floating-point data whose
    // all-zero bit pattern is the value 0, so the
    // zeroed allocation holds `n` initialised zeros; the pointer comes from the global
    // allocator with the layout of `[T; n]`, as `Vec::from_raw_parts` requires.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        advise_huge(ptr as usize, bytes);
        Vec::from_raw_parts(ptr, n, n)
    }
}

/// An `[n0, n1]` array of zeros backed by [`zeroed_vec`].
pub(crate) fn zeros2<T: ZeroBits>(dim: (usize, usize)) -> Array2<T> {
    Array2::from_shape_vec(dim, zeroed_vec(dim.0 * dim.1)).expect("shape matches length")
}

#[cfg(target_os = "linux")]
fn advise_huge(addr: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    // the 2 MiB-aligned part of the buffer
    let start = addr.div_ceil(HUGE) * HUGE;
    let end = (addr + bytes) / HUGE * HUGE;
    if end > start {
        // SAFETY: madvise only changes the paging policy of pages this buffer owns
        // (`[start, end)` lies inside the allocation); the contents are unaffected and an
        // error (e.g. EINVAL without THP support) is ignored: the advice is a hint.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_addr: usize, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_and_sized() {
        for n in [0usize, 1, 1000, (HUGE_MIN_BYTES / 8) + 12345] {
            let v: Vec<f64> = zeroed_vec(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
            let mut c: Vec<num_complex::Complex<f32>> = zeroed_vec(n);
            assert!(c.iter().all(|x| x.re == 0.0 && x.im == 0.0));
            c.push(num_complex::Complex::new(1.0, 2.0)); // owned by the global allocator
            assert_eq!(c.len(), n + 1);
        }
        let a: Array2<f32> = zeros2((1500, 1700));
        assert_eq!(a.dim(), (1500, 1700));
        assert!(a.iter().all(|&x| x == 0.0));
    }
}
