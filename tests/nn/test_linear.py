"""Identity, Linear, Bilinear, Flatten, Unflatten: gradients, state dicts, init, errors."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck


def check_grads(module, *inputs):
    """gradcheck w.r.t. the inputs and every parameter of a float64 module."""
    params = list(module.parameters())
    n = len(inputs)
    return gradcheck(lambda *a: module(*a[:n]), (*inputs, *params))


def x64(*shape):
    return cr.randn(*shape, dtype=cr.float64, requires_grad=True)


# expected keys and shapes, from PyTorch's documentation of each layer
STATE_TABLES = [
    (lambda: nn.Linear(5, 3), {"weight": (3, 5), "bias": (3,)}),
    (lambda: nn.Linear(5, 3, bias=False), {"weight": (3, 5)}),
    (lambda: nn.Bilinear(2, 4, 3), {"weight": (3, 2, 4), "bias": (3,)}),
    (lambda: nn.Bilinear(2, 4, 3, bias=False), {"weight": (3, 2, 4)}),
    (lambda: nn.Identity(54, unused="x"), {}),
    (lambda: nn.Flatten(), {}),
    (lambda: nn.Unflatten(1, (2, 3)), {}),
    (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
     {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (2, 8), "2.bias": (2,)}),
]


@pytest.mark.parametrize("make,table", STATE_TABLES)
def test_state_dict_matches_pytorch(make, table):
    sd = make().state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == table
    assert list(sd) == list(table)


def test_linear_forward_value():
    m = nn.Linear(3, 2)
    x = cr.randn(4, 3)
    ref = x.numpy() @ m.weight.detach().numpy().T + m.bias.detach().numpy()
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    assert m.weight.dtype == cr.float32


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 1, 3), (2, 2, 2, 3), (0, 2, 3)])
def test_linear_gradcheck(bias, shape):
    m = nn.Linear(3, 2, bias=bias).double()
    assert check_grads(m, x64(*shape))


def test_linear_zero_in_features():
    m = nn.Linear(0, 2)
    out = m(cr.zeros(3, 0))
    assert out.shape == (3, 2)


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_gradcheck_and_value(bias):
    m = nn.Bilinear(2, 3, 2, bias=bias).double()
    a, b = x64(4, 2), x64(4, 3)
    assert check_grads(m, a, b)
    w = m.weight.detach().numpy()
    ref = np.einsum("ni,oij,nj->no", a.detach().numpy(), w, b.detach().numpy())
    if bias:
        ref = ref + m.bias.detach().numpy()
    np.testing.assert_allclose(m(a, b).detach().numpy(), ref)


def test_identity_flatten_unflatten():
    x = x64(2, 3, 4)
    assert nn.Identity()(x) is x
    f = nn.Flatten()
    assert f(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    u = nn.Unflatten(1, (3, 4))
    assert u(f(x)).shape == (2, 3, 4)
    assert gradcheck(lambda t: u(f(t)) * 2, (x,))
    assert repr(f) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(u) == "Unflatten(dim=1, unflattened_size=(3, 4))"


def test_linear_default_init_bounds():
    cr.manual_seed(1)
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives the same bound
    w = m.weight.detach().numpy()
    b = m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    # uniform variance bound^2 / 3
    assert abs(w.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3


def test_init_is_seeded():
    cr.manual_seed(3)
    a = nn.Linear(4, 4).weight.detach().numpy().copy()
    cr.manual_seed(3)
    b = nn.Linear(4, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_linear_wrong_feature_count_names_layer_and_shapes():
    m = nn.Linear(4, 2)
    with pytest.raises(ValueError) as ei:
        m(cr.zeros(3, 5))
    msg = str(ei.value)
    assert "Linear" in msg and "(*, 4)" in msg and "(3, 5)" in msg


def test_linear_wrong_rank():
    with pytest.raises(ValueError, match=r"Linear: .*got shape \(\)"):
        nn.Linear(1, 1)(cr.tensor(1.0))


def test_bilinear_wrong_features():
    with pytest.raises(ValueError, match=r"Bilinear: expected input2 of shape \(\*, 3\)"):
        nn.Bilinear(2, 3, 1)(cr.zeros(4, 2), cr.zeros(4, 5))


def test_functional_linear_errors():
    F = nn.functional
    with pytest.raises(ValueError, match="linear: input's last dimension 3"):
        F.linear(cr.zeros(2, 3), cr.zeros(4, 5))


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 2)


def test_repr():
    assert repr(nn.Linear(2, 3, bias=False)) == \
        "Linear(in_features=2, out_features=3, bias=False)"
    assert repr(nn.Bilinear(1, 2, 3)) == \
        "Bilinear(in1_features=1, in2_features=2, out_features=3, bias=True)"


def test_dtype_argument():
    m = nn.Linear(2, 2, dtype=cr.float64)
    assert m.weight.dtype == cr.float64 and m.bias.dtype == cr.float64


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradgradcheck(bias):
    m = nn.Linear(3, 2, bias=bias).double()
    params = list(m.parameters())
    assert cr.autograd.gradgradcheck(lambda x, *p: m(x), (x64(2, 3), *params))


def test_functional_linear_vector_weight_and_mixed_dtypes():
    F = nn.functional
    x = x64(4, 3)
    w = x64(3)
    assert gradcheck(lambda a, b: F.linear(a, b), (x, w))
    out = F.linear(cr.ones(2, 3), cr.ones(4, 3, dtype=cr.float64), cr.ones(4))
    assert out.dtype == cr.float64
    np.testing.assert_array_equal(out.numpy(), np.full((2, 4), 4.0))


def test_linear_saved_input_modified_in_place_is_caught():
    m = nn.Linear(2, 2)
    x = cr.randn(3, 2, requires_grad=True)
    h = x * 1.0
    out = m(h)
    with cr.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
