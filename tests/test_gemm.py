"""clnn.mm (gemm) against numpy: every layout and transpose, both dtypes, awkward sizes,
sub-matrix views, alpha/beta, both kernel paths with default and alternative tunables, and bad
input that must leave ``out`` untouched."""

import importlib
import itertools
import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_mm, ref_sum

import clnn
from clnn import tuning

G = importlib.import_module("clnn.gemm")  # the module (clnn.gemm is also the function)
TG = importlib.import_module("clnn.tune.gemm")  # its tuner hooks (clnn tune gemm)

LAYOUTS = ["row", "col"]
PACKED_ALT = [  # alternative tunables of the packed path (edge cases of the template)
    {"MR": 1, "NR": 1, "VW": 1, "UK": 1, "KB": 1, "CACHE": 1, "TPW": 1, "DIRECTN": 100000},
    {"MR": 3, "NR": 8, "VW": 4, "UK": 3, "KB": 7, "CACHE": 1, "TPW": 3, "DIRECTN": 1},
    {"MR": 4, "NR": 24, "VW": 8, "UK": 2, "KB": 64, "CACHE": 64, "TPW": 2, "DIRECTN": 100000},
    {"MR": 8, "NR": 32, "VW": 16, "UK": 5, "KB": 100, "CACHE": 4096, "TPW": 5, "DIRECTN": 1},
]
REF_ALT = [{"TS": 1, "WPT": 1}, {"TS": 4, "WPT": 2}, {"TS": 16, "WPT": 1},
           {"TS": 16, "WPT": 4}, {"TS": 32, "WPT": 8}]


def _pid(p):
    return "-".join(f"{k}{v}" for k, v in sorted(p.items()))


def _operands(rt, rng, m, n, k, dtype, la, lb, ta, tb):
    """Device operands op(a) (m x k) and op(b) (k x n), stored in layouts la, lb, transposed
    views when ta/tb; returns (op_a, op_b, opA, opB) with the numpy equivalents."""
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a, b = rt.matrix(A, layout=la), rt.matrix(B, layout=lb)
    return (a.T if ta else a), (b.T if tb else b), (A.T if ta else A), (B.T if tb else B)


def _expect(opA, opB, C0, alpha, beta):
    return ref_mm(opA, opB, alpha, C0, beta)


def _check(rt, rng, m, n, k, dtype, la, lb, lc, ta, tb, alpha=1.0, beta=0.0, variant=None,
           params=None):
    oa, ob, opA, opB = _operands(rt, rng, m, n, k, dtype, la, lb, ta, tb)
    C0 = rng.standard_normal((m, n)).astype(dtype)
    c = rt.matrix(C0, layout=lc)
    res = G._mm(oa, ob, c, alpha, beta, variant=variant, params=params)
    assert res is c and c.shape == (m, n) and c.layout == lc
    exact, scale = _expect(opA, opB, C0, alpha, beta)
    assert_close(c.to_numpy(), exact, dtype, k=k, scale=scale)
    for x in (oa, ob, c):
        x.base.release()


# ---- every layout and transpose, both paths ------------------------------------------------
@pytest.mark.parametrize("la,lb,lc", list(itertools.product(LAYOUTS, repeat=3)),
                         ids=lambda s: s)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)],
                         ids=["NN", "NT", "TN", "TT"])
def test_layouts_and_transposes(rt, dtype, la, lb, lc, ta, tb, rng):
    # 67x45x53 takes the packed path on CPU devices (edge tiles in m and n), 5x7x3 the ref
    for m, n, k in ((67, 45, 53), (5, 7, 3)):
        _check(rt, rng, m, n, k, dtype, la, lb, lc, ta, tb)


# ---- awkward sizes -------------------------------------------------------------------------
SIZES = [(1, 1, 1), (1, 1, 1023), (3, 17, 1), (17, 3, 301), (301, 17, 3), (1, 301, 17),
         (301, 301, 301), (1023, 17, 3), (3, 1023, 17), (17, 1023, 301), (10007, 3, 5),
         (3, 10007, 5), (5, 3, 10007), (17, 17, 10007)]


@pytest.mark.parametrize("mnk", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_awkward_sizes(rt, dtype, mnk, rng):
    m, n, k = mnk
    i = SIZES.index(mnk)  # rotate through layouts and transposes
    la, lb, lc = (LAYOUTS[(i >> s) & 1] for s in range(3))
    _check(rt, rng, m, n, k, dtype, la, lb, lc, bool(i % 3 == 1), bool(i % 4 == 2))


@pytest.mark.parametrize("variant", ["ref", "packed"])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (1023, 1, 17), (1, 1023, 17), (2, 2, 1023)],
                         ids=lambda s: "x".join(map(str, s)))
def test_both_paths_any_size(rt, dtype, variant, mnk, rng):
    m, n, k = mnk
    _check(rt, rng, m, n, k, dtype, "col", "row", "row", False, True, variant=variant)


# ---- alternative tunables ------------------------------------------------------------------
@pytest.mark.oclgrind
@pytest.mark.parametrize("params", PACKED_ALT, ids=_pid)
@pytest.mark.parametrize("la,lb,lc", [("row", "row", "row"), ("col", "row", "col"),
                                      ("row", "col", "col")], ids=lambda s: s)
def test_packed_tunables(rt, dtype, params, la, lb, lc, rng):
    if params["VW"] * dtype.itemsize > 64:  # no vectors wider than 512 bits (see _validate)
        params = dict(params, VW=params["VW"] // 2)  # adapted explicitly, in the open
    try:  # the checks clnn applies to tuned values: a set that does not fit is skipped
        tuning.check(rt.device, "gemm", "packed", G.real_type(dtype), params)
    except ValueError as e:
        pytest.skip(f"packed tunables {_pid(params)} do not fit {rt.device}: {e}")
    for m, n, k in ((37, 53, 29), (1, 1, 1), (9, 33, 130)):
        _check(rt, rng, m, n, k, dtype, la, lb, lc, False, False, alpha=1.5, beta=0.5,
               variant="packed", params=params)


@pytest.mark.oclgrind
@pytest.mark.parametrize("params", REF_ALT, ids=_pid)
def test_ref_tunables(rt, dtype, params, rng):
    try:  # the checks clnn applies to tuned values: a set that does not fit is skipped
        tuning.check(rt.device, "gemm", "ref", G.real_type(dtype), params)
    except ValueError as e:
        pytest.skip(f"ref tunables {_pid(params)} do not fit {rt.device}: {e}")
    for m, n, k in ((37, 53, 29), (1, 1, 1)):
        _check(rt, rng, m, n, k, dtype, "col", "col", "row", True, False, alpha=-1.0,
               beta=2.0, variant="ref", params=params)


def test_defaults_follow_device(device):
    for dt in ("float", "double"):
        p = G.gemm_defaults(device, "packed", dt)
        assert p["NR"] % p["VW"] == 0 and p["MR"] >= 1
        r = G.gemm_defaults(device, "ref", dt)
        G._validate(device, "ref", dt, r)
    big = G.choose_variant(device, 1024, 1024, 1024)
    assert big == ("packed" if device.type == "CPU" else "ref")
    assert G.choose_variant(device, 1, 1, 1) == "ref"


@pytest.mark.parametrize("wgs", [1024, 256, 64, 16])
def test_gpu_defaults_fit(device, wgs):
    """A GPU-like device gets the ref kernel with tiles that fit its work-group limit."""
    import dataclasses

    gpu = dataclasses.replace(device, type="GPU", max_work_group_size=wgs)
    assert G.choose_variant(gpu, 2048, 2048, 2048) == "ref"
    for dt in ("float", "double"):
        p = G.gemm_defaults(gpu, "ref", dt)
        G._validate(gpu, "ref", dt, p)
        assert p["TS"] ** 2 // p["WPT"] <= wgs and p["TS"] >= 4
        assert list(TG.candidates(gpu, dt, quick=True))


# ---- views, alpha / beta, beta = 0 ---------------------------------------------------------
@pytest.mark.parametrize("lc", LAYOUTS)
def test_submatrix_views(rt, dtype, lc, rng):
    """Operands and out are sub-matrices (offset != 0, ld > n); out's surroundings stay."""
    m, n, k = 41, 35, 30
    P = rng.standard_normal((60, 50)).astype(dtype)
    Q = rng.standard_normal((50, 70)).astype(dtype)
    R = rng.standard_normal((55, 45)).astype(dtype)
    p, q, r = rt.matrix(P, layout="row"), rt.matrix(Q, layout="col"), rt.matrix(R, layout=lc)
    a = p[3:3 + m, 7:7 + k]  # row layout, ld 50
    b = q[5:5 + n, 2:2 + k].T  # k x n, row layout view of a col matrix, ld 50
    c = r[4:4 + m, 6:6 + n]
    for variant in ("ref", "packed"):
        c0 = r.to_numpy()
        G._mm(a, b, c, 2.0, -1.0, variant=variant)
        opA, opB = P[3:3 + m, 7:7 + k], Q[5:5 + n, 2:2 + k].T
        exact, scale = _expect(opA, opB, c0[4:4 + m, 6:6 + n].astype(np.float64), 2.0, -1.0)
        got = r.to_numpy()
        assert_close(got[4:4 + m, 6:6 + n], exact, dtype, k=k, scale=scale)
        outside = np.ones(got.shape, bool)
        outside[4:4 + m, 6:6 + n] = False
        np.testing.assert_array_equal(got[outside], c0[outside])
    for x in (p, q, r):
        x.release()


@pytest.mark.parametrize("alpha,beta", [(1, 0), (2.5, 0), (0.5, 1), (-1, -2), (0, 3), (0, 0)])
def test_alpha_beta(rt, dtype, alpha, beta, rng):
    for m, n, k in ((70, 40, 33), (4, 3, 2)):
        _check(rt, rng, m, n, k, dtype, "row", "col", "col", True, False, alpha, beta)


@pytest.mark.parametrize("variant", ["ref", "packed"])
@pytest.mark.parametrize("lc", LAYOUTS)
def test_beta_zero_never_reads_out(rt, dtype, variant, lc):
    for m, n, k in ((5, 4, 3), (67, 45, 53)):
        c = rt.matrix(np.full((m, n), np.nan, dtype), layout=lc)
        a = rt.matrix(np.ones((m, k), dtype))
        b = rt.matrix(np.ones((k, n), dtype), layout="col")
        G._mm(a, b, c, 1.0, 0.0, variant=variant)
        np.testing.assert_array_equal(c.to_numpy(), np.full((m, n), float(k)))
        c.set(np.full((m, n), np.inf, dtype))
        G._mm(a, b, c, 0.5, 0.0, variant=variant)
        np.testing.assert_array_equal(c.to_numpy(), np.full((m, n), k / 2))
        for x in (a, b, c):
            x.release()


def test_nan_propagates_from_inputs(rt):
    A = np.ones((30, 30), np.float32)
    A[3, 4] = np.nan
    c = clnn.mm(rt.matrix(A), rt.matrix(np.ones((30, 30), np.float32)))
    got = c.to_numpy()
    assert np.isnan(got[3]).all() and not np.isnan(np.delete(got, 3, axis=0)).any()


def test_functional_form(rt, dtype, rng):
    A = rng.standard_normal((20, 30)).astype(dtype)
    B = rng.standard_normal((30, 10)).astype(dtype)
    c = clnn.mm(rt.matrix(A, layout="col"), rt.matrix(B))
    assert c.shape == (20, 10) and c.dtype == dtype and c.layout == "row"
    exact, scale = _expect(A, B, None, 1.0, 0.0)
    assert_close(c.to_numpy(), exact, dtype, k=30, scale=scale)
    assert clnn.gemm is clnn.mm


def test_issue_example(rt):
    a = rt.matrix([[1, 2], [3, 4]])
    np.testing.assert_array_equal(clnn.mm(a, a.T).to_numpy(), [[5, 11], [11, 25]])


# ---- allocation and workspace --------------------------------------------------------------
def test_out_allocates_nothing(rt):
    for m in (8, 200):  # ref and packed paths
        a, b, c = rt.matrix((m, m)), rt.matrix((m, m)), rt.matrix((m, m))
        for x in (a, b):
            x.set(np.ones((m, m)))
        # the first packed calls may size the workspace (A is packed only for a.T)
        clnn.mm(a, b, out=c)
        clnn.mm(a.T, b, out=c, beta=1.0)
        before = rt.allocations
        for _ in range(5):
            clnn.mm(a, b, out=c)
            clnn.mm(a.T, b, out=c, beta=1.0)
        assert rt.allocations == before
        clnn.mm(a, b)
        assert rt.allocations == before + 1
        for x in (a, b, c):
            x.release()


def test_workspace_released_with_runtime(device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as r:
            a = r.matrix(np.ones((64, 64), np.float32))
            clnn.mm(a, a, out=r.matrix((64, 64)))
            ws = [v for v in r._plans.values() if isinstance(v, clnn.Vector)]
        assert all(w.released for w in ws)


# ---- bad input: a clear error and out untouched --------------------------------------------
def _unchanged(c, before):
    np.testing.assert_array_equal(c.to_numpy(), before)


def test_bad_inputs_leave_out_unchanged(rt, device):
    a = rt.matrix(np.ones((4, 3), np.float32))
    b = rt.matrix(np.ones((3, 5), np.float32))
    c = rt.matrix(np.full((4, 5), 7.0, np.float32))
    before = c.to_numpy()
    with pytest.raises(clnn.ShapeError, match="needs 3 rows"):
        clnn.mm(a, a, out=c)
    with pytest.raises(clnn.ShapeError, match="out has shape"):
        clnn.mm(a, b, out=rt.matrix((5, 4)))
    with pytest.raises(clnn.ShapeError, match="out has shape"):
        clnn.mm(a, b, out=c.T)
    with pytest.raises(clnn.ShapeError):
        clnn.mm(a, rt.vector(3), out=c)
    with pytest.raises(clnn.OperandError):
        clnn.mm(a, np.ones((3, 5), np.float32), out=c)
    with pytest.raises(clnn.DTypeError):
        clnn.mm(a, b, out=c, alpha="x")
    with pytest.raises(clnn.DTypeError):
        clnn.mm(a, b, out=c, beta=1j)
    if device.fp64:
        with pytest.raises(clnn.DTypeError, match="mixed dtypes"):
            clnn.mm(a, rt.matrix(np.ones((3, 5))), out=c)
        with pytest.raises(clnn.DTypeError, match="mixed dtypes"):
            clnn.mm(a, b, out=rt.matrix((4, 5), dtype=np.float64))
    sq = rt.matrix(np.ones((4, 4), np.float32))
    with pytest.raises(clnn.ShapeError, match="shares memory"):
        clnn.mm(sq, sq, out=sq)
    with pytest.raises(clnn.ShapeError, match="shares memory"):
        clnn.mm(sq.T, rt.matrix(np.ones((4, 4), np.float32)), out=sq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as other:
            ob = other.matrix(np.ones((3, 5), np.float32))
            with pytest.raises(clnn.RuntimeMismatchError):
                clnn.mm(a, ob, out=c)
    dead = rt.matrix(np.ones((3, 5), np.float32))
    dead.release()
    with pytest.raises(clnn.ReleasedError):
        clnn.mm(a, dead, out=c)
    with pytest.raises(clnn.ReleasedError):
        clnn.mm(a, b, out=_released_view(rt))
    _unchanged(c, before)
    for x in (a, b, c, sq):
        x.release()


def _released_view(rt):
    m = rt.matrix((4, 5))
    v = m[0:4, 0:5]
    m.release()
    return v


# ---- tuner hooks ---------------------------------------------------------------------------
def test_tuner_candidates_valid(device):
    from clnn.tune import tuners

    assert "gemm" in tuners()
    for dt in ("float", "double"):
        cands = list(TG.candidates(device, dt, quick=True))
        assert cands
        for variant, sc, p in cands:
            base = G.gemm_defaults(device, variant, dt, sc)
            assert set(p) == set(base)
            assert all(isinstance(v, int) and v > 0 for v in p.values())
            G._validate(device, variant, dt, p)


@pytest.mark.timing
def test_tuner_bench_checks_and_times(rt):
    variant = G.choose_variant(rt.device, 128, 512, 784)
    p = G.gemm_defaults(rt.device, variant, "float", "medium")
    s = TG.bench(rt, variant, "float", "medium", p)
    assert 0 < s < 1.0


# ---- benchmarks (smoke: tiny sizes) ----------------------------------------------------------
@pytest.mark.timing
def test_bench_gemm_smoke(rt, capsys):
    import argparse

    from clnn.bench import gemm as bench

    res, quiet, pairs = bench.quiet_interleaved({"a": lambda: None, "b": lambda: None}, 2,
                                                {"a": 1, "b": 1}, 0.0, 0.0)
    assert set(res) == {"a", "b", "pair_ratio"} and pairs >= 2 and 0 <= quiet <= pairs
    assert res["pair_ratio"] > 0  # median of b's time / a's time over the pairs
    p = argparse.ArgumentParser()
    bench.add_arguments(p, "gemm")
    args = p.parse_args(["--quick", "--json", "x.json"])
    assert args.quick and args.json == "x.json"
    assert bench._target(1024, 1024, 1024, np.float32) == ("large", 0.85)
    assert bench._target(128, 512, 784, np.float32) == ("layer", 0.6)
    assert bench._target(1024, 1024, 1024, np.float64) == (None, None)


@pytest.mark.timing
def test_bench_batch_smoke(device, tmp_path, capsys):
    import argparse
    import json

    from clnn.bench import batch

    p = argparse.ArgumentParser()
    p.add_argument("--device", default=device.spec)
    batch.add_arguments(p, "batch")
    out = tmp_path / "batch.json"
    args = p.parse_args(["--inputs", "30", "--outputs", "7", "--batch", "40", "--repeat", "1",
                         "--json", str(out)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        assert batch.run(args, "batch") == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "30 -> 7" in text
    data = json.loads(out.read_text())
    assert data["batch"] == 40 and data["mv_rel_err"] < 1e-5 and data["mm_rel_err"] < 1e-5


_HSTR = "OpenCL 3.0 PoCL HSTR: pthread-x86_64-"


@pytest.mark.parametrize("name,version,wide", [
    ("pthread-skylake-avx512-AMD EPYC", _HSTR + "pc-linux-gnu-skylake-avx512", True),
    ("pthread-AMD EPYC", _HSTR + "unknown-linux-gnu-znver4", True),
    ("pthread-AMD EPYC", _HSTR + "unknown-linux-gnu-znver3", False),
    ("Intel(R) Core(TM) i7", "OpenCL 3.0 (Build 0)", False),
])
def test_register_tile_follows_the_vector_isa(device, name, version, wide):
    """A CPU target with AVX-512 gets the 8 x 32 float tile (8 x 16 double), others 6 x 16
    (6 x 8); both are valid tunables and the kernels are tested with both shapes above."""
    import dataclasses

    gemm_mod = importlib.import_module("clnn.gemm")
    dev = dataclasses.replace(device, type="CPU", name=name, opencl_version=version)
    assert gemm_mod.avx512(dev) is wide
    f = gemm_mod.gemm_defaults(dev, "packed", "float")
    d = gemm_mod.gemm_defaults(dev, "packed", "double")
    assert (f["MR"], f["NR"], f["VW"]) == ((8, 32, 16) if wide else (6, 16, 8))
    assert (d["MR"], d["NR"], d["VW"]) == ((8, 16, 8) if wide else (6, 8, 4))
    gemm_mod._validate(dev, "packed", "float", f)
    gemm_mod._validate(dev, "packed", "double", d)
    gpu = dataclasses.replace(device, type="GPU", name=name, opencl_version=version)
    assert not gemm_mod.avx512(gpu)


# ---- prepared products with store epilogues (the nn layers' path) --------------------------
ACT_NAMES = ["linear", "sigmoid", "tanh", "relu"]  # codes 0..3, as kernels/nn.cl.mako


def _act64(code, z):
    return [z, 1 / (1 + np.exp(-z)), np.tanh(z), np.maximum(z, 0)][code]


def _dact64(code, y):
    """(act'(.) from the activation's output y, as the epilogue computes it, and the sum of
    its terms' magnitudes: y - y^2 and 1 - y^2 cancel where y is near 1)."""
    one = np.ones_like(y)
    return ([one, y * (1 - y), 1 - y * y, (y > 0).astype(np.float64)][code],
            [one, np.abs(y) + y * y, 1 + y * y, one][code])


def _operand(x):
    return (x._owner._buf, x.offset) + G._strides(x)


def _product_case(rt, rng, dtype, m, n, k, la, epilogue, act, params=None):
    """One Product against float64 references; returns nothing, asserts everything."""
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    # E: a bias row (bias_act), the layer's stored output y (dact), the row sums (rowsum)
    E = {"bias_act": rng.standard_normal((1, n)),
         "dact": _act64(act, rng.standard_normal((m, n)))}.get(epilogue,
                                                                np.full((m, 1), np.nan))
    E = E.astype(dtype)
    a, b = rt.matrix(A, layout=la), rt.matrix(B)
    c, e = rt.matrix(np.full((m, n), np.nan, dtype)), rt.matrix(E)
    pa, pb = (rt.vector(x, dtype=dtype) for x in G.panel_bound(m, n, k))
    eop = None if epilogue is None else (e._buf, 0, e.ld if epilogue == "dact" else 1)
    prod = G.Product(rt, dtype, m, n, k, _operand(a), _operand(b), _operand(c),
                     (pa._buf, pb._buf), epilogue, eop, act, params=params)
    prod.enqueue()
    z, zscale = ref_mm(A, B)
    if epilogue == "bias_act":
        # one more term (the bias) and one rounding of the activation's value
        z64 = z + E.astype(np.float64)
        want = _act64(act, z64)
        assert_close(c.to_numpy(), want, dtype, k=k + 1,
                     scale=zscale + np.abs(E.astype(np.float64)) + np.abs(want))
    elif epilogue == "dact":
        d, dscale = _dact64(act, E.astype(np.float64))
        assert_close(c.to_numpy(), z * d, dtype, k=k + 2, scale=zscale * dscale)
    else:
        assert_close(c.to_numpy(), z, dtype, k=k, scale=zscale)
    if epilogue == "rowsum":
        assert_close(e.to_numpy()[:, 0], ref_sum(A, axis=1), dtype, k=k)
    else:
        np.testing.assert_array_equal(e.to_numpy(), E)  # an input: never written
    for x in (a, b, c, e, pa, pb):
        x.release()


PRODUCT_SIZES = [(1, 1, 1), (3, 17, 5), (17, 3, 301), (37, 53, 29), (301, 17, 3)]


EPI_CASES = [(None, 0), ("rowsum", 0)] + [(e, a) for e in ("bias_act", "dact")
                                            for a in range(4)]


@pytest.mark.oclgrind
@pytest.mark.parametrize("epilogue,act", EPI_CASES,
                         ids=[f"{e}-{ACT_NAMES[a]}" for e, a in EPI_CASES])
def test_product_epilogues(rt, dtype, epilogue, act, rng):
    """Every epilogue and activation at awkward sizes (edge tiles in m and n), A row-major
    (read in place) and column-major (packed)."""
    for i, (m, n, k) in enumerate(PRODUCT_SIZES):
        _product_case(rt, rng, dtype, m, n, k, LAYOUTS[i % 2], epilogue, act)


@pytest.mark.oclgrind
@pytest.mark.parametrize("params", PACKED_ALT[:2], ids=_pid)
def test_product_tunables(rt, dtype, params, rng):
    """The epilogues with other register tiles: a scalar tile, odd MR/UK/KB, TPW > 1, A in
    place (DIRECTN large) and packed (DIRECTN 1). The wide tiles of PACKED_ALT (24 and 32
    columns) are test_packed_tunables' with plain stores; their epilogues share the vector
    code that test_product_epilogues runs with the default tile (on an AVX2 device a 32-lane
    tile with three epilogues took 30-48 s to build per dtype: CI time)."""
    if params["VW"] * dtype.itemsize > 64:  # no vectors wider than 512 bits (see _validate)
        params = dict(params, VW=params["VW"] // 2)
    try:
        tuning.check(rt.device, "gemm", "packed", G.real_type(dtype), params)
    except ValueError as e:
        pytest.skip(f"packed tunables {_pid(params)} do not fit {rt.device}: {e}")
    for epilogue, act in (("bias_act", 2), ("dact", 3), ("rowsum", 0)):
        for la in LAYOUTS:
            _product_case(rt, rng, dtype, 37, 53, 29, la, epilogue, act, params=params)


def test_product_point_and_checks(rt):
    """point() moves A's rows and C (offsets and whole operands); too small a panel scratch,
    a column-major C, an unknown epilogue and a released operand are refused."""
    dt = np.float32
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 7)).astype(dt)
    W = rng.standard_normal((7, 5)).astype(dt)
    x, w, c = rt.matrix(X), rt.matrix(W), rt.matrix((10, 5), dtype=dt)
    pa, pb = (rt.vector(v, dtype=dt) for v in G.panel_bound(10, 5, 7))
    prod = G.Product(rt, dt, 10, 5, 7, _operand(x), _operand(w), _operand(c),
                     (pa._buf, pb._buf))
    for r0 in (0, 30, 17):
        prod.point(a=x.offset + r0 * 7)
        prod.enqueue()
        assert_close(c.to_numpy(), ref_mm(X[r0:r0 + 10], W), dt, k=7)
    with rt.matrix(X[5:15].copy()) as x2:
        prod.point(a=_operand(x2))
        prod.enqueue()
        assert_close(c.to_numpy(), ref_mm(X[5:15], W), dt, k=7)
    # x2 is released: moving the offset on it is refused, and so is a released C
    with pytest.raises(clnn.ReleasedError, match="argument A was released"):
        prod.point(a=7)
    gone = rt.matrix((10, 5), dtype=dt)
    dead = _operand(gone)
    gone.release()
    prod.point(a=_operand(x))
    with pytest.raises(clnn.ReleasedError, match="argument C was released"):
        prod.point(c=dead)
    prod.enqueue()  # still x and c
    assert_close(c.to_numpy(), ref_mm(X[:10], W), dt, k=7)
    with rt.vector(8, dtype=dt) as tiny, pytest.raises(clnn.ShapeError, match="B panel"):
        G.Product(rt, dt, 10, 5, 7, _operand(x), _operand(w), _operand(c), (None, tiny._buf))
    with c.copy("col") as ccol, pytest.raises(clnn.ShapeError, match="row-major"):
        G.Product(rt, dt, 10, 5, 7, _operand(x), _operand(w), _operand(ccol),
                  (pa._buf, pb._buf))
    with pytest.raises(clnn.ShapeError, match="epilogue"):
        G.Product(rt, dt, 10, 5, 7, _operand(x), _operand(w), _operand(c),
                  (pa._buf, pb._buf), "gelu", (pb._buf, 0, 1))
    assert "EPI" not in G._render("tile", G.gemm_defaults(rt.device, "packed", "float"))
    for v in (x, w, c, pa, pb):
        v.release()
