"""Max, average and adaptive average pooling: forward against naive NumPy loops (PyTorch's
window, divisor and ceil-mode rules), the first-max tie rule, gradients, layer errors."""

import itertools
import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(2)


def t(a, grad=False):
    return cr.tensor(a, requires_grad=grad)


def out_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size, written out from its documentation."""
    num = n + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def naive_max_pool2d(x, k, s, p, d, ceil_mode):
    n, c, h, w = x.shape
    oh = out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.zeros((n, c, oh, ow))
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best, arg = -np.inf, None
        for a, e in itertools.product(range(k[0]), range(k[1])):
            r = i * s[0] - p[0] + a * d[0]
            q = j * s[1] - p[1] + e * d[1]
            if 0 <= r < h and 0 <= q < w and (arg is None or x[b, ch, r, q] > best):
                best, arg = x[b, ch, r, q], r * w + q
        y[b, ch, i, j] = best
        idx[b, ch, i, j] = arg
    return y, idx


def naive_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    n, c, h, w = x.shape
    oh = out_size(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = out_size(w, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
        h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
        size = (h1 - h0) * (w1 - w0)
        h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
        total = x[:, :, h0c:h1c, w0c:w1c].sum(axis=(2, 3))
        div = divisor_override or (size if count_include_pad else (h1c - h0c) * (w1c - w0c))
        y[:, :, i, j] = total / div
    return y


def naive_adaptive_avg_pool2d(x, oh, ow):
    h, w = x.shape[2:]
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
        y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


MAX_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 1), (1, 0), (2, 1), False),
    ((2, 2), (2, 2), (0, 0), (1, 1), True),
    ((3, 3), (3, 2), (1, 1), (1, 1), True),
]


@pytest.mark.parametrize("k, s, p, d, ceil_mode", MAX_CASES)
def test_max_pool2d_matches_naive_with_indices(k, s, p, d, ceil_mode):
    x = RNG.standard_normal((2, 3, 7, 6))
    y, idx = F.max_pool2d(t(x), k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
    ref, ref_idx = naive_max_pool2d(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y.numpy(), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    assert idx.dtype == cr.int64


@pytest.mark.parametrize("k, s, p, d, ceil_mode", MAX_CASES[1:4])
def test_max_pool2d_gradcheck_and_gradgradcheck(k, s, p, d, ceil_mode):
    x = t(RNG.standard_normal((1, 2, 6, 5)), True)

    def f(x):
        return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil_mode)

    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = t([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 3.0]]]], True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0, 1, 1, 0], [0, 0, 0, 0]]]])
    # overlapping windows: a shared maximum collects from every window that picks it
    x = t([[[0.0, 5.0, 1.0, 2.0]]], True)
    F.max_pool1d(x, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[0, 2, 0, 1]]])


def test_max_pool1d_and_float32():
    x = RNG.standard_normal((2, 3, 11)).astype(np.float32)
    y = F.max_pool1d(t(x), 3, 2, 1, ceil_mode=True)
    ref, _ = naive_max_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1), (1, 1), True)
    np.testing.assert_array_equal(y.numpy(), ref[:, :, 0])
    assert y.dtype == cr.float32


AVG_CASES = [
    # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (2, 1), (1, 1), False, False, None),
    ((3, 3), (1, 1), (1, 1), False, True, 5),
]


@pytest.mark.parametrize("k, s, p, ceil_mode, cip, div", AVG_CASES)
def test_avg_pool2d_matches_naive(k, s, p, ceil_mode, cip, div):
    x = RNG.standard_normal((2, 2, 7, 6))
    y = F.avg_pool2d(t(x), k, s, p, ceil_mode, cip, div)
    np.testing.assert_allclose(y.numpy(), naive_avg_pool2d(x, k, s, p, ceil_mode, cip, div),
                               atol=1e-12)


@pytest.mark.parametrize("k, s, p, ceil_mode, cip, div", AVG_CASES[1:4])
def test_avg_pool2d_gradcheck_and_gradgradcheck(k, s, p, ceil_mode, cip, div):
    x = t(RNG.standard_normal((1, 2, 5, 5)), True)

    def f(x):
        return F.avg_pool2d(x, k, s, p, ceil_mode, cip, div)

    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


def test_avg_pool1d_matches_naive():
    x = RNG.standard_normal((2, 3, 10))
    y = F.avg_pool1d(t(x), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    ref = naive_avg_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1), True, False)[:, :, 0]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("size", [1, (3, 2), (4, 5), (None, 3), (7, 6), (2, 3)])
def test_adaptive_avg_pool2d_matches_pytorchs_windows(size):
    x = RNG.standard_normal((2, 3, 7, 6))
    y = F.adaptive_avg_pool2d(t(x), size)
    oh, ow = (size, size) if isinstance(size, int) else size
    oh = 7 if oh is None else oh
    np.testing.assert_allclose(y.numpy(), naive_adaptive_avg_pool2d(x, oh, ow), atol=1e-12)


@pytest.mark.parametrize("size", [(3, 4), (2, 3)])
def test_adaptive_avg_pool2d_gradcheck(size):
    x = t(RNG.standard_normal((1, 2, 5, 6)), True)

    def f(x):
        return F.adaptive_avg_pool2d(x, size)

    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


def test_adaptive_avg_pool1d():
    x = RNG.standard_normal((2, 3, 7))
    y = F.adaptive_avg_pool1d(t(x), 3)
    ref = naive_adaptive_avg_pool2d(x[:, :, None], 1, 3)[:, :, 0]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)


def test_modules_forward_like_functional_and_hold_no_state():
    x = t(RNG.standard_normal((2, 3, 8, 8)))
    cases = [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
        (nn.AvgPool2d(2, count_include_pad=False), F.avg_pool2d(x, 2)),
        (nn.AdaptiveAvgPool2d((3, None)), F.adaptive_avg_pool2d(x, (3, 8))),
    ]
    for m, ref in cases:
        np.testing.assert_array_equal(m(x).numpy(), ref.numpy())
        assert m.state_dict() == {}
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert y.shape == idx.shape == (2, 3, 4, 4)
    assert nn.MaxPool1d(2)(t(RNG.standard_normal((2, 3, 8)))).shape == (2, 3, 4)
    assert nn.AvgPool1d(2)(t(RNG.standard_normal((3, 8)))).shape == (3, 4)


@pytest.mark.parametrize("m, shape, pattern", [
    (nn.MaxPool2d(2), (2, 8, 8, 8, 8), r"MaxPool2d: expected input of shape \(N, C, H, W\)"
                                       r".*got shape \(2, 8, 8, 8, 8\)"),
    (nn.AvgPool2d(2), (8,), r"AvgPool2d: expected .*got shape \(8,\)"),
    (nn.MaxPool1d(2), (2, 3, 4, 4), r"MaxPool1d: expected input of shape \(N, C, W\)"),
    (nn.AdaptiveAvgPool2d(2), (4, 4), r"AdaptiveAvgPool2d: expected .*got shape \(4, 4\)"),
])
def test_bad_input_rank_names_layer_and_shape(m, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        m(cr.randn(*shape))


def test_functional_errors():
    with pytest.raises(ValueError, match="pad should be at most half"):
        F.max_pool2d(cr.randn(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(ValueError, match="output size is too small"):
        F.max_pool2d(cr.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="output_size must have 2 elements"):
        F.adaptive_avg_pool2d(cr.randn(1, 1, 4, 4), (1, 2, 3))


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 9, 7)).astype(np.float32)
    tx = torch.from_numpy(x)
    np.testing.assert_allclose(
        F.max_pool2d(t(x), 3, 2, 1, ceil_mode=True).numpy(),
        torch.nn.functional.max_pool2d(tx, 3, 2, 1, ceil_mode=True).numpy())
    np.testing.assert_allclose(
        F.avg_pool2d(t(x), 3, 2, 1, ceil_mode=True, count_include_pad=False).numpy(),
        torch.nn.functional.avg_pool2d(tx, 3, 2, 1, ceil_mode=True,
                                       count_include_pad=False).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        F.adaptive_avg_pool2d(t(x), (4, 5)).numpy(),
        torch.nn.functional.adaptive_avg_pool2d(tx, (4, 5)).numpy(), rtol=1e-5, atol=1e-6)
