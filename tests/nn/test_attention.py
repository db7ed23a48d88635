"""Attention: SDPA masks, MultiheadAttention and the Transformer encoder."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import gradcheck

nn = cr.nn
F = cr.nn.functional


def _d(*shape):
    return cr.randn(*shape, dtype=cr.float64, requires_grad=True)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------- scaled dot product
def test_sdpa_matches_reference_and_mask_semantics():
    q, k, v = np.random.randn(2, 3, 4), np.random.randn(2, 5, 4), np.random.randn(2, 5, 6)
    out = F.scaled_dot_product_attention(cr.tensor(q), cr.tensor(k), cr.tensor(v))
    ref = _softmax(q @ k.transpose(0, 2, 1) / 2.0) @ v
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    # bool mask: True = take part
    m = np.random.rand(3, 5) > 0.4
    m[:, 0] = True
    out = F.scaled_dot_product_attention(cr.tensor(q), cr.tensor(k), cr.tensor(v),
                                         attn_mask=cr.tensor(m))
    s = np.where(m, q @ k.transpose(0, 2, 1) / 2.0, -np.inf)
    np.testing.assert_allclose(out.numpy(), _softmax(s) @ v, atol=1e-12)
    # float mask: added; custom scale
    fm = np.random.randn(3, 5)
    out = F.scaled_dot_product_attention(cr.tensor(q), cr.tensor(k), cr.tensor(v),
                                         attn_mask=cr.tensor(fm), scale=0.3)
    np.testing.assert_allclose(out.numpy(), _softmax(q @ k.transpose(0, 2, 1) * 0.3 + fm) @ v,
                               atol=1e-12)


def test_sdpa_causal_and_fully_masked_rows():
    q = cr.randn(1, 4, 2, dtype=cr.float64)
    v = cr.randn(1, 4, 3, dtype=cr.float64)
    out = F.scaled_dot_product_attention(q, q, v, is_causal=True)
    # the first query sees only the first key
    np.testing.assert_allclose(out.numpy()[0, 0], v.numpy()[0, 0], atol=1e-12)
    m = np.ones((4, 4), dtype=bool)
    m[2] = False
    out = F.scaled_dot_product_attention(q, q, v, attn_mask=cr.tensor(m))
    np.testing.assert_array_equal(out.numpy()[0, 2], 0.0)  # PyTorch's safe softmax
    assert np.isfinite(out.numpy()).all()


def test_sdpa_gradcheck_with_float_mask():
    q, k, v, fm = _d(2, 3, 4), _d(2, 5, 4), _d(2, 5, 2), _d(3, 5)
    assert gradcheck(lambda *a: F.scaled_dot_product_attention(a[0], a[1], a[2],
                                                               attn_mask=a[3]), (q, k, v, fm))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     (q, _d(2, 3, 4), _d(2, 3, 2)))


def test_sdpa_errors():
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: query and key .*"
                                         r"\(2, 3, 4\) and \(2, 5, 3\)"):
        F.scaled_dot_product_attention(cr.zeros(2, 3, 4), cr.zeros(2, 5, 3), cr.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(cr.zeros(3, 4), cr.zeros(3, 4), cr.zeros(3, 4),
                                       attn_mask=cr.ones(3, 3), is_causal=True)


# ---------------------------------------------------------------- MultiheadAttention
MHA_TABLES = [
    (dict(), {"in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8),
              "out_proj.bias": (8,)}),
    (dict(kdim=3, vdim=5), {"q_proj_weight": (8, 8), "k_proj_weight": (8, 3),
                            "v_proj_weight": (8, 5), "in_proj_bias": (24,),
                            "out_proj.weight": (8, 8), "out_proj.bias": (8,)}),
    (dict(bias=False, add_bias_kv=True),
     {"in_proj_weight": (24, 8), "bias_k": (1, 1, 8), "bias_v": (1, 1, 8),
      "out_proj.weight": (8, 8)}),
]


@pytest.mark.parametrize("kw, table", MHA_TABLES)
def test_mha_state_dict_matches_pytorch(kw, table):
    sd = nn.MultiheadAttention(8, 2, **kw).state_dict()
    assert list(sd) == list(table)
    assert {k: tuple(v.shape) for k, v in sd.items()} == table


def test_mha_default_init():
    m = nn.MultiheadAttention(8, 2)
    np.testing.assert_array_equal(m.in_proj_bias.detach().numpy(), 0.0)
    np.testing.assert_array_equal(m.out_proj.bias.detach().numpy(), 0.0)
    bound = math.sqrt(6 / (8 + 24))  # xavier_uniform_ on (24, 8)
    w = m.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def _mha_ref(m, q, k, v, kpm=None):
    """Single-sequence reference (L, E) with numpy, heads by hand."""
    w = m.in_proj_weight.detach().numpy()
    b = m.in_proj_bias.detach().numpy()
    e, h = m.embed_dim, m.num_heads
    d = e // h
    qp, kp, vp = q @ w[:e].T + b[:e], k @ w[e:2 * e].T + b[e:2 * e], v @ w[2 * e:].T + b[2 * e:]
    outs, ws = [], []
    for i in range(h):
        s = qp[:, i * d:(i + 1) * d] @ kp[:, i * d:(i + 1) * d].T / math.sqrt(d)
        if kpm is not None:
            s = np.where(kpm[None, :], -np.inf, s)
        a = _softmax(s)
        ws.append(a)
        outs.append(a @ vp[:, i * d:(i + 1) * d])
    o = np.concatenate(outs, -1) @ m.out_proj.weight.detach().numpy().T
    return o + m.out_proj.bias.detach().numpy(), np.mean(ws, 0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_matches_reference_with_key_padding_mask(need_weights):
    m = nn.MultiheadAttention(8, 2, batch_first=True).double()
    with cr.no_grad():
        m.in_proj_bias.copy_(cr.randn(24, dtype=cr.float64))
    q, kv = np.random.randn(2, 3, 8), np.random.randn(2, 5, 8)
    kpm = np.array([[False, False, True, False, True], [False] * 5])
    out, w = m(cr.tensor(q), cr.tensor(kv), cr.tensor(kv), key_padding_mask=cr.tensor(kpm),
               need_weights=need_weights)
    for n in range(2):
        ro, rw = _mha_ref(m, q[n], kv[n], kv[n], kpm[n])
        np.testing.assert_allclose(out.detach().numpy()[n], ro, atol=1e-12)
        if need_weights:
            np.testing.assert_allclose(w.detach().numpy()[n], rw, atol=1e-12)
    assert (w is None) == (not need_weights)


def test_mha_bool_attn_mask_true_means_blocked():
    m = nn.MultiheadAttention(4, 1).double()
    x = cr.randn(3, 1, 4, dtype=cr.float64)
    blocked = np.zeros((3, 3), dtype=bool)
    blocked[:, 2] = True
    _, w = m(x, x, x, attn_mask=cr.tensor(blocked))
    np.testing.assert_array_equal(w.detach().numpy()[0, :, 2], 0.0)
    _, w_heads = m(x, x, x, average_attn_weights=False)
    assert w_heads.shape == (1, 1, 3, 3)


@pytest.mark.parametrize("kw", [dict(), dict(kdim=3, vdim=2, add_bias_kv=True,
                                               add_zero_attn=True)])
@pytest.mark.parametrize("train", [False, True])
def test_mha_gradcheck_inputs_and_parameters(kw, train):
    m = nn.MultiheadAttention(4, 2, dropout=0.3, batch_first=True, **kw).double()
    m.train(train)
    params = list(m.parameters())
    q = _d(2, 3, 4)
    k = _d(2, 2, kw.get("kdim", 4))
    v = _d(2, 2, kw.get("vdim", 4))
    kpm = cr.tensor(np.array([[False, True], [False, False]]))
    am = cr.randn(3, 2, dtype=cr.float64)
    wts = cr.randn(2, 3, 4, dtype=cr.float64)

    def fn(q, k, v, *p):
        cr.manual_seed(5)
        out, w = m(q, k, v, key_padding_mask=kpm, attn_mask=am)
        return (out * wts).sum() + (w * w).sum()

    assert gradcheck(fn, (q, k, v, *params), fast_mode=train)


def test_mha_unbatched_matches_batched():
    m = nn.MultiheadAttention(4, 2)
    x = cr.randn(3, 4)
    out, w = m(x, x, x)
    out_b, w_b = m(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1))
    assert out.shape == (3, 4) and w.shape == (3, 3)
    np.testing.assert_allclose(out.detach().numpy(), out_b.detach().numpy()[:, 0], atol=1e-6)


def test_mha_errors_name_layer_and_shapes():
    m = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected query with 8 features"
                                         r" .*\(3, 2, 6\)"):
        m(cr.zeros(3, 2, 6), cr.zeros(3, 2, 8), cr.zeros(3, 2, 8))
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected key to be 3-D .* got "
                                         r"\(1, 3, 2, 8\)"):
        m(cr.zeros(3, 2, 8), cr.zeros(1, 3, 2, 8), cr.zeros(3, 2, 8))
    with pytest.raises(ValueError, match=r"must be divisible by num_heads"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(2, 3\), got \(2, 4\)"):
        m(cr.zeros(3, 2, 8), cr.zeros(3, 2, 8), cr.zeros(3, 2, 8),
          key_padding_mask=cr.zeros(2, 4, dtype=cr.bool))
    with pytest.raises(ValueError, match="is_causal=True is a hint and needs attn_mask"):
        m(cr.zeros(3, 2, 8), cr.zeros(3, 2, 8), cr.zeros(3, 2, 8), is_causal=True)


def test_attention_learns_to_select_the_flagged_item():
    rng = np.random.default_rng(0)
    e, n, length, d = 16, 32, 6, 4
    emb = nn.Linear(d + 1, e)
    mha = nn.MultiheadAttention(e, 2, batch_first=True)
    head = nn.Linear(e, d)
    query = nn.Parameter(cr.randn(1, 1, e))
    params = [*emb.parameters(), *mha.parameters(), *head.parameters(), query]
    opt = cr.optim.Adam(params, lr=0.01)
    for _ in range(150):
        vals = rng.standard_normal((n, length, d)).astype(np.float32)
        pos = rng.integers(0, length, n)
        flag = np.zeros((n, length, 1), np.float32)
        flag[np.arange(n), pos, 0] = 1
        keys = emb(cr.tensor(np.concatenate([vals, flag], -1)))
        out, w = mha(query.expand(n, 1, e), keys, keys)
        loss = ((head(out[:, 0]) - cr.tensor(vals[np.arange(n), pos])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01
    # the attention weights point at the flagged position
    assert (w.detach().numpy()[:, 0].argmax(-1) == pos).all()


# ---------------------------------------------------------------- Transformer encoder
def test_encoder_layer_state_dict_matches_pytorch():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    table = {
        "self_attn.in_proj_weight": (24, 8), "self_attn.in_proj_bias": (24,),
        "self_attn.out_proj.weight": (8, 8), "self_attn.out_proj.bias": (8,),
        "linear1.weight": (16, 8), "linear1.bias": (16,),
        "linear2.weight": (8, 16), "linear2.bias": (8,),
        "norm1.weight": (8,), "norm1.bias": (8,), "norm2.weight": (8,), "norm2.bias": (8,),
    }
    sd = layer.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == table
    assert list(sd) == list(table)
    assert [n for n, _ in layer.named_children()] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"]
    enc = nn.TransformerEncoder(layer, num_layers=2)
    keys = list(enc.state_dict())
    assert keys == [f"layers.{i}.{k}" for i in range(2) for k in table]
    # the layers are independent copies
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight


@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
@pytest.mark.parametrize("train", [False, True])
def test_encoder_layer_gradcheck(norm_first, activation, train):
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.2,
                                       activation=activation, norm_first=norm_first,
                                       batch_first=True).double().train(train)
    params = list(layer.parameters())
    x = _d(2, 3, 4)
    kpm = cr.tensor(np.array([[False, False, True], [False, False, False]]))
    wts = cr.randn(2, 3, 4, dtype=cr.float64)

    def fn(x, *p):
        cr.manual_seed(11)
        return (layer(x, src_key_padding_mask=kpm) * wts).sum()

    assert gradcheck(fn, (x, *params), fast_mode=train)


def test_encoder_runs_with_causal_mask_and_final_norm():
    from chainrule.nn.modules.transformer import generate_square_subsequent_mask

    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).eval()
    x = cr.randn(5, 2, 8)
    mask = generate_square_subsequent_mask(5)
    out = enc(x, mask=mask, is_causal=True)
    assert out.shape == (5, 2, 8)
    # causal: changing the last step leaves the earlier outputs unchanged
    x2 = x.detach().clone()
    x2[4] = 10.0
    out2 = enc(x2, mask=mask, is_causal=True)
    np.testing.assert_allclose(out.detach().numpy()[:4], out2.detach().numpy()[:4], atol=1e-5)
    assert np.abs(out.detach().numpy()[4] - out2.detach().numpy()[4]).max() > 1e-3


def test_encoder_layer_errors():
    with pytest.raises(ValueError, match="activation should be relu/gelu, not 'tanh'"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: expected src with "
                                         r"d_model=8 .*\(3, 2, 5\)"):
        layer(cr.zeros(3, 2, 5))


# ---------------------------------------------------------------- against PyTorch
def test_mha_and_encoder_match_pytorch():
    torch = pytest.importorskip("torch")

    def copy(tm, cm):
        cm.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in
                            tm.state_dict().items()})

    tm = torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5).double()
    cm = nn.MultiheadAttention(8, 2, kdim=3, vdim=5).double()
    copy(tm, cm)
    q, k, v = np.random.randn(4, 2, 8), np.random.randn(6, 2, 3), np.random.randn(6, 2, 5)
    am = np.random.randn(2 * 2, 4, 6)
    t_out, t_w = tm(*(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(am),
                    average_attn_weights=False)
    c_out, c_w = cm(*(cr.tensor(a) for a in (q, k, v)), attn_mask=cr.tensor(am),
                    average_attn_weights=False)
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c_w.detach().numpy(), t_w.detach().numpy(), atol=1e-12)

    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True,
                                          activation="gelu", batch_first=True).double()
    te = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=False).double().eval()
    ce = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                          norm_first=True, activation="gelu",
                                                          batch_first=True), 2).double().eval()
    copy(te, ce)
    x = np.random.randn(3, 4, 8)
    kpm = np.zeros((3, 4), dtype=bool)
    kpm[:, -1] = True
    t = te(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
    c = ce(cr.tensor(x), src_key_padding_mask=cr.tensor(kpm))
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), atol=1e-12)
