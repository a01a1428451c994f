"""pyopencl arrays in and out of clnn, without a copy when they share a context.

``rt.asarray(p)`` on a ``pyopencl.array.Array`` of the runtime's context wraps its memory: the
clnn array points at the same ``cl.Buffer`` (same ``int_ptr``) with the pyopencl array's
offset and strides: a 1-d array with a positive stride is a :class:`~clnn.Vector` view, a 2-d
array with unit stride along one axis and a positive leading dimension along the other is a
:class:`~clnn.Matrix` view ("row" when the second axis is the unit one, else "col"). Anything
else raises :class:`clnn.ShapeError`. clnn holds its own OpenCL reference to the memory and
the pyopencl array itself, so the memory stays valid while the clnn array lives; releasing the
clnn array (or the runtime) only drops that reference: the pyopencl array stays usable.

Arrays of another context, and arrays of other dtypes, are copied (through the host, with the
conversion rules of :func:`clnn.dtypes.host_array`).

The way out is :meth:`clnn.Vector.to_pyopencl` / :meth:`clnn.Matrix.to_pyopencl`.

Example:
    >>> import clnn, numpy as np, pyopencl as cl, pyopencl.array as cla
    >>> with clnn.Runtime("cpu") as rt:
    ...     p = cla.to_device(rt.queue, np.arange(6, dtype=np.float32))
    ...     a = rt.asarray(p[1:5].reshape(2, 2))
    ...     print(a.layout, a.to_numpy().tolist(), a._owner._buf.int_ptr == p.base_data.int_ptr)
    row [[1.0, 2.0], [3.0, 4.0]] True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyopencl as cl

from .array import Array, Matrix, Vector
from .dtypes import FLOATS, as_dtype
from .errors import ShapeError, UnsupportedError

if TYPE_CHECKING:  # pragma: no cover
    from .memory import Memory

__all__ = ["is_pyopencl_array", "view", "to_host", "wrap"]


def is_pyopencl_array(obj: Any) -> bool:
    """True for a ``pyopencl.array.Array``."""
    import pyopencl.array as cla

    return isinstance(obj, cla.Array)


def view(rt: Memory, ary: Any, dtype: Any = None,
         layout: Optional[str] = None) -> Optional[Array]:
    """``ary`` as a clnn array of ``rt`` sharing its memory when it is on ``rt``'s context and
    has the dtype asked for (float32/float64; a matrix in the other ``layout`` is copied on
    the device); None when it must come through the host (:func:`to_host`)."""
    want = None if dtype is None else as_dtype(dtype)
    if ary.context == rt.ctx and ary.dtype in FLOATS and want in (None, ary.dtype):
        arr = wrap(rt, ary, layout)
        if isinstance(arr, Matrix) and layout is not None and layout != arr.layout:
            return arr.copy(layout=layout)
        return arr
    return None


def to_host(ary: Any) -> np.ndarray:
    """A host copy of a pyopencl array with non-negative strides (contiguous or not)."""
    isz = ary.dtype.itemsize
    if ary.size == 0 or ary.base_data is None:
        raise ShapeError(f"asarray: empty pyopencl array (shape {ary.shape}); sizes must be "
                         ">= 1")
    if any(s < 0 for s in ary.strides):
        raise ShapeError(f"asarray: pyopencl array with negative strides {ary.strides}")
    span = sum((d - 1) * s for d, s in zip(ary.shape, ary.strides)) + isz
    raw = np.empty(span, np.uint8)
    ary.finish()
    cl.enqueue_copy(ary.queue, raw, ary.base_data, src_offset=ary.offset, is_blocking=True)
    view = np.lib.stride_tricks.as_strided(raw.view(ary.dtype), ary.shape, ary.strides)
    return np.array(view)


def _geometry(ary: Any, layout: Optional[str]) -> tuple:
    """(kind, offset, stride or ld, layout) of ``ary`` in elements, or ShapeError."""
    isz = ary.dtype.itemsize
    off, rem = divmod(ary.offset, isz)
    bad = rem or any(s % isz for s in ary.strides)
    if bad:
        raise ShapeError(f"asarray: pyopencl array with offset {ary.offset} and strides "
                         f"{ary.strides} (bytes) not in whole elements of {isz} bytes")
    st = [s // isz for s in ary.strides]
    if ary.ndim == 1:
        n = ary.shape[0]
        s = st[0] if n > 1 else 1
        if s >= 1:
            return "vector", off, s, None
    elif ary.ndim == 2:
        m, n = ary.shape
        row = (n == 1 or st[1] == 1) and (m == 1 or st[0] >= n)
        col = (m == 1 or st[0] == 1) and (n == 1 or st[1] >= m)
        if row and (layout != "col" or not col):
            return "matrix", off, st[0] if m > 1 else n, "row"
        if col:
            return "matrix", off, st[1] if n > 1 else m, "col"
    raise ShapeError(f"asarray: a pyopencl array of shape {ary.shape} and strides "
                     f"{ary.strides} (bytes) has no clnn form without a copy: clnn takes 1-d "
                     "arrays with a positive stride and 2-d arrays with unit stride along "
                     "one axis; copy it first (ary.copy() or rt.asarray(ary.get()))")


def wrap(rt: Memory, ary: Any, layout: Optional[str] = None) -> Array:
    """A clnn view of the memory of ``ary`` (a float32/float64 pyopencl array on ``rt``'s
    context), no copy. Commands queued on another queue of that context are waited for."""
    rt._live()
    if ary.size == 0 or ary.base_data is None:
        raise ShapeError(f"asarray: empty pyopencl array (shape {ary.shape}); sizes must be "
                         ">= 1")
    kind, off, step, lay = _geometry(ary, layout)
    base = ary.base_data
    if not isinstance(base, cl.MemoryObjectHolder):
        raise UnsupportedError(f"asarray: pyopencl array memory of type {type(base).__name__} "
                               "cannot be wrapped (clnn takes cl.Buffer memory)")
    if ary.queue is not None and ary.queue != rt.queue:
        ary.finish()
        ary.queue.finish()  # clnn's queue runs after what the user queued elsewhere
    dt = ary.dtype
    owner = _owner(rt, base, dt)
    if kind == "vector":
        return Vector(rt, ary.shape[0], dt, owner=owner, offset=off, stride=step)
    m, n = ary.shape
    return Matrix(rt, m, n, dt, lay, owner=owner, offset=off, ld=step)


def _owner(rt: Memory, base: Any, dt: np.dtype) -> Vector:
    """The one clnn owner of a wrapped buffer per runtime and dtype (views of one buffer
    then know that they overlap). It holds an OpenCL reference of its own and ``base``."""
    key = (base.int_ptr, dt)
    with rt._lock:
        owner = rt._borrowed.get(key)
        if owner is not None and not owner.released:
            return owner
        clone = cl.Buffer.from_int_ptr(base.int_ptr, retain=True)  # clnn's own reference
        clone._clnn_keep = base  # keeps pooled memory from going back to its pool
        clone._clnn_borrowed = True
        owner = Vector(rt, max(1, clone.size // dt.itemsize), dt, buf=clone)
        rt._borrowed[key] = owner
        return rt._register(owner)
