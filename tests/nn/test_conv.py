"""Conv1d, Conv2d, ConvTranspose2d and their functional forms: forward against naive NumPy
loops, gradients of input and every parameter, state dicts against PyTorch's documented
shapes, default initialisation, input errors, and a small CNN that learns."""

import itertools
import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1)


def naive_conv2d(x, w, b, stride, padding, dilation, groups):
    """Loops over output positions; padding is ((top, bottom), (left, right))."""
    n, c, _h, _w = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    xp = np.pad(x, [(0, 0), (0, 0), padding[0], padding[1]])
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r, s = i * stride[0], j * stride[1]
        patch = xp[:, :, r:r + dilation[0] * (kh - 1) + 1:dilation[0],
                   s:s + dilation[1] * (kw - 1) + 1:dilation[1]]
        for g in range(groups):
            y[:, g * og:(g + 1) * og, i, j] = np.einsum(
                "nckl,ockl->no", patch[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og])
    if b is not None:
        y += b[None, :, None, None]
    return y


def naive_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """Scatter every input pixel times the kernel into the (padded) output."""
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = cin // groups
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    full = np.zeros((n, og * groups, oh + 2 * padding[0], ow + 2 * padding[1]))
    for i, j, a, c in itertools.product(range(h), range(wd), range(kh), range(kw)):
        r = i * stride[0] + a * dilation[0]
        s = j * stride[1] + c * dilation[1]
        if r >= full.shape[2] or s >= full.shape[3]:
            continue
        for g in range(groups):
            full[:, g * og:(g + 1) * og, r, s] += x[:, g * cg:(g + 1) * cg, i, j] @ \
                w[g * cg:(g + 1) * cg, :, a, c]
    y = full[:, :, padding[0]:padding[0] + oh, padding[1]:padding[1] + ow]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def t(a, grad=False):
    return cr.tensor(a, requires_grad=grad)


# ---------------------------------------------------------------------------- functional
@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1),
    (2, 1, 1, 1),
    ((2, 1), (1, 2), (1, 2), 2),
    (1, "valid", 1, 2),
    (1, "same", (2, 1), 1),
])
def test_conv2d_matches_naive(stride, padding, dilation, groups):
    x = RNG.standard_normal((2, 4, 7, 6))
    w = RNG.standard_normal((6, 4 // groups, 3, 2))
    b = RNG.standard_normal(6)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        tot = [d[0] * 2, d[1] * 1]
        pads = tuple((v // 2, v - v // 2) for v in tot)
    else:
        p = padding if isinstance(padding, tuple) else (padding, padding)
        pads = ((p[0], p[0]), (p[1], p[1]))
    y = F.conv2d(t(x), t(w), t(b), stride, padding, dilation, groups)
    np.testing.assert_allclose(y.numpy(), naive_conv2d(x, w, b, s, pads, d, groups),
                               atol=1e-12)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]


def test_conv1d_same_with_even_kernel_pads_the_extra_element_after():
    x = RNG.standard_normal((2, 3, 8))
    w = RNG.standard_normal((2, 3, 4))
    y = F.conv1d(t(x), t(w), padding="same")
    ref = naive_conv2d(x[:, :, None], w[:, :, None], None, (1, 1), ((0, 0), (1, 2)), (1, 1),
                       1)[:, :, 0]
    assert y.shape == (2, 2, 8)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)


def test_conv2d_unbatched_input():
    x = RNG.standard_normal((3, 5, 5))
    w = RNG.standard_normal((2, 3, 3, 3))
    y = F.conv2d(t(x), t(w))
    assert y.shape == (2, 3, 3)
    np.testing.assert_allclose(y.numpy(), naive_conv2d(x[None], w, None, (1, 1),
                                                       ((0, 0), (0, 0)), (1, 1), 1)[0])


@pytest.mark.parametrize("stride, padding, output_padding, groups, dilation", [
    (1, 0, 0, 1, 1),
    (2, 1, 1, 1, 1),
    ((2, 3), (0, 1), (1, 2), 2, (1, 2)),
    (1, 0, 1, 1, 2),  # output_padding >= stride is allowed when < dilation
])
def test_conv_transpose2d_matches_naive(stride, padding, output_padding, groups, dilation):
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    x = RNG.standard_normal((2, 4, 3, 4))
    w = RNG.standard_normal((4, 3, 3, 2))
    b = RNG.standard_normal(3 * groups)
    y = F.conv_transpose2d(t(x), t(w), t(b), stride, padding, output_padding, groups,
                           dilation)
    ref = naive_conv_transpose2d(x, w, b, pair(stride), pair(padding), pair(output_padding),
                                 groups, pair(dilation))
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)


def test_conv2d_double_backward_in_input_weight_and_bias():
    x = t(RNG.standard_normal((1, 2, 5, 4)), True)
    w = t(RNG.standard_normal((4, 1, 2, 3)), True)
    b = t(RNG.standard_normal(4), True)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2)

    assert gradcheck(f, (x, w, b))
    assert gradgradcheck(f, (x, w, b))


def test_conv_transpose2d_double_backward():
    x = t(RNG.standard_normal((1, 2, 3, 3)), True)
    w = t(RNG.standard_normal((2, 2, 3, 2)), True)

    def f(x, w):
        return F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)

    assert gradcheck(f, (x, w))
    assert gradgradcheck(f, (x, w))


# ---------------------------------------------------------------------------- modules
def check_module_grads(m, x):
    params = list(m.parameters())
    return gradcheck(lambda x, *p: m(x), (x, *params))


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=1, groups=2), (2, 2, 7)),
    (lambda: nn.Conv2d(3, 2, (3, 2), dilation=(1, 2), padding="same"), (1, 3, 5, 4)),
    (lambda: nn.Conv2d(4, 4, 2, padding=1, dilation=2, groups=2, bias=False), (2, 4, 4, 4)),
    (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), (1, 2, 4, 5)),
    (lambda: nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="reflect"), (1, 2, 4, 5)),
    (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate"), (1, 2, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
     (1, 2, 3, 3)),
])
def test_module_gradcheck_input_and_every_parameter(make, shape):
    cr.manual_seed(0)
    m = make().double()
    x = cr.randn(*shape, dtype=cr.float64, requires_grad=True)
    assert check_module_grads(m, x)


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
def test_padding_modes_match_numpy_pad(mode):
    m = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = RNG.standard_normal((2, 2, 4, 5))
    np_mode = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}[mode]
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode=np_mode)
    ref = naive_conv2d(xp, m.weight.detach().numpy(), m.bias.detach().numpy(), (1, 1),
                       ((0, 0), (0, 0)), (1, 1), 1)
    np.testing.assert_allclose(m(t(x)).detach().numpy(), ref, atol=1e-12)


# state_dict keys and shapes, from the shapes in PyTorch's documentation of each layer
STATE_TABLES = [
    (lambda: nn.Conv1d(4, 6, 3), {"weight": (6, 4, 3), "bias": (6,)}),
    (lambda: nn.Conv1d(4, 6, 3, groups=2, bias=False), {"weight": (6, 2, 3)}),
    (lambda: nn.Conv2d(1, 6, 5), {"weight": (6, 1, 5, 5), "bias": (6,)}),
    (lambda: nn.Conv2d(6, 16, (5, 3), groups=2), {"weight": (16, 3, 5, 3), "bias": (16,)}),
    (lambda: nn.Conv2d(3, 8, 3, bias=False), {"weight": (8, 3, 3, 3)}),
    (lambda: nn.ConvTranspose2d(16, 8, 3), {"weight": (16, 8, 3, 3), "bias": (8,)}),
    (lambda: nn.ConvTranspose2d(16, 8, (3, 2), groups=4),
     {"weight": (16, 2, 3, 2), "bias": (8,)}),
    (lambda: nn.ConvTranspose1d(4, 6, 3), {"weight": (4, 6, 3), "bias": (6,)}),
]


@pytest.mark.parametrize("make, table", STATE_TABLES)
def test_state_dict_matches_pytorch(make, table):
    sd = make().state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == table
    assert list(sd) == list(table)
    assert all(v.dtype == cr.float32 for v in sd.values())


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(6, 16, 5), lambda: nn.Conv1d(3, 4, 7),
                                  lambda: nn.ConvTranspose2d(8, 4, 3, groups=2)])
def test_default_init_bounds_are_pytorchs(make):
    # kaiming_uniform_(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    m = make()
    w = m.weight.detach().numpy()
    bound = 1.0 / math.sqrt(w.shape[1] * math.prod(w.shape[2:]))
    for p in (w, m.bias.detach().numpy()):
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.5 * bound
    assert abs(w.mean()) < 0.2 * bound


@pytest.mark.parametrize("make, bad, pattern", [
    (lambda: nn.Conv2d(3, 6, 3), (2, 4, 8, 8),
     r"Conv2d: expected input of shape \(N, 3, H, W\).*got shape \(2, 4, 8, 8\)"),
    (lambda: nn.Conv2d(3, 6, 3), (2, 3, 8),
     r"Conv2d: expected input of shape \(N, 3, H, W\).*got shape \(2, 3, 8\)"),
    (lambda: nn.Conv1d(2, 6, 3), (4, 2, 3, 8),
     r"Conv1d: expected input of shape \(N, 2, W\).*got shape \(4, 2, 3, 8\)"),
    (lambda: nn.ConvTranspose2d(4, 2, 3), (1, 2, 5, 5),
     r"ConvTranspose2d: expected input of shape \(N, 4, H, W\).*got shape \(1, 2, 5, 5\)"),
])
def test_bad_input_names_layer_expected_and_received(make, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()(cr.randn(*bad))


def test_functional_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"conv2d: given groups=1 and weight of shape "
                                         r"\(6, 1, 5, 5\).*to have 1 channels, but got 3"):
        F.conv2d(cr.randn(2, 3, 28, 28), cr.randn(6, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: calculated padded input size"):
        F.conv2d(cr.randn(1, 1, 3, 3), cr.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="not supported for strided"):
        F.conv2d(cr.randn(1, 1, 5, 5), cr.randn(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(cr.randn(1, 1, 5, 5), cr.randn(1, 1, 3, 3, dtype=cr.float64))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(cr.randn(1, 1, 3, 3), cr.randn(1, 1, 3, 3), stride=2,
                           output_padding=2)


def test_constructor_errors():
    with pytest.raises(ValueError, match="in_channels .* divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(3, 6, 3, stride=1, output_padding=1)


def test_conv_transpose_output_size_argument():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = cr.randn(1, 2, 4, 4)
    assert m(x).shape == (1, 3, 7, 7)
    assert m(x, output_size=(8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="output_size"):
        m(x, output_size=(10, 10))


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = RNG.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    y = F.conv2d(t(x), t(w), t(b), **kw)
    ty = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                    torch.from_numpy(b), **kw)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-5, atol=1e-5)
    wt = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    kt = dict(stride=2, padding=1, output_padding=1, groups=2)
    y = F.conv_transpose2d(t(x), t(wt), **kt)
    ty = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), **kt)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- training
def _bars(n, rng):
    """8x8 images holding one horizontal (label 0) or vertical (label 1) bar, plus noise."""
    x = rng.normal(0.0, 0.1, (n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, n)
    pos = rng.integers(0, 8, n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] += 1.0
        else:
            x[i, 0, :, pos[i]] += 1.0
    return x, y


def test_small_cnn_learns_bars():
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    x_np, y_np = _bars(64, rng)
    x, y = cr.tensor(x_np), cr.tensor(y_np)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 2),
    )
    params = list(net.parameters())

    def loss_fn():
        logits = net(x)
        logp = logits.log_softmax(1)
        return -logp.gather(1, y.reshape(-1, 1)).mean()

    first = loss_fn().item()
    for _ in range(60):
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        with cr.no_grad():
            for p in params:
                p.sub_(0.2 * p.grad)
    net.eval()
    final = loss_fn().item()
    acc = (net(x).argmax(1).numpy() == y_np).mean()
    assert final < 0.1 < first
    assert acc == 1.0


def test_same_padding_with_a_padding_mode_and_even_kernel():
    m = nn.Conv1d(1, 1, 4, padding="same", padding_mode="circular", bias=False).double()
    x = RNG.standard_normal((1, 1, 6))
    xp = np.concatenate([x[..., -1:], x, x[..., :2]], axis=-1)  # 1 before, 2 after
    ref = naive_conv2d(xp[:, :, None], m.weight.detach().numpy()[:, :, None], None, (1, 1),
                       ((0, 0), (0, 0)), (1, 1), 1)[:, :, 0]
    y = m(t(x))
    assert y.shape == (1, 1, 6)
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-12)
