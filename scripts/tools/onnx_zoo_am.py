#!/usr/bin/env python3
"""`scripts/onnx-zoo --am`: activation maximization on every family of the ONNX zoo sweep (issue #18 part 3).

For each family of scripts/tools/onnx_zoo.py (the smallest timm variant, random weights, seed 0, eval
mode, the sweep's input size), exported with one of PyTorch's exporters (--exporter torchscript|dynamo,
--opset 17; TorchScript scope names and the dynamo exporter's `pkg.torch.onnx.name_scopes` metadata are
what amgpu turns into layer names; an export with neither — torch 2.13's dynamo exporter drops all node
metadata when onnx's C API converts its opset-18 graph down to 17, as it does for ViT, DeiT, CaiT — is named
from its parameter names, which needs parameters that differ: --perturb SIGMA adds noise to random-init
weights, as training would):
  1. `amgpu layers MODEL.onnx`: the recommended AM targets (the lines starting with '*');
  2. one target: the recommended value two thirds of the way down the list (logits excluded);
  3. the target's objective on every fetched photo (`amgpu activations` on each image of --photos,
     ~/.cache/amgpu/photos): v[p, u] = the channel objective of unit u (spatial mean of channel u for
     [1, C, H, W]; mean over the tokens after the first for [1, T, D], as `visualize` computes it);
  4. the unit: the most input-dependent one, the largest standard deviation of v[:, u] over the photos
     among the units non-zero on every photo. With random weights many units are dead or sparse (zero on
     most photos: AM starts flat) or an image-independent offset plus a small image-dependent part
     (RepViT's stage-3 blocks), and MobileOne's values reach ~1e11;
  5. `amgpu visualize --layer T --unit U --preset cnn-lucid --steps 48 --device cpu` (lucid's Fourier
     preset for every family: the ViT preset needs 8 copies × 400 steps on a CPU): its JSON gives the
     objective on the visualization (`finalObjective`) and its mean over the same photos
     (`naturalPhotoMean`, checked against the mean of v[:, U]);
  6. raised when finalObjective is above the unit's value on every photo (max_p v[p, U]); when it is
     not, the run is repeated once with 4 × --steps (the table says which); the table
     also gives the margin in photo standard deviations, (final − m_U) / s_U, and the gain relative to
     the magnitude, (final − m_U) / |m_U| (the criterion before 2026-12-02: > 0.1, which a unit with a
     large input-independent offset cannot meet).
Writes a Markdown table (--log, default docs/logs/onnx-zoo-am.md, or -dynamo.md) with the recommended
targets of each family, and one JSON line per family (--jsonl). Exports go to --work (kept there: a
second run reuses them).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def recommended_targets(amgpu, path):
    """[(name, op, shape, units)] of the '*' lines of `amgpu layers`, in the listed order."""
    p = subprocess.run([amgpu, "layers", path], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError((p.stderr or p.stdout).strip().splitlines()[0])
    out = []
    for line in p.stdout.splitlines():
        m = re.match(r"^\* (\S+)\s+(\S+)\s+(\[[^\]]*\])\s+units: (\d+)", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return out, p.stdout


def export_facts(path):
    """The opset the file declares (torch 2.13's dynamo exporter writes opset 18 and converts to a lower
    --opset with onnx's C API version converter, which fails for many graphs — the file stays opset 18 —
    and, where it succeeds, drops every node's metadata) and how many nodes carry module scopes
    ('/'-separated TorchScript names or the dynamo exporter's `pkg.torch.onnx.name_scopes`)."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    scoped = sum(1 for n in m.graph.node if n.name.startswith("/")
                 or any(p.key == "pkg.torch.onnx.name_scopes" for p in n.metadata_props))
    return {"file_opset": opset, "scoped_nodes": scoped, "nodes": len(m.graph.node)}


def output_name(layers_text):
    m = re.search(r"output (\S+) \[", layers_text.splitlines()[0])
    return m.group(1) if m else None


def photo_values(amgpu, path, layer, photos, work):
    """v[p, u]: the channel objective of every unit u of `layer` on every photo p (`amgpu activations`):
    the spatial mean for [1, C, H, W], the mean over the tokens after the first for [1, T, D] (the
    objective's `prefixTokens` = 1), the value itself for [1, K]."""
    out = os.path.join(work, "act.npy")
    rows = []
    for photo in photos:
        p = subprocess.run([amgpu, "activations", "--model", path, "--image", photo, "--layer", layer, "--out", out],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("activations: " + ((p.stderr or p.stdout).strip().splitlines() or ["?"])[0])
        a = np.load(out).astype(np.float64)
        rows.append(channel_objective(a))
    return np.stack(rows)


def channel_objective(a):
    """The per-unit channel objective of one activation (batch 1), as `visualize` computes it."""
    if a.ndim == 4:
        return a[0].mean(axis=(1, 2))        # [1, C, H, W]: spatial mean
    if a.ndim == 3:
        return a[0, 1:].mean(axis=0)         # [1, T, D]: tokens after the first
    return a.reshape(a.shape[0], -1)[0]


def most_input_dependent_unit(v):
    """The unit of v [photos, units] whose value varies most across the photos (largest standard deviation),
    among the units that are non-zero on every photo (all units when none is). A dead or sparse ReLU unit
    (zero on some photo) starts its AM in a flat region; a unit whose value is mostly an image-independent
    offset (random-weight RepViT) is only raised by a small amount. Ties go to the lowest index."""
    s = v.std(axis=0)
    alive = (v != 0).all(axis=0)
    if alive.any():
        s = np.where(alive, s, -1.0)
    return int(np.argmax(s))


def self_test():
    """The unit choice and the objective's reduction on hand-made arrays (no torch, no amgpu)."""
    v = np.array([[0.0, 5.0, 1.0, 100.0, 0.0], [0.0, 5.0, 3.0, 101.0, 9.0], [0.0, 5.0, 6.0, 99.0, 0.0]])
    assert most_input_dependent_unit(v) == 2, "dead (0), constant (1), offset (3) and sparse (4) units lose to unit 2"
    assert most_input_dependent_unit(-v[:, [3, 2]]) == 1, "the sign of the values does not matter"
    assert most_input_dependent_unit(np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])) == 0, "no unit alive: largest spread"
    a = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)
    assert np.allclose(channel_objective(a), [5.5, 17.5]), "CNN: spatial mean per channel"
    t = np.array([[[100.0, -100.0], [1.0, 2.0], [3.0, 6.0]]])
    assert np.allclose(channel_objective(t), [2.0, 4.0]), "ViT: mean over the tokens after the first"
    print("onnx_zoo_am self-test passed")
    return 0


def summarize(targets):
    """A short description of the recommended set: count and a few names."""
    names = [t[0] for t in targets]
    fc1 = [n for n in names if n.endswith("fc1") or n.endswith("intermediate.dense")]
    blocks = [n for n in names if n not in fc1]
    parts = [f"{len(names)}"]
    if blocks:
        parts.append(f"{len(blocks)} blocks/stages ({blocks[0]} … {blocks[-1]})")
    if fc1:
        parts.append(f"{len(fc1)} MLP ({fc1[0]} …)")
    return "; ".join(parts)


def write_log(rows, kept, args, log, jsonl, photos, started, load_start, torch_version, timm_version):
    """Writes the Markdown table and the JSON lines (after every family, so a stopped run keeps its rows);
    returns the rows written (those of this run and, with --update, the other families' earlier rows)."""
    import onnx_zoo as Z
    order = {f[1]: i for i, f in enumerate(Z.FAMILIES)}
    new = rows
    rows = sorted(kept + new, key=lambda r: order.get(r["model"], len(order)))
    raised = sum(r["result"] == "raised" for r in rows)
    imported = sum(r["result"] in ("raised", "NOT raised") for r in rows)
    exporter = ("TorchScript exporter (`dynamo=False`)" if args.exporter == "torchscript"
                else "dynamo exporter (`dynamo=True`)")
    ended = datetime.datetime.now(datetime.timezone.utc)
    # The runs behind the rows (with --update a table mixes runs): each row of a run since 2026-12-02 11:30
    # carries its run's command, start, end and load averages; earlier rows only their family.
    this_run = {"command": "scripts/onnx-zoo --am " + shlex.join(sys.argv[3:]), "started": started.strftime("%Y-%m-%d %H:%M"),
                "ended": ended.strftime("%H:%M"), "load_start": round(load_start[0], 1), "load_end": round(os.getloadavg()[0], 1)}
    for r in new:
        r["run"] = this_run
    runs, untracked = [], []
    for r in rows:
        if "run" not in r:
            untracked.append(r["family"])
            continue
        match = next((x for x in runs if x[0]["command"] == r["run"]["command"] and x[0]["started"] == r["run"]["started"]), None)
        if match is None:
            runs.append((r["run"], [r["family"]]))
        else:
            match[1].append(r["family"])
    run_lines = [f"- `{run['command'].strip()}`: {run['started']}–{run['ended']} UTC, load average {run['load_start']} at the start, "
                 f"{run['load_end']} at the end; rows: {', '.join(fams)}." for run, fams in runs]
    if untracked:
        run_lines.append(f"- earlier runs (their commands and times are in this log's git history): rows: {', '.join(untracked)}.")
    lines = [
        f"# AM on every family of the ONNX zoo (scripts/onnx-zoo --am, {args.exporter})", "",
        f"torch {torch_version}, timm {timm_version}; {exporter}, opset {args.opset}; amgpu `--device {args.device}`; "
        f"on {platform.node() or '?'} ({os.cpu_count()} CPUs shared with other work: the seconds are not speed figures). "
        f"Table written {ended.strftime('%Y-%m-%d %H:%M')} UTC. Runs:", "",
    ] + run_lines + ["",
        "Random weights (seed 0). Recommended: the values `amgpu layers` stars (block/stage outputs, MLP hidden layers, "
        "the logits). Target: the recommended value two thirds down the list (logits excluded); unit: the most "
        f"input-dependent one on the {len(photos)} fetched photos (the largest standard deviation s of its channel objective "
        "over the photos, `amgpu activations`, among the units non-zero on every photo). "
        f"`amgpu visualize --preset cnn-lucid --steps {args.steps}`: **raised** when the objective on the visualization (AM) "
        f"is above the unit's value on every photo (max); when not, once more with {4 * args.steps} steps (column steps). "
        "σ: (AM − mean)/s; gain: (AM − mean)/|mean|. File opset: the opset the export declares; scoped nodes: nodes "
        "with a module scope (TorchScript's `/blocks.3/...` names or dynamo's `pkg.torch.onnx.name_scopes`; with none, "
        "`amgpu layers` takes the names from the parameters); both blank in rows kept from runs before they were logged.", "",
        f"**{raised} of {imported} imported families raised** ({len(rows)} families).", "",
    ] + [
        "| family | model | input | file opset | scoped nodes | recommended | target | shape | steps | AM | photos mean | photos max | σ | gain | result | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
        sig = f"{r['sigmas']:.1f}" if r.get("sigmas") is not None else ""
        gain = f"{100 * r['gain']:+.1f} %" if r.get("gain") is not None else ""
        scoped = f"{r['scoped_nodes']} of {r['nodes']}" if "nodes" in r else ""
        model = r["model"] + (f" (parameters + N(0, {r['perturb']:g}²))" if r.get("perturb") else "")
        lines.append(f"| {r['family']} | {model} | {r['input']} | {r.get('file_opset', '')} | {scoped} | {r.get('recommended', '')} | "
                     f"{r.get('target', '')} | {r.get('shape', '')} | {r.get('steps', '')} | {fmt(r.get('final'))} | {fmt(r.get('photo_mean'))} | "
                     f"{fmt(r.get('photo_max'))} | {sig} | {gain} | "
                     f"{r['result']}{(': ' + r['note']) if r.get('note') else ''} | {r.get('seconds', '')} |")
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    with open(log + ".part", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(log + ".part", log)
    with open(jsonl + ".part", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(jsonl + ".part", jsonl)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--amgpu", default="")
    ap.add_argument("--families", default="")
    ap.add_argument("--exporter", default="torchscript", choices=["torchscript", "dynamo"])
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--work", default="")
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--photos", default=os.path.expanduser("~/.cache/amgpu/photos"),
                    help="the photos the unit is chosen on and compared with (default: the fetched ones, "
                         "the set `visualize` computes naturalPhotoMean on)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--perturb", type=float, default=0.0,
                    help="add N(0, SIGMA²) (seed 2) to every parameter before the export, as training would make them "
                         "differ: timm's random init gives many equal tensors (zero biases, unit norm weights), which "
                         "torch's exporter merges into one initializer, so their names no longer say which module reads "
                         "them (what `amgpu layers` falls back to when an export has no module scopes)")
    ap.add_argument("--log", default="", help="default docs/logs/onnx-zoo-am.md (TorchScript) or onnx-zoo-am-dynamo.md")
    ap.add_argument("--jsonl", default="", help="default: the log with .jsonl")
    ap.add_argument("--update", action="store_true",
                    help="keep the other families' rows of an earlier --jsonl and replace only the ones run now")
    ap.add_argument("--self-test", action="store_true", help="check the unit choice on hand-made arrays and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.amgpu:
        ap.error("--amgpu is required")
    import timm  # noqa: E402
    import torch  # noqa: E402
    import onnx_zoo as Z  # noqa: E402
    log = args.log or ("docs/logs/onnx-zoo-am.md" if args.exporter == "torchscript" else "docs/logs/onnx-zoo-am-dynamo.md")
    jsonl = args.jsonl or os.path.splitext(log)[0] + ".jsonl"
    photos = sorted(os.path.join(args.photos, f) for f in os.listdir(args.photos)
                    if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not photos:
        ap.error(f"no photos in {args.photos}")
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    wanted = [f.strip().lower() for f in args.families.split(",") if f.strip()]
    # In the order --families gives (a run that is stopped keeps the rows that matter most); all by default.
    families = [f for w in wanted for f in Z.FAMILIES if w in (f[0].lower(), f[1].lower())] if wanted else list(Z.FAMILIES)
    unknown = [w for w in wanted if not any(w in (f[0].lower(), f[1].lower()) for f in Z.FAMILIES)]
    if unknown:
        ap.error(f"unknown families: {', '.join(unknown)} (see FAMILIES in scripts/tools/onnx_zoo.py)")
    work = args.work or tempfile.mkdtemp(prefix="amgpu-onnx-zoo-am-")
    os.makedirs(work, exist_ok=True)
    rows = []
    kept = []
    if args.update and os.path.exists(jsonl):
        names = {f[1] for f in families}
        kept = [r for r in map(json.loads, open(jsonl)) if r["model"] not in names]
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    for family, name, kind, size, kwargs in families:
        suffix = "" if (args.exporter, args.opset) == ("torchscript", 17) else f".{args.exporter}.{args.opset}"
        suffix += f".perturbed{args.perturb:g}" if args.perturb > 0 else ""
        path = os.path.join(work, f"{name}{suffix}.onnx")
        t0 = time.time()
        row = {"family": family, "model": name, "input": size, "exporter": args.exporter, "opset": args.opset}
        if args.perturb > 0:
            row["perturb"] = args.perturb
        try:
            if not os.path.exists(path):
                torch.manual_seed(0)
                model = timm.create_model(name, pretrained=False, **kwargs).eval()
                Z.randomize_zero_weights(model)
                if args.perturb > 0:
                    g = torch.Generator().manual_seed(2)
                    with torch.no_grad():
                        for p in model.parameters():
                            p.add_(torch.randn(p.shape, generator=g) * args.perturb)
                Z.export(model, torch.randn(1, 3, size, size), path + ".part.onnx", args.exporter, args.opset)
                if os.path.exists(path + ".part.onnx.data"):   # the dynamo exporter's external data keeps its name
                    raise RuntimeError("the export has external data; not supported by this script")
                os.replace(path + ".part.onnx", path)
        except Exception as e:  # noqa: BLE001
            row.update(result="PyTorch export failed", note=(str(e).strip().splitlines() or [type(e).__name__])[0][:160])
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        try:
            row.update(export_facts(path))
        except Exception as e:  # noqa: BLE001
            row["note"] = f"cannot read the export with onnx: {e}"[:160]
        try:
            targets, text = recommended_targets(args.amgpu, path)
            logits = output_name(text)
            row["recommended"] = summarize(targets)
            candidates = [t for t in targets if t[0] != logits]
            if not candidates:
                raise RuntimeError("no recommended target besides the logits")
            target = candidates[(2 * len(candidates)) // 3]
            v = photo_values(args.amgpu, path, target[0], photos, work)
            unit = most_input_dependent_unit(v)
            np.save(os.path.join(work, f"photos-{name}{suffix}.npy"), v)
            pv = v[:, unit]
            out = os.path.join(work, f"am-{name}{suffix}")
            cmd = [args.amgpu, "visualize", "--model", path, "--layer", target[0], "--unit", str(unit),
                   "--preset", "cnn-lucid", "--steps", str(args.steps), "--device", args.device, "--out", out, "--quiet"]
            m, sd, top = float(pv.mean()), float(pv.std()), float(pv.max())
            for steps in (args.steps, 4 * args.steps):
                cmd[cmd.index("--steps") + 1] = str(steps)
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
                if p.returncode != 0:
                    raise RuntimeError("visualize: " + ((p.stderr or p.stdout).strip().splitlines() or ["?"])[0])
                with open(os.path.join(out, f"{target[0]}_{unit}.json")) as f:
                    j = json.load(f)
                final, natural = j["finalObjective"], j.get("naturalPhotoMean")
                ok = final > top
                row["steps"] = steps
                if ok:
                    break
            row.update(target=f"{target[0]}:{unit}", shape=target[2], final=final, photo_mean=m, photo_max=top,
                       photo_std=sd, natural=natural, sigmas=(final - m) / sd if sd > 0 else None,
                       gain=(final - m) / abs(m) if m != 0 else None,
                       result="raised" if ok else "NOT raised")
            if natural is not None and abs(natural - m) > 1e-3 * max(abs(m), sd, 1e-12):
                row["note"] = f"visualize's photo mean {natural:.4g} ≠ {m:.4g}"
        except Exception as e:  # noqa: BLE001
            row.update(result="amgpu failed", note=str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        write_log(rows, kept, args, log, jsonl, photos, started, load_start, torch.__version__, timm.__version__)

    rows = write_log(rows, kept, args, log, jsonl, photos, started, load_start, torch.__version__, timm.__version__)
    print("\n".join(open(log).read().splitlines()[8:10]))
    raised = sum(r["result"] == "raised" for r in rows)
    imported = sum(r["result"] in ("raised", "NOT raised") for r in rows)
    return 0 if raised == imported else 1


if __name__ == "__main__":
    sys.exit(main())
