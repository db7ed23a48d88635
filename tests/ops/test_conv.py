"""Convolution and pooling primitives: forward against naive NumPy loops, the adjoint
identities that tie conv / conv_input / conv_weight together, gradcheck and gradgradcheck."""

import itertools

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import conv as C

RNG = np.random.default_rng(0)


def naive_conv(x, w, stride, padding, dilation, groups):
    """Direct loops over output positions (N-d), padding given as (lo, hi) pairs."""
    n, c = x.shape[:2]
    o = w.shape[0]
    ksize = w.shape[2:]
    cg = c // groups
    og = o // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + list(padding))
    out = tuple((s - d * (k - 1) - 1) // st + 1
                for s, k, st, d in zip(xp.shape[2:], ksize, stride, dilation))
    y = np.zeros((n, o) + out)
    for pos in itertools.product(*(range(v) for v in out)):
        win = tuple(slice(p * st, p * st + d * (k - 1) + 1, d)
                    for p, st, d, k in zip(pos, stride, dilation, ksize))
        patch = xp[(slice(None), slice(None)) + win]  # (N, C, *k)
        for g in range(groups):
            pg = patch[:, g * cg:(g + 1) * cg].reshape(n, -1)
            wg = w[g * og:(g + 1) * og].reshape(og, -1)
            y[(slice(None), slice(g * og, (g + 1) * og)) + pos] = pg @ wg.T
    return y


# (x shape, w shape, stride, padding pairs, dilation, groups)
CONV_CASES = [
    ((2, 3, 7), (4, 3, 3), (1,), ((0, 0),), (1,), 1),
    ((2, 4, 9), (4, 2, 2), (2,), ((1, 2),), (2,), 2),
    ((2, 3, 6, 5), (2, 3, 3, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((1, 4, 6, 5), (4, 2, 3, 3), (2, 1), ((1, 1), (2, 0)), (1, 2), 2),
    ((2, 4, 5, 5), (4, 1, 2, 2), (1, 2), ((1, 0), (1, 1)), (2, 1), 4),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv_forward_matches_naive_loops(xs, ws, stride, padding, dilation, groups):
    x = RNG.standard_normal(xs)
    w = RNG.standard_normal(ws)
    y = C.conv(cr.tensor(x), cr.tensor(w), stride, padding, dilation, groups)
    np.testing.assert_allclose(y.numpy(), naive_conv(x, w, stride, padding, dilation, groups),
                               atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv_input_and_weight_are_the_adjoints(xs, ws, stride, padding, dilation, groups):
    # <conv(x, w), y> = <x, conv_input(y, w)> = <w, conv_weight(x, y)>
    x = RNG.standard_normal(xs)
    w = RNG.standard_normal(ws)
    y = RNG.standard_normal(C.conv(x, w, stride, padding, dilation, groups).shape)
    lhs = np.sum(C.conv(x, w, stride, padding, dilation, groups) * y)
    gx = C.conv_input(y, w, xs[2:], stride, padding, dilation, groups)
    gw = C.conv_weight(x, y, ws[2:], stride, padding, dilation, groups)
    assert gx.shape == xs and gw.shape == ws
    np.testing.assert_allclose(np.sum(x * gx), lhs, rtol=1e-10)
    np.testing.assert_allclose(np.sum(w * gw), lhs, rtol=1e-10)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[4]])
def test_conv_family_gradcheck_and_gradgradcheck(case):
    xs, ws, stride, padding, dilation, groups = case
    x = cr.tensor(RNG.standard_normal(xs), requires_grad=True)
    w = cr.tensor(RNG.standard_normal(ws), requires_grad=True)
    y = cr.tensor(RNG.standard_normal(C.conv(x._data, w._data, stride, padding, dilation,
                                             groups).shape), requires_grad=True)

    def fwd(x, w):
        return C.conv(x, w, stride, padding, dilation, groups)

    def inp(y, w):
        return C.conv_input(y, w, xs[2:], stride, padding, dilation, groups)

    def wgt(x, y):
        return C.conv_weight(x, y, ws[2:], stride, padding, dilation, groups)

    for fn, args in ((fwd, (x, w)), (inp, (y, w)), (wgt, (x, y))):
        assert cr.autograd.gradcheck(fn, args)
        assert cr.autograd.gradgradcheck(fn, args)


def test_conv_input_onto_a_larger_input_crops_in_its_vjp():
    # conv_transpose with output_padding >= stride (allowed when < dilation): the last
    # input rows are touched by no window, and the VJP in y must still have y's shape.
    y = cr.tensor(RNG.standard_normal((1, 2, 3)), requires_grad=True)
    w = cr.tensor(RNG.standard_normal((2, 1, 2)), requires_grad=True)

    def f(y, w):
        return C.conv_input(y, w, (7,), (1,), ((0, 0),), (3,), 1)

    assert f(y, w).shape == (1, 1, 7)
    assert cr.autograd.gradcheck(f, (y, w))
    assert cr.autograd.gradgradcheck(f, (y, w))


def test_conv_keeps_float32_and_returns_contiguous():
    x = cr.randn(2, 3, 8, 8)
    w = cr.randn(4, 3, 3, 3)
    y = C.conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.dtype == cr.float32
    assert y.numpy().flags.c_contiguous
    x.requires_grad_()
    w.requires_grad_()
    gx, gw = cr.autograd.grad(C.conv(x, w, (2, 2), ((1, 1), (1, 1)), (1, 1), 1).sum(), [x, w])
    assert gx.dtype == cr.float32 and gw.dtype == cr.float32


def test_window_that_does_not_fit_raises_before_reading_memory():
    with pytest.raises(ValueError, match=r"conv: kernel \(5,\).*spatial size \(3,\)"):
        C.conv(np.zeros((1, 1, 3)), np.zeros((1, 1, 5)), (1,), ((0, 0),), (1,), 1)
    with pytest.raises(ValueError, match="conv_transpose"):
        C.conv_input(np.zeros((1, 1, 4)), np.zeros((1, 1, 3)), (3,), (1,), ((0, 0),), (1,), 1)


# ---------------------------------------------------------------------------- pooling
def naive_max_pool(x, ksize, stride, padding, dilation, out):
    """Loop reference: value and flat-per-plane index of the first maximum (NaN wins)."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    vals = np.full((n, c) + out, -np.inf)
    idx = np.zeros((n, c) + out, dtype=np.int64)
    for b, ch in itertools.product(range(n), range(c)):
        for pos in itertools.product(*(range(v) for v in out)):
            best, best_i = -np.inf, None
            for offs in itertools.product(*(range(k) for k in ksize)):
                coord = tuple(p * s + o * d - lo for p, s, o, d, (lo, _hi)
                              in zip(pos, stride, offs, dilation, padding))
                if any(q < 0 or q >= m for q, m in zip(coord, spatial)):
                    continue
                v = x[(b, ch) + coord]
                if best_i is None or v > best or np.isnan(v):
                    best, best_i = v, np.ravel_multi_index(coord, spatial)
            vals[(b, ch) + pos] = best
            idx[(b, ch) + pos] = best_i
    return vals, idx


POOL_CASES = [
    # (x shape, kernel, stride, padding pairs, dilation)
    ((2, 2, 6, 6), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ((1, 2, 7, 5), (3, 2), (2, 1), ((1, 1), (1, 1)), (1, 1)),
    ((1, 3, 7, 7), (3, 3), (1, 2), ((1, 1), (0, 0)), (2, 1)),
    ((2, 2, 9), (3,), (2,), ((1, 2),), (1,)),
]


@pytest.mark.parametrize("xs, k, s, p, d", POOL_CASES)
def test_max_pool_indices_and_values_match_naive(xs, k, s, p, d):
    x = RNG.standard_normal(xs)
    x[0, 0].flat[:3] = 2.5  # a tie inside the first window
    out = C.conv_out_sizes(xs[2:], k, s, p, d)
    flat, unique = C.max_pool_indices(x, k, s, p, d, out)
    vals, idx = naive_max_pool(x, k, s, p, d, out)
    np.testing.assert_array_equal(C.plane_indices(flat, xs[2:]), idx)
    np.testing.assert_array_equal(C.take_flat(x, flat, unique), vals)


def test_max_pool_nan_wins_and_propagates():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    out = (2, 2)
    flat, _ = C.max_pool_indices(x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), out)
    assert flat[0, 0, 0, 0] == 1
    assert np.isnan(C.take_flat(x, flat, True)[0, 0, 0, 0])


@pytest.mark.parametrize("xs, k, s, p, d", POOL_CASES)
def test_max_pool_gather_gradcheck_and_gradgradcheck(xs, k, s, p, d):
    x = cr.tensor(RNG.standard_normal(xs), requires_grad=True)
    out = C.conv_out_sizes(xs[2:], k, s, p, d)
    flat, unique = C.max_pool_indices(x._data, k, s, p, d, out)

    def f(x):
        return C.take_flat(x, flat, unique)

    assert cr.autograd.gradcheck(f, (x,))
    assert cr.autograd.gradgradcheck(f, (x,))


def test_put_flat_accumulates_repeated_indices():
    g = np.array([1.0, 2.0, 3.0])
    idx = np.array([0, 2, 0])
    np.testing.assert_array_equal(C.put_flat(g, idx, (3,), False), [4.0, 0.0, 2.0])


def naive_sum_pool(x, ksize, stride, padding):
    xp = np.pad(x, [(0, 0), (0, 0)] + list(padding))
    out = tuple((m - k) // s + 1 for m, k, s in zip(xp.shape[2:], ksize, stride))
    y = np.zeros(x.shape[:2] + out)
    for pos in itertools.product(*(range(v) for v in out)):
        win = tuple(slice(q * s, q * s + k) for q, s, k in zip(pos, stride, ksize))
        y[(slice(None), slice(None)) + pos] = xp[(slice(None), slice(None)) + win].sum(
            axis=tuple(range(2, 2 + len(ksize))))
    return y


@pytest.mark.parametrize("xs, k, s, p", [
    ((2, 2, 6, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((1, 2, 7, 5), (3, 2), (2, 1), ((1, 2), (1, 1))),
    ((2, 3, 8), (3,), (2,), ((1, 1),)),
])
def test_sum_pool_matches_naive_and_gradchecks(xs, k, s, p):
    x = cr.tensor(RNG.standard_normal(xs), requires_grad=True)
    np.testing.assert_allclose(C.sum_pool(x, k, s, p).detach().numpy(),
                               naive_sum_pool(x._data, k, s, p), atol=1e-12)

    def f(x):
        return C.sum_pool(x, k, s, p)

    assert cr.autograd.gradcheck(f, (x,))
    assert cr.autograd.gradgradcheck(f, (x,))


def test_column_cache_serves_the_weight_gradient_once():
    x = cr.randn(2, 3, 6, 6, dtype=cr.float64)
    w = cr.randn(4, 3, 3, 3, dtype=cr.float64, requires_grad=True)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    cache = C.ColumnCache()
    y = C.conv(x, w, *args, cache)
    assert cache.cols is not None
    (g_cached,) = cr.autograd.grad(y.sum(), [w], retain_graph=True)
    assert cache.cols is None  # freed once used
    (g_again,) = cr.autograd.grad(y.sum(), [w])  # rebuilt when asked a second time
    (g_plain,) = cr.autograd.grad(C.conv(x, w, *args).sum(), [w])
    np.testing.assert_allclose(g_cached.numpy(), g_plain.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_again.numpy(), g_plain.numpy(), rtol=1e-12)
