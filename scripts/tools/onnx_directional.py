#!/usr/bin/env python3
"""Directional derivatives of an ONNX model by onnxruntime central differences, for gradient-parity tests.

    onnx_directional.py MODEL.onnx INPUT.npy SEED.npy DIRECTIONS.npy OUT.npy [--step H] [--output NAME]

For each direction d_k (DIRECTIONS.npy: shape [K, *input shape]) writes to OUT.npy (float64, shape [K, 2]):
column 0 the Richardson-extrapolated central difference of L(x) = Σ SEED ⊙ out(x) along d_k,
    R = (4·D(H/2) − D(H)) / 3,   D(s) = (L(x + s·d) − L(x − s·d)) / 2s,
and column 1 its error estimate |D(H/2) − D(H)| / 3. L is accumulated in float64. The model runs in float64
when onnxruntime has double kernels for all its ops (the model is converted: initializers, Constant tensors,
graph input and output); otherwise in float32 (Conv has no double kernel on the CPU execution provider), as
the last output line says. Graph optimisations are off, so the ONNX file is what is differentiated.
--output NAME differentiates the ONNX value NAME (any node output, e.g. an inner layer) instead of the graph output.
Needs numpy, onnx and onnxruntime (the venv that scripts/fetch-models makes: $AMGPU_HOME/venv).
"""
import argparse

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper


def to_double(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for n in m.graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64), a.t.name))
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    return m


def session(model):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("model", "input", "seed", "directions", "out"):
        ap.add_argument(name)
    ap.add_argument("--step", type=float, default=1e-2)
    ap.add_argument("--output", help="an inner ONNX value to differentiate instead of the graph output")
    args = ap.parse_args()
    model = onnx.load(args.model)
    if args.output:
        if not any(args.output in n.output for n in model.graph.node):
            raise SystemExit(f"no node of {args.model} outputs '{args.output}'")
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_tensor_value_info(args.output, TensorProto.FLOAT, None))
    x = np.load(args.input).astype(np.float64)
    seed = np.load(args.seed).astype(np.float64)
    dirs = np.load(args.directions).astype(np.float64)
    precision, dtype = "float64", np.float64
    try:
        sess = session(to_double(model))
        sess.run(None, {sess.get_inputs()[0].name: x})
    except Exception as e:  # noqa: BLE001 - any op without a double kernel
        precision, dtype = f"float32 (no float64 run: {str(e).splitlines()[0][:120]})", np.float32
        sess = session(model)
    name = sess.get_inputs()[0].name

    def loss(v):
        y = sess.run(None, {name: v.astype(dtype)})[0].astype(np.float64)
        if y.size != seed.size:
            raise SystemExit(f"output has {y.size} values, the seed {seed.size}")
        return float(np.sum(y.reshape(-1) * seed.reshape(-1)))

    out = []
    for d in dirs:
        est = []
        for s in (args.step, args.step / 2):
            est.append((loss(x + s * d) - loss(x - s * d)) / (2 * s))
        out.append([(4 * est[1] - est[0]) / 3, abs(est[1] - est[0]) / 3])
    np.save(args.out, np.array(out, dtype=np.float64))
    print(f"{len(out)} directional derivatives in {precision}")


if __name__ == "__main__":
    main()
