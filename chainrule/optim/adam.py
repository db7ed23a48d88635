"""Adam, with optional AMSGrad, L2 weight decay and maximize."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._blas import axpby
from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_betas, check_bool, check_number


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's update rule.

    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g * g``, then
    ``param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``. With
    ``amsgrad`` the running maximum of ``v`` replaces ``v`` in the denominator. Weight
    decay is L2 (added to the gradient); see :class:`AdamW` for the decoupled form.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment estimates (0.9, 0.999).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty (default 0).
        amsgrad: use the AMSGrad variant.
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = cr.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> _ = opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9, -0.9]
    """

    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        name = type(self).__name__
        check_number(name, "learning rate", group["lr"])
        check_number(name, "epsilon value", group["eps"])
        check_betas(name, group["betas"])
        check_number(name, "weight_decay value", group["weight_decay"])
        check_bool(name, "amsgrad", group["amsgrad"])
        check_bool(name, "maximize", group["maximize"])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            amsgrad = group["amsgrad"]
            exp_avgs, exp_avg_sqs, max_sqs, steps = [], [], [], []
            for p in ps:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = _wrap(xp.zeros_like(p._data))
                    state["exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                    if amsgrad:
                        state["max_exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                elif amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                state["step"] += 1
                steps.append(state["step"])
                exp_avgs.append(state["exp_avg"]._data)
                exp_avg_sqs.append(state["exp_avg_sq"]._data)
                max_sqs.append(state["max_exp_avg_sq"]._data if amsgrad else None)
            beta1, beta2 = group["betas"]
            adam(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, amsgrad=amsgrad,
                 beta1=beta1, beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
                 eps=group["eps"], maximize=group["maximize"], decoupled=self._decoupled)
            self._bump(ps)
        return loss


def adam(params: list[np.ndarray], grads: list[np.ndarray], exp_avgs: list[np.ndarray],
         exp_avg_sqs: list[np.ndarray], max_exp_avg_sqs: list[np.ndarray | None],
         steps: list[int], *, amsgrad: bool, beta1: float, beta2: float, lr: float,
         weight_decay: float, eps: float, maximize: bool, decoupled: bool = False) -> None:
    """The Adam / AdamW update on arrays, in place (``steps`` already incremented).

    ``decoupled=True`` gives AdamW: the parameter shrinks by ``lr * weight_decay`` before
    the update instead of the decay being added to the gradient.
    """
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            if decoupled:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        step = steps[i]
        axpby(1 - beta1, grad, beta1, exp_avg)
        tmp = grad * grad
        tmp *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += tmp
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        step_size = lr / bias_correction1
        if amsgrad:
            xp.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            xp.sqrt(max_exp_avg_sqs[i], out=tmp)
        else:
            xp.sqrt(exp_avg_sq, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += eps
        xp.divide(exp_avg, tmp, out=tmp)
        axpby(-step_size, tmp, 1, param)
