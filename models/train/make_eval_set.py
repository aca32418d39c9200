"""Write the held-out evaluation set of examples/deblur_quality.rs into models/eval/.

    .venv/bin/python models/train/make_eval_set.py

For each held-out image of models/train/train_deblur.py (camera, coins, cell; never used in
training) the central (256 + KS - 1)^2 crop, as 8-bit PNG (lossless: the sources are 8-bit),
and the two evaluation PSFs (19 x 19, float64 .npy): a Gaussian of standard deviation 2 px
and a fixed random camera-shake kernel of path length 13 px (seed 7). The observation is the
'valid' convolution of the crop, i.e. 256 x 256 with realistic (non-periodic) borders.
"""

import os
import sys

import numpy as np
from skimage import io, img_as_ubyte

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_deblur import KS, ROOT, TEST, eval_kernels, load  # noqa: E402

CROP = 256


def main():
    out = os.path.join(ROOT, "models", "eval")
    os.makedirs(out, exist_ok=True)
    big = CROP + KS - 1
    for name in TEST:
        im = load(name)
        h, w = im.shape
        i0, j0 = (h - big) // 2, (w - big) // 2
        crop = im[i0:i0 + big, j0:j0 + big]
        io.imsave(os.path.join(out, f"{name}.png"), img_as_ubyte(np.clip(crop, 0, 1)),
                  check_contrast=False)
    for kname, k in eval_kernels().items():
        np.save(os.path.join(out, f"psf_{kname}.npy"), k)
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
