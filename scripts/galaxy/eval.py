#!/usr/bin/env python3
"""Held-out evaluation of the galaxy deconvolution methods of sparseinv.

    PYTHONPATH=python .venv/bin/python scripts/galaxy/eval.py
    PYTHONPATH=python .venv/bin/python scripts/galaxy/eval.py --methods learned,learned+refit
    PYTHONPATH=python .venv/bin/python scripts/galaxy/eval.py --n-per-bin 10 --no-figures

Held-out set: models/train/galaxy_sim.py with seed 3 (seeds 1 and 2 are the U-Net's training
and validation sets), default simulator settings (SNR log-uniform in [5, 400]). Stamps
0, 1, 2, ... of the seed-3 stream are simulated and the first --n-per-bin (80) stamps falling
in each SNR bin [5, 30), [30, 100), [100, 400] are kept ("simulate more and pick": each bin
holds the simulator's own population conditioned on the bin). The set is cached in
out/galaxy_eval/heldout_seed3.npz (rebuilt when galaxy_sim.py changes or more stamps are
needed).

Methods: library defaults, sky=0.0, nothing tuned; "+refit" = refit_active=True. "learned"
uses the network embedded in the compiled binding (model="builtin"), or --model PATH (an
ONNX file with its .json sidecar next to it) to evaluate a model file without rebuilding.

Metrics per stamp (truth x, estimate x^):
  NMSE = sum((x^ - x)^2) / sum(x^2) over the whole 64x64 stamp;
  aperture bias = (F(x^) - F(x)) / F(x), F = flux in a circle of diameter 2 * fwhm_px
  (radius = the stamp's PSF FWHM) centred on the main galaxy's centre (centre.npy), pixel
  weights = the fraction of each pixel inside the circle by 10 x 10 sub-sampling.
Per method and SNR bin (and overall): mean and median NMSE, median bias, robust scatter
1.4826 * MAD of the bias, n, failures; per method the wall time.

Outputs: out/galaxy_eval/results.json, a Markdown table on stdout,
docs/figures/galaxy_bias_vs_snr.png and docs/figures/galaxy_examples.png.

Results of methods not rerun (--methods subset) are kept from the previous results.json
when it was computed on the same held-out set (flagged "reused"); --fresh drops them.
Runs single-threaded (sparseinv.set_threads(1), OMP/BLAS threads 1); the ONNX Runtime
session of "learned" uses the library's default intra-op threads (min(cores, 4)). The binding
is imported from a private copy of the python/sparseinv package taken at start, so a rebuild
during the run cannot crash it (--no-snapshot: import in place).
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.join(ROOT, "python"))  # PYTHONPATH=python takes precedence
sys.path.insert(0, os.path.join(ROOT, "models", "train"))


def _snapshot_binding():
    """Import sparseinv from a private copy of the package (its compiled extension
    included) so that a rebuild of python/sparseinv/_sparseinv*.so during the run (an
    in-place overwrite of a loaded library can crash the process) cannot affect it, and
    every method of one run uses the same binary. --no-snapshot imports it in place."""
    import atexit
    import importlib.util
    import shutil
    import tempfile

    spec = importlib.util.find_spec("sparseinv")
    if spec is None or not spec.submodule_search_locations:
        return None
    src = list(spec.submodule_search_locations)[0]
    tmp = tempfile.mkdtemp(prefix="sparseinv_eval_")
    atexit.register(shutil.rmtree, tmp, True)
    shutil.copytree(src, os.path.join(tmp, "sparseinv"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.tmp*"))
    sys.path.insert(0, tmp)
    return src


BINDING_SOURCE = None
if "--no-snapshot" not in sys.argv[1:]:
    BINDING_SOURCE = _snapshot_binding()

import galaxy_sim  # noqa: E402
import sparseinv  # noqa: E402

SEED = 3  # held out: seed 1 = training, seed 2 = validation of train_galaxy.py
SNR_BINS = [(5.0, 30.0), (30.0, 100.0), (100.0, 400.0)]  # last bin closed: [100, 400]
BIN_KEYS = ["snr_5_30", "snr_30_100", "snr_100_400"]
SUB = 10  # aperture sub-sampling per pixel axis
SET_VERSION = 1

# name -> (library method, refit_active)
METHODS = {
    "tikhonov": ("tikhonov", False),
    "rl": ("rl", False),
    "rl+refit": ("rl", True),
    "starlet": ("starlet", False),
    "starlet+refit": ("starlet", True),
    "learned": ("learned", False),
    "learned+refit": ("learned", True),
}
EXAMPLE_COLUMNS = ["rl", "starlet", "learned", "learned+refit"]

OUT_DIR = os.path.join(ROOT, "out", "galaxy_eval")
FIG_DIR = os.path.join(ROOT, "docs", "figures")


# ----------------------------------------------------------------------------- helpers
def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=True)
    os.replace(tmp, path)


def snr_bin(snr):
    for k, (lo, hi) in enumerate(SNR_BINS):
        if lo <= snr < hi or (k == len(SNR_BINS) - 1 and snr == hi):
            return k
    return -1


def bin_centre(k):
    lo, hi = SNR_BINS[k]
    return math.sqrt(lo * hi)


# ----------------------------------------------------------------------------- held-out set
SET_KEYS = ("y", "x", "psf", "sigma", "snr", "fwhm_px", "centre", "flux", "psf_kind",
            "has_neighbour", "has_star")


def build_set(n_per_bin, rebuild=False):
    """The first n_per_bin stamps of the seed-3 stream in each SNR bin (dict of arrays plus
    'index' (stamp index in the stream) and 'bin'), cached in OUT_DIR."""
    os.makedirs(OUT_DIR, exist_ok=True)
    npz = os.path.join(OUT_DIR, "heldout_seed3.npz")
    meta_path = os.path.join(OUT_DIR, "heldout_seed3.json")
    sim_path = os.path.abspath(galaxy_sim.__file__)
    sim_sha = sha256_file(sim_path)
    meta = None
    if not rebuild and os.path.exists(npz) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        ok = (meta.get("set_version") == SET_VERSION and meta.get("seed") == SEED
              and meta.get("simulator_sha256") == sim_sha and meta.get("n_per_bin", 0) >= n_per_bin
              and meta.get("snr_bins") == [list(b) for b in SNR_BINS])
        if not ok:
            why = ("the simulator changed" if meta.get("simulator_sha256") != sim_sha
                   else "the cache is smaller or of another version")
            print("held-out cache not usable (%s): rebuilding" % why, flush=True)
            meta = None
    if meta is None:
        # P(bin) under log-uniform [5, 400]: 0.41, 0.27, 0.32 -> ~3.6 n per bin on average
        n_total = int(math.ceil(n_per_bin * 4.2)) + 20
        t0 = time.time()
        while True:
            print("simulating %d stamps (seed %d) for the held-out set ..." % (n_total, SEED),
                  flush=True)
            d = galaxy_sim.simulate(n_total, SEED)
            bins = np.array([snr_bin(s) for s in d["snr"]])
            counts = [int((bins == k).sum()) for k in range(len(SNR_BINS))]
            if min(counts) >= n_per_bin:
                break
            n_total *= 2
        sel = np.concatenate([np.flatnonzero(bins == k)[:n_per_bin] for k in range(len(SNR_BINS))])
        data = {k: d[k][sel] for k in SET_KEYS}
        data["index"] = sel.astype(np.int64)
        data["bin"] = bins[sel].astype(np.int8)
        np.savez(npz + ".tmp.npz", **data)
        os.replace(npz + ".tmp.npz", npz)
        meta = {
            "set_version": SET_VERSION,
            "seed": SEED,
            "n_per_bin": n_per_bin,
            "snr_bins": [list(b) for b in SNR_BINS],
            "selection": "first n_per_bin stamps of the seed-%d stream (default simulator "
                         "settings, snr log-uniform [5, 400]) in each bin; 'index' = stamp "
                         "index in the stream" % SEED,
            "stamps_simulated": int(n_total),
            "counts_in_simulated_stream": counts,
            "simulator": os.path.relpath(sim_path, ROOT),
            "simulator_sha256": sim_sha,
            "simulator_meta": galaxy_sim.meta(n_total, SEED, 64, 25, (5.0, 400.0),
                                              time.time() - t0),
            "created_utc": utc_now(),
        }
        write_json_atomic(meta_path, meta)
        print("held-out set: %d stamps simulated in %.1f s, cached in %s"
              % (n_total, time.time() - t0, os.path.relpath(npz, ROOT)), flush=True)
    with np.load(npz) as z:
        full = {k: z[k] for k in z.files}
    keep = np.concatenate([np.flatnonzero(full["bin"] == k)[:n_per_bin]
                           for k in range(len(SNR_BINS))])
    data = {k: np.ascontiguousarray(v[keep]) for k, v in full.items()}
    if not np.all(data["bin"] == np.array([snr_bin(s) for s in data["snr"]])):
        raise SystemExit("held-out cache is inconsistent (bins); rerun with --rebuild-set")
    h = hashlib.sha256()
    for k in ("index", "y", "x", "psf"):
        h.update(np.ascontiguousarray(data[k]).tobytes())
    info = {k: meta[k] for k in ("seed", "n_per_bin", "selection", "stamps_simulated",
                                 "counts_in_simulated_stream", "simulator", "simulator_sha256",
                                 "created_utc")}
    info["n_per_bin_used"] = n_per_bin
    info["n"] = int(len(data["y"]))
    info["data_sha256"] = h.hexdigest()
    info["cache"] = os.path.relpath(npz, ROOT)
    return data, info


# ----------------------------------------------------------------------------- metrics
def aperture_weights(n, r0, c0, radius, sub=SUB):
    """Fraction of each pixel of an n x n image inside the circle (centre (r0, c0), 0-based,
    pixel centres at integers) by sub x sub sampling (same as train_galaxy.py)."""
    s = (np.arange(sub) + 0.5) / sub - 0.5
    rr = (np.arange(n)[:, None] + s[None, :]).ravel()
    ins = ((rr[:, None] - r0) ** 2 + (rr[None, :] - c0) ** 2) <= radius ** 2
    return ins.reshape(n, sub, n, sub).mean(axis=(1, 3))


def robust_scatter(v):
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def fnan(v):
    v = float(v)
    return v if math.isfinite(v) else None


def summarise(nmse, bias, mask):
    ok = mask & np.isfinite(nmse) & np.isfinite(bias)
    n_ok = int(ok.sum())
    nm, bi = nmse[ok], bias[ok]
    sc = robust_scatter(bi)
    return {
        "n": int(mask.sum()),
        "n_failed": int(mask.sum()) - n_ok,
        "nmse_mean": fnan(nm.mean()) if n_ok else None,
        "nmse_median": fnan(np.median(nm)) if n_ok else None,
        "bias_median": fnan(np.median(bi)) if n_ok else None,
        "bias_mean": fnan(bi.mean()) if n_ok else None,
        "bias_robust_scatter": fnan(sc) if n_ok else None,
        # standard error of the median for a Gaussian core: sqrt(pi/2) * scatter / sqrt(n)
        "bias_median_se": fnan(1.2533 * sc / math.sqrt(n_ok)) if n_ok else None,
        "frac_abs_bias_gt_10pct": fnan(np.mean(np.abs(bi) > 0.10)) if n_ok else None,
    }


# ----------------------------------------------------------------------------- provenance
def binding_info(model):
    """Library version, ONNX Runtime, the compiled binding and the galaxy model it embeds."""
    info = {"sparseinv_version": sparseinv.__version__}
    try:
        info["runtime_info"] = sparseinv.runtime_info()
    except Exception as e:  # pragma: no cover
        info["runtime_info"] = "error: %r" % (e,)
    so = getattr(sparseinv._sparseinv, "__file__", None)
    info["package_imported_from"] = (
        os.path.relpath(BINDING_SOURCE, ROOT) + " (snapshot copy taken at start)"
        if BINDING_SOURCE else os.path.dirname(os.path.abspath(sparseinv.__file__)))
    disk_onnx = os.path.join(ROOT, "models", "onnx", "galaxy_unet.onnx")
    disk_json = os.path.join(ROOT, "models", "onnx", "galaxy_unet.json")
    if so and os.path.exists(so):
        so_src = os.path.join(BINDING_SOURCE, os.path.basename(so)) if BINDING_SOURCE else so
        info["binding"] = os.path.relpath(so_src, ROOT)
        if os.path.exists(so_src):
            info["binding_mtime_utc"] = datetime.datetime.fromtimestamp(
                os.path.getmtime(so_src), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(so, "rb") as f:
            blob = f.read()
        info["binding_sha256"] = hashlib.sha256(blob).hexdigest()
        emb = {}
        if os.path.exists(disk_onnx):
            with open(disk_onnx, "rb") as f:
                emb["matches_models_onnx_galaxy_unet_onnx"] = f.read() in blob
        # the embedded sidecar JSON (include_str!): decode it from the binary
        k = blob.find(b'"onnx_input"')
        side = None
        while k >= 0 and side is None:
            s = blob.rfind(b"{", 0, k)
            try:
                side, _ = json.JSONDecoder().raw_decode(blob[s:s + 200000].decode("utf-8", "replace"))
                if "val_nmse" not in side and "architecture" not in side:
                    side = None
            except Exception:
                side = None
            if side is None:
                k = blob.find(b'"onnx_input"', k + 1)
        if side is not None:
            emb["sidecar"] = side
            if os.path.exists(disk_json):
                with open(disk_json) as f:
                    try:
                        emb["sidecar_matches_models_onnx_galaxy_unet_json"] = json.load(f) == side
                    except Exception:
                        emb["sidecar_matches_models_onnx_galaxy_unet_json"] = False
        info["embedded_galaxy_model"] = emb
        del blob
    if os.path.exists(disk_onnx):
        info["models_onnx_galaxy_unet_onnx_sha256"] = sha256_file(disk_onnx)
    if model != "builtin":
        side_path = os.path.splitext(model)[0] + ".json"
        m = {"path": model, "sha256": sha256_file(model)}
        if os.path.exists(side_path):
            with open(side_path) as f:
                m["sidecar"] = json.load(f)
        info["model_file"] = m
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
        info["git_head"] = head or None
    except Exception:
        info["git_head"] = None
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__
    info["threads"] = sparseinv.get_threads()
    return info


def model_label(info):
    """Short description of the learned model for the table/figure."""
    m = info.get("model_file")
    side = m.get("sidecar") if m else info.get("embedded_galaxy_model", {}).get("sidecar")
    if not side:
        return "model: ?"
    ts = side.get("train_seconds")
    it = side.get("iterations")
    vn = (side.get("val_nmse") or {}).get("network")
    parts = []
    if it is not None:
        parts.append("%s iters" % it)
    if ts is not None:
        parts.append("%.0f s training" % ts)
    if vn is not None:
        parts.append("val NMSE %.3g" % vn)
    return ("model %s: " % (os.path.basename(m["path"]) if m else "builtin")) + ", ".join(parts)


# ----------------------------------------------------------------------------- running
def run_one(y, psf, name, model):
    meth, refit = METHODS[name]
    opts = {}
    if refit:
        opts["refit_active"] = True
    if meth == "learned" and model != "builtin":
        opts["model"] = model
    return sparseinv.deconvolve(y, psf, method=meth, sky=0.0, **opts)


def evaluate_method(name, D, wts, f_true, model):
    n = len(D["y"])
    x = D["x"]
    den = (x ** 2).sum((1, 2))
    nmse = np.full(n, np.nan)
    bias = np.full(n, np.nan)
    rep_seconds = np.full(n, np.nan)
    errors, warn_counts, py_warnings = [], {}, {}
    reports_summary = {}
    t0 = time.perf_counter()
    for i in range(n):
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            try:
                out, rep = run_one(D["y"][i], D["psf"][i], name, model)
            except Exception as e:
                errors.append({"stamp": i, "index": int(D["index"][i]), "error": repr(e)})
                out, rep = None, None
        for w in wl:
            msg = "%s: %s" % (w.category.__name__, w.message)
            py_warnings[msg] = py_warnings.get(msg, 0) + 1
        if out is None:
            continue
        if not np.all(np.isfinite(out)):
            errors.append({"stamp": i, "index": int(D["index"][i]),
                           "error": "non-finite output (%d pixels)" % int((~np.isfinite(out)).sum())})
            continue
        nmse[i] = ((out - x[i]) ** 2).sum() / den[i]
        bias[i] = (wts[i] * out).sum() / f_true[i] - 1.0
        rep_seconds[i] = rep.get("seconds", np.nan)
        for w in rep.get("warnings") or []:
            w = str(w)
            warn_counts[w] = warn_counts.get(w, 0) + 1
        for key in ("method", "boundary", "iterations", "model", "precision", "balance",
                    "refit_kappa", "accelerated"):
            if key in rep:
                v = rep[key]
                v = round(v, 12) if isinstance(v, float) else v
                d = reports_summary.setdefault(key, {})
                d[json.dumps(v)] = d.get(json.dumps(v), 0) + 1
        if i == 0:
            reports_summary["first_report"] = rep
    wall = time.perf_counter() - t0
    bins = D["bin"]
    summ = {"all": summarise(nmse, bias, np.ones(n, bool))}
    for k, key in enumerate(BIN_KEYS):
        summ[key] = summarise(nmse, bias, bins == k)
    meth, refit = METHODS[name]
    return {
        "library_method": meth,
        "refit_active": refit,
        "options": {"sky": 0.0, **({"refit_active": True} if refit else {}),
                    **({"model": model} if meth == "learned" else {})},
        "summary": summ,
        "wall_seconds": wall,
        "wall_ms_per_stamp": 1e3 * wall / n,
        "report_seconds_sum": float(np.nansum(rep_seconds)),
        "failures": errors,
        "report_warnings": warn_counts,
        "python_warnings": py_warnings,
        "reports": reports_summary,
        "per_stamp": {"nmse": [fnan(v) for v in nmse], "bias": [fnan(v) for v in bias]},
    }


# ----------------------------------------------------------------------------- output
def ordered(names):
    return [m for m in METHODS if m in names]


def markdown_table(res):
    mres = res["methods"]
    names = ordered(mres)
    cols = BIN_KEYS + ["all"]
    labels = {"snr_5_30": "SNR 5–30", "snr_30_100": "SNR 30–100", "snr_100_400": "SNR 100–400",
              "all": "all"}
    n = {c: mres[names[0]]["summary"][c]["n"] for c in cols} if names else {}
    lines = []
    hdr = "| method |" + "|".join(" %s (n=%d): NMSE med · bias med · scatter " % (labels[c], n[c])
                                  for c in cols) + "|"
    lines.append(hdr)
    lines.append("|---|" + "---|" * len(cols))

    def pct(v):
        return "n/a" if v is None else "%+.2f%%" % (100 * v)

    for m in names:
        r = mres[m]
        cells = []
        for c in cols:
            s = r["summary"][c]
            nm = "n/a" if s["nmse_median"] is None else "%.3f" % s["nmse_median"]
            sc = "n/a" if s["bias_robust_scatter"] is None else "%.2f%%" % (100 * s["bias_robust_scatter"])
            fail = " (%d failed)" % s["n_failed"] if s["n_failed"] else ""
            cells.append(" %s · %s · %s%s " % (nm, pct(s["bias_median"]), sc, fail))
        mark = " *" if r.get("reused") else ""
        lines.append("| %s%s |" % (m, mark) + "|".join(cells) + "|")
    lines.append("")
    lines.append("| method | mean NMSE (5–30 / 30–100 / 100–400 / all) | wall s | ms/stamp | "
                 "failures | report warnings |")
    lines.append("|---|---|---|---|---|---|")
    for m in names:
        r = mres[m]
        means = " / ".join("n/a" if r["summary"][c]["nmse_mean"] is None
                           else "%.3g" % r["summary"][c]["nmse_mean"] for c in cols)
        nw = sum(r["report_warnings"].values())
        lines.append("| %s%s | %s | %.1f | %.1f | %d | %d |" % (
            m, " *" if r.get("reused") else "", means, r["wall_seconds"],
            r["wall_ms_per_stamp"], len(r["failures"]), nw))
    if any(mres[m].get("reused") for m in names):
        lines.append("")
        lines.append("\\* kept from a previous run on the same held-out set (see results.json).")
    return "\n".join(lines)


def plot_summary(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mres = res["methods"]
    names = ordered(mres)
    xs = np.array([bin_centre(k) for k in range(len(SNR_BINS))])
    styles = {"tikhonov": ("0.5", "x", ":"), "rl": ("C0", "o", "-"), "rl+refit": ("C0", "s", "--"),
              "starlet": ("C2", "o", "-"), "starlet+refit": ("C2", "s", "--"),
              "learned": ("C3", "o", "-"), "learned+refit": ("C3", "s", "--")}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    a1.axhspan(-1, 1, color="0.85", zorder=0, label="±1 %")
    a1.axhline(0, color="0.5", lw=0.6, zorder=0)
    nm = len(names)
    for j, m in enumerate(names):
        col, mk, ls = styles.get(m, ("k", "o", "-"))
        f = 1.0 + 0.045 * (j - (nm - 1) / 2)  # multiplicative offset on the log axis
        s = [mres[m]["summary"][k] for k in BIN_KEYS]
        med = np.array([np.nan if v["bias_median"] is None else 100 * v["bias_median"] for v in s])
        sc = np.array([np.nan if v["bias_robust_scatter"] is None else 100 * v["bias_robust_scatter"]
                       for v in s])
        nmed = np.array([np.nan if v["nmse_median"] is None else v["nmse_median"] for v in s])
        a1.errorbar(xs * f, med, yerr=sc, color=col, marker=mk, ls=ls, ms=4, lw=1.2,
                    capsize=2, label=m)
        a2.plot(xs * f, nmed, color=col, marker=mk, ls=ls, ms=4, lw=1.2, label=m)
    for a in (a1, a2):
        a.set_xscale("log")
        a.set_xlim(8, 300)
        a.set_xticks(xs)
        a.set_xticklabels(["%g–%g" % b for b in SNR_BINS])
        a.minorticks_off()
        a.set_xlabel("SNR bin (plotted at the geometric centre)")
        a.grid(alpha=0.3, lw=0.5)
    a1.set_ylabel("median aperture flux bias [%]\n(error bar: 1.4826·MAD)")
    a1.set_title("Aperture photometry (⌀ = 2 FWHM)", fontsize=10)
    a2.set_yscale("log")
    a2.set_ylabel("median NMSE")
    a2.set_title("Reconstruction error", fontsize=10)
    a2.legend(fontsize=7, ncol=2, loc="best")
    info = res["set"]
    fig.suptitle("sparseinv %s, held-out galaxy stamps (seed %d, %d per bin); %s"
                 % (res["provenance"]["sparseinv_version"], info["seed"], info["n_per_bin_used"],
                    model_label(res["provenance"])), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def pick_examples(D):
    """One low-, two mid-, one high-SNR stamp: closest in log SNR to 12, 40, 75, 200 among
    stamps without a bright star (so the display range is set by the galaxy)."""
    snr = D["snr"]
    chosen = []
    for k, target in ((0, 12.0), (1, 40.0), (1, 75.0), (2, 200.0)):
        cand = np.flatnonzero((D["bin"] == k) & ~D["has_star"].astype(bool))
        if len(cand) == 0:
            cand = np.flatnonzero(D["bin"] == k)
        cand = [c for c in cand if c not in chosen]
        if not cand:
            continue
        chosen.append(int(cand[np.argmin(np.abs(np.log(snr[cand] / target)))]))
    return chosen


def plot_examples(D, wts, f_true, model, path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = pick_examples(D)
    cols = ["observation", "truth"] + EXAMPLE_COLUMNS
    fig, axes = plt.subplots(len(idx), len(cols), figsize=(9, 1.55 * len(idx) + 0.4), dpi=100,
                             squeeze=False)
    examples = []
    for r, i in enumerate(idx):
        x = D["x"][i]
        imgs = {"observation": D["y"][i], "truth": x}
        for m in EXAMPLE_COLUMNS:
            try:
                imgs[m] = run_one(D["y"][i], D["psf"][i], m, model)[0]
            except Exception as e:
                imgs[m] = None
                print("example %d %s failed: %r" % (i, m, e), flush=True)
        # shared asinh stretch per row: softening = twice the noise sigma (at least 1e-3 of
        # the truth peak); limits -2 softenings .. 1.05 x the truth peak
        peak = float(x.max())
        soft = max(2.0 * float(D["sigma"][i]), 1e-3 * peak)
        vmin = np.arcsinh(-2.0)
        vmax = np.arcsinh(1.05 * peak / soft)
        ex = {"stamp": int(i), "index": int(D["index"][i]), "snr": float(D["snr"][i]),
              "fwhm_px": float(D["fwhm_px"][i])}
        for c, name in enumerate(cols):
            a = axes[r, c]
            a.set_xticks([])
            a.set_yticks([])
            im = imgs[name]
            if im is None:
                a.text(0.5, 0.5, "failed", ha="center", va="center", transform=a.transAxes)
                continue
            a.imshow(np.arcsinh(im / soft), cmap="gray", vmin=vmin, vmax=vmax,
                     interpolation="nearest", origin="lower")
            if name not in ("observation", "truth"):
                nm = ((im - x) ** 2).sum() / (x ** 2).sum()
                b = (wts[i] * im).sum() / f_true[i] - 1
                a.text(0.03, 0.03, "NMSE %.3f\nbias %+.1f%%" % (nm, 100 * b), color="yellow",
                       fontsize=6.5, transform=a.transAxes, va="bottom")
                ex[name] = {"nmse": float(nm), "bias": float(b)}
            if name == "truth":
                circ = plt.Circle((D["centre"][i, 1], D["centre"][i, 0]), D["fwhm_px"][i],
                                  fill=False, color="cyan", lw=0.6)
                a.add_patch(circ)
            if r == 0:
                a.set_title(name, fontsize=8)
        axes[r, 0].set_ylabel("SNR %.0f\nFWHM %.1f px" % (D["snr"][i], D["fwhm_px"][i]),
                              fontsize=7)
        examples.append(ex)
    fig.suptitle("asinh stretch, limits shared per row; cyan: the photometry aperture; %s"
                 % model_label(res["provenance"]), fontsize=7.5)
    fig.tight_layout(rect=(0, 0, 1, 0.96), pad=0.3, w_pad=0.2, h_pad=0.3)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return examples


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma list of %s (default: all); spaces and 'learned + refit' "
                         "spellings are accepted" % ", ".join(METHODS))
    ap.add_argument("--n-per-bin", type=int, default=80)
    ap.add_argument("--model", default="builtin",
                    help="galaxy network for 'learned': 'builtin' (embedded in the binding, "
                         "default) or the path of an ONNX file with its .json sidecar")
    ap.add_argument("--out", default=OUT_DIR, help="results folder (default out/galaxy_eval)")
    ap.add_argument("--fresh", action="store_true",
                    help="do not keep previous results of methods not rerun")
    ap.add_argument("--rebuild-set", action="store_true", help="re-simulate the held-out set")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="import the binding in place instead of from a private copy")
    a = ap.parse_args(argv)

    names = []
    for m in a.methods.split(","):
        m = m.replace(" ", "").lower()
        if not m:
            continue
        if m not in METHODS:
            ap.error("unknown method %r (expected %s)" % (m, ", ".join(METHODS)))
        if m not in names:
            names.append(m)
    if a.n_per_bin < 1:
        ap.error("--n-per-bin must be >= 1")
    model = a.model
    if model != "builtin":
        model = os.path.abspath(model)
        if not os.path.exists(model):
            ap.error("no model file %s" % model)

    sparseinv.set_threads(1)
    D, set_info = build_set(a.n_per_bin, a.rebuild_set)
    os.makedirs(a.out, exist_ok=True)
    prov = binding_info(model)
    print("sparseinv %s, %d threads; held-out set %d stamps (%s); %s"
          % (prov["sparseinv_version"], prov["threads"], set_info["n"],
             ", ".join("%s: %d" % (k, int((D["bin"] == j).sum())) for j, k in enumerate(BIN_KEYS)),
             model_label(prov)), flush=True)
    emb = prov.get("embedded_galaxy_model", {})
    if model == "builtin" and emb.get("matches_models_onnx_galaxy_unet_onnx") is False:
        print("NOTE: the binding's embedded galaxy model differs from models/onnx/galaxy_unet.onnx "
              "(rebuild the binding, or pass --model models/onnx/galaxy_unet.onnx)", flush=True)

    n = len(D["y"])
    wts = np.stack([aperture_weights(D["x"].shape[1], D["centre"][i, 0], D["centre"][i, 1],
                                     D["fwhm_px"][i]) for i in range(n)])
    f_true = (wts * D["x"]).sum((1, 2))
    if np.any(f_true <= 0):
        raise SystemExit("non-positive truth aperture flux in the held-out set")

    res_path = os.path.join(a.out, "results.json")
    previous = {}
    if not a.fresh and os.path.exists(res_path):
        try:
            with open(res_path) as f:
                old = json.load(f)
            if old.get("set", {}).get("data_sha256") == set_info["data_sha256"]:
                previous = old.get("methods", {})
        except Exception as e:
            print("could not read the previous %s: %r" % (res_path, e), flush=True)

    results = {}
    t_all = time.time()
    for m in names:
        print("running %-14s ..." % m, end=" ", flush=True)
        r = evaluate_method(m, D, wts, f_true, model)
        r["run_utc"] = utc_now()
        r["sparseinv_version"] = prov["sparseinv_version"]
        r["binding_sha256"] = prov.get("binding_sha256")
        results[m] = r
        s = r["summary"]["all"]
        print("%.1f s (%.1f ms/stamp), median NMSE %s, median bias %s, %d failures, %d report "
              "warnings" % (r["wall_seconds"], r["wall_ms_per_stamp"],
                            "n/a" if s["nmse_median"] is None else "%.4f" % s["nmse_median"],
                            "n/a" if s["bias_median"] is None else "%+.2f%%" % (100 * s["bias_median"]),
                            len(r["failures"]), sum(r["report_warnings"].values())), flush=True)
    for m, r in previous.items():
        if m in METHODS and m not in results:
            r = dict(r)
            r["reused"] = True
            results[m] = r
    res = {
        "description": "held-out galaxy deconvolution evaluation, scripts/galaxy/eval.py",
        "created_utc": utc_now(),
        "command": " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None
                                                                  else sys.argv[1:])),
        "metrics": {
            "nmse": "sum((xhat - x)^2) / sum(x^2) over the whole stamp",
            "bias": "(F(xhat) - F(x)) / F(x); F: circular aperture of diameter 2 * fwhm_px "
                    "centred on centre (row, col), pixel weights by %dx%d sub-sampling" % (SUB, SUB),
            "bias_robust_scatter": "1.4826 * median(|bias - median(bias)|)",
            "bias_median_se": "1.2533 * scatter / sqrt(n)",
            "snr_bins": [list(b) for b in SNR_BINS],
            "bin_keys": BIN_KEYS,
        },
        "set": set_info,
        "stamps": {"index": D["index"].tolist(), "snr": D["snr"].tolist(),
                   "fwhm_px": D["fwhm_px"].tolist(), "bin": D["bin"].tolist(),
                   "has_neighbour": D["has_neighbour"].astype(bool).tolist(),
                   "has_star": D["has_star"].astype(bool).tolist(),
                   "aperture_flux_true": f_true.tolist()},
        "provenance": prov,
        "methods": {m: results[m] for m in ordered(results)},
        "eval_seconds": time.time() - t_all,
    }
    if not a.no_figures:
        f1 = os.path.join(FIG_DIR, "galaxy_bias_vs_snr.png")
        f2 = os.path.join(FIG_DIR, "galaxy_examples.png")
        plot_summary(res, f1)
        res["examples"] = plot_examples(D, wts, f_true, model, f2, res)
        res["figures"] = {os.path.relpath(p, ROOT): os.path.getsize(p) for p in (f1, f2)}
    write_json_atomic(res_path, res)
    print()
    print(markdown_table(res))
    print()
    print("learned model: %s" % model_label(prov))
    for m in ordered(results):
        r = results[m]
        if r["report_warnings"] or r["python_warnings"] or r["failures"]:
            print("%s: report warnings %s; python warnings %s; failures %d%s"
                  % (m, r["report_warnings"], r["python_warnings"], len(r["failures"]),
                     (" (first: %s)" % r["failures"][0]["error"]) if r["failures"] else ""))
    print("wrote %s%s" % (os.path.relpath(res_path, ROOT),
                          "" if a.no_figures else " and " + ", ".join(res["figures"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
