"""Creation functions: tensor, from_numpy, zeros/ones/full/empty(_like), arange, linspace,
eye, rand/randn/randint/randperm/normal, and the random ``*_like`` forms."""

from __future__ import annotations

import numpy as np

from . import backend
from .random import rng
from .tensor import Tensor, _as_array, _int_grad_msg, _wrap


def _finish(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = _wrap(arr)
    if requires_grad:
        if arr.dtype.kind != "f":
            raise RuntimeError(_int_grad_msg(arr.dtype))
        t.requires_grad = True
    return t


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"size: expected ints, got {type(s).__name__} in {tuple(size)}")
        if s < 0:
            raise ValueError(f"size: negative dimension {s} in {tuple(size)}")
        out.append(int(s))
    return tuple(out)


def _dt(dtype, default=None):
    if dtype is None:
        return default if default is not None else backend.get_default_dtype()
    return backend.to_dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copying ``data`` (nested lists, numbers, arrays or tensors).

    Python floats become the default dtype (float32), ints int64, bools bool.

    >>> import chainrule as cr
    >>> cr.tensor([[1, 2], [3, 4]]).dtype == cr.int64
    True
    """
    arr = np.array(_as_array(data, dtype), copy=True)
    return _finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """A tensor sharing memory with ``data`` when possible."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == backend.to_dtype(dtype)):
        return data
    return _wrap(_as_array(data, dtype))


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (dtype kept)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(ndarray).__name__}")
    return _wrap(ndarray)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _finish(np.zeros(_size(size), dtype=_dt(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(_size(size), dtype=_dt(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (zeros here, for determinism)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from it when not given)."""
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = np.bool_
        elif isinstance(fill_value, (int, np.integer)):
            dtype = np.int64
    return _finish(np.full(_size((size,) if isinstance(size, int) else (size,)), fill_value,
                           dtype=_dt(dtype)), requires_grad)


def _like(t, dtype):
    return _dt(dtype, t.dtype)


def zeros_like(input, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape and dtype."""
    return _finish(np.zeros(input.shape, dtype=_like(input, dtype)), requires_grad)


def ones_like(input, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with ``input``'s shape and dtype."""
    return _finish(np.ones(input.shape, dtype=_like(input, dtype)), requires_grad)


def empty_like(input, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape and dtype."""
    return zeros_like(input, dtype, requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``input``'s shape and dtype."""
    return _finish(np.full(input.shape, fill_value, dtype=_like(input, dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 for integer args."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else backend.get_default_dtype()
    return _finish(np.arange(start, end, step, dtype=backend.to_dtype(dtype)), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    return _finish(np.linspace(start, end, steps, dtype=_dt(dtype)), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None,
             requires_grad: bool = False) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    return _finish(np.logspace(start, end, steps, base=base, dtype=_dt(dtype)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (``n`` x ``m``)."""
    return _finish(np.eye(n, m, dtype=_dt(dtype)), requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Uniform samples in [0, 1)."""
    d = _dt(dtype)
    arr = rng(generator).random(_size(size), dtype=np.float64).astype(d)
    return _finish(arr, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Standard normal samples."""
    d = _dt(dtype)
    arr = rng(generator).standard_normal(_size(size)).astype(d)
    return _finish(arr, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False):
    """Integers uniform in [low, high) (``randint(high, size)`` also works)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: expected randint(low, high, size) or "
                            "randint(high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    arr = rng(generator).integers(low, high, size=_size((size,)) if isinstance(size, int)
                                  else tuple(size)).astype(_dt(dtype, np.dtype(np.int64)))
    return _finish(arr, requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of ``range(n)`` (int64)."""
    return _wrap(rng(generator).permutation(n).astype(_dt(dtype, np.dtype(np.int64))))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None) -> Tensor:
    """Normal samples with the given mean and std (scalars or tensors broadcast)."""
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    shape = tuple(size) if size is not None else np.broadcast_shapes(np.shape(m), np.shape(s))
    d = _dt(dtype, getattr(m, "dtype", None) if isinstance(m, np.ndarray) else None)
    return _wrap((rng(generator).standard_normal(shape) * s + m).astype(d))


def rand_like(input, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples with ``input``'s shape."""
    return rand(*input.shape, dtype=_like(input, dtype), requires_grad=requires_grad)


def randn_like(input, dtype=None, requires_grad: bool = False) -> Tensor:
    """Normal samples with ``input``'s shape."""
    return randn(*input.shape, dtype=_like(input, dtype), requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None) -> Tensor:
    """Random integers with ``input``'s shape."""
    return randint(low, high, tuple(input.shape), dtype=_like(input, dtype))


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``), else 0, with ``input``'s dtype."""
    probs = input._data if p is None else np.full(input.shape, p)
    return _wrap((rng(generator).random(np.shape(probs)) < probs).astype(input.dtype))


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Sample category indices from (rows of) non-negative weights."""
    w = np.asarray(input._data, dtype=np.float64)
    single = w.ndim == 1
    w2 = w[None] if single else w
    g = rng(generator)
    rows = []
    for row in w2:
        p = row / row.sum()
        rows.append(g.choice(len(p), size=num_samples, replace=replacement, p=p))
    out = np.asarray(rows, dtype=np.int64)
    return _wrap(out[0] if single else out)
