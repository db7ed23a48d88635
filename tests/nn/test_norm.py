"""BatchNorm1d/2d, LayerNorm and GroupNorm: values against NumPy, running statistics as
PyTorch keeps them, train and eval modes, gradients, state dicts and input errors."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(3)


def t(a, grad=False):
    return cr.tensor(a, requires_grad=grad)


def np_norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


# ---------------------------------------------------------------------------- batch norm
def test_batchnorm2d_training_output_and_running_stats():
    bn = nn.BatchNorm2d(3, momentum=0.3).double()
    with cr.no_grad():
        bn.weight.copy_(t(RNG.standard_normal(3)))
        bn.bias.copy_(t(RNG.standard_normal(3)))
    x = RNG.standard_normal((4, 3, 5, 2)) * 2 + 1
    y = bn(t(x))
    w, b = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    ref = np_norm(x, (0, 2, 3), 1e-5) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-12)
    n = 4 * 5 * 2
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.3 * x.mean(axis=(0, 2, 3)))
    # the running variance takes the unbiased batch variance
    np.testing.assert_allclose(bn.running_var.numpy(),
                               0.7 + 0.3 * x.var(axis=(0, 2, 3)) * n / (n - 1))
    assert int(bn.num_batches_tracked.item()) == 1


def test_batchnorm_eval_uses_running_stats():
    bn = nn.BatchNorm1d(4).double()
    with cr.no_grad():
        bn.running_mean.copy_(t(RNG.standard_normal(4)))
        bn.running_var.copy_(t(RNG.uniform(0.5, 2.0, 4)))
        bn.weight.copy_(t(RNG.standard_normal(4)))
    bn.eval()
    x = RNG.standard_normal((3, 4))
    before = bn.running_mean.numpy().copy()
    y = bn(t(x))
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    ref = (x - rm) / np.sqrt(rv + 1e-5) * bn.weight.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert int(bn.num_batches_tracked.item()) == 0


def test_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None).double()
    xs = [RNG.standard_normal((5, 2)) + k for k in range(3)]
    for x in xs:
        bn(t(x))
    np.testing.assert_allclose(bn.running_mean.numpy(),
                               np.mean([x.mean(axis=0) for x in xs], axis=0))
    assert int(bn.num_batches_tracked.item()) == 3


def test_without_running_stats_eval_uses_batch_stats():
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False).double()
    assert bn.state_dict() == {}
    bn.eval()
    x = RNG.standard_normal((6, 3, 2))
    np.testing.assert_allclose(bn(t(x)).numpy(), np_norm(x, (0, 2), 1e-5), atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck_train_and_eval(training):
    bn = nn.BatchNorm2d(2).double()
    with cr.no_grad():
        bn.running_var.copy_(t([0.5, 2.0]))
        bn.weight.copy_(t([1.5, -0.7]))
    bn.train(training)
    x = t(RNG.standard_normal((3, 2, 2, 2)), True)

    def f(x, w, b):
        # fixed running stats for every call of the check (training mode updates them)
        with cr.no_grad():
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
        return bn(x)

    assert gradcheck(f, (x, bn.weight, bn.bias))
    assert gradgradcheck(f, (x, bn.weight, bn.bias))


def test_functional_batch_norm_gradcheck_without_buffers():
    x = t(RNG.standard_normal((4, 3)), True)
    w = t(RNG.standard_normal(3), True)
    b = t(RNG.standard_normal(3), True)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     (x, w, b))


def test_batchnorm_keeps_float32():
    bn = nn.BatchNorm2d(3)
    y = bn(cr.randn(2, 3, 4, 4))
    assert y.dtype == cr.float32 and bn.running_var.dtype == cr.float32


STATE_TABLES = [
    (lambda: nn.BatchNorm1d(5), {"weight": (5,), "bias": (5,), "running_mean": (5,),
                                 "running_var": (5,), "num_batches_tracked": ()}),
    (lambda: nn.BatchNorm2d(3, affine=False), {"running_mean": (3,), "running_var": (3,),
                                               "num_batches_tracked": ()}),
    (lambda: nn.BatchNorm2d(3, track_running_stats=False), {"weight": (3,), "bias": (3,)}),
    (lambda: nn.LayerNorm((4, 3)), {"weight": (4, 3), "bias": (4, 3)}),
    (lambda: nn.LayerNorm(4, bias=False), {"weight": (4,)}),
    (lambda: nn.LayerNorm(4, elementwise_affine=False), {}),
    (lambda: nn.GroupNorm(2, 6), {"weight": (6,), "bias": (6,)}),
    (lambda: nn.GroupNorm(2, 6, affine=False), {}),
]


@pytest.mark.parametrize("make, table", STATE_TABLES)
def test_state_dict_matches_pytorch(make, table):
    sd = make().state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == table
    assert list(sd) == list(table)


def test_default_values():
    bn = nn.BatchNorm2d(3)
    assert bn.weight.tolist() == [1, 1, 1] and bn.bias.tolist() == [0, 0, 0]
    assert bn.running_var.numpy().tolist() == [1, 1, 1]
    assert bn.num_batches_tracked.dtype == cr.int64
    gn = nn.GroupNorm(1, 2)
    assert gn.weight.tolist() == [1, 1] and gn.bias.tolist() == [0, 0]


@pytest.mark.parametrize("make, shape, pattern", [
    (lambda: nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d: expected 4D input, got 3D input"),
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 4), r"BatchNorm1d: expected 2D or 3D input"),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5),
     r"BatchNorm2d: expected input with 3 channels .*got shape \(2, 4, 5, 5\)"),
    (lambda: nn.LayerNorm(4), (2, 5),
     r"LayerNorm: expected input of shape \(\*, 4\).*got shape \(2, 5\)"),
    (lambda: nn.GroupNorm(2, 4), (2, 6, 3),
     r"GroupNorm: expected input of shape \(N, 4, \*\).*got shape \(2, 6, 3\)"),
])
def test_bad_input_names_layer_expected_and_received(make, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()(cr.randn(*shape))


def test_single_value_per_channel_raises_before_changing_state():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(cr.randn(1, 3))
    assert int(bn.num_batches_tracked.item()) == 0
    bn.eval()
    assert bn(cr.randn(1, 3)).shape == (1, 3)


# ---------------------------------------------------------------------------- layer/group
def test_layer_norm_values_and_gradcheck():
    x = RNG.standard_normal((2, 3, 4))
    w = RNG.standard_normal((3, 4))
    b = RNG.standard_normal((3, 4))
    y = F.layer_norm(t(x), (3, 4), t(w), t(b))
    np.testing.assert_allclose(y.numpy(), np_norm(x, (1, 2), 1e-5) * w + b, atol=1e-12)
    args = (t(x, True), t(w, True), t(b, True))
    f = lambda x, w, b: F.layer_norm(x, (3, 4), w, b)  # noqa: E731
    assert gradcheck(f, args)
    assert gradgradcheck(f, args)


def test_layer_norm_module():
    m = nn.LayerNorm(4, eps=1e-3).double()
    x = RNG.standard_normal((5, 4))
    np.testing.assert_allclose(m(t(x)).detach().numpy(), np_norm(x, (1,), 1e-3), atol=1e-12)


def test_group_norm_values_and_gradcheck():
    x = RNG.standard_normal((2, 6, 3))
    w = RNG.standard_normal(6)
    b = RNG.standard_normal(6)
    y = F.group_norm(t(x), 3, t(w), t(b))
    ref = np_norm(x.reshape(2, 3, 6), (2,), 1e-5).reshape(2, 6, 3) * w[:, None] + b[:, None]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
    m = nn.GroupNorm(3, 6).double()
    args = (t(x, True), m.weight, m.bias)
    assert gradcheck(lambda x, w, b: m(x), args)
    assert gradgradcheck(lambda x, w, b: m(x), args)


def test_group_norm_constructor_error():
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by "
                                         r"num_groups \(2\)"):
        nn.GroupNorm(2, 5)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 3, 5, 2)).astype(np.float32)
    bn = nn.BatchNorm2d(3, momentum=0.2)
    tbn = torch.nn.BatchNorm2d(3, momentum=0.2)
    for _ in range(2):
        y = bn(t(x))
        ty = tbn(torch.from_numpy(x))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-5)
    bn.eval()
    tbn.eval()
    np.testing.assert_allclose(bn(t(x)).detach().numpy(),
                               tbn(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
