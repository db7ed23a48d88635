"""chainrule._blas.axpby: y = a x + b y in place, through NumPy's OpenBLAS or NumPy."""

import numpy as np
import pytest

from chainrule import _blas


def _has_openblas() -> bool:
    return "openblas" in np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [10, 5000, 100_003])
@pytest.mark.parametrize("a, b", [(1.0, 0.9), (-0.01, 1.0), (0.3, 1.0), (2.0, -0.5)])
def test_axpby_matches_the_formula(dtype, n, a, b):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    want = (a * x.astype(np.float64) + b * y.astype(np.float64))
    _blas.axpby(a, x, b, y)
    assert y.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


def test_blas_path_is_taken_when_numpy_has_openblas():
    fns = _blas._axpby_for(np.dtype(np.float32))
    assert (fns is not None) == _has_openblas()


def test_fallbacks_give_numpys_result():
    rng = np.random.default_rng(0)
    y0 = rng.standard_normal((100, 80)).astype(np.float32)
    cases = [
        rng.standard_normal((80, 100)).astype(np.float32).T,  # non-contiguous x
        rng.standard_normal((100, 80)),                       # float64 x, float32 y
        rng.standard_normal(80).astype(np.float32),           # broadcast x
    ]
    for x in cases:
        y = y0.copy()
        _blas.axpby(0.5, x, 0.9, y)
        want = y0.copy()
        want *= 0.9
        want += 0.5 * x
        np.testing.assert_array_equal(y, want)


def test_zero_alpha_keeps_numpy_semantics():
    # a NaN in x still reaches y when a == 0 (0 * nan), as with NumPy's formula
    x = np.full(10_000, np.nan, dtype=np.float32)
    y = np.ones(10_000, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        _blas.axpby(0.0, x, 1.0, y)
    assert np.isnan(y).all()
