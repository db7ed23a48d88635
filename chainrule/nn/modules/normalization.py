"""``LayerNorm`` and ``GroupNorm``.

>>> import chainrule as cr
>>> ln = cr.nn.LayerNorm(4)
>>> [(k, v.shape) for k, v in ln.state_dict().items()]
[('weight', (4,)), ('bias', (4,))]
"""

from __future__ import annotations

from ... import backend
from ...autograd.grad_mode import no_grad
from ...creation import ones, zeros
from ...tensor import Tensor
from ..functional.normalization import group_norm, layer_norm
from ..parameter import Parameter
from .module import Module

__all__ = ["GroupNorm", "LayerNorm"]


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims, then an elementwise affine.

    Args:
        normalized_shape: an int or a tuple: the trailing shape of the inputs.
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn ``weight`` (init 1) of shape ``normalized_shape``.
        bias: also learn ``bias`` (init 0) when ``elementwise_affine`` (default True).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        if any(s < 1 for s in self.normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive, got "
                             f"{self.normalized_shape}")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dt = backend.to_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dt))
            if bias:
                self.bias = Parameter(zeros(*self.normalized_shape, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        with no_grad():
            if self.weight is not None:
                self.weight.fill_(1.0)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, input: Tensor) -> Tensor:
        """Normalise the trailing dims of ``input``."""
        k = len(self.normalized_shape)
        if (not isinstance(input, Tensor) or input.ndim < k
                or tuple(input.shape[input.ndim - k:]) != self.normalized_shape):
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(
                f"LayerNorm: expected input of shape (*, "
                f"{', '.join(str(s) for s in self.normalized_shape)}) (normalized_shape="
                f"{self.normalized_shape}), got shape {got}"
            )
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalise ``(N, C, *)`` over groups of ``C / num_groups`` channels (and space).

    Args:
        num_groups: the number of groups (divides ``num_channels``).
        num_channels: ``C``.
        eps: added to the variance (default 1e-5).
        affine: learn per-channel ``weight`` (init 1) and ``bias`` (init 0).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        dt = backend.to_dtype(dtype)
        if affine:
            self.weight = Parameter(ones(num_channels, dtype=dt))
            self.bias = Parameter(zeros(num_channels, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        if self.affine:
            with no_grad():
                self.weight.fill_(1.0)
                self.bias.zero_()

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` per sample and channel group."""
        if not isinstance(input, Tensor) or input.ndim < 2 \
                or input.shape[1] != self.num_channels:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"GroupNorm: expected input of shape (N, {self.num_channels}, *) "
                             f"(num_channels={self.num_channels}), got shape {got}")
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
