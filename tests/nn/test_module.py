"""Module system: registration, traversal, state dicts, modes, dtypes, hooks, repr."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.scale = nn.Parameter(cr.ones(4))
        self.register_buffer("running", cr.zeros(4))
        self.register_buffer("scratch", cr.zeros(2), persistent=False)

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale + self.running


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.block(x))


def test_parameter_defaults_and_repr():
    p = nn.Parameter(cr.zeros(2))
    assert p.requires_grad and isinstance(p, cr.Tensor)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(cr.zeros(2), requires_grad=False)
    assert not q.requires_grad
    # ops on a parameter give plain tensors
    assert type(p * 2) is cr.Tensor


def test_parameter_shares_data():
    t = cr.zeros(3)
    p = nn.Parameter(t)
    assert p._data is t._data


def test_registration_and_named_members():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.weight"]
    assert [n for n, _ in net.named_buffers()] == ["block.running", "block.scratch"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.act",
                                                   "head"]
    assert len(list(net.parameters(recurse=False))) == 0
    assert net.head.bias is None
    assert net.get_parameter("block.fc.weight") is net.block.fc.weight
    assert net.get_submodule("block.fc") is net.block.fc


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert len(list(seq.modules())) == 3


def test_setattr_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = cr.zeros(2, 2)
    m.bias = None
    assert m.bias is None and "bias" not in m.state_dict()
    m.extra = 5
    assert m.extra == 5 and "extra" not in m._parameters
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = m.nope
    with pytest.raises(KeyError, match="attribute 'extra' already exists"):
        m.register_buffer("extra", cr.zeros(1))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(cr.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_register_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="Parameter or None required"):
        m.register_parameter("a", cr.zeros(1))
    with pytest.raises(TypeError, match="Tensor or None required"):
        m.register_buffer("b", [1, 2])


def test_delattr():
    m = Block()
    del m.scale
    assert "scale" not in dict(m.named_parameters())


def test_state_dict_keys_order_and_persistence():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["block.scale", "block.running", "block.fc.weight", "block.fc.bias",
                        "head.weight"]
    assert not sd["block.fc.weight"].requires_grad
    # values share memory with the parameters
    assert sd["block.fc.weight"]._data is net.block.fc.weight._data
    assert net.state_dict(keep_vars=True)["head.weight"] is net.head.weight


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    # copies, not aliases
    assert b.head.weight._data is not a.head.weight._data


def test_load_state_dict_accepts_arrays_and_casts():
    m = nn.Linear(2, 1)
    m.load_state_dict({"weight": np.array([[1.0, 2.0]]), "bias": np.array([3.0])})
    assert m.weight.dtype == cr.float32
    np.testing.assert_array_equal(m.weight.detach().numpy(), [[1.0, 2.0]])


def _snapshot(m):
    return {k: v.numpy().copy() for k, v in m.state_dict().items()}


def test_load_state_dict_strict_errors_name_every_key_and_change_nothing():
    m = Net()
    before = _snapshot(m)
    sd = dict(Net().state_dict())
    del sd["head.weight"]
    sd["extra.key"] = cr.zeros(1)
    sd["block.fc.bias"] = cr.zeros(5)
    with pytest.raises(RuntimeError) as ei:
        m.load_state_dict(sd)
    msg = str(ei.value)
    assert "Net" in msg
    assert '"head.weight"' in msg and "Missing" in msg
    assert '"extra.key"' in msg and "Unexpected" in msg
    assert "size mismatch for block.fc.bias" in msg and "(5,)" in msg and "(4,)" in msg
    after = _snapshot(m)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_load_state_dict_non_strict_reports_keys():
    m = Net()
    sd = dict(Net().state_dict())
    del sd["head.weight"]
    sd["extra"] = cr.zeros(1)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.weight"]
    assert res.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(m.block.fc.weight.detach().numpy(),
                                  sd["block.fc.weight"].numpy())


def test_load_state_dict_shape_error_even_when_not_strict():
    m = nn.Linear(2, 3)
    w = m.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": cr.zeros(2, 2)}, strict=False)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w)


def test_train_eval_flags():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="bool"):
        net.train("yes")


def test_zero_grad_and_requires_grad_():
    m = nn.Linear(3, 2)
    m(cr.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert float(m.weight.grad.abs().sum()) == 0.0
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    seen = []
    net = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    net.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_dtype_conversion():
    m = Block()
    m.double()
    assert all(p.dtype == cr.float64 for p in m.parameters())
    assert m.running.dtype == cr.float64
    m.to(cr.float32)
    assert m.fc.weight.dtype == cr.float32
    m.half()
    assert m.fc.weight.dtype == cr.float16
    m.to("cpu", dtype=cr.float64)
    assert m.fc.weight.dtype == cr.float64
    m.float()
    assert m.fc.weight.dtype == cr.float32
    # parameters stay the same objects (optimizers keep working)
    w = m.fc.weight
    m.double()
    assert m.fc.weight is w
    with pytest.raises(TypeError, match="floating"):
        m.to(cr.int64)


def test_forward_hooks_modify_and_remove():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    out = m(cr.ones(3, 2))
    assert calls == [(3, 2)]
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(
        m.bias.detach().numpy() + 1, (3, 2)), rtol=1e-6)
    h1.remove()
    h2.remove()
    h2.remove()  # twice is fine
    out = m(cr.ones(1, 2))
    assert len(calls) == 1


def test_forward_pre_hook_single_value_is_wrapped():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, args: cr.zeros(1))
    assert float(m(cr.ones(1))) == 0.0


def test_full_backward_hook_sees_and_replaces_grads():
    m = nn.Linear(3, 2).double()
    seen = []

    def hook(mod, grad_input, grad_output):
        seen.append((mod, [g.shape for g in grad_input], [g.shape for g in grad_output]))
        return (grad_input[0] * 2,)

    h = m.register_full_backward_hook(hook)
    x = cr.randn(4, 3, dtype=cr.float64, requires_grad=True)
    m(x).sum().backward()
    assert seen == [(m, [(4, 3)], [(4, 2)])]
    expected = 2 * np.ones((4, 2)) @ m.weight.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), expected)
    # parameters still get their own gradients
    np.testing.assert_allclose(m.weight.grad.numpy(), np.ones((2, 4)) @ x.detach().numpy())
    h.remove()
    x.grad = None
    m(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected / 2)


def test_full_backward_hook_input_without_grad():
    m = nn.Linear(3, 2)
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go[0].shape)))
    m(cr.randn(2, 3)).sum().backward()
    assert seen == [((None,), (2, 2))]


def test_backward_hook_gradcheck_passthrough():
    m = nn.Linear(2, 2).double()
    m.register_full_backward_hook(lambda mod, gi, go: None)
    x = cr.randn(3, 2, dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(lambda t: m(t), (x,))


def test_repr_nested():
    net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2)))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.2, inplace=False)\n"
        "  )\n"
        ")"
    )
    assert repr(Net()).startswith("Net(\n  (block): Block(\n    (fc): Linear(")


def test_forward_missing():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(cr.zeros(1))


def test_sequential_indexing_slicing_append():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b)
    seq.append(c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub.state_dict()) == ["2.weight", "2.bias"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    del seq[1]
    assert list(seq._modules) == ["0", "1"] and seq[1] is c
    seq.insert(1, b)
    assert list(seq) == [a, b, c]
    assert seq(cr.randn(5, 2)).shape == (5, 1)


def test_sequential_from_ordered_dict():
    from collections import OrderedDict

    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    assert isinstance(seq.act, nn.Tanh)


def test_module_list():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(ml) == 3
    assert list(ml.state_dict())[:2] == ["0.weight", "0.bias"]
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    assert len(ml) == 5 and isinstance(ml[-1], nn.Tanh)
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    ml.insert(0, nn.Identity())
    assert isinstance(ml[0], nn.Identity)
    assert len(list(ml.parameters())) == 4
    with pytest.raises(NotImplementedError):
        ml(cr.zeros(1))


def test_module_dict():
    md = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.ReLU()})
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    md["c"] = nn.Tanh()
    assert list(md) == ["a", "b", "c"]
    assert isinstance(md.pop("b"), nn.ReLU)
    assert list(md.state_dict()) == ["a.weight", "a.bias"]
    with pytest.raises(KeyError, match="zz"):
        md["zz"]
    md.update([("d", nn.Identity())])
    assert [k for k, _ in md.items()] == ["a", "c", "d"]


def test_parameter_list_and_dict():
    pl = nn.ParameterList([nn.Parameter(cr.ones(2)), cr.zeros(3)])
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter)
    pl.append(cr.ones(1))
    assert list(pl.state_dict()) == ["0", "1", "2"]
    pd = nn.ParameterDict({"a": cr.ones(2)})
    pd["b"] = nn.Parameter(cr.zeros(1))
    assert list(pd.keys()) == ["a", "b"] and "a" in pd
    assert {k: v.shape for k, v in pd.state_dict().items()} == {"a": (2,), "b": (1,)}
    with pytest.raises(TypeError, match="Parameter or Tensor"):
        pl.append(3)


def test_deepcopy_copies_parameters_and_keeps_sharing():
    import copy

    a = nn.Linear(2, 2)
    net = nn.Sequential(a, nn.ReLU(), a)
    net2 = copy.deepcopy(net)
    assert net2[0] is net2[2] and net2[0] is not a
    assert isinstance(net2[0].weight, nn.Parameter)
    assert net2[0].weight._data is not a.weight._data
    np.testing.assert_array_equal(net2[0].weight.detach().numpy(), a.weight.detach().numpy())
    assert len(list(net2.parameters())) == 2


def test_hooks_prepend_and_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: (a, {"factor": 3.0}), with_kwargs=True)
    seen = []
    m.register_forward_hook(lambda mod, a, kw, o: seen.append(kw), with_kwargs=True)
    out = m(cr.ones(1), factor=2.0)
    assert float(out) == 3.0 and order == ["first", "second"] and seen == [{"factor": 3.0}]


def test_load_state_dict_assign():
    m = Block()
    w = cr.ones(4, 3, dtype=cr.float64)
    sd = dict(m.state_dict())
    sd["fc.weight"] = w
    m.load_state_dict(sd, assign=True)
    assert isinstance(m.fc.weight, nn.Parameter) and m.fc.weight.requires_grad
    assert m.fc.weight.dtype == cr.float64 and m.fc.weight._data is w._data


def test_full_backward_pre_hook_replaces_grad_output():
    m = nn.Linear(2, 2).double()
    seen = []
    m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 3,))
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].numpy().copy()))
    x = cr.randn(1, 2, dtype=cr.float64, requires_grad=True)
    m(x).sum().backward()
    np.testing.assert_allclose(seen[0], [[3.0, 3.0]])
    np.testing.assert_allclose(m.bias.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), 3 * m.weight.detach().numpy().sum(0, keepdims=True))
