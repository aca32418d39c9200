#!/usr/bin/env python3
"""Kronecker-SBL reference problems and an independent EM reference, numpy only.

Usage:
    .venv/bin/python testdata/ksbl/gen_ksbl_ref.py   # (re)write testdata/ksbl/*.npy + ref.json

Problems (all seeded, `numpy.random.default_rng(SEED + case index)`):
    y = (A1 ⊗ A2) x + n,  A1: 12 × 16, A2: 10 × 14  (M = 120 measurements, N = 224 atoms).
    The flat index of x is i1 · 14 + i2 (first factor slowest, numpy.kron's convention and that
    of sparseinv's `Kronecker` operator).
    * dictionaries: i.i.d. N(0, 1) entries (real) or circular complex Gaussian
      (N(0, 1/2) + i N(0, 1/2)), every column normalised to unit Euclidean norm;
    * "kron" cases: x = x1 ⊗ x2 with 3 non-zeros in x1 and 2 in x2 (6 non-zeros, a Kronecker
      support); "generic" cases: 6 non-zeros at uniformly random flat positions (in general not
      a Cartesian product of mode supports). Non-zero values: real s·(1 + |g|) with a random
      sign s and g ~ N(0, 1); complex e^{iφ}(1 + |g|) with a uniform phase φ;
    * noise: i.i.d. N(0, σ²) (real) or circular CN(0, σ²) (complex) with
      σ² = ‖(A1 ⊗ A2) x‖² / M / 10^{SNR/10}, SNR 20 and 30 dB;
    * 8 cases: {real, complex} × {kron, generic} × {20, 30} dB.

Reference ("ref", the number the Rust test compares against): the plain, unstructured EM of
classic SBL (Tipping 2001; Wipf & Rao 2004) on the explicitly formed dictionary A = A1 ⊗ A2
with one hyperparameter per atom (the full γ ∈ R^224, *not* Kronecker-constrained):
    E-step  Σ_y = σ² I + A_S Γ_S A_Sᴴ,  μ_S = Γ_S A_Sᴴ Σ_y⁻¹ y,
            Σ_nn = γ_n − γ_n² a_nᴴ Σ_y⁻¹ a_n            (S: active atoms),
    M-step  γ_n ← |μ_n|² + Σ_nn,
            σ² ← (‖y − A_S μ_S‖² + σ² Σ_{n∈S} (1 − Σ_nn/γ_n)) / M   (σ² learned),
    start   γ_n = ‖y‖² / ‖A‖_F², σ² = 0.1 ‖y‖² / M,
    pruning after every M-step: atoms with γ_n < 1e-3 · max γ are removed for good (as in the
            classic-SBL baseline of He & Joseph's published code),
    stop    when ‖γ_{k+1} − γ_k‖ / ‖γ_{k+1}‖ ≤ 1e-6 or after 3000 iterations,
    output  the posterior mean computed once more from the final (γ, σ²).
This is written from the equations above, independently of the Rust code (Cholesky-free
`numpy.linalg.solve` in measurement space).

Also recorded (information only, not used as the test's threshold): "kem", the
Kronecker-constrained EM, i.e. the same E-step with γ = γ1 ⊗ γ2 and the exact M-step
argmin_{γ1, γ2} Σ_n (a_n / γ_n + log γ_n), a_n = |μ_n|² + Σ_nn, solved by alternating the
closed-form factor updates γ1[i] = mean_j a[i, j] / γ2[j], γ2[j] = mean_i a[i, j] / γ1[i] until
the relative change of γ1 ⊗ γ2 is ≤ 1e-10 (at most 1000 sweeps); mode entries at or below
3e-3 of their maximum are pruned (the per-mode threshold of sparseinv's KSBL default, so that
"kem" is the exact-M-step counterpart of KSBL-AM); same start, stopping rule and final
re-estimate as "ref".

Files (per case <c>): <c>_a1.npy, <c>_a2.npy, <c>_y.npy, <c>_x.npy (truth), <c>_ref.npy
(reference EM estimate); float64 for real cases, complex128 for complex ones. ref.json: per
case the reference NMSE (dB), σ² used to make the noise, the learned σ², iterations, the
support size and the tolerances; "kem" NMSE for information.
NMSE(x̂) = 10 log10(‖x̂ − x‖² / ‖x‖²).
"""
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20260412
M1, N1, M2, N2 = 12, 16, 10, 14
K1, K2 = 3, 2
PRUNE = 1e-3
KEM_PRUNE = 3e-3
TOL = 1e-6
MAX_ITERS = 3000


def nmse_db(xh, x):
    return float(10 * np.log10(np.sum(np.abs(xh - x) ** 2) / np.sum(np.abs(x) ** 2)))


def dictionary(rng, m, n, cplx):
    if cplx:
        a = (rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))) / np.sqrt(2)
    else:
        a = rng.standard_normal((m, n))
    return a / np.linalg.norm(a, axis=0, keepdims=True)


def values(rng, k, cplx):
    mag = 1.0 + np.abs(rng.standard_normal(k))
    if cplx:
        return mag * np.exp(2j * np.pi * rng.random(k))
    return mag * rng.choice([-1.0, 1.0], size=k)


def make_case(idx, cplx, kind, snr_db):
    rng = np.random.default_rng(SEED + idx)
    a1 = dictionary(rng, M1, N1, cplx)
    a2 = dictionary(rng, M2, N2, cplx)
    dt = complex if cplx else float
    if kind == "kron":
        x1 = np.zeros(N1, dt)
        x2 = np.zeros(N2, dt)
        x1[rng.choice(N1, K1, replace=False)] = values(rng, K1, cplx)
        x2[rng.choice(N2, K2, replace=False)] = values(rng, K2, cplx)
        x = np.kron(x1, x2)
    else:
        x = np.zeros(N1 * N2, dt)
        x[rng.choice(N1 * N2, K1 * K2, replace=False)] = values(rng, K1 * K2, cplx)
    a = np.kron(a1, a2)
    clean = a @ x
    m = clean.size
    nvar = float(np.sum(np.abs(clean) ** 2) / m / 10 ** (snr_db / 10))
    if cplx:
        n = np.sqrt(nvar / 2) * (rng.standard_normal(m) + 1j * rng.standard_normal(m))
    else:
        n = np.sqrt(nvar) * rng.standard_normal(m)
    return a1, a2, x, clean + n, nvar


def posterior(a, gamma, s2, y):
    """Posterior mean and variances on the atoms with γ > 0 (measurement-space formulas)."""
    act = np.flatnonzero(gamma > 0)
    aa = a[:, act]
    g = gamma[act]
    sy = s2 * np.eye(a.shape[0]) + (aa * g) @ aa.conj().T
    w = np.linalg.solve(sy, np.column_stack([y, aa]))
    z, sa = w[:, 0], w[:, 1:]
    mu = np.zeros(a.shape[1], a.dtype)
    var = np.zeros(a.shape[1])
    mu[act] = g * (aa.conj().T @ z)
    var[act] = np.maximum(g - g**2 * np.real(np.sum(aa.conj() * sa, axis=0)), 0.0)
    return mu, var, act


def em(a, y, kron_dims=None):
    """Classic SBL EM (kron_dims None) or Kronecker-constrained EM (kron_dims = (n1, n2))."""
    m, n = a.shape
    ynorm2 = float(np.sum(np.abs(y) ** 2))
    gamma = np.full(n, ynorm2 / float(np.sum(np.abs(a) ** 2)))
    s2 = 0.1 * ynorm2 / m
    if kron_dims is not None:
        g1 = np.full(kron_dims[0], gamma[0])
        g2 = np.ones(kron_dims[1])
    it = 0
    for it in range(1, MAX_ITERS + 1):
        mu, var, act = posterior(a, gamma, s2, y)
        trace = float(np.sum(1.0 - var[act] / gamma[act]))
        resid2 = float(np.sum(np.abs(y - a @ mu) ** 2))
        amat = np.abs(mu) ** 2 + var
        if kron_dims is None:
            new = amat
            new[new < PRUNE * new.max()] = 0.0
        else:
            t = amat.reshape(kron_dims)
            for _ in range(1000):
                old = np.kron(g1, g2)
                on1, on2 = g1 > 0, g2 > 0
                inv2 = np.where(on2, 1.0 / np.where(on2, g2, 1.0), 0.0)
                g1 = np.where(on1, t @ inv2 / on2.sum(), 0.0)
                inv1 = np.where(on1, 1.0 / np.where(on1, g1, 1.0), 0.0)
                g2 = np.where(on2, inv1 @ t / on1.sum(), 0.0)
                c = g2.max()
                g1, g2 = g1 * c, g2 / c
                cur = np.kron(g1, g2)
                if np.linalg.norm(cur - old) <= 1e-10 * np.linalg.norm(cur):
                    break
            g1[g1 <= KEM_PRUNE * g1.max()] = 0.0
            g2[g2 <= KEM_PRUNE * g2.max()] = 0.0
            new = np.kron(g1, g2)
        s2 = (resid2 + s2 * trace) / m
        change = np.linalg.norm(new - gamma) / np.linalg.norm(new)
        gamma = new
        if it > 1 and change <= TOL:
            break
    mu, _, act = posterior(a, gamma, s2, y)
    return mu, s2, it, act.size


def main():
    cases = []
    idx = 0
    for cplx in (False, True):
        for kind in ("kron", "generic"):
            for snr in (20, 30):
                cases.append((idx, cplx, kind, snr))
                idx += 1
    meta = {
        "generator": "testdata/ksbl/gen_ksbl_ref.py",
        "numpy": np.__version__,
        "seed": SEED,
        "sizes": {"a1": [M1, N1], "a2": [M2, N2]},
        "prune": PRUNE,
        "kem_prune": KEM_PRUNE,
        "tol": TOL,
        "max_iters": MAX_ITERS,
        "cases": [],
    }
    for idx, cplx, kind, snr in cases:
        name = f"{'complex' if cplx else 'real'}_{kind}_{snr}"
        a1, a2, x, y, nvar = make_case(idx, cplx, kind, snr)
        a = np.kron(a1, a2)
        ref, s2, iters, supp = em(a, y)
        kem, _, kem_iters, _ = em(a, y, kron_dims=(N1, N2))
        for suffix, arr in (("a1", a1), ("a2", a2), ("y", y), ("x", x), ("ref", ref)):
            np.save(HERE / f"{name}_{suffix}.npy", np.ascontiguousarray(arr))
        entry = {
            "name": name,
            "complex": cplx,
            "kind": kind,
            "snr_db": snr,
            "noise_var": nvar,
            "ref_nmse_db": nmse_db(ref, x),
            "ref_noise_var": s2,
            "ref_iters": iters,
            "ref_support": supp,
            "kem_nmse_db": nmse_db(kem, x),
            "kem_iters": kem_iters,
        }
        meta["cases"].append(entry)
        print(f"{name:20s} ref {entry['ref_nmse_db']:7.2f} dB ({iters} it, {supp} atoms)"
              f"  kem {entry['kem_nmse_db']:7.2f} dB ({kem_iters} it)")
    (HERE / "ref.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
