"""Device memory: the byte accounts of every clnn buffer, and what a buffer owner needs from
its runtime.

Every buffer's size is checked against the device's largest allocation, and the bytes held by
all of this process's clnn buffers on the device are checked against its global memory, so
asking for more than the device holds raises :class:`clnn.OutOfMemoryError` (naming the size
and the limit) before OpenCL is asked; an allocation the driver still refuses raises the same
error. The runtime stays usable afterwards.

:class:`Memory` is the base of :class:`clnn.Runtime`: the lock, the queue, the liveness flag,
the registry of live owner arrays and the accounts. The arrays (:mod:`clnn.buffer`,
:mod:`clnn.array`) and :mod:`clnn.interop` use only the names it declares, so they depend on
this module and not on the runtime.

Example:
    >>> import clnn
    >>> from clnn.memory import device_bytes_in_use
    >>> with clnn.Runtime("cpu") as rt:
    ...     held = device_bytes_in_use(rt.device)
    ...     v = rt.vector(1000)
    ...     print(rt.bytes_in_use, device_bytes_in_use(rt.device) - held)
    4000 4000
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any, Optional

import numpy as np
import pyopencl as cl

from . import hostmem
from .devices import DeviceInfo
from .errors import OutOfMemoryError, ReleasedError, UnsupportedError

__all__ = ["Memory", "device_bytes_in_use"]

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


def _settle(key: Any, nbytes: int) -> None:
    """Take ``nbytes`` off the device's account (under ``_mem_lock``)."""
    _device_bytes[key] = max(0, _device_bytes.get(key, 0) - nbytes)


class Memory:
    """What a buffer owner needs from its runtime; :class:`clnn.Runtime` derives from it.

    The names the arrays use, and nothing else:

    * ``_lock``: the runtime's re-entrant lock; transfers, launches and releases hold it;
    * ``_released`` / :meth:`_live`: the liveness flag, and the check that raises
      :class:`clnn.ReleasedError`; :attr:`queue` / :attr:`ctx` (checked);
    * :meth:`_alloc` (a device buffer, accounted), :meth:`_register` (a new owner, released
      with the runtime), :meth:`_forget` (an owner gave its buffer back), :meth:`_retire`
      (an owner handed its buffer to a new one), :meth:`_drain` (wait for queued commands);
    * :meth:`_check_dtype` (float64 needs cl_khr_fp64) and ``_borrowed`` (the owners of
      wrapped pyopencl memory, by ``(int_ptr, dtype)``: see :mod:`clnn.interop`).
    """

    def __init__(self, info: DeviceInfo, ctx: cl.Context, queue: cl.CommandQueue):
        self.device: DeviceInfo = info
        self._ctx: Optional[cl.Context] = ctx
        self._queue: Optional[cl.CommandQueue] = queue
        self._lock = threading.RLock()
        self._arrays: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._borrowed: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()
        self.allocations = 0  # device buffers allocated so far (tests count them)
        self._bytes = 0  # bytes held by this runtime's live buffers
        #: the most bytes all clnn buffers on this device may hold (the device's global memory)
        self.memory_limit: int = info.global_mem
        self._hugepages = hostmem.enabled(info)  # large buffers in huge-page host memory

    # ---- liveness and the queue -----------------------------------------------------------
    @property
    def released(self) -> bool:
        return self._released

    def _live(self) -> None:
        if self._released:
            raise ReleasedError("this clnn.Runtime was released and cannot be used")

    @property
    def ctx(self) -> cl.Context:
        self._live()
        return self._ctx

    @property
    def queue(self) -> cl.CommandQueue:
        self._live()
        return self._queue

    def _drain(self) -> None:
        """Wait for every command queued so far (nothing to wait for once released)."""
        if self._queue is not None:
            self._queue.finish()

    @property
    def bytes_in_use(self) -> int:
        """Bytes held by this runtime's live buffers (0 once released)."""
        return self._bytes

    # ---- owners ---------------------------------------------------------------------------
    def _register(self, arr):
        """Keep ``arr`` (a new owner) to be released with the runtime; returns it."""
        self._arrays[id(arr)] = arr
        return arr

    def _retire(self, arr) -> None:
        """``arr`` handed its buffer and bytes to a new owner: drop it without settling."""
        self._arrays.pop(id(arr), None)

    def _forget(self, arr) -> None:
        """Called once by every owner array as it releases its buffer."""
        self._arrays.pop(id(arr), None)
        nbytes = getattr(arr, "_nbytes", 0) or 0
        with _mem_lock:
            if self._released or not nbytes:  # _release_owners() already settled the accounts
                return
            self._bytes -= nbytes
            _settle(self.device.key, nbytes)

    def _release_owners(self) -> None:
        """Release every owner still alive and settle the accounts (the runtime's release)."""
        for arr in list(self._arrays.values()):
            arr.release()
        self._arrays.clear()
        with _mem_lock:  # buffers that were not in _arrays any more (dying in a cycle)
            _settle(self.device.key, self._bytes)
            self._bytes = 0

    # ---- allocation -----------------------------------------------------------------------
    def _check_dtype(self, dt: np.dtype) -> None:
        if dt == np.float64 and not self.device.fp64:
            raise UnsupportedError(
                f"float64 needs cl_khr_fp64, which device {self.device.name!r} lacks"
            )

    def _alloc(self, nelem: int, dt: np.dtype, what: str) -> tuple:
        """(buffer, nbytes) of a new device buffer of ``nelem`` elements of ``dt``, counted
        in the accounts; :class:`clnn.OutOfMemoryError` before OpenCL is asked for too much."""
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
                _settle(key, nbytes)
            if _is_oom(e):
                raise OutOfMemoryError(
                    f"{what}: the device refused {nbytes} bytes on {name!r} (global memory "
                    f"{self.device.global_mem} bytes, {used} bytes in use by clnn): {e}"
                ) from None
            raise
        except BaseException:
            with _mem_lock:
                self._bytes -= nbytes
                _settle(key, nbytes)
            raise
        return buf, nbytes
