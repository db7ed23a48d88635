"""Shape ops: forward against NumPy, gradcheck and gradgradcheck, views and versions."""

import numpy as np
import pytest

import chainrule as cr
from tests.helpers import check_op, t64

CASES = [
    # (fn, NumPy reference, input shape(s))
    (lambda x: x.reshape(3, 2), lambda x: x.reshape(3, 2), (2, 3)),
    (lambda x: cr.reshape(x, (-1,)), lambda x: x.reshape(-1), (2, 3)),
    (lambda x: x.reshape(()), lambda x: x.reshape(()), (1, 1)),
    (lambda x: x.reshape(4, 0, 1), lambda x: x.reshape(4, 0, 1), (0, 4)),
    (lambda x: x.view(6), lambda x: x.reshape(6), (2, 3)),
    (lambda x: x.view(-1, 2), lambda x: x.reshape(-1, 2), (2, 2, 1)),
    (lambda x: x.view_as(cr.ones(3, 2)), lambda x: x.reshape(3, 2), (6,)),
    (lambda x: x.reshape_as(cr.ones(3, 2)), lambda x: x.reshape(3, 2), (2, 3)),
    (lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    (lambda x: cr.permute(x, (-1, 0, -2)), lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    (lambda x: x.transpose(0, -1), lambda x: np.swapaxes(x, 0, -1), (2, 3, 4)),
    (lambda x: cr.transpose(x, 0, 1), lambda x: x.T, (0, 3)),
    (lambda x: x.t(), lambda x: x.T, (2, 3)),
    (lambda x: x.t(), lambda x: x, (3,)),
    (lambda x: x.T, lambda x: x.T, (2, 3, 4)),
    (lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), (2, 3, 4)),
    (lambda x: cr.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), (2, 3, 4)),
    (lambda x: x.expand(2, 3), lambda x: np.broadcast_to(x, (2, 3)), (3,)),
    (lambda x: x.expand(4, -1, 3), lambda x: np.broadcast_to(x, (4, 2, 3)), (2, 1)),
    (lambda x: x.expand(3), lambda x: np.broadcast_to(x, (3,)), ()),
    (lambda x: x.expand_as(cr.ones(2, 3)), lambda x: np.broadcast_to(x, (2, 3)), (1, 3)),
    (lambda x: cr.broadcast_to(x, (2, 0, 3)), lambda x: np.broadcast_to(x, (2, 0, 3)),
     (1, 3)),
    (lambda x: x.squeeze(), np.squeeze, (1, 3, 1)),
    (lambda x: x.squeeze(0), lambda x: x.reshape(3, 1), (1, 3, 1)),
    (lambda x: x.squeeze(-1), lambda x: x.reshape(1, 3), (1, 3, 1)),
    (lambda x: x.squeeze(1), lambda x: x, (1, 3, 1)),
    (lambda x: cr.squeeze(x, (0, 2)), lambda x: x.reshape(3), (1, 3, 1)),
    (lambda x: x.squeeze(), lambda x: x, ()),
    (lambda x: x.unsqueeze(0), lambda x: x[None], (2, 3)),
    (lambda x: x.unsqueeze(-1), lambda x: x[..., None], (2, 3)),
    (lambda x: cr.unsqueeze(x, 1), lambda x: x[:, None], (2, 3)),
    (lambda x: x.unsqueeze(0), lambda x: x[None], ()),
    (lambda x: x.flatten(), lambda x: x.reshape(-1), (2, 3, 2)),
    (lambda x: x.flatten(1), lambda x: x.reshape(2, 6), (2, 3, 2)),
    (lambda x: cr.flatten(x, 0, -2), lambda x: x.reshape(6, 2), (2, 3, 2)),
    (lambda x: x.flatten(), lambda x: x.reshape(1), ()),
    (lambda x: x.unflatten(1, (2, -1)), lambda x: x.reshape(2, 2, 3), (2, 6)),
    (lambda x: cr.unflatten(x, -1, (3, 2)), lambda x: x.reshape(2, 3, 2), (2, 6)),
    (lambda x: x.ravel(), lambda x: x.ravel(), (2, 3)),
    (lambda x: x.narrow(1, 1, 2), lambda x: x[:, 1:3], (2, 4)),
    (lambda x: cr.narrow(x, -1, 0, 0), lambda x: x[:, 0:0], (2, 4)),
    (lambda x: x.flip(0), lambda x: x[::-1], (3, 2)),
    (lambda x: cr.flip(x, (0, -1)), lambda x: x[::-1, ::-1], (3, 2)),
    (lambda x: x.flip(0), lambda x: x.copy(), ()),
    (lambda x: x.repeat(2, 3), lambda x: np.tile(x, (2, 3)), (2, 3)),
    (lambda x: x.repeat(2, 1, 2), lambda x: np.tile(x, (2, 1, 2)), (2, 3)),
    (lambda x: x.repeat(3), lambda x: np.tile(x, 3), ()),
    (lambda x: cr.tile(x, (2,)), lambda x: np.tile(x, (1, 2)), (2, 3)),
    (lambda x: x.tile((2, 1, 1)), lambda x: np.tile(x, (2, 1, 1)), (2, 3)),
    (lambda x: x.roll(1), lambda x: np.roll(x, 1), (2, 3)),
    (lambda x: x.roll(-1, 1), lambda x: np.roll(x, -1, 1), (2, 3)),
    (lambda x: cr.roll(x, (1, 5), (0, -1)), lambda x: np.roll(x, (1, 5), (0, -1)), (2, 3)),
    (lambda x: x.tril(), np.tril, (3, 4)),
    (lambda x: cr.tril(x, -1), lambda x: np.tril(x, -1), (2, 3, 3)),
    (lambda x: x.triu(1), lambda x: np.triu(x, 1), (3, 4)),
    (lambda x: cr.triu(x), np.triu, (2, 4, 3)),
    (lambda x: x.clone(), lambda x: x.copy(), (2, 3)),
    (lambda x: cr.clone(x), lambda x: x.copy(), ()),
    (lambda x: x.contiguous(), lambda x: x.copy(), (2, 3)),
    (lambda x: x.T.contiguous(), lambda x: x.T.copy(), (2, 3)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_shape_op(case):
    fn, ref, shape = CASES[case]
    check_op(fn, ref, [shape])


PADS = [
    ((1, 2), (3,), lambda x: np.pad(x, (1, 2))),
    ((1, 0, 0, 2), (2, 3), lambda x: np.pad(x, ((0, 2), (1, 0)))),
    ((2, 1), (2, 3), lambda x: np.pad(x, ((0, 0), (2, 1)))),
    ((0, 0, 1, 1, 1, 0), (1, 2, 2), lambda x: np.pad(x, ((1, 0), (1, 1), (0, 0)))),
    ((0, 0), (2,), lambda x: x.copy()),
]


@pytest.mark.parametrize("pad,shape,ref", [
    ((-1, 0), (4,), lambda x: x[1:]),
    ((-1, 2), (2, 4), lambda x: np.pad(x[:, 1:], ((0, 0), (0, 2)))),
    ((1, -2, -1, -1), (3, 4), lambda x: np.pad(x[1:2, :2], ((0, 0), (1, 0)))),
])
def test_pad_negative_crops(pad, shape, ref):
    from chainrule.ops.shape_api import pad as cr_pad

    check_op(lambda x: cr_pad(x, pad), ref, [shape])


@pytest.mark.parametrize("pad,shape,ref", PADS)
def test_pad(pad, shape, ref):
    from chainrule.ops.shape_api import pad as cr_pad

    check_op(lambda x: cr_pad(x, pad), ref, [shape])
    check_op(lambda x: cr_pad(x, pad, value=2.5), lambda x: _padded_const(ref, x), [shape])


def _padded_const(ref, x):
    """``ref`` padding with 2.5 instead of 0 (pad a marker array to find the border)."""
    inside = ref(np.ones_like(x)) == 1
    out = np.full(inside.shape, 2.5)
    out[inside] = x.ravel()
    return out


# ---------------------------------------------------------------- joining and splitting
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    shapes = {0: ((2, 3), (1, 3), (0, 3)), 1: ((2, 1), (2, 3), (2, 0)),
              -1: ((2, 1), (2, 3), (2, 2))}[dim]
    check_op(lambda *xs: cr.cat(xs, dim), lambda *xs: np.concatenate(xs, axis=dim), [shapes])
    check_op(lambda a, b, c: cr.cat([a, b, c], dim=dim),
             lambda *xs: np.concatenate(xs, axis=dim), [shapes], grad=False, gradgrad=False)


def test_cat_aliases_and_single_tensor():
    check_op(lambda a: cr.concat([a], 0), lambda a: a, [(2, 3)])
    check_op(lambda a, b: cr.concatenate((a, b), 1), lambda a, b: np.concatenate((a, b), 1),
             [((2, 1), (2, 2))])
    check_op(lambda a, b: cr.hstack([a, b]), lambda a, b: np.hstack([a, b]), [((2,), (3,))])
    check_op(lambda a, b: cr.vstack([a, b]), lambda a, b: np.vstack([a, b]), [((3,), (2, 3))])


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    check_op(lambda a, b: cr.stack([a, b], dim), lambda a, b: np.stack([a, b], axis=dim),
             [((2, 3), (2, 3))])


def test_stack_0d():
    check_op(lambda a, b, c: cr.stack((a, b, c)), lambda *xs: np.stack(xs),
             [((), (), ())])


@pytest.mark.parametrize("sizes,dim,expected", [
    (2, 0, [(2, 3), (2, 3), (1, 3)]),
    ([1, 4], 0, [(1, 3), (4, 3)]),
    (3, 1, [(5, 3)]),
    (2, -1, [(5, 2), (5, 1)]),
    ([0, 3], 1, [(5, 0), (5, 3)]),
])
def test_split(sizes, dim, expected):
    x_shape = (5, 3)

    def ref(x):
        if isinstance(sizes, int):
            cuts = list(range(sizes, x.shape[dim], sizes))
        else:
            cuts = list(np.cumsum(sizes)[:-1])
        return tuple(np.split(x, cuts, axis=dim))

    check_op(lambda x: cr.split(x, sizes, dim), ref, [x_shape])
    parts = cr.ones(*x_shape).split(sizes, dim)
    assert [p.shape for p in parts] == expected


@pytest.mark.parametrize("chunks,dim,expected", [
    (2, 0, [(3, 3), (2, 3)]),
    (5, 0, [(1, 3)] * 5),
    (3, 1, [(5, 1)] * 3),
    (2, -1, [(5, 2), (5, 1)]),
])
def test_chunk(chunks, dim, expected):
    x = t64(np.arange(15.0).reshape(5, 3), requires_grad=True)
    parts = cr.chunk(x, chunks, dim)
    assert [p.shape for p in parts] == expected
    np.testing.assert_array_equal(cr.cat(parts, dim).detach().numpy(), x.detach().numpy())
    check_op(lambda t: t.chunk(chunks, dim), None, [(5, 3)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim):
    check_op(lambda x: cr.unbind(x, dim),
             lambda x: tuple(np.moveaxis(x, dim, 0)), [(2, 3)])
    check_op(lambda x: x.unbind(dim), lambda x: tuple(np.moveaxis(x, dim, 0)), [(2, 3, 2)],
             gradgrad=False)


# ---------------------------------------------------------------- views and versions
def test_views_share_memory_and_version():
    base = t64(np.arange(6.0))
    v = base.view(2, 3)
    v[0, 0] = 100.0
    assert base[0].item() == 100.0
    assert base._version == v._version == 1
    e = cr.ones(3).expand(2, 3)
    assert e.shape == (2, 3)


def test_gradient_through_a_chain_of_views():
    x = t64(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = x.permute(2, 0, 1).reshape(4, 6)[1:3].t().unsqueeze(0).flatten()
    w = t64(np.arange(y.shape[0], dtype=np.float64))
    (g,) = cr.autograd.grad((y * w).sum(), x)
    expected = np.zeros((2, 3, 4))
    idx = np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1).reshape(4, 6)[1:3].T.reshape(-1)
    np.add.at(expected.reshape(-1), idx, w.numpy())
    np.testing.assert_array_equal(g.numpy(), expected)
