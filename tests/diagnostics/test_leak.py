"""LeakWatch: fires on `running_loss += loss`, not on `running_loss += loss.item()`."""

import warnings

import pytest

import chainrule as cr
from chainrule.diagnostics import GraphLeakDetector, GraphLeakWarning, LeakWatch


def train(accumulate, steps=6, k=3):
    w = cr.randn(3, requires_grad=True)
    x = cr.randn(4, 3)
    watch = LeakWatch(k=k)
    running_loss = 0.0
    for _ in range(steps):
        loss = ((x * w).sum(1) ** 2).mean()
        loss.backward()
        with cr.no_grad():
            w -= 0.01 * w.grad
        w.grad = None
        running_loss = accumulate(running_loss, loss)
        watch.step(locals())
    return watch


def test_fires_on_tensor_accumulation():
    def leak(r, loss):
        r += loss
        return r

    with pytest.warns(GraphLeakWarning, match=r"running_loss.*loss\.item\(\)"):
        watch = train(leak)
    assert watch.leaking == ["running_loss"]
    assert watch.sizes == sorted(watch.sizes) and watch.sizes[-1] > watch.sizes[0]


def test_silent_on_item_accumulation():
    def fine(r, loss):
        r += loss.item()
        return r

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        watch = train(fine, steps=10)
    assert watch.leaking == []
    assert len(set(watch.sizes)) == 1


def test_single_tensor_and_list_forms():
    w = cr.ones(2, requires_grad=True)
    watch = GraphLeakDetector(k=2, warn=False)
    total = w * 0
    for _ in range(4):
        total = total + (w * w).sum()
        watch.step(total)
    assert watch.leaking == ["tensor"]
    watch.reset()
    assert watch.sizes == [] and watch.leaking == []
    with LeakWatch(k=2, warn=False) as lw:
        for _ in range(3):
            lw.step([(w * 2).sum(), 3])
    assert lw.leaking == []


def test_warns_once():
    w = cr.ones(2, requires_grad=True)
    watch = LeakWatch(k=1)
    acc = w.sum()
    with pytest.warns(GraphLeakWarning) as rec:
        for _ in range(5):
            acc = acc + w.sum()
            watch.step({"acc": acc})
    assert len(rec) == 1


def test_bad_input():
    with pytest.raises(ValueError, match="k must"):
        LeakWatch(k=0)
    with pytest.raises(TypeError, match="locals"):
        LeakWatch().step(3.0)
