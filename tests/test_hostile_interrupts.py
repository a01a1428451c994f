"""Hostile input, interrupts: KeyboardInterrupt during ``fit`` and during ``save`` leaves the
last saved model intact and the runtime usable.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from hostile import runtime_still_works

import clnn


def _net(rt, seed=0):
    from clnn.nn import Dense, Network

    return Network(rt, [Dense(8, 16, "relu"), Dense(16, 3, "softmax")], loss="cross_entropy",
                   seed=seed)


def _data(n=512):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    return x, y


def test_keyboard_interrupt_in_fit_keeps_saved_model_and_runtime(rt, tmp_path):
    x, y = _data()
    path = tmp_path / "model.npz"
    net = _net(rt)
    net.fit(x, y, epochs=1, batch_size=32, verbose=False)
    net.save(path)
    saved = path.read_bytes()
    want = net.predict(x[:10])

    def stop(epoch, logs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(x, y, epochs=5, batch_size=32, verbose=False, on_epoch=stop)
    assert path.read_bytes() == saved
    back = clnn.load(path, rt)
    np.testing.assert_allclose(back.predict(x[:10]), want, rtol=1e-6)
    # the interrupted network and the runtime both still work
    net.fit(x, y, epochs=1, batch_size=64, verbose=False)
    assert np.isfinite(net.evaluate(x, y)["loss"])
    runtime_still_works(rt, np.float32)


def test_sigint_in_the_middle_of_fit(rt, tmp_path):
    """A real SIGINT (Ctrl-C) lands at an arbitrary point inside fit's loop."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    x, y = _data(4096)
    path = tmp_path / "model.npz"
    net = _net(rt, seed=1)
    net.save(path)
    saved = path.read_bytes()
    for delay in (0.001, 0.01, 0.05):
        timer = threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            net.fit(x, y, epochs=200, batch_size=16, verbose=False)
        except KeyboardInterrupt:
            pass
        finally:
            timer.join()
        assert path.read_bytes() == saved
        net.fit(x[:64], y[:64], epochs=1, verbose=False)  # usable again
    runtime_still_works(rt, np.float32)


def test_keyboard_interrupt_during_save_keeps_previous_file(rt, tmp_path, monkeypatch):
    net = _net(rt, seed=2)
    path = tmp_path / "model.npz"
    net.save(path)
    saved = path.read_bytes()
    x, y = _data()
    net.fit(x, y, epochs=1, verbose=False)

    real = np.savez

    def interrupted(file, *a, **k):
        real(file, *a, **k)
        raise KeyboardInterrupt  # after writing the temporary file, before the rename

    monkeypatch.setattr(np, "savez", interrupted)
    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == saved
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"], "temporary file left behind"
    clnn.load(path, rt)
    runtime_still_works(rt, np.float32)

