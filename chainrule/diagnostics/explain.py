"""A worked backward pass: the two-layer sigmoid network with squared error.

    z1 = W1 x + b1,   a1 = sigma(z1),   z2 = W2 a1 + b2,   y_hat = sigma(z2),
    L = ||y - y_hat||^2 / 2

:func:`explain_two_layer` runs it in chainrule (float64), reads the eight backward
quantities from chainrule's own backward (``autograd.grad`` on the intermediate tensors),
checks each against central finite differences in float64, and renders the account in
the article's notation, including the delta-rule form
``delta^l = (W^{l+1})^T delta^{l+1} * sigma'(z^l)``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..backend import float64
from ..tensor import Tensor

_H = 1e-6  # central-difference step (float64)

# (key, symbol, rule) for the eight steps, in the order backward runs them.
_STEPS = (
    ("yhat", "dL/dŷ", "−(y − ŷ) = ŷ − y"),
    ("z2", "dL/dz2", "dL/dŷ ⊙ σ'(z2),  σ'(z2) = ŷ ⊙ (1 − ŷ)"),
    ("W2", "dL/dW2", "dL/dz2 · a1^T  (outer product)"),
    ("b2", "dL/db2", "dL/dz2"),
    ("a1", "dL/da1", "W2^T · dL/dz2"),
    ("z1", "dL/dz1", "dL/da1 ⊙ σ'(z1),  σ'(z1) = a1 ⊙ (1 − a1)"),
    ("W1", "dL/dW1", "dL/dz1 · x^T  (outer product)"),
    ("b1", "dL/db1", "dL/dz1"),
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Step:
    """One backward step: chainrule's value and its finite-difference check.

    Attributes:
        key: the quantity differentiated (``yhat``, ``z2``, ``W2``, ...).
        symbol: the derivative in the article's notation, e.g. ``dL/dz2``.
        rule: the local chain-rule formula applied.
        analytic: the value from chainrule's backward.
        numeric: the float64 central finite difference.
    """

    key: str
    symbol: str
    rule: str
    analytic: np.ndarray
    numeric: np.ndarray

    @property
    def error(self) -> float:
        """Max absolute difference between the analytic and numeric values."""
        return float(np.max(np.abs(self.analytic - self.numeric)))


@dataclass
class Explanation:
    """The worked example: forward values, backward steps, delta-rule values.

    Attributes:
        sizes: layer widths ``(inputs, hidden, outputs)``.
        seed: seed of the random weights and data.
        forward: ``x, y, W1, b1, z1, a1, W2, b2, z2, yhat, L`` as float64 arrays.
        steps: the eight backward :class:`Step` s.
        delta: ``delta2`` and ``delta1`` computed by the delta rule (NumPy).
    """

    sizes: tuple
    seed: int
    forward: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    delta: dict = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """Largest finite-difference disagreement over all steps."""
        return max(s.error for s in self.steps)

    def step(self, key: str) -> Step:
        """The step differentiating ``key`` (e.g. ``"W1"``)."""
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(f"Explanation.step: no step for {key!r}; have "
                       f"{[s.key for s in self.steps]}")

    def text(self, width: int = 80) -> str:
        """The account as text whose lines fit in ``width`` columns."""
        if width < 40:
            raise ValueError(f"Explanation.text: width must be at least 40, got {width}")
        return "\n".join(_render(self, width))

    def __str__(self) -> str:
        return self.text()


def explain_two_layer(seed: int = 0, sizes: tuple = (2, 3, 1)) -> Explanation:
    """Run and explain one backward pass of the two-layer sigmoid network.

    Args:
        seed: seed for the weights, input and target.
        sizes: ``(inputs, hidden, outputs)``.

    Returns:
        An :class:`Explanation`; print ``.text()`` for the step-by-step account.

    >>> import chainrule as cr
    >>> ex = cr.diagnostics.explain_two_layer()
    >>> [s.symbol for s in ex.steps][:3]
    ['dL/dŷ', 'dL/dz2', 'dL/dW2']
    >>> ex.max_error < 1e-6
    True
    """
    if len(sizes) != 3 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"explain_two_layer: sizes must be three positive ints "
                         f"(inputs, hidden, outputs), got {sizes!r}")
    n_in, n_h, n_out = sizes
    rng = np.random.default_rng(seed)
    p = {
        "x": rng.uniform(-1.0, 1.0, n_in),
        "y": rng.uniform(0.0, 1.0, n_out),
        "W1": rng.normal(0.0, 1.0, (n_h, n_in)),
        "b1": rng.normal(0.0, 0.5, n_h),
        "W2": rng.normal(0.0, 1.0, (n_out, n_h)),
        "b2": rng.normal(0.0, 0.5, n_out),
    }
    fwd, analytic = _chainrule_pass(p)
    ex = Explanation(sizes=tuple(sizes), seed=seed, forward=fwd)
    for key, symbol, rule in _STEPS:
        ex.steps.append(Step(key, symbol, rule, analytic[key], _numeric(p, fwd, key)))
    d2 = (fwd["yhat"] - p["y"]) * fwd["yhat"] * (1.0 - fwd["yhat"])
    d1 = (p["W2"].T @ d2) * fwd["a1"] * (1.0 - fwd["a1"])
    ex.delta = {"delta2": d2, "delta1": d1}
    return ex


def _chainrule_pass(p: dict) -> tuple[dict, dict]:
    """Forward and backward in chainrule; returns forward values and the 8 gradients."""
    x = Tensor(p["x"], dtype=float64)
    y = Tensor(p["y"], dtype=float64)
    params = {k: Tensor(p[k], dtype=float64, requires_grad=True)
              for k in ("W1", "b1", "W2", "b2")}
    with enable_grad():
        z1 = params["W1"] @ x + params["b1"]
        a1 = z1.sigmoid()
        z2 = params["W2"] @ a1 + params["b2"]
        yhat = z2.sigmoid()
        loss = ((y - yhat) ** 2).sum() / 2
        wrt = {"yhat": yhat, "z2": z2, "W2": params["W2"], "b2": params["b2"], "a1": a1,
               "z1": z1, "W1": params["W1"], "b1": params["b1"]}
        keys = [k for k, _, _ in _STEPS]
        grads = _grad(loss, [wrt[k] for k in keys])
    fwd = dict(p)
    fwd.update({"z1": z1._data, "a1": a1._data, "z2": z2._data, "yhat": yhat._data,
                "L": loss._data})
    fwd = {k: np.array(v, dtype=np.float64) for k, v in fwd.items()}
    return fwd, {k: np.array(g._data, dtype=np.float64) for k, g in zip(keys, grads)}


def _loss_np(p: dict, override: dict) -> float:
    """The loss in NumPy, with any quantity replaced by ``override`` (downstream recomputed)."""
    def get(name, compute):
        return override[name] if name in override else compute()

    W1 = get("W1", lambda: p["W1"])
    b1 = get("b1", lambda: p["b1"])
    W2 = get("W2", lambda: p["W2"])
    b2 = get("b2", lambda: p["b2"])
    z1 = get("z1", lambda: W1 @ p["x"] + b1)
    a1 = get("a1", lambda: _sigmoid(z1))
    z2 = get("z2", lambda: W2 @ a1 + b2)
    yhat = get("yhat", lambda: _sigmoid(z2))
    return float(0.5 * np.sum((p["y"] - yhat) ** 2))


def _numeric(p: dict, fwd: dict, key: str) -> np.ndarray:
    """Central finite difference of L w.r.t. ``key``, in float64."""
    base = fwd[key].astype(np.float64)
    out = np.zeros_like(base)
    flat = out.reshape(-1)
    for i in range(base.size):
        up = base.copy().reshape(-1)
        dn = base.copy().reshape(-1)
        up[i] += _H
        dn[i] -= _H
        lp = _loss_np(p, {key: up.reshape(base.shape)})
        lm = _loss_np(p, {key: dn.reshape(base.shape)})
        flat[i] = (lp - lm) / (2 * _H)
    return out


# ------------------------------------------------------------------ rendering
def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    if a.ndim == 1:
        return "[" + ", ".join(f"{float(v):.6g}" for v in a) + "]"
    return "[" + ", ".join(_fmt(r) for r in a) + "]"


def _wrap(label: str, body, width: int, indent: int = 2) -> list[str]:
    """``label body`` wrapped to ``width``; continuation lines align under the body.

    ``body`` may be an array: a matrix is shown one row per line.
    """
    lead = " " * indent + label
    hang = " " * min(len(lead), width // 2)
    if isinstance(body, np.ndarray) and body.ndim == 2 and body.shape[0] > 1:
        rows = [_fmt(r) for r in body]
        rows = ["[" + r if i == 0 else " " + r for i, r in enumerate(rows)]
        rows = [r + "," for r in rows[:-1]] + [rows[-1] + "]"]
        out = []
        for i, r in enumerate(rows):
            first = lead if i == 0 else hang
            out += textwrap.wrap(first + r, width=width, subsequent_indent=hang + "  ",
                                 break_long_words=True, break_on_hyphens=False)
        return out
    if isinstance(body, np.ndarray):
        body = _fmt(body)
    return textwrap.wrap(lead + body, width=width, subsequent_indent=hang,
                         break_long_words=True, break_on_hyphens=False) or [lead]


def _para(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width)


def _render(ex: Explanation, width: int) -> list[str]:
    f = ex.forward
    n_in, n_h, n_out = ex.sizes
    lines = _para(f"Two-layer sigmoid network, squared error (sizes {n_in}-{n_h}-{n_out}, "
                  f"seed {ex.seed})", width)
    lines += _para("z1 = W1 x + b1,  a1 = σ(z1),  z2 = W2 a1 + b2,  ŷ = σ(z2),  "
                   "L = ½ ‖y − ŷ‖²", width)
    lines += ["", "Forward pass"]
    for key, label in (("x", "x  "), ("y", "y  "), ("W1", "W1 "), ("b1", "b1 "),
                       ("z1", "z1 "), ("a1", "a1 "), ("W2", "W2 "), ("b2", "b2 "),
                       ("z2", "z2 "), ("yhat", "ŷ  "), ("L", "L  ")):
        lines += _wrap(label + "= ", f[key], width)
    lines += [""]
    lines += _para("Backward pass, from the loss to the inputs. Each value comes from "
                   "chainrule's backward and is checked against central finite "
                   "differences in float64.", width)
    for i, s in enumerate(ex.steps, 1):
        lines += [""]
        lines += _wrap(f"{i}. {s.symbol} = ", s.rule, width)
        lines += _wrap("chainrule   = ", s.analytic, width, indent=5)
        lines += _wrap("finite diff = ", s.numeric, width, indent=5)
        lines += _wrap("max |error| = ", f"{s.error:.2e}", width, indent=5)
    d2 = ex.delta["delta2"]
    d1 = ex.delta["delta1"]
    lines += ["", "Delta rule"]
    lines += _para("The same numbers in the delta-rule form, with δ^l = dL/dz^l and "
                   "a^0 = x:", width)
    lines += _wrap("δ^2 = (ŷ − y) ⊙ σ'(z^2) = ", _fmt(d2), width)
    lines += _wrap("δ^1 = (W^2)^T δ^2 ⊙ σ'(z^1) = ", _fmt(d1), width)
    lines += _wrap("in general: ", "δ^l = (W^{l+1})^T δ^{l+1} ⊙ σ'(z^l)", width)
    lines += _wrap("            ", "dL/dW^l = δ^l (a^{l−1})^T,  dL/db^l = δ^l", width)
    agree = max(float(np.max(np.abs(d2 - ex.step("z2").analytic))),
                float(np.max(np.abs(d1 - ex.step("z1").analytic))))
    lines += _wrap("", f"agreement with steps 2 and 6: max |difference| = {agree:.2e}",
                   width)
    lines += ["", f"Largest finite-difference error over all steps: {ex.max_error:.2e}"]
    return lines
