"""Reference values for solvers/src/metrics.rs, computed with scikit-image and numpy.

Run from the repository root:
    .venv/bin/python solvers/tests/data/gen_metrics.py
Writes solvers/tests/data/metrics_*.npy (inputs and expected outputs, layout described at the
end of this script), which the Rust test solvers/tests/metrics.rs reads. The Rust tests never run Python.
"""
import os

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

rng = np.random.default_rng(20261125)


def smooth_image(shape):
    """A structured test image: a few Gaussian blobs plus a ramp."""
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    img = 0.1 * grids[-1] / shape[-1]
    for _ in range(4):
        c = [rng.uniform(0, n) for n in shape]
        s = rng.uniform(1.5, 4.0)
        r2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        img = img + rng.uniform(0.3, 1.0) * np.exp(-r2 / (2 * s * s))
    return img


cases = []


def add_case(name, truth, estimate, data_range, ssim_too=True):
    truth = np.asarray(truth, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    case = {
        "name": name,
        "shape": list(truth.shape),
        "truth": truth,
        "estimate": estimate,
        "data_range": data_range,
        "mse": float(np.mean((estimate - truth) ** 2)),
        "psnr": float(peak_signal_noise_ratio(truth, estimate, data_range=data_range)),
        "nmse": float(np.sum((estimate - truth) ** 2) / np.sum(truth ** 2)),
    }
    case["nmse_db"] = float(10 * np.log10(case["nmse"]))
    if ssim_too:
        # scikit-image defaults: 7-wide uniform window, sample covariance, K1=0.01, K2=0.03.
        case["ssim_uniform7"] = float(
            structural_similarity(truth, estimate, data_range=data_range)
        )
        # Wang et al. (2004) settings: Gaussian window sigma 1.5 (11 taps), population covariance.
        case["ssim_gaussian"] = float(
            structural_similarity(
                truth,
                estimate,
                data_range=data_range,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        )
        if min(truth.shape) >= 9:
            case["ssim_uniform9"] = float(
                structural_similarity(truth, estimate, data_range=data_range, win_size=9)
            )
    cases.append(case)


t = smooth_image((24, 20))
add_case("image_noisy", t, t + 0.05 * rng.standard_normal(t.shape), 1.0)
add_case("image_biased", t, 0.8 * t + 0.1, 2.0)
t8 = np.round(255 * smooth_image((16, 17)) / 2.0)
add_case("image_8bit_scale", t8, np.clip(t8 + rng.integers(-20, 21, t8.shape), 0, 255), 255.0)
tv = smooth_image((11, 12, 13))
add_case("volume_3d", tv, tv + 0.1 * rng.standard_normal(tv.shape), 1.5)
sig = rng.standard_normal(50)
add_case("vector_1d", sig, sig + 0.2 * rng.standard_normal(50), 6.0, ssim_too=False)

# Complex NMSE (channel estimation): numpy reference.
h = rng.standard_normal(30) + 1j * rng.standard_normal(30)
he = h + 0.1 * (rng.standard_normal(30) + 1j * rng.standard_normal(30))
complex_nmse = float(np.sum(np.abs(he - h) ** 2) / np.sum(np.abs(h) ** 2))

# Output: .npy files (read by the Rust test with ndarray-npy).
#   metrics_<name>_truth.npy / metrics_<name>_estimate.npy : float64 inputs, original shape
#   metrics_expected.npy : float64 [n_cases, len(COLUMNS)], NaN where not applicable,
#                          rows in the order of CASE_NAMES below
#   metrics_complex_{truth,estimate}.npy : complex128 [30]; metrics_complex_expected.npy : [nmse]
COLUMNS = ["data_range", "mse", "psnr", "nmse", "nmse_db",
           "ssim_uniform7", "ssim_gaussian", "ssim_uniform9"]
here = os.path.dirname(os.path.abspath(__file__))
table = np.full((len(cases), len(COLUMNS)), np.nan)
for i, c in enumerate(cases):
    np.save(os.path.join(here, f"metrics_{c['name']}_truth.npy"), c["truth"])
    np.save(os.path.join(here, f"metrics_{c['name']}_estimate.npy"), c["estimate"])
    for j, k in enumerate(COLUMNS):
        if k in c:
            table[i, j] = c[k]
np.save(os.path.join(here, "metrics_expected.npy"), table)
np.save(os.path.join(here, "metrics_complex_truth.npy"), h)
np.save(os.path.join(here, "metrics_complex_estimate.npy"), he)
np.save(os.path.join(here, "metrics_complex_expected.npy"), np.array([complex_nmse]))
print("numpy", np.__version__, "scikit-image", skimage.__version__)
print("CASE_NAMES =", [c["name"] for c in cases])
print(table)
