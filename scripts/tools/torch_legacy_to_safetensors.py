#!/usr/bin/env python3
"""Convert the legacy (non-zip) torch.save pickle of EfficientNet-Lite0 to safetensors,
without torch. Needs only python3 + numpy.

    torch_legacy_to_safetensors.py IN.pth OUT.safetensors [--keep-names] [--list]

The legacy torch.save format (torch < 1.6, or _use_new_zipfile_serialization=False) is
five things written one after the other into one file:

  1. pickle: the magic number 0x1950a86a20f9469cfc6c
  2. pickle: the protocol version (1001)
  3. pickle: sys_info {'protocol_version', 'little_endian', 'type_sizes'}
  4. pickle: the object itself (here an OrderedDict name -> tensor). Tensors are pickled as
     torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])
     and each storage as a *persistent id*:
         ('storage', <class torch.FloatStorage>, root_key:str, location:str, numel:int,
          view_metadata: None | (view_key, offset, view_numel))
  5. pickle: the list of storage root keys, in the order their bytes follow
  6. for each of those keys: int64 little-endian element count, then numel*elem_size raw
     bytes (little endian, as sys_info says).

The storages come after the object pickle, so tensors are built lazily: find_class hands the
unpickler stand-ins for torch's classes and functions, and the arrays are made once all the
storages have been read.

By default the keys are renamed from the efficientnet_pytorch names (_conv_stem, _bn0,
_blocks.N._expand_conv, ...) to timm's `efficientnet_lite0` names, and every tensor's shape is
checked against the EfficientNet-Lite0 stage table; any mismatch aborts with an error.
The output holds only F32 tensors (num_batches_tracked is dropped).
"""
import argparse
import collections
import json
import pickle
import struct
import sys

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class Storage:
    """A storage whose bytes are read after the object pickle."""

    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel
        self.array = None  # 1-D numpy array, filled in later


class StorageView:
    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, offset, numel

    @property
    def array(self):
        return self.root.array[self.offset:self.offset + self.numel]

    @property
    def stype(self):
        return self.root.stype


class LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def materialize(self):
        base = self.storage.array
        if base is None:
            raise ValueError(f"storage {self.storage.key} was never read")
        item = base.dtype.itemsize
        if len(self.size) == 0:
            return np.array(base[self.offset])
        # last element touched must be inside the storage
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride) if s > 0)
        if any(s == 0 for s in self.size):
            return np.zeros(self.size, dtype=base.dtype)
        if last >= base.shape[0]:
            raise ValueError("tensor view runs past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[st * item for st in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages  # root_key -> Storage

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, stype, root_key, _location, numel, view_metadata = pid
        if not isinstance(stype, StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {stype!r}")
        root = self.storages.get(root_key)
        if root is None:
            root = self.storages[root_key] = Storage(root_key, stype, numel)
        if view_metadata is not None:
            _view_key, offset, view_numel = view_metadata
            return StorageView(root, offset, view_numel)
        return root


def load_legacy(path):
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise SystemExit(f"{path}: this is a zip-format torch file, not the legacy format")
        f.seek(0)
        # Plain pickle.load is safe for the first three: they hold only ints/dicts/strings.
        magic = LegacyUnpickler(f, {}).load()
        if magic != MAGIC_NUMBER:
            raise SystemExit(f"{path}: bad magic number {magic!r}")
        proto = LegacyUnpickler(f, {}).load()
        if proto != PROTOCOL_VERSION:
            raise SystemExit(f"{path}: unsupported protocol version {proto!r}")
        sys_info = LegacyUnpickler(f, {}).load()
        if not sys_info.get("little_endian", True):
            raise SystemExit(f"{path}: big-endian checkpoints are not supported")
        storages = {}
        obj = LegacyUnpickler(f, storages).load()
        keys = LegacyUnpickler(f, {}).load()
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != st.numel:
                raise SystemExit(f"storage {key}: {numel} elements on disk, {st.numel} in pickle")
            nbytes = numel * st.stype.dtype.itemsize
            buf = f.read(nbytes)
            if len(buf) != nbytes:
                raise SystemExit(f"storage {key}: file truncated")
            st.array = np.frombuffer(buf, dtype=st.stype.dtype.newbyteorder("<"))
        rest = f.read()
        if rest:
            raise SystemExit(f"{path}: {len(rest)} unexpected trailing bytes")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise SystemExit(f"{path}: top-level object is {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for k, v in obj.items():
        out[k] = v.materialize() if isinstance(v, LazyTensor) else v
    return out, sys_info


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0: (repeats, kernel, stride, expand, in, out)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_CH = 32
HEAD_CH = 1280
NUM_CLASSES = 1000
BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def expected_lite0():
    """OrderedDict: source (efficientnet_pytorch) name -> (timm name, shape), in timm order."""
    exp = collections.OrderedDict()

    def bn(src, dst, c):
        for p in BN_PARAMS:
            exp[f"{src}.{p}"] = (f"{dst}.{p}", (c,))

    exp["_conv_stem.weight"] = ("conv_stem.weight", (STEM_CH, 3, 3, 3))
    bn("_bn0", "bn1", STEM_CH)
    n = 0
    for s, (reps, k, _stride, e, cin, cout) in enumerate(STAGES):
        for i in range(reps):
            c_in = cin if i == 0 else cout
            mid = c_in * e
            src, dst = f"_blocks.{n}", f"blocks.{s}.{i}"
            if e == 1:  # DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
                exp[f"{src}._depthwise_conv.weight"] = (f"{dst}.conv_dw.weight", (c_in, 1, k, k))
                bn(f"{src}._bn1", f"{dst}.bn1", c_in)
                exp[f"{src}._project_conv.weight"] = (f"{dst}.conv_pw.weight", (cout, c_in, 1, 1))
                bn(f"{src}._bn2", f"{dst}.bn2", cout)
            else:  # InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
                exp[f"{src}._expand_conv.weight"] = (f"{dst}.conv_pw.weight", (mid, c_in, 1, 1))
                bn(f"{src}._bn0", f"{dst}.bn1", mid)
                exp[f"{src}._depthwise_conv.weight"] = (f"{dst}.conv_dw.weight", (mid, 1, k, k))
                bn(f"{src}._bn1", f"{dst}.bn2", mid)
                exp[f"{src}._project_conv.weight"] = (f"{dst}.conv_pwl.weight", (cout, mid, 1, 1))
                bn(f"{src}._bn2", f"{dst}.bn3", cout)
            n += 1
    exp["_conv_head.weight"] = ("conv_head.weight", (HEAD_CH, STAGES[-1][5], 1, 1))
    bn("_bn1", "bn2", HEAD_CH)
    exp["_fc.weight"] = ("classifier.weight", (NUM_CLASSES, HEAD_CH))
    exp["_fc.bias"] = ("classifier.bias", (NUM_CLASSES,))
    return exp


def rename_and_check(sd):
    exp = expected_lite0()
    tensors = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    errors = []
    for k in tensors:
        if k not in exp:
            errors.append(f"unexpected tensor {k} {getattr(tensors[k], 'shape', '?')}")
    out = collections.OrderedDict()
    for src, (dst, shape) in exp.items():
        if src not in tensors:
            errors.append(f"missing tensor {src} (-> {dst}, expected {shape})")
            continue
        a = tensors[src]
        if not isinstance(a, np.ndarray):
            errors.append(f"{src}: not a tensor ({type(a).__name__})")
            continue
        if tuple(a.shape) != shape:
            errors.append(f"{src} -> {dst}: shape {tuple(a.shape)}, expected {shape}")
            continue
        if a.dtype != np.float32:
            errors.append(f"{src}: dtype {a.dtype}, expected float32")
            continue
        if not np.all(np.isfinite(a)):
            errors.append(f"{src}: non-finite values")
            continue
        out[dst] = a
    if errors:
        for e in errors:
            print("ERROR:", e, file=sys.stderr)
        raise SystemExit(f"{len(errors)} tensor(s) do not match the EfficientNet-Lite0 layout")
    nparams = sum(a.size for k, a in out.items() if "running_" not in k)
    return out, nparams


# ---------------------------------------------------------------------------------------------
SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
                      np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
                      np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
                      np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8",
                      np.dtype(np.bool_): "BOOL"}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        data = a.tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[a.dtype.newbyteorder("=")],
                        "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)  # pad so the data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--keep-names", action="store_true",
                    help="write the original names, skip the EfficientNet-Lite0 check")
    ap.add_argument("--list", action="store_true", help="print name, shape of each tensor")
    args = ap.parse_args()

    sd, sys_info = load_legacy(args.input)
    print(f"read {len(sd)} entries from {args.input} (sys_info {sys_info})")
    if args.keep_names:
        out = collections.OrderedDict(
            (k, v) for k, v in sd.items() if isinstance(v, np.ndarray)
            and not k.endswith("num_batches_tracked"))
        meta = {"source": args.input}
    else:
        out, nparams = rename_and_check(sd)
        print(f"layout check passed: {len(out)} tensors, {nparams} parameters "
              f"(+ BN running statistics)")
        meta = {"format": "pt", "architecture": "tf_efficientnet_lite0",
                "naming": "timm", "bn_eps": "1e-3"}
    if args.list:
        for k, v in out.items():
            print(f"  {k:45s} {str(v.dtype):8s} {tuple(v.shape)}")
    if args.output:
        write_safetensors(args.output, out, meta)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
