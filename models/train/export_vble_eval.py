"""Write the held-out VBLE evaluation set to testdata/vble/ so that the Rust evaluation
(`models/examples/vble_eval.rs`) needs no Python:

    python models/train/export_vble_eval.py [--cache DIR] [--out testdata/vble]

Files (all little-endian .npy):
- `tiles.npy`: float32 [T, 128, 128], the held-out tiles `vble_data.eval_tiles(128)` (the
  centre of SOAP_061 and four tiles of the YELL_541000 crop, none used in training), exactly
  the arrays `vble_reference.py` evaluates on (they are float32 there too);
- `train_psd128.npy`: float64 [128, 128], `vble_reference.training_psd(128)`: the mean
  periodogram |F(x - mean x)|^2 / 128^2 of 400 random 128x128 crops of the training tiles
  (seed 0), the signal spectrum of the reference's Wiener filter;
- `train_mean_stats.npy`: float64 [2], the mean and the variance of the crop means of the
  same 400 crops (same draws), so that a proper stationary Gaussian prior N(mu 1, Sigma) can be
  built (Sigma's zero-frequency power is 128^2 * variance of the means);
- `tiles.json`: the tile names, in order, and the provenance.

The wheel `deepforest==2.1.0` (MIT licence) is downloaded by pip into the ignored cache of
`vble_data.py` (default `<repo>/target/vble_cache`).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vble_data  # noqa: E402
import vble_reference  # noqa: E402

ROOT = vble_data.ROOT


def crop_mean_stats(n=128, crops=400, seed=0, cache=None):
    """Mean and variance of the means of the crops `training_psd` draws (same generator
    calls in the same order, so the same crops)."""
    rng = np.random.default_rng(seed)
    ims = vble_data.train_images(cache)
    w = np.array([im.size for im in ims], float)
    means = []
    for _ in range(crops):
        im = ims[rng.choice(len(ims), p=w / w.sum())]
        r = rng.integers(im.shape[0] - n + 1)
        c = rng.integers(im.shape[1] - n + 1)
        means.append(float(im[r:r + n, c:c + n].astype(np.float64).mean()))
    means = np.array(means)
    return np.array([means.mean(), means.var()])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=vble_data.DEFAULT_CACHE)
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata", "vble"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tiles = vble_data.eval_tiles(128, a.cache)
    names = [n for n, _ in tiles]
    for n, _ in tiles:
        assert not any(n.startswith(t) for t in vble_data.TRAIN_TILES), n
    stack = np.stack([t for _, t in tiles]).astype(np.float32)
    psd = vble_reference.training_psd(128, cache=a.cache).astype(np.float64)
    stats = crop_mean_stats(128, cache=a.cache)
    np.save(os.path.join(a.out, "tiles.npy"), stack)
    np.save(os.path.join(a.out, "train_psd128.npy"), psd)
    np.save(os.path.join(a.out, "train_mean_stats.npy"), stats)
    meta = {
        "tiles": names,
        "shape": list(stack.shape),
        "source": f"deepforest=={vble_data.WHEEL_VERSION} wheel (PyPI, MIT licence), "
                  "NEON airborne RGB tiles in deepforest/data/",
        "simulation": "panchromatic mean(RGB)/255, Gaussian PSF sigma 1.5 fine px (reflect), "
                      "3x3 block mean (models/train/vble_data.py)",
        "held_out": vble_data.HELDOUT_TILES,
        "psd": "vble_reference.training_psd(128): mean |F(x - mean x)|^2/128^2 over 400 "
               "training crops (seed 0)",
        "train_mean_stats": "[mean, variance] of the same 400 crop means",
        "command": "python models/train/export_vble_eval.py",
    }
    with open(os.path.join(a.out, "tiles.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    for n, t in tiles:
        print(f"{n:18s} mean {t.mean():.4f} std {t.std():.4f}")
    print(f"psd: mean {psd.mean():.5f} (= mean pixel variance of a crop), DC {psd[0, 0]:.3g}; "
          f"crop means: mean {stats[0]:.4f}, variance {stats[1]:.3g}")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
