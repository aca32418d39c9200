#!/usr/bin/env python3
"""Peer benchmark: self-calibration from repeated measurements (Ling & Strohmer, model (a)),
sparseinv (Rust) vs numpy/scipy doing the same linear algebra, in one run.

    .venv/bin/python benches/peers/selfcal.py [--m 1536] [--n 512] [--p 4] [--tol 1e-10]

Generates y_l = diag(d) A_l x (l = 1..p, Gaussian A_l and x, gains d = 1 + U[-0.5, 0.5]) into
a temporary directory, runs our side with
`cargo bench -p sparseinv-solvers --bench peer_selfcal -- DIR`, then times scipy on the same
inputs with the same algorithms:
  - LSQ: scipy.sparse.linalg.lsqr on the augmented operator [A0; w^T] z = (0, c), with
    A0 z = [diag(y_l) s - A_l x]_l, w = (1_m, 0) and c = m (the constraint sum(s) = m);
  - spectral: inverse iteration v <- argmin ||A0 v|| s.t. <v_t, v> = 1, each step an lsqr solve
    on A0 P_t (P_t the projector onto v_t's orthogonal complement), until 1 - |<v, v_t>| <= 1e-10.
numpy's matrix products use its BLAS (the matrix-vector products dominate both sides).
Prints both times (best of 3), iteration counts, joint errors up to scale and the ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
from scipy.sparse.linalg import LinearOperator, lsqr


def joint_error(est, truth):
    alpha = np.vdot(est, truth) / np.vdot(est, est)
    return np.linalg.norm(alpha * est - truth) / np.linalg.norm(truth)


def make_ops(y, A):
    p, m = y.shape
    n = A.shape[2]
    As = A.reshape(p * m, n)
    yf = y.reshape(p * m)
    N = m + n

    def a0(z):
        s, x = z[:m], z[m:]
        return yf * np.tile(s, p) - As @ x

    def a0t(r):
        out = np.empty(N)
        out[:m] = (yf * r).reshape(p, m).sum(axis=0)
        out[m:] = -(As.T @ r)
        return out

    return a0, a0t, N, p * m


def scipy_lsq(y, A, tol):
    a0, a0t, N, R = make_ops(y, A)
    m = y.shape[1]
    w = np.zeros(N)
    w[:m] = 1.0
    op = LinearOperator((R + 1, N), matvec=lambda z: np.append(a0(z), w @ z),
                        rmatvec=lambda r: a0t(r[:R]) + w * r[R], dtype=np.float64)
    b = np.zeros(R + 1)
    b[R] = m
    res = lsqr(op, b, atol=tol, btol=tol, iter_lim=20000)
    return res[0], res[2]


def scipy_spectral(y, A, tol, outer_tol=1e-10, max_outer=10):
    a0, a0t, N, R = make_ops(y, A)
    m = y.shape[1]
    v = np.zeros(N)
    v[:m] = 1.0
    v /= np.linalg.norm(v)
    its = 0
    outer = 0
    for _ in range(max_outer):
        outer += 1
        q = v.copy()
        proj = lambda u, q=q: u - q * (q @ u)
        op = LinearOperator((R, N), matvec=lambda u: a0(proj(u)),
                            rmatvec=lambda r: proj(a0t(r)), dtype=np.float64)
        res = lsqr(op, -a0(v), atol=tol, btol=tol, iter_lim=20000)
        its += res[2]
        vn = v + proj(res[0])
        vn /= np.linalg.norm(vn)
        c = abs(v @ vn)
        v = vn
        if 1.0 - c <= outer_tol:
            break
    # same normalisation as the LSQ constraint
    v *= m / v[:m].sum()
    return v, its, outer


def best_of(f, k=3):
    best = np.inf
    out = None
    for _ in range(k):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=1536)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--p", type=int, default=4)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    m, n, p = a.m, a.n, a.p
    A = rng.standard_normal((p, m, n))
    x = rng.standard_normal(n)
    d = 1.0 + rng.uniform(-0.5, 0.5, m)
    y = d[None, :] * np.einsum("lij,j->li", A, x)
    s = 1.0 / d
    truth = np.concatenate([s, x])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr in [("y", y), ("A", A), ("s", s), ("x", x)]:
            np.save(os.path.join(tmp, f"{name}.npy"), arr)
        env = dict(os.environ, SELFCAL_TOL=str(a.tol))
        proc = subprocess.run(
            ["cargo", "bench", "-p", "sparseinv-solvers", "--bench", "peer_selfcal", "--", tmp],
            cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            sys.exit("cargo bench failed")
        ours = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
    t_lsq, (z, it_lsq) = best_of(lambda: scipy_lsq(y, A, a.tol))
    t_sp, (v, it_sp, outer) = best_of(lambda: scipy_spectral(y, A, a.tol))
    peer = {
        "lsq_seconds": t_lsq, "lsq_iterations": int(it_lsq), "lsq_error": joint_error(z, truth),
        "spectral_seconds": t_sp, "spectral_iterations": int(it_sp), "spectral_outer": outer,
        "spectral_error": joint_error(v, truth),
    }
    print(f"model (a) repeated: m = {m}, n = {n}, p = {p}: {m + n} unknowns, {p * m} measurements; "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    print(json.dumps({"sparseinv": ours, "scipy": peer}, indent=1))
    for k in ["lsq", "spectral"]:
        r = peer[f"{k}_seconds"] / ours[f"{k}_seconds"]
        print(f"{k:>9}: sparseinv {ours[k + '_seconds'] * 1e3:8.1f} ms ({int(ours[k + '_iterations'])} its, "
              f"err {ours[k + '_error']:.1e}) | scipy {peer[k + '_seconds'] * 1e3:8.1f} ms "
              f"({peer[k + '_iterations']} its, err {peer[k + '_error']:.1e}) | scipy/sparseinv = {r:.2f}x")


if __name__ == "__main__":
    main()
