#!/usr/bin/env python3
"""Golden FITS files for sparseinv's FITS reader/writer, made and checked with astropy.

Usage:
    python testdata/gen_golden.py            # (re)write testdata/golden/*.fits + expected.json
    python testdata/gen_golden.py --check D  # check the FITS files that the Rust test
                                             # tests/fits_golden.rs wrote into directory D
                                             # (run it with SPARSEINV_GOLDEN_OUT=D)

Generation: small images with every BITPIX (8, 16, 32, 64, -32, -64), BSCALE/BZERO, BLANK
and NaN pixels, a TAN WCS with a PC matrix, an image in an extension after an empty primary,
a table-only file, a 3-D cube and tile-compressed images (Rice, GZIP_2 lossless, HCOMPRESS).
expected.json holds, for each file, the pixel values as astropy reads them (null = undefined),
the world coordinates of a few pixels and the non-structural header cards, so that the Rust
tests need no Python. The real images testdata/m13*.fits are summarised the same way.
zscale.json holds seeded arrays and astropy's ZScaleInterval limits for them.

Check: for each out_<name>.fits written by the Rust test, astropy must read BITPIX -32, the
same values (float32-rounded), the same world coordinates at the same pixels, and HISTORY.
"""
import json
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

HERE = Path(__file__).resolve().parent
GOLD = HERE / "golden"
STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
              "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "END"}
PIXELS = [[0, 0], [3, 2], [7, 5], [11, 9]]  # (x, y), 0-based


def wcs_header(ny, nx):
    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"] = "RA---TAN"
    h["CTYPE2"] = "DEC--TAN"
    h["CRPIX1"] = nx / 2 + 0.5
    h["CRPIX2"] = ny / 2 + 0.5
    h["CRVAL1"] = 150.1191666
    h["CRVAL2"] = 2.2058333
    h["CDELT1"] = -0.000277777
    h["CDELT2"] = 0.000277777
    h["PC1_1"] = 0.9961946981
    h["PC1_2"] = -0.0871557427
    h["PC2_1"] = 0.0871557427
    h["PC2_2"] = 0.9961946981
    h["CUNIT1"] = "deg"
    h["CUNIT2"] = "deg"
    h["RADESYS"] = "ICRS"
    h["EQUINOX"] = 2000.0
    h["OBJECT"] = "golden test, it's here"
    h["EXPTIME"] = (120.5, "exposure time [s]")
    h["COMMENT"] = "a comment card"
    h["HISTORY"] = "original history card"
    return h


def cards(header):
    out = []
    for c in header.cards:
        if c.keyword in STRUCTURAL or (c.keyword.startswith("NAXIS") and c.keyword[5:].isdigit()):
            continue
        out.append(c.image)
    return out


def summarise(path, hdu):
    with fits.open(path) as f:
        h = f[hdu]
        bitpix = h.header["BITPIX"]  # on-disk value, before astropy scales the data
        hdr = h.header.copy()
        d = h.data.astype(np.float64)
        entry = {"file": path.name, "hdu": hdu, "shape": list(d.shape), "bitpix": bitpix,
                 "cards": cards(hdr)}
        if d.size <= 2000:
            entry["values"] = [None if not np.isfinite(v) else float(v) for v in d.ravel()]
        else:
            rng = np.random.default_rng(7)
            ys = rng.integers(0, d.shape[-2], 40)
            xs = rng.integers(0, d.shape[-1], 40)
            entry["samples"] = [[int(y), int(x), float(d[y, x])] for y, x in zip(ys, xs)]
            entry["sum"] = float(np.nansum(d))
        if "CTYPE1" in hdr and d.ndim == 2:
            w = WCS(hdr)
            pix = np.array(PIXELS if d.size <= 2000 else [[0, 0], [150, 100], [299, 299]],
                           dtype=float)
            entry["wcs_pixels"] = pix.tolist()
            entry["wcs_world"] = w.all_pix2world(pix, 0).tolist()
        return entry


def generate():
    GOLD.mkdir(exist_ok=True)
    rng = np.random.default_rng(20261125)
    ny, nx = 10, 12
    expected = []

    def save(name, hdul, hdu):
        p = GOLD / name
        hdul.writeto(p, overwrite=True, checksum=True)
        expected.append(summarise(p, hdu))

    # BITPIX 8 with BSCALE/BZERO and BLANK
    d = rng.integers(0, 250, (ny, nx)).astype(np.uint8)
    d[2, 3] = 255
    h = wcs_header(ny, nx)
    hdu = fits.PrimaryHDU(d, header=h)
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = -10.0
    hdu.header["BLANK"] = 255
    save("bitpix8.fits", fits.HDUList([hdu]), 0)

    # BITPIX 16 scaled (astropy quantises the float data itself), BLANK
    f = rng.normal(1000.0, 50.0, (ny, nx))
    hdu = fits.PrimaryHDU(f, header=wcs_header(ny, nx))
    hdu.scale("int16", bscale=0.25, bzero=1000.0)
    raw = hdu.data.copy()
    raw[4, 5] = -32768
    hdu = fits.PrimaryHDU(raw, header=wcs_header(ny, nx))
    hdu.header["BSCALE"] = 0.25
    hdu.header["BZERO"] = 1000.0
    hdu.header["BLANK"] = -32768
    save("bitpix16_scaled.fits", fits.HDUList([hdu]), 0)

    # unsigned 16 (BZERO = 32768)
    d = rng.integers(0, 65535, (ny, nx)).astype(np.uint16)
    save("bitpix16_unsigned.fits", fits.HDUList([fits.PrimaryHDU(d, header=wcs_header(ny, nx))]), 0)

    # BITPIX 32 with BLANK
    d = rng.integers(-2**31 + 1, 2**31 - 1, (ny, nx)).astype(np.int32)
    d[0, 0] = -2**31
    hdu = fits.PrimaryHDU(d, header=wcs_header(ny, nx))
    hdu.header["BLANK"] = -2**31
    save("bitpix32.fits", fits.HDUList([hdu]), 0)

    # BITPIX 64 (values exactly representable in f64)
    d = rng.integers(-2**52, 2**52, (ny, nx)).astype(np.int64)
    save("bitpix64.fits", fits.HDUList([fits.PrimaryHDU(d, header=wcs_header(ny, nx))]), 0)

    # float32 with NaN in an extension after an empty primary, then a table
    f = rng.normal(0.0, 1.0, (ny, nx)).astype(np.float32)
    f[1, 1] = np.nan
    f[9, 11] = np.nan
    sci = fits.ImageHDU(f, header=wcs_header(ny, nx), name="SCI")
    tab = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.arange(3.0))])
    save("float32_ext.fits", fits.HDUList([fits.PrimaryHDU(), sci, tab]), 1)

    # float64
    f = rng.normal(0.0, 1e10, (ny, nx))
    save("float64.fits", fits.HDUList([fits.PrimaryHDU(f, header=wcs_header(ny, nx))]), 0)

    # cube (3 planes)
    c = rng.normal(0.0, 1.0, (3, 4, 5)).astype(np.float32)
    save("cube.fits", fits.HDUList([fits.PrimaryHDU(c)]), 0)

    # table only
    t = fits.BinTableHDU.from_columns([fits.Column(name="b", format="J", array=np.arange(4))])
    fits.HDUList([fits.PrimaryHDU(), t]).writeto(GOLD / "table.fits", overwrite=True)

    # tile-compressed: Rice int16, lossless GZIP_2 float32, HCOMPRESS int16
    d = (rng.normal(300, 20, (40, 36))).astype(np.int16)
    save("rice16.fits", fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        d, header=wcs_header(40, 36), compression_type="RICE_1", tile_shape=(8, 36))]), 1)
    f = rng.normal(0, 1, (20, 18)).astype(np.float32)
    f[3, 4] = np.nan
    save("gzip_float.fits", fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        f, header=wcs_header(20, 18), compression_type="GZIP_2", quantize_level=0.0)]), 1)
    save("hcomp16.fits", fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        d, header=wcs_header(40, 36), compression_type="HCOMPRESS_1")]), 1)

    # the real images (not rewritten)
    expected.append(summarise(HERE / "m13.fits", 0))
    expected.append(summarise(HERE / "m13_rice.fits", 1))
    (GOLD / "expected.json").write_text(json.dumps(expected, indent=1))

    # zscale limits (astropy.visualization.ZScaleInterval, defaults) of seeded arrays
    from astropy.visualization import ZScaleInterval
    zs = []
    for k, (ny_, nx_) in enumerate([(50, 40), (64, 70), (7, 9)]):
        a = rng.normal(100.0, 5.0, (ny_, nx_)) + 30.0 * np.exp(-rng.uniform(0, 8, (ny_, nx_)))
        a[rng.integers(0, ny_, 5), rng.integers(0, nx_, 5)] = 5e4  # stars/cosmics
        if k == 1:
            a[3, :] = np.nan
        lo, hi = ZScaleInterval().get_limits(a)
        zs.append({"shape": [ny_, nx_], "values": [None if not np.isfinite(v) else float(v)
                                                    for v in a.ravel()],
                   "limits": [float(lo), float(hi)]})
    (GOLD / "zscale.json").write_text(json.dumps(zs))
    print(f"wrote {len(expected)} entries to {GOLD / 'expected.json'}")


def check(outdir):
    exp = {e["file"]: e for e in json.loads((GOLD / "expected.json").read_text())}
    outs = sorted(Path(outdir).glob("out_*.fits"))
    if not outs:
        sys.exit(f"no out_*.fits in {outdir}")
    failures = 0
    for p in outs:
        e = exp[p.name[4:]]
        with fits.open(p) as f:
            h = f[0]
            msgs = []
            if h.header["BITPIX"] != -32:
                msgs.append(f"BITPIX {h.header['BITPIX']}")
            d = h.data.astype(np.float64)
            if list(d.shape) != e["shape"]:
                msgs.append(f"shape {d.shape} != {e['shape']}")
            elif "values" in e:
                ref = np.array([np.nan if v is None else v for v in e["values"]]).reshape(d.shape)
                ref32 = ref.astype(np.float32).astype(np.float64)
                if not np.array_equal(np.isnan(d), np.isnan(ref)):
                    msgs.append("NaN mask differs")
                ok = ~np.isnan(ref)
                if not np.array_equal(d[ok], ref32[ok]):
                    msgs.append(f"values differ, max {np.max(np.abs(d[ok] - ref32[ok]))}")
            else:
                for y, x, v in e["samples"]:
                    if d[y, x] != np.float32(v):
                        msgs.append(f"pixel {y},{x}: {d[y, x]} != {v}")
            if "wcs_world" in e:
                w = WCS(h.header)
                world = w.all_pix2world(np.array(e["wcs_pixels"]), 0)
                err = np.max(np.abs(world - np.array(e["wcs_world"])))
                if err > 1e-12:
                    msgs.append(f"WCS differs by {err} deg")
            if not any("sparseinv" in str(c) for c in h.header.get("HISTORY", [])):
                msgs.append("no sparseinv HISTORY card")
            status = "OK" if not msgs else "FAIL: " + "; ".join(msgs)
            failures += bool(msgs)
            print(f"{p.name}: {status}")
    print(f"{len(outs) - failures}/{len(outs)} files read back by astropy with the same values and WCS")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        generate()
