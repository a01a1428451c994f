"""Device buffers: :class:`Vector` and :class:`Matrix`, and the views that share their memory.

Every array belongs to one :class:`clnn.Runtime`. The array that allocated the OpenCL buffer
is its *owner*; views (``a.T``, and later sub-vectors and sub-matrices) point at the owner's
memory with their own offset, stride or leading dimension. Releasing the owner, or the runtime,
releases every view of it; any later use raises :class:`clnn.ReleasedError`.

Views never copy: ``v.subvector(off, n, stride)`` / ``v[i:j:k]``, ``a.submatrix(i, j, m, n)`` /
``a[i0:i1, j0:j1]``, ``a.row(i)``, ``a.col(j)`` (a strided vector when the layout makes it so),
``a.T`` and ``a.as_vector()``, and ``a[i]`` (row i). Writing through a view changes the
parent. A view that would reach outside its parent raises :class:`clnn.ShapeError`; views
need positive steps (``v[::-1]`` raises it too).

An integer per axis reads one element as a Python float (``v[-1]``, ``a[i, j]``); iterating a
vector reads it once, iterating a matrix gives its rows. The Python operators (``a @ b``,
``x + y``, ``v += w``, ``x == y``, ...) and assignment (``v[2:5] = 0``, ``a[1] = w``) are
declared here and computed on the device by :mod:`clnn.operators`.

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


def host_array(data: Any, dtype: Any, ndim: Optional[int], what: str,
               default: Any = np.float32, convert: Optional[bool] = None) -> np.ndarray:
    """``data`` as a numpy array of ``ndim`` dims (None: 1 or 2) and a float dtype.

    The dtype is ``dtype``, else a numpy float32/float64 array's own, else ``default``. This
    is the one place host data is converted for the device, and a conversion never changes a
    value silently: unless ``convert`` (default: ``dtype`` was given, the caller asked for
    that dtype) it raises :class:`DTypeError` for an integer the dtype cannot hold exactly, a
    finite number that would become inf, and float16 data. Rounding to the nearest float
    (0.1 in float32) is not a change of value here, as in numpy. Complex, object and text
    data are always refused. Data that already has the dtype is returned as is (no pass).
    """
    if isinstance(data, Array):
        data._live()
        data = data.to_numpy()
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
    elif keep and arr.dtype in _FLOATS:
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


def _ops():
    """:mod:`clnn.operators`, imported at first use (it imports the kernels, which import
    this module)."""
    from . import operators

    return operators


def _is_index(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _element(k: Any, length: int, what: str) -> int:
    """An integer index (negative counts from the end) checked against ``length``."""
    i = int(k)
    if not -length <= i < length:
        raise ShapeError(f"{what}: index {i} is out of range for length {length}")
    return i + length if i < 0 else i


def _index(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ShapeError(f"{what} {v!r} is not an integer")
    return int(v)


def _slice(key: Any, length: int, what: str) -> tuple:
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
                if not self.runtime._released and not getattr(self._buf, "_clnn_borrowed",
                                                              False):
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

    # ---- creation and conversion ----------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes of the elements: ``size * itemsize``, as in numpy (a view counts its own)."""
        return self.size * self.itemsize

    def _dense(self) -> bool:
        """True when the elements fill one unbroken stretch of memory."""
        raise NotImplementedError

    def _flat_in(self, order: str) -> bool:
        """True when the elements are one unbroken stretch in ``order`` ("row": C, "col": F)."""
        raise NotImplementedError

    def copy(self, layout: Optional[str] = None) -> Array:
        """A new array with the same values, copied on the device. A matrix keeps its layout
        unless ``layout`` names the other one (the copy then transposes in memory); views
        become contiguous.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix([[1, 2], [3, 4]])
            ...     b = a.copy(layout="col")
            ...     print(b.layout, b.to_numpy().tolist(), b.base is b)
            col [[1.0, 2.0], [3.0, 4.0]] True
        """
        self._live()
        if layout is not None and layout not in LAYOUTS:
            raise ShapeError(f"copy: layout {layout!r} is not 'row' or 'col'")
        from .blas1 import copy as blas_copy  # the kernels import this module

        rt = self.runtime
        if isinstance(self, Matrix):
            out = rt.matrix(self.shape, layout=layout or self.layout, dtype=self.dtype)
        else:
            out = rt.vector(self.n, dtype=self.dtype)
        try:
            return blas_copy(self, out=out)
        except BaseException:
            out.release()
            raise

    def astype(self, dtype: Any, copy: bool = True) -> Array:
        """A new array of ``dtype`` with the values converted (numpy's rounding; asking for a
        dtype is asking for the conversion, so 1e300 becomes inf in float32). The same dtype
        gives ``copy()``, or ``self`` with ``copy=False``. A change of dtype goes through the
        host (one read, one write).

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     print(rt.vector([1.5, 2]).astype(np.float64).dtype)
            float64
        """
        dt = as_dtype(dtype)
        self._live()
        if dt == self.dtype:
            return self.copy() if copy else self
        self.runtime._check_dtype(dt)
        with np.errstate(over="ignore"):
            host = self.to_numpy().astype(dt)
        if isinstance(self, Matrix):
            return self.runtime.matrix(host, layout=self.layout)
        return self.runtime.vector(host)

    def reshape(self, *shape: Any, layout: Optional[str] = None) -> Array:
        """The same elements in a new shape: a vector for one dimension, a matrix for two
        (one may be -1). Elements are read and placed in ``layout``'s order ("row": numpy's
        ``order='C'``, "col": ``order='F'``); the default is a matrix's own layout, and "row"
        for a vector. When the elements already lie in that order in one stretch of memory
        (a contiguous vector, a contiguous matrix read in its layout) the result is a view;
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
        self._live()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = _target_shape(shape, self.size)
        order = layout if layout is not None else (
            self.layout if isinstance(self, Matrix) else "row")
        if order not in LAYOUTS:
            raise ShapeError(f"reshape: layout {order!r} is not 'row' or 'col'")
        if self._flat_in(order):
            return _flat(self, self._owner, self.offset, shape, order)
        dense = self.copy(layout=order)  # a new owner, one stretch in ``order``
        if isinstance(dense, Vector) and len(shape) == 1:
            return dense
        return _adopt(dense, shape, order)

    def fill(self, value: Any) -> Array:
        """Set every element to ``value`` on the device (no host transfer); returns ``self``.
        A value the dtype cannot hold raises :class:`DTypeError` (as for host data).

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.zeros((2, 3))
            ...     _ = a[:, 1:].fill(7)
            ...     print(a.to_numpy().tolist())
            [[0.0, 7.0, 7.0], [0.0, 7.0, 7.0]]
        """
        self._live()
        x = scalar_value(value, self.dtype, "fill")
        if self._dense():
            rt = self.runtime
            with rt._lock:
                self._live()
                cl.enqueue_fill_buffer(rt.queue, self._owner._buf, x, self.offset * self.itemsize,
                                       self.nbytes)
        else:
            from .elementwise import launch_map  # the kernels import this module

            launch_map("beta", self, [], beta=x)
        return self

    def to_pyopencl(self) -> Any:
        """A ``pyopencl.array.Array`` over this array's memory, on the runtime's queue (no
        copy): offset and strides follow the view (a strided vector has a stride, a matrix
        with ``ld`` larger than its rows has the matching strides). pyopencl code then
        computes on clnn data and clnn sees the result; both use the same in-order queue.
        The pyopencl array keeps this array's owner alive, but releasing the owner or the
        runtime frees the memory: the pyopencl array is then invalid.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix([[1, 2, 3], [4, 5, 6]], layout="col")
            ...     p = a.to_pyopencl()
            ...     print(p.shape, p.strides, p.base_data is a._buf)
            (2, 3) (4, 8) True
        """
        self._live()
        import pyopencl.array as cla

        isz = self.itemsize
        if isinstance(self, Matrix):
            strides = (self.ld * isz, isz) if self.layout == "row" else (isz, self.ld * isz)
        else:
            strides = (self.stride * isz,)
        ary = cla.Array(self.runtime.queue, self.shape, self.dtype, strides=strides,
                        data=self._owner._buf, offset=self.offset * isz)
        ary._clnn_base = self._owner  # the memory lives as long as its clnn owner
        return ary

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

    # ---- operators (numpy's meaning, on the device: clnn/operators.py) ---------------------
    __hash__ = None  # == compares elements, as in numpy: arrays are not dict keys
    __array_ufunc__ = None  # numpy defers: np.float32(2) * v and x_np + v call the methods below

    def __matmul__(self, other: Any) -> Any:
        return _ops().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _ops().matmul(self, other, reflected=True)

    def __add__(self, other: Any) -> Any:
        return _ops().binary("add", self, other)

    def __radd__(self, other: Any) -> Any:
        return _ops().binary("add", self, other, reflected=True)

    def __iadd__(self, other: Any) -> Any:
        return _ops().binary("add", self, other, inplace=True)

    def __sub__(self, other: Any) -> Any:
        return _ops().binary("sub", self, other)

    def __rsub__(self, other: Any) -> Any:
        return _ops().binary("sub", self, other, reflected=True)

    def __isub__(self, other: Any) -> Any:
        return _ops().binary("sub", self, other, inplace=True)

    def __mul__(self, other: Any) -> Any:
        return _ops().binary("mul", self, other)

    def __rmul__(self, other: Any) -> Any:
        return _ops().binary("mul", self, other, reflected=True)

    def __imul__(self, other: Any) -> Any:
        return _ops().binary("mul", self, other, inplace=True)

    def __truediv__(self, other: Any) -> Any:
        return _ops().binary("div", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _ops().binary("div", self, other, reflected=True)

    def __itruediv__(self, other: Any) -> Any:
        return _ops().binary("div", self, other, inplace=True)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return _ops().binary("eq", self, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return _ops().binary("ne", self, other)

    def __lt__(self, other: Any) -> Any:
        return _ops().binary("lt", self, other)

    def __le__(self, other: Any) -> Any:
        return _ops().binary("le", self, other)

    def __gt__(self, other: Any) -> Any:
        return _ops().binary("gt", self, other)

    def __ge__(self, other: Any) -> Any:
        return _ops().binary("ge", self, other)

    def __neg__(self) -> Any:
        return _ops().unary("neg", self)

    def __pos__(self) -> Any:
        return _ops().unary("pos", self)

    def __abs__(self) -> Any:
        return _ops().unary("abs", self)

    def __bool__(self) -> bool:
        if self.size != 1:
            raise OperandError(
                f"the truth value of {self._describe()} ({self.size} elements) is ambiguous; "
                "use (x == y).to_numpy().all() or .any()")
        return bool(self._read_at(self.offset))

    def __contains__(self, value: Any) -> bool:
        return value in self.to_numpy()

    # ---- element access -------------------------------------------------------------------
    def _read_at(self, off: int) -> float:
        """The element at ``off`` (elements, in the owner's buffer) as a Python float."""
        host = np.empty(1, self.dtype)
        rt = self.runtime
        with rt._lock:
            self._live()
            transfer.read(rt.queue, host, self._owner._buf, off * self.itemsize)
        return float(host[0])

    def _write_at(self, off: int, value: float) -> None:
        rt = self.runtime
        with rt._lock:
            self._live()
            cl.enqueue_copy(rt.queue, self._owner._buf, np.array([value], self.dtype),
                            dst_offset=off * self.itemsize, is_blocking=True)

    def _resolve(self, key: Any, op: str) -> Any:
        """The element offset (an int) or the view that ``self[key]`` names."""
        raise NotImplementedError

    def __getitem__(self, key: Any) -> Any:
        """An integer index per axis reads one element as a Python float (``v[-1]``,
        ``a[i, j]``); slices, a row index (``a[i]``) and ``...`` give views (no copy)."""
        target = self._resolve(key, f"{type(self).__name__}[]")
        return self._read_at(target) if isinstance(target, int) else target

    def __setitem__(self, key: Any, value: Any) -> None:
        """Write one element, or through a view from a scalar, a clnn array or host data
        (see :func:`clnn.operators.setitem`)."""
        _ops().setitem(self, key, value)

    # subclasses provide: shape, size, to_numpy, set, _describe, _resolve, __iter__


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

    def _resolve(self, key: Any, op: str) -> Any:
        self._live()
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if _is_index(key):
            return self.offset + _element(key, self.n, op) * self.stride
        if key is Ellipsis:
            return self.subvector(0, self.n)
        start, count, step = _slice(key, self.n, op)
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
        if _is_index(ki) and _is_index(kj):
            return self._at(_element(ki, self.m, op + " row"),
                            _element(kj, self.n, op + " column"))
        if _is_index(ki):
            j0, nj, sj = _slice(kj, self.n, op)
            return self.row(_element(ki, self.m, op + " row")).subvector(j0, nj, sj)
        if _is_index(kj):
            i0, ni, si = _slice(ki, self.m, op)
            return self.col(_element(kj, self.n, op + " column")).subvector(i0, ni, si)
        i0, ni, si = _slice(ki, self.m, op)
        j0, nj, sj = _slice(kj, self.n, op)
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


def scalar_value(value: Any, dt: np.dtype, what: str) -> Any:
    """``value`` as a numpy scalar of ``dt``, with :func:`host_array`'s conversion rules."""
    if isinstance(value, Array) or np.ndim(value) != 0:
        raise OperandError(f"{what}: expected a number, got {type(value).__name__}")
    return host_array([value], None, 1, what, default=dt)[0]


def _target_shape(shape: tuple, size: int) -> tuple:
    """The 1-d or 2-d ``shape`` for ``size`` elements, with one -1 worked out."""
    if len(shape) not in (1, 2):
        raise ShapeError(f"reshape: clnn arrays are 1-d or 2-d, not shape {shape}")
    dims = [_index(d, "reshape: dimension") for d in shape]
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


def _flat(src: Array, owner: Array, offset: int, shape: tuple, order: str) -> Array:
    """A view of ``owner``'s memory from ``offset``, elements one stretch in ``order``."""
    if len(shape) == 1:
        return Vector(src.runtime, shape[0], src.dtype, owner=owner, offset=offset)
    return Matrix(src.runtime, shape[0], shape[1], src.dtype, order, owner=owner,
                  offset=offset)


def _adopt(dense: Array, shape: tuple, order: str) -> Array:
    """A new owner of ``dense``'s buffer in ``shape``; ``dense`` (just made, unshared) is
    retired without freeing the memory."""
    rt = dense.runtime
    if len(shape) == 1:
        new: Array = Vector(rt, shape[0], dense.dtype, buf=dense._buf, nbytes=dense._nbytes)
    else:
        new = Matrix(rt, shape[0], shape[1], dense.dtype, order, buf=dense._buf,
                     nbytes=dense._nbytes)
    with rt._lock:
        rt._arrays.pop(id(dense), None)
        dense._buf, dense._nbytes, dense._released = None, 0, True
        return rt._register(new)


def check_size(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ShapeError(f"{what}: size {n!r} is not an integer")
    n = int(n)
    if n < 1:
        raise ShapeError(f"{what}: size {n} must be >= 1")
    if n > _MAX_INT:
        raise OutOfMemoryError(f"{what}: size {n} exceeds the 2**31-1 elements clnn indexes")
    return n
