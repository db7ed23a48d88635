"""Mixed precision: autocast dtype policy and GradScaler's dynamic loss scaling."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule import amp

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)


# ---------------------------------------------------------------- autocast
def test_float16_ops_round_inputs_and_return_float16():
    x = cr.randn(5, 4)
    w = cr.randn(4, 3, requires_grad=True)
    with amp.autocast("cpu", dtype=cr.float16):
        y = x @ w
    assert y.dtype == F16
    ref = x.numpy().astype(np.float16) @ w.detach().numpy().astype(np.float16)
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    y.sum().backward()
    assert w.grad.dtype == F32  # master weights get float32 gradients


def test_linear_and_conv_run_in_float16_with_float32_grads():
    lin = nn.Linear(4, 3)
    conv = nn.Conv2d(1, 2, 3)
    with amp.autocast():
        a = lin(cr.randn(2, 4))
        b = conv(cr.randn(1, 1, 5, 5))
    assert a.dtype == F16 and b.dtype == F16
    (a.float().sum() + b.float().sum()).backward()
    for p in [*lin.parameters(), *conv.parameters()]:
        assert p.dtype == F32 and p.grad.dtype == F32
    np.testing.assert_allclose(lin.bias.grad.numpy(), [2.0, 2.0, 2.0])


def test_float32_list_ops_upcast_float16_inputs():
    h = cr.randn(4, 6).half().requires_grad_()
    with amp.autocast():
        outs = {
            "softmax": h.softmax(-1),
            "log_softmax": F.log_softmax(h, -1),
            "logsumexp": cr.logsumexp(h, -1),
            "layer_norm": F.layer_norm(h, (6,)),
            "cross_entropy": F.cross_entropy(h, cr.tensor([0, 1, 2, 3])),
            "mse_loss": F.mse_loss(h, cr.zeros(4, 6)),
        }
        plain = h * 2
    for name, o in outs.items():
        assert o.dtype == F32, name
    assert plain.dtype == F16  # ops off both lists keep their input dtype
    outs["cross_entropy"].backward()
    assert h.grad.dtype == F16


def test_outside_autocast_nothing_changes():
    x = cr.randn(3, 3)
    assert (x @ x).dtype == F32
    assert cr.randn(2, 2).half().softmax(-1).dtype == F16
    assert not amp.is_autocast_enabled()
    assert amp._on[0] == 0


def test_nested_disable_and_float64_not_eligible():
    x = cr.randn(3, 3)
    with amp.autocast():
        assert amp.is_autocast_enabled()
        with amp.autocast(enabled=False):
            assert (x @ x).dtype == F32
        assert (x @ x).dtype == F16
        d = x.double()
        assert (d @ d).dtype == np.float64
    assert not amp.is_autocast_enabled()


def test_autocast_is_thread_local_and_a_decorator():
    seen = []

    def other():
        seen.append((cr.randn(2, 2) @ cr.randn(2, 2)).dtype)

    @amp.autocast()
    def inside():
        t = threading.Thread(target=other)
        t.start()
        t.join()
        return (cr.randn(2, 2) @ cr.randn(2, 2)).dtype

    assert inside() == F16
    assert seen == [F32]


def test_autocast_bad_arguments():
    with pytest.raises(ValueError, match="unsupported dtype"):
        amp.autocast(dtype=cr.float32)
    with pytest.raises(ValueError, match="bfloat16"):
        amp.autocast(dtype="bfloat16")
    with pytest.raises(ValueError, match="device_type"):
        amp.autocast("cuda")


# ---------------------------------------------------------------- GradScaler
def _one_param(value=1.0):
    w = nn.Parameter(cr.full((3,), value))
    return w, cr.optim.SGD([w], lr=0.1)


def test_scaler_scales_unscales_and_steps():
    w, opt = _one_param()
    s = amp.GradScaler(init_scale=8.0)
    loss = (w * 2).sum()
    scaled = s.scale(loss)
    assert scaled.item() == pytest.approx(8 * loss.item())
    scaled.backward()
    np.testing.assert_allclose(w.grad.numpy(), 16.0)
    s.unscale_(opt)  # for clipping: the true gradient
    np.testing.assert_allclose(w.grad.numpy(), 2.0)
    s.step(opt)  # does not unscale twice
    np.testing.assert_allclose(w.detach().numpy(), 0.8, rtol=1e-6)
    s.update()
    assert s.get_scale() == 8.0


def test_overflow_skips_step_and_halves_scale():
    w, opt = _one_param()
    s = amp.GradScaler()
    assert s.get_scale() == 2.0 ** 16
    s.scale((w * 2).sum()).backward()
    w.grad._data[1] = np.inf  # an overflow in backward
    before = w.detach().numpy().copy()
    assert s.step(opt) is None
    np.testing.assert_array_equal(w.detach().numpy(), before)
    s.update()
    assert s.get_scale() == 2.0 ** 15


def test_huge_loss_overflows_float16_backward_and_is_skipped():
    lin = nn.Linear(4, 2)
    opt = cr.optim.SGD(lin.parameters(), lr=0.1)
    s = amp.GradScaler(init_scale=2.0 ** 24)
    before = lin.weight.detach().numpy().copy()
    with amp.autocast():
        out = lin(cr.ones(2, 4) * 100)
        loss = out.float().sum()
    with np.errstate(over="ignore"):  # the float16 gradient cast overflows, on purpose
        s.scale(loss).backward()  # 2**24 gradients overflow the float16 activations
    s.step(opt)
    s.update()
    np.testing.assert_array_equal(lin.weight.detach().numpy(), before)
    assert s.get_scale() == 2.0 ** 23


def test_scale_grows_after_growth_interval():
    w, opt = _one_param()
    s = amp.GradScaler(init_scale=4.0, growth_interval=2)
    for _ in range(2):
        opt.zero_grad()
        s.scale(w.sum()).backward()
        s.step(opt)
        s.update()
    assert s.get_scale() == 8.0
    assert s.state_dict()["_growth_tracker"] == 0


def test_misuse_raises_clear_errors():
    w, opt = _one_param()
    s = amp.GradScaler()
    w.grad = cr.ones(3)
    with pytest.raises(RuntimeError, match="scale"):
        s.unscale_(opt)
    with pytest.raises(RuntimeError, match="scale"):
        s.step(opt)
    np.testing.assert_array_equal(w.grad.numpy(), 1.0)  # nothing changed
    s.scale(w.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="closure"):
        s.step(opt, closure=lambda: None)
    s.update()
    with pytest.raises(RuntimeError, match="scale"):
        s.step(opt)  # a new iteration without scale()
    with pytest.raises(ValueError, match="growth_factor"):
        amp.GradScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff_factor"):
        amp.GradScaler(backoff_factor=1.5)


def test_state_dict_round_trip_and_disabled_scaler():
    s = amp.GradScaler(init_scale=32.0, growth_interval=7)
    w, opt = _one_param()
    s.scale(w.sum()).backward()
    s.step(opt)
    s.update()
    sd = s.state_dict()
    assert sd == {"scale": 32.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                  "growth_interval": 7, "_growth_tracker": 1}
    t = amp.GradScaler()
    t.load_state_dict(sd)
    assert t.get_scale() == 32.0 and t.state_dict() == sd
    off = amp.GradScaler(enabled=False)
    assert off.state_dict() == {} and off.get_scale() == 1.0
    loss = w.sum()
    assert off.scale(loss) is loss
    with pytest.raises(RuntimeError, match="empty"):
        t.load_state_dict({})


# ---------------------------------------------------------------- end to end
def _train_digits(use_amp: bool) -> float:
    x, y = cr.datasets.load_digits()
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:1400], perm[1400:]
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    opt = cr.optim.Adam(model.parameters(), lr=3e-3)
    scaler = amp.GradScaler(enabled=use_amp)
    rng = np.random.default_rng(1)
    for _ in range(3):
        order = tr[rng.permutation(len(tr))]
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            with amp.autocast(enabled=use_amp):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            assert loss.dtype == F32
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    assert all(p.dtype == F32 for p in model.parameters())
    with cr.no_grad(), amp.autocast(enabled=use_amp):
        pred = model(x[te]).numpy().argmax(-1)
    return float((pred == y[te].numpy()).mean())


def test_amp_trains_digits_mlp_as_well_as_float32():
    pytest.importorskip("sklearn")
    full = _train_digits(False)
    mixed = _train_digits(True)
    assert full > 0.9
    assert abs(mixed - full) <= 0.01
