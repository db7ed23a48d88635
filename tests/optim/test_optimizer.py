"""The Optimizer base: groups, zero_grad, bad input, state dicts and resuming."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RAdam, RMSprop

ALL = [SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, NAdam, RAdam]

# A non-default configuration per optimizer, so every state entry is exercised.
CONFIGS = {
    SGD: dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    Adam: dict(lr=0.05, amsgrad=True, weight_decay=0.01),
    AdamW: dict(lr=0.05, amsgrad=True),
    RMSprop: dict(lr=0.01, momentum=0.5, centered=True),
    Adagrad: dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    Adadelta: dict(lr=0.5, weight_decay=0.01),
    NAdam: dict(lr=0.05, weight_decay=0.01),
    RAdam: dict(lr=0.05, decoupled_weight_decay=True, weight_decay=0.01),
}


def roundtrip(obj, tmp_path):
    """Save ``obj`` with ``cr.save`` and load it back with ``cr.load``."""
    path = tmp_path / "state.safetensors"
    cr.save(obj, str(path))
    return cr.load(str(path))


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [cr.tensor(rng.standard_normal((3, 2)), dtype=cr.float64, requires_grad=True),
            cr.tensor(rng.standard_normal(2), dtype=cr.float64, requires_grad=True)]


def _loss(params):
    w, b = params
    x = cr.tensor(np.linspace(-1, 1, 12).reshape(4, 3), dtype=cr.float64)
    return (((x @ w + b).tanh() - 0.5) ** 2).sum()


def _train(opt, params, steps, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
        if sched is not None:
            sched.step()


# ---------------------------------------------------------------------------- construction
def test_defaults_and_groups():
    ps = _params()
    opt = Adam(ps)
    assert opt.defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                amsgrad=False, maximize=False)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == ps
    assert "Adam (" in repr(opt) and "lr: 0.001" in repr(opt)


@pytest.mark.parametrize("cls", ALL)
def test_pytorch_defaults(cls):
    expected = {SGD: 1e-3, Adam: 1e-3, AdamW: 1e-3, RMSprop: 1e-2, Adagrad: 1e-2,
                Adadelta: 1.0, NAdam: 2e-3, RAdam: 1e-3}
    assert cls(_params()).defaults["lr"] == expected[cls]


def test_add_param_group():
    a, b = _params()
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    assert len(opt.param_groups) == 2
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [cr.zeros(1, requires_grad=True)], "lr": -1.0})
    assert len(opt.param_groups) == 2


def test_zero_grad():
    a, b = _params()
    opt = SGD([a, b], lr=0.1)
    _loss([a, b]).backward()
    opt.zero_grad(set_to_none=False)
    assert np.all(a.grad.numpy() == 0) and np.all(b.grad.numpy() == 0)
    _loss([a, b]).backward()
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_returns_closure_loss_and_runs_it_with_grad():
    ps = _params()
    opt = SGD(ps, lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = _loss(ps)
        loss.backward()
        calls.append(loss.item())
        return loss

    with cr.no_grad():
        out = opt.step(closure)
    assert calls and out.item() == calls[0]


def test_step_bumps_parameter_version():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (p * p).sum()  # saves p for backward
    opt = SGD([p], lr=0.1)
    p.grad = cr.ones(2)
    opt.step()
    with pytest.raises(RuntimeError):
        y.backward()


# ---------------------------------------------------------------------------- bad input
BAD_HYPER = [
    (SGD, dict(lr=-0.1), "learning rate"),
    (SGD, dict(lr=float("nan")), "learning rate"),
    (SGD, dict(lr=float("inf")), "learning rate"),
    (SGD, dict(momentum=-0.5), "momentum"),
    (SGD, dict(weight_decay=-1.0), "weight_decay"),
    (SGD, dict(nesterov=True), "Nesterov"),
    (SGD, dict(momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (Adam, dict(lr=-1e-3), "learning rate"),
    (Adam, dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
    (Adam, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    (Adam, dict(eps=-1e-8), "epsilon"),
    (AdamW, dict(weight_decay=float("nan")), "weight_decay"),
    (RMSprop, dict(alpha=-0.1), "alpha"),
    (RMSprop, dict(momentum=-1.0), "momentum"),
    (Adagrad, dict(lr_decay=-0.1), "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (Adadelta, dict(rho=1.5), "rho"),
    (NAdam, dict(momentum_decay=-1.0), "momentum_decay"),
    (RAdam, dict(lr=float("-inf")), "learning rate"),
]


@pytest.mark.parametrize("cls,kw,msg", BAD_HYPER)
def test_invalid_hyper_parameters(cls, kw, msg):
    with pytest.raises(ValueError, match=msg):
        cls(_params(), **kw)


def test_invalid_group_hyper_parameter_raises_before_any_group_is_added():
    a, b = _params()
    with pytest.raises(ValueError, match="learning rate"):
        Adam([{"params": [a]}, {"params": [b], "lr": -1.0}])


def test_bad_params():
    a, b = _params()
    with pytest.raises(TypeError, match="iterable"):
        SGD(a)
    with pytest.raises(ValueError, match="empty"):
        SGD([])
    with pytest.raises(TypeError, match="ordered"):
        SGD({a, b})
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([a * 2])
    with pytest.raises(ValueError, match="appears twice"):
        SGD([a, b, a])
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [a]}, {"params": [b, a]}])
    with pytest.raises(TypeError, match="only optimize Tensors"):
        SGD([a, np.zeros(3)])
    with pytest.raises(TypeError, match="floating point"):
        SGD([cr.tensor([1, 2])])


def test_grad_of_wrong_shape_raises_before_update():
    a, b = _params()
    opt = SGD([a, b], lr=0.1)
    before = a.detach().numpy().copy()
    a.grad = cr.ones(3, 2, dtype=cr.float64)
    b.grad = cr.ones(5, dtype=cr.float64)
    with pytest.raises(RuntimeError, match="shape"):
        opt.step()
    np.testing.assert_array_equal(a.detach().numpy(), before)


# ---------------------------------------------------------------------------- state dicts
def test_state_dict_layout_matches_pytorch():
    ps = _params()
    opt = Adam([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.1}], amsgrad=True)
    _train(opt, ps, 2)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.1
    assert set(sd["state"]) == {0, 1}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"] == 2
    assert sd["state"][1]["exp_avg"].shape == (2,)


@pytest.mark.parametrize("cls", ALL)
def test_state_keys(cls):
    expected = {
        SGD: {"momentum_buffer"},
        Adam: {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        AdamW: {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        RMSprop: {"step", "square_avg", "momentum_buffer", "grad_avg"},
        Adagrad: {"step", "sum"},
        Adadelta: {"step", "square_avg", "acc_delta"},
        NAdam: {"step", "mu_product", "exp_avg", "exp_avg_sq"},
        RAdam: {"step", "exp_avg", "exp_avg_sq"},
    }[cls]
    ps = _params()
    opt = cls(ps, **CONFIGS[cls])
    _train(opt, ps, 1)
    assert set(opt.state_dict()["state"][0]) == expected


@pytest.mark.parametrize("cls", ALL)
def test_save_mid_training_and_resume_is_exact(cls, tmp_path):
    # Uninterrupted run.
    ps = _params()
    opt = cls(ps, **CONFIGS[cls])
    sched = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    _train(opt, ps, 10, sched)
    final = [p.detach().numpy().copy() for p in ps]

    # Interrupted after 4 steps, saved, and resumed in fresh objects.
    ps1 = _params()
    opt1 = cls(ps1, **CONFIGS[cls])
    sched1 = cr.optim.lr_scheduler.StepLR(opt1, step_size=2, gamma=0.5)
    _train(opt1, ps1, 4, sched1)
    saved = roundtrip({"params": [p.detach() for p in ps1], "optim": opt1.state_dict(),
                       "sched": sched1.state_dict()}, tmp_path)

    ps2 = [cr.tensor(np.array(t.numpy()), dtype=cr.float64, requires_grad=True)
           for t in saved["params"]]
    opt2 = cls(ps2, **CONFIGS[cls])
    sched2 = cr.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    opt2.load_state_dict(saved["optim"])
    sched2.load_state_dict(saved["sched"])
    assert opt2.param_groups[0]["lr"] == opt1.param_groups[0]["lr"]
    _train(opt2, ps2, 6, sched2)
    for a, b in zip(final, ps2):
        np.testing.assert_array_equal(a, b.detach().numpy())
    # The loaded state is a copy: training the new optimizer left the old one alone.
    assert opt1.state[ps1[0]] is not opt2.state[ps2[0]]


def test_load_state_dict_copies_and_casts():
    p32 = cr.zeros(3, requires_grad=True)
    p64 = cr.zeros(3, dtype=cr.float64, requires_grad=True)
    opt64 = Adam([p64], lr=0.1)
    p64.grad = cr.ones(3, dtype=cr.float64)
    opt64.step()
    opt32 = Adam([p32], lr=0.1)
    opt32.load_state_dict(opt64.state_dict())
    st = opt32.state[p32]
    assert st["exp_avg"].dtype == cr.float32 and st["step"] == 1
    assert st["exp_avg"]._data is not opt64.state[p64]["exp_avg"]._data


def test_load_accepts_tensor_step_and_string_keys():
    p = cr.zeros(2, dtype=cr.float64, requires_grad=True)
    opt = Adam([p])
    sd = {"state": {"0": {"step": cr.tensor(3.0), "exp_avg": cr.ones(2),
                          "exp_avg_sq": cr.ones(2)}},
          "param_groups": [dict(opt.defaults, betas=[0.9, 0.999], params=[0])]}
    opt.load_state_dict(sd)
    assert opt.state[p]["step"] == 3
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def _trained(cls, **kw):
    ps = _params()
    opt = cls(ps, **kw)
    _train(opt, ps, 2)
    return opt


def _assert_unchanged(opt, before_groups, before_state):
    assert opt.param_groups == before_groups
    assert {id(k): sorted(v) for k, v in opt.state.items()} == before_state


@pytest.mark.parametrize("make_bad,msg", [
    (lambda sd: _trained(SGD, lr=0.1, momentum=0.9).state_dict(), "another optimizer"),
    (lambda sd: {**sd, "param_groups": sd["param_groups"] * 2}, "parameter groups"),
    (lambda sd: {**sd, "param_groups": [{**sd["param_groups"][0], "params": [0]}]},
     "parameters"),
    (lambda sd: {"state": {0: {**sd["state"][0], "exp_avg": cr.zeros(4, 4)}},
                 "param_groups": sd["param_groups"]}, "shape"),
    (lambda sd: {"state": {0: {"momentum_buffer": cr.zeros(3, 2)}},
                 "param_groups": sd["param_groups"]}, "another optimizer"),
    (lambda sd: {"state": {}, "param_groups": [{**sd["param_groups"][0], "lr": -1.0}]},
     "learning rate"),
    (lambda sd: {"state": {7: {}}, "param_groups": sd["param_groups"]}, "parameter 7"),
    (lambda sd: {"param_groups": sd["param_groups"]}, "'state'"),
])
def test_bad_state_dict_raises_before_changing_anything(make_bad, msg):
    opt = _trained(Adam, lr=0.1)
    bad = make_bad(opt.state_dict())
    groups = [dict(g) for g in opt.param_groups]
    state = {id(k): sorted(v) for k, v in opt.state.items()}
    steps = [s["step"] for s in opt.state.values()]
    with pytest.raises(ValueError, match=msg):
        opt.load_state_dict(bad)
    _assert_unchanged(opt, groups, state)
    assert [s["step"] for s in opt.state.values()] == steps


def test_state_dict_holds_only_serialisable_values():
    allowed = (cr.Tensor, int, float, str, bool, type(None))

    def check(x):
        if isinstance(x, dict):
            for k, v in x.items():
                assert isinstance(k, (int, str))
                check(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                check(v)
        else:
            assert isinstance(x, allowed), type(x)
            if isinstance(x, float):
                assert math.isfinite(x)

    for cls in ALL:
        check(_trained(cls, **CONFIGS[cls]).state_dict())


def test_lbfgs_and_plateau_state_survive_save_and_load(tmp_path):
    x = cr.tensor([-1.5, 2.0], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.LBFGS([x], max_iter=4, line_search_fn="strong_wolfe")
    plateau = cr.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    opt.step(closure)
    plateau.step(1.0)
    saved = roundtrip({"x": x.detach(), "opt": opt.state_dict(), "sched": plateau.state_dict()},
                      tmp_path)
    assert saved["sched"]["best"] == 1.0 and saved["sched"]["mode_worse"] == math.inf
    for _ in range(2):
        opt.step(closure)
    ref = x.detach().numpy().copy()

    x2 = cr.tensor(saved["x"].numpy(), dtype=cr.float64, requires_grad=True)
    opt2 = cr.optim.LBFGS([x2], max_iter=4, line_search_fn="strong_wolfe")
    plateau2 = cr.optim.lr_scheduler.ReduceLROnPlateau(opt2, patience=0)
    opt2.load_state_dict(saved["opt"])
    plateau2.load_state_dict(saved["sched"])
    assert plateau2.best == 1.0

    def closure2():
        opt2.zero_grad()
        loss = (1 - x2[0]) ** 2 + 100 * (x2[1] - x2[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(2):
        opt2.step(closure2)
    np.testing.assert_array_equal(x2.detach().numpy(), ref)
