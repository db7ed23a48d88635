"""Damped Newton / Levenberg-Marquardt steps for models with few parameters.

Each ``step`` differentiates the closure's loss twice. With ``hvp=False`` it builds the
exact Hessian one row at a time (a double backward per parameter entry, the same rows
``cr.func.hessian`` stacks) and solves ``(H + lambda I) d = -g`` by a Cholesky
factorisation; with ``hvp=True`` it never forms ``H`` and runs conjugate gradient on
Hessian-vector products instead (Newton-CG, "Hessian-free").

The damping ``lambda`` follows the Levenberg-Marquardt rule when ``adaptive=True``: a
step that lowers the loss is kept and ``lambda`` shrinks; a step that does not is undone
and retried with a larger ``lambda`` (up to ``max_tries`` times per ``step``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor, _wrap
from .optimizer import Optimizer, _as_number, check_bool, check_number


class Newton(Optimizer):
    """Damped Newton / Levenberg-Marquardt with the exact Hessian (or CG on its products).

    Needs a closure that clears the gradients, computes the loss and returns it (no
    ``backward`` call is needed: the optimizer differentiates the loss itself, with
    ``create_graph=True``). One ``step`` is one Newton iteration, which may evaluate the
    closure several times while it searches for a damping that lowers the loss. Works on a
    single parameter group; the state (current damping, iteration and evaluation counts)
    lives under the first parameter.

    The exact Hessian costs one backward pass per parameter entry and ``n^2`` memory, so
    the number of parameter entries is limited by ``max_params``; for bigger models use
    :class:`~chainrule.optim.LBFGS`.

    Args:
        params: tensors to optimize (one group).
        lr: step length along the Newton direction (default 1).
        damping: initial Levenberg-Marquardt damping ``lambda >= 0`` (default 1e-3).
        adaptive: adapt ``lambda`` (default True): multiply it by ``damping_decrease``
            after a step that does not raise the loss (beyond its rounding error), and undo
            a step that raises it and retry with ``lambda * damping_increase``. With False
            every step is taken.
        damping_increase: factor > 1 applied to ``lambda`` after a rejected step (10).
        damping_decrease: factor in (0, 1] applied after an accepted step (0.1).
        min_damping: ``lambda`` never drops below this (default 0).
        max_tries: damping retries per step before giving up and leaving the parameters
            unchanged (default 20).
        max_params: largest number of parameter entries allowed (default 1000).
        hvp: solve by conjugate gradient on Hessian-vector products instead of forming the
            Hessian (default False).
        cg_iters: most CG iterations per solve (default 50).
        cg_tol: CG stops when the residual norm falls below ``cg_tol * |g|`` (1e-10).
        tolerance_grad: skip the step when the largest gradient entry is at most this
            (default 0: never skip).

    >>> import chainrule as cr
    >>> x = cr.tensor([3.0, -2.0], dtype=cr.float64, requires_grad=True)
    >>> opt = cr.optim.Newton([x], damping=0.0)
    >>> def closure():
    ...     opt.zero_grad()
    ...     return ((x - 1.0) ** 2).sum() + (x ** 4).sum()
    >>> for _ in range(8):
    ...     _ = opt.step(closure)
    >>> [round(v, 6) for v in x.tolist()]
    [0.589755, 0.589755]
    """

    _state_keys = frozenset({"damping", "n_iter", "func_evals"})
    _scalar_state_keys = _state_keys

    def __init__(self, params, lr: float = 1.0, damping: float = 1e-3, adaptive: bool = True,
                 damping_increase: float = 10.0, damping_decrease: float = 0.1,
                 min_damping: float = 0.0, max_tries: int = 20, max_params: int = 1000,
                 hvp: bool = False, cg_iters: int = 50, cg_tol: float = 1e-10,
                 tolerance_grad: float = 0.0) -> None:
        defaults = dict(lr=lr, damping=damping, adaptive=adaptive,
                        damping_increase=damping_increase, damping_decrease=damping_decrease,
                        min_damping=min_damping, max_tries=max_tries, max_params=max_params,
                        hvp=hvp, cg_iters=cg_iters, cg_tol=cg_tol,
                        tolerance_grad=tolerance_grad)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("Newton doesn't support per-parameter options (parameter groups)")
        _check_size(sum(p._data.size for p in self.param_groups[0]["params"]),
                    self.param_groups[0])
        self._params = self.param_groups[0]["params"]

    def _validate(self, group: dict) -> None:
        check_number("Newton", "learning rate", group["lr"], lo_open=True)
        check_number("Newton", "damping", group["damping"])
        check_bool("Newton", "adaptive", group["adaptive"])
        check_number("Newton", "damping_increase", group["damping_increase"], lo=1.0,
                     lo_open=True)
        check_number("Newton", "damping_decrease", group["damping_decrease"], hi=1.0,
                     lo_open=True)
        check_number("Newton", "min_damping", group["min_damping"])
        check_bool("Newton", "hvp", group["hvp"])
        check_number("Newton", "cg_tol", group["cg_tol"])
        check_number("Newton", "tolerance_grad", group["tolerance_grad"])
        for key in ("max_tries", "max_params", "cg_iters"):
            v = group[key]
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Newton: invalid {key}: {v!r} (expected an int >= 1)")

    def add_param_group(self, param_group: dict) -> None:
        """Not supported: Newton works on a single parameter group."""
        raise ValueError("Newton doesn't support per-parameter options (parameter groups)")

    # ------------------------------------------------------------------ helpers
    def _flat(self, tensors) -> np.ndarray:
        parts = []
        for p, t in zip(self._params, tensors):
            if t is None:
                parts.append(np.zeros(p._data.size, dtype=np.float64))
            else:
                parts.append(np.asarray(t._data, dtype=np.float64).reshape(-1))
        return np.concatenate(parts)

    def _split(self, flat: np.ndarray) -> list[Tensor]:
        out = []
        offset = 0
        for p in self._params:
            n = p._data.size
            out.append(_wrap(flat[offset:offset + n].reshape(p._data.shape).astype(p.dtype)))
            offset += n
        return out

    def _add(self, flat: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += flat[offset:offset + n].reshape(p._data.shape).astype(p.dtype)
            offset += n
        self._bump(self._params)

    def _set(self, data: list[np.ndarray]) -> None:
        for p, d in zip(self._params, data):
            np.copyto(p._data, d)
        self._bump(self._params)

    def _loss_and_grads(self, closure):
        with enable_grad():
            loss = closure()
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                got = (f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor)
                       else type(loss).__name__)
                raise TypeError(f"Newton.step: the closure must return a one-element loss "
                                f"tensor, got {got}")
            if not loss.requires_grad:
                raise RuntimeError("Newton.step: the closure's loss does not depend on the "
                                   "parameters (it does not require grad); compute it with "
                                   "grad mode on from the optimized tensors")
            grads = _grad(loss, self._params, create_graph=True, allow_unused=True)
        return loss, grads

    def _hvp_fn(self, grads) -> Callable[[np.ndarray], np.ndarray]:
        """``v -> H v`` by a second backward through the first-order gradients."""
        live = [(g, p) for g, p in zip(grads, self._params)
                if g is not None and g.requires_grad]

        def hvp(v: np.ndarray) -> np.ndarray:
            if not live:
                return np.zeros_like(v)
            vs = self._split(v)
            outs = [g for g, _ in live]
            gos = [vs[self._index(p)] for _, p in live]
            with enable_grad():
                hv = _grad(outs, self._params, gos, retain_graph=True, allow_unused=True)
            return self._flat(hv)

        return hvp

    def _index(self, p: Tensor) -> int:
        for k, q in enumerate(self._params):
            if q is p:
                return k
        raise KeyError("parameter not found")

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable | None = None):
        """Run one damped Newton iteration; returns the closure's loss before the step.

        Args:
            closure: required; clears the gradients, computes the loss and returns it.
        """
        if closure is None or not callable(closure):
            raise RuntimeError("Newton.step: a closure is required (a function that zeroes "
                               "the gradients, computes the loss and returns it)")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        lam = float(state.get("damping", group["damping"]))
        state.setdefault("n_iter", 0)
        state.setdefault("func_evals", 0)

        loss, grads = self._loss_and_grads(closure)
        state["func_evals"] += 1
        state["n_iter"] += 1
        f0 = float(loss._data)
        g = self._flat(grads)
        if not np.all(np.isfinite(g)):
            raise RuntimeError("Newton.step: the gradient has non-finite entries")
        if np.abs(g).max(initial=0.0) <= group["tolerance_grad"]:
            state["damping"] = lam
            return loss.detach()
        hvp = self._hvp_fn(grads)
        H = None
        if not group["hvp"]:
            n = g.size
            H = np.empty((n, n))
            e = np.zeros(n)
            for i in range(n):
                e[i] = 1.0
                H[i] = hvp(e)
                e[i] = 0.0
            H = 0.5 * (H + H.T)

        # Near the optimum the loss changes by less than its rounding error; a step that
        # "raises" it by no more than that is noise, not a failure.
        noise = 4 * float(np.finfo(loss.dtype).eps) * abs(f0)
        saved = [p._data.copy() for p in self._params]
        for _ in range(group["max_tries"]):
            if H is not None:
                d = newton_direction(H, g, lam)
            else:
                d = cg_direction(hvp, g, lam, group["cg_iters"], group["cg_tol"])
            if d is None:  # not positive definite at this damping
                lam = _increase(lam, group)
                continue
            self._add(group["lr"] * d)
            if not group["adaptive"]:
                break
            with enable_grad():
                trial = closure()
            state["func_evals"] += 1
            f1 = float(trial._data) if isinstance(trial, Tensor) else float(trial)
            if np.isfinite(f1) and f1 <= f0 + noise:
                lam = max(lam * group["damping_decrease"], group["min_damping"])
                break
            self._set(saved)
            lam = _increase(lam, group)
            if H is None:
                # Restoring the parameters bumped their versions, so the saved graph of the
                # gradients is stale: rebuild it for the next round of products.
                _, grads = self._loss_and_grads(closure)
                state["func_evals"] += 1
                hvp = self._hvp_fn(grads)
        # Without adaptation an indefinite system still raises lambda, for this step only.
        state["damping"] = lam if group["adaptive"] else group["damping"]
        return loss.detach()

    def _load_state_value(self, key: str, value, param: Tensor, idx: int):
        return _as_number(value, f"Newton.load_state_dict: state {key!r}")


def _increase(lam: float, group: dict) -> float:
    """The next damping after a rejected step (a zero damping jumps to a small one)."""
    return max(lam * group["damping_increase"], 1e-8, group["min_damping"])


def _check_size(numel: int, group: dict) -> None:
    limit = group["max_params"]
    if numel > limit:
        alt = "" if group["hvp"] else " or hvp=True (conjugate gradient, no Hessian matrix)"
        raise ValueError(
            f"Newton: the parameters hold {numel} values, more than max_params={limit}; "
            f"the exact Hessian needs {numel}x{numel} entries and a backward pass per "
            f"value. Use cr.optim.LBFGS for models this size, raise max_params{alt}"
        )


def newton_direction(H: np.ndarray, g: np.ndarray, damping: float) -> np.ndarray | None:
    """Solve ``(H + damping I) d = -g`` by Cholesky; None if it is not positive definite.

    >>> import numpy as np
    >>> newton_direction(np.diag([4.0, 4.0]), np.array([2.0, 4.0]), 0.0).tolist()
    [-0.5, -1.0]
    """
    A = H + damping * np.eye(H.shape[0])
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(L, -g)
    return np.linalg.solve(L.T, y)


def cg_direction(hvp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, damping: float,
                 max_iter: int, tol: float) -> np.ndarray | None:
    """Conjugate gradient on ``(H + damping I) d = -g`` using only products ``H v``.

    Stops after ``max_iter`` iterations or when the residual is below ``tol * |g|``. On
    negative curvature it returns the iterate so far, or None when that is still zero
    (the caller then raises the damping).

    >>> import numpy as np
    >>> H = np.array([[3.0, 1.0], [1.0, 2.0]])
    >>> d = cg_direction(lambda v: H @ v, np.array([1.0, 1.0]), 0.0, 10, 1e-12)
    >>> np.allclose(H @ d, [-1.0, -1.0])
    True
    """
    x = np.zeros_like(g)
    r = -g.copy()
    p = r.copy()
    rr = float(r @ r)
    stop = tol * np.sqrt(rr)
    for _ in range(max_iter):
        if np.sqrt(rr) <= stop:
            break
        Ap = hvp(p) + damping * p
        pAp = float(p @ Ap)
        if not np.isfinite(pAp) or pAp <= 0:
            return x if np.any(x) else None
        alpha = rr / pAp
        x += alpha * p
        r -= alpha * Ap
        rr_new = float(r @ r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x
