"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_betas, check_bool, check_number


class NAdam(Optimizer):
    """NAdam (Dozat), PyTorch's update rule.

    The momentum factor follows ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``
    and its running product ``mu_product`` is kept in the state. The step combines the
    current gradient and the first moment::

        denom = sqrt(v / (1 - beta2**t)) + eps
        param -= lr * (1 - mu_t) / (1 - mu_product_t) * g / denom
        param -= lr * mu_{t+1} / (1 - mu_product_t * mu_{t+1}) * m / denom

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the moment estimates (0.9, 0.999).
        eps: added to the denominator (default 1e-8).
        weight_decay: weight decay (default 0).
        momentum_decay: the momentum decay psi (default 4e-3).
        decoupled_weight_decay: shrink the parameter like AdamW instead of adding an L2
            term to the gradient.
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.NAdam([w])
    >>> w.grad = cr.tensor([1.0])
    >>> _ = opt.step()
    >>> bool(w < 1.0)
    True
    """

    _state_keys = frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        check_number("NAdam", "learning rate", group["lr"])
        check_number("NAdam", "epsilon value", group["eps"])
        check_betas("NAdam", group["betas"])
        check_number("NAdam", "weight_decay value", group["weight_decay"])
        check_number("NAdam", "momentum_decay value", group["momentum_decay"])
        check_bool("NAdam", "decoupled_weight_decay", group["decoupled_weight_decay"])
        check_bool("NAdam", "maximize", group["maximize"])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            exp_avgs, exp_avg_sqs, steps, mu_products = [], [], [], []
            for p in ps:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["mu_product"] = 1.0
                    state["exp_avg"] = _wrap(xp.zeros_like(p._data))
                    state["exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                state["step"] += 1
                steps.append(state["step"])
                mu_products.append(state["mu_product"])
                exp_avgs.append(state["exp_avg"]._data)
                exp_avg_sqs.append(state["exp_avg_sq"]._data)
            beta1, beta2 = group["betas"]
            nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps, beta1=beta1,
                  beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
                  momentum_decay=group["momentum_decay"], eps=group["eps"],
                  decoupled_weight_decay=group["decoupled_weight_decay"],
                  maximize=group["maximize"])
            for p, mu_product in zip(ps, mu_products):
                self.state[p]["mu_product"] = mu_product
            self._bump(ps)
        return loss


def nadam(params: list[np.ndarray], grads: list[np.ndarray], exp_avgs: list[np.ndarray],
          exp_avg_sqs: list[np.ndarray], mu_products: list[float], steps: list[int], *,
          beta1: float, beta2: float, lr: float, weight_decay: float, momentum_decay: float,
          eps: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """The NAdam update on arrays, in place; ``mu_products`` entries are updated."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        step = steps[i]
        bias_correction2 = 1 - beta2**step
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        mu_product = mu_products[i] * mu
        mu_products[i] = mu_product
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        denom = grad * grad
        denom *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += denom
        xp.divide(exp_avg_sq, bias_correction2, out=denom)
        xp.sqrt(denom, out=denom)
        denom += eps
        mu_product_next = mu_product * mu_next
        tmp = grad / denom
        tmp *= lr * (1.0 - mu) / (1.0 - mu_product)
        param -= tmp
        xp.divide(exp_avg, denom, out=tmp)
        tmp *= lr * mu_next / (1.0 - mu_product_next)
        param -= tmp
