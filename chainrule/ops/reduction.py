"""Reductions: sum, amax/amin, cumsum, logsumexp, softmax and log_softmax.

``dims`` is always a normalised tuple of non-negative axes (the public wrappers in
``chainrule.ops.api`` turn PyTorch's ``dim`` arguments into it).
"""

from __future__ import annotations

import numpy as np

from .. import amp as _amp
from .. import backend
from ._registry import primitive
from .elementwise import _float, exp
from .shape import expand, reshape

xp = backend.xp


def keep_shape(shape: tuple, dims: tuple) -> tuple:
    """``shape`` with each reduced axis in ``dims`` set to 1 (the keepdim shape)."""
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _restore(g, x_shape, dims, keepdim):
    """Bring a reduced gradient back to the keepdim shape."""
    if keepdim:
        return g
    return reshape(g, keep_shape(x_shape, dims))


@primitive(nin=1)
def sum_(x, dims, keepdim):
    """Sum over ``dims`` (bool and integer sums are int64, as in PyTorch)."""
    if x.dtype.kind in "bu" or (x.dtype.kind == "i" and x.dtype != np.int64):
        return xp.sum(x, axis=dims, keepdims=keepdim, dtype=np.int64)
    return xp.sum(x, axis=dims, keepdims=keepdim)


sum_.prim.name = "sum"
sum_.defvjp(lambda g, out, x, dims, keepdim: expand(_restore(g, x.shape, dims, keepdim), x.shape))


def _extreme_vjp(g, out, x, dims, keepdim):
    # NOTE: ties share the gradient evenly (PyTorch's amax/amin and full max/min).
    o = _restore(out, x.shape, dims, keepdim)
    mask = x == o
    count = sum_(mask, dims, True)
    return _restore(g, x.shape, dims, keepdim) * mask / count


def _check_nonempty(op: str, x, dims) -> None:
    for d in dims:
        if x.shape[d] == 0:
            raise RuntimeError(
                f"{op}: can't reduce over dimension {d} of size 0 (input shape "
                f"{tuple(x.shape)}); only non-empty dimensions can be reduced"
            )


@primitive(saves=("x", "out"), nin=1)
def amax(x, dims, keepdim):
    """Maximum over ``dims``."""
    _check_nonempty("amax", x, dims)
    return xp.amax(x, axis=dims, keepdims=keepdim)


amax.defvjp(_extreme_vjp)


@primitive(saves=("x", "out"), nin=1)
def amin(x, dims, keepdim):
    """Minimum over ``dims``."""
    _check_nonempty("amin", x, dims)
    return xp.amin(x, axis=dims, keepdims=keepdim)


amin.defvjp(_extreme_vjp)


@primitive(nin=1, differentiable=False)
def argmax_(x, dim, keepdim):
    """Index of the maximum along ``dim`` (over the flattened tensor when None)."""
    _check_nonempty("argmax", x, tuple(range(x.ndim)) if dim is None or x.ndim == 0 else (dim,))
    if dim is None:
        r = xp.argmax(x)
        return xp.asarray(r).reshape((1,) * x.ndim if keepdim else ())
    return xp.argmax(x, axis=dim, keepdims=keepdim)


@primitive(nin=1, differentiable=False)
def argmin_(x, dim, keepdim):
    """Index of the minimum along ``dim`` (over the flattened tensor when None)."""
    _check_nonempty("argmin", x, tuple(range(x.ndim)) if dim is None or x.ndim == 0 else (dim,))
    if dim is None:
        r = xp.argmin(x)
        return xp.asarray(r).reshape((1,) * x.ndim if keepdim else ())
    return xp.argmin(x, axis=dim, keepdims=keepdim)


argmax_.prim.name = "argmax"
argmin_.prim.name = "argmin"


@primitive(nin=1)
def cumsum_(x, dim):
    """Cumulative sum along ``dim``."""
    if x.dtype.kind in "biu":
        return xp.cumsum(x, axis=dim, dtype=np.int64)
    return xp.cumsum(x, axis=dim)


cumsum_.prim.name = "cumsum"


def _cumsum_vjp(g, out, x, dim):
    from .shape import flip

    return flip(cumsum_(flip(g, (dim,)), dim), (dim,))


cumsum_.defvjp(_cumsum_vjp)


@primitive(saves=("x", "out"), nin=1)
def logsumexp_(x, dims, keepdim):
    """``log(sum(exp(x)))`` over ``dims``, stable for large |x|."""
    if _amp._on[0]:  # autocast computes this in float32: chainrule/amp.py
        x = _amp.to_fp32(x)
    x = _float(x)
    if x.size == 0:
        return xp.full(keep_shape(x.shape, dims) if keepdim else
                       tuple(s for i, s in enumerate(x.shape) if i not in dims),
                       -np.inf, dtype=x.dtype)
    m = xp.amax(x, axis=dims, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    r = xp.log(xp.sum(xp.exp(x - m), axis=dims, keepdims=True)) + m
    if not keepdim:
        r = r.reshape(tuple(s for i, s in enumerate(r.shape) if i not in dims))
    return r


logsumexp_.prim.name = "logsumexp"
logsumexp_.defvjp(
    lambda g, out, x, dims, keepdim: _restore(g, x.shape, dims, keepdim)
    * exp(x - _restore(out, x.shape, dims, keepdim))
)


# NOTE: softmax and log_softmax are primitives for numerical stability at +-1000 and
# speed (one VJP instead of five composite nodes per call in attention and losses).
@primitive(saves="out", nin=1)
def softmax_(x, dim):
    """Softmax along ``dim``, shifted by the max for stability."""
    if _amp._on[0]:  # autocast computes this in float32: chainrule/amp.py
        x = _amp.to_fp32(x)
    x = _float(x)
    e = x - xp.amax(x, axis=dim, keepdims=True)
    xp.exp(e, out=e)
    e /= xp.sum(e, axis=dim, keepdims=True)
    return e


def _softmax_vjp(g, out, x, dim):
    if isinstance(g, xp.ndarray) and g.dtype == out.dtype:
        # plain backward on arrays: out * (g - sum(g * out)) in one temporary
        t = g * out
        s = xp.sum(t, axis=dim, keepdims=True)
        xp.subtract(g, s, out=t)
        t *= out
        return t
    return out * (g - sum_(g * out, (dim,), True))


softmax_.prim.name = "softmax"
softmax_.defvjp(_softmax_vjp)


@primitive(saves="out", nin=1)
def log_softmax_(x, dim):
    """Log-softmax along ``dim``, computed as ``x - logsumexp(x)``."""
    if _amp._on[0]:  # autocast computes this in float32: chainrule/amp.py
        x = _amp.to_fp32(x)
    x = _float(x)
    s = x - xp.amax(x, axis=dim, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=dim, keepdims=True))


log_softmax_.prim.name = "log_softmax"
log_softmax_.defvjp(lambda g, out, x, dim: g - exp(out) * sum_(g, (dim,), True))
