"""Argument checks shared by every operation: liveness, runtime, dtype, shapes, overlap.

Each check raises the clnn error that names the problem before anything is enqueued, so a
rejected call never writes to its output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .array import Array, Matrix, Vector
from .errors import DTypeError, OperandError, RuntimeMismatchError, ShapeError


def need(obj: Any, cls: type, op: str, name: str) -> None:
    if not isinstance(obj, cls):
        what = type(obj).__name__
        if isinstance(obj, Array):
            raise ShapeError(f"{op}: {name} must be a clnn.{cls.__name__}, got a clnn.{what} "
                             f"of shape {obj.shape}")
        raise OperandError(f"{op}: {name} must be a clnn.{cls.__name__}, got {what}; "
                           f"copy numpy data to the device with rt.vector()/rt.matrix()")
    obj._live()


def same_runtime(op: str, first: Array, *others: Array) -> None:
    rt = first.runtime
    for o in others:
        if o.runtime is not rt:
            raise RuntimeMismatchError(
                f"{op}: operands belong to different runtimes ({rt.device} and "
                f"{o.runtime.device}); copy them into one runtime first")


def same_dtype(op: str, first: Array, *others: Array) -> None:
    dt = first.dtype
    for o in others:
        if o.dtype != dt:
            raise DTypeError(f"{op}: mixed dtypes {dt} and {o.dtype}; convert one of them")


def scalar(value: Any, op: str, name: str) -> float:
    # float() would also take "2", b"2", True, 1+0j's real part or a 1-element array
    if (isinstance(value, (bool, complex, str, bytes, np.bool_, np.complexfloating))
            or (isinstance(value, np.ndarray) and value.ndim > 0)):
        raise DTypeError(f"{op}: {name}={value!r} must be a real number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DTypeError(f"{op}: {name}={value!r} must be a real number") from None


def _extent(a: Array) -> tuple:
    return a.offset, a.offset + a._span()


def overlaps(a: Array, b: Array) -> bool:
    """True when ``a`` and ``b`` may touch the same memory."""
    if a._owner is not b._owner:
        return False
    a0, a1 = _extent(a)
    b0, b1 = _extent(b)
    return a0 < b1 and b0 < a1


def no_overlap(op: str, out: Array, *inputs: Array) -> None:
    for i in inputs:
        if overlaps(out, i):
            raise ShapeError(f"{op}: out shares memory with an input; use a separate buffer")


__all__ = ["need", "same_runtime", "same_dtype", "scalar", "overlaps", "no_overlap",
           "Matrix", "Vector"]
