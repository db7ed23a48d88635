"""Custom differentiable functions: subclass ``Function`` with ``forward`` and ``backward``.

>>> import chainrule as cr
>>> class Square(cr.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return 2 * x * g
>>> x = cr.tensor([1.0, 3.0], requires_grad=True)
>>> Square.apply(x).sum().backward()
>>> x.grad
tensor([2., 6.])
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, _wrap
from . import anomaly
from .grad_mode import _state as _grad_state
from .grad_mode import set_grad_enabled
from .graph import Node, _hooks, saving_as


class FunctionCtx:
    """The ``ctx`` object passed to ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.needs_input_grad: tuple = ()
        self._saved: tuple = ()
        self._saved_info: tuple = ()
        self._node = None
        self._non_diff: set = set()
        self.materialize_grads = True
        self._unpack = None

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (or None) for backward; read them back as ``ctx.saved_tensors``."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward: expects tensors or None, got {type(t).__name__}; "
                    f"store other values as attributes of ctx"
                )
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to ``save_for_backward`` (checked for in-place changes)."""
        node = self._node
        if node is None:
            return self._saved
        if node.args is None:
            raise RuntimeError(
                f"backward: trying to backward through the graph a second time: the values "
                f"'{node.name}' saved for backward were freed by the first backward. Pass "
                f"retain_graph=True to the first backward() if you need to backward again."
            )
        out = []
        create = _grad_state.enabled
        for item, (kind, k, box, ver) in zip(node.args, self._saved_info):
            if kind == "none":
                out.append(None)
                continue
            if box is not None and box[0] != ver:
                raise RuntimeError(
                    f"backward: one of the tensors saved by '{node.name}' for backward has "
                    f"been modified by an inplace operation{' by ' + box[1] if box[1] else ''}"
                    f" (version {box[0]}; expected version {ver})"
                )
            if self._unpack is not None:
                item = self._unpack(item)
            if kind == "out":
                if create:
                    t = _wrap(item._data if isinstance(item, Tensor) else item)
                    t.requires_grad = True
                    t.grad_fn = node.outputs_nodes[k]
                    out.append(t)
                else:
                    out.append(_wrap(item._data if isinstance(item, Tensor) else item))
            else:
                out.append(item if create else (item.detach() if isinstance(item, Tensor)
                                                else item))
        return tuple(out)

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs that never get a gradient (e.g. indices)."""
        self._non_diff.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """When False, backward receives None (not zeros) for outputs with no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        """Accepted for compatibility: chainrule's functions don't modify inputs in place."""


class FunctionNode(Node):
    """A node whose backward rule is a user ``Function.backward``."""

    __slots__ = ("fn", "ctx", "n_out", "pending", "outputs_nodes", "out_meta", "in_meta")

    @property
    def name(self) -> str:
        return self.fn.__name__

    def apply(self, g, create_graph: bool, retain_graph: bool):
        grads_in = self.pending if self.n_out > 1 else [g]
        if self.n_out > 1:
            self.pending = [None] * self.n_out
        if all(x is None for x in grads_in):
            return None
        gs = []
        for x, (shape, dtype) in zip(grads_in, self.out_meta):
            if x is None:
                gs.append(_wrap(np.zeros(shape, dtype)) if self.ctx.materialize_grads else None)
            else:
                gs.append(x if isinstance(x, Tensor) else _wrap(x))
        with set_grad_enabled(create_graph):
            res = self.fn.backward(self.ctx, *gs)
        if not isinstance(res, tuple):
            res = (res,)
        n_in = len(self.edges)
        if len(res) < n_in or any(r is not None for r in res[n_in:]):
            if len(res) != n_in:
                raise RuntimeError(
                    f"{self.name}.backward returned {len(res)} gradients but forward took "
                    f"{n_in} inputs; return one per input (None for non-tensors)"
                )
        out = []
        for i, e in enumerate(self.edges):
            r = res[i] if i < len(res) else None
            if e is None or r is None:
                out.append(None)
                continue
            if not isinstance(r, Tensor):
                r = _wrap(np.asarray(r))
            ref = self.in_meta[i]
            if tuple(r.shape) != tuple(ref.shape):
                try:
                    np.broadcast_shapes(tuple(r.shape), tuple(ref.shape))
                    ok = len(r.shape) >= len(ref.shape)
                except ValueError:
                    ok = False
                if not ok:
                    raise RuntimeError(
                        f"{self.name}.backward returned a gradient of shape {tuple(r.shape)} "
                        f"for input {i}, which has shape {tuple(ref.shape)}"
                    )
                from ..ops.shape import sum_to

                r = sum_to(r, tuple(ref.shape))
            if r.dtype != ref.dtype:
                from ..ops.elementwise import cast

                r = cast(r, ref.dtype)
            out.append(r if create_graph else r._data)
        if not retain_graph and self.vers is not None:
            self.args = None
            self.freed = True
        return out


class _SelectNode(Node):
    """Routes the gradient of output ``k`` of a multi-output function into its node."""

    __slots__ = ("k",)

    @property
    def name(self) -> str:
        return f"{self.edges[0].name}[{self.k}]"

    def apply(self, g, create_graph: bool, retain_graph: bool):
        target = self.edges[0]
        prev = target.pending[self.k]
        target.pending[self.k] = g if prev is None else prev + g
        return [None]


class Function:
    """Base class for differentiable operations written by the user.

    Define ``forward(ctx, *args)`` (runs without recording; may use any tensor ops) and
    ``backward(ctx, *grad_outputs)`` returning one gradient per forward input (None
    for non-tensors). With ``create_graph=True`` backward is recorded, so a backward
    written in tensor ops can be differentiated again. Call it through ``Fn.apply``.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """Compute the outputs from the inputs."""
        raise NotImplementedError("Function subclasses must define forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """Compute the input gradients from the output gradients."""
        raise NotImplementedError("Function subclasses must define backward")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward and, when any input needs grad, record one node for backward."""
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with set_grad_enabled(False):
            result = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(result, tuple)
        outs = (result,) if single else result
        for o in outs:
            if o is not None and not isinstance(o, Tensor):
                raise TypeError(f"{cls.__name__}.forward must return tensors, got "
                                f"{type(o).__name__}")
        if not (any(ctx.needs_input_grad) and _grad_state.enabled):
            return result
        return _record(cls, ctx, args, outs, single)


def _record(cls, ctx: FunctionCtx, args: tuple, outs: tuple, single: bool):
    from .graph import Meta

    edges = []
    metas = []
    for a in args:
        if isinstance(a, Tensor):
            edges.append((a.grad_fn or a) if a.requires_grad else None)
            metas.append(Meta(a._data.shape, a._data.dtype))
        else:
            edges.append(None)
            metas.append(Meta((), np.dtype("float64")))
    diff_outs = [o is not None and id(o) not in ctx._non_diff and o.dtype.kind == "f"
                 for o in outs]
    node = FunctionNode.__new__(FunctionNode)
    Node.__init__(node, None, tuple(edges), (), None, None, None,
                  outs[0].shape if outs[0] is not None else (), outs[0].dtype
                  if outs[0] is not None else None)
    node.fn = cls
    node.in_meta = tuple(metas)
    node.ctx = ctx
    node.n_out = len(outs)
    node.pending = [None] * len(outs)
    node.out_meta = tuple((o.shape, o.dtype) if o is not None else ((), np.float32)
                          for o in outs)
    ctx._node = node
    new_outs = []
    out_nodes = []
    in_ids = {id(a) for a in args if isinstance(a, Tensor)}
    for k, o in enumerate(outs):
        if o is None:
            new_outs.append(None)
            out_nodes.append(None)
            continue
        if id(o) in in_ids or o.grad_fn is not None:
            o = _wrap(o._data)
        if not diff_outs[k]:
            new_outs.append(o)
            out_nodes.append(None)
            continue
        if node.n_out == 1:
            gf = node
        else:
            gf = _SelectNode.__new__(_SelectNode)
            Node.__init__(gf, None, (node,), (), None, None, None, o.shape, o.dtype)
            gf.k = k
        o.requires_grad = True
        o.grad_fn = gf
        new_outs.append(o)
        out_nodes.append(gf)
    node.outputs_nodes = out_nodes
    # saved tensors: outputs are stored by index to avoid a reference cycle
    saved = []
    info = []
    vers = []
    pack = _hooks.stack[-1] if _hooks.stack else None
    out_ids = {id(o): k for k, o in enumerate(new_outs) if o is not None}
    orig_ids = {id(o): k for k, o in enumerate(outs) if o is not None}
    for t in ctx._saved:
        if t is None:
            saved.append(None)
            info.append(("none", -1, None, 0))
            continue
        k = out_ids.get(id(t), orig_ids.get(id(t)))
        box = t._get_vbox()
        if k is not None:
            item = _wrap(t._data)
            info.append(("out", k, box, box[0]))
        else:
            item = t
            info.append(("in", -1, box, box[0]))
        if pack:
            with saving_as(cls.__name__):
                item = pack[0](item)
        saved.append(item)
        vers.append(box)
    node.args = tuple(saved)
    node.vers = tuple(vers) if vers else None
    ctx._saved_info = tuple(info)
    ctx._unpack = pack[1] if pack else None
    ctx._saved = ()
    if anomaly._state.enabled:
        anomaly.record_function(node, new_outs)
    return new_outs[0] if single else tuple(new_outs)

