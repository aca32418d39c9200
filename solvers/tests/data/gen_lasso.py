"""Reference Lasso solution from scikit-learn for solvers/tests/fista_lasso.rs.

Problem: min_x 1/2 ||A x - y||^2 + lam ||x||_1 with a seeded 60 x 120 Gaussian A and a
6-sparse ground truth plus noise. scikit-learn's Lasso minimises
1/(2 m) ||y - A w||^2 + alpha ||w||_1, i.e. the same problem divided by m, with alpha = lam / m.

Writes (next to this script):
  lasso_A.npy, lasso_y.npy   float64 inputs
  lasso_sklearn_coef.npy     scikit-learn's coefficients
  lasso_ref.json             lam, alpha, objective in our scaling, sklearn version

Run: .venv/bin/python solvers/tests/data/gen_lasso.py
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import Lasso

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240607)
m, n, k = 60, 120, 6
A = rng.standard_normal((m, n)) / np.sqrt(m)
x_true = np.zeros(n)
support = rng.choice(n, size=k, replace=False)
x_true[support] = rng.standard_normal(k) * 2.0
y = A @ x_true + 0.05 * rng.standard_normal(m)

lam = 0.1 * np.max(np.abs(A.T @ y))
alpha = lam / m
model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000,
              selection="cyclic")
model.fit(A, y)
w = model.coef_
obj = 0.5 * np.sum((A @ w - y) ** 2) + lam * np.sum(np.abs(w))

np.save(os.path.join(here, "lasso_A.npy"), A)
np.save(os.path.join(here, "lasso_y.npy"), y)
np.save(os.path.join(here, "lasso_sklearn_coef.npy"), w)
with open(os.path.join(here, "lasso_ref.json"), "w") as f:
    json.dump({"m": m, "n": n, "lambda": float(lam), "alpha": float(alpha),
               "objective": float(obj), "nnz": int(np.count_nonzero(w)),
               "n_iter": int(model.n_iter_), "sklearn": sklearn.__version__}, f, indent=2)
print("objective", obj, "nnz", np.count_nonzero(w), "iters", model.n_iter_)
