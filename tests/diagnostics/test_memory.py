"""memory_report / SavedMemoryTracker: bytes saved for backward, per op and module, over time."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import MemoryReport, SavedMemoryTracker, memory_report


def test_small_mlp_exact_bytes_and_names():
    net = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 3), cr.nn.Tanh())
    x = cr.randn(16, 4)
    rep = memory_report(net, x)
    assert isinstance(rep, MemoryReport)
    # relu's output (also the second linear's input, counted once) and tanh's output;
    # the input batch and the weights are held by their owners and not counted
    assert rep.total_bytes == 16 * 8 * 4 + 16 * 3 * 4
    assert rep.peak_bytes == rep.held_after_forward == rep.total_bytes
    assert rep.held_after_backward == 0
    assert rep.by_op == {"relu": 512, "tanh": 192}
    assert rep.by_module == {"1 (ReLU)": 512, "3 (Tanh)": 192}
    assert [r.saves for r in rep.records] == [2, 1]
    assert net[0].weight.grad is not None  # backward ran
    text = str(rep)
    assert "by op" in text and "relu" in text and "3 (Tanh)" in text


def test_array_saved_by_several_ops_counted_once():
    x = cr.randn(100, dtype=cr.float64, requires_grad=True)

    def fn(x):
        y = x.exp()      # saves its output y
        return (y * y * y.sin()).sum()   # saves y (twice), y*y, y.sin() and y again

    rep = memory_report(fn, x)
    assert rep.total_bytes == 3 * 800  # y, y*y, sin(y)
    assert rep.by_op["exp"] == 800


def test_views_count_their_owner():
    x = cr.randn(10, 10, dtype=cr.float64, requires_grad=True)
    rep = memory_report(lambda x: (x * 2.0).t().exp().sum(), x)
    # mul saves nothing (scalar); exp saves its output (own array)
    assert rep.total_bytes == 800


def test_peak_is_maximum_over_time_not_sum():
    x = cr.randn(1000, dtype=cr.float64, requires_grad=True)
    with SavedMemoryTracker() as tr:
        for _ in range(3):
            x.exp().sum().backward()  # each graph is freed before the next is built
    assert tr.total_bytes == 3 * 8000
    assert tr.peak_bytes == 8000
    assert tr.live_bytes == 0
    assert tr.timeline == [8000, 0, 8000, 0, 8000, 0]


def test_backward_frees_progressively():
    x = cr.randn(50, dtype=cr.float64, requires_grad=True)

    def fn(x):
        for _ in range(4):
            x = x.tanh()  # saves its output
        return x.sum()

    rep = memory_report(fn, x)
    assert rep.peak_bytes == 4 * 400
    assert rep.timeline == [400, 800, 1200, 1600, 1200, 800, 400, 0]


def test_retained_graph_stays_counted_until_dropped():
    x = cr.randn(10, dtype=cr.float64, requires_grad=True)
    with SavedMemoryTracker() as tr:
        y = x.exp().sum()
    y.backward(retain_graph=True)
    assert tr.live_bytes == 80
    del y
    assert tr.live_bytes == 0


def test_exclude_and_leaves_not_counted():
    w = cr.randn(20, dtype=cr.float64, requires_grad=True)
    c = cr.randn(20, dtype=cr.float64)
    with SavedMemoryTracker(exclude=[c]) as tr:
        y = (w * c).sum()   # saves w (a leaf that requires grad) and c (excluded)
    assert tr.total_bytes == 0
    with SavedMemoryTracker() as tr2:
        y = (w * c).sum()
    assert tr2.total_bytes == 160  # c is counted when not excluded
    y.backward()


def test_nested_modules_name_the_innermost():
    inner = cr.nn.Sequential(cr.nn.Linear(3, 3), cr.nn.Sigmoid())
    net = cr.nn.Sequential(inner, cr.nn.Linear(3, 2))
    rep = memory_report(lambda x: net(x).sum(), cr.randn(5, 3))
    assert rep.by_module == {"0.1 (Sigmoid)": 5 * 3 * 4}


def test_module_hooks_removed_afterwards():
    net = cr.nn.Linear(3, 3)
    memory_report(net, cr.randn(2, 3))
    assert not net._forward_pre_hooks and not net._forward_hooks


def test_output_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        memory_report(lambda x: x * 2, cr.randn(3))
    rep = memory_report(lambda x: x.exp(), cr.randn(3, requires_grad=True), backward=False)
    assert rep.total_bytes == 12


def test_composes_with_compression_and_checkpoint():
    from chainrule.utils.checkpoint import checkpoint

    x = cr.randn(64, 64, requires_grad=True)

    def body(t):
        return t.tanh().exp()

    plain = memory_report(lambda x: body(x).sum(), x)

    def compressed(x):
        with cr.autograd.graph.compress_saved("float16"):
            return body(x).sum()

    assert memory_report(compressed, x).peak_bytes * 2 == plain.peak_bytes
    ck = memory_report(lambda x: checkpoint(body, x).sum(), x)
    # forward keeps nothing; backward recomputes both outputs at once
    assert ck.held_after_forward == 0
    assert ck.peak_bytes == plain.peak_bytes
    assert ck.held_after_backward == 0
    assert np.isfinite(x.grad.numpy()).all()
