"""The backward engine: iterative topological order, accumulation, unbroadcasting.

No recursion anywhere: dependency counts are taken with an explicit stack, then nodes run
when all their consumers have delivered a gradient (Kahn's algorithm). Gradients that fan
in are summed; each primitive's VJP results are reduced to its inputs' shapes and dtypes
here, once, so no op does it. Saved values are freed after use unless ``retain_graph``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..tensor import Tensor, _new, _wrap
from . import anomaly
from .grad_mode import _state as _grad_state
from .graph import Node

_ndarray = np.ndarray


def _tensor_from_out(node: Node, arr) -> Tensor:
    """Rebuild the forward result as a tensor whose history is ``node`` (double backward)."""
    t = _new(Tensor)
    t._data = arr
    t.requires_grad = True
    t.grad = None
    t.grad_fn = node
    t._vbox = node.out_box
    t._extra = None
    return t


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward: trying to backward through the graph a second time: the values "
        f"'{node.name}' saved for backward were freed by the first backward. Pass "
        f"retain_graph=True to the first backward() or autograd.grad() call if you need "
        f"to backward through the graph again."
    )


def _check_versions(node: Node) -> None:
    for ent in node.vers:
        i = ent[0]
        box = ent[1]
        v = ent[2]
        if box[0] != v:
            what = "its result" if i < 0 else f"input {i}"
            by = f" by {box[1]}" if box[1] else ""
            raise RuntimeError(
                f"backward: one of the tensors needed for gradient computation has been "
                f"modified by an inplace operation{by}: {what} of '{node.name}' "
                f"(shape {node.shape if i < 0 else getattr(node.args[i], 'shape', '?')}) "
                f"is at version "
                f"{box[0]}; expected version {v}. Clone the tensor before modifying it, "
                f"or modify it out of place."
            )


def _vjp_args(node: Node, create_graph: bool):
    """The VJP arguments and saved result, when hooks or create_graph change them."""
    args = node.args
    out = node.out
    unpack = node.packed
    if node.vers is not None and (unpack is not None or create_graph):
        call = list(args)
        for ent in node.vers:
            i = ent[0]
            if i < 0:
                continue
            if unpack is not None:
                t = unpack(args[i])
                call[i] = t if create_graph else (t._data if isinstance(t, Tensor) else t)
            else:
                call[i] = ent[3]
        args = tuple(call)
    if out is not None:
        if unpack is not None:
            out = unpack(out)._data
        if create_graph:
            out = _tensor_from_out(node, out)
    return args, out


def apply_primitive(node: Node, g, create_graph: bool):
    """Run a primitive node's VJPs on upstream gradient ``g``; returns input gradients.

    ``node.args`` holds raw arrays for saved tensors, so a plain backward calls the VJPs
    on it directly; ``create_graph`` and saved-tensor hooks go through ``_vjp_args``.
    Each gradient is then summed to its input's shape and cast to its dtype.
    """
    args = node.args
    if args is None:
        raise _freed_error(node)
    vers = node.vers
    if vers is not None:
        for ent in vers:
            if ent[1][0] != ent[2]:
                _check_versions(node)
    if create_graph or node.packed is not None:
        args, out = _vjp_args(node, create_graph)
    else:
        out = node.out
    prim = node.prim
    vjps = prim.vjps
    edges = node.edges
    if prim.vjp_all is not None:
        grads = list(prim.vjp_all(g, out, *args))
        for i in range(len(edges)):
            if edges[i] is None:
                grads[i] = None
        return _fit_all(grads, args)
    if vjps is None:
        raise RuntimeError(f"backward: '{node.name}' has no backward rule")
    grads = [None] * len(edges)
    for i in range(len(edges)):
        if edges[i] is not None:
            grads[i] = vjps[i](g, out, *args)
    return _fit_all(grads, args)


def _fit_all(grads: list, args) -> list:
    """Sum each gradient to its input's shape and cast it to the input's dtype."""
    for i in range(len(grads)):
        gi = grads[i]
        if gi is None:
            continue
        ref = args[i]
        if gi.shape != ref.shape:
            gi = grads[i] = _sum_to(gi, ref.shape)
        rd = ref.dtype
        if gi.dtype is not rd and gi.dtype != rd:
            grads[i] = _cast(gi, rd)
    return grads


def _sum_to(g, shape):
    from ..ops.shape import sum_to

    return sum_to(g, tuple(shape))


def _cast(g, dtype):
    from ..ops.elementwise import cast

    return cast(g, dtype)


def _as_tensor(g) -> Tensor:
    return g if isinstance(g, Tensor) else _wrap(g)


def _run_hooks(hooks, g, create_graph: bool):
    for h in list(hooks):
        r = h(_as_tensor(g))
        if r is not None:
            g = r if create_graph else (r._data if isinstance(r, Tensor) else np.asarray(r))
    return g


def _topo_needed(roots: list, deps: dict, wanted: set) -> set:
    """Nodes from which some wanted target is reachable (so their VJPs must run)."""
    counts = dict(deps)
    ready = [r for r in dict.fromkeys(roots) if counts.get(r, 0) == 0]
    order = []
    while ready:
        n = ready.pop()
        order.append(n)
        for e in n.edges:
            if e is None or isinstance(e, Tensor):
                continue
            c = counts[e] - 1
            counts[e] = c
            if c == 0:
                ready.append(e)
    needed = set()
    for n in reversed(order):
        if n in wanted:
            needed.add(n)
            continue
        for e in n.edges:
            if e is not None and (e in needed or e in wanted):
                needed.add(n)
                break
    return needed


def _count_consumers(roots: list) -> tuple[set, dict]:
    """Walk the graph from ``roots`` without recursion.

    Returns ``(seen, multi)``: every reachable node and leaf, and the number of
    consumers of the roots and of everything fed by more than one consumer. Anything
    in ``seen`` but not in ``multi`` has exactly one consumer, so its gradient is final
    the moment that consumer delivers it: it skips the accumulation buffers.
    """
    seen = set()
    multi: dict = {}
    stack = []
    for r in roots:
        if r not in seen:
            seen.add(r)
            multi[r] = 0
            if not isinstance(r, Tensor):
                stack.append(r)
    while stack:
        n = stack.pop()
        for e in n.edges:
            if e is None:
                continue
            if e in seen:
                multi[e] = multi.get(e, 1) + 1
            else:
                seen.add(e)
                if e.__class__ is Node or not isinstance(e, Tensor):
                    stack.append(e)
    return seen, multi


def execute(roots: list, root_grads: list, retain_graph: bool, create_graph: bool,
            capture: dict | None = None, only: set | None = None) -> None:
    """Run backward from ``roots`` (nodes or leaf tensors) with gradients ``root_grads``.

    Args:
        capture: when given, maps targets (leaf tensors or nodes) to ``None`` and is
            filled with their gradients instead of accumulating into ``.grad``.
        only: when given (``backward(inputs=...)``), accumulate only into these leaves.
    """
    # 1. consumer counts over the reachable graph, iteratively
    seen, multi = _count_consumers(roots)

    needed = None
    if capture is not None or only is not None:
        wanted = set(capture) if capture is not None else set(only)
        node_roots = [r for r in roots if not isinstance(r, Tensor)]
        counts = {n: multi.get(n, 1) for n in seen}
        needed = _topo_needed(node_roots, counts, wanted)

    # 2. seed the buffers; roots nothing else feeds are ready now
    buf: dict = {}
    handed: set = set()
    for r, g in zip(roots, root_grads):
        handed.add(id(g))
        prev = buf.get(r)
        buf[r] = g if prev is None else prev + g
    ready = []
    for r in roots:
        if multi[r] != 0 or r not in buf:
            continue
        g = buf.pop(r)
        if isinstance(r, Tensor):
            _finish_leaf(r, g, create_graph, capture, only, handed)
        else:
            ready.append((r, g))

    check = anomaly._state.enabled
    plain = not create_graph
    # 3. run each node once all its consumers have delivered (a stack of (node, grad))
    prev_mode = _grad_state.enabled
    _grad_state.enabled = create_graph
    try:
        while ready:
            node, g = ready.pop()
            if node.hooks and g is not None:
                g = _run_hooks(node.hooks, g, create_graph)
            if capture is not None and node in capture:
                capture[node] = g
            edges = node.edges
            if needed is not None and node not in needed:
                grads = None
            elif node.__class__ is Node:
                prim = node.prim
                args = node.args
                if g is None:
                    grads = None
                elif plain and prim.fast and args is not None and node.packed is None:
                    # apply_primitive's common case, inline: a plain backward through a
                    # one- or two-input primitive with one VJP per input
                    vers = node.vers
                    if vers is not None:
                        for ent in vers:
                            if ent[1][0] != ent[2]:
                                _check_versions(node)
                    vjps = prim.vjps
                    out = node.out
                    if prim.arity == 1:
                        ga = vjps[0](g, out, *args)
                        gb = None
                    else:
                        ga = None if edges[0] is None else vjps[0](g, out, *args)
                        gb = None if edges[1] is None else vjps[1](g, out, *args)
                    if ga is not None:
                        ref = args[0]
                        if ga.shape != ref.shape:
                            ga = _sum_to(ga, ref.shape)
                        rd = ref.dtype
                        if ga.dtype is not rd and ga.dtype != rd:
                            ga = _cast(ga, rd)
                    if gb is not None:
                        ref = args[1]
                        if gb.shape != ref.shape:
                            gb = _sum_to(gb, ref.shape)
                        rd = ref.dtype
                        if gb.dtype is not rd and gb.dtype != rd:
                            gb = _cast(gb, rd)
                    grads = (ga,) if prim.arity == 1 else (ga, gb)
                    if vers is not None and not retain_graph:
                        node.args = None
                        node.out = None
                        node.vers = None
                        node.freed = True
                else:
                    grads = apply_primitive(node, g, create_graph)
                    if not retain_graph and node.vers is not None:
                        node.args = None
                        node.out = None
                        node.vers = None
                        node.freed = True
            else:
                grads = node.apply(g, create_graph, retain_graph)
            if grads is None:
                grads = (None,) * len(edges)
            elif check:
                anomaly.check_grads(node, grads)
            for e, gi in zip(edges, grads):
                if e is None:
                    continue
                c = multi.get(e)
                if c is None:
                    # the only consumer: the gradient is complete
                    if e.__class__ is Node or not isinstance(e, Tensor):
                        ready.append((e, gi))
                    elif gi is not None:
                        _finish_leaf(e, gi, create_graph, capture, only, handed)
                    continue
                if c > 1:
                    multi[e] = c - 1
                    if gi is not None:
                        prev = buf.get(e)
                        buf[e] = gi if prev is None else prev + gi
                    continue
                multi[e] = 0
                prev = buf.pop(e, None)
                if gi is None:
                    gi = prev
                elif prev is not None:
                    gi = prev + gi
                if e.__class__ is Node or not isinstance(e, Tensor):
                    ready.append((e, gi))
                elif gi is not None:
                    _finish_leaf(e, gi, create_graph, capture, only, handed)
    finally:
        _grad_state.enabled = prev_mode


def _finish_leaf(t: Tensor, g, create_graph: bool, capture, only, handed: set) -> None:
    extra = t._extra
    if extra is not None and extra.get("hooks"):
        g = _run_hooks(extra["hooks"], g, create_graph)
    if capture is not None:
        if t in capture:
            capture[t] = g
        return
    if only is not None and t not in only:
        return
    if create_graph:
        gt = _as_tensor(g)
        t.grad = gt if t.grad is None else t.grad + gt
        return
    if isinstance(g, Tensor):
        g = g._data
    if type(g) is not _ndarray:
        g = np.asarray(g)
        owned = True
    else:
        owned = g.base is None and g.flags.writeable and id(g) not in handed
    cur = t.grad
    if cur is None:
        if not owned:
            g = g.copy()
        handed.add(id(g))
        t.grad = _wrap(g)
    elif cur.requires_grad or cur._data.shape != g.shape or not cur._data.flags.writeable:
        t.grad = _wrap(np.asarray(cur._data + g))
    else:
        cur._data += g


def _make_root_grads(tensors: Sequence[Tensor], grads, op: str, create_graph: bool):
    out = []
    for k, t in enumerate(tensors):
        g = grads[k] if grads is not None else None
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs; output "
                    f"{k} has shape {t._data.shape}. Pass a gradient of that shape "
                    f"(gradient= for backward, grad_outputs= for grad)."
                )
            arr = np.ones(t._data.shape, dtype=t._data.dtype)
            out.append(_wrap(arr) if create_graph else arr)
            continue
        if not isinstance(g, Tensor):
            g = _wrap(np.asarray(g, dtype=t._data.dtype))
        if g._data.shape != t._data.shape:
            raise RuntimeError(
                f"{op}: gradient {k} has shape {g._data.shape} but the output has shape "
                f"{t._data.shape}; they must match"
            )
        if g._data.dtype != t._data.dtype:
            g = _wrap(g._data.astype(t._data.dtype))
        out.append(g if create_graph else g._data)
    return out


def _root_of(t: Tensor, op: str, k: int):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected tensors, got {type(t).__name__} at position {k}")
    if not t.requires_grad:
        raise RuntimeError(
            f"{op}: element {k} of tensors does not require grad and does not have a "
            f"grad_fn (shape {t._data.shape}); did you call it under no_grad, detach it, "
            f"or forget requires_grad=True on the inputs?"
        )
    return t.grad_fn if t.grad_fn is not None else t


def _as_seq(x) -> list:
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the graph's leaves.

    Args:
        tensors: a tensor or a sequence of tensors to differentiate.
        grad_tensors: matching gradients (``None`` entries allowed for one-element
            tensors).
        retain_graph: keep saved values for another backward (defaults to
            ``create_graph``).
        create_graph: record the backward pass for higher-order gradients.
        inputs: if given, accumulate only into these leaf tensors.

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> cr.autograd.backward(x * x)
    >>> x.grad
    tensor(6.)
    """
    ts = _as_seq(tensors)
    gs = None if grad_tensors is None else _as_seq(grad_tensors)
    if gs is not None and len(gs) != len(ts):
        raise RuntimeError(f"backward: got {len(ts)} tensors but {len(gs)} gradients")
    if retain_graph is None:
        retain_graph = create_graph
    roots = [_root_of(t, "backward", k) for k, t in enumerate(ts)]
    grads = _make_root_grads(ts, gs, "backward", create_graph)
    only = None
    if inputs is not None:
        ins = _as_seq(inputs)
        if not ins:
            raise RuntimeError("backward: inputs= must not be empty")
        only = set()
        for t in ins:
            if not t.requires_grad:
                raise RuntimeError("backward: every tensor in inputs= must require grad")
            if t.grad_fn is not None:
                raise RuntimeError("backward: inputs= supports leaf tensors only here; use "
                                   "autograd.grad for intermediate tensors")
            only.add(t)
    execute(roots, grads, retain_graph, create_graph, only=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False,
         materialize_grads: bool = False) -> tuple:
    """Return the gradients of ``outputs`` w.r.t. ``inputs`` (no ``.grad`` is touched).

    Args:
        outputs: a tensor or sequence of tensors.
        inputs: a tensor or sequence of tensors that require grad (leaves or not).
        grad_outputs: gradients w.r.t. each output (``None`` for one-element outputs).
        retain_graph: keep the graph for another backward (defaults to create_graph).
        create_graph: record the computation so the result can be differentiated again.
        allow_unused: return ``None`` for inputs the outputs do not depend on instead
            of raising.
        materialize_grads: return zeros instead of ``None`` for unused inputs.

    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> (dx,) = cr.autograd.grad(x ** 3, x, create_graph=True)
    >>> dx, cr.autograd.grad(dx, x)[0]
    (tensor(12., grad_fn=<mul>), tensor(12.))
    """
    outs = _as_seq(outputs)
    ins = _as_seq(inputs)
    if materialize_grads:
        allow_unused = True
    gs = None if grad_outputs is None else _as_seq(grad_outputs)
    if gs is not None and len(gs) != len(outs):
        raise RuntimeError(f"grad: got {len(outs)} outputs but {len(gs)} grad_outputs")
    if retain_graph is None:
        retain_graph = create_graph
    for k, t in enumerate(ins):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs must be tensors, got {type(t).__name__} at {k}")
        if not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} (shape {t._data.shape}) does not require grad; set "
                f"requires_grad=True on it before computing the outputs"
            )
    roots = [_root_of(t, "grad", k) for k, t in enumerate(outs)]
    grads = _make_root_grads(outs, gs, "grad", create_graph)
    targets = [t.grad_fn if t.grad_fn is not None else t for t in ins]
    capture = {tg: None for tg in targets}
    execute(roots, grads, retain_graph, create_graph, capture=capture)
    result = []
    for k, (t, tg) in enumerate(zip(ins, targets)):
        g = capture[tg]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {k} (shape {t._data.shape}) does not appear in the graph "
                    f"of the outputs; pass allow_unused=True to get None for it"
                )
            if materialize_grads:
                g = np.zeros(t._data.shape, dtype=t._data.dtype)
            else:
                result.append(None)
                continue
        if isinstance(g, Tensor):
            result.append(g)
        else:
            if not isinstance(g, _ndarray) or not g.flags.writeable or g.base is not None:
                g = np.array(g)
            result.append(_wrap(g))
    return tuple(result)
