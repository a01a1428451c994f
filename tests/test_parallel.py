"""Data-parallel fit across devices of one process (clnn.nn.parallel): the batch is split across
replicas, their gradients are summed, and training follows the one-device run.

Two runtimes on one device stand in for two devices (separate contexts, queues and buffers,
so every copy between replicas really happens); a child process with
``POCL_DEVICES="pthread pthread"`` checks two real PoCL devices.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tolerances import assert_close

import clnn
from clnn.nn import Dense, Network
from clnn.parallel import replicate, shares


def _data(n, features=12, classes=3, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = np.argmax(x @ rng.normal(size=(features, classes)), axis=1)
    return x, y


def _xent(rt, dtype=np.float32, hidden=17):
    return Network(rt, [Dense(12, hidden, "tanh"), Dense(hidden, 3, "softmax")],
                   loss="cross_entropy", dtype=dtype, seed=0)


def _mse(rt, dtype=np.float32):
    return Network(rt, [Dense(12, 9, "relu"), Dense(9, 2, "linear")], loss="mse",
                   dtype=dtype, seed=3)


def _same(a, b, dtype, n):
    """Weights after training on n samples: every weight is a sum over the n samples'
    contributions, re-ordered by the split (sum of shares vs one sum). Training is not one
    sum, so the scale is the largest weight (a reordered sum perturbs every later step)."""
    ref = a.params.to_numpy().astype(np.float64)  # the one-device run is the reference
    assert_close(b.params.to_numpy(), ref, dtype, k=n, scale=np.abs(ref).max())


def test_shares():
    assert shares(10, 4) == [3, 3, 2, 2]
    assert shares(1, 3) == [1, 0, 0]
    assert sum(shares(1023, 7)) == 1023


@pytest.mark.parametrize("n,batch,workers", [(301, 32, 2), (301, 17, 3), (33, 32, 3)],
                         ids=["301-b32-w2", "301-b17-w3", "33-b32-w3-last-step-1-row"])
def test_split_matches_one_device(rt, device, dtype, n, batch, workers):
    x, y = _data(n)
    extra = [clnn.Runtime(device) for _ in range(workers - 1)]
    try:
        a, b = _xent(rt, dtype), _xent(rt, dtype)
        ha = a.fit(x, y, epochs=2, batch_size=batch, optimizer=clnn.optim.Adam(0.01),
                   verbose=False)
        hb = b.fit(x, y, epochs=2, batch_size=batch, optimizer=clnn.optim.Adam(0.01),
                   verbose=False, devices=[rt] + extra)
        _same(a, b, dtype, 2 * n)
        np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-5)
        np.testing.assert_allclose(hb["accuracy"], ha["accuracy"], atol=1.5 / n)
        p = hb.parallel
        assert p["workers"] == workers and p["local_devices"] == workers and p["ranks"] == 1
        assert p["steps"] == 2 * -(-n // batch) and p["resyncs"] == 0
        assert all(not r.released for r in extra)  # given runtimes are the caller's
    finally:
        for r in extra:
            r.release()


def test_mse_sgd_momentum_validation_and_second_fit(rt, device):
    """Momentum state carries over between fits (replica optimizers start from it); the
    validation columns match; an uneven split (3 workers, batch 20)."""
    x, y = _data(200, classes=2)
    yt = np.stack([x[:, 0] - x[:, 1], x[:, 2]], axis=1)
    xv, yv = _data(37, classes=2, seed=9)
    yvt = np.stack([xv[:, 0] - xv[:, 1], xv[:, 2]], axis=1)
    a, b = _mse(rt), _mse(rt)
    oa, ob = clnn.optim.SGD(0.05, momentum=0.9), clnn.optim.SGD(0.05, momentum=0.9)
    with clnn.Runtime(device) as r2, clnn.Runtime(device) as r3:
        for _ in range(2):
            ha = a.fit(x, yt, epochs=2, batch_size=20, optimizer=oa, validation=(xv, yvt),
                       verbose=False)
            hb = b.fit(x, yt, epochs=2, batch_size=20, optimizer=ob, validation=(xv, yvt),
                       verbose=False, devices=[r2, rt, r3])
    _same(a, b, np.float32, 4 * 200)
    assert sorted(hb) == sorted(ha)
    for key in ("loss", "rmse", "val_loss", "val_rmse", "lr"):
        np.testing.assert_allclose(hb[key], ha[key], rtol=2e-5, err_msg=key)
    va = np.asarray(oa.state()["velocity"], np.float64)
    assert_close(ob.state()["velocity"], va, np.float32, k=800, scale=np.abs(va).max())


def test_one_worker_is_bit_identical_to_fit(rt):
    x, y = _data(101)
    a, b = _xent(rt), _xent(rt)
    ha = a.fit(x, y, epochs=2, batch_size=16, optimizer=clnn.optim.Adam(0.01), verbose=False)
    hb = b.fit(x, y, epochs=2, batch_size=16, optimizer=clnn.optim.Adam(0.01), verbose=False,
               devices=[rt])
    assert np.array_equal(a.params.to_numpy(), b.params.to_numpy())
    assert hb["loss"] == pytest.approx(ha["loss"], rel=1e-12)


def test_device_specs_make_and_release_runtimes(rt, device):
    """A spec equal to the network's device stands for the network; a second one opens a
    runtime for the fit only."""
    x, y = _data(64)
    a, b = _xent(rt), _xent(rt)
    oa, ob = clnn.optim.Adam(0.01), clnn.optim.Adam(0.01)
    a.fit(x, y, epochs=1, batch_size=32, optimizer=oa, verbose=False)
    gc.collect()  # earlier tests' networks die in cycles: not during the count
    before = clnn.runtime.device_bytes_in_use(device)
    h = b.fit(x, y, epochs=1, batch_size=32, optimizer=ob, verbose=False,
              devices=[device.spec, device.spec])
    assert h.parallel["workers"] == 2
    adam_state = 2 * b.params.n * 4  # m and s of b's optimizer stay; the replica's are gone
    gc.collect()
    assert clnn.runtime.device_bytes_in_use(device) == before + adam_state
    _same(a, b, np.float32, 64)


def test_replicate(rt, device):
    net = _xent(rt)
    with clnn.Runtime(device) as r2:
        twin = replicate(net, r2)
        assert twin.runtime is r2 and twin.config() == net.config()
        assert np.array_equal(twin.params.to_numpy(), net.params.to_numpy())
        x, _ = _data(5)
        np.testing.assert_array_equal(twin.predict(x), net.predict(x))


@pytest.mark.parametrize("case", ["missing-own", "repeat", "empty", "small-batch", "released",
                                  "not-a-list", "bad-spec"])
def test_bad_devices_raise_before_any_work(rt, device, case):
    x, y = _data(40)
    net = _xent(rt)
    before = net.params.to_numpy()
    opt = clnn.optim.Adam(0.01)
    with clnn.Runtime(device) as r2, clnn.Runtime(device) as r3:
        gone = clnn.Runtime(device)
        gone.release()
        devs, batch, err, text = {
            "missing-own": ([r2, r3], 8, clnn.OperandError, "network's own device"),
            "repeat": ([rt, r2, r2], 8, clnn.OperandError, "repeats a runtime"),
            "empty": ([], 8, clnn.ShapeError, "empty"),
            "small-batch": ([rt, r2, r3], 2, clnn.ShapeError, "cannot be split across 3"),
            "released": ([rt, gone], 8, clnn.ReleasedError, "released"),
            "not-a-list": ("cpu", 8, clnn.OperandError, "list"),
            "bad-spec": ([rt, "no such device xyz"], 8, clnn.DeviceError, "matches no"),
        }[case]
        with pytest.raises(err, match=text):
            net.fit(x, y, epochs=1, batch_size=batch, optimizer=opt, verbose=False,
                    devices=devs)
    assert np.array_equal(net.params.to_numpy(), before)
    assert opt.t == 0


def test_bad_data_with_devices_is_the_usual_error(rt, device):
    net = _xent(rt)
    x, y = _data(20)
    y[3] = 7
    with clnn.Runtime(device) as r2:
        with pytest.raises(clnn.nn.DataError, match="out of range"):
            net.fit(x, y, epochs=1, verbose=False, devices=[rt, r2])


def _pocl_two_devices_env():
    """POCL_DEVICES naming PoCL's CPU driver twice (called "pthread" in PoCL < 4, "cpu"
    after), or None when PoCL is not the platform here."""
    plats = {d.platform for d in clnn.devices()}
    if not any("Portable Computing Language" in p for p in plats):
        return None
    return ["pthread pthread", "cpu cpu"]


CHILD = textwrap.dedent("""
    import numpy as np, clnn
    from clnn.nn import Dense, Network
    # two CPU devices of one PoCL platform (a machine may have two PoCL installations, e.g.
    # the PyPI one and Debian's, each of which then shows two devices)
    by_platform = {}
    for d in clnn.devices():
        if "Portable" in d.platform:
            by_platform.setdefault(d.spec.split(":")[0], []).append(d)
    two = [v for v in by_platform.values() if len(v) == 2]
    assert two, by_platform
    devs = two[0]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(301, 12)); y = np.argmax(x @ rng.normal(size=(12, 3)), axis=1)
    def net(rt):
        return Network(rt, [Dense(12, 17, "tanh"), Dense(17, 3, "softmax")],
                       loss="cross_entropy", seed=0)
    with clnn.Runtime(devs[0]) as rt:
        a, b = net(rt), net(rt)
        a.fit(x, y, epochs=2, batch_size=32, optimizer=clnn.optim.Adam(0.01), verbose=False)
        h = b.fit(x, y, epochs=2, batch_size=32, optimizer=clnn.optim.Adam(0.01),
                  verbose=False, devices=[devs[0].spec, devs[1].spec])
        pa, pb = a.params.to_numpy(), b.params.to_numpy()
        print("DEVICES", devs[0].spec, devs[1].spec, "WORKERS", h.parallel["workers"],
              "MAXDIFF", float(np.abs(pa - pb).max()), "SCALE", float(np.abs(pa).max()))
""")


def test_two_pocl_devices_in_one_process():
    """The issue's recipe: PoCL's CPU device asked for twice is two devices of one
    platform; fit(devices=[both]) matches one device."""
    envs = _pocl_two_devices_env()
    if envs is None:
        pytest.skip("PoCL is not installed here; POCL_DEVICES cannot make two devices")
    root = os.path.dirname(os.path.dirname(os.path.abspath(clnn.__file__)))
    out = None
    for pd in envs:
        env = dict(os.environ, POCL_DEVICES=pd, POCL_MAX_PTHREAD_COUNT="1",
                   PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("CLNN_DEVICE", None)
        env.pop("PYOPENCL_CTX", None)
        r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode == 0:
            out = r.stdout
            break
    assert out is not None, f"no POCL_DEVICES value gave two devices: {r.stderr[-2000:]}"
    f = out.split()
    assert f[f.index("WORKERS") + 1] == "2"
    diff, scale = float(f[f.index("MAXDIFF") + 1]), float(f[f.index("SCALE") + 1])
    assert diff <= 2e-5 * scale, out


def test_a_replica_that_drifts_is_brought_back(rt, device):
    """Devices that round differently would let replicas drift apart: the end-of-epoch check
    copies worker 0's weights over any replica that differs."""
    from clnn.nn.parallel import _check_replicas, _Worker

    net = _xent(rt)
    with clnn.Runtime(device) as r2:
        twin = replicate(net, r2)
        w = twin.params.to_numpy()
        w[5] += 1e-3
        twin.params.set(w)
        stats = {"resyncs": 0}
        workers = [_Worker(net, None, rt, False, 0), _Worker(twin, None, r2, False, 1)]
        _check_replicas(workers, None, stats)
        assert stats["resyncs"] == 1
        assert np.array_equal(twin.params.to_numpy(), net.params.to_numpy())
        _check_replicas(workers, None, stats)
        assert stats["resyncs"] == 1


def test_divergence_stops_data_parallel_fit_and_rewinds(rt, device):
    """As in Network.fit: a NaN/Inf epoch loss raises DivergenceError with the weights of the
    diverged epoch's start; on_divergence="continue" trains on."""
    x = np.random.default_rng(0).normal(size=(64, 3))
    y = x @ np.array([[1.0], [2.0], [3.0]])
    net = Network(rt, [Dense(3, 8, "relu"), Dense(8, 1)], seed=0)
    starts = [net.params.to_numpy()]
    with clnn.Runtime(device) as r2:
        with pytest.raises(clnn.nn.DivergenceError) as e:
            net.fit(x, y, epochs=20, optimizer=clnn.optim.SGD(10.0), verbose=False,
                    devices=[rt, r2], on_epoch=lambda ep, logs: starts.append(
                        net.params.to_numpy()))
        err = e.value
        assert len(err.history["loss"]) == err.epoch + 1 == len(starts)
        assert not np.isfinite(err.history["loss"][-1]) and "epoch" in str(err)
        np.testing.assert_array_equal(net.params.to_numpy(), starts[err.epoch])
        h = net.fit(x, y, epochs=2, optimizer=clnn.optim.SGD(10.0), verbose=False,
                    devices=[rt, r2], on_divergence="continue")
        assert len(h["loss"]) == 2
        with pytest.raises(clnn.OperandError, match="on_divergence"):
            net.fit(x, y, devices=[rt, r2], on_divergence=False)
    net.release()
