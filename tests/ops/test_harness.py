"""The op harness itself: it must fail on a wrong forward, gradient or second derivative."""

import numpy as np
import pytest
from hypothesis import given, settings

import chainrule as cr
from chainrule.autograd.gradcheck import GradcheckError
from tests.helpers import BROADCAST_PAIRS, as_cases, broadcast_pairs, check_op, make_arrays


class _WrongGrad(cr.autograd.Function):
    """``x ** 2`` with a backward off by a factor of 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


class _WrongSecondOrder(cr.autograd.Function):
    """``sin(x)`` whose backward is right in value but detached (no second order)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return cr.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * cr.tensor(np.cos(x.detach().numpy()))


def test_wrong_forward_fails():
    with pytest.raises(AssertionError):
        check_op(cr.exp, lambda x: np.exp(x) + 1e-6, [(3,)], grad=False, gradgrad=False)
    with pytest.raises(AssertionError, match="shape"):
        check_op(lambda x: x.sum(0), np.sum, [(2, 3)], grad=False, gradgrad=False)


def test_wrong_gradient_fails():
    check_op(_WrongGrad.apply, np.square, [(3,)], grad=False, gradgrad=False)
    with pytest.raises(GradcheckError, match="input 0"):
        check_op(_WrongGrad.apply, np.square, [(3,)], gradgrad=False)


def test_wrong_second_order_fails():
    check_op(_WrongSecondOrder.apply, np.sin, [(3,)], gradgrad=False)
    with pytest.raises(GradcheckError):
        check_op(_WrongSecondOrder.apply, np.sin, [(3,)])


def test_cases_and_arrays():
    assert as_cases([(), (2, 3)]) == [((),), ((2, 3),)]
    assert as_cases(BROADCAST_PAIRS[:2]) == [((), ()), ((3,), ())]
    assert as_cases(((2,), (3,))) == [((2,), (3,))]
    a, b = make_arrays(((2, 3), (4,)), [(0.0, 1.0), (5.0, 6.0)], seed=3)
    assert a.shape == (2, 3) and b.shape == (4,)
    assert a.min() >= 0.0 and a.max() <= 1.0 and b.min() >= 5.0 and b.max() <= 6.0
    np.testing.assert_array_equal(a, make_arrays(((2, 3), (4,)), [(0, 1), (5, 6)], 3)[0])


@settings(max_examples=20, deadline=None)
@given(pair=broadcast_pairs())
def test_broadcast_pairs_strategy_draws_broadcastable_pairs(pair):
    a, b = pair
    assert len(a) <= 3 and len(b) <= 3
    np.broadcast_shapes(a, b)
