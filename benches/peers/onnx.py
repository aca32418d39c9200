#!/usr/bin/env python3
"""Peer benchmark: ONNX inference of the shipped denoiser, sparseinv (Rust, ort) against Python
onnxruntime on the same graph and the same inputs, in one run.

    python benches/peers/onnx.py [--threads 1] [--tile 512] [--overlap 32]

Writes a 512² and a 2048² float32 test image (scikit-image's camera, tiled/resized, plus
Gaussian noise sigma = 0.1) into a temporary directory, runs our side with
`cargo bench -p sparseinv-models --bench peer_onnx -- DIR`, then times Python onnxruntime
(same intra-op thread count, inter-op 1) doing the same work:
  - 512²: one run of the graph on [1, 2, 512, 512] (image + noise-level map);
  - 2048²: the same tiling as ours (the solvers crate's one tiler as the denoiser configures
    it: network inputs of at most `--tile` px, neighbouring inputs sharing `--overlap` px,
    raised-cosine cross-fade over the overlap, border cores widened), one run per tile,
    weighted accumulation.
Both are best of 5 (2048²: best of 3) after a warm-up run. Prints the times, the ratios
(ours / Python: 1.0 = same speed, the issue's target is within 10 %) and the largest
difference between the two outputs. Our side also times one PnP-PGD iteration on 512².
Needs numpy, scikit-image and onnxruntime in the Python that runs it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from skimage import data, transform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRAPH = os.path.join(ROOT, "models", "onnx", "denoiser_small.onnx")


def cores(n, t, e):
    """Core partition of one axis, as the solvers crate's `Tiler::cores` with
    `CoreLayout::WidenBorders`: one core when n <= t + 2e, else cuts at t + e + i*t and a last
    core of at most t + e."""
    cuts = [0]
    if n > t + 2 * e:
        s0 = t + e
        while n - s0 > t + e:
            cuts.append(s0)
            s0 += t
        cuts.append(s0)
    cuts.append(n)
    return list(zip(cuts[:-1], cuts[1:]))


def blend_weight(n, c0, c1, b):
    """Per-pixel weight of the core [c0, c1) along an axis of n pixels with blend half-width b
    (the solvers crate's `blend_weight`: raised cosine at pixel centres, weights sum to 1)."""
    x = np.arange(n, dtype=np.float64) + 0.5
    if b == 0:
        return ((x >= c0) & (x < c1)).astype(np.float64)

    def r(t):
        u = np.clip((t + b) / (2.0 * b), 0.0, 1.0)
        return 0.5 * (1.0 - np.cos(np.pi * u))
    lo = np.ones(n) if c0 == 0 else r(x - c0)
    hi = np.ones(n) if c1 >= n else r(c1 - x)
    return lo * hi


def plan(n, tile, ov):
    """(core, window) pairs of one axis for the denoiser's tiler (`Tiling::tiler`): blend
    floor(ov/2), halo ov mod 2, cores of tile - 2*ceil(ov/2) with widened border cores."""
    ext = (ov + 1) // 2
    blend = ov // 2
    t = max(tile - 2 * ext, 1)
    if n <= tile:
        return [((0, n), (0, n))], blend
    return [((c0, c1), (max(c0 - ext, 0), min(c1 + ext, n))) for c0, c1 in cores(n, t, ext)], blend


def run_graph(sess, name, img, sigma):
    inp = np.empty((1, 2) + img.shape, np.float32)
    inp[0, 0] = img
    inp[0, 1] = sigma
    return sess.run(None, {name: inp})[0][0, 0]


def tiled(sess, name, img, sigma, tile, ov, multiple=8):
    """The same tiling as ours: windows = cores widened by blend + halo, padded at the bottom
    and right to a multiple of `multiple` by reflection (numpy 'reflect'), one network run
    per window, results weighted by the product of the two axes' blend weights (summing to
    one) and accumulated in tile order."""
    h, w = img.shape
    rows, b = plan(h, tile, ov)
    cols, _ = plan(w, tile, ov)
    acc = np.zeros((h, w), np.float64)
    for (ry, (wy0, wy1)) in rows:
        wy = blend_weight(h, ry[0], ry[1], b)[wy0:wy1]
        for (rx, (wx0, wx1)) in cols:
            wx = blend_weight(w, rx[0], rx[1], b)[wx0:wx1]
            win = img[wy0:wy1, wx0:wx1]
            ph = -win.shape[0] % multiple
            pw = -win.shape[1] % multiple
            if ph or pw:
                win = np.pad(win, ((0, ph), (0, pw)), mode="reflect")
            o = run_graph(sess, name, win, sigma)[:wy1 - wy0, :wx1 - wx0]
            acc[wy0:wy1, wx0:wx1] += np.outer(wy, wx) * o
    return acc.astype(np.float32)


def best(n, f):
    t = np.inf
    for _ in range(n):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=32)
    args = ap.parse_args()
    sigma = 0.1
    rng = np.random.default_rng(0)
    cam = data.camera().astype(np.float64) / 255.0
    x512 = (cam + sigma * rng.standard_normal(cam.shape)).astype(np.float32)
    big = transform.resize(cam, (2048, 2048), order=1)
    x2048 = (big + sigma * rng.standard_normal(big.shape)).astype(np.float32)

    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x512.npy"), x512)
        np.save(os.path.join(d, "x2048.npy"), x2048)
        np.save(os.path.join(d, "params.npy"),
                np.array([sigma, args.threads, args.tile, args.overlap], np.float64))
        out = subprocess.run(
            ["cargo", "bench", "-q", "-p", "sparseinv-models", "--bench", "peer_onnx", "--", d],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout
        ours = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        o512 = np.load(os.path.join(d, "ours512.npy"))
        o2048 = np.load(os.path.join(d, "ours2048.npy"))

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(GRAPH, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    p512 = run_graph(sess, name, x512, sigma)
    t512 = best(5, lambda: run_graph(sess, name, x512, sigma))
    p2048 = tiled(sess, name, x2048, sigma, args.tile, args.overlap)
    t2048 = best(3, lambda: tiled(sess, name, x2048, sigma, args.tile, args.overlap))
    result = {
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "tile": args.tile,
        "overlap": args.overlap,
        "ours_512_s": ours["seconds_512"],
        "python_512_s": t512,
        "ratio_512_ours_over_python": ours["seconds_512"] / t512,
        "max_abs_diff_512": float(np.max(np.abs(o512 - p512))),
        "ours_2048_s": ours["seconds_2048"],
        "python_2048_s": t2048,
        "ratio_2048_ours_over_python": ours["seconds_2048"] / t2048,
        "max_abs_diff_2048": float(np.max(np.abs(o2048 - p2048))),
        "tiles_2048": ours["tiles_2048"],
        "ours_pnp_iteration_512_s": ours["seconds_pnp_iteration_512"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
