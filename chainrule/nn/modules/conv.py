"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d/2d/3d``.

Weights and state_dict keys match PyTorch: ``Conv2d`` holds ``weight (out, in/groups, kH,
kW)`` and ``bias (out,)``; ``ConvTranspose2d`` holds ``weight (in, out/groups, kH, kW)``.

>>> import chainrule as cr
>>> m = cr.nn.Conv2d(1, 6, 5)
>>> [(k, v.shape) for k, v in m.state_dict().items()]
[('weight', (6, 1, 5, 5)), ('bias', (6,))]
>>> m(cr.randn(2, 1, 28, 28)).shape
(2, 6, 24, 24)
"""

from __future__ import annotations

import math

from ... import backend
from ...creation import empty
from ...ops.indexing import getitem
from ...ops.shape import cat_, expand
from ...tensor import Tensor
from .. import init
from ..functional import conv as F
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pad_mode(x: Tensor, pads: tuple, mode: str) -> Tensor:
    """Pad the trailing spatial dims by ``(before, after)`` pairs in a non-zero mode.

    A composite of slices and ``cat``: its gradient needs no code of its own.
    """
    nd = len(pads)
    for i, (lo, hi) in enumerate(pads):
        axis = x.ndim - nd + i
        n = x.shape[axis]
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"reflect padding: padding {(lo, hi)} must be smaller than the "
                             f"input size {n} in dimension {axis}")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"circular padding: padding {(lo, hi)} must be at most the "
                             f"input size {n} in dimension {axis}")
        parts = []
        if lo:
            parts.append(_edge(x, axis, lo, mode, before=True))
        parts.append(x)
        if hi:
            parts.append(_edge(x, axis, hi, mode, before=False))
        if len(parts) > 1:
            x = cat_(axis, *parts)
    return x


def _edge(x: Tensor, axis: int, p: int, mode: str, before: bool) -> Tensor:
    """The ``p`` values a padding mode puts before (or after) ``x`` along ``axis``."""
    n = x.shape[axis]
    lead = (slice(None),) * axis
    if mode == "circular":
        sl = slice(n - p, n) if before else slice(0, p)
        return getitem(x, lead + (sl,))
    if mode == "reflect":
        if before:
            return getitem(x, lead + (slice(p, 0, -1),))
        stop = n - 2 - p
        return getitem(x, lead + (slice(n - 2, stop if stop >= 0 else None, -1),))
    shape = list(x.shape)  # replicate
    shape[axis] = p
    sl = slice(0, 1) if before else slice(n - 1, n)
    return expand(getitem(x, lead + (sl,)), tuple(shape))


class _ConvNd(Module):
    """Shared construction, initialisation and checks of the convolution layers."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding,
                 dilation, groups: int, bias: bool, padding_mode: str, output_padding=0,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        nd = self._nd
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels),
                       ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if arg == "groups"
                                                                     else 0):
                raise ValueError(f"{name}: {arg} must be a "
                                 f"{'positive' if arg == 'groups' else 'non-negative'} int, "
                                 f"got {v!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        kernel_size = F.ntuple(name, "kernel_size", kernel_size, nd, 1)
        stride = F.ntuple(name, "stride", stride, nd, 1)
        dilation = F.ntuple(name, "dilation", dilation, nd, 1)
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}"
                                 + ("" if self._transposed else
                                    ", should be one of 'valid' or 'same'"))
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
        else:
            padding = F.ntuple(name, "padding", padding, nd, 0)
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only 'zeros' padding mode is supported, got "
                             f"{padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = self._transposed
        self.output_padding = F.ntuple(name, "output_padding", output_padding, nd, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        dt = backend.to_dtype(dtype)
        if self._transposed:
            wshape = (in_channels, out_channels // groups) + kernel_size
        else:
            wshape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(empty(*wshape, dtype=dt))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the parameters: ``kaiming_uniform_(a=sqrt(5))`` and a uniform bias.

        The bias is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in =
        weight.shape[1] * prod(kernel_size)``, as in PyTorch.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.weight.shape[2:])
            if fan_in != 0:
                bound = 1.0 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)
            else:  # PyTorch leaves it uninitialised; zeros are the deterministic choice
                init.zeros_(self.bias)

    def _check_input(self, input) -> None:
        name = type(self).__name__
        nd = self._nd
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        dims = ", ".join("DHW"[3 - nd:])
        if input.ndim not in (nd + 1, nd + 2) or input.shape[-nd - 1] != self.in_channels:
            raise ValueError(
                f"{name}: expected input of shape (N, {self.in_channels}, {dims}) or "
                f"({self.in_channels}, {dims}) (in_channels={self.in_channels}), got shape "
                f"{tuple(input.shape)}"
            )

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    _fn = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """Convolve ``input`` with the layer's weight (and add the bias)."""
        self._check_input(input)
        if self.padding_mode == "zeros":
            return self._fn(input, self.weight, self.bias, self.stride, self.padding,
                            self.dilation, self.groups)
        if isinstance(self.padding, str):
            if self.padding == "valid":
                pads = ((0, 0),) * self._nd
            else:  # 'same': an odd total puts the extra element after, as in PyTorch
                total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
                pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            pads = tuple((p, p) for p in self.padding)
        x = _pad_mode(input, pads, self.padding_mode)
        return self._fn(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution over ``(N, C_in, L)``; weight ``(C_out, C_in/groups, k)``.

    Arguments as :class:`Conv2d`, with ints or 1-tuples.
    """

    _nd = 1
    _fn = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-d convolution over ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``).

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size: an int or a pair.
        stride, dilation: an int or a pair (default 1).
        padding: an int, a pair, ``'valid'`` or ``'same'`` (default 0).
        groups: independent channel groups (default 1).
        bias: learn a ``(C_out,)`` bias (default True).
        padding_mode: ``'zeros'`` (default), ``'reflect'``, ``'replicate'`` or
            ``'circular'``.
        dtype: parameter dtype (default float32).

    Attributes:
        weight: ``(C_out, C_in / groups, kH, kW)``, ``kaiming_uniform_(a=sqrt(5))``.
        bias: ``(C_out,)``, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    """

    _nd = 2
    _fn = staticmethod(F.conv2d)


class Conv3d(_Conv):
    """3-d convolution over ``(N, C_in, D, H, W)``; arguments as :class:`Conv2d`."""

    _nd = 3
    _fn = staticmethod(F.conv3d)


class _ConvTranspose(_ConvNd):
    _transposed = True
    _fn = staticmethod(F.conv_transpose2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, output_padding=0, groups: int = 1, bias: bool = True,
                 dilation=1, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype)
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if o >= s and o >= d:
                raise ValueError(f"{type(self).__name__}: output_padding "
                                 f"{self.output_padding} must be smaller than either stride "
                                 f"{self.stride} or dilation {self.dilation}")

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        """Apply the transposed convolution; ``output_size`` picks ``output_padding``."""
        self._check_input(input)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding(input, output_size)
        return self._fn(input, self.weight, self.bias, self.stride, self.padding,
                        output_padding, self.groups, self.dilation)

    def _output_padding(self, input, output_size) -> tuple:
        nd = self._nd
        size = tuple(output_size)[-nd:]
        spatial = tuple(input.shape[-nd:])
        pads = []
        for n, want, s, p, d, k in zip(spatial, size, self.stride, self.padding,
                                       self.dilation, self.kernel_size):
            smallest = (n - 1) * s - 2 * p + d * (k - 1) + 1
            extra = want - smallest
            if extra < 0 or extra >= max(s, d):
                raise ValueError(
                    f"{type(self).__name__}: requested output_size {tuple(output_size)} is "
                    f"not reachable from input {tuple(input.shape)}; each size must lie in "
                    f"[{smallest}, {smallest + max(s, d) - 1}] for this layer"
                )
            pads.append(extra)
        return tuple(pads)


class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution; weight ``(C_in, C_out/groups, k)``."""

    _nd = 1
    _fn = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution (the gradient of a ``Conv2d`` with respect to its input).

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size, stride, padding, dilation: as for the ``Conv2d`` being transposed.
        output_padding: extra size on one side of the output (< stride or < dilation).
        groups, bias: as for :class:`Conv2d`.

    Attributes:
        weight: ``(C_in, C_out / groups, kH, kW)``.
        bias: ``(C_out,)``.

    Output size: ``(H - 1) s - 2 p + d (k - 1) + output_padding + 1``.
    """

    _nd = 2
    _fn = staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution; weight ``(C_in, C_out/groups, kD, kH, kW)``."""

    _nd = 3
    _fn = staticmethod(F.conv_transpose3d)
