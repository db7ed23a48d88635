"""A small MLP, built from raw tensors, trained with each optimizer reduces the loss."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

CASES = [
    (cr.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (cr.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (cr.optim.Adam, dict(lr=0.01)),
    (cr.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (cr.optim.AdamW, dict(lr=0.01)),
    (cr.optim.RMSprop, dict(lr=0.005)),
    (cr.optim.RMSprop, dict(lr=0.005, centered=True, momentum=0.5)),
    (cr.optim.Adagrad, dict(lr=0.1)),
    (cr.optim.Adadelta, dict(lr=1.0)),
    (cr.optim.NAdam, dict(lr=0.01)),
    (cr.optim.RAdam, dict(lr=0.01)),
]


def _data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 2))
    y = np.sin(2 * x[:, :1]) + x[:, 1:] ** 2
    return cr.tensor(x, dtype=cr.float32), cr.tensor(y, dtype=cr.float32)


def _mlp():
    w1 = (cr.randn(2, 16) * 0.5).requires_grad_()
    b1 = cr.zeros(16, requires_grad=True)
    w2 = (cr.randn(16, 1) * 0.25).requires_grad_()
    b2 = cr.zeros(1, requires_grad=True)
    return [w1, b1, w2, b2]


def _loss(params, x, y):
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).tanh()
    return ((h @ w2 + b2 - y) ** 2).mean()


@pytest.mark.parametrize("cls,kw", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_mlp_loss_decreases(cls, kw):
    x, y = _data()
    params = _mlp()
    opt = cls(params, **kw)
    with cr.no_grad():
        start = _loss(params, x, y).item()
    for _ in range(150):
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        opt.step()
    with cr.no_grad():
        end = _loss(params, x, y).item()
    assert end < 0.5 * start, (start, end)


def test_mlp_lbfgs():
    x, y = _data()
    params = _mlp()
    opt = cr.optim.LBFGS(params, line_search_fn="strong_wolfe", max_iter=20)

    def closure():
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    start = closure().item()
    for _ in range(5):
        opt.step(closure)
    assert closure().item() < 0.1 * start


def test_mlp_with_scheduler_and_clipping():
    x, y = _data()
    params = _mlp()
    opt = cr.optim.SGD(params, lr=0.2, momentum=0.9)
    sched = cr.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=100)
    from chainrule.nn.utils import clip_grad_norm_

    start = _loss(params, x, y).item()
    for _ in range(100):
        opt.zero_grad()
        _loss(params, x, y).backward()
        clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
    assert _loss(params, x, y).item() < 0.5 * start
