"""Interleaved timing: the tool every ``clnn bench`` uses.

Shared machines change speed by up to 2x within seconds, so two contenders are never timed
one after the other: ``interleaved`` alternates their runs (A B A B ...) and reports the median
of each, so a slow phase hits both.

Example:
    >>> from clnn.bench.timing import interleaved
    >>> res = interleaved({"a": lambda: sum(range(100)), "b": lambda: sum(range(10))}, repeat=5)
    >>> sorted(res)
    ['a', 'b']
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Callable, Dict, List, Optional

from ..atomic import atomic_write


def time_call(fn: Callable[[], object], number: int = 1) -> float:
    """Seconds per call of ``fn`` averaged over ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def calibrate(fn: Callable[[], object], target_s: float = 0.02, max_number: int = 10000) -> int:
    """How many back-to-back calls of ``fn`` take about ``target_s`` seconds (at least 1)."""
    fn()
    t = time_call(fn)
    if t <= 0:
        return max_number
    return int(max(1, min(max_number, target_s / t)))


def interleaved(contenders: Dict[str, Callable[[], object]], repeat: int = 9,
                number: Optional[Dict[str, int]] = None, warmup: int = 1,
                target_s: float = 0.02, pause: float = 0.0) -> Dict[str, float]:
    """Median seconds per call of each contender, runs alternating between them.

    ``number`` gives back-to-back calls per timed run for each contender (calibrated to about
    ``target_s`` per run when not given). ``pause`` seconds of sleep before each timed run let
    the previous contender's thread pool go idle (OpenBLAS worker threads spin for ~0.1 s after
    a call and would steal cores from the next run)."""
    names = list(contenders)
    if number is None:
        number = {k: calibrate(contenders[k], target_s) for k in names}
    for _ in range(warmup):
        for k in names:
            contenders[k]()
    samples: Dict[str, list] = {k: [] for k in names}
    for r in range(repeat):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            if pause > 0:
                time.sleep(pause)
            samples[k].append(time_call(contenders[k], number[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


WARM_S = 0.05
"""Untimed back-to-back runs of a contender before each of its timed runs (``warm``). After
the idle pause neither library is at full speed at once: on the 2-core VM of these
measurements a 4096^2 float32 timed run of 6 calls behind one 12 ms warm-up run gave clnn
26 GB/s and numpy 19 GB/s, behind 50 ms of warm-up 38-39 and 40-43 GB/s (same process,
alternating). Halted virtual CPUs (the guest does not poll before halting there) take that
long to come back to speed; what is measured is the steady state of repeated calls."""

def warm_up(fn: Callable[[], object], seconds: float = WARM_S) -> None:
    """Run ``fn`` (untimed) once, then again until ``seconds`` have passed."""
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < seconds:
        fn()


def paired_samples(contenders: Dict[str, Callable[[], object]], repeat: int,
                   settle: float = 0.1, warm_s: float = 0.0) -> Dict[str, List[float]]:
    """Seconds of every timed run of each contender, the contenders alternating (A B C,
    C B A, ...). Before every timed run: ``settle`` seconds of idle (the other library's
    spinning threads go quiet), then untimed runs of the same contender for at least
    ``warm_s`` seconds (its threads awake and its cores back to speed, as in a program that
    calls it repeatedly; at least one run when ``warm_s`` > 0). Round ``r`` of every list
    comes from the same few tens of milliseconds, so ratios taken round by round (see
    :func:`pair_ratio`) cancel the machine's slow phases."""
    names = list(contenders)
    for k in names:
        contenders[k]()  # warm-up
    samples: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(repeat):
        for k in (names if r % 2 == 0 else names[::-1]):
            time.sleep(settle)
            if warm_s > 0:
                warm_up(contenders[k], warm_s)
            t0 = time.perf_counter()
            contenders[k]()
            samples[k].append(time.perf_counter() - t0)
    return samples


def pair_ratio(a: List[float], b: List[float]) -> float:
    """Median over the rounds of ``b[r] / a[r]`` (two runs a few milliseconds apart)."""
    return statistics.median(tb / ta for ta, tb in zip(a, b))


def paired(contenders: Dict[str, Callable[[], object]], repeat: int, settle: float = 0.1,
           warm_s: float = 0.0) -> Dict[str, float]:
    """Median seconds per run of each contender, timed as :func:`paired_samples` does. With
    two contenders the result also holds ``"pair_ratio"``: the median over the rounds of
    (second's time / first's time), so a slow phase of the machine spanning one round
    cancels out of it."""
    samples = paired_samples(contenders, repeat, settle, warm_s)
    res: Dict[str, float] = {k: statistics.median(v) for k, v in samples.items()}
    if len(samples) == 2:
        a, b = samples.values()
        res["pair_ratio"] = pair_ratio(a, b)
    return res


def write_json(path: str, data: object) -> None:
    """Write ``data`` as JSON atomically (a temporary file renamed over ``path``)."""
    with atomic_write(path, "w", prefix=".bench-") as f:
        json.dump(data, f, indent=2)


def table(headers: list, rows: list) -> str:
    """A plain text table with columns padded to fit."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
