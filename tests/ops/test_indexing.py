"""Indexing: getitem with every index kind, setitem, gather family, masks."""

import numpy as np
import pytest

import chainrule as cr
from tests.helpers import check_op, grads_of, t64

IDX = np.array([2, 0, 2, 2])
MASK = np.array([[True, False, True, False], [False, False, True, True],
                 [True, True, False, False]])

INDICES = [
    1, -1, slice(1, 3), slice(None, None, 2), slice(0, 3, 2), slice(-2, None), (1, 2),
    (-1, -2), (slice(None), 1), (Ellipsis, 0),
    (None, 1), (1, None, slice(0, 2)), (Ellipsis, None), (slice(1, None), Ellipsis, 1),
    IDX, [0, 0, 1], (IDX, slice(None)), (slice(None), [3, 3, 0]),
    (np.array([0, 2]), np.array([1, 1])), (np.array([[0], [2]]), np.array([[1, 3]])),
    MASK, MASK[:, 0], (MASK[:, 0], slice(1, 3)), (slice(0, 2), np.array([True, False, True, True])),
    (1, np.array([3, 3, 3])), (Ellipsis, np.array([1, -1])),
    (slice(None), slice(None), None), (slice(0, 0),), (np.array([], dtype=np.int64),),
]


@pytest.mark.parametrize("k", range(len(INDICES)))
def test_getitem(k):
    idx = INDICES[k]
    check_op(lambda x: x[idx], lambda x: np.asarray(x[idx]), [(3, 4)])


def test_getitem_with_tensor_indices():
    i = cr.tensor([2, 0, 2])
    m = cr.tensor([True, False, True])
    check_op(lambda x: x[i], lambda x: x[[2, 0, 2]], [(3, 4)])
    check_op(lambda x: x[m], lambda x: x[[True, False, True]], [(3, 4)])
    check_op(lambda x: x[:, cr.tensor(1)], lambda x: x[:, 1], [(3, 4)])
    check_op(lambda x: x[x.detach() > 0], lambda x: x[x > 0], [(3, 4)], gradgrad=False)


def test_getitem_of_0d_and_3d():
    check_op(lambda x: x[()], lambda x: x[()], [()])
    check_op(lambda x: x[None], lambda x: x[None], [()])
    check_op(lambda x: x[..., 1:, ::2], lambda x: x[..., 1:, ::2], [(2, 3, 4)])
    check_op(lambda x: x[0, ..., -1], lambda x: x[0, ..., -1], [(2, 3, 4)])
    check_op(lambda x: x[:, [0, 2], [1, 1]], lambda x: x[:, [0, 2], [1, 1]], [(2, 3, 4)])


def test_duplicate_integer_indices_accumulate():
    x = t64([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = grads_of(lambda t: t[[0, 2, 2, 2, 0]], x)
    np.testing.assert_array_equal(g, [2.0, 0.0, 3.0])
    y = t64(np.ones((2, 2)), requires_grad=True)
    (g,) = grads_of(lambda t: t[[1, 1], [0, 0]], y,
                    grad_output=t64([10.0, 5.0]))
    np.testing.assert_array_equal(g, [[0.0, 0.0], [15.0, 0.0]])


def test_basic_index_is_a_view():
    x = t64(np.arange(6.0).reshape(2, 3))
    row = x[1]
    row[0] = -1.0
    assert x[1, 0].item() == -1.0
    assert x._version == 1


# ---------------------------------------------------------------- setitem
SET_CASES = [
    (1, ()), ((0, 1), ()), (slice(0, 2), (4,)), ((slice(None), 2), (3,)),
    ((Ellipsis, -1), (1,)), (IDX[:2], (2, 4)), ((np.array([0, 2]), np.array([1, 3])), (2,)),
    (MASK, (6,)), (MASK, ()), ((slice(None, None, 2), slice(1, None, 2)), (2, 2)),
]


@pytest.mark.parametrize("k", range(len(SET_CASES)))
def test_setitem_forward_and_gradient(k):
    idx, vshape = SET_CASES[k]

    def fn(x, v):
        y = x * 1.0
        y[idx] = v
        return y

    def ref(x, v):
        y = x.copy()
        y[idx] = v
        return y

    check_op(fn, ref, [((3, 4), vshape)])


def test_setitem_with_python_scalar_and_tensor_index():
    def fn(x):
        y = x * 2.0
        y[cr.tensor([0, 2])] = 7.0
        return y

    def ref(x):
        y = 2.0 * x
        y[[0, 2]] = 7.0
        return y

    check_op(fn, ref, [(3, 2)])


def test_setitem_gradient_values():
    x = t64([1.0, 2.0, 3.0], requires_grad=True)
    v = t64(10.0, requires_grad=True)
    gx, gv = grads_of(lambda a, b: _set(a * 1.0, slice(0, 2), b) * t64([1.0, 2.0, 3.0]), x, v)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(gv, 3.0)


def _set(t, idx, value):
    t[idx] = value
    return t


def test_setitem_of_a_grad_value_into_a_plain_tensor():
    x = cr.zeros(3, dtype=cr.float64)
    v = t64(2.0, requires_grad=True)
    x[1] = v
    assert x.requires_grad and x.grad_fn is not None and x._version == 1
    (x * t64([1.0, 3.0, 5.0])).sum().backward()
    assert v.grad.item() == 3.0
    np.testing.assert_array_equal(x.detach().numpy(), [0.0, 2.0, 0.0])


def test_setitem_without_grad_writes_and_bumps_version():
    x = cr.zeros(2, 3)
    x[0] = cr.tensor([1.0, 2.0, 3.0])
    x[1, 1:] = 5
    x[x > 4] = -1.0
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [0, -1, -1]])
    assert x._version == 3


def test_setitem_on_leaf_requiring_grad_raises():
    x = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="setitem: a leaf tensor that requires grad"):
        x[0] = 2.0
    assert x.tolist() == [1.0, 1.0, 1.0] and x._version == 0
    with cr.no_grad():
        x[0] = 2.0
    assert x.tolist() == [2.0, 1.0, 1.0]


# ---------------------------------------------------------------- gather family
def test_gather():
    index = np.array([[0, 2, 2], [1, 0, 0]])
    check_op(lambda x: cr.gather(x, 1, cr.tensor(index)),
             lambda x: np.take_along_axis(x, index, 1), [(2, 4)])
    index0 = np.array([[1, 0], [1, 1]])
    check_op(lambda x: x.gather(0, cr.tensor(index0)),
             lambda x: np.take_along_axis(x[:, :2], index0, 0), [(3, 4)])
    check_op(lambda x: x.gather(-1, cr.tensor([[1, 1, 1]])),
             lambda x: x[:1, [1, 1, 1]], [(2, 3)])


def test_take_along_dim():
    index = np.array([[0], [2]])
    check_op(lambda x: cr.take_along_dim(x, cr.tensor(index), 1),
             lambda x: np.take_along_axis(x, index, 1), [(2, 3)])
    # the index broadcasts against the input outside ``dim``
    index = np.array([[2, 0]])
    check_op(lambda x: x.take_along_dim(cr.tensor(index), dim=1),
             lambda x: np.take_along_axis(x, np.broadcast_to(index, (3, 2)), 1), [(3, 4)])
    check_op(lambda x: cr.take_along_dim(x, cr.tensor([5, 0, 5])),
             lambda x: x.reshape(-1)[[5, 0, 5]], [(2, 3)])


def test_scatter_add():
    index = np.array([[0, 1, 0], [2, 2, 0]])

    def ref(x, src):
        out = x.copy()
        for i in range(index.shape[0]):
            for j in range(index.shape[1]):
                out[index[i, j], j] += src[i, j]
        return out

    check_op(lambda x, s: cr.scatter_add(x, 0, cr.tensor(index), s), ref,
             [((3, 3), (2, 3))])

    def ref_small_index(x, src):
        out = x.copy()
        for i in range(2):
            for j in range(2):
                out[i, index[i, j]] += src[i, j]
        return out

    check_op(lambda x, s: x.scatter_add(1, cr.tensor(index[:, :2]), s), ref_small_index,
             [((3, 4), (2, 3))])


def test_index_select():
    check_op(lambda x: cr.index_select(x, 0, cr.tensor([2, 0, 2])),
             lambda x: x[[2, 0, 2]], [(3, 4)])
    check_op(lambda x: x.index_select(-1, cr.tensor([1])), lambda x: x[:, [1]], [(3, 4)])
    check_op(lambda x: x.index_select(0, cr.tensor(1)), lambda x: x[[1]], [(3,)])


def test_masked_fill():
    check_op(lambda x: cr.masked_fill(x, cr.tensor(MASK), -2.0),
             lambda x: np.where(MASK, -2.0, x), [(3, 4)])
    check_op(lambda x: x.masked_fill(cr.tensor(MASK[0]), 0.5),
             lambda x: np.where(MASK[0], 0.5, x), [(3, 4)])
    check_op(lambda x, v: x.masked_fill(cr.tensor(MASK), v),
             lambda x, v: np.where(MASK, v, x), [((3, 4), ())])


def test_masked_fill_keeps_dtype():
    x = cr.tensor([1, 2, 3])
    out = x.masked_fill(cr.tensor([True, False, True]), 0)
    assert out.dtype == cr.int64 and out.tolist() == [0, 2, 0]
    y = cr.tensor([1.0, 2.0]).masked_fill(cr.tensor([True, False]), float("-inf"))
    assert y.dtype == cr.float32 and y.tolist() == [float("-inf"), 2.0]


def test_masked_select():
    check_op(lambda x: cr.masked_select(x, cr.tensor(MASK)), lambda x: x[MASK], [(3, 4)])
    check_op(lambda x: x.masked_select(cr.tensor(MASK[0])),
             lambda x: _bmask(x, MASK[0]), [(4,), (3, 4), (2, 1)])


def _bmask(x, m):
    shape = np.broadcast_shapes(x.shape, m.shape)
    return np.broadcast_to(x, shape)[np.broadcast_to(m, shape)]


def test_nonzero_and_where_single_argument():
    x = cr.tensor([[0, 1], [2, 0]])
    assert cr.nonzero(x).tolist() == [[0, 1], [1, 0]]
    rows, cols = cr.nonzero(x, as_tuple=True)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert [t.tolist() for t in cr.where(x > 0)] == [[0, 1], [1, 0]]
