"""Axis reductions (sum, max, argmax) vs numpy: shapes, layouts, views, NaN, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_sum

import clnn

SHAPES = [(1, 1), (3, 17), (17, 3), (301, 23), (5, 10007), (1023, 2)]


def _check(a, h, dtype, axis, out=None):
    h64 = h.astype(np.float64)
    s = clnn.sum(a, axis=axis, out=out)
    assert_close(s.to_numpy(), ref_sum(h64, axis=axis), dtype, k=1)
    m = clnn.max(a, axis=axis)
    np.testing.assert_array_equal(m.to_numpy(), h.max(axis=axis))
    i = clnn.argmax(a, axis=axis)
    np.testing.assert_array_equal(i.to_numpy(), np.argmax(h, axis=axis))
    for v in (s, m, i):
        if v is not out:
            v.release()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
def test_axis_reductions(rt, dtype, shape, layout, rng):
    h = rng.standard_normal(shape).astype(dtype)
    with rt.matrix(h, layout=layout) as a:
        for axis in (0, 1):
            _check(a, h, dtype, axis)
        _check(a.T, h.T, dtype, 1)


@pytest.mark.oclgrind
@pytest.mark.parametrize("layout", ["row", "col"])
def test_views_and_out(rt, dtype, layout, rng):
    h = rng.standard_normal((40, 50)).astype(dtype)
    with rt.matrix(h, layout=layout) as a, rt.vector(np.full(200, -9, dtype)) as buf:
        sub, hs = a.submatrix(3, 7, 31, 29), h[3:34, 7:36]
        for axis in (0, 1):
            _check(sub, hs, dtype, axis)
            _check(sub.T, hs.T, dtype, axis)
        # results into a strided view of a bigger vector: the rest is untouched
        out = buf.subvector(5, 29, 3)
        assert clnn.sum(sub, axis=0, out=out) is out
        clnn.argmax(sub, axis=1, out=buf.subvector(100, 31, 2))
        got = buf.to_numpy()
        want = np.full(200, -9.0)
        want[100:100 + 2 * 31:2] = np.argmax(hs, axis=1)
        scale = np.abs(want)  # -9 and the indices: exact
        want[5:5 + 3 * 29:3], scale[5:5 + 3 * 29:3] = ref_sum(hs, axis=0)
        assert_close(got, want, dtype, k=1, scale=scale)


def test_scalar_forms(rt, dtype, rng):
    h = rng.standard_normal((13, 11)).astype(dtype)
    with rt.matrix(h, layout="col") as a, rt.vector(h[:, 0].copy()) as v:
        assert_close(clnn.sum(a), ref_sum(h), dtype)
        assert clnn.max(a) == h.max()
        sub = a.submatrix(1, 1, 10, 9)  # not contiguous: reduced per row, then the rows
        assert_close(clnn.sum(sub), ref_sum(h[1:11, 1:10]), dtype)
        assert clnn.max(sub) == h[1:11, 1:10].max()
        i = clnn.argmax(v)
        assert isinstance(i, int) and i == int(np.argmax(h[:, 0]))
        assert clnn.argmax(a.row(4)) == int(np.argmax(h[4]))
        assert clnn.argmax(v, axis=None) == i
        with rt.vector(1, dtype=dtype) as o:
            clnn.argmax(v, out=o)
            assert o.to_numpy()[0] == i


def test_nan_and_ties(rt):
    nan, inf = np.nan, np.inf
    h = np.array([[1, nan, 3, nan], [2, 5, 5, 1], [-inf, -inf, -inf, -inf],
                  [7, 7, 7, 7]], np.float32)
    with rt.matrix(h) as a, rt.matrix(h, layout="col") as c:
        for m in (a, c):
            for axis in (0, 1):
                np.testing.assert_array_equal(clnn.max(m, axis=axis).to_numpy(),
                                              h.max(axis=axis))
                np.testing.assert_array_equal(clnn.argmax(m, axis=axis).to_numpy(),
                                              np.argmax(h, axis=axis))
    with rt.vector(np.array([1, nan, 3, nan], np.float32)) as v:
        assert np.isnan(clnn.max(v)) and clnn.argmax(v) == 1


def test_long_rows_accuracy(rt, rng):
    """float32 rows of 10^5 terms: compensated sums stay near one eps of sum |terms|."""
    h = (rng.standard_normal((3, 100000)) * 100).astype(np.float32)
    with rt.matrix(h) as a:
        for m, axis in ((a, 1), (a.T, 0)):
            assert_close(clnn.sum(m, axis=axis).to_numpy(), ref_sum(h, axis=1), np.float32)


def test_bad_inputs(rt, device):
    with rt.matrix(np.ones((4, 6), np.float32)) as a, \
            rt.vector(np.full(6, 3, np.float32)) as out:
        cases = [
            (clnn.ShapeError, lambda: clnn.sum(a, axis=1, out=out)),
            (clnn.ShapeError, lambda: clnn.sum(a, axis=2)),
            (clnn.ShapeError, lambda: clnn.max(out, axis=1)),
            (clnn.ShapeError, lambda: clnn.argmax(a, axis=None)),
            (clnn.ShapeError, lambda: clnn.sum(a, axis=0, out=a.row(0))),
            (clnn.ShapeError, lambda: clnn.sum(a, out=out)),
            (clnn.OperandError, lambda: clnn.sum(np.ones((4, 6)), axis=0)),
            (clnn.ShapeError, lambda: clnn.sum(a, axis=0, out=a)),
        ]
        for err, f in cases:
            with pytest.raises(err):
                f()
        if device.fp64:
            with rt.vector(6, dtype=np.float64) as o64:
                with pytest.raises(clnn.DTypeError):
                    clnn.sum(a, axis=0, out=o64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with clnn.Runtime(device) as rt2, rt2.vector(6) as other:
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.max(a, axis=0, out=other)
        gone = rt.matrix((4, 6))
        sub = gone.submatrix(0, 0, 2, 2)
        row = gone.row(0)
        gone.release()
        with pytest.raises(clnn.ReleasedError):
            clnn.sum(sub, axis=0)
        with pytest.raises(clnn.ReleasedError):
            clnn.argmax(a, axis=0, out=row)
        np.testing.assert_array_equal(out.to_numpy(), 3)
        np.testing.assert_array_equal(a.to_numpy(), 1)
