"""Hostile input.

1. Property tests (hypothesis): random shapes (awkward sizes included), layouts, transposes,
   sub-matrix and strided views, dtypes, alpha/beta and NaN/Inf values; every op is compared
   with numpy. A quick budget runs by default (derandomized, so CI sees the same cases), a
   thorough one in the ``slow`` run.
2. Malformed calls: wrong rank, negative or huge sizes, wrong dtypes, object arrays, views
   out of range, released or foreign buffers, bad scalars, overlapping outputs, bad device
   specs and environment variables. Each raises a clnn error, and the output the user passed
   is left exactly as it was.
3. KeyboardInterrupt during ``fit`` and during ``save`` leaves the last saved model intact and
   the runtime usable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import atol, rtol

import clnn

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
BUDGETS = [pytest.param(25, id="quick"),
           pytest.param(150, id="thorough", marks=pytest.mark.slow)]


def _settings(budget: int):
    return settings(max_examples=budget, deadline=None, derandomize=budget < 100,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _dtypes(device):
    return [F32, F64] if device.fp64 else [F32]


SIZES = st.one_of(st.integers(1, 20), st.sampled_from([1, 3, 17, 33, 64, 65, 127, 301, 1023]))
SCALARS = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.5, -3.25]),
                    st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=32))
SPECIALS = st.sampled_from(["none", "none", "none", "nan", "inf", "mixed", "ints"])


def _values(rng, shape, dtype, special: str) -> np.ndarray:
    if special == "ints":  # ties and exact zeros
        a = rng.integers(-3, 4, size=shape).astype(dtype)
    else:
        a = rng.uniform(-2, 2, size=shape).astype(dtype)
    if special in ("nan", "inf", "mixed") and a.size:
        k = max(1, a.size // 50)
        idx = rng.integers(0, a.size, size=k)
        pool = {"nan": [np.nan], "inf": [np.inf, -np.inf],
                "mixed": [np.nan, np.inf, -np.inf, 0.0]}[special]
        a.flat[idx] = rng.choice(pool, size=k)
    return a


# ---- building views of every kind --------------------------------------------------------
@st.composite
def matrix_spec(draw, m: int, n: int):
    """How to make an m x n operand: layout, transposed or not, offsets and padding."""
    return {"layout": draw(st.sampled_from(["row", "col"])), "trans": draw(st.booleans()),
            "di": draw(st.integers(0, 3)), "dj": draw(st.integers(0, 3)),
            "ei": draw(st.integers(0, 2)), "ej": draw(st.integers(0, 2)), "m": m, "n": n}


def make_matrix(rt, spec, dtype, rng, special="none"):
    """(device view, host copy) of the operand ``spec`` describes."""
    m, n = spec["m"], spec["n"]
    sm, sn = (n, m) if spec["trans"] else (m, n)  # the stored (untransposed) view
    di, dj = spec["di"], spec["dj"]
    parent = _values(rng, (sm + di + spec["ei"], sn + dj + spec["ej"]), dtype, special)
    order = "C" if spec["layout"] == "row" else "F"
    dev = rt.matrix(np.array(parent, order=order), layout=spec["layout"])
    view = dev[di:di + sm, dj:dj + sn]
    host = parent[di:di + sm, dj:dj + sn]
    if spec["trans"]:
        view, host = view.T, host.T
    assert view.shape == (m, n)
    return dev, view, host.copy()


@st.composite
def vector_spec(draw, n: int):
    return {"kind": draw(st.sampled_from(["vector", "vector", "row", "col"])),
            "off": draw(st.integers(0, 3)), "stride": draw(st.integers(1, 3)),
            "extra": draw(st.integers(0, 2)), "n": n}


def make_vector(rt, spec, dtype, rng, special="none"):
    n, off, s = spec["n"], spec["off"], spec["stride"]
    if spec["kind"] == "vector":
        parent = _values(rng, off + (n - 1) * s + 1 + spec["extra"], dtype, special)
        dev = rt.vector(parent)
        return dev, dev.subvector(off, n, s), parent[off:off + (n - 1) * s + 1:s].copy()
    # a row or column of a matrix: strided by the leading dimension
    rows = off + 2
    parent = _values(rng, (rows, n), dtype, special)
    layout = "row" if spec["kind"] == "row" else "col"
    dev = rt.matrix(np.array(parent, order="C" if layout == "row" else "F"), layout=layout)
    return dev, dev.row(off), parent[off].copy()


def check(got, want, dtype, k: int = 1, scale=None, what: str = "") -> None:
    """NaN where numpy has NaN, the same infinities, and the finite values within the
    tolerance of a sum of ``k`` terms (relative to ``scale``, the sum of magnitudes; required
    for sums, ``|want|`` for one-term maps). ``want`` is computed in float64."""
    if isinstance(want, (np.ndarray, np.generic)) and want.dtype != F64:
        raise TypeError(f"{what}: the reference is {want.dtype}, not float64")
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{what}: NaN positions differ\n{got}\n{want}"
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), f"{what}: infinities differ"
    fin = ~(nan | inf)
    if scale is None:
        scale = np.abs(want)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)
    with np.errstate(invalid="ignore"):
        err = np.abs(got[fin] - want[fin])
        tol = rtol(dtype, k) * np.maximum(scale[fin], 1e-300) + atol(dtype, k)
    bad = ~(err <= tol)
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} off, worst "
                           f"{np.max(err[bad] / np.maximum(scale[fin][bad], 1e-300)):.3g}")


def _release(*arrays) -> None:
    for a in arrays:
        a.release()


# ---- property tests ------------------------------------------------------------------------
@pytest.mark.parametrize("budget", BUDGETS)
def test_mv_matches_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), m=SIZES, n=SIZES, seed=st.integers(0, 2**32 - 1),
           alpha=SCALARS, beta=SCALARS, special=SPECIALS)
    def prop(data, m, n, seed, alpha, beta, special):
        dtype = data.draw(st.sampled_from(dts))
        rng = np.random.default_rng(seed)
        da, a, ha = make_matrix(rt, data.draw(matrix_spec(m, n)), dtype, rng, special)
        dx, x, hx = make_vector(rt, data.draw(vector_spec(n)), dtype, rng, special)
        dy, y, hy = make_vector(rt, data.draw(vector_spec(m)), dtype, rng,
                                data.draw(SPECIALS))
        outside = _outside(dy, y)
        try:
            got = clnn.mv(a, x, out=y, alpha=alpha, beta=beta).to_numpy()
            a64, x64, y64 = ha.astype(F64), hx.astype(F64), hy.astype(F64)
            with np.errstate(all="ignore"):
                want = alpha * (a64 @ x64) + (beta * y64 if beta != 0 else 0.0)
                scale = abs(alpha) * (np.abs(a64) @ np.abs(x64)) + (
                    abs(beta) * np.abs(y64) if beta != 0 else 0.0)
            check(got, want, dtype, k=n + 1, scale=scale, what="mv")
            assert _outside(dy, y) == outside, "mv wrote outside out"
        finally:
            _release(da, dx, dy)

    prop()


def _positions(view) -> np.ndarray:
    """Offsets of a view's elements in its owner's storage."""
    if isinstance(view, clnn.Vector):
        return view.offset + np.arange(view.n) * view.stride
    i, j = np.meshgrid(np.arange(view.m), np.arange(view.n), indexing="ij")
    if view.layout == "row":
        return (view.offset + i * view.ld + j).ravel()
    return (view.offset + i + j * view.ld).ravel()


def _outside(parent, view) -> bytes:
    """The bytes of ``parent``'s storage outside ``view`` (to check nothing else changed)."""
    h = parent.to_numpy()
    flat = h.ravel(order="F" if getattr(parent, "layout", "row") == "col" else "C")
    mask = np.ones(flat.size, bool)
    mask[_positions(view)] = False
    return flat[mask].tobytes()


@pytest.mark.parametrize("budget", BUDGETS)
def test_mm_matches_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), m=SIZES, n=SIZES, k=SIZES, seed=st.integers(0, 2**32 - 1),
           alpha=SCALARS, beta=SCALARS, special=SPECIALS)
    def prop(data, m, n, k, seed, alpha, beta, special):
        if m * n * k > 3_000_000:  # keep an example under a second
            k = max(1, 3_000_000 // (m * n))
        dtype = data.draw(st.sampled_from(dts))
        rng = np.random.default_rng(seed)
        da, a, ha = make_matrix(rt, data.draw(matrix_spec(m, k)), dtype, rng, special)
        db, b, hb = make_matrix(rt, data.draw(matrix_spec(k, n)), dtype, rng, special)
        dc, c, hc = make_matrix(rt, data.draw(matrix_spec(m, n)), dtype, rng,
                                data.draw(SPECIALS))
        outside = _outside(dc, c)
        try:
            got = clnn.mm(a, b, out=c, alpha=alpha, beta=beta).to_numpy()
            a64, b64, c64 = ha.astype(F64), hb.astype(F64), hc.astype(F64)
            with np.errstate(all="ignore"):
                want = alpha * (a64 @ b64) + (beta * c64 if beta != 0 else 0.0)
                scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + (
                    abs(beta) * np.abs(c64) if beta != 0 else 0.0)
            check(got, want, dtype, k=k + 1, scale=scale, what="mm")
            assert _outside(dc, c) == outside, "mm wrote outside out"
        finally:
            _release(da, db, dc)

    prop()


UNARY = {
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "relu": lambda a: np.where(
        np.isnan(a), a, np.maximum(a, 0)),
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


@pytest.mark.parametrize("budget", BUDGETS)
def test_elementwise_matches_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), m=SIZES, n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
           special=SPECIALS, op=st.sampled_from(sorted(UNARY) + sorted(BINARY)),
           as_vector=st.booleans())
    def prop(data, m, n, seed, special, op, as_vector):
        dtype = data.draw(st.sampled_from(dts))
        rng = np.random.default_rng(seed)
        made = []

        def operand():
            if as_vector:
                d, v, h = make_vector(rt, data.draw(vector_spec(m)), dtype, rng, special)
            else:
                d, v, h = make_matrix(rt, data.draw(matrix_spec(m, n)), dtype, rng, special)
            made.append(d)
            return v, h

        try:
            x, hx = operand()
            if op in UNARY:
                if op == "log":
                    hx = np.abs(hx)  # log of negatives is NaN: tested separately below
                    x.set(hx)
                got = getattr(clnn, op)(x)
                made.append(got)
                with np.errstate(all="ignore"):
                    want, scale = UNARY[op](hx.astype(F64)), None
            else:
                y, hy = operand()
                out, _ = operand()
                got = getattr(clnn, op)(x, y, out=out)
                with np.errstate(all="ignore"):
                    want = BINARY[op](hx.astype(F64), hy.astype(F64))
                    # a sum or difference: both terms; a product or quotient: one
                    scale = np.abs(hx.astype(F64)) + np.abs(hy.astype(F64)) if op in (
                        "add", "sub") else None
            # transcendental functions: a few ulps (OpenCL allows up to 4 for exp/log)
            check(got.to_numpy(), want, dtype, k=16, scale=scale, what=op)
        finally:
            _release(*made)

    prop()


@pytest.mark.parametrize("budget", BUDGETS)
def test_blas1_matches_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), n=SIZES, seed=st.integers(0, 2**32 - 1), alpha=SCALARS,
           special=SPECIALS, op=st.sampled_from(["axpy", "scal", "copy", "swap", "dot",
                                                 "nrm2", "asum", "iamax"]))
    def prop(data, n, seed, alpha, special, op):
        dtype = data.draw(st.sampled_from(dts))
        rng = np.random.default_rng(seed)
        if op == "iamax" and special in ("nan", "mixed"):
            special = "inf"  # NaNs are skipped by iamax (documented), numpy does not
        dx, x, hx = make_vector(rt, data.draw(vector_spec(n)), dtype, rng, special)
        dy, y, hy = make_vector(rt, data.draw(vector_spec(n)), dtype, rng,
                                data.draw(SPECIALS))
        x64, y64 = hx.astype(F64), hy.astype(F64)
        try:
            with np.errstate(all="ignore"):
                if op == "axpy":
                    check(clnn.axpy(alpha, x, y).to_numpy(), alpha * x64 + y64, dtype, 2,
                          np.abs(alpha * x64) + np.abs(y64), op)
                elif op == "scal":
                    check(clnn.scal(alpha, x).to_numpy(), alpha * x64, dtype, what=op)
                elif op == "copy":
                    assert np.array_equal(clnn.copy(x, out=y).to_numpy(), hx, equal_nan=True)
                elif op == "swap":
                    clnn.swap(x, y)
                    assert np.array_equal(x.to_numpy(), hy, equal_nan=True)
                    assert np.array_equal(y.to_numpy(), hx, equal_nan=True)
                elif op == "dot":
                    check(clnn.dot(x, y), x64 @ y64, dtype, n, np.abs(x64) @ np.abs(y64), op)
                elif op == "nrm2":  # terms >= 0: the result is the scale
                    norm = np.sqrt(np.sum(x64 * x64))
                    check(clnn.nrm2(x), norm, dtype, n, norm, op)
                elif op == "asum":
                    s = np.sum(np.abs(x64))
                    check(clnn.asum(x), s, dtype, n, s, op)
                else:
                    got = clnn.iamax(x)
                    assert got == int(np.argmax(np.abs(x64))), (got, hx)
        finally:
            _release(dx, dy)

    prop()


@pytest.mark.parametrize("budget", BUDGETS)
def test_reductions_match_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), m=SIZES, n=SIZES, seed=st.integers(0, 2**32 - 1),
           special=SPECIALS, op=st.sampled_from(["sum", "max", "argmax"]),
           axis=st.sampled_from([0, 1, None]))
    def prop(data, m, n, seed, special, op, axis):
        dtype = data.draw(st.sampled_from(dts))
        rng = np.random.default_rng(seed)
        if axis is None:
            d, a, h = make_vector(rt, data.draw(vector_spec(m)), dtype, rng, special)
        else:
            d, a, h = make_matrix(rt, data.draw(matrix_spec(m, n)), dtype, rng, special)
        h64 = h.astype(F64)
        try:
            with np.errstate(all="ignore"):
                if op == "sum":
                    got = clnn.sum(a, axis=axis)
                    got = got if axis is None else got.to_numpy()
                    k = h.size if axis is None else h.shape[axis]
                    check(got, np.sum(h64, axis=axis), dtype, k,
                          np.sum(np.abs(h64), axis=axis), op)
                elif op == "max":
                    got = clnn.max(a, axis=axis)
                    got = got if axis is None else got.to_numpy()
                    assert np.array_equal(np.asarray(got), np.max(h, axis=axis).astype(F64),
                                          equal_nan=True)
                else:
                    got = clnn.argmax(a, axis=axis)
                    got = np.asarray(got if axis is None else got.to_numpy()).astype(int)
                    assert np.array_equal(got, np.argmax(h, axis=axis)), (got, h)
        finally:
            d.release()

    prop()


def test_special_values_elementwise(rt, dtype):
    v = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-30, 88.0, -88.0, 1e30],
                 dtype)
    with rt.vector(v) as x, np.errstate(all="ignore"):
        for op in ("exp", "log", "tanh", "sigmoid", "relu"):
            with getattr(clnn, op)(x) as y:
                f = UNARY[op]
                check(y.to_numpy(), f(v.astype(F64)), dtype, k=16, what=op)


@pytest.mark.parametrize("vals", [[np.inf], [1.0, np.inf], [-np.inf, 2.0, 3.0]],
                         ids=["inf", "1,inf", "-inf,2,3"])
def test_compensated_sums_keep_infinity(rt, dtype, vals):
    """Found by the property tests: Kahan corrections computed inf - inf = NaN."""
    h = np.array(vals, dtype)
    with rt.vector(h) as x, rt.vector(np.ones_like(h)) as ones, \
            rt.matrix(h[None, :]) as row:
        got = {"dot": clnn.dot(x, ones), "asum": clnn.asum(x), "sum": clnn.sum(x),
               "sum axis=1": float(clnn.sum(row, axis=1).to_numpy()[0])}
    want = {"dot": h.sum(), "asum": np.abs(h).sum(), "sum": h.sum(), "sum axis=1": h.sum()}
    assert got == want


def test_beta_zero_never_reads_out(rt, dtype):
    """With beta == 0, NaN/Inf garbage in ``out`` does not leak into the result."""
    a = np.ones((5, 7), dtype)
    with rt.matrix(a) as da, rt.vector(np.ones(7, dtype)) as x, \
            rt.vector(np.full(5, np.nan, dtype)) as y, \
            rt.matrix(np.full((5, 5), np.inf, dtype)) as c:
        assert np.array_equal(clnn.mv(da, x, out=y, beta=0.0).to_numpy(), np.full(5, 7.0))
        assert np.array_equal(clnn.mm(da, da.T, out=c, beta=0).to_numpy(), np.full((5, 5), 7))


# ---- malformed calls ------------------------------------------------------------------------
class Outputs:
    """Outputs whose contents are checked to be unchanged after a refused call."""

    def __init__(self, rt, dtype):
        rng = np.random.default_rng(11)
        self.y = rt.vector(rng.standard_normal(5).astype(dtype))
        self.c = rt.matrix(rng.standard_normal((5, 5)).astype(dtype))
        self.s = rt.vector(rng.standard_normal(1).astype(dtype))
        self.snapshot()

    def snapshot(self) -> None:
        self.before = {k: getattr(self, k).to_numpy() for k in ("y", "c", "s")}

    def unchanged(self) -> None:
        for k, v in self.before.items():
            assert np.array_equal(getattr(self, k).to_numpy(), v), f"{k} was written"


def _bad_calls(rt, o: Outputs, dtype):
    """(name, callable, expected error) of every malformed call tried."""
    other = np.float64 if dtype == np.float32 else np.float32
    a = rt.matrix(np.ones((5, 7), dtype))
    x = rt.vector(np.ones(7, dtype))
    x5 = rt.vector(np.ones(5, dtype))
    gone = rt.vector(np.ones(7, dtype))
    gone.release()
    gone_m = rt.matrix(np.ones((5, 7), dtype))
    gone_view = gone_m.T
    gone_m.release()
    xo = rt.vector(np.ones(7, other)) if rt.device.fp64 else None
    foreign = clnn.Runtime(rt.device)
    fa = foreign.matrix(np.ones((5, 7), dtype))
    fx = foreign.vector(np.ones(7, dtype))
    import pyopencl as cl
    import pyopencl.array as cla

    raw = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 64)
    claa = cla.zeros(rt.queue, 7, dtype)
    E = clnn
    y, c, s = o.y, o.c, o.s
    cases = [
        # wrong rank / wrong kind of operand
        ("mv(vector, vector)", lambda: clnn.mv(x, x, out=y), E.ShapeError),
        ("mv(matrix, matrix)", lambda: clnn.mv(a, a, out=y), E.ShapeError),
        ("mv out=matrix", lambda: clnn.mv(a, x, out=c), E.ShapeError),
        ("mm(vector, matrix)", lambda: clnn.mm(x, a, out=c), E.ShapeError),
        ("mm out=vector", lambda: clnn.mm(a, a.T, out=y), E.ShapeError),
        ("mv numpy matrix", lambda: clnn.mv(np.ones((5, 7), dtype), x, out=y), E.OperandError),
        ("mv numpy vector", lambda: clnn.mv(a, np.ones(7, dtype), out=y), E.OperandError),
        ("mv numpy out", lambda: clnn.mv(a, x, out=np.zeros(5, dtype)), E.OperandError),
        ("mv list", lambda: clnn.mv([[1.0] * 7] * 5, x, out=y), E.OperandError),
        ("mv None", lambda: clnn.mv(None, x, out=y), E.OperandError),
        ("mv str", lambda: clnn.mv("a", x, out=y), E.OperandError),
        ("mv int", lambda: clnn.mv(3, x, out=y), E.OperandError),
        ("mv pyopencl Buffer", lambda: clnn.mv(a, raw, out=y), E.OperandError),
        ("mv pyopencl Array", lambda: clnn.mv(a, claa, out=y), E.OperandError),
        ("add numpy", lambda: clnn.add(np.ones(5, dtype), x5, out=y), E.ClnnError),
        ("dot list", lambda: clnn.dot([1.0] * 5, x5, out=s), E.ClnnError),
        ("sum of numpy", lambda: clnn.sum(np.ones((5, 5)), axis=0, out=y), E.ClnnError),
        # shapes that do not fit
        ("mv x too short", lambda: clnn.mv(a, x5, out=y), E.ShapeError),
        ("mv out too long", lambda: clnn.mv(a, x, out=x), E.ShapeError),
        ("mm inner mismatch", lambda: clnn.mm(a, a, out=c), E.ShapeError),
        ("mm out shape", lambda: clnn.mm(a.T, a, out=c), E.ShapeError),
        ("add shapes", lambda: clnn.add(x5, x, out=y), E.ShapeError),
        ("axpy shapes", lambda: clnn.axpy(1.0, x, y), E.ShapeError),
        ("dot lengths", lambda: clnn.dot(x, y, out=s), E.ShapeError),
        ("dot out length", lambda: clnn.dot(x5, x5, out=y), E.ShapeError),
        ("sum axis 2", lambda: clnn.sum(c, axis=2, out=y), E.ClnnError),
        ("sum axis -3", lambda: clnn.sum(c, axis=-3, out=y), E.ClnnError),
        ("sum axis str", lambda: clnn.sum(c, axis="0", out=y), E.ClnnError),
        ("argmax out wrong", lambda: clnn.argmax(c, axis=1, out=s), E.ShapeError),
        ("add_bias shapes", lambda: clnn.add_bias(c, x, axis=1, out=c), E.ShapeError),
        ("add_bias activation", lambda: clnn.add_bias(c, y, axis=1, activation="nope",
                                                      out=c), E.ClnnError),
        ("rk shapes", lambda: clnn.rk(1.0, x, x5, c), E.ShapeError),
        # overlapping outputs
        ("mv out is x", lambda: clnn.mv(c, c.row(0), out=c.row(1)), E.ShapeError),
        ("mm out is a", lambda: clnn.mm(c, c, out=c), E.ShapeError),
        ("mv out overlaps a", lambda: clnn.mv(c, y, out=c.col(0)), E.ShapeError),
        ("add out overlaps", lambda: clnn.add(c[0:2, :], c[1:3, :], out=c[1:3, :]),
         E.ShapeError),
        ("swap overlapping", lambda: clnn.swap(y, y), E.ShapeError),
        # bad scalars
        ("alpha str", lambda: clnn.mv(a, x, out=y, alpha="2"), E.DTypeError),
        ("alpha None", lambda: clnn.mv(a, x, out=y, alpha=None), E.DTypeError),
        ("alpha complex", lambda: clnn.mv(a, x, out=y, alpha=1j), E.DTypeError),
        ("alpha bool", lambda: clnn.mv(a, x, out=y, alpha=True), E.DTypeError),
        ("alpha array", lambda: clnn.mv(a, x, out=y, alpha=np.ones(2)), E.DTypeError),
        ("beta list", lambda: clnn.mm(c, c.T, out=a[0:5, 0:5], beta=[1]), E.DTypeError),
        ("scal alpha str", lambda: clnn.scal("x", y), E.DTypeError),
        ("axpy alpha None", lambda: clnn.axpy(None, x5, y), E.DTypeError),
        # released and foreign buffers
        ("mv released x", lambda: clnn.mv(a, gone, out=y), E.ReleasedError),
        ("mv released view", lambda: clnn.mv(gone_view, x5, out=x), E.ReleasedError),
        ("add released", lambda: clnn.add(gone, x, out=x), E.ReleasedError),
        ("mv foreign a", lambda: clnn.mv(fa, x, out=y), E.RuntimeMismatchError),
        ("mv foreign x", lambda: clnn.mv(a, fx, out=y), E.RuntimeMismatchError),
        ("mm foreign", lambda: clnn.mm(fa, a.T, out=c), E.RuntimeMismatchError),
        ("add foreign", lambda: clnn.add(fx, x, out=x), E.RuntimeMismatchError),
        ("dot foreign", lambda: clnn.dot(fx, x, out=s), E.RuntimeMismatchError),
        # views out of range
        ("subvector past end", lambda: x.subvector(5, 3), E.ShapeError),
        ("subvector negative", lambda: x.subvector(-1, 3), E.ShapeError),
        ("subvector stride 0", lambda: x.subvector(0, 3, 0), E.ShapeError),
        ("subvector stride -1", lambda: x.subvector(6, 3, -1), E.ShapeError),
        ("subvector float", lambda: x.subvector(0.5, 3), E.ShapeError),
        ("vector slice empty", lambda: x[7:9], E.ShapeError),
        ("vector slice reversed", lambda: x[::-1], E.ShapeError),
        ("vector index past end", lambda: x[7], E.ShapeError),
        ("submatrix past end", lambda: a.submatrix(3, 0, 3, 7), E.ShapeError),
        ("submatrix negative", lambda: a.submatrix(-1, 0, 2, 2), E.ShapeError),
        ("submatrix zero", lambda: a.submatrix(0, 0, 0, 2), E.ShapeError),
        ("matrix slice step", lambda: a[::2, :], E.ShapeError),
        ("matrix row out", lambda: a.row(5), E.ShapeError),
        ("matrix col out", lambda: a.col(-1), E.ShapeError),
        ("matrix row index past end", lambda: a[5], E.ShapeError),
        ("matrix 3 indices", lambda: a[1, 2, 3], E.OperandError),
        ("as_vector strided", lambda: a[0:2, 0:2].as_vector(), E.ShapeError),
        # set() with wrong data: nothing written
        ("set wrong length", lambda: y.set(np.ones(6)), E.ShapeError),
        ("set wrong shape", lambda: c.set(np.ones((5, 4))), E.ShapeError),
        ("set rank", lambda: y.set(np.ones((5, 1))), E.ShapeError),
        ("set complex", lambda: y.set(np.ones(5) * 1j), E.DTypeError),
        ("set objects", lambda: y.set(np.array([1, None, 3, 4, 5], dtype=object)),
         E.DTypeError),
        ("set strings", lambda: y.set(["a"] * 5), E.DTypeError),
        ("set ragged", lambda: c.set([[1.0], [1.0, 2.0]]), E.ShapeError),
        ("set released", lambda: gone.set(np.ones(7)), E.ReleasedError),
    ]
    if xo is not None:
        cases += [
            ("mv mixed dtypes", lambda: clnn.mv(a, xo, out=y), E.DTypeError),
            ("mm mixed dtypes", lambda: clnn.mm(a, rt.matrix(np.ones((7, 5), other)),
                                                out=c), E.DTypeError),
            ("add mixed dtypes", lambda: clnn.add(x, xo, out=x), E.DTypeError),
            ("dot mixed dtypes", lambda: clnn.dot(x, xo, out=s), E.DTypeError),
        ]
    keep = (a, x, x5, gone, gone_m, xo, fa, fx, raw, claa)
    return cases, foreign, keep


def test_malformed_calls_raise_and_write_nothing(rt, dtype):
    o = Outputs(rt, dtype)
    cases, foreign, keep = _bad_calls(rt, o, dtype)
    failures = []
    try:
        for name, call, err in cases:
            o.snapshot()
            try:
                call()
            except err:
                pass
            except Exception as e:  # noqa: BLE001 - collected and reported below
                failures.append(f"{name}: {type(e).__name__}: {e}")
            else:
                failures.append(f"{name}: no error")
            try:
                o.unchanged()
            except AssertionError as e:
                failures.append(f"{name}: {e}")
    finally:
        foreign.release()
    assert not failures, "\n".join(f[:300] for f in failures)
    assert len(cases) >= 70
    _runtime_still_works(rt, dtype)
    del keep


def _runtime_still_works(rt, dtype):
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    with rt.matrix(a) as da, rt.vector(np.ones(4, dtype)) as x, clnn.mv(da, x) as y:
        assert np.array_equal(y.to_numpy(), a.sum(axis=1))


BAD_SIZES = [-1, 0, 2**31, 2**63, 2**64, 3.5, True, None, "3", np.int64(-5), np.float32(2),
             1j, [3], (3,)]


@pytest.mark.parametrize("n", BAD_SIZES, ids=[repr(b) for b in BAD_SIZES])
def test_bad_vector_sizes(rt, n):
    before = rt.allocations
    with pytest.raises(clnn.ClnnError):
        if isinstance(n, tuple):  # a 1-tuple is a shape only for zeros(); vector() takes data
            rt.vector((3, 4, 5), dtype="int8")
        else:
            v = rt.vector(n)
            if isinstance(n, list):  # [3] is data, not a size: fine, and one element
                assert v.to_numpy().tolist() == [3.0]
                v.release()
                raise clnn.ShapeError("data")
    assert rt.allocations - before <= 1
    _runtime_still_works(rt, np.float32)


BAD_SHAPES = [(-1, 3), (3, 0), (0, 0), (2**31, 2), (2**40, 2**40), (3,), (1, 2, 3), (3.0, 2),
              (True, 2), ("3", 2), (None, 2), (2**64, 1)]


@pytest.mark.parametrize("shape", BAD_SHAPES, ids=[repr(b) for b in BAD_SHAPES])
def test_bad_matrix_shapes(rt, shape):
    with pytest.raises(clnn.ClnnError):
        m = rt.matrix(shape)
        m.release()  # a shape that was taken as data must still be 2-d
    _runtime_still_works(rt, np.float32)


BAD_DATA = {
    "objects": np.array([[1, None], [2, 3]], dtype=object),
    "object-floats": np.array([[1.0, 2.0]], dtype=object),
    "strings": np.array([["a", "b"]]),
    "bytes": np.array([[b"a"]]),
    "complex": np.ones((2, 2), complex),
    "datetime": np.array([["2020-01-01"]], dtype="datetime64[D]"),
    "structured": np.zeros((2, 2), dtype=[("a", "f4")]),
    "ragged": [[1.0, 2.0], [3.0]],
    "empty": np.zeros((0, 3)),
    "3-d": np.ones((2, 2, 2)),
    "scalar": np.float32(1.0),
    "dict": {"a": 1},
    "set": {1.0, 2.0},
    "generator": (i for i in range(3)),
}


@pytest.mark.parametrize("what", list(BAD_DATA), ids=list(BAD_DATA))
def test_bad_matrix_data(rt, what):
    with pytest.raises(clnn.ClnnError):
        rt.matrix(BAD_DATA[what]).release()
    _runtime_still_works(rt, np.float32)


BAD_DTYPES = [np.int32, np.float16, np.complex64, object, "str", "float128", "nonsense", 3,
              np.dtype([("a", "f4")]), np.bool_]


@pytest.mark.parametrize("dt", BAD_DTYPES, ids=[repr(b) for b in BAD_DTYPES])
def test_bad_dtype_argument(rt, dt):
    for make in (lambda: rt.vector(3, dtype=dt), lambda: rt.matrix((2, 2), dtype=dt),
                 lambda: rt.zeros(3, dtype=dt), lambda: rt.vector([1.0, 2.0], dtype=dt)):
        with pytest.raises(clnn.DTypeError):
            make()


def test_numpy_inputs_of_any_memory_order_are_copied_correctly(rt, dtype):
    """Not malformed, but easy to get wrong: strided, reversed, broadcast, Fortran and
    integer numpy inputs are copied with the right values."""
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    for host in (base[::2, ::3], base[::-1, ::-1], base.T, np.asfortranarray(base),
                 np.broadcast_to(np.arange(4.0), (3, 4)), base.astype(np.int16),
                 base[1:4, 2:9]):
        with rt.matrix(host, dtype=dtype) as m:
            assert np.array_equal(m.to_numpy(), host.astype(dtype))
    for host in (base[0, ::3], base[::-1, 0], np.broadcast_to(np.float32(2), (5,)),
                 base[2], np.arange(5, dtype=np.uint8)):
        with rt.vector(host, dtype=dtype) as v:
            assert np.array_equal(v.to_numpy(), host.astype(dtype))
        with rt.vector(len(host), dtype=dtype) as v:
            v.set(host)
            assert np.array_equal(v.to_numpy(), host.astype(dtype))


# ---- devices and environment variables ------------------------------------------------------
BAD_SPECS = ["nonsense", "99", "99:99", "0:99", "-1", "", "  ", "gpu:0:1", ":", "0:", "accelerator",
             "\x00", "ü" * 300]


@pytest.mark.parametrize("spec", BAD_SPECS, ids=[repr(s)[:20] for s in BAD_SPECS])
def test_bad_device_specs(spec):
    kinds = {d.type.lower() for d in clnn.devices()}
    if spec.strip().lower() in kinds:
        pytest.skip(f"{spec!r} names a device here")
    with pytest.raises(clnn.DeviceError):
        clnn.Runtime(spec)


@pytest.mark.parametrize("spec", [99, -1, 2**70, 3.5, b"cpu", ["cpu"], object(), True],
                         ids=lambda s: repr(s)[:20])
def test_bad_device_spec_types(spec):
    with pytest.raises(clnn.DeviceError):
        clnn.Runtime(spec)


@pytest.mark.parametrize("var", ["CLNN_DEVICE", "PYOPENCL_CTX"])
@pytest.mark.parametrize("value", ["nonsense", "7:7", "0:42", "gpu-of-dreams"])
def test_bad_device_env_vars(monkeypatch, var, value):
    monkeypatch.delenv("CLNN_DEVICE", raising=False)
    monkeypatch.setenv(var, value)
    with pytest.raises(clnn.DeviceError, match=var):
        clnn.Runtime()
    with pytest.raises(clnn.DeviceError):
        clnn.select_device()
    # an explicit spec still wins over a bad environment
    with clnn.Runtime(clnn.devices()[0].spec) as rt:
        _runtime_still_works(rt, np.float32)


def _run_cli(env_extra: dict, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    return subprocess.run([sys.executable, "-m", "clnn", *argv], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("env", [{"CLNN_DEVICE": "nonsense"}, {"PYOPENCL_CTX": "9:9"},
                                 {"CLNN_DEVICE": "0:77"}], ids=lambda e: str(e))
def test_cli_with_bad_env_is_one_line_error(env):
    env = dict(env)
    env.setdefault("CLNN_DEVICE", "")
    r = _run_cli(env, "demo")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("clnn: error:") and "Traceback" not in r.stderr


def test_odd_cache_and_tuning_env_vars_do_not_break_anything(tmp_path):
    """CLNN_CACHE_DIR on a file, CLNN_TUNING_DB on a folder, POCL_CACHE_DIR unwritable: the
    caches are skipped and the results are still right (child process)."""
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for env in ({"CLNN_CACHE_DIR": str(afile)}, {"CLNN_TUNING_DB": str(tmp_path)},
                {"CLNN_CACHE_DIR": "/proc/nope"}, {"CLNN_CACHE_GUARD": "0"},
                {"CLNN_TUNING_DB": str(afile)}):
        r = _run_cli(env, "demo")
        assert r.returncode == 0, (env, r.stderr[-2000:])
        assert "y = [" in r.stdout


# ---- KeyboardInterrupt during fit and save ---------------------------------------------------
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
    _runtime_still_works(rt, np.float32)


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
    _runtime_still_works(rt, np.float32)


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
    _runtime_still_works(rt, np.float32)

