"""``embedding`` (a row lookup) and ``one_hot``."""

from __future__ import annotations

import numpy as np

from ...autograd.grad_mode import no_grad
from ...ops import elementwise as E
from ...ops.indexing import take
from ...tensor import Tensor, _wrap

__all__ = ["embedding", "one_hot"]


def _indices(op: str, input, n: int) -> np.ndarray:
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor (int64), got dtype "
                        f"{idx.dtype}")
    if idx.size:
        lo = int(idx.min())
        hi = int(idx.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{op}: index {bad} is out of range for {n} embeddings "
                             f"(expected 0 <= index < {n})")
    return idx


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (``(num_embeddings, dim)``) picked by the integer ``input``.

    Args:
        padding_idx: rows looked up at this index get no gradient.
        max_norm: rows whose ``norm_type``-norm exceeds it are rescaled in place first.
        scale_grad_by_freq: scale each row's gradient by the inverse of how often its
            index occurs in the batch.
        sparse: accepted for compatibility; gradients are always dense.
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {tuple(weight.shape)}")
    n = weight.shape[0]
    idx = _indices("embedding", input, n)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        with no_grad():
            rows = np.unique(idx)
            norms = np.linalg.norm(weight._data[rows].astype(np.float64), ord=norm_type,
                                   axis=1)
            big = norms > max_norm
            if big.any():
                scale = (max_norm / (norms[big] + 1e-7)).astype(weight.dtype)
                weight._data[rows[big]] *= scale[:, None]
                weight._bump("embedding_renorm_")
    out = take(weight, (idx,))
    if scale_grad_by_freq and weight.requires_grad:
        uniq, inv, counts = np.unique(idx, return_inverse=True, return_counts=True)
        s = (1.0 / counts[inv.reshape(idx.shape)]).astype(weight.dtype)[..., None]
        base = out.detach()
        # same forward value; the gradient is scaled by 1 / count
        out = E.add(base, E.mul(E.sub(out, base), _wrap(s)))
    if padding_idx is not None and weight.requires_grad:
        pad = _wrap((idx == padding_idx)[..., None])
        out = E.where(pad, out.detach(), out)
    return out


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """An int64 tensor with a trailing dimension of ``num_classes`` one-hot vectors."""
    idx = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer (int64) tensor, got dtype {idx.dtype}")
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: can not infer the number of classes of an empty tensor;"
                             " pass num_classes")
        num_classes = int(idx.max()) + 1
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: class values must be in [0, {num_classes}), got values "
                         f"in [{int(idx.min())}, {int(idx.max())}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, idx[..., None].astype(np.int64), 1, axis=-1)
    return _wrap(out)
