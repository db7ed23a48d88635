"""Convolutions: ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d`` with PyTorch's signatures.

The work is done by the primitives in :mod:`chainrule.ops.conv` (strided-view im2col and
one GEMM); this file validates arguments, resolves ``padding='same'`` and adds the bias.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> F.conv2d(cr.ones(1, 1, 4, 4), cr.ones(2, 1, 3, 3), padding=1).shape
(1, 2, 4, 4)
"""

from __future__ import annotations

from ... import amp as _amp
from ...autograd.grad_mode import is_grad_enabled
from ...ops import conv as C
from ...ops import elementwise as E
from ...ops.shape import reshape
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d"]


def ntuple(op: str, name: str, value, n: int, minimum: int) -> tuple:
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints >= minimum."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int):
        out = (value,) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except TypeError:
            raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got "
                            f"{value!r}") from None
        if len(out) == 1 and n > 1:
            out = out * n
        if len(out) != n:
            raise ValueError(f"{op}: {name} must have {n} elements, got {value!r}")
    if any(v < minimum for v in out):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return out


def check_input_rank(op: str, input, nd: int) -> bool:
    """Check an ``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` input; True if batched."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got input "
            f"of shape {tuple(input.shape)}"
        )
    return input.ndim == nd + 2


def _check_common(op, input, weight, bias, nd, out_ch_dim):
    batched = check_input_rank(op, input, nd)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise ValueError(
            f"{op}: expected a {nd + 2}-D weight, got "
            f"{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}"
        )
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} "
                        f"should be the same")
    if bias is not None:
        if bias.dtype != input.dtype:
            raise TypeError(f"{op}: input dtype {input.dtype} and bias dtype {bias.dtype} "
                            f"should be the same")
        if tuple(bias.shape) != (out_ch_dim,):
            raise ValueError(f"{op}: expected bias of shape ({out_ch_dim},), got "
                             f"{tuple(bias.shape)}")
    return batched


def _add_bias(out, bias, nd):
    if bias is None:
        return out
    if _amp._on[0]:  # under autocast the bias joins the float16 conv: chainrule/amp.py
        bias = _amp.cast_like_lowp(bias, out)
    return E.add(out, reshape(bias, (1, bias.shape[0]) + (1,) * nd))


def _batch(input, batched):
    return input if batched else reshape(input, (1,) + tuple(input.shape))


def _unbatch(out, batched):
    return out if batched else reshape(out, tuple(out.shape[1:]))


def _convnd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    batched = _check_common(op, input, weight, bias, nd, weight.shape[0] if isinstance(
        weight, Tensor) else 0)
    stride = ntuple(op, "stride", stride, nd, 1)
    dilation = ntuple(op, "dilation", dilation, nd, 1)
    ksize = tuple(weight.shape[2:])
    channels = input.shape[1 if batched else 0]
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: out_channels ({weight.shape[0]}, weight shape "
                         f"{tuple(weight.shape)}) must be divisible by groups={groups}")
    if channels != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: given groups={groups} and weight of shape {tuple(weight.shape)}, expected "
            f"input {tuple(input.shape)} to have {weight.shape[1] * groups} channels, but got "
            f"{channels} channels instead"
        )
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
            # PyTorch puts the odd extra padding element after (right/bottom).
            pads = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                         for d, k in zip(dilation, ksize))
        else:
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of "
                             f"'valid' or 'same'")
    else:
        pads = tuple((p, p) for p in ntuple(op, "padding", padding, nd, 0))
    spatial = tuple(input.shape[-nd:])
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))
    eff = tuple(d * (k - 1) + 1 for d, k in zip(dilation, ksize))
    if any(p < e for p, e in zip(padded, eff)):
        raise ValueError(
            f"{op}: calculated padded input size per channel {padded} is smaller than the "
            f"(dilated) kernel size {eff}; input shape {tuple(input.shape)}, weight shape "
            f"{tuple(weight.shape)}"
        )
    cache = C.ColumnCache() if weight.requires_grad and is_grad_enabled() else None
    out = C.conv(_batch(input, batched), weight, stride, pads, dilation, groups, cache)
    return _unbatch(_add_bias(out, bias, nd), batched)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d cross-correlation of ``(N, C_in, L)`` with ``weight (C_out, C_in/groups, k)``.

    ``padding`` is an int, a 1-tuple, ``'valid'`` or ``'same'``.
    """
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d cross-correlation of ``(N, C_in, H, W)`` with ``weight (C_out, C_in/groups, kH, kW)``.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or a pair.
        padding: an int, a pair, ``'valid'`` (none) or ``'same'`` (output size = input
            size; stride must be 1; an odd total puts the extra element after).
        groups: split the channels into this many independent convolutions.

    Returns:
        ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2p - d (k - 1) - 1) // s + 1``.
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d cross-correlation of ``(N, C_in, D, H, W)``; weight ``(C_out, C_in/g, kD, kH, kW)``."""
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                      dilation):
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    out_ch = weight.shape[1] * groups if isinstance(weight, Tensor) else 0
    batched = _check_common(op, input, weight, bias, nd, out_ch)
    stride = ntuple(op, "stride", stride, nd, 1)
    dilation = ntuple(op, "dilation", dilation, nd, 1)
    padding = ntuple(op, "padding", padding, nd, 0)
    output_padding = ntuple(op, "output_padding", output_padding, nd, 0)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    channels = input.shape[1 if batched else 0]
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: in_channels ({weight.shape[0]}, weight shape "
                         f"{tuple(weight.shape)}) must be divisible by groups={groups}")
    if channels != weight.shape[0]:
        raise ValueError(
            f"{op}: given weight of shape {tuple(weight.shape)}, expected input "
            f"{tuple(input.shape)} to have {weight.shape[0]} channels, but got {channels} "
            f"channels instead"
        )
    ksize = tuple(weight.shape[2:])
    spatial = tuple(input.shape[-nd:])
    out_size = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
        spatial, stride, padding, dilation, ksize, output_padding))
    if any(n < 1 for n in out_size):
        raise ValueError(f"{op}: the output size {out_size} for input {tuple(input.shape)} "
                         f"and weight {tuple(weight.shape)} is too small (check padding)")
    pads = tuple((p, p) for p in padding)
    out = C.conv_input(_batch(input, batched), weight, out_size, stride, pads, dilation,
                       groups)
    return _unbatch(_add_bias(out, bias, nd), batched)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-d transposed convolution; ``weight`` is ``(C_in, C_out/groups, k)``."""
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-d transposed convolution (the gradient of ``conv2d`` with respect to its input).

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out / groups, kH, kW)``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: as for the ``conv2d`` this transposes.
        output_padding: extra size added to one side of the output (smaller than the
            stride or the dilation).
        groups: number of channel groups.

    Returns:
        ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H - 1) s - 2 p + d (k - 1) + output_padding + 1``.
    """
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """3-d transposed convolution; ``weight`` is ``(C_in, C_out/groups, kD, kH, kW)``."""
    return _conv_transposend("conv_transpose3d", 3, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)
