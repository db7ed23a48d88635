"""Dataset loaders and synthetic generators."""

import gzip
import struct

import numpy as np
import pytest

from chainrule import datasets


def _write_idx(path, arr, code=0x08):
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("name", ["img.idx", "img.idx.gz"])
def test_load_idx_roundtrip(tmp_path, name):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / name, arr)
    t = datasets.load_idx(tmp_path / name)
    np.testing.assert_array_equal(t.numpy(), arr)


def test_load_idx_float_big_endian(tmp_path):
    arr = np.linspace(0, 1, 5).astype(np.float32)
    _write_idx(tmp_path / "f.idx", arr, code=0x0D)
    np.testing.assert_array_equal(datasets.load_idx(tmp_path / "f.idx").numpy(), arr)


def test_load_idx_rejects_bad_and_truncated_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.load_idx(tmp_path / "bad")
    arr = np.zeros((10, 10), dtype=np.uint8)
    _write_idx(tmp_path / "t.idx", arr)
    data = (tmp_path / "t.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="truncated"):
        datasets.load_idx(tmp_path / "t.idx")


def test_synthetic_generators_shapes_and_labels():
    x, y = datasets.make_spirals(50, classes=3)
    assert x.shape == (150, 2) and y.shape == (150,) and set(y.tolist()) == {0, 1, 2}
    x, y = datasets.make_xor(100)
    assert x.shape == (100, 2) and set(y.tolist()) <= {0, 1}
    x, y = datasets.make_parity(3)
    assert x.shape == (8, 3)
    assert y.tolist() == [int(b.sum()) % 2 for b in x.numpy()]
    x, y = datasets.make_sine(30, noise=0.0)
    np.testing.assert_allclose(y.numpy(), np.sin(x.numpy()), atol=1e-6)


def test_generators_are_seeded():
    a, _ = datasets.make_xor(10, seed=3)
    b, _ = datasets.make_xor(10, seed=3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_digits_when_sklearn_present():
    pytest.importorskip("sklearn")
    x, y = datasets.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0
    xi, _ = datasets.load_digits(images=True)
    assert xi.shape == (1797, 1, 8, 8)
