"""Training: fit/evaluate/predict, history, seeded reproducibility, no device allocation in
the training loop, progress output, and bad input refused before any weight is touched."""

from __future__ import annotations

import numpy as np
import pytest
from nn_paths import nn_path  # noqa: F401 (a fixture: every layer on the fused or gemm path)

import clnn
from clnn.nn import DataError, Dense, History, Network


def blobs(n=300, seed=0, classes=3, feats=4):
    centers = np.random.default_rng(99).normal(scale=3.0, size=(classes, feats))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(size=(n, feats))
    return x, y


def classifier(rt, seed=0, dtype=np.float32, feats=4, classes=3):
    return Network(rt, [Dense(feats, 16, "tanh"), Dense(16, classes, "softmax")],
                   loss="cross_entropy", dtype=dtype, seed=seed)


@pytest.mark.usefixtures("nn_path")
def test_fit_learns_and_history(rt, dtype):
    x, y = blobs()
    xv, yv = blobs(60, seed=1)
    net = classifier(rt, dtype=dtype)
    before = net.evaluate(xv, yv)
    hist = net.fit(x, y, epochs=15, batch_size=17, optimizer=clnn.optim.Adam(0.01),
                   validation=(xv, yv), verbose=False)
    assert isinstance(hist, History) and hist.metric == "accuracy" and hist.epochs == 15
    assert set(hist) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in hist.values())
    assert hist["loss"][-1] < hist["loss"][0] and hist["val_loss"][-1] < before["loss"]
    assert hist["accuracy"][-1] > 0.9 and hist["val_accuracy"][-1] > 0.9
    ev = net.evaluate(xv, yv)
    assert ev["loss"] == pytest.approx(hist["val_loss"][-1], rel=1e-5)
    assert ev["accuracy"] == hist["val_accuracy"][-1]
    pred = net.predict(xv)
    np.testing.assert_allclose(pred.sum(1), 1, rtol=1e-5)
    assert np.mean(pred.argmax(1) == yv) == ev["accuracy"]
    net.release()


@pytest.mark.usefixtures("nn_path")
def test_epoch_loss_matches_numpy_mean(rt):
    x, y = blobs(50)
    net = classifier(rt)
    hist = net.fit(x, y, epochs=1, batch_size=50, optimizer=clnn.optim.SGD(1e-9),
                   shuffle=False, verbose=False)
    # a learning rate of 1e-9 leaves the weights (practically) unchanged
    assert hist["loss"][0] == pytest.approx(net.evaluate(x, y)["loss"], rel=1e-5)
    net.release()


def test_regression_mse_and_rmse(rt):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(256, 2))
    y = x[:, :1] * 2 - x[:, 1:] * 0.5 + 0.25
    net = Network(rt, [Dense(2, 1)], loss="mse", seed=0)
    hist = net.fit(x, y[:, 0], epochs=40, batch_size=32, optimizer=clnn.optim.SGD(0.1,
                   momentum=0.9, nesterov=True), verbose=False)
    assert hist.metric == "rmse" and hist["rmse"][-1] == pytest.approx(hist["loss"][-1] ** 0.5)
    assert hist["loss"][-1] < 1e-6
    np.testing.assert_allclose(net.layers[0].weights.to_numpy(), [[2.0, -0.5]], atol=1e-3)
    np.testing.assert_allclose(net.layers[0].bias.to_numpy(), [0.25], atol=1e-3)
    net.release()


@pytest.mark.usefixtures("nn_path")
def test_seed_reproduces_a_run_exactly(rt):
    x, y = blobs(123)

    def run(seed):
        net = classifier(rt, seed=seed)
        h = net.fit(x, y, epochs=3, batch_size=10, optimizer=clnn.optim.Adam(0.01),
                    verbose=False)
        w = [la.weights.to_numpy() for la in net.layers]
        net.release()
        return h["loss"], w

    l1, w1 = run(7)
    l2, w2 = run(7)
    l3, w3 = run(8)
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert l1 != l3


@pytest.mark.usefixtures("nn_path")
def test_no_device_allocation_inside_the_training_loop(rt):
    x, y = blobs(200)
    xv, yv = blobs(40, seed=3)
    net = classifier(rt)
    seen = []
    opt = clnn.optim.Adam(0.01)
    net.fit(x, y, epochs=4, batch_size=32, optimizer=opt, validation=(xv, yv), verbose=False,
            on_epoch=lambda e, logs: seen.append(rt.allocations))
    assert len(seen) == 4 and len(set(seen)) == 1, seen
    # a second fit of the same shapes (same optimizer) allocates nothing at all
    before = rt.allocations
    net.fit(x, y, epochs=2, batch_size=32, optimizer=opt, validation=(xv, yv), verbose=False)
    assert rt.allocations == before
    net.release()


@pytest.mark.usefixtures("nn_path")
def test_last_partial_batch_and_batch_bigger_than_data(rt):
    x, y = blobs(37)
    net = classifier(rt)
    h = net.fit(x, y, epochs=2, batch_size=10, verbose=False)  # 10+10+10+7
    assert np.isfinite(h["loss"]).all()
    h = net.fit(x, y, epochs=2, batch_size=1000, verbose=False)
    assert np.isfinite(h["loss"]).all()
    h = net.fit(x[:1], y[:1], epochs=1, batch_size=1, verbose=False)
    assert np.isfinite(h["loss"]).all()
    net.release()


def test_schedule_drives_the_learning_rate(rt):
    x, y = blobs(40)
    net = classifier(rt)
    sched = clnn.schedules.StepLR(0.1, step=2, gamma=0.5)
    h = net.fit(x, y, epochs=5, batch_size=8, optimizer=clnn.optim.SGD(sched), verbose=False)
    assert h["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    net.release()


def test_quiet_progress_when_not_a_terminal(rt, capsys):
    x, y = blobs(40)
    net = classifier(rt)
    net.fit(x, y, epochs=2, batch_size=8, verbose=True)  # pytest's stderr is not a TTY
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    net.release()


def test_progress_bar_on_a_terminal(rt, monkeypatch):
    pytest.importorskip("tqdm")
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    x, y = blobs(40)
    net = classifier(rt)
    net.fit(x, y, epochs=3, batch_size=8, verbose=True)
    text = err.getvalue()
    assert "3/3" in text and "loss" in text and "accuracy" in text
    err.truncate(0)
    net.fit(x, y, epochs=2, batch_size=8, verbose=False)
    assert err.getvalue() == ""
    net.release()


def _weights(net):
    return net.params.to_numpy()


@pytest.mark.parametrize("case", ["features", "label-high", "label-negative", "label-frac",
                                  "nan-x", "inf-y", "length", "y-shape", "val-nan",
                                  "epochs", "batch", "optimizer", "validation-shape"])
def test_bad_input_refused_before_weights_change(rt, case):
    x, y = blobs(30)
    net = classifier(rt)
    before = _weights(net)
    kw = {"epochs": 2, "batch_size": 8, "verbose": False}
    err = DataError
    if case == "features":
        x, err = x[:, :3], clnn.ShapeError
    elif case == "label-high":
        y = y.copy()
        y[5] = 3
    elif case == "label-negative":
        y = y.copy()
        y[0] = -1
    elif case == "label-frac":
        y = y.astype(float)
        y[0] = 0.5
    elif case == "nan-x":
        x = x.copy()
        x[3, 1] = np.nan
    elif case == "inf-y":
        y = y.astype(float)
        y[2] = np.inf
    elif case == "length":
        y, err = y[:-1], clnn.ShapeError
    elif case == "y-shape":
        y, err = np.zeros((30, 3)), clnn.ShapeError
    elif case == "val-nan":
        xv = x.copy()
        xv[0, 0] = np.nan
        kw["validation"] = (xv, y)
    elif case == "epochs":
        kw["epochs"], err = -1, clnn.ShapeError
    elif case == "batch":
        kw["batch_size"], err = 0, clnn.ShapeError
    elif case == "optimizer":
        kw["optimizer"], err = "adam", clnn.OperandError
    elif case == "validation-shape":
        kw["validation"], err = (x,), clnn.OperandError
    with pytest.raises(err) as e:
        net.fit(x, y, **kw)
    assert str(e.value)
    np.testing.assert_array_equal(_weights(net), before)
    net.release()


def test_error_messages_name_the_problem(rt):
    x, y = blobs(20)
    net = classifier(rt)
    with pytest.raises(clnn.ShapeError, match="3 features.*takes 4"):
        net.fit(x[:, :3], y, verbose=False)
    with pytest.raises(DataError, match="label 3 is out of range.*3 classes"):
        net.fit(x, np.where(y == 0, 3, y), verbose=False)
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match="NaN or Inf.*sample 7"):
        net.fit(bad, y, verbose=False)
    with pytest.raises(DataError, match="NaN"):
        net.predict(bad)
    with pytest.raises(clnn.ShapeError, match="features"):
        net.evaluate(x[:, :2], y)
    net.release()


def test_mismatched_runtimes_refused(rt, device):
    x, y = blobs(20)
    net = classifier(rt)
    before = _weights(net)
    with clnn.Runtime(device) as other:
        with other.matrix(x.astype(np.float32)) as xo:
            with pytest.raises(clnn.RuntimeMismatchError):
                net.fit(xo, y, verbose=False)
            with pytest.raises(clnn.RuntimeMismatchError):
                net.predict(xo)
        # an optimizer that holds state on another runtime
        net2 = classifier(other)
        opt = clnn.optim.Adam(0.01)
        net2.fit(x, y, epochs=1, optimizer=opt, verbose=False)
        with pytest.raises(clnn.RuntimeMismatchError):
            net.fit(x, y, epochs=1, optimizer=opt, verbose=False)
        # and one bound to another network of the same runtime
        net3 = classifier(rt, seed=1)
        opt3 = clnn.optim.SGD(0.1)
        net3.fit(x, y, epochs=1, optimizer=opt3, verbose=False)
        with pytest.raises(clnn.OperandError, match="other parameters"):
            net.fit(x, y, epochs=1, optimizer=opt3, verbose=False)
        net3.release()
    np.testing.assert_array_equal(_weights(net), before)
    net.release()


def test_device_data_from_the_same_runtime(rt):
    x, y = blobs(30)
    net = classifier(rt)
    with rt.matrix(x.astype(np.float32)) as xd, rt.vector(y.astype(np.float32)) as yd:
        h = net.fit(xd, yd, epochs=2, batch_size=8, verbose=False)
        assert np.isfinite(h["loss"]).all()
        np.testing.assert_allclose(net.predict(xd), net.predict(x), rtol=1e-6)
    net.release()


def test_epoch_gate_opens_on_exception(rt):
    """fit enqueues an epoch's steps behind a user event (clnn.nn.onedevice.gate); however
    the block ends, the event completes, so the queue never waits forever."""
    import clnn
    from clnn.nn.onedevice import gate

    a = rt.matrix([[1.0, 2.0], [3.0, 4.0]])
    x = rt.vector([1.0, 1.0])
    y = rt.zeros(2)
    with pytest.raises(RuntimeError, match="inside the gate"):
        with gate(rt):
            clnn.mv(a, x, out=y)  # held back until the block ends
            raise RuntimeError("inside the gate")
    rt.finish()
    np.testing.assert_array_equal(y.to_numpy(), [3.0, 7.0])
    for arr in (a, x, y):
        arr.release()


# ---- divergence -------------------------------------------------------------------------------
def _diverging(rt, dtype=np.float32):
    """A relu regression that SGD(10.0) drives to an infinite loss within a few epochs."""
    x = np.random.default_rng(0).normal(size=(64, 3))
    y = x @ np.array([[1.0], [2.0], [3.0]])
    return Network(rt, [Dense(3, 8, "relu"), Dense(8, 1)], dtype=dtype, seed=0), x, y


def test_divergence_stops_fit_and_rewinds_the_weights(rt, dtype):
    net, x, y = _diverging(rt, dtype)
    starts = [net.params.to_numpy()]  # the weights at the start of each epoch
    with pytest.raises(clnn.nn.DivergenceError) as e:
        net.fit(x, y, epochs=20, optimizer=clnn.optim.SGD(10.0), verbose=False,
                on_epoch=lambda ep, logs: starts.append(net.params.to_numpy()))
    err = e.value
    assert isinstance(err, clnn.ClnnError)
    hist = err.history
    assert len(hist["loss"]) == err.epoch + 1 == len(starts)  # on_epoch skipped that epoch
    assert not np.isfinite(hist["loss"][-1]) and np.isfinite(hist["loss"][:-1]).all()
    msg = str(err)
    assert f"epoch {err.epoch + 1} of 20" in msg and "smaller" in msg
    assert "learning rate (10)" in msg and "on_divergence='continue'" in msg
    # the weights at the start of the diverged epoch (the end of the last finite one)
    w = net.params.to_numpy()
    assert np.isfinite(w).all()
    np.testing.assert_array_equal(w, starts[err.epoch])
    assert f"start of epoch {err.epoch + 1}" in msg
    # the network still works on the rewound weights
    assert np.isfinite(net.predict(x)).all() and np.isfinite(net.evaluate(x, y)["loss"])
    net.release()


def test_divergence_continue_keeps_training(rt):
    net, x, y = _diverging(rt)
    h = net.fit(x, y, epochs=4, optimizer=clnn.optim.SGD(10.0), verbose=False,
                on_divergence="continue")
    assert len(h["loss"]) == 4 and not np.isfinite(h["loss"][-1])
    with pytest.raises(clnn.OperandError, match="on_divergence"):
        net.fit(x, y, epochs=1, verbose=False, on_divergence="ignore")
    net.release()


def test_divergence_rewinds_past_a_diverged_start():
    """When the weights at the start of the diverged epoch already hold NaN (the previous
    epoch's last step diverged), the rewind goes back one more epoch."""
    from clnn.nn.epochs import History, divergence_error

    class Params:
        def set(self, w):
            self.w = w

    class Net:
        params = Params()

    hist = History("rmse", False)
    hist["lr"].append(0.5)
    good = np.ones(4)
    err = divergence_error(Net(), [np.array([1.0, np.nan, 0, 0]), good], 3, 9,
                           float("nan"), hist)
    assert Net.params.w is good and "start of epoch 3" in str(err) and err.epoch == 3
    err = divergence_error(Net(), [np.full(2, np.inf)], 0, 9, float("inf"), hist)
    assert "every saved copy had diverged" in str(err)


def test_use_after_release_names_the_network_and_runtime(device):
    x, y = blobs(20)
    with clnn.Runtime(device.spec) as rt:
        net = classifier(rt)
    for call in (lambda: net.fit(x, y, verbose=False), lambda: net.predict(x),
                 lambda: net.evaluate(x, y), lambda: net.save("never.npz")):
        with pytest.raises(clnn.ReleasedError) as e:
            call()
        msg = str(e.value)
        assert "runtime of this network was released" in msg and "Vector" not in msg
    with clnn.Runtime(device.spec) as rt:
        net = classifier(rt)
        net.release()
        with pytest.raises(clnn.ReleasedError, match="this network was released"):
            net.fit(x, y, verbose=False)
