"""Type stubs of the compiled core ``sparseinv._sparseinv`` (use the wrappers in
``sparseinv`` instead: they convert dtypes and turn reports into dicts)."""

from os import PathLike
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

def set_threads(n: int) -> None:
    """Threads of every following computation (0: one per core)."""

def get_threads() -> int:
    """Threads computations run on."""

def deconvolve(image: F64, psf: F64, **options: Any) -> Tuple[F64, str]:
    """Library ``pipeline::deconvolve``; returns (image, report JSON)."""

def deconvolve_file(
    input: "str | PathLike[str]",
    output: "str | PathLike[str]",
    psf_path: "Optional[str | PathLike[str]]" = None,
    psf: Optional[F64] = None,
    **options: Any,
) -> str:
    """FITS file in, FITS file out (atomic, header kept); returns the report JSON."""

def deconvolve_globals(image: F64, psf: F64, **options: Any) -> dict[str, float]:
    """The quantities computed once per image (sky, balance, rl_offset, rl_init,
    rl_background, noise_sigma)."""

def globals_with_rl(globals: dict[str, float], min: float, sum: float, n: int) -> dict[str, float]:
    """``globals`` with the Richardson–Lucy offset, start and background set from whole-image
    statistics of the valid pixels."""

def deconvolve_window(window: F64, psf: F64, globals: dict[str, float], **options: Any) -> F64:
    """One window deconvolved with given global quantities."""

def multiband(
    bands: list[F64],
    psfs: list[F64],
    wide: F64,
    wide_psf: F64,
    names: list[str],
    **options: Any,
) -> Tuple[Any, str]:
    """Library ``pipeline::multiband::multiband``; returns (bands [K, H, W], report JSON)."""

def multiband_files(
    bands: list["str | PathLike[str]"],
    psfs: list["str | PathLike[str]"],
    wide: "str | PathLike[str]",
    wide_psf: "str | PathLike[str]",
    out_dir: "str | PathLike[str]",
    force: bool = False,
    **options: Any,
) -> str:
    """Library ``pipeline::multiband::multiband_fits``; returns the report JSON."""

def estimate_psf(
    image: F64,
    size: int = 25,
    k_sigma: float = 5.0,
    saturation: Optional[float] = None,
    isolation: Optional[float] = None,
    neighbour_ratio: float = 0.05,
    max_stars: int = 100,
    max_sharpness: float = 0.9,
    max_ellipticity: float = 0.5,
) -> Tuple[F64, str]: ...

def denoise(
    image: F32,
    sigma: float,
    model: str = "starlet",
    scales: int = 4,
    tile: int = 256,
    overlap: int = 32,
    normalization: Optional[Tuple[float, float]] = None,
    percentiles: Tuple[float, float] = (0.1, 99.9),
    threads: int = 0,
) -> Tuple[F32, str]: ...

def deblur(
    image: F64,
    psf: F64,
    method: str = "learned",
    model: "Optional[str | PathLike[str]]" = None,
    denoiser: str = "builtin",
    sigma: Optional[float] = None,
    strength: float = 2.0,
    iters: int = 50,
    normalization: Optional[Tuple[float, float]] = None,
    percentiles: Tuple[float, float] = (0.1, 99.9),
    tile: int = 1024,
    overlap: int = 48,
    threads: int = 0,
) -> Tuple[F64, str]: ...

class _Operator:
    """A library ``LinearOperator<f64>``."""
    @staticmethod
    def conv2d(kernel: F64, shape: Tuple[int, int], boundary: str = "circular") -> "_Operator": ...
    @staticmethod
    def mask(mask: npt.NDArray[np.bool_]) -> "_Operator": ...
    @staticmethod
    def starlet(shape: Tuple[int, int], scales: int) -> "_Operator": ...
    @staticmethod
    def matrix(a: F64) -> "_Operator": ...
    @staticmethod
    def kronecker(factors: Sequence[F64]) -> "_Operator": ...
    def compose(self, other: "_Operator") -> "_Operator": ...
    def add(self, other: "_Operator") -> "_Operator": ...
    def scale(self, alpha: float) -> "_Operator": ...
    def adjoint_op(self) -> "_Operator": ...
    def apply(self, x: F64) -> F64: ...
    def adjoint(self, y: F64) -> F64: ...
    def norm(self, iters: int = 100, seed: int = 0) -> float: ...
    @property
    def domain_shape(self) -> list[int]: ...
    @property
    def range_shape(self) -> list[int]: ...
    @property
    def name(self) -> str: ...

def fista(
    op: _Operator,
    y: F64,
    penalty: str = "l1",
    lam: float = 1.0,
    q: float = 0.5,
    lower: float = 0.0,
    upper: float = 1.0,
    max_iters: int = 500,
    rel_tol: float = 1e-6,
    backtracking: bool = False,
    restart: bool = True,
) -> Tuple[F64, str]: ...

def sbl(
    phi: F64, y: F64, noise_var: Optional[float] = None, max_iters: int = 1000,
    rel_tol: float = 1e-6, prune: float = 1e-4,
) -> Tuple[F64, str]: ...

def sbl_kronecker(
    factors: Sequence[F64], y: F64, noise_var: Optional[float] = None, max_iters: int = 1000,
    rel_tol: float = 1e-6, prune: float = 1e-4,
) -> Tuple[F64, str]: ...

def ksbl(
    factors: Sequence[F64], y: F64, noise_var: Optional[float] = None, method: str = "svd",
    max_iters: int = 1000, rel_tol: float = 1e-6, prune: float = 3e-3,
) -> Tuple[F64, str]: ...

def omp(phi: F64, y: F64, max_atoms: Optional[int] = None, residual_tol: Optional[float] = None) -> Tuple[F64, str]: ...

def selfcal(model: str, y: F64, a: F64, b: Optional[F64] = None, method: str = "lsq") -> Tuple[F64, F64, str]: ...

def runtime_info() -> Tuple[str, str]: ...
