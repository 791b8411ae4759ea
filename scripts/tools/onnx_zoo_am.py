#!/usr/bin/env python3
"""`scripts/onnx-zoo --am`: activation maximization on every family of the ONNX zoo sweep (issue #18 part 3).

For each family of scripts/tools/onnx_zoo.py (the smallest timm variant, random weights, seed 0, eval
mode, the sweep's input size), exported with the TorchScript exporter (opset 17; its scope names are
what amgpu turns into layer names):
  1. `amgpu layers MODEL.onnx`: the recommended AM targets (the lines starting with '*');
  2. one target: the recommended value two thirds of the way down the list (logits excluded); its unit:
     the one among the first 32 with the largest mean activation on one photo (`amgpu activations` on
     chelsea.png; half the channels of a random ReLU network are dead and their AM stays at 0);
  3. `amgpu visualize --layer T --unit U --preset cnn-lucid --steps 48 --device cpu` (lucid's Fourier
     preset for every family: the ViT preset needs 8 copies × 400 steps on a CPU): its JSON gives the
     objective on the visualization (`finalObjective`) and its mean over the fetched photos
     (`naturalPhotoMean`, the same objective, ~/.cache/amgpu/photos);
  4. pass when finalObjective > naturalPhotoMean + 0.1·|naturalPhotoMean|.
Writes a Markdown table (--log, default docs/logs/onnx-zoo-am.md) with the recommended targets of each
family. Exports go to --work (kept there: a second run reuses them).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

import onnx_zoo as Z  # noqa: E402


def recommended_targets(amgpu, path):
    """[(name, op, shape, units)] of the '*' lines of `amgpu layers`, in the listed order."""
    p = subprocess.run([amgpu, "layers", path], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError((p.stderr or p.stdout).strip().splitlines()[0])
    out = []
    for line in p.stdout.splitlines():
        m = re.match(r"^\* (\S+)\s+(\S+)\s+(\[[^\]]*\])\s+units: (\d+)", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return out, p.stdout


def output_name(layers_text):
    m = re.search(r"output (\S+) \[", layers_text.splitlines()[0])
    return m.group(1) if m else None


def liveliest_unit(amgpu, path, layer, photo, work):
    """The unit, among the first 32, with the largest mean activation on one photo (`amgpu activations`):
    half the channels of a random-weight ReLU network are dead for any image, and their AM stays at 0."""
    out = os.path.join(work, "act.npy")
    p = subprocess.run([amgpu, "activations", "--model", path, "--image", photo, "--layer", layer, "--out", out],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("activations: " + ((p.stderr or p.stdout).strip().splitlines() or ["?"])[0])
    a = np.load(out).astype(np.float64)
    if a.ndim == 4:
        means = a[0].mean(axis=(1, 2))       # [1, C, H, W]: channels
    elif a.ndim == 3:
        means = a[0].mean(axis=0)            # [1, T, D]: token mean
    else:
        means = a.reshape(a.shape[0], -1)[0]
    return int(np.argmax(means[:32]))


def summarize(targets):
    """A short description of the recommended set: count and a few names."""
    names = [t[0] for t in targets]
    fc1 = [n for n in names if n.endswith("fc1") or n.endswith("intermediate.dense")]
    blocks = [n for n in names if n not in fc1]
    parts = [f"{len(names)}"]
    if blocks:
        parts.append(f"{len(blocks)} blocks/stages ({blocks[0]} … {blocks[-1]})")
    if fc1:
        parts.append(f"{len(fc1)} MLP ({fc1[0]} …)")
    return "; ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--amgpu", required=True)
    ap.add_argument("--families", default="")
    ap.add_argument("--work", default="")
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--photo", default=os.path.expanduser("~/.cache/amgpu/photos/chelsea.png"),
                    help="the photo that picks the unit (default: the fetched chelsea.png)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--log", default="docs/logs/onnx-zoo-am.md")
    args = ap.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    wanted = {f.strip().lower() for f in args.families.split(",") if f.strip()}
    families = [f for f in Z.FAMILIES if not wanted or f[0].lower() in wanted or f[1].lower() in wanted]
    work = args.work or tempfile.mkdtemp(prefix="amgpu-onnx-zoo-am-")
    os.makedirs(work, exist_ok=True)
    rows = []
    for family, name, kind, size, kwargs in families:
        path = os.path.join(work, f"{name}.onnx")
        t0 = time.time()
        row = {"family": family, "model": name, "input": size}
        try:
            if not os.path.exists(path):
                torch.manual_seed(0)
                model = timm.create_model(name, pretrained=False, **kwargs).eval()
                Z.randomize_zero_weights(model)
                Z.export(model, torch.randn(1, 3, size, size), path + ".part", "torchscript", 17)
                os.replace(path + ".part", path)
        except Exception as e:  # noqa: BLE001
            row.update(result="PyTorch export failed", note=str(e).splitlines()[0][:160])
            rows.append(row)
            print(row, flush=True)
            continue
        try:
            targets, text = recommended_targets(args.amgpu, path)
            logits = output_name(text)
            row["recommended"] = summarize(targets)
            candidates = [t for t in targets if t[0] != logits]
            if not candidates:
                raise RuntimeError("no recommended target besides the logits")
            target = candidates[(2 * len(candidates)) // 3]
            unit = liveliest_unit(args.amgpu, path, target[0], args.photo, work)
            out = os.path.join(work, f"am-{name}")
            cmd = [args.amgpu, "visualize", "--model", path, "--layer", target[0], "--unit", str(unit),
                   "--preset", "cnn-lucid", "--steps", str(args.steps), "--device", args.device, "--out", out, "--quiet"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if p.returncode != 0:
                raise RuntimeError("visualize: " + ((p.stderr or p.stdout).strip().splitlines() or ["?"])[0])
            with open(os.path.join(out, f"{target[0]}_{unit}.json")) as f:
                j = json.load(f)
            final, natural = j["finalObjective"], j.get("naturalPhotoMean")
            ok = natural is not None and final > natural + 0.1 * abs(natural)
            row.update(target=f"{target[0]}:{unit}", shape=target[2], final=final, natural=natural,
                       result="raised" if ok else "NOT raised")
        except Exception as e:  # noqa: BLE001
            row.update(result="amgpu failed", note=str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(row, flush=True)

    raised = sum(r["result"] == "raised" for r in rows)
    imported = sum(r["result"] in ("raised", "NOT raised") for r in rows)
    lines = [
        "# AM on every family of the ONNX zoo (scripts/onnx-zoo --am)", "",
        f"torch {torch.__version__}, timm {timm.__version__}; TorchScript exporter, opset 17; amgpu `--device {args.device}`; "
        f"written {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.", "",
        "Random weights (seed 0). Recommended: the values `amgpu layers` stars (block/stage outputs, MLP hidden layers, "
        "the logits). Target: the recommended value two thirds down the list (logits excluded); unit: the liveliest of the "
        "first 32 on chelsea.png (`amgpu activations`). "
        f"`amgpu visualize --preset cnn-lucid --steps {args.steps}`: objective on the visualization vs its mean over the "
        "fetched photos (`naturalPhotoMean`); raised when above it by more than 10 % of its magnitude.", "",
        f"**{raised} of {imported} imported families raised** ({len(rows)} families).", "",
        "| family | model | input | recommended | target | shape | AM | photos | result | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
        lines.append(f"| {r['family']} | {r['model']} | {r['input']} | {r.get('recommended', '')} | "
                     f"{r.get('target', '')} | {r.get('shape', '')} | {fmt(r.get('final'))} | {fmt(r.get('natural'))} | "
                     f"{r['result']}{(': ' + r['note']) if r.get('note') else ''} | {r.get('seconds', '')} |")
    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
    with open(args.log + ".part", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.log + ".part", args.log)
    print("\n".join(lines[6:8]))
    return 0 if raised == imported else 1


if __name__ == "__main__":
    sys.exit(main())
