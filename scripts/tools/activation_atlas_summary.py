# Summarizes an activation atlas folder (OUT/atlas.json) for docs/logs and writes its pictures for the docs:
# NAME-atlas.png (OUT/atlas.png, 256 colours) and NAME-cellI.png (the fullest cell beside its 4 nearest photo patches).
# Usage: python scripts/tools/activation_atlas_summary.py NAME OUT DEST  (needs Pillow: ~/.cache/amgpu/venv)
import json, os, sys, shutil
name, out, dest = sys.argv[1], sys.argv[2], sys.argv[3]
p = json.load(open(os.path.join(out, "atlas.json")))
s = p["settings"]
print(f"== {name}: {s['modelName']} layer {s['layer']}, grid {s['grid']}, min-count {s['minCount']}, samples {s['samples']}, seed {s['seed']}, steps {s['preset']['steps']}")
print(f"photos read {p['imagesRead']}, used {p['imagesUsed']}, skipped {len(p['skipped'])}; positions seen {p['positionsSeen']}; samples kept {p['sampleCount']}; dimension {p['dimension']}")
lay = p["layout"]
if lay.get("explainedVariance"):
    ev = lay["explainedVariance"]; tot = lay["totalVariance"]
    print(f"layout {lay['method']}: eigenvalues {ev[0]:.4f}, {ev[1]:.4f} of total variance {tot:.4f} ({100*sum(ev)/tot:.1f} %)")
print(f"boxes: {p['boxes']}")
print(f"cells: {len(p['cells'])} non-empty, holding {sum(c['count'] for c in p['cells'])} samples")
for key in ("meanClassesNote", "classes", "photoClassesNote"):
    print(f"{key}: {p.get(key) or '-'}")
for c in p["cells"]:
    top = ", ".join(f"{t['name']} {100*t['probability']:.1f} %" for t in (c.get("topClasses") or []))
    mean = ", ".join(f"{t['name']} {100*t['probability']:.1f} %" for t in (c.get("meanClasses") or []))
    photo = ", ".join(f"{t['name']} {t['samples']}" for t in (c.get("photoClasses") or []))
    near = "; ".join(f"{os.path.basename(n['image'])}@({n['y']},{n['x']})" for n in c["nearest"][:4])
    print(f"  cell {c['index']:3d} (row {c['row']}, col {c['column']}): {c['count']:6d} samples | mean vector: {mean or '-'} | rendered image: {top or '-'} | photos: {photo or '-'} | nearest: {near}")
from PIL import Image
im = Image.open(os.path.join(out, "atlas.png")).convert("RGB")
im.quantize(colors=256).save(os.path.join(dest, f"{name}-atlas.png"), optimize=True)
# One cell's detail: the rendered image beside its four nearest photo patches.
big = max(p["cells"], key=lambda c: c["count"])
cell = Image.open(os.path.join(out, "cells", f"{big['index']}.png")).convert("RGB").resize((128, 128))
patches = [Image.open(os.path.join(out, "patches", n["file"])).convert("RGB").resize((64, 64)) for n in big["nearest"] if n.get("file")]
strip = Image.new("RGB", (128 + 8 + 2 * 66, 128), "white")
strip.paste(cell, (0, 0))
for k, q in enumerate(patches[:4]):
    strip.paste(q, (136 + (k % 2) * 66, (k // 2) * 66))
strip.quantize(colors=256).save(os.path.join(dest, f"{name}-cell{big['index']}.png"), optimize=True)
print(f"detail: cell {big['index']} ({big['count']} samples) with {len(patches[:4])} patches → {name}-cell{big['index']}.png")
