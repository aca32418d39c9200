"""Peer comparison: sparseinv Richardson–Lucy and Wiener vs scikit-image and the Rust crate
`deconvolution` (0.2), on the same inputs in the same run.

Inputs (seeded, written to a temporary directory as float64 .npy):
- RL: a 1024x1024 star field on a sky, blurred by a 31x31 Gaussian-core PSF with wings and
  Poisson noise; 30 iterations;
- Wiener: a 2048x2048 image of the same kind, the same PSF, balance 0.01.

Timed (best of --reps):
- scikit-image `restoration.richardson_lucy(image, psf, num_iter=30, clip=False)` on float64
  and on float32 copies of the inputs (scikit-image then computes in float32), and
  `restoration.wiener(image, psf, balance=0.01, clip=False)` (single-threaded: numpy/scipy
  FFTs use one worker);
- ours (`cargo bench -p sparseinv-solvers --bench peer_deconv -- <dir>`) with
  RAYON_NUM_THREADS=1 and 2: RL configured as scikit-image's (same start 0.5, same epsilon, no
  normalisation) in f64 and in f32, our Tikhonov-Laplacian filter (= scikit-image's wiener) and our
  scalar-balance Wiener;
- the `deconvolution` crate (float32), when `benches/peers/deconvolution-crate` has been built
  (`cargo build --release --ignore-rust-version` in that directory): its RL (30 iterations)
  and its scalar-NSR Wiener with periodic boundary, compared with our RL and our
  scalar-balance Wiener, with RAYON_NUM_THREADS=1 and 2.

Results are checked against scikit-image (RL to 1e-5 relative, Wiener to 1e-8; the float32 RL
runs are reported, not checked: both round differently in single precision) and printed
with the ratios (peer time / our time: > 1 means we are faster).

    .venv/bin/python benches/peers/deconv.py [--reps 3] [--rl-n 1024] [--wiener-n 2048]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import skimage  # noqa: E402
from skimage import restoration  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRATE_DIR = os.path.join(ROOT, "benches", "peers", "deconvolution-crate")
CRATE_BIN = os.path.join(CRATE_DIR, "target", "release", "deconvolution-crate-peer")


def psf31():
    yy, xx = np.mgrid[:31, :31] - 15
    r2 = (xx**2 + yy**2).astype(float)
    k = np.exp(-r2 / (2 * 2.5**2)) + 0.02 / (1 + r2 / 16.0) ** 2  # core + Moffat-like wings
    return k / k.sum()


def scene(n, rng, psf):
    from scipy.signal import fftconvolve

    x = np.full((n, n), 20.0) + np.linspace(0, 10, n)[None, :]
    idx = rng.integers(0, n, size=(n * n // 400, 2))
    x[idx[:, 0], idx[:, 1]] += rng.uniform(50, 5000, size=len(idx))
    y = fftconvolve(x, psf, mode="same")
    return rng.poisson(np.clip(y, 0, None)).astype(np.float64)


def best_of(reps, f):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def run_json(cmd, env, cwd):
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rl-n", type=int, default=1024)
    ap.add_argument("--wiener-n", type=int, default=2048)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--balance", type=float, default=0.01)
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    k = psf31()
    y_rl = scene(a.rl_n, rng, k)
    y_w = scene(a.wiener_n, rng, k)

    with tempfile.TemporaryDirectory() as d:
        for name, arr in [("rl_image", y_rl), ("rl_psf", k), ("wiener_image", y_w), ("wiener_psf", k)]:
            np.save(os.path.join(d, f"{name}.npy"), arr)

        sk_rl_t, sk_rl = best_of(a.reps, lambda: restoration.richardson_lucy(y_rl, k, num_iter=a.iters, clip=False))
        y32, k32 = y_rl.astype(np.float32), k.astype(np.float32)
        sk_rl32_t, sk_rl32 = best_of(a.reps, lambda: restoration.richardson_lucy(y32, k32, num_iter=a.iters, clip=False))
        assert sk_rl32.dtype == np.float32
        sk_w_t, sk_w = best_of(a.reps, lambda: restoration.wiener(y_w, k, a.balance, clip=False))

        ours = {}
        for threads in (1, 2):
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), PEER_REPS=str(a.reps),
                       PEER_RL_ITERS=str(a.iters), PEER_BALANCE=str(a.balance))
            cmd = ["cargo", "bench", "-q", "-p", "sparseinv-solvers", "--bench", "peer_deconv", "--", d]
            r = run_json(cmd, env, ROOT)
            r["rl_rel_diff_vs_skimage"] = rel(np.load(os.path.join(d, f"ours_rl_{threads}.npy")), sk_rl)
            r["rl32_rel_diff_vs_skimage"] = rel(np.load(os.path.join(d, f"ours_rl32_{threads}.npy")), sk_rl32)
            r["wiener_rel_diff_vs_skimage"] = rel(np.load(os.path.join(d, f"ours_skwiener_{threads}.npy")), sk_w)
            ours[threads] = r

        crate = {}
        if os.path.exists(CRATE_BIN):
            for threads in (1, 2):
                env = dict(os.environ, RAYON_NUM_THREADS=str(threads), PEER_REPS=str(a.reps),
                           PEER_RL_ITERS=str(a.iters), PEER_WIENER_NSR=str(a.balance))
                c = run_json([CRATE_BIN, d], env, CRATE_DIR)
                ow = np.load(os.path.join(d, f"ours_wiener_{threads}.npy"))
                c["wiener_rel_diff_vs_ours"] = rel(np.load(os.path.join(d, "crate_wiener.npy")), ow)
                orl = np.load(os.path.join(d, f"ours_rl_{threads}.npy"))
                c["rl_rel_diff_vs_ours"] = rel(np.load(os.path.join(d, "crate_rl.npy")), orl)
                crate[threads] = c

    print(f"# deconvolution peers; scikit-image {skimage.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs (times: best of {a.reps})")
    print(f"RL {a.iters} it, {a.rl_n}^2, PSF 31^2: scikit-image {sk_rl_t:.3f} s")
    print(f"RL float32 (same data): scikit-image {sk_rl32_t:.3f} s")
    print(f"Wiener {a.wiener_n}^2 (Laplacian regulariser, balance {a.balance}): scikit-image {sk_w_t:.3f} s")
    for t, r in ours.items():
        print(f"ours, RAYON_NUM_THREADS={t}: RL {r['rl_best_s']:.3f} s -> {sk_rl_t / r['rl_best_s']:.2f}x "
              f"scikit-image (max rel diff {r['rl_rel_diff_vs_skimage']:.1e}); "
              f"Wiener {r['skwiener_best_s']:.3f} s -> {sk_w_t / r['skwiener_best_s']:.2f}x scikit-image "
              f"(max rel diff {r['wiener_rel_diff_vs_skimage']:.1e}); scalar Wiener {r['wiener_best_s']:.3f} s; "
              f"RL float32 {r['rl32_best_s']:.3f} s -> {sk_rl32_t / r['rl32_best_s']:.2f}x scikit-image float32 "
              f"(max rel diff {r['rl32_rel_diff_vs_skimage']:.1e})")
    if not crate:
        print(f"deconvolution crate: not built ({CRATE_BIN} missing; build it with "
              f"`cargo build --release --ignore-rust-version` in {CRATE_DIR})")
    for t, c in crate.items():
        o = ours[t]
        print(f"deconvolution crate 0.2, RAYON_NUM_THREADS={t}: RL {c['rl_best_s']:.3f} s -> ours "
              f"{c['rl_best_s'] / o['rl_best_s']:.2f}x faster (results differ by {c['rl_rel_diff_vs_ours']:.1e}: "
              f"float32, its own start/normalisation); Wiener {c['wiener_best_s']:.3f} s -> ours "
              f"{c['wiener_best_s'] / o['wiener_best_s']:.2f}x faster (max rel diff {c['wiener_rel_diff_vs_ours']:.1e})")
    print(json.dumps({"skimage": {"rl_best_s": sk_rl_t, "rl32_best_s": sk_rl32_t, "wiener_best_s": sk_w_t}, "ours": ours, "crate": crate}))
    bad = [t for t, r in ours.items() if r["rl_rel_diff_vs_skimage"] > 1e-5 or r["wiener_rel_diff_vs_skimage"] > 1e-8]
    if bad:
        sys.exit(f"results differ from scikit-image (threads {bad})")


if __name__ == "__main__":
    main()
