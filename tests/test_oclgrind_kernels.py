"""A small-size sweep of every kernel family and variant, for ``tox -e oclgrind``.

Each family runs with its default tunables for the device under test and with other sets
(written to a private tuning database, as ``clnn tune`` would), skipped only where a set is
invalid for the device; both dtypes, both layouts, transposes and strided views, at sizes
1, 3, 17 and 33. Everything is compared with float64 numpy. On Oclgrind (``tox -e oclgrind``)
conftest.py also fails a test whose kernels read or write out of bounds or race; the sizes are
small because the simulator is slow. The module runs on every device in the main suite too.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import warnings

import numpy as np
import pytest
from oclgrind_log import simulator
from tolerances import assert_close

import clnn
from clnn import tuning

pytestmark = pytest.mark.oclgrind

G = importlib.import_module("clnn.gemm")
RT = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


@pytest.fixture(autouse=True)
def _private_db(device, tmp_path, monkeypatch):
    """No user tuning database: the defaults are clnn's own for the device. On a real device
    the sweep is left to ``CLNN_SWEEP=1`` (its many small kernel builds took minutes on PoCL,
    and the main suite covers these paths at larger sizes)."""
    if not simulator(device) and not os.environ.get("CLNN_SWEEP"):
        pytest.skip("the small-size kernel sweep runs on simulators (tox -e oclgrind); "
                    "CLNN_SWEEP=1 runs it on this device")
    monkeypatch.setenv("CLNN_TUNING_DB", str(tmp_path / "none.json"))
    tuning.clear_cache()
    yield
    tuning.clear_cache()


def _use(device, tmp_path, monkeypatch, family, sets):
    """Write ``sets`` ({variant: params}) for both dtypes as the device's tuned values;
    skip when a set is invalid for this device; return the merged params per variant."""
    entries, merged = {}, {}
    for variant, p in sets.items():
        for dt in ("float", "double"):
            m = dict(tuning.defaults(device, family, variant, dt), **p)
            try:
                tuning.check(device, family, variant, dt, m)
            except ValueError as e:
                pytest.skip(f"{family}/{variant} {p}: not valid on this device: {e}")
            entries[f"{family}/{variant}/{dt}/any"] = {"params": p}
            merged[variant, dt] = m
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"format": "clnn-tuning", "version": tuning.FORMAT_VERSION,
                                "devices": {device.key: {"entries": entries}}}))
    monkeypatch.setenv("CLNN_TUNING_DB", str(path))
    tuning.clear_cache()
    return merged


class Failures:
    """Collects the cases that failed, so one test reports all of them."""

    def __init__(self):
        self.bad = []

    def check(self, what, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except AssertionError as e:
            self.bad.append(f"{what}: {str(e).splitlines()[0] if str(e) else 'assert'}")

    def done(self):
        assert not self.bad, f"{len(self.bad)} case(s) wrong:\n" + "\n".join(self.bad)


def _rn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- gemv --------------------------------------------------------------------------------
GEMV_SETS = {
    "defaults": None,
    # work-groups of 8 with a local reduction, columns split and added by gemv_sum
    "wg8-split": {"row": {"WGS": 8, "RPT": 2, "VW": 4, "NG": 64, "KMIN": 4, "AL": 1,
                          "NVW": 4, "SMIN": 1},
                  "col": {"ACC": 0, "WGS": 8, "RPT": 2, "VW": 2, "NG": 64, "KMIN": 4,
                          "AL": 1, "NVW": 2, "SMIN": 1}},
    # one work-item per group: row blocks of 3 rows, register accumulation (ACC=1) in col
    "wg1-acc1-split": {"row": {"WGS": 1, "RPT": 3, "VW": 2, "NG": 7, "KMIN": 4, "AL": 0,
                               "NVW": 2, "SMIN": 1},
                       "col": {"WGS": 1, "ACC": 1, "RPT": 1, "VW": 4, "CU": 3, "MB": 8,
                               "NG": 9, "KMIN": 4, "AL": 1, "NVW": 4, "SMIN": 1}},
    "wg1-nosplit": {"row": {"WGS": 1, "RPT": 4, "VW": 8, "NG": 1, "KMIN": 1 << 30, "AL": 1,
                            "NVW": 8},
                    "col": {"WGS": 1, "ACC": 1, "RPT": 1, "VW": 8, "CU": 8, "MB": 1 << 20,
                            "NG": 1, "KMIN": 1 << 30, "AL": 0, "NVW": 8}},
    # persistent work-groups taking units from a counter (CPU devices only)
    "acc2": {"row": {"WGS": 1, "RPT": 2, "VW": 4, "NG": 5, "NVW": 4},
             "col": {"WGS": 1, "ACC": 2, "RPT": 1, "VW": 4, "CU": 3, "MB": 8, "NG": 3,
                     "PAN": 5}},
}
# (rows, cols) of op(A): the narrow kernels (<= 8 columns or rows), split and plain ones
GEMV_SHAPES = [(1, 1), (3, 17), (17, 3), (33, 17), (17, 33)]


@pytest.mark.parametrize("tset", list(GEMV_SETS))
def test_gemv_sweep(rt, device, dtype, tset, tmp_path, monkeypatch, rng):
    if GEMV_SETS[tset] is not None:
        _use(device, tmp_path, monkeypatch, "gemv", GEMV_SETS[tset])
    f = Failures()
    with warnings.catch_warnings():
        warnings.simplefilter("error", tuning.TuningWarning)  # the set must be used
        for (layout, trans), (m, n) in itertools.product(
                [("row", False), ("row", True), ("col", False), ("col", True)], GEMV_SHAPES):
            A = _rn(rng, (n, m) if trans else (m, n), dtype)
            opA = (A.T if trans else A).astype(np.float64)
            x, y0 = _rn(rng, n, dtype), _rn(rng, m, dtype)
            with rt.matrix(A, layout=layout) as a, rt.vector(x) as xv, rt.vector(y0) as yv:
                op = a.T if trans else a
                clnn.mv(op, xv, out=yv, alpha=-1.5, beta=0.25)
                want = -1.5 * (opA @ x) + 0.25 * y0
                scale = 1.5 * np.abs(opA) @ np.abs(x) + 0.25 * np.abs(y0)
                f.check(f"{layout}{'T' if trans else 'N'} {m}x{n}", assert_close,
                        yv.to_numpy(), want, dtype, k=n, scale=scale)
        # views: offsets, leading dimensions, strided x and y (gaps untouched), beta=0 with NaN
        for layout, trans, (m, n) in [("row", False, (17, 33)), ("col", False, (33, 17)),
                                      ("row", True, (3, 17)), ("col", True, (17, 3))]:
            big = _rn(rng, (n + 3, m + 5) if trans else (m + 3, n + 5), dtype)
            hx = _rn(rng, 1 + 2 * n, dtype)
            hy = np.full(2 + 3 * m, np.nan, dtype)
            with rt.matrix(big, layout=layout) as a, rt.vector(hx) as xb, rt.vector(hy) as yb:
                s = a.submatrix(2, 3, n, m).T if trans else a.submatrix(2, 3, m, n)
                hs = (big[2:2 + n, 3:3 + m].T if trans else big[2:2 + m, 3:3 + n])
                clnn.mv(s, xb.subvector(1, n, 2), out=yb.subvector(2, m, 3), alpha=0.5)
                got = yb.to_numpy()
                hs64, x64 = hs.astype(np.float64), hx[1::2][:n].astype(np.float64)
                f.check(f"view {layout}{'T' if trans else 'N'} {m}x{n}", assert_close,
                        got[2::3][:m], 0.5 * hs64 @ x64, dtype, k=n,
                        scale=0.5 * np.abs(hs64) @ np.abs(x64))
                mask = np.ones(got.size, bool)
                mask[2:2 + 3 * m:3] = False
                if not np.isnan(got[mask]).all():
                    f.bad.append(f"view {layout} {m}x{n}: wrote outside y's elements")
    f.done()


# ---- gemm --------------------------------------------------------------------------------
GEMM_SETS = {
    "ref-defaults": ("ref", None),
    "ref-ts4": ("ref", {"TS": 4, "WPT": 2}),
    "ref-ts8": ("ref", {"TS": 8, "WPT": 8}),
    "ref-ts1": ("ref", {"TS": 1, "WPT": 1}),
    "packed-defaults": ("packed", None),
    "packed-1x1": ("packed", {"MR": 1, "NR": 1, "VW": 1, "UK": 1, "KB": 1, "CACHE": 1,
                              "TPW": 1, "DIRECTN": 100000}),
    "packed-odd": ("packed", {"MR": 3, "NR": 8, "VW": 4, "UK": 3, "KB": 7, "CACHE": 1,
                              "TPW": 3, "DIRECTN": 1}),
    "packed-wide": ("packed", {"MR": 4, "NR": 16, "VW": 8, "UK": 2, "KB": 16, "CACHE": 4,
                               "TPW": 2, "DIRECTN": 100000}),
}
# every layout of a, b and c, each with one of the four transposes (both values of each)
GEMM_CASES = [(la, lb, lc, tt) for (la, lb, lc), tt in zip(
    itertools.product(["row", "col"], repeat=3), ["NN", "NT", "TN", "TT"] * 2)]
GEMM_SIZES = [(1, 1, 1), (3, 17, 5), (17, 3, 33), (33, 17, 3)]


@pytest.mark.parametrize("tset", list(GEMM_SETS))
def test_gemm_sweep(rt, device, dtype, tset, rng):
    variant, p = GEMM_SETS[tset]
    rtype = RT[dtype]
    if p is None:
        p = tuning.params(device, "gemm", variant, rtype, "medium" if variant == "packed"
                          else tuning.ANY)
    if p.get("VW", 1) * dtype.itemsize > 64:
        p = dict(p, VW=p["VW"] // 2)
    try:
        tuning.check(device, "gemm", variant, rtype, p)
    except ValueError as e:
        pytest.skip(f"gemm {variant} {p}: not valid on this device: {e}")
    f = Failures()
    for i, (la, lb, lc, tt) in enumerate(GEMM_CASES):
        m, n, k = GEMM_SIZES[i % len(GEMM_SIZES)]
        ta, tb = tt[0] == "T", tt[1] == "T"
        A = _rn(rng, (k, m) if ta else (m, k), dtype)
        B = _rn(rng, (n, k) if tb else (k, n), dtype)
        C0 = _rn(rng, (m, n), dtype)
        opA, opB = (A.T if ta else A).astype(np.float64), (B.T if tb else B).astype(np.float64)
        with rt.matrix(A, layout=la) as a, rt.matrix(B, layout=lb) as b, \
                rt.matrix(C0, layout=lc) as c:
            G._mm(a.T if ta else a, b.T if tb else b, c, 1.5, -0.5, variant=variant, params=p)
            f.check(f"{la}{lb}{lc} {tt} {m}x{n}x{k}", assert_close, c.to_numpy(),
                    1.5 * opA @ opB - 0.5 * C0, dtype, k=k,
                    scale=1.5 * np.abs(opA) @ np.abs(opB) + 0.5 * np.abs(C0))
    # sub-matrix views of bigger operands, beta = 0 over NaN
    m, n, k = 17, 3, 33
    hA, hB = _rn(rng, (m + 2, k + 3), dtype), _rn(rng, (k + 1, n + 4), dtype)
    with rt.matrix(hA, layout="col") as a, rt.matrix(hB) as b, \
            rt.matrix(np.full((m + 3, n + 2), np.nan, dtype), layout="col") as c:
        sa, sb, sc = a.submatrix(1, 2, m, k), b.submatrix(1, 3, k, n), c.submatrix(2, 1, m, n)
        G._mm(sa, sb, sc, 1.0, 0.0, variant=variant, params=p)
        opA, opB = hA[1:1 + m, 2:2 + k].astype(np.float64), hB[1:1 + k, 3:3 + n].astype(float)
        got = c.to_numpy()
        f.check("views", assert_close, got[2:2 + m, 1:1 + n], opA @ opB, dtype, k=k,
                scale=np.abs(opA) @ np.abs(opB))
        got[2:2 + m, 1:1 + n] = np.nan
        if not np.isnan(got).all():
            f.bad.append("views: wrote outside c's view")
    f.done()


# ---- blas1 -------------------------------------------------------------------------------
BLAS1_SETS = {
    "defaults": None,
    "cpu-like": {"WGS": 1, "WGS2": 1, "VW": 4, "NACC": 2, "BLKV": 4, "MINCHUNK": 16,
                 "MAXG": 8},
    "mixed": {"WGS": 4, "WGS2": 8, "VW": 2, "NACC": 2, "BLKV": 6, "MINCHUNK": 8, "MAXG": 5},
    "gpu-small": {"WGS": 16, "WGS2": 4, "VW": 1, "NACC": 1, "BLKV": 2, "MINCHUNK": 4,
                  "MAXG": 16},
}
BLAS1_SIZES = [1, 3, 17, 33, 301]


@pytest.mark.parametrize("tset", list(BLAS1_SETS))
def test_blas1_sweep(rt, device, dtype, tset, tmp_path, monkeypatch, rng):

    if BLAS1_SETS[tset] is not None:
        _use(device, tmp_path, monkeypatch, "blas1", {"reduce": BLAS1_SETS[tset]})
    f = Failures()
    for n in BLAS1_SIZES:
        for inc, off in ((1, 0), (1, 1), (3, 2)):
            hx = _rn(rng, off + inc * n + 2, dtype)
            hy = _rn(rng, off + inc * n + 2, dtype)
            hx[off + inc * (n // 2)] *= 40  # a clear maximum for iamax
            x64 = hx[off::inc][:n].astype(np.float64)
            y64 = hy[off::inc][:n].astype(np.float64)
            with rt.vector(hx) as bx, rt.vector(hy) as by:
                x, y = bx.subvector(off, n, inc), by.subvector(off, n, inc)
                w = f"n={n} inc={inc} off={off}"
                f.check(f"dot {w}", assert_close, clnn.dot(x, y), x64 @ y64, dtype,
                        scale=np.abs(x64 * y64).sum())
                f.check(f"asum {w}", assert_close, clnn.asum(x), np.abs(x64).sum(), dtype)
                f.check(f"nrm2 {w}", assert_close, clnn.nrm2(x), np.linalg.norm(x64), dtype,
                        k=n, scale=np.linalg.norm(x64))
                i = clnn.iamax(x)
                if i != int(np.argmax(np.abs(x64))):
                    f.bad.append(f"iamax {w}: {i}")
                clnn.swap(x, y)
                gx, gy = bx.to_numpy(), by.to_numpy()
                sl = slice(off, off + inc * (n - 1) + 1, inc)
                ex, ey = hx.copy(), hy.copy()
                ex[sl], ey[sl] = hy[sl], hx[sl]
                if not (np.array_equal(gx, ex) and np.array_equal(gy, ey)):
                    f.bad.append(f"swap {w}")
    # nrm2 of zero, tiny, normal and huge runs spread over the partials
    p = importlib.import_module("clnn.blas1")._params(rt, dtype)
    fi = np.finfo(dtype)
    classes = [0.0, float(fi.tiny) * 4, 1.5, float(fi.max) / 2 ** 40]
    seg = min(p["MINCHUNK"], 64)
    for order in ([0, 1], [1, 0], [1, 2, 0, 3], [3, 0, 1, 0, 2]):
        h = np.repeat(np.array([classes[c] for c in order], dtype), seg)
        h *= rng.uniform(0.5, 1.0, h.size).astype(dtype)
        top = float(np.abs(h).max())
        with rt.vector(h) as x:
            got = clnn.nrm2(x)
        want = top * np.linalg.norm(h.astype(np.float64) / top)
        f.check(f"nrm2 classes {order}", assert_close, got, want, dtype, k=h.size, scale=want)
    # dot/asum/nrm2 of contiguous matrices; rk in both layouts, transposed and sub views
    for layout in ("row", "col"):
        hm = _rn(rng, (17, 33), dtype)
        with rt.matrix(hm, layout=layout) as a:
            m64 = hm.astype(np.float64)
            f.check(f"nrm2 {layout} matrix", assert_close, clnn.nrm2(a), np.linalg.norm(m64),
                    dtype, k=hm.size, scale=np.linalg.norm(m64))
            f.check(f"asum {layout} matrix", assert_close, clnn.asum(a), np.abs(m64).sum(),
                    dtype)
            for view in ("plain", "T", "sub"):
                s, hs = {"plain": (a, hm), "T": (a.T, hm.T),
                         "sub": (a.submatrix(1, 2, 3, 17), hm[1:4, 2:19])}[view]
                hx, hy = _rn(rng, s.m, dtype), _rn(rng, s.n, dtype)
                want = hs.astype(np.float64) - 0.75 * np.outer(hx, hy)
                with rt.vector(hx) as xv, rt.vector(hy) as yv:
                    clnn.rk(-0.75, xv, yv, s)
                    f.check(f"rk {layout} {view}", assert_close, s.to_numpy(), want, dtype,
                            scale=np.abs(hs) + 0.75 * np.abs(np.outer(hx, hy)))
                hm = a.to_numpy()
    f.done()


# ---- elementwise -------------------------------------------------------------------------
EW_SETS = {
    "defaults": None,
    "cpu-like": {"WGS": 1, "BS": 8, "VW": 4, "VWM": 2},
    "mixed": {"WGS": 8, "BS": 4, "VW": 2, "VWM": 2},
}
UNARY = {"exp": np.exp, "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
         "relu": lambda v: np.maximum(v, 0)}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "relu_grad": lambda a, b: np.where(a > 0, b, 0.0)}


@pytest.mark.parametrize("tset", list(EW_SETS))
def test_elementwise_sweep(rt, device, dtype, tset, tmp_path, monkeypatch, rng):

    if EW_SETS[tset] is not None:
        _use(device, tmp_path, monkeypatch, "elementwise", {"map": EW_SETS[tset]})
    f = Failures()
    for n, inc in ((1, 1), (17, 1), (33, 2)):
        ha, hb = _rn(rng, inc * n + 1, dtype), _rn(rng, inc * n + 1, dtype)
        a64, b64 = ha[1::inc][:n].astype(np.float64), hb[1::inc][:n].astype(np.float64)
        with rt.vector(ha) as va, rt.vector(hb) as vb:
            a, b = va.subvector(1, n, inc), vb.subvector(1, n, inc)
            for name, ref in UNARY.items():
                with getattr(clnn, name)(a) as r:
                    f.check(f"{name} n={n} inc={inc}", assert_close, r.to_numpy(), ref(a64),
                            dtype, k=4, scale=np.abs(ref(a64)))
            with clnn.exp(a) as e, clnn.log(e) as r:
                f.check(f"log n={n}", assert_close, r.to_numpy(), a64, dtype, k=8,
                        scale=np.abs(a64) + 1)
            for name, ref in BINARY.items():
                with getattr(clnn, name)(a, b) as r:
                    f.check(f"{name} n={n} inc={inc}", assert_close, r.to_numpy(),
                            ref(a64, b64), dtype)
            with clnn.axpy(2.5, a, clnn.copy(b)) as r:
                f.check(f"axpy n={n}", assert_close, r.to_numpy(), 2.5 * a64 + b64, dtype,
                        scale=2.5 * np.abs(a64) + np.abs(b64))
            clnn.scal(-2.0, b)
            f.check(f"scal n={n}", assert_close, b.to_numpy(), -2.0 * b64, dtype)
    # matrices: layouts, transposed and sub-matrix views, bias + activation along both axes
    for la, lo in (("row", "col"), ("col", "row")):
        hm = _rn(rng, (17, 33), dtype)
        with rt.matrix(hm, layout=la) as m:
            for view in ("T", "sub"):
                s, hs = ((m.T, hm.T) if view == "T"
                         else (m.submatrix(2, 1, 3, 17), hm[2:5, 1:18]))
                with rt.matrix(s.shape, dtype=dtype, layout=lo) as out:
                    clnn.sigmoid(s, out=out)
                    f.check(f"sigmoid {la}->{lo} {view}", assert_close, out.to_numpy(),
                            1 / (1 + np.exp(-hs.astype(np.float64))), dtype, k=4,
                            scale=1 / (1 + np.exp(-hs.astype(np.float64))))
                    clnn.add(s, s, out=out)
                    f.check(f"add {la}->{lo} {view}", assert_close, out.to_numpy(),
                            2 * hs.astype(np.float64), dtype)
            for axis, act in ((1, "tanh"), (0, "relu")):
                hb = _rn(rng, hm.shape[0] if axis == 0 else hm.shape[1], dtype)
                with rt.vector(hb) as bias:
                    z = hm.astype(np.float64) + (hb[:, None] if axis == 0 else hb[None, :])
                    want = np.tanh(z) if act == "tanh" else np.maximum(z, 0)
                    with clnn.add_bias(m, bias, axis=axis, activation=act) as r:
                        f.check(f"add_bias {la} axis={axis} {act}", assert_close,
                                r.to_numpy(), want, dtype, k=4, scale=np.abs(z) + 1)
    f.done()


# ---- reduce ------------------------------------------------------------------------------
REDUCE_SETS = {
    "defaults": None,
    "cpu-like": {"VW": 4, "VWI": 2, "WGS": 1, "RPB": 4},
    "mixed": {"VW": 2, "VWI": 2, "WGS": 8, "RPB": 8},
}


@pytest.mark.parametrize("tset", list(REDUCE_SETS))
def test_reduce_sweep(rt, device, dtype, tset, tmp_path, monkeypatch, rng):

    if REDUCE_SETS[tset] is not None:
        p = REDUCE_SETS[tset]
        _use(device, tmp_path, monkeypatch, "reduce", {"along": p, "across": p})
    f = Failures()
    for (m, n), layout in itertools.product([(1, 1), (3, 17), (33, 17), (17, 33)],
                                            ["row", "col"]):
        hm = _rn(rng, (m, n), dtype)
        with rt.matrix(hm, layout=layout) as a:
            for view in ("plain", "T"):
                s, hs = (a, hm) if view == "plain" else (a.T, hm.T)
                h64 = hs.astype(np.float64)
                for axis in (0, 1):
                    w = f"{layout} {view} {m}x{n} axis={axis}"
                    with clnn.sum(s, axis=axis) as r:
                        f.check(f"sum {w}", assert_close, r.to_numpy(), h64.sum(axis=axis),
                                dtype, scale=np.abs(h64).sum(axis=axis))
                    with clnn.max(s, axis=axis) as r:
                        if not np.array_equal(r.to_numpy(), hs.max(axis=axis)):
                            f.bad.append(f"max {w}")
                    with clnn.argmax(s, axis=axis) as r:
                        if not np.array_equal(r.to_numpy(), np.argmax(hs, axis=axis)):
                            f.bad.append(f"argmax {w}")
            if m > 1 and n > 2:  # a sub-matrix view: offset and leading dimension
                s, hs = a.submatrix(1, 2, m - 1, n - 2), hm[1:, 2:].astype(np.float64)
                for axis in (0, 1):
                    with clnn.sum(s, axis=axis) as r:
                        f.check(f"sum sub {layout} {m}x{n} axis={axis}", assert_close,
                                r.to_numpy(), hs.sum(axis=axis), dtype,
                                scale=np.abs(hs).sum(axis=axis))
    f.done()


# ---- nn and optim ------------------------------------------------------------------------
NN_SETS = {
    "defaults": None,
    "gpu-like": ({"VW": 1, "RB": 1, "CB": 1, "FJ": 1, "FV": 1, "JB": 1, "XB": 1, "KV": 1,
                  "WGS": 16, "ITEMS": 1 << 20}, {"VW": 1, "WGS": 16}),
    "odd": ({"VW": 2, "RB": 3, "CB": 2, "FJ": 3, "FV": 3, "JB": 3, "XB": 5, "KV": 3, "WGS": 4,
             "ITEMS": 3}, {"VW": 2, "WGS": 4}),
    "cpu-like": ({"VW": 4, "RB": 2, "CB": 4, "FJ": 4, "FV": 2, "JB": 4, "XB": 4, "KV": 2,
                  "WGS": 1, "ITEMS": 16}, {"VW": 4, "WGS": 1}),
    # every pass of every layer on the packed gemm products with their epilogues
    "gemm-path": ({"VW": 4, "RB": 2, "CB": 4, "FJ": 4, "FV": 2, "JB": 4, "XB": 4, "KV": 2,
                   "WGS": 1, "ITEMS": 16, "GEMM_B": 1, "GEMM_N": 1, "GEMM_BW": 1,
                   "GEMM_MIN": 1}, {"VW": 4, "WGS": 1}),
}


def _act(name, z):
    from clnn.nn.activations import reference

    return reference(name, z)


def _dact(name, z, a):
    return {"linear": np.ones_like(z), "relu": (z > 0).astype(float), "tanh": 1 - a * a,
            "sigmoid": a * (1 - a)}[name]


def _numpy_grads(ws, bs, acts, loss, x, y):
    """Loss and gradients (weights, biases, input) of a dense net in float64."""
    zs, as_ = [], [x]
    for w, b, act in zip(ws, bs, acts):
        zs.append(as_[-1] @ w.T + b)
        as_.append(_act(act, zs[-1]))
    out, n = as_[-1], x.shape[0]
    if loss == "mse":
        value = float(np.mean((out - y) ** 2))
        d = 2 * (out - y) / out.size * _dact(acts[-1], zs[-1], out)
    else:  # softmax + cross-entropy
        value = float(-np.mean(np.log(out[np.arange(n), y])))
        d = out.copy()
        d[np.arange(n), y] -= 1
        d /= n
    gw, gb = [None] * len(ws), [None] * len(ws)
    for i in reversed(range(len(ws))):
        gw[i], gb[i] = d.T @ as_[i], d.sum(axis=0)
        d = d @ ws[i]
        if i > 0:
            d = d * _dact(acts[i - 1], zs[i - 1], as_[i])
    return value, gw, gb, d, out


@pytest.mark.parametrize("tset", list(NN_SETS))
def test_nn_optim_sweep(device, dtype, tset, tmp_path, monkeypatch):
    from clnn.nn import Dense, Network

    if NN_SETS[tset] is not None:
        nn_p, opt_p = NN_SETS[tset]
        _use(device, tmp_path, monkeypatch, "nn", {"dense": nn_p})
        _use_more(device, tmp_path, "optim", {"flat": opt_p})
    f = Failures()
    rng = np.random.default_rng(3)
    with clnn.Runtime(device) as rt:
        for dims, acts, loss, n in [
                ((3, 17, 2), ("tanh", "linear"), "mse", 5),
                ((1, 1), ("sigmoid",), "mse", 1),
                ((17, 3, 33, 4), ("relu", "sigmoid", "softmax"), "cross_entropy", 17)]:
            net = Network(rt, [Dense(dims[i], dims[i + 1], a) for i, a in enumerate(acts)],
                          loss=loss, dtype=dtype, seed=1)
            if tset == "gemm-path":  # the set reaches the network's path choice
                assert net._k.gemm_forward(1, 1, 1) and net._k.gemm_backward(1, 1, 1)
            for layer in net.layers:
                layer.bias = rng.normal(size=layer.out_features) * 0.3
            x = rng.normal(size=(n, dims[0])).astype(dtype)
            y = (rng.integers(0, dims[-1], n) if loss == "cross_entropy"
                 else rng.normal(size=(n, dims[-1])).astype(dtype))
            ws = [ly.weights.to_numpy().astype(np.float64) for ly in net.layers]
            bs = [ly.bias.to_numpy().astype(np.float64) for ly in net.layers]
            value, gw, gb, gx, out = _numpy_grads(ws, bs, acts, loss, x.astype(np.float64),
                                                  y if loss != "mse" else y.astype(float))
            w = f"{'-'.join(map(str, dims))} {loss}"
            k = sum(dims)
            f.check(f"predict {w}", assert_close, net.predict(x), out, dtype, k=k,
                    scale=np.abs(out) + 1)
            f.check(f"predict one {w}", assert_close, net.predict(x[-1]), out[-1], dtype, k=k,
                    scale=np.abs(out[-1]) + 1)
            got, dx = net.gradient(x, y, input_grad=True)
            f.check(f"loss {w}", assert_close, got, value, dtype, k=k, scale=abs(value) + 1)
            for i, ly in enumerate(net.layers):
                for name, dev_g, ref in (("dW", ly.grad_weights, gw[i]),
                                         ("db", ly.grad_bias, gb[i])):
                    f.check(f"{name}{i} {w}", assert_close, dev_g.to_numpy(), ref, dtype,
                            k=k * n, scale=np.full(ref.shape, np.abs(ref).max() + 1e-3))
            f.check(f"dx {w}", assert_close, dx, gx, dtype, k=k * n,
                    scale=np.full(gx.shape, np.abs(gx).max() + 1e-3))
            net.release()
        # optimizers, 3 steps, on views with offsets (the elements around them untouched)
        from test_optim import CASES

        for (name, (make, ref)), n in itertools.product(CASES.items(), (1, 3, 17, 33)):
            p0 = rng.normal(size=n + 3).astype(dtype)
            g = rng.normal(size=n).astype(dtype)
            opt = make()
            with rt.vector(p0) as pb, rt.vector(g) as gd:
                for _ in range(3):
                    opt.step(pb.subvector(2, n, 1), gd)
                got = pb.to_numpy()
                want = ref(p0[2:2 + n], g.astype(np.float64), 3)
                f.check(f"{name} n={n}", assert_close, got[2:2 + n], want, dtype, k=16,
                        scale=np.abs(want) + 1)
                if not (np.array_equal(got[:2], p0[:2]) and got[-1] == p0[-1]):
                    f.bad.append(f"{name} n={n}: wrote outside the view")
    f.done()


def _use_more(device, tmp_path, family, sets):
    """Add ``sets`` of another family to the database written by :func:`_use`."""
    path = tmp_path / "tuning.json"
    data = json.loads(path.read_text())
    entries = data["devices"][device.key]["entries"]
    for variant, p in sets.items():
        for dt in ("float", "double"):
            entries[f"{family}/{variant}/{dt}/any"] = {"params": p}
    path.write_text(json.dumps(data))
    tuning.clear_cache()
