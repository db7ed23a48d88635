"""Optional cross-checks against PyTorch itself (skipped when torch is not installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

OPT_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.1, maximize=True, betas=(0.8, 0.95))),
    ("AdamW", dict(lr=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.05, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.05, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.fixture
def torch_float64():
    """Make torch keep its scalar state (step, mu_product) in float64, like ours."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("name,kw", OPT_CASES)
def test_optimizer_matches_torch(name, kw, torch_float64):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(15)]
    p = cr.tensor(start, dtype=cr.float64, requires_grad=True)
    tp = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = getattr(cr.optim, name)([p], **kw)
    topt = getattr(torch.optim, name)([tp], **kw)
    for g in grads:
        p.grad = cr.tensor(g, dtype=cr.float64)
        tp.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=0,
                                   atol=1e-12)
    assert set(opt.state[p]) == set(topt.state[tp])


def test_lbfgs_matches_torch():
    def run(lib, x0):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        opt = lib.optim.LBFGS([x], max_iter=15, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
            loss.backward()
            return loss

        out = []
        for _ in range(3):
            opt.step(closure)
            out.append(x.detach().numpy().copy())
        return np.array(out), opt.state[x]["func_evals"]

    ours, evals = run(cr, [-1.5, 2.0])
    theirs, tevals = run(torch, [-1.5, 2.0])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert evals == tevals


SCHED_CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[10, 30, 30], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.97)),
    ("CosineAnnealingLR", dict(T_max=30, eta_min=0.01)),
    ("CosineAnnealingWarmRestarts", dict(T_0=10, T_mult=2, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.25, total_iters=40)),
    ("ConstantLR", dict(factor=0.5, total_iters=20)),
    ("PolynomialLR", dict(total_iters=60, power=2.0)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=101, three_phase=True)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=10, mode="triangular2")),
]


@pytest.mark.parametrize("name,kw", SCHED_CASES)
def test_scheduler_matches_torch(name, kw):
    opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    sched = getattr(cr.optim.lr_scheduler, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(100):
        assert sched.get_last_lr()[0] == pytest.approx(tsched.get_last_lr()[0], rel=1e-12,
                                                       abs=1e-15)
        assert opt.param_groups[0]["momentum"] == pytest.approx(
            topt.param_groups[0]["momentum"], rel=1e-12)
        topt.step()
        sched.step()
        tsched.step()


def test_plateau_matches_torch():
    metrics = [5, 4, 4.1, 4.0, 3.99, 4.2, 4.3, 3.0, 3.0, 3.0, 3.0, 2.9] * 3
    opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    kw = dict(patience=1, cooldown=1, factor=0.5, threshold=0.01, min_lr=0.01)
    sched = cr.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(1)
    gs = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    ps, tps = [], []
    for g in gs:
        p = cr.zeros(*g.shape, dtype=cr.float64, requires_grad=True)
        p.grad = cr.tensor(g, dtype=cr.float64)
        tp = torch.zeros(*g.shape, dtype=torch.float64, requires_grad=True)
        tp.grad = torch.tensor(g)
        ps.append(p)
        tps.append(tp)
    total = cr.nn.utils.clip_grad_norm_(ps, 0.5, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5, norm_type)
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-12)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)
