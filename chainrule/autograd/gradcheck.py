"""Gradient checks: backprop against float64 central differences.

``gradcheck`` compares, for every input that requires grad, the analytic vector-Jacobian
products with numerical ones. Small inputs get the full Jacobian, column by column; large
ones (or ``fast_mode=True``) are checked by random projection: ``u^T J v`` from backprop
against the directional derivative of ``u^T f`` along ``v``. A failure reports, per input,
the worst element (or projection), the two values and their relative error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..tensor import Tensor, _wrap
from .engine import grad as _grad
from .grad_mode import enable_grad


class GradcheckError(AssertionError):
    """Raised by gradcheck on a mismatch (when ``raise_exception=True``)."""


def _as_tuple(x) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = _as_tuple(out)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _check_inputs(op: str, inputs) -> list[int]:
    idx = []
    for k, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != np.float64:
                raise TypeError(
                    f"{op}: input {k} is {x.dtype}; checks need float64 inputs for accurate "
                    f"finite differences (use x.double())"
                )
            idx.append(k)
    if not idx:
        raise ValueError(f"{op}: no input requires grad; nothing to check")
    return idx


def _flat_outputs(fn, inputs) -> np.ndarray:
    with enable_grad():
        outs = _outputs(fn, inputs)
    if not outs:
        return np.zeros(0)
    return np.concatenate([o._data.astype(np.float64).ravel() for o in outs])


def _numerical_column(fn, inputs, k, j, eps) -> np.ndarray:
    x = inputs[k]
    flat = x._data.reshape(-1)
    orig = flat[j]
    flat[j] = orig + eps
    plus = _flat_outputs(fn, inputs)
    flat[j] = orig - eps
    minus = _flat_outputs(fn, inputs)
    flat[j] = orig
    return (plus - minus) / (2 * eps)


def _report(k, shape, where, analytic, numeric, rel) -> str:
    return (f"  input {k} (shape {tuple(shape)}): worst at {where}: analytic {analytic:.6g} "
            f"vs numerical {numeric:.6g} (relative error {rel:.3g})")


def _rel(a, n, atol):
    return abs(a - n) / max(abs(n), atol, 1e-300)


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, fast_mode: bool = False,
              nondet_tol: float = 0.0, max_full: int = 4096, seed: int = 0) -> bool:
    """Check ``func``'s gradients w.r.t. every float64 input that requires grad.

    Args:
        func: maps the inputs to a tensor or tuple of tensors.
        inputs: a tensor or tuple; those with ``requires_grad`` are checked.
        eps: finite-difference step.
        atol, rtol: an element passes when ``|a - n| <= atol + rtol * |n|``.
        raise_exception: raise :class:`GradcheckError` with a per-input report on
            failure (else return False).
        fast_mode: check random projections instead of full Jacobians.
        max_full: inputs with more elements than this use projections anyway.
        seed: seed of the random projection vectors.

    Returns:
        True when every checked input passes.

    >>> import chainrule as cr
    >>> x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    >>> cr.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    idx = _check_inputs("gradcheck", inputs)
    with enable_grad():
        outs = _outputs(func, inputs)
    if not outs:
        raise ValueError("gradcheck: func returned no floating-point tensor outputs")
    sizes = [o._data.size for o in outs]
    total = sum(sizes)
    rng = np.random.default_rng(seed)
    failures = []
    for k in idx:
        x = inputs[k]
        n = x._data.size
        if n == 0 or total == 0:
            continue
        if fast_mode or n > max_full or total > max_full:
            fail = _check_projection(func, inputs, outs, sizes, k, eps, atol, rtol, rng)
        else:
            fail = _check_full(func, inputs, outs, sizes, k, eps, atol, rtol)
        if fail:
            failures.append(fail)
    if failures:
        if raise_exception:
            raise GradcheckError("gradcheck failed:\n" + "\n".join(failures))
        return False
    return True


def _vjp_rows(func, inputs, outs_sizes, k, u_flat) -> np.ndarray:
    """``u^T J`` for input k, by one backward pass with grad_outputs from ``u_flat``."""
    with enable_grad():
        outs = _outputs(func, inputs)
    gos = []
    start = 0
    for o in outs:
        s = o._data.size
        gos.append(_wrap(u_flat[start:start + s].reshape(o.shape).astype(o.dtype)))
        start += s
    (g,) = _grad(outs, [inputs[k]], gos, allow_unused=True)
    if g is None:
        return np.zeros(inputs[k]._data.size)
    return g._data.astype(np.float64).ravel()


def _check_full(func, inputs, outs, sizes, k, eps, atol, rtol) -> str | None:
    x = inputs[k]
    n = x._data.size
    total = sum(sizes)
    numeric = np.empty((total, n))
    for j in range(n):
        numeric[:, j] = _numerical_column(func, inputs, k, j, eps)
    analytic = np.empty((total, n))
    eye = np.eye(total)
    for r in range(total):
        analytic[r] = _vjp_rows(func, inputs, sizes, k, eye[r])
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if not bad.any():
        return None
    r, j = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
    where = f"element {np.unravel_index(j, x.shape) if x.ndim else ()} (output {r})"
    return _report(k, x.shape, where, analytic[r, j], numeric[r, j],
                   _rel(analytic[r, j], numeric[r, j], atol))


def _check_projection(func, inputs, outs, sizes, k, eps, atol, rtol, rng) -> str | None:
    x = inputs[k]
    total = sum(sizes)
    worst = None
    for trial in range(3):
        u = rng.standard_normal(total)
        v = rng.standard_normal(x._data.size)
        a = float(_vjp_rows(func, inputs, sizes, k, u) @ v)
        flat = x._data.reshape(-1)
        orig = flat.copy()
        flat += eps * v
        plus = _flat_outputs(func, inputs)
        flat[:] = orig - eps * v
        minus = _flat_outputs(func, inputs)
        flat[:] = orig
        nval = float(u @ ((plus - minus) / (2 * eps)))
        scale = np.sqrt(total * x._data.size)
        if abs(a - nval) > (atol * scale + rtol * abs(nval)):
            worst = _report(k, x.shape, f"random projection {trial}", a, nval,
                            _rel(a, nval, atol))
            break
    return worst


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
                  fast_mode: bool = False, seed: int = 0) -> bool:
    """Check second-order gradients: gradcheck of the first-order VJP of ``func``.

    The VJP ``(inputs, v) -> J(inputs)^T v`` is built with ``create_graph=True`` and
    checked w.r.t. the inputs and ``v`` (random when ``grad_outputs`` is None).

    >>> import chainrule as cr
    >>> x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    >>> cr.autograd.gradgradcheck(lambda t: (t.exp() * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    idx = _check_inputs("gradgradcheck", inputs)
    with enable_grad():
        outs = _outputs(func, inputs)
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        gos = [_wrap(rng.standard_normal(o.shape)).requires_grad_() for o in outs]
    else:
        gos = [g.detach().requires_grad_() if isinstance(g, Tensor) else
               _wrap(np.asarray(g, dtype=np.float64)).requires_grad_()
               for g in _as_tuple(grad_outputs)]
    n_in = len(inputs)

    def first_order(*args):
        xs = args[:n_in]
        vs = args[n_in:]
        with enable_grad():
            o = _outputs(func, xs)
            diff = [xs[k] for k in idx]
            gs = _grad(o, diff, list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, tuple(inputs) + tuple(gos), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode, seed=seed)


def check_vjp_shapes(grads: Sequence, inputs: Sequence) -> None:
    """Raise if gradients don't match their inputs' shapes (used by tests and tools)."""
    for k, (g, x) in enumerate(zip(grads, inputs)):
        if g is not None and tuple(g.shape) != tuple(x.shape):
            raise GradcheckError(f"gradient {k} has shape {tuple(g.shape)}, input has "
                                 f"{tuple(x.shape)}")
