"""check_gradients: passes on correct models, names a wrong parameter, leaves the model as is."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.diagnostics import GradCheckReport, check_gradients


def mse(out):
    return out.pow(2).mean()


class WrongScale(cr.autograd.Function):
    """``x * w`` whose backward returns twice the right gradient for ``w``."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, 2 * (g * x).sum(0)


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.gain = nn.Parameter(cr.rand(4) + 0.5)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(WrongScale.apply(self.fc1(x).tanh(), self.gain))


def snapshot(model):
    return {
        "params": {n: (p._data.copy(), p._data.dtype, p.requires_grad,
                       None if p.grad is None else p.grad._data.copy())
                   for n, p in model.named_parameters()},
        "buffers": {n: (b._data.copy(), b._data.dtype) for n, b in model.named_buffers()},
        "training": [m.training for m in model.modules()],
    }


def assert_same(before, after):
    assert before["training"] == after["training"]
    for n, (data, dtype, rg, grad) in before["params"].items():
        data2, dtype2, rg2, grad2 = after["params"][n]
        assert dtype2 == dtype and rg2 == rg
        np.testing.assert_array_equal(data2, data)
        if grad is None:
            assert grad2 is None
        else:
            np.testing.assert_array_equal(grad2, grad)
    for n, (data, dtype) in before["buffers"].items():
        assert after["buffers"][n][1] == dtype
        np.testing.assert_array_equal(after["buffers"][n][0], data)


def test_mlp_with_dropout_passes():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3))
    x = cr.randn(5, 4)
    y = cr.randint(0, 3, (5,))
    report = check_gradients(model, nn.CrossEntropyLoss(), x, target=y)
    assert isinstance(report, GradCheckReport)
    assert report.passed and bool(report) and report.first_failure is None
    assert [r.name for r in report.rows] == ["0.weight", "0.bias", "3.weight", "3.bias",
                                             "input 0"]
    assert all(r.checked == r.size for r in report.rows)
    assert max(r.max_abs_err for r in report.rows) < 1e-7
    assert "PASSED" in str(report) and "0.weight" in str(report)


def test_cnn_with_batchnorm_passes_and_samples_big_tensors():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 2))
    x = cr.randn(2, 2, 6, 6)
    report = check_gradients(model, mse, x, max_full=64, samples=10)
    assert report.passed, str(report)
    inp = report.rows[-1]
    assert inp.name == "input 0" and inp.size == 144 and inp.checked <= 11


def test_lstm_passes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])

    report = check_gradients(Net(), mse, cr.randn(2, 4, 3), max_full=32, samples=8)
    assert report.passed, str(report)
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0"} <= {r.name for r in report.rows}


def test_attention_passes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.att(x, x, x)[0]

    report = check_gradients(Net(), mse, cr.randn(2, 3, 8), max_full=32, samples=8)
    assert report.passed, str(report)


def test_wrong_backward_fails_naming_the_parameter():
    model = Scaled()
    report = check_gradients(model, mse, cr.randn(6, 3))
    assert not report.passed
    assert report.first_failure == "gain"
    assert [r.name for r in report.failures] == ["gain"]
    row = report.failures[0]
    assert row.analytic == pytest.approx(2 * row.numerical, rel=1e-4)
    text = str(report)
    assert "FAILED" in text and "first failure: gain" in text


def test_model_left_untouched():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    model(cr.randn(8, 3)).sum().backward()
    model[1].eval()
    versions = {n: p._version for n, p in model.named_parameters()}
    before = snapshot(model)
    x = cr.randn(8, 3)
    cr.manual_seed(123)
    expected = cr.rand(3).numpy()
    cr.manual_seed(123)
    report = check_gradients(model, mse, x)
    # the global random stream continues as if no check had run
    np.testing.assert_array_equal(cr.rand(3).numpy(), expected)
    assert report.passed, str(report)
    assert report.skipped == ["0.weight"]
    assert_same(before, snapshot(model))
    assert {n: p._version for n, p in model.named_parameters()} == versions
    assert model[0].weight.dtype == cr.float32


def test_restores_even_when_the_loss_raises():
    model = nn.Linear(3, 2)
    before = snapshot(model)

    def broken(out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        check_gradients(model, broken, cr.randn(4, 3))
    assert_same(before, snapshot(model))


def test_bad_inputs_have_clear_messages():
    with pytest.raises(ValueError, match="has no parameters.*gradcheck"):
        check_gradients(nn.ReLU(), mse, cr.randn(3))
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="scalar tensor.*shape \\(4, 2\\).*mean"):
        check_gradients(model, lambda o: o, cr.randn(4, 3))
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad_\\(True\\)"):
        check_gradients(model, mse, cr.randn(4, 3))
    assert model.weight.dtype == cr.float32 and not model.weight.requires_grad
    with pytest.raises(TypeError, match="expected a chainrule.nn.Module"):
        check_gradients(lambda x: x, mse, cr.randn(3))
