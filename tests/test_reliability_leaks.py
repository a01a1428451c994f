"""No leaks: buffers, calls and runtimes come and go without the process growing; a forgotten
buffer is freed by the garbage collector with a ResourceWarning; a runtime's exit frees
everything, reference cycles included.

The full counts of issue 6 (100,000 buffers, 10,000 mv calls, 300 runtimes, each under 32 MiB
of RSS growth) are marked ``slow``; ``clnn bench leaks`` prints the same figures.
"""

from __future__ import annotations

import gc
import mmap
import warnings
import weakref

import numpy as np
import pytest

import clnn
from clnn.bench import leaks
from clnn.runtime import device_bytes_in_use

LIMIT = leaks.LIMIT_MIB * leaks.MiB


def _ok(res: dict) -> None:
    assert res["growth"] < LIMIT, (
        f"{res['scenario']}: RSS grew {res['growth'] / leaks.MiB:.1f} MiB over "
        f"{res['count']} repetitions")


# ---- the figures of the issue (slow) -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("scenario,count", [("buffers", 100_000), ("mv", 10_000),
                                            ("runtimes", 300), ("ops", 2_000),
                                            ("forgotten", 10_000), ("device-memory", 3)])
def test_no_leak_full(device, scenario, count):
    _ok(leaks.run_scenario(scenario, device, count=count))


# ---- quick versions for the default run ------------------------------------------------------
@pytest.mark.parametrize("scenario,count", [("buffers", 5_000), ("mv", 1_000),
                                            ("runtimes", 10), ("ops", 100),
                                            ("forgotten", 500)])
def test_no_leak_quick(device, scenario, count):
    _ok(leaks.run_scenario(scenario, device, count=count))


def test_leak_detector_detects_a_leak(device):
    """The measurement is not blind: keeping what a scenario creates is caught."""
    kept = []
    with clnn.Runtime(device) as rt:
        def step(i):
            kept.append(np.ones(100_000))  # 800 kB a step, 80 MB in all
            kept.append(rt.vector(10))

        with pytest.raises(AssertionError, match="live buffers"):
            leaks.measure("leaky", step, 100, warmup=1, rt=rt)
    res = leaks.measure("leaky-host", lambda i: kept.append(_fresh_pages(1 << 20)), 100,
                        warmup=1)
    assert res["growth"] > LIMIT


def _fresh_pages(nbytes: int) -> mmap.mmap:
    """``nbytes`` of new, touched memory from the system: malloc may hand back memory that an
    earlier test freed (already resident: no RSS growth), a fresh mapping never does."""
    m = mmap.mmap(-1, nbytes)
    np.frombuffer(m, np.uint8)[:] = 1
    return m


def test_device_memory_comes_back_through_runtime_exits(device):
    """Rounds that together ask for more than fits: only possible when each runtime's exit
    frees all it held (see clnn.bench.leaks._device_memory)."""
    _ok(leaks.run_scenario("device-memory", device, count=2))


def test_device_memory_detector_catches_a_runtime_that_keeps_buffers(device, monkeypatch):
    from clnn.array import Array

    if device.type != "CPU":
        pytest.skip("only a CPU device's memory shows in the process's RSS")
    monkeypatch.setattr(Array, "release", lambda self: None)  # simulate a leaking exit
    with pytest.raises((AssertionError, clnn.OutOfMemoryError)):
        _ok(leaks.run_scenario("device-memory", device, count=2))
    monkeypatch.undo()
    gc.collect()


# ---- the garbage collector and reference cycles ------------------------------------------------
def test_forgotten_buffers_and_views_warn_once_each(device):
    with clnn.Runtime(device) as rt:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(50):
                m = rt.matrix((17, 3))
                t = m.T  # a view is not an owner: no warning of its own
                del m, t
            gc.collect()
        res = [x for x in w if issubclass(x.category, ResourceWarning)]
        assert len(res) == 50 and "never released" in str(res[0].message)
        assert rt.bytes_in_use == 0 and len(rt._arrays) == 0


def test_no_warning_for_released_or_runtime_owned_buffers(device):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ResourceWarning)
        with clnn.Runtime(device) as rt:
            a = rt.vector(5)
            a.release()
            b = rt.vector(5)  # alive at the exit: released by the runtime, no warning
        del a, b
        gc.collect()
    assert not [x for x in w if issubclass(x.category, ResourceWarning)]


def test_runtime_exit_releases_every_kind_of_cycle(device):
    class Holder:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as rt:
            v = rt.vector(np.arange(7.0))
            m = rt.matrix(np.ones((5, 4)))
            views = [m.T, m[1:3, :], v[::2], m.row(2), m.col(1)]
            h = Holder()
            h.self = h
            h.arrays = [v, m, *views]
            lst = [v, m]
            lst.append(lst)  # list cycle
            fn_cycle = {}
            fn_cycle["f"] = lambda: (fn_cycle, m)  # closure cycle
            held_bytes = rt.bytes_in_use
            assert held_bytes == (7 + 20) * 8
        assert rt.bytes_in_use == 0 and len(rt._arrays) == 0
        for a in [v, m, *views]:
            assert a.released
            with pytest.raises(clnn.ReleasedError):
                a.to_numpy()
        with pytest.raises(clnn.ReleasedError):
            clnn.mv(m, v[:4])


def test_forgotten_runtime_is_collected(device):
    """A runtime dropped without release (no with block) is freed by the garbage collector,
    its buffers with it. (An owner array refers to itself as its base, so forgotten arrays
    wait for a cyclic collection; an allocation that would not fit runs one first.)"""
    rt = clnn.Runtime(device)
    y = clnn.mv(rt.matrix([[1.0, 2.0]]), rt.vector([1.0, 1.0]))
    assert y.to_numpy()[0] == 3.0
    ref = weakref.ref(rt)
    base = device_bytes_in_use(device) - rt.bytes_in_use
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del rt, y
        gc.collect()
    assert ref() is None
    assert device_bytes_in_use(device) == base


def test_forgotten_big_buffers_do_not_cause_oom(device):
    """Forgotten buffers that together exceed the device are collected before an allocation
    is refused."""
    with clnn.Runtime(device) as rt:
        rt.memory_limit = device_bytes_in_use(device) + (64 << 20)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.disable()
            try:
                for _ in range(20):
                    rt.vector((16 << 20) // 4)  # 16 MiB each, forgotten at once
            finally:
                gc.enable()


def test_accounting_balances_after_mixed_use(device):
    base = device_bytes_in_use(device)
    with clnn.Runtime(device) as rt:
        keep = [rt.vector(n) for n in (1, 3, 17, 301)]
        for _ in range(20):
            with rt.matrix((31, 7)) as t, rt.vector(np.ones(7, np.float32)) as x:
                clnn.mv(t, x).release()
        gc.collect()
        assert rt.bytes_in_use == 4 * (1 + 3 + 17 + 301) and len(keep) == 4
        assert device_bytes_in_use(device) == base + rt.bytes_in_use
    assert device_bytes_in_use(device) == base
