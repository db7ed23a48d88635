"""Mixed precision: ``autocast`` runs the GEMM ops in float16, ``GradScaler`` scales the loss.

Under ``autocast(dtype=cr.float16)``:

- **float16 ops** (matmul, ``linear``, convolution): float inputs are rounded to float16
  and the result is float16. The product itself is computed from the rounded values with
  float32 accumulation, as tensor-core GEMMs do (equal, up to summation order, to
  NumPy's float16 matmul, which is about ten times slower: it has no BLAS path).
- **float32 ops** (softmax, log_softmax, logsumexp, and so cross-entropy; batch, layer and
  group normalisation): float16 inputs are computed in float32 and give float32 results.
  Losses between a float16 output and a float32 target promote to float32 on their own.
- everything else runs in the dtype of its inputs.

Parameters stay float32 ("master weights"): the engine casts each gradient back to its
input's dtype, so ``w.grad`` is float32 even though the forward used a float16 copy.
Gradients that flow through float16 activations can underflow to zero; ``GradScaler``
multiplies the loss by a large factor before backward, divides the gradients by it
before the step, and skips steps whose gradients overflowed (lowering the factor).

The hot path: each float16/float32-list op reads one module-level counter (``_on[0]``,
the number of open autocast regions in any thread) and does nothing else when it is 0.
This module imports nothing from chainrule at import time, so the ops may import it.

>>> import chainrule as cr
>>> w = cr.randn(4, 3, requires_grad=True)
>>> x = cr.randn(2, 4)
>>> with cr.amp.autocast("cpu", dtype=cr.float16):
...     y = x @ w
...     p = y.softmax(-1)
>>> str(y.dtype), str(p.dtype)
('float16', 'float32')
>>> p.sum().backward()
>>> str(w.grad.dtype)
'float32'
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)

# Open autocast regions (enabled ones) across all threads; ops test this before anything.
_on = [0]
_on_lock = threading.Lock()


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = False
        self.dtype = _F16


_state = _State()


def is_autocast_enabled(device_type: str = "cpu") -> bool:
    """True inside an enabled ``autocast`` region of this thread."""
    return _state.enabled


def get_autocast_dtype(device_type: str = "cpu") -> np.dtype:
    """The low-precision dtype autocast uses in this thread (float16)."""
    return _state.dtype


def in_autocast() -> bool:
    """For ops: True when this thread is in an enabled autocast region."""
    return _state.enabled


def run_lowp(fwd: Callable, *args, **kwargs):
    """For float16-list ops: run forward ``fwd`` on float16-rounded inputs.

    float32/float16 arrays among ``args`` are rounded to float16 (kept as float32 for a
    fast GEMM); the result is cast to float16. float64 inputs are not eligible (as in
    PyTorch): the op then runs as it would outside autocast. Autocast is off while
    ``fwd`` runs, so the op's own hook does not fire again.
    """
    call = []
    cast = False
    for a in args:
        if type(a) is np.ndarray and a.dtype.kind == "f":
            if a.dtype == _F32:
                a = a.astype(_F16).astype(_F32)
                cast = True
            elif a.dtype == _F16:
                a = a.astype(_F32)
                cast = True
            else:
                # NOTE: like PyTorch, float64 is not eligible: the op runs as without
                # autocast (type promotion applies)
                return _outside(fwd, args, kwargs)
        call.append(a)
    if not cast:
        return _outside(fwd, args, kwargs)
    out = _outside(fwd, call, kwargs)
    return np.asarray(out).astype(_F16, copy=False)


def _outside(fwd: Callable, args, kwargs):
    st = _state
    st.enabled = False
    try:
        return fwd(*args, **kwargs)
    finally:
        st.enabled = True


def cast_like_lowp(t, out):
    """For ops whose float16 GEMM result ``out`` gets a float32 ``t`` added (conv bias):
    ``t`` cast (differentiably) to float16 under autocast, else ``t`` unchanged."""
    if _state.enabled and out.dtype == _F16 and t.dtype == _F32:
        from .ops.elementwise import cast

        return cast(t, _F16)
    return t


def to_fp32(x):
    """For float32-list ops: ``x`` as float32 when autocast is on and it is float16."""
    if _state.enabled and x.dtype == _F16:
        return x.astype(_F32)
    return x


def _check_dtype(dtype) -> np.dtype:
    if dtype is None:
        return _F16
    name = getattr(dtype, "name", dtype)
    if isinstance(name, str) and name in ("bfloat16", "torch.bfloat16"):
        raise ValueError("autocast: dtype bfloat16 is not supported (NumPy has no bfloat16); "
                         "use float16")
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d != _F16:
        raise ValueError(f"autocast: unsupported dtype {dtype!r}; the only supported "
                         f"low-precision dtype is float16 (cr.float16)")
    return d


class autocast:
    """Context manager (or decorator): run eligible ops in mixed precision.

    Args:
        device_type: ``"cpu"`` (the only device).
        dtype: the low-precision dtype; ``None`` or ``cr.float16`` (PyTorch's CPU default
            is bfloat16, which NumPy lacks, so float16 is used).
        enabled: ``False`` makes the region a no-op; ``autocast(enabled=False)`` inside
            an enabled region turns autocast off there (e.g. for a sensitive sub-block).
        cache_enabled: accepted for PyTorch compatibility; there is no cast cache.

    Backward should run outside the region, as in PyTorch: each op's backward uses the
    dtypes its forward chose.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str) or device_type != "cpu":
            raise ValueError(f"autocast: device_type must be 'cpu', got {device_type!r}")
        self.device = device_type
        self.fast_dtype = _check_dtype(dtype)
        self._enabled = bool(enabled)
        self._prev: list = []

    def __enter__(self) -> autocast:
        st = _state
        self._prev.append((st.enabled, st.dtype))
        st.enabled = self._enabled
        st.dtype = self.fast_dtype
        if self._enabled:
            with _on_lock:
                _on[0] += 1
        return self

    def __exit__(self, *exc) -> None:
        st = _state
        st.enabled, st.dtype = self._prev.pop()
        if self._enabled:
            with _on_lock:
                _on[0] -= 1

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)

        return wrapper


# ---------------------------------------------------------------- loss scaling
_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


def _apply(outputs, fn):
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_apply(o, fn) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _apply(v, fn) for k, v in outputs.items()}
    return fn(outputs)


class GradScaler:
    """Dynamic loss scaling for mixed-precision training (PyTorch's ``GradScaler``).

    Each iteration: ``scaler.scale(loss).backward()``, optionally ``scaler.unscale_(opt)``
    (to clip true gradients), ``scaler.step(opt)`` (skipped when a gradient is inf or
    NaN), ``scaler.update()`` (halve the scale after a skip, double it after
    ``growth_interval`` clean steps).

    Args:
        device: ``"cpu"``.
        init_scale: the starting scale factor.
        growth_factor: multiplies the scale after ``growth_interval`` clean steps (> 1).
        backoff_factor: multiplies the scale after a step with inf/NaN gradients (< 1).
        growth_interval: clean steps between growths.
        enabled: ``False`` makes every method a pass-through (``step`` just steps).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.ones(2))
    >>> opt = cr.optim.SGD([w], lr=0.1)
    >>> scaler = cr.amp.GradScaler(init_scale=1024.0)
    >>> scaler.scale((w * 3).sum()).backward()
    >>> scaler.step(opt)
    >>> scaler.update()
    >>> w.tolist(), scaler.get_scale()
    ([0.699999988079071, 0.699999988079071], 1024.0)
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if device != "cpu":
            raise ValueError(f"GradScaler: device must be 'cpu', got {device!r}")
        if not init_scale > 0:
            raise ValueError(f"GradScaler: init_scale must be positive, got {init_scale}")
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got "
                             f"{backoff_factor}")
        if int(growth_interval) != growth_interval or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval}")
        self._enabled = bool(enabled)
        self._init_scale = float(init_scale)
        self._scale: float | None = None
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._scaled = False
        self._per_opt: dict[int, dict] = {}

    # -------------------------------------------------------------- the iteration
    def scale(self, outputs):
        """Multiply a tensor (or a list/tuple/dict of them) by the current scale."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = self._init_scale
        self._scaled = True
        s = self._scale

        def one(t):
            from .tensor import Tensor

            if not isinstance(t, Tensor):
                raise TypeError(f"GradScaler.scale: expected tensors, got {type(t).__name__}")
            return t * s

        return _apply(outputs, one)

    def _need_scale(self, what: str) -> None:
        if self._scale is None or not self._scaled:
            raise RuntimeError(
                f"GradScaler.{what}: no scale() since the last update(); call "
                f"scaler.scale(loss).backward() before {what}() in each iteration (the "
                f"gradients would otherwise be divided by a scale they never had)")

    def _opt_state(self, optimizer) -> dict:
        return self._per_opt.setdefault(id(optimizer), {"stage": _READY, "found_inf": None})

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and record inf/NaN.

        Call it before clipping so the clip sees true gradients; ``step`` then does not
        unscale again. At most once per optimizer per iteration.
        """
        if not self._enabled:
            return
        self._need_scale("unscale_")
        st = self._opt_state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: unscale_() has already been called on "
                               "this optimizer since the last update()")
        if st["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.unscale_: unscale_() is being called after step()")
        grads = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g._data.dtype == _F16:
                    raise ValueError(
                        "GradScaler.unscale_: attempting to unscale float16 gradients; keep "
                        "the parameters float32 (autocast casts them for the float16 ops)")
                grads.append(g)
        inv = 1.0 / self._scale
        found = False
        for g in grads:
            arr = g._data
            if not found and not np.isfinite(arr).all():
                found = True
            g._data = (arr * inv).astype(arr.dtype, copy=False)
        st["found_inf"] = found
        st["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless done) and step ``optimizer``, unless a gradient is inf or NaN.

        Returns what ``optimizer.step`` returns, or ``None`` when the step was skipped.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closure use is not supported when the "
                               "scaler is enabled")
        self._need_scale("step")
        st = self._opt_state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.step: step() has already been called since the "
                               "last update()")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        st["stage"] = _STEPPED
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adjust the scale for the next iteration (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            s = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
            if not s > 0:
                raise ValueError(f"GradScaler.update: new_scale must be positive, got {s}")
            self._scale = s
        else:
            self._need_scale("update")
            found = [st["found_inf"] for st in self._per_opt.values()
                     if st["found_inf"] is not None]
            if not found:
                raise RuntimeError("GradScaler.update: no inf checks were recorded before "
                                   "update(); call step(optimizer) (or unscale_) first")
            if any(found):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_opt = {}
        self._scaled = False

    # -------------------------------------------------------------- accessors
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled; ``init_scale`` before the first scale)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale

    def get_growth_factor(self) -> float:
        """The growth factor."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor."""
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        """The backoff factor."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor."""
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        """The growth interval."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval."""
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        """Whether the scaler does anything."""
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """``scale``, the factors, the interval and ``_growth_tracker`` ({} if disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty, "
                               "possibly because it was saved from a disabled GradScaler")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                   "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {sorted(missing)}")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = self._init_scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    def __repr__(self) -> str:
        return (f"GradScaler(scale={self.get_scale()}, growth_factor={self._growth_factor}, "
                f"backoff_factor={self._backoff_factor}, "
                f"growth_interval={self._growth_interval}, enabled={self._enabled})")
