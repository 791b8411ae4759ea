#!/usr/bin/env python3
"""docs/images/probe/*.png: each unit's AM image (from `visualize`) beside its dataset examples (the montage of
`probe`), one row per unit, palette-quantized to stay small. Called by scripts/probe-docs.
Usage: probe_figures.py OUT.png LABEL AM.png MONTAGE.png [LABEL AM.png MONTAGE.png ...]   (AM.png "-": none)"""
import sys
from PIL import Image, ImageDraw

out, rest = sys.argv[1], sys.argv[2:]
rows = []
for i in range(0, len(rest), 3):
    label, am, montage = rest[i:i + 3]
    m = Image.open(montage).convert("RGB")
    left = 0 if am == "-" else 104          # "-": no AM image for this row
    h = max(96, m.height) + 16
    row = Image.new("RGB", (left + m.width, h), "white")
    ImageDraw.Draw(row).text((0, 0), label, fill="black")
    if am != "-":
        row.paste(Image.open(am).convert("RGB").resize((96, 96), Image.LANCZOS), (0, 14))
    row.paste(m, (left, 14))
    rows.append(row)
w = max(r.width for r in rows)
fig = Image.new("RGB", (w, sum(r.height for r in rows)), "white")
y = 0
for r in rows:
    fig.paste(r, (0, y))
    y += r.height
fig.quantize(colors=128, method=Image.MEDIANCUT).save(out, optimize=True)
print("wrote", out, fig.size)
