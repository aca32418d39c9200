//! FFT helpers shared by the Fourier-domain operators: fast transform lengths and a
//! process-wide cache of `rustfft` / `realfft` plans.
//!
//! Plans are immutable and thread safe (`Arc<dyn Fft<R>>`), so one plan per (precision, length,
//! direction) serves every operator and every thread. Building a plan computes twiddle factors
//! and picks an algorithm (SIMD where the CPU supports it); caching it makes constructing many
//! operators of the same size cheap.

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftNum, FftPlanner};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// `true` when `n ≥ 1` has no prime factor other than 2, 3, 5 and 7.
pub fn is_fast_len(mut n: usize) -> bool {
    if n == 0 {
        return false;
    }
    for p in [2usize, 3, 5, 7] {
        while n % p == 0 {
            n /= p;
        }
    }
    n == 1
}

/// The smallest `m ≥ n` of the form `2^a 3^b 5^c 7^d` (7-smooth), for which mixed-radix
/// FFTs are fast. `next_fast_len(0) = 1`.
///
/// ```
/// use sparseinv_solvers::fft::next_fast_len;
/// assert_eq!(next_fast_len(2079), 2100); // 2100 = 2²·3·5²·7
/// assert_eq!(next_fast_len(1024), 1024);
/// assert_eq!(next_fast_len(11), 12);
/// ```
pub fn next_fast_len(n: usize) -> usize {
    let mut m = n.max(1);
    while !is_fast_len(m) {
        m += 1;
    }
    m
}

/// The smallest even 7-smooth `m ≥ n`: the fast lengths for real-input FFTs, which run as
/// a complex FFT of half the length when the length is even.
///
/// ```
/// use sparseinv_solvers::fft::next_fast_even_len;
/// assert_eq!(next_fast_even_len(15), 16);
/// assert_eq!(next_fast_even_len(2079), 2100);
/// ```
pub fn next_fast_even_len(n: usize) -> usize {
    let mut m = next_fast_len(n.max(2));
    while m % 2 == 1 {
        m = next_fast_len(m + 1);
    }
    m
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Forward,
    Inverse,
    RealForward,
    RealInverse,
}

type Cache = Mutex<HashMap<(TypeId, usize, Kind), Box<dyn Any + Send + Sync>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached<R: FftNum, P: Clone + Send + Sync + 'static>(
    len: usize,
    kind: Kind,
    make: impl FnOnce() -> P,
) -> P {
    let key = (TypeId::of::<R>(), len, kind);
    {
        let guard = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.get(&key).and_then(|b| b.downcast_ref::<P>()) {
            return p.clone();
        }
    }
    // Plan outside the lock: planning a large length can take a while.
    let plan = make();
    let mut guard = cache().lock().unwrap_or_else(|e| e.into_inner());
    guard.entry(key).or_insert_with(|| Box::new(plan.clone()));
    plan
}

/// A cached complex FFT plan of length `len` (unnormalised; `inverse` selects the sign
/// `e^{+2πi kn/N}`).
pub fn complex_plan<R: FftNum>(len: usize, inverse: bool) -> Arc<dyn Fft<R>> {
    let kind = if inverse {
        Kind::Inverse
    } else {
        Kind::Forward
    };
    cached::<R, Arc<dyn Fft<R>>>(len, kind, || {
        let mut p = FftPlanner::<R>::new();
        if inverse {
            p.plan_fft_inverse(len)
        } else {
            p.plan_fft_forward(len)
        }
    })
}

/// A cached real-to-complex forward plan of length `len` (output `len/2 + 1` bins).
pub fn real_forward_plan<R: FftNum>(len: usize) -> Arc<dyn RealToComplex<R>> {
    cached::<R, Arc<dyn RealToComplex<R>>>(len, Kind::RealForward, || {
        RealFftPlanner::<R>::new().plan_fft_forward(len)
    })
}

/// A cached complex-to-real inverse plan of length `len` (input `len/2 + 1` bins,
/// unnormalised).
pub fn real_inverse_plan<R: FftNum>(len: usize) -> Arc<dyn ComplexToReal<R>> {
    cached::<R, Arc<dyn ComplexToReal<R>>>(len, Kind::RealInverse, || {
        RealFftPlanner::<R>::new().plan_fft_inverse(len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex;

    #[test]
    fn fast_lengths() {
        for n in 1..500 {
            let m = next_fast_len(n);
            assert!(m >= n && is_fast_len(m));
            assert!((n..m).all(|k| !is_fast_len(k)));
            let e = next_fast_even_len(n);
            assert!(e >= n && e % 2 == 0 && is_fast_len(e));
        }
        assert!(!is_fast_len(0));
        assert!(!is_fast_len(11));
    }

    #[test]
    fn cached_plans_are_shared_and_correct() {
        let a = complex_plan::<f64>(12, false);
        let b = complex_plan::<f64>(12, false);
        assert!(Arc::ptr_eq(&a, &b));
        let c = complex_plan::<f32>(12, false);
        assert_eq!(c.len(), 12);
        // DFT of a delta at 1 is e^{-2πik/12}.
        let mut x = vec![Complex::new(0.0f64, 0.0); 12];
        x[1] = Complex::new(1.0, 0.0);
        a.process(&mut x);
        for (k, v) in x.iter().enumerate() {
            let ang = -2.0 * std::f64::consts::PI * k as f64 / 12.0;
            assert!((v.re - ang.cos()).abs() < 1e-12 && (v.im - ang.sin()).abs() < 1e-12);
        }
        assert_eq!(real_forward_plan::<f64>(10).complex_len(), 6);
        assert_eq!(real_inverse_plan::<f32>(9).len(), 9);
    }
}
