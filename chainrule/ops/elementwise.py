"""Elementwise primitives: arithmetic, unary maths, comparisons, where, clamp, cast.

Binary ops follow PyTorch's type promotion (see ``backend.result_type``); float-only
functions turn integer inputs into the default float dtype first.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ._erf import erf as _erf
from ._registry import primitive

xp = backend.xp
_nd = np.ndarray


def _promote(a, b):
    """Bring two raw operands to PyTorch's common dtype (fast when already equal)."""
    ta = type(a)
    tb = type(b)
    if ta is _nd:
        if tb is _nd:
            if a.dtype == b.dtype:
                return a, b
        elif tb is float:
            if a.dtype.kind == "f":
                return a, b
        elif tb is int:
            if a.dtype.kind in "fiu":
                return a, b
    elif tb is _nd:
        if ta is float:
            if b.dtype.kind == "f":
                return a, b
        elif ta is int:
            if b.dtype.kind in "fiu":
                return a, b
    rt = backend.result_type(a, b)
    return _cast_to(a, rt), _cast_to(b, rt)


def _cast_to(x, dt):
    if isinstance(x, (_nd, np.generic)):
        return x if x.dtype == dt else xp.asarray(x, dtype=dt)
    if dt.kind == "f" and isinstance(x, (int, float)):
        return x
    return xp.asarray(x, dtype=dt)


def _float(x):
    """Integer or bool input to a float-only function becomes the default float dtype."""
    if x.dtype.kind == "f":
        return x
    return x.astype(backend.get_default_dtype())


def _check_broadcast(op: str, a, b) -> None:
    sa = getattr(a, "shape", ())
    sb = getattr(b, "shape", ())
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {tuple(sa)} and {tuple(sb)} are not broadcastable (trailing "
            f"dimensions must be equal or 1)"
        ) from None


def _binary(name: str, ufunc):
    def fwd(a, b):
        a, b = _promote(a, b)
        try:
            return ufunc(a, b)
        except ValueError:
            _check_broadcast(name, a, b)
            raise
        except TypeError as e:
            raise TypeError(f"{name}: {e}") from None

    fwd.__name__ = name
    fwd.ufunc = ufunc  # lets the dispatcher skip _promote when dtypes already agree
    fwd.__doc__ = f"Elementwise ``{name}`` with broadcasting and PyTorch's type promotion."
    return fwd


# ---------------------------------------------------------------- arithmetic
add = primitive(nin=2)(_binary("add", xp.add))
add.defvjp(lambda g, out, a, b: g, lambda g, out, a, b: g)

sub = primitive(nin=2)(_binary("sub", xp.subtract))
sub.defvjp(lambda g, out, a, b: g, lambda g, out, a, b: -g)

mul = primitive(saves=("a", "b"), nin=2)(_binary("mul", xp.multiply))
mul.defvjp(lambda g, out, a, b: g * b, lambda g, out, a, b: g * a)


@primitive(saves=("a", "b"), nin=2)
def div(a, b):
    """True division; integer operands give the default float dtype."""
    a, b = _promote(a, b)
    dt = getattr(a, "dtype", None)
    if dt is None:
        dt = getattr(b, "dtype", None)
    if dt is not None and dt.kind != "f":
        # int / int (and bool) divide in the default float dtype, as in PyTorch
        a = _cast_to(a, backend.get_default_dtype())
        b = _cast_to(b, backend.get_default_dtype())
    try:
        return xp.true_divide(a, b)
    except ValueError:
        _check_broadcast("div", a, b)
        raise


div.defvjp(lambda g, out, a, b: g / b, lambda g, out, a, b: -g * a / (b * b))


@primitive(saves=("a", "b", "out"), nin=2)
def pow(a, b):  # noqa: A001 - mirrors torch.pow
    """``a ** b`` elementwise."""
    a, b = _promote(a, b)
    if getattr(a, "dtype", None) is not None and a.dtype.kind in "iu" and np.any(
        np.asarray(b) < 0
    ):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    try:
        return xp.power(a, b)
    except ValueError:
        _check_broadcast("pow", a, b)
        raise


def _pow_vjp_b(g, out, a, b):
    # NOTE: like PyTorch, the exponent's gradient is 0 where the base is 0 and the
    # exponent is non-negative (instead of 0 * log(0) = nan).
    zero_base = (a == 0) & (b >= 0)
    safe = where(zero_base, 1.0, a)
    return where(zero_base, 0.0, g * out * log(safe))


def _pow_vjp_a(g, out, a, b):
    # NOTE: like PyTorch, the base's gradient is 0 where the exponent is 0, also at a
    # zero base (where b * a ** (b - 1) would be 0 * inf = nan).
    if isinstance(b, (int, float)):
        if b == 0:
            return g * 0.0
        return g * b * a ** (b - 1)
    zero_exp = b == 0
    safe = where(zero_exp, 1.0, a)
    return where(zero_exp, 0.0, g * b * safe ** (b - 1))


pow.defvjp(_pow_vjp_a, _pow_vjp_b)


@primitive(nin=1)
def neg(x):
    """``-x``."""
    if x.dtype == np.bool_:
        raise TypeError("neg: negation, the `-` operator, on a bool tensor is not supported; "
                        "use `~` or logical_not() to invert a mask")
    return xp.negative(x)


neg.defvjp(lambda g, out, x: -g)


# ---------------------------------------------------------------- unary maths
@primitive(saves="out", nin=1)
def exp(x):
    """``e ** x``."""
    return xp.exp(_float(x))


exp.defvjp(lambda g, out, x: g * out)


@primitive(saves="x", nin=1)
def expm1(x):
    """``exp(x) - 1``, accurate near 0."""
    return xp.expm1(_float(x))


expm1.defvjp(lambda g, out, x: g * exp(x))


@primitive(saves="x", nin=1)
def log(x):
    """Natural logarithm."""
    return xp.log(_float(x))


log.defvjp(lambda g, out, x: g / x)


@primitive(saves="x", nin=1)
def log1p(x):
    """``log(1 + x)``, accurate near 0."""
    return xp.log1p(_float(x))


log1p.defvjp(lambda g, out, x: g / (x + 1))


@primitive(saves="out", nin=1)
def sqrt(x):
    """Square root. NOTE: the gradient at 0 is inf, as in PyTorch."""
    return xp.sqrt(_float(x))


sqrt.defvjp(lambda g, out, x: g / (2 * out))


@primitive(saves="out", nin=1)
def rsqrt(x):
    """``1 / sqrt(x)``."""
    return 1.0 / xp.sqrt(_float(x))


rsqrt.defvjp(lambda g, out, x: -0.5 * g * out * out * out)


@primitive(saves="x", nin=1)
def abs(x):  # noqa: A001 - mirrors torch.abs
    """Absolute value. NOTE: abs'(0) = 0 (PyTorch's choice)."""
    return xp.abs(x)


abs.defvjp(lambda g, out, x: g * sign(x))


@primitive(saves="x", nin=1)
def sin(x):
    """Sine."""
    return xp.sin(_float(x))


sin.defvjp(lambda g, out, x: g * cos(x))


@primitive(saves="x", nin=1)
def cos(x):
    """Cosine."""
    return xp.cos(_float(x))


cos.defvjp(lambda g, out, x: -g * sin(x))


@primitive(saves="x", nin=1)
def tan(x):
    """Tangent."""
    return xp.tan(_float(x))


tan.defvjp(lambda g, out, x: g / (cos(x) * cos(x)))


@primitive(saves="x", nin=1)
def atan(x):
    """Arctangent."""
    return xp.arctan(_float(x))


atan.defvjp(lambda g, out, x: g / (x * x + 1))


@primitive(saves="x", nin=1)
def sinh(x):
    """Hyperbolic sine."""
    return xp.sinh(_float(x))


sinh.defvjp(lambda g, out, x: g * cosh(x))


@primitive(saves="x", nin=1)
def cosh(x):
    """Hyperbolic cosine."""
    return xp.cosh(_float(x))


cosh.defvjp(lambda g, out, x: g * sinh(x))


@primitive(saves="out", nin=1)
def tanh(x):
    """Hyperbolic tangent."""
    return xp.tanh(_float(x))


def _tanh_vjp(g, out, x):
    if type(g) is _nd and g.dtype == out.dtype and out.ndim:  # plain backward, in place
        t = out * out
        xp.subtract(backend.const(1.0, t.dtype), t, out=t)
        t *= g
        return t
    return g * (1 - out * out)


tanh.defvjp(_tanh_vjp)


@primitive(saves="out", nin=1)
def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = _float(x)
    return 0.5 * (xp.tanh(0.5 * x) + 1)


sigmoid.defvjp(lambda g, out, x: g * out * (1 - out))


@primitive(saves="out", nin=1)
def relu(x):
    """``max(x, 0)``. NOTE: relu'(0) = 0, as in PyTorch."""
    return xp.maximum(x, 0)


relu.defvjp(lambda g, out, x: g * (out > 0))


@primitive(saves="x", nin=1)
def erf(x):
    """The error function (float64-accurate rational approximation, W. J. Cody)."""
    return _erf(_float(x))


erf.defvjp(lambda g, out, x: g * (2.0 / np.sqrt(np.pi)) * exp(-(x * x)))


def _zero_grad_unary(name, fn):
    def fwd(x):
        return fn(x)

    fwd.__name__ = name
    op = primitive(nin=1)(fwd)
    # NOTE: piecewise-constant functions get a zero gradient, as in PyTorch (zeros even
    # where g is inf or nan, so not g * 0)
    op.defvjp(lambda g, out, x: where(True, 0.0, g))
    return op


sign = _zero_grad_unary("sign", xp.sign)
sign.__doc__ = "-1, 0 or 1 by the sign of x (a zero gradient, as in PyTorch)."
floor = _zero_grad_unary("floor", xp.floor)
ceil = _zero_grad_unary("ceil", xp.ceil)
trunc = _zero_grad_unary("trunc", xp.trunc)
round = _zero_grad_unary("round", xp.round)  # noqa: A001 - mirrors torch.round


# ---------------------------------------------------------------- min / max / clamp
@primitive(saves=("a", "b"), nin=2)
def maximum(a, b):
    """Elementwise maximum. NOTE: ties send half the gradient to each side (PyTorch)."""
    a, b = _promote(a, b)
    try:
        return xp.maximum(a, b)
    except ValueError:
        _check_broadcast("maximum", a, b)
        raise


maximum.defvjp(
    lambda g, out, a, b: g * ((a > b) + (a == b) * 0.5),
    lambda g, out, a, b: g * ((b > a) + (a == b) * 0.5),
)


@primitive(saves=("a", "b"), nin=2)
def minimum(a, b):
    """Elementwise minimum. NOTE: ties send half the gradient to each side (PyTorch)."""
    a, b = _promote(a, b)
    try:
        return xp.minimum(a, b)
    except ValueError:
        _check_broadcast("minimum", a, b)
        raise


minimum.defvjp(
    lambda g, out, a, b: g * ((a < b) + (a == b) * 0.5),
    lambda g, out, a, b: g * ((b < a) + (a == b) * 0.5),
)


@primitive(saves=("x", "lo", "hi"), name="clamp")
def clamp(x, lo, hi):
    """Clamp into [lo, hi]; either bound may be None, a number or a tensor."""
    if lo is None and hi is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    rt = x.dtype
    for bound in (lo, hi):
        if bound is not None:
            rt = backend.result_type(xp.empty((0,) * x.ndim, dtype=rt), bound)
    out = x if x.dtype == rt else x.astype(rt)
    if lo is not None:
        out = xp.maximum(out, lo)
    if hi is not None:
        out = xp.minimum(out, hi)
    if out.dtype != rt:
        out = out.astype(rt)
    return out


def _clamp_vjp_x(g, out, x, lo, hi):
    # NOTE: the gradient passes where lo <= x <= hi, boundaries included (PyTorch).
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        m2 = x <= hi
        mask = m2 if mask is None else mask & m2
    return g * mask


def _clamp_vjp_lo(g, out, x, lo, hi):
    if hi is None:
        return g * (x < lo)
    return g * ((x < lo) & (lo <= hi))


def _clamp_vjp_hi(g, out, x, lo, hi):
    # NOTE: when min > max the result is max everywhere (PyTorch), so max takes it all
    if lo is None:
        return g * (x > hi)
    return g * ((x > hi) | (lo > hi))


clamp.defvjp(_clamp_vjp_x, _clamp_vjp_lo, _clamp_vjp_hi)


# ---------------------------------------------------------------- where / cast
@primitive(saves=("cond",))
def where(cond, a, b):
    """``a`` where ``cond`` else ``b`` (broadcast). The untaken branch gets zero gradient."""
    a, b = _promote(a, b)
    try:
        return xp.where(cond, a, b)
    except ValueError:
        raise ValueError(
            f"where: shapes {getattr(cond, 'shape', ())}, {getattr(a, 'shape', ())} and "
            f"{getattr(b, 'shape', ())} are not broadcastable (trailing dimensions must be "
            f"equal or 1)"
        ) from None


where.defvjp(
    None,
    lambda g, out, cond, a, b: where(cond, g, 0.0),
    lambda g, out, cond, a, b: where(cond, 0.0, g),
)


@primitive(nin=1)
def cast(x, dtype):
    """Convert to ``dtype`` (the gradient is cast back).

    Values beyond a narrower float's range become inf without a NumPy warning, as in
    PyTorch (loss scaling relies on detecting them).
    """
    if dtype.kind == "f" and dtype.itemsize < x.dtype.itemsize:
        with np.errstate(over="ignore"):
            return x.astype(dtype)
    return x.astype(dtype)


cast.defvjp(lambda g, out, x, dtype: cast(g, x.dtype))


# ---------------------------------------------------------------- comparisons, logic
def _cmp(name, ufunc):
    def fwd(a, b):
        a, b = _promote(a, b)
        try:
            return ufunc(a, b)
        except ValueError:
            _check_broadcast(name, a, b)
            raise

    fwd.__name__ = name
    return primitive(nin=2, differentiable=False)(fwd)


def _bitwise(name, ufunc):
    def fwd(a, b):
        a, b = _promote(a, b)
        for v in (a, b):
            dt = getattr(v, "dtype", None)
            if (dt is not None and dt.kind not in "biu") or isinstance(v, float):
                raise TypeError(
                    f"{name}: only integer and bool tensors are supported, got "
                    f"{_dtype_desc(a)} and {_dtype_desc(b)}; use logical_and/or/xor or "
                    f"compare first"
                )
        try:
            return ufunc(a, b)
        except ValueError:
            _check_broadcast(name, a, b)
            raise

    fwd.__name__ = name
    return primitive(nin=2, differentiable=False)(fwd)


def _dtype_desc(x) -> str:
    dt = getattr(x, "dtype", None)
    return backend.dtype_name(dt) if dt is not None else type(x).__name__


eq = _cmp("eq", xp.equal)
ne = _cmp("ne", xp.not_equal)
lt = _cmp("lt", xp.less)
le = _cmp("le", xp.less_equal)
gt = _cmp("gt", xp.greater)
ge = _cmp("ge", xp.greater_equal)
logical_and = _cmp("logical_and", xp.logical_and)
logical_or = _cmp("logical_or", xp.logical_or)
logical_xor = _cmp("logical_xor", xp.logical_xor)
bitwise_and = _bitwise("bitwise_and", xp.bitwise_and)
bitwise_or = _bitwise("bitwise_or", xp.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", xp.bitwise_xor)


@primitive(nin=1, differentiable=False)
def logical_not(x):
    """Elementwise not (result is bool)."""
    return xp.logical_not(x)


@primitive(nin=1, differentiable=False)
def bitwise_not(x):
    """Bitwise not for integers, logical not for bools."""
    if x.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: only integer and bool tensors are supported, got "
                        f"{backend.dtype_name(x.dtype)}; use logical_not")
    return xp.invert(x)


@primitive(nin=1, differentiable=False)
def isnan(x):
    """True where x is NaN."""
    return xp.isnan(x)


@primitive(nin=1, differentiable=False)
def isinf(x):
    """True where x is +-inf."""
    return xp.isinf(x)


@primitive(nin=1, differentiable=False)
def isfinite(x):
    """True where x is finite."""
    return xp.isfinite(x)
