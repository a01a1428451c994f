"""Python operators on clnn arrays (clnn/operators.py) vs numpy in float64: ``@``, ``+ - * /``
with arrays, broadcast vectors and scalars on either side, the in-place forms (which allocate
nothing), comparisons, unary ``- + abs``, and the errors of mismatched operands."""

from __future__ import annotations

import operator
import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_dot, ref_mm

import clnn

SIZES = [1, 3, 17, 301]
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
INPLACE = {"+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv}
COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}


def _f64(h):
    return np.asarray(h, np.float64)


def _data(rng, shape, dtype):
    """Values away from 0 (they are divisors too), both signs."""
    mag = rng.uniform(0.5, 2.0, shape)
    return (mag * rng.choice([-1.0, 1.0], shape)).astype(dtype)


def _check(sym, got, a64, b64, dtype):
    """One rounding of the exact result: relative to |a| + |b| for sums, to |result| else."""
    want = ARITH[sym](a64, b64)
    scale = np.abs(a64) + np.abs(b64) if sym in "+-" else None
    assert_close(got, np.broadcast_to(want, np.shape(want)).astype(np.float64), dtype,
                 scale=None if scale is None else np.broadcast_to(scale, np.shape(want)))


# the operand pairs: (label, make) -> host (x, y), device (x, y); views and transposes included
def _vectors(rt, rng, n, dtype):
    hx, hy = _data(rng, n, dtype), _data(rng, 2 * n, dtype)
    x, y = rt.vector(hx), rt.vector(hy)
    return (hx, hy[::2]), (x, y[::2]), [x, y]


def _matrices(rt, rng, n, dtype, layout):
    m = max(1, n // 3)
    hx, hy = _data(rng, (m + 2, n), dtype), _data(rng, (n, m), dtype)
    x = rt.matrix(hx, layout=layout)
    y = rt.matrix(hy, layout="col" if layout == "row" else "row")
    return (hx[1:m + 1], hy.T), (x[1:m + 1, :], y.T), [x, y]


@pytest.mark.parametrize("layout", ["vector", "row", "col"])
@pytest.mark.parametrize("n", SIZES)
def test_arith_arrays_and_scalars(rt, dtype, n, layout, rng):
    if layout == "vector":
        (hx, hy), (x, y), keep = _vectors(rt, rng, n, dtype)
    else:
        (hx, hy), (x, y), keep = _matrices(rt, rng, n, dtype, layout)
    x64, y64 = _f64(hx), _f64(hy)
    def r64(s):  # as numpy does with a Python scalar: rounded to the array's dtype first
        return float(dtype.type(s))
    s, s32 = -1.3, np.float32(0.7)
    for sym, f in ARITH.items():
        for got, a64, b64 in [(f(x, y), x64, y64), (f(x, s), x64, r64(s)), (f(s, x), r64(s), x64),
                              (f(x, s32), x64, r64(s32)), (f(dtype.type(s), x), r64(s), x64),
                              (f(x, 2), x64, 2.0), (f(3, x), 3.0, x64)]:
            assert isinstance(got, type(x)) and got.shape == x.shape and got.dtype == dtype
            if isinstance(got, clnn.Matrix):
                assert got.layout == x.layout
            _check(sym, got.to_numpy(), a64, b64, dtype)
            got.release()
    for arr in keep:
        arr.release()


@pytest.mark.parametrize("layout", ["vector", "row", "col"])
@pytest.mark.parametrize("n", [1, 17, 301])
def test_inplace_writes_the_left_operand_and_allocates_nothing(rt, dtype, n, layout, rng):
    if layout == "vector":
        (hx, hy), (x, y), keep = _vectors(rt, rng, n, dtype)
    else:
        (hx, hy), (x, y), keep = _matrices(rt, rng, n, dtype, layout)
    parent = keep[0]
    outside = parent.to_numpy()
    for sym, f in INPLACE.items():
        for other, o64 in [(y, _f64(hy)), (0.75, float(dtype.type(0.75)))]:
            before = _f64(x.to_numpy())
            allocs = rt.allocations
            z = x
            z = f(z, other)
            assert z is x and rt.allocations == allocs
            _check(sym, x.to_numpy(), before, o64, dtype)
    # nothing outside the view changed
    after = parent.to_numpy()
    if layout == "vector":
        np.testing.assert_array_equal(after, x.to_numpy())
    else:
        np.testing.assert_array_equal(after[0], outside[0])
        np.testing.assert_array_equal(after[-1], outside[-1])
    for arr in keep:
        arr.release()


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (301, 5)])
def test_vector_broadcasts_over_rows(rt, dtype, layout, shape, rng):
    m, n = shape
    ha, hv = _data(rng, (n, m), dtype).T, _data(rng, 3 * n, dtype)
    with rt.matrix(ha.T, layout=layout) as at, rt.vector(hv) as vv:
        a, v = at.T, vv[1::3]  # a transposed view and a strided vector
        v64 = _f64(hv[1::3])
        for sym, f in ARITH.items():
            a64 = _f64(a.to_numpy())  # the in-place forms below change a
            with f(a, v) as got:
                assert got.shape == (m, n)
                _check(sym, got.to_numpy(), a64, v64, dtype)
            with f(v, a) as got:
                _check(sym, got.to_numpy(), v64, a64, dtype)
            allocs = rt.allocations
            INPLACE[sym](a, v)
            assert rt.allocations == allocs
            _check(sym, a.to_numpy(), a64, v64, dtype)
        if m != n:
            with pytest.raises(clnn.ShapeError, match="broadcast"):
                a + rt.vector(np.ones(m, dtype))
        with pytest.raises(clnn.ShapeError, match="does not fit in the vector"):
            vv[1::3] += a


def test_column_vector_is_refused_with_the_alternative(rt):
    with rt.matrix(np.ones((2, 3), np.float32)) as a, rt.vector([1, 2]) as v:
        with pytest.raises(clnn.ShapeError, match=r"add_bias\(a, v, axis=0\)"):
            a + v


@pytest.mark.parametrize("n", SIZES)
def test_compare(rt, dtype, n, rng):
    hx = rng.integers(-2, 3, n).astype(dtype)
    hy = rng.integers(-2, 3, n).astype(dtype)
    hx[0] = np.nan  # NaN is unequal to everything, as in numpy
    with rt.vector(hx) as x, rt.vector(hy) as y, rt.matrix(np.tile(hx, (3, 1)), layout="col") as a:
        for f in COMPARE.values():
            for got, want in [(f(x, y), f(hx, hy)), (f(x, 1), f(hx, 1)), (f(1, x), f(1, hx)),
                              (f(x, x), f(hx, hx)), (f(a, y), f(np.tile(hx, (3, 1)), hy))]:
                with got:
                    assert got.dtype == dtype and got.shape == want.shape
                    np.testing.assert_array_equal(got.to_numpy(), want.astype(dtype))


def test_compare_with_other_objects(rt):
    with rt.vector([1, 2]) as v:
        assert (v == None) is False and (v != None) is True  # noqa: E711 (the operator is tested)
        assert (v == "abc") is False
        with pytest.raises(clnn.OperandError, match="rt.vector"):
            _ = v == [1, 2]
        with pytest.raises(clnn.OperandError):
            _ = v < np.ones(2)


def test_truth_value_and_hash(rt):
    with rt.vector([1, 2]) as v, rt.vector([0]) as z, rt.vector([3]) as t:
        with pytest.raises(clnn.OperandError, match="ambiguous"):
            bool(v == v)
        with pytest.raises(clnn.OperandError, match="ambiguous"):
            if v:  # noqa: SIM108
                pass
        assert not z and t  # one element: its value, as numpy
        with pytest.raises(TypeError, match="unhashable"):
            hash(v)
        assert 2 in v and 5 not in v


@pytest.mark.parametrize("layout", ["vector", "row", "col"])
def test_unary(rt, dtype, layout, rng):
    h = _data(rng, 17 if layout == "vector" else (5, 7), dtype)
    h.flat[0] = 0.0
    with (rt.vector(h) if layout == "vector" else rt.matrix(h, layout=layout)) as x:
        for got, want in [(-x, -h), (+x, h), (abs(x), np.abs(h)), (abs(-x), np.abs(h))]:
            with got:
                assert got is not x and got.shape == x.shape
                np.testing.assert_array_equal(got.to_numpy(), want)


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("n", SIZES)
def test_matmul(rt, dtype, layout, n, rng):
    m, k = max(1, n // 2), n
    ha, hb = _data(rng, (m, k), dtype), _data(rng, (n, k), dtype)
    hx, hy = _data(rng, k, dtype), _data(rng, 2 * m, dtype)
    with (rt.matrix(ha, layout=layout) as a, rt.matrix(hb, layout=layout) as b,
          rt.vector(hx) as x, rt.vector(hy) as y2):
        y = y2[::2]
        with a @ b.T as c:  # mm with a transposed view
            assert isinstance(c, clnn.Matrix) and c.shape == (m, n)
            assert_close(c.to_numpy(), ref_mm(ha, hb.T), dtype, k=k)
        with a @ x as v:
            assert isinstance(v, clnn.Vector) and v.shape == (m,)
            assert_close(v.to_numpy(), ref_mm(ha, hx), dtype, k=k)
        with y @ a as v:  # vector @ matrix: mv(a.T, y), numpy's (m,) @ (m, k)
            assert v.shape == (k,)
            assert_close(v.to_numpy(), ref_mm(hy[::2], ha), dtype, k=m)
        with a[0:1, :] @ b.T[:, 0:1] as c:  # sub-matrix views
            assert_close(c.to_numpy(), ref_mm(ha[0:1], hb.T[:, 0:1]), dtype, k=k)
        d = x @ x
        assert type(d) is float
        assert_close(d, ref_dot(hx, hx), dtype, k=k)
        with pytest.raises(clnn.ShapeError, match="do not align"):
            a @ y2
        with pytest.raises(clnn.ShapeError, match="do not align"):
            x @ y2
        with pytest.raises(clnn.OperandError):
            a @ ha
        with pytest.raises(clnn.OperandError):
            ha @ a
        with pytest.raises(clnn.OperandError):
            a @ 2


def test_matmul_inplace_rebinds(rt):
    with rt.matrix([[1, 2], [3, 4]]) as a, rt.matrix([[0, 1], [1, 0]]) as b:
        c = a
        c @= b  # no in-place matmul (numpy's needs a temporary too): a new matrix
        assert c is not a
        np.testing.assert_array_equal(c.to_numpy(), [[2, 1], [4, 3]])
        np.testing.assert_array_equal(a.to_numpy(), [[1, 2], [3, 4]])
        c.release()


def test_numpy_scalars_stay_on_the_device(rt, dtype):
    with rt.vector(np.array([1, 2, 4], dtype)) as v:
        for got in (np.float32(2) * v, np.float64(1) / v, np.int64(3) - v, v + np.float32(1),
                    np.array(2.0) * v):
            assert isinstance(got, clnn.Vector) and got.dtype == dtype
            got.release()
        with pytest.raises(clnn.OperandError, match="ndarray"):
            np.ones(3) + v


def test_overlapping_inplace_matches_numpy(rt, dtype, rng):
    h = _data(rng, (5, 5), dtype)
    hv = _data(rng, 9, dtype)
    with rt.matrix(h) as a, rt.vector(hv) as v:
        a += a.T  # the input is read before any of it is written (a copy, as numpy's buffer)
        a -= a.row(2)
        want = _f64(h) + _f64(h).T
        want = want - want[2].copy()
        assert_close(a.to_numpy(), want, dtype, scale=np.abs(_f64(h)) + np.abs(_f64(h).T) + 4)
        v[1:] += v[:-1]
        want = _f64(hv)
        want[1:] += _f64(hv)[:-1]
        assert_close(v.to_numpy(), want, dtype, scale=np.abs(want) + 4)


def test_errors_refuse_before_writing(rt, dtype):
    other = np.float64 if dtype == np.float32 else np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        foreign = clnn.Runtime(rt.device)
    with (foreign, rt.vector(np.ones(3, dtype)) as x, rt.vector(np.ones(4, dtype)) as x4,
          rt.matrix(np.ones((2, 3), dtype)) as a, foreign.vector(np.ones(3, dtype)) as fx):
        cases = [
            (lambda: x + x4, clnn.ShapeError), (lambda: x.__iadd__(x4), clnn.ShapeError),
            (lambda: a - a.T, clnn.ShapeError), (lambda: a.__imul__(a.T), clnn.ShapeError),
            (lambda: x + fx, clnn.RuntimeMismatchError),
            (lambda: x.__isub__(fx), clnn.RuntimeMismatchError),
            (lambda: x @ fx, clnn.RuntimeMismatchError),
            (lambda: x + True, clnn.DTypeError), (lambda: x.__iadd__(1j), clnn.DTypeError),
            (lambda: x * "2", clnn.OperandError), (lambda: x.__itruediv__([2, 2, 2]),
                                                   clnn.OperandError),
            (lambda: x + None, clnn.OperandError),
        ]
        if rt.device.fp64:
            xo = rt.vector(np.ones(3, other))
            cases += [(lambda: x + xo, clnn.DTypeError), (lambda: x.__iadd__(xo),
                                                         clnn.DTypeError),
                      (lambda: a @ rt.matrix(np.ones((3, 2), other)), clnn.DTypeError)]
        for f, err in cases:
            with pytest.raises(err):
                f()
        np.testing.assert_array_equal(x.to_numpy(), np.ones(3))
        np.testing.assert_array_equal(a.to_numpy(), np.ones((2, 3)))
        gone = rt.vector(3, dtype=dtype)
        gone.release()
        with pytest.raises(clnn.ReleasedError):
            x + gone
        with pytest.raises(clnn.ReleasedError):
            _ = -gone


def test_host_numbers_one_home_for_host_data_checks(rt, dtype):
    """checks.host_numbers: the checks of data a user hands over (operators' assignment, and
    the data of nn's fit/predict)."""
    from clnn.checks import host_numbers
    from clnn.nn import DataError

    got = host_numbers([[1, 2, 3]], "op", "x")
    assert got.shape == (1, 3) and got.dtype.kind == "i"
    host = np.ones(3, dtype)
    assert host_numbers(host, "op", "x") is host  # no copy
    for bad in (np.ones(2) * 1j, np.array(["a"]), np.array([1, None], dtype=object)):
        with pytest.raises(clnn.DTypeError, match="op: x of dtype .* is not real numbers"):
            host_numbers(bad, "op", "x")
        with pytest.raises(DataError, match="fit: x of dtype"):
            host_numbers(bad, "fit", "x", error=DataError)
    with pytest.raises(clnn.ShapeError, match="op: cannot make an array of x"):
        host_numbers([[1, 2], [3]], "op", "x")
    with rt.vector(np.arange(3, dtype=dtype)) as v:
        np.testing.assert_array_equal(host_numbers(v, "op", "x", runtime=rt), [0, 1, 2])
        with clnn.Runtime(rt.device) as other:
            with pytest.raises(clnn.RuntimeMismatchError,
                               match="x lives on another runtime .* than the network"):
                host_numbers(v, "op", "x", runtime=other, owner="the network")
        v.release()
        with pytest.raises(clnn.ReleasedError, match="released"):
            host_numbers(v, "op", "x")
    a = rt.zeros((2, 3), dtype=dtype)  # the operators' assignment goes through it
    with pytest.raises(clnn.DTypeError, match="not real numbers"):
        a[0] = np.array(["a", "b", "c"])
    with pytest.raises(clnn.ShapeError, match="cannot make an array of the value"):
        a[0] = [[1, 2], [3]]
    assert not a.to_numpy().any()
    a.release()
