"""Adadelta."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_bool, check_number


class Adadelta(Optimizer):
    """Adadelta (Zeiler), PyTorch's update rule.

    ``v = rho * v + (1 - rho) * g * g``; ``delta = sqrt(u + eps) / sqrt(v + eps) * g``;
    ``u = rho * u + (1 - rho) * delta * delta``; ``param -= lr * delta``.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: scale applied to the delta (default 1.0).
        rho: decay rate of the running averages (default 0.9).
        eps: added inside the square roots (default 1e-6).
        weight_decay: L2 penalty (default 0).
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.Adadelta([w], lr=1.0, rho=0.0, eps=1.0)
    >>> w.grad = cr.tensor([0.0])
    >>> _ = opt.step()
    >>> w
    tensor([1.], requires_grad=True)
    """

    _state_keys = frozenset({"step", "square_avg", "acc_delta"})

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        check_number("Adadelta", "learning rate", group["lr"])
        check_number("Adadelta", "rho value", group["rho"], 0.0, 1.0)
        check_number("Adadelta", "epsilon value", group["eps"])
        check_number("Adadelta", "weight_decay value", group["weight_decay"])
        check_bool("Adadelta", "maximize", group["maximize"])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            square_avgs, acc_deltas = [], []
            for p in ps:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["square_avg"] = _wrap(xp.zeros_like(p._data))
                    state["acc_delta"] = _wrap(xp.zeros_like(p._data))
                state["step"] += 1
                square_avgs.append(state["square_avg"]._data)
                acc_deltas.append(state["acc_delta"]._data)
            adadelta(params, grads, square_avgs, acc_deltas, lr=group["lr"], rho=group["rho"],
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"])
            self._bump(ps)
        return loss


def adadelta(params: list[np.ndarray], grads: list[np.ndarray], square_avgs: list[np.ndarray],
             acc_deltas: list[np.ndarray], *, lr: float, rho: float, eps: float,
             weight_decay: float, maximize: bool) -> None:
    """The Adadelta update on arrays, in place."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg = square_avgs[i]
        acc_delta = acc_deltas[i]
        std = grad * grad
        std *= 1 - rho
        square_avg *= rho
        square_avg += std
        xp.add(square_avg, eps, out=std)
        xp.sqrt(std, out=std)
        delta = acc_delta + eps
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= grad
        acc_delta *= rho
        xp.multiply(delta, delta, out=std)
        std *= 1 - rho
        acc_delta += std
        delta *= lr
        param -= delta
