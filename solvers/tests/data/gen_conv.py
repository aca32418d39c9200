"""Reference values for solvers/tests/conv2d_scipy.rs.

Generates a 16x20 test image and two kernels (5x5 odd, 4x6 even) with a fixed seed and
writes, under conv/:
  x.npy, k55.npy, k46.npy                      inputs (float64)
  {k}_same.npy, {k}_full.npy, {k}_valid.npy     scipy.signal.fftconvolve(x, k, mode=...)
  {k}_reflect.npy, {k}_wrap.npy                 scipy.ndimage.convolve(x, k, mode=...)
  xc.npy, kc.npy, kc_full.npy, kc_same.npy      complex128 inputs and fftconvolve outputs

Run with:  python solvers/tests/data/gen_conv.py   (numpy, scipy)
"""
import os

import numpy as np
from scipy import ndimage, signal

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv")
os.makedirs(here, exist_ok=True)
rng = np.random.default_rng(20240607)


def save(name, a):
    np.save(os.path.join(here, name + ".npy"), np.ascontiguousarray(a))


x = rng.standard_normal((16, 20))
save("x", x)
kernels = {"k55": rng.standard_normal((5, 5)), "k46": rng.standard_normal((4, 6))}
for name, k in kernels.items():
    save(name, k)
    for mode in ("same", "full", "valid"):
        save(f"{name}_{mode}", signal.fftconvolve(x, k, mode=mode))
    for mode in ("reflect", "wrap"):
        save(f"{name}_{mode}", ndimage.convolve(x, k, mode=mode))

xc = rng.standard_normal((16, 20)) + 1j * rng.standard_normal((16, 20))
kc = rng.standard_normal((5, 5)) + 1j * rng.standard_normal((5, 5))
save("xc", xc)
save("kc", kc)
save("kc_full", signal.fftconvolve(xc, kc, mode="full"))
save("kc_same", signal.fftconvolve(xc, kc, mode="same"))
print("wrote", sorted(os.listdir(here)))
