"""``TransformerEncoderLayer`` and ``TransformerEncoder``, as in PyTorch.

Submodule names (``self_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``,
``norm2``, ``dropout1``, ``dropout2``; ``layers.{i}``) match ``torch.nn`` so state dicts
convert one to one.

>>> import chainrule as cr
>>> layer = cr.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16,
...                                       batch_first=True)
>>> enc = cr.nn.TransformerEncoder(layer, num_layers=2)
>>> enc(cr.randn(3, 5, 8)).shape
(3, 5, 8)
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from ...tensor import Tensor, _wrap
from ..functional.activation import gelu, relu
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["TransformerEncoder", "TransformerEncoderLayer"]


def generate_square_subsequent_mask(sz: int, dtype=None) -> Tensor:
    """The causal float mask (sz, sz): 0 on and below the diagonal, -inf above.

    PyTorch has it as ``nn.Transformer.generate_square_subsequent_mask``.
    """
    from ... import backend

    dt = backend.to_dtype(dtype)
    return _wrap(np.triu(np.full((sz, sz), -np.inf), 1).astype(dt))


def _activation(act) -> Callable:
    if isinstance(act, str):
        if act == "relu":
            return relu
        if act == "gelu":
            return gelu
        raise ValueError(f"TransformerEncoderLayer: activation should be relu/gelu, not "
                         f"{act!r}")
    if not callable(act):
        raise TypeError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                        f"callable, got {type(act).__name__}")
    return act


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual and LayerNorm.

    Args:
        d_model: features of the input.
        nhead: attention heads.
        dim_feedforward: hidden size of the feed-forward block (default 2048).
        dropout: dropout probability (default 0.1).
        activation: ``"relu"`` (default), ``"gelu"`` or a callable.
        layer_norm_eps: LayerNorm eps (default 1e-5).
        batch_first: (N, L, E) instead of (L, N, E).
        norm_first: LayerNorm before each block (pre-norm) instead of after the residual.
        bias: biases in the Linear and LayerNorm layers.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        act = _activation(activation)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = act

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """Encode ``src``; masks as :class:`MultiheadAttention` (True = blocked)."""
        if not isinstance(src, Tensor) or src.ndim not in (2, 3):
            got = tuple(src.shape) if isinstance(src, Tensor) else type(src).__name__
            raise ValueError(f"TransformerEncoderLayer: expected src to be 3-D or 2-D "
                             f"(unbatched), got {got}")
        d_model = self.self_attn.embed_dim
        if src.shape[-1] != d_model:
            raise ValueError(f"TransformerEncoderLayer: expected src with d_model={d_model} "
                             f"features in the last dimension, got shape {tuple(src.shape)}")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (``layers.{i}``), then
    ``norm`` when given.

    Args:
        encoder_layer: a :class:`TransformerEncoderLayer` (deep-copied per layer).
        num_layers: the number of copies.
        norm: an optional final normalisation module.
        enable_nested_tensor, mask_check: accepted for compatibility (no effect).
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got "
                            f"{type(encoder_layer).__name__}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be a positive int, got "
                             f"{num_layers!r}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        """Run every layer in turn (same masks for each), then ``norm``."""
        out = src
        for mod in self.layers:
            out = mod(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        if self.norm is not None:
            out = self.norm(out)
        return out
