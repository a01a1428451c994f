"""``clnn tune nn``: its candidates are valid nn tunables that differ from the defaults only
in the gemm-path choices, its bench trains on the paths a candidate chooses (and checks the
loss against numpy), and a dry run picks a winner without storing it."""

from __future__ import annotations

import numpy as np
import pytest

from clnn import tuning
from clnn.nn._kernels import GEMM_OFF, Kernels
from clnn.tune import nn as tune_nn
from clnn.tune import tune, tuners

CHOICES = {"GEMM_B", "GEMM_N", "GEMM_BW", "GEMM_MIN"}


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_candidates_vary_the_path_choices_only(device, quick):
    assert "nn" in tuners()
    for dt in ("float", "double"):
        base = tuning.defaults(device, "nn", "dense", dt)
        cands = list(tune_nn.candidates(device, dt, quick))
        assert cands and len({tuple(sorted(p.items())) for _, _, p in cands}) == len(cands)
        for variant, sc, p in cands:
            assert (variant, sc) == ("dense", tuning.ANY)
            assert tuning.check(device, "nn", "dense", dt, p) == p
            changed = {k for k in p if p[k] != base[k]}
            assert len(changed) == 1 and changed <= CHOICES, changed


def test_candidate_params_reach_the_network(rt):
    """A forced set decides the paths of the plans the bench times."""
    p = dict(tuning.defaults(rt.device, "nn", "dense", "float"), GEMM_B=1, GEMM_N=1,
             GEMM_BW=GEMM_OFF)
    k = Kernels(rt, np.float32, p)
    assert k.gemm_forward(1, 3, 1) and not k.gemm_backward(1 << 20, 64, 64)


@pytest.mark.timing
def test_bench_and_dry_run(rt):
    p = next(p for _, _, p in tune_nn.candidates(rt.device, "float", quick=True))
    s = tune_nn.bench(rt, "dense", "float", tuning.ANY, p, quick=True)
    assert 0 < s < 10.0
    before = tuning.lookup(rt.device, "nn", "dense", "float")
    res = tune(rt, "nn", ["float"], quick=True, dry_run=True, log=lambda _: None)
    assert len(res) == 1 and set(res[0]["params"]) == set(before[0])
    assert tuning.lookup(rt.device, "nn", "dense", "float") == before  # nothing stored
