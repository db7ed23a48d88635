"""nn.init: gains, distributions' bounds and moments, fan modes, errors."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import init


@pytest.mark.parametrize("name,param,gain", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0),
    ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)),
    ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("selu", None, 0.75),
])
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain)


def test_calculate_gain_unknown():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_fills_in_place_and_returns_tensor():
    w = cr.empty(3, 4)
    assert init.constant_(w, 2.5) is w
    assert (w.numpy() == 2.5).all()
    init.zeros_(w)
    assert (w.numpy() == 0).all()
    init.ones_(w)
    assert (w.numpy() == 1).all()
    init.eye_(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(3, 4))
    assert w.dtype == cr.float32


def test_works_on_parameters_without_recording():
    p = cr.nn.Parameter(cr.zeros(5, 5))
    init.normal_(p)
    assert p.grad_fn is None and p.requires_grad


def test_uniform_normal_moments():
    w = init.uniform_(cr.empty(200, 200), -2.0, 3.0).numpy()
    assert w.min() >= -2 and w.max() < 3 and abs(w.mean() - 0.5) < 0.05
    w = init.normal_(cr.empty(200, 200), 1.0, 2.0).numpy()
    assert abs(w.mean() - 1) < 0.05 and abs(w.std() - 2) < 0.05


def test_trunc_normal_bounds():
    w = init.trunc_normal_(cr.empty(100, 100), std=1.0, a=-0.5, b=0.8).numpy()
    assert w.min() >= -0.5 and w.max() <= 0.8
    assert abs(w.mean() - 0.1) < 0.05


def test_xavier():
    w = init.xavier_uniform_(cr.empty(300, 200), gain=2.0).numpy()
    bound = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    w = init.xavier_normal_(cr.empty(300, 200)).numpy()
    assert abs(w.std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500) * 10


@pytest.mark.parametrize("mode,fan", [("fan_in", 200 * 9), ("fan_out", 100 * 9)])
def test_kaiming_fan_modes_conv_shape(mode, fan):
    w = init.kaiming_normal_(cr.empty(100, 200, 3, 3), mode=mode, nonlinearity="relu").numpy()
    assert abs(w.std() / (math.sqrt(2) / math.sqrt(fan)) - 1) < 0.02
    w = init.kaiming_uniform_(cr.empty(100, 200, 3, 3), mode=mode,
                              nonlinearity="relu").numpy()
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


def test_kaiming_errors():
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(cr.empty(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.kaiming_uniform_(cr.empty(3))


def test_lecun_normal_for_selu():
    w = init.lecun_normal_(cr.empty(400, 250)).numpy()
    assert abs(w.std() * math.sqrt(250) - 1) < 0.02


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal_(cr.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 4 * np.eye(min(rows, cols)), atol=1e-5)


def test_generator_makes_init_reproducible():
    a = init.normal_(cr.empty(5), generator=cr.Generator().manual_seed(7)).numpy().copy()
    b = init.normal_(cr.empty(5), generator=cr.Generator().manual_seed(7)).numpy()
    np.testing.assert_array_equal(a, b)


def test_dirac():
    w = init.dirac_(cr.empty(2, 2, 3))
    # as a correlation with padding 1 it is the identity: only the centre taps are set
    np.testing.assert_array_equal(w.numpy()[:, :, 1], np.eye(2))
    assert w.numpy().sum() == 2


def test_non_tensor_rejected():
    with pytest.raises(TypeError, match="expected a chainrule Tensor"):
        init.zeros_(np.zeros(2))
