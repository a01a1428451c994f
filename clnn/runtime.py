"""The runtime: one OpenCL context, one in-order queue, and the kernels built for them.

A runtime is a ``with`` block. Buffers made from it belong to it; leaving the block (also by an
exception) releases every buffer still alive, then the queue and the context. Any later use
raises :class:`clnn.ReleasedError`.

Memory: every buffer's size is checked against the device's largest allocation and the bytes
held by all of this process's clnn buffers on the device are checked against its global
memory, so asking for more than the device holds raises :class:`clnn.OutOfMemoryError`
(naming the size and the limit) before OpenCL is asked; an allocation the driver still refuses
raises the same error. The runtime stays usable afterwards.

Threads: one runtime may be used from several threads at once, each with its own output
buffers. The runtime holds a re-entrant lock; a kernel launch (argument setting plus enqueue),
every host transfer and every allocation take it, so the in-order queue sees whole operations.
What is safe and what is not:

* safe: ops from many threads on one runtime, on shared inputs and separate outputs; reading
  results from any thread; releasing the runtime while other threads work (their next clnn
  call raises :class:`clnn.ReleasedError`, an op already enqueued completes first);
* not safe: two threads writing the same output at once (the result is one of the two, or a
  mix), or releasing an array while another thread is using that same array (release the
  runtime instead, or join the threads first).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     y = clnn.mv(rt.matrix([[1, 2], [3, 4]]), rt.vector([1, 1]))
    ...     print(y.to_numpy())
    [3. 7.]
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any, Callable, Hashable, Optional, TypeVar, Union

import numpy as np
import pyopencl as cl

from . import cacheguard, hostmem
from .array import (
    LAYOUTS,
    Array,
    Matrix,
    Vector,
    as_dtype,
    check_size,
    host_array,
    scalar_value,
)
from .devices import DeviceInfo, cl_device, device_info, select_device
from .errors import (
    DeviceError,
    OperandError,
    OutOfMemoryError,
    ReleasedError,
    ShapeError,
    UnsupportedError,
)
from .program import ProgramCache

__all__ = ["Runtime", "device_bytes_in_use"]

T = TypeVar("T")
_MISSING = object()
_SCRATCH_MIN = 4096  # elements: the smallest scratch buffer

# Bytes held by live clnn buffers, per device (DeviceInfo.key), over every runtime of this
# process: runtimes on one device share its memory.
_mem_lock = threading.RLock()  # re-entrant: a GC finalizer may release an array here
_device_bytes: dict = {}


def device_bytes_in_use(device: DeviceInfo) -> int:
    """Bytes held by this process's live clnn buffers on ``device`` (all runtimes)."""
    with _mem_lock:
        return _device_bytes.get(device.key, 0)


def _is_oom(e: cl.Error) -> bool:
    code = getattr(e, "code", None)
    return isinstance(e, cl.MemoryError) or code in (
        cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, cl.status_code.OUT_OF_RESOURCES,
        cl.status_code.OUT_OF_HOST_MEMORY, cl.status_code.INVALID_BUFFER_SIZE)


def _queue_device(queue: Any, device: Union[str, int, DeviceInfo, None]) -> DeviceInfo:
    """The :class:`DeviceInfo` of a user's pyopencl queue (``device``, if given, must agree)."""
    if not isinstance(queue, cl.CommandQueue):
        raise OperandError(f"Runtime: queue must be a pyopencl.CommandQueue, got "
                           f"{type(queue).__name__}")
    try:
        props, dev = queue.properties, queue.device
    except cl.Error as e:
        raise DeviceError(f"Runtime: the queue cannot be used: {e}") from None
    if props & cl.command_queue_properties.OUT_OF_ORDER_EXEC_MODE_ENABLE:
        raise UnsupportedError("Runtime: the queue is out-of-order; clnn orders its commands "
                               "by an in-order queue")
    info = device_info(dev)
    if device is not None:
        want = select_device(device)
        if want.spec != info.spec or want.key != info.key:
            raise DeviceError(f"Runtime: device {want} is not the queue's device {info}")
        info = want  # a DeviceInfo with other limits keeps them
    return info


class Runtime:
    """Owns a context, a queue, the kernel cache and every buffer made from it.

    ``device`` is a spec string (``"cpu"``, ``"0:1"``, ``"pocl"``), a device index, a
    :class:`DeviceInfo`, or None for ``CLNN_DEVICE`` / ``PYOPENCL_CTX`` / the best device.

    ``queue=`` opens the runtime on a pyopencl queue the caller already has (in-order), and on
    its context and device: clnn arrays and pyopencl arrays then share memory without copies
    (:meth:`asarray`, :meth:`Vector.to_pyopencl`). Leaving the ``with`` block releases clnn's
    own buffers and leaves the queue and the context to their owner.

    ``dtype=`` (float32 unless given) is the dtype of everything this runtime creates when
    the call names none: ``vector``, ``matrix``, ``zeros``, ``arange``, ``asarray`` of lists
    and integers... (numpy float32/float64 arrays keep theirs; ops give outputs the dtype of
    their operands).

    Example:
        >>> import clnn, numpy as np, pyopencl as cl
        >>> with clnn.Runtime("cpu", dtype=np.float64) as rt:
        ...     print(rt.vector([1, 2]).dtype, rt.zeros((2, 2)).dtype)
        float64 float64
        >>> from clnn.devices import cl_device
        >>> ctx = cl.Context([cl_device(clnn.select_device("cpu"))])
        >>> q = cl.CommandQueue(ctx)
        >>> with clnn.Runtime(queue=q) as rt:
        ...     print(rt.ctx == ctx, rt.device.type)
        True CPU
        >>> q.finish()  # the queue is still the caller's
    """

    def __init__(self, device: Union[str, int, DeviceInfo, None] = None, *,
                 queue: Optional[cl.CommandQueue] = None, dtype: Any = None):
        self._released = True  # until construction succeeds
        self.dtype: np.dtype = as_dtype(np.float32 if dtype is None else dtype)
        if queue is None:
            info = select_device(device)
            dev = cl_device(info)
            cacheguard.verify_once()  # before any driver reads a cached binary
            try:
                ctx = cl.Context([dev])
                queue = cl.CommandQueue(ctx, dev)
            except cl.Error as e:
                raise DeviceError(f"cannot open {info}: {e}") from None
        else:
            info = _queue_device(queue, device)
            dev, ctx = queue.device, queue.context
            cacheguard.verify_once()
        if self.dtype == np.float64 and not info.fp64:
            raise UnsupportedError(f"Runtime: dtype float64 needs cl_khr_fp64, which device "
                                   f"{info.name!r} lacks")
        self.device: DeviceInfo = info
        self._cl_device = dev
        self._ctx: Optional[cl.Context] = ctx
        self._queue: Optional[cl.CommandQueue] = queue
        self._programs = ProgramCache(ctx, dev)
        self._memo: dict = {}  # see memo() and scratch()
        self._plans = self._memo  # the same dict, for callers that still index it directly
        self._arrays: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        # owners of wrapped pyopencl memory, by (int_ptr, dtype): see clnn/interop.py
        self._borrowed: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()
        self._lock = threading.RLock()
        self.allocations = 0  # device buffers allocated so far (tests count them)
        self._bytes = 0  # bytes held by this runtime's live buffers
        #: the most bytes all clnn buffers on this device may hold (the device's global memory)
        self.memory_limit: int = info.global_mem
        self._hugepages = hostmem.enabled(info)  # large buffers in huge-page host memory
        self._released = False

    # ---- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> Runtime:
        self._live()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

    @property
    def released(self) -> bool:
        return self._released

    def _live(self) -> None:
        if self._released:
            raise ReleasedError("this clnn.Runtime was released and cannot be used")

    def release(self) -> None:
        """Release every buffer still alive, then the queue and the context (a queue given
        as ``queue=`` is only dropped: it stays the caller's). Harmless twice.

        Wrapped pyopencl memory (:meth:`asarray`) is only dropped too; pyopencl arrays made
        by ``to_pyopencl()`` from clnn's own buffers become invalid."""
        if self._released:
            return
        with self._lock:
            if self._released:
                return
            try:
                self._queue.finish()
            except cl.Error:
                pass
            failed = _release_all(list(self._memo.values()))
            self._memo.clear()
            for arr in list(self._arrays.values()):
                arr.release()
            self._arrays.clear()
            with _mem_lock:  # buffers that were not in _arrays any more (dying in a cycle)
                left = _device_bytes.get(self.device.key, 0) - self._bytes
                _device_bytes[self.device.key] = max(0, left)
                self._bytes = 0
            built = self._programs.built
            self._programs.clear()
            self._released = True
            self._queue = None
            self._ctx = None
        if built:
            cacheguard.record_all(force=False)  # bless what the drivers wrote for us
        if failed is not None:
            raise failed

    # ---- the per-runtime cache and scratch buffers --------------------------------------------
    def memo(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The value kept on this runtime under ``key``, made by ``factory()`` at first use.

        The one per-runtime cache of clnn: built kernels, launch plans, tuned parameters. A
        key is a tuple that starts with its owner's name and holds everything the value
        depends on (``("gemm", kind, dtype, tunables)``; the tuning generation where tuned
        values are read). Values live as long as the runtime: :meth:`release` calls
        ``release()`` on every value that has one, then drops them all.

        Thread-safe: ``factory`` runs outside the runtime's lock (a kernel build takes long;
        other threads' launches go on meanwhile). When two threads miss the same key at once,
        the value stored first is kept and returned to both; the other is released (if it has
        ``release()``) and dropped. A runtime released meanwhile raises
        :class:`clnn.ReleasedError`.

        Example:
            >>> import clnn
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.memo(("example", 1), lambda: [1, 2])
            ...     print(a, rt.memo(("example", 1), list) is a)
            [1, 2] True
        """
        v = self._memo.get(key, _MISSING)
        if v is not _MISSING:
            return v
        self._live()
        made = factory()
        with self._lock:
            v = self._memo.get(key, _MISSING)
            if v is _MISSING and not self._released:
                self._memo[key] = made
                return made
        failed = _release_all([made])
        if failed is not None:
            raise failed
        self._live()
        return v

    def scratch(self, role: str, nelem: int, dtype: Any) -> Vector:
        """A scratch vector of at least ``nelem`` elements of ``dtype`` for ``role`` (a name,
        such as ``"gemm-a"``): kept on this runtime and handed to every call for that role and
        dtype. Its contents are undefined.

        It is an ordinary vector of this runtime, so it counts in :attr:`bytes_in_use`,
        :attr:`allocations` and the device's memory accounts (asking for more than the device
        holds raises :class:`clnn.OutOfMemoryError`), and it is released with the runtime.
        Sizes grow in steps of a sixteenth of a power of two (less than 12.5% spare, at least
        4096 elements); a request that fits reuses the buffer, a larger one releases it and
        allocates the next size.

        Rules for callers: take the runtime's lock before the call and hold it until every
        launch that uses the buffer is enqueued (the in-order queue then finishes them before
        the next holder's launches). The buffer is valid until the next call for the same
        role and dtype that needs more: that call releases it, and a launch prepared with it
        raises :class:`clnn.ReleasedError` from then on. A prepared launch that outlives one
        call therefore keeps buffers of its own (``rt.vector``), not scratch. The kernel may
        read the bytes as another element type of the same size (int32 counters in a float32
        scratch).

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.scratch("example", 5000, np.float32)
            ...     print(a.n, rt.scratch("example", 10, np.float32) is a, rt.bytes_in_use)
            5120 True 20480
        """
        n = check_size(nelem, "scratch")
        dt = as_dtype(dtype)
        key = ("scratch", role, dt.char)
        with self._lock:
            ws = self._memo.get(key)
            if ws is not None and ws.n >= n and not ws.released:
                return ws
            self._live()
            if ws is not None:
                del self._memo[key]
                ws.release()
            step = 1 << max(0, (n - 1).bit_length() - 4)
            size = min(max(_SCRATCH_MIN, -(-n // step) * step), 2**31 - 1)
            ws = self.vector(size, dtype=dt)
            self._memo[key] = ws
            return ws

    def finish(self) -> None:
        """Wait until every command enqueued so far has completed."""
        self._live()
        self._queue.finish()

    @property
    def ctx(self) -> cl.Context:
        self._live()
        return self._ctx

    @property
    def queue(self) -> cl.CommandQueue:
        self._live()
        return self._queue

    @property
    def programs(self) -> ProgramCache:
        self._live()
        return self._programs

    @property
    def bytes_in_use(self) -> int:
        """Bytes held by this runtime's live buffers (0 once released)."""
        return self._bytes

    def _forget(self, arr) -> None:
        """Called once by every owner array as it releases its buffer."""
        self._arrays.pop(id(arr), None)
        nbytes = getattr(arr, "_nbytes", 0) or 0
        with _mem_lock:
            if self._released or not nbytes:  # release() already settled the accounts
                return
            self._bytes -= nbytes
            key = self.device.key
            _device_bytes[key] = max(0, _device_bytes.get(key, 0) - nbytes)

    def __repr__(self) -> str:
        state = "released" if self._released else "open"
        return f"<clnn.Runtime on {self.device} ({state})>"

    # ---- allocation -----------------------------------------------------------------------
    def _check_dtype(self, dt: np.dtype) -> None:
        if dt == np.float64 and not self.device.fp64:
            raise UnsupportedError(
                f"float64 needs cl_khr_fp64, which device {self.device.name!r} lacks"
            )

    def _alloc(self, nelem: int, dt: np.dtype, what: str) -> tuple:
        self._live()
        self._check_dtype(dt)
        nbytes = nelem * dt.itemsize
        name = self.device.name
        limit = self.device.max_alloc
        if nbytes > limit:
            raise OutOfMemoryError(
                f"{what}: {nbytes} bytes exceed the largest allocation of {name!r} "
                f"({limit} bytes; global memory {self.device.global_mem} bytes)"
            )
        key = self.device.key
        if _device_bytes.get(key, 0) + nbytes > self.memory_limit:
            # forgotten arrays wait for the cyclic garbage collector (an owner refers to
            # itself as its base): collect them before refusing
            gc.collect()
        with _mem_lock:  # reserve first, so that two threads cannot both pass the check
            used = _device_bytes.get(key, 0)
            if used + nbytes > self.memory_limit:
                raise OutOfMemoryError(
                    f"{what}: {nbytes} more bytes would bring clnn's buffers on {name!r} to "
                    f"{used + nbytes} bytes, beyond the device's memory of {self.memory_limit} "
                    f"bytes ({used} bytes in use); release buffers you no longer need"
                )
            _device_bytes[key] = used + nbytes
            self._bytes += nbytes
            self.allocations += 1
        try:
            buf = None
            if self._hugepages and nbytes >= hostmem.MIN_BYTES:
                buf = hostmem.host_buffer(self._ctx, nbytes)
            if buf is None:
                buf = cl.Buffer(self._ctx, cl.mem_flags.READ_WRITE, nbytes)
            if self.device.type != "CPU":
                # GPU drivers allocate at first use: touch one byte now so that a refusal
                # surfaces here, as OutOfMemoryError, and not in a later kernel launch.
                with self._lock:
                    cl.enqueue_fill_buffer(self._queue, buf, np.uint8(0), 0, 1)
        except cl.Error as e:
            with _mem_lock:
                self._bytes -= nbytes
                _device_bytes[key] = max(0, _device_bytes.get(key, 0) - nbytes)
            if _is_oom(e):
                raise OutOfMemoryError(
                    f"{what}: the device refused {nbytes} bytes on {name!r} (global memory "
                    f"{self.device.global_mem} bytes, {used} bytes in use by clnn): {e}"
                ) from None
            raise
        except BaseException:
            with _mem_lock:
                self._bytes -= nbytes
                _device_bytes[key] = max(0, _device_bytes.get(key, 0) - nbytes)
            raise
        return buf, nbytes

    def _register(self, arr):
        self._arrays[id(arr)] = arr
        return arr

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
        arr = host_array(data_or_length, dtype, 1, "vector", default=self.dtype)
        v = self.vector(arr.shape[0], arr.dtype)
        try:
            v._write_span(np.ascontiguousarray(arr))
        except BaseException:
            v.release()
            raise
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
        if shape is not None:
            m, n = _shape2(shape, "matrix")
            arr = host_array(data_or_shape, dtype, None, "matrix", default=self.dtype)
            if arr.size != m * n:
                raise ShapeError(f"matrix: {arr.size} elements (shape {arr.shape}) cannot "
                                 f"fill shape {(m, n)}")
            layout = layout or "row"
            arr = arr.reshape((m, n), order="C" if layout == "row" else "F")
        else:
            arr = host_array(data_or_shape, dtype, 2, "matrix", default=self.dtype)
        if layout is None:
            if arr.flags.f_contiguous and not arr.flags.c_contiguous:
                layout = "col"
            else:
                layout = "row"
        flat = arr.ravel(order="C" if layout == "row" else "F")
        mat = self.matrix(arr.shape, layout=layout, dtype=arr.dtype)
        try:
            mat._write_span(np.ascontiguousarray(flat))
        except BaseException:
            mat.release()
            raise
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
        try:
            return _fill(arr, fill_value, dtype is not None)
        except BaseException:
            arr.release()
            raise

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
        try:
            return _fill(arr, fill_value, False)
        except BaseException:
            arr.release()
            raise

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
        else:
            from . import interop

            if interop.is_pyopencl_array(obj):
                return interop.from_pyopencl(self, obj, dtype, layout)
        if np.ndim(obj) == 0 and not isinstance(obj, (str, bytes)):
            obj = np.reshape(obj, 1) if isinstance(obj, (np.ndarray, np.generic)) else [obj]
        arr = host_array(obj, dtype, None, "asarray", default=self.dtype)
        if arr.ndim == 1:
            return self.vector(arr)
        return self.matrix(arr, layout=layout)


def _release_all(values: list) -> Optional[BaseException]:
    """Call ``release()`` on each value that has one; the first error is returned (after the
    others were released), not raised."""
    first = None
    for v in values:
        rel = getattr(v, "release", None)
        if callable(rel):
            try:
                rel()
            except Exception as e:  # release the rest first
                first = first or e
    return first


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
