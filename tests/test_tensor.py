"""Tensor basics and creation functions."""

import numpy as np
import pytest

import chainrule as cr


def test_default_dtypes_follow_pytorch():
    assert cr.tensor([1.0, 2.0]).dtype == cr.float32
    assert cr.tensor([1, 2]).dtype == cr.int64
    assert cr.tensor([True]).dtype == cr.bool
    assert cr.tensor(np.zeros(2, dtype=np.float64)).dtype == cr.float64
    assert cr.zeros(2).dtype == cr.float32
    assert cr.arange(3).dtype == cr.int64
    assert cr.arange(0.0, 1.0, 0.5).dtype == cr.float32
    assert cr.full((2,), 3).dtype == cr.int64
    assert cr.full((2,), 3.0).dtype == cr.float32


def test_properties_and_conversions():
    x = cr.arange(6).reshape(2, 3)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.numel() == 6 and len(x) == 2
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    assert x[1, 2].item() == 5
    assert x.float().dtype == cr.float32 and x.double().dtype == cr.float64
    assert x.to(cr.float64).dtype == cr.float64
    assert x.is_leaf and x.grad_fn is None
    rows = [r.tolist() for r in x]
    assert rows == [[0, 1, 2], [3, 4, 5]]


def test_item_and_bool_errors():
    with pytest.raises(ValueError, match=r"one-element.*\(2,\)"):
        cr.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(cr.ones(2))
    assert bool(cr.ones(1))


def test_numpy_shares_memory_and_refuses_grad_tensors():
    a = np.zeros(3, dtype=np.float32)
    t = cr.from_numpy(a)
    t.add_(1)
    np.testing.assert_allclose(a, [1, 1, 1])
    assert t.numpy() is a
    with pytest.raises(RuntimeError, match="detach"):
        cr.ones(2, requires_grad=True).numpy()


def test_data_property_is_detached_and_shares_values():
    x = cr.ones(2, requires_grad=True)
    d = x.data
    assert not d.requires_grad
    with cr.no_grad():
        d.mul_(3)
    np.testing.assert_allclose(x.detach().numpy(), [3.0, 3.0])
    x.data = cr.zeros(2)
    np.testing.assert_allclose(x.detach().numpy(), [0.0, 0.0])


def test_manual_seed_reproducible_and_generators_independent():
    cr.manual_seed(123)
    a = cr.randn(5)
    cr.manual_seed(123)
    b = cr.randn(5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g = cr.Generator().manual_seed(1)
    c = cr.rand(3, generator=g)
    g.manual_seed(1)
    np.testing.assert_array_equal(c.numpy(), cr.rand(3, generator=g).numpy())
    state = cr.get_rng_state()
    r1 = cr.rand(4)
    cr.set_rng_state(state)
    np.testing.assert_array_equal(r1.numpy(), cr.rand(4).numpy())


def test_creation_functions():
    assert cr.eye(3).numpy().trace() == 3
    np.testing.assert_allclose(cr.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1.0])
    z = cr.zeros_like(cr.ones(2, 3, dtype=cr.float64))
    assert z.shape == (2, 3) and z.dtype == cr.float64
    r = cr.randint(0, 10, (100,))
    assert r.dtype == cr.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10
    p = cr.randperm(10)
    assert sorted(p.tolist()) == list(range(10))
    u = cr.rand(1000)
    assert 0 <= u.numpy().min() and u.numpy().max() < 1
    assert cr.ones(2, 3, requires_grad=True).requires_grad
    assert cr.zeros((2, 3)).shape == (2, 3)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="negative dimension"):
        cr.zeros(-1)
    with pytest.raises(TypeError, match="expected ints"):
        cr.zeros(2.5)


def test_tensor_is_not_pickled():
    import pickle

    with pytest.raises(TypeError, match="chainrule.save"):
        pickle.dumps(cr.ones(2))


def test_deepcopy_of_leaves_and_refusal_for_non_leaves():
    import copy

    x = cr.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    assert y is not x and y.requires_grad and y.grad is not x.grad
    np.testing.assert_array_equal(y.grad.numpy(), [2.0, 2.0])
    y.detach().add_(1)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 1.0])
    with pytest.raises(RuntimeError, match=r"graph leaves\) can be deep-copied"):
        copy.deepcopy(x * 2)
