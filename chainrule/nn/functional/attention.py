"""Attention as functions: ``scaled_dot_product_attention`` and the multi-head forward.

Mask conventions follow PyTorch, and they differ between the two:

- ``scaled_dot_product_attention``: a bool ``attn_mask`` marks with True the positions
  that *take part*; a float mask is added to the scores. Rows with no allowed position
  give zeros (PyTorch's "safe softmax").
- ``multi_head_attention_forward`` (``nn.MultiheadAttention``): a bool ``attn_mask`` or
  ``key_padding_mask`` marks with True the positions that are *not allowed*; float masks
  are added. With ``need_weights=True`` fully masked rows give NaN, as in PyTorch.

>>> import chainrule as cr
>>> q = k = v = cr.randn(2, 4, 5, 8)
>>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
(2, 4, 5, 8)
"""

from __future__ import annotations

import math

import numpy as np

from ... import creation
from ...ops import math_api as M
from ...ops import shape_api as S
from ...ops.indexing import getitem
from ...ops.linalg import matmul
from ...tensor import Tensor, _wrap
from .dropout import dropout as _dropout
from .linear import linear

__all__ = ["multi_head_attention_forward", "scaled_dot_product_attention"]


def _shape(t) -> tuple:
    return tuple(int(s) for s in t.shape)


def _raw(t):
    return t._data if isinstance(t, Tensor) else np.asarray(t)


def _float_mask(op: str, mask, dtype, true_means_masked: bool):
    """A bool mask becomes an additive float mask (0 / -inf); a float mask is kept."""
    if mask is None:
        return None
    m = _raw(mask)
    if m.dtype == np.bool_:
        blocked = m if true_means_masked else ~m
        return _wrap(np.where(blocked, -np.inf, 0.0).astype(dtype))
    if m.dtype.kind != "f":
        raise TypeError(f"{op}: only bool and floating types of masks are supported, got "
                        f"{m.dtype}")
    return mask if isinstance(mask, Tensor) else _wrap(m.astype(dtype))


def _safe_softmax(scores: Tensor, bias) -> Tensor:
    """Softmax over the last dim; rows whose bias is -inf everywhere give zeros."""
    if bias is None:
        return M.softmax(scores, -1)
    dead = np.all(np.isneginf(_raw(bias)), axis=-1, keepdims=True)
    if not dead.any():
        return M.softmax(scores, -1)
    dead = np.broadcast_to(dead, _shape(scores)[:-1] + (1,))
    scores = M.where(_wrap(dead), 0.0, scores)
    return M.where(_wrap(dead), 0.0, M.softmax(scores, -1))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(Q K^T * scale + mask) V`` over the last two dimensions.

    Args:
        query: (..., L, E); key: (..., S, E); value: (..., S, Ev) (leading dims broadcast).
        attn_mask: bool (True = may attend) or float (added), broadcastable to (..., L, S).
        dropout_p: dropout on the attention weights (applied whenever > 0, as PyTorch).
        is_causal: attend only to positions ``j <= i`` (top-left aligned); excludes
            ``attn_mask``.
        scale: the score scale; ``1 / sqrt(E)`` when None.
        enable_gqa: let key/value have fewer heads (dim -3) than query, repeated to match.

    Returns:
        (..., L, Ev).
    """
    op = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"{op}: query, key and value need at least 2 dimensions, got shapes "
                         f"{_shape(query)}, {_shape(key)}, {_shape(value)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query and key must have the same embedding size (last dim), "
                         f"got shapes {_shape(query)} and {_shape(key)}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: key and value must have the same sequence length (dim -2), "
                         f"got shapes {_shape(key)} and {_shape(value)}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        if query.shape[-3] % key.shape[-3]:
            raise ValueError(f"{op}: with enable_gqa the query heads ({query.shape[-3]}) must "
                             f"be a multiple of the key heads ({key.shape[-3]})")
        rep = query.shape[-3] // key.shape[-3]
        key = _repeat_heads(key, rep)
        value = _repeat_heads(value, rep)
    L, Sk = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(query, S.transpose(key, -2, -1)) * scale
    bias = None
    if is_causal:
        causal = np.tril(np.ones((L, Sk), dtype=bool))
        bias = _float_mask(op, causal, scores.dtype, true_means_masked=False)
    elif attn_mask is not None:
        bias = _float_mask(op, attn_mask, scores.dtype, true_means_masked=False)
    if bias is not None:
        scores = scores + bias
    attn = _safe_softmax(scores, bias)
    if dropout_p > 0.0:
        attn = _dropout(attn, p=dropout_p, training=True)
    return matmul(attn, value)


def _repeat_heads(x: Tensor, rep: int) -> Tensor:
    """Repeat each head ``rep`` times along dim -3 (k0 k0 k1 k1 ...)."""
    shape = _shape(x)
    x = S.unsqueeze(x, -3)
    x = S.expand(x, shape[:-3] + (shape[-3], rep) + shape[-2:])
    return S.reshape(x, shape[:-3] + (shape[-3] * rep,) + shape[-2:])


def _heads_first(x: Tensor, bsz: int, heads: int, head_dim: int) -> Tensor:
    """(L, N, H * hd) -> (N * H, L, hd) as one contiguous copy."""
    length = x.shape[0]
    x = S.permute(S.reshape(x, (length, bsz, heads, head_dim)), (1, 2, 0, 3))
    return S.reshape(x, (bsz * heads, length, head_dim))


def _in_projection(q, k, v, w_q, w_k, w_v, b):
    e = w_q.shape[0]
    b_q = b_k = b_v = None
    if b is not None:
        b_q, b_k, b_v = (getitem(b, (slice(i * e, (i + 1) * e),)) for i in range(3))
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


def _check_mha(query, key, value, embed_dim_to_check, num_heads, kpm, attn_mask):
    op = "multi_head_attention_forward"
    if query.ndim not in (2, 3):
        raise ValueError(f"{op}: query should be 3-D (L, N, E) or 2-D (L, E) for unbatched "
                         f"input, got shape {_shape(query)}")
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{op}: key and value must have as many dimensions as query "
                         f"({query.ndim}), got shapes {_shape(key)} and {_shape(value)}")
    if query.shape[-1] != embed_dim_to_check:
        raise ValueError(f"{op}: expected query with embed_dim {embed_dim_to_check} in the "
                         f"last dimension, got shape {_shape(query)}")
    if embed_dim_to_check % num_heads:
        raise ValueError(f"{op}: embed_dim {embed_dim_to_check} not divisible by num_heads "
                         f"{num_heads}")
    if key.shape[:-1] != value.shape[:-1]:
        raise ValueError(f"{op}: key shape {_shape(key)} does not match value shape "
                         f"{_shape(value)} (except in the last dimension)")
    if query.ndim == 3 and key.shape[1] != query.shape[1]:
        raise ValueError(f"{op}: query and key batch sizes differ: {_shape(query)} and "
                         f"{_shape(key)} (layout (L, N, E))")
    batched = query.ndim == 3
    if kpm is not None:
        want = (query.shape[1], key.shape[0]) if batched else (key.shape[0],)
        if _shape(kpm) != want:
            raise ValueError(f"{op}: expected key_padding_mask of shape {want}, got "
                             f"{_shape(kpm)}")
    if attn_mask is not None:
        L, Sk = query.shape[0], key.shape[0]
        ok2 = (L, Sk)
        ok3 = ((query.shape[1] if batched else 1) * num_heads, L, Sk)
        if _shape(attn_mask) not in (ok2, ok3):
            raise ValueError(f"{op}: expected attn_mask of shape {ok2} or {ok3}, got "
                             f"{_shape(attn_mask)}")


def multi_head_attention_forward(
    query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
    in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
    bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
    out_proj_bias: Tensor | None, training: bool = True,
    key_padding_mask: Tensor | None = None, need_weights: bool = True,
    attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
    static_v: Tensor | None = None, average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple:
    """The forward of :class:`chainrule.nn.MultiheadAttention` (sequence-first layout).

    Args:
        query: (L, N, E) or unbatched (L, E); key: (S, N, kdim); value: (S, N, vdim).
        key_padding_mask: (N, S) or (S,); True (bool) marks keys to ignore.
        attn_mask: (L, S) or (N * num_heads, L, S); True (bool) marks blocked pairs.
        need_weights: also return the attention weights (after dropout), averaged over
            heads when ``average_attn_weights`` (N, L, S), else (N, num_heads, L, S).
        is_causal: a hint that ``attn_mask`` is the causal mask (which must be given).
        The rest mirror PyTorch's ``F.multi_head_attention_forward``.

    Returns:
        ``(attn_output, attn_weights or None)``; attn_output has the query's layout.
    """
    op = "multi_head_attention_forward"
    _check_mha(query, key, value, embed_dim_to_check, num_heads, key_padding_mask, attn_mask)
    if is_causal and attn_mask is None:
        raise ValueError(f"{op}: is_causal=True is a hint and needs attn_mask (the causal "
                         f"mask) as well")
    batched = query.ndim == 3
    if not batched:
        query, key, value = (S.unsqueeze(t, 1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = S.unsqueeze(_as_tensor(key_padding_mask), 0)
    tgt_len, bsz, embed_dim = _shape(query)
    head_dim = embed_dim // num_heads
    dtype = query.dtype

    # projections
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise ValueError(f"{op}: in_proj_weight is None with use_separate_proj_weight="
                             f"False")
        if query is key and key is value:
            qkv = linear(query, in_proj_weight, in_proj_bias)
            q, k, v = S.chunk(qkv, 3, -1)
        else:
            w = [getitem(in_proj_weight, (slice(i * embed_dim, (i + 1) * embed_dim),))
                 for i in range(3)]
            q, k, v = _in_projection(query, key, value, *w, in_proj_bias)
    else:
        q, k, v = _in_projection(query, key, value, q_proj_weight, k_proj_weight,
                                 v_proj_weight, in_proj_bias)

    attn_mask = _float_mask(op, attn_mask, dtype, true_means_masked=True)
    if attn_mask is not None and attn_mask.ndim == 2:
        attn_mask = S.unsqueeze(attn_mask, 0)
    key_padding_mask = _float_mask(op, key_padding_mask, dtype, true_means_masked=True)

    if bias_k is not None and bias_v is not None:
        k = S.cat([k, S.expand(bias_k, (1, bsz, embed_dim))], 0)
        v = S.cat([v, S.expand(bias_v, (1, bsz, embed_dim))], 0)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)

    # (L, N, E) -> (N * H, L, head_dim), contiguous: the head products then read their
    # operands in order (strided operands ran ~1.4x slower), at the cost of the one copy
    # the head split needs anyway
    q = _heads_first(q, bsz, num_heads, head_dim)
    k = _heads_first(k, bsz, num_heads, head_dim) if static_k is None else static_k
    v = _heads_first(v, bsz, num_heads, head_dim) if static_v is None else static_v
    if add_zero_attn:
        z = creation.zeros(bsz * num_heads, 1, head_dim, dtype=dtype)
        k = S.cat([k, z], 1)
        v = S.cat([v, z], 1)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    src_len = k.shape[1]

    if key_padding_mask is not None:
        kpm = S.reshape(key_padding_mask, (bsz, 1, 1, src_len))
        kpm = S.reshape(S.expand(kpm, (bsz, num_heads, 1, src_len)),
                        (bsz * num_heads, 1, src_len))
        attn_mask = kpm if attn_mask is None else attn_mask + kpm

    if not training:
        dropout_p = 0.0

    if need_weights:
        q_scaled = q * math.sqrt(1.0 / head_dim)
        scores = matmul(q_scaled, S.transpose(k, -2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = M.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = _dropout(weights, p=dropout_p, training=True)
        out = matmul(weights, v)
        out = S.reshape(S.transpose(out, 0, 1), (tgt_len * bsz, embed_dim))
        out = S.reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, -1))
        weights = S.reshape(weights, (bsz, num_heads, tgt_len, src_len))
        if average_attn_weights:
            weights = M.mean(weights, 1)
        if not batched:
            out = S.squeeze(out, 1)
            weights = S.squeeze(weights, 0)
        return out, weights

    if attn_mask is not None:
        if attn_mask.shape[0] == 1:
            attn_mask = S.unsqueeze(attn_mask, 0)
        else:
            attn_mask = S.reshape(attn_mask, (bsz, num_heads, -1, src_len))
    q = S.reshape(q, (bsz, num_heads, tgt_len, head_dim))
    k = S.reshape(k, (bsz, num_heads, src_len, head_dim))
    v = S.reshape(v, (bsz, num_heads, src_len, head_dim))
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p)
    out = S.reshape(S.permute(out, (2, 0, 1, 3)), (bsz * tgt_len, embed_dim))
    out = S.reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, -1))
    if not batched:
        out = S.squeeze(out, 1)
    return out, None


def _as_tensor(x):
    return x if isinstance(x, Tensor) else _wrap(np.asarray(x))


def _pad_last(mask):
    """Append one zero column (an always-allowed key) to a float mask."""
    if mask is None:
        return None
    z = creation.zeros(*(_shape(mask)[:-1] + (1,)), dtype=mask.dtype)
    return S.cat([mask, z], -1)
