"""Iterative walks over a recorded graph, shared by the diagnostics.

Everything here reads only the public graph API: ``tensor.grad_fn``, ``node.edges``,
``node.name``, ``node.shape`` and ``node.dtype``. No function recurses, so graphs of
hundreds of thousands of nodes are fine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..tensor import Tensor


def is_node(e) -> bool:
    """True for a graph node (an edge that is neither ``None`` nor a leaf tensor)."""
    return e is not None and not isinstance(e, Tensor)


def root_of(t: Tensor):
    """The graph entry for ``t``: its ``grad_fn``, itself if it is a grad leaf, or None."""
    if t.grad_fn is not None:
        return t.grad_fn
    return t if t.requires_grad else None


@dataclass
class Walk:
    """The part of a graph reachable from some roots.

    Attributes:
        nodes: every node reached, in discovery order (roots first).
        leaves: every leaf tensor (requires_grad, no grad_fn) reached.
        consumers: for each node or leaf, how many edges point at it (its fan-out in the
            forward pass, so the number of gradient contributions summed in backward).
    """

    nodes: list = field(default_factory=list)
    leaves: list = field(default_factory=list)
    consumers: dict = field(default_factory=dict)


def walk(roots: Iterable) -> Walk:
    """Collect nodes, leaves and consumer counts reachable from ``roots`` (nodes/leaves)."""
    out = Walk()
    seen: set = set()
    stack = []
    for r in roots:
        if r is None or r in seen:
            continue
        seen.add(r)
        if isinstance(r, Tensor):
            out.leaves.append(r)
        else:
            out.nodes.append(r)
            stack.append(r)
    consumers = out.consumers
    while stack:
        n = stack.pop()
        for e in n.edges:
            if e is None:
                continue
            consumers[e] = consumers.get(e, 0) + 1
            if e in seen:
                continue
            seen.add(e)
            if isinstance(e, Tensor):
                out.leaves.append(e)
            else:
                out.nodes.append(e)
                stack.append(e)
    return out


def backward_order(roots: list, consumers: dict) -> list:
    """Nodes in the order backward runs them: each after all of its consumers."""
    counts = dict(consumers)
    ready = [r for r in roots if is_node(r) and counts.get(r, 0) == 0]
    order = []
    done: set = set()
    while ready:
        n = ready.pop()
        if n in done:
            continue
        done.add(n)
        order.append(n)
        for e in n.edges:
            if not is_node(e):
                continue
            c = counts[e] - 1
            counts[e] = c
            if c == 0:
                ready.append(e)
    return order


def count_nodes(roots: Iterable) -> int:
    """How many distinct nodes are reachable from ``roots`` (nodes; others ignored)."""
    seen: set = set()
    stack = []
    for r in roots:
        if is_node(r) and r not in seen:
            seen.add(r)
            stack.append(r)
    while stack:
        n = stack.pop()
        for e in n.edges:
            if is_node(e) and e not in seen:
                seen.add(e)
                stack.append(e)
    return len(seen)


_DTYPE_NAMES: dict = {}


def dtype_str(dtype) -> str:
    """A dtype's short name, e.g. ``float32``."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = np.dtype(dtype).name
    return name


def norm(g) -> float:
    """Euclidean norm of a gradient given as a tensor or an array."""
    arr = g._data if isinstance(g, Tensor) else np.asarray(g)
    return float(np.sqrt(np.sum(np.square(arr, dtype=np.float64))))


def check_scalar(op: str, loss) -> Tensor:
    """Validate that ``loss`` is a one-element tensor; return it."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"{op}: expected the loss as a chainrule Tensor, got "
                        f"{type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(
            f"{op}: the loss must be a scalar (one element), got shape {tuple(loss.shape)}; "
            f"reduce it first, e.g. loss.sum() or loss.mean()"
        )
    return loss


def param_list(op: str, params) -> list:
    """Parameters as a list of tensors from a tensor, an iterable, or a model.

    A model is anything with a ``parameters()`` method (such as ``nn.Module``).
    """
    if isinstance(params, Tensor):
        ps = [params]
    elif hasattr(params, "parameters") and callable(params.parameters):
        ps = list(params.parameters())
    else:
        try:
            ps = list(params)
        except TypeError:
            raise TypeError(f"{op}: params must be a tensor, a list of tensors or a model "
                            f"with parameters(), got {type(params).__name__}") from None
    if not ps:
        raise ValueError(f"{op}: got no parameters; pass the tensors the loss depends on "
                         f"(e.g. list(model.parameters())), and give the model parameters")
    for k, p in enumerate(ps):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameter {k} is a {type(p).__name__}, not a Tensor")
        if not p.requires_grad:
            raise ValueError(
                f"{op}: parameter {k} (shape {tuple(p.shape)}) does not require grad; call "
                f"p.requires_grad_() on it (or leave it out of params)"
            )
    return ps
