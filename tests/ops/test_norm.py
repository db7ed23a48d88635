"""The fused ``normalize`` primitive: values, statistics, and both backward paths."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import norm as N

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("shape, dims", [((4, 3, 2, 2), (0, 2, 3)), ((2, 5), (1,)),
                                         ((2, 3, 4), (2,))])
def test_normalize_values_stats_and_gradients(shape, dims):
    x = RNG.standard_normal(shape) * 3 + 1
    stats = N.NormStats()
    y = N.normalize(cr.tensor(x), dims, 1e-5, stats)
    m = x.mean(axis=dims, keepdims=True)
    v = x.var(axis=dims, keepdims=True)
    np.testing.assert_allclose(y.numpy(), (x - m) / np.sqrt(v + 1e-5), atol=1e-12)
    np.testing.assert_allclose(stats.mean, m)
    np.testing.assert_allclose(stats.var, v)
    xt = cr.tensor(x, requires_grad=True)

    def f(x):
        return N.normalize(x, dims, 1e-5, N.NormStats())

    assert cr.autograd.gradcheck(f, (xt,))
    assert cr.autograd.gradgradcheck(f, (xt,))


def test_array_and_recorded_backward_paths_agree():
    x = cr.tensor(RNG.standard_normal((3, 4, 5)), requires_grad=True)
    g = cr.tensor(RNG.standard_normal((3, 4, 5)))
    y = N.normalize(x, (0, 2), 1e-5, N.NormStats())
    (fast,) = cr.autograd.grad(y, [x], g, retain_graph=True)
    (recorded,) = cr.autograd.grad(y, [x], g, create_graph=True)
    assert recorded.requires_grad
    np.testing.assert_allclose(fast.numpy(), recorded.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    (no_stats,) = cr.autograd.grad(N.normalize(x, (0, 2), 1e-5), [x], g)
    np.testing.assert_allclose(no_stats.numpy(), fast.numpy(), rtol=1e-10, atol=1e-12)


def test_normalize_keeps_float32():
    y = N.normalize(cr.randn(4, 3), (0,), 1e-5)
    assert y.dtype == cr.float32
