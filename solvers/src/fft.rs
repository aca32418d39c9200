//! FFT helpers shared by the Fourier-domain operators: fast transform lengths and a
//! process-wide cache of `rustfft` / `realfft` plans.
//!
//! Plans are immutable and thread safe (`Arc<dyn Fft<R>>`), so one plan per (precision, length,
//! direction) serves every operator and every thread. Building a plan computes twiddle factors
//! and picks an algorithm (SIMD where the CPU supports it); caching it makes constructing many
//! operators of the same size cheap.

use ndarray::{Array2, ArrayView2};
use num_complex::Complex;
use rayon::prelude::*;
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

/// Estimated cost of one length-`n` complex FFT (arbitrary units, ≈ ns on an AVX2 core),
/// for a 7-smooth `n`: `n · (c₀ + Σ_p k_p c_p + 1)` where `k_p` is the exponent of the prime
/// `p ∈ {2, 3, 5, 7}` in `n` and the last term stands for the memory passes around the
/// transform. The coefficients `c₀ = −0.98, c₂ = 0.285, c₃ = 0.524, c₅ = 1.004, c₇ = 1.138`
/// were fitted (10 % rms error) on `rustfft` timings of every 7-smooth length in 200..5000:
/// radix-5 and radix-7 passes cost about 1.5× a radix-2 pass per bit, so a slightly longer
/// transform made of 2s and 3s is often faster than the shortest 7-smooth one
/// (1152 = 2⁷3² runs faster than 1050 = 2·3·5²·7).
pub fn fft_cost(n: usize) -> f64 {
    let mut m = n.max(1);
    let mut per = -0.98;
    for (p, c) in [(2usize, 0.285), (3, 0.524), (5, 1.004), (7, 1.138)] {
        while m % p == 0 {
            per += c;
            m /= p;
        }
    }
    // lengths with other factors are far slower (Bluestein/Rader): count them as 4× a radix 7
    if m > 1 {
        per += 4.0 * 1.138 * (m as f64).log(7.0);
    }
    n as f64 * (per.max(0.3) + 1.0)
}

/// The FFT length in `[n, 2n]` with the smallest [`fft_cost`] (ties to the shorter), for
/// transforms whose length may be chosen freely (zero-padded convolutions). Lengths below
/// 256 use [`next_fast_len`] (the difference is negligible there).
///
/// ```
/// use sparseinv_solvers::fft::good_fft_len;
/// assert_eq!(good_fft_len(1024), 1024);
/// let m = good_fft_len(1039);
/// assert!(m >= 1039 && sparseinv_solvers::fft::is_fast_len(m));
/// ```
pub fn good_fft_len(n: usize) -> usize {
    best_len(n, false)
}

/// [`good_fft_len`] for real-input transforms: an even length, costed as the complex FFT of
/// half the length that a real FFT of even length runs.
pub fn good_real_fft_len(n: usize) -> usize {
    best_len(n, true)
}

fn best_len(n: usize, real: bool) -> usize {
    let n = n.max(1);
    if n < 256 {
        return if real {
            next_fast_even_len(n)
        } else {
            next_fast_len(n)
        };
    }
    let cost = |m: usize| {
        if real {
            2.0 * fft_cost(m / 2)
        } else {
            fft_cost(m)
        }
    };
    let mut best = (f64::INFINITY, n);
    for m in n..=2 * n {
        if (real && m % 2 == 1) || !is_fast_len(m) {
            continue;
        }
        let c = cost(m);
        if c < best.0 {
            best = (c, m);
        }
    }
    best.1
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

/// The unnormalised 2-D DFT of a real array, `X(u, v) = Σ_{i,j} x(i, j) e^{−2πi(ui/n₀ + vj/n₁)}`,
/// as a full `n₀ × n₁` complex array (rows, then columns; lines in parallel on the rayon
/// pool). For analyses that need every frequency at once (e.g. the GCV of a Fourier filter);
/// the operators use the cheaper real transforms.
///
/// ```
/// use ndarray::array;
/// use sparseinv_solvers::fft::fft2;
/// let x = array![[1.0, 2.0], [3.0, 4.0]];
/// let f = fft2(x.view());
/// // X(0,0) = sum, X(1,0) = row sums' difference, X(0,1) = column sums' difference
/// assert_eq!((f[[0, 0]].re, f[[1, 0]].re, f[[0, 1]].re, f[[1, 1]].re), (10.0, -4.0, -2.0, 0.0));
/// ```
pub fn fft2(a: ArrayView2<f64>) -> Array2<Complex<f64>> {
    let (n0, n1) = a.dim();
    let mut out = a.mapv(|v| Complex::new(v, 0.0));
    if out.is_empty() {
        return out;
    }
    let p1 = complex_plan::<f64>(n1, false);
    out.as_slice_mut()
        .expect("fresh array is contiguous")
        .par_chunks_mut(n1)
        .for_each(|row| p1.process(row));
    // columns: transform the rows of the transpose, then transpose back
    let mut t = out.t().as_standard_layout().into_owned();
    let p0 = complex_plan::<f64>(n0, false);
    t.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(n0)
        .for_each(|col| p0.process(col));
    out.assign(&t.t());
    out
}

/// The non-redundant half of the 2-D DFT of a real array: `X(u, v)` of [`fft2`] for
/// `0 ≤ u < n₀` and `0 ≤ v ≤ n₁/2`, an `n₀ × (n₁/2 + 1)` complex array. The rest follows from
/// Hermitian symmetry, `X(u, v) = conj X(−u mod n₀, n₁ − v)`; a sum over every frequency of
/// a function `f` with `f(conj X) = f(X)` (e.g. of `|X|²`) is the sum over this half with
/// weight 1 on the columns `v = 0` and (for even `n₁`) `v = n₁/2`, and 2 elsewhere. Real
/// transforms along the rows, then complex ones along the columns (lines in parallel): about
/// half the work and memory of [`fft2`].
///
/// ```
/// use ndarray::array;
/// use sparseinv_solvers::fft::{fft2, rfft2};
/// let x = array![[1.0, 2.0, 0.5], [3.0, 4.0, -1.0]];
/// let (h, f) = (rfft2(x.view()), fft2(x.view()));
/// assert_eq!(h.dim(), (2, 2));
/// for ((u, v), z) in h.indexed_iter() {
///     assert!((z - f[[u, v]]).norm() < 1e-12);
/// }
/// ```
pub fn rfft2(a: ArrayView2<f64>) -> Array2<Complex<f64>> {
    let (n0, n1) = a.dim();
    let h = n1 / 2 + 1;
    if n0 == 0 || n1 == 0 {
        return Array2::zeros((n0, if n1 == 0 { 0 } else { h }));
    }
    let a = a.as_standard_layout();
    let rows = a.as_slice().expect("standard layout");
    let pr = real_forward_plan::<f64>(n1);
    // transposed: column v of the half spectrum is the contiguous line t[v * n0 .. (v + 1) * n0]
    let mut half: Vec<Complex<f64>> = crate::alloc::zeroed_vec(n0 * h);
    half.par_chunks_mut(h)
        .zip(rows.par_chunks(n1))
        .for_each_init(
            || (pr.make_input_vec(), pr.make_scratch_vec()),
            |(inp, scratch), (out, row)| {
                inp.copy_from_slice(row);
                pr.process_with_scratch(inp, out, scratch)
                    .expect("buffer lengths match the plan");
            },
        );
    let mut t = Array2::from_shape_vec((n0, h), half)
        .expect("n0 × h")
        .t()
        .as_standard_layout()
        .into_owned();
    let p0 = complex_plan::<f64>(n0, false);
    t.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(n0)
        .for_each(|col| p0.process(col));
    t.t().as_standard_layout().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex;

    /// Direct `O(N²)` DFT of a real array at one frequency.
    fn dft_at(x: &ndarray::Array2<f64>, u: usize, v: usize) -> Complex<f64> {
        let (n0, n1) = x.dim();
        let mut acc = Complex::new(0.0, 0.0);
        for ((i, j), &a) in x.indexed_iter() {
            let ph =
                -std::f64::consts::TAU * ((u * i) as f64 / n0 as f64 + (v * j) as f64 / n1 as f64);
            acc += Complex::new(ph.cos(), ph.sin()) * a;
        }
        acc
    }

    #[test]
    fn rfft2_is_the_half_of_the_direct_dft() {
        for (n0, n1, seed) in [(6usize, 8usize, 1u64), (5, 7, 2), (1, 4, 3), (9, 1, 4)] {
            let x = crate::testing::randn::<f64>(&[n0, n1], seed)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            let h = rfft2(x.view());
            assert_eq!(h.dim(), (n0, n1 / 2 + 1));
            let full = fft2(x.view());
            for ((u, v), z) in h.indexed_iter() {
                let d = dft_at(&x, u, v);
                assert!((z - d).norm() < 1e-10, "({u},{v}): {z} vs {d}");
                assert!((z - full[[u, v]]).norm() < 1e-10);
                // Hermitian symmetry gives the other half
                let (uc, vc) = ((n0 - u) % n0, (n1 - v) % n1);
                assert!((z.conj() - full[[uc, vc]]).norm() < 1e-10);
            }
        }
        assert_eq!(
            rfft2(ndarray::Array2::<f64>::zeros((0, 4)).view()).dim(),
            (0, 3)
        );
    }

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
    fn good_lengths_are_fast_and_cheapest_in_range() {
        for n in [1, 7, 255, 256, 300, 1039, 1054, 2079, 4097] {
            for real in [false, true] {
                let m = best_len(n, real);
                assert!(m >= n && m <= 2 * n.max(1) && is_fast_len(m), "{n} -> {m}");
                assert!(!real || m % 2 == 0);
                if n >= 256 {
                    let cost = |k: usize| {
                        if real {
                            2.0 * fft_cost(k / 2)
                        } else {
                            fft_cost(k)
                        }
                    };
                    for k in (n..=2 * n).filter(|&k| is_fast_len(k) && (!real || k % 2 == 0)) {
                        assert!(cost(m) <= cost(k), "{n}: {m} costs more than {k}");
                    }
                }
            }
        }
        // powers of two are their own best length; a 5²·7 length loses to a 2/3-smooth one
        assert_eq!(good_fft_len(1024), 1024);
        assert_eq!(good_real_fft_len(2048), 2048);
        assert!(fft_cost(1152) < fft_cost(1050));
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
