"""Memory held for backward: bytes saved per op and per module, the peak and the total.

Every tensor an operation saves for backward passes through a saved-tensor pack hook
(:class:`chainrule.autograd.graph.saved_tensors_hooks`). :class:`SavedMemoryTracker` is
such a hook: it wraps what is saved in a small handle and counts the bytes of the
underlying array while any handle to it is alive. The engine drops a node's saved values
once backward has used them (unless ``retain_graph``), which releases the handles, so
the count falls during backward exactly as memory is given back.

Rules of the count:

- each underlying array (the owner of the memory, found through NumPy's ``.base``) is
  counted once, however many ops save it or views of it;
- parameters and buffers of the modules watched, tensors passed to
  :func:`memory_report`, and any leaf tensor that requires grad are not counted: they
  are held by their owner whether or not backward needs them;
- bytes go to the op that first saved the array and to the innermost module running at
  that moment (found with forward pre/post hooks on the modules watched).

The hooks compose with those already active (e.g. :func:`chainrule.autograd.graph.
compress_saved` inside a tracker counts compressed bytes; checkpointing inside a tracker
counts the stored segment inputs and the tensors recomputed in backward).

>>> import chainrule as cr
>>> net = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 1))
>>> rep = memory_report(net, cr.randn(16, 4))
>>> rep.peak_bytes == rep.total_bytes == 16 * 8 * 4   # the ReLU output, saved once
True
>>> rep.held_after_backward
0
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..autograd.compress import enclosing_hooks
from ..autograd.graph import saved_tensors_hooks, saving_op
from ..tensor import Tensor

__all__ = ["MemoryReport", "SavedMemoryTracker", "SavedRecord", "memory_report"]

_NO_MODULE = "(no module)"


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself when it is not a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _op_name() -> str:
    """Name of the operation whose pack hook is running (``graph.saving_op()``)."""
    return saving_op() or "?"


@dataclass
class SavedRecord:
    """One array saved for backward: who saved it first, its size, how often it was saved."""

    op: str
    module: str
    shape: tuple
    dtype: str
    nbytes: int
    saves: int = 1


class _Held:
    """The packed form of one saved value while the tracker watches it."""

    __slots__ = ("inner", "__weakref__")

    def __init__(self, inner) -> None:
        self.inner = inner


class SavedMemoryTracker(saved_tensors_hooks):
    """Context manager counting the bytes saved for backward over time.

    Args:
        modules: modules whose forward calls name the bytes (``by_module``); their
            parameters and buffers are not counted.
        exclude: tensors not to count (held elsewhere anyway, e.g. the input batch).

    After (or during) the context: ``live_bytes``, ``peak_bytes``, ``total_bytes``,
    ``by_op``, ``by_module``, ``records`` and ``timeline`` (live bytes after each change).
    :func:`memory_report` wraps it for the usual forward-and-backward case.
    """

    def __init__(self, modules: Iterable | None = None, exclude: Iterable = ()) -> None:
        super().__init__(self._pack, self._unpack)
        self.live_bytes = 0
        self.peak_bytes = 0
        self.total_bytes = 0
        self.by_op: dict[str, int] = {}
        self.by_module: dict[str, int] = {}
        self.records: list[SavedRecord] = []
        self.timeline: list[int] = []
        self._live: dict[int, list] = {}  # owner id -> [handles alive, nbytes, record]
        self._excluded: set[int] = set()
        self._keep: list = []  # the excluded owners, so their ids stay theirs
        self._stack: list[str] = []
        self._handles: list = []
        self._modules = list(modules or [])
        for t in exclude:
            self._exclude(t)
        self._store: Callable = _none
        self._load: Callable = _none

    def _exclude(self, t) -> None:
        if isinstance(t, Tensor):
            o = _owner(t._data)
            self._excluded.add(id(o))
            self._keep.append(o)

    # ------------------------------------------------------------------ context
    def __enter__(self):
        self._store, self._load = enclosing_hooks()
        for root in self._modules:
            rname = type(root).__name__
            for name, m in root.named_modules():
                label = f"{name} ({type(m).__name__})" if name else rname
                self._handles.append(m.register_forward_pre_hook(self._enter_module(label)))
                self._handles.append(m.register_forward_hook(self._leave_module))
                for p in m.parameters(recurse=False):
                    self._exclude(p)
                for b in m.buffers(recurse=False):
                    self._exclude(b)
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.remove_module_hooks()

    def remove_module_hooks(self) -> None:
        """Unregister the forward hooks (also done when the context exits)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._stack = []

    def _enter_module(self, label: str):
        def pre(module, args):
            self._stack.append(label)
        return pre

    def _leave_module(self, module, args, out) -> None:
        if self._stack:
            self._stack.pop()

    # ------------------------------------------------------------------ hooks
    def _pack(self, t):
        held = _Held(self._store(t))
        if not isinstance(t, Tensor):
            return held
        if t.requires_grad and t.grad_fn is None:
            self._exclude(t)
            return held
        owner = _owner(t._data)
        key = id(owner)
        if key in self._excluded:
            return held
        ent = self._live.get(key)
        if ent is None:
            nbytes = int(owner.nbytes)
            op = _op_name()
            module = self._stack[-1] if self._stack else _NO_MODULE
            rec = SavedRecord(op, module, tuple(owner.shape), str(owner.dtype), nbytes)
            self.records.append(rec)
            self._live[key] = [1, nbytes, rec]
            self.total_bytes += nbytes
            self.by_op[op] = self.by_op.get(op, 0) + nbytes
            self.by_module[module] = self.by_module.get(module, 0) + nbytes
            self.live_bytes += nbytes
            if self.live_bytes > self.peak_bytes:
                self.peak_bytes = self.live_bytes
            self.timeline.append(self.live_bytes)
        else:
            ent[0] += 1
            ent[2].saves += 1
        # t keeps owner alive while the handle lives, so the id stays this array's
        weakref.finalize(held, self._release, key)
        return held

    def _unpack(self, held):
        return self._load(held.inner)

    def _release(self, key: int) -> None:
        ent = self._live.get(key)
        if ent is None:
            return
        ent[0] -= 1
        if ent[0] == 0:
            del self._live[key]
            self.live_bytes -= ent[1]
            self.timeline.append(self.live_bytes)

    def report(self, **extra) -> MemoryReport:
        """A :class:`MemoryReport` of what was counted so far."""
        return MemoryReport(peak_bytes=self.peak_bytes, total_bytes=self.total_bytes,
                            by_op=dict(self.by_op), by_module=dict(self.by_module),
                            records=list(self.records), timeline=list(self.timeline),
                            **extra)


def _none(x):
    return x


@dataclass
class MemoryReport:
    """Bytes saved for backward during one forward and backward.

    Attributes:
        peak_bytes: the most bytes held for backward at any moment.
        total_bytes: all distinct bytes ever saved (the peak when nothing is freed early).
        by_op: bytes per op name (first saver of each array).
        by_module: bytes per module (innermost module running when first saved).
        held_after_forward: bytes held when the forward returned.
        held_after_backward: bytes still held after backward (0 unless the graph is
            retained or saved tensors leak).
        records: one :class:`SavedRecord` per distinct array.
        timeline: live bytes after each change, in order.
    """

    peak_bytes: int
    total_bytes: int
    by_op: dict = field(default_factory=dict)
    by_module: dict = field(default_factory=dict)
    held_after_forward: int = 0
    held_after_backward: int = 0
    records: list = field(default_factory=list)
    timeline: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"saved for backward: peak {_fmt_bytes(self.peak_bytes)}, total "
            f"{_fmt_bytes(self.total_bytes)} ({len(self.records)} arrays); held after "
            f"forward {_fmt_bytes(self.held_after_forward)}, after backward "
            f"{_fmt_bytes(self.held_after_backward)}",
        ]
        for title, table in (("by op", self.by_op), ("by module", self.by_module)):
            if not table:
                continue
            lines.append(f"{title}:")
            width = max(len(k) for k in table)
            for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:20]:
                share = 100.0 * v / self.total_bytes if self.total_bytes else 0.0
                lines.append(f"  {k.ljust(width)}  {_fmt_bytes(v):>12}  {share:5.1f}%")
            if len(table) > 20:
                lines.append(f"  ... {len(table) - 20} more")
        return "\n".join(lines)


def _tensors_in(obj) -> list:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        out = []
        for o in obj:
            out.extend(_tensors_in(o))
        return out
    if isinstance(obj, dict):
        return _tensors_in(list(obj.values()))
    return []


def memory_report(fn: Callable, *args, backward: bool = True, modules: Iterable | None = None,
                  **kwargs) -> MemoryReport:
    """Run ``fn(*args, **kwargs)`` and its backward, counting the bytes saved for backward.

    Args:
        fn: a module or function returning a tensor (or tensors); non-scalar outputs get
            a gradient of ones.
        *args, **kwargs: its arguments (their tensors are not counted).
        backward: also run backward (gradients accumulate into ``.grad`` as usual).
        modules: modules to name in ``by_module``; by default the modules found in
            ``fn`` (a module, a bound method, or modules its closure or globals name)
            and in ``args``.

    Returns:
        A :class:`MemoryReport`; ``print`` it for a table.
    """
    from ..autograd.engine import backward as run_backward
    from ..utils.checkpoint import find_modules

    if modules is None:
        modules = find_modules(fn, args)
    tracker = SavedMemoryTracker(modules, exclude=_tensors_in(list(args)) +
                                 _tensors_in(list(kwargs.values())))
    with tracker:
        out = fn(*args, **kwargs)
        after_fwd = tracker.live_bytes
        if backward:
            roots = [t for t in _tensors_in(out) if t.requires_grad]
            if not roots:
                raise RuntimeError("memory_report: the output of fn does not require grad, "
                                   "so there is no backward; pass backward=False or "
                                   "inputs/parameters that require grad")
            grads = [None if t._data.size == 1 else np.ones(t._data.shape, t._data.dtype)
                     for t in roots]
            run_backward(roots, grads)
            del roots
        after_bwd = tracker.live_bytes
    del out
    return tracker.report(held_after_forward=after_fwd,
                          held_after_backward=after_bwd if backward else after_fwd)
