"""Prepared kernel launches: one kernel object per variant, arguments set only when they
change, and the enqueue done under the runtime's lock.

A :class:`Plan` is used in one of two ways: :meth:`Plan.launch` takes the sizes and every
argument per call (the ops); or :meth:`Plan.bind` sets them once by name, :meth:`Plan.update`
re-sets the few that move by name, and calling the plan enqueues it (the nn and optimizer
call sites, prepared once and enqueued every step). Argument names and types come from the
kernel's own declaration in the rendered source (:func:`signatures`).

"Change" is judged by identity for buffers: pyopencl compares buffers by their ``cl_mem``
handle, and a driver may hand a released buffer's handle to the next allocation, so an equal
handle can be another buffer; keeping the bound buffer objects in ``last`` also keeps their
identities from being reused.

This keeps a small call close to the cost of a raw ``enqueue_nd_range_kernel``.
"""

from __future__ import annotations

import functools
import re
import weakref
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyopencl as cl

from .errors import KernelLimitError, ReleasedError
from .program import render


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


# "__kernel [__attribute__((...))] void name(params)": an attribute may hold one level of
# parentheses, as reqd_work_group_size(x, y, z) does
_KERNEL = re.compile(r"__kernel\s+(?:__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)\s*)*"
                     r"void\s+(\w+)\s*\(([^)]*)\)")
_SCALARS = {"int": np.int32, "uint": np.uint32, "long": np.int64, "float": np.float32,
            "double": np.float64}


def signatures(source: str, real: Any = None) -> Dict[str, Tuple[Tuple[str, ...], tuple]]:
    """``{kernel: (argument names, argument dtypes)}`` of every ``__kernel void`` in an OpenCL
    ``source``, read from its parameter list: pointers are buffers (dtype None), ``int`` is
    int32, ``real`` is ``real`` (the template's scalar type), ``float``/``double`` as named.

    Example:
        >>> import numpy as np
        >>> signatures("__kernel void k(const int n, __global real* restrict x, "
        ...            "const real a) {}", np.float32)
        {'k': (('n', 'x', 'a'), (<class 'numpy.int32'>, None, <class 'numpy.float32'>))}
    """
    out = {}
    for name, params in _KERNEL.findall(source):
        names, dtypes = [], []
        for decl in params.split(","):
            words = decl.replace("*", " * ").split()
            names.append(words[-1])
            if "*" in words:
                dtypes.append(None)
            else:
                t = words[-2]
                dtypes.append(real if t == "real" else _SCALARS[t])
        out[name] = (tuple(names), tuple(dtypes))
    return out


@functools.cache
def _template_signatures(template: str, params: tuple) -> dict:
    p = dict(params)
    return signatures(render(template, **p), np.float32 if p["dtype"] == "float" else np.float64)


def template_signatures(template: str, **params: Any) -> Dict[str, Tuple[tuple, tuple]]:
    """:func:`signatures` of a kernel template rendered with ``params`` (``dtype`` is the
    real type, "float" or "double"); read once per parameter set."""
    return _template_signatures(template, tuple(sorted(params.items())))


def local_size(runtime: Any, program: cl.Program, wgs: int) -> int:
    """The local size of a program's launches for the tunable ``wgs``, when its kernels are
    not compiled for one: lowered to a power of two that every kernel of the program allows,
    so no launch exceeds CL_KERNEL_WORK_GROUP_SIZE (a kernel may allow less than the
    device)."""
    limit = min(fit_kernel(runtime, k) for k in program.all_kernels())
    return 1 << (min(wgs, limit).bit_length() - 1)


def tiles(runtime: Any, items: int, wgs: int, nt: int) -> tuple:
    """(tiles per work-item, gsize, lsize) to cover ``nt`` tiles with work-groups of ``wgs``:
    about ``items`` work-items per compute unit, each taking a run of consecutive tiles."""
    target = max(1, items * runtime.device.compute_units)
    tpi = max(1, -(-nt // target))
    n = -(-max(nt, 1) // tpi)
    return tpi, (round_up(n, wgs),), (wgs,)


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
    (tunables then fall back); ``launch`` and ``bind`` refuse a larger local size too.
    ``names``: the arguments' names (for :meth:`bind` and :meth:`update`).

    Example:
        >>> import clnn, numpy as np, pyopencl as cl
        >>> from clnn.launch import Plan, signatures
        >>> src = "__kernel void twice(const int n, __global float* x) { x[n] *= 2; }"
        >>> with clnn.Runtime("cpu", dtype=np.float32) as rt:
        ...     names, dtypes = signatures(src)["twice"]
        ...     kern = cl.Kernel(cl.Program(rt.ctx, src).build(), "twice")
        ...     x = rt.vector([1.0, 2.0])
        ...     plan = Plan(rt, kern, dtypes, names=names).bind((1,), None, {"n": 0, "x": x._buf})
        ...     with rt._lock:
        ...         plan()
        ...         plan.update(n=1)
        ...         plan()
        ...     print(x.to_numpy())
        [2. 4.]
    """

    __slots__ = ("kernel", "last", "params", "max_wgs", "names", "gsize", "lsize", "_queue",
                 "_lock", "_rt", "_bufpos", "_index")

    def __init__(self, runtime: Any, kernel: cl.Kernel, arg_dtypes: Sequence[Any],
                 params: Optional[dict] = None, wgs: Optional[int] = None,
                 names: Sequence[str] = ()):
        if wgs is None:
            wgs = (params or {}).get("WGS", 1)
        self.max_wgs = fit_kernel(runtime, kernel, wgs)
        kernel.set_scalar_arg_dtypes(list(arg_dtypes))
        self.kernel = kernel
        self.last: tuple = ()
        self.params = params or {}
        self.names = tuple(names)
        self._index = {n: i for i, n in enumerate(self.names)}
        self.gsize: tuple = ()
        self.lsize: Optional[tuple] = None
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
            self._check_local(lsize, rt)
            if args_changed(args, self.last):
                self.kernel.set_args(*args)
                self.last = args
            cl.enqueue_nd_range_kernel(self._queue, self.kernel, gsize, lsize)

    def _check_local(self, lsize: Optional[tuple], rt: Any) -> None:
        if lsize is not None and (lsize[0] if len(lsize) == 1 else _items(lsize)
                                  ) > self.max_wgs:
            raise KernelLimitError(
                f"kernel {self.kernel.function_name}: local size {lsize} exceeds the "
                f"{self.max_wgs} work-items per group it allows on {rt.device.name!r}",
                limit=self.max_wgs)

    # ---- a prepared call site: bound once, updated by name, enqueued by calling it ----------
    def bind(self, gsize: tuple, lsize: Optional[tuple], args: Mapping[str, Any]) -> Plan:
        """Set the sizes and every argument, by name, for :meth:`__call__`; returns the plan.
        A buffer argument that was released raises :class:`clnn.ReleasedError` here (and in
        :meth:`update`), so the enqueue itself checks nothing."""
        if set(args) != set(self.names):
            raise TypeError(f"kernel {self.kernel.function_name}: arguments "
                            f"{sorted(set(self.names) - set(args))} missing, "
                            f"{sorted(set(args) - set(self.names))} unknown")
        vals = tuple(args[n] for n in self.names)
        self._check_local(lsize, self._rt())
        self._refuse_released(vals)
        self.kernel.set_args(*vals)
        self.last, self.gsize, self.lsize = vals, gsize, lsize
        return self

    def update(self, **named: Any) -> None:
        """Re-set the arguments when a named one changed (buffers by identity, scalars by
        value). All are set again in one ``set_args``: pyopencl's ``set_arg`` of one scalar
        costs more (~30 us on PoCL) than setting twenty through the packed path (~5 us)."""
        last = self.last
        vals = list(last)
        index = self._index
        for name, v in named.items():
            vals[index[name]] = v
        vals = tuple(vals)
        if args_changed(vals, last):
            # every buffer, not only the named ones: an offset moved on a buffer that was
            # released since it was bound must not reach the driver either
            self._refuse_released(vals)
            self.kernel.set_args(*vals)
            self.last = vals

    def _refuse_released(self, vals: tuple) -> None:
        """ReleasedError naming the first buffer argument of ``vals`` that was released."""
        for i in self._bufpos:
            if vals[i] is None or getattr(vals[i], "_clnn_dead", False):
                raise ReleasedError(f"kernel {self.kernel.function_name}: buffer argument "
                                    f"{self.names[i]} was released")

    def arg(self, name: str) -> Any:
        """The value argument ``name`` is bound to."""
        return self.last[self._index[name]]

    def __call__(self) -> None:
        """Enqueue with the bound sizes and arguments (the caller holds the runtime's lock)."""
        cl.enqueue_nd_range_kernel(self._queue, self.kernel, self.gsize, self.lsize)


def _items(lsize: tuple) -> int:
    n = 1
    for s in lsize:
        n *= s
    return n


def real_type(dtype: np.dtype) -> str:
    return "float" if dtype == np.float32 else "double"


def round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k
