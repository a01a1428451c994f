"""Host data on its way to the device: the dtypes clnn computes in, sizes, and the conversion
rules that refuse to change a value silently.

Every array clnn makes from host data goes through :func:`host_array` (``rt.vector``,
``rt.matrix``, ``rt.asarray``, ``set``, assignment); scalars go through :func:`scalar_value`.

Example:
    >>> import numpy as np
    >>> from clnn.dtypes import host_array
    >>> host_array([1, 2], None, 1, "vector").dtype
    dtype('float32')
    >>> host_array([16777217], None, 1, "vector")
    Traceback (most recent call last):
    ...
    clnn.errors.DTypeError: vector: the integer 16777217 cannot be held exactly in float32 \
(it would become 16777216.0); convert it first (data.astype(np.float32)) or pass \
dtype=np.float32, or use float64
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .errors import DTypeError, OperandError, OutOfMemoryError, ShapeError

__all__ = ["FLOATS", "LAYOUTS", "MAX_INT", "as_dtype", "check_size", "host_array",
           "scalar_value"]

LAYOUTS = ("row", "col")
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
MAX_INT = 2**31 - 1  # kernels index with 32-bit ints (addresses use size_t)


def as_dtype(dtype: Any) -> np.dtype:
    """Normalise ``dtype`` to float32 or float64; anything else raises :class:`DTypeError`.

    Example:
        >>> from clnn.dtypes import as_dtype
        >>> as_dtype("float64")
        dtype('float64')
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"dtype {dtype!r} is not a dtype; use float32 or float64") from None
    if dt not in FLOATS:
        raise DTypeError(f"dtype {dt} is not supported; use float32 or float64")
    return dt


def check_size(n: Any, what: str) -> int:
    """``n`` as an int size of 1 to 2**31-1 elements (:class:`ShapeError` or
    :class:`OutOfMemoryError` otherwise)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ShapeError(f"{what}: size {n!r} is not an integer")
    n = int(n)
    if n < 1:
        raise ShapeError(f"{what}: size {n} must be >= 1")
    if n > MAX_INT:
        raise OutOfMemoryError(f"{what}: size {n} exceeds the 2**31-1 elements clnn indexes")
    return n


def host_array(data: Any, dtype: Any, ndim: Optional[int], what: str,
               default: Any = np.float32, convert: Optional[bool] = None) -> np.ndarray:
    """``data`` (host data: numpy arrays, lists, numbers) as a numpy array of ``ndim`` dims
    (None: 1 or 2) and a float dtype. A clnn array is read with ``to_numpy()`` first by the
    callers that take one (``rt.vector`` keeps its dtype).

    The dtype is ``dtype``, else a numpy float32/float64 array's own, else ``default``. This
    is the one place host data is converted for the device, and a conversion never changes a
    value silently: unless ``convert`` (default: ``dtype`` was given, the caller asked for
    that dtype) it raises :class:`DTypeError` for an integer the dtype cannot hold exactly, a
    finite number that would become inf, and float16 data. Rounding to the nearest float
    (0.1 in float32) is not a change of value here, as in numpy. Complex, object and text
    data are always refused. Data that already has the dtype is returned as is (no pass).
    """
    keep = isinstance(data, np.ndarray)  # only numpy float arrays keep their dtype
    if keep:
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError, OverflowError) as e:
            raise ShapeError(f"{what}: cannot make an array of the input ({e})") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise DTypeError(
            f"{what}: input of dtype {arr.dtype} is not real numbers; use float32/float64 "
            "data (complex, object and text are refused; for complex data pass .real "
            "explicitly; integers beyond 64 bits come as object)"
        )
    if dtype is not None:
        dt = as_dtype(dtype)
    elif keep and arr.dtype in FLOATS:
        dt = arr.dtype
    else:
        dt = as_dtype(default)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{what}: expected {ndim}-d data, got shape {arr.shape}")
    if ndim is None and arr.ndim not in (1, 2):
        raise ShapeError(f"{what}: clnn arrays are 1-d or 2-d, got shape {arr.shape}"
                         + (" (a scalar has no clnn form: use [x] for a 1-element vector)"
                            if arr.ndim == 0 else ""))
    if arr.size == 0:
        raise ShapeError(f"{what}: empty input (shape {arr.shape}); sizes must be >= 1")
    if arr.dtype == dt:
        return arr
    return _convert(arr, dt, dtype is not None if convert is None else convert, what)


def scalar_value(value: Any, dt: np.dtype, what: str) -> Any:
    """``value`` as a numpy scalar of ``dt``, with :func:`host_array`'s conversion rules (an
    array, clnn's included, raises :class:`OperandError`)."""
    if np.ndim(value) != 0:
        raise OperandError(f"{what}: expected a number, got {type(value).__name__}")
    return host_array([value], None, 1, what, default=dt)[0]


def _convert(arr: np.ndarray, dt: np.dtype, explicit: bool, what: str) -> np.ndarray:
    """``arr.astype(dt)``; unless ``explicit``, refuse a conversion that changes a value."""
    if explicit:
        with np.errstate(over="ignore", invalid="ignore"):
            return arr.astype(dt)
    hint = f"convert it first (data.astype(np.{dt.name})) or pass dtype=np.{dt.name}"
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        raise DTypeError(f"{what}: {arr.dtype} data would become {dt.name} (clnn has no "
                         f"{arr.dtype}); {hint}")
    if arr.dtype.kind in "iu":
        bad = _inexact_int(arr, dt)
        if bad is not None:
            raise DTypeError(f"{what}: the integer {bad} cannot be held exactly in {dt.name} "
                             f"(it would become {float(dt.type(bad))!r}); {hint}"
                             + (", or use float64" if dt == np.float32 else ""))
        return arr.astype(dt)
    if arr.dtype.kind == "f":
        try:
            with np.errstate(over="raise"):  # the cast itself flags overflow: no extra pass
                return arr.astype(dt)
        except FloatingPointError:
            with np.errstate(over="ignore", invalid="ignore"):
                out = arr.astype(dt)
            big = arr[np.isinf(out) & np.isfinite(arr)].flat[0]
            raise DTypeError(f"{what}: the value {float(big)!r} is beyond {dt.name}'s range "
                             f"(it would become inf); {hint}") from None
    return arr.astype(dt)  # bool


def _inexact_int(arr: np.ndarray, dt: np.dtype) -> Optional[int]:
    """The first integer of ``arr`` that ``dt`` cannot hold exactly, or None."""
    bits = np.finfo(dt).nmant + 1  # 24 for float32, 53 for float64
    if arr.dtype.itemsize * 8 - (arr.dtype.kind == "i") <= bits:
        return None  # every value of the type fits
    lim = 1 << bits
    if -lim <= int(arr.min()) and int(arr.max()) <= lim:
        return None
    flat = arr.ravel()
    if arr.dtype.kind == "u":
        big = flat[flat > lim]
        mag = big.astype(np.uint64)
    else:
        big = flat[(flat > lim) | (flat < -lim)]
        neg = big < 0
        mag = np.where(neg, (-(big + 1)).astype(np.uint64) + np.uint64(1),
                       big.astype(np.uint64))
    low = mag & (~mag + np.uint64(1))  # the lowest set bit
    inexact = (mag // low) >= np.uint64(lim)  # more significant bits than the dtype holds
    if not inexact.any():
        return None
    return int(big[np.argmax(inexact)])
