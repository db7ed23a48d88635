"""Anomaly mode: find where a NaN or Inf in backward came from.

Under ``detect_anomaly()`` every recorded op (primitives and custom ``Function`` nodes)
keeps the stack of the user code that created it, and each backward rule's result is
checked: the first non-finite gradient raises ``FloatingPointError`` naming the backward
rule, the forward op that recorded it, and the user's line that called that op (marked
``>``, most recent call last). ``check_forward=True`` also checks every forward result as
it is recorded. Run both the forward and the backward inside the mode: traces are taken
when the op is recorded, and the check runs in backward. NumPy's own floating-point
warnings are left as they are (silence them with ``np.errstate`` if they are errors in
your setup, as in the example, so the anomaly error can name the op).

>>> import chainrule as cr
>>> import numpy as np
>>> x = cr.tensor([0.0, 4.0], requires_grad=True)
>>> with cr.autograd.detect_anomaly(), np.errstate(divide="ignore"):
...     y = cr.sqrt(x).sum()
...     try:
...         y.backward()
...     except FloatingPointError as e:
...         print(str(e).split(" returned")[0])
detect_anomaly: the backward of 'sqrt' (rule <lambda> at elementwise.py:...)

Classic NaN traps and their conventions
---------------------------------------
* ``sqrt(x)`` at ``x = 0``: the gradient is ``inf`` (PyTorch's convention, kept). Any
  zero upstream gradient then gives ``0 * inf = nan``. Use ``sqrt(x + eps)``, or
  ``safe_where`` below when exact zeros must stay exact.
* ``norm`` of a zero vector: ``cr.norm`` / ``Tensor.norm`` give the zero subgradient
  there (PyTorch's convention), but a hand-written ``sqrt((x * x).sum())`` has gradient
  ``x / 0 = nan`` at zero: use ``norm``, or ``sqrt((x * x).sum() + eps)``.
* ``log(x) * 0`` (e.g. ``p * log(p)`` with ``p = 0``): the forward already is
  ``0 * -inf = nan``; use ``xlogy``-style masking: ``safe_where(p > 0, cr.log, p, 0.0)``.
* ``x / x`` or ``a / b`` with ``b = 0``: ``inf``/``nan`` in both passes; guard ``b``.
* ``where(cond, f(x), fill)`` whose untaken branch ``f(x)`` is inf/NaN *somewhere*:
  ``where`` gives the untaken branch a zero gradient (as in PyTorch), but ``f``'s own
  backward then multiplies that zero by its infinite local derivative, and
  ``0 * inf = nan`` leaks into ``x.grad``. For example
  ``cr.where(x > 0, cr.sqrt(x), 0.0)`` has a NaN gradient at ``x = 0`` although the
  forward is fine. The fix is the *double where*: feed ``f`` only safe values,
  ``f(where(cond, x, safe))``, then select. :func:`safe_where` does exactly that::

      y = cr.safe_where(x > 0, cr.sqrt, x, 0.0)   # finite gradient everywhere
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from collections.abc import Callable

import numpy as np

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MAX_FRAMES = 8


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = False
        self.check_nan = True
        self.check_forward = False


_state = _State()


def capture_trace() -> tuple:
    """The user's stack where an op is being recorded: ``(file, line, function)`` frames,
    oldest first, with chainrule's own frames dropped (source lines are read only when an
    error is reported)."""
    frames = []
    f = sys._getframe(1)
    while f is not None and len(frames) < _MAX_FRAMES:
        code = f.f_code
        if not code.co_filename.startswith(_PKG):
            frames.append((code.co_filename, f.f_lineno, code.co_name))
        f = f.f_back
    frames.reverse()
    return tuple(frames)


def format_trace(trace) -> str:
    """Render a captured trace, marking the innermost user frame (the op's call) with ``>``."""
    if not trace:
        return ("  (no traceback recorded: run the forward pass inside detect_anomaly() "
                "too)\n")
    if isinstance(trace[0], str):
        return "".join(trace)
    lines = []
    last = len(trace) - 1
    for k, (fname, lineno, func) in enumerate(trace):
        mark = "> " if k == last else "  "
        lines.append(f"{mark}File \"{fname}\", line {lineno}, in {func}\n")
        src = linecache.getline(fname, lineno).strip()
        if src:
            tail = "    <-- this line created the op" if k == last else ""
            lines.append(f"      {src}{tail}\n")
    return "".join(lines)


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` or after ``set_detect_anomaly(True)``."""
    return _state.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly mode also checks backward results for NaN/inf."""
    return _state.enabled and _state.check_nan


class detect_anomaly:
    """Context manager: record creation tracebacks and raise on non-finite gradients.

    Args:
        check_nan: check each backward rule's result (default True); with False only
            the creation tracebacks are recorded.
        check_forward: also check each forward result as it is recorded (an extension:
            catches the op whose forward first produced a NaN/inf).

    Also usable as a decorator.
    """

    def __init__(self, check_nan: bool = True, check_forward: bool = False) -> None:
        self.check_nan = bool(check_nan)
        self.check_forward = bool(check_forward)
        self._prev: list = []

    def __enter__(self) -> detect_anomaly:
        self._prev.append((_state.enabled, _state.check_nan, _state.check_forward))
        _state.enabled = True
        _state.check_nan = self.check_nan
        _state.check_forward = self.check_forward
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled, _state.check_nan, _state.check_forward = self._prev.pop()

    def __call__(self, fn: Callable) -> Callable:
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan, self.check_forward):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Turn anomaly mode on or off: a plain call, or a context manager restoring it.

    Args:
        mode: on or off.
        check_nan: check backward results (as in :class:`detect_anomaly`).
        check_forward: also check forward results.
    """

    def __init__(self, mode: bool, check_nan: bool = True, check_forward: bool = False) -> None:
        self._prev = (_state.enabled, _state.check_nan, _state.check_forward)
        _state.enabled = bool(mode)
        _state.check_nan = bool(check_nan)
        _state.check_forward = bool(check_forward)

    def __enter__(self) -> set_detect_anomaly:
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled, _state.check_nan, _state.check_forward = self._prev


def _describe(fn) -> str:
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    return f"{name} at {os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def _rule_name(node, i: int) -> str:
    prim = getattr(node, "prim", None)
    if prim is not None:
        if prim.vjp_all is not None:
            return _describe(prim.vjp_all)
        if prim.vjps is not None and i < len(prim.vjps):
            return _describe(prim.vjps[i])
        return "?"
    return f"{node.name}.backward"


def _non_finite(arr: np.ndarray) -> str:
    if np.isnan(arr).any():
        return "nan"
    return "inf"


def check_grads(node, grads) -> None:
    """Raise if any gradient a backward rule produced is not finite."""
    if not _state.check_nan:
        return
    for i, gi in enumerate(grads):
        if gi is None:
            continue
        arr = np.asarray(getattr(gi, "_data", gi))
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            kind = _non_finite(arr)
            raise FloatingPointError(
                f"detect_anomaly: the backward of '{node.name}' (rule {_rule_name(node, i)}) "
                f"returned {kind} in the gradient of input {i} (shape {arr.shape}).\n"
                f"The forward '{node.name}' was called at (most recent call last):\n"
                f"{format_trace(node.trace)}"
                f"See the NaN traps in chainrule.autograd.anomaly (sqrt/norm at 0, "
                f"where with an inf branch: use cr.safe_where)."
            )


def check_forward(name: str, out) -> None:
    """Raise if a forward result recorded under ``check_forward`` is not finite."""
    arr = np.asarray(out)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise FloatingPointError(
            f"detect_anomaly: the forward of '{name}' produced {_non_finite(arr)} "
            f"(shape {arr.shape}), called at (most recent call last):\n"
            f"{format_trace(capture_trace())}"
        )


def record_function(node, outs) -> None:
    """Anomaly bookkeeping for a custom ``Function`` node: trace, and forward check."""
    node.trace = capture_trace()
    if _state.check_forward:
        for o in outs:
            if o is not None:
                check_forward(node.name, o._data)


def safe_where(condition, fn: Callable, input, fill=0.0, *, safe: float = 1.0):
    """``where(condition, fn(input), fill)`` with a finite gradient where it is untaken.

    ``fn`` is applied to ``where(condition, input, safe)``, so it never sees the values
    where ``condition`` is False (the "double where"); ``safe`` must be a point where
    ``fn`` and its derivative are finite.

    Args:
        condition: a bool tensor.
        fn: the function of the taken branch (e.g. ``cr.sqrt``, ``cr.log``).
        input: its argument.
        fill: the value (tensor or number) where ``condition`` is False.
        safe: the stand-in argument for ``fn`` where ``condition`` is False.

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0, 4.0], requires_grad=True)
    >>> cr.safe_where(x > 0, cr.sqrt, x, 0.0).sum().backward()
    >>> x.grad.tolist()
    [0.0, 0.25]
    """
    from ..ops.math_api import where

    return where(condition, fn(where(condition, input, safe)), fill)
