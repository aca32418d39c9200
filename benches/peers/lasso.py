"""Peer benchmark: sparseinv's Lasso solvers against scikit-learn's Lasso (coordinate descent).

Ours: the working-set solver (proximal::lasso) with FISTA or coordinate descent on the working
set, each with Gap-Safe screening (the default) and without, and optionally plain FISTA on the
whole dictionary; each runs until it reaches sklearn's objective.

Problem: a seeded 2000 x 10000 Gaussian A (entries N(0, 1/m)), a 50-sparse x, y = A x + noise,
lam = f * ||A^T y||_inf for each f in --lam-frac (default 0.1 and 0.01, i.e. lam_max/10 and the
harder, less sparse lam_max/100), objective F(x) = 1/2 ||A x - y||^2 + lam ||x||_1.
scikit-learn minimises F / m with alpha = lam / m (fit_intercept=False, tol small; its own
coordinate descent does Gap-Safe screening too, from version 1.8).

For each lam, in the same run:
1. time scikit-learn (best of --repeats, spread printed) and compute its objective F_sk in our
   scaling;
2. write A, y, [lam, F_sk] to a temporary directory;
3. run `cargo bench -p sparseinv-solvers --bench peer_lasso -- <dir>`, which times our solvers
   until their objective reaches F_sk (best of 3, min and max printed) and one full A^T y
   product (the floor's unit, see below);
4. print both times, the ratio sklearn / ours, iterations, screened columns and the floor
   ratios.

Floor: the working-set solver must at least make one pass A_S^T r over the surviving columns S
per outer iteration, plus the set-up pass over all of A. With t_aty the time of one full
A^T y, `over_floor_k` = ours / ((outer + 1) t_aty) and `over_floor_active` =
ours / (t_aty (n + sum_t c_t) / n), c_t the columns read in outer iteration t (the surviving
columns less those whose correlation bound proves them feasible): each pass is charged only
for the columns it reads.

Run from the repository root:
  .venv/bin/python benches/peers/lasso.py [--lam-frac 0.1,0.01] [--tol 1e-8] [--fista]
(set CARGO_TARGET_DIR to choose the build directory).
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

VARIANTS = ("ws_fista", "ws_fista_noscreen", "ws_cd", "ws_cd_noscreen")


def run_one(A, Af, y, frac, args):
    m, n = A.shape
    lam = frac * np.max(np.abs(A.T @ y))
    times = []
    for _ in range(args.repeats):
        model = Lasso(alpha=lam / m, fit_intercept=False, tol=args.tol, max_iter=100_000)
        t = time.perf_counter()
        model.fit(Af, y)
        times.append(time.perf_counter() - t)
    best = min(times)
    w = model.coef_
    f_sk = 0.5 * np.sum((A @ w - y) ** 2) + lam * np.sum(np.abs(w))

    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "A.npy"), A)
        np.save(os.path.join(d, "y.npy"), y)
        np.save(os.path.join(d, "params.npy"), np.array([lam, f_sk]))
        cmd = ["cargo", "bench", "-q", "-p", "sparseinv-solvers", "--bench", "peer_lasso", "--", d]
        if not args.fista:
            cmd.append("--no-fista")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    ours = json.loads(line)
    result = {
        "problem": f"{m}x{n}, {args.k}-sparse, lam = {frac} max|A^T y| = {lam:.6g}",
        "sklearn_seconds": best,
        "sklearn_seconds_median": float(np.median(times)),
        "sklearn_seconds_max": max(times),
        "sklearn_iterations": int(model.n_iter_),
        "sklearn_objective": f_sk,
        "sklearn_tol": args.tol,
        "sklearn_nnz": int(np.count_nonzero(w)),
        "aty_seconds": ours["aty_seconds"],
        "threads": ours["threads"],
    }
    if args.fista:
        for key in ("seconds", "seconds_max", "iterations", "objective", "stop_reason", "nnz"):
            result[f"fista_{key}"] = ours[f"fista_{key}"]
        result["speedup_fista_over_sklearn"] = best / ours["fista_seconds"]
    for name in VARIANTS:
        for key in ("seconds", "seconds_max", "outer", "inner", "objective", "stop_reason",
                    "nnz", "screened", "ws_sizes", "columns_read", "rel_gaps", "over_floor_k",
                    "over_floor_active"):
            result[f"{name}_{key}"] = ours[f"{name}_{key}"]
        result[f"speedup_{name}_over_sklearn"] = best / ours[f"{name}_seconds"]
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--lam-frac", default="0.1,0.01",
                    help="comma-separated fractions of lam_max = ||A^T y||_inf")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fista", action="store_true",
                    help="also time plain FISTA on the whole dictionary (slow at small lam)")
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    m, n, k = args.m, args.n, args.k
    A = rng.standard_normal((m, n)) / np.sqrt(m)
    x = np.zeros(n)
    x[rng.choice(n, k, replace=False)] = rng.standard_normal(k)
    y = A @ x + 0.01 * rng.standard_normal(m)
    Af = np.asfortranarray(A)  # sklearn's preferred layout: no copy inside fit

    results = [run_one(A, Af, y, float(f), args) for f in args.lam_frac.split(",")]
    print(json.dumps(results, indent=2))
    print("\nsummary (best of %d; sklearn/ours > 1 means ours is faster)" % args.repeats)
    for r in results:
        print(r["problem"])
        print("  sklearn      %8.3f s  (max %.3f)  %d epochs  nnz %d" % (
            r["sklearn_seconds"], r["sklearn_seconds_max"], r["sklearn_iterations"],
            r["sklearn_nnz"]))
        if args.fista:
            print("  fista        %8.3f s  (max %.3f)  sklearn/ours %.2f" % (
                r["fista_seconds"], r["fista_seconds_max"], r["speedup_fista_over_sklearn"]))
        for v in VARIANTS:
            print("  %-17s %8.3f s  (max %.3f)  sklearn/ours %5.2f  outer %d  inner %d  "
                  "screened %d  nnz %d  ours/floor_k %.2f  ours/floor_active %.2f" % (
                      v, r[f"{v}_seconds"], r[f"{v}_seconds_max"],
                      r[f"speedup_{v}_over_sklearn"], r[f"{v}_outer"], r[f"{v}_inner"],
                      r[f"{v}_screened"], r[f"{v}_nnz"], r[f"{v}_over_floor_k"],
                      r[f"{v}_over_floor_active"]))
        print("  one full A^T y: %.4f s" % r["aty_seconds"])


if __name__ == "__main__":
    sys.exit(main())
