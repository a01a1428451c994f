import json
import subprocess
import sys

import pytest

import clnn
from clnn.cli import main


def test_demo_prints_layer_example(capsys, device):
    assert main(["demo", "--device", device.spec]) == 0
    out = capsys.readouterr().out
    assert "h1 = [0.63 1.83 3.6 0.9]" in out
    assert "y = [1.84]" in out
    assert device.name in out


def test_devices_table_marks_choice(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    chosen = clnn.select_device()
    line = [ln for ln in out.splitlines() if ln.startswith("*")][0]
    assert chosen.spec in line and chosen.name in line


def test_devices_json_and_select(capsys):
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["devices"]) == len(clnn.devices())
    assert {"name", "platform", "fp64", "global_mem", "spec"} <= set(data["devices"][0])
    d = clnn.devices()[0]
    assert main(["devices", "--select", d.spec]) == 0
    assert capsys.readouterr().out.startswith(d.spec)


def test_bad_select_exit_2(capsys):
    assert main(["devices", "--select", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-device" in err


def test_bad_env_one_line_no_traceback():
    env = {"CLNN_DEVICE": "no-such-device", "PATH": ""}
    import os

    env = dict(os.environ, CLNN_DEVICE="no-such-device")
    r = subprocess.run([sys.executable, "-m", "clnn", "demo"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "CLNN_DEVICE" in r.stderr and "no-such-device" in r.stderr


@pytest.mark.parametrize("argv", [["bench", "nonsense"], ["frobnicate"]])
def test_bad_subcommand_usage(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


# ---- device selection from scripts ------------------------------------------------------------
def _clnn_env(**extra: str) -> dict:
    import os
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("CLNN_DEVICE", "PYOPENCL_CTX",
                                                            "PYOPENCL_TEST")}
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    env.update(extra)
    return env


def _clnn(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clnn", *argv], env=env, capture_output=True,
                          text=True, timeout=120)


def test_devices_select_line_and_json(capsys):
    want = clnn.select_device("gpu+fp64,cpu,any")
    assert main(["devices", "--select", "gpu+fp64,cpu,any"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    fields = out.rstrip("\n").split("\t")
    assert fields == [want.spec, want.name, want.platform, want.type,
                      "yes" if want.fp64 else "no", str(want.global_mem)]
    assert main(["devices", "--select", "gpu+fp64,cpu,any", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["spec"] == want.spec and obj["fp64"] == want.fp64
    assert obj["global_mem"] == want.global_mem and "alternative" in obj["rule"]
    # without SPEC: what --device (else the environment) selects
    assert main(["devices", "--device", want.spec, "--select"]) == 0
    assert capsys.readouterr().out.split("\t")[0] == want.spec


@pytest.mark.parametrize("var, value", [("CLNN_DEVICE", "bogus"), ("PYOPENCL_CTX", "xx"),
                                        ("CLNN_DEVICE", "gpu+mem>=1000T")])
@pytest.mark.parametrize("json_out", [False, True], ids=["table", "json"])
def test_devices_exit_2_when_environment_matches_nothing(var, value, json_out):
    r = _clnn(_clnn_env(**{var: value}), "devices", *(["--json"] if json_out else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("clnn: error:")
    assert f"{var} {value!r}" in r.stderr and "Traceback" not in r.stderr
    if json_out:
        data = json.loads(r.stdout)
        assert data["selected"] is None and f"{var} {value!r}" in data["error"]
        assert len(data["devices"]) == len(clnn.devices())
    else:
        assert "P:D" in r.stdout and clnn.devices()[0].name in r.stdout


@pytest.mark.parametrize("value", [":", ":0", "0:", "Portable:pthread", "0:0:0"], ids=repr)
def test_pyopencl_ctx_forms_on_the_command_line(monkeypatch, value):
    import pyopencl as cl

    from clnn.devices import cl_device

    monkeypatch.delenv("PYOPENCL_TEST", raising=False)
    monkeypatch.setenv("PYOPENCL_CTX", value)
    try:
        want = next(d for d in clnn.devices()
                    if cl_device(d) == cl.choose_devices(interactive=False)[0])
    except (RuntimeError, cl.Error):
        want = None
    r = _clnn(_clnn_env(PYOPENCL_CTX=value), "devices", "--select")
    if want is None:
        assert r.returncode == 2 and f"PYOPENCL_CTX {value!r}" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\t")[0] == want.spec


def test_pyopencl_ctx_colon_runs_the_demo():
    r = _clnn(_clnn_env(PYOPENCL_CTX=":"), "demo")
    assert r.returncode == 0, r.stderr
    assert "y = [1.84]" in r.stdout


# the README's "Device selection" script, with `clnn demo` in place of the training run
README_SCRIPT = r"""
line=$(clnn devices --select 'gpu+fp64,cpu') || exit 2
IFS=$'\t' read -r spec name platform type fp64 mem <<< "$line"
echo "training on $spec: $name ($type, fp64 $fp64, $((mem >> 30)) GiB)"
CLNN_DEVICE=$spec clnn demo
"""


@pytest.mark.parametrize("spec_env", [{}, {"CLNN_DEVICE": "bogus"}], ids=["plain", "bad-env"])
def test_readme_device_script(spec_env):
    want = clnn.select_device("gpu+fp64,cpu")
    prelude = f'clnn() {{ "{sys.executable}" -m clnn "$@"; }}\n'
    r = subprocess.run(["bash", "-c", prelude + README_SCRIPT], env=_clnn_env(**spec_env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    head = f"training on {want.spec}: {want.name} ({want.type}, fp64 "
    assert r.stdout.startswith(head)
    assert f"device: [{want.spec}] {want.name}" in r.stdout and "y = [1.84]" in r.stdout
