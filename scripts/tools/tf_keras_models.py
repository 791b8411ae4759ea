#!/usr/bin/env python3
"""Exports a small MobileNet-like Keras classifier with the real TensorFlow toolchain, for the
fixtures of Tests/GPUEngineTests/ModelCardTests.swift (same file set as
scripts/tools/layout_test_models.py writes).

Usage: tf_keras_models.py OUT_DIR     (needs tensorflow(-cpu), tf2onnx, onnx, onnxruntime, numpy; used 2026-12-01:
       tensorflow-cpu 2.21.0, Keras 3.15.1, tf2onnx 1.17.0, onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6, from PyPI)
       e.g. python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 onnxruntime==1.32.0
            /tmp/tf/bin/python scripts/tools/tf_keras_models.py Tests/GPUEngineTests/Fixtures/layouts

Model (Keras, seeded random weights, BatchNorm with explicit non-trivial moving mean/variance):
  Input (48, 64, 3) NHWC, dynamic batch -> Conv2D 3x3 stride 2 (8) + BN + ReLU(max_value=6)
  -> DepthwiseConv2D 3x3 + BN + ReLU6 -> Conv2D 1x1 (16) -> GlobalAveragePooling2D
  -> Dense(1001) -> Activation("softmax") as a separate layer.
Cases NAME:
  tf2onnx_keras_mobilenet  tf2onnx.convert.from_keras (falls back to from_function on a
                           tf.function of the model if from_keras fails with Keras 3), opset 17.
  tflite_keras_mobilenet   tf.lite.TFLiteConverter, then `python -m tf2onnx.convert --tflite`.
Each gets metadata_props amgpu.mean = amgpu.std = "0.5,0.5,0.5" (inputs in [-1, 1]) and
  NAME.onnx, NAME.input.npy (seeded NCHW RGB batch of 2 in [-1, 1]),
  NAME.output.npy (onnxruntime on input.transpose(0, 2, 3, 1)), NAME.logits.npy (Softmax input).
"""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "out"
os.makedirs(OUT, exist_ok=True)
H, W, C, CLASSES = 48, 64, 3, 1001
META = {"amgpu.mean": "0.5,0.5,0.5", "amgpu.std": "0.5,0.5,0.5"}

tf.random.set_seed(5)
np.random.seed(5)
keras = tf.keras
keras.utils.set_random_seed(5)
rng = np.random.default_rng(23)


def build():
    L = keras.layers
    inp = keras.Input((H, W, C), name="input_1")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv1")(inp)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.ReLU(max_value=6.0, name="conv1_relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv_dw_1")(x)
    x = L.BatchNormalization(name="conv_dw_1_bn")(x)
    x = L.ReLU(6.0, name="conv_dw_1_relu")(x)
    x = L.Conv2D(16, 1, name="conv_pw_1")(x)
    x = L.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = L.Dense(CLASSES, name="logits")(x)
    out = L.Activation("softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="mobilenet_tiny")
    # Non-trivial BatchNorm statistics (gamma, beta, moving_mean, moving_variance).
    for name in ("conv1_bn", "conv_dw_1_bn"):
        bn = model.get_layer(name)
        n = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, n).astype(np.float32), rng.normal(0, 0.2, n).astype(np.float32),
                        rng.normal(0, 0.5, n).astype(np.float32), rng.uniform(0.3, 2.0, n).astype(np.float32)])
    # Larger logits weights so the softmax is not flat.
    d = model.get_layer("logits")
    d.set_weights([rng.normal(0, 1.0, d.kernel.shape).astype(np.float32), rng.normal(0, 0.2, CLASSES).astype(np.float32)])
    return model


def add_meta(model):
    del model.metadata_props[:]
    for k, v in META.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    return model


def run(model, x, extra_output=None):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if extra_output:
        m.graph.output.append(helper.make_tensor_value_info(extra_output, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {m.graph.input[0].name: x})


def softmax_input(model):
    sm = [n for n in model.graph.node if n.op_type == "Softmax"]
    assert len(sm) == 1, [n.op_type for n in model.graph.node]
    assert sm[0].output[0] == model.graph.output[0].name, "Softmax is not the graph output"
    return sm[0].input[0]


def save(name, model, keras_model, x):
    model = add_meta(model)
    data = model.SerializeToString()
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    logits_name = softmax_input(model)
    outs = run(model, x_nhwc, logits_name)
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(data)
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    np.save(os.path.join(OUT, name + ".output.npy"), outs[0].astype(np.float32))
    np.save(os.path.join(OUT, name + ".logits.npy"), outs[-1].reshape(outs[0].shape).astype(np.float32))
    k_probs = keras_model(x_nhwc, training=False).numpy()
    k_logits = keras.Model(keras_model.input, keras_model.get_layer("logits").output)(x_nhwc, training=False).numpy()
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{name}: {len(data)} bytes, input {model.graph.input[0].name} "
          f"{[d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]}, "
          f"output {model.graph.output[0].name} {outs[0].shape}, softmax input {logits_name!r}, opset "
          f"{[o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')]}, producer "
          f"{model.producer_name} {model.producer_version}")
    print(f"  ops: {' '.join(ops)}")
    print(f"  keras vs onnxruntime: max|dprob| {np.abs(k_probs - outs[0]).max():.3g}, "
          f"max|dlogit| {np.abs(k_logits - outs[-1]).max():.3g} (logit range {np.abs(k_logits).max():.3g}); "
          f"argmax keras {k_probs.argmax(1).tolist()} ort {outs[0].argmax(1).tolist()}, "
          f"top prob {outs[0].max(1).round(4).tolist()}")


keras_model = build()
x = rng.uniform(-1.0, 1.0, (2, 3, H, W)).astype(np.float32)
spec = [tf.TensorSpec([None, H, W, C], tf.float32, name="input_1")]

import tf2onnx  # noqa: E402

try:
    proto, _ = tf2onnx.convert.from_keras(keras_model, input_signature=spec, opset=17)
    print("tf2onnx.convert.from_keras: ok")
except Exception as e:  # Keras 3 models are not always accepted by from_keras
    print(f"tf2onnx.convert.from_keras failed ({type(e).__name__}: {e}); using from_function")
    fn = tf.function(lambda t: keras_model(t, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
save("tf2onnx_keras_mobilenet", proto, keras_model, x)

# --- TFLite variant --------------------------------------------------------------------------------
if os.environ.get("SKIP_TFLITE") != "1":
    fn = tf.function(lambda t: keras_model(t, training=False), input_signature=spec)
    try:
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        tfl = conv.convert()
        how = "from_keras_model"
    except Exception as e:
        print(f"TFLiteConverter.from_keras_model failed ({type(e).__name__}: {e}); using from_concrete_functions")
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], keras_model)
        tfl = conv.convert()
        how = "from_concrete_functions"
    tfl_path = os.path.join(OUT, "tflite_keras_mobilenet.tflite.tmp")
    with open(tfl_path, "wb") as f:
        f.write(tfl)
    onnx_tmp = tfl_path + ".onnx"
    r = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", tfl_path, "--output", onnx_tmp,
                        "--opset", "17"], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        raise SystemExit("tf2onnx --tflite failed")
    print(f"TFLiteConverter.{how}: {len(tfl)} bytes; tf2onnx --tflite: ok")
    save("tflite_keras_mobilenet", onnx.load(onnx_tmp), keras_model, x)
    os.remove(tfl_path)
    os.remove(onnx_tmp)
