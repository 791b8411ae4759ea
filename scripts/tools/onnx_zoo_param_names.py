#!/usr/bin/env python3
"""Checks amgpu's layer names from parameter names (the fallback for exports without module scopes)
against the names from the dynamo exporter's `pkg.torch.onnx.name_scopes` metadata, on the same weights.

torch 2.13's dynamo exporter writes opset 18; asked for opset 17 it converts with onnx's C API version
converter, which drops every node's metadata (ViT, DeiT, CaiT: the conversion succeeds; most CNNs: it
fails and the file stays at opset 18 with its metadata). Without scopes, `amgpu layers` names modules from
the initializers the nodes read (ONNXImporter's Importer.parameterScopes).

For one timm model (random weights, seed 0, plus N(0, SIGMA²) on every parameter so that no two
initializers are equal — torch merges equal ones, which random init makes common):
  1. export with dynamo=True at opset 18 (metadata kept) and at opset 17 (metadata dropped);
  2. `amgpu layers` on both: the recommended targets must be the same names;
  3. `amgpu activations` of every recommended target on one photo from both files: max |a17 − a18| /
     max |a18| must be ≤ 1e-5 (the same value, not a neighbour such as the pre-residual branch).
Prints a Markdown report (and writes it with --log).

    onnx_zoo_param_names.py --amgpu .build/release/amgpu [--model vit_tiny_patch16_224] [--size 96]
                            [--perturb 0.01] [--work DIR] [--log docs/logs/...md]
Needs the bench venv (torch, timm, onnx, onnxscript).
"""
import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--amgpu", required=True)
    ap.add_argument("--model", default="vit_tiny_patch16_224")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--perturb", type=float, default=0.01)
    ap.add_argument("--photo", default=os.path.expanduser("~/.cache/amgpu/photos/chelsea.png"))
    ap.add_argument("--work", default="")
    ap.add_argument("--log", default="")
    args = ap.parse_args()
    import onnx
    import timm
    import torch
    import onnx_zoo as Z
    from onnx_zoo_am import recommended_targets

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()[0]
    work = args.work or tempfile.mkdtemp(prefix="amgpu-param-names-")
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    kwargs = {"img_size": args.size} if any(k in args.model for k in ("vit", "deit", "cait")) else {}
    model = timm.create_model(args.model, pretrained=False, **kwargs).eval()
    Z.randomize_zero_weights(model)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * args.perturb)
    x = torch.randn(1, 3, args.size, args.size)
    files, facts, targets = {}, {}, {}
    for opset in (18, 17):
        path = os.path.join(work, f"{args.model}.perturbed.dynamo.{opset}.onnx")
        if not os.path.exists(path):
            torch.onnx.export(model, (x,), dynamo=True, opset_version=opset).save(path)
        m = onnx.load(path, load_external_data=False)
        scoped = sum(any(p.key == "pkg.torch.onnx.name_scopes" for p in n.metadata_props) for n in m.graph.node)
        declared = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        files[opset], facts[opset] = path, (declared, scoped, len(m.graph.node))
        targets[opset] = [t[0] for t in recommended_targets(args.amgpu, path)[0]]
    out = os.path.join(work, "act.npy")

    def activation(path, layer):
        p = subprocess.run([args.amgpu, "activations", "--model", path, "--image", args.photo, "--layer", layer,
                            "--out", out], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"activations {layer}: {p.stderr.strip()}")
        return np.load(out).astype(np.float64)

    rows, worst = [], 0.0
    same_names = targets[17] == targets[18]
    for layer in targets[18]:
        if layer not in targets[17]:
            rows.append(f"| {layer} | missing at opset 17 | |")
            continue
        a18, a17 = activation(files[18], layer), activation(files[17], layer)
        err = float(np.max(np.abs(a17 - a18)) / max(float(np.max(np.abs(a18))), 1e-30)) if a17.shape == a18.shape else float("inf")
        worst = max(worst, err)
        rows.append(f"| {layer} | {list(a18.shape)} | {err:.1e} |")
    ok = same_names and worst <= 1e-5
    ended = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Layer names from parameter names vs name_scopes (scripts/tools/onnx_zoo_param_names.py)", "",
        f"{started:%Y-%m-%d %H:%M}–{ended:%H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs shared with other work, "
        f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end); torch {torch.__version__}, "
        f"timm {timm.__version__}, onnx {onnx.__version__}.", "",
        "Command: `" + shlex.join(["scripts/tools/onnx_zoo_param_names.py"] + sys.argv[1:]) + "`", "",
        f"{args.model} (input {args.size}), random weights (seed 0) + N(0, {args.perturb:g}²) on every parameter (seed 2), "
        "exported with `torch.onnx.export(dynamo=True)` at opsets 18 and 17:", "",
        f"- opset 18: the file declares opset {facts[18][0]}, {facts[18][1]} of {facts[18][2]} nodes carry name_scopes;",
        f"- opset 17: the file declares opset {facts[17][0]}, {facts[17][1]} of {facts[17][2]} nodes carry name_scopes "
        "(onnx's C API version converter drops node metadata).", "",
        f"Recommended targets (`amgpu layers`): {len(targets[18])} from name_scopes, {len(targets[17])} from parameter names; "
        f"the same list: {'yes' if same_names else 'NO'}.", "",
        f"`amgpu activations` of each on {os.path.basename(args.photo)}, max |opset 17 − opset 18| / max |opset 18|:", "",
        "| target | shape | rel. difference |", "|---|---|---|",
    ] + rows + ["", f"**{'PASS' if ok else 'FAIL'}**: worst {worst:.1e} (pass ≤ 1e-5, same names)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.log:
        with open(args.log + ".part", "w") as f:
            f.write(text)
        os.replace(args.log + ".part", args.log)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
