//! Peak memory of tiled versus untiled processing (not a timing benchmark).
//!
//! `cargo bench --bench tiling_memory` runs itself twice as a child process, once untiled and
//! once tiled, on a 4096² `f64` image (128 MiB) with a processing function that, like an
//! iterative deconvolution, keeps 6 work arrays the size of its input. Each child reports its
//! peak resident memory (`VmHWM` from /proc/self/status) above the memory held after the input
//! was created. Linux only.

use ndarray::{Array2, ArrayView2};
use sparseinv::tiling::{process_tiled, TileParams};

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 3×3 mean filter computed through 6 full-size work arrays (stand-in for a solver's state).
fn work(t: ArrayView2<'_, f64>) -> Array2<f64> {
    let (ny, nx) = t.dim();
    let mut bufs: Vec<Array2<f64>> = (0..6).map(|k| t.mapv(|v| v + k as f64)).collect();
    let mut out = Array2::<f64>::zeros((ny, nx));
    for y in 0..ny {
        for x in 0..nx {
            let mut acc = 0.0;
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(ny) {
                for xx in x.saturating_sub(1)..(x + 2).min(nx) {
                    acc += t[[yy, xx]];
                    n += 1.0;
                }
            }
            out[[y, x]] = acc / n;
        }
    }
    for b in bufs.iter_mut() {
        b[[0, 0]] = out[[0, 0]];
    }
    std::hint::black_box(&bufs);
    out
}

fn child(mode: &str) {
    let n = 4096;
    let img = Array2::from_shape_fn((n, n), |(y, x)| ((y * 31 + x * 17) % 1000) as f64);
    let base = vm_rss_kib();
    let out = if mode == "tiled" {
        let p = TileParams {
            tile: 512,
            halo: 16,
            blend: 8,
            max_in_flight: 2,
        };
        process_tiled(img.view(), &p, |t| Ok::<_, ()>(work(t))).unwrap()
    } else {
        work(img.view())
    };
    std::hint::black_box(&out);
    let peak = vm_hwm_kib();
    println!(
        "{{\"mode\": \"{mode}\", \"image_mib\": {}, \"peak_above_input_mib\": {:.1}, \"peak_total_mib\": {:.1}}}",
        n * n * 8 / (1 << 20),
        (peak.saturating_sub(base)) as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}

fn main() {
    if let Ok(mode) = std::env::var("SPARSEINV_TILING_MEMORY_CHILD") {
        child(&mode);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    for mode in ["untiled", "tiled"] {
        let out = std::process::Command::new(&exe)
            .env("SPARSEINV_TILING_MEMORY_CHILD", mode)
            .output()
            .expect("run child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
