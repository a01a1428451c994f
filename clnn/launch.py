"""Prepared kernel launches: one kernel object per variant, arguments set only when they
change, and the enqueue done under the runtime's lock.

This keeps a small call close to the cost of a raw ``enqueue_nd_range_kernel``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pyopencl as cl


class Plan:
    """A kernel with its argument types; ``launch`` sets arguments (if changed) and enqueues."""

    __slots__ = ("kernel", "last", "params", "_queue", "_lock")

    def __init__(self, runtime: Any, kernel: cl.Kernel, arg_dtypes: Sequence[Any],
                 params: Optional[dict] = None):
        kernel.set_scalar_arg_dtypes(list(arg_dtypes))
        self.kernel = kernel
        self.last: tuple = ()
        self.params = params or {}
        self._queue = runtime._queue
        self._lock = runtime._lock

    def launch(self, gsize: tuple, lsize: Optional[tuple], args: tuple) -> None:
        with self._lock:
            if args != self.last:
                self.kernel.set_args(*args)
                self.last = args
            cl.enqueue_nd_range_kernel(self._queue, self.kernel, gsize, lsize)


def real_type(dtype: np.dtype) -> str:
    return "float" if dtype == np.float32 else "double"


def round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k
