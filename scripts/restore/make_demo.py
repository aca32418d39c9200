"""Demo inputs of `sparseinv restore` (README), from a held-out satellite-like image.

    python scripts/restore/make_demo.py            # writes testdata/vble/demo_*

A 256 x 320 crop of the held-out `YELL_541000` image (never used in training; see
models/train/vble_data.py: NEON aerial tiles of the deepforest 2.1.0 wheel, MIT licence,
made panchromatic at 30 cm), and three degraded versions of it with white noise:
- `demo_blurred.png`: Gaussian PSF sigma 1.5 px (15 x 15, `demo_psf.npy`), periodic, noise 0.02;
- `demo_low.png`: 2 x 2 block mean (128 x 160), noise 0.01;
- `demo_holes.png` + `demo_mask.png`: 30 % of the pixels in random 4 x 4 blocks missing (mask 0),
  noise 0.02 (the rest observed, so the noise can be estimated);
and `demo_truth.png`. Pictures are 16-bit PNG in [0, 1] (clipped). Seed 0: reruns are identical.
"""
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
import vble_data  # noqa: E402


def png16(path, a):
    v = np.round(np.clip(a, 0.0, 1.0) * 65535.0).astype(np.uint16)
    Image.fromarray(v).save(path)


def main():
    out = os.path.join(ROOT, "testdata", "vble")
    os.makedirs(out, exist_ok=True)
    name = "2019_YELL_2_541000_4977000_image_crop"
    img = vble_data.load(name).astype(np.float64)
    r0, c0 = 40, 48
    x = img[r0:r0 + 256, c0:c0 + 320]
    rng = np.random.default_rng(0)
    t = np.arange(15) - 7
    k = np.exp(-0.5 * (t[:, None] ** 2 + t[None, :] ** 2) / 1.5 ** 2)
    k /= k.sum()
    pad = np.zeros_like(x)
    pad[:15, :15] = k
    K = np.fft.fft2(np.roll(pad, (-7, -7), axis=(0, 1)))
    blurred = np.real(np.fft.ifft2(np.fft.fft2(x) * K)) + 0.02 * rng.standard_normal(x.shape)
    low = x.reshape(128, 2, 160, 2).mean(axis=(1, 3)) + 0.01 * rng.standard_normal((128, 160))
    blocks = rng.random((64, 80)) < 0.3
    mask = ~np.kron(blocks, np.ones((4, 4), bool))
    holes = np.where(mask, x + 0.02 * rng.standard_normal(x.shape), 0.0)
    png16(os.path.join(out, "demo_truth.png"), x)
    png16(os.path.join(out, "demo_blurred.png"), blurred)
    png16(os.path.join(out, "demo_low.png"), low)
    png16(os.path.join(out, "demo_holes.png"), holes)
    Image.fromarray(mask.astype(np.uint8) * 255).save(os.path.join(out, "demo_mask.png"))
    np.save(os.path.join(out, "demo_psf.npy"), k)
    print(f"wrote demo_* to {out} (rows {r0}:{r0 + 256}, cols {c0}:{c0 + 320} of {name})")


if __name__ == "__main__":
    main()
