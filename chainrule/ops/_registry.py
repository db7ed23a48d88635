"""The one dispatch path: ``@primitive`` declarations and graph recording.

A primitive is a forward on raw arrays plus one vector-Jacobian product per input,
written with the dual ops of this package: called with raw arrays an op returns a raw
array (so a plain backward runs at NumPy speed), called with tensors it returns a tensor
and records (so ``create_graph=True`` needs no extra code).

Every VJP has the signature ``vjp(g, out, *args)``: ``g`` the upstream gradient, ``out``
the forward result (``None`` unless saved), ``args`` the forward's positional arguments:
saved tensors, a :class:`Meta` (shape and dtype only) for tensors not saved, and the
non-tensor arguments as given. The engine unbroadcasts and accumulates; VJPs never do.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..autograd import anomaly
from ..autograd.grad_mode import _state as _grad_state
from ..autograd.graph import Meta, Node, _hooks
from ..tensor import Tensor, _new

_ndarray = np.ndarray


class Primitive:
    """A differentiable operation: forward on arrays and its VJP table."""

    __slots__ = ("name", "fwd", "vjps", "vjp_all", "save_idx", "saves_out", "view", "diff",
                 "nin", "op")

    def __init__(self, name, fwd, save_idx, saves_out, view, diff, nin):
        self.name = name
        self.fwd = fwd
        self.vjps = None
        self.vjp_all = None
        self.save_idx = save_idx
        self.saves_out = saves_out
        self.view = view
        self.diff = diff
        self.nin = nin
        self.op = None

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def primitive(saves=(), *, view: bool = False, differentiable: bool = True, nin: int = 0,
              name: str | None = None):
    """Declare a primitive from its forward on raw arrays.

    Args:
        saves: names of forward parameters (or ``"out"``) the VJPs need; other tensor
            inputs are kept only as shape and dtype.
        view: the result may share memory with the first input (shares its version
            counter so in-place changes through either are seen).
        differentiable: ``False`` for ops whose result never requires grad.
        nin: when > 0, only the first ``nin`` positional arguments may be tensors (a
            faster dispatch); 0 means any argument may be.
        name: the op name used in messages (defaults to the function name).

    The returned op has ``defvjp(*per_input)`` and ``defvjp_all(fn)`` to attach VJPs.
    """
    if isinstance(saves, str):
        saves = (saves,)

    def deco(fwd):
        params = list(inspect.signature(fwd).parameters)
        idx = []
        for s in saves:
            if s == "out":
                continue
            if s not in params:
                raise ValueError(f"primitive {fwd.__name__}: saves names unknown input {s!r}")
            idx.append(params.index(s))
        prim = Primitive(name or fwd.__name__.lstrip("_"), fwd, frozenset(idx),
                         "out" in saves, view, differentiable, nin)
        op = _make_op(prim)
        op.__name__ = prim.name
        op.__qualname__ = prim.name
        op.__doc__ = fwd.__doc__
        op.prim = prim

        def defvjp(*fns):
            prim.vjps = tuple(fns)
            return fns[0] if fns else None

        def defvjp_all(fn):
            prim.vjp_all = fn
            return fn

        op.defvjp = defvjp
        op.defvjp_all = defvjp_all
        prim.op = op
        return op

    return deco


def _make_op(prim: Primitive):
    fwd = prim.fwd
    state = _grad_state

    if prim.nin == 1:
        def op(x, *params):
            if isinstance(x, Tensor):
                out = fwd(x._data, *params)
                if x.requires_grad and state.enabled and prim.diff:
                    return record(prim, (x, *params), out)
                return _finish(prim, out, x)
            return fwd(x, *params)
        return op

    if prim.nin == 2:
        def op(a, b, *params):
            ta = isinstance(a, Tensor)
            tb = isinstance(b, Tensor)
            if ta:
                if tb:
                    out = fwd(a._data, b._data, *params)
                    if (a.requires_grad or b.requires_grad) and state.enabled and prim.diff:
                        return record(prim, (a, b, *params), out)
                    return _finish(prim, out, a)
                out = fwd(a._data, b, *params)
                if a.requires_grad and state.enabled and prim.diff:
                    return record(prim, (a, b, *params), out)
                return _finish(prim, out, a)
            if tb:
                out = fwd(a, b._data, *params)
                if b.requires_grad and state.enabled and prim.diff:
                    return record(prim, (a, b, *params), out)
                return _finish(prim, out, None)
            return fwd(a, b, *params)
        return op

    def op(*args):
        datas = []
        tensor_in = False
        need = False
        first = None
        for a in args:
            if isinstance(a, Tensor):
                if first is None:
                    first = a
                tensor_in = True
                datas.append(a._data)
                if a.requires_grad:
                    need = True
            elif type(a) is list and a and isinstance(a[0], Tensor):
                raise TypeError(f"{prim.name}: pass tensors one by one, not as a list")
            else:
                datas.append(a)
        if not tensor_in:
            return fwd(*args)
        out = fwd(*datas)
        if need and state.enabled and prim.diff:
            return record(prim, args, out)
        return _finish(prim, out, first)

    return op


def _finish(prim: Primitive, out, first) -> Tensor:
    """Wrap a result that records nothing."""
    if type(out) is not _ndarray:
        out = np.asarray(out)
    t = _new(Tensor)
    t._data = out
    t.requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._vbox = _view_box(first) if (prim.view and first is not None) else None
    t._extra = None
    return t


def _view_box(base: Tensor) -> list:
    box = base._get_vbox()
    box[2] = True
    return box


def record(prim: Primitive, args: tuple, out) -> Tensor:
    """Create the result tensor and its node (grad mode is on and an input needs grad)."""
    if type(out) is not _ndarray:
        out = np.asarray(out)
    if out.dtype.kind != "f":
        return _finish(prim, out, None)
    save_idx = prim.save_idx
    edges = []
    saved = []
    vers = None
    i = 0
    for a in args:
        if isinstance(a, Tensor):
            if a.requires_grad:
                fn = a.grad_fn
                edges.append(a if fn is None else fn)
            else:
                edges.append(None)
            if i in save_idx:
                saved.append(a)
                box = a._vbox
                if box is None:
                    box = a._vbox = [0, None, False]
                if vers is None:
                    vers = []
                vers.append((i, box, box[0]))
            else:
                saved.append(Meta(a._data.shape, a._data.dtype))
        else:
            edges.append(None)
            saved.append(a)
        i += 1
    t = _new(Tensor)
    t._data = out
    t.requires_grad = True
    t.grad = None
    t._extra = None
    if prim.view:
        first = args[0]
        t._vbox = _view_box(first) if isinstance(first, Tensor) else [0, None, False]
    else:
        t._vbox = None
    saved_out = None
    out_box = None
    if prim.saves_out:
        saved_out = out
        out_box = t._vbox
        if out_box is None:
            out_box = t._vbox = [0, None, False]
        if vers is None:
            vers = []
        vers.append((-1, out_box, out_box[0]))
    node = Node(prim, tuple(edges), tuple(saved), saved_out, out_box,
                None if vers is None else tuple(vers), out.shape, out.dtype)
    if _hooks.stack:
        _pack(node, t)
    if anomaly._state.enabled:
        node.trace = anomaly.capture_trace()
        if anomaly._state.check_forward:
            anomaly.check_forward(prim.name, out)
    t.grad_fn = node
    return t


def _pack(node: Node, out_tensor: Tensor) -> None:
    pack, unpack = _hooks.stack[-1]
    if node.vers is None:
        return
    args = list(node.args)
    for i, _box, _v in node.vers:
        if i >= 0:
            args[i] = pack(args[i])
    node.args = tuple(args)
    if node.out is not None:
        o = _new(Tensor)
        o._data = node.out
        o.requires_grad = False
        o.grad = None
        o.grad_fn = None
        o._vbox = node.out_box
        o._extra = None
        node.out = pack(o)
    node.packed = unpack
