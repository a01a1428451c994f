"""Blocking device-to-host reads that wait by spinning briefly before they sleep.

A blocking ``enqueue_copy`` waits in the driver on a condition variable. On the shared
virtual machines clnn is measured on, a thread that sleeps is slow to wake up (a halted
virtual CPU): reading 16 bytes back after a tiny kernel took ~50 us on PoCL 3.0, most of it
two wake-ups. :func:`read` enqueues the copy without blocking, flushes the queue, then polls
the event for up to :data:`SPIN_S` before it falls back to the driver's wait; the same
round trip took ~34 us. A result needed after a long computation costs at most ``SPIN_S`` of
one core's time spent polling.

Example:
    >>> import numpy as np, clnn
    >>> from clnn.transfer import read
    >>> with clnn.Runtime("cpu") as rt:
    ...     v = rt.vector([1, 2, 3])
    ...     host = np.empty(3, np.float32)
    ...     read(rt.queue, host, v._buf)
    ...     print(host)
    [1. 2. 3.]
"""

from __future__ import annotations

import time

import numpy as np
import pyopencl as cl

__all__ = ["read", "SPIN_S"]

SPIN_S = 100e-6
"""Longest time :func:`read` polls its event before it sleeps in the driver's wait."""

_COMPLETE = cl.command_execution_status.COMPLETE


def read(queue: cl.CommandQueue, host: np.ndarray, buf: cl.Buffer, offset: int = 0) -> None:
    """Copy ``host.nbytes`` bytes from ``buf`` at byte ``offset`` into ``host``; returns when
    they are there (like a blocking ``enqueue_copy``; a failed copy raises the same error)."""
    ev = cl.enqueue_copy(queue, host, buf, src_offset=offset, is_blocking=False)
    queue.flush()
    t0 = time.perf_counter()
    while ev.command_execution_status > _COMPLETE:  # queued, submitted or running
        if time.perf_counter() - t0 > SPIN_S:
            break
    if ev.command_execution_status != _COMPLETE:
        ev.wait()  # sleeps until done; raises if the copy failed
