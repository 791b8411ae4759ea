#!/usr/bin/env python3
"""Reference tables for TransformerOpTests.resamplePositionEmbeddingMatchesReferences (bicubic ViT
position-embedding resampling), recomputed with PyTorch and checked against the values in the Swift test.

The tables are computed with timm's `timm.layers.resample_abs_pos_embed` (timm 1.0.x), which is what
timm uses when a ViT is run at another image size: it splits off the prefix tokens, reshapes the rest to
(1, C, H, W), casts to float32 and calls
`torch.nn.functional.interpolate(mode='bicubic', align_corners=None (= False), antialias=...)`.
The embedding is built exactly as the Swift test's `embed` builds it: one prefix token [7, -7] and two
channels, the grid and the grid times -2, row-major over (H, W). The script checks that the prefix token is
kept and that channel 1 is -2 x channel 0, then takes channel 0 as the table. As a cross-check it also
calls F.interpolate directly, in float32 and in float64, and reports how far those are from timm's result.

Cases (from the test): grid3 (3,3) -> (5,4), antialias False and True; grid5 (5,5) -> (3,3), antialias
True and False. Each table is printed as a Swift array literal in the test's form, then compared with the
literal of the same name parsed from Tests/GPUEngineTests/TransformerOpTests.swift; the script exits
non-zero if any value differs by more than 1e-6 (or a table is missing).

    ~/.cache/amgpu/bench-venv/bin/python scripts/tools/bicubic_reference.py   # needs torch + timm
"""
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
import timm
from timm.layers import resample_abs_pos_embed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST = os.path.join(ROOT, "Tests", "GPUEngineTests", "TransformerOpTests.swift")
TOL = 1e-6

# Inputs, as in the test (Float literals; float32 here too).
GRID3 = [0.3, -1.2, 0.7, 2.0, 0.1, -0.4, -0.9, 1.5, 0.25]
GRID5 = [0.3, -1.2, 0.7, 0.0, 1.1, 2.0, 0.1, -0.4, 0.6, -0.8, -0.9, 1.5, 0.25, -0.3, 0.45,
         0.05, -0.65, 1.25, 0.9, -1.4, 0.8, 0.35, -0.15, 1.7, 0.2]

# (table name, input grid name, input grid, from (h, w), to (h, w), antialias)
CASES = [
    ("up3to5x4NoAntialias", "grid3", GRID3, (3, 3), (5, 4), False),
    ("up3to5x4Antialias", "grid3", GRID3, (3, 3), (5, 4), True),
    ("down5to3Antialias", "grid5", GRID5, (5, 5), (3, 3), True),
    ("down5to3NoAntialias", "grid5", GRID5, (5, 5), (3, 3), False),
]


def embed(grid):
    """The Swift test's embed(): shape [1, 1 + n, 2], prefix [7, -7], channels (g, -2 g), float32."""
    g = np.asarray(grid, dtype=np.float32)
    tokens = np.concatenate([np.array([[7, -7]], dtype=np.float32), np.stack([g, np.float32(-2) * g], axis=1)])
    return torch.from_numpy(tokens[None])


def timm_table(grid, src, dst, antialias):
    out = resample_abs_pos_embed(embed(grid), new_size=list(dst), old_size=list(src), num_prefix_tokens=1,
                                 interpolation="bicubic", antialias=antialias)
    assert out.dtype == torch.float32 and tuple(out.shape) == (1, 1 + dst[0] * dst[1], 2), out.shape
    out = out[0].numpy()
    assert out[0, 0] == 7 and out[0, 1] == -7, "prefix token changed"
    ch0, ch1 = out[1:, 0], out[1:, 1]
    assert np.max(np.abs(ch1 - np.float32(-2) * ch0)) < 1e-5, "channel 1 is not -2 x channel 0"
    return ch0


def direct_table(grid, src, dst, antialias, dtype):
    x = torch.tensor(grid, dtype=torch.float32).to(dtype).reshape(1, 1, *src)
    y = F.interpolate(x, size=dst, mode="bicubic", align_corners=False, antialias=antialias)
    return y.reshape(-1).to(torch.float64).numpy()


def fmt(v):
    """Shortest decimal that round-trips the float32 (as Swift prints a Float)."""
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


def swift_literal(name, values, width):
    head = f"    static let {name}: [Float] = ["
    rows = [", ".join(fmt(v) for v in values[i:i + width]) for i in range(0, len(values), width)]
    return head + (",\n" + " " * len(head)).join(rows) + "]"


def parse_swift_tables(path):
    src = open(path, encoding="utf-8").read()
    tables = {}
    for m in re.finditer(r"static\s+let\s+(\w+)\s*:\s*\[Float\]\s*=\s*\[(.*?)\]", src, re.S):
        body = m.group(2)
        tables[m.group(1)] = [float(t) for t in re.split(r"[,\s]+", body.strip()) if t]
    return tables


def main():
    print(f"torch {torch.__version__}, timm {timm.__version__}, numpy {np.__version__}")
    swift = parse_swift_tables(TEST)
    failed = False

    # The inputs themselves must be the ones in the test.
    for gname, grid in (("grid3", GRID3), ("grid5", GRID5)):
        if swift.get(gname) != grid:
            print(f"input {gname} differs from the test's: {swift.get(gname)}")
            failed = True

    print()
    results = []
    for name, gname, grid, src, dst, aa in CASES:
        table = timm_table(grid, src, dst, aa)
        d32 = direct_table(grid, src, dst, aa, torch.float32)
        d64 = direct_table(grid, src, dst, aa, torch.float64)
        results.append((name, gname, src, dst, aa, table, d32, d64))
        print(f"    // {gname} {src} -> {dst}, antialias {aa}")
        print(swift_literal(name, table, dst[1]))

    print()
    for name, gname, src, dst, aa, table, d32, d64 in results:
        t64 = table.astype(np.float64)
        x32 = np.max(np.abs(t64 - d32))
        x64 = np.max(np.abs(t64 - d64))
        if name not in swift:
            print(f"{name}: MISSING from {os.path.relpath(TEST, ROOT)}")
            failed = True
            continue
        want = np.asarray(swift[name], dtype=np.float64)
        if want.shape != t64.shape:
            print(f"{name}: test has {want.size} values, expected {t64.size}")
            failed = True
            continue
        diff = np.max(np.abs(want - t64))
        diff64 = np.max(np.abs(want - d64))
        ok = diff <= TOL
        failed |= not ok
        print(f"{name:22s} max|test - timm f32| = {diff:.3e}  {'OK' if ok else 'MISMATCH'}"
              f"   (test vs F.interpolate f64: {diff64:.3e}; timm vs F.interpolate f32: {x32:.1e}, f64: {x64:.1e})")

    print()
    print("FAIL" if failed else f"all tables within {TOL:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
