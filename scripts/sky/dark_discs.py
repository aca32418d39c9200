#!/usr/bin/env python3
"""Depth of the dark discs / rings around the brightest core stars of M13 in a deconvolved image.

    .venv/bin/python scripts/sky/dark_discs.py out/m13_deconv.fits
    .venv/bin/python scripts/sky/dark_discs.py out/m13_deconv.fits --input testdata/m13.fits \\
        --json out/m13_dark_discs.json
    .venv/bin/python scripts/sky/dark_discs.py testdata/m13.fits      (the input as a stand-in)

DECONV (first image HDU with data) must have the shape of INPUT (default testdata/m13.fits)
and be in the same data units (the depth in sigma units uses the input's noise). Runs in about
a second.

Steps
  1. Cluster centre: iterative light-weighted centroid (within 60 px) of the input after a
     15 x 15 median filter, minus the sky (median of the four 40 x 40 corners); start at the
     image centre. For testdata/m13.fits it lands at about (x, y) = (154.6, 145.7) 0-based.
     --centre X,Y overrides.
  2. Stars: local maxima (7 x 7 maximum filter) of the input smoothed by a Gaussian of sigma
     1 px, within --core-radius (40 px) of the centre and at least --rmax (25 px) from the
     image edge, ranked by the smoothed peak; the --nstars (10) brightest are kept. Position =
     intensity-weighted centroid over the 3 x 3 pixels around the maximum (input minus the
     3 x 3 minimum); "peak" is the input's value at the maximum pixel.
  3. Per star, in DECONV: azimuthally averaged profile in 1-px annuli (pixel centres at
     distance r with round(r) = k, k = 0..25) about the star position. Ring minimum = the
     lowest profile value for k in [--rmin-ring, --rmax-ring] = [2, 12]; r_min its radius.
     Local background = median of DECONV's pixels with 15 <= r <= 25 (--ann-in, --ann-out).
     depth = local background - ring minimum (positive = the ring is darker than the
     surroundings). In the crowded core the annulus holds other stars, hence the median.
  4. Noise sigma (for depth / sigma): 1.4826 x MAD of (input - its 15 x 15 median filter)
     over pixels more than --noise-radius (100 px) from the centre; the median filter takes out
     the cluster's light gradient. For integer-valued input the MAD is quantized, so the
     values are first dithered by U(-0.5, 0.5) (fixed seed). --sigma overrides.

Output: a table on stdout, the median depth (data units and sigma), and with --json OUT the
same as JSON.
"""

import argparse
import json
import sys

import numpy as np
from astropy.io import fits
from scipy import ndimage as nd


def load(path):
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim >= 2:
                d = np.asarray(hdu.data, dtype=np.float64)
                return d.reshape(d.shape[-2:]) if d.ndim > 2 else d
    sys.exit(f"{path}: no image data")


def cluster_centre(img):
    h, w = img.shape
    c = 40
    sky = np.median([np.median(img[:c, :c]), np.median(img[:c, -c:]),
                     np.median(img[-c:, :c]), np.median(img[-c:, -c:])])
    sm = nd.median_filter(img, size=15, mode="reflect")
    yy, xx = np.indices(img.shape, dtype=np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    for _ in range(50):
        wgt = np.clip(sm - sky, 0, None) * (np.hypot(xx - cx, yy - cy) < 60)
        nx, ny = (wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()
        done = np.hypot(nx - cx, ny - cy) < 1e-3
        cx, cy = nx, ny
        if done:
            break
    return cx, cy


def noise_sigma(img, cx, cy, rnoise):
    hp = img - nd.median_filter(img, size=15, mode="reflect")
    yy, xx = np.indices(img.shape)
    v = hp[(np.hypot(xx - cx, yy - cy) > rnoise) & np.isfinite(hp)]
    if np.all(img[np.isfinite(img)] == np.round(img[np.isfinite(img)])):
        v = v + np.random.default_rng(0).uniform(-0.5, 0.5, v.size)
    return 1.4826 * np.median(np.abs(v - np.median(v))), int(v.size)


def find_stars(img, cx, cy, rcore, edge, nstars):
    sm = nd.gaussian_filter(img, 1.0)
    mx = nd.maximum_filter(sm, size=7, mode="nearest")
    h, w = img.shape
    yy, xx = np.indices(img.shape)
    ok = ((sm == mx) & (np.hypot(xx - cx, yy - cy) <= rcore)
          & (xx >= edge) & (xx < w - edge) & (yy >= edge) & (yy < h - edge))
    ys, xs = np.nonzero(ok)
    order = np.argsort(sm[ys, xs])[::-1][:nstars]
    stars = []
    for y, x in zip(ys[order], xs[order]):
        cut = img[y - 1:y + 2, x - 1:x + 2]
        wgt = cut - cut.min()
        oy, ox = np.mgrid[-1:2, -1:2]
        s = wgt.sum()
        fx = x + (wgt * ox).sum() / s if s > 0 else float(x)
        fy = y + (wgt * oy).sum() / s if s > 0 else float(y)
        stars.append((float(fx), float(fy), float(img[y, x]), float(sm[y, x])))
    return stars


def measure(dec, x0, y0, a):
    r = np.hypot(*(np.indices(dec.shape)[::-1] - np.array([x0, y0])[:, None, None]))
    k = np.rint(r).astype(int)
    good = np.isfinite(dec)
    kmax = int(np.ceil(a.ann_out))
    sel = good & (k <= kmax)
    if a.profile_stat == "median":
        prof = np.array([np.median(dec[sel & (k == j)]) for j in range(kmax + 1)])
    else:
        prof = (np.bincount(k[sel], weights=dec[sel], minlength=kmax + 1)
                / np.maximum(np.bincount(k[sel], minlength=kmax + 1), 1))
    ring = np.arange(a.rmin_ring, a.rmax_ring + 1)
    i = int(np.argmin(prof[ring]))
    ann = dec[good & (r >= a.ann_in) & (r <= a.ann_out)]
    bg = float(np.median(ann))
    return {"ring_min": float(prof[ring[i]]), "r_min": int(ring[i]), "local_bg": bg,
            "depth": bg - float(prof[ring[i]]), "profile": [float(v) for v in prof]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("deconv", help="deconvolved FITS image")
    ap.add_argument("--input", default="testdata/m13.fits", help="input image (star finding)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    ap.add_argument("--nstars", type=int, default=10)
    ap.add_argument("--centre", help="cluster centre X,Y (0-based pixels); default: measured")
    ap.add_argument("--core-radius", type=float, default=40.0)
    ap.add_argument("--noise-radius", type=float, default=100.0)
    ap.add_argument("--sigma", type=float, help="noise sigma in data units; default: measured")
    ap.add_argument("--rmin-ring", type=int, default=2)
    ap.add_argument("--rmax-ring", type=int, default=12)
    ap.add_argument("--ann-in", type=float, default=15.0)
    ap.add_argument("--ann-out", type=float, default=25.0)
    ap.add_argument("--profile-stat", choices=["mean", "median"], default="mean",
                    help="azimuthal statistic of the profile (median: robust to neighbours)")
    a = ap.parse_args()

    img = load(a.input)
    dec = load(a.deconv)
    if dec.shape != img.shape:
        sys.exit(f"shape mismatch: {a.deconv} {dec.shape} vs {a.input} {img.shape}")
    if a.centre:
        cx, cy = (float(v) for v in a.centre.split(","))
    else:
        cx, cy = cluster_centre(img)
    if a.sigma is not None:
        sigma, nnoise = a.sigma, 0
    else:
        sigma, nnoise = noise_sigma(img, cx, cy, a.noise_radius)
    stars = find_stars(img, cx, cy, a.core_radius, int(np.ceil(a.ann_out)), a.nstars)

    rows = []
    for x, y, peak, speak in stars:
        m = measure(dec, x, y, a)
        rows.append({"x": x, "y": y, "r_centre": float(np.hypot(x - cx, y - cy)),
                     "peak": peak, "peak_smoothed": speak, "deconv_peak":
                     float(dec[int(round(y)), int(round(x))]), **m,
                     "depth_sigma": m["depth"] / sigma})
    med = float(np.median([r["depth"] for r in rows])) if rows else float("nan")

    print(f"deconv {a.deconv}  input {a.input}  shape {img.shape}")
    print(f"cluster centre (x, y) = ({cx:.1f}, {cy:.1f}) 0-based; core radius {a.core_radius:g} px;"
          f" noise sigma {sigma:.3f} ({'given' if a.sigma is not None else f'MAD, r > {a.noise_radius:g} px, {nnoise} px'})")
    print(f"ring r in [{a.rmin_ring}, {a.rmax_ring}] px, local background = median over "
          f"{a.ann_in:g} <= r <= {a.ann_out:g} px; profile = azimuthal {a.profile_stat}")
    print(f"{'#':>2} {'x':>7} {'y':>7} {'peak':>7} {'dec_pk':>9} {'ring_min':>9} {'r_min':>5} "
          f"{'local_bg':>9} {'depth':>8} {'depth/sig':>9}")
    for i, r in enumerate(rows):
        print(f"{i:>2} {r['x']:7.2f} {r['y']:7.2f} {r['peak']:7.0f} {r['deconv_peak']:9.1f} "
              f"{r['ring_min']:9.2f} {r['r_min']:5d} {r['local_bg']:9.2f} {r['depth']:8.2f} "
              f"{r['depth_sigma']:9.2f}")
    print(f"median depth {med:.2f} ({med / sigma:.2f} sigma) over {len(rows)} stars")

    if a.json:
        out = {"deconv": a.deconv, "input": a.input, "shape": list(img.shape),
               "centre": [cx, cy], "core_radius": a.core_radius, "sigma": sigma,
               "sigma_source": "given" if a.sigma is not None else
               f"1.4826*MAD(input - median15(input)), r > {a.noise_radius} px",
               "ring_range": [a.rmin_ring, a.rmax_ring], "profile_stat": a.profile_stat, "annulus": [a.ann_in, a.ann_out],
               "median_depth": med, "median_depth_sigma": med / sigma, "stars": rows}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
