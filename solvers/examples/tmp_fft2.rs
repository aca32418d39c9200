use num_complex::Complex;
use std::time::Instant;
fn main() {
    let lens: Vec<usize> = (200..=5000)
        .filter(|&n| sparseinv_solvers::fft::is_fast_len(n))
        .collect();
    for n in lens {
        let mut cp = rustfft::FftPlanner::<f64>::new();
        let c = cp.plan_fft_forward(n);
        let m = 400;
        let mut cbuf = vec![Complex::<f64>::new(1.0, 0.5); n * m];
        let mut best = 1e9f64;
        for _ in 0..7 {
            let t = Instant::now();
            c.process(&mut cbuf);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let per = best / (m as f64) / (n as f64 * (n as f64).log2()) * 1e9;
        println!("{n} {:?} ns/(n log n) {per:.3}", factor(n));
    }
}
fn factor(mut n: usize) -> Vec<usize> {
    let mut f = vec![];
    for p in [2, 3, 5, 7] {
        while n % p == 0 {
            f.push(p);
            n /= p;
        }
    }
    f
}
