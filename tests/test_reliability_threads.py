"""Threads: one runtime used from 8 threads at once gives exactly the single-threaded results;
releasing the runtime while threads work makes them raise ReleasedError, never crash or hang.

The threading model is documented in clnn/runtime.py and docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import clnn

NTHREADS = 8


def _inputs(rt, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    f = np.float32
    return {
        "a": rt.matrix(rng.standard_normal((33, 1000)).astype(f)),
        "wide": rt.matrix(rng.standard_normal((16, 20000)).astype(f)),  # split gemv
        "tall": rt.matrix(np.asfortranarray(rng.standard_normal((3000, 24)).astype(f))),
        "x": rt.vector(rng.standard_normal(20000).astype(f)),
        "b": rt.matrix(rng.standard_normal((1000, 29)).astype(f)),  # packed gemm (CPU)
        "s": rt.matrix(rng.standard_normal((7, 5)).astype(f)),  # reference gemm
        "bias": rt.vector(rng.standard_normal(29).astype(f)),
    }


def _outputs(rt) -> dict:
    return {"y1": rt.vector(33), "y2": rt.vector(1000), "y3": rt.vector(16),
            "y4": rt.vector(3000), "c1": rt.matrix((33, 29)), "c2": rt.matrix((7, 7)),
            "e1": rt.matrix((33, 29)), "e2": rt.matrix((33, 29)), "r": rt.vector(29),
            "v": rt.vector(1000)}


def _workload(shared: dict, mine: dict, out: dict) -> dict:
    """mv (row, col, split, tall), mm (packed and reference), elementwise, BLAS-1 and a
    reduction: every result read back to the host."""
    a, x = mine["a"], shared["x"]
    x1000 = x[:1000]
    clnn.mv(a, x1000, out=out["y1"], alpha=1.5)
    clnn.mv(shared["a"].T, x[:33], out=out["y2"])
    clnn.mv(mine["wide"], x, out=out["y3"])
    clnn.mv(mine["tall"], x[:24], out=out["y4"], alpha=-1.0)
    clnn.mm(a, shared["b"], out=out["c1"])
    clnn.mm(mine["s"], mine["s"].T, out=out["c2"])
    clnn.add_bias(out["c1"], mine["bias"], axis=1, activation="tanh", out=out["e1"])
    clnn.mul(out["e1"], out["c1"], out=out["e2"])
    clnn.sum(out["e2"], axis=0, out=out["r"])
    clnn.axpy(2.0, x1000, out["y2"], out=out["v"])
    res = {k: v.to_numpy() for k, v in out.items()}
    res["dot"] = np.array(clnn.dot(x1000, out["v"]))
    res["nrm2"] = np.array(clnn.nrm2(out["y4"]))
    return res


def _same(got: dict, want: dict, where: str) -> None:
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), \
            f"{where}: {k} differs from the single-threaded result"


def _run_threads(fn, n: int = NTHREADS) -> list:
    errors: list = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            barrier.wait()
            fn(i)
        except BaseException as e:  # noqa: B036 - reported to the main thread
            errors.append((i, e))

    ts = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ts), "a thread hangs"
    return errors


@pytest.mark.parametrize("reps", [pytest.param(6, id="6reps"),
                                  pytest.param(60, id="60reps", marks=pytest.mark.slow)])
def test_one_runtime_eight_threads_same_results(device, reps):
    with clnn.Runtime(device) as rt:
        shared = _inputs(rt, 0)
        mine = [_inputs(rt, 100 + i) for i in range(NTHREADS)]
        outs = [_outputs(rt) for _ in range(NTHREADS)]
        want = [_workload(shared, mine[i], outs[i]) for i in range(NTHREADS)]

        def work(i):
            for r in range(reps):
                _same(_workload(shared, mine[i], outs[i]), want[i], f"thread {i} rep {r}")

        errors = _run_threads(work)
        assert not errors, errors[:3]


def test_threads_with_a_runtime_each(device):
    want = {}
    with clnn.Runtime(device) as rt:
        want = _workload(_inputs(rt, 0), _inputs(rt, 1), _outputs(rt))

    def work(i):
        with clnn.Runtime(device) as rt:
            for _ in range(3):
                _same(_workload(_inputs(rt, 0), _inputs(rt, 1), _outputs(rt)), want,
                      f"thread {i}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        errors = _run_threads(work)
    assert not errors, errors[:3]


def test_first_calls_race_to_build_the_same_kernels(device):
    """Eight threads ask for a kernel variant nobody built yet, at the same moment."""
    with clnn.Runtime(device) as rt:
        rng = np.random.default_rng(5)
        host = rng.standard_normal((45, 61)).astype(np.float32)
        a = rt.matrix(host)
        x = rt.vector(host[0])
        outs = [rt.vector(45) for _ in range(NTHREADS)]
        cs = [rt.matrix((45, 45)) for _ in range(NTHREADS)]

        def work(i):
            clnn.mv(a, x, out=outs[i])
            clnn.mm(a, a.T, out=cs[i])
            clnn.tanh(cs[i], out=cs[i])

        errors = _run_threads(work)
        assert not errors, errors[:3]
        first_y, first_c = outs[0].to_numpy(), cs[0].to_numpy()
        for i in range(1, NTHREADS):
            assert np.array_equal(outs[i].to_numpy(), first_y)
            assert np.array_equal(cs[i].to_numpy(), first_c)


def test_allocation_and_release_from_many_threads(device):
    with clnn.Runtime(device) as rt:
        def work(i):
            for k in range(200):
                with rt.vector(np.full(17 + i, k, np.float32)) as v:
                    assert v.to_numpy()[i] == k
                rt.matrix((3, 5 + i)).release()

        errors = _run_threads(work)
        assert not errors, errors[:3]
        assert rt.bytes_in_use == 0 and len(rt._arrays) == 0


def test_garbage_collection_on_another_thread(device):
    """Forgotten buffers freed by the collector while other threads launch kernels."""
    import gc

    with clnn.Runtime(device) as rt, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        a = rt.matrix(np.ones((64, 64), np.float32))
        x = rt.vector(np.ones(64, np.float32))

        def work(i):
            y = rt.vector(64)
            for k in range(300):
                clnn.mv(a, x, out=y)
                rt.vector(100)  # forgotten
                if i == 0 and k % 50 == 0:
                    gc.collect()
            assert np.all(y.to_numpy() == 64)

        errors = _run_threads(work)
        gc.collect()
        assert not errors, errors[:3]
        assert len(rt._arrays) == 2


# ---- releasing the runtime under running threads (child process: a crash must not take the
# test run with it) ---------------------------------------------------------------------------
_CHILD = r"""
import json, sys, threading, time, warnings, numpy as np, clnn
warnings.simplefilter("ignore")
trials, seen, started = int(sys.argv[1]), {}, []
for t in range(trials):
    rt = clnn.Runtime()
    a = rt.matrix(np.ones((300, 300), np.float32))
    x = rt.vector(np.ones(300, np.float32))
    b = rt.matrix(np.ones((300, 40), np.float32))
    go = threading.Event()
    def work(i):
        y = None
        try:
            y = rt.vector(300)
            c = rt.matrix((300, 40))
            go.wait()
            for k in range(100000):
                clnn.mv(a, x, out=y)
                if k % 3 == 0:
                    clnn.mm(a, b, out=c)
                    clnn.tanh(c, out=c)
                if k % 7 == 0:
                    clnn.dot(x, y)
                if k % 11 == 0:
                    y.to_numpy()
                if k % 13 == 0:
                    rt.vector(10).release()
            seen["finished"] = seen.get("finished", 0) + 1
        except clnn.ReleasedError:
            seen["ReleasedError"] = seen.get("ReleasedError", 0) + 1
        except BaseException as e:
            key = type(e).__name__ + ": " + str(e)[:200]
            seen[key] = seen.get(key, 0) + 1
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in ts:
        th.start()
    go.set()
    time.sleep(0.001 * (t % 7) * (t % 3))
    rt.release()
    for th in ts:
        th.join(60)
        if th.is_alive():
            seen["hung"] = seen.get("hung", 0) + 1
print(json.dumps(seen))
"""


def _child(trials: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(trials)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"child died with {r.returncode}:\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("trials", [pytest.param(10, id="10trials"),
                                    pytest.param(100, id="100trials",
                                                 marks=pytest.mark.slow)])
def test_release_while_threads_work(device, trials, monkeypatch):
    monkeypatch.setenv("CLNN_DEVICE", device.spec)
    seen = _child(trials)
    assert set(seen) <= {"ReleasedError", "finished"}, seen
    assert seen.get("ReleasedError", 0) + seen.get("finished", 0) == 8 * trials


_CHILD_ARRAY = r"""
import sys, threading, time, warnings, numpy as np, clnn
warnings.simplefilter("ignore")
with clnn.Runtime() as rt:
    a = rt.matrix(np.ones((300, 300), np.float32))
    for trial in range(int(sys.argv[1])):
        x = rt.vector(np.ones(300, np.float32))
        y = rt.vector(300)
        def work():
            try:
                for _ in range(3000):
                    clnn.mv(a, x, out=y)
            except clnn.ReleasedError:
                pass
        t = threading.Thread(target=work)
        t.start()
        time.sleep(0.001 * (trial % 5))
        x.release()  # while the thread uses x: documented as unsafe
        t.join()
        y.release()
print("survived")
"""


def test_release_array_while_another_thread_uses_it(device, monkeypatch):
    monkeypatch.setenv("CLNN_DEVICE", device.spec)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, "-c", _CHILD_ARRAY, "20"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "survived" in r.stdout, f"exit status {r.returncode}"
