"""RMSprop, optionally centered and with momentum."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backend import xp
from ..tensor import _wrap
from .optimizer import Optimizer, check_bool, check_number


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's update rule.

    ``v = alpha * v + (1 - alpha) * g * g``; the denominator is ``sqrt(v) + eps``, or with
    ``centered`` ``sqrt(v - avg**2) + eps`` where ``avg`` is the running mean of ``g``. With
    momentum ``mu``: ``b = mu * b + g / denom`` and ``param -= lr * b``; otherwise
    ``param -= lr * g / denom``.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance.
        maximize: maximize the objective instead of minimizing it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad = cr.tensor([2.0])
    >>> _ = opt.step()
    >>> round(w.item(), 4)
    0.98
    """

    _state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        check_number("RMSprop", "learning rate", group["lr"])
        check_number("RMSprop", "epsilon value", group["eps"])
        check_number("RMSprop", "momentum value", group["momentum"])
        check_number("RMSprop", "weight_decay value", group["weight_decay"])
        check_number("RMSprop", "alpha value", group["alpha"])
        check_bool("RMSprop", "centered", group["centered"])
        check_bool("RMSprop", "maximize", group["maximize"])

    def step(self, closure: Callable | None = None):
        """Perform one step; returns the closure's loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            ps, params, grads = self._params_with_grad(group)
            square_avgs, grad_avgs, bufs = [], [], []
            for p in ps:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["square_avg"] = _wrap(xp.zeros_like(p._data))
                if group["momentum"] > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = _wrap(xp.zeros_like(p._data))
                if group["centered"] and "grad_avg" not in state:
                    state["grad_avg"] = _wrap(xp.zeros_like(p._data))
                state["step"] += 1
                square_avgs.append(state["square_avg"]._data)
                bufs.append(state["momentum_buffer"]._data if group["momentum"] > 0 else None)
                grad_avgs.append(state["grad_avg"]._data if group["centered"] else None)
            rmsprop(params, grads, square_avgs, grad_avgs, bufs, lr=group["lr"],
                    alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                    momentum=group["momentum"], centered=group["centered"],
                    maximize=group["maximize"])
            self._bump(ps)
        return loss


def rmsprop(params: list[np.ndarray], grads: list[np.ndarray], square_avgs: list[np.ndarray],
            grad_avgs: list[np.ndarray | None], momentum_buffers: list[np.ndarray | None], *,
            lr: float, alpha: float, eps: float, weight_decay: float, momentum: float,
            centered: bool, maximize: bool) -> None:
    """The RMSprop update on arrays, in place."""
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg = square_avgs[i]
        avg = grad * grad
        avg *= 1 - alpha
        square_avg *= alpha
        square_avg += avg
        if centered:
            grad_avg = grad_avgs[i]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            xp.multiply(grad_avg, grad_avg, out=avg)
            xp.subtract(square_avg, avg, out=avg)
            xp.sqrt(avg, out=avg)
        else:
            xp.sqrt(square_avg, out=avg)
        avg += eps
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= momentum
            xp.divide(grad, avg, out=avg)
            buf += avg
            param -= lr * buf
        else:
            xp.divide(grad, avg, out=avg)
            avg *= lr
            param -= avg
