#!/usr/bin/env python3
"""Why PyTorch autograd disagrees with its own float64 central difference on the EfficientFormer, LeViT and
XCiT exports of scripts/onnx-zoo (docs/models.md): a PyTorch CPU bug in the backward of eval-mode
BatchNorm2d when the batch is 1 and the gradient arriving at it has the strides of `flatten(2).transpose(1, 2)`
— the conv + BatchNorm → tokens step of LeViT's stem, XCiT's ConvPatchEmbed and EfficientFormer's Flat.

Checks the adjoint identity <vjp(u), d> = <u, jvp(d)> (reverse mode from autograd, forward mode from
torch.func.jvp) on
  1. one BatchNorm2d (eval, random running statistics and affine) followed by flatten(2).transpose(1, 2),
     permute(0, 2, 3, 1), or the same affine map written by hand, batch 1 and 2, float32 and float64;
  2. the three timm models of the sweep (random weights, seed 0, eval, float64) at batch 1: autograd
     against forward mode, with the central difference (h = 1e-5) of the same function beside them (it
     agrees with forward mode up to the models' kinks); and at batch 2 (the input repeated), where
     autograd agrees (fused attention off: forward mode has no rule for the fused CPU kernel; it does not
     change autograd's value).
Usage: scripts/tools/onnx_zoo_torch_bn_check.py [--models] (bench venv: torch, timm). Prints a table.
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402


def adjoint(f, x, seed=3):
    """(<∇_x (u·f(x)), d>, <u, J_f(x) d>) for random u, d: equal when reverse mode is right."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(x.shape, generator=g).to(x.dtype)
    out, jv = torch.func.jvp(f, (x,), (d,))
    u = torch.randn(out.shape, generator=g).to(x.dtype)
    z = x.detach().clone().requires_grad_(True)
    (f(z) * u).sum().backward()
    return float((z.grad * d).sum()), float((jv.detach() * u).sum())


def verdict(a, b, tol):
    return "agree" if abs(a - b) <= tol * max(abs(a), abs(b), 1e-30) else "DIFFER"


def batchnorm_cases():
    print(f"torch {torch.__version__}")
    print("| dtype | batch | after BatchNorm2d (eval) | autograd <vjp(u), d> | forward mode <u, jvp(d)> | |")
    print("|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for dt in (torch.float64, torch.float32):
        bn = torch.nn.BatchNorm2d(16).eval().to(dt)
        with torch.no_grad():
            bn.running_mean.normal_(); bn.running_var.uniform_(0.5, 2); bn.weight.normal_(); bn.bias.normal_()
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).view(1, -1, 1, 1)
        shift = (bn.bias - bn.running_mean * bn.weight / (bn.running_var + bn.eps).sqrt()).view(1, -1, 1, 1)
        tol = 1e-9 if dt == torch.float64 else 1e-4
        for batch in (1, 2):
            x = torch.randn(batch, 16, 7, 7).to(dt)
            for label, f in [("flatten(2).transpose(1, 2)", lambda t: bn(t).flatten(2).transpose(1, 2)),
                             ("permute(0, 2, 3, 1)", lambda t: bn(t).permute(0, 2, 3, 1)),
                             ("same affine map by hand, flatten(2).transpose(1, 2)",
                              lambda t: (t * scale.detach() + shift.detach()).flatten(2).transpose(1, 2))]:
                a, b = adjoint(f, x)
                print(f"| {str(dt).replace('torch.', '')} | {batch} | {label} | {a:.6g} | {b:.6g} | {verdict(a, b, tol)} |")


def model_cases():
    import numpy as np
    import timm
    import onnx_zoo as Z
    from timm.layers import set_fused_attn
    set_fused_attn(False)   # forward-mode AD has no rule for the fused CPU attention kernel (XCiT's class attention)
    torch.set_num_threads(1)
    spec = {f[1]: f for f in Z.FAMILIES}
    print("\n| model | batch | autograd | forward mode | central difference (h = 1e-5) | autograd vs forward mode |")
    print("|---|---|---|---|---|---|")
    for name in ("levit_128s", "xcit_nano_12_p16_224", "efficientformer_l1"):
        _, _, _, size, kw = spec[name]
        torch.manual_seed(0)
        m = timm.create_model(name, pretrained=False, **kw).eval()
        Z.randomize_zero_weights(m)
        m = m.double()
        for batch in (1, 2):
            x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size))).repeat(batch, 1, 1, 1)
            g = torch.Generator().manual_seed(3)
            d = torch.randn(x.shape, generator=g, dtype=torch.float64)
            with torch.no_grad():
                u = torch.randn(m(x).shape, generator=g, dtype=torch.float64)
                fd = float(((m(x + 1e-5 * d) - m(x - 1e-5 * d)) * u).sum() / 2e-5)
            _, jv = torch.func.jvp(lambda t: m(t), (x,), (d,))
            z = x.clone().requires_grad_(True)
            (m(z) * u).sum().backward()
            a, b = float((z.grad * d).sum()), float((jv.detach() * u).sum())
            print(f"| {name} | {batch} | {a:.6g} | {b:.6g} | {fd:.6g} | {verdict(a, b, 1e-9)} |", flush=True)


if __name__ == "__main__":
    batchnorm_cases()
    if "--models" in sys.argv[1:]:
        model_cases()
