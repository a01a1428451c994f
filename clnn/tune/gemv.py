"""``clnn tune gemv``: the candidates and the timing of :func:`clnn.mv` (the contract is in
:mod:`clnn.tune`).

Candidates vary the tunables of :mod:`clnn.gemv_tunables` around the device's defaults per
layout ("row"/"col", the variant) and size class; each is timed on a problem typical of its
class (plus a narrow one where the class holds narrow shapes), with back-to-back calls.

Example:
    >>> import clnn
    >>> from clnn.tune import gemv
    >>> cands = list(gemv.candidates(clnn.select_device("cpu"), "float", quick=True))
    >>> sorted({variant for variant, _, _ in cands})
    ['col', 'row']
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Tuple

import numpy as np

from ..bench.timing import interleaved
from ..devices import DeviceInfo
from ..gemv import enqueue, forced_call
from ..gemv_tunables import SIZE_CLASSES, gemv_defaults, validate

__all__ = ["candidates", "bench", "bench_data"]

_NP = {"float": np.float32, "double": np.float64}

_TUNE_SHAPES = {"small": (256, 256), "large": (4096, 4096), "tall": (262144, 16),
                "wide": (16, 262144)}
_QUICK_SHAPES = {"small": (128, 128), "large": (1024, 1024), "tall": (16384, 8),
                 "wide": (8, 16384)}
# the classes that hold narrow shapes (n <= NARROW_MAX for "row", m <= NARROW_MAX for "col")
# are also timed on one, so that NVW (the narrow kernels' vector width) is measured; a
# candidate's time is the sum of its class's problems
_NARROW_SHAPES = {("row", "small"): (10007, 3), ("row", "tall"): (262144, 3),
                  ("col", "small"): (3, 10007), ("col", "wide"): (3, 262144)}
_QUICK_NARROW_SHAPES = {("row", "small"): (4001, 3), ("row", "tall"): (16384, 3),
                        ("col", "small"): (3, 4001), ("col", "wide"): (3, 16384)}


def candidates(device: DeviceInfo, dtype: str, quick: bool
               ) -> Iterator[Tuple[str, str, dict]]:
    """Candidates of ``clnn tune gemv`` (see :mod:`clnn.tune` for the contract)."""
    wide = 16 if dtype == "float" else 8
    for sc in SIZE_CLASSES:
        for variant in ("row", "col"):
            base = gemv_defaults(device, variant, dtype, sc)
            if device.type == "CPU":
                if variant == "row":
                    # NG 256*cu: more work-groups than PoCL deals out in one chunk per
                    # thread, so a late thread takes less (see the shipped table in
                    # clnn/gemv_tunables.py)
                    grid = [{"RPT": r, "VW": v, "NG": g} for r in (2, 4, 8)
                            for v in (wide // 2, wide) for g in (4 * device.compute_units,
                                                                   16 * device.compute_units,
                                                                   256 * device.compute_units)]
                    if sc in ("wide", "small"):
                        grid += [{"KMIN": k} for k in (256, 4096, 1 << 30)]
                        grid += [{"SMIN": k} for k in (1 << 14, 1 << 20)]
                else:
                    grid = [{"VW": v, "CU": u, "MB": mb} for v in (wide // 2, wide)
                            for u in (2, 4, 8) for mb in (1024, 4096, 16384)]
                    grid += [{"NG": g} for g in (2 * device.compute_units,
                                                 32 * device.compute_units)]
                    # persistent work-groups taking units from a counter
                    grid += [{"ACC": 2, "VW": v, "MB": mb, "NG": g, "PAN": pn}
                             for v in (wide // 2, wide) for mb in (1024, 4096)
                             for g in (device.compute_units, 2 * device.compute_units)
                             for pn in (16, 64)]
                    if sc in ("tall", "small"):
                        grid += [{"KMIN": k} for k in (64, 1024, 1 << 30)]
                        grid += [{"SMIN": k} for k in (1 << 14, 1 << 20)]
                if (variant, sc) in _NARROW_SHAPES:
                    grid += [{"NVW": v} for v in (wide // 4, wide // 2, wide)]
            else:
                wg = [w for w in (32, 64, 128, 256) if w <= device.max_work_group_size]
                if variant == "row":
                    grid = [{"WGS": w, "RPT": r, "VW": v} for w in wg for r in (1, 2, 4)
                            for v in (1, 2, 4)]
                else:
                    grid = [{"WGS": w, "RPT": r, "VW": v} for w in wg for r in (1, 2)
                            for v in (1, 2, 4)]
                grid += [{"KMIN": k} for k in (256, 4096, 1 << 30)]
                if (variant, sc) in _NARROW_SHAPES:
                    grid += [{"NVW": v} for v in (1, 2, 4)]
            if quick:
                grid = grid[:: max(1, len(grid) // 4)]
            for g in grid:
                p = dict(base)
                p.update(g)
                try:
                    validate(device, variant, dtype, p)
                except ValueError:
                    continue
                yield variant, sc, p


def _slot(rt: Any) -> dict:
    """The tuner's problems on ``rt``: {group: problems}, at most one group."""
    return rt.memo(("tune-gemv",), dict)


def bench_data(rt: Any, variant: str, dtype: str, sc: str, quick: bool) -> list:
    """The problems of one tuning group, made once and kept on the runtime (released with it):
    per problem, the reference result and its scale, n, and device a, x and y -- the class's
    shape, plus a narrow one for the classes that hold narrow shapes."""
    slot = _slot(rt)
    key = (variant, dtype, sc, quick)
    got = slot.get(key)
    if got is None:
        for k in list(slot):
            for prob in slot.pop(k):
                for arr in prob[2:]:
                    arr.release()  # one group at a time: large classes are big
        shapes = [(_QUICK_SHAPES if quick else _TUNE_SHAPES).get(sc, (1024, 1024))]
        narrow = (_QUICK_NARROW_SHAPES if quick else _NARROW_SHAPES).get((variant, sc))
        if narrow is not None:
            shapes.append(narrow)
        dt = np.dtype(_NP[dtype])
        rng = np.random.default_rng(0)
        got = []
        for m, n in shapes:
            A = rng.standard_normal((m, n)).astype(dt)
            xh = rng.standard_normal(n).astype(dt)
            ref = A.astype(np.float64) @ xh.astype(np.float64)
            scale = np.abs(A).astype(np.float64) @ np.abs(xh).astype(np.float64)
            # variant "col" is the layout the kernel sees: a col-major matrix
            got.append(((ref, scale), n, rt.matrix(A, layout=variant), rt.vector(xh),
                        rt.vector(m, dtype=dt)))
        slot[key] = got
    return got


def bench(rt: Any, variant: str, dtype: str, sc: str, p: dict, quick: bool = False) -> float:
    """Median seconds per call of mv with exactly ``p`` on the problems of size class ``sc``
    (back-to-back calls, one finish; summed over the class's problems), each checked once
    against numpy. The ``clnn tune`` hook."""
    q = rt.queue
    total = 0.0
    for (ref, scale), n, a, x, y in bench_data(rt, variant, dtype, sc, quick):
        c = forced_call(rt, a, x, y, p)
        enqueue(rt, c, a, x, y, 1.0, 0.0)
        got = y.to_numpy()
        tol = (1e-4 if dtype == "float" else 1e-12) * np.sqrt(n)
        if not np.all(np.abs(got - ref) <= tol * scale + 1e-30):
            raise AssertionError("wrong result")
        t0 = time.perf_counter()
        for _ in range(3):
            enqueue(rt, c, a, x, y, 1.0, 0.0)
        q.finish()
        # back-to-back calls, one finish: small sizes measure the steady state, not latency
        batch = int(max(1, min(500, 2e-3 / max((time.perf_counter() - t0) / 3, 1e-7))))

        def run(c=c, a=a, x=x, y=y, batch=batch) -> None:
            for _ in range(batch):
                enqueue(rt, c, a, x, y, 1.0, 0.0)
            q.finish()

        total += interleaved({"c": run}, repeat=5 if quick else 9, number={"c": 1})["c"] / batch
    return total
