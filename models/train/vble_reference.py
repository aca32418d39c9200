"""Reference VBLE-xz inference (Biquard et al. 2024, "Deep priors for satellite image
restoration with accurate uncertainties", arXiv:2412.04130) using ONLY the exported ONNX graphs
(models/onnx/vble_*.onnx) through onnxruntime, numpy for everything else: what the Rust
implementation (phase 2) reproduces.

    python models/train/vble_reference.py                      # full evaluation (~5 minutes)
    python models/train/vble_reference.py --steps 150 --samples 50 --tiles 2   # quicker

Problem: y = A x + n, n ~ N(0, sigma_n^2 I), x in [0, 1] ([H, W], H, W multiples of 16), with
A one of
- blur: periodic convolution by a normalised PSF (FFT), A^T = correlation (conj. transfer fn);
- down2: 2x2 block average, A^T y = nearest-neighbour upsampling / 4;
- mask: keep a random subset of pixels (A^T y = y on the kept pixels, 0 elsewhere).

Variational posterior (VBLE-xz):
    q(z, h, x) = U(z; zbar +- a_z/2) U(h; hbar +- a_h/2) N(x; g_s(z), diag(b^2 sigma_theta(z)^2))
Loss (lambda = 1), one reparameterised sample per step, u ~ U(-1/2, 1/2), eps ~ N(0, 1):
    z = zbar + a_z u_z,  h = hbar + a_h u_h,  x = x_mean(z) + b * sigma(z) * eps
    L = ||A x - y||^2 / (2 sigma_n^2)
        + lambda [ rate(z, h) - sum log a_z - sum log a_h + 1/2 sum (b^2 - 2 log b - 1) ]
with rate = -log p(z|h) - log p(h) from vble_rate.onnx (gradients through the hyper-decoder
and the entropy models) and sigma_theta(z) detached in x (so the g_sigma input of
vble_decode_vjp.onnx is 0 unless --sigma-grad). Gradients (g_x = A^T (A x - y) / sigma_n^2):
    dL/dzbar = J_mean^T g_x + lambda drate/dz          (= d_z)
    dL/da_z  = d_z * u_z - lambda / a_z
    dL/dhbar = lambda drate/dh                          (= d_h)
    dL/da_h  = d_h * u_h - lambda / a_h
    dL/db    = g_x * sigma(z) * eps + lambda (b - 1/b)
Adam (beta 0.9/0.999, eps 1e-8, bias-corrected) with learning rate 0.1 on all five
parameter arrays; after every step a_z, a_h are clamped to [1.5e-5, 20] and b to [1e-4, 3].
Initialisation: zbar, hbar = encode(x0) with x0 = A^+ y (A^T y for the blur; 4 A^T y for the
block average; for the mask A^T y with the missing pixels set to the mean of the observed
ones), a_z = a_h = b = 1.
Output: S posterior samples (z = zbar + a_z u, x = x_mean(z) + b sigma(z) eps) -> mean (MMSE
estimate) and per-pixel standard deviation (sample std with 1/(S-1)).

Variants: z-only (VBLE: q = U(z) U(h), x = x_mean(z), no b, no KL on x) and MAP of the same
latent prior (minimise ||A x_mean(z) - y||^2/(2 sigma_n^2) + lambda rate(z, h) over z, h by
Adam, lr 0.1, from the same initialisation). Baselines: the observation and the closed-form
periodic Wiener filter with the mean power spectrum of 128x128 training crops as signal prior.
Calibration: empirical coverage over all pixels of the central Gaussian intervals
mean +- q_p std for p = 50/80/90/95 %.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vble_data  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEVELS = [0.50, 0.80, 0.90, 0.95]
QUANT = {0.50: 0.6744897501960817, 0.80: 1.2815515655446004, 0.90: 1.6448536269514722,
         0.95: 1.959963984540054}


class Prior:
    """The four VBLE graphs through onnxruntime (float32 in, float64 out)."""

    def __init__(self, onnx_dir, threads=1):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1

        def mk(f):
            return ort.InferenceSession(os.path.join(onnx_dir, f), so,
                                        providers=["CPUExecutionProvider"])
        self.enc = mk("vble_encode.onnx")
        self.dec = mk("vble_decode.onnx")
        self.vjp = mk("vble_decode_vjp.onnx")
        self.rt = mk("vble_rate.onnx")

    @staticmethod
    def _f(a):
        return np.ascontiguousarray(a, dtype=np.float32)

    def encode(self, x):
        z, h = self.enc.run(None, {"x": self._f(x[None, None])})
        return z.astype(np.float64), h.astype(np.float64)

    def decode(self, z):
        m, s = self.dec.run(None, {"z": self._f(z)})
        return m[0, 0].astype(np.float64), s[0, 0].astype(np.float64)

    def decode_vjp(self, z, g_mean, g_sigma):
        return self.vjp.run(None, {"z": self._f(z), "g_mean": self._f(g_mean[None, None]),
                                   "g_sigma": self._f(g_sigma[None, None])})[0].astype(np.float64)

    def rate(self, z, h):
        r, gz, gh = self.rt.run(None, {"z": self._f(z), "h": self._f(h)})
        return float(r[0]), gz.astype(np.float64), gh.astype(np.float64)


# forward operators ---------------------------------------------------------------------------

def gaussian_psf(sigma, size):
    t = np.arange(size) - size // 2
    k = np.exp(-0.5 * (t[:, None] ** 2 + t[None, :] ** 2) / sigma ** 2)
    return k / k.sum()


class Blur:
    name = "blur"

    def __init__(self, psf, shape):
        pad = np.zeros(shape)
        kh, kw = psf.shape
        pad[:kh, :kw] = psf
        pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))  # centre at (0, 0)
        self.K = np.fft.fft2(pad)

    def A(self, x):
        return np.real(np.fft.ifft2(np.fft.fft2(x) * self.K))

    def AT(self, y):
        return np.real(np.fft.ifft2(np.fft.fft2(y) * np.conj(self.K)))

    def init(self, y):
        return self.AT(y)


class Down2:
    name = "down2"

    def A(self, x):
        H, W = x.shape
        return x.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))

    def AT(self, y):
        return np.repeat(np.repeat(y, 2, axis=0), 2, axis=1) / 4.0

    def init(self, y):
        return 4.0 * self.AT(y)


class Mask:
    name = "mask"

    def __init__(self, keep):
        self.m = keep.astype(np.float64)

    def A(self, x):
        return self.m * x

    def AT(self, y):
        return self.m * y

    def init(self, y):
        fill = y[self.m > 0].mean()
        return np.where(self.m > 0, y, fill)


# Adam ------------------------------------------------------------------------------------------

class Adam:
    def __init__(self, params, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
        self.p, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        c2 = 1 - self.b2 ** self.t
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            self.p[k] -= self.lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)


A_MIN, A_MAX, B_MIN, B_MAX = 1.5e-5, 20.0, 1e-4, 3.0


class Draws:
    """The random draws of the loop (numpy Generator), optionally recorded in call order
    (u_z, u_h, eps per step) so that another implementation can replay them."""

    def __init__(self, seed, record=False):
        self.g = np.random.default_rng(seed)
        self.log = [] if record else None

    def uniform(self, low, high, shape):
        v = self.g.uniform(low, high, shape)
        if self.log is not None:
            self.log.append(v.copy())
        return v

    def standard_normal(self, shape):
        v = self.g.standard_normal(shape)
        if self.log is not None:
            self.log.append(v.copy())
        return v


def vble(prior, op, y, sigma_n, mode="xz", steps=300, lr=0.1, lam=1.0, samples=100, seed=0,
         sigma_grad=False, rng=None, trace=None):
    """mode: 'xz' (VBLE-xz), 'z' (z-only VBLE) or 'map'. Returns (mean, std, info).
    rng: a Draws (default Draws(seed)); trace: a list that receives (loss, parameter copies)
    after every step."""
    rng = rng or Draws(seed)
    zbar, hbar = prior.encode(op.init(y))
    P = {"zbar": zbar, "hbar": hbar}
    if mode != "map":
        P["a_z"] = np.ones_like(zbar)
        P["a_h"] = np.ones_like(hbar)
    xshape = (zbar.shape[2] * 8, zbar.shape[3] * 8)
    if mode == "xz":
        P["b"] = np.ones(xshape)
    opt = Adam(P, lr=lr)
    inv_s2 = 1.0 / sigma_n ** 2
    losses = []
    for _ in range(steps):
        if mode == "map":
            z, h = P["zbar"], P["hbar"]
        else:
            u_z = rng.uniform(-0.5, 0.5, zbar.shape)
            u_h = rng.uniform(-0.5, 0.5, hbar.shape)
            z = P["zbar"] + P["a_z"] * u_z
            h = P["hbar"] + P["a_h"] * u_h
        xm, sg = prior.decode(z)
        x = xm
        if mode == "xz":
            eps = rng.standard_normal(xshape)
            x = xm + P["b"] * sg * eps
        r = op.A(x) - y
        g_x = op.AT(r) * inv_s2
        g_sigma = g_x * P["b"] * eps if (mode == "xz" and sigma_grad) else np.zeros(xshape)
        d_data = prior.decode_vjp(z, g_x, g_sigma)
        rate, drz, drh = prior.rate(z, h)
        d_z = d_data + lam * drz
        d_h = lam * drh
        grads = {"zbar": d_z, "hbar": d_h}
        loss = 0.5 * inv_s2 * float(np.sum(r * r)) + lam * rate
        if mode != "map":
            grads["a_z"] = d_z * u_z - lam / P["a_z"]
            grads["a_h"] = d_h * u_h - lam / P["a_h"]
            loss -= lam * (np.log(P["a_z"]).sum() + np.log(P["a_h"]).sum())
        if mode == "xz":
            b = P["b"]
            grads["b"] = g_x * sg * eps + lam * (b - 1.0 / b)
            loss += lam * 0.5 * float(np.sum(b * b - 2 * np.log(b) - 1))
        opt.step(grads)
        if mode != "map":
            np.clip(P["a_z"], A_MIN, A_MAX, out=P["a_z"])
            np.clip(P["a_h"], A_MIN, A_MAX, out=P["a_h"])
        if mode == "xz":
            np.clip(P["b"], B_MIN, B_MAX, out=P["b"])
        losses.append(loss)
        if trace is not None:
            trace.append((loss, {k: v.copy() for k, v in P.items()}))
    info = {"loss_first": losses[0] if losses else None,
            "loss_last": float(np.mean(losses[-10:])) if losses else None}
    if samples == 0:
        return None, None, dict(info, params=P)
    if mode == "map":
        xm, _ = prior.decode(P["zbar"])
        return xm, None, info
    acc = np.zeros(xshape)
    acc2 = np.zeros(xshape)
    for _ in range(samples):
        z = P["zbar"] + P["a_z"] * rng.uniform(-0.5, 0.5, zbar.shape)
        xm, sg = prior.decode(z)
        if mode == "xz":
            xm = xm + P["b"] * sg * rng.standard_normal(xshape)
        acc += xm
        acc2 += xm * xm
    mean = acc / samples
    std = np.sqrt(np.maximum(acc2 / samples - mean ** 2, 0.0) * samples / max(samples - 1, 1))
    info.update(mean_a_z=float(P["a_z"].mean()), mean_a_h=float(P["a_h"].mean()))
    if mode == "xz":
        info["mean_b"] = float(P["b"].mean())
    return mean, std, info


# baselines and metrics -----------------------------------------------------------------------

def training_psd(n=128, crops=400, seed=0, cache=None):
    """Mean periodogram |F(x - mean x)|^2 / n^2 of random n x n crops of the training tiles."""
    rng = np.random.default_rng(seed)
    ims = vble_data.train_images(cache)
    w = np.array([im.size for im in ims], float)
    acc = np.zeros((n, n))
    for _ in range(crops):
        im = ims[rng.choice(len(ims), p=w / w.sum())]
        r = rng.integers(im.shape[0] - n + 1)
        c = rng.integers(im.shape[1] - n + 1)
        p = im[r:r + n, c:c + n].astype(np.float64)
        acc += np.abs(np.fft.fft2(p - p.mean())) ** 2 / (n * n)
    return acc / crops


def wiener(op, y, sigma_n, S):
    m = y.mean()
    K = op.K
    Wf = np.conj(K) * S / (np.abs(K) ** 2 * S + sigma_n ** 2)
    return m + np.real(np.fft.ifft2(np.fft.fft2(y - m) * Wf))


def psnr(x, ref):
    return 10 * math.log10(1.0 / np.mean((x - ref) ** 2))


def coverage(x, mean, std):
    e = np.abs(x - mean)
    return {p: float(np.mean(e <= QUANT[p] * std)) for p in LEVELS}


def write_step_fixture(prior, path, cache=None, steps=3):
    """A replayable trace of VBLE-xz on a 32x32 held-out crop for the Rust test: the PSF,
    y, the recorded draws (u_z, u_h, eps per step), the loss of every step and the parameters
    after step 1 and after the last step."""
    x = vble_data.load("SOAP_061", cache)[40:72, 48:80].astype(np.float64)
    psf = gaussian_psf(1.5, 15)
    op = Blur(psf, x.shape)
    sn = 0.03
    y = op.A(x) + sn * np.random.default_rng(7).standard_normal(x.shape)
    zbar0, hbar0 = prior.encode(op.init(y))
    draws = Draws(11, record=True)
    trace = []
    vble(prior, op, y, sn, "xz", steps=steps, samples=0, rng=draws, trace=trace)

    def arr(v):
        v = np.asarray(v, np.float64)
        return {"shape": list(v.shape), "data": [float(f"{t:.10g}") for t in v.ravel()]}
    fx = {
        "description": "VBLE-xz reference loop (models/train/vble_reference.py) on a 32x32 "
                       "held-out crop: periodic blur by psf, sigma_n, lambda 1, Adam lr 0.1 "
                       "(0.9, 0.999, 1e-8), clamps a in [1.5e-5, 20], b in [1e-4, 3]; init "
                       "zbar, hbar = encode(A^T y), a = b = 1; draws replay u_z, u_h, eps per step; "
                       "loss[k] = L of step k+1's draws at the parameters before its update; "
                       "after_step_1 / after_last_step = parameters after the Adam update and "
                       "the clamps",
        "sigma_n": sn, "lr": 0.1, "lambda": 1.0, "steps": steps,
        "x": arr(x), "psf": arr(psf), "y": arr(y), "x0": arr(op.init(y)),
        "zbar0": arr(zbar0), "hbar0": arr(hbar0),
        "draws": [{"u_z": arr(draws.log[3 * k]), "u_h": arr(draws.log[3 * k + 1]),
                   "eps": arr(draws.log[3 * k + 2])} for k in range(steps)],
        "loss": [float(t[0]) for t in trace],
        "after_step_1": {k: arr(v) for k, v in trace[0][1].items()},
        "after_last_step": {k: arr(v) for k, v in trace[-1][1].items()},
    }
    with open(path, "w") as f:
        json.dump(fx, f, separators=(",", ":"))
    print("wrote", path, os.path.getsize(path), "bytes; losses", [round(t[0], 3) for t in trace])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx-dir", default=os.path.join(ROOT, "models", "onnx"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "out", "vble"))
    ap.add_argument("--cache", default=vble_data.DEFAULT_CACHE)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--tiles", type=int, default=5, help="held-out 128x128 tiles (<= 5)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03])
    ap.add_argument("--psf-sigma", type=float, default=1.5, help="deblurring PSF (pixels)")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--sigma-grad", action="store_true",
                    help="let the data term's gradient flow through sigma_theta (g_sigma != 0)")
    ap.add_argument("--other-ops", type=int, default=2,
                    help="tiles for the down2 and mask demos (first noise level; 0 = skip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--step-fixture", default=None,
                    help="write the replayable step trace (models/tests/data/vble_step_fixture.json)"
                         " and exit")
    a = ap.parse_args()
    prior = Prior(a.onnx_dir, a.threads)
    if a.step_fixture:
        write_step_fixture(prior, a.step_fixture, a.cache)
        return
    os.makedirs(a.out_dir, exist_ok=True)
    tiles = vble_data.eval_tiles(128, a.cache)[:a.tiles]
    S = training_psd(128, cache=a.cache)
    psf = gaussian_psf(a.psf_sigma, 15)
    t_start = time.time()
    rows = []
    panel = None
    print(f"steps {a.steps}, samples {a.samples}, lr {a.lr}, lambda {a.lam}, PSF Gaussian "
          f"sigma {a.psf_sigma} px (15x15), periodic; tiles {[n for n, _ in tiles]}", flush=True)
    all_err = {"xz": ([], []), "z": ([], [])}
    for si, sn in enumerate(a.noise):
        for ti, (name, x) in enumerate(tiles):
            x = x.astype(np.float64)
            op = Blur(psf, x.shape)
            rng = np.random.default_rng(1000 * si + ti)
            y = op.A(x) + sn * rng.standard_normal(x.shape)
            row = {"op": "blur", "sigma_n": sn, "tile": name, "psnr_observed": psnr(y, x),
                   "psnr_wiener": psnr(wiener(op, y, sn, S), x)}
            for mode in ("xz", "z", "map"):
                t0 = time.time()
                mean, std, info = vble(prior, op, y, sn, mode, a.steps, a.lr, a.lam, a.samples,
                                       seed=ti, sigma_grad=a.sigma_grad)
                row[f"psnr_{mode}"] = psnr(mean, x)
                row[f"seconds_{mode}"] = time.time() - t0
                row[f"info_{mode}"] = info
                if std is not None:
                    row[f"coverage_{mode}"] = coverage(x, mean, std)
                    row[f"mean_std_{mode}"] = float(std.mean())
                    row[f"rmse_{mode}"] = float(np.sqrt(np.mean((mean - x) ** 2)))
                    all_err[mode][0].append((x - mean).ravel())
                    all_err[mode][1].append(std.ravel())
                    if mode == "xz" and si == len(a.noise) - 1 and ti == 0:
                        panel = (name, sn, x, y, mean, std)
            rows.append(row)
            print(f"blur sigma_n={sn:g} {name:16s} obs {row['psnr_observed']:.2f} wiener "
                  f"{row['psnr_wiener']:.2f} xz {row['psnr_xz']:.2f} z {row['psnr_z']:.2f} "
                  f"map {row['psnr_map']:.2f} | cov90 xz {row['coverage_xz'][0.9]:.3f} "
                  f"z {row['coverage_z'][0.9]:.3f} | rmse/mean std xz {row['rmse_xz']:.4f}/"
                  f"{row['mean_std_xz']:.4f} z {row['rmse_z']:.4f}/{row['mean_std_z']:.4f} "
                  f"({row['seconds_xz']:.1f}+{row['seconds_z']:.1f}+{row['seconds_map']:.1f} s)",
                  flush=True)

    # other operators (demo)
    for ti, (name, x) in enumerate(tiles[:a.other_ops]):
        x = x.astype(np.float64)
        sn = a.noise[0]
        rng = np.random.default_rng(500 + ti)
        for op in (Down2(), Mask(rng.random(x.shape) < 0.5)):
            y = op.A(x) + sn * rng.standard_normal(op.A(x).shape)
            if op.name == "mask":
                y = op.m * y
            row = {"op": op.name, "sigma_n": sn, "tile": name,
                   "psnr_init": psnr(op.init(y), x)}
            for mode in ("xz", "z", "map"):
                mean, std, info = vble(prior, op, y, sn, mode, a.steps, a.lr, a.lam, a.samples,
                                       seed=ti, sigma_grad=a.sigma_grad)
                row[f"psnr_{mode}"] = psnr(mean, x)
                if std is not None:
                    row[f"coverage_{mode}"] = coverage(x, mean, std)
            rows.append(row)
            print(f"{op.name:5s} sigma_n={sn:g} {name:16s} A^+y {row['psnr_init']:.2f} xz "
                  f"{row['psnr_xz']:.2f} z {row['psnr_z']:.2f} map {row['psnr_map']:.2f} | cov "
                  f"50/80/90/95 xz " + "/".join(f"{row['coverage_xz'][p]:.2f}" for p in LEVELS)
                  + " z " + "/".join(f"{row['coverage_z'][p]:.2f}" for p in LEVELS), flush=True)
    total = time.time() - t_start

    # summary table (deblurring)
    print(f"\nDeblurring, Gaussian PSF sigma {a.psf_sigma} px, mean over {len(tiles)} held-out "
          f"128x128 tiles ({a.steps} steps, {a.samples} samples; {total:.0f} s in all)")
    print("| sigma_n | observed | Wiener | MAP | VBLE z-only | VBLE-xz | coverage 50/80/90/95 % "
          "z-only | coverage 50/80/90/95 % xz |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for sn in a.noise:
        rs = [r for r in rows if r["op"] == "blur" and r["sigma_n"] == sn]
        mval = lambda k: float(np.mean([r[k] for r in rs]))  # noqa: E731
        cov = {m: {p: float(np.mean([r[f"coverage_{m}"][p] for r in rs])) for p in LEVELS}
               for m in ("z", "xz")}
        s = dict(sigma_n=sn, observed=mval("psnr_observed"), wiener=mval("psnr_wiener"),
                 map=mval("psnr_map"), z=mval("psnr_z"), xz=mval("psnr_xz"), coverage=cov)
        summary.append(s)
        print(f"| {sn:g} | {s['observed']:.2f} | {s['wiener']:.2f} | {s['map']:.2f} | "
              f"{s['z']:.2f} | {s['xz']:.2f} | "
              + " / ".join(f"{cov['z'][p]:.2f}" for p in LEVELS) + " | "
              + " / ".join(f"{cov['xz'][p]:.2f}" for p in LEVELS) + " |")
    with open(os.path.join(a.out_dir, "vble_reference.json"), "w") as f:
        json.dump({"args": vars(a), "rows": rows, "summary": summary, "seconds": total}, f,
                  indent=1, default=str)
    plots(a, panel, all_err)


def plots(a, panel, all_err):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no PNGs")
        return
    if panel is not None:
        name, sn, x, y, mean, std = panel
        fig, ax = plt.subplots(1, 5, figsize=(17, 3.8))
        for k, (im, t) in enumerate([(x, "truth"), (y, f"observed (sigma_n={sn:g})"),
                                     (mean, "VBLE-xz mean"), (std, "VBLE-xz std"),
                                     (np.abs(mean - x), "|error|")]):
            kw = dict(cmap="gray", vmin=0, vmax=1) if k < 3 else dict(cmap="magma")
            h = ax[k].imshow(im, **kw)
            ax[k].set_title(t)
            ax[k].axis("off")
            if k >= 3:
                fig.colorbar(h, ax=ax[k], fraction=0.046)
        fig.suptitle(f"{name}: deblurring")
        fig.tight_layout()
        p = os.path.join(a.out_dir, "vble_panel.png")
        fig.savefig(p, dpi=80)
        print("wrote", p)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ps = np.linspace(0.02, 0.99, 50)
    from scipy.stats import norm
    for m, lbl in (("xz", "VBLE-xz"), ("z", "VBLE (z only)")):
        if not all_err[m][0]:
            continue
        e = np.abs(np.concatenate(all_err[m][0]))
        s = np.concatenate(all_err[m][1])
        ax.plot(ps, [np.mean(e <= norm.ppf(0.5 + p / 2) * s) for p in ps], label=lbl)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("nominal coverage (central Gaussian interval)")
    ax.set_ylabel("empirical coverage")
    ax.legend()
    ax.set_title("calibration, deblurring (all noise levels)")
    fig.tight_layout()
    p = os.path.join(a.out_dir, "vble_calibration.png")
    fig.savefig(p, dpi=80)
    print("wrote", p)


if __name__ == "__main__":
    main()
