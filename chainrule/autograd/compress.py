"""Activation compression: keep tensors saved for backward in fewer bits.

``compress_saved(mode)`` is a saved-tensor hooks context (see :mod:`.graph`): every tensor
an operation saves for backward is stored compressed and expanded again when backward
needs it. The forward pass is unchanged; backward sees slightly rounded activations, so
gradients carry a small error (measured in ``tests/autograd/test_compress.py`` and by
:func:`gradient_error`).

Modes:

- ``'float16'``: IEEE half precision (2 bytes per value). Values beyond +-65504 become
  infinite (a ``RuntimeWarning`` names the tensor's shape); use ``'bfloat16'`` then.
- ``'bfloat16'``: the top 16 bits of the float32 value (8 exponent bits, so the float32
  range), rounded to nearest even; 2 bytes per value.
- ``'8bit'``: ``round(x / scale)`` as int8 with one scale per tensor
  (``scale = max|x| / 127``); 1 byte per value.

Parameters (leaf tensors that require grad) and non-float tensors are kept as they are:
they are held by the model anyway. A tensor saved by several operations is compressed
once while the compressed copy is alive.

The hooks compose with the saved-tensor hooks already active when the context is entered
(for example :func:`chainrule.diagnostics.memory_report`): the compressed tensor is handed
to them, so they see (and count) the compressed bytes.

>>> import chainrule as cr
>>> x = cr.randn(4, 3, requires_grad=True)
>>> with cr.autograd.graph.compress_saved("bfloat16"):
...     y = (x.tanh() * x).sum()
>>> y.backward()
>>> x.grad.shape
(4, 3)
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable

import numpy as np

from ..tensor import Tensor, _wrap
from .graph import current_saved_hooks, saved_tensors_hooks

__all__ = ["MODES", "compress_saved", "enclosing_hooks", "gradient_error"]

MODES = ("float16", "bfloat16", "8bit")

_F16_MAX = float(np.finfo(np.float16).max)


def enclosing_hooks() -> tuple[Callable, Callable]:
    """``(store, load)`` functions that hand a value to the saved-tensor hooks active now.

    A hooks context that wants to compose with the one around it (instead of hiding it,
    which is what nesting ``saved_tensors_hooks`` does) calls this before entering and
    passes what it keeps through ``store``; ``load`` gives it back. Without enclosing
    hooks both are the identity.
    """
    outer = current_saved_hooks()
    if outer is None:
        return _identity, _identity
    return outer[0], outer[1]


def _identity(x):
    return x


class _Compressed:
    """A compressed saved tensor: the stored payload plus what is needed to expand it."""

    __slots__ = ("payload", "mode", "dtype", "scale", "__weakref__")

    def __init__(self, payload, mode: str, dtype, scale: float) -> None:
        self.payload = payload
        self.mode = mode
        self.dtype = dtype
        self.scale = scale


def _to_bfloat16_bits(a: np.ndarray) -> np.ndarray:
    """The top 16 bits of float32 ``a``, rounded to nearest even (NaN stays NaN)."""
    a32 = a.astype(np.float32, order="C", copy=False)
    bits = a32.view(np.uint32)
    # round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate
    rounded = bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    nan = np.isnan(a32)
    if nan.any():
        rounded = np.where(nan, bits | np.uint32(0x00400000), rounded)
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _from_bfloat16_bits(b: np.ndarray, dtype) -> np.ndarray:
    out = (b.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return out if out.dtype == dtype else out.astype(dtype)


def _compress(a: np.ndarray, mode: str) -> _Compressed:
    if mode == "float16":
        with np.errstate(over="ignore"):  # reported below, naming the tensor
            h = a.astype(np.float16)
        if a.dtype.itemsize > 2 and h.size and np.isinf(h).any():
            over = np.isinf(h) & np.isfinite(a)
            if over.any():
                peak = float(np.max(np.abs(a[over])))
                warnings.warn(
                    f"compress_saved('float16'): a saved tensor of shape {a.shape} has values "
                    f"up to {peak:.3g}, beyond float16's range ({_F16_MAX:g}); they become "
                    f"inf and the gradient inf/nan. Use compress_saved('bfloat16').",
                    RuntimeWarning, stacklevel=4)
        return _Compressed(h, mode, a.dtype, 1.0)
    if mode == "bfloat16":
        return _Compressed(_to_bfloat16_bits(a), mode, a.dtype, 1.0)
    # 8bit: symmetric per-tensor scale
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if not np.isfinite(peak):
        raise ValueError(f"compress_saved('8bit'): a saved tensor of shape {a.shape} holds "
                         f"inf or nan, which a per-tensor scale cannot represent; use "
                         f"'bfloat16'")
    scale = peak / 127.0 if peak > 0 else 1.0
    q = np.rint(a / scale).astype(np.int8)
    return _Compressed(q, mode, a.dtype, scale)


def _expand(c: _Compressed) -> np.ndarray:
    p = c.payload
    if c.mode == "float16":
        return p.astype(c.dtype)
    if c.mode == "bfloat16":
        return _from_bfloat16_bits(p, c.dtype)
    out = p.astype(c.dtype)
    out *= np.asarray(c.scale, dtype=c.dtype)
    return out


class compress_saved(saved_tensors_hooks):
    """Context manager: store the tensors saved for backward compressed.

    Args:
        mode: ``'float16'``, ``'bfloat16'`` (top 16 bits of float32) or ``'8bit'``
            (int8 with a per-tensor scale).

    Only float tensors wider than the chosen format are compressed (a float16 tensor
    under ``'float16'`` is kept as is); parameters are never compressed. Combine with
    :func:`chainrule.diagnostics.memory_report` to see the saving.

    >>> import chainrule as cr
    >>> lin = cr.nn.Linear(8, 8)
    >>> x = cr.randn(16, 8)
    >>> with cr.autograd.graph.compress_saved("8bit"):
    ...     loss = lin(x).relu().sum()
    >>> loss.backward()
    >>> lin.weight.grad.shape
    (8, 8)
    """

    def __init__(self, mode: str = "float16") -> None:
        if mode not in MODES:
            raise ValueError(f"compress_saved: unknown mode {mode!r}; expected one of "
                             f"{', '.join(repr(m) for m in MODES)}")
        self.mode = mode
        self._bits = 8 if mode == "8bit" else 16
        # id(array) -> (weakref to the array, weakref to its live compressed copy)
        self._cache: dict[int, tuple] = {}
        self._store: Callable = _identity
        self._load: Callable = _identity
        super().__init__(self._pack, self._unpack)

    def __enter__(self):
        self._store, self._load = enclosing_hooks()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self._cache.clear()

    def _wants(self, t: Tensor) -> bool:
        d = t._data
        if d.dtype.kind != "f" or d.dtype.itemsize * 8 <= self._bits:
            return False
        return not (t.requires_grad and t.grad_fn is None)

    def _pack(self, t):
        if not isinstance(t, Tensor) or not self._wants(t):
            return ("raw", self._store(t))
        d = t._data
        key = id(d)
        hit = self._cache.get(key)
        c = None
        if hit is not None and hit[0]() is d:
            c = hit[1]()
        if c is None:
            c = _compress(d, self.mode)
            c.payload = self._store(_wrap(c.payload))
            self._cache[key] = (weakref.ref(d), weakref.ref(c))
            if len(self._cache) > 4096:
                self._prune()
        return ("c", c)

    def _prune(self) -> None:
        dead = [k for k, (a, c) in self._cache.items() if a() is None or c() is None]
        for k in dead:
            del self._cache[k]

    def _unpack(self, packed):
        kind, val = packed
        if kind == "raw":
            return self._load(val)
        payload = self._load(val.payload)
        arr = payload._data if isinstance(payload, Tensor) else payload
        tmp = _Compressed(arr, val.mode, val.dtype, val.scale)
        return _wrap(_expand(tmp))


def gradient_error(fn: Callable, inputs, mode: str, wrt=None) -> float:
    """Relative error of the gradients of ``fn(*inputs)`` when its saved tensors are
    compressed with ``mode``: ``||g_c - g|| / ||g||`` over all of ``wrt`` together.

    Args:
        fn: returns a scalar tensor.
        inputs: a tensor or a list of arguments for ``fn``.
        mode: as in :class:`compress_saved`.
        wrt: tensors to differentiate (default: the inputs that require grad), e.g.
            a model's parameters.

    Runs forward and backward twice (plain and compressed) through ``autograd.grad``,
    so no ``.grad`` is touched.

    >>> import chainrule as cr
    >>> x = cr.randn(32, 16, dtype=cr.float64, requires_grad=True)
    >>> gradient_error(lambda x: (x.tanh() ** 2).sum(), [x], "float16") < 1e-2
    True
    """
    from .engine import grad

    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if wrt is None:
        wrt = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    else:
        wrt = [wrt] if isinstance(wrt, Tensor) else list(wrt)
    if not wrt:
        raise ValueError("gradient_error: no input requires grad")
    ref = grad(fn(*inputs), wrt, allow_unused=True)
    with compress_saved(mode):
        out = fn(*inputs)
    got = grad(out, wrt, allow_unused=True)
    num = 0.0
    den = 0.0
    for r, g in zip(ref, got):
        if r is None:
            continue
        num += float(np.sum((g._data.astype(np.float64) - r._data) ** 2))
        den += float(np.sum(r._data.astype(np.float64) ** 2))
    return (num / den) ** 0.5 if den > 0 else num ** 0.5
