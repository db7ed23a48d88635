"""Normalisation: ``batch_norm``, ``layer_norm``, ``group_norm``.

All three normalise with the fused ``normalize`` primitive (:mod:`chainrule.ops.norm`,
which says why it is one) and apply their affine maps as composites.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> y = F.layer_norm(cr.tensor([[1.0, 2.0, 3.0]]), (3,))
>>> [round(v, 4) for v in y[0].tolist()]
[-1.2247, 0.0, 1.2247]
"""

from __future__ import annotations

import math

import numpy as np

from ...autograd.grad_mode import no_grad
from ...ops import elementwise as E
from ...ops import norm as N
from ...ops.shape import reshape
from ...tensor import Tensor

__all__ = ["batch_norm", "group_norm", "layer_norm"]


def _normalize(x, dims, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``dims`` (biased variance); also the stats."""
    stats = N.NormStats()
    return N.normalize(x, dims, eps, stats), stats


def _channel_shape(x) -> tuple:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _check_vec(op, name, t, c):
    if t is not None and tuple(t.shape) != (c,):
        raise ValueError(f"{op}: expected {name} of shape ({c},), got {tuple(t.shape)}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of ``(N, C, *)`` over the batch and spatial dims.

    Args:
        input: ``(N, C)`` or ``(N, C, *)``.
        running_mean, running_var: ``(C,)`` buffers. In training they are updated in
            place (``r = (1 - momentum) r + momentum * batch_stat``, with the unbiased
            batch variance); in evaluation they are used instead of batch statistics.
        weight, bias: optional ``(C,)`` affine parameters.
        training: use batch statistics (normalising with the biased variance).
        momentum: the running-average factor.
        eps: added to the variance for stability.
    """
    op = "batch_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, *), got "
                         f"{tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vec(op, name, t, c)
    dims = (0,) + tuple(range(2, input.ndim))
    shape = _channel_shape(input)
    if training:
        n = input.shape[0] * math.prod(input.shape[2:])
        if n <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(input.shape)}")
        y, stats = _normalize(input, dims, eps)
        if running_mean is not None or running_var is not None:
            with no_grad():
                if running_mean is not None:
                    _blend(running_mean, stats.mean.reshape(c), momentum)
                if running_var is not None:
                    _blend(running_var, stats.var.reshape(c) * (n / (n - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var must be given in "
                             f"evaluation mode (training=False)")
        # y = x * scale + shift, with per-channel scale and shift
        scale = E.rsqrt(E.add(running_var, eps))
        if weight is not None:
            scale = E.mul(scale, weight)
        shift = E.neg(E.mul(running_mean, scale))
        if bias is not None:
            shift = E.add(shift, bias)
        return E.add(E.mul(input, reshape(scale, shape)), reshape(shift, shape))
    if weight is not None:
        y = E.mul(y, reshape(weight, shape))
    if bias is not None:
        y = E.add(y, reshape(bias, shape))
    return y


def _blend(buf: Tensor, stat: np.ndarray, momentum: float) -> None:
    """``buf = (1 - momentum) buf + momentum stat`` in place (a state change, no graph)."""
    data = buf._data
    data *= 1.0 - momentum
    data += (momentum * stat).astype(data.dtype, copy=False)
    buf._bump("batch_norm")


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims (biased variance).

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: an int or a tuple: the trailing shape to normalise over.
        weight, bias: optional elementwise affine of shape ``normalized_shape``.
        eps: added to the variance.
    """
    op = "layer_norm"
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if (not isinstance(input, Tensor) or input.ndim < k
            or tuple(input.shape[input.ndim - k:]) != normalized_shape):
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(
            f"{op}: given normalized_shape={list(normalized_shape)}, expected input with "
            f"shape (*, {', '.join(str(s) for s in normalized_shape)}), but got input of "
            f"shape {got}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != normalized_shape:
            raise ValueError(f"{op}: expected {name} of shape {normalized_shape}, got "
                             f"{tuple(t.shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    y, _stats = _normalize(input, dims, eps)
    if weight is not None:
        y = E.mul(y, weight)
    if bias is not None:
        y = E.add(y, bias)
    return y


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise ``(N, C, *)`` over each group of ``C / num_groups`` channels and space.

    Args:
        input: ``(N, C, *)``.
        num_groups: the number of groups; must divide ``C``.
        weight, bias: optional per-channel ``(C,)`` affine.
        eps: added to the variance.
    """
    op = "group_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, *), got {tuple(input.shape)}")
    n, c = input.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ValueError(f"{op}: expected the number of channels ({c}, input shape "
                         f"{tuple(input.shape)}) to be divisible by num_groups={num_groups}")
    _check_vec(op, "weight", weight, c)
    _check_vec(op, "bias", bias, c)
    g = reshape(input, (n, num_groups, (c // num_groups) * math.prod(input.shape[2:])))
    y, _stats = _normalize(g, (2,), eps)
    y = reshape(y, tuple(input.shape))
    shape = _channel_shape(input)
    if weight is not None:
        y = E.mul(y, reshape(weight, shape))
    if bias is not None:
        y = E.add(y, reshape(bias, shape))
    return y
