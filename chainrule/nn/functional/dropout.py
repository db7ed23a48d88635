"""Dropout variants: a random mask times the input (composites; the mask is a constant).

Masks are drawn from the default generator (``chainrule.manual_seed``) unless
``generator=`` is passed.
"""

from __future__ import annotations

import numpy as np

from ...ops import elementwise as E
from ...random import rng
from ...tensor import Tensor, _wrap

__all__ = ["alpha_dropout", "dropout", "dropout1d", "dropout2d", "dropout3d",
           "feature_alpha_dropout"]

_ALPHA_P = -1.7580993408473766  # -SELU_SCALE * SELU_ALPHA: the value SELU saturates to


def _check_p(op: str, p: float) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(input: Tensor, p: float, shape: tuple, generator) -> np.ndarray:
    return (rng(generator).random(shape) >= p).astype(input.dtype)


def _dropout(op: str, input: Tensor, p: float, training: bool, mask_shape: tuple,
             generator) -> Tensor:
    _check_p(op, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return E.mul(input, _wrap(np.zeros(mask_shape, input.dtype)))
    mask = _keep_mask(input, p, mask_shape, generator)
    mask *= np.asarray(1.0 / (1.0 - p), dtype=input.dtype)
    return E.mul(input, _wrap(mask))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""
    return _dropout("dropout", input, p, training, input.shape, generator)


def _feature(op: str, input: Tensor, p: float, training: bool, dims: tuple, generator):
    if input.ndim not in dims:
        raise ValueError(f"{op}: expected a {' or '.join(f'{d}-D' for d in dims)} input, got "
                         f"shape {tuple(input.shape)}")
    spatial = dims[1] - 2
    lead = input.shape[: input.ndim - spatial]
    return _dropout(op, input, p, training, lead + (1,) * spatial, generator)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` inputs."""
    return _feature("dropout1d", input, p, training, (2, 3), generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` or ``(C, H, W)`` inputs."""
    return _feature("dropout2d", input, p, training, (3, 4), generator)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` inputs."""
    return _feature("dropout3d", input, p, training, (4, 5), generator)


def _alpha(op: str, input: Tensor, p: float, training: bool, mask_shape: tuple, generator):
    _check_p(op, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return E.mul(input, 0.0)
    keep = _keep_mask(input, p, mask_shape, generator)
    a = ((1.0 - p) * (1.0 + p * _ALPHA_P ** 2)) ** -0.5
    b = -a * _ALPHA_P * p
    # kept: a * x + b; dropped: a * alpha' + b
    scale = _wrap((keep * a).astype(input.dtype))
    shift = _wrap(((1.0 - keep) * a * _ALPHA_P + b).astype(input.dtype))
    return E.add(E.mul(input, scale), shift)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False, generator=None) -> Tensor:
    """Dropout that keeps SELU activations' zero mean and unit variance."""
    return _alpha("alpha_dropout", input, p, training, input.shape, generator)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False, generator=None) -> Tensor:
    """Alpha dropout of whole channels (dims after the first two share the mask)."""
    if input.ndim < 2:
        raise ValueError(f"feature_alpha_dropout: expected at least 2-D input, got shape "
                         f"{tuple(input.shape)}")
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _alpha("feature_alpha_dropout", input, p, training, shape, generator)
