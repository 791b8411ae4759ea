# Two activation atlases' 2-D layouts side by side (e.g. the built-in PCA and UMAP from scripts/activation-atlas-umap,
# made from the same samples): each panel plots every sample of OUT/layout.npy, min–max scaled as the grid binning
# does, over the atlas's grid lines; a point's colour is the model's top-1 class of its photo (hue = class / classes,
# grey without a classifier), so photos of nearby classes (ImageNet's ordering groups animals, objects, ...) share hues.
# Usage: python scripts/tools/activation_atlas_layouts.py DEST.png OUT_A [OUT_B ...]   (needs numpy and Pillow)
import colorsys, json, os, sys
import numpy as np
from PIL import Image, ImageDraw

dest, outs = sys.argv[1], sys.argv[2:]
side, pad, top = 320, 8, 34
panels = []
for out in outs:
    plan = json.load(open(os.path.join(out, "atlas.json")))
    rec = json.load(open(os.path.join(out, "samples.json")))
    xy = np.load(os.path.join(out, "layout.npy")).astype(np.float64)
    g = plan["settings"]["grid"]
    lo, hi = xy.min(0), xy.max(0)
    u = np.where(hi > lo, (xy - lo) / np.where(hi > lo, hi - lo, 1), 0.5)
    classes = rec["predictedClass"]
    k = max([c for c in classes if c is not None] or [0]) + 1
    im = Image.new("RGB", (side + 2 * pad, side + 2 * pad + top), "white")
    d = ImageDraw.Draw(im)
    lay = plan["layout"]
    if lay["method"] == "pca":
        ev, tot = lay.get("explainedVariance") or [0, 0], lay.get("totalVariance") or 1
        title = f"PCA (LAPACK), {100 * sum(ev) / tot:.1f} % of variance"
    else:
        p = lay.get("parameters") or {}
        title = f"{p.get('method', 'file')}: {p.get('package', '')} n_neighbors {p.get('n_neighbors', '?')}, min_dist {p.get('min_dist', '?')}, {p.get('metric', '')}"
    d.text((pad, 2), title, fill="black")
    d.text((pad, 16), f"{len(xy)} samples, grid {g}x{g}, {len(plan['cells'])} cells of >= {plan['settings']['minCount']} samples", fill="black")
    for i in range(g + 1):
        t = pad + round(i * side / g)
        d.line([(t, top + pad), (t, top + pad + side)], fill=(220, 220, 220))
        d.line([(pad, top + pad + t - pad), (pad + side, top + pad + t - pad)], fill=(220, 220, 220))
    order = np.random.default_rng(0).permutation(len(xy))
    for i in order:
        c = classes[rec["positions"][i]["image"]] if rec["positions"][i]["image"] < len(classes) else None
        col = (150, 150, 150) if c is None else tuple(int(255 * v) for v in colorsys.hsv_to_rgb(c / k, 0.85, 0.85))
        x = pad + u[i, 0] * side
        y = top + pad + (1 - u[i, 1]) * side
        im.putpixel((min(int(x), im.width - 1), min(int(y), im.height - 1)), col)
    panels.append(im)
fig = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), "white")
x = 0
for p in panels:
    fig.paste(p, (x, 0))
    x += p.width
fig.quantize(colors=128).save(dest, optimize=True)
print("wrote", dest, fig.size)
