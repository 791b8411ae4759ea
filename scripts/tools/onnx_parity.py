#!/usr/bin/env python3
"""Run an ONNX model with onnxruntime on one input tensor and save the output, for parity tests.

    onnx_parity.py MODEL.onnx INPUT.npy OUTPUT.npy [--output NAME] [--no-optimize]

INPUT.npy is fed to the model's first graph input (float32, its shape must match the model's).
OUTPUT.npy receives the model's first output (or the output named with --output) as float32.
onnxruntime runs on the CPU execution provider; --no-optimize switches its graph optimisations
off (so fused-vs-unfused questions are about the model, not about onnxruntime).
Needs numpy and onnxruntime (the venv that scripts/fetch-models makes: $AMGPU_HOME/venv).
Prints one line: the output's name, shape and max |value|.
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--output-name", "--output", dest="output_name", default=None)
    ap.add_argument("--no-optimize", action="store_true")
    args = ap.parse_args()

    import onnxruntime as ort

    x = np.load(args.input)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if args.no_optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    expected = [d if isinstance(d, int) else None for d in inp.shape]
    if len(expected) != x.ndim or any(e is not None and e != s for e, s in zip(expected, x.shape)):
        sys.exit(f"input {inp.name} has shape {inp.shape}, the .npy is {list(x.shape)}")
    name = args.output_name or sess.get_outputs()[0].name
    y = sess.run([name], {inp.name: x})[0].astype(np.float32)
    np.save(args.output, y)
    print(f"{name} {list(y.shape)} max|y| {float(np.abs(y).max()):.6g}")


if __name__ == "__main__":
    main()
