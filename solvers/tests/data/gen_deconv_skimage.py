"""Reference data and a peer comparison for sparseinv's deconvolution (scikit-image).

Writes into solvers/tests/data/deconv/:
  rl_image.npy, rl_psf.npy, rl_skimage.npy   small RL reference (10 iterations,
                                             clip=False, filter_epsilon=None)
  cmp_truth.npy, cmp_blurred.npy, cmp_psf.npy camera crop blurred by a Gaussian PSF + noise
and, with --compare, runs `cargo run -p sparseinv-solvers --example deconv_compare` on the
same inputs and prints a PSNR/SSIM table of scikit-image next to sparseinv.

Run: .venv/bin/python solvers/tests/data/gen_deconv_skimage.py [--compare]
"""
import json
import os
import subprocess
import sys

import numpy as np
from skimage import data, restoration
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deconv")
os.makedirs(OUT, exist_ok=True)


def gauss_psf(n, s):
    c = n // 2
    i, j = np.mgrid[:n, :n]
    k = np.exp(-((i - c) ** 2 + (j - c) ** 2) / (2 * s * s))
    return k / k.sum()


rng = np.random.default_rng(0)

# --- 1. small RL reference -------------------------------------------------------------
cam = data.camera().astype(np.float64) / 255.0
img = cam[200:232, 240:270].copy()  # 32 x 30
psf = gauss_psf(7, 1.3)
from scipy.signal import convolve

blurred = convolve(img, psf, mode="same") + 0.01 * rng.random(img.shape)
rl = restoration.richardson_lucy(blurred, psf, num_iter=10, clip=False, filter_epsilon=None)
np.save(os.path.join(OUT, "rl_image.npy"), blurred)
np.save(os.path.join(OUT, "rl_psf.npy"), psf)
np.save(os.path.join(OUT, "rl_skimage.npy"), rl)

# --- 2. comparison inputs ---------------------------------------------------------------
truth = cam[128:256, 192:320].copy()  # 128 x 128
cpsf = gauss_psf(15, 2.0)
cblur = convolve(truth, cpsf, mode="same") + 0.01 * rng.standard_normal(truth.shape)
np.save(os.path.join(OUT, "cmp_truth.npy"), truth)
np.save(os.path.join(OUT, "cmp_blurred.npy"), cblur)
np.save(os.path.join(OUT, "cmp_psf.npy"), cpsf)

if "--compare" in sys.argv:
    def score(x):
        return (peak_signal_noise_ratio(truth, x, data_range=1.0),
                structural_similarity(truth, x, data_range=1.0))

    rows = [("blurred input", score(cblur))]
    rows.append(("skimage wiener (balance 0.01, Laplacian)",
                 score(restoration.wiener(cblur, cpsf, 0.01, clip=False))))
    uw, _ = restoration.unsupervised_wiener(cblur, cpsf, clip=False, rng=0)
    rows.append(("skimage unsupervised_wiener", score(uw)))
    rows.append(("skimage richardson_lucy 30 it",
                 score(restoration.richardson_lucy(cblur, cpsf, num_iter=30, clip=False))))
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "sparseinv-solvers", "--example", "deconv_compare", "--", OUT],
        cwd=root, check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)
    for name, x in ours.items():
        rows.append(("sparseinv " + name, score(np.load(x))))
    print(f"{'method':45s} {'PSNR dB':>8s} {'SSIM':>6s}")
    for name, (p, s) in rows:
        print(f"{name:45s} {p:8.2f} {s:6.3f}")
