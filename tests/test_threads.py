"""set_num_threads / get_num_threads."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import threads


def test_set_get_and_bad_values():
    old = cr.get_num_threads()
    try:
        cr.set_num_threads(3)
        assert cr.get_num_threads() == 3
    finally:
        cr.set_num_threads(old)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
            cr.set_num_threads(bad)
    assert cr.get_num_threads() == old


def test_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert threads._default_threads() == 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert threads._default_threads() >= 1


def test_sets_numpys_openblas_threads():
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    get = threads._openblas("get_num_threads")
    if "openblas" not in config["name"]:
        assert get is None or callable(get)  # another BLAS keeps its own setting
        return
    assert get is not None, "NumPy is built with OpenBLAS but its thread setter was not found"
    old = cr.get_num_threads()
    try:
        cr.set_num_threads(1)
        assert get() == 1
        cr.set_num_threads(2)
        assert get() == 2
    finally:
        cr.set_num_threads(old)
