"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._blas import axpby
from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_bool, check_number


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), PyTorch's update rule.

    With momentum ``mu`` the buffer starts as the first gradient and then follows
    ``b = mu * b + (1 - dampening) * g``; the step is ``b`` (or ``g + mu * b`` with
    ``nesterov``). ``maximize`` negates the gradient first; weight decay adds
    ``weight_decay * param`` to it.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = cr.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> _ = opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.8, 1.6]
    """

    _state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        check_number("SGD", "learning rate", group["lr"])
        check_number("SGD", "momentum value", group["momentum"])
        check_number("SGD", "dampening value", group["dampening"], lo=None)
        check_number("SGD", "weight_decay value", group["weight_decay"])
        check_bool("SGD", "nesterov", group["nesterov"])
        check_bool("SGD", "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero "
                             f"dampening, got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}")

    def step(self, closure: Callable | None = None):
        """Perform one SGD step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            use_momentum = group["momentum"] != 0
            bufs = []
            if use_momentum:
                for p in ps:
                    buf = self.state[p].get("momentum_buffer")
                    bufs.append(None if buf is None else buf._data)
            else:
                bufs = [None] * len(ps)
            sgd(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
                momentum=group["momentum"], dampening=group["dampening"],
                nesterov=group["nesterov"], maximize=group["maximize"])
            if use_momentum:
                for p, buf in zip(ps, bufs):
                    state = self.state[p]
                    old = state.get("momentum_buffer")
                    if old is None or old._data is not buf:
                        state["momentum_buffer"] = _wrap(buf)
            self._bump(ps)
        return loss


def sgd(params: list[np.ndarray], grads: list[np.ndarray],
        momentum_buffers: list[np.ndarray | None], *, lr: float, weight_decay: float,
        momentum: float, dampening: float, nesterov: bool, maximize: bool) -> None:
    """The SGD update on arrays, in place; fills None entries of ``momentum_buffers``."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                # The buffer starts as the first gradient: no dampening on the first step.
                buf = xp.array(grad, copy=True)
                momentum_buffers[i] = buf
            else:
                axpby(1 - dampening, grad, momentum, buf)  # buf = m buf + (1 - d) g
            grad = grad + momentum * buf if nesterov else buf
        axpby(-lr, grad, 1, param)
