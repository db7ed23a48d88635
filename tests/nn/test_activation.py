"""Activation layers and functions: values against NumPy formulas, gradcheck, extremes."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

F = nn.functional
ALPHA = 1.6732632423543772848170429916717
SCALE = 1.0507009873554804934193349852946


def _erf(x):
    return np.vectorize(math.erf)(x)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


# (module, NumPy reference)
CASES = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    (nn.SELU(), lambda x: SCALE * np.where(x > 0, x, ALPHA * np.expm1(x))),
    (nn.CELU(0.5), lambda x: np.maximum(x, 0) + np.minimum(0, 0.5 * np.expm1(x / 0.5))),
    (nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (nn.GELU("tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.SiLU(), lambda x: x * _sig(x)),
    (nn.Mish(), lambda x: x * np.tanh(_softplus(x))),
    (nn.Sigmoid(), _sig),
    (nn.LogSigmoid(), lambda x: -_softplus(-x)),
    (nn.Tanh(), np.tanh),
    (nn.Tanhshrink(), lambda x: x - np.tanh(x)),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    (nn.Softplus(), _softplus),
    (nn.Softplus(beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3, x, _softplus(2 * x) / 2)),
    (nn.Hardtanh(), lambda x: np.clip(x, -1, 1)),
    (nn.Hardtanh(-0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0)),
    (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.Softmin(dim=0), lambda x: np.exp(-x) / np.exp(-x).sum(0, keepdims=True)),
    (nn.LogSoftmax(dim=-1), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
]
IDS = [repr(m) for m, _ in CASES]


def _input():
    # away from the kinks at 0, +-1, +-3, 6 so finite differences are smooth
    base = np.array([[-4.3, -2.1, -0.7, -0.2, 0.3], [0.8, 1.6, 2.7, 3.4, 7.1]])
    return cr.tensor(base, dtype=cr.float64, requires_grad=True)


@pytest.mark.parametrize("module,ref", CASES, ids=IDS)
def test_forward_matches_reference(module, ref):
    x = _input()
    np.testing.assert_allclose(module(x).detach().numpy(), ref(x.detach().numpy()),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("module,ref", CASES, ids=IDS)
def test_gradcheck(module, ref):
    x = _input()
    assert gradcheck(module, (x,))


@pytest.mark.parametrize("module", [nn.GELU(), nn.ELU(), nn.SiLU(), nn.Softplus()],
                         ids=["GELU", "ELU", "SiLU", "Softplus"])
def test_gradgradcheck(module):
    assert gradgradcheck(module, (_input(),))


@pytest.mark.parametrize("module,ref", CASES, ids=IDS)
def test_float32_stays_float32_and_finite_at_extremes(module, ref):
    x = cr.tensor([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], requires_grad=True)
    out = module(x)
    assert out.dtype == cr.float32
    assert np.isfinite(out.detach().numpy()).all()
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_kink_conventions_match_pytorch():
    x = cr.tensor([0.0, 1.0, -1.0], requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    x.grad = None
    F.hardtanh(x).sum().backward()  # zero gradient at the bounds
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 0.0])
    x.grad = None
    F.elu(x).sum().backward()  # exp branch at 0: alpha * exp(0)
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, math.exp(-1)], rtol=1e-6)


def test_functional_names_exist():
    for name in ["relu", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "softplus",
                 "hardtanh", "sigmoid", "tanh", "softmax", "log_softmax"]:
        assert callable(getattr(F, name)), name


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="gelu: approximate"):
        F.gelu(cr.zeros(1), approximate="fast")


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="implicit dimension"):
        out = F.softmax(cr.zeros(2, 3))
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 1 / 3), rtol=1e-6)


def test_repr():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"


def test_no_state():
    for m, _ in CASES:
        assert m.state_dict() == {}


def test_against_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-5, 5, 23)
    pairs = [(nn.SELU(), torch.nn.SELU()), (nn.GELU(), torch.nn.GELU()),
             (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.CELU(0.3), torch.nn.CELU(0.3)),
             (nn.Mish(), torch.nn.Mish()), (nn.Hardswish(), torch.nn.Hardswish())]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(cr.tensor(x, dtype=cr.float64)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-10, atol=1e-12)
