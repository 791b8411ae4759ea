#!/usr/bin/env python3
"""Writes the small safetensors and PNG seeds under Fuzz/seeds/ (the ONNX seeds come from
scripts/tools/onnx_test_models.py). Usage: Fuzz/make_seeds.py [PHOTO.png]"""
import json, os, struct, sys
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, arr) in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


S = os.path.join(HERE, "seeds", "safetensors")
os.makedirs(S, exist_ok=True)
safetensors(f"{S}/f32.safetensors", {"w": ("F32", rng.standard_normal((3, 4)).astype("<f4")),
                                     "b": ("F32", rng.standard_normal((4,)).astype("<f4"))},
            {"amgpu.architecture": "resnet18"})
safetensors(f"{S}/f16_bf16.safetensors", {"h": ("F16", rng.standard_normal((2, 3)).astype("<f2")),
                                          "g": ("BF16", (rng.integers(0, 65535, (5,))).astype("<u2"))})
safetensors(f"{S}/ints.safetensors", {"i64": ("I64", np.arange(6, dtype="<i8").reshape(2, 3)),
                                      "i32": ("I32", np.arange(4, dtype="<i4")), "u8": ("U8", np.arange(3, dtype="u1")),
                                      "f64": ("F64", rng.standard_normal((2,)).astype("<f8"))})
safetensors(f"{S}/scalar_empty.safetensors", {"s": ("F32", np.array(1.5, dtype="<f4")),
                                              "e": ("F32", np.zeros((0, 3), dtype="<f4"))})

P = os.path.join(HERE, "seeds", "png")
os.makedirs(P, exist_ok=True)
rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
Image.fromarray(rgb, "RGB").save(f"{P}/rgb.png")
Image.fromarray(rgb, "RGB").save(f"{P}/rgb_interlaced.png", interlace=1)
Image.fromarray(rgb[:, :, 0], "L").save(f"{P}/gray.png")
Image.fromarray(np.dstack([rgb, rgb[:, :, :1]]), "RGBA").save(f"{P}/rgba.png")
Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=8).save(f"{P}/palette.png")
Image.fromarray((rgb[:, :, 0].astype("<u2") * 257)).save(f"{P}/gray16.png")
Image.fromarray(np.zeros((1, 1), dtype=np.uint8) + 9, "L").convert("1").save(f"{P}/bilevel_1x1.png")
if len(sys.argv) > 1:  # a real photo, downscaled
    Image.open(sys.argv[1]).convert("RGB").resize((32, 24)).save(f"{P}/photo_32x24.png")
