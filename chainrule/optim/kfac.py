"""K-FAC: Kronecker-factored approximate natural gradient (Martens & Grosse 2015).

For a layer ``s = W a`` (the bias as a last column of ``W`` against a constant 1 in
``a``), the Fisher block of ``W`` is approximated by a Kronecker product of two small
matrices,

    F_W ~ A kron G,    A = E[a a^T],    G = E[g g^T],

where ``g`` is the gradient of a sample's own loss w.r.t. ``s``. Forward hooks see
``a``; full backward hooks see the gradient of the (mean) batch loss w.r.t. ``s``, which
is multiplied by the batch size ``N`` to give the per-sample ``g`` (so the loss must be a
mean over the batch, as with the default ``reduction="mean"``). The preconditioned
gradient is then ``(G + lam_G I)^-1 grad_W (A + lam_A I)^-1``, computed through
eigendecompositions of the running averages of ``A`` and ``G``.

Convolutions follow KFC (Grosse & Martens 2016): ``a`` ranges over the unfolded input
patches (im2col) and ``g`` over the output positions ``t``, with
``A = (1/N) sum_{i,t} a_it a_it^T`` and ``G = (1/(N T)) sum_{i,t} g_it g_it^T``. A linear
layer applied to ``(N, *, in)`` inputs is treated the same way, its middle dims being
the positions.

The gradients are those of the training loss with the true labels, so this is the
empirical-Fisher variant. Parameters outside supported layers get plain SGD (with the
same momentum and weight decay).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor, _wrap
from .optimizer import Optimizer, _as_array, _as_number, check_bool, check_number
from .sgd import sgd


class KFAC(Optimizer):
    """Kronecker-factored natural gradient for ``Linear`` and ``Conv2d`` layers.

    Registers a forward hook and a full backward hook on each supported layer of
    ``model``; a training step is the usual ``zero_grad``, forward, ``loss.backward()``,
    ``step()``. Statistics are gathered only in training mode with grad mode on, so
    evaluation under ``no_grad`` leaves them alone. Call :meth:`remove_hooks` when done.

    The update of a layer's weight (and bias) is ``-lr`` times the momentum buffer of
    ``P + weight_decay * param``, where ``P`` is the K-FAC preconditioned gradient; other
    parameters (including those of Conv1d/Conv3d, normalisation and embedding layers) use
    the raw gradient in place of ``P`` (plain SGD, PyTorch's rule). A layer called more than
    once per step keeps the statistics of its last forward and first-reached backward, so
    K-FAC suits layers used once per step. The factors and their running averages are
    float64 whatever the parameters' dtype.

    Args:
        model: the module to optimize; all its parameters that require grad are updated.
        lr: learning rate (default 0.01).
        momentum: SGD momentum on the preconditioned gradients (default 0.9).
        damping: Tikhonov damping ``lam >= 0`` of the Fisher (default 1e-3), split into
            ``lam_A = pi * sqrt(lam)`` and ``lam_G = sqrt(lam) / pi``. With 0 the factors
            are pseudo-inverted (exact for a rank-deficient Kronecker Fisher).
        stat_decay: running-average factor of ``A`` and ``G`` in [0, 1) (default 0.95);
            the first statistics seen initialise the averages.
        inv_update_freq: recompute the factor inverses every this many steps (default 10).
        weight_decay: L2 penalty added after preconditioning (default 0).
        pi: use the pi heuristic ``pi = sqrt((tr A / dim A) / (tr G / dim G))`` to split
            the damping (default True); False uses ``sqrt(lam)`` for both factors.
        kl_clip: if set, scale the step so that ``lr^2 * sum(P . grad)`` is at most this
            (the trust region of the K-FAC papers); default None (no clipping). A value
            such as 1e-3 keeps large learning rates stable, especially for convolutions.

    >>> import chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Tanh(), cr.nn.Linear(4, 2))
    >>> opt = cr.optim.KFAC(model, lr=0.1)
    >>> x, y = cr.randn(8, 3), cr.randint(0, 2, (8,))
    >>> loss = cr.nn.functional.cross_entropy(model(x), y)
    >>> loss.backward()
    >>> _ = opt.step()
    >>> opt.remove_hooks()
    """

    _state_keys = frozenset({"momentum_buffer", "step", "A", "G"})

    def __init__(self, model, lr: float = 0.01, damping: float = 1e-3,
                 stat_decay: float = 0.95, inv_update_freq: int = 10, momentum: float = 0.9,
                 weight_decay: float = 0.0, pi: bool = True,
                 kl_clip: float | None = None) -> None:
        from ..nn.modules.module import Module

        defaults = dict(lr=lr, damping=damping, stat_decay=stat_decay,
                        inv_update_freq=inv_update_freq, momentum=momentum,
                        weight_decay=weight_decay, pi=pi, kl_clip=kl_clip)
        self._validate(defaults)
        if not isinstance(model, Module):
            raise TypeError(f"KFAC: expected an nn.Module (it needs the model to hook its "
                            f"layers), got {type(model).__name__}; for a list of tensors use "
                            f"cr.optim.SGD")
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("KFAC: the model has no parameters that require grad")
        layers, skipped = _find_layers(model)
        super().__init__(params, defaults)
        self.model = model
        self._layers: list = layers
        self._batch: dict = {}
        self._inv: dict = {}
        self._handles: list = []
        if skipped:
            warnings.warn(f"KFAC: {', '.join(skipped)}: grouped convolutions and padding "
                          f"modes other than 'zeros' are not supported; their parameters get "
                          f"SGD updates",
                          UserWarning, stacklevel=2)
        if not layers:
            warnings.warn("KFAC: the model has no Linear or Conv2d layers; every parameter "
                          "gets plain SGD (with momentum) updates", UserWarning, stacklevel=2)
        for m in layers:
            self._handles.append(m.register_forward_hook(self._save_input))
            self._handles.append(m.register_full_backward_hook(self._save_grad_output))

    def _validate(self, group: dict) -> None:
        check_number("KFAC", "learning rate", group["lr"])
        check_number("KFAC", "damping", group["damping"])
        check_number("KFAC", "stat_decay", group["stat_decay"], hi=1.0, hi_open=True)
        check_number("KFAC", "momentum value", group["momentum"])
        check_number("KFAC", "weight_decay value", group["weight_decay"])
        check_bool("KFAC", "pi", group["pi"])
        if group["kl_clip"] is not None:
            check_number("KFAC", "kl_clip", group["kl_clip"], lo_open=True)
        v = group["inv_update_freq"]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"KFAC: invalid inv_update_freq: {v!r} (expected an int >= 1)")

    def add_param_group(self, param_group: dict) -> None:
        """Not supported: KFAC takes its parameters from the model."""
        raise ValueError("KFAC doesn't support adding parameter groups; it optimizes the "
                         "parameters of the model it was given")

    def remove_hooks(self) -> None:
        """Unregister the statistics hooks from the model's layers."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # ------------------------------------------------------------------ hooks
    def _save_input(self, module, args, output) -> None:
        if not (module.training and is_grad_enabled()) or not args:
            return
        x = args[0]
        if not isinstance(x, Tensor):
            return
        rows, n = _input_rows(module, x._data)
        rows = rows.astype(np.float64, copy=False)
        A = rows.T @ rows
        if module.bias is not None:
            s = rows.sum(axis=0)
            A = np.block([[A, s[:, None]], [s[None, :], np.array([[float(rows.shape[0])]])]])
        self._batch.setdefault(module, {})["A"] = A / n

    def _save_grad_output(self, module, grad_input, grad_output) -> None:
        if not module.training or not grad_output or grad_output[0] is None:
            return
        g = grad_output[0]
        g = g._data if isinstance(g, Tensor) else np.asarray(g)
        rows, n = _output_rows(module, g)
        rows = rows.astype(np.float64, copy=False) * n
        positions = rows.shape[0] / n
        self._batch.setdefault(module, {})["G"] = rows.T @ rows / (n * positions)

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable | None = None):
        """Precondition the gradients of the hooked layers and take an SGD step.

        Args:
            closure: optional; re-evaluates the model (forward and backward) and returns
                the loss, like the closure of other optimizers.
        """
        loss = self._eval_closure(closure)
        group = self.param_groups[0]
        precond: dict[int, np.ndarray] = {}
        vg = 0.0
        for m in self._layers:
            w = m.weight
            if w.grad is None:
                continue
            if not self._update_factors(m, group):
                continue
            grad = _grad_matrix(m)
            V = self._precondition(m, grad)
            vg += float((V * grad).sum())
            precond[id(w)] = V[:, :w._data[0].size].reshape(w.shape)
            if m.bias is not None:
                precond[id(m.bias)] = V[:, -1]
        nu = 1.0
        if group["kl_clip"] is not None and vg > 0 and group["lr"] > 0:
            nu = min(1.0, math.sqrt(group["kl_clip"] / (group["lr"] ** 2 * vg)))
        ps, params, grads = self._params_with_grad(group)
        grads = [(nu * precond[id(p)]).astype(p.dtype) if id(p) in precond else g
                 for p, g in zip(ps, grads)]
        use_momentum = group["momentum"] != 0
        bufs = []
        for p in ps:
            buf = self.state[p].get("momentum_buffer") if use_momentum else None
            bufs.append(None if buf is None else buf._data)
        sgd(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
            momentum=group["momentum"], dampening=0.0, nesterov=False, maximize=False)
        if use_momentum:
            for p, buf in zip(ps, bufs):
                old = self.state[p].get("momentum_buffer")
                if old is None or old._data is not buf:
                    self.state[p]["momentum_buffer"] = _wrap(buf)
        self._batch.clear()
        self._bump(ps)
        return loss

    def _update_factors(self, m, group: dict) -> bool:
        """Fold the batch statistics into the running averages; refresh the inverses."""
        state = self.state[m.weight]
        batch = self._batch.get(m, {})
        decay = group["stat_decay"]
        if "A" in batch and "G" in batch:
            for key in ("A", "G"):
                old = state.get(key)
                if old is None:
                    state[key] = _wrap(batch[key].copy())
                else:
                    arr = old._data
                    arr *= decay
                    arr += (1.0 - decay) * batch[key]
            step = state.get("step", 0)
            state["step"] = step + 1
            if step % group["inv_update_freq"] == 0:
                self._inv.pop(m, None)
        if "A" not in state or "G" not in state:
            return False
        if m not in self._inv:
            self._inv[m] = _damped_inverse(state["A"]._data, state["G"]._data,
                                           group["damping"], group["pi"])
        return True

    def _precondition(self, m, grad: np.ndarray) -> np.ndarray:
        return _apply_inverse(self._inv[m], grad)

    # ------------------------------------------------------------------ state dicts
    def _load_state_value(self, key: str, value, param: Tensor, idx: int):
        what = f"KFAC.load_state_dict: state {key!r} of parameter {idx}"
        if key == "step":
            return _as_number(value, what)
        if key == "momentum_buffer":
            return super()._load_state_value(key, value, param, idx)
        layer = next((m for m in self._layers if m.weight is param), None)
        if layer is None:
            raise ValueError(f"{what}: parameter {idx} is not the weight of a K-FAC layer")
        arr = _as_array(value, what)
        d = _factor_dims(layer)[0 if key == "A" else 1]
        if arr.shape != (d, d):
            raise ValueError(f"{what} has shape {arr.shape}, expected {(d, d)}")
        return _wrap(np.array(arr, dtype=np.float64, copy=True))

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from ``state_dict()``; the inverses are recomputed next step."""
        super().load_state_dict(state_dict)
        self._inv = {}


# ---------------------------------------------------------------------- layers
def _find_layers(model) -> tuple[list, list]:
    from ..nn.modules.conv import Conv2d
    from ..nn.modules.linear import Linear

    layers, skipped = [], []
    for name, m in model.named_modules():
        if isinstance(m, Linear):
            ok = True
        elif isinstance(m, Conv2d):
            ok = m.groups == 1 and m.padding_mode == "zeros"
            if not ok:
                skipped.append(name or type(m).__name__)
        else:
            continue
        if ok and m.weight.requires_grad and (m.bias is None or m.bias.requires_grad):
            layers.append(m)
    return layers, skipped


def _is_conv(m) -> bool:
    return hasattr(m, "kernel_size")


def _factor_dims(m) -> tuple[int, int]:
    d_in = m.weight._data[0].size + (1 if m.bias is not None else 0)
    return d_in, m.weight.shape[0]


def _conv_pads(m) -> tuple:
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return ((0, 0), (0, 0))
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for d, k in zip(m.dilation, m.kernel_size))
    return tuple((p, p) for p in m.padding)


def _input_rows(m, x: np.ndarray) -> tuple[np.ndarray, int]:
    """``(rows, N)``: one row per (sample, position) of the layer's input vectors ``a``."""
    if not _is_conv(m):
        n = x.shape[0] if x.ndim > 1 else 1
        return x.reshape(-1, x.shape[-1]), n
    if x.ndim == 3:
        x = x[None]
    (kh, kw), (dh, dw), (sh, sw) = m.kernel_size, m.dilation, m.stride
    xp = np.pad(x, ((0, 0), (0, 0)) + _conv_pads(m))
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = win.shape[:4]
    rows = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    return rows, n


def _output_rows(m, g: np.ndarray) -> tuple[np.ndarray, int]:
    """``(rows, N)``: one row per (sample, position) of the output gradients."""
    if not _is_conv(m):
        n = g.shape[0] if g.ndim > 1 else 1
        return g.reshape(-1, g.shape[-1]), n
    if g.ndim == 3:
        g = g[None]
    n, c = g.shape[:2]
    return g.transpose(0, 2, 3, 1).reshape(-1, c), n


def _grad_matrix(m) -> np.ndarray:
    """The layer's gradient as ``(out, in [+ 1])``, the bias gradient as the last column."""
    w = m.weight
    gw = np.asarray(w.grad._data, dtype=np.float64).reshape(w.shape[0], -1)
    if m.bias is None:
        return gw
    b = m.bias.grad
    gb = np.zeros(w.shape[0]) if b is None else np.asarray(b._data, dtype=np.float64)
    return np.concatenate([gw, gb[:, None]], axis=1)


def _damped_inverse(A: np.ndarray, G: np.ndarray, damping: float, pi: bool) -> tuple:
    """Eigenbases and damped inverse eigenvalues of both factors (pseudo-inverse at 0)."""
    lam = math.sqrt(damping)
    ratio = 1.0
    if pi and damping > 0:
        ta = np.trace(A) / A.shape[0]
        tg = np.trace(G) / G.shape[0]
        if ta > 0 and tg > 0:
            ratio = math.sqrt(ta / tg)
    out = []
    for M, extra in ((A, lam * ratio), (G, lam / ratio)):
        s, Q = np.linalg.eigh(M)
        s = np.maximum(s, 0.0) + extra
        tol = max(float(s.max(initial=0.0)), 0.0) * M.shape[0] * np.finfo(np.float64).eps
        inv = np.zeros_like(s)
        keep = s > tol
        inv[keep] = 1.0 / s[keep]
        out.extend((Q, inv))
    return tuple(out)


def kfac_precondition(grad: np.ndarray, A: np.ndarray, G: np.ndarray, damping: float,
                      pi: bool = True) -> np.ndarray:
    """``(G + lam_G I)^-1 grad (A + lam_A I)^-1`` for one layer's ``(out, in)`` gradient.

    >>> import numpy as np
    >>> kfac_precondition(np.ones((1, 2)), np.eye(2) * 2, np.eye(1) * 4, 0.0).tolist()
    [[0.125, 0.125]]
    """
    return _apply_inverse(_damped_inverse(A, G, damping, pi), grad)


def _apply_inverse(inv: tuple, grad: np.ndarray) -> np.ndarray:
    """``G_d^-1 grad A_d^-1`` from the eigenbases and inverse eigenvalues of both factors."""
    QA, dA, QG, dG = inv
    V = QG.T @ grad @ QA
    V *= dG[:, None] * dA[None, :]
    return QG @ V @ QA.T
