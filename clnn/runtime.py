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
from typing import Any, Optional, Union

import numpy as np
import pyopencl as cl

from . import cacheguard, hostmem
from .array import LAYOUTS, Matrix, Vector, as_dtype, check_size, host_array
from .devices import DeviceInfo, cl_device, select_device
from .errors import DeviceError, OutOfMemoryError, ReleasedError, ShapeError, UnsupportedError
from .program import ProgramCache

__all__ = ["Runtime", "device_bytes_in_use"]

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


class Runtime:
    """Owns a context, a queue, the kernel cache and every buffer made from it.

    ``device`` is a spec string (``"cpu"``, ``"0:1"``, ``"pocl"``), a device index, a
    :class:`DeviceInfo`, or None for ``CLNN_DEVICE`` / ``PYOPENCL_CTX`` / the best device.
    """

    def __init__(self, device: Union[str, int, DeviceInfo, None] = None):
        self._released = True  # until construction succeeds
        info = select_device(device)
        dev = cl_device(info)
        cacheguard.verify_once()  # before any driver reads a cached binary
        try:
            ctx = cl.Context([dev])
            queue = cl.CommandQueue(ctx, dev)
        except cl.Error as e:
            raise DeviceError(f"cannot open {info}: {e}") from None
        self.device: DeviceInfo = info
        self._cl_device = dev
        self._ctx: Optional[cl.Context] = ctx
        self._queue: Optional[cl.CommandQueue] = queue
        self._programs = ProgramCache(ctx, dev)
        self._plans: dict = {}
        self._arrays: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
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
        """Release every buffer still alive, then the queue and the context. Harmless twice."""
        if self._released:
            return
        with self._lock:
            if self._released:
                return
            try:
                self._queue.finish()
            except cl.Error:
                pass
            for arr in list(self._arrays.values()):
                arr.release()
            self._arrays.clear()
            with _mem_lock:  # buffers that were not in _arrays any more (dying in a cycle)
                left = _device_bytes.get(self.device.key, 0) - self._bytes
                _device_bytes[self.device.key] = max(0, left)
                self._bytes = 0
            self._plans.clear()
            built = self._programs.built
            self._programs.clear()
            self._released = True
            self._queue = None
            self._ctx = None
        if built:
            cacheguard.record_all(force=False)  # bless what the drivers wrote for us

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
            dt = as_dtype(np.float32 if dtype is None else dtype)
            buf, nb = self._alloc(n, dt, "vector")
            return self._register(Vector(self, n, dt, buf=buf, nbytes=nb))
        arr = host_array(data_or_length, dtype, 1, "vector")
        v = self.vector(arr.shape[0], arr.dtype)
        try:
            v._write_span(np.ascontiguousarray(arr))
        except BaseException:
            v.release()
            raise
        return v

    def matrix(self, data_or_shape: Any, layout: Optional[str] = None,
               dtype: Any = None) -> Matrix:
        """A new matrix: uninitialised of a given ``(m, n)`` shape, or a copy of 2-d data.

        ``layout`` is "row" or "col"; None keeps a numpy array's memory order (C: "row",
        Fortran: "col") and makes everything else "row".

        Example:
            >>> import clnn, numpy as np
            >>> with clnn.Runtime("cpu") as rt:
            ...     a = rt.matrix(np.asfortranarray(np.eye(2)))
            ...     print(a.layout, a.dtype)
            col float64
        """
        self._live()
        if layout is not None and layout not in LAYOUTS:
            raise ShapeError(f"matrix: layout {layout!r} is not 'row' or 'col'")
        if isinstance(data_or_shape, tuple) and len(data_or_shape) == 2 and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                for s in data_or_shape):
            m = check_size(data_or_shape[0], "matrix rows")
            n = check_size(data_or_shape[1], "matrix columns")
            if m * n > 2**31 - 1:
                raise OutOfMemoryError(f"matrix: {m}x{n} exceeds the 2**31-1 elements clnn "
                                       "indexes")
            dt = as_dtype(np.float32 if dtype is None else dtype)
            buf, nb = self._alloc(m * n, dt, "matrix")
            return self._register(Matrix(self, m, n, dt, layout or "row", buf=buf, nbytes=nb))
        if isinstance(data_or_shape, Matrix) and layout is None:
            layout = data_or_shape.layout
        arr = host_array(data_or_shape, dtype, 2, "matrix")
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

    def zeros(self, shape: Union[int, tuple], dtype: Any = None,
              layout: str = "row") -> Union[Vector, Matrix]:
        """A zero-filled vector (``shape`` an int or 1-tuple) or matrix (2-tuple)."""
        if isinstance(shape, tuple) and len(shape) == 1:
            shape = shape[0]
        dt = as_dtype(np.float32 if dtype is None else dtype)
        if isinstance(shape, tuple):
            arr = self.matrix(shape, layout=layout, dtype=dt)
        else:
            arr = self.vector(shape, dtype=dt)
        with self._lock:
            cl.enqueue_fill_buffer(self.queue, arr._buf, dt.type(0), 0, arr._nbytes)
        return arr

    def empty_like(self, a: Union[Vector, Matrix]) -> Union[Vector, Matrix]:
        """An uninitialised array of ``a``'s shape, dtype (and layout)."""
        a._live()
        if isinstance(a, Matrix):
            return self.matrix(a.shape, layout=a.layout, dtype=a.dtype)
        return self.vector(a.n, dtype=a.dtype)
