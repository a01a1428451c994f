"""The one place where test tolerances live.

A sum of k products in floating point has a worst-case relative error of about k*eps, but with
random inputs errors grow like sqrt(k)*eps; we allow 8*sqrt(k)*eps plus a floor, which is tight
enough to catch a wrong index and loose enough for any summation order (tree, blocked, GPU).
"""

from __future__ import annotations

import math

import numpy as np

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps),
       np.dtype(np.float64): float(np.finfo(np.float64).eps)}


def rtol(dtype, k: int = 1) -> float:
    """Relative tolerance for results that are sums of ``k`` products in ``dtype``."""
    return 8.0 * math.sqrt(max(k, 1)) * EPS[np.dtype(dtype)] + 4 * EPS[np.dtype(dtype)]


def atol(dtype, k: int = 1) -> float:
    """Absolute tolerance below the normal range: a result made of ``k`` terms that fall into
    ``dtype``'s subnormals has lost up to one smallest normal number per term (OpenCL lets a
    device flush subnormals to zero, and their spacing carries no relative precision)."""
    return max(k, 1) * float(np.finfo(np.dtype(dtype)).tiny)


def assert_close(actual, expected, dtype, k: int = 1, scale=None) -> None:
    """Compare with numpy: |actual - expected| <= rtol * scale elementwise, where ``scale`` is
    the sum of magnitudes of the terms (passed in) or ``|expected|`` with a floor of its max."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if scale is None:
        scale = np.maximum(np.abs(expected), np.abs(expected).max(initial=0.0) * 1e-3)
    scale = np.maximum(np.asarray(scale, dtype=np.float64), np.finfo(np.float64).tiny)
    err = np.abs(actual - expected)
    tol = rtol(dtype, k) * scale
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} elements off; worst rel err "
        f"{np.max(err / scale):.3g} > {rtol(dtype, k):.3g}")
