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
Prints both times (best of 3, with the spread), iteration counts, joint errors up to scale,
the ratios and the load average before and after.

Stopping rules. Ours stops LSQR when min(||r||/||b||, ||A^T r||/(||A||_F ||r||)) <= tol.
scipy's lsqr(atol, btol) stops when ||r||/||b|| <= btol + atol ||A||_F ||x|| / ||b||, or when
||A^T r||/(||A||_F ||r||) <= atol: with atol = btol = tol its first test is looser by the factor
1 + ||A||_F ||x|| / ||b|| (~80 here), hence fewer iterations and a larger error. The run
`scipy_same_rule` (atol = 0, btol = tol) applies our rule (the first test decides on these
consistent systems), so its iterations and errors compare like with like.

Ours eliminates the calibration s exactly (variable projection: for a fixed x the best s is
diagonal least squares, closed form) and runs LSQR on the signal alone, a system about as well
conditioned as A itself: far fewer iterations than the augmented system scipy is given, each
with two products (A, then A^T). The spectral method's inner solves are reduced the same way.

Where the time goes: both sides also time the two products of one LSQR iteration alone
(numpy: As @ v and As.T @ u; ours: the two calls and the one fused call the unreduced LSQR
makes), and the floor is the bytes of the stacked A read per iteration (2 reads: two
products) times the iterations over the best bandwidth measured for a product. The cargo build honours
CARGO_TARGET_DIR (cargo reads it from the environment).
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


def scipy_lsq(y, A, tol, atol=None):
    a0, a0t, N, R = make_ops(y, A)
    m = y.shape[1]
    w = np.zeros(N)
    w[:m] = 1.0
    op = LinearOperator((R + 1, N), matvec=lambda z: np.append(a0(z), w @ z),
                        rmatvec=lambda r: a0t(r[:R]) + w * r[R], dtype=np.float64)
    b = np.zeros(R + 1)
    b[R] = m
    res = lsqr(op, b, atol=tol if atol is None else atol, btol=tol, iter_lim=20000)
    return res[0], res[2]


def scipy_spectral(y, A, tol, outer_tol=1e-10, max_outer=10, atol=None):
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
        res = lsqr(op, -a0(v), atol=tol if atol is None else atol, btol=tol, iter_lim=20000)
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
    """(best time, spread = worst - best, last output) of k runs."""
    times = []
    out = None
    for _ in range(k):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), max(times) - min(times), out


def numpy_products(A, reps=100, k=3):
    """Best time per call of As @ v + As.T @ u (the two products of one LSQR iteration)."""
    p, m, n = A.shape
    As = A.reshape(p * m, n)
    v = np.sin(np.arange(n) * 0.37)
    u = np.cos(np.arange(p * m) * 0.11)
    best = np.inf
    for _ in range(k):
        t = time.perf_counter()
        for _ in range(reps):
            As @ v
            As.T @ u
        best = min(best, (time.perf_counter() - t) / reps)
    return best


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
    load_start = os.getloadavg()
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
    load_ours = os.getloadavg()
    t_lsq, d_lsq, (z, it_lsq) = best_of(lambda: scipy_lsq(y, A, a.tol))
    t_sp, d_sp, (v, it_sp, outer) = best_of(lambda: scipy_spectral(y, A, a.tol))
    t_lsq0, d_lsq0, (z0, it_lsq0) = best_of(lambda: scipy_lsq(y, A, a.tol, atol=0.0))
    t_sp0, d_sp0, (v0, it_sp0, outer0) = best_of(lambda: scipy_spectral(y, A, a.tol, atol=0.0))
    t_prod = numpy_products(A)
    load_end = os.getloadavg()
    peer = {
        "lsq_seconds": t_lsq, "lsq_spread": d_lsq, "lsq_iterations": int(it_lsq),
        "lsq_error": joint_error(z, truth),
        "spectral_seconds": t_sp, "spectral_spread": d_sp, "spectral_iterations": int(it_sp),
        "spectral_outer": outer, "spectral_error": joint_error(v, truth),
        "two_products_seconds": t_prod,
    }
    same = {
        "lsq_seconds": t_lsq0, "lsq_spread": d_lsq0, "lsq_iterations": int(it_lsq0),
        "lsq_error": joint_error(z0, truth),
        "spectral_seconds": t_sp0, "spectral_spread": d_sp0, "spectral_iterations": int(it_sp0),
        "spectral_outer": outer0, "spectral_error": joint_error(v0, truth),
    }
    print(f"model (a) repeated: m = {m}, n = {n}, p = {p}: {m + n} unknowns, {p * m} measurements; "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"load average: start {load_start[0]:.2f}, after ours {load_ours[0]:.2f}, "
          f"end {load_end[0]:.2f} (1 min)")
    print(json.dumps({"sparseinv": ours, "scipy": peer, "scipy_same_rule": same}, indent=1))
    for label, pr in [("scipy", peer), ("scipy, same rule", same)]:
        print(f"vs {label}:")
        for k in ["lsq", "spectral"]:
            r = pr[f"{k}_seconds"] / ours[f"{k}_seconds"]
            print(f"{k:>9}: sparseinv {ours[k + '_seconds'] * 1e3:7.1f} ms "
                  f"(+{ours[k + '_spread'] * 1e3:.0f}, {int(ours[k + '_iterations'])} its, "
                  f"err {ours[k + '_error']:.1e}) | {label} {pr[k + '_seconds'] * 1e3:7.1f} ms "
                  f"(+{pr[k + '_spread'] * 1e3:.0f}, {pr[k + '_iterations']} its, "
                  f"err {pr[k + '_error']:.1e}) | ratio {r:.2f}x")
    a_bytes = A.nbytes
    bw = max(2 * a_bytes / t_prod, ours["fused_products_gbps"] * 1e9,
             ours["two_products_gbps"] * 1e9)
    print(f"products of one iteration: numpy two {t_prod * 1e3:.2f} ms "
          f"({2 * a_bytes / t_prod / 1e9:.1f} GB/s), ours two "
          f"{ours['two_products_seconds'] * 1e3:.2f} ms ({ours['two_products_gbps']:.1f} GB/s), "
          f"ours fused {ours['fused_products_seconds'] * 1e3:.2f} ms "
          f"({ours['fused_products_gbps']:.1f} GB/s); A = {a_bytes / 1e6:.1f} MB")
    # ours solves the reduced systems (calibration eliminated): one product with A and one
    # with A^T per LSQR iteration (2 reads, plus one more A x per LSQ solve / spectral step)
    for k in ["lsq", "spectral"]:
        f_ours = ours[k + "_iterations"] * 2 * a_bytes / bw
        f_peer = peer[k + "_iterations"] * 2 * a_bytes / bw
        print(f"{k:>9} floor at {bw / 1e9:.1f} GB/s: sparseinv {f_ours * 1e3:.0f} ms "
              f"(2 reads of A per iteration; measured {ours[k + '_seconds'] / f_ours:.1f}x it), "
              f"scipy {f_peer * 1e3:.0f} ms (2 reads; measured {peer[k + '_seconds'] / f_peer:.1f}x it)")


if __name__ == "__main__":
    main()
