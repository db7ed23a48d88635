"""Adagrad, with learning-rate decay and an initial accumulator value."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_bool, check_number


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's update rule.

    ``sum += g * g`` and ``param -= clr * g / (sqrt(sum) + eps)`` with the decayed rate
    ``clr = lr / (1 + (t - 1) * lr_decay)`` at step ``t``. The state (``sum`` filled with
    ``initial_accumulator_value``) is created with the optimizer, as in PyTorch.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay (default 0).
        weight_decay: L2 penalty (default 0).
        initial_accumulator_value: starting value of the sum of squares (default 0).
        eps: added to the denominator (default 1e-10).
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.Adagrad([w], lr=0.5)
    >>> w.grad = cr.tensor([3.0])
    >>> _ = opt.step()
    >>> round(w.item(), 4)
    0.5
    """

    _state_keys = frozenset({"step", "sum"})

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            self._init_group_state(group)

    def _validate(self, group: dict) -> None:
        check_number("Adagrad", "learning rate", group["lr"])
        check_number("Adagrad", "lr_decay value", group["lr_decay"])
        check_number("Adagrad", "weight_decay value", group["weight_decay"])
        check_number("Adagrad", "initial_accumulator_value", group["initial_accumulator_value"])
        check_number("Adagrad", "epsilon value", group["eps"])
        check_bool("Adagrad", "maximize", group["maximize"])

    def _init_group_state(self, group: dict) -> None:
        for p in group["params"]:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["sum"] = _wrap(xp.full_like(p._data, group["initial_accumulator_value"]))

    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group and create its state (see ``Optimizer.add_param_group``)."""
        super().add_param_group(param_group)
        self._init_group_state(self.param_groups[-1])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            self._init_group_state(group)
            sums, steps = [], []
            for p in ps:
                state = self.state[p]
                state["step"] += 1
                steps.append(state["step"])
                sums.append(state["sum"]._data)
            adagrad(params, grads, sums, steps, lr=group["lr"], lr_decay=group["lr_decay"],
                    weight_decay=group["weight_decay"], eps=group["eps"],
                    maximize=group["maximize"])
            self._bump(ps)
        return loss


def adagrad(params: list[np.ndarray], grads: list[np.ndarray], state_sums: list[np.ndarray],
            steps: list[int], *, lr: float, lr_decay: float, weight_decay: float, eps: float,
            maximize: bool) -> None:
    """The Adagrad update on arrays, in place (``steps`` already incremented)."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        clr = lr / (1 + (steps[i] - 1) * lr_decay)
        state_sum = state_sums[i]
        std = grad * grad
        state_sum += std
        xp.sqrt(state_sum, out=std)
        std += eps
        xp.divide(grad, std, out=std)
        std *= clr
        param -= std
