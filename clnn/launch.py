"""Prepared kernel launches: one kernel object per variant, arguments set only when they
change, and the enqueue done under the runtime's lock.

"Change" is judged by identity for buffers: pyopencl compares buffers by their ``cl_mem``
handle, and a driver may hand a released buffer's handle to the next allocation, so an equal
handle can be another buffer; keeping the bound buffer objects in ``last`` also keeps their
identities from being reused.

This keeps a small call close to the cost of a raw ``enqueue_nd_range_kernel``.
"""

from __future__ import annotations

import weakref
from typing import Any, Optional, Sequence

import numpy as np
import pyopencl as cl

from .errors import ReleasedError


def _refuse_dead(args: tuple, bufpos: tuple) -> None:
    """Raise ReleasedError when a buffer argument was released (by another thread) after the
    op's checks; called under the runtime's lock, so no release can slip in after it."""
    for i in bufpos:
        b = args[i]
        if b is None or getattr(b, "_clnn_dead", False):
            raise ReleasedError("an operand was released by another thread while this op "
                                "was starting")


def args_changed(args: tuple, last: tuple) -> bool:
    """Whether ``args`` differ from the arguments ``last`` bound to a kernel: buffers by
    identity (never by handle), everything else by value."""
    if len(args) != len(last) or args != last:
        return True
    for a, b in zip(args, last):
        if a is not b and isinstance(a, cl.MemoryObjectHolder):
            return True
    return False


class Plan:
    """A kernel with its argument types; ``launch`` sets arguments (if changed) and enqueues."""

    __slots__ = ("kernel", "last", "params", "_queue", "_lock", "_rt", "_bufpos")

    def __init__(self, runtime: Any, kernel: cl.Kernel, arg_dtypes: Sequence[Any],
                 params: Optional[dict] = None):
        kernel.set_scalar_arg_dtypes(list(arg_dtypes))
        self.kernel = kernel
        self.last: tuple = ()
        self.params = params or {}
        self._queue = runtime._queue
        self._lock = runtime._lock
        self._rt = weakref.ref(runtime)  # no cycle: the runtime holds its plans
        # argument slots without a dtype hold buffers: checked at launch, under the lock, for
        # a buffer that another thread released after this op's checks (Array.release marks
        # it dead). Bytes an op packs itself are declared with a structured dtype instead
        self._bufpos = tuple(i for i, d in enumerate(arg_dtypes) if d is None)

    def launch(self, gsize: tuple, lsize: Optional[tuple], args: tuple) -> None:
        with self._lock:
            rt = self._rt()
            if rt is None or rt._released:  # released by another thread since the op's checks
                raise ReleasedError("the clnn.Runtime was released while this op was starting")
            _refuse_dead(args, self._bufpos)
            if args_changed(args, self.last):
                self.kernel.set_args(*args)
                self.last = args
            cl.enqueue_nd_range_kernel(self._queue, self.kernel, gsize, lsize)


def real_type(dtype: np.dtype) -> str:
    return "float" if dtype == np.float32 else "double"


def round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k
