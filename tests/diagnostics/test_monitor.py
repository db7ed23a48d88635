"""GradientMonitor: statistics, vanishing/exploding alarms, fit callback, summary, plots."""

import math
import sys
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.diagnostics import (
    ExplodingGradientWarning,
    GradientMonitor,
    GradientWarning,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
)


def sigmoid_mlp(depth=20, width=16):
    layers = []
    for i in range(depth):
        layers += [(f"fc{i}", nn.Linear(width, width)), (f"act{i}", nn.Sigmoid())]
    layers.append(("out", nn.Linear(width, 1)))
    return nn.Sequential(OrderedDict(layers))


class Block(nn.Module):
    """``x + s * relu(W x + b)`` with He init; ``s = 1/sqrt(depth)`` keeps the sum bounded."""

    def __init__(self, width, scale):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.scale = scale
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return x + self.scale * self.act(self.fc(x))


class ResNet(nn.Module):
    def __init__(self, depth=20, width=16):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width, depth ** -0.5) for _ in range(depth)])
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        return self.head(self.blocks(x))


def train(model, monitor, steps, lr, x, y):
    opt = cr.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        monitor.record()
        opt.step()
        monitor.after_step()


@pytest.fixture
def data():
    return cr.randn(32, 16), cr.randn(32, 1)


def test_deep_sigmoid_mlp_flags_vanishing_naming_first_layers(data):
    model = sigmoid_mlp()
    monitor = GradientMonitor(model)
    with pytest.warns(VanishingGradientWarning) as caught:
        train(model, monitor, 3, 0.01, *data)
    assert len(caught) == 1  # warned once, not once per step
    msg = str(caught[0].message)
    assert "fc0 (" in msg and "fc1 (" in msg and "out: " in msg
    assert [i["kind"] for i in monitor.issues] == ["vanishing"]
    rec = monitor.records[0]["layers"]
    assert rec["fc0"]["grad_norm"] < 1e-6 * rec["out"]["grad_norm"]
    assert monitor.layers[:3] == ["fc0", "fc1", "fc2"] and monitor.layers[-1] == "out"


def test_relu_he_init_residual_does_not_warn(data):
    model = ResNet()
    monitor = GradientMonitor(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        train(model, monitor, 5, 1e-3, *data)
    assert monitor.issues == []
    layers = monitor.records[0]["layers"]
    assert layers["blocks.0.fc"]["grad_norm"] > 1e-3 * layers["head"]["grad_norm"]
    assert "issues: none detected" in monitor.summary()


def test_huge_learning_rate_triggers_exploding_warning(data):
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 1))
    monitor = GradientMonitor(model)
    with np.errstate(all="ignore"), pytest.warns(ExplodingGradientWarning) as caught:
        train(model, monitor, 8, 1e6, *data)
    kinds = [i["kind"] for i in monitor.issues]
    assert set(kinds) & {"exploding", "nonfinite"}
    assert any(isinstance(w.message, NonFiniteGradientWarning) for w in caught)
    text = " ".join(str(w.message) for w in caught)
    assert "4.weight" in text or "0.weight" in text


def test_non_finite_gradient_names_parameter():
    model = nn.Linear(3, 2)
    monitor = GradientMonitor(model)
    model(cr.randn(4, 3)).sum().backward()
    model.bias.grad._data[0] = np.nan
    with pytest.warns(NonFiniteGradientWarning, match=r"bias \(1\)"):
        rec = monitor.record()
    assert rec["params"]["bias"]["nonfinite"] == 1


def test_growth_over_steps_is_exploding():
    w = nn.Linear(2, 1, bias=False)
    monitor = GradientMonitor(w, growth_steps=3, growth_factor=100, explode_threshold=1e9)
    with pytest.warns(ExplodingGradientWarning, match="grew at each of the last 3 steps"):
        for k in range(4):
            w.weight.grad = cr.full((1, 2), 10.0 ** k)
            monitor.record()


def test_statistics_by_hand():
    model = nn.Linear(2, 2)
    monitor = GradientMonitor(model)
    with cr.no_grad():
        model.weight.copy_(cr.tensor([[3.0, 0.0], [0.0, 4.0]]))
    model.weight.grad = cr.tensor([[0.0, -2.0], [0.0, 0.0]])
    model.bias.grad = None
    rec = monitor.record()
    p = rec["params"]["weight"]
    assert p["grad_norm"] == pytest.approx(2.0)
    assert p["grad_rms"] == pytest.approx(1.0)
    assert p["grad_max"] == pytest.approx(2.0) and p["grad_mean"] == pytest.approx(0.5)
    assert p["zero_frac"] == pytest.approx(0.75) and p["nonfinite"] == 0
    assert p["weight_norm"] == pytest.approx(5.0)
    assert math.isnan(rec["params"]["bias"]["grad_norm"])
    with cr.no_grad():
        model.weight.add_(cr.tensor([[0.0, 0.5], [0.0, 0.0]]))
    monitor.after_step()
    assert rec["params"]["weight"]["update_ratio"] == pytest.approx(0.1)
    assert rec["params"]["bias"]["update_ratio"] == 0.0
    with pytest.raises(RuntimeError, match="call monitor.record\\(\\) after loss.backward"):
        monitor.after_step()


def test_dead_and_saturated_units():
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 4)), ("relu", nn.ReLU()),
                                       ("sig", nn.Sigmoid()), ("tanh", nn.Tanh())]))
    with cr.no_grad():
        model.fc.weight.fill_(0.0)
        model.fc.bias.copy_(cr.tensor([-1.0, -1.0, -1.0, 20.0]))
    monitor = GradientMonitor(model)
    model(cr.randn(5, 2)).sum().backward()
    with cr.no_grad():  # a forward without grad (validation) is not counted
        model(cr.randn(5, 2))
    acts = monitor.record()["activations"]
    assert acts["relu"]["kind"] == "relu" and acts["relu"]["dead_frac"] == pytest.approx(0.75)
    # sigmoid of (0, 0, 0, 20): only the last is saturated; tanh of sigmoid outputs never
    assert acts["sig"]["saturated_frac"] == pytest.approx(0.25)
    assert acts["tanh"]["saturated_frac"] == 0.0
    text = monitor.summary()
    assert "75.0%" in text and "more than half the units are dead in relu" in text


def test_history_is_plain_arrays(data):
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))
    monitor = GradientMonitor(model)
    train(model, monitor, 4, 0.01, *data)
    hist = monitor.history
    assert all(isinstance(v, np.ndarray) for v in hist.values())
    assert hist["step"].tolist() == [0, 1, 2, 3]
    for key in ("grad_norm/0.weight", "update_ratio/2.bias", "layer_grad_max/0",
                "dead_frac/1", "total_grad_norm"):
        assert hist[key].shape == (4,) and np.isfinite(hist[key]).all(), key


def test_fit_callback(data):
    from chainrule.train import fit

    model = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    monitor = GradientMonitor(model)
    opt = cr.optim.SGD(model.parameters(), lr=0.01)
    fit(model, nn.MSELoss(), opt, data, epochs=2, batch_size=16, monitor=monitor,
        progress=False)
    assert len(monitor.records) == 4
    assert [r["epoch"] for r in monitor.records] == [0, 0, 1, 1]
    assert all(r["params"]["0.weight"]["update_ratio"] > 0 for r in monitor.records)
    assert "0.weight" in monitor.summary()


def test_remove_detaches_hooks():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with GradientMonitor(model) as monitor:
        assert model[1]._forward_hooks
    assert not model[1]._forward_hooks and not model[0]._forward_pre_hooks
    assert monitor.records == []


def test_bad_input():
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad_"):
        GradientMonitor(frozen)
    with pytest.raises(TypeError, match="chainrule.nn.Module"):
        GradientMonitor(object())
    monitor = GradientMonitor(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no step recorded"):
        monitor.plot_flow("unused.png")
    with pytest.raises(RuntimeError, match="after loss.backward"):
        monitor.record()
    assert monitor.records == []


def test_plots_write_png(tmp_path, data):
    pytest.importorskip("matplotlib")
    model = sigmoid_mlp(depth=3)
    monitor = GradientMonitor(model, warn=False)
    train(model, monitor, 3, 0.1, *data)
    for draw, name in ((monitor.plot_flow, "flow.png"), (monitor.plot_norms, "norms.png")):
        path = tmp_path / name
        assert draw(path) == str(path)
        head = path.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert monitor.plot_flow(tmp_path / "one.png", step=-1).endswith("one.png")


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    model = nn.Linear(2, 1)
    monitor = GradientMonitor(model)
    model(cr.randn(3, 2)).sum().backward()
    monitor.record()
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[plot\]'"):
        monitor.plot_norms(tmp_path / "x.png")
