"""Losses: values against NumPy formulas, gradcheck, stability, reductions, errors."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck

F = nn.functional
RNG = np.random.default_rng(0)


def t64(a, grad=True):
    return cr.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def log_softmax(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


X = RNG.normal(size=(4, 3))
Y = RNG.normal(size=(4, 3))
P = RNG.uniform(0.05, 0.95, size=(4, 3))
T01 = RNG.uniform(size=(4, 3))

REGRESSION = [
    (nn.MSELoss(), lambda x, y: ((x - y) ** 2).mean()),
    (nn.MSELoss(reduction="sum"), lambda x, y: ((x - y) ** 2).sum()),
    (nn.L1Loss(), lambda x, y: np.abs(x - y).mean()),
    (nn.L1Loss(reduction="none"), lambda x, y: np.abs(x - y)),
    (nn.HuberLoss(delta=0.5), lambda x, y: np.where(
        np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2, 0.5 * (np.abs(x - y) - 0.25)).mean()),
    (nn.SmoothL1Loss(beta=0.5), lambda x, y: np.where(
        np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2 / 0.5, np.abs(x - y) - 0.25).mean()),
    (nn.SmoothL1Loss(beta=0.0), lambda x, y: np.abs(x - y).mean()),
]


@pytest.mark.parametrize("loss,ref", REGRESSION, ids=[repr(m) for m, _ in REGRESSION])
def test_regression_losses(loss, ref):
    x, y = t64(X), t64(Y)
    np.testing.assert_allclose(loss(x, y).detach().numpy(), ref(X, Y), rtol=1e-12)
    assert gradcheck(loss, (x, y))


def test_cross_entropy_indices_value_and_grad():
    x = t64(X)
    t = cr.tensor([0, 2, 1, 2])
    ref = -log_softmax(X, 1)[np.arange(4), [0, 2, 1, 2]].mean()
    np.testing.assert_allclose(F.cross_entropy(x, t).item(), ref, rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, t), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_weight_ignore_smoothing(reduction, smoothing):
    x = t64(RNG.normal(size=(5, 4, 2)))  # (N, C, d1)
    t = cr.tensor([[0, 3], [1, -100], [2, 2], [3, 0], [-100, 1]])
    w = cr.tensor([0.5, 1.0, 2.0, 1.5], dtype=cr.float64)
    loss = nn.CrossEntropyLoss(weight=w, ignore_index=-100, reduction=reduction,
                               label_smoothing=smoothing)
    assert gradcheck(lambda a: loss(a, t), (x,))
    # reference: per-element smoothed target distribution
    lp = log_softmax(x.detach().numpy(), 1)
    tn = t.numpy()
    keep = tn != -100
    safe = np.where(keep, tn, 0)
    wn = w.numpy()
    nll = -np.take_along_axis(lp, safe[:, None], 1)[:, 0] * wn[safe] * keep
    smooth = -(lp * wn[None, :, None]).sum(1) * keep
    if reduction == "none":
        ref = (1 - smoothing) * nll + smoothing / 4 * smooth
    elif reduction == "sum":
        ref = (1 - smoothing) * nll.sum() + smoothing / 4 * smooth.sum()
    else:
        denom = (wn[safe] * keep).sum()
        ref = ((1 - smoothing) * nll.sum() + smoothing / 4 * smooth.sum()) / denom
    np.testing.assert_allclose(loss(x, t).detach().numpy(), ref, rtol=1e-10)


def test_cross_entropy_probabilities():
    x = t64(X)
    p = RNG.dirichlet(np.ones(3), size=4)
    target = t64(p)
    ref = -(p * log_softmax(X, 1)).sum(1).mean()
    np.testing.assert_allclose(F.cross_entropy(x, target).item(), ref, rtol=1e-12)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), (x, target))


def test_cross_entropy_single_sample_and_stable_extremes():
    x = cr.tensor([1000.0, -1000.0, 0.0], requires_grad=True)
    loss = F.cross_entropy(x, cr.tensor(1))
    assert loss.item() == pytest.approx(2000.0)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, 0.0], atol=1e-6)
    y = cr.tensor([[1000.0, -1000.0]], requires_grad=True)
    assert F.cross_entropy(y, cr.tensor([0])).item() == 0.0


def test_cross_entropy_all_ignored_is_nan():
    out = F.cross_entropy(cr.zeros(2, 3), cr.tensor([-100, -100]))
    assert np.isnan(out.item())


def test_nll_loss_matches_pick():
    lp = t64(log_softmax(X, 1))
    t = cr.tensor([2, 0, 1, 1])
    np.testing.assert_allclose(nn.NLLLoss()(lp, t).item(),
                               -lp.detach().numpy()[np.arange(4), [2, 0, 1, 1]].mean())
    assert gradcheck(lambda a: F.nll_loss(a, t, reduction="sum"), (lp,))
    w = cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64)
    assert gradcheck(lambda a: F.nll_loss(a, t, weight=w), (lp,))


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_class_index_out_of_range(fn):
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        fn(cr.zeros(2, 3), cr.tensor([0, 3]))
    with pytest.raises(IndexError, match="target -2 is out of bounds"):
        fn(cr.zeros(2, 3), cr.tensor([-2, 0]))


def test_class_target_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"expected target of shape \(2,\)"):
        F.cross_entropy(cr.zeros(2, 3), cr.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="int64"):
        F.nll_loss(cr.zeros(2, 3), cr.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.cross_entropy(cr.zeros(2, 3), cr.tensor([0, 1]), weight=cr.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(cr.zeros(2), cr.zeros(2), reduction="avg")


def test_bce_value_grad_and_clamp():
    x, y = t64(P), t64(T01)
    ref = -(T01 * np.log(P) + (1 - T01) * np.log(1 - P)).mean()
    np.testing.assert_allclose(nn.BCELoss()(x, y).item(), ref, rtol=1e-12)
    assert gradcheck(nn.BCELoss(), (x, y))
    w = t64(RNG.uniform(size=3), grad=False)
    assert gradcheck(nn.BCELoss(weight=w, reduction="sum"), (x, y))
    edge = F.binary_cross_entropy(cr.tensor([0.0, 1.0]), cr.tensor([1.0, 0.0]),
                                  reduction="none")
    np.testing.assert_array_equal(edge.numpy(), [100.0, 100.0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(cr.tensor([1.5]), cr.tensor([1.0]))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(cr.tensor([0.5]), cr.tensor([1.0, 0.0]))


def test_bce_with_logits_value_grad_pos_weight():
    x, y = t64(X), t64(T01)
    pw = t64([0.5, 2.0, 3.0], grad=False)
    sig = 1 / (1 + np.exp(-X))
    ref = -(pw.numpy() * T01 * np.log(sig) + (1 - T01) * np.log(1 - sig)).mean()
    loss = nn.BCEWithLogitsLoss(pos_weight=pw)
    np.testing.assert_allclose(loss(x, y).item(), ref, rtol=1e-10)
    assert gradcheck(loss, (x, y))
    assert list(loss.state_dict()) == ["pos_weight"]


def test_bce_with_logits_stable_at_1000():
    x = cr.tensor([1000.0, -1000.0, 1000.0, -1000.0], requires_grad=True)
    y = cr.tensor([1.0, 0.0, 0.0, 1.0])
    out = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(out.detach().numpy(), [0.0, 0.0, 1000.0, 1000.0])
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0])


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
def test_kl_div(log_target, reduction):
    p = RNG.dirichlet(np.ones(3), size=4)
    q = RNG.dirichlet(np.ones(3), size=4)
    inp = t64(np.log(p))
    tgt = t64(np.log(q) if log_target else q)
    loss = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    el = q * (np.log(q) - np.log(p))
    ref = {"batchmean": el.sum() / 4, "sum": el.sum(), "mean": el.mean(), "none": el}
    np.testing.assert_allclose(loss(inp, tgt).detach().numpy(), ref[reduction], rtol=1e-10)
    assert gradcheck(loss, (inp, tgt))


def test_kl_div_zero_target_is_finite():
    out = F.kl_div(cr.tensor([[-1.0, -2.0]]), cr.tensor([[0.0, 1.0]]), reduction="sum")
    assert out.item() == pytest.approx(2.0)


def test_other_losses_gradcheck():
    a, b = t64(X), t64(Y)
    s = cr.tensor(np.sign(RNG.normal(size=(4, 3))))
    s1 = cr.tensor(np.sign(RNG.normal(size=4)))
    var = t64(RNG.uniform(0.5, 2, size=(4, 3)))
    assert gradcheck(lambda x: F.soft_margin_loss(x, s), (a,))
    assert gradcheck(lambda x: F.hinge_embedding_loss(x, s), (a,))
    assert gradcheck(lambda x, y: F.cosine_embedding_loss(x, y, s1), (a, b))
    assert gradcheck(lambda x, y: F.margin_ranking_loss(x, y, s, margin=0.1), (a, b))
    assert gradcheck(lambda x: F.poisson_nll_loss(x, cr.tensor(np.abs(Y))), (a,))
    assert gradcheck(lambda x, v: F.gaussian_nll_loss(x, b, v), (a, var))
    c = t64(RNG.normal(size=(4, 3)))
    assert gradcheck(lambda x, y, z: F.triplet_margin_loss(x, y, z, swap=True), (a, b, c))
    tl = cr.tensor((RNG.uniform(size=(4, 3)) > 0.5) * 1.0, dtype=cr.float64)
    assert gradcheck(lambda x: F.multilabel_soft_margin_loss(x, tl), (a,))
    y = cr.tensor([0, 2, 1, 2])
    assert gradcheck(lambda x: nn.MultiMarginLoss(p=2, margin=0.5)(x, y), (a,))


def test_multi_margin_value():
    x = cr.tensor([0.1, 0.2, 0.4, 0.8])
    # PyTorch's documented example: (1-0.8+0.1 + 1-0.8+0.2 + 1-0.8+0.4) / 4
    assert F.multi_margin_loss(x, cr.tensor(3)).item() == pytest.approx(0.325)
    with pytest.raises(IndexError, match="out of bounds"):
        F.multi_margin_loss(cr.zeros(2, 3), cr.tensor([0, 3]))


def test_loss_modules_state_dict_keys():
    w = cr.ones(3)
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.NLLLoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.BCELoss(weight=w).state_dict()) == ["weight"]
    assert nn.CrossEntropyLoss().state_dict() == {}
    assert nn.MSELoss().state_dict() == {}


def test_legacy_reduction_arguments():
    x, y = cr.tensor([1.0, 3.0]), cr.tensor([0.0, 0.0])
    assert F.mse_loss(x, y, size_average=False).item() == 10.0
    assert F.mse_loss(x, y, reduce=False).shape == (2,)


def test_broadcast_target_warns():
    with pytest.warns(UserWarning, match="target size"):
        F.mse_loss(cr.zeros(2, 3), cr.zeros(3))


def test_against_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(6, 5, 2)) * 5
    t = RNG.integers(0, 5, size=(6, 2))
    t[0, 1] = -100
    w = RNG.uniform(0.5, 2, size=5)
    ours = F.cross_entropy(cr.tensor(x), cr.tensor(t), weight=cr.tensor(w),
                           label_smoothing=0.15)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t),
                                               weight=torch.tensor(w), label_smoothing=0.15)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-10)
