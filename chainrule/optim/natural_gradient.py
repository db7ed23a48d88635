"""Natural gradient descent with the exact empirical Fisher, for tiny models.

The closure returns the per-sample losses ``l_1 .. l_N`` (a vector, e.g. a loss with
``reduction="none"``); the objective is their mean ``L``. With ``J`` the ``N x n``
matrix of per-sample gradients (one backward pass per sample), the empirical Fisher is

    F = (1/N) J^T J        and the step is    d = -(F + damping I)^+ grad L,

where ``grad L = (1/N) J^T 1``. When ``N <= n`` the solve runs in sample space through
the identity ``(J^T J / N + lam I)^{-1} J^T = J^T (J J^T / N + lam I)^{-1}``, so
``d = -J^T (J J^T + N lam I)^+ 1``: an ``N x N`` system, exact and well conditioned even
for a tiny damping. With ``damping=0`` the pseudo-inverse gives the minimum-norm natural
gradient (the exact ``F^+ grad``, which lies in the range of ``F``).

This is the reference K-FAC is tested against: for one linear layer and one sample the
per-sample weight gradient is ``g a^T``, so ``F = (a a^T) kron (g g^T)`` exactly and
``F^+ = (a a^T)^+ kron (g g^T)^+``, which is what K-FAC computes with ``damping=0``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor, _wrap
from .optimizer import Optimizer, check_number


class NaturalGradient(Optimizer):
    """Natural gradient descent with the exact (empirical) Fisher; for tiny models only.

    ``step(closure)`` needs a closure that clears the gradients and returns the vector of
    per-sample losses (shape ``(N,)``); the optimized objective is their mean. Each step
    costs one backward pass per sample and an ``n x n`` (or ``N x N``) solve.

    Args:
        params: tensors to optimize (one group).
        lr: learning rate (default 1).
        damping: Tikhonov damping added to the Fisher, ``>= 0`` (default 1e-3); 0 uses the
            pseudo-inverse.
        max_params: largest number of parameter entries allowed (default 2000).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 1.0], dtype=cr.float64, requires_grad=True)
    >>> x = cr.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=cr.float64)
    >>> opt = cr.optim.NaturalGradient([w], lr=0.5, damping=0.0)
    >>> def closure():
    ...     opt.zero_grad()
    ...     return 0.5 * (x @ w) ** 2
    >>> _ = opt.step(closure)
    >>> [round(v, 6) for v in w.tolist()]
    [0.5, 0.875]
    """

    _state_keys = frozenset({"step"})

    def __init__(self, params, lr: float = 1.0, damping: float = 1e-3,
                 max_params: int = 2000) -> None:
        defaults = dict(lr=lr, damping=damping, max_params=max_params)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("NaturalGradient doesn't support per-parameter options "
                             "(parameter groups)")
        self._params = self.param_groups[0]["params"]
        numel = sum(p._data.size for p in self._params)
        if numel > max_params:
            raise ValueError(
                f"NaturalGradient: the parameters hold {numel} values, more than "
                f"max_params={max_params}; the exact Fisher is for tiny models. Use "
                f"cr.optim.KFAC (Kronecker-factored) for networks"
            )

    def _validate(self, group: dict) -> None:
        check_number("NaturalGradient", "learning rate", group["lr"])
        check_number("NaturalGradient", "damping", group["damping"])
        v = group["max_params"]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"NaturalGradient: invalid max_params: {v!r} (expected an int "
                             f">= 1)")

    def add_param_group(self, param_group: dict) -> None:
        """Not supported: NaturalGradient works on a single parameter group."""
        raise ValueError("NaturalGradient doesn't support per-parameter options "
                         "(parameter groups)")

    def per_sample_grads(self, losses: Tensor) -> np.ndarray:
        """The ``N x n`` matrix of per-sample gradients of ``losses`` (float64)."""
        rows = []
        flat = losses.reshape(-1)
        n = flat.shape[0]
        for i in range(n):
            e = np.zeros(n, dtype=flat.dtype)
            e[i] = 1.0
            with enable_grad():
                gs = _grad(flat, self._params, _wrap(e), retain_graph=True,
                           allow_unused=True)
            rows.append(np.concatenate([
                np.zeros(p._data.size) if g is None
                else np.asarray(g._data, dtype=np.float64).reshape(-1)
                for g, p in zip(gs, self._params)
            ]))
        return np.stack(rows)

    def step(self, closure: Callable | None = None):
        """Take one natural-gradient step; returns the mean loss before it.

        Args:
            closure: required; clears the gradients and returns the per-sample losses.
        """
        if closure is None or not callable(closure):
            raise RuntimeError("NaturalGradient.step: a closure is required (a function "
                               "that zeroes the gradients and returns per-sample losses)")
        group = self.param_groups[0]
        with enable_grad():
            losses = closure()
        if not isinstance(losses, Tensor) or losses.ndim > 1 or losses.numel() == 0:
            got = (f"shape {tuple(losses.shape)}" if isinstance(losses, Tensor)
                   else type(losses).__name__)
            raise TypeError(f"NaturalGradient.step: the closure must return a vector of "
                            f"per-sample losses (shape (N,)), got {got}")
        if not losses.requires_grad:
            raise RuntimeError("NaturalGradient.step: the closure's losses do not depend on "
                               "the parameters (they do not require grad)")
        J = self.per_sample_grads(losses)
        d = natural_gradient_direction(J, group["damping"])
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += (group["lr"] * d[offset:offset + n]).reshape(p.shape).astype(p.dtype)
            offset += n
        self._bump(self._params)
        state = self.state[self._params[0]]
        state["step"] = state.get("step", 0) + 1
        return losses.detach().mean()


def natural_gradient_direction(J: np.ndarray, damping: float) -> np.ndarray:
    """``-(J^T J / N + damping I)^+ (J^T 1 / N)`` for per-sample gradients ``J (N, n)``.

    >>> import numpy as np
    >>> natural_gradient_direction(np.array([[2.0, 1.0]]), 0.0).round(6).tolist()
    [-0.4, -0.2]
    """
    N, n = J.shape
    if N <= n:
        K = J @ J.T + N * damping * np.eye(N)
        c = np.linalg.pinv(K, hermitian=True) @ np.ones(N)
        return -(J.T @ c)
    F = J.T @ J / N + damping * np.eye(n)
    return -(np.linalg.pinv(F, hermitian=True) @ J.mean(axis=0))
