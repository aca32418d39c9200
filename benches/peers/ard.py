"""Peer benchmark: sparseinv classic SBL against scikit-learn's ARDRegression (500 x 1000, real).

Usage (from the repository root):  .venv/bin/python benches/peers/ard.py
Generates a sparse regression problem in a temporary directory, runs our side through
`cargo bench -p sparseinv-solvers --bench peer_ard -- <dir>` (best of 3), times ARDRegression
(fit_intercept=False, default tol/max_iter, best of 3) on the same data in the same run, and
prints both times, the ratio and the accuracy (NMSE against the truth) of each.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.linear_model import ARDRegression

M, N, K, NOISE, SEED = 500, 1000, 25, 0.01, 0


def nmse(a, b):
    return float(np.sum((a - b) ** 2) / np.sum(b ** 2))


def main():
    rng = np.random.default_rng(SEED)
    phi = rng.standard_normal((M, N)) / np.sqrt(M)
    x = np.zeros(N)
    supp = rng.choice(N, K, replace=False)
    x[supp] = rng.choice([-1.0, 1.0], K) * (1.0 + rng.random(K))
    y = phi @ x + NOISE * rng.standard_normal(M)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "phi.npy"), phi)
        np.save(os.path.join(d, "y.npy"), y)
        out = subprocess.run(
            ["cargo", "bench", "-p", "sparseinv-solvers", "--bench", "peer_ard", "--", d],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
        ours = {}
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                r["nmse"] = nmse(np.load(os.path.join(d, f"ours_{r['update']}.npy")), x)
                ours[r["update"]] = r
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            ard = ARDRegression(fit_intercept=False).fit(phi, y)
            best = min(best, time.perf_counter() - t)
        peer = {"best_s": best, "n_iter": int(ard.n_iter_), "nmse": nmse(ard.coef_, x),
                "support": int(np.count_nonzero(ard.coef_))}
    print(f"problem: {M} x {N}, {K} nonzeros, noise sd {NOISE}")
    print(f"sklearn ARDRegression: {peer['best_s']*1e3:9.1f} ms  NMSE {peer['nmse']:.3e}  "
          f"support {peer['support']}  iterations {peer['n_iter']}")
    for name, r in ours.items():
        print(f"sparseinv SBL ({name:6}): {r['best_s']*1e3:9.1f} ms  NMSE {r['nmse']:.3e}  "
              f"support {r['support']}  iterations {r['iterations']}  "
              f"speed-up x{peer['best_s']/r['best_s']:.1f}")
    print(json.dumps({"peer": peer, "ours": ours}))


if __name__ == "__main__":
    sys.exit(main())
