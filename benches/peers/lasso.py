"""Peer benchmark: sparseinv's Lasso solvers against scikit-learn's Lasso (coordinate descent).

Ours: plain FISTA on the whole dictionary, and the working-set solver (proximal::lasso) with
FISTA or coordinate descent on the working set; each runs until it reaches sklearn's objective.

Problem: a seeded 2000 x 10000 Gaussian A (entries N(0, 1/m)), a 50-sparse x, y = A x + noise,
lam = 0.1 ||A^T y||_inf, objective F(x) = 1/2 ||A x - y||^2 + lam ||x||_1.
scikit-learn minimises F / m with alpha = lam / m (fit_intercept=False, tol small).

1. time scikit-learn (best of 3) and compute its objective F_sk in our scaling;
2. write A, y, [lam, F_sk] to a temporary directory;
3. run `cargo bench -p sparseinv-solvers --bench peer_lasso -- <dir>`, which times FISTA until
   its objective reaches F_sk (best of 3);
4. print both times and the ratio.

Run from the repository root: .venv/bin/python benches/peers/lasso.py [--tol 1e-8]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.linear_model import Lasso


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    m, n, k = args.m, args.n, args.k
    A = rng.standard_normal((m, n)) / np.sqrt(m)
    x = np.zeros(n)
    x[rng.choice(n, k, replace=False)] = rng.standard_normal(k)
    y = A @ x + 0.01 * rng.standard_normal(m)
    lam = 0.1 * np.max(np.abs(A.T @ y))
    Af = np.asfortranarray(A)  # sklearn's preferred layout: no copy inside fit

    best = np.inf
    for _ in range(args.repeats):
        model = Lasso(alpha=lam / m, fit_intercept=False, tol=args.tol, max_iter=100_000)
        t = time.perf_counter()
        model.fit(Af, y)
        best = min(best, time.perf_counter() - t)
    w = model.coef_
    f_sk = 0.5 * np.sum((A @ w - y) ** 2) + lam * np.sum(np.abs(w))

    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "A.npy"), A)
        np.save(os.path.join(d, "y.npy"), y)
        np.save(os.path.join(d, "params.npy"), np.array([lam, f_sk]))
        out = subprocess.run(
            ["cargo", "bench", "-q", "-p", "sparseinv-solvers", "--bench", "peer_lasso", "--", d],
            check=True, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    ours = json.loads(line)
    result = {
        "problem": f"{m}x{n}, {k}-sparse, lam = 0.1 max|A^T y|",
        "sklearn_seconds": best,
        "sklearn_iterations": int(model.n_iter_),
        "sklearn_objective": f_sk,
        "sklearn_tol": args.tol,
        "sklearn_nnz": int(np.count_nonzero(w)),
        "fista_seconds": ours["seconds"],
        "fista_iterations": ours["iterations"],
        "fista_objective": ours["objective"],
        "fista_stop_reason": ours["stop_reason"],
        "fista_nnz": ours["nnz"],
        "ratio_fista_over_sklearn": ours["seconds"] / best,
    }
    for name in ("ws_fista", "ws_cd"):
        for key in ("seconds", "outer", "inner", "objective", "stop_reason", "nnz", "ws_sizes"):
            result[f"{name}_{key}"] = ours[f"{name}_{key}"]
        result[f"speedup_{name}_over_sklearn"] = best / ours[f"{name}_seconds"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
