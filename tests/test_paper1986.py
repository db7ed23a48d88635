"""The 1986 experiments: data, the many-seeds trick, the update rule, tiny runs and the CLI."""

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli, nn
from chainrule.paper1986 import (
    EnsembleMLP,
    family_facts,
    residual,
    run,
    run_family,
    run_xor,
    squared_error,
    symmetry_data,
    train_full_batch,
)
from chainrule.paper1986.family import ENGLISH, ITALIAN, correct, encode_facts, split

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rumelhart1986"


def test_family_has_104_facts_isomorphic_across_the_two_trees():
    facts = family_facts()
    assert len(facts) == 104
    assert len({(p1, r) for p1, r, _ in facts}) == 104
    counts = Counter(r for _, r, _ in facts)
    assert counts == {"father": 12, "mother": 12, "husband": 10, "wife": 10, "son": 12,
                      "daughter": 12, "uncle": 4, "aunt": 4, "brother": 6, "sister": 6,
                      "nephew": 8, "niece": 8}
    table = {(p1, r): p2 for p1, r, p2 in facts}
    assert table["Colin", "uncle"] == {"Arthur", "Charles"}
    assert table["Charles", "nephew"] == {"Colin"}
    assert table["Margaret", "husband"] == {"Arthur"}
    assert table["Sophia", "aunt"] == {"Angela", "Gina"}
    assert ("James", "nephew") not in table          # his sibling and his wife's have no sons
    to_it = dict(zip(ENGLISH, ITALIAN))
    english = {(to_it[a], r, frozenset(to_it[b] for b in bs)) for a, r, bs in facts
               if a in to_it}
    italian = {f for f in facts if f[0] in ITALIAN}
    assert english == italian and len(italian) == 52


def test_family_split_and_targets():
    train, test = split(3)
    assert len(train) == 100 and len(test) == 4
    assert not set(train) & set(test) and set(train) | set(test) == set(range(104))
    assert np.array_equal(split(3)[1], test) and not np.array_equal(split(4)[1], test)
    person, relation, target = encode_facts(family_facts())
    assert person.shape == (104, 24) and relation.shape == (104, 12)
    assert (person.sum(1) == 1).all() and (relation.sum(1) == 1).all()
    assert set(np.unique(target)) == {0.0, 1.0}
    assert correct(np.where(target > 0.5, 0.6, 0.4), target).all()
    assert not correct(np.full_like(target, 0.4), target).any()


def test_symmetry_data():
    x, d = symmetry_data()
    assert x.shape == (64, 6) and len({tuple(r) for r in x}) == 64
    assert d.sum() == 8 and d[0, 0] == 1 and d[1, 0] == 0          # 000000 yes, 000001 no


def test_each_seed_trains_as_if_alone():
    # Seed 5 inside an ensemble of two ends where a plain Linear/Sigmoid network started from
    # the same weights ends, after the same full-batch SGD-with-momentum sweeps.
    x_np = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    d_np = np.array([[0], [1], [1], [0]], dtype=np.float64)
    ens = EnsembleMLP([2, 2, 1], seeds=[4, 5])
    single = nn.Sequential(nn.Linear(2, 2, dtype=cr.float64), nn.Sigmoid(),
                           nn.Linear(2, 1, dtype=cr.float64), nn.Sigmoid())
    with cr.no_grad():
        for lin, layer in zip((single[0], single[2]), ens.layers):
            lin.weight.copy_(layer.weight[1])
            lin.bias.copy_(layer.bias[1])
    x, d = cr.tensor(x_np), cr.tensor(d_np)
    opt = cr.optim.SGD(single.parameters(), lr=0.5, momentum=0.9)
    for _ in range(25):
        opt.zero_grad()
        (0.5 * ((single(x) - d) ** 2).sum()).backward()
        opt.step()
    res = train_full_batch(ens, lambda: ens(x[None]), d[None], seeds=[4, 5], sweeps=25,
                           schedule=lambda t: (0.5, 0.9),
                           criterion=lambda y: np.zeros(2, dtype=bool))
    assert res.sweeps_run == 25 and res.error_curve.shape == (26, 2)
    np.testing.assert_allclose(ens.layers[0].weight[1].detach().numpy(),
                               single[0].weight.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ens.layers[1].bias[1].detach().numpy(),
                               single[2].bias.detach().numpy(), atol=1e-12)


def test_update_is_the_papers_rule_across_schedule_changes_and_decay():
    # One logistic unit y = sigmoid(w + b) with target 1, against Dw(t) = -eps g + alpha Dw(t-1)
    # written out by hand, while eps and alpha change and weights decay after each update.
    net = EnsembleMLP([1, 1], seeds=[0])
    w, b = net.layers[0].weight.detach().numpy().item(), net.layers[0].bias.detach().numpy().item()

    def schedule(t):
        return (0.5, 0.5) if t < 3 else (2.0, 0.9)

    dw = db = 0.0
    for t in range(7):
        y = 1 / (1 + np.exp(-(w + b)))
        g = (y - 1.0) * y * (1 - y)
        eps, alpha = schedule(t)
        dw, db = -eps * g + alpha * dw, -eps * g + alpha * db
        w, b = (w + dw) * 0.99, (b + db) * 0.99
    x = cr.ones(1, 1, 1, dtype=cr.float64)
    train_full_batch(net, lambda: net(x), cr.ones(1, 1, 1, dtype=cr.float64), seeds=[0],
                     sweeps=7, schedule=schedule, decay=0.01,
                     criterion=lambda y: np.zeros(1, dtype=bool))
    assert net.layers[0].weight.detach().numpy().item() == pytest.approx(w, abs=1e-12)
    assert net.layers[0].bias.detach().numpy().item() == pytest.approx(b, abs=1e-12)


def test_xor_solves_within_budget():
    rep = run_xor(seeds=[0, 10, 15], sweeps=1500)
    solved_at = rep.metrics["solved_at"]
    assert all(0 < s <= 1500 for s in solved_at)
    assert rep.metrics["stuck_fraction"] == 0.0
    assert rep.metrics["median_sweeps"] == float(np.median(solved_at))


def test_symmetry_converges_to_the_papers_solution():
    rep = run("symmetry", tiny=True)
    (sweeps,) = rep.metrics["solved_at"]
    assert 0 < sweeps <= 800
    (shape,) = rep.metrics["structure"].values()
    assert max(shape["antisymmetry"]) < 0.05               # mirror image, opposite signs
    np.testing.assert_allclose(shape["ratio"], [1, 2, 4], rtol=0.1)
    assert shape["opposite"] < -0.99                        # the two units are opposite
    assert "hidden 0: inputs 1..6" in str(rep)


def test_encoder_learns_eight_codes():
    rep = run("encoder", tiny=True)
    assert rep.metrics["solved_at"][0] > 0
    (code,) = rep.metrics["codes"].values()
    assert np.asarray(code).shape == (8, 3)
    assert rep.metrics["distinct_codes"] == {12: 8}


def test_family_tiny_run_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "enc.png"
    rep = run_family(seeds=[0, 1], sweeps=3, plot=str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert len(rep.metrics["test_correct"]) == 2
    assert all(0 <= c <= 4 for c in rep.metrics["test_correct"])
    assert [len(t) for t in rep.metrics["test_facts"]] == [4, 4]
    assert np.isfinite(rep.metrics["final_error"]).all()


def test_dead_zone_error():
    y = np.array([0.9, 0.5, 0.1, 0.3])
    d = np.array([1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(residual(y, d, dead_zone=(0.2, 0.8)), [0, -0.3, 0, 0.1])
    yt = cr.tensor(y, requires_grad=True)
    squared_error(yt, cr.tensor(d), dead_zone=(0.2, 0.8)).backward()
    np.testing.assert_allclose(yt.grad.numpy(), [0, -0.3, 0, 0.1])


def test_cli_paper1986_tiny(capsys):
    assert cli.main(["paper1986", "symmetry", "--tiny"]) == 0
    out = capsys.readouterr().out
    assert "== symmetry" in out and "converged: 1/1 seeds" in out


def test_example_script_runs_tiny(capsys):
    spec = importlib.util.spec_from_file_location("rumelhart1986_xor", EXAMPLES / "xor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__ and "--tiny" in module.__doc__
    assert module.main(["--tiny"]) == 0
    assert "solved: 4/4 seeds" in capsys.readouterr().out
    names = {p.stem for p in EXAMPLES.glob("*.py")}
    assert names == {"xor", "symmetry", "encoder", "family"}


def test_cli_paper1986_help_and_bad_choice(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["paper1986", "--help"])
    assert e.value.code == 0 and "usage: chainrule paper1986" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["paper1986", "parity"])
    assert e.value.code == 2
