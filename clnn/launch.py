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

from .errors import KernelLimitError, ReleasedError


def _refuse_dead(args: tuple, bufpos: tuple) -> None:
    """Raise ReleasedError when a buffer argument was released (by another thread) after the
    op's checks; called under the runtime's lock, so no release can slip in after it."""
    for i in bufpos:
        b = args[i]
        if b is None or getattr(b, "_clnn_dead", False):
            raise ReleasedError("an operand was released by another thread while this op "
                                "was starting")


def _query(kernel: cl.Kernel, dev: cl.Device) -> tuple:
    """(CL_KERNEL_WORK_GROUP_SIZE, CL_KERNEL_LOCAL_MEM_SIZE) of a built kernel."""
    info = cl.kernel_work_group_info
    return (int(kernel.get_work_group_info(info.WORK_GROUP_SIZE, dev)),
            int(kernel.get_work_group_info(info.LOCAL_MEM_SIZE, dev)))


def kernel_limits(runtime: Any, kernel: cl.Kernel) -> tuple:
    """``(max work-items per group, local bytes it uses)`` of ``kernel`` as built for the
    runtime's device. The first is the least of the kernel's ``CL_KERNEL_WORK_GROUP_SIZE``
    (a kernel with many registers or much local memory may allow less than the device) and
    the runtime's ``DeviceInfo.max_work_group_size``."""
    wg, local = _query(kernel, runtime._cl_device)
    return min(wg, runtime.device.max_work_group_size), local


def check_wgs(device: Any, p: dict, *names: str) -> None:
    """Tunables validator part: the work-group sizes ``names`` (default ``"WGS"``) are at
    most the device's maximum (``ValueError`` otherwise, as validators raise)."""
    for k in names or ("WGS",):
        if p.get(k, 1) > device.max_work_group_size:
            raise ValueError(f"{k}={p[k]} exceeds the device's maximum work-group size "
                             f"{device.max_work_group_size}")


def fit_kernel(runtime: Any, kernel: cl.Kernel, wgs: int = 1, what: str = "") -> int:
    """Check that ``kernel`` may run work-groups of ``wgs`` work-items and that its local
    memory fits the device (``DeviceInfo.local_mem``); returns the most work-items per group
    it allows. Raises :class:`clnn.KernelLimitError` otherwise -- when the kernel is prepared,
    not at enqueue."""
    limit, local = kernel_limits(runtime, kernel)
    dev = runtime.device
    name = what or kernel.function_name
    if local > dev.local_mem:
        raise KernelLimitError(f"kernel {name} needs {local} bytes of local memory, more than "
                               f"the {dev.local_mem} of {dev.name!r}")
    if wgs > limit:
        raise KernelLimitError(f"kernel {name} allows at most {limit} work-items per work-group "
                               f"on {dev.name!r} (device maximum {dev.max_work_group_size}); "
                               f"it was prepared for {wgs}", limit=limit)
    return limit


def build_fitting(build: Any, p: dict, *names: str) -> Any:
    """``build(p)``; when a built kernel allows fewer work-items per group than the sizes
    ``names`` of ``p`` (:class:`clnn.KernelLimitError`), ``build`` again with those lowered to
    the largest power of two it allows (the kernels are compiled for their work-group size,
    so lowering means another build). The caller takes the sizes from what ``build`` made."""
    try:
        return build(p)
    except KernelLimitError as e:
        limit = e.limit
        if not limit or all(p.get(k, 1) <= limit for k in names):
            raise
        fit = 1 << (int(limit).bit_length() - 1)
        return build(dict(p, **{k: min(p[k], fit) for k in names}))


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
    """A kernel with its argument types; ``launch`` sets arguments (if changed) and enqueues.

    ``wgs``: the work-items per work-group it will be launched with (default: ``params``'
    WGS, else 1), checked against the built kernel's limits here (:func:`fit_kernel`), so a
    kernel that cannot run raises :class:`clnn.KernelLimitError` while it is being prepared
    (tunables then fall back); ``launch`` refuses a larger local size too."""

    __slots__ = ("kernel", "last", "params", "max_wgs", "_queue", "_lock", "_rt", "_bufpos")

    def __init__(self, runtime: Any, kernel: cl.Kernel, arg_dtypes: Sequence[Any],
                 params: Optional[dict] = None, wgs: Optional[int] = None):
        if wgs is None:
            wgs = (params or {}).get("WGS", 1)
        self.max_wgs = fit_kernel(runtime, kernel, wgs)
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
            if lsize is not None and (lsize[0] if len(lsize) == 1 else _items(lsize)
                                      ) > self.max_wgs:
                raise KernelLimitError(
                    f"kernel {self.kernel.function_name}: local size {lsize} exceeds the "
                    f"{self.max_wgs} work-items per group it allows on {rt.device.name!r}",
                    limit=self.max_wgs)
            if args_changed(args, self.last):
                self.kernel.set_args(*args)
                self.last = args
            cl.enqueue_nd_range_kernel(self._queue, self.kernel, gsize, lsize)


def _items(lsize: tuple) -> int:
    n = 1
    for s in lsize:
        n *= s
    return n


def real_type(dtype: np.dtype) -> str:
    return "float" if dtype == np.float32 else "double"


def round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k
