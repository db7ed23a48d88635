"""Graph doctor: say why a parameter gets no gradient (``None``) or a zero gradient.

:func:`why_no_grad` reads the loss graph (iteratively) and, when that is not enough,
runs a small probe: a backward with hooks that record the gradient reaching every node
between the loss and the parameter, and, when the loss is given as a callable, forward
passes with the parameter perturbed to see whether the loss depends on it at all.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np

from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor
from ._graph import backward_order, check_scalar, is_node, norm, root_of, walk

_ZERO_GRAD_OPS = {"floor", "ceil", "round", "trunc", "sign"}


class NoGradReason(str, enum.Enum):
    """Structured cause codes returned with :func:`why_no_grad`'s explanation."""

    OK = "ok"
    NOT_REQUIRING_GRAD = "param_not_requiring_grad"
    NON_LEAF = "non_leaf"
    NOT_CONNECTED = "not_connected"
    DETACHED = "detached"
    NON_DIFFERENTIABLE = "non_differentiable"
    DEAD_RELU = "dead_relu"
    ZERO_GRAD_OP = "zero_grad_op"
    ZERO_GRADIENT = "zero_gradient"
    GRAPH_FREED = "graph_freed"


class GradDiagnosis(str):
    """The explanation text (a ``str``) carrying ``.code`` and ``.details``."""

    code: NoGradReason
    details: dict

    def __new__(cls, text: str, code: NoGradReason, details: dict | None = None):
        obj = super().__new__(cls, text)
        obj.code = code
        obj.details = details or {}
        return obj


def why_no_grad(loss, param: Tensor) -> GradDiagnosis:
    """Explain why ``param`` gets no (or a zero) gradient from ``loss``.

    Args:
        loss: the scalar loss tensor, or better a zero-argument callable that recomputes
            it (then the doctor can perturb ``param`` and tell ``detach``/``no_grad``
            apart from integer casts and non-differentiable ops such as argmax or
            comparisons). Call it before ``backward()`` (or backward with
            ``retain_graph=True``) when the gradient is zero rather than None.
        param: the parameter (a leaf tensor) to diagnose.

    Returns:
        A :class:`GradDiagnosis`: the explanation as a string, with ``.code`` a
        :class:`NoGradReason` and ``.details`` a dict of the evidence.

    >>> import chainrule as cr
    >>> w = cr.ones(3, requires_grad=True)
    >>> d = cr.diagnostics.why_no_grad(lambda: (w.detach() * 2).sum(), w)
    >>> d.code.value
    'detached'
    """
    if not isinstance(param, Tensor):
        raise TypeError(f"why_no_grad: param must be a Tensor, got {type(param).__name__}")
    loss_fn = None
    if callable(loss) and not isinstance(loss, Tensor):
        loss_fn = loss
        with enable_grad():
            loss = _call(loss_fn)
    check_scalar("why_no_grad", loss)
    if not param.requires_grad:
        return GradDiagnosis(
            f"The parameter (shape {tuple(param.shape)}) has requires_grad=False, so no "
            f"gradient is ever computed for it: it was created without requires_grad=True "
            f"or frozen. Call param.requires_grad_() before the forward pass.",
            NoGradReason.NOT_REQUIRING_GRAD)
    if param.grad_fn is not None:
        return GradDiagnosis(
            f"The tensor (shape {tuple(param.shape)}) is not a leaf: it was computed by "
            f"'{param.grad_fn.name}', and backward() fills .grad only for leaves. Call "
            f".retain_grad() on it before backward, or use cr.autograd.grad(loss, tensor).",
            NoGradReason.NON_LEAF)
    root = root_of(loss)
    w = walk([root])
    if any(leaf is param for leaf in w.leaves):
        return _connected(loss, param, w)
    return _disconnected(loss, loss_fn, param, w)


# ------------------------------------------------------------------ connected
def _path_nodes(root, param: Tensor, w) -> list:
    """Nodes lying on some path from the loss to ``param``, in backward order."""
    order = backward_order([root], w.consumers)
    reaches: set = set()
    for n in reversed(order):
        for e in n.edges:
            if e is param or (is_node(e) and e in reaches):
                reaches.add(n)
                break
    return [n for n in order if n in reaches]


def _connected(loss: Tensor, param: Tensor, w) -> GradDiagnosis:
    root = loss.grad_fn
    path = _path_nodes(root, param, w)
    if any(getattr(n, "freed", False) for n in path):
        g = param.grad
        if g is not None and norm(g) > 0:
            return _ok(param, norm(g), None)
        return GradDiagnosis(
            "The parameter is connected to the loss, but the graph was freed by an earlier "
            "backward(), so the doctor cannot trace where the gradient becomes zero. Call "
            "why_no_grad before backward(), pass retain_graph=True to backward(), or pass "
            "a callable that recomputes the loss.",
            NoGradReason.GRAPH_FREED)
    seen: dict = {}
    hooks = []
    for n in path:
        def hook(g, n=n):
            seen[n] = norm(g)

        n.register_prehook(hook)
        hooks.append((n, hook))
    try:
        with enable_grad():
            (g,) = _grad(loss, param, retain_graph=True, allow_unused=True)
    finally:
        for n, h in hooks:
            n.hooks.remove(h)
    gnorm = 0.0 if g is None else norm(g)
    if gnorm > 0:
        return _ok(param, gnorm, param.grad)
    return _zero(param, path, seen)


def _ok(param: Tensor, gnorm: float, grad) -> GradDiagnosis:
    text = (f"The parameter (shape {tuple(param.shape)}) is connected to the loss and "
            f"receives a nonzero gradient (norm {gnorm:.4g}).")
    if grad is None:
        text += (" Its .grad is None only because backward() has not run yet (or "
                 "zero_grad(set_to_none=True) cleared it): call loss.backward().")
    return GradDiagnosis(text, NoGradReason.OK, {"grad_norm": gnorm})


def _zero(param: Tensor, path: list, seen: dict) -> GradDiagnosis:
    on_path = set(path)
    killers = []
    for n in path:
        if seen.get(n, 0.0) == 0.0:
            continue
        kids = [e for e in n.edges if e is param or (is_node(e) and e in on_path)]
        if all((0.0 if k is param else seen.get(k, 0.0)) == 0.0 for k in kids):
            killers.append(n)
    names = [n.name for n in killers]
    details = {"ops": names, "upstream_norms": [seen[n] for n in killers]}
    relus = [n for n in killers if n.name == "relu"]
    if relus:
        parts = [_relu_report(n) for n in relus]
        details["relu"] = parts
        return GradDiagnosis(
            "The gradient is exactly zero because of dead ReLUs: at "
            + "; at ".join(p["text"] for p in parts)
            + ". The gradient arriving there is nonzero, but relu passes gradient only "
            "where its output is positive, so nothing reaches the parameter. Fixes: a "
            "smaller learning rate, a different initialization, LeakyReLU/GELU, or "
            "inputs/biases that put the units back in their active range.",
            NoGradReason.DEAD_RELU, details)
    flat = [nm for nm in names if nm in _ZERO_GRAD_OPS]
    if flat:
        return GradDiagnosis(
            f"The gradient is exactly zero because the path passes through "
            f"{', '.join(sorted(set(flat)))}, which is piecewise constant (gradient 0 "
            f"everywhere). Use a smooth surrogate (e.g. a straight-through estimator via a "
            f"custom autograd.Function) if the parameter must learn through it.",
            NoGradReason.ZERO_GRAD_OP, details)
    if killers:
        where = ", ".join(f"'{n.name}' (shape {tuple(n.shape)})" for n in killers)
        text = (f"The parameter is connected, but its gradient is exactly zero: the "
                f"gradient arriving at {where} is nonzero and leaves it as zero (for "
                f"example a multiplication by zero, a clamp or max outside its active "
                f"range, or a masked position).")
    else:
        text = ("The parameter is connected, but no nonzero gradient reaches any node on "
                "its path: the loss is flat in this parameter at this point.")
    return GradDiagnosis(text, NoGradReason.ZERO_GRADIENT, details)


def _relu_report(n) -> dict:
    out = n.out
    shape = tuple(n.shape)
    if not isinstance(out, np.ndarray):
        return {"shape": shape, "text": f"relu (shape {shape})"}
    inactive = out <= 0
    if out.ndim >= 2:
        dead = inactive.all(axis=0)
        k, units = int(dead.sum()), int(dead.size)
        text = (f"relu (shape {shape}) {k} of {units} units are inactive (output 0) for "
                f"all {out.shape[0]} examples")
    else:
        k, units = int(inactive.sum()), int(inactive.size)
        text = f"relu (shape {shape}) {k} of {units} outputs are 0"
    return {"shape": shape, "inactive": k, "units": units, "text": text}


# ------------------------------------------------------------------ not connected
def _disconnected(loss: Tensor, loss_fn, param: Tensor, w) -> GradDiagnosis:
    shared = _saved_inputs(w.nodes, lambda a: np.shares_memory(a, param._data))
    if shared:
        return GradDiagnosis(
            f"The parameter is used, but through a detached view: '{shared[0]}' received "
            f"param.detach() (or param.data), which shares its values but not its graph. "
            f"Use the parameter itself.",
            NoGradReason.DETACHED, {"ops": shared})
    if loss_fn is None:
        nograph = loss.grad_fn is None
        first = ("The loss has no graph at all (requires_grad=False)" if nograph else
                 "The loss graph does not reach this parameter")
        return GradDiagnosis(
            f"{first}: the parameter is unused, or its path was cut by detach()/.data, "
            f"a no_grad() block, an integer cast, or a non-differentiable op (argmax, a "
            f"comparison). Pass a zero-argument function that recomputes the loss, e.g. "
            f"why_no_grad(lambda: compute_loss(), param), for a precise diagnosis.",
            NoGradReason.NOT_CONNECTED, {"loss_has_graph": not nograph})
    return _probe(loss_fn, param)


def _const_inputs(n) -> list:
    """The values a node saved for inputs that get no gradient (edge ``None``).

    Saved tensors may be stored as tensors or raw arrays; both come back as arrays.
    Non-tensor arguments (an index, a dtype) come back as given.
    """
    args = n.args
    if args is None or getattr(n, "ctx", None) is not None:
        return []  # freed, or a custom Function node (its args are not per input)
    out = []
    for e, a in zip(n.edges, args):
        if e is None:
            out.append(a._data if isinstance(a, Tensor) else a)
    return out


def _saved_inputs(nodes: list, pred) -> list:
    """Names of nodes that saved a no-gradient array input satisfying ``pred(array)``."""
    hits = []
    for n in nodes:
        for a in _const_inputs(n):
            if isinstance(a, np.ndarray) and pred(a):
                hits.append(n.name)
                break
    return hits


def _call(loss_fn: Callable) -> Tensor:
    out = loss_fn()
    if not isinstance(out, Tensor):
        raise TypeError(f"why_no_grad: the loss function returned {type(out).__name__}, "
                        f"expected a scalar Tensor")
    return out


class _Prober:
    """Re-run the loss with ``param`` perturbed, under identical random state."""

    def __init__(self, loss_fn: Callable, param: Tensor) -> None:
        self.loss_fn = loss_fn
        self.param = param
        self.rng_state = get_rng_state()
        self.np_state = np.random.get_state()

    def run(self, delta: np.ndarray | None):
        p = self.param
        orig = p._data
        set_rng_state(self.rng_state)
        np.random.set_state(self.np_state)
        try:
            if delta is not None:
                p.data = (orig + delta).astype(orig.dtype)
            with enable_grad():
                out = _call(self.loss_fn)
            return float(out.item()), out
        finally:
            p.data = orig


def _probe(loss_fn: Callable, param: Tensor) -> GradDiagnosis:
    prober = _Prober(loss_fn, param)
    try:
        return _classify(prober, param)
    finally:
        # leave the random streams as after the single call why_no_grad made
        set_rng_state(prober.rng_state)
        np.random.set_state(prober.np_state)


def _classify(prober: _Prober, param: Tensor) -> GradDiagnosis:
    base, base_loss = prober.run(None)
    again, _ = prober.run(None)
    if base != again:
        return GradDiagnosis(
            "The loss graph does not reach the parameter, and the loss function is not "
            "deterministic, so the probe cannot tell whether the loss depends on it. "
            "Make the loss function deterministic (fixed inputs, eval mode) and retry.",
            NoGradReason.NOT_CONNECTED, {"deterministic": False})
    rng = np.random.default_rng(0)
    orig = param._data.astype(np.float64)
    scale = max(float(np.max(np.abs(orig))) if orig.size else 0.0, 1.0)
    dirs = [rng.uniform(-1.0, 1.0, size=orig.shape) for _ in range(3)]
    coarse = []
    for d in dirs:
        for eps in (0.5, 0.05):
            val, run_loss = prober.run(d * eps * scale)
            coarse.append((val, run_loss))
    if all(v == base for v, _ in coarse):
        return GradDiagnosis(
            "The parameter is not connected to the loss: the loss graph does not reach it "
            "and changing its values does not change the loss. It is unused by the "
            "forward pass (check that the layer is called and its output feeds the loss).",
            NoGradReason.NOT_CONNECTED, {"depends": False})
    changed = [run for v, run in coarse if v != base][0]
    evidence = _diff_saved(base_loss, changed)
    details: dict = {"depends": True, "evidence": evidence}
    kinds = {kind for _, kind in evidence}
    if kinds & {"int", "bool", "integral"}:
        ops = sorted({name for name, kind in evidence if kind != "float"})
        return _nondiff(details, f" (values derived from it enter the graph at "
                                  f"{', '.join(ops)} with no gradient path)")
    if "float" in kinds:
        ops = sorted({name for name, _ in evidence})
        return _detached(details, f" (a detached value derived from it enters the graph "
                                  f"at {', '.join(ops)})")
    flat = 0
    for d in dirs:
        val, _ = prober.run(d * 1e-4 * scale)
        flat += val == base
    details["small_step_flat"] = flat
    if flat >= 2:
        return _nondiff(details, "")
    return _detached(details, "")


def _nondiff(details: dict, where: str) -> GradDiagnosis:
    return GradDiagnosis(
        f"The loss depends on the parameter, but only through an integer cast or a "
        f"non-differentiable op (argmax, argmin, a comparison, sign, rounding){where}: the "
        f"result is piecewise constant, so no gradient flows. Keep the path in floating "
        f"point with a differentiable op (e.g. softmax instead of argmax, sigmoid instead "
        f"of a comparison).",
        NoGradReason.NON_DIFFERENTIABLE, details)


def _detached(details: dict, where: str) -> GradDiagnosis:
    return GradDiagnosis(
        f"The loss depends on the parameter, but the path was cut by detach() (or .data) "
        f"or a no_grad() block{where}: values flow forward but no graph is recorded. "
        f"Remove the detach()/no_grad around the computation that uses the parameter.",
        NoGradReason.DETACHED, details)


def _diff_saved(a: Tensor, b: Tensor) -> list:
    """Saved non-grad inputs that differ between two runs of the same graph structure."""
    wa = walk([root_of(a)])
    wb = walk([root_of(b)])
    if len(wa.nodes) != len(wb.nodes):
        return []
    found = []
    for na, nb in zip(wa.nodes, wb.nodes):
        if na.name != nb.name or na.args is None or nb.args is None:
            return []
        for x, y in zip(_const_inputs(na), _const_inputs(nb)):
            kind = _changed(x, y)
            if kind is not None:
                found.append((na.name, kind))
    return found


def _changed(x, y) -> str | None:
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        if x.shape != y.shape or np.array_equal(x, y):
            return None
        return _kind(x)
    if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
        for u, v in zip(x, y):
            kind = _changed(u, v)
            if kind is not None:
                return kind
    return None


def _kind(arr: np.ndarray) -> str:
    if arr.dtype.kind == "b":
        return "bool"
    if arr.dtype.kind in "iu":
        return "int"
    if np.all(np.isfinite(arr)) and np.array_equal(arr, np.round(arr)):
        return "integral"
    return "float"
