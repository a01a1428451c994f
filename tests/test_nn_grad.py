"""Backpropagation against central finite differences, in float64 (skipped on devices
without fp64): every activation as a hidden and as an output layer, both losses, several
shapes; gradients of weights, biases and inputs."""

from __future__ import annotations

import numpy as np
import pytest
from nn_paths import nn_path  # noqa: F401 (a fixture: every layer on the fused or gemm path)
from tolerances import assert_close

import clnn
from clnn.nn import Dense, Network
from clnn.nn.activations import ACTIVATIONS, reference

ACTS = list(ACTIVATIONS)
H = 1e-6  # central differences in float64: error ~H^2 * f''' + eps / H ~ 1e-10


@pytest.fixture
def rt64(rt):
    if not rt.device.fp64:
        pytest.skip(f"finite differences need float64: {rt.device.name!r} lacks cl_khr_fp64")
    return rt


def _loss_numpy(acts, loss, ws, bs, x, y):
    a = x
    for i, act in enumerate(acts):
        z = a @ ws[i].T + bs[i]
        a = reference(act, z)
    if loss == "mse":
        return float(np.mean((a - y) ** 2))
    return float(-np.mean(np.log(a[np.arange(len(y)), y])))


def _fd(f, arr):
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + H
        up = f()
        arr[idx] = old - H
        down = f()
        arr[idx] = old
        g[idx] = (up - down) / (2 * H)
    return g


def _check(rt, acts, dims, loss, n, seed):
    rng = np.random.default_rng(seed)
    layers = [Dense(dims[i], dims[i + 1], a) for i, a in enumerate(acts)]
    net = Network(rt, layers, loss=loss, dtype=np.float64, seed=seed)
    for layer in net.layers:
        layer.bias = rng.normal(size=layer.out_features) * 0.3
    x = rng.normal(size=(n, dims[0]))
    y = rng.integers(0, dims[-1], n) if loss == "cross_entropy" else rng.normal(size=(n, dims[-1]))
    ws = [layer.weights.to_numpy() for layer in net.layers]
    bs = [layer.bias.to_numpy() for layer in net.layers]
    value, dx = net.gradient(x, y, input_grad=True)

    def f():
        return _loss_numpy(acts, loss, ws, bs, x, y)

    assert value == pytest.approx(f(), rel=1e-12, abs=1e-12)
    for i, layer in enumerate(net.layers):
        gw = _fd(f, ws[i])
        gb = _fd(f, bs[i])
        np.testing.assert_allclose(layer.grad_weights.to_numpy(), gw, rtol=1e-6, atol=1e-8,
                                   err_msg=f"dW of layer {i}")
        np.testing.assert_allclose(layer.grad_bias.to_numpy(), gb, rtol=1e-6, atol=1e-8,
                                   err_msg=f"db of layer {i}")
    np.testing.assert_allclose(dx, _fd(f, x), rtol=1e-6, atol=1e-8, err_msg="dx")
    net.release()


@pytest.mark.oclgrind
@pytest.mark.parametrize("hidden", ACTS)
@pytest.mark.parametrize("out", ["linear", "sigmoid", "tanh", "relu", "softmax"])
@pytest.mark.usefixtures("nn_path")
def test_mse_gradients(rt64, hidden, out):
    _check(rt64, (hidden, out), (5, 7, 3), "mse", 6, seed=len(hidden) * 7 + len(out))


@pytest.mark.oclgrind
@pytest.mark.parametrize("hidden", ACTS)
@pytest.mark.usefixtures("nn_path")
def test_cross_entropy_gradients(rt64, hidden):
    _check(rt64, (hidden, "softmax"), (4, 9, 5), "cross_entropy", 7, seed=len(hidden))


@pytest.mark.oclgrind
@pytest.mark.parametrize("dims,acts,n", [
    ((1, 1), ("linear",), 1),
    ((3, 17, 2), ("tanh", "linear"), 11),
    ((19, 6, 18, 4), ("relu", "sigmoid", "tanh"), 5),
    ((2, 33, 33, 1), ("tanh", "tanh", "linear"), 9),
], ids=["1-1", "3-17-2", "19-6-18-4", "2-33-33-1"])
@pytest.mark.usefixtures("nn_path")
def test_shapes(rt64, dims, acts, n):
    _check(rt64, acts, dims, "mse", n, seed=sum(dims))


def test_gradient_on_device_loss(rt64):
    """The finite difference of the device's own loss (weights perturbed on the device)."""
    rng = np.random.default_rng(5)
    net = Network(rt64, [Dense(3, 4, "tanh"), Dense(4, 3, "softmax")],
                  loss="cross_entropy", dtype=np.float64, seed=5)
    x, y = rng.normal(size=(8, 3)), rng.integers(0, 3, 8)
    net.gradient(x, y)
    layer = net.layers[0]
    g = layer.grad_weights.to_numpy()
    w = layer.weights.to_numpy()
    for idx in [(0, 0), (1, 2), (3, 1)]:
        vals = []
        for s in (1, -1):
            w2 = w.copy()
            w2[idx] += s * H
            layer.weights = w2
            vals.append(net.evaluate(x, y)["loss"])
        assert (vals[0] - vals[1]) / (2 * H) == pytest.approx(g[idx], rel=1e-6, abs=1e-9)
    net.release()


@pytest.mark.oclgrind
@pytest.mark.usefixtures("nn_path")
def test_float32_gradients_close_to_float64(rt):
    """float32 backprop agrees with the float64 reference computed by numpy."""
    rng = np.random.default_rng(9)
    net = Network(rt, [Dense(6, 10, "relu"), Dense(10, 4, "softmax")], loss="cross_entropy",
                  seed=9)
    x, y = rng.normal(size=(13, 6)), rng.integers(0, 4, 13)
    net.gradient(x, y)
    ws = [layer.weights.to_numpy().astype(np.float64) for layer in net.layers]
    bs = [layer.bias.to_numpy().astype(np.float64) for layer in net.layers]
    a1 = np.maximum(x @ ws[0].T + bs[0], 0)
    p = reference("softmax", a1 @ ws[1].T + bs[1])
    p[np.arange(13), y] -= 1
    dz = p / 13
    np.testing.assert_allclose(net.layers[1].grad_weights.to_numpy(), dz.T @ a1,
                               rtol=1e-4, atol=1e-6)
    dz1 = (dz @ ws[1]) * (a1 > 0)
    np.testing.assert_allclose(net.layers[0].grad_weights.to_numpy(), dz1.T @ x,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.layers[0].grad_bias.to_numpy(), dz1.sum(0),
                               rtol=1e-4, atol=1e-6)
    assert isinstance(net.layers[0].grad_weights, clnn.Matrix)
    net.release()


def _backprop64(acts, ws, bs, x, y):
    """Gradients of the mean cross-entropy (softmax last) in float64, each with the sum of
    the magnitudes that bound its rounding errors: products and sums add the scales of their
    terms; tanh, sigmoid and relu pass an input's error on with a factor <= 1; act'(y) (taken
    from the output y) moves by at most 2 |dy|; softmax by at most twice its input's worst
    error, times p. Returns ([(dW, scale), (db, scale)] per layer, (dX, scale))."""
    a, sa = [x], [np.abs(x)]
    for i, act in enumerate(acts):
        z = a[-1] @ ws[i].T + bs[i]
        sz = sa[-1] @ np.abs(ws[i]).T + np.abs(bs[i])
        out = reference(act, z)
        s_out = (2 * out * sz.max(axis=1, keepdims=True) if act == "softmax" else sz) + abs(out)
        a.append(out)
        sa.append(s_out)
    n = len(y)
    dz = a[-1].copy()
    dz[np.arange(n), y] -= 1
    dz /= n
    sdz = (sa[-1] + 1) / n
    grads = []
    for i in range(len(acts) - 1, -1, -1):
        grads.append([(dz.T @ a[i], sdz.T @ np.abs(a[i]) + np.abs(dz).T @ sa[i]),
                      (dz.sum(axis=0), sdz.sum(axis=0))])
        g, sg = dz @ ws[i], sdz @ np.abs(ws[i])
        if i == 0:
            return grads[::-1], (g, sg)
        yv, prev = a[i], acts[i - 1]
        d = {"tanh": 1 - yv * yv, "sigmoid": yv * (1 - yv), "relu": (yv > 0) * 1.0}.get(
            prev, np.ones_like(yv))
        dz, sdz = g * d, sg * np.abs(d) + np.abs(g) * 2 * sa[i] * (prev != "relu")


@pytest.mark.oclgrind
@pytest.mark.parametrize("dims,n", [((1, 1, 2), 1), ((3, 17, 3), 3), ((17, 3, 17, 5), 17),
                                    ((5, 33, 70, 4), 301)],
                         ids=["1-1-2x1", "3-17-3x3", "17-3-17-5x17", "5-33-70-4x301"])
@pytest.mark.parametrize("hidden", ["linear", "sigmoid", "tanh", "relu"])
@pytest.mark.usefixtures("nn_path")
def test_gradients_match_float64_reference(rt, dtype, dims, n, hidden):
    """Both paths, both dtypes, awkward sizes (batches of 1, 3, 17 and 301 rows: not whole
    register tiles), every hidden activation, the input gradient: every gradient against the
    float64 reference of the same (rounded) weights and data."""
    rng = np.random.default_rng(sum(dims) + n)
    acts = [hidden] * (len(dims) - 2) + ["softmax"]
    net = Network(rt, [Dense(dims[i], dims[i + 1], a) for i, a in enumerate(acts)],
                  loss="cross_entropy", dtype=dtype, seed=n)
    for layer in net.layers:
        layer.bias = rng.normal(size=layer.out_features) * 0.3
    x = rng.normal(size=(n, dims[0])).astype(dtype)
    y = rng.integers(0, dims[-1], n)
    _, dx = net.gradient(x, y, input_grad=True)
    ws = [layer.weights.to_numpy().astype(np.float64) for layer in net.layers]
    bs = [layer.bias.to_numpy().astype(np.float64) for layer in net.layers]
    grads, (dx64, sdx) = _backprop64(acts, ws, bs, x.astype(np.float64), y)
    k = sum(dims) + n  # every error is a sum along the chain of products behind it
    for layer, ((dw, sw), (db, sb)) in zip(net.layers, grads):
        assert_close(layer.grad_weights.to_numpy(), dw, dtype, k=k, scale=sw)
        assert_close(layer.grad_bias.to_numpy(), db, dtype, k=k, scale=sb)
    assert_close(dx, dx64, dtype, k=k, scale=sdx)
    net.release()


@pytest.mark.oclgrind
@pytest.mark.parametrize("tun", [
    {"VW": 1, "RB": 1, "CB": 1, "FJ": 1, "FV": 1, "JB": 1, "XB": 1, "KV": 1, "WGS": 16,
     "ITEMS": 1 << 20, "GEMM_B": 1 << 30, "GEMM_BW": 1 << 30},
    {"VW": 2, "RB": 3, "CB": 2, "FJ": 3, "FV": 3, "JB": 3, "XB": 5, "KV": 3, "WGS": 4,
     "ITEMS": 3, "GEMM_B": 1 << 30, "GEMM_BW": 1 << 30},
    {"VW": 2, "RB": 3, "CB": 2, "FJ": 3, "FV": 3, "JB": 3, "XB": 5, "KV": 3, "WGS": 4,
     "ITEMS": 3, "GEMM_B": 9, "GEMM_N": 5, "GEMM_BW": 13,
     "GEMM_MIN": 1},
], ids=["gpu-like", "odd", "odd-mixed-paths"])
def test_other_tunables(device, tmp_path, monkeypatch, tun):
    """Tunables from a (private) tuning database: GPU-like scalar kernels with work-groups,
    odd tile shapes with several tiles per work-item, and GEMM_* that put some passes of a
    network on the packed gemm and the others on the fused kernels; the same gradients."""
    if not device.fp64:
        pytest.skip(f"finite differences need float64: {device.name!r} lacks cl_khr_fp64")
    from clnn import tuning

    try:  # the checks clnn applies to database entries: a misfit is skipped, not replaced
        tuning.check(device, "nn", "dense", "double", tun)
        tuning.check(device, "optim", "flat", "double", {"VW": tun["VW"], "WGS": tun["WGS"]})
    except ValueError as e:
        pytest.skip(f"nn tunables do not fit {device}: {e}")
    monkeypatch.setenv("CLNN_TUNING_DB", str(tmp_path / "tuning.json"))
    tuning.store(device, "nn", "dense", "double", tuning.ANY, tun)
    tuning.store(device, "optim", "flat", "double", tuning.ANY,
                 {"VW": tun["VW"], "WGS": tun["WGS"]})
    with clnn.Runtime(device) as rt:
        p = clnn.nn._kernels.kernels(rt, np.float64).p
        assert {k: p[k] for k in tun} == tun
        _check(rt, ("relu", "tanh", "softmax"), (7, 11, 5, 3), "cross_entropy", 9, seed=4)
        _check(rt, ("sigmoid", "linear"), (2, 9, 2), "mse", 13, seed=5)
        g = np.linspace(-1, 1, 1023)
        with rt.vector(np.zeros(1023), dtype=np.float64) as p, rt.vector(g) as gd:
            opt = clnn.optim.Adam(0.1)
            opt.step(p, gd)
            np.testing.assert_allclose(p.to_numpy(), -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-9)
