"""Gradient check of a whole model: backprop against float64 central differences.

:func:`check_gradients` runs the model in float64 and compares, for every parameter that
requires grad and every floating-point input, the gradient of the loss from backprop with
central differences ``(L(x + eps) - L(x - eps)) / (2 eps)``, coordinate by coordinate
(all coordinates of small tensors, a random sample of big ones).

The model itself is left untouched. It is not copied (a model may hold hooks and
references a copy would break); instead, inside a ``try``/``finally``, every floating
parameter and buffer gets a float64 copy of its values as its array, and afterwards gets
its original array back, with its ``requires_grad``, ``.grad``, version counter and every
module's ``training`` flag, and the global random state. Buffers a forward pass updates
(batch-norm running statistics) are therefore restored too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad, no_grad
from ..random import get_rng_state, manual_seed, set_rng_state
from ..tensor import Tensor, _wrap


@dataclass
class GradCheckRow:
    """One checked tensor of :func:`check_gradients`.

    Attributes:
        name: the parameter's dotted name, or ``input <k>``.
        kind: ``'parameter'`` or ``'input'``.
        shape: the tensor's shape.
        checked: how many coordinates were compared; ``size`` how many it has.
        max_abs_err: the largest ``|backprop - numerical|``.
        max_rel_err: the largest ``|backprop - numerical| / max(|backprop|, |numerical|,
            atol)`` (the floor keeps exactly-zero gradients from reading as 100%).
        passed: every coordinate within ``atol + rtol * |numerical|``.
        worst: the index of the worst coordinate, with its two values.
        note: e.g. ``'not used by the loss'`` when backprop returned no gradient.
    """

    name: str
    kind: str
    shape: tuple
    checked: int
    size: int
    max_abs_err: float
    max_rel_err: float
    passed: bool
    worst: tuple
    analytic: float
    numerical: float
    note: str = ""


class GradCheckReport:
    """The result of :func:`check_gradients`: ``passed``, ``rows``, ``first_failure``.

    ``str(report)`` is a table with one row per checked tensor; ``bool(report)`` is
    ``report.passed``.
    """

    def __init__(self, rows: list[GradCheckRow], skipped: list[str], notes: list[str],
                 eps: float, atol: float, rtol: float) -> None:
        self.rows = rows
        self.skipped = skipped
        self.notes = notes
        self.eps = eps
        self.atol = atol
        self.rtol = rtol

    @property
    def passed(self) -> bool:
        """True when every checked tensor passed."""
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[GradCheckRow]:
        """The rows that failed, in table order (parameters in registration order first)."""
        return [r for r in self.rows if not r.passed]

    @property
    def first_failure(self) -> str | None:
        """The name of the first failing parameter (or input); None when all passed."""
        bad = self.failures
        return bad[0].name if bad else None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"check_gradients: {verdict} ({len(self.rows)} tensors; float64, eps="
                 f"{self.eps:g}, a coordinate passes when |backprop - numerical| <= "
                 f"{self.atol:g} + {self.rtol:g} * |numerical|)"]
        header = ["tensor", "kind", "shape", "checked", "max abs err", "max rel err", "result"]
        rows = [[r.name, r.kind, str(r.shape), f"{r.checked}/{r.size}", f"{r.max_abs_err:.2e}",
                 f"{r.max_rel_err:.2e}", ("ok" if r.passed else "FAIL")
                 + (f" ({r.note})" if r.note else "")] for r in self.rows]
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        bad = self.failures
        if bad:
            r = bad[0]
            lines.append(f"first failure: {r.name}: at index {r.worst}, backprop {r.analytic:.6g}"
                         f" vs numerical {r.numerical:.6g}")
        if self.skipped:
            lines.append("skipped (requires_grad=False): " + ", ".join(self.skipped))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"GradCheckReport(passed={self.passed}, tensors={len(self.rows)}, "
                f"first_failure={self.first_failure!r})")


class _SavedModel:
    """Everything :func:`check_gradients` may change, and how to put it back."""

    def __init__(self, model) -> None:
        self.tensors = []
        seen = set()
        for _, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            box = t._vbox
            self.tensors.append((t, t._data, t.requires_grad, t.grad,
                                 None if box is None else list(box)))
        self.training = [(m, m.training) for m in model.modules()]

    def to_float64(self) -> None:
        for t, data, *_ in self.tensors:
            if data.dtype.kind == "f":
                t._data = data.astype(np.float64)

    def restore(self) -> None:
        for t, data, requires_grad, grad, box in self.tensors:
            t._data = data
            t.requires_grad = requires_grad
            t.grad = grad
            if box is None:
                t._vbox = None
            elif t._vbox is not None:
                t._vbox[:] = box
            else:
                t._vbox = box
        for m, training in self.training:
            object.__setattr__(m, "training", training)


def _prepare_inputs(inputs: tuple, check_inputs: bool):
    """float64 copies of floating inputs (requires_grad when checked); others as given."""
    xs = []
    checked = []
    for k, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            c = _wrap(x._data.astype(np.float64))
            if check_inputs:
                c.requires_grad = True
                checked.append((f"input {k}", c))
            xs.append(c)
        else:
            xs.append(x)
    return xs, checked


def _coords(size: int, analytic: np.ndarray, max_full: int, samples: int, rng) -> np.ndarray:
    if size <= max_full:
        return np.arange(size)
    picked = rng.choice(size, size=min(samples, size), replace=False)
    # Always include the largest backprop gradient: the most telling coordinate.
    return np.unique(np.append(picked, int(np.argmax(np.abs(analytic)))))


def _row(name, kind, t, analytic, coords, numeric, atol, rtol, note) -> GradCheckRow:
    a = analytic[coords]
    err = np.abs(a - numeric)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(numeric)), max(atol, 1e-300))
    rel = err / scale
    bad = err > atol + rtol * np.abs(numeric)
    worst = int(np.argmax(np.where(bad, err, -1.0))) if bad.any() else int(np.argmax(err))
    idx = np.unravel_index(int(coords[worst]), t.shape) if t.ndim else ()
    return GradCheckRow(name=name, kind=kind, shape=tuple(t.shape), checked=len(coords),
                        size=t._data.size, max_abs_err=float(err.max(initial=0.0)),
                        max_rel_err=float(rel.max(initial=0.0)), passed=not bad.any(),
                        worst=tuple(int(i) for i in idx), analytic=float(a[worst]),
                        numerical=float(numeric[worst]), note=note)


def check_gradients(model, loss_fn: Callable | None = None, *inputs, target=None,
                    eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                    max_full: int = 64, samples: int = 24, seed: int = 0,
                    check_inputs: bool = True) -> GradCheckReport:
    """Gradcheck a whole model in float64, leaving the model untouched.

    The loss is ``loss_fn(model(*inputs), target)`` (or ``loss_fn(model(*inputs))`` when
    ``target`` is None, or the model's output itself when ``loss_fn`` is None); it must be
    a scalar. ``cr.manual_seed(seed)`` runs before every forward pass, so dropout draws the
    same masks each time; batch norm in training mode uses the batch statistics of the
    fixed inputs (its running statistics are restored afterwards).

    Args:
        model: a ``chainrule.nn.Module``.
        loss_fn: maps the model output (and ``target``) to a scalar tensor.
        *inputs: the model's inputs; floating-point tensors are checked too.
        target: passed to ``loss_fn`` as its second argument (not differentiated).
        eps: the central-difference step.
        atol, rtol: a coordinate passes when ``|backprop - numerical| <= atol + rtol *
            |numerical|``.
        max_full: tensors with at most this many elements are checked at every
            coordinate; bigger ones at ``samples`` random coordinates plus the one with
            the largest backprop gradient.
        seed: seeds both the dropout masks and the coordinate sample.
        check_inputs: also check the gradients w.r.t. floating-point inputs.

    Returns:
        A :class:`GradCheckReport`: ``passed``, ``rows`` (one per tensor: max absolute
        and relative errors), ``first_failure`` (the first failing parameter's name) and
        a table as ``str(report)``.

    >>> import chainrule as cr
    >>> model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Tanh(), cr.nn.Linear(4, 1))
    >>> report = check_gradients(model, lambda out: out.pow(2).mean(), cr.randn(5, 3))
    >>> report.passed, report.first_failure
    (True, None)
    """
    op = "check_gradients"
    if not hasattr(model, "named_parameters") or not callable(model):
        raise TypeError(f"{op}: expected a chainrule.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"{op}: loss_fn must be callable (output[, target]) -> scalar tensor "
                        f"or None, got {type(loss_fn).__name__}; pass the model inputs after "
                        f"it")
    if eps <= 0 or atol < 0 or rtol < 0 or max_full < 0 or samples < 1:
        raise ValueError(f"{op}: need eps > 0, atol >= 0, rtol >= 0, max_full >= 0, "
                         f"samples >= 1; got eps={eps}, atol={atol}, rtol={rtol}, "
                         f"max_full={max_full}, samples={samples}")
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"{op}: {type(model).__name__} has no parameters; to check a "
                         f"function of its inputs use cr.autograd.gradcheck(fn, inputs) with "
                         f"float64 inputs that require grad")
    trainable = [(n, p) for n, p in named if p.requires_grad]
    skipped = [n for n, p in named if not p.requires_grad]
    if not trainable:
        raise ValueError(f"{op}: none of the {len(named)} parameters of "
                         f"{type(model).__name__} requires grad, so there is no gradient to "
                         f"check; call model.requires_grad_(True) first (the check restores "
                         f"nothing you change yourself)")
    if trainable[0][1]._data.dtype.kind != "f":
        raise TypeError(f"{op}: parameter {trainable[0][0]} is {trainable[0][1].dtype}; only "
                        f"floating-point parameters have gradients")
    saved = _SavedModel(model)
    rng_state = get_rng_state()
    notes: list[str] = []
    try:
        saved.to_float64()
        xs, checked_inputs = _prepare_inputs(inputs, check_inputs)
        tgt = target
        if isinstance(target, Tensor) and target.dtype.kind == "f":
            tgt = _wrap(target._data.astype(np.float64))

        def loss_value():
            manual_seed(seed)
            out = model(*xs)
            if loss_fn is None:
                return out
            return loss_fn(out) if tgt is None else loss_fn(out, tgt)

        with enable_grad():
            loss = loss_value()
        if not isinstance(loss, Tensor) or loss._data.size != 1:
            got = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor)
                   else type(loss).__name__)
            raise ValueError(f"{op}: the loss must be a scalar tensor, got {got}; reduce it "
                             f"in loss_fn (e.g. .mean() or .sum()) or pass a loss_fn")
        if loss.dtype != np.float64:
            notes.append(f"the loss was computed in {loss.dtype}, not float64 (an op or "
                         f"module casts); the numerical gradients are imprecise")
        targets = [(n, "parameter", p) for n, p in trainable]
        targets += [(n, "input", x) for n, x in checked_inputs]
        if loss.grad_fn is None:
            raise ValueError(f"{op}: the loss does not depend on any parameter or input that "
                             f"requires grad (was it computed under no_grad or detached?)")
        grads = _grad([loss], [t for _, _, t in targets], allow_unused=True)
        rng = np.random.default_rng(seed)
        rows = []
        for (name, kind, t), g in zip(targets, grads):
            note = "" if g is not None else "not used by the loss"
            analytic = (np.zeros(t._data.size) if g is None
                        else g._data.astype(np.float64).ravel())
            if t._data.size == 0:
                continue
            coords = _coords(t._data.size, analytic, max_full, samples, rng)
            numeric = _numerical(loss_value, t, coords, eps)
            rows.append(_row(name, kind, t, analytic, coords, numeric, atol, rtol, note))
    finally:
        saved.restore()
        set_rng_state(rng_state)
    return GradCheckReport(rows, skipped, notes, eps, atol, rtol)


def _numerical(loss_value, t: Tensor, coords: np.ndarray, eps: float) -> np.ndarray:
    flat = t._data.reshape(-1)
    out = np.empty(len(coords))
    with no_grad():
        for i, j in enumerate(coords):
            orig = flat[j]
            flat[j] = orig + eps
            plus = float(loss_value()._data.item())
            flat[j] = orig - eps
            minus = float(loss_value()._data.item())
            flat[j] = orig
            out[i] = (plus - minus) / (2 * eps)
    return out
