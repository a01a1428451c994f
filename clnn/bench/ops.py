"""``clnn bench ops``: the Python operators beside the named functions they call.

An operator is one launch of an existing kernel, so it should cost what the function costs.
Each case times the operator and the named function on the same data (each followed by
``rt.finish()``; a result the call allocates is released, on both sides), alternating their
timed runs (each a few back-to-back calls, about 0.1 s, behind a pause and an untimed
warm-up); the ratio is the median over the pairs of runs of operator time / function time, so
a slow phase of the machine cancels out of it. Pairs disturbed by other processes are retaken
as in ``clnn bench gemm`` (:func:`clnn.bench.timing.quiet_interleaved`); the table says how many
pairs were quiet.

============  ===========================  =================================
case          operator                     named function
============  ===========================  =================================
``mm``        ``a @ b``                    ``clnn.mm(a, b)``
``mv``        ``a @ x``                    ``clnn.mv(a, x)``
``iadd``      ``y += x``                   ``clnn.axpy(1.0, x, y)``
``add``       ``x + y``                    ``clnn.add(x, y)``
============  ===========================  =================================

Target: ``mm`` and ``iadd`` at the default sizes (1024^3 and 10^7 elements) within 5% of
the function (ratio <= 1.05). The exit status is 1 when a target fails.

Example:
    clnn bench ops --quick
    clnn bench ops --dtype float64 --json ops.json
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List

import numpy as np

from .options import FLOATS, add_options, device_dtypes
from .timing import calibrate, quiet_interleaved, table, write_json

TARGET = 1.05
CASES = ("mm", "mv", "iadd", "add")
JUDGED = ("mm", "iadd")


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--n", type=int, default=10_000_000,
                        help="elements of the vectors of iadd and add")
    parser.add_argument("--size", type=int, default=1024,
                        help="square size of the matrices of mm and mv")
    add_options(parser, quick="fewer timed runs (a smoke run)",
                dtype=(FLOATS, "float32", None), only=("--cases", "CASE", CASES, "cases"),
                repeat=(0, "timed pairs per case (default 15, --quick 5)"))


def _contenders(rt, case: str, a, b, x, y, xv) -> Dict[str, Callable[[], object]]:
    import clnn

    def fresh(fn):  # a call that allocates its result: wait for it, then release it
        def run():
            r = fn()
            rt.finish()
            r.release()
        return run

    def inplace(fn):
        def run():
            fn()
            rt.finish()
        return run

    if case == "mm":
        return {"function": fresh(lambda: clnn.mm(a, b)), "operator": fresh(lambda: a @ b)}
    if case == "mv":
        return {"function": fresh(lambda: clnn.mv(a, xv)), "operator": fresh(lambda: a @ xv)}
    if case == "add":
        return {"function": fresh(lambda: clnn.add(x, y)), "operator": fresh(lambda: x + y)}

    def iadd():
        nonlocal y
        y += x
    return {"function": inplace(lambda: clnn.axpy(1.0, x, y)), "operator": inplace(iadd)}


def run(args: argparse.Namespace, name: str) -> int:
    from ..runtime import Runtime

    dtype = np.dtype(args.dtype)
    repeat = args.repeat or (5 if args.quick else 15)
    cases = args.cases or CASES
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    rows: List[list] = []
    results: List[dict] = []
    with Runtime(getattr(args, "device", None)) as rt:
        if not device_dtypes(rt.device, [dtype]):
            return 0
        print(f"clnn bench ops on {rt.device}; {dtype.name}; matrices {args.size}^2, vectors "
              f"{args.n}; ratio = median over the pairs of operator / function time")
        s, n = args.size, args.n
        a = rt.matrix(rng.uniform(-1, 1, (s, s)).astype(dtype))
        b = rt.matrix(rng.uniform(-1, 1, (s, s)).astype(dtype))
        xv = rt.vector(rng.uniform(-1, 1, s).astype(dtype))
        x = rt.vector(rng.uniform(-1e-3, 1e-3, n).astype(dtype))
        y = rt.vector(np.zeros(n, dtype))
        with a, b, xv, x, y:
            for case in cases:
                fns = _contenders(rt, case, a, b, x, y, xv)
                number = calibrate(fns["function"], target_s=0.03 if args.quick else 0.1)
                med, quiet, pairs = quiet_interleaved(
                    fns, repeat, {k: number for k in fns}, 0.0,
                    budget_s=5.0 if args.quick else 30.0)
                ratio = med["pair_ratio"]
                judged = case in JUDGED and s >= 1024 and n >= 10_000_000
                ok = bool(ratio <= TARGET) if judged else None
                fm, om = med["function"], med["operator"]
                results.append({"case": case, "function_s": fm, "operator_s": om,
                                "ratio": ratio, "quiet_pairs": quiet, "pairs": pairs,
                                "target": TARGET if judged else None, "pass": ok})
                rows.append([case, f"{fm * 1e3:.2f}", f"{om * 1e3:.2f}", f"{ratio:.3f}",
                             f"{quiet}/{pairs}",
                             "" if ok is None else ("PASS" if ok else "FAIL")])
        device = rt.device.as_dict()
    print(table(["case", "function ms", "operator ms", "ratio", "quiet pairs", f"<={TARGET}"],
                rows))
    judged = [r for r in results if r["pass"] is not None]
    status = 0
    if judged:
        ok = all(r["pass"] for r in judged)
        worst = max(judged, key=lambda r: r["ratio"])
        print(f"{'PASS' if ok else 'FAIL'}: worst {worst['ratio']:.3f}x the named function "
              f"({worst['case']}; target <= {TARGET})")
        status = 0 if ok else 1
    else:
        print("(no target judged: it applies to mm and iadd at --size >= 1024, --n >= 10^7)")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        write_json(args.json, {"bench": "ops", "device": device, "dtype": dtype.name,
                               "size": args.size, "n": args.n, "repeat": repeat,
                               "target": TARGET, "results": results})
    return status
