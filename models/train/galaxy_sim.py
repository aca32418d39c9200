#!/usr/bin/env python3
"""Galaxy-stamp simulator for the Tikhonov-residual U-Net (models/train/train_galaxy.py).

Every stamp is an independent draw; stamp i of a run with seed S uses the generator
``numpy.random.default_rng([S, i])`` (GalSim's RandomKnots gets a seed drawn from it), so the
result is deterministic given the seed and the first k stamps do not depend on n.

Conventions (all sizes in pixels, pixel scale notionally 0.2"):

* arrays are [row, col]; pixel centres at integer coordinates, 0-based. GalSim's x is the
  column, y the row. A 64 x 64 stamp drawn by GalSim has its "true centre" at (31.5, 31.5);
  ``drawImage(offset=(dx, dy))`` moves the profile centre to (row 31.5 + dy, col 31.5 + dx).
* truth x: the scene WITHOUT PSF, integrated over the pixels (GalSim ``method="auto"``), in
  counts. Main galaxy = bulge + disk + knots centred at centre.npy (the profile centre, i.e.
  the centre of the bulge and of the disk; the knots are random points drawn from the disk
  profile, so the flux-weighted centroid differs from it by knot_frac * mean(knot offsets),
  a fraction of a pixel). Bulge: galsim.DeVaucouleurs truncated at 10 hlr
  (flux_untruncated=False) and convolved with a Gaussian of sigma 0.2 px (the n = 4 cusp
  would otherwise need ~70000^2 FFTs; same idea as scripts/multiband/simulate.py). Disk:
  galsim.Exponential. Knots: galsim.RandomKnots(profile=disk) positions, each knot a
  Gaussian of sigma 0.2 px integrated exactly over the pixels (erf; the same as GalSim's
  auto drawing of Convolve(knots, Gaussian), ~20x faster; see check()).
* a neighbour galaxy (30 %) and a star (15 %) may be added; the star is a point source,
  which integrated over the pixels puts all its flux into the pixel it falls in (positions
  are therefore drawn at pixel centres).
* PSF: galsim.Moffat (beta U(2.5, 5)) or galsim.Kolmogorov, 50/50, FWHM U(2.5, 6) px,
  shear |g| <= 0.05; drawn on 25 x 25 with method="no_pixel" (x already carries the pixel),
  unit sum, centre at (12, 12).
* y = scipy.signal.fftconvolve(x, psf, mode="same") + N(0, sigma^2) (zero outside the stamp);
  sigma = sqrt(sum((psf * x)^2)) / snr with snr log-uniform in snr_range.

CLI:
    python models/train/galaxy_sim.py --n 24000 --seed 1 --out out/galaxy/train
    python models/train/galaxy_sim.py --check       # the convention checks
writes y.npy, x.npy (float64 [N,64,64]), psf.npy ([N,25,25]), sigma.npy, snr.npy, fwhm_px.npy
([N]), centre.npy ([N,2], row, col), extras (flux.npy, psf_kind.npy: 0 Moffat / 1 Kolmogorov,
has_neighbour.npy, has_star.npy) and meta.json.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import galsim
from scipy.signal import fftconvolve
from scipy.special import erf

FORMAT_VERSION = 1

PARAMS = {
    "stamp": 64,
    "psf_size": 25,
    "pixel_scale_arcsec_notional": 0.2,
    "snr_range": [5.0, 400.0],  # log-uniform; SNR = sqrt(sum((psf*x)^2)) / sigma
    "main_flux": [1.0e3, 1.0e5],  # log-uniform total counts of the main galaxy
    "centre_offset_px": [-2.0, 2.0],  # uniform, each axis, from the stamp centre (31.5, 31.5)
    "disk_hlr_px": [1.0, 8.0],  # log-uniform
    "bulge_hlr_over_disk": [0.15, 0.5],
    "bulge_fraction": [0.0, 0.6],
    "bulge_trunc_over_hlr": 10.0,
    "bulge_smoothing_sigma_px": 0.2,
    "disk_g": [0.0, 0.6],  # |g| uniform
    "bulge_g_over_disk_g": [0.2, 0.7],
    "bulge_pa_minus_disk_pa_deg": [-15.0, 15.0],
    "n_knots": [0, 30],  # inclusive
    "knot_fraction_of_disk": [0.0, 0.3],
    "knot_sigma_px": 0.2,
    "p_neighbour": 0.30,
    "neighbour_flux_ratio": [0.05, 0.5],  # log-uniform, times the main flux
    "neighbour_disk_hlr_px": [0.7, 4.0],  # log-uniform
    "neighbour_centre_px": [4.0, 59.0],  # uniform, each axis
    "neighbour_min_separation_px": 8.0,
    "p_star": 0.15,
    "star_flux_ratio": [0.02, 0.5],  # log-uniform, times the main flux
    "star_pixel": [3, 60],  # inclusive, each axis
    "star_min_separation_px": 6.0,
    "psf_kinds": {"moffat": 0.5, "kolmogorov": 0.5},
    "psf_fwhm_px": [2.5, 6.0],
    "moffat_beta": [2.5, 5.0],
    "psf_g": [0.0, 0.05],
    "gsparams": {"maximum_fft_size": 4096},
}
GSP = galsim.GSParams(**PARAMS["gsparams"])


def _logu(rng, lo_hi):
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_galaxy(rng, flux, hlr_range):
    P = PARAMS
    disk_hlr = _logu(rng, hlr_range)
    g_d = float(rng.uniform(*P["disk_g"]))
    pa_d = float(rng.uniform(0.0, 180.0))
    n_knots = int(rng.integers(P["n_knots"][0], P["n_knots"][1] + 1))
    return {
        "flux": flux,
        "disk_hlr": disk_hlr,
        "bulge_hlr": disk_hlr * float(rng.uniform(*P["bulge_hlr_over_disk"])),
        "bulge_fraction": float(rng.uniform(*P["bulge_fraction"])),
        "disk_g": g_d,
        "disk_pa_deg": pa_d,
        "bulge_g": g_d * float(rng.uniform(*P["bulge_g_over_disk_g"])),
        "bulge_pa_deg": pa_d + float(rng.uniform(*P["bulge_pa_minus_disk_pa_deg"])),
        "n_knots": n_knots,
        "knot_fraction": float(rng.uniform(*P["knot_fraction_of_disk"])) if n_knots else 0.0,
        "knot_seed": int(rng.integers(1, 2 ** 31 - 1)),
    }


def _pixel_gaussians(points_rc, fluxes, sigma, n):
    """Sum of Gaussians (sigma px) at (row, col) points integrated exactly over the pixels of
    an n x n image (pixel k covers [k - 0.5, k + 0.5])."""
    edges = np.arange(n + 1) - 0.5
    s = np.sqrt(2.0) * sigma
    cr = 0.5 * erf((edges[None, :] - points_rc[:, 0:1]) / s)
    cc = 0.5 * erf((edges[None, :] - points_rc[:, 1:2]) / s)
    wr = np.diff(cr, axis=1) * fluxes[:, None]  # [k, n]
    wc = np.diff(cc, axis=1)
    return wr.T @ wc


def draw_galaxy(g, row, col, n, knots_with_galsim=False, oversample=1):
    """One galaxy (params g) with its profile centre at (row, col), n x n, counts.
    oversample > 1 (checks only): method="no_pixel" on an (n*oversample)^2 grid of pixels
    1/oversample wide covering the same area, no knots."""
    P = PARAMS
    off = (col - (n - 1) / 2.0, row - (n - 1) / 2.0)
    if oversample > 1:
        img = galsim.ImageD(n * oversample, n * oversample, scale=1.0 / oversample)
        off = (off[0] * oversample, off[1] * oversample)
        method = "no_pixel"
    else:
        img = galsim.ImageD(n, n, scale=1.0)
        method = "auto"
    flux = g["flux"]
    bt, kf = g["bulge_fraction"], g["knot_fraction"]
    bulge = galsim.DeVaucouleurs(half_light_radius=g["bulge_hlr"],
                                 trunc=P["bulge_trunc_over_hlr"] * g["bulge_hlr"],
                                 flux_untruncated=False, gsparams=GSP)
    bulge = bulge.shear(g=g["bulge_g"], beta=g["bulge_pa_deg"] * galsim.degrees)
    bulge = galsim.Convolve(bulge, galsim.Gaussian(sigma=P["bulge_smoothing_sigma_px"],
                                                   gsparams=GSP), gsparams=GSP)
    disk = galsim.Exponential(half_light_radius=g["disk_hlr"], gsparams=GSP)
    disk = disk.shear(g=g["disk_g"], beta=g["disk_pa_deg"] * galsim.degrees)
    out = np.zeros(img.array.shape)
    if bt > 0:
        bulge.withFlux(flux * bt).drawImage(image=img, offset=off, method=method)
        out += img.array
    dflux = flux * (1.0 - bt) * (1.0 - kf)
    if dflux > 0:
        disk.withFlux(dflux).drawImage(image=img, offset=off, method=method)
        out += img.array
    if oversample > 1:
        return out
    kflux = flux * (1.0 - bt) * kf
    if g["n_knots"] > 0 and kflux > 0:
        knots = galsim.RandomKnots(g["n_knots"], profile=disk,
                                   rng=galsim.BaseDeviate(g["knot_seed"]), gsparams=GSP)
        if knots_with_galsim:
            k = galsim.Convolve(knots, galsim.Gaussian(sigma=P["knot_sigma_px"], gsparams=GSP),
                                gsparams=GSP).withFlux(kflux)
            k.drawImage(image=img, offset=off, method="auto")
            out += img.array
        else:
            pts = np.asarray(knots.points, dtype=np.float64)  # [k, 2] (x, y) from the centre
            rc = np.stack([row + pts[:, 1], col + pts[:, 0]], axis=1)
            f = np.full(len(pts), kflux / len(pts))
            out += _pixel_gaussians(rc, f, P["knot_sigma_px"], n)
    return out


def make_psf(rng, size):
    P = PARAMS
    fwhm = float(rng.uniform(*P["psf_fwhm_px"]))
    g = float(rng.uniform(*P["psf_g"]))
    pa = float(rng.uniform(0.0, 180.0))
    if rng.random() < P["psf_kinds"]["moffat"]:
        kind, beta = 0, float(rng.uniform(*P["moffat_beta"]))
        obj = galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=GSP)
    else:
        kind, beta = 1, float("nan")
        obj = galsim.Kolmogorov(fwhm=fwhm, gsparams=GSP)
    obj = obj.shear(g=g, beta=pa * galsim.degrees)
    a = obj.drawImage(nx=size, ny=size, scale=1.0, method="no_pixel").array.astype(np.float64)
    return a / a.sum(), fwhm, kind


def simulate_one(rng, stamp=64, psf_size=25, snr_range=(5, 400), return_parts=False):
    P = PARAMS
    n = stamp
    flux = _logu(rng, P["main_flux"])
    c = (n - 1) / 2.0
    row = c + float(rng.uniform(*P["centre_offset_px"]))
    col = c + float(rng.uniform(*P["centre_offset_px"]))
    main = sample_galaxy(rng, flux, P["disk_hlr_px"])
    x_main = draw_galaxy(main, row, col, n)
    x = x_main.copy()
    has_nb = rng.random() < P["p_neighbour"]
    if has_nb:
        lo, hi = P["neighbour_centre_px"]
        lo, hi = lo * n / 64.0, n - 1 - (63 - hi) * n / 64.0
        for _ in range(1000):
            nr, nc = rng.uniform(lo, hi), rng.uniform(lo, hi)
            if np.hypot(nr - row, nc - col) >= P["neighbour_min_separation_px"]:
                break
        nb = sample_galaxy(rng, flux * _logu(rng, P["neighbour_flux_ratio"]),
                           P["neighbour_disk_hlr_px"])
        x += draw_galaxy(nb, float(nr), float(nc), n)
    has_star = rng.random() < P["p_star"]
    if has_star:
        lo, hi = P["star_pixel"]
        hi = n - 1 - (63 - hi)
        for _ in range(1000):
            sr, sc = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
            if np.hypot(sr - row, sc - col) >= P["star_min_separation_px"]:
                break
        x[sr, sc] += flux * _logu(rng, P["star_flux_ratio"])
    psf, fwhm, kind = make_psf(rng, psf_size)
    clean = fftconvolve(x, psf, mode="same")
    snr = _logu(rng, snr_range)
    sigma = float(np.sqrt(np.sum(clean ** 2)) / snr)
    y = clean + sigma * rng.standard_normal((n, n))
    out = {"y": y, "x": x, "psf": psf, "sigma": sigma, "snr": snr, "fwhm_px": fwhm,
           "centre": np.array([row, col]), "flux": flux, "psf_kind": kind,
           "has_neighbour": has_nb, "has_star": has_star}
    if return_parts:
        out["x_main"] = x_main
        out["clean"] = clean
        out["main_params"] = main
    return out


def simulate(n, seed, stamp=64, psf_size=25, snr_range=(5, 400), progress=False):
    """n stamps; dict of stacked numpy arrays (see the module docstring)."""
    if psf_size % 2 != 1:
        raise ValueError("psf_size must be odd")
    keys = ("y", "x", "psf", "sigma", "snr", "fwhm_px", "centre", "flux", "psf_kind",
            "has_neighbour", "has_star")
    acc = {k: [] for k in keys}
    t0 = time.time()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        s = simulate_one(rng, stamp, psf_size, snr_range)
        for k in keys:
            acc[k].append(s[k])
        if progress and (i + 1) % 1000 == 0:
            el = time.time() - t0
            print("  %d/%d stamps, %.1f s (%.1f ms/stamp)" % (i + 1, n, el, 1e3 * el / (i + 1)),
                  flush=True)
    dt = {"y": np.float64, "x": np.float64, "psf": np.float64, "sigma": np.float64,
          "snr": np.float64, "fwhm_px": np.float64, "centre": np.float64, "flux": np.float64,
          "psf_kind": np.int8, "has_neighbour": bool, "has_star": bool}
    return {k: np.ascontiguousarray(np.array(acc[k], dtype=dt[k])) for k in keys}


def meta(n, seed, stamp, psf_size, snr_range, seconds=None):
    P = dict(PARAMS)
    P["stamp"], P["psf_size"], P["snr_range"] = stamp, psf_size, list(snr_range)
    return {
        "format_version": FORMAT_VERSION,
        "generator": "models/train/galaxy_sim.py",
        "n": n,
        "seed": seed,
        "per_stamp_rng": "numpy.random.default_rng([seed, i])",
        "galsim": galsim.__version__,
        "numpy": np.__version__,
        "params": P,
        "conventions": {
            "arrays": "[row, col], 0-based, pixel centres at integers, little-endian C order",
            "stamp_centre": [(stamp - 1) / 2.0, (stamp - 1) / 2.0],
            "centre": "profile centre (row, col) of the main galaxy's bulge and disk",
            "truth": "scene without PSF, GalSim method='auto' (integrated over pixels), counts",
            "psf": "method='no_pixel', unit sum, centre at (psf_size//2, psf_size//2)",
            "observation": "y = fftconvolve(x, psf, 'same') + N(0, sigma^2)",
            "snr": "sqrt(sum(fftconvolve(x, psf, 'same')^2)) / sigma",
        },
        "files": {
            "y.npy": "float64 [N,H,W] observation", "x.npy": "float64 [N,H,W] truth",
            "psf.npy": "float64 [N,K,K]", "sigma.npy": "float64 [N] noise std",
            "snr.npy": "float64 [N]", "fwhm_px.npy": "float64 [N] PSF FWHM (nominal, px)",
            "centre.npy": "float64 [N,2] main galaxy (row, col)",
            "flux.npy": "float64 [N] main galaxy total flux (untruncated by the stamp)",
            "psf_kind.npy": "int8 [N] 0 Moffat, 1 Kolmogorov",
            "has_neighbour.npy": "bool [N]", "has_star.npy": "bool [N]",
        },
        "seconds": seconds,
    }


def write(out, data, m):
    os.makedirs(out, exist_ok=True)
    for k, v in data.items():
        v = np.ascontiguousarray(v)
        if v.dtype.kind == "f":
            v = v.astype("<f8")
        np.save(os.path.join(out, k + ".npy"), v)
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(m, f, indent=1)


# ----------------------------------------------------------------------------- checks
def _moments(a):
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    s = a.sum()
    return float((a * yy).sum() / s), float((a * xx).sum() / s)


def check():
    """Convention checks; raises AssertionError on failure, prints the numbers."""
    rng = np.random.default_rng(123)
    ok = True
    # 1. PSF centre: a point source is not moved by fftconvolve('same') with our PSFs
    for _ in range(6):
        psf, fwhm, kind = make_psf(rng, 25)
        pr, pc = _moments(psf)
        am = np.unravel_index(np.argmax(psf), psf.shape)
        d = np.zeros((64, 64))
        d[30, 37] = 1.0
        cv = fftconvolve(d, psf, mode="same")
        r, c = _moments(cv)
        print("psf kind %d fwhm %.2f: centroid (%.4f, %.4f) argmax %s; point (30,37) -> "
              "(%.4f, %.4f), argmax %s" % (kind, fwhm, pr, pc, tuple(int(v) for v in am), r,
                                          c, tuple(int(v) for v in
                                                   np.unravel_index(cv.argmax(), cv.shape))))
        ok &= abs(pr - 12) < 1e-6 and abs(pc - 12) < 1e-6 and abs(r - 30) < 1e-6 \
            and abs(c - 37) < 1e-6
    # 2. centre: a noise-free single galaxy without knots. The first moment of the
    # pixel-integrated truth is NOT exactly the profile centre when the profile has
    # structure below a pixel (pixel locking: pulled towards the nearest pixel centre;
    # 0.03-0.06 px for a bulge of hlr 0.3 px, ~0.004 px for a B/T 0.35 bulge of hlr 1.5 px;
    # same with 8x8 sub-pixel sums), so: (a) GalSim's auto drawing == an independent 8x8
    # sub-pixel integration of the no_pixel profile, (b) the first moment of that 8x
    # oversampled image (in coarse pixel coordinates) == centre, (c) a disk-only galaxy has
    # its coarse first moment at centre.
    for row, col, bulge_hlr in ((31.5, 31.5, 1.5), (30.3, 33.2, 1.5), (33.1, 29.6, 0.3),
                                (30.3, 33.2, 0.3)):
        g = sample_galaxy(rng, 1000.0, (2.0, 3.0))
        g["n_knots"], g["knot_fraction"], g["bulge_hlr"] = 0, 0.0, bulge_hlr
        a = draw_galaxy(g, row, col, 64)
        f = draw_galaxy(g, row, col, 64, oversample=8)
        b = f.reshape(64, 8, 64, 8).sum(axis=(1, 3))
        fr, fc = _moments(f)
        fr, fc = (fr + 0.5) / 8 - 0.5, (fc + 0.5) / 8 - 0.5
        r, c = _moments(a)
        rel = float(np.abs(a - b).max() / a.max())
        print("galaxy at (%.2f, %.2f) disk hlr %.2f, bulge hlr %.2f B/T %.2f: auto vs 8x8 "
              "sub-pixel sum max rel diff %.1e; 8x-oversampled first moment (%.4f, %.4f); "
              "pixel first moment (%.4f, %.4f)" % (row, col, g["disk_hlr"], bulge_hlr,
                                                  g["bulge_fraction"], rel, fr, fc, r, c))
        ok &= abs(fr - row) < 2e-3 and abs(fc - col) < 2e-3 and rel < 0.05
        g["bulge_fraction"] = 0.0
        a = draw_galaxy(g, row, col, 64)
        r, c = _moments(a)
        print("  disk only: pixel first moment (%.4f, %.4f)" % (r, c))
        ok &= abs(r - row) < 1e-3 and abs(c - col) < 1e-3
    # 3. knots: exact erf drawing == GalSim auto drawing of Convolve(knots, Gaussian)
    g = sample_galaxy(rng, 1000.0, (2.0, 3.0))
    g["bulge_fraction"], g["knot_fraction"], g["n_knots"] = 0.0, 1.0, 20
    a = draw_galaxy(g, 30.7, 33.4, 64)
    b = draw_galaxy(g, 30.7, 33.4, 64, knots_with_galsim=True)
    rel = float(np.abs(a - b).max() / np.abs(b).max())
    print("knots erf vs galsim: max rel diff %.2e (sum %.3f vs %.3f)" % (rel, a.sum(), b.sum()))
    ok &= rel < 2e-3
    # 4. a full stamp: SNR definition
    s = simulate_one(np.random.default_rng([0, 0]), return_parts=True)
    snr = np.sqrt((s["clean"] ** 2).sum()) / s["sigma"]
    print("stamp [0,0]: snr %.4f recomputed %.4f" % (s["snr"], snr))
    ok &= abs(snr / s["snr"] - 1) < 1e-12
    assert ok, "a check failed"
    print("all checks passed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--stamp", type=int, default=64)
    ap.add_argument("--psf-size", type=int, default=25)
    ap.add_argument("--snr-min", type=float, default=5.0)
    ap.add_argument("--snr-max", type=float, default=400.0)
    ap.add_argument("--check", action="store_true", help="run the convention checks and exit")
    a = ap.parse_args(argv)
    if a.check:
        check()
        return 0
    if a.out is None:
        ap.error("--out is required")
    t0 = time.time()
    snr_range = (a.snr_min, a.snr_max)
    d = simulate(a.n, a.seed, a.stamp, a.psf_size, snr_range, progress=True)
    sec = time.time() - t0
    write(a.out, d, meta(a.n, a.seed, a.stamp, a.psf_size, snr_range, sec))
    print("wrote %d stamps to %s in %.1f s" % (a.n, a.out, sec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
