"""Shape primitives: reshape, permute, expand, sum_to, flip, tril/triu, cat, pad.

Views (reshape, permute, expand) share the version counter of their input so an in-place
change through either is seen by backward.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ._registry import primitive

xp = backend.xp


def _fmt(shape) -> str:
    return str(tuple(int(s) for s in shape))


def infer_shape(op: str, shape, numel: int, from_shape) -> tuple:
    """Resolve one ``-1`` in ``shape`` and check the element count (raises a clear error)."""
    shape = tuple(int(s) for s in shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got shape {shape}")
    if any(s < -1 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape} (negative size)")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if neg:
        if known == 0 or numel % known != 0:
            raise ValueError(
                f"{op}: shape {shape} is invalid for input of size {numel} "
                f"(input shape {_fmt(from_shape)}): {numel} is not a multiple of {known}"
                + (", and -1 is ambiguous for an empty tensor" if known == 0 else "")
            )
        shape = shape[: neg[0]] + (numel // known,) + shape[neg[0] + 1:]
    elif known != numel:
        raise ValueError(
            f"{op}: shape {shape} is invalid for input of size {numel} "
            f"(input shape {_fmt(from_shape)}): the new sizes multiply to {known}, they "
            f"must multiply to {numel}"
        )
    return shape


@primitive(nin=1, view=True)
def reshape(x, shape):
    """``x`` with a new shape holding the same elements (a view when possible)."""
    if x.shape == shape:
        return x.view()
    return x.reshape(shape)


reshape.defvjp(lambda g, out, x, shape: reshape(g, x.shape))


@primitive(nin=1, view=True)
def permute(x, dims):
    """Reorder dimensions: result dim i is input dim ``dims[i]``."""
    return xp.transpose(x, dims)


permute.defvjp(lambda g, out, x, dims: permute(g, tuple(np.argsort(dims))))


@primitive(nin=1, view=True)
def expand(x, shape):
    """Broadcast to ``shape`` without copying (read-only view)."""
    if x.shape == shape:
        return x.view()
    try:
        return xp.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(
            f"expand: the shape {_fmt(x.shape)} can't be expanded to {_fmt(shape)}: each "
            f"dimension must match or be 1, and new dimensions go in front"
        ) from None


expand.defvjp(lambda g, out, x, shape: sum_to(g, x.shape))


@primitive(nin=1)
def sum_to(x, shape):
    """Sum a broadcast array back down to ``shape`` (the adjoint of ``expand``)."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1
    )
    r = xp.sum(x, axis=axes, keepdims=True) if axes else x
    if lead:
        r = r.reshape(r.shape[lead:])
    if r.shape != shape:
        r = r.reshape(shape)
    return r


sum_to.defvjp(lambda g, out, x, shape: expand(g, x.shape))


@primitive(nin=1)
def flip(x, dims):
    """Reverse the order of elements along ``dims``."""
    return xp.flip(x, axis=dims).copy()


flip.defvjp(lambda g, out, x, dims: flip(g, dims))


@primitive(nin=1)
def tril(x, diagonal):
    """Lower triangle of the last two dims (others zeroed)."""
    return xp.tril(x, diagonal)


tril.defvjp(lambda g, out, x, diagonal: tril(g, diagonal))


@primitive(nin=1)
def triu(x, diagonal):
    """Upper triangle of the last two dims (others zeroed)."""
    return xp.triu(x, diagonal)


triu.defvjp(lambda g, out, x, diagonal: triu(g, diagonal))


@primitive()
def cat_(dim, *xs):
    """Concatenate along an existing dimension ``dim``."""
    try:
        return xp.concatenate(xs, axis=dim)
    except ValueError:
        shapes = ", ".join(_fmt(np.shape(x)) for x in xs)
        raise ValueError(
            f"cat: tensors must have the same shape except in dimension {dim}; got shapes "
            f"{shapes}"
        ) from None


cat_.prim.name = "cat"


def _cat_vjp(g, out, dim, *xs):
    from .indexing import getitem

    grads = [None]
    start = 0
    lead = (slice(None),) * dim
    for x in xs:
        n = x.shape[dim]
        grads.append(getitem(g, lead + (slice(start, start + n),)))
        start += n
    return grads


cat_.defvjp_all(_cat_vjp)


@primitive(nin=1)
def pad_(x, widths, value):
    """Pad with a constant: ``widths`` is ((before, after), ...) per dimension."""
    return xp.pad(x, widths, mode="constant", constant_values=value)


pad_.prim.name = "pad"


def _pad_vjp(g, out, x, widths, value):
    from .indexing import getitem

    idx = tuple(slice(b, b + n) for (b, _a), n in zip(widths, x.shape))
    return getitem(g, idx)


pad_.defvjp(_pad_vjp)


@primitive(nin=1)
def clone(x):
    """A copy that owns its memory (gradient passes through unchanged)."""
    return x.copy()


clone.defvjp(lambda g, out, x: g)
