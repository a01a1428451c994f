"""Creating arrays: what a runtime offers to make vectors and matrices, uninitialised, filled,
shaped like another array, or from host data, pyopencl arrays and other runtimes' arrays.

:class:`Creation` is the part of :class:`clnn.Runtime` that makes arrays (the runtime derives
from it); every method is reached as ``rt.vector(...)``, ``rt.zeros(...)``, ... Host data goes
through the conversion rules of :func:`clnn.dtypes.host_array`; a dtype left out is the
runtime's (``Runtime(dtype=...)``, float32 unless given).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     print(rt.zeros((2, 3), layout="col").layout, rt.arange(3).to_numpy())
    col [0. 1. 2.]
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

import numpy as np

from . import interop
from .array import Array, Matrix, Vector
from .dtypes import LAYOUTS, as_dtype, check_size, host_array, scalar_value
from .errors import OperandError, OutOfMemoryError, ShapeError
from .memory import Memory

__all__ = ["Creation"]


class Creation(Memory):
    """The array-creation methods of :class:`clnn.Runtime` (``dtype``: its default dtype)."""

    dtype: np.dtype

    def vector(self, data_or_length: Any, dtype: Any = None) -> Vector:
        """A new vector: uninitialised of a given length, or a copy of 1-d data.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     print(rt.vector(3).shape, rt.vector([1.5, 2]).to_numpy())
            (3,) [1.5 2. ]
        """
        self._live()
        if isinstance(data_or_length, (int, np.integer)) and not isinstance(
                data_or_length, bool):
            n = check_size(data_or_length, "vector")
            dt = as_dtype(self.dtype if dtype is None else dtype)
            buf, nb = self._alloc(n, dt, "vector")
            return self._register(Vector(self, n, dt, buf=buf, nbytes=nb))
        arr = host_array(_host(data_or_length), dtype, 1, "vector", default=self.dtype)
        v = self.vector(arr.shape[0], arr.dtype)
        with _released_on_error(v):
            v._write_span(np.ascontiguousarray(arr))
        return v

    def matrix(self, data_or_shape: Any, layout: Optional[str] = None,
               dtype: Any = None, shape: Optional[tuple] = None) -> Matrix:
        """A new matrix: uninitialised of a given ``(m, n)`` shape, or a copy of 2-d data.

        ``layout`` is "row" or "col"; None keeps a numpy array's memory order (C: "row",
        Fortran: "col") and makes everything else "row". With ``shape=(m, n)``, data of
        ``m*n`` elements (flat, or of any 2-d shape) is read in the layout's order: numpy's
        ``reshape(m, n, order='C')`` for "row" (the default), ``order='F'`` for "col".

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix(np.asfortranarray(np.eye(2)))
            ...     print(a.layout, a.dtype)
            ...     print(rt.matrix([1, 2, 3, 4, 5, 6], shape=(2, 3), layout="col").to_numpy())
            col float64
            [[1. 3. 5.]
             [2. 4. 6.]]
        """
        self._live()
        if layout is not None and layout not in LAYOUTS:
            raise ShapeError(f"matrix: layout {layout!r} is not 'row' or 'col'")
        if isinstance(data_or_shape, tuple) and len(data_or_shape) == 2 and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                for s in data_or_shape):
            if shape is not None:
                raise ShapeError("matrix: shape= goes with data; give the shape or the data")
            m = check_size(data_or_shape[0], "matrix rows")
            n = check_size(data_or_shape[1], "matrix columns")
            if m * n > 2**31 - 1:
                raise OutOfMemoryError(f"matrix: {m}x{n} exceeds the 2**31-1 elements clnn "
                                       "indexes")
            dt = as_dtype(self.dtype if dtype is None else dtype)
            buf, nb = self._alloc(m * n, dt, "matrix")
            return self._register(Matrix(self, m, n, dt, layout or "row", buf=buf, nbytes=nb))
        if isinstance(data_or_shape, Matrix) and layout is None:
            layout = data_or_shape.layout
        data = _host(data_or_shape)
        if shape is not None:
            m, n = _shape2(shape, "matrix")
            arr = host_array(data, dtype, None, "matrix", default=self.dtype)
            if arr.size != m * n:
                raise ShapeError(f"matrix: {arr.size} elements (shape {arr.shape}) cannot "
                                 f"fill shape {(m, n)}")
            layout = layout or "row"
            arr = arr.reshape((m, n), order="C" if layout == "row" else "F")
        else:
            arr = host_array(data, dtype, 2, "matrix", default=self.dtype)
        if layout is None:
            if arr.flags.f_contiguous and not arr.flags.c_contiguous:
                layout = "col"
            else:
                layout = "row"
        flat = arr.ravel(order="C" if layout == "row" else "F")
        mat = self.matrix(arr.shape, layout=layout, dtype=arr.dtype)
        with _released_on_error(mat):
            mat._write_span(np.ascontiguousarray(flat))
        return mat

    # ---- creation, array-API style ----------------------------------------------------------
    def empty(self, shape: Union[int, tuple], dtype: Any = None,
              layout: str = "row") -> Union[Vector, Matrix]:
        """An uninitialised vector (``shape`` an int or 1-tuple) or matrix (a 2-tuple).

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     print(rt.empty(3).shape, rt.empty((2, 3), layout="col").layout)
            (3,) col
        """
        self._live()
        if layout not in LAYOUTS:
            raise ShapeError(f"empty: layout {layout!r} is not 'row' or 'col'")
        dims = _dims(shape, "empty")
        if len(dims) == 1:
            return self.vector(dims[0], dtype=dtype)
        return self.matrix(dims, layout=layout, dtype=dtype)

    def full(self, shape: Union[int, tuple], fill_value: Any, dtype: Any = None,
             layout: str = "row") -> Union[Vector, Matrix]:
        """A vector or matrix with every element ``fill_value`` (filled on the device). A
        value the dtype cannot hold raises :class:`clnn.DTypeError` unless ``dtype`` is given.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     print(rt.full((2, 2), 0.5).to_numpy().tolist(), rt.ones(2).to_numpy())
            [[0.5, 0.5], [0.5, 0.5]] [1. 1.]
        """
        self._live()
        dt = as_dtype(self.dtype if dtype is None else dtype)
        if dtype is None:
            scalar_value(fill_value, dt, "full")  # refused before anything is allocated
        elif isinstance(fill_value, Array) or np.ndim(fill_value) != 0:
            raise OperandError(f"full: fill_value must be a number, got "
                               f"{type(fill_value).__name__}")
        arr = self.empty(shape, dtype=dt, layout=layout)
        with _released_on_error(arr):
            return _fill(arr, fill_value, dtype is not None)

    def zeros(self, shape: Union[int, tuple], dtype: Any = None,
              layout: str = "row") -> Union[Vector, Matrix]:
        """A zero-filled vector (``shape`` an int or 1-tuple) or matrix (2-tuple)."""
        return self.full(shape, 0, dtype=dtype, layout=layout)

    def ones(self, shape: Union[int, tuple], dtype: Any = None,
             layout: str = "row") -> Union[Vector, Matrix]:
        """A vector or matrix of ones."""
        return self.full(shape, 1, dtype=dtype, layout=layout)

    def _like(self, a: Any, dtype: Any, layout: Optional[str], what: str) -> tuple:
        """(shape, dtype, layout) for ``*_like(a)``: ``a`` a clnn or numpy array."""
        if isinstance(a, Array):
            a._live()
            lay = a.layout if isinstance(a, Matrix) else "row"
            dt = a.dtype
        elif isinstance(a, np.ndarray):
            lay = "col" if a.flags.f_contiguous and not a.flags.c_contiguous else "row"
            dt = a.dtype if a.dtype in (np.float32, np.float64) else self.dtype
        else:
            raise OperandError(f"{what}: expected a clnn or numpy array, got "
                               f"{type(a).__name__}")
        if a.ndim not in (1, 2):
            raise ShapeError(f"{what}: clnn arrays are 1-d or 2-d, not shape {a.shape}")
        return a.shape, (dt if dtype is None else dtype), (layout or lay)

    def empty_like(self, a: Any, dtype: Any = None,
                   layout: Optional[str] = None) -> Union[Vector, Matrix]:
        """An uninitialised array of ``a``'s shape, dtype and layout (each may be changed).

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix([[1, 2, 3]], layout="col")
            ...     b = rt.zeros_like(a, dtype=np.float64 if rt.device.fp64 else None)
            ...     print(b.shape, b.layout, rt.full_like(a, 2).to_numpy())
            (1, 3) col [[2. 2. 2.]]
        """
        shape, dt, lay = self._like(a, dtype, layout, "empty_like")
        return self.empty(shape, dtype=dt, layout=lay)

    def zeros_like(self, a: Any, dtype: Any = None,
                   layout: Optional[str] = None) -> Union[Vector, Matrix]:
        """Zeros of ``a``'s shape, dtype and layout (see :meth:`empty_like`)."""
        shape, dt, lay = self._like(a, dtype, layout, "zeros_like")
        return self.full(shape, 0, dtype=dt, layout=lay)

    def ones_like(self, a: Any, dtype: Any = None,
                  layout: Optional[str] = None) -> Union[Vector, Matrix]:
        """Ones of ``a``'s shape, dtype and layout (see :meth:`empty_like`)."""
        shape, dt, lay = self._like(a, dtype, layout, "ones_like")
        return self.full(shape, 1, dtype=dt, layout=lay)

    def full_like(self, a: Any, fill_value: Any, dtype: Any = None,
                  layout: Optional[str] = None) -> Union[Vector, Matrix]:
        """``fill_value`` in ``a``'s shape, dtype and layout (see :meth:`empty_like`); a value
        the dtype cannot hold raises :class:`clnn.DTypeError` unless ``dtype`` is given."""
        shape, dt, lay = self._like(a, None, layout, "full_like")
        if dtype is not None:
            return self.full(shape, fill_value, dtype=dtype, layout=lay)
        arr = self.empty(shape, dtype=dt, layout=lay)
        with _released_on_error(arr):
            return _fill(arr, fill_value, False)

    def arange(self, start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Vector:
        """The vector ``start, start + step, ...`` below ``stop`` (numpy's ``arange``; one
        argument is ``stop``). Computed on the host, in the runtime's dtype unless ``dtype``
        is given; an integer the dtype cannot hold exactly raises :class:`clnn.DTypeError`.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     print(rt.arange(4).to_numpy(), rt.arange(1, 2, 0.25).to_numpy())
            [0. 1. 2. 3.] [1.   1.25 1.5  1.75]
        """
        self._live()
        if stop is None:
            start, stop = 0, start
        for name, x in (("start", start), ("stop", stop), ("step", step)):
            if isinstance(x, (bool, np.bool_)) or not isinstance(
                    x, (int, float, np.integer, np.floating)):
                raise OperandError(f"arange: {name} must be a real number, got {x!r}")
        if step == 0:
            raise ShapeError("arange: step must not be 0")
        host = np.arange(start, stop, step)
        if host.size == 0:
            raise ShapeError(f"arange({start}, {stop}, {step}) has no elements; sizes must "
                             "be >= 1")
        dt = self.dtype if dtype is None else dtype
        return self.vector(host_array(host, dt, 1, "arange", convert=dtype is not None))

    def asarray(self, obj: Any, dtype: Any = None,
                layout: Optional[str] = None) -> Union[Vector, Matrix]:
        """``obj`` as an array of this runtime, copied only when it must be (numpy's
        ``asarray``): 1-d data gives a vector, 2-d a matrix.

        * a clnn array of this runtime with that dtype (and layout) is returned as is;
          another dtype or layout gives a converted copy; another runtime's is copied;
        * a ``pyopencl.array.Array`` of this runtime's context is wrapped without a copy
          (see :mod:`clnn.interop`); of another context, copied;
        * numpy arrays, lists and nested lists are copied with the conversion rules of
          ``rt.vector`` (no value may change unless ``dtype`` asks for the conversion);
        * a scalar (a Python or numpy number, a 0-d array) becomes a 1-element vector, as
          ``np.atleast_1d`` would make it: clnn arrays have one or two dimensions.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     v = rt.asarray([1, 2, 3])
            ...     print(rt.asarray(v) is v, rt.asarray([[1, 2]], layout="col").layout)
            True col
        """
        self._live()
        if layout is not None and layout not in LAYOUTS:
            raise ShapeError(f"asarray: layout {layout!r} is not 'row' or 'col'")
        if isinstance(obj, Array):
            obj._live()
            if obj.runtime is self:
                out = obj if dtype is None else obj.astype(dtype, copy=False)
                if isinstance(out, Matrix) and layout is not None and layout != out.layout:
                    moved = out.copy(layout=layout)
                    if out is not obj:
                        out.release()
                    out = moved
                return out
            if layout is None and isinstance(obj, Matrix):
                layout = obj.layout
            obj = obj.to_numpy()  # another runtime: through the host
        elif interop.is_pyopencl_array(obj):
            shared = interop.view(self, obj, dtype, layout)
            if shared is not None:
                return shared
            obj = interop.to_host(obj)
        if np.ndim(obj) == 0 and not isinstance(obj, (str, bytes)):
            obj = np.reshape(obj, 1) if isinstance(obj, (np.ndarray, np.generic)) else [obj]
        arr = host_array(obj, dtype, None, "asarray", default=self.dtype)
        if arr.ndim == 1:
            return self.vector(arr)
        return self.matrix(arr, layout=layout)


def _host(data: Any) -> Any:
    """``data``, a clnn array read to the host (numpy data keeps its dtype)."""
    return data.to_numpy() if isinstance(data, Array) else data


@contextmanager
def _released_on_error(arr: Array) -> Iterator[Array]:
    """Release the new ``arr`` when the block that fills it raises, so a failed creation
    leaves no buffer behind."""
    try:
        yield arr
    except BaseException:
        arr.release()
        raise


def _fill(arr: Any, value: Any, explicit: bool) -> Any:
    """``arr.fill(value)``; ``explicit``: the caller asked for the dtype (convert freely)."""
    v = np.asarray(value) if explicit and not isinstance(value, Array) else None
    if v is not None and v.ndim == 0 and v.dtype.kind in "biuf":
        with np.errstate(over="ignore", invalid="ignore"):
            value = v.astype(arr.dtype)[()]
    return arr.fill(value)


def _dims(shape: Any, what: str) -> tuple:
    """A shape as a 1- or 2-tuple of sizes (an int is a 1-d shape)."""
    if isinstance(shape, (list, tuple)):
        if len(shape) not in (1, 2):
            raise ShapeError(f"{what}: clnn arrays are 1-d or 2-d, not shape {tuple(shape)}")
        return tuple(check_size(d, what) for d in shape)
    return (check_size(shape, what),)


def _shape2(shape: Any, what: str) -> tuple:
    dims = _dims(shape, what)
    if len(dims) != 2:
        raise ShapeError(f"{what}: shape= must be (m, n), not {shape!r}")
    return dims
