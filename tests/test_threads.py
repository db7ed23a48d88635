"""Intra-op threads: the pool, and that split work gives exactly the unsplit result."""

import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule import threads
from chainrule.ops.linalg import matmul


@pytest.fixture
def two_threads():
    old = cr.get_num_threads()
    cr.set_num_threads(2)
    yield
    cr.set_num_threads(old)


def test_set_get_and_bad_values():
    old = cr.get_num_threads()
    try:
        cr.set_num_threads(3)
        assert cr.get_num_threads() == 3
    finally:
        cr.set_num_threads(old)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
            cr.set_num_threads(bad)
    assert cr.get_num_threads() == old


def test_parallel_chunks_covers_the_range_once(two_threads):
    seen = np.zeros(1000, dtype=int)
    names = set()

    def fn(i, j):
        seen[i:j] += 1
        names.add(threading.current_thread().name.startswith("chainrule"))

    threads.parallel_chunks(fn, 1000, 100)
    assert (seen == 1).all()
    assert names == {True, False}  # the caller and a worker both took a piece


def test_parallel_chunks_small_work_stays_inline(two_threads):
    calls = []
    threads.parallel_chunks(lambda i, j: calls.append((i, j)), 150, 100)
    assert calls == [(0, 150)]


def test_parallel_chunks_reraises(two_threads):
    def fn(i, j):
        if i > 0:
            raise RuntimeError("piece failed")

    with pytest.raises(RuntimeError, match="piece failed"):
        threads.parallel_chunks(fn, 1000, 10)


def test_nested_call_from_a_worker_runs_inline(two_threads):
    inner = []

    def outer(i, j):
        threads.parallel_chunks(lambda a, b: inner.append((a, b)), 1000, 10)

    threads.parallel_chunks(outer, 2, 1)
    assert len(inner) >= 2


@pytest.mark.parametrize("shape_a, shape_b", [
    ((64, 16, 8), (64, 8, 16)),          # split over the batch
    ((4, 16, 16, 8), (4, 16, 8, 16)),    # two batch dims
    ((3, 2, 2), (3, 2, 2)),              # too little work: one call
])
def test_batched_matmul_split_is_exact(two_threads, shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    out = matmul.prim.fwd(a, b)
    np.testing.assert_array_equal(out, np.matmul(a, b))
    # and through the autograd path, with gradients
    ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    (ta @ tb).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), np.ones(out.shape, np.float32)
                               @ np.swapaxes(b, -1, -2), rtol=1e-5)


def _train(opt_cls, n_threads, **kw):
    # only chainrule's own splitting changes: OpenBLAS's thread count changes how it
    # blocks a product, and with it the last bits of the forward and backward
    old = threads._state["n"]
    threads._state["n"] = n_threads
    try:
        cr.manual_seed(0)
        w = cr.nn.Parameter(cr.randn(300, 500))  # 150,000 elements: split in pieces
        b = cr.nn.Parameter(cr.randn(500))       # small: updated whole
        opt = opt_cls([w, b], **kw)
        x = cr.randn(8, 300)
        for _ in range(3):
            opt.zero_grad()
            ((x @ w + b).tanh() ** 2).sum().backward()
            opt.step()
        return w.detach().numpy().copy(), b.detach().numpy().copy()
    finally:
        threads._state["n"] = old


@pytest.mark.parametrize("opt_cls, kw", [
    (cr.optim.SGD, dict(lr=0.01, momentum=0.9)),
    (cr.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (cr.optim.SGD, dict(lr=0.01, momentum=0.5, dampening=0.3, maximize=True)),
    (cr.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (cr.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
])
def test_split_optimizer_update_equals_one_thread(opt_cls, kw):
    w1, b1 = _train(opt_cls, 1, **kw)
    w2, b2 = _train(opt_cls, 2, **kw)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(b1, b2)


def test_sgd_split_matches_the_formula(two_threads):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(200_000).astype(np.float32)
    g1, g2 = (rng.standard_normal(200_000).astype(np.float32) for _ in range(2))
    p = cr.nn.Parameter(cr.tensor(p0.copy()))
    opt = cr.optim.SGD([p], lr=0.1, momentum=0.9)
    for g in (g1, g2):
        p.grad = cr.tensor(g)
        opt.step()
    buf = g1.copy()
    want = p0 - np.float32(0.1) * buf
    buf = buf * np.float32(0.9) + g2
    want = want - np.float32(0.1) * buf
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-6, atol=1e-6)


def test_large_parameters_are_split(two_threads, monkeypatch):
    from chainrule.optim import _foreach

    calls = []
    real = _foreach.parallel_chunks

    def spy(fn, total, min_chunk):
        calls.append(total)
        return real(fn, total, min_chunk)

    monkeypatch.setattr(_foreach, "parallel_chunks", spy)
    big = cr.nn.Parameter(cr.zeros(150_000))
    small = cr.nn.Parameter(cr.zeros(10))
    big.grad, small.grad = cr.ones(150_000), cr.ones(10)
    cr.optim.SGD([big, small], lr=0.5, momentum=0.9).step()
    assert calls == [150_000]
    assert (big.detach().numpy() == -0.5).all() and (small.detach().numpy() == -0.5).all()
