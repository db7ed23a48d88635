"""Public shape and indexing functions with PyTorch's signatures.

All are composites of the shape and indexing primitives, so they carry no gradient code.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor, _check_dim, _wrap
from . import shape as S
from .elementwise import add as _add
from .elementwise import where as _where
from .indexing import along_dim_index, normalize_index, scatter_into, take


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _sz(x) -> tuple:
    return x.shape


def reshape(input, *shape):
    """Same elements in a new shape (one dim may be -1)."""
    shp = S.infer_shape("reshape", _shape_arg(shape), int(np.prod(input.shape)), input.shape)
    return S.reshape(input, shp)


def view(input, *shape):
    """Like ``reshape``; chainrule copies when a view is impossible instead of raising."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
        from .elementwise import cast

        return cast(input, backend.to_dtype(shape[0]))
    shp = S.infer_shape("view", _shape_arg(shape), int(np.prod(input.shape)), input.shape)
    return S.reshape(input, shp)


def view_as(input, other):
    """Reshape ``input`` to ``other``'s shape."""
    return view(input, other.shape)


def reshape_as(input, other):
    """Reshape ``input`` to ``other``'s shape."""
    return reshape(input, other.shape)


def permute(input, *dims):
    """Reorder dimensions (``dims`` is a permutation of range(ndim))."""
    dims = _shape_arg(dims)
    nd = input.ndim
    if len(dims) != nd:
        raise ValueError(f"permute: expected {nd} dims for shape {tuple(input.shape)}, got "
                         f"{tuple(dims)}")
    norm = tuple(_check_dim("permute", d, nd) for d in dims)
    if sorted(norm) != list(range(nd)):
        raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of "
                         f"{tuple(range(nd))}")
    return S.permute(input, norm)


def transpose(input, dim0: int, dim1: int):
    """Swap two dimensions."""
    nd = input.ndim
    if nd == 0:
        return S.reshape(input, ())
    d0 = _check_dim("transpose", dim0, nd)
    d1 = _check_dim("transpose", dim1, nd)
    perm = list(range(nd))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return S.permute(input, tuple(perm))


swapaxes = transpose
swapdims = transpose


def t(input):
    """Transpose a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape "
                         f"{tuple(input.shape)}; use transpose or mT")
    return S.permute(input, tuple(reversed(range(input.ndim))))


def T(input):
    """All dimensions reversed (``.T``)."""
    return S.permute(input, tuple(reversed(range(input.ndim))))


def mT(input):
    """The last two dimensions swapped (``.mT``)."""
    if input.ndim < 2:
        raise ValueError(f"mT: needs at least 2 dimensions, got shape {tuple(input.shape)}")
    return transpose(input, -2, -1)


def movedim(input, source, destination):
    """Move dimension(s) ``source`` to position(s) ``destination``."""
    nd = input.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [_check_dim("movedim", s, nd) for s in src]
    dst = [_check_dim("movedim", d, nd) for d in dst]
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return S.permute(input, tuple(order))


def expand(input, *sizes):
    """Broadcast to ``sizes`` (-1 keeps a dimension) without copying."""
    sizes = _shape_arg(sizes)
    nd = input.ndim
    lead = len(sizes) - nd
    if lead < 0:
        raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                         f"number of dimensions ({nd}) of shape {tuple(input.shape)}")
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(sizes))
    return S.expand(input, tuple(int(s) for s in shape))


def expand_as(input, other):
    """Broadcast to ``other``'s shape."""
    return S.expand(input, tuple(other.shape))


def broadcast_to(input, shape):
    """Broadcast to ``shape``."""
    return expand(input, tuple(shape))


def squeeze(input, dim=None):
    """Remove size-1 dimensions (all, or those in ``dim``)."""
    shp = input.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        nd = len(shp)
        ds = {_check_dim("squeeze", d, nd) for d in dims} if nd else set()
        new = tuple(s for i, s in enumerate(shp) if not (i in ds and s == 1))
    return S.reshape(input, new)


def unsqueeze(input, dim: int):
    """Insert a size-1 dimension at ``dim``."""
    nd = input.ndim
    d = _check_dim("unsqueeze", dim, nd + 1)
    shp = list(input.shape)
    shp.insert(d, 1)
    return S.reshape(input, tuple(shp))


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """Merge dimensions ``start_dim..end_dim`` into one."""
    nd = input.ndim
    if nd == 0:
        return S.reshape(input, (1,))
    s = _check_dim("flatten", start_dim, nd)
    e = _check_dim("flatten", end_dim, nd)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shp = input.shape
    n = 1
    for k in shp[s:e + 1]:
        n *= k
    return S.reshape(input, tuple(shp[:s]) + (n,) + tuple(shp[e + 1:]))


def unflatten(input, dim: int, sizes):
    """Split dimension ``dim`` into ``sizes``."""
    nd = input.ndim
    d = _check_dim("unflatten", dim, nd)
    sizes = S.infer_shape("unflatten", tuple(sizes), input.shape[d], (input.shape[d],))
    return S.reshape(input, tuple(input.shape[:d]) + sizes + tuple(input.shape[d + 1:]))


def ravel(input):
    """Flatten to 1-d."""
    return S.reshape(input, (int(np.prod(input.shape)),))


def _check_seq(op, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")


def cat(tensors, dim: int = 0):
    """Concatenate along an existing dimension."""
    _check_seq("cat", tensors)
    nd = tensors[0].ndim
    if nd == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    for k, x in enumerate(tensors):
        if x.ndim != nd:
            raise ValueError(
                f"cat: tensor {k} has {x.ndim} dimensions (shape {tuple(x.shape)}) but "
                f"tensor 0 has {nd} (shape {tuple(tensors[0].shape)})"
            )
    return S.cat_(_check_dim("cat", dim, nd), *tensors)


concat = cat
concatenate = cat


def stack(tensors, dim: int = 0):
    """Join along a new dimension ``dim``."""
    _check_seq("stack", tensors)
    s0 = tuple(tensors[0].shape)
    for k, x in enumerate(tensors):
        if tuple(x.shape) != s0:
            raise ValueError(f"stack: expects each tensor to be equal size, but got {s0} at "
                             f"entry 0 and {tuple(x.shape)} at entry {k}")
    d = _check_dim("stack", dim, len(s0) + 1)
    return S.cat_(d, *[unsqueeze(x, d) for x in tensors])


def hstack(tensors):
    """Concatenate along dim 1 (dim 0 for 1-d tensors)."""
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Concatenate along dim 0 (1-d tensors become rows)."""
    return cat([x if x.ndim > 1 else unsqueeze(x, 0) for x in tensors], 0)


def narrow(input, dim: int, start: int, length: int):
    """The slice ``start:start+length`` along ``dim``."""
    d = _check_dim("narrow", dim, input.ndim)
    n = input.shape[d]
    if start < -n or start > n:
        raise IndexError(f"narrow: start {start} is out of range for dimension {dim} of size "
                         f"{n} (expected -{n} <= start <= {n})")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                         f"{dim} of size {n} (need 0 <= length <= {n - start})")
    return take(input, (slice(None),) * d + (slice(start, start + length),))


def split(tensor, split_size_or_sections, dim: int = 0):
    """Split into chunks of a size, or of the given list of sizes, along ``dim``."""
    d = _check_dim("split", dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [step] * (n // step) + ([n % step] if n % step else [])
        if n == 0:
            sizes = [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} sum to {sum(sizes)} but dimension {dim} "
                             f"has size {n}")
    if len(sizes) > 1 and isinstance(tensor, Tensor) and tensor.requires_grad \
            and is_grad_enabled():
        return _SplitViews.apply(tensor, d, tuple(sizes))
    return _narrow_all(tensor, d, sizes)


def _narrow_all(tensor, d: int, sizes) -> tuple:
    out = []
    start = 0
    for s in sizes:
        out.append(narrow(tensor, d, start, s))
        start += s
    return tuple(out)


class _SplitViews(Function):
    """The pieces of a split as views; backward joins their gradients with one ``cat``
    (instead of scattering each piece into a zero buffer of the full size and adding)."""

    @staticmethod
    def forward(ctx, x, d, sizes):
        ctx.d = d
        return _narrow_all(x, d, sizes)

    @staticmethod
    def backward(ctx, *grads):
        return S.cat_(ctx.d, *grads), None, None


def chunk(input, chunks: int, dim: int = 0):
    """Split into ``chunks`` pieces of equal size (the last may be smaller)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = _check_dim("chunk", dim, input.ndim)
    n = input.shape[d]
    step = -(-n // chunks) if n else 1
    return split(input, step, d)


def unbind(input, dim: int = 0):
    """The slices along ``dim`` as a tuple, with that dimension removed."""
    d = _check_dim("unbind", dim, input.ndim)
    return tuple(take(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


def tril(input, diagonal: int = 0):
    """Lower triangle of the last two dims."""
    _need2("tril", input)
    return S.tril(input, diagonal)


def triu(input, diagonal: int = 0):
    """Upper triangle of the last two dims."""
    _need2("triu", input)
    return S.triu(input, diagonal)


def _need2(op, x):
    if x.ndim < 2:
        raise ValueError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                         f"{tuple(x.shape)}")


def flip(input, dims):
    """Reverse the order of elements along ``dims``."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    dims = tuple(_check_dim("flip", d, input.ndim) for d in dims)
    if input.ndim == 0:
        return S.clone(input)
    return S.flip(input, dims)


def repeat(input, *sizes):
    """Tile the tensor ``sizes[i]`` times along each dimension."""
    sizes = _shape_arg(sizes)
    nd = input.ndim
    if len(sizes) < nd:
        raise ValueError(f"repeat: number of repeats ({len(sizes)}) can't be smaller than "
                         f"the number of dimensions ({nd})")
    shp = (1,) * (len(sizes) - nd) + tuple(input.shape)
    inter = []
    target = []
    final = []
    for r, s in zip(sizes, shp):
        inter += [1, s]
        target += [r, s]
        final.append(r * s)
    x = S.reshape(input, tuple(inter))
    x = S.expand(x, tuple(target))
    return S.reshape(x, tuple(final))


def tile(input, dims):
    """Like ``repeat``, padding ``dims`` with ones on the left."""
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def pad(input, pad, mode: str = "constant", value=0.0):
    """Pad with a constant; ``pad`` lists (left, right) pairs from the last dim backwards.

    Negative amounts crop, as in PyTorch.
    """
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is available here, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    nd = input.ndim
    if len(pad) % 2 or len(pad) // 2 > nd:
        raise ValueError(f"pad: padding length must be even and at most 2*ndim "
                         f"({2 * nd}), got {len(pad)}")
    widths = [(0, 0)] * nd
    crop = [slice(None)] * nd
    for i in range(len(pad) // 2):
        d = nd - 1 - i
        b, a = pad[2 * i], pad[2 * i + 1]
        n = input.shape[d]
        if n + b + a < 0 or -b > n or -a > n:
            raise ValueError(f"pad: padding ({b}, {a}) of dimension {d} (size {n}) would "
                             f"give a negative size")
        widths[d] = (max(b, 0), max(a, 0))
        if b < 0 or a < 0:
            crop[d] = slice(max(-b, 0), n - max(-a, 0))
    x = input
    if any(c != slice(None) for c in crop):
        x = take(x, tuple(crop))
    if all(w == (0, 0) for w in widths):
        return x if x is not input else S.clone(x)
    return S.pad_(x, tuple(widths), value)


def gather(input, dim: int, index):
    """Values of ``input`` at ``index`` along ``dim`` (PyTorch semantics)."""
    d = _check_dim("gather", dim, input.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    return take(input, along_dim_index("gather", tuple(input.shape), d, idx))


def take_along_dim(input, indices, dim: int | None = None):
    """Like ``gather`` with broadcasting of ``indices`` (PyTorch's take_along_dim).

    With ``dim=None`` both are flattened first.
    """
    idx = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if dim is None:
        return take_along_dim(ravel(input), idx.reshape(-1), 0)
    d = _check_dim("take_along_dim", dim, input.ndim)
    if idx.ndim != input.ndim:
        raise ValueError(
            f"take_along_dim: input and indices should have the same number of dimensions, "
            f"got input shape {tuple(input.shape)} and indices shape {idx.shape}"
        )
    try:
        shape = list(np.broadcast_shapes(
            tuple(s if i != d else 1 for i, s in enumerate(input.shape)),
            tuple(s if i != d else 1 for i, s in enumerate(idx.shape))))
    except ValueError:
        raise ValueError(
            f"take_along_dim: input shape {tuple(input.shape)} and indices shape {idx.shape} "
            f"must broadcast in every dimension except dim {dim}"
        ) from None
    shape_idx = list(shape)
    shape_idx[d] = idx.shape[d]
    shape_in = list(shape)
    shape_in[d] = input.shape[d]
    idx = np.broadcast_to(idx, shape_idx)
    x = S.expand(input, tuple(shape_in))
    return take(x, along_dim_index("take_along_dim", tuple(shape_in), d, idx))



def scatter_add(input, dim: int, index, src):
    """``input`` with ``src`` added at ``index`` along ``dim`` (duplicates accumulate)."""
    d = _check_dim("scatter_add", dim, input.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if src.ndim != idx.ndim or any(i > n for i, n in zip(idx.shape, src.shape)):
        raise ValueError(
            f"scatter_add: index shape {idx.shape} must have the dimensions of src (shape "
            f"{tuple(src.shape)}) and be no larger than it in any dimension"
        )
    if tuple(src.shape) != tuple(idx.shape):
        src = take(src, tuple(slice(0, n) for n in idx.shape))
    mesh = along_dim_index("scatter_add", tuple(input.shape), d, idx)
    return _add(input, scatter_into(src, mesh, tuple(input.shape)))


def index_select(input, dim: int, index):
    """Entries of ``input`` at the 1-d ``index`` along ``dim``."""
    d = _check_dim("index_select", dim, input.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be 1-d, got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"index_select: index must be an integer tensor, got "
                        f"{backend.dtype_name(idx.dtype)}")
    return take(input, (slice(None),) * d + (idx.reshape(-1),))


def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` is True (broadcast)."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got "
                        f"{backend.dtype_name(m.dtype)}")
    try:
        np.broadcast_shapes(m.shape, tuple(input.shape))
    except ValueError:
        raise ValueError(
            f"masked_fill: mask of shape {m.shape} is not broadcastable with input of shape "
            f"{tuple(input.shape)} (trailing dimensions must be equal or 1)"
        ) from None
    return _where(_wrap(m), value, input)


def masked_select(input, mask):
    """1-d tensor of the entries where ``mask`` (broadcast) is True."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be a bool tensor, got "
                        f"{backend.dtype_name(m.dtype)}")
    try:
        shape = np.broadcast_shapes(tuple(input.shape), m.shape)
    except ValueError:
        raise ValueError(
            f"masked_select: mask of shape {m.shape} is not broadcastable with input of "
            f"shape {tuple(input.shape)} (trailing dimensions must be equal or 1)"
        ) from None
    x = S.expand(input, tuple(shape))
    return take(x, (np.broadcast_to(m, shape),))


def getitem(input, idx):
    """``input[idx]`` with slices, steps, None, ..., ints, integer arrays and masks."""
    return take(input, normalize_index(idx))


def nonzero(input, *, as_tuple: bool = False):
    """Indices of non-zero elements: an (n, ndim) int64 tensor, or a tuple of 1-d ones."""
    nz = np.nonzero(input._data if isinstance(input, Tensor) else input)
    if as_tuple:
        return tuple(_wrap(i.astype(np.int64)) for i in nz)
    return _wrap(np.stack(nz, axis=1).astype(np.int64) if nz else np.zeros((1, 0), np.int64))


def roll(input, shifts, dims=None):
    """Roll elements along ``dims`` (flattened when None) by ``shifts``."""
    if dims is None:
        flat = ravel(input)
        return reshape(roll(flat, shifts, 0), tuple(input.shape))
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    x = input
    for s, d in zip(shifts, dims):
        d = _check_dim("roll", d, input.ndim)
        n = input.shape[d]
        if n == 0:
            continue
        s = s % n
        if s == 0:
            continue
        a = narrow(x, d, n - s, s)
        b = narrow(x, d, 0, n - s)
        x = S.cat_(d, a, b)
    return x
