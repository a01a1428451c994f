"""BLAS level 1 and the rank-1 update: ``axpy``, ``scal``, ``copy``, ``swap``, ``dot``, ``nrm2``,
``asum``, ``iamax`` and ``rk``.

Argument order follows BLAS (``alpha`` first): ``axpy(alpha, x, y)`` is ``y += alpha * x``,
``scal(alpha, x)`` is ``x *= alpha``, ``rk(alpha, x, y, a)`` is ``a += alpha * x y^T``. These
write in place by default; with ``out=`` the result goes to ``out`` and the operands are left
alone. Vectors may be strided views; ``axpy``, ``scal`` and ``copy`` take matrices (any layout
or view) too, and ``dot``, ``nrm2``, ``asum`` and ``swap`` take contiguous matrices (in storage
order).

The scalar results (``dot``, ``nrm2``, ``asum``, ``iamax``) are reduced in two stages on the
device -- compensated (Kahan) sums per work-item, a pairwise tree across them -- and returned
as a Python float (int for ``iamax``), which waits for the device. Pass ``out=`` a 1-element
:class:`clnn.Vector` (e.g. ``v[3:4]``) to keep the result on the device with no wait, for
instance a loss accumulated in a training loop; ``iamax`` then stores the index as a float
(exact below 2**24 in float32).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     x, y = rt.vector([3, 4]), rt.vector([1, 1])
    ...     _ = clnn.axpy(2, x, y)
    ...     print(y.to_numpy(), clnn.dot(x, y), clnn.nrm2(x), clnn.iamax(x))
    [7. 9.] 57.0 5.0 1
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import pyopencl as cl

from . import checks, transfer
from .array import Matrix, Vector
from .elementwise import _check_out, _map, _Op, launch_map
from .errors import ShapeError
from .launch import Plan, build_fitting, check_wgs, real_type, round_up
from .tuning import generation, register_defaults
from .tuning import params as tuned_params

__all__ = ["axpy", "scal", "copy", "swap", "dot", "nrm2", "asum", "iamax", "rk"]

_I = np.int32
AnyArray = Union[Vector, Matrix]


def blas1_defaults(device, variant: str, dtype: str) -> dict:
    """CPUs: one work-item per chunk (at least MINCHUNK elements, at most MAXG chunks) with
    NACC vector accumulators of VW lanes (at most 256 bits: see the template). GPUs: work-groups
    of WGS work-items reading neighbouring elements."""
    if device.type == "CPU":
        f = dtype == "float"
        return {"WGS": 1, "WGS2": 1, "VW": 8 if f else 4, "NACC": 2, "BLKV": 32,
                "MINCHUNK": 16384, "MAXG": 64}
    wgs = 1 << (min(256, device.max_work_group_size).bit_length() - 1)
    return {"WGS": wgs, "WGS2": wgs, "VW": 1, "NACC": 1, "BLKV": 4, "MINCHUNK": 4 * wgs,
            "MAXG": 512}


def _validate(device, variant: str, dtype: str, p: dict) -> None:
    for k in ("WGS", "WGS2"):
        if p[k] & (p[k] - 1):
            raise ValueError(f"{k}={p[k]} is not a power of two")
    if p["VW"] not in (1, 2, 4, 8, 16):
        raise ValueError(f"VW={p['VW']} is not 1, 2, 4, 8 or 16")
    if p["BLKV"] % p["NACC"]:
        raise ValueError(f"BLKV={p['BLKV']} is not a multiple of NACC={p['NACC']}")
    check_wgs(device, p, "WGS", "WGS2")


register_defaults("blas1", blas1_defaults, _validate)


# ---- buffers and plans ---------------------------------------------------------------------
class _Parts:
    """Per runtime, dtype and MAXG: the partials of stage 1 and the 1-element results read
    back, as vectors of the runtime (counted in its memory, released with it). They are this
    family's own, not the shared scratch: a reduction's two launches and its read-back run
    under the runtime's lock, so one set serves every call."""

    def __init__(self, rt, dtype: np.dtype, maxg: int):
        # the int32 partials and index live in float32 vectors (the kernels see int*)
        self._vectors = (rt.vector(2 * maxg, dtype=dtype), rt.vector(maxg, dtype=np.float32),
                         rt.vector(1, dtype=dtype), rt.vector(1, dtype=np.float32))
        self.part, self.parti, self.res, self.resi = (v._buf for v in self._vectors)
        self.host = np.empty(1, dtype)
        self.hosti = np.empty(1, np.int32)

    def release(self) -> None:
        for v in self._vectors:
            v.release()


def _params(rt, dtype: np.dtype) -> dict:
    return rt.memo(("blas1-params", dtype, generation()),
                   lambda: tuned_params(rt.device, "blas1", "reduce", real_type(dtype)))


def _parts(rt, dtype: np.dtype, maxg: int) -> _Parts:
    return rt.memo(("blas1-parts", dtype, maxg), lambda: _Parts(rt, dtype, maxg))


def _plans(rt, op: str, dtype: np.dtype, incx1: bool, incy1: bool, aligned: bool,
           p: dict) -> tuple:
    # reduce1 takes WGS, WGS2 from the plans
    return rt.memo(("blas1", op, dtype, incx1, incy1, aligned, generation()),
                   lambda: build_fitting(lambda q: _make_plans(rt, op, dtype, incx1, incy1,
                                                               aligned, q),
                                         p, "WGS", "WGS2"))


def _make_plans(rt, op: str, dtype: np.dtype, incx1: bool, incy1: bool, aligned: bool,
                p: dict) -> tuple:
    prg = rt.programs.program("blas1.cl.mako", dtype=real_type(dtype), op=op, INCX1=incx1,
                              INCY1=incy1, ALIGNED=aligned, VW=p["VW"], NACC=p["NACC"],
                              BLKV=p["BLKV"], WGS=p["WGS"], WGS2=p["WGS2"])
    if op == "swap":
        return (Plan(rt, cl.Kernel(prg, "blas1_swap"), [_I, _I, None, _I, _I, None, _I, _I], p,
                     wgs=1),)
    return (Plan(rt, cl.Kernel(prg, "blas1_partial"),
                 [_I, _I, None, _I, _I, None, _I, _I, None, None], p, wgs=p["WGS"]),
            Plan(rt, cl.Kernel(prg, "blas1_final"), [_I, None, None, None, _I, None], p,
                 wgs=p["WGS2"]))


def _flat(x, op: str, name: str) -> Vector:
    """A vector, or a contiguous matrix as the vector of its elements in storage order."""
    if isinstance(x, Matrix):
        x._live()
        if not x.contiguous:
            raise ShapeError(f"{op}: {name} is a non-contiguous matrix view "
                             f"({x._describe()}); pass its rows or columns as vectors")
        return x.as_vector()
    checks.need(x, Vector, op, name)
    return x


def _flat_pair(op: str, x, y) -> Tuple[Vector, Vector]:
    """``x`` and ``y`` as vectors (see :func:`_flat`) of one runtime, dtype and length."""
    x = _flat(x, op, "x")
    y = _flat(y, op, "y")
    checks.same_runtime(op, x, y)
    checks.same_dtype(op, x, y)
    if x.n != y.n:
        raise ShapeError(f"{op}: x has length {x.n} but y has length {y.n}")
    return x, y


def _check_out1(op: str, x: Vector, out) -> None:
    checks.need(out, Vector, op, "out")
    checks.same_runtime(op, x, out)
    checks.same_dtype(op, x, out)
    if out.n != 1:
        raise ShapeError(f"{op}: out must be a 1-element vector (e.g. v[i:i+1]), got length "
                         f"{out.n}")


def reduce1(op: str, x: Vector, y: Optional[Vector] = None, out: Optional[Vector] = None
            ) -> Union[float, int, Vector]:
    """Two-stage reduction ``op`` of the checked vector(s); a Python number, or ``out``."""
    rt = x.runtime
    dtype = x.dtype
    p = _params(rt, dtype)
    vw, step = p["VW"], p["VW"] * p["NACC"]
    n = x.n
    yy = x if y is None else y
    incx1, incy1 = x.stride == 1, yy.stride == 1
    aligned = vw > 1 and all(v.offset % vw == 0 for v, u in ((x, incx1), (yy, incy1)) if u)
    chunk = round_up(max(p["MINCHUNK"], -(-n // p["MAXG"])), step)
    groups = -(-n // chunk)
    stage1, stage2 = _plans(rt, op, dtype, incx1, incy1 if y is not None else True, aligned, p)
    s = _parts(rt, dtype, p["MAXG"])
    wgs, wgs2 = stage1.params["WGS"], stage2.params["WGS2"]
    with rt._lock:
        stage1.launch((groups * wgs,), (wgs,), (n, chunk, x._owner._buf, x.offset, x.stride,
                                                yy._owner._buf, yy.offset, yy.stride, s.part,
                                                s.parti))
        obuf, ooff = (s.res, 0) if out is None else (out._owner._buf, out.offset)
        stage2.launch((wgs2,), (wgs2,), (groups, s.part, s.parti, obuf, ooff, s.resi))
        if out is not None:
            return out
        if op == "iamax":
            transfer.read(rt.queue, s.hosti, s.resi)
            return int(s.hosti[0])
        transfer.read(rt.queue, s.host, s.res)
        return float(s.host[0])


def _scalar_op(op: str, x, out: Optional[Vector]) -> Union[float, int, Vector]:
    x = _flat(x, op, "x")
    if out is not None:
        _check_out1(op, x, out)
    return reduce1(op, x, None, out)


# ---- public ----------------------------------------------------------------------------------
def dot(x: AnyArray, y: AnyArray, out: Optional[Vector] = None) -> Union[float, Vector]:
    """``sum_i x[i] * y[i]`` (compensated); a float, or written to the 1-element ``out``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.dot(rt.vector([1, 2, 3]), rt.vector([4, 5, 6])))
        32.0
    """
    if isinstance(x, Matrix) and isinstance(y, Matrix) and x.layout != y.layout:
        raise ShapeError("dot: x and y are matrices of different layouts; elements pair in "
                         "storage order, so give both the same layout")
    if isinstance(x, Matrix) != isinstance(y, Matrix) or (
            isinstance(x, Matrix) and x.shape != y.shape):
        raise ShapeError(f"dot: x of shape {getattr(x, 'shape', None)} and y of shape "
                         f"{getattr(y, 'shape', None)} do not match")
    x, y = _flat_pair("dot", x, y)
    if out is not None:
        _check_out1("dot", x, out)
    return reduce1("dot", x, y, out)


def nrm2(x: AnyArray, out: Optional[Vector] = None) -> Union[float, Vector]:
    """The Euclidean norm ``sqrt(sum x[i]^2)``, scaled so that it neither overflows nor
    underflows (``nrm2([1e30, 1e30])`` in float32 is 1.41e30, not inf).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(f"{clnn.nrm2(rt.vector([3e30, 4e30])):.6g}")
        5e+30
    """
    return _scalar_op("nrm2", x, out)


def asum(x: AnyArray, out: Optional[Vector] = None) -> Union[float, Vector]:
    """``sum_i |x[i]|`` (compensated).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.asum(rt.vector([1, -2, 3])))
        6.0
    """
    return _scalar_op("asum", x, out)


def iamax(x: Vector, out: Optional[Vector] = None) -> Union[int, Vector]:
    """The index (0-based) of the first element of largest magnitude; NaNs are skipped. With
    ``out`` the index is stored there as a float.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.iamax(rt.vector([1, -7, 7, 3])))
        1
    """
    checks.need(x, Vector, "iamax", "x")
    if out is not None:
        _check_out1("iamax", x, out)
    return reduce1("iamax", x, None, out)


def axpy(alpha: float, x: AnyArray, y: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``y := alpha * x + y`` (or ``out := alpha * x + y``, leaving ``y`` alone); returns the
    array written. Vectors or matrices of one shape, any layouts and views.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     y = rt.vector([1, 1])
        ...     print(clnn.axpy(3, rt.vector([1, 2]), y).to_numpy(), y.to_numpy())
        [4. 7.] [4. 7.]
    """
    alpha = checks.scalar(alpha, "axpy", "alpha")
    return _map("axpy", "alpha * {a} + {b}", (x, y), y if out is None else out, alpha,
                inplace=(y,))


def scal(alpha: float, x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``x := alpha * x`` (or ``out := alpha * x``); returns the array written.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.scal(0.5, rt.vector([2, 4])).to_numpy())
        [1. 2.]
    """
    alpha = checks.scalar(alpha, "scal", "alpha")
    return _map("scal", "alpha * {a}", (x,), x if out is None else out, alpha)


def copy(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := x``; a new array of ``x``'s shape (and layout) when ``out`` is None. Copying
    between layouts (``copy(a, out=b.T)``) transposes in memory.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     v = rt.vector([1, 2, 3, 4])
        ...     print(clnn.copy(v[::2]).to_numpy())
        [1. 3.]
    """
    return _map("copy", "{a}", (x,), out, inplace=())


def swap(x: AnyArray, y: AnyArray) -> None:
    """Exchange the contents of ``x`` and ``y`` (vectors of one length, or contiguous matrices
    of one shape and layout); they must not overlap.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     x, y = rt.vector([1, 2]), rt.vector([3, 4])
        ...     clnn.swap(x, y)
        ...     print(x.to_numpy(), y.to_numpy())
        [3. 4.] [1. 2.]
    """
    if isinstance(x, Matrix) or isinstance(y, Matrix):
        if not (isinstance(x, Matrix) and isinstance(y, Matrix) and x.shape == y.shape
                and x.layout == y.layout):
            raise ShapeError("swap: needs two vectors, or two matrices of one shape and layout")
    x, y = _flat_pair("swap", x, y)
    if checks.overlaps(x, y):
        raise ShapeError("swap: x and y share memory")
    rt = x.runtime
    p = _params(rt, x.dtype)
    vw = p["VW"]
    incx1, incy1 = x.stride == 1, y.stride == 1
    aligned = vw > 1 and all(v.offset % vw == 0 for v, u in ((x, incx1), (y, incy1)) if u)
    (plan,) = _plans(rt, "swap", x.dtype, incx1, incy1, aligned, p)
    chunk = round_up(max(p["MINCHUNK"], -(-x.n // p["MAXG"])), vw)
    groups = -(-x.n // chunk)
    plan.launch((groups,), None, (x.n, chunk, x._owner._buf, x.offset, x.stride,
                                  y._owner._buf, y.offset, y.stride))


def rk(alpha: float, x: Vector, y: Vector, a: Matrix, out: Optional[Matrix] = None) -> Matrix:
    """Rank-1 update ``a := a + alpha * x y^T`` (BLAS ger), or ``out := a + alpha * x y^T``;
    ``a`` in either layout, a transposed or sub-matrix view; returns the matrix written.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.zeros((2, 3))
        ...     print(clnn.rk(2, rt.vector([1, 2]), rt.vector([1, 0, -1]), a).to_numpy())
        [[ 2.  0. -2.]
         [ 4.  0. -4.]]
    """
    op = "rk"
    checks.need(x, Vector, op, "x")
    checks.need(y, Vector, op, "y")
    checks.need(a, Matrix, op, "a")
    if out is not None:
        checks.need(out, Matrix, op, "out")
        checks.same_runtime(op, a, x, y, out)
        checks.same_dtype(op, a, x, y, out)
    else:
        checks.same_runtime(op, a, x, y)
        checks.same_dtype(op, a, x, y)
    alpha = checks.scalar(alpha, op, "alpha")
    if x.n != a.m or y.n != a.n:
        raise ShapeError(f"rk: a has shape {a.shape} but x has length {x.n} and y {y.n} "
                         f"(needs {a.m} and {a.n})")
    out = a if out is None else out
    _check_out(op, out, a.shape, Matrix, (a, x, y), (a,))
    # alpha * (x_i y_j), as numpy's alpha * outer(x, y): (alpha * x_i) could underflow to 0
    # and then 0 * inf would be NaN where the product is inf
    return launch_map("{a} + alpha * ({b} * {c})", out,
                      [_Op.of(a), _Op(x, x.offset, x.stride, 0), _Op(y, y.offset, 0, y.stride)],
                      alpha)
