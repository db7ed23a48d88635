"""Attach operators and methods to ``Tensor``: every one is an alias of a function.

Nothing here computes: each entry points at the same table entry as ``chainrule.X``.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor, _wrap
from . import elementwise as E
from . import inplace as I
from . import linalg_api as LA
from . import math_api as M
from . import shape_api as SA
from .indexing import normalize_index, take
from .linalg_api import matmul
from .shape import clone


def _swap(fn):
    def r(self, other):
        return fn(other, self)

    r.__doc__ = f"Reflected ``{getattr(fn, '__name__', 'op')}``."
    return r


def _floordiv(a, b):
    ra = a._data if isinstance(a, Tensor) else a
    rb = b._data if isinstance(b, Tensor) else b
    ra, rb = E._promote(ra, rb)
    return _wrap(np.floor_divide(ra, rb))


def remainder(input, other):
    """Python-style modulus: the result has the sign of the divisor."""
    ra = input._data if isinstance(input, Tensor) else input
    rb = other._data if isinstance(other, Tensor) else other
    if np.result_type(ra, rb).kind in "iub":
        ra, rb = E._promote(ra, rb)
        return _wrap(np.remainder(ra, rb))
    # differentiable in input (grad 1) and other (grad -floor(a/b))
    q = E.floor(E.div(input, other))
    return E.sub(input, E.mul(q, other))


def _to(self, *args, **kwargs):
    """Convert dtype (``to(dtype)``, ``to(other)``, ``to('cpu')``); returns self if equal."""
    dtype = kwargs.get("dtype")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, str) and a in ("cpu",):
            continue
        elif a is not None and not isinstance(a, (str, bool)):
            dtype = a
    if dtype is None:
        return self
    d = backend.to_dtype(dtype)
    if d == self.dtype:
        return self
    return E.cast(self, d)


def _caster(dtype):
    def f(self):
        return _to(self, dtype)

    f.__doc__ = f"Convert to {backend.dtype_name(dtype)}."
    return f


def _type(self, dtype=None):
    """Return the dtype name with no argument, else convert to ``dtype``."""
    if dtype is None:
        return backend.dtype_name(self.dtype)
    return _to(self, dtype)


def _getitem(self, idx):
    return take(self, normalize_index(idx))


def _contiguous(self):
    """A C-contiguous tensor with the same values (self if already contiguous)."""
    if self._data.flags.c_contiguous:
        return self
    return clone(self)


def _size_dims(fn):
    def method(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return fn(self, dims)

    method.__doc__ = fn.__doc__
    return method


def _new_tensor(self, data, dtype=None, requires_grad=False):
    """A new tensor from ``data`` with this tensor's dtype by default."""
    from ..creation import tensor

    return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_zeros(self, *size, dtype=None, requires_grad=False):
    """Zeros of ``size`` with this tensor's dtype by default."""
    from ..creation import zeros

    return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_ones(self, *size, dtype=None, requires_grad=False):
    """Ones of ``size`` with this tensor's dtype by default."""
    from ..creation import ones

    return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_full(self, size, fill_value, dtype=None, requires_grad=False):
    """``fill_value`` of ``size`` with this tensor's dtype by default."""
    from ..creation import full

    return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _iop(fn):
    def method(self, other):
        return fn(self, other)

    return method


_METHODS = {
    # operators
    "__add__": E.add, "__radd__": _swap(E.add),
    "__sub__": E.sub, "__rsub__": _swap(E.sub),
    "__mul__": E.mul, "__rmul__": _swap(E.mul),
    "__truediv__": E.div, "__rtruediv__": _swap(E.div),
    "__pow__": E.pow, "__rpow__": _swap(E.pow),
    "__matmul__": matmul, "__rmatmul__": _swap(matmul),
    "__floordiv__": _floordiv, "__rfloordiv__": _swap(_floordiv),
    "__mod__": remainder, "__rmod__": _swap(remainder),
    "__neg__": E.neg, "__pos__": lambda self: self, "__abs__": E.abs,
    "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt, "__le__": E.le,
    "__gt__": E.gt, "__ge__": E.ge,
    "__and__": E.bitwise_and, "__or__": E.bitwise_or, "__xor__": E.bitwise_xor,
    "__rand__": _swap(E.bitwise_and), "__ror__": _swap(E.bitwise_or),
    "__rxor__": _swap(E.bitwise_xor),
    "__invert__": E.bitwise_not,
    "__getitem__": _getitem, "__setitem__": I.setitem,
    "__iadd__": _iop(I.add_), "__isub__": _iop(I.sub_), "__imul__": _iop(I.mul_),
    "__itruediv__": _iop(I.div_),
    # arithmetic and maths
    "add": M.add, "sub": M.sub, "subtract": M.sub, "mul": E.mul, "multiply": E.mul,
    "div": M.div, "divide": M.div, "true_divide": M.true_divide, "pow": E.pow,
    "neg": E.neg, "negative": E.neg, "exp": E.exp, "expm1": E.expm1, "log": E.log,
    "log1p": E.log1p, "sqrt": E.sqrt, "rsqrt": E.rsqrt, "abs": E.abs, "absolute": E.abs,
    "sin": E.sin, "cos": E.cos, "tan": E.tan, "atan": E.atan, "sinh": E.sinh,
    "cosh": E.cosh, "tanh": E.tanh, "sigmoid": E.sigmoid, "relu": E.relu, "erf": E.erf,
    "sign": E.sign, "floor": E.floor, "ceil": E.ceil, "trunc": E.trunc, "round": M.round,
    "square": M.square, "reciprocal": M.reciprocal, "remainder": remainder,
    "clamp": M.clamp, "clip": M.clamp, "maximum": E.maximum, "minimum": E.minimum,
    "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge,
    "greater": E.gt, "less": E.lt, "equal": lambda a, b: bool(np.array_equal(
        a._data, b._data if isinstance(b, Tensor) else b)),
    "logical_and": E.logical_and, "logical_or": E.logical_or,
    "logical_xor": E.logical_xor, "logical_not": E.logical_not,
    "isnan": E.isnan, "isinf": E.isinf, "isfinite": E.isfinite,
    "where": lambda self, condition, other: M.where(condition, self, other),
    "lerp": M.lerp, "softplus": M.softplus, "norm": M.norm, "dist": M.dist,
    "logaddexp": M.logaddexp,
    # reductions
    "sum": M.sum, "mean": M.mean, "var": M.var, "std": M.std, "max": M.max, "min": M.min,
    "amax": M.amax, "amin": M.amin, "argmax": M.argmax, "argmin": M.argmin,
    "cumsum": M.cumsum, "logsumexp": M.logsumexp, "softmax": M.softmax,
    "log_softmax": M.log_softmax, "all": M.all, "any": M.any,
    "count_nonzero": M.count_nonzero,
    # shape
    "reshape": SA.reshape, "view": SA.view, "view_as": SA.view_as,
    "reshape_as": SA.reshape_as, "permute": SA.permute, "transpose": SA.transpose,
    "swapaxes": SA.transpose, "swapdims": SA.transpose, "t": SA.t, "movedim": SA.movedim,
    "expand": SA.expand, "expand_as": SA.expand_as, "broadcast_to": SA.broadcast_to,
    "squeeze": SA.squeeze, "unsqueeze": SA.unsqueeze, "flatten": SA.flatten,
    "unflatten": SA.unflatten, "ravel": SA.ravel, "split": SA.split, "chunk": SA.chunk,
    "unbind": SA.unbind, "narrow": SA.narrow, "tril": SA.tril, "triu": SA.triu,
    "flip": SA.flip, "repeat": SA.repeat, "tile": SA.tile, "roll": SA.roll,
    "gather": SA.gather, "take_along_dim": SA.take_along_dim,
    "scatter_add": SA.scatter_add, "index_select": SA.index_select,
    "masked_fill": SA.masked_fill, "masked_select": SA.masked_select,
    "nonzero": SA.nonzero,
    # linear algebra
    "matmul": matmul, "mm": LA.mm, "bmm": LA.bmm, "mv": LA.mv, "dot": LA.dot,
    "outer": LA.outer, "inner": LA.inner,
    # copies and conversions
    "clone": lambda self, memory_format=None: clone(self), "contiguous": _contiguous,
    "to": _to, "type": _type, "float": _caster(backend.float32),
    "double": _caster(backend.float64), "half": _caster(backend.float16),
    "long": _caster(backend.int64), "int": _caster(backend.int32),
    "bool": _caster(backend.bool_), "cpu": lambda self: self,
    "new_tensor": _new_tensor, "new_zeros": _new_zeros, "new_ones": _new_ones,
    "new_full": _new_full,
    # in place
    "add_": I.add_, "sub_": I.sub_, "mul_": I.mul_, "div_": I.div_, "pow_": I.pow_,
    "neg_": I.neg_, "zero_": I.zero_, "fill_": I.fill_, "copy_": I.copy_,
    "clamp_": I.clamp_, "clip_": I.clamp_, "relu_": I.relu_, "exp_": I.exp_,
    "sqrt_": I.sqrt_, "tanh_": I.tanh_, "sigmoid_": I.sigmoid_, "log_": I.log_,
    "abs_": I.abs_, "masked_fill_": I.masked_fill_,
}


def attach() -> None:
    """Install the aliases on ``Tensor`` (called once at import)."""
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(SA.T, doc="All dimensions reversed.")
    Tensor.mT = property(SA.mT, doc="The last two dimensions swapped.")
    Tensor.__hash__ = object.__hash__
