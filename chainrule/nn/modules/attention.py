"""``MultiheadAttention``, with PyTorch's parameters, masks and layouts.

Parameters (when ``kdim == vdim == embed_dim``): ``in_proj_weight`` (3E, E) holding the
query, key and value projections stacked, ``in_proj_bias`` (3E,), and ``out_proj`` (a
Linear E -> E). Otherwise ``q_proj_weight``, ``k_proj_weight`` (E, kdim) and
``v_proj_weight`` (E, vdim) replace ``in_proj_weight``. The maths is
:func:`chainrule.nn.functional.multi_head_attention_forward`.

>>> import chainrule as cr
>>> mha = cr.nn.MultiheadAttention(8, 2, batch_first=True)
>>> x = cr.randn(3, 5, 8)
>>> out, w = mha(x, x, x)
>>> out.shape, w.shape
((3, 5, 8), (3, 5, 5))
"""

from __future__ import annotations

from ... import creation
from ...ops.shape_api import transpose
from ...tensor import Tensor
from .. import init
from ..functional.attention import multi_head_attention_forward
from ..parameter import Parameter
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear"]


class NonDynamicallyQuantizableLinear(Linear):
    """The output projection of :class:`MultiheadAttention` (a plain Linear; the name
    keeps PyTorch's module tree)."""


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of size ``embed_dim // num_heads``.

    Args:
        embed_dim: model dimension E (query features and output features).
        num_heads: parallel heads; must divide ``embed_dim``.
        dropout: dropout probability on the attention weights (training only).
        bias: biases in the input and output projections.
        add_bias_kv: learn ``bias_k`` / ``bias_v`` (1, 1, E) appended to key and value.
        add_zero_attn: append a zero key and value after the projections.
        kdim, vdim: key / value features (default ``embed_dim``).
        batch_first: inputs and output are (N, L, E) instead of (L, N, E).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` returns
    ``(attn_output, attn_weights)``; bool masks mark with True what may *not* be attended.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        if not isinstance(embed_dim, int) or embed_dim <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim must be a positive int, got "
                             f"{embed_dim!r}")
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: num_heads must be a positive int, got "
                             f"{num_heads!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        e = embed_dim
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(creation.empty(e, e, dtype=dtype))
            self.k_proj_weight = Parameter(creation.empty(e, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(creation.empty(e, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(creation.empty(3 * e, e, dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * e, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(e, e, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, e, dtype=dtype))
            self.bias_v = Parameter(creation.empty(1, 1, e, dtype=dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's init: xavier_uniform_ projections, zero biases, xavier_normal_ bias_kv."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple:
        """Attend from ``query`` to ``key``/``value``; returns ``(output, weights)``.

        Shapes (``batch_first=False``): query (L, N, E), key (S, N, kdim), value
        (S, N, vdim), or unbatched (L, E) / (S, kdim) / (S, vdim); with
        ``batch_first=True`` the batch comes first. Weights are (N, L, S), or
        (N, num_heads, L, S) when ``average_attn_weights=False``; None unless
        ``need_weights``.
        """
        for name, t, feat in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if not isinstance(t, Tensor) or t.ndim not in (2, 3):
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"MultiheadAttention: expected {name} to be 3-D "
                                 f"({'N, L' if self.batch_first else 'L, N'}, E) or 2-D "
                                 f"(L, E), got {got}")
            if t.shape[-1] != feat:
                raise ValueError(f"MultiheadAttention: expected {name} with {feat} features "
                                 f"in the last dimension, got shape {tuple(t.shape)}")
        batched = query.ndim == 3
        if self.batch_first and batched:
            if key is value:
                if query is key:
                    query = key = value = transpose(query, 1, 0)
                else:
                    query = transpose(query, 1, 0)
                    key = value = transpose(key, 1, 0)
            else:
                query, key, value = (transpose(t, 1, 0) for t in (query, key, value))
        out, weights = multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        if self.batch_first and batched:
            out = transpose(out, 1, 0)
        return out, weights
