#!/usr/bin/env python3
"""Independent float64 reference tables for every elementwise function (Unary) and binary op (Binary).

Writes Tests/GPUEngineTests/Fixtures/reference/elementwise.json, read by ElementwiseReferenceTests, which
compares the CPU and OpenCL backends' forward and backward with it. The values come from numpy and scipy
(scipy.special.erf, scipy.special.expit), never from amgpu's own code. Inputs are float32 values (written
exactly, as the shortest decimal that round-trips) and include negatives, values near 0, large magnitudes
and the functions' kinks; derivatives are left out (null) where the function has no derivative (kinks,
ties of max/min).

    ~/.cache/amgpu/bench-venv/bin/python scripts/tools/reference_tables.py   # needs numpy + scipy
"""
import json
import os
import sys

import numpy as np
from scipy import special

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "GPUEngineTests", "Fixtures", "reference", "elementwise.json")

SQRT2 = np.sqrt(2.0)
C_TANH = np.sqrt(2.0 / np.pi)

# Awkward inputs shared by the unary functions: negatives, near zero, moderate, large magnitude.
COMMON = [-80.0, -20.0, -9.5, -5.0, -3.0, -2.5, -1.0, -0.75, -0.3, -1e-3, -1e-5, -1e-7,
          1e-7, 1e-5, 1e-3, 0.3, 0.75, 1.0, 2.5, 3.0, 5.0, 9.5, 20.0, 80.0]
POSITIVE = [1e-7, 1e-5, 1e-3, 0.01, 0.3, 0.75, 1.0, 1.0 + 2 ** -20, 2.5, 9.5, 80.0, 1e4, 3e7]
NONZERO = [-3e7, -1e4, -9.5, -1.0, -0.3, -1e-3, -1e-7, 1e-7, 1e-3, 0.3, 1.0, 9.5, 1e4, 3e7]


def P(v):
    """A parameter as the float32 the Swift op holds (Unary's alpha and beta are Float)."""
    return float(np.float32(v))


def f32(values):
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def unary(name, x, f, df, alpha=0.0, beta=0.0, kinks=()):
    """One function: f and f' in float64 at the float32 inputs x (f' null within 1e-6 of a kink)."""
    x = f32(x)
    y = f(x)
    d = [None if any(abs(v - k) <= 1e-6 * max(1.0, abs(k)) for k in kinks) else float(g) for v, g in zip(x, df(x))]
    return {"function": name, "alpha": alpha, "beta": beta,
            "x": [float(v) for v in x], "y": [float(v) for v in y], "dydx": d}


def tables():
    # Written without cancellation, so the float64 values are accurate where the float32 ones are tiny:
    # 1 − tanh² as sech², σ(1 − σ) as σ(x)·σ(−x), 1 + erf(z) as erfc(−z), 1 + tanh(u) as 2σ(2u).
    sig = special.expit
    erf = special.erf
    sech2 = lambda x: 4 * sig(2 * x) * sig(-2 * x)
    gelu = lambda x: 0.5 * x * special.erfc(-x / SQRT2)
    dgelu = lambda x: 0.5 * special.erfc(-x / SQRT2) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    u = lambda x: C_TANH * (x + 0.044715 * x ** 3)
    gelut = lambda x: x * sig(2 * u(x))
    dgelut = lambda x: sig(2 * u(x)) + 0.5 * x * sech2(u(x)) * C_TANH * (1 + 3 * 0.044715 * x * x)
    kinked = COMMON + [0.0]
    clip_x = COMMON + [-0.5, 0.6, -0.5 - 2 ** -10, 0.6 + 2 ** -10]
    hs_x = COMMON + [-2.5 - 2 ** -12, 2.5 + 2 ** -12, 2.5 - 2 ** -12]
    hsw_x = COMMON + [-3.0 + 2 ** -12, 3.0 - 2 ** -12, 0.0]
    exp_x = [v for v in COMMON if abs(v) <= 20] + [-87.0, 60.0, 88.0]
    t = [
        unary("relu", kinked, lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float), kinks=[0]),
        unary("sigmoid", COMMON, sig, lambda x: sig(x) * sig(-x)),
        unary("tanh", COMMON, np.tanh, sech2),
        unary("leakyRelu", kinked, lambda x: np.where(x > 0, x, P(0.01) * x), lambda x: np.where(x > 0, 1.0, P(0.01)),
              alpha=P(0.01), kinks=[0]),
        unary("clip", clip_x, lambda x: np.clip(x, -0.5, P(0.6)), lambda x: ((x > -0.5) & (x < P(0.6))).astype(float),
              alpha=-0.5, beta=P(0.6), kinks=[-0.5, P(0.6)]),
        # ONNX HardSigmoid defaults alpha 0.2, beta 0.5: kinks at x = ±2.5.
        unary("hardSigmoid", hs_x, lambda x: np.clip(P(0.2) * x + 0.5, 0, 1),
              lambda x: np.where((P(0.2) * x + 0.5 > 0) & (P(0.2) * x + 0.5 < 1), P(0.2), 0.0),
              alpha=P(0.2), beta=0.5, kinks=[-0.5 / P(0.2), 0.5 / P(0.2)]),
        unary("hardSwish", hsw_x, lambda x: x * np.clip(x + 3, 0, 6) / 6,
              lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6)), kinks=[-3, 3]),
        unary("silu", COMMON, lambda x: x * sig(x), lambda x: sig(x) + x * sig(x) * sig(-x)),
        unary("geluErf", COMMON, gelu, dgelu),
        unary("geluTanh", COMMON, gelut, dgelut),
        unary("erf", COMMON, erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)),
        unary("exp", exp_x, np.exp, np.exp),
        unary("log", POSITIVE, np.log, lambda x: 1 / x),
        unary("sqrt", POSITIVE + [0.0], np.sqrt, lambda x: 0.5 / np.sqrt(np.where(x > 0, x, 1.0)), kinks=[0]),
        unary("neg", COMMON, lambda x: -x, lambda x: -np.ones_like(x)),
        unary("abs", kinked, np.abs, np.sign, kinks=[0]),
        unary("affine", COMMON, lambda x: P(1.7) * x + P(-0.3), lambda x: np.full_like(x, P(1.7)),
              alpha=P(1.7), beta=P(-0.3)),
        unary("reciprocal", NONZERO, lambda x: 1 / x, lambda x: -1 / (x * x)),
        unary("square", [v for v in COMMON if abs(v) <= 20] + [1e4, -1e4, 1e15], np.square, lambda x: 2 * x),
        unary("cos", COMMON, np.cos, lambda x: -np.sin(x)),
        unary("sin", COMMON, np.sin, np.cos),
    ]

    grid = [-1e4, -37.5, -1.0, -1e-3, -1e-7, 1e-7, 1e-3, 0.5, 1.0, 3.25, 1e4]
    pairs = [(a, b) for a in grid for b in grid]
    pow_pairs = [(a, b) for a in [1e-7, 1e-3, 0.5, 1.0, 1.5, 3.25, 1e4] for b in [-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.7]]

    def binary(name, ps, f, da, db, tie=False):
        a = f32([p[0] for p in ps]); b = f32([p[1] for p in ps])
        out = f(a, b)
        ga = [None if tie and x == y else float(g) for x, y, g in zip(a, b, da(a, b))]
        gb = [None if tie and x == y else float(g) for x, y, g in zip(a, b, db(a, b))]
        return {"function": name, "a": [float(v) for v in a], "b": [float(v) for v in b],
                "y": [float(v) for v in out], "dyda": ga, "dydb": gb}

    one = lambda a, b: np.ones_like(a)

    # ONNX Mod: fmod=0 takes the divisor's sign (a − b·⌊a/b⌋, numpy's mod), fmod=1 the dividend's (C's fmod).
    # ∂/∂a = 1, ∂/∂b = −⌊a/b⌋ (or −trunc(a/b)); at an integer ratio ∂/∂b does not exist (null). Inputs are short
    # dyadic numbers with moderate ratios, so the float32 results are exact and any formula error shows.
    mod_a = [-7.75, -3.25, -0.625, 0.375, 1.625, 5.125, 6.0]
    mod_b = [-2.5, -0.75, 0.5, 1.25, 3.0]
    mod_pairs = [(a, b) for a in mod_a for b in mod_b]

    def remainder(name, f, rounding):
        a = f32([p[0] for p in mod_pairs]); b = f32([p[1] for p in mod_pairs])
        q = a / b
        integral = [float(v).is_integer() for v in q]
        return {"function": name, "a": [float(v) for v in a], "b": [float(v) for v in b],
                "y": [float(v) for v in f(a, b)], "dyda": [1.0] * len(a),
                "dydb": [None if i else float(-rounding(v)) for i, v in zip(integral, q)]}
    bt = [
        binary("add", pairs, lambda a, b: a + b, one, one),
        binary("sub", pairs, lambda a, b: a - b, one, lambda a, b: -np.ones_like(a)),
        binary("mul", pairs, lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
        binary("div", pairs, lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / (b * b)),
        binary("pow", pow_pairs, np.power, lambda a, b: b * np.power(a, b - 1), lambda a, b: np.power(a, b) * np.log(a)),
        binary("max", pairs, np.maximum, lambda a, b: (a > b).astype(float), lambda a, b: (b > a).astype(float), tie=True),
        binary("min", pairs, np.minimum, lambda a, b: (a < b).astype(float), lambda a, b: (b < a).astype(float), tie=True),
        remainder("mod", np.mod, np.floor),
        remainder("fmod", np.fmod, np.trunc),
    ]
    return {"generator": "scripts/tools/reference_tables.py",
            "numpy": np.__version__, "scipy": __import__("scipy").__version__,
            "unary": t, "binary": bt}


def main():
    data = tables()
    for entry in data["unary"] + data["binary"]:
        for key in ("y", "dydx", "dyda", "dydb"):
            for v in entry.get(key, []):
                if v is not None and not np.isfinite(v):
                    sys.exit(f"{entry['function']}: non-finite {key} {v}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # One function per line: small diffs when a table changes.
    head = {k: v for k, v in data.items() if k not in ("unary", "binary")}
    with open(OUT, "w") as fh:
        fh.write(json.dumps(head)[:-1] + ",\n")
        for key in ("unary", "binary"):
            rows = ",\n".join("  " + json.dumps(e) for e in data[key])
            fh.write(f' "{key}": [\n{rows}\n ]' + (",\n" if key == "unary" else "\n}\n"))
    print(f"wrote {OUT}: {len(data['unary'])} unary functions, {len(data['binary'])} binary ops")


if __name__ == "__main__":
    main()
