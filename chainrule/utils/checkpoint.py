"""Gradient checkpointing: trade compute for memory by recomputing activations in backward.

``checkpoint(fn, *args)`` runs ``fn`` keeping none of the tensors its operations save for
backward, only its inputs; the first time backward needs one of them, ``fn`` runs again
(with the random state of the first run, so dropout masks repeat, and with batch-norm
running statistics put back afterwards, so they are updated once) and the recomputed
tensors are used and freed one by one.

The default (``use_reentrant=False``) is built on saved-tensor hooks like PyTorch's: the
graph is recorded as usual (so ``autograd.grad``, parameters and hooks behave as without
checkpointing) and only the saved tensors are replaced by handles. ``use_reentrant=True``
is the older form, a custom :class:`~chainrule.autograd.Function` whose backward reruns
``fn`` and calls ``backward`` inside backward (parameter gradients go to ``.grad`` only).

``checkpoint_sequential(seq, segments, input)`` splits a sequence of modules into
segments, checkpoints all but the last, and accepts ``segments='sqrt'`` (about sqrt(n)
segments, the O(sqrt n) memory schedule) or ``budget_bytes=`` (a :class:`Plan` chosen
from measured per-layer activation sizes, see :func:`plan_checkpoints`).

>>> import chainrule as cr
>>> net = cr.nn.Sequential(*[cr.nn.Linear(8, 8) for _ in range(4)])
>>> x = cr.randn(2, 8, requires_grad=True)
>>> y = checkpoint(net, x)
>>> y.sum().backward()
>>> x.grad.shape
(2, 8)
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Callable, Iterable

from ..autograd.compress import enclosing_hooks
from ..autograd.engine import backward as _backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..autograd.graph import saved_tensors_hooks, saving_as
from ..nn.modules.module import Module
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor
from .checkpoint_plan import (
    Plan,
    Segment,
    _evaluate,
    _even,
    _modules_of,
    _profile,
    _units,
    plan_checkpoints,
)

__all__ = ["Plan", "Segment", "checkpoint", "checkpoint_sequential", "find_modules",
           "plan_checkpoints"]


# ---------------------------------------------------------------------- module discovery
def find_modules(fn, args: Iterable = ()) -> list[Module]:
    """The modules ``fn(*args)`` is likely to call: ``fn`` itself, a bound method's
    module, ``functools.partial`` parts, modules in its closure, defaults or the globals
    it names, and modules among ``args``. Descendants of a module found are dropped
    (they are reached through it)."""
    found: list = []
    seen: set = set()
    visited: set = set()

    def add(obj, depth: int = 0) -> None:
        if isinstance(obj, Module):
            if id(obj) not in seen:
                seen.add(id(obj))
                found.append(obj)
        elif isinstance(obj, (list, tuple)) and depth < 2:
            for o in obj:
                add(o, depth + 1)
        elif callable(obj) and depth < 3 and id(obj) not in visited:
            visited.add(id(obj))
            scan(obj, depth + 1)

    def scan(f, depth: int) -> None:
        add(getattr(f, "__self__", None), depth)
        if isinstance(f, functools.partial):
            add(f.func, depth)
            add(f.args, depth)
            add(list(f.keywords.values()), depth)
            return
        if not isinstance(f, types.FunctionType):
            return
        for cell in f.__closure__ or ():
            try:
                add(cell.cell_contents, depth)
            except ValueError:  # an empty cell
                pass
        add(f.__defaults__ or (), depth)
        glb = f.__globals__
        for name in f.__code__.co_names:
            add(glb.get(name), depth)

    add(fn)
    add(list(args))
    inner = set()
    for m in found:
        for sub in m.modules():
            if sub is not m:
                inner.add(id(sub))
    return [m for m in found if id(m) not in inner]


def _snapshot_buffers(modules: list) -> list:
    """Copies of the buffers of modules in training mode (they may change in forward)."""
    saved = []
    for root in modules:
        for m in root.modules():
            if not m.training:
                continue
            for b in m.buffers(recurse=False):
                if b is not None:
                    saved.append((b, b._data.copy()))
    return saved


def _restore_buffers(saved: list) -> None:
    for b, arr in saved:
        if b._data.shape == arr.shape and b._data.flags.writeable:
            b._data[...] = arr
        else:
            b._data = arr


class _replay:
    """Run a recomputation as the first run went: its random state, and buffers (batch
    norm running statistics) restored afterwards so they are updated once."""

    def __init__(self, rng_state: dict | None, modules: list) -> None:
        self.rng_state = rng_state
        self.modules = modules

    def __enter__(self):
        self.buffers = _snapshot_buffers(self.modules)
        self.current = None
        if self.rng_state is not None:
            self.current = get_rng_state()
            set_rng_state(self.rng_state)
        return self

    def __exit__(self, *exc) -> None:
        if self.current is not None:
            set_rng_state(self.current)
        _restore_buffers(self.buffers)


# ---------------------------------------------------------------------- non-reentrant
class _Handle:
    """What a node keeps instead of a saved tensor: its frame and position."""

    __slots__ = ("frame", "k")

    def __init__(self, frame: _Frame, k: int) -> None:
        self.frame = frame
        self.k = k


class _Frame:
    """One checkpointed call: how to rerun it and the tensors recomputed, by position."""

    def __init__(self, fn, args, kwargs, rng_state, modules, name: str) -> None:
        self.store, self.load = enclosing_hooks()
        self.fn = fn
        self.kwargs = kwargs
        self.rng_state = rng_state
        self.modules = modules
        self.name = name
        self.inputs = []
        with saving_as(f"checkpoint({name})"):
            for a in args:
                if isinstance(a, Tensor):
                    leaf = a.requires_grad and a.grad_fn is None
                    kept = a if leaf else a.detach()
                    self.inputs.append(("t", self.store(kept), a.requires_grad))
                else:
                    self.inputs.append(("v", a, False))
        self.metas: list = []
        self.recomputed: dict = {}

    def pack(self, t):
        self.metas.append((tuple(t.shape), t.dtype) if isinstance(t, Tensor) else None)
        return _Handle(self, len(self.metas) - 1)

    def unpack(self, h: _Handle):
        """The recomputed tensor at ``h``'s position (recomputing on first use)."""
        if is_grad_enabled():
            raise RuntimeError(
                f"checkpoint: backward with create_graph=True through the checkpointed "
                f"'{self.name}' is not supported; run it without checkpoint to get "
                f"higher-order gradients")
        if h.k not in self.recomputed:
            self.recompute()
        return self.load(self.recomputed.pop(h.k))

    def recompute(self) -> None:
        args = []
        for kind, val, rg in self.inputs:
            if kind == "v":
                args.append(val)
                continue
            t = self.load(val)
            if not (t.requires_grad and t.grad_fn is None):
                t = t.detach()
                t.requires_grad = rg
            args.append(t)
        count = [0]
        got: dict = {}

        def pack(t):
            k = count[0]
            count[0] = k + 1
            if k < len(self.metas):
                want = self.metas[k]
                have = (tuple(t.shape), t.dtype) if isinstance(t, Tensor) else None
                if want != have:
                    raise RuntimeError(
                        f"checkpoint: recomputing '{self.name}' saved a different tensor at "
                        f"position {k} ({_meta_str(have)}) than the first run "
                        f"({_meta_str(want)}); the function must do the same operations "
                        f"when rerun")
                got[k] = self.store(t.detach() if isinstance(t, Tensor) and not
                                    (t.requires_grad and t.grad_fn is None) else t)
            return None

        with saved_tensors_hooks(pack, _never), enable_grad(), \
                _replay(self.rng_state, self.modules):
            self.fn(*args, **self.kwargs)
        if count[0] != len(self.metas):
            raise RuntimeError(
                f"checkpoint: recomputing '{self.name}' saved {count[0]} tensors for "
                f"backward but the first run saved {len(self.metas)}; the function must do "
                f"the same operations when rerun")
        self.recomputed.update(got)


def _meta_str(m) -> str:
    return "no tensor" if m is None else f"shape {m[0]}, {m[1]}"


def _never(_):
    raise RuntimeError("checkpoint: a recomputed graph was used for backward")


def _name_of(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _checkpoint(fn, args, kwargs, preserve_rng_state: bool, modules: list | None):
    if not is_grad_enabled():
        return fn(*args, **kwargs)
    if modules is None:
        modules = find_modules(fn, args)
    rng_state = get_rng_state() if preserve_rng_state else None
    frame = _Frame(fn, args, kwargs, rng_state, modules, _name_of(fn))
    # the unpack hook stays on every node: a plain function, so it does not keep the
    # frame (and the stored inputs) alive once backward has freed the handles
    with saved_tensors_hooks(frame.pack, _unpack_handle):
        return fn(*args, **kwargs)


def _unpack_handle(h: _Handle):
    return h.frame.unpack(h)


# ---------------------------------------------------------------------- reentrant
class _Reentrant(Function):
    """Run ``fn`` without a graph; in backward rerun it with one and backward through it."""

    @staticmethod
    def forward(ctx, fn, preserve, modules, *args):
        ctx.fn = fn
        ctx.rng_state = get_rng_state() if preserve else None
        ctx.modules = modules
        ctx.kinds = [isinstance(a, Tensor) for a in args]
        ctx.others = [None if k else a for k, a in zip(ctx.kinds, args)]
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        out = fn(*args)
        return out.detach() if isinstance(out, Tensor) else tuple(
            o.detach() if isinstance(o, Tensor) else o for o in out)

    @staticmethod
    def backward(ctx, *grads):
        saved = iter(ctx.saved_tensors)
        args = []
        needs = ctx.needs_input_grad[3:]
        for k, other, rg in zip(ctx.kinds, ctx.others, needs):
            if k:
                t = next(saved).detach()
                t.requires_grad = rg
                args.append(t)
            else:
                args.append(other)
        with enable_grad(), _replay(ctx.rng_state, ctx.modules):
            out = ctx.fn(*args)
        outs = (out,) if isinstance(out, Tensor) else tuple(out)
        roots = []
        gs = []
        for o, g in zip(outs, grads):
            if isinstance(o, Tensor) and o.requires_grad and g is not None:
                roots.append(o)
                gs.append(g)
        if roots:
            _backward(roots, gs)
        return (None, None, None, *(a.grad if isinstance(a, Tensor) else None for a in args))


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, **kwargs):
    """Run ``function(*args, **kwargs)`` without keeping its saved tensors; recompute them
    in backward.

    Args:
        function: the computation (a module or any function of tensors).
        *args, **kwargs: its arguments.
        use_reentrant: ``False`` (the default) records the graph and swaps saved tensors
            for handles (saved-tensor hooks); ``True`` uses a custom Function that
            reruns ``function`` inside backward (keyword arguments not supported, and
            ``autograd.grad`` does not reach parameters inside).
        preserve_rng_state: rerun with the random state of the first run, so dropout
            draws the same masks.

    Returns:
        What ``function`` returns. Gradients are those of running it directly. Buffers of
        the modules it calls (found as in :func:`find_modules`) are restored after the
        recomputation, so batch-norm running statistics are updated once.

    A warning is given when no tensor argument requires grad: the result is still right
    (parameters inside get gradients with ``use_reentrant=False``).
    """
    if use_reentrant is None:
        use_reentrant = False
    if is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad
                                       for a in (*args, *kwargs.values())):
        what = ("parameters inside still get gradients" if not use_reentrant else
                "with use_reentrant=True nothing inside gets a gradient")
        warnings.warn(f"checkpoint: none of the tensor inputs of '{_name_of(function)}' "
                      f"requires grad; {what}", UserWarning, stacklevel=2)
    if use_reentrant:
        if kwargs:
            raise ValueError("checkpoint: keyword arguments need use_reentrant=False")
        return _Reentrant.apply(function, preserve_rng_state, find_modules(function, args),
                                *args)
    return _checkpoint(function, args, kwargs, preserve_rng_state, None)


# ---------------------------------------------------------------------- sequential
class _Run:
    """Modules ``start:stop`` applied in order (a picklable, named segment function)."""

    def __init__(self, mods: list, start: int, stop: int) -> None:
        self.mods = mods[start:stop]
        self.__name__ = f"segment[{start}:{stop}]"

    def __call__(self, x):
        for m in self.mods:
            x = m(x)
        return x


def _check_segments(op: str, segments, n: int) -> None:
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"{op}: segments must be a positive int, 'sqrt' or a Plan, got "
                         f"{segments!r}")


def checkpoint_sequential(functions, segments=None, input: Tensor | None = None,
                          use_reentrant: bool | None = None, preserve_rng_state: bool = True,
                          *, budget_bytes: int | None = None, return_plan: bool = False):
    """Run a sequence of modules in checkpointed segments (all but the last segment).

    Args:
        functions: a ``Sequential`` or a list of modules/functions applied in order.
        segments: the number of segments (split by layers: a module with parameters
            and the parameter-free modules after it), ``'sqrt'`` for about sqrt(layers)
            segments (peak memory O(sqrt n) for one extra forward), or a :class:`Plan`
            from :func:`plan_checkpoints`.
        input: the input tensor.
        use_reentrant, preserve_rng_state: as in :func:`checkpoint`.
        budget_bytes: instead of ``segments``, pick the plan whose predicted peak of
            saved bytes fits the budget with the least recomputation (measures the
            layers with one extra forward each call; reuse a :class:`Plan` in loops).
        return_plan: return ``(output, plan)``; the plan's predictions are measured
            when they are not known yet.

    Returns:
        The output (and the :class:`Plan` with ``return_plan=True``).

    >>> import chainrule as cr
    >>> net = cr.nn.Sequential(*[cr.nn.Linear(8, 8) for _ in range(9)])
    >>> y = checkpoint_sequential(net, "sqrt", cr.randn(4, 8))
    >>> y.sum().backward()
    >>> net[0].weight.grad.shape
    (8, 8)
    """
    op = "checkpoint_sequential"
    if input is None:
        raise TypeError(f"{op}: missing the input tensor")
    mods = _modules_of(functions)
    if not mods:
        raise ValueError(f"{op}: no modules to run")
    n = len(mods)
    if budget_bytes is not None:
        if segments is not None:
            raise ValueError(f"{op}: pass segments or budget_bytes, not both")
        plan = plan_checkpoints(mods, input, budget_bytes)
    elif isinstance(segments, Plan):
        plan = segments
        if not plan.segments or plan.segments[-1].stop != n:
            covered = plan.segments[-1].stop if plan.segments else 0
            raise ValueError(f"{op}: the plan covers {covered} modules but {n} were given")
    elif segments == "sqrt":
        starts = _units(mods)
        plan = Plan(_even(starts, n, max(1, round(len(starts) ** 0.5))))
    else:
        _check_segments(op, segments, n)
        plan = Plan(_even(list(range(n)), n, segments))
    if return_plan and plan.predicted_peak is None:
        stats = _profile(mods, input)
        plan.predicted_peak, plan.recompute_cost = _evaluate(stats, plan.segments)
        plan.plain_peak = _evaluate(stats, [Segment(0, n, False)])[0]
        plan.forward_cost = float(sum(stats.cost))
        plan.names = [type(m).__name__ for m in mods]
    x = input
    for seg in plan.segments:
        run = _Run(mods, seg.start, seg.stop)
        if not seg.checkpointed or not is_grad_enabled():
            x = run(x)
        elif use_reentrant:
            x = _Reentrant.apply(run, preserve_rng_state, run.mods, x)
        else:
            x = _checkpoint(run, (x,), {}, preserve_rng_state, run.mods)
    return (x, plan) if return_plan else x
