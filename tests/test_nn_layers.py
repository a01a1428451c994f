"""Dense layers and inference: forward passes against numpy, every activation, both dtypes,
awkward sizes; the gemv (one vector) and gemm (batch) paths agree; parameters are clnn
buffers settable from numpy."""

from __future__ import annotations

import numpy as np
import pytest
from nn_paths import nn_path  # noqa: F401 (a fixture: every layer on the fused or gemm path)
from tolerances import rtol

import clnn
from clnn.nn import Dense, Network
from clnn.nn.activations import ACTIVATIONS, reference

ACTS = list(ACTIVATIONS)


def numpy_forward(net: Network, x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    for layer in net.layers:
        w = layer.weights.to_numpy().astype(np.float64)
        b = layer.bias.to_numpy().astype(np.float64)
        a = reference(layer.activation, a @ w.T + b)
    return a


def close(actual, expected, dtype, k):
    tol = 20 * rtol(dtype, k)
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual, np.float64) - expected).max())
    assert err <= tol * scale, f"max error {err:.3g} > {tol * scale:.3g}"


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dims,batch", [((3, 17, 5), 37), ((1, 1), 1), ((33, 9, 2), 3),
                                        ((64, 128, 10), 129)],
                         ids=["3-17-5x37", "1-1x1", "33-9-2x3", "64-128-10x129"])
@pytest.mark.usefixtures("nn_path")
def test_forward_matches_numpy(rt, dtype, act, dims, batch):
    rng = np.random.default_rng(len(dims) * 100 + batch)
    layers = [Dense(dims[i], dims[i + 1], act) for i in range(len(dims) - 1)]
    net = Network(rt, layers, dtype=dtype, seed=3)
    for layer in net.layers:  # non-zero biases exercise the epilogue
        layer.bias = rng.normal(size=layer.out_features)
    x = rng.normal(size=(batch, dims[0]))
    out = net.predict(x)
    assert out.shape == (batch, dims[-1]) and out.dtype == dtype
    close(out, numpy_forward(net, x), dtype, max(dims))
    # the one-vector path (gemv) gives the same numbers as the batch path (gemm)
    one = net.predict(x[-1])
    assert one.shape == (dims[-1],)
    close(one, out[-1].astype(np.float64), dtype, max(dims))
    net.release()


@pytest.mark.usefixtures("nn_path")
def test_forward_device_arrays(rt):
    net = Network(rt, [Dense(5, 7, "tanh"), Dense(7, 4, "softmax")], seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    with rt.matrix(x) as xm, rt.vector(x[2]) as xv:
        y = net.forward(xm)
        assert isinstance(y, clnn.Matrix) and y.shape == (6, 4)
        close(y.to_numpy(), numpy_forward(net, x), np.float32, 7)
        v = net.forward(xv)
        assert isinstance(v, clnn.Vector) and v.shape == (4,)
        close(v.to_numpy(), numpy_forward(net, x)[2], np.float32, 7)
        with rt.matrix(np.ones((2, 4), np.float32)) as bad, \
                pytest.raises(clnn.ShapeError, match="features"):
            net.forward(bad)
        with rt.matrix(x, layout="col") as col, pytest.raises(clnn.ShapeError, match="row-layout"):
            net.forward(col)
        # a sub-matrix view (offset, leading dimension 9) of a wider buffer
        wide = np.zeros((7, 9), np.float32)
        wide[1:, 2:7] = x
        with rt.matrix(wide) as wm:
            y = net.forward(wm.submatrix(1, 2, 6, 5))
            close(y.to_numpy(), numpy_forward(net, x), np.float32, 7)
        with pytest.raises(clnn.OperandError):
            net.forward(x)
    net.release()


def test_softmax_rows_sum_to_one_and_big_logits(rt):
    net = Network(rt, [Dense(2, 3, "softmax")], loss="cross_entropy", seed=0)
    net.layers[0].weights = np.array([[100.0, 0], [0, 100.0], [-100.0, 0]])
    p = net.predict(np.array([[1.0, 0.5], [0.0, 0.0], [-3, 2]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert p[0].argmax() == 0 and p[2].argmax() == 2


def test_parameters_are_views_settable_from_numpy(rt):
    net = Network(rt, [Dense(3, 2, "relu"), Dense(2, 1)], seed=0)
    l0, l1 = net.layers
    assert isinstance(l0.weights, clnn.Matrix) and l0.weights.shape == (2, 3)
    assert isinstance(l0.bias, clnn.Vector) and l0.bias.shape == (2,)
    assert l0.grad_weights.shape == (2, 3) and l0.grad_bias.shape == (2,)
    assert l0.weights.base is net.params and l0.grad_weights.base is net.grads
    w = np.arange(6.0).reshape(2, 3)
    l0.weights = w
    np.testing.assert_array_equal(l0.weights.to_numpy(), w)
    l0.weights.set(w + 1)  # the clnn buffer's own setter works too
    np.testing.assert_array_equal(l0.weights.to_numpy(), w + 1)
    l0.bias = [1.0, -1.0]
    l1.weights = [[2.0, 3.0]]
    l1.bias = [0.5]
    # known weights give known outputs: relu([1,2,3] . rows + b)
    x = np.array([1.0, 1.0, 1.0])
    h = np.maximum((w + 1) @ x + [1.0, -1.0], 0)
    np.testing.assert_allclose(net.predict(x), [2 * h[0] + 3 * h[1] + 0.5], rtol=1e-6)
    with pytest.raises(clnn.ShapeError):
        l0.weights = np.ones((3, 2))
    # the other layer's parameters are untouched by a set
    np.testing.assert_array_equal(l1.bias.to_numpy(), [0.5])


def test_glorot_and_he_init_statistics_and_seed(rt):
    from clnn.nn import init

    g = np.random.default_rng(0)
    for name, var in [("glorot_uniform", 2 / (300 + 200)), ("glorot_normal", 2 / 500),
                      ("he_uniform", 2 / 300), ("he_normal", 2 / 300)]:
        w = init.get(name)(g, 300, 200)
        assert w.shape == (200, 300)
        assert abs(w.var() / var - 1) < 0.05, name
        assert abs(w.mean()) < 0.01
    a = Network(rt, [Dense(4, 8, "relu", init="he_normal"), Dense(8, 2)], seed=42)
    b = Network(rt, [Dense(4, 8, "relu", init="he_normal"), Dense(8, 2)], seed=42)
    c = Network(rt, [Dense(4, 8, "relu", init="he_normal"), Dense(8, 2)], seed=43)
    for la, lb, lc in zip(a.layers, b.layers, c.layers):
        np.testing.assert_array_equal(la.weights.to_numpy(), lb.weights.to_numpy())
        assert not np.array_equal(la.weights.to_numpy(), lc.weights.to_numpy())
        np.testing.assert_array_equal(la.bias.to_numpy(), 0)
    assert a.layers[0].init == "he_normal" and a.layers[1].init == "glorot_uniform"
    assert Dense(2, 2, "relu").init == "he_uniform"


def test_layer_and_network_errors(rt):
    with pytest.raises(clnn.OperandError, match="activation"):
        Dense(2, 3, "swish")
    with pytest.raises(clnn.OperandError, match="initializer"):
        Dense(2, 3, init="zeros")
    with pytest.raises(clnn.ShapeError):
        Dense(0, 3)
    d = Dense(2, 3)
    with pytest.raises(clnn.OperandError, match="not part of a network"):
        d.weights  # noqa: B018
    with pytest.raises(clnn.ShapeError, match="layer 1 takes 4"):
        Network(rt, [Dense(2, 3), Dense(4, 1)])
    with pytest.raises(clnn.OperandError, match="softmax"):
        Network(rt, [Dense(2, 3, "relu")], loss="cross_entropy")
    with pytest.raises(clnn.OperandError, match="loss"):
        Network(rt, [Dense(2, 3)], loss="hinge")
    with pytest.raises(clnn.ShapeError):
        Network(rt, [])
    net = Network(rt, [d])
    with pytest.raises(clnn.OperandError, match="already belongs"):
        Network(rt, [d])
    with pytest.raises(clnn.DTypeError):
        Network(rt, [Dense(2, 2)], dtype=np.int32)
    with pytest.raises(clnn.OperandError, match="Runtime"):
        Network("cpu", [Dense(2, 2)])
    net.release()
    with pytest.raises(clnn.ReleasedError):
        d.weights.to_numpy()


def test_network_with_block_releases_everything(rt):
    with Network(rt, [Dense(3, 4, "relu"), Dense(4, 2)], seed=0) as net:
        net.fit(np.ones((10, 3)), np.zeros((10, 2)), epochs=1, verbose=False)
        net.predict(np.ones(3))
        owned = [net.params, net.grads, net._vin, net._vws.vec]
        owned += [ws.vec for ws in net._ws.values()] + [d.vec for d in net._datas.values()]
        assert len(owned) >= 6 and not any(a.released for a in owned)
    assert all(a.released for a in owned)
    with pytest.raises(clnn.ReleasedError):
        net.predict(np.ones((1, 3)))
    net.release()  # harmless twice


def test_released_runtime_gives_released_error(device):
    with clnn.Runtime(device) as r2:
        net = Network(r2, [Dense(2, 2, "softmax")], loss="cross_entropy", seed=0)
        net.fit(np.ones((4, 2)), [0, 1, 0, 1], epochs=1, verbose=False)
    for call in (lambda: net.predict(np.ones((1, 2))), lambda: net.predict(np.ones(2)),
                 lambda: net.fit(np.ones((4, 2)), [0, 1, 0, 1], verbose=False),
                 lambda: net.evaluate(np.ones((4, 2)), [0, 1, 0, 1]),
                 lambda: net.layers[0].weights):
        with pytest.raises(clnn.ReleasedError):
            call()


@pytest.mark.usefixtures("nn_path")
def test_batch_path_agrees_with_library_mm_and_mv(rt):
    """The fused batch kernels give what clnn.mm (and per sample clnn.mv) plus bias and
    activation give."""
    rng = np.random.default_rng(4)
    net = Network(rt, [Dense(13, 21, "sigmoid"), Dense(21, 6, "tanh")], seed=2)
    x = rng.normal(size=(40, 13)).astype(np.float32)
    a = x
    for layer in net.layers:
        with rt.matrix(a) as ad:
            z = clnn.mm(ad, layer.weights.T)
            a = reference(layer.activation, z.to_numpy() + layer.bias.to_numpy())
            z.release()
    close(net.predict(x), a, np.float32, 21)
    h = x[5]
    for layer in net.layers:
        with rt.vector(h) as hv, clnn.mv(layer.weights, hv) as z:
            h = reference(layer.activation, z.to_numpy() + layer.bias.to_numpy())
    close(net.predict(x[5]), h, np.float32, 21)
    net.release()
