"""Reference solutions of scikit-learn's ARDRegression for the SBL agreement tests.

Run from the repository root:  .venv/bin/python solvers/tests/data/gen_ard.py
Writes solvers/tests/data/ard_<name>_{phi,y,x,coef}.npy and ard_<name>_meta.json.

ARDRegression maximises the same type-II likelihood as SBL (Gaussian prior with one precision
lambda_n = 1/gamma_n per coefficient, learned noise precision alpha = 1/sigma^2) with MacKay's
fixed-point updates, tiny Gamma hyperpriors (1e-6) and pruning of lambda_n > threshold_lambda.
We run it to tight convergence (tol=1e-12) so that the reference is the fixed point itself.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import ARDRegression

HERE = os.path.dirname(os.path.abspath(__file__))


def problem(name, m, n, k, noise, seed):
    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((m, n)) / np.sqrt(m)
    x = np.zeros(n)
    supp = rng.choice(n, k, replace=False)
    x[supp] = rng.choice([-1.0, 1.0], k) * (1.0 + rng.random(k))
    y = phi @ x + noise * rng.standard_normal(m)
    ard = ARDRegression(fit_intercept=False, tol=1e-12, max_iter=20000, threshold_lambda=1e4)
    ard.fit(phi, y)
    np.save(os.path.join(HERE, f"ard_{name}_phi.npy"), phi)
    np.save(os.path.join(HERE, f"ard_{name}_y.npy"), y)
    np.save(os.path.join(HERE, f"ard_{name}_x.npy"), x)
    np.save(os.path.join(HERE, f"ard_{name}_coef.npy"), ard.coef_)
    meta = {
        "m": m, "n": n, "k": k, "noise": noise, "seed": seed,
        "noise_var": 1.0 / ard.alpha_,
        # ARDRegression starts from lambda = 1 (gamma = 1) and alpha = 1 / var(y)
        "noise_init": float(np.var(y) + np.finfo(np.float64).eps),
        "gamma": [float(v) for v in 1.0 / ard.lambda_],
        "n_iter": int(ard.n_iter_) if hasattr(ard, "n_iter_") else None,
        "support": [int(i) for i in np.flatnonzero(ard.coef_)],
        "true_support": sorted(int(i) for i in supp),
        "sklearn": sklearn.__version__,
    }
    with open(os.path.join(HERE, f"ard_{name}_meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, meta["support"], meta["true_support"], meta["noise_var"])


problem("under", 60, 100, 4, 0.01, 1)
problem("over", 80, 30, 4, 0.02, 2)
