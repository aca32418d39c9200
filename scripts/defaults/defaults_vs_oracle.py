"""Untuned defaults of `sparseinv.deconvolve` against an oracle and against scikit-image.

For every case the script prints the PSNR of

* `wiener`, `tikhonov` and `rl` with their defaults (what a user runs: no balance, no
  iteration count; the balance comes from GCV, RL stops at the least estimated risk (SURE); on the
  star fields the sky is the default background map, the photographs are given `sky=0`:
  they have no sky, and subtracting an estimated one — a smooth copy of the picture — as
  Richardson–Lucy's known background ruins it);
* `starlet` with its defaults (threshold and FISTA iteration count chosen together by the
  least estimated risk, k_sigma from 1 … 5) and its oracle over k_sigma 1 … 5 and 10, 20, 30,
  50, 100, 200 or 300 iterations;
* the oracle of each, chosen with the truth: the best fixed weight on a grid of 10^-8 … 10^2
  (`tikhonov`: Laplacian; `wiener`: the better of the white-balance grid and the Laplacian
  grid — the gradient prior is not selectable from Python, so `wiener`'s oracle covers two of
  its three priors), the best iteration count of plain RL on a grid of 1 … 300, and of
  accelerated RL (an option) on the same grid;
* scikit-image's automatic `restoration.unsupervised_wiener` (the peer's untuned mode) and
  the blurred input.

Data (nothing here was used to choose the defaults' constants — those were set on the cases
of `models/eval` with seed 7 and on star fields with seeds 0–2; this script uses seed 11 for
the photographs and seeds 20–22 for the star fields):

* photographs: scikit-image's camera, coins and cell (274² crops in `models/eval`, written by
  `models/train/make_eval_set.py`), 19² Gaussian and motion PSFs from the same folder, 'valid'
  convolution to 256², Poisson–Gaussian noise `min(Poisson(peak·b)/peak + σ_g n, 1)` with
  (peak, σ_g) = (1000, 0.005) and (100, 0.01);
* star fields: 80 point-like stars and 15 exponential galaxies on a sky of 100 or 1000
  counts, Moffat PSF (β = 3) of FWHM 3 or 6 px, Poisson noise, sky-subtracted truth.

PSNR on the central region (16-px border excluded), peak = 1 for the photographs and the
truth's maximum for the star fields.

Usage (from the repository root, with the Python package built, e.g. by
`scripts/test-python.sh`, and scikit-image installed)::

    PYTHONPATH=python python scripts/defaults/defaults_vs_oracle.py [--json out/defaults.json]

With a release build of the package (`pip install ./python`) the whole table takes about
17 minutes on a 2-core box (starlet's oracle, 35 fixed runs per case, is most of it), about
15 minutes with `--starlet-only` and under 1.5 minutes without starlet (`--no-starlet`); the debug build
of `scripts/test-python.sh` needs about 4 minutes per case with the Richardson–Lucy oracles.
"""

import argparse
import json
import pathlib
import time

import numpy as np
from scipy.signal import fftconvolve

import sparseinv

ROOT = pathlib.Path(__file__).resolve().parents[2]
EVAL = ROOT / "models" / "eval"


def load(name):
    from PIL import Image

    return np.asarray(Image.open(EVAL / f"{name}.png").convert("L"), float) / 255.0


def psnr(a, t, peak, b=16):
    a, t = a[b:-b, b:-b], t[b:-b, b:-b]
    return 10 * np.log10(peak**2 / np.mean((a - t) ** 2))


def photo_cases(seed):
    for name in ("camera", "coins", "cell"):
        x = load(name)
        for blur in ("gaussian", "motion"):
            psf = np.load(EVAL / f"psf_{blur}.npy")
            r = psf.shape[0] // 2
            truth = x[r:-r, r:-r]
            b = fftconvolve(x, psf, "valid")
            for peak, sg, tag in ((1000, 0.005, "low"), (100, 0.01, "high")):
                rng = np.random.default_rng(seed)
                y = np.minimum(rng.poisson(np.maximum(b, 0) * peak) / peak
                               + sg * rng.standard_normal(b.shape), 1.0)
                # a photograph has no sky: `sky=0` (the one option passed; the command's
                # sky estimate is for astronomical images)
                yield f"{name}/{blur}/{tag}", y, psf, truth, 1.0, {"sky": 0.0}


def moffat(fwhm, beta=3.0, half=20):
    al = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    k = np.mgrid[-half:half + 1, -half:half + 1]
    p = (1 + (k[0] ** 2 + k[1] ** 2) / al**2) ** -beta
    return p / p.sum()


def star_cases(seeds):
    n, pad = 256, 20
    for seed in seeds:
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[: n + 2 * pad, : n + 2 * pad]
        img = np.zeros((n + 2 * pad, n + 2 * pad))
        for _ in range(80):
            cx, cy = rng.uniform(0, n + 2 * pad, 2)
            f, s = 10 ** rng.uniform(2, 4.5), rng.uniform(0.5, 1.2)
            img += f * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)) / (2 * np.pi * s * s)
        for _ in range(15):
            cx, cy = rng.uniform(0, n + 2 * pad, 2)
            f, a, q, t = 10 ** rng.uniform(3, 4.5), rng.uniform(2, 8), rng.uniform(0.3, 1), rng.uniform(0, np.pi)
            dx = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            dy = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            img += f * np.exp(-np.sqrt(dx**2 + (dy / q) ** 2) / a * 1.7) / (2 * np.pi * a * a * q)
        truth = img[pad:-pad, pad:-pad]
        for fwhm in (3.0, 6.0):
            psf = moffat(fwhm)
            for sky in (100.0, 1000.0):
                y = rng.poisson(fftconvolve(img, psf, "valid") + sky).astype(float)
                # the truth is the sky-subtracted scene; the methods return scene + sky
                yield f"stars{seed}/fwhm{fwhm:g}/sky{sky:g}", y, psf, truth + sky, truth.max(), {}


METHODS = ("wiener", "tikhonov", "rl", "starlet")


def run_case(label, y, psf, truth, peak, kw):
    from skimage.restoration import unsupervised_wiener

    row = {"case": label, "blurred": psnr(y, truth, peak)}
    t0 = time.perf_counter()
    # the peer, as a user calls it: a unit-range image; star fields are scaled to their peak
    s = max(np.abs(y).max(), 1e-300)
    xu, _ = unsupervised_wiener(y / s, psf, clip=False, rng=np.random.default_rng(0))
    row["skimage_unsupervised_wiener"] = psnr(xu * s, truth, peak)
    row["t_skimage"] = time.perf_counter() - t0
    for method in METHODS:
        t0 = time.perf_counter()
        x, rep = sparseinv.deconvolve(y, psf, method=method, **kw)
        row[method] = psnr(x, truth, peak)
        row[f"t_{method}"] = time.perf_counter() - t0
        if method == "rl":
            row["rl_iterations"] = rep["iterations"]
            row["rl_stop"] = rep["stop"]
        elif method == "starlet":
            row["starlet_iterations"] = rep["iterations"]
            row["starlet_k"] = rep.get("k_sigma")
        else:
            row[f"{method}_balance"] = rep["balance"]
            row[f"{method}_prior"] = rep["prior"]
    # oracles: balances on a grid for the Fourier methods (the default's prior for wiener),
    # iteration counts for plain RL
    if "tikhonov" in METHODS:
        grid = 10.0 ** np.arange(-8, 2.01, 0.25)
        best = -np.inf
        for mu in grid:
            x, _ = sparseinv.deconvolve(y, psf, method="tikhonov", balance=float(mu), **kw)
            best = max(best, psnr(x, truth, peak))
        row["tikhonov_oracle"] = best
        best = -np.inf
        for mu in grid:
            x, _ = sparseinv.deconvolve(y, psf, method="wiener", balance=float(mu), **kw)
            best = max(best, psnr(x, truth, peak))
        row["wiener_white_oracle"] = best
    if "starlet" in METHODS:
        # starlet: threshold (k_sigma) and iteration count
        best, arg = -np.inf, None
        for ks in (1.0, 2.0, 3.0, 4.0, 5.0):
            for it in (10, 20, 30, 50, 100, 200, 300):
                x, _ = sparseinv.deconvolve(y, psf, method="starlet", k_sigma=ks, iters=it, **kw)
                p = psnr(x, truth, peak)
                if p > best:
                    best, arg = p, (ks, it)
        row["starlet_oracle"], row["starlet_oracle_at"] = best, arg
    if "rl" not in METHODS:
        return row
    # the default is plain RL: the oracle is the best count of plain RL and, separately, of
    # accelerated RL; the best of both is the oracle over everything a user can set (count
    # and acceleration)
    for tag, acc in (("rl_oracle", False), ("rl_acc_oracle", True)):
        best, best_k = -np.inf, 0
        for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100, 150, 200, 300):
            x, _ = sparseinv.deconvolve(y, psf, method="rl", iters=k, accelerate=acc, **kw)
            p = psnr(x, truth, peak)
            if p > best:
                best, best_k = p, k
        row[tag], row[f"{tag}_iters"] = best, best_k
    row["rl_any_oracle"] = max(row["rl_oracle"], row["rl_acc_oracle"])
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--quick", action="store_true", help="photographs only")
    ap.add_argument("--fourier-only", action="store_true",
                    help="Wiener and Tikhonov only (no Richardson-Lucy, starlet and their oracles)")
    ap.add_argument("--no-starlet", action="store_true",
                    help="leave out starlet and its oracle (35 runs per case)")
    ap.add_argument("--starlet-only", action="store_true",
                    help="starlet and its oracle only")
    a = ap.parse_args()
    global METHODS
    if a.fourier_only:
        METHODS = ("wiener", "tikhonov")
    elif a.no_starlet:
        METHODS = ("wiener", "tikhonov", "rl")
    elif a.starlet_only:
        METHODS = ("starlet",)
    rows = []
    cases = list(photo_cases(11))
    if not a.quick:
        cases += list(star_cases((20, 21, 22)))
    hdr = ("case", "blurred", "skU", "wiener", "tikh", "tikh*", "rl", "rl*", "rl its", "rl* its",
           "rlacc*", "acc* its", "starlet", "starlet*", "(k, its)*")
    print(" ".join(f"{h:>9}" if i else f"{h:<26}" for i, h in enumerate(hdr)))
    for c in cases:
        r = run_case(*c)
        rows.append(r)
        rl = (f"{r['rl']:9.2f} {r['rl_oracle']:9.2f} {r['rl_iterations']:9d} {r['rl_oracle_iters']:9d}"
              f" {r['rl_acc_oracle']:9.2f} {r['rl_acc_oracle_iters']:9d}"
              if "rl" in METHODS else "")
        st = (f" {r['starlet']:9.2f} {r['starlet_oracle']:9.2f} {str(r['starlet_oracle_at']):>12}"
              if "starlet" in METHODS else "")
        fo = (f"{r['wiener']:9.2f} {r['tikhonov']:9.2f} {r['tikhonov_oracle']:9.2f} "
              if "tikhonov" in METHODS else "")
        print(f"{r['case']:<26} {r['blurred']:9.2f} {r['skimage_unsupervised_wiener']:9.2f} "
              f"{fo}{rl}{st}",
              flush=True)
    for r in rows:
        if "tikhonov" in METHODS:
            r["fourier_oracle"] = max(r["tikhonov_oracle"], r["wiener_white_oracle"])
    for m, o in (("wiener", "fourier_oracle"), ("tikhonov", "tikhonov_oracle"), ("rl", "rl_oracle"),
                 ("rl", "rl_any_oracle"), ("starlet", "starlet_oracle")):
        if m not in METHODS:
            continue
        for what, sel in (("all", lambda r: True), ("photographs", lambda r: not r["case"].startswith("stars")),
                          ("star fields", lambda r: r["case"].startswith("stars"))):
            d = np.array([r[o] - r[m] for r in rows if sel(r)])
            if d.size == 0 or (m not in ("rl", "starlet") and what != "all"):
                continue
            print(f"{m} ({what}): default below {o} by {d.mean():.2f} dB on average, "
                  f"{d.max():.2f} dB at most")
    d = np.array([r["wiener"] - r["skimage_unsupervised_wiener"] for r in rows if "wiener" in r])
    if d.size:
        print(f"wiener default minus skimage unsupervised_wiener: min {d.min():+.2f} dB, "
              f"median {np.median(d):+.2f} dB")
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
