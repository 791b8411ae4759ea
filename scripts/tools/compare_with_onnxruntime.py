#!/usr/bin/env python3
"""Compares `amgpu classify --json` with onnxruntime on the very input amgpu fed the model.

Usage: compare_with_onnxruntime.py MODEL.onnx INPUT.npy CLASSIFY.json
  INPUT.npy     `amgpu activations --model MODEL.onnx --image PHOTO --layer input --out INPUT.npy`
                (amgpu's normalized NCHW RGB batch [1, 3, H, W]; same card flags as for classify)
  CLASSIFY.json `amgpu classify --model MODEL.onnx --image PHOTO --json` (same flags)
The input is put in the model's own layout (NHWC: transposed; one channel: 0.299 R + 0.587 G + 0.114 B),
run by onnxruntime; the graph output is taken as probabilities when the graph ends in Softmax (exp of it
for LogSoftmax), else softmaxed. Prints the largest differences over all classes.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model_path, input_path, json_path = sys.argv[1:4]
x = np.load(input_path).astype(np.float32)
result = json.load(open(json_path))
s = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
shape = s.get_inputs()[0].shape
nhwc = shape[3] in (1, 3) and shape[1] not in (1, 3)
channels = shape[3] if nhwc else shape[1]
if channels == 1:
    x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(np.float32)
if nhwc:
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
y = s.run(None, {s.get_inputs()[0].name: x})[0].reshape(-1).astype(np.float64)
graph = onnx.load(model_path).graph
producer = {o: n for n in graph.node for o in n.output}
node = producer.get(graph.output[0].name)
while node is not None and node.op_type in ("Identity", "Reshape", "Flatten", "Squeeze"):
    node = producer.get(node.input[0])
last = node.op_type if node is not None else "?"
if last == "Softmax":
    p = y
elif last == "LogSoftmax":
    p = np.exp(y)
else:
    e = np.exp(y - y.max())
    p = e / e.sum()
amgpu_logits = np.array(result["logits"], np.float64)
e = np.exp(amgpu_logits - amgpu_logits.max())
amgpu_p = e / e.sum()
print(f"graph ends in {last}; onnxruntime top-1 class {int(p.argmax())} p={p.max():.6f}; amgpu top-1 class {result['top'][0]['index']} p={result['top'][0]['probability']:.6f}")
print(f"max |p_amgpu - p_onnxruntime| over {p.size} classes: {np.abs(amgpu_p - p).max():.2e}")
if last not in ("Softmax", "LogSoftmax"):
    print(f"max |logit_amgpu - logit_onnxruntime|: {np.abs(amgpu_logits - y).max():.2e}")
