"""why_no_grad names the cause: unused, detach, no_grad, int cast, argmax, comparison,
dead ReLU, zero-gradient ops; plus the good case and bad input."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import GradDiagnosis, NoGradReason, why_no_grad


@pytest.fixture
def net():
    W = cr.randn(4, 3, requires_grad=True)
    V = cr.randn(1, 4, requires_grad=True)
    U = cr.randn(4, 3, requires_grad=True)
    x = cr.randn(5, 3)
    return W, V, U, x


def code(loss, p):
    d = why_no_grad(loss, p)
    assert isinstance(d, GradDiagnosis) and isinstance(d, str)
    return d.code


def test_connected_and_nonzero(net):
    W, V, _, x = net
    d = why_no_grad(lambda: ((x @ W.T).sigmoid() @ V.T).sum(), W)
    assert d.code is NoGradReason.OK
    assert "backward" in d and d.details["grad_norm"] > 0
    assert W.grad is None                     # the probe leaves .grad alone


def test_not_connected(net):
    W, V, U, x = net
    d = why_no_grad(lambda: ((x @ W.T).sigmoid() @ V.T).sum(), U)
    assert d.code is NoGradReason.NOT_CONNECTED
    assert "unused" in d
    np.testing.assert_array_equal(U.numpy() if not U.requires_grad else U.detach().numpy(),
                                  U.detach().numpy())


def test_detach(net):
    W, V, _, x = net
    before = W.detach().numpy().copy()
    d = why_no_grad(lambda: ((x @ W.T).detach().sigmoid() @ V.T).sum(), W)
    assert d.code is NoGradReason.DETACHED
    assert "detach()" in d
    np.testing.assert_array_equal(W.detach().numpy(), before)  # probe restored the values


def test_no_grad_block(net):
    W, V, _, x = net

    def loss_fn():
        with cr.no_grad():
            h = (x @ W.T).sigmoid()
        return (h @ V.T).sum()

    d = why_no_grad(loss_fn, W)
    assert d.code is NoGradReason.DETACHED
    assert "no_grad()" in d


def test_no_grad_whole_loss(net):
    W, _, _, x = net

    def loss_fn():
        with cr.no_grad():
            return (x @ W.T).sigmoid().sum()

    assert code(loss_fn, W) is NoGradReason.DETACHED
    tensor_form = why_no_grad(loss_fn(), W)
    assert tensor_form.code is NoGradReason.NOT_CONNECTED
    assert "no graph" in tensor_form and "no_grad()" in tensor_form


def test_detached_parameter_tensor_form(net):
    W, V, _, _ = net
    d = why_no_grad((W.detach() * V.sum()).sum(), W)
    assert d.code is NoGradReason.DETACHED


def test_integer_cast(net):
    W, V, _, x = net
    d = why_no_grad(lambda: ((x @ W.T * 3).long().float() @ V.T).sum(), W)
    assert d.code is NoGradReason.NON_DIFFERENTIABLE
    assert "integer cast" in d


def test_argmax(net):
    W, V, _, x = net
    d = why_no_grad(lambda: V[0, (x @ W.T).sum(0).argmax()] * 2, W)
    assert d.code is NoGradReason.NON_DIFFERENTIABLE
    assert "argmax" in d


def test_comparison(net):
    W, V, _, x = net
    assert code(lambda: (((x @ W.T) > 0).float() @ V.T).sum(), W) is \
        NoGradReason.NON_DIFFERENTIABLE
    loss_fn = lambda: cr.where((x @ W.T).sum(1) > 0, V.sum(), -V.sum()).sum()  # noqa: E731
    assert code(loss_fn, W) is NoGradReason.NON_DIFFERENTIABLE


def test_dead_relu(net):
    W, V, _, x = net
    b = cr.full((4,), -100.0, requires_grad=True)
    loss = ((x @ W.T + b).relu() @ V.T).sum()
    d = why_no_grad(loss, W)
    assert d.code is NoGradReason.DEAD_RELU
    assert "4 of 4 units are inactive" in d and "relu" in d
    assert d.details["relu"][0]["inactive"] == 4
    loss.backward()                           # the probe kept the graph usable
    assert np.all(W.grad.numpy() == 0)
    assert why_no_grad(loss, W).code is NoGradReason.GRAPH_FREED


def test_partially_dead_relu_is_fine(net):
    W, V, _, x = net
    b = cr.tensor([-100.0, 0.0, 0.0, 0.0], requires_grad=True)
    assert code(((x @ W.T + b).relu() @ V.T).sum(), W) is NoGradReason.OK


def test_zero_grad_op_and_zero_gradient(net):
    W, V, _, x = net
    d = why_no_grad(((x @ W.T).floor() @ V.T).sum(), W)
    assert d.code is NoGradReason.ZERO_GRAD_OP and "floor" in d
    d = why_no_grad(((x @ W.T).clamp(100.0, 200.0) @ V.T).sum(), W)
    assert d.code is NoGradReason.ZERO_GRADIENT and "clamp" in d


def test_parameter_flags(net):
    W, V, _, x = net
    assert code((x @ W.T).sum(), x) is NoGradReason.NOT_REQUIRING_GRAD
    h = x @ W.T
    assert code((h * 2).sum(), h) is NoGradReason.NON_LEAF


def test_nondeterministic_loss_fn(net):
    W, V, _, x = net
    calls = []

    def loss_fn():
        calls.append(1)
        return (V * len(calls)).sum()

    d = why_no_grad(loss_fn, W)
    assert d.code is NoGradReason.NOT_CONNECTED and "deterministic" in d


def test_random_ops_are_replayed(net):
    W, V, _, x = net
    start = cr.get_rng_state()
    cr.rand(5, 4)
    after_one_call = cr.get_rng_state()
    cr.set_rng_state(start)
    d = why_no_grad(lambda: ((x @ W.T).detach() * cr.rand(5, 4) @ V.T).sum(), W)
    assert d.code is NoGradReason.DETACHED
    assert cr.get_rng_state() == after_one_call


def test_bad_input(net):
    W, _, _, x = net
    with pytest.raises(ValueError, match="scalar"):
        why_no_grad(x @ W.T, W)
    with pytest.raises(TypeError, match="param must be a Tensor"):
        why_no_grad((x @ W.T).sum(), 3)
    with pytest.raises(TypeError, match="returned float"):
        why_no_grad(lambda: 1.0, W)
