"""draw_graph: valid DOT for an MLP loss, parameter names and grads, 100k nodes."""

import re
import shutil

import pytest

import chainrule as cr
from chainrule.diagnostics import GraphvizNotFoundWarning, draw_graph

NODE = re.compile(r'^\s*(n\d+) \[(.*)\];$')
EDGE = re.compile(r'^\s*(n\d+) -> (n\d+);$')


def parse_dot(dot: str):
    """A tiny DOT reader for what draw_graph writes: nodes with attributes, edges."""
    assert dot.count("{") == dot.count("}") == 1
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph chainrule {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line.strip().startswith(("graph [", "node [")):
            continue
        m = NODE.match(line)
        if m:
            assert m.group(1) not in nodes, "node declared twice"
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', m.group(2))
            assert label is not None
            nodes[m.group(1)] = (m.group(2), label.group(1))
            continue
        m = EDGE.match(line)
        assert m is not None, f"unparsed line: {line!r}"
        edges.append((m.group(1), m.group(2)))
    for a, b in edges:
        assert a in nodes and b in nodes, "edge to an undeclared node"
    return nodes, edges


def mlp():
    x = cr.randn(8, 4)
    W1 = cr.randn(5, 4, requires_grad=True)
    b1 = cr.zeros(5, requires_grad=True)
    W2 = cr.randn(2, 5, requires_grad=True)
    target = cr.randn(8, 2)
    loss = (((x @ W1.T + b1).relu() @ W2.T - target) ** 2).mean()
    return loss, {"fc1.weight": W1, "fc1.bias": b1, "fc2.weight": W2}


def test_mlp_dot_parses():
    loss, params = mlp()
    nodes, edges = parse_dot(draw_graph(loss, params=params))
    labels = [lab for _, lab in nodes.values()]
    for name in params:
        assert any(lab.startswith(name + "\\n") for lab in labels)
    assert any(lab.startswith("matmul\\n(8, 5) float32") for lab in labels)
    assert any("relu" in lab for lab in labels)
    # a DAG: 3 parameters feed in, one output, every op has an input edge
    sinks = set(nodes) - {a for a, _ in edges}
    assert len(sinks) == 1
    assert sum("parameter" in lab for lab in labels) == 3


class FakeModel:
    def __init__(self, params):
        self._p = params

    def named_parameters(self):
        return iter(self._p.items())


def test_model_names_and_grad_norms():
    loss, params = mlp()
    loss.backward()
    dot = draw_graph(loss, model=FakeModel(params))
    assert "fc2.weight" in dot
    assert dot.count("|grad| = ") == 3
    assert "|grad|" not in draw_graph(loss, model=FakeModel(params), show_grads=False)


def test_no_graph_tensor():
    nodes, edges = parse_dot(draw_graph(cr.ones(2, 2)))
    assert len(nodes) == 1 and not edges


def test_hundred_thousand_nodes_and_collapse():
    w = cr.ones(2, requires_grad=True)
    y = w
    for _ in range(50000):
        y = y * 1.0001
        y = y + 1.0
    out = y.sum()
    nodes, edges = parse_dot(draw_graph(out))
    assert len(nodes) == 100002
    assert len(edges) == 100001
    nodes, edges = parse_dot(draw_graph(out, collapse=True))
    assert len(nodes) == 3                      # sum, [mul -> add] x 50000, the leaf
    assert any("[mul -> add] x 50000" in lab for _, lab in nodes.values())


def test_collapse_keeps_branches():
    w = cr.ones(3, requires_grad=True)
    a = w
    for _ in range(5):
        a = a.sin()
    b = w * 2
    nodes, edges = parse_dot(draw_graph((a + b).sum(), collapse=True))
    labels = [lab for _, lab in nodes.values()]
    assert any(lab.startswith("sin x 5") for lab in labels)
    assert any(lab.startswith("mul\\n") for lab in labels)


def test_write_dot_and_image(tmp_path, monkeypatch):
    loss, params = mlp()
    p = tmp_path / "g.dot"
    dot = draw_graph(loss, path=p, params=params)
    assert p.read_text() == dot
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.warns(GraphvizNotFoundWarning, match="dot"):
        draw_graph(loss, path=tmp_path / "g2.svg")
    assert (tmp_path / "g2.dot").exists()
    assert not (tmp_path / "g2.svg").exists()


def test_bad_input():
    with pytest.raises(TypeError, match="Tensor"):
        draw_graph([1, 2])
    with pytest.raises(TypeError, match="dict"):
        draw_graph(cr.ones(1), params=[1])


def test_image_is_rendered_through_the_dot_program(tmp_path, monkeypatch):
    # A stand-in `dot` on PATH records its arguments and input, so the rendering path is
    # tested the same way whether or not Graphviz is installed on the machine.
    import os
    import stat
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "args = sys.argv[1:]\n"
        "src = sys.stdin.read()\n"
        "out = args[args.index('-o') + 1]\n"
        "open(out, 'w').write('<svg><!-- ' + ' '.join(args[:1]) + ' -->' + src[:9] + '</svg>')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    loss, params = mlp()
    draw_graph(loss, path=tmp_path / "g.svg", params=params)
    text = (tmp_path / "g.svg").read_text()
    assert text.startswith("<svg><!-- -Tsvg -->digraph")
