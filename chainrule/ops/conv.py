"""Convolution and pooling primitives over N spatial dimensions, on strided views.

Why primitives: a convolution written as a composite (a Python loop over output
positions, or one ``getitem`` per kernel tap feeding ``mul``/``add``) records thousands of
nodes and runs far from BLAS speed. Here each convolution is an ``im2col`` copy made from
a strided view (no Python loop over positions) and ONE matrix product; the adjoints scatter
back with one vectorised add per kernel tap (``kh * kw`` iterations at most).

The columns put the batch innermost (``(C * K, L * N)``): the copy from the strided view
and the per-tap scatters then move long contiguous runs. When the weight needs a gradient,
the forward's columns are kept (a :class:`ColumnCache`, capped in size) so the weight
gradient is one GEMM with no second ``im2col``.

Convolution is a trilinear form ``T(x, w, y) = <conv(x, w), y>``, so three primitives cover
every derivative of every order, each VJP being one of the other two:

* ``conv(x, w)``          -> y-shaped (the forward),
* ``conv_input(y, w)``    -> x-shaped (input gradient = transposed convolution),
* ``conv_weight(x, y)``   -> w-shaped (weight gradient, one GEMM).

Pooling: ``max_pool_indices`` finds the arg-max of every window on raw arrays (one vectorised
compare per kernel tap); the differentiable part is the gather ``take_flat`` whose adjoint is
the scatter ``put_flat`` (and the reverse), so double backward works. Average pooling is a
windowed sum ``sum_pool`` (adjoint ``sum_pool_t``) times a constant divisor.

Conventions: inputs are ``(N, C, *spatial)``; ``stride``/``dilation`` are tuples with one
int per spatial dim; ``padding`` is a tuple of ``(before, after)`` pairs (asymmetric padding
serves ``padding='same'`` and ``ceil_mode``).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from .. import amp as _amp
from .. import backend
from ._registry import primitive
from .indexing import getitem

xp = backend.xp
_as_strided = xp.lib.stride_tricks.as_strided


# ---------------------------------------------------------------------------- geometry
def conv_out_sizes(in_size, ksize, stride, padding, dilation) -> tuple:
    """Output spatial size of a convolution/pooling window sweep (floor mode)."""
    return tuple(
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, s, (lo, hi), d in zip(in_size, ksize, stride, padding, dilation)
    )


def _check_fits(op, in_size, ksize, stride, padding, dilation, out) -> None:
    """The windows for ``out`` positions must lie inside the padded input (memory safety)."""
    for n, k, s, (lo, hi), d, o in zip(in_size, ksize, stride, padding, dilation, out):
        if o < 1 or (o - 1) * s + d * (k - 1) + 1 > n + lo + hi:
            raise ValueError(
                f"{op}: kernel {tuple(ksize)} with stride {tuple(stride)}, dilation "
                f"{tuple(dilation)} and padding {tuple(padding)} does not fit an input of "
                f"spatial size {tuple(in_size)} for output size {tuple(out)}"
            )


def _pad(x, padding, value):
    """``x`` padded on its spatial dims by ``(before, after)`` pairs (no copy when zero)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    spatial = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    buf = xp.full(x.shape[:2] + spatial, value, dtype=x.dtype)
    inner = (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for n, (lo, _hi) in zip(x.shape[2:], padding)
    )
    buf[inner] = x
    return buf


@functools.lru_cache(maxsize=256)
def _tap_slices(ksize, stride, dilation, out, lead=2) -> tuple:
    """Per kernel tap (row-major), the slice it reads for every output position.

    ``lead`` full slices come first (the batch and channel dims).
    """
    taps = []
    for offs in itertools.product(*(range(k) for k in ksize)):
        taps.append((slice(None),) * lead + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, d, s, n in zip(offs, dilation, stride, out)
        ))
    return tuple(taps)


def _crop_spatial(t, size):
    """The leading ``size`` positions of each spatial dim (a dual op: arrays or tensors)."""
    if tuple(t.shape[2:]) == tuple(size):
        return t
    return getitem(t, (slice(None), slice(None)) + tuple(slice(0, n) for n in size))


def _batch_last(x, padding):
    """``x (N, C, *S)`` as a contiguous ``(C, *S_padded, N)`` array: one copy that also pads.

    With the batch innermost, every window read and every tap scatter below moves
    contiguous runs of ``out_width * N`` elements instead of ``out_width``.
    """
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    padded = tuple(m + lo + hi for m, (lo, hi) in zip(spatial, padding))
    src = xp.moveaxis(x, 0, -1)
    if padded == tuple(spatial):
        return xp.ascontiguousarray(src)
    buf = xp.zeros((c,) + padded + (n,), dtype=x.dtype)
    inner = (slice(None),) + tuple(slice(lo, lo + m) for m, (lo, _hi) in zip(spatial, padding))
    buf[inner] = src
    return buf


def _im2col(x, ksize, stride, padding, dilation, out, groups):
    """Columns ``(G, Cg * K, L * N)`` (rows: channel, tap; columns: position, batch).

    The contiguous right-hand GEMM operand, made by one copy from a strided view.
    """
    xt = _batch_last(x, padding)
    c = xt.shape[0]
    n = xt.shape[-1]
    nd = len(ksize)
    st = xt.strides
    shape = (c,) + tuple(ksize) + tuple(out) + (n,)
    strides = ((st[0],) + tuple(st[1 + i] * dilation[i] for i in range(nd))
               + tuple(st[1 + i] * stride[i] for i in range(nd)) + (st[-1],))
    win = _as_strided(xt, shape=shape, strides=strides, writeable=False)
    return win.reshape(groups, (c // groups) * math.prod(ksize), math.prod(out) * n)


def _gemm(a, b):
    """``a @ b`` for stacks of one group as a plain 2-d GEMM (no batched loop)."""
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0])[None]
    return xp.matmul(a, b)


def _y_rows(y, groups):
    """``y (N, O, *out)`` as the contiguous GEMM operand ``(G, O/G, L * N)``."""
    o = y.shape[1]
    return xp.ascontiguousarray(xp.moveaxis(y, 0, -1)).reshape(groups, o // groups, -1)


# ---------------------------------------------------------------------------- convolution
class ColumnCache:
    """Keeps a convolution's im2col columns from forward for its weight gradient.

    Pass a fresh one to ``conv`` when the weight will need a gradient: the backward then
    skips rebuilding the columns (one copy of ``K`` times the input), and drops them as
    soon as it has used them. Columns above ``KEEP_COLS_MAX`` elements are not kept.
    """

    __slots__ = ("cols",)

    def __init__(self) -> None:
        self.cols = None


KEEP_COLS_MAX = 1 << 23  # 8M elements: 32 MB of float32 columns per layer at most


@primitive(saves=("x", "w"), nin=2)
def conv(x, w, stride, padding, dilation, groups, cache=None):
    """N-d cross-correlation of ``x (N, C, *S)`` with ``w (O, C/groups, *k)``.

    ``cache``: an optional :class:`ColumnCache` that keeps the columns for backward.
    """
    if _amp._on[0] and _amp.in_autocast():  # mixed precision: chainrule/amp.py
        return _amp.run_lowp(conv.prim.fwd, x, w, stride, padding, dilation, groups, cache)
    ksize = w.shape[2:]
    out = conv_out_sizes(x.shape[2:], ksize, stride, padding, dilation)
    _check_fits("conv", x.shape[2:], ksize, stride, padding, dilation, out)
    n = x.shape[0]
    o = w.shape[0]
    cols = _im2col(x, ksize, stride, padding, dilation, out, groups)
    if cache is not None and cols.size <= KEEP_COLS_MAX:
        cache.cols = cols
    wm = xp.ascontiguousarray(w).reshape(groups, o // groups, -1)
    y = _gemm(wm, cols)  # (G, Og, L * N): the one GEMM
    return xp.ascontiguousarray(xp.moveaxis(y.reshape((o,) + out + (n,)), -1, 0))


@primitive(saves=("y", "w"), nin=2)
def conv_input(y, w, in_size, stride, padding, dilation, groups):
    """The adjoint of ``conv`` in ``x`` (a transposed convolution) onto spatial ``in_size``.

    ``y (N, O, *out)`` and ``w (O, C/groups, *k)`` give ``(N, C, *in_size)``.
    """
    ksize = tuple(w.shape[2:])
    out = tuple(y.shape[2:])
    _check_fits("conv_transpose", in_size, ksize, stride, padding, dilation, out)
    n, o = y.shape[:2]
    cg = w.shape[1]
    og = o // groups
    k = math.prod(ksize)
    # (G, K * Cg, Og): row (tap, channel) holds that tap's weights over output channels,
    # so the product comes out tap-major and each tap's block is contiguous.
    wp = xp.ascontiguousarray(
        w.reshape(groups, og, cg, k).transpose(0, 3, 2, 1)).reshape(groups, k * cg, og)
    cols = _gemm(wp, _y_rows(y, groups)).reshape((groups, k, cg) + out + (n,))
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(in_size, padding))
    buf = xp.zeros((groups, cg) + padded + (n,), dtype=cols.dtype)
    for t, sl in enumerate(_tap_slices(ksize, stride, dilation, out, 2)):
        # one vectorised add per kernel tap (the col2im scatter)
        buf[sl] += cols[:, t]
    buf = buf.reshape((groups * cg,) + padded + (n,))
    if padded != tuple(in_size):
        buf = buf[(slice(None),) + tuple(
            slice(lo, lo + s) for s, (lo, _hi) in zip(in_size, padding))]
    return xp.ascontiguousarray(xp.moveaxis(buf, -1, 0))


@primitive(saves=("x", "y"), nin=2)
def conv_weight(x, y, ksize, stride, padding, dilation, groups, cache=None):
    """The adjoint of ``conv`` in ``w``: ``(O, C/groups, *ksize)`` from ``x`` and ``y``.

    ``cache``: the :class:`ColumnCache` given to the forward ``conv`` of ``x``, if any.
    """
    out = tuple(y.shape[2:])
    _check_fits("conv_weight", x.shape[2:], ksize, stride, padding, dilation, out)
    o = y.shape[1]
    cg = x.shape[1] // groups
    cols = None
    if cache is not None:
        cols = cache.cols
        cache.cols = None  # used once: free it with the rest of the backward's buffers
    if cols is None:
        cols = _im2col(x, ksize, stride, padding, dilation, out, groups)
    gw = _gemm(_y_rows(y, groups), cols.transpose(0, 2, 1))  # (G, Og, Cg * K): one GEMM
    return gw.reshape((o, cg) + tuple(ksize))


def _conv_vjp_x(g, out, x, w, stride, padding, dilation, groups, cache=None):
    return conv_input(g, w, tuple(x.shape[2:]), stride, padding, dilation, groups)


def _conv_vjp_w(g, out, x, w, stride, padding, dilation, groups, cache=None):
    return conv_weight(x, g, tuple(w.shape[2:]), stride, padding, dilation, groups, cache)


conv.defvjp(_conv_vjp_x, _conv_vjp_w)


def _conv_input_vjp_y(g, out, y, w, in_size, stride, padding, dilation, groups):
    return _crop_spatial(conv(g, w, stride, padding, dilation, groups), y.shape[2:])


def _conv_input_vjp_w(g, out, y, w, in_size, stride, padding, dilation, groups):
    return conv_weight(g, y, tuple(w.shape[2:]), stride, padding, dilation, groups)


conv_input.defvjp(_conv_input_vjp_y, _conv_input_vjp_w)


def _conv_weight_vjp_x(g, out, x, y, ksize, stride, padding, dilation, groups, cache=None):
    return conv_input(y, g, tuple(x.shape[2:]), stride, padding, dilation, groups)


def _conv_weight_vjp_y(g, out, x, y, ksize, stride, padding, dilation, groups, cache=None):
    return _crop_spatial(conv(x, g, stride, padding, dilation, groups), y.shape[2:])


conv_weight.defvjp(_conv_weight_vjp_x, _conv_weight_vjp_y)


# ---------------------------------------------------------------------------- max pooling
def max_pool_indices(x, ksize, stride, padding, dilation, out):
    """Arg-max of every pooling window of the raw array ``x (N, C, *S)``.

    Returns ``(flat, unique)``: int64 indices into ``x.ravel()`` shaped ``(N, C, *out)``,
    and whether they are all distinct (windows that do not overlap).

    NOTE: ties go to the first maximum in row-major window order, and a NaN always wins
    (the last NaN when several), as in PyTorch's CPU kernel. Padding is ``-inf``; a window
    whose real values are all ``-inf`` points at its nearest real position.
    """
    ksize, stride, dilation, out = tuple(ksize), tuple(stride), tuple(dilation), tuple(out)
    _check_fits("max_pool", x.shape[2:], ksize, stride, padding, dilation, out)
    isfloat = x.dtype.kind == "f"
    if isfloat:
        low = -np.inf
    elif x.dtype.kind == "b":
        low = False
    else:
        low = xp.iinfo(x.dtype).min
    xpad = _pad(x, padding, low)
    taps = _tap_slices(ksize, stride, dilation, out)
    # a NaN anywhere makes the sum NaN (inf - inf too: then the NaN rule runs for nothing)
    nan_rule = isfloat and bool(xp.isnan(xp.sum(x)))
    best = xpad[taps[0]].copy()
    arg = xp.zeros(best.shape, dtype=xp.uint8 if len(taps) < 256 else xp.int64)
    take = xp.empty(best.shape, dtype=bool)
    for t in range(1, len(taps)):
        v = xpad[taps[t]]
        xp.greater(v, best, out=take)
        if nan_rule:
            take |= v != v
            xp.copyto(best, v, where=take)
        else:
            xp.maximum(best, v, out=best)  # faster than a masked copy
        xp.putmask(arg, take, t)
    spatial = tuple(x.shape[2:])
    overlap = any(s < d * (k - 1) + 1 for s, d, k in zip(stride, dilation, ksize))
    if not any(lo or hi for lo, hi in padding):
        # the chosen tap's offset inside its window, plus the window's start, plus the plane
        flat = _tap_offsets(ksize, dilation, spatial)[arg]
        flat += _window_starts(spatial, stride, out)
        flat += _plane_base(x.shape[:2], spatial)
        return flat, not overlap
    nd = len(spatial)
    plane = None
    clipped = False
    rest = arg.astype(xp.int64)
    offs = [None] * nd
    for i in range(nd - 1, -1, -1):
        offs[i] = rest % ksize[i]
        rest = rest // ksize[i]
    for i in range(nd):
        shape = [1] * (2 + nd)
        shape[2 + i] = out[i]
        start = xp.arange(out[i], dtype=xp.int64).reshape(shape) * stride[i] - padding[i][0]
        pos = start + offs[i] * dilation[i]
        if (pos < 0).any() or (pos >= spatial[i]).any():
            clipped = True
            pos = xp.clip(pos, 0, spatial[i] - 1)
        plane = pos if plane is None else plane * spatial[i] + pos
    return _plane_base(x.shape[:2], spatial) + plane, not (overlap or clipped)


def plane_indices(flat, spatial):
    """Flat indices into ``x.ravel()`` as indices into each ``(n, c)`` plane."""
    return flat - _plane_base(flat.shape[:2], tuple(spatial))


def _plane_base(nc, spatial):
    nd = len(spatial)
    return xp.arange(nc[0] * nc[1], dtype=xp.int64).reshape(
        tuple(nc) + (1,) * nd) * math.prod(spatial)


@functools.lru_cache(maxsize=64)
def _window_starts(spatial, stride, out):
    """Flat index within a plane of every window's first element (unpadded); cached."""
    idx = xp.zeros((1,) * len(spatial), dtype=xp.int64)
    for i in range(len(spatial)):
        shape = [1] * len(spatial)
        shape[i] = out[i]
        step = stride[i] * math.prod(spatial[i + 1:])
        idx = idx + xp.arange(out[i], dtype=xp.int64).reshape(shape) * step
    idx.flags.writeable = False
    return idx


@functools.lru_cache(maxsize=64)
def _tap_offsets(ksize, dilation, spatial):
    """Flat offset of each kernel tap (row-major) from its window's first element."""
    offs = xp.zeros(1, dtype=xp.int64)
    for i in range(len(ksize)):
        step = dilation[i] * math.prod(spatial[i + 1:])
        offs = (offs[:, None] + xp.arange(ksize[i], dtype=xp.int64) * step).reshape(-1)
    offs.flags.writeable = False
    return offs


@primitive(nin=1)
def take_flat(x, idx, unique):
    """``x.ravel()[idx]``: the values at flat indices (the differentiable half of max-pool)."""
    return xp.take(x.reshape(-1), idx)


@primitive(nin=1)
def put_flat(g, idx, shape, unique):
    """Zeros of ``shape`` with ``g`` added at flat indices ``idx`` (adjoint of take_flat)."""
    z = xp.zeros(math.prod(shape), dtype=g.dtype)
    if unique:
        z[idx] = g
    else:
        xp.add.at(z, idx, g)
    return z.reshape(shape)


take_flat.defvjp(lambda g, out, x, idx, unique: put_flat(g, idx, tuple(x.shape), unique))
put_flat.defvjp(lambda g, out, src, idx, shape, unique: take_flat(g, idx, unique))


# ---------------------------------------------------------------------------- sum pooling
@primitive(nin=1)
def sum_pool(x, ksize, stride, padding):
    """Sum over every window (zero padding); average pooling divides this afterwards."""
    ones = (1,) * len(ksize)
    out = conv_out_sizes(x.shape[2:], ksize, stride, padding, ones)
    _check_fits("avg_pool", x.shape[2:], ksize, stride, padding, ones, out)
    xpad = _pad(x, padding, 0)
    taps = _tap_slices(tuple(ksize), tuple(stride), ones, out)
    acc = xpad[taps[0]].copy()
    for sl in taps[1:]:
        acc += xpad[sl]  # one vectorised add per kernel tap
    return acc


@primitive(nin=1)
def sum_pool_t(g, in_size, ksize, stride, padding):
    """The adjoint of ``sum_pool``: every window's gradient spread over its inputs."""
    ones = (1,) * len(ksize)
    out = tuple(g.shape[2:])
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(in_size, padding))
    buf = xp.zeros(g.shape[:2] + padded, dtype=g.dtype)
    for sl in _tap_slices(tuple(ksize), tuple(stride), ones, out):
        buf[sl] += g
    if padded == tuple(in_size):
        return buf
    inner = (slice(None), slice(None)) + tuple(
        slice(lo, lo + s) for s, (lo, _hi) in zip(in_size, padding))
    return xp.ascontiguousarray(buf[inner])


sum_pool.defvjp(
    lambda g, out, x, ksize, stride, padding: sum_pool_t(g, tuple(x.shape[2:]), ksize, stride,
                                                         padding))
sum_pool_t.defvjp(
    lambda g, out, y, in_size, ksize, stride, padding: sum_pool(g, ksize, stride, padding))
