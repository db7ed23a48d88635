"""Recurrent layers: PyTorch's parameter names and shapes, gradients, fitting, errors."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import gradcheck, gradgradcheck

nn = cr.nn
F = cr.nn.functional


# ---------------------------------------------------------------- state_dict tables
# Written from PyTorch's documentation (weight_ih_l[k]: (G*hidden, input_size) for k = 0,
# (G*hidden, num_directions*hidden) after; G = 4 LSTM, 3 GRU, 1 RNN; _reverse suffix for
# the second direction; weight_hr_l[k]: (proj_size, hidden)).
def _bidir_table(g: int) -> dict:
    t = {}
    for k, n_in in ((0, 10), (1, 40)):
        for sfx in ("", "_reverse"):
            t[f"weight_ih_l{k}{sfx}"] = (g * 20, n_in)
            t[f"weight_hh_l{k}{sfx}"] = (g * 20, 20)
            t[f"bias_ih_l{k}{sfx}"] = (g * 20,)
            t[f"bias_hh_l{k}{sfx}"] = (g * 20,)
    return t


TABLES = [
    (lambda: nn.LSTM(10, 20, num_layers=2, bidirectional=True), _bidir_table(4)),
    (lambda: nn.GRU(10, 20, num_layers=2, bidirectional=True), _bidir_table(3)),
    (lambda: nn.RNN(10, 20, num_layers=2, bias=False),
     {"weight_ih_l0": (20, 10), "weight_hh_l0": (20, 20),
      "weight_ih_l1": (20, 20), "weight_hh_l1": (20, 20)}),
    (lambda: nn.LSTM(10, 20, proj_size=5),
     {"weight_ih_l0": (80, 10), "weight_hh_l0": (80, 5), "bias_ih_l0": (80,),
      "bias_hh_l0": (80,), "weight_hr_l0": (5, 20)}),
    (lambda: nn.LSTMCell(10, 20),
     {"weight_ih": (80, 10), "weight_hh": (80, 20), "bias_ih": (80,), "bias_hh": (80,)}),
    (lambda: nn.GRUCell(10, 20),
     {"weight_ih": (60, 10), "weight_hh": (60, 20), "bias_ih": (60,), "bias_hh": (60,)}),
    (lambda: nn.RNNCell(10, 20, bias=False), {"weight_ih": (20, 10), "weight_hh": (20, 20)}),
]


@pytest.mark.parametrize("make, table", TABLES)
def test_state_dict_keys_and_shapes_match_pytorch(make, table):
    sd = make().state_dict()
    assert list(sd) == list(table)
    assert {k: tuple(v.shape) for k, v in sd.items()} == table


@pytest.mark.parametrize("make", [t[0] for t in TABLES])
def test_default_init_is_uniform_in_one_over_sqrt_hidden(make):
    m = make()
    bound = 1 / math.sqrt(20)
    for name, p in m.named_parameters():
        a = p.detach().numpy()
        assert a.dtype == np.float32
        assert np.abs(a).max() <= bound, name
        assert np.abs(a).max() > 0.8 * bound, name  # not all zero / not a narrower law


def test_output_and_state_shapes():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    out, (h, c) = lstm(cr.randn(4, 7, 3))
    assert out.shape == (4, 7, 10) and h.shape == (4, 4, 5) and c.shape == (4, 4, 5)
    gru = nn.GRU(3, 5)
    out, h = gru(cr.randn(7, 4, 3))
    assert out.shape == (7, 4, 5) and h.shape == (1, 4, 5)
    # the last output step is the final state (forward direction)
    np.testing.assert_allclose(out.detach().numpy()[-1], h.detach().numpy()[0])
    proj = nn.LSTM(3, 5, proj_size=2)
    out, (h, c) = proj(cr.randn(7, 4, 3))
    assert out.shape == (7, 4, 2) and h.shape == (1, 4, 2) and c.shape == (1, 4, 5)


def test_unbatched_input_and_initial_state():
    lstm = nn.LSTM(3, 5, num_layers=2)
    x = cr.randn(6, 3)
    h0, c0 = cr.randn(2, 5), cr.randn(2, 5)
    out, (h, c) = lstm(x, (h0, c0))
    assert out.shape == (6, 5) and h.shape == (2, 5) and c.shape == (2, 5)
    out_b, (h_b, _) = lstm(x.unsqueeze(1), (h0.unsqueeze(1), c0.unsqueeze(1)))
    np.testing.assert_allclose(out.detach().numpy(), out_b.detach().numpy()[:, 0], atol=1e-6)
    np.testing.assert_allclose(h.detach().numpy(), h_b.detach().numpy()[:, 0], atol=1e-6)
    # a zero initial state is the default
    out0, _ = lstm(x)
    out1, _ = lstm(x, (cr.zeros(2, 5), cr.zeros(2, 5)))
    np.testing.assert_array_equal(out0.detach().numpy(), out1.detach().numpy())


def test_reverse_direction_reads_the_sequence_backwards():
    rnn = nn.RNN(2, 3, bidirectional=True)
    x = cr.randn(5, 1, 2)
    out, h = rnn(x)
    out_flip, _ = rnn(x.flip(0))
    # the reverse half on x equals the forward... of the reversed sequence with reverse weights
    fwd_only = nn.RNN(2, 3)
    fwd_only.weight_ih_l0 = rnn.weight_ih_l0_reverse
    fwd_only.weight_hh_l0 = rnn.weight_hh_l0_reverse
    fwd_only.bias_ih_l0 = rnn.bias_ih_l0_reverse
    fwd_only.bias_hh_l0 = rnn.bias_hh_l0_reverse
    ref, h_ref = fwd_only(x.flip(0))
    np.testing.assert_allclose(out.detach().numpy()[:, :, 3:], ref.flip(0).detach().numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(h.detach().numpy()[1], h_ref.detach().numpy()[0], atol=1e-6)
    assert out_flip.shape == out.shape


# ---------------------------------------------------------------- gradients
def _check_layer(module, x, state, train: bool, seed: int = 3):
    """gradcheck w.r.t. the input, the initial state(s) and every parameter.

    The outputs are folded into one scalar with fixed random weights (one backward per
    input instead of one per output element). Training mode (dropout between layers,
    masks fixed by reseeding) is checked by random projections to keep the test fast.
    """
    module.double().train(train)
    params = list(module.parameters())
    states = list(state) if isinstance(state, tuple) else [state]
    weights = {}

    def fn(x, *rest):
        cr.manual_seed(seed)  # the same dropout masks on every evaluation
        st = rest[: len(states)]
        out = module(x, tuple(st) if len(st) > 1 else st[0])
        flat = [out[0]] + (list(out[1]) if isinstance(out[1], tuple) else [out[1]])
        total = 0
        for k, o in enumerate(flat):
            if k not in weights:
                weights[k] = cr.tensor(np.random.default_rng(k).standard_normal(o.shape))
            total = total + (o * weights[k]).sum()
        return total

    assert gradcheck(fn, (x, *states, *params), fast_mode=train)


def _d(*shape):
    return cr.randn(*shape, dtype=cr.float64, requires_grad=True)


@pytest.mark.parametrize("train", [False, True])
def test_lstm_gradcheck_two_layers_bidirectional(train):
    lstm = nn.LSTM(2, 2, num_layers=2, bidirectional=True, batch_first=True, dropout=0.3)
    _check_layer(lstm, _d(2, 2, 2), (_d(4, 2, 2), _d(4, 2, 2)), train)


@pytest.mark.parametrize("train", [False, True])
def test_gru_gradcheck_two_layers_bidirectional(train):
    gru = nn.GRU(2, 2, num_layers=2, bidirectional=True, dropout=0.3)
    _check_layer(gru, _d(3, 2, 2), _d(4, 2, 2), train)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_gradcheck(nonlinearity):
    rnn = nn.RNN(2, 3, num_layers=2, nonlinearity=nonlinearity)
    _check_layer(rnn, _d(3, 2, 2), _d(2, 2, 3), False)


def test_lstm_with_projection_gradcheck():
    lstm = nn.LSTM(2, 3, proj_size=2, bias=False)
    _check_layer(lstm, _d(3, 2, 2), (_d(1, 2, 2), _d(1, 2, 3)), False)


@pytest.mark.parametrize("fn", [F.lstm, F.rnn_tanh])
def test_layer_double_backward(fn):
    # second derivatives through the whole time loop (fused cell, weight tap, step split),
    # biases included (their first-order gradients are one node twice)
    x, h0, c0 = _d(2, 2, 2), _d(1, 2, 2), _d(1, 2, 2)
    g = 4 if fn is F.lstm else 1
    w_ih, w_hh, b_ih, b_hh = _d(g * 2, 2), _d(g * 2, 2), _d(g * 2), _d(g * 2)

    def f(x, h0, c0, a, b, c, d):
        hx = (h0, c0) if fn is F.lstm else h0
        return fn(x, hx, [a, b, c, d], True, 1, 0.0, True, False, False)[0]

    assert gradgradcheck(f, (x, h0, c0, w_ih, w_hh, b_ih, b_hh))


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cell_gradcheck(cls):
    cell = cls(2, 3).double()
    params = list(cell.parameters())
    x = _d(2, 2)
    if cls is nn.LSTMCell:
        h, c = _d(2, 3), _d(2, 3)
        assert gradcheck(lambda x, h, c, *p: cell(x, (h, c)), (x, h, c, *params))
    else:
        h = _d(2, 3)
        assert gradcheck(lambda x, h, *p: cell(x, h), (x, h, *params))


def test_cells_match_one_step_of_the_layer():
    lstm = nn.LSTM(3, 4)
    cell = nn.LSTMCell(3, 4)
    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(cell, n, getattr(lstm, n + "_l0"))
    x = cr.randn(1, 2, 3)
    out, (h, c) = lstm(x)
    h1, c1 = cell(x[0])
    np.testing.assert_allclose(h1.detach().numpy(), h.detach().numpy()[0], atol=1e-6)
    np.testing.assert_allclose(c1.detach().numpy(), c.detach().numpy()[0], atol=1e-6)
    h_un, c_un = cell(x[0, 0])
    assert h_un.shape == (4,) and c_un.shape == (4,)


def test_dropout_between_layers_only_in_training():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = cr.randn(5, 2, 3)
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    lstm.train()
    c, _ = lstm(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())


# ---------------------------------------------------------------- learning
def test_lstm_learns_to_remember_the_first_token():
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(2, 16, batch_first=True)
    head = nn.Linear(16, 2)
    opt = cr.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=0.03)
    eye = np.eye(2, dtype=np.float32)
    for _ in range(60):
        bits = rng.integers(0, 2, (32, 6))
        _, (h, _) = lstm(cr.tensor(eye[bits]))
        loss = nn.functional.cross_entropy(head(h[-1]), cr.tensor(bits[:, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    bits = rng.integers(0, 2, (64, 6))
    with cr.no_grad():
        _, (h, _) = lstm(cr.tensor(eye[bits]))
        pred = head(h[-1]).argmax(-1).numpy()
    assert loss.item() < 0.05
    assert (pred == bits[:, 0]).mean() == 1.0


# ---------------------------------------------------------------- errors
def test_wrong_feature_size_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"LSTM: expected input with input_size=4 .*\(5, 3, 6\)"):
        nn.LSTM(4, 8)(cr.randn(5, 3, 6))
    with pytest.raises(ValueError, match=r"GRU: expected input with input_size=4 .*\(5, 6\)"):
        nn.GRU(4, 8)(cr.randn(5, 6))
    with pytest.raises(ValueError, match=r"LSTMCell: expected input with input_size=4"):
        nn.LSTMCell(4, 8)(cr.randn(2, 5))


def test_wrong_rank_names_layer_and_shape():
    with pytest.raises(ValueError, match=r"RNN: expected input to be 2-D .* got 4-D .*"
                                         r"\(1, 2, 3, 4\)"):
        nn.RNN(4, 8)(cr.randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"GRUCell: expected input to be 1-D .*\(1, 2, 4\)"):
        nn.GRUCell(4, 8)(cr.randn(1, 2, 4))


def test_wrong_state_shape():
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = cr.randn(5, 2, 3)
    with pytest.raises(ValueError, match=r"LSTM: expected c_0 of shape \(2, 2, 4\), got "
                                         r"\(1, 2, 4\)"):
        lstm(x, (cr.zeros(2, 2, 4), cr.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"GRU: for unbatched 2-D input, h_0 should also be "
                                         r"2-D"):
        nn.GRU(3, 4)(cr.randn(5, 3), cr.zeros(1, 1, 4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="LSTM: dropout should be a number in range"):
        nn.LSTM(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="GRU: proj_size argument is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match=r"LSTM: proj_size \(4\) has to be smaller"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        nn.LSTM(3, 0)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


def test_repr_mirrors_pytorch():
    assert repr(nn.LSTM(10, 20, num_layers=2, batch_first=True)) == \
        "LSTM(10, 20, num_layers=2, batch_first=True)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"


# ---------------------------------------------------------------- against PyTorch
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_matches_pytorch_with_copied_weights(kind):
    torch = pytest.importorskip("torch")
    kw = dict(num_layers=2, bidirectional=True, batch_first=True)
    tm = getattr(torch.nn, kind)(3, 4, **kw).double()
    cm = getattr(nn, kind)(3, 4, **kw).double()
    cm.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.randn(2, 5, 3)
    tx = torch.tensor(x, requires_grad=True)
    cx = cr.tensor(x, requires_grad=True)
    t_out, t_h = tm(tx)
    c_out, c_h = cm(cx)
    if kind == "LSTM":
        t_h, c_h = t_h[1], c_h[1]  # compare the cell state
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c_h.detach().numpy(), t_h.detach().numpy(), atol=1e-12)
    ((t_out ** 2).sum() + t_h.sum()).backward()
    ((c_out ** 2).sum() + c_h.sum()).backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), atol=1e-12)
    for (name, tp), cp in zip(tm.named_parameters(), cm.parameters()):
        np.testing.assert_allclose(cp.grad.numpy(), tp.grad.numpy(), atol=1e-12, err_msg=name)
