"""``save`` and ``load``: tensors and nested state dicts as safetensors files, no pickle.

A file is a standard safetensors file. Every tensor (or NumPy array) in the object is
stored as one safetensors entry named by its path in the structure (``"0.weight"``,
``"state.0.exp_avg"``), so ``cr.save(model.state_dict(), p)`` can be read by any
safetensors reader. The structure around the tensors (dicts with str/int/float/bool/None
keys, lists, tuples, numbers, strings, bools, None) is kept as JSON in the header's
metadata under ``"chainrule.structure"``. A plain safetensors file written elsewhere loads
as a dict of tensors.

Writes are atomic: the bytes go to a temporary file in the target's directory, are
fsynced and then renamed over the target, so a failure part way leaves the previous file
intact. Loading validates the whole file before building anything.

Notes: tuples come back as tuples, NumPy arrays as arrays and ``Parameter`` objects as
parameters; other objects (modules, functions, arbitrary classes) are refused. Floats go
through JSON, which keeps Python floats exactly (including nan and inf).

>>> import os, tempfile
>>> import chainrule as cr
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
>>> cr.save({"step": 3, "w": cr.ones(2)}, path)
>>> cr.load(path)
{'step': 3, 'w': tensor([1., 1.])}
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

from .tensor import Tensor

__all__ = ["load", "save"]

_KEY = "chainrule.structure"
_FORMAT = "chainrule.format"
_VERSION = "1"


class _Encoder:
    """Walks an object, collecting arrays and producing a JSON-able structure."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.seen: dict[int, str] = {}

    def name(self, path: list) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        name = base
        k = 1
        while name in self.arrays or name.startswith("__"):
            name = f"{base}#{k}"
            k += 1
        return name

    def encode(self, obj, path: list):
        if isinstance(obj, Tensor):
            return self.tensor(obj, obj._data, path, _tensor_kind(obj))
        if isinstance(obj, np.ndarray):
            return self.tensor(obj, obj, path, "ndarray")
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            f = float(obj)
            if f != f or f in (float("inf"), float("-inf")):
                return {"__float__": repr(f)}
            return f
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"save: dict keys must be str, int, float, bool or None, "
                                    f"got {type(k).__name__} at {_show(path)}")
                items.append([self.encode(k, path + ["key"]), self.encode(v, path + [k])])
            return {"__dict__": items}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, path + [i]) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, path + [i]) for i, v in enumerate(obj)]
        raise TypeError(
            f"save: can't save an object of type {type(obj).__name__} at {_show(path)}; "
            f"save tensors, arrays, numbers, strings, bools, None and dicts/lists/tuples of "
            f"them (for a module or optimizer, save its state_dict())"
        )

    def tensor(self, obj, arr: np.ndarray, path: list, kind: str):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"save: unsupported array dtype {arr.dtype} at {_show(path)}")
        ref = self.seen.get(id(obj))
        if ref is None:
            ref = self.name(path)
            # (np.ascontiguousarray would turn a 0-d array into 1-d)
            a = arr if arr.flags.c_contiguous else arr.copy(order="C")
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            self.arrays[ref] = a
            self.seen[id(obj)] = ref
        out = {"__tensor__": ref, "kind": kind}
        if kind != "ndarray" and obj.requires_grad:
            out["requires_grad"] = True
        return out


def _tensor_kind(t: Tensor) -> str:
    from .nn.parameter import Parameter

    return "parameter" if isinstance(t, Parameter) else "tensor"


def _show(path: list) -> str:
    return "the top level" if not path else "key " + ".".join(str(p) for p in path)


def _decode(node, arrays: dict, memo: dict):
    if isinstance(node, list):
        return [_decode(v, arrays, memo) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        ref = node["__tensor__"]
        if ref in memo:  # one object saved twice comes back as one object
            return memo[ref]
        if ref not in arrays:
            raise ValueError(f"load: the structure refers to tensor {ref!r}, which the file "
                             f"does not hold")
        memo[ref] = out = _make_tensor(arrays[ref], node)
        return out
    if "__dict__" in node:
        return {_hashable(_decode(k, arrays, memo)): _decode(v, arrays, memo)
                for k, v in node["__dict__"]}
    if "__tuple__" in node:
        return tuple(_decode(v, arrays, memo) for v in node["__tuple__"])
    if "__float__" in node:
        return float(node["__float__"])
    raise ValueError(f"load: unrecognised structure entry with keys {sorted(node)}")


def _make_tensor(arr: np.ndarray, node: dict):
    kind = node.get("kind", "tensor")
    if kind == "ndarray":
        return arr
    if kind == "parameter":
        from .nn.parameter import Parameter

        return Parameter(Tensor(arr), requires_grad=bool(node.get("requires_grad")))
    t = Tensor(arr)
    if node.get("requires_grad"):
        if arr.dtype.kind != "f":
            raise ValueError("load: an integer tensor is marked as requiring grad")
        t.requires_grad_(True)
    return t


def _hashable(k):
    if isinstance(k, (list, dict)):
        raise ValueError("load: a dict key in the structure is not a scalar")
    return k


def _serialize(obj) -> bytes:
    from safetensors.numpy import save as st_save

    enc = _Encoder()
    structure = enc.encode(obj, [])
    metadata = {_FORMAT: _VERSION, _KEY: json.dumps(structure, allow_nan=False)}
    return st_save(enc.arrays, metadata=metadata)


def save(obj, f) -> None:
    """Save tensors, arrays and (nested) state dicts to the path or binary file ``f``.

    Args:
        obj: a tensor, or dicts/lists/tuples of tensors, arrays, numbers, strings, bools
            and None (e.g. ``model.state_dict()`` or ``optimizer.state_dict()``).
        f: a path (written atomically) or a writable binary file object.

    Raises:
        TypeError: for an object that can't be saved (nothing is written).
        OSError: when the path can't be written (an existing file is left as it was).
    """
    data = _serialize(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as e:
        raise type(e)(e.errno, f"save: cannot write {path!r}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise type(e)(e.errno, f"save: cannot write {path!r}: {e.strerror}") from None
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _header(data: bytes, where: str) -> dict:
    if len(data) < 8:
        raise ValueError(f"load: {where} is not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"load: {where} is truncated or not a safetensors file (header of "
                         f"{n} bytes, file of {len(data)})")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"load: {where} is not a safetensors file (unreadable "
                         f"header)") from None
    if not isinstance(header, dict):
        raise ValueError(f"load: {where} is not a safetensors file (bad header)")
    return header


def load(f, map_location=None, weights_only: bool = True):
    """Load an object written by :func:`save` (or any safetensors file).

    Args:
        f: a path or a readable binary file object.
        map_location, weights_only: accepted for PyTorch compatibility (ignored:
            everything is on the CPU and no code is ever loaded).

    Returns:
        The saved structure with new tensors; a safetensors file without chainrule's
        metadata gives a dict of tensors.

    Raises:
        ValueError: for a truncated, corrupt or non-safetensors file (nothing is built).
        FileNotFoundError: when the path does not exist.
    """
    from safetensors.numpy import load as st_load

    if hasattr(f, "read"):
        data = f.read()
        where = "the file object"
    else:
        path = os.fspath(f)
        where = repr(path)
        with open(path, "rb") as fh:
            data = fh.read()
    header = _header(data, where)
    try:
        arrays = st_load(bytes(data))
    except Exception as e:  # safetensors raises its own error type
        raise ValueError(f"load: {where} is corrupt or truncated: {e}") from None
    meta = header.get("__metadata__") or {}
    if _KEY not in meta:
        from .tensor import _wrap

        return {k: _wrap(np.array(v)) for k, v in arrays.items()}
    try:
        structure = json.loads(meta[_KEY])
    except json.JSONDecodeError:
        raise ValueError(f"load: {where} has a corrupt structure record") from None
    arrays = {k: np.array(v) for k, v in arrays.items()}
    return _decode(structure, arrays, {})

