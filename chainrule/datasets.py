"""Small datasets that need no download: digits (bundled with scikit-learn), MNIST-format
IDX files a user already has, and synthetic generators (spirals, XOR, parity, sine).

Every loader returns ``(x, y)`` tensors: float32 inputs and int64 class labels (float32
targets for regression).
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .tensor import Tensor, _wrap


def _need_sklearn():
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        raise ImportError(
            "load_digits needs scikit-learn, which ships the digits data: install the "
            "extra with  pip install 'chainrule[data]'"
        ) from None
    import sklearn.datasets

    return sklearn.datasets


def load_digits(images: bool = False) -> tuple[Tensor, Tensor]:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn (no download).

    Args:
        images: return inputs shaped (N, 1, 8, 8) for convolutional models instead of
            (N, 64).

    Returns:
        ``(x, y)``: float32 pixels scaled to [0, 1] and int64 labels 0-9.
    """
    ds = _need_sklearn().load_digits()
    x = (ds.data / 16.0).astype(np.float32)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return _wrap(x), _wrap(ds.target.astype(np.int64))


_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path: str | os.PathLike) -> Tensor:
    """Read an IDX file (the MNIST format), optionally gzip-compressed.

    Unsigned-byte data comes back as uint8 (divide by 255 for pixels); labels files give
    a 1-d tensor. Raises ``ValueError`` for a file that is not IDX or is truncated.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"load_idx: {path} is not an IDX file (bad magic number)")
    dtype = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"load_idx: {path} is truncated (header)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:head])
    count = int(np.prod(shape)) if shape else 1
    need = head + count * dtype.itemsize
    if len(raw) < need:
        raise ValueError(
            f"load_idx: {path} is truncated: header says shape {shape} ({need} bytes), "
            f"file has {len(raw)} bytes"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=head).reshape(shape)
    return _wrap(arr.astype(dtype.newbyteorder("=")))


def _rng(seed):
    return np.random.default_rng(seed)


def make_spirals(n_per_class: int = 100, classes: int = 2, noise: float = 0.2,
                 turns: float = 1.0, seed: int | None = 0) -> tuple[Tensor, Tensor]:
    """Interleaved 2-d spirals, one arm per class (a classic non-linear task)."""
    if n_per_class <= 0 or classes < 2:
        raise ValueError("make_spirals: need n_per_class > 0 and classes >= 2")
    g = _rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        t = np.linspace(0, 2 * np.pi * turns, n_per_class) + 2 * np.pi * c / classes
        t = t + g.normal(0, noise, n_per_class) * 0.5
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(n_per_class, c))
    return (_wrap(np.concatenate(xs).astype(np.float32)),
            _wrap(np.concatenate(ys).astype(np.int64)))


def make_xor(n: int = 200, noise: float = 0.1, seed: int | None = 0) -> tuple[Tensor, Tensor]:
    """Points around the four corners of the unit square labelled by XOR of the corner."""
    g = _rng(seed)
    corners = g.integers(0, 2, size=(n, 2))
    x = corners + g.normal(0, noise, size=(n, 2))
    y = corners[:, 0] ^ corners[:, 1]
    return _wrap(x.astype(np.float32)), _wrap(y.astype(np.int64))


def make_parity(n_bits: int = 4) -> tuple[Tensor, Tensor]:
    """All 2**n_bits binary vectors, labelled 1 when an odd number of bits are set."""
    if not 1 <= n_bits <= 20:
        raise ValueError(f"make_parity: n_bits must be in [1, 20], got {n_bits}")
    idx = np.arange(2 ** n_bits)
    bits = (idx[:, None] >> np.arange(n_bits - 1, -1, -1)) & 1
    return _wrap(bits.astype(np.float32)), _wrap((bits.sum(1) % 2).astype(np.int64))


def make_sine(n: int = 200, noise: float = 0.05, low: float = -np.pi, high: float = np.pi,
              seed: int | None = 0) -> tuple[Tensor, Tensor]:
    """Regression: ``y = sin(x) + noise`` with x uniform in [low, high]; shapes (n, 1)."""
    g = _rng(seed)
    x = g.uniform(low, high, size=(n, 1))
    y = np.sin(x) + g.normal(0, noise, size=(n, 1))
    return _wrap(x.astype(np.float32)), _wrap(y.astype(np.float32))
