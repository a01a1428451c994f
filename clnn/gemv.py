"""gemv: ``y := alpha*op(A) x + beta*y`` -- checks first, then one (or two) kernel launches.

Like every clnn operation it takes ``out=`` (written in place, returned, nothing allocated)
or allocates its result on the operands' runtime when ``out`` is None.

How a call runs (see ``kernels/gemv.cl.mako`` for the kernels):

* ``a.layout == "row"`` (rows contiguous: a row-major matrix, or ``w.T`` of a col-major one)
  runs ``gemv_row``, dot products of row blocks with x; ``"col"`` runs ``gemv_col``, sums of
  scaled columns. When there are too few rows to keep the device busy the columns are split
  across work-items, which write partial sums to a per-runtime workspace, and ``gemv_sum``
  adds them up (with alpha and beta) in a second launch.
* The tunables come from :mod:`clnn.tuning` (tuning database, shipped PoCL measurements,
  device limits) per layout, dtype and size class (:func:`size_class`).
* Everything that depends only on (layout, dtype, shape, alignment, unit strides) -- kernel
  objects, launch geometry, split -- is computed once and cached on the runtime, so a repeated
  call costs its argument checks, one dict lookup and the enqueue (``set_args`` is skipped when
  the arguments did not change).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     y = rt.vector([10, 10])
    ...     print(clnn.mv(a, rt.vector([1, 1]), out=y, alpha=2, beta=1).to_numpy())
    [16. 24.]
"""

from __future__ import annotations

import struct
import time
import weakref
from typing import Any, Iterator, Optional, Tuple

import numpy as np
import pyopencl as cl

from . import checks, tuning
from .array import Matrix, Vector
from .launch import Plan, real_type

__all__ = ["mv", "gemv", "size_class", "SIZE_CLASSES"]

_I = np.int32
_NP = {"float": np.float32, "double": np.float64}

# ---- tunables -----------------------------------------------------------------------------
SIZE_CLASSES = ("small", "large", "tall", "wide")
"""``small``: at most 65536 elements (launch-bound); ``wide``: fewer than 64 rows and more
columns than rows; ``tall``: fewer than 64 columns, more rows than columns; else ``large``."""

def size_class(m: int, n: int) -> str:
    """The size class of an ``m x n`` gemv (as the operation sees ``A``), for tuning."""
    if m * n <= 65536:
        return "small"
    if m < 64 and n > m:
        return "wide"
    if n < 64 and m >= n:
        return "tall"
    return "large"


def gemv_defaults(device, variant: str, dtype: str, size_class: str = tuning.ANY) -> dict:
    """Tunables derived from device limits: CPUs get one work-item per block of rows (or of
    columns) with wide vector loads; GPUs get work-groups of many work-items reading
    neighbouring addresses."""
    wide = 16 if dtype == "float" else 8
    cu = max(1, device.compute_units)
    if device.type == "CPU":
        if variant == "row":
            return {"WGS": 1, "RPT": 4, "VW": wide, "NG": 8 * cu, "KMIN": 1024, "AL": 0,
                    "NVW": wide // 2, "SMIN": 1 << 18}
        return {"WGS": 1, "RPT": 1, "VW": wide // 2, "ACC": 1, "CU": 8, "MB": 4096,
                "NG": 8 * cu, "KMIN": 256, "AL": 0, "NVW": wide // 2, "SMIN": 1 << 18,
                "PAN": 32}
    wgs = 1
    while wgs * 2 <= min(128, device.max_work_group_size):
        wgs *= 2
    if variant == "row":
        return {"WGS": wgs, "RPT": 1, "VW": 4 if dtype == "float" else 2, "NG": 64 * cu,
                "KMIN": 4096, "AL": 1, "NVW": 4, "SMIN": 1 << 16}
    return {"WGS": wgs, "RPT": 1, "VW": 1, "ACC": 0, "CU": 1, "MB": 1, "NG": 256 * cu,
            "KMIN": 1024, "AL": 1, "NVW": 4, "SMIN": 1 << 16, "PAN": 32}


def _validate(device, variant: str, dtype: str, p: dict) -> None:
    for k in ("WGS", "VW", "NVW"):
        v = p.get(k, 1)
        if v & (v - 1):
            raise ValueError(f"{k}={v} is not a power of two")
    size = 4 if dtype == "float" else 8
    if max(p.get("VW", 1), p.get("NVW", 1)) * size > 64:
        # wider than 512 bits: beyond any CPU's registers, and PoCL mishandles such vectors
        raise ValueError("VW or NVW wider than 64 bytes")
    if p.get("WGS", 1) > device.max_work_group_size:
        raise ValueError(f"WGS={p['WGS']} exceeds the device's {device.max_work_group_size}")
    if p.get("AL", 0) not in (0, 1):
        raise ValueError(f"AL={p['AL']} is not 0 or 1")
    if variant == "col" and p.get("ACC", 0) not in (0, 1, 2):
        raise ValueError(f"ACC={p['ACC']} is not 0, 1 or 2")
    if variant == "col" and p.get("ACC") in (1, 2) and p.get("WGS", 1) != 1:
        raise ValueError(f"ACC={p['ACC']} needs WGS=1")
    if variant == "col" and p.get("ACC") == 2 and device.type != "CPU":
        # the last-group pattern relies on a CPU's coherent caches between work-groups
        raise ValueError("ACC=2 is for CPU devices")
    if p.get("PAN", 1) < 1:
        raise ValueError(f"PAN={p['PAN']} is not positive")
    if p.get("RPT", 1) > 16 or p.get("CU", 1) > 8:
        raise ValueError("RPT > 16 or CU > 8 (register pressure)")


tuning.register_defaults("gemv", gemv_defaults, _validate, flags=("ACC", "AL"))

# Shipped measurements: the winners of ``clnn tune gemv`` on PoCL 3.0 (pthread device, AMD
# EPYC, 2 cores, AVX2 code), as differences from the derived CPU defaults, and what the
# side-by-side runs of ``clnn bench gemv`` showed for the large class: PoCL hands a launch of
# at most 128 work-groups per thread out in one chunk per thread, so a thread that starts late
# (an idle core waking up, ~0.1-1 ms on a shared VM) delays the whole launch. The large row
# class therefore uses 512 one-block work-groups (PoCL then deals chunks of 32 as threads ask)
# and 8 rows x 8 lanes (16 accumulators of 8 lanes spill on AVX2); the large col class uses
# ACC=2, two persistent work-groups taking 32-column panels from a counter.
_POCL = "The pocl project|CPU"
tuning.register_builtin("gemv", {_POCL: {
    "row/float/small": {"RPT": 2, "VW": 8, "NG": 32},
    "row/float/large": {"RPT": 8, "VW": 8, "NG": 512},
    "row/float/tall": {"VW": 8, "NG": 8},
    "row/float/wide": {"RPT": 8, "VW": 8, "NG": 8},
    "col/float/small": {"MB": 16384},
    "col/float/large": {"ACC": 2, "VW": 16, "NG": 2, "PAN": 32},
    "row/double/small": {"KMIN": 4096},
    "row/double/large": {"RPT": 8, "VW": 4, "NG": 512},
    "row/double/tall": {"RPT": 8, "NG": 8},
    "row/double/wide": {"RPT": 8, "VW": 4, "NG": 32},
    "col/double/small": {"CU": 2, "MB": 16384},
    "col/double/large": {"ACC": 2, "VW": 8, "NG": 2, "PAN": 32},
    "col/double/tall": {"VW": 8, "MB": 16384},
    "col/double/wide": {"VW": 8, "MB": 1024},
}})

NARROW_MAX = 8
"""Up to this many columns ("row") or rows ("col") a gemv uses the narrow kernels, which
unroll the small dimension at compile time (one kernel build per small size)."""


# ---- plans --------------------------------------------------------------------------------
class _Call:
    """Everything one (layout, dtype, shape, alignment, strides) needs to launch."""

    __slots__ = ("main", "gsize", "lsize", "bpg", "cps", "split", "sum", "sgsize", "slsize",
                 "chunk", "params", "nsplit", "ctr", "ab")

    def __init__(self):
        self.sum = None
        self.nsplit = 1
        self.ctr = None  # ACC=2: the work counters {next unit, groups done}


def _div(a: int, b: int) -> int:
    return -(-a // b)


def _splits(n: int, want: int, kmin: int, vw: int) -> tuple:
    """(columns per split, number of splits): about ``want`` splits of >= ``kmin`` columns,
    each a multiple of ``vw``."""
    s = max(1, min(want, n // max(1, kmin)))
    cps = _div(_div(n, s), vw) * vw
    return cps, _div(n, cps)


def _geometry(layout: str, m: int, n: int, p: dict, incy1: bool, narrow: int) -> tuple:
    """(gsize, lsize, bpg, cps, nsplit, split) of the main launch. Columns are split (and a
    second launch adds the partial sums) only for problems of at least SMIN elements: below
    that, the second launch costs more than the parallelism gains."""
    vw, wgs, ng, kmin = p["VW"], p["WGS"], max(1, p["NG"]), max(1, p["KMIN"])
    may_split = m * n >= p["SMIN"]
    if narrow and layout == "row":
        # one work-item per SMIN elements at most: back-to-back small launches on PoCL ran
        # 10007x3 in 8.7 us per call with one work-group and 12 us with 32 (same kernel)
        nvw = p["NVW"]
        ng = max(1, min(ng, m * n // max(1, p["SMIN"])))
        bpg = _div(_div(m, ng), nvw) * nvw
        return (_div(m, bpg), 1), (1, 1), bpg, n, 1, False
    if narrow:
        cps, s = _splits(n, ng if may_split else 1, kmin, p["NVW"])
        return (1, s), (1, 1), 0, cps, s, s > 1
    if layout == "row":
        nblk = _div(m, p["RPT"])
        cps, s = n, 1
        if may_split and nblk < ng and n >= 2 * kmin:
            cps, s = _splits(n, _div(ng, nblk), kmin, vw)
        groups = max(1, min(nblk, _div(ng, s)))
        bpg = _div(nblk, groups)
        return (_div(nblk, bpg) * wgs, s), (wgs, 1), bpg, cps, s, s > 1
    if p["ACC"] == 2:
        # units of mb rows x PAN columns taken from a counter by NG persistent work-groups
        nrb = _div(m, max(vw, p["MB"]))
        mb = _div(_div(m, nrb), vw) * vw
        nunits = _div(m, mb) * _div(n, max(1, p["PAN"]))
        return (max(1, min(ng, nunits)), 1), (1, 1), mb, max(1, p["PAN"]), 1, False
    if p["ACC"] == 1:
        nrb = _div(m, max(vw, p["MB"]))
        mb = _div(_div(m, nrb), vw) * vw
        nrb = _div(m, mb)
        cps, s = n, 1
        if may_split and nrb < ng and n >= 2 * kmin:
            cps, s = _splits(n, _div(ng, nrb), kmin, 1)
        return (nrb, s), (1, 1), mb, cps, s, s > 1 or not incy1
    nwi = _div(m, vw * p["RPT"])
    cps, s = n, 1
    if may_split and nwi < ng and n >= 2 * kmin:
        cps, s = _splits(n, _div(ng, nwi), kmin, 1)
    return (_div(nwi, wgs) * wgs, s), (wgs, 1), 0, cps, s, s > 1


def _build_call(rt, layout: str, dtype: np.dtype, m: int, n: int, al: int, xinc1: bool,
                incy1: bool, packed: bool, forced: Optional[dict] = None) -> _Call:
    """Build (or fetch from the program cache) the kernels of one call shape."""
    rtype = real_type(dtype)
    sc = size_class(m, n)
    small = n if layout == "row" else m
    narrow = small if small <= NARROW_MAX else 0

    def make(p: dict) -> _Call:
        if layout == "row" and not narrow and m <= NARROW_MAX and p["WGS"] == 1:
            # a few long rows: all of them in one block, so x is streamed once (CPUs)
            p = dict(p, RPT=m)
        c = _Call()
        c.params = p
        gs, ls, c.bpg, c.cps, nsplit, c.split = _geometry(layout, m, n, p, incy1, narrow)
        c.gsize, c.lsize = gs, ls
        vw = p["NVW"] if narrow else p["VW"]
        aligned = (p["AL"] == 1 and al % vw == 0
                   and (layout == "col" or (xinc1 and c.cps % vw == 0)))
        # every render parameter is given (the template is strict); the ones a variant does
        # not use are fixed so that they do not split the kernel cache
        rp = {"WGS": p["WGS"], "RPT": p["RPT"], "VW": vw, "ACC": 0, "CU": 1, "NARROW": 0,
              "LDK": False}
        if narrow:
            rp.update(WGS=1, RPT=1, NARROW=narrow, LDK=packed, ALIGNED=False)
        else:
            rp["ALIGNED"] = aligned
            if layout == "col":
                rp["ACC"] = p["ACC"]
                if p["ACC"] in (1, 2):
                    rp.update(WGS=1, RPT=1, CU=p["CU"])
        k = rt.programs.kernel("gemv.cl.mako", f"gemv_{layout}", dtype=rtype, layout=layout,
                               SPLIT=c.split, XINC1=xinc1, **rp)
        d = dtype.type
        # A, x, y, then (alpha, beta) and the 16 packed ints as bytes (see _enqueue), declared
        # with structured dtypes: pyopencl then hands the bytes straight to clSetKernelArg
        # (an undeclared bytes argument took its generic path, ~10 us per argument)
        types = [None, None, None, _REAL2[dtype.char], _INT16]
        c.ab = "2" + dtype.char  # struct format of (alpha, beta): "2f" or "2d"
        if rp["ACC"] == 2:
            types += [None, None]  # W (partials), ctr (counters)
            c.ctr = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                              hostbuf=np.zeros(2, np.int32))
        # the launch's work-group size, checked against the built kernel's limit (a
        # KernelLimitError makes build_with_fallback lower WGS or fall back)
        c.main = Plan(rt, k, types, p, wgs=c.lsize[0] * c.lsize[1])
        if c.split:
            ks = rt.programs.kernel("gemv.cl.mako", "gemv_sum", dtype=rtype, layout=layout,
                                    SPLIT=c.split, XINC1=xinc1, **rp)
            if p["WGS"] > 1:  # GPUs: one work-item per row, work-groups of WGS
                c.chunk, c.slsize = 1, (p["WGS"],)
                c.sgsize = (_div(m, p["WGS"]) * p["WGS"],)
            else:  # CPUs: a few work-items, each a block of rows
                groups = max(1, min(_div(m, 256), max(1, p["NG"])))
                c.chunk, c.slsize = _div(m, groups), (1,)
                c.sgsize = (_div(m, c.chunk),)
            c.sum = Plan(rt, ks, [_I, _I, _I, d, None, d, None, _I, _I], p, wgs=c.slsize[0])
            c.nsplit = nsplit
        return c

    if forced is not None:
        return make(dict(forced))
    call, _ = tuning.build_with_fallback(rt.device, "gemv", layout, rtype, sc, make)
    return call


def _cache(rt) -> dict:
    """gemv's own cache on the runtime: launch calls by shape, workspace, memo."""
    d = rt._plans.get("gemv")
    if d is None:
        d = rt._plans["gemv"] = {}
    return d


def _call_for(rt, a: Matrix, x: Vector, out: Vector) -> _Call:
    layout = a.layout
    al = (a.offset | a.ld | (x.offset if layout == "row" else 0)) & 15
    packed = a.ld == (a.n if layout == "row" else a.m)
    key = (layout, a.dtype.char, a.m, a.n, al, packed, x.stride == 1, out.stride == 1,
           tuning._generation[0])
    cache = _cache(rt)
    c = cache.get(key)
    if c is None:
        if len(cache) > 256:  # many shapes seen: start over rather than grow forever
            cache.clear()
        c = _build_call(rt, layout, a.dtype, a.m, a.n, al, x.stride == 1, out.stride == 1,
                        packed)
        cache[key] = c
    return c


def _workspace(rt, dtype: np.dtype, nelem: int) -> cl.Buffer:
    cache = _cache(rt)
    key = ("workspace", dtype.char)
    ws = cache.get(key)
    if ws is None or ws[1] < nelem:
        size = max(nelem, 1 << 14)
        buf = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, size * dtype.itemsize)
        ws = (buf, size)
        cache[key] = ws
    return ws[0]


_P16 = struct.Struct("16i").pack
_INT16 = np.dtype([(f"s{i:x}", np.int32) for i in range(16)])
_REAL2 = {"f": np.dtype([("x", np.float32), ("y", np.float32)]),
          "d": np.dtype([("x", np.float64), ("y", np.float64)])}
_pack = struct.pack


def _enqueue(rt, c: _Call, a: Matrix, x: Vector, out: Vector, alpha: float,
             beta: float) -> tuple:
    """Launch ``c`` for these operands; returns the argument tuple of the main kernel."""
    if not c.split:
        args = (a._owner._buf, x._owner._buf, out._owner._buf, _pack(c.ab, alpha, beta),
                _P16(a.m, a.n, a.offset, a.ld, x.offset, x.stride, out.offset, out.stride,
                     c.bpg, c.cps, 0, 0, 0, 0, 0, 0))
        if c.ctr is None:
            c.main.launch(c.gsize, c.lsize, args)
            return args
        with rt._lock:  # ACC=2: plus the partial sums (shared workspace) and the counters
            args += (_workspace(rt, a.dtype, c.gsize[0] * a.m), c.ctr)
            c.main.launch(c.gsize, c.lsize, args)
        return args
    m = a.m
    with rt._lock:
        ws = _workspace(rt, a.dtype, c.nsplit * m)
        args = (a._owner._buf, x._owner._buf, ws, _pack(c.ab, 1.0, 0.0),
                _P16(m, a.n, a.offset, a.ld, x.offset, x.stride, 0, 1, c.bpg, c.cps,
                     0, 0, 0, 0, 0, 0))
        c.main.launch(c.gsize, c.lsize, args)
        c.sum.launch(c.sgsize, c.slsize, (m, c.nsplit, c.chunk, alpha, ws, beta, out._owner._buf,
                                      out.offset, out.stride))
    return args


class _Memo:
    """The last call that wrote one ``out`` vector: a repeat with the same (a, x, out, alpha,
    beta) skips shape checks, plan lookup and argument packing."""

    __slots__ = ("a", "x", "out", "plan", "gsize", "lsize", "alpha", "beta", "args", "gen",
                 "kernel", "queue", "lock")


def _remember(rt, a, x, out, c: _Call, alpha: float, beta: float, args: tuple) -> None:
    if c.split:
        return
    memo = rt._plans.get("gemv-memo")
    if memo is None or len(memo) > 256:
        memo = rt._plans["gemv-memo"] = {}
    e = _Memo()
    e.a, e.x, e.out = weakref.ref(a), weakref.ref(x), weakref.ref(out)
    e.plan, e.gsize, e.lsize = c.main, c.gsize, c.lsize
    e.alpha, e.beta, e.args = alpha, beta, args
    e.gen = tuning._generation[0]
    e.kernel, e.queue, e.lock = c.main.kernel, rt._queue, rt._lock
    memo[id(out)] = e


def _memo_of(rt, out: Vector) -> Optional[_Memo]:
    """The remembered single-launch call that last wrote ``out`` (benchmarks read its kernel
    and arguments), or None."""
    e = rt._plans.get("gemv-memo", {}).get(id(out))
    return e if e is not None and e.out() is out else None


def _check(a: Any, x: Any, out: Any, alpha: Any, beta: Any) -> Tuple[float, float]:
    """The full argument checks (the slow path: raises the clnn error naming the problem)."""
    checks.need(a, Matrix, "mv", "a")
    checks.need(x, Vector, "mv", "x")
    if out is not None:
        checks.need(out, Vector, "mv", "out")
        checks.same_runtime("mv", a, x, out)
        checks.same_dtype("mv", a, x, out)
    else:
        checks.same_runtime("mv", a, x)
        checks.same_dtype("mv", a, x)
    if x.n != a.n:
        raise checks.ShapeError(f"mv: a has shape {a.shape} but x has length {x.n} "
                                f"(needs {a.n})")
    alpha = checks.scalar(alpha, "mv", "alpha")
    beta = checks.scalar(beta, "mv", "beta")
    if out is not None:
        if out.n != a.m:
            raise checks.ShapeError(f"mv: a has shape {a.shape} but out has length {out.n} "
                                    f"(needs {a.m})")
        checks.no_overlap("mv", out, a, x)
    return alpha, beta


def mv(a: Matrix, x: Vector, out: Optional[Vector] = None, alpha: float = 1.0,
       beta: float = 0.0) -> Vector:
    """``out := alpha * a @ x + beta * out`` (BLAS gemv); returns ``out``.

    ``a`` may be a transposed view (``w.T``) or any sub-matrix view, ``x`` and ``out`` any
    vector views. With ``beta == 0`` the old contents of ``out`` are never read. Without
    ``out`` a new vector is allocated on ``a``'s runtime (and ``beta`` has nothing to scale).
    Bad arguments raise a clnn error before anything is enqueued, so ``out`` is untouched.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     w = rt.matrix([[1, 2, 3], [4, 5, 6]])
        ...     print(clnn.mv(w.T, rt.vector([1, 1])).to_numpy())
        [5. 7. 9.]
    """
    # Fastest path: the same (a, x, out, alpha, beta) as a call already checked. The liveness
    # checks run under the runtime's lock, which every release takes, so nothing can be
    # released between them and the enqueue (the general path's Plan.launch re-checks the
    # buffers for the same reason).
    rt = getattr(a, "runtime", None)
    try:
        e = rt._plans["gemv-memo"][id(out)]
    except (AttributeError, KeyError, TypeError):
        e = None
    if (e is not None and e.out() is out and e.a() is a and e.x() is x
            and (type(alpha) is float or type(alpha) is int) and alpha == e.alpha
            and (type(beta) is float or type(beta) is int) and beta == e.beta
            and e.gen == tuning._generation[0]):
        with e.lock:
            if not (rt._released or a._released or a._owner._released or x._released
                    or x._owner._released or out._released or out._owner._released):
                p = e.plan
                if p.last is not e.args:
                    p.kernel.set_args(*e.args)
                    p.last = e.args
                cl.enqueue_nd_range_kernel(e.queue, e.kernel, e.gsize, e.lsize)
                return out
        # something was released: the checks below raise the precise error
    # Fast path: exact types, all alive, one runtime, one dtype, matching shapes, plain
    # numbers, no shared memory. Anything unusual goes through the full checks, which raise
    # the precise error (or accept, e.g. subclasses and numpy scalars).
    if (type(a) is Matrix and type(x) is Vector and (out is None or type(out) is Vector)
            and not rt._released and not a._owner._released and not a._released
            and not x._owner._released and not x._released and x.runtime is rt
            and x.dtype is a.dtype and x.n == a.n
            and (type(alpha) is float or type(alpha) is int)
            and (type(beta) is float or type(beta) is int)
            and (out is None or (not out._released and not out._owner._released
                                 and out.runtime is rt and out.dtype is a.dtype
                                 and out.n == a.m and out._owner is not a._owner
                                 and out._owner is not x._owner))):
        alpha = float(alpha)
        beta = float(beta)
    else:
        alpha, beta = _check(a, x, out, alpha, beta)
        rt = a.runtime
    if out is None:
        out = rt.vector(a.m, dtype=a.dtype)
        beta = 0.0
    c = _call_for(rt, a, x, out)
    args = _enqueue(rt, c, a, x, out, alpha, beta)
    _remember(rt, a, x, out, c, alpha, beta, args)
    return out


gemv = mv


# ---- tuning hooks (clnn tune gemv) ---------------------------------------------------------
_TUNE_SHAPES = {"small": (256, 256), "large": (4096, 4096), "tall": (262144, 16),
                "wide": (16, 262144)}
_QUICK_SHAPES = {"small": (128, 128), "large": (1024, 1024), "tall": (16384, 8),
                 "wide": (8, 16384)}
# the classes that hold narrow shapes (n <= NARROW_MAX for "row", m <= NARROW_MAX for "col")
# are also timed on one, so that NVW (the narrow kernels' vector width) is measured; a
# candidate's time is the sum of its class's problems
_NARROW_SHAPES = {("row", "small"): (10007, 3), ("row", "tall"): (262144, 3),
                  ("col", "small"): (3, 10007), ("col", "wide"): (3, 262144)}
_QUICK_NARROW_SHAPES = {("row", "small"): (4001, 3), ("row", "tall"): (16384, 3),
                        ("col", "small"): (3, 4001), ("col", "wide"): (3, 16384)}


def _candidates(device, dtype: str, quick: bool) -> Iterator[Tuple[str, str, dict]]:
    """Candidates of ``clnn tune gemv`` (see :mod:`clnn.tune` for the contract)."""
    wide = 16 if dtype == "float" else 8
    for sc in SIZE_CLASSES:
        for variant in ("row", "col"):
            base = gemv_defaults(device, variant, dtype, sc)
            if device.type == "CPU":
                if variant == "row":
                    # NG 256*cu: more work-groups than PoCL deals out in one chunk per
                    # thread, so a late thread takes less (see the shipped values above)
                    grid = [{"RPT": r, "VW": v, "NG": g} for r in (2, 4, 8)
                            for v in (wide // 2, wide) for g in (4 * device.compute_units,
                                                                   16 * device.compute_units,
                                                                   256 * device.compute_units)]
                    if sc in ("wide", "small"):
                        grid += [{"KMIN": k} for k in (256, 4096, 1 << 30)]
                        grid += [{"SMIN": k} for k in (1 << 14, 1 << 20)]
                else:
                    grid = [{"VW": v, "CU": u, "MB": mb} for v in (wide // 2, wide)
                            for u in (2, 4, 8) for mb in (1024, 4096, 16384)]
                    grid += [{"NG": g} for g in (2 * device.compute_units,
                                                 32 * device.compute_units)]
                    # persistent work-groups taking units from a counter
                    grid += [{"ACC": 2, "VW": v, "MB": mb, "NG": g, "PAN": pn}
                             for v in (wide // 2, wide) for mb in (1024, 4096)
                             for g in (device.compute_units, 2 * device.compute_units)
                             for pn in (16, 64)]
                    if sc in ("tall", "small"):
                        grid += [{"KMIN": k} for k in (64, 1024, 1 << 30)]
                        grid += [{"SMIN": k} for k in (1 << 14, 1 << 20)]
                if (variant, sc) in _NARROW_SHAPES:
                    grid += [{"NVW": v} for v in (wide // 4, wide // 2, wide)]
            else:
                wg = [w for w in (32, 64, 128, 256) if w <= device.max_work_group_size]
                if variant == "row":
                    grid = [{"WGS": w, "RPT": r, "VW": v} for w in wg for r in (1, 2, 4)
                            for v in (1, 2, 4)]
                else:
                    grid = [{"WGS": w, "RPT": r, "VW": v} for w in wg for r in (1, 2)
                            for v in (1, 2, 4)]
                grid += [{"KMIN": k} for k in (256, 4096, 1 << 30)]
                if (variant, sc) in _NARROW_SHAPES:
                    grid += [{"NVW": v} for v in (1, 2, 4)]
            if quick:
                grid = grid[:: max(1, len(grid) // 4)]
            for g in grid:
                p = dict(base)
                p.update(g)
                try:
                    _validate(device, variant, dtype, p)
                except ValueError:
                    continue
                yield variant, sc, p


def _bench_data(rt, variant: str, dtype: str, sc: str, quick: bool) -> list:
    """The problems of one tuning group, made once and kept on the runtime (released with it):
    per problem, the reference result and its scale, n, and device a, x and y -- the class's
    shape, plus a narrow one for the classes that hold narrow shapes."""
    cache = _cache(rt)
    key = ("tune-data", variant, dtype, sc, quick)
    got = cache.get(key)
    if got is None:
        for k in [k for k in cache if isinstance(k, tuple) and k[:1] == ("tune-data",)]:
            for prob in cache.pop(k):
                for arr in prob[2:]:
                    arr.release()  # one group at a time: large classes are big
        shapes = [(_QUICK_SHAPES if quick else _TUNE_SHAPES).get(sc, (1024, 1024))]
        narrow = (_QUICK_NARROW_SHAPES if quick else _NARROW_SHAPES).get((variant, sc))
        if narrow is not None:
            shapes.append(narrow)
        dt = np.dtype(_NP[dtype])
        rng = np.random.default_rng(0)
        got = []
        for m, n in shapes:
            A = rng.standard_normal((m, n)).astype(dt)
            xh = rng.standard_normal(n).astype(dt)
            ref = A.astype(np.float64) @ xh.astype(np.float64)
            scale = np.abs(A).astype(np.float64) @ np.abs(xh).astype(np.float64)
            # variant "col" is the layout the kernel sees: a col-major matrix
            got.append(((ref, scale), n, rt.matrix(A, layout=variant), rt.vector(xh),
                        rt.vector(m, dtype=dt)))
        cache[key] = got
    return got


def _bench(rt, variant: str, dtype: str, sc: str, p: dict, quick: bool = False) -> float:
    """Median seconds per call of mv with exactly ``p`` on the problems of size class ``sc``
    (back-to-back calls, one finish; summed over the class's problems), each checked once
    against numpy. The ``clnn tune`` hook."""
    from .bench.timing import interleaved

    q = rt.queue
    total = 0.0
    for (ref, scale), n, a, x, y in _bench_data(rt, variant, dtype, sc, quick):
        al = (a.offset | a.ld) & 15
        c = _build_call(rt, variant, a.dtype, a.m, a.n, al, True, True, True, forced=p)
        _enqueue(rt, c, a, x, y, 1.0, 0.0)
        got = y.to_numpy()
        tol = (1e-4 if dtype == "float" else 1e-12) * np.sqrt(n)
        if not np.all(np.abs(got - ref) <= tol * scale + 1e-30):
            raise AssertionError("wrong result")
        t0 = time.perf_counter()
        for _ in range(3):
            _enqueue(rt, c, a, x, y, 1.0, 0.0)
        q.finish()
        # back-to-back calls, one finish: small sizes measure the steady state, not latency
        batch = int(max(1, min(500, 2e-3 / max((time.perf_counter() - t0) / 3, 1e-7))))

        def run(c=c, a=a, x=x, y=y, batch=batch) -> None:
            for _ in range(batch):
                _enqueue(rt, c, a, x, y, 1.0, 0.0)
            q.finish()

        total += interleaved({"c": run}, repeat=5 if quick else 9, number={"c": 1})["c"] / batch
    return total


try:
    from .tune import register_tuner

    register_tuner("gemv", _candidates, _bench, module=__name__)
except ImportError:  # pragma: no cover
    pass
