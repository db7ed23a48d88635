"""Smoke tests of the scripts in ``examples/``: each runs end to end in its ``--tiny`` setting.

The examples are scripts, not a package, so each is imported from its path. ``main``
returns the example's final metric (an accuracy); the tiny settings are seeded and, for
the examples in ``CASES``, train just long enough to beat chance clearly, so a broken
layer, loss or optimizer shows up as a metric at chance level (or NaN) rather than only as
an exception. A script not in ``CASES`` gets the generic checks only.
"""

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# name -> (lower bound on the tiny run's metric, chance level)
CASES = {
    "mlp_digits": (0.3, 0.1),
    "cnn_residual": (0.3, 0.1),
    "lstm_tbptt": (0.4, 0.25),
    "tiny_transformer": (0.2, 0.1),
    "selu_network": (0.3, 0.1),
    "kfac_digits": (0.3, 0.1),
    "gradient_flow": (0.3, 0.1),
    "es_vs_backprop": (0.3, 0.1),
    # relative improvement over a baseline (1 - loss / baseline loss); 0 = no better
    "maml_sine": (0.03, 0.0),
    "learned_optimizer": (0.1, 0.0),
}
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_listed_in_readme():
    assert set(CASES) <= set(SCRIPTS)
    readme = (EXAMPLES / "README.md").read_text()
    for name in SCRIPTS:
        assert f"examples/{name}.py" in readme, f"examples/README.md does not list {name}.py"


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_tiny(name, capsys):
    if "load_digits" in (EXAMPLES / f"{name}.py").read_text():
        pytest.importorskip("sklearn")
    module = _load(name)
    assert module.__doc__ and "--tiny" in module.__doc__
    metric = module.main(["--tiny"])
    out = capsys.readouterr().out
    assert isinstance(metric, float) and math.isfinite(metric)
    assert 0.0 <= metric <= 1.0
    if name in CASES:
        lower, chance = CASES[name]
        assert metric > lower > chance, f"{name} --tiny reached {metric:.3f}"
        assert f"{metric:.4f}" in out.splitlines()[-1]  # the last line reports the metric


def test_example_rejects_unknown_options():
    module = _load("lstm_tbptt")
    with pytest.raises(SystemExit):
        module.main(["--no-such-option"])
