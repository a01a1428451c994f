"""The device's multiply-add peak, as a contender of the benchmarks: how fast any code could
run a given number of flops on this device (``kernels/peak.cl.mako``).

A dense network's training step and ``predict`` are matrix products: at best they run at the
rate the device multiplies and adds, and nothing -- clnn, PyTorch, numpy -- runs the same
products faster. :class:`FmaPeak` runs a kernel that only multiplies and adds (in vector
registers, no memory traffic) for exactly a given number of flops, so it can be timed in the
same rounds as the contenders (:func:`clnn.bench.timing.paired_samples`): the ratio of a
contender's time to the peak's is the *ceiling*, the most any implementation of the same
arithmetic could gain over that contender in that run. ``clnn bench peak`` prints the rate
alone.

Example:
    >>> import clnn
    >>> from clnn.bench.peak import FmaPeak
    >>> with clnn.Runtime("cpu") as rt, FmaPeak(rt) as peak:
    ...     run = peak.runner(2e6)  # a run of 2 MFLOP: one launch, then a wait
    ...     run()
    ...     print(round(peak.flops(2e6) / 1e6))  # whole loop steps: about what was asked
    2
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as np

from .. import tuning
from ..dtypes import as_dtype
from ..errors import ClnnError
from ..launch import Plan, real_type, template_signatures
from .options import add_options
from .timing import WARM_S, paired_samples, time_call

NACC = 12
"""Independent multiply-add chains per work-item (the gemm tile's 6 x 2 accumulators: enough
to cover the units' latency on CPUs)."""
CPU_ITEMS = 4
"""Work-items per compute unit on a CPU device (one per work-group), so no thread waits for
a late one for long."""
GPU_ITEMS = 2048
"""Work-items per compute unit on other devices (groups of up to 256)."""
MAX_ITERS = 1 << 30


class FmaPeak:
    """The multiply-add kernel, prepared for a runtime and dtype (a context manager: its
    output buffer is released on exit)."""

    def __init__(self, rt: Any, dtype: Any = np.float32):
        self.rt = rt
        self.dtype = as_dtype(dtype)  # float32 or float64, else DTypeError
        rt._check_dtype(self.dtype)  # float64 only where the device has it
        rtype = real_type(self.dtype)
        dev = rt.device
        if dev.type == "CPU":
            # the packed gemm's vector width: the same instructions as its tile kernel
            self.vw = tuning.params(dev, "gemm", "packed", rtype, "large")["VW"]
            self.items, local = CPU_ITEMS * dev.compute_units, (1,)
        else:
            self.vw = 1
            wgs = min(256, dev.max_work_group_size)
            self.items, local = GPU_ITEMS * dev.compute_units // wgs * wgs, (wgs,)
        render = {"dtype": rtype, "VW": self.vw, "NACC": NACC}
        names, dtypes = template_signatures("peak.cl.mako", **render)["fma_peak"]
        kernel = rt.programs.kernel("peak.cl.mako", "fma_peak", **render)
        self._out = rt.vector(self.items, dtype=self.dtype)
        self._plan = Plan(rt, kernel, dtypes, wgs=local[0], names=names).bind(
            (self.items,), local, {"out": self._out._buf, "iters": 1, "m": self.dtype.type(1),
                                   "a": self.dtype.type(0)})
        self._per_iter = 2 * self.items * NACC * self.vw  # flops of one step of the loop

    def _iters(self, flops: float) -> int:
        return max(1, round(flops / self._per_iter))

    def flops(self, flops: float) -> float:
        """The flops a run for ``flops`` does (whole loop steps: within one step of it)."""
        return self._iters(flops) * self._per_iter

    def runner(self, flops: float) -> Callable[[], None]:
        """A run of about ``flops`` multiply-add flops: its launches, then a wait."""
        iters = self._iters(flops)
        parts = [MAX_ITERS] * (iters // MAX_ITERS) + ([iters % MAX_ITERS] if iters % MAX_ITERS
                                                      else [])
        plan, rt = self._plan, self.rt

        def run() -> None:
            with rt._lock:
                for n in parts:
                    plan.update(iters=n)
                    plan()
            rt.queue.finish()

        return run

    def gflops(self, seconds: float = 0.05, repeat: int = 7) -> float:
        """The best GFLOP/s of ``repeat`` runs of about ``seconds`` each, each behind a
        warm-up (the peak: no run can beat the device, so the fastest is the closest)."""
        flops = 1e8
        while True:  # calibrate the flops of one run to the given length
            t = time_call(self.runner(flops))
            if t >= seconds / 4 or flops > 1e13:
                break
            flops *= 4
        flops *= max(1.0, seconds / t)
        t = min(paired_samples({"peak": self.runner(flops)}, repeat, 0.0, WARM_S)["peak"])
        return self.flops(flops) / t / 1e9

    def release(self) -> None:
        self._out.release()

    def __enter__(self) -> FmaPeak:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Options of ``clnn bench peak`` (``--device`` is added by the CLI)."""
    add_options(parser, repeat=(7, "timed runs (the best counts)"))


def run(args: argparse.Namespace, name: str = "peak") -> int:
    import clnn

    if args.repeat < 1:  # before any device work
        raise ClnnError(f"--repeat must be at least 1, got {args.repeat}")
    with clnn.Runtime(args.device) as rt:
        print(f"device: {rt.device}")
        for dtype in (np.float32,) + ((np.float64,) if rt.device.fp64 else ()):
            with FmaPeak(rt, dtype) as peak:
                print(f"{np.dtype(dtype).name}: {peak.gflops(repeat=args.repeat):.1f} GFLOP/s "
                      f"multiply-add peak ({peak.items} work-items x {NACC} chains of "
                      f"{peak.vw} lanes)")
    return 0
