"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ...tensor import Tensor, _wrap


def _grads(parameters, op: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for k, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors, got {type(p).__name__} at position {k}")
        if p.grad is not None:
            out.append(p)
    return out


def _writable_grad(p: Tensor) -> np.ndarray:
    """The gradient's array, replaced by a private copy if it can't be written."""
    g = p.grad._data
    if not g.flags.writeable:
        g = np.array(g)
        p.grad = _wrap(g)
    return g


def _vector_norm(arr: np.ndarray, p: float):
    """The vector p-norm of all of ``arr``'s entries (p may be 0, inf or -inf)."""
    a = np.abs(arr.reshape(-1))
    if a.size == 0:
        return arr.dtype.type(0.0) if p != -math.inf else arr.dtype.type(math.inf)
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0:
        return arr.dtype.type(np.count_nonzero(a))
    if p == 1:
        return a.sum()
    if p == 2:
        return np.sqrt(np.dot(a, a))
    return (a**p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so their joint norm is at most
    ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector.
    Gradients are multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped.
        max_norm: the largest allowed norm.
        norm_type: the p of the p-norm; ``float('inf')`` for the largest entry.
        error_if_nonfinite: raise if the total norm is nan or inf (otherwise the
            gradients are scaled by the non-finite norm, as in PyTorch).
        foreach: accepted for PyTorch compatibility; ignored.

    Returns:
        The total norm of the gradients before clipping, as a 0-d tensor.

    >>> import chainrule as cr
    >>> w = cr.zeros(2, requires_grad=True)
    >>> w.grad = cr.tensor([3.0, 4.0])
    >>> cr.nn.utils.clip_grad_norm_([w], max_norm=1.0)
    tensor(5.)
    >>> [round(v, 4) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    op = "clip_grad_norm_"
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if math.isnan(norm_type):
        raise ValueError(f"{op}: norm_type must be a number, got nan")
    params = _grads(parameters, op)
    if len(params) == 0:
        return _wrap(np.array(0.0, dtype=np.float32))
    dtype = np.result_type(*[p.grad._data.dtype for p in params])
    norms = np.array([_vector_norm(p.grad._data, norm_type) for p in params], dtype=dtype)
    total_norm = np.asarray(_vector_norm(norms, norm_type), dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(
            f"{op}: the total norm of order {norm_type} for gradients from `parameters` is "
            f"non-finite ({float(total_norm)}), so it cannot be clipped. To disable this error "
            f"and scale the gradients by the non-finite norm anyway, set "
            f"`error_if_nonfinite=False`"
        )
    clip_coef = min(max_norm / (float(total_norm) + 1e-6), 1.0) \
        if np.isfinite(total_norm) else max_norm / (float(total_norm) + 1e-6)
    for p in params:
        g = _writable_grad(p)
        g *= clip_coef
    return _wrap(total_norm)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient entry of ``parameters`` into ``[-clip_value, clip_value]``.

    >>> import chainrule as cr
    >>> w = cr.zeros(3, requires_grad=True)
    >>> w.grad = cr.tensor([-2.0, 0.5, 3.0])
    >>> cr.nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    clip_value = float(clip_value)
    if math.isnan(clip_value):
        raise ValueError("clip_grad_value_: clip_value must be a number, got nan")
    for p in _grads(parameters, "clip_grad_value_"):
        g = _writable_grad(p)
        np.clip(g, -clip_value, clip_value, out=g)
