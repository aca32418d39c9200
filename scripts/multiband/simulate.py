#!/usr/bin/env python3
"""Simulate multiband galaxy scenes for joint deconvolution: Rubin r, i, z (0.2"/pixel) and
Euclid VIS (0.1"/pixel), with their per-band truths on the 0.1" grid.

Forward model written by this script (exact, up to float32 rounding of the files):

    y_b = blocksum2(h_b * x_b) + n_b          b in {r, i, z}   (Rubin grid, 0.2")
    y_W = h_W * (alpha_r x_r + alpha_i x_i + alpha_z x_z) + n_W   (VIS grid = fine grid, 0.1")

where x_b is the scene drawn by GalSim through the LSST band-b throughput on the fine grid
(integrated over each 0.1" pixel, no PSF), h_b the band's effective PSF on the fine grid (the
PSF integrated over 0.1" pixels, i.e. the image of a point source at a pixel centre; odd size,
unit sum, centre at (K//2, K//2)), '*' is scipy.signal.fftconvolve(x, h, "same")
(zero outside the image), blocksum2 sums 2x2 blocks: Rubin pixel (i, j) (0-based, row i) is
the sum of fine pixels (2i..2i+1, 2j..2j+1).  n_b is white Gaussian noise whose sigma gives
the chosen peak SNR (max of the noise-free band image / sigma).  alpha_b is the least-squares
fit of the VIS top-hat throughput by the three LSST throughputs over wavelength.

See scripts/multiband/README.md for every number, where it comes from, and the checks.

Usage (the committed test set):
    python scripts/multiband/simulate.py --out testdata/multiband --n-scenes 4 --seed 20261201
A larger evaluation set (not committed):
    python scripts/multiband/simulate.py --out out/multiband_eval --n-scenes 16 --seed 7 \
        --noiseless 0
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import galsim
from astropy.cosmology import Planck18
from astropy.io import fits
from astropy.wcs import WCS
from scipy.signal import fftconvolve

FORMAT_VERSION = 1
BANDS = ("r", "i", "z")
RATIO = 2  # Rubin pixel = RATIO x RATIO fine (VIS) pixels
CRVAL = (150.1, 2.2)  # sky position of the image centre (deg, ICRS); arbitrary, COSMOS-like
LEVELS = (100.0, 30.0, 10.0)  # peak SNRs

# Numbers used when surveycodex does not have them (the numbers).
FALLBACK = {
    "rubin_pixel_scale": 0.2,
    "rubin_psf_fwhm": {"r": 0.81, "i": 0.79, "z": 0.77},
    "vis_pixel_scale": 0.1,
    "vis_diameter_m": 1.2,
    "vis_obscuration": 0.13,
}
# Numbers that come from the issue only (surveycodex has no such field).
VIS_LAMBDA_NM = 725.0  # monochromatic wavelength of the VIS Airy PSF: centre of 550-900 nm
VIS_BAND_NM = (550.0, 900.0)  # VIS top-hat, throughput 1

# Scene model (all sizes in arcsec unless the name says kpc).
SCENE = {
    "redshifts": [0.2, 0.5, 0.8],
    "n_neighbours": [2, 4],  # inclusive range
    "central_offset_max_arcsec": 0.2,  # uniform in a square of this half-width
    "neighbour_radius_arcsec": [1.5, 4.8],  # uniform in this annulus around the image centre
    "neighbour_min_separation_arcsec": 1.2,
    "central_disk_hlr_kpc": [3.0, 6.0],
    "neighbour_disk_hlr_kpc": [1.0, 3.5],
    "bulge_to_disk_hlr": [0.15, 0.35],
    "central_flux_i": [2.0e4, 1.0e5],  # log-uniform, total i-band counts of the central galaxy
    "neighbour_flux_ratio": [0.1, 0.7],  # log-uniform, times the central galaxy's i flux
    "bulge_fraction_i": [0.1, 0.6],  # bulge / total in i
    "knot_fraction_i": [0.1, 0.35],  # knots / (disk + knots) in i
    "n_knots": [10, 40],  # inclusive range
    "knot_smoothing_sigma_arcsec": 0.04,  # Gaussian that each knot is convolved with
    "bulge_smoothing_sigma_arcsec": 0.02,  # Gaussian that the bulge is convolved with
    "disk_g": [0.0, 0.6],  # |g| (reduced shear) of the disk, uniform
    "bulge_g_over_disk_g": [0.2, 0.6],
    "bulge_seds": {"E": 0.7, "Sbc": 0.3},  # probabilities
    "disk_sed": "Scd",
    "knot_sed": "Im",
    "aperture_diameter_arcsec": 1.0,
}
GSPARAMS = dict(folding_threshold=2.0e-3, maxk_threshold=5.0e-4, maximum_fft_size=16384)


# --------------------------------------------------------------------------------------------
# Instrument numbers


def instrument_numbers():
    """Pixel scales, PSF FWHMs and the VIS aperture, from surveycodex where it has them."""
    out = {"source": {}}
    try:
        import surveycodex
    except Exception:  # pragma: no cover - only without surveycodex
        surveycodex = None
    lsst = vis = None
    if surveycodex is not None:
        try:
            lsst = surveycodex.get_survey("LSST")
            vis = surveycodex.get_survey("Euclid_VIS")
        except Exception:
            lsst = vis = None
    src = "surveycodex %s" % _version("surveycodex") if lsst is not None else "fallback"
    if lsst is not None:
        out["rubin_pixel_scale"] = float(lsst.pixel_scale.to_value("arcsec"))
        out["rubin_psf_fwhm"] = {
            b: float(lsst.get_filter(b).psf_fwhm.to_value("arcsec")) for b in BANDS
        }
    else:
        out["rubin_pixel_scale"] = FALLBACK["rubin_pixel_scale"]
        out["rubin_psf_fwhm"] = dict(FALLBACK["rubin_psf_fwhm"])
    out["source"]["rubin_pixel_scale"] = src
    out["source"]["rubin_psf_fwhm"] = src
    src = "surveycodex %s" % _version("surveycodex") if vis is not None else "fallback"
    if vis is not None:
        out["vis_pixel_scale"] = float(vis.pixel_scale.to_value("arcsec"))
        out["vis_diameter_m"] = float(vis.mirror_diameter.to_value("m"))
        out["vis_obscuration"] = float(vis.obscuration.value)
        out["vis_psf_fwhm_survey"] = float(vis.get_filter("IE").psf_fwhm.to_value("arcsec"))
        out["vis_effective_wavelength_survey_nm"] = float(
            vis.get_filter("IE").effective_wavelength.to_value("nm"))
    else:
        out["vis_pixel_scale"] = FALLBACK["vis_pixel_scale"]
        out["vis_diameter_m"] = FALLBACK["vis_diameter_m"]
        out["vis_obscuration"] = FALLBACK["vis_obscuration"]
    for k in ("vis_pixel_scale", "vis_diameter_m", "vis_obscuration"):
        out["source"][k] = src
    out["vis_lambda_nm"] = VIS_LAMBDA_NM
    out["vis_band_nm"] = list(VIS_BAND_NM)
    out["source"]["vis_lambda_nm"] = "issue (centre of the 550-900 nm band)"
    out["source"]["vis_band_nm"] = "issue"
    if abs(out["rubin_pixel_scale"] - RATIO * out["vis_pixel_scale"]) > 1e-12:
        raise SystemExit("pixel scales %g and %g are not in ratio %d"
                         % (out["rubin_pixel_scale"], out["vis_pixel_scale"], RATIO))
    return out


def _version(mod):
    try:
        from importlib.metadata import version
        return version(mod)
    except Exception:
        return "unknown"


def bandpasses():
    bp = {b: galsim.Bandpass("LSST_%s.dat" % b, "nm") for b in BANDS}
    lo, hi = VIS_BAND_NM
    vis = galsim.Bandpass(galsim.LookupTable([lo, hi], [1.0, 1.0], interpolant="linear"), "nm")
    return bp, vis


def throughput_on(bp, lam):
    out = np.zeros_like(lam)
    m = (lam >= bp.blue_limit) & (lam <= bp.red_limit)
    out[m] = bp(lam[m])
    return out


def compute_alpha(bp, vis):
    """alpha = argmin over a of the integral of (T_VIS - sum_b a_b T_b)^2 d(lambda), 0.1 nm grid.

    With it, a source of any spectrum f has VIS flux ~ sum_b alpha_b * (band-b flux)."""
    lam = np.arange(450.0, 1050.0 + 1e-9, 0.1)
    t = np.stack([throughput_on(bp[b], lam) for b in BANDS], axis=1)
    v = throughput_on(vis, lam)
    a, *_ = np.linalg.lstsq(t, v, rcond=None)
    rel = float(np.linalg.norm(t @ a - v) / np.linalg.norm(v))
    return {b: float(a[k]) for k, b in enumerate(BANDS)}, rel


# --------------------------------------------------------------------------------------------
# WCS and FITS


def make_wcs(n, scale_arcsec, crpix):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = list(CRVAL)
    w.wcs.crpix = [crpix, crpix]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.wcs.radesys = "ICRS"
    return w


def grid_wcs(n_fine, fine_scale):
    """TAN WCS of the fine (VIS) grid and of the Rubin grid, same sky.

    Fine grid: n_fine pixels, reference pixel at the image centre, CRPIX = n_fine/2 + 0.5
    (1-based).  Rubin pixel i (0-based) covers fine pixels 2i, 2i+1, so its centre is at fine
    coordinate 2i + 0.5 (0-based), i.e. fine1 = 2*rubin1 - 0.5 (1-based), and the Rubin
    CRPIX = (fine CRPIX + 0.5) / 2 = n_fine/4 + 0.5."""
    crpix_f = n_fine / 2.0 + 0.5
    crpix_c = (crpix_f + 0.5) / RATIO
    return (make_wcs(n_fine, fine_scale, crpix_f),
            make_wcs(n_fine // RATIO, fine_scale * RATIO, crpix_c))


def write_fits(path, data, wcs=None, cards=()):
    hdr = fits.Header()
    if wcs is not None:
        hdr.update(wcs.to_header())
    for key, val, com in cards:
        hdr[key] = (val, com)
    hdu = fits.PrimaryHDU(np.ascontiguousarray(data, dtype=np.float32), header=hdr)
    hdu.writeto(path, overwrite=True)


# --------------------------------------------------------------------------------------------
# Scene model


def sample_scene(rng, inst, n_fine):
    """Draw one scene's galaxy parameters (plain numbers, JSON-serialisable)."""
    S = SCENE
    gals = []
    n_nb = int(rng.integers(S["n_neighbours"][0], S["n_neighbours"][1] + 1))
    # positions (arcsec from the image centre, +x = increasing column, +y = increasing row)
    c = S["central_offset_max_arcsec"]
    pos = [(float(rng.uniform(-c, c)), float(rng.uniform(-c, c)))]
    tries = 0
    while len(pos) < 1 + n_nb:
        tries += 1
        r = np.sqrt(rng.uniform(S["neighbour_radius_arcsec"][0] ** 2,
                                S["neighbour_radius_arcsec"][1] ** 2))
        th = rng.uniform(0.0, 2.0 * np.pi)
        p = (float(r * np.cos(th)), float(r * np.sin(th)))
        if tries < 1000 and any(np.hypot(p[0] - q[0], p[1] - q[1])
                                < S["neighbour_min_separation_arcsec"] for q in pos[1:]):
            continue
        pos.append(p)
    flux_c = float(np.exp(rng.uniform(*np.log(S["central_flux_i"]))))
    bulge_names = list(S["bulge_seds"].keys())
    bulge_p = np.array([S["bulge_seds"][k] for k in bulge_names])
    for k, p in enumerate(pos):
        central = k == 0
        z = float(S["redshifts"][int(rng.integers(len(S["redshifts"])))])
        kpc_per_arcsec = float(Planck18.kpc_proper_per_arcmin(z).to_value("kpc/arcmin") / 60.0)
        hlr_kpc = float(rng.uniform(*S["central_disk_hlr_kpc" if central
                                      else "neighbour_disk_hlr_kpc"]))
        disk_hlr = hlr_kpc / kpc_per_arcsec
        bulge_hlr = disk_hlr * float(rng.uniform(*S["bulge_to_disk_hlr"]))
        flux_i = flux_c if central else flux_c * float(
            np.exp(rng.uniform(*np.log(S["neighbour_flux_ratio"]))))
        bt = float(rng.uniform(*S["bulge_fraction_i"]))
        kf = float(rng.uniform(*S["knot_fraction_i"]))
        g_d = float(rng.uniform(*S["disk_g"]))
        g_b = g_d * float(rng.uniform(*S["bulge_g_over_disk_g"]))
        beta = float(rng.uniform(0.0, 180.0))
        n_knots = int(rng.integers(S["n_knots"][0], S["n_knots"][1] + 1))
        knot_seed = int(rng.integers(1, 2 ** 31 - 1))
        bulge_sed = bulge_names[int(rng.choice(len(bulge_names), p=bulge_p))]
        x0 = (n_fine - 1) / 2.0 + p[0] / inst["vis_pixel_scale"]
        y0 = (n_fine - 1) / 2.0 + p[1] / inst["vis_pixel_scale"]
        gals.append({
            "id": k,
            "role": "central" if central else "neighbour",
            "redshift": z,
            "kpc_per_arcsec": kpc_per_arcsec,
            "offset_arcsec": list(p),
            "fine_pixel_xy_0based": [x0, y0],
            "flux_i_total": flux_i,
            "bulge": {"profile": "DeVaucouleurs (Sersic n=4) convolved with a Gaussian",
                      "smoothing_sigma_arcsec": S["bulge_smoothing_sigma_arcsec"],
                      "sed": "CWW_%s_ext" % bulge_sed,
                      "half_light_radius_arcsec": bulge_hlr, "g": g_b, "beta_deg": beta,
                      "flux_fraction_i": bt},
            "disk": {"profile": "Exponential", "sed": "CWW_%s_ext" % S["disk_sed"],
                     "half_light_radius_arcsec": disk_hlr, "half_light_radius_kpc": hlr_kpc,
                     "g": g_d, "beta_deg": beta, "flux_fraction_i": (1 - bt) * (1 - kf)},
            "knots": {"profile": "RandomKnots (points drawn from the disk profile) "
                                 "convolved with a Gaussian",
                      "sed": "CWW_%s_ext" % S["knot_sed"], "n": n_knots,
                      "smoothing_sigma_arcsec": S["knot_smoothing_sigma_arcsec"],
                      "galsim_seed": knot_seed, "flux_fraction_i": (1 - bt) * kf},
        })
    return gals


_SED_CACHE = {}


def _sed(name):
    if name not in _SED_CACHE:
        _SED_CACHE[name] = galsim.SED("%s.sed" % name, "A", "flambda")
    return _SED_CACHE[name]


def build_galaxy(g, bp_i):
    """GalSim chromatic galaxy (centred at the origin) for one parameter dict."""
    gsp = galsim.GSParams(**GSPARAMS)
    z = g["redshift"]
    comps = []
    for name in ("bulge", "disk", "knots"):
        c = g[name]
        sed = _sed(c["sed"]).atRedshift(z).withFlux(g["flux_i_total"] * c["flux_fraction_i"],
                                                    bp_i)
        comps.append((name, sed))
    beta = g["bulge"]["beta_deg"] * galsim.degrees
    bulge = galsim.DeVaucouleurs(half_light_radius=g["bulge"]["half_light_radius_arcsec"],
                                 gsparams=gsp).shear(g=g["bulge"]["g"], beta=beta)
    # the n=4 cusp would need ~20000^2 FFTs at 0.1" with the pixel; a 0.02" Gaussian bounds it
    bulge = galsim.Convolve(
        bulge, galsim.Gaussian(sigma=g["bulge"]["smoothing_sigma_arcsec"], gsparams=gsp),
        gsparams=gsp)
    disk = galsim.Exponential(half_light_radius=g["disk"]["half_light_radius_arcsec"],
                              gsparams=gsp).shear(g=g["disk"]["g"], beta=beta)
    knots = galsim.RandomKnots(g["knots"]["n"], profile=disk,
                               rng=galsim.BaseDeviate(g["knots"]["galsim_seed"]), gsparams=gsp)
    knots = galsim.Convolve(
        knots, galsim.Gaussian(sigma=g["knots"]["smoothing_sigma_arcsec"], gsparams=gsp),
        gsparams=gsp).withFlux(1.0)
    profiles = {"bulge": bulge.withFlux(1.0), "disk": disk.withFlux(1.0), "knots": knots}
    return galsim.Add([profiles[n] * sed for n, sed in comps])


def draw(obj, n, scale, offset_arcsec, bandpass=None, method="auto"):
    img = galsim.ImageD(n, n, scale=scale)
    off = (offset_arcsec[0] / scale, offset_arcsec[1] / scale)
    if bandpass is None:
        obj.drawImage(image=img, offset=off, method=method)
    else:
        obj.drawImage(bandpass, image=img, offset=off, method=method)
    return img.array.copy()


def aperture_weights(n, scale, x0, y0, diameter, sub=10):
    """Fraction of each fine pixel inside a circle of the given diameter (arcsec) centred at
    0-based pixel (x0, y0), by sub x sub sampling of each pixel; only a box around the centre."""
    rad = diameter / 2.0 / scale
    w = np.zeros((n, n))
    j0, j1 = max(int(np.floor(x0 - rad)) - 1, 0), min(int(np.ceil(x0 + rad)) + 2, n)
    i0, i1 = max(int(np.floor(y0 - rad)) - 1, 0), min(int(np.ceil(y0 + rad)) + 2, n)
    s = (np.arange(sub) + 0.5) / sub - 0.5
    for i in range(i0, i1):
        for j in range(j0, j1):
            yy = i + s[:, None] - y0
            xx = j + s[None, :] - x0
            w[i, j] = np.mean(xx * xx + yy * yy <= rad * rad)
    return w


# --------------------------------------------------------------------------------------------
# PSFs


def psf_objects(inst):
    gsp = galsim.GSParams(**GSPARAMS)
    p = {b: galsim.Kolmogorov(fwhm=inst["rubin_psf_fwhm"][b], gsparams=gsp) for b in BANDS}
    p["vis"] = galsim.Airy(lam=inst["vis_lambda_nm"], diam=inst["vis_diameter_m"],
                           obscuration=inst["vis_obscuration"], gsparams=gsp)
    return p


def psf_image(obj, size, scale, method="auto"):
    """Effective PSF: integrated over the pixels of this scale (method='auto', the image of a
    point source at the centre of pixel (size//2, size//2)), odd size, unit sum."""
    if size % 2 != 1:
        raise SystemExit("PSF size must be odd")
    a = obj.drawImage(nx=size, ny=size, scale=scale, method=method).array.astype(np.float64)
    return a / a.sum()


def fwhm_radial(img, scale):
    """FWHM of a centred, (nearly) circularly symmetric PSF image: the radius where the
    radial profile of the samples crosses half the peak, by linear interpolation between the
    outermost sample above and the innermost sample below, doubled."""
    n = img.shape[0]
    c = n // 2
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - c, yy - c).ravel() * scale
    v = img.ravel() / img.max()
    o = np.argsort(r, kind="stable")
    r, v = r[o], v[o]
    below = np.nonzero(v < 0.5)[0][0]
    above = np.nonzero(v[:below] >= 0.5)[0][-1]
    r1, v1, r2, v2 = r[above], v[above], r[below], v[below]
    return float(2.0 * (r1 + (v1 - 0.5) * (r2 - r1) / (v1 - v2)))


def fwhm_fine(obj, box_arcsec=0.0):
    """FWHM of a profile from a finely sampled drawing (1201 samples of 0.1"/51 = 0.00196"),
    optionally convolved (numerically, same sampling) with a square pixel of side box_arcsec
    (51 samples, so the box stays centred)."""
    d = 0.1 / 51
    a = obj.drawImage(nx=1201, ny=1201, scale=d, method="no_pixel").array.astype(np.float64)
    if box_arcsec > 0:
        k = int(round(box_arcsec / d))
        k += 1 - k % 2
        a = fftconvolve(a, np.ones((k, k)) / (k * k), mode="same")
    return float(galsim.Image(a, scale=d).calculateFWHM())


# --------------------------------------------------------------------------------------------
# Forward model


def blocksum(a, r=RATIO):
    n0, n1 = a.shape
    return a.reshape(n0 // r, r, n1 // r, r).sum(axis=(1, 3))


def forward_rubin(x, h):
    return blocksum(fftconvolve(x, h, mode="same"))


def forward_vis(xs, h, alpha):
    return fftconvolve(sum(alpha[b] * xs[b] for b in BANDS), h, mode="same")


def f32(a):
    """Round to float32 (what the files hold) and back to float64 for arithmetic."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


# --------------------------------------------------------------------------------------------


def level_name(snr):
    return "snr%03d" % int(round(snr))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--n-scenes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--size", type=int, default=128, help="fine-grid side (multiple of 2)")
    ap.add_argument("--psf-size", type=int, default=51, help="odd PSF side on the fine grid")
    ap.add_argument("--rubin-psf-size", type=int, default=25,
                    help="odd side of the Rubin PSFs sampled at 0.2\" (single-band baseline)")
    ap.add_argument("--snr", type=float, nargs="+", default=list(LEVELS),
                    help="peak SNRs (one noise level each)")
    ap.add_argument("--noiseless", type=int, default=1,
                    help="also write the noise-free band images of the first N scenes")
    ap.add_argument("--verify", action="store_true",
                    help="run the consistency checks and write checks.json")
    ap.add_argument("--preview", default=None, help="write a PNG preview of one scene here")
    ap.add_argument("--preview-scene", type=int, default=0, help="scene shown by --preview")
    ap.add_argument("--preview-dpi", type=int, default=60)
    args = ap.parse_args(argv)
    if args.size % (2 * RATIO):
        raise SystemExit("--size must be a multiple of %d" % (2 * RATIO))

    t_start = time.perf_counter()
    inst = instrument_numbers()
    n = args.size
    nc = n // RATIO
    fs = inst["vis_pixel_scale"]
    bp, bp_vis = bandpasses()
    alpha, alpha_rel = compute_alpha(bp, bp_vis)
    wcs_f, wcs_c = grid_wcs(n, fs)
    psfo = psf_objects(inst)
    os.makedirs(args.out, exist_ok=True)

    # ---- PSFs (shared by all scenes)
    psf = {k: psf_image(psfo[k], args.psf_size, fs) for k in (*BANDS, "vis")}
    psf = {k: f32(v) for k, v in psf.items()}
    psf_c = {b: f32(psf_image(psfo[b], args.rubin_psf_size, inst["rubin_pixel_scale"]))
             for b in BANDS}
    psf_meta = {}
    for k in (*BANDS, "vis"):
        if k == "vis":
            kind = "Airy lam=%g nm D=%g m obscuration=%g" % (
                inst["vis_lambda_nm"], inst["vis_diameter_m"], inst["vis_obscuration"])
            target = None
        else:
            kind = "Kolmogorov FWHM=%g arcsec" % inst["rubin_psf_fwhm"][k]
            target = inst["rubin_psf_fwhm"][k]
        cards = [("BAND", "VIS" if k == "vis" else k, "band"),
                 ("PIXSCALE", fs, "arcsec per pixel (fine grid)"),
                 ("PSFMODEL", kind, "GalSim profile"),
                 ("SAMPLING", "pixel", "integrated over 0.1\" pixels (effective PSF)"),
                 ("CENTERX", args.psf_size // 2, "0-based centre column"),
                 ("CENTERY", args.psf_size // 2, "0-based centre row")]
        if target is not None:
            cards.append(("FWHM", target, "target FWHM arcsec"))
        write_fits(os.path.join(args.out, "psf_%s.fits" % k), psf[k], cards=cards)
        psf_meta[k] = {"file": "psf_%s.fits" % k, "model": kind, "shape": list(psf[k].shape),
                       "scale_arcsec": fs, "target_fwhm_arcsec": target}
    for b in BANDS:
        cards = [("BAND", b, "band"),
                 ("PIXSCALE", inst["rubin_pixel_scale"], "arcsec per pixel (Rubin grid)"),
                 ("PSFMODEL", "Kolmogorov FWHM=%g arcsec" % inst["rubin_psf_fwhm"][b], ""),
                 ("SAMPLING", "pixel", "integrated over 0.2\" pixels (effective PSF)"),
                 ("CENTERX", args.rubin_psf_size // 2, "0-based centre column"),
                 ("CENTERY", args.rubin_psf_size // 2, "0-based centre row"),
                 ("FWHM", inst["rubin_psf_fwhm"][b], "target FWHM arcsec")]
        write_fits(os.path.join(args.out, "psf_%s_rubin.fits" % b), psf_c[b], cards=cards)
        psf_meta["%s_rubin" % b] = {"file": "psf_%s_rubin.fits" % b,
                                    "shape": list(psf_c[b].shape),
                                    "scale_arcsec": inst["rubin_pixel_scale"]}

    meta = {
        "format_version": FORMAT_VERSION,
        "command": "python scripts/multiband/simulate.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "versions": {m: _version(m) for m in ("galsim", "numpy", "scipy", "astropy",
                                              "surveycodex")},
        "instrument": inst,
        "grids": {
            "fine": {"shape": [n, n], "scale_arcsec": fs, "crpix": list(wcs_f.wcs.crpix)},
            "rubin": {"shape": [nc, nc], "scale_arcsec": inst["rubin_pixel_scale"],
                      "crpix": list(wcs_c.wcs.crpix)},
            "crval_deg": list(CRVAL),
            "ratio": RATIO,
            "convention": "Rubin pixel (i, j) (0-based, i = row) is the sum of fine pixels "
                          "(2i..2i+1, 2j..2j+1); its centre is fine coordinate (2i+0.5, 2j+0.5) "
                          "(0-based); CRPIX_rubin = (CRPIX_fine + 0.5) / 2",
        },
        "forward_model": {
            "rubin": "y_b = blocksum2(fftconvolve(x_b, psf_b, 'same')) + N(0, sigma_b^2)",
            "vis": "y_W = fftconvolve(sum_b alpha_b x_b, psf_vis, 'same') + N(0, sigma_W^2)",
            "truth": "x_b = GalSim drawImage(LSST_b bandpass, 0.1\" pixels, method='auto' "
                     "= integrated over each pixel), no PSF",
            "psf": "effective PSF: GalSim drawImage(method='auto') = integrated over the pixels "
                   "of its grid, odd size K, unit sum, centre (K//2, K//2); used as a "
                   "convolution kernel",
            "noise": "white Gaussian, sigma = max(noise-free image) / peak SNR, per band and "
                     "scene",
            "units": "counts per pixel (photons through the LSST total throughput, or through "
                     "a throughput-1 top-hat for VIS); galaxy fluxes are set in the i band",
        },
        "alpha": alpha,
        "alpha_method": "least squares over wavelength (450-1050 nm, 0.1 nm steps) of the VIS "
                        "top-hat throughput (1.0 on %g-%g nm) by the three LSST r, i, z total "
                        "throughputs (GalSim LSST_*.dat)" % VIS_BAND_NM,
        "alpha_throughput_fit_rel_residual": alpha_rel,
        "scene_model": SCENE,
        "gsparams": GSPARAMS,
        "psfs": psf_meta,
        "levels": [{"peak_snr": s, "dir": level_name(s)} for s in args.snr],
        "scenes": [],
    }

    checks = {"scenes": []} if args.verify else None
    for s in range(args.n_scenes):
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, s, 0])
        gals = sample_scene(rng, inst, n)
        sdir = os.path.join(args.out, "scene_%03d" % s)
        os.makedirs(sdir, exist_ok=True)
        # truths, galaxy by galaxy
        xs = {b: np.zeros((n, n)) for b in BANDS}
        iso = []
        objs = []
        for g in gals:
            obj = build_galaxy(g, bp["i"])
            objs.append(obj)
            one = {}
            for b in BANDS:
                one[b] = draw(obj, n, fs, g["offset_arcsec"], bandpass=bp[b])
                xs[b] += one[b]
            iso.append(one)
            g["flux_total"] = {b: float(obj.calculateFlux(bp[b])) for b in BANDS}
            g["flux_total"]["vis_tophat"] = float(obj.calculateFlux(bp_vis))
        xs = {b: f32(xs[b]) for b in BANDS}
        ap_d = SCENE["aperture_diameter_arcsec"]
        for g, one in zip(gals, iso):
            w = aperture_weights(n, fs, *g["fine_pixel_xy_0based"], ap_d)
            g["aperture_flux"] = {
                "diameter_arcsec": ap_d,
                "isolated_truth": {b: float((w * one[b]).sum()) for b in BANDS},
                "scene_truth": {b: float((w * xs[b]).sum()) for b in BANDS},
            }
            g["flux_in_image"] = {b: float(one[b].sum()) for b in BANDS}
            ra, dec = wcs_f.pixel_to_world_values(*g["fine_pixel_xy_0based"])
            g["radec_deg"] = [float(ra), float(dec)]
        # truth files
        for b in BANDS:
            write_fits(os.path.join(sdir, "truth_%s.fits" % b), xs[b], wcs_f, [
                ("BAND", b, "LSST band of the truth"),
                ("PIXSCALE", fs, "arcsec per pixel (fine grid)"),
                ("TRUTH", True, "no PSF, no noise; flux per fine pixel"),
                ("SCENE", s, "scene index"), ("SEED", args.seed, "simulation seed"),
                ("BUNIT", "count", "counts per pixel")])
        # noise-free observations (the exact forward model, from the float32 truths and PSFs)
        clean = {b: forward_rubin(xs[b], psf[b]) for b in BANDS}
        clean["vis"] = forward_vis(xs, psf["vis"], alpha)
        sc = {"index": s, "dir": "scene_%03d" % s, "galaxies": gals,
              "truth_sum": {b: float(xs[b].sum()) for b in BANDS},
              "noiseless_peak": {k: float(v.max()) for k, v in clean.items()},
              "noise_sigma": {}}
        levels = [(None, "noiseless")] if s < args.noiseless else []
        levels += [(snr, level_name(snr)) for snr in args.snr]
        for li, (snr, lname) in enumerate(levels):
            ldir = os.path.join(sdir, lname)
            os.makedirs(ldir, exist_ok=True)
            sig = {}
            for bi, k in enumerate((*BANDS, "vis")):
                y = clean[k]
                if snr is None:
                    sigma = 0.0
                else:
                    sigma = float(y.max() / snr)
                    nrng = np.random.default_rng([args.seed, s, 1, int(round(snr * 1000)), bi])
                    y = y + sigma * nrng.standard_normal(y.shape)
                sig[k] = sigma
                vis = k == "vis"
                cards = [("BAND", "VIS" if vis else k, "band"),
                         ("NOISESIG", sigma, "sigma of the added white Gaussian noise"),
                         ("PEAKSNR", 0.0 if snr is None else snr,
                          "max(noise-free image)/NOISESIG (0: noise-free)"),
                         ("PIXSCALE", fs if vis else inst["rubin_pixel_scale"],
                          "arcsec per pixel"),
                         ("RATIO", 1 if vis else RATIO, "pixel side in fine pixels"),
                         ("SCENE", s, "scene index"), ("SEED", args.seed, "simulation seed"),
                         ("PSFFILE", "psf_%s.fits" % k, "fine-grid PSF (in the set root)"),
                         ("BUNIT", "count", "counts per pixel")]
                if vis:
                    cards += [("ALPHA_%s" % b.upper(), alpha[b], "share of truth_%s in VIS" % b)
                              for b in BANDS]
                    cards.append(("VISBAND", "%g-%g nm" % VIS_BAND_NM, "top-hat"))
                write_fits(os.path.join(ldir, "%s.fits" % k), y, wcs_f if vis else wcs_c, cards)
            if snr is not None:
                sc["noise_sigma"][lname] = sig
        meta["scenes"].append(sc)
        if checks is not None:
            checks["scenes"].append(verify_scene(s, gals, objs, xs, clean, psf, psfo, psf_c,
                                                 alpha, bp, bp_vis, n, fs, args, sdir))
        print("scene %d: %d galaxies, %.1f s" % (s, len(gals), time.perf_counter() - t0),
              flush=True)

    with open(os.path.join(args.out, "scenes.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    t_gen = time.perf_counter() - t_start
    print("generated %d scenes x %d levels in %.1f s" % (args.n_scenes, len(args.snr), t_gen))

    if checks is not None:
        checks.update(verify_global(args, inst, psf, psfo, psf_c, wcs_f, wcs_c, alpha,
                                    alpha_rel, bp, bp_vis))
        summarize(checks)
        with open(os.path.join(args.out, "checks.json"), "w") as f:
            json.dump(checks, f, indent=1)
            f.write("\n")
    if args.preview:
        preview(args.out, args.preview, alpha, args.preview_scene, args.preview_dpi)
    return 0


# --------------------------------------------------------------------------------------------
# Checks


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def read(path):
    with fits.open(path) as h:
        return h[0].data.astype(np.float64), h[0].header


def verify_scene(s, gals, objs, xs, clean, psf, psfo, psf_c, alpha, bp, bp_vis, n, fs, args,
                 sdir):
    out = {"index": s}
    # 1. the files reproduce the forward model
    xr = {b: read(os.path.join(sdir, "truth_%s.fits" % b))[0] for b in BANDS}
    pr = {k: read(os.path.join(args.out, "psf_%s.fits" % k))[0] for k in (*BANDS, "vis")}
    model = {b: forward_rubin(xr[b], pr[b]) for b in BANDS}
    model["vis"] = forward_vis(xr, pr["vis"], alpha)
    if s < args.noiseless:
        out["files_model_vs_noiseless_files"] = {
            k: rel(model[k], read(os.path.join(sdir, "noiseless", "%s.fits" % k))[0])
            for k in model}
    chi = {}
    for snr in args.snr:
        lname = level_name(snr)
        chi[lname] = {}
        for k in model:
            y, h = read(os.path.join(sdir, lname, "%s.fits" % k))
            r = (y - model[k]) / h["NOISESIG"]
            chi[lname][k] = {"mean": float(r.mean()), "std": float(r.std()),
                             "peak_snr_measured": float(model[k].max() / h["NOISESIG"])}
    out["files_noisy_residual_over_sigma"] = chi
    # 2. flux: noise-free band image sum / truth sum (loss = light spilled off the frame)
    out["flux_ratio_noiseless_over_truth"] = {b: float(clean[b].sum() / xs[b].sum())
                                              for b in BANDS}
    xv = sum(alpha[b] * xs[b] for b in BANDS)
    out["flux_ratio_noiseless_over_truth"]["vis"] = float(clean["vis"].sum() / xv.sum())
    # 3. the model against GalSim drawing the PSF-convolved scene directly
    direct = {k: np.zeros((n, n)) for k in (*BANDS, "vis")}
    vis_truth_direct = np.zeros((n, n))
    for g, obj in zip(gals, objs):
        for b in BANDS:
            direct[b] += draw(galsim.Convolve(obj, psfo[b]), n, fs, g["offset_arcsec"],
                              bandpass=bp[b])
        direct["vis"] += draw(galsim.Convolve(obj, psfo["vis"]), n, fs, g["offset_arcsec"],
                              bandpass=bp_vis)
        vis_truth_direct += draw(obj, n, fs, g["offset_arcsec"], bandpass=bp_vis)
    out["galsim_direct_vs_model"] = {b: rel(clean[b], blocksum(direct[b])) for b in BANDS}
    out["galsim_direct_vs_model"]["vis"] = rel(clean["vis"], direct["vis"])
    # the same with point-sampled PSFs (method='no_pixel'), the convention not chosen
    hp = {k: psf_image(psfo[k], args.psf_size, fs, method="no_pixel") for k in (*BANDS, "vis")}
    out["galsim_direct_vs_model_if_point_sampled_psf"] = {
        b: rel(forward_rubin(xs[b], hp[b]), blocksum(direct[b])) for b in BANDS}
    out["galsim_direct_vs_model_if_point_sampled_psf"]["vis"] = rel(
        forward_vis(xs, hp["vis"], alpha), direct["vis"])
    # VIS split: (a) alpha mixing vs drawing through the top-hat, (b) convolution discretisation
    out["vis_alpha_mix_vs_tophat_truth"] = rel(xv, vis_truth_direct)
    out["vis_alpha_mix_vs_tophat_truth_flux_ratio"] = float(xv.sum() / vis_truth_direct.sum())
    out["vis_direct_vs_model_of_tophat_truth"] = rel(
        fftconvolve(vis_truth_direct, psf["vis"], mode="same"), direct["vis"])
    # single-band baseline at 0.2": psf_b_rubin * blocksum(x_b) against the noise-free image
    out["rubin_baseline_psf_vs_model"] = {
        b: rel(fftconvolve(blocksum(xs[b]), psf_c[b], mode="same"), clean[b]) for b in BANDS}
    out["truth_min_over_max"] = {b: float(xs[b].min() / xs[b].max()) for b in BANDS}
    return out


def verify_global(args, inst, psf, psfo, psf_c, wcs_f, wcs_c, alpha, alpha_rel, bp, bp_vis):
    out = {}
    # PSF FWHMs
    f = {}
    for k in (*BANDS, "vis"):
        e = {"target": inst["rubin_psf_fwhm"][k] if k != "vis" else None,
             "file_radial_interp": fwhm_radial(psf[k], inst["vis_pixel_scale"]),
             "file_galsim_calculateFWHM": float(
                 galsim.Image(psf[k], scale=inst["vis_pixel_scale"]).calculateFWHM()),
             "profile_oversampled": fwhm_fine(psfo[k]),
             "profile_with_0.1_pixel": fwhm_fine(psfo[k], inst["vis_pixel_scale"])}
        if k != "vis":
            e["rubin_file_radial_interp"] = fwhm_radial(psf_c[k], inst["rubin_pixel_scale"])
        f[k] = e
    out["psf_fwhm_arcsec"] = f
    out["psf_sum"] = {k: float(v.sum()) for k, v in psf.items()}
    # flux of the unit-flux profile that falls in the stamp (before the renormalisation)
    out["psf_stamp_flux_fraction"] = {
        k: float(psfo[k].drawImage(nx=args.psf_size, ny=args.psf_size,
                                   scale=inst["vis_pixel_scale"]).array.sum())
        for k in (*BANDS, "vis")}
    out["psf_centroid_offset_pix"] = {}
    for k, v in psf.items():
        yy, xx = np.mgrid[0:v.shape[0], 0:v.shape[1]]
        out["psf_centroid_offset_pix"][k] = [float((v * xx).sum() / v.sum() - v.shape[1] // 2),
                                             float((v * yy).sum() / v.sum() - v.shape[0] // 2)]
    # WCS: every Rubin pixel centre maps to the fine-grid position of its 2x2 block centre
    nc = args.size // RATIO
    ii, jj = np.mgrid[0:nc, 0:nc]
    w_c = WCS(fits.getheader(os.path.join(args.out, "scene_000", level_name(args.snr[0]),
                                          "r.fits")))
    w_f = WCS(fits.getheader(os.path.join(args.out, "scene_000", level_name(args.snr[0]),
                                          "vis.fits")))
    ra_c, de_c = w_c.pixel_to_world_values(jj.ravel(), ii.ravel())
    ra_f, de_f = w_f.pixel_to_world_values(RATIO * jj.ravel() + 0.5, RATIO * ii.ravel() + 0.5)
    sep = np.hypot((ra_c - ra_f) * np.cos(np.radians(de_f)), de_c - de_f) * 3600.0
    xf, yf = w_f.world_to_pixel_values(*w_c.pixel_to_world_values(0.0, 0.0))
    xf1, yf1 = w_f.world_to_pixel_values(*w_c.pixel_to_world_values(1.0, 1.0))
    out["wcs"] = {"max_sep_rubin_centre_vs_fine_block_centre_arcsec": float(sep.max()),
                  "fine_xy_of_rubin_pixel_0_0": [float(xf), float(yf)],
                  "ratio_from_wcs": [float(xf1 - xf), float(yf1 - yf)],
                  "rubin_crpix": list(map(float, w_c.wcs.crpix)),
                  "fine_crpix": list(map(float, w_f.wcs.crpix))}
    out["alpha"] = alpha
    out["alpha_throughput_fit_rel_residual"] = alpha_rel
    # alpha applied to each SED template at each redshift: sum alpha_b F_b / F_VIS
    bad = {}
    for name in ("CWW_E_ext", "CWW_Sbc_ext", "CWW_Scd_ext", "CWW_Im_ext"):
        for z in SCENE["redshifts"]:
            sed = _sed(name).atRedshift(z)
            bad["%s z=%g" % (name, z)] = float(
                sum(alpha[b] * sed.calculateFlux(bp[b]) for b in BANDS)
                / sed.calculateFlux(bp_vis))
    out["alpha_mix_over_tophat_flux_per_template"] = bad
    return out


def summarize(c):
    sc = c["scenes"]

    def worst(key):
        vals = []
        for s in sc:
            if key not in s:
                continue
            d = s[key]
            vals += list(d.values()) if isinstance(d, dict) else [d]
        return max(vals), min(vals)

    print("checks:")
    if "files_model_vs_noiseless_files" in sc[0]:
        print("  files: model vs noise-free files, max rel: %.2e"
              % worst("files_model_vs_noiseless_files")[0])
    stds = [v["std"] for s in sc for lv in s["files_noisy_residual_over_sigma"].values()
            for v in lv.values()]
    print("  files: (y - model)/sigma std in [%.4f, %.4f]" % (min(stds), max(stds)))
    print("  flux noiseless/truth in [%.5f, %.5f]" % worst("flux_ratio_noiseless_over_truth")[::-1])
    for k in (*BANDS, "vis"):
        v = [s["galsim_direct_vs_model"][k] for s in sc]
        w = [s["galsim_direct_vs_model_if_point_sampled_psf"][k] for s in sc]
        print("  GalSim direct vs model %-3s: max %.2e  mean %.2e   (point-sampled PSF: max "
              "%.2e mean %.2e)" % (k, max(v), np.mean(v), max(w), np.mean(w)))
    v = [s["rubin_baseline_psf_vs_model"][b] for s in sc for b in BANDS]
    print("  Rubin 0.2\" baseline PSF * blocksum(x) vs model: max %.2e" % max(v))
    print("  VIS alpha mix vs top-hat truth: max %.2e" % max(
        s["vis_alpha_mix_vs_tophat_truth"] for s in sc))
    print("  VIS direct vs model(top-hat truth): max %.2e" % max(
        s["vis_direct_vs_model_of_tophat_truth"] for s in sc))
    for k, v in c["psf_fwhm_arcsec"].items():
        print("  FWHM %-3s %s" % (k, ", ".join("%s=%s" % (a, "%.4f" % b if b else b)
                                              for a, b in v.items())))
    print("  PSF stamp flux fraction: %s" % c["psf_stamp_flux_fraction"])
    print("  WCS: %s" % c["wcs"])
    print("  alpha: %s (throughput fit residual %.3f)" % (c["alpha"],
                                                        c["alpha_throughput_fit_rel_residual"]))


# --------------------------------------------------------------------------------------------
# Preview


def preview(out, png, alpha, scene=0, dpi=60):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sdir = os.path.join(out, "scene_%03d" % scene)
    lname = sorted(d for d in os.listdir(sdir) if d.startswith("snr"))[-1]  # highest SNR
    x = {b: read(os.path.join(sdir, "truth_%s.fits" % b))[0] for b in BANDS}
    y = {k: read(os.path.join(sdir, lname, "%s.fits" % k))[0] for k in (*BANDS, "vis")}
    with open(os.path.join(out, "scenes.json")) as f:
        g0 = json.load(f)["scenes"][scene]["galaxies"][0]
    x["vis"] = sum(alpha[b] * x[b] for b in BANDS)

    def stretch(a, ref, soft=0.01):
        return np.arcsinh(a / (soft * ref)) / np.arcsinh(1.0 / soft)

    def rgb(d, soft=0.01):
        ref = max(d[b].max() for b in BANDS)
        return np.clip(np.dstack([stretch(d[b], ref, soft) for b in ("z", "i", "r")]), 0, 1)

    n = x["i"].shape[0]
    cx, cy = (int(round(v)) for v in g0["fine_pixel_xy_0based"])
    h = 24  # zoom half-width in fine pixels (4.8" x 4.8")
    sl = (slice(max(cy - h, 0), min(cy + h, n)), slice(max(cx - h, 0), min(cx + h, n)))
    up = {b: np.kron(y[b], np.ones((RATIO, RATIO))) for b in BANDS}

    fig, axs = plt.subplots(3, 4, figsize=(12, 9.4))
    kw = dict(origin="lower", cmap="gray", vmin=-0.05, vmax=1, interpolation="nearest")
    for k, b in enumerate((*BANDS, "vis")):
        axs[0, k].imshow(stretch(x[b], x[b].max()), **kw)
        axs[0, k].set_title("truth %s (0.1\")" % b if b != "vis"
                            else "VIS truth = sum alpha_b x_b")
        axs[1, k].imshow(stretch(y[b], y[b].max()), **kw)
        axs[1, k].set_title(("Rubin %s (0.2\", %s)" if b != "vis" else "VIS (0.1\", %s)")
                            % (b, lname) if b != "vis" else "VIS (0.1\", %s)" % lname)
    zkw = dict(origin="lower", interpolation="nearest")
    axs[2, 0].imshow(rgb({b: x[b][sl] for b in BANDS}, 0.05), **zkw)
    axs[2, 0].set_title("truth z,i,r -> RGB, central 4.8\"")
    axs[2, 1].imshow(stretch(y["vis"][sl], y["vis"][sl].max(), 0.05), cmap="gray", vmin=-0.05,
                     vmax=1, **zkw)
    axs[2, 1].set_title("VIS, central 4.8\"")
    axs[2, 2].imshow(stretch(up["i"][sl], up["i"][sl].max(), 0.05), cmap="gray", vmin=-0.05,
                     vmax=1, **zkw)
    axs[2, 2].set_title("Rubin i, central 4.8\"")
    axs[2, 3].imshow(rgb(y), **zkw)
    axs[2, 3].set_title("Rubin z,i,r -> RGB")
    for a in axs.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.suptitle("scene %d" % scene)
    fig.savefig(png, dpi=dpi)
    print("preview:", png)


if __name__ == "__main__":
    sys.exit(main())
