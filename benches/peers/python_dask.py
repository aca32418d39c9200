"""Python front and Dask scale-out: what a Python user times.

1. Call overhead: `sparseinv.deconvolve` on a 256x256 float64 image (RL, 30 accelerated
   iterations) from Python against the time the Rust pipeline itself reports for the same call
   (`report["seconds"]`, measured inside the library after the arrays arrive). Overhead =
   (Python wall time − library time) / library time, median over --calls calls.
2. Files: --files FITS star fields (--size², default 256², float32 with a TAN WCS) deconvolved file in → file
   out, RL 30 iterations:
   - `sparseinv.dask.deconvolve_files` on a LocalCluster of 1 and of 2 worker processes
     (1 thread each; worker start-up and imports outside the timing);
   - a plain Python loop a user would write with scikit-image:
     `astropy.io.fits.getdata` → `skimage.restoration.richardson_lucy(img, psf, num_iter=30,
     clip=False)` → `fits.writeto` (one process; numpy's FFT uses one thread);
   - the same loop calling `sparseinv.deconvolve_file` (RL unaccelerated, like scikit-image's,
     and the accelerated default), threads=1.
   Rounds alternate the runs (--rounds); the medians and ranges are printed.

    .venv/bin/python benches/peers/python_dask.py [--files 32] [--rounds 3] [--calls 30]

Needs the package importable (`pip install ./python[dask]`, or scripts/test-python.sh and
PYTHONPATH=python) and scikit-image.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from dask_files import make_files  # noqa: E402

import sparseinv  # noqa: E402
import sparseinv.dask as sdask  # noqa: E402


def overhead(calls):
    rng = np.random.default_rng(1)
    img = rng.random((256, 256)) * 10 + 100
    yy, xx = np.mgrid[-7:8, -7:8]
    psf = np.exp(-(yy**2 + xx**2) / 8.0)
    sparseinv.deconvolve(img, psf, iters=30)
    walls, libs = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        _, rep = sparseinv.deconvolve(img, psf, iters=30)
        walls.append(time.perf_counter() - t0)
        libs.append(rep["seconds"])
    over = [(w - l) / l for w, l in zip(walls, libs)]
    return statistics.median(walls), statistics.median(libs), statistics.median(over), min(over), max(over)


def run_dask(paths, psf, out, workers, **kw):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(lambda: __import__("sparseinv"))
        t0 = time.perf_counter()
        sdask.deconvolve_files(paths, psf, out, client=client, method="rl", iters=30, **kw)
        return time.perf_counter() - t0


def run_skimage(paths, psf, out):
    from skimage.restoration import richardson_lucy

    k = fits.getdata(psf).astype(np.float64)
    out.mkdir()
    t0 = time.perf_counter()
    for p in paths:
        with fits.open(p) as f:
            img, hdr = f[0].data.astype(np.float64), f[0].header
        x = richardson_lucy(img, k, num_iter=30, clip=False)
        fits.writeto(out / p.name, x.astype(np.float32), hdr)
    return time.perf_counter() - t0


def run_loop(paths, psf, out, **kw):
    out.mkdir()
    sparseinv.set_threads(1)
    t0 = time.perf_counter()
    for p in paths:
        sparseinv.deconvolve_file(p, out / p.name, psf, method="rl", iters=30, **kw)
    dt = time.perf_counter() - t0
    sparseinv.set_threads(0)
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--size", type=int, default=256, help="side of the simulated files")
    a = ap.parse_args()
    w, l, o, olo, ohi = overhead(a.calls)
    print(f"call overhead, 256x256 RL 30 it: Python {w * 1e3:.2f} ms, library {l * 1e3:.2f} ms, "
          f"overhead median {o * 100:.2f} % (range {olo * 100:.2f}..{ohi * 100:.2f} %)")
    times = {k: [] for k in ("dask 1 worker", "dask 2 workers", "skimage loop", "sparseinv loop (unaccelerated)", "sparseinv loop (accelerated)")}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        paths, psf = make_files(d, a.files, a.size)
        for r in range(a.rounds):
            times["dask 1 worker"].append(run_dask(paths, psf, d / f"o1_{r}", 1))
            times["dask 2 workers"].append(run_dask(paths, psf, d / f"o2_{r}", 2))
            times["skimage loop"].append(run_skimage(paths, psf, d / f"sk_{r}"))
            times["sparseinv loop (unaccelerated)"].append(run_loop(paths, psf, d / f"lu_{r}", accelerate=False))
            times["sparseinv loop (accelerated)"].append(run_loop(paths, psf, d / f"la_{r}"))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:32s} median {med[k]:6.2f} s  ({a.files / med[k]:5.1f} files/s)  range {min(v):.2f}..{max(v):.2f} s")
    print(f"dask 2 workers / 1 worker throughput: {med['dask 1 worker'] / med['dask 2 workers']:.2f}x")
    print(f"dask 2 workers vs skimage loop: {med['skimage loop'] / med['dask 2 workers']:.2f}x")
    print(f"sparseinv loop (unaccelerated) vs skimage loop: {med['skimage loop'] / med['sparseinv loop (unaccelerated)']:.2f}x")


if __name__ == "__main__":
    main()
