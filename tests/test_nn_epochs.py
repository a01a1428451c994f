"""The epoch loop (clnn.nn.epochs) that one-device and data-parallel fit share: the order of
the random draws (shuffles from the network's generator or ``seed``'s), the steps and the
remainder batch, the summary and the history stay as they were.

The recorded numbers are projections of the trained weights onto fixed random directions
(float64 training, so reordered float sums move them by ~1e-13 relative, while a different
shuffle or a skipped/duplicated step moves them by far more than the tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

import clnn
from clnn.nn import Dense, Network
from clnn.nn.epochs import batches, summary


def _data(n, seed):
    """n samples of 5 features and class labels by one fixed linear rule."""
    x = np.random.default_rng(seed).normal(size=(n, 5))
    return x, np.argmax(x @ np.random.default_rng(0).normal(size=(5, 3)), axis=1)


def _targets(x):
    return np.stack([x[:, 0] - x[:, 1], np.tanh(x[:, 2])], axis=1)


def _net(rt, loss="cross_entropy"):
    last = Dense(7, 3, "softmax") if loss == "cross_entropy" else Dense(7, 2)
    return Network(rt, [Dense(5, 7, "tanh"), last], loss=loss, dtype=np.float64, seed=11)


def _fingerprint(net):
    """Four projections of the weights (float64) onto fixed random directions."""
    w = net.params.to_numpy().astype(np.float64)
    return np.random.default_rng(3).normal(size=(4, w.size)) @ w


def _fp64(device):
    if not device.fp64:
        pytest.skip(f"float64: device {device.name!r} lacks cl_khr_fp64")


# recorded from the code before the epoch loop moved to clnn.nn.epochs
ONE_DEVICE = [-3.97491918023, 4.278919906049, 0.6968823875703, -4.695585017746]
ONE_DEVICE_LOSS = [1.700133544738, 0.8721364523464, 0.622677377467, 0.513618970738]
ONE_DEVICE_VAL = [1.104878686197, 1.073403825595, 0.9183385883108, 0.6678090419044]
PARALLEL = [-0.1791275711698, -1.707684651783, -0.6869725194538, 0.7449729255129]
PARALLEL_LOSS = [1.554397368315, 1.040660197957, 0.6868407496644]


def test_one_device_draws_steps_and_remainder(rt, device):
    """53 samples in batches of 16 (a remainder of 5), shuffled: two epochs from the
    network's generator, then two more from ``seed=5``, with validation data."""
    _fp64(device)
    x, y = _data(53, 1)
    xv, yv = _data(19, 2)
    net = _net(rt)
    opt = clnn.optim.SGD(0.1, momentum=0.9)
    h1 = net.fit(x, y, epochs=2, batch_size=16, optimizer=opt, validation=(xv, yv),
                 verbose=False)
    h2 = net.fit(x, y, epochs=2, batch_size=16, optimizer=opt, validation=(xv, yv),
                 verbose=False, seed=5)
    np.testing.assert_allclose(_fingerprint(net), ONE_DEVICE, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(h1["loss"] + h2["loss"], ONE_DEVICE_LOSS, rtol=1e-9)
    np.testing.assert_allclose(h1["val_loss"] + h2["val_loss"], ONE_DEVICE_VAL, rtol=1e-9)
    assert h2.epochs == 2 and h2["lr"] == [0.1, 0.1]
    net.release()


def test_data_parallel_draws_steps_and_remainder(rt, device):
    """Two runtimes on one device: 53 samples in global batches of 16, shares 8 + 8 and a
    remainder of 5 cut 3 + 2; the shuffles come from the network's generator."""
    _fp64(device)
    x, _ = _data(53, 4)
    xv, _ = _data(19, 6)
    net = _net(rt, "mse")
    with clnn.Runtime(device) as r2:
        h = net.fit(x, _targets(x), epochs=3, batch_size=16, optimizer=clnn.optim.Adam(0.02),
                    validation=(xv, _targets(xv)), verbose=False, devices=[rt, r2])
    np.testing.assert_allclose(_fingerprint(net), PARALLEL, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(h["loss"], PARALLEL_LOSS, rtol=1e-9)
    assert h.parallel["steps"] == 3 * 4 and h.parallel["workers"] == 2
    assert sorted(h) == ["loss", "lr", "rmse", "val_loss", "val_rmse"]
    net.release()



def test_summary_is_the_mean_of_the_samples():
    """One formula for one device (per-sample losses) and data-parallel (sums over workers
    and ranks): the mean loss, the hit rate or the root of the mean squared error."""
    loss = np.array([0.5, 1.5, 1.0], np.float32)
    hit = np.array([1, 0, 1], np.float32)
    s = summary("accuracy", np.sum(loss, dtype=np.float64), np.sum(hit, dtype=np.float64), 3)
    assert s == {"loss": float(np.mean(loss, dtype=np.float64)), "accuracy": 2 / 3}
    assert summary("rmse", 12.0, 0.0, 3) == {"loss": 4.0, "rmse": 2.0}


def test_batches():
    assert batches(53, 16) == (16, 4, 5)
    assert batches(48, 16) == (16, 3, 16)
    assert batches(1, 32) == (1, 1, 1)
    assert batches(301, 17) == (17, 18, 12)
