"""Batch normalisation: ``BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d``.

State as in PyTorch: parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``;
buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``
(int64 0) when ``track_running_stats``.

>>> import chainrule as cr
>>> bn = cr.nn.BatchNorm2d(3)
>>> list(bn.state_dict())
['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
"""

from __future__ import annotations

from ... import backend
from ...autograd.grad_mode import no_grad
from ...creation import ones, tensor, zeros
from ...tensor import Tensor
from ..functional.normalization import batch_norm
from ..parameter import Parameter
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    """Shared state and forward of the batch-norm layers (``_ranks`` differ)."""

    _ranks: tuple = (4,)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or isinstance(num_features, bool) \
                or num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive int, got "
                             f"{num_features!r}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = backend.to_dtype(dtype)
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dt))
            self.bias = Parameter(zeros(num_features, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt))
            self.register_buffer("running_var", ones(num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=backend.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch count 0."""
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0
            for b in (self.running_mean, self.running_var, self.num_batches_tracked):
                b._bump("reset_running_stats")

    def reset_parameters(self) -> None:
        """Reset the running statistics, weight 1 and bias 0."""
        self.reset_running_stats()
        if self.affine:
            with no_grad():
                self.weight.fill_(1.0)
                self.bias.zero_()

    def _check_input(self, input) -> None:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        ranks = " or ".join(f"{r}D" for r in self._ranks)
        if input.ndim not in self._ranks:
            raise ValueError(f"{name}: expected {ranks} input, got {input.ndim}D input of "
                             f"shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: expected input with {self.num_features} channels in dim 1 "
                f"(num_features={self.num_features}), got shape {tuple(input.shape)}"
            )

    def forward(self, input: Tensor) -> Tensor:
        """Normalise with batch statistics (training) or the running ones (eval)."""
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None
        if use_batch and input.shape[0] * _spatial(input) <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel "
                             f"when training, got input of shape {tuple(input.shape)}")
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            self.num_batches_tracked._bump("batch_norm")
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        track = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


def _spatial(input) -> int:
    n = 1
    for s in input.shape[2:]:
        n *= s
    return n


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)``.

    Args:
        num_features: ``C``.
        eps: added to the variance (default 1e-5).
        momentum: running-average factor (default 0.1); ``None`` gives a cumulative
            average over the batches seen.
        affine: learn ``weight`` (init 1) and ``bias`` (init 0).
        track_running_stats: keep ``running_mean``/``running_var`` and use them in eval
            mode; without them eval mode uses batch statistics.

    In training the batch is normalised with its biased variance and the running variance
    is updated with the unbiased one, as in PyTorch.
    """

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)``; arguments as :class:`BatchNorm1d`."""

    _ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over ``(N, C, D, H, W)``; arguments as :class:`BatchNorm1d`."""

    _ranks = (5,)
