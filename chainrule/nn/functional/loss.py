"""Loss functions under PyTorch's names and semantics, as composites of the primitives.

Cross-entropy is ``log_softmax`` (a stable primitive) followed by a gather, and
binary cross-entropy with logits uses ``max(-x, 0) + log1p(exp(-|x|))``, so both stay
finite for logits of +-1000. No fused primitive: neither showed a stability need, and
the composites cost a handful of nodes per batch.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> logits = cr.tensor([[1000.0, -1000.0]])
>>> F.cross_entropy(logits, cr.tensor([1]))
tensor(2000.)
"""

from __future__ import annotations

import warnings

import numpy as np

from ...ops import elementwise as E
from ...ops import math_api as M
from ...ops import shape_api as SA
from ...tensor import Tensor, _wrap

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
    "cross_entropy", "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "kl_div",
    "l1_loss", "margin_ranking_loss", "mse_loss", "multi_margin_loss",
    "multilabel_soft_margin_loss", "nll_loss", "poisson_nll_loss", "smooth_l1_loss",
    "soft_margin_loss", "triplet_margin_loss",
]

_REDUCTIONS = ("none", "mean", "sum")


def _legacy(size_average, reduce, reduction: str) -> str:
    """Map the deprecated ``size_average``/``reduce`` pair onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(op: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return M.mean(loss)
    if reduction == "sum":
        return M.sum(loss)
    raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _check_reduction(op: str, reduction: str, extra: tuple = ()) -> None:
    if reduction not in _REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + extra)
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else _wrap(np.asarray(x))


def _pair(op: str, input, target, *, same_shape: bool = False) -> tuple[Tensor, Tensor]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    target = _as_tensor(target)
    if tuple(input.shape) != tuple(target.shape):
        if same_shape:
            raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as "
                             f"input size {tuple(input.shape)}")
        try:
            np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            raise ValueError(f"{op}: input shape {tuple(input.shape)} and target shape "
                             f"{tuple(target.shape)} are not broadcastable") from None
        warnings.warn(f"{op}: using a target size {tuple(target.shape)} that is different "
                      f"from the input size {tuple(input.shape)}; they will be broadcast",
                      UserWarning, stacklevel=3)
    return input, target


# ---------------------------------------------------------------- regression
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(input - target)^2``, optionally weighted elementwise."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("mse_loss", reduction)
    input, target = _pair("mse_loss", input, target)
    d = E.sub(input, target)
    loss = E.mul(d, d)
    if weight is not None:
        loss = E.mul(loss, weight)
    return _reduce("mse_loss", loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|input - target|``. NOTE: gradient 0 where they are equal."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("l1_loss", reduction)
    input, target = _pair("l1_loss", input, target)
    loss = E.abs(E.sub(input, target))
    if weight is not None:
        loss = E.mul(loss, weight)
    return _reduce("l1_loss", loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 delta)``."""
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pair("huber_loss", input, target)
    d = E.sub(input, target)
    ad = E.abs(d)
    quad = E.mul(E.mul(d, d), 0.5)
    lin = E.mul(E.sub(ad, 0.5 * delta), delta)
    loss = E.where(E.lt(ad, delta), quad, lin)
    if weight is not None:
        loss = E.mul(loss, weight)
    return _reduce("huber_loss", loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (L1 for beta=0)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = _pair("smooth_l1_loss", input, target)
    d = E.sub(input, target)
    ad = E.abs(d)
    if beta == 0:
        return _reduce("smooth_l1_loss", ad, reduction)
    quad = E.div(E.mul(E.mul(d, d), 0.5), beta)
    loss = E.where(E.lt(ad, beta), quad, E.sub(ad, 0.5 * beta))
    return _reduce("smooth_l1_loss", loss, reduction)


# ---------------------------------------------------------------- classification
def _class_targets(op: str, input: Tensor, target: Tensor, ignore_index: int) -> np.ndarray:
    """Validate integer class targets against ``input`` ``(C)``/``(N, C, d1, ...)``."""
    t = target._data
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (the classes), got a "
                         f"0-d tensor")
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if t.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{tuple(input.shape)} (classes along dim {min(1, input.ndim - 1)}), "
                         f"got {t.shape}")
    n_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    valid = t[t != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= n_classes):
        bad = int(valid.min()) if valid.min() < 0 else int(valid.max())
        raise IndexError(f"{op}: target {bad} is out of bounds for {n_classes} classes "
                         f"(expected 0 <= target < {n_classes}, or ignore_index "
                         f"{ignore_index})")
    return t


def _class_dim(input: Tensor) -> int:
    return 0 if input.ndim == 1 else 1


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities ``input``.

    ``input`` is ``(C)``, ``(N, C)`` or ``(N, C, d1, ...)``; ``target`` holds class indices
    of shape ``()``, ``(N)`` or ``(N, d1, ...)``. With ``reduction='mean'`` the sum is
    divided by the total weight of the non-ignored targets.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    if not isinstance(input, Tensor):
        raise TypeError(f"nll_loss: expected a Tensor input, got {type(input).__name__}")
    target = _as_tensor(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: expected an integer (int64) target of class indices, got "
                        f"dtype {target.dtype}")
    t = _class_targets("nll_loss", input, target, ignore_index)
    cdim = _class_dim(input)
    n_classes = input.shape[cdim]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ValueError(f"nll_loss: weight must have shape ({n_classes},), got "
                         f"{tuple(weight.shape)}")
    keep = t != ignore_index
    safe = np.where(keep, t, 0).astype(np.int64)
    picked = SA.squeeze(SA.gather(input, cdim, np.expand_dims(safe, cdim)), cdim)
    w = keep.astype(input.dtype)
    if weight is not None:
        wt = _as_tensor(weight)._data[safe].astype(input.dtype)
        w = w * wt
    loss = E.mul(E.neg(picked), _wrap(w))
    if reduction == "none":
        return loss
    total = M.sum(loss)
    if reduction == "sum":
        return total
    denom = float(w.sum())
    if denom == 0:
        return E.mul(total, float("nan"))  # every target ignored: nan, like PyTorch
    return E.div(total, denom)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` and class indices or class probabilities.

    Args:
        input: logits ``(C)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target: integer class indices (shape without the class dim) or probabilities
            (same shape as ``input``).
        weight: per-class weights ``(C,)``.
        ignore_index: targets equal to it contribute nothing (index targets only).
        label_smoothing: mix the target with the uniform distribution by this amount.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    if not isinstance(input, Tensor):
        raise TypeError(f"cross_entropy: expected a Tensor input, got {type(input).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dimension (the classes)")
    target = _as_tensor(target)
    cdim = _class_dim(input)
    n_classes = input.shape[cdim]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ValueError(f"cross_entropy: weight must have shape ({n_classes},), got "
                         f"{tuple(weight.shape)}")
    logp = M.log_softmax(input, cdim)
    wshape = [1] * input.ndim
    wshape[cdim] = n_classes
    if target.dtype.kind == "f":
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if label_smoothing > 0:
            target = E.add(E.mul(target, 1.0 - label_smoothing), label_smoothing / n_classes)
        prod = E.mul(logp, target)
        if weight is not None:
            prod = E.mul(prod, SA.reshape(weight, tuple(wshape)))
        loss = E.neg(M.sum(prod, cdim))
        if reduction == "mean":
            n = input.numel() // n_classes if n_classes else 0
            return E.div(M.sum(loss), float(n) if n else float("nan"))
        return _reduce("cross_entropy", loss, reduction)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must be class indices (int64) or "
                        f"probabilities (float), got dtype {target.dtype}")
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    keep = target._data != ignore_index
    if weight is not None:
        smooth = E.neg(M.sum(E.mul(logp, SA.reshape(weight, tuple(wshape))), cdim))
    else:
        smooth = E.neg(M.sum(logp, cdim))
    smooth = E.mul(smooth, _wrap(keep.astype(input.dtype)))
    if reduction == "mean":
        if weight is not None:
            safe = np.where(keep, target._data, 0)
            denom = float((_as_tensor(weight)._data[safe] * keep).sum())
        else:
            denom = float(keep.sum())
        smooth = E.div(M.sum(smooth), denom if denom else float("nan"))
    elif reduction == "sum":
        smooth = M.sum(smooth)
    return E.add(E.mul(nll, 1.0 - label_smoothing),
                 E.mul(smooth, label_smoothing / n_classes))


def _safe_log(x: Tensor) -> Tensor:
    # log clamped at -100 like PyTorch's BCE; log(0) is never evaluated
    pos = E.gt(x, 0)
    lg = E.clamp(E.log(E.where(pos, x, 1.0)), -100.0, None)
    return E.where(pos, lg, -100.0)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``-w (t log x + (1 - t) log(1 - x))`` for probabilities ``input`` in [0, 1].

    The logs are clamped at -100 (PyTorch), so x = 0 or 1 gives a finite loss.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy", reduction)
    input, target = _pair("binary_cross_entropy", input, target, same_shape=True)
    x = input._data
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and "
                         f"1, got values in [{float(np.nanmin(x))}, {float(np.nanmax(x))}]; "
                         "use binary_cross_entropy_with_logits for logits")
    loss = E.neg(E.add(E.mul(target, _safe_log(input)),
                       E.mul(E.sub(1.0, target), _safe_log(E.sub(1.0, input)))))
    if weight is not None:
        loss = E.mul(loss, weight)
    return _reduce("binary_cross_entropy", loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable expression.

    ``(1 - t) x + (1 + (p - 1) t) (log1p(exp(-|x|)) + max(-x, 0))`` with ``p`` the
    ``pos_weight`` (broadcast along the last dimension, one per class).
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    input, target = _pair("binary_cross_entropy_with_logits", input, target, same_shape=True)
    softplus_neg = E.add(E.log1p(E.exp(E.neg(E.abs(input)))), E.relu(E.neg(input)))
    if pos_weight is not None:
        log_w = E.add(E.mul(E.sub(pos_weight, 1.0), target), 1.0)
        loss = E.add(E.mul(E.sub(1.0, target), input), E.mul(log_w, softplus_neg))
    else:
        loss = E.add(E.mul(E.sub(1.0, target), input), softplus_neg)
    if weight is not None:
        loss = E.mul(loss, weight)
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` log-probabilities: ``t (log t - input)``.

    ``log_target=True`` takes ``target`` as log-probabilities too. ``'batchmean'``
    divides the sum by the batch size (the mathematically correct KL);``'mean'`` by the
    number of elements.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("kl_div", reduction, ("batchmean",))
    input, target = _pair("kl_div", input, target)
    if log_target:
        loss = E.mul(E.exp(target), E.sub(target, input))
    else:
        pos = E.gt(target, 0)
        tlogt = E.where(pos, E.mul(target, E.log(E.where(pos, target, 1.0))), 0.0)
        loss = E.sub(tlogt, E.mul(target, input))
    if reduction == "batchmean":
        n = input.shape[0] if input.ndim else 1
        return E.div(M.sum(loss), float(n))
    return _reduce("kl_div", loss, reduction)


# ---------------------------------------------------------------- other losses
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood; ``full`` adds the Stirling term for target > 1."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("poisson_nll_loss", reduction)
    input, target = _pair("poisson_nll_loss", input, target)
    if log_input:
        loss = E.sub(E.exp(input), E.mul(target, input))
    else:
        loss = E.sub(input, E.mul(target, E.log(E.add(input, eps))))
    if full:
        t = target.detach()
        safe = E.where(E.gt(t, 1), t, 2.0)
        stirling = E.add(E.sub(E.mul(safe, E.log(safe)), safe),
                         E.mul(E.log(E.mul(safe, 2 * np.pi)), 0.5))
        loss = E.add(loss, E.where(E.gt(t, 1), stirling, 0.0))
    return _reduce("poisson_nll_loss", loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """``0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps))`` (+ const)."""
    _check_reduction("gaussian_nll_loss", reduction)
    if isinstance(var, Tensor) and bool((var._data < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    v = E.clamp(var, eps, None) if isinstance(var, Tensor) else max(float(var), eps)
    d = E.sub(input, target)
    loss = E.mul(E.add(E.log(v if isinstance(v, Tensor) else _wrap(np.asarray(
        v, input.dtype))), E.div(E.mul(d, d), v)), 0.5)
    if full:
        loss = E.add(loss, 0.5 * np.log(2 * np.pi))
    return _reduce("gaussian_nll_loss", loss, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-y x))`` for targets +-1."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("soft_margin_loss", reduction)
    input, target = _pair("soft_margin_loss", input, target)
    return _reduce("soft_margin_loss", M.softplus(E.neg(E.mul(target, input))), reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("margin_ranking_loss", reduction)
    loss = E.relu(E.add(E.neg(E.mul(target, E.sub(input1, input2))), margin))
    return _reduce("margin_ranking_loss", loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``x`` where ``y = 1``; ``max(0, margin - x)`` where ``y = -1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("hinge_embedding_loss", reduction)
    input, target = _pair("hinge_embedding_loss", input, target)
    pos = E.where(E.eq(target, 1), input, 0.0)
    neg = E.where(E.eq(target, -1), E.relu(E.sub(margin, input)), 0.0)
    return _reduce("hinge_embedding_loss", E.add(pos, neg), reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``y = 1``; ``max(0, cos(x1, x2) - margin)`` where ``y = -1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("cosine_embedding_loss", reduction)
    eps = 1e-12
    dot = M.sum(E.mul(input1, input2), -1)
    n1 = E.add(M.sum(E.mul(input1, input1), -1), eps)
    n2 = E.add(M.sum(E.mul(input2, input2), -1), eps)
    cos = E.div(dot, E.sqrt(E.mul(n1, n2)))
    pos = E.where(E.eq(target, 1), E.sub(1.0, cos), 0.0)
    neg = E.where(E.eq(target, -1), E.relu(E.sub(cos, margin)), 0.0)
    return _reduce("cosine_embedding_loss", E.add(pos, neg), reduction)


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float, eps: float) -> Tensor:
    return M.norm(E.add(E.sub(x1, x2), eps), p, -1)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the p-norm distance."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("triplet_margin_loss", reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ValueError(f"triplet_margin_loss: anchor, positive and negative must have the "
                         f"same number of dimensions, got {anchor.ndim}, {positive.ndim} and "
                         f"{negative.ndim}")
    d_ap = _pairwise_distance(anchor, positive, p, eps)
    d_an = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = E.minimum(d_an, _pairwise_distance(positive, negative, p, eps))
    loss = E.relu(E.add(E.sub(d_ap, d_an), margin))
    return _reduce("triplet_margin_loss", loss, reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """Per-class logistic loss averaged over the classes: input and target ``(N, C)``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("multilabel_soft_margin_loss", reduction)
    input, target = _pair("multilabel_soft_margin_loss", input, target, same_shape=True)
    log_sig = E.neg(M.softplus(E.neg(input)))
    log_sig_neg = E.neg(M.softplus(input))
    loss = E.neg(E.add(E.mul(target, log_sig), E.mul(E.sub(1.0, target), log_sig_neg)))
    if weight is not None:
        loss = E.mul(loss, weight)
    loss = M.mean(loss, -1)
    return _reduce("multilabel_soft_margin_loss", loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Multi-class hinge: ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    if input.ndim not in (1, 2):
        raise ValueError(f"multi_margin_loss: expected a 1-D or 2-D input, got shape "
                         f"{tuple(input.shape)}")
    target = _as_tensor(target)
    t = _class_targets("multi_margin_loss", input, target, ignore_index=-(2 ** 62))
    x = input if input.ndim == 2 else SA.unsqueeze(input, 0)
    t2 = t.reshape(-1).astype(np.int64)
    n_classes = x.shape[1]
    picked = SA.gather(x, 1, t2[:, None])
    h = E.relu(E.add(E.sub(x, picked), margin))
    if p == 2:
        h = E.mul(h, h)
    not_target = np.ones(x.shape, dtype=input.dtype)
    not_target[np.arange(x.shape[0]), t2] = 0
    h = E.mul(h, _wrap(not_target))
    if weight is not None:
        h = E.mul(h, _wrap(_as_tensor(weight)._data[t2][:, None].astype(input.dtype)))
    loss = E.div(M.sum(h, 1), float(n_classes))
    if input.ndim == 1:
        loss = SA.squeeze(loss, 0)
    return _reduce("multi_margin_loss", loss, reduction)
