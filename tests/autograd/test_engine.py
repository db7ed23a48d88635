"""Engine semantics: order, accumulation, retain_graph, freeing, hooks, errors."""

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr


def test_fan_out_analytic_first_and_second_backward():
    # b = (x*x)*(x*x) = x^4, db/dx = 4 x^3
    x = cr.tensor([1.0, 2.0, -3.0], dtype=cr.float64, requires_grad=True)
    b = (x * x) * (x * x)
    b.sum().backward(retain_graph=True)
    expected = 4 * np.array([1.0, 2.0, -3.0]) ** 3
    np.testing.assert_allclose(x.grad.numpy(), expected)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * expected)


def test_leaf_grad_accumulates_across_backward_calls():
    x = cr.tensor(3.0, requires_grad=True)
    (x * x).backward()
    (x * x).backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_second_backward_without_retain_graph_raises_naming_the_node():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*'mul'.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-6)


def test_backward_through_node_without_saved_values_twice_is_allowed():
    # like PyTorch: only nodes whose saved values were freed refuse a second pass
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_chain_of_100k_ops_backward_has_no_recursion_error():
    x = cr.tensor(1.0, dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_saved_values_are_freed_after_backward():
    x = cr.randn(100, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._data)
    y = (h * x).sum()
    del h
    gc.collect()
    assert ref() is not None  # kept alive: mul saved the values of h
    y.backward()
    gc.collect()
    assert ref() is None  # freed with the node's saved values


def test_non_scalar_backward_needs_gradient():
    x = cr.ones(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar.*\(2, 3\)"):
        y.backward()
    y.backward(cr.ones(2, 3))
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.ones((2, 3)))


def test_gradient_shape_must_match():
    x = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient 0 has shape \(2,\).*\(3,\)"):
        (x * 2).backward(cr.ones(2))


def test_backward_on_tensor_not_requiring_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.ones(3).sum().backward()


def test_requires_grad_on_integer_tensor_raises():
    with pytest.raises(RuntimeError, match=r"only floating point.*int64"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="only floating point"):
        cr.arange(3).requires_grad_()


def test_tensor_hook_can_replace_the_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])


def test_leaf_hook_and_handle_remove():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 2).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [2.0, 2.0])
    h.remove()
    (x * 2).sum().backward()
    assert len(seen) == 1
    x2 = cr.tensor([1.0], requires_grad=True)
    x2.register_hook(lambda g: g * 0 + 7)
    (x2 * 2).sum().backward()
    assert x2.grad.item() == 7.0


def test_retain_grad_on_non_leaf():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    (y * 3).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])
    assert y.retains_grad
    z = x * 2
    (z * 3).sum().backward()
    assert z.grad is None


def test_inplace_change_of_saved_tensor_raises_naming_the_op():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = a * a
    a.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation by add_.*'mul'"):
        y.sum().backward()


def test_inplace_change_of_saved_output_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    e = x.exp()
    e.mul_(2)
    with pytest.raises(RuntimeError, match=r"inplace.*its result of 'exp'"):
        e.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1)
    with cr.no_grad():
        x.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 3.0])


def test_inplace_on_non_leaf_records_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.mul_(x)  # y = 2x * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    assert y._version == 1


def test_setitem_records_gradient_for_value_and_base():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = cr.tensor(5.0, requires_grad=True)
    y = x * 1
    y[1] = v * 2
    (y * cr.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 100.0])
    assert v.grad.item() == pytest.approx(20.0)


def test_no_grad_records_nothing_and_is_a_decorator():
    x = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @cr.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with cr.no_grad():
        with cr.enable_grad():
            assert (x * 2).requires_grad
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cr.is_grad_enabled()


def test_grad_mode_is_thread_local():
    import threading

    seen = []
    with cr.no_grad():
        t = threading.Thread(target=lambda: seen.append(cr.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_detach_cuts_history():
    x = cr.ones(2, requires_grad=True)
    y = (x * 2).detach()
    assert y.grad_fn is None and not y.requires_grad
    z = x * 2 + y
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_multiple_roots_and_shared_subgraph():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    h = x.exp()
    a = h.sum()
    b = (h * h).sum()
    cr.autograd.backward([a, b])
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), e + 2 * e * e)


def test_root_that_is_an_ancestor_of_another_root():
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    y = x * x
    z = y * 3
    cr.autograd.backward([y, z], [cr.tensor(1.0, dtype=cr.float64),
                                  cr.tensor(1.0, dtype=cr.float64)])
    assert x.grad.item() == pytest.approx(2 * 2 + 3 * 2 * 2)


def test_broadcast_gradients_are_reduced_to_input_shapes():
    a = cr.ones(2, 1, 3, requires_grad=True)
    b = cr.ones(4, 1, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (2, 1, 3)
    assert b.grad.shape == (4, 1)
    np.testing.assert_allclose(a.grad.numpy(), 4 * np.ones((2, 1, 3)))
    np.testing.assert_allclose(b.grad.numpy(), 6 * np.ones((4, 1)))


def test_leaf_grads_do_not_alias_each_other():
    a = cr.zeros(3, requires_grad=True)
    b = cr.zeros(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(5)
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0, 1.0])


def test_user_gradient_is_not_aliased_into_grad():
    x = cr.zeros(3, requires_grad=True)
    g = cr.ones(3)
    (x + 0).backward(g)
    x.grad.add_(1)
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0, 1.0])


def test_backward_inputs_restricts_accumulation():
    a = cr.ones(2, requires_grad=True)
    b = cr.ones(2, requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad is not None and b.grad is None


def test_dtype_of_gradient_matches_input():
    a = cr.ones(3, dtype=cr.float16, requires_grad=True)
    b = cr.ones(3, dtype=cr.float32, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == cr.float16 and b.grad.dtype == cr.float32


def test_saved_tensors_hooks_pack_and_unpack():
    packed = []

    def pack(t):
        packed.append(t.shape)
        return t.detach().numpy().copy() * 2  # store doubled to prove unpack is used

    def unpack(p):
        return cr.from_numpy(p / 2)

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = (x * x).sum()
    y.backward()
    assert packed == [(2,), (2,)]
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_repr_shows_grad_fn_and_requires_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<mul>" in repr(x * 2)
    assert repr(cr.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=chainrule.float64" in repr(cr.tensor([1.0], dtype=cr.float64))
