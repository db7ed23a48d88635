"""The one op-test harness: ``check_op`` and the shared shape sweeps.

``check_op(fn, ref, shapes=...)`` builds seeded float64 inputs for every case of a shape
sweep, compares ``fn(*tensors)`` with the NumPy reference ``ref(*arrays)``, then runs
``gradcheck`` and (by default) ``gradgradcheck``. A case is a shape (one input) or a tuple
of shapes (one per input), so the same sweep constants serve unary and binary ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import chainrule as cr

# 0-d, 1-d, 2-d, 3-d, zero-size and size-1 dims.
SHAPES_UNARY = [(), (1,), (4,), (2, 3), (0, 3), (2, 1, 3)]

# Broadcast pairs: scalar against tensor both ways, outer broadcast, trailing match,
# leading new dims, zero-size against 1.
BROADCAST_PAIRS = [
    ((), ()),
    ((3,), ()),
    ((), (3,)),
    ((2, 3), (2, 3)),
    ((2, 1), (1, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 1, 3), (4, 1)),
    ((0, 3), (1, 3)),
]

# (shape, dim) cases for reductions: all dims, positive, negative, tuples, 0-d (which
# accepts dim 0 and -1), and a zero-size tensor; sweep keepdim on top.
REDUCE_CASES = [
    ((4,), None), ((4,), 0), ((4,), -1),
    ((2, 3), None), ((2, 3), 0), ((2, 3), -1), ((2, 3), (0, 1)),
    ((2, 3, 2), 1), ((2, 3, 2), (0, -1)), ((2, 3, 2), -2),
    ((), None), ((), 0), ((), -1), ((0, 3), 0), ((0, 3), 1),
]

# The dtype of every input check_op builds (gradcheck needs float64).
DTYPE = cr.float64


def broadcast_pairs(max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    """A hypothesis strategy for two mutually broadcastable shapes (0-d and size 0 included).

    Draws a pair ``(shape_a, shape_b)``; keep ``max_examples`` small (15-25).
    """
    return mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side
    ).map(lambda s: tuple(s.input_shapes))


def _is_shape(case) -> bool:
    return all(isinstance(s, (int, np.integer)) for s in case)


def as_cases(shapes) -> list[tuple]:
    """Normalise a sweep to a list of cases, each a tuple of input shapes."""
    if isinstance(shapes, tuple) and (_is_shape(shapes) or all(
            isinstance(s, tuple) for s in shapes)):
        shapes = [shapes]
    return [(tuple(c),) if _is_shape(c) else tuple(tuple(s) for s in c) for c in shapes]


def make_arrays(case: Sequence[tuple], domain, seed: int = 0) -> list[np.ndarray]:
    """Seeded float64 arrays of the case's shapes, uniform in ``domain``.

    ``domain`` is ``(lo, hi)`` for all inputs or a list with one ``(lo, hi)`` per input.
    """
    rng = np.random.default_rng(seed)
    doms = domain if isinstance(domain, list) else [domain] * len(case)
    return [rng.uniform(lo, hi, size=shape) for shape, (lo, hi) in zip(case, doms)]


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_forward(out, expected, atol: float = 1e-10, rtol: float = 1e-8) -> None:
    """Assert tensor(s) ``out`` equal NumPy array(s) ``expected`` in shape and values."""
    outs = _tuple(out)
    exps = _tuple(expected)
    assert len(outs) == len(exps), f"got {len(outs)} outputs, expected {len(exps)}"
    for o, e in zip(outs, exps):
        e = np.asarray(e)
        assert isinstance(o, cr.Tensor), f"expected a Tensor, got {type(o).__name__}"
        assert o.shape == e.shape, f"shape {o.shape} != reference {e.shape}"
        np.testing.assert_allclose(o.detach().numpy(), e, atol=atol, rtol=rtol)


def check_op(fn: Callable, ref: Callable | None, shapes=SHAPES_UNARY, domain=(-2.0, 2.0), *,
             grad: bool = True, gradgrad: bool = True, atol: float = 1e-10,
             rtol: float = 1e-8, seed: int = 0, float_out: bool = True) -> None:
    """Check an op over a sweep of shapes: forward vs NumPy, gradcheck, gradgradcheck.

    Args:
        fn: maps tensors to a tensor or a tuple of tensors.
        ref: maps the same values as NumPy float64 arrays to the expected array(s);
            ``None`` skips the forward comparison.
        shapes: a sweep (list of cases) or one case; a case is a shape or a tuple of
            shapes, one per input.
        domain: ``(lo, hi)`` for the uniform inputs, or a list of one per input.
        grad, gradgrad: run ``gradcheck`` / ``gradgradcheck``.
        atol, rtol: forward tolerances.
        seed: the seed of the inputs.
        float_out: also assert the output dtype is float64.
    """
    for case in as_cases(shapes):
        arrays = make_arrays(case, domain, seed)
        inputs = tuple(cr.tensor(a, requires_grad=True) for a in arrays)
        out = fn(*inputs)
        if ref is not None:
            check_forward(out, ref(*[a.copy() for a in arrays]), atol=atol, rtol=rtol)
        if float_out:
            for o in _tuple(out):
                assert o.dtype == DTYPE, f"case {case}: output dtype {o.dtype}"
        if grad:
            assert cr.autograd.gradcheck(fn, inputs), f"gradcheck failed for {case}"
        if gradgrad:
            assert cr.autograd.gradgradcheck(fn, inputs), f"gradgradcheck failed for {case}"


def t64(data, requires_grad: bool = False) -> cr.Tensor:
    """A float64 tensor (shorthand for exact-value tests)."""
    return cr.tensor(data, dtype=cr.float64, requires_grad=requires_grad)


def grads_of(fn: Callable, *inputs: cr.Tensor, grad_output=None) -> list[np.ndarray]:
    """Gradients of ``sum(fn(*inputs) * grad_output)`` w.r.t. the inputs requiring grad."""
    out = fn(*inputs)
    go = cr.ones_like(out) if grad_output is None else grad_output
    gs = cr.autograd.grad(out, [x for x in inputs if x.requires_grad], go)
    return [g.numpy() for g in gs]
