"""Plug-and-play ADMM with the shipped denoiser: strength and iteration count against the
blurred input (its starting point), on held-out photographs.

`sparseinv deblur --method pnp-admm` runs the denoiser at `σ_d = strength · σ` (σ the noise
level estimated from the finest starlet scale, ρ = 1/strength²) for a fixed number of
iterations from the data. The question a user cannot answer without the truth: which
strength, how many iterations. This script prints, per case, the PSNR gain over the blurred
input of a grid of (strength, iterations), the shipped learned model, and scikit-image's
`unsupervised_wiener`.

Data: the photographs of `defaults_vs_oracle.py` (camera, coins, cell; 19² Gaussian and
motion blur; Poisson–Gaussian noise at peak 1000 and 100). The default (strength 3, 30
iterations) was chosen on seed 7; seed 11 is the held-out check.

    PYTHONPATH=python python scripts/defaults/pnp_defaults.py --seed 11 [--json out/pnp.json]
"""

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from defaults_vs_oracle import photo_cases, psnr  # noqa: E402

import sparseinv  # noqa: E402

GRID = [(2.0, 50), (2.0, 30), (3.0, 30), (3.0, 50), (4.0, 30), (6.0, 30)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json")
    a = ap.parse_args()
    from skimage.restoration import unsupervised_wiener

    rows = []
    cols = [f"s{s:g}/i{i}" for s, i in GRID] + ["learned", "skU"]
    print(f"{'case':<22} {'blurred':>8} " + " ".join(f"{c:>8}" for c in cols) + "   (dB above blurred)")
    for label, y, psf, truth, peak, _ in photo_cases(a.seed):
        b = psnr(y, truth, peak)
        row = {"case": label, "blurred": b}
        for s, i in GRID:
            x, rep = sparseinv.deblur(y, psf, method="pnp-admm", strength=s, iters=i)
            row[f"s{s:g}/i{i}"] = psnr(x, truth, peak) - b
        x, _ = sparseinv.deblur(y, psf, method="learned")
        row["learned"] = psnr(x, truth, peak) - b
        xu, _ = unsupervised_wiener(y, psf, clip=False, rng=np.random.default_rng(0))
        row["skU"] = psnr(xu, truth, peak) - b
        rows.append(row)
        print(f"{label:<22} {b:8.2f} " + " ".join(f"{row[c]:+8.2f}" for c in cols), flush=True)
    for c in cols:
        v = np.array([r[c] for r in rows])
        print(f"{c:>8}: min {v.min():+.2f}, mean {v.mean():+.2f} dB above blurred; "
              f"below blurred in {int((v < 0).sum())} of {len(v)}")
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
