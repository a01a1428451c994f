"""Views: subvector / slicing, submatrix, row, col, as_vector -- sharing memory, never copying."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close, ref_mv

import clnn


def _mat(rt, rng, shape, layout, dtype):
    h = rng.standard_normal(shape).astype(dtype)
    return h, rt.matrix(h, layout=layout)


@pytest.mark.parametrize("n", [1, 3, 17, 301])
def test_subvector_and_slices(rt, dtype, n, rng):
    h = rng.standard_normal(n).astype(dtype)
    with rt.vector(h) as v:
        allocs = rt.allocations
        for off, cnt, st in [(0, n, 1), (n - 1, 1, 1), (0, (n + 1) // 2, 2), (n // 3, 1, 5)]:
            s = v.subvector(off, cnt, st)
            assert s.is_view and s.base is v and s.shape == (cnt,)
            np.testing.assert_array_equal(s.to_numpy(), h[off:off + (cnt - 1) * st + 1:st])
        for key in [slice(None), slice(1, None), slice(None, None, 3), slice(-2, None),
                    slice(0, n, 7)]:
            if len(h[key]) == 0:
                continue
            np.testing.assert_array_equal(v[key].to_numpy(), h[key])
        # a view of a strided view is strided again
        if n >= 17:
            vv = v[1::2][2::3]
            assert vv.stride == 6 and vv.offset == 5
            np.testing.assert_array_equal(vv.to_numpy(), h[1::2][2::3])
        assert rt.allocations == allocs  # views allocate nothing


def test_write_through_vector_view(rt, dtype):
    with rt.vector(np.arange(10, dtype=dtype)) as v:
        v[1::3].set([-1, -2, -3])
        np.testing.assert_array_equal(v.to_numpy(), [0, -1, 2, 3, -2, 5, 6, -3, 8, 9])
        v.subvector(8, 2).set([100, 200])
        assert v.to_numpy()[-2:].tolist() == [100, 200]


@pytest.mark.parametrize("layout", ["row", "col"])
def test_submatrix_row_col(rt, dtype, layout, rng):
    h, a = _mat(rt, rng, (17, 13), layout, dtype)
    with a:
        s = a.submatrix(2, 3, 10, 7)
        assert s.layout == layout and s.ld == a.ld and not s.contiguous
        np.testing.assert_array_equal(s.to_numpy(), h[2:12, 3:10])
        np.testing.assert_array_equal(a[2:12, 3:10].to_numpy(), h[2:12, 3:10])
        np.testing.assert_array_equal(s.T.to_numpy(), h[2:12, 3:10].T)
        for i in (0, 5, 16):
            r = a.row(i)
            assert r.stride == (1 if layout == "row" else a.ld)
            np.testing.assert_array_equal(r.to_numpy(), h[i])
            np.testing.assert_array_equal(a[i, :].to_numpy(), h[i])
        for j in (0, 12):
            c = a.col(j)
            assert c.stride == (1 if layout == "col" else a.ld)
            np.testing.assert_array_equal(c.to_numpy(), h[:, j])
            np.testing.assert_array_equal(a[1::2, j].to_numpy(), h[1::2, j])
        np.testing.assert_array_equal(a[-1, 2:5].to_numpy(), h[-1, 2:5])
        # views of views: a row of a submatrix, a column of a transposed submatrix
        np.testing.assert_array_equal(s.row(4).to_numpy(), h[6, 3:10])
        np.testing.assert_array_equal(s.T.col(4).to_numpy(), h[6, 3:10])
        np.testing.assert_array_equal(s.submatrix(1, 1, 2, 2).to_numpy(), h[3:5, 4:6])
        flat = a.as_vector()
        order = "C" if layout == "row" else "F"
        np.testing.assert_array_equal(flat.to_numpy(), h.ravel(order=order))
        with pytest.raises(clnn.ShapeError, match="contiguous"):
            s.as_vector()


@pytest.mark.parametrize("layout", ["row", "col"])
def test_write_through_matrix_views(rt, layout):
    with rt.matrix(np.zeros((4, 5)), layout=layout) as a:
        a.submatrix(1, 1, 2, 3).set(np.ones((2, 3)))
        a.row(3).set(np.arange(5))
        a.col(0).set([9, 9, 9, 9])
        want = np.zeros((4, 5))
        want[1:3, 1:4] = 1
        want[3] = np.arange(5)
        want[:, 0] = 9
        np.testing.assert_array_equal(a.to_numpy(), want)


def test_views_out_of_range(rt):
    with rt.vector(10) as v, rt.matrix((4, 5)) as a:
        bad_v = [lambda: v.subvector(8, 3), lambda: v.subvector(-1, 2),
                 lambda: v.subvector(0, 0), lambda: v.subvector(0, 4, stride=4),
                 lambda: v.subvector(0, 2, stride=0), lambda: v[5:2], lambda: v[::-1],
                 lambda: v.subvector(1.5, 2)]
        bad_a = [lambda: a.submatrix(0, 0, 5, 1), lambda: a.submatrix(3, 4, 1, 2),
                 lambda: a.submatrix(-1, 0, 1, 1), lambda: a.submatrix(0, 0, 0, 1),
                 lambda: a.row(4), lambda: a.col(5), lambda: a.row(-1),
                 lambda: a[0:2, ::2], lambda: a[9, :]]
        for f in bad_v + bad_a:
            with pytest.raises(clnn.ShapeError):
                f()
        with pytest.raises(clnn.OperandError):
            v[3]
        with pytest.raises(clnn.OperandError):
            a[1]


def test_view_of_released_is_released(rt):
    v = rt.vector(10)
    a = rt.matrix((3, 3))
    sv, sa, r = v[2:5], a.submatrix(1, 1, 2, 2), a.row(0)
    v.release()
    a.release()
    for x in (sv, sa, r):
        assert x.released
        with pytest.raises(clnn.ReleasedError):
            x.to_numpy()
    with pytest.raises(clnn.ReleasedError):
        v.subvector(0, 2)
    with pytest.raises(clnn.ReleasedError):
        a.col(0)
    with pytest.raises(clnn.ReleasedError):
        clnn.sum(sa, axis=0)


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
def test_mv_on_views(rt, dtype, layout, trans, rng):
    """gemv takes views as they are: submatrices (offset, ld), strided x and y."""
    h, a = _mat(rt, rng, (40, 33), layout, dtype)
    hx = rng.standard_normal(80).astype(dtype)
    hy = rng.standard_normal(90).astype(dtype)
    with a, rt.vector(hx) as x, rt.vector(hy) as y:
        s = a.submatrix(3, 5, 17, 11)
        hs = h[3:20, 5:16]
        if trans:
            s, hs = s.T, hs.T
        xv = x[1::80 // hs.shape[1]][:hs.shape[1]]
        hxv = hx[1::80 // hs.shape[1]][:hs.shape[1]]
        yv = y.subvector(2, hs.shape[0], stride=3)
        clnn.mv(s, xv, out=yv, alpha=2.0, beta=0.5)
        want, scale = hy.astype(np.float64), np.abs(hy.astype(np.float64))
        sl = slice(2, 2 + 3 * (hs.shape[0] - 1) + 1, 3)
        want[sl], scale[sl] = ref_mv(hs, hxv, 2.0, hy[sl], 0.5)
        assert_close(y.to_numpy(), want, dtype, k=hs.shape[1], scale=scale)
        # a row / column view as the x operand
        got = clnn.mv(a.submatrix(0, 0, 33, 33) if layout == "row" else a.T.submatrix(0, 0, 33,
                      33), a.col(0)[:33]).to_numpy()
        m = h[:33, :33] if layout == "row" else h.T[:33, :33]
        assert_close(got, ref_mv(m, h[:33, 0]), dtype, k=33)

