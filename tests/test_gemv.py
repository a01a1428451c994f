import importlib
import json
import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_mv

import clnn
from clnn import tuning

SIDES = [1, 3, 17, 301, 1023]
SHAPES = [(m, n) for m in SIDES for n in SIDES if m * n <= 301 * 1023] + [
    (10007, 1), (1, 10007), (10007, 3), (3, 10007), (17, 10007)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
def test_mv_matches_numpy(rt, dtype, shape, layout, trans, rng):
    A = rng.standard_normal(shape).astype(dtype)
    a = rt.matrix(A, layout=layout)
    op = a.T if trans else a
    opA = A.T if trans else A
    x = rng.standard_normal(opA.shape[1]).astype(dtype)
    xv = rt.vector(x)
    y = clnn.mv(op, xv)
    assert y.shape == (opA.shape[0],) and y.dtype == dtype
    assert_close(y.to_numpy(), ref_mv(opA, x), dtype, k=opA.shape[1])
    for b in (a, xv, y):
        b.release()


@pytest.mark.parametrize("alpha,beta", [(1, 0), (2.5, 0), (0.5, 1), (-1, -2), (0, 3)])
@pytest.mark.parametrize("layout", ["row", "col"])
def test_alpha_beta(rt, dtype, alpha, beta, layout, rng):
    A = rng.standard_normal((37, 29)).astype(dtype)
    x = rng.standard_normal(29).astype(dtype)
    y0 = rng.standard_normal(37).astype(dtype)
    a, xv, yv = rt.matrix(A, layout=layout), rt.vector(x), rt.vector(y0)
    res = clnn.mv(a, xv, out=yv, alpha=alpha, beta=beta)
    assert res is yv
    assert_close(yv.to_numpy(), ref_mv(A, x, alpha, y0, beta), dtype, k=29)


@pytest.mark.parametrize("layout", ["row", "col"])
def test_beta_zero_never_reads_out(rt, dtype, layout):
    A = np.ones((5, 4), dtype)
    y = rt.vector(np.full(5, np.nan, dtype))
    clnn.mv(rt.matrix(A, layout=layout), rt.vector(np.ones(4, dtype)), out=y)
    np.testing.assert_array_equal(y.to_numpy(), np.full(5, 4.0))
    y.set(np.full(5, np.inf, dtype))
    clnn.mv(rt.matrix(A, layout=layout), rt.vector(np.ones(4, dtype)), out=y)
    np.testing.assert_array_equal(y.to_numpy(), np.full(5, 4.0))
    # the transposed kernel too, with NaN and infinities in out
    yt = rt.vector(np.array([np.nan, np.inf, -np.inf, np.nan], dtype))
    clnn.mv(rt.matrix(A, layout=layout).T, rt.vector(np.ones(5, dtype)), out=yt)
    np.testing.assert_array_equal(yt.to_numpy(), np.full(4, 5.0))


def test_out_allocates_nothing(rt):
    a, x, y = rt.matrix((8, 8)), rt.vector(8), rt.vector(8)
    before = rt.allocations
    for _ in range(5):
        clnn.mv(a, x, out=y)
    assert rt.allocations == before
    clnn.mv(a, x)
    assert rt.allocations == before + 1


def test_issue_example(rt):
    x = rt.vector([0.3, 0.9])
    w1 = rt.matrix([[0.3, 0.6], [0.1, 2.0], [0.9, 3.7], [0.0, 1.0]])
    h1 = rt.vector(4)
    w2 = rt.matrix([[0.75, 0.15, 0.22, 0.33]])
    y = rt.vector(1)
    assert clnn.mv(w2, clnn.mv(w1, x, out=h1), out=y) is y
    np.testing.assert_allclose(h1.to_numpy(), [0.63, 1.83, 3.6, 0.9], rtol=1e-6)
    np.testing.assert_allclose(y.to_numpy(), [1.836], rtol=1e-6)


def _unchanged(rt, y, before):
    np.testing.assert_array_equal(y.to_numpy(), before)


def test_bad_shapes_leave_out_untouched(rt):
    a, x = rt.matrix(np.ones((4, 3), np.float32)), rt.vector(np.ones(3, np.float32))
    y = rt.vector(np.arange(4, dtype=np.float32))
    before = y.to_numpy()
    with pytest.raises(clnn.ShapeError, match="length 2"):
        clnn.mv(a, rt.vector([1, 2]), out=y)
    with pytest.raises(ValueError):
        clnn.mv(a, x, out=rt.vector(5))
    with pytest.raises(clnn.ShapeError):
        clnn.mv(a.T, x, out=y)
    with pytest.raises(clnn.ShapeError, match="Matrix"):
        clnn.mv(x, x, out=y)
    with pytest.raises(clnn.OperandError):
        clnn.mv(np.ones((4, 3)), x, out=y)
    with pytest.raises(TypeError):
        clnn.mv(a, [1, 2, 3], out=y)
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, alpha="two")
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, beta=1j)
    _unchanged(rt, y, before)


def test_out_overlapping_input_is_refused(rt):
    a = rt.matrix(np.eye(3, dtype=np.float32))
    x = rt.vector([1, 2, 3])
    with pytest.raises(clnn.ShapeError, match="shares memory"):
        clnn.mv(a, x, out=x)
    np.testing.assert_array_equal(x.to_numpy(), [1, 2, 3])


def test_mixed_dtypes(rt):
    if not rt.device.fp64:
        pytest.skip(f"device {rt.device.name!r} lacks fp64; no second dtype to mix")
    a = rt.matrix(np.ones((2, 2), np.float64))
    y = rt.vector(np.zeros(2, np.float32))
    with pytest.raises(clnn.DTypeError, match="mixed"):
        clnn.mv(a, rt.vector(np.ones(2, np.float32)), out=y)
    with pytest.raises(TypeError):
        clnn.mv(a, rt.vector(np.ones(2, np.float64)), out=y)
    np.testing.assert_array_equal(y.to_numpy(), [0, 0])


def test_two_runtimes_mixed(device, rt):
    with clnn.Runtime(device) as other:
        x = other.vector([1, 1])
        a = rt.matrix(np.ones((2, 2), np.float32))
        y = rt.vector([5, 6])
        with pytest.raises(clnn.RuntimeMismatchError, match="different runtimes"):
            clnn.mv(a, x, out=y)
        np.testing.assert_array_equal(y.to_numpy(), [5, 6])


def test_released_operands(rt):
    a, x, y = rt.matrix(np.ones((2, 2), np.float32)), rt.vector([1, 1]), rt.vector([7, 7])
    x.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mv(a, x, out=y)
    np.testing.assert_array_equal(y.to_numpy(), [7, 7])
    y.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mv(a, rt.vector([1, 1]), out=y)


# ---- every kernel path, with the defaults and with other tunables ---------------------------
# Each set is written to a private tuning database for the device under test, so the kernels
# are rendered with these values exactly as with tuned ones. They are chosen to reach every
# code path: split columns + gemv_sum, narrow kernels, odd unrolls, work-groups > 1 with a
# local reduction, register accumulation in "col", aligned pointer loads.
ROW_SETS = {
    "defaults": None,
    "splits": ({"RPT": 1, "VW": 2, "NG": 7, "KMIN": 8, "NVW": 2, "SMIN": 1},
               {"ACC": 1, "VW": 4, "CU": 3, "MB": 40, "NG": 9, "KMIN": 8, "NVW": 4, "SMIN": 1}),
    "workgroups": ({"WGS": 8, "RPT": 2, "VW": 4, "NG": 1000, "KMIN": 64, "AL": 1, "NVW": 4,
                    "SMIN": 1},
                   {"ACC": 0, "WGS": 8, "RPT": 2, "VW": 2, "NG": 64, "KMIN": 32, "AL": 1,
                    "SMIN": 1}),
    "nosplit": ({"RPT": 3, "VW": 8, "NG": 1, "KMIN": 1 << 30, "NVW": 8},
                {"ACC": 1, "VW": 8, "CU": 8, "MB": 1 << 20, "NG": 1, "KMIN": 1 << 30}),
    # many one-block work-groups ("row"); persistent work-groups taking row-block x panel
    # units from a counter, partial sums added by the last group ("col", CPU devices only)
    "dynamic": ({"RPT": 2, "VW": 4, "NG": 600, "KMIN": 1 << 30, "NVW": 4},
                {"ACC": 2, "VW": 4, "CU": 3, "MB": 40, "NG": 3, "PAN": 5}),
}


def _write_db(path, device, sets):
    entries = {}
    for variant, p in zip(("row", "col"), sets):
        for dt in ("float", "double"):
            entries[f"gemv/{variant}/{dt}/any"] = {"params": p}
    path.write_text(json.dumps({"format": "clnn-tuning", "version": tuning.FORMAT_VERSION,
                                "devices": {device.key: {"entries": entries}}}))


@pytest.fixture(params=list(ROW_SETS))
def tunables(request, device, tmp_path, monkeypatch):
    """Run the test with the built-in defaults, then with each set of other tunables.

    A set is validated up front by the very checks clnn applies to a database entry
    (``tuning.check``): one the device cannot run is skipped with clnn's reason, never
    replaced by the defaults behind the test's name. clear_cache also forgets earlier
    warnings, so a set that clnn still drops (one that fails to build) warns -- an error
    here -- in every test, not only in the first of the process."""
    sets = ROW_SETS[request.param]
    path = tmp_path / "tuning.json"
    # the test's own dtype (tests without one run float32)
    dt = request.getfixturevalue("dtype") if "dtype" in request.fixturenames else np.float32
    rtype = "float" if dt == np.float32 else "double"
    if sets is not None:
        for variant, p in zip(("row", "col"), sets):
            try:
                tuning.check(device, "gemv", variant, rtype, p)
            except ValueError as e:
                pytest.skip(f"tunables {request.param!r} ({variant}) do not fit {device}: {e}")
        _write_db(path, device, sets)
    monkeypatch.setenv("CLNN_TUNING_DB", str(path))
    tuning.clear_cache()
    if sets is not None:  # the database entries are what the ops will use
        for variant, p in zip(("row", "col"), sets):
            got, source = tuning.lookup(device, "gemv", variant, rtype)
            assert source == "device" and got == tuning.check(device, "gemv", variant,
                                                              rtype, p)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tuning.TuningWarning)  # the sets must be accepted
        yield request.param
    monkeypatch.delenv("CLNN_TUNING_DB")
    tuning.clear_cache()


ALT_SHAPES = [(1, 1), (3, 17), (17, 3), (8, 37), (37, 8), (9, 300), (300, 9), (301, 1023),
              (1023, 301), (10007, 3), (3, 10007), (5, 4099), (1025, 1023)]


@pytest.mark.parametrize("shape", ALT_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
def test_mv_tunables(rt, dtype, tunables, shape, layout, trans, rng):
    A = rng.standard_normal(shape).astype(dtype)
    opA = A.T if trans else A
    x = rng.standard_normal(opA.shape[1]).astype(dtype)
    y0 = rng.standard_normal(opA.shape[0]).astype(dtype)
    with rt.matrix(A, layout=layout) as a, rt.vector(x) as xv, rt.vector(y0) as yv:
        op = a.T if trans else a
        clnn.mv(op, xv, out=yv, alpha=-1.5, beta=0.25)
        assert_close(yv.to_numpy(), ref_mv(opA, x, -1.5, y0, 0.25), dtype, k=opA.shape[1])
        # again (the memoised repeat path), then with other alpha/beta
        clnn.mv(op, xv, out=yv)
        clnn.mv(op, xv, out=yv)
        assert_close(yv.to_numpy(), ref_mv(opA, x), dtype, k=opA.shape[1])


VIEW_SHAPES = [(17, 3), (3, 17), (40, 8), (8, 40), (5, 300), (300, 5), (67, 45)]


@pytest.mark.parametrize("shape", VIEW_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("incx,incy", [(1, 1), (2, 1), (1, 3), (3, 2)])
def test_mv_views_tunables(rt, dtype, tunables, shape, layout, trans, incx, incy, rng):
    """Sub-matrix views (offset, ld larger than the row/column) and strided x and y, with
    every set of tunables: the kernels must not assume packed or aligned operands."""
    m, n = shape
    big = rng.standard_normal((m + 5, n + 7)).astype(dtype)
    with rt.matrix(big, layout=layout) as a:
        s, hs = a.submatrix(2, 3, m, n), big[2:2 + m, 3:3 + n]
        if trans:
            s, hs = s.T, hs.T
        k, r = hs.shape[1], hs.shape[0]
        hx = rng.standard_normal(1 + incx * k).astype(dtype)
        hy = rng.standard_normal(2 + incy * r).astype(dtype)
        with rt.vector(hx) as x, rt.vector(hy) as y:
            xv, yv = x.subvector(1, k, incx), y.subvector(2, r, incy)
            clnn.mv(s, xv, out=yv, alpha=0.5, beta=-2.0)
            want, scale = hy.astype(np.float64), np.abs(hy.astype(np.float64))  # gaps: as was
            sl = slice(2, 2 + incy * (r - 1) + 1, incy)
            want[sl], scale[sl] = ref_mv(hs, hx[1::incx][:k], 0.5, hy[sl], -2.0)
            assert_close(y.to_numpy(), want, dtype, k=k, scale=scale)


@pytest.mark.parametrize("shape", [(37, 29), (3, 10007), (10007, 3), (5, 4), (4, 5)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("incy", [1, 2])
def test_beta_zero_ignores_nan_every_path(rt, dtype, tunables, shape, layout, incy):
    m, n = shape
    with rt.matrix(np.ones(shape, dtype), layout=layout) as a, \
            rt.vector(np.ones(n, dtype)) as x, \
            rt.vector(np.full(m * incy, np.nan, dtype)) as y:
        yv = y.subvector(0, m, incy)
        clnn.mv(a, x, out=yv, alpha=2.0, beta=0.0)
        np.testing.assert_array_equal(yv.to_numpy(), np.full(m, 2.0 * n))
        if incy > 1:  # the gaps were not touched
            assert np.isnan(y.to_numpy()[1::incy]).all()


@pytest.mark.parametrize("shape", [(10, 4), (37, 29), (10007, 3), (3, 10007)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("trans", [False, True], ids=["N", "T"])
def test_tiny_alpha_times_infinity_is_infinity_every_path(rt, dtype, tunables, shape, layout,
                                                          trans):
    """alpha * (A x) with the smallest subnormal alpha and an infinity in A is +-inf, as in
    numpy; a kernel that scaled x by alpha first got alpha * x_j == 0 and then 0 * inf = NaN
    (found by the thorough property test: col layout, 10x4, float32)."""
    alpha = float(np.finfo(dtype).smallest_subnormal)
    A = np.full(shape, 0.5, dtype)
    opA = A.T if trans else A
    opA[opA.shape[0] // 2, 0] = np.inf  # a view: sets A too
    x = np.full(opA.shape[1], 0.25, dtype)  # alpha * 0.25 underflows to 0
    with rt.matrix(A, layout=layout) as a, rt.vector(x) as xv, \
            rt.vector(opA.shape[0], dtype=dtype) as y:
        clnn.mv(a.T if trans else a, xv, out=y, alpha=alpha)
        got = y.to_numpy()
    with np.errstate(all="ignore"):
        want = alpha * (opA.astype(np.float64) @ x.astype(np.float64))
    assert np.isinf(got[opA.shape[0] // 2]) and got[opA.shape[0] // 2] > 0
    assert not np.isnan(got).any()
    fin = np.isfinite(want)  # subnormal results: a device may flush them to zero
    np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=float(np.finfo(dtype).tiny))


def test_tuned_values_reach_the_kernels(rt, tunables):
    """The database's values are the ones the launch uses (and they key the kernel cache)."""
    gemv_mod = importlib.import_module("clnn.gemv")
    with rt.matrix((300, 400)) as a, rt.vector(400) as x, rt.vector(300) as y:
        c = gemv_mod._call_for(rt, a, x, y)
        sets = ROW_SETS[tunables]
        if sets is None:
            assert c.params == tuning.defaults(rt.device, "gemv", "row", "float", "large")
        else:
            for k, v in sets[0].items():
                assert c.params[k] == v


def test_size_classes():
    from clnn.gemv import size_class

    assert size_class(4, 2) == "small"
    assert size_class(256, 256) == "small"
    assert size_class(4096, 4096) == "large"
    assert size_class(3, 10007) == "small"  # 120 KB: launch-bound like any small call
    assert size_class(16, 65536) == "wide"
    assert size_class(65536, 16) == "tall"
    assert size_class(1023, 1025) == "large"


def test_repeat_path_rechecks_liveness_and_scalars(rt):
    a, x, y = rt.matrix(np.eye(3, dtype=np.float32)), rt.vector([1, 2, 3]), rt.vector(3)
    clnn.mv(a, x, out=y)
    clnn.mv(a, x, out=y)
    np.testing.assert_array_equal(y.to_numpy(), [1, 2, 3])
    clnn.mv(a, x, out=y, alpha=2)
    np.testing.assert_array_equal(y.to_numpy(), [2, 4, 6])
    clnn.mv(a, x, out=y, alpha=1, beta=1)
    np.testing.assert_array_equal(y.to_numpy(), [3, 6, 9])
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, alpha=True)
    with pytest.raises(clnn.DTypeError):
        clnn.mv(a, x, out=y, beta=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(y.to_numpy(), [3, 6, 9])
    x.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mv(a, x, out=y)
    np.testing.assert_array_equal(y.to_numpy(), [3, 6, 9])
    for b in (a, y):
        b.release()


def test_split_workspace_is_not_shared_across_dtypes(rt, dtype, rng):
    """Two split calls in a row (same runtime workspace) give both right answers."""
    A = rng.standard_normal((3, 20000)).astype(dtype)
    B = rng.standard_normal((5, 30000)).astype(dtype)
    with rt.matrix(A) as a, rt.matrix(B) as b, rt.vector(A[0]) as xa, \
            rt.vector(B[1]) as xb:
        ya, yb = clnn.mv(a, xa), clnn.mv(b, xb)
        assert_close(ya.to_numpy(), ref_mv(A, A[0]), dtype, k=20000)
        assert_close(yb.to_numpy(), ref_mv(B, B[1]), dtype, k=30000)
        ya.release()
        yb.release()


@pytest.mark.timing
def test_clnn_bench_gemv_table_and_json(device, tmp_path, capsys):
    """A minimal run of ``clnn bench gemv``: one table, every case checked against numpy,
    the JSON holds the same rows (the timings themselves are not judged here)."""
    from clnn.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "gemv", "--device", device.spec, "--sizes", "64", "--dtype",
                 "float32", "--repeat", "1", "--settle", "0", "--no-first-call",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "clnn GB/s" in text and "numpy GB/s" in text and "copy GB/s" in text
    assert "10007x3" in text and "tiny mv 4x2" in text
    data = json.loads(out.read_text())
    assert len(data["cases"]) == 4 * (1 + 3)  # 64^2 and three odd shapes, 2 layouts x N/T
    assert all(c["correct"] for c in data["cases"])
    # the odd shapes are timed beside the square (here the only --sizes one) in their rounds
    odd = [c for c in data["cases"] if c["m"] != c["n"]]
    assert odd and all(c["square"] == 64 and c["square_ratio"] > 0 for c in odd)
    assert all(c["pass"] == (c["square_ratio"] >= 0.5) for c in odd)
    # the launch-bound ones (120 KB) also beside clnn's kernel enqueued raw and the read
    # floor, in a second table; 1023x1025 (4 MB) is not launch-bound
    small = [c for c in odd if c["bytes"] <= 1 << 20]
    assert len(small) == 8 and all("floor_ratio" not in c for c in odd if c not in small)
    assert all(c["floor_gbs"] > 0 and c["floor_ratio"] > 0 for c in small)
    assert all(c["raw_gbs"] > 0 and c["raw_ratio"] > 0 for c in small)
    assert "the read floor" in text and "floor x sq" in text
    assert {o["case"][:7] for o in data["overhead"]} == {"tiny mv"}
    assert data["targets"] == sum(1 for c in data["cases"] if c["pass"] is not None) + 2


# ---- ACC=2: persistent work-groups and their counters ----------------------------------------
def _dynamic_db(device, tmp_path, monkeypatch, **col):
    if device.type != "CPU":
        pytest.skip("ACC=2 (persistent work-groups) is for CPU devices")
    p = {"ACC": 2, "VW": 4, "CU": 2, "MB": 16, "NG": 4, "PAN": 3}
    p.update(col)
    path = tmp_path / "tuning.json"
    _write_db(path, device, ({"NG": 8}, p))
    monkeypatch.setenv("CLNN_TUNING_DB", str(path))
    tuning.clear_cache()


def test_dynamic_counters_reset_between_calls(rt, device, dtype, tmp_path, monkeypatch, rng):
    """Many launches of one ACC=2 plan in a row, and several plans interleaved, each reusing
    its work counters: every result is right (a counter left behind by one launch would skip
    units of the next)."""
    _dynamic_db(device, tmp_path, monkeypatch)
    try:
        shapes = [(37, 29), (100, 7), (5, 61)]
        mats = [rng.standard_normal(s).astype(dtype) for s in shapes]
        with rt.matrix(mats[0], layout="col") as a0, rt.matrix(mats[1], layout="col") as a1, \
                rt.matrix(mats[2], layout="col") as a2:
            devs = [a0, a1, a2]
            for rep in range(20):
                i = rep % 3
                x = rng.standard_normal(shapes[i][1]).astype(dtype)
                with rt.vector(x) as xv:
                    got = clnn.mv(devs[i], xv).to_numpy()
                assert_close(got, ref_mv(mats[i], x), dtype, k=shapes[i][1])
            gemv_mod = importlib.import_module("clnn.gemv")
            with rt.vector(29) as xv, rt.vector(37) as yv:
                assert gemv_mod._call_for(rt, a0, xv, yv).params["ACC"] == 2
    finally:
        tuning.clear_cache()


def test_dynamic_more_groups_than_units(rt, device, dtype, tmp_path, monkeypatch, rng):
    """NG larger than the number of units: the idle groups still count themselves done and
    the last one writes y (including beta * y and strided y)."""
    _dynamic_db(device, tmp_path, monkeypatch, NG=64, MB=1024, PAN=1024)
    try:
        A = rng.standard_normal((70, 90)).astype(dtype)
        x = rng.standard_normal(90).astype(dtype)
        y0 = rng.standard_normal(140).astype(dtype)
        with rt.matrix(A, layout="col") as a, rt.vector(x) as xv, rt.vector(y0) as y:
            yv = y.subvector(0, 70, 2)
            clnn.mv(a, xv, out=yv, alpha=2.0, beta=-1.0)
            want, scale = y0.astype(np.float64), np.abs(y0.astype(np.float64))
            want[0::2], scale[0::2] = ref_mv(A, x, 2.0, y0[0::2], -1.0)
            assert_close(y.to_numpy(), want, dtype, k=90, scale=scale)
    finally:
        tuning.clear_cache()


def test_dynamic_refused_off_cpu():
    """ACC=2 relies on coherent caches between work-groups: a GPU's tuning entry with it is
    rejected (and the lookup falls back)."""
    gemv_tunables = importlib.import_module("clnn.gemv_tunables")

    class Gpu:
        type = "GPU"
        max_work_group_size = 256

    with pytest.raises(ValueError, match="ACC=2"):
        gemv_tunables.validate(Gpu(), "col", "float", {"ACC": 2, "WGS": 1})


# ---- the tuner reaches the narrow kernels ------------------------------------------------------
@pytest.mark.timing
def test_tuner_times_narrow_kernels_and_their_width(rt, device):
    """The classes that hold narrow shapes are timed on one too (so NVW, the narrow kernels'
    vector width, is measured), and NVW is among their candidates; other classes are not."""
    tune_gemv = importlib.import_module("clnn.tune.gemv")
    cands = list(tune_gemv.candidates(device, "float", quick=False))
    for variant, sc in (("row", "small"), ("row", "tall"), ("col", "small"), ("col", "wide")):
        assert len({p["NVW"] for v, s, p in cands if (v, s) == (variant, sc)}) >= 2
    assert len({p["NVW"] for v, s, p in cands if (v, s) == ("row", "large")}) == 1
    probs = tune_gemv.bench_data(rt, "col", "float", "wide", True)
    assert [(a.m, a.n) for _, _, a, _, _ in probs] == [(8, 16384), (3, 16384)]
    assert [(a.m, a.n) for _, _, a, _, _ in tune_gemv.bench_data(rt, "col", "float", "large",
                                                                     True)] == [(1024, 1024)]
    assert probs[0][2].released  # one group's operands at a time
    p = dict(tuning.defaults(device, "gemv", "col", "float", "wide"), NVW=4)
    assert tune_gemv.bench(rt, "col", "float", "wide", p, quick=True) > 0
