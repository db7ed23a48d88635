"""explain(loss): backward order, local rules, gradient norms, fan-in; no recursion."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import explain


def test_order_rules_norms_and_fan_in():
    w = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = w * 2.0
    loss = (h * h).sum() + h.sum()          # h fans out to three uses
    ex = explain(loss)
    names = [e.name for e in ex.entries]
    assert names[0] == "add" and names[-1] == "leaf"
    by_name = {e.name: e for e in ex.entries}
    assert by_name["add"].grad_norm == pytest.approx(1.0)
    h_entry = [e for e in ex.entries if e.name == "mul" and e.fan_in == 3]
    assert len(h_entry) == 1                 # h = w * 2 receives the sum of 3 contributions
    # dL/dh = 2h + 1
    expected = np.linalg.norm(2 * (2 * np.array([1.0, -2.0, 3.0])) + 1)
    assert h_entry[0].grad_norm == pytest.approx(expected, rel=1e-6)
    leaf = ex.entries[-1]
    assert leaf.grad_norm == pytest.approx(2 * expected, rel=1e-6)
    assert "g * b" in h_entry[0].rule
    assert w.grad is None                    # the probe does not touch .grad
    # every node runs after all of its consumers
    pos = {e.index: k for k, e in enumerate(ex.entries)}
    for e in ex.entries:
        for i in e.inputs:
            assert pos[i] > pos[e.index]


def test_text_fits_and_mentions_fan_in():
    x = cr.randn(4, 3)
    w = cr.randn(3, 2, requires_grad=True)
    h = (x @ w).tanh()
    loss = (h * h).mean()
    text = explain(loss).text(width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "fan-in: sum of 2" in text
    assert "matmul" in text


def test_after_backward_norms_unavailable():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w.exp() * 3).sum()
    loss.backward()
    ex = explain(loss)
    assert "freed" in ex.note
    assert ex.entries[0].grad_norm is None


def test_long_chain_is_iterative():
    w = cr.tensor([1.0], requires_grad=True)
    y = w
    for _ in range(20000):
        y = y * 1.0
    ex = explain(y.sum(), grads=True)
    assert len(ex.entries) == 20002
    assert ex.entries[-1].grad_norm == pytest.approx(1.0)
    assert "more entries" in ex.text(limit=10)


def test_custom_function_node():
    class Square(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    w = cr.tensor([1.0, 2.0], requires_grad=True)
    ex = explain(Square.apply(w).sum())
    entry = [e for e in ex.entries if e.name == "Square"][0]
    assert "custom autograd.Function" in entry.rule
    assert ex.entries[-1].grad_norm == pytest.approx(np.linalg.norm([2.0, 4.0]))


def test_bad_input():
    with pytest.raises(ValueError, match="scalar"):
        explain(cr.ones(3, requires_grad=True) * 2)
    with pytest.raises(ValueError, match="no graph"):
        explain(cr.tensor(1.0))
