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
from ..autograd.graph import Meta, Node, _hooks, _hooks_on
from ..backend import const as _const
from ..tensor import Tensor, _new, _wrap

_ndarray = np.ndarray
_anomaly = anomaly._state


class Primitive:
    """A differentiable operation: forward on arrays and its VJP table."""

    __slots__ = ("name", "fwd", "vjps", "vjp_all", "save_idx", "saves_out", "view", "diff",
                 "nin", "op", "arity", "s0", "s1", "fast")

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
        # filled by @primitive: the forward's fixed positional arity (None when it takes
        # defaults, *args or keywords) and whether inputs 0 and 1 are saved
        self.arity = None
        self.s0 = 0 in save_idx
        self.s1 = 1 in save_idx
        # set when the VJPs are attached: one VJP per input and one or two inputs, so
        # the engine may run this primitive's backward inline
        self.fast = False

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
        sig = inspect.signature(fwd).parameters
        params = list(sig)
        idx = []
        rest = None
        for s in saves:
            if s == "out":
                continue
            if s not in params:
                raise ValueError(f"primitive {fwd.__name__}: saves names unknown input {s!r}")
            idx.append(params.index(s))
            if sig[s].kind is inspect.Parameter.VAR_POSITIONAL:
                rest = params.index(s)
        saved = frozenset(idx) if rest is None else _FromIndex(idx, rest)
        prim = Primitive(name or fwd.__name__.lstrip("_"), fwd, saved,
                         "out" in saves, view, differentiable, nin)
        if all(p.kind in _PLAIN and p.default is p.empty for p in sig.values()):
            prim.arity = len(params)
        op = _make_op(prim)
        op.__name__ = prim.name
        op.__qualname__ = prim.name
        op.__doc__ = fwd.__doc__
        op.prim = prim

        def defvjp(*fns):
            prim.vjps = tuple(fns)
            _set_fast(prim)
            return fns[0] if fns else None

        def defvjp_all(fn):
            prim.vjp_all = fn
            _set_fast(prim)
            return fn

        op.defvjp = defvjp
        op.defvjp_all = defvjp_all
        prim.op = op
        return op

    return deco


def _set_fast(prim: Primitive) -> None:
    prim.fast = (prim.vjp_all is None and prim.vjps is not None and prim.arity in (1, 2)
                 and len(prim.vjps) == prim.arity)


_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class _FromIndex:
    """Saved positions when ``saves`` names a ``*args`` parameter: it covers every position
    from there on (e.g. all operands of ``einsum_(spec, *xs)``)."""

    __slots__ = ("idx", "rest")

    def __init__(self, idx, rest: int) -> None:
        self.idx = frozenset(idx)
        self.rest = rest

    def __contains__(self, i) -> bool:
        return i >= self.rest or i in self.idx


def _make_op(prim: Primitive):
    if prim.diff and not prim.view and prim.arity == prim.nin:
        if prim.nin == 1:
            return _make_unary(prim)
        if prim.nin == 2:
            return _make_binary(prim)
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


# The two fast paths below cover differentiable, non-view primitives whose forward takes
# exactly one or two tensor-or-scalar inputs and nothing else (most elementwise maths).
# They do what the general ``op`` does, with the no-record result built inline.


def _make_unary(prim: Primitive):
    fwd = prim.fwd
    state = _grad_state

    def op(x):
        if isinstance(x, Tensor):
            out = fwd(x._data)
            if x.requires_grad and state.enabled:
                return _record1(prim, x, out)
            return _wrap(out)
        return fwd(x)

    return op


def _make_binary(prim: Primitive):
    fwd = prim.fwd
    state = _grad_state
    if getattr(fwd, "ufunc", None) is not None:
        return _make_binary_ufunc(prim, fwd.ufunc)

    def op(a, b):
        if isinstance(a, Tensor):
            if isinstance(b, Tensor):
                out = fwd(a._data, b._data)
                if (a.requires_grad or b.requires_grad) and state.enabled:
                    return _record2(prim, a, b, out, True, True)
            else:
                out = fwd(a._data, b)
                if a.requires_grad and state.enabled:
                    return _record2(prim, a, b, out, True, False)
        elif isinstance(b, Tensor):
            out = fwd(a, b._data)
            if b.requires_grad and state.enabled:
                return _record2(prim, a, b, out, False, True)
        else:
            return fwd(a, b)
        return _wrap(out)

    return op


def _make_binary_ufunc(prim: Primitive, ufunc):
    """``_make_binary`` for a forward that is ``ufunc`` after type promotion: when the
    operands already agree (same dtype, or a float tensor and a Python float) the ufunc is
    called directly; anything else, errors included, goes through the forward."""
    fwd = prim.fwd
    state = _grad_state

    def op(a, b):
        if isinstance(a, Tensor):
            ad = a._data
            if isinstance(b, Tensor):
                bd = b._data
                if ad.dtype is bd.dtype:
                    try:
                        out = ufunc(ad, bd)
                    except ValueError:
                        out = fwd(ad, bd)
                else:
                    out = fwd(ad, bd)
                if (a.requires_grad or b.requires_grad) and state.enabled:
                    return _record2(prim, a, b, out, True, True)
            else:
                if type(b) is float and ad.dtype.kind == "f":
                    b = _const(b, ad.dtype)
                    out = ufunc(ad, b)
                else:
                    out = fwd(ad, b)
                if a.requires_grad and state.enabled:
                    return _record2(prim, a, b, out, True, False)
        elif isinstance(b, Tensor):
            bd = b._data
            if type(a) is float and bd.dtype.kind == "f":
                a = _const(a, bd.dtype)
                out = ufunc(a, bd)
            else:
                out = fwd(a, bd)
            if b.requires_grad and state.enabled:
                return _record2(prim, a, b, out, False, True)
        else:
            return fwd(a, b)
        return _wrap(out)

    return op


def _meta(d) -> Meta:
    """A :class:`Meta` for array ``d``, reusing the last one made when it matches."""
    m = _last_meta[0]
    shape = d.shape
    if m.dtype is not d.dtype or m.shape != shape:
        m = _new(Meta)
        m.shape = shape
        m.dtype = d.dtype
        _last_meta[0] = m
    return m


_last_meta = [Meta((), None)]


def _record1(prim: Primitive, x: Tensor, out) -> Tensor:
    """``record`` for a one-input primitive (``x`` requires grad)."""
    if type(out) is not _ndarray:
        out = np.asarray(out)
    if out.dtype.kind != "f":
        return _finish(prim, out, None)
    fn = x.grad_fn
    d = x._data
    t = _new(Tensor)
    t._data = out
    t.requires_grad = True
    t.grad = None
    t._extra = None
    if prim.s0:
        box = x._vbox
        if box is None:
            box = x._vbox = [0, None, False]
        vers = ((0, box, box[0], x),)
        args = (d,)
    else:
        vers = None
        args = (_meta(d),)
    node = _new(Node)
    node.prim = prim
    node.edges = (x if fn is None else fn,)
    node.args = args
    if prim.saves_out:
        out_box = t._vbox = [0, None, False]
        ent = (-1, out_box, 0, None)
        node.vers = (ent,) if vers is None else (vers[0], ent)
        node.out = out
        node.out_box = out_box
    else:
        t._vbox = None
        node.vers = vers
        node.out = None
        node.out_box = None
    node.shape = out.shape
    node.dtype = out.dtype
    node.hooks = None
    node.packed = None
    node.trace = None
    node.freed = False
    t.grad_fn = node
    if _hooks_on[0] and _hooks.stack:
        _pack(node)
    if _anomaly.enabled:
        _anomaly_record(node, prim, out)
    return t


def _record2(prim: Primitive, a, b, out, ta: bool, tb: bool) -> Tensor:
    """``record`` for a two-input primitive (one of ``a``, ``b`` requires grad);
    ``ta`` and ``tb`` say which inputs are tensors (the caller knows)."""
    if type(out) is not _ndarray:
        out = np.asarray(out)
    if out.dtype.kind != "f":
        return _finish(prim, out, None)
    vers = None
    if ta:
        if a.requires_grad:
            fn = a.grad_fn
            ea = a if fn is None else fn
        else:
            ea = None
        va = a._data
        if prim.s0:
            box = a._vbox
            if box is None:
                box = a._vbox = [0, None, False]
            vers = ((0, box, box[0], a),)
        else:
            va = _meta(va)
    else:
        ea = None
        va = a
    if tb:
        if b.requires_grad:
            fn = b.grad_fn
            eb = b if fn is None else fn
        else:
            eb = None
        vb = b._data
        if prim.s1:
            box = b._vbox
            if box is None:
                box = b._vbox = [0, None, False]
            ent = (1, box, box[0], b)
            vers = (ent,) if vers is None else (vers[0], ent)
        else:
            vb = _meta(vb)
    else:
        eb = None
        vb = b
    t = _new(Tensor)
    t._data = out
    t.requires_grad = True
    t.grad = None
    t._extra = None
    node = _new(Node)
    node.prim = prim
    node.edges = (ea, eb)
    node.args = (va, vb)
    if prim.saves_out:
        out_box = t._vbox = [0, None, False]
        ent = (-1, out_box, 0, None)
        node.vers = (ent,) if vers is None else (*vers, ent)
        node.out = out
        node.out_box = out_box
    else:
        t._vbox = None
        node.vers = vers
        node.out = None
        node.out_box = None
    node.shape = out.shape
    node.dtype = out.dtype
    node.hooks = None
    node.packed = None
    node.trace = None
    node.freed = False
    t.grad_fn = node
    if _hooks_on[0] and _hooks.stack:
        _pack(node)
    if _anomaly.enabled:
        _anomaly_record(node, prim, out)
    return t


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
    """Create the result tensor and its node (grad mode is on and an input needs grad).

    The node's ``args`` hold what a plain backward passes to the VJPs: the raw array of
    each saved tensor, a :class:`Meta` for other tensors, non-tensors as given. Each
    saved tensor also gets an entry ``(position, version box, version, tensor)`` in
    ``vers`` (position -1 for the saved result): backward checks the versions, and
    ``create_graph`` calls the VJPs on the tensors.
    """
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
            d = a._data
            if i in save_idx:
                saved.append(d)
                box = a._vbox
                if box is None:
                    box = a._vbox = [0, None, False]
                if vers is None:
                    vers = []
                vers.append((i, box, box[0], a))
            else:
                saved.append(Meta(d.shape, d.dtype))
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
        vers.append((-1, out_box, out_box[0], None))
    node = _new(Node)
    node.prim = prim
    node.edges = tuple(edges)
    node.args = tuple(saved)
    node.out = saved_out
    node.out_box = out_box
    node.vers = None if vers is None else tuple(vers)
    node.shape = out.shape
    node.dtype = out.dtype
    node.hooks = None
    node.packed = None
    node.trace = None
    node.freed = False
    t.grad_fn = node
    if _hooks_on[0] and _hooks.stack:
        _pack(node)
    if _anomaly.enabled:
        _anomaly_record(node, prim, out)
    return t


def _anomaly_record(node: Node, prim: Primitive, out) -> None:
    node.trace = anomaly.capture_trace()
    if _anomaly.check_forward:
        anomaly.check_forward(prim.name, out)


def _pack(node: Node) -> None:
    """Apply the innermost saved-tensor pack hook to everything the node saved."""
    if node.vers is None:
        return
    prev = _hooks.saving
    _hooks.saving = node.prim.name
    try:
        _pack_saved(node)
    finally:
        _hooks.saving = prev


def _pack_saved(node: Node) -> None:
    pack, unpack = _hooks.stack[-1]
    args = list(node.args)
    vers = list(node.vers)
    for k, ent in enumerate(vers):
        i = ent[0]
        if i >= 0:
            args[i] = pack(ent[3])
            vers[k] = (i, ent[1], ent[2], None)  # the packed form replaces the tensor
    node.args = tuple(args)
    node.vers = tuple(vers)
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
