"""The API contract of DESIGN section 3: every listed op is a function and (where PyTorch
has it) a method, and both are aliases of the same implementation."""

import pytest

import chainrule as cr

OPS = ("add sub mul div pow neg matmul exp log sqrt abs sin cos tanh sigmoid relu clamp "
       "maximum minimum where sum mean max min amax amin argmax var std logsumexp softmax "
       "log_softmax reshape transpose permute expand squeeze unsqueeze flatten cat stack "
       "split chunk gather index_select masked_fill tril triu einsum cumsum").split()

NOT_METHODS = {"cat", "stack", "einsum", "where"}
CREATION = ("tensor from_numpy zeros ones full zeros_like ones_like full_like arange linspace "
            "eye rand randn randint manual_seed").split()


@pytest.mark.parametrize("name", OPS)
def test_op_is_public_function(name):
    assert callable(getattr(cr, name))
    assert getattr(cr, name).__doc__


@pytest.mark.parametrize("name", sorted(set(OPS) - NOT_METHODS))
def test_op_is_tensor_method(name):
    assert callable(getattr(cr.Tensor, name))


@pytest.mark.parametrize("name", CREATION)
def test_creation_function_exists(name):
    assert callable(getattr(cr, name))


def test_dtypes_and_autograd_names():
    for d in ("float16", "float32", "float64", "int64", "bool"):
        assert getattr(cr, d) is not None
    for n in ("grad", "backward", "Function", "gradcheck", "gradgradcheck",
              "detect_anomaly"):
        assert hasattr(cr.autograd, n)
    assert hasattr(cr.autograd.graph, "saved_tensors_hooks")
    for n in ("grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "hvp"):
        assert callable(getattr(cr.func, n))


def test_method_and_function_share_one_implementation():
    x = cr.randn(3, 4)
    assert cr.Tensor.exp is cr.exp
    assert cr.Tensor.__add__ is cr.ops.elementwise.add
    assert (x.sum(1) == cr.sum(x, 1)).all()
