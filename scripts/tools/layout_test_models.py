#!/usr/bin/env python3
"""Writes the small models of Tests/GPUEngineTests/Fixtures/layouts (committed) for
Tests/GPUEngineTests/ModelCardTests.swift: input layouts other than NCHW RGB 224, graphs that end
in Softmax/LogSoftmax, and a timm config.json.

Usage: layout_test_models.py OUT_DIR        (needs torch, timm, onnx, onnxruntime, numpy:
        ~/.cache/amgpu/bench-venv/bin/python scripts/tools/layout_test_models.py Tests/GPUEngineTests/Fixtures/layouts)

For each case NAME it writes NAME.onnx and
  NAME.input.npy   what amgpu feeds the graph: an NCHW RGB batch [B, 3, H, W] (already normalized),
  NAME.output.npy  onnxruntime's output of the model on that batch in the model's own layout
                   (NHWC: transposed; grey: 0.299 R + 0.587 G + 0.114 B),
  NAME.logits.npy  (models ending in Softmax/LogSoftmax) onnxruntime's value of the softmax input.
Cases:
  tf_nhwc_prologue   hand-built with the onnx helper in tf2onnx's form (TensorFlow itself is too large
                     to install here): input [unk__0, 48, 64, 3] (dynamic batch, non-square, NHWC),
                     Transpose(perm [0,3,1,2]), Conv/Clip(ReLU6)/depthwise Conv, GlobalAveragePool,
                     Squeeze, MatMul+Add to 1001 classes (background at 0), Softmax; metadata_props
                     amgpu.mean = "0.5,0.5,0.5" and amgpu.std = "[0.5, 0.5, 0.5]" (inputs in [-1, 1]).
  keras_channels_last  hand-built Keras Flatten+Dense form used channel-last throughout (no Transpose):
                     input [1, 16, 12, 3], per-channel Mul, Reshape, MatMul+Add, LogSoftmax.
  grey_nhwc          hand-built: input [N, 28, 28, 1] (dynamic batch), Transpose, Conv, Relu, Flatten, Gemm (10 logits).
  torch_grey_softmax torch.onnx.export of a small torch CNN on grey [N, 1, 20, 24] (dynamic batch) ending in nn.Softmax.
  timm_test_resnet   torch.onnx.export of timm's test_resnet (random weights, 10 classes) at 3×64×96, dynamic batch.
and timm_resnet18_config.json: the config.json timm's own save_for_hf writes for resnet18
(pretrained_cfg with mean/std/input_size/crop_pct/interpolation), with id2label added as
Hugging Face's does.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(17)


def w(shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def run(model_bytes, x, extra_output=None):
    m = onnx.load_from_string(model_bytes)
    if extra_output:
        m.graph.output.append(helper.make_tensor_value_info(extra_output, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {m.graph.input[0].name: x})


def model_layout_input(x_nchw_rgb, layout, channels):
    """The engine's NCHW RGB batch in the model's own layout (what amgpu's prologue computes)."""
    x = x_nchw_rgb
    if channels == 1:
        x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(np.float32)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def save(name, model_bytes, batch, h, w_, layout, channels, logits_name=None):
    x = rng.uniform(-1.5, 1.5, (batch, 3, h, w_)).astype(np.float32)
    outs = run(model_bytes, model_layout_input(x, layout, channels), logits_name)
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    np.save(os.path.join(OUT, name + ".output.npy"), outs[0].astype(np.float32))
    if logits_name:
        np.save(os.path.join(OUT, name + ".logits.npy"), outs[-1].reshape(outs[0].shape).astype(np.float32))
    print(f"{name}: {len(model_bytes)} bytes, input {x.shape}, output {outs[0].shape}")


def make(nodes, inits, in_name, in_dims, out_name, out_dims, opset=13, metadata=None):
    graph = helper.make_graph(nodes, "tf2onnx" if "tf" in in_name else "g",
                              [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_dims)],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_dims)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx")
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    return model.SerializeToString()


# --- tf2onnx-style NHWC MobileNet-like classifier, 1001 classes, Softmax at the end -------------
p = "StatefulPartitionedCall/model/"
nodes = [
    helper.make_node("Transpose", ["input_1"], ["input_1__6:0"], name=p + "conv1/Conv2D__6", perm=[0, 3, 1, 2]),
    helper.make_node("Conv", ["input_1__6:0", "conv1_w", "conv1_b"], ["conv1:0"], name=p + "conv1/Conv2D",
                     kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
    helper.make_node("Clip", ["conv1:0", "zero", "six"], ["relu1:0"], name=p + "conv1_relu/Relu6"),
    helper.make_node("Conv", ["relu1:0", "dw_w", "dw_b"], ["dw:0"], name=p + "dw/depthwise",
                     kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], group=8),
    helper.make_node("Clip", ["dw:0", "zero", "six"], ["relu2:0"], name=p + "dw_relu/Relu6"),
    helper.make_node("GlobalAveragePool", ["relu2:0"], ["gap:0"], name=p + "global_average_pooling2d/Mean"),
    helper.make_node("Squeeze", ["gap:0", "sq_axes"], ["flat:0"], name=p + "global_average_pooling2d/Mean_Squeeze__10"),
    helper.make_node("MatMul", ["flat:0", "fc_w"], ["mm:0"], name=p + "predictions/MatMul"),
    helper.make_node("Add", ["mm:0", "fc_b"], ["logits:0"], name=p + "predictions/BiasAdd"),
    helper.make_node("Softmax", ["logits:0"], ["predictions"], name=p + "predictions/Softmax", axis=-1),
]
inits = [init("conv1_w", w([8, 3, 3, 3])), init("conv1_b", w([8], 0.1)), init("zero", np.float32(0)), init("six", np.float32(6)),
         init("dw_w", w([8, 1, 3, 3])), init("dw_b", w([8], 0.1)), init("sq_axes", np.array([2, 3], np.int64)),
         init("fc_w", w([8, 1001], 1.0)), init("fc_b", w([1001], 0.2))]
save("tf_nhwc_prologue", make(nodes, inits, "input_1", ["unk__0", 48, 64, 3], "predictions", ["unk__0", 1001],
                              metadata={"amgpu.mean": "0.5,0.5,0.5", "amgpu.std": "[0.5, 0.5, 0.5]"}),
     batch=2, h=48, w_=64, layout="NHWC", channels=3, logits_name="logits:0")

# --- Keras Flatten + Dense on a channel-last image, no Transpose, LogSoftmax --------------------
nodes = [
    helper.make_node("Mul", ["image", "scale"], ["scaled"], name="model/rescale/mul"),
    helper.make_node("Reshape", ["scaled", "flat_shape"], ["flat"], name="model/flatten/Reshape"),
    helper.make_node("MatMul", ["flat", "dense_w"], ["mm"], name="model/dense/MatMul"),
    helper.make_node("Add", ["mm", "dense_b"], ["dense"], name="model/dense/BiasAdd"),
    helper.make_node("LogSoftmax", ["dense"], ["log_probs"], name="model/dense/LogSoftmax", axis=1),
]
inits = [init("scale", np.array([0.9, 1.1, 1.3], np.float32)), init("flat_shape", np.array([1, 16 * 12 * 3], np.int64)),
         init("dense_w", w([16 * 12 * 3, 6], 0.1)), init("dense_b", w([6], 0.1))]
save("keras_channels_last", make(nodes, inits, "image", [1, 16, 12, 3], "log_probs", [1, 6], opset=11),
     batch=1, h=16, w_=12, layout="NHWC", channels=3, logits_name="dense")

# --- grey NHWC (MNIST-like), dynamic batch -------------------------------------------------------
nodes = [
    helper.make_node("Transpose", ["digits"], ["digits_nchw"], name="Transpose__5", perm=[0, 3, 1, 2]),
    helper.make_node("Conv", ["digits_nchw", "c_w", "c_b"], ["c"], name="conv", kernel_shape=[5, 5], strides=[2, 2]),
    helper.make_node("Relu", ["c"], ["r"], name="relu"),
    helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
    helper.make_node("Gemm", ["f", "g_w", "g_b"], ["scores"], name="dense", transB=1),
]
inits = [init("c_w", w([4, 1, 5, 5], 0.3)), init("c_b", w([4], 0.1)), init("g_w", w([10, 4 * 12 * 12], 0.1)), init("g_b", w([10], 0.1))]
save("grey_nhwc", make(nodes, inits, "digits", ["N", 28, 28, 1], "scores", ["N", 10]), batch=3, h=28, w_=28, layout="NHWC", channels=1)

# --- PyTorch exports ------------------------------------------------------------------------------
import torch  # noqa: E402
import timm  # noqa: E402

torch.manual_seed(3)


def torch_export(module, example, path):
    module.eval()
    torch.onnx.export(module, (example,), path, input_names=["x"], output_names=["y"], opset_version=17,
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m.SerializeToString()


class GreyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
                                            torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 8, 3), torch.nn.ReLU())
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))
        self.softmax = torch.nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.head(self.features(x)))


tmp = os.path.join(OUT, "tmp.onnx")
grey = GreyNet()
with torch.no_grad():
    for p_ in grey.features[1].parameters():
        p_.uniform_(0.5, 1.5)
    grey.features[1].running_mean.uniform_(-0.2, 0.2)
    grey.features[1].running_var.uniform_(0.5, 2)
data = torch_export(grey, torch.zeros(1, 1, 20, 24), tmp)
softmax_in = [n for n in onnx.load_from_string(data).graph.node if n.op_type == "Softmax"][0].input[0]
save("torch_grey_softmax", data, batch=2, h=20, w_=24, layout="NCHW", channels=1, logits_name=softmax_in)

net = timm.create_model("test_resnet", pretrained=False, num_classes=10)
data = torch_export(net, torch.zeros(1, 3, 64, 96), tmp)
save("timm_test_resnet", data, batch=2, h=64, w_=96, layout="NCHW", channels=3)
os.remove(tmp)

# --- timm's own config.json -----------------------------------------------------------------------
import tempfile  # noqa: E402
from timm.models import save_for_hf  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    save_for_hf(timm.create_model("resnet18", pretrained=False), d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
cfg["id2label"] = {str(i): f"label {i}" for i in range(cfg.get("num_classes", 1000))}
with open(os.path.join(OUT, "timm_resnet18_config.json"), "w") as f:
    json.dump(cfg, f, indent=2)
print("timm_resnet18_config.json:", {k: cfg.get("pretrained_cfg", {}).get(k) for k in ["mean", "std", "input_size", "crop_pct", "interpolation"]})

# --- PIL resizes (Tests: ImagePreprocessing.resize bicubic/bilinear) -----------------------------
from PIL import Image  # noqa: E402

yy, xx = np.mgrid[0:37, 0:53]
src = np.stack([(xx * 5 + yy * 3) % 256, (xx * xx + 7 * yy) % 256, rng.integers(0, 256, (37, 53))], -1).astype(np.uint8)
np.save(os.path.join(OUT, "resize_src.npy"), src.astype(np.float32))
for name, flt, size in [("bicubic", Image.BICUBIC, (23, 17)), ("bilinear", Image.BILINEAR, (23, 17))]:
    out = np.asarray(Image.fromarray(src).resize(size, flt))
    np.save(os.path.join(OUT, f"resize_{name}.npy"), out.astype(np.float32))
print("resize_src.npy 37×53 → 17×23 with PIL BICUBIC and BILINEAR")
