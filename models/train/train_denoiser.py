"""Train the small grayscale DRUNet-style denoiser shipped as models/onnx/denoiser_small.onnx.

    nice python models/train/train_denoiser.py --iters 40000 --threads 1

Data: the grayscale (or converted) images that ship inside scikit-image's `skimage.data`
module (TRAIN below) and the three training tiles of the NEON aerial RGB images bundled in the
`deepforest==2.1.0` wheel (`vble_data.py` fetches it with pip into an ignored cache; MIT
licence), as the mean of R, G, B at their native 10 cm. Held out for evaluation, never seen in
training: camera, coins and cell. Patches are drawn from an image with probability proportional
to the square root of its area. Noise: additive white Gaussian, sigma ~ U[0, 60/255] per patch,
intensities in [0, 1]. Adam, learning rate 1e-3 on a cosine schedule to 1e-6, L1 loss.
A fixed iteration count and seeds make the run reproducible (one thread); a checkpoint is saved
every 2000 iterations under out/ (ignored) and `--resume` continues from it.

Network: DRUNet-style U-Net (Zhang et al., "Plug-and-play image restoration with deep denoiser
prior", 2021), written here: input [N, 2, H, W] = (noisy image, noise-level map filled with
sigma), three levels with channels (16, 32, 64), residual blocks per stage BLOCKS = (1, 2, 2, 2,
1) (down 1, down 2, bottom, up 2, up 1), 2x2 strided convolutions down and transposed
convolutions up, additive skips, no biases; output [N, 1, H, W]. H and W must be multiples of 4
(sparseinv pads by reflection). The extra blocks sit at half and quarter resolution, so the
network costs about 1.6x the multiply-adds of the one-block version shipped before.

Evaluation (written to models/onnx/denoiser_small.json and models/README.md by hand): PSNR on
the held-out images at sigma = 15/255, 25/255 and 50/255 (fixed seed), against the noisy input and a
starlet (isotropic undecimated B3-spline wavelet) hard-thresholding denoiser at k = 3 sigma
(4 on the finest scale), implemented below in numpy.
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
from skimage import color, data, img_as_float

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = ["astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon", "page",
         "text", "hubble_deep_field", "immunohistochemistry", "retina", "clock"]
TEST = ["camera", "coins", "cell"]
BLOCKS = (1, 2, 2, 2, 1)


def load(name):
    im = img_as_float(getattr(data, name)())
    if im.ndim == 3:
        im = color.rgb2gray(im[..., :3])
    return im.astype(np.float32)


def aerial_tiles():
    """The training tiles of the deepforest wheel as grayscale in [0, 1] (native resolution)."""
    import vble_data
    return [(vble_data.read_rgb(n).astype(np.float64).mean(axis=2) / 255.0).astype(np.float32)
            for n in vble_data.TRAIN_TILES]


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.body(x)


class SmallDRUNet(nn.Module):
    def __init__(self, nc=(16, 32, 64), blocks=BLOCKS):
        super().__init__()
        b = blocks
        self.head = nn.Conv2d(2, nc[0], 3, padding=1, bias=False)
        self.down1 = nn.Sequential(*[Res(nc[0]) for _ in range(b[0])],
                                   nn.Conv2d(nc[0], nc[1], 2, stride=2, bias=False))
        self.down2 = nn.Sequential(*[Res(nc[1]) for _ in range(b[1])],
                                   nn.Conv2d(nc[1], nc[2], 2, stride=2, bias=False))
        self.body = nn.Sequential(*[Res(nc[2]) for _ in range(b[2])])
        self.up2 = nn.Sequential(nn.ConvTranspose2d(nc[2], nc[1], 2, stride=2, bias=False),
                                 *[Res(nc[1]) for _ in range(b[3])])
        self.up1 = nn.Sequential(nn.ConvTranspose2d(nc[1], nc[0], 2, stride=2, bias=False),
                                 *[Res(nc[0]) for _ in range(b[4])])
        self.tail = nn.Conv2d(nc[0], 1, 3, padding=1, bias=False)

    def forward(self, x):
        x1 = self.head(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.body(x3)
        y = self.up2(y + x3)
        y = self.up1(y + x2)
        return self.tail(y + x1)


def starlet_denoise(img, sigma, scales=4):
    """Hard thresholding of the starlet transform at k*sigma_j (k = 4 finest, 3 otherwise)."""
    h = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16.0
    noise_j = [0.8908, 0.2007, 0.0856, 0.0413, 0.0205]
    c = img.astype(np.float64)
    out = np.zeros_like(c)
    for j in range(scales):
        step = 2 ** j
        k = np.zeros(4 * step + 1)
        k[::step] = h
        pad = 2 * step
        s = np.pad(c, ((pad, pad), (0, 0)), mode="reflect")
        s = sum(k[i] * s[i:i + c.shape[0]] for i in range(len(k)) if k[i] != 0)
        s = np.pad(s, ((0, 0), (pad, pad)), mode="reflect")
        s = sum(k[i] * s[:, i:i + c.shape[1]] for i in range(len(k)) if k[i] != 0)
        w = c - s
        t = (4.0 if j == 0 else 3.0) * sigma * noise_j[j]
        out += np.where(np.abs(w) > t, w, 0.0)
        c = s
    return (out + c).astype(np.float32)


def psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((x.astype(np.float64) - ref) ** 2)))


def run_net(net, img, sigma):
    h, w = img.shape
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4
    u = np.pad(img, ((0, ph - h), (0, pw - w)), mode="reflect")
    inp = torch.from_numpy(np.stack([u, np.full_like(u, sigma)])[None])
    with torch.no_grad():
        return net(inp)[0, 0, :h, :w].numpy()


def evaluate(net, seed=0):
    rng = np.random.default_rng(seed)
    res = {}
    for name in TEST:
        clean = load(name)
        for s255 in (15, 25, 50):
            s = s255 / 255.0
            noisy = (clean + s * rng.standard_normal(clean.shape)).astype(np.float32)
            res[f"{name}_sigma{s255}"] = {
                "noisy": psnr(noisy, clean),
                "starlet": psnr(starlet_denoise(noisy, s), clean),
                "denoiser_small": psnr(run_net(net, noisy, s), clean),
            }
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=40000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma-max", type=float, default=60.0, help="noise range, in 1/255")
    ap.add_argument("--no-aerial", action="store_true", help="skimage.data images only")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    ap.add_argument("--ckpt", default=os.path.join(ROOT, "out", "denoiser_train", "ckpt.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "onnx", "denoiser_small.onnx"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    imgs = [load(n) for n in TRAIN]
    if not a.no_aerial:
        imgs += aerial_tiles()
    area = np.array([np.sqrt(im.size) for im in imgs])
    prob = area / area.sum()
    print("training images:", len(imgs), "pixels:", sum(im.size for im in imgs))
    net = SmallDRUNet()
    print("parameters:", sum(p.numel() for p in net.parameters()))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    it, train_s, losses = 0, 0.0, []
    if a.resume and os.path.exists(a.ckpt):
        ck = torch.load(a.ckpt, weights_only=False)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        it, train_s, losses = ck["it"], ck["train_s"], ck["losses"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print("resumed at iteration", it)
    os.makedirs(os.path.dirname(a.ckpt), exist_ok=True)
    t0 = time.time() - train_s
    smax = a.sigma_max / 255.0
    while it < a.iters:
        lr = 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + np.cos(np.pi * it / a.iters))
        for g in opt.param_groups:
            g["lr"] = lr
        batch, maps = [], []
        for _ in range(a.batch):
            im = imgs[rng.choice(len(imgs), p=prob)]
            i = rng.integers(im.shape[0] - a.patch + 1)
            j = rng.integers(im.shape[1] - a.patch + 1)
            p = im[i:i + a.patch, j:j + a.patch]
            if rng.random() < 0.5:
                p = p[:, ::-1]
            p = np.rot90(p, rng.integers(4))
            batch.append(np.ascontiguousarray(p))
            maps.append(rng.uniform(0, smax))
        clean = torch.from_numpy(np.stack(batch)[:, None])
        sig = torch.tensor(maps, dtype=torch.float32).view(-1, 1, 1, 1)
        noisy = clean + sig * torch.randn_like(clean)
        inp = torch.cat([noisy, sig.expand_as(noisy)], 1)
        loss = (net(inp) - clean).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % 500 == 0:
            print(f"it {it} t {time.time() - t0:.0f}s lr {lr:.2e} loss {np.mean(losses[-500:]):.5f}",
                  flush=True)
        if it % 2000 == 0 or it == a.iters:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "it": it,
                        "train_s": time.time() - t0, "losses": losses,
                        "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()},
                       a.ckpt)
    train_s = time.time() - t0
    net.eval()
    ev = evaluate(net)
    print(json.dumps(ev, indent=1))
    x = torch.rand(1, 2, 32, 32)
    torch.onnx.export(net, (x,), a.out, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    import onnx
    onnx.save(onnx.load(a.out), a.out)
    meta = {"iterations": it, "train_seconds": train_s, "threads": a.threads, "patch": a.patch,
            "batch": a.batch, "sigma_max_255": a.sigma_max, "blocks": list(BLOCKS),
            "train_images": TRAIN + ([] if a.no_aerial else ["deepforest training tiles"]),
            "test_images": TEST, "parameters": sum(p.numel() for p in net.parameters()),
            "final_loss": float(np.mean(losses[-500:])), "eval_psnr_db": ev,
            "torch": torch.__version__, "multiple": 4}
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", a.out, os.path.getsize(a.out), "bytes")


if __name__ == "__main__":
    main()
