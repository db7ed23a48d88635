"""Explain any recorded graph: nodes in backward order with their local rules.

:func:`explain` walks the graph of a loss without recursion, runs one probe backward
(``autograd.grad`` with ``retain_graph=True`` and node hooks, so ``.grad`` is untouched)
to record the gradient arriving at each node, and reports for each node the local
rule applied, the upstream gradient's shape and norm, and where gradients fan in
(a value used by several consumers receives the sum of their contributions).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor
from ._graph import backward_order, check_scalar, dtype_str, norm, root_of, walk

# The local rule each primitive applies, in terms of the upstream gradient g.
RULES = {
    "add": "dL/da = g, dL/db = g (unbroadcast to each input's shape)",
    "sub": "dL/da = g, dL/db = -g",
    "mul": "dL/da = g * b, dL/db = g * a",
    "div": "dL/da = g / b, dL/db = -g * a / b^2",
    "pow": "dL/da = g * b * a^(b-1), dL/db = g * out * log(a)",
    "neg": "dL/dx = -g",
    "exp": "dL/dx = g * out",
    "log": "dL/dx = g / x",
    "sqrt": "dL/dx = g / (2 out)",
    "tanh": "dL/dx = g * (1 - out^2)",
    "sigmoid": "dL/dx = g * out * (1 - out)",
    "relu": "dL/dx = g where out > 0, else 0",
    "abs": "dL/dx = g * sign(x)",
    "matmul": "dL/dA = g B^T, dL/dB = A^T g",
    "sum": "dL/dx = g broadcast back over the summed axes",
    "amax": "dL/dx = g at the maximum (ties share it), 0 elsewhere",
    "amin": "dL/dx = g at the minimum (ties share it), 0 elsewhere",
    "reshape": "dL/dx = g reshaped to x's shape",
    "permute": "dL/dx = g with the inverse permutation",
    "expand": "dL/dx = g summed over the expanded axes",
    "getitem": "dL/dx = g scattered into zeros at the indexed positions",
    "softmax": "dL/dx = out * (g - sum(g * out))",
    "log_softmax": "dL/dx = g - softmax(x) * sum(g)",
    "logsumexp": "dL/dx = g * softmax(x)",
    "maximum": "dL/da = g where a > b, dL/db = g where b > a (ties split)",
    "minimum": "dL/da = g where a < b, dL/db = g where b < a (ties split)",
    "clamp": "dL/dx = g inside [min, max], 0 outside",
    "where": "dL/da = g where cond, dL/db = g elsewhere",
    "cast": "dL/dx = g cast back to x's dtype",
    "cat": "dL/dx_i = the slice of g for x_i",
}


@dataclass
class NodeInfo:
    """One graph entry as backward sees it.

    Attributes:
        index: position in backward order (0 is the loss).
        name: op name, or ``leaf`` for a leaf tensor.
        shape, dtype: the forward value's shape and dtype name.
        rule: the local rule applied (leaves: accumulate into ``.grad``).
        grad_norm: norm of the gradient arriving here (``None`` if unavailable).
        fan_in: how many consumers' gradients are summed here (> 1 means fan-in).
        inputs: indices of the entries this one sends gradients to.
    """

    index: int
    name: str
    shape: tuple
    dtype: str
    rule: str
    grad_norm: float | None = None
    fan_in: int = 1
    inputs: list = field(default_factory=list)


@dataclass
class GraphExplanation:
    """The explanation of one backward pass over a recorded graph.

    Attributes:
        entries: :class:`NodeInfo` for every node (backward order) then every leaf.
        note: why gradient norms are missing, if they are.
    """

    entries: list = field(default_factory=list)
    note: str = ""

    @property
    def fan_in(self) -> list:
        """Entries where gradients from several consumers are summed."""
        return [e for e in self.entries if e.fan_in > 1]

    def text(self, width: int = 80, limit: int | None = 200) -> str:
        """Readable text, lines at most ``width`` columns; at most ``limit`` entries."""
        if width < 40:
            raise ValueError(f"GraphExplanation.text: width must be at least 40, got {width}")
        nodes = sum(1 for e in self.entries if e.name != "leaf")
        lines = textwrap.wrap(
            f"Backward pass over {nodes} nodes and {len(self.entries) - nodes} leaves, "
            f"in the order backward runs them. g is the gradient arriving at a node "
            f"(dL/d its output); fan-in marks values whose gradients are summed.", width)
        if self.note:
            lines += textwrap.wrap("Note: " + self.note, width)
        shown = self.entries if limit is None else self.entries[:limit]
        for e in shown:
            gn = "n/a" if e.grad_norm is None else f"{e.grad_norm:.4g}"
            head = (f"[{e.index}] {e.name} {tuple(e.shape)} {e.dtype}  "
                    f"|g| = {gn}")
            if e.fan_in > 1:
                head += f"  fan-in: sum of {e.fan_in}"
            lines += [""] + textwrap.wrap(head, width, subsequent_indent="    ")
            lines += textwrap.wrap("rule: " + e.rule, width, initial_indent="    ",
                                   subsequent_indent="      ")
            if e.inputs:
                to = ", ".join(f"[{i}]" for i in e.inputs)
                lines += textwrap.wrap("sends to: " + to, width, initial_indent="    ",
                                       subsequent_indent="      ")
        if len(shown) < len(self.entries):
            lines += ["", f"... {len(self.entries) - len(shown)} more entries"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def explain(loss: Tensor, grads: bool = True) -> GraphExplanation:
    """Explain the backward pass of ``loss`` node by node.

    Args:
        loss: a scalar tensor with a graph. Call before ``backward()`` (or after
            ``backward(retain_graph=True)``) to get gradient norms.
        grads: run a probe backward for the gradient norms (``.grad`` is not touched).

    Returns:
        A :class:`GraphExplanation`.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> ex = cr.diagnostics.explain((w * w).sum())
    >>> [(e.name, e.fan_in) for e in ex.entries]
    [('sum', 1), ('mul', 1), ('leaf', 2)]
    """
    check_scalar("explain", loss)
    root = root_of(loss)
    if root is None:
        raise ValueError("explain: the loss has no graph (requires_grad=False); compute it "
                         "with grad mode on from tensors that require grad")
    w = walk([root])
    order = backward_order([root], w.consumers) if not isinstance(root, Tensor) else []
    index: dict = {}
    for n in order:
        index[n] = len(index)
    for leaf in w.leaves:
        index[leaf] = len(index)
    seen: dict = {}
    note = ""
    if grads:
        note = _probe(loss, order, w.leaves, seen)
    else:
        note = "gradient norms not computed (grads=False)"
    out = GraphExplanation(note=note)
    for n in order:
        out.entries.append(NodeInfo(
            index=index[n], name=n.name, shape=tuple(n.shape), dtype=dtype_str(n.dtype),
            rule=_rule(n),
            grad_norm=seen.get(n), fan_in=w.consumers.get(n, 1),
            inputs=[index[e] for e in n.edges if e is not None]))
    for leaf in w.leaves:
        out.entries.append(NodeInfo(
            index=index[leaf], name="leaf", shape=tuple(leaf.shape),
            dtype=dtype_str(leaf.dtype), rule="accumulate g into .grad",
            grad_norm=seen.get(leaf), fan_in=w.consumers.get(leaf, 1)))
    return out


def _rule(n) -> str:
    if getattr(n, "ctx", None) is not None:
        return f"the backward() of the custom autograd.Function {n.name}"
    return RULES.get(n.name, f"the vector-Jacobian product of {n.name}")


def _probe(loss: Tensor, order: list, leaves: list, seen: dict) -> str:
    if any(getattr(n, "freed", False) for n in order):
        return ("gradient norms unavailable: the graph was freed by backward(); call "
                "explain before backward() or use backward(retain_graph=True)")
    hooks = []
    for n in order:
        def hook(g, n=n):
            seen[n] = norm(g)

        n.register_prehook(hook)
        hooks.append((n, hook))
    try:
        with enable_grad():
            gs = _grad(loss, leaves, retain_graph=True, allow_unused=True) if leaves else ()
    finally:
        for n, h in hooks:
            n.hooks.remove(h)
    for leaf, g in zip(leaves, gs):
        if g is not None:
            seen[leaf] = norm(g)
    return ""
