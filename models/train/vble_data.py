"""Satellite-like panchromatic images from the aerial tiles bundled in the `deepforest` wheel.

    python models/train/vble_data.py [--cache DIR]      # downloads (once) and prints a summary

Source: `deepforest==2.1.0` from PyPI (MIT licence), fetched with
`pip download --no-deps --only-binary=:all: deepforest==2.1.0` into a cache directory
(default: `<repo>/target/vble_cache`, ignored by git; `--cache` elsewhere). The PNG tiles in
`deepforest/data/` (NEON airborne RGB orthophotos, 10 cm ground sampling distance) are read
straight from the wheel with `zipfile`; the drone JPEG and the TIFF duplicate of OSBS_029 are
skipped.

Simulation of a panchromatic satellite image (used for both training and evaluation):
1. panchromatic band = mean of R, G, B, divided by 255 (so the result lies in [0, 1]);
2. optical PSF: isotropic Gaussian of standard deviation PSF_SIGMA = 1.5 fine (10 cm) pixels,
   applied with reflective borders;
3. detector integration + resampling: block mean over FACTOR x FACTOR = 3 x 3 fine pixels,
   i.e. 30 cm ground sampling distance (WorldView-3 / Pleiades Neo panchromatic class). The
   system MTF at the new Nyquist frequency is about 0.29 (Gaussian) x 0.64 (box) = 0.19.

Split (whole tiles):
- training: 2019_YELL_2_528000_4978000_image_crop2 (766 x 824 after x3), OSBS_029 and
  SOAP_031 (133 x 133 each);
- held out (never used in training): SOAP_061 (133 x 133) and
  2019_YELL_2_541000_4977000_image_crop (another NEON tile, 416 x 345 after x3).
"""

import argparse
import io
import os
import subprocess
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CACHE = os.path.join(ROOT, "target", "vble_cache")
WHEEL_VERSION = "2.1.0"
WHEEL = f"deepforest-{WHEEL_VERSION}-py3-none-any.whl"

TRAIN_TILES = ["2019_YELL_2_528000_4978000_image_crop2", "OSBS_029", "SOAP_031"]
HELDOUT_TILES = ["SOAP_061", "2019_YELL_2_541000_4977000_image_crop"]
FACTOR = 3
PSF_SIGMA = 1.5  # fine pixels


def wheel_path(cache=None):
    """Path of the deepforest wheel, downloading it with pip into `cache` if missing."""
    cache = cache or DEFAULT_CACHE
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, WHEEL)
    if not os.path.exists(path):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"deepforest=={WHEEL_VERSION}", "-d", cache]
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not os.path.exists(path):
        raise FileNotFoundError(f"pip did not produce {path}")
    return path


def read_rgb(name, cache=None):
    """uint8 RGB array [H, W, 3] of deepforest/data/<name>.png read from the wheel."""
    from PIL import Image
    with zipfile.ZipFile(wheel_path(cache)) as z:
        data = z.read(f"deepforest/data/{name}.png")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def gaussian_blur_reflect(img, sigma):
    """Separable Gaussian blur (truncated at 4 sigma) with reflective ('symmetric') borders."""
    r = int(np.ceil(4 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, r, mode="symmetric")
    tmp = np.zeros((p.shape[0], img.shape[1]))
    for i, w in enumerate(k):
        tmp += w * p[:, i:i + img.shape[1]]
    out = np.zeros(img.shape)
    for i, w in enumerate(k):
        out += w * tmp[i:i + img.shape[0], :]
    return out


def to_satellite(rgb, factor=FACTOR, psf_sigma=PSF_SIGMA):
    """Panchromatic, PSF-blurred, block-averaged image in [0, 1] (float32)."""
    pan = rgb.astype(np.float64).mean(axis=2) / 255.0
    pan = gaussian_blur_reflect(pan, psf_sigma)
    h, w = (pan.shape[0] // factor) * factor, (pan.shape[1] // factor) * factor
    pan = pan[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return np.clip(pan, 0.0, 1.0).astype(np.float32)


_CACHE = {}


def load(name, cache=None):
    """Satellite-like image of one tile (memoised)."""
    if name not in _CACHE:
        _CACHE[name] = to_satellite(read_rgb(name, cache))
    return _CACHE[name]


def train_images(cache=None):
    return [load(n, cache) for n in TRAIN_TILES]


def heldout_images(cache=None):
    return [load(n, cache) for n in HELDOUT_TILES]


def eval_tiles(size=128, cache=None):
    """Fixed held-out evaluation tiles [(label, array)]: the centre of SOAP_061 and four
    non-overlapping tiles of the YELL_541000 crop (which never enters training)."""
    soap = load("SOAP_061", cache)
    yell = load("2019_YELL_2_541000_4977000_image_crop", cache)
    tiles = []
    r0, c0 = (soap.shape[0] - size) // 2, (soap.shape[1] - size) // 2
    tiles.append(("SOAP_061_c", soap[r0:r0 + size, c0:c0 + size]))
    for i, (r, c) in enumerate([(20, 20), (20, 200), (190, 20), (190, 200)]):
        if r + size <= yell.shape[0] and c + size <= yell.shape[1]:
            tiles.append((f"YELL_541000_t{i}", yell[r:r + size, c:c + size]))
    return [(n, np.ascontiguousarray(t)) for n, t in tiles]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="directory of the downloaded wheel")
    a = ap.parse_args()
    for n in TRAIN_TILES + HELDOUT_TILES:
        im = load(n, a.cache)
        split = "train" if n in TRAIN_TILES else "held-out"
        print(f"{split:8s} {n:42s} {im.shape} mean {im.mean():.3f} std {im.std():.3f}")
    for n, t in eval_tiles(cache=a.cache):
        print("eval tile", n, t.shape, f"mean {t.mean():.3f} std {t.std():.3f}")


if __name__ == "__main__":
    main()
