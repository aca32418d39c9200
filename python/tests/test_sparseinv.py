"""Tests of the Python package against independent references: closed forms computed with
numpy's FFT, dense numpy algebra, the command-line tool's output on the same file (the Rust
library called from Rust), astropy's WCS."""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import sparseinv

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "testdata"
M13 = TESTDATA / "m13.fits"
M13_PSF = TESTDATA / "m13_psf.fits"


def cli_binary():
    """The command-line tool built by `cargo test`/`cargo build` in this checkout (under
    `$CARGO_TARGET_DIR` when set, as scripts/test-python.sh), or None."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    for profile in ("debug", "release"):
        p = target / profile / "sparseinv"
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def star_field(n=64, seed=1, sky=10.0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, n))
    for _ in range(12):
        i, j = rng.integers(4, n - 4, size=2)
        x[i, j] += rng.uniform(50, 200)
    yy, xx = np.mgrid[-4:5, -4:5]
    psf = np.exp(-(yy**2 + xx**2) / (2 * 1.5**2))
    psf /= psf.sum()
    return x, psf, sky


def circular_conv(x, k):
    """Circular convolution with the kernel centre at (h//2, w//2), by numpy's FFT."""
    pad = np.zeros_like(x)
    h, w = k.shape
    pad[:h, :w] = k
    pad = np.roll(pad, (-(h // 2), -(w // 2)), axis=(0, 1))
    return np.real(np.fft.ifft2(np.fft.fft2(x) * np.fft.fft2(pad))), np.fft.fft2(pad)


# ------------------------------------------------------------------------------------------
# pipelines


def test_wiener_periodic_equals_numpy_closed_form():
    x, psf, _ = star_field()
    y, H = circular_conv(x, psf)
    y = y + 3.0
    mu = 0.01
    out, rep = sparseinv.deconvolve(y, psf, method="wiener", boundary="periodic", balance=mu, sky=3.0)
    want = np.real(np.fft.ifft2(np.conj(H) * np.fft.fft2(y - 3.0) / (np.abs(H) ** 2 + mu))) + 3.0
    assert rep["method"] == "wiener" and rep["balance"] == mu and rep["sky"] == 3.0
    assert np.max(np.abs(out - want)) < 1e-9 * np.max(np.abs(want))


def test_deconvolve_equals_cli_on_the_same_fits_file(tmp_path):
    """The Python call on astropy-read (big-endian) data equals the command-line tool's output
    (the Rust library called from Rust) on the same file to 1e-6 of the peak."""
    astropy_fits = pytest.importorskip("astropy.io.fits")
    exe = cli_binary()
    if exe is None:
        pytest.skip("the sparseinv binary is not built (run `cargo build` first)")
    out_cli = tmp_path / "cli.fits"
    subprocess.run(
        [str(exe), "deconvolve", str(M13), "--psf", str(M13_PSF), "--method", "rl", "--iters", "20",
         "-o", str(out_cli)],
        check=True, capture_output=True,
    )
    with astropy_fits.open(M13) as f:
        data = f[0].data  # big-endian int16 with BSCALE/BZERO applied by astropy: float32
        assert not data.dtype.isnative or data.dtype.kind == "f"
        img = np.array(data, dtype=data.dtype.newbyteorder(">") if data.dtype.kind == "f" else data.dtype)
    psf = astropy_fits.getdata(M13_PSF)
    # the CLI's default precision on this 16-bit integer file is f32 (arrays default to f64)
    got, rep = sparseinv.deconvolve(img, psf, method="rl", iters=20, precision="f32")
    assert rep["precision"] == "f32"
    want = astropy_fits.getdata(out_cli).astype(np.float64)
    assert got.shape == want.shape
    # the CLI writes float32: compare at that precision
    assert np.nanmax(np.abs(got - want)) <= 1e-6 * np.nanmax(np.abs(want)) + np.spacing(np.float32(np.nanmax(want)))
    # and the file route of the Python package writes what the CLI writes
    out_py = tmp_path / "py.fits"
    sparseinv.deconvolve_file(M13, out_py, M13_PSF, method="rl", iters=20)
    np.testing.assert_array_equal(astropy_fits.getdata(out_py), astropy_fits.getdata(out_cli))


def test_strided_big_endian_and_float32_inputs_give_the_same_result():
    x, psf, sky = star_field(n=96)
    y = circular_conv(x, psf)[0] + sky
    ref, _ = sparseinv.deconvolve(y[::2, ::2].copy(), psf, method="rl", iters=15)
    strided, _ = sparseinv.deconvolve(y[::2, ::2], psf, method="rl", iters=15)
    big = y[::2, ::2].astype(">f8")
    bigout, _ = sparseinv.deconvolve(big, psf, method="rl", iters=15)
    fortran, _ = sparseinv.deconvolve(np.asfortranarray(y[::2, ::2]), psf, method="rl", iters=15)
    np.testing.assert_array_equal(strided, ref)
    np.testing.assert_array_equal(bigout, ref)
    np.testing.assert_array_equal(fortran, ref)
    f32, _ = sparseinv.deconvolve(y[::2, ::2].astype(np.float32), psf, method="rl", iters=15)
    assert f32.dtype == np.float32
    assert sparseinv.deconvolve(y[::2, ::2].astype(">f4"), psf, iters=2)[0].dtype == np.float32
    assert sparseinv.deconvolve(y[::2, ::2].astype(">f8"), psf, iters=2)[0].dtype == np.float64
    assert np.max(np.abs(f32 - ref)) < 1e-5 * np.max(ref)


def test_mask_and_masked_array_are_missing_data():
    x, psf, sky = star_field()
    y = circular_conv(x, psf)[0] + sky
    m = np.zeros_like(y, dtype=bool)
    m[10:14, 20:30] = True
    a, ra = sparseinv.deconvolve(y, psf, mask=m)
    yn = y.copy()
    yn[m] = np.nan
    b, rb = sparseinv.deconvolve(yn, psf)
    c, _ = sparseinv.deconvolve(np.ma.masked_array(y, mask=m), psf)
    assert ra["masked_pixels"] == rb["masked_pixels"] == m.sum()
    assert np.isnan(a[m]).all()
    np.testing.assert_array_equal(np.nan_to_num(a), np.nan_to_num(b))
    np.testing.assert_array_equal(np.nan_to_num(a), np.nan_to_num(c))


def test_deconvolve_hdu_keeps_header_and_wcs():
    fits = pytest.importorskip("astropy.io.fits")
    wcs = pytest.importorskip("astropy.wcs")
    with fits.open(M13) as f:
        hdu = f[0]
        psf = fits.getdata(M13_PSF)
        out = sparseinv.deconvolve_hdu(hdu, psf, method="wiener")
        w_in, w_out = wcs.WCS(hdu.header), wcs.WCS(out.header)
        pix = np.array([[0.0, 0.0], [150.0, 120.0], [299.0, 299.0]])
        np.testing.assert_allclose(w_in.all_pix2world(pix, 0), w_out.all_pix2world(pix, 0), rtol=0, atol=1e-12)
        assert out.header["DECONV"] == "wiener"
        assert any("sparseinv" in str(h) for h in out.header["HISTORY"])
        assert out.data.dtype == np.float32 and out.data.shape == hdu.data.shape
        assert "BSCALE" not in out.header and "BZERO" not in out.header
        for key in ("OBJECT", "TELESCOP", "DATE-OBS", "EQUINOX"):
            if key in hdu.header:
                assert out.header[key] == hdu.header[key]
        # round trip through a file
        back = fits.PrimaryHDU(out.data, out.header)
        assert wcs.WCS(back.header).wcs.compare(w_in.wcs)


def test_estimate_psf_on_m13():
    fits = pytest.importorskip("astropy.io.fits")
    psf, rep = sparseinv.estimate_psf(fits.getdata(M13), size=25)
    assert psf.shape == (25, 25)
    assert abs(psf.sum() - 1) < 1e-9
    assert np.unravel_index(np.argmax(psf), psf.shape) == (12, 12)
    assert rep["used"] >= 5 and 2.0 < rep["fwhm"] < 5.0


def test_bad_input_raises_value_error_with_the_library_message(tmp_path):
    x, psf, _ = star_field(n=32)
    with pytest.raises(ValueError, match="unknown method"):
        sparseinv.deconvolve(x, psf, method="nope")
    with pytest.raises(ValueError, match="iters"):
        sparseinv.deconvolve(x, psf, iters=0)
    with pytest.raises(ValueError, match="unknown deconvolve option"):
        sparseinv.deconvolve(x, psf, itres=3)
    with pytest.raises(ValueError):
        sparseinv.deconvolve(x, np.ones((40, 40)))  # PSF larger than the image
    with pytest.raises(ValueError, match="masked"):
        sparseinv.deconvolve(np.full((32, 32), np.nan), psf)
    with pytest.raises(ValueError, match="2-d"):
        sparseinv.deconvolve(np.ones(10), psf)
    with pytest.raises(ValueError, match="dtype"):
        sparseinv.deconvolve(np.array([["a"]]), psf)
    with pytest.raises(OSError):
        sparseinv.deconvolve_file(tmp_path / "missing.fits", tmp_path / "o.fits", M13_PSF)
    out = tmp_path / "o.fits"
    sparseinv.deconvolve_file(M13, out, M13_PSF, method="wiener")
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="force=True"):
        sparseinv.deconvolve_file(M13, out, M13_PSF, method="wiener")
    assert out.read_bytes() == before
    sparseinv.deconvolve_file(M13, out, M13_PSF, method="tikhonov", force=True)
    assert out.read_bytes() != before


def test_threads_setting_does_not_change_results():
    x, psf, sky = star_field(n=128)
    y = circular_conv(x, psf)[0] + sky
    sparseinv.set_threads(1)
    assert sparseinv.get_threads() == 1
    a, _ = sparseinv.deconvolve(y, psf, iters=10)
    sparseinv.set_threads(2)
    assert sparseinv.get_threads() == 2
    b, _ = sparseinv.deconvolve(y, psf, iters=10)
    sparseinv.set_threads(0)
    np.testing.assert_array_equal(a, b)


def test_gil_is_released_during_computation():
    """Another Python thread runs while the library computes: a thread counting in Python
    makes progress during a long call only if the call released the GIL."""
    x, psf, sky = star_field(n=256)
    y = circular_conv(x, psf)[0] + sky
    started = threading.Event()
    done = threading.Event()
    ticks_during = []

    def work():
        started.set()
        sparseinv.deconvolve(y, psf, iters=400, accelerate=False)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    n = 0
    while not done.is_set():
        n += 1
    t.join()
    ticks_during.append(n)
    # with the GIL held for the whole call the loop would spin only in the thread switches
    # before and after it (a few intervals of 5 ms); it spins millions of times otherwise
    assert ticks_during[0] > 10_000


def test_denoise_starlet_and_builtin():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64]
    clean = (np.sin(xx / 6.0) * np.cos(yy / 9.0) * 0.3 + 0.5).astype(np.float32)
    noisy = clean + rng.normal(0, 0.05, clean.shape).astype(np.float32)
    out, rep = sparseinv.denoise(noisy, 0.05, model="starlet")
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    out, rep = sparseinv.denoise(noisy, 0.05, model="builtin")  # default threads
    assert "onnxruntime" in rep and rep["onnxruntime"]
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    out, rep = sparseinv.denoise(noisy, 0.05, model="builtin", threads=1)
    assert "onnxruntime" in rep and rep["onnxruntime"]
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)


def test_deblur_pnp_and_learned_run_with_default_threads():
    x, psf, _ = star_field(n=64, seed=9)
    clean = circular_conv(x, np.ones((3, 3)) / 9)[0] + 1.0  # extended sources on a sky
    blurred = circular_conv(clean, psf)[0] + np.random.default_rng(10).normal(0, 0.01, clean.shape)
    out, rep = sparseinv.deblur(blurred, psf, method="pnp-fista", denoiser="starlet", iters=30)
    assert rep["iterations"] == 30 and out.shape == clean.shape
    assert np.mean((out - clean) ** 2) < np.mean((blurred - clean) ** 2)
    out, rep = sparseinv.deblur(blurred, psf)  # the learned model, default threads
    assert out.shape == clean.shape and np.isfinite(out).all()
    assert rep["method"] == "learned"


# ------------------------------------------------------------------------------------------
# operators


def dot_test(op, rng):
    x = rng.normal(size=op.domain_shape)
    y = rng.normal(size=op.range_shape)
    lhs = np.vdot(op.apply(x), y)
    rhs = np.vdot(x, op.adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)
    # the scipy face: flattened vectors
    np.testing.assert_allclose(op.matvec(x.ravel()), op.apply(x).ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(y.ravel()), op.adjoint(y).ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.H.matvec(y.ravel()), op.adjoint(y).ravel(), rtol=1e-12, atol=1e-12)


def test_operators_adjoint_dot_test_and_references():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(5, 3))
    conv = sparseinv.Conv2d(k, (16, 12), boundary="circular")
    x = rng.normal(size=(16, 12))
    np.testing.assert_allclose(conv.apply(x), circular_conv(x, k)[0], atol=1e-12)
    a = rng.normal(size=(6, 4))
    b = rng.normal(size=(5, 3))
    kr = sparseinv.Kronecker(a, b)
    v = rng.normal(size=12)
    np.testing.assert_allclose(kr.matvec(v), np.kron(a, b) @ v, atol=1e-12)
    mat = sparseinv.Matrix(a)
    np.testing.assert_allclose(mat @ v[:4], a @ v[:4], atol=1e-12)
    mask = rng.random((16, 12)) > 0.3
    msk = sparseinv.Mask(mask)
    np.testing.assert_array_equal(msk.apply(x), np.where(mask, x, 0.0))
    st = sparseinv.Starlet((16, 12), 3)
    assert st.range_shape == (4, 16, 12)
    np.testing.assert_allclose(st.apply(x).sum(axis=0), x, atol=1e-12)  # planes sum to the image
    comp = msk @ conv
    np.testing.assert_allclose(comp.apply(x), np.where(mask, circular_conv(x, k)[0], 0.0), atol=1e-12)
    for op in (conv, sparseinv.Conv2d(k, (16, 12), "same"), sparseinv.Conv2d(k, (16, 12), "reflect"),
               kr, mat, msk, st, comp, conv + conv, 2.5 * conv):
        dot_test(op, rng)
    with pytest.raises(ValueError, match="shape"):
        conv.apply(np.ones((3, 3)))
    assert abs(sparseinv.Matrix(np.diag([1.0, -4.0, 2.0])).norm() - 4.0) < 1e-5


def test_scipy_lsqr_solves_through_the_operator():
    from scipy.sparse.linalg import lsqr

    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 5))
    b = rng.normal(size=(7, 4))
    x = rng.normal(size=20)
    kr = sparseinv.Kronecker(a, b)
    y = np.kron(a, b) @ x
    sol = lsqr(kr, y, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(sol, x, atol=1e-8)


# ------------------------------------------------------------------------------------------
# solvers


def test_fista_l1_equals_soft_threshold_for_an_orthogonal_operator():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    y = rng.normal(size=30)
    lam = 0.3
    x, rep = sparseinv.fista(q, y, penalty="l1", lam=lam, max_iters=2000, rel_tol=1e-12)
    z = q.T @ y
    want = np.sign(z) * np.maximum(np.abs(z) - lam, 0)
    np.testing.assert_allclose(x, want, atol=1e-8)
    assert rep["stop_reason"] in ("relative_change", "max_iters")
    xn, _ = sparseinv.fista(sparseinv.Matrix(q), y, penalty="nonneg", max_iters=2000, rel_tol=1e-12)
    np.testing.assert_allclose(xn, np.maximum(z, 0), atol=1e-8)
    with pytest.raises(ValueError, match="unknown penalty"):
        sparseinv.fista(q, y, penalty="l7")


def test_sbl_omp_ksbl_recover_a_sparse_vector():
    rng = np.random.default_rng(4)
    phi = rng.normal(size=(40, 100)) / np.sqrt(40)
    x = np.zeros(100)
    x[[5, 37, 80]] = [1.5, -2.0, 1.0]
    y = phi @ x
    m, rep = sparseinv.sbl(phi, y, noise_var=1e-8)
    np.testing.assert_allclose(m, x, atol=1e-3)
    assert sorted(rep["support"]) == [5, 37, 80]
    xo, ro = sparseinv.omp(phi, y, max_atoms=3)
    np.testing.assert_allclose(xo, x, atol=1e-9)
    assert sorted(ro["support"]) == [5, 37, 80]
    f1 = rng.normal(size=(12, 16)) / np.sqrt(12)
    f2 = rng.normal(size=(10, 14)) / np.sqrt(10)
    xk = np.zeros(16 * 14)
    xk[3 * 14 + 7] = 1.5
    yk = np.kron(f1, f2) @ xk
    mk, rk = sparseinv.ksbl([f1, f2], yk, noise_var=1e-8)
    assert abs(mk[3 * 14 + 7] - 1.5) < 1e-3
    assert np.max(np.abs(np.delete(mk, 3 * 14 + 7))) < 1e-3


def test_sbl_kronecker_equals_sbl_on_numpy_kron():
    # the dictionary formed by numpy.kron is the independent reference for the factor order
    rng = np.random.default_rng(6)
    f1 = rng.normal(size=(4, 6))
    f2 = rng.normal(size=(5, 7))
    phi = np.kron(f1, f2)
    x = np.zeros(42)
    x[[2, 12, 21, 34]] = [1.5, -0.8, 0.6, -1.2]
    y = phi @ x + 0.02 * rng.normal(size=20)
    want, rw = sparseinv.sbl(phi, y, prune=1e-3, max_iters=80)
    got, rg = sparseinv.sbl_kronecker([f1, f2], y, prune=1e-3, max_iters=80)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    assert rg["support"] == rw["support"] and len(rg["support"]) < 20
    np.testing.assert_allclose(rg["noise_var"], rw["noise_var"], rtol=1e-8)
    assert rg["iterations"] == rw["iterations"]
    # several snapshots sharing the support, and bad input
    y2 = np.stack([y, 0.5 * y], axis=1)
    m2, _ = sparseinv.sbl_kronecker([f1, f2], y2, noise_var=4e-4)
    assert m2.shape == (42, 2)
    with pytest.raises(ValueError, match="product of the factors' rows"):
        sparseinv.sbl_kronecker([f1, f1], y)


def test_selfcal_repeated_recovers_gains_up_to_scale():
    rng = np.random.default_rng(5)
    p, m, n = 4, 24, 5
    a = rng.normal(size=(p, m, n))
    d = 1.0 + 0.3 * rng.random(m)
    x = rng.normal(size=n)
    y = np.stack([d * (a[l] @ x) for l in range(p)])
    dh, xh, rep = sparseinv.selfcal("repeated", y, a, method="lsq")
    # the model is invariant to d -> c d, x -> x / c
    c = np.vdot(dh, d) / np.vdot(dh, dh)
    np.testing.assert_allclose(c * dh, d, rtol=1e-8)
    np.testing.assert_allclose(np.ravel(xh) / c, x, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------------------------------
# dask


def test_deconvolve_array_equals_single_process_tiled_result():
    """map_overlap over dask chunks equals the single-process tiled run (and the untiled one)
    to 1e-5 of the peak: Wiener and unaccelerated Richardson–Lucy with the default halo,
    Tikhonov (whose low default weight reaches further) with a halo of 4 PSF sizes on both
    sides (with the default 2 PSF sizes both runs differ from the untiled one by ~1e-4). The
    Fourier filters run with the reflect boundary, their default when tiled or chunked (the
    untiled default, smooth, depends on the whole window at the image's edges)."""
    da = pytest.importorskip("dask.array")
    import sparseinv.dask as sdask

    x, psf, sky = star_field(n=300, seed=7)
    y = circular_conv(x, psf)[0] + sky + np.random.default_rng(8).normal(0, 0.5, x.shape)
    for method, halo, kw in (("wiener", None, {"boundary": "reflect"}), ("rl", None, {"accelerate": False}),
                             ("tikhonov", 4 * psf.shape[0], {"boundary": "reflect"})):
        g = sparseinv._sparseinv.deconvolve_globals(y, psf, method=method)
        tiled, rep = sparseinv.deconvolve(y, psf, method=method, tile=96, halo=halo, sky=g["sky"], **kw)
        whole, _ = sparseinv.deconvolve(y, psf, method=method, sky=g["sky"], **kw)
        assert rep["tiling"]["tiles"] == 16
        lazy = sdask.deconvolve_array(da.from_array(y, chunks=(96, 96)), psf, method=method, depth=halo, **kw)
        got = lazy.compute(scheduler="synchronous")
        peak = np.max(np.abs(whole))
        assert got.shape == y.shape
        assert np.max(np.abs(got - tiled)) <= 1e-5 * peak, method
        assert np.max(np.abs(got - whole)) <= 1e-5 * peak, method


def _write_fits_set(dir_, n):
    fits = pytest.importorskip("astropy.io.fits")
    x, psf, sky = star_field(n=128, seed=11)
    rng = np.random.default_rng(12)
    paths = []
    base = fits.getheader(M13)
    for i in range(n):
        y = circular_conv(np.roll(x, 7 * i, axis=1), psf)[0] + sky + rng.normal(0, 0.3, x.shape)
        p = dir_ / f"frame{i:02d}.fits"
        h = fits.Header()
        for k in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2"):
            if k in base:
                h[k] = base[k]
        fits.writeto(p, y.astype(np.float32), h)
        paths.append(p)
    return paths, psf


def test_deconvolve_files_survives_a_killed_worker(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster
    import sparseinv.dask as sdask
    from astropy.io import fits

    paths, psf = _write_fits_set(tmp_path, 12)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        killed = {}

        def killer():
            # kill one worker process once the first file is written
            while not any(out.glob("*_deconv.fits")):
                if killed.get("stop"):
                    return
                threading.Event().wait(0.02)
            pids = list(client.run(os.getpid).values())
            os.kill(pids[0], 9)
            killed["pid"] = pids[0]

        t = threading.Thread(target=killer)
        t.start()
        try:
            reps = sdask.deconvolve_files(paths, psf, out, client=client, method="rl", iters=60,
                                          accelerate=False)
        finally:
            killed["stop"] = True
            t.join()
    assert "pid" in killed, "no worker was killed"
    assert [r["input"] for r in reps] == [str(p) for p in paths]  # every file exactly once
    written = sorted(out.iterdir())
    assert [w.name for w in written] == sorted(f"frame{i:02d}_deconv.fits" for i in range(12))  # no temp files
    # the file route's default precision on these single-precision files is f32
    want, _ = sparseinv.deconvolve(fits.getdata(paths[3]), psf, method="rl", iters=60, accelerate=False,
                                   precision="f32")
    np.testing.assert_array_equal(fits.getdata(out / "frame03_deconv.fits"), want.astype(np.float32))
    # a second run refuses to overwrite, and resumes with skip_existing
    with pytest.raises(FileExistsError):
        sdask.deconvolve_files(paths, psf, out, client=None, method="rl")


# ------------------------------------------------------------------------------------------
# multiband and the learned galaxy method

MB = TESTDATA / "multiband"


def _mb_paths(level="snr100"):
    bands = [MB / "scene_000" / level / f"{b}.fits" for b in "riz"]
    psfs = [MB / f"psf_{b}.fits" for b in "riz"]
    return bands, psfs, MB / "scene_000" / level / "vis.fits", MB / "psf_vis.fits"


def test_multiband_arrays_equal_files_and_cli(tmp_path):
    """multiband on arrays (ratio/offsets given) equals multiband_files (ratio/offsets from
    the WCS) and the command-line tool on the same files; the restored bands are much closer
    to the simulated truths than the observations."""
    fits = pytest.importorskip("astropy.io.fits")
    bands, psfs, wide, wpsf = _mb_paths()
    rep_f = sparseinv.multiband_files(bands, psfs, wide, wpsf, tmp_path / "py", iterations=60)
    assert rep_f["ratio"] == 2 and [b["name"] for b in rep_f["bands"]] == ["r", "i", "z"]
    offsets = [tuple(-s for s in b["shift"]) for b in rep_f["bands"]]
    cube, rep = sparseinv.multiband(
        [fits.getdata(b) for b in bands], [fits.getdata(p) for p in psfs],
        fits.getdata(wide), fits.getdata(wpsf), names=list("riz"), ratio=2, offsets=offsets,
        iterations=60)
    assert cube.shape == (3,) + fits.getdata(wide).shape
    for k, b in enumerate("riz"):
        f = fits.getdata(tmp_path / "py" / f"{b}.fits").astype(np.float64)
        assert np.max(np.abs(cube[k] - f)) <= 1e-6 * np.max(np.abs(f)) + np.spacing(np.float32(f.max()))
        truth = fits.getdata(MB / "scene_000" / f"truth_{b}.fits").astype(np.float64)
        nm = np.sum((cube[k] - truth) ** 2) / np.sum(truth ** 2)
        assert nm < 0.2, (b, nm)
    assert [b["alpha"] for b in rep["bands"]] == pytest.approx([b["alpha"] for b in rep_f["bands"]], rel=1e-9)
    exe = cli_binary()
    if exe is None:
        pytest.skip("the sparseinv binary is not built (run `cargo build` first)")
    args = [str(exe), "multiband"]
    for b, p in zip(bands, psfs):
        args += ["--band", str(b), "--psf", str(p)]
    args += ["--wide", str(wide), "--wide-psf", str(wpsf), "--iters", "60", "-o", str(tmp_path / "cli")]
    subprocess.run(args, check=True, capture_output=True)
    for b in "riz":
        np.testing.assert_array_equal(fits.getdata(tmp_path / "cli" / f"{b}.fits"),
                                      fits.getdata(tmp_path / "py" / f"{b}.fits"))


def test_multiband_bad_input_raises_value_error(tmp_path):
    bands, psfs, wide, wpsf = _mb_paths()
    img = np.zeros((16, 16))
    with pytest.raises(ValueError, match="ratio is required"):
        sparseinv.multiband([img], [np.ones((3, 3))], np.zeros((32, 32)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="one PSF and one name per band"):
        sparseinv._sparseinv.multiband([img, img], [np.ones((3, 3))], np.zeros((32, 32)),
                                       np.ones((3, 3)), ["a", "b"], ratio=2)
    with pytest.raises(ValueError, match="unknown multiband option"):
        sparseinv.multiband([img], [np.ones((3, 3))], np.zeros((32, 32)), np.ones((3, 3)),
                            ratio=2, iters=3)
    sparseinv.multiband_files(bands, psfs, wide, wpsf, tmp_path, iterations=2)
    with pytest.raises(FileExistsError):
        sparseinv.multiband_files(bands, psfs, wide, wpsf, tmp_path, iterations=2)


def test_learned_and_refit_through_python():
    """method="learned" and refit_active run from Python, report the model and the re-fit,
    keep NaN pixels, and the re-fit brings a blob's aperture flux to the truth within 1 %."""
    n = 64
    yy, xx = np.mgrid[:n, :n]
    x = 150.0 * np.exp(-((yy - 31.5) ** 2 + (xx - 30.2) ** 2) / (2 * 2.5 ** 2))
    k = np.exp(-((yy[:25, :25] - 12) ** 2 + (xx[:25, :25] - 12) ** 2) / (2 * 1.7 ** 2))
    k /= k.sum()
    y = circular_conv(x, k)[0] + np.random.default_rng(3).normal(0, 1.0, (n, n))
    y[3, 4] = np.nan
    out, rep = sparseinv.deconvolve(y, k, method="learned", sky=0.0, refit_active=True)
    assert rep["method"] == "learned" and rep["model"] == "builtin" and rep["refit_kappa"] == 3.0
    assert np.isnan(out[3, 4]) and np.isfinite(out[10, 10])
    ap = (yy - 31.5) ** 2 + (xx - 30.2) ** 2 <= 8.0 ** 2
    assert abs(np.nansum(out[ap]) / x[ap].sum() - 1) < 0.01
    with pytest.raises(ValueError, match="balance"):
        sparseinv.deconvolve(y, k, method="learned", balance=0.1)


def test_deconvolve_rl_default_stops_at_least_estimated_risk():
    """The default Richardson–Lucy stop is the minimum-risk one; its image equals a fixed run
    of the reported count, and ``max_iters`` caps it."""
    rng = np.random.default_rng(4)
    n = 48
    yy, xx = np.mgrid[:n, :n]
    x = sum(a * np.exp(-((yy - i) ** 2 + (xx - j) ** 2) / 12.5)
            for a, i, j in ((120, 10, 12), (180, 30, 35), (150, 38, 14)))
    g = np.exp(-((np.arange(9) - 4.0) ** 2) / (2 * 1.5**2))
    psf = np.outer(g, g) / np.outer(g, g).sum()
    from scipy.signal import fftconvolve
    y = rng.poisson(fftconvolve(x, psf, "same") + 100.0).astype(float)
    out, rep = sparseinv.deconvolve(y, psf)
    assert rep["stop"] == "minimum_risk", rep
    assert "tau" not in rep["noise_model"]
    fixed, _ = sparseinv.deconvolve(y, psf, iters=rep["iterations"])
    np.testing.assert_allclose(out, fixed, rtol=0, atol=1e-9 * y.max())
    capped, rc = sparseinv.deconvolve(y, psf, max_iters=2)
    assert rc["stop"] == "max_iters" and rc["iterations"] == 2
    with pytest.raises(ValueError):
        sparseinv.deconvolve(y, psf, max_iters=0)
