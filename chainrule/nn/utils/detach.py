"""``detach_state``: cut the history of a recurrent state between truncated-BPTT chunks."""

from __future__ import annotations

from typing import Any

from ...tensor import Tensor

__all__ = ["detach_state"]


def detach_state(state: Any) -> Any:
    """Detach a tensor, or every tensor in a nested tuple/list/dict, keeping the structure.

    Use it between chunks of a long sequence (truncated backpropagation through time):
    the values carry over, the graph behind them does not, so memory and backward cost
    per chunk stay flat however long the sequence is. ``None`` and non-tensor leaves are
    returned as they are (an initial state of ``None`` stays ``None``); namedtuples keep
    their type.

    Args:
        state: a tensor, ``None``, or a (nested) tuple, list or dict of them, e.g. an
            LSTM's ``(h, c)``.

    Returns:
        The same structure with each tensor replaced by ``tensor.detach()``.

    >>> import chainrule as cr
    >>> lstm = cr.nn.LSTM(2, 3, batch_first=True)
    >>> out, state = lstm(cr.randn(1, 5, 2))
    >>> h, c = cr.nn.utils.detach_state(state)
    >>> h.requires_grad, h.grad_fn is None, tuple(h.shape)
    (False, True, (1, 1, 3))
    """
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        items = [detach_state(s) for s in state]
        if hasattr(state, "_fields"):  # a namedtuple
            return type(state)(*items)
        return tuple(items)
    if isinstance(state, list):
        return [detach_state(s) for s in state]
    if isinstance(state, dict):
        return type(state)((k, detach_state(v)) for k, v in state.items())
    return state
