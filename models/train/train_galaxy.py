#!/usr/bin/env python3
"""Train the galaxy-stamp restoration U-Net shipped as models/onnx/galaxy_unet.onnx.

    python models/train/train_galaxy.py --minutes 25 --threads 2

The network cleans the noise and artefacts of a Tikhonov deconvolution of a galaxy stamp.
Input recipe (reproduced by the Rust side at inference), for an observation y (sky already
subtracted) and its PSF (odd size, centre at (h//2, w//2)):

    t, _ = sparseinv.deconvolve(y, psf, method="tikhonov", sky=0.0)
               # Laplacian Tikhonov, default weight 0.01, reflect boundary
    s    = sparseinv._sparseinv.deconvolve_globals(y, method="starlet", sky=0.0)["noise_sigma"]
               # the library's robust (starlet MAD) noise estimate of y, not the true sigma
    u    = t / s                       float32 [N, 1, H, W], H and W multiples of 8
    v^   = u + f(u)                    the ONNX graph ("image" -> "restored"), residual inside
    x^   = s * v^                      restored stamp, in the units of y (flux is absolute)

Training target v = x / s (x: the pixel-integrated truth without PSF, galaxy_sim.py).

Network f: a plain convolutional U-Net, 3 levels of 24-48-96 channels (two 3x3 conv + ReLU
per level, 2x2 max-pool down, 2x2 stride-2 transposed conv up, skip connections by
concatenation, 1x1 conv out), 262 k parameters, no normalisation layers and no global
pooling: fully convolutional, runs on any N, H, W (the graph itself needs H, W multiples
of 4; the sidecar's contract is 8). Why not a Swin-transformer restorer (SwinIR-style): it
needs ~10x the compute per pixel for the same size, window-size padding and attention, and
the training budget here is 25 minutes on 2 CPU cores; a small U-Net converges usefully in
that budget.

Data: galaxy_sim.simulate, 24000 training stamps (seed 1), 1000 validation stamps (seed 2);
seed 3 is reserved for held-out evaluation and never used here. u, v, s are computed once
and cached next to the simulated stamps (cache_*.npy). Augmentation: the 8 flips/rotations.
Loss: mean over the batch of sum((v^ - v)^2) / sum(v^2) (scale-free). Adam, lr 1e-3 with a
cosine decay over the wall-clock budget (or over --iters), batch 16.

Outputs: models/onnx/galaxy_unet.onnx (opset 17, input "image" [N,1,H,W], output
"restored" [N,1,H,W], dynamic N, H, W) and models/onnx/galaxy_unet.json (the recipe and
the validation numbers).
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import galaxy_sim  # noqa: E402
import sparseinv  # noqa: E402
from sparseinv import _sparseinv  # noqa: E402

TIKHONOV_BALANCE = 0.01
MULTIPLE = 8
SNR_BINS = [(5.0, 30.0), (30.0, 100.0), (100.0, 400.0)]
RECIPE = "tikhonov(y - sky, psf, weight 0.01, reflect) / noise_sigma"
CACHE_VERSION = 1


# ----------------------------------------------------------------------------- network
def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """f(u); the restored image is u + f(u) (see Residual)."""

    def __init__(self, ch=(24, 48, 96)):
        super().__init__()
        c1, c2, c3 = ch
        self.e1 = block(1, c1)
        self.e2 = block(c1, c2)
        self.e3 = block(c2, c3)
        self.pool = nn.MaxPool2d(2)
        self.u2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.d2 = block(2 * c2, c2)
        self.u1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.d1 = block(2 * c1, c1)
        self.out = nn.Conv2d(c1, 1, 1)

    def forward(self, u):
        a = self.e1(u)
        b = self.e2(self.pool(a))
        c = self.e3(self.pool(b))
        d = self.d2(torch.cat([self.u2(c), b], 1))
        e = self.d1(torch.cat([self.u1(d), a], 1))
        return self.out(e)


class Residual(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, image):
        return image + self.f(image)


# ----------------------------------------------------------------------------- data
def network_input(y, psf):
    """(t, s) for one stamp: the Tikhonov image and the library's noise estimate."""
    t, rep = sparseinv.deconvolve(y, psf, method="tikhonov", sky=0.0)
    s = _sparseinv.deconvolve_globals(np.ascontiguousarray(y, dtype=np.float64),
                                      method="starlet", sky=0.0)["noise_sigma"]
    return t, float(s), rep


def load_set(d, n, seed, make):
    """Stamps of directory d (simulated with galaxy_sim if absent and make), plus the cached
    network inputs u, targets v, noise estimates s and Tikhonov images t."""
    need = ["y", "x", "psf", "sigma", "snr", "fwhm_px", "centre"]
    if not all(os.path.exists(os.path.join(d, k + ".npy")) for k in need):
        if not make:
            raise SystemExit("%s has no simulated stamps" % d)
        print("simulating %d stamps (seed %d) into %s" % (n, seed, d), flush=True)
        t0 = time.time()
        data = galaxy_sim.simulate(n, seed, progress=True)
        galaxy_sim.write(d, data, galaxy_sim.meta(n, seed, 64, 25, (5, 400), time.time() - t0))
    with open(os.path.join(d, "meta.json")) as f:
        m = json.load(f)
    if m["seed"] != seed:
        raise SystemExit("%s was simulated with seed %s, expected %d" % (d, m["seed"], seed))
    if m["seed"] == 3:
        raise SystemExit("seed 3 is reserved for held-out evaluation")
    D = {k: np.load(os.path.join(d, k + ".npy"), mmap_mode="r") for k in need}
    n = min(n, D["y"].shape[0])
    D = {k: np.asarray(v[:n]) for k, v in D.items()}
    cpath = os.path.join(d, "cache_meta.json")
    cm = {"version": CACHE_VERSION, "recipe": RECIPE, "n": n, "seed": seed,
          "sparseinv": getattr(_sparseinv, "__version__", "?")}
    ok = False
    if os.path.exists(cpath):
        with open(cpath) as f:
            ok = json.load(f) == cm
    if ok:
        for k in ("u", "v", "s", "t"):
            D[k] = np.load(os.path.join(d, "cache_%s.npy" % k))
        return D, m
    print("computing Tikhonov inputs for %d stamps in %s" % (n, d), flush=True)
    t0 = time.time()
    T = np.empty((n, 64, 64))
    S = np.empty(n)
    for i in range(n):
        t, s, rep = network_input(D["y"][i], D["psf"][i])
        if i == 0:
            assert rep["method"] == "tikhonov" and rep["boundary"] == "reflect" \
                and abs(rep["balance"] - TIKHONOV_BALANCE) < 1e-12, rep
        T[i], S[i] = t, s
    D["t"], D["s"] = T, S
    D["u"] = (T / S[:, None, None]).astype(np.float32)[:, None]
    D["v"] = (D["x"] / S[:, None, None]).astype(np.float32)[:, None]
    for k in ("u", "v", "s", "t"):
        np.save(os.path.join(d, "cache_%s.npy" % k), D[k])
    with open(cpath, "w") as f:
        json.dump(cm, f)
    print("  %.1f s (%.2f ms/stamp); s / sigma: median %.3f, 5-95%% %.3f-%.3f"
          % (time.time() - t0, 1e3 * (time.time() - t0) / n, np.median(S / D["sigma"]),
             *np.percentile(S / D["sigma"], [5, 95])), flush=True)
    return D, m


def dihedral(x, k):
    """One of the 8 flips/rotations of [C, H, W] tensors."""
    if k >= 4:
        x = torch.flip(x, (-1,))
    return torch.rot90(x, k % 4, (-2, -1))


def nmse_loss(vh, v):
    return (((vh - v) ** 2).sum((1, 2, 3)) / (v ** 2).sum((1, 2, 3)).clamp_min(1e-12)).mean()


@torch.no_grad()
def predict(model, u, bs=100):
    out = []
    for i in range(0, len(u), bs):
        out.append(model(torch.from_numpy(u[i:i + bs])).numpy())
    return np.concatenate(out)


# ----------------------------------------------------------------------------- evaluation
def aperture_weights(n, r0, c0, radius, sub=10):
    """Fraction of each pixel of an n x n image inside the circle (centre (r0, c0), 0-based
    pixel coordinates, pixel centres at integers), by sub x sub sampling."""
    s = (np.arange(sub) + 0.5) / sub - 0.5
    rr = (np.arange(n)[:, None] + s[None, :]).ravel()  # [n*sub]
    ins = ((rr[:, None] - r0) ** 2 + (rr[None, :] - c0) ** 2) <= radius ** 2
    return ins.reshape(n, sub, n, sub).mean(axis=(1, 3))


def evaluate(xhat, t, D):
    """NMSE per stamp of the network (xhat) and Tikhonov (t) against the truth, overall and
    per SNR bin, and the relative aperture-flux errors (aperture diameter 2 FWHM on the
    main galaxy's centre)."""
    x = D["x"]
    den = (x ** 2).sum((1, 2))
    nm_net = ((xhat - x) ** 2).sum((1, 2)) / den
    nm_tik = ((t - x) ** 2).sum((1, 2)) / den
    rel_net, rel_tik = np.empty(len(x)), np.empty(len(x))
    for i in range(len(x)):
        w = aperture_weights(x.shape[1], D["centre"][i, 0], D["centre"][i, 1], D["fwhm_px"][i])
        ft = (w * x[i]).sum()
        rel_net[i] = (w * xhat[i]).sum() / ft - 1
        rel_tik[i] = (w * t[i]).sum() / ft - 1
    snr = D["snr"]

    def summary(m):
        return {"nmse_tikhonov": float(nm_tik[m].mean()), "nmse_network": float(nm_net[m].mean()),
                "aperture_median_abs_rel_err_tikhonov": float(np.median(np.abs(rel_tik[m]))),
                "aperture_median_abs_rel_err_network": float(np.median(np.abs(rel_net[m]))),
                "aperture_median_rel_err_network": float(np.median(rel_net[m])),
                "n": int(m.sum())}

    res = {"all": summary(np.ones(len(x), bool))}
    for lo, hi in SNR_BINS:
        m = (snr >= lo) & ((snr < hi) if hi < SNR_BINS[-1][1] else (snr <= hi))
        res["snr_%g_%g" % (lo, hi)] = summary(m)
    return res


# ----------------------------------------------------------------------------- export
def export_onnx(model, path):
    import onnx
    import onnxruntime as ort
    model.eval()
    ex = torch.zeros(1, 1, 64, 64)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.onnx.export(model, (ex,), path, input_names=["image"], output_names=["restored"],
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                    "restored": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    onnx.save(onnx.load(path), path)  # a single file (no external data)
    onnx.checker.check_model(onnx.load(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    diffs = {}
    for shape in ((2, 1, 64, 64), (1, 1, 96, 128)):
        inp = torch.randn(shape, generator=g) * 3 + torch.rand(shape, generator=g) * 20
        with torch.no_grad():
            ref = model(inp).numpy()
        got = sess.run(["restored"], {"image": inp.numpy()})[0]
        diffs["x".join(map(str, shape))] = float(np.abs(got - ref).max())
        print("onnxruntime vs torch, input %s: max abs diff %.3g (output scale %.3g)"
              % (shape, diffs["x".join(map(str, shape))], np.abs(ref).max()))
    assert max(diffs.values()) < 1e-4, diffs
    return diffs


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--iters", type=int, default=0,
                    help="stop after this many iterations (cosine over them) instead of time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0, help="torch/numpy seed of the training")
    ap.add_argument("--n-train", type=int, default=24000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--train-dir", default=os.path.join(ROOT, "out", "galaxy", "train"))
    ap.add_argument("--val-dir", default=os.path.join(ROOT, "out", "galaxy", "val"))
    ap.add_argument("--train-seed", type=int, default=1)
    ap.add_argument("--val-seed", type=int, default=2)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-quick", type=int, default=300, help="stamps of the periodic check")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "onnx", "galaxy_unet.onnx"))
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "out", "galaxy", "galaxy_unet.pt"))
    a = ap.parse_args(argv)
    if 3 in (a.train_seed, a.val_seed):
        raise SystemExit("seed 3 is reserved for held-out evaluation")

    torch.set_num_threads(a.threads)
    _sparseinv.set_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    Dt, mt = load_set(a.train_dir, a.n_train, a.train_seed, True)
    Dv, mv = load_set(a.val_dir, a.n_val, a.val_seed, True)
    ntr = len(Dt["u"])
    print("train %d stamps, validation %d stamps" % (ntr, len(Dv["u"])), flush=True)
    u_tr, v_tr = torch.from_numpy(Dt["u"]), torch.from_numpy(Dt["v"])
    del Dt  # only u, v are needed for training

    f = UNet()
    model = Residual(f)
    npar = sum(p.numel() for p in model.parameters())
    print("parameters: %d" % npar, flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    budget = a.minutes * 60.0
    nq = min(a.val_quick, len(Dv["u"]))
    uq, vq = torch.from_numpy(Dv["u"][:nq]), torch.from_numpy(Dv["v"][:nq])
    snr_q = Dv["snr"][:nq]
    bins_q = [(snr_q >= lo) & (snr_q < hi + (hi == SNR_BINS[-1][1])) for lo, hi in SNR_BINS]

    def per_stamp(pred):
        return (((pred - vq) ** 2).sum((1, 2, 3)) / (vq ** 2).sum((1, 2, 3))).numpy()

    def by_bin(e):
        return " ".join("%g-%g: %.4f" % (lo, hi, e[m].mean())
                        for (lo, hi), m in zip(SNR_BINS, bins_q))

    with torch.no_grad():
        e_tik = per_stamp(uq)
    print("val loss (first %d) of the Tikhonov input itself: %.5f  [%s]"
          % (nq, e_tik.mean(), by_bin(e_tik)), flush=True)

    t0, it, losses, train_s = time.time(), 0, [], 0.0
    perm, pos = rng.permutation(ntr), 0
    history = []
    while True:
        el = time.time() - t0
        frac = it / a.iters if a.iters else el / budget
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * frac))
        if pos + a.batch > ntr:
            perm, pos = rng.permutation(ntr), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        ks = rng.integers(0, 8, a.batch)
        ub = torch.stack([dihedral(u_tr[i], int(k)) for i, k in zip(idx, ks)])
        vb = torch.stack([dihedral(v_tr[i], int(k)) for i, k in zip(idx, ks)])
        model.train()
        loss = nmse_loss(model(ub), vb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % 100 == 0:
            print("it %d t %.0fs lr %.2e loss %.5f" % (it, time.time() - t0, opt.param_groups[0]["lr"],
                                                      np.mean(losses[-100:])), flush=True)
        if it % a.val_every == 0:
            model.eval()
            with torch.no_grad():
                e = per_stamp(model(uq))
            vl = float(e.mean())
            history.append([it, round(time.time() - t0, 1), vl])
            print("  val loss (first %d) %.5f  [%s]" % (nq, vl, by_bin(e)), flush=True)
    train_s = time.time() - t0
    print("trained %d iterations in %.1f s" % (it, train_s), flush=True)
    model.eval()
    torch.save(model.state_dict(), a.checkpoint)

    vh = predict(model, Dv["u"])[:, 0]
    xhat = vh * Dv["s"][:, None, None]
    ev = evaluate(xhat, Dv["t"], Dv)
    print(json.dumps(ev, indent=1))

    diffs = export_onnx(model, a.out)
    ev_all = ev["all"]
    side = {
        "input": RECIPE,
        "output": "restored / noise_sigma: x_hat = noise_sigma * restored (absolute flux)",
        "residual": "restored = image + f(image), inside the graph",
        "onnx_input": "image [N,1,H,W] float32", "onnx_output": "restored [N,1,H,W] float32",
        "tikhonov_balance": TIKHONOV_BALANCE,
        "tikhonov_boundary": "reflect",
        "noise_sigma": "sparseinv deconvolve_globals(y, method='starlet', sky=0)['noise_sigma']",
        "multiple": MULTIPLE,
        "fwhm_px_range": galaxy_sim.PARAMS["psf_fwhm_px"],
        "snr_range": [5, 400],
        "stamp": 64,
        "psf_size": 25,
        "architecture": "U-Net 24-48-96, two 3x3 conv+ReLU per level, maxpool 2, "
                        "transposed conv 2x2 up, concat skips, 1x1 out; residual",
        "parameters": npar,
        "iterations": it,
        "batch": a.batch,
        "lr": a.lr,
        "schedule": "cosine to 0 over %s" % ("%d iterations" % a.iters if a.iters
                                              else "%.1f minutes" % a.minutes),
        "train_seconds": train_s,
        "threads": a.threads,
        "torch": torch.__version__,
        "galsim": galaxy_sim.galsim.__version__,
        "val_nmse": {
            "tikhonov": ev_all["nmse_tikhonov"], "network": ev_all["nmse_network"],
            "per_snr_bin": {k: {"tikhonov": v["nmse_tikhonov"], "network": v["nmse_network"],
                                "n": v["n"]} for k, v in ev.items() if k != "all"},
        },
        "val_aperture_median_rel_err": ev_all["aperture_median_abs_rel_err_network"],
        "val_aperture": {
            "definition": "median over stamps of |F(x_hat)/F(x) - 1|, F = flux in a circle "
                          "of diameter 2 FWHM centred on the main galaxy (centre.npy)",
            "network": ev_all["aperture_median_abs_rel_err_network"],
            "tikhonov": ev_all["aperture_median_abs_rel_err_tikhonov"],
            "network_median_signed": ev_all["aperture_median_rel_err_network"],
            "per_snr_bin": {k: {"network": v["aperture_median_abs_rel_err_network"],
                                "tikhonov": v["aperture_median_abs_rel_err_tikhonov"]}
                            for k, v in ev.items() if k != "all"},
        },
        "val_history": history,
        "onnx_check_max_abs_diff": diffs,
        "seeds": {"train_sim": a.train_seed, "val_sim": a.val_seed, "torch_numpy": a.seed,
                  "reserved_for_evaluation": 3},
        "n_train": ntr, "n_val": int(len(Dv["u"])),
        "simulator": "models/train/galaxy_sim.py",
    }
    with open(os.path.splitext(a.out)[0] + ".json", "w") as fh:
        json.dump(side, fh, indent=1)
    print("wrote %s (%d bytes) and its .json" % (a.out, os.path.getsize(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
