"""Creation and conversion: rt.empty/zeros/ones/full/*_like/arange/asarray, .copy, .astype,
.reshape, .fill, .nbytes, Runtime(dtype=...), and the rule that no value changes silently on
its way to the device (clnn/dtypes.py host_array)."""

import warnings

import numpy as np
import pytest

import clnn

SIZES = [1, 3, 17, 301]
LAYOUTS = ["row", "col"]


def _other(dtype, device):
    """The other dtype, or None when the device lacks fp64."""
    o = np.dtype(np.float64 if dtype == np.float32 else np.float32)
    return o if (o == np.float32 or device.fp64) else None


@pytest.mark.parametrize("n", SIZES)
def test_vector_creation(rt, dtype, n):
    for arr, want in [(rt.empty(n, dtype=dtype), None), (rt.zeros(n, dtype=dtype), 0.0),
                      (rt.ones((n,), dtype=dtype), 1.0), (rt.full(n, -2.5, dtype=dtype), -2.5)]:
        assert isinstance(arr, clnn.Vector) and arr.shape == (n,) and arr.dtype == dtype
        assert arr.nbytes == n * dtype.itemsize
        if want is not None:
            np.testing.assert_array_equal(arr.to_numpy(), np.full(n, want, dtype))
        arr.release()


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (301, 1)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_matrix_creation_and_like(rt, dtype, shape, layout, rng):
    a = rt.full(shape, 3, dtype=dtype, layout=layout)
    assert a.shape == shape and a.layout == layout and a.dtype == dtype
    assert a.nbytes == shape[0] * shape[1] * dtype.itemsize
    np.testing.assert_array_equal(a.to_numpy(), np.full(shape, 3, dtype))
    for like, want in [(rt.zeros_like(a), 0), (rt.ones_like(a), 1), (rt.full_like(a, 7), 7)]:
        assert like.shape == shape and like.layout == layout and like.dtype == dtype
        np.testing.assert_array_equal(like.to_numpy(), np.full(shape, want, dtype))
    e = rt.empty_like(a, layout="col" if layout == "row" else "row")
    assert e.layout != layout and e.shape == shape
    host = rng.standard_normal(shape).astype(dtype)
    z = rt.zeros_like(np.asfortranarray(host) if layout == "col" else host)
    assert z.dtype == dtype and z.layout == (layout if min(shape) > 1 else "row")
    o = _other(dtype, rt.device)
    if o is not None:
        assert rt.ones_like(a, dtype=o).dtype == o


def test_full_refuses_values_the_dtype_cannot_hold(rt):
    with pytest.raises(clnn.DTypeError, match="16777217"):
        rt.full(3, 16777217)
    with pytest.raises(clnn.DTypeError, match="inf"):
        rt.full((2, 2), 1e300)
    with pytest.raises(clnn.DTypeError):
        rt.full(2, 1 + 1j)
    with pytest.raises(clnn.OperandError):
        rt.full(2, [1, 2])
    np.testing.assert_array_equal(rt.full(2, 16777217, dtype=np.float32).to_numpy(),
                                  [16777216, 16777216])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no numpy overflow warning either
        assert np.isinf(rt.full(1, 1e300, dtype=np.float32).to_numpy()[0])
    np.testing.assert_array_equal(rt.full(2, np.inf).to_numpy(), [np.inf, np.inf])
    assert np.isnan(rt.full(1, np.nan).to_numpy()[0])
    with pytest.raises(clnn.ShapeError):
        rt.zeros((2, 3, 4))
    with pytest.raises(clnn.ShapeError):
        rt.empty(0)
    with pytest.raises(clnn.ShapeError):
        rt.ones(2, layout="diag")


def test_arange(rt, dtype):
    np.testing.assert_array_equal(rt.arange(5, dtype=dtype).to_numpy(), np.arange(5.0))
    np.testing.assert_array_equal(rt.arange(2, 301, 3, dtype=dtype).to_numpy(),
                                  np.arange(2, 301, 3).astype(dtype))
    f = rt.arange(0, 1, 0.25, dtype=dtype)
    assert f.dtype == dtype
    np.testing.assert_array_equal(f.to_numpy(), [0, 0.25, 0.5, 0.75])
    assert rt.arange(3).dtype == rt.dtype
    with pytest.raises(clnn.ShapeError):
        rt.arange(3, 1)
    with pytest.raises(clnn.ShapeError):
        rt.arange(0, 3, 0)
    with pytest.raises(clnn.DTypeError, match="16777217"):
        rt.arange(16777210, 16777220)  # float32 default: 16777217 is not a float32
    rt.arange(16777210, 16777220, dtype=np.float32).release()  # asked for


@pytest.mark.parametrize("n", SIZES)
def test_asarray_host_data(rt, dtype, n, rng):
    data = rng.standard_normal(n).astype(dtype)
    v = rt.asarray(data)
    assert isinstance(v, clnn.Vector) and v.dtype == dtype
    np.testing.assert_array_equal(v.to_numpy(), data)
    assert rt.asarray(v) is v
    assert rt.asarray(v, dtype=dtype) is v
    m = rt.asarray(data.reshape(1, n), layout="col")
    assert isinstance(m, clnn.Matrix) and m.layout == "col" and m.shape == (1, n)
    assert rt.asarray(m) is m and rt.asarray(m, layout="col") is m
    r = rt.asarray(m, layout="row")
    assert r is not m and r.layout == "row"
    np.testing.assert_array_equal(r.to_numpy(), data.reshape(1, n))
    o = _other(dtype, rt.device)
    if o is not None:
        c = rt.asarray(v, dtype=o)
        assert c.dtype == o and c is not v
        np.testing.assert_array_equal(c.to_numpy(), data.astype(o))
    assert rt.asarray([1, 2, 3]).dtype == rt.dtype
    assert rt.asarray([[1, 2], [3, 4]]).shape == (2, 2)
    for scalar in (3.0, 2, np.float32(1.5), np.array(-4.0)):
        s = rt.asarray(scalar)  # a 1-element vector, as np.atleast_1d
        assert s.shape == (1,) and s[0] == float(scalar)
        s.release()
    assert rt.asarray(np.float64(0.25)).dtype == np.float64  # a numpy float keeps its dtype
    with pytest.raises(clnn.DTypeError, match="16777217"):  # rt's default dtype: float32
        rt.asarray(16777217)
    with pytest.raises(clnn.ShapeError, match="1-d or 2-d"):
        rt.asarray([[[1.0]]])


def test_asarray_of_another_runtime_copies(rt, device, rng):
    data = rng.standard_normal((3, 17)).astype(np.float32)
    a = rt.matrix(data, layout="col")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as rt2:
            b = rt2.asarray(a)
            assert b.runtime is rt2 and b.layout == "col"
            np.testing.assert_array_equal(b.to_numpy(), data)


def test_runtime_dtype_default(device):
    if not device.fp64:
        with pytest.raises(clnn.UnsupportedError, match="fp64"):
            clnn.Runtime(device, dtype=np.float64)
        pytest.skip(f"float64: device {device.name!r} lacks cl_khr_fp64")
    with clnn.Runtime(device, dtype=np.float64) as rt:
        assert rt.dtype == np.float64
        made = [rt.vector(3), rt.vector([1, 2]), rt.matrix((2, 2)), rt.matrix([[1, 2]]),
                rt.zeros(3), rt.ones((2, 2)), rt.full(2, 0.1), rt.empty(4), rt.arange(3),
                rt.asarray([1.0, 2.0]), rt.matrix([1, 2, 3, 4], shape=(2, 2))]
        assert all(a.dtype == np.float64 for a in made)
        assert rt.full(1, 0.1).to_numpy()[0] == 0.1  # not rounded through float32
        assert rt.vector(np.ones(2, np.float32)).dtype == np.float32  # numpy keeps its own
        assert clnn.add(made[0], made[0]).dtype == np.float64
        assert rt.vector([16777217]).to_numpy()[0] == 16777217
    with pytest.raises(clnn.DTypeError):
        clnn.Runtime(device, dtype=np.int32)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (1, 301)])
def test_matrix_from_flat_data(rt, dtype, layout, shape):
    m, n = shape
    flat = np.arange(m * n, dtype=dtype)
    a = rt.matrix(flat, shape=shape, layout=layout)
    order = "C" if layout == "row" else "F"
    assert a.layout == layout and a.shape == shape
    np.testing.assert_array_equal(a.to_numpy(), flat.reshape(shape, order=order))
    np.testing.assert_array_equal(rt.matrix(flat.tolist(), shape=shape, dtype=dtype).to_numpy(),
                                  flat.reshape(shape))
    with pytest.raises(clnn.ShapeError, match="cannot fill"):
        rt.matrix(flat, shape=(m + 1, n))
    with pytest.raises(clnn.ShapeError):
        rt.matrix(flat, shape=(m * n,))


@pytest.mark.parametrize("n", SIZES)
def test_copy_and_astype_vector(rt, dtype, n, rng):
    data = rng.standard_normal(3 * n).astype(dtype)
    v = rt.vector(data)
    for src, want in [(v, data), (v[1::3], data[1::3])]:
        c = src.copy()
        assert c.base is c and c.stride == 1 and c.dtype == dtype
        np.testing.assert_array_equal(c.to_numpy(), want)
        c.fill(0)
        np.testing.assert_array_equal(src.to_numpy(), want)  # the copy owns its memory
    assert v.astype(dtype) is not v and v.astype(dtype, copy=False) is v
    o = _other(dtype, rt.device)
    if o is not None:
        w = v[::2].astype(o)
        assert w.dtype == o
        np.testing.assert_array_equal(w.to_numpy(), data[::2].astype(o))
    with pytest.raises(clnn.DTypeError):
        v.astype(np.int32)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (301, 2)])
def test_copy_matrix_views_and_layouts(rt, dtype, layout, shape, rng):
    data = rng.standard_normal((shape[0] + 2, shape[1] + 1)).astype(dtype)
    a = rt.matrix(data, layout=layout)
    sub = a[1:1 + shape[0], 1:]
    for lay in (None, "row", "col"):
        c = sub.copy(layout=lay)
        assert c.contiguous and c.layout == (lay or layout) and c.base is c
        np.testing.assert_array_equal(c.to_numpy(), data[1:1 + shape[0], 1:])
    o = _other(dtype, rt.device)
    if o is not None:
        t = sub.T.astype(o)
        assert t.dtype == o and t.layout != layout
        np.testing.assert_array_equal(t.to_numpy(), data[1:1 + shape[0], 1:].T.astype(o))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", [1, 3, 17, 301])
def test_reshape_views(rt, dtype, layout, n):
    order = "C" if layout == "row" else "F"
    data = np.arange(2 * n, dtype=dtype)
    v = rt.vector(data)
    a = v.reshape(2, n, layout=layout)
    assert a.base is v and a.shape == (2, n) and a.layout == layout
    np.testing.assert_array_equal(a.to_numpy(), data.reshape((2, n), order=order))
    b = v.reshape((-1, 2), layout=layout)
    assert b.shape == (n, 2) and b.base is v
    back = a.reshape(-1)
    assert isinstance(back, clnn.Vector) and back.base is v
    np.testing.assert_array_equal(back.to_numpy(), data)
    a.fill(5)  # writing through the view changes v
    np.testing.assert_array_equal(v.to_numpy(), np.full(2 * n, 5, dtype))
    assert v.reshape(2 * n).base is v
    with pytest.raises(clnn.ShapeError):
        v.reshape(3, 2 * n)
    with pytest.raises(clnn.ShapeError):
        v.reshape(-1, -1)
    with pytest.raises(clnn.ShapeError):
        v.reshape(1, 1, 2 * n)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reshape_copies_when_memory_does_not_allow(rt, dtype, layout):
    data = np.arange(24, dtype=dtype).reshape(4, 6)
    a = rt.matrix(data, layout=layout)
    other = "col" if layout == "row" else "row"
    order = "C" if other == "row" else "F"
    r = a.reshape(3, 8, layout=other)  # read in the other order: a copy, as numpy
    assert r.base is r and r.layout == other
    np.testing.assert_array_equal(r.to_numpy(), data.reshape((3, 8), order=order))
    sub = a[1:3, 1:4]  # not contiguous: a copy
    s = sub.reshape(-1)
    assert s.base is s
    own = "C" if layout == "row" else "F"
    np.testing.assert_array_equal(s.to_numpy(), data[1:3, 1:4].ravel(order=own))
    v = rt.vector(np.arange(12, dtype=dtype))[::2]  # strided: a copy
    m = v.reshape(2, 3)
    assert m.base is m
    np.testing.assert_array_equal(m.to_numpy(), np.arange(0, 12, 2).reshape(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for x in (r, s, m):
            x.release()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", SIZES)
def test_fill_views(rt, dtype, layout, n):
    a = rt.zeros((n + 2, 5), dtype=dtype, layout=layout)
    a[1:n + 1, 1:4].fill(2.5)
    want = np.zeros((n + 2, 5), dtype)
    want[1:n + 1, 1:4] = 2.5
    np.testing.assert_array_equal(a.to_numpy(), want)
    a.col(4)[::2].fill(-1)
    want[::2, 4] = -1
    np.testing.assert_array_equal(a.to_numpy(), want)
    assert a.fill(7) is a
    np.testing.assert_array_equal(a.to_numpy(), np.full((n + 2, 5), 7, dtype))
    with pytest.raises(clnn.DTypeError):
        a.fill(1 + 2j)
    with pytest.raises(clnn.OperandError):
        a.fill([1, 2])
    bad = 1e300 if dtype == np.float32 else 2**53 + 1
    with pytest.raises(clnn.DTypeError):
        a.fill(bad)
    np.testing.assert_array_equal(a.to_numpy(), np.full((n + 2, 5), 7, dtype))


def test_fill_does_not_read_the_buffer(rt, monkeypatch):
    v = rt.vector(1000)
    calls = []
    monkeypatch.setattr(clnn.transfer, "read", lambda *a, **k: calls.append(a))
    v.fill(1)
    v[::7].fill(2)
    monkeypatch.undo()
    assert calls == []
    got = v.to_numpy()
    assert got[0] == 2 and got[1] == 1 and got[7] == 2


# ---- no silent conversions ------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (np.array([16777217], np.int64), "16777217"),
    ([1, 2, 16777217], "16777217"),
    (np.array([2**63 - 1]), "9223372036854775807"),
    (np.array([2**64 - 1], np.uint64), "18446744073709551615"),
    ([1.0, 1e300], "1e\\+300"),
    (np.ones(3, np.float16), "float16"),
])
def test_implicit_conversions_that_change_values_are_refused(rt, bad, match):
    with pytest.raises(clnn.DTypeError, match=match):
        rt.vector(bad)
    with pytest.raises(clnn.DTypeError, match=match):
        rt.asarray(bad)
    v = rt.zeros(len(bad))
    with pytest.raises(clnn.DTypeError, match=match):
        v.set(bad)
    np.testing.assert_array_equal(v.to_numpy(), np.zeros(len(bad)))  # nothing written
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: converted, with no numpy warning
        rt.vector(bad, dtype=np.float32).release()


def test_conversions_that_keep_values_pass(rt):
    np.testing.assert_array_equal(rt.vector([16777216, -16777216, 2**40]).to_numpy(),
                                  [16777216, -16777216, 2**40])
    assert rt.vector(np.array([-2**63])).to_numpy()[0] == -2.0**63
    np.testing.assert_array_equal(rt.vector(np.arange(-5, 5, dtype=np.int8)).to_numpy(),
                                  np.arange(-5, 5))
    np.testing.assert_array_equal(rt.vector([True, False]).to_numpy(), [1, 0])
    got = rt.vector([0.1, np.inf, -np.inf, np.nan, 1e-50]).to_numpy()  # rounding is fine
    np.testing.assert_array_equal(got[:3], np.array([0.1, np.inf, -np.inf], np.float32))
    assert np.isnan(got[3]) and got[4] == 0
    if rt.device.fp64:
        d = rt.vector(np.array([2**53, 16777217]), dtype=np.float64)
        np.testing.assert_array_equal(d.to_numpy(), [2.0**53, 16777217])
        with pytest.raises(clnn.DTypeError, match="9007199254740993"):
            rt.zeros(1, np.float64).set([2**53 + 1])
        with pytest.raises(clnn.DTypeError, match="float16"):
            rt.zeros((1, 2), np.float64).set(np.ones((1, 2), np.float16))


def test_input_that_has_the_dtype_is_not_copied():
    big = np.ones(1 << 20, np.float32)
    from clnn import array as arr_mod
    assert arr_mod.host_array(big, None, 1, "t") is big
    assert arr_mod.host_array(big, np.float32, 1, "t") is big
    col = np.asfortranarray(np.ones((256, 256), np.float32))
    assert arr_mod.host_array(col, np.float32, 2, "t", convert=False) is col
