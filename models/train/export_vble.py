"""Export the VBLE-xz prior (Biquard et al. 2024, arXiv:2412.04130) trained by train_vble.py
to ONNX graphs for inference without autodiff (forward graphs + hand-written VJP graphs).

    python models/train/export_vble.py --checkpoint target/vble/vble_small.pt

Writes into models/onnx/ (or --out-dir):
- vble_encode.onnx      x [N,1,H,W] -> z [N,M,H/8,W/8], h [N,Ch,H/16,W/16] (continuous)
- vble_decode.onnx      z -> x_mean [N,1,H,W], sigma [N,1,H,W]
- vble_decode_vjp.onnx  (z, g_mean, g_sigma) -> dz = J_mean^T g_mean + J_sigma^T g_sigma
- vble_rate.onnx        (z, h) -> rate [1] (nats, -log p(z|h) - log p(h), summed over all
                        elements and the batch), drate_dz, drate_dh
- vble_small.json       sidecar: stride, channels, scaling, graph I/O names, training record.
All graphs are float32, opset 17, dynamic N, H, W (H, W multiples of 16), exported with the
legacy TorchScript exporter from the modules in vble_net.py; the VJP graphs contain only
plain forward ops (Conv, ConvTranspose, Where, Sigmoid, Erf, Exp, Softplus, ...).
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vble_data  # noqa: E402
from vble_net import (LIK_EPS, SCALE_MIN, SIGMA_MIN, SLOPE, STRIDE, Decode, DecodeVJP,  # noqa: E402
                      Encode, RateWithGrad, VbleNet)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GRAPHS = {
    "encode": dict(file="vble_encode.onnx", inputs=["x"], outputs=["z", "h"]),
    "decode": dict(file="vble_decode.onnx", inputs=["z"], outputs=["x_mean", "sigma"]),
    "decode_vjp": dict(file="vble_decode_vjp.onnx", inputs=["z", "g_mean", "g_sigma"],
                       outputs=["dz"]),
    "rate": dict(file="vble_rate.onnx", inputs=["z", "h"],
                 outputs=["rate", "drate_dz", "drate_dh"]),
}


def load_net(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = VbleNet(*ck["channels"])
    net.load_state_dict(ck["state_dict"])
    net.eval()
    return net, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models", "onnx"))
    ap.add_argument("--reference-json", default=None,
                    help="out/vble/vble_reference.json of vble_reference.py: its summary table "
                         "goes into the sidecar")
    a = ap.parse_args()
    torch.set_num_threads(1)
    net, ck = load_net(a.checkpoint)
    C, M, Ch = ck["channels"]
    os.makedirs(a.out_dir, exist_ok=True)

    H, W = 64, 96
    x = torch.rand(1, 1, H, W)
    z = torch.randn(1, M, H // 8, W // 8)
    h = torch.randn(1, Ch, H // 16, W // 16)
    g = torch.randn(1, 1, H, W)
    X = {0: "n", 2: "H", 3: "W"}
    Z = {0: "n", 2: "H/8", 3: "W/8"}
    Hd = {0: "n", 2: "H/16", 3: "W/16"}
    specs = {
        "encode": (Encode(net), (x,), {"x": X, "z": Z, "h": Hd}),
        "decode": (Decode(net), (z,), {"z": Z, "x_mean": X, "sigma": X}),
        "decode_vjp": (DecodeVJP(net), (z, g, g.clone()), {"z": Z, "g_mean": X, "g_sigma": X,
                                                             "dz": Z}),
        "rate": (RateWithGrad(net), (z, h), {"z": Z, "h": Hd, "rate": {},
                                             "drate_dz": Z, "drate_dh": Hd}),
    }
    sizes = {}
    for key, (mod, args, dyn) in specs.items():
        spec = GRAPHS[key]
        path = os.path.join(a.out_dir, spec["file"])
        dyn = {k: v for k, v in dyn.items() if v}
        with torch.no_grad():
            torch.onnx.export(mod, args, path, input_names=spec["inputs"],
                              output_names=spec["outputs"], dynamic_axes=dyn, opset_version=17,
                              dynamo=False, do_constant_folding=True)
        m = onnx.load(path)
        onnx.checker.check_model(m)
        onnx.save(m, path)  # a single file
        ops = sorted({n.op_type for n in m.graph.node})
        sizes[key] = os.path.getsize(path)
        # onnxruntime against torch on another size
        H2, W2 = 48, 80
        feeds_t = {"encode": (torch.rand(1, 1, H2, W2),),
                   "decode": (torch.randn(1, M, H2 // 8, W2 // 8),),
                   "decode_vjp": (torch.randn(1, M, H2 // 8, W2 // 8), torch.randn(1, 1, H2, W2),
                                  torch.randn(1, 1, H2, W2)),
                   "rate": (torch.randn(1, M, H2 // 8, W2 // 8) * 2,
                            torch.randn(1, Ch, H2 // 16, W2 // 16) * 2)}[key]
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {n: t.numpy() for n, t in zip(spec["inputs"], feeds_t)})
        with torch.no_grad():
            ref = mod(*feeds_t)
        ref = ref if isinstance(ref, tuple) else (ref,)
        errs = [float(np.abs(o - r.numpy()).max() / (np.abs(r.numpy()).max() + 1e-30))
                for o, r in zip(outs, ref)]
        print(f"{spec['file']}: {sizes[key] / 1024:.0f} KiB, ops {ops}, "
              f"onnxruntime vs torch rel. max err {['%.1e' % e for e in errs]}")

    rec = ck["record"]
    side = {
        "format": "sparseinv-vble-xz",
        "version": 1,
        "method": "VBLE-xz prior (Biquard et al. 2024, arXiv:2412.04130): mean-scale hyperprior "
                  "autoencoder with a decoder standard deviation sigma_theta(z)",
        "stride": STRIDE,
        "latent_stride": {"z": 8, "h": 16},
        "channels": {"C": C, "z": M, "h": Ch},
        "pixel_scaling": "x in [0, 1]: panchromatic = mean(R, G, B) / 255 of the simulated "
                         "satellite image; no offset",
        "activation": {"leaky_relu_slope": SLOPE},
        "sigma_theta": f"sigmoid(t) + {SIGMA_MIN}",
        "entropy_model": {
            "z_given_h": "N(mu, s^2) * U(-1/2, 1/2), (mu, r) = h_s(h), s = "
                         f"{SCALE_MIN} + softplus(r)",
            "h": "per-channel Logistic(m_c, exp(log_t_c)) * U(-1/2, 1/2)",
            "rate": f"sum -ln(P_z + {LIK_EPS}) + sum -ln(P_h + {LIK_EPS}), nats, summed over "
                    "all elements (and the batch)",
        },
        "graphs": {k: {**v, "bytes": sizes[k]} for k, v in GRAPHS.items()},
        "shapes": {"x": "[N,1,H,W]", "z": "[N,%d,H/8,W/8]" % M, "h": "[N,%d,H/16,W/16]" % Ch,
                   "rate": "[1]", "dtype": "float32", "H, W": "multiples of 16"},
        "data": {
            "source": "deepforest==2.1.0 wheel (PyPI, MIT licence), deepforest/data/*.png "
                      "(NEON airborne RGB, 10 cm)",
            "simulation": f"mean of RGB / 255, Gaussian PSF sigma {vble_data.PSF_SIGMA} fine px, "
                          f"{vble_data.FACTOR}x{vble_data.FACTOR} block mean (30 cm)",
            "train_tiles": vble_data.TRAIN_TILES,
            "heldout_tiles": vble_data.HELDOUT_TILES,
        },
        "inference_defaults": {
            "lambda": 1.0, "optimizer": "Adam(lr 0.1, betas 0.9/0.999, eps 1e-8)",
            "steps": 200, "samples": 100, "a_clamp": [1.5e-5, 20.0], "b_clamp": [1e-4, 3.0],
            "init": "zbar, hbar = encode(A^+ y); a_z = a_h = b = 1",
            "sigma_theta_detached_in_x": True,
            "reference": "models/train/vble_reference.py",
        },
        "training": rec,
    }
    if a.reference_json:
        with open(a.reference_json) as f:
            ref = json.load(f)
        side["reference_eval"] = {
            "what": "deblurring of 128x128 held-out tiles, periodic Gaussian PSF, mean over "
                    "tiles; PSNR dB; coverage of mean +- q std",
            "args": {k: ref["args"][k] for k in ("steps", "samples", "psf_sigma", "noise", "lr",
                                                  "lam")},
            "tiles": sorted({r["tile"] for r in ref["rows"] if r["op"] == "blur"}),
            "summary": ref["summary"], "seconds": ref["seconds"]}
    with open(os.path.join(a.out_dir, "vble_small.json"), "w") as f:
        json.dump(side, f, indent=1)
    print("total", sum(sizes.values()) / 1024, "KiB; wrote", os.path.join(a.out_dir, "vble_small.json"))


if __name__ == "__main__":
    main()
