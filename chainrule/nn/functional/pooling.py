"""Pooling: ``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d``, ``adaptive_avg_pool1d/2d``.

Max pooling gathers each window's arg-max (found on raw arrays, one compare per kernel
tap) through the ``take_flat`` primitive, so gradients and gradients of gradients flow to
the arg-max positions. Average pooling is the ``sum_pool`` primitive times a constant
divisor. Adaptive average pooling is two small matrix products with averaging matrices
(PyTorch's ``start = floor(i * in / out)``, ``end = ceil((i + 1) * in / out)`` windows).

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> F.max_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2)
tensor([[[[ 5.,  7.],
          [13., 15.]]]])
"""

from __future__ import annotations

import math

import numpy as np

from ...ops import conv as C
from ...ops import elementwise as E
from ...ops.linalg import matmul
from ...ops.shape import reshape
from ...tensor import Tensor, _wrap
from .conv import check_input_rank, ntuple

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d",
           "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d"]


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (with the ceil-mode rule that the last window must
    start inside the input or its left padding)."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _geometry(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode, half_of):
    """Validate and return (batched, ksize, stride, pads (lo, hi), dilation, out)."""
    batched = check_input_rank(op, input, nd)
    ksize = ntuple(op, "kernel_size", kernel_size, nd, 1)
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        stride = ksize
    stride = ntuple(op, "stride", stride, nd, 1)
    padding = ntuple(op, "padding", padding, nd, 0)
    dilation = ntuple(op, "dilation", dilation, nd, 1)
    for p, k, d in zip(padding, ksize, dilation):
        limit = (d * (k - 1) + 1) / 2 if half_of == "effective" else k / 2
        if p > limit:
            raise ValueError(
                f"{op}: pad should be at most half of the (effective) kernel size, but got "
                f"padding={padding}, kernel_size={ksize} and dilation={dilation}"
            )
    spatial = tuple(input.shape[-nd:])
    out = tuple(_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip(
        spatial, ksize, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: output size is too small: input {tuple(input.shape)} with kernel_size="
            f"{ksize}, stride={stride}, padding={padding}, dilation={dilation} gives {out}"
        )
    # ceil_mode's last window may run past the padded input: pad more on the high side.
    pads = tuple((p, p + max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p)))
                 for n, k, s, p, d, o in zip(spatial, ksize, stride, padding, dilation, out))
    return batched, ksize, stride, pads, dilation, out


def _batch(input, batched):
    return input if batched else reshape(input, (1,) + tuple(input.shape))


def _unbatch(out, batched):
    return out if batched else reshape(out, tuple(out.shape[1:]))


def _max_poolnd(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices):
    batched, ksize, stride, pads, dilation, out = _geometry(
        op, input, nd, kernel_size, stride, padding, dilation, ceil_mode, "effective")
    x = _batch(input, batched)
    flat, unique = C.max_pool_indices(x._data, ksize, stride, pads, dilation, out)
    y = _unbatch(C.take_flat(x, flat, unique), batched)
    if return_indices:
        plane = C.plane_indices(flat, x.shape[2:])
        idx = _wrap(plane if batched else plane[0])
        return y, idx
    return y


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """1-d max pooling over ``(N, C, L)`` (or ``(C, L)``); see :func:`max_pool2d`."""
    return _max_poolnd("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """2-d max pooling over ``(N, C, H, W)`` (or ``(C, H, W)``).

    Args:
        kernel_size: window size, an int or a pair.
        stride: window step (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides (at most half the window).
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the arg-max positions, flattened per ``(n, c)``
            plane (int64), as PyTorch does.

    The gradient goes to the arg-max of each window; ties go to the first maximum in
    row-major window order (PyTorch's rule).
    """
    return _max_poolnd("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """3-d max pooling over ``(N, C, D, H, W)``; see :func:`max_pool2d`."""
    return _max_poolnd("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def _divisor(spatial, ksize, stride, padding, out, count_include_pad):
    """The per-output-position divisor, as PyTorch's kernel computes it (separable)."""
    per_dim = []
    for n, k, s, p, o in zip(spatial, ksize, stride, padding, out):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if count_include_pad:
            per_dim.append(end - start)
        else:
            per_dim.append(np.minimum(end, n) - np.maximum(start, 0))
    div = per_dim[0].astype(np.float64)
    for v in per_dim[1:]:
        div = np.multiply.outer(div, v)
    return div


def _avg_poolnd(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    batched, ksize, stride, pads, _dil, out = _geometry(
        op, input, nd, kernel_size, stride, padding, 1, ceil_mode, "kernel")
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")
    x = _batch(input, batched)
    total = C.sum_pool(x, ksize, stride, pads)
    if divisor_override is not None:
        y = E.mul(total, 1.0 / divisor_override)
    else:
        div = _divisor(tuple(x.shape[2:]), ksize, stride, tuple(p for p, _ in pads), out,
                       count_include_pad)
        first = float(div.flat[0])
        if np.all(div == first):
            y = E.mul(total, 1.0 / first)
        else:
            y = E.mul(total, (1.0 / div).astype(x.dtype))
    return _unbatch(y, batched)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-d average pooling over ``(N, C, L)``; see :func:`avg_pool2d`."""
    return _avg_poolnd("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-d average pooling over ``(N, C, H, W)`` (or ``(C, H, W)``).

    Args:
        kernel_size: window size, an int or a pair.
        stride: window step (default: ``kernel_size``).
        padding: implicit zero padding on both sides (at most half the window).
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding zeros in the divisor (windows that run past the
            padding in ceil mode are never counted beyond it).
        divisor_override: divide every window sum by this instead.
    """
    return _avg_poolnd("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-d average pooling over ``(N, C, D, H, W)``; see :func:`avg_pool2d`."""
    return _avg_poolnd("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def _adaptive_matrix(n: int, o: int, dtype) -> np.ndarray:
    """``(o, n)`` averaging matrix: row i averages ``[floor(i n / o), ceil((i + 1) n / o))``."""
    a = np.zeros((o, n), dtype=dtype)
    for i in range(o):
        start = (i * n) // o
        end = -((-(i + 1) * n) // o)
        a[i, start:end] = 1.0 / (end - start)
    return a


def _adaptive_sizes(op, input, nd, output_size):
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) == 1 and nd > 1:
        output_size = output_size * nd
    if len(output_size) != nd:
        raise ValueError(f"{op}: output_size must have {nd} elements, got {output_size!r}")
    spatial = tuple(input.shape[-nd:])
    sizes = tuple(n if o is None else int(o) for n, o in zip(spatial, output_size))
    if any(o < 1 for o in sizes):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    if any(n < 1 for n in spatial):
        raise ValueError(f"{op}: input {tuple(input.shape)} has an empty spatial dimension")
    return sizes


def _adaptive_avg_poolnd(op, nd, input, output_size):
    batched = check_input_rank(op, input, nd)
    sizes = _adaptive_sizes(op, input, nd, output_size)
    x = _batch(input, batched)
    spatial = tuple(x.shape[2:])
    if all(n % o == 0 for n, o in zip(spatial, sizes)):
        # equal windows: plain average pooling, kernel = stride = n / o
        k = tuple(n // o for n, o in zip(spatial, sizes))
        y = E.mul(C.sum_pool(x, k, k, ((0, 0),) * nd), 1.0 / math.prod(k))
        return _unbatch(y, batched)
    n, c = x.shape[:2]
    y = x
    # one averaging matmul per spatial dim (the 2-d window average is separable)
    for i in range(nd - 1, -1, -1):
        a = _adaptive_matrix(spatial[i], sizes[i], x.dtype)
        # move dim i last, contract it with a^T, move it back
        lead = y.shape[:2 + i]
        tail = y.shape[2 + i + 1:]
        inner = math.prod(tail)
        y3 = reshape(y, (math.prod(lead), spatial[i], inner))
        y3 = matmul(a, y3)  # (o, n) @ (B, n, inner) -> (B, o, inner)
        y = reshape(y3, tuple(lead) + (sizes[i],) + tuple(tail))
    return _unbatch(y, batched)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """1-d adaptive average pooling of ``(N, C, L)`` to length ``output_size``."""
    return _adaptive_avg_poolnd("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """2-d adaptive average pooling of ``(N, C, H, W)`` to ``output_size``.

    ``output_size`` is an int, a pair, or a pair with ``None`` (keep that input size).
    Output cell ``i`` averages input rows ``floor(i H / oh)`` to ``ceil((i + 1) H / oh)``
    (exclusive), as in PyTorch.
    """
    return _adaptive_avg_poolnd("adaptive_avg_pool2d", 2, input, output_size)
