"""MAML's meta-gradient (``examples/maml_sine.py``): gradients of gradients through
inner gradient steps, checked against finite differences in float64."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "maml_sine.py"


@pytest.fixture(scope="module")
def maml():
    spec = importlib.util.spec_from_file_location("examples_maml_sine", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup(maml, n_tasks=2, shots=3, hidden=4, seed=0):
    rng = np.random.default_rng(seed)
    params = maml.init_params((1, hidden, hidden, 1), rng, dtype=np.float64)
    tasks = maml.sample_tasks(rng, n_tasks, shots, shots, dtype=np.float64)
    return params, tasks


@pytest.mark.parametrize("steps", [1, 2])
def test_second_order_meta_gradient_passes_gradcheck(maml, steps):
    params, tasks = _setup(maml)

    def meta_loss(*ps):
        return maml.maml_meta_loss(list(ps), tasks, 0.1, steps, first_order=False)

    assert cr.autograd.gradcheck(meta_loss, tuple(params), atol=1e-6, rtol=1e-4)


def test_first_order_meta_gradient_is_not_the_true_gradient(maml):
    params, tasks = _setup(maml)

    def meta_loss(*ps):
        return maml.maml_meta_loss(list(ps), tasks, 0.1, 1, first_order=True)

    # The forward value is the same objective, but its backward drops the Hessian terms.
    second = maml.maml_meta_loss(params, tasks, 0.1, 1, first_order=False)
    assert float(meta_loss(*params).item()) == pytest.approx(float(second.item()))
    assert not cr.autograd.gradcheck(meta_loss, tuple(params), atol=1e-6, rtol=1e-4,
                                     raise_exception=False)


def test_first_order_differs_from_second_order(maml):
    params, tasks = _setup(maml)
    g2 = cr.autograd.grad(maml.maml_meta_loss(params, tasks, 0.1, 2, first_order=False),
                          params)
    g1 = cr.autograd.grad(maml.maml_meta_loss(params, tasks, 0.1, 2, first_order=True),
                          params)
    diff = max(float((a - b).abs().max().item()) for a, b in zip(g1, g2))
    scale = max(float(a.abs().max().item()) for a in g2)
    assert diff > 1e-3 * scale
    # Both are close to each other for a small inner step, as the Hessian term is O(lr).
    g2s = cr.autograd.grad(maml.maml_meta_loss(params, tasks, 1e-4, 1, first_order=False),
                           params)
    g1s = cr.autograd.grad(maml.maml_meta_loss(params, tasks, 1e-4, 1, first_order=True),
                           params)
    for a, b in zip(g1s, g2s):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-2, atol=1e-3 * scale)


def test_first_order_gradient_is_the_query_gradient_at_the_adapted_params(maml):
    params, tasks = _setup(maml)
    xs, ys, xq, yq = tasks
    fast = maml.adapt(params, xs, ys, 0.1, 2, create_graph=False)
    adapted = [p.detach().requires_grad_() for p in fast]        # (tasks, ...) copies
    per_task = cr.autograd.grad(maml.task_losses(adapted, xq, yq).mean(), adapted)
    g1 = cr.autograd.grad(maml.maml_meta_loss(params, tasks, 0.1, 2, first_order=True),
                          params)
    for a, b in zip(g1, per_task):
        np.testing.assert_allclose(a.numpy(), b.numpy().sum(axis=0), rtol=1e-10, atol=1e-12)


def test_zero_inner_steps_is_plain_regression(maml):
    params, tasks = _setup(maml)
    _, _, xq, yq = tasks
    loss = maml.maml_meta_loss(params, tasks, 0.1, 0, first_order=False)
    assert float(loss.item()) == pytest.approx(float(maml.task_losses(params, xq, yq)
                                                     .mean().item()))
