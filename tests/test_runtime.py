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


# ---- the per-runtime cache (memo) and scratch buffers --------------------------------------
class _Held:
    def __init__(self):
        self.released = 0

    def release(self):
        self.released += 1


def test_memo_builds_once_and_releases_with_runtime(device):
    made = []

    def factory():
        made.append(_Held())
        return made[-1]

    with clnn.Runtime(device) as rt:
        a = rt.memo(("test", 1), factory)
        assert rt.memo(("test", 1), factory) is a and len(made) == 1
        b = rt.memo(("test", 2), factory)
        assert b is not a and len(made) == 2 and a.released == 0
        plain = rt.memo(("test", "list"), lambda: [1])  # values without release() are kept
        assert plain == [1]
    assert a.released == 1 and b.released == 1
    with pytest.raises(clnn.ReleasedError):
        rt.memo(("test", 3), factory)
    assert len(made) == 2  # refused before the factory runs


def test_memo_race_keeps_the_first_value(rt):
    key = ("test-race", id(rt))
    loser = _Held()

    def factory():  # another thread stores its value while this one builds
        rt.memo(key, lambda: "first")
        return loser

    assert rt.memo(key, factory) == "first" and loser.released == 1


def test_memo_factory_error_stores_nothing(rt):
    key = ("test-error", id(rt))
    with pytest.raises(ZeroDivisionError):
        rt.memo(key, lambda: 1 / 0)
    assert rt.memo(key, lambda: 7) == 7


@pytest.mark.parametrize("n", [1, 3, 17, 301, 5000, 70001])
def test_scratch_sizes_and_reuse(device, dtype, n):
    with clnn.Runtime(device) as rt:
        before, held = rt.allocations, rt.bytes_in_use
        s = rt.scratch("test", n, dtype)
        assert isinstance(s, clnn.Vector) and s.dtype == dtype and not s.is_view
        assert s.n == 4096 if n <= 4096 else n <= s.n and (s.n - n) * 8 < n  # < 12.5% spare
        assert rt.allocations == before + 1 and rt.bytes_in_use == held + s.nbytes
        assert rt.scratch("test", n, dtype) is s and rt.scratch("test", 1, dtype) is s
        assert rt.allocations == before + 1
        other = rt.scratch("test-other", n, dtype)  # roles do not share
        assert other is not s
        s.fill(1)  # an ordinary vector: usable by the kernels
        assert clnn.sum(s) == s.n
    assert s.released and other.released and rt.bytes_in_use == 0


def test_scratch_grows_and_releases_the_old_buffer(rt, dtype):
    small = rt.scratch("test-grow", 100, dtype)
    a = rt.matrix((2, 2), dtype=dtype)
    big = rt.scratch("test-grow", small.n + 1, dtype)
    assert big.n > small.n and small.released and not big.released
    with pytest.raises(clnn.ReleasedError, match="released"):
        clnn.copy(small.subvector(0, 4), out=a.as_vector())  # a holder of the old buffer fails
    assert rt.scratch("test-grow", small.n, dtype) is big  # smaller requests reuse it
    big.release()  # released by someone else: the next call allocates again
    again = rt.scratch("test-grow", 10, dtype)
    assert again is not big and not again.released
    a.release()


def test_scratch_accounts_and_refuses_like_any_buffer(device):
    import dataclasses

    dev = dataclasses.replace(device, max_alloc=1 << 20)
    with clnn.Runtime(dev) as rt:
        with pytest.raises(clnn.OutOfMemoryError, match="bytes"):
            rt.scratch("test", (1 << 20) // 4 + 1, np.float32)
        assert rt.bytes_in_use == 0
        for bad, err in ((0, clnn.ShapeError), (2.5, clnn.ShapeError),
                         (3, clnn.DTypeError)):
            with pytest.raises(err):
                rt.scratch("test", bad, np.int32 if bad == 3 else np.float32)
        assert rt.allocations == 0
