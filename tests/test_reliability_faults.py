"""Faults clnn must survive: out of memory, kernels that do not build, damaged tuning databases
and damaged compile caches. Each one raises a clnn error or recovers (with a warning), and the
runtime stays usable afterwards.

The compile-cache cases run clnn in a child process (a damaged PoCL cache used to abort the
whole process), with ``XDG_CACHE_HOME`` pointing at a temporary folder.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from tolerances import assert_close, ref_mm, rtol
from tuningdb import private_db

import clnn
from clnn import cacheguard, tuning
from clnn.runtime import device_bytes_in_use


def _mv_ok(rt, dtype=np.float32, m=17, n=301):
    """The runtime still computes: a fresh mv compared with numpy."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((m, n)).astype(dtype)
    x = rng.standard_normal(n).astype(dtype)
    with rt.matrix(a) as da, rt.vector(x) as dx, clnn.mv(da, dx) as y:
        assert_close(y.to_numpy(), ref_mm(a, x), dtype, k=n)


# ---- out of memory ----------------------------------------------------------------------------
def test_oom_larger_than_one_allocation(rt):
    """One buffer beyond the device's largest allocation is refused, naming both byte counts.

    Where that limit lies beyond the 2**31-1 elements clnn indexes (8 GiB of float32), the
    element check refuses first, and no indexable vector reaches the byte check on this device:
    the byte check is then driven on a record of the same device with a smaller limit."""
    dev = rt.device
    if dev.max_alloc // 4 + 2 > 2**31 - 1:  # (the matrix below holds 2 more elements)
        with pytest.raises(clnn.OutOfMemoryError, match=r"2\*\*31-1"):
            rt.vector(dev.max_alloc // 4 + 1)
        dev = dataclasses.replace(dev, max_alloc=1 << 30)
    limit = dev.max_alloc
    with clnn.Runtime(dev) as r:
        before = r.allocations
        n = limit // 4 + 1
        with pytest.raises(clnn.OutOfMemoryError) as e:
            r.vector(n)
        msg = str(e.value)
        assert str(n * 4) in msg and str(limit) in msg, msg
        with pytest.raises(MemoryError) as e:  # also a MemoryError, for generic handlers
            r.matrix((limit // 8 + 1, 2))
        assert str((limit // 8 + 1) * 8) in str(e.value) and str(limit) in str(e.value)
        if dev.fp64:  # the element size counts
            with pytest.raises(clnn.OutOfMemoryError, match=str((limit // 8 + 1) * 8)):
                r.vector(limit // 8 + 1, dtype=np.float64)
        assert r.allocations == before and r.bytes_in_use == 0
        _mv_ok(r)
    _mv_ok(rt)


@pytest.mark.parametrize("shape", [2**31, 2**40, (2**31, 1), (2**20, 2**20), (1, 2**31)],
                         ids=["v2^31", "v2^40", "m2^31x1", "m2^20x2^20", "m1x2^31"])
def test_oom_beyond_index_range(rt, shape):
    make = rt.vector if isinstance(shape, int) else rt.matrix
    before = rt.allocations
    with pytest.raises(clnn.OutOfMemoryError, match="2\\*\\*31-1|bytes"):
        make(shape)
    assert rt.allocations == before
    _mv_ok(rt)


def _chunk(device) -> int:
    return min(device.max_alloc, device.global_mem // 4) // 4 * 4


def test_oom_total_beyond_global_memory(device):
    """Buffers that each fit but together exceed the device are refused, naming the limit;
    releasing some makes room again. (PoCL allocates lazily, so nothing is touched here.)"""
    gc.collect()  # other tests' forgotten buffers: gone now, not in the middle
    base = device_bytes_in_use(device)
    with clnn.Runtime(device) as rt:
        chunk = _chunk(device)
        held = []
        with pytest.raises(clnn.OutOfMemoryError) as e:
            for _ in range(device.global_mem // chunk + 2):
                held.append(rt.vector(chunk // 4))
        msg = str(e.value)
        assert str(device.global_mem) in msg and str(chunk) in msg
        assert rt.bytes_in_use == len(held) * chunk <= device.global_mem
        assert rt.bytes_in_use <= device_bytes_in_use(device) <= base + rt.bytes_in_use
        held.pop().release()
        held.append(rt.vector(chunk // 4))  # room again
        for v in held:
            v.release()
        assert rt.bytes_in_use == 0
        _mv_ok(rt)
    assert device_bytes_in_use(device) <= base


def test_oom_budget_is_shared_by_runtimes_of_one_device(device):
    chunk = _chunk(device)
    with clnn.Runtime(device) as r1, clnn.Runtime(device) as r2:
        first = [r1.vector(chunk // 4) for _ in range(device.global_mem // chunk - 1)]
        with pytest.raises(clnn.OutOfMemoryError):
            for _ in range(3):
                first.append(r2.vector(chunk // 4))
        r1.release()  # frees r1's share for r2
        more = [r2.vector(chunk // 4) for _ in range(2)]
        assert all(not v.released for v in more)
        _mv_ok(r2)


def test_oom_memory_limit_can_be_lowered(device):
    with clnn.Runtime(device) as rt:
        rt.memory_limit = device_bytes_in_use(device) + (1 << 20)  # 1 MiB more than in use
        a = rt.vector((1 << 20) // 8)
        with pytest.raises(clnn.OutOfMemoryError, match=str(rt.memory_limit)):
            rt.vector((1 << 20) // 4)
        a.release()
        _mv_ok(rt)


def test_oom_from_the_driver_is_translated(rt, monkeypatch):
    """A refusal the driver makes itself (a GPU out of memory, lazily or not) surfaces as
    OutOfMemoryError, and the bytes are given back."""
    import pyopencl as cl

    def refuse(*a, **k):
        raise cl.MemoryError("clCreateBuffer", cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE,
                             "simulated")

    used = rt.bytes_in_use
    monkeypatch.setattr(cl, "Buffer", refuse)
    with pytest.raises(clnn.OutOfMemoryError, match="refused 4000 bytes"):
        rt.vector(1000)
    monkeypatch.undo()
    assert rt.bytes_in_use == used
    _mv_ok(rt)


# ---- kernels that fail to build -------------------------------------------------------------
def test_bad_tunable_is_render_error_naming_it(rt):
    with pytest.raises(clnn.RenderError, match="VW=5"):
        rt.programs.program("gemv.cl.mako", dtype="float", layout="row", WGS=1, RPT=1, VW=5,
                            ACC=0, CU=1, SPLIT=False, ALIGNED=True, XINC1=True, NARROW=0,
                            LDK=False)
    _mv_ok(rt)


def test_compiler_refusal_is_build_error_with_log(rt):
    """A template that renders but that the compiler refuses (here: a macro that breaks the
    ``float`` type, as a device quirk would) raises BuildError holding the compiler's log."""
    from clnn.program import BUILD_OPTIONS, ProgramCache

    pc = ProgramCache(rt.ctx, rt._cl_device, options=BUILD_OPTIONS + ("-Dfloat=no_such_t",))
    with pytest.raises(clnn.BuildError) as e:
        pc.program("gemv.cl.mako", dtype="float", layout="row", WGS=1, RPT=1, VW=4, ACC=0,
                   CU=1, SPLIT=False, ALIGNED=True, XINC1=True, NARROW=0, LDK=False)
    msg = str(e.value)
    assert "gemv.cl.mako" in msg and "VW=4" in msg and "no_such_t" in msg
    _mv_ok(rt)


def test_kernel_missing_from_built_program_is_build_error(rt):
    with pytest.raises(clnn.BuildError, match="no_such_kernel"):
        rt.programs.kernel("gemv.cl.mako", "no_such_kernel", dtype="float", layout="row",
                           WGS=1, RPT=1, VW=1, ACC=0, CU=1, SPLIT=False, ALIGNED=False,
                           XINC1=True, NARROW=0, LDK=False)
    _mv_ok(rt)


# ---- tuning databases -------------------------------------------------------------------------
@pytest.fixture
def tuning_db(tmp_path, monkeypatch):
    """A private tuning database path; the in-memory lookups are reset around the test."""
    yield from private_db(tmp_path / "tuning.json", monkeypatch)


def _db(devkey: str, family: str, variant: str, dtype: str, params) -> dict:
    return {"format": "clnn-tuning", "version": tuning.FORMAT_VERSION,
            "devices": {devkey: {"entries": {f"{family}/{variant}/{dtype}/any":
                                             {"params": params}}}}}


def _ops_ok(rt):
    """mv (both layouts) and mm compared with numpy."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((31, 47)).astype(np.float32)
    x = rng.standard_normal(47).astype(np.float32)
    with rt.matrix(a) as da, rt.matrix(np.asfortranarray(a)) as fa, rt.vector(x) as dx:
        for m in (da, fa):
            with clnn.mv(m, dx) as y:
                assert_close(y.to_numpy(), ref_mm(a, x), np.float32, k=47)
        for n in (5, 29):  # the reference and (on CPUs) the packed gemm
            b = rng.standard_normal((47, n)).astype(np.float32)
            with rt.matrix(b) as db, clnn.mm(da, db) as c:
                assert_close(c.to_numpy(), ref_mm(a, b), np.float32, k=47)


CORRUPT_DBS = {
    "not-json": b"{this is not json",
    "binary": bytes(range(256)) * 4,
    "empty": b"",
    "json-list": b"[1, 2, 3]",
    "other-format": json.dumps({"format": "something", "version": 1, "devices": {}}).encode(),
    "future-version": json.dumps({"format": "clnn-tuning", "version": 999,
                                  "devices": {}}).encode(),
    "devices-not-dict": json.dumps({"format": "clnn-tuning", "version": 1,
                                    "devices": [1]}).encode(),
}


@pytest.mark.parametrize("content", list(CORRUPT_DBS), ids=list(CORRUPT_DBS))
def test_corrupt_tuning_database_is_ignored(rt, tuning_db, content):
    tuning_db.write_bytes(CORRUPT_DBS[content])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _ops_ok(rt)
    assert any(issubclass(x.category, tuning.TuningWarning) for x in w), \
        [str(x.message) for x in w]


STALE_ENTRIES = {
    "unknown-name": {"NOPE": 4},
    "negative": {"VW": -4},
    "zero": {"RPT": 0},
    "string": {"VW": "16"},
    "float": {"VW": 4.0},
    "bool": {"VW": True},
    "not-pow2": {"VW": 3},
    "huge": {"VW": 1 << 20},
    "huge-wgs": {"WGS": 1 << 30},
    "not-a-dict": [1, 2],
    "empty": {},
}


@pytest.mark.parametrize("entry", list(STALE_ENTRIES), ids=list(STALE_ENTRIES))
@pytest.mark.parametrize("family,variant", [("gemv", "row"), ("gemv", "col"),
                                            ("gemm", "ref"), ("gemm", "packed")])
def test_stale_tuning_entries_are_ignored(rt, tuning_db, entry, family, variant):
    db = _db(rt.device.key, family, variant, "float", STALE_ENTRIES[entry])
    tuning_db.write_text(json.dumps(db))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _ops_ok(rt)
        p, source = tuning.lookup(rt.device, family, variant, "float")
    assert source in ("builtin", "derived")
    assert any(issubclass(x.category, tuning.TuningWarning) for x in w)


@pytest.mark.parametrize("family,variant,template,name", [
    ("gemv", "row", "gemv.cl.mako", "RPT"), ("gemv", "col", "gemv.cl.mako", "VW"),
    ("gemm", "packed", "gemm.cl.mako", "UK"), ("gemm", "ref", "gemm.cl.mako", "TS")])
def test_tuned_values_that_fail_to_build_fall_back_to_defaults(rt, tuning_db, monkeypatch,
                                                               family, variant, template,
                                                               name):
    """A database entry that passes every check but that the compiler refuses (a driver
    quirk, a database from another driver version) costs a warning, not a failure."""
    if family == "gemm" and variant == "packed" and rt.device.type != "CPU":
        pytest.skip("the packed gemm runs on CPU devices only")
    d = tuning.defaults(rt.device, family, variant, "float")
    value = d[name] // 2 if d[name] > 1 else 2
    tuning_db.write_text(json.dumps(_db(rt.device.key, family, variant, "float",
                                        {name: value})))
    assert tuning.lookup(rt.device, family, variant, "float")[1] == "device"
    real_program = clnn.program.ProgramCache.program

    def quirky(self, tpl, **params):
        if tpl == template and params.get(name) == value:
            raise clnn.BuildError(f"simulated driver refusal of {name}={value}")
        return real_program(self, tpl, **params)

    monkeypatch.setattr(clnn.program.ProgramCache, "program", quirky)
    with clnn.Runtime(rt.device) as r:
        with pytest.warns(tuning.TuningWarning, match="using the defaults"):
            _ops_ok(r)
        with warnings.catch_warnings():
            warnings.simplefilter("error", tuning.TuningWarning)  # warned once only
            _ops_ok(r)


# ---- damaged compile caches (child processes) -----------------------------------------------
_CHILD = r"""
import json, sys, numpy as np, clnn
from clnn import cacheguard
if sys.argv[1:] == ["pyopencl-cache"]:  # make pyopencl use its binary cache on PoCL too
    import pyopencl.characterize as ch
    ch.has_src_build_cache = lambda dev: False
rng = np.random.default_rng(0)
out = {}
with clnn.Runtime("cpu") as rt:
    a = rng.standard_normal((37, 301)).astype(np.float32)
    x = rng.standard_normal(301).astype(np.float32)
    y = clnn.mv(rt.matrix(a), rt.vector(x)).to_numpy()
    yt = clnn.mv(rt.matrix(a).T, rt.vector(x[:37])).to_numpy()
    # a third program, cheap to build (a gemm build takes ~5 s, and every case rebuilds)
    d = clnn.dot(rt.vector(x), rt.vector(x))
    # error relative to the sum of the terms' magnitudes, against float64 references
    a64, x64 = a.astype(np.float64), x.astype(np.float64)
    out["err"] = max(float(np.max(np.abs(y - a64 @ x64) / (np.abs(a64) @ np.abs(x64)))),
                     float(np.max(np.abs(yt - a64.T @ x64[:37])
                                  / (np.abs(a64.T) @ np.abs(x64[:37])))),
                     abs(d - float(x64 @ x64)) / float(x64 @ x64))
out["removed"] = {g.path.name: g.removed for g in cacheguard.guards()}
print(json.dumps(out))
"""


def _run_child(cache: Path, *args: str, timeout: float = 300) -> dict:
    env = dict(os.environ)
    for k in ("POCL_CACHE_DIR", "CLNN_CACHE_DIR", "CLNN_CACHE_GUARD"):
        env.pop(k, None)
    env["XDG_CACHE_HOME"] = str(cache)
    env["CLNN_TUNING_DB"] = str(cache / "no-tuning.json")
    env["CLNN_DEVICE"] = "cpu"
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"child died with {r.returncode}:\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["err"] <= rtol(np.float32, 301), out
    return out


def _cpu_device_present() -> bool:
    return any(d.type == "CPU" and "pocl" in d.platform_vendor.lower() for d in clnn.devices())


needs_pocl = pytest.mark.skipif(not _cpu_device_present(),
                                reason="the compile-cache cases drive PoCL's CPU device")


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache folder filled by one clean run (copied by each case)."""
    d = tmp_path_factory.mktemp("warm")
    first = _run_child(d)
    assert all(not r for r in first["removed"].values())
    return d


def _damage(root: Path, pattern: str, mode: str, seed: int = 0) -> int:
    rnd = random.Random(seed)
    hit = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or not p.name.endswith(pattern):
            continue
        data = p.read_bytes()
        if mode == "zero":
            data = b""
        elif mode == "random":
            data = bytes(rnd.randrange(256) for _ in range(max(64, len(data))))
        elif mode == "flip":
            b = bytearray(data)
            for _ in range(max(1, len(b) // 100)):
                i = rnd.randrange(len(b))
                b[i] ^= 0xFF
            data = bytes(b)
        elif mode == "truncate":
            data = data[: len(data) // 2]
        elif mode == "delete":
            p.unlink()
            hit += 1
            continue
        p.write_bytes(data)
        hit += 1
    return hit


# (file, how): the default run tries three; the slow run every other combination
FAST_CASES = [(".so", "flip"), ("program.bc", "zero"), ("clnn-manifest.json", "random")]
ALL_CASES = [(f, m) for f in (".so", "program.bc", "clnn-manifest.json")
             for m in ("zero", "random", "flip", "truncate") if (f, m) not in FAST_CASES] + [
    ("clnn-manifest.json", "delete")]


def _corrupt_case(warm: Path, tmp: Path, pattern: str, mode: str) -> dict:
    cache = tmp / "cache"
    shutil.copytree(warm, cache)
    assert _damage(cache / "clnn" / "pocl-kcache", pattern, mode) >= 1
    out = _run_child(cache)
    assert out["removed"]["pocl-kcache"], "the damage went unnoticed"
    again = _run_child(cache)  # the rebuilt entries are trusted next time
    assert not again["removed"]["pocl-kcache"], again
    return out


@needs_pocl
@pytest.mark.parametrize("pattern,mode", FAST_CASES, ids=[f"{p}-{m}" for p, m in FAST_CASES])
def test_damaged_pocl_cache_is_rebuilt(warm_cache, tmp_path, pattern, mode):
    _corrupt_case(warm_cache, tmp_path, pattern, mode)


@needs_pocl
@pytest.mark.slow
@pytest.mark.parametrize("pattern,mode", ALL_CASES, ids=[f"{p}-{m}" for p, m in ALL_CASES])
def test_damaged_pocl_cache_is_rebuilt_all(warm_cache, tmp_path, pattern, mode):
    _corrupt_case(warm_cache, tmp_path, pattern, mode)


@needs_pocl
def test_unknown_file_in_cache_is_not_trusted(warm_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache)
    planted = cache / "clnn" / "pocl-kcache" / "ZZ" / "PLANTED" / "program.bc"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"BC\xc0\xde" + bytes(100))
    out = _run_child(cache)
    assert out["removed"]["pocl-kcache"] == ["ZZ/PLANTED"]
    assert not planted.exists()


@needs_pocl
def test_clean_cache_is_reused_not_rebuilt(warm_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache, copy_function=shutil.copy2)
    files = {p: p.stat().st_mtime_ns for p in (cache / "clnn" / "pocl-kcache").rglob("*.so")}
    assert files
    out = _run_child(cache)
    assert not any(out["removed"].values())
    assert all(p.exists() and p.stat().st_mtime_ns == t for p, t in files.items())


@pytest.fixture(scope="module")
def warm_pyopencl_cache(tmp_path_factory):
    """A cache folder filled by one clean run with pyopencl's binary cache in use."""
    d = tmp_path_factory.mktemp("warm-pyopencl")
    _run_child(d, "pyopencl-cache")
    return d


@needs_pocl
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_damaged_pyopencl_binary_cache_is_rebuilt(warm_pyopencl_cache, tmp_path, mode):
    """pyopencl's own binary cache (used for drivers without a cache of their own, forced
    here on PoCL) gets the same treatment."""
    cache = tmp_path / "cache"
    shutil.copytree(warm_pyopencl_cache, cache)
    n = _damage(cache / "clnn" / "pyopencl", "binary", mode)
    assert n >= 1
    out = _run_child(cache, "pyopencl-cache")
    assert out["removed"]["pyopencl"]


def test_cache_guard_in_process(tmp_path):
    """The manifest logic itself: a good file passes, a changed one is removed with its
    entry, a damaged manifest trusts nothing, an unwritable folder is not an error."""
    root = tmp_path / "kc"

    def verify():
        g = cacheguard.Guard(root, depth=2)
        try:
            return g.verify()
        finally:
            g.close()  # as if the process ended

    g = cacheguard.Guard(root, depth=2)
    assert g.verify() == []
    (root / "AA" / "ONE").mkdir(parents=True)
    (root / "AA" / "ONE" / "program.bc").write_bytes(b"x" * 100)
    (root / "AA" / "ONE" / "last_accessed").write_bytes(b"")
    g.record()
    g.close()
    assert verify() == []
    (root / "AA" / "TWO").mkdir()
    (root / "AA" / "TWO" / "program.bc").write_bytes(b"y")
    (root / "AA" / "ONE" / "program.bc").write_bytes(b"z" * 100)  # same size, new content
    assert verify() == ["AA/ONE", "AA/TWO"]
    assert not (root / "AA" / "ONE").exists()
    (root / "AA" / "THREE").mkdir()
    (root / "AA" / "THREE" / "k.so").write_bytes(b"so")
    (root / cacheguard.MANIFEST).write_text("garbage")
    assert verify() == ["AA/THREE"]
    ro = cacheguard.Guard(Path("/proc/clnn-cannot-write-here"), depth=2)
    assert ro.verify() == []
    ro.record()


def test_cache_guard_spares_fresh_files_of_a_live_process(tmp_path):
    """While another process uses the folder, an unknown file younger than the grace period
    may be its compile in progress: it is left alone (an old unknown one is not)."""
    root = tmp_path / "kc"
    other = cacheguard.Guard(root, depth=2)
    other.verify()  # "another process", alive: holds its share of the folder
    for name in ("FRESH", "STALE"):
        (root / "BB" / name).mkdir(parents=True)
        (root / "BB" / name / "program.bc").write_bytes(b"?")
    old = os.stat(root).st_mtime - 2 * cacheguard.GRACE_S
    os.utime(root / "BB" / "STALE" / "program.bc", (old, old))
    me = cacheguard.Guard(root, depth=2)
    assert me.verify() == ["BB/STALE"]
    assert (root / "BB" / "FRESH" / "program.bc").exists()
    me.close()
    other.close()
    alone = cacheguard.Guard(root, depth=2)
    assert alone.verify() == ["BB/FRESH"]  # nobody else: unknown means untrusted
    alone.close()
