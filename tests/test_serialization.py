"""cr.save / cr.load: bit-exact round trips, nested state, atomic writes, bad files."""

import json
import os
import struct

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def same(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.numpy().tobytes() == b.numpy().tobytes()


def test_tensor_round_trip_bit_exact(tmp_path):
    p = tmp_path / "t.safetensors"
    for t in [cr.randn(3, 4), cr.randn(2, dtype=cr.float64),
              cr.tensor([1.0, float("nan"), float("inf"), -0.0], dtype=cr.float16),
              cr.tensor([2 ** 62, -5]), cr.tensor([True, False]), cr.tensor(3.5),
              cr.zeros(0, 3), cr.arange(12).reshape(3, 4).T]:
        cr.save(t, p)
        same(t.detach(), cr.load(p))


def test_optimizer_shaped_nested_dict(tmp_path):
    p = tmp_path / "opt.safetensors"
    state = {
        "state": {0: {"step": 3, "exp_avg": cr.randn(2, 2)},
                  1: {"step": 3, "exp_avg": cr.randn(5, dtype=cr.float64)}},
        "param_groups": [{"lr": 0.1, "params": [0, 1], "betas": (0.9, 0.999),
                          "amsgrad": False, "foreach": None, "name": "g0",
                          "eps": 1e-8, "weird": float("inf")}],
    }
    cr.save(state, p)
    out = cr.load(p)
    assert set(out) == {"state", "param_groups"}
    assert list(out["state"]) == [0, 1]  # int keys come back as ints
    same(state["state"][0]["exp_avg"], out["state"][0]["exp_avg"])
    same(state["state"][1]["exp_avg"], out["state"][1]["exp_avg"])
    assert out["state"][0]["step"] == 3
    assert out["param_groups"] == state["param_groups"]
    assert out["param_groups"][0]["betas"] == (0.9, 0.999)


def test_module_state_dict_round_trip_and_keys(tmp_path):
    p = tmp_path / "m.safetensors"
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    cr.save(net.state_dict(), p)
    # a standard safetensors file with the state_dict keys as tensor names
    from safetensors.numpy import load_file

    assert sorted(load_file(str(p))) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other.load_state_dict(cr.load(p))
    for (_k, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        same(a, b)
    assert list(cr.load(p)) == list(net.state_dict())  # order kept


def test_parameters_arrays_and_shared_tensors(tmp_path):
    p = tmp_path / "x.safetensors"
    w = nn.Parameter(cr.randn(2))
    arr = np.arange(4, dtype=np.int32)
    cr.save({"w": w, "again": w, "arr": arr, "list": [1, "a", None, True]}, p)
    out = cr.load(p)
    assert isinstance(out["w"], nn.Parameter) and out["w"].requires_grad
    assert out["again"] is out["w"]
    assert isinstance(out["arr"], np.ndarray) and out["arr"].dtype == np.int32
    assert out["list"] == [1, "a", None, True]


def test_plain_safetensors_file_loads_as_dict(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"a": np.ones(2, np.float32)}, str(p))
    out = cr.load(p)
    assert list(out) == ["a"] and isinstance(out["a"], cr.Tensor)


def test_file_objects(tmp_path):
    import io

    buf = io.BytesIO()
    cr.save({"x": cr.ones(2)}, buf)
    buf.seek(0)
    assert cr.load(buf)["x"].tolist() == [1.0, 1.0]


def test_no_pickle_in_file(tmp_path):
    p = tmp_path / "t.safetensors"
    cr.save({"a": cr.ones(1), "n": 2}, p)
    data = p.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    assert "chainrule.structure" in header["__metadata__"]
    assert b"\x80\x04" not in data[:2]  # not a pickle stream


def test_unsupported_object_writes_nothing(tmp_path):
    p = tmp_path / "t.safetensors"
    cr.save({"a": cr.ones(1)}, p)
    before = p.read_bytes()
    with pytest.raises(TypeError, match="state_dict"):
        cr.save({"model": nn.Linear(1, 1)}, p)
    with pytest.raises(TypeError, match="dict keys"):
        cr.save({(1, 2): 3}, p)
    assert p.read_bytes() == before


def test_atomic_write_crash_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "ckpt.safetensors"
    cr.save({"v": cr.tensor([1.0])}, p)
    before = p.read_bytes()

    def boom(fd):
        raise OSError(5, "simulated crash during fsync")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="simulated crash"):
        cr.save({"v": cr.tensor([2.0])}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary left behind
    assert cr.load(p)["v"].tolist() == [1.0]


def test_interrupt_mid_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "ckpt.safetensors"
    cr.save({"v": cr.tensor([1.0])}, p)
    before = p.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cr.save({"v": cr.tensor([2.0])}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_unwritable_path(tmp_path):
    with pytest.raises(OSError, match="cannot write"):
        cr.save(cr.ones(1), tmp_path / "missing_dir" / "x.safetensors")
    target = tmp_path / "a_dir"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError, match="cannot write"):
        cr.save(cr.ones(1), target)  # the path is a directory
    assert (target / "keep").read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["a_dir"]


@pytest.mark.parametrize("content", [
    b"", b"abc", b"this is not a safetensors file at all",
    struct.pack("<Q", 10 ** 9) + b"{}",
    struct.pack("<Q", 5) + b"notjs",
])
def test_corrupt_files(tmp_path, content):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(ValueError, match="load:"):
        cr.load(p)


def test_truncated_file(tmp_path):
    p = tmp_path / "t.safetensors"
    cr.save({"w": cr.randn(100)}, p)
    data = p.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 10):
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="load:"):
            cr.load(p)


def test_corrupt_structure_metadata(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "s.safetensors"
    save_file({"a": np.ones(1)}, str(p), metadata={"chainrule.structure": "{not json"})
    with pytest.raises(ValueError, match="corrupt structure"):
        cr.load(p)
    save_file({"a": np.ones(1)}, str(p),
              metadata={"chainrule.structure": json.dumps({"__tensor__": "zz"})})
    with pytest.raises(ValueError, match="zz"):
        cr.load(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        cr.load(tmp_path / "nope.safetensors")


def test_load_into_module_failure_changes_nothing(tmp_path):
    p = tmp_path / "m.safetensors"
    cr.save(nn.Linear(3, 5).state_dict(), p)
    m = nn.Linear(3, 4)
    w = m.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict(cr.load(p))
    np.testing.assert_array_equal(m.weight.detach().numpy(), w)
