import numpy as np
import pytest

import clnn

SIZES = [1, 3, 17, 301]


@pytest.mark.parametrize("n", SIZES + [10007])
def test_vector_roundtrip(rt, dtype, n, rng):
    data = rng.standard_normal(n).astype(dtype)
    v = rt.vector(data)
    assert v.shape == (n,) and v.dtype == dtype and len(v) == n
    np.testing.assert_array_equal(v.to_numpy(), data)
    np.testing.assert_array_equal(np.asarray(v), data)
    v.release()


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (301, 1), (1, 1023)])
@pytest.mark.parametrize("layout", ["row", "col"])
def test_matrix_roundtrip_and_transpose(rt, dtype, shape, layout, rng):
    data = rng.standard_normal(shape).astype(dtype)
    a = rt.matrix(data, layout=layout)
    assert a.shape == shape and a.layout == layout and a.dtype == dtype
    out = a.to_numpy()
    np.testing.assert_array_equal(out, data)
    assert out.flags.c_contiguous if layout == "row" else out.flags.f_contiguous
    t = a.T
    assert t.shape == shape[::-1] and t.layout != layout and t.base is a
    np.testing.assert_array_equal(t.to_numpy(), data.T)
    np.testing.assert_array_equal(t.T.to_numpy(), data)
    a.release()


def test_default_dtypes_and_layouts(rt):
    assert rt.vector([1, 2]).dtype == np.float32
    assert rt.vector(np.arange(3)).dtype == np.float32
    assert rt.vector(np.ones(3, np.float32)).dtype == np.float32
    if rt.device.fp64:
        assert rt.vector(np.ones(3)).dtype == np.float64
        assert rt.matrix(np.ones((2, 3))).dtype == np.float64
    assert rt.vector(4).dtype == np.float32
    assert rt.matrix((2, 3)).layout == "row"
    assert rt.matrix([[1, 2]]).layout == "row"
    f = np.asfortranarray(np.ones((3, 2), np.float32))
    assert rt.matrix(f).layout == "col"
    nc = np.ones((4, 6), np.float32)[:, ::2]
    m = rt.matrix(nc)
    assert m.layout == "row"
    np.testing.assert_array_equal(m.to_numpy(), nc)
    assert rt.matrix(np.ones((2, 2), np.float32), dtype="float64" if rt.device.fp64
                     else "float32").shape == (2, 2)


def test_set_and_repr(rt):
    v = rt.vector(3)
    v.set([1, 2, 3])
    assert "float32" in repr(v) and "1." in repr(v) and "(3,)" not in repr(v)
    assert str(v) == str(np.array([1, 2, 3], np.float32))
    m = rt.matrix((2, 2), layout="col")
    m.set([[1, 2], [3, 4]])
    np.testing.assert_array_equal(m.to_numpy(), [[1, 2], [3, 4]])
    m.T.set([[5, 6], [7, 8]])
    np.testing.assert_array_equal(m.to_numpy(), [[5, 7], [6, 8]])
    with pytest.raises(clnn.ShapeError):
        m.set([[1, 2, 3]])
    with pytest.raises(clnn.ShapeError):
        v.set([1, 2])
    np.testing.assert_array_equal(v.to_numpy(), [1, 2, 3])
    big = rt.vector(100)
    assert "values" not in repr(big) and "n=100" in repr(big)


@pytest.mark.parametrize("bad", [
    np.array([1 + 2j]), np.array(["a"]), np.array([object()]), ["x", "y"],
    np.array([b"x"]),
])
def test_bad_dtypes(rt, bad):
    with pytest.raises(clnn.DTypeError):
        rt.vector(bad)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex64", object, "nonsense"])
def test_bad_requested_dtype(rt, dtype):
    with pytest.raises(clnn.DTypeError):
        rt.vector(3, dtype=dtype)


@pytest.mark.parametrize("bad", [0, -1, 3.5, True, (2, 0), (-1, 3), (2, 3, 4), [[1], [2, 3]],
                                 [], [[]], np.ones((2, 2))])
def test_bad_shapes(rt, bad):
    with pytest.raises((clnn.ShapeError, clnn.DTypeError)):
        rt.vector(bad) if not isinstance(bad, tuple) else rt.matrix(bad)


def test_bad_matrix_input(rt):
    with pytest.raises(clnn.ShapeError):
        rt.matrix([1, 2, 3])
    with pytest.raises(clnn.ShapeError):
        rt.matrix((2, 2), layout="diagonal")
    with pytest.raises(clnn.OutOfMemoryError):
        rt.vector(2**40)
    with pytest.raises(clnn.OutOfMemoryError):
        rt.matrix((2**20, 2**20))


def test_fp64_unsupported_names_device(rt):
    if rt.device.fp64:
        pytest.skip(f"device {rt.device.name!r} has fp64; nothing to refuse")
    with pytest.raises(clnn.UnsupportedError, match=rt.device.name):
        rt.vector(3, dtype=np.float64)
