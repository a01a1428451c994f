"""Huge-page host memory for the buffers of CPU devices.

On a CPU device an OpenCL buffer is ordinary host memory. PoCL takes it from ``malloc``, in
4 KiB pages; numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on
every array of 4 MiB or more. Streaming a 64 MiB matrix through 4 KiB pages costs a TLB miss
every 4 KiB and stops the hardware prefetchers at every page boundary: measured on PoCL 3.0
(2-core AMD EPYC), a plain read kernel streamed at 0.87-0.95x numpy's ``a @ x`` from PoCL's
own memory and at 1.05-1.07x from huge-page memory, side by side in one run.

So on CPU devices clnn allocates buffers of :data:`MIN_BYTES` or more itself: a private
anonymous mapping, 2 MiB aligned, advised for huge pages, handed to OpenCL with
``CL_MEM_USE_HOST_PTR`` (the driver then computes in that memory, no copy). The mapping lives
as long as the ``cl.Buffer`` object that refers to it (pyopencl keeps the host object until
then). Releasing such a buffer waits for the queue first (:func:`is_host_backed` tells the
array code to), so a command still queued never sees the memory go, then :func:`discard` hands
the pages back to the system at once (``MADV_DONTNEED``): the memory is freed when the array
is released, not when the last Python reference to the buffer object dies.

``CLNN_HUGEPAGES=0`` turns this off (every buffer then comes from the driver).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     v = rt.vector(2 << 20)           # 8 MiB of float32
    ...     print(is_host_backed(v._buf) == enabled(rt.device))
    True
"""

from __future__ import annotations

import mmap
import os
from typing import Optional

import numpy as np
import pyopencl as cl

__all__ = ["MIN_BYTES", "enabled", "host_buffer", "is_host_backed", "discard"]

MIN_BYTES = 4 << 20
"""Buffers at least this large get huge-page memory (numpy's threshold too)."""

_HUGE = 2 << 20  # the x86-64 / arm64 transparent huge page size


def enabled(device) -> bool:
    """True when buffers on ``device`` (a :class:`clnn.DeviceInfo`) of :data:`MIN_BYTES` or
    more come from huge-page host memory: a CPU device, on a system with ``madvise``, and
    ``CLNN_HUGEPAGES`` not ``0``."""
    return (device.type == "CPU" and hasattr(mmap, "MADV_HUGEPAGE")
            and os.environ.get("CLNN_HUGEPAGES", "1").strip() != "0")


def host_buffer(ctx: cl.Context, nbytes: int) -> Optional[cl.Buffer]:
    """A READ_WRITE buffer of ``nbytes`` in fresh huge-page-advised host memory, or None when
    the system refuses the mapping (the caller then asks the driver as usual)."""
    try:
        mm = mmap.mmap(-1, nbytes + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError, OverflowError):
        return None
    try:
        mm.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # no transparent huge pages here: aligned private memory still works
        pass
    whole = np.frombuffer(mm, dtype=np.uint8)
    skip = (-whole.ctypes.data) % _HUGE
    view = whole[skip:skip + nbytes]
    buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.USE_HOST_PTR, hostbuf=view)
    buf._clnn_host = mm  # pyopencl holds ``view`` (and so ``mm``) as long as ``buf`` lives
    return buf


def is_host_backed(buf: Optional[cl.Buffer]) -> bool:
    """True when ``buf`` computes in memory from :func:`host_buffer`."""
    return getattr(buf, "_clnn_host", None) is not None


def discard(buf: cl.Buffer) -> None:
    """Give the pages of a released host-backed buffer back to the system now. Call it only
    after the buffer was released and every command that used it completed."""
    mm = getattr(buf, "_clnn_host", None)
    if mm is None:
        return
    buf._clnn_host = None
    try:
        mm.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # pragma: no cover - the pages go with the mapping later
        pass
