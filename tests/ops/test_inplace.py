"""In-place ops: values, version bumps, gradients when recorded on a non-leaf, and the
error on a leaf that requires grad."""

import numpy as np
import pytest

import chainrule as cr
from tests.helpers import check_op, t64

# name: (apply in place, NumPy reference of the result, needs a tensor argument)
INPLACE = {
    "add_": (lambda y, o: y.add_(o), lambda y, o: y + o),
    "add_alpha": (lambda y, o: y.add_(o, alpha=2.0), lambda y, o: y + 2.0 * o),
    "sub_": (lambda y, o: y.sub_(o), lambda y, o: y - o),
    "mul_": (lambda y, o: y.mul_(o), lambda y, o: y * o),
    "div_": (lambda y, o: y.div_(o), lambda y, o: y / o),
    "iadd": (lambda y, o: _iadd(y, o), lambda y, o: y + o),
    "imul": (lambda y, o: _imul(y, o), lambda y, o: y * o),
    "copy_": (lambda y, o: y.copy_(o), lambda y, o: np.broadcast_to(o, y.shape) + 0.0),
    "clamp_": (lambda y, o: y.clamp_(-0.5, 0.5), lambda y, o: np.clip(y, -0.5, 0.5)),
    "clamp_min": (lambda y, o: y.clamp_(min=o), lambda y, o: np.maximum(y, o)),
    "zero_": (lambda y, o: y.zero_(), lambda y, o: np.zeros_like(y)),
    "fill_": (lambda y, o: y.fill_(1.5), lambda y, o: np.full_like(y, 1.5)),
    "fill_tensor": (lambda y, o: y.fill_(o[0]), lambda y, o: np.full_like(y, o[0])),
    "setitem": (lambda y, o: _set(y, (slice(None), 1), o[0]), None),
}


def _iadd(y, o):
    y += o
    return y


def _imul(y, o):
    y *= o
    return y


def _set(y, idx, v):
    y[idx] = v
    return y


def _ref_setitem(y, o):
    y = y.copy()
    y[:, 1] = o[0]
    return y


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_non_leaf_values_and_gradient(name):
    apply, ref = INPLACE[name]
    ref = ref or _ref_setitem

    def fn(x, o):
        y = x * 1.0
        out = apply(y, o)
        assert out is y
        return y * x  # uses the in-place result and x again

    check_op(fn, lambda x, o: ref(x.copy(), o) * x, [((2, 3), (3,))],
             [(-2, 2), (0.6, 2)])


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_without_grad_bumps_version(name):
    apply, ref = INPLACE[name]
    ref = ref or _ref_setitem
    y = t64(np.arange(6.0).reshape(2, 3) - 2.5)
    o = t64([0.7, 1.5, 2.0])
    expected = ref(y.numpy().copy(), o.numpy())
    data_before = y.numpy()
    assert y._version == 0
    out = apply(y, o)
    assert out is y
    assert y._version == 1
    assert y.numpy() is data_before  # written into the same memory
    np.testing.assert_allclose(y.numpy(), expected)


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_leaf_requiring_grad_raises(name):
    apply, _ = INPLACE[name]
    x = t64(np.ones((2, 3)), requires_grad=True)
    o = t64([0.7, 1.5, 2.0])
    op = {"add_alpha": "add_", "iadd": "add_", "imul": "mul_", "clamp_min": "clamp_",
          "fill_tensor": "fill_"}.get(name, name)
    with pytest.raises(RuntimeError, match=f"^{op}: a leaf tensor that requires grad"):
        apply(x, o)
    np.testing.assert_array_equal(x.detach().numpy(), np.ones((2, 3)))
    assert x._version == 0 and x.grad_fn is None


def test_inplace_on_leaf_under_no_grad_is_allowed():
    x = t64([1.0, 2.0], requires_grad=True)
    with cr.no_grad():
        x.mul_(2.0).add_(1.0)
    assert x.tolist() == [3.0, 5.0]
    assert x.requires_grad and x.grad_fn is None and x._version == 2


def test_version_counter_is_shared_with_views():
    x = t64(np.zeros((2, 3)))
    v = x[0]
    v.add_(1.0)
    assert x._version == v._version == 1
    x.zero_()
    assert v._version == 2
    np.testing.assert_array_equal(v.numpy(), np.zeros(3))


def test_modifying_a_saved_tensor_makes_backward_raise():
    a = t64([1.0, 2.0], requires_grad=True)
    y = a * 2.0
    z = y * y  # saves y
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_result_gradient_matches_out_of_place():
    x = t64([0.5, -1.0, 2.0], requires_grad=True)
    y = x.sin()
    y.mul_(x).sub_(1.0).div_(2.0)
    y.sum().backward()
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), (np.cos(xv) * xv + np.sin(xv)) / 2)


def test_inplace_integer_dtype_errors():
    i = cr.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="div_.*int64"):
        i.div_(2)
    with pytest.raises(TypeError, match="add_.*int64"):
        i.add_(cr.tensor([0.5, 0.5, 0.5]))
    assert i.tolist() == [1, 2, 3] and i._version == 0
    i.add_(2)
    i.mul_(cr.tensor([True, False, True]))
    assert i.tolist() == [3, 0, 5]


def test_inplace_shape_errors():
    x = cr.zeros(2, 3)
    with pytest.raises(ValueError, match=r"add_: shape \(4,\) can't be broadcast to the "
                                         r"tensor's shape \(2, 3\)"):
        x.add_(cr.ones(4))
    with pytest.raises(ValueError, match=r"copy_: source of shape \(2, 4\)"):
        x.copy_(cr.ones(2, 4))
    assert x._version == 0


def test_copy_casts_and_broadcasts():
    x = cr.zeros(2, 2, dtype=cr.int64)
    x.copy_(cr.tensor([1.7, 2.2]))
    assert x.tolist() == [[1, 2], [1, 2]]
    check_op(lambda a, b: a * 1.0 + (a * 0.0).copy_(b), lambda a, b: a + b,
             [((2, 3), (3,)), ((2, 3), ())])


@pytest.mark.parametrize("op", ["fill_", "zero_", "copy_"])
def test_overwriting_inf_values_gives_no_nan(op):
    x = t64([1.0, 2.0], requires_grad=True)
    y = x + t64([float("inf"), -1.0])
    {"fill_": lambda: y.fill_(3.0), "zero_": y.zero_,
     "copy_": lambda: y.copy_(x * 3.0)}[op]()
    expected = {"fill_": [3.0, 3.0], "zero_": [0.0, 0.0], "copy_": [3.0, 6.0]}[op]
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0] if op == "copy_" else [0.0, 0.0])
