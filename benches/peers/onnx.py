#!/usr/bin/env python3
"""Peer benchmark: ONNX inference of the shipped denoiser, sparseinv (Rust, ort) against Python
onnxruntime on the same graph and the same inputs, in one run.

    python benches/peers/onnx.py [--threads 1] [--tile 512] [--overlap 32]

Writes a 512² and a 2048² float32 test image (scikit-image's camera, tiled/resized, plus
Gaussian noise sigma = 0.1) into a temporary directory, runs our side with
`cargo bench -p sparseinv-models --bench peer_onnx -- DIR`, then times Python onnxruntime
(same intra-op thread count, inter-op 1) doing the same work:
  - 512²: one run of the graph on [1, 2, 512, 512] (image + noise-level map);
  - 2048²: the same tiling as ours (tiles of `--tile` px, `--overlap` px overlap, the last tile
    flush with the border; sin² blending weights), one run per tile, weighted accumulation.
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


def tile_starts(n, t, ov):
    if t >= n:
        return [0]
    step = max(t - ov, 1)
    v, s0 = [], 0
    while s0 + t < n:
        v.append(s0)
        s0 += step
    v.append(n - t)
    return v


def window(length, ov, ramp_in, ramp_out):
    i = np.arange(length, dtype=np.float64)
    w = np.ones(length)
    if ov > 0:
        def ramp(k):
            return np.where(k < ov, np.sin(np.pi / 2 * (k + 0.5) / ov) ** 2, 1.0)
        if ramp_in:
            w *= ramp(i)
        if ramp_out:
            w *= ramp(length - 1 - i)
    return w.astype(np.float32)


def run_graph(sess, name, img, sigma):
    inp = np.empty((1, 2) + img.shape, np.float32)
    inp[0, 0] = img
    inp[0, 1] = sigma
    return sess.run(None, {name: inp})[0][0, 0]


def tiled(sess, name, img, sigma, tile, ov):
    h, w = img.shape
    acc = np.zeros((h, w), np.float32)
    wsum = np.zeros((h, w), np.float32)
    rows, cols = tile_starts(h, tile, ov), tile_starts(w, tile, ov)
    for r0 in rows:
        for c0 in cols:
            o = run_graph(sess, name, img[r0:r0 + tile, c0:c0 + tile], sigma)
            wt = np.outer(window(tile, ov, r0 > 0, r0 + tile < h),
                          window(tile, ov, c0 > 0, c0 + tile < w))
            acc[r0:r0 + tile, c0:c0 + tile] += wt * o
            wsum[r0:r0 + tile, c0:c0 + tile] += wt
    return acc / wsum


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
