"""BLAS-1 and rank-1 vs numpy in float64: sizes, strides, offsets, accuracy, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_dot, ref_sum

import clnn

SIZES = [1, 3, 17, 301, 1023, 10007]


def _f64(*hs):
    return [h.astype(np.float64) for h in hs]


@pytest.mark.parametrize("n", SIZES)
def test_scalar_reductions(rt, dtype, n, rng):
    hx = rng.standard_normal(n).astype(dtype)
    hy = rng.standard_normal(n).astype(dtype)
    x64, y64 = _f64(hx, hy)
    with rt.vector(hx) as x, rt.vector(hy) as y:
        d = clnn.dot(x, y)
        assert isinstance(d, float)
        # compensated: within a few eps of the sum of |terms|, whatever n
        assert_close(d, ref_dot(x64, y64), dtype, k=1)
        assert_close(clnn.asum(x), np.abs(x64).sum(), dtype, k=1)  # terms >= 0: |sum|
        norm = np.sqrt(x64 @ x64)
        assert_close(clnn.nrm2(x), norm, dtype, k=n, scale=norm)  # terms >= 0
        i = clnn.iamax(x)
        assert isinstance(i, int) and i == int(np.argmax(np.abs(hx)))
        assert_close(clnn.sum(x), ref_sum(x64), dtype, k=1)
        assert clnn.max(x) == hx.max()


@pytest.mark.parametrize("n", [17, 1023, 10007])
def test_strided_offset_views(rt, dtype, n, rng):
    hx = rng.standard_normal(3 * n + 5).astype(dtype)
    hy = rng.standard_normal(2 * n + 1).astype(dtype)
    with rt.vector(hx) as bx, rt.vector(hy) as by:
        x, y = bx.subvector(4, n, 3), by.subvector(1, n, 2)
        vx, vy = _f64(hx[4:4 + 3 * n:3], hy[1:1 + 2 * n:2])
        assert_close(clnn.dot(x, y), ref_dot(vx, vy), dtype)
        assert_close(clnn.dot(x, bx[1:n + 1]), ref_dot(vx, hx[1:n + 1]), dtype)
        assert_close(clnn.asum(y), np.abs(vy).sum(), dtype, k=1)
        norm = np.linalg.norm(vx)
        assert_close(clnn.nrm2(x), norm, dtype, k=n, scale=norm)
        assert clnn.iamax(y) == int(np.argmax(np.abs(vy)))
        # a matrix row (strided in col layout) and a contiguous matrix
        hm = rng.standard_normal((7, n)).astype(dtype)
        with rt.matrix(hm, layout="col") as m:
            norm = np.linalg.norm(hm[2].astype(float))
            assert_close(clnn.nrm2(m.row(2)), norm, dtype, k=n, scale=norm)
            norm = np.linalg.norm(hm.astype(float))
            assert_close(clnn.nrm2(m), norm, dtype, k=7 * n, scale=norm)
            assert_close(clnn.asum(m.col(3)), np.abs(hm[:, 3].astype(float)).sum(), dtype)


def test_long_sum_accuracy(rt, rng):
    """float32 with 2**20 terms of mixed sign: the compensated sums stay near one eps."""
    n = 1 << 20
    hx = (rng.standard_normal(n) * 1e3).astype(np.float32)
    hy = rng.standard_normal(n).astype(np.float32)
    x64, y64 = _f64(hx, hy)
    with rt.vector(hx) as x, rt.vector(hy) as y:
        assert_close(clnn.dot(x, y), ref_dot(x64, y64), np.float32)
        assert_close(clnn.sum(x), ref_sum(x64), np.float32)


def test_nrm2_scaling(rt, dtype):
    big = float(np.finfo(dtype).max) / 64  # the norm of 1000 copies (x31.6) stays finite
    tiny = float(np.finfo(dtype).tiny) * 4
    for vals, want in [([3 * big / 8, 4 * big / 8], 5 * big / 8),
                       ([3 * tiny, 4 * tiny], 5 * tiny),
                       ([big / 2, 1.0, tiny], big / 2),
                       ([1e-20, 1.0, 1e20], 1e20),
                       ([0.0, 0.0, 0.0], 0.0)]:
        h = np.array(vals, dtype)
        with rt.vector(np.tile(h, 1000)) as x:
            got = clnn.nrm2(x)
            assert np.isfinite(got)
            norm = want * np.sqrt(1000.0)
            assert_close(got, norm, dtype, k=3000, scale=norm)
    with rt.vector(np.array([np.inf, 1], dtype)) as x:
        assert clnn.nrm2(x) == np.inf
    with rt.vector(np.array([1, np.nan, 2], dtype)) as x:
        assert np.isnan(clnn.nrm2(x)) and np.isnan(clnn.asum(x))
        assert clnn.iamax(x) == 2  # NaN skipped, like reference BLAS


def test_results_on_device(rt, dtype, rng):
    """out= a 1-element view: the result stays on the device; neighbours untouched."""
    hx = rng.standard_normal(301).astype(dtype)
    with rt.vector(hx) as x, rt.vector(np.full(6, -1.0, dtype)) as res:
        assert clnn.dot(x, x, out=res[0:1]) is not None
        clnn.nrm2(x, out=res[2:3])
        clnn.asum(x, out=res.subvector(3, 1))
        clnn.iamax(x, out=res[4:5])
        clnn.sum(x, out=res[5:6])
        got = res.to_numpy()
        x64 = hx.astype(np.float64)
        assert_close(got[0], ref_dot(x64, x64), dtype, k=1)
        assert got[1] == -1
        norm = np.linalg.norm(x64)
        assert_close(got[2], norm, dtype, k=301, scale=norm)
        assert_close(got[3], np.abs(x64).sum(), dtype)  # terms >= 0
        assert got[4] == np.argmax(np.abs(hx))
        assert_close(got[5], ref_sum(x64), dtype)
        with pytest.raises(clnn.ShapeError, match="1-element"):
            clnn.dot(x, x, out=res[0:2])


@pytest.mark.parametrize("n", [1, 17, 10007])
def test_axpy_scal_copy_swap(rt, dtype, n, rng):
    hx = rng.standard_normal(n).astype(dtype)
    hy = rng.standard_normal(n).astype(dtype)
    with rt.vector(hx) as x, rt.vector(hy) as y:
        assert clnn.axpy(2.5, x, y) is y
        hx64, hy64 = _f64(hx, hy)
        hy2 = 2.5 * hx64 + hy64
        s2 = 2.5 * np.abs(hx64) + np.abs(hy64)  # the terms' magnitudes
        assert_close(y.to_numpy(), hy2, dtype, scale=s2)
        out = clnn.axpy(-1, x, y, out=rt.vector(n, dtype=dtype))
        s3 = s2 + np.abs(hx64)  # y (= 2.5 x + y, rounded) - x
        assert_close(out.to_numpy(), hy2 - hx64, dtype, scale=s3)
        assert_close(y.to_numpy(), hy2, dtype, scale=s2)
        clnn.scal(0.5, out)
        assert_close(out.to_numpy(), (hy2 - hx64) / 2, dtype, scale=s3 / 2)
        c = clnn.copy(x)
        np.testing.assert_array_equal(c.to_numpy(), hx)
        clnn.swap(c, out)
        assert_close(c.to_numpy(), (hy2 - hx64) / 2, dtype, scale=s3 / 2)
        np.testing.assert_array_equal(out.to_numpy(), hx)
        c.release()
        out.release()


def test_blas1_on_strided_and_matrices(rt, dtype, rng):
    hx = rng.standard_normal(100).astype(dtype)
    hy = rng.standard_normal(100).astype(dtype)
    with rt.vector(hx) as x, rt.vector(hy) as y:
        clnn.axpy(3, x[::4], y[1::4])
        want, scale = _f64(hy, np.abs(hy))
        want[1::4] += 3 * hx[::4].astype(np.float64)
        scale[1::4] += 3 * np.abs(hx[::4].astype(np.float64))
        assert_close(y.to_numpy(), want, dtype, scale=scale)
        clnn.scal(-2, y[::5])
        want[::5] *= -2
        scale[::5] *= 2
        assert_close(y.to_numpy(), want, dtype, scale=scale)
        want = y.to_numpy()  # exact device values from here on
        clnn.swap(x[::2], y[1::2])
        hx2, want2 = hx.copy(), want.copy()
        hx2[::2], want2[1::2] = want[1::2], hx[::2]
        np.testing.assert_array_equal(x.to_numpy(), hx2)
        np.testing.assert_array_equal(y.to_numpy(), want2)
        clnn.copy(x[10:20], out=y[::10])
        want2[::10] = hx2[10:20]
        np.testing.assert_array_equal(y.to_numpy(), want2)
    ha = rng.standard_normal((30, 20)).astype(dtype)
    hb = rng.standard_normal((20, 30)).astype(dtype)
    with rt.matrix(ha) as a, rt.matrix(hb, layout="col") as b:
        clnn.axpy(2, b.T, a)  # a row matrix += 2 * (a col matrix's transpose: row layout)
        ha64, hbt64 = _f64(ha, hb.T)
        ha2 = ha64 + 2 * hbt64
        assert_close(a.to_numpy(), ha2, dtype, scale=np.abs(ha64) + 2 * np.abs(hbt64))
        t = clnn.copy(a, out=rt.matrix((30, 20), layout="col", dtype=dtype))
        np.testing.assert_array_equal(t.to_numpy(), a.to_numpy())
        stored = a.to_numpy().astype(np.float64)  # the device's values: the dot's inputs
        assert_close(clnn.dot(a, a), ref_dot(stored, stored), dtype, k=1)
        with pytest.raises(clnn.ShapeError, match="layouts"):
            clnn.dot(a, t)
        with pytest.raises(clnn.ShapeError, match="contiguous"):
            clnn.nrm2(a.submatrix(0, 0, 3, 3))
        t.release()


def test_rk_tiny_alpha_times_infinity_is_infinity(rt, dtype):
    """alpha * x_i * y_j with the smallest subnormal alpha and y_j = inf is inf (numpy's
    alpha * outer(x, y)), not 0 * inf = NaN from alpha * x_i underflowing first."""
    alpha = float(np.finfo(dtype).smallest_subnormal)
    hy = np.array([np.inf, 1.0, -np.inf], dtype)
    with rt.matrix(np.zeros((2, 3), dtype)) as a, rt.vector(np.full(2, 0.25, dtype)) as x, \
            rt.vector(hy) as y:
        got = clnn.rk(alpha, x, y, a).to_numpy()
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[:, 0], np.inf)
    np.testing.assert_array_equal(got[:, 2], -np.inf)
    assert np.all(np.abs(got[:, 1]) <= np.finfo(dtype).tiny)  # subnormal or flushed to 0


@pytest.mark.oclgrind
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("view", ["plain", "T", "sub", "subT"])
def test_rk(rt, dtype, layout, view, rng):
    ha = rng.standard_normal((41, 29)).astype(dtype)
    hx = rng.standard_normal(200).astype(dtype)
    hy = rng.standard_normal(200).astype(dtype)
    with rt.matrix(ha, layout=layout) as a, rt.vector(hx) as x, rt.vector(hy) as y:
        target, ht = {"plain": (a, ha), "T": (a.T, ha.T),
                      "sub": (a.submatrix(2, 3, 30, 20), ha[2:32, 3:23]),
                      "subT": (a.T.submatrix(1, 4, 20, 30), ha.T[1:21, 4:34])}[view]
        m, n = target.shape
        xv, yv = x[::3][:m], y.subvector(1, n, 2)
        hxv, hyv = hx[::3][:m], hy[1:1 + 2 * n:2]
        full = ha.astype(np.float64).copy()
        outer = np.outer(*_f64(hxv, hyv))
        want_t = ht.astype(np.float64) + 0.75 * outer
        assert clnn.rk(0.75, xv, yv, target) is target
        got = target.to_numpy()
        assert_close(got, want_t, dtype,
                     scale=np.abs(ht.astype(np.float64)) + 0.75 * np.abs(outer))
        # nothing outside the view changed
        mask = np.ones(ha.shape, bool)
        idx = {"plain": np.s_[:, :], "T": np.s_[:, :], "sub": np.s_[2:32, 3:23],
               "subT": np.s_[4:34, 1:21]}[view]
        mask[idx] = False
        np.testing.assert_array_equal(a.to_numpy()[mask], full[mask])
        # out=: a left alone
        before = a.to_numpy()
        o = clnn.rk(-1, xv, yv, target, out=rt.matrix((m, n), dtype=dtype))
        got64 = got.astype(np.float64)
        assert_close(o.to_numpy(), got64 - outer, dtype, scale=np.abs(got64) + np.abs(outer))
        np.testing.assert_array_equal(a.to_numpy(), before)
        o.release()


def test_bad_inputs(rt, device):
    with rt.vector(np.arange(5, dtype=np.float32)) as x, rt.vector(6) as x6, \
            rt.matrix((5, 6)) as a, rt.vector(np.full(3, 7, np.float32)) as res:
        snapshot = a.to_numpy()
        cases = [
            (clnn.ShapeError, lambda: clnn.dot(x, x6)),
            (clnn.ShapeError, lambda: clnn.axpy(1, x, x6)),
            (clnn.ShapeError, lambda: clnn.swap(x, x6)),
            (clnn.ShapeError, lambda: clnn.swap(x[0:3], x[2:5])),
            (clnn.ShapeError, lambda: clnn.axpy(1, x[0:3], x[1:4])),
            (clnn.ShapeError, lambda: clnn.rk(1, x6, x, a)),
            (clnn.ShapeError, lambda: clnn.rk(1, a.col(0), a.row(0), a)),
            (clnn.ShapeError, lambda: clnn.nrm2(x, out=res)),
            (clnn.ShapeError, lambda: clnn.iamax(a)),
            (clnn.OperandError, lambda: clnn.dot(x, np.ones(5))),
            (clnn.OperandError, lambda: clnn.nrm2([1.0, 2.0])),
            (clnn.DTypeError, lambda: clnn.axpy(None, x, x)),
            (clnn.DTypeError, lambda: clnn.rk("two", x, x6, a)),
        ]
        for err, f in cases:
            with pytest.raises(err):
                f()
        if device.fp64:
            with rt.vector(np.ones(5)) as xd, rt.vector(np.zeros(1)) as od:
                with pytest.raises(clnn.DTypeError):
                    clnn.dot(x, xd)
                with pytest.raises(clnn.DTypeError):
                    clnn.asum(x, out=od)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with clnn.Runtime(device) as rt2, rt2.vector(5) as other:
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.dot(x, other)
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.axpy(1, x, other)
                with pytest.raises(clnn.RuntimeMismatchError):
                    clnn.nrm2(x, out=other[0:1])
        gone = rt.vector(5)
        view = gone[1:4]
        gone.release()
        for f in [lambda: clnn.dot(x, gone), lambda: clnn.nrm2(view),
                  lambda: clnn.scal(2, view), lambda: clnn.iamax(x, out=view[0:1])]:
            with pytest.raises(clnn.ReleasedError):
                f()
        np.testing.assert_array_equal(x.to_numpy(), np.arange(5))
        np.testing.assert_array_equal(res.to_numpy(), 7)
        np.testing.assert_array_equal(a.to_numpy(), snapshot)


@pytest.mark.parametrize("style", ["gpu", "mixed"])
def test_work_group_tunables(rt, rng, style):
    """The work-group code paths (local-memory trees, grid-stride loops) that GPU tunables
    select, run here on whatever device is present."""
    from clnn import blas1 as b1
    from clnn import elementwise as ew
    from clnn import reduce as rd
    from clnn import tuning

    wide = style == "mixed"

    def blas1_p(device, variant, dtype):
        # mixed: three accumulators, not a power of two (the CPU defaults take two)
        return {"WGS": 4 if wide else 64, "WGS2": 8 if wide else 32, "VW": 4 if wide else 1,
                "NACC": 3 if wide else 1, "BLKV": 6 if wide else 4, "MINCHUNK": 64,
                "MAXG": 16}

    def ew_p(device, variant, dtype):
        return {"WGS": 8 if wide else 64, "BS": 8 if wide else 1, "VW": 4 if wide else 1,
                "VWM": 2 if wide else 1}

    def rd_p(device, variant, dtype):
        return {"VW": 4 if wide else 1, "VWI": 2 if wide else 1, "WGS": 8 if wide else 64,
                "RPB": 8}

    try:
        tuning.register_defaults("blas1", blas1_p, b1._validate)
        tuning.register_defaults("elementwise", ew_p)
        tuning.register_defaults("reduce", rd_p, rd._validate)
        tuning.clear_cache()
        for fam, var, fn in (("blas1", "reduce", blas1_p), ("elementwise", "map", ew_p),
                             ("reduce", "along", rd_p)):
            try:  # the checks clnn applies before it uses tunables (a misfit is skipped)
                tuning.check(rt.device, fam, var, "float", fn(rt.device, var, "float"))
            except ValueError as e:
                pytest.skip(f"{style} {fam} tunables do not fit {rt.device}: {e}")
        n = 3001
        hx = rng.standard_normal(n).astype(np.float32)
        hy = rng.standard_normal(n).astype(np.float32)
        hx[17] = 1e25  # nrm2 through its scaled rescan
        x64, y64 = _f64(hx, hy)
        with rt.vector(hx) as x, rt.vector(hy) as y:
            assert_close(clnn.dot(x[1:], y[:-1]), ref_dot(x64[1:], y64[:-1]), np.float32)
            norm = np.linalg.norm(x64[::3])
            assert_close(clnn.nrm2(x[::3]), norm, np.float32, k=n, scale=norm)
            assert_close(clnn.asum(y), np.abs(y64).sum(), np.float32)
            assert clnn.iamax(y[5:]) == int(np.argmax(np.abs(hy[5:])))
            assert clnn.max(y) == hy.max()
            e = clnn.tanh(y[1:])
            assert_close(e.to_numpy(), np.tanh(y64[1:]), np.float32)
            e.release()
            gen = tuning.generation()
            used = [v for k, v in rt._plans.items() if k[0] == "blas1" and k[-1] == gen]
            assert used and all(pl.params["WGS"] == (4 if wide else 64) for pl in used[0])
        ha = rng.standard_normal((67, 45)).astype(np.float32)
        with rt.matrix(ha) as a:
            for axis in (0, 1):
                assert_close(clnn.sum(a, axis=axis).to_numpy(), ref_sum(ha, axis=axis),
                             np.float32)
                np.testing.assert_array_equal(clnn.max(a.T, axis=axis).to_numpy(),
                                              ha.T.max(axis=axis))
                np.testing.assert_array_equal(clnn.argmax(a, axis=axis).to_numpy(),
                                              np.argmax(ha, axis=axis))
            hb = rng.standard_normal(45).astype(np.float32)
            with rt.vector(hb) as bias:
                got = clnn.add_bias(a, bias, axis=1, activation="sigmoid")
                z = ha.astype(float) + hb.astype(float)
                # the sum is rounded before the sigmoid (slope <= 1/4): |z|/4 next to the result
                assert_close(got.to_numpy(), 1 / (1 + np.exp(-z)), np.float32,
                             scale=1 / (1 + np.exp(-z)) + np.abs(z) / 4)
                got.release()
    finally:
        tuning.register_defaults("blas1", b1.blas1_defaults, b1._validate)
        tuning.register_defaults("elementwise", ew.elementwise_defaults)
        tuning.register_defaults("reduce", rd.reduce_defaults, rd._validate)
        tuning.clear_cache()


@pytest.mark.timing
def test_bench_blas1_smoke(device, tmp_path, capsys):
    """``clnn bench blas1`` runs end to end on a small size and writes its JSON."""
    import json

    from clnn.cli import main

    out = tmp_path / "b1.json"
    rc = main(["bench", "blas1", "--device", device.spec, "--quick", "--n", "3000",
               "--repeat", "1", "--ops", "dot", "add", "rk", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "dot" in text and "numpy GB/s" in text
    data = json.loads(out.read_text())
    assert [r["op"].split()[0] for r in data["results"]] == ["dot", "rk", "add"]
    assert all(r["rel_err"] < 1e-5 for r in data["results"])


@pytest.mark.oclgrind
def test_sums_keep_infinity(rt, dtype):
    """An infinite term makes the compensated sums infinite, not NaN (inf - inf in the
    correction); +inf and -inf together give NaN, as in numpy."""
    h = np.ones(5000, dtype)
    h[1234] = np.inf
    with rt.vector(h) as x, rt.vector(np.ones_like(h)) as ones, rt.matrix(h.reshape(50, 100)) as a:
        assert clnn.dot(x, ones) == np.inf and clnn.asum(x) == np.inf
        assert clnn.sum(x) == np.inf and clnn.nrm2(x) == np.inf
        np.testing.assert_array_equal(clnn.sum(a, axis=1).to_numpy(), h.reshape(50, 100).sum(1))
        np.testing.assert_array_equal(clnn.sum(a, axis=0).to_numpy(), h.reshape(50, 100).sum(0))
        x[4000:4001].set([-np.inf])
        assert np.isnan(clnn.sum(x)) and clnn.asum(x) == np.inf


@pytest.mark.oclgrind
def test_nrm2_any_mix_of_partials(rt, dtype):
    """Zero, tiny, normal and huge values spread over partials: every segment of one scaling
    block (or of one work-group's chunk) takes one class, so every pair of neighbouring
    partials -- within a work-group and across work-groups -- meets every pair of classes."""
    from clnn.blas1 import _params

    p = _params(rt, np.dtype(dtype))
    fi = np.finfo(dtype)
    classes = [0.0, float(fi.tiny) * 4, 1.5, float(fi.max) / 2 ** 40]
    rng = np.random.default_rng(7)
    for seg in sorted({p["BLKV"] * p["VW"], p["MINCHUNK"]}):
        for order in ([0, 1], [1, 0], [0, 1, 0], [1, 2, 0, 3], [3, 0, 1, 0, 2], [0, 0, 1, 1]):
            vals = [classes[c] for c in order]
            h = np.repeat(np.array(vals, dtype), seg)
            h *= rng.uniform(0.5, 1.0, h.size).astype(dtype)
            top = float(np.abs(h).max(initial=0.0))
            want = 0.0 if top == 0 else top * np.linalg.norm(h.astype(np.float64) / top)
            with rt.vector(h) as x:
                got = clnn.nrm2(x)
            assert np.isfinite(got), (seg, order)
            assert_close(got, want, dtype, k=h.size, scale=want)  # terms >= 0
            assert (got > 0) == (want > 0), (seg, order, got, want)
