"""Anomaly mode: find where a NaN or Inf in backward came from.

Under ``detect_anomaly()`` every recorded op keeps the traceback of the line that created
it, and each backward rule's result is checked: a non-finite gradient raises naming the
backward rule, the forward op, and that line.
"""

from __future__ import annotations

import threading
import traceback

import numpy as np


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = False
        self.check_forward = False


_state = _State()


def capture_trace() -> list[str]:
    """The user's stack at the point an op was recorded (chainrule frames dropped)."""
    frames = traceback.extract_stack()[:-1]
    keep = [f for f in frames if "/chainrule/" not in f.filename.replace("\\", "/")]
    return traceback.format_list(keep[-6:])


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` or after ``set_detect_anomaly(True)``."""
    return _state.enabled


class detect_anomaly:
    """Context manager: record creation tracebacks and raise on non-finite gradients.

    Args:
        check_nan: check each backward rule's result (default True).
        check_forward: also check each forward result as it is recorded.
    """

    def __init__(self, check_nan: bool = True, check_forward: bool = False) -> None:
        self.check_nan = check_nan
        self.check_forward = check_forward

    def __enter__(self):
        self._prev = (_state.enabled, _state.check_forward)
        _state.enabled = self.check_nan
        _state.check_forward = self.check_forward
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled, _state.check_forward = self._prev


class set_detect_anomaly:
    """Turn anomaly mode on or off (a function call, or a context manager)."""

    def __init__(self, mode: bool, check_forward: bool = False) -> None:
        self._prev = (_state.enabled, _state.check_forward)
        _state.enabled = bool(mode)
        _state.check_forward = bool(check_forward)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled, _state.check_forward = self._prev


def check_grads(node, grads) -> None:
    """Raise if any gradient a backward rule produced is not finite."""
    for i, gi in enumerate(grads):
        if gi is None:
            continue
        arr = np.asarray(getattr(gi, "_data", gi))
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            kind = "nan" if np.isnan(arr).any() else "inf"
            where = "".join(node.trace) if node.trace else "  (no traceback recorded)\n"
            raise FloatingPointError(
                f"detect_anomaly: the backward of '{node.name}' returned {kind} values in "
                f"its gradient for input {i} (shape {arr.shape}).\n"
                f"The forward '{node.name}' was created at:\n{where}"
            )


def check_forward(name: str, out) -> None:
    """Raise if a forward result recorded under check_forward is not finite."""
    arr = np.asarray(out)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise FloatingPointError(
            f"detect_anomaly: the forward of '{name}' produced non-finite values "
            f"(shape {arr.shape}).\n" + "".join(capture_trace())
        )
