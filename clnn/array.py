"""Vectors and matrices: the shapes of device arrays, their layouts, and the views that share
their memory (the buffer, its owner and its lifetime are :mod:`clnn.buffer`'s).

Every array belongs to one :class:`clnn.Runtime`. Views never copy: ``v.subvector(off, n,
stride)`` / ``v[i:j:k]``, ``a.submatrix(i, j, m, n)`` / ``a[i0:i1, j0:j1]``, ``a.row(i)``,
``a.col(j)`` (a strided vector when the layout makes it so), ``a.T`` and ``a.as_vector()``, and
``a[i]`` (row i). Writing through a view changes the parent. A view that would reach outside
its parent raises :class:`clnn.ShapeError`; views need positive steps (``v[::-1]`` raises it
too). Releasing the owner, or the runtime, releases every view of it.

An integer per axis reads one element as a Python float (``v[-1]``, ``a[i, j]``); iterating a
vector reads it once, iterating a matrix gives its rows. The Python operators (``a @ b``,
``x + y``, ``v += w``, ``x == y``, ...) and assignment (``v[2:5] = 0``, ``a[1] = w``) are
declared in :class:`clnn.buffer.Array` and computed on the device by :mod:`clnn.operators`.

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

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .buffer import Array
from .dtypes import LAYOUTS, as_dtype, check_size, host_array, scalar_value
from .errors import OperandError, ShapeError
from .indexing import element, index, is_index, slice_of, target_shape

if TYPE_CHECKING:  # pragma: no cover
    from .memory import Memory

__all__ = ["Array", "Vector", "Matrix", "as_dtype", "LAYOUTS", "subvector", "submatrix",
           "host_array", "scalar_value", "check_size"]


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

    def __init__(self, runtime: Memory, n: int, dtype: np.dtype, owner=None, buf=None,
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

    def _dense(self) -> bool:
        return self.stride == 1

    def _flat_in(self, order: str) -> bool:
        return self.stride == 1

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
        arr = host_array(data, self.dtype, 1, "Vector.set", convert=False)
        if arr.shape != (self.n,):
            raise ShapeError(f"Vector.set: data of shape {arr.shape} into a vector of {self.n}")
        if self.stride == 1:
            self._write_span(np.ascontiguousarray(arr))
        else:
            host = self._read_span()
            host[:: self.stride] = arr
            self._write_span(host)
        return self

    def reshape(self, *shape: Any, layout: Optional[str] = None) -> Array:
        """The same elements in a new shape: a vector for one dimension, a matrix for two
        (one may be -1). Elements are read and placed in ``layout``'s order ("row": numpy's
        ``order='C'``, "col": ``order='F'``; "row" unless given; a matrix's default is its own
        layout). When the elements already lie in that order in one stretch of memory (a
        contiguous vector, a contiguous matrix read in its layout) the result is a view;
        otherwise it is a new array (a copy on the device), as numpy does.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     v = rt.vector([1, 2, 3, 4, 5, 6])
            ...     a = v.reshape(2, 3)
            ...     b = v.reshape(2, -1, layout="col")
            ...     print(a.to_numpy().tolist(), a.base is v, b.to_numpy().tolist())
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] True [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]
        """
        return _reshape(self, shape, layout, "row")

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
        offset = index(offset, "subvector: offset")
        n = index(n, "subvector: length")
        stride = index(stride, "subvector: stride")
        if stride < 1:
            raise ShapeError(f"subvector: stride {stride} must be >= 1")
        if n < 1:
            raise ShapeError(f"subvector: length {n} must be >= 1")
        if offset < 0 or offset + (n - 1) * stride >= self.n:
            raise ShapeError(f"subvector: {n} elements from {offset} with stride {stride} do "
                             f"not fit in {self._describe()}")
        return Vector(self.runtime, n, self.dtype, owner=self._owner,
                      offset=self.offset + offset * self.stride, stride=self.stride * stride)

    def _resolve(self, key: Any, op: str) -> Any:
        self._live()
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if is_index(key):
            return self.offset + element(key, self.n, op) * self.stride
        if key is Ellipsis:
            return self.subvector(0, self.n)
        start, count, step = slice_of(key, self.n, op)
        return self.subvector(start, count, step)

    def __iter__(self):
        """The elements as Python floats, from one read."""
        return iter(self.to_numpy().tolist())


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

    def __init__(self, runtime: Memory, m: int, n: int, dtype: np.dtype, layout: str,
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

    def _dense(self) -> bool:
        return self.contiguous

    def _flat_in(self, order: str) -> bool:
        return self.contiguous and (order == self.layout or self.m == 1 or self.n == 1)

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
        arr = host_array(data, self.dtype, 2, "Matrix.set", convert=False)
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

    def reshape(self, *shape: Any, layout: Optional[str] = None) -> Array:
        """The same elements in a new shape, read in ``layout``'s order (the matrix's own
        layout unless given): a view when they lie in that order in one stretch of memory,
        else a copy on the device (see :meth:`Vector.reshape`).

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix([[1, 2], [3, 4]], layout="col")
            ...     print(a.reshape(4).to_numpy(), a.reshape(-1, layout="row").to_numpy())
            [1. 3. 2. 4.] [1. 2. 3. 4.]
        """
        return _reshape(self, shape, layout, self.layout)

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
        i = index(i, "submatrix: row")
        j = index(j, "submatrix: column")
        m = index(m, "submatrix: rows")
        n = index(n, "submatrix: columns")
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
        i = index(i, "row: index")
        if not 0 <= i < self.m:
            raise ShapeError(f"row: index {i} out of range for {self._describe()}")
        return Vector(self.runtime, self.n, self.dtype, owner=self._owner, offset=self._at(i, 0),
                      stride=1 if self.layout == "row" else self.ld)

    def col(self, j: int) -> Vector:
        """Column ``j`` as a vector view (stride 1 in "col" layout, ``ld`` in "row")."""
        self._live()
        j = index(j, "col: index")
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

    def _resolve(self, key: Any, op: str) -> Any:
        """``a[i, j]`` is element (i, j); ``a[i0:i1, j0:j1]`` (unit steps) a submatrix,
        ``a[i]`` / ``a[i, :]`` a row view and ``a[:, j]`` a column view, all sharing memory."""
        self._live()
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) <= 2 and any(k is Ellipsis for k in key):  # a[...], a[..., j], a[i, ...]
            key = tuple(slice(None) if k is Ellipsis else k for k in key)
        if len(key) == 1:
            key = (key[0], slice(None))
        if len(key) != 2:
            raise OperandError(f"{op}: a matrix takes one or two indices (a[i, j], a[i], "
                               f"a[i0:i1, j0:j1]), not {len(key)}")
        ki, kj = key
        if is_index(ki) and is_index(kj):
            return self._at(element(ki, self.m, op + " row"),
                            element(kj, self.n, op + " column"))
        if is_index(ki):
            j0, nj, sj = slice_of(kj, self.n, op)
            return self.row(element(ki, self.m, op + " row")).subvector(j0, nj, sj)
        if is_index(kj):
            i0, ni, si = slice_of(ki, self.m, op)
            return self.col(element(kj, self.n, op + " column")).subvector(i0, ni, si)
        i0, ni, si = slice_of(ki, self.m, op)
        j0, nj, sj = slice_of(kj, self.n, op)
        if si != 1 or sj != 1:
            raise ShapeError(f"{op}: a submatrix view needs unit slice steps")
        return self.submatrix(i0, j0, ni, nj)

    def __iter__(self):
        """The rows, as vector views (numpy iterates over the first axis)."""
        return (self.row(i) for i in range(self.m))


def submatrix(a: Matrix, i: int, j: int, m: int, n: int) -> Matrix:
    """``a.submatrix(i, j, m, n)``: a view sharing ``a``'s memory."""
    if not isinstance(a, Matrix):
        raise OperandError(f"submatrix: expected a clnn.Matrix, got {type(a).__name__}")
    return a.submatrix(i, j, m, n)


def _reshape(a: Array, shape: tuple, layout: Optional[str], default: str) -> Array:
    """``a.reshape(*shape, layout=layout)``; ``default``: the order when no layout is given."""
    a._live()
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = target_shape(shape, a.size)
    order = layout if layout is not None else default
    if order not in LAYOUTS:
        raise ShapeError(f"reshape: layout {order!r} is not 'row' or 'col'")
    if a._flat_in(order):
        return _shaped(a.runtime, a.dtype, shape, order, owner=a._owner, offset=a.offset)
    dense = a.copy(layout=order)  # a new owner, one stretch in ``order``
    if isinstance(dense, Vector) and len(shape) == 1:
        return dense
    rt = dense.runtime  # the new owner takes over dense's buffer (just made, unshared)
    with rt._lock:
        buf, nbytes = dense._hand_over()
        return rt._register(_shaped(rt, dense.dtype, shape, order, buf=buf, nbytes=nbytes))


def _shaped(rt: Memory, dt: np.dtype, shape: tuple, order: str, **where: Any) -> Array:
    """A vector (1-d ``shape``) or a matrix in layout ``order``; ``where``: owner and offset
    (a view), or buf and nbytes (a new owner)."""
    if len(shape) == 1:
        return Vector(rt, shape[0], dt, **where)
    return Matrix(rt, shape[0], shape[1], dt, order, **where)
