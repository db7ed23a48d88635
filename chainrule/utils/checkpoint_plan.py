"""Planning for :func:`~chainrule.utils.checkpoint.checkpoint_sequential`: which segments
to checkpoint so the bytes saved for backward stay under a budget.

The modules are run once to measure, per module, the bytes it saves for backward (each
array counted once, parameters and the caller's input not counted), its input's size and
its forward time. A dynamic programme over the layer boundaries then finds the split
with the least recomputation whose predicted peak fits the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..autograd.grad_mode import enable_grad, no_grad
from ..autograd.graph import saved_tensors_hooks
from ..nn.modules.module import Module
from ..random import get_rng_state
from ..tensor import Tensor

__all__ = ["Plan", "Segment", "plan_checkpoints"]

_TIMING_REPEATS = 2


class Segment(NamedTuple):
    """Modules ``start`` up to (not including) ``stop``; ``checkpointed`` or kept."""

    start: int
    stop: int
    checkpointed: bool


@dataclass
class Plan:
    """How a sequence of modules is split into checkpointed segments.

    Attributes:
        segments: the :class:`Segment` list, in order.
        predicted_peak: predicted peak bytes saved for backward (``None`` if not measured).
        recompute_cost: predicted seconds of recomputation per step (``None`` likewise).
        forward_cost: measured seconds of one forward of all modules.
        plain_peak: predicted peak without checkpointing.
        budget_bytes: the budget it was chosen for, if any.
        names: the module type names, for printing.
    """

    segments: list
    predicted_peak: int | None = None
    recompute_cost: float | None = None
    forward_cost: float | None = None
    plain_peak: int | None = None
    budget_bytes: int | None = None
    names: list = field(default_factory=list)

    def __str__(self) -> str:
        n = self.segments[-1].stop if self.segments else 0
        head = f"checkpoint plan for {n} modules"
        if self.budget_bytes is not None:
            head += f", budget {_fmt_bytes(self.budget_bytes)}"
        parts = [f"[{s.start}:{s.stop}]{'' if s.checkpointed else ' kept'}"
                 for s in self.segments]
        lines = [head + ":", f"  {len(self.segments)} segments "
                 f"({sum(s.checkpointed for s in self.segments)} checkpointed): "
                 + " ".join(parts)]
        if self.predicted_peak is not None:
            line = f"  predicted peak saved for backward: {_fmt_bytes(self.predicted_peak)}"
            if self.plain_peak:
                line += (f" (without checkpointing {_fmt_bytes(self.plain_peak)}, "
                         f"{self.predicted_peak / self.plain_peak:.0%})")
            lines.append(line)
        if self.recompute_cost is not None:
            line = f"  recompute per step: {self.recompute_cost * 1e3:.2f} ms"
            if self.forward_cost:
                line += f" ({self.recompute_cost / self.forward_cost:.0%} of one forward)"
            lines.append(line)
        return "\n".join(lines)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _modules_of(functions) -> list:
    if isinstance(functions, Module):
        return list(functions.children()) if len(functions._modules) else [functions]
    return list(functions)


def _units(mods: list) -> list[int]:
    """Start positions of the "layers": a module with parameters begins one, and the
    parameter-free modules after it (activations, dropout) belong to it."""
    starts = [0]
    for i in range(1, len(mods)):
        m = mods[i]
        if isinstance(m, Module) and any(True for _ in m.parameters()):
            starts.append(i)
    return starts


def _even(starts: list[int], n: int, segments: int) -> list:
    """``segments`` segments of about equal numbers of units; all but the last
    checkpointed."""
    k = len(starts)
    segments = max(1, min(segments, k))
    bounds = [starts[(j * k) // segments] for j in range(segments)] + [n]
    return [Segment(bounds[j], bounds[j + 1], j < segments - 1) for j in range(segments)]


class _Stats(NamedTuple):
    """Per module: bytes first saved (t), input bytes (inp), saves its input (u), its
    input was first saved by it (f), forward seconds (cost)."""

    t: np.ndarray
    inp: np.ndarray
    u: np.ndarray
    f: np.ndarray
    cost: np.ndarray


def _owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _profile(mods: list, input: Tensor) -> _Stats:
    """Run the modules once (random state and buffers put back) and measure each."""
    n = len(mods)
    t = np.zeros(n, dtype=np.int64)
    inp = np.zeros(n, dtype=np.int64)
    u = np.zeros(n, dtype=bool)
    f = np.zeros(n, dtype=bool)
    cost = np.zeros(n)
    excluded = set()
    keep = []
    for m in mods:
        if isinstance(m, Module):
            for p in (*m.parameters(), *m.buffers()):
                if p is not None:
                    o = _owner(p._data)
                    excluded.add(id(o))
                    keep.append(o)
    seen: dict = {}
    cur = [0, None]  # module index, its input owner id

    def pack(x):
        if isinstance(x, Tensor) and not (x.requires_grad and x.grad_fn is None):
            o = _owner(x._data)
            key = id(o)
            if key not in excluded:
                i = cur[0]
                if key == cur[1]:
                    u[i] = True
                if key not in seen:
                    seen[key] = o
                    t[i] += o.nbytes
                    if key == cur[1]:
                        f[i] = True
        return x

    from .checkpoint import _replay

    modules = [m for m in mods if isinstance(m, Module)]
    x = input
    with saved_tensors_hooks(pack, _same), enable_grad(), _replay(get_rng_state(), modules):
        for i, m in enumerate(mods):
            cur[1] = None
            if isinstance(x, Tensor):
                o = _owner(x._data)
                if i == 0:  # the caller's input: held by the caller, not counted
                    excluded.add(id(o))
                    keep.append(o)
                cur[1] = id(o)
                inp[i] = 0 if id(o) in excluded else o.nbytes
            cur[0] = i
            t0 = time.perf_counter()
            y = m(x)
            best = time.perf_counter() - t0
            # the first call may pay for warm-up: time two more (nothing saved) and keep
            # the fastest, so plans do not hinge on one noisy sample
            with no_grad():
                for _ in range(_TIMING_REPEATS):
                    t0 = time.perf_counter()
                    m(x)
                    best = min(best, time.perf_counter() - t0)
            cost[i] = best
            x = y
        del x, y
    return _Stats(t, inp, u, f, cost)


def _same(x):
    return x


def _seg_costs(s: _Stats):
    tp = np.concatenate([[0], np.cumsum(s.t)])
    cp = np.concatenate([[0.0], np.cumsum(s.cost)])

    def kept(p: int, q: int) -> int:
        extra = s.inp[p] if (s.u[p] and not s.f[p]) else 0
        return int(tp[q] - tp[p] + extra)

    def recomputed(p: int, q: int) -> int:
        return int(tp[q] - tp[p] - (s.inp[p] if s.f[p] else 0) + s.inp[p])

    def cost(p: int, q: int) -> float:
        return float(cp[q] - cp[p])

    return kept, recomputed, cost


def _evaluate(s: _Stats, segments: list) -> tuple[int, float]:
    """Predicted (peak bytes, recompute seconds) of a segment list."""
    kept, recomputed, cost = _seg_costs(s)
    held = 0
    peak = 0
    rc = 0.0
    for seg in segments:
        p, q = seg.start, seg.stop
        if seg.checkpointed:
            peak = max(peak, held + recomputed(p, q))
            held += int(s.inp[p])
            rc += cost(p, q)
        else:
            peak = max(peak, held + kept(p, q))
            held += kept(p, q)
    return peak, rc


def _search(s: _Stats, budget: float, minimize_peak: bool, points: list[int]):
    """Best segment list under ``budget``: least recompute time, or least peak.

    A dynamic programme over the split ``points`` (layer starts, then ``n``) keeping, at
    each point, the Pareto front of (bytes held for later segments, objective). Returns
    ``(segments, peak, cost)`` or None when nothing fits.
    """
    n = len(s.t)
    kept, recomputed, cost = _seg_costs(s)
    # state: (held, objective, peak, parent state, segment)
    fronts: dict[int, list] = {p: [] for p in points}
    fronts[0].append((0, 0.0, 0, None, None))
    for a, p in enumerate(points[:-1]):
        for st in fronts[p]:
            held, obj, peak = st[0], st[1], st[2]
            for q in points[a + 1:]:
                ok = False
                need = held + recomputed(p, q)
                if need <= budget:
                    ok = True
                    pk = max(peak, need)
                    o = pk if minimize_peak else obj + cost(p, q)
                    _offer(fronts[q], (held + int(s.inp[p]), o, pk, st, Segment(p, q, True)))
                need = held + kept(p, q)
                if need <= budget:
                    ok = True
                    pk = max(peak, need)
                    o = pk if minimize_peak else obj
                    _offer(fronts[q], (held + kept(p, q), o, pk, st, Segment(p, q, False)))
                if not ok:
                    break
    if not fronts[n]:
        return None
    best = min(fronts[n], key=lambda st: (st[1], st[2]))
    segs = []
    st = best
    while st[3] is not None:
        segs.append(st[4])
        st = st[3]
    segs.reverse()
    return segs, best[2], _evaluate(s, segs)[1]


def _offer(front: list, st: tuple) -> None:
    """Add ``st`` to a Pareto front over (held, objective), dropping dominated states."""
    held, obj = st[0], st[1]
    for other in front:
        if other[0] <= held and other[1] <= obj:
            return
    front[:] = [o for o in front if not (held <= o[0] and obj <= o[1])]
    front.append(st)


def plan_checkpoints(functions, input: Tensor, budget_bytes: int) -> Plan:
    """Choose checkpointed segments so the bytes saved for backward stay under a budget.

    The modules are run once (random state and buffers restored) to measure, per
    module, the bytes it saves for backward, its input's size and its forward time.
    Among all splits into contiguous segments (each checkpointed or kept), the one with
    the least predicted recomputation whose predicted peak fits ``budget_bytes`` wins.
    The prediction counts each array once per segment and errs on the high side.

    Args:
        functions: a ``Sequential`` or a list of modules.
        input: a representative input (same shape as in training).
        budget_bytes: the most bytes to hold for backward at once (parameters and the
            input itself are not counted, as in :func:`~chainrule.diagnostics.memory_report`).

    Returns:
        A :class:`Plan`; pass it as ``segments=`` to :func:`checkpoint_sequential`.

    Raises:
        ValueError: the budget is below what the largest single layer needs, or no
            split fits (the message gives the smallest peak that can be reached).

    >>> import chainrule as cr
    >>> net = cr.nn.Sequential(*[cr.nn.Sequential(cr.nn.Linear(16, 16), cr.nn.ReLU())
    ...                          for _ in range(9)])
    >>> plan = plan_checkpoints(net, cr.randn(8, 16), budget_bytes=2560)
    >>> plan.plain_peak, plan.predicted_peak      # 9 ReLU outputs of 8 x 16 floats
    (4608, 2560)
    >>> print(plan)  # doctest: +SKIP
    checkpoint plan for 9 modules, budget 2.50 KiB:
      2 segments (1 checkpointed): [0:5] [5:9] kept
      predicted peak saved for backward: 2.50 KiB (without checkpointing 4.50 KiB, 56%)
      recompute per step: 0.14 ms (54% of one forward)
    """
    op = "plan_checkpoints"
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, (int, float)) \
            or budget_bytes <= 0:
        raise ValueError(f"{op}: budget_bytes must be a positive number, got {budget_bytes!r}")
    mods = _modules_of(functions)
    if not mods:
        raise ValueError(f"{op}: no modules to plan")
    s = _profile(mods, input)
    n = len(mods)
    _, recomputed, _ = _seg_costs(s)
    points = [*_units(mods), n]
    single = [recomputed(p, q) for p, q in zip(points, points[1:])]
    k = int(np.argmax(single))
    worst = points[k]
    if budget_bytes < single[k]:
        best = _search(s, float("inf"), True, points)
        raise ValueError(
            f"{op}: budget_bytes={int(budget_bytes)} is smaller than the activations of the "
            f"largest single layer: module {worst} ({type(mods[worst]).__name__}) needs "
            f"{single[k]} bytes (its input and what it saves for backward); the "
            f"smallest peak any plan reaches is {best[1]} bytes")
    found = _search(s, budget_bytes, False, points)
    if found is None:
        best = _search(s, float("inf"), True, points)
        raise ValueError(
            f"{op}: no checkpoint plan keeps the saved bytes under budget_bytes="
            f"{int(budget_bytes)}; the smallest peak any plan reaches is {best[1]} bytes")
    segs, peak, rc = found
    plain = _evaluate(s, [Segment(0, n, False)])[0]
    return Plan(segs, predicted_peak=peak, recompute_cost=rc,
                forward_cost=float(s.cost.sum()), plain_peak=plain,
                budget_bytes=int(budget_bytes), names=[type(m).__name__ for m in mods])
