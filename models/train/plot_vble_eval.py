"""Figures of the VBLE evaluation (`models/examples/vble_eval.rs`):

    python models/train/plot_vble_eval.py out/vble/vble_eval.json [--panel out/vble/panel] \
        [--out docs/figures]

- `vble_calibration.png`: empirical coverage of the central Gaussian intervals mean +- q std
  against their nominal level erf(q / sqrt 2), one panel per task, one colour per method
  (exact Gaussian posterior, VBLE z-only, VBLE-xz), solid sigma_n = first noise level, dashed
  the second; pooled over all pixels of all tiles.
- `vble_panel.png` (with `--panel`, the arrays `vble_eval --panel DIR` wrote): truth,
  observation, Gaussian-posterior mean, VBLE-xz mean, VBLE-xz std and |error|.
"""

import argparse
import json
import math
import os

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = [("gauss", "Gaussian posterior (Wiener)", "tab:gray"),
           ("z", "VBLE z-only", "tab:orange"),
           ("xz", "VBLE-xz", "tab:blue")]
TITLES = {"blur": "deblurring (Gaussian PSF 1.5 px)", "down2": "2x super-resolution",
          "mask": "inpainting (50 % kept)"}


def calibration(data, out):
    tasks = data["tasks"]
    nominal = np.array([math.erf(q / math.sqrt(2)) for q in data["q_grid"]])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 5.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for si, sn in enumerate(data["noise"]):
            rows = [r for r in data["rows"] if r["task"] == task and r["sigma_n"] == sn]
            if not rows:
                continue
            for key, label, colour in METHODS:
                cov = np.mean([r[key]["coverage_q"] for r in rows], axis=0)
                ax.plot(nominal, cov, color=colour, ls="-" if si == 0 else "--", lw=1.6,
                        label=f"{label}, σ_n={sn:g}")
        ax.plot([0, 1], [0, 1], "k:", lw=1, label="ideal")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_title(TITLES.get(task, task), fontsize=10)
        ax.set_xlabel("nominal coverage")
    axes[0][0].set_ylabel("empirical coverage (all pixels)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"Calibration of mean ± q·std on {len(data['tiles'])} held-out 128×128 tiles",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    p = os.path.join(out, "vble_calibration.png")
    fig.savefig(p, dpi=80)
    print("wrote", p, os.path.getsize(p), "bytes")


def panel(data, d, out):
    ld = lambda n: np.load(os.path.join(d, n + ".npy"))  # noqa: E731
    x, y = ld("truth"), ld("observed")
    gm, xm, xs = ld("gauss_mean"), ld("xz_mean"), ld("xz_std")
    task = data["tasks"][0]
    sn = data["noise"][-1]
    err = np.abs(xm - x)
    p = lambda a: 10 * math.log10(1 / np.mean((a - x) ** 2))  # noqa: E731
    items = [(x, "truth", "gray"), (y, f"observed (σ_n={sn:g})", "gray"),
             (gm, f"Gaussian posterior mean {p(gm):.2f} dB", "gray"),
             (xm, f"VBLE-xz mean {p(xm):.2f} dB", "gray"),
             (xs, "VBLE-xz std", "magma"), (err, "|VBLE-xz mean − truth|", "magma")]
    fig, axes = plt.subplots(1, 6, figsize=(19, 3.7))
    vmax = float(max(np.percentile(xs, 99.5), np.percentile(err, 99.5)))
    for ax, (im, t, cmap) in zip(axes, items):
        kw = dict(vmin=0, vmax=1) if cmap == "gray" else dict(vmin=0, vmax=vmax)
        h = ax.imshow(im, cmap=cmap, **kw)
        ax.set_title(t, fontsize=9)
        ax.axis("off")
        if cmap != "gray":
            fig.colorbar(h, ax=ax, fraction=0.046)
    fig.suptitle(f"{data['tiles'][0]}: {TITLES.get(task, task)}", fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, "vble_panel.png")
    fig.savefig(path, dpi=60)
    print("wrote", path, os.path.getsize(path), "bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json")
    ap.add_argument("--panel", default=None, help="directory of vble_eval --panel arrays")
    ap.add_argument("--out", default=os.path.join("docs", "figures"))
    a = ap.parse_args()
    with open(a.json) as f:
        data = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    calibration(data, a.out)
    if a.panel:
        panel(data, a.panel, a.out)


if __name__ == "__main__":
    main()
