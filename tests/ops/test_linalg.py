"""matmul in every 1-d / 2-d / batched-broadcast combination, mm bmm mv dot outer, einsum."""

import numpy as np
import pytest

import chainrule as cr
from tests.helpers import check_op

MATMUL_SHAPES = [
    ((3,), (3,)),            # dot -> 0-d
    ((3,), (3, 2)),          # vector @ matrix
    ((2, 3), (3,)),          # matrix @ vector
    ((2, 3), (3, 4)),        # matrix @ matrix
    ((4, 2, 3), (3,)),       # batched @ vector
    ((3,), (4, 3, 2)),       # vector @ batched
    ((4, 2, 3), (4, 3, 2)),  # batched, equal batch
    ((4, 2, 3), (3, 2)),     # batched @ matrix (broadcast)
    ((2, 3), (4, 3, 2)),     # matrix @ batched
    ((2, 1, 2, 3), (4, 3, 1)),  # broadcast batch dims both ways
    ((0, 3), (3, 2)),        # zero-size rows
    ((2, 0), (0, 3)),        # zero inner dimension
    ((2, 3, 4, 3), (3, 2)),  # 4-d @ matrix: batch folded into one GEMM
    ((0, 2, 3), (3, 2)),     # folded, zero-size batch
    ((2, 2, 0), (0, 3)),     # folded, zero inner dimension
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
def test_matmul(shapes):
    check_op(cr.matmul, np.matmul, [shapes])
    check_op(lambda a, b: a @ b, np.matmul, [shapes], grad=False, gradgrad=False)
    check_op(lambda a, b: a.matmul(b), np.matmul, [shapes], grad=False, gradgrad=False)


def test_matmul_folded_noncontiguous():
    # a permuted (non-contiguous) batch operand takes the folded path through a copy
    check_op(lambda a, b: cr.matmul(a.permute(1, 0, 2), b),
             lambda a, b: np.matmul(a.transpose(1, 0, 2), b), [((3, 2, 4), (4, 5))])


def test_rmatmul_with_array():
    a = np.ones((2, 3))
    check_op(lambda b: a @ b, lambda b: a @ b, [(3, 2)])


def test_mm_bmm_mv_dot_outer():
    check_op(cr.mm, np.matmul, [((2, 3), (3, 4))])
    check_op(lambda a, b: a.mm(b), np.matmul, [((1, 3), (3, 1))])
    check_op(cr.bmm, np.matmul, [((2, 2, 3), (2, 3, 4))])
    check_op(cr.mv, np.matmul, [((2, 3), (3,))])
    check_op(cr.dot, np.dot, [((3,), (3,)), ((0,), (0,))])
    check_op(lambda a, b: a.inner(b), np.inner, [((3,), (3,))])
    check_op(cr.outer, np.outer, [((3,), (2,)), ((0,), (2,))])
    check_op(cr.ger, np.outer, [((1,), (2,))])


def test_addmm():
    check_op(lambda c, a, b: cr.addmm(c, a, b, beta=0.5, alpha=2.0),
             lambda c, a, b: 0.5 * c + 2.0 * a @ b, [((4,), (2, 3), (3, 4))])


EINSUMS = [
    ("ij,jk->ik", ((2, 3), (3, 4))),
    ("ij,jk", ((2, 3), (3, 4))),             # implicit output
    ("bij,bjk->bik", ((2, 2, 3), (2, 3, 4))),
    ("i,i->", ((3,), (3,))),
    ("i,j->ij", ((3,), (2,))),
    ("ij->ji", ((2, 3),)),
    ("ij->j", ((2, 3),)),                    # a summed-only index
    ("ij,jk->i", ((2, 3), (3, 4))),          # j contracted, k summed in one operand
    ("ijk,jk->", ((2, 3, 4), (3, 4))),
    ("...ij,...jk->...ik", ((2, 2, 3), (2, 3, 4))),
    ("...ij,jk->...ik", ((5, 2, 3), (3, 4))),
    ("...i,...i->...", ((2, 3), (3,))),      # '...' broadcasting against fewer dims
    ("i...->...", ((3, 2, 2),)),
    ("...ij,...jk->...ik", ((2, 1, 2, 3), (4, 3, 2))),  # '...' dims broadcast (1 vs 4)
    ("...i,...i", ((1, 3), (2, 3))),
    ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 2))),
    ("bi,bi->b", ((0, 3), (0, 3))),
]


@pytest.mark.parametrize("eq,shapes", EINSUMS)
def test_einsum(eq, shapes):
    check_op(lambda *xs: cr.einsum(eq, *xs), lambda *xs: np.einsum(eq, *xs), [shapes])


def test_einsum_list_operands_and_spaces():
    check_op(lambda a, b: cr.einsum("i j , j -> i", [a, b]), lambda a, b: a @ b,
             [((2, 3), (3,))])


def test_matmul_integers_and_mixed_vjp_shapes():
    a = cr.tensor([[1, 2], [3, 4]])
    assert (a @ a).tolist() == [[7, 10], [15, 22]]
    x = cr.randn(5, 2, 3, dtype=cr.float64, requires_grad=True)
    w = cr.randn(3, 4, dtype=cr.float64, requires_grad=True)
    (x @ w).sum().backward()
    assert x.grad.shape == (5, 2, 3) and w.grad.shape == (3, 4)
    np.testing.assert_allclose(w.grad.numpy(), x.detach().numpy().sum((0, 1))[:, None]
                               * np.ones((3, 4)))
