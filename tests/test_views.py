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
        for f in (lambda: v[10], lambda: v[-11], lambda: a[4], lambda: a[0, 5], lambda: a[-5, 0]):
            with pytest.raises(clnn.ShapeError, match="out of range"):
                f()
        for f in (lambda: v[[1, 2]], lambda: v[1.0], lambda: v[True], lambda: a[1, 2, 3],
                  lambda: a[np.array([0, 1])]):
            with pytest.raises(clnn.OperandError):
                f()


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



# ---- element access and assignment through views (clnn/operators.py) -------------------------
class _Reads:
    """Counts device-to-host reads (``transfer.read``) while active."""

    def __init__(self, monkeypatch):
        import clnn.transfer as transfer

        self.count = 0
        real = transfer.read

        def counted(*args, **kw):
            self.count += 1
            return real(*args, **kw)
        monkeypatch.setattr(transfer, "read", counted)


@pytest.mark.parametrize("n", [1, 3, 17, 301])
def test_vector_elements_and_iteration(rt, dtype, n, rng, monkeypatch):
    h = rng.standard_normal(n).astype(dtype)
    with rt.vector(h) as v:
        for i in {0, n - 1, -1, -n, n // 2}:
            got = v[i]
            assert type(got) is float and got == float(h[i])
        assert v[(n - 1,)] == float(h[-1])
        if n >= 3:
            assert v[1::2][-1] == float(h[1::2][-1])  # an element of a strided view
        reads = _Reads(monkeypatch)
        assert list(v) == h.tolist() and [x for x in v] == h.tolist()
        assert reads.count == 2  # one read per iteration, not one per element
        assert v[...].shape == (n,) and v[...].base is v


@pytest.mark.parametrize("layout", ["row", "col"])
def test_matrix_elements_and_iteration(rt, dtype, layout, rng):
    h, a = _mat(rt, rng, (5, 7), layout, dtype)
    with a:
        for i, j in [(0, 0), (4, 6), (-1, -1), (2, -7), (-5, 3)]:
            assert a[i, j] == float(h[i, j]) and a.T[j, i] == float(h[i, j])
        assert a[1:4, 2:6][-1, 0] == float(h[3, 2])
        np.testing.assert_array_equal(a[2].to_numpy(), h[2])  # a[i] is row i, as numpy
        np.testing.assert_array_equal(a[-1].to_numpy(), h[-1])
        np.testing.assert_array_equal(a[1:3].to_numpy(), h[1:3])
        np.testing.assert_array_equal(a[..., 3].to_numpy(), h[:, 3])
        rows = list(a)  # row views, as numpy iterates over the first axis
        assert len(rows) == 5 and all(r.is_view and r.base is a for r in rows)
        np.testing.assert_array_equal(np.array([r.to_numpy() for r in rows]), h)
        assert [list(r) for r in a.T] == h.T.tolist()


def test_vector_assignment(rt, dtype):
    h = np.arange(12, dtype=np.float64)
    with rt.vector(h.astype(dtype)) as v, rt.vector(np.full(4, -5, dtype)) as w:
        allocs = rt.allocations
        v[0] = 100
        v[-1] = np.float32(-1.5)
        v[2:5] = 7  # one fill launch
        v[5:9] = w  # one copy launch
        v[1::5] = [10, 20, 30]
        v[9:11] += 1  # read the view, add in place, set the view to itself
        v[9:11] *= w[:2]
        assert rt.allocations == allocs
        h[0], h[-1], h[2:5], h[5:9], h[1::5] = 100, -1.5, 7, -5, [10, 20, 30]
        h[9:11] = (h[9:11] + 1) * -5
        np.testing.assert_array_equal(v.to_numpy(), h)
        v[3:7] = np.arange(4.0)  # numpy data, and broadcasting from host data
        v[7:9] = np.array([2.5])
        h[3:7], h[7:9] = np.arange(4.0), 2.5
        np.testing.assert_array_equal(v.to_numpy(), h)
        v[1:] = v[:-1]  # overlapping: numpy's answer (the source is read first)
        h[1:] = h[:-1].copy()
        np.testing.assert_array_equal(v.to_numpy(), h)
        v[...] = 0
        assert not v.to_numpy().any()


@pytest.mark.parametrize("layout", ["row", "col"])
def test_matrix_assignment(rt, dtype, layout, rng):
    h, a = _mat(rt, rng, (5, 7), layout, dtype)
    h = h.astype(np.float64)
    other_layout = "col" if layout == "row" else "row"
    hb = rng.standard_normal((2, 3)).astype(dtype)
    with a, rt.matrix(hb, layout=other_layout) as b, rt.vector(np.arange(7, dtype=dtype)) as r:
        allocs = rt.allocations
        a[1:3, :] = 0
        a[0, 0] = -1
        a[-1, -1] = 42
        a[3] = r  # a vector into a row
        a[:, 6] = 9  # a strided column in "row" layout
        a[2:4, 1:4] = b  # another layout: transposed on the way
        a[0:2] = r  # a vector of length n fills every row, as numpy broadcasts
        a.T[5, 4] = 8  # through a transposed view
        assert rt.allocations == allocs
        h[1:3, :], h[0, 0], h[-1, -1], h[3] = 0, -1, 42, np.arange(7)
        h[:, 6], h[2:4, 1:4], h[0:2], h[4, 5] = 9, hb, np.arange(7), 8
        np.testing.assert_array_equal(a.to_numpy(), h)
        a[4] = [1, 2, 3, 4, 5, 6, 7]
        a[1:3, 2:4] = np.ones((2, 2))
        a[:, 0] = np.arange(5.0)
        a[2:5, 4:6] = [7.0, 8.0]  # host data broadcast over rows
        h[4], h[1:3, 2:4], h[:, 0], h[2:5, 4:6] = np.arange(1, 8), 1, np.arange(5), [7, 8]
        np.testing.assert_array_equal(a.to_numpy(), h)
        a[...] = 3
        assert (a.to_numpy() == 3).all()


def test_assignment_refused_before_writing(rt, dtype):
    with rt.vector(np.zeros(6, dtype)) as v, rt.matrix(np.zeros((3, 4), dtype)) as a:
        cases = [
            (lambda: v.__setitem__(0, "a"), clnn.DTypeError),
            (lambda: v.__setitem__(0, [1, 2]), clnn.OperandError),
            (lambda: v.__setitem__(0, 1j), clnn.DTypeError),
            (lambda: v.__setitem__(slice(0, 2), 1e300 if dtype == np.float32 else "x"),
             clnn.DTypeError),  # a value the dtype cannot hold, as for host data
            (lambda: v.__setitem__(6, 1), clnn.ShapeError),
            (lambda: v.__setitem__(slice(0, 3), [1, 2]), clnn.ShapeError),
            (lambda: v.__setitem__(slice(0, 3), ["a", "b", "c"]), clnn.DTypeError),
            (lambda: v.__setitem__(slice(0, 3), v[3:5]), clnn.ShapeError),
            (lambda: v.__setitem__(slice(None, None, -1), 1), clnn.ShapeError),
            (lambda: v.__setitem__(slice(0, 4), a), clnn.ShapeError),
            (lambda: v.__setitem__([0, 1], 1), clnn.OperandError),
            (lambda: a.__setitem__((slice(0, 2), slice(None)), np.ones((3, 4))),
             clnn.ShapeError),
            (lambda: a.__setitem__(slice(0, 2), rt.vector(np.ones(3, dtype))),
             clnn.ShapeError),
            (lambda: a.__setitem__((0, 4), 1), clnn.ShapeError),
            (lambda: a.__setitem__((slice(None, None, 2), slice(None)), 1), clnn.ShapeError),
        ]
        if rt.device.fp64:
            other = np.float64 if dtype == np.float32 else np.float32
            cases.append((lambda: a.__setitem__(0, rt.vector(np.ones(4, other))),
                          clnn.DTypeError))
        for f, err in cases:
            with pytest.raises(err):
                f()
        assert not v.to_numpy().any() and not a.to_numpy().any()
