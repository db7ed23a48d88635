"""Curvature of a loss: top Hessian eigenvalues and the Hessian trace.

Both use only Hessian-vector products, ``H v = d/dp (grad(L) . v)``, computed with
``autograd.grad(..., create_graph=True)``: the Hessian itself is never formed, so these
work for any number of parameters. Vector arithmetic is done in float64 NumPy; for
eigenvalues accurate to ~1e-6 use float64 parameters (float32 HVPs carry ~1e-7
relative rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor, _wrap
from ._graph import check_scalar, param_list


class _HVP:
    """Hessian-vector products of ``loss_fn()`` w.r.t. ``params`` on flat float64 vectors."""

    def __init__(self, op: str, loss_fn: Callable[[], Tensor], params) -> None:
        if not callable(loss_fn):
            raise TypeError(f"{op}: loss_fn must be a zero-argument callable returning the "
                            f"loss, got {type(loss_fn).__name__}")
        self.params = param_list(op, params)
        with enable_grad():
            loss = check_scalar(op, loss_fn())
            if not loss.requires_grad:
                raise ValueError(f"{op}: the loss returned by loss_fn does not require grad; "
                                 f"it must be computed from params with grad mode on")
            gs = _grad(loss, self.params, create_graph=True, allow_unused=True)
        self.loss = float(loss.item())
        self.grads = list(gs)
        self.sizes = [p.numel() for p in self.params]
        self.n = int(sum(self.sizes))

    def __call__(self, v: np.ndarray) -> np.ndarray:
        live_g = []
        live_v = []
        offset = 0
        for p, g, size in zip(self.params, self.grads, self.sizes):
            piece = v[offset:offset + size].reshape(p.shape)
            offset += size
            if g is not None and g.requires_grad:
                live_g.append(g)
                live_v.append(_wrap(piece.astype(p.dtype)))
        out = np.zeros(self.n, dtype=np.float64)
        if not live_g:
            return out
        with enable_grad():
            hv = _grad(live_g, self.params, live_v, retain_graph=True, allow_unused=True)
        offset = 0
        for h, size in zip(hv, self.sizes):
            if h is not None:
                out[offset:offset + size] = h._data.reshape(-1)
            offset += size
        return out

    def unflatten(self, v: np.ndarray) -> list:
        res = []
        offset = 0
        for p, size in zip(self.params, self.sizes):
            res.append(_wrap(v[offset:offset + size].reshape(p.shape).copy()))
            offset += size
        return res


def hessian_eigs(loss_fn: Callable[[], Tensor], params, k: int = 1, iters: int = 100,
                 tol: float = 1e-6, seed: int = 0, return_eigenvectors: bool = False):
    """Top-``k`` Hessian eigenvalues (largest magnitude first) by power iteration.

    Each eigenpair is found by power iteration on Hessian-vector products, with the
    pairs already found deflated away (``H v - sum_j lam_j (u_j . v) u_j``).

    Args:
        loss_fn: zero-argument callable returning the scalar loss computed from params.
        params: tensors that require grad (a list, one tensor, or a model with
            ``parameters()``).
        k: how many eigenvalues.
        iters: maximum power iterations per eigenvalue.
        tol: stop when the residual ``||H v - lam v||`` is at most
            ``tol * max(1, |lam|)``; it bounds the eigenvalue's error.
        seed: seed of the random start vectors.
        return_eigenvectors: also return the unit eigenvectors, each a list of tensors
            shaped like ``params``.

    Returns:
        A float64 tensor of shape ``(k,)``; with ``return_eigenvectors`` a pair
        ``(eigenvalues, eigenvectors)``.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 1.0], dtype=cr.float64, requires_grad=True)
    >>> a = cr.tensor([3.0, 1.0], dtype=cr.float64)
    >>> eig = cr.diagnostics.hessian_eigs(lambda: 0.5 * (a * x * x).sum(), [x])
    >>> round(eig.tolist()[0], 6)
    3.0
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"hessian_eigs: k must be a positive int, got {k!r}")
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f"hessian_eigs: iters must be a positive int, got {iters!r}")
    if tol < 0:
        raise ValueError(f"hessian_eigs: tol must be >= 0, got {tol}")
    hvp = _HVP("hessian_eigs", loss_fn, params)
    if k > hvp.n:
        raise ValueError(f"hessian_eigs: k={k} exceeds the number of parameters ({hvp.n})")
    rng = np.random.default_rng(seed)
    vals: list[float] = []
    vecs: list[np.ndarray] = []
    for _ in range(k):
        v = rng.standard_normal(hvp.n)
        v = _orthogonalize(v, vecs)
        v /= np.linalg.norm(v)
        lam = 0.0
        for _ in range(iters):
            w = hvp(v)
            for lj, uj in zip(vals, vecs):
                w -= lj * np.dot(uj, v) * uj
            lam = float(np.dot(v, w))
            size = np.linalg.norm(w)
            if size == 0.0:
                break
            # |lam - nearest eigenvalue| <= ||H v - lam v|| for a unit v (H symmetric)
            if np.linalg.norm(w - lam * v) <= tol * max(1.0, abs(lam)):
                break
            v = _orthogonalize(w / size, vecs)
            v /= np.linalg.norm(v)
        vals.append(lam)
        vecs.append(v)
    eig = _wrap(np.asarray(vals, dtype=np.float64))
    if return_eigenvectors:
        return eig, [hvp.unflatten(u) for u in vecs]
    return eig


def _orthogonalize(v: np.ndarray, basis: list) -> np.ndarray:
    for u in basis:
        v = v - np.dot(u, v) * u
    return v


def hessian_trace(loss_fn: Callable[[], Tensor], params, samples: int = 100,
                  seed: int = 0) -> float:
    """Hutchinson's estimate of the Hessian trace: the mean of ``v^T H v``.

    ``v`` has independent Rademacher (+1/-1) entries, so the estimate is unbiased and
    exact for a diagonal Hessian.

    Args:
        loss_fn: zero-argument callable returning the scalar loss computed from params.
        params: tensors that require grad (a list, one tensor, or a model).
        samples: how many random vectors to average.
        seed: seed of the Rademacher vectors.

    Returns:
        The estimated trace as a float.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 1.0], dtype=cr.float64, requires_grad=True)
    >>> a = cr.tensor([3.0, 1.0], dtype=cr.float64)
    >>> cr.diagnostics.hessian_trace(lambda: 0.5 * (a * x * x).sum(), [x], samples=4)
    4.0
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"hessian_trace: samples must be a positive int, got {samples!r}")
    hvp = _HVP("hessian_trace", loss_fn, params)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(samples):
        v = rng.integers(0, 2, size=hvp.n).astype(np.float64) * 2.0 - 1.0
        total += float(np.dot(v, hvp(v)))
    return total / samples


__all__ = ["hessian_eigs", "hessian_trace"]
