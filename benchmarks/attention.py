"""A 2-layer transformer encoder training step against every installed peer.

Workload: ``TransformerEncoder`` of 2 post-norm ``TransformerEncoderLayer`` (d_model 128,
4 heads, feed-forward 512, ReLU, dropout 0, batch_first), sequence 64, batch 32, float32;
the output is averaged over the sequence and goes through ``Linear(128, 10)`` into
cross-entropy; SGD momentum 0.9. chainrule and PyTorch use their ``nn`` modules; JAX,
autograd and MyGrad run one functional definition of the same network (written once
against their NumPy-like modules); tinygrad runs the same network written with its
``Tensor`` methods (:func:`tinygrad_loss`), under ``TinyJit`` and eagerly. Same NumPy
weights everywhere, the loss cross-check and interleaved timing as in
:mod:`benchmarks.peers`.

Run: ``python -m benchmarks.run attention``.
"""

from __future__ import annotations

import numpy as np

from . import common, peers

NAME = "attention"
DESCRIPTION = "2-layer transformer encoder, d_model 128, 4 heads, seq 64, batch 32: full step"
LR, MOMENTUM = 0.01, 0.9
EPS = np.float32(1e-5)  # LayerNorm eps as float32 (MyGrad upcasts Python floats)
LAYER_KEYS = ("self_attn.in_proj_weight", "self_attn.in_proj_bias",
              "self_attn.out_proj.weight", "self_attn.out_proj.bias",
              "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
              "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")


def init_weights(layers: int, d: int, ff: int, classes: int, seed: int = 0) -> dict:
    """Encoder (``layers.{i}.*``) and head (``head.*``) weights in PyTorch's layout."""
    rng = np.random.default_rng(seed)

    def u(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    w = {}
    for i in range(layers):
        shapes = {"self_attn.in_proj_weight": ((3 * d, d), d),
                  "self_attn.in_proj_bias": ((3 * d,), d),
                  "self_attn.out_proj.weight": ((d, d), d), "self_attn.out_proj.bias": ((d,), d),
                  "linear1.weight": ((ff, d), d), "linear1.bias": ((ff,), d),
                  "linear2.weight": ((d, ff), ff), "linear2.bias": ((d,), ff)}
        for k in LAYER_KEYS:
            if k.startswith("norm"):
                w[f"layers.{i}.{k}"] = (np.ones(d, np.float32) if k.endswith("weight")
                                        else np.zeros(d, np.float32))
            else:
                shape, fan = shapes[k]
                w[f"layers.{i}.{k}"] = u(shape, fan)
    w["head.weight"] = u((classes, d), d)
    w["head.bias"] = u((classes,), d)
    return w


def _layernorm(xp, x, w, b, eps=EPS):
    mu = xp.mean(x, axis=-1, keepdims=True)
    c = x - mu
    var = xp.mean(c * c, axis=-1, keepdims=True)
    return c / xp.sqrt(var + eps) * w + b


def _mha(xp, x, w_in, b_in, w_out, b_out, heads):
    bsz, seq, d = x.shape
    hd = d // heads
    qkv = peers.linear(xp, x, w_in, b_in)

    def split(t):
        return xp.swapaxes(xp.reshape(t, (bsz, seq, heads, hd)), 1, 2)

    q, k, v = split(qkv[..., :d]), split(qkv[..., d:2 * d]), split(qkv[..., 2 * d:])
    s = xp.matmul(q, xp.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(hd))
    s = s - xp.max(s, axis=-1, keepdims=True)
    p = xp.exp(s)
    p = p / xp.sum(p, axis=-1, keepdims=True)
    o = xp.reshape(xp.swapaxes(xp.matmul(p, v), 1, 2), (bsz, seq, d))
    return peers.linear(xp, o, w_out, b_out)


def make_loss(layers: int, heads: int):
    """The functional network and loss ``loss(xp, params, x, onehot)``; params in key order."""
    def loss(xp, ps, x, target):
        h = x
        for i in range(layers):
            (w_in, b_in, w_o, b_o, w1, b1, w2, b2, g1, n1, g2, n2) = ps[12 * i:12 * i + 12]
            h = _layernorm(xp, h + _mha(xp, h, w_in, b_in, w_o, b_o, heads), g1, n1)
            f = peers.linear(xp, peers.relu(xp, peers.linear(xp, h, w1, b1)), w2, b2)
            h = _layernorm(xp, h + f, g2, n2)
        logits = peers.linear(xp, xp.mean(h, axis=1), ps[-2], ps[-1])
        return peers.cross_entropy(xp, logits, target)

    return loss


def tinygrad_loss(layers: int, heads: int):
    """The same network and loss for tinygrad: ``loss(params, x, labels)``, params in key order.

    Mirrors :func:`make_loss` step for step: one packed input projection split into q, k,
    v; scores scaled by ``1/sqrt(head_dim)``; post-norm LayerNorm (eps ``1e-5``) after each
    residual sum; mean over the sequence; the head; mean cross-entropy on integer labels.
    """
    def layernorm(t, w, b):
        return t.layernorm(axis=-1, eps=float(EPS)) * w + b

    def mha(t, w_in, b_in, w_out, b_out):
        bsz, seq, d = t.shape
        hd = d // heads
        qkv = t.linear(w_in.T, b_in)

        def split(u):
            return u.reshape(bsz, seq, heads, hd).transpose(1, 2)

        q, k, v = split(qkv[..., :d]), split(qkv[..., d:2 * d]), split(qkv[..., 2 * d:])
        p = (q.matmul(k.transpose(-1, -2)) * float(np.float32(1.0 / np.sqrt(hd)))).softmax(-1)
        return p.matmul(v).transpose(1, 2).reshape(bsz, seq, d).linear(w_out.T, b_out)

    def loss(ps, x, labels):
        h = x
        for i in range(layers):
            (w_in, b_in, w_o, b_o, w1, b1, w2, b2, g1, n1, g2, n2) = ps[12 * i:12 * i + 12]
            h = layernorm(h + mha(h, w_in, b_in, w_o, b_o), g1, n1)
            h = layernorm(h + h.linear(w1.T, b1).relu().linear(w2.T, b2), g2, n2)
        return h.mean(axis=1).linear(ps[-2].T, ps[-1]).sparse_categorical_crossentropy(labels)

    return loss


def _module_factory(nn, lib, layers, d, heads, ff, classes, weights, x, y):
    enc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0,
                                   batch_first=True),
        layers, enable_nested_tensor=False)
    head = nn.Linear(d, classes)
    conv = lib.from_numpy if hasattr(lib, "from_numpy") else lib.tensor
    enc.load_state_dict({k: conv(v.copy()) for k, v in weights.items()
                         if k.startswith("layers.")})
    head.load_state_dict({"weight": conv(weights["head.weight"].copy()),
                          "bias": conv(weights["head.bias"].copy())})
    params = list(enc.parameters()) + list(head.parameters())
    opt = lib.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    xx, yy = conv(x), conv(y)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(head(enc(xx).mean(dim=1)), yy)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def run(smoke: bool = False, batch: int = 32, seq: int = 64, repeats: int = 5) -> dict:
    """Cross-check, then time the encoder step in every installed library.

    Args:
        smoke: tiny sizes and the fast peers only; checks that the benchmark runs.
        batch: sequences per step.
        seq: sequence length.
        repeats: samples per library.
    """
    layers, d, heads, ff, classes = 2, 128, 4, 512, 10
    if smoke:
        batch, seq, d, heads, ff, repeats = 2, 4, 8, 2, 16, 2
    libs, notes = peers.load_peers(smoke)
    weights = init_weights(layers, d, ff, classes)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, seq, d)).astype(np.float32)
    y = rng.integers(0, classes, batch)

    import chainrule as cr

    facs = {"chainrule": lambda: _module_factory(cr.nn, cr, layers, d, heads, ff, classes,
                                                 weights, x, y)}
    if "torch" in libs:
        torch = libs["torch"]
        facs["torch"] = lambda: _module_factory(torch.nn, torch, layers, d, heads, ff,
                                                classes, weights, x, y)
    info: dict = {}
    keys = [f"layers.{i}.{k}" for i in range(layers) for k in LAYER_KEYS]
    plist = [weights[k] for k in keys] + [weights["head.weight"], weights["head.bias"]]
    facs.update(peers.xp_factories(make_loss(layers, heads), plist, x,
                                   peers.onehot(y, classes), LR, MOMENTUM, libs, info))
    if peers.has_tinygrad(libs):
        facs.update(peers.tinygrad_factories(tinygrad_loss(layers, heads), plist, x, y, LR,
                                             MOMENTUM, info))
    # forward GEMM FLOPs: projections, attention products, feed-forward, head
    per_layer = 2 * batch * seq * (3 * d * d + d * d + 2 * d * ff) + 2 * 2 * batch * seq * seq * d
    flops = 3 * (layers * per_layer + 2 * batch * d * classes)
    result = peers.run_workload(NAME, facs, repeats=repeats, warmup=1,
                                params={"layers": layers, "d_model": d, "heads": heads,
                                        "ff": ff, "seq": seq, "batch": batch,
                                        "repeats": repeats, "smoke": smoke,
                                        "dtype": "float32"},
                                flops=flops, notes=notes, info=info)
    return peers.finish_result(result, libs, 1.2,
                               [peers.TINYGRAD_NOTE] if peers.has_tinygrad(libs) else [])


def format_result(result: dict) -> str:
    """The table of ms per step and ratios to torch."""
    return peers.format_steps(result)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
