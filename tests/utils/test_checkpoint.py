"""Gradient checkpointing: same gradients, less memory held for backward, plans that keep
to a budget, dropout and batch norm handled.

Most tests use a 64-layer MLP 32 wide with a batch of 16 (float64) so the file stays fast;
``test_acceptance_size`` runs the issue's 64 x 256 x 128 network once, and
``benchmarks/checkpoint.py`` reports the time overhead at that size.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import memory_report
from chainrule.utils.checkpoint import (
    Plan,
    Segment,
    checkpoint,
    checkpoint_sequential,
    find_modules,
    plan_checkpoints,
)

DEPTH, WIDTH, BATCH = 64, 32, 16


def mlp(depth=DEPTH, width=WIDTH):
    mods = []
    for i in range(depth):
        mods.append(cr.nn.Linear(width, width, dtype=cr.float64))
        if i < depth - 1:
            mods.append(cr.nn.ReLU())
    return cr.nn.Sequential(*mods)


def grads_of(net, *extra):
    out = [p.grad.numpy().copy() for p in net.parameters()]
    out += [t.grad.numpy().copy() for t in extra]
    net.zero_grad()
    for t in extra:
        t.grad = None
    return out


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def deep():
    cr.manual_seed(1)
    net = mlp()
    x = cr.randn(BATCH, WIDTH, dtype=cr.float64)
    plain = memory_report(lambda x: net(x).sum(), x)
    return net, x, plain, grads_of(net)


@pytest.mark.slow
def test_acceptance_size():
    # 64 layers, width 256, batch 128, float64: exact gradients, sqrt peak <= 1/4, budget kept
    cr.manual_seed(2)
    net = mlp(64, 256)
    x = cr.randn(128, 256, dtype=cr.float64)
    plain = memory_report(lambda x: net(x).sum(), x)
    g0 = grads_of(net)
    rep = memory_report(lambda x: checkpoint_sequential(net, "sqrt", x).sum(), x)
    assert same(grads_of(net), g0)
    assert rep.peak_bytes <= plain.peak_bytes / 4
    budget = plain.peak_bytes // 3
    plan = plan_checkpoints(net, x, budget)
    rep = memory_report(lambda x: checkpoint_sequential(net, plan, x).sum(), x)
    assert rep.peak_bytes <= budget
    assert same(grads_of(net), g0)


def test_sqrt_same_gradients_and_quarter_peak(deep):
    net, x, plain, g0 = deep
    rep = memory_report(lambda x: checkpoint_sequential(net, "sqrt", x).sum(), x)
    assert same(grads_of(net), g0)
    assert rep.peak_bytes <= plain.peak_bytes / 4
    assert rep.held_after_backward == 0  # stored segment inputs are freed too


def test_budget_plan_respects_budget(deep):
    net, x, plain, g0 = deep
    budget = plain.peak_bytes // 3
    plan = plan_checkpoints(net, x, budget)
    assert isinstance(plan, Plan)
    assert plan.predicted_peak <= budget
    assert plan.segments[0].start == 0 and plan.segments[-1].stop == len(net)
    assert all(a.stop == b.start for a, b in zip(plan.segments, plan.segments[1:]))
    assert plan.recompute_cost >= 0 and plan.forward_cost > 0
    text = str(plan)
    assert "predicted peak" in text and "recompute" in text
    rep = memory_report(lambda x: checkpoint_sequential(net, plan, x).sum(), x)
    assert rep.peak_bytes <= budget
    assert same(grads_of(net), g0)


def test_looser_budget_recomputes_less(deep):
    net, x, plain, _ = deep
    tight = plan_checkpoints(net, x, plain.peak_bytes // 4)
    loose = plan_checkpoints(net, x, plain.peak_bytes // 2)
    n_tight = sum(s.stop - s.start for s in tight.segments if s.checkpointed)
    n_loose = sum(s.stop - s.start for s in loose.segments if s.checkpointed)
    assert n_loose < n_tight


def test_budget_keyword_returns_plan(deep):
    net, x, plain, g0 = deep
    budget = plain.peak_bytes // 2
    out, plan = checkpoint_sequential(net, None, x, budget_bytes=budget, return_plan=True)
    out.sum().backward()
    assert same(grads_of(net), g0)
    assert plan.budget_bytes == budget and plan.predicted_peak <= budget


def test_return_plan_for_sqrt_predicts_measured_peak(deep):
    net, x, plain, _ = deep
    _, plan = checkpoint_sequential(net, "sqrt", x, return_plan=True)
    assert len(plan.segments) == 8  # sqrt(64 layers)
    assert plan.plain_peak == plain.peak_bytes
    rep = memory_report(lambda x: checkpoint_sequential(net, plan, x).sum(), x)
    net.zero_grad()
    assert rep.peak_bytes <= plan.predicted_peak


def test_budget_below_one_layer_says_minimum(deep):
    net, x, _, _ = deep
    with pytest.raises(ValueError, match=r"largest single layer.*needs \d+ bytes"):
        plan_checkpoints(net, x, 100)


def test_budget_no_plan_fits_gives_smallest_peak(deep):
    net, x, _, _ = deep
    layer = BATCH * WIDTH * 8
    with pytest.raises(ValueError, match=r"smallest peak any plan reaches is \d+"):
        plan_checkpoints(net, x, 3 * layer)


def test_int_segments_match_plain(deep):
    net, x, _, g0 = deep
    checkpoint_sequential(net, 5, x).sum().backward()
    assert same(grads_of(net), g0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "cube"])
def test_bad_segments(bad):
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(mlp(2), bad, cr.randn(2, WIDTH, dtype=cr.float64))


def test_segments_and_budget_exclusive():
    with pytest.raises(ValueError, match="not both"):
        checkpoint_sequential(mlp(2), 2, cr.randn(2, WIDTH, dtype=cr.float64),
                              budget_bytes=10**6)


def test_plan_for_other_length_rejected():
    plan = Plan([Segment(0, 5, False)])
    with pytest.raises(ValueError, match="covers 5 modules but 3"):
        checkpoint_sequential(mlp(2), plan, cr.randn(2, WIDTH, dtype=cr.float64))


def block(p=0.5):
    return cr.nn.Sequential(cr.nn.Linear(6, 12, dtype=cr.float64), cr.nn.BatchNorm1d(
        12, dtype=cr.float64), cr.nn.ReLU(), cr.nn.Dropout(p), cr.nn.Linear(12, 3,
                                                                             dtype=cr.float64))


def run_mode(net, x, mode):
    cr.manual_seed(7)
    if mode == "plain":
        y = net(x)
    elif mode == "sequential":
        y = checkpoint_sequential(net, 2, x)
    else:
        y = checkpoint(net, x, use_reentrant=(mode == "reentrant"))
    (y ** 2).sum().backward()
    bn = net[1]
    state = (bn.running_mean.numpy().copy(), bn.running_var.numpy().copy(),
             int(bn.num_batches_tracked.item()))
    return grads_of(net, x), state, cr.get_rng_state()


@pytest.mark.parametrize("mode", ["nonreentrant", "reentrant", "sequential"])
def test_dropout_and_batchnorm(mode):
    cr.manual_seed(3)
    net = block()
    x = cr.randn(10, 6, dtype=cr.float64, requires_grad=True)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    g0, s0, rng0 = run_mode(net, x, "plain")
    net.load_state_dict(start)
    g1, s1, rng1 = run_mode(net, x, mode)
    assert same(g1, g0)  # same dropout masks
    assert np.array_equal(s1[0], s0[0]) and np.array_equal(s1[1], s0[1])
    assert s1[2] == s0[2] == 1  # running statistics updated once
    assert rng1 == rng0  # the random stream continues as without checkpointing


def test_dropout_differs_without_preserved_rng():
    cr.manual_seed(3)
    net = block(0.5)
    net[1].eval()
    x = cr.randn(50, 6, dtype=cr.float64, requires_grad=True)
    g0, _, _ = run_mode(net, x, "plain")
    cr.manual_seed(7)
    checkpoint(net, x, preserve_rng_state=False).pow(2).sum().backward()
    assert not same(grads_of(net, x), g0)


def test_no_input_requires_grad_warns_but_is_correct():
    net = mlp(3)
    x = cr.randn(4, WIDTH, dtype=cr.float64)
    net(x).sum().backward()
    g0 = grads_of(net)
    with pytest.warns(UserWarning, match="none of the tensor inputs"):
        y = checkpoint(net, x)
    y.sum().backward()
    assert same(grads_of(net), g0)


def test_autograd_grad_reaches_parameters():
    net = mlp(3)
    x = cr.randn(4, WIDTH, dtype=cr.float64, requires_grad=True)
    ref = cr.autograd.grad(net(x).sum(), [x, net[0].weight])
    got = cr.autograd.grad(checkpoint(net, x).sum(), [x, net[0].weight])
    assert same([g.numpy() for g in got], [g.numpy() for g in ref])


def test_function_with_kwargs_and_several_outputs():
    a = cr.randn(5, dtype=cr.float64, requires_grad=True)
    b = cr.randn(5, dtype=cr.float64, requires_grad=True)

    def fn(u, v, scale=1.0):
        return (u * v).tanh() * scale, (u.exp() * v).sin()

    p, q = fn(a, b, scale=3.0)
    (p.sum() + q.sum()).backward()
    g0 = [a.grad.numpy().copy(), b.grad.numpy().copy()]
    a.grad = b.grad = None
    p, q = checkpoint(fn, a, b, scale=3.0)
    (p.sum() + q.sum()).backward()
    assert same([a.grad.numpy(), b.grad.numpy()], g0)


def test_retain_graph_recomputes_again():
    x = cr.randn(4, dtype=cr.float64, requires_grad=True)
    y = checkpoint(lambda t: (t.sin() * t).sum(), x)
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    assert np.allclose(x.grad.numpy(), 2 * first)


def test_create_graph_is_refused():
    x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    y = checkpoint(lambda t: (t ** 3).sum(), x)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        cr.autograd.grad(y, x, create_graph=True)


def test_nondeterministic_function_is_caught():
    calls = []

    def fn(t):
        calls.append(1)
        return (t * t).sum() if len(calls) == 1 else (t * t * t).sum()

    x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    y = checkpoint(fn, x)
    with pytest.raises(RuntimeError, match="same operations"):
        y.backward()


def test_no_grad_mode_just_runs():
    net = mlp(2)
    x = cr.randn(2, WIDTH, dtype=cr.float64, requires_grad=True)
    with cr.no_grad():
        y = checkpoint(net, x)
    assert not y.requires_grad
    assert np.allclose(y.numpy(), net(x).detach().numpy())


def test_reentrant_rejects_kwargs():
    x = cr.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="use_reentrant=False"):
        checkpoint(lambda t, k=1: t * k, x, k=2, use_reentrant=True)


def test_find_modules_sees_closures_and_bound_methods():
    net = mlp(2)
    other = cr.nn.Linear(2, 2)

    def fn(x):
        return other(net(x))

    found = find_modules(fn)
    assert net in found and other in found
    assert net[0] not in found  # reached through net
    assert find_modules(net.forward) == [net]
