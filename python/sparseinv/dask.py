"""Survey-scale runs of sparseinv on Dask.

Two shapes of work:

* many files — :func:`deconvolve_files` maps the FITS-to-FITS deconvolution over a list of
  files with ``dask.distributed`` (worker *processes*; a task whose worker dies is
  rescheduled by the scheduler, a task that raises is retried ``retries`` times; every output
  is written atomically, so a file is either complete or absent);
* one mosaic larger than memory — :func:`deconvolve_array` runs the deconvolution on a
  ``dask.array`` chunk by chunk through ``map_overlap``, with a halo from the PSF and the
  global quantities (sky, Wiener balance, Richardson–Lucy start, starlet noise level) computed
  once for the whole mosaic.

The same code runs on a laptop (``LocalCluster``) and on a batch cluster: create the client
from ``dask_jobqueue.SLURMCluster`` / ``HTCondorCluster`` instead and pass it as ``client``
(see the README).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _real, _sparseinv, set_threads
from . import deconvolve_file as _deconvolve_file

__all__ = ["deconvolve_files", "deconvolve_array", "output_path"]


def output_path(input: "str | os.PathLike[str]", out_dir: "str | os.PathLike[str]", suffix: str = "_deconv") -> Path:
    """Where :func:`deconvolve_files` writes the result of ``input``:
    ``out_dir / (stem + suffix + ".fits")`` (an HDU selector ``[N]`` is dropped from the
    name)."""
    name = os.fspath(input)
    if name.endswith("]") and "[" in name:
        name = name[: name.rindex("[")]
    stem = Path(name).name
    for ext in (".fits.fz", ".fits.gz", ".fits", ".fit", ".fts"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return Path(out_dir) / f"{stem}{suffix}.fits"


def _one_file(input: str, output: str, psf: Any, method: str, force: bool, threads: int, options: Dict[str, Any]) -> Dict[str, Any]:
    """One task of :func:`deconvolve_files` (runs on a worker)."""
    if threads > 0:
        set_threads(threads)
    t0 = time.perf_counter()
    if os.path.exists(output) and not force:
        # The driver refused existing outputs before submitting, so this one was completed
        # (renamed into place) by an earlier attempt of this task whose worker then died.
        return {"input": input, "output": output, "status": "done by an earlier attempt",
                "seconds": 0.0, "worker_pid": os.getpid()}
    rep = _deconvolve_file(input, output, psf, method=method, force=force, **options)
    rep.update(input=input, output=output, status="written",
               seconds_total=time.perf_counter() - t0, worker_pid=os.getpid())
    return rep


def deconvolve_files(
    paths: Sequence["str | os.PathLike[str]"],
    psf: Any,
    out_dir: "str | os.PathLike[str]",
    client: Any = None,
    method: str = "rl",
    suffix: str = "_deconv",
    force: bool = False,
    skip_existing: bool = False,
    retries: int = 2,
    threads: int = 1,
    progress: bool = False,
    **options: Any,
) -> List[Dict[str, Any]]:
    """Deconvolve many FITS files on a Dask cluster, one task per file.

    Each input is written to :func:`output_path` ``(input, out_dir, suffix)`` by
    :func:`sparseinv.deconvolve_file` (header and WCS kept, HISTORY added, written atomically:
    a temporary file in ``out_dir`` renamed into place).

    Parameters
    ----------
    paths : FITS files (``"file.fits[N]"`` selects an HDU).
    psf : one PSF for all files: a FITS path (read by each task) or a 2-d array (sent once to
        every worker).
    out_dir : output directory (created if missing).
    client : a ``dask.distributed.Client``; ``None`` uses the current client if there is one,
        else starts a ``LocalCluster`` of worker processes (one per core, one thread each)
        for this call.
    method, **options : as :func:`sparseinv.deconvolve`.
    force : overwrite existing outputs. Without it an existing output is an error raised
        before anything runs (``FileExistsError`` listing them), unless ``skip_existing``.
    skip_existing : leave files whose output exists alone (resume an interrupted run).
    retries : extra attempts of a task that raised (a worker that dies is handled by the
        scheduler, which reruns its tasks elsewhere).
    threads : library threads per task (default 1: the parallelism is across files; 0 = one
        per core).
    progress : print ``done/total`` as files complete.

    Returns
    -------
    One report dict per input, in input order: the deconvolution report plus ``input``,
    ``output``, ``status`` (``"written"``, ``"skipped (exists)"``, ``"done by an earlier
    attempt"``) and ``worker_pid``. Raises ``RuntimeError`` naming every file that failed
    after all attempts (the others are complete).
    """
    from distributed import Client, LocalCluster, as_completed, get_client

    inputs = [os.fspath(p) for p in paths]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = [str(output_path(p, out_dir, suffix)) for p in inputs]
    seen: Dict[str, str] = {}
    for i, o in zip(inputs, outputs):
        if o in seen:
            raise ValueError(f"{i} and {seen[o]} would both be written to {o}")
        seen[o] = i
        src = i[: i.rindex("[")] if i.endswith("]") and "[" in i else i
        if os.path.exists(src) and os.path.exists(o) and os.path.samefile(src, o):
            raise ValueError(f"the output {o} would overwrite its input")
    existing = [o for o in outputs if os.path.exists(o)]
    todo = list(range(len(inputs)))
    if existing and not force:
        if not skip_existing:
            raise FileExistsError(
                f"{len(existing)} output(s) exist already (pass force=True to overwrite or "
                f"skip_existing=True to resume): " + ", ".join(existing[:5])
                + (" ..." if len(existing) > 5 else "")
            )
        todo = [k for k in todo if not os.path.exists(outputs[k])]
    if not isinstance(psf, (str, os.PathLike)):
        psf = _real(psf, "psf", 2)
    else:
        psf = os.fspath(psf)

    own = None
    if client is None:
        try:
            client = get_client()
        except ValueError:
            n = os.cpu_count() or 1
            own = LocalCluster(n_workers=n, threads_per_worker=1, processes=True)
            client = Client(own)
    try:
        psf_arg = client.scatter(psf, broadcast=True) if isinstance(psf, np.ndarray) else psf
        futures = {}
        for k in todo:
            f = client.submit(
                _one_file, inputs[k], outputs[k], psf_arg, method, force, threads, options,
                key=f"sparseinv-deconvolve-{k}-{os.path.basename(outputs[k])}",
                retries=retries, pure=False,
            )
            futures[f] = k
        results: List[Optional[Dict[str, Any]]] = [None] * len(inputs)
        for k in range(len(inputs)):
            if k not in todo:
                results[k] = {"input": inputs[k], "output": outputs[k], "status": "skipped (exists)"}
        failed = []
        done = 0
        for fut in as_completed(list(futures)):
            k = futures[fut]
            try:
                results[k] = fut.result()
            except Exception as e:  # noqa: BLE001 - reported per file below
                failed.append(f"{inputs[k]}: {type(e).__name__}: {e}")
                results[k] = {"input": inputs[k], "output": outputs[k], "status": "failed", "error": str(e)}
            done += 1
            if progress:
                print(f"sparseinv.dask: {done}/{len(futures)} files", flush=True)
    finally:
        # temporary files of attempts whose worker was killed mid-write
        for o in outputs:
            for t in Path(o).parent.glob(f".{Path(o).name}.tmp*"):
                try:
                    t.unlink()
                except OSError:
                    pass
        if own is not None:
            client.close()
            own.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} file(s) failed:\n" + "\n".join(failed))
    return results  # type: ignore[return-value]


def _chunk(block: np.ndarray, psf: np.ndarray, globals_: Dict[str, float], options: Dict[str, Any], threads: int) -> np.ndarray:
    if threads > 0:
        set_threads(threads)
    return _sparseinv.deconvolve_window(_real(block, "block", 2), psf, globals_, **options)


def _central_sample(arr: Any, max_side: int) -> np.ndarray:
    ny, nx = arr.shape
    sy, sx = min(ny, max_side), min(nx, max_side)
    y0, x0 = (ny - sy) // 2, (nx - sx) // 2
    return np.asarray(arr[y0 : y0 + sy, x0 : x0 + sx])


def deconvolve_array(
    image: Any,
    psf: Any,
    method: str = "rl",
    depth: Optional[int] = None,
    sky: Optional[float] = None,
    globals: Optional[Dict[str, float]] = None,
    sample: int = 2048,
    threads: int = 1,
    **options: Any,
) -> Any:
    """Deconvolve a 2-d ``dask.array`` (a mosaic larger than memory) chunk by chunk.

    Each chunk is deconvolved with ``depth`` pixels of context from its neighbours
    (``map_overlap`` without padding at the mosaic's own edges, where the method's boundary
    applies as in a single-process run) and trimmed back. The quantities that must agree between chunks are computed once
    (:func:`sparseinv._sparseinv.deconvolve_globals`) on the central ``sample × sample`` block
    of the mosaic — the whole mosaic when it is smaller — unless given as ``globals`` (a dict
    from a previous call, or from ``sparseinv._sparseinv.deconvolve_globals`` on your own
    sample); the Richardson–Lucy offset and start use the exact minimum and mean of the whole
    mosaic, and plain Richardson–Lucy's iteration count (``rl_iters``) is chosen once, by the
    minimum-risk stop on the central 512² window of that sample, so every chunk runs the same
    count.

    ``depth`` defaults to the halo of :func:`sparseinv.deconvolve` (twice the PSF size). With
    the same globals the result equals the single-process tiled result to the boundary effect
    at the chunk edges (≤ 1e-5 of the peak for the Fourier filters with the default depth;
    accelerated Richardson–Lucy and ``starlet`` adapt their steps to each chunk and differ
    more near the seams, as tiles of the single-process run do). Returns a lazy dask array
    (float64, NaN at masked pixels); ``.compute()`` or ``.to_zarr()`` it.
    """
    import dask.array as da

    arr = image if isinstance(image, da.Array) else da.from_array(np.asarray(image))
    if arr.ndim != 2:
        raise ValueError(f"the mosaic must be 2-d, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    k = _real(psf, "psf", 2)
    if depth is None:
        depth = 2 * max(k.shape)
    opts = dict(options, method=method)
    if sky is not None:
        opts["sky"] = float(sky)
    if globals is None:
        s = _central_sample(arr, sample)
        g = dict(_sparseinv.deconvolve_globals(s, k, **opts))
        if method == "rl":
            lo, total, n = da.compute(da.nanmin(arr), da.nansum(arr), da.isfinite(arr).sum())
            g = dict(_sparseinv.globals_with_rl(g, float(lo), float(total), int(n)))
    else:
        g = dict(globals)
    opts.pop("sky", None)
    for c in arr.chunks:
        if min(c) < max(k.shape):
            raise ValueError(f"chunks {arr.chunksize} are smaller than the PSF {k.shape}: rechunk")
    return arr.map_overlap(
        _chunk, depth=depth, boundary="none", trim=True, dtype=np.float64,
        psf=k, globals_=g, options=opts, threads=threads,
    )
