"""In-place operations: ``add_ sub_ mul_ div_ zero_ fill_ copy_ clamp_`` and ``__setitem__``.

Without a graph to record they write straight into the array. When recording, the
out-of-place primitive runs on a snapshot and the result is written back, so the node
saved the values from before the change; the tensor then carries the new history. Every
in-place change bumps the version counter shared with views, which backward checks.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.grad_mode import _state as _grad_state
from ..tensor import Tensor, _new, _wrap
from . import elementwise as E
from .indexing import index_put, normalize_index


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _recording(self: Tensor, *others) -> bool:
    if not _grad_state.enabled:
        return False
    need = self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                     for o in others)
    return need


def _check_leaf(op: str, self: Tensor) -> None:
    if self.requires_grad and self.grad_fn is None:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {self.shape}) is being used in "
            f"an in-place operation; do it under chainrule.no_grad(), or on a clone()"
        )
    box = self._vbox
    if box is not None and len(box) > 2 and box[2]:
        raise RuntimeError(
            f"{op}: this tensor shares memory with a view and is part of a graph; in-place "
            f"changes through views are not recorded. Use the out-of-place form or clone()"
        )


def _cast_error(op: str, result_dtype, dtype) -> TypeError:
    return TypeError(
        f"{op}: result type {backend.dtype_name(result_dtype)} can't be cast to the "
        f"tensor's dtype {backend.dtype_name(dtype)} in place; use the out-of-place op "
        f"instead (e.g. x = x + y), which promotes"
    )


def _snapshot(self: Tensor, copy: bool) -> Tensor:
    t = _new(Tensor)
    t._data = self._data.copy() if copy else self._data
    t.requires_grad = self.requires_grad
    t.grad = None
    t.grad_fn = self.grad_fn
    t._vbox = None
    t._extra = None
    return t


def _write(self: Tensor, result, op: str) -> Tensor:
    """Write ``result`` into ``self``'s array, take over its history, bump the version."""
    data = result._data if isinstance(result, Tensor) else result
    if np.result_type(data) != self._data.dtype and not np.can_cast(
        np.result_type(data), self._data.dtype, "same_kind"
    ):
        raise _cast_error(op, np.result_type(data), self._data.dtype)
    if not self._data.flags.writeable:
        raise RuntimeError(
            f"{op}: this tensor is a read-only view (e.g. from expand); clone() it first"
        )
    try:
        np.copyto(self._data, data, casting="same_kind")
    except ValueError:
        raise ValueError(
            f"{op}: result of shape {np.shape(data)} can't be written into a tensor of shape "
            f"{self._data.shape} (in-place ops can't change the shape)"
        ) from None
    if isinstance(result, Tensor) and result.grad_fn is not None:
        self.grad_fn = result.grad_fn
        self.requires_grad = True
    self._bump(op)
    return self


def _replace_all(self: Tensor, value):
    """``value`` everywhere, recorded so that the old values get a zero gradient.

    A ``where`` with an all-true condition rather than ``self * 0 + value``: the old
    values may be inf or nan, and ``0 * inf`` would leak nan into the result.
    """
    everywhere = np.ones(self._data.shape, dtype=bool)
    return E.where(everywhere, value, _snapshot(self, False))


def _binary_inplace(op: str, prim, ufunc):
    def method(self: Tensor, other, *, alpha=None):
        o = other if alpha is None else E.mul(other, alpha)
        if _recording(self, o):
            _check_leaf(op, self)
            saves_self = 0 in prim.prim.save_idx
            return _write(self, prim(_snapshot(self, saves_self), o), op)
        od = _raw(o)
        if isinstance(od, np.ndarray) and od.dtype != self._data.dtype and not np.can_cast(
            od.dtype, self._data.dtype, "same_kind"
        ):
            raise _cast_error(op, od.dtype, self._data.dtype)
        if not self._data.flags.writeable:
            raise RuntimeError(f"{op}: this tensor is a read-only view; clone() it first")
        try:
            ufunc(self._data, od, out=self._data, casting="same_kind")
        except ValueError:
            raise ValueError(
                f"{op}: shape {np.shape(od)} can't be broadcast to the tensor's shape "
                f"{self._data.shape} in place"
            ) from None
        except TypeError:
            raise _cast_error(op, backend.result_type(self._data, od), self._data.dtype) from None
        self._bump(op)
        return self

    method.__name__ = op
    method.__doc__ = f"In-place ``{prim.prim.name}``; returns self."
    return method


add_ = _binary_inplace("add_", E.add, np.add)
sub_ = _binary_inplace("sub_", E.sub, np.subtract)
mul_ = _binary_inplace("mul_", E.mul, np.multiply)


def div_(self: Tensor, other) -> Tensor:
    """In-place division; returns self."""
    if _recording(self, other):
        _check_leaf("div_", self)
        return _write(self, E.div(_snapshot(self, True), other), "div_")
    if self._data.dtype.kind != "f":
        raise _cast_error("div_", backend.get_default_dtype(), self._data.dtype)
    np.true_divide(self._data, _raw(other), out=self._data)
    self._bump("div_")
    return self


def pow_(self: Tensor, exponent) -> Tensor:
    """In-place power; returns self."""
    if _recording(self, exponent):
        _check_leaf("pow_", self)
        return _write(self, E.pow(_snapshot(self, True), exponent), "pow_")
    np.power(self._data, _raw(exponent), out=self._data)
    self._bump("pow_")
    return self


def neg_(self: Tensor) -> Tensor:
    """In-place negation; returns self."""
    return mul_(self, -1)


def zero_(self: Tensor) -> Tensor:
    """Fill with zeros in place; returns self."""
    return _fill(self, 0, "zero_")


def fill_(self: Tensor, value) -> Tensor:
    """Fill with ``value`` in place; returns self."""
    return _fill(self, value, "fill_")


def _fill(self: Tensor, value, op: str) -> Tensor:
    if _recording(self, value):
        _check_leaf(op, self)
        return _write(self, _replace_all(self, value), op)
    self._data[...] = _raw(value)
    self._bump(op)
    return self


def copy_(self: Tensor, src) -> Tensor:
    """Copy ``src`` (broadcast, cast) into this tensor in place; returns self."""
    s = src if isinstance(src, Tensor) else _wrap(np.asarray(src))
    try:
        np.broadcast_shapes(s._data.shape, self._data.shape)
    except ValueError:
        raise ValueError(f"copy_: source of shape {s._data.shape} can't be broadcast to "
                         f"{self._data.shape}") from None
    if _recording(self, s):
        _check_leaf("copy_", self)
        from .shape import expand

        val = E.cast(s, self._data.dtype) if s.dtype != self._data.dtype else s
        return _write(self, _replace_all(self, expand(val, self._data.shape)), "copy_")
    np.copyto(self._data, s._data, casting="unsafe")
    self._bump("copy_")
    return self


def clamp_(self: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp in place; returns self."""
    if _recording(self, min, max):
        _check_leaf("clamp_", self)
        return _write(self, E.clamp(_snapshot(self, True), min, max), "clamp_")
    if min is None and max is None:
        raise ValueError("clamp_: at least one of min and max must not be None")
    np.clip(self._data, _raw(min), _raw(max), out=self._data)
    self._bump("clamp_")
    return self


def _unary_inplace(op: str, prim):
    def method(self: Tensor) -> Tensor:
        if _recording(self):
            _check_leaf(op, self)
            return _write(self, prim(_snapshot(self, True)), op)
        if self._data.dtype.kind != "f":
            raise TypeError(f"{op}: needs a floating tensor, got {self._data.dtype}")
        np.copyto(self._data, prim(self._data))
        self._bump(op)
        return self

    method.__name__ = op
    method.__doc__ = f"In-place ``{prim.prim.name}``; returns self."
    return method


relu_ = _unary_inplace("relu_", E.relu)
exp_ = _unary_inplace("exp_", E.exp)
sqrt_ = _unary_inplace("sqrt_", E.sqrt)
tanh_ = _unary_inplace("tanh_", E.tanh)
sigmoid_ = _unary_inplace("sigmoid_", E.sigmoid)
log_ = _unary_inplace("log_", E.log)
abs_ = _unary_inplace("abs_", E.abs)


def masked_fill_(self: Tensor, mask, value) -> Tensor:
    """Set ``value`` where ``mask`` is True, in place; returns self."""
    m = _raw(mask)
    if _recording(self, value):
        _check_leaf("masked_fill_", self)
        return _write(self, E.where(_wrap(m), value, _snapshot(self, False)), "masked_fill_")
    np.copyto(self._data, _raw(value), where=np.broadcast_to(m, self._data.shape),
              casting="unsafe")
    self._bump("masked_fill_")
    return self


def setitem(self: Tensor, idx, value) -> None:
    """``self[idx] = value``: recorded as ``index_put`` when a graph is being built."""
    nidx = normalize_index(idx)
    if _recording(self, value):
        _check_leaf("setitem", self)
        _write(self, index_put(_snapshot(self, False), nidx, value), "setitem")
        return
    try:
        self._data[nidx] = _raw(value)
    except IndexError as e:
        raise IndexError(f"setitem: {e} (tensor shape {self._data.shape})") from None
    except ValueError:
        raise ValueError(
            f"setitem: value of shape {np.shape(_raw(value))} can't be assigned to the "
            f"indexed region of a tensor of shape {self._data.shape}"
        ) from None
    self._bump("setitem")
