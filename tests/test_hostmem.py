"""clnn.hostmem: large buffers of CPU devices in huge-page host memory."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from tolerances import assert_close, ref_mv

import clnn
from clnn import hostmem

BIG = hostmem.MIN_BYTES // 4  # float32 elements of a host-backed vector


def _resident(addr: int) -> int:
    """Resident bytes of the mapping that holds ``addr`` (``/proc/self/smaps``): that one
    mapping, so that whatever else the test process allocates or frees cannot blur it."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "Rss:":
                return int(line.split()[1]) * 1024
    return 0


def test_enabled_follows_device_type_and_env(device, monkeypatch):
    monkeypatch.delenv("CLNN_HUGEPAGES", raising=False)
    expect = device.type == "CPU" and hasattr(mmap, "MADV_HUGEPAGE")
    assert hostmem.enabled(device) == expect
    monkeypatch.setenv("CLNN_HUGEPAGES", "0")
    assert not hostmem.enabled(device)


def test_large_buffers_only(rt):
    if not hostmem.enabled(rt.device):
        pytest.skip(f"device {rt.device.name!r} gets driver buffers (not a CPU device)")
    with rt.vector(BIG) as big, rt.vector(BIG - 1) as small:
        assert hostmem.is_host_backed(big._buf)
        assert not hostmem.is_host_backed(small._buf)


def test_env_off_gives_driver_buffers(device, monkeypatch):
    monkeypatch.setenv("CLNN_HUGEPAGES", "0")
    with clnn.Runtime(device) as r, r.vector(BIG) as v:
        assert not hostmem.is_host_backed(v._buf)


def test_data_and_ops_on_host_backed_arrays(rt, rng):
    m, n = 1031, BIG // 1031 + 3  # over MIN_BYTES, odd shape
    a_h = rng.standard_normal((m, n)).astype(np.float32)
    x_h = rng.standard_normal(n).astype(np.float32)
    with rt.matrix(a_h) as a, rt.vector(x_h) as x:
        assert hostmem.is_host_backed(a._buf) == hostmem.enabled(rt.device)
        np.testing.assert_array_equal(a.to_numpy(), a_h)
        y = clnn.mv(a, x).to_numpy()
        assert_close(y, ref_mv(a_h, x_h), np.float32, k=n)
        a.set(np.ones((m, n), np.float32))
        assert float(clnn.asum(a.as_vector())) == m * n


def test_release_waits_for_queued_work_then_frees_pages(rt, rng):
    if not hostmem.enabled(rt.device):
        pytest.skip(f"device {rt.device.name!r} gets driver buffers (not a CPU device)")
    m, n = 4096, 2048  # 32 MiB
    a_h = rng.standard_normal((m, n)).astype(np.float32)
    x_h = rng.standard_normal(n).astype(np.float32)
    a = rt.matrix(a_h)
    x = rt.vector(x_h)
    rt.finish()
    buf = a._buf
    assert hostmem.is_host_backed(buf)
    addr = np.frombuffer(buf._clnn_host, np.uint8).ctypes.data
    assert _resident(addr) >= 32 << 20  # the matrix lives in clnn's mapping
    outs = [clnn.mv(a, x) for _ in range(4)]  # queued, maybe not run yet
    a.release()  # must wait for the queued mv before the pages go
    assert not hostmem.is_host_backed(buf)
    exp = ref_mv(a_h, x_h)
    for y in outs:
        assert_close(y.to_numpy(), exp, np.float32, k=n)
        y.release()
    x.release()
    assert _resident(addr) < 1 << 20  # the 32 MiB went back to the system at release
    with pytest.raises(clnn.ReleasedError):
        a.to_numpy()
