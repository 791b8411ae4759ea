#!/usr/bin/env python3
"""The quality harness behind scripts/quality (issue #22): class visualizations of EfficientNet-Lite0 rendered by
amgpu (each config given) and by torch-lucent's defaults on the same network, scored from the 8-bit PNGs by judges
the images were not made with (EfficientNet-Lite1 and Lite2), plus amgpu's image statistics.

    quality_run.py run   [--configs lucid,pixel,...] [--steps N] [--quick] [--out DIR] [--amgpu PATH] ...
    quality_run.py check [--photos N]      # generator vs `amgpu classify`, judges' accuracy on ImageNet photos

Scores per image and judge: rank r of the target class among the judge's 1000 logits (1 = top); top-1 = [r = 1],
top-5 = [r ≤ 5]; per tool/config and class split: hit rates and the median of r. Everything is written to
OUT/scores.json, OUT/table.md and OUT/contact-sheet.png.
"""
import argparse
import glob
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import quality_models as qm  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# Classes: a fixed list of ImageNet-1k indices with a split. "tuning" classes may be looked at when choosing presets
# (part 5); the target is read on the "held-out" classes only.
TUNING = [1, 9, 130, 291, 323, 409, 417, 504, 779, 947, 951, 963]
HELD_OUT = [22, 107, 145, 309, 340, 388, 430, 437, 812, 950, 954, 980]
QUICK_TUNING = [1, 130]
QUICK_HELD_OUT = [340, 950]

# Named configs: amgpu visualize arguments added after the common ones (model, classes, steps, seed, out).
# A name not listed here is tried as `--preset NAME`, then as `--param NAME`, if `amgpu visualize --help` lists it
# (so presets/parameterizations merged later, e.g. maco, work by name); NAME=ARGS gives an ad-hoc config.
CONFIGS = {
    "lucid": ["--preset", "cnn-lucid"],                   # the CNN default (Fourier, decorrelated, lucid transforms)
    "fourier": ["--preset", "cnn-lucid", "--param", "fourier"],
    "pixel": ["--preset", "cnn-lucid", "--param", "pixel"],
    "ghiasi": ["--preset", "vit-ghiasi"],
    # part 5: transformation robustness on top of cnn-lucid
    "copies2": ["--preset", "cnn-lucid", "--copies", "2"],
    "copies4": ["--preset", "cnn-lucid", "--copies", "4"],
    "copies8": ["--preset", "cnn-lucid", "--copies", "8"],
    "jitter16": ["--preset", "cnn-lucid", "--jitter", "16"],
    "jitter0": ["--preset", "cnn-lucid", "--jitter", "0"],
    "roll16": ["--preset", "cnn-lucid", "--roll", "16"],
    "color": ["--preset", "cnn-lucid", "--color-shift", "0.1", "--color-scale", "0.1"],
    "noise": ["--preset", "cnn-lucid", "--noise", "0.1"],
    "color-noise4": ["--preset", "cnn-lucid", "--copies", "4", "--color-shift", "0.1", "--color-scale", "0.1",
                     "--noise", "0.1"],
    "ghiasi-jitter": ["--preset", "cnn-lucid", "--copies", "4", "--color-shift", "1", "--color-scale", "1",
                      "--noise", "0.5"],
    # issue #22 parts 1–2, merged later: skipped until the binary knows them
    "maco": ["--param", "maco"],
}
DEFAULT_CONFIGS = "lucid,pixel,ghiasi,maco"


def class_names():
    path = os.path.join(qm.HOME, "data", "imagenet_classes.txt")
    with open(path) as f:
        names = [line.rstrip("\n").split("\t")[0] for line in f]
    if len(names) != 1000:
        raise SystemExit(f"quality: {path} has {len(names)} lines, expected 1000")
    return names


def log(msg):
    print(f"[quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# amgpu
def visualize_help(amgpu):
    out = subprocess.run([amgpu, "visualize", "--help"], capture_output=True, text=True)
    return out.stdout + out.stderr


def help_values(help_text, flag):
    """The '(values: a, b)' list printed after `flag` in swift-argument-parser help."""
    i = help_text.find(f"  {flag} ")
    if i < 0:
        return None
    j = help_text.find("(values:", i)
    k = help_text.find("\n  -", i + 1)
    if j < 0 or (k >= 0 and j > k):
        return None   # an untyped option: the binary checks the value itself (exit 64 → skipped)
    end = help_text.find(")", j)
    return [v.strip() for v in help_text[j + len("(values:"):end].replace("\n", " ").split(",")] or None


def resolve_config(name, help_text):
    """(args, None) or (None, why it is skipped)."""
    if "=" in name:
        label, args = name.split("=", 1)
        args = shlex.split(args)
    elif name in CONFIGS:
        args = list(CONFIGS[name])
    else:
        presets = help_values(help_text, "--preset") or []
        params = help_values(help_text, "--param") or []
        if name in presets:
            args = ["--preset", name]
        elif name in params:
            args = ["--param", name]
        else:
            return None, (f"amgpu visualize knows no config '{name}' (presets: {', '.join(presets)}; "
                          f"params: {', '.join(params)}; named configs: {', '.join(CONFIGS)})")
    for a in args:
        if a.startswith("--") and f"  {a} " not in help_text and f"  {a}\n" not in help_text:
            return None, f"this amgpu visualize has no flag {a}"
    for flag in ("--preset", "--param"):
        if flag in args:
            v = args[args.index(flag) + 1]
            values = help_values(help_text, flag)
            if values is not None and v not in values:
                return None, f"this amgpu visualize has no {flag} {v} (values: {', '.join(values)})"
    return args, None


def render_amgpu(amgpu, name, args, classes, steps, out, batch, device, seed):
    """Renders every class with one `amgpu visualize --layer output --units ...` call; {class: png}, seconds."""
    folder = os.path.join(out, "images", name)
    os.makedirs(folder, exist_ok=True)
    cmd = [amgpu, "visualize", "--model", "efficientnet_lite0", "--layer", "output",
           "--units", ",".join(map(str, classes)), "--batch", str(batch), "--seed", str(seed),
           "--device", device, "--out", folder, "--no-baseline", "--quiet"] + args + ["--steps", str(steps)]
    log(f"{name}: {shlex.join(cmd)}")
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t
    if proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        return None, secs, f"amgpu exit {proc.returncode}: {msg[-1] if msg else ''}", cmd
    images = {}
    for js in glob.glob(os.path.join(folder, "*.json")):
        with open(js) as f:
            d = json.load(f)
        if "unit" in d and "image" in d:
            images[int(d["unit"])] = os.path.join(folder, d["image"])
    missing = [c for c in classes if c not in images]
    if missing:
        return None, secs, f"amgpu wrote no image for classes {missing}", cmd
    return images, secs, None, cmd


# ---------------------------------------------------------------------------------------------------------------
# torch-lucent
def lucent_shims():
    """Compatibility shims for torch-lucent 0.1.8 with torch 2.x (kept here, not in site-packages):
    - lucent's render_vis swallows a RuntimeError of the model's forward and goes on with stale hooks; we run one
      forward ourselves first so a failing model stops the harness instead.
    - lucent imports `decorator` and `kornia` without declaring them for pip --no-deps installs: checked here with a
      clear message.
    - lucent.misc.io.showing imports IPython.display at import time, for notebook display only (we pass
      show_image=False): a stub module stands in when IPython is not installed.
    - lucent.optvis.transform calls kornia.get_rotation_matrix2d / kornia.warp_affine, which kornia ≥ 0.7 keeps only
      under kornia.geometry.transform: aliased back onto the kornia module.
    - lucent's jitter passes one translation [1, 2] for the whole batch; kornia 0.9's translate wants one per image,
      so it is expanded to [B, 2] (the same shift for every image, as lucent means it).
    torch.fft.irfftn is present in torch ≥ 1.7, so lucent's FFT path needs no shim."""
    import types
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        ipy, disp = types.ModuleType("IPython"), types.ModuleType("IPython.display")

        def unavailable(*_, **__):
            raise RuntimeError("IPython display is not available (quality harness stub)")
        disp.display = disp.HTML = unavailable
        ipy.display = disp
        sys.modules["IPython"], sys.modules["IPython.display"] = ipy, disp
    try:
        import decorator  # noqa: F401
        import kornia
        import kornia.geometry.transform as kgt
        for name in ("get_rotation_matrix2d", "warp_affine"):
            if not hasattr(kornia, name):
                setattr(kornia, name, getattr(kgt, name))
        from lucent.optvis import render  # noqa: F401
        from lucent.optvis import transform as ltransform
    except ImportError as e:
        raise SystemExit(f"quality: torch-lucent is not usable ({e}); "
                         "pip install torch-lucent==0.1.8 decorator kornia into the bench venv")
    if not getattr(ltransform, "_quality_shim", False):
        def translate(image_t, shift):
            return kgt.translate(image_t, shift.expand(image_t.shape[0], 2).contiguous())
        ltransform.translate = translate
        ltransform._quality_shim = True


def render_lucent(classes, steps, out, batch, seed):
    """lucent's defaults: param.image(128) (fft, decorrelate), standard transforms, Adam 0.05, normalize, upsample to
    224; objective = Σ_i logit[i, class_i] over a batch (lucent's channel objective on timm's `classifier`)."""
    lucent_shims()
    from PIL import Image
    from lucent.optvis import objectives, param, render
    model = qm.generator()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        model(torch.rand(1, 3, 224, 224))
    folder = os.path.join(out, "images", "lucent")
    os.makedirs(folder, exist_ok=True)
    images = {}
    t = time.time()
    for b0 in range(0, len(classes), batch):
        chunk = classes[b0:b0 + batch]
        torch.manual_seed(seed + b0)
        np.random.seed(seed + b0)
        obj = objectives.channel("classifier", chunk[0], batch=0)
        for i, c in enumerate(chunk[1:], 1):
            obj = obj + objectives.channel("classifier", c, batch=i)
        imgs = render.render_vis(model, obj, param_f=lambda: param.image(128, batch=len(chunk)),
                                 thresholds=(steps,), show_image=False, progress=False)[-1]
        for i, c in enumerate(chunk):
            a = np.clip(np.rint(imgs[i] * 255), 0, 255).astype(np.uint8)
            path = os.path.join(folder, f"lucent_{c}.png")
            tmp = path + ".tmp.png"
            Image.fromarray(a).save(tmp)
            os.replace(tmp, path)
            images[c] = path
        log(f"lucent: {b0 + len(chunk)}/{len(classes)} classes, {time.time() - t:.0f} s")
    return images, time.time() - t


# ---------------------------------------------------------------------------------------------------------------
# scoring
def load_judges():
    return {f"lite{n}": (qm.judge(n), qm.JUDGE_SIZES[n]) for n in (1, 2)}


def rank_of(logits, target):
    """1-based rank of logits[target] (ties count against the target)."""
    return int((logits >= logits[target]).sum().item())


def score_images(images, judges):
    """images: {class: png path} → {class: {judge: rank}}."""
    scores = {}
    for c, path in images.items():
        x = qm.load_png(path)[None]
        scores[c] = {}
        for jn, (model, size) in judges.items():
            with torch.no_grad():
                logits = model(qm.normalize(qm.resize(x, size)))[0]
            scores[c][jn] = rank_of(logits, c)
    return scores


def image_stats(amgpu, paths):
    """amgpu image-stats --json per image: {path: {...}}."""
    if not paths:
        return {}
    proc = subprocess.run([amgpu, "image-stats", "--json"] + sorted(paths), capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"image-stats failed: {proc.stderr.strip()}")
        return {}
    d = json.loads(proc.stdout)
    out = {}
    for item in d.get("images", []):
        p = item.get("path") or item.get("file") or item.get("image")
        if p:
            out[os.path.abspath(p)] = item
    return out


def summarize(ranks, classes, judge):
    rs = [ranks[c][judge] for c in classes if c in ranks]
    if not rs:
        return None
    return {"n": len(rs), "top1": sum(r == 1 for r in rs), "top5": sum(r <= 5 for r in rs),
            "median_rank": statistics.median(rs)}


# ---------------------------------------------------------------------------------------------------------------
def contact_sheet(rows, classes, names, path, cell=96):
    """rows: [(label, {class: png})] → one PNG: a row per tool/config, a column per class."""
    from PIL import Image, ImageDraw
    label_w, head_h = 150, 30
    sheet = Image.new("RGB", (label_w + cell * len(classes), head_h + cell * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(classes):
        draw.text((label_w + j * cell + 2, 2), names[c][:15], fill="black")
        draw.text((label_w + j * cell + 2, 14), f"#{c}" + (" held" if c in HELD_OUT else ""), fill="gray")
    for i, (label, imgs) in enumerate(rows):
        draw.text((4, head_h + i * cell + cell // 2 - 6), label[:24], fill="black")
        for j, c in enumerate(classes):
            if c in imgs:
                with Image.open(imgs[c]) as im:
                    sheet.paste(im.convert("RGB").resize((cell, cell), Image.BILINEAR),
                                (label_w + j * cell, head_h + i * cell))
    tmp = path + ".tmp.png"
    sheet.save(tmp)
    os.replace(tmp, path)


def fmt_rate(s):
    return f"{s['top1']}/{s['n']}", f"{s['top5']}/{s['n']} ({100 * s['top5'] / s['n']:.0f} %)", f"{s['median_rank']:g}"


def table(results, judges):
    lines = []
    def has(split):
        return any(r["summary"][split][j] for r in results if not r.get("skipped") for j in judges)
    for split in ("held-out", "tuning", "all"):
        if not has(split) or (split == "all" and not (has("held-out") and has("tuning"))):
            continue
        lines.append(f"\n**{split} classes**\n")
        head = "| tool / config | s per image |"
        sep = "|---|---|"
        for j in judges:
            head += f" {j} top-1 | {j} top-5 | {j} median rank |"
            sep += "---|---|---|"
        head += " mean low-freq fraction |"
        sep += "---|"
        lines += [head, sep]
        for r in results:
            if r.get("skipped") or not any(r["summary"][split][j] for j in judges):
                continue
            row = f"| {r['name']} | {r['seconds_per_image']:.1f} |"
            for j in judges:
                s = r["summary"][split][j]
                row += " " + " | ".join(fmt_rate(s) if s else ("–", "–", "–")) + " |"
            lf = r["summary"][split].get("low_frequency_power")
            row += f" {lf:.3f} |" if lf is not None else " – |"
            lines.append(row)
    skipped = [r for r in results if r.get("skipped")]
    if skipped:
        lines.append("\nSkipped: " + "; ".join(f"`{r['name']}` ({r['skipped']})" for r in skipped))
    return "\n".join(lines) + "\n"


def stat_value(item):
    """The low-frequency power fraction of one `amgpu image-stats --json` entry (None if absent)."""
    return (item.get("statistics") or {}).get("lowFrequencyFraction")


def cmd_run(a):
    names = class_names()
    tuning, held = (QUICK_TUNING, QUICK_HELD_OUT) if a.quick else (TUNING, HELD_OUT)
    if a.classes:
        n = int(a.classes)
        tuning, held = TUNING[:(n + 1) // 2], HELD_OUT[:n // 2]
    if a.tuning_only:
        held = []
    classes = tuning + held
    steps = a.steps or (32 if a.quick else 512)
    os.makedirs(a.out, exist_ok=True)
    help_text = visualize_help(a.amgpu)
    configs = [c for c in a.configs.split(",") if c]
    log(f"{len(classes)} classes ({len(tuning)} tuning, {len(held)} held-out), {steps} steps, "
        f"configs {configs}{' + lucent' if not a.no_lucent else ''}")
    judges = load_judges()
    results = []

    def amgpu_configs():
        for name in configs:
            args, why = resolve_config(name, help_text)
            label = name.split("=", 1)[0]
            if why:
                log(f"skipping {label}: {why}")
                results.append({"name": label, "skipped": why})
                continue
            images, secs, err, cmd = render_amgpu(a.amgpu, label, args, classes, steps, a.out, a.batch, a.device,
                                                  a.seed)
            if err:
                log(f"skipping {label}: {err}")
                results.append({"name": label, "skipped": err, "command": shlex.join(cmd)})
                continue
            results.append({"name": label, "tool": "amgpu", "command": shlex.join(cmd), "images": images,
                            "seconds": secs})
            log(f"{label}: {secs:.0f} s")

    lucent_result = []

    def lucent():
        images, secs = render_lucent(classes, steps, a.out, a.batch, a.seed)
        lucent_result.append({"name": "lucent (defaults)", "tool": "torch-lucent 0.1.8", "images": images,
                              "seconds": secs, "command": f"render_vis(param.image(128, batch={a.batch}), "
                              f"thresholds=({steps},)) on timm tf_efficientnet_lite0"})

    if a.parallel and not a.no_lucent:
        # amgpu renders in its own processes while lucent renders here: both tools' times are then measured under
        # the same (shared) load
        import threading
        th = threading.Thread(target=amgpu_configs)
        th.start()
        lucent()
        th.join()
    else:
        amgpu_configs()
        if not a.no_lucent:
            lucent()
    results += lucent_result
    all_paths = [p for r in results if "images" in r for p in r["images"].values()]
    stats = image_stats(a.amgpu, all_paths)
    for r in results:
        if "images" not in r:
            continue
        ranks = score_images(r["images"], judges)
        r["ranks"] = {str(c): v for c, v in ranks.items()}
        r["seconds_per_image"] = r["seconds"] / len(r["images"])
        r["image_stats"] = {str(c): stats.get(os.path.abspath(p)) for c, p in r["images"].items()}
        r["summary"] = {}
        for split, cls in (("held-out", held), ("tuning", tuning), ("all", classes)):
            r["summary"][split] = {j: summarize(ranks, cls, j) for j in judges}
            vals = [stat_value(r["image_stats"][str(c)]) for c in cls if r["image_stats"].get(str(c))]
            vals = [v for v in vals if v is not None]
            r["summary"][split]["low_frequency_power"] = float(np.mean(vals)) if vals else None
        r["images"] = {str(c): os.path.relpath(p, a.out) for c, p in r["images"].items()}
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": steps, "seed": a.seed, "device": a.device,
              "batch": a.batch, "classes": {"tuning": tuning, "held-out": held},
              "class_names": {str(c): names[c] for c in classes}, "judges": list(judges),
              "load_average_at_end": os.getloadavg(), "results": results}
    tmp = os.path.join(a.out, "scores.json.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, os.path.join(a.out, "scores.json"))
    md = (f"Quality run {report['date']}: {len(classes)} EfficientNet-Lite0 classes ({len(tuning)} tuning, "
          f"{len(held)} held-out), {steps} steps, seed {a.seed}, device {a.device}, batch {a.batch}; judges "
          f"{', '.join(judges)} on the 8-bit PNGs; load average at the end {os.getloadavg()[0]:.1f}.\n"
          + table(results, judges))
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    rows = [(r["name"], {int(c): os.path.join(a.out, p) for c, p in r["images"].items()})
            for r in results if "images" in r]
    contact_sheet(rows, classes, names, os.path.join(a.out, "contact-sheet.png"))
    print(md)


# ---------------------------------------------------------------------------------------------------------------
def cmd_check(a):
    """Generator vs amgpu classify (logits within 1e-3 on photos already 224 px), judges' accuracy on photos."""
    from PIL import Image
    gen = qm.generator()
    worst = 0.0
    photos = sorted(glob.glob(os.path.join(qm.HOME, "photos", "*.png")))[:a.gen_photos]
    with tempfile.TemporaryDirectory() as tmp:
        for p in photos:
            x = qm.photo_tensor(p, 224)
            png = os.path.join(tmp, os.path.basename(p))
            Image.fromarray(np.rint(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(png)
            x8 = qm.load_png(png)[None]
            with torch.no_grad():
                logits = gen(qm.normalize(x8))[0]
            csv = os.path.join(tmp, "c.csv")
            subprocess.run([a.amgpu, "classify", "--model", "efficientnet_lite0", "--image", png, "--top", "5",
                            "--format", "csv", "--output", csv, "--device", a.device], check=True,
                           capture_output=True)
            import csv as csvmod
            row = next(csvmod.DictReader(open(csv, newline="")))
            diffs = []
            for k in range(1, 6):
                c = int(row[f"class_{k}"])
                diffs.append(abs(float(row[f"logit_{k}"]) - logits[c].item()))
            top = logits.argmax().item()
            worst = max(worst, max(diffs))
            print(f"{os.path.basename(p)}: timm top-1 {top} ({class_names()[top]}), amgpu top-1 {row['class_1']}; "
                  f"max |logit diff| over amgpu's top-5 {max(diffs):.2e}")
    print(f"generator vs amgpu classify: max |logit diff| {worst:.2e} ({'OK' if worst <= 1e-3 else 'FAIL'} at 1e-3)")
    files = sorted(glob.glob(os.path.join(a.photos, "*.jpg")))[::a.stride]
    judges = load_judges()
    judges["lite0 (generator)"] = (gen, 224)
    for jn, (model, size) in judges.items():
        t1 = t5 = 0
        for f in files:
            target = int(os.path.basename(f).split("_")[0])
            with torch.no_grad():
                logits = model(qm.normalize(qm.photo_tensor(f, size)[None]))[0]
            r = rank_of(logits, target)
            t1 += r == 1
            t5 += r <= 5
        print(f"{jn} ({size} px): top-1 {t1}/{len(files)} = {100 * t1 / len(files):.1f} %, "
              f"top-5 {t5}/{len(files)} = {100 * t5 / len(files):.1f} % on ImageNet photos of {a.photos}")
    if worst > 1e-3:
        sys.exit(1)


def cmd_report(a):
    """Merges the scores.json of several runs (same classes' splits) into one table.md and contact sheet."""
    names = class_names()
    results, runs, tuning, held = [], [], [], []
    for d in a.runs:
        with open(os.path.join(d, "scores.json")) as f:
            rep = json.load(f)
        runs.append(f"{d}: {rep['date']}, {rep['steps']} steps, device {rep['device']}, batch {rep['batch']}")
        for c in rep["classes"]["tuning"]:
            tuning += [c] if c not in tuning else []
        for c in rep["classes"]["held-out"]:
            held += [c] if c not in held else []
        for r in rep["results"]:
            if "images" in r:
                r = dict(r, images={c: os.path.join(d, p) for c, p in r["images"].items()})
            results.append(r)
    judges = rep["judges"]
    classes = tuning + held
    md = "Merged from:\n" + "".join(f"- {x}\n" for x in runs) + table(results, judges)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    rows = [(r["name"], {int(c): p for c, p in r["images"].items()}) for r in results if "images" in r]
    contact_sheet(rows, classes, names, os.path.join(a.out, "contact-sheet.png"))
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--configs", default=DEFAULT_CONFIGS,
                   help=f"comma-separated: named configs ({', '.join(CONFIGS)}), any preset or --param value "
                        "amgpu visualize knows, or NAME='--flag value ...'")
    r.add_argument("--steps", type=int, help="steps for every tool (default 512; 32 with --quick)")
    r.add_argument("--classes", help="use only the first N classes (half tuning, half held-out)")
    r.add_argument("--quick", action="store_true", help="4 classes, 32 steps: a smoke test")
    r.add_argument("--no-lucent", action="store_true")
    r.add_argument("--tuning-only", action="store_true", help="only the tuning classes (for choosing presets)")
    r.add_argument("--parallel", action="store_true",
                   help="render lucent at the same time as the amgpu configs (two processes)")
    r.add_argument("--batch", type=int, default=8)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto")
    r.add_argument("--out", default="out/quality")
    r.add_argument("--amgpu", default=".build/release/amgpu")
    c = sub.add_parser("check")
    c.add_argument("--photos", default="/work/shared/data/imagenet-sample-500")
    c.add_argument("--stride", type=int, default=5, help="every k-th ImageNet photo")
    c.add_argument("--gen-photos", type=int, default=3)
    c.add_argument("--device", default="auto")
    c.add_argument("--amgpu", default=".build/release/amgpu")
    rp = sub.add_parser("report", help="merge the scores.json of several runs into one table and contact sheet")
    rp.add_argument("runs", nargs="+", help="output folders of earlier runs")
    rp.add_argument("--out", default="out/quality-report")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("QUALITY_THREADS", "1")))
    {"run": cmd_run, "check": cmd_check, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
