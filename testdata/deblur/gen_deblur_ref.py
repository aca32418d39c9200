"""Reference outputs of the learned deblurring pipeline (sparseinv_models::LearnedDeblur) for
the Rust test models/tests/deblur_reference.rs, computed WITHOUT torch: numpy FFTs for the
Wiener stages and Python onnxruntime for the two graphs, following the formulas of
models/src/deblur.rs and models/train/train_deblur.py.

    .venv/bin/python testdata/deblur/gen_deblur_ref.py

Writes testdata/deblur/{y,psf,x_w,expected}.npy and params.json (offset, scale, sigma).
Re-run whenever models/onnx/deblur_small* change.
"""

import json
import os

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ONNX = os.path.join(ROOT, "models", "onnx")


def wiener_reflect(v, k, mu):
    """crop(F^-1[conj(K) F[pad(v)] / (|K|^2 + mu)]), numpy 'reflect' padding by the PSF size."""
    h, w = v.shape
    kh, kw = k.shape
    p = np.pad(v.astype(np.float64), ((kh, kh), (kw, kw)), mode="reflect")
    big = np.zeros(p.shape)
    big[:kh, :kw] = k
    big = np.roll(big, (-(kh // 2), -(kw // 2)), (0, 1))
    kf = np.fft.fft2(big)
    x = np.real(np.fft.ifft2(np.conj(kf) * np.fft.fft2(p) / (np.abs(kf) ** 2 + mu)))
    return x[kh:kh + h, kw:kw + w]


def main():
    side = json.load(open(os.path.join(ONNX, "deblur_small.json")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(os.path.join(ONNX, side["encoder"]), opts)
    dec = ort.InferenceSession(os.path.join(ONNX, side["decoder"]), opts)
    rng = np.random.default_rng(3)
    h, w = 30, 37  # not multiples of 4: exercises the decoder padding
    ii, jj = np.mgrid[:h, :w]
    clean = 0.5 + 0.3 * np.sin(0.4 * ii) * np.cos(0.3 * jj) + 0.2 * (ii > 15)
    psf = np.exp(-0.5 * (((np.arange(5) - 2)[:, None] / 1.2) ** 2 + ((np.arange(7) - 3)[None] / 1.8) ** 2))
    psf[0, 6] = 0.3  # asymmetric
    psf = psf / psf.sum() * 2.0  # not unit sum: the pipeline normalises it
    offset, scale, sigma = 0.1, 2.0, 0.06
    blurred = np.real(np.fft.ifft2(np.fft.fft2(clean) * np.fft.fft2(np.roll(np.pad(psf / psf.sum(), ((0, h - 5), (0, w - 7))), (-2, -3), (0, 1)))))
    y = offset + scale * (blurred + 0.03 * rng.standard_normal((h, w)))

    k = psf / psf.sum()
    u = (y - offset) / scale
    s = sigma / scale
    s2 = s * s
    xw = wiener_reflect(u, k, np.exp(side["beta_image"]) * s2 + side["eps"])
    f = enc.run(None, {enc.get_inputs()[0].name: np.stack([u, np.full_like(u, s)])[None].astype(np.float32)})[0]
    g = [wiener_reflect(f[0, c].astype(np.float64), k, np.exp(b) * s2 + side["eps"])
         for c, b in enumerate(side["beta_features"])]
    m = side["multiple"]
    hp, wp = -(-h // m) * m, -(-w // m) * m
    chans = [u, xw] + g + [np.full_like(u, s)]
    d_in = np.stack([np.pad(c, ((0, hp - h), (0, wp - w)), mode="reflect") for c in chans])[None]
    out = dec.run(None, {dec.get_inputs()[0].name: d_in.astype(np.float32)})[0]
    x = scale * out[0, 0, :h, :w].astype(np.float64) + offset

    np.save(os.path.join(HERE, "y.npy"), y)
    np.save(os.path.join(HERE, "psf.npy"), psf)
    np.save(os.path.join(HERE, "x_w.npy"), xw)
    np.save(os.path.join(HERE, "expected.npy"), x)
    with open(os.path.join(HERE, "params.json"), "w") as fh:
        json.dump({"offset": offset, "scale": scale, "sigma": sigma,
                   "onnxruntime": ort.__version__}, fh, indent=1)
    print("max |x|", np.abs(x).max(), "x_w range", xw.min(), xw.max())


if __name__ == "__main__":
    main()
