"""RAdam: Adam with a rectified adaptive learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_betas, check_bool, check_number


class RAdam(Optimizer):
    """RAdam (Liu et al.), PyTorch's update rule.

    With ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``, the step is the bias-corrected
    first moment times ``lr``; once ``rho_t > 5`` it is further scaled by the adaptive rate
    ``sqrt(1 - beta2**t) / (sqrt(v) + eps)`` and the rectification term
    ``sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the moment estimates (0.9, 0.999).
        eps: added to the denominator (default 1e-8).
        weight_decay: weight decay (default 0).
        decoupled_weight_decay: shrink the parameter like AdamW instead of adding an L2
            term to the gradient.
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.RAdam([w], lr=0.1)
    >>> w.grad = cr.tensor([2.0])
    >>> _ = opt.step()
    >>> round(w.item(), 4)
    0.8
    """

    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        check_number("RAdam", "learning rate", group["lr"])
        check_number("RAdam", "epsilon value", group["eps"])
        check_betas("RAdam", group["betas"])
        check_number("RAdam", "weight_decay value", group["weight_decay"])
        check_bool("RAdam", "decoupled_weight_decay", group["decoupled_weight_decay"])
        check_bool("RAdam", "maximize", group["maximize"])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            exp_avgs, exp_avg_sqs, steps = [], [], []
            for p in ps:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = _wrap(xp.zeros_like(p._data))
                    state["exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                state["step"] += 1
                steps.append(state["step"])
                exp_avgs.append(state["exp_avg"]._data)
                exp_avg_sqs.append(state["exp_avg_sq"]._data)
            beta1, beta2 = group["betas"]
            radam(params, grads, exp_avgs, exp_avg_sqs, steps, beta1=beta1, beta2=beta2,
                  lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                  decoupled_weight_decay=group["decoupled_weight_decay"],
                  maximize=group["maximize"])
            self._bump(ps)
        return loss


def radam(params: list[np.ndarray], grads: list[np.ndarray], exp_avgs: list[np.ndarray],
          exp_avg_sqs: list[np.ndarray], steps: list[int], *, beta1: float, beta2: float,
          lr: float, weight_decay: float, eps: float, decoupled_weight_decay: bool,
          maximize: bool) -> None:
    """The RAdam update on arrays, in place (``steps`` already incremented)."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        step = steps[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        tmp = grad * grad
        tmp *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += tmp
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        # NOTE: the adaptive, rectified step starts only once the variance is tractable.
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            xp.sqrt(exp_avg_sq, out=tmp)
            tmp += eps
            xp.divide(exp_avg, tmp, out=tmp)
            tmp *= lr / bias_correction1 * bias_correction2**0.5 * rect
        else:
            xp.multiply(exp_avg, lr / bias_correction1, out=tmp)
        param -= tmp
