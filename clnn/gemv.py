"""gemv: ``y := alpha*op(A) x + beta*y`` -- checks first, then one (or two) kernel launches.

Like every clnn operation it takes ``out=`` (written in place, returned, nothing allocated)
or allocates its result on the operands' runtime when ``out`` is None.

How a call runs (see ``kernels/gemv.cl.mako`` for the kernels):

* ``a.layout == "row"`` (rows contiguous: a row-major matrix, or ``w.T`` of a col-major one)
  runs ``gemv_row``, dot products of row blocks with x; ``"col"`` runs ``gemv_col``, sums of
  scaled columns. When there are too few rows to keep the device busy the columns are split
  across work-items, which write partial sums to the runtime's scratch buffer, and ``gemv_sum``
  adds them up (with alpha and beta) in a second launch.
* The tunables come from :mod:`clnn.tuning` (tuning database, then the shipped PoCL
  measurements and the defaults derived from device limits of :mod:`clnn.gemv_tunables`) per
  layout, dtype and size class (:func:`size_class`).
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
import weakref
from typing import Any, Optional, Tuple

import numpy as np
import pyopencl as cl

from . import checks, tuning
from .array import Matrix, Vector
from .errors import ReleasedError
from .gemv_tunables import SIZE_CLASSES, size_class
from .launch import Plan, real_type

__all__ = ["mv", "gemv", "size_class", "SIZE_CLASSES"]

_I = np.int32

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
        # A, x, y, then (alpha, beta) and the 16 packed ints as bytes (see enqueue), declared
        # with structured dtypes: pyopencl then hands the bytes straight to clSetKernelArg
        # (an undeclared bytes argument took its generic path, ~10 us per argument)
        types = [None, None, None, _REAL2[dtype.char], _INT16]
        c.ab = "2" + dtype.char  # struct format of (alpha, beta): "2f" or "2d"
        if rp["ACC"] == 2:
            types += [None, None]  # W (partials), ctr (counters)
            c.ctr = _counters(rt)
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


def _counters(rt) -> cl.Buffer:
    """ACC=2's two work counters, one pair per runtime for every ACC=2 call: a zeroed
    2-element float32 vector of the runtime (its bytes are the kernel's int32 {0, 0}; it
    counts in the memory accounts and is released with the runtime). Each launch leaves the
    counters at {0, 0}, and the in-order queue runs the launches one after another, as the
    kernel requires."""
    return rt.memo(("gemv-ctr",), lambda: rt.vector(np.zeros(2, np.float32)))._buf


def _cache(rt) -> dict:
    """gemv's launch calls on the runtime, by shape and tuning generation."""
    return rt.memo(("gemv",), dict)


def _shape(a: Matrix, x: Vector, out: Vector) -> tuple:
    """What a launch depends on besides the tunables: (layout, dtype, m, n, alignment of the
    offsets and ld in elements mod 16, A packed, unit x stride, unit out stride)."""
    layout = a.layout
    al = (a.offset | a.ld | (x.offset if layout == "row" else 0)) & 15
    packed = a.ld == (a.n if layout == "row" else a.m)
    return layout, a.dtype, a.m, a.n, al, x.stride == 1, out.stride == 1, packed


def _call_for(rt, a: Matrix, x: Vector, out: Vector) -> _Call:
    shape = _shape(a, x, out)
    key = shape + (tuning._generation[0],)
    cache = _cache(rt)
    c = cache.get(key)
    if c is None:
        if len(cache) > 256:  # many shapes seen: start over rather than grow forever
            cache.clear()
        c = _build_call(rt, *shape)
        cache[key] = c
    return c


def forced_call(rt, a: Matrix, x: Vector, out: Vector, params: dict) -> _Call:
    """The launch of ``mv(a, x, out=out)`` built with exactly the tunables ``params`` (not
    the looked-up ones, and not cached): ``clnn tune gemv`` times candidates with it and
    :func:`enqueue`. Raises what the build raises (``BuildError``, ``RenderError``,
    ``KernelLimitError``) for a set that cannot run."""
    return _build_call(rt, *_shape(a, x, out), forced=params)


def _workspace(rt, dtype: np.dtype, nelem: int) -> cl.Buffer:
    """The partial sums' buffer (the runtime's scratch: take ``rt._lock`` first and hold it
    until the launches that use it are enqueued)."""
    return rt.scratch("gemv", nelem, dtype)._buf


_P16 = struct.Struct("16i").pack
_INT16 = np.dtype([(f"s{i:x}", np.int32) for i in range(16)])
_REAL2 = {"f": np.dtype([("x", np.float32), ("y", np.float32)]),
          "d": np.dtype([("x", np.float64), ("y", np.float64)])}
_pack = struct.pack


def enqueue(rt, c: _Call, a: Matrix, x: Vector, out: Vector, alpha: float,
            beta: float) -> tuple:
    """Launch ``c`` for these (checked) operands; returns the argument tuple of the main
    kernel."""
    if not c.split:
        args = (a._owner._buf, x._owner._buf, out._owner._buf, _pack(c.ab, alpha, beta),
                _P16(a.m, a.n, a.offset, a.ld, x.offset, x.stride, out.offset, out.stride,
                     c.bpg, c.cps, 0, 0, 0, 0, 0, 0))
        if c.ctr is None:
            c.main.launch(c.gsize, c.lsize, args)
            return args
        with rt._lock:  # ACC=2: plus the partial sums (scratch) and the counters
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


_MEMO = ("gemv-memo",)  # rt.memo key of {id(out): _Memo}


def _remember(rt, a, x, out, c: _Call, alpha: float, beta: float, args: tuple) -> None:
    if c.split or c.ctr is not None:
        # two launches, or the runtime's scratch among the arguments (which a later call may
        # grow away): such calls take the general path every time
        return
    memo = rt.memo(_MEMO, dict)
    if len(memo) > 256:
        memo.clear()
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
    e = rt.memo(_MEMO, dict).get(id(out))
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
        e = rt.memo(_MEMO, dict).get(id(out))
    except (AttributeError, TypeError, ReleasedError):
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
    args = enqueue(rt, c, a, x, out, alpha, beta)
    _remember(rt, a, x, out, c, alpha, beta, args)
    return out


gemv = mv
