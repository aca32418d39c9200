use num_complex::Complex;
use std::time::Instant;
fn main() {
    for &n in &[1050usize, 1024, 1080, 1120, 2048] {
        let mut rp = realfft::RealFftPlanner::<f64>::new();
        let r2c = rp.plan_fft_forward(n);
        let mut cp = rustfft::FftPlanner::<f64>::new();
        let c = cp.plan_fft_forward(n);
        let rows = n;
        let mut inp = vec![1.0f64; n * rows];
        let mut out = vec![Complex::<f64>::default(); (n / 2 + 1) * rows];
        let mut cbuf = vec![Complex::<f64>::new(1.0, 0.5); n * (n / 2 + 1)];
        let mut best_r = 1e9f64;
        let mut best_c = 1e9f64;
        for _ in 0..5 {
            let t = Instant::now();
            for (i, o) in inp.chunks_mut(n).zip(out.chunks_mut(n / 2 + 1)) {
                r2c.process(i, o).unwrap();
            }
            best_r = best_r.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            c.process(&mut cbuf);
            best_c = best_c.min(t.elapsed().as_secs_f64());
        }
        println!(
            "n={n}: {rows} rffts {:.2} ms; {} cffts {:.2} ms",
            best_r * 1e3,
            n / 2 + 1,
            best_c * 1e3
        );
        let mut rp = realfft::RealFftPlanner::<f32>::new();
        let r2c = rp.plan_fft_forward(n);
        let mut cp = rustfft::FftPlanner::<f32>::new();
        let c = cp.plan_fft_forward(n);
        let mut inp = vec![1.0f32; n * rows];
        let mut out = vec![Complex::<f32>::default(); (n / 2 + 1) * rows];
        let mut cbuf = vec![Complex::<f32>::new(1.0, 0.5); n * (n / 2 + 1)];
        let mut best_r = 1e9f64;
        let mut best_c = 1e9f64;
        for _ in 0..5 {
            let t = Instant::now();
            for (i, o) in inp.chunks_mut(n).zip(out.chunks_mut(n / 2 + 1)) {
                r2c.process(i, o).unwrap();
            }
            best_r = best_r.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            c.process(&mut cbuf);
            best_c = best_c.min(t.elapsed().as_secs_f64());
        }
        println!(
            "  f32: rffts {:.2} ms; cffts {:.2} ms",
            best_r * 1e3,
            best_c * 1e3
        );
    }
}
