import gc
import warnings

import numpy as np
import pytest

import clnn


def test_with_block_releases_everything(device):
    with clnn.Runtime(device) as rt:
        assert rt.device == device
        v = rt.vector([1, 2, 3])
        m = rt.matrix((3, 4))
        t = m.T
        rt.finish()
    assert rt.released and v.released and m.released and t.released
    for call in (v.to_numpy, m.to_numpy, t.to_numpy, rt.finish, lambda: rt.vector(3),
                 lambda: clnn.mv(m, v), lambda: m.T, lambda: rt.queue):
        with pytest.raises(clnn.ReleasedError):
            call()
    rt.release()  # twice is harmless
    v.release()
    assert "released" in repr(v) and "released" in repr(rt)


def test_exception_inside_block_still_releases(device):
    with pytest.raises(ZeroDivisionError):
        with clnn.Runtime(device) as rt:
            v = rt.vector(5)
            raise ZeroDivisionError("inside the block")
    assert rt.released and v.released


def test_buffer_with_block_and_release(rt):
    with rt.vector([1.0, 2.0]) as tmp:
        assert tmp.to_numpy().tolist() == [1.0, 2.0]
    assert tmp.released and not rt.released
    m = rt.matrix([[1, 2], [3, 4]])
    view = m.T
    m.release()
    with pytest.raises(clnn.ReleasedError, match="released"):
        view.to_numpy()
    m.release()


def test_view_release_keeps_owner(rt):
    m = rt.matrix([[1, 2], [3, 4]])
    t = m.T
    t.release()
    assert not m.released
    np.testing.assert_array_equal(m.to_numpy(), [[1, 2], [3, 4]])
    m.release()


def test_forgotten_buffer_gets_resource_warning(device):
    with clnn.Runtime(device) as rt:
        with pytest.warns(ResourceWarning, match="never released"):
            rt.vector(10)
            gc.collect()
        assert len(rt._arrays) == 0


def test_runtime_exit_releases_cycles(device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as rt:
            v = rt.vector(4)
            holder = [v]
            holder.append(holder)  # a reference cycle keeps v alive
        assert v.released


def test_zeros_and_empty_like(rt, dtype):
    z = rt.zeros((3, 5), dtype=dtype, layout="col")
    assert z.layout == "col" and z.dtype == dtype
    np.testing.assert_array_equal(z.to_numpy(), np.zeros((3, 5)))
    e = rt.empty_like(z)
    assert e.shape == z.shape and e.layout == "col"
    zv = rt.zeros(7, dtype=dtype)
    np.testing.assert_array_equal(zv.to_numpy(), np.zeros(7))
    for a in (z, e, zv):
        a.release()


def test_runtime_by_spec_and_repr(device):
    with clnn.Runtime(device.spec) as rt:
        assert rt.device == device
        assert "open" in repr(rt)


def test_bad_device_spec():
    with pytest.raises(clnn.DeviceError):
        clnn.Runtime("no-such-device-anywhere")


def test_fp64_refused_on_device_without_it(device, monkeypatch):
    import dataclasses

    with clnn.Runtime(device) as rt:
        monkeypatch.setattr(rt, "device", dataclasses.replace(rt.device, fp64=False))
        with pytest.raises(clnn.UnsupportedError, match="cl_khr_fp64") as e:
            rt.vector(np.ones(3))
        assert rt.device.name in str(e.value)
        with pytest.raises(clnn.UnsupportedError):
            rt.matrix((2, 2), dtype=np.float64)
        assert rt.vector(np.ones(3), dtype=np.float32).dtype == np.float32
