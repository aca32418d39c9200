"""Peer comparison: sparseinv Conv2d (Same mode) vs scipy.signal.fftconvolve(mode='same').

Generates a 2048x2048 float64 image and a 63x63 kernel into a temporary directory, runs our
side (`cargo bench -p sparseinv-solvers --bench peer_conv -- <dir>`) single-threaded
(RAYON_NUM_THREADS=1) and with 2 threads, times scipy single-threaded (best of N) on the
same inputs, checks that the results agree, and prints the times and ratios.

    .venv/bin/python benches/peers/conv.py [--n 2048] [--k 63] [--reps 7]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# Single-threaded peer: pin BLAS/OpenMP pools before numpy is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import signal  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ours(dirname, threads, reps):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), PEER_REPS=str(reps))
    cmd = ["cargo", "bench", "-q", "-p", "sparseinv-solvers", "--bench", "peer_conv", "--", dirname]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--k", type=int, default=63)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    image = rng.standard_normal((a.n, a.n))
    yy, xx = np.mgrid[: a.k, : a.k] - a.k // 2
    kernel = np.exp(-(xx**2 + yy**2) / (2 * (a.k / 6.0) ** 2)) * (1 + 0.1 * rng.standard_normal((a.k, a.k)))
    kernel /= kernel.sum()

    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "image.npy"), image)
        np.save(os.path.join(d, "kernel.npy"), kernel)

        times = []
        ref = None
        for _ in range(a.reps):
            t = time.perf_counter()
            ref = signal.fftconvolve(image, kernel, mode="same")  # scipy.fft workers=1 by default
            times.append(time.perf_counter() - t)
        scipy_best = min(times)

        results = {}
        for threads in (1, 2):
            r = ours(d, threads, a.reps)
            y = np.load(os.path.join(d, f"ours_{r['threads']}.npy"))
            # odd kernel: our centre k//2 equals scipy's (k-1)//2
            err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
            r["max_rel_diff_vs_scipy"] = err
            results[threads] = r

    print(f"# Conv2d Same {a.n}x{a.n} float64, kernel {a.k}x{a.k}; scipy {scipy.__version__}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"scipy.signal.fftconvolve(mode='same'), 1 thread: best {scipy_best * 1e3:.1f} ms")
    for threads, r in results.items():
        ratio = scipy_best / r["apply_best_s"]
        print(f"sparseinv Conv2d apply, RAYON_NUM_THREADS={threads}: best {r['apply_best_s'] * 1e3:.1f} ms "
              f"(median {r['apply_median_s'] * 1e3:.1f}, adjoint {r['adjoint_best_s'] * 1e3:.1f}, "
              f"construction {r['build_s'] * 1e3:.1f} ms, {'blocked in 256/512-px FFT tiles' if r.get('blocked') else 'grid ' + str(r['fft_grid'])}) "
              f"-> {ratio:.2f}x scipy; max rel diff {r['max_rel_diff_vs_scipy']:.1e}")
    print(json.dumps({"scipy_best_s": scipy_best, "ours": results}))
    if any(r["max_rel_diff_vs_scipy"] > 1e-10 for r in results.values()):
        sys.exit("results differ from scipy")


if __name__ == "__main__":
    main()
