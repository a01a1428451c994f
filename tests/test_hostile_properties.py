"""Hostile input, property tests (hypothesis): random shapes (awkward sizes included), layouts,
transposes, sub-matrix and strided views, dtypes, alpha/beta and NaN/Inf values; every op is
compared with numpy. A quick budget runs by default (derandomized, so CI sees the same cases), a
thorough one in the ``slow`` run. Then the special values the property tests found.
"""

from __future__ import annotations

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
        operands = ((matrix_spec(m, n), make_matrix), (vector_spec(n), make_vector),
                    (vector_spec(m), make_vector))
        _product_example(rt, data, dts, seed, clnn.mv, operands, special, alpha, beta, k=n)

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


def _product_example(rt, data, dts, seed: int, op, operands, special: str, alpha: float,
                     beta: float, k: int) -> None:
    """One example of ``op(a, b, out=c, alpha=alpha, beta=beta)`` (``clnn.mv`` or
    ``clnn.mm``): a drawn dtype, the three operands made from ``operands`` ((view strategy,
    maker) each; a and b hold ``special`` values, c its own draw), the result checked against
    float64 (``k`` the inner size) and nothing written outside the view c."""
    dtype = data.draw(st.sampled_from(dts))
    rng = np.random.default_rng(seed)
    made = []
    try:
        for i, (spec, make) in enumerate(operands):
            made.append(make(rt, data.draw(spec), dtype, rng,
                             special if i < 2 else data.draw(SPECIALS)))
        (_, a, ha), (_, b, hb), (parent, c, hc) = made
        what = op.__name__
        outside = _outside(parent, c)
        got = op(a, b, out=c, alpha=alpha, beta=beta).to_numpy()
        a64, b64, c64 = ha.astype(F64), hb.astype(F64), hc.astype(F64)
        with np.errstate(all="ignore"):
            want = alpha * (a64 @ b64) + (beta * c64 if beta != 0 else 0.0)
            scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + (
                abs(beta) * np.abs(c64) if beta != 0 else 0.0)
        check(got, want, dtype, k=k + 1, scale=scale, what=what)
        assert _outside(parent, c) == outside, f"{what} wrote outside out"
    finally:
        _release(*(m[0] for m in made))


@pytest.mark.parametrize("budget", BUDGETS)
def test_mm_matches_numpy(rt, budget):
    dts = _dtypes(rt.device)

    @_settings(budget)
    @given(data=st.data(), m=SIZES, n=SIZES, k=SIZES, seed=st.integers(0, 2**32 - 1),
           alpha=SCALARS, beta=SCALARS, special=SPECIALS)
    def prop(data, m, n, k, seed, alpha, beta, special):
        if m * n * k > 3_000_000:  # keep an example under a second
            k = max(1, 3_000_000 // (m * n))
        operands = ((matrix_spec(m, k), make_matrix), (matrix_spec(k, n), make_matrix),
                    (matrix_spec(m, n), make_matrix))
        _product_example(rt, data, dts, seed, clnn.mm, operands, special, alpha, beta, k=k)

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
