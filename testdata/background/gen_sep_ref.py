#!/usr/bin/env python3
"""Reference background maps from sep (SExtractor's background estimator) for `--sky map`.

    .venv/bin/python testdata/background/gen_sep_ref.py          (from the repository root)

Writes, next to this script:
  m13_sep_back_b32.npy, m13_sep_back_b64.npy   float32 (300, 300): sep.Background(data, bw=B,
      bh=B, fw=3, fh=3).back() for testdata/m13.fits (int16 big-endian on disk, converted to
      float64 native byte order; no NaNs), B = 32 and 64.
  synth_image.npy, synth_truth.npy, synth_sep_b32.npy   float32 (256, 320): a simulated image
      (seed 20261207), its true smooth background, and sep's map for it with B = 32 (computed
      from the float32 image as saved, converted to float64).
  m13_sep.json   parameters, sep version, globalback / globalrms, the mesh-level values and the
      synthetic image's error figures.

Mesh values. sep's Python API does not expose the low-resolution mesh, only the interpolated
map (back(), rms()). The map is exactly separable-linear in the mesh, back = Ly @ M @ Lx.T,
with Ly, Lx the 1-D natural-cubic-spline interpolation matrices of sep's (= SExtractor's)
bkg_line_flt_internal, so the mesh is recovered here by least squares and the script checks
that re-interpolating it reproduces back() to float32 rounding ("recon_max_abs_err" in the
JSON). It recovers the filtered mesh (fw = fh = 3) and, from a second run with fw = fh = 1,
the raw unfiltered mesh, and checks that sep's 3x3 median filter (window shrunk symmetrically
at the mesh edges, see below) of the raw mesh gives the filtered mesh.

sep conventions worth knowing when comparing (from sep 1.4.1 src/background.c):
  * nx = (W - 1) // bw + 1 boxes; the last box is partial (300 px with bw 32: 9 x 32 + 12).
    A box with fewer than half its own pixels valid is "bad" and replaced by the mean of the
    nearest valid meshes.
  * per box: mean/std of all pixels, cut at mean +- 2 std, then a histogram-based iterative
    3-sigma clip around the median; value = 2.5 median - 1.5 mean if |mean - median| < 0.3 std,
    else the median. rms = clipped std.
  * median filter fw x fh over the mesh, window clipped symmetrically at the edges: an edge
    mesh uses 1 x 3 (or 3 x 1), a corner mesh only itself. fthresh = 0 means always replace.
    globalback / globalrms = median of the filtered mesh (mean of the two middle for even n).
  * interpolation: cubic spline with "natural" ends through the mesh nodes, first along y then
    along x, outside the outermost nodes the end-interval cubic is extrapolated. The
    back-substitution for the second derivatives reuses the value already divided by 6 (see
    sep_second_derivs), so it is not exactly the textbook natural spline. Node j along x sits at
    pixel (j + 0.5) * bw - 0.5 (box centre), but along y at pixel (j + 0.5) * bh (half a pixel
    above the box centre; SExtractor's original arithmetic). Nodes of partial boxes sit where a
    full box's centre would be (e.g. 304 for the 10th 32-px box of a 300-px axis).
"""

import json
import os

import numpy as np
import sep
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEED = 20261207


def sep_second_derivs(v):
    """sep's makebackspline / in-line x pass, literally: "natural" spline second derivatives
    (stored divided by 6) of node values v (n, k) at unit spacing. Note that the
    back-substitution reuses the already divided value, d[j] = (c[j] d[j+1] + u[j]) / 6, so
    this is not exactly the textbook natural cubic spline (it is in SExtractor too)."""
    n = v.shape[0]
    d = np.zeros_like(v)
    if n < 3:
        return d
    u = np.zeros_like(v[:-1])
    for j in range(1, n - 1):
        c = -1.0 / (d[j - 1] + 4.0)
        d[j] = c
        u[j] = c * (u[j - 1] - 6.0 * (v[j + 1] + v[j - 1] - 2.0 * v[j]))
    d[n - 1] = 0.0
    for j in range(n - 2, 0, -1):
        d[j] = (d[j] * d[j + 1] + u[j]) / 6.0
    return d


def sep_eval(v, d, k, f):
    """cdx * (v[k] + (cdx^2 - 1) d[k]) + dx * (v[k+1] + (dx^2 - 1) d[k+1]) per sample."""
    c = 1.0 - f
    return (c[:, None] * (v[k] + (c[:, None] ** 2 - 1.0) * d[k])
            + f[:, None] * (v[k + 1] + (f[:, None] ** 2 - 1.0) * d[k + 1]))


def y_intervals(h, bh, ny):
    """bkg_line_flt_internal's y: dy = y / bh - 0.5, yl = (int) dy, clamped to [0, ny - 2]."""
    k = np.empty(h, dtype=int)
    f = np.empty(h)
    for y in range(h):
        dy = np.float32(y) / np.float32(bh) - 0.5
        yl = int(dy)
        dy -= yl
        if yl < 0:
            yl, dy = 0, dy - 1.0
        elif yl >= ny - 1:
            yl, dy = (0 if ny < 2 else ny - 2), dy + 1.0
        k[y], f[y] = yl, dy
    return k, f


def x_intervals(w, bw, nx):
    """bkg_line_flt_internal's x loop, literally (pixel i of box x, node switch at changepoint)."""
    k = np.empty(w, dtype=int)
    f = np.empty(w)
    xstep = 1.0 / bw
    changepoint = bw // 2
    dx = (xstep - 1) / 2
    dx0 = ((bw + 1) % 2) * xstep / 2
    lo, x, i = 0, 0, 0
    for p in range(w):
        if i == changepoint and 0 < x < nx - 1:
            lo += 1
            dx = dx0
        k[p], f[p] = lo, dx
        if i == bw:
            x += 1
            i = 0
        i += 1
        dx += xstep
    return k, f


def spline_matrix(nnode, k, f):
    """(npix, nnode) matrix of sep's 1-D interpolation (linear in the node values)."""
    if nnode == 1:
        return np.ones((len(k), 1))
    eye = np.eye(nnode)
    return sep_eval(eye, sep_second_derivs(eye), k, f)


def sep_interp_matrices(h, w, bw, bh):
    nx = (w - 1) // bw + 1
    ny = (h - 1) // bh + 1
    return spline_matrix(ny, *y_intervals(h, bh, ny)), spline_matrix(nx, *x_intervals(w, bw, nx))


def recover_mesh(img, ly, lx):
    """Least-squares M with ly @ M @ lx.T = img; returns M and the max reconstruction error."""
    m = np.linalg.pinv(ly) @ img.astype(np.float64) @ np.linalg.pinv(lx).T
    err = float(np.max(np.abs(ly @ m @ lx.T - img)))
    return m, err


def sep_median_filter(mesh, fw=3, fh=3):
    """sep's filterback median (window shrunk symmetrically at the edges), fthresh = 0."""
    ny, nx = mesh.shape
    out = np.empty_like(mesh)
    for j in range(ny):
        ry = min(fh // 2, j, ny - 1 - j)
        for i in range(nx):
            rx = min(fw // 2, i, nx - 1 - i)
            out[j, i] = np.median(mesh[j - ry:j + ry + 1, i - rx:i + rx + 1])
    return out


def r4(a):
    return np.round(np.asarray(a, dtype=np.float64), 4).tolist()


def sep_reference(data, b):
    """Run sep with box b (fw = fh = 3 and 1) and recover the meshes."""
    bkg = sep.Background(data, bw=b, bh=b, fw=3, fh=3)
    raw = sep.Background(data, bw=b, bh=b, fw=1, fh=1)
    back = bkg.back()
    ly, lx = sep_interp_matrices(data.shape[0], data.shape[1], b, b)
    mesh, err_b = recover_mesh(back, ly, lx)
    rms_mesh, err_r = recover_mesh(bkg.rms(), ly, lx)
    raw_mesh, err_raw = recover_mesh(raw.back(), ly, lx)
    raw_rms_mesh, err_raw_r = recover_mesh(raw.rms(), ly, lx)
    filt_err = float(np.max(np.abs(sep_median_filter(raw_mesh) - mesh)))
    checks = {
        "recon_max_abs_err_back": err_b,
        "recon_max_abs_err_rms": err_r,
        "recon_max_abs_err_raw_back": err_raw,
        "recon_max_abs_err_raw_rms": err_raw_r,
        "median3x3_of_raw_mesh_vs_filtered_max_abs_err": filt_err,
        "median3x3_of_raw_rms_mesh_vs_filtered_max_abs_err":
            float(np.max(np.abs(sep_median_filter(raw_rms_mesh) - rms_mesh))),
        "globalback_minus_median_of_mesh": float(bkg.globalback - np.median(mesh)),
        "globalrms_minus_median_of_rms_mesh": float(bkg.globalrms - np.median(rms_mesh)),
    }
    for k, v in checks.items():
        assert abs(v) < 1e-3, (b, k, v)
    info = {
        "bw": b, "bh": b, "fw": 3, "fh": 3, "fthresh": 0.0, "mask": None,
        "mesh_shape": list(mesh.shape),
        "globalback": float(bkg.globalback),
        "globalrms": float(bkg.globalrms),
        "back_map_min": float(back.min()), "back_map_max": float(back.max()),
        "back_map_mean": float(back.mean()),
        "mesh_back": r4(mesh),
        "mesh_rms": r4(rms_mesh),
        "mesh_back_unfiltered": r4(raw_mesh),
        "mesh_rms_unfiltered": r4(raw_rms_mesh),
        "checks": checks,
    }
    return back.astype(np.float32), info


def synth():
    """256 x 320 image: tilted plane + broad Gaussian bump + 60 Gaussian stars + noise."""
    rng = np.random.default_rng(SEED)
    h, w = 256, 320
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    truth = (100.0 + 0.08 * (xx - w / 2) - 0.05 * (yy - h / 2)
             + 40.0 * np.exp(-0.5 * (((xx - 200.0) / 55.0) ** 2 + ((yy - 110.0) / 45.0) ** 2)))
    noise_sigma = 5.0
    nstars, psf_sigma = 60, 1.5
    sx = rng.uniform(3, w - 3, nstars)
    sy = rng.uniform(3, h - 3, nstars)
    # peak heights log-uniform from 3 to 400 sigma
    peaks = noise_sigma * np.exp(rng.uniform(np.log(3.0), np.log(400.0), nstars))
    stars = np.zeros((h, w))
    for x0, y0, p in zip(sx, sy, peaks):
        stars += p * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / psf_sigma ** 2)
    img = truth + stars + rng.normal(0.0, noise_sigma, (h, w))
    img32 = img.astype(np.float32)
    truth32 = truth.astype(np.float32)
    bkg = sep.Background(img32.astype(np.float64), bw=32, bh=32, fw=3, fh=3)
    back = bkg.back().astype(np.float32)
    err = back.astype(np.float64) - truth32
    c = err[32:-32, 32:-32]
    info = {
        "seed": SEED, "shape": [h, w],
        "truth": "100 + 0.08 (x - 160) - 0.05 (y - 128) + 40 exp(-((x-200)/55)^2/2 - ((y-110)/45)^2/2)"
                 " (x = column, y = row, 0-based)",
        "noise_sigma": noise_sigma,
        "stars": {"n": nstars, "psf": "circular Gaussian", "psf_sigma_px": psf_sigma,
                  "peak": "log-uniform in [3, 400] x noise_sigma",
                  "positions": "uniform in [3, W-3) x [3, H-3)"},
        "sep": {"bw": 32, "bh": 32, "fw": 3, "fh": 3, "globalback": float(bkg.globalback),
                "globalrms": float(bkg.globalrms)},
        "rms_err_sep_vs_truth_all": float(np.sqrt(np.mean(err ** 2))),
        "rms_err_sep_vs_truth_central": float(np.sqrt(np.mean(c ** 2))),
        "central_region": "rows 32..223, cols 32..287 (32-px border excluded)",
        "mean_err_sep_vs_truth_all": float(err.mean()),
        "max_abs_err_sep_vs_truth_all": float(np.abs(err).max()),
        "max_abs_err_sep_vs_truth_central": float(np.abs(c).max()),
    }
    # the same without the 3x3 mesh median filter: the error above is mostly the filter
    # flattening the bump (3 x 32 = 96 px window against a bump sigma of 45-55 px)
    e1 = sep.Background(img32.astype(np.float64), bw=32, bh=32, fw=1, fh=1).back() - truth32
    info["rms_err_sep_fw1_vs_truth_all"] = float(np.sqrt(np.mean(e1 ** 2)))
    info["rms_err_sep_fw1_vs_truth_central"] = float(np.sqrt(np.mean(e1[32:-32, 32:-32] ** 2)))
    return img32, truth32, back, info


def main():
    path = os.path.join(ROOT, "testdata", "m13.fits")
    raw = fits.getdata(path)
    data = np.asarray(raw, dtype=np.float64)  # native byte order
    assert not np.isnan(data).any()
    out = {
        "generator": "testdata/background/gen_sep_ref.py",
        "sep_version": sep.__version__,
        "numpy_version": np.__version__,
        "m13": {"file": "testdata/m13.fits", "shape": list(data.shape),
                "dtype_on_disk": str(raw.dtype), "n_nan": int(np.isnan(data).sum()),
                "input_to_sep": "float64, native byte order",
                "maps": {}},
        "mesh_note": ("sep's Python API exposes only the interpolated maps; mesh_* are recovered"
                      " by inverting its separable cubic-spline interpolation (see the script"
                      " docstring and checks)."),
        "interp_convention": {
            "x_node_pixel": "(j + 0.5) * bw - 0.5", "y_node_pixel": "(j + 0.5) * bh",
            "spline": "cubic, natural ends, y first then x, end-interval cubic extrapolated; second derivatives as sep computes them (not exactly textbook, see gen_sep_ref.sep_second_derivs)",
            "median_filter_edges": "window shrunk symmetrically (edge 1x3/3x1, corner 1x1)"},
    }
    for b in (32, 64):
        back, info = sep_reference(data, b)
        np.save(os.path.join(HERE, f"m13_sep_back_b{b}.npy"), back)
        out["m13"]["maps"][f"b{b}"] = dict(file=f"m13_sep_back_b{b}.npy", **info)
        print(f"m13 B={b}: mesh {info['mesh_shape']} globalback {info['globalback']:.4f} "
              f"globalrms {info['globalrms']:.4f} map [{info['back_map_min']:.2f}, "
              f"{info['back_map_max']:.2f}]")
    img, truth, back, sinfo = synth()
    np.save(os.path.join(HERE, "synth_image.npy"), img)
    np.save(os.path.join(HERE, "synth_truth.npy"), truth)
    np.save(os.path.join(HERE, "synth_sep_b32.npy"), back)
    out["synth"] = dict(files=["synth_image.npy", "synth_truth.npy", "synth_sep_b32.npy"], **sinfo)
    print(f"synth: sep B=32 RMS error vs truth {sinfo['rms_err_sep_vs_truth_all']:.4f} (all), "
          f"{sinfo['rms_err_sep_vs_truth_central']:.4f} (central); noise sigma "
          f"{sinfo['noise_sigma']}")
    with open(os.path.join(HERE, "m13_sep.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
