#!/usr/bin/env python3
"""The ONNX zoo sweep behind scripts/onnx-zoo (see there for usage).

For each timm family (smallest variant, random weights, seed 0, eval mode) and each exporter
(TorchScript-based `dynamo=False`, and `dynamo=True`) and opset:
  1. export to ONNX;
  2. run onnxruntime (CPU, all graph optimisations off) on a fixed input tensor x: y_ort;
  3. run `amgpu run-tensor` on the same x (same .npy file): y, and the input gradient g of r·y
     for a fixed random seed r shaped like the output;
  4. logits error = max|y − y_ort| / max|y_ort| (must be ≤ 1e-4);
     gradient error = |<g, d> − D| / max(|D|, ‖g‖·‖d‖·1e-3) for a random direction d, against two
     references computed by PyTorch in float64: D = autograd's <∇(r·f), d>, and D = the central
     difference r·(f(x + h d) − f(x − h d))/2h, h = 1e-5; the smaller error must be ≤ 1e-3 (each
     reference fails somewhere: autograd disagrees with the difference for EfficientFormer, LeViT
     and XCiT; the difference crosses kinks or blows up in random-weight CNNs; see docs/models.md).
     onnxruntime's float32 central difference (h = 1e-2) is recorded in the .jsonl too.
A model amgpu refuses is reported with the operators its error lists; any other failure is
reported with the first line of the error. Nothing is kept but the log (exports go to --work).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

# (family, timm name, kind, input size, extra kwargs). The smallest variant of each family; the
# input is reduced where the architecture allows it (kwargs resize position embeddings/windows).
FAMILIES = [
    ("ResNet", "resnet18", "CNN", 96, {}),
    ("RegNet", "regnetx_002", "CNN", 96, {}),
    ("DenseNet", "densenet121", "CNN", 64, {}),
    ("EfficientNet", "efficientnet_b0", "CNN", 96, {}),
    ("MobileNetV3", "mobilenetv3_small_050", "CNN", 96, {}),
    ("GhostNet", "ghostnet_050", "CNN", 96, {}),
    ("LCNet", "lcnet_050", "CNN", 96, {}),
    ("MobileOne", "mobileone_s0", "CNN", 96, {}),
    ("ConvNeXt", "convnext_atto", "CNN", 96, {}),
    ("ConvNeXtV2", "convnextv2_atto", "CNN", 96, {}),
    ("RepViT", "repvit_m0_9", "CNN", 96, {}),
    ("FastViT", "fastvit_t8", "hybrid", 96, {}),
    ("PoolFormer", "poolformer_s12", "MetaFormer", 96, {}),
    ("EdgeNeXt", "edgenext_xx_small", "hybrid", 96, {}),
    ("MobileViT", "mobilevit_xxs", "hybrid", 96, {}),
    ("EfficientFormer", "efficientformer_l1", "hybrid", 224, {}),
    ("LeViT", "levit_128s", "ViT", 224, {}),
    ("ViT", "vit_tiny_patch16_224", "ViT", 96, {"img_size": 96}),
    ("DeiT", "deit_tiny_patch16_224", "ViT", 96, {"img_size": 96}),
    ("DeiT III", "deit3_small_patch16_224", "ViT", 96, {"img_size": 96}),
    ("BEiT", "beit_base_patch16_224", "ViT", 64, {"img_size": 64}),
    ("EVA-02", "eva02_tiny_patch14_224", "ViT", 112, {"img_size": 112}),
    ("CaiT", "cait_xxs24_224", "ViT", 96, {"img_size": 96}),
    ("XCiT", "xcit_nano_12_p16_224", "ViT", 96, {"img_size": 96}),
    ("PiT", "pit_ti_224", "ViT", 224, {}),
    ("CoaT", "coat_lite_tiny", "ViT", 224, {}),
    ("PVTv2", "pvt_v2_b0", "ViT", 96, {}),
    ("Swin", "swin_tiny_patch4_window7_224", "ViT", 224, {}),
    ("TinyViT", "tiny_vit_5m_224", "ViT", 224, {}),
    ("MLP-Mixer", "mixer_s32_224", "MLP", 224, {}),
]


def rel_err(a, e):
    return float(np.max(np.abs(a - e)) / max(float(np.max(np.abs(e))), 1e-12))


def randomize_zero_weights(model):
    """timm zero-initialises some weight matrices (MLP-Mixer's head): logits and gradients would be 0.
    Those get N(0, 0.02²) values (seeded), so every family has non-trivial outputs to compare."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def torch_fd64(m64, x, r, d, h=1e-5):
    """Σ r ⊙ (f(x + h d) − f(x − h d)) / 2h with the float64 model."""
    with torch.no_grad():
        X, D, R = (torch.from_numpy(a).double() for a in (x, d, r))
        return float(((m64(X + h * D) - m64(X - h * D)) * R).sum() / (2 * h))


def refresh_fd(args):
    """Adds the float64 finite-difference reference to the rows of an earlier --jsonl (no export, no amgpu run)."""
    rows = [json.loads(line) for line in open(args.jsonl)]
    spec = {f[1]: f for f in FAMILIES}
    cache = {}
    for row in rows:
        if "dd_amgpu" not in row or row["model"] not in spec:
            continue
        if row["model"] not in cache and "dd_fd64" in row:
            cache[row["model"]] = row["dd_fd64"]
        if row["model"] not in cache:
            _, name, _, size, kwargs = spec[row["model"]]
            torch.manual_seed(0)
            model = timm.create_model(name, pretrained=False, **kwargs).eval()
            randomize_zero_weights(model)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
            with torch.no_grad():
                y = model(torch.from_numpy(x)).numpy()
            r = rng.uniform(-1, 1, y.shape).astype(np.float32)
            d = rng.uniform(-1, 1, x.shape).astype(np.float32)
            m64 = timm.create_model(name, pretrained=False, **kwargs).eval().double()
            m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()})
            cache[row["model"]] = torch_fd64(m64, x, r, d)
            print(row["family"], "fd64", cache[row["model"]], "amgpu", row["dd_amgpu"], "autograd", row["dd_torch"], flush=True)
        dd, fd = row["dd_amgpu"], cache[row["model"]]
        scale = row.get("grad_scale") or max(abs(row["dd_torch"]), 1e-12)
        row["dd_fd64"] = fd
        row["autograd_rel_err"] = abs(dd - row["dd_torch"]) / scale
        row["fd_rel_err"] = abs(dd - fd) / max(scale, abs(fd))
        row["grad_rel_err"] = min(row["fd_rel_err"], row["autograd_rel_err"])
        row["status"] = "match" if row["logits_rel_err"] <= 1e-4 and row["grad_rel_err"] <= 1e-3 else "MISMATCH"
    with open(args.jsonl, "w") as jl:
        for row in rows:
            jl.write(json.dumps(row) + "\n")
    write_table(rows, args, 0)


def export(model, x, path, exporter, opset):
    if exporter == "torchscript":
        torch.onnx.export(model, (x,), path, opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["logits"])
    else:
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, verbose=False)
        prog.save(path)


def ort_run(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


UNSUPPORTED = re.compile(r"operators amgpu does not support: (.*?)\. Re-export")


def amgpu_run(binary, path, size, work, device, timeout):
    out, grad = os.path.join(work, "y.npy"), os.path.join(work, "g.npy")
    for p in (out, grad):
        if os.path.exists(p):
            os.remove(p)
    cmd = [binary, "run-tensor", "--model", path, "--size", str(size), "--input", os.path.join(work, "x.npy"),
           "--out", out, "--seed", os.path.join(work, "r.npy"), "--grad-out", grad, "--device", device]
    t = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"timeout after {timeout} s", time.time() - t
    except OSError as e:
        return None, None, f"cannot run {binary}: {e}", time.time() - t
    dt = time.time() - t
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])
        msg = next((line for line in err if "error" in line), err[-1])
        m = UNSUPPORTED.search(p.stderr)
        if m:
            ops = [o.split(" (")[0] for o in m.group(1).split(", ")]
            msg = "unsupported: " + ", ".join(ops)
        if p.returncode not in (0, 1):
            msg = f"CRASH (exit {p.returncode}): " + msg
        return None, None, msg, dt
    return np.load(out), np.load(grad), None, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--amgpu", required=True)
    ap.add_argument("--families", default="")
    ap.add_argument("--exporters", default="torchscript,dynamo")
    ap.add_argument("--opsets", default="17,18")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default="")
    ap.add_argument("--log", default="docs/logs/onnx-zoo.md")
    ap.add_argument("--jsonl", default="docs/logs/onnx-zoo.jsonl")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--update", action="store_true",
                    help="keep the other families' rows of an earlier --jsonl and replace only the ones run now")
    ap.add_argument("--refresh-fd", action="store_true",
                    help="only recompute the float64 finite-difference reference for the rows of --jsonl")
    args = ap.parse_args()
    if args.refresh_fd:
        return refresh_fd(args)
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    wanted = {f.strip().lower() for f in args.families.split(",") if f.strip()}
    families = [f for f in FAMILIES if not wanted or f[0].lower() in wanted or f[1].lower() in wanted]
    exporters = args.exporters.split(",")
    opsets = [int(o) for o in args.opsets.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="amgpu-onnx-zoo-")
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.dirname(args.jsonl) or ".", exist_ok=True)
    rows = []
    kept = []
    if args.update and os.path.exists(args.jsonl):
        names = {f[1] for f in families}
        kept = [r for r in map(json.loads, open(args.jsonl)) if r["model"] not in names]
    started = time.time()
    with open(args.jsonl, "w") as jl:
        for r in kept:
            jl.write(json.dumps(r) + "\n")
        for family, name, kind, size, kwargs in families:
            torch.manual_seed(0)
            try:
                model = timm.create_model(name, pretrained=False, **kwargs).eval()
                randomize_zero_weights(model)
            except Exception as e:  # noqa: BLE001
                row = dict(family=family, model=name, kind=kind, size=size, exporter="-", opset=0,
                           status="timm: " + str(e).splitlines()[0][:120])
                rows.append(row); jl.write(json.dumps(row) + "\n"); jl.flush()
                continue
            rng = np.random.default_rng(0)
            x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.no_grad():
                y_torch = model(xt).numpy()
            r = rng.uniform(-1, 1, y_torch.shape).astype(np.float32)
            d = rng.uniform(-1, 1, x.shape).astype(np.float32)
            np.save(os.path.join(work, "x.npy"), x)
            np.save(os.path.join(work, "r.npy"), r)
            # Directional derivative of r·f along d by autograd (float64 model).
            m64 = timm.create_model(name, pretrained=False, **kwargs).eval().double()
            m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()})
            x64 = torch.from_numpy(x).double().requires_grad_(True)
            (m64(x64) * torch.from_numpy(r).double()).sum().backward()
            dd_torch = float((x64.grad * torch.from_numpy(d).double()).sum())
            dd_fd64 = torch_fd64(m64, x, r, d)
            del m64
            for exporter in exporters:
                for opset in opsets:
                    row = dict(family=family, model=name, kind=kind, size=size, exporter=exporter, opset=opset)
                    path = os.path.join(work, f"{name}.{exporter}.{opset}.onnx")
                    t0 = time.time()
                    try:
                        export(model, xt, path, exporter, opset)
                        proto = onnx.load(path, load_external_data=False)
                        row["ops"] = sorted({n.op_type for n in proto.graph.node})
                        # The opset the file declares: the dynamo exporter writes 18 and its down-conversion
                        # (onnx's C API) fails for many graphs, leaving them at 18 (see docs/models.md).
                        row["file_opset"] = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
                    except Exception as e:  # noqa: BLE001
                        row["status"] = "export failed: " + (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                        rows.append(row); jl.write(json.dumps(row) + "\n"); jl.flush()
                        print(json.dumps(row), flush=True)
                        continue
                    row["export_s"] = round(time.time() - t0, 1)
                    try:
                        y_ort = ort_run(path, x)
                        h = 1e-2
                        dd_ort = float(np.sum(r.astype(np.float64) * (ort_run(path, x + h * d).astype(np.float64)
                                                                     - ort_run(path, x - h * d).astype(np.float64))) / (2 * h))
                        row["ort_vs_torch"] = rel_err(y_ort, y_torch)
                        row["dd_ort_fd"] = dd_ort
                    except Exception as e:  # noqa: BLE001
                        row["status"] = "onnxruntime failed: " + str(e).splitlines()[0][:160]
                        rows.append(row); jl.write(json.dumps(row) + "\n"); jl.flush()
                        print(json.dumps(row), flush=True)
                        continue
                    y, g, err, dt = amgpu_run(args.amgpu, path, size, work, args.device, args.timeout)
                    row["amgpu_s"] = round(dt, 1)
                    if err:
                        row["status"] = err
                    else:
                        row["logits_rel_err"] = rel_err(y.reshape(y_ort.shape), y_ort)
                        dd = float(np.sum(g.astype(np.float64) * d.astype(np.float64)))
                        scale = max(abs(dd_torch), float(np.linalg.norm(g)) * float(np.linalg.norm(d)) * 1e-3, 1e-30)
                        row["dd_amgpu"], row["dd_torch"], row["dd_fd64"] = dd, dd_torch, dd_fd64
                        row["grad_scale"] = scale
                        row["fd_rel_err"] = abs(dd - dd_fd64) / max(scale, abs(dd_fd64))
                        row["autograd_rel_err"] = abs(dd - dd_torch) / scale
                        row["grad_rel_err"] = min(row["fd_rel_err"], row["autograd_rel_err"])
                        ok = row["logits_rel_err"] <= 1e-4 and row["grad_rel_err"] <= 1e-3
                        row["status"] = "match" if ok else "MISMATCH"
                    rows.append(row); jl.write(json.dumps(row) + "\n"); jl.flush()
                    print(json.dumps(row), flush=True)
                    try:
                        os.remove(path)
                        if os.path.exists(path + ".data"):
                            os.remove(path + ".data")
                    except OSError:
                        pass
    order = {f[1]: i for i, f in enumerate(FAMILIES)}
    rows = sorted(kept + rows, key=lambda r: order.get(r["model"], len(order)))
    write_table(rows, args, time.time() - started)


def write_table(rows, args, seconds):
    order = {f[1]: i for i, f in enumerate(FAMILIES)}
    rows = sorted(rows, key=lambda r: order.get(r["model"], len(order)))
    lines = ["# ONNX zoo sweep (scripts/onnx-zoo)", "",
             f"torch {torch.__version__}, timm {timm.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}; "
             f"amgpu device `{args.device}`; table written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             + (f" after a {seconds / 60:.1f} min run." if seconds else " from the .jsonl rows (--update / --refresh-fd reruns)."), "",
             "Random weights (seed 0), eval mode; input N(0,1) of the size shown (the same .npy for onnxruntime and amgpu). "
             "logits: max|amgpu − onnxruntime| / max|onnxruntime| (pass ≤ 1e-4). grad: |<∇ₓ(r·f), d> − D| / |D| for a "
             "random seed r and direction d, with D from PyTorch in float64: autograd, or the central difference (h = 1e-5); "
             "pass: the smaller of the two ≤ 1e-3.", "",
             "| family | model | input | exporter | opset | result | logits rel. err | grad vs autograd | grad vs central diff. | amgpu s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        le = f"{r['logits_rel_err']:.1e}" if "logits_rel_err" in r else ""
        fe = f"{r['fd_rel_err']:.1e}" if "fd_rel_err" in r else ""
        ae = f"{r['autograd_rel_err']:.1e}" if "autograd_rel_err" in r else ""
        lines.append(f"| {r['family']} | {r['model']} | {r['size']} | {r['exporter']} | {r['opset']} | {r.get('status', '?')} | {le} | {ae} | {fe} | {r.get('amgpu_s', '')} |")
    # One line per family: each exporter × opset as ✓ (logits err / grad err) or what stopped it.
    combos = [(e, o) for e in ("torchscript", "dynamo") for o in (17, 18)]
    lines += ["", "Per family (✓ = imports and matches; logits rel. err / grad rel. err of the worst cell):", "",
              "| family | model | kind | input | " + " | ".join(f"{'TS' if e == 'torchscript' else 'dynamo'} {o}" for e, o in combos) + " | worst logits | worst grad |",
              "|---|---|---|---|" + "---|" * (len(combos) + 2)]
    seen = []
    for r in rows:
        if r["model"] not in seen:
            seen.append(r["model"])
    for model in seen:
        fam = [r for r in rows if r["model"] == model]
        cells = []
        for e, o in combos:
            c = next((r for r in fam if r["exporter"] == e and r["opset"] == o), None)
            if c is None:
                cells.append(fam[0].get("status", "—") if fam[0]["exporter"] == "-" else "—")
            elif c.get("status") == "match":
                cells.append("✓")
            else:
                st = c.get("status", "?")
                st = "PyTorch export failed" if st.startswith("export failed") else st
                cells.append(st.replace("|", "/")[:90])
        le = max((r["logits_rel_err"] for r in fam if "logits_rel_err" in r), default=None)
        ge = max((r["grad_rel_err"] for r in fam if "grad_rel_err" in r), default=None)
        f0 = fam[0]
        lines.append(f"| {f0['family']} | {model} | {f0['kind']} | {f0['size']} | " + " | ".join(cells)
                     + f" | {'' if le is None else f'{le:.1e}'} | {'' if ge is None else f'{ge:.1e}'} |")
    ok = sum(1 for r in rows if r.get("status") == "match")
    lines += ["", f"{ok} of {len(rows)} exports import and match."]
    missing = {}
    for r in rows:
        s = r.get("status", "")
        if s.startswith("unsupported: "):
            for op in s[len("unsupported: "):].split(", "):
                missing.setdefault(op, set()).add(r["family"])
    if missing:
        lines += ["", "Unsupported operators (families that use them):", ""]
        for op, fams in sorted(missing.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"- {op}: {', '.join(sorted(fams))}")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
    with open(args.log, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
