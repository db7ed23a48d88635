"""explain_two_layer: numbers match finite differences; text fits the terminal."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import explain_two_layer

SYMBOLS = ["dL/dŷ", "dL/dz2", "dL/dW2", "dL/db2", "dL/da1", "dL/dz1", "dL/dW1", "dL/db1"]


@pytest.mark.parametrize("seed,sizes", [(0, (2, 3, 1)), (1, (4, 5, 3)), (7, (1, 1, 1))])
def test_steps_match_finite_differences(seed, sizes):
    ex = explain_two_layer(seed=seed, sizes=sizes)
    assert [s.symbol for s in ex.steps] == SYMBOLS
    for s in ex.steps:
        assert s.analytic.shape == s.numeric.shape == ex.forward[s.key].shape
        np.testing.assert_allclose(s.analytic, s.numeric, rtol=0, atol=1e-6)
    assert ex.max_error < 1e-6


def test_values_are_the_textbook_formulas():
    ex = explain_two_layer(seed=3, sizes=(3, 4, 2))
    f = ex.forward
    d2 = (f["yhat"] - f["y"]) * f["yhat"] * (1 - f["yhat"])
    d1 = (f["W2"].T @ d2) * f["a1"] * (1 - f["a1"])
    np.testing.assert_allclose(ex.step("yhat").analytic, f["yhat"] - f["y"], atol=1e-12)
    np.testing.assert_allclose(ex.step("z2").analytic, d2, atol=1e-12)
    np.testing.assert_allclose(ex.step("W2").analytic, np.outer(d2, f["a1"]), atol=1e-12)
    np.testing.assert_allclose(ex.step("z1").analytic, d1, atol=1e-12)
    np.testing.assert_allclose(ex.step("W1").analytic, np.outer(d1, f["x"]), atol=1e-12)
    np.testing.assert_allclose(ex.delta["delta1"], d1, atol=1e-12)
    np.testing.assert_allclose(f["L"], 0.5 * np.sum((f["y"] - f["yhat"]) ** 2))


@pytest.mark.parametrize("sizes", [(2, 3, 1), (6, 9, 5)])
@pytest.mark.parametrize("width", [80, 60])
def test_text_fits_width(sizes, width):
    text = explain_two_layer(sizes=sizes).text(width=width)
    for line in text.splitlines():
        assert len(line) <= width, line
    for sym in SYMBOLS:
        assert sym in text
    assert "δ^l = (W^{l+1})^T δ^{l+1} ⊙ σ'(z^l)" in text
    assert "finite diff" in text


def test_default_str_is_80_columns():
    text = str(explain_two_layer())
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "ŷ" in text


def test_bad_sizes():
    with pytest.raises(ValueError, match="three positive ints"):
        explain_two_layer(sizes=(2, 3))
    with pytest.raises(ValueError, match="width"):
        explain_two_layer().text(width=10)


def test_does_not_touch_global_rng():
    state = cr.get_rng_state()
    explain_two_layer(seed=5)
    assert cr.get_rng_state() == state
