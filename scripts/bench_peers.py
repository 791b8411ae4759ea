#!/usr/bin/env python3
"""The peers of `amgpu bench`, doing the same work (run by scripts/bench, one process per config).

  bench_peers.py steps --model resnetv2_50 --batch 1 [--objectives logit,layer] [--reps 5] [--warmup 1]
      PyTorch CPU AM step on a timm model with random weights, frozen (requires_grad=False), eval mode,
      input [B, 3, 224, 224] that is itself the parameter (plain pixels, no transforms, no normalization):
      forward to the objective, backward to the input, Adam (lr 0.05, maximize). Objectives as amgpu's:
        logit: Σ_b logits[b, 0]
        layer: Σ_b mean of channel 0 of an intermediate layer, the forward stopped right after that layer
               (CNN [B,C,H,W]: mean over H×W; ViT tokens [B,T,D]: mean over the patch tokens, CLS excluded)
               resnetv2_50: stages[2], resnet50: layer3, vit_*: blocks[5]
  bench_peers.py kernels [--reps 5]
      numpy/OpenBLAS SGEMM at amgpu's matmul rows (forward x·Wᵀ, backward dY·W) and PyTorch for the
      convolution and attention rows (forward; backward to the activations), same names as amgpu's rows.

Prints one JSON object on stdout. Threads: --threads (default: all cores) for torch and OpenBLAS.
"""
import argparse, json, os, resource, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("what", choices=["steps", "kernels"])
ap.add_argument("--model", default="resnetv2_50")
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--objectives", default="logit,layer")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=os.cpu_count())
a = ap.parse_args()
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(0)


def timed(fn):
    """(first call ms, median ms, min ms) over --warmup untimed and --reps timed calls after the first."""
    t0 = time.perf_counter(); fn(); first = (time.perf_counter() - t0) * 1e3
    for _ in range(a.warmup):
        fn()
    xs = []
    for _ in range(max(1, a.reps)):
        t0 = time.perf_counter(); fn(); xs.append((time.perf_counter() - t0) * 1e3)
    return first, statistics.median(xs), min(xs)


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Stop(Exception):
    pass


def steps():
    import timm
    model = timm.create_model(a.model, pretrained=False).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    vit = a.model.startswith("vit")
    layer = model.blocks[5] if vit else model.stages[2] if a.model.startswith("resnetv2") else model.layer3
    captured = {}

    def hook(_m, _i, out):
        captured["out"] = out
        raise Stop()

    rows = []
    for objective in a.objectives.split(","):
        img = torch.randn(a.batch, 3, 224, 224).requires_grad_(True)
        opt = torch.optim.Adam([img], lr=0.05, maximize=True)
        handle = layer.register_forward_hook(hook) if objective == "layer" else None

        def step():
            opt.zero_grad(set_to_none=True)
            if objective == "logit":
                score = model(img)[:, 0].sum()
            else:
                try:
                    model(img)
                except Stop:
                    pass
                out = captured["out"]
                score = (out[:, 1:, 0].mean(dim=1) if vit else out[:, 0].mean(dim=(1, 2))).sum()
            score.backward()
            opt.step()

        first, med, best = timed(step)
        if handle:
            handle.remove()
        rows.append({"model": a.model, "batch": a.batch, "objective": objective, "firstStepMs": first,
                     "medianMs": med, "minMs": best, "msPerImage": med / a.batch})
    return rows


def kernels():
    rng = np.random.default_rng(0)
    rows = []
    for label, k, n in [("qkv", 768, 2304), ("proj", 768, 768), ("fc1", 768, 3072), ("fc2", 3072, 768)]:
        x = rng.standard_normal((197, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32)
        dy = rng.standard_normal((197, n), dtype=np.float32)
        y = np.empty((197, n), np.float32); dx = np.empty((197, k), np.float32)
        flop = 2.0 * 197 * k * n
        for pas, fn in [("forward", lambda: np.matmul(x, w.T, out=y)), ("backward", lambda: np.matmul(dy, w, out=dx))]:
            first, med, best = timed(fn)
            rows.append({"name": f"matmul vit.{label}", "pass": pas, "peer": "numpy/OpenBLAS", "medianMs": med,
                         "gflops": flop / med / 1e6})

    def conv(name, cin, cout, size, k, stride=1, groups=1):
        x = torch.randn(1, cin, size, size, requires_grad=True)
        w = torch.randn(cout, cin // groups, k, k) / (cin // groups * k * k) ** 0.5
        b = torch.randn(cout)
        y = F.conv2d(x, w, b, stride, k // 2, 1, groups)
        out = y.shape[2]
        flop = 2.0 * cout * out * out * (cin // groups) * k * k
        dy = torch.randn_like(y)
        fwd = lambda: F.conv2d(x.detach(), w, b, stride, k // 2, 1, groups)  # noqa: E731
        bwd = lambda: torch.autograd.grad(y, x, dy, retain_graph=True)  # noqa: E731
        return [(name, "forward", fwd, flop), (name, "backward", bwd, flop)]

    cases = []
    cases += conv("conv7x7 s2 3>64 @224", 3, 64, 224, 7, 2)
    cases += conv("conv1x1 64>256 @56", 64, 256, 56, 1)
    cases += conv("conv3x3 64>64 @56", 64, 64, 56, 3)
    cases += conv("conv3x3 128>128 @28", 128, 128, 28, 3)
    cases += conv("conv3x3 256>256 @14", 256, 256, 14, 3)
    cases += conv("conv1x1 1024>256 @14", 1024, 256, 14, 1)
    cases += conv("conv3x3 512>512 @7", 512, 512, 7, 3)
    cases += conv("dwconv3x3 32 @112", 32, 32, 112, 3, groups=32)
    cases += conv("dwconv3x3 144 @56", 144, 144, 56, 3, groups=144)
    cases += conv("dwconv5x5 672 @14", 672, 672, 14, 5, groups=672)
    for b in (1, 8):
        q, k, v = (torch.randn(b, 12, 197, 64, requires_grad=True) for _ in range(3))
        o = F.scaled_dot_product_attention(q, k, v)
        do = torch.randn_like(o)
        qk = 2.0 * b * 12 * 197 * 197 * 64
        name = f"attention B{b} H12 T197 D64"
        cases += [(name, "forward", lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach()), 2 * qk),
                  (name, "backward", lambda o=o, q=q, k=k, v=v, do=do: torch.autograd.grad(o, (q, k, v), do, retain_graph=True), 4 * qk)]
    for name, pas, fn, flop in cases:
        first, med, best = timed(fn)
        rows.append({"name": name, "pass": pas, "peer": "PyTorch", "medianMs": med, "gflops": flop / med / 1e6})
    return rows


before = load()
result = {"what": a.what, "threads": a.threads, "torch": torch.__version__, "numpy": np.__version__, "loadBefore": before}
result["rows"] = steps() if a.what == "steps" else kernels()
result["loadAfter"] = load()
result["peakRSSMB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
