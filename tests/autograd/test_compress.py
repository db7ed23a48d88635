"""compress_saved: saved activations stored in 16 or 8 bits; bytes and gradient error."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd.compress import _from_bfloat16_bits, _to_bfloat16_bits, gradient_error
from chainrule.autograd.graph import compress_saved
from chainrule.diagnostics import memory_report


@pytest.fixture
def mlp():
    cr.manual_seed(0)
    net = cr.nn.Sequential(cr.nn.Linear(32, 64), cr.nn.Tanh(), cr.nn.Linear(64, 64),
                           cr.nn.ReLU(), cr.nn.Linear(64, 64), cr.nn.Sigmoid(),
                           cr.nn.Linear(64, 10))
    # made inside the measured function (from one array), so the input's compressed copy
    # and the plain input are both counted and the ratio is exact
    data = np.random.default_rng(0).standard_normal((128, 32)).astype(np.float32)
    return net, data


def measure(net, data, mode):
    def loss():
        x = cr.from_numpy(data)
        if mode is None:
            return (net(x) ** 2).mean()
        with compress_saved(mode):
            return (net(x) ** 2).mean()

    rep = memory_report(loss)
    g = np.concatenate([p.grad.numpy().ravel().astype(np.float64) for p in net.parameters()])
    net.zero_grad()
    return rep, g


@pytest.mark.parametrize("mode, ratio, tol", [
    ("float16", 2, 1e-2), ("bfloat16", 2, 2e-2), ("8bit", 4, 0.1)])
def test_bytes_and_gradient_error(mlp, mode, ratio, tol):
    net, data = mlp
    plain, g0 = measure(net, data, None)
    comp, g = measure(net, data, mode)
    # every saved array shrinks by the ratio; 8bit also keeps a Python float scale
    assert plain.peak_bytes == ratio * comp.peak_bytes
    assert plain.total_bytes == ratio * comp.total_bytes
    assert comp.held_after_backward == 0
    err = np.linalg.norm(g - g0) / np.linalg.norm(g0)
    assert 0 < err < tol


def test_float16_error_is_below_one_percent_on_deeper_mlp():
    cr.manual_seed(1)
    layers = []
    for _ in range(6):
        layers += [cr.nn.Linear(48, 48), cr.nn.Tanh()]
    net = cr.nn.Sequential(*layers)
    x = cr.randn(64, 48)
    params = list(net.parameters())
    err = gradient_error(lambda x: net(x).pow(2).sum(), [x], "float16", wrt=params)
    assert err < 1e-2


def test_bfloat16_rounds_to_nearest_even():
    one = np.float32(1.0)
    step = np.float32(2.0 ** -7)  # bfloat16 spacing at 1
    vals = np.array([1.0, 1.0 + step / 2, 1.0 + step * 1.5, 1.0 + step * 0.75, -3.5, np.inf,
                     np.nan], dtype=np.float32)
    back = _from_bfloat16_bits(_to_bfloat16_bits(vals), np.float32)
    assert back[0] == one
    assert back[1] == one                  # tie: rounds to even (1.0)
    assert back[2] == one + 2 * step       # tie: rounds to even (1 + 2 step)
    assert back[3] == one + step           # above the midpoint rounds up
    assert back[4] == -3.5 and np.isinf(back[5]) and np.isnan(back[6])
    assert _to_bfloat16_bits(np.float32(2.0)).shape == ()  # 0-d stays 0-d


def test_parameters_are_not_compressed():
    lin = cr.nn.Linear(4, 4)
    seen = []

    def pack(t):
        seen.append(t.dtype)
        return t

    x = cr.randn(3, 4)
    with cr.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with compress_saved("float16"):
            y = lin(x).tanh().sum()
    y.backward()
    # the input and tanh's output go through compressed; the weight as it is
    assert sorted(str(d) for d in seen) == ["float16", "float16", "float32"]


def test_float64_under_float16_keeps_dtype_of_gradients():
    x = cr.randn(5, dtype=cr.float64, requires_grad=True)
    with compress_saved("float16"):
        y = (x.sin() * x).sum()
    y.backward()
    assert x.grad.dtype == cr.float64
    v = x.detach().numpy()
    ref = np.sin(v) + v * np.cos(v)
    assert np.allclose(x.grad.numpy(), ref, rtol=1e-2, atol=1e-3)


def test_float16_overflow_warns():
    x = cr.tensor([1e3, 1.0], requires_grad=True)
    with pytest.warns(RuntimeWarning, match="beyond float16's range"):
        with compress_saved("float16"):
            y = x * 1e3
            (y * y).sum()  # saves y, a result (leaves are never compressed)


def test_8bit_rejects_non_finite():
    x = cr.tensor([np.inf, 1.0], requires_grad=True)
    with pytest.raises(ValueError, match="8bit"):
        with compress_saved("8bit"):
            y = x * 2.0
            y * y


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown mode 'int4'"):
        compress_saved("int4")


def test_gradient_error_needs_an_input_with_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradient_error(lambda x: x.sum(), [cr.randn(3)], "float16")
