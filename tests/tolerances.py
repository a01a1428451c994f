"""The one place where test tolerances live.

A sum of k products in floating point has a worst-case relative error of about k*eps, but with
random inputs errors grow like sqrt(k)*eps; we allow 8*sqrt(k)*eps plus a floor, which is tight
enough to catch a wrong index and loose enough for any summation order (tree, blocked, GPU).

The error is relative to the sum of the magnitudes of the terms (``|a| @ |b|`` for a product,
``sum |x_i y_i|`` for a dot), never to ``|result|``: where terms cancel, the result is small
but the rounding errors are not. The reference is always computed in float64 from the very
inputs the device got (numpy's own float32 rounding depends on the machine's BLAS kernel), so
:func:`assert_close` refuses a numpy reference of any other dtype, and a sum (``k > 1``) without
``scale``. The ``ref_*`` helpers return ``(expected, scale)`` for the common operations.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps),
       np.dtype(np.float64): float(np.finfo(np.float64).eps)}
F64 = np.dtype(np.float64)


def rtol(dtype, k: int = 1) -> float:
    """Relative tolerance for results that are sums of ``k`` products in ``dtype``."""
    return 8.0 * math.sqrt(max(k, 1)) * EPS[np.dtype(dtype)] + 4 * EPS[np.dtype(dtype)]


def atol(dtype, k: int = 1) -> float:
    """Absolute tolerance below the normal range: a result made of ``k`` terms that fall into
    ``dtype``'s subnormals has lost up to one smallest normal number per term (OpenCL lets a
    device flush subnormals to zero, and their spacing carries no relative precision)."""
    return max(k, 1) * float(np.finfo(np.dtype(dtype)).tiny)


def f64(a) -> np.ndarray:
    """``a`` as float64 (host arrays, device results, scalars)."""
    return np.asarray(a, dtype=F64)


class Ref(NamedTuple):
    """A float64 reference and the sum of its terms' magnitudes; pass it whole as
    ``assert_close``'s ``expected`` (or unpack it: ``want, scale = ref_mm(a, b)``)."""

    want: Any
    scale: Any


def ref_mm(a, b, alpha=1.0, c=None, beta=0.0) -> Ref:
    """``alpha * a @ b + beta * c`` in float64 and the sum of its terms' magnitudes
    (``|alpha| |a| @ |b| + |beta| |c|``). ``b`` may be a vector (gemv)."""
    a64, b64 = f64(a), f64(b)
    want = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0:
        c64 = f64(c)
        want = want + beta * c64
        scale = scale + abs(beta) * np.abs(c64)
    return Ref(want, scale)


ref_mv = ref_mm  # the same formula: a matrix times a vector


def ref_dot(x, y) -> Ref:
    """``x . y`` in float64 and ``sum |x_i y_i|``."""
    x64, y64 = f64(x).ravel(), f64(y).ravel()
    return Ref(float(x64 @ y64), float(np.abs(x64) @ np.abs(y64)))


def ref_sum(x, axis=None) -> Ref:
    """``x.sum(axis)`` in float64 and the sum of the magnitudes."""
    x64 = f64(x)
    return Ref(x64.sum(axis=axis), np.abs(x64).sum(axis=axis))


def assert_close(actual, expected, dtype, k: int = 1, scale=None) -> None:
    """|actual - expected| <= rtol(dtype, k) * scale + atol(dtype, k) elementwise.

    ``expected`` is a float64 reference (a numpy array or scalar of another dtype is refused:
    cast the inputs to float64 before the numpy operation). ``scale`` is the sum of the
    magnitudes of the terms; it is required for sums (``k > 1``) and defaults to
    ``|expected|`` for a single term (elementwise ops). A :class:`Ref` carries both."""
    if isinstance(expected, Ref):
        assert scale is None, "assert_close: a Ref carries its own scale"
        expected, scale = expected
    if isinstance(expected, (np.ndarray, np.generic)) and expected.dtype != F64:
        raise TypeError(f"assert_close: the reference is {expected.dtype}; compute it in "
                        "float64 (cast the inputs before the numpy operation)")
    if k > 1 and scale is None:
        raise TypeError("assert_close: a sum of k > 1 terms needs scale= (the sum of the "
                        "terms' magnitudes), not |expected|")
    actual = f64(actual)
    expected = f64(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.abs(expected) if scale is None else f64(scale)
    scale = np.broadcast_to(np.maximum(scale, np.finfo(np.float64).tiny), expected.shape)
    err = np.abs(actual - expected)
    tol = rtol(dtype, k) * scale + atol(dtype, k)
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} elements off; worst rel err "
        f"{np.max(err[bad] / scale[bad]):.3g} > {rtol(dtype, k):.3g} (first at "
        f"{np.argwhere(bad)[0].tolist() if bad.ndim else []}: got {actual[bad].flat[0]!r}, "
        f"want {expected[bad].flat[0]!r})")
