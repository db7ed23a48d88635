"""Embedding and one_hot."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck

F = nn.functional


def test_state_dict_matches_pytorch():
    sd = nn.Embedding(10, 3).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {"weight": (10, 3)}


def test_default_init_is_standard_normal():
    cr.manual_seed(0)
    w = nn.Embedding(500, 40).weight.detach().numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


def test_lookup_and_gradient_accumulates_repeats():
    m = nn.Embedding(5, 2)
    idx = cr.tensor([[0, 2], [2, 4]])
    out = m(idx)
    assert out.shape == (2, 2, 2)
    np.testing.assert_array_equal(out.detach().numpy(), m.weight.detach().numpy()[idx.numpy()])
    out.sum().backward()
    np.testing.assert_array_equal(m.weight.grad.numpy()[:, 0], [1, 0, 2, 0, 1])


def test_gradcheck():
    m = nn.Embedding(4, 3).double()
    idx = cr.tensor([1, 3, 1])
    assert gradcheck(lambda w: m(idx) * 2, (m.weight,))


def test_padding_idx_zero_init_and_no_grad():
    m = nn.Embedding(5, 3, padding_idx=1)
    np.testing.assert_array_equal(m.weight.detach().numpy()[1], np.zeros(3))
    with cr.no_grad():
        m.weight[1] = cr.ones(3)  # the forward still returns the row as it is
    out = m(cr.tensor([1, 2, 1]))
    np.testing.assert_array_equal(out.detach().numpy()[0], np.ones(3))
    out.sum().backward()
    np.testing.assert_array_equal(m.weight.grad.numpy()[1], np.zeros(3))
    np.testing.assert_array_equal(m.weight.grad.numpy()[2], np.ones(3))
    assert nn.Embedding(5, 3, padding_idx=-1).padding_idx == 4


def test_padding_idx_gradcheck():
    # the padding row's zero gradient is by definition, not the derivative: check the rest
    m = nn.Embedding(4, 2, padding_idx=0).double()
    idx = cr.tensor([1, 2, 1, 3])
    assert gradcheck(lambda w: m(idx), (m.weight,))


def test_scale_grad_by_freq():
    m = nn.Embedding(4, 2, scale_grad_by_freq=True)
    out = m(cr.tensor([1, 1, 1, 2]))
    np.testing.assert_array_equal(out.detach().numpy()[0], m.weight.detach().numpy()[1])
    out.sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy()[:, 0], [0, 1, 1, 0])


def test_max_norm_renormalises_looked_up_rows():
    m = nn.Embedding(3, 2, max_norm=1.0)
    with cr.no_grad():
        m.weight.copy_(cr.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
    m(cr.tensor([0, 1]))
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(w[0]), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w[1], [0.3, 0.4])
    np.testing.assert_allclose(w[2], [6.0, 8.0])  # not looked up: untouched


def test_out_of_range_and_bad_dtype():
    m = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match="index 4 is out of range for 4 embeddings"):
        m(cr.tensor([0, 4]))
    with pytest.raises(IndexError, match="index -1"):
        m(cr.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        m(cr.tensor([0.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


def test_from_pretrained():
    w = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    m = nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad
    np.testing.assert_array_equal(m(cr.tensor([1])).numpy(), [[3.0, 4.0]])
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad


def test_one_hot():
    out = F.one_hot(cr.tensor([0, 2, 1]), 4)
    assert out.dtype == cr.int64
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert F.one_hot(cr.tensor([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(IndexError, match="one_hot"):
        F.one_hot(cr.tensor([5]), 3)


def test_repr():
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
