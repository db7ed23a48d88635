"""Each optimizer's trajectory on fixed gradients against its update rule written out here.

The references below are deliberately plain: float64 NumPy, out-of-place, one formula per
line as in PyTorch's algorithm boxes, so they share no code with the implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr

STEPS = 12
SHAPES = [(3,), (2, 2)]


def _fixed_grads(seed: int = 1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def _start(seed: int = 2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _run(opt_cls, kwargs):
    """Run ``STEPS`` steps on fixed gradients; return the parameters after each step."""
    params = [cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in _start()]
    opt = opt_cls(params, **kwargs)
    out = []
    for grads in _fixed_grads():
        for p, g in zip(params, grads):
            p.grad = cr.tensor(g, dtype=cr.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def _check(opt_cls, kwargs, ref_step):
    got = _run(opt_cls, kwargs)
    thetas = _start()
    states = [{} for _ in thetas]
    for t, grads in enumerate(_fixed_grads(), start=1):
        thetas = [ref_step(th, g, st, t) for th, g, st in zip(thetas, grads, states)]
        for a, b in zip(got[t - 1], thetas):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # The trajectory moved: the test can fail.
    assert not np.allclose(got[-1][0], _start()[0])


# ---------------------------------------------------------------------------- SGD
def _sgd_ref(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False):
    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            if t == 1:
                b = g.copy()
            else:
                b = momentum * st["b"] + (1 - dampening) * g
            st["b"] = b
            g = g + momentum * b if nesterov else b
        return theta - lr * g
    return step


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, momentum=0.9, weight_decay=0.05, maximize=True),
    dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.2, maximize=True),
]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_trajectory(kw):
    _check(cr.optim.SGD, kw, _sgd_ref(**kw))


def test_sgd_default_lr_is_pytorchs():
    _check(cr.optim.SGD, {}, _sgd_ref())


# ---------------------------------------------------------------------------- Adam / AdamW
def _adam_ref(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
              maximize=False, decoupled=False):
    b1, b2 = betas

    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            if decoupled:
                theta = theta * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * theta
        m = b1 * st.get("m", 0.0) + (1 - b1) * g
        v = b2 * st.get("v", 0.0) + (1 - b2) * g * g
        st["m"], st["v"] = m, v
        if amsgrad:
            vmax = np.maximum(st.get("vmax", 0.0), v)
            st["vmax"] = vmax
            v = vmax
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + eps
        return theta - lr / (1 - b1**t) * m / denom
    return step


ADAM_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, amsgrad=True),
    dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, maximize=True),
    dict(lr=0.1, amsgrad=True, weight_decay=0.3, maximize=True),
]


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_trajectory(kw):
    _check(cr.optim.Adam, kw, _adam_ref(**kw))


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adamw_trajectory(kw):
    kw = dict(kw)
    kw.setdefault("weight_decay", 1e-2)
    _check(cr.optim.AdamW, kw, _adam_ref(decoupled=True, **kw))


def test_adamw_default_weight_decay_is_decoupled():
    _check(cr.optim.AdamW, dict(lr=0.1), _adam_ref(lr=0.1, weight_decay=1e-2, decoupled=True))


def test_adam_amsgrad_uses_running_max():
    # Large gradients first, then small ones: v falls, its running max doesn't.
    p = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    q = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    opt_a = cr.optim.Adam([p], lr=0.1, amsgrad=True, betas=(0.0, 0.5))
    opt_b = cr.optim.Adam([q], lr=0.1, amsgrad=False, betas=(0.0, 0.5))
    for g in [10.0, 0.1, 0.1]:
        p.grad = cr.tensor([g], dtype=cr.float64)
        q.grad = cr.tensor([g], dtype=cr.float64)
        opt_a.step()
        opt_b.step()
    st = opt_a.state[p]
    assert st["max_exp_avg_sq"].item() > st["exp_avg_sq"].item()
    assert p.item() > q.item()  # smaller steps with the max in the denominator


# ---------------------------------------------------------------------------- RMSprop
def _rmsprop_ref(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * theta
        v = alpha * st.get("v", 0.0) + (1 - alpha) * g * g
        st["v"] = v
        if centered:
            a = alpha * st.get("a", 0.0) + (1 - alpha) * g
            st["a"] = a
            denom = np.sqrt(v - a * a) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * st.get("b", 0.0) + g / denom
            st["b"] = b
            return theta - lr * b
        return theta - lr * g / denom
    return step


RMSPROP_CASES = [
    dict(),
    dict(lr=0.05, alpha=0.9),
    dict(lr=0.05, centered=True),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.5, centered=True, weight_decay=0.1),
    dict(lr=0.05, maximize=True, eps=1e-3),
]


@pytest.mark.parametrize("kw", RMSPROP_CASES)
def test_rmsprop_trajectory(kw):
    _check(cr.optim.RMSprop, kw, _rmsprop_ref(**kw))


# ---------------------------------------------------------------------------- Adagrad
def _adagrad_ref(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, maximize=False):
    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * theta
        clr = lr / (1 + (t - 1) * lr_decay)
        s = st.get("s", initial_accumulator_value) + g * g
        st["s"] = s
        return theta - clr * g / (np.sqrt(s) + eps)
    return step


ADAGRAD_CASES = [
    dict(),
    dict(lr=0.1, lr_decay=0.05),
    dict(lr=0.1, initial_accumulator_value=0.5),
    dict(lr=0.1, weight_decay=0.2, eps=1e-4),
    dict(lr=0.1, lr_decay=0.1, maximize=True),
]


@pytest.mark.parametrize("kw", ADAGRAD_CASES)
def test_adagrad_trajectory(kw):
    _check(cr.optim.Adagrad, kw, _adagrad_ref(**kw))


# ---------------------------------------------------------------------------- Adadelta
def _adadelta_ref(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * theta
        v = rho * st.get("v", 0.0) + (1 - rho) * g * g
        delta = np.sqrt(st.get("u", 0.0) + eps) / np.sqrt(v + eps) * g
        st["u"] = rho * st.get("u", 0.0) + (1 - rho) * delta * delta
        st["v"] = v
        return theta - lr * delta
    return step


ADADELTA_CASES = [
    dict(),
    dict(lr=0.5, rho=0.5, eps=1e-3),
    dict(weight_decay=0.1),
    dict(maximize=True, eps=1e-2),
]


@pytest.mark.parametrize("kw", ADADELTA_CASES)
def test_adadelta_trajectory(kw):
    _check(cr.optim.Adadelta, kw, _adadelta_ref(**kw))


# ---------------------------------------------------------------------------- NAdam
def _nadam_ref(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas

    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            if decoupled_weight_decay:
                theta = theta * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * theta
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod = st.get("prod", 1.0) * mu_t
        st["prod"] = prod
        m = b1 * st.get("m", 0.0) + (1 - b1) * g
        v = b2 * st.get("v", 0.0) + (1 - b2) * g * g
        st["m"], st["v"] = m, v
        m_hat = mu_next * m / (1 - prod * mu_next) + (1 - mu_t) * g / (1 - prod)
        v_hat = v / (1 - b2**t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


NADAM_CASES = [
    dict(),
    dict(lr=0.05, momentum_decay=0.1),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.05, maximize=True, betas=(0.8, 0.99)),
]


@pytest.mark.parametrize("kw", NADAM_CASES)
def test_nadam_trajectory(kw):
    _check(cr.optim.NAdam, kw, _nadam_ref(**kw))


def test_nadam_mu_product_state():
    p = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.NAdam([p])
    expected = 1.0
    for t in range(1, 4):
        p.grad = cr.tensor([0.5], dtype=cr.float64)
        opt.step()
        expected *= 0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3))
    assert opt.state[p]["mu_product"] == pytest.approx(expected, rel=1e-15)


# ---------------------------------------------------------------------------- RAdam
def _radam_ref(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               decoupled_weight_decay=False, maximize=False, branches=None):
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1

    def step(theta, g, st, t):
        if maximize:
            g = -g
        if weight_decay:
            if decoupled_weight_decay:
                theta = theta * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * theta
        m = b1 * st.get("m", 0.0) + (1 - b1) * g
        v = b2 * st.get("v", 0.0) + (1 - b2) * g * g
        st["m"], st["v"] = m, v
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if branches is not None:
            branches.add(rho_t > 5)
        if rho_t > 5:
            l_t = math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return theta - lr * m_hat * l_t * r_t
        return theta - lr * m_hat
    return step


RADAM_CASES = [
    dict(),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.05, maximize=True),
    dict(lr=0.05, betas=(0.8, 0.9)),
]


@pytest.mark.parametrize("kw", RADAM_CASES)
def test_radam_trajectory(kw):
    branches: set = set()
    _check(cr.optim.RAdam, kw, _radam_ref(branches=branches, **kw))
    assert branches == {True, False}  # both sides of the rho_t > 5 threshold were taken


# ---------------------------------------------------------------------------- groups
def test_param_groups_use_their_own_hyper_parameters():
    a = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([3.0], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}],
                       lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.5
    ref_a, ref_b = _sgd_ref(lr=0.1), _sgd_ref(lr=0.5, momentum=0.9)
    ta, tb, sa, sb = a.detach().numpy().copy(), b.detach().numpy().copy(), {}, {}
    for t in range(1, 4):
        a.grad = cr.tensor([1.0, -1.0], dtype=cr.float64)
        b.grad = cr.tensor([2.0], dtype=cr.float64)
        opt.step()
        ta = ref_a(ta, np.array([1.0, -1.0]), sa, t)
        tb = ref_b(tb, np.array([2.0]), sb, t)
    np.testing.assert_allclose(a.detach().numpy(), ta, atol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), tb, atol=1e-12)


def test_parameters_without_grad_are_skipped():
    a = cr.tensor([1.0], requires_grad=True)
    b = cr.tensor([1.0], requires_grad=True)
    opt = cr.optim.Adam([a, b], lr=0.1)
    a.grad = cr.tensor([1.0])
    opt.step()
    assert b.item() == 1.0 and a.item() < 1.0
    assert len(opt.state[b]) == 0


def test_float32_parameters_stay_float32():
    for cls in (cr.optim.SGD, cr.optim.Adam, cr.optim.AdamW, cr.optim.RMSprop,
                cr.optim.Adagrad, cr.optim.Adadelta, cr.optim.NAdam, cr.optim.RAdam):
        p = cr.ones(3, requires_grad=True)
        opt = cls([p], lr=0.1)
        p.grad = cr.ones(3)
        opt.step()
        assert p.dtype == cr.float32, cls.__name__
        for v in opt.state[p].values():
            if isinstance(v, cr.Tensor):
                assert v.dtype == cr.float32, cls.__name__
