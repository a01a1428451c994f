"""pyopencl interop: Runtime(queue=q), rt.asarray(pyopencl array) without a copy, and
buf.to_pyopencl() over the same memory (clnn/interop.py, Array.to_pyopencl)."""

import warnings

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import pyopencl.clmath as clmath
import pytest

import clnn
from clnn.devices import cl_device

SIZES = [1, 3, 17, 301]
LAYOUTS = ["row", "col"]


@pytest.fixture
def queue(device):
    ctx = cl.Context([cl_device(device)])
    return cl.CommandQueue(ctx)


def test_runtime_on_a_user_queue(device, queue, rng):
    data = rng.standard_normal(17).astype(np.float32)
    p = cla.to_device(queue, data)
    with clnn.Runtime(queue=queue) as rt:
        assert rt.ctx == queue.context and rt.queue == queue
        assert rt.device == device and isinstance(rt.device, clnn.DeviceInfo)
        v = rt.asarray(p)
        clnn.scal(2, v)
        keep = rt.vector(data)  # clnn's own buffer, released with the runtime
    assert keep.released and v.released
    # the queue, the context and the wrapped memory are still the caller's and usable
    np.testing.assert_allclose(p.get(), 2 * data, rtol=0)
    np.testing.assert_allclose(clmath.exp(p).get(), np.exp(2 * data), rtol=1e-5)
    queue.finish()
    with clnn.Runtime(queue=queue) as rt:  # a second runtime on the same queue
        np.testing.assert_array_equal(rt.asarray(p).to_numpy(), 2 * data)


def test_runtime_queue_errors(device, queue):
    with pytest.raises(clnn.OperandError):
        clnn.Runtime(queue="queue")
    others = [d for d in clnn.devices() if d.spec != device.spec]
    if others:
        with pytest.raises(clnn.DeviceError, match="not the queue's device"):
            clnn.Runtime(others[0], queue=queue)
    with clnn.Runtime(device, queue=queue) as rt:
        assert rt.device == device
    try:
        ooo = cl.CommandQueue(queue.context, properties=(
            cl.command_queue_properties.OUT_OF_ORDER_EXEC_MODE_ENABLE))
    except cl.Error:
        return  # the device has no out-of-order queues: nothing to refuse
    with pytest.raises(clnn.UnsupportedError, match="in-order"):
        clnn.Runtime(queue=ooo)


@pytest.mark.parametrize("n", SIZES)
def test_vector_shares_memory_both_ways(rt, dtype, n, rng):
    data = rng.standard_normal(n).astype(dtype)
    p = cla.to_device(rt.queue, data)
    v = rt.asarray(p)
    assert isinstance(v, clnn.Vector) and v.dtype == dtype and v.shape == (n,)
    assert v._owner._buf.int_ptr == p.base_data.int_ptr  # the same cl_mem: no copy
    assert rt.asarray(p).base is v.base  # one owner per buffer: overlaps are seen
    p *= 2  # a pyopencl kernel writes, clnn reads
    np.testing.assert_array_equal(v.to_numpy(), 2 * data)
    clnn.scal(0.5, v)  # clnn writes, pyopencl reads
    np.testing.assert_array_equal(p.get(), data)
    q = v.to_pyopencl()
    assert q.base_data is v._owner._buf and q.queue == rt.queue and q.shape == (n,)
    np.testing.assert_array_equal(clmath.fabs(q).get(), np.abs(data))
    v.release()  # only dropped: the pyopencl array stays valid
    np.testing.assert_array_equal(p.get(), data)


@pytest.mark.parametrize("n", SIZES)
def test_strided_vector_views(rt, dtype, n, rng):
    data = rng.standard_normal(3 * n + 2).astype(dtype)
    p = cla.to_device(rt.queue, data)
    s = p[2::3]
    v = rt.asarray(s)
    assert v.offset == 2 and v.stride == (3 if n > 1 else 1) and v.n == n
    np.testing.assert_array_equal(v.to_numpy(), data[2::3])
    v.fill(-1)
    want = data.copy()
    want[2::3] = -1
    np.testing.assert_array_equal(p.get(), want)
    # and out: a strided clnn view as a pyopencl array with pyopencl's strides
    w = rt.vector(data)[1::2]
    q = w.to_pyopencl()
    assert q.strides == (2 * dtype.itemsize,) and q.offset == dtype.itemsize
    back = rt.asarray(q)
    assert back._owner._buf.int_ptr == w._owner._buf.int_ptr
    assert (back.offset, back.stride, back.n) == (w.offset, w.stride, w.n)
    np.testing.assert_array_equal(back.to_numpy(), data[1::2])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (301, 2)])
def test_matrices_both_ways(rt, dtype, layout, shape, rng):
    order = "C" if layout == "row" else "F"
    data = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    p = cla.to_device(rt.queue, data)
    a = rt.asarray(p)
    assert isinstance(a, clnn.Matrix) and a.shape == shape
    assert a.layout == (layout if min(shape) > 1 else "row")
    assert a._owner._buf.int_ptr == p.base_data.int_ptr
    np.testing.assert_array_equal(a.to_numpy(), data)
    p += 1
    np.testing.assert_array_equal(a.to_numpy(), data + 1)
    m = rt.matrix(data, layout=layout)
    q = m.to_pyopencl()
    isz = dtype.itemsize
    ld = shape[1] if layout == "row" else shape[0]
    assert q.strides == ((ld * isz, isz) if layout == "row" else (isz, ld * isz))
    q2 = clmath.sqrt(q * q)  # pyopencl computes on clnn data ...
    np.testing.assert_allclose(q2.get(), np.abs(data), rtol=1e-6)
    q.fill(3)  # ... and writes it
    np.testing.assert_array_equal(m.to_numpy(), np.full(shape, 3, dtype))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_submatrix_views_with_leading_dimension(rt, dtype, layout, rng):
    data = rng.standard_normal((7, 9)).astype(dtype)
    a = rt.matrix(data, layout=layout)
    sub = a[1:6, 2:8]
    q = sub.to_pyopencl()
    isz = dtype.itemsize
    assert q.offset == sub.offset * isz and q.base_data is a._buf
    assert q.strides == ((9 * isz, isz) if layout == "row" else (isz, 7 * isz))
    back = rt.asarray(q)
    assert back.layout == layout and back.ld == sub.ld and back.offset == sub.offset
    np.testing.assert_array_equal(back.to_numpy(), data[1:6, 2:8])
    clnn.scal(0, back)
    want = data.copy()
    want[1:6, 2:8] = 0
    np.testing.assert_array_equal(a.to_numpy(), want)
    # a pyopencl slice of a matrix: rows of a C-order array keep unit stride
    p = cla.to_device(rt.queue, data)
    w = rt.asarray(p[2:5])
    assert w.layout == "row" and w.offset == 2 * 9
    np.testing.assert_array_equal(w.to_numpy(), data[2:5])


def test_layout_changes_and_unwrappable_arrays(rt, rng):
    data = rng.standard_normal((4, 6)).astype(np.float32)
    p = cla.to_device(rt.queue, data)
    c = rt.asarray(p, layout="col")  # asked for the other layout: a copy
    assert c.layout == "col" and c._owner._buf.int_ptr != p.base_data.int_ptr
    np.testing.assert_array_equal(c.to_numpy(), data)
    odd = cla.Array(rt.queue, (4, 3), np.float32, strides=(24, 8), data=p.base_data)
    with pytest.raises(clnn.ShapeError, match="no clnn form"):
        rt.asarray(odd)
    three = cla.to_device(rt.queue, np.ones((2, 2, 2), np.float32))
    with pytest.raises(clnn.ShapeError):
        rt.asarray(three)


def test_other_context_and_other_dtype_are_copied(rt, device, rng):
    data = rng.standard_normal(17).astype(np.float32)
    ctx = cl.Context([cl_device(device)])
    q = cl.CommandQueue(ctx)
    p = cla.to_device(q, data)
    v = rt.asarray(p)
    assert v._owner._buf.int_ptr != p.base_data.int_ptr and v.base is v
    np.testing.assert_array_equal(v.to_numpy(), data)
    s = rt.asarray(cla.to_device(q, np.arange(12, dtype=np.float32))[1::4])  # strided
    np.testing.assert_array_equal(s.to_numpy(), [1, 5, 9])
    i = cla.to_device(rt.queue, np.arange(5, dtype=np.int32))
    got = rt.asarray(i)
    assert got.dtype == rt.dtype and got.base is got
    np.testing.assert_array_equal(got.to_numpy(), np.arange(5))
    with pytest.raises(clnn.DTypeError, match="16777217"):
        rt.asarray(cla.to_device(rt.queue, np.array([16777217], np.int32)))
    if device.fp64:
        d = cla.to_device(rt.queue, data.astype(np.float64))
        f = rt.asarray(d, dtype=np.float32)  # asked for another dtype: converted copy
        assert f.dtype == np.float32
        np.testing.assert_array_equal(f.to_numpy(), data)


def test_to_pyopencl_keeps_the_owner_alive(rt):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        q = rt.vector([1.0, 2.0, 3.0]).to_pyopencl()  # the clnn owner is not held here
        np.testing.assert_array_equal(q.get(), [1, 2, 3])
        q._clnn_base.release()
