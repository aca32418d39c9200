"""Peer comparison: total-variation deconvolution by our PDHG vs PyLops `Convolve2D` +
PyProximal `PrimalDual`, on the same problem and data, in the same run.

Problem (seeded, float64): a 1024x1024 image (discs and a gradient on a sky), blurred by a
9x9 Gaussian PSF (same-mode convolution) with Gaussian noise,

    min_x ½‖k ⊛ x − y‖² + λ Σ_p ‖(∇x)_p‖₂   s.t. x ≥ 0,

written for both as Chambolle–Pock with K = [k ⊛ ·; ∇] (∇ forward differences, Neumann),
f = ι₊, g = ½‖· − y‖² ⊕ λ l2,1, steps τ = σ = 0.99/√(1 + 8) (‖k ⊛‖ ≤ 1 for a unit-sum
non-negative kernel, ‖∇‖² ≤ 8), 200 iterations from zero:
- PyProximal: `PrimalDual(Box(lower=0), VStack([L2(b=y), L21(ndim=2, sigma=λ)]), K, tau, mu,
  theta=1, gfirst=False)` with K = pylops.VStack([Convolve2D(offset=centre), Gradient(forward,
  edge=False)]) — the same iteration as ours (x first, then the dual at 2x̃ − x);
- ours: `cargo bench -p sparseinv-solvers --bench peer_tv -- <dir>` (solvers/benches/peer_tv.rs),
  with RAYON_NUM_THREADS=1 and 2.

Both final objectives are evaluated here by one formula on each solution; they must agree to
1e-9 relative (the condition for the time ratio to mean anything). Times are best of --reps.

    python3 -m venv .venv && .venv/bin/pip install pyproximal pylops numpy scipy
    .venv/bin/python benches/peers/tv.py [--reps 3] [--n 1024] [--iters 200]
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
import pylops  # noqa: E402
import pyproximal  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def psf9():
    yy, xx = np.mgrid[:9, :9] - 4
    k = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))
    return k / k.sum()


def scene(n, rng, k):
    yy, xx = np.mgrid[:n, :n]
    x = 1.0 + 0.5 * xx / n
    for _ in range(40):
        cy, cx, r = rng.integers(0, n), rng.integers(0, n), rng.integers(5, n // 10)
        x[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += rng.uniform(0.5, 3.0)
    return fftconvolve(x, k, mode="same") + 0.05 * rng.standard_normal((n, n))


def objective(x, y, k, lam):
    r = fftconvolve(x, k, mode="same") - y
    gy = np.zeros_like(x)
    gx = np.zeros_like(x)
    gy[:-1, :] = x[1:, :] - x[:-1, :]
    gx[:, :-1] = x[:, 1:] - x[:, :-1]
    return 0.5 * float(np.sum(r * r)) + lam * float(np.sum(np.sqrt(gy * gy + gx * gx)))


def run_json(cmd, env, cwd):
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--lam", type=float, default=0.02)
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    k = psf9()
    y = scene(a.n, rng, k)
    n = a.n
    tau = sigma = 0.99 / 3.0

    conv = pylops.signalprocessing.Convolve2D((n, n), h=k, offset=(4, 4), dtype="float64")
    grad = pylops.Gradient(dims=(n, n), kind="forward", edge=False, dtype="float64")
    kop = pylops.VStack([conv, grad])
    proxf = pyproximal.Box(lower=0.0)
    proxg = pyproximal.VStack([pyproximal.L2(b=y.ravel()), pyproximal.L21(ndim=2, sigma=a.lam)],
                              nn=[n * n, 2 * n * n])

    def peer():
        return pyproximal.optimization.primaldual.PrimalDual(
            proxf, proxg, kop, x0=np.zeros(n * n), tau=tau, mu=sigma, theta=1.0,
            niter=a.iters, gfirst=False).reshape(n, n)

    times = []
    for _ in range(a.reps):
        t = time.perf_counter()
        xp = peer()
        times.append(time.perf_counter() - t)
    peer_t = min(times)
    peer_obj = objective(xp, y, k, a.lam)

    ours = {}
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "y.npy"), y)
        np.save(os.path.join(d, "psf.npy"), k)
        np.save(os.path.join(d, "params.npy"), np.array([a.lam, tau, sigma, a.iters], dtype=np.float64))
        for threads in (1, 2):
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), PEER_REPS=str(a.reps))
            cmd = ["cargo", "bench", "-q", "-p", "sparseinv-solvers", "--bench", "peer_tv", "--", d]
            r = run_json(cmd, env, ROOT)
            xo = np.load(os.path.join(d, "ours_x.npy"))
            r["objective_here"] = objective(xo, y, k, a.lam)
            r["max_abs_diff_vs_peer"] = float(np.max(np.abs(xo - xp)))
            ours[threads] = r

    print(f"# TV deconvolution {n}^2, PSF 9x9, {a.iters} PDHG iterations; pyproximal "
          f"{pyproximal.__version__}, pylops {pylops.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs (best of {a.reps})")
    print(f"PyLops Convolve2D + PyProximal PrimalDual: {peer_t:.3f} s, objective {peer_obj:.10e}")
    for t, r in ours.items():
        print(f"ours, RAYON_NUM_THREADS={t}: {r['best_s']:.3f} s -> {peer_t / r['best_s']:.2f}x; objective "
              f"{r['objective_here']:.10e} (solver: {r['objective']:.10e}); max |x_ours − x_peer| "
              f"{r['max_abs_diff_vs_peer']:.1e}")
    print(json.dumps({"peer": {"best_s": peer_t, "objective": peer_obj}, "ours": ours}))
    bad = [t for t, r in ours.items() if abs(r["objective_here"] - peer_obj) > 1e-9 * abs(peer_obj)]
    if bad:
        sys.exit(f"objectives differ from the peer's (threads {bad})")


if __name__ == "__main__":
    main()
