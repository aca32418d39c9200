"""Check the exported VBLE-xz graphs (export_vble.py) with onnxruntime, and write the fixture
of the Rust tests.

    python models/train/check_vble_graphs.py [--checkpoint target/vble/vble_small.pt]

1. Finite differences of the forward graphs against the VJP graphs, (a) in float64: the
   graphs converted to float64 (same ops and weights) and run by onnx.reference's evaluator,
   since onnxruntime's CPU Conv has no float64 kernel; pass if < --tol64; (b) in float32 with
   onnxruntime (informative: leaky-ReLU kinks spoil steps >= 1e-4 and float32 rounding the
   smaller ones, so errors of 1e-3..1e-1 are expected there); (c) float32 onnxruntime outputs
   against the float64 evaluation (pass if < --tol32). At latents of a held-out image (SOAP_061) plus uniform noise U(-1/2, 1/2) (what VBLE
   samples), along random Gaussian directions d:
   - decode_vjp: f(z) = <g_mean, x_mean(z)> + <g_sigma, sigma(z)> from vble_decode.onnx,
     central 4th-order difference [-f(2e) + 8f(e) - 8f(-e) + f(-2e)] / 12e (sums in float64),
     against <dz, d>;
   - rate: f(z, h) = rate from vble_rate.onnx, along (d_z, 0), (0, d_h) and (d_z, d_h), against
     <drate_dz, d_z> + <drate_dh, d_h>.
   Relative error |fd - vjp| / |vjp|, for several steps e (the smallest error counts).
2. With --checkpoint (default target/vble/vble_small.pt, skipped if missing): the graphs'
   outputs against torch autograd of the training model (vble_net.VbleNet) in float64, and the
   hand-written torch VJP modules against autograd in float64 (this isolates the formulas from
   float32 rounding).
3. Writes models/tests/data/vble_fixture.json: a 16x32 held-out crop x, z = encode(x).z + u,
   h = encode(x).h + u' (u, u' uniform, seed 3), cotangents g_mean, g_sigma, directions d_z,
   d_h, and every graph's onnxruntime outputs on them (float32 values, row-major, with shapes),
   plus the directional derivatives <dz, d_z>, <drate_dz, d_z> + <drate_dh, d_h>.
Exit status 1 if (a) or (c) fails.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vble_data  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def to_double(model):
    """The same ONNX graph with every float32 tensor (initializers, constants, inputs,
    outputs) in float64, for onnx.reference.ReferenceEvaluator (onnxruntime's CPU Conv and
    ConvTranspose have no float64 kernels)."""
    import onnx
    from onnx import TensorProto, numpy_helper
    g = model.graph
    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t).astype(np.float64), t.name))
    for n in g.node:
        for at in n.attribute:
            if at.type == onnx.AttributeProto.TENSOR and at.t.data_type == TensorProto.FLOAT:
                at.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(at.t).astype(np.float64), at.t.name))
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    del g.value_info[:]
    return model


class Graphs:
    """The four graphs, run by onnxruntime in float32 (as shipped) or, with double=True, by
    the ONNX reference evaluator after conversion to float64."""

    def __init__(self, d, double=False):
        self.dt = np.float64 if double else np.float32
        if double:
            import onnx
            from onnx.reference import ReferenceEvaluator

            def mk(f):
                return ReferenceEvaluator(to_double(onnx.load(os.path.join(d, f))))
        else:
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1

            def mk(f):
                return ort.InferenceSession(os.path.join(d, f), so,
                                            providers=["CPUExecutionProvider"])
        self.enc = mk("vble_encode.onnx")
        self.dec = mk("vble_decode.onnx")
        self.vjp = mk("vble_decode_vjp.onnx")
        self.rt = mk("vble_rate.onnx")

    def _c(self, v):
        return np.asarray(v).astype(self.dt)

    def encode(self, x):
        return self.enc.run(None, {"x": self._c(x)})

    def decode(self, z):
        return self.dec.run(None, {"z": self._c(z)})

    def decode_vjp(self, z, gm, gs):
        return self.vjp.run(None, {"z": self._c(z), "g_mean": self._c(gm),
                                   "g_sigma": self._c(gs)})[0]

    def rate(self, z, h):
        r, gz, gh = self.rt.run(None, {"z": self._c(z), "h": self._c(h)})
        return float(np.asarray(r).ravel()[0]), gz, gh


def fd(f, e):
    return (-f(2 * e) + 8 * f(e) - 8 * f(-e) + f(-2 * e)) / (12 * e)


def fd_checks(G, x, z0, h0, steps, trials):
    """Directional finite differences of the forward graphs against the VJP graphs."""
    rng = np.random.default_rng(0)
    worst = {}

    def report(name, errs):
        best = min(errs.values())
        worst[name] = max(worst.get(name, 0.0), best)
        print(f"  {name:24s} " + "  ".join(f"e={e:g}: {r:.1e}" for e, r in errs.items()))

    for trial in range(trials):
        z = z0 + rng.uniform(-0.5, 0.5, z0.shape)
        h = h0 + rng.uniform(-0.5, 0.5, h0.shape)
        gm = rng.standard_normal(x.shape)
        gs = rng.standard_normal(x.shape)
        d_z = rng.standard_normal(z.shape)
        d_h = rng.standard_normal(h.shape)
        for lbl, cm, cs in (("decode_vjp", gm, gs), ("decode_vjp (g_sigma=0)", gm, 0 * gs),
                            ("decode_vjp (g_mean=0)", 0 * gm, gs)):
            an = float(np.sum(np.asarray(G.decode_vjp(z, cm, cs), np.float64) * d_z))

            def f(e):
                m, s = G.decode(z + e * d_z)
                return float(np.sum(cm * m) + np.sum(cs * s))
            report(lbl, {e: abs(fd(f, e) - an) / abs(an) for e in steps})
        _, gz, gh = G.rate(z, h)
        for lbl, dz_, dh_ in (("rate, d_z", d_z, 0 * d_h), ("rate, d_h", 0 * d_z, d_h),
                              ("rate, (d_z, d_h)", d_z, d_h)):
            an = float(np.sum(np.asarray(gz, np.float64) * dz_) + np.sum(np.asarray(gh, np.float64) * dh_))

            def f(e):
                return G.rate(z + e * dz_, h + e * dh_)[0]
            report(lbl, {e: abs(fd(f, e) - an) / abs(an) for e in steps})
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx-dir", default=os.path.join(ROOT, "models", "onnx"))
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "target", "vble", "vble_small.pt"))
    ap.add_argument("--cache", default=vble_data.DEFAULT_CACHE)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "models", "tests", "data",
                                                      "vble_fixture.json"))
    ap.add_argument("--tol64", type=float, default=5e-5,
                    help="float64 FD tolerance (the rate VJP differentiates the exact normal"
                         " density, the forward a 1.2e-7 erfc fit: ~1e-5 apart)")
    ap.add_argument("--tol32", type=float, default=1e-5,
                    help="tolerance of float32 onnxruntime against the float64 graphs")
    ap.add_argument("--trials", type=int, default=3)
    a = ap.parse_args()
    G = Graphs(a.onnx_dir)
    G64 = Graphs(a.onnx_dir, double=True)
    img = vble_data.load("SOAP_061", a.cache)
    x = img[48:80, 48:80][None, None].astype(np.float32)
    z0, h0 = G.encode(x)
    ok = True
    for label, GG, steps, tol in (
            ("float64 (ONNX reference evaluator on the float64 copy of each graph)", G64,
             [1e-6, 1e-5, 1e-4], a.tol64),
            ("float32 (onnxruntime, the shipped graphs; informative: leaky-ReLU kinks spoil "
             "steps >= 1e-4, see the float64 rows, and float32 rounding smaller ones)", G,
             [3e-3, 1e-2, 3e-2], None)):
        print(f"finite differences, {label}: relative error |fd - vjp| / |vjp| per step e")
        worst = fd_checks(GG, x, z0, h0, steps, a.trials)
        print(f"  worst over {a.trials} trials of the best-step errors: "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
              + (f"  (tol {tol:g})" if tol else ""))
        if tol:
            ok &= all(v < tol for v in worst.values())

    # float32 onnxruntime against the float64 evaluation of the same graphs
    rng = np.random.default_rng(1)
    z = z0 + rng.uniform(-0.5, 0.5, z0.shape)
    h = h0 + rng.uniform(-0.5, 0.5, h0.shape)
    gm, gs = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    rel = lambda u, v: float(np.abs(np.asarray(u, np.float64) - v).max() / np.abs(v).max())  # noqa: E731
    e32, e64 = G.encode(x), G64.encode(x)
    d32, d64 = G.decode(z), G64.decode(z)
    r32, r64 = G.rate(z, h), G64.rate(z, h)
    errs = {"encode z": rel(e32[0], e64[0]), "encode h": rel(e32[1], e64[1]),
            "x_mean": rel(d32[0], d64[0]), "sigma": rel(d32[1], d64[1]),
            "decode_vjp": rel(G.decode_vjp(z, gm, gs), G64.decode_vjp(z, gm, gs)),
            "rate": abs(r32[0] - r64[0]) / abs(r64[0]), "drate_dz": rel(r32[1], r64[1]),
            "drate_dh": rel(r32[2], r64[2])}
    print("float32 onnxruntime vs float64 evaluation of the same graphs (max abs err / max abs): "
          + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()) + f"  (tol {a.tol32:g})")
    ok &= all(v < a.tol32 for v in errs.values())

    if os.path.exists(a.checkpoint):
        check_torch(a, G, x, z0, h0, rng)
    else:
        print("no checkpoint at", a.checkpoint, "- torch autograd comparison skipped")

    write_fixture(a, G, img)
    print("check", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


def check_torch(a, G, x, z0, h0, rng):
    import torch
    from export_vble import load_net
    from vble_net import DecodeVJP, RateWithGrad
    torch.set_num_threads(1)
    net, _ = load_net(a.checkpoint)
    net = net.double()
    z = torch.tensor(z0 + rng.uniform(-0.5, 0.5, z0.shape), dtype=torch.float64, requires_grad=True)
    h = torch.tensor(h0 + rng.uniform(-0.5, 0.5, h0.shape), dtype=torch.float64, requires_grad=True)
    gm = torch.randn(x.shape, dtype=torch.float64)
    gs = torch.randn(x.shape, dtype=torch.float64)
    m, s = net.g_s(z)
    (m * gm + s * gs).sum().backward()
    dz_auto = z.grad.detach().clone()
    z.grad = None
    r = net.rate(z, h)
    r.backward()
    gz_auto, gh_auto = z.grad.detach().clone(), h.grad.detach().clone()
    with torch.no_grad():
        dz_mod = DecodeVJP(net)(z, gm, gs)
        r_mod, gz_mod, gh_mod = RateWithGrad(net)(z, h)
    rel = lambda u, v: float((u - v).abs().max() / v.abs().max())  # noqa: E731
    print("torch float64: hand-written VJP modules vs autograd (max abs err / max abs):")
    print(f"  decode_vjp {rel(dz_mod, dz_auto):.1e}; rate {abs(r_mod.item() - r.item()) / abs(r.item()):.1e},"
          f" drate_dz {rel(gz_mod, gz_auto):.1e}, drate_dh {rel(gh_mod, gh_auto):.1e}"
          "  (the VJP differentiates the exact normal density; the forward uses a 1.2e-7"
          " accurate erfc fit)")
    zn, hn = z.detach().numpy(), h.detach().numpy()
    dz_onnx = G.decode_vjp(zn, gm.numpy(), gs.numpy())
    r_onnx, gz_onnx, gh_onnx = G.rate(zn, hn)
    m_onnx, s_onnx = G.decode(zn)
    ze, he = G.encode(x)
    with torch.no_grad():
        xt = torch.tensor(x, dtype=torch.float64)
        ze_t = net.g_a(xt)
        he_t = net.h_a(ze_t)
    T = lambda t: torch.from_numpy(np.asarray(t, np.float64))  # noqa: E731
    print("float32 onnxruntime graphs vs torch float64 autograd / forward (max abs err / max abs):")
    print(f"  encode z {rel(T(ze), ze_t):.1e}, h {rel(T(he), he_t):.1e}; decode x_mean "
          f"{rel(T(m_onnx), m.detach()):.1e}, sigma {rel(T(s_onnx), s.detach()):.1e}")
    print(f"  decode_vjp {rel(T(dz_onnx), dz_auto):.1e}; rate {abs(r_onnx - r.item()) / abs(r.item()):.1e},"
          f" drate_dz {rel(T(gz_onnx), gz_auto):.1e}, drate_dh {rel(T(gh_onnx), gh_auto):.1e}")


def write_fixture(a, G, img):
    rng = np.random.default_rng(3)
    x = img[40:56, 48:80][None, None].astype(np.float32).copy()
    ze, he = G.encode(x)
    z = (ze + rng.uniform(-0.5, 0.5, ze.shape)).astype(np.float32)
    h = (he + rng.uniform(-0.5, 0.5, he.shape)).astype(np.float32)
    gm = rng.standard_normal(x.shape).astype(np.float32)
    gs = rng.standard_normal(x.shape).astype(np.float32)
    d_z = rng.standard_normal(z.shape).astype(np.float32)
    d_h = rng.standard_normal(h.shape).astype(np.float32)
    xm, sg = G.decode(z)
    dz = G.decode_vjp(z, gm, gs)
    r, gz, gh = G.rate(z, h)

    def arr(v):
        v = np.asarray(v, np.float32)
        return {"shape": list(v.shape), "data": [float(f"{t:.9g}") for t in v.ravel()]}
    fx = {
        "description": "VBLE-xz graphs (models/onnx/vble_*.onnx) on fixed inputs, outputs from "
                       "Python onnxruntime (models/train/check_vble_graphs.py); float32, row-major",
        "inputs": {"x": arr(x), "z": arr(z), "h": arr(h), "g_mean": arr(gm), "g_sigma": arr(gs),
                   "d_z": arr(d_z), "d_h": arr(d_h)},
        "encode": {"z": arr(ze), "h": arr(he)},
        "decode": {"x_mean": arr(xm), "sigma": arr(sg)},
        "decode_vjp": {"dz": arr(dz)},
        "rate": {"rate": arr([r]), "drate_dz": arr(gz), "drate_dh": arr(gh)},
        "directional": {
            "decode_vjp_dot_d_z": float(np.sum(dz.astype(np.float64) * d_z)),
            "rate_grad_dot_d": float(np.sum(gz.astype(np.float64) * d_z)
                                     + np.sum(gh.astype(np.float64) * d_h)),
        },
    }
    os.makedirs(os.path.dirname(a.fixture), exist_ok=True)
    with open(a.fixture, "w") as f:
        json.dump(fx, f, separators=(",", ":"))
    print("wrote", a.fixture, os.path.getsize(a.fixture), "bytes")


if __name__ == "__main__":
    main()
