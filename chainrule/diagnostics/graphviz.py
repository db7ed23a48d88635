"""Draw a recorded graph as Graphviz DOT (and SVG/PNG when the ``dot`` program exists).

Built with explicit stacks, so graphs of 100,000+ nodes are fine; ``collapse=True``
merges runs of a repeated chain of identical ops (``add x 100000``, or
``[mul -> add] x 500``) into one box.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from ..tensor import Tensor
from ._graph import dtype_str, is_node, norm, root_of, walk

_MAX_PERIOD = 4  # longest repeated op pattern collapse looks for
_MIN_REPEAT = 3  # shortest run worth collapsing


class GraphvizNotFoundWarning(UserWarning):
    """Issued when an image was asked for but Graphviz ``dot`` is not installed."""


def draw_graph(tensor: Tensor, path: str | Path | None = None, collapse: bool = False,
               show_grads: bool = True, params: dict | None = None, model=None) -> str:
    """Render the graph that produced ``tensor`` as Graphviz DOT text.

    Ops are boxes (name, shape, dtype); leaves are ellipses, parameters named and
    filled; the output is highlighted. After backward, leaves show ``|grad|``.

    Args:
        tensor: the output (usually the loss) whose history to draw.
        path: where to write. ``.svg``/``.png``/``.pdf`` run ``dot`` when it exists
            (else the ``.dot`` text is written beside it, with a warning); ``.dot`` or
            any other suffix writes the DOT text.
        collapse: merge runs of repeated identical op chains into one node.
        show_grads: label leaves with their gradient norm when ``.grad`` is set.
        params: ``{name: tensor}`` naming parameters.
        model: an object with ``named_parameters()`` (e.g. ``nn.Module``) to name them.

    Returns:
        The DOT source.

    >>> import chainrule as cr
    >>> w = cr.ones(2, requires_grad=True)
    >>> dot = cr.diagnostics.draw_graph((w * 2).sum(), params={"w": w})
    >>> dot.splitlines()[0]
    'digraph chainrule {'
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    names = _param_names(params, model)
    root = root_of(tensor)
    w = walk([root]) if root is not None else walk([])
    group, labels = _groups(w.nodes, w.consumers, collapse)
    ids: dict = {}
    lines = [
        "digraph chainrule {",
        '  graph [rankdir=BT, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    for n in w.nodes:
        g = group[n]
        if g in ids:
            continue
        ids[g] = f"n{len(ids)}"
        style = ', style=filled, fillcolor="#c8e6a0"' if n is root else ""
        label = labels.get(g) or _node_label(g)
        lines.append(f'  {ids[g]} [shape=box, label="{_esc(label)}"{style}];')
    for leaf in w.leaves:
        ids[leaf] = f"n{len(ids)}"
        lines.append(f"  {ids[leaf]} [{_leaf_attrs(leaf, names.get(id(leaf)), show_grads)}];")
    if root is None:
        ids[tensor] = "n0"
        text = _esc(_tensor_label(tensor) + "\nno graph (requires_grad=False)")
        lines.append(f'  n0 [shape=ellipse, label="{text}"];')
    edges: set = set()
    for n in w.nodes:
        dst = ids[group[n]]
        for e in n.edges:
            if e is None:
                continue
            src = ids[e] if isinstance(e, Tensor) else ids[group[e]]
            if src != dst and (src, dst) not in edges:
                edges.add((src, dst))
                lines.append(f"  {src} -> {dst};")
    lines.append("}")
    dot = "\n".join(lines) + "\n"
    if path is not None:
        _write(dot, Path(path))
    return dot


def _param_names(params, model) -> dict:
    names: dict = {}
    if model is not None:
        if not hasattr(model, "named_parameters"):
            raise TypeError(f"draw_graph: model must have named_parameters(), got "
                            f"{type(model).__name__}")
        for name, p in model.named_parameters():
            names[id(p)] = name
    if params is not None:
        if not isinstance(params, dict):
            raise TypeError(f"draw_graph: params must be a dict name -> tensor, got "
                            f"{type(params).__name__}")
        for name, p in params.items():
            names[id(p)] = str(name)
    return names


def _tensor_label(t: Tensor) -> str:
    return f"{tuple(t.shape)} {dtype_str(t.dtype)}"


def _leaf_attrs(leaf: Tensor, name: str | None, show_grads: bool) -> str:
    parts = [name] if name else []
    parts += [_tensor_label(leaf), "parameter" if name else "leaf"]
    if show_grads and leaf.grad is not None:
        parts.append(f"|grad| = {norm(leaf.grad):.3g}")
    label = _esc("\n".join(parts))
    fill = "#a7c7e7" if name else "#e0e0e0"
    return f'shape=ellipse, style=filled, fillcolor="{fill}", label="{label}"'


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sig(n) -> tuple:
    return (n.name, tuple(n.shape), str(n.dtype))


def _node_label(n) -> str:
    return f"{n.name}\n{tuple(n.shape)} {dtype_str(n.dtype)}"


def _groups(nodes: list, consumers: dict, collapse: bool) -> tuple[dict, dict]:
    """Map each node to its drawn box (itself, or a collapsed run) and label each box."""
    group = {n: n for n in nodes}
    labels: dict = {}
    if not collapse:
        return group, labels
    # chain link: n's only node input, used by n alone
    link: dict = {}
    for n in nodes:
        inner = [e for e in n.edges if is_node(e)]
        if len(inner) == 1 and consumers.get(inner[0], 0) == 1:
            link[n] = inner[0]
    linked_to = set(link.values())
    for head in nodes:
        if head in linked_to:
            continue
        chain = [head]
        while chain[-1] in link:
            chain.append(link[chain[-1]])
        if len(chain) >= _MIN_REPEAT:
            _collapse_chain(chain, group, labels)
    return group, labels


def _collapse_chain(chain: list, group: dict, labels: dict) -> None:
    sigs = [_sig(n) for n in chain]
    i = 0
    while i < len(chain):
        best_p, best_r = 0, 0
        for p in range(1, _MAX_PERIOD + 1):
            pat = sigs[i:i + p]
            if len(pat) < p:
                break
            r = 1
            while sigs[i + r * p:i + (r + 1) * p] == pat:
                r += 1
            if r >= _MIN_REPEAT and p * r > best_p * best_r:
                best_p, best_r = p, r
        if best_r == 0:
            i += 1
            continue
        run = chain[i:i + best_p * best_r]
        rep = run[0]
        for n in run:
            group[n] = rep
        # the chain runs from the output backward; show the pattern in forward order
        pattern = [chain[i + k] for k in range(best_p)][::-1]
        ops = " -> ".join(n.name for n in pattern)
        if best_p > 1:
            ops = f"[{ops}]"
        last = pattern[-1]
        labels[rep] = (f"{ops} x {best_r}\n{tuple(last.shape)} {dtype_str(last.dtype)}")
        i += best_p * best_r


def _write(dot: str, path: Path) -> None:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "pdf"):
        path.write_text(dot)
        return
    exe = shutil.which("dot")
    if exe is None:
        dot_path = path.with_suffix(".dot")
        dot_path.write_text(dot)
        warnings.warn(
            f"draw_graph: Graphviz 'dot' was not found, so {path.name} was not rendered; "
            f"wrote the DOT source to {dot_path} instead. Install Graphviz (e.g. apt install "
            f"graphviz) and run: dot -T{fmt} {dot_path} -o {path}",
            GraphvizNotFoundWarning, stacklevel=3)
        return
    subprocess.run([exe, f"-T{fmt}", "-o", str(path)], input=dot.encode(), check=True)
