"""Indexing primitives: ``getitem``, its adjoint ``scatter_into``, and ``index_put``.

Gather, index_select, scatter_add and masked_fill are composites of these. Integer-array
indices with duplicates accumulate in backward (``np.add.at``).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._registry import primitive

xp = backend.xp


def normalize_index(idx):
    """Turn tensors and lists inside an index into arrays; return a tuple index."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for k in idx:
        if isinstance(k, Tensor):
            k = k._data
            if k.dtype.kind == "f":
                raise IndexError("indexing: tensors used as indices must be integer or bool, "
                                 f"got {backend.dtype_name(k.dtype)}; convert with .long()")
        elif isinstance(k, list):
            k = np.asarray(k)
            if k.size == 0:
                k = k.astype(np.int64)
            elif k.dtype.kind not in "biu":
                raise IndexError(f"indexing: lists used as indices must hold integers or "
                                 f"bools, got {k.dtype} values {k.tolist()}")
        out.append(k)
    return tuple(out)


def is_basic(idx: tuple) -> bool:
    """True when the index has no arrays (a NumPy view results)."""
    for k in idx:
        if isinstance(k, np.ndarray):
            return False
    return True


def _has_int_array(idx: tuple) -> bool:
    for k in idx:
        if isinstance(k, np.ndarray) and k.dtype.kind in "iu":
            return True
    return False


def _index_error(op, x, idx, e):
    return IndexError(f"{op}: {e} (tensor shape {tuple(x.shape)}, index {_show(idx)})")


def _show(idx) -> str:
    parts = []
    for k in idx:
        if isinstance(k, np.ndarray):
            parts.append(f"array(shape={k.shape}, dtype={k.dtype})")
        else:
            parts.append(repr(k))
    return "(" + ", ".join(parts) + ")"


def _getitem(x, idx):
    try:
        return x[idx]
    except IndexError as e:
        raise _index_error("getitem", x, idx, e) from None


def _getitem_vjp(g, out, x, idx):
    return scatter_into(g, idx, x.shape)


getitem = primitive(nin=1, view=True, name="getitem")(_getitem)
getitem.defvjp(_getitem_vjp)
getitem_copy = primitive(nin=1, name="getitem")(_getitem)
getitem_copy.defvjp(_getitem_vjp)


def take(x, idx):
    """Index ``x`` (tensor or raw array) with a normalised index: the one entry point."""
    if is_basic(idx):
        return getitem(x, idx)
    return getitem_copy(x, idx)


@primitive(nin=1)
def scatter_into(g, idx, shape):
    """Zeros of ``shape`` with ``g`` added at ``idx`` (duplicates accumulate)."""
    z = xp.zeros(shape, dtype=g.dtype)
    if _has_int_array(idx):
        xp.add.at(z, idx, g)
    else:
        z[idx] = g
    return z


scatter_into.defvjp(lambda g, out, src, idx, shape: take(g, idx))


@primitive()
def index_put(x, idx, v):
    """A copy of ``x`` with ``x[idx] = v`` (the out-of-place form of ``__setitem__``)."""
    r = x.copy()
    try:
        r[idx] = v
    except IndexError as e:
        raise _index_error("setitem", x, idx, e) from None
    except ValueError:
        raise ValueError(
            f"setitem: value of shape {tuple(np.shape(v))} can't be assigned to the indexed "
            f"region of a tensor of shape {tuple(x.shape)} (index {_show(idx)})"
        ) from None
    return r


index_put.defvjp(
    lambda g, out, x, idx, v: index_put(g, idx, 0.0),
    None,
    lambda g, out, x, idx, v: take(g, idx),
)


def along_dim_index(op: str, x_shape: tuple, dim: int, index: np.ndarray) -> tuple:
    """The advanced index selecting ``index`` along ``dim`` (PyTorch gather semantics)."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got "
                        f"{backend.dtype_name(index.dtype)}")
    nd = len(x_shape)
    if index.ndim != nd:
        raise ValueError(
            f"{op}: index must have as many dimensions as the input ({nd}), got index "
            f"shape {index.shape} for input shape {x_shape}"
        )
    for d in range(nd):
        if d != dim and index.shape[d] > x_shape[d]:
            raise ValueError(
                f"{op}: index shape {index.shape} is larger than input shape {x_shape} in "
                f"dimension {d}"
            )
    if index.size and (index.min() < -x_shape[dim] or index.max() >= x_shape[dim]):
        raise IndexError(
            f"{op}: index out of range for dimension {dim} with size {x_shape[dim]} "
            f"(index values span [{index.min()}, {index.max()}])"
        )
    parts = []
    for d in range(nd):
        if d == dim:
            parts.append(index)
        else:
            shape = [1] * nd
            shape[d] = index.shape[d]
            parts.append(np.arange(index.shape[d]).reshape(shape))
    return tuple(parts)
