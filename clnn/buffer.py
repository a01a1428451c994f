"""The base of every clnn array: one device buffer, who owns it, how long it lives, and how
its bytes move to and from the host.

The array that allocated the OpenCL buffer is its *owner*; views point at the owner's memory
with their own offset, stride or leading dimension (:mod:`clnn.array` has the shapes and the
views). Releasing the owner, or the runtime, releases every view of it; any later use raises
:class:`clnn.ReleasedError`. An array needs from its runtime only what :class:`clnn.memory.Memory`
declares.

The methods that compute on the device (``copy``, strided ``fill``, the Python operators and
assignment) call the engine that :mod:`clnn.operators` installs here when clnn is imported:
the kernels import the arrays, so the arrays do not import the kernels.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     t = a.T
    ...     a.release()
    ...     print(t.released, a.nbytes, a.is_view, t.base is a)
    True 16 False True
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Optional, Protocol, TypeVar

import numpy as np
import pyopencl as cl

from . import hostmem, transfer
from .dtypes import LAYOUTS, as_dtype, scalar_value
from .errors import ClnnError, OperandError, ReleasedError, ShapeError

if TYPE_CHECKING:  # pragma: no cover
    from .memory import Memory

__all__ = ["Array", "Engine", "Scoped", "use_engine"]

_S = TypeVar("_S", bound="Scoped")


class Engine(Protocol):
    """The device computations behind :class:`Array`'s methods (:mod:`clnn.operators`)."""

    def binary(self, name: str, a: Any, b: Any, reflected: bool = False,
               inplace: bool = False) -> Any: ...

    def unary(self, name: str, a: Any) -> Any: ...

    def matmul(self, a: Any, b: Any, reflected: bool = False) -> Any: ...

    def setitem(self, arr: Any, key: Any, value: Any) -> None: ...

    def copy_array(self, arr: Any, layout: Optional[str]) -> Any: ...

    def fill_view(self, arr: Any, value: Any) -> None: ...


_engine: Optional[Engine] = None


def use_engine(engine: Engine) -> None:
    """Install the engine (called once, by :mod:`clnn.operators` as it is imported)."""
    global _engine
    _engine = engine


def _ops() -> Engine:
    if _engine is None:  # only when clnn.buffer is loaded without the clnn package
        raise ClnnError("clnn arrays compute through clnn.operators; import clnn first")
    return _engine


def _binary(name: str) -> tuple:
    """The methods ``x op y``, ``y op x`` and ``x op= y`` of the elementwise operator ``name``."""
    def op(self, other: Any) -> Any:
        return _ops().binary(name, self, other)

    def rop(self, other: Any) -> Any:
        return _ops().binary(name, self, other, reflected=True)

    def iop(self, other: Any) -> Any:
        return _ops().binary(name, self, other, inplace=True)

    return op, rop, iop


def _compare(name: str) -> Any:
    """The method ``x op y`` of the comparison ``name`` (an array of 1.0 / 0.0)."""
    def op(self, other: Any) -> Any:
        return _ops().binary(name, self, other)

    return op


class Scoped:
    """A ``with`` block over an object that can be released: entering checks that it is
    still alive (its ``_live()`` raises :class:`clnn.ReleasedError` otherwise), leaving
    releases it (its ``release()``). Arrays and runtimes are used this way."""

    __slots__ = ()

    def __enter__(self: _S) -> _S:
        self._live()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()  # type: ignore[attr-defined]


class Array(Scoped):
    """Base of :class:`Vector` and :class:`Matrix`: ownership, lifetime and dtype."""

    __slots__ = (
        "runtime", "dtype", "_owner", "_buf", "offset", "_released", "_nbytes", "__weakref__",
    )

    def __init__(self, runtime: Memory, dtype: np.dtype, owner: Optional[Array],
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
        rt = self.runtime
        with rt._lock:
            if self._released:
                return
            self._released = True
            buf, self._buf = self._buf, None
            rt._forget(self)
            if buf is not None:
                buf._clnn_dead = True  # Plan.launch refuses it from now on
                host = hostmem.is_host_backed(buf)
                try:
                    if host:
                        rt._drain()  # queued commands may still use it
                    buf.release()
                except cl.Error:  # context already gone: nothing left to free
                    pass
                if host:
                    hostmem.discard(buf)

    def _hand_over(self) -> tuple:
        """(buffer, nbytes) of this new, unshared owner, which gives them up without freeing
        them (retired, as if released). Call it under the runtime's lock and register the
        owner that takes them in the same hold."""
        self.runtime._retire(self)
        got = self._buf, self._nbytes
        self._buf, self._nbytes, self._released = None, 0, True
        return got

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

    @property
    def nbytes(self) -> int:
        """Bytes of the elements: ``size * itemsize``, as in numpy (a view counts its own)."""
        return self.size * self.itemsize

    def _span(self) -> int:
        """Number of elements from ``offset`` to the last element, inclusive."""
        raise NotImplementedError

    def _dense(self) -> bool:
        """True when the elements fill one unbroken stretch of memory."""
        raise NotImplementedError

    def _flat_in(self, order: str) -> bool:
        """True when the elements are one unbroken stretch in ``order`` ("row": C, "col": F)."""
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

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    # ---- copies and conversion --------------------------------------------------------------
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
        return _ops().copy_array(self, layout)

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
        if self.ndim == 2:
            return self.runtime.matrix(host, layout=self.layout)
        return self.runtime.vector(host)

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
            _ops().fill_view(self, x)
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
        if self.ndim == 2:
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

    __add__, __radd__, __iadd__ = _binary("add")
    __sub__, __rsub__, __isub__ = _binary("sub")
    __mul__, __rmul__, __imul__ = _binary("mul")
    __truediv__, __rtruediv__, __itruediv__ = _binary("div")
    __eq__ = _compare("eq")  # type: ignore[assignment]
    __ne__ = _compare("ne")  # type: ignore[assignment]
    __lt__, __le__, __gt__, __ge__ = (_compare(c) for c in ("lt", "le", "gt", "ge"))

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

    # subclasses provide: shape, size, ndim, to_numpy, set, reshape, _describe, _resolve,
    # _span, _dense, _flat_in, __iter__
