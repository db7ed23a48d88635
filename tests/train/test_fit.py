"""fit: learning, accumulation, resume, early stopping, callbacks, bad input."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.train import (
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    ModelCheckpoint,
    evaluate,
    fit,
)


def _data(n=64, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return cr.from_numpy(x), cr.from_numpy(y)


def _model(seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _weights(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_fit_learns_and_returns_history():
    x, y = _data()
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.5)
    hist = fit(model, nn.CrossEntropyLoss(), opt, (x, y), val=(x, y), epochs=15,
               batch_size=16, metrics=["accuracy"], progress=False)
    assert len(hist) == 15
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_accuracy"][-1] >= 0.9
    assert set(["train_loss", "val_loss", "train_accuracy", "lr", "time"]) <= set(hist.keys())


def test_accumulation_equals_one_big_batch():
    x, y = _data(40)
    m1 = _model()
    m2 = _model()
    o1 = cr.optim.SGD(m1.parameters(), lr=0.1, momentum=0.9)
    o2 = cr.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    loader_big = cr.utils.data.DataLoader(cr.utils.data.TensorDataset(x, y), batch_size=12)
    loader_small = cr.utils.data.DataLoader(cr.utils.data.TensorDataset(x, y), batch_size=4)
    fit(m1, nn.CrossEntropyLoss(), o1, loader_big, epochs=2, progress=False)
    fit(m2, nn.CrossEntropyLoss(), o2, loader_small, epochs=2, accumulate=3, progress=False)
    for a, b in zip(_weights(m1), _weights(m2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_resume_equals_uninterrupted(tmp_path):
    x, y = _data(48)

    def run(epochs, resume=None, ckpt=None, model=None):
        model = model or _model(1)
        opt = cr.optim.Adam(model.parameters(), lr=0.01)
        sched = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        gen = cr.Generator().manual_seed(7)
        cbs = [ModelCheckpoint(ckpt)] if ckpt else []
        fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=epochs, batch_size=8,
            scheduler=sched, callbacks=cbs, progress=False, resume=resume, generator=gen)
        return model

    full = run(5)
    run(3, ckpt=tmp_path)
    resumed = run(5, resume=tmp_path / "last.safetensors")
    for a, b in zip(_weights(full), _weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_resume_from_missing_or_foreign_checkpoint(tmp_path):
    x, y = _data(16)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=1, progress=False,
            resume=tmp_path / "nope.safetensors")
    other = nn.Linear(4, 2)
    oo = cr.optim.SGD(other.parameters(), lr=0.1)
    fit(other, nn.CrossEntropyLoss(), oo, (x, y), epochs=1, progress=False,
        callbacks=[ModelCheckpoint(tmp_path)])
    with pytest.raises(ValueError, match="from a Linear model, not a Sequential"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=2, progress=False,
            resume=tmp_path / "last.safetensors")


def test_early_stopping_stops_and_restores_best():
    x, y = _data(32)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    # a scripted validation loss: best at epoch 1, then worse
    script = iter([1.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2])
    snaps = {}

    class Scripted(EarlyStopping):
        def on_epoch_end(self, trainer, logs):
            logs["val_loss"] = next(script)
            snaps[trainer.epoch] = _weights(trainer.model)
            super().on_epoch_end(trainer, logs)

    es = Scripted(patience=2)
    hist = fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=8, callbacks=[es],
               progress=False)
    assert len(hist) == 4 and es.stopped_epoch == 3 and es.best_epoch == 1
    for a, b in zip(_weights(model), snaps[1]):
        np.testing.assert_array_equal(a, b)


def test_loggers_write_files(tmp_path):
    x, y = _data(16)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=2, progress=False,
        callbacks=[CSVLogger(tmp_path / "log.csv"), JSONLogger(tmp_path / "log.json")])
    lines = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert len(lines) == 3 and "train_loss" in lines[0]
    assert len(json.loads((tmp_path / "log.json").read_text())) == 2


def test_evaluate_restores_training_mode():
    x, y = _data(16)
    model = _model()
    model.train()
    res = evaluate(model, nn.CrossEntropyLoss(), (x, y), ["accuracy"])
    assert model.training and set(res) == {"loss", "accuracy"}


def test_bad_inputs_have_clear_messages():
    x, y = _data(16)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="x has 16 samples but y has 10"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, y[:10]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="accumulate must be >= 1"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=1, accumulate=0,
            progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=1, metrics=["f1"],
            progress=False)
    bad_y = cr.tensor([5] * 16)
    with pytest.raises(Exception, match="(?i)(out of range|class)"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, bad_y), epochs=1, progress=False)


def test_progress_bar_runs(capsys):
    x, y = _data(16)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=1, progress=True,
        metrics=["accuracy"])
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "samples/s" in err


def test_output_shape_the_loss_cannot_take():
    x, y = _data(16)
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"cross_entropy: .*\(16, 2\).*\(16, 5\)"):
        fit(model, nn.CrossEntropyLoss(), opt, (x, cr.randn(16, 5)), epochs=1,
            progress=False)
    before = _weights(model)
    with pytest.raises(ValueError, match="mse_loss: input shape .* not broadcastable"):
        fit(model, nn.MSELoss(), opt, (x, cr.randn(16, 3)), epochs=1, progress=False)
    for a, b in zip(before, _weights(model)):
        np.testing.assert_array_equal(a, b)
