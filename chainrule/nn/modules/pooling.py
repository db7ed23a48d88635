"""Pooling layers: ``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``AdaptiveAvgPool1d/2d``.

Thin modules over :mod:`chainrule.nn.functional.pooling`; they hold no parameters.

>>> import chainrule as cr
>>> cr.nn.MaxPool2d(2)(cr.randn(1, 3, 8, 8)).shape
(1, 3, 4, 4)
"""

from __future__ import annotations

from ...tensor import Tensor
from ..functional import pooling as F
from .module import Module

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "MaxPool1d", "MaxPool2d", "MaxPool3d"]


def _check_rank(module: Module, input, nd: int) -> None:
    name = type(module).__name__
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        dims = ", ".join("DHW"[3 - nd:])
        raise ValueError(f"{name}: expected input of shape (N, C, {dims}) or (C, {dims}), "
                         f"got shape {tuple(input.shape)}")


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        """Pool ``input`` (and return the arg-max indices when ``return_indices``)."""
        _check_rank(self, input, self._nd)
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self._nd - 1]
        return fn(input, self.kernel_size, self.stride, self.padding, self.dilation,
                  ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding="
                f"{self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling over ``(N, C, L)``; arguments as :class:`MaxPool2d`."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-d max pooling over ``(N, C, H, W)`` (or ``(C, H, W)``).

    Args:
        kernel_size: window size (int or pair).
        stride: window step (default ``kernel_size``).
        padding: implicit ``-inf`` padding (at most half the window).
        dilation: spacing between window elements.
        return_indices: also return the arg-max indices (per ``(n, c)`` plane).
        ceil_mode: round the output size up.

    The gradient flows to each window's first maximum (PyTorch's tie rule).
    """

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """3-d max pooling over ``(N, C, D, H, W)``; arguments as :class:`MaxPool2d`."""

    _nd = 3


class _AvgPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """Average every window of ``input``."""
        _check_rank(self, input, self._nd)
        if self._nd == 1:
            return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad)
        fn = F.avg_pool2d if self._nd == 2 else F.avg_pool3d
        return fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                  self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-d average pooling over ``(N, C, L)`` (no ``divisor_override``, as in PyTorch)."""

    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-d average pooling over ``(N, C, H, W)`` (or ``(C, H, W)``).

    Args:
        kernel_size: window size (int or pair).
        stride: window step (default ``kernel_size``).
        padding: implicit zero padding (at most half the window).
        ceil_mode: round the output size up.
        count_include_pad: count the padding zeros in each window's divisor.
        divisor_override: divide every window sum by this instead.
    """

    _nd = 2


class AvgPool3d(_AvgPoolNd):
    """3-d average pooling over ``(N, C, D, H, W)``; arguments as :class:`AvgPool2d`."""

    _nd = 3


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        """Average ``input`` down to ``output_size``."""
        _check_rank(self, input, self._nd)
        fn = F.adaptive_avg_pool1d if self._nd == 1 else F.adaptive_avg_pool2d
        return fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average ``(N, C, L)`` down to length ``output_size`` (PyTorch's window formula)."""

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average ``(N, C, H, W)`` down to ``output_size`` (an int, a pair, or None entries).

    Output cell ``i`` averages rows ``floor(i H / oh)`` to ``ceil((i + 1) H / oh)``
    (exclusive), the same windows as PyTorch.
    """

    _nd = 2
