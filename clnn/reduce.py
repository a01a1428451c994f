"""Reductions: ``sum``, ``max`` and ``argmax`` of a vector, or of a matrix along an axis.

``axis`` follows numpy: ``axis=0`` reduces over the rows, giving one value per column (a vector
of length n, e.g. the bias gradient of a batch stored one sample per row); ``axis=1`` reduces
over the columns, one value per row (length m, e.g. a softmax's row maxima). Any layout and any
view works; nothing is copied. ``axis=None`` reduces everything to one number (returned as a
Python number, or written to the 1-element vector ``out`` without waiting for the device).

Sums are compensated (Kahan) per lane and combined pairwise, so they stay accurate for long
rows. ``max`` propagates NaN like numpy's. ``argmax`` gives the first index of the maximum
(a NaN counts as the maximum, as in numpy); the indices are written as floats into a vector of
the operand's dtype (exact below 2**24 in float32) -- ``.to_numpy().astype(int)`` turns them
into integers. ``argmax`` of a vector with ``axis=None`` returns a Python int.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 5, 2], [7, 0, 3]])
    ...     print(clnn.sum(a, axis=0).to_numpy(), clnn.max(a, axis=1).to_numpy(),
    ...           clnn.argmax(a, axis=1).to_numpy(), clnn.sum(a))
    [8. 5. 5.] [5. 7.] [1. 0.] 18.0
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from . import checks
from .array import Matrix, Vector
from .blas1 import _check_out1, reduce1
from .errors import ShapeError
from .launch import Plan, build_fitting, check_wgs, real_type
from .tuning import generation, register_defaults
from .tuning import params as tuned_params

__all__ = ["sum", "max", "argmax"]

_I = np.int32
AnyArray = Union[Vector, Matrix]


def reduce_defaults(device, variant: str, dtype: str) -> dict:
    """CPUs: one work-item per output (or per VW outputs), wide vectors (two AVX2 registers
    give two independent chains). GPUs: a work-group of WGS per output when reducing along
    contiguous memory. VWI: the vector width of argmax (index vectors cost registers).
    RPB: rows per block of the two-stage "across" reduction."""
    if device.type == "CPU":
        f = dtype == "float"
        return {"VW": 16 if f else 8, "VWI": 8 if f else 4, "WGS": 1, "RPB": 16}
    wgs = 1 << (min(128, device.max_work_group_size).bit_length() - 1)
    return {"VW": 1, "VWI": 1, "WGS": wgs, "RPB": 256}


def _validate(device, variant: str, dtype: str, p: dict) -> None:
    if p["WGS"] & (p["WGS"] - 1):
        raise ValueError(f"WGS={p['WGS']} is not a power of two")
    for k in ("VW", "VWI"):
        if p[k] not in (1, 2, 4, 8, 16):
            raise ValueError(f"{k}={p[k]} is not 1, 2, 4, 8 or 16")
    check_wgs(device, p)


register_defaults("reduce", reduce_defaults, _validate)


def _plan(rt, op: str, variant: str, dtype: np.dtype, unit: bool, aligned: bool) -> tuple:
    """(plan, its tunables) of one kernel variant, built once per runtime."""
    def make() -> tuple:
        rtype = real_type(dtype)
        p = tuned_params(rt.device, "reduce", variant, rtype)
        types = [_I, _I, None, _I, _I, _I, None, _I, _I]

        def build(q: dict) -> Plan:
            wgs = q["WGS"] if variant == "along" else 1
            k = rt.programs.kernel("reduce.cl.mako", f"reduce_{variant}", dtype=rtype, op=op,
                                   variant=variant, UNIT=unit, ALIGNED=aligned, VW=_vw(q, op),
                                   WGS=wgs)
            return Plan(rt, k, types + ([_I, _I] if variant == "across" else []), q, wgs=wgs)

        plan = build_fitting(build, p, "WGS")
        return plan, plan.params

    return rt.memo(("reduce", op, variant, dtype, unit, aligned, generation()), make)


def _params(rt, dtype: np.dtype, variant: str) -> dict:
    return tuned_params(rt.device, "reduce", variant, real_type(dtype))


def _vw(p: dict, op: str) -> int:
    return p["VWI"] if op == "argmax" else p["VW"]


def launch_axis(op: str, buf_owner, off: int, sk: int, sr: int, K: int, R: int,
                out: Vector) -> Vector:
    """Enqueue ``out[k] := op_r A[off + k*sk + r*sr]`` (operands already checked)."""
    rt = out.runtime
    variant = "along" if sr == 1 or sk != 1 else "across"
    unit = (sr if variant == "along" else sk) == 1
    vw = _vw(_params(rt, out.dtype, variant), op)
    other = sk if variant == "along" else sr
    aligned = unit and vw > 1 and off % vw == 0 and (other % vw == 0 or (
        K == 1 if variant == "along" else R == 1))
    plan, p = _plan(rt, op, variant, out.dtype, unit, aligned)
    args = (K, R, buf_owner._buf, off, sk, sr, out._owner._buf, out.offset, out.stride)
    if variant == "along":
        plan.launch((K * p["WGS"],), (p["WGS"],), args)
        return out
    gk = -(-K // vw)
    rpb = p["RPB"]
    if op == "argmax" or R <= 2 * rpb:
        plan.launch((gk, 1), None, args + (R, 0))
        return out
    # two stages: per-block partials of rpb rows into scratch (a G x K row matrix), then the
    # G partials of each output
    G = -(-R // rpb)
    plan2, _ = _plan(rt, op, "across", out.dtype, True, vw > 1 and K % vw == 0)
    with rt._lock:  # (the scratch is ours until both launches are enqueued)
        scratch = rt.scratch("reduce", G * K, out.dtype)._buf
        plan.launch((gk, G), None, (K, R, buf_owner._buf, off, sk, sr, scratch, 0, 1, rpb, K))
        plan2.launch((gk, 1), None, (K, G, scratch, 0, 1, K, out._owner._buf, out.offset,
                                     out.stride, G, 0))
    return out


def _axis(op: str, a: AnyArray, axis, out: Optional[Vector]):
    if isinstance(a, Vector):
        checks.need(a, Vector, op, "a")
        if axis not in (None, 0, -1):
            raise ShapeError(f"{op}: axis {axis!r} is out of range for a vector (use None or 0)")
        if out is not None:
            _check_out1(op, a, out)
        if op != "argmax":
            return reduce1(op, a, None, out)
        res = out if out is not None else a.runtime.vector(1, dtype=a.dtype)
        launch_axis("argmax", a._owner, a.offset, 0, a.stride, 1, a.n, res)
        if out is not None:
            return out
        with res:
            return int(res.to_numpy()[0])
    checks.need(a, Matrix, op, "a")
    if axis is None:
        if op == "argmax":
            raise ShapeError("argmax: give axis=0 or axis=1 for a matrix")
        if out is not None:
            _check_out1(op, a, out)
        if a.contiguous:
            return reduce1(op, a.as_vector(), None, out)
        with a.runtime.vector(a.m, dtype=a.dtype) as tmp:  # rows first, then the vector
            _axis(op, a, 1, tmp)
            return reduce1(op, tmp, None, out)
    if axis not in (0, 1, -1, -2):
        raise ShapeError(f"{op}: axis {axis!r} must be 0 or 1 for a matrix")
    axis %= 2
    si, sj = (a.ld, 1) if a.layout == "row" else (1, a.ld)
    if axis == 0:
        K, R, sk, sr = a.n, a.m, sj, si
    else:
        K, R, sk, sr = a.m, a.n, si, sj
    if out is None:
        out = a.runtime.vector(K, dtype=a.dtype)
    else:
        checks.need(out, Vector, op, "out")
        checks.same_runtime(op, a, out)
        checks.same_dtype(op, a, out)
        if out.n != K:
            raise ShapeError(f"{op}: out has length {out.n}, axis={axis} of a matrix of shape "
                             f"{a.shape} needs {K}")
        checks.no_overlap(op, out, a)
    return launch_axis(op, a._owner, a.offset, sk, sr, K, R, out)


def sum(a: AnyArray, axis: Optional[int] = None, out: Optional[Vector] = None
        ) -> Union[float, Vector]:
    """Sum of a vector (``axis=None``), or of a matrix along ``axis`` (0: per column,
    1: per row) into a vector (``out`` when given).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.matrix([[1, 2], [3, 4]], layout="col")
        ...     print(clnn.sum(a, axis=1).to_numpy(), clnn.sum(a.row(0)))
        [3. 7.] 3.0
    """
    return _axis("sum", a, axis, out)


def max(a: AnyArray, axis: Optional[int] = None, out: Optional[Vector] = None
        ) -> Union[float, Vector]:
    """Maximum of a vector (``axis=None``), or of a matrix along ``axis``; NaN propagates.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.matrix([[1, 2], [3, -4]])
        ...     print(clnn.max(a, axis=0).to_numpy(), clnn.max(a.col(1)))
        [3. 2.] 2.0
    """
    return _axis("max", a, axis, out)


def argmax(a: AnyArray, axis: Optional[int] = 1, out: Optional[Vector] = None
           ) -> Union[int, Vector]:
    """Index of the first maximum: per row of a matrix (``axis=1``, the default: predicted
    classes of a batch stored one sample per row) or per column (``axis=0``), written as floats
    into a vector; for a vector, a Python int (or a float in the 1-element ``out``).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.matrix([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
        ...     print(clnn.argmax(a).to_numpy().astype(int), clnn.argmax(a.row(0)))
        [1 0] 1
    """
    if isinstance(a, Vector) and axis == 1:
        axis = None
    return _axis("argmax", a, axis, out)

