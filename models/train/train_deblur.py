"""Train the learned non-blind deblurring model shipped as models/onnx/deblur_small_{enc,dec}.onnx.

    python models/train/train_deblur.py --minutes 25 --threads 1 --batch 12 --checkpoint ck.pt
    python models/train/train_deblur.py --minutes 25 --threads 1 --batch 12 --lr 5e-4 --init ck.pt

(the shipped model: two 25-minute phases, 2059 iterations; see models/README.md)

"INFWIDE-lite": a small model in the spirit of INFWIDE (Zhang et al., "INFWIDE: Image and
feature space Wiener deconvolution network for non-blind image deblurring in low-light
conditions", IEEE TIP 2023). Everything that needs an FFT is a fixed formula that sparseinv
computes in Rust (models/src/deblur.rs); only the convolutional parts are ONNX graphs.
For an observation y (normalised to [0, 1], saturation at 1), a PSF k (sum 1, centre at
(h//2, w//2)) and a scalar noise level s (standard deviation, same units as y):

  W_mu(v)  = crop( F^-1[ conj(K) F[pad(v)] / (|K|^2 + mu) ] )        (Wiener, reflect padding)
             pad = numpy 'reflect' padding by kh rows / kw columns on each side, K the DFT of
             k on the padded grid with its centre moved to (0, 0), crop = the central H x W;
  x_w      = W_{mu_0}(y),           mu_0 = exp(beta_0) s^2 + eps     (image-space Wiener)
  f        = E([y, s])              E: encoder graph, [N,2,H,W] -> [N,C,H,W]
  g_c      = W_{mu_c}(f_c),         mu_c = exp(beta_c) s^2 + eps     (feature-space Wiener)
  x_hat    = D([y, x_w, g_1..g_C, s])   D: decoder graph (U-Net, residual on x_w),
                                        [N,C+3,H,W] -> [N,1,H,W]; H, W padded by reflection
                                        to a multiple of 4 before D and cropped after.

beta_0, beta_c and eps go to the JSON sidecar models/onnx/deblur_small.json.

Data: crops of the images shipped inside scikit-image's `skimage.data` (TRAIN below, the same
as the denoiser's); held out: camera, coins, cell (never seen in training). A crop of size
P + KS - 1 is blurred with 'valid' convolution (so the observed P x P patch has realistic,
non-periodic borders) by a random Gaussian (isotropic or elongated) or random motion kernel
(KS = 19); Poisson-Gaussian noise y = Poisson(peak * b) / peak + sigma_g n with peak
log-uniform in [30, 3000] photons at white and sigma_g in [0, 0.03] (20 % of the patches:
Gaussian only, sigma in [0.002, 0.08]); 30 % of the scenes get gain in [1, 1.5] and 1-3 point
highlights of amplitude 2-8 so that the observation saturates (y = min(y, 1)); the target is
the sharp scene clipped to [0, 1]. s^2 = mean(max(y, 0)) / peak + sigma_g^2.
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage import color, data, img_as_float

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = ["astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon", "page",
         "text", "hubble_deep_field", "immunohistochemistry"]
TEST = ["camera", "coins", "cell"]
KS = 19
EPS = 1e-4
FEATS = 8
MULTIPLE = 4


def load(name):
    im = img_as_float(getattr(data, name)())
    if im.ndim == 3:
        im = color.rgb2gray(im[..., :3])
    return im.astype(np.float32)


# ----------------------------------------------------------------------------- kernels
def gaussian_kernel(s1, s2, theta, ks=KS):
    r = ks // 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    c, s = np.cos(theta), np.sin(theta)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = np.exp(-0.5 * (u / s1) ** 2 - 0.5 * (v / s2) ** 2)
    return k / k.sum()


def motion_kernel(rng, length, ks=KS):
    """Random camera-shake trajectory (a random walk with inertia), splatted bilinearly."""
    n = 200
    v = rng.standard_normal(2)
    v /= np.linalg.norm(v)
    pts = np.zeros((n, 2))
    for t in range(1, n):
        v = v + 0.25 * rng.standard_normal(2) * rng.random()
        v /= np.linalg.norm(v)
        pts[t] = pts[t - 1] + v
    # scale to the requested path length, centre on the centroid
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
    pts *= length / seg
    pts -= pts.mean(0)
    ext = np.abs(pts).max()
    if ext > ks // 2 - 1:
        pts *= (ks // 2 - 1) / ext
    k = np.zeros((ks, ks))
    for (py, px) in pts + ks // 2:
        i, j = int(np.floor(py)), int(np.floor(px))
        a, b = py - i, px - j
        k[i, j] += (1 - a) * (1 - b)
        k[i + 1, j] += a * (1 - b)
        k[i, j + 1] += (1 - a) * b
        k[i + 1, j + 1] += a * b
    # slight optical blur
    g = gaussian_kernel(0.5, 0.5, 0.0, 5)
    k = np.real(np.fft.ifft2(np.fft.fft2(k) * np.fft.fft2(np.roll(np.pad(g, ((0, ks - 5), (0, ks - 5))), (-2, -2), (0, 1)))))
    k = np.maximum(k, 0)
    return k / k.sum()


def random_kernel(rng):
    if rng.random() < 0.5:
        s1 = rng.uniform(0.7, 3.0)
        s2 = s1 if rng.random() < 0.5 else rng.uniform(0.7, 3.0)
        return gaussian_kernel(s1, s2, rng.uniform(0, np.pi))
    return motion_kernel(rng, rng.uniform(5, 17))


# ----------------------------------------------------------------------------- Wiener (torch)
def kernel_fft(k, shape):
    """DFT of kernels k [B, kh, kw] on a shape grid with the centre (kh//2, kw//2) at (0, 0)."""
    b, kh, kw = k.shape
    big = torch.zeros((b,) + tuple(shape), dtype=torch.float64)
    big[:, :kh, :kw] = k
    big = torch.roll(big, shifts=(-(kh // 2), -(kw // 2)), dims=(1, 2))
    return torch.fft.fft2(big)


def wiener_reflect(v, k, mu):
    """W_mu(v) for v [B, C, H, W] (float32), k [B, kh, kw] (float64), mu [B, C] (float64)."""
    _, _, h, w = v.shape
    kh, kw = k.shape[1:]
    p = F.pad(v.double(), (kw, kw, kh, kh), mode="reflect")
    kf = kernel_fft(k, p.shape[2:])[:, None]
    num = torch.conj(kf) * torch.fft.fft2(p)
    den = kf.real ** 2 + kf.imag ** 2 + mu[:, :, None, None]
    out = torch.fft.ifft2(num / den).real
    return out[:, :, kh:kh + h, kw:kw + w].float()


# ----------------------------------------------------------------------------- networks
class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.body(x)


class Encoder(nn.Module):
    """[y, s] -> C feature maps at full resolution (no down-sampling: any H, W)."""

    def __init__(self, c=FEATS, w=16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, w, 3, padding=1), nn.ReLU(), Res(w),
                                 nn.Conv2d(w, c, 3, padding=1))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """[y, x_w, g_1..g_C, s] -> x_w + U-Net(...)."""

    def __init__(self, cin=FEATS + 3, nc=(16, 32, 64)):
        super().__init__()
        self.head = nn.Conv2d(cin, nc[0], 3, padding=1, bias=False)
        self.down1 = nn.Sequential(Res(nc[0]), nn.Conv2d(nc[0], nc[1], 2, stride=2, bias=False))
        self.down2 = nn.Sequential(Res(nc[1]), nn.Conv2d(nc[1], nc[2], 2, stride=2, bias=False))
        self.body = nn.Sequential(Res(nc[2]), Res(nc[2]))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(nc[2], nc[1], 2, stride=2, bias=False), Res(nc[1]))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(nc[1], nc[0], 2, stride=2, bias=False), Res(nc[0]))
        self.tail = nn.Conv2d(nc[0], 1, 3, padding=1, bias=False)

    def forward(self, x):
        x1 = self.head(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.body(x3)
        y = self.up2(y + x3)
        y = self.up1(y + x2)
        return x[:, 1:2] + self.tail(y + x1)


class Deblur(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.dec = Decoder()
        # mu = exp(beta) s^2 + eps; exp(3) ~ 20 ~ 1 / (signal power of natural images)
        self.beta0 = nn.Parameter(torch.tensor(3.0))
        self.beta = nn.Parameter(torch.full((FEATS,), 1.0))

    def forward(self, y, k, s):
        """y [B,1,H,W], k [B,kh,kw] float64, s [B] float32 noise std; H, W multiples of 4."""
        b = y.shape[0]
        s2 = (s.double() ** 2)[:, None]
        smap = s.view(b, 1, 1, 1).expand_as(y)
        xw = wiener_reflect(y, k, torch.exp(self.beta0.double()) * s2 + EPS)
        f = self.enc(torch.cat([y, smap], 1))
        g = wiener_reflect(f, k, torch.exp(self.beta.double())[None] * s2 + EPS)
        return self.dec(torch.cat([y, xw, g, smap], 1)), xw


# ----------------------------------------------------------------------------- data
def degrade(rng, scene, k, peak, sig_g):
    """'valid' blur of scene (float64) by k, Poisson-Gaussian noise, saturation at 1."""
    from scipy.signal import fftconvolve
    b = np.maximum(fftconvolve(scene, k, mode="valid"), 0)
    if peak is None:
        y = b + sig_g * rng.standard_normal(b.shape)
        s2 = sig_g ** 2
    else:
        y = rng.poisson(b * peak) / peak + sig_g * rng.standard_normal(b.shape)
        s2 = np.mean(np.maximum(y, 0)) / peak + sig_g ** 2
    y = np.minimum(y, 1.0)
    return y.astype(np.float32), float(np.sqrt(s2))


def sample(rng, imgs, patch):
    big = patch + KS - 1
    im = imgs[rng.integers(len(imgs))]
    i = rng.integers(im.shape[0] - big + 1)
    j = rng.integers(im.shape[1] - big + 1)
    x = im[i:i + big, j:j + big].astype(np.float64)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    x = np.rot90(x, rng.integers(4)).copy()
    if rng.random() < 0.3:
        x = x * rng.uniform(1.0, 1.5)
        yy, xx = np.mgrid[:big, :big]
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, big, 2)
            w = rng.uniform(0.5, 1.5)
            x = x + rng.uniform(2, 8) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
    k = random_kernel(rng)
    if rng.random() < 0.2:
        peak, sg = None, rng.uniform(0.002, 0.08)
    else:
        peak, sg = float(np.exp(rng.uniform(np.log(30), np.log(3000)))), rng.uniform(0, 0.03)
    y, s = degrade(rng, x, k, peak, sg)
    r = KS // 2
    target = np.clip(x[r:r + patch, r:r + patch], 0, 1).astype(np.float32)
    return y, k, s, target


def batch(rng, imgs, n, patch):
    ys, ks, ss, ts = zip(*[sample(rng, imgs, patch) for _ in range(n)])
    return (torch.from_numpy(np.stack(ys)[:, None]), torch.from_numpy(np.stack(ks)),
            torch.tensor(ss, dtype=torch.float32), torch.from_numpy(np.stack(ts)[:, None]))


# ----------------------------------------------------------------------------- evaluation
def psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((x.astype(np.float64) - ref) ** 2)))


EVAL_LEVELS = {"low": (1000.0, 0.005), "high": (100.0, 0.01)}


def eval_kernels():
    return {"gaussian": gaussian_kernel(2.0, 2.0, 0.0),
            "motion": motion_kernel(np.random.default_rng(7), 13.0)}


def run_full(net, y, k, s):
    h, w = y.shape
    ph, pw = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    yt = torch.from_numpy(np.pad(y, ((0, ph - h), (0, pw - w)), mode="reflect"))[None, None]
    with torch.no_grad():
        out, xw = net(yt.float(), torch.from_numpy(k)[None], torch.tensor([s], dtype=torch.float32))
    return out[0, 0, :h, :w].numpy(), xw[0, 0, :h, :w].numpy()


def evaluate(net, crop=256, seed=0):
    """PSNR on the central crop x crop of the held-out images (16-pixel border excluded)."""
    rng = np.random.default_rng(seed)
    res = {}
    for name in TEST:
        clean = load(name).astype(np.float64)
        h, w = clean.shape
        big = crop + KS - 1
        i0, j0 = (h - big) // 2, (w - big) // 2
        scene = clean[i0:i0 + big, j0:j0 + big]
        r = KS // 2
        ref = scene[r:r + crop, r:r + crop]
        for kname, k in eval_kernels().items():
            for lname, (peak, sg) in EVAL_LEVELS.items():
                y, s = degrade(rng, scene, k, peak, sg)
                out, xw = run_full(net, y, k, s)
                b = 16
                sl = (slice(b, -b), slice(b, -b))
                res[f"{name}_{kname}_{lname}"] = {"observed": psnr(y[sl], ref[sl]),
                                                   "wiener_learned_balance": psnr(xw[sl], ref[sl]),
                                                   "learned": psnr(out[sl], ref[sl])}
    return res


# ----------------------------------------------------------------------------- export
def export(net, out_dir, meta):
    net.eval()
    enc_path = os.path.join(out_dir, "deblur_small_enc.onnx")
    dec_path = os.path.join(out_dir, "deblur_small_dec.onnx")
    dyn = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(net.enc, (torch.rand(1, 2, 32, 32),), enc_path, input_names=["x"],
                      output_names=["f"], dynamic_axes={"x": dyn, "f": dyn}, opset_version=17,
                      dynamo=False)
    torch.onnx.export(net.dec, (torch.rand(1, FEATS + 3, 32, 32),), dec_path, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": dyn, "y": dyn}, opset_version=17,
                      dynamo=False)
    import onnx
    for p in (enc_path, dec_path):
        onnx.save(onnx.load(p), p)  # inline any external data
    side = {"format": "sparseinv-infwide-lite", "version": 1, "features": FEATS,
            "beta_image": float(net.beta0.item()),
            "beta_features": [float(v) for v in net.beta.detach()],
            "eps": EPS, "multiple": MULTIPLE, "encoder": "deblur_small_enc.onnx",
            "decoder": "deblur_small_dec.onnx"}
    side.update(meta)
    with open(os.path.join(out_dir, "deblur_small.json"), "w") as f:
        json.dump(side, f, indent=1)
    print("wrote", enc_path, os.path.getsize(enc_path), dec_path, os.path.getsize(dec_path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models", "onnx"))
    ap.add_argument("--checkpoint", default="out/train/deblur_small.pt",
                    help="checkpoint file (its folder is created; out/ is git-ignored)")
    ap.add_argument("--export-only", action="store_true",
                    help="load --checkpoint, evaluate and export without training")
    ap.add_argument("--init", default=None,
                    help="continue from this checkpoint (weights and counters; fresh optimizer)")
    a = ap.parse_args()
    if os.path.dirname(a.checkpoint):
        os.makedirs(os.path.dirname(a.checkpoint), exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    net = Deblur()
    nparam = sum(p.numel() for p in net.parameters())
    print("parameters:", nparam, flush=True)
    it, train_s, losses = 0, 0.0, []
    if a.export_only:
        ck = torch.load(a.checkpoint)
        net.load_state_dict(ck["model"])
        it, train_s, losses = ck["it"], ck["train_s"], ck["losses"]
    else:
        prev_s = 0.0
        if a.init:
            ck = torch.load(a.init)
            net.load_state_dict(ck["model"])
            it, prev_s, losses = ck["it"], ck["train_s"], ck["losses"]
            rng = np.random.default_rng(a.seed + it)
            print(f"continuing from {a.init}: {it} iterations, {prev_s:.0f} s", flush=True)
        imgs = [load(n) for n in TRAIN]
        print("training images:", len(imgs), flush=True)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        t0 = time.time()
        budget = a.minutes * 60
        while time.time() - t0 < budget:
            y, k, s, x = batch(rng, imgs, a.batch, a.patch)
            out, _ = net(y, k, s)
            loss = (out - x).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            it += 1
            frac = (time.time() - t0) / budget
            for g in opt.param_groups:
                g["lr"] = a.lr * (0.5 * (1 + np.cos(np.pi * min(frac, 1.0))) * 0.95 + 0.05)
            if it % 50 == 0:
                train_s = prev_s + time.time() - t0
                print(f"it {it} t {train_s:.0f}s loss {np.mean(losses[-50:]):.5f} "
                      f"beta0 {net.beta0.item():.3f}", flush=True)
                torch.save({"model": net.state_dict(), "it": it, "train_s": train_s,
                            "losses": losses}, a.checkpoint)
        train_s = prev_s + time.time() - t0
        torch.save({"model": net.state_dict(), "it": it, "train_s": train_s, "losses": losses},
                   a.checkpoint)
    net.eval()
    ev = evaluate(net)
    print(json.dumps(ev, indent=1), flush=True)
    meta = {"iterations": it, "train_seconds": train_s, "threads": a.threads, "patch": a.patch,
            "batch": a.batch, "kernel_size": KS, "train_images": TRAIN, "test_images": TEST,
            "parameters": nparam, "final_loss": float(np.mean(losses[-100:])) if losses else None,
            "eval_psnr_db_python": ev, "eval_levels": {k: {"peak": v[0], "sigma_g": v[1]}
                                                       for k, v in EVAL_LEVELS.items()},
            "torch": torch.__version__}
    export(net, a.out_dir, meta)
    eval_dir = os.path.join(ROOT, "models", "eval")
    os.makedirs(eval_dir, exist_ok=True)
    for kname, k in eval_kernels().items():
        np.save(os.path.join(eval_dir, f"psf_{kname}.npy"), k)


if __name__ == "__main__":
    main()
