"""Fixtures: every test that takes ``rt`` runs once per available OpenCL device.

``CLNN_TEST_DEVICES`` limits the devices: comma-separated specs as clnn.select_device takes
them (``"pocl"``, ``"0:0"``, ``"gpu"``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import clnn


def _test_devices():
    devs = clnn.devices()
    spec = os.environ.get("CLNN_TEST_DEVICES", "").strip()
    if not spec:
        return devs
    chosen = []
    for s in spec.split(","):
        d = clnn.select_device(s.strip())
        if d not in chosen:
            chosen.append(d)
    return chosen


DEVICES = _test_devices()


def pytest_report_header(config):
    return ["clnn devices under test: " + "; ".join(str(d) for d in DEVICES)]


@pytest.fixture(scope="session", params=DEVICES, ids=lambda d: f"{d.spec}-{d.name[:24]}")
def device(request) -> clnn.DeviceInfo:
    return request.param


@pytest.fixture(scope="session")
def rt(device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with clnn.Runtime(device) as r:
            yield r


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request, device):
    dt = np.dtype(request.param)
    if dt == np.float64 and not device.fp64:
        pytest.skip(f"float64: device {device.name!r} lacks cl_khr_fp64")
    return dt


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
