"""Elementwise maps vs numpy: sizes, dtypes, layouts, views, broadcasting, in place, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tolerances import assert_close

import clnn

SIZES = [1, 3, 17, 301, 1023, 10007]


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# name -> (clnn function, numpy reference on float64, input generator)
UNARY = {
    "exp": (clnn.exp, np.exp, lambda r, s: r.uniform(-5, 5, s)),
    "log": (clnn.log, np.log, lambda r, s: r.uniform(0.01, 10, s)),
    "tanh": (clnn.tanh, np.tanh, lambda r, s: r.uniform(-6, 6, s)),
    "sigmoid": (clnn.sigmoid, _sig, lambda r, s: r.uniform(-8, 8, s)),
    "relu": (clnn.relu, lambda x: np.maximum(x, 0), lambda r, s: r.standard_normal(s)),
    "scale_shift": (lambda x, out=None: clnn.scale_shift(x, -1.5, 0.25, out=out),
                    lambda x: -1.5 * x + 0.25, lambda r, s: r.standard_normal(s)),
    "sigmoid_grad": (clnn.sigmoid_grad, lambda y: y * (1 - y), lambda r, s: r.uniform(0, 1, s)),
    "tanh_grad": (clnn.tanh_grad, lambda y: 1 - y * y, lambda r, s: r.uniform(-1, 1, s)),
    "relu_grad": (clnn.relu_grad, lambda y: (y > 0).astype(float),
                  lambda r, s: np.maximum(r.standard_normal(s), 0)),
}
BINARY = {
    "add": (clnn.add, np.add),
    "sub": (clnn.sub, np.subtract),
    "mul": (clnn.mul, np.multiply),
    "div": (clnn.div, np.divide),
    "sigmoid_grad": (lambda y, g, out=None: clnn.sigmoid_grad(y, g, out=out),
                     lambda y, g: g * y * (1 - y)),
    "tanh_grad": (lambda y, g, out=None: clnn.tanh_grad(y, g, out=out),
                  lambda y, g: g * (1 - y * y)),
    "relu_grad": (lambda y, g, out=None: clnn.relu_grad(y, g, out=out),
                  lambda y, g: np.where(y > 0, g, 0)),
}


def _scale(name, x, want):
    """Magnitude of the terms (a difference like 1 - y*y is judged against 1 + y*y); ``x`` is
    the float64 input. One-term maps: ``None`` (``|want|``)."""
    ax = np.abs(x)
    return {"tanh_grad": 1 + ax * ax, "sigmoid_grad": ax * (1 + ax),
            "scale_shift": 1.5 * ax + 0.25}.get(name)


def _scale2(name, a, b, want):
    """The same for the binary maps (``a``, ``b``: the float64 inputs)."""
    aa, ab = np.abs(a), np.abs(b)
    return {"add": aa + ab, "sub": aa + ab, "sigmoid_grad": ab * aa * (1 + aa),
            "tanh_grad": ab * (1 + aa * aa)}.get(name)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_vectors(rt, dtype, name, rng):
    fn, ref, gen = UNARY[name]
    for n in SIZES:
        h = gen(rng, n).astype(dtype)
        with rt.vector(h) as x:
            got = fn(x)
            h64 = h.astype(np.float64)
            want = ref(h64)
            assert_close(got.to_numpy(), want, dtype, scale=_scale(name, h64, want))
            got.release()


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_vectors(rt, dtype, name, rng):
    fn, ref = BINARY[name]
    for n in SIZES:
        ha = rng.uniform(0.1, 1, n).astype(dtype) if "grad" in name else (
            rng.standard_normal(n).astype(dtype))
        hb = rng.uniform(0.5, 2, n).astype(dtype) * rng.choice([-1, 1], n).astype(dtype)
        with rt.vector(ha) as a, rt.vector(hb) as b, rt.vector(n, dtype=dtype) as out:
            assert fn(a, b, out=out) is out
            ha64, hb64 = ha.astype(np.float64), hb.astype(np.float64)
            want = ref(ha64, hb64)
            assert_close(out.to_numpy(), want, dtype, scale=_scale2(name, ha64, hb64, want))


def test_math_edges(rt):
    h = np.array([0, -0.0, 100, -100, 1e-30, 0.625, -0.625, np.inf, -np.inf, np.nan], np.float32)
    with rt.vector(h) as x:
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(clnn.tanh(x).to_numpy()[[0, 2, 3, 7, 8]],
                                          [0, 1, -1, 1, -1])
            assert np.isnan(clnn.tanh(x).to_numpy()[-1])
            np.testing.assert_array_equal(clnn.sigmoid(x).to_numpy()[[2, 3, 7, 8]], [1, 0, 1, 0])
            r = clnn.relu(x).to_numpy()
            np.testing.assert_array_equal(r[:-1], np.maximum(h[:-1], 0))
            assert np.isnan(r[-1])  # NaN stays NaN, as np.maximum
            lg = clnn.log(rt.vector(np.array([0, -1, 1], np.float32))).to_numpy()
            assert lg[0] == -np.inf and np.isnan(lg[1]) and lg[2] == 0


def _mat(rt, rng, shape, layout, dtype, lo=-2.0, hi=2.0):
    """(the values as float64, a device matrix holding them in ``dtype``)"""
    h = rng.uniform(lo, hi, shape).astype(dtype)
    return h.astype(np.float64), rt.matrix(h, layout=layout)


@pytest.mark.parametrize("la,lb,lo", [("row", "row", "row"), ("row", "col", "col"),
                                      ("col", "row", "row"), ("col", "col", "col")])
def test_maps_on_matrices_and_views(rt, dtype, la, lb, lo, rng):
    """Mixed layouts, sub-matrices, transposes: offsets and strides go to the kernel."""
    ha, a = _mat(rt, rng, (37, 23), la, dtype)
    hb, b = _mat(rt, rng, (23, 37), lb, dtype)
    ho, o = _mat(rt, rng, (40, 40), lo, dtype)
    with a, b, o:
        # whole matrices, b transposed to match a's shape
        got = clnn.add(a, b.T)
        assert got.layout == la
        assert_close(got.to_numpy(), ha + hb.T, dtype, scale=np.abs(ha) + np.abs(hb.T))
        got.release()
        # sub-matrix views into a sub-matrix of a bigger output
        sa, sha = a.submatrix(2, 3, 30, 17), ha[2:32, 3:20]
        sb, shb = b.T.submatrix(1, 4, 30, 17), hb.T[1:31, 4:21]
        so = o.submatrix(5, 6, 30, 17)
        clnn.mul(sa, sb, out=so)
        want = ho.copy()
        want[5:35, 6:23] = sha * shb
        assert_close(o.to_numpy(), want, dtype)
        clnn.sigmoid(sa.T, out=o.submatrix(0, 0, 17, 30))
        want[:17, :30] = _sig(sha.T)
        assert_close(o.to_numpy(), want, dtype)
        # one row / column of a matrix as vectors (strided when the layout says so)
        r = clnn.tanh(a.row(3))
        assert_close(r.to_numpy(), np.tanh(ha[3]), dtype)
        r.release()


def test_strided_vectors(rt, dtype, rng):
    h = rng.standard_normal(1000).astype(dtype)
    hb = rng.standard_normal(1000).astype(dtype)
    with rt.vector(h) as x, rt.vector(hb) as y, rt.zeros(900, dtype=dtype) as o:
        xv, yv, ov = x[3::3], y.subvector(5, 333, 2), o.subvector(1, 333, 2)
        clnn.sub(xv, yv, out=ov)
        want, scale = np.zeros(900), np.zeros(900)  # the gaps stay exactly 0
        h64, hb64 = h[3::3].astype(np.float64), hb[5:5 + 2 * 333:2].astype(np.float64)
        want[1:1 + 2 * 333:2] = h64 - hb64
        scale[1:1 + 2 * 333:2] = np.abs(h64) + np.abs(hb64)
        assert_close(o.to_numpy(), want, dtype, scale=scale)
        e = clnn.exp(x[::7])
        assert_close(e.to_numpy(), np.exp(h[::7].astype(np.float64)), dtype)
        e.release()


def test_in_place(rt, dtype, rng):
    ha, a = _mat(rt, rng, (31, 19), "col", dtype)
    hb, b = _mat(rt, rng, (31, 19), "row", dtype)
    with a, b:
        assert clnn.relu(a, out=a) is a
        ha = np.maximum(ha, 0)
        assert_close(a.to_numpy(), ha, dtype)
        clnn.add(a, b, out=b)
        assert_close(b.to_numpy(), ha + hb, dtype, scale=np.abs(ha) + np.abs(hb))
        s = a.submatrix(1, 1, 10, 10)
        clnn.scale_shift(s, 2.0, 1.0, out=s)  # same view in place
        scale = np.abs(ha)
        scale[1:11, 1:11] = 2 * np.abs(ha[1:11, 1:11]) + 1
        ha[1:11, 1:11] = 2 * ha[1:11, 1:11] + 1
        assert_close(a.to_numpy(), ha, dtype, scale=scale)


def test_overlap_refused_nothing_written(rt, rng):
    ha, a = _mat(rt, rng, (8, 8), "row", np.float32)
    with a:
        before = a.to_numpy()
        for f in [lambda: clnn.add(a.submatrix(0, 0, 4, 4), a.submatrix(1, 1, 4, 4),
                                   out=a.submatrix(1, 1, 4, 4).T),
                  lambda: clnn.exp(a.submatrix(0, 0, 4, 4), out=a.submatrix(1, 0, 4, 4)),
                  lambda: clnn.relu(a, out=a.T)]:
            with pytest.raises(clnn.ShapeError, match="shares memory"):
                f()
        np.testing.assert_array_equal(a.to_numpy(), before)


@pytest.mark.oclgrind
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh"])
def test_add_bias(rt, dtype, layout, act, rng):
    ref = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0), "sigmoid": _sig,
           "tanh": np.tanh}[act]
    ha, a = _mat(rt, rng, (17, 301), layout, dtype)
    hr = rng.standard_normal(17).astype(dtype)
    hc = rng.standard_normal(301).astype(dtype)
    with a, rt.vector(hr) as br, rt.vector(hc) as bc:
        hr64, hc64 = hr.astype(np.float64), hc.astype(np.float64)
        row, col = (ha + hr64[:, None], np.abs(ha) + np.abs(hr64[:, None])), (
            ha + hc64, np.abs(ha) + np.abs(hc64))
        for bias, axis, (z, zs) in [(br, 0, row), (bc, 1, col), (br, None, row)]:
            got = clnn.add_bias(a, bias, axis=axis, activation=act)
            want = ref(z)
            # the sum a + b (terms zs) is rounded, then mapped (slope <= 1): zs + |want|
            assert_close(got.to_numpy(), want, dtype, scale=zs + np.abs(want))
            got.release()
        # views: a sub-matrix of a transposed matrix, a strided bias, in place
        s = a.T.submatrix(3, 2, 100, 9)
        hs = ha.T[3:103, 2:11].copy()
        clnn.add_bias(s, bc[::3][:9], axis=1, activation=act, out=s)
        scale = np.abs(ha)  # outside the view: unchanged
        ha.T[3:103, 2:11] = ref(hs + hc64[::3][:9])
        scale.T[3:103, 2:11] = np.abs(hs) + np.abs(hc64[::3][:9]) + np.abs(ha.T[3:103, 2:11])
        assert_close(a.to_numpy(), ha, dtype, scale=scale)


def test_add_bias_errors(rt):
    with rt.matrix((4, 4)) as sq, rt.matrix((3, 5)) as a, rt.vector(4) as b4, \
            rt.vector(5) as b5:
        with pytest.raises(clnn.ShapeError, match="square"):
            clnn.add_bias(sq, b4)
        with pytest.raises(clnn.ShapeError, match="bias of length 4"):
            clnn.add_bias(a, b4, axis=1)
        with pytest.raises(clnn.ShapeError, match="axis"):
            clnn.add_bias(a, b5, axis=2)
        with pytest.raises(clnn.OperandError, match="activation"):
            clnn.add_bias(a, b5, axis=1, activation="softplus")
        with pytest.raises(clnn.ShapeError):
            clnn.add_bias(a, b5, out=sq)


def test_activate_by_name(rt, rng):
    h = rng.uniform(-1, 1, 50).astype(np.float32)
    g = rng.standard_normal(50).astype(np.float32)
    with rt.vector(h) as x, rt.vector(g) as gr:
        np.testing.assert_array_equal(clnn.activate(x, None).to_numpy(), h)
        assert_close(clnn.activate(x, "tanh").to_numpy(), np.tanh(h.astype(float)), np.float32)
        np.testing.assert_array_equal(clnn.activate_grad(x, "identity").to_numpy(), 1)
        np.testing.assert_array_equal(clnn.activate_grad(x, "identity", gr).to_numpy(), g)
        np.testing.assert_array_equal(clnn.activate_grad(x, "relu", gr).to_numpy(),
                                      np.where(h > 0, g, 0))
        with pytest.raises(clnn.OperandError):
            clnn.activate(x, "gelu")


def test_bad_inputs_write_nothing(rt, device):
    with rt.vector(np.arange(5, dtype=np.float32)) as x, \
            rt.vector(np.arange(6, dtype=np.float32)) as x6, \
            rt.matrix(np.ones((5, 1), np.float32)) as m, \
            rt.vector(np.full(5, 7, np.float32)) as out:
        cases = [
            (clnn.ShapeError, lambda: clnn.add(x, x6, out=out)),
            (clnn.ShapeError, lambda: clnn.add(x, m, out=out)),
            (clnn.ShapeError, lambda: clnn.exp(x, out=x6)),
            (clnn.ShapeError, lambda: clnn.exp(x, out=m)),
            (clnn.OperandError, lambda: clnn.exp(np.ones(5), out=out)),
            (clnn.OperandError, lambda: clnn.add(x, [1, 2, 3, 4, 5], out=out)),
            (clnn.DTypeError, lambda: clnn.scale_shift(x, "a", out=out)),
        ]
        if device.fp64:
            with rt.vector(np.ones(5)) as xd:
                with pytest.raises(clnn.DTypeError, match="mixed dtypes"):
                    clnn.mul(x, xd, out=out)
        for err, f in cases:
            with pytest.raises(err):
                f()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with clnn.Runtime(device) as rt2, rt2.vector(5) as other:
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.add(x, other, out=out)
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.exp(x, out=other)
        gone = rt.vector(5)
        gone.release()
        with pytest.raises(clnn.ReleasedError):
            clnn.add(x, gone, out=out)
        with pytest.raises(clnn.ReleasedError):
            clnn.relu(x, out=gone)
        with pytest.raises(clnn.ReleasedError):
            clnn.sigmoid(gone[1:3])
        np.testing.assert_array_equal(out.to_numpy(), 7)
