"""``clnn.bench.peak``: the multiply-add kernel computes its chains, a run does the flops it
was asked for (split into launches the int argument holds), and ``clnn bench peak`` prints
the rate; the bench train rows name a target that lies above its ceiling."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

import clnn
from clnn.bench import peak as peak_mod
from clnn.bench.peak import NACC, FmaPeak
from clnn.bench.train import _goal_text
from clnn.cli import main

pytestmark = pytest.mark.oclgrind


@pytest.mark.parametrize("iters", [1, 3, 17])
def test_kernel_runs_every_chain(rt, dtype, iters):
    """acc = acc * m + a, ``iters`` times, from acc = x + c on each of NACC chains of VW
    lanes; the work-item stores the sum (closed form in float64)."""
    m, a = 0.5, 1.25
    with FmaPeak(rt, dtype) as peak:
        with rt._lock:
            peak._plan.update(iters=iters, m=peak.dtype.type(m), a=peak.dtype.type(a))
            peak._plan()
        got = peak._out.to_numpy()
        x = np.arange(peak.items, dtype=np.float64)[:, None] + np.arange(NACC)[None, :]
        chains = m ** iters * x + a * (1 - m ** iters) / (1 - m)
        want = peak.vw * chains.sum(axis=1)
        scale = peak.vw * np.abs(chains).sum(axis=1)
        assert_close(got, want, dtype, k=NACC * peak.vw * (iters + 1), scale=scale)


def test_runs_do_the_flops_asked(rt, monkeypatch):
    with FmaPeak(rt) as peak:
        step = peak.flops(1)  # one step of the loop on every work-item
        assert step == 2 * peak.items * NACC * peak.vw
        assert peak.flops(10.4 * step) == 10 * step
        launches = []
        real = clnn.launch.cl.enqueue_nd_range_kernel

        def count(q, k, g, l_, *a, **kw):
            launches.append(k)
            return real(q, k, g, l_, *a, **kw)

        monkeypatch.setattr(peak_mod, "MAX_ITERS", 4)
        monkeypatch.setattr(clnn.launch.cl, "enqueue_nd_range_kernel", count)
        peak.runner(10 * step)()  # 10 steps: launches of 4, 4 and 2
        assert len(launches) == 3


@pytest.mark.timing
def test_gflops_is_a_rate(rt):
    with FmaPeak(rt) as peak:
        g = peak.gflops(seconds=0.01, repeat=2)
    assert 0 < g < 1e6


@pytest.mark.timing
def test_cli_bench_peak(device, capsys):
    assert main(["bench", "peak", "--device", device.spec, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "float32: " in out and "GFLOP/s multiply-add peak" in out
    assert ("float64: " in out) == device.fp64


def test_refuses_a_dtype_it_cannot_run(rt):
    with pytest.raises(clnn.DTypeError, match="float32 or float64"):
        FmaPeak(rt, np.int32)
    if not rt.device.fp64:
        with pytest.raises(clnn.UnsupportedError, match="cl_khr_fp64"):
            FmaPeak(rt, np.float64)


def test_cli_bench_peak_bad_repeat_is_one_line_exit_2(capsys):
    assert main(["bench", "peak", "--repeat", "0"]) == 2
    err = capsys.readouterr().err
    assert "--repeat must be at least 1, got 0" in err and len(err.strip().splitlines()) == 1


def test_goal_text_names_a_ceiling_below_the_target():
    assert _goal_text({"torch": 1.3}, {"torch": False}, {"torch": 1.21}) == (
        "torch >= 1.3x MISSED (ceiling 1.21x)")
    # a ceiling above the target: the miss is clnn's, no excuse printed
    assert _goal_text({"torch": 1.3}, {"torch": False}, {"torch": 1.5}) == "torch >= 1.3x MISSED"
    assert _goal_text({"torch": 1.3}, {"torch": True}, {"torch": 1.1}) == "torch >= 1.3x ok"
