"""``Parameter``: a tensor that a :class:`~chainrule.nn.Module` registers as learnable.

>>> import chainrule as cr
>>> p = cr.nn.Parameter(cr.zeros(2))
>>> p.requires_grad
True
"""

from __future__ import annotations

from ..tensor import Tensor, _format


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning it to a module attribute registers it.

    Args:
        data: the initial values (a tensor, array or nested list); shared, not copied,
            when it is a tensor. ``None`` gives an empty float tensor.
        requires_grad: whether the parameter is trained (default True).
    """

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            from ..creation import empty

            data = empty(0)
        if isinstance(data, Tensor):
            data = data._data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + _format(self)

    def __reduce_ex__(self, protocol):
        raise TypeError("chainrule parameters are not pickled; use chainrule.save")
