"""Hook plumbing for :class:`~chainrule.nn.Module`: handles and full backward hooks.

Full backward hooks use only the public ``autograd.Function`` API: the module's tensor
inputs and outputs pass through an identity function whose backward sees their
gradients. The output side records ``grad_output``; the input side calls the hooks with
``grad_input`` and may replace it.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ...autograd.function import Function
from ...tensor import Tensor

__all__ = ["RemovableHandle"]

if TYPE_CHECKING:
    from .module import Module


class RemovableHandle:
    """Returned by hook registration; ``remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, *hook_dicts: dict) -> None:
        self.id = next(RemovableHandle._next_id)
        self._dicts = hook_dicts

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _HookIdentity(Function):
    """Identity on a group of tensors whose backward reports their gradients."""

    @staticmethod
    def forward(ctx, callback, *tensors):
        ctx.callback = callback
        ctx.set_materialize_grads(False)
        return tuple(tensors)

    @staticmethod
    def backward(ctx, *grads):
        res = ctx.callback(grads)
        return (None, *(grads if res is None else res))


class _BackwardHookState:
    """Collects ``grad_output`` at the outputs, then calls the hooks at the inputs."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.grad_outputs = None
        self.n_inputs = 0
        self.inputs_need_grad = False
        self.input_mask: list = []

    def wrap_inputs(self, args: tuple) -> tuple:
        pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(pos)
        self.input_mask = [args[i].requires_grad for i in pos]
        self.inputs_need_grad = any(self.input_mask)
        if not self.inputs_need_grad:
            return args
        outs = _HookIdentity.apply(self._at_inputs, *(args[i] for i in pos))
        new = list(args)
        for i, t in zip(pos, outs):
            new[i] = t
        return tuple(new)

    def wrap_outputs(self, out):
        single = isinstance(out, Tensor)
        items = (out,) if single else out
        if not isinstance(items, tuple):
            return out
        pos = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o.requires_grad]
        if not pos:
            return out
        wrapped = _HookIdentity.apply(self._at_outputs, *(items[i] for i in pos))
        new = list(items)
        for i, t in zip(pos, wrapped):
            new[i] = t
        return new[0] if single else tuple(new)

    def _call_hooks(self, grad_input: tuple) -> tuple | None:
        replaced = None
        for hook in tuple(self.module._backward_hooks.values()):
            res = hook(self.module, replaced or grad_input, self.grad_outputs)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_input):
                    raise RuntimeError(
                        f"backward hook of {type(self.module).__name__} returned "
                        f"{len(res)} gradients, expected {len(grad_input)}"
                    )
                replaced = res
        return replaced

    def _at_outputs(self, grads: tuple):
        replaced = None
        for hook in tuple(self.module._backward_pre_hooks.values()):
            res = hook(self.module, replaced or grads)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grads):
                    raise RuntimeError(
                        f"backward pre-hook of {type(self.module).__name__} returned "
                        f"{len(res)} gradients, expected {len(grads)}"
                    )
                replaced = res
        self.grad_outputs = replaced or grads
        if not self.inputs_need_grad:
            self._call_hooks((None,) * max(self.n_inputs, 1))
        return replaced

    def _at_inputs(self, grads: tuple):
        grads = tuple(g if need else None for g, need in zip(grads, self.input_mask))
        return self._call_hooks(grads)
