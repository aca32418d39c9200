#!/usr/bin/env python3
"""Reference outputs of the shipped galaxy network for tests/learned_galaxy.rs.

For three simulated stamps (galaxy_sim.simulate with seed 4: never used for training (1, 2)
or evaluation (3)), computes, independently of the Rust glue code,

    x_hat = s * N(t / s)

with N the ONNX graph models/onnx/galaxy_unet.onnx run by Python's onnxruntime, t the
Tikhonov image and s the noise estimate of the library (through the Python binding: the same
inputs the network was trained on), and writes testdata/galaxy/{y,psf,learned}.npy.

    PYTHONPATH=python .venv/bin/python models/train/galaxy_reference.py
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import galaxy_sim  # noqa: E402
import sparseinv  # noqa: E402
from sparseinv import _sparseinv  # noqa: E402


def main():
    model = os.path.join(ROOT, "models", "onnx", "galaxy_unet.onnx")
    meta = json.load(open(os.path.join(ROOT, "models", "onnx", "galaxy_unet.json")))
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    d = galaxy_sim.simulate(3, seed=4)
    outs = []
    for y, psf in zip(d["y"], d["psf"]):
        t, _ = sparseinv.deconvolve(y, psf, method="tikhonov", sky=0.0,
                                    balance=meta["tikhonov_balance"])
        s = _sparseinv.deconvolve_globals(y, method="starlet", sky=0.0)["noise_sigma"]
        u = (t / s).astype(np.float32)[None, None]
        v = sess.run(None, {"image": u})[0][0, 0].astype(np.float64)
        outs.append(s * v)
    out = os.path.join(ROOT, "testdata", "galaxy")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "y.npy"), np.ascontiguousarray(d["y"], dtype="<f8"))
    np.save(os.path.join(out, "psf.npy"), np.ascontiguousarray(d["psf"], dtype="<f8"))
    np.save(os.path.join(out, "learned.npy"), np.ascontiguousarray(np.array(outs), dtype="<f8"))
    print("wrote", out, [o.shape for o in outs])


if __name__ == "__main__":
    main()
