"""sparseinv: sparse inverse problems and image restoration, from Python.

The computation is the Rust library ``sparseinv`` (the same code as the ``sparseinv`` command
line tool); this package passes numpy arrays to it and returns numpy arrays and report dicts.

* Pipelines on images: :func:`deconvolve` (Richardson–Lucy, Wiener, Tikhonov, starlet-sparse,
  learned galaxy network; optional photometric re-fit),
  :func:`deconvolve_hdu` (astropy HDU in, HDU out with the header/WCS kept),
  :func:`deconvolve_file` (FITS file in, FITS file out, written atomically),
  :func:`multiband` / :func:`multiband_files` (joint deconvolution of bands with a wide band),
  :func:`estimate_psf`, :func:`denoise`, :func:`deblur`.
* Linear operators (:class:`Operator`, a ``scipy.sparse.linalg.LinearOperator``):
  :func:`Conv2d`, :func:`Mask`, :func:`Starlet`, :func:`Kronecker`, :func:`Matrix`, and
  composition with ``@``.
* Solvers: :func:`fista` (penalties by name), :func:`sbl`, :func:`sbl_kronecker`, :func:`ksbl`, :func:`omp`,
  :func:`selfcal`.
* Scale-out: :mod:`sparseinv.dask`.

Conventions: images are 2-d arrays indexed ``[row, column]`` (FITS NAXIS2, NAXIS1); PSFs have
their centre at ``(h // 2, w // 2)``; masked pixels are NaN (or ``True`` in ``mask``, the
``numpy.ma`` convention) and come back NaN. Any real dtype, byte order, memory order and
strides are accepted; a C-contiguous native-endian ``float64`` array is read in place, anything
else is converted once. The GIL is
released while the library computes; :func:`set_threads` sets how many threads it uses.

Errors are Python exceptions carrying the library's message: ``ValueError`` for bad input,
``FileExistsError``/``OSError`` for files, ``RuntimeError`` for numerical or ONNX Runtime
failures.

>>> import numpy as np, sparseinv
>>> psf = np.full((5, 5), 1 / 25)
>>> img = np.full((48, 48), 10.0); img[22:27, 22:27] += 4.0
>>> out, report = sparseinv.deconvolve(img, psf, method="rl", iters=200)
>>> report["sky"], bool(out[24, 24] > 40)
(10.0, True)
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np


def _use_python_onnxruntime() -> None:
    """Point the library at the ONNX Runtime of the installed ``onnxruntime`` package (a
    dependency of this package) unless ``ORT_DYLIB_PATH`` is set already. The package is
    located without importing it."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    capi = Path(list(spec.submodule_search_locations)[0]) / "capi"
    libs = sorted(
        p
        for p in capi.glob("*onnxruntime*")
        if p.is_file()
        and "providers" not in p.name
        and (p.name.startswith("libonnxruntime.so") or p.suffix in (".dylib", ".dll"))
    )
    if libs:
        os.environ["ORT_DYLIB_PATH"] = str(libs[-1])


_use_python_onnxruntime()

from . import _sparseinv  # noqa: E402
from ._sparseinv import get_threads, set_threads  # noqa: E402,F401

__version__ = _sparseinv.__version__

__all__ = [
    "deconvolve",
    "deconvolve_hdu",
    "multiband",
    "multiband_files",
    "deconvolve_file",
    "estimate_psf",
    "denoise",
    "deblur",
    "Operator",
    "Conv2d",
    "Mask",
    "Starlet",
    "Kronecker",
    "Matrix",
    "fista",
    "sbl",
    "sbl_kronecker",
    "ksbl",
    "omp",
    "selfcal",
    "set_threads",
    "get_threads",
    "runtime_info",
]


# --------------------------------------------------------------------------------------------
# array conversion


def _real(a: Any, name: str, ndim: Optional[int] = None) -> np.ndarray:
    """``a`` as an aligned C-contiguous native-endian float64 array: no copy when it is one
    already, one conversion otherwise (other dtypes, byte orders, Fortran order, strides)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {arr.shape}")
    if (arr.dtype != np.float64 or not arr.dtype.isnative or not arr.flags.c_contiguous
            or not arr.flags.aligned):
        # (unaligned buffers come e.g. from pickle protocol 5 in Dask workers)
        arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    return arr


def _image_and_mask(image: Any, mask: Any) -> Tuple[np.ndarray, np.dtype]:
    """The image as float64 with masked pixels (``mask`` true, or a ``numpy.ma`` mask) set to
    NaN, and the dtype to return (float32 stays float32, everything else is float64)."""
    dt = np.asarray(image).dtype  # (big-endian FITS data too: compare kind and size, not dtype)
    out_dtype = np.dtype(np.float32) if (dt.kind == "f" and dt.itemsize == 4) else np.dtype(np.float64)
    if np.ma.isMaskedArray(image):
        m = np.ma.getmaskarray(image)
        mask = m if mask is None else (np.asarray(mask, dtype=bool) | m)
        image = np.ma.getdata(image)
    img = _real(image, "image", 2)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != img.shape:
            raise ValueError(f"mask has shape {m.shape}, the image {img.shape}")
        if m.any():
            img = np.array(img, dtype=np.float64, copy=True)
            img[m] = np.nan
    return img, out_dtype


# --------------------------------------------------------------------------------------------
# pipelines


def deconvolve(
    image: Any,
    psf: Any,
    method: str = "rl",
    mask: Any = None,
    sky: Optional[float] = None,
    **options: Any,
) -> Tuple[np.ndarray, dict]:
    """Deconvolve ``image`` by ``psf``: the library's deconvolution pipeline (the same as
    ``sparseinv deconvolve``).

    The model is ``image = sky + psf ⊛ x + noise``; ``x + sky`` is returned.

    Parameters
    ----------
    image : 2-d array (any real dtype, strides, byte order); NaN pixels are missing data.
    psf : 2-d array, centre at ``(h // 2, w // 2)``; normalised to unit sum unless
        ``normalize_psf=False`` (its original sum is reported as ``psf_sum``).
    method : ``"rl"`` (Richardson–Lucy, default), ``"wiener"``, ``"tikhonov"``,
        ``"starlet"`` (starlet-sparse ℓ1 with positivity) or ``"learned"`` (Tikhonov, then the
        shipped galaxy network, in units of the image's noise level).
    mask : optional boolean array, ``True`` = bad pixel (excluded like NaN). A
        ``numpy.ma.MaskedArray`` image brings its own mask.
    sky : known sky level; ``None`` (default) estimates it: a background map with boxes of
        ``sky_mesh`` pixels (option, default 64; ``sky_mesh=None`` or an image under two boxes
        on a side: one 3σ-clipped median); ``0`` deconvolves the raw values.
    **options : ``iters`` (default: ``rl`` stops at the iterate of least estimated risk —
        Monte-Carlo SURE with a second, perturbed chain, at most ``max_iters`` = 300 — or,
        accelerated, when its residual matches the noise — discrepancy principle, at most
        50 —; ``starlet`` stops at the least estimated risk too, with ``k_sigma`` chosen from
        1 … 5 unless given), ``max_iters`` (the cap of that automatic stop),
        ``accelerate`` (False; ``True`` is faster on star fields, worse on faint galaxies
        and photographs),
        ``precision`` (``"auto"``: ``"f64"`` for arrays; for ``deconvolve_file``,
        ``"f32"`` on single-precision or 8/16-bit integer FITS images; or
        ``"f64"``/``"f32"``), ``balance`` (Wiener balance / Tikhonov weight;
        default chosen by generalised cross-validation, with the signal spectrum for Wiener), ``k_sigma`` (3,
        starlet threshold in noise units), ``refit_active`` (False: re-fit the result of any
        method to the data on the significant starlet coefficients of the image, removing
        photometric bias), ``refit_kappa`` (3), ``model`` (``"builtin"`` or an ONNX path, for
        ``"learned"``), ``boundary``
        (``"zero"``, ``"reflect"``, ``"periodic"``, ``"smooth"`` — Fourier methods only;
        default by method: ``"smooth"`` for wiener/tikhonov), ``tile`` (pixels;
        automatic above 2048 px, 8192 px for wiener/tikhonov; 0 never), ``halo``,
        ``normalize_psf`` (True).

    Returns
    -------
    restored : 2-d array, the input's shape (float32 for float32 input, else float64); NaN
        where the input was masked.
    report : dict — method, boundary, iterations, seconds, flux_before, flux_after,
        masked_pixels, sky, balance, tiling, psf_sum, warnings, ...
    """
    img, out_dtype = _image_and_mask(image, mask)
    k = _real(psf, "psf", 2)
    out, rep = _sparseinv.deconvolve(img, k, method=method, sky=sky, **options)
    return out.astype(out_dtype, copy=False), json.loads(rep)


def deconvolve_file(
    input: "str | os.PathLike[str]",
    output: "str | os.PathLike[str]",
    psf: Any,
    method: str = "rl",
    force: bool = False,
    **options: Any,
) -> dict:
    """Deconvolve a FITS file and write the result as a FITS file.

    ``input`` may select an HDU as ``"file.fits[N]"``; ``psf`` is a FITS file path or a 2-d
    array. The output keeps the input's header (WCS included), gets the ``DECONV``/``DECBOUND``
    cards and HISTORY lines, is 32-bit float with NaN at masked (BLANK/NaN) pixels, and is
    written atomically (a temporary file renamed into place: an interrupted run leaves no
    partial output). An existing ``output`` is never overwritten unless ``force=True``.
    Options as in :func:`deconvolve`. Returns the report dict.
    """
    if isinstance(psf, (str, os.PathLike)):
        rep = _sparseinv.deconvolve_file(
            os.fspath(input), os.fspath(output), psf_path=os.fspath(psf), method=method,
            force=force, **options,
        )
    else:
        rep = _sparseinv.deconvolve_file(
            os.fspath(input), os.fspath(output), psf=_real(psf, "psf", 2), method=method,
            force=force, **options,
        )
    return json.loads(rep)


def multiband(
    bands: Sequence[Any],
    psfs: Sequence[Any],
    wide: Any,
    wide_psf: Any,
    names: Optional[Sequence[str]] = None,
    ratio: Optional[int] = None,
    offsets: Optional[Sequence[Tuple[float, float]]] = None,
    **options: Any,
) -> Tuple[np.ndarray, dict]:
    """Joint multiband deconvolution: low-resolution bands sharpened by a high-resolution wide
    band (the library's ``pipeline::multiband``, the same as ``sparseinv multiband``).

    The model, per band ``b`` on the wide band's (fine) grid: ``band_b = S_b D_r(psf_b ⊛ x_b)
    + n_b`` (``D_r`` sums ``r × r`` blocks, ``S_b`` the band's sub-pixel offset) and
    ``wide = wide_psf ⊛ Σ_b α_b x_b + n_W``; solved with positivity and a starlet prior.

    Parameters
    ----------
    bands : K 2-d arrays on the coarse grid (NaN = missing data).
    psfs : K PSFs sampled on the fine grid (centre at ``(h // 2, w // 2)``).
    wide, wide_psf : the wide-band image (fine grid, ``r`` times the bands' shape) and its PSF.
    names : band names for the report (default ``"band0"``, ...).
    ratio : resolution ratio ``r`` (arrays carry no WCS: required).
    offsets : per band, the offset in coarse pixels ``(rows, cols)`` of its pixel (0, 0) from
        the centre of fine block (0, 0); default ``(0, 0)`` for every band.
    **options : ``weights`` (α_b; fitted by default), ``prior`` (``"starlet"`` or ``"pnp"``),
        ``scales`` (4), ``k_sigma`` (3), ``strength`` (1, PnP), ``iterations`` (200), ``sky``
        (True: subtract each image's sky and add it back), ``tile``.

    Returns
    -------
    restored : array ``[K, H, W]`` on the wide band's grid (flux per fine pixel).
    report : dict — ratio, bands (noise, sky, α and its error, flux in/out), alpha_method,
        iterations, stop_reason, tiles, warnings, seconds.

    For FITS files with WCS (ratio and offsets from the headers) use
    :func:`multiband_files`.
    """
    bands = [_real(b, f"bands[{i}]", 2) for i, b in enumerate(bands)]
    psfs = [_real(p, f"psfs[{i}]", 2) for i, p in enumerate(psfs)]
    if names is None:
        names = [f"band{i}" for i in range(len(bands))]
    if ratio is None:
        raise ValueError("ratio is required for arrays (they carry no WCS); use "
                         "multiband_files for FITS files with WCS")
    if offsets is None:
        offsets = [(0.0, 0.0)] * len(bands)
    cube, rep = _sparseinv.multiband(
        bands, psfs, _real(wide, "wide", 2), _real(wide_psf, "wide_psf", 2), list(names),
        ratio=int(ratio), offsets=[(float(a), float(b)) for a, b in offsets], **options)
    return cube, json.loads(rep)


def multiband_files(
    bands: Sequence["str | os.PathLike[str]"],
    psfs: Sequence["str | os.PathLike[str]"],
    wide: "str | os.PathLike[str]",
    wide_psf: "str | os.PathLike[str]",
    out_dir: "str | os.PathLike[str]",
    force: bool = False,
    **options: Any,
) -> dict:
    """Joint multiband deconvolution of FITS files (the same as ``sparseinv multiband``): the
    ratio and offsets come from the WCS, and ``out_dir/<band>.fits`` (one per band, on the wide
    band's grid with its header and WCS, HISTORY added) and ``out_dir/report.json`` are
    written, atomically and never over existing files unless ``force``. Options as
    :func:`multiband`. Returns the report."""
    rep = _sparseinv.multiband_files(
        [os.fspath(b) for b in bands], [os.fspath(p) for p in psfs], os.fspath(wide),
        os.fspath(wide_psf), os.fspath(out_dir), force=force, **options)
    return json.loads(rep)


def deconvolve_hdu(hdu: Any, psf: Any, method: str = "rl", **options: Any) -> Any:
    """:func:`deconvolve` on an astropy image HDU; returns a new HDU of the same kind.

    The header is copied (WCS and all other cards kept), ``DECONV``/``DECBOUND`` cards and a
    HISTORY line are added; the data are float32 (float64 input stays float64) with NaN at
    masked pixels. ``BLANK`` pixels of integer data are masked. Needs astropy.
    """
    try:
        from astropy.io import fits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("deconvolve_hdu needs astropy: pip install astropy") from e
    data = hdu.data
    if data is None:
        raise ValueError("the HDU has no data")
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"the HDU's data must be 2-d, got shape {data.shape}")
    mask = None
    blank = hdu.header.get("BLANK")
    if data.dtype.kind in "iu" and blank is not None:
        # astropy returns raw integers when no scaling applies: BLANK marks missing pixels
        mask = data == blank
    out, rep = deconvolve(data, psf, method=method, mask=mask, **options)
    dtype = np.float64 if (data.dtype.kind == "f" and data.dtype.itemsize == 8) else np.float32
    header = hdu.header.copy()
    for key in ("BSCALE", "BZERO", "BLANK"):
        header.remove(key, ignore_missing=True, remove_all=True)
    header["DECONV"] = (rep["method"], "deconvolution method")
    header["DECBOUND"] = (rep["boundary"], "boundary model of the deconvolution")
    header.add_history(f"sparseinv {__version__} deconvolve (Python)")
    tiling = rep.get("tiling")
    header.add_history(
        f"method {rep['method']}, boundary {rep['boundary']}, sky {rep['sky']}, "
        f"iterations {rep['iterations']}"
        + (f", tiles {tiling['tile']} px with halo {tiling['halo']}" if tiling else "")
    )
    cls = type(hdu) if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) else fits.ImageHDU
    return cls(data=out.astype(dtype, copy=False), header=header)


def estimate_psf(image: Any, size: int = 25, mask: Any = None, **options: Any) -> Tuple[np.ndarray, dict]:
    """Estimate the PSF of ``image`` from its isolated, unsaturated stars (``sparseinv psf``):
    background and noise by sigma clipping, cosmic rays and hot pixels cleaned, stars detected
    above ``k_sigma`` (5) σ, too sharp / elongated / saturated / crowded / outlying ones
    rejected, SNR-weighted median stack of the centred stamps.

    Options: ``k_sigma``, ``saturation``, ``isolation``, ``neighbour_ratio``, ``max_stars``,
    ``max_sharpness``, ``max_ellipticity``. Returns the ``size × size`` PSF (unit sum, centre
    at ``(size // 2, size // 2)``) and the report dict (stars used and rejected by reason,
    FWHM, per-star measurements).
    """
    img, _ = _image_and_mask(image, mask)
    psf, rep = _sparseinv.estimate_psf(img, size=size, **options)
    return psf, json.loads(rep)


def denoise(image: Any, sigma: float, model: str = "starlet", **options: Any) -> Tuple[np.ndarray, dict]:
    """Denoise ``image`` (2-d ``[H, W]``, or ``[C, H, W]`` / ``[N, C, H, W]`` for the networks)
    at noise level ``sigma`` (in the units of the normalised data, see the library docs).

    ``model``: ``"starlet"`` (hard thresholding, ``scales=4``), ``"builtin"`` (the shipped
    network; needs ONNX Runtime, which the ``onnxruntime`` dependency provides) or the path
    of an ONNX denoiser graph. Options: ``scales``, ``tile``, ``overlap``, ``normalization``
    (``(offset, scale)``), ``percentiles``, ``threads`` (ONNX Runtime intra-op threads).
    Returns the float32 result and the report dict.
    """
    x = np.asarray(image)
    if x.dtype != np.float32 or not x.dtype.isnative or not x.flags.c_contiguous or not x.flags.aligned:
        x = np.array(x, dtype=np.float32, order="C", copy=True)
    out, rep = _sparseinv.denoise(x, float(sigma), model=model, **options)
    return out, json.loads(rep)


def deblur(image: Any, psf: Any, method: str = "learned", **options: Any) -> Tuple[np.ndarray, dict]:
    """Deblur a photograph ``image`` by ``psf`` with a learned prior (``"learned"``, the
    shipped Wiener + network model) or a plug-and-play one (``"pnp-fista"``, ``"pnp-admm"``,
    ``"red"`` with ``denoiser="builtin"`` or ``"starlet"``). Options: ``sigma`` (noise, by
    default estimated), ``strength``, ``iters``, ``model`` (path of a learned model),
    ``normalization``, ``percentiles``, ``tile``, ``overlap``, ``threads``.
    Returns the deblurred image and the report dict."""
    img = _real(image, "image", 2)
    k = _real(psf, "psf", 2)
    out, rep = _sparseinv.deblur(img, k, method=method, **options)
    return out, json.loads(rep)


def runtime_info() -> dict:
    """The library version and the ONNX Runtime the deep priors load (or why none loads)."""
    version, ort = _sparseinv.runtime_info()
    return {"version": version, "onnxruntime": ort}


# --------------------------------------------------------------------------------------------
# operators

from scipy.sparse.linalg import LinearOperator as _ScipyLinearOperator  # noqa: E402


class Operator(_ScipyLinearOperator):
    """A linear operator of the library as a ``scipy.sparse.linalg.LinearOperator``.

    ``A.apply(x)`` / ``A.adjoint(y)`` work on shaped arrays (``domain_shape`` →
    ``range_shape``); ``A @ v``, ``A.matvec(v)``, ``A.rmatvec(u)`` and ``A.H`` on flattened
    vectors (row-major), so scipy's iterative solvers (``lsqr``, ``cg``, ...) take it as is.
    ``A @ B`` with another :class:`Operator` composes in the library (apply ``B``, then
    ``A``); ``A + B`` and ``alpha * A`` likewise. Real, float64.
    """

    def __init__(self, core: Any):
        self._core = core
        self.domain_shape = tuple(core.domain_shape)
        self.range_shape = tuple(core.range_shape)
        n = int(np.prod(self.domain_shape))
        m = int(np.prod(self.range_shape))
        super().__init__(dtype=np.dtype(np.float64), shape=(m, n))

    def __repr__(self) -> str:
        return f"<sparseinv.Operator {self._core.name}: {self.domain_shape} -> {self.range_shape}>"

    def apply(self, x: Any) -> np.ndarray:
        """``A x`` for ``x`` of shape ``domain_shape``."""
        return self._core.apply(_real(x, "x"))

    def adjoint(self, y: Any) -> np.ndarray:
        """``Aᴴ y`` for ``y`` of shape ``range_shape``."""
        return self._core.adjoint(_real(y, "y"))

    def norm(self, iters: int = 100, seed: int = 0) -> float:
        """Spectral norm ‖A‖₂ by power iteration on AᴴA (seeded)."""
        return self._core.norm(iters, seed)

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        x = _real(v, "x").reshape(self.domain_shape)
        return self._core.apply(x).reshape(-1)

    def _rmatvec(self, u: np.ndarray) -> np.ndarray:
        y = _real(u, "y").reshape(self.range_shape)
        return self._core.adjoint(y).reshape(-1)

    def _adjoint(self) -> "Operator":
        return Operator(self._core.adjoint_op())

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, Operator):
            return Operator(self._core.compose(other._core))
        return super().__matmul__(other)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Operator):
            return Operator(self._core.add(other._core))
        return super().__add__(other)

    def __mul__(self, other: Any) -> Any:
        if np.isscalar(other):
            return Operator(self._core.scale(float(other)))
        return super().__mul__(other)

    def __rmul__(self, other: Any) -> Any:
        if np.isscalar(other):
            return Operator(self._core.scale(float(other)))
        return super().__rmul__(other)


def Conv2d(kernel: Any, shape: Sequence[int], boundary: str = "circular") -> Operator:
    """2-d convolution of ``shape`` images by ``kernel`` (centre ``(h // 2, w // 2)``) by FFT.
    ``boundary``: ``"circular"`` (periodic), ``"same"`` (zero outside, output ``shape``),
    ``"full"``, ``"valid"`` or ``"reflect"``."""
    return Operator(_sparseinv._Operator.conv2d(_real(kernel, "kernel", 2), tuple(shape), boundary))


def Mask(mask: Any) -> Operator:
    """Keep the entries where ``mask`` is true and zero the others (a diagonal 0/1 operator)."""
    return Operator(_sparseinv._Operator.mask(np.ascontiguousarray(mask, dtype=bool)))


def Starlet(shape: Sequence[int], scales: int = 4) -> Operator:
    """The isotropic undecimated starlet transform of ``shape`` images: ``scales`` detail planes
    and the coarse plane stacked along axis 0 (range shape ``(scales + 1, *shape)``)."""
    return Operator(_sparseinv._Operator.starlet(tuple(shape), int(scales)))


def Matrix(a: Any) -> Operator:
    """A dense matrix ``a`` (``[m, n]``) as an operator."""
    return Operator(_sparseinv._Operator.matrix(_real(a, "a", 2)))


def Kronecker(*factors: Any) -> Operator:
    """``F₁ ⊗ F₂ ⊗ …`` of dense factors, applied without forming the product (domain and range
    are flattened row-major tensors)."""
    if len(factors) == 1 and isinstance(factors[0], (list, tuple)):
        factors = tuple(factors[0])
    return Operator(_sparseinv._Operator.kronecker([_real(f, "factor", 2) for f in factors]))


def _core_of(op: Any) -> Any:
    if isinstance(op, Operator):
        return op._core
    if isinstance(op, np.ndarray) and op.ndim == 2:
        return _sparseinv._Operator.matrix(_real(op, "A", 2))
    raise TypeError("op must be a sparseinv.Operator or a 2-d numpy array")


# --------------------------------------------------------------------------------------------
# solvers


def fista(
    op: Any,
    y: Any,
    penalty: str = "l1",
    lam: float = 1.0,
    max_iters: int = 500,
    rel_tol: float = 1e-6,
    **options: Any,
) -> Tuple[np.ndarray, dict]:
    """Solve ``min_x ½‖A x − y‖² + R(x)`` by FISTA (gradient restart, step 1/L with L from a
    power iteration).

    ``penalty``: ``"l1"`` (λ‖x‖₁), ``"nonneg_l1"``, ``"l0"`` (λ‖x‖₀, hard threshold), ``"lq"``
    (λ Σ|xᵢ|^q, ``q`` in (0, 1), option ``q=0.5``), ``"l2"`` (λ/2 ‖x‖²), ``"nonneg"``,
    ``"box"`` (options ``lower``, ``upper``) or ``"none"``. ``op``: an :class:`Operator` or
    a 2-d array. Options: ``backtracking`` (False), ``restart`` (True).
    Returns ``x`` (shape ``domain_shape``) and a report dict (iterations, stop_reason,
    objective_history, seconds).
    """
    x, rep = _sparseinv.fista(
        _core_of(op), _real(y, "y"), penalty=penalty, lam=float(lam), max_iters=max_iters,
        rel_tol=rel_tol, **options,
    )
    return x, json.loads(rep)


def sbl(phi: Any, y: Any, noise_var: Optional[float] = None, **options: Any) -> Tuple[np.ndarray, dict]:
    """Sparse Bayesian learning by EM for ``y = Φ x + e``: ``y`` ``[M]`` (one vector) or
    ``[M, L]`` (L vectors sharing a support). ``noise_var`` fixed, or learned when ``None``.
    Options: ``max_iters`` (1000), ``rel_tol`` (1e-6), ``prune`` (1e-4 · max γ).
    Returns the posterior mean and a report dict (gamma, variance, noise_var, support, ...).
    """
    x, rep = _sparseinv.sbl(_real(phi, "phi", 2), _real(y, "y"), noise_var=noise_var, **options)
    return x, json.loads(rep)


def sbl_kronecker(
    factors: Sequence[Any], y: Any, noise_var: Optional[float] = None, **options: Any
) -> Tuple[np.ndarray, dict]:
    """The same classic SBL as :func:`sbl` (one hyperparameter per atom, EM) for a dictionary
    given as its Kronecker factors, ``Φ = F₁ ⊗ … ⊗ F_K`` (``numpy.kron`` order), which is never
    formed: the result equals ``sbl(functools.reduce(numpy.kron, factors), y)`` to rounding,
    at a fraction of the time and memory for large dictionaries (an iteration costs about
    ``M³/3`` while more than about ``1.1 M`` atoms are active, instead of ``M²N``). Unlike
    :func:`ksbl` it puts no Kronecker structure on the hyperparameters. Options as
    :func:`sbl`."""
    x, rep = _sparseinv.sbl_kronecker(
        [_real(f, "factor", 2) for f in factors], _real(y, "y"), noise_var=noise_var, **options
    )
    return x, json.loads(rep)


def ksbl(factors: Sequence[Any], y: Any, noise_var: Optional[float] = None, **options: Any) -> Tuple[np.ndarray, dict]:
    """Kronecker-structured SBL for ``y = (F₁ ⊗ … ⊗ F_K) x + e`` (He & Joseph): ``method``
    ``"svd"`` (default) or ``"am"``. Options: ``max_iters`` (1000), ``rel_tol`` (1e-6),
    ``prune`` (3e-3 · max γ per mode). Returns the mean of ``x`` and a report dict (gammas per
    factor, noise_var, support, mode_support, ...)."""
    x, rep = _sparseinv.ksbl(
        [_real(f, "factor", 2) for f in factors], _real(y, "y", 1), noise_var=noise_var, **options
    )
    return x, json.loads(rep)


def omp(phi: Any, y: Any, max_atoms: Optional[int] = None, residual_tol: Optional[float] = None) -> Tuple[np.ndarray, dict]:
    """Orthogonal matching pursuit for ``y = Φ x``. Stops at ``max_atoms``, at a squared
    residual ``≤ residual_tol``, or — with neither — at the extended-BIC choice along the
    greedy path. Returns ``x`` and a report dict (support, residual2, bic_path)."""
    x, rep = _sparseinv.omp(_real(phi, "phi", 2), _real(y, "y", 1), max_atoms=max_atoms, residual_tol=residual_tol)
    return x, json.loads(rep)


def selfcal(model: str, y: Any, a: Any, b: Any = None, method: str = "lsq") -> Tuple[np.ndarray, np.ndarray, dict]:
    """Self-calibration ``y_l = A_l(d) x_l + e`` by linear least squares (``"lsq"``) or the
    spectral method (``"spectral"``), Ling & Strohmer. ``model``: ``"repeated"``
    (``y_l = diag(d) A_l x``), ``"snapshots"`` (``y_l = diag(d) A x_l``) or ``"diverse"``
    (blind deconvolution). ``y``: ``[p, m]``; ``a``: ``[p, m, n]`` (``[1, m, n]`` for
    snapshots); ``b``: optional subspace ``[m, k]``. Returns ``(d, x, report)`` (up to the
    model's scale ambiguity)."""
    d, x, rep = _sparseinv.selfcal(
        model, _real(y, "y", 2), _real(a, "a", 3), None if b is None else _real(b, "b", 2), method=method
    )
    return d, x, json.loads(rep)
