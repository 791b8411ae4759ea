#!/usr/bin/env python3
"""Picks the units of a probe whose dataset examples agree most, for the docs' pictures (scripts/probe-docs).

The photos of the ImageNet sample are named NNN_wnid_label.jpg, NNN = the ImageNet class index, and ImageNet orders
its classes by WordNet, so neighbouring indices are related (e.g. 151-268 dogs, 0-397 animals). A unit's
"spread" is the median absolute deviation of the class indices of its top-k photos from their median; units with
the smallest spread (ties: larger best value) respond to one kind of thing. Prints the chosen units, comma-separated,
on stdout, and a table of every unit's spread on stderr.
Usage: probe_pick_units.py PROBE.json LAYER COUNT [EXCLUDE,UNITS]"""
import json, os, re, statistics, sys

probe, layer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
exclude = {int(u) for u in sys.argv[4].split(",")} if len(sys.argv) > 4 and sys.argv[4] else set()
units = json.load(open(probe))["layers"][layer]
rows = []
for unit, examples in units.items():
    classes = []
    for e in examples:
        m = re.match(r"(\d+)_", os.path.basename(e["image"]))
        if m:
            classes.append(int(m.group(1)))
    if len(classes) < 3:
        continue
    med = statistics.median(classes)
    spread = statistics.median(abs(c - med) for c in classes)
    rows.append((spread, -examples[0]["value"], int(unit), classes))
rows.sort()
for spread, negbest, unit, classes in rows:
    print(f"unit {unit:5d}: spread {spread:6.1f}, best {-negbest:7.3f}, classes {classes}", file=sys.stderr)
print(",".join(str(r[2]) for r in [r for r in rows if r[2] not in exclude][:count]))
