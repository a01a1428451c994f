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


def host_numbers(value: Any, op: str, name: str, error: type = DTypeError,
                 runtime: Any = None, owner: str = "the other operands") -> np.ndarray:
    """``value``, data a user hands to ``op``, as a numpy array of numbers (bool, integer or
    float; no copy where numpy makes none). A clnn array is read back: with ``runtime``, it
    must belong to it (:class:`RuntimeMismatchError` names ``owner``, whose runtime it is).
    Data numpy cannot make an array of raises :class:`ShapeError`; complex, object and text
    data raise ``error`` (:class:`DTypeError` unless given). Messages name ``op`` and
    ``name`` (what the value is: "x", "the value").

    Example:
        >>> from clnn.checks import host_numbers
        >>> host_numbers([[1, 2]], "fit", "x").shape
        (1, 2)
        >>> host_numbers(["a"], "fit", "x")
        Traceback (most recent call last):
        ...
        clnn.errors.DTypeError: fit: x of dtype <U1 is not real numbers
    """
    if isinstance(value, Array):
        value._live()
        if runtime is not None and value.runtime is not runtime:
            raise RuntimeMismatchError(
                f"{op}: {name} lives on another runtime ({value.runtime.device}) than "
                f"{owner} ({runtime.device}); copy it over first")
        value = value.to_numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ShapeError(f"{op}: cannot make an array of {name} ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise error(f"{op}: {name} of dtype {arr.dtype} is not real numbers")
    return arr


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


__all__ = ["need", "same_runtime", "same_dtype", "scalar", "host_numbers", "overlaps",
           "no_overlap", "Matrix", "Vector"]
