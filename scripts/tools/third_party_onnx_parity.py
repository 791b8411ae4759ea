#!/usr/bin/env python3
"""amgpu against an EfficientNet-Lite0 ONNX file made by another tool: PyTorch's exporter, from timm.

    third_party_onnx_parity.py AMGPU_BINARY [--home DIR] [--out DIR] [--photos chelsea,coffee,...]

The same safetensors that scripts/fetch-models converts into models/efficientnet_lite0.onnx (with the project's
own scripts/tools/efficientnet_lite0_onnx.py) are loaded into timm's `tf_efficientnet_lite0` (strict: every
tensor used, none missing) and exported with torch.onnx.export (opset 17, TorchScript exporter). timm's
TF-"SAME" convolutions export their padding as a Shape/Gather/Cast/Ceil subgraph that amgpu's importer refuses,
so onnxruntime's basic graph optimisations (constant folding, Conv+BN fusion) are applied first and saved; the
folded file computes the same as the raw export (checked below). For each photo, amgpu writes its preprocessed
input and its logits (`amgpu activations --layer input / classifier`, CPU backend); onnxruntime then runs the raw
PyTorch export, the folded one and the project's ONNX on that same input. Prints the relative max-abs errors
(max |Δ| / max |ref|) and the top-1 classes.

Needs torch, timm, safetensors, onnx and onnxruntime (~/.cache/amgpu/bench-venv has them; it is not made by
scripts/fetch-models, so this runs by hand, not in CI). Output: docs/logs/third-party-onnx-parity.txt.
"""
import argparse
import os
import subprocess

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("amgpu")
    ap.add_argument("--home", default=os.environ.get("AMGPU_HOME", os.path.expanduser("~/.cache/amgpu")))
    ap.add_argument("--out", default="/tmp/amgpu-third-party-onnx")
    ap.add_argument("--photos", default="chelsea,coffee,camera,rocket,motorcycle_left,china")
    args = ap.parse_args()
    import onnxruntime as ort
    import timm
    import torch
    from safetensors.torch import load_file
    from timm.layers import set_layer_config

    os.makedirs(args.out, exist_ok=True)
    raw = os.path.join(args.out, "efficientnet_lite0.torch.onnx")
    folded = os.path.join(args.out, "efficientnet_lite0.torch.folded.onnx")
    with set_layer_config(exportable=True):
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(load_file(os.path.join(args.home, "models", "efficientnet_lite0.safetensors")), strict=True)
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), raw, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = folded
    ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"])
    print(f"torch {torch.__version__}, timm {timm.__version__}, onnxruntime {ort.__version__}: "
          f"exported timm tf_efficientnet_lite0 to {raw}, folded by onnxruntime (ORT_ENABLE_BASIC) to {folded}")

    def session(path):
        s = ort.SessionOptions()
        s.log_severity_level = 3
        s.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(path, s, providers=["CPUExecutionProvider"])

    s_raw, s_folded = session(raw), session(folded)
    s_project = session(os.path.join(args.home, "models", "efficientnet_lite0.onnx"))
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
    worst = 0.0
    for photo in args.photos.split(","):
        png = os.path.join(args.home, "photos", photo + ".png")
        x_path, y_path = os.path.join(args.out, photo + ".input.npy"), os.path.join(args.out, photo + ".logits.npy")
        for layer, path in (("input", x_path), ("classifier", y_path)):
            subprocess.run([args.amgpu, "activations", "--model", folded, "--image", png, "--layer", layer,
                            "--out", path, "--device", "cpu"], check=True, capture_output=True)
        x, ours = np.load(x_path), np.load(y_path)
        run = lambda s: s.run(None, {s.get_inputs()[0].name: x})[0]
        y_raw, y_folded, y_project = run(s_raw), run(s_folded), run(s_project)
        worst = max(worst, rel(ours, y_raw))
        print(f"{photo:16s} amgpu vs onnxruntime(PyTorch export) {rel(ours, y_raw):.2e}; "
              f"onnxruntime folded vs raw export {rel(y_folded, y_raw):.2e}; "
              f"PyTorch export vs project ONNX {rel(y_raw, y_project):.2e}; "
              f"top-1 amgpu {int(ours.argmax())}, export {int(y_raw.argmax())}, project {int(y_project.argmax())}")
    print(f"worst amgpu vs PyTorch export: {worst:.2e}")


if __name__ == "__main__":
    main()
