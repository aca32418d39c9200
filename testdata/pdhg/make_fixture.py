"""Reference solutions for the PDHG tests (solvers/tests/pdhg.rs), computed by PyProximal's
`PrimalDual` (Chambolle–Pock) with PyLops operators, run to convergence.

Two problems (seeded, float64):

1. ``tv2d``: isotropic total-variation denoising with positivity of a 16x16 image,

       min_x ½‖x − y‖² + λ Σ_p ‖(∇x)_p‖₂   s.t. x ≥ 0,

   ∇ = pylops.Gradient(kind="forward", edge=False) (forward differences, last row/column 0),
   the l2,1 norm = pyproximal.L21(ndim=2, sigma=λ); f = ½‖x − y‖² + ι₊(x) has the
   separable prox max((v + τ y)/(1 + τ), 0), written below as a ProxOperator.

2. ``tv1d``: 1-D total-variation deblurring of 64 samples with a dense Gaussian blur A,

       min_x ½‖A x − y‖² + λ ‖D x‖₁,

   f = pyproximal.L2(Op=MatrixMult(A), b=y) (exact dense prox), D = FirstDerivative(forward,
   edge=False), g = pyproximal.L1(sigma=λ).

Written: tv2d_y.npy, tv2d_x.npy, tv1d_a.npy, tv1d_y.npy, tv1d_x.npy, meta.json (λ, iterations,
step sizes, the objective of each solution, versions).

    python3 -m venv .venv && .venv/bin/pip install pyproximal pylops numpy
    .venv/bin/python testdata/pdhg/make_fixture.py
"""
import json
import os

import numpy as np
import pylops
import pyproximal

OUT = os.path.dirname(os.path.abspath(__file__))
ITERS = 40000


class HalfSqNonNeg(pyproximal.ProxOperator):
    """½‖x − b‖² + indicator(x ≥ 0); prox = max((v + τ b)/(1 + τ), 0)."""

    def __init__(self, b):
        super().__init__(None, False)
        self.b = b

    def __call__(self, x):
        return 0.5 * float(np.sum((x - self.b) ** 2)) if np.all(x >= 0) else np.inf

    def prox(self, x, tau):
        return np.maximum((x + tau * self.b) / (1.0 + tau), 0.0)


def tv2d(rng):
    n = 16
    yy, xx = np.mgrid[:n, :n]
    truth = 1.0 * ((xx - 6) ** 2 + (yy - 8) ** 2 < 20) + 0.5 * (xx > 11)
    y = truth + 0.3 * rng.standard_normal((n, n)) - 0.1
    lam = 0.2
    grad = pylops.Gradient(dims=(n, n), kind="forward", edge=False, dtype="float64")
    l2 = 8.0  # ‖∇‖² ≤ 8 in 2-D
    tau = mu = 0.99 / np.sqrt(l2)
    x = pyproximal.optimization.primaldual.PrimalDual(
        HalfSqNonNeg(y.ravel()), pyproximal.L21(ndim=2, sigma=lam), grad,
        x0=np.zeros(n * n), tau=tau, mu=mu, theta=1.0, niter=ITERS)
    x = x.reshape(n, n)
    g = grad @ x.ravel()
    obj = 0.5 * np.sum((x - y) ** 2) + pyproximal.L21(ndim=2, sigma=lam)(g)
    np.save(os.path.join(OUT, "tv2d_y.npy"), y)
    np.save(os.path.join(OUT, "tv2d_x.npy"), x)
    return {"lambda": lam, "tau": tau, "mu": mu, "iters": ITERS, "objective": float(obj),
            "min_x": float(x.min())}


def tv1d(rng):
    n = 64
    t = np.arange(n)
    truth = 1.0 * ((t > 10) & (t < 25)) + 2.0 * ((t > 40) & (t < 47)) - 0.5 * (t > 55)
    k = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    k /= k.sum()
    a = np.zeros((n, n))
    for i in range(n):
        for j, kv in enumerate(k):
            c = i + j - 6
            if 0 <= c < n:
                a[i, c] = kv
    y = a @ truth + 0.05 * rng.standard_normal(n)
    lam = 0.05
    d = pylops.FirstDerivative(n, kind="forward", edge=False, dtype="float64")
    tau = mu = 0.99 / np.sqrt(4.0)  # ‖D‖² ≤ 4
    x = pyproximal.optimization.primaldual.PrimalDual(
        pyproximal.L2(Op=pylops.MatrixMult(a), b=y), pyproximal.L1(sigma=lam), d,
        x0=np.zeros(n), tau=tau, mu=mu, theta=1.0, niter=ITERS)
    obj = 0.5 * np.sum((a @ x - y) ** 2) + lam * np.sum(np.abs(d @ x))
    np.save(os.path.join(OUT, "tv1d_a.npy"), a)
    np.save(os.path.join(OUT, "tv1d_y.npy"), y)
    np.save(os.path.join(OUT, "tv1d_x.npy"), x)
    return {"lambda": lam, "tau": tau, "mu": mu, "iters": ITERS, "objective": float(obj)}


def main():
    rng = np.random.default_rng(20261129)
    meta = {
        "generator": "testdata/pdhg/make_fixture.py",
        "pyproximal": pyproximal.__version__,
        "pylops": pylops.__version__,
        "numpy": np.__version__,
        "tv2d": tv2d(rng),
        "tv1d": tv1d(rng),
    }
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
