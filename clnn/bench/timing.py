"""Interleaved timing: the one timer every ``clnn bench`` (and the tuner) uses.

Shared machines change speed by up to 2x within seconds, so two contenders are never timed
one after the other: :func:`rounds`, the one timing loop, alternates their runs round by
round (A B C, C B A, ...) so that a slow phase hits all of them, and ratios are taken round
by round (:func:`pair_ratio`). Before every timed run it can idle (``settle``: the other
library's spinning threads go quiet) and run the contender untimed (``warm_s``: its cores back
to speed); on Linux it can also set aside the rounds during which other processes used the
cores. The other functions are its usual settings:

* :func:`interleaved`: calibrated back-to-back calls per run, medians (tuner, blas1, batch);
* :func:`paired_samples` / :func:`paired`: one call per run after ``settle`` and ``warm_s``
  (gemv, train);
* :func:`quiet_interleaved`: calibrated runs after a pause and a warm-up, disturbed rounds
  retaken within a time budget (gemm, ops).

Example:
    >>> from clnn.bench.timing import interleaved
    >>> res = interleaved({"a": lambda: sum(range(100)), "b": lambda: sum(range(10))}, repeat=5)
    >>> sorted(res)
    ['a', 'b']
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from ..atomic import atomic_write

Contenders = Dict[str, Callable[[], object]]

WARM_S = 0.05
"""Untimed back-to-back runs of a contender before each of its timed runs (``warm_s``). After
the idle pause neither library is at full speed at once: on the 2-core VM of these
measurements a 4096^2 float32 timed run of 6 calls behind one 12 ms warm-up run gave clnn
26 GB/s and numpy 19 GB/s, behind 50 ms of warm-up 38-39 and 40-43 GB/s (same process,
alternating). Halted virtual CPUs (the guest does not poll before halting there) take that
long to come back to speed; what is measured is the steady state of repeated calls."""

SETTLE_S = 0.15
"""Idle before each timed run (``settle``). OpenBLAS's worker threads spin after a call for
its default thread timeout, 2**28 time-stamp-counter cycles: 0.11 s at this machine's 2.445
GHz, and the threads' CPU time still grew until 125-145 ms after a 1024^2 float32 ``a @ a``
(sampled every 20 ms from /proc); PoCL's threads spin for a while after a kernel too. On a
machine with few cores a run that starts while the *other* library's threads still spin is
slowed by them. The pause lets both start from idle threads, the way each would run in a
program of its own."""

QUIET_PAUSE = 0.2
"""The idle of :func:`quiet_interleaved` before each timed run (its runs are longer)."""

QUIET_SHARE = 0.05
"""A round is quiet when other processes used at most this share of the cores during it."""


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


def warm_up(fn: Callable[[], object], seconds: float = WARM_S) -> None:
    """Run ``fn`` (untimed) once, then again until ``seconds`` have passed."""
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < seconds:
        fn()


def _ticks() -> Optional[tuple]:
    """(busy clock ticks of the whole machine, ticks of this process), or None without
    Linux's /proc."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        with open("/proc/self/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        return sum(v) - v[3] - v[4], int(st[11]) + int(st[12])
    except (OSError, ValueError, IndexError):
        return None


class Rounds(NamedTuple):
    """What :func:`rounds` measured: seconds per call of every timed run of each contender
    (entry ``r`` of every list from round ``r``), the quiet rounds and the rounds run."""

    samples: Dict[str, List[float]]
    quiet: int
    rounds: int


def rounds(contenders: Contenders, repeat: int, number: Optional[Dict[str, int]] = None,
           target_s: float = 0.02, warmup: int = 1, settle: float = 0.0,
           warm_s: float = 0.0, budget_s: Optional[float] = None) -> Rounds:
    """The timing loop: ``repeat`` rounds, each one timed run of every contender, the order
    reversed every other round.

    A timed run is ``number[k]`` back-to-back calls (calibrated to about ``target_s`` when
    ``number`` is None). Every contender first runs ``warmup`` times untimed. Before every
    timed run: ``settle`` seconds of sleep, then, with ``warm_s`` > 0, untimed calls for that
    long (at least one). With ``budget_s`` (Linux), a round during which other processes
    used more than :data:`QUIET_SHARE` of the cores (read from /proc) is set aside and rounds
    are retaken, within ``budget_s`` seconds, until ``repeat`` quiet ones are in; when fewer
    than half the rounds were quiet, the samples are of all rounds."""
    names = list(contenders)
    if number is None:
        number = {k: calibrate(contenders[k], target_s) for k in names}
    for _ in range(warmup):
        for k in names:
            contenders[k]()
    every: Dict[str, List[float]] = {k: [] for k in names}
    quiet: Dict[str, List[float]] = {k: [] for k in names}
    tck = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    ncpu = os.cpu_count() or 1
    end = time.perf_counter() + (budget_s or 0.0)
    watch = budget_s is not None
    done = ok = 0
    while ((ok < repeat and (done < repeat or time.perf_counter() < end)) if watch
           else done < repeat):
        t0, w0 = _ticks() if watch else None, time.perf_counter()
        got = {}
        for k in (names if done % 2 == 0 else names[::-1]):
            if settle > 0:
                time.sleep(settle)
            if warm_s > 0:
                warm_up(contenders[k], warm_s)
            got[k] = time_call(contenders[k], number[k])
        t1, w1 = _ticks() if watch else None, time.perf_counter()
        done += 1
        for k in names:
            every[k].append(got[k])
        others = 0 if t0 is None or t1 is None else (t1[0] - t0[0]) - (t1[1] - t0[1])
        if others <= QUIET_SHARE * ncpu * (w1 - w0) * tck + 1:
            ok += 1
            for k in names:
                quiet[k].append(got[k])
    if not watch:
        return Rounds(every, ok, done)
    return Rounds(quiet if ok >= max(1, done // 2) else every, ok, done)


def medians(samples: Dict[str, List[float]]) -> Dict[str, float]:
    """The median of each contender's samples; with two contenders also ``"pair_ratio"``:
    the median over the rounds of (second's time / first's time)."""
    res = {k: statistics.median(v) for k, v in samples.items()}
    if len(samples) == 2:
        a, b = samples.values()
        res["pair_ratio"] = pair_ratio(a, b)
    return res


def pair_ratio(a: List[float], b: List[float]) -> float:
    """Median over the rounds of ``b[r] / a[r]`` (two runs a few milliseconds apart)."""
    return statistics.median(tb / ta for ta, tb in zip(a, b))


def interleaved(contenders: Contenders, repeat: int = 9,
                number: Optional[Dict[str, int]] = None, warmup: int = 1,
                target_s: float = 0.02, pause: float = 0.0) -> Dict[str, float]:
    """Median seconds per call of each contender, runs alternating between them.

    ``number`` gives back-to-back calls per timed run for each contender (calibrated to about
    ``target_s`` per run when not given). ``pause`` seconds of sleep before each timed run let
    the previous contender's thread pool go idle (OpenBLAS worker threads spin for ~0.1 s after
    a call and would steal cores from the next run)."""
    r = rounds(contenders, repeat, number, target_s, warmup, settle=pause)
    return {k: statistics.median(v) for k, v in r.samples.items()}


def paired_samples(contenders: Contenders, repeat: int, settle: float = SETTLE_S,
                   warm_s: float = 0.0) -> Dict[str, List[float]]:
    """Seconds of every timed run (one call) of each contender, the contenders alternating
    (A B C, C B A, ...). Before every timed run: ``settle`` seconds of idle, then untimed
    runs of the same contender for at least ``warm_s`` seconds (as in a program that calls
    it repeatedly). Round ``r`` of every list comes from the same few tens of milliseconds,
    so ratios taken round by round (see :func:`pair_ratio`) cancel the machine's slow
    phases."""
    return rounds(contenders, repeat, dict.fromkeys(contenders, 1), settle=settle,
                  warm_s=warm_s).samples


def paired(contenders: Contenders, repeat: int, settle: float = SETTLE_S,
           warm_s: float = 0.0) -> Dict[str, float]:
    """Median seconds per run of each contender, timed as :func:`paired_samples` does, with
    ``"pair_ratio"`` for two contenders (:func:`medians`)."""
    return medians(paired_samples(contenders, repeat, settle, warm_s))


def quiet_interleaved(contenders: Contenders, repeat: int, number: Optional[Dict[str, int]],
                      target_s: float, budget_s: float) -> tuple:
    """Alternating runs of ``number`` calls (calibrated to ``target_s`` when None), each
    after :data:`QUIET_PAUSE` of idle and :data:`WARM_S` of untimed runs, disturbed rounds
    retaken within ``budget_s`` (see :func:`rounds`). Returns (:func:`medians`, quiet
    rounds, rounds)."""
    r = rounds(contenders, repeat, number, target_s, settle=QUIET_PAUSE, warm_s=WARM_S,
               budget_s=budget_s)
    return medians(r.samples), r.quiet, r.rounds


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
