"""Train the small hyperprior autoencoder + sigma_theta decoder used by VBLE-xz
(Biquard et al. 2024, arXiv:2412.04130) on satellite-like panchromatic images.

    python models/train/train_vble.py --iters 4250 2150 --threads 1 --batch 16 \
        --checkpoint target/vble/vble_small.pt

(--iters fixes the iteration counts of the two stages, so the run is reproducible on one
machine; --minutes M instead gives a wall-time budget.)

Data: `vble_data.py` (deepforest wheel tiles, panchromatic, Gaussian PSF, x3 block mean, [0, 1]);
training tiles only; random CROP x CROP crops (multiple of 16) with random flips and 90-degree
rotations; seeded (numpy and torch, --seed).

Network and entropy model: `vble_net.py`.

Training, two stages in one run (the split is --sigma-frac of the wall-time budget):
1. rate-distortion: loss = rate / (num pixels ln 2) [bits per pixel] + LAMBDA * 255^2 * MSE(x, g_s(z~))
   with the uniform-noise relaxation z~ = z + U(-1/2, 1/2), h~ = h + U(-1/2, 1/2),
   rate = -log p(z~ | h~) - log p(h~); Adam, learning rate --lr with cosine decay;
2. sigma_theta: everything frozen except the sigma head, loss = Gaussian NLL per pixel of x
   under N(g_s(z~), sigma_theta(z~)^2), z~ noisy as above (so sigma_theta describes the
   decoder's error at the latent perturbations VBLE's uniform posterior produces).

Held-out evaluation (printed and stored in the checkpoint): on SOAP_061 and the YELL_541000
crop (cropped to multiples of 16), PSNR of g_s(round(g_a(x))) and bits per pixel of the
discrete latents (round(z), round(h)) under the entropy model; and the calibration of sigma:
RMS error / RMS sigma at noisy latents.
"""

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vble_data  # noqa: E402
from vble_net import STRIDE, VbleNet, gauss_lik, logistic_lik, LIK_EPS  # noqa: E402


def hardware():
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def crops(images, rng, n, size):
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        im = images[rng.integers(len(images))]  # the pool repeats tiles by area
        r = rng.integers(im.shape[0] - size + 1)
        c = rng.integers(im.shape[1] - size + 1)
        p = im[r:r + size, c:c + size]
        if rng.random() < 0.5:
            p = p[:, ::-1]
        if rng.random() < 0.5:
            p = p[::-1, :]
        p = np.rot90(p, rng.integers(4))
        out[i, 0] = p
    return torch.from_numpy(out)


def discrete_eval(net, images):
    """PSNR of g_s(round(z)), bpp of (round(z), round(h)), and error / sigma statistics."""
    res = []
    with torch.no_grad():
        for name, im in images:
            H, W = (im.shape[0] // STRIDE) * STRIDE, (im.shape[1] // STRIDE) * STRIDE
            x = torch.from_numpy(im[:H, :W].copy())[None, None]
            z = net.g_a(x)
            zq = torch.round(z)
            hq = torch.round(net.h_a(z))
            mu, s = net.h_s(hq)
            m, t = net.h_params()
            bits = (-torch.log2(gauss_lik(zq, mu, s) + LIK_EPS)).sum() \
                + (-torch.log2(logistic_lik(hq, m, t) + LIK_EPS)).sum()
            xm, _ = net.g_s(zq)
            mse = ((xm - x) ** 2).mean().item()
            g = torch.Generator().manual_seed(1)
            zn = z + torch.rand(z.shape, generator=g) - 0.5
            xn, sg = net.g_s(zn)
            rms_err = ((xn - x) ** 2).mean().sqrt().item()
            rms_sig = (sg ** 2).mean().sqrt().item()
            cover = ((xn - x).abs() <= 1.6449 * sg).float().mean().item()
            res.append(dict(tile=name, shape=[H, W], psnr_db=10 * math.log10(1.0 / mse),
                            bpp=bits.item() / (H * W), noisy_latent_rms_err=rms_err,
                            noisy_latent_rms_sigma=rms_sig, noisy_latent_cover90=cover))
    return res



def stage_progress(done, iters, elapsed, budget):
    """Fraction of a training stage done: `done / iters` with a fixed iteration count, else
    `elapsed / budget` (seconds); None once the stage is over."""
    if iters is not None:
        return None if done >= iters else done / iters
    return None if elapsed >= budget else elapsed / budget


def cosine_lr(base, frac):
    """Cosine-annealed learning rate from `base` (frac = 0) down to 1e-5 (frac = 1)."""
    return 1e-5 + 0.5 * (base - 1e-5) * (1 + math.cos(math.pi * frac))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0,
                    help="wall-time budget of training (ignored with --iters)")
    ap.add_argument("--iters", type=int, nargs=2, default=None, metavar=("RD", "SIGMA"),
                    help="fixed iteration counts of the two stages (reproducible; the learning "
                         "rate schedules then follow the iteration count, not the clock)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lmbda", type=float, default=0.05, help="distortion weight (255^2 MSE)")
    ap.add_argument("--sigma-frac", type=float, default=0.2,
                    help="fraction of the budget for the sigma_theta stage")
    ap.add_argument("--channels", type=int, nargs=3, default=[48, 32, 24], metavar=("C", "M", "Ch"))
    ap.add_argument("--cache", default=vble_data.DEFAULT_CACHE)
    ap.add_argument("--checkpoint", required=True, help="output .pt path")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train = vble_data.train_images(a.cache)
    held = [(n, vble_data.load(n, a.cache)) for n in vble_data.HELDOUT_TILES]
    # sample tiles proportionally to area: repeat the big tile in the list
    areas = [im.size for im in train]
    weights = [max(1, round(ar / min(areas))) for ar in areas]
    pool = [im for im, w in zip(train, weights) for _ in range(w)]
    print("training tiles", vble_data.TRAIN_TILES, "pool weights", weights, flush=True)

    net = VbleNet(*a.channels)
    nparam = sum(p.numel() for p in net.parameters())
    print(f"parameters {nparam}; hardware {hardware()}; threads {a.threads}", flush=True)

    budget = a.minutes * 60.0
    t_rd = budget * (1.0 - a.sigma_frac)
    sig_params = list(net.gs_sig.parameters())
    sig_ids = {id(p) for p in sig_params}
    rd_params = [p for p in net.parameters() if id(p) not in sig_ids]
    opt = torch.optim.Adam(rd_params, lr=a.lr)
    t0 = time.time()
    it = 0
    npix = a.batch * a.crop * a.crop
    hist = []
    while True:
        el = time.time() - t0
        frac = stage_progress(it, a.iters[0] if a.iters else None, el, t_rd)
        if frac is None:
            break
        lr = cosine_lr(a.lr, frac)
        for g in opt.param_groups:
            g["lr"] = lr
        x = crops(pool, rng, a.batch, a.crop)
        z = net.g_a(x)
        h = net.h_a(z)
        zt = z + torch.rand_like(z) - 0.5
        ht = h + torch.rand_like(h) - 0.5
        rz, rh = net.rate_terms(zt, ht)
        bpp = (rz.sum() + rh.sum()) / (npix * math.log(2))
        xm, _ = net.g_s(zt)
        mse = ((xm - x) ** 2).mean()
        loss = bpp + a.lmbda * 255 ** 2 * mse
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rd_params, 5.0)
        opt.step()
        it += 1
        hist.append((loss.item(), bpp.item(), 10 * math.log10(1 / max(mse.item(), 1e-12))))
        if it % 100 == 0:
            h_ = np.array(hist[-100:]).mean(0)
            print(f"[rd] it {it} t {el:.0f}s lr {lr:.2e} loss {h_[0]:.4f} bpp {h_[1]:.3f} "
                  f"psnr(noisy z) {h_[2]:.2f}", flush=True)
    it_rd = it
    t_rd_real = time.time() - t0

    # stage 2: sigma head only
    for p in rd_params:
        p.requires_grad_(False)
    opt2 = torch.optim.Adam(sig_params, lr=a.lr)
    hist2 = []
    t1 = time.time()
    t_sig = budget - t_rd_real
    while True:
        el = time.time() - t1
        frac = stage_progress(it - it_rd, a.iters[1] if a.iters else None, el, t_sig)
        if frac is None:
            break
        lr = cosine_lr(a.lr, frac)
        for g in opt2.param_groups:
            g["lr"] = lr
        x = crops(pool, rng, a.batch, a.crop)
        with torch.no_grad():
            z = net.g_a(x)
            zt = z + torch.rand_like(z) - 0.5
            f = net.g_s_feat(zt)
            xm = net.gs_mean(f)
        sg = torch.sigmoid(net.gs_sig(f)) + 2e-4
        nll = (0.5 * ((x - xm) / sg) ** 2 + torch.log(sg)).mean() + 0.5 * math.log(2 * math.pi)
        opt2.zero_grad()
        nll.backward()
        opt2.step()
        it += 1
        hist2.append(nll.item())
        if (it - it_rd) % 100 == 0:
            print(f"[sigma] it {it - it_rd} t {time.time() - t0:.0f}s nll/pixel "
                  f"{np.mean(hist2[-100:]):.4f}", flush=True)
    train_s = time.time() - t0
    for p in net.parameters():
        p.requires_grad_(True)

    ev = discrete_eval(net, held)
    for r in ev:
        print(f"held-out {r['tile']} {r['shape']}: PSNR {r['psnr_db']:.2f} dB, {r['bpp']:.3f} bpp, "
              f"noisy-latent rms err {r['noisy_latent_rms_err']:.4f} vs rms sigma "
              f"{r['noisy_latent_rms_sigma']:.4f}, |err|<=1.645 sigma: {r['noisy_latent_cover90']:.3f}")
    print(f"training time {train_s:.0f} s ({it_rd} rate-distortion + {it - it_rd} sigma iterations)")
    record = dict(
        train_seconds=train_s, schedule="iterations" if a.iters else "wall time",
        rd_iterations=it_rd, sigma_iterations=it - it_rd,
        hardware=hardware(), threads=a.threads, load_average=list(os.getloadavg()),
        torch=torch.__version__, seed=a.seed, batch=a.batch, crop=a.crop, lr=a.lr,
        lmbda=a.lmbda, sigma_frac=a.sigma_frac, parameters=nparam,
        train_tiles=vble_data.TRAIN_TILES, heldout_tiles=vble_data.HELDOUT_TILES,
        final_rd_loss=float(np.mean([h[0] for h in hist[-200:]])),
        final_train_bpp_noisy=float(np.mean([h[1] for h in hist[-200:]])),
        final_sigma_nll=float(np.mean(hist2[-200:])) if hist2 else None,
        heldout=ev,
        command="python models/train/train_vble.py " + " ".join(sys.argv[1:]),
    )
    os.makedirs(os.path.dirname(os.path.abspath(a.checkpoint)), exist_ok=True)
    torch.save(dict(state_dict=net.state_dict(), channels=a.channels, record=record), a.checkpoint)
    print("saved", a.checkpoint)


if __name__ == "__main__":
    main()
