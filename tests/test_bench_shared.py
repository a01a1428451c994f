"""What the benchmarks share (clnn/bench/timing.py, data.py, options.py): the one timing loop,
the data, the common options."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from clnn.bench import timing
from clnn.bench.data import digits_data, mnist_shaped, normal_matrix
from clnn.bench.options import FLOATS, add_options, device_dtypes


def _recorder():
    calls = []

    def make(name):
        return lambda: calls.append(name)

    return calls, {k: make(k) for k in "abc"}


def test_rounds_alternate_the_order_and_time_every_contender():
    calls, fns = _recorder()
    r = timing.rounds(fns, 3, number={"a": 1, "b": 2, "c": 1}, warmup=1)
    # the untimed warm-up, then rounds in alternating order, b run twice per timed run
    assert calls == list("abc") + list("abbc") + list("cbba") + list("abbc")
    assert r.rounds == 3 and all(len(v) == 3 for v in r.samples.values())
    assert all(t >= 0 for v in r.samples.values() for t in v)


def test_rounds_settle_and_warm_before_every_timed_run(monkeypatch):
    calls, fns = _recorder()
    slept = []
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    timing.rounds({"a": fns["a"]}, 2, number={"a": 1}, warmup=0, settle=0.25, warm_s=1e-9)
    assert slept == [0.25, 0.25] and calls == list("aaaa")  # warm-up call + timed call


def test_rounds_with_a_budget_count_quiet_rounds():
    _, fns = _recorder()
    r = timing.rounds({"a": fns["a"], "b": fns["b"]}, 2, number={"a": 1, "b": 1},
                      budget_s=0.0)
    assert r.rounds >= 2 and 0 <= r.quiet <= r.rounds
    assert len(r.samples["a"]) == len(r.samples["b"]) in (r.quiet, r.rounds)


def test_interleaved_paired_and_quiet_give_medians_and_ratios():
    fns = {"a": lambda: sum(range(50)), "b": lambda: sum(range(5000))}
    assert set(timing.interleaved(fns, repeat=3)) == {"a", "b"}
    s = timing.paired_samples(fns, 3, settle=0.0)
    assert [len(v) for v in s.values()] == [3, 3]
    res = timing.paired(fns, 3, settle=0.0)
    assert set(res) == {"a", "b", "pair_ratio"} and res["pair_ratio"] > 0
    med, quiet, pairs = timing.quiet_interleaved(fns, 1, {"a": 1, "b": 1}, 0.0, 0.0)
    assert set(med) == {"a", "b", "pair_ratio"} and pairs >= 1 and quiet <= pairs


def test_pair_ratio_is_the_median_of_the_rounds_ratios():
    assert timing.pair_ratio([1.0, 2.0, 4.0], [2.0, 2.0, 2.0]) == 1.0
    assert timing.medians({"x": [3.0, 1.0, 2.0], "y": [6.0, 2.0, 4.0]}) == {
        "x": 2.0, "y": 4.0, "pair_ratio": 2.0}


def test_data_shapes():
    x, y = digits_data()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and len(y) == 1797
    assert 0 <= x.min() and x.max() <= 1 and set(np.unique(y)) <= set(range(10))
    x, y = mnist_shaped(17, 3, 301, seed=1)
    assert x.shape == (17, 3) and x.dtype == np.float32 and y.max() < 301
    assert np.array_equal(x, mnist_shaped(17, 3, 301, seed=1)[0])
    a = normal_matrix(np.random.default_rng(0), (3, 17), np.float64, "col")
    assert a.flags.f_contiguous and a.dtype == np.float64 and a.shape == (3, 17)
    b = normal_matrix(np.random.default_rng(0), (3, 17), np.float64, "row")
    assert b.flags.c_contiguous and np.array_equal(a, b)


def test_add_options_adds_only_what_is_asked():
    p = argparse.ArgumentParser()
    add_options(p, repeat=(5, "runs"))
    assert vars(p.parse_args([])) == {"repeat": 5, "json": None}
    p = argparse.ArgumentParser()
    add_options(p, quick="smoke", dtype=(FLOATS, "float32", None),
                only=("--cases", "CASE", ["mm", "mv"], "cases"))
    a = p.parse_args(["--cases", "mv", "--dtype", "float64", "--quick"])
    assert (a.cases, a.dtype, a.quick) == (["mv"], "float64", True)
    with pytest.raises(SystemExit):
        p.parse_args(["--cases", "nope"])


def test_device_dtypes_drops_float64_without_fp64(capsys, device):
    got = device_dtypes(device, [np.float32, np.float64])
    out = capsys.readouterr().out
    if device.fp64:
        assert got == [np.float32, np.float64] and out == ""
    else:
        assert got == [np.float32] and "float64 skipped" in out
