"""autograd.grad: capture, allow_unused, create_graph, non-leaf inputs."""

import numpy as np
import pytest

import chainrule as cr


def test_grad_does_not_touch_dot_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_grad_of_unused_input_raises_unless_allowed():
    x = cr.ones(2, requires_grad=True)
    y = cr.ones(3, requires_grad=True)
    out = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(3,\)\) does not appear.*"
                                           r"allow_unused=True"):
        cr.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = cr.autograd.grad(out, [x, y], allow_unused=True, retain_graph=True)
    assert gy is None
    gx, gy = cr.autograd.grad(out, [x, y], materialize_grads=True)
    np.testing.assert_allclose(gy.numpy(), np.zeros(3))


def test_grad_input_not_requiring_grad_raises():
    x = cr.ones(2)
    y = cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        cr.autograd.grad((x * y).sum(), x)


def test_grad_wrt_non_leaf():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gh, gx = cr.autograd.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * np.array([3.0, 6.0]))
    np.testing.assert_allclose(gx.numpy(), 18 * np.array([1.0, 2.0]))


def test_second_and_third_derivatives():
    x = cr.tensor(1.5, dtype=cr.float64, requires_grad=True)
    y = x.sin() * x
    (d1,) = cr.autograd.grad(y, x, create_graph=True)
    (d2,) = cr.autograd.grad(d1, x, create_graph=True)
    (d3,) = cr.autograd.grad(d2, x)
    v = 1.5
    assert d1.item() == pytest.approx(np.cos(v) * v + np.sin(v))
    assert d2.item() == pytest.approx(-np.sin(v) * v + 2 * np.cos(v))
    assert d3.item() == pytest.approx(-np.cos(v) * v - 3 * np.sin(v))


def test_create_graph_backward_fills_grad_with_graph():
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_grad_outputs_weighting():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.autograd.grad(x * x, x, grad_outputs=cr.tensor([1.0, 10.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 40.0])


def test_same_output_twice_in_grad_outputs_counts_once_per_entry():
    # the first-order gradients of (x * (a + b)) w.r.t. a and b are the same node twice
    x = cr.tensor([0.3, -0.2], dtype=cr.float64, requires_grad=True)
    a = cr.tensor([0.5, 1.5], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([-1.0, 0.7], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda x, a, b: (x * (a + b)).tanh(), (x, a, b))
    y = x * 3
    (g,) = cr.autograd.grad([y.sum(), y.sum()], x)
    np.testing.assert_allclose(g.numpy(), [6.0, 6.0])
