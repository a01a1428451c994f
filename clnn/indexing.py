"""Index arithmetic of clnn's views: integer indices, slices and shapes, checked before any
view is made (:class:`clnn.ShapeError` / :class:`clnn.OperandError` name the problem).

Views need positive steps (the kernels take positive strides); fancy and boolean indexing are
refused with a pointer to ``.to_numpy()``.

Example:
    >>> from clnn.indexing import element, slice_of, target_shape
    >>> element(-1, 5, "v[]"), slice_of(slice(1, None, 2), 6, "v[]"), target_shape((2, -1), 6)
    (4, (1, 3, 2), (2, 3))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OperandError, ShapeError

__all__ = ["is_index", "element", "index", "slice_of", "target_shape"]


def is_index(k: Any) -> bool:
    """True for an integer index (not a bool)."""
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def element(k: Any, length: int, what: str) -> int:
    """An integer index (negative counts from the end) checked against ``length``."""
    i = int(k)
    if not -length <= i < length:
        raise ShapeError(f"{what}: index {i} is out of range for length {length}")
    return i + length if i < 0 else i


def index(v: Any, what: str) -> int:
    """``v`` as an int; anything but an integer raises :class:`ShapeError`."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ShapeError(f"{what} {v!r} is not an integer")
    return int(v)


def slice_of(key: Any, length: int, what: str) -> tuple:
    """(start, count, step) of a slice over ``length`` elements; positive steps only."""
    if not isinstance(key, slice):
        raise OperandError(f"{what}: index {key!r} is not an integer, a slice or ...; for "
                           "fancy or boolean indexing read the values with .to_numpy()")
    start, stop, step = key.indices(length)
    if step <= 0:
        raise ShapeError(f"{what}: slice step {step}: clnn views need a positive step (the "
                         "kernels take positive strides); for a reversed copy use "
                         "rt.vector(v.to_numpy()[::-1])")
    count = len(range(start, stop, step))
    if count < 1:
        raise ShapeError(f"{what}: slice {key!r} of {length} elements is empty")
    return start, count, step


def target_shape(shape: tuple, size: int) -> tuple:
    """The 1-d or 2-d ``shape`` for ``size`` elements, with one -1 worked out."""
    if len(shape) not in (1, 2):
        raise ShapeError(f"reshape: clnn arrays are 1-d or 2-d, not shape {shape}")
    dims = [index(d, "reshape: dimension") for d in shape]
    if dims.count(-1) > 1 or any(d < 1 and d != -1 for d in dims):
        raise ShapeError(f"reshape: shape {tuple(dims)} has a dimension below 1 or more than "
                         "one -1")
    known = int(np.prod([d for d in dims if d != -1]))
    if -1 in dims:
        if size % known:
            raise ShapeError(f"reshape: {size} elements do not fill shape {tuple(dims)}")
        dims[dims.index(-1)] = size // known
    if int(np.prod(dims)) != size:
        raise ShapeError(f"reshape: {size} elements cannot take shape {tuple(dims)}")
    return tuple(dims)
