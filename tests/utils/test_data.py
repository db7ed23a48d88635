"""chainrule.utils.data: datasets, samplers, collate, DataLoader, random_split."""

from collections import namedtuple

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)


def make_ds(n=10):
    return TensorDataset(cr.arange(n).float().reshape(n, 1), cr.arange(n))


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(2, float(i)), "y": i * i, "name": f"s{i}"}


def test_tensor_dataset():
    ds = make_ds()
    assert len(ds) == 10
    x, y = ds[3]
    assert x.shape == (1,) and int(y) == 3


def test_tensor_dataset_length_mismatch():
    with pytest.raises(ValueError, match="size mismatch.*3 samples.*has 4"):
        TensorDataset(cr.zeros(3, 2), cr.zeros(4))


def test_loader_batches_in_order():
    loader = DataLoader(make_ds(), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 1) and batches[0][0].dtype == cr.float32


def test_loader_drop_last():
    loader = DataLoader(make_ds(), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(b[1]) for b in loader] == [4, 4]


def test_shuffle_is_seeded_and_covers_everything():
    def order(seed):
        g = cr.Generator().manual_seed(seed)
        loader = DataLoader(make_ds(), batch_size=3, shuffle=True, generator=g)
        return [np.concatenate([b[1].numpy() for b in loader]) for _ in range(2)]

    a, b = order(1), order(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a new order each epoch
    assert sorted(a[0].tolist()) == list(range(10))
    assert not np.array_equal(a[0], order(2)[0])


def test_shuffle_with_default_generator_follows_manual_seed():
    cr.manual_seed(4)
    a = [b[1].tolist() for b in DataLoader(make_ds(), batch_size=5, shuffle=True)]
    cr.manual_seed(4)
    b = [b[1].tolist() for b in DataLoader(make_ds(), batch_size=5, shuffle=True)]
    assert a == b


def test_collate_dicts_numbers_strings():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].shape == (3, 2)
    assert batch["y"].tolist() == [0, 1, 4] and batch["y"].dtype == cr.int64
    assert batch["name"] == ["s0", "s1", "s2"]


def test_default_collate_types():
    assert default_collate([1.5, 2.5]).dtype == cr.float64
    assert default_collate([True, False]).dtype == cr.bool
    out = default_collate([(np.zeros(2), 1), (np.ones(2), 2)])
    assert isinstance(out, list) and out[0].shape == (2, 2) and out[1].tolist() == [1, 2]
    Point = namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="same shape"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object()])


def test_generic_dataset_path_matches_fast_path():
    ds = make_ds()
    sub = Subset(ds, list(range(10)))
    a = [b[0].numpy() for b in DataLoader(ds, batch_size=4)]
    b = [b[0].numpy() for b in DataLoader(sub, batch_size=4)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_custom_collate_and_batch_size_none():
    loader = DataLoader(make_ds(4), batch_size=2, collate_fn=lambda b: len(b))
    assert list(loader) == [2, 2]
    single = list(DataLoader(make_ds(3), batch_size=None))
    assert len(single) == 3 and int(single[2][1]) == 2


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(make_ds(), batch_size=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(make_ds(), shuffle=True, sampler=SequentialSampler(make_ds()))


def test_iterable_dataset():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    out = [b.tolist() for b in DataLoader(Stream(), batch_size=3)]
    assert out == [[0, 1, 2], [3, 4, 5], [6]]


def test_random_split_lengths_and_fractions():
    ds = make_ds()
    a, b = random_split(ds, [7, 3], generator=cr.Generator().manual_seed(0))
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    c, d, e = random_split(ds, [0.5, 0.3, 0.2], generator=cr.Generator().manual_seed(0))
    assert (len(c), len(d), len(e)) == (5, 3, 2)
    f, g = random_split(make_ds(5), [0.5, 0.5])
    assert (len(f), len(g)) == (3, 2)  # remainder handed out round robin
    a2, _ = random_split(ds, [7, 3], generator=cr.Generator().manual_seed(0))
    assert a2.indices == a.indices
    with pytest.raises(ValueError, match="does not equal"):
        random_split(ds, [5, 4])


def test_subset_and_concat():
    ds = make_ds()
    s = Subset(ds, [9, 0])
    assert len(s) == 2 and int(s[0][1]) == 9
    c = ConcatDataset([s, make_ds(3)])
    assert len(c) == 5 and int(c[2][1]) == 0 and int(c[-1][1]) == 2
    with pytest.raises(IndexError):
        c[5]


def test_samplers():
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    r = list(RandomSampler(range(6), generator=cr.Generator().manual_seed(0)))
    assert sorted(r) == list(range(6))
    assert len(list(RandomSampler(range(3), replacement=True, num_samples=10))) == 10
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, drop_last=True)) == 2
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0], 5))
    assert w == [1] * 5
