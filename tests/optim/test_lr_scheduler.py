"""Each scheduler's learning-rate sequence over 100 steps against its closed form."""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import lr_scheduler as S

N = 100
BASE = 0.1


def _opt(cls=cr.optim.SGD, lrs=(BASE,), **kw):
    groups = [{"params": [cr.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def _sequence(opt, sched, n=N):
    """The rate of group 0 at epochs 0..n-1 (as seen by the optimizer and get_last_lr)."""
    out = []
    for _ in range(n):
        assert sched.get_last_lr()[0] == opt.param_groups[0]["lr"]
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def _assert_seq(got, expected, rtol=1e-12):
    np.testing.assert_allclose(got, np.array(expected, dtype=float), rtol=rtol, atol=1e-15)


EPOCHS = range(N)


def test_lambda_lr_per_group():
    opt = _opt(lrs=(0.1, 0.2))
    sched = S.LambdaLR(opt, [lambda e: 0.9**e, lambda e: 1.0 / (1 + e)])
    got = []
    for _ in EPOCHS:
        got.append([g["lr"] for g in opt.param_groups])
        sched.step()
    _assert_seq(np.array(got)[:, 0], [0.1 * 0.9**e for e in EPOCHS])
    _assert_seq(np.array(got)[:, 1], [0.2 / (1 + e) for e in EPOCHS])


def test_multiplicative_lr():
    opt = _opt()
    sched = S.MultiplicativeLR(opt, lambda e: 1 - 0.001 * e)
    expected = [BASE * math.prod(1 - 0.001 * k for k in range(1, e + 1)) for e in EPOCHS]
    _assert_seq(_sequence(opt, sched), expected)


def test_step_lr():
    opt = _opt()
    sched = S.StepLR(opt, step_size=7, gamma=0.5)
    _assert_seq(_sequence(opt, sched), [BASE * 0.5 ** (e // 7) for e in EPOCHS])


def test_multistep_lr_with_repeated_milestone():
    opt = _opt()
    ms = [10, 30, 30, 60]
    sched = S.MultiStepLR(opt, milestones=ms, gamma=0.3)
    _assert_seq(_sequence(opt, sched), [BASE * 0.3 ** bisect_right(ms, e) for e in EPOCHS])


def test_exponential_lr():
    opt = _opt()
    sched = S.ExponentialLR(opt, gamma=0.97)
    _assert_seq(_sequence(opt, sched), [BASE * 0.97**e for e in EPOCHS])


def test_cosine_annealing_lr_past_t_max():
    opt = _opt()
    sched = S.CosineAnnealingLR(opt, T_max=30, eta_min=0.01)
    expected = [0.01 + (BASE - 0.01) * (1 + math.cos(math.pi * e / 30)) / 2 for e in EPOCHS]
    np.testing.assert_allclose(_sequence(opt, sched), expected, rtol=0, atol=1e-12)


def _sgdr(e, t0, mult, lo):
    start, ti = 0.0, t0
    while e >= start + ti:
        start += ti
        ti *= mult
    return lo + (BASE - lo) * (1 + math.cos(math.pi * (e - start) / ti)) / 2


@pytest.mark.parametrize("mult", [1, 2])
def test_cosine_annealing_warm_restarts(mult):
    opt = _opt()
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=mult, eta_min=0.001)
    _assert_seq(_sequence(opt, sched), [_sgdr(e, 10, mult, 0.001) for e in EPOCHS])


def test_cosine_annealing_warm_restarts_fractional_epochs():
    opt = _opt()
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=0.001)
    for k in range(1, 200):
        e = k * 0.35
        sched.step(e)
        assert opt.param_groups[0]["lr"] == pytest.approx(_sgdr(e, 10, 2, 0.001), rel=1e-9)
        assert sched.last_epoch == math.floor(e)


def test_linear_lr():
    opt = _opt()
    sched = S.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=40)
    _assert_seq(_sequence(opt, sched), [BASE * (0.25 + 0.75 * min(40, e) / 40) for e in EPOCHS])


def test_linear_lr_decreasing():
    opt = _opt()
    sched = S.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=50)
    _assert_seq(_sequence(opt, sched), [BASE * (1.0 - 0.9 * min(50, e) / 50) for e in EPOCHS])


def test_constant_lr():
    opt = _opt()
    sched = S.ConstantLR(opt, factor=0.5, total_iters=20)
    _assert_seq(_sequence(opt, sched), [BASE * (0.5 if e < 20 else 1.0) for e in EPOCHS])


def test_polynomial_lr():
    opt = _opt()
    sched = S.PolynomialLR(opt, total_iters=60, power=2.0)
    got = _sequence(opt, sched)
    expected = [BASE * (1 - min(60, e) / 60) ** 2 for e in EPOCHS]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_sequential_lr_warmup_then_cosine():
    opt = _opt()
    warm = S.LinearLR(opt, start_factor=0.1, total_iters=10)
    cos = S.CosineAnnealingLR(opt, T_max=90)
    sched = S.SequentialLR(opt, [warm, cos], milestones=[10])

    def closed(e):
        if e < 10:
            return BASE * (0.1 + 0.9 * e / 10)
        return BASE * (1 + math.cos(math.pi * (e - 10) / 90)) / 2

    np.testing.assert_allclose(_sequence(opt, sched), [closed(e) for e in EPOCHS],
                               rtol=0, atol=1e-12)


def test_sequential_lr_three_stages():
    opt = _opt()
    a = S.ConstantLR(opt, factor=0.1, total_iters=100)
    b = S.ExponentialLR(opt, gamma=0.9)
    c = S.StepLR(opt, step_size=5, gamma=0.5)
    sched = S.SequentialLR(opt, [a, b, c], milestones=[5, 30])

    def closed(e):
        if e < 5:
            return BASE * 0.1
        if e < 30:
            return BASE * 0.9 ** (e - 5)
        return BASE * 0.5 ** ((e - 30) // 5)

    _assert_seq(_sequence(opt, sched), [closed(e) for e in EPOCHS])


def test_chained_scheduler():
    opt = _opt()
    sched = S.ChainedScheduler([S.ConstantLR(opt, factor=0.5, total_iters=5),
                                S.ExponentialLR(opt, gamma=0.9)])
    _assert_seq(_sequence(opt, sched), [BASE * 0.9**e * (0.5 if e < 5 else 1.0)
                                        for e in EPOCHS])


def _onecycle(e, max_lr, total, pct, strategy="cos", three=False):
    init = max_lr / 25
    low = init / 1e4

    def ann(a, b, p):
        if strategy == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * p)) / 2
        return a + (b - a) * p

    up_end = pct * total - 1
    if three:
        down_end = 2 * pct * total - 2
        if e <= up_end:
            return ann(init, max_lr, e / up_end), ann(0.95, 0.85, e / up_end)
        if e <= down_end:
            p = (e - up_end) / (down_end - up_end)
            return ann(max_lr, init, p), ann(0.85, 0.95, p)
        p = (e - down_end) / (total - 1 - down_end)
        return ann(init, low, p), 0.95
    if e <= up_end:
        return ann(init, max_lr, e / up_end), ann(0.95, 0.85, e / up_end)
    p = (e - up_end) / (total - 1 - up_end)
    return ann(max_lr, low, p), ann(0.85, 0.95, p)


@pytest.mark.parametrize("strategy,three", [("cos", False), ("linear", False), ("cos", True)])
def test_one_cycle_lr_and_momentum(strategy, three):
    opt = _opt(momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=N, anneal_strategy=strategy,
                         three_phase=three)
    lrs, moms = [], []
    for _ in EPOCHS:
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    exp = [_onecycle(e, 1.0, N, 0.3, strategy, three) for e in EPOCHS]
    np.testing.assert_allclose(lrs, [x[0] for x in exp], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(moms, [x[1] for x in exp], rtol=1e-12)
    assert sched.last_epoch == N  # stepping to total_steps is allowed; beyond it raises
    with pytest.raises(ValueError, match="total steps"):
        sched.step()


def test_one_cycle_cycles_adam_beta1():
    opt = _opt(cr.optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=0.5, epochs=10, steps_per_epoch=10)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    for _ in range(30):
        sched.step()
    assert opt.param_groups[0]["betas"][0] == pytest.approx(_onecycle(30, 0.5, 100, 0.3)[1])
    assert opt.param_groups[0]["betas"][1] == 0.999


def _cyclic(e, mode, gamma=0.99):
    pos = e % 25
    frac = pos / 10 if pos <= 10 else (25 - pos) / 15
    cycle = e // 25 + 1
    scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma**e}[mode]
    return 0.1 + 0.9 * frac * scale, 0.9 - 0.1 * frac * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr(mode):
    opt = _opt(momentum=0.9)
    sched = S.CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=10, step_size_down=15,
                       mode=mode, gamma=0.99)
    lrs, moms = [], []
    for _ in EPOCHS:
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        sched.step()
    exp = [_cyclic(e, mode) for e in EPOCHS]
    np.testing.assert_allclose(lrs, [x[0] for x in exp], rtol=1e-12)
    np.testing.assert_allclose(moms, [x[1] for x in exp], rtol=1e-12)


def test_cyclic_lr_custom_scale_fn_in_iterations():
    opt = _opt()
    sched = S.CyclicLR(opt, 0.1, 1.0, step_size_up=5, scale_fn=lambda x: 1 / (1 + x),
                       scale_mode="iterations", cycle_momentum=False)
    got = _sequence(opt, sched, 30)
    frac = [1 - abs(e % 10 - 5) / 5 for e in range(30)]
    _assert_seq(got, [0.1 + 0.9 * f / (1 + e) for e, f in enumerate(frac)])
    assert "_scale_fn_custom" not in sched.state_dict()


# ---------------------------------------------------------------------------- plateau
def _plateau_run(metrics, lr=1.0, **kw):
    opt = _opt(lrs=(lr,))
    sched = S.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [out[-1]]
    return out, sched


def test_plateau_patience():
    out, _ = _plateau_run([5, 5, 5, 5, 4, 4, 4, 4, 4, 4], patience=2, factor=0.5)
    # Epoch 1 sets best=5; bad epochs 2, 3, 4 -> the third (> patience) reduces.
    assert out == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_plateau_cooldown_ignores_bad_epochs():
    out, sched = _plateau_run([5] * 12, patience=1, factor=0.5, cooldown=2)
    # Reduce at epoch 3 (2 bad), then 2 cooldown epochs count nothing, then 2 bad again.
    assert out == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125]
    assert sched.cooldown_counter == 1 and sched.in_cooldown


def test_plateau_relative_threshold():
    # 9.5 is not 10% better than 10, so it counts as a bad epoch; 8.9 is.
    out, sched = _plateau_run([10, 9.5, 9.2, 8.9, 8.5, 8.2], patience=1, factor=0.1,
                              threshold=0.1)
    assert out == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01])
    assert sched.best == 8.9


def test_plateau_absolute_threshold_max_mode():
    out, sched = _plateau_run([1.0, 1.05, 1.2, 1.25, 1.29, 1.31, 1.5], mode="max",
                              threshold=0.1, threshold_mode="abs", patience=1, factor=0.5)
    # Improvements need +0.1: 1.2 (vs 1.0) and 1.5 (vs 1.2) count; 1.05 and 1.25.. don't.
    assert out == [1, 1, 1, 1, 0.5, 0.5, 0.5]
    assert sched.best == 1.5


def test_plateau_min_lr_and_eps():
    out, _ = _plateau_run([1.0] * 8, patience=0, factor=0.5, min_lr=0.2)
    assert out == [1, 0.5, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
    out, _ = _plateau_run([1.0] * 3, lr=1e-8, patience=0, factor=0.5, eps=1e-8)
    assert out == [1e-8, 1e-8, 1e-8]  # the change is below eps: skipped


def test_plateau_bad_arguments():
    opt = _opt()
    for kw, msg in [(dict(factor=1.0), "factor"), (dict(mode="avg"), "mode"),
                    (dict(threshold_mode="pct"), "threshold_mode"),
                    (dict(min_lr=[0.1, 0.2]), "min_lr"), (dict(patience=-1), "patience")]:
        with pytest.raises(ValueError, match=msg):
            S.ReduceLROnPlateau(opt, **kw)


# ---------------------------------------------------------------------------- state
def _make_all(opt):
    return [
        S.StepLR(opt, 3, 0.5),
        S.MultiStepLR(opt, [5, 9, 9], 0.5),
        S.CosineAnnealingLR(opt, 7, 0.01),
        S.CosineAnnealingWarmRestarts(opt, 3, 2),
        S.PolynomialLR(opt, 8, 2.0),
        S.LinearLR(opt, 0.2, 1.0, 6),
        S.OneCycleLR(opt, 1.0, total_steps=30),
        S.CyclicLR(opt, 0.01, 0.1, step_size_up=4),
    ]


@pytest.mark.parametrize("k", range(8))
def test_state_dict_resume_is_exact(k):
    opt = _opt(momentum=0.9)
    sched = _make_all(opt)[k]
    for _ in range(6):
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd
    ref = []
    for _ in range(10):
        sched.step()
        ref.append(sched.get_last_lr()[0])

    opt2 = _opt(momentum=0.9)
    sched2 = _make_all(opt2)[k]
    sched2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = sd["_last_lr"][0]
    got = []
    for _ in range(10):
        sched2.step()
        got.append(sched2.get_last_lr()[0])
    assert got == ref


def test_sequential_state_dict_round_trip():
    opt = _opt()
    sched = S.SequentialLR(opt, [S.ConstantLR(opt, 0.5, 3), S.ExponentialLR(opt, 0.9)], [3])
    for _ in range(5):
        sched.step()
    sd = sched.state_dict()
    assert len(sd["_schedulers"]) == 2 and "optimizer" not in sd["_schedulers"][0]
    opt2 = _opt()
    sched2 = S.SequentialLR(opt2, [S.ConstantLR(opt2, 0.5, 3), S.ExponentialLR(opt2, 0.9)],
                            [3])
    sched2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched2.last_epoch == 6


def test_epoch_argument_is_deprecated_but_jumps_by_closed_form():
    opt = _opt()
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(7)
    assert opt.param_groups[0]["lr"] == pytest.approx(BASE * 0.25)


@pytest.mark.parametrize("make,msg", [
    (lambda o: S.StepLR(o, step_size=0), "step_size"),
    (lambda o: S.ConstantLR(o, factor=1.5), "factor"),
    (lambda o: S.LinearLR(o, start_factor=0.0), "starting"),
    (lambda o: S.LinearLR(o, end_factor=2.0), "ending"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=0), "T_0"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "T_mult"),
    (lambda o: S.OneCycleLR(o, 1.0), "total_steps"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"), "anneal"),
    (lambda o: S.CyclicLR(o, 0.1, 1.0, mode="zigzag"), "mode"),
    (lambda o: S.CyclicLR(o, [0.1, 0.2], 1.0), "one per parameter group"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]), "milestones"),
])
def test_bad_scheduler_arguments(make, msg):
    opt = _opt()
    with pytest.raises(ValueError, match=msg):
        make(opt)
    assert opt.param_groups[0]["lr"] == BASE


def test_cycle_momentum_needs_momentum():
    opt = _opt(cr.optim.Adagrad)
    with pytest.raises(ValueError, match="momentum"):
        S.OneCycleLR(opt, 1.0, total_steps=10)
    S.OneCycleLR(opt, 1.0, total_steps=10, cycle_momentum=False)


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="Optimizer"):
        S.StepLR(object(), 3)
    opt, other = _opt(), _opt()
    with pytest.raises(ValueError, match="different optimizer"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(other, 2)], milestones=[3])
    with pytest.raises(ValueError, match="different optimizer"):
        S.ChainedScheduler([S.StepLR(opt, 2), S.StepLR(other, 2)])
