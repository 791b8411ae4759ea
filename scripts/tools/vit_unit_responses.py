#!/usr/bin/env python3
"""What DINOv2 block-1 fc1 units respond to: the patch-token mean of chosen units of an inner ONNX value on flat
colours, on stripes of several periods and on photos (onnxruntime, float32, graph optimisations off).

    vit_unit_responses.py MODEL.onnx [--value NAME] [--units 100,838] [--photos DIR] [--every K]

Written for issue 22 part 4 (block 1's units 100 and 838 end stuck in the depth grid): it shows which images
maximize them (docs/logs/vit-depth-2026-12-02.md). Input 224×224, ImageNet mean/std, token 0 (CLS) excluded.
Needs numpy, onnx, onnxruntime and pillow (the venv of scripts/fetch-models).
"""
import argparse
import glob
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--value", default="/backbone/encoder/layer.0/mlp/fc1/Add_output_0")
    ap.add_argument("--units", default="100,838")
    ap.add_argument("--photos", help="a folder of photos (searched recursively)")
    ap.add_argument("--every", type=int, default=10, help="use every K-th photo (sorted by path)")
    args = ap.parse_args()
    units = [int(u) for u in args.units.split(",")]
    m = onnx.load(args.model)
    if not any(args.value in n.output for n in m.graph.node):
        raise SystemExit(f"no node of {args.model} outputs '{args.value}'")
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(args.value, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def score(rgb):  # rgb [224, 224, 3] in [0, 1] -> patch-token mean per unit
        x = ((rgb.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        y = sess.run(None, {name: x})[0]
        return [float(y[0, 1:, u].mean()) for u in units]

    head = " | ".join(f"unit {u}" for u in units)
    print(f"value {args.value}, patch-token mean (256 tokens)\n\n| image | {head} |\n|---|" + "---|" * len(units))
    row = lambda what, s: print(f"| {what} | " + " | ".join(f"{v:.2f}" for v in s) + " |")
    for c in [(0.5, 0.5, 0.5), (0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0)]:
        row(f"flat RGB {c}", score(np.ones((224, 224, 3), np.float32) * np.array(c, np.float32)))
    rng = np.random.default_rng(0)
    for sd in (0.01, 0.05, 0.2):
        row(f"grey 0.5 + Gaussian noise sd {sd}", score(np.clip(0.5 + sd * rng.standard_normal((224, 224, 3)), 0, 1)))
    for p in (2, 4, 7, 14):
        s = ((np.arange(224) // p) % 2).astype(np.float32)
        row(f"vertical black/white bars {p} px wide", score(np.repeat(s[None, :, None], 224, 0).repeat(3, 2)))
        row(f"horizontal black/white bars {p} px wide", score(np.repeat(s[:, None, None], 224, 1).repeat(3, 2)))
    x = np.arange(224)
    for phase in range(7):   # 7-px bars (period 14 = the patch size), shifted against the patch grid
        s = (((x + phase) // 7) % 2).astype(np.float32)
        row(f"vertical 7-px bars shifted {phase} px", score(np.repeat(s[None, :, None], 224, 0).repeat(3, 2)))
    if args.photos:
        files = sorted(f for f in glob.glob(os.path.join(args.photos, "**", "*"), recursive=True)
                       if f.lower().endswith((".jpg", ".jpeg", ".png")))[::args.every]
        s = np.array([score(np.asarray(Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR)) / 255.0) for f in files])
        row(f"{len(files)} photos: mean", s.mean(0))
        row(f"{len(files)} photos: max", s.max(0))


if __name__ == "__main__":
    main()
