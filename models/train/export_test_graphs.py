"""Write the tiny ONNX test graphs of sparseinv-models into testdata/onnx/, with reference
outputs computed by Python onnxruntime.

Usage (from the repository root, in a venv with torch, deepinv, onnx, onnxruntime==1.32.0):

    python models/train/export_test_graphs.py

Graphs:
- drunet_tiny.onnx: DeepInverse's DRUNet architecture (deepinv.models.DRUNet, grayscale,
  nc=(8, 16, 32, 64), nb=1, random weights from torch.manual_seed(0)); the graph is the U-Net
  `forward_unet` taking the noise-level map as the second input channel: [N, 2, H, W] ->
  [N, 1, H, W], dynamic N, H, W.
- identity_noisemap.onnx: [N, 2, H, W] -> channel 0 (built with onnx.helper).
- sigma_echo.onnx: [N, 2, H, W] -> channel 1, i.e. returns the noise-level map.
- identity_fixed16.onnx: fixed [1, 2, 16, 16] -> channel 0 (a graph with a fixed tile size).

Reference data (.npy, float32):
- drunet_tiny_input.npy / drunet_tiny_output.npy: the raw graph on a fixed input.
- drunet_tiny_image.npy, drunet_tiny_image_denoised.npy: the denoiser pipeline (percentile
  normalisation 0.1/99.9, noise map sigma/scale, reflect padding to a multiple of 8, one run)
  on a 24x36 image in astronomical-like units, sigma in drunet_tiny_meta.json.
- drunet_tiny_tiled.npy: the same image denoised in 16x16 tiles with overlap 4 and
  sin^2 blending windows, Affine(offset=1000, scale=50), written independently in numpy here.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "onnx")


def slice_graph(name, channel, fixed=None):
    dims = fixed if fixed else ["n", 2, "h", "w"]
    odims = [dims[0], 1, dims[2], dims[3]]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, odims)
    inits = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [channel]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [channel + 1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])
    g = helper.make_graph([node], name, [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def export_drunet(path):
    import torch
    from deepinv.models import DRUNet

    torch.manual_seed(0)
    net = DRUNet(in_channels=1, out_channels=1, nc=(8, 16, 32, 64), nb=1, pretrained=None)
    net.eval()

    class Unet(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.forward_unet(x)

    x = torch.rand(1, 2, 32, 32)
    torch.onnx.export(
        Unet(net), (x,), path, input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
        opset_version=17, dynamo=False,
    )
    # Everything in one file (no external data).
    m = onnx.load(path)
    onnx.save(m, path)


def run(sess, x):
    return sess.run(None, {"x": x.astype(np.float32)})[0]


def denoise_whole(sess, img, sigma, offset, scale, mult=8):
    h, w = img.shape
    u = (img.astype(np.float64) - offset) / scale
    ph, pw = -(-h // mult) * mult, -(-w // mult) * mult
    u = np.pad(u.astype(np.float32), ((0, ph - h), (0, pw - w)), mode="reflect")
    inp = np.stack([u, np.full_like(u, np.float32(sigma / scale))])[None]
    y = run(sess, inp)[0, 0, :h, :w]
    return (y.astype(np.float64) * scale + offset).astype(np.float32)


def starts(n, t, ov):
    if t >= n:
        return [0]
    s, out = 0, []
    while s + t < n:
        out.append(s)
        s += t - ov
    out.append(n - t)
    return out


def win(n, ov, rin, rout):
    k = np.arange(n)
    w = np.ones(n)
    r = lambda k: np.where(k < ov, np.sin(np.pi / 2 * (k + 0.5) / ov) ** 2, 1.0)
    if rin:
        w *= r(k)
    if rout:
        w *= r(n - 1 - k)
    return w


def denoise_tiled(sess, img, sigma, offset, scale, tile, ov, mult=8):
    h, w = img.shape
    u = ((img.astype(np.float64) - offset) / scale).astype(np.float32)
    acc = np.zeros((h, w))
    ws = np.zeros((h, w))
    th, tw = min(tile, h), min(tile, w)
    ph, pw = -(-th // mult) * mult, -(-tw // mult) * mult
    for r0 in starts(h, th, ov):
        for c0 in starts(w, tw, ov):
            t = u[r0:r0 + th, c0:c0 + tw]
            t = np.pad(t, ((0, ph - th), (0, pw - tw)), mode="reflect")
            inp = np.stack([t, np.full_like(t, np.float32(sigma / scale))])[None]
            y = run(sess, inp)[0, 0, :th, :tw]
            wt = np.outer(win(th, ov, r0 > 0, r0 + th < h), win(tw, ov, c0 > 0, c0 + tw < w))
            acc[r0:r0 + th, c0:c0 + tw] += wt * y
            ws[r0:r0 + th, c0:c0 + tw] += wt
    return ((acc / ws) * scale + offset).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    slice_graph("identity_noisemap", 0)
    slice_graph("sigma_echo", 1)
    slice_graph("identity_fixed16", 0, fixed=[1, 2, 16, 16])

    path = os.path.join(OUT, "drunet_tiny.onnx")
    export_drunet(path)
    print("drunet_tiny.onnx:", os.path.getsize(path), "bytes")

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.random((1, 2, 32, 40), dtype=np.float32)
    x[:, 1] = 0.1
    np.save(os.path.join(OUT, "drunet_tiny_input.npy"), x)
    np.save(os.path.join(OUT, "drunet_tiny_output.npy"), run(sess, x))

    img = (1000.0 + 50.0 * rng.standard_normal((24, 36))).astype(np.float32)
    sigma = 20.0
    lo, hi = np.percentile(img.astype(np.float64), [0.1, 99.9])
    np.save(os.path.join(OUT, "drunet_tiny_image.npy"), img)
    np.save(os.path.join(OUT, "drunet_tiny_image_denoised.npy"),
            denoise_whole(sess, img, sigma, lo, hi - lo))
    big = (1000.0 + 50.0 * rng.standard_normal((40, 52))).astype(np.float32)
    np.save(os.path.join(OUT, "drunet_tiny_big.npy"), big)
    np.save(os.path.join(OUT, "drunet_tiny_tiled.npy"),
            denoise_tiled(sess, big, sigma, 1000.0, 50.0, tile=16, ov=4))
    with open(os.path.join(OUT, "drunet_tiny_meta.json"), "w") as f:
        json.dump({"sigma": sigma, "percentiles": [0.1, 99.9], "tile": 16, "overlap": 4,
                   "affine_offset": 1000.0, "affine_scale": 50.0,
                   "onnxruntime": ort.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
