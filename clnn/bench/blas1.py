"""``clnn bench blas1``: BLAS-1, rank-1, elementwise maps and reductions beside numpy, in GB/s.

Every case runs one clnn operation (plus the wait for it: ``rt.finish()``, or the read-back of
a scalar result, which is what numpy's call includes) and the numpy code a user would write for
the same result, on the same data with preallocated outputs, alternating their runs and taking
medians. GB/s counts the bytes the operation must move at least (each input read once, each
output written once), the same for both sides. The numpy column names the numpy code.

Target (float32, 10^7 elements, the PoCL CPU device): every BLAS-1 and elementwise case
>= 0.7x numpy. Axis reductions and the rank-1 update are shown without a target. The exit
status is 1 when a target fails.

Example:
    clnn bench blas1 --quick
    clnn bench blas1 --n 10000000 --dtype float32 --json blas1.json
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from typing import Callable, Dict, List

import numpy as np

from .options import FLOATS, add_options, device_dtypes
from .timing import interleaved, table, write_json

TARGET = 0.7
N_DEFAULT = 10_000_000
OPS = ("copy", "scal", "axpy", "swap", "dot", "nrm2", "asum", "iamax", "rk", "add", "mul", "div",
       "scale_shift", "exp", "log", "tanh", "sigmoid", "relu", "sigmoid_grad", "relu_grad",
       "add_bias+relu", "sum", "argmax")


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--n", type=int, default=N_DEFAULT,
                        help=f"elements per operand (default {N_DEFAULT})")
    add_options(parser, quick="fewer timed runs, a smoke run (sizes stay 10^7: the target is "
                              "about memory bandwidth, which small arrays do not show)",
                dtype=(FLOATS, "float32", None), only=("--ops", "OP", OPS, "cases"),
                repeat=(0, "timed runs per contender (default 9, --quick 3)"))


class Case:
    """One row: a clnn call, the numpy equivalent, the bytes moved and a result check."""

    def __init__(self, name: str, group: str, np_code: str, nbytes: int,
                 run_clnn: Callable[[], object], run_numpy: Callable[[], object],
                 check: Callable[[], float], target: bool = True):
        self.name, self.group, self.np_code, self.nbytes = name, group, np_code, nbytes
        self.run_clnn, self.run_numpy, self.check, self.target = (run_clnn, run_numpy, check,
                                                                   target)


def _relerr(got, want) -> float:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    return float(np.max(np.abs(got - want), initial=0.0) / scale)


def _cases(rt, n: int, dtype, rng, keep: List) -> List[Case]:
    """Build every case on shared data (``keep`` collects device arrays to release)."""
    import clnn

    isz = np.dtype(dtype).itemsize

    def dev(h):
        d = rt.vector(h) if h.ndim == 1 else rt.matrix(h)
        keep.append(d)
        return d

    def fin(_=None):
        rt.finish()

    hx = rng.uniform(-1, 1, n).astype(dtype)
    hy = rng.uniform(-1, 1, n).astype(dtype)
    hp = rng.uniform(0.5, 2, n).astype(dtype)
    x, y, p = dev(hx), dev(hy), dev(hp)
    ho = np.empty(n, dtype)
    ht = np.empty(n, dtype)
    o = dev(np.zeros(n, dtype))
    m = int(math.isqrt(n))
    hA = rng.uniform(-1, 1, (m, m)).astype(dtype)
    A = dev(hA)
    hAo = np.empty((m, m), dtype)
    Ao = dev(np.zeros((m, m), dtype))
    hb = rng.uniform(-1, 1, m).astype(dtype)
    b = dev(hb)
    hbo = np.empty(m, dtype)
    bo = dev(np.zeros(m, dtype))
    cases: List[Case] = []

    def add(name, group, np_code, nbytes, run_clnn, run_numpy, check, target=True):
        cases.append(Case(name, group, np_code, nbytes, run_clnn, run_numpy, check, target))

    # -- BLAS-1 --------------------------------------------------------------------------------
    def ck_copy():
        clnn.copy(x, out=o)
        return _relerr(o.to_numpy(), hx)
    add("copy", "blas1", "np.copyto(o, x)", 2 * n * isz,
        lambda: fin(clnn.copy(x, out=o)), lambda: np.copyto(ho, hx), ck_copy)

    def mk_inplace(cl_op, np_op, arrays):
        """In-place ops: check on copies, then time on the shared data."""
        def check():
            hs = [h.copy() for h in arrays]
            ds = [dev(h) for h in hs]
            cl_op(*ds)
            np_op(*hs)
            return max(_relerr(d.to_numpy(), h) for d, h in zip(ds, hs))
        return check

    add("scal", "blas1", "np.multiply(x, a, out=x)", 2 * n * isz,
        lambda: fin(clnn.scal(-1.0, y)), lambda: np.multiply(hy, -1.0, out=hy),
        mk_inplace(lambda d: clnn.scal(-1.0, d),
                   lambda h: np.multiply(h, -1.0, out=h), [hy]))
    add("axpy", "blas1", "np.multiply(x, a, out=t); y += t", 3 * n * isz,
        lambda: fin(clnn.axpy(0.5, x, y)),
        lambda: (np.multiply(hx, 0.5, out=ht), np.add(hy, ht, out=hy)),
        mk_inplace(lambda dx, dy: clnn.axpy(0.5, dx, dy),
                   lambda h1, h2: np.add(h2, 0.5 * h1, out=h2), [hx, hy]))
    add("swap", "blas1", "t[:] = x; x[:] = y; y[:] = t", 4 * n * isz,
        lambda: fin(clnn.swap(x, y)),
        lambda: (np.copyto(ht, hx), np.copyto(hx, hy), np.copyto(hy, ht)),
        mk_inplace(clnn.swap,
                   lambda h1, h2: (np.copyto(ht, h1), np.copyto(h1, h2), np.copyto(h2, ht)),
                   [hx, hy]))

    def ck_scalar(cl_fn, np_fn):
        return lambda: _relerr(cl_fn(), np_fn())
    x64, y64 = hx.astype(np.float64), hy.astype(np.float64)
    add("dot", "blas1", "float(np.dot(x, y))", 2 * n * isz,
        lambda: clnn.dot(x, y), lambda: float(np.dot(hx, hy)),
        lambda: abs(clnn.dot(x, y) - x64 @ y64) / np.abs(x64 * y64).sum())
    add("nrm2", "blas1", "float(np.linalg.norm(x))", n * isz,
        lambda: clnn.nrm2(x), lambda: float(np.linalg.norm(hx)),
        ck_scalar(lambda: clnn.nrm2(x), lambda: np.linalg.norm(x64)))
    add("asum", "blas1", "float(np.abs(x, out=t).sum())", n * isz,
        lambda: clnn.asum(x), lambda: float(np.abs(hx, out=ht).sum()),
        ck_scalar(lambda: clnn.asum(x), lambda: np.abs(x64).sum()))
    add("iamax", "blas1", "int(np.argmax(np.abs(x, out=t)))", n * isz,
        lambda: clnn.iamax(x), lambda: int(np.argmax(np.abs(hx, out=ht))),
        lambda: float(clnn.iamax(x) != int(np.argmax(np.abs(hx)))))
    add(f"rk {m}x{m}", "rank-1", "np.multiply.outer(x, y, out=T); A += T", 2 * m * m * isz,
        lambda: fin(clnn.rk(1.0, b, b, A)),
        lambda: (np.multiply.outer(hb, hb, out=hAo), np.add(hA, hAo, out=hA)),
        lambda: _relerr(clnn.rk(1.0, b, b, A, out=Ao).to_numpy(),
                        A.to_numpy() + np.outer(hb, hb)), target=False)

    # -- elementwise ---------------------------------------------------------------------------
    def ew(name, np_code, nin, cl_fn, np_fn, ref=None):
        ins = [x, y][:nin] if name not in ("log",) else [p]
        hins = [hx, hy][:nin] if name not in ("log",) else [hp]

        def check():
            cl_fn(*ins, o)
            want = (ref or np_fn)(*[h.astype(np.float64) for h in hins],
                                  np.empty(n, np.float64))
            return _relerr(o.to_numpy(), want)
        add(name, "elementwise", np_code, (nin + 1) * n * isz,
            lambda: fin(cl_fn(*ins, o)), lambda: np_fn(*hins, ho), check)

    ew("add", "np.add(x, y, out=o)", 2, lambda a, c, out: clnn.add(a, c, out=out),
       lambda a, c, out: np.add(a, c, out=out))
    ew("mul", "np.multiply(x, y, out=o)", 2, lambda a, c, out: clnn.mul(a, c, out=out),
       lambda a, c, out: np.multiply(a, c, out=out))
    ew("div", "np.divide(x, y, out=o)", 2, lambda a, c, out: clnn.div(a, c, out=out),
       lambda a, c, out: np.divide(a, c, out=out))
    ew("scale_shift", "np.multiply(x, a, out=o); o += b", 1,
       lambda a, out: clnn.scale_shift(a, 2.0, 0.5, out=out),
       lambda a, out: np.add(np.multiply(a, 2.0, out=out), 0.5, out=out))
    ew("exp", "np.exp(x, out=o)", 1, lambda a, out: clnn.exp(a, out=out),
       lambda a, out: np.exp(a, out=out))
    ew("log", "np.log(x, out=o)", 1, lambda a, out: clnn.log(a, out=out),
       lambda a, out: np.log(a, out=out))
    ew("tanh", "np.tanh(x, out=o)", 1, lambda a, out: clnn.tanh(a, out=out),
       lambda a, out: np.tanh(a, out=out))
    ew("sigmoid", "np.exp(-x) (in o); o += 1; 1/o", 1, lambda a, out: clnn.sigmoid(a, out=out),
       lambda a, out: np.reciprocal(np.add(np.exp(np.negative(a, out=out), out=out), 1,
                                           out=out), out=out))
    ew("relu", "np.maximum(x, 0, out=o)", 1, lambda a, out: clnn.relu(a, out=out),
       lambda a, out: np.maximum(a, 0, out=out))
    ew("sigmoid_grad", "np.subtract(1, y, out=o); o *= y; o *= g", 2,
       lambda a, c, out: clnn.sigmoid_grad(a, c, out=out),
       lambda a, c, out: np.multiply(np.multiply(np.subtract(1, a, out=out), a, out=out), c,
                                     out=out))
    ew("relu_grad", "np.multiply(g, y > 0, out=o)", 2,
       lambda a, c, out: clnn.relu_grad(a, c, out=out),
       lambda a, c, out: np.multiply(c, a > 0, out=out))

    def ck_bias():
        clnn.add_bias(A, b, axis=1, activation="relu", out=Ao)
        return _relerr(Ao.to_numpy(), np.maximum(A.to_numpy().astype(np.float64) + hb, 0))
    add(f"add_bias+relu {m}x{m}", "elementwise", "np.add(A, b, out=O); np.maximum(O, 0, out=O)",
        2 * m * m * isz, lambda: fin(clnn.add_bias(A, b, axis=1, activation="relu", out=Ao)),
        lambda: np.maximum(np.add(hA, hb, out=hAo), 0, out=hAo), ck_bias)

    # -- axis reductions (no target) -----------------------------------------------------------
    for axis in (0, 1):
        def ck_sum(axis=axis):
            clnn.sum(A, axis=axis, out=bo)
            return _relerr(bo.to_numpy(), A.to_numpy().astype(np.float64).sum(axis=axis))
        add(f"sum axis={axis} {m}x{m}", "reduce", f"np.sum(A, axis={axis}, out=o)",
            m * m * isz, lambda axis=axis: fin(clnn.sum(A, axis=axis, out=bo)),
            lambda axis=axis: np.sum(hA, axis=axis, out=hbo), ck_sum, target=False)
    add(f"argmax axis=1 {m}x{m}", "reduce", "np.argmax(A, axis=1)", m * m * isz,
        lambda: fin(clnn.argmax(A, axis=1, out=bo)), lambda: np.argmax(hA, axis=1),
        lambda: float(np.any(clnn.argmax(A, axis=1, out=bo).to_numpy()
                             != np.argmax(A.to_numpy(), axis=1))), target=False)
    return cases


def run(args: argparse.Namespace, name: str) -> int:
    from ..runtime import Runtime

    dtype = np.dtype(args.dtype).type
    n = int(args.n)
    repeat = args.repeat or (3 if args.quick else 9)
    rng = np.random.default_rng(7)
    rows: List[list] = []
    results: List[Dict] = []
    keep: List = []
    t0 = time.perf_counter()
    with Runtime(getattr(args, "device", None)) as rt:
        if not device_dtypes(rt.device, [dtype]):
            return 0
        print(f"clnn bench blas1 on {rt.device}; numpy {np.__version__} on "
              f"{platform.processor() or platform.machine()}")
        print(f"n = {n} {np.dtype(dtype).name}; GB/s = bytes moved / median seconds; clnn and "
              "numpy runs interleaved; clnn includes the wait (finish / read-back)")
        cases = _cases(rt, n, dtype, rng, keep)
        if args.ops:
            cases = [c for c in cases if c.name.split()[0] in args.ops]
        # every check first, while the shared data still matches the host copies (the timed
        # in-place cases run clnn and numpy different numbers of times)
        errs = [c.check() for c in cases]
        for c, err in zip(cases, errs):
            res = interleaved({"clnn": c.run_clnn, "numpy": c.run_numpy}, repeat=repeat,
                              target_s=0.01 if args.quick else 0.03)
            ratio = res["numpy"] / res["clnn"]
            goal = TARGET if (c.target and dtype == np.float32 and n >= N_DEFAULT) else None
            ok = None if goal is None else bool(ratio >= goal)
            r = {"op": c.name, "group": c.group, "numpy_code": c.np_code, "bytes": c.nbytes,
                 "clnn_s": res["clnn"], "numpy_s": res["numpy"],
                 "clnn_gbs": c.nbytes / res["clnn"] / 1e9,
                 "numpy_gbs": c.nbytes / res["numpy"] / 1e9, "ratio": ratio, "rel_err": err,
                 "goal": goal, "pass": ok}
            results.append(r)
            rows.append([c.name, f"{r['clnn_gbs']:.1f}", f"{r['numpy_gbs']:.1f}",
                         f"{ratio:.2f}", "" if ok is None else ("PASS" if ok else "FAIL"),
                         f"{err:.1e}", c.np_code])
        for d in keep:
            d.release()
        device = rt.device.as_dict()
    print(table(["op", "clnn GB/s", "numpy GB/s", "ratio", f">={TARGET}", "rel err", "numpy"],
                rows))
    judged = [r for r in results if r["pass"] is not None]
    status = 0
    if judged:
        worst = min(judged, key=lambda r: r["ratio"])
        ok = all(r["pass"] for r in judged)
        print(f"{'PASS' if ok else 'FAIL'}: BLAS-1 and elementwise on {n} float32: worst "
              f"{worst['ratio']:.2f}x numpy ({worst['op']}) over {len(judged)} cases "
              f"(target >= {TARGET}x)")
        status = 0 if ok else 1
    else:
        print(f"(no targets judged: they apply to float32 with n >= {N_DEFAULT})")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        write_json(args.json, {"bench": "blas1", "device": device, "numpy": np.__version__,
                               "n": n, "dtype": np.dtype(dtype).name, "target": TARGET,
                               "results": results})
    return status
