#!/usr/bin/env python3
"""Build an ONNX graph of a timm architecture from a timm-named safetensors file, independently
of amgpu's Swift builders, and optionally run it with onnxruntime. The reference for the builder
parity tests (Tests/GPUEngineTests/BuilderTests.swift).

    timm_onnx.py ARCH WEIGHTS.safetensors [--onnx OUT.onnx] [--input IN.npy --output OUT.npy]
                 [--heads H] [--image-size S]

ARCH is a family: `vit` (timm VisionTransformer: class token, absolute position embedding,
pre-norm blocks, LayerNorm eps 1e-6, exact GELU, optional layer-scale `ls1/ls2.gamma`, token
pooling, optional head) or `resnetv2` (timm ResNetV2 with PreActBottleneck, BatchNormAct2d eps
1e-5, plain convs, stem 7x7/2 + maxpool 3x3/2, 1x1-conv head `head.fc`). Depths, widths, patch
size and the position grid are read from the tensors; --heads gives the ViT's number of heads.
The position embedding is used as stored (no resampling): its grid must match the image size.

The graph uses plain ONNX operators (opset 17) the way PyTorch's exporter writes timm's modules:
Conv for the patch embedding, LayerNormalization, MatMul + Add, Reshape/Transpose, Softmax,
Div/Erf/Add/Mul for GELU, BatchNormalization (not folded), Relu, MaxPool, GlobalAveragePool.
Input `input` float32 [B, 3, S, S] (B from IN.npy, else 1); output `output`.
Needs numpy, onnx, onnxruntime (the venv of scripts/fetch-models).
"""
import argparse
import json
import math
import re
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            sys.exit(f"{name}: dtype {info['dtype']} not supported here")
        b, e = info["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).astype(np.float32)
    return out


class GraphBuilder:
    def __init__(self):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(self.numpy_helper.from_array(np.array(array, order="C"), name))  # keeps 0-d arrays 0-d
        return name

    def ints(self, name, values):
        return self.const(name, np.array(values, dtype=np.int64))

    def op(self, op_type, inputs, name=None, **attrs):
        self.n += 1
        out = name or f"{op_type.lower()}_{self.n}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build_vit(w, heads, batch, size):
    g = GraphBuilder()
    d, c, p, _ = w["patch_embed.proj.weight"].shape
    depth = 1 + max(int(m.group(1)) for k in w for m in [re.match(r"blocks\.(\d+)\.", k)] if m)
    t = w["pos_embed"].shape[1]
    grid = size // p
    if t != 1 + grid * grid:
        sys.exit(f"pos_embed has {t} tokens; image size {size} with patch {p} needs {1 + grid * grid}")
    dh = d // heads
    x = g.op("Conv", ["input", g.const("patch_embed.proj.weight", w["patch_embed.proj.weight"]),
                      g.const("patch_embed.proj.bias", w["patch_embed.proj.bias"])],
             kernel_shape=[p, p], strides=[p, p])
    x = g.op("Reshape", [x, g.ints("shape_bdn", [batch, d, grid * grid])])
    x = g.op("Transpose", [x], perm=[0, 2, 1])
    cls = g.op("Expand", [g.const("cls_token", w["cls_token"]), g.ints("shape_b1d", [batch, 1, d])])
    x = g.op("Concat", [cls, x], axis=1)
    x = g.op("Add", [x, g.const("pos_embed", w["pos_embed"])])
    scale = g.const("attn_scale", np.array(1 / math.sqrt(dh), dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2), dtype=np.float32))
    one = g.const("one", np.array(1, dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))

    def ln(x, prefix):
        return g.op("LayerNormalization", [x, g.const(f"{prefix}.weight", w[f"{prefix}.weight"]),
                                           g.const(f"{prefix}.bias", w[f"{prefix}.bias"])], axis=-1, epsilon=1e-6)

    def linear(x, prefix):
        y = g.op("MatMul", [x, g.const(f"{prefix}.weight_t", w[f"{prefix}.weight"].T.copy())])
        return g.op("Add", [y, g.const(f"{prefix}.bias", w[f"{prefix}.bias"])])

    for i in range(depth):
        b = f"blocks.{i}"
        h = ln(x, f"{b}.norm1")
        qkv = linear(h, f"{b}.attn.qkv")
        qkv = g.op("Reshape", [qkv, g.ints(f"{b}.qkv_shape", [batch, t, 3, heads, dh])])
        qkv = g.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
        q, k, v = [g.op("Squeeze", [g.op("Gather", [qkv, g.ints(f"{b}.idx{j}", [j])], axis=0),
                                    g.ints(f"{b}.sq{j}", [0])]) for j in range(3)]
        s = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
        a = g.op("MatMul", [g.op("Softmax", [s], axis=-1), v])
        a = g.op("Reshape", [g.op("Transpose", [a], perm=[0, 2, 1, 3]), g.ints(f"{b}.merge", [batch, t, d])])
        a = linear(a, f"{b}.attn.proj")
        if f"{b}.ls1.gamma" in w:
            a = g.op("Mul", [a, g.const(f"{b}.ls1.gamma", w[f"{b}.ls1.gamma"])])
        x = g.op("Add", [x, a])
        h = linear(ln(x, f"{b}.norm2"), f"{b}.mlp.fc1")
        erf = g.op("Erf", [g.op("Div", [h, sqrt2])])
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, one])]), half])
        h = linear(h, f"{b}.mlp.fc2")
        if f"{b}.ls2.gamma" in w:
            h = g.op("Mul", [h, g.const(f"{b}.ls2.gamma", w[f"{b}.ls2.gamma"])])
        x = g.op("Add", [x, h])
    x = ln(x, "norm")
    if "head.weight" in w:
        x = g.op("Gather", [x, g.const("cls_index", np.array(0, dtype=np.int64))], axis=1)
        x = linear(x, "head")
    g.nodes.append(g.helper.make_node("Identity", [x], ["output"], name="output"))
    return g


def build_resnetv2(w, batch, size):
    g = GraphBuilder()

    def conv(x, name, stride=1, bias=False):
        wt = w[f"{name}.weight"]
        k = wt.shape[2]
        pad = ((stride - 1) + (k - 1)) // 2
        ins = [x, g.const(f"{name}.weight", wt)] + ([g.const(f"{name}.bias", w[f"{name}.bias"])] if bias else [])
        return g.op("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def bn_relu(x, name):
        y = g.op("BatchNormalization", [x] + [g.const(f"{name}.{p}", w[f"{name}.{p}"])
                                              for p in ("weight", "bias", "running_mean", "running_var")],
                 epsilon=1e-5)
        return g.op("Relu", [y])

    x = conv("input", "stem.conv", stride=2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    stages = sorted({int(m.group(1)) for k in w for m in [re.match(r"stages\.(\d+)\.", k)] if m})
    for s in stages:
        blocks = sorted({int(m.group(1)) for k in w for m in [re.match(rf"stages\.{s}\.blocks\.(\d+)\.", k)] if m})
        for b in blocks:
            p = f"stages.{s}.blocks.{b}"
            stride = 2 if (b == 0 and s > 0) else 1
            pre = bn_relu(x, f"{p}.norm1")
            shortcut = conv(pre, f"{p}.downsample.conv", stride=stride) if f"{p}.downsample.conv.weight" in w else x
            h = conv(pre, f"{p}.conv1")
            h = conv(bn_relu(h, f"{p}.norm2"), f"{p}.conv2", stride=stride)
            h = conv(bn_relu(h, f"{p}.norm3"), f"{p}.conv3")
            x = g.op("Add", [h, shortcut])
    x = bn_relu(x, "norm")
    x = g.op("GlobalAveragePool", [x])
    x = conv(x, "head.fc", bias=True)
    g.nodes.append(g.helper.make_node("Flatten", [x], ["output"], name="output", axis=1))
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arch", choices=["vit", "resnetv2"])
    ap.add_argument("weights")
    ap.add_argument("--onnx", help="write the ONNX model here")
    ap.add_argument("--input", help=".npy input to run the model on")
    ap.add_argument("--output", help=".npy file for the output (with --input)")
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--no-optimize", action="store_true", help="switch onnxruntime's graph optimisations off")
    args = ap.parse_args()

    from onnx import TensorProto, helper
    w = read_safetensors(args.weights)
    x = np.load(args.input).astype(np.float32) if args.input else None
    batch, size = (x.shape[0], x.shape[2]) if x is not None else (1, args.image_size)
    g = build_vit(w, args.heads, batch, size) if args.arch == "vit" else build_resnetv2(w, batch, size)
    graph = helper.make_graph(g.nodes, f"timm_{args.arch}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="amgpu/scripts/tools/timm_onnx.py")
    model.ir_version = 8
    data = model.SerializeToString()
    if args.onnx:
        with open(args.onnx, "wb") as f:
            f.write(data)
    if x is not None:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if args.no_optimize:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        y = sess.run(["output"], {"input": x})[0].astype(np.float32)
        if args.output:
            np.save(args.output, y)
        print(f"{args.arch}: {len(g.nodes)} nodes, output {list(y.shape)} max|y| {float(np.abs(y).max()):.6g}")


if __name__ == "__main__":
    main()
