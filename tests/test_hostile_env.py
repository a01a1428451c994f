"""Hostile input, devices and environment variables: bad device specs of every kind, bad
``CLNN_DEVICE`` / ``PYOPENCL_CTX``, the CLI under a bad environment, odd cache and tuning paths.
A bad device is a clnn ``DeviceError`` (the CLI: one line, exit status 2); an unusable cache or
tuning path is skipped and the results stay right.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import runtime_still_works

import clnn

BAD_SPECS = ["nonsense", "99", "99:99", "0:99", "-1", "", "  ", "gpu:0:1", ":", "0:", "accelerator",
             "\x00", "ü" * 300]


@pytest.mark.parametrize("spec", BAD_SPECS, ids=[repr(s)[:20] for s in BAD_SPECS])
def test_bad_device_specs(spec):
    kinds = {d.type.lower() for d in clnn.devices()}
    if spec.strip().lower() in kinds:
        pytest.skip(f"{spec!r} names a device here")
    with pytest.raises(clnn.DeviceError):
        clnn.Runtime(spec)


@pytest.mark.parametrize("spec", [99, -1, 2**70, 3.5, b"cpu", ["cpu"], object(), True],
                         ids=lambda s: repr(s)[:20])
def test_bad_device_spec_types(spec):
    with pytest.raises(clnn.DeviceError):
        clnn.Runtime(spec)


@pytest.mark.parametrize("var", ["CLNN_DEVICE", "PYOPENCL_CTX"])
@pytest.mark.parametrize("value", ["nonsense", "7:7", "0:42", "gpu-of-dreams"])
def test_bad_device_env_vars(monkeypatch, var, value):
    monkeypatch.delenv("CLNN_DEVICE", raising=False)
    monkeypatch.setenv(var, value)
    with pytest.raises(clnn.DeviceError, match=var):
        clnn.Runtime()
    with pytest.raises(clnn.DeviceError):
        clnn.select_device()
    # an explicit spec still wins over a bad environment
    with clnn.Runtime(clnn.devices()[0].spec) as rt:
        runtime_still_works(rt, np.float32)


def _run_cli(env_extra: dict, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    return subprocess.run([sys.executable, "-m", "clnn", *argv], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("env", [{"CLNN_DEVICE": "nonsense"}, {"PYOPENCL_CTX": "9:9"},
                                 {"CLNN_DEVICE": "0:77"}], ids=lambda e: str(e))
def test_cli_with_bad_env_is_one_line_error(env):
    env = dict(env)
    env.setdefault("CLNN_DEVICE", "")
    r = _run_cli(env, "demo")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("clnn: error:") and "Traceback" not in r.stderr


def test_odd_cache_and_tuning_env_vars_do_not_break_anything(tmp_path):
    """CLNN_CACHE_DIR on a file, CLNN_TUNING_DB on a folder, POCL_CACHE_DIR unwritable: the
    caches are skipped and the results are still right (child process)."""
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for env in ({"CLNN_CACHE_DIR": str(afile)}, {"CLNN_TUNING_DB": str(tmp_path)},
                {"CLNN_CACHE_DIR": "/proc/nope"}, {"CLNN_CACHE_GUARD": "0"},
                {"CLNN_TUNING_DB": str(afile)}):
        r = _run_cli(env, "demo")
        assert r.returncode == 0, (env, r.stderr[-2000:])
        assert "y = [" in r.stdout
