"""Dropout layers: train/eval behaviour, scaling, statistics, gradients."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck

F = nn.functional


def test_eval_is_identity_and_train_masks():
    m = nn.Dropout(0.5)
    x = cr.ones(1000)
    y = m(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 400 < (y == 0).sum() < 600
    m.eval()
    assert m(x) is x


def test_dropout_keeps_expectation():
    cr.manual_seed(0)
    y = F.dropout(cr.ones(20000), p=0.3).numpy()
    assert abs(y.mean() - 1.0) < 0.03
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)


def test_dropout_edges():
    x = cr.randn(5)
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(5))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(x, bad)


def test_dropout_gradcheck_train_and_eval():
    x = cr.randn(4, 3, dtype=cr.float64, requires_grad=True)
    m = nn.Dropout(0.4)
    g = cr.Generator().manual_seed(5)
    # a fixed mask: same generator state for every evaluation
    state = g.get_state()

    def f(t):
        g.set_state(state)
        return F.dropout(t, 0.4, True, generator=g)

    assert gradcheck(f, (x,))
    m.eval()
    assert gradcheck(m, (x,))


def test_dropout_seeded():
    a = F.dropout(cr.ones(50), generator=cr.Generator().manual_seed(1)).numpy()
    b = F.dropout(cr.ones(50), generator=cr.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls,shape", [(nn.Dropout1d, (4, 6, 5)), (nn.Dropout2d, (4, 6, 3, 3)),
                                       (nn.Dropout3d, (2, 6, 2, 2, 2))])
def test_channel_dropout_zeroes_whole_channels(cls, shape):
    y = cls(0.5)(cr.ones(*shape)).numpy()
    per_channel = y.reshape(shape[0], shape[1], -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    with pytest.raises(ValueError, match="dropout"):
        cls(0.5)(cr.ones(3))


def test_alpha_dropout_keeps_selu_statistics():
    cr.manual_seed(0)
    x = cr.randn(200000)
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    m = nn.AlphaDropout(0.2)
    m.eval()
    assert m(x) is x
    assert F.alpha_dropout(x, 0.2) is x  # training defaults to False in the function


def test_alpha_dropout_gradcheck():
    x = cr.randn(3, 4, dtype=cr.float64, requires_grad=True)
    g = cr.Generator().manual_seed(2)
    state = g.get_state()

    def f(t):
        g.set_state(state)
        return F.alpha_dropout(t, 0.3, True, generator=g)

    assert gradcheck(f, (x,))


def test_feature_alpha_dropout_shapes():
    y = nn.FeatureAlphaDropout(0.5)(cr.ones(2, 3, 4)).numpy()
    assert (y == y[..., :1]).all()


def test_repr():
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1, inplace=False)"


@pytest.mark.parametrize("cls", [nn.Dropout, nn.AlphaDropout, nn.Dropout1d,
                                 nn.FeatureAlphaDropout])
@pytest.mark.parametrize("training", [True, False])
def test_modules_gradcheck_in_both_modes(cls, training):
    m = cls(0.3).double().train(training)
    x = cr.randn(2, 3, 4, dtype=cr.float64, requires_grad=True)

    def f(t):
        cr.manual_seed(11)  # the same mask at every evaluation
        return m(t)

    assert gradcheck(f, (x,))
    if training:
        cr.manual_seed(11)
        y = m(x).detach().numpy()
        assert not np.allclose(y, x.detach().numpy())
