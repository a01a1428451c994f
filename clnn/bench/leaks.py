"""``clnn bench leaks``: does anything grow when clnn's objects come and go?

Each scenario runs a few warm-up rounds (kernels built, pools filled), then measures the
process's resident memory (RSS) before and after many repetitions; the growth must stay below
``--limit`` MiB (32 by default). The figures in ``docs/reliability.md`` come from this command.

Scenarios (counts with ``--quick`` in brackets):

* ``buffers``: create and release 100,000 vectors and matrices of mixed sizes [10,000];
* ``mv``: 10,000 ``mv`` calls, half into an existing output, half allocating one [2,000];
* ``ops``: 2,000 rounds of ``mm`` and elementwise ops with allocated results [300];
* ``runtimes``: open a runtime, run an ``mv`` on it, close it, 300 times [50];
* ``forgotten``: 10,000 vectors never released, freed by the garbage collector with a
  ``ResourceWarning`` each [2,000];
* ``device-memory``: 3 rounds [2] (after one warm-up round) of filling 40% of the device's
  memory (at most 2 GiB) with buffers caught in reference cycles and leaving the runtime:
  what the device held must come back each time.

Example::

    clnn bench leaks --quick
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from typing import Callable, Dict, List, Optional

import numpy as np

from .options import add_options
from .timing import table, time_call, write_json

__all__ = ["rss_bytes", "measure", "SCENARIOS", "run_scenario", "add_arguments", "run"]

MiB = 1 << 20
LIMIT_MIB = 32


def rss_bytes() -> int:
    """The resident memory of this process now (Linux: /proc; elsewhere: the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def measure(name: str, step: Callable[[int], None], count: int, warmup: int,
            rt=None) -> dict:
    """Run ``step(i)`` ``warmup`` times, then ``count`` times between two RSS readings.
    With ``rt``, the runtime's live buffers and bytes must be the same before and after."""
    for i in range(warmup):
        step(i)
    gc.collect()
    held = None if rt is None else (len(rt._arrays), rt.bytes_in_use)
    before = rss_bytes()

    def steps() -> None:
        for i in range(count):
            step(i)
        gc.collect()

    seconds = time_call(steps)
    after = rss_bytes()
    if rt is not None:
        rt.finish()
        now = (len(rt._arrays), rt.bytes_in_use)
        assert now == held, f"{name}: live buffers/bytes went from {held} to {now}"
    return {"scenario": name, "count": count, "seconds": seconds, "rss_before": before,
            "rss_after": after, "growth": after - before}


# ---- scenarios --------------------------------------------------------------------------
def _buffers(device, count: int) -> dict:
    from ..runtime import Runtime

    sizes = (1, 17, 1000, 4099)
    with Runtime(device) as rt:
        def step(i: int) -> None:
            n = sizes[i % 4]
            if i % 2:
                a = rt.vector(n)
            else:
                a = rt.matrix((n, 3), layout="col" if i % 4 else "row")
            a.release()

        res = measure("buffers", step, count, warmup=200, rt=rt)
        assert rt.bytes_in_use == 0 and len(rt._arrays) == 0, "buffers left behind"
    return res


def _mv(device, count: int) -> dict:
    from ..gemv import mv
    from ..runtime import Runtime

    rng = np.random.default_rng(0)
    with Runtime(device) as rt:
        a = rt.matrix(rng.standard_normal((301, 257)).astype(np.float32))
        x = rt.vector(rng.standard_normal(257).astype(np.float32))
        y = rt.vector(301)

        def step(i: int) -> None:
            if i % 2:
                mv(a, x, out=y, alpha=1.5, beta=0.5)
            else:
                mv(a.T, y).release()
            if i % 100 == 0:
                y.to_numpy()

        res = measure("mv", step, count, warmup=100, rt=rt)
    return res


def _ops(device, count: int) -> dict:
    from .. import elementwise as ew
    from ..gemm import mm
    from ..runtime import Runtime

    rng = np.random.default_rng(1)
    with Runtime(device) as rt:
        a = rt.matrix(rng.standard_normal((67, 45)).astype(np.float32))
        b = rt.matrix(rng.standard_normal((45, 33)).astype(np.float32))

        def step(i: int) -> None:
            c = mm(a, b)
            d = ew.tanh(c)
            e = ew.add(c, d)
            for t in (c, d, e):
                t.release()

        res = measure("ops", step, count, warmup=20, rt=rt)
    return res


def _runtimes(device, count: int) -> dict:
    from ..gemv import mv
    from ..runtime import Runtime

    data = np.arange(12, dtype=np.float32).reshape(3, 4)

    def step(i: int) -> None:
        with Runtime(device) as rt:
            y = mv(rt.matrix(data), rt.vector(np.ones(4, np.float32)))
            assert y.to_numpy()[2] == 38.0

    return measure("runtimes", step, count, warmup=5)


def _forgotten(device, count: int) -> dict:
    from ..runtime import Runtime

    seen = [0]
    with Runtime(device) as rt, warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ResourceWarning)

        def step(i: int) -> None:
            rt.vector(1000)  # dropped at once: the garbage collector frees it
            if i % 1000 == 999:
                seen[0] += sum(1 for x in w if issubclass(x.category, ResourceWarning))
                del w[:]

        res = measure("forgotten", step, count, warmup=10, rt=rt)
        seen[0] += sum(1 for x in w if issubclass(x.category, ResourceWarning))
        assert rt.bytes_in_use == 0 and len(rt._arrays) == 0, "forgotten buffers still held"
    res["warnings"] = seen[0]
    assert seen[0] == count + 10, f"{seen[0]} ResourceWarnings for {count + 10} buffers"
    return res


def _device_memory(device, rounds: int) -> dict:
    """Fill 40% of the device in every round (of at most 2 GiB, lowering the runtime's
    ``memory_limit`` to match) with buffers caught in reference cycles and let the runtime's
    exit free them, with the garbage collector switched off. Warm-up plus rounds ask for more
    than fits in all, so a runtime that kept anything would hit OutOfMemoryError; the RSS
    peaks of the rounds show that a CPU device's memory really comes back."""
    from ..runtime import Runtime, device_bytes_in_use

    limit = min(device.global_mem, 2048 * MiB)
    chunk = min(device.max_alloc, 128 * MiB)
    nchunks = max(1, int(limit * 0.4) // chunk)
    base = device_bytes_in_use(device)
    peaks: List[int] = []

    def step(i: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with Runtime(device) as rt:
                rt.memory_limit = limit + base
                held = []
                for _ in range(nchunks):
                    v = rt.zeros(chunk // 4)  # zeros writes every byte: real memory
                    held.append(v)
                held.append(held)  # a cycle, and each buffer's runtime points back
                rt.finish()
                peaks.append(rss_bytes())
                del held
        assert device_bytes_in_use(device) == base, "the runtime's exit did not free all"

    was = gc.isenabled()
    gc.disable()  # the runtime's exit must free the memory, not the garbage collector
    try:
        res = measure("device-memory", step, rounds, warmup=1)
    finally:
        if was:
            gc.enable()
    res["bytes_per_round"] = nchunks * chunk
    res["limit"] = limit
    res["peak_rss"] = max(peaks)
    res["peak_growth"] = max(peaks) - peaks[0]
    res["growth"] = max(res["growth"], res["peak_growth"])
    return res


SCENARIOS: Dict[str, tuple] = {
    # name: (function, full count, --quick count)
    "buffers": (_buffers, 100_000, 10_000),
    "mv": (_mv, 10_000, 2_000),
    "ops": (_ops, 2_000, 300),
    "runtimes": (_runtimes, 300, 50),
    "forgotten": (_forgotten, 10_000, 2_000),
    "device-memory": (_device_memory, 3, 2),
}


def run_scenario(name: str, device, count: Optional[int] = None, quick: bool = False) -> dict:
    fn, full, short = SCENARIOS[name]
    n = count if count is not None else (short if quick else full)
    return fn(device, n)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--limit", type=float, default=LIMIT_MIB,
                        help="largest acceptable RSS growth per scenario, MiB (default 32)")
    add_options(parser, quick="smaller counts (a smoke test)",
                only=("--only", "NAME", list(SCENARIOS), "scenarios"))


def run(args: argparse.Namespace, name: str) -> int:
    from ..devices import select_device

    device = select_device(args.device)
    print(f"device: {device}")
    print(f"RSS growth limit per scenario: {args.limit:g} MiB"
          f"{' (--quick counts)' if args.quick else ''}")
    results = []
    for scen in args.only or list(SCENARIOS):
        r = run_scenario(scen, device, quick=args.quick)
        r["ok"] = r["growth"] < args.limit * MiB
        results.append(r)
        print(f"  {scen}: {r['count']} in {r['seconds']:.1f} s, "
              f"RSS {r['rss_before'] / MiB:.1f} -> {r['rss_after'] / MiB:.1f} MiB", flush=True)
    rows = [(r["scenario"], f"{r['count']:,}", f"{r['seconds']:.1f}",
             f"{r['rss_before'] / MiB:.1f}", f"{r['rss_after'] / MiB:.1f}",
             f"{r['growth'] / MiB:+.1f}", "ok" if r["ok"] else "LEAK") for r in results]
    print(table(["scenario", "count", "seconds", "RSS before MiB", "RSS after MiB",
                 "growth MiB", "verdict"], rows))
    for r in results:
        if r["scenario"] == "device-memory":
            print(f"device-memory: {r['count'] + 1} rounds of {r['bytes_per_round'] / MiB:.0f} "
                  f"MiB under a {r['limit'] / MiB:.0f} MiB limit, peak RSS "
                  f"{r['peak_rss'] / MiB:.0f} MiB, all of it back after each exit")
        if r["scenario"] == "forgotten":
            print(f"forgotten: {r['warnings']:,} ResourceWarnings for as many buffers")
    if args.json:
        write_json(args.json, {"device": device.as_dict(), "limit_mib": args.limit,
                               "results": results})
    return 0 if all(r["ok"] for r in results) else 1
