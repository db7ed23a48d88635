"""The chainrule command: help, explain, gradcheck, demo, and errors with exit codes."""

import json
import os
import subprocess
import sys

import pytest

from chainrule import cli


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "chainrule", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("sub", ["demo", "explain", "gradcheck", "bench"])
def test_every_subcommand_has_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    assert "usage: chainrule " + sub in capsys.readouterr().out


def test_explain_prints_checked_steps(capsys):
    assert cli.main(["explain", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "dL/dW1" in out and "finite diff" in out and "δ^l" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_unknown_model_exits_non_zero():
    r = run("demo", "--model", "resnet")
    assert r.returncode == 2 and "invalid choice: 'resnet'" in r.stderr


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["demo", "--out", str(blocker / "sub"), "--quiet"])
    assert code == 1


def test_gradcheck_command_on_mlp(capsys):
    assert cli.main(["gradcheck", "mlp"]) == 0
    assert "all 1 models passed" in capsys.readouterr().out


def test_gradcheck_unknown_model(capsys):
    assert cli.main(["gradcheck", "vgg"]) == 1
    assert "unknown model 'vgg'" in capsys.readouterr().err


def test_demo_writes_a_complete_report(tmp_path):
    out = tmp_path / "run"
    r = run("demo", "--model", "mlp", "--epochs", "2", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Held-out accuracy" in r.stdout and "index.html" in r.stdout
    for name in ("curves.png", "gradient_flow.png", "gradient_norms.png", "confusion.png"):
        assert os.path.getsize(out / name) > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and 0.5 < metrics["held_out_accuracy"] <= 1.0
    html = (out / "index.html").read_text()
    assert all(n in html for n in ("curves.png", "gradient_flow.png", "confusion.png"))
    assert (out / "model.safetensors").stat().st_size > 0
