"""Flatten parameters into one vector and back."""

from __future__ import annotations

from collections.abc import Iterable

from ...ops.shape_api import cat
from ...tensor import Tensor


def _as_list(parameters, op: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = list(parameters)
    for k, p in enumerate(out):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors, got {type(p).__name__} at position {k}")
    return out


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Concatenate the flattened parameters into one 1-d tensor (differentiable).

    >>> import chainrule as cr
    >>> a, b = cr.ones(2, 2), cr.zeros(3)
    >>> cr.nn.utils.parameters_to_vector([a, b]).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """
    params = _as_list(parameters, "parameters_to_vector")
    if len(params) == 0:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy slices of the 1-d ``vec`` into the parameters, in order.

    As in PyTorch the parameters' data is replaced by views of ``vec`` (no gradient
    flows). Raises if ``vec`` is not a 1-d tensor holding exactly as many values as
    the parameters.

    >>> import chainrule as cr
    >>> a, b = cr.zeros(2), cr.zeros(1)
    >>> cr.nn.utils.vector_to_parameters(cr.tensor([1.0, 2.0, 3.0]), [a, b])
    >>> a.tolist(), b.tolist()
    ([1.0, 2.0], [3.0])
    """
    op = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{op}: expected a Tensor for vec, but got {type(vec).__name__}")
    params = _as_list(parameters, op)
    if vec.ndim != 1:
        raise ValueError(f"{op}: vec must be 1-d, got shape {vec.shape}")
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise ValueError(f"{op}: vec has {vec.shape[0]} values but the parameters hold "
                         f"{total}")
    data = vec._data
    offset = 0
    for p in params:
        n = p.numel()
        p._data = data[offset:offset + n].reshape(p.shape).astype(p.dtype, copy=False)
        p._bump(op)
        offset += n
