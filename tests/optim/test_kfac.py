"""K-FAC and the exact natural gradient: agreement where Kronecker is exact, KFC rows,
running statistics, SGD fallback, speed-up over SGD on a badly scaled problem, errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.optim.kfac import _input_rows, _output_rows, kfac_precondition
from chainrule.optim.natural_gradient import natural_gradient_direction


def _params(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().reshape(-1) for p in model.parameters()])


def _natural_step(model, loss_fn, damping=0.0):
    ng = cr.optim.NaturalGradient([p for p in model.parameters() if p.requires_grad],
                                  lr=1.0, damping=damping)

    def closure():
        ng.zero_grad()
        return loss_fn(model, "none")

    ng.step(closure)


def _kfac_step(model, loss_fn, **kwargs):
    opt = cr.optim.KFAC(model, lr=1.0, momentum=0.0, **kwargs)
    loss_fn(model, "mean").backward()
    opt.step()
    opt.remove_hooks()
    return opt


@pytest.mark.parametrize("bias", [True, False])
def test_single_sample_linear_layer_equals_exact_natural_gradient(bias):
    # One sample, one layer: the weight gradient is g a^T, so F = (a a^T) kron (g g^T)
    # holds exactly and K-FAC's pseudo-inverted factors (damping=0) give F^+ grad.
    model = nn.Linear(5, 3, bias=bias).double()
    twin = copy.deepcopy(model)
    x = cr.randn(1, 5, dtype=cr.float64)
    y = cr.tensor([1])

    def loss_fn(m, reduction):
        return F.cross_entropy(m(x), y, reduction=reduction)

    before = _params(model)
    _kfac_step(model, loss_fn, damping=0.0)
    _natural_step(twin, loss_fn, damping=0.0)
    assert np.abs(_params(model) - before).max() > 1e-3  # it moved
    np.testing.assert_allclose(_params(model), _params(twin), rtol=0, atol=1e-8)


def test_tiny_mlp_with_one_trained_layer_equals_exact_natural_gradient():
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    for p in model[0].parameters():
        p.requires_grad_(False)
    twin = copy.deepcopy(model)
    x = cr.randn(1, 3, dtype=cr.float64)
    target = cr.randn(1, 4, dtype=cr.float64)

    def loss_fn(m, reduction):
        out = F.mse_loss(m(x), target, reduction="none").sum(dim=1)
        return out if reduction == "none" else out.mean()

    _kfac_step(model, loss_fn, damping=0.0)
    _natural_step(twin, loss_fn, damping=0.0)
    np.testing.assert_allclose(_params(model), _params(twin), rtol=0, atol=1e-8)


def test_single_position_conv_equals_exact_natural_gradient():
    # A kernel covering the whole input has one output position: a linear layer.
    model = nn.Conv2d(2, 3, kernel_size=3).double()
    twin = copy.deepcopy(model)
    x = cr.randn(1, 2, 3, 3, dtype=cr.float64)
    y = cr.tensor([2])

    def loss_fn(m, reduction):
        return F.cross_entropy(m(x).flatten(1), y, reduction=reduction)

    _kfac_step(model, loss_fn, damping=0.0)
    _natural_step(twin, loss_fn, damping=0.0)
    np.testing.assert_allclose(_params(model), _params(twin), rtol=0, atol=1e-8)


@pytest.mark.parametrize("pi", [True, False])
def test_damped_step_is_the_factored_damped_kronecker_inverse(pi):
    model = nn.Linear(4, 3).double()
    w0 = np.hstack([model.weight.detach().numpy(), model.bias.detach().numpy()[:, None]])
    x = cr.randn(6, 4, dtype=cr.float64)
    y = cr.randint(0, 3, (6,))
    damping = 0.05
    opt = cr.optim.KFAC(model, lr=1.0, momentum=0.0, damping=damping, pi=pi)
    F.cross_entropy(model(x), y).backward()
    grad = np.hstack([model.weight.grad.numpy(), model.bias.grad.numpy()[:, None]])
    # The factors from first principles: a with a ones column; g = N * dL/ds.
    a = np.hstack([x.numpy(), np.ones((6, 1))])
    with cr.no_grad():
        p = F.softmax(model(x), dim=1).numpy()
    g = p - np.eye(3)[y.numpy()]
    A = a.T @ a / 6
    G = g.T @ g / 6
    opt.step()
    state = opt.state[model.weight]
    np.testing.assert_allclose(state["A"].numpy(), A, atol=1e-12)
    np.testing.assert_allclose(state["G"].numpy(), G, atol=1e-12)
    ratio = math.sqrt((np.trace(A) / 5) / (np.trace(G) / 3)) if pi else 1.0
    lam = math.sqrt(damping)
    Fd = np.kron(G + lam / ratio * np.eye(3), A + lam * ratio * np.eye(5))  # row-major vec
    step = np.linalg.solve(Fd, grad.reshape(-1)).reshape(3, 5)
    w1 = np.hstack([model.weight.detach().numpy(), model.bias.detach().numpy()[:, None]])
    np.testing.assert_allclose(w0 - w1, step, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kfac_precondition(grad, A, G, damping, pi), step, atol=1e-12)


def test_natural_gradient_direction_solves_the_damped_fisher_either_way():
    rng = np.random.default_rng(0)
    for N, n in ((3, 7), (9, 4)):
        J = rng.normal(size=(N, n))
        d = natural_gradient_direction(J, 0.1)
        Fm = J.T @ J / N + 0.1 * np.eye(n)
        np.testing.assert_allclose(Fm @ d, -J.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=1), dict(dilation=2, padding="same"), dict(padding=(0, 1)),
])
def test_conv_rows_reproduce_the_weight_gradient(kwargs):
    # sum over samples and positions of g a^T is the weight gradient: the im2col rows
    # and the output-gradient rows line up with the weight's (C_in, kh, kw) layout.
    conv = nn.Conv2d(2, 3, kernel_size=3, **kwargs).double()
    x = cr.randn(2, 2, 6, 7, dtype=cr.float64)
    out = conv(x)
    go = cr.randn(*out.shape, dtype=cr.float64)
    (out * go).sum().backward()
    a, n = _input_rows(conv, x.numpy())
    g, n2 = _output_rows(conv, go.numpy())
    assert n == n2 == 2 and a.shape[0] == g.shape[0] == 2 * out.shape[2] * out.shape[3]
    np.testing.assert_allclose(g.T @ a, conv.weight.grad.numpy().reshape(3, -1), atol=1e-10)


def test_conv_factors_follow_kfc():
    conv = nn.Conv2d(1, 2, kernel_size=2, bias=False).double()
    opt = cr.optim.KFAC(conv, momentum=0.0)
    x = cr.randn(3, 1, 3, 3, dtype=cr.float64)
    with cr.no_grad():
        s = conv(x).numpy()
    conv(x).pow(2).mean().backward()
    opt.step()
    patches = np.array([x.numpy()[i, 0, r:r + 2, c:c + 2].reshape(-1)
                        for i in range(3) for r in range(2) for c in range(2)])
    np.testing.assert_allclose(opt.state[conv.weight]["A"].numpy(),
                               patches.T @ patches / 3, atol=1e-12)  # summed over positions
    g = (2 * s / s.size * 3).transpose(0, 2, 3, 1).reshape(-1, 2)  # N * dL/ds
    np.testing.assert_allclose(opt.state[conv.weight]["G"].numpy(), g.T @ g / 12, atol=1e-12)


def test_running_averages_and_inverse_schedule():
    model = nn.Linear(3, 2).double()
    opt = cr.optim.KFAC(model, lr=0.01, stat_decay=0.9, inv_update_freq=3)
    As, invs = [], []
    for _ in range(4):
        x = cr.randn(5, 3, dtype=cr.float64)
        opt.zero_grad()
        F.mse_loss(model(x), cr.zeros(5, 2, dtype=cr.float64)).backward()
        xa = np.hstack([x.numpy(), np.ones((5, 1))])
        As.append(xa.T @ xa / 5)
        opt.step()
        invs.append(opt._inv[model])
    expect = As[0]
    for A in As[1:]:
        expect = 0.9 * expect + 0.1 * A
    np.testing.assert_allclose(opt.state[model.weight]["A"].numpy(), expect, atol=1e-12)
    assert opt.state[model.weight]["step"] == 4
    assert invs[0] is invs[1] is invs[2] and invs[3] is not invs[2]


def test_statistics_only_in_training_with_grad():
    model = nn.Linear(3, 2)
    opt = cr.optim.KFAC(model)
    with cr.no_grad():
        model(cr.randn(4, 3))
    model.eval()
    model(cr.randn(4, 3)).sum().backward()
    assert opt._batch == {}
    model.train()
    opt.zero_grad()
    model(cr.randn(4, 3)).sum().backward()
    assert set(opt._batch[model]) == {"A", "G"}
    opt.remove_hooks()
    assert not model._forward_hooks and not model._backward_hooks


def test_model_without_supported_layers_works_as_sgd():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(cr.tensor([1.0, -2.0, 0.5]))

        def forward(self, x):
            return x * self.w

    model = Scale()
    twin = copy.deepcopy(model)
    with pytest.warns(UserWarning, match="no Linear or Conv2d"):
        opt = cr.optim.KFAC(model, lr=0.1, momentum=0.9, weight_decay=0.01)
    ref = cr.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    x = cr.tensor([0.3, 1.0, -2.0])
    for _ in range(3):
        for m, o in ((model, opt), (twin, ref)):
            o.zero_grad()
            (m(x) ** 2).sum().backward()
            o.step()
    np.testing.assert_allclose(model.w.detach().numpy(), twin.w.detach().numpy(), atol=1e-7)


def test_unsupported_conv_and_other_parameters_get_sgd():
    model = nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.LayerNorm(2),
                          nn.Linear(2, 2))
    with pytest.warns(UserWarning, match="not supported"):
        opt = cr.optim.KFAC(model, lr=0.1, momentum=0.0)
    assert opt._layers == [model[3]]
    before = [p.detach().numpy().copy() for p in model.parameters()]
    model(cr.randn(4, 2, 3, 3)).pow(2).mean().backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    for k in range(4):  # conv weight, conv bias, layer-norm weight and bias: plain SGD
        np.testing.assert_allclose(list(model.parameters())[k].detach().numpy(),
                                   before[k] - 0.1 * grads[k], atol=1e-7)
    opt.remove_hooks()


def test_fewer_steps_than_sgd_on_badly_scaled_inputs():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(128, 6))
    y = cr.tensor((z @ rng.normal(size=6) > 0).astype(np.int64))
    x = cr.tensor(z * np.array([3, 1, 0.3, 0.1, 0.03, 0.01]), dtype=cr.float32)

    def steps_to(kind, lr, threshold=0.25, max_steps=100):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
        if kind == "kfac":
            opt = cr.optim.KFAC(model, lr=lr, momentum=0.9, damping=1e-3, inv_update_freq=1)
        else:
            opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        for k in range(max_steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            if loss.item() < threshold:
                return k
            loss.backward()
            opt.step()
        return max_steps + 1

    kfac = steps_to("kfac", 0.1)
    assert kfac <= 60
    for lr in (0.03, 0.1, 0.3):
        assert steps_to("sgd", lr) > kfac


def test_trains_a_small_cnn():
    x = cr.randn(32, 1, 6, 6)
    y = (x[:, 0, :3].sum(dim=(1, 2)) > 0).long()
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16, 2))
    opt = cr.optim.KFAC(model, lr=0.1, damping=1e-2, kl_clip=1e-3, inv_update_freq=2)
    assert len(opt._layers) == 3
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]
    opt.remove_hooks()


def test_state_dict_round_trip():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = cr.optim.KFAC(model, lr=0.05)
    for _ in range(2):
        opt.zero_grad()
        model(cr.randn(5, 3)).pow(2).mean().backward()
        opt.step()
    sd = opt.state_dict()
    twin = copy.deepcopy(model)
    other = cr.optim.KFAC(twin, lr=0.05)
    other.load_state_dict(sd)
    for p, q in zip(model.parameters(), twin.parameters()):
        for key, v in opt.state[p].items():
            got = other.state[q][key]
            if isinstance(v, cr.Tensor):
                np.testing.assert_allclose(got.numpy(), v.numpy())
            else:
                assert got == v
    bad = copy.deepcopy(sd)
    bad["state"][0]["A"] = cr.zeros(3, 3)
    with pytest.raises(ValueError, match="expected \\(4, 4\\)"):
        other.load_state_dict(bad)
    opt.remove_hooks()
    other.remove_hooks()


@pytest.mark.parametrize("kwargs", [
    dict(lr=-0.1), dict(damping=-1.0), dict(stat_decay=1.0), dict(stat_decay=-0.1),
    dict(inv_update_freq=0), dict(inv_update_freq=2.0), dict(momentum=-0.5),
    dict(weight_decay=-1.0), dict(pi="yes"), dict(kl_clip=0.0),
])
def test_invalid_hyper_parameters_raise_before_hooking(kwargs):
    model = nn.Linear(3, 2)
    with pytest.raises((ValueError, TypeError), match="KFAC"):
        cr.optim.KFAC(model, **kwargs)
    assert not model._forward_hooks and not model._backward_hooks


def test_bad_model_and_group_errors():
    with pytest.raises(TypeError, match="nn.Module"):
        cr.optim.KFAC([cr.zeros(2, requires_grad=True)])
    opt = cr.optim.KFAC(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": [cr.zeros(1, requires_grad=True)]})
    opt.remove_hooks()


def test_kl_clip_shrinks_the_step():
    x = cr.randn(8, 3)
    y = cr.randint(0, 2, (8,))
    moves = []
    for clip in (None, 1e-6):
        cr.manual_seed(1)
        model = nn.Linear(3, 2)
        before = _params(model)
        opt = cr.optim.KFAC(model, lr=1.0, momentum=0.0, kl_clip=clip)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.remove_hooks()
        moves.append(np.linalg.norm(_params(model) - before))
    assert moves[1] < moves[0]
