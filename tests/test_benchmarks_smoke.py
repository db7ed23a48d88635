"""Smoke test: every registered benchmark runs with tiny sizes and returns its structure.

Nothing here looks at times: speed is measured by the benchmarks, never asserted in tests.
"""

import json
import sys
from pathlib import Path

import pytest

# benchmarks/ sits beside the package at the repository root, outside the install
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, run  # noqa: E402


@pytest.mark.parametrize("name", list(run.REGISTRY))
def test_benchmark_smoke(name):
    mod = run.load(name)
    assert mod.NAME == name
    assert isinstance(mod.DESCRIPTION, str) and mod.DESCRIPTION
    res = mod.run(smoke=True)
    assert res["name"] == name
    assert res["params"]["smoke"] is True
    assert res["rows"], "a benchmark must report at least one row"
    assert isinstance(res["notes"], list)
    json.dumps(res, default=str)  # results must be JSON-ready
    table = mod.format_result(res)
    assert table.startswith("|")


def test_overhead_structure():
    from benchmarks import overhead

    res = overhead.run(smoke=True)
    libs = {(r["mode"], r["lib"]) for r in res["rows"]}
    assert {("fwd+bwd", "chainrule"), ("no_grad", "chainrule"), ("no_grad", "numpy")} <= libs
    for r in res["rows"]:
        assert 0 < r["min"] <= r["median"]
    assert set(res["ratios"]["no_grad chainrule/numpy"]) == {"min", "median", "cpu_min",
                                                             "cpu_median"}


def test_overhead_with_baseline_checkout():
    # a before/after comparison: the repository's own package imported a second time
    from benchmarks import overhead

    root = str(Path(__file__).resolve().parents[1])
    res = overhead.run(smoke=True, baseline=root)
    assert ("fwd+bwd", "baseline") in {(r["mode"], r["lib"]) for r in res["rows"]}
    assert res["ratios"]["fwd+bwd chainrule/baseline"]["min"] > 0


def test_deep_chain_structure():
    from benchmarks import deep_chain

    res = deep_chain.run(smoke=True)
    assert [r["ops"] for r in res["rows"]] == list(deep_chain.SMOKE_SIZES)
    for r in res["rows"]:
        assert r["recursion_error"] is False
        assert r["backward"]["min"] > 0
        mem = r["memory"]
        assert mem["graph_freed"] is True
        assert mem["after_forward"] > mem["after_del_output"]


def test_chain_matches_numpy():
    # the chain computes the same values in every library it is given
    import numpy as np

    import chainrule as cr
    from benchmarks.overhead import chain

    x = np.linspace(0.5, 1.5, 16, dtype=np.float32)
    ref = chain(np, x, x, x, 8)
    got = chain(cr, cr.tensor(x), cr.tensor(x), cr.tensor(x), 8)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)


def test_interleave_and_table():
    calls = []
    res = common.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            repeats=3, warmup=1, sleep=0, per=2.0)
    assert calls.count("a") == 4 and calls.count("b") == 4
    assert res["a"]["n"] == 3 and len(res["a"]["samples"]) == 3
    assert calls[2:4] == ["a", "b"] and calls[4:6] == ["b", "a"]  # order rotates
    table = common.format_table(["x", "y"], [["1", "22"]])
    assert table.splitlines()[0] == "| x | y  |"


def test_runner_cli(capsys, tmp_path):
    out = tmp_path / "r.json"
    assert run.main(["--smoke", "--json", str(out), "deep_chain"]) == 0
    printed = capsys.readouterr().out
    assert "deep_chain" in printed and "cores" in printed
    data = json.loads(out.read_text())
    assert data["results"][0]["name"] == "deep_chain"
    assert "cpu" in data["machine"]
    with pytest.raises(SystemExit):
        run.load("no_such_benchmark")


def test_loss_cross_check_fails_loudly():
    from benchmarks import peers

    same = {"chainrule": lambda: (lambda: 2.0), "a": lambda: (lambda: 2.0 * (1 + 1e-6))}
    assert peers.cross_check(same)["a"] == [2.0 * (1 + 1e-6)] * 2
    off = {"chainrule": lambda: (lambda: 2.0), "a": lambda: (lambda: 2.001)}
    with pytest.raises(peers.LossMismatch, match="a computes loss"):
        peers.cross_check(off)


def test_mlp_functional_matches_chainrule():
    # the functional definition the NumPy-like peers run equals chainrule's nn step
    from benchmarks import mlp, peers

    sizes = mlp.SMOKE_SIZES
    w = mlp.init_weights(sizes)
    x, y = mlp.data(sizes, 4)
    facs = mlp.factories(sizes, w, x, y, {}, {})
    ref = mlp.mlp_loss(__import__("numpy"), w, x, peers.onehot(y, sizes[-1]))
    assert abs(facs["chainrule"]()() - ref) <= 1e-5 * ref


def test_attention_functional_matches_chainrule():
    # the transformer the NumPy-like peers run (here on plain NumPy) equals chainrule's nn
    import numpy as np

    import chainrule as cr
    from benchmarks import attention, peers

    w = attention.init_weights(2, 8, 16, 10)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 8)).astype(np.float32)
    y = rng.integers(0, 10, 2)
    keys = [f"layers.{i}.{k}" for i in range(2) for k in attention.LAYER_KEYS]
    ps = [w[k] for k in keys] + [w["head.weight"], w["head.bias"]]
    ref = attention.make_loss(2, 2)(np, ps, x, peers.onehot(y, 10))
    got = attention._module_factory(cr.nn, cr, 2, 8, 2, 16, 10, w, x, y)()
    assert abs(got - ref) <= 1e-5 * ref


def test_summary_table_marks_targets_and_peers():
    results = [
        {"name": "mlp", "rows": [{"lib": "chainrule", "min": 2.0}, {"lib": "torch", "min": 2.5},
                                 {"lib": "mygrad", "min": 3.0}],
         "ratios": {"chainrule/torch": {"min": 0.8, "median": 0.9}},
         "targets": {"chainrule/torch": 0.85}},
        {"name": "lstm", "rows": [{"lib": "chainrule", "min": 4.0}, {"lib": "jax", "min": 2.0}],
         "ratios": {"chainrule/torch": {"min": 1.5, "median": 1.6}},
         "targets": {"chainrule/torch": 1.2}},
        {"name": "deep_chain", "rows": [], "ratios": {}},
    ]
    text = run.summary(results)
    mlp, lstm = [line for line in text.splitlines() if line.startswith("| mlp")
                 or line.startswith("| lstm")]
    assert "0.80 / 0.90" in mlp and "met" in mlp and "mygrad 1.50" in mlp
    assert "missed" in lstm and "jax 0.50" in lstm
    assert "deep_chain" not in text
    assert run.summary([]) == ""
