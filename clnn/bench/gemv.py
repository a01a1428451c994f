"""``clnn bench gemv``: clnn's gemv beside numpy's ``a @ x``, with the targets of issue 3.

One process, one table. For every size (256..8192 squares and the odd shapes 1023x1025,
10007x3, 3x10007), storage layout ("row"/"col"), operation (plain ``a`` or ``a.T``) and dtype,
clnn and numpy are timed *interleaved* (A B, B A, ...), so the machine's speed swings hit
both; the ratio is the median over the rounds of each round's numpy/clnn time ratio. Each
timed run starts after a short idle pause (``--settle``, 0.15 s) so that it does not share
the cores with the other library's still-spinning worker threads (OpenBLAS's spin about 0.11 s
after every call), then untimed runs (at least 50 ms of them) wake the contender's own threads. A
timed run is a batch of calls (about 20 ms of them) followed by one ``finish`` (numpy: the
same number of ``a @ x``), so every size measures the steady state of back-to-back calls.
Columns: GB/s of matrix read for clnn and numpy, the time-for-time ratio (numpy time / clnn
time: above 1 means clnn is faster), and the device's copy bandwidth on the same number of
bytes (a copy kernel; bytes read + written per second) as the bound. Every result is also
checked against numpy. The odd shapes' target (GB/s at least half the square case's) is a
ratio measured side by side too: clnn on the 4096^2 matrix of the same dtype, layout and op
is a third contender in the odd shape's rounds. The launch-bound odd shapes (up to 1 MB) have two
more contenders, shown in a second table: clnn's own kernel enqueued with raw pyopencl (what
the Python path costs) and a kernel that only reads the matrix once (the runtime's floor).

Then the per-call overhead rows (a 4x2 ``mv``: 1000 enqueues then one finish, and ``mv`` +
``to_numpy()``, each beside the same done with raw pyopencl on a trivial kernel) and the first
``mv`` in a new process (a subprocess run twice: the second one is timed, so kernels come from
the on-disk caches). Each target row says PASS or FAIL.

Example:
    $ clnn bench gemv --quick
    $ clnn bench gemv --json gemv.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pyopencl as cl

from .data import normal_matrix
from .options import FLOATS, add_options
from .timing import (
    SETTLE_S,
    WARM_S,
    calibrate,
    interleaved,
    pair_ratio,
    paired,
    paired_samples,
    table,
    time_call,
    write_json,
)

SIZES = (256, 512, 1024, 2048, 4096, 8192)
QUICK_SIZES = (256, 1024, 4096)
QUICK_REPEAT = 3
ODD = ((1023, 1025), (10007, 3), (3, 10007))
TARGET_SIZES = (4096, 8192)
TARGET_RATIO = {"float32": 0.9, "float64": 0.8}
ODD_FRACTION = 0.5
ODD_SQUARE = 4096
"""The odd shapes' GB/s is compared with clnn's on this square of the same dtype, layout and
op, timed in the same rounds (the square runs between the odd shape's clnn and numpy runs);
the largest of ``--sizes`` when they leave it out."""
FLOOR_MAX_BYTES = 1 << 20
"""Odd shapes up to this size (the launch-bound ones) are also timed beside the read floor
(:meth:`_Ref.read_runner`): how close any gemv could come on this runtime."""
TINY_ENQUEUE_MAX = 3.0
TINY_ROUNDTRIP_MAX = 1.3
FIRST_CALL_MAX = 0.3

_REF_SRC = """
__kernel void triv(__global float* a) { if (get_global_id(0) == 0) a[0] = 1.0f; }
__kernel void copy(__global const float4* restrict a, __global float4* restrict b,
                   const int chunk, const int n4) {
    const int i0 = get_global_id(0) * chunk;
    const int i1 = min(n4, i0 + chunk);
    for (int i = i0; i < i1; ++i) b[i] = a[i];
}
/* the read floor of a small gemv: one work-item reads the n floats of a (the matrix's bytes,
   in order, float16 loads into four independent sums) and stores their total -- no output
   vector, nothing else */
__kernel void readsum(__global const float* restrict a, __global float* restrict out,
                      const int n) {
    __global const float16* v = (__global const float16*)a;
    float16 s0 = (float16)(0.0f), s1 = s0, s2 = s0, s3 = s0;
    const int n16 = n / 16;
    int i = 0;
    for (; i + 4 <= n16; i += 4) {
        s0 += v[i]; s1 += v[i + 1]; s2 += v[i + 2]; s3 += v[i + 3];
    }
    for (; i < n16; ++i) s0 += v[i];
    float t = 0.0f;
    for (int j = n16 * 16; j < n; ++j) t += a[j];
    const float16 s = (s0 + s1) + (s2 + s3);
    const float8 h = s.lo + s.hi;
    const float4 q = h.lo + h.hi;
    out[0] = t + q.x + q.y + q.z + q.w;
}
"""


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Options of ``clnn bench gemv`` (``--device`` is added by the CLI)."""
    add_options(parser, quick="a smoke run in under a minute: sizes 256, 1024, 4096 and the "
                              "odd shapes, untransposed (op N) only, float32 only, "
                              f"{QUICK_REPEAT} rounds everywhere, without the raw/floor table",
                dtype=(FLOATS + ("all",), None,
                       "element types (default: all the device has; float32 if --quick)"),
                repeat=(None, "interleaved runs per case (median; default 9, and 15 for the "
                              f"cases with a target; quick {QUICK_REPEAT} for all; given, it "
                              "holds for every case)"),
                json="also write every number to FILE")
    parser.add_argument("--sizes", type=lambda s: tuple(int(v) for v in s.split(",")),
                        default=None, help="comma-separated square sizes, e.g. 1024,4096")
    parser.add_argument("--settle", type=float, default=SETTLE_S, metavar="S",
                        help=f"idle seconds before each timed run (default {SETTLE_S}: "
                             "OpenBLAS's threads spin that long after a call)")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the new-process first-call measurement")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a target fails")


class _Ref:
    """Raw pyopencl references on the same queue: a trivial kernel and a copy kernel."""

    def __init__(self, rt):
        self.rt = rt
        prg = cl.Program(rt.ctx, _REF_SRC).build()
        self.triv = cl.Kernel(prg, "triv")
        self.copy = cl.Kernel(prg, "copy")
        self.readsum = cl.Kernel(prg, "readsum")
        self.buf = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 64)
        self.triv.set_args(self.buf)
        self.host = np.empty(4, np.float32)
        self._copy_cache: Dict[int, float] = {}

    def copy_gbs(self, nbytes: int, repeat: int) -> float:
        """Copy bandwidth (bytes read + written per second, GB/s) on ``nbytes`` of data."""
        n4 = max(1, nbytes // 16)
        if n4 in self._copy_cache:
            return self._copy_cache[n4]
        rt = self.rt
        q = rt.queue
        mf = cl.mem_flags
        a = cl.Buffer(rt.ctx, mf.READ_WRITE, n4 * 16)
        b = cl.Buffer(rt.ctx, mf.READ_WRITE, n4 * 16)
        cl.enqueue_fill_buffer(q, a, np.float32(1), 0, n4 * 16)
        cl.enqueue_fill_buffer(q, b, np.float32(0), 0, n4 * 16)
        best = 0.0
        for groups in (2 * rt.device.compute_units, 16 * rt.device.compute_units):
            chunk = -(-n4 // groups)
            g = -(-n4 // chunk)
            self.copy.set_args(a, b, np.int32(chunk), np.int32(n4))
            def once(g=g) -> None:
                cl.enqueue_nd_range_kernel(q, self.copy, (g,), (1,))
                q.finish()

            batch = calibrate(once, 2e-3, 2000)  # calls of one timed run: about 2 ms

            def run(g=g, batch=batch) -> None:
                for _ in range(batch):
                    cl.enqueue_nd_range_kernel(q, self.copy, (g,), (1,))
                q.finish()

            t = interleaved({"c": run}, repeat=max(3, repeat // 2))["c"] / batch
            best = max(best, 2 * n4 * 16 / t / 1e9)
        a.release()
        b.release()
        self._copy_cache[n4] = best
        return best

    def read_runner(self, buf: cl.Buffer, nbytes: int, batch: int) -> Callable[[], None]:
        """A timed run of the read floor: ``batch`` raw enqueues of a one-work-item kernel
        that reads the ``nbytes`` of ``buf`` once (what every gemv of that matrix must do
        at least), then one finish. No Python wrapper, no checks, no arithmetic, no output
        vector: a lower bound of a small ``mv``'s time per call on this runtime."""
        q = self.rt.queue
        k = self.readsum
        k.set_args(buf, self.buf, np.int32(nbytes // 4))

        def run() -> None:
            for _ in range(batch):
                cl.enqueue_nd_range_kernel(q, k, (1,), (1,))
            q.finish()

        return run


BATCH_S = 0.02
"""Length of one timed run of the clnn/numpy comparison: back-to-back calls (one ``finish``)
for about this long, so that a run measures the steady state of repeated calls and the
wake-up of idle worker threads after the settle pause (~0.1-0.2 ms, on PoCL's side and on
OpenBLAS's) is a small part of it even for the 120 KB shapes."""

TARGET_REPEAT = 15
"""Rounds of the cases that carry a target (at least this many unless ``--repeat`` is given;
others take ``--repeat``)."""


def _gbs(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def _operands(rt, rng, m: int, n: int, dtype: np.dtype, layout: str, trans: bool):
    """(host A, host op(A), host x, device a, device op(a), device x, device y)."""
    A = normal_matrix(rng, (m, n), dtype, layout)
    opA = A.T if trans else A
    x = rng.standard_normal(opA.shape[1]).astype(dtype)
    a = rt.matrix(A, layout=layout)
    return A, opA, x, a, (a.T if trans else a), rt.vector(x), rt.vector(opA.shape[0],
                                                                        dtype=dtype)


def _clnn_runner(q, op, xv, y) -> Tuple[Callable[[], None], int]:
    """A timed run of clnn (``batch`` back-to-back ``mv`` calls, one finish) and ``batch``."""
    import clnn

    def some_clnn() -> None:
        for _ in range(10):
            clnn.mv(op, xv, out=y)
        q.finish()

    some_clnn()
    per_call = time_call(some_clnn) / 10
    batch = int(max(1, min(5000, BATCH_S / max(per_call, 1e-7))))

    def run_clnn() -> None:
        for _ in range(batch):
            clnn.mv(op, xv, out=y)
        q.finish()

    return run_clnn, batch


def _raw_runner(rt, y, batch: int) -> Optional[Callable[[], None]]:
    """A timed run of the kernel that clnn's last ``mv`` into ``y`` launched, enqueued
    ``batch`` times with raw pyopencl (no Python path): what the checks and dispatch cost.
    None when that call was not a single launch."""
    from ..gemv import _memo_of

    e = _memo_of(rt, y)
    if e is None:
        return None
    q = rt.queue

    def run() -> None:
        e.kernel.set_args(*e.args)  # (another plan may share the kernel object)
        e.plan.last = e.args
        for _ in range(batch):
            cl.enqueue_nd_range_kernel(q, e.kernel, e.gsize, e.lsize)
        q.finish()

    return run


def _case(rt, ref: _Ref, m: int, n: int, dtype: np.dtype, layout: str, trans: bool,
          repeat: int, rng, settle: float = SETTLE_S, square: int = 0,
          floor: bool = True, squares: Optional[dict] = None) -> dict:
    """Time clnn and numpy on op(A) @ x where A is stored m x n in ``layout``. With
    ``square``, clnn on a ``square`` x ``square`` matrix of the same dtype, layout and op is
    timed in the same rounds, and ``"square_ratio"`` is the median over the rounds of this
    shape's GB/s over the square's (the odd-shape target, measured side by side); with
    ``floor`` too, a launch-bound shape is also timed raw and beside the read floor.
    ``squares`` (a dict) keeps the square's operands for the next case of the same dtype,
    layout and op instead of making new ones; the caller releases them."""
    import clnn

    A, opA, x, a, op, xv, y = _operands(rt, rng, m, n, dtype, layout, trans)
    held = [a, xv, y]
    try:
        clnn.mv(op, xv, out=y)
        got = y.to_numpy()
        exp = opA.astype(np.float64) @ x.astype(np.float64)
        scale = np.abs(opA).astype(np.float64) @ np.abs(x).astype(np.float64)
        eps = np.finfo(dtype).eps
        ok = bool(np.all(np.abs(got - exp) <= 8 * np.sqrt(opA.shape[1]) * eps * scale + 1e-30))
        run_clnn, batch = _clnn_runner(rt.queue, op, xv, y)

        def run_numpy() -> None:
            for _ in range(batch):
                opA @ x

        contenders = {"clnn": run_clnn, "numpy": run_numpy}
        if square:
            key = (square, dtype.name, layout, trans)
            sq = squares.get(key) if squares is not None else None
            if sq is None:
                sq = _operands(rt, rng, square, square, dtype, layout, trans)
                if squares is not None:
                    squares[key] = sq
                else:
                    held += [sq[3], sq[5], sq[6]]
            contenders["square"], sq_batch = _clnn_runner(rt.queue, sq[4], sq[5], sq[6])
            if floor and A.nbytes <= FLOOR_MAX_BYTES:
                contenders["floor"] = ref.read_runner(a._owner._buf, A.nbytes, batch)
                raw = _raw_runner(rt, y, batch)
                if raw is not None:
                    contenders["raw"] = raw
        samples = paired_samples(contenders, repeat, settle, WARM_S)
    finally:
        for h in held:
            h.release()
    med = {k: statistics.median(v) for k, v in samples.items()}
    tc, tn = med["clnn"] / batch, med["numpy"] / batch
    nbytes = A.nbytes
    res = {"m": m, "n": n, "dtype": dtype.name, "layout": layout, "op": "T" if trans else "N",
           "bytes": nbytes, "batch": batch, "repeat": repeat, "clnn_s": tc, "numpy_s": tn,
           "clnn_gbs": _gbs(nbytes, tc), "numpy_gbs": _gbs(nbytes, tn),
           "ratio": pair_ratio(samples["clnn"], samples["numpy"]), "ratio_of_medians": tn / tc,
           "copy_gbs": ref.copy_gbs(nbytes, repeat), "correct": ok}
    if square:
        sq_bytes = square * square * dtype.itemsize

        def per_byte(name: str) -> float:
            # median over the rounds of (nbytes / t_name) / (sq_bytes / t_square)
            return statistics.median((ts / sq_batch / sq_bytes) / (t / batch / nbytes)
                                     for t, ts in zip(samples[name], samples["square"]))

        res.update(square=square, square_gbs=_gbs(sq_bytes, med["square"] / sq_batch),
                   square_ratio=per_byte("clnn"))
        # the same for clnn's kernel enqueued raw and for the read floor (the best any gemv
        # of this matrix could show)
        for name in ("floor", "raw"):
            if name in samples:
                res[f"{name}_gbs"] = _gbs(nbytes, med[name] / batch)
                res[f"{name}_ratio"] = per_byte(name)
    return res


def _overhead(rt, ref: _Ref, repeat: int, settle: float = SETTLE_S) -> List[dict]:
    """The per-call overhead rows, each beside raw pyopencl on a trivial kernel."""
    import clnn

    q = rt.queue
    rows = []
    with rt.matrix(np.arange(8, dtype=np.float32).reshape(4, 2)) as a, \
            rt.vector([1, 2]) as x, rt.vector(4) as y:
        clnn.mv(a, x, out=y)
        q.finish()
        k = ref.triv

        def raw1000() -> None:
            for _ in range(1000):
                cl.enqueue_nd_range_kernel(q, k, (1,), None)
            q.finish()

        def mv1000() -> None:
            for _ in range(1000):
                clnn.mv(a, x, out=y)
            q.finish()

        r = paired({"clnn": mv1000, "raw": raw1000}, repeat, settle)
        rows.append({"case": "tiny mv 4x2: 1000 enqueues + finish, per call",
                     "clnn_s": r["clnn"] / 1000, "raw_s": r["raw"] / 1000,
                     "ratio": r["clnn"] / r["raw"], "max": TINY_ENQUEUE_MAX})
        host = ref.host

        def raw_rt() -> None:
            cl.enqueue_nd_range_kernel(q, k, (1,), None)
            cl.enqueue_copy(q, host, ref.buf, is_blocking=True)

        def mv_rt() -> None:
            clnn.mv(a, x, out=y).to_numpy()

        nrt = max(calibrate(mv_rt, 0.01), calibrate(raw_rt, 0.01))

        def raw_rts() -> None:
            for _ in range(nrt):
                raw_rt()

        def mv_rts() -> None:
            for _ in range(nrt):
                mv_rt()

        r = paired({"clnn": mv_rts, "raw": raw_rts}, max(repeat, 9), settle)
        rows.append({"case": "tiny mv 4x2 + to_numpy(), per call",
                     "clnn_s": r["clnn"] / nrt, "raw_s": r["raw"] / nrt,
                     "ratio": r["clnn"] / r["raw"], "max": TINY_ROUNDTRIP_MAX})
    return rows


_FIRST = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
import clnn
t1 = time.perf_counter()
with clnn.Runtime(sys.argv[1]) as rt:
    a = rt.matrix(np.ones((64, 64), np.float32))
    x = rt.vector(np.ones(64, np.float32))
    t2 = time.perf_counter()
    y = clnn.mv(a, x).to_numpy()
    t3 = time.perf_counter()
    assert y[0] == 64
print(t1 - t0, t3 - t2, t3 - t1)
"""


def _first_call(spec: str, runs: int = 2) -> dict:
    """Run a fresh process twice; the second one's first mv is timed (on-disk caches). With
    ``runs=1`` the caller has filled the caches itself (:func:`_fill_first_call_caches`) and
    one process is run and timed."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    outs = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", _FIRST, spec], capture_output=True,
                           text=True, env=env, timeout=300)
        if r.returncode != 0:
            return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
        outs.append([float(v) for v in r.stdout.split()])
    imp, first, with_rt = outs[-1]
    return {"import_s": imp, "first_mv_s": first, "runtime_and_first_mv_s": with_rt,
            "cold_first_mv_s": outs[0][1] if runs > 1 else None, "max": FIRST_CALL_MAX}


def _fill_first_call_caches(rt) -> None:
    """The ``mv`` of :data:`_FIRST` on ``rt``: its kernel goes to the on-disk caches, as the
    untimed first process of :func:`_first_call` would put it there."""
    import clnn

    with rt.matrix(np.ones((64, 64), np.float32)) as a, \
            rt.vector(np.ones(64, np.float32)) as x:
        assert clnn.mv(a, x).to_numpy()[0] == 64


def _fmt(v: float, digits: int = 1) -> str:
    return f"{v:.{digits}f}"


def run(args: argparse.Namespace, name: str = "gemv") -> int:
    """Entry point of ``clnn bench gemv``; prints the table, returns the exit status."""
    import clnn

    from .. import tuning

    quick = bool(getattr(args, "quick", False))
    repeat = args.repeat or (QUICK_REPEAT if quick else 9)
    sizes = args.sizes or (QUICK_SIZES if quick else SIZES)
    rng = np.random.default_rng(0)
    t_start = time.perf_counter()
    with clnn.Runtime(getattr(args, "device", None)) as rt:
        dev = rt.device
        if args.dtype in (None, "all"):
            skip64 = (quick and args.dtype is None) or not dev.fp64
            dtypes = ["float32"] + ([] if skip64 else ["float64"])
        else:
            dtypes = [args.dtype]
        if "float64" in dtypes and not dev.fp64:
            raise clnn.UnsupportedError(f"float64: device {dev.name!r} lacks cl_khr_fp64")
        print(f"clnn bench gemv on {dev} ({dev.driver_version}); numpy {np.__version__}")
        print(f"tuning database: {tuning.db_path()}")
        for dt in dtypes:
            rtype = "float" if dt == "float32" else "double"
            for variant in ("row", "col"):
                p, src = tuning.lookup(dev, "gemv", variant, rtype, "large")
                print(f"  tunables {variant}/{rtype}/large: {p} ({src})")
        ref = _Ref(rt)
        cases = []
        odd_square = ODD_SQUARE if ODD_SQUARE in sizes else max(sizes)
        # --quick: every case takes the quick rounds, op N only, the odd shapes without the
        # raw/floor contenders (a run's time is these rounds: each timed run follows --settle
        # and WARM_S of untimed runs), and the odd shapes share their square's operands
        target_rep = args.repeat or (repeat if quick else max(repeat, TARGET_REPEAT))
        ops = (False,) if quick else (False, True)
        squares: Optional[dict] = {} if quick else None
        for dt in dtypes:
            for s in sizes:
                for layout in ("row", "col"):
                    for trans in ops:
                        rep = target_rep if s in TARGET_SIZES else repeat
                        cases.append(_case(rt, ref, s, s, np.dtype(dt), layout, trans,
                                           rep, rng, args.settle))
            for (m, n) in ODD:
                for layout in ("row", "col"):
                    for trans in ops:
                        cases.append(_case(rt, ref, m, n, np.dtype(dt), layout, trans,
                                           target_rep, rng, args.settle,
                                           square=odd_square, floor=not quick,
                                           squares=squares))
        for sq in (squares or {}).values():
            for h in (sq[3], sq[5], sq[6]):
                h.release()
        over = _overhead(rt, ref, repeat if quick else max(repeat, 9), args.settle)
        if quick and not args.no_first_call:
            _fill_first_call_caches(rt)  # then one new process, not two
    first = None if args.no_first_call else _first_call(getattr(args, "device", None)
                                                        or dev.spec, 1 if quick else 2)
    # ---- targets ----------------------------------------------------------------------------
    for c in cases:
        c["target"], c["pass"] = "", None
        if c["m"] == c["n"] and c["m"] in TARGET_SIZES:
            lim = TARGET_RATIO[c["dtype"]]
            c["target"] = f"ratio >= {lim}"
            c["pass"] = c["correct"] and c["ratio"] >= lim
        elif "square_ratio" in c:
            c["target"] = (f"{c['square_ratio']:.2f} x {c['square']}^2 GB/s "
                           f"(>= {ODD_FRACTION})")
            c["pass"] = c["correct"] and c["square_ratio"] >= ODD_FRACTION
        elif not c["correct"]:
            c["target"], c["pass"] = "correct", False
    for o in over:
        o["pass"] = o["ratio"] <= o["max"]
    if first is not None and "error" not in first:
        first["pass"] = first["first_mv_s"] < first["max"]
    # ---- the table --------------------------------------------------------------------------
    rows = []
    for c in cases:
        verdict = "" if c["pass"] is None else ("PASS" if c["pass"] else "FAIL")
        rows.append((f"{c['m']}x{c['n']}", c["dtype"], c["layout"], c["op"],
                     _fmt(c["clnn_gbs"]), _fmt(c["numpy_gbs"]), _fmt(c["ratio"], 2),
                     _fmt(c["copy_gbs"]), "yes" if c["correct"] else "NO", c["target"],
                     verdict))
    for o in over:
        rows.append((o["case"], "float32", "row", "N", f"{o['clnn_s'] * 1e6:.1f} us",
                     f"raw {o['raw_s'] * 1e6:.1f} us", _fmt(o["ratio"], 2), "", "yes",
                     f"clnn/raw <= {o['max']}", "PASS" if o["pass"] else "FAIL"))
    if first is not None:
        if "error" in first:
            rows.append(("first mv, new process", "float32", "row", "N", "error", "", "", "",
                         "", f"< {FIRST_CALL_MAX} s", "FAIL"))
        else:
            rows.append(("first mv, new process", "float32", "row", "N",
                         f"{first['first_mv_s']:.3f} s",
                         f"(+runtime {first['runtime_and_first_mv_s']:.3f} s)", "", "", "yes",
                         f"< {FIRST_CALL_MAX} s", "PASS" if first["pass"] else "FAIL"))
    headers = ("case", "dtype", "layout", "op", "clnn GB/s", "numpy GB/s", "clnn/np",
               "copy GB/s", "correct", "target", "")
    print(table(list(headers), rows))
    floored = [c for c in cases if "floor_ratio" in c]
    if floored:
        print("Launch-bound odd shapes beside raw pyopencl in the same rounds: clnn's own kernel "
              "enqueued without clnn's Python path (raw), and the read floor (one work-item "
              "that only reads the matrix once: no output, no arithmetic); GB/s x the "
              f"{odd_square}^2 square's:")
        print(table(["case", "dtype", "layout", "op", "clnn GB/s", "raw GB/s", "floor GB/s",
                     "clnn x sq", "raw x sq", "floor x sq"],
                    [(f"{c['m']}x{c['n']}", c["dtype"], c["layout"], c["op"],
                      _fmt(c["clnn_gbs"]), _fmt(c["raw_gbs"]) if "raw_gbs" in c else "-",
                      _fmt(c["floor_gbs"]), _fmt(c["square_ratio"], 2),
                      _fmt(c["raw_ratio"], 2) if "raw_ratio" in c else "-",
                      _fmt(c["floor_ratio"], 2)) for c in floored]))
    verdicts = ([c["pass"] for c in cases if c["pass"] is not None]
                + [o["pass"] for o in over]
                + ([first.get("pass", False)] if first is not None else []))
    n_pass = sum(1 for v in verdicts if v)
    elapsed = time.perf_counter() - t_start
    print(f"clnn/np = median over interleaved rounds of numpy time / clnn time, each round "
          f"one run of each (> 1: clnn faster); GB/s of matrix read (medians); copy GB/s = "
          f"bytes read + written by a copy kernel of the matrix's size; a run is ~"
          f"{BATCH_S * 1e3:.0f} ms of back-to-back calls after {args.settle} s idle; "
          f"{repeat} rounds, {target_rep} for rows with a target. "
          f"{n_pass}/{len(verdicts)} targets PASS "
          f"({elapsed:.0f} s).")
    if args.json:
        write_json(args.json, {
            "bench": "gemv", "device": dev.as_dict(), "numpy": np.__version__,
            "python": platform.python_version(), "quick": quick, "repeat": repeat,
            "cases": cases, "overhead": over, "first_call": first,
            "passed": n_pass, "targets": len(verdicts), "all_pass": n_pass == len(verdicts),
            "tunables": {f"{v}/{d}": tuning.lookup(dev, "gemv", v,
                                                   "float" if d == "float32" else "double",
                                                   "large")[0]
                         for v in ("row", "col") for d in dtypes},
            "seconds": elapsed})
        print(f"wrote {args.json}")
    return 1 if args.strict and n_pass != len(verdicts) else 0


def main(argv: Optional[List[str]] = None) -> int:  # pragma: no cover
    p = argparse.ArgumentParser(prog="python -m clnn.bench.gemv")
    p.add_argument("--device", default=None)
    add_arguments(p, "gemv")
    return run(p.parse_args(argv), "gemv")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["add_arguments", "run"]
