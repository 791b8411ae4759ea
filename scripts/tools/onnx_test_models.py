#!/usr/bin/env python3
"""Writes small ONNX models covering each operator amgpu imports, with reference outputs and
directional derivatives computed by onnxruntime, for Tests/GPUEngineTests/ONNXImportTests.swift.

Usage: onnx_test_models.py OUT_DIR
For each case NAME it writes NAME.onnx, NAME.input.npy, NAME.output.npy (onnxruntime's output),
NAME.seed.npy (r, shaped like the output), NAME.direction.npy (d, shaped like the input) and
NAME.dd.npy: the central difference  r · (f(x + h d) − f(x − h d)) / (2h)  with h = 1e-3, evaluated by
onnxruntime in float64 models where possible (the model is converted to double for this), so the
engine's input gradient can be checked as  <∇_x (r·f), d>  ≈ dd.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(1234)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def w(shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def const_node(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name + "_v"))


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


def run(model, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {model.graph.input[0].name: x})[0]


def save(name, nodes, inits, in_shape, out_shape, opset=17, x=None, dynamic_batch=False):
    dims_in = ["batch"] + list(in_shape[1:]) if dynamic_batch else list(in_shape)
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims_in)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if x is None:
        x = rng.uniform(-1, 1, in_shape).astype(np.float32)
    y = run(model, x)
    r = rng.uniform(-1, 1, y.shape).astype(np.float32)
    d = rng.uniform(-1, 1, x.shape).astype(np.float32)
    dm = to_double(model)
    h = 1e-3
    x64, d64 = x.astype(np.float64), d.astype(np.float64)
    try:
        yp, ym = run(dm, x64 + h * d64), run(dm, x64 - h * d64)
    except Exception:  # an op without a double kernel (e.g. Conv): float32, a step small enough not to cross ReLU kinks
        h = 3e-3
        yp, ym = run(model, (x64 + h * d64).astype(np.float32)).astype(np.float64), run(model, (x64 - h * d64).astype(np.float32)).astype(np.float64)
    dd = np.array([np.sum(r.astype(np.float64) * (yp - ym)) / (2 * h)])
    onnx.save(model, os.path.join(OUT, name + ".onnx"))
    for suffix, a in [("input", x), ("output", y.astype(np.float32)), ("seed", r), ("direction", d), ("dd", dd)]:
        np.save(os.path.join(OUT, f"{name}.{suffix}.npy"), a)


N, C, H, W = 2, 3, 9, 11
# Convolutions: asymmetric pads, stride, dilation, groups, bias; Conv+BN+Relu (folded + fused).
save("conv", [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2])],
     [init("w", w((4, 3, 3, 3))), init("b", w((4,)))], (N, C, H, W), None)
save("conv_bn_relu", [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                      helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"], epsilon=1e-3),
                      helper.make_node("Relu", ["n"], ["y"])],
     [init("w", w((6, 3, 3, 3))), init("g", w((6,)) + 1), init("be", w((6,))), init("m", w((6,), 0.1)),
      init("v", np.abs(w((6,))) + 0.5)], (N, C, H, W), None)
save("conv_same_depthwise", [helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2], group=3),
                             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
     [init("w", w((3, 1, 5, 5))), init("lo", np.float32(0)), init("hi", np.float32(6))], (N, C, H, W), None)
save("conv_transpose", [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 0, 0, 1],
                                         output_padding=[1, 0])],
     [init("w", w((3, 2, 3, 3))), init("b", w((2,)))], (N, C, H, W), None)
# Pooling, BN alone, activations.
save("maxpool", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
     [], (N, C, H, W), None)
save("avgpool", [helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 1, 0]),
                 helper.make_node("GlobalAveragePool", ["a"], ["y"])], [], (N, C, H, W), None)
save("batchnorm_activations", [helper.make_node("BatchNormalization", ["x", "g", "be", "m", "v"], ["n"]),
                               helper.make_node("HardSwish", ["n"], ["a"]),
                               helper.make_node("LeakyRelu", ["a"], ["b"], alpha=0.2),
                               helper.make_node("HardSigmoid", ["b"], ["c"]),
                               helper.make_node("Sigmoid", ["n"], ["d"]),
                               helper.make_node("Mul", ["c", "d"], ["y"])],
     [init("g", w((3,)) + 1), init("be", w((3,))), init("m", w((3,), 0.1)), init("v", np.abs(w((3,))) + 0.5)], (N, C, H, W), None)
save("resize_pad", [helper.make_node("Resize", ["x", "", "sc"], ["r"], mode="linear", coordinate_transformation_mode="half_pixel"),
                    helper.make_node("Pad", ["r", "p"], ["y"], mode="reflect")],
     [init("sc", np.array([1, 1, 2, 1.5], dtype=np.float32)), init("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64))],
     (N, C, H, W), None)
# Shape arithmetic folded at load time, with a dynamic batch: Shape → Gather → Unsqueeze → Concat → Reshape.
save("shape_subgraph", [helper.make_node("Shape", ["x"], ["s"]),
                        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
                        helper.make_node("Unsqueeze", ["n", "ax"], ["nu"]),
                        helper.make_node("Concat", ["nu", "rest"], ["shape"], axis=0),
                        helper.make_node("Reshape", ["x", "shape"], ["r"]),
                        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
                        helper.make_node("Slice", ["t", "st", "en", "axs"], ["sl"]),
                        helper.make_node("Gather", ["sl", "i1"], ["g"], axis=1),
                        helper.make_node("Gemm", ["g", "gw", "gb"], ["y"], transB=1)],
     [init("i0", np.array(0, dtype=np.int64)), init("ax", np.array([0], dtype=np.int64)),
      init("rest", np.array([C, H * W], dtype=np.int64)), init("st", np.array([1], dtype=np.int64)),
      init("en", np.array([90], dtype=np.int64)), init("axs", np.array([1], dtype=np.int64)),
      init("i1", np.array(3, dtype=np.int64)), init("gw", w((5, C))), init("gb", w((5,)))],
     (N, C, H, W), None, dynamic_batch=True)
# Transformer patterns, written out as torch exports them.
T, D, HEADS = 7, 8, 2
ln = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]), helper.make_node("Sub", ["x", "m"], ["d"]),
      const_node("two", np.float32(2)), helper.make_node("Pow", ["d", "two"], ["p"]),
      helper.make_node("ReduceMean", ["p"], ["v"], axes=[-1]), const_node("eps", np.float32(1e-5)),
      helper.make_node("Add", ["v", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["s"]),
      helper.make_node("Div", ["d", "s"], ["nrm"]), helper.make_node("Mul", ["nrm", "gam"], ["sc"]),
      helper.make_node("Add", ["sc", "bet"], ["ln"])]
gelu = [helper.make_node("MatMul", ["ln", "w1"], ["h0"]), helper.make_node("Add", ["b1", "h0"], ["h"]),
        const_node("sq2", np.float32(1.4142135381698608)), helper.make_node("Div", ["h", "sq2"], ["hd"]),
        helper.make_node("Erf", ["hd"], ["he"]), const_node("one", np.float32(1)),
        helper.make_node("Add", ["he", "one"], ["h1"]), helper.make_node("Mul", ["h", "h1"], ["h2"]),
        const_node("half", np.float32(0.5)), helper.make_node("Mul", ["h2", "half"], ["y"])]
save("layernorm_gelu", ln + gelu, [init("gam", w((D,)) + 1), init("bet", w((D,))), init("w1", w((D, 12))), init("b1", w((12,)))],
     (1, T, D), None, opset=14)


def attention_nodes(sdpa):
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q0"]), helper.make_node("MatMul", ["x", "wk"], ["k0"]),
             helper.make_node("MatMul", ["x", "wv"], ["v0"]),
             helper.make_node("Reshape", ["q0", "hs"], ["q1"]), helper.make_node("Reshape", ["k0", "hs"], ["k1"]),
             helper.make_node("Reshape", ["v0", "hs"], ["v1"]),
             helper.make_node("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3])]
    if sdpa:
        nodes += [helper.make_node("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
                  helper.make_node("Mul", ["q", "rs"], ["qs"]), helper.make_node("Mul", ["kt", "rs"], ["ks"]),
                  helper.make_node("MatMul", ["qs", "ks"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1)]
    else:
        nodes += [helper.make_node("Transpose", ["k1"], ["k"], perm=[0, 2, 1, 3]),
                  helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
                  helper.make_node("MatMul", ["q", "kt"], ["s0"]), helper.make_node("Div", ["s0", "sc"], ["s"]),
                  helper.make_node("Softmax", ["s"], ["p"], axis=-1)]
    nodes += [helper.make_node("MatMul", ["p", "v"], ["o"]), helper.make_node("Transpose", ["o"], ["o1"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["o1", "ms"], ["y"])]
    return nodes


attn_inits = [init("wq", w((D, D))), init("wk", w((D, D))), init("wv", w((D, D))),
              init("hs", np.array([1, T, HEADS, D // HEADS], dtype=np.int64)), init("ms", np.array([1, T, D], dtype=np.int64)),
              init("sc", np.float32(np.sqrt(D // HEADS))), init("rs", np.float32((D // HEADS) ** -0.25))]
save("attention", attention_nodes(False), attn_inits, (1, T, D), None, opset=14)
save("attention_sdpa", attention_nodes(True), attn_inits, (1, T, D), None, opset=14)

# Operators of timm exports (issue 18): Split (opset 13 `split` input; opset 18 `num_outputs`),
# Cos/Sin, Mod (runtime fmod=1; integer fmod=0 folded on shapes), ReduceL2 (opset 18 axes input),
# InstanceNormalization (4-D, and PoolFormer's GroupNorm(1, C) over a reshaped [N, 1, C·H·W]).
save("split_trig", [helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=1),
                    helper.make_node("Cos", ["a"], ["ca"]), helper.make_node("Sin", ["b"], ["sb"]),
                    helper.make_node("Concat", ["sb", "ca"], ["j"], axis=1),
                    helper.make_node("Split", ["j"], ["p", "q", "r"], axis=3, num_outputs=3),
                    helper.make_node("Concat", ["r", "p", "q"], ["y"], axis=3)],
     [init("sp", np.array([1, 2], dtype=np.int64))], (N, C, H, W), None, opset=18)
save("mod_reduce_l2", [helper.make_node("Shape", ["x"], ["s"]),
                       helper.make_node("Slice", ["s", "s2", "s4"], ["hw"]),
                       helper.make_node("Mod", ["hw", "four"], ["rem"]),          # [9 % 4, 11 % 4] = [1, 3]
                       helper.make_node("Sub", ["four", "rem"], ["need"]),         # pad to a multiple of 4: [3, 1]
                       helper.make_node("Mod", ["need", "four"], ["padhw"]),
                       helper.make_node("Split", ["padhw"], ["ph", "pw"], axis=0, num_outputs=2),
                       helper.make_node("Concat", ["z2", "z1", "z1", "z2", "ph", "pw"], ["pads"], axis=0),
                       helper.make_node("Pad", ["x", "pads"], ["xp"]),
                       helper.make_node("Mod", ["xp", "m"], ["xm"], fmod=1),
                       helper.make_node("ReduceL2", ["xm", "ax1"], ["n"], keepdims=1),
                       helper.make_node("Cos", ["k"], ["ck"]),
                       helper.make_node("ReduceL2", ["ck"], ["nk"], keepdims=0),
                       helper.make_node("Div", ["ck", "nk"], ["unit"]),
                       helper.make_node("Mul", ["n", "unit"], ["y"])],
     [init("s2", np.array([2], dtype=np.int64)), init("s4", np.array([4], dtype=np.int64)),
      init("four", np.array([4], dtype=np.int64)), init("z1", np.array([0], dtype=np.int64)),
      init("z2", np.array([0, 0], dtype=np.int64)), init("m", np.float32(0.7)),
      init("ax1", np.array([1], dtype=np.int64)), init("k", w((12, 1)))], (N, C, H, W), None, opset=18,
     # x = 0.7·k + f with f in [0.1, 0.6]: at least 0.1 from every jump of fmod(x, 0.7).
     x=(rng.integers(-4, 4, (N, C, H, W)) * 0.7 + rng.uniform(0.1, 0.6, (N, C, H, W))).astype(np.float32))
save("instancenorm", [helper.make_node("InstanceNormalization", ["x", "sc", "bi"], ["i"], epsilon=1e-5),
                      helper.make_node("Reshape", ["x", "flat"], ["xf"]),
                      helper.make_node("InstanceNormalization", ["xf", "one", "zero"], ["gf"], epsilon=1e-5),
                      helper.make_node("Reshape", ["gf", "shape"], ["g"]),
                      helper.make_node("Mul", ["g", "cw"], ["gw"]),
                      helper.make_node("Add", ["i", "gw"], ["y"])],
     [init("sc", w((C,)) + 1), init("bi", w((C,))), init("flat", np.array([N, 1, -1], dtype=np.int64)),
      init("one", np.ones(1, np.float32)), init("zero", np.zeros(1, np.float32)),
      init("shape", np.array([N, C, H, W], dtype=np.int64)), init("cw", w((C, 1, 1)) + 1)], (N, C, H, W), None)
# CumSum of a constant (EdgeNeXt's position encoding: a cumulative sum over a mask of ones), folded.
save("cumsum_folded", [helper.make_node("ConstantOfShape", ["cs_shape"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
                       helper.make_node("CumSum", ["ones", "cs_ax"], ["ramp"]),
                       helper.make_node("CumSum", ["ramp", "cs_ax2"], ["ramp2"], exclusive=1, reverse=1),
                       helper.make_node("Mul", ["x", "ramp"], ["xr"]),
                       helper.make_node("Add", ["xr", "ramp2"], ["y"])],
     [init("cs_shape", np.array([1, 1, H, W], dtype=np.int64)), init("cs_ax", np.array(2, dtype=np.int64)),
      init("cs_ax2", np.array(-1, dtype=np.int64))], (N, C, H, W), None)
# GatherND of constants (LeViT's attention biases as exported by dynamo), folded.
save("gathernd_folded", [helper.make_node("GatherND", ["gn_data", "gn_idx"], ["gb"]),
                         helper.make_node("Add", ["x", "gb"], ["y"])],
     [init("gn_data", w((4, 5, W))), init("gn_idx", np.stack([rng.integers(0, 4, (C, H)), rng.integers(-5, 5, (C, H))], axis=-1).astype(np.int64))],
     (N, C, H, W), None)
# A Conv whose input is a constant (EdgeNeXt projects its Fourier position encoding this way).
# Then Tile of that (now runtime) value, as XCiT's TorchScript export does, and Tile of the image path.
save("conv_constant_input", [helper.make_node("Cos", ["pe"], ["pc"]),
                             helper.make_node("Conv", ["pc", "pw", "pb"], ["pp"], pads=[1, 1, 1, 1]),
                             helper.make_node("Tile", ["pp", "rep_n"], ["ppn"]),
                             helper.make_node("Add", ["x", "ppn"], ["s"]),
                             helper.make_node("Tile", ["s", "rep_cw"], ["y"])],
     [init("pe", w((1, C, H, W), 2)), init("pw", w((C, C, 3, 3))), init("pb", w((C,))),
      init("rep_n", np.array([N, 1, 1, 1], dtype=np.int64)), init("rep_cw", np.array([1, 2, 1, 3], dtype=np.int64))],
     (N, C, H, W), None)
# Tile of rank-5 and rank-6 values with 4 repeated axes each: splitting every repeated axis at once would
# need rank 9 and 10 (more than amgpu's 8), so the importer tiles in stages.
save("tile_rank5_rank6", [helper.make_node("Reshape", ["x", "s5"], ["x5"]),
                          helper.make_node("Tile", ["x5", "rep5"], ["t5"]),
                          helper.make_node("Reshape", ["t5", "s6"], ["x6"]),
                          helper.make_node("Tile", ["x6", "rep6"], ["t6"]),
                          helper.make_node("ReduceSum", ["t6", "ax0"], ["y"], keepdims=0)],
     [init("s5", np.array([N, C, 3, 3, W], dtype=np.int64)), init("rep5", np.array([2, 2, 2, 1, 2], dtype=np.int64)),
      init("s6", np.array([2 * N, 2 * C, 2, 3, 3, 2 * W], dtype=np.int64)),
      init("rep6", np.array([1, 2, 2, 1, 2, 2], dtype=np.int64)), init("ax0", np.array([0], dtype=np.int64))],
     (N, C, H, W), None)
print("wrote test models to", OUT)
