#!/usr/bin/env python3
"""Joins the JSON files of one scripts/bench run into markdown tables (stdlib only).

    bench_table.py DIR [DIR...]                          print the tables (later DIRs' rows replace earlier ones)
    bench_table.py DIR [DIR...] --update-doc FILE        replace FILE's text between the bench markers with them
"""
import glob, json, os, sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def load(path):
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else None


def main():
    args = sys.argv[1:]
    doc = None
    if "--update-doc" in args:
        i = args.index("--update-doc")
        doc = args[i + 1]
        args = args[:i] + args[i + 2:]
    files = {}
    for d in args:
        files.update({os.path.basename(p)[:-5]: load(p) for p in sorted(glob.glob(os.path.join(d, "*.json")))})
    files = {k: v for k, v in files.items() if v is not None}
    lines = []
    amgpu = [v for k, v in files.items() if k.startswith(("kernels-opencl", "steps-opencl"))]
    peers = [v for k, v in files.items() if k.startswith(("kernels-peer", "steps-peer"))]
    loads = [x for v in files.values() for x in (v.get("loadBefore"), v.get("loadAfter")) if x is not None]
    host = amgpu[0]["host"] if amgpu else "?"
    device = amgpu[0]["backend"] if amgpu else "?"
    dates = sorted(v["date"] for v in amgpu)
    date = (dates[0] + " – " + dates[-1]) if dates else "?"
    torch_v = peers[0].get("torch", "?") if peers else "?"
    numpy_v = peers[0].get("numpy", "?") if peers else "?"
    threads = peers[0].get("threads", "?") if peers else "?"
    lines.append(f"Run {date} on {host}; amgpu OpenCL device {device}; PyTorch {torch_v} ({threads} threads), "
                 f"numpy {numpy_v} (OpenBLAS). 1-minute load average during the run: "
                 f"{min(loads):.1f}–{max(loads):.1f} (other users of the same cores)." if loads else "")
    lines.append("")

    # AM steps.
    steps = {}
    for k, v in files.items():
        if not k.startswith("steps-"):
            continue
        who = k.split("-")[1]  # opencl | cpu | peer
        for r in v.get("steps", v.get("rows", [])):
            key = (r["model"], r["batch"], r["objective"])
            steps.setdefault(key, {})[who] = r
            steps[key][who + "_rss"] = v.get("peakRSSMB")
    if steps:
        lines.append("### AM step (forward to the objective + backward to the input + Adam), ms per step, median")
        lines.append("")
        lines.append("| model | batch | objective | amgpu OpenCL | amgpu CPU | PyTorch | OpenCL / PyTorch | CPU / PyTorch | OpenCL first step | peak RSS MB OpenCL / CPU / PyTorch | other processes, cores: OpenCL / CPU / PyTorch |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        order = {"resnetv2_50": 0, "resnet50": 1, "vit_base_patch16_224": 2}
        for key in sorted(steps, key=lambda k: (k[1], order.get(k[0], 9), k[0], k[2])):
            s = steps[key]
            def ms(w):
                return f"{s[w]['medianMs']:.0f}" if w in s else "—"
            def ratio(w):
                return f"**{s[w]['medianMs'] / s['peer']['medianMs']:.2f}**" if w in s and "peer" in s else "—"
            def rss(w):
                return f"{s[w + '_rss']:.0f}" if s.get(w + "_rss") else "—"
            def others(w):
                # The largest load of other processes during a kept sample (amgpu bench's foreignCores; the peer's
                # foreign_cores when it reports one); "—" when the run did not measure it.
                v = s.get(w, {}).get("foreignCores", s.get(w, {}).get("foreign_cores"))
                return f"{v:.2f}" if isinstance(v, (int, float)) else "—"
            first = f"{s['opencl']['firstStepMs']:.0f}" if "opencl" in s else "—"
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {ms('opencl')} | {ms('cpu')} | {ms('peer')} | {ratio('opencl')} | "
                         f"{ratio('cpu')} | {first} | {rss('opencl')} / {rss('cpu')} / {rss('peer')} | "
                         f"{others('opencl')} / {others('cpu')} / {others('peer')} |")
        lines.append("")

    # Operators.
    kern = {}
    for k, v in files.items():
        if not k.startswith("kernels-"):
            continue
        who = k.split("-")[1]
        for r in v.get("kernels", v.get("rows", [])):
            kern.setdefault((r["name"], r["pass"]), {})[who] = r
    if kern:
        lines.append("### Operators at the models' shapes (batch 1 unless named), median ms and GFLOP/s")
        lines.append("")
        lines.append("| operator | pass | amgpu OpenCL ms (GFLOP/s) | amgpu CPU ms | peer | peer ms (GFLOP/s) | OpenCL speed / peer speed | OpenCL first call ms | other processes, cores (OpenCL) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        seen = []
        for k, v in files.items():
            if k.startswith("kernels-opencl"):
                seen = [(r["name"], r["pass"]) for r in v["kernels"]]
        for key in seen + [k for k in kern if k not in seen]:
            s = kern[key]
            o, c, p = s.get("opencl"), s.get("cpu"), s.get("peer")
            lines.append(f"| {key[0]} | {key[1]} | " + (f"{o['medianMs']:.2f} ({o['gflops']:.0f})" if o else "—")
                         + " | " + (f"{c['medianMs']:.2f}" if c else "—")
                         + " | " + (p["peer"] if p else "—")
                         + " | " + (f"{p['medianMs']:.2f} ({p['gflops']:.0f})" if p else "—")
                         + " | " + (f"**{p['medianMs'] / o['medianMs']:.2f}**" if o and p else "—")
                         + " | " + (f"{o['firstMs']:.0f}" if o else "—")
                         + " | " + (f"{o['foreignCores']:.2f}" if o and isinstance(o.get("foreignCores"), (int, float)) else "—") + " |")
        lines.append("")
    text = "\n".join(lines)
    if doc:
        with open(doc) as f:
            old = f.read()
        if BEGIN not in old or END not in old:
            sys.exit(f"bench_table.py: {doc} has no '{BEGIN}' … '{END}' markers; add them where the table goes")
        new = old[:old.index(BEGIN) + len(BEGIN)] + "\n" + text + "\n" + old[old.index(END):]
        tmp = doc + ".tmp"
        with open(tmp, "w") as f:
            f.write(new)
        os.replace(tmp, doc)
    else:
        print(text)


main()
