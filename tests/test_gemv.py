import numpy as np
import pytest
from tolerances import assert_close

import clnn

SIDES = [1, 3, 17, 301, 1023]
SHAPES = [(m, n) for m in SIDES for n in SIDES if m * n <= 301 * 1023] + [
    (10007, 1), (1, 10007), (10007, 3), (3, 10007), (17, 10007)]


def _ref(A, x, y, alpha, beta):
    return alpha * (A.astype(np.float64) @ x.astype(np.float64)) + beta * y


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
def test_mv_matches_numpy(rt, dtype, shape, layout, trans, rng):
    A = rng.standard_normal(shape).astype(dtype)
    a = rt.matrix(A, layout=layout)
    op = a.T if trans else a
    opA = A.T if trans else A
    x = rng.standard_normal(opA.shape[1]).astype(dtype)
    xv = rt.vector(x)
    y = clnn.mv(op, xv)
    assert y.shape == (opA.shape[0],) and y.dtype == dtype
    scale = np.abs(opA.astype(np.float64)) @ np.abs(x.astype(np.float64))
    assert_close(y.to_numpy(), _ref(opA, x, 0, 1, 0), dtype, k=opA.shape[1], scale=scale)
    for b in (a, xv, y):
        b.release()


@pytest.mark.parametrize("alpha,beta", [(1, 0), (2.5, 0), (0.5, 1), (-1, -2), (0, 3)])
@pytest.mark.parametrize("layout", ["row", "col"])
def test_alpha_beta(rt, dtype, alpha, beta, layout, rng):
    A = rng.standard_normal((37, 29)).astype(dtype)
    x = rng.standard_normal(29).astype(dtype)
    y0 = rng.standard_normal(37).astype(dtype)
    a, xv, yv = rt.matrix(A, layout=layout), rt.vector(x), rt.vector(y0)
    res = clnn.mv(a, xv, out=yv, alpha=alpha, beta=beta)
    assert res is yv
    scale = abs(alpha) * (np.abs(A) @ np.abs(x)) + abs(beta) * np.abs(y0) + 1e-30
    assert_close(yv.to_numpy(), _ref(A, x, y0, alpha, beta), dtype, k=29, scale=scale)


@pytest.mark.parametrize("layout", ["row", "col"])
def test_beta_zero_never_reads_out(rt, dtype, layout):
    A = np.ones((5, 4), dtype)
    y = rt.vector(np.full(5, np.nan, dtype))
    clnn.mv(rt.matrix(A, layout=layout), rt.vector(np.ones(4, dtype)), out=y)
    np.testing.assert_array_equal(y.to_numpy(), np.full(5, 4.0))
    y.set(np.full(5, np.inf, dtype))
    clnn.mv(rt.matrix(A, layout=layout).T, rt.vector(np.ones(5, dtype)), out=rt.vector(4))\
        if dtype == np.float32 else None


def test_out_allocates_nothing(rt):
    a, x, y = rt.matrix((8, 8)), rt.vector(8), rt.vector(8)
    before = rt.allocations
    for _ in range(5):
        clnn.mv(a, x, out=y)
    assert rt.allocations == before
    clnn.mv(a, x)
    assert rt.allocations == before + 1


def test_issue_example(rt):
    x = rt.vector([0.3, 0.9])
    w1 = rt.matrix([[0.3, 0.6], [0.1, 2.0], [0.9, 3.7], [0.0, 1.0]])
    h1 = rt.vector(4)
    w2 = rt.matrix([[0.75, 0.15, 0.22, 0.33]])
    y = rt.vector(1)
    assert clnn.mv(w2, clnn.mv(w1, x, out=h1), out=y) is y
    np.testing.assert_allclose(h1.to_numpy(), [0.63, 1.83, 3.6, 0.9], rtol=1e-6)
    np.testing.assert_allclose(y.to_numpy(), [1.836], rtol=1e-6)


def _unchanged(rt, y, before):
    np.testing.assert_array_equal(y.to_numpy(), before)


def test_bad_shapes_leave_out_untouched(rt):
    a, x = rt.matrix(np.ones((4, 3), np.float32)), rt.vector(np.ones(3, np.float32))
    y = rt.vector(np.arange(4, dtype=np.float32))
    before = y.to_numpy()
    with pytest.raises(clnn.ShapeError, match="length 2"):
        clnn.mv(a, rt.vector([1, 2]), out=y)
    with pytest.raises(ValueError):
        clnn.mv(a, x, out=rt.vector(5))
    with pytest.raises(clnn.ShapeError):
        clnn.mv(a.T, x, out=y)
    with pytest.raises(clnn.ShapeError, match="Matrix"):
        clnn.mv(x, x, out=y)
    with pytest.raises(clnn.OperandError):
        clnn.mv(np.ones((4, 3)), x, out=y)
    with pytest.raises(TypeError):
        clnn.mv(a, [1, 2, 3], out=y)
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, alpha="two")
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, beta=1j)
    _unchanged(rt, y, before)


def test_out_overlapping_input_is_refused(rt):
    a = rt.matrix(np.eye(3, dtype=np.float32))
    x = rt.vector([1, 2, 3])
    with pytest.raises(clnn.ShapeError, match="shares memory"):
        clnn.mv(a, x, out=x)
    np.testing.assert_array_equal(x.to_numpy(), [1, 2, 3])


def test_mixed_dtypes(rt):
    if not rt.device.fp64:
        pytest.skip(f"device {rt.device.name!r} lacks fp64; no second dtype to mix")
    a = rt.matrix(np.ones((2, 2), np.float64))
    y = rt.vector(np.zeros(2, np.float32))
    with pytest.raises(clnn.DTypeError, match="mixed"):
        clnn.mv(a, rt.vector(np.ones(2, np.float32)), out=y)
    with pytest.raises(TypeError):
        clnn.mv(a, rt.vector(np.ones(2, np.float64)), out=y)
    np.testing.assert_array_equal(y.to_numpy(), [0, 0])


def test_two_runtimes_mixed(device, rt):
    with clnn.Runtime(device) as other:
        x = other.vector([1, 1])
        a = rt.matrix(np.ones((2, 2), np.float32))
        y = rt.vector([5, 6])
        with pytest.raises(clnn.RuntimeMismatchError, match="different runtimes"):
            clnn.mv(a, x, out=y)
        np.testing.assert_array_equal(y.to_numpy(), [5, 6])


def test_released_operands(rt):
    a, x, y = rt.matrix(np.ones((2, 2), np.float32)), rt.vector([1, 1]), rt.vector([7, 7])
    x.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mv(a, x, out=y)
    np.testing.assert_array_equal(y.to_numpy(), [7, 7])
    y.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mv(a, rt.vector([1, 1]), out=y)
