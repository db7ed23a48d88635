"""Elementwise ops: forward against NumPy, gradcheck and gradgradcheck over shape sweeps,
hypothesis-drawn broadcast pairs, and PyTorch's conventions at kinks and ties."""

import math

import numpy as np
import pytest
from hypothesis import given, settings

import chainrule as cr
from tests.helpers import (
    BROADCAST_PAIRS,
    SHAPES_UNARY,
    broadcast_pairs,
    check_op,
    grads_of,
    t64,
)

_erf = np.vectorize(math.erf, otypes=[np.float64])

# name: (NumPy reference, domain). Domains keep away from non-differentiable points.
UNARY = {
    "neg": (np.negative, (-2, 2)),
    "exp": (np.exp, (-2, 2)),
    "expm1": (np.expm1, (-2, 2)),
    "log": (np.log, (0.2, 3)),
    "log1p": (np.log1p, (-0.5, 2)),
    "sqrt": (np.sqrt, (0.2, 3)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (0.2, 3)),
    "abs": (np.abs, (0.1, 2)),
    "sin": (np.sin, (-3, 3)),
    "cos": (np.cos, (-3, 3)),
    "tan": (np.tan, (-1.2, 1.2)),
    "atan": (np.arctan, (-3, 3)),
    "sinh": (np.sinh, (-2, 2)),
    "cosh": (np.cosh, (-2, 2)),
    "tanh": (np.tanh, (-2, 2)),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-4, 4)),
    "relu": (lambda x: np.maximum(x, 0), (0.1, 2)),
    "erf": (_erf, (-3, 3)),
    "square": (np.square, (-2, 2)),
    "reciprocal": (np.reciprocal, (0.2, 2)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_function(name):
    ref, domain = UNARY[name]
    check_op(getattr(cr, name), ref, SHAPES_UNARY, domain)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_method_matches_function(name):
    ref, domain = UNARY[name]
    check_op(lambda x: getattr(x, name)(), ref, [(2, 3)], domain, gradgrad=False)


@pytest.mark.parametrize("name", ["abs", "relu"])
def test_unary_negative_side(name):
    ref, _ = UNARY[name]
    check_op(getattr(cr, name), ref, [(2, 3)], (-2, -0.1))


def test_erf_extreme_values():
    x = np.array([-10.0, -4.5, -1.0, -1e-8, 0.0, 0.3, 2.0, 4.2, 10.0])
    np.testing.assert_allclose(cr.erf(t64(x)).numpy(), _erf(x), rtol=1e-14, atol=1e-16)


# ---------------------------------------------------------------- binary ops
BINARY = {
    "add": (cr.add, np.add, (-2, 2)),
    "sub": (cr.sub, np.subtract, (-2, 2)),
    "mul": (cr.mul, np.multiply, (-2, 2)),
    "div": (cr.div, np.divide, [(-2, 2), (0.5, 2)]),
    "pow": (cr.pow, np.power, [(0.5, 2), (-2, 2)]),
    "maximum": (cr.maximum, np.maximum, (-2, 2)),
    "minimum": (cr.minimum, np.minimum, (-2, 2)),
    "logaddexp": (cr.logaddexp, np.logaddexp, (-3, 3)),
    "where": (lambda a, b: cr.where(a.detach() > 0, a, b),
              lambda a, b: np.where(a > 0, a, b), (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast_sweep(name):
    fn, ref, domain = BINARY[name]
    check_op(fn, ref, BROADCAST_PAIRS, domain)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=15, deadline=None)
@given(pair=broadcast_pairs())
def test_binary_hypothesis_broadcast(name, pair):
    fn, ref, domain = BINARY[name]
    check_op(fn, ref, [pair], domain, gradgrad=False)


@pytest.mark.parametrize("op,ref", [
    (lambda a, b: a + b, np.add),
    (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply),
    (lambda a, b: a / b, np.divide),
    (lambda a, b: a ** b, np.power),
])
def test_operators(op, ref):
    check_op(op, ref, [((2, 3), (3,))], [(0.5, 2), (0.5, 2)])


@pytest.mark.parametrize("op,ref", [
    (lambda x: 2.0 + x, lambda x: 2.0 + x),
    (lambda x: 2.0 - x, lambda x: 2.0 - x),
    (lambda x: 3.0 * x, lambda x: 3.0 * x),
    (lambda x: 2.0 / x, lambda x: 2.0 / x),
    (lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    (lambda x: x ** 3, lambda x: x ** 3),
    (lambda x: x ** 0.5, np.sqrt),
    (lambda x: -x, np.negative),
    (lambda x: cr.add(x, x, alpha=2.5), lambda x: 3.5 * x),
    (lambda x: cr.sub(x, x * x, alpha=0.5), lambda x: x - 0.5 * x * x),
])
def test_scalar_operands(op, ref):
    check_op(op, ref, [(), (2, 3)], (0.5, 2))


def test_integer_power_of_negative_base():
    check_op(lambda x: x ** 3, lambda x: x ** 3, [(2, 3)], (-2, -0.5))
    check_op(lambda x: cr.pow(x, 2), np.square, [(4,)], (-2, 2))


def test_pow_exponent_gradient_at_zero_base_is_zero():
    a = t64([0.0, 2.0])
    b = t64([2.0, 3.0], requires_grad=True)
    (gb,) = grads_of(cr.pow, a, b)
    np.testing.assert_allclose(gb, [0.0, 8.0 * math.log(2.0)])


def test_pow_base_gradient_is_zero_where_exponent_is_zero():
    x = t64([0.0, 2.0], requires_grad=True)
    (g,) = grads_of(lambda t: t ** 0.0, x)
    np.testing.assert_array_equal(g, [0.0, 0.0])
    (g,) = grads_of(lambda t: t ** t64([0.0, 2.0]), x)
    np.testing.assert_array_equal(g, [0.0, 4.0])
    (g,) = grads_of(lambda t: t ** 2, x)
    np.testing.assert_array_equal(g, [0.0, 4.0])


def test_clamp_sweep():
    check_op(lambda x: cr.clamp(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), SHAPES_UNARY)
    check_op(lambda x: cr.clamp(x, min=-0.5), lambda x: np.maximum(x, -0.5), [(2, 3)])
    check_op(lambda x: x.clamp(max=0.3), lambda x: np.minimum(x, 0.3), [(2, 3)])
    check_op(lambda x: x.clip(-1, 1), lambda x: np.clip(x, -1, 1), [(5,)])


def test_clamp_tensor_bounds():
    def fn(x, lo, hi):
        return cr.clamp(x, lo, hi)

    def ref(x, lo, hi):
        return np.minimum(np.maximum(x, lo), hi)

    check_op(fn, ref, [((2, 3), (3,), (2, 1))], [(-2, 2), (-1.5, -0.2), (0.2, 1.5)])


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        cr.clamp(cr.ones(2))


def test_lerp():
    check_op(cr.lerp, lambda a, b, w: a + w * (b - a), [((2, 3), (3,), (2, 1)), ((), (), ())])
    check_op(lambda a, b: cr.lerp(a, b, 0.25), lambda a, b: a + 0.25 * (b - a),
             BROADCAST_PAIRS)


def test_softplus():
    def ref(x, beta=1.0, threshold=20.0):
        return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)

    check_op(cr.softplus, ref, SHAPES_UNARY, (-5, 5))
    check_op(lambda x: cr.softplus(x, beta=2.0, threshold=3.0),
             lambda x: ref(x, 2.0, 3.0), [(3, 4)], (-1.4, 1.4))
    check_op(lambda x: x.softplus(beta=2.0, threshold=3.0),
             lambda x: ref(x, 2.0, 3.0), [(3, 4)], (1.6, 4))


def test_softplus_and_logaddexp_stable_at_large_values():
    x = t64([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = cr.softplus(x)
    np.testing.assert_allclose(y.detach().numpy(), [0.0, math.log(2.0), 1000.0])
    (g,) = grads_of(cr.softplus, x)
    np.testing.assert_allclose(g, [0.0, 0.5, 1.0])
    a = t64([1000.0, -1000.0], requires_grad=True)
    b = t64([1000.0, -1000.0], requires_grad=True)
    out = cr.logaddexp(a, b)
    np.testing.assert_allclose(out.detach().numpy(), [1000 + math.log(2), -1000 + math.log(2)])
    ga, gb = grads_of(cr.logaddexp, a, b)
    np.testing.assert_allclose(ga, [0.5, 0.5])
    np.testing.assert_allclose(gb, [0.5, 0.5])


def test_sigmoid_stable_at_large_values():
    x = t64([-1000.0, 1000.0], requires_grad=True)
    np.testing.assert_allclose(cr.sigmoid(x).detach().numpy(), [0.0, 1.0])
    (g,) = grads_of(cr.sigmoid, x)
    np.testing.assert_allclose(g, [0.0, 0.0])


# ---------------------------------------------------------------- cast
def test_cast_forward_and_gradient_dtype():
    x = cr.tensor([1.5, -2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == cr.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == cr.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -4.0])
    z = x.to(cr.float64).float()
    assert z.dtype == cr.float32
    assert x.to(cr.float32) is x
    assert x.to(x).dtype == cr.float32


def test_cast_gradcheck_through_float64_roundtrip():
    check_op(lambda x: (x * 2).to(cr.float64), lambda x: 2 * x, SHAPES_UNARY)


def test_cast_primitive_gradcheck():
    from chainrule.ops.elementwise import cast

    check_op(lambda x: cast(x * x, cr.float64), np.square, SHAPES_UNARY)


def test_where_method_and_scalar_branches():
    check_op(lambda x: x.where(x.detach() > 0, 0.5), lambda x: np.where(x > 0, x, 0.5),
             SHAPES_UNARY)
    check_op(lambda x: cr.where(x.detach() > 0, 1.0, x), lambda x: np.where(x > 0, 1.0, x),
             [(2, 3)])


def test_cast_to_integer_stops_gradient():
    x = cr.tensor([1.7, -2.2], requires_grad=True)
    y = x.long()
    assert y.dtype == cr.int64
    assert not y.requires_grad
    assert y.tolist() == [1, -2]


# ---------------------------------------------------------------- kinks and ties
def test_relu_gradient_at_zero_is_zero():
    (g,) = grads_of(cr.relu, t64([-1.0, 0.0, 2.0], requires_grad=True))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_abs_gradient_at_zero_is_zero():
    (g,) = grads_of(cr.abs, t64([-1.0, 0.0, 2.0], requires_grad=True))
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


def test_clamp_passes_gradient_at_boundaries():
    x = t64([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    (g,) = grads_of(lambda t: cr.clamp(t, -1.0, 1.0), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    (g,) = grads_of(lambda t: cr.clamp(t, min=0.0), x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("op", [cr.maximum, cr.minimum])
def test_maximum_minimum_ties_split_in_half(op):
    a = t64([1.0, 2.0, 3.0], requires_grad=True)
    b = t64([1.0, 0.0, 5.0], requires_grad=True)
    ga, gb = grads_of(op, a, b)
    if op is cr.maximum:
        np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
        np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])
    else:
        np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
        np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])


def test_max_with_other_is_maximum():
    a = t64([1.0, 2.0], requires_grad=True)
    b = t64([1.0, 3.0], requires_grad=True)
    ga, gb = grads_of(lambda x, y: cr.max(x, y), a, b)
    np.testing.assert_array_equal(ga, [0.5, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0])


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign"])
def test_piecewise_constant_ops(name):
    x = t64([-1.5, -0.2, 0.0, 0.7, 2.5], requires_grad=True)
    ref = {"floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "round": np.round,
           "sign": np.sign}[name]
    y = getattr(cr, name)(x)
    np.testing.assert_array_equal(y.detach().numpy(), ref(x.detach().numpy()))
    assert y.requires_grad  # recorded with a zero gradient, like PyTorch
    (y * t64([np.inf, 1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(5))


# ---------------------------------------------------------------- non-differentiable ops
CMP = {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}


@pytest.mark.parametrize("name", sorted(CMP))
def test_comparisons_forward_only(name):
    a = t64([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], requires_grad=True)
    b = t64([2.0, 2.0, 2.0], requires_grad=True)
    for out in (getattr(cr, name)(a, b), getattr(a, name)(b)):
        assert out.dtype == cr.bool
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), CMP[name](a.detach().numpy(),
                                                             b.detach().numpy()))


def test_comparison_operators_and_scalar_promotion():
    a = cr.tensor([1, 2, 3])
    np.testing.assert_array_equal((a < 2.5).numpy(), [True, True, False])
    np.testing.assert_array_equal((a == 2).numpy(), [False, True, False])
    np.testing.assert_array_equal((a >= cr.tensor([1.5])).numpy(), [False, True, True])
    np.testing.assert_array_equal((a != a).numpy(), [False] * 3)


def test_logical_ops_forward_only():
    p = cr.tensor([True, True, False, False])
    q = cr.tensor([True, False, True, False])
    np.testing.assert_array_equal(cr.logical_and(p, q).numpy(), [1, 0, 0, 0])
    np.testing.assert_array_equal(cr.logical_or(p, q).numpy(), [1, 1, 1, 0])
    np.testing.assert_array_equal(cr.logical_xor(p, q).numpy(), [0, 1, 1, 0])
    np.testing.assert_array_equal(cr.logical_not(p).numpy(), [0, 0, 1, 1])
    np.testing.assert_array_equal((p & q).numpy(), [1, 0, 0, 0])
    np.testing.assert_array_equal((p | q).numpy(), [1, 1, 1, 0])
    np.testing.assert_array_equal((~p).numpy(), [0, 0, 1, 1])
    x = t64([1.0, 0.0, -2.0], requires_grad=True)
    out = cr.logical_and(x, x)
    assert out.dtype == cr.bool and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [True, False, True])


def test_isnan_isinf_isfinite():
    x = t64([1.0, float("nan"), float("inf"), -float("inf")], requires_grad=True)
    np.testing.assert_array_equal(cr.isnan(x).numpy(), [0, 1, 0, 0])
    np.testing.assert_array_equal(cr.isinf(x).numpy(), [0, 0, 1, 1])
    np.testing.assert_array_equal(cr.isfinite(x).numpy(), [1, 0, 0, 0])
    assert not cr.isnan(x).requires_grad


FUNCTIONS = """add sub mul div pow neg exp expm1 log log1p sqrt rsqrt abs sin cos tan atan sinh
cosh tanh sigmoid relu erf clamp maximum minimum where sum mean var std amax amin max min
logsumexp softmax log_softmax cumsum norm softplus logaddexp lerp square reciprocal reshape
permute transpose expand squeeze unsqueeze flatten unflatten cat stack split chunk unbind narrow
flip tile roll tril triu gather take_along_dim scatter_add index_select masked_fill
masked_select clone matmul einsum mm bmm mv dot outer eq ne lt le gt ge logical_and logical_or
logical_xor logical_not isnan isinf isfinite""".split()

METHODS = """add sub mul div pow neg exp expm1 log log1p sqrt rsqrt abs sin cos tan atan sinh cosh
tanh sigmoid relu erf clamp maximum minimum where sum mean var std amax amin max min logsumexp
softmax log_softmax cumsum norm softplus logaddexp lerp square reciprocal reshape view permute
transpose expand squeeze unsqueeze flatten unflatten split chunk unbind narrow flip repeat tile
roll tril triu gather take_along_dim scatter_add index_select masked_fill masked_select clone
matmul mm bmm mv dot outer to float double add_ sub_ mul_ div_ zero_ fill_ copy_ clamp_
__getitem__ __setitem__ eq ne lt le gt ge logical_and logical_or logical_not""".split()


def test_every_op_is_a_function_and_a_method():
    assert [n for n in FUNCTIONS if not callable(getattr(cr, n, None))] == []
    assert [n for n in METHODS if not callable(getattr(cr.Tensor, n, None))] == []


def test_logaddexp_with_infinities():
    a = t64([-np.inf, 1.0, np.inf])
    b = t64([-np.inf, np.inf, np.inf])
    with np.errstate(divide="ignore"):
        out = cr.logaddexp(a, b)
    np.testing.assert_array_equal(out.numpy(), [-np.inf, np.inf, np.inf])
    assert cr.logaddexp(cr.ones(2), t64(1.0)).dtype == cr.float32


def test_clamp_with_min_above_max_gives_max_and_its_gradient():
    x = t64([-1.0, 0.0, 2.0], requires_grad=True)
    lo = t64(1.0, requires_grad=True)
    hi = t64(0.5, requires_grad=True)
    out = cr.clamp(x, lo, hi)
    np.testing.assert_array_equal(out.detach().numpy(), [0.5, 0.5, 0.5])
    gx, glo, ghi = grads_of(cr.clamp, x, lo, hi)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 0.0])
    assert glo == 0.0 and ghi == 3.0
