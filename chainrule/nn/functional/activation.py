"""Activation functions, all composites of the primitives (no gradient code here).

``inplace=True`` is accepted for PyTorch compatibility; the result is computed out of
place (the autograd graph stays correct) and returned.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> F.relu(cr.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

import math
import warnings

from ...ops import elementwise as E
from ...ops import math_api as M
from ...tensor import Tensor

__all__ = [
    "celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu",
    "log_softmax", "logsigmoid", "mish", "relu", "relu6", "selu", "sigmoid", "silu",
    "softmax", "softmin", "softplus", "softsign", "tanh", "tanhshrink",
]

# SELU constants (Klambauer et al., 2017), as PyTorch defines them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check(op: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``. NOTE: the gradient at 0 is 0 (PyTorch)."""
    _check("relu", input)
    return E.relu(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0`` else ``negative_slope * x``. NOTE: slope gradient at 0."""
    _check("leaky_relu", input)
    return E.where(E.gt(input, 0), input, E.mul(input, negative_slope))


def _neg_part(x: Tensor) -> Tensor:
    # min(x, 0) through where: the exp of the untaken positive branch never overflows,
    # and at x = 0 the gradient flows (PyTorch's ELU takes the exp branch at 0).
    return E.where(E.gt(x, 0), 0.0, x)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    _check("elu", input)
    neg = E.mul(E.expm1(_neg_part(input)), alpha)
    return E.where(E.gt(input, 0), input, neg)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    _check("selu", input)
    return E.mul(elu(input, SELU_ALPHA), SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    _check("celu", input)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    neg = E.mul(E.expm1(E.div(_neg_part(input), alpha)), alpha)
    return E.where(E.gt(input, 0), input, neg)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: ``x * Phi(x)``; ``approximate='tanh'`` for the tanh form."""
    _check("gelu", input)
    if approximate == "none":
        cdf = E.mul(E.add(E.erf(E.mul(input, 1.0 / math.sqrt(2.0))), 1.0), 0.5)
        return E.mul(input, cdf)
    if approximate == "tanh":
        inner = E.mul(E.add(input, E.mul(E.pow(input, 3), 0.044715)), math.sqrt(2.0 / math.pi))
        return E.mul(E.mul(input, 0.5), E.add(E.tanh(inner), 1.0))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    _check("silu", input)
    return E.mul(input, E.sigmoid(input))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    _check("mish", input)
    return E.mul(input, E.tanh(M.softplus(input)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    _check("softplus", input)
    return M.softplus(input, beta, threshold)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """Clamp into ``[min_val, max_val]``. NOTE: zero gradient at the bounds (PyTorch)."""
    _check("hardtanh", input)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    inside = E.logical_and(E.gt(input, min_val), E.lt(input, max_val))
    return E.where(inside, input, E.clamp(input.detach(), min_val, max_val))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``."""
    _check("hardsigmoid", input)
    return E.div(relu6(E.add(input, 3.0)), 6.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``."""
    return E.mul(input, hardsigmoid(input))


def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    _check("sigmoid", input)
    return E.sigmoid(input)


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    _check("logsigmoid", input)
    return E.neg(M.softplus(E.neg(input)))


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    _check("tanh", input)
    return E.tanh(input)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return E.sub(input, tanh(input))


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    _check("softsign", input)
    return E.div(input, E.add(E.abs(input), 1.0))


def _softmax_dim(op: str, ndim: int) -> int:
    warnings.warn(f"{op}: implicit dimension choice has been deprecated; pass dim=",
                  UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """Softmax along ``dim`` (stable for large values)."""
    _check("softmax", input)
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return M.softmax(input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    _check("softmin", input)
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return M.softmax(E.neg(input), dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably."""
    _check("log_softmax", input)
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return M.log_softmax(input, dim, dtype)
