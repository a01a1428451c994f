"""Force the layers of every network on a runtime onto one path, whatever their size: the
fused kernels of nn.cl.mako or the packed gemm with epilogues (the nn tunables GEMM_*).

Test modules import the fixture: ``from nn_paths import nn_path  # noqa: F401``; a test that
takes ``nn_path`` runs once per path (on the ``rt`` of the test, both dtypes)."""

from __future__ import annotations

import numpy as np
import pytest

from clnn.nn._kernels import GEMM_OFF, kernels

PATHS = {"fused": {"GEMM_B": GEMM_OFF, "GEMM_BW": GEMM_OFF},
         "gemm": {"GEMM_B": 1, "GEMM_N": 1, "GEMM_BW": 1, "GEMM_MIN": 1}}


def force(monkeypatch, rt, path: str) -> None:
    """Every layer of ``rt``'s networks on ``path`` until the test ends."""
    for dt in (np.float32, np.float64) if rt.device.fp64 else (np.float32,):
        for name, value in PATHS[path].items():
            monkeypatch.setitem(kernels(rt, dt).p, name, value)


@pytest.fixture(params=list(PATHS))
def nn_path(request, rt, monkeypatch) -> str:
    force(monkeypatch, rt, request.param)
    return request.param
