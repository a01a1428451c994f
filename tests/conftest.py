"""Fixtures: every test that takes ``rt`` runs once per available OpenCL device.

``CLNN_TEST_DEVICES`` limits the devices: comma-separated specs as clnn.select_device takes
them (``"pocl"``, ``"0:0"``, ``"gpu"``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from oclgrind_log import simulator

import clnn

# OCLGRIND_LOG set: collect Oclgrind's reports through a FIFO, before any context exists, and
# fail the test (and the session) that made any (see oclgrind_log.py; ``tox -e oclgrind``)
_OCLGRIND = None
if os.environ.get("OCLGRIND_LOG"):
    from oclgrind_log import Collector

    _OCLGRIND = Collector(os.environ["OCLGRIND_LOG"])


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
    lines = ["clnn devices under test: " + "; ".join(str(d) for d in DEVICES)]
    if _OCLGRIND is not None:
        lines.append(f"Oclgrind reports collected in {_OCLGRIND.log}")
    return lines


def pytest_collection_modifyitems(config, items):
    """Timing runs (marker ``timing``) are skipped on a simulated device."""
    for item in items:
        dev = getattr(item, "callspec", None) and item.callspec.params.get("device")
        if item.get_closest_marker("timing") and dev is not None and simulator(dev):
            item.add_marker(pytest.mark.skip(
                reason=f"timing run: minutes on the simulator {dev.platform}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _OCLGRIND is None or call.when != "teardown":
        return
    reports = _OCLGRIND.take(item.nodeid)
    rep = outcome.get_result()
    if reports and not rep.failed:
        rep.outcome = "failed"
        rep.longrepr = (f"Oclgrind reported {len(reports)} problem(s) in this test's kernels "
                        f"(log: {_OCLGRIND.log}):\n\n" + "\n\n".join(reports[:20]))


def pytest_sessionfinish(session, exitstatus):
    if _OCLGRIND is None:
        return
    _OCLGRIND.take("after the last test")
    _OCLGRIND.close()
    if _OCLGRIND.found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _OCLGRIND is None:
        return
    tr, found = terminalreporter, _OCLGRIND.found
    tr.section("Oclgrind", sep="=", red=bool(found), green=not found)
    tr.write_line(f"{len(found)} report(s) (out-of-bounds accesses, data races, ...) in "
                  f"{_OCLGRIND.log}")
    for where, report in found[:50]:
        tr.write_line(f"--- {where}")
        tr.write_line(report)


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
