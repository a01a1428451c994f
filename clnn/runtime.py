"""The runtime: one OpenCL context, one in-order queue, and the kernels built for them.

A runtime is a ``with`` block. Buffers made from it belong to it; leaving the block (also by an
exception) releases every buffer still alive, then the queue and the context. Any later use
raises :class:`clnn.ReleasedError`.

Memory: buffers are counted per device, and asking for more than the device holds raises
:class:`clnn.OutOfMemoryError` before OpenCL is asked (:mod:`clnn.memory`). The methods that
make arrays (``rt.vector``, ``rt.zeros``, ``rt.asarray``, ...) are :mod:`clnn.creation`'s;
:meth:`Runtime.memo` and :meth:`Runtime.scratch` are the per-runtime cache and scratch
buffers of the ops.

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

from typing import Any, Callable, Hashable, Optional, TypeVar, Union

import numpy as np
import pyopencl as cl

from . import cacheguard
from .array import Vector
from .buffer import Scoped
from .creation import Creation
from .devices import DeviceInfo, cl_device, device_info, select_device
from .dtypes import MAX_INT, as_dtype, check_size
from .errors import DeviceError, OperandError, UnsupportedError
from .memory import device_bytes_in_use
from .program import ProgramCache

__all__ = ["Runtime", "device_bytes_in_use"]

T = TypeVar("T")
_MISSING = object()
_SCRATCH_MIN = 4096  # elements: the smallest scratch buffer


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


class Runtime(Creation, Scoped):
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
        super().__init__(info, ctx, queue)
        self._cl_device = dev
        self._programs = ProgramCache(ctx, dev)
        self._memo: dict = {}  # see memo() and scratch()
        self._plans = self._memo  # the same dict, for callers that still index it directly
        self._released = False

    # ---- lifetime (a ``with`` block: see buffer.Scoped) ---------------------------------------
    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

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
            self._release_owners()
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
            size = min(max(_SCRATCH_MIN, -(-n // step) * step), MAX_INT)
            ws = self.vector(size, dtype=dt)
            self._memo[key] = ws
            return ws

    def finish(self) -> None:
        """Wait until every command enqueued so far has completed."""
        self._live()
        self._queue.finish()

    @property
    def programs(self) -> ProgramCache:
        self._live()
        return self._programs

    def __repr__(self) -> str:
        state = "released" if self._released else "open"
        return f"<clnn.Runtime on {self.device} ({state})>"


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


