"""Custom Function: ctx, needs_input_grad, multiple outputs, double backward."""

import numpy as np
import pytest

import chainrule as cr


class Cube(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


class ScaleBy(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        ctx.record = ctx.needs_input_grad
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


class SplitTwo(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2, x * x

    @staticmethod
    def backward(ctx, ga, gb):
        (x,) = ctx.saved_tensors
        return ga * 2 + gb * 2 * x


def test_function_gradcheck_and_gradgradcheck():
    x = cr.randn(4, dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(Cube.apply, (x,))
    assert cr.autograd.gradgradcheck(Cube.apply, (x,))


def test_non_tensor_argument_and_needs_input_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = ScaleBy.apply(x, 3.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert y.grad_fn.ctx.record == (True, False)
    assert y.grad_fn.name == "ScaleBy"


def test_multiple_outputs_with_one_unused():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    a, b = SplitTwo.apply(x)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    x.grad = None
    a, b = SplitTwo.apply(x)
    (a.sum() + b.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


def test_no_record_when_no_input_requires_grad():
    y = Cube.apply(cr.ones(2))
    assert y.grad_fn is None and not y.requires_grad


def test_saved_tensor_modified_in_place_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = Cube.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_wrong_gradient_shape_from_backward_raises():
    class Bad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return cr.ones(5)

    x = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape \(5,\)"):
        Bad.apply(x).sum().backward()


def test_second_backward_through_freed_function_raises():
    x = cr.ones(2, requires_grad=True)
    y = Cube.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
