"""Public math functions with PyTorch's signatures, as thin wrappers on the primitives.

Composites (mean, var, std, softplus, ...) carry no gradient code: their gradients come
from the primitives they are built of.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor, _check_dim, _wrap
from . import elementwise as E
from . import reduction as R
from .indexing import along_dim_index, take
from .shape import reshape as reshape_to

# Re-exported unchanged: the primitives are the public functions.
add_p = E.add
sub_p = E.sub
mul = E.mul
div_p = E.div
pow = E.pow  # noqa: A001
neg = E.neg
exp = E.exp
expm1 = E.expm1
log = E.log
log1p = E.log1p
sqrt = E.sqrt
rsqrt = E.rsqrt
abs = E.abs  # noqa: A001
sin = E.sin
cos = E.cos
tan = E.tan
atan = E.atan
sinh = E.sinh
cosh = E.cosh
tanh = E.tanh
sigmoid = E.sigmoid
relu = E.relu
erf = E.erf
sign = E.sign
floor = E.floor
ceil = E.ceil
trunc = E.trunc
maximum = E.maximum
minimum = E.minimum
eq = E.eq
ne = E.ne
lt = E.lt
le = E.le
gt = E.gt
ge = E.ge
logical_and = E.logical_and
logical_or = E.logical_or
logical_xor = E.logical_xor
logical_not = E.logical_not
isnan = E.isnan
isinf = E.isinf
isfinite = E.isfinite

values_indices = namedtuple("values_indices", ["values", "indices"])


def _dims(op: str, dim, ndim: int) -> tuple:
    """Normalise PyTorch's ``dim`` (None, int, or a sequence) to a tuple of axes."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        # NOTE: an empty dim list reduces over every dimension, as in PyTorch
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        d = _check_dim(op, dim, ndim)
        return (d,) if ndim else ()
    dims = tuple(_check_dim(op, d, ndim) for d in dim)
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op}: dim {tuple(dim)} names a dimension twice")
    if ndim == 0:
        return ()
    return dims


def _ndim(x) -> int:
    return x.ndim if isinstance(x, (Tensor, np.ndarray)) else 0


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    if alpha != 1:
        other = E.mul(other, alpha)
    return E.add(input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting."""
    if alpha != 1:
        other = E.mul(other, alpha)
    return E.sub(input, other)


def div(input, other, *, rounding_mode=None):
    """Division; ``rounding_mode`` 'trunc' or 'floor' gives an integer-valued result."""
    if rounding_mode is None:
        return E.div(input, other)
    q = E.div(input, other)
    if rounding_mode == "trunc":
        r = E.trunc(q)
    elif rounding_mode == "floor":
        r = E.floor(q)
    else:
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                         f"{rounding_mode!r}")
    it = _dtype(input)
    ot = _dtype(other)
    if it.kind in "iu" and ot.kind in "iub":
        r = E.cast(r, backend.result_type(_raw(input), _raw(other)))
    return r


def _dtype(x):
    if isinstance(x, Tensor):
        return x.dtype
    return np.asarray(x).dtype


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def true_divide(input, other):
    """Alias of ``div``."""
    return E.div(input, other)


def square(input):
    """``input * input``."""
    return E.mul(input, input)


def reciprocal(input):
    """``1 / input``."""
    return E.div(1.0, input)


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    """Clamp into [min, max]; each bound may be None, a number or a tensor."""
    return E.clamp(input, min, max)


clip = clamp


def where(condition, input=None, other=None):
    """``input`` where ``condition`` else ``other``; with one argument, ``nonzero``."""
    if input is None and other is None:
        return tuple(_wrap(i) for i in np.nonzero(_raw(condition)))
    dt = _dtype(condition)
    if dt != np.bool_:
        raise TypeError(f"where: expected condition to be a bool tensor, got "
                        f"{backend.dtype_name(dt)}; compare first, e.g. x > 0")
    return E.where(condition, input, other)


def round(input, *, decimals: int = 0):  # noqa: A001
    """Round half to even (zero gradient)."""
    if decimals == 0:
        return E.round(input)
    s = 10.0 ** decimals
    return E.div(E.round(E.mul(input, s)), s)


# ---------------------------------------------------------------- reductions
def sum(input, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A001
    """Sum over ``dim`` (all dims when None)."""
    if dtype is not None:
        input = E.cast(input, backend.to_dtype(dtype))
    return R.sum_(input, _dims("sum", dim, _ndim(input)), keepdim)


def mean(input, dim=None, keepdim: bool = False, *, dtype=None):
    """Mean over ``dim`` (all dims when None); integer inputs need ``dtype``."""
    if dtype is not None:
        input = E.cast(input, backend.to_dtype(dtype))
    if _dtype(input).kind != "f":
        raise TypeError(
            f"mean: could not infer output dtype; input dtype "
            f"{backend.dtype_name(_dtype(input))} is not floating. Pass dtype= or call "
            f".float() first"
        )
    dims = _dims("mean", dim, _ndim(input))
    n = 1
    for d in dims:
        n *= input.shape[d]
    s = R.sum_(input, dims, keepdim)
    return E.div(s, float(n) if n else float("nan"))


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``)."""
    if isinstance(dim, bool) and unbiased is None:
        unbiased, dim = dim, None
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = _dims("var", dim, _ndim(input))
    n = 1
    for d in dims:
        n *= input.shape[d]
    m = mean(input, dims, keepdim=True)
    d = E.sub(input, m)
    s = R.sum_(E.mul(d, d), dims, keepdim)
    denom = n - correction
    return E.div(s, float(denom) if denom > 0 else float("nan"))


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Standard deviation: ``sqrt(var(...))``; the gradient is 0 where it is 0 (PyTorch)."""
    return _sqrt_zero_grad(var(input, dim, unbiased, keepdim, correction=correction))


def _sqrt_zero_grad(s):
    """``sqrt(s)`` for ``s >= 0`` whose gradient at ``s == 0`` is 0 instead of inf.

    NOTE: PyTorch's choice for norms and std at 0 (instead of 0 * inf = nan): the sqrt
    only ever sees positive values, and zeros take the constant branch.
    """
    zero = E.eq(s, 0)
    return E.where(zero, 0.0, E.sqrt(E.where(zero, 1.0, s)))


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(var, mean)`` in one call."""
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def amax(input, dim=(), keepdim: bool = False):
    """Maximum over ``dim`` (all dims for ``()`` or None); ties share the gradient."""
    dims = _dims("amax", None if dim == () else dim, _ndim(input))
    return R.amax(input, dims, keepdim)


def amin(input, dim=(), keepdim: bool = False):
    """Minimum over ``dim`` (all dims for ``()`` or None); ties share the gradient."""
    dims = _dims("amin", None if dim == () else dim, _ndim(input))
    return R.amin(input, dims, keepdim)


def _extreme(op, input, dim, keepdim, other, red, arg, pairwise):
    if isinstance(dim, Tensor) and other is None:
        other, dim = dim, None
    if other is not None:
        return pairwise(input, other)
    nd = _ndim(input)
    if dim is None:
        return red(input, tuple(range(nd)), False)
    d = _check_dim(op, dim, nd)
    if nd:
        R._check_nonempty(op, input, (d,))
    idx = arg(input, d, True)
    raw_idx = idx._data if isinstance(idx, Tensor) else idx
    if nd == 0:
        vals = input
    else:
        vals = take(input, along_dim_index(op, input.shape, d, raw_idx))
    if not keepdim and nd:
        from .shape_api import squeeze

        vals = squeeze(vals, d)
        idx = squeeze(idx, d)
    if not isinstance(idx, Tensor):
        idx = _wrap(idx)
    return values_indices(vals, idx)


def max(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """Maximum: of all elements, ``(values, indices)`` along ``dim``, or with ``other``.

    NOTE: with ``dim`` the gradient goes to the returned index only; over all elements
    ties share it evenly (PyTorch's conventions).
    """
    return _extreme("max", input, dim, keepdim, other, R.amax, R.argmax_, E.maximum)


def min(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """Minimum: of all elements, ``(values, indices)`` along ``dim``, or with ``other``."""
    return _extreme("min", input, dim, keepdim, other, R.amin, R.argmin_, E.minimum)


def argmax(input, dim=None, keepdim: bool = False):
    """Index of the maximum (of the flattened tensor when ``dim`` is None)."""
    d = None if dim is None else _check_dim("argmax", dim, _ndim(input))
    return R.argmax_(input, d, keepdim)


def argmin(input, dim=None, keepdim: bool = False):
    """Index of the minimum (of the flattened tensor when ``dim`` is None)."""
    d = None if dim is None else _check_dim("argmin", dim, _ndim(input))
    return R.argmin_(input, d, keepdim)


def cumsum(input, dim: int, *, dtype=None):
    """Cumulative sum along ``dim``."""
    if dtype is not None:
        input = E.cast(input, backend.to_dtype(dtype))
    nd = _ndim(input)
    if nd == 0:
        return E.mul(input, 1)
    return R.cumsum_(input, _check_dim("cumsum", dim, nd))


def logsumexp(input, dim, keepdim: bool = False):
    """``log(sum(exp(input), dim))``, stable for large values."""
    return R.logsumexp_(input, _dims("logsumexp", dim, _ndim(input)), keepdim)


def softmax(input, dim: int, dtype=None):
    """Softmax along ``dim``, stable for large values."""
    if dtype is not None:
        input = E.cast(input, backend.to_dtype(dtype))
    nd = _ndim(input)
    if nd == 0:
        _check_dim("softmax", dim, nd)
        return reshape_to(R.softmax_(reshape_to(input, (1,)), 0), ())
    return R.softmax_(input, _check_dim("softmax", dim, nd))


def log_softmax(input, dim: int, dtype=None):
    """Log-softmax along ``dim``, stable for large values."""
    if dtype is not None:
        input = E.cast(input, backend.to_dtype(dtype))
    nd = _ndim(input)
    if nd == 0:
        _check_dim("log_softmax", dim, nd)
        return reshape_to(R.log_softmax_(reshape_to(input, (1,)), 0), ())
    return R.log_softmax_(input, _check_dim("log_softmax", dim, nd))


def all(input, dim=None, keepdim: bool = False):  # noqa: A001
    """True where all elements along ``dim`` are non-zero."""
    dims = _dims("all", dim, _ndim(input))
    return _wrap(np.all(_raw(input), axis=dims, keepdims=keepdim))


def any(input, dim=None, keepdim: bool = False):  # noqa: A001
    """True where any element along ``dim`` is non-zero."""
    dims = _dims("any", dim, _ndim(input))
    return _wrap(np.any(_raw(input), axis=dims, keepdims=keepdim))


def count_nonzero(input, dim=None):
    """Number of non-zero elements along ``dim``."""
    dims = _dims("count_nonzero", dim, _ndim(input))
    return _wrap(np.count_nonzero(_raw(input), axis=dims).astype(np.int64))


def norm(input, p="fro", dim=None, keepdim: bool = False):
    """Vector p-norm over ``dim`` (all elements when None); 'fro' is the 2-norm."""
    if isinstance(p, str) and p != "fro" or isinstance(p, bool) or not (
            isinstance(p, (str, int, float))):
        raise ValueError(f"norm: p must be 'fro', a number or inf, got {p!r} (matrix norms "
                         f"such as 'nuc' are not available)")
    if p == "fro" or p == 2:
        return _sqrt_zero_grad(sum(E.mul(input, input), dim, keepdim))
    if p == float("inf"):
        return amax(E.abs(input), () if dim is None else dim, keepdim)
    if p == -float("inf"):
        return amin(E.abs(input), () if dim is None else dim, keepdim)
    if p == 0:
        # the count of non-zeros, recorded (zero gradient) like PyTorch's
        nz = E.ne(input, 0)
        return sum(E.where(nz, 1.0, E.mul(input, 0.0)), dim, keepdim)
    if p == 1:
        return sum(E.abs(input), dim, keepdim)
    s = sum(E.pow(E.abs(input), p), dim, keepdim)
    zero = E.eq(s, 0)
    # NOTE: like the 2-norm, the gradient at the zero vector is 0 (PyTorch)
    return E.where(zero, 0.0, E.pow(E.where(zero, 1.0, s), 1.0 / p))


def dist(input, other, p=2):
    """The p-norm of ``input - other``."""
    return norm(E.sub(input, other), p)


def _check_shapes(op: str, *xs) -> None:
    """Raise naming ``op`` when the operands' shapes don't broadcast together."""
    shapes = [tuple(x.shape) for x in xs if isinstance(x, (Tensor, np.ndarray))]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {', '.join(str(s) for s in shapes)} are not broadcastable "
            f"(trailing dimensions must be equal or 1)"
        ) from None


def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    _check_shapes("lerp", input, end, weight)
    return E.add(input, E.mul(weight, E.sub(end, input)))


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * mat1 @ mat2``."""
    from .linalg import matmul

    p = matmul(mat1, mat2)
    if alpha != 1:
        p = E.mul(p, alpha)
    b = input if beta == 1 else E.mul(input, beta)
    return E.add(b, p)


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """``log(1 + exp(beta x)) / beta``, linear above ``threshold`` (PyTorch's form)."""
    bx = E.mul(input, beta) if beta != 1 else input
    # stable and smooth to every order (also at 0, where relu/abs kinks would give a
    # wrong gradient): z + log1p(exp(-z)) for z > 0, log1p(exp(z)) otherwise; each branch
    # sees only the inputs it is finite on, so the untaken one has a finite zero gradient.
    pos = E.gt(bx, 0)
    zp = E.where(pos, bx, 0.0)
    zn = E.where(pos, 0.0, bx)
    soft = E.where(pos, E.add(zp, E.log1p(E.exp(E.neg(zp)))), E.log1p(E.exp(zn)))
    if beta != 1:
        soft = E.div(soft, beta)
    return E.where(E.gt(bx, threshold), input, soft)


def logaddexp(input, other):
    """``log(exp(a) + exp(b))`` computed stably."""
    _check_shapes("logaddexp", input, other)
    m = np.maximum(_raw(input), _raw(other))
    # a constant shift (no gradient); infinite maxima shift by 0 so that -inf and -inf
    # give -inf, and inf gives inf, instead of inf - inf = nan
    dt = backend.result_type(_raw(input), _raw(other))
    m = np.where(np.isfinite(m), m, 0.0).astype(dt if dt.kind == "f" else
                                                   backend.get_default_dtype())
    return E.add(m, E.log(E.add(E.exp(E.sub(input, m)), E.exp(E.sub(other, m)))))
