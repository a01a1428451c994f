"""What a simulator cannot show: device limits, forced.

``clnn.Runtime(info)`` takes the limits in a :class:`clnn.DeviceInfo` as given, so a copy with
other values (:func:`limited`) makes clnn act as on a device with those limits, on the same
hardware. Every test here runs on every device under test:

* small work-groups (``max_work_group_size`` 1 as the device is, 1 and 64 as a GPU): every
  op family gives right results against float64 numpy, and no launch's local size exceeds the
  forced maximum or the built kernel's ``CL_KERNEL_WORK_GROUP_SIZE`` (every enqueue is
  watched);
* a kernel that allows fewer work-items than the device (``CL_KERNEL_WORK_GROUP_SIZE``
  faked small): the work-group size is lowered to fit, or the call fails clearly
  (:class:`clnn.KernelLimitError`) before anything is enqueued;
* no fp64: float64 is refused with :class:`clnn.UnsupportedError` before anything is
  allocated or written, float32 still right;
* local memory: a kernel needing more than the device's ``local_mem`` fails clearly when it
  is prepared, not at enqueue;
* no coherent caches between work-groups on non-CPU devices: gemv's ACC=2 (last-group
  pattern) is never chosen for them.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import numpy as np
import pyopencl as cl
import pytest
from tolerances import assert_close

import clnn
from clnn import launch, tuning
from clnn.nn import Dense, Network

gemv_mod = importlib.import_module("clnn.gemv")
tune_gemv = importlib.import_module("clnn.tune.gemv")
F32 = np.float32


def limited(device: clnn.DeviceInfo, **limits) -> clnn.DeviceInfo:
    """``device`` with some limits forced (e.g. ``max_work_group_size=1``, ``fp64=False``,
    ``type="GPU"``, ``local_mem=1024``): a Runtime made from it obeys them."""
    return dataclasses.replace(device, **limits)


LIMITS = {
    "wgs1": {"max_work_group_size": 1},
    "gpu-wgs1": {"type": "GPU", "max_work_group_size": 1},
    "gpu-wgs64": {"type": "GPU", "max_work_group_size": 64},
}


@pytest.fixture(scope="module", autouse=True)
def private_tuning_db(tmp_path_factory):
    """No user tuning database: the defaults derived from the forced limits are used."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLNN_TUNING_DB", str(tmp_path_factory.mktemp("tuning") / "none.json"))
        tuning.clear_cache()
        yield
    tuning.clear_cache()


@pytest.fixture(scope="module", params=list(LIMITS))
def lrt(device, request):
    """A runtime on ``device`` with the forced limits of ``LIMITS[param]``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(limited(device, **LIMITS[request.param])) as r:
            yield r


@pytest.fixture
def launches(monkeypatch):
    """Every kernel enqueue of the test: (kernel, local size, device)."""
    seen = []
    real = cl.enqueue_nd_range_kernel

    def spy(queue, kernel, gsize, lsize, *args, **kw):
        seen.append((kernel, lsize, queue.device))
        return real(queue, kernel, gsize, lsize, *args, **kw)

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", spy)
    return seen


def _items(lsize) -> int:
    return int(np.prod(lsize)) if lsize is not None else 1


def assert_launches_fit(seen, rt, most=None):
    """Every local size is within the (forced) device maximum, ``most`` and the built
    kernel's own CL_KERNEL_WORK_GROUP_SIZE."""
    assert seen, "no kernel was launched"
    cap = rt.device.max_work_group_size if most is None else most
    for kernel, lsize, dev in seen:
        n = _items(lsize)
        own = kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, dev)
        assert n <= cap and n <= own, (kernel.function_name, lsize, cap, own)


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


# ---- (b) small work-groups: every op family ------------------------------------------------
def _gemv_ok(rt, rng):
    for (m, n) in ((37, 29), (301, 3), (3, 301), (40, 2000)):
        A = _rand(rng, m, n)
        for layout in ("row", "col"):
            for trans in (False, True):
                opA = A.T if trans else A
                x = _rand(rng, opA.shape[1])
                with rt.matrix(A, layout=layout) as a, rt.vector(x) as xv, \
                        rt.vector(opA.shape[0]) as y:
                    clnn.mv(a.T if trans else a, xv, out=y)
                    clnn.mv(a.T if trans else a, xv, out=y)  # the memoised repeat
                    A64, x64 = opA.astype(np.float64), x.astype(np.float64)
                    assert_close(y.to_numpy(), A64 @ x64, F32, k=opA.shape[1],
                                 scale=np.abs(A64) @ np.abs(x64))


def test_gemv_small_work_groups(lrt, launches, rng):
    _gemv_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _gemm_ok(rt, rng):
    for la, lb in (("row", "row"), ("col", "row"), ("row", "col")):
        A, B = _rand(rng, 33, 29), _rand(rng, 29, 17)
        with rt.matrix(A, layout=la) as a, rt.matrix(B, layout=lb) as b, clnn.mm(a, b) as c:
            A64, B64 = A.astype(np.float64), B.astype(np.float64)
            assert_close(c.to_numpy(), A64 @ B64, F32, k=29, scale=np.abs(A64) @ np.abs(B64))


def test_gemm_small_work_groups(lrt, launches, rng):
    _gemm_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _blas1_ok(rt, rng):
    n = 3001
    hx, hy = _rand(rng, n), _rand(rng, n)
    x64, y64 = hx.astype(np.float64), hy.astype(np.float64)
    with rt.vector(hx) as x, rt.vector(hy) as y:
        assert_close(clnn.dot(x, y), x64 @ y64, F32, k=n, scale=np.abs(x64) @ np.abs(y64))
        nrm = np.linalg.norm(x64[::3])
        assert_close(clnn.nrm2(x[::3]), nrm, F32, k=n, scale=nrm)
        assert_close(clnn.asum(y), np.abs(y64).sum(), F32, k=n, scale=np.abs(y64).sum())
        assert clnn.iamax(y) == int(np.argmax(np.abs(hy)))
        clnn.axpy(-1.5, x, y)
        assert_close(y.to_numpy(), y64 - 1.5 * x64, F32,
                     scale=np.abs(y64) + 1.5 * np.abs(x64))
        clnn.swap(x, y)
        assert_close(x.to_numpy(), y64 - 1.5 * x64, F32,
                     scale=np.abs(y64) + 1.5 * np.abs(x64))
        np.testing.assert_array_equal(y.to_numpy(), hx)


def test_blas1_small_work_groups(lrt, launches, rng):
    _blas1_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _reduce_ok(rt, rng):
    ha = _rand(rng, 67, 45)
    a64 = ha.astype(np.float64)
    with rt.matrix(ha) as a:
        for axis in (0, 1):
            with clnn.sum(a, axis=axis) as s:
                assert_close(s.to_numpy(), a64.sum(axis=axis), F32, k=ha.shape[axis],
                             scale=np.abs(a64).sum(axis=axis))
            with clnn.max(a.T, axis=axis) as mx:
                np.testing.assert_array_equal(mx.to_numpy(), ha.T.max(axis=axis))
            with clnn.argmax(a, axis=axis) as am:
                np.testing.assert_array_equal(am.to_numpy(), np.argmax(ha, axis=axis))
        assert clnn.max(a) == ha.max()


def test_reduce_small_work_groups(lrt, launches, rng):
    _reduce_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _elementwise_ok(rt, rng):
    ha, hb = _rand(rng, 67, 45), _rand(rng, 45)
    a64, b64 = ha.astype(np.float64), hb.astype(np.float64)
    with rt.matrix(ha) as a, rt.vector(hb) as b:
        with clnn.tanh(a) as t:
            assert_close(t.to_numpy(), np.tanh(a64), F32)
        with clnn.mul(a, a) as p:
            assert_close(p.to_numpy(), a64 * a64, F32)
        with clnn.add_bias(a, b, axis=1, activation="sigmoid") as g:
            assert_close(g.to_numpy(), 1 / (1 + np.exp(-(a64 + b64))), F32)


def test_elementwise_small_work_groups(lrt, launches, rng):
    _elementwise_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _train_step_ok(rt, rng):
    """One SGD step of a tanh -> softmax network (cross-entropy) against float64 numpy
    backpropagation from the same weights."""
    n, d, h, c, lr = 23, 5, 7, 3, 0.5
    net = Network(rt, [Dense(d, h, "tanh"), Dense(h, c, "softmax")], loss="cross_entropy",
                  dtype=F32, seed=3)
    x = rng.standard_normal((n, d)).astype(F32)
    y = rng.integers(0, c, n)
    W1, W2 = (L.weights.to_numpy().astype(np.float64) for L in net.layers)
    b1, b2 = (L.bias.to_numpy().astype(np.float64) for L in net.layers)
    x64 = x.astype(np.float64)
    a1 = np.tanh(x64 @ W1.T + b1)
    z2 = a1 @ W2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = p.copy()
    dz2[np.arange(n), y] -= 1
    dz2 /= n
    dz1 = (dz2 @ W2) * (1 - a1 ** 2)
    grads = [dz1.T @ x64, dz1.sum(0), dz2.T @ a1, dz2.sum(0)]
    # sums of magnitudes: the error a float32 forward + backward may make
    mz2 = (np.abs(p) + 1) / n
    mz1 = mz2 @ np.abs(W2)
    scales = [mz1.T @ np.abs(x64), mz1.sum(0), mz2.T @ np.abs(a1), mz2.sum(0)]
    net.fit(x, y, epochs=1, batch_size=n, optimizer=clnn.optim.SGD(lr), shuffle=False,
            verbose=False)
    got = [net.layers[0].weights, net.layers[0].bias, net.layers[1].weights,
           net.layers[1].bias]
    for g, old, want, sc in zip(got, (W1, b1, W2, b2), grads, scales):
        assert_close(g.to_numpy(), old - lr * want, F32, k=n + h + d,
                     scale=np.abs(old) + lr * sc)
    net.release()


def test_nn_training_step_small_work_groups(lrt, launches, rng):
    _train_step_ok(lrt, rng)
    assert_launches_fit(launches, lrt)


def _optim_ok(rt):
    """Two Adam steps against float64 numpy (betas exact in float32)."""
    g = np.linspace(-1, 1, 1023).astype(F32)
    b1, b2, lr, eps = 0.75, 0.9921875, 0.125, 1e-8
    with rt.vector(np.zeros(1023, F32)) as p, rt.vector(g) as gd:
        opt = clnn.optim.Adam(lr, betas=(b1, b2), eps=eps)
        opt.step(p, gd)
        opt.step(p, gd)
        g64 = g.astype(np.float64)
        m, v, want = np.zeros(1023), np.zeros(1023), np.zeros(1023)
        for t in (1, 2):
            m = b1 * m + (1 - b1) * g64
            v = b2 * v + (1 - b2) * g64 ** 2
            want -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        assert_close(p.to_numpy(), want, F32, k=4, scale=np.abs(want) + 1e-7)


def test_optim_small_work_groups(lrt, launches):
    _optim_ok(lrt)
    assert_launches_fit(launches, lrt)


# ---- (a) a kernel allowing fewer work-items than the device -------------------------------
KERNEL_LIMIT = 8


@pytest.fixture
def small_kernels(device, monkeypatch):
    """A GPU-typed runtime (work-groups of up to 64) whose built kernels all report a
    CL_KERNEL_WORK_GROUP_SIZE of at most KERNEL_LIMIT (as register-heavy kernels do)."""
    real = launch._query

    def fake(kernel, dev):
        wg, local = real(kernel, dev)
        return min(wg, KERNEL_LIMIT), local

    monkeypatch.setattr(launch, "_query", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(limited(device, type="GPU", max_work_group_size=64)) as r:
            yield r


def test_kernel_limit_lowers_the_work_group_size(small_kernels, launches, rng):
    """gemv falls back (warning) to WGS lowered to what the kernel allows; blas1, reduce,
    elementwise, nn and optim rebuild with a fitting size; results stay right."""
    rt = small_kernels
    with pytest.warns(tuning.TuningWarning, match="WGS lowered to fit the kernel"):
        _gemv_ok(rt, rng)
    _blas1_ok(rt, rng)
    _reduce_ok(rt, rng)
    _elementwise_ok(rt, rng)
    _train_step_ok(rt, rng)
    _optim_ok(rt)
    assert_launches_fit(launches, rt, most=KERNEL_LIMIT)
    assert max(_items(ls) for _, ls, _ in launches) == KERNEL_LIMIT  # lowered, not to 1


def test_kernel_limit_fails_clearly_when_nothing_fits(small_kernels, launches, rng):
    """The tiled gemm needs TS x TS/WPT work-items (no WGS to lower): a clear
    KernelLimitError when it is prepared, nothing enqueued, the output untouched."""
    rt = small_kernels
    with rt.matrix(_rand(rng, 33, 29)) as a, rt.matrix(_rand(rng, 29, 17)) as b, \
            rt.matrix(np.full((33, 17), 7, F32)) as c:
        launches.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tuning.TuningWarning)
            with pytest.raises(clnn.KernelLimitError, match=f"at most {KERNEL_LIMIT} work-items"):
                clnn.mm(a, b, out=c)
        assert not launches
        np.testing.assert_array_equal(c.to_numpy(), 7)


# ---- (c) no fp64 ---------------------------------------------------------------------------
def test_no_fp64(device, launches, rng):
    with clnn.Runtime(limited(device, fp64=False)) as rt:
        before = rt.allocations
        for make in (lambda: rt.vector(np.zeros(3)), lambda: rt.vector(3, dtype=np.float64),
                     lambda: rt.matrix(np.eye(2)), lambda: rt.zeros((2, 2), np.float64),
                     lambda: Network(rt, [Dense(2, 2, "tanh")], dtype=np.float64)):
            with pytest.raises(clnn.UnsupportedError, match="float64 needs cl_khr_fp64"):
                make()
        assert rt.allocations == before and rt.bytes_in_use == 0 and not launches
        _gemv_ok(rt, rng)
        _gemm_ok(rt, rng)
        _blas1_ok(rt, rng)


# ---- (d) local memory ----------------------------------------------------------------------
def test_local_memory_beyond_the_device_fails_clearly(device, launches, rng):
    """gemv's work-group tree needs RPT x WGS elements of local memory: on a device with
    32 bytes of it the kernel is refused when prepared (KernelLimitError naming both sizes),
    nothing is enqueued and the output is untouched."""
    with clnn.Runtime(limited(device, type="GPU", max_work_group_size=64, local_mem=32)) as rt:
        with rt.matrix(_rand(rng, 37, 29)) as a, rt.vector(_rand(rng, 29)) as x, \
                rt.vector(np.full(37, 5, F32)) as y:
            launches.clear()
            with pytest.raises(clnn.KernelLimitError, match="bytes of local memory, more "
                                                            "than the 32"):
                clnn.mv(a, x, out=y)
            assert not launches
            np.testing.assert_array_equal(y.to_numpy(), 5)


def test_small_local_memory_picks_fitting_tiles(device, launches, rng):
    """The tiled gemm's defaults fit a device with 1 KiB of local memory, and run."""
    with clnn.Runtime(limited(device, type="GPU", local_mem=1024)) as rt:
        _gemm_ok(rt, rng)
        for kernel, _, dev in launches:
            used = kernel.get_work_group_info(cl.kernel_work_group_info.LOCAL_MEM_SIZE, dev)
            assert used <= 1024, (kernel.function_name, used)


# ---- (e) no coherent caches between work-groups on non-CPU devices -------------------------
def test_last_group_pattern_never_on_non_cpu(device, tmp_path, monkeypatch, rng):
    """gemv's ACC=2 (persistent work-groups; the last one adds the others' partial sums)
    relies on a CPU's coherent caches: a GPU-typed device never gets it -- not from the
    defaults or the shipped values of any size class, not from the tuner, and not from a
    tuning database entry (ignored with a warning)."""
    gpu = limited(device, type="GPU")
    for dt in ("float", "double"):
        for sc in gemv_mod.SIZE_CLASSES:
            assert tuning.defaults(gpu, "gemv", "col", dt, sc)["ACC"] != 2
        assert all(p.get("ACC") != 2 for _, _, p in tune_gemv.candidates(gpu, dt, True))
    with pytest.raises(ValueError, match="ACC=2 is for CPU devices"):
        tuning.check(gpu, "gemv", "col", "float", {"ACC": 2, "WGS": 1})
    monkeypatch.setenv("CLNN_TUNING_DB", str(tmp_path / "tuning.json"))
    tuning.clear_cache()
    tuning.store(gpu, "gemv", "col", "float", tuning.ANY,
                 {"ACC": 2, "WGS": 1, "VW": 4, "MB": 64, "NG": 2, "PAN": 8})
    with clnn.Runtime(gpu) as rt:
        A, x = _rand(rng, 300, 400), _rand(rng, 400)
        with rt.matrix(A, layout="col") as a, rt.vector(x) as xv, rt.vector(300) as y:
            with pytest.warns(tuning.TuningWarning, match="ACC=2 is for CPU devices"):
                clnn.mv(a, xv, out=y)
            calls = [c for c in gemv_mod._cache(rt).values() if isinstance(c, gemv_mod._Call)]
            assert calls and all(c.params["ACC"] != 2 and c.ctr is None for c in calls)
            A64, x64 = A.astype(np.float64), x.astype(np.float64)
            assert_close(y.to_numpy(), A64 @ x64, F32, k=400, scale=np.abs(A64) @ np.abs(x64))
    tuning.clear_cache()
