#!/usr/bin/env python3
"""Reference SSIM/PSNR values for amgpu's ImageQuality (Tests/GPUEngineTests/Fixtures/ssim/).

Writes deterministic pairs of 8-bit RGB PNGs (synthetic, seeded) and reference.json with the values of
scikit-image, the established implementation amgpu matches:

    structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                          use_sample_covariance=False, data_range=255)   # Wang et al. 2004 settings
    peak_signal_noise_ratio(a, b, data_range=255)

Run once with the project venv and commit the output:
    ~/.cache/amgpu/venv/bin/pip install scikit-image
    ~/.cache/amgpu/venv/bin/python scripts/tools/ssim_fixtures.py Tests/GPUEngineTests/Fixtures/ssim
"""
import json
import os
import sys

import numpy as np
import skimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def smooth(rng, h, w):
    """A smooth photo-like image: low-frequency colour gradients plus blobs."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.02, 0.15), rng.uniform(0.02, 0.15), rng.uniform(0, 6.3)
        img[..., c] = 128 + 70 * np.sin(fx * x + fy * y + ph)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(h, w) / 3)
        colour = rng.uniform(-90, 90, size=3)
        img += colour * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def perturb(rng, a, eps, kind):
    if kind == "sign":      # an L∞ sign pattern, like FGSM/PGD
        d = eps * rng.choice([-1, 0, 1], size=a.shape)
    elif kind == "uniform":
        d = rng.integers(-eps, eps + 1, size=a.shape)
    elif kind == "smooth":  # a low-frequency perturbation, like AM+TV
        h, w, _ = a.shape
        y, x = np.mgrid[0:h, 0:w]
        d = np.round(eps * np.sin(0.2 * x[..., None] + 0.13 * y[..., None] + np.arange(3)))
    else:
        raise ValueError(kind)
    return np.clip(a.astype(np.int64) + d, 0, 255).astype(np.uint8)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261127)
    cases = []

    def add(name, a, b, note):
        pa, pb = f"{name}_a.png", f"{name}_b.png"
        Image.fromarray(a, "RGB").save(os.path.join(out_dir, pa))
        Image.fromarray(b, "RGB").save(os.path.join(out_dir, pb))
        # Re-read so the values are those of the files exactly.
        a2 = np.asarray(Image.open(os.path.join(out_dir, pa)).convert("RGB"))
        b2 = np.asarray(Image.open(os.path.join(out_dir, pb)).convert("RGB"))
        assert (a2 == a).all() and (b2 == b).all()
        ssim = structural_similarity(a2, b2, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
        psnr = None if (a2 == b2).all() else float(peak_signal_noise_ratio(a2, b2, data_range=255))
        per_channel = [float(structural_similarity(a2[..., c], b2[..., c], gaussian_weights=True, sigma=1.5,
                                                   use_sample_covariance=False, data_range=255)) for c in range(3)]
        cases.append({"name": name, "a": pa, "b": pb, "width": int(a.shape[1]), "height": int(a.shape[0]),
                      "ssim": float(ssim), "ssim_per_channel": per_channel, "psnr": psnr, "note": note})

    a = smooth(rng, 48, 64)
    add("sign8", a, perturb(rng, a, 8, "sign"), "smooth 64x48 image vs an L-inf sign pattern of 8/255")
    a = smooth(rng, 29, 37)
    add("uniform3_odd", a, perturb(rng, a, 3, "uniform"), "odd size 37x29, uniform integer noise in [-3, 3]")
    a = smooth(rng, 80, 96)
    add("smooth6", a, perturb(rng, a, 6, "smooth"), "low-frequency perturbation of amplitude 6 (AM+TV-like)")
    a = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    add("random_pair", a, b, "two independent uniform-noise images (SSIM near 0)")
    a = smooth(rng, 36, 44)
    b = np.clip(np.round(0.8 * a.astype(np.float64) + 30), 0, 255).astype(np.uint8)
    add("contrast", a, b, "contrast 0.8 and brightness +30")
    a = smooth(rng, 11, 11)
    add("minimal11", a, perturb(rng, a, 20, "uniform"), "the smallest size skimage accepts (11x11): one window")
    a = smooth(rng, 24, 24)
    add("identical", a, a.copy(), "identical images: SSIM 1, PSNR infinite (null)")

    meta = {"generator": "scripts/tools/ssim_fixtures.py", "skimage": skimage.__version__, "numpy": np.__version__,
            "call": "structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5, "
                    "use_sample_covariance=False, data_range=255); peak_signal_noise_ratio(a, b, data_range=255)",
            "cases": cases}
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    for c in cases:
        print(f"{c['name']:14s} {c['width']}x{c['height']}  ssim {c['ssim']:.8f}  psnr {c['psnr']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/GPUEngineTests/Fixtures/ssim")
