#!/usr/bin/env python3
"""Peer benchmark: the shipped denoiser (`sparseinv denoise --model builtin`, the whole command,
file in -> file out) against classical BM3D (the `bm3d` package on PyPI, Mäkinen, Azzari & Foi
2020) on held-out grayscale photographs with additive white Gaussian noise.

    python benches/peers/denoise_bm3d.py [--binary target/release/sparseinv] [--model builtin]
                                         [--threads 2] [--rounds 1]

Images: scikit-image's `camera` (512²), `coins` (303×384) and `cell` (660×550), in [0, 1];
none of them is in the denoiser's training set (`models/train/train_denoiser.py`). Noise:
sigma = 15, 25, 50 (/255), numpy seed 0, float32, not clipped. Both sides get the true sigma.

Ours: one process per image and sigma, `sparseinv denoise IN.npy --model M --sigma S --offset 0
--scale 1 --tile 1024 --overlap 48 -o OUT.npy` (process start, reading, the network, writing);
our report's in-process seconds are printed too. BM3D: `bm3d.bm3d(noisy, sigma_psd=S)` in this
process (its default profile, both stages). Alternating, best of `--rounds`.

Prints per case the PSNR (dB) of the noisy input, ours and BM3D, the gap (ours - BM3D; the
issue's target is >= -1 dB), both times and the speed ratio (BM3D / ours). The floor of our
side is one network run over the image (the ONNX time the report gives) plus reading and
writing the two arrays.
Needs numpy, scikit-image and bm3d (requirements-peers.txt).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from skimage import color, data, img_as_float

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = ["camera", "coins", "cell"]
SIGMAS = [15, 25, 50]


def load(name):
    im = img_as_float(getattr(data, name)())
    if im.ndim == 3:
        im = color.rgb2gray(im[..., :3])
    return im.astype(np.float32)


def psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((x.astype(np.float64) - ref) ** 2)))


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for prof in ("release", "debug"):
        p = os.path.join(target, prof, "sparseinv")
        if os.path.exists(p):
            return p
    sys.exit("no sparseinv binary: run `cargo build --release` first or pass --binary")


def run_ours(binary, model, threads, noisy, sigma, tmp):
    src = os.path.join(tmp, "noisy.npy")
    dst = os.path.join(tmp, "out.npy")
    rep = os.path.join(tmp, "report.json")
    np.save(src, noisy)
    cmd = [binary, "denoise", src, "--model", model, "--sigma", repr(float(sigma)),
           "--offset", "0", "--scale", "1", "--tile", "1024", "--overlap", "48",
           "--threads", str(threads), "-o", dst, "--json", rep, "--force"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    wall = time.perf_counter() - t
    with open(rep) as f:
        inproc = json.load(f).get("seconds", float("nan"))
    return np.load(dst), wall, inproc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=None)
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    import bm3d

    binary = a.binary or default_binary()
    from importlib.metadata import version

    print(f"ours: {binary} --model {a.model} --threads {a.threads}; peer: bm3d {version('bm3d')}")
    try:
        print(f"load average: {os.getloadavg()[0]:.2f}")
    except OSError:
        pass
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in IMAGES:
            clean = load(name)
            for s255 in SIGMAS:
                s = s255 / 255.0
                noisy = (clean + s * rng.standard_normal(clean.shape)).astype(np.float32)
                t_ours, t_in, t_peer = [], [], []
                for _ in range(a.rounds):
                    out, w, i = run_ours(binary, a.model, a.threads, noisy, s, tmp)
                    t_ours.append(w)
                    t_in.append(i)
                    t = time.perf_counter()
                    ref = bm3d.bm3d(noisy, sigma_psd=s)
                    t_peer.append(time.perf_counter() - t)
                r = dict(image=name, sigma=s255, noisy=psnr(noisy, clean), ours=psnr(out, clean),
                         bm3d=psnr(ref, clean), t_ours=min(t_ours), t_inproc=min(t_in),
                         t_bm3d=min(t_peer))
                rows.append(r)
                print(f"{name:7s} {s255:3d}  noisy {r['noisy']:6.2f}  ours {r['ours']:6.2f}  "
                      f"bm3d {r['bm3d']:6.2f}  gap {r['ours'] - r['bm3d']:+5.2f} dB   "
                      f"ours {r['t_ours']:6.2f} s (in-process {r['t_inproc']:.2f})  "
                      f"bm3d {r['t_bm3d']:6.2f} s  bm3d/ours {r['t_bm3d'] / r['t_ours']:5.1f}x",
                      flush=True)
    gaps = np.array([r["ours"] - r["bm3d"] for r in rows])
    print(f"gap ours - bm3d: mean {gaps.mean():+.2f} dB, worst {gaps.min():+.2f} dB, "
          f"cases within 1 dB: {(gaps >= -1).sum()}/{len(gaps)}")
    for s255 in SIGMAS:
        g = [r["ours"] - r["bm3d"] for r in rows if r["sigma"] == s255]
        print(f"  sigma {s255}: mean gap {np.mean(g):+.2f} dB")


if __name__ == "__main__":
    main()
