"""Elementwise primitives: arithmetic, unary maths, comparisons, where, clamp, cast.

Binary ops follow PyTorch's type promotion (see ``backend.result_type``); float-only
functions turn integer inputs into the default float dtype first.
"""

from __future__ import annotations

import numpy as np

from .. import backend
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

    fwd.__name__ = name
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


pow.defvjp(lambda g, out, a, b: g * b * a ** (b - 1), _pow_vjp_b)


@primitive(nin=1)
def neg(x):
    """``-x``."""
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


tanh.defvjp(lambda g, out, x: g * (1 - out * out))


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


@primitive(nin=1, differentiable=False)
def sign(x):
    """-1, 0 or 1 by the sign of x (no gradient: it is 0 almost everywhere)."""
    return xp.sign(x)


def _zero_grad_unary(name, fn):
    def fwd(x):
        return fn(x)

    fwd.__name__ = name
    op = primitive(nin=1)(fwd)
    # NOTE: piecewise-constant functions get a zero gradient, as in PyTorch.
    op.defvjp(lambda g, out, x: g * 0)
    return op


floor = _zero_grad_unary("floor", xp.floor)
ceil = _zero_grad_unary("ceil", xp.ceil)
trunc = _zero_grad_unary("trunc", xp.trunc)
round = _zero_grad_unary("round", xp.round)  # noqa: A001 - mirrors torch.round


# ---------------------------------------------------------------- min / max / clamp
@primitive(saves=("a", "b"), nin=2)
def maximum(a, b):
    """Elementwise maximum. NOTE: ties send half the gradient to each side (PyTorch)."""
    a, b = _promote(a, b)
    return xp.maximum(a, b)


maximum.defvjp(
    lambda g, out, a, b: g * ((a > b) + (a == b) * 0.5),
    lambda g, out, a, b: g * ((b > a) + (a == b) * 0.5),
)


@primitive(saves=("a", "b"), nin=2)
def minimum(a, b):
    """Elementwise minimum. NOTE: ties send half the gradient to each side (PyTorch)."""
    a, b = _promote(a, b)
    return xp.minimum(a, b)


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


clamp.defvjp(
    _clamp_vjp_x,
    lambda g, out, x, lo, hi: g * (x < lo),
    lambda g, out, x, lo, hi: g * (x > hi) if lo is None else g * ((x > hi) & (x >= lo)),
)


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
            f"{getattr(b, 'shape', ())} are not broadcastable"
        ) from None


where.defvjp(
    None,
    lambda g, out, cond, a, b: where(cond, g, 0.0),
    lambda g, out, cond, a, b: where(cond, 0.0, g),
)


@primitive(nin=1)
def cast(x, dtype):
    """Convert to ``dtype`` (the gradient is cast back)."""
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


eq = _cmp("eq", xp.equal)
ne = _cmp("ne", xp.not_equal)
lt = _cmp("lt", xp.less)
le = _cmp("le", xp.less_equal)
gt = _cmp("gt", xp.greater)
ge = _cmp("ge", xp.greater_equal)
logical_and = _cmp("logical_and", xp.logical_and)
logical_or = _cmp("logical_or", xp.logical_or)
logical_xor = _cmp("logical_xor", xp.logical_xor)
bitwise_and = _cmp("bitwise_and", xp.bitwise_and)
bitwise_or = _cmp("bitwise_or", xp.bitwise_or)
bitwise_xor = _cmp("bitwise_xor", xp.bitwise_xor)


@primitive(nin=1, differentiable=False)
def logical_not(x):
    """Elementwise not (result is bool)."""
    return xp.logical_not(x)


@primitive(nin=1, differentiable=False)
def bitwise_not(x):
    """Bitwise not for integers, logical not for bools."""
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


# ---------------------------------------------------------------- erf approximation
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to double precision by Cody's three rational approximations."""
    dt = x.dtype
    x = x.astype(np.float64)
    ax = np.abs(x)
    out = np.empty_like(x)
    m1 = ax <= 0.46875
    m2 = (ax > 0.46875) & (ax <= 4.0)
    m3 = ax > 4.0
    if m1.any():
        y = ax[m1]
        z = y * y
        num = _ERF_A[4] * z
        den = z
        for i in range(3):
            num = (num + _ERF_A[i]) * z
            den = (den + _ERF_B[i]) * z
        out[m1] = y * (num + _ERF_A[3]) / (den + _ERF_B[3])
    if m2.any():
        y = ax[m2]
        num = _ERF_C[8] * y
        den = y
        for i in range(7):
            num = (num + _ERF_C[i]) * y
            den = (den + _ERF_D[i]) * y
        r = (num + _ERF_C[7]) / (den + _ERF_D[7])
        out[m2] = 1.0 - np.exp(-y * y) * r
    if m3.any():
        y = ax[m3]
        z = 1.0 / (y * y)
        num = _ERF_P[5] * z
        den = z
        for i in range(4):
            num = (num + _ERF_P[i]) * z
            den = (den + _ERF_Q[i]) * z
        r = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
        r = (1.0 / np.sqrt(np.pi) - r) / y
        with np.errstate(under="ignore"):
            out[m3] = 1.0 - np.exp(-y * y) * r
    out = np.where(x < 0, -out, out)
    return out.astype(dt, copy=False)
