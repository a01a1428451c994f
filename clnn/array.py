"""Device buffers: :class:`Vector` and :class:`Matrix`, and the views that share their memory.

Every array belongs to one :class:`clnn.Runtime`. The array that allocated the OpenCL buffer
is its *owner*; views (``a.T``, and later sub-vectors and sub-matrices) point at the owner's
memory with their own offset, stride or leading dimension. Releasing the owner, or the runtime,
releases every view of it; any later use raises :class:`clnn.ReleasedError`.

Views never copy: ``v.subvector(off, n, stride)`` / ``v[i:j:k]``, ``a.submatrix(i, j, m, n)`` /
``a[i0:i1, j0:j1]``, ``a.row(i)``, ``a.col(j)`` (a strided vector when the layout makes it so),
``a.T`` and ``a.as_vector()``. Writing through a view changes the parent. A view that would
reach outside its parent raises :class:`clnn.ShapeError`.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2, 3], [4, 5, 6]])
    ...     print(a.shape, a.layout, a.T.shape, a.T.layout)
    ...     print(a.row(1).to_numpy(), a.col(2).stride, a[:, 1:].to_numpy().tolist())
    (2, 3) row (3, 2) col
    [4. 5. 6.] 3 [[2.0, 3.0], [5.0, 6.0]]
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyopencl as cl

from . import hostmem, transfer
from .errors import DTypeError, OperandError, OutOfMemoryError, ReleasedError, ShapeError

if TYPE_CHECKING:  # pragma: no cover
    from .runtime import Runtime

__all__ = ["Array", "Vector", "Matrix", "as_dtype", "LAYOUTS", "subvector", "submatrix"]

LAYOUTS = ("row", "col")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_MAX_INT = 2**31 - 1  # kernels index with 32-bit ints (addresses use size_t)


def as_dtype(dtype: Any) -> np.dtype:
    """Normalise ``dtype`` to float32 or float64; anything else raises :class:`DTypeError`."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"dtype {dtype!r} is not a dtype; use float32 or float64") from None
    if dt not in _FLOATS:
        raise DTypeError(f"dtype {dt} is not supported; use float32 or float64")
    return dt


def host_array(data: Any, dtype: Any, ndim: int, what: str) -> np.ndarray:
    """``data`` as a numpy array of ``ndim`` dims and a float dtype (clnn's input rules)."""
    if isinstance(data, Array):
        data._live()
        data = data.to_numpy()
    keep = isinstance(data, np.ndarray)  # only numpy float arrays keep their dtype
    if keep:
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise ShapeError(f"{what}: cannot make an array of the input ({e})") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise DTypeError(
            f"{what}: input of dtype {arr.dtype} is not real numbers; "
            "use float32/float64 data (complex, object and text are refused)"
        )
    if dtype is not None:
        dt = as_dtype(dtype)
    elif keep and arr.dtype in _FLOATS:
        dt = arr.dtype
    else:
        dt = np.dtype(np.float32)
    if arr.ndim != ndim:
        raise ShapeError(f"{what}: expected {ndim}-d data, got shape {arr.shape}")
    if arr.size == 0:
        raise ShapeError(f"{what}: empty input (shape {arr.shape}); sizes must be >= 1")
    return arr.astype(dt, copy=False)


def _index(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ShapeError(f"{what} {v!r} is not an integer")
    return int(v)


def _slice(key: Any, length: int, what: str) -> tuple:
    """(start, count, step) of a slice over ``length`` elements; positive steps only."""
    if not isinstance(key, slice):
        raise OperandError(f"{what}: index {key!r} is not a slice; clnn views are taken with "
                           "slices (v[i:i+1] is a 1-element view; read values with to_numpy())")
    start, stop, step = key.indices(length)
    if step <= 0:
        raise ShapeError(f"{what}: slice step {step} must be positive")
    count = len(range(start, stop, step))
    if count < 1:
        raise ShapeError(f"{what}: slice {key!r} of {length} elements is empty")
    return start, count, step


class Array:
    """Base of :class:`Vector` and :class:`Matrix`: ownership, lifetime and dtype."""

    __slots__ = (
        "runtime", "dtype", "_owner", "_buf", "offset", "_released", "_nbytes", "__weakref__",
    )

    def __init__(self, runtime: Runtime, dtype: np.dtype, owner: Optional[Array],
                 buf: Optional[cl.Buffer], offset: int, nbytes: int = 0):
        self.runtime = runtime
        self.dtype = dtype
        self._owner = self if owner is None else owner
        self._buf = buf
        self.offset = offset
        self._released = False
        self._nbytes = nbytes

    # ---- lifetime -------------------------------------------------------------------------
    @property
    def released(self) -> bool:
        """True once this array, its owner or its runtime was released."""
        return self._released or self._owner._released or self.runtime._released

    @property
    def is_view(self) -> bool:
        return self._owner is not self

    @property
    def base(self) -> Array:
        """The array that owns the memory (``self`` for an owner)."""
        return self._owner

    def _live(self) -> None:
        if self._released or self._owner._released or self.runtime._released:
            raise ReleasedError(f"{self._describe()} was released and cannot be used")

    def release(self) -> None:
        """Free the device memory now (for a view: detach the view). Harmless twice.

        Thread-safe: the buffer is freed under the runtime's lock and marked dead, so an op
        that another thread checked just before and launches just after raises
        ``ReleasedError`` (see ``Plan.launch``) instead of running on freed memory. A buffer
        in clnn's own host memory (CPU devices, 4 MiB or more: :mod:`clnn.hostmem`) first
        waits for the commands already queued, then its pages go back to the system."""
        if self._released:
            return
        if self._owner is not self:
            self._released = True
            return
        with self.runtime._lock:
            if self._released:
                return
            self._released = True
            buf, self._buf = self._buf, None
            self.runtime._forget(self)
            if buf is not None:
                buf._clnn_dead = True  # Plan.launch refuses it from now on
                host = hostmem.is_host_backed(buf)
                try:
                    if host and self.runtime._queue is not None:
                        self.runtime._queue.finish()  # queued commands may still use it
                    buf.release()
                except cl.Error:  # context already gone: nothing left to free
                    pass
                if host:
                    hostmem.discard(buf)

    def __enter__(self):
        self._live()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            if self._owner is self and not self._released and self._buf is not None:
                if not self.runtime._released:
                    warnings.warn(
                        f"{self._describe()} was never released; freed by the garbage collector",
                        ResourceWarning,
                        stacklevel=2,
                    )
                self.release()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    # ---- data -----------------------------------------------------------------------------
    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def _span(self) -> int:
        """Number of elements from ``offset`` to the last element, inclusive."""
        raise NotImplementedError

    def _read_span(self) -> np.ndarray:
        self._live()
        span = self._span()
        host = np.empty(span, self.dtype)
        rt = self.runtime
        with rt._lock:
            self._live()  # again under the lock: another thread may have released it since
            transfer.read(rt.queue, host, self._owner._buf, self.offset * self.itemsize)
        return host

    def _write_span(self, host: np.ndarray) -> None:
        rt = self.runtime
        with rt._lock:
            self._live()
            cl.enqueue_copy(rt.queue, self._owner._buf, host,
                            dst_offset=self.offset * self.itemsize, is_blocking=True)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    def __str__(self) -> str:
        if self.released:
            return f"<{self._describe()}, released>"
        return str(self.to_numpy())

    def __repr__(self) -> str:
        head = self._describe()
        if self.released:
            return f"<{head}, released>"
        if self.size <= 64:
            vals = np.array2string(self.to_numpy(), precision=6, separator=", ")
            return f"<{head}: {vals}>"
        return f"<{head}>"

    # subclasses provide: shape, size, to_numpy, set, _describe


class Vector(Array):
    """A 1-d device array of ``n`` elements, ``stride`` apart, from ``offset``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     v = rt.vector([1, 2, 3])
        ...     print(v.to_numpy(), v.dtype)
        [1. 2. 3.] float32
    """

    __slots__ = ("n", "stride")

    def __init__(self, runtime: Runtime, n: int, dtype: np.dtype, owner=None, buf=None,
                 offset: int = 0, stride: int = 1, nbytes: int = 0):
        super().__init__(runtime, dtype, owner, buf, offset, nbytes)
        self.n = n
        self.stride = stride

    @property
    def shape(self) -> tuple:
        return (self.n,)

    @property
    def size(self) -> int:
        return self.n

    @property
    def ndim(self) -> int:
        return 1

    def __len__(self) -> int:
        return self.n

    def _describe(self) -> str:
        extra = "" if self.stride == 1 and self.offset == 0 else (
            f", offset={self.offset}, stride={self.stride}")
        kind = "Vector view" if self.is_view else "Vector"
        return f"clnn.{kind}({self.dtype.name}, n={self.n}{extra})"

    def _span(self) -> int:
        return (self.n - 1) * self.stride + 1

    def to_numpy(self) -> np.ndarray:
        """A new numpy array with the vector's values (blocks until they are ready)."""
        host = self._read_span()
        return host if self.stride == 1 else host[:: self.stride].copy()

    def set(self, data: Any) -> Vector:
        """Overwrite the values from numpy data of the same length; returns ``self``."""
        self._live()
        arr = host_array(data, self.dtype, 1, "Vector.set")
        if arr.shape != (self.n,):
            raise ShapeError(f"Vector.set: data of shape {arr.shape} into a vector of {self.n}")
        if self.stride == 1:
            self._write_span(np.ascontiguousarray(arr))
        else:
            host = self._read_span()
            host[:: self.stride] = arr
            self._write_span(host)
        return self

    # ---- views ----------------------------------------------------------------------------
    def subvector(self, offset: int, n: int, stride: int = 1) -> Vector:
        """The view of ``n`` elements from element ``offset``, every ``stride``-th (no copy).

        ``offset``, ``n`` and ``stride`` count elements of this vector (a view of a strided
        vector is strided again). Out of range raises :class:`ShapeError`.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     v = rt.vector([0, 1, 2, 3, 4, 5, 6])
            ...     print(v.subvector(1, 3, stride=2).to_numpy(), v[::3].to_numpy())
            [1. 3. 5.] [0. 3. 6.]
        """
        self._live()
        offset = _index(offset, "subvector: offset")
        n = _index(n, "subvector: length")
        stride = _index(stride, "subvector: stride")
        if stride < 1:
            raise ShapeError(f"subvector: stride {stride} must be >= 1")
        if n < 1:
            raise ShapeError(f"subvector: length {n} must be >= 1")
        if offset < 0 or offset + (n - 1) * stride >= self.n:
            raise ShapeError(f"subvector: {n} elements from {offset} with stride {stride} do "
                             f"not fit in {self._describe()}")
        return Vector(self.runtime, n, self.dtype, owner=self._owner,
                      offset=self.offset + offset * self.stride, stride=self.stride * stride)

    def __getitem__(self, key: Any) -> Vector:
        start, count, step = _slice(key, self.n, "Vector[]")
        return self.subvector(start, count, step)


def subvector(v: Vector, offset: int, n: int, stride: int = 1) -> Vector:
    """``v.subvector(offset, n, stride)``: a view sharing ``v``'s memory."""
    if not isinstance(v, Vector):
        raise OperandError(f"subvector: expected a clnn.Vector, got {type(v).__name__}")
    return v.subvector(offset, n, stride)


class Matrix(Array):
    """A 2-d device array, ``shape == (m, n)``, stored in ``layout`` "row" or "col".

    Element (i, j) lies at ``offset + i*ld + j`` ("row") or ``offset + i + j*ld`` ("col").
    ``a.T`` is a view with the other layout over the same memory (no copy).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.matrix([[1, 2], [3, 4]], layout="col")
        ...     print(a.T.to_numpy())
        [[1. 3.]
         [2. 4.]]
    """

    __slots__ = ("m", "n", "layout", "ld")

    def __init__(self, runtime: Runtime, m: int, n: int, dtype: np.dtype, layout: str,
                 owner=None, buf=None, offset: int = 0, ld: Optional[int] = None,
                 nbytes: int = 0):
        super().__init__(runtime, dtype, owner, buf, offset, nbytes)
        self.m = m
        self.n = n
        self.layout = layout
        self.ld = ld if ld is not None else (n if layout == "row" else m)

    @property
    def shape(self) -> tuple:
        return (self.m, self.n)

    @property
    def size(self) -> int:
        return self.m * self.n

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.m

    @property
    def T(self) -> Matrix:
        """The transposed view: same memory, shape (n, m), the other layout."""
        self._live()
        return Matrix(self.runtime, self.n, self.m, self.dtype,
                      "col" if self.layout == "row" else "row",
                      owner=self._owner, offset=self.offset, ld=self.ld)

    @property
    def contiguous(self) -> bool:
        return self.ld == (self.n if self.layout == "row" else self.m)

    def _describe(self) -> str:
        extra = "" if self.contiguous and self.offset == 0 else (
            f", offset={self.offset}, ld={self.ld}")
        kind = "Matrix view" if self.is_view else "Matrix"
        return (f"clnn.{kind}({self.dtype.name}, shape=({self.m}, {self.n}), "
                f"layout={self.layout!r}{extra})")

    def _span(self) -> int:
        if self.layout == "row":
            return (self.m - 1) * self.ld + self.n
        return (self.n - 1) * self.ld + self.m

    def _host_view(self, host: np.ndarray) -> np.ndarray:
        isz = self.itemsize
        strides = (self.ld * isz, isz) if self.layout == "row" else (isz, self.ld * isz)
        return np.lib.stride_tricks.as_strided(host, (self.m, self.n), strides)

    def to_numpy(self) -> np.ndarray:
        """A new numpy array (C order for "row", Fortran order for "col")."""
        host = self._read_span()
        if self.contiguous:
            order = "C" if self.layout == "row" else "F"
            return host.reshape(self.shape, order=order)
        order = "C" if self.layout == "row" else "F"
        return np.array(self._host_view(host), order=order)

    def set(self, data: Any) -> Matrix:
        """Overwrite the values from numpy data of the same shape; returns ``self``."""
        self._live()
        arr = host_array(data, self.dtype, 2, "Matrix.set")
        if arr.shape != self.shape:
            raise ShapeError(f"Matrix.set: data of shape {arr.shape} into a matrix of "
                             f"shape {self.shape}")
        if self.contiguous:
            flat = arr.ravel(order="C" if self.layout == "row" else "F")
            self._write_span(np.ascontiguousarray(flat))
        else:
            host = self._read_span()
            self._host_view(host)[...] = arr
            self._write_span(host)
        return self

    # ---- views ----------------------------------------------------------------------------
    def _at(self, i: int, j: int) -> int:
        """Element offset of (i, j) in the owner's buffer."""
        if self.layout == "row":
            return self.offset + i * self.ld + j
        return self.offset + i + j * self.ld

    def submatrix(self, i: int, j: int, m: int, n: int) -> Matrix:
        """The ``m x n`` view whose top-left element is ``(i, j)`` (same layout and ``ld``).

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix(np.arange(12.0).reshape(3, 4))
            ...     print(a.submatrix(1, 1, 2, 2).to_numpy())
            [[ 5.  6.]
             [ 9. 10.]]
        """
        self._live()
        i = _index(i, "submatrix: row")
        j = _index(j, "submatrix: column")
        m = _index(m, "submatrix: rows")
        n = _index(n, "submatrix: columns")
        if m < 1 or n < 1:
            raise ShapeError(f"submatrix: shape ({m}, {n}) must be at least (1, 1)")
        if i < 0 or j < 0 or i + m > self.m or j + n > self.n:
            raise ShapeError(f"submatrix: ({m}, {n}) at ({i}, {j}) does not fit in "
                             f"{self._describe()}")
        return Matrix(self.runtime, m, n, self.dtype, self.layout, owner=self._owner,
                      offset=self._at(i, j), ld=self.ld)

    def row(self, i: int) -> Vector:
        """Row ``i`` as a vector view (stride 1 in "row" layout, ``ld`` in "col")."""
        self._live()
        i = _index(i, "row: index")
        if not 0 <= i < self.m:
            raise ShapeError(f"row: index {i} out of range for {self._describe()}")
        return Vector(self.runtime, self.n, self.dtype, owner=self._owner, offset=self._at(i, 0),
                      stride=1 if self.layout == "row" else self.ld)

    def col(self, j: int) -> Vector:
        """Column ``j`` as a vector view (stride 1 in "col" layout, ``ld`` in "row")."""
        self._live()
        j = _index(j, "col: index")
        if not 0 <= j < self.n:
            raise ShapeError(f"col: index {j} out of range for {self._describe()}")
        return Vector(self.runtime, self.m, self.dtype, owner=self._owner, offset=self._at(0, j),
                      stride=1 if self.layout == "col" else self.ld)

    def as_vector(self) -> Vector:
        """All elements as one vector view, in storage order (contiguous matrices only)."""
        self._live()
        if not self.contiguous:
            raise ShapeError(f"as_vector: {self._describe()} is not contiguous (ld != "
                             f"{'n' if self.layout == 'row' else 'm'}); copy it first")
        return Vector(self.runtime, self.m * self.n, self.dtype, owner=self._owner,
                      offset=self.offset)

    def __getitem__(self, key: Any) -> Any:
        """``a[i0:i1, j0:j1]`` (unit steps) is a submatrix, ``a[i, :]`` a row view and
        ``a[:, j]`` a column view; all share memory."""
        if not (isinstance(key, tuple) and len(key) == 2):
            raise OperandError(f"Matrix[]: index with two slices, a[i0:i1, j0:j1], not {key!r}")
        ki, kj = key
        self._live()
        if not isinstance(ki, slice):
            i = _index(ki, "Matrix[]: row")
            i = i + self.m if i < 0 else i
            j0, nj, sj = _slice(kj, self.n, "Matrix[]")
            return self.row(i).subvector(j0, nj, sj)
        if not isinstance(kj, slice):
            j = _index(kj, "Matrix[]: column")
            j = j + self.n if j < 0 else j
            i0, ni, si = _slice(ki, self.m, "Matrix[]")
            return self.col(j).subvector(i0, ni, si)
        i0, ni, si = _slice(ki, self.m, "Matrix[]")
        j0, nj, sj = _slice(kj, self.n, "Matrix[]")
        if si != 1 or sj != 1:
            raise ShapeError("Matrix[]: a submatrix view needs unit slice steps")
        return self.submatrix(i0, j0, ni, nj)


def submatrix(a: Matrix, i: int, j: int, m: int, n: int) -> Matrix:
    """``a.submatrix(i, j, m, n)``: a view sharing ``a``'s memory."""
    if not isinstance(a, Matrix):
        raise OperandError(f"submatrix: expected a clnn.Matrix, got {type(a).__name__}")
    return a.submatrix(i, j, m, n)


def check_size(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ShapeError(f"{what}: size {n!r} is not an integer")
    n = int(n)
    if n < 1:
        raise ShapeError(f"{what}: size {n} must be >= 1")
    if n > _MAX_INT:
        raise OutOfMemoryError(f"{what}: size {n} exceeds the 2**31-1 elements clnn indexes")
    return n
